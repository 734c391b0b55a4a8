//! What `[runners.kubernetes]` adds to the Pod's containers beyond images and resources:
//! runner-defined `services`, `container_lifecycle` hooks, and `pod_spec` patches applied to the
//! finished Pod spec.

use serde::{Deserialize, Serialize};

use crate::de::{keyword_enum, optional};
use crate::path::KeyPath;
use crate::validate::{Validate, Validator};

/// `[[runners.kubernetes.services]]`: a service container added to every job of this runner.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// The service image (required; job variables are expanded).
    #[serde(default)]
    pub name: String,
    /// Host names for the service, separated by spaces or commas.
    #[serde(default, deserialize_with = "optional")]
    pub alias: Option<String>,
    /// Replaces the image's command.
    #[serde(default)]
    pub command: Vec<String>,
    /// Replaces the image's entrypoint.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// `KEY=VALUE` variables for this service.
    #[serde(default)]
    pub environment: Vec<String>,
    /// Where the service keeps data, for suspendable environments.
    #[serde(default, deserialize_with = "optional")]
    pub suspend_data_path: Option<String>,
}

impl Service {
    /// The aliases, split on spaces and commas as the official runner does.
    pub fn aliases(&self) -> Vec<&str> {
        self.alias
            .as_deref()
            .unwrap_or("")
            .split([' ', ','])
            .filter(|alias| !alias.is_empty())
            .collect()
    }
}

impl Validate for Service {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        validator.require(&path.key("name"), &self.name);
        for (index, entry) in self.environment.iter().enumerate() {
            validator.check_env_entry(&path.key("environment").index(index), entry);
        }
    }
}

keyword_enum! {
    /// How a `pod_spec` patch is applied.
    pub enum PatchType {
        /// Kubernetes strategic merge patch (the default).
        Strategic = "strategic",
        /// RFC 7386 JSON merge patch.
        Merge = "merge",
        /// RFC 6902 JSON patch.
        Json = "json",
    }
}

/// `[[runners.kubernetes.pod_spec]]`: a patch applied to the generated Pod spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodSpecPatch {
    /// A label for messages.
    #[serde(default)]
    pub name: String,
    /// The patch, YAML or JSON (exactly one of `patch` and `patch_path`).
    #[serde(default, deserialize_with = "optional")]
    pub patch: Option<String>,
    /// A file holding the patch.
    #[serde(default, deserialize_with = "optional")]
    pub patch_path: Option<String>,
    /// `strategic` (default), `merge` or `json`.
    #[serde(default, deserialize_with = "optional")]
    pub patch_type: Option<PatchType>,
}

impl PodSpecPatch {
    pub fn effective_patch_type(&self) -> PatchType {
        self.patch_type.unwrap_or(PatchType::Strategic)
    }

    /// The patch's text: `patch`, or the file `patch_path` names (read now).
    pub fn text(&self) -> Result<String, String> {
        match (&self.patch, &self.patch_path) {
            (Some(patch), _) => Ok(patch.clone()),
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}")),
            (None, None) => Err("no patch".into()),
        }
    }

    /// The patch as JSON (written as YAML or JSON), in the shape its type needs: a list of
    /// operations for `json`, an object for `merge` and `strategic`.
    pub fn value(&self) -> Result<serde_json::Value, String> {
        let text = self.text()?;
        let value: serde_json::Value =
            serde_yaml::from_str(&text).map_err(|e| format!("is neither YAML nor JSON: {e}"))?;
        match (self.effective_patch_type(), &value) {
            (PatchType::Json, serde_json::Value::Array(_)) => Ok(value),
            (PatchType::Json, _) => Err("a json patch is a list of operations ([{op, path, value}])".into()),
            (_, serde_json::Value::Object(_)) => Ok(value),
            (patch_type, _) => Err(format!(
                "a {} patch is an object (fields of the Pod spec)",
                patch_type.as_str()
            )),
        }
    }
}

