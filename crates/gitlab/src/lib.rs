//! GitLab's runner API (`/api/v4`), spoken the way the official `gitlab-runner` speaks it.
//!
//! This crate is the only place in Flotilla that knows the wire protocol of
//! `shared/reference/gitlab-runner-api.md`. It is used by the coordinator's pollers and
//! finisher (`jobs/request`, `PUT /jobs/:id`), the log-shipper's shipping actors
//! (`PATCH /jobs/:id/trace`), the worker and the in-Pod helper (the job payload types), and
//! `fleetctl runner` (registration, verification, unregistration).
//!
//! Modules:
//! - [`types`] — the job payload GitLab hands out (`201` body of `jobs/request`).
//! - [`info`] — the `info` object (version, platform, `features`) the runner sends.
//! - [`system_id`] — the per-host `system_id` and its `.runner_system_id` file.
//! - [`client`] — [`RunnerClient`], the HTTP client with the official runner's retry layer, and
//!   the runner lifecycle calls ([`client::runners`]: register, verify, unregister).
//! - [`failure`] — [`FailureReason`] and its mapping onto what a GitLab accepts.
//! - [`checksum`] — [`TraceChecksum`], the CRC32 + byte count sent with job updates.
//! - [`secret`] — [`Secret`], a token that never prints.
//! - [`error`] — [`GitlabError`].

pub mod checksum;
pub mod client;
pub mod error;
pub mod failure;
pub mod info;
pub mod secret;
pub mod system_id;
pub mod types;

pub use checksum::TraceChecksum;
pub use client::{
    is_created_runner_token, AccessLevel, ClientOptions, JobRequest, JobState, JobUpdate, PatchOutcome, ReceivedJob,
    RegisterParams, Registration, RetryPolicy, RunnerClient, RunnerCredentials, TraceOutput, Unregistration,
    UpdateOutcome, Verification,
};
pub use error::GitlabError;
pub use failure::FailureReason;
pub use info::{FeaturesInfo, VersionInfo};
pub use secret::Secret;
pub use system_id::SystemId;
pub use types::JobPayload;

/// This crate's version, sent as `info.version` and in the `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
