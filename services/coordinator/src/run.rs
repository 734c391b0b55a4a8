//! The coordinator put together: store, slot gate, core, one poller per runner entry, and
//! the gRPC services, serving until `shutdown`. The binary maps `config.toml` onto
//! [`Settings`]; tests build them directly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use flotilla_config::ClusterSelector;
use flotilla_gitlab::{RunnerClient, Secret, SystemId};
use flotilla_proto::admin_server::AdminServer;
use flotilla_proto::shipper_gateway_server::ShipperGatewayServer;
use flotilla_proto::worker_gateway_server::WorkerGatewayServer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::{Core, CoreMessage, RunnerRoute, WorkerTiming};
use crate::finisher::FinishTiming;
use crate::fleet::PoolPolicy;
use crate::gateway::{AdminService, Credentials, ShipperGatewayService, WorkerGatewayService};
use crate::metrics::Metrics;
use crate::poller::{PollTiming, Poller, RunnerEntry};
use crate::slots::{Limits, SlotGate};
use crate::store::{JobStore, StoreError};

/// One `[[runners]]` entry, as the coordinator runs it.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub name: String,
    pub url: String,
    pub token: Secret,
    /// 0: no limit.
    pub limit: u32,
    pub output_limit_bytes: u64,
    /// Cluster labels every job of the entry needs.
    pub cluster_selector: ClusterSelector,
    /// The entry's settings for workers (its `[runners.kubernetes]` and friends), as JSON.
    pub config_json: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the worker and log-shipper gateways listen (port 0: any free port).
    pub listen: SocketAddr,
    /// Where the admin service `fleetctl` dials listens (port 0: any free port). Apart from
    /// the gateways so operators can keep it on a private interface.
    pub admin_listen: SocketAddr,
    /// The trace sink URL handed to workers instead of the one the log-shipper announces.
    pub log_shipper_url: Option<String>,
    /// TLS (mutual with a client CA) on both listeners; None: plain HTTP/2.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    pub data_dir: PathBuf,
    /// Global `concurrent` (0: no limit).
    pub concurrent: u32,
    pub runners: Vec<RunnerSettings>,
    pub credentials: Credentials,
    pub pools: PoolPolicy,
    /// Heartbeats, lost workers and how long they have to come back.
    pub workers: WorkerTiming,
    /// Where `/metrics` is served (`listen_address`); None: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    pub poll: PollTiming,
    pub finish: FinishTiming,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("runner entry {name:?}: {message}")]
    Runner { name: String, message: String },
    #[error("system_id: {0}")]
    SystemId(String),
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A started coordinator: where it listens, and the task that ends when it stops.
pub struct Running {
    /// The worker and log-shipper gateways.
    pub addr: SocketAddr,
    /// The admin service.
    pub admin_addr: SocketAddr,
    /// `/metrics`, when served.
    pub metrics_addr: Option<SocketAddr>,
    pub task: tokio::task::JoinHandle<Result<(), RunError>>,
}

pub async fn start(settings: Settings, shutdown: CancellationToken) -> Result<Running, RunError> {
    let store = Arc::new(JobStore::open(&settings.data_dir.join("jobs"))?);
    let limits = Limits {
        concurrent: settings.concurrent,
        per_runner: settings.runners.iter().map(|r| (r.name.clone(), r.limit)).collect(),
    };
    let gate = SlotGate::new(limits);
    let system_id = SystemId::load_or_create(&settings.data_dir.join(".runner_system_id"))
        .map_err(|e| RunError::SystemId(e.to_string()))?;
    let mut routes = HashMap::new();
    let mut pollers = Vec::new();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    for runner in &settings.runners {
        let runner_error = |message: String| RunError::Runner {
            name: runner.name.clone(),
            message,
        };
        let client = RunnerClient::new(&runner.url).map_err(|e| runner_error(e.to_string()))?;
        routes.insert(
            runner.name.clone(),
            RunnerRoute {
                client: client.clone(),
                config_json: runner.config_json.clone(),
                url: runner.url.clone(),
                output_limit_bytes: runner.output_limit_bytes,
                cluster_selector: runner.cluster_selector.clone(),
            },
        );
        pollers.push(Poller {
            runner: RunnerEntry {
                name: runner.name.clone(),
                url: runner.url.clone(),
                token: runner.token.clone(),
            },
            client,
            system_id: system_id.clone(),
            gate: gate.clone(),
            store: store.clone(),
            events: events_tx.clone(),
            timing: settings.poll,
        });
    }
    let metrics = Metrics::new();
    let core = Core::spawn(
        store,
        gate,
        settings.pools.clone(),
        routes,
        settings.finish,
        settings.workers,
        metrics.clone(),
    );
    let metrics_addr = match settings.metrics_listen {
        Some(addr) => Some(
            crate::metrics::serve(addr, metrics, core.clone(), shutdown.clone())
                .await
                .map_err(|e| RunError::Listen(addr, e))?,
        ),
        None => None,
    };
    for poller in pollers {
        tokio::spawn(poller.run(shutdown.clone()));
    }
    let forward = core.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let _ = forward.send(CoreMessage::Poller(event));
        }
    });

    let gateways = bind(settings.listen).await?;
    let admin = bind(settings.admin_listen).await?;
    let (addr, admin_addr) = (local_addr(&gateways)?, local_addr(&admin)?);
    let credentials = settings.credentials.clone();
    let server = || -> Result<tonic::transport::Server, RunError> {
        let builder = tonic::transport::Server::builder();
        Ok(match &settings.tls {
            Some(tls) => builder.tls_config(tls.clone())?,
            None => builder,
        })
    };
    let gateways_router = server()?
        .add_service(WorkerGatewayServer::new(WorkerGatewayService {
            core: core.clone(),
            credentials: credentials.clone(),
        }))
        .add_service(ShipperGatewayServer::new(ShipperGatewayService {
            core: core.clone(),
            credentials: credentials.clone(),
            sink_url: settings.log_shipper_url.clone(),
        }));
    let admin_router = server()?.add_service(AdminServer::new(AdminService { core, credentials }));
    tracing::info!(%addr, %admin_addr, runners = settings.runners.len(), "coordinator listening");
    let task = tokio::spawn(async move {
        let incoming = |listener| tokio_stream::wrappers::TcpListenerStream::new(listener);
        let (gateways, admin) = tokio::join!(
            gateways_router.serve_with_incoming_shutdown(incoming(gateways), shutdown.clone().cancelled_owned()),
            admin_router.serve_with_incoming_shutdown(incoming(admin), shutdown.cancelled_owned()),
        );
        gateways?;
        admin?;
        Ok(())
    });
    Ok(Running {
        addr,
        admin_addr,
        metrics_addr,
        task,
    })
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, RunError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RunError::Listen(addr, e))
}

fn local_addr(listener: &tokio::net::TcpListener) -> Result<SocketAddr, RunError> {
    listener
        .local_addr()
        .map_err(|e| RunError::Listen(SocketAddr::from(([0, 0, 0, 0], 0)), e))
}
