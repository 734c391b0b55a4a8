//! The worker's own file: `[worker]` says how it reaches the coordinator and what it offers
//! (cluster, pool, labels, capacity); `[kubernetes]` says how it reaches its cluster's API and
//! where job Pods go.
//!
//! ```toml
//! [worker]
//! id = "cluster-a-1"
//! coordinator_url = "https://coordinator.example.com:7600"
//! token = "pool-token"
//! cluster = "cluster-a"
//!
//! [kubernetes]
//! namespace = "ci"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::de::optional;
use crate::path::KeyPath;
use crate::secret::Secret;
use crate::tls::{check_dial_url, ClientTls};
use crate::validate::{has_variables, Validate, Validator};

/// A whole worker file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerConfigFile {
    #[serde(default = "empty_table_default")]
    pub worker: WorkerSection,
    #[serde(default = "empty_table_default")]
    pub kubernetes: WorkerKubernetes,
}

/// `[worker]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerSection {
    /// This worker's name, stable across restarts: re-adoption of running Pods keys on it (required).
    #[serde(default)]
    pub id: String,
    /// The coordinator's gRPC address, `http(s)://host:port` (required).
    #[serde(default)]
    pub coordinator_url: String,
    /// The token of this worker's pool (`[[coordinator.pools]]`; required).
    #[serde(default)]
    pub token: Secret,
    /// Name of the cluster this worker runs jobs in (required).
    #[serde(default)]
    pub cluster: String,
    /// The pool this worker belongs to (default `prod`).
    #[serde(default = "default_pool")]
    pub pool: String,
    /// Labels jobs' routing variables are matched against.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Most jobs this worker runs at once (default 10).
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// `[worker.tls]`: trust roots and client certificate for the coordinator; unset: plain or system roots.
    #[serde(default)]
    pub tls: Option<ClientTls>,
}

/// `[kubernetes]` of the worker file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerKubernetes {
    /// API server URL; set it to connect explicitly instead of discovering the cluster.
    #[serde(default, deserialize_with = "optional")]
    pub host: Option<String>,
    /// Client certificate (with `host`; needs `key_file`).
    #[serde(default, deserialize_with = "optional")]
    pub cert_file: Option<PathBuf>,
    /// Private key of `cert_file`.
    #[serde(default, deserialize_with = "optional")]
    pub key_file: Option<PathBuf>,
    /// CA bundle of the API server (with `host`); unset: the system roots.
    #[serde(default, deserialize_with = "optional")]
    pub ca_file: Option<PathBuf>,
    /// Bearer token (with `host`).
    #[serde(default, deserialize_with = "optional")]
    pub bearer_token: Option<Secret>,
    /// A kubeconfig file to use instead of `host`.
    #[serde(default, deserialize_with = "optional")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig; unset: its current context.
    #[serde(default, deserialize_with = "optional")]
    pub context: Option<String>,
    /// Namespace of job Pods when the runner entry sets none (default `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Image holding `flotilla-helper` (default `registry.gitlab.com/flotilla/helper:latest`).
    #[serde(default = "default_helper_image")]
    pub helper_image: String,
    /// Path of `flotilla-helper` inside the helper image (default `/usr/local/bin/flotilla-helper`).
    #[serde(default = "default_helper_binary")]
    pub helper_binary: String,
    /// Job image when neither the job nor the runner entry names one (default `alpine:latest`).
    #[serde(default = "default_image")]
    pub image: String,
    /// Where jobs check out their project when the runner entry sets no `builds_dir` (default `/builds`).
    #[serde(default = "default_builds_dir")]
    pub builds_dir: String,
}

/// How the worker reaches the Kubernetes API, decided from `[kubernetes]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KubernetesConnection<'a> {
    /// `host` with its credentials.
    Explicit {
        host: &'a str,
        bearer_token: Option<&'a Secret>,
        cert_file: Option<&'a Path>,
        key_file: Option<&'a Path>,
        ca_file: Option<&'a Path>,
    },
    /// A kubeconfig file, at its current context or `context`.
    Kubeconfig { path: &'a Path, context: Option<&'a str> },
    /// Nothing set: the in-cluster service account when running in a Pod, else `$KUBECONFIG`
    /// or `~/.kube/config` (kube-rs `Config::infer`), at `context` if given.
    Discover { context: Option<&'a str> },
}

impl WorkerKubernetes {
    /// Which way to connect; the validation pass guarantees the settings are not mixed.
    pub fn connection(&self) -> KubernetesConnection<'_> {
        if let Some(host) = &self.host {
            return KubernetesConnection::Explicit {
                host,
                bearer_token: self.bearer_token.as_ref(),
                cert_file: self.cert_file.as_deref(),
                key_file: self.key_file.as_deref(),
                ca_file: self.ca_file.as_deref(),
            };
        }
        match &self.kubeconfig {
            Some(path) => KubernetesConnection::Kubeconfig {
                path,
                context: self.context.as_deref(),
            },
            None => KubernetesConnection::Discover {
                context: self.context.as_deref(),
            },
        }
    }
}

