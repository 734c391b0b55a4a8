//! Loading a file end to end: read it, decode it (collecting type errors and unknown keys),
//! expand what the official runner expands, validate it, and hand back either the
//! configuration with its warnings or every error found.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::cache::{AzureCache, CacheConfig, GcsCache, S3Cache};
use crate::coordinator::{CoordinatorSection, PoolConfig};
use crate::decode::decode;
use crate::error::{ConfigError, ConfigErrors, Warning, WarningKind};
use crate::kubernetes::affinity::{Affinity, NodeAffinity, PodAffinity};
use crate::kubernetes::containers::{ContainerLifecycle, PodSpecPatch, Service};
use crate::kubernetes::scheduling::{DnsConfig, DnsConfigOption, HostAlias};
use crate::kubernetes::security::{Capabilities, ContainerSecurityContext, PodSecurityContext};
use crate::kubernetes::volumes::{
    CsiVolume, EmptyDirVolume, HostPathVolume, KeysVolume, NfsVolume, ProjectedKeys, ProjectedSources, ProjectedVolume,
    PvcVolume, Volumes,
};
use crate::kubernetes::KubernetesConfig;
use crate::path::KeyPath;
use crate::runner::{ArtifactConfig, CustomBuildDir, RunnerConfig, RunnerConfigFile, SessionServer};
use crate::shipper::{ShipperConfigFile, ShipperSection};
use crate::suggest::{hint, struct_fields, TableKeys};
use crate::tls::{ClientTls, ServerTls, ShipperTls};
use crate::validate::{Validate, Validator};
use crate::worker::{WorkerConfigFile, WorkerKubernetes, WorkerSection};

/// A configuration that loaded, with what deserves a look (unknown keys, deprecations, notes).
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub config: T,
    pub warnings: Vec<Warning>,
}

impl<T> Loaded<T> {
    /// The unknown-key warnings only.
    pub fn unknown_keys(&self) -> impl Iterator<Item = &Warning> {
        self.warnings.iter().filter(|warning| warning.is_unknown_key())
    }
}

/// Looks up an environment variable (the process environment, or a map in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What the loader needs to know about a kind of file.
trait ConfigFile: DeserializeOwned + Validate {
    /// The tables the file can hold, for unknown-key hints.
    fn tables() -> Vec<TableKeys>;

    /// Changes made after decoding and before validation.
    fn prepare(&mut self, _env: EnvLookup) {}
}

fn load_str<T: ConfigFile>(text: &str, env: EnvLookup) -> Result<Loaded<T>, ConfigErrors> {
    let decoded = decode::<T>(text)?;
    let tables = T::tables();
    let mut warnings: Vec<Warning> = decoded
        .unknown_keys
        .iter()
        .map(|path| Warning {
            path: path.clone(),
            kind: WarningKind::UnknownKey {
                hint: hint(path, &tables),
            },
        })
        .collect();
    let mut config = decoded.value;
    config.prepare(env);
    let mut validator = Validator::default();
    config.validate(&KeyPath::root(), &mut validator);
    warnings.extend(validator.warnings);
    let mut errors = decoded.errors;
    errors.extend(validator.errors);
    if errors.is_empty() {
        Ok(Loaded { config, warnings })
    } else {
        Err(ConfigErrors { errors, warnings })
    }
}

fn load_file<T: ConfigFile>(path: &Path) -> Result<Loaded<T>, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        ConfigErrors::single(ConfigError::Read {
            file: path.to_owned(),
            source,
        })
    })?;
    load_str(&text, &process_env)
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads a gitlab-runner `config.toml` (with its optional `[coordinator]` section).
/// `$VAR` in `url` and `token` is expanded from the process environment, as the official runner does.
pub fn load_runner_config(path: impl AsRef<Path>) -> Result<Loaded<RunnerConfigFile>, ConfigErrors> {
    load_file(path.as_ref())
}

