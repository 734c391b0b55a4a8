//! The final `PUT /jobs/:id`: once the worker reported the job's end and the log-shipper
//! reported its log flushed (size and checksum), GitLab is told the job's state, retrying
//! like the official runner: on 202 ("accepted but not completed") after GitLab's interval,
//! without limit; on failures with backoff, up to `retry_limit` tries.

use std::time::Duration;

use flotilla_gitlab::types::JobFeatures;
use flotilla_gitlab::{FailureReason, JobUpdate, RunnerClient, Secret, TraceOutput, UpdateOutcome};

use crate::job::JobOutcome;

#[derive(Debug, Clone, Copy)]
pub struct FinishTiming {
    /// `job_status_final_update_retry_limit` (official default 10).
    pub retry_limit: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Wait after a 202 that carried no interval.
    pub default_interval: Duration,
}

impl Default for FinishTiming {
    fn default() -> Self {
        FinishTiming {
            retry_limit: 10,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
            default_interval: Duration::from_secs(3),
        }
    }
}

/// How the final update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// GitLab has the state (or had already ended the job itself).
    Delivered,
    /// GitLab asks for the whole log again (trace_reset), then the update.
    TraceResetRequested,
    /// Every try failed; the job stays `finishing` and is retried later (or after a restart).
    GaveUp { last_error: String },
}

/// The update GitLab gets for an outcome; the failure reason is mapped to what this GitLab
/// accepts (its `features.failure_reasons`).
pub fn final_update(outcome: &JobOutcome, output: TraceOutput, features: &JobFeatures) -> JobUpdate {
    if outcome.state == "success" {
        return JobUpdate::success(output);
    }
    let reason = outcome
        .failure_reason
        .as_deref()
        .and_then(|r| r.parse::<FailureReason>().ok());
    JobUpdate::failed(
        features.map_failure_reason(reason),
        outcome.exit_code.filter(|c| *c != 0),
        output,
    )
}

pub async fn deliver(
    client: &RunnerClient,
    job_id: u64,
    job_token: &Secret,
    update: &JobUpdate,
    timing: FinishTiming,
) -> Finished {
    let mut backoff = timing.min_backoff;
    let mut last_error = String::new();
    for _ in 0..timing.retry_limit.max(1) {
        loop {
            match client.update_job(job_id, job_token, update).await {
                Ok(UpdateOutcome::Accepted | UpdateOutcome::Abort { .. }) => return Finished::Delivered,
                Ok(UpdateOutcome::CancelRequested { completed: true, .. }) => return Finished::Delivered,
                Ok(UpdateOutcome::AcceptedNotCompleted { retry_after })
                | Ok(UpdateOutcome::CancelRequested {
                    completed: false,
                    retry_after,
                }) => {
                    tokio::time::sleep(retry_after.unwrap_or(timing.default_interval)).await;
                }
                Ok(UpdateOutcome::TraceResetRequested) => return Finished::TraceResetRequested,
                Ok(UpdateOutcome::Failed { status, message }) => {
                    last_error = format!("GitLab answered {status}: {message}");
                    break;
                }
                Err(error) => {
                    last_error = error.to_string();
                    break;
                }
            }
        }
        tracing::warn!(job_id, error = %last_error, "final job update failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(timing.max_backoff);
    }
    Finished::GaveUp { last_error }
}
