//! The core's placing of jobs: the queue handed to workers by the fleet's rules, the log
//! opened at the log-shipper before a job starts, jobs ended without a worker (unschedulable,
//! lost, canceled while queued) with the reason as their last log line, and cancels sent to
//! workers.

use std::collections::VecDeque;
use std::time::Duration;

use flotilla_config::ClusterSelector;
use flotilla_gitlab::types::{find_variable, JobPayload};
use flotilla_gitlab::TraceOutput;
use flotilla_proto::{
    coordinator_message, shipper_command, AssignJob, CancelJob, CloseTrace, CoordinatorMessage, OpenTrace,
    ShipperCommand,
};
use tokio::sync::mpsc;

use super::{failure_line, now_ms, Core, CLUSTER_SELECTOR_VARIABLE};
use crate::fleet::{Placement, WorkerInfo};
use crate::job::{JobOutcome, JobRecord, JobState};

impl Core {
    /// Hands queued jobs to workers: each to where the fleet's rules place it; jobs that must
    /// wait stay queued in order, and one that no connected worker could ever take fails once
    /// workers have had their chance to connect.
    pub(super) async fn dispatch(&mut self) {
        if self.shipper.is_none() {
            return;
        }
        let now = now_ms();
        let mut waiting = VecDeque::new();
        while let Some(job_id) = self.queue.pop_front() {
            let Ok(Some(record)) = self.store.get(job_id) else {
                continue;
            };
            if !matches!(record.state, JobState::Accepted) {
                continue;
            }
            let selector = match self.selector_of(&record) {
                Ok(selector) => selector,
                Err(reason) => {
                    self.fail_without_worker(&record, &reason).await;
                    continue;
                }
            };
            let waited = Duration::from_millis(now.saturating_sub(record.accepted_at_ms).max(0) as u64);
            match self.fleet.place(&selector, waited) {
                Placement::Worker(worker) => {
                    let worker = worker.clone();
                    if !self.assign(record, &worker).await {
                        // The log-shipper is gone: nothing more can start now.
                        waiting.push_back(job_id);
                        waiting.extend(self.queue.drain(..));
                        break;
                    }
                }
                Placement::Wait => waiting.push_back(job_id),
                Placement::Never => {
                    let timing = self.timing.reconnect_grace;
                    if waited >= timing && self.started.elapsed() >= timing {
                        let reason = format!(
                            "no worker in the fleet has cluster labels matching {selector:?} ({}); connected clusters: {}",
                            "the runner entry's cluster_selector and the job's FLOTILLA_CLUSTER_SELECTOR",
                            self.cluster_labels()
                        );
                        self.fail_without_worker(&record, &reason).await;
                    } else {
                        waiting.push_back(job_id);
                    }
                }
            }
        }
        self.queue = waiting;
        self.publish_capacity();
    }

    /// The labels a job needs: its runner entry's `cluster_selector` and its
    /// `FLOTILLA_CLUSTER_SELECTOR` variable.
    pub(super) fn selector_of(&self, record: &JobRecord) -> Result<ClusterSelector, String> {
        let entry = self
            .runners
            .get(&record.runner)
            .map(|route| route.cluster_selector.clone())
            .unwrap_or_default();
        let payload = JobPayload::from_slice(record.payload_json.as_bytes())
            .map_err(|e| format!("the job payload cannot be read: {e}"))?;
        match find_variable(&payload.variables, CLUSTER_SELECTOR_VARIABLE) {
            None => Ok(entry),
            Some(variable) => ClusterSelector::parse(&variable.value)
                .map(|job| entry.and(&job))
                .map_err(|e| format!("{CLUSTER_SELECTOR_VARIABLE} {:?}: {e}", variable.value)),
        }
    }

