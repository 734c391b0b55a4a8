//! From a loaded `config.toml` to the coordinator's [`Settings`]: which runner entries to
//! poll, where to listen, which pools exist and with which credentials. What the file cannot
//! express for a running coordinator (no pool for workers to join, unreadable TLS files) is
//! refused here with the key it concerns, before anything starts.

use std::collections::HashMap;
use std::time::Duration;

use flotilla_config::{RunnerConfig, RunnerConfigFile};
use flotilla_proto::transport::server_tls;

use crate::core::WorkerTiming;
use crate::finisher::FinishTiming;
use crate::fleet::{OverflowPool, PoolPolicy};
use crate::gateway::Credentials;
use crate::poller::PollTiming;
use crate::run::{RunnerSettings, Settings};

/// A configuration the coordinator cannot run with, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct SettingsError {
    pub key: String,
    pub reason: String,
}

impl Settings {
    /// The coordinator a `config.toml` describes.
    pub fn from_config(file: &RunnerConfigFile) -> Result<Settings, SettingsError> {
        let section = &file.coordinator;
        if section.pools.is_empty() {
            return Err(SettingsError {
                key: "coordinator.pools".into(),
                reason: "no worker pool is configured, so no worker could join: add \
                         [[coordinator.pools]] with a name (e.g. \"prod\") and the token its workers present"
                    .into(),
            });
        }
        let tls = match &section.tls {
            None => None,
            Some(tls) => Some(
                server_tls(
                    tls.cert_file.as_deref().unwrap_or(std::path::Path::new("")),
                    tls.key_file.as_deref().unwrap_or(std::path::Path::new("")),
                    tls.client_ca_file.as_deref(),
                )
                .map_err(|e| SettingsError {
                    key: "coordinator.tls".into(),
                    reason: e.to_string(),
                })?,
            ),
        };
        let runners = file
            .runners
            .iter()
            .enumerate()
            .map(|(index, runner)| runner_settings(index, runner))
            .collect::<Result<Vec<_>, _>>()?;
        // Every entry's final updates share one finisher: the most patient entry's limit applies.
        let retry_limit = file
            .runners
            .iter()
            .map(|r| r.job_status_final_update_retry_limit)
            .max()
            .unwrap_or(FinishTiming::default().retry_limit);
        let metrics_listen = file
            .listen_address
            .as_deref()
            .map(metrics_address)
            .transpose()
            .map_err(|reason| SettingsError {
                key: "listen_address".into(),
                reason,
            })?;
        Ok(Settings {
            metrics_listen,
            listen: section.grpc_listen,
            admin_listen: section.admin_listen,
            log_shipper_url: section.log_shipper_url.clone(),
            tls,
            data_dir: section.data_dir.clone(),
            concurrent: file.concurrent,
            runners,
            credentials: Credentials {
                pool_tokens: section
                    .pools
                    .iter()
                    .map(|pool| (pool.name.clone(), pool.token.clone()))
                    .collect::<HashMap<_, _>>(),
                admin_token: section.admin_token.clone(),
                shipper_token: section.shipper_token.clone(),
            },
            pools: PoolPolicy {
                overflow_pools: section
                    .pools
                    .iter()
                    .filter(|pool| pool.overflow)
                    .map(|pool| OverflowPool {
                        name: pool.name.clone(),
                        after: pool.overflow_after,
                    })
                    .collect(),
            },
            workers: WorkerTiming {
                heartbeat_interval: section.heartbeat_interval,
                worker_timeout: section.worker_timeout,
                reconnect_grace: section.reconnect_grace,
            },
            poll: PollTiming {
                check_interval: Duration::from_secs(u64::from(file.check_interval)),
                ..PollTiming::default()
            },
            finish: FinishTiming {
                retry_limit,
                ..FinishTiming::default()
            },
        })
    }
}

/// `listen_address` as the official runner takes it: `host:port`, or `:port` for every
/// interface.
fn metrics_address(text: &str) -> Result<std::net::SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_string()
    };
    std::net::ToSocketAddrs::to_socket_addrs(&full)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("{text:?} is not a host:port to serve metrics on (e.g. \":9252\")"))
}

