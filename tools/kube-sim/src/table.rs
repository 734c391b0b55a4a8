//! Server-side `meta.k8s.io/v1` Tables, which is what `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! kubectl prints whatever columns and cells the server sends, so to look like a real
//! cluster the rows have to be filled the way kube's printers
//! (`pkg/printers/internalversion/printers.go`) fill them. The apiserver always prints
//! with `Wide: true` and lets kubectl hide priority-1 columns, so every cell is here.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// A `meta.k8s.io/v1` Table for `objects` of `resource` (plural), rows in the given order.
/// `with_columns=false` gives `columnDefinitions: []` (watch events after the first).
pub fn table(
    resource: &str,
    objects: &[Value],
    resource_version: &str,
    now: DateTime<Utc>,
    with_columns: bool,
) -> Value {
    let columns: Vec<Value> = if with_columns {
        columns(resource).iter().map(Column::to_json).collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects.iter().map(|o| row(resource, o, now)).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// kubectl's HumanDuration: 45s, 3m2s, 12m, 5h3m, 30h, 3d4h, 40d, 2y10d (see
/// k8s.io/apimachinery/pkg/util/duration.HumanDuration). Up to a second in the future
/// is "0s" (clock skew); further is "<invalid>", as in the real one.
pub fn human_duration(d: Duration) -> String {
    // num_* truncate toward zero, like Go's int(d.Seconds()) and d / time.Minute.
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with_remainder(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with_remainder(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

/// `5h3m`, or just `5h` when the smaller unit is zero.
fn with_remainder(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{small}{small_unit}")
    }
}

// ---------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------

/// One `TableColumnDefinition`.
struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    priority: u8,
    description: &'static str,
}

impl Column {
    const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Self {
            name,
            kind,
            format: "",
            priority: 0,
            description,
        }
    }

    /// A column kubectl shows only with `-o wide`.
    const fn wide(self) -> Self {
        Self { priority: 1, ..self }
    }

    const fn format(self, format: &'static str) -> Self {
        Self { format, ..self }
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating \
    resources, although some resources may allow a client to request the generation of an \
    appropriate name automatically. Name is primarily intended for creation idempotence and \
    configuration definition. Cannot be updated. More info: \
    https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this \
    object was created. It is not guaranteed to be set in happens-before order across separate \
    operations. Clients may not set this value. It is represented in RFC3339 form and is in \
    UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: \
    https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

const NAME: Column = Column::new("Name", "string", NAME_DOC).format("name");
const AGE: Column = Column::new("Age", "string", AGE_DOC);

// Column types follow kube's printers, which declare some integer cells as "string".
const POD_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    Column::new(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last \
         container in this pod has restarted.",
    ),
    AGE,
    Column::new(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if \
         not yet allocated.",
    )
    .wide(),
    Column::new(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled.",
    )
    .wide(),
    Column::new(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node.",
    )
    .wide(),
    Column::new(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    )
    .wide(),
];

const EVENT_COLUMNS: &[Column] = &[
    Column::new(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    Column::new(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    Column::new(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the \
         transition into the object's current status.",
    ),
    Column::new("Object", "string", "The object that this event is about."),
    Column::new(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should \
         contain a valid JSON/Go field access statement, such as \
         desiredState.manifest.containers[2].",
    )
    .wide(),
    Column::new(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    )
    .wide(),
    Column::new(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    Column::new(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    )
    .wide(),
    Column::new("Count", "string", "The number of times this event has occurred.").wide(),
    Column::new("Name", "string", NAME_DOC).format("name").wide(),
];

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    Column::new(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', \
         '_' or '.'.",
    ),
    AGE,
];

const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric \
         characters, '-', '_' or '.'.",
    ),
    AGE,
];

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the namespace"),
    AGE,
];

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this \
         ServiceAccount are allowed to use.",
    ),
    AGE,
];

const DEFAULT_COLUMNS: &[Column] = &[NAME, AGE];

