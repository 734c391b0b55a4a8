//! `PUT /api/v4/jobs/:id`: the runner reports a job's state (touch, success, failed).
//!
//! Answers as GitLab does: 403 + `Job-Status` once the job is not executing; 200 + `Job-Status`
//! for a touch or an accepted final state (a `canceling` job becomes `canceled` whatever the
//! runner reports); 202 + `X-GitLab-Trace-Update-Interval` for a final state whose checksum or
//! size does not match the stored trace — GitLab's "accepted but not completed" while it is still
//! persisting trace chunks — a configured number of times, after which it is accepted anyway and
//! recorded as a mismatch.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use super::{authenticated_job, job_token, json_body, status_body, with_job_status, App};
use crate::payload::FAILURE_REASONS;
use crate::state::{Job, JobState, UpdateRecord};

/// Backoff GitLab asks for on 202 (seconds); it grows with age there, a constant keeps tests fast.
const FINAL_UPDATE_BACKOFF: u32 = 1;

/// The fields of a PUT body the simulator looks at (everything else is tolerated and ignored).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateRequest {
    pub state: Option<String>,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i64>,
    pub checksum: Option<String>,
    pub bytesize: Option<u64>,
}

impl UpdateRequest {
    pub fn from_json(body: &Value) -> UpdateRequest {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let output = body.get("output");
        UpdateRequest {
            state: text(body.get("state")).filter(|s| !s.is_empty()),
            failure_reason: text(body.get("failure_reason")).filter(|s| !s.is_empty()),
            exit_code: body.get("exit_code").and_then(Value::as_i64),
            // `checksum` at the top level is the deprecated duplicate of `output.checksum`.
            checksum: text(output.and_then(|o| o.get("checksum"))).or_else(|| text(body.get("checksum"))),
            bytesize: output.and_then(|o| o.get("bytesize")).and_then(Value::as_u64),
        }
    }
}

/// How a PUT is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub job_status: JobState,
    pub update_interval: Option<u32>,
}

pub async fn update_job(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let token = job_token(&headers, &uri, body.get("token").and_then(Value::as_str));
    let request = UpdateRequest::from_json(&body);
    let retries = app.settings.checksum_retries;
    app.store.modify(|jobs| {
        let job = match authenticated_job(jobs, &id, token.as_deref()) {
            Ok(job) => job,
            Err(response) => return response,
        };
        let answer = apply_update(job, &request, retries);
        if answer.job_status.is_finished() && answer.status == StatusCode::OK {
            tracing::info!(job = job.id, state = %job.state, "job finished");
            // Jobs depending on this one may now be runnable.
            app.store.tick_queue(jobs);
        }
        let mut response = with_job_status(status_body(answer.status), answer.job_status);
        if let Some(interval) = answer.update_interval {
            response
                .headers_mut()
                .insert("x-gitlab-trace-update-interval", HeaderValue::from(interval));
        }
        response
    })
}

/// Applies one PUT to `job` and records it.
pub fn apply_update(job: &mut Job, request: &UpdateRequest, checksum_retries: u32) -> Answer {
    job.puts += 1;
    let answer = decide(job, request, checksum_retries);
    job.updates.push(UpdateRecord {
        state: request.state.clone(),
        failure_reason: request.failure_reason.clone(),
        exit_code: request.exit_code,
        checksum: request.checksum.clone(),
        bytesize: request.bytesize,
        status: answer.status.as_u16(),
    });
    answer
}

