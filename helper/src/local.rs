//! Processes of the helper container itself (git, the entry's get_sources hooks): run in a
//! process group of their own, their output (stdout and stderr, in order) masked into the job
//! log line by line, killed with their group when the job is interrupted or out of time.

use std::io::{self, BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use crate::interrupt::{Interrupt, Watch};
use crate::log::JobLog;
use crate::steps::POLL;

/// Why a process did not run to its end.
#[derive(Debug)]
pub enum LocalError {
    /// Cancelled, or past `deadline`: the process group was killed.
    Interrupted(Interrupt),
    /// It could not be started, or its output could not be read.
    Io(io::Error),
}

impl From<io::Error> for LocalError {
    fn from(e: io::Error) -> Self {
        LocalError::Io(e)
    }
}

/// Runs `cmd` (stdin closed) to its end; its exit code (128 + the signal for a killed one).
pub fn run_logged(mut cmd: Command, deadline: Instant, log: &mut JobLog, watch: &mut Watch) -> Result<i32, LocalError> {
    let (reader, writer) = io::pipe()?;
    cmd.stdin(Stdio::null());
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    cmd.stdout(writer.try_clone()?).stderr(writer);
    let mut child = cmd.spawn()?;
    drop(cmd); // close our copies of the pipe's write end, so the reader sees EOF

    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let pump = std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let print = |line: Vec<u8>, log: &mut JobLog| {
        let text = String::from_utf8_lossy(&line);
        log.line(text.trim_end_matches(['\n', '\r']));
    };
    let status = loop {
        match rx.recv_timeout(POLL) {
            Ok(line) => print(line, log),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(i) = watch.check(Some(deadline), true) {
            // SAFETY: plain kill(2) on the process group we created for the child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            let _ = pump.join();
            return Err(LocalError::Interrupted(i));
        }
    };
    // The child has exited; its helpers (same process group) may still hold the pipe: bounded drain.
    // SAFETY: plain kill(2) on the child's process group, which is ours and now has nothing to do.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    for line in rx.iter() {
        print(line, log);
    }
    let _ = pump.join();
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)))
}
