//! Jobs and their logs: the state machine GitLab keeps per job (pending → running → finished, with
//! graceful/hard cancellation), the stored trace, what the runner reported, uploaded artifacts, and
//! the job queue's version used for long polling.
//!
//! Everything lives behind one mutex that is never held across an `.await`; changes are announced
//! on two `watch` channels: one ticks when the queue may have a new job for a runner (long polls
//! wake on it), the other on any change (tests and the summary wait on it).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use crate::error::{Result, SimError};
use crate::pipeline::{Expect, JobSpec};

/// GitLab's job statuses that matter to a runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Running,
    /// Graceful cancel requested; the runner is told through `Job-Status: canceling`.
    Canceling,
    Canceled,
    Success,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Canceling => "canceling",
            JobState::Canceled => "canceled",
            JobState::Success => "success",
            JobState::Failed => "failed",
        }
    }

    /// The job reached a final state.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Canceled | JobState::Success | JobState::Failed)
    }

    /// The job is on a runner: its token is valid and it may send traces and updates.
    pub fn is_executing(self) -> bool {
        matches!(self, JobState::Running | JobState::Canceling)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `PUT /jobs/:id` as received, with the status it was answered with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateRecord {
    pub state: Option<String>,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i64>,
    pub checksum: Option<String>,
    pub bytesize: Option<u64>,
    pub status: u16,
}

/// An uploaded artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub filename: String,
    pub artifact_type: String,
    pub artifact_format: String,
    pub expire_in: Option<String>,
    pub data: Bytes,
}

/// A job as the simulated GitLab keeps it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub spec: JobSpec,
    pub token: String,
    pub state: JobState,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i64>,
    pub trace: Vec<u8>,
    pub reported_checksum: Option<String>,
    pub reported_bytesize: Option<u64>,
    /// Whether the accepted final update's checksum/bytesize matched the stored trace.
    pub checksum_matched: Option<bool>,
    /// Authenticated `PATCH /trace` requests (any answer).
    pub patches: u32,
    /// Authenticated `PUT /jobs/:id` requests (any answer); details in `updates`.
    pub puts: u32,
    pub updates: Vec<UpdateRecord>,
    /// Final updates answered 202 because their checksum did not match (yet).
    pub deferred_finals: u32,
    /// Runner token that took the job.
    pub runner_token: Option<String>,
    pub artifacts: Vec<Artifact>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// `crc32:<8 hex>` of the stored trace, the format runners send in `output.checksum`.
    pub fn trace_checksum(&self) -> String {
        trace_checksum(&self.trace)
    }

    /// Puts the job into a final state.
    pub fn finish(&mut self, state: JobState) {
        debug_assert!(state.is_finished());
        self.state = state;
        self.finished_at = Some(Utc::now());
    }

    pub fn view(&self) -> JobView {
        JobView {
            id: self.id,
            name: self.spec.name.clone(),
            stage: self.spec.stage.clone(),
            state: self.state,
            failure_reason: self.failure_reason.clone(),
            exit_code: self.exit_code,
            trace: self.trace.clone(),
            reported_checksum: self.reported_checksum.clone(),
            reported_bytesize: self.reported_bytesize,
            checksum_matched: self.checksum_matched,
            patches: self.patches,
            puts: self.puts,
            updates: self.updates.clone(),
            expect: self.spec.expect,
            token: self.token.clone(),
            runner_token: self.runner_token.clone(),
            artifacts: self
                .artifacts
                .iter()
                .map(|a| (a.filename.clone(), a.data.len()))
                .collect(),
        }
    }
}

/// `crc32:%08x` over `bytes` (IEEE), as the official runner computes it.
pub fn trace_checksum(bytes: &[u8]) -> String {
    format!("crc32:{:08x}", crc32fast::hash(bytes))
}

/// A snapshot of a job for tests, the control API and the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub id: u64,
    pub name: String,
    pub stage: String,
    pub state: JobState,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i64>,
    pub trace: Vec<u8>,
    pub reported_checksum: Option<String>,
    pub reported_bytesize: Option<u64>,
    pub checksum_matched: Option<bool>,
    pub patches: u32,
    pub puts: u32,
    pub updates: Vec<UpdateRecord>,
    pub expect: Expect,
    /// The job token (valid only while the job executes).
    pub token: String,
    pub runner_token: Option<String>,
    /// Uploaded artifacts: file name and size.
    pub artifacts: Vec<(String, usize)>,
}

impl JobView {
    pub fn trace_text(&self) -> String {
        String::from_utf8_lossy(&self.trace).into_owned()
    }
}

/// The mutable part of the store.
pub struct Jobs {
    pub jobs: BTreeMap<u64, Job>,
    next_id: u64,
    /// Like GitLab's per-runner Redis queue value: a random string replaced whenever a runner
    /// may find a new job. One value serves every runner since every runner may take every job.
    queue_version: String,
    /// Requests currently held by long polling.
    pub held_polls: usize,
}

