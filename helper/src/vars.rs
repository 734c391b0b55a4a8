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

fn is_shell_special(b: u8) -> bool {
    matches!(b, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9')
}

fn is_alnum(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// The name after a `$` and how many bytes it spans (Go's `os.Expand` rules).
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_shell_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        for i in 1..b.len() {
            if b[i] == b'}' {
                if i == 1 {
                    return ("", 2); // "${}": bad syntax, eaten
                }
                return (&s[1..i], i + 1);
            }
        }
        return ("", 1); // "${" unterminated: the "${" is eaten
    }
    if is_shell_special(b[0]) {
        return (&s[..1], 1);
    }
    let n = b.iter().take_while(|b| is_alnum(**b)).count();
    (&s[..n], n)
}

/// Expands `$NAME`, `${NAME}` and `$$` in `value` with `get` (Go `os.Expand` semantics, as the
/// official runner; special names other than `$` expand to nothing).
pub fn expand(value: &str, get: &dyn Fn(&str) -> String) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut i = 0; // start of the not yet copied text
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&value[i..j]);
            let (name, w) = shell_name(&value[j + 1..]);
            if name.is_empty() && w > 0 {
                // invalid syntax: eaten
            } else if name.is_empty() {
                out.push('$');
            } else if name.len() == 1 && is_shell_special(name.as_bytes()[0]) && name != "$" {
                // $1, $?, …: nothing
            } else {
                out.push_str(&get(name));
            }
            j += w + 1;
            i = j;
        } else {
            j += 1;
        }
    }
    out.push_str(&value[i..]);
    out
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
    fn expands_like_the_official_runner() {
        let get = |n: &str| match n {
            "A" => "aa".to_string(),
            "$" => "$".to_string(),
            _ => String::new(),
        };
        assert_eq!(expand("x$A-${A}y", &get), "xaa-aay");
        assert_eq!(expand("cost: $$5 $", &get), "cost: $5 $");
        assert_eq!(expand("$UNKNOWN/bin", &get), "/bin");
        assert_eq!(expand("a$1b ${}c ${A", &get), "ab c A");
        assert_eq!(expand("100% $ sure", &get), "100% $ sure");
        assert_eq!(expand("é$A€", &get), "éaa€");
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
