//! The worker's session with the coordinator: it registers (cluster, pool, labels,
//! capacity, the jobs it still holds), heartbeats, runs each assigned job with the job
//! runner and reports it started and ended. It reconnects with backoff when the coordinator
//! is away; jobs keep running meanwhile and their ends wait in the [`JobBook`] until the
//! coordinator acknowledges them. On start it re-adopts the Pods an earlier run of the same
//! worker left behind and resumes their logs from what the log-shipper already has.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::transport::dial;
use flotilla_proto::worker_gateway_client::WorkerGatewayClient;
use flotilla_proto::{
    coordinator_message, job_event, worker_message, AssignJob, Heartbeat, JobEvent, JobFinished, JobRejected,
    JobResult, JobStarted, Register, RunningJob, WorkerMessage,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::book::JobBook;
use crate::job_runner::{HelperResult, JobError, JobRunner};
use crate::pod::object_name;
use crate::pod_start::StartFailure;
use crate::trace_upload::durable_offset;

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub coordinator_url: String,
    pub token: flotilla_gitlab::Secret,
    pub worker_id: String,
    pub cluster: String,
    pub pool: String,
    pub labels: HashMap<String, String>,
    pub capacity: u32,
}

/// What outlives a session.
struct Worker {
    config: LinkConfig,
    runner: JobRunner,
    book: JobBook,
    /// Job events for whichever session is up.
    events: mpsc::UnboundedSender<JobEvent>,
    /// The log-shipper's trace sink, as the coordinator last said.
    shipper_url: watch::Sender<String>,
    /// Stops job tasks too: a stopped worker leaves its Pods running for the next run of it
    /// to re-adopt.
    shutdown: CancellationToken,
}

