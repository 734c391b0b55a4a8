//! `[[runners.kubernetes.volumes.<type>]]`: the volumes mounted into the build container.
//!
//! The types and keys are the official runner's (`host_path`, `pvc`, `config_map`, `secret`,
//! `empty_dir`, `csi`, `nfs`), plus `projected` (several secrets and config maps in one
//! directory), which the official runner does not have but operators' configs use.

use std::collections::{BTreeMap, HashMap};

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::de::{keyword_enum, optional};
use crate::path::KeyPath;
use crate::quantity::Quantity;
use crate::validate::{has_variables, Validate, Validator};

keyword_enum! {
    /// How mounts propagate between the host and the container (`mount_propagation`).
    pub enum MountPropagation {
        None = "None",
        HostToContainer = "HostToContainer",
        Bidirectional = "Bidirectional",
    }
}

/// Every volume, by type, as `[[runners.kubernetes.volumes.<type>]]` lists them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Volumes {
    /// A directory of the node (`host_path`, default: the same path as `mount_path`).
    #[serde(default)]
    pub host_path: Vec<HostPathVolume>,
    /// A PersistentVolumeClaim named `name` (the name may use job variables).
    #[serde(default)]
    pub pvc: Vec<PvcVolume>,
    /// A ConfigMap named `name`; `items` picks keys and their file paths (default: every key).
    #[serde(default)]
    pub config_map: Vec<KeysVolume>,
    /// A Secret named `name`; `items` picks keys and their file paths (default: every key).
    #[serde(default)]
    pub secret: Vec<KeysVolume>,
    /// A fresh directory for the job (`medium = "Memory"` for tmpfs).
    #[serde(default)]
    pub empty_dir: Vec<EmptyDirVolume>,
    /// A volume of a CSI driver.
    #[serde(default)]
    pub csi: Vec<CsiVolume>,
    /// An NFS share.
    #[serde(default)]
    pub nfs: Vec<NfsVolume>,
    /// Several Secrets and ConfigMaps merged into one directory (Flotilla extension).
    #[serde(default)]
    pub projected: Vec<ProjectedVolume>,
}

/// `[[runners.kubernetes.volumes.host_path]]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostPathVolume {
    /// Volume name (required, unique among the Pod's volumes).
    #[serde(default)]
    pub name: String,
    /// Where the volume appears in the container (required).
    #[serde(default)]
    pub mount_path: String,
    /// Mount this sub-directory of the volume instead of its root.
    #[serde(default, deserialize_with = "optional")]
    pub sub_path: Option<String>,
    /// Mount read-only (default false).
    #[serde(default)]
    pub read_only: bool,
    /// The node's path (default: `mount_path`).
    #[serde(default, deserialize_with = "optional")]
    pub host_path: Option<String>,
    #[serde(default, deserialize_with = "optional")]
    pub mount_propagation: Option<MountPropagation>,
}

impl HostPathVolume {
    /// The node path that is mounted: `host_path`, else `mount_path` (the official default).
    pub fn effective_host_path(&self) -> &str {
        self.host_path.as_deref().unwrap_or(&self.mount_path)
    }
}

/// `[[runners.kubernetes.volumes.pvc]]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PvcVolume {
    /// Volume name and claim name (required; may use job variables, e.g. `build-$CI_CONCURRENT_ID`).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
    #[serde(default, deserialize_with = "optional")]
    pub sub_path: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default, deserialize_with = "optional")]
    pub mount_propagation: Option<MountPropagation>,
}

/// `[[runners.kubernetes.volumes.config_map]]` and `[[runners.kubernetes.volumes.secret]]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeysVolume {
    /// Volume name and the ConfigMap's / Secret's name (required).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
    #[serde(default, deserialize_with = "optional")]
    pub sub_path: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    /// Keys to mount and their relative file paths (`"key" = "path"`); default: every key.
    #[serde(default)]
    pub items: KeyToPaths,
}

keyword_enum! {
    /// Where an emptyDir lives: node disk (unset), RAM, or huge pages.
    pub enum StorageMedium {
        Memory = "Memory",
        HugePages = "HugePages",
    }
}

