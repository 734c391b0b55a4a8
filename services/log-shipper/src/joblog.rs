//! The durable log of one job, as the log-shipper keeps it between the worker and GitLab.
//!
//! On disk, in `<data_dir>/jobs/<job id>/`: `trace` holds the job log *after* masking and
//! the output limit (the bytes GitLab gets, so no secret is ever written to disk), and
//! `state.json` holds the offsets. `raw_durable` counts the worker's (unmasked) bytes that
//! are fully reflected in `trace`: bytes the masker still holds back are not durable, so
//! a worker that reconnects resends them and nothing is lost or doubled.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::limit::OutputLimit;
use crate::mask::Masker;

#[derive(Debug, thiserror::Error)]
pub enum JobLogError {
    #[error("job log {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("job log state {0} is corrupt: {1}")]
    Corrupt(PathBuf, serde_json::Error),
    #[error("chunk at offset {offset} leaves a gap: the log has {durable} bytes")]
    Gap { offset: u64, durable: u64 },
    #[error("the job's log is closed")]
    Closed,
}

type Result<T> = std::result::Result<T, JobLogError>;

/// Offsets, persisted next to the trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogState {
    /// Raw bytes from the worker that are reflected in `trace`.
    pub raw_durable: u64,
    /// Bytes of `trace` (masked) written.
    pub trace_len: u64,
    /// Bytes of `trace` GitLab has accepted.
    pub shipped: u64,
    /// No more chunks will come (the job finished and the masker was flushed).
    pub closed: bool,
}

/// How a job's log is to be masked and limited.
#[derive(Debug, Clone)]
pub struct LogPolicy {
    pub masked_values: Vec<String>,
    pub output_limit_bytes: u64,
}

pub struct JobLog {
    dir: PathBuf,
    trace: File,
    state: LogState,
    masker: Masker,
    limit: OutputLimit,
    /// Raw bytes received but held back by the masker (not durable).
    raw_received: u64,
}

impl JobLog {
    /// Opens (or creates) the log of a job. After a restart the trace is reopened at its
    /// durable length; whatever was beyond it is truncated away.
    pub fn open(dir: &Path, policy: &LogPolicy) -> Result<JobLog> {
        let io = |e| JobLogError::Io(dir.to_path_buf(), e);
        std::fs::create_dir_all(dir).map_err(io)?;
        let state = read_state(dir)?;
        let mut trace = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join("trace"))
            .map_err(io)?;
        trace.set_len(state.trace_len).map_err(io)?;
        trace.seek(SeekFrom::End(0)).map_err(io)?;
        let mut limit = OutputLimit::new(policy.output_limit_bytes);
        limit.skip(state.trace_len);
        Ok(JobLog {
            dir: dir.to_path_buf(),
            trace,
            masker: Masker::new(policy.masked_values.iter()),
            limit,
            raw_received: state.raw_durable,
            state,
        })
    }

    pub fn state(&self) -> &LogState {
        &self.state
    }

    /// Raw bytes received so far (durable or held back by the masker).
    pub fn received(&self) -> u64 {
        self.raw_received
    }

    /// Appends a chunk of the worker's raw log starting at `offset`. A chunk that repeats
    /// bytes already received is trimmed; one that leaves a gap is refused. Returns the
    /// new durable raw offset (what the worker may forget).
    pub fn append(&mut self, offset: u64, data: &[u8]) -> Result<u64> {
        if self.state.closed {
            return Err(JobLogError::Closed);
        }
        if offset > self.raw_received {
            return Err(JobLogError::Gap {
                offset,
                durable: self.raw_received,
            });
        }
        let skip = (self.raw_received - offset) as usize;
        if skip >= data.len() {
            return Ok(self.state.raw_durable);
        }
        let fresh = &data[skip..];
        let mut masked = Vec::with_capacity(fresh.len());
        self.masker.push(fresh, &mut masked);
        self.raw_received += fresh.len() as u64;
        self.write(&masked, self.raw_received - self.masker.pending_len() as u64)?;
        Ok(self.state.raw_durable)
    }

    /// The job ended: what the masker held back is written and the log is closed.
    pub fn close(&mut self) -> Result<()> {
        self.close_with(b"")
    }

    /// [`JobLog::close`], then `trailer` (the coordinator's word on why the job ended) on a
    /// line of its own. The trailer bypasses the output limit: the reason must be readable
    /// even in a truncated log.
    pub fn close_with(&mut self, trailer: &[u8]) -> Result<()> {
        if self.state.closed {
            return Ok(());
        }
        let mut rest = Vec::new();
        self.masker.finish(&mut rest);
        self.state.closed = true;
        self.write(&rest, self.raw_received)?;
        if trailer.is_empty() {
            return Ok(());
        }
        let mut text = Vec::with_capacity(trailer.len() + 1);
        let ends_mid_line = self.state.trace_len > 0 && self.read(self.state.trace_len - 1, 1)? != b"\n";
        if ends_mid_line {
            text.push(b'\n');
        }
        text.extend_from_slice(trailer);
        let io = |e| JobLogError::Io(self.dir.clone(), e);
        self.trace.write_all(&text).map_err(io)?;
        self.trace.sync_data().map_err(io)?;
        self.state.trace_len += text.len() as u64;
        write_state(&self.dir, &self.state)
    }

    fn write(&mut self, masked: &[u8], raw_durable: u64) -> Result<()> {
        let mut limited = Vec::with_capacity(masked.len());
        self.limit.push(masked, &mut limited);
        let io = |e| JobLogError::Io(self.dir.clone(), e);
        self.trace.write_all(&limited).map_err(io)?;
        self.trace.sync_data().map_err(io)?;
        self.state.trace_len += limited.len() as u64;
        self.state.raw_durable = raw_durable;
        write_state(&self.dir, &self.state)
    }

    /// Reads up to `max` bytes of the trace from `from`.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<u8>> {
        let io = |e| JobLogError::Io(self.dir.clone(), e);
        let mut file = File::open(self.dir.join("trace")).map_err(io)?;
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        let available = self.state.trace_len.saturating_sub(from).min(max as u64) as usize;
        let mut buffer = vec![0; available];
        file.read_exact(&mut buffer).map_err(io)?;
        Ok(buffer)
    }

    /// Records that GitLab holds the trace up to `offset`.
    pub fn set_shipped(&mut self, offset: u64) -> Result<()> {
        self.state.shipped = offset.min(self.state.trace_len);
        write_state(&self.dir, &self.state)
    }
}

