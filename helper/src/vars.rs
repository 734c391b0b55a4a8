//! Job variables as the steps (and git) see them.
//!
//! Rules (those of the official runner unless noted):
//! - Duplicated keys: the last one wins.
//! - Values of non-`raw` variables are expanded **once, by the helper, against the job's own
//!   variables** (`$VAR`, `${VAR}`; `$$` is a literal `$`; an unknown name expands to the empty
//!   string, as in the official runner — the container's environment is *not* consulted). Values
//!   referenced this way are the referenced variables' unexpanded values, so expansion is one level
//!   deep. `raw` values are taken literally.
//! - `file` variables: the (expanded unless raw) value is written to `RUN/tmp/<KEY>` and the
//!   variable holds that path. Referencing a file variable from another variable yields the path
//!   (the official runner yields the content there; the path is what the shell sees, so we use it).
//! - Keys that are not shell identifiers (`[A-Za-z_][A-Za-z0-9_]*`) cannot be exported: skipped.
//! - Values are exported single-quoted, so the shell never expands them again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use flotilla_expand::expand;

use crate::job::Variable;

/// A variable ready to be exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub key: String,
    /// The exported value (for file variables: the file's path).
    pub value: String,
    /// For file variables: the file and what it holds.
    pub file: Option<(PathBuf, String)>,
}

/// Whether `key` can be exported by a POSIX shell.
pub fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Resolves `variables` (job variables, then runner-provided ones, in order) as described in the
/// module doc. File variables go to `tmp_dir`. Returns the resolved list (in order, duplicates kept:
/// exporting them in order gives last-wins) and the keys skipped as invalid.
pub fn resolve(variables: &[Variable], tmp_dir: &Path) -> (Vec<Resolved>, Vec<String>) {
    let mut skipped = Vec::new();
    let valid: Vec<&Variable> = variables
        .iter()
        .filter(|v| {
            let ok = is_valid_key(&v.key);
            if !ok && !skipped.contains(&v.key) {
                skipped.push(v.key.clone());
            }
            ok
        })
        .collect();

    // What `$KEY` refers to: the last definition; file variables refer to their path.
    let mut lookup: HashMap<&str, String> = HashMap::new();
    for v in &valid {
        let value = if v.file {
            tmp_dir.join(&v.key).to_string_lossy().into_owned()
        } else {
            v.value.clone()
        };
        lookup.insert(v.key.as_str(), value);
    }
    let get = |name: &str| -> String {
        match name {
            "$" => "$".to_string(),
            _ => lookup.get(name).cloned().unwrap_or_default(),
        }
    };

    let resolved = valid
        .into_iter()
        .map(|v| {
            let value = if v.raw { v.value.clone() } else { expand(&v.value, &get) };
            if v.file {
                let path = tmp_dir.join(&v.key);
                Resolved {
                    key: v.key.clone(),
                    value: path.to_string_lossy().into_owned(),
                    file: Some((path, value)),
                }
            } else {
                Resolved {
                    key: v.key.clone(),
                    value,
                    file: None,
                }
            }
        })
        .collect();
    (resolved, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(key: &str, value: &str) -> Variable {
        Variable {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }
    }

    #[test]
    fn resolves_raw_file_duplicates_and_invalid_keys() {
        let mut file = var("CERT", "----$A----");
        file.file = true;
        let mut raw = var("RAW", "$A");
        raw.raw = true;
        let vars = vec![
            var("A", "first"),
            var("A", "one"),
            var("B", "$A-${CERT}"),
            raw,
            file,
            var("bad-key", "x"),
        ];
        let (resolved, skipped) = resolve(&vars, Path::new("/run/tmp"));
        assert_eq!(skipped, vec!["bad-key".to_string()]);
        let get = |k: &str| resolved.iter().rev().find(|r| r.key == k).unwrap().clone();
        assert_eq!(get("A").value, "one");
        assert_eq!(get("B").value, "one-/run/tmp/CERT");
        assert_eq!(get("RAW").value, "$A");
        let cert = get("CERT");
        assert_eq!(cert.value, "/run/tmp/CERT");
        assert_eq!(
            cert.file,
            Some((PathBuf::from("/run/tmp/CERT"), "----one----".to_string()))
        );
    }
}
