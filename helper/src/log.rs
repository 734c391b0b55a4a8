//! The job log: bytes written to the helper's stdout (followed by the worker) and appended to
//! `RUN/job.log`, with the official runner's colours and GitLab section markers.
//!
//! Two kinds of bytes go in:
//! - the helper's own lines ([`JobLog::notice`], [`JobLog::line`], git output, …): they pass through
//!   the [`Masker`], so the job token, URL credentials and masked variables never leave the helper;
//! - the output of the user's steps ([`JobLog::raw`]): copied as is (the log-shipper masks it).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub const ANSI_BOLD_GREEN: &str = "\x1b[32;1m";
pub const ANSI_BOLD_RED: &str = "\x1b[31;1m";
pub const ANSI_BOLD_CYAN: &str = "\x1b[36;1m";
pub const ANSI_YELLOW: &str = "\x1b[0;33m";
pub const ANSI_RESET: &str = "\x1b[0;m";
pub const ANSI_CLEAR: &str = "\x1b[0K";

pub const MASKED: &str = "[MASKED]";

/// Replaces secrets in the helper's own output.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Literal secrets, longest first (so a secret containing another is masked whole).
    secrets: Vec<String>,
}

impl Masker {
    /// Masks every given non-empty secret (the job token, masked variable values, …) plus the
    /// password part of any `scheme://user:password@` URL (or the user part when there is no password).
    pub fn new<I, S>(secrets: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> = secrets.into_iter().map(Into::into).filter(|s| !s.is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Masker { secrets }
    }

    pub fn mask(&self, text: &str) -> String {
        let mut out = mask_url_credentials(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASKED);
            }
        }
        out
    }
}

/// `https://gitlab-ci-token:tok@host/x` → `https://gitlab-ci-token:[MASKED]@host/x`;
/// `https://tok@host/x` → `https://[MASKED]@host/x`.
pub fn mask_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#', whitespace or quote.
        let end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon + 1]);
                        out.push_str(MASKED);
                    }
                    None => out.push_str(MASKED),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Current Unix time in seconds (section markers).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The combined job log.
pub struct JobLog {
    stdout: Option<Box<dyn Write + Send>>,
    file: Option<File>,
    masker: Masker,
    /// Whether the last byte written was a newline (or nothing was written yet).
    at_line_start: bool,
    /// The section started and not yet ended.
    open_section: Option<String>,
}

impl JobLog {
    /// Writes to the process's stdout and appends to `job_log` (created if missing).
    pub fn open(job_log: &Path) -> io::Result<JobLog> {
        let file = OpenOptions::new().create(true).append(true).open(job_log)?;
        Ok(JobLog {
            stdout: Some(Box::new(io::stdout())),
            file: Some(file),
            masker: Masker::default(),
            at_line_start: true,
            open_section: None,
        })
    }

    /// A log writing only to `sink` (tests).
    #[cfg(test)]
    pub fn to_writer(sink: Box<dyn Write + Send>) -> JobLog {
        JobLog {
            stdout: Some(sink),
            file: None,
            masker: Masker::default(),
            at_line_start: true,
            open_section: None,
        }
    }

    pub fn set_masker(&mut self, masker: Masker) {
        self.masker = masker;
    }

