//! The coordinator's core: one task that owns the fleet view and every job's progress, fed
//! by pollers, worker sessions, the log-shipper and the admin API through its mailbox.
//!
//! A job moves accepted → assigned (the least-loaded worker with room gets `AssignJob`) →
//! running → finishing (the worker's result and the log-shipper's "flushed" are both in) →
//! done (the finisher delivered the final state to GitLab). Every move is written to the
//! store before anyone is told, so a restart resumes from the store.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_config::ClusterSelector;
use flotilla_gitlab::types::find_variable;

use flotilla_gitlab::types::JobPayload;
use flotilla_gitlab::{RunnerClient, TraceOutput};
use flotilla_proto::{
    coordinator_message, shipper_command, AssignJob, CancelJob, CloseTrace, CoordinatorMessage, JobEvent, JobStatus,
    OpenTrace, ShipperCommand, StatusReply, TailTrace, WorkerStatus,
};
use tokio::sync::{mpsc, oneshot};

use crate::finisher::{self, FinishTiming, Finished};
use crate::fleet::{Cordon, CordonTarget, Fleet, OverflowMode, Placement, PoolPolicy, WorkerInfo};
use crate::job::{JobOutcome, JobRecord, JobState};
use crate::metrics::Metrics;
use crate::poller::PollerEvent;
use crate::slots::SlotGate;
use crate::store::JobStore;

mod workers;

