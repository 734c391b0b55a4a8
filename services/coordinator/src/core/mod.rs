//! The coordinator's core: one task that owns the fleet view and every job's progress, fed
//! by pollers, worker sessions, the log-shipper and the admin API through its mailbox.
//!
//! A job moves accepted → assigned (the least-loaded worker with room gets `AssignJob`) →
//! running → finishing (the worker's result and the log-shipper's "flushed" are both in) →
//! done (the finisher delivered the final state to GitLab). Every move is written to the
//! store before anyone is told, so a restart resumes from the store.
//!
//! This file holds the mailbox, the state and the finish; `dispatch` places jobs, `workers`
//! handles worker sessions and their loss, `admin` answers the admin API.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_config::ClusterSelector;

use flotilla_gitlab::types::JobPayload;
use flotilla_gitlab::{RunnerClient, TraceOutput};
use flotilla_proto::{
    shipper_command, CoordinatorMessage, JobEvent, ShipperCommand, StatusReply, TailTrace, WorkerStatus,
};
use tokio::sync::{mpsc, oneshot};

use crate::finisher::{self, FinishTiming, Finished};
use crate::fleet::{Cordon, CordonTarget, Fleet, OverflowMode, PoolPolicy, WorkerInfo};
use crate::job::JobState;
use crate::metrics::Metrics;
use crate::poller::PollerEvent;
use crate::slots::SlotGate;
use crate::store::JobStore;

mod admin;
mod dispatch;
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
}

/// The last line of a job the coordinator ended, styled like the official runner's.
/// A warning line of the job log, as the official runner colours it.
fn warning_line(text: &str) -> String {
    format!("\x1b[0;33mWARNING: {text}\x1b[0;m\n")
}

/// The job log's last line for a job that ends without its helper's own (`message` says why).
/// As in the official runner, only a system failure says so; a refused configuration, a failed
/// pull or a cancel is the job's.
fn failure_line(failure_reason: &str, message: &str) -> String {
    let kind = if failure_reason.is_empty() || failure_reason == "runner_system_failure" {
        " (system failure)"
    } else {
        ""
    };
    format!("\x1b[31;1mERROR: Job failed{kind}: {message}\x1b[0;m\n")
}

/// Where the operator's cordons and overflow switch are kept in the store.
const OPERATOR_SETTING: &str = "operator";

/// The job variable that adds cluster requirements to its runner entry's.
pub const CLUSTER_SELECTOR_VARIABLE: &str = "FLOTILLA_CLUSTER_SELECTOR";
