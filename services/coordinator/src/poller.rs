//! One poller per `[[runners]]` entry: asks GitLab for a job only while the slot gate has
//! room for it, stores each job durably, then acknowledges it with `PUT state=running`, and
//! hands it on. Long polls are GitLab's (`last_update`); an immediate "no job" waits
//! `check_interval`; errors back off.

use std::sync::Arc;
use std::time::Duration;

use flotilla_gitlab::{JobRequest, JobUpdate, RunnerClient, Secret, SystemId, TraceOutput, UpdateOutcome, VersionInfo};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::job::{JobOutcome, JobRecord, JobState};
use crate::slots::SlotGate;
use crate::store::JobStore;

/// One `[[runners]]` entry as the poller needs it.
#[derive(Debug, Clone)]
pub struct RunnerEntry {
    pub name: String,
    pub url: String,
    pub token: Secret,
}

/// What pollers tell the rest of the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollerEvent {
    /// A job is stored and acknowledged: dispatch it.
    Accepted { job_id: u64 },
    /// GitLab canceled the job before it started: send the final state.
    Finish { job_id: u64 },
}

#[derive(Debug, Clone, Copy)]
pub struct PollTiming {
    /// Wait after GitLab answered "no job" at once (its `check_interval`).
    pub check_interval: Duration,
    /// Backoff after errors, doubling up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for PollTiming {
    fn default() -> Self {
        PollTiming {
            check_interval: Duration::from_secs(3),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

pub struct Poller {
    pub runner: RunnerEntry,
    pub client: RunnerClient,
    pub system_id: SystemId,
    pub gate: Arc<SlotGate>,
    pub store: Arc<JobStore>,
    pub events: mpsc::UnboundedSender<PollerEvent>,
    pub timing: PollTiming,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Poller {
    pub async fn run(self, shutdown: CancellationToken) {
        let info = VersionInfo::flotilla();
        let mut last_update: Option<String> = None;
        let mut backoff = self.timing.min_backoff;
        loop {
            let reservation = tokio::select! {
                r = self.gate.reserve(&self.runner.name) => r,
                _ = shutdown.cancelled() => return,
            };
            let started = tokio::time::Instant::now();
            let request = tokio::select! {
                r = self.client.request_job(&self.runner.token, &self.system_id, &info, last_update.as_deref()) => r,
                _ = shutdown.cancelled() => return,
            };
            let pause = match request {
                Ok(JobRequest::Job(job)) => {
                    backoff = self.timing.min_backoff;
                    if job.last_update.is_some() {
                        last_update = job.last_update.clone();
                    }
                    let raw = String::from_utf8_lossy(&job.raw).into_owned();
                    match self.take(job.payload.id, &job.payload.token, raw).await {
                        Ok(()) => reservation.accept(),
                        Err(error) => {
                            tracing::error!(runner = %self.runner.name, job_id = job.payload.id, %error, "could not take the job")
                        }
                    }
                    // Another job may be waiting: ask again at once.
                    Duration::ZERO
                }
                Ok(JobRequest::NoJob { last_update: new }) => {
                    backoff = self.timing.min_backoff;
                    if new.is_some() {
                        last_update = new;
                    }
                    drop(reservation);
                    // A long poll already waited; an immediate answer means GitLab does not hold requests.
                    self.timing.check_interval.saturating_sub(started.elapsed())
                }
                Ok(JobRequest::Conflict) => Duration::ZERO,
                Ok(JobRequest::Forbidden) => {
                    tracing::error!(runner = %self.runner.name, "GitLab refused the runner token (403): check `token` of this [[runners]] entry");
                    drop(reservation);
                    next_backoff(&mut backoff, self.timing.max_backoff)
                }
                Err(error) => {
                    tracing::warn!(runner = %self.runner.name, %error, "requesting a job failed");
                    drop(reservation);
                    next_backoff(&mut backoff, self.timing.max_backoff)
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }

    /// Stores the job, then acknowledges it to GitLab (never the other way round: a job
    /// GitLab thinks we run is always in the store).
    async fn take(&self, job_id: u64, job_token: &Secret, raw: String) -> Result<(), crate::store::StoreError> {
        self.store
            .insert(&JobRecord::accepted(job_id, &self.runner.name, raw, now_ms()))?;
        let ack = self
            .client
            .update_job(job_id, job_token, &JobUpdate::running(TraceOutput::default()))
            .await;
        match ack {
            Ok(UpdateOutcome::Accepted | UpdateOutcome::AcceptedNotCompleted { .. }) => {
                let _ = self.events.send(PollerEvent::Accepted { job_id });
            }
            Ok(UpdateOutcome::CancelRequested { .. }) => {
                // Canceled before it started: fail it at once, as the official runner does.
                self.finish(job_id, JobOutcome::failed("job_canceled", None))?;
            }
            Ok(UpdateOutcome::Abort { .. }) => {
                // GitLab no longer wants it: nothing to run, nothing to report.
                self.finish(job_id, JobOutcome::failed("job_canceled", None))?;
            }
            Ok(other) => {
                // The acknowledgement did not go through; GitLab still handed us the job, so
                // run it (the finisher's updates will tell if GitLab disagrees).
                tracing::warn!(job_id, outcome = ?other, "acknowledging the job failed; running it anyway");
                let _ = self.events.send(PollerEvent::Accepted { job_id });
            }
            Err(error) => {
                tracing::warn!(job_id, %error, "acknowledging the job failed; running it anyway");
                let _ = self.events.send(PollerEvent::Accepted { job_id });
            }
        }
        Ok(())
    }

    fn finish(&self, job_id: u64, outcome: JobOutcome) -> Result<(), crate::store::StoreError> {
        let state = JobState::Finishing {
            outcome,
            worker_id: None,
            cluster: None,
        };
        self.store.update(job_id, |r| r.moved_to(state.clone(), now_ms()))?;
        let _ = self.events.send(PollerEvent::Finish { job_id });
        Ok(())
    }
}

fn next_backoff(backoff: &mut Duration, max: Duration) -> Duration {
    let current = *backoff;
    *backoff = (*backoff * 2).min(max);
    current
}
