//! The validation pass of `[runners.kubernetes]`: what decoding alone cannot see (required
//! companions, contradictions, Kubernetes name rules). Values that use job variables (`$…`)
//! are only checked when a job expands them, so they are skipped here.

use crate::kubernetes::resources::validate_resources;
use crate::kubernetes::scheduling::{validate_tolerations, DnsPolicy};
use crate::kubernetes::security::check_capabilities;
use crate::kubernetes::KubernetesConfig;
use crate::path::KeyPath;
use crate::validate::{has_variables, Validate, Validator};

impl Validate for KubernetesConfig {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        self.validate_connection(path, validator);
        self.validate_identity(path, validator);
        self.validate_security(path, validator);
        validate_resources(self, path, validator);
        self.validate_scheduling(path, validator);
        self.validate_metadata(path, validator);
        self.validate_containers(path, validator);
        self.validate_timing(path, validator);
    }
}

impl KubernetesConfig {
    fn validate_connection(&self, path: &KeyPath, validator: &mut Validator) {
        if let Some(host) = &self.host {
            validator.check_http_url(&path.key("host"), host);
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => validator.error(&path.key("key_file"), "is required when cert_file is set"),
            (None, Some(_)) => validator.error(&path.key("cert_file"), "is required when key_file is set"),
            _ => {}
        }
        if self.bearer_token_overwrite_allowed && self.host.is_none() {
            validator.note(
                &path.key("bearer_token_overwrite_allowed"),
                "a job's KUBERNETES_BEARER_TOKEN is only used together with host",
            );
        }
    }

    fn validate_identity(&self, path: &KeyPath, validator: &mut Validator) {
        if !has_variables(&self.namespace) {
            validator.check_dns_label(&path.key("namespace"), &self.namespace);
        }
        if self.namespace_per_job && self.namespace_overwrite_allowed.is_some() {
            validator.note(
                &path.key("namespace_overwrite_allowed"),
                "is ignored when namespace_per_job is true",
            );
        }
        if let Some(account) = self
            .service_account
            .as_deref()
            .filter(|account| !has_variables(account))
        {
            validator.check_dns_subdomain(&path.key("service_account"), account);
        }
        for (index, secret) in self.image_pull_secrets.iter().enumerate() {
            validator.check_dns_subdomain(&path.key("image_pull_secrets").index(index), secret);
        }
        if self.use_service_account_image_pull_secrets && !self.image_pull_secrets.is_empty() {
            validator.note(
                &path.key("image_pull_secrets"),
                "is not used: use_service_account_image_pull_secrets is true, so Pods get no imagePullSecrets",
            );
        }
        for (key, list) in [
            ("allowed_images", &self.allowed_images),
            ("allowed_services", &self.allowed_services),
        ] {
            for (index, pattern) in list.iter().enumerate() {
                validator.require(&path.key(key).index(index), pattern);
            }
        }
    }

    fn validate_security(&self, path: &KeyPath, validator: &mut Validator) {
        check_capabilities(&self.cap_add, &path.key("cap_add"), validator);
        check_capabilities(&self.cap_drop, &path.key("cap_drop"), validator);
        self.pod_security_context
            .validate(&path.key("pod_security_context"), validator);
        let containers = [
            (
                "init_permissions_container_security_context",
                &self.init_permissions_container_security_context,
            ),
            (
                "build_container_security_context",
                &self.build_container_security_context,
            ),
            (
                "helper_container_security_context",
                &self.helper_container_security_context,
            ),
            (
                "service_container_security_context",
                &self.service_container_security_context,
            ),
        ];
        for (key, context) in containers {
            context.validate(&path.key(key), validator);
        }
    }

    fn validate_scheduling(&self, path: &KeyPath, validator: &mut Validator) {
        for (key, value) in &self.node_selector {
            let entry_path = path.key("node_selector").key(key.clone());
            validator.check_qualified_name(&entry_path, key);
            if !has_variables(value) {
                validator.check_label_value(&entry_path, value);
            }
        }
        validate_tolerations(&self.node_tolerations, &path.key("node_tolerations"), validator);
        self.affinity.validate(&path.key("affinity"), validator);
        let class_names = [
            ("scheduler_name", &self.scheduler_name),
            ("priority_class_name", &self.priority_class_name),
            ("runtime_class_name", &self.runtime_class_name),
        ];
        for (key, name) in class_names {
            if let Some(name) = name.as_deref().filter(|name| !has_variables(name)) {
                validator.check_dns_subdomain(&path.key(key), name);
            }
        }
    }

