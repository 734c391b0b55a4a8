//! `PUT /jobs/:id` (reference §4): report a job's state (acceptance touch, keep-alive, final).

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{error_message, headers, Call, RunnerClient};
use crate::error::GitlabError;
use crate::failure::FailureReason;
use crate::info::VersionInfo;
use crate::secret::Secret;

const ENDPOINT: &str = "PUT jobs/:id";

/// The `state` of a job update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Two-phase-commit keep-alive; unused while we do not advertise `two_phase_job_commit`.
    Pending,
    /// Acceptance touch and keep-alive.
    Running,
    /// Final: the job succeeded.
    Success,
    /// Final: the job failed (with a `failure_reason`).
    Failed,
}

impl JobState {
    /// Whether this state ends the job.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Success | JobState::Failed)
    }
}

/// The `output` object: what we have sent of the log. Each member is omitted when empty/0, so
/// the default is the `{}` of the acceptance touch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceOutput {
    /// `crc32:%08x` of the whole log (see [`crate::TraceChecksum`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Byte length of the whole log.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytesize: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// A job update to send.
#[derive(Clone, Debug, PartialEq)]
pub struct JobUpdate {
    /// New state.
    pub state: JobState,
    /// Why it failed; sent only with [`JobState::Failed`]. Map it first with
    /// [`crate::types::JobFeatures::map_failure_reason`].
    pub failure_reason: Option<FailureReason>,
    /// Exit code of the failed script; omitted when `None` or 0.
    pub exit_code: Option<i32>,
    /// Log checksum and size.
    pub output: TraceOutput,
    /// The runner's `info` (GitLab ignores it here; the official runner sends it anyway).
    pub info: Option<VersionInfo>,
    /// Echo of `suspend_options.runtime_environment_key`.
    pub runtime_environment_key: Option<String>,
}

impl JobUpdate {
    fn new(state: JobState, output: TraceOutput) -> Self {
        Self {
            state,
            failure_reason: None,
            exit_code: None,
            output,
            info: None,
            runtime_environment_key: None,
        }
    }

    /// `state: running` (acceptance touch with an empty output, or keep-alive).
    pub fn running(output: TraceOutput) -> Self {
        Self::new(JobState::Running, output)
    }

    /// Final `state: success`.
    pub fn success(output: TraceOutput) -> Self {
        Self::new(JobState::Success, output)
    }

    /// Final `state: failed`.
    pub fn failed(reason: FailureReason, exit_code: Option<i32>, output: TraceOutput) -> Self {
        Self {
            failure_reason: Some(reason),
            exit_code,
            ..Self::new(JobState::Failed, output)
        }
    }

    /// Adds the runner's `info`.
    pub fn with_info(mut self, info: VersionInfo) -> Self {
        self.info = Some(info);
        self
    }
}

/// The wire body; the rules of which members appear live here.
#[derive(Serialize)]
struct UpdateBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<&'a VersionInfo>,
    token: &'a str,
    state: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<FailureReason>,
    /// Deprecated duplicate of `output.checksum`, still sent by the official runner.
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<&'a str>,
    output: &'a TraceOutput,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime_environment_key: Option<&'a str>,
}

impl<'a> UpdateBody<'a> {
    fn new(token: &'a Secret, update: &'a JobUpdate) -> Self {
        Self {
            info: update.info.as_ref(),
            token: token.expose(),
            state: update.state,
            failure_reason: update.failure_reason.filter(|_| update.state == JobState::Failed),
            checksum: update.output.checksum.as_deref().filter(|c| !c.is_empty()),
            output: &update.output,
            exit_code: update.exit_code.filter(|&c| c != 0),
            runtime_environment_key: update.runtime_environment_key.as_deref().filter(|k| !k.is_empty()),
        }
    }
}

