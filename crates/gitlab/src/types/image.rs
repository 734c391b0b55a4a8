//! [`Image`] (`image`) and [`Service`] (`services[]`): the containers of a job, with their
//! ports, variables, pull policies and executor options.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::de::{nullable, one_or_many};
use super::variable::JobVariable;

/// A container image: the build image, or (as [`Service`]) a service container.
///
/// GitLab uses one shape for both, as does the official runner; `alias`, `command` and
/// `variables` are only meaningful for services.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Image {
    /// Image reference.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Service alias(es); several may be separated by commas or spaces (see [`Image::aliases`]).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub alias: String,
    /// Overrides the image's entrypoint.
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// Overrides the image's command (services).
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Exposed ports.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Service variables (`service_variables` feature).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<JobVariable>,
    /// `always`, `if-not-present`, `never`; GitLab sends a list, a single string is accepted.
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub pull_policy: Vec<String>,
    /// Executor-specific options (`image_executor_opts` feature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_opts: Option<ExecutorOpts>,
}

/// A service container; same shape as [`Image`].
pub type Service = Image;

impl Image {
    /// The aliases of a service: `alias` split on commas and whitespace.
    pub fn aliases(&self) -> Vec<&str> {
        self.alias
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// A port of an image or service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    /// Port number.
    #[serde(deserialize_with = "nullable")]
    pub number: u16,
    /// `http`, `https`, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Port name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `executor_opts`. Unknown keys are kept in `unknown` fields because the official runner fails
/// a job that asks for options it does not support, and so should we (see
/// [`ExecutorOpts::unsupported_options`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutorOpts {
    /// Docker executor options (ignored by Flotilla, but parsed for completeness).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerExecutorOpts>,
    /// Kubernetes executor options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesExecutorOpts>,
    /// Any other executor key.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// `executor_opts.docker`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerExecutorOpts {
    /// Image platform, e.g. `linux/arm64`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// User to run as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<StringOrInt>,
    /// Unsupported keys.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// `executor_opts.kubernetes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubernetesExecutorOpts {
    /// `uid[:gid]` or a numeric uid to run the container as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<StringOrInt>,
    /// Unsupported keys.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// A value GitLab may send as a string or an integer (`user: 1000` or `user: "1000:1000"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StringOrInt {
    /// Sent as a number.
    Int(i64),
    /// Sent as a string.
    String(String),
}

impl StringOrInt {
    /// The value as a string, as the official runner normalises it.
    pub fn to_string_value(&self) -> String {
        match self {
            StringOrInt::Int(i) => i.to_string(),
            StringOrInt::String(s) => s.clone(),
        }
    }
}

impl ExecutorOpts {
    /// Dotted paths of the options the official runner would reject for a Kubernetes job's image
    /// (anything but `docker.{platform,user}` and `kubernetes.user`), sorted.
    pub fn unsupported_options(&self) -> Vec<String> {
        let mut out: Vec<String> = self.unknown.keys().cloned().collect();
        if let Some(d) = &self.docker {
            out.extend(d.unknown.keys().map(|k| format!("docker.{k}")));
        }
        if let Some(k) = &self.kubernetes {
            out.extend(k.unknown.keys().map(|key| format!("kubernetes.{key}")));
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_image() {
        let json = serde_json::json!({
            "name": "postgres:16",
            "alias": "db, pg  database",
            "entrypoint": ["/bin/sh", "-c"],
            "command": ["postgres"],
            "ports": [{"number": 5432, "protocol": "tcp", "name": "pg"}],
            "variables": [{"key": "POSTGRES_PASSWORD", "value": "x", "public": false, "masked": false}],
            "pull_policy": ["if-not-present", "always"],
            "executor_opts": {"kubernetes": {"user": "1000:1000"}, "docker": {"platform": "linux/amd64", "user": 0}}
        });
        let svc: Service = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(svc.aliases(), vec!["db", "pg", "database"]);
        assert_eq!(svc.ports[0].number, 5432);
        assert_eq!(svc.pull_policy, vec!["if-not-present", "always"]);
        let opts = svc.executor_opts.as_ref().unwrap();
        assert_eq!(
            opts.kubernetes.as_ref().unwrap().user,
            Some(StringOrInt::String("1000:1000".into()))
        );
        assert_eq!(
            opts.docker.as_ref().unwrap().user.as_ref().unwrap().to_string_value(),
            "0"
        );
        assert!(opts.unsupported_options().is_empty());
        // Round trip keeps everything we know.
        assert_eq!(serde_json::to_value(&svc).unwrap(), json);
    }

    #[test]
    fn one_or_many_and_nulls() {
        let img: Image = serde_json::from_str(
            r#"{"name":"alpine","pull_policy":"never","entrypoint":null,"ports":null,"executor_opts":null}"#,
        )
        .unwrap();
        assert_eq!(img.pull_policy, vec!["never"]);
        assert!(img.entrypoint.is_empty() && img.ports.is_empty() && img.executor_opts.is_none());
    }

    #[test]
    fn unsupported_executor_options_are_reported() {
        let opts: ExecutorOpts = serde_json::from_str(
            r#"{"kubernetes":{"user":1000,"privileged":true},"docker":{"memory":"1g"},"podman":{}}"#,
        )
        .unwrap();
        assert_eq!(
            opts.unsupported_options(),
            vec!["docker.memory", "kubernetes.privileged", "podman"]
        );
    }
}
