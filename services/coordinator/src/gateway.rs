//! The gRPC services the coordinator serves: the worker gateway (one bidi session per
//! worker) and the admin API for fleetctl. Handlers only authenticate, convert and forward
//! to the core's mailbox.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;

use flotilla_gitlab::Secret;
use flotilla_gitlab::TraceOutput;
use flotilla_proto::admin_server::Admin;
use flotilla_proto::shipper_gateway_server::ShipperGateway;
use flotilla_proto::worker_gateway_server::WorkerGateway;
use flotilla_proto::{
    cordon_request, shipper_message, worker_message, CancelJobReply, CancelJobRequest, CoordinatorMessage, CordonReply,
    CordonRequest, JobTraceReply, JobTraceRequest, OverflowReply, OverflowRequest, ShipperCommand, ShipperMessage,
    StatusReply, StatusRequest, WorkerMessage,
};
use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::core::{CoreMessage, Session};
use crate::fleet::{Cordon, CordonTarget, OverflowMode, WorkerInfo};

/// Credentials: one token per worker pool, one for the admin API.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub pool_tokens: HashMap<String, Secret>,
    pub admin_token: Option<Secret>,
    pub shipper_token: Option<Secret>,
}

fn bearer<T>(request: &Request<T>) -> Option<String> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_string)
}

/// Compares without leaking the position of the first difference through timing.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct WorkerGatewayService {
    pub core: mpsc::UnboundedSender<CoreMessage>,
    pub credentials: Credentials,
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerGateway for WorkerGatewayService {
    type SessionStream = SessionStream;

    async fn session(&self, request: Request<Streaming<WorkerMessage>>) -> Result<Response<SessionStream>, Status> {
        let token = bearer(&request);
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the session ended before `register`"))?;
        let Some(worker_message::Kind::Register(register)) = first.kind else {
            return Err(Status::invalid_argument(
                "the first message of a session must be `register`",
            ));
        };
        let expected = self.credentials.pool_tokens.get(&register.pool);
        let accepted = match (expected, token.as_deref()) {
            (Some(expected), Some(sent)) => same(expected.expose(), sent),
            _ => false,
        };
        if !accepted {
            tracing::warn!(worker = %register.worker_id, pool = %register.pool, "refused a worker: missing or wrong pool token");
            return Err(Status::unauthenticated(format!(
                "worker credentials refused for pool {:?}: send `authorization: Bearer <token of that pool>`",
                register.pool
            )));
        }
        if register.worker_id.is_empty() || register.capacity == 0 {
            return Err(Status::invalid_argument(
                "`register` needs a worker_id and a capacity above 0",
            ));
        }
        // The core answers `registered` (it knows where logs go) and everything after it.
        let (outbox, outgoing) = mpsc::channel::<CoordinatorMessage>(64);
        let session = Session {
            worker_id: register.worker_id.clone(),
            id: uuid::Uuid::new_v4().to_string(),
        };
        let info = WorkerInfo {
            worker_id: register.worker_id,
            cluster: register.cluster,
            pool: register.pool,
            labels: register.labels.into_iter().collect::<BTreeMap<_, _>>(),
            capacity: register.capacity,
            used: 0,
            last_heartbeat_ms: now_ms(),
        };
        let _ = self.core.send(CoreMessage::WorkerConnected {
            session: session.clone(),
            info,
            outbox,
            running: register.running.iter().map(|job| job.job_id).collect(),
            ended: register.ended,
        });
        let core = self.core.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = inbound.message().await {
                let forward = match message.kind {
                    Some(worker_message::Kind::Heartbeat(_)) => CoreMessage::WorkerHeartbeat {
                        session: session.clone(),
                        at_ms: now_ms(),
                    },
                    Some(worker_message::Kind::JobEvent(event)) => CoreMessage::WorkerEvent {
                        session: session.clone(),
                        event,
                    },
                    Some(worker_message::Kind::Register(_)) | None => continue,
                };
                let _ = core.send(forward);
            }
            let _ = core.send(CoreMessage::WorkerDisconnected { session });
        });
        let stream = ReceiverStream::new(outgoing).map(Ok);
        Ok(Response::new(Box::pin(stream)))
    }
}

pub struct AdminService {
    pub core: mpsc::UnboundedSender<CoreMessage>,
    pub credentials: Credentials,
}

impl AdminService {
    fn authenticate<T>(&self, request: &Request<T>) -> Result<(), Status> {
        // No admin token configured: the admin API stays closed rather than open to anyone.
        let Some(expected) = &self.credentials.admin_token else {
            return Err(Status::permission_denied(
                "the admin API is disabled: set [coordinator] admin_token in the coordinator's config.toml",
            ));
        };
        match bearer(request) {
            Some(sent) if same(expected.expose(), &sent) => Ok(()),
            _ => {
                tracing::warn!("refused an admin request: missing or wrong admin token");
                Err(Status::unauthenticated(
                    "admin token refused: send `authorization: Bearer <admin token>`",
                ))
            }
        }
    }
}

impl AdminService {
    /// Asks the core and waits for its answer.
    async fn ask<T>(&self, message: impl FnOnce(oneshot::Sender<T>) -> CoreMessage) -> Result<T, Status> {
        let (reply, answer) = oneshot::channel();
        self.core
            .send(message(reply))
            .map_err(|_| Status::unavailable("the coordinator is stopping"))?;
        answer
            .await
            .map_err(|_| Status::unavailable("the coordinator is stopping"))
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, request: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        self.authenticate(&request)?;
        Ok(Response::new(self.ask(|reply| CoreMessage::Status { reply }).await?))
    }

