//! `fleetctl`: the fleet's admin CLI. Talks gRPC to the coordinator's admin API; prints
//! tables for people and JSON (`--output json`) for scripts.
//!
//! Exit codes: 0 success, 1 the coordinator refused or failed the request, 2 usage errors
//! (clap), 3 the coordinator could not be reached.

mod output;
mod runner;
mod watch;

use clap::{Parser, Subcommand, ValueEnum};
use flotilla_proto::admin_client::AdminClient;
use flotilla_proto::transport::{client_tls, dial};
use flotilla_proto::StatusRequest;
use tonic::metadata::MetadataValue;

/// Operate a Flotilla fleet: workers, clusters, jobs.
#[derive(Parser, Debug)]
#[command(name = "fleetctl", version)]
struct Cli {
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
    /// Workers and jobs at a glance.
    Status,
    /// Follow the jobs: a line each time one appears or changes state, cluster or result.
    Watch {
        /// How often to ask the coordinator.
        #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
    },
    /// Register, verify or unregister a GitLab runner (talks to GitLab, not the coordinator).
    Runner {
        #[command(subcommand)]
        command: runner::RunnerCommand,
    },
}

const EXIT_REFUSED: i32 = 1;
const EXIT_UNREACHABLE: i32 = 3;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // `fleetctl runner` talks to GitLab only: it must work without a coordinator to dial.
    if let Command::Runner { command } = &cli.command {
        std::process::exit(runner::main(command, cli.output).await);
    }
    let code = match run(&cli).await {
        Ok(()) => 0,
        Err(Failure::Unreachable(message)) => {
            eprintln!(
                "fleetctl: cannot reach the coordinator at {}: {message}",
                cli.coordinator
            );
            eprintln!("hint: is it running? pass --coordinator or set FLEETCTL_COORDINATOR");
            EXIT_UNREACHABLE
        }
        Err(Failure::Refused(status)) => {
            eprintln!("fleetctl: the coordinator refused: {}", status.message());
            if status.code() == tonic::Code::Unauthenticated {
                eprintln!("hint: pass the admin token with --token or FLEETCTL_TOKEN");
            }
            EXIT_REFUSED
        }
    };
    std::process::exit(code);
}

enum Failure {
    Unreachable(String),
    Refused(tonic::Status),
}

async fn run(cli: &Cli) -> Result<(), Failure> {
    let tls = if cli.coordinator.starts_with("https://") {
        let identity = cli.cert_file.as_deref().zip(cli.key_file.as_deref());
        Some(client_tls(cli.ca_file.as_deref(), identity).map_err(|e| Failure::Unreachable(e.to_string()))?)
    } else {
        None
    };
    let channel = dial(&cli.coordinator, tls.as_ref())
        .await
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
    let token = cli.token.clone();
    let mut client = AdminClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
        if let Some(token) = &token {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| tonic::Status::invalid_argument("the admin token is not a valid header value"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    });
    match cli.command {
        Command::Status => {
            let reply = client
                .status(StatusRequest {})
                .await
                .map_err(Failure::Refused)?
                .into_inner();
            print!("{}", output::status(&reply, cli.output));
        }
        Command::Watch { interval } => {
            let mut watcher = watch::Watcher::default();
            loop {
                let reply = client
                    .status(StatusRequest {})
                    .await
                    .map_err(Failure::Refused)?
                    .into_inner();
                for job in watcher.changes(&reply) {
                    println!("{}", watch::line(job, cli.output));
                }
                tokio::time::sleep(interval).await;
            }
        }
        Command::Runner { .. } => unreachable!("fleetctl runner is dispatched in main, before dialing"),
    }
    Ok(())
}
