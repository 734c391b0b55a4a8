//! Serde helpers that make the payload types tolerant of what GitLab actually sends.
//!
//! GitLab's entities send `null` for absent arrays and strings (`"artifacts": null`, the mock's
//! `"when": null`), accept one string where a list is documented (`pull_policy`), and a few ids
//! as strings or numbers depending on the version. A job we cannot parse is a job GitLab
//! believes is running on us, so parsing errs on the side of accepting.

use serde::{Deserialize, Deserializer};

/// Deserialises `null` as `T::default()`; use with `#[serde(default)]` for missing fields.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Deserialises a string, a list of strings, or `null` as a list.
pub(crate) fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// Deserialises a string or a number (or `null`) as an optional string.
pub(crate) fn string_or_number<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StringOrNumber {
        String(String),
        Number(serde_json::Number),
    }
    Ok(match Option::<StringOrNumber>::deserialize(deserializer)? {
        None => None,
        Some(StringOrNumber::String(s)) => Some(s),
        Some(StringOrNumber::Number(n)) => Some(n.to_string()),
    })
}

/// `skip_serializing_if` for flags GitLab only sends when true.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Probe {
        #[serde(deserialize_with = "nullable")]
        list: Vec<u8>,
        #[serde(deserialize_with = "one_or_many")]
        many: Vec<String>,
        #[serde(deserialize_with = "string_or_number")]
        id: Option<String>,
    }

    #[test]
    fn null_missing_and_values() {
        let p: Probe = serde_json::from_str(r#"{"list": null, "many": null, "id": null}"#).unwrap();
        assert!(p.list.is_empty() && p.many.is_empty() && p.id.is_none());
        let p: Probe = serde_json::from_str("{}").unwrap();
        assert!(p.list.is_empty() && p.many.is_empty() && p.id.is_none());
        let p: Probe = serde_json::from_str(r#"{"list": [1], "many": "always", "id": 7}"#).unwrap();
        assert_eq!(p.list, vec![1]);
        assert_eq!(p.many, vec!["always"]);
        assert_eq!(p.id.as_deref(), Some("7"));
        let p: Probe = serde_json::from_str(r#"{"many": ["a", "b"], "id": "x"}"#).unwrap();
        assert_eq!(p.many, vec!["a", "b"]);
        assert_eq!(p.id.as_deref(), Some("x"));
    }
}
