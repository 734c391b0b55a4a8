//! `flotilla-helper run`: the stage driver of the `helper` container.
//!
//! Reads `JOB/job.json` and `JOB/runtime.json`, writes the job log (stdout + `RUN/job.log`), runs
//! `prepare_script` (header, file variables), `get_sources`, every step of the payload through the
//! build container, `cleanup_file_variables`, then writes `RUN/steps/shutdown`, the result to the
//! termination message (and `RUN/result.json`) and exits 0. A non-zero exit means the helper itself
//! failed to report (→ the worker treats it as `runner_system_failure`).
//!
//! Outcome rules:
//! - A step fails the job when it exits non-zero, unless it is `after_script` or has
//!   `allow_failure` (then a warning is printed). `when` is honoured (`on_success`: only while
//!   nothing failed; `on_failure`: only after a failure; `always`).
//! - Job timeout (`runtime.timeout_seconds`, else `runner_info.timeout`, else 7200 s) counts from
//!   the helper's start and covers `get_sources` and the steps, but not `after_script`, which has
//!   its own timeout (`after_script_timeout_seconds`, 300 s) and still runs after a job timeout or a
//!   graceful cancellation, as long as the job got past `get_sources` (like the official runner).
//!   An `after_script` timeout is only a warning.
//! - Graceful cancellation: the running step is killed, `after_script` runs, result `job_canceled`.
//!   Abort: the running step is killed, nothing else runs, result `job_canceled`. A cancellation
//!   seen at any point wins over the other outcomes (GitLab shows the job as canceled anyway).
//! - SIGTERM (Pod deletion/eviction): like abort, with `runner_system_failure` unless a
//!   cancellation was seen.
//! - An internal error of the helper (unreadable payload, steps dir not writable, …):
//!   `runner_system_failure`, with an `ERROR:` line saying what happened.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cancel;
use crate::git::{self, Sources, SourcesError};
use crate::interrupt::{Interrupt, Watch};
use crate::job::{JobPayload, Runtime, Settings, When};
use crate::local::{self, LocalError};
use crate::log::{JobLog, Masker, ANSI_BOLD_GREEN, ANSI_RESET};
use crate::script;
use crate::steps::{self, StepRun};
use crate::vars::{self, Resolved};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The command line of `run`.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub job_dir: PathBuf,
    pub run_dir: PathBuf,
    pub pod_info: Option<PathBuf>,
    pub termination_log: PathBuf,
}

/// The result written to the termination message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobResult {
    pub state: &'static str,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<&'static str>,
    pub stage: String,
}

/// Why the job failed (internal form of the result).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    reason: &'static str,
    exit_code: i32,
    stage: String,
    /// The final `ERROR: Job failed: ...` text.
    message: String,
}

impl Failure {
    fn script(stage: &str, exit_code: i32) -> Failure {
        Failure {
            reason: "script_failure",
            exit_code,
            stage: stage.to_string(),
            message: format!("exit code {exit_code}"),
        }
    }

    fn system(stage: &str, message: String) -> Failure {
        Failure {
            reason: "runner_system_failure",
            exit_code: 1,
            stage: stage.to_string(),
            message,
        }
    }

    fn interrupted(i: Interrupt, stage: &str, exit_code: Option<i32>, timeout_secs: u64) -> Failure {
        let exit_code = exit_code.filter(|c| *c != 0).unwrap_or(1);
        let (reason, message) = match i {
            Interrupt::Timeout => (
                "job_execution_timeout",
                format!("execution took longer than {timeout_secs} seconds"),
            ),
            Interrupt::Canceled(_) => ("job_canceled", "canceled".to_string()),
            Interrupt::Terminated => ("runner_system_failure", "the job Pod was terminated".to_string()),
        };
        Failure {
            reason,
            exit_code,
            stage: stage.to_string(),
            message,
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for buf.len() bytes; gethostname NUL-terminates when it fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into())
    }
}

fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path, required: bool) -> Result<T> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("cannot parse {}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Creates `dir` with `mode` (chmod'ed explicitly: the umask must not make it unusable for the
/// build container, which may run as another user).
fn make_dir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    match fs::set_permissions(dir, fs::Permissions::from_mode(mode)) {
        // Someone else (the step-runner, another uid) made it: fine as long as we can use it.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

/// The state of a job run.
struct Driver<'a> {
    args: &'a RunArgs,
    log: &'a mut JobLog,
    watch: Watch,
    started: Instant,
    stage: String,
}

/// `flotilla-helper run`. Returns the result it reported; `Err` only when it could not report.
pub fn run(args: &RunArgs) -> Result<JobResult> {
    cancel::install_sigterm_handler();
    // As the official runner does (unless FF_DISABLE_UMASK_FOR_KUBERNETES_EXECUTOR): what the
    // helper creates (the checkout, caches, artifacts) stays writable for a build container
    // that runs as another, non-root user.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe { libc::umask(0) };
    let started = Instant::now();
    fs::create_dir_all(&args.run_dir).with_context(|| format!("cannot create {}", args.run_dir.display()))?;
    let mut log = JobLog::open(&args.run_dir.join("job.log"))
        .with_context(|| format!("cannot open {}", args.run_dir.join("job.log").display()))?;
    let mut driver = Driver {
        args,
        log: &mut log,
        watch: Watch::new(args.pod_info.as_deref()),
        started,
        stage: "prepare_script".into(),
    };
    let failure = match driver.drive() {
        Ok(failure) => failure,
        Err(e) => {
            let stage = driver.stage.clone();
            driver.log.error(&format!("flotilla-helper: {e:#}"));
            driver.log.close_open_section();
            Some(Failure::system(&stage, format!("{e:#}")))
        }
    };
    let stage = driver.stage.clone();

    let steps_dir = args.run_dir.join("steps");
    let mut report_error = None;
    if let Err(e) = fs::create_dir_all(&steps_dir).and_then(|_| steps::write_atomic(&steps_dir.join("shutdown"), b"")) {
        report_error = Some(format!("cannot write {}: {e}", steps_dir.join("shutdown").display()));
    }

    let result = match &failure {
        None => {
            log.line(&format!("{ANSI_BOLD_GREEN}Job succeeded{ANSI_RESET}"));
            JobResult {
                state: "success",
                exit_code: 0,
                failure_reason: None,
                stage,
            }
        }
        Some(f) => {
            log.error(&format!("Job failed: {}", f.message));
            JobResult {
                state: "failed",
                exit_code: f.exit_code,
                failure_reason: Some(f.reason),
                stage: f.stage.clone(),
            }
        }
    };
    let json = serde_json::to_string(&result)?;
    let _ = steps::write_atomic(&args.run_dir.join("result.json"), json.as_bytes());
    fs::write(&args.termination_log, &json)
        .with_context(|| format!("cannot write the result to {}", args.termination_log.display()))?;
    if let Some(e) = report_error {
        anyhow::bail!(e);
    }
    Ok(result)
}

impl Driver<'_> {
    /// Runs every stage; `Ok(None)` is success.
    fn drive(&mut self) -> Result<Option<Failure>> {
        let args = self.args;
        self.log.line(&format!("Running with flotilla-helper {VERSION}"));

        // prepare_script
        self.log.section_start("prepare_script", "Preparing environment");
        let job: JobPayload = read_json(&args.job_dir.join("job.json"), true)?;
        let runtime: Runtime = read_json(&args.job_dir.join("runtime.json"), false)?;
        let keep_umask = job
            .variables
            .iter()
            .any(|v| v.key == "FF_DISABLE_UMASK_FOR_KUBERNETES_EXECUTOR" && v.value == "true");
        if keep_umask {
            // SAFETY: as above.
            unsafe { libc::umask(0o022) };
        }
        let settings = Settings::resolve(&runtime, &job);
        self.log.set_masker(Masker::new(
            std::iter::once(job.token.clone())
                .chain(job.variables.iter().filter(|v| v.masked).map(|v| v.value.clone())),
        ));
        self.log.line(&format!("Running on {}...", hostname()));
        for notice in &runtime.notices {
            self.log.line(notice);
        }
        let steps_dir = args.run_dir.join("steps");
        make_dir(&steps_dir, 0o777).with_context(|| format!("cannot create {}", steps_dir.display()))?;
        let tmp_dir = args.run_dir.join("tmp");
        let variables = self.prepare_variables(&job, &settings, &tmp_dir)?;
        self.log.section_end("prepare_script");

        let job_deadline = self.started + Duration::from_secs(settings.timeout_secs);
        let failure = match self.run_stages(&job, &settings, &variables, job_deadline) {
            Ok(failure) => failure,
            Err(e) => {
                self.log.error(&format!("flotilla-helper: {e:#}"));
                self.log.close_open_section();
                Some(Failure::system(&self.stage, format!("{e:#}")))
            }
        };

        // cleanup_file_variables (always)
        self.log.section_start(
            "cleanup_file_variables",
            "Cleaning up project directory and file based variables",
        );
        if let Err(e) = git::empty_dir(&tmp_dir) {
            self.log
                .warning(&format!("cannot remove the file based variables: {e}"));
        }
        self.log.section_end("cleanup_file_variables");
        Ok(failure)
    }

    /// Resolves the variables and writes the file variables.
    fn prepare_variables(&mut self, job: &JobPayload, settings: &Settings, tmp_dir: &Path) -> Result<Vec<Resolved>> {
        let mut all = job.variables.clone();
        // Runner-provided variables come last: they describe this runtime and cannot be overridden.
        for (key, value) in [
            ("CI_PROJECT_DIR", settings.project_dir.to_string_lossy().into_owned()),
            ("CI_BUILDS_DIR", settings.builds_dir.to_string_lossy().into_owned()),
            ("CI_DISPOSABLE_ENVIRONMENT", "true".to_string()),
        ] {
            all.push(crate::job::Variable {
                key: key.into(),
                value,
                public: true,
                raw: true,
                ..Default::default()
            });
        }
        let (resolved, skipped) = vars::resolve(&all, tmp_dir);
        for key in skipped {
            self.log.warning(&format!(
                "Variable {key:?} is not a valid shell variable name: not exported"
            ));
        }
        if resolved.iter().any(|r| r.file.is_some()) {
            make_dir(tmp_dir, 0o755).with_context(|| format!("cannot create {}", tmp_dir.display()))?;
            for (path, content) in resolved.iter().filter_map(|r| r.file.as_ref()) {
                // Readable by the build container's user, who may differ from ours; only the Pod's
                // containers see this emptyDir.
                fs::write(path, content)
                    .and_then(|_| fs::set_permissions(path, fs::Permissions::from_mode(0o644)))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Ok(resolved)
    }

    /// Runs one of the entry's get_sources hooks (`name`: `pre_get_sources_script` or
    /// `post_get_sources_script`), if it has one, with `sh` in `dir`, the job's variables
    /// exported, as one command echoed like the job's own.
    fn get_sources_hook(
        &mut self,
        name: &str,
        script: &Option<String>,
        dir: &Path,
        variables: &[Resolved],
        deadline: Instant,
    ) -> Result<(), SourcesError> {
        let Some(script) = script else {
            return Ok(());
        };
        let text = script::generate(name, "sh", variables, dir, std::slice::from_ref(script));
        // In the run dir (the Pod's own emptyDir), not on a command line: it holds the job's
        // variables, masked ones too.
        let tmp_dir = self.args.run_dir.join("tmp");
        let path = tmp_dir.join(format!("{name}.sh"));
        fs::create_dir_all(&tmp_dir)
            .and_then(|()| fs::write(&path, text))
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o700)))
            .map_err(|e| SourcesError::System(format!("cannot write {}: {e}", path.display())))?;
        let mut cmd = std::process::Command::new("sh");
        cmd.arg(&path);
        let outcome = local::run_logged(cmd, deadline, self.log, &mut self.watch);
        let _ = fs::remove_file(&path);
        match outcome {
            Ok(0) => Ok(()),
            Ok(exit_code) => Err(SourcesError::Failed {
                exit_code,
                message: format!("{name} failed with exit code {exit_code}"),
            }),
            Err(LocalError::Interrupted(i)) => Err(SourcesError::Interrupted(i)),
            Err(LocalError::Io(e)) => Err(SourcesError::System(format!("cannot run {name} with sh: {e}"))),
        }
    }

    /// get_sources and the steps; `Ok(None)` is success.
    fn run_stages(
        &mut self,
        job: &JobPayload,
        settings: &Settings,
        variables: &[Resolved],
        job_deadline: Instant,
    ) -> Result<Option<Failure>> {
        // get_sources
        self.stage = "get_sources".into();
        self.log
            .section_start("get_sources", "Getting source from Git repository");
        let sources = Sources {
            job,
            project_dir: &settings.project_dir,
            env: variables.iter().map(|v| (v.key.clone(), v.value.clone())).collect(),
            deadline: job_deadline,
        };
        // The entry's hooks around git run in this (the helper) container, as the official
        // runner runs its get_sources stage in its helper container.
        let builds_dir = settings.builds_dir.as_path();
        let fetched = self
            .get_sources_hook(
                "pre_get_sources_script",
                &settings.pre_get_sources_script,
                builds_dir,
                variables,
                job_deadline,
            )
            .and_then(|()| git::get_sources(&sources, self.log, &mut self.watch))
            .and_then(|()| {
                let project_dir = settings.project_dir.as_path();
                self.get_sources_hook(
                    "post_get_sources_script",
                    &settings.post_get_sources_script,
                    project_dir,
                    variables,
                    job_deadline,
                )
            });
        let failed = match fetched {
            Ok(()) => None,
            Err(SourcesError::Interrupted(i)) => {
                Some(Failure::interrupted(i, "get_sources", None, settings.timeout_secs))
            }
            Err(SourcesError::Failed { exit_code, message }) => {
                self.log.error(&message);
                Some(Failure::script("get_sources", exit_code))
            }
            Err(SourcesError::System(message)) => {
                self.log.error(&message);
                Some(Failure::system("get_sources", message))
            }
        };
        self.log.section_end("get_sources");
        if failed.is_some() {
            return Ok(failed);
        }

        // the steps
        let steps_dir = self.args.run_dir.join("steps");
        let mut failure: Option<Failure> = None;
        let mut interrupted: Option<Interrupt> = None;
        for (index, step) in job.steps.iter().enumerate() {
            let after = step.is_after_script();
            let stage = step.stage_name();
            // Something new may have happened between two steps.
            if interrupted.is_none() {
                let deadline = if after { None } else { Some(job_deadline) };
                if let Some(i) = self.watch.check(deadline, !after) {
                    interrupted = Some(i);
                    failure = Some(Failure::interrupted(i, &stage, None, settings.timeout_secs));
                }
            }
            match interrupted {
                Some(i) if i.is_hard() => break,
                Some(_) if !after => continue,
                _ => {}
            }
            let runs = match step.when() {
                When::OnSuccess => failure.is_none(),
                When::OnFailure => failure.is_some(),
                When::Always => true,
            };
            let commands = settings.commands(step);
            if !runs || commands.is_empty() {
                continue;
            }

            self.stage = stage.clone();
            let header = if after {
                "Running after_script".to_string()
            } else {
                format!("Executing \"{stage}\" stage of the job script")
            };
            self.log.section_start(&stage, &header);
            let mut vars = variables.to_vec();
            if after {
                let status = if self.watch.canceled().is_some() {
                    "canceled"
                } else if failure.is_some() {
                    "failed"
                } else {
                    "success"
                };
                vars.push(Resolved {
                    key: "CI_JOB_STATUS".into(),
                    value: status.into(),
                    file: None,
                });
            }
            let text = script::generate(&step.name, &settings.shell, &vars, &settings.project_dir, &commands);
            let (deadline, timeout_secs) = if after {
                (
                    Instant::now() + Duration::from_secs(settings.after_script_timeout_secs),
                    settings.after_script_timeout_secs,
                )
            } else {
                (job_deadline, settings.timeout_secs)
            };
            let n = index.to_string();
            let run = StepRun {
                steps_dir: &steps_dir,
                n: &n,
                script: &text,
                deadline,
                timeout_secs,
                stop_on_graceful: !after,
            };
            let outcome = steps::run_step(&run, self.log, &mut self.watch)
                .with_context(|| format!("step {:?} (hand-over files {}/{n}.*)", step.name, steps_dir.display()))?;
            self.log.section_end(&stage);

            match outcome.interrupted {
                Some(Interrupt::Timeout) if after => {
                    self.log.warning(&format!(
                        "after_script timed out after {timeout_secs} seconds, but the job will continue unaffected"
                    ));
                }
                Some(i) => {
                    interrupted = Some(i);
                    if failure.is_none() || i != Interrupt::Timeout {
                        failure = Some(Failure::interrupted(
                            i,
                            &stage,
                            Some(outcome.exit_code),
                            settings.timeout_secs,
                        ));
                    }
                }
                None if outcome.exit_code != 0 => {
                    if after {
                        self.log.warning(&format!(
                            "after_script failed, but job will continue unaffected: exit code {}",
                            outcome.exit_code
                        ));
                    } else if step.allow_failure {
                        self.log.warning(&format!(
                            "step {:?} failed, but it is allowed to fail: exit code {}",
                            step.name, outcome.exit_code
                        ));
                    } else if failure.is_none() {
                        failure = Some(Failure::script(&stage, outcome.exit_code));
                    }
                }
                None => {}
            }
        }

        // A cancellation seen at any point decides the outcome.
        if let Some(c) = self.watch.canceled() {
            let already = failure.as_ref().is_some_and(|f| f.reason == "job_canceled");
            if !already {
                let stage = failure
                    .as_ref()
                    .map(|f| f.stage.clone())
                    .unwrap_or_else(|| self.stage.clone());
                let exit_code = failure.as_ref().map(|f| f.exit_code);
                failure = Some(Failure::interrupted(
                    Interrupt::Canceled(c),
                    &stage,
                    exit_code,
                    settings.timeout_secs,
                ));
            }
        }
        Ok(failure)
    }
}
