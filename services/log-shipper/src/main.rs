//! `flotilla-log-shipper --config shipper.toml`: receives job logs from workers, masks them,
//! keeps them durably and ships them to GitLab in order.

use std::path::PathBuf;

use clap::Parser;
use flotilla_log_shipper::run::{self, Settings};

/// Flotilla's log-shipper: workers stream job logs to it; it masks masked variables, keeps
/// each log durably, PATCHes it to GitLab's trace endpoint in order and tells the coordinator
/// the final size and checksum.
#[derive(Parser, Debug)]
#[command(name = "flotilla-log-shipper", version)]
struct Args {
    /// The log-shipper's file: [log_shipper] (listen, coordinator_url, token, data_dir).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    flotilla_daemon::init_logging();
    let file = flotilla_daemon::load_config(&args.config, |p| flotilla_config::load_shipper_config(p))?;
    let settings = Settings::from_config(&file)?;
    let shutdown = flotilla_daemon::stop_on_signal()?;
    let running = run::start(settings, shutdown).await?;
    println!("flotilla-log-shipper listening on {}", running.addr);
    running.task.await??;
    Ok(())
}