/// Messages to the core.
#[derive(Debug)]
pub enum CoreMessage {
    /// A worker registered (a new session; the worker may have been here before).
    WorkerConnected {
        session: Session,
        info: WorkerInfo,
        outbox: mpsc::Sender<CoordinatorMessage>,
        /// Jobs it supervises now.
        running: Vec<u64>,
        /// Ends of jobs it could not report before (applied before anything else).
        ended: Vec<JobEvent>,
    },
    WorkerHeartbeat {
        session: Session,
        at_ms: i64,
    },
    WorkerEvent {
        session: Session,
        event: JobEvent,
    },
    WorkerDisconnected {
        session: Session,
    },
    Poller(PollerEvent),
    /// The log-shipper has all of the job's log in GitLab.
    TraceFlushed {
        job_id: u64,
        output: TraceOutput,
    },
    /// The finisher is done with a job.
    Delivered {
        job_id: u64,
        result: Finished,
    },
    Status {
        reply: oneshot::Sender<StatusReply>,
    },
    ShipperConnected {
        outbox: mpsc::Sender<ShipperCommand>,
        sink_url: String,
    },
    ShipperDisconnected,
    /// GitLab asked to cancel a job (seen by the log-shipper on a trace PATCH).
    CancelRequested {
        job_id: u64,
        graceful: bool,
    },
    /// Time passed: jobs may have waited long enough for overflow pools or to be failed as
    /// unschedulable.
    Tick,
    /// Admin: cordon, drain or uncordon; answers the connected workers covered.
    Cordon {
        target: CordonTarget,
        cordon: Option<Cordon>,
        reply: oneshot::Sender<Vec<String>>,
    },
    /// Admin: set the overflow switch (None: only read); answers the switch and the
    /// overflow pools' workers.
    Overflow {
        mode: Option<OverflowMode>,
        reply: oneshot::Sender<(OverflowMode, Vec<WorkerStatus>)>,
    },
    /// Admin: the end of a job's log, from the log-shipper; None when it has none.
    TraceTail {
        job_id: u64,
        max_bytes: u32,
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
    /// The log-shipper answered a tail request.
    TailAnswered {
        request_id: u64,
        data: Option<Vec<u8>>,
    },
    /// Admin: cancel a job; answers its state afterwards, or why not.
    AdminCancel {
        job_id: u64,
        force: bool,
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// One worker session: messages of an older session of the same worker are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub worker_id: String,
    pub id: String,
}

/// How the core keeps time with workers.
#[derive(Debug, Clone, Copy)]
pub struct WorkerTiming {
    /// How often workers send heartbeats.
    pub heartbeat_interval: Duration,
    /// A worker silent this long (no heartbeat) is lost; its unstarted jobs go elsewhere.
    pub worker_timeout: Duration,
    /// A lost worker that comes back within this long keeps its running jobs; after it, they
    /// fail (`runner_system_failure`). Also how long a job no connected worker's labels match
    /// waits (after the coordinator has been up as long) before it fails.
    pub reconnect_grace: Duration,
}

/// Where each runner entry's GitLab is (for the finisher) and its settings for workers.
#[derive(Debug, Clone)]
pub struct RunnerRoute {
    pub client: RunnerClient,
    /// The `[[runners]]` entry's settings as JSON, sent to workers with each job.
    pub config_json: String,
    /// GitLab's URL, for the log-shipper.
    pub url: String,
    /// The entry's `output_limit`, in bytes.
    pub output_limit_bytes: u64,
    /// Cluster labels every job of the entry needs.
    pub cluster_selector: ClusterSelector,
}

pub struct Core {
    pub store: Arc<JobStore>,
    pub gate: Arc<SlotGate>,
    pub fleet: Fleet,
    pub runners: HashMap<String, RunnerRoute>,
    pub finish_timing: FinishTiming,
    /// The current session of each connected worker, and where its messages go.
    outboxes: HashMap<String, (String, mpsc::Sender<CoordinatorMessage>)>,
    /// Workers gone (or not back since a restart) that still hold running jobs, since when.
    lost: HashMap<String, Instant>,
    /// The log-shipper's session; jobs are dispatched only while one is connected.
    shipper: Option<(mpsc::Sender<ShipperCommand>, String)>,
    queue: VecDeque<u64>,
    /// Jobs whose log is flushed, waiting for the worker's result (or the other way round).
    flushed: HashMap<u64, TraceOutput>,
    mailbox: mpsc::UnboundedSender<CoreMessage>,
    timing: WorkerTiming,
    started: Instant,
    metrics: Arc<Metrics>,
    /// Tail requests sent to the log-shipper, by request id.
    tails: HashMap<u64, oneshot::Sender<Option<Vec<u8>>>>,
    next_tail: u64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Core {
    /// Starts the core task; returns its mailbox.
    pub fn spawn(
        store: Arc<JobStore>,
        gate: Arc<SlotGate>,
        policy: PoolPolicy,
        runners: HashMap<String, RunnerRoute>,
        finish_timing: FinishTiming,
        timing: WorkerTiming,
        metrics: Arc<Metrics>,
    ) -> mpsc::UnboundedSender<CoreMessage> {
        let (mailbox, mut inbox) = mpsc::unbounded_channel();
        let mut core = Core {
            store,
            gate,
            fleet: Fleet::new(policy),
            runners,
            finish_timing,
            outboxes: HashMap::new(),
            lost: HashMap::new(),
            shipper: None,
            queue: VecDeque::new(),
            flushed: HashMap::new(),
            mailbox: mailbox.clone(),
            timing,
            started: Instant::now(),
            metrics,
            tails: HashMap::new(),
            next_tail: 0,
        };
        core.resume();
        if let Some(state) = core.store.load_setting(OPERATOR_SETTING) {
            core.fleet.restore(state);
        }
        tokio::spawn(async move {
            while let Some(message) = inbox.recv().await {
                core.handle(message).await;
            }
        });
        let ticks = mailbox.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if ticks.send(CoreMessage::Tick).is_err() {
                    return;
                }
            }
        });
        mailbox
    }

    /// After a restart: every unfinished job holds its slot again; accepted ones are queued,
    /// finishing ones are handed to the finisher once their log is known to be flushed.
    fn resume(&mut self) {
        let Ok(unfinished) = self.store.unfinished() else {
            return;
        };
        for record in unfinished {
            let dispatched = !matches!(record.state, JobState::Accepted);
            self.gate.hold(&record.runner, dispatched);
            if !dispatched {
                self.queue.push_back(record.id);
            }
            // Its worker has `reconnect_grace` to come back and report the job.
            if let JobState::Assigned { worker_id, .. } | JobState::Running { worker_id, .. } = &record.state {
                self.lost.insert(worker_id.clone(), Instant::now());
            }
        }
    }

