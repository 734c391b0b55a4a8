//! The worker put together: the job runner for its cluster and the session with the
//! coordinator, until `shutdown`. The binary maps its config file onto [`Settings`].

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

use crate::job_runner::JobRunner;
use crate::link::{self, LinkConfig};

#[derive(Clone)]
pub struct Settings {
    pub coordinator_url: String,
    pub token: flotilla_gitlab::Secret,
    pub worker_id: String,
    pub cluster: String,
    pub pool: String,
    pub labels: HashMap<String, String>,
    pub capacity: u32,
    /// The cluster's API, already configured (kubeconfig, in-cluster, or explicit).
    pub kube: kube::Client,
    /// The kubeconfig a runner entry's `context` is looked up in (the worker file's
    /// `[kubernetes] kubeconfig`; None: `$KUBECONFIG` or `~/.kube/config`).
    pub kubeconfig: Option<std::path::PathBuf>,
    pub namespace: String,
    pub helper_image: String,
    /// Path of `flotilla-helper` in the helper image.
    pub helper_binary: String,
    /// The job image when the job names none (`[runners.kubernetes] image`).
    pub default_image: String,
    pub builds_dir: String,
    /// TLS to the coordinator and the log-shipper; None: plain HTTP/2.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
}

/// Runs until `shutdown`; returns the session task.
pub fn start(settings: Settings, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let runner = JobRunner {
        client: settings.kube,
        kubeconfig: settings.kubeconfig,
        namespace: settings.namespace,
        worker_id: settings.worker_id.clone(),
        helper_image: settings.helper_image,
        helper_binary: settings.helper_binary,
        default_image: settings.default_image,
        builds_dir: settings.builds_dir,
        // Told by the coordinator when the session opens.
        shipper_url: String::new(),
        tls: settings.tls,
        places: Default::default(),
        cancels: Default::default(),
    };
    let link = LinkConfig {
        coordinator_url: settings.coordinator_url,
        token: settings.token,
        worker_id: settings.worker_id,
        cluster: settings.cluster,
        pool: settings.pool,
        labels: settings.labels,
        capacity: settings.capacity,
    };
    tokio::spawn(link::run(link, runner, shutdown))
}
