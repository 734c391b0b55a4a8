//! `[runners.kubernetes]`: how a runner's jobs become Pods. Every key of the official runner's
//! `KubernetesConfig` (gitlab-runner 19.4, `common/config.go`) with its type and default, plus
//! the deprecated `terminationGracePeriodSeconds` the seeds still document.
//!
//! Values are checked as they are decoded (quantities, regexes, keywords) and then by the
//! validation pass in `validation` (required keys, contradictions, Kubernetes names). This
//! module only reads configuration: building Pods from it is the worker's job.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::de::{optional, positive_or};
use crate::pattern::OverwritePattern;
use crate::quantity::Quantity;
use crate::secret::Secret;

pub mod affinity;
pub mod containers;
pub mod pull_policy;
pub mod resources;
pub mod scheduling;
pub mod security;
mod validation;
pub mod volumes;

use affinity::Affinity;
use containers::{ContainerLifecycle, PodSpecPatch, Service};
use pull_policy::PullPolicies;
use scheduling::{DnsConfig, DnsPolicy, HostAlias, TolerationEffect};
use security::{ContainerSecurityContext, PodSecurityContext};
use volumes::Volumes;

/// `[runners.kubernetes]` of one `[[runners]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KubernetesConfig {
    // --- Connection to the Kubernetes API -------------------------------------------------
    /// API server URL; unset: in-cluster configuration, else the kubeconfig (`context`).
    #[serde(default, deserialize_with = "optional")]
    pub host: Option<String>,
    /// kubeconfig context to use when `host` is unset; unset: the current context.
    #[serde(default, deserialize_with = "optional")]
    pub context: Option<String>,
    /// Client certificate for the API server (needs `key_file`).
    #[serde(default, deserialize_with = "optional")]
    pub cert_file: Option<String>,
    /// Private key of `cert_file`.
    #[serde(default, deserialize_with = "optional")]
    pub key_file: Option<String>,
    /// CA bundle that signed the API server's certificate.
    #[serde(default, deserialize_with = "optional")]
    pub ca_file: Option<String>,
    /// Token for API calls; unset: the in-cluster or kubeconfig credentials.
    #[serde(default, deserialize_with = "optional")]
    pub bearer_token: Option<Secret>,
    /// Let a job replace the token with its `KUBERNETES_BEARER_TOKEN` variable (default false).
    #[serde(default)]
    pub bearer_token_overwrite_allowed: bool,

    // --- Namespace and identity -----------------------------------------------------------
    /// Namespace of the job Pods (default `default`; `""` also means `default`).
    #[serde(default = "default_namespace", deserialize_with = "namespace_or_default")]
    pub namespace: String,
    /// Regex a job's `KUBERNETES_NAMESPACE_OVERWRITE` must match; unset: overwrite disabled.
    #[serde(default, deserialize_with = "optional")]
    pub namespace_overwrite_allowed: Option<OverwritePattern>,
    /// Run each job in its own `ci-job-<id>` namespace, created and deleted per job (default false).
    #[serde(default)]
    pub namespace_per_job: bool,
    /// Service account of the job Pods; unset: the namespace's `default`.
    #[serde(default, deserialize_with = "optional")]
    pub service_account: Option<String>,
    /// Regex a job's `KUBERNETES_SERVICE_ACCOUNT_OVERWRITE` must match; unset: overwrite disabled.
    #[serde(default, deserialize_with = "optional")]
    pub service_account_overwrite_allowed: Option<OverwritePattern>,
    /// Mount the service account token into the Pod; unset: Kubernetes' default (true).
    #[serde(default)]
    pub automount_service_account_token: Option<bool>,
    /// Extra `imagePullSecrets` of every job Pod.
    #[serde(default)]
    pub image_pull_secrets: Vec<String>,
    /// Set no `imagePullSecrets` at all, so the service account's are used (default false).
    #[serde(default)]
    pub use_service_account_image_pull_secrets: bool,
    /// Check the service account and pull secrets exist before creating the Pod, 5 s apart;
    /// 0 (default): no check; a negative value means 5.
    #[serde(default, deserialize_with = "availability_attempts")]
    pub resource_availability_check_max_attempts: u32,

    // --- Images ---------------------------------------------------------------------------
    /// Image of jobs that name none.
    #[serde(default, deserialize_with = "optional")]
    pub image: Option<String>,
    /// Replaces the helper image (job variables are expanded).
    #[serde(default, deserialize_with = "optional")]
    pub helper_image: Option<String>,
    /// Helper image flavour: `alpine` (default), `alpine3.21`, `alpine-latest`, `ubuntu`.
    #[serde(default, deserialize_with = "optional")]
    pub helper_image_flavor: Option<String>,
    /// Pick the helper image's architecture and OS from the runner host (default false: linux/amd64).
    #[serde(default)]
    pub helper_image_autoset_arch_and_os: bool,
    /// When images are pulled: one policy or a fallback list; unset: the cluster's default.
    #[serde(default)]
    pub pull_policy: PullPolicies,
    /// Pull policies a job may ask for; unset: only those of `pull_policy`.
    #[serde(default)]
    pub allowed_pull_policies: PullPolicies,
    /// Image globs a job may use (`["registry.example.com/*"]`); unset: any image.
    #[serde(default)]
    pub allowed_images: Vec<String>,
    /// Service image globs a job may use; unset: any image.
    #[serde(default)]
    pub allowed_services: Vec<String>,

    // --- Security -------------------------------------------------------------------------
    /// Run every container privileged (container security contexts override it).
    #[serde(default)]
    pub privileged: Option<bool>,
    /// `allowPrivilegeEscalation` of every container; unset: Kubernetes' default.
    #[serde(default)]
    pub allow_privilege_escalation: Option<bool>,
    /// Linux capabilities added to every container (without `CAP_`).
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Linux capabilities dropped from every container; `NET_RAW` is dropped unless added.
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// UIDs a job may run as (`image: kubernetes: user`); unset: any but root (0 must be listed).
    #[serde(default)]
    pub allowed_users: Vec<NumericId>,
    /// GIDs a job may run as; unset: any but root (0 must be listed).
    #[serde(default)]
    pub allowed_groups: Vec<NumericId>,
    /// Security context of the Pod.
    #[serde(default)]
    pub pod_security_context: PodSecurityContext,
    /// Security context of the init container that prepares permissions.
    #[serde(default)]
    pub init_permissions_container_security_context: ContainerSecurityContext,
    /// Security context of the build container.
    #[serde(default)]
    pub build_container_security_context: ContainerSecurityContext,
    /// Security context of the helper container.
    #[serde(default)]
    pub helper_container_security_context: ContainerSecurityContext,
    /// Security context of every service container.
    #[serde(default)]
    pub service_container_security_context: ContainerSecurityContext,

    // --- Resources (Kubernetes quantities) ------------------------------------------------
    /// CPU limit of build containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub cpu_limit: Option<Quantity>,
    /// Highest `KUBERNETES_CPU_LIMIT` a job may set; unset: jobs cannot change `cpu_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub cpu_limit_overwrite_max_allowed: Option<Quantity>,
    /// CPU request of build containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub cpu_request: Option<Quantity>,
    /// Highest `KUBERNETES_CPU_REQUEST` a job may set; unset: jobs cannot change `cpu_request`.
    #[serde(default, deserialize_with = "optional")]
    pub cpu_request_overwrite_max_allowed: Option<Quantity>,
    /// Memory limit of build containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub memory_limit: Option<Quantity>,
    /// Highest `KUBERNETES_MEMORY_LIMIT` a job may set; unset: jobs cannot change `memory_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub memory_limit_overwrite_max_allowed: Option<Quantity>,
    /// Memory request of build containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub memory_request: Option<Quantity>,
    /// Highest `KUBERNETES_MEMORY_REQUEST` a job may set; unset: jobs cannot change `memory_request`.
    #[serde(default, deserialize_with = "optional")]
    pub memory_request_overwrite_max_allowed: Option<Quantity>,
    /// Ephemeral storage limit of build containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub ephemeral_storage_limit: Option<Quantity>,
    /// Highest `KUBERNETES_EPHEMERAL_STORAGE_LIMIT` a job may set; unset: jobs cannot change `ephemeral_storage_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub ephemeral_storage_limit_overwrite_max_allowed: Option<Quantity>,
    /// Ephemeral storage request of build containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub ephemeral_storage_request: Option<Quantity>,
    /// Highest `KUBERNETES_EPHEMERAL_STORAGE_REQUEST` a job may set; unset: jobs cannot change `ephemeral_storage_request`.
    #[serde(default, deserialize_with = "optional")]
    pub ephemeral_storage_request_overwrite_max_allowed: Option<Quantity>,
    /// CPU limit of service containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub service_cpu_limit: Option<Quantity>,
    /// Highest `KUBERNETES_SERVICE_CPU_LIMIT` a job may set; unset: jobs cannot change `service_cpu_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub service_cpu_limit_overwrite_max_allowed: Option<Quantity>,
    /// CPU request of service containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub service_cpu_request: Option<Quantity>,
    /// Highest `KUBERNETES_SERVICE_CPU_REQUEST` a job may set; unset: jobs cannot change `service_cpu_request`.
    #[serde(default, deserialize_with = "optional")]
    pub service_cpu_request_overwrite_max_allowed: Option<Quantity>,
    /// Memory limit of service containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub service_memory_limit: Option<Quantity>,
    /// Highest `KUBERNETES_SERVICE_MEMORY_LIMIT` a job may set; unset: jobs cannot change `service_memory_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub service_memory_limit_overwrite_max_allowed: Option<Quantity>,
    /// Memory request of service containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub service_memory_request: Option<Quantity>,
    /// Highest `KUBERNETES_SERVICE_MEMORY_REQUEST` a job may set; unset: jobs cannot change `service_memory_request`.
    #[serde(default, deserialize_with = "optional")]
    pub service_memory_request_overwrite_max_allowed: Option<Quantity>,
    /// Ephemeral storage limit of service containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub service_ephemeral_storage_limit: Option<Quantity>,
    /// Highest `KUBERNETES_SERVICE_EPHEMERAL_STORAGE_LIMIT` a job may set; unset: jobs cannot change `service_ephemeral_storage_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub service_ephemeral_storage_limit_overwrite_max_allowed: Option<Quantity>,
    /// Ephemeral storage request of service containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub service_ephemeral_storage_request: Option<Quantity>,
    /// Highest `KUBERNETES_SERVICE_EPHEMERAL_STORAGE_REQUEST` a job may set; unset: jobs cannot change `service_ephemeral_storage_request`.
    #[serde(default, deserialize_with = "optional")]
    pub service_ephemeral_storage_request_overwrite_max_allowed: Option<Quantity>,
    /// CPU limit of helper and init containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub helper_cpu_limit: Option<Quantity>,
    /// Highest `KUBERNETES_HELPER_CPU_LIMIT` a job may set; unset: jobs cannot change `helper_cpu_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub helper_cpu_limit_overwrite_max_allowed: Option<Quantity>,
    /// CPU request of helper and init containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub helper_cpu_request: Option<Quantity>,
    /// Highest `KUBERNETES_HELPER_CPU_REQUEST` a job may set; unset: jobs cannot change `helper_cpu_request`.
    #[serde(default, deserialize_with = "optional")]
    pub helper_cpu_request_overwrite_max_allowed: Option<Quantity>,
    /// Memory limit of helper and init containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub helper_memory_limit: Option<Quantity>,
    /// Highest `KUBERNETES_HELPER_MEMORY_LIMIT` a job may set; unset: jobs cannot change `helper_memory_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub helper_memory_limit_overwrite_max_allowed: Option<Quantity>,
    /// Memory request of helper and init containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub helper_memory_request: Option<Quantity>,
    /// Highest `KUBERNETES_HELPER_MEMORY_REQUEST` a job may set; unset: jobs cannot change `helper_memory_request`.
    #[serde(default, deserialize_with = "optional")]
    pub helper_memory_request_overwrite_max_allowed: Option<Quantity>,
    /// Ephemeral storage limit of helper and init containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub helper_ephemeral_storage_limit: Option<Quantity>,
    /// Highest `KUBERNETES_HELPER_EPHEMERAL_STORAGE_LIMIT` a job may set; unset: jobs cannot change `helper_ephemeral_storage_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub helper_ephemeral_storage_limit_overwrite_max_allowed: Option<Quantity>,
    /// Ephemeral storage request of helper and init containers (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub helper_ephemeral_storage_request: Option<Quantity>,
    /// Highest `KUBERNETES_HELPER_EPHEMERAL_STORAGE_REQUEST` a job may set; unset: jobs cannot change `helper_ephemeral_storage_request`.
    #[serde(default, deserialize_with = "optional")]
    pub helper_ephemeral_storage_request_overwrite_max_allowed: Option<Quantity>,
    /// CPU limit of the whole Pod (pod-level resources) (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub pod_cpu_limit: Option<Quantity>,
    /// Highest `KUBERNETES_POD_CPU_LIMIT` a job may set; unset: jobs cannot change `pod_cpu_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub pod_cpu_limit_overwrite_max_allowed: Option<Quantity>,
    /// CPU request of the whole Pod (pod-level resources) (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub pod_cpu_request: Option<Quantity>,
    /// Highest `KUBERNETES_POD_CPU_REQUEST` a job may set; unset: jobs cannot change `pod_cpu_request`.
    #[serde(default, deserialize_with = "optional")]
    pub pod_cpu_request_overwrite_max_allowed: Option<Quantity>,
    /// Memory limit of the whole Pod (pod-level resources) (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub pod_memory_limit: Option<Quantity>,
    /// Highest `KUBERNETES_POD_MEMORY_LIMIT` a job may set; unset: jobs cannot change `pod_memory_limit`.
    #[serde(default, deserialize_with = "optional")]
    pub pod_memory_limit_overwrite_max_allowed: Option<Quantity>,
    /// Memory request of the whole Pod (pod-level resources) (a quantity); unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub pod_memory_request: Option<Quantity>,
    /// Highest `KUBERNETES_POD_MEMORY_REQUEST` a job may set; unset: jobs cannot change `pod_memory_request`.
    #[serde(default, deserialize_with = "optional")]
    pub pod_memory_request_overwrite_max_allowed: Option<Quantity>,

    // --- Scheduling -----------------------------------------------------------------------
    /// Node labels the Pod's node must have.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Regex a job's `KUBERNETES_NODE_SELECTOR_*` (`k=v`) must match; unset: overwrite disabled.
    #[serde(default, deserialize_with = "optional")]
    pub node_selector_overwrite_allowed: Option<OverwritePattern>,
    /// Taints the Pod tolerates: `"key=value" = "Effect"`, `"key=" = …`, `"key" = …` (any value);
    /// an empty effect tolerates every effect.
    #[serde(default)]
    pub node_tolerations: BTreeMap<String, TolerationEffect>,
    /// Regex a job's `KUBERNETES_NODE_TOLERATIONS_*` must match; unset: overwrite disabled.
    #[serde(default, deserialize_with = "optional")]
    pub node_tolerations_overwrite_allowed: Option<OverwritePattern>,
    /// Node affinity, pod affinity and pod anti-affinity.
    #[serde(default)]
    pub affinity: Affinity,
    /// Scheduler of the Pods; unset: the default scheduler.
    #[serde(default, deserialize_with = "optional")]
    pub scheduler_name: Option<String>,
    /// PriorityClass of the Pods; unset: the cluster's default.
    #[serde(default, deserialize_with = "optional")]
    pub priority_class_name: Option<String>,
    /// RuntimeClass of the Pods; unset: the cluster's default.
    #[serde(default, deserialize_with = "optional")]
    pub runtime_class_name: Option<String>,
    /// Create a PodDisruptionBudget (minAvailable 1) per job Pod (default false).
    #[serde(default)]
    pub pod_disruption_budget: bool,

    // --- Pod metadata ---------------------------------------------------------------------
    /// Extra labels of every job Pod (values may use job variables).
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
    /// Regex a job's `KUBERNETES_POD_LABELS_*` (`k=v`) must match; unset: overwrite disabled.
    #[serde(default, deserialize_with = "optional")]
    pub pod_labels_overwrite_allowed: Option<OverwritePattern>,
    /// Extra annotations of every job Pod (values may use job variables).
    #[serde(default)]
    pub pod_annotations: BTreeMap<String, String>,
    /// Regex a job's `KUBERNETES_POD_ANNOTATIONS_*` (`k=v`) must match; unset: overwrite disabled.
    #[serde(default, deserialize_with = "optional")]
    pub pod_annotations_overwrite_allowed: Option<OverwritePattern>,

    // --- Networking -----------------------------------------------------------------------
    /// `none`, `default`, `cluster-first` or `cluster-first-with-host-net`; unset: cluster-first.
    #[serde(default, deserialize_with = "optional")]
    pub dns_policy: Option<DnsPolicy>,
    /// Nameservers, search domains and resolver options of the Pod.
    #[serde(default)]
    pub dns_config: DnsConfig,
    /// Extra `/etc/hosts` entries.
    #[serde(default)]
    pub host_aliases: Vec<HostAlias>,

    // --- Containers -----------------------------------------------------------------------
    /// Volumes mounted into the build container.
    #[serde(default)]
    pub volumes: Volumes,
    /// Service containers added to every job.
    #[serde(default)]
    pub services: Vec<Service>,
    /// Lifecycle hooks of the build, helper and service containers.
    #[serde(default)]
    pub container_lifecycle: ContainerLifecycle,
    /// Patches applied to the generated Pod spec (the official runner applies them only with
    /// `FF_USE_ADVANCED_POD_SPEC_CONFIGURATION`).
    #[serde(default)]
    pub pod_spec: Vec<PodSpecPatch>,
    /// Prefix of the job's log directory (`<logs_base_dir>/logs-<project>-<job>`).
    #[serde(default, deserialize_with = "optional")]
    pub logs_base_dir: Option<String>,
    /// Prefix of the job's scripts directory.
    #[serde(default, deserialize_with = "optional")]
    pub scripts_base_dir: Option<String>,
    /// Size of the PVC of suspendable job environments (default `20Gi`).
    #[serde(default, deserialize_with = "optional")]
    pub suspend_pvc_size: Option<Quantity>,
    /// StorageClass of that PVC; unset: the cluster's default.
    #[serde(default, deserialize_with = "optional")]
    pub suspend_pvc_storage_class: Option<String>,

    // --- Timing, retries, cleanup ---------------------------------------------------------
    /// Seconds between checks of a starting Pod (default 3; 0 or less: 3).
    #[serde(default = "default_poll_interval", deserialize_with = "positive_or::<_, 3>")]
    pub poll_interval: u32,
    /// Seconds to wait for a Pod to start before failing the job (default 180; 0 or less: 180).
    #[serde(default = "default_poll_timeout", deserialize_with = "positive_or::<_, 180>")]
    pub poll_timeout: u32,
    /// Pod `terminationGracePeriodSeconds`; unset: Kubernetes' 30 s.
    #[serde(default)]
    pub pod_termination_grace_period_seconds: Option<u64>,
    /// Grace period of the delete call at cleanup; unset: the Pod's own.
    #[serde(default)]
    pub cleanup_grace_period_seconds: Option<u64>,
    /// Deprecated: sets both grace periods above, and wins over them.
    #[serde(rename = "terminationGracePeriodSeconds", default)]
    pub termination_grace_period_seconds: Option<u64>,
    /// Time budget for deleting a job's resources (default `5m`; zero: `5m`).
    #[serde(
        default = "default_cleanup_resources_timeout",
        deserialize_with = "cleanup_timeout",
        serialize_with = "crate::duration::serialize"
    )]
    pub cleanup_resources_timeout: Duration,
    /// Tries for a Kubernetes API call that failed with a retryable error (default 5).
    #[serde(default = "default_retry_limit", deserialize_with = "positive_or::<_, 5>")]
    pub retry_limit: u32,
    /// Tries per error message substring; wins over `retry_limit` and makes those errors retryable.
    #[serde(default)]
    pub retry_limits: BTreeMap<String, u32>,
    /// Longest backoff between API retries, in milliseconds (default 2000, at least 500).
    #[serde(default = "default_retry_backoff_max", deserialize_with = "retry_backoff_millis")]
    pub retry_backoff_max: u32,
    /// Print Pod warning events when a job fails and conditions while it starts (default true).
    #[serde(default = "default_true")]
    pub print_pod_warning_events: bool,

    /// Pause-Pod idle capacity (`[runners.kubernetes.autoscaler]`): accepted and kept as written;
    /// Flotilla does not run pause Pods.
    #[serde(default)]
    pub autoscaler: Option<toml::Table>,
}

