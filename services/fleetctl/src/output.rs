//! Rendering of admin replies: aligned tables for people, JSON for scripts.

use flotilla_proto::StatusReply;
use serde_json::json;

use crate::Output;

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
            let workers: Vec<_> = reply
                .workers
                .iter()
                .map(|w| {
                    json!({"worker_id": w.worker_id, "cluster": w.cluster, "pool": w.pool, "labels": w.labels,
                           "capacity": w.capacity, "used": w.used, "last_heartbeat_ms": w.last_heartbeat_ms, "connected": w.connected})
                })
                .collect();
            let jobs: Vec<_> = reply
                .jobs
                .iter()
                .map(|j| {
                    json!({"job_id": j.job_id, "runner": j.runner, "name": j.name, "project": j.project, "state": j.state,
                           "worker_id": j.worker_id, "cluster": j.cluster, "result": j.result})
                })
                .collect();
            serde_json::to_string_pretty(&json!({"workers": workers, "jobs": jobs})).unwrap_or_default() + "\n"
        }
        Output::Table => {
            let workers: Vec<Vec<String>> = reply
                .workers
                .iter()
                .map(|w| {
                    vec![
                        w.worker_id.clone(),
                        w.cluster.clone(),
                        w.pool.clone(),
                        format!("{}/{}", w.used, w.capacity),
                        if w.connected { "connected" } else { "lost" }.to_string(),
                    ]
                })
                .collect();
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
                "WORKERS\n{}\nJOBS\n{}",
                table(&["WORKER", "CLUSTER", "POOL", "USED", "STATE"], &workers),
                table(&["JOB", "NAME", "STATE", "CLUSTER", "RESULT"], &jobs)
            )
        }
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
            text.contains("WORKER   CLUSTER     POOL   USED   STATE\nw-a      cluster-a   prod   1/4    connected\n"),
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
}
