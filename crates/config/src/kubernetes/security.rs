//! Security settings of the job Pod: `pod_security_context` and the per-container
//! `build_`/`helper_`/`service_`/`init_permissions_container_security_context` tables.
//!
//! Precedence (official): a container's context wins over the pod's, which wins over the job's
//! `image: kubernetes: user`; users set here bypass `allowed_users`/`allowed_groups`.
//! A container's `capabilities.add` replaces the global add list and its `drop` the drop list.

use serde::{Deserialize, Serialize};

use crate::de::{keyword_enum, optional};
use crate::path::KeyPath;
use crate::validate::{Validate, Validator};

keyword_enum! {
    /// A seccomp or AppArmor profile type.
    pub enum ProfileType {
        RuntimeDefault = "RuntimeDefault",
        Localhost = "Localhost",
        Unconfined = "Unconfined",
    }
}

keyword_enum! {
    /// `proc_mount`: `unmasked` for containers that build OCI images. The official runner
    /// title-cases the value, so both spellings are accepted.
    pub enum ProcMount {
        Default = "default" | "Default",
        Unmasked = "unmasked" | "Unmasked",
    }
}

/// `seccomp_profile` / `app_armor_profile`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// `RuntimeDefault`, `Localhost` or `Unconfined`.
    #[serde(rename = "type", default, deserialize_with = "optional")]
    pub profile_type: Option<ProfileType>,
    /// The profile on the node; required with `Localhost`, refused otherwise.
    #[serde(default, deserialize_with = "optional")]
    pub localhost_profile: Option<String>,
}

/// `[runners.kubernetes.pod_security_context]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodSecurityContext {
    /// Group owning the Pod's volumes, added to every container's groups.
    #[serde(default)]
    pub fs_group: Option<i64>,
    /// GID of every container's process.
    #[serde(default)]
    pub run_as_group: Option<i64>,
    /// Refuse to start containers whose user is root.
    #[serde(default)]
    pub run_as_non_root: Option<bool>,
    /// UID of every container's process.
    #[serde(default)]
    pub run_as_user: Option<i64>,
    /// Extra groups of every container's first process.
    #[serde(default)]
    pub supplemental_groups: Vec<i64>,
    /// SELinux type label for every container.
    #[serde(default, deserialize_with = "optional")]
    pub selinux_type: Option<String>,
    #[serde(default)]
    pub seccomp_profile: Option<Profile>,
    /// Requires Kubernetes 1.30 or later.
    #[serde(default)]
    pub app_armor_profile: Option<Profile>,
}

/// `capabilities` of a container security context: `add`/`drop`, without the `CAP_` prefix.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub drop: Vec<String>,
}

/// `[runners.kubernetes.<container>_container_security_context]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSecurityContext {
    /// Its `add` replaces the global add list, its `drop` the global drop list (each on its own).
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Overrides the global `privileged` for this container.
    #[serde(default)]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub run_as_user: Option<i64>,
    #[serde(default)]
    pub run_as_group: Option<i64>,
    #[serde(default)]
    pub run_as_non_root: Option<bool>,
    #[serde(default)]
    pub read_only_root_filesystem: Option<bool>,
    /// Overrides the global `allow_privilege_escalation` for this container.
    #[serde(default)]
    pub allow_privilege_escalation: Option<bool>,
    #[serde(default, deserialize_with = "optional")]
    pub selinux_type: Option<String>,
    /// `default` or `unmasked`.
    #[serde(default, deserialize_with = "optional")]
    pub proc_mount: Option<ProcMount>,
    #[serde(default)]
    pub seccomp_profile: Option<Profile>,
    #[serde(default)]
    pub app_armor_profile: Option<Profile>,
}

impl Validate for Profile {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        match (self.profile_type, &self.localhost_profile) {
            (None, _) => validator.error(&path.key("type"), "is required"),
            (Some(ProfileType::Localhost), None) => {
                validator.error(&path.key("localhost_profile"), "is required when type is Localhost");
            }
            (Some(other), Some(_)) if other != ProfileType::Localhost => {
                validator.error(
                    &path.key("localhost_profile"),
                    format!("is only used when type is Localhost, not {other}"),
                );
            }
            _ => {}
        }
    }
}

/// Checks the ids and the user/non-root combination both context kinds have.
fn check_identity(
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    run_as_non_root: Option<bool>,
    path: &KeyPath,
    validator: &mut Validator,
) {
    for (key, id) in [("run_as_user", run_as_user), ("run_as_group", run_as_group)] {
        if id.is_some_and(|id| id < 0) {
            validator.error(&path.key(key), "must not be negative");
        }
    }
    if run_as_non_root == Some(true) && run_as_user == Some(0) {
        validator.error(
            &path.key("run_as_user"),
            "is 0 (root) while run_as_non_root is true; no container could start",
        );
    }
}

