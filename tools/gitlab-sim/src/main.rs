//! `gitlab-sim`: serves a simulated GitLab (runner API, git repository, control API) for a
//! pipeline file until every job has finished (`--exit-when-done`) or SIGINT/SIGTERM, printing a
//! summary table each time every job has finished and when it stops.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use gitlab_sim::{GitlabSim, Pipeline, SimConfig};
use tokio::signal::unix::{signal, SignalKind};

/// A GitLab stand-in for the runner API: queues a pipeline's jobs, hands them to runners,
/// records their traces and final states, and serves the project's repository over HTTP.
#[derive(Parser, Debug)]
#[command(name = "gitlab-sim", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Pipeline file (YAML): project, repository directory and jobs.
    #[arg(long)]
    pipeline: PathBuf,
    /// Runner authentication token accepted on jobs/request (repeatable; default: one generated).
    #[arg(long = "runner-token", value_name = "TOKEN", num_args = 1..)]
    runner_tokens: Vec<String>,
    /// Registration token accepted by legacy `POST /api/v4/runners` (disabled without it).
    #[arg(long)]
    registration_token: Option<String>,
    /// How long to hold an idle job request whose last_update is current (e.g. 5s, 500ms, 0).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    long_poll: Duration,
    /// Directory for the served repository (default: a temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Exit once every job has finished: 0 if each ended as its `expect` said, 1 otherwise.
    #[arg(long)]
    exit_when_done: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// X-GitLab-Trace-Update-Interval answered on trace PATCHes (seconds).
    #[arg(long, default_value_t = 3)]
    trace_update_interval: u32,
    /// Times a final update with a mismatching checksum is answered 202 before being accepted.
    #[arg(long, default_value_t = 2)]
    checksum_retries: u32,
}

/// Parses `500ms`, `5s`, `2m`, `1h` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 5s"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        other => Err(format!("unknown duration unit {other:?} (use ms, s, m or h)")),
    }
}

/// Prints the summary and writes the state file; returns whether every job ended as expected.
fn report(sim: &GitlabSim, state_file: Option<&Path>) -> anyhow::Result<bool> {
    let summary = sim.summary_data();
    print!("{}", summary.render());
    std::io::stdout().flush()?;
    if let Some(path) = state_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(summary.all_finished && summary.all_as_expected)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "gitlab_sim=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let pipeline = Pipeline::from_file(&args.pipeline)?;
    let config = SimConfig {
        listen: args.listen,
        pipeline,
        runner_tokens: args.runner_tokens.clone(),
        registration_token: args.registration_token.clone(),
        long_poll: args.long_poll,
        data_dir: args.data_dir.clone(),
        trace_update_interval: args.trace_update_interval,
        checksum_retries: args.checksum_retries,
        ..SimConfig::default()
    };
    // Installed before the start-up line, so a signal right after it is already handled.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let sim = GitlabSim::start(config).await.context("starting gitlab-sim")?;
    println!("gitlab-sim listening on {}", sim.url());
    for token in sim.runner_tokens() {
        println!("gitlab-sim runner token {token}");
    }
    std::io::stdout().flush()?;

    let state_file = args.state_file.as_deref();
    let finished = async {
        loop {
            sim.wait_all_finished().await;
            // Nothing to summarise yet: wait for jobs from the control API.
            if sim.jobs().is_empty() && !args.exit_when_done {
                sim.wait_some_unfinished().await;
                continue;
            }
            let ok = report(&sim, state_file)?;
            if args.exit_when_done {
                return anyhow::Ok(ok);
            }
            sim.wait_some_unfinished().await;
        }
    };
    let ok = tokio::select! {
        ok = finished => ok?,
        _ = interrupt.recv() => stopped(&sim, state_file, args.exit_when_done)?,
        _ = terminate.recv() => stopped(&sim, state_file, args.exit_when_done)?,
    };
    sim.shutdown().await;
    std::process::exit(if ok { 0 } else { 1 });
}

/// On a signal: summary, and success unless `--exit-when-done` promised a complete run.
fn stopped(sim: &GitlabSim, state_file: Option<&Path>, exit_when_done: bool) -> anyhow::Result<bool> {
    tracing::info!("stopping on signal");
    let ok = report(sim, state_file)?;
    Ok(ok || !exit_when_done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }
}