impl Jobs {
    pub fn queue_version(&self) -> &str {
        &self.queue_version
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Job> {
        self.jobs.get_mut(&id)
    }

    /// The first pending job whose dependencies have finished.
    pub fn next_runnable(&self) -> Option<u64> {
        self.jobs
            .values()
            .filter(|job| job.state == JobState::Pending)
            .find(|job| {
                job.spec.dependencies.iter().all(|dep| {
                    self.jobs
                        .values()
                        .filter(|j| &j.spec.name == dep)
                        .all(|j| j.state.is_finished())
                })
            })
            .map(|job| job.id)
    }

    /// Marks the next runnable job `running` for `runner_token` and returns a copy of it.
    pub fn assign_next(&mut self, runner_token: &str) -> Option<Job> {
        let id = self.next_runnable()?;
        let job = self.get_mut(id)?;
        job.state = JobState::Running;
        job.started_at = Some(Utc::now());
        job.runner_token = Some(runner_token.to_string());
        Some(job.clone())
    }

    /// The executing job that owns `token`, if any (for git and artifact downloads).
    pub fn executing_by_token(&self, token: &str) -> Option<&Job> {
        self.jobs.values().find(|j| j.state.is_executing() && j.token == token)
    }
}

/// All jobs plus change notifications.
pub struct Store {
    inner: Mutex<Jobs>,
    queue_tick: watch::Sender<u64>,
    changes: watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(1)
    }
}

impl Store {
    /// A store whose first job gets `first_id`.
    pub fn new(first_id: u64) -> Store {
        Store {
            inner: Mutex::new(Jobs {
                jobs: BTreeMap::new(),
                next_id: first_id,
                queue_version: new_queue_version(),
                held_polls: 0,
            }),
            queue_tick: watch::channel(0).0,
            changes: watch::channel(0).0,
        }
    }

    /// Locks the jobs for reading. Use [`Store::modify`] to change them.
    pub fn lock(&self) -> MutexGuard<'_, Jobs> {
        // A panic while holding the lock leaves consistent data (every change is one assignment
        // sequence without awaits), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the jobs and then tells every watcher something changed.
    pub fn modify<R>(&self, f: impl FnOnce(&mut Jobs) -> R) -> R {
        let result = f(&mut self.lock());
        self.changes.send_modify(|n| *n += 1);
        result
    }

    /// Replaces the queue version and wakes long polls. Call with the lock held, so a poller that
    /// subscribed under the lock cannot miss it.
    pub fn tick_queue(&self, jobs: &mut Jobs) {
        jobs.queue_version = new_queue_version();
        self.queue_tick.send_modify(|n| *n += 1);
    }

    pub fn subscribe_queue(&self) -> watch::Receiver<u64> {
        self.queue_tick.subscribe()
    }

    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Queues a job (pending); returns its id.
    pub fn enqueue(&self, spec: JobSpec) -> Result<u64> {
        spec.validate()?;
        self.modify(|jobs| {
            for dep in &spec.dependencies {
                if !jobs.jobs.values().any(|j| &j.spec.name == dep) {
                    return Err(SimError::InvalidJob {
                        name: spec.name.clone(),
                        reason: format!("dependency {dep:?} is not a known job"),
                    });
                }
            }
            let id = jobs.next_id;
            jobs.next_id += 1;
            jobs.jobs.insert(
                id,
                Job {
                    id,
                    spec,
                    token: new_job_token(),
                    state: JobState::Pending,
                    failure_reason: None,
                    exit_code: None,
                    trace: Vec::new(),
                    reported_checksum: None,
                    reported_bytesize: None,
                    checksum_matched: None,
                    patches: 0,
                    puts: 0,
                    updates: Vec::new(),
                    deferred_finals: 0,
                    runner_token: None,
                    artifacts: Vec::new(),
                    created_at: Utc::now(),
                    started_at: None,
                    finished_at: None,
                },
            );
            self.tick_queue(jobs);
            Ok(id)
        })
    }

    /// Hands the next runnable job to `runner_token`: it is `running` from now on (legacy flow,
    /// no two-phase commit). Returns a copy for building the payload.
    pub fn assign_next(&self, runner_token: &str) -> Option<Job> {
        self.modify(|jobs| jobs.assign_next(runner_token))
    }

    /// Cancels a job. Graceful: a running job becomes `canceling` and finishes as `canceled` on
    /// the runner's final update. Hard (or a job no runner has): `canceled` at once.
    pub fn cancel(&self, id: u64, graceful: bool) -> Result<JobState> {
        self.modify(|jobs| {
            let job = jobs.get_mut(id).ok_or(SimError::NoSuchJob(id))?;
            match job.state {
                state if state.is_finished() => return Err(SimError::AlreadyFinished { id, state }),
                JobState::Running if graceful => job.state = JobState::Canceling,
                JobState::Canceling if graceful => {}
                _ => job.finish(JobState::Canceled),
            }
            let state = job.state;
            if state.is_finished() {
                // Jobs depending on this one may now be runnable.
                self.tick_queue(jobs);
            }
            Ok(state)
        })
    }

