//! `[coordinator]` of `config.toml`: where the coordinator listens and keeps its job store,
//! how it watches workers, which worker pools exist and when overflow pools take jobs.
//! Absent from official files, so every key has a default except the pools.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::de::optional;
use crate::path::KeyPath;
use crate::secret::Secret;
use crate::tls::{check_dial_url, ServerTls};
use crate::validate::{Validate, Validator};

/// `[coordinator]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorSection {
    /// Address of the gRPC services workers and log-shippers dial (default `127.0.0.1:7600`).
    #[serde(default = "default_grpc_listen")]
    pub grpc_listen: SocketAddr,
    /// Address of the admin gRPC service `fleetctl` dials (default `127.0.0.1:7601`).
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// Directory of the durable job store (default `/var/lib/flotilla/coordinator`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where the log-shipper serves trace streams, handed to workers; unset: workers use their own.
    #[serde(default, deserialize_with = "optional")]
    pub log_shipper_url: Option<String>,
    /// How often workers send heartbeats (default `2s`).
    #[serde(default = "default_heartbeat_interval", with = "crate::duration")]
    pub heartbeat_interval: Duration,
    /// Silence after which a worker counts as gone and its slots as free (default `10s`).
    #[serde(default = "default_worker_timeout", with = "crate::duration")]
    pub worker_timeout: Duration,
    /// After a restart, how long to wait for workers to report their jobs before re-dispatching
    /// or failing them (default `30s`).
    #[serde(default = "default_reconnect_grace", with = "crate::duration")]
    pub reconnect_grace: Duration,
    /// Token `fleetctl` must present; unset: the admin service refuses every call.
    #[serde(default, deserialize_with = "optional")]
    pub admin_token: Option<Secret>,
    /// Token log-shippers must present (their `[log_shipper] token`); unset: not checked.
    #[serde(default, deserialize_with = "optional")]
    pub shipper_token: Option<Secret>,
    /// `[[coordinator.pools]]`: the worker pools and their credentials.
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    /// `[coordinator.tls]`: TLS (and mTLS with `client_ca_file`) for the gRPC listeners; unset: plain.
    #[serde(default)]
    pub tls: Option<ServerTls>,
}

/// `[[coordinator.pools]]`: a group of workers sharing a credential and a scheduling policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolConfig {
    /// Pool name workers register with (`pool` in the worker file; required, unique).
    #[serde(default)]
    pub name: String,
    /// Credential of this pool's workers (required, unique across pools).
    #[serde(default)]
    pub token: Secret,
    /// An overflow pool (e.g. QA clusters) only takes jobs the production pools cannot
    /// (default false).
    #[serde(default)]
    pub overflow: bool,
    /// An overflow pool also takes a job that waited this long for a production slot;
    /// unset: only when production is full.
    #[serde(default, with = "crate::duration::option")]
    pub overflow_after: Option<Duration>,
}

impl Default for CoordinatorSection {
    /// The settings of an absent `[coordinator]` section.
    fn default() -> Self {
        // Decoding an empty table keeps one source of truth: the serde defaults above.
        Self::deserialize(toml::Value::Table(toml::Table::new())).expect("an empty table has every default")
    }
}

impl Validate for CoordinatorSection {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        if self.grpc_listen == self.admin_listen {
            validator.error(
                &path.key("admin_listen"),
                format!("{} is also grpc_listen", self.admin_listen),
            );
        }
        if self.heartbeat_interval.is_zero() {
            validator.error(&path.key("heartbeat_interval"), "must be more than zero");
        }
        if self.worker_timeout <= self.heartbeat_interval {
            validator.error(
                &path.key("worker_timeout"),
                format!(
                    "{} is not longer than heartbeat_interval ({}); every worker would time out",
                    crate::duration::format_duration(self.worker_timeout),
                    crate::duration::format_duration(self.heartbeat_interval)
                ),
            );
        }
        if let Some(url) = &self.log_shipper_url {
            check_dial_url(url, false, &path.key("log_shipper_url"), validator);
        }
        if let Some(tls) = &self.tls {
            tls.validate(&path.key("tls"), validator);
        }
        self.validate_pools(path, validator);
    }
}

