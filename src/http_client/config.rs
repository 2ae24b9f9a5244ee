//! The configuration values of an HTTP request (URL, method, header names and values),
//! each parsed once, when decoded, and kept parsed: what is built from them never
//! parses them again. Each keeps what the user wrote too, and serialises to that, so
//! that `aegis config expand` prints the configuration as written.
//!
//! Header values may name environment variables as `${NAME}`, so that secrets stay out
//! of configuration files. They are read when the value is decoded (an unset variable
//! is a configuration error), the value made from them is marked sensitive, and
//! neither `Debug` nor serialising shows it: both show the `${NAME}` as written.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::redirect::CREDENTIALS;

/// An absolute `http` or `https` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    written: String,
    url: Url,
}

impl HttpUrl {
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn parse(text: &str) -> Result<HttpUrl, String> {
        let url = Url::parse(text).map_err(|err| format!("invalid URL `{text}`: {err}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "invalid URL `{text}`: the scheme must be `http` or `https`"
            ));
        }
        Ok(HttpUrl {
            written: text.to_owned(),
            url,
        })
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        HttpUrl::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HttpUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

/// An HTTP method, in any case (`get` is `GET`); serialised in upper case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpMethod(Method);

impl HttpMethod {
    pub fn get() -> HttpMethod {
        HttpMethod(Method::GET)
    }

    pub fn post() -> HttpMethod {
        HttpMethod(Method::POST)
    }

    pub fn method(&self) -> &Method {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HttpMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Method::from_bytes(text.to_ascii_uppercase().as_bytes())
            .map(HttpMethod)
            .map_err(|_| serde::de::Error::custom(format!("invalid HTTP method `{text}`")))
    }
}

impl Serialize for HttpMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

/// Request headers as configured: names to values, in the order of the names as
/// written.
pub type Headers = BTreeMap<HeaderKey, HeaderText>;

/// The headers to send, values expanded. Credentials are marked sensitive like values
/// from the environment, so that neither is shown by `Debug` or sent to another origin.
pub fn header_map(headers: &Headers) -> HeaderMap {
    (headers.iter())
        .map(|(key, text)| {
            let mut value = text.value.clone();
            if CREDENTIALS.contains(&key.name) {
                value.set_sensitive(true);
            }
            (key.name.clone(), value)
        })
        .collect()
}

/// A header name, kept as written (HTTP lower-cases it) and ordered by that.
#[derive(Clone, Debug)]
pub struct HeaderKey {
    written: String,
    name: HeaderName,
}

impl PartialEq for HeaderKey {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

impl Eq for HeaderKey {}

impl PartialOrd for HeaderKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeaderKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.written.cmp(&other.written)
    }
}

impl<'de> Deserialize<'de> for HeaderKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = String::deserialize(deserializer)?;
        let name = HeaderName::from_bytes(written.as_bytes())
            .map_err(|_| serde::de::Error::custom(format!("invalid header name `{written}`")))?;
        Ok(HeaderKey { written, name })
    }
}

impl Serialize for HeaderKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

/// A header value as written, with `${NAME}` references to environment variables, and
/// the value it expands to.
#[derive(Clone)]
pub struct HeaderText {
    written: String,
    /// Sensitive when it took anything from the environment.
    value: HeaderValue,
}

impl HeaderText {
    /// `written` with its references expanded, read from the environment now.
    pub fn expand(written: &str) -> Result<HeaderText, ExpandError> {
        let expanded = expand_env(written)?;
        let mut value = HeaderValue::from_str(&expanded).map_err(|_| ExpandError::Invalid {
            written: written.to_owned(),
        })?;
        value.set_sensitive(expanded != written);
        Ok(HeaderText {
            written: written.to_owned(),
            value,
        })
    }

    pub fn value(&self) -> &HeaderValue {
        &self.value
    }
}

impl fmt::Debug for HeaderText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As written: the references, never what they expand to.
        fmt::Debug::fmt(&self.written, f)
    }
}

