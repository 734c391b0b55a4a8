//! Resource requests and limits of `[runners.kubernetes]`, grouped per container kind.
//!
//! The file keeps the official flat keys (`cpu_limit`, `helper_memory_request`,
//! `service_ephemeral_storage_limit_overwrite_max_allowed`, …); [`KubernetesConfig::resources`]
//! hands them out as one [`ContainerResources`] per [`ContainerKind`] for the Pod builder and
//! the overwrite checks. Nothing is set by default: unset means no request or limit.

use crate::kubernetes::KubernetesConfig;
use crate::path::KeyPath;
use crate::quantity::Quantity;
use crate::validate::Validator;

/// Which containers a group of resource keys applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    /// `cpu_limit`, … (the build container).
    Build,
    /// `service_cpu_limit`, … (every service container).
    Service,
    /// `helper_cpu_limit`, … (the helper and init containers).
    Helper,
    /// `pod_cpu_limit`, … (pod-level resources; no ephemeral storage).
    Pod,
}

impl ContainerKind {
    pub const ALL: [ContainerKind; 4] = [Self::Build, Self::Service, Self::Helper, Self::Pod];

    /// The prefix of this kind's keys (`""`, `service_`, `helper_`, `pod_`).
    pub fn key_prefix(self) -> &'static str {
        match self {
            Self::Build => "",
            Self::Service => "service_",
            Self::Helper => "helper_",
            Self::Pod => "pod_",
        }
    }
}

/// The request, limit and overwrite maxima of one resource of one container kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceBounds {
    pub request: Option<Quantity>,
    pub limit: Option<Quantity>,
    /// Highest request a job may set; `None`: jobs cannot change the request.
    pub request_overwrite_max_allowed: Option<Quantity>,
    /// Highest limit a job may set; `None`: jobs cannot change the limit.
    pub limit_overwrite_max_allowed: Option<Quantity>,
}

/// Everything configured for one container kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerResources {
    pub cpu: ResourceBounds,
    pub memory: ResourceBounds,
    /// Always empty for [`ContainerKind::Pod`].
    pub ephemeral_storage: ResourceBounds,
}

const RESOURCES: [&str; 3] = ["cpu", "memory", "ephemeral_storage"];

