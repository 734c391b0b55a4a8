//! From a loaded worker file to the worker's [`Settings`]: who it is in the fleet
//! (`[worker]`) and where its jobs run (`[kubernetes]`).

use flotilla_config::WorkerConfigFile;

use flotilla_proto::transport::client_tls;

use crate::kube_connect::{connect, ConnectError};
use crate::run::Settings;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("worker.tls: {0}")]
    Tls(#[from] flotilla_proto::transport::TransportError),
    #[error(transparent)]
    Kubernetes(#[from] ConnectError),
}

impl Settings {
    /// The worker a file describes, with a client for its cluster.
    pub async fn from_config(file: &WorkerConfigFile) -> Result<Settings, SettingsError> {
        let (worker, kubernetes) = (&file.worker, &file.kubernetes);
        let tls = match &worker.tls {
            None => None,
            Some(tls) => Some(client_tls(
                tls.ca_file.as_deref(),
                tls.cert_file.as_deref().zip(tls.key_file.as_deref()),
            )?),
        };
        Ok(Settings {
            coordinator_url: worker.coordinator_url.clone(),
            token: worker.token.clone(),
            worker_id: worker.id.clone(),
            cluster: worker.cluster.clone(),
            pool: worker.pool.clone(),
            labels: worker.labels.clone().into_iter().collect(),
            capacity: worker.capacity,
            kube: connect(kubernetes).await?,
            kubeconfig: kubernetes.kubeconfig.clone(),
            namespace: kubernetes.namespace.clone(),
            helper_image: kubernetes.helper_image.clone(),
            helper_binary: kubernetes.helper_binary.clone(),
            default_image: kubernetes.image.clone(),
            builds_dir: kubernetes.builds_dir.clone(),
            tls,
        })
    }
}
