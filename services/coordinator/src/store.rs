//! The job store: every job the coordinator has taken from GitLab, in sled on disk.
//!
//! On-disk format: tree `jobs`, key = job id as 8 big-endian bytes (so iteration is in id
//! order), value = the `JobRecord` as JSON. Invariants: a job is written (and flushed) before
//! anyone else hears of it; a job id is inserted at most once, so a job taken twice from
//! GitLab is never run twice; state changes are compare-and-swap, so two actors racing on
//! one job cannot both win.

use std::path::Path;

use crate::job::{JobRecord, TransitionError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job store: {0}")]
    Sled(#[from] sled::Error),
    #[error("job store: record of job {0} is corrupt: {1}")]
    Corrupt(u64, serde_json::Error),
    #[error("job {0} is already in the store")]
    AlreadyExists(u64),
    #[error("job {0} is not in the store")]
    NotFound(u64),
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct JobStore {
    db: sled::Db,
    jobs: sled::Tree,
    /// Operator decisions that outlive a restart (cordons, the overflow switch), by name.
    settings: sled::Tree,
}

/// Opens the database, waiting briefly while a store dropped a moment ago still holds its
/// lock: sled's background threads let go of it shortly after the last handle is gone.
fn open_db(dir: &Path) -> std::result::Result<sled::Db, sled::Error> {
    let mut attempts = 0;
    loop {
        match sled::open(dir) {
            Err(sled::Error::Io(error)) if attempts < 100 && error.to_string().contains("could not acquire lock") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn decode(id: u64, bytes: &[u8]) -> Result<JobRecord> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(id, e))
}

fn encode(record: &JobRecord) -> Vec<u8> {
    serde_json::to_vec(record).expect("a job record always serialises")
}

impl JobStore {
    pub fn open(dir: &Path) -> Result<JobStore> {
        let db = open_db(dir)?;
        let jobs = db.open_tree("jobs")?;
        let settings = db.open_tree("settings")?;
        Ok(JobStore { db, jobs, settings })
    }

    /// Keeps a setting (as JSON) durably.
    pub fn save_setting<T: serde::Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).expect("settings always serialise");
        self.settings.insert(name, bytes)?;
        self.db.flush()?;
        Ok(())
    }

    /// A setting saved earlier; None when there is none or it no longer reads (then the
    /// defaults apply, which is what a fresh coordinator would do).
    pub fn load_setting<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        let bytes = self.settings.get(name).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores a newly accepted job and flushes it to disk.
    pub fn insert(&self, record: &JobRecord) -> Result<()> {
        let swapped = self
            .jobs
            .compare_and_swap(key(record.id), None::<&[u8]>, Some(encode(record)))?;
        if swapped.is_err() {
            return Err(StoreError::AlreadyExists(record.id));
        }
        self.db.flush()?;
        Ok(())
    }

    pub fn get(&self, id: u64) -> Result<Option<JobRecord>> {
        self.jobs.get(key(id))?.map(|bytes| decode(id, &bytes)).transpose()
    }

    /// Applies a state change computed from the current record, retrying if another writer
    /// changed the record in between, and flushes it.
    pub fn update(
        &self,
        id: u64,
        mut change: impl FnMut(&JobRecord) -> std::result::Result<JobRecord, TransitionError>,
    ) -> Result<JobRecord> {
        loop {
            let current_bytes = self.jobs.get(key(id))?.ok_or(StoreError::NotFound(id))?;
            let current = decode(id, &current_bytes)?;
            let next = change(&current)?;
            let swapped = self
                .jobs
                .compare_and_swap(key(id), Some(current_bytes), Some(encode(&next)))?;
            if swapped.is_ok() {
                self.db.flush()?;
                return Ok(next);
            }
        }
    }

    /// Every job not yet `done`, in id order (what a restarted coordinator resumes).
    pub fn unfinished(&self) -> Result<Vec<JobRecord>> {
        self.all()?.into_iter().filter(|r| !r.state.is_done()).map(Ok).collect()
    }

    pub fn all(&self) -> Result<Vec<JobRecord>> {
        self.jobs
            .iter()
            .map(|entry| {
                let (k, v) = entry?;
                let id = u64::from_be_bytes(k.as_ref().try_into().unwrap_or_default());
                decode(id, &v)
            })
            .collect()
    }

    /// Forgets `done` jobs last updated before `cutoff_ms`.
    pub fn prune_done(&self, cutoff_ms: i64) -> Result<usize> {
        let mut removed = 0;
        for record in self.all()? {
            if record.state.is_done() && record.updated_at_ms < cutoff_ms {
                self.jobs.remove(key(record.id))?;
                removed += 1;
            }
        }
        self.db.flush()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = JobStore::open(dir.path()).unwrap();
            assert_eq!(store.load_setting::<Vec<String>>("operator"), None);
            store
                .save_setting("operator", &vec!["drain cluster-a".to_string()])
                .unwrap();
        }
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(
            store.load_setting::<Vec<String>>("operator"),
            Some(vec!["drain cluster-a".to_string()])
        );
    }
    use crate::job::{JobOutcome, JobState};

    fn assigned() -> JobState {
        JobState::Assigned {
            worker_id: "w1".into(),
            cluster: "a".into(),
        }
    }

    #[test]
    fn survives_a_reopen_and_lists_unfinished_jobs() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = JobStore::open(dir.path()).unwrap();
            store
                .insert(&JobRecord::accepted(1, "r", "{\"id\":1}".into(), 10))
                .unwrap();
            store
                .insert(&JobRecord::accepted(2, "r", "{\"id\":2}".into(), 10))
                .unwrap();
            store.update(1, |r| r.moved_to(assigned(), 11)).unwrap();
            store
                .update(2, |r| {
                    r.moved_to(
                        JobState::Finishing {
                            outcome: JobOutcome::success(),
                            worker_id: None,
                            cluster: None,
                        },
                        12,
                    )
                })
                .unwrap();
            store
                .update(2, |r| {
                    r.moved_to(
                        JobState::Done {
                            outcome: JobOutcome::success(),
                            cluster: None,
                        },
                        13,
                    )
                })
                .unwrap();
        }
        let store = JobStore::open(dir.path()).unwrap();
        let unfinished = store.unfinished().unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].id, 1);
        assert_eq!(unfinished[0].state, assigned());
        assert_eq!(unfinished[0].payload_json, "{\"id\":1}");
    }

    #[test]
    fn a_job_is_inserted_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        store.insert(&JobRecord::accepted(5, "r", "{}".into(), 1)).unwrap();
        assert!(matches!(
            store.insert(&JobRecord::accepted(5, "r", "{}".into(), 2)),
            Err(StoreError::AlreadyExists(5))
        ));
    }

    #[test]
    fn refused_transitions_leave_the_record_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        store.insert(&JobRecord::accepted(5, "r", "{}".into(), 1)).unwrap();
        let err = store.update(5, |r| {
            r.moved_to(
                JobState::Done {
                    outcome: JobOutcome::success(),
                    cluster: None,
                },
                2,
            )
        });
        assert!(matches!(err, Err(StoreError::Transition(_))));
        assert_eq!(store.get(5).unwrap().unwrap().state, JobState::Accepted);
        assert!(matches!(
            store.update(99, |r| r.moved_to(assigned(), 2)),
            Err(StoreError::NotFound(99))
        ));
    }

    #[test]
    fn prunes_old_done_jobs_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        for id in [1, 2] {
            store.insert(&JobRecord::accepted(id, "r", "{}".into(), 1)).unwrap();
        }
        store
            .update(1, |r| {
                r.moved_to(
                    JobState::Finishing {
                        outcome: JobOutcome::success(),
                        worker_id: None,
                        cluster: None,
                    },
                    2,
                )
            })
            .unwrap();
        store
            .update(1, |r| {
                r.moved_to(
                    JobState::Done {
                        outcome: JobOutcome::success(),
                        cluster: None,
                    },
                    3,
                )
            })
            .unwrap();
        assert_eq!(store.prune_done(100).unwrap(), 1);
        assert_eq!(store.all().unwrap().len(), 1);
    }
}