impl Worker {
    /// Runs a job task until it ends or the worker stops.
    fn spawn_job(self: &Arc<Self>, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

/// Re-adopts this worker's Pods, then keeps a session up until `shutdown`.
pub async fn run(config: LinkConfig, runner: JobRunner, shutdown: CancellationToken) {
    let (events, mut pending_events) = mpsc::unbounded_channel();
    let worker = Arc::new(Worker {
        config,
        runner,
        book: JobBook::default(),
        events,
        shipper_url: watch::channel(String::new()).0,
        shutdown: shutdown.clone(),
    });
    if !adopt(&worker, &shutdown).await {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match session(&worker, &mut pending_events, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, coordinator = %worker.config.coordinator_url, "coordinator session ended; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Takes on the jobs of the Pods an earlier run of this worker left (retrying while the API
/// server is unreachable); false if stopped meanwhile.
async fn adopt(worker: &Arc<Worker>, shutdown: &CancellationToken) -> bool {
    let mut backoff = Duration::from_millis(200);
    let job_ids = loop {
        match worker.runner.own_jobs().await {
            Ok(ids) => break ids,
            Err(error) => {
                tracing::warn!(%error, "cannot list this worker's Pods yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return false,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    for job_id in job_ids {
        if worker.book.start(job_id) {
            tracing::info!(job_id, "re-adopting the job's Pod");
            worker.spawn_job(run_adopted(worker.clone(), job_id));
        }
    }
    true
}

fn message(kind: worker_message::Kind) -> WorkerMessage {
    WorkerMessage { kind: Some(kind) }
}

async fn session(
    worker: &Arc<Worker>,
    pending_events: &mut mpsc::UnboundedReceiver<JobEvent>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let config = &worker.config;
    let channel = dial(&config.coordinator_url, worker.runner.tls.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", config.token.expose())
        .parse()
        .map_err(|_| "the worker token is not a valid header value".to_string())?;
    let mut client = WorkerGatewayClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
        request.metadata_mut().insert("authorization", bearer.clone());
        Ok(request)
    });
    let (outgoing, outgoing_rx) = mpsc::channel::<WorkerMessage>(256);
    let register = Register {
        worker_id: config.worker_id.clone(),
        cluster: config.cluster.clone(),
        pool: config.pool.clone(),
        labels: config.labels.clone(),
        capacity: config.capacity,
        running: worker
            .book
            .running()
            .into_iter()
            .map(|job_id| RunningJob { job_id, log_offset: 0 })
            .collect(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ended: worker.book.unacknowledged(),
    };
    outgoing
        .send(message(worker_message::Kind::Register(register)))
        .await
        .map_err(|e| e.to_string())?;
    let mut incoming = client
        .session(ReceiverStream::new(outgoing_rx))
        .await
        .map_err(|status| status.message().to_string())?
        .into_inner();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            next = incoming.message() => {
                let Some(next) = next.map_err(|e| e.message().to_string())? else {
                    return Err("the coordinator closed the session".into());
                };
                match next.kind {
                    Some(coordinator_message::Kind::Registered(registered)) => {
                        let every = Duration::from_millis(u64::from(registered.heartbeat_interval_ms.max(100)));
                        heartbeat = tokio::time::interval(every);
                        if !registered.log_shipper_url.is_empty() {
                            worker.shipper_url.send_replace(registered.log_shipper_url);
                        }
                        tracing::info!(worker = %config.worker_id, "registered with the coordinator");
                    }
                    Some(coordinator_message::Kind::Assign(assign)) => {
                        worker.shipper_url.send_replace(assign.log_shipper_url.clone());
                        if worker.book.start(assign.job_id) {
                            worker.spawn_job(run_assigned(worker.clone(), assign));
                        } else {
                            tracing::warn!(job_id = assign.job_id, "ignoring a repeated assignment");
                        }
                    }
                    Some(coordinator_message::Kind::Cancel(cancel)) => {
                        let runner = worker.runner.clone();
                        tokio::spawn(async move {
                            if let Err(error) = runner.cancel(cancel.job_id, cancel.graceful).await {
                                tracing::warn!(job_id = cancel.job_id, %error, "could not cancel the job");
                            }
                        });
                    }
                    Some(coordinator_message::Kind::Ended(ended)) if worker.book.acknowledged(ended.job_id) => {
                        let runner = worker.runner.clone();
                        tokio::spawn(async move {
                            if let Err(error) = runner.delete(ended.job_id).await {
                                tracing::warn!(job_id = ended.job_id, %error, "deleting the job's Pod failed");
                            }
                        });
                    }
                    Some(coordinator_message::Kind::Ended(_)) => {}
                    None => {}
                }
            }
            Some(event) = pending_events.recv() => {
                outgoing.send(message(worker_message::Kind::JobEvent(event))).await.map_err(|e| e.to_string())?;
            }
            _ = heartbeat.tick() => {
                let running = worker.book.running();
                let beat = Heartbeat { used: running.len() as u32, running_job_ids: running };
                outgoing.send(message(worker_message::Kind::Heartbeat(beat))).await.map_err(|e| e.to_string())?;
            }
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// One assigned job, from Pod creation to its end.
async fn run_assigned(worker: Arc<Worker>, assign: AssignJob) {
    let job_id = assign.job_id;
    let runner = &worker.runner;
    let payload = String::from_utf8_lossy(&assign.payload_json).into_owned();
    let mut print_warnings = true;
    let outcome = async {
        let mut plan = runner.plan(&payload, &assign.runner_config_json)?;
        print_warnings = plan.kubernetes.print_pod_warning_events;
        runner.create(&plan).await?;
        let started = JobStarted {
            pod_name: object_name(job_id),
            namespace: plan.namespace.clone(),
        };
        let _ = worker.events.send(JobEvent {
            job_id,
            event: Some(job_event::Event::Started(started)),
        });
        runner
            .supervise(job_id, &assign.log_shipper_url, 0, Some(&mut plan))
            .await
    }
    .await;
    let warnings = start_warnings(runner, job_id, &outcome, print_warnings).await;
    ended(&worker, job_id, outcome, warnings);
}

/// The Pod's Warning events for the log of a job whose Pod could not start (a cancel is no
/// failure of the Pod's).
async fn start_warnings(
    runner: &JobRunner,
    job_id: u64,
    outcome: &Result<(HelperResult, u64), JobError>,
    enabled: bool,
) -> Vec<String> {
    match outcome {
        Err(JobError::Start(failure)) if enabled && !matches!(failure, StartFailure::Canceled) => {
            runner.warning_events(job_id).await
        }
        _ => Vec::new(),
    }
}

/// A job whose Pod an earlier run of this worker created: its log continues from what the
/// log-shipper already has.
async fn run_adopted(worker: Arc<Worker>, job_id: u64) {
    let mut urls = worker.shipper_url.subscribe();
    let Ok(url) = urls.wait_for(|url| !url.is_empty()).await.map(|url| url.clone()) else {
        return;
    };
    let runner = &worker.runner;
    let outcome = async {
        let offset = durable_offset(&url, runner.tls.as_ref(), job_id).await?;
        tracing::info!(job_id, offset, "resuming the job's log");
        runner.supervise(job_id, &url, offset, None).await
    }
    .await;
    // The entry's `print_pod_warning_events` is not known here: its default.
    let warnings = start_warnings(runner, job_id, &outcome, true).await;
    ended(&worker, job_id, outcome, warnings);
}

/// Records a job's end and tells the coordinator (now, or with the next registration).
fn ended(worker: &Worker, job_id: u64, outcome: Result<(HelperResult, u64), JobError>, warnings: Vec<String>) {
    let event = match outcome {
        Ok((result, log_bytes)) => job_event::Event::Finished(JobFinished {
            result: Some(JobResult {
                state: result.state,
                failure_reason: result.failure_reason.unwrap_or_default(),
                exit_code: result.exit_code,
                message: String::new(),
            }),
            log_bytes,
        }),
        Err(error) => {
            tracing::error!(job_id, %error, "the job could not run");
            job_event::Event::Rejected(JobRejected {
                failure_reason: error.failure_reason().into(),
                message: error.to_string(),
                warnings,
            })
        }
    };
    let event = JobEvent {
        job_id,
        event: Some(event),
    };
    worker.book.ended(event.clone());
    let _ = worker.events.send(event);
}
