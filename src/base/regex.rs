//! Regular expressions in configuration: the regex option, compiled once when decoded
//! ([`RegexText`]), and how a bad one is explained ([`syntax_problem`]).

use std::fmt;

use regex_syntax::ast;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What is wrong with `source` and where, as "unclosed group at character 1", when
/// the regex crate's parser says so; `None` for problems it has no place for, and for
/// lookaround and backreferences, which it refuses but fancy-regex takes.
pub fn syntax_problem(source: &str, err: &regex_syntax::Error) -> Option<String> {
    let (what, offset) = match err {
        regex_syntax::Error::Parse(err)
            if !matches!(
                err.kind(),
                ast::ErrorKind::UnsupportedLookAround | ast::ErrorKind::UnsupportedBackreference
            ) =>
        {
            (err.kind().to_string(), err.span().start.offset)
        }
        regex_syntax::Error::Translate(err) => (err.kind().to_string(), err.span().start.offset),
        _ => return None,
    };
    Some(format!("{what} at character {}", character(source, offset)))
}

/// The 1-based character position of byte `offset` in `source`.
pub fn character(source: &str, offset: usize) -> usize {
    source
        .get(..offset)
        .map_or(offset, |head| head.chars().count())
        + 1
}

/// A regular expression (regex crate syntax), compiled when decoded; it serialises, and
/// shows, as written.
#[derive(Clone, Debug)]
pub struct RegexText(regex::bytes::Regex);

impl RegexText {
    pub fn regex(&self) -> &regex::bytes::Regex {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RegexText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        regex::bytes::Regex::new(&text)
            .map(RegexText)
            .map_err(|err| {
                let problem = match regex_syntax::Parser::new().parse(&text) {
                    Err(syntax) => syntax_problem(&text, &syntax),
                    Ok(_) => None,
                };
                // Past the syntax, the regex crate's own message (a size limit) is one line.
                let problem = problem.unwrap_or_else(|| err.to_string());
                serde::de::Error::custom(format!(
                    "`{text}` is not a valid regular expression: {problem}"
                ))
            })
    }
}

impl Serialize for RegexText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl fmt::Display for RegexText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}