impl<'de> Deserialize<'de> for HeaderText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        HeaderText::expand(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HeaderText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

/// A secret as written (`${HOOK_SECRET}`, say) and the value it expands to, read from
/// the environment when decoded, as a header value's references are. Neither `Debug`
/// nor serialising shows the value: both show what was written.
#[derive(Clone)]
pub struct SecretText {
    written: String,
    value: String,
}

impl SecretText {
    /// The secret itself, for the one use it is made for (signing, say).
    pub fn expose(&self) -> &[u8] {
        self.value.as_bytes()
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.written, f)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = String::deserialize(deserializer)?;
        // The messages of header values, without "header value".
        let value = expand_env(&written).map_err(|err| {
            serde::de::Error::custom(match err {
                ExpandError::Unset { name } => format!("environment variable `{name}` is not set"),
                _ => format!("unclosed `${{` in `{written}`; write `${{NAME}}`"),
            })
        })?;
        if value.is_empty() {
            return Err(serde::de::Error::custom(format!(
                "the secret `{written}` is empty; expected a secret, such as `${{HOOK_SECRET}}` with the variable set"
            )));
        }
        Ok(SecretText { written, value })
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

/// Why a header value cannot be made. The messages name variables and show the value
/// as written, never what a variable holds.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpandError {
    #[error("environment variable `{name}` (named in a header value) is not set")]
    Unset { name: String },
    #[error("unclosed `${{` in header value `{written}`; write `${{NAME}}`")]
    Unclosed { written: String },
    #[error("invalid header value `{written}` once expanded")]
    Invalid { written: String },
}

/// `text` with each `${NAME}` replaced by the environment variable `NAME`.
fn expand_env(text: &str) -> Result<String, ExpandError> {
    let mut expanded = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        expanded.push_str(&rest[..start]);
        let Some(len) = rest[start + 2..].find('}') else {
            return Err(ExpandError::Unclosed {
                written: text.to_owned(),
            });
        };
        let name = &rest[start + 2..start + 2 + len];
        let value = std::env::var(name).map_err(|_| ExpandError::Unset {
            name: name.to_owned(),
        })?;
        expanded.push_str(&value);
        rest = &rest[start + 3 + len..];
    }
    expanded.push_str(rest);
    Ok(expanded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_expand_environment_variables_and_are_sensitive() {
        // SAFETY: this test alone reads or writes this variable.
        unsafe { std::env::set_var("AEGIS_TEST_HEADER_TOKEN", "s3cret") };
        let text = HeaderText::expand("Bearer ${AEGIS_TEST_HEADER_TOKEN}").unwrap();
        assert_eq!(text.value().to_str().unwrap(), "Bearer s3cret");
        assert!(text.value().is_sensitive());
        assert_eq!(format!("{text:?}"), "\"Bearer ${AEGIS_TEST_HEADER_TOKEN}\"");
        let plain = HeaderText::expand("text/plain").unwrap();
        assert!(!plain.value().is_sensitive());
        assert_eq!(
            HeaderText::expand("${AEGIS_TEST_HEADER_UNSET}").unwrap_err(),
            ExpandError::Unset {
                name: "AEGIS_TEST_HEADER_UNSET".into()
            }
        );
        assert_eq!(
            HeaderText::expand("a ${OPEN").unwrap_err(),
            ExpandError::Unclosed {
                written: "a ${OPEN".into()
            }
        );
        assert!(matches!(
            HeaderText::expand("line\nbreak").unwrap_err(),
            ExpandError::Invalid { .. }
        ));
    }

    #[test]
    fn secrets_expand_and_show_only_as_written() {
        // SAFETY: this test alone reads or writes these variables.
        unsafe { std::env::set_var("AEGIS_TEST_SECRET_TEXT", "hush") };
        unsafe { std::env::set_var("AEGIS_TEST_SECRET_EMPTY", "") };
        let secret: SecretText = serde_norway::from_str("\"${AEGIS_TEST_SECRET_TEXT}\"").unwrap();
        assert_eq!(secret.expose(), b"hush");
        assert_eq!(format!("{secret:?}"), "\"${AEGIS_TEST_SECRET_TEXT}\"");
        assert_eq!(
            serde_norway::to_string(&secret).unwrap(),
            "${AEGIS_TEST_SECRET_TEXT}\n"
        );
        let unset = serde_norway::from_str::<SecretText>("\"${AEGIS_TEST_SECRET_UNSET}\"");
        assert_eq!(
            unset.unwrap_err().to_string(),
            "environment variable `AEGIS_TEST_SECRET_UNSET` is not set"
        );
        let empty = serde_norway::from_str::<SecretText>("\"${AEGIS_TEST_SECRET_EMPTY}\"");
        assert!(empty.unwrap_err().to_string().contains("is empty"));
    }

    #[test]
    fn credentials_written_out_are_sensitive_too() {
        let headers: Headers =
            serde_norway::from_str("{ Authorization: Basic eDp5, X-Trace: t }").unwrap();
        let map = header_map(&headers);
        assert!(map["authorization"].is_sensitive());
        assert!(!map["x-trace"].is_sensitive());
        let debug = format!("{map:?}");
        assert!(!debug.contains("eDp5"), "{debug}");
    }
}
