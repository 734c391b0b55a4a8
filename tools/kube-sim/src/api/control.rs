//! The `/sim` control API: fault injection for tests that drive a kube-sim process.
//!
//! - `POST /sim/faults/drop-streams` `{"kinds": ["watch", "log", "exec"]}`
//! - `PUT /sim/faults/schedule-delay` `{"millis": 500}`
//! - `POST /sim/faults/image-pull` `{"image": "x", "pullPolicy": "Always"}` (`DELETE` with `{"image": "x"}` clears)
//! - `PUT /sim/faults/errors` `{"fraction": 0.5, "code": 429, "retryAfterSeconds": 1, "remaining": 10}`, optionally only for `"method": "POST"` and a path containing `"pathContains": "/secrets"` (`DELETE` clears)
//! - `POST /sim/pods/{namespace}/{name}/kill` `{"container": "c", "signal": 9}`

use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::json_response;
use crate::error::{ApiError, ApiResult};
use crate::faults::{ErrorFault, ImagePullFault, StreamKind};
use crate::SimState;

#[derive(Deserialize)]
struct DropStreams {
    kinds: Vec<StreamKind>,
}

#[derive(Deserialize)]
struct Delay {
    millis: u64,
}

#[derive(Deserialize)]
struct Kill {
    container: String,
    #[serde(default = "sigkill")]
    signal: i32,
}

fn sigkill() -> i32 {
    libc::SIGKILL
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("bad control request: {e}")))
}

pub fn handle(state: &SimState, method: &Method, path: &str, bytes: &Bytes) -> ApiResult<Response> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let faults = &state.faults;
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["sim", "faults", "drop-streams"]) => faults.drop_streams(&body::<DropStreams>(bytes)?.kinds),
        ("PUT", ["sim", "faults", "schedule-delay"]) => {
            faults.set_schedule_delay(Duration::from_millis(body::<Delay>(bytes)?.millis))
        }
        ("POST", ["sim", "faults", "image-pull"]) => faults.fail_image_pulls(body::<ImagePullFault>(bytes)?),
        ("DELETE", ["sim", "faults", "image-pull"]) => {
            faults.clear_image_pull_failure(&body::<ImagePullFault>(bytes)?.image)
        }
        ("PUT", ["sim", "faults", "errors"]) => faults.set_errors(Some(body::<ErrorFault>(bytes)?)),
        ("DELETE", ["sim", "faults", "errors"]) => faults.set_errors(None),
        ("POST", ["sim", "pods", namespace, name, "kill"]) => {
            let kill: Kill = body(bytes)?;
            state
                .kubelet
                .kill_container(namespace, name, &kill.container, kill.signal)
                .map_err(ApiError::bad_request)?;
        }
        _ => return Err(ApiError::path_not_found()),
    }
    Ok(json_response(StatusCode::OK, json!({"ok": true})))
}
