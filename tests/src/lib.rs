//! A whole fleet in one test process, every part on its own loopback socket: the
//! coordinator (pollers, core, worker/shipper gateways, admin API), the log-shipper (trace
//! sink and coordinator link), kube-sim clusters, and one worker per cluster running jobs
//! as Pods with the real `flotilla-helper`. GitLab is whatever URL the test gives.

pub mod gitlab;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use flotilla_config::ClusterSelector;
use flotilla_coordinator::core::WorkerTiming;
use flotilla_coordinator::finisher::FinishTiming;
use flotilla_coordinator::fleet::{OverflowPool, PoolPolicy};
use flotilla_coordinator::gateway::Credentials;
use flotilla_coordinator::poller::PollTiming;
use flotilla_coordinator::run as coordinator;
use flotilla_gitlab::Secret;
use flotilla_log_shipper::run as log_shipper;
use flotilla_log_shipper::ship::ShipTiming;
use flotilla_proto::admin_client::AdminClient;
use flotilla_proto::transport;
use flotilla_proto::{StatusReply, StatusRequest};
use flotilla_worker::run as worker;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{ClientTlsConfig, ServerTlsConfig};
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
    cluster_with_node_labels(dir, name, &BTreeMap::new()).await
}

/// [`cluster`], whose node has these labels (for `nodeSelector`).
pub async fn cluster_with_node_labels(
    dir: &std::path::Path,
    name: &str,
    node_labels: &BTreeMap<String, String>,
) -> (kube_sim::Sim, kube::Client) {
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    let config = kube_sim::SimConfig {
        name: name.to_string(),
        kubeconfig: Some(kubeconfig.clone()),
        node_labels: node_labels.clone(),
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

/// Certificates for a fleet on TLS: one CA, a server certificate for 127.0.0.1 (the
/// coordinator's and the log-shipper's) and a client certificate (the workers' and the
/// log-shipper's), as PEM files.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn generate(dir: &std::path::Path) -> Pki {
        let generated = kube_sim::server::Credentials::generate("flotilla-e2e").unwrap();
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", &generated.ca_pem),
            server_cert: write("server.pem", &generated.server_cert_pem),
            server_key: write("server-key.pem", &generated.server_key_pem),
            client_cert: write("client.pem", &generated.client_cert_pem),
            client_key: write("client-key.pem", &generated.client_key_pem),
        }
    }

    /// The server side: this certificate, and client certificates required (mutual TLS).
    pub fn server(&self) -> ServerTlsConfig {
        transport::server_tls(&self.server_cert, &self.server_key, Some(&self.ca)).unwrap()
    }

    /// A client trusting the CA, presenting the client certificate.
    pub fn client(&self) -> ClientTlsConfig {
        transport::client_tls(Some(&self.ca), Some((&self.client_cert, &self.client_key))).unwrap()
    }
}

pub struct Fleet {
    /// The worker and log-shipper gateways.
    pub coordinator_url: String,
    /// The admin service (`fleetctl`).
    pub admin_url: String,
    /// How clients reach both (None: plain HTTP/2).
    pub client_tls: Option<ClientTlsConfig>,
    /// The coordinator's `/metrics` (None for a coordinator not started here).
    pub metrics_url: Option<String>,
    pub clusters: Vec<kube_sim::Sim>,
    /// Each cluster's worker: its settings, and what stops it.
    pub workers: Vec<(worker::Settings, CancellationToken)>,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
}

impl Fleet {
    /// Stops worker `n` as a crash or an upgrade would: its session ends and it stops
    /// following its jobs; their Pods keep running in the cluster.
    pub fn stop_worker(&mut self, n: usize) {
        self.workers[n].1.cancel();
    }

    /// Starts worker `n` again with the same identity (it re-adopts its Pods).
    pub fn restart_worker(&mut self, n: usize) {
        let stop = self.shutdown.child_token();
        worker::start(self.workers[n].0.clone(), stop.clone());
        self.workers[n].1 = stop;
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One kube-sim cluster of a test fleet and its worker.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: String,
    pub pool: String,
    pub labels: HashMap<String, String>,
    pub capacity: u32,
    /// Labels of the cluster's (kube-sim's one) node.
    pub node_labels: BTreeMap<String, String>,
}

impl ClusterSpec {
    pub fn new(name: &str, capacity: u32) -> ClusterSpec {
        ClusterSpec {
            name: name.into(),
            pool: "prod".into(),
            labels: HashMap::new(),
            capacity,
            node_labels: BTreeMap::new(),
        }
    }