fn decide(job: &mut Job, request: &UpdateRequest, checksum_retries: u32) -> Answer {
    let answer = |status, job: &Job| Answer {
        status,
        job_status: job.state,
        update_interval: None,
    };
    if !job.state.is_executing() {
        return answer(StatusCode::FORBIDDEN, job);
    }
    if request.checksum.is_some() {
        job.reported_checksum = request.checksum.clone();
    }
    if request.bytesize.is_some() {
        job.reported_bytesize = request.bytesize;
    }
    let requested = match request.state.as_deref() {
        None | Some("running") => return answer(StatusCode::OK, job),
        Some("success") => JobState::Success,
        Some("failed") => JobState::Failed,
        // `pending` is a two-phase-commit keep-alive, which this legacy-flow GitLab rejects.
        Some(_) => return answer(StatusCode::BAD_REQUEST, job),
    };

    let checked = request.checksum.is_some() || request.bytesize.is_some();
    let matched = request.checksum.as_ref().is_none_or(|c| *c == job.trace_checksum())
        && request.bytesize.is_none_or(|b| b == job.trace.len() as u64);
    if checked && !matched && job.deferred_finals < checksum_retries {
        job.deferred_finals += 1;
        return Answer {
            status: StatusCode::ACCEPTED,
            job_status: job.state,
            update_interval: Some(FINAL_UPDATE_BACKOFF),
        };
    }
    job.checksum_matched = checked.then_some(matched);
    job.exit_code = request.exit_code;
    if requested == JobState::Failed {
        let reason = request.failure_reason.as_deref().unwrap_or("unknown_failure");
        let known = FAILURE_REASONS.contains(&reason);
        job.failure_reason = Some(if known { reason } else { "unknown_failure" }.to_string());
    }
    let final_state = if job.state == JobState::Canceling {
        JobState::Canceled
    } else {
        requested
    };
    job.finish(final_state);
    answer(StatusCode::OK, job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::JobSpec;
    use crate::state::{trace_checksum, Store};

    fn running_job() -> Job {
        let store = Store::default();
        store.enqueue(JobSpec::new("j", ["true"])).unwrap();
        store.assign_next("r").unwrap()
    }

    fn put(state: &str) -> UpdateRequest {
        UpdateRequest {
            state: Some(state.into()),
            ..UpdateRequest::default()
        }
    }

    #[test]
    fn parses_the_official_runner_body() {
        let body = serde_json::json!({
            "info": {"features": {"cancelable": true}}, "token": "t", "state": "failed",
            "failure_reason": "script_failure", "checksum": "crc32:1a2b3c4d",
            "output": {"checksum": "crc32:1a2b3c4d", "bytesize": 5120}, "exit_code": 2,
            "runtime_environment_key": "k", "unknown": [1]
        });
        let req = UpdateRequest::from_json(&body);
        assert_eq!(req.state.as_deref(), Some("failed"));
        assert_eq!(req.exit_code, Some(2));
        assert_eq!(req.checksum.as_deref(), Some("crc32:1a2b3c4d"));
        assert_eq!(req.bytesize, Some(5120));
    }

    #[test]
    fn touch_then_success() {
        let mut job = running_job();
        let a = apply_update(&mut job, &put("running"), 2);
        assert_eq!((a.status, a.job_status), (StatusCode::OK, JobState::Running));
        let a = apply_update(&mut job, &put("success"), 2);
        assert_eq!((a.status, a.job_status), (StatusCode::OK, JobState::Success));
        assert_eq!(job.checksum_matched, None, "nothing reported");
        let a = apply_update(&mut job, &put("running"), 2);
        assert_eq!((a.status, a.job_status), (StatusCode::FORBIDDEN, JobState::Success));
        assert_eq!(job.puts, 3);
        assert_eq!(
            job.updates.iter().map(|u| u.status).collect::<Vec<_>>(),
            [200, 200, 403]
        );
    }

    #[test]
    fn failure_reasons_are_normalised_and_pending_is_refused() {
        let mut job = running_job();
        assert_eq!(
            apply_update(&mut job, &put("pending"), 0).status,
            StatusCode::BAD_REQUEST
        );
        let mut req = put("failed");
        req.failure_reason = Some("job_canceled".into());
        req.exit_code = Some(3);
        apply_update(&mut job, &req, 0);
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.failure_reason.as_deref(), Some("unknown_failure"));
        assert_eq!(job.exit_code, Some(3));
    }

    #[test]
    fn mismatching_checksum_is_deferred_then_accepted() {
        let mut job = running_job();
        job.trace = b"hello".to_vec();
        let mut req = put("success");
        req.checksum = Some("crc32:00000000".into());
        req.bytesize = Some(5);
        for _ in 0..2 {
            let a = apply_update(&mut job, &req, 2);
            assert_eq!((a.status, a.update_interval), (StatusCode::ACCEPTED, Some(1)));
            assert_eq!(job.state, JobState::Running);
        }
        assert_eq!(apply_update(&mut job, &req, 2).status, StatusCode::OK);
        assert_eq!(job.checksum_matched, Some(false));

        let mut job = running_job();
        job.trace = b"hello".to_vec();
        req.checksum = Some(trace_checksum(b"hello"));
        assert_eq!(apply_update(&mut job, &req, 2).status, StatusCode::OK);
        assert_eq!(job.checksum_matched, Some(true));
    }

    #[test]
    fn canceling_job_ends_canceled() {
        let mut job = running_job();
        job.state = JobState::Canceling;
        let a = apply_update(&mut job, &put("running"), 0);
        assert_eq!((a.status, a.job_status), (StatusCode::OK, JobState::Canceling));
        let a = apply_update(&mut job, &put("failed"), 0);
        assert_eq!((a.status, a.job_status), (StatusCode::OK, JobState::Canceled));
    }
}