/// How GitLab took a job update (reference §4.2), classified like the official runner does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// `200`: applied.
    Accepted,
    /// `202`: a final state was received but GitLab is still persisting log chunks; send the
    /// same update again after `retry_after` (GitLab's backoff; `None`: use the default 3 s).
    AcceptedNotCompleted {
        /// `X-GitLab-Trace-Update-Interval`.
        retry_after: Option<Duration>,
    },
    /// `200`/`202` with `Job-Status: canceling`: the user canceled; stop the script, run
    /// `after_script`, then finish the job. `completed` is false for a `202` (re-send it).
    CancelRequested {
        /// Whether the update itself was applied (200) or must be re-sent (202).
        completed: bool,
        /// `X-GitLab-Trace-Update-Interval`, if any.
        retry_after: Option<Duration>,
    },
    /// `412`: GitLab's log does not match our checksum: re-send the whole log from offset 0,
    /// then this update (the `trace_reset` feature; current GitLab does not emit it).
    TraceResetRequested,
    /// The job is over server-side (`Job-Status: canceled`/`failed`, checked first; or 403/404):
    /// stop everything quietly. A final `failed` update that GitLab applied also comes back as
    /// 200 + `Job-Status: failed` and lands here, which is harmless: the job is done either way.
    Abort {
        /// HTTP status.
        status: u16,
        /// `Job-Status`, if sent.
        job_status: Option<String>,
    },
    /// Anything else (400, 409, 5xx/429 after the retry layer): try again later.
    Failed {
        /// HTTP status.
        status: u16,
        /// GitLab's message.
        message: String,
    },
}

impl RunnerClient {
    /// Sends a job update with `JOB-TOKEN` and the token in the body.
    ///
    /// Transport errors are returned as [`GitlabError::Transport`]; the official runner treats
    /// them as `Abort` for updates, callers may prefer to retry.
    pub async fn update_job(
        &self,
        job_id: u64,
        job_token: &Secret,
        update: &JobUpdate,
    ) -> Result<UpdateOutcome, GitlabError> {
        let call = Call::new(ENDPOINT, Method::PUT, format!("jobs/{job_id}"))
            .json(&UpdateBody::new(job_token, update))?
            .job_token(job_token)?;
        let response = self.send(call).await?;
        let status = response.status().as_u16();
        let job_status = headers::job_status(response.headers());
        let interval = headers::update_interval(response.headers());
        let outcome = match (status, job_status.as_deref()) {
            (_, Some("canceled" | "failed")) | (403 | 404, _) => UpdateOutcome::Abort { status, job_status },
            (200 | 202, Some("canceling")) => UpdateOutcome::CancelRequested {
                completed: status == 200,
                retry_after: interval,
            },
            (200, _) => UpdateOutcome::Accepted,
            (202, _) => UpdateOutcome::AcceptedNotCompleted { retry_after: interval },
            (412, _) => UpdateOutcome::TraceResetRequested,
            _ => UpdateOutcome::Failed {
                status,
                message: error_message(response).await,
            },
        };
        tracing::debug!(job = job_id, state = ?update.state, ?outcome, "job updated");
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(update: &JobUpdate) -> serde_json::Value {
        serde_json::to_value(UpdateBody::new(&Secret::new("jobtok"), update)).unwrap()
    }

    #[test]
    fn acceptance_touch_has_empty_output() {
        assert_eq!(
            body(&JobUpdate::running(TraceOutput::default())),
            json!({"token": "jobtok", "state": "running", "output": {}})
        );
    }

    #[test]
    fn final_failure_body() {
        let u = JobUpdate::failed(
            FailureReason::ScriptFailure,
            Some(2),
            TraceOutput {
                checksum: Some("crc32:1a2b3c4d".into()),
                bytesize: 5120,
            },
        );
        assert_eq!(
            body(&u),
            json!({"token": "jobtok", "state": "failed", "failure_reason": "script_failure",
                   "checksum": "crc32:1a2b3c4d", "output": {"checksum": "crc32:1a2b3c4d", "bytesize": 5120},
                   "exit_code": 2})
        );
    }

    #[test]
    fn failure_reason_only_with_failed_and_exit_code_zero_omitted() {
        let mut u = JobUpdate::success(TraceOutput::default());
        u.failure_reason = Some(FailureReason::ScriptFailure);
        u.exit_code = Some(0);
        let b = body(&u);
        assert!(b.get("failure_reason").is_none());
        assert!(b.get("exit_code").is_none());
        let f = JobUpdate::failed(FailureReason::RunnerSystemFailure, Some(0), TraceOutput::default());
        let b = body(&f);
        assert_eq!(b["failure_reason"], "runner_system_failure");
        assert!(b.get("exit_code").is_none());
    }

    #[test]
    fn info_is_included_when_set() {
        let u = JobUpdate::running(TraceOutput::default()).with_info(VersionInfo::flotilla());
        assert_eq!(body(&u)["info"]["executor"], "kubernetes");
    }

    #[test]
    fn debug_has_no_token() {
        // JobUpdate does not even hold the token; the body that does is not Debug.
        let u = JobUpdate::running(TraceOutput::default());
        assert!(!format!("{u:?}").contains("jobtok"));
    }
}
