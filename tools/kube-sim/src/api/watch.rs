//! `?watch=true`: newline-delimited watch events, replayed from a resourceVersion and then
//! live, with bookmarks, timeouts, selector transitions, Table rows for kubectl, and
//! "too old" as an ERROR event inside a 200 (what kube-runtime's watcher relists on).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::filter::Filter;
use super::wants_table;
use crate::error::{ApiError, ApiResult};
use crate::faults::StreamKind;
use crate::query::Query;
use crate::resources::Resource;
use crate::store::{Change, EventType};
use crate::table::table;
use crate::SimState;

const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
/// kubectl `get -w` sends no timeout; a real server keeps such watches for 30-60 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(45 * 60);

struct Watch {
    filter: Filter,
    table: bool,
    bookmarks: bool,
    sent_columns: bool,
}

pub fn serve(
    state: Arc<SimState>,
    resource: Resource,
    namespace: Option<&str>,
    query: &Query,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let filter = Filter::from_query(resource, namespace, query)?;
    let send_initial = query.flag("sendInitialEvents");
    let bookmarks = query.flag("allowWatchBookmarks");
    if send_initial && (!bookmarks || query.get("resourceVersionMatch") != Some("NotOlderThan")) {
        return Err(ApiError::new(
            422,
            "Invalid",
            "sendInitialEvents requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
        ));
    }
    let timeout = query
        .int("timeoutSeconds")?
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let rv = query.get("resourceVersion").unwrap_or("");
    let mut watch = Watch {
        filter,
        table: wants_table(headers),
        bookmarks,
        sent_columns: false,
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut initial = Vec::new();
    let start = if rv.is_empty() || rv == "0" || send_initial {
        let (objects, start) = state.store.snapshot_and_subscribe(resource, namespace);
        let matching: Vec<&Value> = objects.iter().filter(|o| watch.filter.matches(o)).collect();
        for object in matching {
            initial.push(watch.event("ADDED", object));
        }
        if send_initial {
            initial.push(watch.bookmark(resource, start.current_rv, true));
        }
        Ok(start)
    } else {
        let after: u64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?;
        state.store.watch_from(after).map_err(|oldest| (after, oldest))
    };
    let mut drop_signal = state.faults.drop_signal(StreamKind::Watch);
    tokio::spawn(async move {
        let start = match start {
            Ok(start) => start,
            Err((after, oldest)) => {
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {after} ({})", oldest.saturating_sub(1)), "reason": "Expired", "code": 410});
                let _ = tx.send(Ok(line(&json!({"type": "ERROR", "object": status})))).await;
                return;
            }
        };
        for event in initial {
            if tx.send(Ok(line(&event))).await.is_err() {
                return;
            }
        }
        let mut live = start.live;
        let mut last_rv = start.current_rv;
        for change in start.backlog {
            last_rv = change.rv;
            if let Some(event) = watch.translate(&change) {
                if tx.send(Ok(line(&event))).await.is_err() {
                    return;
                }
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut bookmark_timer = tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            let event = tokio::select! {
                change = live.recv() => match change {
                    Ok(change) if change.rv <= last_rv => continue,
                    Ok(change) => { last_rv = change.rv; watch.translate(&change) }
                    // A watcher too slow for the feed is cut; its client re-watches from its last RV.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = bookmark_timer.tick() => watch.bookmarks.then(|| watch.bookmark(resource, state.store.current_rv(), false)),
                _ = tokio::time::sleep_until(deadline) => {
                    if watch.bookmarks {
                        let _ = tx.send(Ok(line(&watch.bookmark(resource, state.store.current_rv(), false)))).await;
                    }
                    return;
                }
                _ = drop_signal.dropped() => return,
                _ = tx.closed() => return,
            };
            if let Some(event) = event {
                if tx.send(Ok(line(&event))).await.is_err() {
                    return;
                }
            }
        }
    });
    let content_type = if wants_table(headers) {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .header("cache-control", "no-cache, private")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .expect("static response parts"))
}

fn line(event: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(event).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

impl Watch {
    /// The event this watcher sees for a change, if any (selector transitions included).
    fn translate(&mut self, change: &Change) -> Option<Value> {
        if change.resource != self.filter.resource || !self.filter.matches_namespace(&change.namespace) {
            return None;
        }
        let now_matches = self.filter.matches(&change.object);
        let was_matching = change.previous.as_ref().is_some_and(|p| self.filter.matches(p));
        let kind = match (change.event, was_matching, now_matches) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Deleted, _, true) => "DELETED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some(self.event(kind, &change.object))
    }

    fn event(&mut self, kind: &str, object: &Value) -> Value {
        if !self.table {
            return json!({"type": kind, "object": object});
        }
        let rv = object["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string();
        let with_columns = !self.sent_columns;
        self.sent_columns = true;
        json!({"type": kind, "object": table(self.filter.resource.plural, std::slice::from_ref(object), &rv, chrono::Utc::now(), with_columns)})
    }

    fn bookmark(&self, resource: Resource, rv: u64, initial_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"type": "BOOKMARK", "object": {"kind": resource.kind, "apiVersion": "v1", "metadata": metadata, "spec": {"containers": null}, "status": {}}})
    }
}
