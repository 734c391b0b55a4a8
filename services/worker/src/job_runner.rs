//! Runs one job as a Pod in the worker's cluster: creates the job's Secret and Pod (both
//! named after the job, so a repeated create finds the existing ones), follows the helper
//! container's log to the log-shipper, resuming after a dropped stream without losing or
//! repeating a byte, reads the result from the helper's termination message, and deletes
//! the Pod (the Secret goes with it).

use std::time::Duration;

use futures::AsyncBufReadExt;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::api_retry::ApiRetry;
use crate::log_entries::split_line;
use crate::plan::{per_job_namespace, plan, PodDefaults};
use crate::pod::{object_name, owned_by, pod, secret, PodPlan, POLL_TIMEOUT_ANNOTATION};
use crate::pod_start::{progress, timed_out, Progress, StartFailure};
use crate::trace_upload::Upload;

/// The job's end as the helper wrote it to its termination message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HelperResult {
    pub state: String,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub failure_reason: Option<String>,
}

impl HelperResult {
    fn system_failure() -> HelperResult {
        HelperResult {
            state: "failed".into(),
            exit_code: 0,
            failure_reason: Some("runner_system_failure".into()),
        }
    }
}

/// The pause between two checks of `resource_availability_check_max_attempts`.
const RESOURCE_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// At most this many Warning events go to a job's log.
const MAX_WARNING_EVENTS: u32 = 100;

