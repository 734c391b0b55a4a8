//! The coordinator: polls GitLab's runner API for every `[[runners]]` entry while the fleet
//! has room, stores each accepted job durably before anyone acts on it, assigns jobs to
//! workers, and sends GitLab the final state once the worker and the log-shipper are done.

pub mod core;
pub mod finisher;
pub mod fleet;
pub mod gateway;
pub mod job;
pub mod metrics;
pub mod poller;
pub mod run;
pub mod settings;
pub mod slots;
pub mod store;
