//! `[runners.kubernetes.volumes]`: the runner entry's volumes on the job Pod, mounted into the
//! build, helper and service containers as the official runner does — host paths, PVCs,
//! ConfigMaps and Secrets (with `items`), emptyDirs (`medium`, `size_limit`), CSI, NFS and
//! projected volumes, each with `mount_path`, `sub_path`, `read_only`.

use flotilla_config::kubernetes::volumes::{KeyToPaths, MountPropagation};
use flotilla_config::KubernetesConfig;
use k8s_openapi::api::core::v1::{
    CSIVolumeSource, ConfigMapProjection, ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, KeyToPath,
    NFSVolumeSource, PersistentVolumeClaimVolumeSource, ProjectedVolumeSource, SecretProjection, SecretVolumeSource,
    Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The volumes, and the mounts every job container gets.
pub fn volumes(kube: &KubernetesConfig) -> (Vec<Volume>, Vec<VolumeMount>) {
    let configured = &kube.volumes;
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let mut add = |name: &str,
                   mount_path: &str,
                   sub_path: &Option<String>,
                   read_only: bool,
                   propagation: Option<MountPropagation>,
                   volume: Volume| {
        mounts.push(VolumeMount {
            name: name.to_string(),
            mount_path: mount_path.to_string(),
            sub_path: sub_path.clone(),
            read_only: read_only.then_some(true),
            mount_propagation: propagation.map(|p| p.as_str().to_string()),
            ..Default::default()
        });
        volumes.push(Volume {
            name: name.to_string(),
            ..volume
        });
    };
    for v in &configured.host_path {
        let source = HostPathVolumeSource {
            path: v.effective_host_path().to_string(),
            ..Default::default()
        };
        let volume = Volume {
            host_path: Some(source),
            ..Default::default()
        };
        add(
            &v.name,
            &v.mount_path,
            &v.sub_path,
            v.read_only,
            v.mount_propagation,
            volume,
        );
    }
    for v in &configured.pvc {
        let source = PersistentVolumeClaimVolumeSource {
            claim_name: v.name.clone(),
            read_only: v.read_only.then_some(true),
        };
        let volume = Volume {
            persistent_volume_claim: Some(source),
            ..Default::default()
        };
        add(
            &v.name,
            &v.mount_path,
            &v.sub_path,
            v.read_only,
            v.mount_propagation,
            volume,
        );
    }
    for v in &configured.config_map {
        let source = ConfigMapVolumeSource {
            name: v.name.clone(),
            items: items(&v.items),
            ..Default::default()
        };
        let volume = Volume {
            config_map: Some(source),
            ..Default::default()
        };
        add(&v.name, &v.mount_path, &v.sub_path, v.read_only, None, volume);
    }
    for v in &configured.secret {
        let source = SecretVolumeSource {
            secret_name: Some(v.name.clone()),
            items: items(&v.items),
            ..Default::default()
        };
        let volume = Volume {
            secret: Some(source),
            ..Default::default()
        };
        add(&v.name, &v.mount_path, &v.sub_path, v.read_only, None, volume);
    }
    for v in &configured.empty_dir {
        let source = EmptyDirVolumeSource {
            medium: v.medium.map(|m| m.as_str().to_string()),
            size_limit: v.size_limit.as_ref().map(|q| Quantity(q.to_string())),
        };
        let volume = Volume {
            empty_dir: Some(source),
            ..Default::default()
        };
        add(&v.name, &v.mount_path, &v.sub_path, false, v.mount_propagation, volume);
    }
    for v in &configured.csi {
        let source = CSIVolumeSource {
            driver: v.driver.clone(),
            fs_type: v.fs_type.clone(),
            read_only: v.read_only.then_some(true),
            volume_attributes: (!v.volume_attributes.is_empty()).then(|| v.volume_attributes.clone()),
            ..Default::default()
        };
        let volume = Volume {
            csi: Some(source),
            ..Default::default()
        };
        add(&v.name, &v.mount_path, &v.sub_path, v.read_only, None, volume);
    }
    for v in &configured.nfs {
        let source = NFSVolumeSource {
            server: v.server.clone(),
            path: v.path.clone(),
            read_only: v.read_only.then_some(true),
        };
        let volume = Volume {
            nfs: Some(source),
            ..Default::default()
        };
        add(&v.name, &v.mount_path, &v.sub_path, v.read_only, None, volume);
    }
    for v in &configured.projected {
        let secrets = v.sources.secret.iter().map(|s| VolumeProjection {
            secret: Some(SecretProjection {
                name: s.name.clone(),
                items: items(&s.items),
                ..Default::default()
            }),
            ..Default::default()
        });
        let config_maps = v.sources.config_map.iter().map(|c| VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: c.name.clone(),
                items: items(&c.items),
                ..Default::default()
            }),
            ..Default::default()
        });
        let volume = Volume {
            projected: Some(ProjectedVolumeSource {
                sources: Some(secrets.chain(config_maps).collect()),
                ..Default::default()
            }),
            ..Default::default()
        };
        add(&v.name, &v.mount_path, &v.sub_path, v.read_only, None, volume);
    }
    (volumes, mounts)
}