fn check_profiles(seccomp: &Option<Profile>, app_armor: &Option<Profile>, path: &KeyPath, validator: &mut Validator) {
    if let Some(profile) = seccomp {
        profile.validate(&path.key("seccomp_profile"), validator);
    }
    if let Some(profile) = app_armor {
        profile.validate(&path.key("app_armor_profile"), validator);
    }
}

/// Capability names as Kubernetes takes them: upper case, no `CAP_` prefix.
pub(crate) fn check_capabilities(names: &[String], path: &KeyPath, validator: &mut Validator) {
    for (index, name) in names.iter().enumerate() {
        let name_path = path.index(index);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            validator.error(
                &name_path,
                format!("{name:?} is not a capability name (e.g. \"SYS_TIME\")"),
            );
        } else if let Some(bare) = name.strip_prefix("CAP_") {
            validator.note(
                &name_path,
                format!("capabilities are written without the CAP_ prefix: {bare:?}"),
            );
        }
    }
}

impl Validate for PodSecurityContext {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        check_identity(
            self.run_as_user,
            self.run_as_group,
            self.run_as_non_root,
            path,
            validator,
        );
        if self.fs_group.is_some_and(|id| id < 0) {
            validator.error(&path.key("fs_group"), "must not be negative");
        }
        for (index, group) in self.supplemental_groups.iter().enumerate() {
            if *group < 0 {
                validator.error(&path.key("supplemental_groups").index(index), "must not be negative");
            }
        }
        check_profiles(&self.seccomp_profile, &self.app_armor_profile, path, validator);
    }
}

impl Validate for ContainerSecurityContext {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        check_identity(
            self.run_as_user,
            self.run_as_group,
            self.run_as_non_root,
            path,
            validator,
        );
        if let Some(capabilities) = &self.capabilities {
            check_capabilities(&capabilities.add, &path.key("capabilities").key("add"), validator);
            check_capabilities(&capabilities.drop, &path.key("capabilities").key("drop"), validator);
        }
        check_profiles(&self.seccomp_profile, &self.app_armor_profile, path, validator);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of<T: Validate + serde::de::DeserializeOwned>(text: &str) -> Vec<String> {
        let value: T = toml::from_str(text).unwrap();
        let mut validator = Validator::default();
        value.validate(&KeyPath::root().key("ctx"), &mut validator);
        validator.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_the_documented_contexts() {
        let pod: PodSecurityContext =
            toml::from_str("run_as_non_root = true\nrun_as_user = 59417\nrun_as_group = 59417\nfs_group = 59417")
                .unwrap();
        assert_eq!(
            (pod.run_as_user, pod.fs_group, pod.run_as_non_root),
            (Some(59417), Some(59417), Some(true))
        );
        let build: ContainerSecurityContext = toml::from_str(
            "run_as_user = 2000\nproc_mount = \"unmasked\"\n[capabilities]\nadd = [\"SYS_TIME\"]\ndrop = [\"NET_RAW\"]\n\
             [seccomp_profile]\ntype = \"Localhost\"\nlocalhost_profile = \"profiles/audit.json\"",
        )
        .unwrap();
        assert_eq!(build.proc_mount, Some(ProcMount::Unmasked));
        assert_eq!(build.capabilities.unwrap().drop, ["NET_RAW"]);
        assert_eq!(
            build.seccomp_profile.unwrap().profile_type,
            Some(ProfileType::Localhost)
        );
    }

    #[test]
    fn contradictions_are_refused() {
        assert_eq!(
            errors_of::<ContainerSecurityContext>(
                "run_as_user = 0\nrun_as_non_root = true\n[seccomp_profile]\ntype = \"Localhost\""
            ),
            [
                "ctx.run_as_user: is 0 (root) while run_as_non_root is true; no container could start",
                "ctx.seccomp_profile.localhost_profile: is required when type is Localhost",
            ]
        );
        assert_eq!(
            errors_of::<PodSecurityContext>(
                "fs_group = -1\n[app_armor_profile]\ntype = \"Unconfined\"\nlocalhost_profile = \"x\""
            ),
            [
                "ctx.fs_group: must not be negative",
                "ctx.app_armor_profile.localhost_profile: is only used when type is Localhost, not Unconfined",
            ]
        );
    }

    #[test]
    fn capability_names_are_checked() {
        assert_eq!(
            errors_of::<ContainerSecurityContext>("[capabilities]\nadd = [\"sys_time\"]"),
            ["ctx.capabilities.add[0]: \"sys_time\" is not a capability name (e.g. \"SYS_TIME\")"]
        );
    }

    #[test]
    fn proc_mount_keywords() {
        let error = toml::from_str::<ContainerSecurityContext>("proc_mount = \"masked\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"masked\" is not one of default, unmasked"), "{error}");
    }
}