fn columns(resource: &str) -> &'static [Column] {
    match resource {
        "pods" => POD_COLUMNS,
        "events" => EVENT_COLUMNS,
        "secrets" => SECRET_COLUMNS,
        "configmaps" => CONFIG_MAP_COLUMNS,
        "namespaces" => NAMESPACE_COLUMNS,
        "serviceaccounts" => SERVICE_ACCOUNT_COLUMNS,
        _ => DEFAULT_COLUMNS,
    }
}

// ---------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------

fn row(resource: &str, obj: &Value, now: DateTime<Utc>) -> Value {
    let cells = match resource {
        "pods" => pod_cells(obj, now),
        "events" => event_cells(obj, now),
        "secrets" => vec![
            json!(name(obj)),
            json!(text(obj, "/type")),
            json!(key_count(obj, "/data")),
            json!(age(obj, now)),
        ],
        "configmaps" => vec![
            json!(name(obj)),
            json!(key_count(obj, "/data") + key_count(obj, "/binaryData")),
            json!(age(obj, now)),
        ],
        "namespaces" => vec![
            json!(name(obj)),
            json!(text(obj, "/status/phase")),
            json!(age(obj, now)),
        ],
        "serviceaccounts" => vec![
            json!(name(obj)),
            json!(items(obj, "/secrets").len()),
            json!(age(obj, now)),
        ],
        _ => vec![json!(name(obj)), json!(age(obj, now))],
    };
    let mut row = json!({
        "cells": cells,
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        },
    });
    if resource == "pods" {
        if let Some(conditions) = pod_row_conditions(obj) {
            row["conditions"] = conditions;
        }
    }
    row
}

/// The string at a JSON pointer, "" when missing or not a string.
fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The array at a JSON pointer, empty when missing.
fn items<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn key_count(obj: &Value, pointer: &str) -> usize {
    obj.pointer(pointer).and_then(Value::as_object).map_or(0, |m| m.len())
}

fn name(obj: &Value) -> &str {
    text(obj, "/metadata/name")
}

fn timestamp(obj: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let raw = obj.pointer(pointer)?.as_str()?;
    DateTime::parse_from_rfc3339(raw).ok().map(|t| t.with_timezone(&Utc))
}

/// kube's `translateTimestampSince`: a human age, or `<unknown>` without a timestamp.
fn since(time: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    time.map_or_else(|| "<unknown>".to_string(), |t| human_duration(now - t))
}

fn age(obj: &Value, now: DateTime<Utc>) -> String {
    since(timestamp(obj, "/metadata/creationTimestamp"), now)
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "<none>"
    } else {
        s
    }
}

// ---------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------

/// What printPod works out before it formats the cells.
#[derive(Debug, Default)]
struct PodSummary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<DateTime<Utc>>,
}

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let summary = summarise_pod(pod);
    let restarts = match summary.last_restart {
        Some(last) if summary.restarts != 0 => {
            format!("{} ({} ago)", summary.restarts, since(Some(last), now))
        }
        _ => summary.restarts.to_string(),
    };
    vec![
        json!(name(pod)),
        json!(format!("{}/{}", summary.ready, summary.total)),
        json!(summary.reason),
        json!(restarts),
        json!(age(pod, now)),
        json!(or_none(pod_ip(pod))),
        json!(or_none(text(pod, "/spec/nodeName"))),
        json!(or_none(text(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates(pod)),
    ]
}

/// kube prints the primary IP from `podIPs`; `podIP` mirrors it.
fn pod_ip(pod: &Value) -> &str {
    match items(pod, "/status/podIPs").first() {
        Some(ip) => text(ip, "/ip"),
        None => text(pod, "/status/podIP"),
    }
}

fn readiness_gates(pod: &Value) -> String {
    let gates = items(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let passed = gates
        .iter()
        .filter(|gate| condition_status(pod, text(gate, "/conditionType")) == Some("True"))
        .count();
    format!("{passed}/{}", gates.len())
}

/// The status of the first pod condition of `kind`, if there is one.
fn condition_status<'a>(pod: &'a Value, kind: &str) -> Option<&'a str> {
    items(pod, "/status/conditions")
        .iter()
        .find(|c| text(c, "/type") == kind)
        .map(|c| text(c, "/status"))
}

