//! Rendering of admin replies: aligned tables for people, JSON for scripts.

use flotilla_proto::{JobStatus, OverflowReply, StatusReply, WorkerStatus};
use serde_json::json;

use crate::{JobFilter, Output};

/// Left-aligned columns separated by three spaces, like kubectl's tables.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn status(reply: &StatusReply, output: Output) -> String {
    match output {
        Output::Json => {
            let workers: Vec<_> = reply.workers.iter().map(worker_json).collect();
            let jobs: Vec<_> = reply.jobs.iter().map(job_json).collect();
            json_text(json!({"workers": workers, "jobs": jobs, "overflow_mode": reply.overflow_mode}))
        }
        Output::Table => {
            let jobs: Vec<Vec<String>> = reply
                .jobs
                .iter()
                .map(|j| {
                    vec![
                        j.job_id.to_string(),
                        j.name.clone(),
                        j.state.clone(),
                        j.cluster.clone(),
                        j.result.clone(),
                    ]
                })
                .collect();
            format!(
                "WORKERS (overflow: {})\n{}\nJOBS\n{}",
                reply.overflow_mode,
                worker_table(&reply.workers),
                table(&["JOB", "NAME", "STATE", "CLUSTER", "RESULT"], &jobs)
            )
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `3s`, `5m`, `2h`, `4d` ago.
fn age(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let seconds = (now_ms() - ms).max(0) / 1000;
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn worker_json(w: &WorkerStatus) -> serde_json::Value {
    json!({"worker_id": w.worker_id, "cluster": w.cluster, "pool": w.pool, "labels": w.labels,
           "capacity": w.capacity, "used": w.used, "state": w.state, "overflow": w.overflow,
           "last_heartbeat_ms": w.last_heartbeat_ms, "connected": w.connected})
}

fn job_json(j: &JobStatus) -> serde_json::Value {
    json!({"job_id": j.job_id, "runner": j.runner, "name": j.name, "project": j.project, "state": j.state,
           "worker_id": j.worker_id, "cluster": j.cluster, "result": j.result,
           "failure_reason": j.failure_reason, "exit_code": j.exit_code,
           "accepted_at_ms": j.accepted_at_ms, "updated_at_ms": j.updated_at_ms, "dispatches": j.dispatches})
}

fn json_text(value: serde_json::Value) -> String {
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

fn worker_table(workers: &[WorkerStatus]) -> String {
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            let mut labels: Vec<String> = w.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            vec![
                w.worker_id.clone(),
                w.cluster.clone(),
                if w.overflow {
                    format!("{} (overflow)", w.pool)
                } else {
                    w.pool.clone()
                },
                if labels.is_empty() {
                    "-".into()
                } else {
                    labels.join(",")
                },
                format!("{}/{}", w.used, w.capacity),
                w.state.clone(),
                age(w.last_heartbeat_ms),
            ]
        })
        .collect();
    table(
        &["WORKER", "CLUSTER", "POOL", "LABELS", "USED", "STATE", "HEARTBEAT"],
        &rows,
    )
}

/// `fleetctl workers`.
pub fn workers(reply: &StatusReply, output: Output) -> String {
    match output {
        Output::Json => json_text(json!({"workers": reply.workers.iter().map(worker_json).collect::<Vec<_>>()})),
        Output::Table => worker_table(&reply.workers),
    }
}

impl JobFilter {
    fn matches(&self, job: &JobStatus) -> bool {
        self.state.as_ref().is_none_or(|s| &job.state == s)
            && self.cluster.as_ref().is_none_or(|c| &job.cluster == c)
            && self.project.as_ref().is_none_or(|p| job.project.contains(p.as_str()))
    }
}

/// `fleetctl jobs`.
pub fn jobs(reply: &StatusReply, filter: &JobFilter, output: Output) -> String {
    let jobs: Vec<&JobStatus> = reply.jobs.iter().filter(|j| filter.matches(j)).collect();
    match output {
        Output::Json => json_text(json!({"jobs": jobs.iter().map(|j| job_json(j)).collect::<Vec<_>>()})),
        Output::Table => {
            let rows: Vec<Vec<String>> = jobs
                .iter()
                .map(|j| {
                    vec![
                        j.job_id.to_string(),
                        j.name.clone(),
                        j.project.clone(),
                        j.state.clone(),
                        if j.cluster.is_empty() {
                            "-".into()
                        } else {
                            j.cluster.clone()
                        },
                        if j.result.is_empty() {
                            "-".into()
                        } else {
                            j.result.clone()
                        },
                        age(j.accepted_at_ms),
                    ]
                })
                .collect();
            table(&["JOB", "NAME", "PROJECT", "STATE", "CLUSTER", "RESULT", "AGE"], &rows)
        }
    }
}

/// The last `n` lines of a log, as a terminal shows them: colours and section markers gone.
pub fn last_lines(log: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(log);
    let visible: Vec<String> = text
        .lines()
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            // What follows the last carriage return is what stays on screen.
            strip_ansi(line.rsplit('\r').next().unwrap_or(line))
        })
        .filter(|line| !line.trim().is_empty())
        .collect();
    visible[visible.len().saturating_sub(n)..].to_vec()
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

/// `fleetctl job ID`: details, and the end of its log when the log-shipper has it.
pub fn job(job: &JobStatus, trace: Option<&[String]>, output: Output) -> String {
    match output {
        Output::Json => {
            let mut value = job_json(job);
            value["trace_tail"] = json!(trace);
            json_text(value)
        }
        Output::Table => {
            let dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
            let fields = [
                ("Job", job.job_id.to_string()),
                ("Name", dash(&job.name)),
                ("Project", dash(&job.project)),
                ("Runner", dash(&job.runner)),
                ("State", job.state.clone()),
                ("Cluster", dash(&job.cluster)),
                ("Worker", dash(&job.worker_id)),
                ("Result", dash(&job.result)),
                ("Failure reason", dash(&job.failure_reason)),
                (
                    "Exit code",
                    if job.exit_code == 0 {
                        "-".into()
                    } else {
                        job.exit_code.to_string()
                    },
                ),
                ("Dispatched", format!("{} time(s)", job.dispatches)),
                ("Accepted", format!("{} ago", age(job.accepted_at_ms))),
                ("Last change", format!("{} ago", age(job.updated_at_ms))),
            ];
            let mut text: String = fields.iter().map(|(k, v)| format!("{k:<16}{v}\n")).collect();
            match trace {
                Some(lines) => {
                    text.push_str("Log (end):\n");
                    lines.iter().for_each(|line| text.push_str(&format!("  | {line}\n")));
                }
                None => text.push_str("Log             (the log-shipper has none)\n"),
            }
            text
        }
    }
}

/// `fleetctl cordon|drain|uncordon`.
pub fn cordoned(target: &str, action: &str, workers: &[String], output: Output) -> String {
    match output {
        Output::Json => json_text(json!({"target": target, "action": action, "workers": workers})),
        Output::Table => {
            let done = match action {
                "cordon" => "cordoned",
                "drain" => "draining",
                _ => "uncordoned",
            };
            let covered = if workers.is_empty() {
                "no worker of it is connected now; it applies when one connects".to_string()
            } else {
                format!("workers: {}", workers.join(", "))
            };
            format!("{target} {done} ({covered})\n")
        }
    }
}

/// `fleetctl overflow`.
pub fn overflow(reply: &OverflowReply, output: Output) -> String {
    match output {
        Output::Json => json_text(json!({"mode": reply.mode,
            "workers": reply.workers.iter().map(worker_json).collect::<Vec<_>>()})),
        Output::Table => {
            let running: u32 = reply.workers.iter().map(|w| w.used).sum();
            let mut text = format!(
                "overflow: {} ({} overflow worker(s), {running} job(s) running there)\n",
                reply.mode,
                reply.workers.len()
            );
            if !reply.workers.is_empty() {
                text.push_str(&worker_table(&reply.workers));
            }
            text
        }
    }
}

/// `fleetctl cancel`.
pub fn canceled(job_id: u64, state: &str, output: Output) -> String {
    match output {
        Output::Json => json_text(json!({"job_id": job_id, "state": state})),
        Output::Table if state == "running" || state == "assigned" => {
            format!("job {job_id}: its worker is stopping it\n")
        }
        Output::Table => format!("job {job_id}: canceled ({state})\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_proto::{JobStatus, WorkerStatus};

    fn reply() -> StatusReply {
        StatusReply {
            workers: vec![WorkerStatus {
                worker_id: "w-a".into(),
                cluster: "cluster-a".into(),
                pool: "prod".into(),
                capacity: 4,
                used: 1,
                state: "ready".into(),
                connected: true,
                ..Default::default()
            }],
            jobs: vec![JobStatus {
                job_id: 12,
                name: "build".into(),
                state: "running".into(),
                cluster: "cluster-a".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn tables_align_columns() {
        let text = status(&reply(), Output::Table);
        assert!(
            text.contains("WORKER   CLUSTER     POOL   LABELS   USED   STATE   HEARTBEAT\nw-a      cluster-a   prod   -        1/4    ready   -\n"),
            "{text}"
        );
        assert!(
            text.contains("JOB   NAME    STATE     CLUSTER     RESULT\n12    build   running   cluster-a\n"),
            "{text}"
        );
    }

    #[test]
    fn json_is_parseable_with_stable_keys() {
        let value: serde_json::Value = serde_json::from_str(&status(&reply(), Output::Json)).unwrap();
        assert_eq!(value["workers"][0]["used"], 1);
        assert_eq!(value["jobs"][0]["job_id"], 12);
    }

    #[test]
    fn log_tails_show_what_a_terminal_shows() {
        let log = b"section_start:1:step_script\r\x1b[0K\x1b[32;1m$ echo hi\x1b[0;m\nhi\nsection_end:2:step_script\r\x1b[0K\nJob succeeded\n";
        assert_eq!(last_lines(log, 10), ["$ echo hi", "hi", "Job succeeded"]);
        assert_eq!(last_lines(log, 1), ["Job succeeded"]);
    }
}
