//! The core's side of worker sessions: registration (with the jobs a returning worker still
//! runs and the ends it could not report), job events and their acknowledgement, heartbeats,
//! and lost workers.
//!
//! A worker that goes silent for `worker_timeout`, or whose session ends, is lost: jobs it
//! had not started go back to the queue at once; jobs it was running wait `reconnect_grace`
//! for it to come back and report them (then they continue untouched), and fail with
//! `runner_system_failure` and a line in their log saying why if it does not. After a
//! coordinator restart every worker holding jobs starts out lost in this sense.

use std::collections::HashSet;
use std::time::Instant;

use flotilla_proto::{
    coordinator_message, job_event, shipper_command, CancelJob, CloseTrace, CoordinatorMessage, JobEnded, JobEvent,
    Registered, ShipperCommand,
};
use tokio::sync::mpsc;

use super::{failure_line, now_ms, warning_line, Core, Session};
use crate::fleet::WorkerInfo;
use crate::job::{JobOutcome, JobState};

impl Core {
    pub(super) fn is_current(&self, session: &Session) -> bool {
        self.outboxes
            .get(&session.worker_id)
            .is_some_and(|(id, _)| *id == session.id)
    }

    pub(super) async fn worker_connected(
        &mut self,
        session: Session,
        mut info: WorkerInfo,
        outbox: mpsc::Sender<CoordinatorMessage>,
        running: Vec<u64>,
        ended: Vec<JobEvent>,
    ) {
        let worker_id = session.worker_id.clone();
        tracing::info!(worker = %worker_id, cluster = %info.cluster, pool = %info.pool, capacity = info.capacity,
            running = running.len(), ended = ended.len(), "worker connected");
        let registered = CoordinatorMessage {
            kind: Some(coordinator_message::Kind::Registered(Registered {
                session_id: session.id.clone(),
                heartbeat_interval_ms: self.timing.heartbeat_interval.as_millis() as u32,
                log_shipper_url: self.shipper.as_ref().map(|(_, url)| url.clone()).unwrap_or_default(),
            })),
        };
        // A replaced session's outbox is dropped here, which ends that session's stream.
        self.outboxes
            .insert(worker_id.clone(), (session.id.clone(), outbox.clone()));
        let _ = outbox.send(registered).await;
        self.lost.remove(&worker_id);
        info.used = 0;
        self.fleet.upsert(info);
        for event in ended {
            self.on_job_event(&worker_id, event).await;
        }
        self.reconcile(&worker_id, &running).await;
        self.publish_capacity();
        self.dispatch().await;
    }

    /// Lines the store up with what a (re)connected worker says it runs.
    async fn reconcile(&mut self, worker_id: &str, running: &[u64]) {
        let reported: HashSet<u64> = running.iter().copied().collect();
        let mut ours = HashSet::new();
        for record in self.store.unfinished().unwrap_or_default() {
            match &record.state {
                JobState::Assigned { worker_id: w, .. } | JobState::Running { worker_id: w, .. } if w == worker_id => {
                    ours.insert(record.id);
                    if reported.contains(&record.id) {
                        continue;
                    }
                    if matches!(record.state, JobState::Assigned { .. }) {
                        self.requeue(record.id);
                    } else {
                        let reason = format!("the worker {worker_id} came back without this job (its Pod is gone)");
                        self.fail_without_worker(&record, &reason).await;
                    }
                }
                // Handed back to the queue because the worker was lost before its start report
                // arrived, but its Pod is there: the job is the worker's again.
                JobState::Accepted if reported.contains(&record.id) && self.reclaim(worker_id, record.id) => {
                    ours.insert(record.id);
                }
                _ => {}
            }
        }
        let kept = reported.intersection(&ours).count() as u32;
        if let Some(worker) = self.fleet.get_mut(worker_id) {
            worker.used = kept;
        }
        for job_id in reported.difference(&ours) {
            // Ended here already (failed while the worker was away), or never ours: nobody
            // will report it to GitLab, so it stops; its end is then acknowledged and its Pod
            // deleted like any other.
            tracing::warn!(job_id, worker = %worker_id, "the worker runs a job the coordinator does not have there: stopping it");
            let cancel = CoordinatorMessage {
                kind: Some(coordinator_message::Kind::Cancel(CancelJob {
                    job_id: *job_id,
                    graceful: false,
                    reason: "the coordinator no longer has this job on this worker".into(),
                })),
            };
            self.tell(worker_id, cancel).await;
        }
    }

