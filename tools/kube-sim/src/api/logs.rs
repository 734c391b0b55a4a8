//! `pods/log`: a container's output with follow, timestamps, sinceTime/sinceSeconds,
//! tailLines, limitBytes and previous, streamed line by line.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ApiError, ApiResult};
use crate::faults::StreamKind;
use crate::kubelet::{ContainerLog, Entry};
use crate::query::Query;
use crate::resources::PODS;
use crate::SimState;

struct Options {
    follow: bool,
    timestamps: bool,
    since: Option<DateTime<Utc>>,
    tail: Option<usize>,
    limit: Option<usize>,
}

/// Picks the container the request means, with the real server's errors.
pub fn pick_container(pod: &Value, requested: Option<&str>) -> ApiResult<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let all: Vec<&str> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|l| pod["spec"][*l].as_array())
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if all.contains(&c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => {
            let regular: Vec<&str> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect();
            if regular.len() == 1 {
                Ok(regular[0].to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    regular.join(" ")
                )))
            }
        }
    }
}

/// The waiting reason of a container, if it is waiting (logs are refused then).
pub fn waiting_reason(pod: &Value, container: &str) -> Option<String> {
    let status = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|l| pod["status"][*l].as_array())
        .flatten()
        .find(|s| s["name"] == container);
    match status {
        None => Some("ContainerCreating".to_string()),
        Some(s) if s["containerID"].is_string() && s["state"]["waiting"].is_null() => None,
        Some(s) if s["lastState"]["terminated"].is_object() => None,
        Some(s) => Some(
            s["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or("ContainerCreating")
                .to_string(),
        ),
    }
}

pub fn serve(state: Arc<SimState>, namespace: &str, name: &str, query: &Query) -> ApiResult<Response> {
    let pod = state.store.get(PODS, namespace, name)?;
    let container = pick_container(&pod, query.get("container"))?;
    if query.get("sinceSeconds").is_some() && query.get("sinceTime").is_some() {
        return Err(ApiError::new(422, "Invalid", "PodLogOptions \"\" is invalid: sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"));
    }
    let since = match (query.int("sinceSeconds")?, query.get("sinceTime")) {
        (Some(secs), _) => Some(Utc::now() - chrono::Duration::seconds(secs)),
        (None, Some(t)) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| ApiError::bad_request(format!("invalid sinceTime {t:?}")))?
                .with_timezone(&Utc),
        ),
        (None, None) => None,
    };
    let previous = query.flag("previous");
    let run = state
        .kubelet
        .runtime(namespace, name)
        .and_then(|r| r.container(&container));
    let log: Arc<ContainerLog> = match (previous, run) {
        (true, Some(run)) => run.previous.ok_or_else(|| {
            ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            ))
        })?,
        (true, None) => {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )))
        }
        (false, Some(run)) => run.log,
        (false, None) => {
            let reason = waiting_reason(&pod, &container).unwrap_or_else(|| "ContainerCreating".into());
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        }
    };
    let options = Options {
        follow: query.flag("follow") && !previous,
        timestamps: query.flag("timestamps"),
        since,
        tail: query.int("tailLines")?.map(|n| n.max(0) as usize),
        limit: query.int("limitBytes")?.filter(|n| *n > 0).map(|n| n as usize),
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut drop_signal = state.faults.drop_signal(StreamKind::Log);
    tokio::spawn(async move {
        let mut sent = 0usize;
        let mut send = |entry: &Entry| {
            let mut text = entry.render(options.timestamps).into_bytes();
            if let Some(limit) = options.limit {
                text.truncate(limit.saturating_sub(sent));
            }
            sent += text.len();
            text
        };
        let keep = |entry: &Entry| options.since.is_none_or(|since| entry.time >= since);
        let existing: Vec<Entry> = log.entries().await.into_iter().filter(keep).collect();
        let skip = options.tail.map_or(0, |tail| existing.len().saturating_sub(tail));
        let already = existing.len();
        for entry in existing.iter().skip(skip) {
            let bytes = send(entry);
            if bytes.is_empty() || tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                return;
            }
        }
        if !options.follow {
            return;
        }
        // Follow from the start of the file, skipping what was already sent above.
        let mut follower = log.follow();
        let mut seen = 0usize;
        loop {
            let next = tokio::select! {
                entry = follower.next() => entry,
                _ = drop_signal.dropped() => return,
                _ = tx.closed() => return,
            };
            let Some(entry) = next else { return };
            if !keep(&entry) {
                continue;
            }
            seen += 1;
            if seen <= already {
                continue;
            }
            let bytes = send(&entry);
            if bytes.is_empty() || tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                return;
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .expect("static response parts"))
}
