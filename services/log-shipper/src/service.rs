//! The log-shipper service: the `TraceSink` gRPC server workers stream job logs to, and the
//! session with the coordinator, which opens a job's log (where to ship it, what to mask),
//! closes it (the job's final raw size), and hears when it is flushed or canceled.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use flotilla_gitlab::{RunnerClient, Secret};
use flotilla_proto::trace_sink_server::TraceSink;
use flotilla_proto::{
    shipper_message, CloseTrace, OffsetReply, OffsetRequest, OpenTrace, ShipperMessage, TraceAck, TraceCancelRequested,
    TraceChunk, TraceFlushed,
};
use futures::Stream;
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::joblog::{JobLog, LogPolicy};
use crate::ship::{ship, ShipEnd, ShipEvent, ShipTarget, ShipTiming};

struct OpenJob {
    log: Arc<Mutex<JobLog>>,
    wake: Arc<Notify>,
    /// The worker's total raw log size, once the job has finished.
    final_size: Option<u64>,
    /// Appended when the log closes.
    trailer: Vec<u8>,
}

/// The jobs whose logs this shipper holds.
pub struct Shipper {
    data_dir: PathBuf,
    jobs: Mutex<HashMap<u64, OpenJob>>,
    /// Jobs whose shipping has ended (flushed or refused by GitLab): chunks for them are
    /// answered NOT_FOUND so the worker stops sending. (Kept for the process lifetime.)
    ended: Mutex<std::collections::HashSet<u64>>,
    /// Reports to the coordinator.
    reports: mpsc::UnboundedSender<ShipperMessage>,
    timing: ShipTiming,
}

impl Shipper {
    pub fn new(data_dir: PathBuf, reports: mpsc::UnboundedSender<ShipperMessage>, timing: ShipTiming) -> Arc<Shipper> {
        Arc::new(Shipper {
            data_dir,
            jobs: Mutex::new(HashMap::new()),
            ended: Default::default(),
            reports,
            timing,
        })
    }

    /// The coordinator opened a job's log: start shipping it.
    pub fn open(self: &Arc<Self>, open: OpenTrace) -> Result<(), String> {
        let job_id = open.job_id;
        if self.jobs.lock().unwrap().contains_key(&job_id) {
            return Ok(());
        }
        let policy = LogPolicy {
            masked_values: open.masked_values.clone(),
            output_limit_bytes: open.output_limit_bytes,
        };
        let log =
            JobLog::open(&self.data_dir.join("jobs").join(job_id.to_string()), &policy).map_err(|e| e.to_string())?;
        let log = Arc::new(Mutex::new(log));
        let wake = Arc::new(Notify::new());
        self.jobs.lock().unwrap().insert(
            job_id,
            OpenJob {
                log: log.clone(),
                wake: wake.clone(),
                final_size: None,
                trailer: Vec::new(),
            },
        );
        let client = RunnerClient::new(&open.gitlab_url).map_err(|e| e.to_string())?;
        let target = ShipTarget {
            client,
            job_id,
            job_token: Secret::new(open.job_token),
            debug_trace: open.debug_trace,
        };
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let reports = self.reports.clone();
        tokio::spawn(async move {
            while let Some(ShipEvent::CancelRequested { graceful }) = events.recv().await {
                let _ = reports.send(ShipperMessage {
                    kind: Some(shipper_message::Kind::CancelRequested(TraceCancelRequested {
                        job_id,
                        graceful,
                    })),
                });
            }
        });
        let shipper = self.clone();
        let timing = self.timing;
        tokio::spawn(async move {
            match ship(log, target, wake, events_tx, timing).await {
                Ok(ShipEnd::Flushed { bytesize, checksum }) => {
                    let _ = shipper.reports.send(ShipperMessage {
                        kind: Some(shipper_message::Kind::Flushed(TraceFlushed {
                            job_id,
                            bytesize,
                            checksum,
                        })),
                    });
                }
                Ok(ShipEnd::Stopped { reason }) => tracing::warn!(job_id, %reason, "stopped shipping the job's log"),
                Err(error) => tracing::error!(job_id, %error, "shipping the job's log failed"),
            }
            shipper.ended.lock().unwrap().insert(job_id);
            shipper.jobs.lock().unwrap().remove(&job_id);
        });
        Ok(())
    }

