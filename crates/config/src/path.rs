//! [`KeyPath`]: where a value sits in a configuration file, written the way an operator finds
//! it again (`runners[0].kubernetes.cpu_limit`, `runners[0].kubernetes.node_tolerations."a=b"`).
//!
//! Every error and warning carries one, whether it came from serde (type errors, unknown keys)
//! or from the validation pass.

use std::fmt;

/// One step into a value: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the root of a file to one of its values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPath {
    segments: Vec<Segment>,
}

impl KeyPath {
    /// The root of the file (an empty path).
    pub fn root() -> Self {
        Self::default()
    }

    /// This path, one table key deeper.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut segments = self.segments.clone();
        segments.push(Segment::Key(key.into()));
        Self { segments }
    }

    /// This path, one array element deeper.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.segments.clone();
        segments.push(Segment::Index(index));
        Self { segments }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The last table key of the path, if it ends with one.
    pub fn last_key(&self) -> Option<&str> {
        match self.segments.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// The path without its last segment (the root stays the root).
    pub fn parent(&self) -> Self {
        let mut segments = self.segments.clone();
        segments.pop();
        Self { segments }
    }

    /// The table path with array indices left out (`runners.kubernetes.volumes.pvc`): the
    /// shape of a TOML table header, used to look up which keys a table takes.
    pub fn table_shape(&self) -> String {
        let keys: Vec<&str> = self
            .segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Key(key) => Some(key.as_str()),
                Segment::Index(_) => None,
            })
            .collect();
        keys.join(".")
    }
}

/// Keys that TOML writes bare; any other key is quoted so the path stays unambiguous.
fn is_bare_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("(file)");
        }
        for (position, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_a_toml_path() {
        let path = KeyPath::root()
            .key("runners")
            .index(0)
            .key("kubernetes")
            .key("cpu_limit");
        assert_eq!(path.to_string(), "runners[0].kubernetes.cpu_limit");
    }

    #[test]
    fn quotes_keys_that_are_not_bare() {
        let path = KeyPath::root()
            .key("node_tolerations")
            .key("node-role.kubernetes.io/master");
        assert_eq!(path.to_string(), "node_tolerations.\"node-role.kubernetes.io/master\"");
    }

    #[test]
    fn table_shape_drops_indices() {
        let path = KeyPath::root()
            .key("runners")
            .index(3)
            .key("kubernetes")
            .key("volumes")
            .key("pvc")
            .index(1);
        assert_eq!(path.table_shape(), "runners.kubernetes.volumes.pvc");
        assert_eq!(path.parent().last_key(), Some("pvc"));
    }

    #[test]
    fn root_has_a_name() {
        assert_eq!(KeyPath::root().to_string(), "(file)");
    }
}