fn read_state(dir: &Path) -> Result<LogState> {
    let path = dir.join("state.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| JobLogError::Corrupt(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LogState::default()),
        Err(e) => Err(JobLogError::Io(path, e)),
    }
}

/// Replaces `state.json` atomically and durably.
fn write_state(dir: &Path, state: &LogState) -> Result<()> {
    let path = dir.join("state.json");
    let temp = dir.join("state.json.tmp");
    let io = |e| JobLogError::Io(path.clone(), e);
    let mut file = File::create(&temp).map_err(io)?;
    file.write_all(&serde_json::to_vec(state).expect("state serialises"))
        .map_err(io)?;
    file.sync_data().map_err(io)?;
    std::fs::rename(&temp, &path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LogPolicy {
        LogPolicy {
            masked_values: vec!["hunter2-secret".into()],
            output_limit_bytes: 4 * 1024 * 1024,
        }
    }

    fn trace(log: &JobLog) -> String {
        String::from_utf8(log.read(0, usize::MAX).unwrap()).unwrap()
    }

    #[test]
    fn masks_before_writing_and_tracks_durable_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = JobLog::open(dir.path(), &policy()).unwrap();
        assert_eq!(
            log.append(0, b"pw=hunter2").unwrap(),
            3,
            "the possible secret start is held back"
        );
        assert_eq!(log.append(10, b"-secret done\n").unwrap(), 23);
        log.close().unwrap();
        assert_eq!(trace(&log), "pw=[MASKED] done\n");
        let on_disk = std::fs::read_to_string(dir.path().join("trace")).unwrap();
        assert!(!on_disk.contains("hunter2"));
    }

    #[test]
    fn resent_chunks_are_trimmed_and_gaps_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = JobLog::open(dir.path(), &policy()).unwrap();
        log.append(0, b"abc\n").unwrap();
        log.append(2, b"c\ndef\n").unwrap();
        assert!(matches!(
            log.append(20, b"x"),
            Err(JobLogError::Gap { offset: 20, durable: 8 })
        ));
        log.close().unwrap();
        assert_eq!(trace(&log), "abc\ndef\n");
    }

    #[test]
    fn reopening_resumes_from_the_durable_offset() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = JobLog::open(dir.path(), &policy()).unwrap();
            log.append(0, b"line one\nhunter").unwrap();
            log.set_shipped(4).unwrap();
            // Crash: the held-back "hunter" was never durable.
        }
        let mut log = JobLog::open(dir.path(), &policy()).unwrap();
        assert_eq!(log.state().raw_durable, 9);
        assert_eq!(log.state().shipped, 4);
        // The worker resends from the durable offset.
        log.append(9, b"hunter2-secret\n").unwrap();
        log.close().unwrap();
        assert_eq!(trace(&log), "line one\n[MASKED]\n");
        assert!(matches!(log.append(24, b"late"), Err(JobLogError::Closed)));
    }

    #[test]
    fn a_trailer_goes_on_its_own_line_past_the_output_limit() {
        let dir = tempfile::tempdir().unwrap();
        let policy = LogPolicy {
            masked_values: vec![],
            output_limit_bytes: 8,
        };
        let mut log = JobLog::open(dir.path(), &policy).unwrap();
        log.append(0, b"partial").unwrap();
        log.close_with(b"ERROR: the worker was lost\n").unwrap();
        let trace = log.read(0, 1 << 20).unwrap();
        assert_eq!(
            String::from_utf8(trace).unwrap(),
            "partial\nERROR: the worker was lost\n"
        );
        assert!(log.state().closed);
    }
}
