//! A Pod's volumes as real directories: emptyDir, secret, configMap, downwardAPI and
//! projected are written under the Pod's directory; hostPath is the host path itself;
//! persistentVolumeClaim and csi are plain directories (a claim's outlives the Pod).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::env::{config_map_bytes, field_ref, secret_bytes};
use super::process::Mount;
use crate::store::Store;

/// A volume that cannot be set up yet (the kubelet retries: FailedMount).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("MountVolume.SetUp failed for volume \"{volume}\" : {reason}")]
pub struct MountError {
    pub volume: String,
    pub reason: String,
}

/// One file of a projected volume.
#[derive(Debug, Clone, PartialEq)]
struct File {
    path: String,
    data: Vec<u8>,
    mode: u32,
}

/// Where each volume of the Pod lives on the host.
#[derive(Debug, Default, Clone)]
pub struct Volumes {
    pub dirs: HashMap<String, PathBuf>,
}

fn mount_error(volume: &str, reason: impl Into<String>) -> MountError {
    MountError {
        volume: volume.to_string(),
        reason: reason.into(),
    }
}

/// Sets up every volume of `pod` under `pod_dir`. Secrets and ConfigMaps are read from
/// the store now; a missing one is a MountError to retry.
pub fn set_up(store: &Store, pod: &Value, pod_dir: &Path, data_dir: &Path) -> Result<Volumes, MountError> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut volumes = Volumes::default();
    for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = volume["name"].as_str().unwrap_or_default();
        let own_dir = pod_dir.join("volumes").join(name);
        let dir = if let Some(host) = volume.get("hostPath") {
            let path = PathBuf::from(host["path"].as_str().unwrap_or("/"));
            let kind = host["type"].as_str().unwrap_or("");
            match kind {
                "Directory" | "File" | "Socket" | "CharDevice" | "BlockDevice" if !path.exists() => {
                    return Err(mount_error(
                        name,
                        format!(
                            "hostPath type check failed: {} is not a {}",
                            path.display(),
                            kind.to_lowercase()
                        ),
                    ));
                }
                "FileOrCreate" if !path.exists() => {
                    create_dir(path.parent().unwrap_or(Path::new("/")), name)?;
                    std::fs::write(&path, b"").map_err(|e| mount_error(name, e.to_string()))?;
                }
                _ if !path.exists() => create_dir(&path, name)?,
                _ => {}
            }
            path
        } else if let Some(claim) = volume.get("persistentVolumeClaim") {
            let claim = claim["claimName"].as_str().unwrap_or(name);
            let dir = data_dir.join("pvc").join(namespace).join(claim);
            create_dir(&dir, name)?;
            dir
        } else {
            create_dir(&own_dir, name)?;
            let files = projection(store, pod, volume, name)?;
            if let Some(files) = files {
                write_files(&own_dir, &files, name)?;
            }
            own_dir
        };
        volumes.dirs.insert(name.to_string(), dir);
    }
    Ok(volumes)
}

/// Rewrites the files of downward-API (and projected) volumes after labels or
/// annotations changed, as the kubelet keeps them current.
pub fn refresh(store: &Store, pod: &Value, volumes: &Volumes) {
    for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        if volume.get("downwardAPI").is_none() && volume.get("projected").is_none() {
            continue;
        }
        let name = volume["name"].as_str().unwrap_or_default();
        if let (Some(dir), Ok(Some(files))) = (volumes.dirs.get(name), projection(store, pod, volume, name)) {
            let _ = write_files(dir, &files, name);
        }
    }
}

fn create_dir(dir: &Path, volume: &str) -> Result<(), MountError> {
    std::fs::create_dir_all(dir).map_err(|e| mount_error(volume, format!("mkdir {}: {e}", dir.display())))?;
    // Shared volumes must be writable by whatever user the containers run as.
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777));
    Ok(())
}

