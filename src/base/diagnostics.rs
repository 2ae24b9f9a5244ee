//! Where in a configuration file something is, and the errors and warnings about it.
//!
//! A place is a [`KeyPath`] (`logs.patterns[0].severity`, see `key_path`); the
//! [`SpanIndex`](super::spans::SpanIndex) maps it to a line and column. A
//! [`Diagnostics`] collects every problem of a file so that all of them are reported
//! together, each as `file:line:column: key.path: message`. It also decodes a piece of
//! YAML into a typed config struct, turning serde's first complaint into such an error.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_norway::Value;

use super::key_path::KeyPath;
use super::spans::{Mark, SpanIndex};

/// One problem found in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub mark: Mark,
    pub path: KeyPath,
    pub message: String,
}

impl Diagnostic {
    /// Formats the problem as `file:line:column: key.path: message`.
    pub fn display<'a>(&'a self, file: &'a Path) -> impl fmt::Display + 'a {
        DisplayDiagnostic {
            file,
            diagnostic: self,
        }
    }
}

struct DisplayDiagnostic<'a> {
    file: &'a Path,
    diagnostic: &'a Diagnostic,
}

impl fmt::Display for DisplayDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Diagnostic {
            mark,
            path,
            message,
        } = self.diagnostic;
        write!(f, "{}:{}:{}: ", self.file.display(), mark.line, mark.column)?;
        if !path.is_root() {
            write!(f, "{path}: ")?;
        }
        f.write_str(message)
    }
}

/// Every error of a configuration file, in file order.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        // Rendered whole, then written at once: printed to unbuffered standard error,
        // each piece would be a write of its own (a million for 100,000 errors).
        let mut text = String::new();
        for error in &self.errors {
            writeln!(text, "error: {}", error.display(&self.file))?;
        }
        let count = self.errors.len();
        let plural = if count == 1 { "" } else { "s" };
        write!(text, "{count} error{plural} in {}", self.file.display())?;
        f.write_str(&text)
    }
}

/// Collects the errors and warnings of one file while it is decoded and checked.
pub struct Diagnostics<'a> {
    spans: &'a SpanIndex,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(spans: &'a SpanIndex) -> Self {
        Diagnostics {
            spans,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records an error about the value at `path`.
    pub fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.error_at_mark(self.spans.value_mark(path), path, message);
    }

    /// Records an error about the key at `path` itself (an unknown or misplaced key).
    pub fn error_at_key(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.error_at_mark(self.spans.key_mark(path), path, message);
    }

    /// Records an error at a place given by the parser rather than the span index.
    pub fn error_at_mark(&mut self, mark: Mark, path: &KeyPath, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            mark,
            path: path.clone(),
            message: message.into(),
        });
    }

    /// Records something that is allowed but probably not what the user meant.
    pub fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            mark: self.spans.key_mark(path),
            path: path.clone(),
            message: message.into(),
        });
    }

    /// The line of the key at `path`, for a message that names a second place.
    pub fn line_of(&self, path: &KeyPath) -> usize {
        self.spans.key_mark(path).line
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// How many errors so far: a caller compares counts to learn whether a part it
    /// decoded had any.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// The errors and the warnings, each in file order and each once.
    pub fn finish(self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        (in_file_order(self.errors), in_file_order(self.warnings))
    }

    /// Decodes the value found at `path` into `T`, recording every problem.
    ///
    /// serde stops at the first problem; to report all of a mapping's problems at once,
    /// the key at fault is taken out and decoding tried again, until it succeeds or a
    /// required key is missing. The value decoded without the bad keys is returned (so
    /// the caller can go on checking what it holds), but the errors are recorded and
    /// the configuration as a whole is refused.
    pub fn decode<T: DeserializeOwned>(&mut self, value: &Value, path: &KeyPath) -> Option<T> {
        let mut value = value.clone();
        let mut removed: Vec<String> = Vec::new();
        loop {
            let err = match serde_path_to_error::deserialize(&value) {
                Ok(decoded) => return Some(decoded),
                Err(err) => err,
            };
            let message = err.inner().to_string();
            let missing_removed = removed
                .iter()
                .any(|key| message == format!("missing field `{key}`"));
            if !missing_removed {
                self.serde_error(path.join_serde(err.path()), &message);
            }
            let culprit = match err.path().iter().next() {
                Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
                _ => return None,
            };
            match value
                .as_mapping_mut()
                .and_then(|mapping| mapping.remove(culprit.as_str()))
            {
                Some(_) => removed.push(culprit),
                None => return None,
            }
        }
    }

    /// Turns serde's wording into ours: "key" rather than "field", the unknown key's own
    /// place, and a suggestion when the key looks like a typo of an expected one.
    fn serde_error(&mut self, path: KeyPath, message: &str) {
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let expected = expected.trim_start_matches(", ");
            let mut text = format!("unknown key `{key}`; {expected}");
            if let Some(close) = closest(key, backticked(expected)) {
                text.push_str(&format!(" (did you mean `{close}`?)"));
            }
            // serde_path_to_error may or may not have the key as the last step already.
            let path = if path.last_key() == Some(key) {
                path
            } else {
                path.key(key)
            };
            self.error_at_key(&path, text);
        } else if let Some(rest) = message.strip_prefix("missing field ") {
            self.error_at_key(&path, format!("missing key {rest}"));
        } else if let Some(rest) = message.strip_prefix("unknown variant ") {
            self.error(&path, format!("unknown value {rest}"));
        } else {
            self.error(&path, plain_types(message));
        }
    }
}

