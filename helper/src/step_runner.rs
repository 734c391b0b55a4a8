//! `flotilla-helper step-runner`: the loop of the `build` container (`docs/pod-contract.md`,
//! "Step hand-over").
//!
//! It polls `RUN/steps/` every 50 ms for `<n>.request` files (lowest `<n>` first; a request
//! whose `<n>.exit` already exists is done), runs `<shell> RUN/steps/<n>.sh` (bash if on `PATH`,
//! else sh) in the work dir (`--workdir`, else the current directory; the script `cd`s into the
//! project itself) in its own process group, stdin `/dev/null`, stdout and stderr on one
//! `O_APPEND` descriptor of `<n>.out` (so their order is kept). `<n>.kill` (or SIGTERM, or
//! `shutdown` while a step runs): SIGTERM to the group, SIGKILL 10 s later; once the shell has
//! exited after a kill, what is left of its group is SIGKILLed. The exit code (128 + signal when
//! killed by a signal) goes to `<n>.exit` by rename. `shutdown` (when idle) or SIGTERM: exit 0.
//!
//! It is usually PID 1 of the build container, so it reaps every child (orphans included) itself
//! with `waitpid(-1)`, and handles SIGTERM explicitly.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cancel;
use crate::steps::{write_atomic, StepFiles, POLL};

/// Between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(10);

/// `bash` if it is on `PATH`, else `sh`.
pub fn find_shell() -> String {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("bash");
        if is_executable(&candidate) {
            return candidate.to_string_lossy().into_owned();
        }
    }
    "sh".to_string()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Pending requests, lowest number first.
fn pending(steps_dir: &Path, done: &mut HashSet<String>) -> Vec<String> {
    let Ok(entries) = fs::read_dir(steps_dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(n) = name.to_str().and_then(|n| n.strip_suffix(".request")) else {
            continue;
        };
        if n.starts_with('.') || done.contains(n) {
            continue;
        }
        if steps_dir.join(format!("{n}.exit")).exists() {
            done.insert(n.to_string());
        } else {
            found.push(n.to_string());
        }
    }
    found.sort_by_key(|n| (n.parse::<u64>().unwrap_or(u64::MAX), n.clone()));
    found
}

/// Reaps every exited child; returns the wait status of `pid` if it was among them.
fn reap(pid: Option<libc::pid_t>) -> Option<libc::c_int> {
    let mut result = None;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return result;
        }
        if Some(r) == pid {
            result = Some(status);
        }
    }
}

fn exit_code_of(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

fn killpg(pgid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: plain kill(2) on a process group we created.
    unsafe { libc::kill(-pgid, signal) };
}

/// Runs one step to its end and writes `<n>.exit`.
fn run_one(steps_dir: &Path, n: &str, shell: &str, workdir: Option<&Path>) -> io::Result<i32> {
    let files = StepFiles::new(steps_dir, n);
    let shutdown = steps_dir.join("shutdown");
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(&files.out)?;
    let mut cmd = Command::new(shell);
    cmd.arg(&files.script)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out.try_clone()?)
        .process_group(0);
    if let Some(dir) = workdir.filter(|d| d.is_dir()) {
        cmd.current_dir(dir);
    }
    let code = if !files.script.is_file() {
        let _ = writeln!(
            out,
            "flotilla-helper step-runner: {} is missing",
            files.script.display()
        );
        127
    } else {
        match cmd.spawn() {
            Err(e) => {
                let _ = writeln!(out, "flotilla-helper step-runner: cannot run {shell}: {e}");
                127
            }
            Ok(child) => {
                let pid = child.id() as libc::pid_t;
                drop(child); // waited for with waitpid(-1) below
                drop(cmd);
                let mut term_sent: Option<Instant> = None;
                let mut kill_sent = false;
                let status = loop {
                    if let Some(status) = reap(Some(pid)) {
                        break status;
                    }
                    let stop = files.kill.exists() || cancel::sigterm_received() || shutdown.exists();
                    if stop && term_sent.is_none() {
                        println!("flotilla-helper step-runner: step {n}: stopping it (SIGTERM)");
                        killpg(pid, libc::SIGTERM);
                        term_sent = Some(Instant::now());
                    }
                    if !kill_sent && term_sent.is_some_and(|t| t.elapsed() >= KILL_GRACE) {
                        println!("flotilla-helper step-runner: step {n}: still running; SIGKILL");
                        killpg(pid, libc::SIGKILL);
                        kill_sent = true;
                    }
                    std::thread::sleep(POLL);
                };
                if term_sent.is_some() {
                    killpg(pid, libc::SIGKILL); // leftovers of a killed step
                }
                exit_code_of(status)
            }
        }
    };
    drop(out);
    write_atomic(&files.exit, format!("{code}\n").as_bytes())?;
    Ok(code)
}

/// The step-runner loop.
pub fn step_runner(run_dir: &Path, workdir: Option<&Path>) -> Result<()> {
    cancel::install_sigterm_handler();
    let run_dir: PathBuf = std::path::absolute(run_dir).context("cannot resolve --run")?;
    let steps_dir = run_dir.join("steps");
    let shell = find_shell();
    println!(
        "flotilla-helper step-runner {}: waiting for steps in {} (shell: {shell})",
        env!("CARGO_PKG_VERSION"),
        steps_dir.display()
    );
    let mut done = HashSet::new();
    loop {
        if cancel::sigterm_received() {
            println!("flotilla-helper step-runner: SIGTERM, exiting");
            return Ok(());
        }
        if steps_dir.join("shutdown").exists() {
            println!("flotilla-helper step-runner: shutdown requested, exiting");
            return Ok(());
        }
        reap(None);
        match pending(&steps_dir, &mut done).into_iter().next() {
            Some(n) => {
                println!("flotilla-helper step-runner: step {n}: running");
                let code = run_one(&steps_dir, &n, &shell, workdir)
                    .with_context(|| format!("step {n} in {}", steps_dir.display()))?;
                println!("flotilla-helper step-runner: step {n}: exit code {code}");
                done.insert(n);
            }
            None => std::thread::sleep(POLL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_requests_in_numeric_order_skipping_done_ones() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "10.request",
            "2.request",
            "1.request",
            "1.exit",
            ".x.request.tmp",
            "3.sh",
        ] {
            fs::write(dir.path().join(f), "").unwrap();
        }
        let mut done = HashSet::new();
        assert_eq!(pending(dir.path(), &mut done), vec!["2".to_string(), "10".to_string()]);
        assert!(done.contains("1"));
    }
}
