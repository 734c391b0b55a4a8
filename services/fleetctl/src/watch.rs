//! `fleetctl watch`: follows the fleet's jobs and prints a line each time one appears or
//! changes state, cluster or result — which cluster took which job, and how it ended.

use std::collections::HashMap;

use flotilla_proto::{JobStatus, StatusReply};
use serde_json::json;

use crate::Output;

/// What was last printed per job.
#[derive(Debug, Default)]
pub struct Watcher {
    seen: HashMap<u64, (String, String, String)>,
}

impl Watcher {
    /// The jobs of `reply` that are new or changed since the last call, in job order.
    pub fn changes<'a>(&mut self, reply: &'a StatusReply) -> Vec<&'a JobStatus> {
        let mut changed: Vec<&JobStatus> = reply
            .jobs
            .iter()
            .filter(|job| {
                let now = (job.state.clone(), job.cluster.clone(), job.result.clone());
                self.seen.insert(job.job_id, now.clone()) != Some(now)
            })
            .collect();
        changed.sort_by_key(|job| job.job_id);
        changed
    }
}

/// One job's line: `job 1001 build: running on cluster-a (worker-a)`, or a JSON object.
pub fn line(job: &JobStatus, output: Output) -> String {
    match output {
        Output::Json => json!({"job_id": job.job_id, "name": job.name, "state": job.state,
                               "cluster": job.cluster, "worker_id": job.worker_id, "result": job.result})
        .to_string(),
        Output::Table => {
            let mut text = format!("job {} {}: {}", job.job_id, job.name, job.state);
            match (job.cluster.is_empty(), job.worker_id.is_empty()) {
                (false, false) => text.push_str(&format!(" on {} ({})", job.cluster, job.worker_id)),
                (false, true) => text.push_str(&format!(" on {}", job.cluster)),
                _ => {}
            }
            if !job.result.is_empty() {
                text.push_str(&format!(", {}", job.result));
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, state: &str, cluster: &str) -> JobStatus {
        JobStatus {
            job_id: id,
            name: format!("job-{id}"),
            state: state.into(),
            cluster: cluster.into(),
            worker_id: format!("worker-{cluster}"),
            ..Default::default()
        }
    }

    #[test]
    fn only_new_and_changed_jobs_are_reported() {
        let mut watcher = Watcher::default();
        let first = StatusReply {
            jobs: vec![job(2, "accepted", ""), job(1, "assigned", "a")],
            ..Default::default()
        };
        let ids: Vec<u64> = watcher.changes(&first).iter().map(|j| j.job_id).collect();
        assert_eq!(ids, [1, 2]);
        assert!(watcher.changes(&first).is_empty());
        let second = StatusReply {
            jobs: vec![job(2, "assigned", "b"), job(1, "assigned", "a")],
            ..Default::default()
        };
        let changed = watcher.changes(&second);
        assert_eq!(changed.len(), 1);
        assert_eq!(line(changed[0], Output::Table), "job 2 job-2: assigned on b (worker-b)");
    }

    #[test]
    fn a_finished_job_shows_its_result() {
        let mut done = job(7, "done", "a");
        done.result = "failed".into();
        assert_eq!(line(&done, Output::Table), "job 7 job-7: done on a (worker-a), failed");
        done.worker_id.clear();
        assert_eq!(line(&done, Output::Table), "job 7 job-7: done on a, failed");
        let value: serde_json::Value = serde_json::from_str(&line(&done, Output::Json)).unwrap();
        assert_eq!(
            (value["job_id"].as_u64(), value["result"].as_str()),
            (Some(7), Some("failed"))
        );
    }
}
