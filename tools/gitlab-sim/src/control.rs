//! The test and demo control API under `/sim` (not part of GitLab):
//!
//! | Route | What |
//! |---|---|
//! | `GET /sim/info` | URL, project, pipeline, commit, runner tokens, held long polls |
//! | `GET /sim/jobs` | every job (as below) |
//! | `POST /sim/jobs` | queue a job: body is a [`JobSpec`] as JSON → 201 `{"id": N}` |
//! | `GET /sim/jobs/:id` | state, failure_reason, exit_code, trace (text), reported checksum/bytesize, PATCH/PUT counts |
//! | `GET /sim/jobs/:id/trace` | the raw trace bytes |
//! | `POST /sim/jobs/:id/cancel` | body `{"graceful": bool}` (default true) → `{"id", "state"}` |
//! | `GET /sim/summary` | the summary as JSON (same as `--state-file`) |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::api::{json_body, message, App};
use crate::error::SimError;
use crate::pipeline::JobSpec;
use crate::state::{trace_checksum, JobView};
use crate::summary::Summary;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/sim/info", get(info))
        .route("/sim/jobs", get(list).post(add))
        .route("/sim/jobs/{id}", get(show))
        .route("/sim/jobs/{id}/trace", get(trace))
        .route("/sim/jobs/{id}/cancel", post(cancel))
        .route("/sim/summary", get(summary))
}

/// A job as the control API shows it.
pub fn job_json(view: &JobView) -> Value {
    json!({
        "id": view.id,
        "name": view.name,
        "stage": view.stage,
        "state": view.state,
        "failure_reason": view.failure_reason,
        "exit_code": view.exit_code,
        "trace": view.trace_text(),
        "trace_bytes": view.trace.len(),
        "trace_checksum": trace_checksum(&view.trace),
        "reported_checksum": view.reported_checksum,
        "reported_bytesize": view.reported_bytesize,
        "checksum_matched": view.checksum_matched,
        "patches": view.patches,
        "puts": view.puts,
        "updates": view.updates,
        "expect": view.expect,
        "token": view.token,
        "artifacts": view.artifacts.iter().map(|(f, s)| json!({"filename": f, "size": s})).collect::<Vec<_>>(),
    })
}

fn parse_id(id: &str) -> Option<u64> {
    id.parse().ok()
}

async fn info(State(app): State<Arc<App>>) -> Response {
    let p = &app.project;
    Json(json!({
        "url": p.server_url,
        "project": p.path,
        "project_id": p.id,
        "pipeline_id": p.pipeline_id,
        "sha": p.repository.sha,
        "ref": p.repository.branch,
        "runner_tokens": app.runners.tokens(),
        "held_polls": app.store.lock().held_polls,
    }))
    .into_response()
}

async fn list(State(app): State<Arc<App>>) -> Response {
    Json(app.store.views().iter().map(job_json).collect::<Vec<_>>()).into_response()
}

async fn add(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let value = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let spec: JobSpec = match serde_json::from_value(value) {
        Ok(spec) => spec,
        Err(err) => return message(StatusCode::BAD_REQUEST, &format!("invalid job: {err}")),
    };
    match app.store.enqueue(spec) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(err) => message(StatusCode::BAD_REQUEST, &err.to_string()),
    }
}

async fn show(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match parse_id(&id).and_then(|id| app.store.view(id)) {
        Some(view) => Json(job_json(&view)).into_response(),
        None => message(StatusCode::NOT_FOUND, "404 Job Not Found"),
    }
}

async fn trace(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match parse_id(&id).and_then(|id| app.store.view(id)) {
        Some(view) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], view.trace).into_response(),
        None => message(StatusCode::NOT_FOUND, "404 Job Not Found"),
    }
}

async fn cancel(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Response {
    let graceful = match json_body(&body) {
        Ok(v) => v.get("graceful").and_then(Value::as_bool).unwrap_or(true),
        Err(r) => return r,
    };
    let Some(id) = parse_id(&id) else {
        return message(StatusCode::NOT_FOUND, "404 Job Not Found");
    };
    match app.store.cancel(id, graceful) {
        Ok(state) => Json(json!({"id": id, "state": state})).into_response(),
        Err(err @ SimError::NoSuchJob(_)) => message(StatusCode::NOT_FOUND, &err.to_string()),
        Err(err) => message(StatusCode::CONFLICT, &err.to_string()),
    }
}

async fn summary(State(app): State<Arc<App>>) -> Response {
    Json(Summary::from_views(&app.store.views())).into_response()
}