    /// A worker's session ended or it went silent.
    pub(super) async fn worker_lost(&mut self, worker_id: &str, why: &str) {
        tracing::warn!(worker = %worker_id, why, "worker lost");
        self.fleet.remove(worker_id);
        self.outboxes.remove(worker_id);
        for record in self.store.unfinished().unwrap_or_default() {
            if matches!(&record.state, JobState::Assigned { worker_id: w, .. } if w == worker_id) {
                self.requeue(record.id);
            }
        }
        self.lost.insert(worker_id.to_string(), Instant::now());
        self.publish_capacity();
        self.dispatch().await;
    }

    /// A queued job whose Pod a (re)connected worker reports: running on that worker again,
    /// out of the queue. False if the store refuses it (the job is then stopped as not ours).
    fn reclaim(&mut self, worker_id: &str, job_id: u64) -> bool {
        let cluster = self.fleet.get(worker_id).map(|w| w.cluster.clone()).unwrap_or_default();
        let assigned = JobState::Assigned {
            worker_id: worker_id.to_string(),
            cluster: cluster.clone(),
        };
        let running = JobState::Running {
            worker_id: worker_id.to_string(),
            cluster,
        };
        let moved = self.store.update(job_id, |r| {
            r.moved_to(assigned.clone(), now_ms())?
                .moved_to(running.clone(), now_ms())
        });
        if let Err(error) = moved {
            tracing::warn!(job_id, %error, "cannot give a queued job back to the worker that has its Pod");
            return false;
        }
        tracing::info!(job_id, worker = %worker_id, "the worker came back with the Pod of a queued job: it runs there");
        self.gate.dispatched();
        self.queue.retain(|id| *id != job_id);
        true
    }

    /// A job a worker had not started goes back to the queue.
    fn requeue(&mut self, job_id: u64) {
        if self
            .store
            .update(job_id, |r| r.moved_to(JobState::Accepted, now_ms()))
            .is_ok()
        {
            self.gate.hold_again_undispatched();
            self.queue.push_back(job_id);
        }
    }

    /// Heartbeat timeouts, and lost workers whose grace has run out.
    pub(super) async fn check_workers(&mut self) {
        let now = now_ms();
        let timeout = self.timing.worker_timeout;
        let silent: Vec<String> = self
            .fleet
            .workers()
            .filter(|w| now.saturating_sub(w.last_heartbeat_ms) > timeout.as_millis() as i64)
            .map(|w| w.worker_id.clone())
            .collect();
        for worker_id in silent {
            let why = format!("no heartbeat for {}s", timeout.as_secs_f32());
            self.worker_lost(&worker_id, &why).await;
        }
        let grace = self.timing.reconnect_grace;
        let expired: Vec<String> = self
            .lost
            .iter()
            .filter(|(_, since)| since.elapsed() >= grace)
            .map(|(id, _)| id.clone())
            .collect();
        for worker_id in expired {
            self.lost.remove(&worker_id);
            for record in self.store.unfinished().unwrap_or_default() {
                if matches!(&record.state, JobState::Running { worker_id: w, .. } | JobState::Assigned { worker_id: w, .. } if *w == worker_id)
                {
                    let reason = format!(
                        "the worker {worker_id} running this job was lost and did not come back within {}s",
                        grace.as_secs()
                    );
                    self.fail_without_worker(&record, &reason).await;
                }
            }
        }
    }

    async fn tell(&mut self, worker_id: &str, message: CoordinatorMessage) {
        if let Some((_, outbox)) = self.outboxes.get(worker_id) {
            let _ = outbox.send(message).await;
        }
    }

