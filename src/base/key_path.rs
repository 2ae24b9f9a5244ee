//! A place in a configuration file, named by keys and list indexes from the top
//! (`logs.patterns[0].severity`). The YAML index ([`spans`](super::spans)) maps it to a
//! line and column, [`diagnostics`](super::diagnostics) attaches problems to it, and
//! decoders build it as they descend; it is its own module so that those two do not
//! lean on each other.

use std::fmt;

use super::text::Escaped;

/// One step of a [`KeyPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A place in a configuration file, by keys and list indexes from the top.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    /// The top of the file.
    pub fn root() -> KeyPath {
        KeyPath::default()
    }

    /// The path of `key` inside this mapping.
    pub fn key(&self, key: impl Into<String>) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.into()));
        path
    }

    /// The path of item `index` of this list.
    pub fn index(&self, index: usize) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    /// The path one step up, or `None` at the top.
    pub fn parent(&self) -> Option<KeyPath> {
        let (_, rest) = self.0.split_last()?;
        Some(KeyPath(rest.to_vec()))
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last step, if it is a key: a node's id in `sources.<id>`.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// This path followed by a path serde reported inside the value found here.
    pub(crate) fn join_serde(&self, inner: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment as S;
        let mut path = self.clone();
        for segment in inner.iter() {
            match segment {
                S::Seq { index } => path.0.push(Segment::Index(*index)),
                S::Map { key } => path.0.push(Segment::Key(key.clone())),
                S::Enum { .. } | S::Unknown => {}
            }
        }
        path
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{}", Escaped(key))?,
                Segment::Key(key) => write!(f, ".{}", Escaped(key))?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_read_like_yaml() {
        let path = KeyPath::root()
            .key("logs")
            .key("patterns")
            .index(2)
            .key("severity");
        assert_eq!(path.to_string(), "logs.patterns[2].severity");
        assert_eq!(path.parent().unwrap().to_string(), "logs.patterns[2]");
    }
}