    async fn handle(&mut self, message: CoreMessage) {
        match message {
            CoreMessage::WorkerConnected {
                session,
                info,
                outbox,
                running,
                ended,
            } => self.worker_connected(session, info, outbox, running, ended).await,
            CoreMessage::WorkerHeartbeat { session, at_ms } => {
                if self.is_current(&session) {
                    if let Some(worker) = self.fleet.get_mut(&session.worker_id) {
                        worker.last_heartbeat_ms = at_ms;
                    }
                }
            }
            CoreMessage::WorkerEvent { session, event } => {
                if self.is_current(&session) {
                    self.on_job_event(&session.worker_id, event).await;
                }
            }
            CoreMessage::WorkerDisconnected { session } => {
                if self.is_current(&session) {
                    self.worker_lost(&session.worker_id, "its session ended").await;
                }
            }
            CoreMessage::Poller(PollerEvent::Accepted { job_id }) => {
                self.queue.push_back(job_id);
                self.dispatch().await;
            }
            CoreMessage::Poller(PollerEvent::Finish { job_id }) => {
                self.flushed.insert(job_id, TraceOutput::default());
                self.try_finish(job_id);
            }
            CoreMessage::TraceFlushed { job_id, output } => {
                self.flushed.insert(job_id, output);
                self.try_finish(job_id);
            }
            CoreMessage::Delivered { job_id, result } => self.on_delivered(job_id, result),
            CoreMessage::Status { reply } => {
                let _ = reply.send(self.status());
            }
            CoreMessage::ShipperConnected { outbox, sink_url } => {
                tracing::info!(%sink_url, "log-shipper connected");
                self.shipper = Some((outbox, sink_url));
                self.reopen_traces().await;
                self.dispatch().await;
            }
            CoreMessage::CancelRequested { job_id, graceful } => {
                self.cancel(job_id, graceful, "canceled in GitLab").await
            }
            CoreMessage::ShipperDisconnected => {
                tracing::warn!("log-shipper disconnected");
                self.shipper = None;
            }
            CoreMessage::Tick => {
                self.check_workers().await;
                self.dispatch().await;
            }
            CoreMessage::Cordon { target, cordon, reply } => {
                let covered = match cordon {
                    Some(kind) => self.fleet.cordon(target.clone(), kind),
                    None => self.fleet.uncordon(&target),
                };
                tracing::info!(?target, ?cordon, workers = ?covered, "cordon changed");
                self.save_operator_state();
                let _ = reply.send(covered);
                self.publish_capacity();
                self.dispatch().await;
            }
            CoreMessage::Overflow { mode, reply } => {
                if let Some(mode) = mode {
                    tracing::info!(mode = mode.as_str(), "overflow switch set");
                    self.fleet.overflow_mode = mode;
                    self.save_operator_state();
                }
                let workers = self.worker_statuses().into_iter().filter(|w| w.overflow).collect();
                let _ = reply.send((self.fleet.overflow_mode, workers));
                self.publish_capacity();
                self.dispatch().await;
            }
            CoreMessage::TraceTail {
                job_id,
                max_bytes,
                reply,
            } => {
                let Some((shipper, _)) = &self.shipper else {
                    let _ = reply.send(None);
                    return;
                };
                self.next_tail += 1;
                let request_id = self.next_tail;
                let command = ShipperCommand {
                    kind: Some(shipper_command::Kind::Tail(TailTrace {
                        request_id,
                        job_id,
                        max_bytes,
                    })),
                };
                if shipper.send(command).await.is_ok() {
                    self.tails.insert(request_id, reply);
                }
                // Requests whose asker gave up are forgotten.
                self.tails.retain(|_, reply| !reply.is_closed());
            }
            CoreMessage::TailAnswered { request_id, data } => {
                if let Some(reply) = self.tails.remove(&request_id) {
                    let _ = reply.send(data);
                }
            }
            CoreMessage::AdminCancel { job_id, force, reply } => {
                let answer = self.admin_cancel(job_id, force).await;
                let _ = reply.send(answer);
            }
        }
    }

