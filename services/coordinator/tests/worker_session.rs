//! The spine against collabora's independent `gitlab-runner-mock`: a job is polled, stored,
//! assigned over the gRPC worker session to a registered worker; its log goes through the
//! real log-shipper (masked) to GitLab; once the worker reports it finished and the log is
//! flushed, GitLab gets the final state. Wrong credentials are refused. (The worker here
//! speaks the protocol directly over a real socket; the worker service drives the same.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flotilla_coordinator::core::{Core, CoreMessage, RunnerRoute};
use flotilla_coordinator::finisher::FinishTiming;
use flotilla_coordinator::fleet::PoolPolicy;
use flotilla_coordinator::gateway::{AdminService, Credentials, ShipperGatewayService, WorkerGatewayService};
use flotilla_coordinator::poller::{PollTiming, Poller, RunnerEntry};
use flotilla_coordinator::slots::{Limits, SlotGate};
use flotilla_coordinator::store::JobStore;
use flotilla_gitlab::{RunnerClient, Secret, SystemId};
use flotilla_log_shipper::link::LinkConfig;
use flotilla_log_shipper::service::{Shipper, TraceSinkService};
use flotilla_log_shipper::ship::ShipTiming;
use flotilla_proto::admin_client::AdminClient;
use flotilla_proto::admin_server::AdminServer;
use flotilla_proto::shipper_gateway_server::ShipperGatewayServer;
use flotilla_proto::trace_sink_client::TraceSinkClient;
use flotilla_proto::trace_sink_server::TraceSinkServer;
use flotilla_proto::worker_gateway_client::WorkerGatewayClient;
use flotilla_proto::worker_gateway_server::WorkerGatewayServer;
use flotilla_proto::{
    coordinator_message, job_event, worker_message, JobEvent, JobFinished, JobResult, JobStarted, Register,
    StatusRequest, TraceChunk, WorkerMessage,
};
use gitlab_runner_mock::{GitlabRunnerMock, MockJobState};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;

const POOL_TOKEN: &str = "pool-token-prod";
const ADMIN_TOKEN: &str = "admin-token";

struct Fixture {
    mock: GitlabRunnerMock,
    url: String,
    sink_url: String,
    _dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

async fn serve(router: tonic::transport::server::Router, shutdown: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled())
            .await
            .unwrap();
    });
    url
}

async fn start() -> Fixture {
    let mock = GitlabRunnerMock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let store = Arc::new(JobStore::open(&dir.path().join("store")).unwrap());
    let gate = SlotGate::new(Limits {
        concurrent: 10,
        per_runner: HashMap::new(),
    });
    let client = RunnerClient::new(mock.uri().as_str()).unwrap();
    let route = RunnerRoute {
        client: client.clone(),
        config_json: "{}".into(),
        url: mock.uri().to_string(),
        output_limit_bytes: 4 << 20,
    };
    let timing = FinishTiming {
        min_backoff: Duration::from_millis(5),
        ..FinishTiming::default()
    };
    let core = Core::spawn(
        store.clone(),
        gate.clone(),
        PoolPolicy::default(),
        HashMap::from([("r".to_string(), route)]),
        timing,
    );
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let poller = Poller {
        runner: RunnerEntry {
            name: "r".into(),
            url: mock.uri().to_string(),
            token: Secret::new(mock.runner_token()),
        },
        client,
        system_id: SystemId::random(),
        gate,
        store,
        events: events_tx,
        timing: PollTiming {
            check_interval: Duration::from_millis(20),
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
    };
    tokio::spawn(poller.run(shutdown.clone()));
    let forward = core.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let _ = forward.send(CoreMessage::Poller(event));
        }
    });
    let credentials = Credentials {
        pool_tokens: HashMap::from([("prod".to_string(), Secret::new(POOL_TOKEN))]),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        shipper_token: None,
    };
    let gateway = WorkerGatewayService {
        core: core.clone(),
        credentials: credentials.clone(),
        heartbeat_interval: Duration::from_secs(2),
        log_shipper_url: String::new(),
    };
    let shipper_gateway = ShipperGatewayService {
        core: core.clone(),
        credentials: credentials.clone(),
    };
    let admin = AdminService { core, credentials };
    let router = tonic::transport::Server::builder()
        .add_service(WorkerGatewayServer::new(gateway))
        .add_service(ShipperGatewayServer::new(shipper_gateway))
        .add_service(AdminServer::new(admin));
    let url = serve(router, &shutdown).await;

    // The real log-shipper: its trace sink on a socket, its session with the coordinator.
    let (reports_tx, reports) = mpsc::unbounded_channel();
    let ship_timing = ShipTiming {
        interval: Duration::from_millis(20),
        retry_after: Duration::from_millis(20),
        keepalive: Duration::from_millis(200),
    };
    let shipper = Shipper::new(dir.path().join("shipper"), reports_tx, ship_timing);
    let sink_router =
        tonic::transport::Server::builder().add_service(TraceSinkServer::new(TraceSinkService(shipper.clone())));
    let sink_url = serve(sink_router, &shutdown).await;
    let link = LinkConfig {
        coordinator_url: url.clone(),
        token: None,
        shipper_id: "shipper-1".into(),
    };
    tokio::spawn(flotilla_log_shipper::link::run(
        link,
        shipper,
        reports,
        shutdown.clone(),
    ));
    Fixture {
        mock,
        url,
        sink_url,
        _dir: dir,
        shutdown,
    }
}