    /// `cluster-a (arch=amd64, region=eu), cluster-b (...)`, for people reading a failure.
    pub(super) fn cluster_labels(&self) -> String {
        let mut clusters: Vec<String> = self
            .fleet
            .workers()
            .map(|w| {
                let labels: Vec<String> = w.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} ({})", w.cluster, labels.join(", "))
            })
            .collect();
        clusters.sort();
        clusters.dedup();
        if clusters.is_empty() {
            "none".into()
        } else {
            clusters.join(", ")
        }
    }

    /// Sends a job to a worker; false when the log-shipper is gone.
    pub(super) async fn assign(&mut self, record: JobRecord, worker: &WorkerInfo) -> bool {
        let job_id = record.id;
        let Some((shipper, sink_url)) = self.shipper.clone() else {
            return false;
        };
        // The log must have somewhere to go before the job starts writing it.
        if !self.open_trace(&shipper, &record).await {
            return false;
        }
        let next = JobState::Assigned {
            worker_id: worker.worker_id.clone(),
            cluster: worker.cluster.clone(),
        };
        if let Err(error) = self.store.update(job_id, |r| r.moved_to(next.clone(), now_ms())) {
            tracing::error!(job_id, %error, "could not record the assignment");
            return true;
        }
        let runner_config_json = self
            .runners
            .get(&record.runner)
            .map(|r| r.config_json.clone())
            .unwrap_or_default();
        let assign = CoordinatorMessage {
            kind: Some(coordinator_message::Kind::Assign(AssignJob {
                job_id,
                runner: record.runner.clone(),
                payload_json: record.payload_json.into_bytes(),
                runner_config_json: runner_config_json.into_bytes(),
                log_shipper_url: sink_url,
            })),
        };
        if let Some(worker) = self.fleet.get_mut(&worker.worker_id) {
            worker.used += 1;
        }
        self.gate.dispatched();
        let sent = match self.outboxes.get(&worker.worker_id) {
            Some((_, outbox)) => outbox.send(assign).await.is_ok(),
            None => false,
        };
        if !sent {
            // The session ended under us: its disconnect re-queues the job.
            tracing::warn!(job_id, worker = %worker.worker_id, "worker session gone while assigning");
        }
        let overflow = self.fleet.policy.is_overflow(&worker.pool);
        self.metrics.job_assigned(&worker.cluster, &worker.pool, overflow);
        tracing::info!(job_id, worker = %worker.worker_id, cluster = %worker.cluster, overflow, "job assigned");
        true
    }

    /// Opens the job's log at the log-shipper; false when the shipper is gone.
    pub(super) async fn open_trace(&mut self, shipper: &mpsc::Sender<ShipperCommand>, record: &JobRecord) -> bool {
        let Some(open) = self.open_trace_command(record) else {
            return true;
        };
        let command = ShipperCommand {
            kind: Some(shipper_command::Kind::Open(open)),
        };
        if shipper.send(command).await.is_err() {
            self.shipper = None;
            return false;
        }
        true
    }

    /// Ends a job no worker has (any more): its log gets `reason` as its last line and GitLab
    /// gets `runner_system_failure`.
    pub(super) async fn fail_without_worker(&mut self, record: &JobRecord, reason: &str) {
        let job_id = record.id;
        tracing::warn!(job_id, %reason, "failing the job");
        let Some((shipper, _)) = self.shipper.clone() else {
            return;
        };
        if matches!(record.state, JobState::Accepted) {
            // It no longer waits for a worker.
            self.gate.dispatched();
            self.queue.retain(|id| *id != job_id);
        }
        let _ = self.open_trace(&shipper, record).await;
        let close = CloseTrace {
            job_id,
            abandoned: true,
            trailer: failure_line("runner_system_failure", reason),
            ..Default::default()
        };
        self.close_trace(close).await;
        let worker_id = record.state.worker_id().map(str::to_string);
        if let Some(worker) = worker_id.as_deref().and_then(|id| self.fleet.get_mut(id)) {
            worker.used = worker.used.saturating_sub(1);
        }
        let cluster = match &record.state {
            JobState::Assigned { cluster, .. } | JobState::Running { cluster, .. } => Some(cluster.clone()),
            _ => None,
        };
        let next = JobState::Finishing {
            outcome: JobOutcome::failed("runner_system_failure", None),
            worker_id,
            cluster,
        };
        match self.store.update(job_id, |r| r.moved_to(next.clone(), now_ms())) {
            Ok(_) => self.try_finish(job_id),
            Err(error) => tracing::warn!(job_id, %error, "could not record the failure"),
        }
    }

    /// A log-shipper (re)connected: it may have restarted, so every job that writes a log
    /// has it opened again (opening is idempotent; a restarted shipper resumes from its
    /// durable copy). Jobs whose result is in but whose "flushed" report never came (lost
    /// with a session, or with this process before a restart) have their logs closed again,
    /// which reports them flushed once more: their workers had shipped everything before
    /// reporting the result, so closing with what arrived loses nothing.
    pub(super) async fn reopen_traces(&mut self) {
        let Some((shipper, _)) = self.shipper.clone() else {
            return;
        };
        for record in self.store.unfinished().unwrap_or_default() {
            if matches!(record.state, JobState::Accepted) || self.flushed.contains_key(&record.id) {
                continue;
            }
            if !self.open_trace(&shipper, &record).await {
                return;
            }
            if !matches!(record.state, JobState::Finishing { .. }) {
                continue;
            }
            let close = CloseTrace {
                job_id: record.id,
                abandoned: true,
                ..Default::default()
            };
            self.close_trace(close).await;
        }
    }

    /// What the log-shipper needs to ship a job's log: where, with which token, what to mask.
    pub(super) fn open_trace_command(&self, record: &JobRecord) -> Option<OpenTrace> {
        let route = self.runners.get(&record.runner)?;
        let payload = JobPayload::from_slice(record.payload_json.as_bytes()).ok()?;
        let mut masked_values: Vec<String> = payload
            .variables
            .iter()
            .filter(|v| v.masked)
            .map(|v| v.value.clone())
            .collect();
        masked_values.push(payload.token.expose().to_string());
        Some(OpenTrace {
            job_id: record.id,
            gitlab_url: route.url.clone(),
            job_token: payload.token.expose().to_string(),
            masked_values,
            token_mask_prefixes: payload.features.token_mask_prefixes.clone(),
            output_limit_bytes: route.output_limit_bytes,
            debug_trace: payload.debug_trace(),
        })
    }

    /// Tells the worker running a job to cancel it (gracefully: after_script still runs).
    pub(super) async fn cancel(&mut self, job_id: u64, graceful: bool, reason: &str) {
        let Ok(Some(record)) = self.store.get(job_id) else {
            return;
        };
        let Some(worker_id) = record.state.worker_id().map(str::to_string) else {
            return;
        };
        if !graceful {
            // GitLab refuses this job's log from now on: nothing more will be flushed, and the
            // final update will only be acknowledged (or refused) without effect.
            self.flushed.insert(job_id, TraceOutput::default());
        }
        let cancel = CoordinatorMessage {
            kind: Some(coordinator_message::Kind::Cancel(CancelJob {
                job_id,
                graceful,
                reason: reason.to_string(),
            })),
        };
        if let Some((_, outbox)) = self.outboxes.get(&worker_id) {
            tracing::info!(job_id, worker = %worker_id, graceful, "canceling the job");
            let _ = outbox.send(cancel).await;
        }
    }
}