/// `[[runners.kubernetes.volumes.empty_dir]]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmptyDirVolume {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
    #[serde(default, deserialize_with = "optional")]
    pub sub_path: Option<String>,
    /// `"Memory"` for a tmpfs; default: node disk.
    #[serde(default, deserialize_with = "optional")]
    pub medium: Option<StorageMedium>,
    /// Largest size the directory may reach (a quantity, e.g. `"1Gi"`).
    #[serde(default, deserialize_with = "optional")]
    pub size_limit: Option<Quantity>,
    #[serde(default, deserialize_with = "optional")]
    pub mount_propagation: Option<MountPropagation>,
}

/// `[[runners.kubernetes.volumes.csi]]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CsiVolume {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
    #[serde(default, deserialize_with = "optional")]
    pub sub_path: Option<String>,
    /// The CSI driver's name (required).
    #[serde(default)]
    pub driver: String,
    /// Filesystem type (default: the driver's choice).
    #[serde(default, deserialize_with = "optional")]
    pub fs_type: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    /// Driver-specific attributes.
    #[serde(default)]
    pub volume_attributes: BTreeMap<String, String>,
}

/// `[[runners.kubernetes.volumes.nfs]]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NfsVolume {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
    #[serde(default, deserialize_with = "optional")]
    pub sub_path: Option<String>,
    /// The NFS server (required).
    #[serde(default)]
    pub server: String,
    /// The exported path (required).
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub read_only: bool,
}

/// `[[runners.kubernetes.volumes.projected]]` (Flotilla extension).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectedVolume {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
    #[serde(default, deserialize_with = "optional")]
    pub sub_path: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    /// What goes into the directory (at least one source).
    #[serde(default)]
    pub sources: ProjectedSources,
}

/// `[runners.kubernetes.volumes.projected.sources]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectedSources {
    /// `[[...sources.secret]]`: a Secret's keys (`name`, `items`).
    #[serde(default)]
    pub secret: Vec<ProjectedKeys>,
    /// `[[...sources.config_map]]`: a ConfigMap's keys (`name`, `items`).
    #[serde(default)]
    pub config_map: Vec<ProjectedKeys>,
}

/// One Secret or ConfigMap projected into a volume.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectedKeys {
    /// The Secret's / ConfigMap's name (required).
    #[serde(default)]
    pub name: String,
    /// Keys and their relative paths; default: every key.
    #[serde(default)]
    pub items: KeyToPaths,
}

/// One key of a Secret or ConfigMap and the file it becomes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyToPath {
    #[serde(default)]
    pub key: String,
    /// Relative path inside the volume (no `..`).
    #[serde(default)]
    pub path: String,
}

/// `items`: written as a table (`"key" = "path"`, the official form) or as a list of
/// `{ key, path }` tables (the form projected volumes use in the wild); both are accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct KeyToPaths(pub Vec<KeyToPath>);

impl<'de> Deserialize<'de> for KeyToPaths {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;

        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = KeyToPaths;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of key = \"path\" or a list of { key, path }")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyToPaths, A::Error> {
                let mut items = Vec::new();
                while let Some((key, path)) = map.next_entry::<String, String>()? {
                    items.push(KeyToPath { key, path });
                }
                Ok(KeyToPaths(items))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyToPaths, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<KeyToPath>()? {
                    items.push(item);
                }
                Ok(KeyToPaths(items))
            }
        }

        deserializer.deserialize_any(ItemsVisitor)
    }
}

/// The parts every volume type shares, for the checks that span all of them.
struct Mount<'a> {
    path: KeyPath,
    name: &'a str,
    mount_path: &'a str,
}

