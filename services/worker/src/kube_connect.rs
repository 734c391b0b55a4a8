//! The worker's Kubernetes client from its `[kubernetes]` settings, the three ways the official
//! runner connects: an explicit `host` (with `bearer_token` and/or `cert_file`+`key_file`, and
//! `ca_file`), a kubeconfig file (optionally a `context` of it), or discovery (in-cluster
//! service account, then `KUBECONFIG` / `~/.kube/config`).

use flotilla_config::{KubernetesConnection, WorkerKubernetes};
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("kubernetes.kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("kubernetes: no cluster found (not in a Pod, no KUBECONFIG, no ~/.kube/config): {0}")]
    Discover(#[from] kube::config::InferConfigError),
    #[error("kubernetes: {0}")]
    Config(#[from] kube::config::KubeconfigError),
    #[error("kubernetes: cannot build a client: {0}")]
    Client(#[from] kube::Error),
}

/// A client for the cluster the settings name. Nothing is contacted yet: an API server that
/// is down is retried by the job runner, not refused here.
pub async fn connect(settings: &WorkerKubernetes) -> Result<kube::Client, ConnectError> {
    let config = match settings.connection() {
        KubernetesConnection::Explicit {
            host,
            bearer_token,
            cert_file,
            key_file,
            ca_file,
        } => return connect_to(host, bearer_token.map(|t| t.expose()), cert_file, key_file, ca_file).await,
        KubernetesConnection::Kubeconfig { path, context } => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|source| ConnectError::Kubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            let options = KubeConfigOptions {
                context: context.map(str::to_owned),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        KubernetesConnection::Discover { context: None } => kube::Config::infer().await?,
        KubernetesConnection::Discover { context: Some(context) } => {
            let options = KubeConfigOptions {
                context: Some(context.to_owned()),
                ..Default::default()
            };
            kube::Config::from_kubeconfig(&options).await?
        }
    };
    Ok(kube::Client::try_from(config)?)
}

/// A client for `context` of the worker's kubeconfig (`path`; else `$KUBECONFIG` or
/// `~/.kube/config`): what a runner entry's `context` without a `host` connects with, as the
/// official runner looks the context up in its own kubeconfig.
pub async fn connect_context(path: Option<&std::path::Path>, context: &str) -> Result<kube::Client, ConnectError> {
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = match path {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|source| ConnectError::Kubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None => kube::Config::from_kubeconfig(&options).await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// A client for the API server at `host` with these credentials (the PEM files are read
/// now). Also what a runner entry's own `host` in `[runners.kubernetes]` connects with.
pub async fn connect_to(
    host: &str,
    bearer_token: Option<&str>,
    cert_file: Option<&std::path::Path>,
    key_file: Option<&std::path::Path>,
    ca_file: Option<&std::path::Path>,
) -> Result<kube::Client, ConnectError> {
    let kubeconfig = explicit_kubeconfig(host, bearer_token, cert_file, key_file, ca_file);
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// The explicit settings as a one-context kubeconfig, so kube reads the PEM files exactly as
/// it does for any kubeconfig.
fn explicit_kubeconfig(
    host: &str,
    bearer_token: Option<&str>,
    cert_file: Option<&std::path::Path>,
    key_file: Option<&std::path::Path>,
    ca_file: Option<&std::path::Path>,
) -> Kubeconfig {
    let path = |p: Option<&std::path::Path>| p.map(|p| p.display().to_string());
    let value = serde_json::json!({
        "clusters": [{"name": "flotilla", "cluster": {
            "server": host,
            "certificate-authority": path(ca_file),
        }}],
        "users": [{"name": "flotilla", "user": {
            "token": bearer_token,
            "client-certificate": path(cert_file),
            "client-key": path(key_file),
        }}],
        "contexts": [{"name": "flotilla", "context": {"cluster": "flotilla", "user": "flotilla"}}],
        "current-context": "flotilla",
    });
    serde_json::from_value(value).expect("a kubeconfig built from its own schema parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_settings_become_one_context() {
        let kubeconfig = explicit_kubeconfig(
            "https://10.0.0.1:6443",
            Some("sa-token"),
            None,
            None,
            Some(std::path::Path::new("/etc/ca.pem")),
        );
        let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority.as_deref(), Some("/etc/ca.pem"));
        let user = kubeconfig.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_some() && user.client_certificate.is_none());
        assert_eq!(kubeconfig.current_context.as_deref(), Some("flotilla"));
    }
}
