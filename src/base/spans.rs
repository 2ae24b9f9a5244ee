//! Line and column of every key and value of a YAML file, and the first look at it.
//!
//! serde decodes into types and forgets where things were; this index remembers. It
//! is built from the parse events of `saphyr-parser`, which carry spans, so that an
//! error found long after decoding (a bad regex, an unknown input id) can still point
//! at its line. Lookups of a path that is not in the index (a value reached through an
//! alias, say) fall back to the nearest enclosing path that is.
//!
//! Indexing is the first pass over the text, so it is also where a file that cannot
//! hold a configuration is refused ([`Refusal`]): YAML that does not parse, maps and
//! lists nested past [`MAX_DEPTH`], a second document, aliases that multiply the file
//! (a "billion laughs"). The parser streams its events, so the refusal comes at the
//! place of the problem, after work linear in the text before it; the YAML loader
//! behind serde (libyaml's) takes quadratic time on deep nesting, expands every alias,
//! and never sees a refused file.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScanError, Span};

use super::key_path::KeyPath;

/// How deeply maps and lists may nest. A configuration needs fewer than 10 levels; the
/// limit stops a file of nothing but brackets early, since the cost of indexing (and of
/// the YAML loader) grows with the depth of every node.
pub const MAX_DEPTH: usize = 64;

/// Aliases may add this many values when expanded, plus [`ALIAS_GROWTH`] per value
/// written, before the file is refused. Enough to share defaults among many checks;
/// far below what a "billion laughs" file expands to, and it keeps the loader's work
/// linear in the size of the file (serde_norway's own limit counts alias jumps, not
/// what they expand to, and lets a 15 KB file expand to millions of values).
const ALIAS_ALLOWANCE: u64 = 100_000;
/// See [`ALIAS_ALLOWANCE`].
const ALIAS_GROWTH: u64 = 10;

/// A place in the file: line and column, both counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

impl Mark {
    const START: Mark = Mark { line: 1, column: 1 };
}

/// Why a file cannot hold a configuration, whatever its keys say.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The YAML parser's complaint, in its words.
    #[error("not valid YAML: {message}")]
    Syntax { at: Mark, message: String },
    #[error(
        "maps and lists are nested more than {MAX_DEPTH} levels deep here; a configuration needs fewer than 10"
    )]
    TooDeep { at: Mark },
    /// A second document: indexed as one map with the first, its keys would read as
    /// given twice.
    #[error(
        "the file holds more than one YAML document: a second one begins here; a configuration is one document, so merge them into one or split the file"
    )]
    SecondDocument { at: Mark },
    /// `alias` (`*name`, as written) takes the expanded size past the limit.
    #[error(
        "aliases expand past a limit at `{alias}`: each alias repeats the value anchored by its `&name`, and aliases inside anchored values multiply the repeats, here far beyond the size of the file; a configuration needs no such expansion, so write the values out"
    )]
    AliasExpansion { at: Mark, alias: String },
}

impl Refusal {
    /// Where the problem is.
    pub fn mark(&self) -> Mark {
        match self {
            Refusal::Syntax { at, .. }
            | Refusal::TooDeep { at }
            | Refusal::SecondDocument { at }
            | Refusal::AliasExpansion { at, .. } => *at,
        }
    }

