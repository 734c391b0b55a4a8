//! Per-job overwrites: `KUBERNETES_*` job variables that change the runner entry's
//! `[runners.kubernetes]` for one job, each gated by its `*_overwrite_allowed` pattern or
//! `*_overwrite_max_allowed` quantity, as the official runner's `overwrites.go` does.
//!
//! Two deliberate differences, for security (docs/kubernetes-keywords.md):
//! - patterns must match the **whole** value (`ci-.*` does not admit `prod-ci-x`), where the
//!   official runner's Go `MatchString` accepts a match anywhere;
//! - an overwrite variable whose gate is not configured **fails the job** naming the variable
//!   and the missing key, where the official runner ignores it silently.
//!
//! An empty variable means "no overwrite". A refused overwrite fails the job with
//! `runner_configuration_error`; the accepted ones are listed for the job log.

use flotilla_config::{KubernetesConfig, OverwritePattern, Quantity};
use flotilla_gitlab::types::JobVariable;

/// An overwrite the runner entry does not allow, naming the variable and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?}: {rule}")]
pub struct Refused {
    pub variable: String,
    pub value: String,
    pub rule: String,
}

/// The resource overwrites: variable suffix, the key it sets, and the key that caps it.
const RESOURCES: [(&str, &str); 22] = [
    ("POD_CPU_LIMIT", "pod_cpu_limit"),
    ("POD_CPU_REQUEST", "pod_cpu_request"),
    ("POD_MEMORY_LIMIT", "pod_memory_limit"),
    ("POD_MEMORY_REQUEST", "pod_memory_request"),
    ("CPU_LIMIT", "cpu_limit"),
    ("CPU_REQUEST", "cpu_request"),
    ("MEMORY_LIMIT", "memory_limit"),
    ("MEMORY_REQUEST", "memory_request"),
    ("EPHEMERAL_STORAGE_LIMIT", "ephemeral_storage_limit"),
    ("EPHEMERAL_STORAGE_REQUEST", "ephemeral_storage_request"),
    ("HELPER_CPU_LIMIT", "helper_cpu_limit"),
    ("HELPER_CPU_REQUEST", "helper_cpu_request"),
    ("HELPER_MEMORY_LIMIT", "helper_memory_limit"),
    ("HELPER_MEMORY_REQUEST", "helper_memory_request"),
    ("HELPER_EPHEMERAL_STORAGE_LIMIT", "helper_ephemeral_storage_limit"),
    ("HELPER_EPHEMERAL_STORAGE_REQUEST", "helper_ephemeral_storage_request"),
    ("SERVICE_CPU_LIMIT", "service_cpu_limit"),
    ("SERVICE_CPU_REQUEST", "service_cpu_request"),
    ("SERVICE_MEMORY_LIMIT", "service_memory_limit"),
    ("SERVICE_MEMORY_REQUEST", "service_memory_request"),
    ("SERVICE_EPHEMERAL_STORAGE_LIMIT", "service_ephemeral_storage_limit"),
    ("SERVICE_EPHEMERAL_STORAGE_REQUEST", "service_ephemeral_storage_request"),
];

