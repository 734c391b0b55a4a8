//! The end-of-run summary: one row per job (id, name, state, failure reason, exit code, trace size,
//! checksum match, expectation) and the last lines of each trace, as a table for people and as
//! JSON for scripts (`--state-file`, `GET /sim/summary`).

use serde::Serialize;

use crate::pipeline::Expect;
use crate::state::{JobState, JobView};

/// How many trace lines the summary shows per job.
pub const TAIL_LINES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSummary {
    pub id: u64,
    pub name: String,
    pub state: JobState,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i64>,
    pub trace_bytes: usize,
    /// Whether the runner's final checksum/bytesize matched the stored trace (None: not reported).
    pub checksum_matched: Option<bool>,
    pub expect: Expect,
    pub as_expected: bool,
    pub trace_tail: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub jobs: Vec<JobSummary>,
    pub all_finished: bool,
    /// Every job finished as its `expect` said.
    pub all_as_expected: bool,
}

impl Summary {
    pub fn from_views(views: &[JobView]) -> Summary {
        let jobs: Vec<JobSummary> = views
            .iter()
            .map(|v| JobSummary {
                id: v.id,
                name: v.name.clone(),
                state: v.state,
                failure_reason: v.failure_reason.clone(),
                exit_code: v.exit_code,
                trace_bytes: v.trace.len(),
                checksum_matched: v.checksum_matched,
                expect: v.expect,
                as_expected: v.expect.matches(v.state),
                trace_tail: tail(&v.trace, TAIL_LINES),
            })
            .collect();
        Summary {
            all_finished: jobs.iter().all(|j| j.state.is_finished()),
            all_as_expected: jobs.iter().all(|j| j.as_expected),
            jobs,
        }
    }

    /// The table and trace tails as text.
    pub fn render(&self) -> String {
        let header = [
            "ID", "NAME", "STATE", "REASON", "EXIT", "TRACE", "CHECKSUM", "EXPECT", "OK",
        ];
        let dash = || "-".to_string();
        let rows: Vec<[String; 9]> = self
            .jobs
            .iter()
            .map(|j| {
                [
                    j.id.to_string(),
                    j.name.clone(),
                    j.state.to_string(),
                    j.failure_reason.clone().unwrap_or_else(dash),
                    j.exit_code.map_or_else(dash, |c| c.to_string()),
                    format!("{}B", j.trace_bytes),
                    match j.checksum_matched {
                        Some(true) => "match".into(),
                        Some(false) => "MISMATCH".into(),
                        None => dash(),
                    },
                    j.expect.as_str().into(),
                    if j.as_expected { "yes" } else { "NO" }.into(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            padded.join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(header.to_vec());
        for row in &rows {
            out += &line(row.iter().map(String::as_str).collect());
        }
        for job in &self.jobs {
            if job.trace_tail.is_empty() {
                continue;
            }
            out += &format!(
                "\n--- job {} {} (last {} lines)\n",
                job.id,
                job.name,
                job.trace_tail.len()
            );
            for l in &job.trace_tail {
                out += &format!("  | {l}\n");
            }
        }
        let good = self.jobs.iter().filter(|j| j.as_expected).count();
        out += &format!("\n{good}/{} jobs ended as expected\n", self.jobs.len());
        out
    }
}

/// The last `n` non-empty lines of a trace as a terminal would show them: ANSI sequences removed
/// and, for lines rewritten with `\r` (GitLab section markers), only what is left visible.
pub fn tail(trace: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(trace);
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let last = line.rsplit('\r').next().unwrap_or("");
            // `\r` + erase-line wipes what came before (how section markers hide themselves);
            // a bare `\r` only overwrites, so the longest-lived visible segment is shown.
            let visible = if last.starts_with("\x1b[0K") || last.starts_with("\x1b[K") {
                last
            } else {
                line.rsplit('\r')
                    .find(|s| !strip_ansi(s).trim().is_empty())
                    .unwrap_or("")
            };
            strip_ansi(visible).trim_end().to_string()
        })
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// Removes ANSI CSI sequences (`ESC [ ... final`) and other control characters except tabs.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: u64, state: JobState, expect: Expect, trace: &str) -> JobView {
        JobView {
            id,
            name: format!("job{id}"),
            stage: "test".into(),
            state,
            failure_reason: (state == JobState::Failed).then(|| "script_failure".into()),
            exit_code: (state == JobState::Failed).then_some(2),
            trace: trace.as_bytes().to_vec(),
            reported_checksum: None,
            reported_bytesize: None,
            checksum_matched: Some(true),
            patches: 1,
            puts: 2,
            updates: vec![],
            expect,
            token: "t".into(),
            runner_token: None,
            artifacts: vec![],
        }
    }

    #[test]
    fn tail_shows_what_a_terminal_shows() {
        let trace = "section_start:1:step_script\r\x1b[0K\x1b[32;1mRunning\x1b[0;m\n\nline 2\r\nline 3\n";
        assert_eq!(tail(trace.as_bytes(), 5), ["Running", "line 2", "line 3"]);
        assert_eq!(tail(trace.as_bytes(), 1), ["line 3"]);
        assert!(tail(b"", 5).is_empty());
        let hidden = "done\nsection_end:2:step_script\r\x1b[0K\nJob succeeded\n";
        assert_eq!(tail(hidden.as_bytes(), 5), ["done", "Job succeeded"]);
    }

    #[test]
    fn table_marks_unexpected_endings() {
        let s = Summary::from_views(&[
            view(1, JobState::Success, Expect::Success, "hello\n"),
            view(2, JobState::Failed, Expect::Success, "boom\n"),
        ]);
        assert!(s.all_finished);
        assert!(!s.all_as_expected);
        let text = s.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID  NAME"), "{text}");
        assert!(lines[1].contains("success") && lines[1].ends_with("yes"), "{text}");
        assert!(
            lines[2].contains("script_failure") && lines[2].ends_with("NO"),
            "{text}"
        );
        assert!(text.contains("  | boom"), "{text}");
        assert!(text.contains("1/2 jobs ended as expected"), "{text}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["jobs"][1]["state"], "failed");
        assert_eq!(json["jobs"][1]["as_expected"], false);
    }
}