    fn from_scan(err: &ScanError) -> Refusal {
        let at = Mark {
            line: err.marker().line(),
            column: err.marker().col() + 1,
        };
        // The parser counts nested flow collections (`[`, `{`) in a byte and gives up
        // at 256. It may read that far ahead before it emits the first of them (to
        // tell whether it is a key), so this is how most deep flow nesting ends.
        if err.info() == "recursion limit exceeded" {
            return Refusal::TooDeep { at };
        }
        Refusal::Syntax {
            at,
            message: err.info().to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Where the key (or, for a list item, the item) begins.
    key: Mark,
    /// Where the value begins.
    value: Mark,
}

/// Maps key paths to places in one file.
#[derive(Debug, Default)]
pub struct SpanIndex {
    entries: HashMap<KeyPath, Entry>,
    /// Keys given twice in one mapping: the path, where it is again, where it was first.
    duplicates: Vec<(KeyPath, Mark, Mark)>,
    /// Why the file was not indexed to its end, if it was not.
    refusal: Option<Refusal>,
}

/// The number of values in the file, as written and as its aliases expand.
#[derive(Default)]
struct Expansion {
    written: u64,
    /// Values the aliases add: each counts as its anchored value's expanded size,
    /// less the one value the alias itself is.
    added: u64,
    /// The expanded size of each anchored value, by anchor id.
    anchored: HashMap<usize, u64>,
    /// The anchor id and the expanded size so far of each open map or list,
    /// innermost last.
    open: Vec<(usize, u64)>,
}

impl Expansion {
    /// Counts a node of the file; returns `false` if aliases took the expanded size
    /// past the limit with it.
    fn node(&mut self, event: &Event) -> bool {
        self.written += 1;
        match *event {
            Event::Scalar(_, _, anchor, _) => self.complete(anchor, 1),
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                self.open.push((anchor, 1));
            }
            Event::Alias(anchor) => {
                // The parser refuses an alias to an anchor not seen yet; one inside the
                // value it names (`&a [*a]`) counts as one value (serde refuses it).
                let size = self.anchored.get(&anchor).copied().unwrap_or(1);
                // Saturating: each level of a "billion laughs" multiplies the size.
                self.added = self.added.saturating_add(size - 1);
                self.complete(0, size);
            }
            _ => {}
        }
        self.added <= ALIAS_ALLOWANCE.saturating_add(ALIAS_GROWTH.saturating_mul(self.written))
    }

    /// Closes the innermost open map or list.
    fn close(&mut self) {
        if let Some((anchor, size)) = self.open.pop() {
            self.complete(anchor, size);
        }
    }

    /// Records a finished value of `size`: under its anchor, and in its parent.
    fn complete(&mut self, anchor: usize, size: u64) {
        // Anchor ids count from 1; 0 is none.
        if anchor != 0 {
            self.anchored.insert(anchor, size);
        }
        if let Some((_, parent)) = self.open.last_mut() {
            *parent = parent.saturating_add(size);
        }
    }
}

/// The text of `span`, whose marks count characters.
fn text_at(text: &str, span: &Span) -> String {
    let (start, end) = (span.start.index(), span.end.index());
    text.chars().skip(start).take(end - start).collect()
}

enum Frame {
    Mapping {
        path: KeyPath,
        pending_key: Option<(String, Mark)>,
        /// The keys of this map so far, each where it was first given. Each map has
        /// its own: a path may repeat (`logs:` given twice), a map's keys may not.
        keys: HashMap<String, Mark>,
    },
    Sequence {
        path: KeyPath,
        next_index: usize,
    },
}

impl SpanIndex {
    /// Indexes `text`, up to the end or to the first reason to refuse it.
    pub fn build(text: &str) -> SpanIndex {
        let mut index = SpanIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut documents = 0;
        let mut expansion = Expansion::default();
        for item in Parser::new_from_str(text) {
            let (event, span) = match item {
                Ok(item) => item,
                Err(err) => {
                    index.refusal = Some(Refusal::from_scan(&err));
                    break;
                }
            };
            let here = Mark {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..) => {
                    let opens = matches!(event, Event::MappingStart(..) | Event::SequenceStart(..));
                    if opens && stack.len() == MAX_DEPTH {
                        index.refusal = Some(Refusal::TooDeep { at: here });
                        break;
                    }
                    if !expansion.node(&event) {
                        let alias = text_at(text, &span);
                        index.refusal = Some(Refusal::AliasExpansion { at: here, alias });
                        break;
                    }
                    let Some(path) = index.place_node(&mut stack, &event, here) else {
                        // A key. Scalar keys were remembered; a complex key's insides are
                        // walked under a placeholder so the frames stay balanced.
                        if opens {
                            stack.push(frame_for(&event, KeyPath::root().key("?")));
                        }
                        continue;
                    };
                    if opens {
                        stack.push(frame_for(&event, path));
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    expansion.close();
                }
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        index.refusal = Some(Refusal::SecondDocument { at: here });
                        break;
                    }
                }
                _ => {}
            }
        }
        index
    }

    /// Records a node that begins at `here`; returns its path, or `None` if the node is
    /// a mapping key rather than a value.
    fn place_node(&mut self, stack: &mut [Frame], event: &Event, here: Mark) -> Option<KeyPath> {
        let (path, key) = match stack.last_mut() {
            None => (KeyPath::root(), here),
            Some(Frame::Sequence { path, next_index }) => {
                let item = path.index(*next_index);
                *next_index += 1;
                (item, here)
            }
            Some(Frame::Mapping {
                path,
                pending_key,
                keys,
            }) => match pending_key.take() {
                Some((name, key_mark)) => (path.key(name), key_mark),
                None => {
                    let name = match event {
                        Event::Scalar(value, ..) => {
                            let name = value.to_string();
                            match keys.get(&name) {
                                Some(first) => {
                                    self.duplicates.push((path.key(&name), here, *first));
                                }
                                None => {
                                    keys.insert(name.clone(), here);
                                }
                            }
                            name
                        }
                        // A complex key (a map or list as a key) has no name to compare.
                        _ => "?".to_owned(),
                    };
                    *pending_key = Some((name, here));
                    return None;
                }
            },
        };
        // A path seen before (inside a repeated key) keeps its first place.
        self.entries
            .entry(path.clone())
            .or_insert(Entry { key, value: here });
        Some(path)
    }

    /// Why the file cannot hold a configuration, if it cannot; the index then covers
    /// only what comes before the problem.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_ref()
    }

    /// Keys written twice in the same mapping (which YAML forbids): each path with the
    /// place of the repeat and of the first one.
    pub fn duplicates(&self) -> impl Iterator<Item = &(KeyPath, Mark, Mark)> {
        self.duplicates.iter()
    }

    /// Where the value at `path` begins.
    pub fn value_mark(&self, path: &KeyPath) -> Mark {
        self.lookup(path).map_or(Mark::START, |entry| entry.value)
    }

    /// Where the key at `path` begins (for a list item, the item).
    pub fn key_mark(&self, path: &KeyPath) -> Mark {
        self.lookup(path).map_or(Mark::START, |entry| entry.key)
    }

    fn lookup(&self, path: &KeyPath) -> Option<Entry> {
        let mut path = path.clone();
        loop {
            if let Some(entry) = self.entries.get(&path) {
                return Some(*entry);
            }
            path = path.parent()?;
        }
    }
}

