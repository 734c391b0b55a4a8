//! A job as the coordinator keeps it, and the states it moves through.
//!
//! ```text
//! accepted ──assign──▶ assigned ──started──▶ running ──finished──▶ finishing ──GitLab ack──▶ done
//!    ▲                    │                                          ▲
//!    └──worker lost───────┘ (not started yet)                         │
//!    └──────────────────── cannot be scheduled / worker lost while running
//! ```
//! `finishing` holds the result until GitLab has accepted the final update; a restarted
//! coordinator resumes every job that is not `done` from its stored state.

use serde::{Deserialize, Serialize};

/// What happened to the job, as GitLab will be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOutcome {
    /// "success" or "failed".
    pub state: String,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i32>,
}

impl JobOutcome {
    pub fn success() -> JobOutcome {
        JobOutcome {
            state: "success".into(),
            failure_reason: None,
            exit_code: None,
        }
    }

    pub fn failed(reason: &str, exit_code: Option<i32>) -> JobOutcome {
        JobOutcome {
            state: "failed".into(),
            failure_reason: Some(reason.to_string()),
            exit_code,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Taken from GitLab (and acknowledged with `PUT state=running`), not yet on a worker.
    Accepted,
    /// Sent to a worker, which has not reported the Pod running yet.
    Assigned { worker_id: String, cluster: String },
    /// The worker reports the job running.
    Running { worker_id: String, cluster: String },
    /// The result is known; GitLab has not yet accepted the final update.
    Finishing {
        outcome: JobOutcome,
        worker_id: Option<String>,
        cluster: Option<String>,
    },
    /// GitLab accepted the final update.
    Done {
        outcome: JobOutcome,
        cluster: Option<String>,
    },
}

impl JobState {
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Accepted => "accepted",
            JobState::Assigned { .. } => "assigned",
            JobState::Running { .. } => "running",
            JobState::Finishing { .. } => "finishing",
            JobState::Done { .. } => "done",
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, JobState::Done { .. })
    }

    /// The worker holding the job, if any.
    pub fn worker_id(&self) -> Option<&str> {
        match self {
            JobState::Assigned { worker_id, .. } | JobState::Running { worker_id, .. } => Some(worker_id),
            JobState::Finishing { worker_id, .. } => worker_id.as_deref(),
            _ => None,
        }
    }
}

/// A refused state change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {job_id}: cannot go from {from} to {to}")]
pub struct TransitionError {
    pub job_id: u64,
    pub from: &'static str,
    pub to: &'static str,
}

/// One job, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: u64,
    /// The `[[runners]]` entry (by name) the job came from.
    pub runner: String,
    /// The job payload exactly as GitLab sent it.
    pub payload_json: String,
    #[serde(flatten)]
    pub state: JobState,
    /// Unix milliseconds.
    pub accepted_at_ms: i64,
    pub updated_at_ms: i64,
    /// How many times the job was handed to a worker (re-dispatches after worker loss).
    pub dispatches: u32,
}

impl JobRecord {
    pub fn accepted(id: u64, runner: &str, payload_json: String, now_ms: i64) -> JobRecord {
        JobRecord {
            id,
            runner: runner.to_string(),
            payload_json,
            state: JobState::Accepted,
            accepted_at_ms: now_ms,
            updated_at_ms: now_ms,
            dispatches: 0,
        }
    }

    /// The record after moving to `next`, if that move is allowed from the current state.
    pub fn moved_to(&self, next: JobState, now_ms: i64) -> Result<JobRecord, TransitionError> {
        use JobState::*;
        let allowed = match (&self.state, &next) {
            (Accepted, Assigned { .. }) => true,
            (Assigned { .. }, Accepted) => true,
            (Assigned { worker_id: a, .. }, Running { worker_id: b, .. }) => a == b,
            // A running job whose worker reconnects elsewhere is a bug; same worker only.
            (Running { worker_id: a, .. }, Running { worker_id: b, .. }) => a == b,
            (Accepted | Assigned { .. } | Running { .. }, Finishing { .. }) => true,
            (Finishing { .. }, Done { .. }) => true,
            _ => false,
        };
        if !allowed {
            return Err(TransitionError {
                job_id: self.id,
                from: self.state.name(),
                to: next.name(),
            });
        }
        let mut record = self.clone();
        if matches!(next, Assigned { .. }) {
            record.dispatches += 1;
        }
        record.state = next;
        record.updated_at_ms = now_ms;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigned(worker: &str) -> JobState {
        JobState::Assigned {
            worker_id: worker.into(),
            cluster: "a".into(),
        }
    }

    #[test]
    fn happy_path_and_redispatch_count() {
        let job = JobRecord::accepted(7, "r", "{}".into(), 1);
        let job = job.moved_to(assigned("w1"), 2).unwrap();
        assert_eq!(job.dispatches, 1);
        let job = job.moved_to(JobState::Accepted, 3).unwrap();
        let job = job.moved_to(assigned("w2"), 4).unwrap();
        assert_eq!(job.dispatches, 2);
        let job = job
            .moved_to(
                JobState::Running {
                    worker_id: "w2".into(),
                    cluster: "a".into(),
                },
                5,
            )
            .unwrap();
        let finishing = JobState::Finishing {
            outcome: JobOutcome::success(),
            worker_id: Some("w2".into()),
            cluster: None,
        };
        let job = job.moved_to(finishing, 6).unwrap();
        let job = job
            .moved_to(
                JobState::Done {
                    outcome: JobOutcome::success(),
                    cluster: None,
                },
                7,
            )
            .unwrap();
        assert!(job.state.is_done());
        assert_eq!(job.updated_at_ms, 7);
    }

    #[test]
    fn refuses_moves_that_would_run_a_job_twice_or_lose_it() {
        let running = JobRecord::accepted(7, "r", "{}".into(), 1)
            .moved_to(assigned("w1"), 2)
            .unwrap()
            .moved_to(
                JobState::Running {
                    worker_id: "w1".into(),
                    cluster: "a".into(),
                },
                3,
            )
            .unwrap();
        // A running job is never handed out again.
        let err = running.moved_to(JobState::Accepted, 4).unwrap_err();
        assert_eq!(err.to_string(), "job 7: cannot go from running to accepted");
        assert!(running.moved_to(assigned("w2"), 4).is_err());
        // Only the worker it was assigned to can start it.
        let assigned = JobRecord::accepted(8, "r", "{}".into(), 1)
            .moved_to(assigned("w1"), 2)
            .unwrap();
        assert!(assigned
            .moved_to(
                JobState::Running {
                    worker_id: "w9".into(),
                    cluster: "a".into()
                },
                3
            )
            .is_err());
    }

    #[test]
    fn records_round_trip_as_json() {
        let job = JobRecord::accepted(9, "r", "{\"id\":9}".into(), 1)
            .moved_to(assigned("w1"), 2)
            .unwrap();
        let json = serde_json::to_string(&job).unwrap();
        assert!(json.contains("\"state\":\"assigned\""), "{json}");
        assert_eq!(serde_json::from_str::<JobRecord>(&json).unwrap(), job);
    }
}