/// A numeric UID or GID of `allowed_users`/`allowed_groups`, written `"1000"` or `1000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct NumericId(pub u32);

impl From<NumericId> for String {
    fn from(id: NumericId) -> String {
        id.0.to_string()
    }
}

impl<'de> Deserialize<'de> for NumericId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match toml::Value::deserialize(deserializer)? {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            other => return Err(serde::de::Error::custom(format!("{other} is not a numeric ID"))),
        };
        text.parse()
            .map(NumericId)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a numeric ID")))
    }
}

impl KubernetesConfig {
    /// Grace period of the Pod spec, honouring the deprecated `terminationGracePeriodSeconds`.
    pub fn effective_pod_termination_grace_period_seconds(&self) -> Option<u64> {
        self.termination_grace_period_seconds
            .or(self.pod_termination_grace_period_seconds)
    }

    /// Grace period of the cleanup delete, honouring the deprecated `terminationGracePeriodSeconds`.
    pub fn effective_cleanup_grace_period_seconds(&self) -> Option<u64> {
        self.termination_grace_period_seconds
            .or(self.cleanup_grace_period_seconds)
    }

    /// `poll_interval` as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval.into())
    }

    /// `poll_timeout` as a duration.
    pub fn poll_timeout(&self) -> Duration {
        Duration::from_secs(self.poll_timeout.into())
    }

    /// `retry_backoff_max` as a duration.
    pub fn retry_backoff_max(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_max.into())
    }
}

