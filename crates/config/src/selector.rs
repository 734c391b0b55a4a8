//! [`ClusterSelector`]: which clusters a job may run on, as Kubernetes label selectors are
//! written (`arch=arm64,region!=us`). A runner entry's `cluster_selector` and a job's
//! `FLOTILLA_CLUSTER_SELECTOR` variable both use it; the coordinator sends a job only to a
//! worker whose labels satisfy every requirement. Besides its configured labels, a worker
//! answers to `cluster` (its cluster name) and `pool` unless it sets those labels itself.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` (also `key==value`).
    Equals(String, String),
    /// `key!=value`: the label is absent or different.
    NotEquals(String, String),
    /// `key`: the label is present.
    Exists(String),
    /// `!key`: the label is absent.
    Absent(String),
}

/// Requirements that must all hold; the empty selector matches every worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterSelector {
    requirements: Vec<Requirement>,
    text: String,
}

impl ClusterSelector {
    /// Parses `key=value,key!=value,key,!key` (spaces around items are ignored).
    pub fn parse(text: &str) -> Result<ClusterSelector, String> {
        let mut requirements = Vec::new();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let requirement = if let Some((key, value)) = item.split_once("!=") {
                Requirement::NotEquals(label_key(key)?, label_value(value)?)
            } else if let Some((key, value)) = item.split_once("==").or_else(|| item.split_once('=')) {
                Requirement::Equals(label_key(key)?, label_value(value)?)
            } else if let Some(key) = item.strip_prefix('!') {
                Requirement::Absent(label_key(key)?)
            } else {
                Requirement::Exists(label_key(item)?)
            };
            requirements.push(requirement);
        }
        Ok(ClusterSelector {
            requirements,
            text: text.trim().to_owned(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => labels.get(key) == Some(value),
            Requirement::NotEquals(key, value) => labels.get(key) != Some(value),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::Absent(key) => !labels.contains_key(key),
        })
    }

    /// Both selectors at once (a runner entry's and a job's).
    pub fn and(&self, other: &ClusterSelector) -> ClusterSelector {
        let text = [self.text.as_str(), other.text.as_str()]
            .into_iter()
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        ClusterSelector {
            requirements: self.requirements.iter().chain(&other.requirements).cloned().collect(),
            text,
        }
    }
}

fn label_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(format!(
            "{key:?} is not a label key (letters, digits, '-', '_', '.', '/')"
        ))
    }
}

fn label_value(value: &str) -> Result<String, String> {
    let value = value.trim();
    let valid = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not a label value (up to 63 letters, digits, '-', '_', '.')"
        ))
    }
}

impl fmt::Display for ClusterSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for ClusterSelector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ClusterSelector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_requirement_must_hold() {
        let selector = ClusterSelector::parse("arch=arm64, region!=us,gpu,!spot").unwrap();
        assert!(selector.matches(&labels(&[("arch", "arm64"), ("region", "eu"), ("gpu", "")])));
        assert!(
            !selector.matches(&labels(&[("arch", "amd64"), ("gpu", "")])),
            "wrong arch"
        );
        assert!(!selector.matches(&labels(&[("arch", "arm64"), ("region", "us"), ("gpu", "")])));
        assert!(!selector.matches(&labels(&[("arch", "arm64")])), "gpu missing");
        assert!(!selector.matches(&labels(&[("arch", "arm64"), ("gpu", ""), ("spot", "1")])));
        assert_eq!(selector.to_string(), "arch=arm64, region!=us,gpu,!spot");
    }

    #[test]
    fn the_empty_selector_matches_everything() {
        let selector = ClusterSelector::parse("  ").unwrap();
        assert!(selector.is_empty() && selector.matches(&BTreeMap::new()));
    }

    #[test]
    fn bad_items_are_named() {
        assert_eq!(
            ClusterSelector::parse("arch=arm 64").unwrap_err(),
            "\"arm 64\" is not a label value (up to 63 letters, digits, '-', '_', '.')"
        );
        assert!(ClusterSelector::parse("=x").unwrap_err().contains("not a label key"));
    }

    #[test]
    fn selectors_combine() {
        let both = ClusterSelector::parse("arch=arm64")
            .unwrap()
            .and(&ClusterSelector::parse("region=eu").unwrap());
        assert_eq!(both.to_string(), "arch=arm64,region=eu");
        assert!(!both.matches(&labels(&[("arch", "arm64")])));
        assert!(both.matches(&labels(&[("arch", "arm64"), ("region", "eu")])));
    }
}
