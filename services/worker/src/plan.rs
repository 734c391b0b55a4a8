//! From a job (GitLab's payload) and its runner entry's settings to the [`PodPlan`]: everything
//! that decides the job's Pod and Secret. Pure: no cluster is needed, so `render-pod` shows an
//! operator exactly what the worker would create.

use flotilla_config::{KubernetesConfig, RunnerConfig};
use flotilla_gitlab::types::JobPayload;

use crate::job_variables::JobVariables;
use crate::overwrites::{self, Refused};
use crate::pod::{PodPlan, PodSpecError, RUN_DIR};

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
    /// An image, service, pull policy, user or alias of the job the runner entry does not
    /// allow (`runner_configuration_error`).
    #[error("the runner does not allow this job: {0}")]
    NotAllowed(Refused),
    /// A `pod_spec` patch of the entry that does not apply to the job's Pod
    /// (`runner_configuration_error`).
    #[error(transparent)]
    PodSpec(#[from] PodSpecError),
}

impl PlanError {
    /// The job asked for something its runner entry does not allow, or the entry's own
    /// settings cannot make its Pod.
    pub fn is_configuration_error(&self) -> bool {
        matches!(
            self,
            PlanError::Refused(_) | PlanError::NotAllowed(_) | PlanError::PodSpec(_)
        )
    }
}

/// The feature flag that turns the entry's `pod_spec` patches on.
pub const ADVANCED_POD_SPEC_FLAG: &str = "FF_USE_ADVANCED_POD_SPEC_CONFIGURATION";

/// Whether a feature flag is on for a job: its job variable when that is a boolean (as the
/// official runner lets `.gitlab-ci.yml` set them), else its entry's setting.
fn feature_flag(entry: Option<&RunnerConfig>, payload: &JobPayload, name: &str) -> bool {
    let from_job = payload
        .variables
        .iter()
        .rev()
        .find(|v| v.key == name)
        .and_then(|v| parse_bool(&v.value));
    from_job
        .or_else(|| entry.and_then(|e| e.feature_flag(name)))
        .unwrap_or(false)
}

/// Go's `strconv.ParseBool`, which the official runner reads flags with.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The Pod of a job: its payload with its `KUBERNETES_*` overwrites, and its runner entry's
/// settings as the coordinator handed them (`runner_config_json`, a `[[runners]]` entry as
/// JSON; empty: every default).
pub fn plan(defaults: &PodDefaults, payload_json: &str, runner_config_json: &[u8]) -> Result<PodPlan, PlanError> {
    let mut payload = JobPayload::from_slice(payload_json.as_bytes()).map_err(|e| PlanError::Payload(e.to_string()))?;
    let entry: Option<RunnerConfig> = if runner_config_json.is_empty() {
        None
    } else {
        Some(serde_json::from_slice(runner_config_json).map_err(|e| PlanError::Settings(e.to_string()))?)
    };
    let mut kubernetes = entry.as_ref().map(|e| e.kubernetes.clone()).unwrap_or_default();
    let variables = JobVariables::new(&payload.variables, &format!("{RUN_DIR}/tmp"));
    expand_job(&mut payload, &variables);
    expand_settings(&mut kubernetes, &variables);
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
    notices.extend(overwrites::apply_job_user(&mut kubernetes, job_user.as_deref()).map_err(PlanError::NotAllowed)?);
    crate::allowed::check(&mut kubernetes, payload.image.as_ref(), &payload.services).map_err(PlanError::NotAllowed)?;
    let namespace_overwrite = overwrites::namespace(&kubernetes, &payload.variables)?;
    if let Some(namespace) = &namespace_overwrite {
        notices.push(format!(
            "KUBERNETES_NAMESPACE_OVERWRITE: the job runs in namespace {namespace:?}"
        ));
    }
    // The entry's `pod_spec` patches, behind the official runner's feature flag.
    let pod_spec_patches = if feature_flag(entry.as_ref(), &payload, ADVANCED_POD_SPEC_FLAG) {
        kubernetes.pod_spec.clone()
    } else {
        Vec::new()
    };
    if !pod_spec_patches.is_empty() {
        notices.push(
            "WARNING: Advanced Pod Spec configuration enabled, merging the provided PodSpec to the generated one."
                .into(),
        );
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
    let mut runtime = serde_json::json!({
        "builds_dir": builds_dir,
        "project_dir": format!("{builds_dir}/{}", if project.is_empty() { "project" } else { &project }),
        "timeout_seconds": timeout,
        "notices": notices,
    });
    // The entry's scripts around the job's script (the helper runs them).
    let scripts = entry.as_ref().map(|e| {
        [
            ("pre_build_script", &e.pre_build_script),
            ("post_build_script", &e.post_build_script),
            ("pre_get_sources_script", &e.pre_get_sources_script),
            ("post_get_sources_script", &e.post_get_sources_script),
        ]
    });
    for (key, script) in scripts.into_iter().flatten() {
        if let Some(script) = script {
            runtime[key] = script.as_str().into();
        }
    }
    let plan = PodPlan {
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
        services: crate::services::plan(&kubernetes, &payload.services, &payload.variables)?,
        pull_attempts: Default::default(),
        pod_spec_patches,
        kubernetes,
    };
    // A patch that does not apply fails the job now, before anything is created.
    crate::pod::pod(&plan)?;
    Ok(plan)
}

/// The job's own names with its variables in them: the image (and its `kubernetes: user`),
/// the services' names and aliases, and the variables' values (what the overwrites read).
/// The payload handed to the helper stays as GitLab sent it.
fn expand_job(payload: &mut JobPayload, variables: &JobVariables) {
    let images = payload.image.iter_mut().chain(payload.services.iter_mut());
    for image in images {
        image.name = variables.expand(&image.name);
        image.alias = variables.expand(&image.alias);
        let user = image
            .executor_opts
            .as_mut()
            .and_then(|opts| opts.kubernetes.as_mut())
            .and_then(|k| k.user.as_mut());
        if let Some(flotilla_gitlab::types::StringOrInt::String(user)) = user {
            *user = variables.expand(user);
        }
    }
    payload.variables = variables.expanded(&payload.variables);
}

/// The entry's settings that may name job variables, as the official runner expands them:
/// `image`, `helper_image`, the services' names and aliases, label and annotation values
/// (labels then made valid label values), volume mount and sub paths and claim names.
fn expand_settings(kube: &mut KubernetesConfig, variables: &JobVariables) {
    let expand = |text: &mut String| *text = variables.expand(text);
    let expand_option = |text: &mut Option<String>| {
        if let Some(text) = text.as_mut() {
            *text = variables.expand(text);
        }
    };
    expand_option(&mut kube.image);
    expand_option(&mut kube.helper_image);
    for service in &mut kube.services {
        expand(&mut service.name);
        expand_option(&mut service.alias);
    }
    for value in kube.pod_labels.values_mut() {
        *value = crate::pod_settings::label_value(&variables.expand(value));
    }
    for value in kube.pod_annotations.values_mut() {
        expand(value);
    }
    let volumes = &mut kube.volumes;
    for volume in &mut volumes.pvc {
        expand(&mut volume.name);
    }
    for (mount_path, sub_path) in volumes.mount_paths_mut() {
        expand(mount_path);
        expand_option(sub_path);
    }
}
