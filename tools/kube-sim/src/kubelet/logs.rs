//! Container logs, kept like the kubelet keeps them: one file per container run, one entry
//! per line with the time it was written, readable while it grows.
//!
//! Entries are `<RFC3339Nano> <stream> <F|P> <text>\n`, the CRI log format: `F` ends a
//! line, `P` is a partial line (output that ended without a newline). Timestamps are
//! strictly increasing within a file so a client resuming with `sinceTime` can drop
//! what it already has by timestamp alone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

pub struct ContainerLog {
    path: PathBuf,
    writer: tokio::sync::Mutex<Option<tokio::fs::File>>,
    last_ts: Mutex<DateTime<Utc>>,
    /// Bytes written so far; closed (sender dropped or `finished`) when the run ended.
    progress: watch::Sender<(u64, bool)>,
}

/// One parsed log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub time: DateTime<Utc>,
    pub text: String,
    pub complete: bool,
}

impl Entry {
    /// The bytes the API returns for this entry.
    pub fn render(&self, timestamps: bool) -> String {
        let mut out = String::with_capacity(self.text.len() + 32);
        if timestamps {
            out.push_str(&self.time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string());
            out.push(' ');
        }
        out.push_str(&self.text);
        if self.complete {
            out.push('\n');
        }
        out
    }
}

impl ContainerLog {
    pub async fn create(path: &Path) -> std::io::Result<ContainerLog> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .await?;
        Ok(ContainerLog {
            path: path.to_path_buf(),
            writer: tokio::sync::Mutex::new(Some(file)),
            last_ts: Mutex::new(DateTime::<Utc>::MIN_UTC),
            progress: watch::channel((0, false)).0,
        })
    }

    /// Copies one output stream of the process into the log, line by line, until EOF.
    pub async fn capture(&self, stream: &'static str, source: impl AsyncRead + Unpin) {
        let mut reader = BufReader::with_capacity(64 * 1024, source);
        let mut line = Vec::new();
        loop {
            line.clear();
            // Like containerd, a line longer than 16 KiB is split into partial entries.
            let read = (&mut reader).take(16 * 1024).read_until(b'\n', &mut line).await;
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let complete = line.last() == Some(&b'\n');
                    if complete {
                        line.pop();
                    }
                    self.append(stream, &line, complete).await;
                }
            }
        }
    }

    async fn append(&self, stream: &str, text: &[u8], complete: bool) {
        let time = self.next_timestamp();
        let text = String::from_utf8_lossy(text);
        let entry = format!(
            "{} {} {} {}\n",
            time.format("%Y-%m-%dT%H:%M:%S%.9fZ"),
            stream,
            if complete { 'F' } else { 'P' },
            text
        );
        let mut writer = self.writer.lock().await;
        if let Some(file) = writer.as_mut() {
            if file.write_all(entry.as_bytes()).await.is_ok() {
                let _ = file.flush().await;
                self.progress.send_modify(|(len, _)| *len += entry.len() as u64);
            }
        }
    }

    fn next_timestamp(&self) -> DateTime<Utc> {
        let mut last = self.last_ts.lock().unwrap();
        let mut now = Utc::now();
        if now <= *last {
            now = *last + chrono::Duration::nanoseconds(1);
        }
        *last = now;
        now
    }

    /// Marks the run ended: followers drain what is left and stop.
    pub async fn finish(&self) {
        if let Some(mut file) = self.writer.lock().await.take() {
            let _ = file.flush().await;
        }
        self.progress.send_modify(|(_, done)| *done = true);
    }

    pub fn is_finished(&self) -> bool {
        self.progress.borrow().1
    }

    /// Every entry so far.
    pub async fn entries(&self) -> Vec<Entry> {
        let Ok(text) = tokio::fs::read_to_string(&self.path).await else {
            return Vec::new();
        };
        text.lines().filter_map(parse_entry).collect()
    }

    /// The last ~`max_bytes` of output, for `FallbackToLogsOnError` termination messages.
    pub async fn tail_text(&self, max_lines: usize, max_bytes: usize) -> String {
        let entries = self.entries().await;
        let start = entries.len().saturating_sub(max_lines);
        let text: String = entries[start..].iter().map(|e| e.render(false)).collect();
        let cut = text.len().saturating_sub(max_bytes);
        let cut = (cut..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[cut..].to_string()
    }

    /// Follows the log from its start: yields each entry as it is written, ending when the
    /// run has finished and everything has been read.
    pub fn follow(&self) -> Follower {
        Follower {
            path: self.path.clone(),
            progress: self.progress.subscribe(),
            reader: None,
            buffered: String::new(),
        }
    }
}