/// Applies the job's overwrites to `kube`; returns a line per accepted overwrite.
pub fn apply(kube: &mut KubernetesConfig, variables: &[JobVariable]) -> Result<Vec<String>, Refused> {
    let mut applied = Vec::new();
    for variable in variables
        .iter()
        .filter(|v| v.key.starts_with("KUBERNETES_") && !v.value.is_empty())
    {
        let (key, value) = (variable.key.as_str(), variable.value.as_str());
        let refused = |rule: String| Refused {
            variable: key.to_string(),
            value: value.to_string(),
            rule,
        };
        let gate = |pattern: &Option<OverwritePattern>, setting: &str, shown: &str| match pattern {
            None => Err(refused(format!(
                "overwrites are not allowed: {setting} is not configured"
            ))),
            Some(pattern) if pattern.is_full_match(shown) => Ok(()),
            Some(pattern) => Err(refused(format!("does not match {setting} {:?}", pattern.as_str()))),
        };
        let suffix = key.trim_start_matches("KUBERNETES_");
        if key == BEARER_TOKEN_OVERWRITE {
            bearer_token(kube, value)?;
            applied.push(format!("{key} overwrites the runner's bearer token"));
            continue;
        } else if key == NAMESPACE_OVERWRITE {
            // Decided by `namespace`: the Pod's namespace is not a setting of the entry.
            continue;
        } else if key == "KUBERNETES_SERVICE_ACCOUNT_OVERWRITE" {
            gate(
                &kube.service_account_overwrite_allowed,
                "service_account_overwrite_allowed",
                value,
            )?;
            kube.service_account = Some(value.to_string());
        } else if map_overwrite(suffix, "POD_LABELS_").is_some() {
            gate(
                &kube.pod_labels_overwrite_allowed,
                "pod_labels_overwrite_allowed",
                value,
            )?;
            let (k, v) = pair_of(value).ok_or_else(|| refused("must be written key=value".into()))?;
            if k.ends_with("runner.gitlab.com") || k.starts_with("flotilla.io/") {
                return Err(refused(format!("the label {k:?} belongs to the runner")));
            }
            kube.pod_labels.insert(k, crate::pod_settings::label_value(&v));
        } else if map_overwrite(suffix, "POD_ANNOTATIONS_").is_some() {
            gate(
                &kube.pod_annotations_overwrite_allowed,
                "pod_annotations_overwrite_allowed",
                value,
            )?;
            let (k, v) = pair_of(value).ok_or_else(|| refused("must be written key=value".into()))?;
            kube.pod_annotations.insert(k, v);
        } else if map_overwrite(suffix, "NODE_SELECTOR_").is_some() {
            gate(
                &kube.node_selector_overwrite_allowed,
                "node_selector_overwrite_allowed",
                value,
            )?;
            let (k, v) = pair_of(value).ok_or_else(|| refused("must be written key=value".into()))?;
            kube.node_selector.insert(k, v);
        } else if map_overwrite(suffix, "NODE_TOLERATIONS_").is_some() {
            gate(
                &kube.node_tolerations_overwrite_allowed,
                "node_tolerations_overwrite_allowed",
                value,
            )?;
            let (entry, effect) = value.rsplit_once(':').unwrap_or((value, ""));
            let effect = serde_json::from_value(serde_json::Value::String(effect.to_string()))
                .map_err(|e| refused(format!("the effect: {e}")))?;
            flotilla_config::kubernetes::scheduling::Toleration::parse(entry, effect).map_err(refused)?;
            kube.node_tolerations.insert(entry.to_string(), effect);
        } else if let Some((_, field)) = RESOURCES.iter().find(|(name, _)| *name == suffix) {
            let requested = Quantity::parse(value).map_err(|e| refused(format!("is not a quantity: {e}")))?;
            let cap_key = format!("{field}_overwrite_max_allowed");
            let max = quantity_of(kube, &cap_key);
            match max {
                None => {
                    return Err(refused(format!(
                        "overwrites are not allowed: {cap_key} is not configured"
                    )))
                }
                Some(max) if requested > max => {
                    return Err(refused(format!("is more than {cap_key} ({max})")));
                }
                Some(_) => set_quantity(kube, field, requested).map_err(refused)?,
            }
        } else {
            // Any other KUBERNETES_* variable is the job's own business (deploy jobs have them).
            continue;
        }
        applied.push(format!("{key} overwrites the runner's setting with {value:?}"));
    }
    Ok(applied)
}

const NAMESPACE_OVERWRITE: &str = "KUBERNETES_NAMESPACE_OVERWRITE";
const BEARER_TOKEN_OVERWRITE: &str = "KUBERNETES_BEARER_TOKEN";