impl KubernetesConfig {
    /// Every resource key with its value, in the order the official documentation lists them.
    pub(crate) fn quantity_fields(&self) -> [(&'static str, &Option<Quantity>); 44] {
        [
            ("cpu_limit", &self.cpu_limit),
            ("cpu_limit_overwrite_max_allowed", &self.cpu_limit_overwrite_max_allowed),
            ("cpu_request", &self.cpu_request),
            (
                "cpu_request_overwrite_max_allowed",
                &self.cpu_request_overwrite_max_allowed,
            ),
            ("memory_limit", &self.memory_limit),
            (
                "memory_limit_overwrite_max_allowed",
                &self.memory_limit_overwrite_max_allowed,
            ),
            ("memory_request", &self.memory_request),
            (
                "memory_request_overwrite_max_allowed",
                &self.memory_request_overwrite_max_allowed,
            ),
            ("ephemeral_storage_limit", &self.ephemeral_storage_limit),
            (
                "ephemeral_storage_limit_overwrite_max_allowed",
                &self.ephemeral_storage_limit_overwrite_max_allowed,
            ),
            ("ephemeral_storage_request", &self.ephemeral_storage_request),
            (
                "ephemeral_storage_request_overwrite_max_allowed",
                &self.ephemeral_storage_request_overwrite_max_allowed,
            ),
            ("service_cpu_limit", &self.service_cpu_limit),
            (
                "service_cpu_limit_overwrite_max_allowed",
                &self.service_cpu_limit_overwrite_max_allowed,
            ),
            ("service_cpu_request", &self.service_cpu_request),
            (
                "service_cpu_request_overwrite_max_allowed",
                &self.service_cpu_request_overwrite_max_allowed,
            ),
            ("service_memory_limit", &self.service_memory_limit),
            (
                "service_memory_limit_overwrite_max_allowed",
                &self.service_memory_limit_overwrite_max_allowed,
            ),
            ("service_memory_request", &self.service_memory_request),
            (
                "service_memory_request_overwrite_max_allowed",
                &self.service_memory_request_overwrite_max_allowed,
            ),
            ("service_ephemeral_storage_limit", &self.service_ephemeral_storage_limit),
            (
                "service_ephemeral_storage_limit_overwrite_max_allowed",
                &self.service_ephemeral_storage_limit_overwrite_max_allowed,
            ),
            (
                "service_ephemeral_storage_request",
                &self.service_ephemeral_storage_request,
            ),
            (
                "service_ephemeral_storage_request_overwrite_max_allowed",
                &self.service_ephemeral_storage_request_overwrite_max_allowed,
            ),
            ("helper_cpu_limit", &self.helper_cpu_limit),
            (
                "helper_cpu_limit_overwrite_max_allowed",
                &self.helper_cpu_limit_overwrite_max_allowed,
            ),
            ("helper_cpu_request", &self.helper_cpu_request),
            (
                "helper_cpu_request_overwrite_max_allowed",
                &self.helper_cpu_request_overwrite_max_allowed,
            ),
            ("helper_memory_limit", &self.helper_memory_limit),
            (
                "helper_memory_limit_overwrite_max_allowed",
                &self.helper_memory_limit_overwrite_max_allowed,
            ),
            ("helper_memory_request", &self.helper_memory_request),
            (
                "helper_memory_request_overwrite_max_allowed",
                &self.helper_memory_request_overwrite_max_allowed,
            ),
            ("helper_ephemeral_storage_limit", &self.helper_ephemeral_storage_limit),
            (
                "helper_ephemeral_storage_limit_overwrite_max_allowed",
                &self.helper_ephemeral_storage_limit_overwrite_max_allowed,
            ),
            (
                "helper_ephemeral_storage_request",
                &self.helper_ephemeral_storage_request,
            ),
            (
                "helper_ephemeral_storage_request_overwrite_max_allowed",
                &self.helper_ephemeral_storage_request_overwrite_max_allowed,
            ),
            ("pod_cpu_limit", &self.pod_cpu_limit),
            (
                "pod_cpu_limit_overwrite_max_allowed",
                &self.pod_cpu_limit_overwrite_max_allowed,
            ),
            ("pod_cpu_request", &self.pod_cpu_request),
            (
                "pod_cpu_request_overwrite_max_allowed",
                &self.pod_cpu_request_overwrite_max_allowed,
            ),
            ("pod_memory_limit", &self.pod_memory_limit),
            (
                "pod_memory_limit_overwrite_max_allowed",
                &self.pod_memory_limit_overwrite_max_allowed,
            ),
            ("pod_memory_request", &self.pod_memory_request),
            (
                "pod_memory_request_overwrite_max_allowed",
                &self.pod_memory_request_overwrite_max_allowed,
            ),
        ]
    }

    fn quantity_field(&self, key: &str) -> Option<Quantity> {
        self.quantity_fields()
            .into_iter()
            .find(|(name, _)| *name == key)
            .and_then(|(_, value)| value.clone())
    }

    /// The requests, limits and overwrite maxima configured for one kind of container.
    pub fn resources(&self, kind: ContainerKind) -> ContainerResources {
        let bounds = |resource: &str| {
            let base = format!("{}{resource}", kind.key_prefix());
            ResourceBounds {
                request: self.quantity_field(&format!("{base}_request")),
                limit: self.quantity_field(&format!("{base}_limit")),
                request_overwrite_max_allowed: self.quantity_field(&format!("{base}_request_overwrite_max_allowed")),
                limit_overwrite_max_allowed: self.quantity_field(&format!("{base}_limit_overwrite_max_allowed")),
            }
        };
        ContainerResources {
            cpu: bounds("cpu"),
            memory: bounds("memory"),
            ephemeral_storage: bounds("ephemeral_storage"),
        }
    }
}

/// No quantity may be negative, and no request may exceed its limit (Kubernetes would refuse
/// every Pod: better to say so at start-up than on each job).
pub(crate) fn validate_resources(config: &KubernetesConfig, path: &KeyPath, validator: &mut Validator) {
    for (key, value) in config.quantity_fields() {
        if value.as_ref().is_some_and(Quantity::is_negative) {
            validator.error(&path.key(key), "must not be negative");
        }
    }
    for kind in ContainerKind::ALL {
        let resources = config.resources(kind);
        let groups = [&resources.cpu, &resources.memory, &resources.ephemeral_storage];
        for (resource, bounds) in RESOURCES.iter().zip(groups) {
            if let (Some(request), Some(limit)) = (&bounds.request, &bounds.limit) {
                if request > limit {
                    let base = format!("{}{resource}", kind.key_prefix());
                    validator.error(
                        &path.key(format!("{base}_request")),
                        format!("{request} is more than {base}_limit ({limit}); Kubernetes refuses such a Pod"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> KubernetesConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn groups_the_flat_keys_per_container_kind() {
        let config = config(
            "cpu_limit = \"1\"\nhelper_memory_request = \"100Mi\"\nservice_ephemeral_storage_limit_overwrite_max_allowed = \"2Gi\"\npod_cpu_request = \"3\"",
        );
        assert_eq!(config.resources(ContainerKind::Build).cpu.limit.unwrap().as_str(), "1");
        assert_eq!(
            config.resources(ContainerKind::Helper).memory.request.unwrap().as_str(),
            "100Mi"
        );
        let service = config.resources(ContainerKind::Service);
        assert_eq!(
            service.ephemeral_storage.limit_overwrite_max_allowed.unwrap().as_str(),
            "2Gi"
        );
        assert_eq!(service.cpu, ResourceBounds::default());
        assert_eq!(config.resources(ContainerKind::Pod).cpu.request.unwrap().as_str(), "3");
    }

    #[test]
    fn every_documented_resource_key_exists() {
        let config = KubernetesConfig::default();
        let names: Vec<&str> = config.quantity_fields().iter().map(|(name, _)| *name).collect();
        assert_eq!(names.len(), 44);
        for kind in ["", "service_", "helper_"] {
            for resource in RESOURCES {
                for bound in ["limit", "request"] {
                    assert!(names.contains(&format!("{kind}{resource}_{bound}").as_str()));
                    assert!(names.contains(&format!("{kind}{resource}_{bound}_overwrite_max_allowed").as_str()));
                }
            }
        }
    }

    #[test]
    fn requests_above_limits_and_negatives_are_refused() {
        let config = config("memory_request = \"2Gi\"\nmemory_limit = \"1Gi\"\nhelper_cpu_limit = \"-1\"");
        let mut validator = Validator::default();
        validate_resources(&config, &KeyPath::root().key("k"), &mut validator);
        let errors: Vec<String> = validator.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "k.helper_cpu_limit: must not be negative",
                "k.memory_request: 2Gi is more than memory_limit (1Gi); Kubernetes refuses such a Pod",
            ]
        );
    }
}
