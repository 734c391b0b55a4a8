//! The HTTP API: routing of `/api/v1/...` paths to the verbs, discovery, the `/sim`
//! control API, authentication and fault injection in front of it all.

mod control;
mod discovery;
mod exec;
mod filter;
mod logs;
mod objects;
mod watch;

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

pub use objects::ensure_default_service_account;

use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::resources::{Resource, NAMESPACES, PODS};
use crate::server::Peer;
use crate::SimState;

pub fn router(state: Arc<SimState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

pub fn json_response(code: StatusCode, body: Value) -> Response {
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    let content_type = if body["kind"] == "Table" {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    Response::builder()
        .status(code)
        .header("content-type", content_type)
        .body(axum::body::Body::from(bytes))
        .expect("static response parts")
}

/// kubectl asks for server-side Tables through Accept.
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

async fn handle(State(state): State<Arc<SimState>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let authenticated =
        parts.extensions.get::<Peer>().is_some_and(|p| p.client_cert) || state.auth.accepts(&parts.headers);
    if !authenticated && !matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return ApiError::unauthorized().into_response();
    }
    if !path.starts_with("/sim/") {
        if let Some(error) = state.faults.injected_error(parts.method.as_str(), &path) {
            return error.into_response();
        }
    }
    let upgrade = if parts.headers.get("upgrade").is_some() && parts.method == Method::GET {
        WebSocketUpgrade::from_request_parts(&mut parts, &state).await.ok()
    } else {
        None
    };
    let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("reading body: {e}")).into_response(),
    };
    let query = Query::parse(parts.uri.query());
    let result = route(&state, &parts.method, &path, &query, &parts.headers, &bytes, upgrade);
    tracing::debug!(method = %parts.method, %path, status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or_else(|e| e.code), "request");
    result.unwrap_or_else(IntoResponse::into_response)
}

fn route(
    state: &Arc<SimState>,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    body: &bytes::Bytes,
    upgrade: Option<WebSocketUpgrade>,
) -> ApiResult<Response> {
    let ok = |v: Value| Ok(json_response(StatusCode::OK, v));
    match path.trim_end_matches('/') {
        "/version" => return ok(discovery::version()),
        "/api" => return ok(discovery::api_versions(&state.server_address)),
        "/apis" => return ok(discovery::api_groups()),
        "/api/v1" => return ok(discovery::core_v1()),
        "/openapi/v3" => return ok(discovery::openapi_v3_root()),
        "/openapi/v3/api/v1" => return ok(discovery::openapi_v3_core()),
        "/healthz" | "/livez" | "/readyz" => return Ok((StatusCode::OK, "ok").into_response()),
        _ => {}
    }
    if path.starts_with("/sim/") {
        return control::handle(state, method, path, body);
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return Err(ApiError::path_not_found());
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let resource = |plural: &str| Resource::by_plural(plural).ok_or_else(ApiError::path_not_found);
    match segments.as_slice() {
        // Cluster-wide collections: namespaces, or every namespace's objects.
        [plural] => collection(state, method, resource(plural)?, None, query, headers, body),
        ["namespaces", name] => object(state, method, NAMESPACES, "", name, query, headers, body, false),
        ["namespaces", name, "status"] => object(state, method, NAMESPACES, "", name, query, headers, body, true),
        ["namespaces", ns, plural] => {
            let r = resource(plural)?;
            if !r.namespaced {
                return Err(ApiError::path_not_found());
            }
            collection(state, method, r, Some(ns), query, headers, body)
        }
        ["namespaces", ns, plural, name] => {
            object(state, method, resource(plural)?, ns, name, query, headers, body, false)
        }
        ["namespaces", ns, "pods", name, sub] => match (*sub, method.as_str()) {
            ("status", _) => object(state, method, PODS, ns, name, query, headers, body, true),
            ("log", "GET") => logs::serve(state.clone(), ns, name, query),
            ("exec", "GET") => exec::serve(state.clone(), ns, name, query, upgrade),
            ("exec", "POST") => exec::refuse_spdy(state, ns, name, query),
            ("attach", _) => Err(ApiError::bad_request(
                "attach is not supported by kube-sim; use exec or logs",
            )),
            _ => Err(ApiError::path_not_found()),
        },
        _ => Err(ApiError::path_not_found()),
    }
}

fn collection(
    state: &Arc<SimState>,
    method: &Method,
    resource: Resource,
    namespace: Option<&str>,
    query: &Query,
    headers: &HeaderMap,
    body: &bytes::Bytes,
) -> ApiResult<Response> {
    match method.as_str() {
        "GET" if query.flag("watch") => watch::serve(state.clone(), resource, namespace, query, headers),
        "GET" => objects::list(state, resource, namespace, query, headers),
        "POST" if !resource.namespaced => objects::create(state, resource, "", query, headers, body),
        "POST" => match namespace {
            Some(ns) => objects::create(state, resource, ns, query, headers, body),
            None => Err(ApiError::method_not_allowed("create")),
        },
        "DELETE" => objects::delete_collection(state, resource, namespace, query, body),
        other => Err(ApiError::method_not_allowed(other)),
    }
}

#[allow(clippy::too_many_arguments)]
fn object(
    state: &Arc<SimState>,
    method: &Method,
    resource: Resource,
    namespace: &str,
    name: &str,
    query: &Query,
    headers: &HeaderMap,
    body: &bytes::Bytes,
    status_only: bool,
) -> ApiResult<Response> {
    match method.as_str() {
        "GET" => objects::get(state, resource, namespace, name, headers),
        "PUT" => objects::replace(state, resource, namespace, name, status_only, headers, body),
        "PATCH" => objects::patch(state, resource, namespace, name, status_only, headers, body),
        "DELETE" if !status_only => objects::delete(state, resource, namespace, name, query, headers, body),
        other => Err(ApiError::method_not_allowed(other)),
    }
}
