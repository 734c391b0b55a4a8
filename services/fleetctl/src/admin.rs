//! The commands that talk to the coordinator's admin API, and how their failures become
//! messages and exit codes.

use flotilla_proto::admin_client::AdminClient;
use flotilla_proto::transport::{client_tls, dial};
use flotilla_proto::{
    cordon_request, CancelJobRequest, CordonRequest, JobTraceRequest, OverflowRequest, StatusReply, StatusRequest,
};
use tonic::metadata::MetadataValue;

use crate::{output, watch, AdminCommand as Command, Cli, OverflowArg, Target, EXIT_REFUSED, EXIT_UNREACHABLE};

enum Failure {
    Unreachable(String),
    Refused(tonic::Status),
    /// The coordinator answered, but not what was asked for (e.g. an unknown job).
    NotFound(String),
}

/// Runs an admin command; returns the exit code.
pub async fn main(cli: &Cli, command: &Command) -> i32 {
    match run(cli, command).await {
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
            match status.code() {
                tonic::Code::Unauthenticated => eprintln!("hint: pass the admin token with --token or FLEETCTL_TOKEN"),
                tonic::Code::PermissionDenied => {
                    eprintln!("hint: the coordinator needs [coordinator] admin_token in its config.toml")
                }
                _ => {}
            }
            EXIT_REFUSED
        }
        Err(Failure::NotFound(message)) => {
            eprintln!("fleetctl: {message}");
            EXIT_REFUSED
        }
    }
}

/// Adds the admin token, when one is given, to every call.
#[derive(Clone)]
struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Admin = AdminClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>>;

async fn connect(cli: &Cli) -> Result<Admin, Failure> {
    let tls = if cli.coordinator.starts_with("https://") {
        let identity = cli.cert_file.as_deref().zip(cli.key_file.as_deref());
        Some(client_tls(cli.ca_file.as_deref(), identity).map_err(|e| Failure::Unreachable(e.to_string()))?)
    } else {
        None
    };
    let bearer = match &cli.token {
        Some(token) => Some(MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
            Failure::Refused(tonic::Status::invalid_argument(
                "the admin token is not a valid header value",
            ))
        })?),
        None => None,
    };
    let channel = dial(&cli.coordinator, tls.as_ref())
        .await
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
    Ok(AdminClient::with_interceptor(channel, Bearer(bearer)))
}

async fn status(client: &mut Admin) -> Result<StatusReply, Failure> {
    client
        .status(StatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(Failure::Refused)
}

async fn run(cli: &Cli, command: &Command) -> Result<(), Failure> {
    let mut client = connect(cli).await?;
    match command {
        Command::Status => print!("{}", output::status(&status(&mut client).await?, cli.output)),
        Command::Workers => print!("{}", output::workers(&status(&mut client).await?, cli.output)),
        Command::Jobs(filter) => print!("{}", output::jobs(&status(&mut client).await?, filter, cli.output)),
        Command::Job { id, tail } => {
            let reply = status(&mut client).await?;
            let job = reply
                .jobs
                .iter()
                .find(|job| job.job_id == *id)
                .ok_or_else(|| Failure::NotFound(format!("the coordinator has no job {id}")))?;
            // The log is a courtesy: a job whose log the shipper no longer has is still shown.
            let trace = client
                .job_trace(JobTraceRequest {
                    job_id: *id,
                    max_bytes: 64 * 1024,
                })
                .await
                .ok()
                .map(|reply| output::last_lines(&reply.into_inner().data, *tail));
            print!("{}", output::job(job, trace.as_deref(), cli.output));
        }
        Command::Cordon(target) => cordon(&mut client, target, "cordon", cli).await?,
        Command::Drain(target) => cordon(&mut client, target, "drain", cli).await?,
        Command::Uncordon(target) => cordon(&mut client, target, "uncordon", cli).await?,
        Command::Overflow { mode } => {
            let set_mode = match mode {
                OverflowArg::On => "on",
                OverflowArg::Off => "off",
                OverflowArg::Auto => "auto",
                OverflowArg::Status => "",
            };
            let reply = client
                .overflow(OverflowRequest {
                    set_mode: set_mode.into(),
                })
                .await
                .map_err(Failure::Refused)?
                .into_inner();
            print!("{}", output::overflow(&reply, cli.output));
        }
        Command::Cancel { id, force } => {
            let reply = client
                .cancel_job(CancelJobRequest {
                    job_id: *id,
                    force: *force,
                })
                .await
                .map_err(Failure::Refused)?
                .into_inner();
            print!("{}", output::canceled(*id, &reply.state, cli.output));
        }
        Command::Watch { interval } => {
            let mut watcher = watch::Watcher::default();
            loop {
                let reply = status(&mut client).await?;
                for job in watcher.changes(&reply) {
                    println!("{}", watch::line(job, cli.output));
                }
                tokio::time::sleep(*interval).await;
            }
        }
    }
    Ok(())
}

async fn cordon(client: &mut Admin, target: &Target, action: &str, cli: &Cli) -> Result<(), Failure> {
    let (which, name) = match (&target.worker, &target.cluster) {
        (Some(worker), _) => (
            cordon_request::Target::WorkerId(worker.clone()),
            format!("worker {worker}"),
        ),
        (None, Some(cluster)) => (
            cordon_request::Target::Cluster(cluster.clone()),
            format!("cluster {cluster}"),
        ),
        (None, None) => unreachable!("clap requires a worker or --cluster"),
    };
    let reply = client
        .cordon(CordonRequest {
            target: Some(which),
            action: action.into(),
        })
        .await
        .map_err(Failure::Refused)?
        .into_inner();
    print!("{}", output::cordoned(&name, action, &reply.workers, cli.output));
    Ok(())
}