impl Volumes {
    fn mounts(&self, path: &KeyPath) -> Vec<Mount<'_>> {
        let mut mounts = Vec::new();
        macro_rules! collect {
            ($($field:ident),+) => {$(
                for (index, volume) in self.$field.iter().enumerate() {
                    mounts.push(Mount {
                        path: path.key(stringify!($field)).index(index),
                        name: &volume.name,
                        mount_path: &volume.mount_path,
                    });
                }
            )+};
        }
        collect!(host_path, pvc, config_map, secret, empty_dir, csi, nfs, projected);
        mounts
    }

    /// Every volume's `mount_path` and `sub_path`, to change in place (a job's variables
    /// may appear in them).
    pub fn mount_paths_mut(&mut self) -> Vec<(&mut String, &mut Option<String>)> {
        let mut paths = Vec::new();
        macro_rules! collect {
            ($($field:ident),+) => {$(
                for volume in self.$field.iter_mut() {
                    paths.push((&mut volume.mount_path, &mut volume.sub_path));
                }
            )+};
        }
        collect!(host_path, pvc, config_map, secret, empty_dir, csi, nfs, projected);
        paths
    }

    /// True when no volume of any type is configured.
    pub fn is_empty(&self) -> bool {
        self.mounts(&KeyPath::root()).is_empty()
    }
}

impl Validate for Volumes {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        let mut names: HashMap<&str, KeyPath> = HashMap::new();
        let mut mount_paths: HashMap<&str, KeyPath> = HashMap::new();
        for mount in self.mounts(path) {
            if validator.require(&mount.path.key("name"), mount.name) && !has_variables(mount.name) {
                validator.check_dns_label(&mount.path.key("name"), mount.name);
                if let Some(first) = names.insert(mount.name, mount.path.clone()) {
                    validator.error(
                        &mount.path.key("name"),
                        format!("{:?} is already the name of {first}", mount.name),
                    );
                }
            }
            if validator.require(&mount.path.key("mount_path"), mount.mount_path) && !has_variables(mount.mount_path) {
                if let Some(first) = mount_paths.insert(mount.mount_path, mount.path.clone()) {
                    validator.error(
                        &mount.path.key("mount_path"),
                        format!("{:?} is already mounted by {first}", mount.mount_path),
                    );
                }
            }
        }
        for (kind, volumes) in [("config_map", &self.config_map), ("secret", &self.secret)] {
            for (index, volume) in volumes.iter().enumerate() {
                check_items(&volume.items, &path.key(kind).index(index).key("items"), validator);
            }
        }
        for (index, volume) in self.csi.iter().enumerate() {
            validator.require(&path.key("csi").index(index).key("driver"), &volume.driver);
        }
        for (index, volume) in self.nfs.iter().enumerate() {
            let volume_path = path.key("nfs").index(index);
            validator.require(&volume_path.key("server"), &volume.server);
            validator.require(&volume_path.key("path"), &volume.path);
        }
        for (index, volume) in self.empty_dir.iter().enumerate() {
            if volume.size_limit.as_ref().is_some_and(Quantity::is_negative) {
                validator.error(
                    &path.key("empty_dir").index(index).key("size_limit"),
                    "must not be negative",
                );
            }
        }
        for (index, volume) in self.projected.iter().enumerate() {
            let sources_path = path.key("projected").index(index).key("sources");
            if volume.sources.secret.is_empty() && volume.sources.config_map.is_empty() {
                validator.error(&sources_path, "needs at least one secret or config_map source");
            }
            for (kind, sources) in [
                ("secret", &volume.sources.secret),
                ("config_map", &volume.sources.config_map),
            ] {
                for (source_index, source) in sources.iter().enumerate() {
                    let source_path = sources_path.key(kind).index(source_index);
                    validator.require(&source_path.key("name"), &source.name);
                    check_items(&source.items, &source_path.key("items"), validator);
                }
            }
        }
    }
}