/// `KUBERNETES_BEARER_TOKEN`: the job's own token for the API calls that create its Pod, when
/// `bearer_token_overwrite_allowed` and only towards the entry's own `host` (the token is
/// never sent to the worker's cluster by default). Its value never appears in a message.
fn bearer_token(kube: &mut KubernetesConfig, value: &str) -> Result<(), Refused> {
    let refused = |rule: &str| Refused {
        variable: BEARER_TOKEN_OVERWRITE.into(),
        value: "[MASKED]".into(),
        rule: rule.into(),
    };
    if !kube.bearer_token_overwrite_allowed {
        return Err(refused(
            "overwrites are not allowed: bearer_token_overwrite_allowed is not true",
        ));
    }
    if kube.host.is_none() {
        return Err(refused(
            "needs the runner's host: the token is only used for a configured API server",
        ));
    }
    kube.bearer_token = Some(flotilla_config::Secret::new(value));
    Ok(())
}

/// The job's namespace overwrite (`KUBERNETES_NAMESPACE_OVERWRITE`, gated by
/// `namespace_overwrite_allowed`), if it asks for one.
pub fn namespace(kube: &KubernetesConfig, variables: &[JobVariable]) -> Result<Option<String>, Refused> {
    let Some(variable) = variables
        .iter()
        .rev()
        .find(|v| v.key == NAMESPACE_OVERWRITE && !v.value.is_empty())
    else {
        return Ok(None);
    };
    let refused = |rule: String| Refused {
        variable: NAMESPACE_OVERWRITE.into(),
        value: variable.value.clone(),
        rule,
    };
    match &kube.namespace_overwrite_allowed {
        None => Err(refused(
            "overwrites are not allowed: namespace_overwrite_allowed is not configured".into(),
        )),
        Some(pattern) if pattern.is_full_match(&variable.value) => Ok(Some(variable.value.clone())),
        Some(pattern) => Err(refused(format!(
            "does not match namespace_overwrite_allowed {:?}",
            pattern.as_str()
        ))),
    }
}

/// The job image's `kubernetes: user` (`"uid[:gid]"`), for the build container. The runner's
/// own settings come first (container security context, then pod security context: they bypass
/// the allow-lists, as the seed documents); otherwise the uid must be in `allowed_users` and
/// the gid in `allowed_groups` (0 only when listed, even with an empty list).
pub fn apply_job_user(kube: &mut KubernetesConfig, user: Option<&str>) -> Result<Option<String>, Refused> {
    let Some(user) = user.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let refused = |rule: String| Refused {
        variable: "image: kubernetes: user".into(),
        value: user.to_string(),
        rule,
    };
    let (uid, gid) = match user.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (user, None),
    };
    let number = |text: &str| {
        text.parse::<u32>()
            .map_err(|_| refused(format!("{text:?} is not a numeric id")))
    };
    let uid = number(uid)?;
    let gid = gid.map(number).transpose()?;
    let allowed = |id: u32, list: &[flotilla_config::kubernetes::NumericId]| {
        if list.is_empty() {
            id != 0
        } else {
            list.iter().any(|allowed| allowed.0 == id)
        }
    };
    let (build, pod) = (&kube.build_container_security_context, &kube.pod_security_context);
    let runner_sets_user = build.run_as_user.is_some() || pod.run_as_user.is_some();
    let runner_sets_group = build.run_as_group.is_some() || pod.run_as_group.is_some();
    let mut applied = Vec::new();
    if !runner_sets_user {
        if !allowed(uid, &kube.allowed_users) {
            return Err(refused(format!("user {uid} is not in allowed_users")));
        }
        kube.build_container_security_context.run_as_user = Some(i64::from(uid));
        applied.push(format!("user {uid}"));
    }
    if let Some(gid) = gid {
        if !runner_sets_group {
            if !allowed(gid, &kube.allowed_groups) {
                return Err(refused(format!("group {gid} is not in allowed_groups")));
            }
            kube.build_container_security_context.run_as_group = Some(i64::from(gid));
            applied.push(format!("group {gid}"));
        }
    }
    Ok((!applied.is_empty()).then(|| format!("the build container runs as {}", applied.join(" and "))))
}

/// `Some(suffix)` when `key` is `<prefix><anything>`.
fn map_overwrite<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)
}

