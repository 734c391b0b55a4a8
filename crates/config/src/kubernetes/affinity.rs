//! `[runners.kubernetes.affinity]`: node affinity (required and preferred node selector
//! terms with `match_expressions` and `match_fields`), pod affinity and pod anti-affinity, with
//! the official runner's snake_case keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::de::{keyword_enum, optional};
use crate::path::KeyPath;
use crate::validate::{Validate, Validator};

keyword_enum! {
    /// The operator of a node selector or label selector requirement.
    pub enum SelectorOperator {
        In = "In",
        NotIn = "NotIn",
        Exists = "Exists",
        DoesNotExist = "DoesNotExist",
        Gt = "Gt",
        Lt = "Lt",
    }
}

/// `[runners.kubernetes.affinity]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Affinity {
    /// Which nodes the Pod may (required) or would rather (preferred) run on.
    #[serde(default)]
    pub node_affinity: Option<NodeAffinity>,
    /// Run near Pods matching a selector.
    #[serde(default)]
    pub pod_affinity: Option<PodAffinity>,
    /// Run away from Pods matching a selector.
    #[serde(default)]
    pub pod_anti_affinity: Option<PodAffinity>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeAffinity {
    #[serde(default)]
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
    #[serde(default)]
    pub preferred_during_scheduling_ignored_during_execution: Vec<PreferredSchedulingTerm>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSelector {
    /// Terms are ORed; at least one is needed.
    #[serde(default)]
    pub node_selector_terms: Vec<NodeSelectorTerm>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PreferredSchedulingTerm {
    /// 1 to 100.
    #[serde(default)]
    pub weight: i32,
    #[serde(default)]
    pub preference: NodeSelectorTerm,
}

/// Requirements are ANDed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSelectorTerm {
    /// Requirements on node labels.
    #[serde(default)]
    pub match_expressions: Vec<SelectorRequirement>,
    /// Requirements on node fields (Kubernetes supports `metadata.name`).
    #[serde(default)]
    pub match_fields: Vec<SelectorRequirement>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectorRequirement {
    #[serde(default)]
    pub key: String,
    #[serde(default, deserialize_with = "optional")]
    pub operator: Option<SelectorOperator>,
    #[serde(default)]
    pub values: Vec<String>,
}

/// `pod_affinity` and `pod_anti_affinity`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodAffinity {
    #[serde(default)]
    pub required_during_scheduling_ignored_during_execution: Vec<PodAffinityTerm>,
    #[serde(default)]
    pub preferred_during_scheduling_ignored_during_execution: Vec<WeightedPodAffinityTerm>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightedPodAffinityTerm {
    /// 1 to 100.
    #[serde(default)]
    pub weight: i32,
    #[serde(default)]
    pub pod_affinity_term: PodAffinityTerm,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodAffinityTerm {
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Node label whose value defines "near" (e.g. `kubernetes.io/hostname`; required).
    #[serde(default)]
    pub topology_key: String,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub match_label_keys: Vec<String>,
    #[serde(default)]
    pub mismatch_label_keys: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<SelectorRequirement>,
}

fn check_requirements(
    requirements: &[SelectorRequirement],
    path: &KeyPath,
    labels_only: bool,
    validator: &mut Validator,
) {
    for (index, requirement) in requirements.iter().enumerate() {
        let requirement_path = path.index(index);
        validator.require(&requirement_path.key("key"), &requirement.key);
        let Some(operator) = requirement.operator else {
            validator.error(&requirement_path.key("operator"), "is required");
            continue;
        };
        let values_path = requirement_path.key("values");
        let count = requirement.values.len();
        match operator {
            SelectorOperator::In | SelectorOperator::NotIn if count == 0 => {
                validator.error(&values_path, format!("must not be empty with operator {operator}"));
            }
            SelectorOperator::Exists | SelectorOperator::DoesNotExist if count > 0 => {
                validator.error(&values_path, format!("must be empty with operator {operator}"));
            }
            SelectorOperator::Gt | SelectorOperator::Lt if labels_only => {
                validator.error(
                    &requirement_path.key("operator"),
                    format!("{operator} is not allowed in a label selector"),
                );
            }
            SelectorOperator::Gt | SelectorOperator::Lt
                if count != 1 || requirement.values[0].parse::<i64>().is_err() =>
            {
                validator.error(&values_path, format!("must be one integer with operator {operator}"));
            }
            _ => {}
        }
    }
}

fn check_weight(weight: i32, path: &KeyPath, validator: &mut Validator) {
    if !(1..=100).contains(&weight) {
        validator.error(path, format!("{weight} is not between 1 and 100"));
    }
}

fn check_node_term(term: &NodeSelectorTerm, path: &KeyPath, validator: &mut Validator) {
    check_requirements(
        &term.match_expressions,
        &path.key("match_expressions"),
        false,
        validator,
    );
    check_requirements(&term.match_fields, &path.key("match_fields"), false, validator);
}

fn check_pod_term(term: &PodAffinityTerm, path: &KeyPath, validator: &mut Validator) {
    validator.require(&path.key("topology_key"), &term.topology_key);
    for (key, selector) in [
        ("label_selector", &term.label_selector),
        ("namespace_selector", &term.namespace_selector),
    ] {
        if let Some(selector) = selector {
            check_requirements(
                &selector.match_expressions,
                &path.key(key).key("match_expressions"),
                true,
                validator,
            );
        }
    }
}

impl Validate for PodAffinity {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        let required_path = path.key("required_during_scheduling_ignored_during_execution");
        for (index, term) in self
            .required_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            check_pod_term(term, &required_path.index(index), validator);
        }
        let preferred_path = path.key("preferred_during_scheduling_ignored_during_execution");
        for (index, weighted) in self
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            check_weight(weighted.weight, &preferred_path.index(index).key("weight"), validator);
            check_pod_term(
                &weighted.pod_affinity_term,
                &preferred_path.index(index).key("pod_affinity_term"),
                validator,
            );
        }
    }
}