    fn validate_metadata(&self, path: &KeyPath, validator: &mut Validator) {
        for (key, value) in &self.pod_labels {
            let entry_path = path.key("pod_labels").key(key.clone());
            validator.check_qualified_name(&entry_path, key);
            if !has_variables(value) {
                validator.check_label_value(&entry_path, value);
            }
        }
        for key in self.pod_annotations.keys() {
            validator.check_qualified_name(&path.key("pod_annotations").key(key.clone()), key);
        }
    }

    fn validate_containers(&self, path: &KeyPath, validator: &mut Validator) {
        self.dns_config.validate(&path.key("dns_config"), validator);
        if self.dns_policy == Some(DnsPolicy::None) && self.dns_config.nameservers.is_empty() {
            validator.error(
                &path.key("dns_policy"),
                "none needs dns_config.nameservers (the Pod would have no DNS)",
            );
        }
        for (index, alias) in self.host_aliases.iter().enumerate() {
            alias.validate(&path.key("host_aliases").index(index), validator);
        }
        self.volumes.validate(&path.key("volumes"), validator);
        for (index, service) in self.services.iter().enumerate() {
            service.validate(&path.key("services").index(index), validator);
        }
        self.container_lifecycle
            .validate(&path.key("container_lifecycle"), validator);
        for (index, patch) in self.pod_spec.iter().enumerate() {
            patch.validate(&path.key("pod_spec").index(index), validator);
        }
        if self.suspend_pvc_size.as_ref().is_some_and(|size| size.is_negative()) {
            validator.error(&path.key("suspend_pvc_size"), "must not be negative");
        }
        if self.autoscaler.is_some() {
            validator.note(&path.key("autoscaler"), "is kept, but Flotilla does not run pause Pods");
        }
        self.note_unapplied(path, validator);
    }

    /// Keys Flotilla loads but does not apply (docs/kubernetes-keywords.md says why): a note
    /// each, so an operator does not expect them to change the Pod.
    fn note_unapplied(&self, path: &KeyPath, validator: &mut Validator) {
        let set = [
            (
                "helper_image_flavor",
                self.helper_image_flavor.is_some(),
                "Flotilla's helper is its own image (helper_image)",
            ),
            (
                "logs_base_dir",
                self.logs_base_dir.is_some(),
                "Flotilla keeps the job's files in /flotilla",
            ),
            (
                "scripts_base_dir",
                self.scripts_base_dir.is_some(),
                "Flotilla keeps the job's files in /flotilla",
            ),
            (
                "pod_disruption_budget",
                self.pod_disruption_budget,
                "Flotilla creates no PodDisruptionBudget yet",
            ),
            (
                "suspend_pvc_size",
                self.suspend_pvc_size.is_some(),
                "Flotilla does not suspend jobs",
            ),
            (
                "suspend_pvc_storage_class",
                self.suspend_pvc_storage_class.is_some(),
                "Flotilla does not suspend jobs",
            ),
        ];
        for (key, is_set, why) in set {
            if is_set {
                validator.note(&path.key(key), format!("is ignored: {why}"));
            }
        }
    }

