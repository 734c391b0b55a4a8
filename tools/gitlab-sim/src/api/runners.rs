//! Runner lifecycle endpoints: legacy registration (`POST /runners`), `POST /runners/verify`,
//! `DELETE /runners`, `DELETE /runners/managers` and `POST /runners/reset_authentication_token`,
//! enough for `gitlab-runner register`/`verify`/`unregister` against the simulator.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{empty, json_body, message, App};

/// The body `token` of a runner request, or the 400 GitLab answers without one.
#[allow(clippy::result_large_err)]
fn body_token(body: &Bytes) -> Result<(String, Value), Response> {
    let body = json_body(body)?;
    match body.get("token").and_then(Value::as_str) {
        Some(token) => Ok((token.to_string(), body)),
        None => Err((StatusCode::BAD_REQUEST, Json(json!({"error": "token is missing"}))).into_response()),
    }
}

pub async fn register(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (token, _) = match body_token(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.runners.register(&token) {
        Some(runner) => (
            StatusCode::CREATED,
            Json(json!({"id": runner.id, "token": runner.token, "token_expires_at": null})),
        )
            .into_response(),
        None => message(StatusCode::FORBIDDEN, "403 Forbidden"),
    }
}

pub async fn verify(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (token, _) = match body_token(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.runners.find(&token) {
        Some(runner) => (
            StatusCode::OK,
            Json(json!({"id": runner.id, "token": runner.token, "token_expires_at": null})),
        )
            .into_response(),
        None => message(StatusCode::FORBIDDEN, "403 Forbidden"),
    }
}

pub async fn unregister(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (token, _) = match body_token(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if app.runners.unregister(&token) {
        empty(StatusCode::NO_CONTENT)
    } else {
        message(StatusCode::FORBIDDEN, "403 Forbidden")
    }
}

/// Deletes one runner manager (`system_id`); managers are not modelled, so this only checks.
pub async fn unregister_manager(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (token, body) = match body_token(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if app.runners.find(&token).is_none() {
        return message(StatusCode::FORBIDDEN, "403 Forbidden");
    }
    match body.get("system_id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => empty(StatusCode::NO_CONTENT),
        _ => (StatusCode::BAD_REQUEST, Json(json!({"error": "system_id is missing"}))).into_response(),
    }
}

pub async fn reset_token(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (token, _) = match body_token(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.runners.reset_token(&token) {
        Some(new) => (
            StatusCode::CREATED,
            Json(json!({"token": new, "token_expires_at": null})),
        )
            .into_response(),
        None => message(StatusCode::FORBIDDEN, "403 Forbidden"),
    }
}