impl Validate for WorkerConfigFile {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        self.worker.validate(&path.key("worker"), validator);
        self.kubernetes.validate(&path.key("kubernetes"), validator);
    }
}

impl Validate for WorkerSection {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        validator.require(&path.key("id"), &self.id);
        check_dial_url(
            &self.coordinator_url,
            self.tls.is_some(),
            &path.key("coordinator_url"),
            validator,
        );
        validator.require(&path.key("token"), self.token.expose());
        validator.require(&path.key("cluster"), &self.cluster);
        validator.require(&path.key("pool"), &self.pool);
        if self.capacity == 0 {
            validator.error(&path.key("capacity"), "must be at least 1");
        }
        if let Some(tls) = &self.tls {
            tls.validate(&path.key("tls"), validator);
        }
    }
}

impl Validate for WorkerKubernetes {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        match &self.host {
            Some(host) => {
                validator.check_http_url(&path.key("host"), host);
                if self.kubeconfig.is_some() {
                    validator.error(&path.key("kubeconfig"), "set either host or kubeconfig, not both");
                }
                if self.context.is_some() {
                    validator.error(
                        &path.key("context"),
                        "is a kubeconfig setting; it does nothing with host",
                    );
                }
            }
            None => {
                // Credentials without `host` would be silently ignored: say so instead.
                let host_only = [
                    ("cert_file", self.cert_file.is_some()),
                    ("key_file", self.key_file.is_some()),
                    ("ca_file", self.ca_file.is_some()),
                    ("bearer_token", self.bearer_token.is_some()),
                ];
                for (key, is_set) in host_only {
                    if is_set {
                        validator.error(&path.key(key), "is only used with host");
                    }
                }
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) if self.host.is_some() => {
                validator.error(&path.key("key_file"), "is required when cert_file is set");
            }
            (None, Some(_)) if self.host.is_some() => {
                validator.error(&path.key("cert_file"), "is required when key_file is set");
            }
            _ => {}
        }
        if !has_variables(&self.namespace) {
            validator.check_dns_label(&path.key("namespace"), &self.namespace);
        }
        validator.require(&path.key("helper_image"), &self.helper_image);
        validator.require(&path.key("helper_binary"), &self.helper_binary);
    }
}

/// The defaults of an absent section (serde calls this for `[worker]`/`[kubernetes]`).
fn empty_table_default<T: serde::de::DeserializeOwned>() -> T {
    T::deserialize(toml::Value::Table(toml::Table::new())).expect("an empty table has every default")
}

fn default_pool() -> String {
    "prod".to_owned()
}

fn default_capacity() -> u32 {
    10
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn default_helper_image() -> String {
    "registry.gitlab.com/flotilla/helper:latest".to_owned()
}

fn default_helper_binary() -> String {
    "/usr/local/bin/flotilla-helper".to_owned()
}

fn default_image() -> String {
    "alpine:latest".to_owned()
}

fn default_builds_dir() -> String {
    "/builds".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubernetes(text: &str) -> WorkerKubernetes {
        toml::from_str(text).unwrap()
    }

    fn errors(section: &impl Validate) -> Vec<String> {
        let mut validator = Validator::default();
        section.validate(&KeyPath::root().key("kubernetes"), &mut validator);
        validator.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn nothing_set_means_discovery() {
        let config = kubernetes("");
        assert_eq!(config.connection(), KubernetesConnection::Discover { context: None });
        assert_eq!(config.namespace, "default");
        assert!(errors(&config).is_empty());
    }

    #[test]
    fn explicit_and_kubeconfig_connections() {
        let config = kubernetes("host = \"https://10.0.0.1:6443\"\nbearer_token = \"t\"\nca_file = \"/ca.pem\"");
        match config.connection() {
            KubernetesConnection::Explicit {
                host,
                bearer_token,
                ca_file,
                ..
            } => {
                assert_eq!(host, "https://10.0.0.1:6443");
                assert_eq!(bearer_token.unwrap().expose(), "t");
                assert_eq!(ca_file, Some(Path::new("/ca.pem")));
            }
            other => panic!("{other:?}"),
        }
        let config = kubernetes("kubeconfig = \"/etc/kube/config\"\ncontext = \"cluster-a\"");
        assert_eq!(
            config.connection(),
            KubernetesConnection::Kubeconfig {
                path: Path::new("/etc/kube/config"),
                context: Some("cluster-a")
            }
        );
    }

    #[test]
    fn mixed_connection_settings_are_refused() {
        assert_eq!(
            errors(&kubernetes(
                "host = \"https://k:6443\"\nkubeconfig = \"/k\"\ncert_file = \"/c\""
            )),
            [
                "kubernetes.kubeconfig: set either host or kubeconfig, not both",
                "kubernetes.key_file: is required when cert_file is set"
            ]
        );
        assert_eq!(
            errors(&kubernetes("bearer_token = \"t\"\nca_file = \"/ca\"")),
            [
                "kubernetes.ca_file: is only used with host",
                "kubernetes.bearer_token: is only used with host"
            ]
        );
    }
}
