//! From a job (GitLab's payload) and its runner entry's settings to the [`PodPlan`]: everything
//! that decides the job's Pod and Secret. Pure: no cluster is needed, so `render-pod` shows an
//! operator exactly what the worker would create.

use flotilla_config::{KubernetesConfig, RunnerConfig};
use flotilla_gitlab::types::JobPayload;

use crate::overwrites::{self, Refused};
use crate::pod::PodPlan;

/// What the worker itself decides about every job Pod (its file's `[worker]` and `[kubernetes]`).
#[derive(Debug, Clone)]
pub struct PodDefaults {
    pub namespace: String,
    pub worker_id: String,
    pub helper_image: String,
    /// Path of `flotilla-helper` in the helper image.
    pub helper_binary: String,
    /// The job image when neither the job nor the runner entry names one.
    pub default_image: String,
    pub builds_dir: String,
}

/// The namespace of a job under `namespace_per_job`, as the official runner names it.
pub fn per_job_namespace(job_id: u64) -> String {
    format!("ci-job-{job_id}")
}

/// Why a job gets no Pod; the text goes to the job's log.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the job payload is not usable: {0}")]
    Payload(String),
    #[error("the runner entry's settings cannot be read: {0}")]
    Settings(String),
    /// A `KUBERNETES_*` overwrite the runner entry does not allow (`runner_configuration_error`).
    #[error("couldn't prepare overwrites: {0}")]
    Refused(#[from] Refused),
}

/// The Pod of a job: its payload with its `KUBERNETES_*` overwrites, and its runner entry's
/// settings as the coordinator handed them (`runner_config_json`, a `[[runners]]` entry as
/// JSON; empty: every default).
pub fn plan(defaults: &PodDefaults, payload_json: &str, runner_config_json: &[u8]) -> Result<PodPlan, PlanError> {
    let payload = JobPayload::from_slice(payload_json.as_bytes()).map_err(|e| PlanError::Payload(e.to_string()))?;
    let mut kubernetes = if runner_config_json.is_empty() {
        KubernetesConfig::default()
    } else {
        serde_json::from_slice::<RunnerConfig>(runner_config_json)
            .map_err(|e| PlanError::Settings(e.to_string()))?
            .kubernetes
    };
    // What was changed for this job goes into its log, as the official runner echoes it.
    let mut notices = overwrites::apply(&mut kubernetes, &payload.variables)?;
    let job_user = payload
        .image
        .as_ref()
        .and_then(|image| image.executor_opts.as_ref())
        .and_then(|opts| opts.kubernetes.as_ref())
        .and_then(|k| k.user.as_ref())
        .map(|user| match user {
            flotilla_gitlab::types::StringOrInt::Int(n) => n.to_string(),
            flotilla_gitlab::types::StringOrInt::String(s) => s.clone(),
        });
    notices.extend(overwrites::apply_job_user(&mut kubernetes, job_user.as_deref())?);
    crate::allowed::check(&mut kubernetes, payload.image.as_ref(), &payload.services)?;
    let namespace_overwrite = overwrites::namespace(&kubernetes, &payload.variables)?;
    if let Some(namespace) = &namespace_overwrite {
        notices.push(format!(
            "KUBERNETES_NAMESPACE_OVERWRITE: the job runs in namespace {namespace:?}"
        ));
    }
    let image = payload
        .image
        .as_ref()
        .map(|i| i.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| kubernetes.image.clone())
        .unwrap_or_else(|| defaults.default_image.clone());
    let project = payload.job_info.project_name.clone();
    let timeout = payload.runner_info.job_timeout().as_secs();
    let builds_dir = &defaults.builds_dir;
    let runtime = serde_json::json!({
        "builds_dir": builds_dir,
        "project_dir": format!("{builds_dir}/{}", if project.is_empty() { "project" } else { &project }),
        "timeout_seconds": timeout,
        "notices": notices,
    });
    Ok(PodPlan {
        job_id: payload.id,
        // A namespace of its own (namespace_per_job, created for the job and deleted with it);
        // else an overwrite; else the entry's namespace when it names one; else the worker's.
        namespace: if kubernetes.namespace_per_job {
            per_job_namespace(payload.id)
        } else {
            namespace_overwrite
                .or_else(|| (kubernetes.namespace != "default").then(|| kubernetes.namespace.clone()))
                .unwrap_or_else(|| defaults.namespace.clone())
        },
        worker_id: defaults.worker_id.clone(),
        build_image: image,
        helper_image: kubernetes
            .helper_image
            .clone()
            .unwrap_or_else(|| defaults.helper_image.clone()),
        helper_binary: defaults.helper_binary.clone(),
        builds_dir: builds_dir.clone(),
        payload_json: payload_json.to_string(),
        runtime_json: runtime.to_string(),
        labels: Default::default(),
        annotations: Default::default(),
        active_deadline_seconds: Some(timeout as i64 + 60),
        termination_grace_period_seconds: None,
        service_account: None,
        services: crate::services::plan(&kubernetes, &payload.services)?,
        pull_attempts: Default::default(),
        kubernetes,
    })
}