/// [`load_runner_config`] from text, with the process environment.
pub fn runner_config_from_str(text: &str) -> Result<Loaded<RunnerConfigFile>, ConfigErrors> {
    load_str(text, &process_env)
}

/// [`load_runner_config`] from text, with `env` for `$VAR` expansion.
pub fn runner_config_from_str_with_env(text: &str, env: EnvLookup) -> Result<Loaded<RunnerConfigFile>, ConfigErrors> {
    load_str(text, env)
}

/// Loads a worker's file.
pub fn load_worker_config(path: impl AsRef<Path>) -> Result<Loaded<WorkerConfigFile>, ConfigErrors> {
    load_file(path.as_ref())
}

/// [`load_worker_config`] from text.
pub fn worker_config_from_str(text: &str) -> Result<Loaded<WorkerConfigFile>, ConfigErrors> {
    load_str(text, &process_env)
}

/// Loads a log-shipper's file.
pub fn load_shipper_config(path: impl AsRef<Path>) -> Result<Loaded<ShipperConfigFile>, ConfigErrors> {
    load_file(path.as_ref())
}

/// [`load_shipper_config`] from text.
pub fn shipper_config_from_str(text: &str) -> Result<Loaded<ShipperConfigFile>, ConfigErrors> {
    load_str(text, &process_env)
}

/// Shorthand for one registry entry.
fn table<'de, T: serde::Deserialize<'de>>(shape: &'static str, header: &'static str) -> TableKeys {
    TableKeys {
        shape,
        header,
        keys: struct_fields::<T>(),
    }
}

