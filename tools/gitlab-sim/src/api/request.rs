//! `POST /api/v4/jobs/request`: a runner asks for a job.
//!
//! Order of checks as in GitLab: authenticate the body `token` (403), then hand out the next
//! runnable job (201, the job is `running` from now on), else answer 204 with
//! `X-GitLab-Last-Update`. A request whose `last_update` equals the current queue version is held
//! like Workhorse holds it: it ends with a 204 carrying `Gitlab-Ci-Builds-Polling: yes` and no
//! `X-GitLab-Last-Update` as soon as the queue changes or the long-poll timer fires; the runner
//! then polls again with its old value and reaches the job.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::{empty, json_body, message, App};
use crate::payload::{job_payload, Dependency};
use crate::state::{Job, Jobs};

/// What the request gets, decided under the store's lock.
enum Outcome {
    Job(Box<Job>, Vec<Dependency>),
    Idle(String),
    Hold(watch::Receiver<u64>),
}

pub async fn request_job(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(token) = body.get("token").and_then(Value::as_str) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "token is missing"}))).into_response();
    };
    // Authenticating also records the runner manager (`system_id`), as GitLab does.
    let system_id = body.get("system_id").and_then(Value::as_str);
    if app.runners.authenticate(token, system_id).is_none() {
        return message(StatusCode::FORBIDDEN, "403 Forbidden");
    }
    let last_update = body.get("last_update").and_then(Value::as_str);
    let hold = !app.settings.long_poll.is_zero();

    let outcome = app.store.modify(|jobs| {
        if let Some(job) = jobs.assign_next(token) {
            let deps = dependencies(jobs, &job);
            return Outcome::Job(Box::new(job), deps);
        }
        let version = jobs.queue_version().to_string();
        if hold && last_update == Some(version.as_str()) {
            jobs.held_polls += 1;
            // Subscribed under the lock: an enqueue after this check cannot be missed.
            return Outcome::Hold(app.store.subscribe_queue());
        }
        Outcome::Idle(version)
    });

    match outcome {
        Outcome::Job(job, deps) => {
            tracing::info!(job = job.id, name = %job.spec.name, "job handed to a runner");
            let payload = job_payload(&app.project, &job, &deps);
            (StatusCode::CREATED, Json(payload)).into_response()
        }
        Outcome::Idle(version) => {
            let mut response = empty(StatusCode::NO_CONTENT);
            if let Ok(value) = HeaderValue::from_str(&version) {
                response.headers_mut().insert("x-gitlab-last-update", value);
            }
            response
        }
        Outcome::Hold(mut queue) => {
            let _held = HeldPoll(&app);
            let mut shutdown = app.shutdown.clone();
            tokio::select! {
                _ = queue.changed() => {}
                _ = tokio::time::sleep(app.settings.long_poll) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
            let mut response = empty(StatusCode::NO_CONTENT);
            response
                .headers_mut()
                .insert("gitlab-ci-builds-polling", HeaderValue::from_static("yes"));
            response
        }
    }
}

/// Counts a held request down when it ends (also when the client goes away mid-hold).
struct HeldPoll<'a>(&'a App);

impl Drop for HeldPoll<'_> {
    fn drop(&mut self) {
        self.0.store.modify(|jobs| jobs.held_polls -= 1);
    }
}

/// The job's dependencies (latest job of each name) and their archive artifacts.
fn dependencies(jobs: &Jobs, job: &Job) -> Vec<Dependency> {
    job.spec
        .dependencies
        .iter()
        .filter_map(|name| jobs.jobs.values().rev().find(|j| &j.spec.name == name))
        .map(|dep| Dependency {
            id: dep.id,
            name: dep.spec.name.clone(),
            artifacts_file: dep
                .artifacts
                .iter()
                .find(|a| a.artifact_type == "archive")
                .map(|a| (a.filename.clone(), a.data.len())),
        })
        .collect()
}
