//! Flotilla's configuration files, loaded and checked before anything starts.
//!
//! - [`RunnerConfigFile`]: the official gitlab-runner `config.toml` — global keys,
//!   `[session_server]`, `[[runners]]` with `[runners.kubernetes]`, `[runners.cache]`,
//!   `[runners.feature_flags]` — with the official names, types and defaults, so an existing
//!   file loads unchanged; plus [`CoordinatorSection`], the coordinator's `[coordinator]`.
//! - [`WorkerConfigFile`]: a worker's `[worker]` and `[kubernetes]`.
//! - [`ShipperConfigFile`]: the log-shipper's `[log_shipper]`.
//!
//! Loading collects *every* problem, each naming its key path
//! (`runners[0].kubernetes.cpu_limit: "2x" is not a valid Kubernetes quantity`). Keys nobody
//! takes are warnings, not errors — operators bring files written for the official runner —
//! and come with a hint when the key was probably misspelled or misplaced.
//! Credentials are [`Secret`]s: `Debug` never shows them.
//!
//! Layout:
//! - [`load`]: the `load_*` / `*_from_str` entry points and [`Loaded`];
//! - [`runner`], [`cache`], [`kubernetes`] (with `resources`, `scheduling`, `affinity`, `security`,
//!   `volumes`, `containers`, `pull_policy`): `config.toml`;
//! - [`coordinator`], [`worker`], [`shipper`], [`tls`]: Flotilla's own settings;
//! - [`quantity`], [`pattern`], [`duration`], [`secret`], [`selector`]: value types shared by the above;
//! - [`error`], [`path`]: what a load reports;
//! - internal: `decode` (collect every type error), `validate`, `suggest` (unknown-key hints), `de`.

pub mod cache;
pub mod coordinator;
mod de;
mod decode;
pub mod duration;
pub mod error;
pub mod kubernetes;
pub mod load;
pub mod path;
pub mod pattern;
pub mod quantity;
pub mod runner;
pub mod secret;
pub mod selector;
pub mod shipper;
mod suggest;
pub mod tls;
mod validate;
pub mod worker;

pub use coordinator::{CoordinatorSection, PoolConfig};
pub use error::{ConfigError, ConfigErrors, Warning, WarningKind};
pub use kubernetes::containers::{PatchType, PodSpecPatch};
pub use kubernetes::resources::{ContainerKind, ContainerResources, ResourceBounds};
pub use kubernetes::KubernetesConfig;
pub use load::{
    load_runner_config, load_shipper_config, load_worker_config, runner_config_from_str,
    runner_config_from_str_with_env, shipper_config_from_str, worker_config_from_str, Loaded,
};
pub use path::KeyPath;
pub use pattern::OverwritePattern;
pub use quantity::{Quantity, QuantityError};
pub use runner::{RunnerConfig, RunnerConfigFile};
pub use secret::Secret;
pub use selector::ClusterSelector;
pub use shipper::{ShipperConfigFile, ShipperSection};
pub use worker::{KubernetesConnection, WorkerConfigFile, WorkerKubernetes, WorkerSection};