    pub fn node_label(mut self, key: &str, value: &str) -> ClusterSpec {
        self.node_labels.insert(key.into(), value.into());
        self
    }

    pub fn pool(mut self, pool: &str) -> ClusterSpec {
        self.pool = pool.into();
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> ClusterSpec {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// What a test fleet is made of.
pub struct FleetSpec<'a> {
    pub gitlab_url: String,
    pub runner_token: String,
    pub clusters: Vec<ClusterSpec>,
    /// Pools that are overflow pools, and their `overflow_after`.
    pub overflow_pools: Vec<OverflowPool>,
    /// The runner entry's `cluster_selector`.
    pub runner_selector: ClusterSelector,
    /// The runner entry as the coordinator hands it to workers (JSON; `{}`: every default).
    pub runner_config_json: String,
    /// Heartbeats, worker loss and how long a lost worker (or a job no worker can take) waits.
    pub workers: WorkerTiming,
    pub tls: Option<&'a Pki>,
    /// A coordinator running elsewhere (its gateway and admin URLs) instead of one started
    /// in this process.
    pub coordinator: Option<(String, String)>,
}

impl FleetSpec<'_> {
    /// One production worker of `capacity` per cluster (`cluster-a`, `cluster-b`, …).
    pub fn new(gitlab_url: &str, runner_token: &str, clusters: usize, capacity: u32) -> Self {
        FleetSpec {
            gitlab_url: gitlab_url.into(),
            runner_token: runner_token.into(),
            clusters: (0..clusters)
                .map(|n| ClusterSpec::new(&format!("cluster-{}", (b'a' + n as u8) as char), capacity))
                .collect(),
            overflow_pools: Vec::new(),
            runner_selector: ClusterSelector::default(),
            runner_config_json: "{}".into(),
            workers: WorkerTiming {
                heartbeat_interval: Duration::from_millis(200),
                worker_timeout: Duration::from_secs(2),
                reconnect_grace: Duration::from_secs(2),
            },
            tls: None,
            coordinator: None,
        }
    }
}

/// The token of a pool's workers.
pub fn pool_token(pool: &str) -> String {
    if pool == "prod" {
        POOL_TOKEN.into()
    } else {
        format!("e2e-{pool}-token")
    }
}

/// Starts a fleet for one GitLab runner entry, with one worker of `capacity` per cluster:
/// the same `start` functions the binaries call, on loopback sockets.
pub async fn start(gitlab_url: &str, runner_token: &str, clusters: usize, capacity: u32) -> Fleet {
    start_fleet(FleetSpec::new(gitlab_url, runner_token, clusters, capacity)).await
}

/// [`start`], with mutual TLS on every gRPC connection when `pki` is given.
pub async fn start_with_tls(
    gitlab_url: &str,
    runner_token: &str,
    clusters: usize,
    capacity: u32,
    pki: Option<&Pki>,
) -> Fleet {
    let mut spec = FleetSpec::new(gitlab_url, runner_token, clusters, capacity);
    spec.tls = pki;
    start_fleet(spec).await
}

/// A fleet as `spec` says.
pub async fn start_fleet(spec: FleetSpec<'_>) -> Fleet {
    let pki = spec.tls;
    let (gitlab_url, runner_token) = (spec.gitlab_url.as_str(), spec.runner_token.as_str());
    // `RUST_LOG=info cargo test -p flotilla-e2e -- --nocapture` shows what the fleet does.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));

    let mut metrics_url = None;
    let (coordinator_url, admin_url) = match spec.coordinator.clone() {
        Some(urls) => urls,
        None => {
            let coordinator = coordinator::start(
                coordinator::Settings {
                    listen: loopback,
                    admin_listen: loopback,
                    log_shipper_url: None,
                    tls: pki.map(Pki::server),
                    data_dir: dir.path().join("coordinator"),
                    concurrent: 0,
                    runners: vec![coordinator::RunnerSettings {
                        name: "runner".into(),
                        url: gitlab_url.into(),
                        token: Secret::new(runner_token),
                        limit: 0,
                        output_limit_bytes: 4 << 20,
                        cluster_selector: spec.runner_selector.clone(),
                        config_json: spec.runner_config_json.clone(),
                    }],
                    credentials: Credentials {
                        pool_tokens: spec
                            .clusters
                            .iter()
                            .map(|c| (c.pool.clone(), Secret::new(pool_token(&c.pool))))
                            .chain([("prod".to_string(), Secret::new(POOL_TOKEN))])
                            .collect(),
                        admin_token: Some(Secret::new(ADMIN_TOKEN)),
                        shipper_token: None,
                    },
                    pools: PoolPolicy {
                        overflow_pools: spec.overflow_pools.clone(),
                    },
                    workers: spec.workers,
                    metrics_listen: Some(loopback),
                    poll: PollTiming {
                        check_interval: Duration::from_millis(50),
                        min_backoff: Duration::from_millis(20),
                        max_backoff: Duration::from_millis(200),
                    },
                    finish: FinishTiming {
                        min_backoff: Duration::from_millis(10),
                        ..FinishTiming::default()
                    },
                },
                shutdown.clone(),
            )
            .await
            .unwrap();
            let scheme = if pki.is_some() { "https" } else { "http" };
            metrics_url = coordinator.metrics_addr.map(|addr| format!("http://{addr}/metrics"));
            (
                format!("{scheme}://{}", coordinator.addr),
                format!("{scheme}://{}", coordinator.admin_addr),
            )
        }
    };
    log_shipper::start(
        log_shipper::Settings {
            listen: loopback,
            data_dir: dir.path().join("shipper"),
            coordinator_url: coordinator_url.clone(),
            token: None,
            shipper_id: "shipper".into(),
            advertise_url: None,
            timing: ShipTiming {
                interval: Duration::from_millis(50),
                retry_after: Duration::from_millis(50),
                keepalive: Duration::from_millis(200),
            },
            tls: pki.map(Pki::server),
            coordinator_tls: pki.map(Pki::client),
        },
        shutdown.clone(),
    )
    .await
    .unwrap();

    let mut sims = Vec::new();
    let mut workers = Vec::new();
    for spec in &spec.clusters {
        let name = spec.name.clone();
        let (sim, client) = cluster_with_node_labels(dir.path(), &name, &spec.node_labels).await;
        let settings = worker::Settings {
            coordinator_url: coordinator_url.clone(),
            token: Secret::new(pool_token(&spec.pool)),
            worker_id: format!("worker-{name}"),
            cluster: name,
            pool: spec.pool.clone(),
            labels: spec.labels.clone(),
            capacity: spec.capacity,
            kube: client,
            kubeconfig: Some(dir.path().join(format!("{}.kubeconfig", spec.name))),
            namespace: "default".into(),
            helper_image: "flotilla/helper:dev".into(),
            helper_binary: helper_binary(),
            default_image: "alpine:3.19".into(),
            builds_dir: "/builds".into(),
            tls: pki.map(Pki::client),
        };
        let stop = shutdown.child_token();
        worker::start(settings.clone(), stop.clone());
        workers.push((settings, stop));
        sims.push(sim);
    }
    Fleet {
        coordinator_url,
        admin_url,
        metrics_url,
        client_tls: pki.map(Pki::client),
        clusters: sims,
        workers,
        dir,
        shutdown,
    }
}

/// Adds the admin token to every admin call.
#[derive(Clone)]
pub struct AdminAuth;

impl tonic::service::Interceptor for AdminAuth {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let token = format!("Bearer {ADMIN_TOKEN}").parse().unwrap();
        request.metadata_mut().insert("authorization", token);
        Ok(request)
    }
}

pub type Admin = AdminClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AdminAuth>>;

impl Fleet {
    /// A client of the coordinator's admin API, with the admin token.
    pub async fn admin(&self) -> Admin {
        let channel = transport::dial(&self.admin_url, self.client_tls.as_ref())
            .await
            .unwrap();
        AdminClient::with_interceptor(channel, AdminAuth)
    }
}

/// The coordinator's admin view, polled until `done` says it is what we wait for (through a
/// coordinator that is still starting or restarting, too).
pub async fn status_until(fleet: &Fleet, done: impl Fn(&StatusReply) -> bool) -> StatusReply {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(channel) = transport::dial(&fleet.admin_url, fleet.client_tls.as_ref()).await {
                let mut admin = AdminClient::with_interceptor(channel, AdminAuth);
                while let Ok(status) = admin.status(StatusRequest {}).await {
                    let status = status.into_inner();
                    if done(&status) {
                        return status;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the fleet reaches the expected state")
}