    pub fn view(&self, id: u64) -> Option<JobView> {
        self.lock().jobs.get(&id).map(Job::view)
    }

    pub fn views(&self) -> Vec<JobView> {
        self.lock().jobs.values().map(Job::view).collect()
    }

    fn all_finished(&self) -> bool {
        self.lock().jobs.values().all(|j| j.state.is_finished())
    }

    /// Resolves once every job has finished (at once when there is none).
    pub async fn wait_all_finished(&self) {
        let mut changes = self.subscribe_changes();
        // Subscribing before checking means a change between the check and the wait is seen.
        while !self.all_finished() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Resolves once some job is not finished (used to print a summary again after new jobs).
    pub async fn wait_some_unfinished(&self) {
        let mut changes = self.subscribe_changes();
        while self.all_finished() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Resolves once at least `n` job requests are held by long polling.
    pub async fn wait_held_polls(&self, n: usize) {
        let mut changes = self.subscribe_changes();
        while self.lock().held_polls < n {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A 32-hex-character random value, like GitLab's queue values.
fn new_queue_version() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Random alphanumeric characters (for tokens).
pub fn random_alnum(len: usize) -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A fresh job token in modern GitLab's shape.
fn new_job_token() -> String {
    format!("glcbt-{}", random_alnum(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_handed_out_in_order_once() {
        let store = Store::new(10);
        let a = store.enqueue(JobSpec::new("a", ["true"])).unwrap();
        let b = store.enqueue(JobSpec::new("b", ["true"])).unwrap();
        assert_eq!((a, b), (10, 11));
        let first = store.assign_next("r1").unwrap();
        assert_eq!(first.id, a);
        assert_eq!(first.state, JobState::Running);
        assert!(first.token.starts_with("glcbt-"));
        assert_eq!(store.assign_next("r2").unwrap().id, b);
        assert!(store.assign_next("r1").is_none());
        assert_ne!(store.view(a).unwrap().token, store.view(b).unwrap().token);
    }

    #[test]
    fn enqueue_changes_the_queue_version() {
        let store = Store::default();
        let before = store.lock().queue_version().to_string();
        assert_eq!(before.len(), 32);
        store.enqueue(JobSpec::new("a", ["true"])).unwrap();
        assert_ne!(store.lock().queue_version(), before);
    }

    #[test]
    fn dependencies_hold_a_job_back_until_they_finish() {
        let store = Store::default();
        let build = store.enqueue(JobSpec::new("build", ["true"])).unwrap();
        let mut test = JobSpec::new("test", ["true"]);
        test.dependencies = vec!["build".into()];
        let test = store.enqueue(test).unwrap();
        assert_eq!(store.assign_next("r").unwrap().id, build);
        assert!(store.assign_next("r").is_none(), "build is still running");
        store.modify(|jobs| jobs.get_mut(build).unwrap().finish(JobState::Success));
        assert_eq!(store.assign_next("r").unwrap().id, test);

        let mut orphan = JobSpec::new("x", ["true"]);
        orphan.dependencies = vec!["nope".into()];
        assert!(store.enqueue(orphan).is_err());
    }

    #[test]
    fn cancel_semantics() {
        let store = Store::default();
        let pending = store.enqueue(JobSpec::new("p", ["true"])).unwrap();
        assert_eq!(
            store.cancel(pending, true).unwrap(),
            JobState::Canceled,
            "no runner to tell"
        );
        let running = store.enqueue(JobSpec::new("r", ["true"])).unwrap();
        store.assign_next("r").unwrap();
        assert_eq!(store.cancel(running, true).unwrap(), JobState::Canceling);
        assert_eq!(store.cancel(running, false).unwrap(), JobState::Canceled);
        assert!(matches!(
            store.cancel(running, false),
            Err(SimError::AlreadyFinished { .. })
        ));
        assert!(matches!(store.cancel(999, true), Err(SimError::NoSuchJob(999))));
    }

    #[tokio::test]
    async fn wait_all_finished_is_woken_by_the_last_finish() {
        let store = std::sync::Arc::new(Store::default());
        store.wait_all_finished().await; // no jobs: at once
        let id = store.enqueue(JobSpec::new("a", ["true"])).unwrap();
        let waiter = tokio::spawn({
            let store = store.clone();
            async move { store.wait_all_finished().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        store.cancel(id, false).unwrap();
        waiter.await.unwrap();
    }

    #[test]
    fn checksum_format() {
        assert_eq!(trace_checksum(b""), "crc32:00000000");
        assert_eq!(trace_checksum(b"hello"), "crc32:3610a686");
    }
}
