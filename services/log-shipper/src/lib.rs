//! The log-shipper: receives job logs from workers (gRPC `TraceSink`, byte offsets), masks
//! them, enforces the runner's `output_limit`, keeps a durable per-job log, and ships it to
//! GitLab with `PATCH /jobs/:id/trace`, reporting the final size and checksum.

pub mod joblog;
pub mod limit;
pub mod link;
pub mod mask;
pub mod run;
pub mod service;
pub mod settings;
pub mod ship;
