//! The job's services as containers of its Pod (`svc-0`, `svc-1`, …): the runner entry's
//! `[[runners.kubernetes.services]]` first, then the job's `services:`, as the official runner
//! orders them. Each is reachable from the build container by its aliases (host aliases to
//! 127.0.0.1: containers of a Pod share its network) and on localhost.

use flotilla_config::{ContainerKind, KubernetesConfig};
use flotilla_gitlab::types::{JobVariable, Service};
use k8s_openapi::api::core::v1::ResourceRequirements;

use crate::job_variables::JobVariables;
use crate::overwrites::{self, Refused};
use crate::plan::PlanError;
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

/// The services of a job under a runner entry. Each gets the job's public variables (as
/// `variables`, already expanded) and then its own (its own win); a service's resource
/// overwrite beyond what the entry allows, or an alias that is no DNS name, is refused.
pub fn plan(
    kube: &KubernetesConfig,
    job: &[Service],
    variables: &[JobVariable],
) -> Result<Vec<ServicePlan>, PlanError> {
    let shared = pod_settings::resources(kube, ContainerKind::Service);
    let public: Vec<(String, String)> = variables
        .iter()
        .filter(|v| v.public)
        .map(|v| (v.key.clone(), v.value.clone()))
        .collect();
    let configured = kube.services.iter().map(|service| {
        let own = service
            .environment
            .iter()
            .filter_map(|entry| entry.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()));
        Ok(ServicePlan {
            resources: shared.clone(),
            aliases: aliases(&service.aliases(), &service.name).map_err(PlanError::NotAllowed)?,
            image: service.name.clone(),
            entrypoint: service.entrypoint.clone(),
            command: service.command.clone(),
            env: environment(&public, own),
            ports: Vec::new(),
        })
    });
    let from_job = job.iter().filter(|service| !service.name.is_empty()).map(|service| {
        // Only the service-resource overwrites apply from a service's own variables.
        let resource_overwrites: Vec<JobVariable> = service
            .variables
            .iter()
            .filter(|v| v.key.starts_with("KUBERNETES_SERVICE_") && !v.key.ends_with("ACCOUNT_OVERWRITE"))
            .cloned()
            .collect();
        let mut settings = kube.clone();
        overwrites::apply(&mut settings, &resource_overwrites).map_err(|refused| Refused {
            variable: format!("{} of service {}", refused.variable, service.name),
            ..refused
        })?;
        // A service's variables may use the job's and each other's.
        let scope = JobVariables::new(&[variables, service.variables.as_slice()].concat(), "");
        let own = service.variables.iter().map(|v| {
            let value = if v.raw { v.value.clone() } else { scope.expand(&v.value) };
            (v.key.clone(), value)
        });
        Ok(ServicePlan {
            resources: pod_settings::resources(&settings, ContainerKind::Service),
            aliases: aliases(&service.aliases(), &service.name).map_err(PlanError::NotAllowed)?,
            image: service.name.clone(),
            entrypoint: service.entrypoint.clone(),
            command: service.command.clone(),
            env: environment(&public, own),
            ports: service.ports.iter().map(|port| port.number).collect(),
        })
    });
    configured.chain(from_job).collect()
}

/// `first`, then `then`; a repeated name keeps its first place and takes the last value.
fn environment(first: &[(String, String)], then: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for (key, value) in first.iter().cloned().chain(then) {
        match env.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => env.push((key, value)),
        }
    }
    env
}

/// The names a service is reachable by, as the official runner gives them: those GitLab
/// derives from the image (`postgres:16` → `postgres`; `registry.example.com:5000/group/redis:7`
/// → `registry.example.com-group-redis`; a derived name that is no DNS name is left out), then
/// the given ones, which must be DNS names.
fn aliases(given: &[&str], image: &str) -> Result<Vec<String>, Refused> {
    let mut all: Vec<String> = derived_aliases(image)
        .into_iter()
        .filter(|a| is_dns_subdomain(a))
        .collect();
    for alias in given {
        if !is_dns_subdomain(alias) {
            return Err(Refused {
                variable: format!("services alias of {image}"),
                value: alias.to_string(),
                rule: "is not a valid DNS name (a lowercase RFC 1123 subdomain: letters, digits, '-' and '.', starting and ending with a letter or digit)".into(),
            });
        }
        if !all.iter().any(|a| a == alias) {
            all.push(alias.to_string());
        }
    }
    Ok(all)
}

/// GitLab's two names for an image: its path without registry port, tag or digest, with `/`
/// as `__` and as `-` (one when they are the same).
fn derived_aliases(image: &str) -> Vec<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A ':' after the last '/' starts the tag (one before it is a registry port).
    let name = match without_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => without_digest,
    };
    let name = match name.split_once('/') {
        Some((registry, path)) => match registry.split_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => format!("{host}/{path}"),
            _ => name.to_string(),
        },
        None => name.to_string(),
    };
    let mut derived = vec![name.replace('/', "__"), name.replace('/', "-")];
    derived.dedup();
    derived
}

/// An RFC 1123 subdomain, as Kubernetes checks host alias names.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && !name.is_empty()
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_derived_then_given_like_gitlab() {
        assert_eq!(aliases(&[], "postgres:16").unwrap(), ["postgres"]);
        assert_eq!(
            aliases(&[], "registry.example.com:5000/group/redis:7@sha256:00").unwrap(),
            ["registry.example.com-group-redis"],
            "no port; the __ form is no DNS name"
        );
        assert_eq!(aliases(&["db", "pg"], "postgres:16").unwrap(), ["postgres", "db", "pg"]);
        assert_eq!(aliases(&["postgres"], "postgres:16").unwrap(), ["postgres"]);
        assert!(
            aliases(&[], "Registry/Redis").unwrap().is_empty(),
            "uppercase: nothing derived"
        );
        let refused = aliases(&["my_db"], "postgres:16").unwrap_err();
        assert_eq!(refused.value, "my_db");
        assert!(refused.rule.starts_with("is not a valid DNS name"), "{refused}");
    }

    #[test]
    fn services_get_the_public_job_variables_then_their_own() {
        let job: Vec<Service> = serde_json::from_value(serde_json::json!([
            {"name": "postgres:16", "variables": [
                {"key": "POSTGRES_DB", "value": "db-$CI_PROJECT_NAME"},
                {"key": "MODE", "value": "service"}]}
        ]))
        .unwrap();
        let mut secret = JobVariable::public("TOKEN", "s3cret");
        secret.public = false;
        let variables = [
            JobVariable::public("CI_PROJECT_NAME", "app"),
            JobVariable::public("MODE", "job"),
            secret,
        ];
        let services = plan(&KubernetesConfig::default(), &job, &variables).unwrap();
        let env: Vec<(&str, &str)> = services[0].env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            env,
            [
                ("CI_PROJECT_NAME", "app"),
                ("MODE", "service"),
                ("POSTGRES_DB", "db-app")
            ]
        );
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
        let services = plan(&kube, &job, &[]).unwrap();
        assert_eq!(services.len(), 2);
        assert_eq!(services[0].image, "redis:7");
        assert_eq!(services[0].env, [("MODE".to_string(), "fast".to_string())]);
        assert_eq!(services[1].aliases, ["postgres"]);
        assert_eq!(services[0].aliases, ["redis", "cache"]);
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
        let services = plan(&kube, &job, &[]).unwrap();
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
        assert!(plan(&kube, &greedy, &[]).is_err());
    }
}
