//! A whole fleet in one test process, every part on its own loopback socket: the
//! coordinator (pollers, core, worker/shipper gateways, admin API), the log-shipper (trace
//! sink and coordinator link), kube-sim clusters, and one worker per cluster running jobs
//! as Pods with the real `flotilla-helper`. GitLab is whatever URL the test gives.

use std::collections::HashMap;
use std::path::PathBuf;
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
use flotilla_log_shipper::service::{Shipper, TraceSinkService};
use flotilla_log_shipper::ship::ShipTiming;
use flotilla_proto::admin_server::AdminServer;
use flotilla_proto::shipper_gateway_server::ShipperGatewayServer;
use flotilla_proto::trace_sink_server::TraceSinkServer;
use flotilla_proto::worker_gateway_server::WorkerGatewayServer;
use flotilla_worker::job_runner::JobRunner;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

pub const POOL_TOKEN: &str = "e2e-pool-token";
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// The helper binary (`make test` builds every binary before the tests).
pub fn helper_binary() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/flotilla-helper");
    assert!(
        path.exists(),
        "{} is missing: `cargo build -p flotilla-helper` first (`make test` does)",
        path.display()
    );
    path.canonicalize().unwrap().display().to_string()
}

/// A kube-sim cluster and a kube-rs client configured by exactly the kubeconfig it wrote.
pub async fn cluster(dir: &std::path::Path, name: &str) -> (kube_sim::Sim, kube::Client) {
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    let config = kube_sim::SimConfig {
        name: name.to_string(),
        kubeconfig: Some(kubeconfig.clone()),
        ..Default::default()
    };
    let sim = kube_sim::Sim::start(config).await.unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    (sim, kube::Client::try_from(config).unwrap())
}

pub async fn serve(router: tonic::transport::server::Router, shutdown: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled())
            .await;
    });
    url
}

pub struct Fleet {
    pub coordinator_url: String,
    pub clusters: Vec<kube_sim::Sim>,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a fleet for one GitLab runner entry, with one worker of `capacity` per cluster.
pub async fn start(gitlab_url: &str, runner_token: &str, clusters: usize, capacity: u32) -> Fleet {
    // `RUST_LOG=info cargo test -p flotilla-e2e -- --nocapture` shows what the fleet does.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let store = Arc::new(JobStore::open(&dir.path().join("store")).unwrap());
    let gate = SlotGate::new(Limits {
        concurrent: 0,
        per_runner: HashMap::new(),
    });
    let client = RunnerClient::new(gitlab_url).unwrap();
    let route = RunnerRoute {
        client: client.clone(),
        config_json: "{}".into(),
        url: gitlab_url.into(),
        output_limit_bytes: 4 << 20,
    };
    let finish = FinishTiming {
        min_backoff: Duration::from_millis(10),
        ..FinishTiming::default()
    };
    let core = Core::spawn(
        store.clone(),
        gate.clone(),
        PoolPolicy::default(),
        HashMap::from([("runner".to_string(), route)]),
        finish,
    );
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let poller = Poller {
        runner: RunnerEntry {
            name: "runner".into(),
            url: gitlab_url.into(),
            token: Secret::new(runner_token),
        },
        client,
        system_id: SystemId::random(),
        gate,
        store,
        events: events_tx,
        timing: PollTiming {
            check_interval: Duration::from_millis(50),
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
    };
    tokio::spawn(poller.run(shutdown.clone()));
    let forward = core.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let _ = forward.send(CoreMessage::Poller(event));
        }
    });

    // The log-shipper first: the coordinator tells workers where it is.
    let (reports_tx, reports) = mpsc::unbounded_channel();
    let ship_timing = ShipTiming {
        interval: Duration::from_millis(50),
        retry_after: Duration::from_millis(50),
        keepalive: Duration::from_millis(200),
    };
    let shipper = Shipper::new(dir.path().join("shipper"), reports_tx, ship_timing);
    let sink_url = serve(
        tonic::transport::Server::builder().add_service(TraceSinkServer::new(TraceSinkService(shipper.clone()))),
        &shutdown,
    )
    .await;

    let credentials = Credentials {
        pool_tokens: HashMap::from([("prod".to_string(), Secret::new(POOL_TOKEN))]),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        shipper_token: None,
    };
    let router = tonic::transport::Server::builder()
        .add_service(WorkerGatewayServer::new(WorkerGatewayService {
            core: core.clone(),
            credentials: credentials.clone(),
            heartbeat_interval: Duration::from_millis(500),
            log_shipper_url: sink_url,
        }))
        .add_service(ShipperGatewayServer::new(ShipperGatewayService {
            core: core.clone(),
            credentials: credentials.clone(),
        }))
        .add_service(AdminServer::new(AdminService { core, credentials }));
    let coordinator_url = serve(router, &shutdown).await;
    let link = flotilla_log_shipper::link::LinkConfig {
        coordinator_url: coordinator_url.clone(),
        token: None,
        shipper_id: "shipper".into(),
    };
    tokio::spawn(flotilla_log_shipper::link::run(
        link,
        shipper,
        reports,
        shutdown.clone(),
    ));

    let mut sims = Vec::new();
    for n in 0..clusters {
        let name = format!("cluster-{}", (b'a' + n as u8) as char);
        let (sim, client) = cluster(dir.path(), &name).await;
        let runner = JobRunner {
            client,
            namespace: "default".into(),
            worker_id: format!("worker-{name}"),
            helper_image: "flotilla/helper:dev".into(),
            helper_binary: helper_binary(),
            default_image: "alpine:3.19".into(),
            builds_dir: "/builds".into(),
            shipper_url: String::new(),
        };
        let link = flotilla_worker::link::LinkConfig {
            coordinator_url: coordinator_url.clone(),
            token: POOL_TOKEN.into(),
            worker_id: format!("worker-{name}"),
            cluster: name,
            pool: "prod".into(),
            labels: HashMap::new(),
            capacity,
        };
        tokio::spawn(flotilla_worker::link::run(link, runner, shutdown.clone()));
        sims.push(sim);
    }
    Fleet {
        coordinator_url,
        clusters: sims,
        dir,
        shutdown,
    }
}
