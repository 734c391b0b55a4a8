//! `flotilla-coordinator --config config.toml`: polls GitLab for the runner entries of a
//! gitlab-runner `config.toml`, keeps every accepted job in its sled store and shards the
//! jobs over the workers that connect to it. `--check` validates the file and exits.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use flotilla_coordinator::run::{self, Settings};

/// Flotilla's coordinator: polls GitLab's runner API for the `[[runners]]` of a gitlab-runner
/// config.toml, stores each accepted job durably and assigns it to a worker in one of the
/// fleet's Kubernetes clusters; the final state goes back to GitLab once the job's log is shipped.
#[derive(Parser, Debug)]
#[command(name = "flotilla-coordinator", version)]
struct Args {
    /// The gitlab-runner config.toml, with an optional [coordinator] section.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Validate the file, print every problem, and exit (0: it would start).
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    flotilla_daemon::init_logging();
    let file = flotilla_daemon::load_config(&args.config, |p| flotilla_config::load_runner_config(p))?;
    let settings = Settings::from_config(&file).with_context(|| format!("{}: refused", args.config.display()))?;
    if args.check {
        println!(
            "{}: ok ({} runner entr{}, {} pool{})",
            args.config.display(),
            settings.runners.len(),
            if settings.runners.len() == 1 { "y" } else { "ies" },
            file.coordinator.pools.len(),
            if file.coordinator.pools.len() == 1 { "" } else { "s" },
        );
        return Ok(());
    }
    let shutdown = flotilla_daemon::stop_on_signal()?;
    let running = run::start(settings, shutdown).await?;
    println!(
        "flotilla-coordinator listening on {} (admin {})",
        running.addr, running.admin_addr
    );
    running.task.await??;
    Ok(())
}
