//! `pull_policy` and `allowed_pull_policies`: when the kubelet pulls job images.
//!
//! `pull_policy` is a string or a list; a list is an ordered fallback (`["always",
//! "if-not-present"]` pulls, and uses the node's copy if the registry is down). Unset or `""`
//! leaves the choice to the cluster (`Always` for `:latest`, else `IfNotPresent`).

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::de::keyword_enum;

keyword_enum! {
    /// One pull policy, in the runner's spelling.
    pub enum PullPolicy {
        Always = "always",
        IfNotPresent = "if-not-present",
        Never = "never",
    }
}

impl PullPolicy {
    /// The Pod spec's spelling (`IfNotPresent`).
    pub fn as_kubernetes(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// A list of pull policies, written as one string or as an array; empty means "the cluster's
/// default". `""` entries are skipped, as the official runner treats them as that default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PullPolicies(pub Vec<PullPolicy>);

impl PullPolicies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = PullPolicy> + '_ {
        self.0.iter().copied()
    }
}

impl<'de> Deserialize<'de> for PullPolicies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PoliciesVisitor;

        fn parse<E: de::Error>(text: &str, policies: &mut Vec<PullPolicy>) -> Result<(), E> {
            if !text.is_empty() {
                policies.push(text.parse().map_err(E::custom)?);
            }
            Ok(())
        }

        impl<'de> Visitor<'de> for PoliciesVisitor {
            type Value = PullPolicies;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a pull policy or a list of them")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<PullPolicies, E> {
                let mut policies = Vec::new();
                parse(value, &mut policies)?;
                Ok(PullPolicies(policies))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PullPolicies, A::Error> {
                let mut policies = Vec::new();
                while let Some(text) = seq.next_element::<String>()? {
                    parse(&text, &mut policies)?;
                }
                Ok(PullPolicies(policies))
            }
        }

        deserializer.deserialize_any(PoliciesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        #[serde(default)]
        pull_policy: PullPolicies,
    }

    fn read(text: &str) -> Result<Vec<PullPolicy>, String> {
        toml::from_str::<Holder>(text)
            .map(|holder| holder.pull_policy.0)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn a_string_or_a_list() {
        assert_eq!(read("pull_policy = \"never\""), Ok(vec![PullPolicy::Never]));
        assert_eq!(
            read("pull_policy = [\"always\", \"if-not-present\"]"),
            Ok(vec![PullPolicy::Always, PullPolicy::IfNotPresent])
        );
        assert_eq!(read("pull_policy = \"\""), Ok(vec![]));
        assert_eq!(read(""), Ok(vec![]));
        assert_eq!(PullPolicy::IfNotPresent.as_kubernetes(), "IfNotPresent");
    }

    #[test]
    fn unknown_policies_are_named() {
        let error = read("pull_policy = [\"always\", \"sometimes\"]").unwrap_err();
        assert!(
            error.contains("\"sometimes\" is not one of always, if-not-present, never"),
            "{error}"
        );
        assert!(read("pull_policy = 3").is_err());
    }
}
