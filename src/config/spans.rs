//! Line and column of every key and value of a YAML file.
//!
//! serde decodes into types and forgets where things were; this index remembers. It
//! is built from the parse events of `saphyr-parser`, which carry spans, so that an
//! error found long after decoding (a bad regex, an unknown input id) can still point
//! at its line. Lookups of a path that is not in the index (a value reached through an
//! alias, say) fall back to the nearest enclosing path that is.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

use super::diagnostics::KeyPath;

/// A place in the file: line and column, both counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

impl Mark {
    const START: Mark = Mark { line: 1, column: 1 };
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
}

enum Frame {
    Mapping {
        path: KeyPath,
        pending_key: Option<(String, Mark)>,
    },
    Sequence {
        path: KeyPath,
        next_index: usize,
    },
}

impl SpanIndex {
    /// Indexes `text`. A file the parser rejects gives an empty index: its error is
    /// reported by the decoder, with its own position.
    pub fn build(text: &str) -> SpanIndex {
        let mut index = SpanIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else {
                return SpanIndex::default();
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
            Some(Frame::Mapping { path, pending_key }) => match pending_key.take() {
                Some((name, key_mark)) => (path.key(name), key_mark),
                None => {
                    let name = match event {
                        Event::Scalar(value, ..) => value.to_string(),
                        _ => "?".to_owned(),
                    };
                    *pending_key = Some((name, here));
                    return None;
                }
            },
        };
        if let Some(first) = self.entries.get(&path) {
            self.duplicates.push((path.clone(), key, first.key));
        } else {
            self.entries
                .insert(path.clone(), Entry { key, value: here });
        }
        Some(path)
    }

    /// Keys written twice in the same mapping (which YAML forbids): each path with the
    /// place of the repeat and of the first one.
    pub fn duplicates(&self) -> impl Iterator<Item = &(KeyPath, Mark, Mark)> {
        // Inside a repeated key everything repeats too; only the key itself is news.
        let repeated = |path: &KeyPath| {
            self.duplicates
                .iter()
                .any(|(other, ..)| path != other && path.starts_with(other))
        };
        self.duplicates
            .iter()
            .filter(move |(path, ..)| !repeated(path))
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
