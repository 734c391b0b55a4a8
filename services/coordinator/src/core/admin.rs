//! The core's answers to the admin API: the fleet's and jobs' status, operator cancels, and
//! keeping the operator's decisions (cordons, the overflow switch) in the store.

use flotilla_gitlab::types::JobPayload;
use flotilla_proto::{JobStatus, StatusReply, WorkerStatus};

use super::{Core, OPERATOR_SETTING};
use crate::job::{JobRecord, JobState};

impl Core {
    pub(super) fn save_operator_state(&self) {
        if let Err(error) = self.store.save_setting(OPERATOR_SETTING, &self.fleet.operator_state()) {
            tracing::error!(%error, "could not keep the operator's cordons and overflow switch");
        }
    }

    /// An operator's cancel: a queued job ends at once; a job on a worker is stopped there.
    pub(super) async fn admin_cancel(&mut self, job_id: u64, force: bool) -> Result<String, String> {
        let record = self
            .store
            .get(job_id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("job {job_id} is not known to the coordinator"))?;
        match &record.state {
            JobState::Accepted => {
                self.fail_without_worker(&record, "canceled by an operator (fleetctl cancel) before it started")
                    .await;
            }
            JobState::Assigned { .. } | JobState::Running { .. } => {
                self.cancel(job_id, !force, "canceled by an operator (fleetctl cancel)")
                    .await;
            }
            JobState::Finishing { .. } | JobState::Done { .. } => {
                return Err(format!("job {job_id} has already ended ({})", record.state.name()));
            }
        }
        Ok(self
            .store
            .get(job_id)
            .ok()
            .flatten()
            .map_or("unknown", |r| r.state.name())
            .to_string())
    }

    pub(super) fn worker_statuses(&self) -> Vec<WorkerStatus> {
        let mut workers: Vec<WorkerStatus> = self
            .fleet
            .workers()
            .map(|w| WorkerStatus {
                worker_id: w.worker_id.clone(),
                cluster: w.cluster.clone(),
                pool: w.pool.clone(),
                labels: w.labels.clone().into_iter().collect(),
                capacity: w.capacity,
                used: w.used,
                last_heartbeat_ms: w.last_heartbeat_ms,
                connected: true,
                state: self.fleet.state_of(w).to_string(),
                overflow: self.fleet.policy.is_overflow(&w.pool),
            })
            .collect();
        workers.sort_by(|a, b| (&a.cluster, &a.worker_id).cmp(&(&b.cluster, &b.worker_id)));
        workers
    }

    pub(super) fn status(&self) -> StatusReply {
        let jobs = self
            .store
            .all()
            .unwrap_or_default()
            .into_iter()
            .map(job_status)
            .collect();
        StatusReply {
            workers: self.worker_statuses(),
            jobs,
            overflow_mode: self.fleet.overflow_mode.as_str().to_string(),
        }
    }
}

fn job_status(record: JobRecord) -> JobStatus {
    let payload = JobPayload::from_slice(record.payload_json.as_bytes()).ok();
    let (worker_id, cluster, result) = match &record.state {
        JobState::Assigned { worker_id, cluster } | JobState::Running { worker_id, cluster } => {
            (worker_id.clone(), cluster.clone(), String::new())
        }
        JobState::Finishing {
            outcome,
            worker_id,
            cluster,
        } => (
            worker_id.clone().unwrap_or_default(),
            cluster.clone().unwrap_or_default(),
            outcome.state.clone(),
        ),
        JobState::Done { outcome, cluster } => (
            String::new(),
            cluster.clone().unwrap_or_default(),
            outcome.state.clone(),
        ),
        JobState::Accepted => Default::default(),
    };
    let outcome = match &record.state {
        JobState::Finishing { outcome, .. } | JobState::Done { outcome, .. } => Some(outcome),
        _ => None,
    };
    JobStatus {
        failure_reason: outcome.and_then(|o| o.failure_reason.clone()).unwrap_or_default(),
        exit_code: outcome.and_then(|o| o.exit_code).unwrap_or_default(),
        accepted_at_ms: record.accepted_at_ms,
        updated_at_ms: record.updated_at_ms,
        dispatches: record.dispatches,
        job_id: record.id,
        runner: record.runner.clone(),
        name: payload.as_ref().map(|p| p.job_info.name.clone()).unwrap_or_default(),
        project: payload
            .as_ref()
            .map(|p| p.job_info.project_name.clone())
            .unwrap_or_default(),
        state: record.state.name().to_string(),
        worker_id,
        cluster,
        result,
    }
}
