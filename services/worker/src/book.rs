//! The jobs this worker holds, across coordinator sessions: those it runs, and those that
//! ended but whose end the coordinator has not yet acknowledged. A new session registers
//! with both, so a job's end survives a dropped session or a coordinator restart; the job's
//! Pod is deleted only once the end is acknowledged, so a restarted worker that finds the
//! Pod re-adopts the job and reports it again.

use std::collections::BTreeMap;
use std::sync::Mutex;

use flotilla_proto::JobEvent;

#[derive(Debug, Clone)]
enum Entry {
    Running,
    Ended(JobEvent),
}

#[derive(Debug, Default)]
pub struct JobBook {
    jobs: Mutex<BTreeMap<u64, Entry>>,
}

impl JobBook {
    /// Takes a job on; false if it is already here (a repeated assignment).
    pub fn start(&self, job_id: u64) -> bool {
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.contains_key(&job_id) {
            return false;
        }
        jobs.insert(job_id, Entry::Running);
        true
    }

    /// The job ended; `event` is its end as the coordinator must hear it.
    pub fn ended(&self, event: JobEvent) {
        self.jobs.lock().unwrap().insert(event.job_id, Entry::Ended(event));
    }

    /// The coordinator has the job's end: forget it. True if it had ended here.
    pub fn acknowledged(&self, job_id: u64) -> bool {
        let mut jobs = self.jobs.lock().unwrap();
        match jobs.get(&job_id) {
            Some(Entry::Ended(_)) => {
                jobs.remove(&job_id);
                true
            }
            _ => false,
        }
    }

    pub fn running(&self) -> Vec<u64> {
        let jobs = self.jobs.lock().unwrap();
        jobs.iter()
            .filter(|(_, entry)| matches!(entry, Entry::Running))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn unacknowledged(&self) -> Vec<JobEvent> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values()
            .filter_map(|entry| match entry {
                Entry::Ended(event) => Some(event.clone()),
                Entry::Running => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_held_until_its_end_is_acknowledged() {
        let book = JobBook::default();
        assert!(book.start(7));
        assert!(!book.start(7), "a repeated assignment is not run twice");
        assert_eq!(book.running(), [7]);
        assert!(!book.acknowledged(7), "a running job is not forgotten");
        book.ended(JobEvent { job_id: 7, event: None });
        assert!(book.running().is_empty());
        assert_eq!(book.unacknowledged().len(), 1);
        assert!(book.acknowledged(7));
        assert!(book.unacknowledged().is_empty());
        assert!(book.start(7), "forgotten");
    }
}
