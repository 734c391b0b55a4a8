//! The job's services as containers of its Pod (`svc-0`, `svc-1`, …): the runner entry's
//! `[[runners.kubernetes.services]]` first, then the job's `services:`, as the official runner
//! orders them. Each is reachable from the build container by its aliases (host aliases to
//! 127.0.0.1: containers of a Pod share its network) and on localhost.

use flotilla_config::{ContainerKind, KubernetesConfig};
use flotilla_gitlab::types::{JobVariable, Service};
use k8s_openapi::api::core::v1::ResourceRequirements;

use crate::overwrites::{self, Refused};
use crate::pod_settings;

/// One service container to be.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub image: String,
    pub aliases: Vec<String>,
    /// The image's entrypoint replaced (the container's `command`).
    pub entrypoint: Vec<String>,
    /// The image's command replaced (the container's `args`).
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<u16>,
    /// Its requests and limits: the entry's `service_*`, or the service's own
    /// `KUBERNETES_SERVICE_*` variables within their `*_overwrite_max_allowed`.
    pub resources: Option<ResourceRequirements>,
}

/// The services of a job under a runner entry; a service's resource overwrite beyond what the
/// entry allows is refused.
pub fn plan(kube: &KubernetesConfig, job: &[Service]) -> Result<Vec<ServicePlan>, Refused> {
    let shared = pod_settings::resources(kube, ContainerKind::Service);
    let configured = kube.services.iter().map(|service| ServicePlan {
        resources: shared.clone(),
        aliases: aliases(service.aliases(), &service.name),
        image: service.name.clone(),
        entrypoint: service.entrypoint.clone(),
        command: service.command.clone(),
        env: service
            .environment
            .iter()
            .filter_map(|entry| entry.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ports: Vec::new(),
    });
    let from_job = job.iter().filter(|service| !service.name.is_empty()).map(|service| {
        // Only the service-resource overwrites apply from a service's own variables.
        let own: Vec<JobVariable> = service
            .variables
            .iter()
            .filter(|v| v.key.starts_with("KUBERNETES_SERVICE_") && !v.key.ends_with("ACCOUNT_OVERWRITE"))
            .cloned()
            .collect();
        let mut settings = kube.clone();
        overwrites::apply(&mut settings, &own)?;
        Ok(ServicePlan {
            resources: pod_settings::resources(&settings, ContainerKind::Service),
            aliases: aliases(service.aliases(), &service.name),
            image: service.name.clone(),
            entrypoint: service.entrypoint.clone(),
            command: service.command.clone(),
            env: service
                .variables
                .iter()
                .map(|v| (v.key.clone(), v.value.clone()))
                .collect(),
            ports: service.ports.iter().map(|port| port.number).collect(),
        })
    });
    configured.map(Ok).chain(from_job).collect()
}

/// The given aliases, or the ones GitLab derives from the image name
/// (`registry.example.com/group/redis:7` → `registry.example.com__group__redis` and
/// `registry.example.com-group-redis`; `postgres:16` → `postgres`).
fn aliases(given: Vec<&str>, image: &str) -> Vec<String> {
    if !given.is_empty() {
        return given.into_iter().map(str::to_string).collect();
    }
    let without_digest = image.split('@').next().unwrap_or(image);
    // A ':' after the last '/' starts the tag (one before it is a registry port).
    let name = match without_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => without_digest,
    };
    let mut derived = vec![name.replace('/', "__"), name.replace('/', "-")];
    derived.dedup();
    derived
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_given_or_derived_like_gitlab() {
        assert_eq!(aliases(vec![], "postgres:16"), ["postgres"]);
        assert_eq!(
            aliases(vec![], "registry.example.com:5000/group/redis:7"),
            [
                "registry.example.com:5000__group__redis",
                "registry.example.com:5000-group-redis"
            ]
        );
        assert_eq!(aliases(vec!["db", "pg"], "postgres:16"), ["db", "pg"]);
    }

    #[test]
    fn configured_services_come_first() {
        let kube: KubernetesConfig = serde_json::from_value(serde_json::json!({
            "services": [{"name": "redis:7", "alias": "cache", "environment": ["MODE=fast"]}]
        }))
        .unwrap();
        let job: Vec<Service> = serde_json::from_value(serde_json::json!([
            {"name": "postgres:16", "entrypoint": ["sh", "-c"], "command": ["sleep 60"],
             "variables": [{"key": "POSTGRES_DB", "value": "app"}], "ports": [{"number": 5432}]}
        ]))
        .unwrap();
        let services = plan(&kube, &job).unwrap();
        assert_eq!(services.len(), 2);
        assert_eq!(
            (services[0].image.as_str(), services[0].aliases.clone()),
            ("redis:7", vec!["cache".to_string()])
        );
        assert_eq!(services[0].env, [("MODE".to_string(), "fast".to_string())]);
        assert_eq!(services[1].aliases, ["postgres"]);
        assert_eq!(services[1].ports, [5432]);
        assert_eq!(services[1].entrypoint, ["sh", "-c"]);
    }

    #[test]
    fn a_services_own_variables_overwrite_its_resources_within_the_max() {
        let kube: KubernetesConfig = serde_json::from_value(serde_json::json!({
            "service_memory_limit": "256Mi", "service_memory_limit_overwrite_max_allowed": "1Gi"
        }))
        .unwrap();
        let job: Vec<Service> = serde_json::from_value(serde_json::json!([
            {"name": "postgres:16", "variables": [{"key": "KUBERNETES_SERVICE_MEMORY_LIMIT", "value": "512Mi"}]},
            {"name": "redis:7"}
        ]))
        .unwrap();
        let services = plan(&kube, &job).unwrap();
        let limit = |n: usize| {
            services[n].resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"]
                .0
                .clone()
        };
        assert_eq!(
            (limit(0), limit(1)),
            ("512Mi".to_string(), "256Mi".to_string()),
            "only that service"
        );
        let greedy: Vec<Service> = serde_json::from_value(serde_json::json!([
            {"name": "postgres:16", "variables": [{"key": "KUBERNETES_SERVICE_MEMORY_LIMIT", "value": "2Gi"}]}
        ]))
        .unwrap();
        assert!(plan(&kube, &greedy).is_err());
    }
}
