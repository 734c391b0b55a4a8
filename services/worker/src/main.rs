//! `flotilla-worker --config worker.toml`: joins the coordinator's fleet for one Kubernetes
//! cluster and runs the jobs it is assigned there as Pods.
//! `flotilla-worker render-pod --config config.toml --job job.json`: prints the Secret and Pod
//! it would create for a job, without a cluster.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flotilla_worker::render;
use flotilla_worker::run::{self, Settings};

/// Flotilla's worker: one per Kubernetes cluster. It registers with the coordinator (cluster,
/// pool, labels, capacity), runs each assigned job as a Pod, streams the job log to the
/// log-shipper and reports the result.
#[derive(Parser, Debug)]
#[command(name = "flotilla-worker", version, args_conflicts_with_subcommands = true)]
struct Args {
    /// The worker's file: [worker] (id, coordinator_url, token, cluster, pool, labels,
    /// capacity) and [kubernetes] (connection, namespace, images).
    #[arg(long, value_name = "FILE", required = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the Secret and Pod (YAML) the worker would create for a job, without a cluster.
    RenderPod {
        /// The coordinator's config.toml (the runner entries and their [runners.kubernetes]).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// A GitLab job payload (the JSON body of POST /api/v4/jobs/request).
        #[arg(long, value_name = "FILE")]
        job: PathBuf,
        /// The runner entry (its `name`); needed when config.toml has several.
        #[arg(long)]
        runner: Option<String>,
        /// The worker's own file, for its namespace, images and builds directory.
        #[arg(long, value_name = "FILE")]
        worker: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    flotilla_daemon::init_logging();
    if let Some(Command::RenderPod {
        config,
        job,
        runner,
        worker,
    }) = &args.command
    {
        let file = flotilla_daemon::load_config(config, |p| flotilla_config::load_runner_config(p))?;
        let worker = match worker {
            Some(path) => Some(flotilla_daemon::load_config(path, |p| {
                flotilla_config::load_worker_config(p)
            })?),
            None => None,
        };
        let payload = std::fs::read_to_string(job).with_context(|| format!("reading {}", job.display()))?;
        let yaml = render::render(&file, runner.as_deref(), &render::defaults(worker.as_ref()), &payload)?;
        print!("{yaml}");
        return Ok(());
    }
    let config = args.config.expect("clap requires --config without a subcommand");
    let file = flotilla_daemon::load_config(&config, |p| flotilla_config::load_worker_config(p))?;
    let settings = Settings::from_config(&file).await?;
    let shutdown = flotilla_daemon::stop_on_signal()?;
    tracing::info!(worker = %settings.worker_id, cluster = %settings.cluster, pool = %settings.pool, "worker starting");
    run::start(settings, shutdown).await?;
    Ok(())
}