/// The files a projected kind of volume holds; None for plain directories.
fn projection(store: &Store, pod: &Value, volume: &Value, name: &str) -> Result<Option<Vec<File>>, MountError> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let default_mode = |v: &Value| v["defaultMode"].as_u64().unwrap_or(0o644) as u32;
    if let Some(s) = volume.get("secret") {
        let secret_name = s["secretName"].as_str().unwrap_or("");
        let data = secret_bytes(store, namespace, secret_name);
        return keyed_files(data, s, default_mode(s), name, "secret", secret_name).map(Some);
    }
    if let Some(c) = volume.get("configMap") {
        let cm_name = c["name"].as_str().unwrap_or("");
        let data = config_map_bytes(store, namespace, cm_name);
        return keyed_files(data, c, default_mode(c), name, "configmap", cm_name).map(Some);
    }
    if let Some(d) = volume.get("downwardAPI") {
        return downward_files(pod, d, default_mode(d), name).map(Some);
    }
    if let Some(p) = volume.get("projected") {
        let mode = default_mode(p);
        let mut files = Vec::new();
        for source in p["sources"].as_array().into_iter().flatten() {
            if let Some(s) = source.get("secret") {
                let n = s["name"].as_str().unwrap_or("");
                files.extend(keyed_files(
                    secret_bytes(store, namespace, n),
                    s,
                    mode,
                    name,
                    "secret",
                    n,
                )?);
            } else if let Some(c) = source.get("configMap") {
                let n = c["name"].as_str().unwrap_or("");
                files.extend(keyed_files(
                    config_map_bytes(store, namespace, n),
                    c,
                    mode,
                    name,
                    "configmap",
                    n,
                )?);
            } else if let Some(d) = source.get("downwardAPI") {
                files.extend(downward_files(pod, d, mode, name)?);
            } else if let Some(t) = source.get("serviceAccountToken") {
                let account = pod["spec"]["serviceAccountName"].as_str().unwrap_or("default");
                let token = format!("kube-sim-token:{namespace}:{account}");
                files.push(File {
                    path: t["path"].as_str().unwrap_or("token").to_string(),
                    data: token.into_bytes(),
                    mode,
                });
            }
        }
        return Ok(Some(files));
    }
    Ok(None)
}

fn keyed_files(
    data: Option<Vec<(String, Vec<u8>)>>,
    source: &Value,
    default_mode: u32,
    volume: &str,
    kind: &str,
    object: &str,
) -> Result<Vec<File>, MountError> {
    let optional = source["optional"].as_bool().unwrap_or(false);
    let Some(data) = data else {
        return if optional {
            Ok(Vec::new())
        } else {
            Err(mount_error(volume, format!("{kind} \"{object}\" not found")))
        };
    };
    let Some(items) = source["items"].as_array() else {
        return Ok(data
            .into_iter()
            .map(|(path, data)| File {
                path,
                data,
                mode: default_mode,
            })
            .collect());
    };
    items
        .iter()
        .filter_map(|item| {
            let key = item["key"].as_str().unwrap_or("");
            let mode = item["mode"].as_u64().map(|m| m as u32).unwrap_or(default_mode);
            match data.iter().find(|(k, _)| k == key) {
                Some((_, bytes)) => Some(Ok(File {
                    path: item["path"].as_str().unwrap_or(key).to_string(),
                    data: bytes.clone(),
                    mode,
                })),
                None if optional => None,
                None => Some(Err(mount_error(
                    volume,
                    format!("references non-existent {kind} key: {key}"),
                ))),
            }
        })
        .collect()
}