    async fn cordon(&self, request: Request<CordonRequest>) -> Result<Response<CordonReply>, Status> {
        self.authenticate(&request)?;
        let request = request.into_inner();
        let target = match request.target {
            Some(cordon_request::Target::WorkerId(id)) if !id.is_empty() => CordonTarget::Worker(id),
            Some(cordon_request::Target::Cluster(name)) if !name.is_empty() => CordonTarget::Cluster(name),
            _ => return Err(Status::invalid_argument("name a worker or a cluster")),
        };
        let cordon = match request.action.as_str() {
            "cordon" => Some(Cordon::Cordoned),
            "drain" => Some(Cordon::Draining),
            "uncordon" => None,
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown action {other:?}: use cordon, drain or uncordon"
                )))
            }
        };
        let workers = self.ask(|reply| CoreMessage::Cordon { target, cordon, reply }).await?;
        Ok(Response::new(CordonReply { workers }))
    }

    async fn overflow(&self, request: Request<OverflowRequest>) -> Result<Response<OverflowReply>, Status> {
        self.authenticate(&request)?;
        let set = request.into_inner().set_mode;
        let mode = match set.as_str() {
            "" => None,
            text => Some(OverflowMode::parse(text).ok_or_else(|| {
                Status::invalid_argument(format!("unknown overflow mode {text:?}: use on, off or auto"))
            })?),
        };
        let (mode, workers) = self.ask(|reply| CoreMessage::Overflow { mode, reply }).await?;
        Ok(Response::new(OverflowReply {
            mode: mode.as_str().to_string(),
            workers,
        }))
    }

    async fn cancel_job(&self, request: Request<CancelJobRequest>) -> Result<Response<CancelJobReply>, Status> {
        self.authenticate(&request)?;
        let CancelJobRequest { job_id, force } = request.into_inner();
        let state = self
            .ask(|reply| CoreMessage::AdminCancel { job_id, force, reply })
            .await?
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(CancelJobReply { state }))
    }

    async fn job_trace(&self, request: Request<JobTraceRequest>) -> Result<Response<JobTraceReply>, Status> {
        self.authenticate(&request)?;
        let JobTraceRequest { job_id, max_bytes } = request.into_inner();
        let max_bytes = if max_bytes == 0 { 4096 } else { max_bytes.min(1 << 20) };
        let ask = self.ask(|reply| CoreMessage::TraceTail {
            job_id,
            max_bytes,
            reply,
        });
        let data = tokio::time::timeout(std::time::Duration::from_secs(10), ask)
            .await
            .map_err(|_| Status::unavailable("the log-shipper did not answer"))??
            .ok_or_else(|| Status::not_found(format!("the log-shipper has no log of job {job_id}")))?;
        Ok(Response::new(JobTraceReply { data }))
    }
}

pub struct ShipperGatewayService {
    pub core: mpsc::UnboundedSender<CoreMessage>,
    pub credentials: Credentials,
    /// Where workers reach the trace sink when the shipper's own address is not reachable
    /// for them (`[coordinator] log_shipper_url`, e.g. a Service); None: what `hello` says.
    pub sink_url: Option<String>,
}

type CommandStream = Pin<Box<dyn Stream<Item = Result<ShipperCommand, Status>> + Send>>;

#[tonic::async_trait]
impl ShipperGateway for ShipperGatewayService {
    type SessionStream = CommandStream;

    async fn session(&self, request: Request<Streaming<ShipperMessage>>) -> Result<Response<CommandStream>, Status> {
        if let Some(expected) = &self.credentials.shipper_token {
            if !bearer(&request).is_some_and(|sent| same(expected.expose(), &sent)) {
                tracing::warn!("refused a log-shipper: missing or wrong token");
                return Err(Status::unauthenticated(
                    "log-shipper token refused: send `authorization: Bearer <shipper token>`",
                ));
            }
        }
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the session ended before `hello`"))?;
        let Some(shipper_message::Kind::Hello(hello)) = first.kind else {
            return Err(Status::invalid_argument(
                "the first message of a shipper session must be `hello`",
            ));
        };
        if hello.sink_url.is_empty() {
            return Err(Status::invalid_argument(
                "`hello` must say where the shipper's trace sink is (sink_url)",
            ));
        }
        let (outbox, outgoing) = mpsc::channel::<ShipperCommand>(256);
        let _ = self.core.send(CoreMessage::ShipperConnected {
            outbox,
            sink_url: self.sink_url.clone().unwrap_or(hello.sink_url),
        });
        let core = self.core.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = inbound.message().await {
                match message.kind {
                    Some(shipper_message::Kind::Flushed(flushed)) => {
                        let output = TraceOutput {
                            checksum: Some(flushed.checksum),
                            bytesize: flushed.bytesize,
                        };
                        let _ = core.send(CoreMessage::TraceFlushed {
                            job_id: flushed.job_id,
                            output,
                        });
                    }
                    Some(shipper_message::Kind::CancelRequested(cancel)) => {
                        let (job_id, graceful) = (cancel.job_id, cancel.graceful);
                        let _ = core.send(CoreMessage::CancelRequested { job_id, graceful });
                    }
                    Some(shipper_message::Kind::Tail(tail)) => {
                        let data = tail.found.then_some(tail.data);
                        let _ = core.send(CoreMessage::TailAnswered {
                            request_id: tail.request_id,
                            data,
                        });
                    }
                    Some(shipper_message::Kind::Hello(_)) | None => {}
                }
            }
            let _ = core.send(CoreMessage::ShipperDisconnected);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(outgoing).map(Ok))))
    }
}
