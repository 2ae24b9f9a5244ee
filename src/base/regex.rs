//! Regular expressions in configuration: how a bad one is explained.

use regex_syntax::ast;

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