fn downward_files(pod: &Value, source: &Value, default_mode: u32, volume: &str) -> Result<Vec<File>, MountError> {
    source["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let path = item["path"].as_str().unwrap_or("").to_string();
            let mode = item["mode"].as_u64().map(|m| m as u32).unwrap_or(default_mode);
            let data = if let Some(field) = item.get("fieldRef") {
                let fp = field["fieldPath"].as_str().unwrap_or("");
                field_ref(pod, fp).ok_or_else(|| mount_error(volume, format!("unsupported fieldPath: {fp}")))?
            } else if let Some(r) = item.get("resourceFieldRef") {
                let container_name = r["containerName"].as_str().unwrap_or("");
                let container = pod["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["name"] == container_name)
                    .cloned()
                    .unwrap_or_default();
                super::env::resource_field_ref(pod, &container, r)
            } else {
                String::new()
            };
            Ok(File {
                path,
                data: data.into_bytes(),
                mode,
            })
        })
        .collect()
}

/// Writes each file through a temporary name and a rename, so a reader never sees a
/// half-written file (the kubelet's atomic writer swaps a symlink for the same reason).
fn write_files(dir: &Path, files: &[File], volume: &str) -> Result<(), MountError> {
    for file in files {
        let target = dir.join(&file.path);
        if let Some(parent) = target.parent() {
            create_dir(parent, volume)?;
        }
        let temp = target.with_extension("kube-sim-tmp");
        std::fs::write(&temp, &file.data).map_err(|e| mount_error(volume, e.to_string()))?;
        let _ = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(file.mode));
        std::fs::rename(&temp, &target).map_err(|e| mount_error(volume, e.to_string()))?;
    }
    Ok(())
}

/// The bind mounts for one container: its volumeMounts (with subPath and readOnly).
pub fn mounts_for(container: &Value, volumes: &Volumes) -> Vec<Mount> {
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let dir = volumes.dirs.get(m["name"].as_str()?)?;
            let source = match m["subPath"].as_str().filter(|s| !s.is_empty()) {
                Some(sub) => {
                    let path = dir.join(sub);
                    if !path.exists() {
                        let _ = std::fs::create_dir_all(&path);
                        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777));
                    }
                    path
                }
                None => dir.clone(),
            };
            Some(Mount {
                source,
                target: PathBuf::from(m["mountPath"].as_str()?),
                read_only: m["readOnly"].as_bool().unwrap_or(false),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_create_defaults;
    use crate::resources::SECRETS;
    use serde_json::json;

    #[test]
    fn secret_items_downward_and_missing_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(10);
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"a": "1"}}, "spec": {"volumes": [
            {"name": "creds", "secret": {"secretName": "s", "items": [{"key": "token", "path": "auth/token"}]}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "scratch", "emptyDir": {}},
        ]}});
        let err = set_up(&store, &pod, dir.path(), dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "MountVolume.SetUp failed for volume \"creds\" : secret \"s\" not found"
        );
        let mut secret = json!({"metadata": {"name": "s"}, "stringData": {"token": "t"}});
        apply_create_defaults(SECRETS, "ns", &mut secret);
        store.create(SECRETS, "ns", secret).unwrap();
        let volumes = set_up(&store, &pod, dir.path(), dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(volumes.dirs["creds"].join("auth/token")).unwrap(),
            "t"
        );
        assert_eq!(
            std::fs::read_to_string(volumes.dirs["info"].join("labels")).unwrap(),
            "a=\"1\""
        );
        let mut relabelled = pod.clone();
        relabelled["metadata"]["labels"]["b"] = json!("2");
        refresh(&store, &relabelled, &volumes);
        assert_eq!(
            std::fs::read_to_string(volumes.dirs["info"].join("labels")).unwrap(),
            "a=\"1\"\nb=\"2\""
        );
        let container = json!({"volumeMounts": [{"name": "scratch", "mountPath": "/builds", "subPath": "x", "readOnly": true}, {"name": "nope", "mountPath": "/n"}]});
        let mounts = mounts_for(&container, &volumes);
        assert_eq!(
            mounts,
            vec![Mount {
                source: volumes.dirs["scratch"].join("x"),
                target: "/builds".into(),
                read_only: true
            }]
        );
    }
}