fn frame_for(event: &Event, path: KeyPath) -> Frame {
    match event {
        Event::SequenceStart(..) => Frame::Sequence {
            path,
            next_index: 0,
        },
        _ => Frame::Mapping {
            path,
            pending_key: None,
            keys: HashMap::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
logs:
  files:
    - service: a
      path: /x.log
  patterns:
    - name: oom
      severity: FATAL
sinks: {out: {type: console}}
";

    fn path(keys: &[&str]) -> KeyPath {
        keys.iter()
            .fold(KeyPath::root(), |path, key| match key.parse::<usize>() {
                Ok(index) => path.index(index),
                Err(_) => path.key(*key),
            })
    }

    #[test]
    fn keys_and_values_have_their_places() {
        let index = SpanIndex::build(TEXT);
        assert_eq!(
            index.key_mark(&path(&["logs", "patterns", "0", "severity"])),
            Mark { line: 7, column: 7 }
        );
        assert_eq!(
            index.value_mark(&path(&["logs", "patterns", "0", "severity"])),
            Mark {
                line: 7,
                column: 17
            }
        );
        assert_eq!(
            index.key_mark(&path(&["logs", "files", "0"])),
            Mark { line: 3, column: 7 }
        );
        assert_eq!(
            index.value_mark(&path(&["logs", "files", "0", "path"])),
            Mark {
                line: 4,
                column: 13
            }
        );
        assert_eq!(
            index.key_mark(&path(&["sinks", "out", "type"])),
            Mark {
                line: 8,
                column: 15
            }
        );
    }

    #[test]
    fn keys_given_twice_are_found() {
        let index = SpanIndex::build("a:\n  b: {x: 1}\n  c: 2\n  b: {x: 3}\n");
        let found: Vec<_> = index.duplicates().collect();
        assert_eq!(
            found,
            [&(
                path(&["a", "b"]),
                Mark { line: 4, column: 3 },
                Mark { line: 2, column: 3 }
            )]
        );
    }

    #[test]
    fn keys_are_unique_per_map_even_inside_a_repeated_key() {
        let index = SpanIndex::build("a:\n  b: 1\na:\n  b: 2\n  b: 3\nc: [{d: 1}, {d: 2}]\n");
        let found: Vec<_> = index
            .duplicates()
            .map(|(path, again, first)| (path.to_string(), again.line, first.line))
            .collect();
        assert_eq!(found, [("a".to_owned(), 3, 1), ("a.b".to_owned(), 5, 4)]);
        // Complex keys have no name: they are not compared.
        let complex = SpanIndex::build("? [a]\n: 1\n? [b]\n: 2\n");
        assert_eq!(complex.duplicates().count(), 0);
    }

    #[test]
    fn nesting_past_the_limit_is_refused_where_it_passes() {
        // Line i opens the i-th map (the last key's value is empty).
        let maps = |depth: usize| -> String {
            (0..depth)
                .map(|i| format!("{}a:\n", " ".repeat(i)))
                .collect()
        };
        assert_eq!(SpanIndex::build(&maps(MAX_DEPTH)).refusal(), None);
        assert_eq!(
            SpanIndex::build(&maps(MAX_DEPTH + 1)).refusal(),
            Some(&Refusal::TooDeep {
                at: Mark {
                    line: 65,
                    column: 65
                }
            })
        );
        // Deep flow nesting may end at the parser's own limit, further on the line.
        let refusal = SpanIndex::build(&"[".repeat(100_000)).refusal().cloned();
        assert!(
            matches!(refusal, Some(Refusal::TooDeep { at }) if at.line == 1),
            "{refusal:?}"
        );
    }

    #[test]
    fn aliases_may_share_values_but_not_multiply_the_file() {
        // 2,000 checks sharing one retry policy.
        let shared = format!(
            "defaults: &retry {{max_attempts: 3, initial_delay: 200ms}}\nchecks:\n{}",
            "  - {name: c, retry: *retry}\n".repeat(2000)
        );
        assert_eq!(SpanIndex::build(&shared).refusal(), None);
        // 15 KB that would expand to 9 million values: one list of 3,000 values,
        // aliased 3,000 times (serde_norway's own limit lets this through).
        let wide = format!(
            "a: &a [{}]\nb: [{}]\n",
            ["x"; 3000].join(","),
            ["*a"; 3000].join(",")
        );
        let refusal = SpanIndex::build(&wide).refusal().cloned();
        assert!(
            matches!(&refusal, Some(Refusal::AliasExpansion { at, alias }) if at.line == 2 && alias == "*a"),
            "{refusal:?}"
        );
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_known_parent() {
        let index = SpanIndex::build(TEXT);
        assert_eq!(
            index.key_mark(&path(&["logs", "patterns", "0", "nope"])),
            Mark { line: 6, column: 7 }
        );
        assert_eq!(
            index.key_mark(&path(&["nothing"])),
            Mark { line: 1, column: 1 }
        );
    }
}
