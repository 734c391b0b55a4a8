//! Runner lifecycle endpoints: legacy registration (`POST /runners`), `POST /runners/verify`,
//! `DELETE /runners`, `DELETE /runners/managers` and `POST /runners/reset_authentication_token`,
//! enough for `gitlab-runner register`/`verify`/`unregister` against the simulator.
//!
//! Checks come in GitLab's order: parameters first (its API layer answers 400
//! `{"error": "…"}`), then the token (403; 410 when registration tokens are disabled), then the
//! runner's own validations (400 `{"message": {"attribute": ["…"]}}`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{empty, json_body, message, App};
use crate::runners::{ManagerError, RegisterError, Registration, Runner};

/// A parameter error, as GitLab's API layer words them.
fn param_error(text: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": text.into() }))).into_response()
}

/// The body `token` of a runner request, or the 400 GitLab answers without one.
#[allow(clippy::result_large_err)]
fn body_token(body: &Bytes) -> Result<(String, Value), Response> {
    let body = json_body(body)?;
    match body.get("token").and_then(Value::as_str) {
        Some(token) => Ok((token.to_string(), body)),
        None => Err(param_error("token is missing")),
    }
}

/// An optional string parameter.
#[allow(clippy::result_large_err)]
fn string_param(body: &Value, key: &str) -> Result<Option<String>, Response> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(param_error(format!("{key} is invalid"))),
    }
}

/// An optional boolean parameter: JSON booleans or the strings GitLab coerces.
#[allow(clippy::result_large_err)]
fn bool_param(body: &Value, key: &str) -> Result<Option<bool>, Response> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" || s == "0" => Ok(Some(false)),
        Some(_) => Err(param_error(format!("{key} is invalid"))),
    }
}

/// An optional non-negative integer parameter (a JSON number or digits).
#[allow(clippy::result_large_err)]
fn integer_param(body: &Value, key: &str) -> Result<Option<u64>, Response> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().ok()),
        Some(_) => Err(param_error(format!("{key} is invalid"))),
    }
}

/// `tag_list`: a comma-separated string (what the official runner sends) or an array.
#[allow(clippy::result_large_err)]
fn tags_param(body: &Value) -> Result<Vec<String>, Response> {
    let items: Vec<&str> = match body.get("tag_list") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| param_error("tag_list is invalid")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(param_error("tag_list is invalid")),
    };
    Ok(items
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect())
}

