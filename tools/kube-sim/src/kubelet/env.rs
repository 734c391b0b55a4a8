//! A container's environment as the kubelet builds it: `envFrom`, then `env` with
//! `valueFrom` (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef) and `$(VAR)`
//! expansion, on top of the variables every container gets.

use base64::Engine;
use serde_json::Value;

use crate::resources::{CONFIG_MAPS, SECRETS};
use crate::store::Store;
use crate::validation::parse_quantity;

/// Why the kubelet could not build the config (container waits: CreateContainerConfigError).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct EnvError(pub String);

pub fn default_path() -> &'static str {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

/// The environment of `container` in `pod` (the stored Pod, scheduled and with its IP).
pub fn container_env(
    store: &Store,
    pod: &Value,
    container: &Value,
    base: &[(String, String)],
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut env: Vec<(String, String)> = base.to_vec();
    let set = |env: &mut Vec<(String, String)>, key: String, value: String| {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    };
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or("");
        let (data, optional) = if let Some(r) = source.get("secretRef") {
            (
                secret_data(store, namespace, r["name"].as_str().unwrap_or("")),
                r["optional"].as_bool().unwrap_or(false),
            )
        } else if let Some(r) = source.get("configMapRef") {
            (
                config_map_data(store, namespace, r["name"].as_str().unwrap_or("")),
                r["optional"].as_bool().unwrap_or(false),
            )
        } else {
            continue;
        };
        match data {
            Some(entries) => {
                for (k, v) in entries {
                    set(&mut env, format!("{prefix}{k}"), v);
                }
            }
            None if optional => {}
            None => {
                let (kind, name) = if let Some(r) = source.get("secretRef") {
                    ("secret", r["name"].as_str().unwrap_or(""))
                } else {
                    ("configmap", source["configMapRef"]["name"].as_str().unwrap_or(""))
                };
                return Err(EnvError(format!("{kind} \"{name}\" not found")));
            }
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let Some(name) = var["name"].as_str() else { continue };
        let value = if let Some(v) = var.get("value").and_then(Value::as_str) {
            Some(expand(v, &env))
        } else if let Some(from) = var.get("valueFrom") {
            value_from(store, pod, container, namespace, from)?
        } else {
            Some(String::new())
        };
        if let Some(value) = value {
            set(&mut env, name.to_string(), value);
        }
    }
    Ok(env)
}

fn value_from(
    store: &Store,
    pod: &Value,
    container: &Value,
    namespace: &str,
    from: &Value,
) -> Result<Option<String>, EnvError> {
    if let Some(r) = from.get("secretKeyRef") {
        return key_ref(
            secret_data(store, namespace, r["name"].as_str().unwrap_or("")),
            r,
            "secret",
            namespace,
        );
    }
    if let Some(r) = from.get("configMapKeyRef") {
        return key_ref(
            config_map_data(store, namespace, r["name"].as_str().unwrap_or("")),
            r,
            "configmap",
            namespace,
        );
    }
    if let Some(r) = from.get("fieldRef") {
        let path = r["fieldPath"].as_str().unwrap_or("");
        return field_ref(pod, path)
            .map(Some)
            .ok_or_else(|| EnvError(format!("unsupported fieldPath: {path}")));
    }
    if let Some(r) = from.get("resourceFieldRef") {
        return Ok(Some(resource_field_ref(pod, container, r)));
    }
    Ok(None)
}

fn key_ref(
    data: Option<Vec<(String, String)>>,
    r: &Value,
    kind: &str,
    namespace: &str,
) -> Result<Option<String>, EnvError> {
    let name = r["name"].as_str().unwrap_or("");
    let key = r["key"].as_str().unwrap_or("");
    let optional = r["optional"].as_bool().unwrap_or(false);
    match data {
        None if optional => Ok(None),
        None => Err(EnvError(format!("{kind} \"{name}\" not found"))),
        Some(entries) => match entries.into_iter().find(|(k, _)| k == key) {
            Some((_, v)) => Ok(Some(v)),
            None if optional => Ok(None),
            None => {
                let kind_title = if kind == "secret" { "Secret" } else { "ConfigMap" };
                Err(EnvError(format!(
                    "couldn't find key {key} in {kind_title} {namespace}/{name}"
                )))
            }
        },
    }
}

/// A Secret's data, decoded, or None when it does not exist.
pub fn secret_data(store: &Store, namespace: &str, name: &str) -> Option<Vec<(String, String)>> {
    secret_bytes(store, namespace, name).map(as_text)
}

