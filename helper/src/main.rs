//! `flotilla-helper`: the program that runs inside every Flotilla job Pod
//! (`docs/pod-contract.md`).
//!
//! - `bootstrap --dest DIR` (init container): copies itself to `DIR/flotilla-helper`.
//! - `run --job DIR --run DIR [--pod-info DIR] [--termination-log PATH]` (helper container): the
//!   stage driver; writes the job log to stdout and `RUN/job.log`, the result to the termination
//!   message.
//! - `step-runner --run DIR [--workdir DIR]` (build container): runs the steps the helper hands over.

mod bootstrap;
mod cancel;
mod git;
mod interrupt;
mod job;
mod local;
mod log;
mod run;
mod script;
mod step_runner;
mod steps;
mod vars;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "flotilla-helper",
    version,
    about = "Runs a GitLab CI job inside a Flotilla job Pod"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Copy this executable to DEST/flotilla-helper (init container).
    Bootstrap {
        /// Directory to install into (created if missing).
        #[arg(long)]
        dest: PathBuf,
    },
    /// Drive the job's stages (helper container).
    Run {
        /// Directory holding job.json and runtime.json.
        #[arg(long)]
        job: PathBuf,
        /// The shared run directory (steps/, job.log, tmp/).
        #[arg(long)]
        run: PathBuf,
        /// Downward-API directory holding `annotations` (cancellation).
        #[arg(long)]
        pod_info: Option<PathBuf>,
        /// Where the result JSON goes.
        #[arg(long, default_value = "/dev/termination-log")]
        termination_log: PathBuf,
    },
    /// Run the steps the helper hands over (build container).
    StepRunner {
        /// The shared run directory (steps/).
        #[arg(long)]
        run: PathBuf,
        /// Working directory of the steps (default: the current directory).
        #[arg(long)]
        workdir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Bootstrap { dest } => bootstrap::bootstrap(&dest),
        Cmd::Run {
            job,
            run,
            pod_info,
            termination_log,
        } => run::run(&run::RunArgs {
            job_dir: job,
            run_dir: run,
            pod_info,
            termination_log,
        })
        .map(|_| ()),
        Cmd::StepRunner { run, workdir } => step_runner::step_runner(&run, workdir.as_deref()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flotilla-helper: {e:#}");
            ExitCode::FAILURE
        }
    }
}