/// The settings of a registration request.
#[allow(clippy::result_large_err)]
fn registration(body: &Value) -> Result<Registration, Response> {
    let paused = bool_param(body, "paused")?;
    let active = bool_param(body, "active")?;
    if paused.is_some() && active.is_some() {
        return Err(param_error("active, paused are mutually exclusive"));
    }
    let maintenance_note = string_param(body, "maintenance_note")?;
    let maintainer_note = string_param(body, "maintainer_note")?;
    if maintenance_note.is_some() && maintainer_note.is_some() {
        return Err(param_error("maintainer_note, maintenance_note are mutually exclusive"));
    }
    let access_level = string_param(body, "access_level")?;
    if access_level
        .as_deref()
        .is_some_and(|level| !matches!(level, "not_protected" | "ref_protected"))
    {
        return Err(param_error("access_level does not have a valid value"));
    }
    Ok(Registration {
        description: string_param(body, "description")?,
        // The deprecated spelling still counts when it is the only one.
        maintenance_note: maintenance_note.or(maintainer_note),
        tags: tags_param(body)?,
        run_untagged: bool_param(body, "run_untagged")?,
        locked: bool_param(body, "locked")?,
        access_level,
        maximum_timeout: integer_param(body, "maximum_timeout")?,
        // `active: false` is the deprecated way to say paused.
        paused: paused.or(active.map(|active| !active)),
        name: body
            .get("info")
            .and_then(|info| info.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// `{id, token, token_expires_at}`: the answer of register and verify. Tokens never expire here.
fn credentials(status: StatusCode, runner: &Runner) -> Response {
    (
        status,
        Json(json!({"id": runner.id, "token": runner.token, "token_expires_at": null})),
    )
        .into_response()
}

pub async fn register(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (token, body) = match body_token(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let registration = match registration(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match app.runners.register(&token, registration) {
        Ok(runner) => {
            tracing::info!(runner = runner.id, tags = ?runner.tags, "runner registered");
            credentials(StatusCode::CREATED, &runner)
        }
        Err(RegisterError::Forbidden) => message(StatusCode::FORBIDDEN, "403 Forbidden - invalid token supplied"),
        Err(RegisterError::Disallowed) => message(StatusCode::GONE, "410 Gone - runner registration disallowed"),
        Err(RegisterError::Invalid(errors)) => {
            (StatusCode::BAD_REQUEST, Json(json!({ "message": errors }))).into_response()
        }
    }
}

/// Checks the token and, like every authenticated runner request, records the runner manager.
pub async fn verify(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (token, body) = match body_token(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let system_id = match string_param(&body, "system_id") {
        Ok(id) => id,
        Err(r) => return r,
    };
    match app.runners.authenticate(&token, system_id.as_deref()) {
        Some(runner) => credentials(StatusCode::OK, &runner),
        None => message(StatusCode::FORBIDDEN, "403 Forbidden"),
    }
}

/// Deletes the runner and every manager of it.
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

/// Deletes one runner manager; the runner stays.
pub async fn unregister_manager(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (token, body) = match body_token(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let system_id = match string_param(&body, "system_id") {
        Ok(Some(id)) => id,
        Ok(None) => return param_error("system_id is missing"),
        Err(r) => return r,
    };
    match app.runners.unregister_manager(&token, &system_id) {
        Ok(()) => empty(StatusCode::NO_CONTENT),
        Err(ManagerError::UnknownToken) => message(StatusCode::FORBIDDEN, "403 Forbidden"),
        // GitLab's `not_found!('Runner manager not found')` wording.
        Err(ManagerError::NotFound) => message(StatusCode::NOT_FOUND, "404 Runner manager not found Not Found"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<Registration, u16> {
        registration(&body).map_err(|r| r.status().as_u16())
    }

    #[test]
    fn registration_parameters() {
        let r = parse(
            json!({"token": "t", "description": "d", "tag_list": " a, ,b ", "run_untagged": "false",
                             "locked": true, "access_level": "ref_protected", "maximum_timeout": "3600",
                             "active": false, "maintainer_note": "old", "info": {"name": "flotilla"}}),
        )
        .unwrap();
        assert_eq!(r.description.as_deref(), Some("d"));
        assert_eq!(r.tags, ["a", "b"]);
        assert_eq!(r.run_untagged, Some(false));
        assert_eq!(r.locked, Some(true));
        assert_eq!(r.access_level.as_deref(), Some("ref_protected"));
        assert_eq!(r.maximum_timeout, Some(3600));
        assert_eq!(r.paused, Some(true));
        assert_eq!(r.maintenance_note.as_deref(), Some("old"));
        assert_eq!(r.name.as_deref(), Some("flotilla"));
        assert_eq!(parse(json!({"tag_list": ["x", "y"]})).unwrap().tags, ["x", "y"]);
        assert_eq!(parse(json!({})).unwrap(), Registration::default());
    }

    #[test]
    fn parameter_errors() {
        for bad in [
            json!({"paused": true, "active": true}),
            json!({"maintenance_note": "a", "maintainer_note": "b"}),
            json!({"access_level": "everything"}),
            json!({"run_untagged": "maybe"}),
            json!({"maximum_timeout": -1}),
            json!({"tag_list": [1]}),
        ] {
            assert_eq!(parse(bad.clone()), Err(400), "{bad}");
        }
    }
}