    /// Hands queued jobs to workers: each to where the fleet's rules place it; jobs that must
    /// wait stay queued in order, and one that no connected worker could ever take fails once
    /// workers have had their chance to connect.
    async fn dispatch(&mut self) {
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

    fn save_operator_state(&self) {
        if let Err(error) = self.store.save_setting(OPERATOR_SETTING, &self.fleet.operator_state()) {
            tracing::error!(%error, "could not keep the operator's cordons and overflow switch");
        }
    }

    /// The labels a job needs: its runner entry's `cluster_selector` and its
    /// `FLOTILLA_CLUSTER_SELECTOR` variable.
    fn selector_of(&self, record: &JobRecord) -> Result<ClusterSelector, String> {
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
    fn cluster_labels(&self) -> String {
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
    async fn assign(&mut self, record: JobRecord, worker: &WorkerInfo) -> bool {
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
    async fn open_trace(&mut self, shipper: &mpsc::Sender<ShipperCommand>, record: &JobRecord) -> bool {
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
    async fn fail_without_worker(&mut self, record: &JobRecord, reason: &str) {
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
            trailer: failure_line(reason),
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
    async fn reopen_traces(&mut self) {
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

    /// An operator's cancel: a queued job ends at once; a job on a worker is stopped there.
    async fn admin_cancel(&mut self, job_id: u64, force: bool) -> Result<String, String> {
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

    /// Tells the worker running a job to cancel it (gracefully: after_script still runs).
    async fn cancel(&mut self, job_id: u64, graceful: bool, reason: &str) {
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

    /// What the log-shipper needs to ship a job's log: where, with which token, what to mask.
    fn open_trace_command(&self, record: &JobRecord) -> Option<OpenTrace> {
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

    fn publish_capacity(&self) {
        self.gate.set_fleet_free(self.fleet.free_slots());
    }

    /// Starts the final update once the result and the flushed log are both known.
    fn try_finish(&mut self, job_id: u64) {
        let Ok(Some(record)) = self.store.get(job_id) else {
            return;
        };
        let JobState::Finishing { outcome, .. } = &record.state else {
            return;
        };
        let Some(output) = self.flushed.get(&job_id).cloned() else {
            return;
        };
        let Some(route) = self.runners.get(&record.runner).cloned() else {
            tracing::error!(job_id, runner = %record.runner, "job of an unknown runner entry: cannot report it");
            return;
        };
        let Ok(payload) = JobPayload::from_slice(record.payload_json.as_bytes()) else {
            tracing::error!(job_id, "stored payload does not parse: cannot report the job");
            return;
        };
        let update = finisher::final_update(outcome, output, &payload.features);
        let mailbox = self.mailbox.clone();
        let timing = self.finish_timing;
        tokio::spawn(async move {
            let result = finisher::deliver(&route.client, job_id, &payload.token, &update, timing).await;
            let _ = mailbox.send(CoreMessage::Delivered { job_id, result });
        });
    }

    fn on_delivered(&mut self, job_id: u64, result: Finished) {
        match result {
            Finished::Delivered => {
                let record = self.store.update(job_id, |r| match &r.state {
                    JobState::Finishing { outcome, cluster, .. } => r.moved_to(
                        JobState::Done {
                            outcome: outcome.clone(),
                            cluster: cluster.clone(),
                        },
                        now_ms(),
                    ),
                    other => Err(crate::job::TransitionError {
                        job_id,
                        from: other.name(),
                        to: "done",
                    }),
                });
                self.flushed.remove(&job_id);
                match record {
                    Ok(record) => {
                        self.gate.release(&record.runner, false);
                        if let JobState::Done { outcome, .. } = &record.state {
                            self.metrics
                                .job_ended(&outcome.state, outcome.failure_reason.as_deref());
                        }
                        tracing::info!(job_id, "job done");
                    }
                    Err(error) => tracing::error!(job_id, %error, "could not record the job as done"),
                }
            }
            other => tracing::error!(job_id, result = ?other, "final update not delivered; the job stays finishing"),
        }
    }

    fn worker_statuses(&self) -> Vec<WorkerStatus> {
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

    fn status(&self) -> StatusReply {
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

/// The last line of a job the coordinator ended, styled like the official runner's.
fn failure_line(reason: &str) -> String {
    format!("\x1b[31;1mERROR: Job failed (system failure): {reason}\x1b[0;m\n")
}

/// Where the operator's cordons and overflow switch are kept in the store.
const OPERATOR_SETTING: &str = "operator";

/// The job variable that adds cluster requirements to its runner entry's.
pub const CLUSTER_SELECTOR_VARIABLE: &str = "FLOTILLA_CLUSTER_SELECTOR";

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
