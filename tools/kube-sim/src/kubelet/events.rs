//! core/v1 Events about Pods, as the scheduler and the kubelet record them.

use serde_json::{json, Value};

use crate::defaults::{apply_create_defaults, now};
use crate::resources::EVENTS;
use crate::store::Store;

pub const NODE_NAME: &str = "sim-node";

#[derive(Debug, Clone, Copy)]
pub enum Source {
    Scheduler,
    Kubelet,
}

/// Records one event about `pod`; `field_path` names the container (`spec.containers{main}`).
pub fn record(
    store: &Store,
    pod: &Value,
    warning: bool,
    reason: &str,
    message: &str,
    field_path: Option<&str>,
    source: Source,
) {
    let meta = &pod["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or("default");
    let pod_name = meta["name"].as_str().unwrap_or_default();
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let (component, host) = match source {
        Source::Scheduler => ("default-scheduler", None),
        Source::Kubelet => ("kubelet", Some(NODE_NAME)),
    };
    let mut involved = json!({
        "kind": "Pod",
        "namespace": namespace,
        "name": pod_name,
        "uid": meta["uid"],
        "apiVersion": "v1",
        "resourceVersion": meta["resourceVersion"],
    });
    if let Some(path) = field_path {
        involved["fieldPath"] = json!(path);
    }
    let mut source_json = json!({"component": component});
    if let Some(h) = host {
        source_json["host"] = json!(h);
    }
    let timestamp = now();
    let mut event = json!({
        "metadata": {"name": format!("{pod_name}.{nanos:x}")},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": source_json,
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
        "type": if warning { "Warning" } else { "Normal" },
        "eventTime": null,
        "reportingComponent": component,
        "reportingInstance": host.unwrap_or(""),
    });
    apply_create_defaults(EVENTS, namespace, &mut event);
    // Two events in the same nanosecond would collide on the name; the later one is dropped,
    // which is what an event sink under pressure does too.
    let _ = store.create(EVENTS, namespace, event);
}

/// `spec.containers{name}` or `spec.initContainers{name}`.
pub fn container_path(init: bool, name: &str) -> String {
    if init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}