/// Item paths are relative to the volume and may not climb out of it (Kubernetes refuses both).
fn check_items(items: &KeyToPaths, path: &KeyPath, validator: &mut Validator) {
    for item in &items.0 {
        let item_path = path.key(item.key.clone());
        if item.key.is_empty() {
            validator.error(path, "an item has an empty key");
        } else if item.path.is_empty() {
            validator.error(&item_path, "the file path is empty");
        } else if item.path.starts_with('/') || item.path.split('/').any(|part| part == "..") {
            validator.error(
                &item_path,
                format!("{:?} must be a relative path without '..'", item.path),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(text: &str) -> Vec<String> {
        let volumes: Volumes = toml::from_str(text).unwrap();
        let mut validator = Validator::default();
        volumes.validate(&KeyPath::root().key("volumes"), &mut validator);
        validator.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_type_parses_with_its_options() {
        let volumes: Volumes = toml::from_str(
            r#"
            [[host_path]]
            name = "hostpath-2"
            mount_path = "/path/to/mount/point_2"
            read_only = true
            [[config_map]]
            name = "config-map-1"
            mount_path = "/path/to/directory"
            [config_map.items]
            "key_1" = "relative/path/to/key_1_file"
            [[empty_dir]]
            name = "empty-dir"
            mount_path = "/path/to/empty_dir"
            medium = "Memory"
            size_limit = "1Gi"
            [[csi]]
            name = "csi-volume"
            mount_path = "/path/to/csi/volume"
            driver = "my-csi-driver"
            fs_type = "ext4"
            read_only = true
            [csi.volume_attributes]
            size = "2Gi"
            [[projected]]
            name = "credentials"
            mount_path = "/credentials"
            [[projected.sources.secret]]
            name = "docker-config"
            items = [{ key = "config.json", path = "docker/config.json" }]
            "#,
        )
        .unwrap();
        assert_eq!(volumes.host_path[0].effective_host_path(), "/path/to/mount/point_2");
        assert_eq!(
            volumes.config_map[0].items.0,
            vec![KeyToPath {
                key: "key_1".into(),
                path: "relative/path/to/key_1_file".into()
            }]
        );
        assert_eq!(volumes.empty_dir[0].medium, Some(StorageMedium::Memory));
        assert_eq!(volumes.empty_dir[0].size_limit.as_ref().unwrap().as_str(), "1Gi");
        assert_eq!(volumes.csi[0].volume_attributes["size"], "2Gi");
        assert_eq!(
            volumes.projected[0].sources.secret[0].items.0[0].path,
            "docker/config.json"
        );
        assert!(!volumes.is_empty());
    }

    #[test]
    fn a_volume_without_mount_path_is_refused() {
        let errors = validate("[[pvc]]\nname = \"pvc-1\"\n");
        assert_eq!(errors, ["volumes.pvc[0].mount_path: is required"]);
    }

    #[test]
    fn names_and_mount_paths_must_be_unique_across_types() {
        let errors = validate(
            "[[pvc]]\nname = \"data\"\nmount_path = \"/data\"\n[[empty_dir]]\nname = \"data\"\nmount_path = \"/data\"\n",
        );
        assert_eq!(
            errors,
            [
                "volumes.empty_dir[0].name: \"data\" is already the name of volumes.pvc[0]",
                "volumes.empty_dir[0].mount_path: \"/data\" is already mounted by volumes.pvc[0]",
            ]
        );
    }

    #[test]
    fn names_with_job_variables_are_not_checked_until_the_job() {
        assert!(validate("[[pvc]]\nname = \"build-$CI_CONCURRENT_ID\"\nmount_path = \"/builds\"\n").is_empty());
    }

    #[test]
    fn type_specific_requirements() {
        let errors = validate(
            "[[csi]]\nname = \"c\"\nmount_path = \"/c\"\n[[nfs]]\nname = \"n\"\nmount_path = \"/n\"\n\
             [[secret]]\nname = \"s\"\nmount_path = \"/s\"\n[secret.items]\nk = \"../escape\"\n\
             [[projected]]\nname = \"p\"\nmount_path = \"/p\"\n",
        );
        assert_eq!(
            errors,
            [
                "volumes.secret[0].items.k: \"../escape\" must be a relative path without '..'",
                "volumes.csi[0].driver: is required",
                "volumes.nfs[0].server: is required",
                "volumes.nfs[0].path: is required",
                "volumes.projected[0].sources: needs at least one secret or config_map source",
            ]
        );
    }

    #[test]
    fn bad_medium_and_size_are_refused_when_decoding() {
        let error = toml::from_str::<Volumes>("[[empty_dir]]\nname = \"e\"\nmount_path = \"/e\"\nmedium = \"Disk\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"Disk\" is not one of Memory, HugePages"), "{error}");
        let error =
            toml::from_str::<Volumes>("[[empty_dir]]\nname = \"e\"\nmount_path = \"/e\"\nsize_limit = \"1GB\"\n")
                .unwrap_err()
                .to_string();
        assert!(error.contains("\"1GB\" is not a valid Kubernetes quantity"), "{error}");
    }
}
