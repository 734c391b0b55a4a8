//! Hints for unknown keys, so a warning says what was probably meant:
//! - a misspelling or a markdown-mangled name (`podsecuritycontext`) → "did you mean `pod_security_context`?";
//! - a key of another table (`dns_config` at the top level, S3 keys directly under
//!   `[runners.cache]`) → which table takes it, i.e. a table header is missing or misplaced;
//! - a setting of the official runner that Flotilla does not use (`[runners.docker]`, `referees`).
//!
//! The key lists come from the serde derives themselves ([`struct_fields`]), so they cannot
//! drift from the types.

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::path::KeyPath;

/// A table a file can hold: its shape (`runners.kubernetes`), its header as an operator writes
/// it, and the keys it takes.
pub(crate) struct TableKeys {
    pub shape: &'static str,
    pub header: &'static str,
    pub keys: &'static [&'static str],
}

/// The key names serde's derive gives a struct (`FIELDS`), read by asking it to deserialize
/// from a deserializer that only records them.
pub(crate) fn struct_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut recorder = FieldRecorder(&[]);
    // The recorder always answers with an error once it has the names; that is expected.
    let _ = T::deserialize(&mut recorder);
    recorder.0
}

struct FieldRecorder(&'static [&'static str]);

impl<'de> Deserializer<'de> for &mut FieldRecorder {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// Sections of the official runner for other executors or features Flotilla does not have.
const OTHER_EXECUTOR_SECTIONS: &[&str] = &[
    "docker",
    "ssh",
    "parallels",
    "virtualbox",
    "machine",
    "custom",
    "instance",
    "autoscaler",
];
const UNUSED_RUNNER_KEYS: &[&str] = &[
    "referees",
    "monitoring",
    "experimental",
    "step_runner_image",
    "use_slot_cgroups",
    "slot_cgroup_template",
    "proxy_exec",
];
const UNUSED_GLOBAL_KEYS: &[&str] = &["machine", "experimental"];

/// The hint for an unknown key at `path`, given the tables of its file.
pub(crate) fn hint(path: &KeyPath, tables: &[TableKeys]) -> Option<String> {
    let key = path.last_key()?;
    let parent_shape = path.parent().table_shape();
    if parent_shape == "runners" && OTHER_EXECUTOR_SECTIONS.contains(&key) {
        return Some(format!(
            "settings of the {key} executor; Flotilla runs the kubernetes executor only"
        ));
    }
    if (parent_shape == "runners" && UNUSED_RUNNER_KEYS.contains(&key))
        || (parent_shape.is_empty() && UNUSED_GLOBAL_KEYS.contains(&key))
    {
        return Some("a GitLab Runner setting Flotilla does not use".to_owned());
    }
    if let Some(table) = tables.iter().find(|table| table.shape == parent_shape) {
        if let Some(close) = closest(key, table.keys) {
            return Some(format!("did you mean `{close}`?"));
        }
    }
    let elsewhere: Vec<&str> = tables
        .iter()
        .filter(|table| table.shape != parent_shape && table.keys.contains(&key))
        .map(|table| table.header)
        .take(3)
        .collect();
    if elsewhere.is_empty() {
        return tables
            .iter()
            .filter(|table| table.shape != parent_shape)
            .find_map(|table| {
                closest(key, table.keys).map(|close| format!("did you mean `{close}`, a key of {}?", table.header))
            });
    }
    let mut text = format!(
        "`{key}` is a key of {}; is a table header missing or misplaced?",
        elsewhere.join(", ")
    );
    if parent_shape == "runners.cache" {
        text.push_str(" (GitLab Runner 12.0 moved these keys into [runners.cache.s3])");
    }
    Some(text)
}

/// A key of `candidates` that `key` is probably a misspelling of.
fn closest(key: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let normalized = normalize(key);
    if let Some(exact) = candidates.iter().find(|candidate| normalize(candidate) == normalized) {
        return Some(exact);
    }
    if key.len() < 4 {
        return None;
    }
    candidates
        .iter()
        .map(|candidate| (edit_distance(&normalized, &normalize(candidate)), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Case, `_` and `-` do not distinguish keys for a human (markdown often eats underscores).
fn normalize(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (row, left_char) in left.chars().enumerate() {
        let mut current = vec![row + 1];
        for (column, right_char) in right.iter().enumerate() {
            let substitution = previous[column] + usize::from(left_char != *right_char);
            current.push(substitution.min(previous[column + 1] + 1).min(current[column] + 1));
        }
        previous = current;
    }
    previous[right.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        pod_security_context: u8,
        #[serde(rename = "Type")]
        cache_type: u8,
    }

    fn tables() -> Vec<TableKeys> {
        vec![
            TableKeys {
                shape: "",
                header: "(top level)",
                keys: &["concurrent", "runners"],
            },
            TableKeys {
                shape: "runners.kubernetes",
                header: "[runners.kubernetes]",
                keys: &["dns_config", "pod_security_context", "namespace"],
            },
            TableKeys {
                shape: "runners.cache.s3",
                header: "[runners.cache.s3]",
                keys: &["BucketName"],
            },
        ]
    }

    #[test]
    fn records_serde_field_names() {
        assert_eq!(struct_fields::<Sample>(), ["pod_security_context", "Type"]);
    }

    #[test]
    fn mangled_and_misspelled_keys() {
        let kubernetes = KeyPath::root().key("runners").index(0).key("kubernetes");
        assert_eq!(
            hint(&kubernetes.key("podsecuritycontext"), &tables()).unwrap(),
            "did you mean `pod_security_context`?"
        );
        assert_eq!(
            hint(&kubernetes.key("namespase"), &tables()).unwrap(),
            "did you mean `namespace`?"
        );
        assert_eq!(hint(&kubernetes.key("zzz"), &tables()), None);
        let runner = KeyPath::root().key("runners").index(0);
        assert_eq!(
            hint(&runner.key("namespase"), &tables()).unwrap(),
            "did you mean `namespace`, a key of [runners.kubernetes]?"
        );
    }

    #[test]
    fn keys_of_another_table() {
        let hint_text = hint(&KeyPath::root().key("dns_config"), &tables()).unwrap();
        assert_eq!(
            hint_text,
            "`dns_config` is a key of [runners.kubernetes]; is a table header missing or misplaced?"
        );
        let cache_key = KeyPath::root().key("runners").index(0).key("cache").key("BucketName");
        assert!(hint(&cache_key, &tables())
            .unwrap()
            .ends_with("(GitLab Runner 12.0 moved these keys into [runners.cache.s3])"));
    }

    #[test]
    fn official_settings_flotilla_does_not_use() {
        let runner = KeyPath::root().key("runners").index(0);
        assert_eq!(
            hint(&runner.key("docker"), &tables()).unwrap(),
            "settings of the docker executor; Flotilla runs the kubernetes executor only"
        );
        assert_eq!(
            hint(&runner.key("referees"), &tables()).unwrap(),
            "a GitLab Runner setting Flotilla does not use"
        );
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(normalize("Pod_Security-Context"), "podsecuritycontext");
    }
}