/// serde names the number it expected by its Rust type (`expected i64`); users read
/// what is expected in words.
fn plain_types(message: &str) -> String {
    const WORDS: [(&str, &str); 14] = [
        ("a nonzero u", "a whole number above 0"),
        ("a nonzero i", "a whole number other than 0"),
        ("u8", "a whole number, 0 or more"),
        ("u16", "a whole number, 0 or more"),
        ("u32", "a whole number, 0 or more"),
        ("u64", "a whole number, 0 or more"),
        ("usize", "a whole number, 0 or more"),
        ("i8", "a whole number"),
        ("i16", "a whole number"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
        ("isize", "a whole number"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    let Some((before, expected)) = message.rsplit_once(", expected ") else {
        return message.to_owned();
    };
    for (rust, words) in WORDS {
        let nonzero = rust.starts_with("a nonzero") && expected.starts_with(rust);
        if expected == rust || nonzero {
            return format!("{before}, expected {words}");
        }
    }
    message.to_owned()
}

/// `list` sorted by place, each diagnostic once.
///
/// A problem may be found more than once (the shared patterns of the service-centric
/// form are built into the stage of every file). Sorting first puts repeats side by
/// side, so each diagnostic is compared only with the few found at its own place:
/// comparing each with all before it took minutes for a file of 100,000 errors.
fn in_file_order(mut list: Vec<Diagnostic>) -> Vec<Diagnostic> {
    // Stable: the diagnostics of one place stay in the order they were found.
    list.sort_by_key(|d| (d.mark.line, d.mark.column));
    let mut kept: Vec<Diagnostic> = Vec::with_capacity(list.len());
    for diagnostic in list {
        let repeat = (kept.iter().rev())
            .take_while(|other| other.mark == diagnostic.mark)
            .any(|other| *other == diagnostic);
        if !repeat {
            kept.push(diagnostic);
        }
    }
    kept
}

/// The words in backticks in `text`: serde's list of expected names.
fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// The candidate closest to `word`, if it is close enough to be a typo of it.
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::levenshtein(word, candidate), candidate))
        .filter(|&(distance, candidate)| distance <= 2.max(candidate.len() / 4))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// For components' tests: decoding a piece of configuration as a file is decoded.
#[cfg(test)]
pub mod testing {
    use super::*;

    /// What `decode` made of `text` (parsed as YAML, with `text`'s own positions), and
    /// the errors it reported.
    pub fn decoded<T>(
        text: &str,
        decode: impl FnOnce(&Value, &mut Diagnostics) -> Option<T>,
    ) -> (Option<T>, Vec<Diagnostic>) {
        let spans = SpanIndex::build(text);
        let mut diag = Diagnostics::new(&spans);
        let value: Value = serde_norway::from_str(text).expect("YAML");
        let decoded = decode(&value, &mut diag);
        (decoded, diag.finish().0)
    }

    /// What `decode` made of `text` if it reported no error; else the errors as users
    /// see them, in a file called `c.yaml`.
    pub fn decoded_or_shown<T>(
        text: &str,
        decode: impl FnOnce(&Value, &mut Diagnostics) -> Option<T>,
    ) -> Result<T, Vec<String>> {
        match decoded(text, decode) {
            (Some(decoded), errors) if errors.is_empty() => Ok(decoded),
            (_, errors) => Err(errors
                .iter()
                .map(|error| error.display(Path::new("c.yaml")).to_string())
                .collect()),
        }
    }

    /// Each error as `line:key.path message`, short enough to list in an assertion.
    pub fn located(errors: &[Diagnostic]) -> Vec<String> {
        (errors.iter())
            .map(|error| format!("{}:{} {}", error.mark.line, error.path, error.message))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_come_in_file_order_each_once() {
        let at = |line, message: &str| Diagnostic {
            mark: Mark { line, column: 1 },
            path: KeyPath::root(),
            message: message.to_owned(),
        };
        let found = vec![at(3, "c"), at(1, "b"), at(1, "a"), at(3, "c"), at(1, "b")];
        assert_eq!(in_file_order(found), [at(1, "b"), at(1, "a"), at(3, "c")]);
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let keys = ["name", "pattern", "severity", "description"];
        assert_eq!(closest("severty", keys), Some("severity"));
        assert_eq!(closest("patern", keys), Some("pattern"));
        assert_eq!(closest("colour", keys), None);
    }
}