impl Validate for PodSpecPatch {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        match (&self.patch, &self.patch_path) {
            (Some(_), Some(_)) => validator.error(&path.key("patch_path"), "set either patch or patch_path, not both"),
            (None, None) => validator.error(&path.key("patch"), "set patch or patch_path"),
            (Some(_), None) | (None, Some(_)) => {
                if let Err(reason) = self.value() {
                    let key = if self.patch.is_some() { "patch" } else { "patch_path" };
                    validator.error(&path.key(key), reason);
                }
            }
        }
    }
}

/// `[runners.kubernetes.container_lifecycle]`: hooks run in the build, helper and service containers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerLifecycle {
    /// Runs right after a container starts.
    #[serde(default)]
    pub post_start: Option<LifecycleHandler>,
    /// Runs before a container is stopped.
    #[serde(default)]
    pub pre_stop: Option<LifecycleHandler>,
}

/// One hook: exactly one of `exec`, `http_get`, `tcp_socket`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LifecycleHandler {
    #[serde(default)]
    pub exec: Option<ExecAction>,
    #[serde(default)]
    pub http_get: Option<HttpGetAction>,
    #[serde(default)]
    pub tcp_socket: Option<TcpSocketAction>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecAction {
    /// Run directly, not through a shell.
    #[serde(default)]
    pub command: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpGetAction {
    /// Default: the Pod IP.
    #[serde(default, deserialize_with = "optional")]
    pub host: Option<String>,
    #[serde(default)]
    pub path: String,
    /// 1 to 65535.
    #[serde(default)]
    pub port: i64,
    /// `HTTP` (default) or `HTTPS`.
    #[serde(default, deserialize_with = "optional")]
    pub scheme: Option<String>,
    #[serde(default)]
    pub http_headers: Vec<HttpHeader>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpHeader {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpSocketAction {
    #[serde(default, deserialize_with = "optional")]
    pub host: Option<String>,
    /// 1 to 65535.
    #[serde(default)]
    pub port: i64,
}

fn check_port(port: i64, path: &KeyPath, validator: &mut Validator) {
    if !(1..=65535).contains(&port) {
        validator.error(path, format!("{port} is not a port (1 to 65535)"));
    }
}

impl Validate for LifecycleHandler {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        let set = [self.exec.is_some(), self.http_get.is_some(), self.tcp_socket.is_some()];
        if set.iter().filter(|is_set| **is_set).count() != 1 {
            validator.error(path, "set exactly one of exec, http_get, tcp_socket");
        }
        if let Some(exec) = &self.exec {
            if exec.command.is_empty() {
                validator.error(&path.key("exec").key("command"), "is required");
            }
        }
        if let Some(http_get) = &self.http_get {
            check_port(http_get.port, &path.key("http_get").key("port"), validator);
            if let Some(scheme) = &http_get.scheme {
                if !matches!(scheme.as_str(), "HTTP" | "HTTPS") {
                    validator.error(
                        &path.key("http_get").key("scheme"),
                        format!("{scheme:?} is not one of HTTP, HTTPS"),
                    );
                }
            }
        }
        if let Some(tcp_socket) = &self.tcp_socket {
            check_port(tcp_socket.port, &path.key("tcp_socket").key("port"), validator);
        }
    }
}

impl Validate for ContainerLifecycle {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        if let Some(handler) = &self.post_start {
            handler.validate(&path.key("post_start"), validator);
        }
        if let Some(handler) = &self.pre_stop {
            handler.validate(&path.key("pre_stop"), validator);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of<T: Validate + serde::de::DeserializeOwned>(text: &str) -> Vec<String> {
        let value: T = toml::from_str(text).unwrap();
        let mut validator = Validator::default();
        value.validate(&KeyPath::root().key("x"), &mut validator);
        validator.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn services_of_the_documentation() {
        let service: Service = toml::from_str(
            "name = \"registry.example.com/svc1\"\nalias = \"svc1, db\"\nentrypoint = [\"entrypoint.sh\"]\n\
             command = [\"executable\",\"param1\",\"param2\"]",
        )
        .unwrap();
        assert_eq!(service.aliases(), ["svc1", "db"]);
        assert_eq!(service.command.len(), 3);
        assert_eq!(
            errors_of::<Service>("alias = \"db\"\nenvironment = [\"NOPE\"]"),
            [
                "x.name: is required",
                "x.environment[0]: \"NOPE\" is not of the form KEY=VALUE",
            ]
        );
    }

    #[test]
    fn pod_spec_needs_exactly_one_patch_source() {
        let patch: PodSpecPatch = toml::from_str("name = \"hostname\"\npatch = 'hostname: \"x\"'").unwrap();
        assert_eq!(patch.effective_patch_type(), PatchType::Strategic);
        assert_eq!(
            errors_of::<PodSpecPatch>("name = \"a\"\npatch = \"{}\"\npatch_path = \"/p.yaml\""),
            ["x.patch_path: set either patch or patch_path, not both"]
        );
        assert_eq!(
            errors_of::<PodSpecPatch>("name = \"a\""),
            ["x.patch: set patch or patch_path"]
        );
        let error = toml::from_str::<PodSpecPatch>("patch = \"{}\"\npatch_type = \"yaml\"")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"yaml\" is not one of strategic, merge, json"),
            "{error}"
        );
    }

    #[test]
    fn pod_spec_patches_are_yaml_or_json_in_their_types_shape() {
        let yaml: PodSpecPatch = toml::from_str("patch = '''\nhostname: custom\n'''").unwrap();
        assert_eq!(yaml.value().unwrap(), serde_json::json!({"hostname": "custom"}));
        let json: PodSpecPatch = toml::from_str(
            "patch = '[{\"op\": \"add\", \"path\": \"/hostname\", \"value\": \"x\"}]'\npatch_type = \"json\"",
        )
        .unwrap();
        assert!(json.value().unwrap().is_array());
        let errors = errors_of::<PodSpecPatch>("patch = '[invalid yaml'");
        assert!(
            errors.len() == 1 && errors[0].starts_with("x.patch: is neither YAML nor JSON: "),
            "{errors:?}"
        );
        assert_eq!(
            errors_of::<PodSpecPatch>("patch = 'hostname: x'\npatch_type = \"json\""),
            ["x.patch: a json patch is a list of operations ([{op, path, value}])"]
        );
        assert_eq!(
            errors_of::<PodSpecPatch>("patch = '[]'\npatch_type = \"merge\""),
            ["x.patch: a merge patch is an object (fields of the Pod spec)"]
        );
    }

    #[test]
    fn a_pod_spec_patch_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("patch.yaml");
        std::fs::write(&file, "containers:\n- name: build\n  workingDir: /src\n").unwrap();
        let patch: PodSpecPatch = toml::from_str(&format!("patch_path = {:?}", file.display().to_string())).unwrap();
        assert_eq!(patch.value().unwrap()["containers"][0]["workingDir"], "/src");
        let missing = format!(
            "patch_path = {:?}",
            dir.path().join("absent.yaml").display().to_string()
        );
        let errors = errors_of::<PodSpecPatch>(&missing);
        assert!(
            errors.len() == 1
                && errors[0].starts_with("x.patch_path: cannot read ")
                && errors[0].contains("absent.yaml"),
            "{errors:?}"
        );
    }

    #[test]
    fn lifecycle_handlers_are_checked() {
        assert_eq!(
            errors_of::<ContainerLifecycle>(
                "[post_start.exec]\ncommand = [\"touch\", \"/tmp/x\"]\n[pre_stop.http_get]\nport = 0\n[pre_stop.tcp_socket]\nport = 80"
            ),
            ["x.pre_stop: set exactly one of exec, http_get, tcp_socket", "x.pre_stop.http_get.port: 0 is not a port (1 to 65535)"]
        );
    }
}