/// Succeeded and Failed pods carry a `Completed` row condition in kube's Table.
fn pod_row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

/// printPod's READY, STATUS and RESTARTS logic.
fn summarise_pod(pod: &Value) -> PodSummary {
    let phase = text(pod, "/status/phase");
    let mut reason = match text(pod, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let gated = items(pod, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".to_string();
    }

    let sidecars = sidecar_names(pod);
    let init = scan_init_containers(pod, &sidecars);
    let mut summary = PodSummary {
        ready: init.ready_sidecars,
        total: items(pod, "/spec/containers").len() + sidecars.len(),
        reason: init.reason.clone().unwrap_or(reason),
        restarts: init.restarts,
        last_restart: init.last_restart,
    };
    // Regular containers only count once initialisation is over (or was, before a
    // sidecar restarted).
    if init.reason.is_none() || condition_status(pod, "Initialized") == Some("True") {
        summary.restarts = init.sidecar_restarts;
        summary.last_restart = init.sidecar_last_restart;
        scan_containers(pod, &mut summary);
    }

    if !text(pod, "/metadata/deletionTimestamp").is_empty() {
        if text(pod, "/status/reason") == "NodeLost" {
            summary.reason = "Unknown".to_string();
        } else if !matches!(phase, "Succeeded" | "Failed") {
            summary.reason = "Terminating".to_string();
        }
    }
    summary
}

/// Init containers with `restartPolicy: Always` keep running beside the others.
fn sidecar_names(pod: &Value) -> HashSet<&str> {
    items(pod, "/spec/initContainers")
        .iter()
        .filter(|c| text(c, "/restartPolicy") == "Always")
        .map(|c| text(c, "/name"))
        .collect()
}

/// What the init container statuses say, up to the first one not yet done.
#[derive(Debug, Default)]
struct InitScan {
    /// `Init:...` while the pod is still initialising.
    reason: Option<String>,
    ready_sidecars: usize,
    restarts: i64,
    last_restart: Option<DateTime<Utc>>,
    sidecar_restarts: i64,
    sidecar_last_restart: Option<DateTime<Utc>>,
}

fn scan_init_containers(pod: &Value, sidecars: &HashSet<&str>) -> InitScan {
    let declared = items(pod, "/spec/initContainers").len();
    let mut scan = InitScan::default();
    for (i, status) in items(pod, "/status/initContainerStatuses").iter().enumerate() {
        let count = restart_count(status);
        let finished = last_finished(status);
        scan.restarts += count;
        scan.last_restart = scan.last_restart.max(finished);
        let sidecar = sidecars.contains(text(status, "/name"));
        if sidecar {
            scan.sidecar_restarts += count;
            scan.sidecar_last_restart = scan.sidecar_last_restart.max(finished);
        }

        let terminated = status.pointer("/state/terminated");
        if terminated.is_some_and(|t| exit_code(t) == 0) {
            continue;
        }
        if sidecar && status.get("started").and_then(Value::as_bool) == Some(true) {
            scan.ready_sidecars += usize::from(is_ready(status));
            continue;
        }
        scan.reason = Some(init_reason(status, i, declared));
        break;
    }
    scan
}

/// `Init:<why>` for the first init container that has not finished.
fn init_reason(status: &Value, index: usize, declared: usize) -> String {
    if let Some(terminated) = status.pointer("/state/terminated") {
        return format!("Init:{}", terminated_reason(terminated));
    }
    match text(status, "/state/waiting/reason") {
        "" | "PodInitializing" => format!("Init:{index}/{declared}"),
        waiting => format!("Init:{waiting}"),
    }
}

/// A terminated state's reason, or `Signal:N` / `ExitCode:N` when it has none.
fn terminated_reason(terminated: &Value) -> String {
    match text(terminated, "/reason") {
        "" => match terminated.get("signal").and_then(Value::as_i64).unwrap_or(0) {
            0 => format!("ExitCode:{}", exit_code(terminated)),
            signal => format!("Signal:{signal}"),
        },
        reason => reason.to_string(),
    }
}

/// Scans regular containers last to first, so the first container's state wins.
fn scan_containers(pod: &Value, summary: &mut PodSummary) {
    let mut has_running = false;
    for status in items(pod, "/status/containerStatuses").iter().rev() {
        summary.restarts += restart_count(status);
        summary.last_restart = summary.last_restart.max(last_finished(status));
        let waiting = text(status, "/state/waiting/reason");
        if !waiting.is_empty() {
            summary.reason = waiting.to_string();
        } else if let Some(terminated) = status.pointer("/state/terminated") {
            summary.reason = terminated_reason(terminated);
        } else if is_ready(status) && status.pointer("/state/running").is_some() {
            has_running = true;
            summary.ready += 1;
        }
    }
    // A pod whose finished container is listed first may still have others running.
    if summary.reason == "Completed" && has_running {
        summary.reason = match condition_status(pod, "Ready") {
            Some("True") => "Running",
            _ => "NotReady",
        }
        .to_string();
    }
}

fn restart_count(status: &Value) -> i64 {
    status.get("restartCount").and_then(Value::as_i64).unwrap_or(0)
}

fn exit_code(terminated: &Value) -> i64 {
    terminated.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
}

fn is_ready(status: &Value) -> bool {
    status.get("ready").and_then(Value::as_bool) == Some(true)
}

/// When the container last stopped before its current run, if it ever did.
fn last_finished(status: &Value) -> Option<DateTime<Utc>> {
    timestamp(status, "/lastState/terminated/finishedAt")
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

fn event_cells(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // Events from the events.k8s.io API have only eventTime and series.
    let first_seen = match timestamp(event, "/firstTimestamp") {
        Some(first) => since(Some(first), now),
        None => since(timestamp(event, "/eventTime"), now),
    };
    let mut last_seen = match timestamp(event, "/lastTimestamp") {
        Some(last) => since(Some(last), now),
        None => first_seen.clone(),
    };
    let mut count = event.get("count").and_then(Value::as_i64).unwrap_or(0);
    match event.get("series").filter(|s| s.is_object()) {
        Some(series) => {
            last_seen = since(timestamp(series, "/lastObservedTime"), now);
            count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
        }
        None if count == 0 => count = 1,
        None => {}
    }
    vec![
        json!(last_seen),
        json!(text(event, "/type")),
        json!(text(event, "/reason")),
        json!(event_target(event)),
        json!(text(event, "/involvedObject/fieldPath")),
        json!(event_source(event)),
        json!(text(event, "/message").trim()),
        json!(first_seen),
        json!(count),
        json!(name(event)),
    ]
}

/// `pod/demo`: the involved object's lowercased kind and name.
fn event_target(event: &Value) -> String {
    let kind = text(event, "/involvedObject/kind").to_lowercase();
    match text(event, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    }
}

/// `component, host`, falling back to the reporting controller and instance.
fn event_source(event: &Value) -> String {
    let first_non_empty = |a: &'static str, b: &'static str| match text(event, a) {
        "" => text(event, b),
        s => s,
    };
    let component = first_non_empty("/source/component", "/reportingComponent");
    match first_non_empty("/source/host", "/reportingInstance") {
        "" => component.to_string(),
        host => format!("{component}, {host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// An RFC 3339 time `secs` seconds before `now()`.
    fn ago(secs: i64) -> String {
        (now() - Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    #[test]
    fn human_duration_matches_kubectl() {
        let cases = [
            (Duration::seconds(-5), "<invalid>"),
            (Duration::milliseconds(-1500), "0s"),
            (Duration::seconds(-1), "0s"),
            (Duration::zero(), "0s"),
            (Duration::seconds(45), "45s"),
            (Duration::seconds(119), "119s"),
            (Duration::seconds(120), "2m"),
            (Duration::seconds(182), "3m2s"),
            (Duration::minutes(12), "12m"),
            (Duration::minutes(179), "179m"),
            (Duration::minutes(180), "3h"),
            (Duration::minutes(5 * 60 + 3), "5h3m"),
            (Duration::hours(8), "8h"),
            (Duration::hours(30), "30h"),
            (Duration::hours(3 * 24 + 4), "3d4h"),
            (Duration::days(5), "5d"),
            (Duration::days(40), "40d"),
            (Duration::days(729), "729d"),
            (Duration::days(740), "2y10d"),
            (Duration::days(3 * 365), "3y"),
            (Duration::days(10 * 365), "10y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    fn pod(status: Value) -> Value {
        json!({
            "metadata": {"name": "demo", "namespace": "default",
                         "creationTimestamp": ago(600), "uid": "u1"},
            "spec": {"containers": [{"name": "main"}], "nodeName": "node-1"},
            "status": status,
        })
    }

    fn cells(obj: &Value) -> Vec<Value> {
        let t = table("pods", std::slice::from_ref(obj), "7", now(), true);
        t["rows"][0]["cells"].as_array().unwrap().clone()
    }

    /// READY, STATUS and RESTARTS of a pod's row.
    fn summary(obj: &Value) -> (String, String, String) {
        let c = cells(obj);
        let s = |i: usize| c[i].as_str().unwrap().to_string();
        (s(1), s(2), s(3))
    }

    fn expect(obj: &Value, ready: &str, status: &str, restarts: &str) {
        let (r, s, n) = summary(obj);
        assert_eq!((r.as_str(), s.as_str(), n.as_str()), (ready, status, restarts));
    }

    #[test]
    fn table_shape_and_columns() {
        let p = pod(json!({"phase": "Running", "podIP": "10.0.0.5"}));
        let t = table("pods", std::slice::from_ref(&p), "42", now(), true);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "42");
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][4]["priority"], 0);
        assert_eq!(t["columnDefinitions"][5]["priority"], 1);
        let row = &t["rows"][0];
        assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(row["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(row["object"]["metadata"], p["metadata"]);
        assert_eq!(
            row["cells"],
            json!(["demo", "0/1", "Running", "0", "10m", "10.0.0.5", "node-1", "<none>", "<none>"])
        );
    }

    #[test]
    fn without_columns_for_later_watch_events() {
        let p = pod(json!({"phase": "Pending"}));
        let t = table("pods", &[p], "8", now(), false);
        assert_eq!(t["columnDefinitions"], json!([]));
        assert_eq!(t["rows"][0]["cells"].as_array().unwrap().len(), 9);
    }

    #[test]
    fn pending_and_container_creating() {
        expect(&pod(json!({"phase": "Pending"})), "0/1", "Pending", "0");
        let creating = pod(json!({"phase": "Pending", "containerStatuses": [
            {"name": "main", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        expect(&creating, "0/1", "ContainerCreating", "0");
    }

    #[test]
    fn image_pull_errors_show_the_waiting_reason() {
        let p = pod(json!({"phase": "Pending", "containerStatuses": [
            {"name": "main", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}));
        expect(&p, "0/1", "ErrImagePull", "0");
    }

    fn with_init_containers(status: Value) -> Value {
        let mut p = pod(status);
        p["spec"]["initContainers"] = json!([{"name": "init-a"}, {"name": "init-b"}]);
        p
    }

    #[test]
    fn init_containers_in_progress() {
        let p = with_init_containers(json!({"phase": "Pending",
            "initContainerStatuses": [
                {"name": "init-a", "ready": false, "restartCount": 0,
                 "state": {"running": {"startedAt": ago(5)}}},
                {"name": "init-b", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "PodInitializing"}}}],
            "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "PodInitializing"}}}]}));
        expect(&p, "0/1", "Init:0/2", "0");

        let second = with_init_containers(json!({"phase": "Pending",
            "initContainerStatuses": [
                {"name": "init-a", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "init-b", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "PodInitializing"}}}]}));
        expect(&second, "0/1", "Init:1/2", "0");
    }

    #[test]
    fn failed_init_containers() {
        let error = with_init_containers(json!({"phase": "Pending",
            "initContainerStatuses": [
                {"name": "init-a", "ready": false, "restartCount": 3,
                 "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20)}}}]}));
        expect(&error, "0/1", "Init:Error", "3 (20s ago)");

        let exit = with_init_containers(json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "init-a", "restartCount": 0,
                 "state": {"terminated": {"exitCode": 2}}}]}));
        expect(&exit, "0/1", "Init:ExitCode:2", "0");

        let signal = with_init_containers(json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "init-a", "restartCount": 0,
                 "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}));
        expect(&signal, "0/1", "Init:Signal:9", "0");

        let backoff = with_init_containers(json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "init-a", "restartCount": 0,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}));
        expect(&backoff, "0/1", "Init:CrashLoopBackOff", "0");
    }

    #[test]
    fn started_sidecars_count_as_ready_containers() {
        let mut p = pod(json!({"phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"},
                           {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true,
                 "restartCount": 1, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(90)}}}],
            "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0,
                 "state": {"running": {}}}]}));
        p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
        expect(&p, "2/2", "Running", "1 (90s ago)");
    }

    #[test]
    fn running_pod() {
        let p = pod(json!({"phase": "Running", "podIP": "10.0.0.5",
            "podIPs": [{"ip": "10.0.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0,
                 "state": {"running": {"startedAt": ago(60)}}}]}));
        expect(&p, "1/1", "Running", "0");
        assert_eq!(cells(&p)[5], "10.0.0.5");
    }

    #[test]
    fn completed_and_failed_pods() {
        let done = pod(json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "main", "ready": false, "restartCount": 0,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}));
        expect(&done, "0/1", "Completed", "0");
        let t = table("pods", &[done], "1", now(), true);
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");

        let failed = pod(json!({"phase": "Failed", "containerStatuses": [
            {"name": "main", "ready": false, "restartCount": 0,
             "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}));
        expect(&failed, "0/1", "Error", "0");

        let killed = pod(json!({"phase": "Failed", "containerStatuses": [
            {"name": "main", "restartCount": 0, "state": {"terminated": {"exitCode": 143}}}]}));
        expect(&killed, "0/1", "ExitCode:143", "0");
    }

    #[test]
    fn completed_container_next_to_a_running_one() {
        let mut p = pod(json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {"name": "job", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "main", "ready": true, "restartCount": 0, "state": {"running": {}}}]}));
        p["spec"]["containers"] = json!([{"name": "job"}, {"name": "main"}]);
        expect(&p, "1/2", "NotReady", "0");
        p["status"]["conditions"][0]["status"] = json!("True");
        expect(&p, "1/2", "Running", "0");
    }

    #[test]
    fn terminating_pods() {
        let mut p = pod(json!({"phase": "Running",
            "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0,
                 "state": {"running": {}}}]}));
        p["metadata"]["deletionTimestamp"] = json!(ago(1));
        expect(&p, "1/1", "Terminating", "0");
        // Finished pods keep their final status while they are deleted.
        p["status"]["phase"] = json!("Succeeded");
        p["status"]["containerStatuses"] = json!([{"name": "main", "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
        expect(&p, "0/1", "Completed", "0");
    }

    #[test]
    fn restarts_show_when_the_last_one_was() {
        let p = pod(json!({"phase": "Running",
            "containerStatuses": [{"name": "main", "ready": true, "restartCount": 2,
                 "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(5)}}}]}));
        expect(&p, "1/1", "Running", "2 (5s ago)");
        let no_time = pod(json!({"phase": "Running",
            "containerStatuses": [{"name": "main", "ready": true, "restartCount": 2,
                 "state": {"running": {}}}]}));
        expect(&no_time, "1/1", "Running", "2");
    }

    #[test]
    fn wide_pod_cells() {
        let mut p = pod(json!({"phase": "Pending", "nominatedNodeName": "node-2",
            "conditions": [{"type": "example.com/gate", "status": "True"}]}));
        p["spec"]["readinessGates"] = json!([
            {"conditionType": "example.com/gate"}, {"conditionType": "example.com/other"}]);
        p["spec"]["nodeName"] = json!("");
        let c = cells(&p);
        assert_eq!(
            c[5..],
            [json!("<none>"), json!("<none>"), json!("node-2"), json!("1/2")]
        );
        p["metadata"].as_object_mut().unwrap().remove("creationTimestamp");
        assert_eq!(cells(&p)[4], "<unknown>");
    }

    #[test]
    fn event_row() {
        let event = json!({
            "metadata": {"name": "demo.17a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "demo",
                               "fieldPath": "spec.containers{main}"},
            "reason": "Started", "type": "Normal", "message": "Started container main\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(300), "lastTimestamp": ago(30), "count": 3
        });
        let t = table("events", &[event], "9", now(), true);
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 10);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "30s",
                "Normal",
                "Started",
                "pod/demo",
                "spec.containers{main}",
                "kubelet, node-1",
                "Started container main",
                "5m",
                3,
                "demo.17a"
            ])
        );
    }

    #[test]
    fn new_style_event_row() {
        let event = json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Node"},
            "eventTime": "2024-05-01T11:59:00.000000Z",
            "reportingComponent": "scheduler",
            "series": {"count": 4, "lastObservedTime": "2024-05-01T11:59:50.000000Z"}
        });
        let c = table("events", &[event], "9", now(), true)["rows"][0]["cells"].clone();
        assert_eq!(c[0], "10s");
        assert_eq!(c[3], "node");
        assert_eq!(c[5], "scheduler");
        assert_eq!(c[7], "60s");
        assert_eq!(c[8], 4);
    }

    #[test]
    fn secret_row() {
        let secret = json!({
            "metadata": {"name": "creds", "creationTimestamp": ago(3 * 86400)},
            "type": "Opaque", "data": {"user": "dQ==", "pass": "cA=="}
        });
        let t = table("secrets", &[secret], "3", now(), true);
        assert_eq!(t["rows"][0]["cells"], json!(["creds", "Opaque", 2, "3d"]));
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "Type", "Data", "Age"]);
    }

    #[test]
    fn other_resources() {
        let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": ago(45)},
                        "data": {"a": "1"}, "binaryData": {"b": "AA=="}});
        let row = &table("configmaps", &[cm], "1", now(), true)["rows"][0];
        assert_eq!(row["cells"], json!(["cfg", 2, "45s"]));

        let ns = json!({"metadata": {"name": "default", "creationTimestamp": ago(7200)},
                        "status": {"phase": "Active"}});
        let row = &table("namespaces", &[ns], "1", now(), true)["rows"][0];
        assert_eq!(row["cells"], json!(["default", "Active", "120m"]));

        let sa = json!({"metadata": {"name": "default", "creationTimestamp": ago(60)},
                        "secrets": [{"name": "t"}]});
        let row = &table("serviceaccounts", &[sa], "1", now(), true)["rows"][0];
        assert_eq!(row["cells"], json!(["default", 1, "60s"]));

        let lease = json!({"metadata": {"name": "leader"}});
        let t = table("leases", &[lease], "1", now(), true);
        assert_eq!(t["rows"][0]["cells"], json!(["leader", "<unknown>"]));
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 2);
    }
}
