//! `flotilla-worker --config worker.toml`: joins the coordinator's fleet for one Kubernetes
//! cluster and runs the jobs it is assigned there as Pods.

use std::path::PathBuf;

use clap::Parser;
use flotilla_worker::run::{self, Settings};

/// Flotilla's worker: one per Kubernetes cluster. It registers with the coordinator (cluster,
/// pool, labels, capacity), runs each assigned job as a Pod, streams the job log to the
/// log-shipper and reports the result.
#[derive(Parser, Debug)]
#[command(name = "flotilla-worker", version)]
struct Args {
    /// The worker's file: [worker] (id, coordinator_url, token, cluster, pool, labels,
    /// capacity) and [kubernetes] (connection, namespace, images).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    flotilla_daemon::init_logging();
    let file = flotilla_daemon::load_config(&args.config, |p| flotilla_config::load_worker_config(p))?;
    let settings = Settings::from_config(&file).await?;
    let shutdown = flotilla_daemon::stop_on_signal()?;
    tracing::info!(worker = %settings.worker_id, cluster = %settings.cluster, pool = %settings.pool, "worker starting");
    run::start(settings, shutdown).await?;
    Ok(())
}