fn as_text(entries: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    entries
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

pub fn secret_bytes(store: &Store, namespace: &str, name: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let secret = store.try_get(SECRETS, namespace, name)?;
    let engine = base64::engine::general_purpose::STANDARD;
    Some(
        secret["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), engine.decode(v.as_str().unwrap_or("")).unwrap_or_default()))
            .collect(),
    )
}

pub fn config_map_data(store: &Store, namespace: &str, name: &str) -> Option<Vec<(String, String)>> {
    config_map_bytes(store, namespace, name).map(as_text)
}

pub fn config_map_bytes(store: &Store, namespace: &str, name: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let cm = store.try_get(CONFIG_MAPS, namespace, name)?;
    let engine = base64::engine::general_purpose::STANDARD;
    let text = cm["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec()));
    let binary = cm["binaryData"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), engine.decode(v.as_str().unwrap_or("")).unwrap_or_default()));
    Some(text.chain(binary).collect())
}

/// The value of a downward-API `fieldPath` (labels/annotations maps rendered as in files).
pub fn field_ref(pod: &Value, path: &str) -> Option<String> {
    let meta = &pod["metadata"];
    let str_of = |v: &Value| v.as_str().unwrap_or("").to_string();
    if let Some(key) = subscript(path, "metadata.labels") {
        return Some(str_of(&meta["labels"][key]));
    }
    if let Some(key) = subscript(path, "metadata.annotations") {
        return Some(str_of(&meta["annotations"][key]));
    }
    Some(match path {
        "metadata.name" => str_of(&meta["name"]),
        "metadata.namespace" => str_of(&meta["namespace"]),
        "metadata.uid" => str_of(&meta["uid"]),
        "metadata.labels" => render_map(&meta["labels"]),
        "metadata.annotations" => render_map(&meta["annotations"]),
        "spec.nodeName" => str_of(&pod["spec"]["nodeName"]),
        "spec.serviceAccountName" => str_of(&pod["spec"]["serviceAccountName"]),
        "status.hostIP" => str_of(&pod["status"]["hostIP"]),
        "status.hostIPs" => str_of(&pod["status"]["hostIP"]),
        "status.podIP" => str_of(&pod["status"]["podIP"]),
        "status.podIPs" => str_of(&pod["status"]["podIP"]),
        _ => return None,
    })
}

fn subscript<'a>(path: &'a str, map: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(map)?.strip_prefix("['")?;
    rest.strip_suffix("']")
}

/// `key="value"` lines sorted by key, the downward API's file format.
pub fn render_map(map: &Value) -> String {
    let mut entries: Vec<(&String, &Value)> = map.as_object().into_iter().flatten().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                serde_json::to_string(v.as_str().unwrap_or("")).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `limits.cpu` & co. for `resourceFieldRef`, rounded up by the divisor as the kubelet does.
pub fn resource_field_ref(pod: &Value, container: &Value, r: &Value) -> String {
    let target = match r["containerName"].as_str() {
        Some(name) if !name.is_empty() => ["containers", "initContainers"]
            .iter()
            .filter_map(|l| pod["spec"][*l].as_array())
            .flatten()
            .find(|c| c["name"] == name)
            .unwrap_or(container),
        _ => container,
    };
    let resource = r["resource"].as_str().unwrap_or("");
    let (section, name) = resource.split_once('.').unwrap_or(("limits", resource));
    let value = target["resources"][section][name]
        .as_str()
        .and_then(|q| parse_quantity(q).ok());
    let value = value.unwrap_or(match (section, name) {
        ("limits", "cpu") => std::thread::available_parallelism()
            .map(|n| n.get() as f64)
            .unwrap_or(1.0),
        ("limits", "memory") | ("limits", "ephemeral-storage") => 64.0 * 1024.0 * 1024.0 * 1024.0,
        _ => 0.0,
    });
    let divisor = r["divisor"]
        .as_str()
        .and_then(|d| parse_quantity(d).ok())
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    format!("{}", (value / divisor).ceil() as i64)
}

/// Expands `$(VAR)` from `env`; `$$` escapes; unknown references stay as written.
pub fn expand(input: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_create_defaults;
    use serde_json::json;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let env = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "x-$(B)-$(A)-$");
    }

    #[test]
    fn builds_env_from_all_sources() {
        let store = Store::new(100);
        let mut secret = json!({"metadata": {"name": "s"}, "stringData": {"token": "t0k"}});
        apply_create_defaults(SECRETS, "ns", &mut secret);
        store.create(SECRETS, "ns", secret).unwrap();
        store
            .create(
                CONFIG_MAPS,
                "ns",
                json!({"metadata": {"name": "c"}, "data": {"MODE": "fast"}}),
            )
            .unwrap();
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}}, "spec": {"nodeName": "sim-node"}, "status": {"podIP": "127.0.0.1"}});
        let container = json!({"name": "c", "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "CM_"}], "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "BOTH", "value": "$(POD)/$(CM_MODE)"},
            {"name": "MISSING", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": true}}},
        ]});
        let env = container_env(&store, &pod, &container, &[]).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("TOKEN"), Some("t0k"));
        assert_eq!(get("CM_MODE"), Some("fast"));
        assert_eq!(get("APP"), Some("x"));
        assert_eq!(get("BOTH"), Some("p/fast"));
        assert_eq!(get("MISSING"), None);
        let bad = json!({"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "nokey"}}}]});
        assert_eq!(
            container_env(&store, &pod, &bad, &[]).unwrap_err().0,
            "couldn't find key nokey in Secret ns/s"
        );
    }

    #[test]
    fn label_files_are_sorted_and_quoted() {
        assert_eq!(
            render_map(&json!({"b": "2", "a": "say \"hi\""})),
            "a=\"say \\\"hi\\\"\"\nb=\"2\""
        );
    }
}
