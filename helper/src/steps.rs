//! The helper's side of the step hand-over (`docs/pod-contract.md`, "Step hand-over"):
//! write `<n>.sh`, rename-create `<n>.request`, copy `<n>.out` into the job log as it grows, ask
//! for `<n>.kill` when the step must stop, read `<n>.exit`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::interrupt::{Interrupt, Watch};
use crate::log::JobLog;

/// Sleep between polls when nothing new happened.
pub const POLL: Duration = Duration::from_millis(50);
/// After `<n>.kill`, how long to wait for `<n>.exit` before giving up on the build container
/// (the step-runner escalates to SIGKILL after 10 s).
pub const KILL_GIVE_UP: Duration = Duration::from_secs(30);
/// When to say that the build container has not picked the step up yet.
pub const PICKUP_NOTICE_AFTER: Duration = Duration::from_secs(10);
/// Exit code reported when the step-runner never reported one (as if SIGKILLed).
pub const NO_EXIT_REPORTED: i32 = 137;
/// Upper bound of bytes copied per loop turn, so a chatty step cannot starve the checks.
const MAX_COPY_PER_TURN: usize = 1 << 20;

/// The file names of step `n` in the steps directory.
pub struct StepFiles {
    pub script: PathBuf,
    pub request: PathBuf,
    pub out: PathBuf,
    pub exit: PathBuf,
    pub kill: PathBuf,
}

impl StepFiles {
    pub fn new(steps_dir: &Path, n: &str) -> StepFiles {
        StepFiles {
            script: steps_dir.join(format!("{n}.sh")),
            request: steps_dir.join(format!("{n}.request")),
            out: steps_dir.join(format!("{n}.out")),
            exit: steps_dir.join(format!("{n}.exit")),
            kill: steps_dir.join(format!("{n}.kill")),
        }
    }
}

/// Writes `contents` to `path` atomically (temp file in the same directory, then rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, path)
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    pub exit_code: i32,
    /// Set when the helper asked for the step to be killed, and why.
    pub interrupted: Option<Interrupt>,
    /// False when the step-runner never wrote `<n>.exit` (we gave up waiting).
    pub reported: bool,
}

/// Parameters of one step run.
pub struct StepRun<'a> {
    pub steps_dir: &'a Path,
    /// The hand-over name (`<n>`).
    pub n: &'a str,
    pub script: &'a str,
    pub deadline: Instant,
    /// The timeout behind `deadline`, for messages.
    pub timeout_secs: u64,
    /// Whether a graceful cancellation stops this step (false for `after_script`, which is what a
    /// graceful cancellation runs; an abort stops everything).
    pub stop_on_graceful: bool,
}

fn read_exit_code(path: &Path) -> io::Result<i32> {
    let text = fs::read_to_string(path)?;
    text.trim().parse::<i32>().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not an exit code: {text:?}", path.display()),
        )
    })
}

/// Copies what is new in `out` to the log; returns the number of bytes copied.
fn copy_new(out: &mut File, buf: &mut [u8], log: &mut JobLog, limit: usize) -> io::Result<usize> {
    let mut total = 0;
    while total < limit {
        let n = out.read(buf)?;
        if n == 0 {
            break;
        }
        log.raw(&buf[..n]);
        total += n;
    }
    Ok(total)
}

/// Hands a step to the build container and follows it to its end.
pub fn run_step(step: &StepRun, log: &mut JobLog, watch: &mut Watch) -> io::Result<StepOutcome> {
    let files = StepFiles::new(step.steps_dir, step.n);
    for stale in [&files.out, &files.exit, &files.kill, &files.request] {
        match fs::remove_file(stale) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    write_atomic(&files.script, step.script.as_bytes())?;
    write_atomic(&files.request, b"")?;

    let started = Instant::now();
    let mut out: Option<File> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut interrupted: Option<Interrupt> = None;
    let mut kill_sent: Option<Instant> = None;
    let mut pickup_noticed = false;

    let outcome = loop {
        // Look for the exit file before draining: everything the step wrote is in `<n>.out` by then.
        let exited = files.exit.exists();
        if out.is_none() {
            out = File::open(&files.out).ok();
        }
        let copied = match out.as_mut() {
            Some(f) => copy_new(f, &mut buf, log, if exited { usize::MAX } else { MAX_COPY_PER_TURN })?,
            None => 0,
        };
        if exited {
            break StepOutcome {
                exit_code: read_exit_code(&files.exit)?,
                interrupted,
                reported: true,
            };
        }

        if interrupted.is_none() {
            if let Some(i) = watch.check(Some(step.deadline), step.stop_on_graceful) {
                log.line("");
                match i {
                    Interrupt::Timeout => log.warning(&format!(
                        "Timeout of {} seconds reached: terminating the running script",
                        step.timeout_secs
                    )),
                    Interrupt::Canceled(_) => log.warning("The job was canceled: terminating the running script"),
                    Interrupt::Terminated => log.warning("The job Pod is terminating: terminating the running script"),
                }
                write_atomic(&files.kill, b"")?;
                interrupted = Some(i);
                kill_sent = Some(Instant::now());
            }
        }

        if let Some(t) = kill_sent {
            if t.elapsed() >= KILL_GIVE_UP {
                log.warning(&format!(
                    "The build container did not report the end of the step within {} seconds; giving up on it",
                    KILL_GIVE_UP.as_secs()
                ));
                break StepOutcome {
                    exit_code: NO_EXIT_REPORTED,
                    interrupted,
                    reported: false,
                };
            }
        }
        if !pickup_noticed && out.is_none() && started.elapsed() >= PICKUP_NOTICE_AFTER {
            pickup_noticed = true;
            log.line("Waiting for the build container to pick up the step...");
        }
        if copied == 0 {
            std::thread::sleep(POLL);
        }
    };
    // The script holds every variable's value: do not leave it around once it has run.
    if outcome.reported {
        let _ = fs::remove_file(&files.script);
    }
    Ok(outcome)
}
