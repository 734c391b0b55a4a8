//! kube-sim: a Kubernetes API server stand-in that really runs Pods as local processes.
//!
//! It serves the subset of the Kubernetes REST API that Flotilla (through kube-rs) and
//! `kubectl` use, over HTTP or HTTPS on loopback, and runs each container of a Pod as a
//! local process in a private mount namespace. Start one with [`Sim::start`] (library) or
//! the `kube-sim` binary; several instances stand in for several clusters. The README
//! says what it implements and what it does not.

pub mod api;
pub mod defaults;
pub mod error;
pub mod faults;
pub mod kubelet;
pub use flotilla_kube_patch as patch;
pub mod protobuf;
pub mod query;
pub mod resources;
pub mod selector;
pub mod server;
pub mod store;
pub mod table;
pub mod validation;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;

use crate::defaults::apply_create_defaults;
use crate::faults::Faults;
use crate::kubelet::{Kubelet, Node};
use crate::resources::NAMESPACES;
use crate::server::{Auth, Credentials, ServerError};
use crate::store::Store;

/// Everything the API handlers share.
pub struct SimState {
    pub name: String,
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
    pub kubelet: Arc<Kubelet>,
    pub auth: Auth,
    pub server_address: String,
}

/// How to start a kube-sim.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Cluster name (kubeconfig cluster/context name).
    pub name: String,
    pub listen: SocketAddr,
    /// Serve HTTPS with a self-signed CA (written into the kubeconfig).
    pub tls: bool,
    /// Accept requests without credentials.
    pub anonymous: bool,
    /// Where Pods' volumes and logs live; a temporary directory if None.
    pub data_dir: Option<PathBuf>,
    /// Write a kubeconfig here once the server accepts connections.
    pub kubeconfig: Option<PathBuf>,
    /// Extra labels of the simulated node (nodeSelector matches them).
    pub node_labels: BTreeMap<String, String>,
    /// Watch history kept for resuming watches (older RVs get 410 Expired).
    pub history_limit: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            name: "kube-sim".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            anonymous: false,
            data_dir: None,
            kubeconfig: None,
            node_labels: BTreeMap::new(),
            history_limit: 20_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("creating data directory {0}: {1}")]
    DataDir(String, std::io::Error),
}

/// A running kube-sim. Dropping it stops the server and kills every container.
pub struct Sim {
    state: Arc<SimState>,
    addr: SocketAddr,
    url: String,
    token: String,
    credentials: Option<Credentials>,
    kubeconfig: Option<PathBuf>,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    shutdown: watch::Sender<bool>,
}

impl Sim {
    pub async fn start(config: SimConfig) -> Result<Sim, SimError> {
        let (data_dir, temp) = match &config.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix(&format!("kube-sim-{}-", config.name))
                    .tempdir()
                    .map_err(|e| SimError::DataDir("temporary directory".into(), e))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        std::fs::create_dir_all(&data_dir).map_err(|e| SimError::DataDir(data_dir.display().to_string(), e))?;
        let listener = server::bind(config.listen).await?;
        let addr = listener.local_addr().map_err(|e| ServerError::Bind(config.listen, e))?;
        let credentials = if config.tls {
            Some(Credentials::generate(&config.name)?)
        } else {
            None
        };
        let scheme = if config.tls { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let token = uuid::Uuid::new_v4().simple().to_string();

        let store = Arc::new(Store::new(config.history_limit));
        let faults = Arc::new(Faults::default());
        let mut node = Node::default();
        node.labels.extend(config.node_labels.clone());
        let kubelet = Kubelet::new(store.clone(), faults.clone(), data_dir.clone(), node);
        kubelet.start();
        let state = Arc::new(SimState {
            name: config.name.clone(),
            store,
            faults,
            kubelet,
            auth: Auth::new((!config.anonymous).then(|| token.clone())),
            server_address: addr.to_string(),
        });
        bootstrap(&state);

        let (shutdown, shutdown_rx) = watch::channel(false);
        server::serve(listener, api::router(state.clone()), credentials.as_ref(), shutdown_rx)?;
        if let Some(path) = &config.kubeconfig {
            server::write_kubeconfig(path, &config.name, &url, Some(&token), credentials.as_ref())?;
        }
        Ok(Sim {
            state,
            addr,
            url,
            token,
            credentials,
            kubeconfig: config.kubeconfig.clone(),
            data_dir,
            _temp: temp,
            shutdown,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (or http).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA certificate clients must trust (None for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.ca_pem.as_str())
    }

    /// A client certificate and key the server accepts (None for plain HTTP).
    pub fn client_identity_pem(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|c| (c.client_cert_pem.as_str(), c.client_key_pem.as_str()))
    }

    pub fn kubeconfig_path(&self) -> Option<&Path> {
        self.kubeconfig.as_deref()
    }

    /// Writes a kubeconfig for this server to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        Ok(server::write_kubeconfig(
            path,
            &self.state.name,
            &self.url,
            Some(&self.token),
            self.credentials.as_ref(),
        )?)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Stops serving and kills every container process.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
        self.state.kubelet.kill_all();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The namespaces and service accounts every cluster starts with.
fn bootstrap(state: &SimState) {
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let mut ns = json!({"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}});
        apply_create_defaults(NAMESPACES, "", &mut ns);
        let _ = state.store.create(NAMESPACES, "", ns);
        api::ensure_default_service_account(state, name);
    }
}
