//! The worker's session with the coordinator: it registers (cluster, pool, labels,
//! capacity), heartbeats, runs each assigned job with the job runner and reports it started
//! and finished. It reconnects with backoff when the coordinator is away.

use std::collections::HashMap;
use std::time::Duration;

use flotilla_proto::transport::dial;
use flotilla_proto::worker_gateway_client::WorkerGatewayClient;
use flotilla_proto::{
    coordinator_message, job_event, worker_message, AssignJob, Heartbeat, JobEvent, JobFinished, JobRejected,
    JobResult, JobStarted, Register, WorkerMessage,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::job_runner::{JobError, JobRunner};
use crate::pod::object_name;
use crate::trace_upload::Upload;

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

/// Keeps the session up until `shutdown`.
pub async fn run(config: LinkConfig, runner: JobRunner, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match session(&config, &runner, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, coordinator = %config.coordinator_url, "coordinator session ended; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

fn message(kind: worker_message::Kind) -> WorkerMessage {
    WorkerMessage { kind: Some(kind) }
}

fn job_event(job_id: u64, event: job_event::Event) -> WorkerMessage {
    message(worker_message::Kind::JobEvent(JobEvent {
        job_id,
        event: Some(event),
    }))
}

async fn session(config: &LinkConfig, runner: &JobRunner, shutdown: &CancellationToken) -> Result<(), String> {
    let channel = dial(&config.coordinator_url, runner.tls.as_ref())
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
        running: Vec::new(),
        version: env!("CARGO_PKG_VERSION").to_string(),
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
    let runner = runner.clone();
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
                        tracing::info!(worker = %config.worker_id, "registered with the coordinator");
                    }
                    Some(coordinator_message::Kind::Assign(assign)) => {
                        tokio::spawn(run_assigned(runner.clone(), assign, outgoing.clone()));
                    }
                    Some(coordinator_message::Kind::Cancel(cancel)) => {
                        let runner = runner.clone();
                        tokio::spawn(async move {
                            if let Err(error) = runner.cancel(cancel.job_id, cancel.graceful).await {
                                tracing::warn!(job_id = cancel.job_id, %error, "could not cancel the job");
                            }
                        });
                    }
                    None => {}
                }
            }
            _ = heartbeat.tick() => {
                let beat = Heartbeat::default();
                outgoing.send(message(worker_message::Kind::Heartbeat(beat))).await.map_err(|e| e.to_string())?;
            }
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// One assigned job, from Pod creation to the finish report.
async fn run_assigned(runner: JobRunner, assign: AssignJob, events: mpsc::Sender<WorkerMessage>) {
    let job_id = assign.job_id;
    let payload = String::from_utf8_lossy(&assign.payload_json).into_owned();
    let outcome = async {
        let plan = runner.plan(&payload)?;
        runner.create(&plan).await?;
        let started = JobStarted {
            pod_name: object_name(job_id),
            namespace: runner.namespace.clone(),
        };
        let _ = events.send(job_event(job_id, job_event::Event::Started(started))).await;
        let upload = Upload::start(&assign.log_shipper_url, runner.tls.as_ref(), job_id, 0).await?;
        let result = runner.follow(job_id, &upload).await?;
        let log_bytes = upload.finish().await?;
        if let Err(error) = runner.delete(job_id).await {
            tracing::warn!(job_id, %error, "deleting the job's Pod failed");
        }
        Ok::<_, JobError>((result, log_bytes))
    }
    .await;
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
        Err(JobError::Payload(message)) => job_event::Event::Rejected(JobRejected {
            failure_reason: "runner_system_failure".into(),
            message,
        }),
        Err(error) => {
            tracing::error!(job_id, %error, "the job could not run");
            job_event::Event::Rejected(JobRejected {
                failure_reason: "runner_system_failure".into(),
                message: error.to_string(),
            })
        }
    };
    let _ = events.send(job_event(job_id, event)).await;
}
