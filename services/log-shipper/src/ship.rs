//! Shipping one job's log to GitLab: `PATCH /jobs/:id/trace` from the durable job log, in
//! order, at most 1 MiB per request, re-syncing on 416 and stopping on abort, then the final
//! size and checksum once the log is closed and all of it is in GitLab.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_gitlab::{JobUpdate, PatchOutcome, RunnerClient, Secret, TraceChecksum, TraceOutput, UpdateOutcome};
use tokio::sync::{mpsc, Notify};

use crate::joblog::{JobLog, JobLogError};

/// The official runner's largest trace PATCH.
pub const MAX_PATCH_BYTES: usize = 1024 * 1024;

/// Where a job's log goes.
#[derive(Debug, Clone)]
pub struct ShipTarget {
    pub client: RunnerClient,
    pub job_id: u64,
    pub job_token: Secret,
    pub debug_trace: bool,
}

/// Pace of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShipTiming {
    /// Between patches while the job runs (GitLab may change it with
    /// `X-GitLab-Trace-Update-Interval`); new data does not wait longer than this.
    pub interval: Duration,
    /// After a failed patch.
    pub retry_after: Duration,
    /// A silent job is touched (`PUT state=running`) after this long without contact, so a
    /// cancellation in GitLab is seen even when the job prints nothing (official: 30 s).
    pub keepalive: Duration,
}

impl Default for ShipTiming {
    fn default() -> Self {
        ShipTiming {
            interval: Duration::from_secs(3),
            retry_after: Duration::from_secs(3),
            keepalive: Duration::from_secs(30),
        }
    }
}

/// Something the coordinator must hear while the log ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipEvent {
    /// GitLab said `Job-Status: canceling` (graceful) or refused the job (abort).
    CancelRequested { graceful: bool },
}

/// How shipping ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipEnd {
    /// All of the closed log is in GitLab.
    Flushed { bytesize: u64, checksum: String },
    /// GitLab no longer takes this job's log (canceled, failed, token gone, 404).
    Stopped { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Log(#[from] JobLogError),
    #[error("job log task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Ships until the log is closed and flushed, or GitLab stops taking it. `wake` is notified
/// when the log grows or closes.
pub async fn ship(
    log: Arc<Mutex<JobLog>>,
    target: ShipTarget,
    wake: Arc<Notify>,
    events: mpsc::UnboundedSender<ShipEvent>,
    timing: ShipTiming,
) -> Result<ShipEnd, ShipError> {
    let mut interval = timing.interval;
    let mut cancel_reported = false;
    let mut last_contact = tokio::time::Instant::now();
    loop {
        let state = log.lock().unwrap().state().clone();
        if state.shipped < state.trace_len {
            let from = state.shipped;
            let chunk = read(&log, from, MAX_PATCH_BYTES).await?;
            let outcome = target
                .client
                .patch_trace(
                    target.job_id,
                    &target.job_token,
                    from,
                    chunk.clone(),
                    target.debug_trace,
                )
                .await;
            match outcome {
                Ok(PatchOutcome::Accepted {
                    new_offset,
                    update_interval,
                    cancel_requested,
                }) => {
                    last_contact = tokio::time::Instant::now();
                    set_shipped(&log, new_offset).await?;
                    // GitLab's cadence wins, as for the official runner (the client caps it).
                    if let Some(asked) = update_interval {
                        interval = asked;
                    }
                    if cancel_requested && !cancel_reported {
                        cancel_reported = true;
                        let _ = events.send(ShipEvent::CancelRequested { graceful: true });
                    }
                    continue;
                }
                Ok(PatchOutcome::RangeMismatch { server_offset }) => {
                    tracing::info!(
                        job_id = target.job_id,
                        from,
                        server_offset,
                        "trace range mismatch: re-syncing"
                    );
                    set_shipped(&log, server_offset).await?;
                    tokio::time::sleep(timing.retry_after).await;
                    continue;
                }
                Ok(PatchOutcome::Abort { status, job_status }) => {
                    let _ = events.send(ShipEvent::CancelRequested { graceful: false });
                    let reason = format!(
                        "GitLab answered {status} (Job-Status: {})",
                        job_status.as_deref().unwrap_or("-")
                    );
                    return Ok(ShipEnd::Stopped { reason });
                }
                Ok(PatchOutcome::NotFound) => {
                    return Ok(ShipEnd::Stopped {
                        reason: "GitLab no longer knows the job".into(),
                    })
                }
                Ok(PatchOutcome::Failed { status, .. }) => {
                    tracing::warn!(job_id = target.job_id, status, "trace patch failed: retrying");
                    tokio::time::sleep(timing.retry_after).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(job_id = target.job_id, %error, "trace patch failed: retrying");
                    tokio::time::sleep(timing.retry_after).await;
                    continue;
                }
            }
        }
        if state.closed {
            let (bytesize, checksum) = checksum(&log).await?;
            return Ok(ShipEnd::Flushed { bytesize, checksum });
        }
        // Nothing to send: touch the job if it has been silent, then wait for more log (or the
        // interval, GitLab's cadence).
        if last_contact.elapsed() >= timing.keepalive {
            last_contact = tokio::time::Instant::now();
            let touch = JobUpdate::running(TraceOutput::default());
            match target.client.update_job(target.job_id, &target.job_token, &touch).await {
                Ok(UpdateOutcome::Abort { status, job_status }) => {
                    let _ = events.send(ShipEvent::CancelRequested { graceful: false });
                    let reason = format!(
                        "GitLab answered {status} (Job-Status: {})",
                        job_status.as_deref().unwrap_or("-")
                    );
                    return Ok(ShipEnd::Stopped { reason });
                }
                Ok(UpdateOutcome::CancelRequested { .. }) if !cancel_reported => {
                    cancel_reported = true;
                    let _ = events.send(ShipEvent::CancelRequested { graceful: true });
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(job_id = target.job_id, %error, "keep-alive update failed"),
            }
        }
        let _ = tokio::time::timeout(interval.min(timing.keepalive), wake.notified()).await;
    }
}

async fn read(log: &Arc<Mutex<JobLog>>, from: u64, max: usize) -> Result<Vec<u8>, ShipError> {
    let log = log.clone();
    Ok(tokio::task::spawn_blocking(move || log.lock().unwrap().read(from, max)).await??)
}

async fn set_shipped(log: &Arc<Mutex<JobLog>>, offset: u64) -> Result<(), ShipError> {
    let log = log.clone();
    Ok(tokio::task::spawn_blocking(move || log.lock().unwrap().set_shipped(offset)).await??)
}

/// Size and CRC32 of the whole trace, exactly the bytes GitLab holds.
async fn checksum(log: &Arc<Mutex<JobLog>>) -> Result<(u64, String), ShipError> {
    let log = log.clone();
    tokio::task::spawn_blocking(move || {
        let log = log.lock().unwrap();
        let mut sum = TraceChecksum::new();
        let mut offset = 0;
        loop {
            let chunk = log.read(offset, MAX_PATCH_BYTES)?;
            if chunk.is_empty() {
                return Ok((sum.bytesize(), sum.checksum()));
            }
            offset += chunk.len() as u64;
            sum.update(&chunk);
        }
    })
    .await?
}