fn runner_settings(index: usize, runner: &RunnerConfig) -> Result<RunnerSettings, SettingsError> {
    // The name keys the entry's limit and its jobs in the store; the loader keeps names
    // unique, and an unnamed entry is known by its position.
    let name = if runner.name.is_empty() {
        format!("runners[{index}]")
    } else {
        runner.name.clone()
    };
    // Workers get the entry's settings, never its GitLab credential: jobs carry their own token.
    let mut for_workers = runner.clone();
    for_workers.token = Default::default();
    // Workers run elsewhere: a `pod_spec` patch file is read here, when the coordinator starts.
    for (patch_index, patch) in for_workers.kubernetes.pod_spec.iter_mut().enumerate() {
        if patch.patch.is_none() {
            patch.patch = Some(patch.text().map_err(|reason| SettingsError {
                key: format!("runners[{index}].kubernetes.pod_spec[{patch_index}].patch_path"),
                reason,
            })?);
            patch.patch_path = None;
        }
    }
    let config_json = serde_json::to_string(&for_workers).map_err(|e| SettingsError {
        key: format!("runners[{index}]"),
        reason: format!("cannot be handed to workers: {e}"),
    })?;
    Ok(RunnerSettings {
        name,
        url: runner.url.clone(),
        token: runner.token.clone(),
        limit: runner.limit,
        output_limit_bytes: runner.output_limit_bytes(),
        cluster_selector: runner.cluster_selector.clone(),
        config_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
concurrent = 4
check_interval = 1

[coordinator]
grpc_listen = "127.0.0.1:17600"
admin_listen = "127.0.0.1:17601"
data_dir = "/tmp/flotilla-test"
admin_token = "admin-secret"

[[coordinator.pools]]
name = "prod"
token = "prod-secret"

[[coordinator.pools]]
name = "qa"
token = "qa-secret"
overflow = true

[[runners]]
name = "first"
url = "https://gitlab.example.com"
token = "glrt-first"
executor = "kubernetes"
limit = 2
output_limit = 100
job_status_final_update_retry_limit = 12

[[runners]]
url = "https://gitlab.example.com"
token = "glrt-second"
executor = "kubernetes"
"#;

    fn settings(text: &str) -> Result<Settings, SettingsError> {
        let loaded = flotilla_config::runner_config_from_str(text).expect("the test file loads");
        Settings::from_config(&loaded.config)
    }

    #[test]
    fn a_config_file_becomes_settings() {
        let settings = settings(BASE).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:17600");
        assert_eq!(settings.admin_listen.to_string(), "127.0.0.1:17601");
        assert_eq!(settings.concurrent, 4);
        assert_eq!(settings.poll.check_interval, Duration::from_secs(1));
        assert_eq!(settings.finish.retry_limit, 12);
        assert_eq!(
            settings.pools.overflow_pools,
            [OverflowPool {
                name: "qa".into(),
                after: None
            }]
        );
        assert_eq!(settings.credentials.pool_tokens["prod"].expose(), "prod-secret");
        assert_eq!(
            settings.credentials.admin_token.as_ref().unwrap().expose(),
            "admin-secret"
        );
        let names: Vec<_> = settings.runners.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["first", "runners[1]"]);
        let first = &settings.runners[0];
        assert_eq!((first.limit, first.output_limit_bytes), (2, 100 * 1024));
        assert_eq!(first.token.expose(), "glrt-first");
    }

    #[test]
    fn workers_get_the_runner_settings_without_its_token() {
        let settings = settings(BASE).unwrap();
        let handed: serde_json::Value = serde_json::from_str(&settings.runners[0].config_json).unwrap();
        assert_eq!(handed["url"], "https://gitlab.example.com");
        assert_eq!(handed["token"], "");
        assert!(!settings.runners[0].config_json.contains("glrt-first"));
    }

    #[test]
    fn workers_get_pod_spec_patch_files_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hostname.yaml");
        std::fs::write(&file, "hostname: from-file\n").unwrap();
        let text = format!(
            "{BASE}  [[runners.kubernetes.pod_spec]]\n    name = \"hostname\"\n    patch_path = {:?}\n",
            file.display().to_string()
        );
        let settings = settings(&text).unwrap();
        let handed: serde_json::Value = serde_json::from_str(&settings.runners[1].config_json).unwrap();
        let patch = &handed["kubernetes"]["pod_spec"][0];
        assert_eq!(patch["patch"], "hostname: from-file\n");
        assert!(patch["patch_path"].is_null(), "{patch}");
    }

    #[test]
    fn a_fleet_without_pools_is_refused_by_key() {
        let text = BASE.split("[[coordinator.pools]]").next().unwrap().to_string()
            + "[[runners]]\nurl = \"https://g.example.com\"\ntoken = \"t\"\nexecutor = \"kubernetes\"\n";
        let error = settings(&text).unwrap_err();
        assert_eq!(error.key, "coordinator.pools");
        assert!(error.to_string().starts_with("coordinator.pools: no worker pool"));
    }

    #[test]
    fn metrics_listen_where_listen_address_says() {
        let text = format!("listen_address = \":9252\"\n{BASE}");
        assert_eq!(
            settings(&text).unwrap().metrics_listen.unwrap().to_string(),
            "0.0.0.0:9252"
        );
        assert_eq!(settings(BASE).unwrap().metrics_listen, None);
    }

    #[test]
    fn unreadable_tls_files_are_refused_by_key() {
        let text = BASE.replacen(
            "[[coordinator.pools]]",
            "[coordinator.tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n\n[[coordinator.pools]]",
            1,
        );
        let error = settings(&text).unwrap_err();
        assert_eq!(error.key, "coordinator.tls");
        assert!(error.reason.starts_with("cannot read /nonexistent/cert.pem"), "{error}");
    }
}