    fn validate_timing(&self, path: &KeyPath, validator: &mut Validator) {
        if self.poll_timeout < self.poll_interval {
            validator.error(
                &path.key("poll_timeout"),
                format!(
                    "{} s is shorter than poll_interval ({} s)",
                    self.poll_timeout, self.poll_interval
                ),
            );
        }
        if self.termination_grace_period_seconds.is_some() {
            validator.deprecated(
                &path.key("terminationGracePeriodSeconds"),
                "use pod_termination_grace_period_seconds and cleanup_grace_period_seconds; \
                 GitLab Runner 17.0 dropped this key, Flotilla still applies it to both",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WarningKind;

    fn check(text: &str) -> (Vec<String>, Vec<String>) {
        let config: KubernetesConfig = toml::from_str(text).unwrap();
        let mut validator = Validator::default();
        config.validate(&KeyPath::root().key("k"), &mut validator);
        (
            validator.errors.iter().map(ToString::to_string).collect(),
            validator.warnings.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(check(""), (vec![], vec![]));
    }

    #[test]
    fn connection_rules() {
        let (errors, warnings) =
            check("host = \"45.67.34.123:4892\"\ncert_file = \"/c\"\nbearer_token_overwrite_allowed = true");
        assert_eq!(
            errors,
            [
                "k.host: \"45.67.34.123:4892\" is not an absolute http(s) URL (e.g. \"https://gitlab.example.com\")",
                "k.key_file: is required when cert_file is set",
            ]
        );
        assert!(warnings.is_empty());
        let (_, warnings) = check("bearer_token_overwrite_allowed = true");
        assert_eq!(
            warnings,
            ["k.bearer_token_overwrite_allowed: a job's KUBERNETES_BEARER_TOKEN is only used together with host"]
        );
    }

    #[test]
    fn names_are_kubernetes_names() {
        let (errors, _) = check("namespace = \"My_NS\"\nimage_pull_secrets = [\"ok\", \"Not OK\"]\n[node_selector]\n\"bad key!\" = \"x\"\n[pod_labels]\napp = \"$CI_PROJECT_NAME\"\nteam = \"no spaces allowed\"");
        assert_eq!(
            errors,
            [
                "k.namespace: \"My_NS\" is not a valid Kubernetes name (lowercase letters, digits and '-', at most 63)",
                "k.image_pull_secrets[1]: \"Not OK\" is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')",
                "k.node_selector.\"bad key!\": \"bad key!\" is not a valid Kubernetes key: the name part must be at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric",
                "k.pod_labels.team: \"no spaces allowed\" is not a valid Kubernetes label value",
            ]
        );
    }

    #[test]
    fn timing_rules_and_the_deprecated_grace_period() {
        let (errors, warnings) = check("poll_interval = 5\npoll_timeout = 2\nterminationGracePeriodSeconds = 10");
        assert_eq!(errors, ["k.poll_timeout: 2 s is shorter than poll_interval (5 s)"]);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("k.terminationGracePeriodSeconds: deprecated: "),
            "{warnings:?}"
        );
        let config: KubernetesConfig =
            toml::from_str("terminationGracePeriodSeconds = 10\npod_termination_grace_period_seconds = 60").unwrap();
        assert_eq!(config.effective_pod_termination_grace_period_seconds(), Some(10));
        assert_eq!(config.effective_cleanup_grace_period_seconds(), Some(10));
    }

    #[test]
    fn dns_policy_none_needs_nameservers() {
        let (errors, _) = check("dns_policy = \"none\"");
        assert_eq!(
            errors,
            ["k.dns_policy: none needs dns_config.nameservers (the Pod would have no DNS)"]
        );
        assert_eq!(
            check("dns_policy = \"none\"\n[dns_config]\nnameservers = [\"1.2.3.4\"]").0,
            Vec::<String>::new()
        );
    }

    #[test]
    fn keys_that_are_not_applied_say_so() {
        let (errors, warnings) =
            check("helper_image_flavor = \"ubuntu\"\npod_disruption_budget = true\nscripts_base_dir = \"/tmp\"");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            warnings,
            [
                "k.helper_image_flavor: is ignored: Flotilla's helper is its own image (helper_image)",
                "k.scripts_base_dir: is ignored: Flotilla keeps the job's files in /flotilla",
                "k.pod_disruption_budget: is ignored: Flotilla creates no PodDisruptionBudget yet",
            ]
        );
    }

    #[test]
    fn notes_are_warnings_not_errors() {
        let config: KubernetesConfig =
            toml::from_str("use_service_account_image_pull_secrets = true\nimage_pull_secrets = [\"regcred\"]")
                .unwrap();
        let mut validator = Validator::default();
        config.validate(&KeyPath::root(), &mut validator);
        assert!(validator.errors.is_empty());
        assert!(matches!(validator.warnings[0].kind, WarningKind::Note(_)));
    }
}