impl Validate for Affinity {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        if let Some(node_affinity) = &self.node_affinity {
            let node_path = path.key("node_affinity");
            if let Some(required) = &node_affinity.required_during_scheduling_ignored_during_execution {
                let terms_path = node_path
                    .key("required_during_scheduling_ignored_during_execution")
                    .key("node_selector_terms");
                if required.node_selector_terms.is_empty() {
                    validator.error(&terms_path, "needs at least one term");
                }
                for (index, term) in required.node_selector_terms.iter().enumerate() {
                    check_node_term(term, &terms_path.index(index), validator);
                }
            }
            let preferred_path = node_path.key("preferred_during_scheduling_ignored_during_execution");
            for (index, preferred) in node_affinity
                .preferred_during_scheduling_ignored_during_execution
                .iter()
                .enumerate()
            {
                check_weight(preferred.weight, &preferred_path.index(index).key("weight"), validator);
                check_node_term(
                    &preferred.preference,
                    &preferred_path.index(index).key("preference"),
                    validator,
                );
            }
        }
        if let Some(pod_affinity) = &self.pod_affinity {
            pod_affinity.validate(&path.key("pod_affinity"), validator);
        }
        if let Some(pod_anti_affinity) = &self.pod_anti_affinity {
            pod_anti_affinity.validate(&path.key("pod_anti_affinity"), validator);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affinity_errors(text: &str) -> Vec<String> {
        let affinity: Affinity = toml::from_str(text).unwrap();
        let mut validator = Validator::default();
        affinity.validate(&KeyPath::root().key("affinity"), &mut validator);
        validator.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn affinity_rules_are_checked() {
        let errors = affinity_errors(
            r#"
            [[node_affinity.preferred_during_scheduling_ignored_during_execution]]
            weight = 0
            [[node_affinity.preferred_during_scheduling_ignored_during_execution.preference.match_expressions]]
            key = "cpu_speed"
            operator = "In"
            [node_affinity.required_during_scheduling_ignored_during_execution]
            [[pod_anti_affinity.preferred_during_scheduling_ignored_during_execution]]
            weight = 100
            [pod_anti_affinity.preferred_during_scheduling_ignored_during_execution.pod_affinity_term.label_selector]
            match_labels = { app = "gitlab-runner" }
            "#,
        );
        let p = "affinity.node_affinity.preferred_during_scheduling_ignored_during_execution[0]";
        assert_eq!(
            errors,
            [
                "affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms: needs at least one term".to_owned(),
                format!("{p}.weight: 0 is not between 1 and 100"),
                format!("{p}.preference.match_expressions[0].values: must not be empty with operator In"),
                "affinity.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution[0].pod_affinity_term.topology_key: is required".to_owned(),
            ]
        );
    }
}
