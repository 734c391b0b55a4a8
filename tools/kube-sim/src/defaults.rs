//! What the API server fills in on create: metadata (uid, timestamps, generateName),
//! the Pod spec defaults, and the Secret `stringData` merge.

use base64::Engine;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::resources::{Resource, NAMESPACES, PODS, SECRETS, SERVICE_ACCOUNTS};

/// RFC 3339 in whole seconds with `Z`, as metav1.Time serialises.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// Resolves `generateName` the way the real server does: 5 random characters appended.
pub fn resolve_generate_name(object: &mut Value) {
    let meta = &mut object["metadata"];
    let has_name = meta["name"].as_str().is_some_and(|n| !n.is_empty());
    if has_name {
        return;
    }
    if let Some(prefix) = meta["generateName"].as_str() {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut rng = rand::thread_rng();
        let suffix: String = (0..5)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        meta["name"] = json!(format!("{prefix}{suffix}"));
    }
}

/// Fills the server-set metadata and the kind's defaults on a new object.
pub fn apply_create_defaults(resource: Resource, namespace: &str, object: &mut Value) {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    object["apiVersion"] = json!("v1");
    object["kind"] = json!(resource.kind);
    let meta = &mut object["metadata"];
    meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
    meta["creationTimestamp"] = json!(now());
    if resource.namespaced {
        meta["namespace"] = json!(namespace);
    } else if let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    for transient in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"] {
        if let Some(m) = meta.as_object_mut() {
            m.remove(transient);
        }
    }
    match resource {
        PODS => pod_defaults(object),
        SECRETS => secret_defaults(object),
        NAMESPACES => {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
        }
        SERVICE_ACCOUNTS => {}
        _ => {}
    }
}

fn pod_defaults(pod: &mut Value) {
    pod["metadata"]["generation"] = json!(1);
    let spec = ensure_object(&mut pod["spec"]);
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "enableServiceLinks", json!(true));
    default(spec, "securityContext", json!({}));
    default(spec, "priority", json!(0));
    let account = spec
        .get("serviceAccountName")
        .or_else(|| spec.get("serviceAccount"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(account));
    spec.insert("serviceAccount".into(), json!(account));
    for list in ["initContainers", "containers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            containers.iter_mut().for_each(container_defaults);
        }
    }
    pod["status"] = json!({"phase": "Pending", "qosClass": qos_class(&pod["spec"])});
}

fn container_defaults(container: &mut Value) {
    let image = container["image"].as_str().unwrap_or_default().to_string();
    let Some(c) = container.as_object_mut() else {
        return;
    };
    let pull = if image_is_latest(&image) {
        "Always"
    } else {
        "IfNotPresent"
    };
    default(c, "imagePullPolicy", json!(pull));
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
}

fn image_is_latest(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        None => !image.contains('@'),
        Some((_, tag)) => tag == "latest",
    }
}

/// The QoS class from requests and limits, as the API server computes it.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|list| spec[*list].as_array())
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c["resources"]["requests"].as_object();
        let limits = c["resources"]["limits"].as_object();
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

fn secret_defaults(secret: &mut Value) {
    merge_string_data(secret);
    if secret["type"].as_str().is_none_or(str::is_empty) {
        secret["type"] = json!("Opaque");
    }
}

/// Moves `stringData` into base64 `data`, as the server does on every write.
pub fn merge_string_data(secret: &mut Value) {
    let Some(string_data) = secret.as_object_mut().and_then(|s| s.remove("stringData")) else {
        return;
    };
    let data = ensure_object(&mut secret["data"]);
    if let Some(entries) = string_data.as_object() {
        for (key, value) in entries {
            let text = value.as_str().unwrap_or_default();
            data.insert(
                key.clone(),
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

pub fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    value.as_object_mut().expect("just made an object")
}

fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_gets_server_defaults() {
        let mut pod = json!({"metadata": {"generateName": "job-"}, "spec": {"containers": [
            {"name": "a", "image": "busybox"},
            {"name": "b", "image": "alpine:3.19", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        ]}});
        resolve_generate_name(&mut pod);
        apply_create_defaults(PODS, "ci", &mut pod);
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("job-") && name.len() == 9, "{name}");
        assert_eq!(pod["metadata"]["namespace"], "ci");
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            pod["spec"]["containers"][1]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(pod["status"], json!({"phase": "Pending", "qosClass": "Burstable"}));
    }

    #[test]
    fn qos_classes() {
        let guaranteed = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        assert_eq!(qos_class(&json!({"containers": [{}]})), "BestEffort");
    }

    #[test]
    fn secret_string_data_becomes_data() {
        let mut secret = json!({"metadata": {"name": "s"}, "stringData": {"token": "abc"}});
        apply_create_defaults(SECRETS, "default", &mut secret);
        assert_eq!(secret["data"]["token"], "YWJj");
        assert_eq!(secret["type"], "Opaque");
        assert!(secret.get("stringData").is_none());
    }
}