    /// Writes bytes as they are (step output). Errors on stdout are ignored (the copy in `job.log`
    /// and the result still matter when nobody reads stdout); errors on the file are ignored too
    /// after the first report, since the log must go on.
    pub fn raw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(out) = self.stdout.as_mut() {
            if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
                self.stdout = None;
            }
        }
        if let Some(file) = self.file.as_mut() {
            if file.write_all(bytes).is_err() {
                eprintln!("flotilla-helper: cannot append to job.log; continuing with stdout only");
                self.file = None;
            }
        }
        self.at_line_start = bytes.ends_with(b"\n");
    }

    /// Ends a partial line (left by step output without a final newline) before the helper speaks.
    fn start_line(&mut self) {
        if !self.at_line_start {
            self.raw(b"\n");
        }
    }

    /// A plain line from the helper (masked).
    pub fn line(&mut self, text: &str) {
        self.start_line();
        let masked = self.masker.mask(text);
        self.raw(format!("{masked}\n").as_bytes());
    }

    fn colored(&mut self, color: &str, text: &str) {
        self.start_line();
        let masked = self.masker.mask(text);
        self.raw(format!("{color}{masked}{ANSI_RESET}\n").as_bytes());
    }

    /// Bold green, like the official runner's notices ("Fetching changes...").
    pub fn notice(&mut self, text: &str) {
        self.colored(ANSI_BOLD_GREEN, text);
    }

    /// Yellow `WARNING: ...`.
    pub fn warning(&mut self, text: &str) {
        self.colored(ANSI_YELLOW, &format!("WARNING: {text}"));
    }

    /// Bold red `ERROR: ...`.
    pub fn error(&mut self, text: &str) {
        self.colored(ANSI_BOLD_RED, &format!("ERROR: {text}"));
    }

    /// `section_start:<ts>:<name>\r\e[0K` followed by the bold cyan header line.
    pub fn section_start(&mut self, name: &str, header: &str) {
        self.start_line();
        let header = self.masker.mask(header);
        let text = format!(
            "section_start:{}:{name}\r{ANSI_CLEAR}{ANSI_CLEAR}{ANSI_BOLD_CYAN}{header}{ANSI_RESET}\n",
            unix_now()
        );
        self.raw(text.as_bytes());
        self.open_section = Some(name.to_string());
    }

    /// Ends the section left open, if any (after an internal error).
    pub fn close_open_section(&mut self) {
        if let Some(name) = self.open_section.clone() {
            self.section_end(&name);
        }
    }

    /// `section_end:<ts>:<name>\r\e[0K`, on its own line.
    pub fn section_end(&mut self, name: &str) {
        self.open_section = None;
        self.start_line();
        let text = format!("section_end:{}:{name}\r{ANSI_CLEAR}\n", unix_now());
        self.raw(text.as_bytes());
    }
}

#[cfg(test)]
pub mod testing {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A `Write` whose bytes the test can read back.
    #[derive(Clone, Default)]
    pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SharedBuf {
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::SharedBuf;
    use super::*;

    #[test]
    fn masks_url_credentials() {
        assert_eq!(
            mask_url_credentials(
                "fatal: unable to access 'https://gitlab-ci-token:s3cr3t@gitlab.example.com/g/p.git/': 403"
            ),
            "fatal: unable to access 'https://gitlab-ci-token:[MASKED]@gitlab.example.com/g/p.git/': 403"
        );
        assert_eq!(
            mask_url_credentials("git@host:x https://tok@h/p"),
            "git@host:x https://[MASKED]@h/p"
        );
        assert_eq!(mask_url_credentials("no url here: a@b"), "no url here: a@b");
        assert_eq!(mask_url_credentials("file:///tmp/x.git"), "file:///tmp/x.git");
    }

    #[test]
    fn masks_secrets_longest_first() {
        let m = Masker::new(["abc", "abcdef", ""]);
        assert_eq!(m.mask("x abcdef y abc"), "x [MASKED] y [MASKED]");
    }

    #[test]
    fn helper_lines_start_on_a_new_line_after_partial_output() {
        let buf = SharedBuf::default();
        let mut log = JobLog::to_writer(Box::new(buf.clone()));
        log.set_masker(Masker::new(["tok123"]));
        log.raw(b"partial");
        log.notice("Fetching tok123");
        log.section_end("step_script");
        let text = buf.text();
        assert!(
            text.starts_with("partial\n\x1b[32;1mFetching [MASKED]\x1b[0;m\nsection_end:"),
            "{text:?}"
        );
        assert!(text.ends_with(":step_script\r\x1b[0K\n"));
    }
}