pub struct Follower {
    path: PathBuf,
    progress: watch::Receiver<(u64, bool)>,
    reader: Option<BufReader<tokio::fs::File>>,
    buffered: String,
}

impl Follower {
    /// The next entry, waiting for one if the run is still going; None at the end.
    pub async fn next(&mut self) -> Option<Entry> {
        loop {
            if self.reader.is_none() {
                let file = tokio::fs::File::open(&self.path).await.ok()?;
                self.reader = Some(BufReader::new(file));
            }
            // Snapshot before reading, so a write that lands after our EOF wakes us.
            let (_, finished) = *self.progress.borrow_and_update();
            let reader = self.reader.as_mut()?;
            match reader.read_line(&mut self.buffered).await {
                Ok(n) if n > 0 && self.buffered.ends_with('\n') => {
                    let line = std::mem::take(&mut self.buffered);
                    if let Some(entry) = parse_entry(line.trim_end_matches('\n')) {
                        return Some(entry);
                    }
                }
                Ok(_) => {
                    // At EOF (possibly mid-entry: keep the fragment for the next read).
                    if finished {
                        return None;
                    }
                    if self.progress.changed().await.is_err() {
                        return None;
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

fn parse_entry(line: &str) -> Option<Entry> {
    let mut parts = line.splitn(4, ' ');
    let time = DateTime::parse_from_rfc3339(parts.next()?).ok()?.with_timezone(&Utc);
    let _stream = parts.next()?;
    let complete = parts.next()? == "F";
    let text = parts.next().unwrap_or("").to_string();
    Some(Entry { time, text, complete })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_lines_and_partials_with_increasing_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let log = ContainerLog::create(&dir.path().join("c.log")).await.unwrap();
        log.capture("stdout", &b"one\ntwo\nno newline"[..]).await;
        log.finish().await;
        let entries = log.entries().await;
        let texts: Vec<String> = entries.iter().map(|e| e.render(false)).collect();
        assert_eq!(texts, vec!["one\n", "two\n", "no newline"]);
        assert!(entries.windows(2).all(|w| w[0].time < w[1].time));
        assert!(entries[0].render(true).ends_with("Z one\n"));
    }

    #[tokio::test]
    async fn follower_sees_lines_written_after_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(ContainerLog::create(&dir.path().join("c.log")).await.unwrap());
        let mut follower = log.follow();
        let writer = log.clone();
        let task = tokio::spawn(async move {
            writer.capture("stdout", &b"a\n"[..]).await;
            writer.capture("stderr", &b"b\n"[..]).await;
            writer.finish().await;
        });
        assert_eq!(follower.next().await.unwrap().text, "a");
        assert_eq!(follower.next().await.unwrap().text, "b");
        assert!(follower.next().await.is_none());
        task.await.unwrap();
    }

    #[tokio::test]
    async fn long_lines_are_split_into_partials() {
        let dir = tempfile::tempdir().unwrap();
        let log = ContainerLog::create(&dir.path().join("c.log")).await.unwrap();
        let long = "x".repeat(20 * 1024) + "\n";
        log.capture("stdout", long.as_bytes()).await;
        let entries = log.entries().await;
        assert_eq!(entries.len(), 2);
        assert!(!entries[0].complete && entries[1].complete);
        let joined: String = entries.iter().map(|e| e.render(false)).collect();
        assert_eq!(joined, long);
    }
}
