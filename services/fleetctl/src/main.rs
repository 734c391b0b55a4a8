//! `fleetctl`: the fleet's admin CLI. Talks gRPC to the coordinator's admin API (and, for
//! `fleetctl runner`, to GitLab); prints tables for people and JSON (`--output json`) for
//! scripts.
//!
//! Exit codes: 0 success, 1 the coordinator (or GitLab) refused or failed the request, 2
//! usage errors (clap), 3 the coordinator (or GitLab) could not be reached.

mod admin;
mod output;
mod runner;
mod watch;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operate a Flotilla fleet: workers, clusters, jobs, overflow, runner registration.
#[derive(Parser, Debug)]
#[command(name = "fleetctl", version)]
pub struct Cli {
    /// The coordinator's admin API.
    #[arg(long, env = "FLEETCTL_COORDINATOR", default_value = "http://127.0.0.1:7601")]
    coordinator: String,
    /// Admin token (the coordinator's `[coordinator] admin_token`).
    #[arg(long, env = "FLEETCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA the coordinator's certificate must chain to (for an https:// coordinator; default:
    /// the web PKI roots).
    #[arg(long, env = "FLEETCTL_CA_FILE", value_name = "PEM")]
    ca_file: Option<std::path::PathBuf>,
    /// Client certificate, when the coordinator asks for one (mutual TLS); needs --key-file.
    #[arg(long, env = "FLEETCTL_CERT_FILE", value_name = "PEM", requires = "key_file")]
    cert_file: Option<std::path::PathBuf>,
    /// Private key of --cert-file.
    #[arg(long, env = "FLEETCTL_KEY_FILE", value_name = "PEM", requires = "cert_file")]
    key_file: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Admin(AdminCommand),
    /// Register, verify or unregister a GitLab runner (talks to GitLab, not the coordinator).
    Runner {
        #[command(subcommand)]
        command: runner::RunnerCommand,
    },
}

/// The commands the coordinator's admin API answers.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Workers and jobs at a glance.
    Status,
    /// Follow the jobs: a line each time one appears or changes state, cluster or result.
    Watch {
        /// How often to ask the coordinator.
        #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
    },
    /// The connected workers: cluster, pool, labels, capacity, load, state, last heartbeat.
    Workers,
    /// The coordinator's jobs, optionally filtered.
    Jobs(JobFilter),
    /// One job in detail, with the end of its log.
    Job {
        /// GitLab's job id.
        id: u64,
        /// How many lines of the log to show.
        #[arg(long, default_value_t = 20)]
        tail: usize,
    },
    /// Stop sending new jobs to a worker or a cluster (running jobs go on).
    Cordon(Target),
    /// Stop sending new jobs and let the running ones finish (shown as drained when empty).
    Drain(Target),
    /// Undo cordon or drain.
    Uncordon(Target),
    /// Overflow pools (e.g. QA clusters): `on` sends jobs there whenever production is full,
    /// `off` sends nothing new there, `auto` (the default) after the pool's overflow_after;
    /// `status` shows the switch and the overflow workers.
    Overflow {
        #[arg(value_enum)]
        mode: OverflowArg,
    },
    /// Cancel a job: a queued one ends at once, a running one is stopped on its worker.
    Cancel {
        id: u64,
        /// Abort at once instead of letting after_script run.
        #[arg(long)]
        force: bool,
    },
}

/// Filters of `fleetctl jobs` (all must match).
#[derive(Args, Debug, Default)]
pub struct JobFilter {
    /// accepted, assigned, running, finishing or done.
    #[arg(long)]
    state: Option<String>,
    #[arg(long)]
    cluster: Option<String>,
    /// The project's path or name (a substring).
    #[arg(long)]
    project: Option<String>,
}

/// A worker by id, or a whole cluster.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// The worker's id (`[worker] id`).
    worker: Option<String>,
    /// Every worker of this cluster, also ones that connect later.
    #[arg(long)]
    cluster: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverflowArg {
    On,
    Off,
    Auto,
    Status,
}

/// The coordinator (or GitLab) refused or failed the request.
pub const EXIT_REFUSED: i32 = 1;
/// The coordinator (or GitLab) could not be reached.
pub const EXIT_UNREACHABLE: i32 = 3;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match &cli.command {
        // `fleetctl runner` talks to GitLab only: it works without a coordinator.
        Command::Runner { command } => runner::main(command, cli.output).await,
        Command::Admin(command) => admin::main(&cli, command).await,
    };
    std::process::exit(code);
}