impl Default for KubernetesConfig {
    /// The settings of an empty `[runners.kubernetes]` table: every official default.
    fn default() -> Self {
        // Decoding an empty table keeps one source of truth: the serde defaults above.
        Self::deserialize(toml::Value::Table(toml::Table::new())).expect("an empty table has every default")
    }
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn namespace_or_default<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let namespace = String::deserialize(deserializer)?;
    Ok(if namespace.is_empty() {
        default_namespace()
    } else {
        namespace
    })
}

fn default_poll_interval() -> u32 {
    3
}

fn default_poll_timeout() -> u32 {
    180
}

fn default_retry_limit() -> u32 {
    5
}

fn default_retry_backoff_max() -> u32 {
    2000
}

fn default_true() -> bool {
    true
}

fn default_cleanup_resources_timeout() -> Duration {
    Duration::from_secs(5 * 60)
}

fn cleanup_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let timeout = crate::duration::deserialize(deserializer)?;
    Ok(if timeout.is_zero() {
        default_cleanup_resources_timeout()
    } else {
        timeout
    })
}

/// Official: 0 or less means 2000 ms; anything under 500 ms is raised to 500 ms.
fn retry_backoff_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let millis = positive_or::<D, 2000>(deserializer)?;
    Ok(millis.max(500))
}

/// Official: 0 turns the check off, a negative value means 5 attempts.
fn availability_attempts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let attempts = i64::deserialize(deserializer)?;
    if attempts < 0 {
        return Ok(5);
    }
    u32::try_from(attempts).map_err(|_| serde::de::Error::custom(format!("{attempts} is too large")))
}