/// Warning events as job log lines, oldest first, each message once (a repeated event is one
/// object with a count; a Pod recreated for a pull fallback repeats its predecessor's).
fn warning_lines(mut events: Vec<Event>) -> Vec<String> {
    let when = |event: &Event| {
        event
            .last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(event.event_time.as_ref().map(|t| t.0))
            .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    events.sort_by_key(|event| when(event));
    let mut seen = std::collections::HashSet::new();
    events
        .into_iter()
        .filter_map(|event| event.message)
        .filter(|message| seen.insert(message.clone()))
        .map(|message| format!("Event retrieved from the cluster: {message}"))
        .collect()
}

/// What a finished job reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub result: HelperResult,
    /// Bytes of log sent to the log-shipper.
    pub log_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Upload(#[from] crate::trace_upload::UploadError),
    #[error(transparent)]
    Start(#[from] StartFailure),
    #[error("watching the job's Pod: {0}")]
    Watch(#[from] kube::runtime::wait::Error),
    #[error("the runner entry's host: {0}")]
    Connect(#[from] crate::kube_connect::ConnectError),
    /// `resource_availability_check_max_attempts` ran out (the official runner's words).
    #[error("Timed out while waiting for {kind}/{name} to be present in the cluster")]
    Missing { kind: &'static str, name: String },
}

impl JobError {
    /// The failure reason GitLab is told for a job that ended with this error.
    pub fn failure_reason(&self) -> &'static str {
        match self {
            // A refused overwrite is the job's (or its configuration's) doing, not the system's.
            JobError::Plan(plan) if plan.is_configuration_error() => "runner_configuration_error",
            JobError::Start(failure) => failure.failure_reason(),
            // The entry's own host settings cannot be used (a missing CA file, a bad URL).
            JobError::Connect(_) => "runner_configuration_error",
            _ => "runner_system_failure",
        }
    }
}

/// Where the worker's jobs run.
#[derive(Clone)]
pub struct JobRunner {
    pub client: kube::Client,
    /// Where a runner entry's `context` is looked up (see [`crate::run::Settings`]).
    pub kubeconfig: Option<std::path::PathBuf>,
    pub namespace: String,
    pub worker_id: String,
    pub helper_image: String,
    pub helper_binary: String,
    pub default_image: String,
    pub builds_dir: String,
    pub shipper_url: String,
    /// TLS to the coordinator and the log-shipper.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// Where each job's Pod is, when not in the worker's own namespace of its cluster.
    pub places: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, JobPlace>>>,
    /// Jobs the coordinator asked to cancel, so that a cancel reaches a job whose Pod has not
    /// started (or does not exist yet): the helper only sees the Pod's annotation once it runs.
    pub cancels: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, CancellationToken>>>,
}

/// Where a job's Pod lives.
#[derive(Clone)]
pub struct JobPlace {
    pub namespace: String,
    /// The API server of the job's runner entry when it names its own `host` (with its
    /// credentials, or the job's `KUBERNETES_BEARER_TOKEN`); None: the worker's cluster.
    pub client: Option<kube::Client>,
    /// How the job's requests are retried (its entry's `retry_*`).
    pub retry: ApiRetry,
}

impl JobRunner {
    /// What this worker decides about every job Pod.
    pub fn defaults(&self) -> PodDefaults {
        PodDefaults {
            namespace: self.namespace.clone(),
            worker_id: self.worker_id.clone(),
            helper_image: self.helper_image.clone(),
            helper_binary: self.helper_binary.clone(),
            default_image: self.default_image.clone(),
            builds_dir: self.builds_dir.clone(),
        }
    }

    /// The Pod of a job (see [`crate::plan::plan`]).
    pub fn plan(&self, payload_json: &str, runner_config_json: &[u8]) -> Result<PodPlan, JobError> {
        Ok(plan(&self.defaults(), payload_json, runner_config_json)?)
    }

    /// The API server and namespace of a job's Pod (its runner entry's, or an overwrite's;
    /// the worker's when the job is not known here).
    fn place(&self, job_id: u64) -> (kube::Client, String) {
        match self.places.lock().unwrap().get(&job_id) {
            Some(place) => (
                place.client.clone().unwrap_or_else(|| self.client.clone()),
                place.namespace.clone(),
            ),
            None => (self.client.clone(), self.namespace.clone()),
        }
    }

    /// How the job's requests are retried.
    fn retry(&self, job_id: u64) -> ApiRetry {
        self.places
            .lock()
            .unwrap()
            .get(&job_id)
            .map(|place| place.retry.clone())
            .unwrap_or_default()
    }

    /// The token that is cancelled when the coordinator cancels the job.
    fn cancel_token(&self, job_id: u64) -> CancellationToken {
        self.cancels.lock().unwrap().entry(job_id).or_default().clone()
    }

    fn pods(&self, job_id: u64) -> Api<Pod> {
        let (client, namespace) = self.place(job_id);
        Api::namespaced(client, &namespace)
    }

    /// The client for a job's Pod: the runner entry's own `host` if it names one (as the
    /// official runner connects per entry), else its `context` of the worker's kubeconfig,
    /// else the worker's cluster.
    async fn client_for(&self, plan: &PodPlan) -> Result<Option<kube::Client>, JobError> {
        let kube = &plan.kubernetes;
        let Some(host) = kube.host.as_deref() else {
            return match kube.context.as_deref() {
                Some(context) => Ok(Some(
                    crate::kube_connect::connect_context(self.kubeconfig.as_deref(), context).await?,
                )),
                None => Ok(None),
            };
        };
        fn path(p: &Option<String>) -> Option<&std::path::Path> {
            p.as_deref().map(std::path::Path::new)
        }
        let client = crate::kube_connect::connect_to(
            host,
            kube.bearer_token.as_ref().map(|t| t.expose()),
            path(&kube.cert_file),
            path(&kube.key_file),
            path(&kube.ca_file),
        )
        .await?;
        Ok(Some(client))
    }

    /// Creates the job's Secret and Pod, or finds them if they exist (a retried assignment).
    pub async fn create(&self, plan: &PodPlan) -> Result<Pod, JobError> {
        let place = JobPlace {
            namespace: plan.namespace.clone(),
            client: self.client_for(plan).await?,
            retry: ApiRetry::from_config(&plan.kubernetes),
        };
        self.places.lock().unwrap().insert(plan.job_id, place);
        let (client, _) = self.place(plan.job_id);
        let retry = self.retry(plan.job_id);
        let job_id = plan.job_id;
        let post = PostParams::default();
        if plan.namespace == per_job_namespace(plan.job_id) {
            let namespace: Namespace = serde_json::from_value(serde_json::json!({
                "metadata": {"name": plan.namespace, "labels": {crate::pod::JOB_ID_LABEL: plan.job_id.to_string(),
                    crate::pod::WORKER_LABEL: plan.worker_id}}
            }))
            .expect("a namespace object");
            let namespaces = Api::<Namespace>::all(client.clone());
            match retry
                .run(job_id, "create namespace", || namespaces.create(&post, &namespace))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.check_dependencies(plan, &client).await?;
        let secrets: Api<Secret> = Api::namespaced(client, &plan.namespace);
        let mut job_secret = secret(plan);
        match retry
            .run(job_id, "create secret", || secrets.create(&post, &job_secret))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        let name = object_name(plan.job_id);
        let pods = self.pods(plan.job_id);
        let job_pod = pod(plan).map_err(crate::plan::PlanError::from)?;
        let created = match retry.run(job_id, "create pod", || pods.create(&post, &job_pod)).await {
            Ok(pod) => pod,
            // Created by an earlier try whose answer was lost, or an earlier assignment.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                retry.run(job_id, "get pod", || pods.get(&name)).await?
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(uid) = created.metadata.uid.as_deref() {
            owned_by(&mut job_secret, uid, &name);
            let patch = serde_json::json!({"metadata": {"ownerReferences": job_secret.metadata.owner_references}});
            let (params, patch) = (kube::api::PatchParams::default(), kube::api::Patch::Merge(patch));
            retry
                .run(job_id, "patch secret", || secrets.patch(&name, &params, &patch))
                .await?;
        }
        Ok(created)
    }

    /// With `resource_availability_check_max_attempts`, as the official runner checks before it
    /// creates the Pod: the service account and the image pull secrets the Pod names exist,
    /// asked up to that many times, 5 s apart.
    async fn check_dependencies(&self, plan: &PodPlan, client: &kube::Client) -> Result<(), JobError> {
        let attempts = plan.kubernetes.resource_availability_check_max_attempts;
        if attempts == 0 {
            return Ok(());
        }
        let service_account = plan
            .service_account
            .clone()
            .or_else(|| plan.kubernetes.service_account.clone());
        let needed = service_account.into_iter().map(|name| ("ServiceAccount", name)).chain(
            plan.kubernetes
                .image_pull_secrets
                .iter()
                .map(|name| ("ImagePullSecret", name.clone())),
        );
        let retry = self.retry(plan.job_id);
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &plan.namespace);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &plan.namespace);
        for (kind, name) in needed {
            let mut attempt = 1;
            loop {
                let exists = if kind == "ServiceAccount" {
                    retry
                        .run(plan.job_id, "get serviceaccount", || accounts.get_opt(&name))
                        .await?
                        .is_some()
                } else {
                    retry
                        .run(plan.job_id, "get secret", || secrets.get_opt(&name))
                        .await?
                        .is_some()
                };
                if exists {
                    break;
                }
                if attempt >= attempts {
                    return Err(JobError::Missing { kind, name });
                }
                attempt += 1;
                tokio::time::sleep(RESOURCE_CHECK_INTERVAL).await;
            }
        }
        Ok(())
    }

    /// Waits until the job's Pod has started (its build container runs), at most the entry's
    /// `poll_timeout`. Given the job's `plan` (a Pod this worker just created), a failed pull
    /// is retried with that container's next pull policy in a new Pod, as the official
    /// runner does; the job's log says so at its top.
    pub async fn wait_started(&self, job_id: u64, mut plan: Option<&mut PodPlan>) -> Result<(), JobError> {
        loop {
            let timeout = match plan.as_ref() {
                Some(plan) => plan.kubernetes.poll_timeout(),
                None => self.adopted_start_budget(job_id).await?,
            };
            let failure = match self.start_progress(job_id, timeout).await? {
                None => return Ok(()),
                Some(failure) => failure,
            };
            let StartFailure::ImagePull {
                container,
                image,
                policy,
                message,
            } = &failure
            else {
                return Err(failure.into());
            };
            let Some(plan) = plan.as_deref_mut() else {
                return Err(failure.into());
            };
            if !plan.next_pull_policy(container) {
                return Err(failure.into());
            }
            let next = plan.pull_policy(container).unwrap_or_default();
            tracing::warn!(job_id, %container, %image, %policy, %next, "image pull failed; retrying with the next pull policy");
            plan.add_notice(&format!(
                "WARNING: Failed to pull image {image:?} for container {container} with pull policy {policy}: {message}; trying pull policy {next}"
            ));
            self.recreate(plan).await?;
        }
    }

    /// How much longer a Pod an earlier run of this worker created may take to start: its
    /// entry's `poll_timeout` (its annotation; the default for older Pods) less its age.
    async fn adopted_start_budget(&self, job_id: u64) -> Result<Duration, JobError> {
        let (pods, name) = (self.pods(job_id), object_name(job_id));
        let Some(pod) = self
            .retry(job_id)
            .run(job_id, "get pod", || pods.get_opt(&name))
            .await?
        else {
            return Ok(Duration::ZERO);
        };
        let timeout = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(POLL_TIMEOUT_ANNOTATION))
            .and_then(|seconds| seconds.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or_else(|| flotilla_config::KubernetesConfig::default().poll_timeout());
        let age = pod
            .metadata
            .creation_timestamp
            .map(|created| jiff::Timestamp::now().duration_since(created.0))
            .and_then(|age| Duration::try_from(age).ok())
            .unwrap_or_default();
        Ok(timeout.saturating_sub(age))
    }

    /// Watches the job's Pod until it has started (`None`) or cannot (`Some`), for at most
    /// `timeout`; an unreachable API server is retried meanwhile. At the deadline the Pod is
    /// looked at once more: only one still pending has timed out.
    async fn start_progress(&self, job_id: u64, timeout: Duration) -> Result<Option<StartFailure>, JobError> {
        let name = object_name(job_id);
        let deadline = tokio::time::Instant::now() + timeout;
        let decided = |pod: Option<&Pod>| progress(pod) != Progress::Pending;
        let canceled = self.cancel_token(job_id);
        loop {
            let started = tokio::time::timeout_at(deadline, await_condition(self.pods(job_id), &name, decided));
            let started = tokio::select! {
                started = started => started,
                () = canceled.cancelled() => return Ok(Some(StartFailure::Canceled)),
            };
            match started {
                Ok(Ok(pod)) => {
                    return Ok(match progress(pod.as_ref()) {
                        Progress::Failed(failure) => Some(failure),
                        _ => None,
                    })
                }
                Ok(Err(error)) => {
                    tracing::warn!(job_id, %error, "cannot watch the job's Pod; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(_) => {
                    let pods = self.pods(job_id);
                    let pod = self
                        .retry(job_id)
                        .run(job_id, "get pod", || pods.get_opt(&name))
                        .await?;
                    return Ok(match progress(pod.as_ref()) {
                        Progress::Pending => Some(timed_out(pod.as_ref())),
                        Progress::Started => None,
                        Progress::Failed(failure) => Some(failure),
                    });
                }
            }
        }
    }

    /// The Warning events of the job's Pod (every attempt of it), oldest first, as the job log
    /// shows them (`print_pod_warning_events`); none when they cannot be listed.
    pub async fn warning_events(&self, job_id: u64) -> Vec<String> {
        let (client, namespace) = self.place(job_id);
        let fields = format!("involvedObject.name={},type=Warning", object_name(job_id));
        let params = ListParams::default().fields(&fields).limit(MAX_WARNING_EVENTS);
        let events = Api::<Event>::namespaced(client, &namespace);
        match self
            .retry(job_id)
            .run(job_id, "list events", || events.list(&params))
            .await
        {
            Ok(events) => warning_lines(events.items),
            Err(error) => {
                tracing::warn!(job_id, %error, "cannot list the job's Pod events");
                Vec::new()
            }
        }
    }

    /// Replaces the job's Pod and Secret with new ones from `plan`.
    async fn recreate(&self, plan: &PodPlan) -> Result<(), JobError> {
        let name = object_name(plan.job_id);
        let pods = self.pods(plan.job_id);
        let (retry, job_id) = (self.retry(plan.job_id), plan.job_id);
        if let Some(old) = retry.run(job_id, "get pod", || pods.get_opt(&name)).await? {
            let now = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::background()
            };
            match retry.run(job_id, "delete pod", || pods.delete(&name, &now)).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
            let uid = old.metadata.uid.unwrap_or_default();
            // Unbounded: a Pod deleted without grace goes at once.
            await_condition(pods.clone(), &name, conditions::is_deleted(&uid)).await?;
        }
        let (client, _) = self.place(plan.job_id);
        let secrets: Api<Secret> = Api::namespaced(client, &plan.namespace);
        let background = DeleteParams::background();
        match retry
            .run(job_id, "delete secret", || secrets.delete(&name, &background))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        self.create(plan).await?;
        Ok(())
    }

    /// Follows the helper's log into `upload` until the helper has ended, leaving out its
    /// first `skip` bytes (what the log-shipper already has, for a re-adopted job); returns
    /// the helper's result.
    pub async fn follow(&self, job_id: u64, upload: &Upload, skip: u64) -> Result<HelperResult, JobError> {
        let name = object_name(job_id);
        let mut to_skip = skip as usize;
        // The newest entry shipped. Compared as times, not strings: kubelets trim trailing
        // zeros of the fraction, so the text does not sort.
        let mut last_ts: Option<jiff::Timestamp> = None;
        let retry = self.retry(job_id);
        loop {
            // Looked at before the log is read, so that a helper seen ended has its log read
            // to the end once more before its result counts (the read before may have been
            // refused while it started, or cut).
            let ended = self.helper_result(job_id).await?;
            // kube rounds sinceTime to the nearest second: floor it, then skip by timestamp.
            let since_time = last_ts.map(|ts| jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts));
            let params = LogParams {
                container: Some("helper".into()),
                follow: true,
                timestamps: true,
                since_time,
                ..Default::default()
            };
            let pods = self.pods(job_id);
            let mut starting = false;
            match retry
                .run(job_id, "follow log", || pods.log_stream(&name, &params))
                .await
            {
                Ok(stream) => {
                    let mut stream = Box::pin(stream);
                    let mut entry = Vec::new();
                    loop {
                        entry.clear();
                        match stream.read_until(b'\n', &mut entry).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                        for entry in split_line(&entry) {
                            let at = entry.timestamp.parse::<jiff::Timestamp>().ok();
                            if at.zip(last_ts).is_some_and(|(at, last)| at <= last) {
                                continue;
                            }
                            last_ts = at.or(last_ts);
                            let mut bytes = entry.bytes;
                            if to_skip > 0 {
                                let dropped = to_skip.min(bytes.len());
                                bytes.drain(..dropped);
                                to_skip -= dropped;
                            }
                            upload.send(bytes).await;
                        }
                    }
                }
                Err(kube::Error::Api(status)) if status.code == 400 => {
                    // The helper is not running yet (waiting to start).
                    starting = true;
                }
                Err(e) => return Err(e.into()),
            }
            if let Some(result) = ended {
                return Ok(result);
            }
            if starting {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// The helper's result once it has terminated.
    async fn helper_result(&self, job_id: u64) -> Result<Option<HelperResult>, JobError> {
        let (pods, name) = (self.pods(job_id), object_name(job_id));
        let pod = self.retry(job_id).run(job_id, "get pod", || pods.get(&name)).await?;
        let status = pod.status.unwrap_or_default();
        let helper = status
            .container_statuses
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.name == "helper");
        let Some(terminated) = helper.and_then(|c| c.state).and_then(|s| s.terminated) else {
            if status.phase.as_deref() == Some("Failed") {
                return Ok(Some(HelperResult::system_failure()));
            }
            return Ok(None);
        };
        let message = terminated.message.unwrap_or_default();
        Ok(Some(
            serde_json::from_str(&message).unwrap_or_else(|_| HelperResult::system_failure()),
        ))
    }

    /// Asks the helper to stop the job: `graceful` lets after_script run. The helper sees the
    /// annotation through its downward-API volume; no exec is needed.
    /// A job whose Pod has not started yet stops waiting for it at once (there is nothing for
    /// after_script to run in), whether or not the Pod exists yet.
    pub async fn cancel(&self, job_id: u64, graceful: bool) -> Result<(), JobError> {
        self.cancel_token(job_id).cancel();
        let value = if graceful { "graceful" } else { "abort" };
        let patch = serde_json::json!({"metadata": {"annotations": {crate::pod::CANCEL_ANNOTATION: value}}});
        let (params, patch) = (kube::api::PatchParams::default(), kube::api::Patch::Merge(patch));
        let (pods, name) = (self.pods(job_id), object_name(job_id));
        match self
            .retry(job_id)
            .run(job_id, "annotate pod", || pods.patch(&name, &params, &patch))
            .await
        {
            Ok(_) => Ok(()),
            // Not created yet: the token stops the job before its Pod is waited for.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The jobs whose Pods this worker created (by the worker label, in any namespace), e.g.
    /// before a restart; their namespaces are remembered.
    pub async fn own_jobs(&self) -> Result<Vec<u64>, JobError> {
        let selector = format!("{}={}", crate::pod::WORKER_LABEL, self.worker_id);
        let pods = Api::<Pod>::all(self.client.clone())
            .list(&kube::api::ListParams::default().labels(&selector))
            .await?;
        let mut ids = Vec::new();
        for pod in pods
            .items
            .iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        {
            let job_id = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(crate::pod::JOB_ID_LABEL))
                .and_then(|id| id.parse::<u64>().ok());
            if let (Some(job_id), Some(namespace)) = (job_id, pod.metadata.namespace.clone()) {
                let place = JobPlace {
                    namespace,
                    client: None,
                    retry: ApiRetry::default(),
                };
                self.places.lock().unwrap().insert(job_id, place);
                ids.push(job_id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    pub async fn delete(&self, job_id: u64) -> Result<(), JobError> {
        let (pods, name) = (self.pods(job_id), object_name(job_id));
        let (retry, background) = (self.retry(job_id), DeleteParams::background());
        match retry
            .run(job_id, "delete pod", || pods.delete(&name, &background))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        // A namespace made for the job goes with it (and takes anything left in it along).
        let (client, namespace) = self.place(job_id);
        self.places.lock().unwrap().remove(&job_id);
        self.cancels.lock().unwrap().remove(&job_id);
        if namespace == per_job_namespace(job_id) {
            let (namespaces, namespace) = (Api::<Namespace>::all(client), per_job_namespace(job_id));
            match retry
                .run(job_id, "delete namespace", || {
                    namespaces.delete(&namespace, &background)
                })
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Follows a job's Pod into the log-shipper at `shipper_url`, from `offset` bytes of its
    /// log (what the shipper already has), until the helper has ended: its result and the
    /// log's total size.
    ///
    /// It first waits for the Pod to start (see [`Self::wait_started`]; `plan` is the job's
    /// when this worker just created its Pod).
    pub async fn supervise(
        &self,
        job_id: u64,
        shipper_url: &str,
        offset: u64,
        plan: Option<&mut PodPlan>,
    ) -> Result<(HelperResult, u64), JobError> {
        self.wait_started(job_id, plan).await?;
        let upload = Upload::start(shipper_url, self.tls.as_ref(), job_id, offset).await?;
        let result = self.follow(job_id, &upload, offset).await?;
        Ok((result, upload.finish().await?))
    }

    /// The whole job: create, follow, result, delete.
    pub async fn run(&self, payload_json: &str) -> Result<JobRun, JobError> {
        let mut plan = self.plan(payload_json, b"")?;
        self.create(&plan).await?;
        let (result, log_bytes) = self
            .supervise(plan.job_id, &self.shipper_url, 0, Some(&mut plan))
            .await?;
        if let Err(error) = self.delete(plan.job_id).await {
            tracing::warn!(job_id = plan.job_id, %error, "deleting the job's Pod failed; the reaper will retry");
        }
        Ok(JobRun { result, log_bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str, last_seen: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("e-{last_seen}")},
            "involvedObject": {},
            "type": "Warning",
            "message": message,
            "lastTimestamp": last_seen,
        }))
        .unwrap()
    }

    #[test]
    fn warning_events_are_listed_oldest_first_each_message_once() {
        let lines = warning_lines(vec![
            event("Error: ImagePullBackOff", "2026-12-05T10:00:03Z"),
            event("Failed to pull image \"x\": not found", "2026-12-05T10:00:01Z"),
            event("Error: ErrImagePull", "2026-12-05T10:00:02Z"),
            // The recreated Pod's identical event.
            event("Error: ErrImagePull", "2026-12-05T10:00:05Z"),
        ]);
        assert_eq!(
            lines,
            [
                "Event retrieved from the cluster: Failed to pull image \"x\": not found",
                "Event retrieved from the cluster: Error: ErrImagePull",
                "Event retrieved from the cluster: Error: ImagePullBackOff",
            ]
        );
    }
}