impl CoordinatorSection {
    fn validate_pools(&self, path: &KeyPath, validator: &mut Validator) {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut tokens: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, pool) in self.pools.iter().enumerate() {
            let pool_path = path.key("pools").index(index);
            if validator.require(&pool_path.key("name"), &pool.name) {
                if let Some(first) = names.insert(&pool.name, index) {
                    validator.error(
                        &pool_path.key("name"),
                        format!("{:?} is also the name of pools[{first}]", pool.name),
                    );
                }
            }
            if validator.require(&pool_path.key("token"), pool.token.expose()) {
                // A worker's token is what tells the coordinator its pool.
                if let Some(first) = tokens.insert(pool.token.expose(), index) {
                    validator.error(
                        &pool_path.key("token"),
                        format!("is the same as the token of pools[{first}]"),
                    );
                }
            }
            if pool.overflow_after.is_some() && !pool.overflow {
                validator.error(
                    &pool_path.key("overflow_after"),
                    "only applies to a pool with overflow = true",
                );
            }
        }
        if !self.pools.is_empty() && self.pools.iter().all(|pool| pool.overflow) {
            validator.note(
                &path.key("pools"),
                "every pool is an overflow pool: jobs wait for production capacity that never comes",
            );
        }
    }
}

fn default_grpc_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7600))
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7601))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/flotilla/coordinator")
}

fn default_heartbeat_interval() -> Duration {
    Duration::from_secs(2)
}

fn default_worker_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_reconnect_grace() -> Duration {
    Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Vec<String> {
        let section: CoordinatorSection = toml::from_str(text).unwrap();
        let mut validator = Validator::default();
        section.validate(&KeyPath::root().key("coordinator"), &mut validator);
        validator.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults() {
        let section = CoordinatorSection::default();
        assert_eq!(section.grpc_listen.to_string(), "127.0.0.1:7600");
        assert_eq!(section.admin_listen.to_string(), "127.0.0.1:7601");
        assert_eq!(section.heartbeat_interval, Duration::from_secs(2));
        assert_eq!(section.worker_timeout, Duration::from_secs(10));
        assert_eq!(section.reconnect_grace, Duration::from_secs(30));
        assert_eq!(section.admin_token, None);
        assert_eq!(section.shipper_token, None);
        assert!(section.pools.is_empty() && section.tls.is_none());
        assert!(check("").is_empty());
    }

    #[test]
    fn pools_and_overflow() {
        let section: CoordinatorSection = toml::from_str(
            "[[pools]]\nname = \"prod\"\ntoken = \"p\"\n[[pools]]\nname = \"qa\"\ntoken = \"q\"\noverflow = true\noverflow_after = \"5m\"",
        )
        .unwrap();
        assert_eq!(section.pools[1].overflow_after, Some(Duration::from_secs(300)));
        assert!(!format!("{section:?}").contains("\"q\""));
    }

    #[test]
    fn pool_rules() {
        assert_eq!(
            check("[[pools]]\nname = \"prod\"\ntoken = \"t\"\noverflow_after = \"1m\"\n[[pools]]\nname = \"prod\"\ntoken = \"t\"\n[[pools]]\ntoken = \"\""),
            [
                "coordinator.pools[0].overflow_after: only applies to a pool with overflow = true",
                "coordinator.pools[1].name: \"prod\" is also the name of pools[0]",
                "coordinator.pools[1].token: is the same as the token of pools[0]",
                "coordinator.pools[2].name: is required",
                "coordinator.pools[2].token: is required",
            ]
        );
    }

    #[test]
    fn timing_and_listener_rules() {
        assert_eq!(
            check("heartbeat_interval = \"10s\"\nworker_timeout = \"5s\"\nadmin_listen = \"127.0.0.1:7600\"\nlog_shipper_url = \"shipper:7700\""),
            [
                "coordinator.admin_listen: 127.0.0.1:7600 is also grpc_listen",
                "coordinator.worker_timeout: 5s is not longer than heartbeat_interval (10s); every worker would time out",
                "coordinator.log_shipper_url: \"shipper:7700\" is not an absolute http(s) URL (e.g. \"https://gitlab.example.com\")",
            ]
        );
    }
}