impl ConfigFile for RunnerConfigFile {
    fn tables() -> Vec<TableKeys> {
        let mut tables = vec![
            table::<RunnerConfigFile>("", "the top level"),
            table::<SessionServer>("session_server", "[session_server]"),
            table::<RunnerConfig>("runners", "[[runners]]"),
            table::<CustomBuildDir>("runners.custom_build_dir", "[runners.custom_build_dir]"),
            table::<ArtifactConfig>("runners.artifact", "[runners.artifact]"),
            table::<CacheConfig>("runners.cache", "[runners.cache]"),
            table::<S3Cache>("runners.cache.s3", "[runners.cache.s3]"),
            table::<GcsCache>("runners.cache.gcs", "[runners.cache.gcs]"),
            table::<AzureCache>("runners.cache.azure", "[runners.cache.azure]"),
            table::<KubernetesConfig>("runners.kubernetes", "[runners.kubernetes]"),
            table::<Volumes>("runners.kubernetes.volumes", "[runners.kubernetes.volumes]"),
            table::<HostPathVolume>(
                "runners.kubernetes.volumes.host_path",
                "[[runners.kubernetes.volumes.host_path]]",
            ),
            table::<PvcVolume>("runners.kubernetes.volumes.pvc", "[[runners.kubernetes.volumes.pvc]]"),
            table::<KeysVolume>(
                "runners.kubernetes.volumes.config_map",
                "[[runners.kubernetes.volumes.config_map]]",
            ),
            table::<KeysVolume>(
                "runners.kubernetes.volumes.secret",
                "[[runners.kubernetes.volumes.secret]]",
            ),
            table::<EmptyDirVolume>(
                "runners.kubernetes.volumes.empty_dir",
                "[[runners.kubernetes.volumes.empty_dir]]",
            ),
            table::<CsiVolume>("runners.kubernetes.volumes.csi", "[[runners.kubernetes.volumes.csi]]"),
            table::<NfsVolume>("runners.kubernetes.volumes.nfs", "[[runners.kubernetes.volumes.nfs]]"),
            table::<ProjectedVolume>(
                "runners.kubernetes.volumes.projected",
                "[[runners.kubernetes.volumes.projected]]",
            ),
            table::<ProjectedSources>(
                "runners.kubernetes.volumes.projected.sources",
                "[runners.kubernetes.volumes.projected.sources]",
            ),
            table::<ProjectedKeys>(
                "runners.kubernetes.volumes.projected.sources.secret",
                "[[...projected.sources.secret]]",
            ),
            table::<ProjectedKeys>(
                "runners.kubernetes.volumes.projected.sources.config_map",
                "[[...projected.sources.config_map]]",
            ),
            table::<Affinity>("runners.kubernetes.affinity", "[runners.kubernetes.affinity]"),
            table::<NodeAffinity>(
                "runners.kubernetes.affinity.node_affinity",
                "[runners.kubernetes.affinity.node_affinity]",
            ),
            table::<PodAffinity>(
                "runners.kubernetes.affinity.pod_affinity",
                "[runners.kubernetes.affinity.pod_affinity]",
            ),
            table::<PodAffinity>(
                "runners.kubernetes.affinity.pod_anti_affinity",
                "[runners.kubernetes.affinity.pod_anti_affinity]",
            ),
            table::<PodSecurityContext>(
                "runners.kubernetes.pod_security_context",
                "[runners.kubernetes.pod_security_context]",
            ),
            table::<DnsConfig>("runners.kubernetes.dns_config", "[runners.kubernetes.dns_config]"),
            table::<DnsConfigOption>(
                "runners.kubernetes.dns_config.options",
                "[[runners.kubernetes.dns_config.options]]",
            ),
            table::<HostAlias>("runners.kubernetes.host_aliases", "[[runners.kubernetes.host_aliases]]"),
            table::<Service>("runners.kubernetes.services", "[[runners.kubernetes.services]]"),
            table::<PodSpecPatch>("runners.kubernetes.pod_spec", "[[runners.kubernetes.pod_spec]]"),
            table::<ContainerLifecycle>(
                "runners.kubernetes.container_lifecycle",
                "[runners.kubernetes.container_lifecycle]",
            ),
            table::<CoordinatorSection>("coordinator", "[coordinator]"),
            table::<PoolConfig>("coordinator.pools", "[[coordinator.pools]]"),
            table::<ServerTls>("coordinator.tls", "[coordinator.tls]"),
        ];
        for (shape, header) in [
            (
                "runners.kubernetes.build_container_security_context",
                "[runners.kubernetes.build_container_security_context]",
            ),
            (
                "runners.kubernetes.helper_container_security_context",
                "[runners.kubernetes.helper_container_security_context]",
            ),
            (
                "runners.kubernetes.service_container_security_context",
                "[runners.kubernetes.service_container_security_context]",
            ),
            (
                "runners.kubernetes.init_permissions_container_security_context",
                "[runners.kubernetes.init_permissions_container_security_context]",
            ),
        ] {
            tables.push(table::<ContainerSecurityContext>(shape, header));
        }
        tables.push(table::<Capabilities>(
            "runners.kubernetes.build_container_security_context.capabilities",
            "[...security_context.capabilities]",
        ));
        tables
    }

    fn prepare(&mut self, env: EnvLookup) {
        for runner in &mut self.runners {
            runner.expand_credentials(env);
        }
    }
}

impl ConfigFile for WorkerConfigFile {
    fn tables() -> Vec<TableKeys> {
        vec![
            table::<WorkerConfigFile>("", "the top level"),
            table::<WorkerSection>("worker", "[worker]"),
            table::<ClientTls>("worker.tls", "[worker.tls]"),
            table::<WorkerKubernetes>("kubernetes", "[kubernetes]"),
        ]
    }
}

impl ConfigFile for ShipperConfigFile {
    fn tables() -> Vec<TableKeys> {
        vec![
            table::<ShipperConfigFile>("", "the top level"),
            table::<ShipperSection>("log_shipper", "[log_shipper]"),
            table::<ShipperTls>("log_shipper.tls", "[log_shipper.tls]"),
        ]
    }
}