    /// The job finished: close its log once all `final_size` raw bytes are in (at once when
    /// the coordinator says no more will come), then append its trailer.
    pub fn close(&self, close: &CloseTrace) {
        let mut jobs = self.jobs.lock().unwrap();
        if let Some(job) = jobs.get_mut(&close.job_id) {
            let final_size = if close.abandoned {
                job.log.lock().unwrap().received()
            } else {
                close.final_size
            };
            job.final_size = Some(final_size);
            job.trailer = close.trailer.clone().into_bytes();
            Self::close_if_complete(job);
        }
    }

    fn close_if_complete(job: &mut OpenJob) {
        let Some(final_size) = job.final_size else { return };
        let mut log = job.log.lock().unwrap();
        if log.received() >= final_size && !log.state().closed {
            if let Err(error) = log.close_with(&job.trailer) {
                tracing::error!(%error, "closing a job log failed");
            }
            job.wake.notify_one();
        }
    }

    fn append(&self, chunk: &TraceChunk) -> Result<u64, Status> {
        if self.ended.lock().unwrap().contains(&chunk.job_id) {
            return Err(Status::not_found(format!(
                "the log of job {} is closed: GitLab takes no more of it",
                chunk.job_id
            )));
        }
        let mut jobs = self.jobs.lock().unwrap();
        let job = jobs
            .get_mut(&chunk.job_id)
            .ok_or_else(|| Status::failed_precondition(format!("job {} has no open log here (yet)", chunk.job_id)))?;
        let durable = job
            .log
            .lock()
            .unwrap()
            .append(chunk.offset, &chunk.data)
            .map_err(|e| Status::out_of_range(e.to_string()))?;
        job.wake.notify_one();
        Self::close_if_complete(job);
        Ok(durable)
    }

    /// The last `max_bytes` of a job's log as GitLab gets it, open or ended (from its durable
    /// copy); None when this shipper has none.
    pub fn tail(&self, job_id: u64, max_bytes: u64) -> Option<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(self.data_dir.join("jobs").join(job_id.to_string()).join("trace")).ok()?;
        let len = file.metadata().ok()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(max_bytes))).ok()?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).ok()?;
        Some(data)
    }

    fn offset(&self, job_id: u64) -> Option<u64> {
        self.jobs
            .lock()
            .unwrap()
            .get(&job_id)
            .map(|job| job.log.lock().unwrap().state().raw_durable)
    }
}

/// The gRPC face of the shipper.
pub struct TraceSinkService(pub Arc<Shipper>);

type AckStream = Pin<Box<dyn Stream<Item = Result<TraceAck, Status>> + Send>>;

#[tonic::async_trait]
impl TraceSink for TraceSinkService {
    type AppendStream = AckStream;

    async fn append(&self, request: Request<Streaming<TraceChunk>>) -> Result<Response<AckStream>, Status> {
        let mut chunks = request.into_inner();
        let (acks, outgoing) = mpsc::channel(64);
        let shipper = self.0.clone();
        tokio::spawn(async move {
            while let Ok(Some(chunk)) = chunks.message().await {
                let ack = shipper.append(&chunk).map(|durable_offset| TraceAck {
                    job_id: chunk.job_id,
                    durable_offset,
                });
                if acks.send(ack).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(outgoing))))
    }

    async fn offset(&self, request: Request<OffsetRequest>) -> Result<Response<OffsetReply>, Status> {
        let job_id = request.into_inner().job_id;
        let durable_offset = self
            .0
            .offset(job_id)
            .ok_or_else(|| Status::not_found(format!("job {job_id} has no open log here")))?;
        Ok(Response::new(OffsetReply { durable_offset }))
    }
}