    pub(super) async fn on_job_event(&mut self, worker_id: &str, event: JobEvent) {
        let job_id = event.job_id;
        let holder = self.store.get(job_id).ok().flatten().and_then(|r| match r.state {
            JobState::Assigned { worker_id, .. } | JobState::Running { worker_id, .. } => Some(worker_id),
            _ => None,
        });
        let ours = holder.as_deref() == Some(worker_id);
        match event.event {
            Some(job_event::Event::Started(_)) if ours => {
                let cluster = self.fleet.get(worker_id).map(|w| w.cluster.clone()).unwrap_or_default();
                let next = JobState::Running {
                    worker_id: worker_id.to_string(),
                    cluster,
                };
                if let Err(error) = self.store.update(job_id, |r| r.moved_to(next.clone(), now_ms())) {
                    tracing::warn!(job_id, %error, "ignoring a start report");
                }
            }
            Some(job_event::Event::Finished(finished)) if ours => {
                let close = CloseTrace {
                    job_id,
                    final_size: finished.log_bytes,
                    ..Default::default()
                };
                self.close_trace(close).await;
                let result = finished.result.unwrap_or_default();
                let outcome = if result.state == "success" {
                    JobOutcome::success()
                } else {
                    let reason = if result.failure_reason.is_empty() {
                        "unknown_failure"
                    } else {
                        &result.failure_reason
                    };
                    JobOutcome::failed(reason, (result.exit_code != 0).then_some(result.exit_code))
                };
                self.job_left_worker(worker_id, job_id, outcome);
                self.tell(worker_id, ended(job_id)).await;
            }
            Some(job_event::Event::Rejected(rejected)) if ours => {
                // Whatever log the job wrote so far is all there will be.
                let close = CloseTrace {
                    job_id,
                    abandoned: true,
                    trailer: rejected
                        .warnings
                        .iter()
                        .map(|warning| warning_line(warning))
                        .chain([failure_line(&rejected.failure_reason, &rejected.message)])
                        .collect(),
                    ..Default::default()
                };
                self.close_trace(close).await;
                tracing::warn!(job_id, reason = %rejected.message, "worker rejected the job");
                let reason = if rejected.failure_reason.is_empty() {
                    "runner_system_failure".to_string()
                } else {
                    rejected.failure_reason
                };
                self.job_left_worker(worker_id, job_id, JobOutcome::failed(&reason, None));
                self.tell(worker_id, ended(job_id)).await;
            }
            Some(job_event::Event::Finished(_) | job_event::Event::Rejected(_)) => {
                // Already handled (a repeat after a reconnect), or no longer this worker's:
                // either way the worker may let go of it.
                tracing::info!(job_id, worker = %worker_id, "acknowledging a repeated job end");
                self.tell(worker_id, ended(job_id)).await;
            }
            Some(job_event::Event::Started(_)) | None => {}
        }
        self.publish_capacity();
        self.dispatch().await;
    }

    pub(super) async fn close_trace(&mut self, close: CloseTrace) {
        if let Some((shipper, _)) = &self.shipper {
            let _ = shipper
                .send(ShipperCommand {
                    kind: Some(shipper_command::Kind::Close(close)),
                })
                .await;
        }
    }

    fn job_left_worker(&mut self, worker_id: &str, job_id: u64, outcome: JobOutcome) {
        let cluster = self.fleet.get(worker_id).map(|w| w.cluster.clone());
        let next = JobState::Finishing {
            outcome,
            worker_id: Some(worker_id.to_string()),
            cluster,
        };
        match self.store.update(job_id, |r| r.moved_to(next.clone(), now_ms())) {
            Ok(_) => {
                if let Some(worker) = self.fleet.get_mut(worker_id) {
                    worker.used = worker.used.saturating_sub(1);
                }
                self.try_finish(job_id);
            }
            Err(error) => tracing::warn!(job_id, %error, "ignoring a finish report"),
        }
    }
}

fn ended(job_id: u64) -> CoordinatorMessage {
    CoordinatorMessage {
        kind: Some(coordinator_message::Kind::Ended(JobEnded { job_id })),
    }
}