fn items(items: &KeyToPaths) -> Option<Vec<KeyToPath>> {
    (!items.0.is_empty()).then(|| {
        items
            .0
            .iter()
            .map(|item| KeyToPath {
                key: item.key.clone(),
                path: item.path.clone(),
                ..Default::default()
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_becomes_a_volume_and_a_mount() {
        let text = r#"
[[runners]]
  url = "https://g.example.com"
  token = "t"
  executor = "kubernetes"
  [[runners.kubernetes.volumes.host_path]]
    name = "docker"
    mount_path = "/var/run/docker.sock"
    read_only = true
  [[runners.kubernetes.volumes.pvc]]
    name = "cache"
    mount_path = "/cache"
    sub_path = "ci"
  [[runners.kubernetes.volumes.config_map]]
    name = "settings"
    mount_path = "/etc/settings"
    [runners.kubernetes.volumes.config_map.items]
      "app.yml" = "config.yml"
  [[runners.kubernetes.volumes.empty_dir]]
    name = "scratch"
    mount_path = "/scratch"
    medium = "Memory"
    size_limit = "1Gi"
  [[runners.kubernetes.volumes.csi]]
    name = "secrets-store"
    mount_path = "/mnt/secrets"
    driver = "secrets-store.csi.k8s.io"
    read_only = true
    [runners.kubernetes.volumes.csi.volume_attributes]
      secretProviderClass = "vault"
"#;
        let kube = flotilla_config::runner_config_from_str(text).unwrap().config.runners[0]
            .kubernetes
            .clone();
        let (volumes, mounts) = volumes(&kube);
        let volumes = serde_json::to_value(volumes).unwrap();
        assert_eq!(
            volumes[0]["hostPath"]["path"], "/var/run/docker.sock",
            "host_path defaults to mount_path"
        );
        assert_eq!(volumes[1]["persistentVolumeClaim"]["claimName"], "cache");
        assert_eq!(
            volumes[2]["configMap"]["items"][0],
            serde_json::json!({"key": "app.yml", "path": "config.yml"})
        );
        assert_eq!(
            volumes[3]["emptyDir"],
            serde_json::json!({"medium": "Memory", "sizeLimit": "1Gi"})
        );
        assert_eq!(volumes[4]["csi"]["volumeAttributes"]["secretProviderClass"], "vault");
        let mounts = serde_json::to_value(mounts).unwrap();
        assert_eq!(mounts[0]["readOnly"], true);
        assert_eq!(mounts[1]["subPath"], "ci");
        assert_eq!(mounts.as_array().unwrap().len(), 5);
    }
}