fn pair_of(value: &str) -> Option<(String, String)> {
    let (k, v) = value.split_once('=')?;
    (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
}

fn quantity_of(kube: &KubernetesConfig, key: &str) -> Option<Quantity> {
    let value = serde_json::to_value(kube).ok()?;
    value
        .get(key)
        .and_then(|v| v.as_str())
        .and_then(|text| Quantity::parse(text).ok())
}

/// Sets one quantity keyword through the settings' own (de)serialisation, so the keyword
/// names live in one place (crates/config).
fn set_quantity(kube: &mut KubernetesConfig, field: &str, quantity: Quantity) -> Result<(), String> {
    let mut value = serde_json::to_value(&*kube).map_err(|e| e.to_string())?;
    value[field] = serde_json::Value::String(quantity.to_string());
    *kube = serde_json::from_value(value).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::kube;

    fn var(key: &str, value: &str) -> JobVariable {
        JobVariable::public(key, value)
    }

    #[test]
    fn resources_are_capped_by_their_max() {
        let mut config = kube("cpu_limit = \"1\"\ncpu_limit_overwrite_max_allowed = \"2\"");
        let applied = apply(&mut config, &[var("KUBERNETES_CPU_LIMIT", "1500m")]).unwrap();
        assert_eq!(config.cpu_limit.unwrap().to_string(), "1500m");
        assert_eq!(
            applied,
            ["KUBERNETES_CPU_LIMIT overwrites the runner's setting with \"1500m\""]
        );
        let refused = apply(
            &mut kube("cpu_limit_overwrite_max_allowed = \"2\""),
            &[var("KUBERNETES_CPU_LIMIT", "3")],
        )
        .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "KUBERNETES_CPU_LIMIT=\"3\": is more than cpu_limit_overwrite_max_allowed (2)"
        );
    }

    #[test]
    fn an_overwrite_without_its_gate_is_refused_not_ignored() {
        let refused = apply(&mut kube(""), &[var("KUBERNETES_MEMORY_REQUEST", "1Gi")]).unwrap_err();
        assert_eq!(
            refused.rule,
            "overwrites are not allowed: memory_request_overwrite_max_allowed is not configured"
        );
        assert!(
            apply(&mut kube(""), &[var("KUBERNETES_MEMORY_REQUEST", "")])
                .unwrap()
                .is_empty(),
            "empty: none"
        );
    }

    #[test]
    fn patterns_must_match_the_whole_value() {
        let mut config = kube("service_account_overwrite_allowed = \"ci-.*\"");
        apply(
            &mut config,
            &[var("KUBERNETES_SERVICE_ACCOUNT_OVERWRITE", "ci-deployer")],
        )
        .unwrap();
        assert_eq!(config.service_account.as_deref(), Some("ci-deployer"));
        let refused = apply(&mut config, &[var("KUBERNETES_SERVICE_ACCOUNT_OVERWRITE", "prod-ci-x")]).unwrap_err();
        assert_eq!(
            refused.rule,
            "does not match service_account_overwrite_allowed \"ci-.*\""
        );
    }

    #[test]
    fn labels_annotations_node_selector_and_tolerations() {
        let mut config = kube(
            "pod_labels_overwrite_allowed = \"team=.*\"\npod_annotations_overwrite_allowed = \".*\"\nnode_selector_overwrite_allowed = \"disk=ssd\"\nnode_tolerations_overwrite_allowed = \".*\"",
        );
        apply(
            &mut config,
            &[
                var("KUBERNETES_POD_LABELS_1", "team=web"),
                var("KUBERNETES_POD_ANNOTATIONS_X", "example.com/why=release"),
                var("KUBERNETES_NODE_SELECTOR_DISK", "disk=ssd"),
                var("KUBERNETES_NODE_TOLERATIONS_GPU", "gpu=true:NoSchedule"),
            ],
        )
        .unwrap();
        assert_eq!(config.pod_labels["team"], "web");
        assert_eq!(config.pod_annotations["example.com/why"], "release");
        assert_eq!(config.node_selector["disk"], "ssd");
        assert!(config.node_tolerations.contains_key("gpu=true"));
        let refused = apply(&mut config, &[var("KUBERNETES_POD_LABELS_2", "team")]).unwrap_err();
        assert_eq!(refused.rule, "does not match pod_labels_overwrite_allowed \"team=.*\"");
    }

    #[test]
    fn a_bearer_token_needs_the_gate_and_a_host_and_is_never_shown() {
        let token = var("KUBERNETES_BEARER_TOKEN", "sa-token-value");
        let refused = apply(
            &mut kube("host = \"https://k8s.example.com\""),
            std::slice::from_ref(&token),
        )
        .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "KUBERNETES_BEARER_TOKEN=\"[MASKED]\": overwrites are not allowed: bearer_token_overwrite_allowed is not true"
        );
        let refused = apply(
            &mut kube("bearer_token_overwrite_allowed = true"),
            std::slice::from_ref(&token),
        )
        .unwrap_err();
        assert!(refused.rule.starts_with("needs the runner's host"), "{refused}");
        assert!(!refused.to_string().contains("sa-token-value"));
        let mut config = kube("host = \"https://k8s.example.com\"\nbearer_token = \"runner-token\"\nbearer_token_overwrite_allowed = true");
        let notices = apply(&mut config, &[token]).unwrap();
        assert_eq!(config.bearer_token.unwrap().expose(), "sa-token-value");
        assert_eq!(
            notices,
            ["KUBERNETES_BEARER_TOKEN overwrites the runner's bearer token"]
        );
    }

    #[test]
    fn ungated_resources_are_refused_and_other_variables_left_alone() {
        let refused = apply(&mut kube(""), &[var("KUBERNETES_POD_CPU_LIMIT", "2")]).unwrap_err();
        assert_eq!(
            refused.rule,
            "overwrites are not allowed: pod_cpu_limit_overwrite_max_allowed is not configured"
        );
        let others = apply(&mut kube(""), &[var("KUBERNETES_VERSION", "1.30")]).unwrap();
        assert!(
            others.is_empty(),
            "a deploy job's own KUBERNETES_* variable is not an overwrite"
        );
    }

    #[test]
    fn the_job_user_is_checked_against_the_allow_lists() {
        let mut config = kube("allowed_users = [\"1000\"]\nallowed_groups = [\"1001\"]");
        let line = apply_job_user(&mut config, Some("1000:1001")).unwrap();
        assert_eq!(
            line.as_deref(),
            Some("the build container runs as user 1000 and group 1001")
        );
        assert_eq!(config.build_container_security_context.run_as_user, Some(1000));
        let refused = apply_job_user(&mut kube("allowed_users = [\"1000\"]"), Some("2000")).unwrap_err();
        assert_eq!(refused.rule, "user 2000 is not in allowed_users");
        let refused = apply_job_user(&mut kube(""), Some("0")).unwrap_err();
        assert_eq!(refused.rule, "user 0 is not in allowed_users", "root only when listed");
        assert!(
            apply_job_user(&mut kube(""), Some("1234")).is_ok(),
            "an empty list allows non-root"
        );
    }

    #[test]
    fn the_runners_own_contexts_bypass_the_allow_list() {
        let mut config = kube(
            "allowed_users = [\"1000\"]\n[runners.kubernetes.build_container_security_context]\nrun_as_user = 2000",
        );
        assert_eq!(
            apply_job_user(&mut config, Some("3000")).unwrap(),
            None,
            "the container context wins"
        );
        assert_eq!(config.build_container_security_context.run_as_user, Some(2000));
    }

    #[test]
    fn the_namespace_overwrite_is_gated() {
        let vars = [var("KUBERNETES_NAMESPACE_OVERWRITE", "ci-team-a")];
        let allowed = kube("namespace_overwrite_allowed = \"ci-.*\"");
        assert_eq!(namespace(&allowed, &vars).unwrap().as_deref(), Some("ci-team-a"));
        let refused = namespace(&kube("namespace_overwrite_allowed = \"prod\""), &vars).unwrap_err();
        assert_eq!(refused.rule, "does not match namespace_overwrite_allowed \"prod\"");
        assert!(namespace(&kube(""), &vars).is_err(), "no gate: refused");
        assert_eq!(namespace(&kube(""), &[]).unwrap(), None);
    }
}
