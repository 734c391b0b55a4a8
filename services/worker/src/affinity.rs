//! `[runners.kubernetes.affinity]` as the Pod's `affinity`: node affinity (required and
//! preferred, `match_expressions` and `match_fields`), pod affinity and pod anti-affinity.

use flotilla_config::kubernetes::affinity::{
    Affinity as Config, LabelSelector as ConfigLabelSelector, NodeSelectorTerm as ConfigTerm, PodAffinity as ConfigPod,
    PodAffinityTerm as ConfigPodTerm, SelectorRequirement,
};
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodAffinity, PodAffinityTerm,
    PodAntiAffinity, PreferredSchedulingTerm, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// The Pod's affinity, or None when none is configured.
pub fn affinity(config: &Config) -> Option<Affinity> {
    let affinity = Affinity {
        node_affinity: config.node_affinity.as_ref().map(|node| NodeAffinity {
            required_during_scheduling_ignored_during_execution: node
                .required_during_scheduling_ignored_during_execution
                .as_ref()
                .map(|required| NodeSelector {
                    node_selector_terms: required.node_selector_terms.iter().map(node_term).collect(),
                }),
            preferred_during_scheduling_ignored_during_execution: non_empty(
                node.preferred_during_scheduling_ignored_during_execution
                    .iter()
                    .map(|preferred| PreferredSchedulingTerm {
                        weight: preferred.weight,
                        preference: node_term(&preferred.preference),
                    })
                    .collect(),
            ),
        }),
        pod_affinity: config.pod_affinity.as_ref().map(|pod| {
            let (required, preferred) = pod_terms(pod);
            PodAffinity {
                required_during_scheduling_ignored_during_execution: required,
                preferred_during_scheduling_ignored_during_execution: preferred,
            }
        }),
        pod_anti_affinity: config.pod_anti_affinity.as_ref().map(|pod| {
            let (required, preferred) = pod_terms(pod);
            PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: required,
                preferred_during_scheduling_ignored_during_execution: preferred,
            }
        }),
    };
    (affinity != Affinity::default()).then_some(affinity)
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn node_requirement(requirement: &SelectorRequirement) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: requirement.key.clone(),
        operator: requirement.operator.map(|o| o.as_str().to_string()).unwrap_or_default(),
        values: non_empty(requirement.values.clone()),
    }
}

fn node_term(term: &ConfigTerm) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: non_empty(term.match_expressions.iter().map(node_requirement).collect()),
        match_fields: non_empty(term.match_fields.iter().map(node_requirement).collect()),
    }
}

type PodTerms = (Option<Vec<PodAffinityTerm>>, Option<Vec<WeightedPodAffinityTerm>>);

fn pod_terms(pod: &ConfigPod) -> PodTerms {
    let required = pod
        .required_during_scheduling_ignored_during_execution
        .iter()
        .map(pod_term)
        .collect();
    let preferred = pod
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .map(|weighted| WeightedPodAffinityTerm {
            weight: weighted.weight,
            pod_affinity_term: pod_term(&weighted.pod_affinity_term),
        })
        .collect();
    (non_empty(required), non_empty(preferred))
}

fn pod_term(term: &ConfigPodTerm) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: term.label_selector.as_ref().map(label_selector),
        namespaces: non_empty(term.namespaces.clone()),
        topology_key: term.topology_key.clone(),
        namespace_selector: term.namespace_selector.as_ref().map(label_selector),
        match_label_keys: non_empty(term.match_label_keys.clone()),
        mismatch_label_keys: non_empty(term.mismatch_label_keys.clone()),
    }
}

fn label_selector(selector: &ConfigLabelSelector) -> LabelSelector {
    LabelSelector {
        match_labels: (!selector.match_labels.is_empty()).then(|| selector.match_labels.clone()),
        match_expressions: non_empty(
            selector
                .match_expressions
                .iter()
                .map(|requirement| LabelSelectorRequirement {
                    key: requirement.key.clone(),
                    operator: requirement.operator.map(|o| o.as_str().to_string()).unwrap_or_default(),
                    values: non_empty(requirement.values.clone()),
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_pod_affinity_as_the_pod_wants_them() {
        let text = r#"
[[runners]]
  url = "https://g.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes.affinity.node_affinity.required_during_scheduling_ignored_during_execution]
    [[runners.kubernetes.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms]]
      [[runners.kubernetes.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms.match_expressions]]
        key = "kubernetes.io/arch"
        operator = "In"
        values = ["arm64"]
  [[runners.kubernetes.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution]]
    weight = 50
    [runners.kubernetes.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution.preference]
      [[runners.kubernetes.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution.preference.match_fields]]
        key = "metadata.name"
        operator = "NotIn"
        values = ["slow-node"]
  [[runners.kubernetes.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution]]
    topology_key = "kubernetes.io/hostname"
    [runners.kubernetes.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution.label_selector.match_labels]
      app = "gitlab-runner"
"#;
        let loaded = flotilla_config::runner_config_from_str(text).unwrap();
        let value = serde_json::to_value(affinity(&loaded.config.runners[0].kubernetes.affinity).unwrap()).unwrap();
        assert_eq!(
            value["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
                ["matchExpressions"][0],
            serde_json::json!({"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]})
        );
        assert_eq!(
            value["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["preference"]["matchFields"][0]
                ["operator"],
            "NotIn"
        );
        assert_eq!(
            value["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0],
            serde_json::json!({"labelSelector": {"matchLabels": {"app": "gitlab-runner"}}, "topologyKey": "kubernetes.io/hostname"})
        );
        assert!(value.get("podAffinity").is_none());
        assert!(affinity(&Default::default()).is_none());
    }
}
