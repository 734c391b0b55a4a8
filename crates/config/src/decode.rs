//! Turns a file's text into a typed value while collecting *every* type error, not just the
//! first, and every key no field takes.
//!
//! serde stops at the first error. So the text is parsed once into a TOML table, then decoded
//! repeatedly: each failed attempt names the offending key (serde_path_to_error), that error is
//! recorded, the key is removed from the table (its field then takes its default), and the
//! decode is tried again. Unknown keys are collected from the attempt that succeeds
//! (serde_ignored). Semantic checks run afterwards, on the decoded value.

use serde::de::DeserializeOwned;

use crate::error::{ConfigError, ConfigErrors};
use crate::path::{KeyPath, Segment};

/// More attempts than any real file needs; stops a pathological file from looping long.
const MAX_ATTEMPTS: usize = 256;

/// A decoded value, the type errors met on the way, and the keys nothing took.
pub(crate) struct Decoded<T> {
    pub value: T,
    pub errors: Vec<ConfigError>,
    pub unknown_keys: Vec<KeyPath>,
}

/// Decodes `text`. A TOML syntax error is final (nothing else can be read); type errors are
/// collected and the value is still produced, with defaults where values were refused.
pub(crate) fn decode<T: DeserializeOwned>(text: &str) -> Result<Decoded<T>, ConfigErrors> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|error| ConfigErrors::single(syntax_error(text, &error)))?;
    let mut errors = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let mut unknown_keys = Vec::new();
        let attempt = {
            let value = toml::Value::Table(table.clone());
            let mut record = |path: serde_ignored::Path| unknown_keys.push(ignored_path(&path));
            let deserializer = serde_ignored::Deserializer::new(value, &mut record);
            serde_path_to_error::deserialize::<_, T>(deserializer)
        };
        match attempt {
            Ok(value) => {
                return Ok(Decoded {
                    value,
                    errors,
                    unknown_keys,
                })
            }
            Err(error) => {
                let path = error_path(error.path());
                // `message()` leaves out the "in `key`" suffix toml adds: the path says it already.
                let reason = error.inner().message().trim().to_owned();
                errors.push(ConfigError::invalid(&path, reason));
                if !remove(&mut table, path.segments()) {
                    // Nothing left to remove: the file as a whole has the wrong shape.
                    return Err(ConfigErrors {
                        errors,
                        warnings: Vec::new(),
                    });
                }
            }
        }
    }
    Err(ConfigErrors {
        errors,
        warnings: Vec::new(),
    })
}

fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let offset = error.span().map(|span| span.start).unwrap_or(0).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    ConfigError::Syntax {
        line,
        column,
        message: error.message().trim().to_owned(),
    }
}

fn error_path(path: &serde_path_to_error::Path) -> KeyPath {
    let mut key_path = KeyPath::root();
    for segment in path.iter() {
        key_path = match segment {
            serde_path_to_error::Segment::Seq { index } => key_path.index(*index),
            serde_path_to_error::Segment::Map { key } => key_path.key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => key_path.key(variant.clone()),
            serde_path_to_error::Segment::Unknown => break,
        };
    }
    key_path
}

fn ignored_path(path: &serde_ignored::Path) -> KeyPath {
    match path {
        serde_ignored::Path::Root => KeyPath::root(),
        serde_ignored::Path::Seq { parent, index } => ignored_path(parent).index(*index),
        serde_ignored::Path::Map { parent, key } => ignored_path(parent).key(key.clone()),
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// Removes the key an error points at. A path ending inside an array removes the whole array:
/// dropping one element would shift the indices later errors are reported with.
fn remove(table: &mut toml::Table, path: &[Segment]) -> bool {
    match path.iter().rposition(|segment| matches!(segment, Segment::Key(_))) {
        Some(last_key) => remove_in_table(table, &path[..=last_key]),
        None => false,
    }
}

fn remove_in_table(table: &mut toml::Table, path: &[Segment]) -> bool {
    match path {
        [Segment::Key(key)] => table.remove(key).is_some(),
        [Segment::Key(key), rest @ ..] => match table.get_mut(key) {
            Some(value) => remove_in_value(value, rest),
            None => false,
        },
        _ => false,
    }
}

fn remove_in_value(value: &mut toml::Value, path: &[Segment]) -> bool {
    match (value, path.first()) {
        (toml::Value::Table(table), Some(Segment::Key(_))) => remove_in_table(table, path),
        (toml::Value::Array(items), Some(Segment::Index(index))) => match items.get_mut(*index) {
            Some(item) => remove_in_value(item, &path[1..]),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Debug, Default)]
    struct Inner {
        #[serde(default)]
        limit: u32,
        #[serde(default)]
        name: String,
    }

    #[derive(Deserialize, Debug)]
    struct Outer {
        #[serde(default)]
        concurrent: u32,
        #[serde(default)]
        runners: Vec<Inner>,
    }

    #[test]
    fn collects_every_type_error_and_keeps_decoding() {
        let text = "concurrent = \"four\"\n[[runners]]\nlimit = \"x\"\nname = 1\n[[runners]]\nlimit = 2\n";
        let decoded = decode::<Outer>(text).unwrap();
        let reported: Vec<String> = decoded.errors.iter().map(|error| error.to_string()).collect();
        assert_eq!(reported.len(), 3, "{reported:?}");
        assert!(
            reported[0].starts_with("concurrent: invalid type: string \"four\""),
            "{reported:?}"
        );
        assert!(
            reported.iter().any(|error| error.starts_with("runners[0].limit: ")),
            "{reported:?}"
        );
        assert!(
            reported.iter().any(|error| error.starts_with("runners[0].name: ")),
            "{reported:?}"
        );
        assert_eq!(
            decoded.value.concurrent, 0,
            "the refused value falls back to its default"
        );
        assert_eq!(decoded.value.runners.len(), 2);
        assert_eq!(decoded.value.runners[1].limit, 2);
        assert_eq!(decoded.value.runners[0].name, "");
    }

    #[test]
    fn reports_unknown_keys_with_their_path() {
        let decoded = decode::<Outer>("colour = 1\n[[runners]]\nlimt = 2\n[runners.extra]\na = 1\n").unwrap();
        let unknown: Vec<String> = decoded.unknown_keys.iter().map(ToString::to_string).collect();
        // Keys come in the table's order, which is alphabetical within each table.
        assert_eq!(unknown, ["colour", "runners[0].extra", "runners[0].limt"]);
        assert!(decoded.errors.is_empty());
    }

    #[test]
    fn a_syntax_error_is_final_and_located() {
        let errors = decode::<Outer>("concurrent = 1\nname = %(x)s\n").err().unwrap();
        let text = errors.to_string();
        assert!(text.starts_with("line 2, column 8: "), "{text}");
    }

    #[test]
    fn an_array_element_of_the_wrong_type_drops_the_array() {
        let decoded = decode::<Outer>("runners = [1, 2]").unwrap();
        assert_eq!(decoded.errors.len(), 1);
        assert!(
            decoded.errors[0].to_string().starts_with("runners[0]: invalid type"),
            "{}",
            decoded.errors[0]
        );
        assert!(decoded.value.runners.is_empty());
    }
}