fn with_token(token: &str) -> impl tonic::service::Interceptor + Clone {
    let value: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    move |mut request: tonic::Request<()>| {
        request.metadata_mut().insert("authorization", value.clone());
        Ok(request)
    }
}

fn register(pool: &str) -> WorkerMessage {
    WorkerMessage {
        kind: Some(worker_message::Kind::Register(Register {
            worker_id: "worker-a".into(),
            cluster: "cluster-a".into(),
            pool: pool.into(),
            capacity: 2,
            ..Default::default()
        })),
    }
}

fn event(job_id: u64, event: job_event::Event) -> WorkerMessage {
    WorkerMessage {
        kind: Some(worker_message::Kind::JobEvent(JobEvent {
            job_id,
            event: Some(event),
        })),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_goes_from_gitlab_to_a_worker_and_its_log_and_result_back() {
    let fixture = start().await;
    let job = fixture.mock.add_dummy_job("build".to_owned());
    let channel = tonic::transport::Endpoint::from_shared(fixture.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = WorkerGatewayClient::with_interceptor(channel.clone(), with_token(POOL_TOKEN));
    let (to_coordinator, outgoing) = mpsc::channel(16);
    to_coordinator.send(register("prod")).await.unwrap();
    let mut incoming = client
        .session(ReceiverStream::new(outgoing))
        .await
        .unwrap()
        .into_inner();
    let registered = incoming.message().await.unwrap().unwrap();
    assert!(matches!(
        registered.kind,
        Some(coordinator_message::Kind::Registered(_))
    ));

    // No slot was free before the worker came: now the job is polled and assigned.
    let assigned = tokio::time::timeout(Duration::from_secs(10), incoming.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Some(coordinator_message::Kind::Assign(assign)) = assigned.kind else {
        panic!("expected an assignment: {assigned:?}")
    };
    assert_eq!(assign.job_id, job.id());
    let payload: serde_json::Value = serde_json::from_slice(&assign.payload_json).unwrap();
    assert_eq!(payload["id"], job.id());
    assert_eq!(job.state(), MockJobState::Running);
    let started = JobStarted {
        pod_name: "p".into(),
        namespace: "ns".into(),
    };
    to_coordinator
        .send(event(job.id(), job_event::Event::Started(started)))
        .await
        .unwrap();

    // The log goes to the log-shipper in small chunks; it holds the job token.
    let log = format!("$ echo hello\nhello\nthe secret is {} and that is it\n", job.token()).into_bytes();
    let mut sink = TraceSinkClient::connect(fixture.sink_url.clone()).await.unwrap();
    let chunks: Vec<TraceChunk> = log
        .chunks(10)
        .enumerate()
        .map(|(i, data)| TraceChunk {
            job_id: job.id(),
            offset: (i * 10) as u64,
            data: data.to_vec(),
        })
        .collect();
    // The shipper may not have opened the job's log yet when the worker starts streaming:
    // it says so, and the worker sends again (resent bytes are trimmed by offset).
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut acks = sink
                .append(tokio_stream::iter(chunks.clone()))
                .await
                .unwrap()
                .into_inner();
            let mut refused = false;
            while let Some(ack) = acks.message().await.transpose() {
                match ack {
                    Ok(ack) => assert!(ack.durable_offset <= log.len() as u64),
                    // Not open yet (FailedPrecondition), or a later chunk after a refused one (a gap).
                    Err(status) => {
                        assert!(
                            matches!(status.code(), tonic::Code::FailedPrecondition | tonic::Code::OutOfRange),
                            "{status}"
                        );
                        refused = true;
                    }
                }
            }
            if !refused {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let result = JobResult {
        state: "success".into(),
        ..Default::default()
    };
    let finished = JobFinished {
        result: Some(result),
        log_bytes: log.len() as u64,
    };
    to_coordinator
        .send(event(job.id(), job_event::Event::Finished(finished)))
        .await
        .unwrap();

    tokio::time::timeout(Duration::from_secs(10), async {
        while job.state() != MockJobState::Success {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("GitLab gets the final state");
    let trace = String::from_utf8(job.log()).unwrap();
    assert_eq!(trace, "$ echo hello\nhello\nthe secret is [MASKED] and that is it\n");

    let mut admin = AdminClient::with_interceptor(channel, with_token(ADMIN_TOKEN));
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
            if status.jobs.first().is_some_and(|j| j.state == "done") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(status.jobs[0].result, "success");
    assert_eq!(status.workers[0].cluster, "cluster-a");
    assert_eq!(status.workers[0].used, 0);
    fixture.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_refused_with_a_clear_error() {
    let fixture = start().await;
    let channel = tonic::transport::Endpoint::from_shared(fixture.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = WorkerGatewayClient::with_interceptor(channel.clone(), with_token("not-the-token"));
    let (to_coordinator, outgoing) = mpsc::channel(16);
    to_coordinator.send(register("prod")).await.unwrap();
    let refused = client.session(ReceiverStream::new(outgoing)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(refused.message().contains("pool \"prod\""), "{}", refused.message());
    assert!(!refused.message().contains("not-the-token"));
    let mut admin = AdminClient::with_interceptor(channel, with_token("nope"));
    assert_eq!(
        admin.status(StatusRequest {}).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    fixture.shutdown.cancel();
}
