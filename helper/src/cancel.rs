//! What can interrupt a job: cancellation through the Pod annotation `flotilla.io/cancel`
//! (seen through the downward-API file `<pod-info>/annotations`), SIGTERM (the Pod is being
//! deleted or evicted), and the deadlines (checked by the caller).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const CANCEL_ANNOTATION: &str = "flotilla.io/cancel";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cancel {
    /// Stop the current step, run `after_script`.
    Graceful,
    /// Stop everything, no `after_script`.
    Abort,
}

/// Parses a downward-API annotations file: one `key="value"` per line, the value a Go-quoted string.
pub fn parse_annotations(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            Some((key.trim().to_string(), unquote(value.trim())))
        })
        .collect()
}

/// Undoes Go's `%q` quoting (enough of it for annotation values); unquoted text is returned as is.
fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The cancellation asked for in an annotations file, if any.
pub fn cancel_from_annotations(text: &str) -> Option<Cancel> {
    parse_annotations(text)
        .into_iter()
        .rev()
        .find(|(k, _)| k == CANCEL_ANNOTATION)
        .and_then(|(_, v)| match v.trim() {
            "graceful" => Some(Cancel::Graceful),
            "abort" => Some(Cancel::Abort),
            _ => None,
        })
}

static SIGTERM_RECEIVED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    SIGTERM_RECEIVED.store(true, Ordering::SeqCst);
}

/// Catches SIGTERM (and SIGINT) into a flag. Needed in any case: as PID 1 of a container a process
/// without a handler never sees SIGTERM, and the Pod would wait for its grace period to SIGKILL it.
pub fn install_sigterm_handler() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        let handler = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

pub fn sigterm_received() -> bool {
    SIGTERM_RECEIVED.load(Ordering::SeqCst)
}

/// Watches the annotations file, reading it at most every `min_interval`.
pub struct CancelWatch {
    annotations: Option<PathBuf>,
    min_interval: Duration,
    last_read: Option<Instant>,
    seen: Option<Cancel>,
}

impl CancelWatch {
    pub fn new(pod_info: Option<&Path>) -> CancelWatch {
        CancelWatch {
            annotations: pod_info.map(|p| p.join("annotations")),
            min_interval: Duration::from_millis(200),
            last_read: None,
            seen: None,
        }
    }

    /// The strongest cancellation asked for so far (annotations only grow stronger: graceful → abort).
    pub fn poll(&mut self) -> Option<Cancel> {
        let Some(path) = &self.annotations else {
            return self.seen;
        };
        if self.last_read.is_some_and(|t| t.elapsed() < self.min_interval) {
            return self.seen;
        }
        self.last_read = Some(Instant::now());
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Some(c) = cancel_from_annotations(&text) {
                self.seen = Some(self.seen.map_or(c, |s| s.max(c)));
            }
        }
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_downward_api_format() {
        let text =
            "kubernetes.io/config.seen=\"2024-01-01T00:00:00Z\"\nflotilla.io/cancel=\"graceful\"\nx=\"a\\\"b\"\n";
        assert_eq!(cancel_from_annotations(text), Some(Cancel::Graceful));
        assert_eq!(parse_annotations(text)[2], ("x".to_string(), "a\"b".to_string()));
        assert_eq!(
            cancel_from_annotations("flotilla.io/cancel=\"abort\""),
            Some(Cancel::Abort)
        );
        assert_eq!(cancel_from_annotations("flotilla.io/cancel=\"\"\n"), None);
        assert_eq!(cancel_from_annotations(""), None);
    }

    #[test]
    fn the_watch_only_escalates() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = CancelWatch::new(Some(dir.path()));
        w.min_interval = Duration::ZERO;
        assert_eq!(w.poll(), None);
        std::fs::write(dir.path().join("annotations"), "flotilla.io/cancel=\"abort\"\n").unwrap();
        assert_eq!(w.poll(), Some(Cancel::Abort));
        std::fs::write(dir.path().join("annotations"), "flotilla.io/cancel=\"graceful\"\n").unwrap();
        assert_eq!(w.poll(), Some(Cancel::Abort));
    }
}
