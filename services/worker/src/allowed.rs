//! The runner entry's allow-lists for what a job asks for: `allowed_images` and
//! `allowed_services` (globs: `*` within a path segment, `**` across them; the entry's own
//! image and helper image are always allowed) and `allowed_pull_policies` (the job's
//! `pull_policy` must be among them; unset, the entry's `pull_policy` is the allow-list, so a
//! job may only ask for what the runner uses anyway). A job asking for more fails with
//! `runner_configuration_error`, naming what it asked and the rule.

use flotilla_config::kubernetes::pull_policy::{PullPolicies, PullPolicy};
use flotilla_config::KubernetesConfig;
use flotilla_gitlab::types::{Image, Service};

use crate::overwrites::Refused;

/// Checks the job's image, services and pull policy; on success the job's pull policies (when
/// it names any) replace the entry's for its Pod.
pub fn check(kube: &mut KubernetesConfig, image: Option<&Image>, services: &[Service]) -> Result<(), Refused> {
    if let Some(image) = image.filter(|i| !i.name.is_empty()) {
        let own = [kube.image.as_deref(), kube.helper_image.as_deref()];
        if !own.contains(&Some(image.name.as_str())) && !allowed(&kube.allowed_images, &image.name) {
            return Err(refused("image", &image.name, "allowed_images", &kube.allowed_images));
        }
    }
    for (n, service) in services.iter().enumerate() {
        if !allowed(&kube.allowed_services, &service.name) {
            return Err(refused(
                &format!("services[{n}]"),
                &service.name,
                "allowed_services",
                &kube.allowed_services,
            ));
        }
    }
    let asked = image.map(|i| i.pull_policy.as_slice()).unwrap_or_default();
    let allowed_policies = if kube.allowed_pull_policies.is_empty() {
        kube.pull_policy.clone()
    } else {
        kube.allowed_pull_policies.clone()
    };
    if asked.is_empty() {
        // The entry's own policy must be allowed too (the official runner's rule).
        if !kube.allowed_pull_policies.is_empty() {
            let own: Vec<PullPolicy> = kube.pull_policy.iter().collect();
            if own.is_empty() || own.iter().all(|p| !allowed_policies.iter().any(|a| a == *p)) {
                return Err(Refused {
                    variable: "pull_policy (runner config)".into(),
                    value: names(&kube.pull_policy),
                    rule: format!("is not one of the allowed_pull_policies ({})", names(&allowed_policies)),
                });
            }
        }
        return Ok(());
    }
    let mut chosen = Vec::new();
    for text in asked {
        let policy: PullPolicy = text.parse().map_err(|e: String| Refused {
            variable: "image: pull_policy".into(),
            value: text.clone(),
            rule: e,
        })?;
        if allowed_policies.iter().any(|a| a == policy) {
            chosen.push(policy);
        }
    }
    if chosen.is_empty() {
        return Err(Refused {
            variable: "image: pull_policy".into(),
            value: asked.join(", "),
            rule: format!("is not one of the allowed_pull_policies ({})", names(&allowed_policies)),
        });
    }
    kube.pull_policy = PullPolicies(chosen);
    Ok(())
}

fn names(policies: &PullPolicies) -> String {
    policies.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

fn refused(what: &str, name: &str, key: &str, list: &[String]) -> Refused {
    Refused {
        variable: what.into(),
        value: name.into(),
        rule: format!("does not match {key} ({})", list.join(", ")),
    }
}

/// An empty list allows everything.
fn allowed(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|pattern| glob_matches(pattern, name))
}

/// `*` and `?` within a path segment, `**` across segments; the whole name must match.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut regex = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                regex.push_str(".*");
            }
            '*' => regex.push_str("[^/]*"),
            '?' => regex.push_str("[^/]"),
            other => regex.push_str(&regex::escape(&other.to_string())),
        }
    }
    regex.push('$');
    regex::Regex::new(&regex).is_ok_and(|re| re.is_match(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::kube;

    fn image(name: &str, pull_policy: &[&str]) -> Image {
        Image {
            name: name.into(),
            pull_policy: pull_policy.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn globs_work_per_segment() {
        assert!(glob_matches(
            "registry.example.com/ci/*",
            "registry.example.com/ci/rust:1"
        ));
        assert!(!glob_matches(
            "registry.example.com/ci/*",
            "registry.example.com/ci/x/rust:1"
        ));
        assert!(glob_matches(
            "registry.example.com/**",
            "registry.example.com/ci/x/rust:1"
        ));
        assert!(!glob_matches("alpine*", "evil/alpine"));
    }

    #[test]
    fn images_and_services_must_be_allowed() {
        let mut config = kube("image = \"ubuntu:24.04\"\nallowed_images = [\"registry.example.com/**\"]\nallowed_services = [\"postgres:*\"]");
        assert!(check(&mut config, Some(&image("registry.example.com/ci/rust:1", &[])), &[]).is_ok());
        assert!(
            check(&mut config, Some(&image("ubuntu:24.04", &[])), &[]).is_ok(),
            "the entry's own image"
        );
        let refused = check(&mut config, Some(&image("docker.io/evil:1", &[])), &[]).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "image=\"docker.io/evil:1\": does not match allowed_images (registry.example.com/**)"
        );
        let refused = check(&mut config, None, &[image("redis:7", &[])]).unwrap_err();
        assert_eq!(refused.variable, "services[0]");
    }

    #[test]
    fn a_job_pull_policy_must_be_allowed_and_then_wins() {
        let mut config = kube("pull_policy = \"if-not-present\"");
        let refused = check(&mut config, Some(&image("alpine", &["always"])), &[]).unwrap_err();
        assert_eq!(refused.rule, "is not one of the allowed_pull_policies (if-not-present)");
        let mut config =
            kube("pull_policy = \"if-not-present\"\nallowed_pull_policies = [\"always\", \"if-not-present\"]");
        check(&mut config, Some(&image("alpine", &["always"])), &[]).unwrap();
        assert_eq!(config.pull_policy.iter().collect::<Vec<_>>(), [PullPolicy::Always]);
        let refused = check(
            &mut kube("allowed_pull_policies = [\"always\"]"),
            Some(&image("alpine", &[])),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            refused.variable, "pull_policy (runner config)",
            "the default policy is not allowed either"
        );
    }
}
