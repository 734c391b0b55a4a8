//! The HTTP surface: GitLab's runner API under `/api/v4`, the git repository under
//! `/<project>.git/`, and the test control API under `/sim`. This module wires the routes and holds
//! the helpers every handler shares (error bodies, token lookup, `Job-Status` answers).

pub mod artifacts;
pub mod git;
pub mod request;
pub mod runners;
pub mod trace;
pub mod update;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::payload::Project;
use crate::runners::Runners;
use crate::state::{Job, JobState, Jobs, Store};

/// Protocol knobs (from [`crate::SimConfig`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a job request whose `last_update` is current is held (0: not at all).
    pub long_poll: Duration,
    /// `X-GitLab-Trace-Update-Interval` on trace PATCH answers.
    pub trace_update_interval: u32,
    /// How many times a final update with a mismatching checksum is answered 202 before it is
    /// accepted anyway.
    pub checksum_retries: u32,
    /// Largest accepted artifact upload, bytes (413 above).
    pub max_artifact_size: usize,
}

/// Everything the handlers share.
pub struct App {
    pub store: Arc<Store>,
    pub runners: Runners,
    pub project: Project,
    pub settings: Settings,
    /// Becomes true when the server stops; held long polls end at once.
    pub shutdown: watch::Receiver<bool>,
}

/// The complete router.
pub fn router(app: Arc<App>) -> Router {
    let body_limit = app.settings.max_artifact_size + (1 << 20);
    Router::new()
        .route("/api/v4/jobs/request", post(request::request_job))
        .route("/api/v4/jobs/{id}", put(update::update_job))
        .route("/api/v4/jobs/{id}/trace", axum::routing::patch(trace::append_trace))
        .route(
            "/api/v4/jobs/{id}/artifacts",
            post(artifacts::upload).get(artifacts::download),
        )
        .route("/api/v4/runners", post(runners::register).delete(runners::unregister))
        .route("/api/v4/runners/verify", post(runners::verify))
        .route(
            "/api/v4/runners/managers",
            axum::routing::delete(runners::unregister_manager),
        )
        .route("/api/v4/runners/reset_authentication_token", post(runners::reset_token))
        .merge(crate::control::routes())
        .fallback(git::serve_or_not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(request_id))
        .with_state(app)
}

/// GitLab answers every request with an `X-Request-Id`; echo the runner's when it sent one.
async fn request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string()).expect("hex"));
    let mut response = next.run(request).await;
    response.headers_mut().insert("x-request-id", id);
    response
}

/// A GitLab-style JSON error: `{"message": "..."}`.
pub fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// Adds `Job-Status: <state>` to a response.
pub fn with_job_status(mut response: Response, state: JobState) -> Response {
    response
        .headers_mut()
        .insert("job-status", HeaderValue::from_static(state.as_str()));
    response
}

/// 403 for a job that exists but is not executing: the runner aborts on it.
pub fn not_executing(state: JobState) -> Response {
    with_job_status(
        message(StatusCode::FORBIDDEN, "403 Forbidden - Job is not processing on runner"),
        state,
    )
}

/// A plain-text body holding the status code, as GitLab answers PUT and uploads.
pub fn status_body(status: StatusCode) -> Response {
    (status, status.as_u16().to_string()).into_response()
}

/// A query parameter (percent-decoded).
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The job token of a request: the `token` parameter wins over the `JOB-TOKEN` header, as in
/// GitLab.
pub fn job_token(headers: &HeaderMap, uri: &Uri, body_token: Option<&str>) -> Option<String> {
    body_token
        .map(str::to_string)
        .or_else(|| query_param(uri, "token"))
        .or_else(|| {
            headers
                .get("job-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
}

/// Finds job `id` and checks its token; 403 without `Job-Status` otherwise (GitLab does not
/// reveal anything about jobs the caller cannot prove to own).
#[allow(clippy::result_large_err)]
pub fn authenticated_job<'a>(jobs: &'a mut Jobs, id: &str, token: Option<&str>) -> Result<&'a mut Job, Response> {
    let forbidden = || message(StatusCode::FORBIDDEN, "403 Forbidden");
    let id: u64 = id
        .parse()
        .map_err(|_| message(StatusCode::NOT_FOUND, "404 Not Found"))?;
    let job = jobs.get_mut(id).ok_or_else(forbidden)?;
    match token {
        Some(token) if token == job.token => Ok(job),
        _ => Err(forbidden()),
    }
}

/// Parses a JSON request body leniently: empty is `{}`, the Content-Type is not checked.
#[allow(clippy::result_large_err)]
pub fn json_body(body: &[u8]) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|err| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("invalid JSON body: {err}") })),
        )
            .into_response()
    })
}

/// An empty response with `status`.
pub fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        let uri: Uri = "/x?debug_trace=false&token=a%2Bb+c&empty".parse().unwrap();
        assert_eq!(query_param(&uri, "token").as_deref(), Some("a+b c"));
        assert_eq!(query_param(&uri, "empty").as_deref(), Some(""));
        assert_eq!(query_param(&uri, "missing"), None);
        let odd: Uri = "/x?t=%zz%4".parse().unwrap();
        assert_eq!(query_param(&odd, "t").as_deref(), Some("%zz%4"));
    }

    #[test]
    fn body_token_wins_over_the_header() {
        let mut headers = HeaderMap::new();
        headers.insert("JOB-TOKEN", HeaderValue::from_static("header"));
        let uri: Uri = "/x".parse().unwrap();
        assert_eq!(job_token(&headers, &uri, Some("body")).as_deref(), Some("body"));
        assert_eq!(job_token(&headers, &uri, None).as_deref(), Some("header"));
        assert_eq!(job_token(&HeaderMap::new(), &uri, None), None);
    }
}
