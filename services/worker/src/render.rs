//! `flotilla-worker render-pod`: the Secret and Pod the worker would create for a job payload
//! under a runner entry of `config.toml`, as YAML, without a cluster — so an operator sees what
//! a configuration change does before rolling it out. The Secret's values (they hold the job
//! token) are replaced by their size.

use flotilla_config::{RunnerConfigFile, WorkerConfigFile};
use serde_json::Value;

use crate::plan::{plan, PodDefaults};
use crate::pod::{pod, secret};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("config.toml has no runner entry named {0:?} (names: {1})")]
    NoSuchRunner(String, String),
    #[error("config.toml has no [[runners]] entry")]
    NoRunners,
    #[error("config.toml has several runner entries ({0}): name one with --runner")]
    WhichRunner(String),
    #[error("{0}")]
    Job(String),
}

/// The worker's own defaults: from its file when given, else the documented defaults.
pub fn defaults(worker: Option<&WorkerConfigFile>) -> PodDefaults {
    let fallback = WorkerConfigFile {
        worker: serde_json::from_value(serde_json::json!({})).expect("every [worker] key has a default"),
        kubernetes: serde_json::from_value(serde_json::json!({})).expect("every [kubernetes] key has a default"),
    };
    let file = worker.unwrap_or(&fallback);
    PodDefaults {
        namespace: file.kubernetes.namespace.clone(),
        worker_id: if file.worker.id.is_empty() {
            "render-pod".into()
        } else {
            file.worker.id.clone()
        },
        helper_image: file.kubernetes.helper_image.clone(),
        helper_binary: file.kubernetes.helper_binary.clone(),
        default_image: file.kubernetes.image.clone(),
        builds_dir: file.kubernetes.builds_dir.clone(),
    }
}

/// The YAML documents (Secret, then Pod) for `payload_json` under the runner entry `runner`
/// (optional when the file has one entry).
pub fn render(
    config: &RunnerConfigFile,
    runner: Option<&str>,
    defaults: &PodDefaults,
    payload_json: &str,
) -> Result<String, RenderError> {
    let names = || {
        config
            .runners
            .iter()
            .map(|r| format!("{:?}", r.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let entry = match runner {
        Some(name) => config
            .runners
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| RenderError::NoSuchRunner(name.to_string(), names()))?,
        None => match config.runners.as_slice() {
            [] => return Err(RenderError::NoRunners),
            [only] => only,
            _ => return Err(RenderError::WhichRunner(names())),
        },
    };
    // Exactly what the coordinator hands the worker: the entry as JSON.
    let entry_json = serde_json::to_vec(entry).expect("a runner entry always serialises");
    let plan = plan(defaults, payload_json, &entry_json).map_err(|e| RenderError::Job(e.to_string()))?;
    let mut secret = serde_json::to_value(secret(&plan)).expect("a Secret serialises");
    // `runtime.json` (what the worker tells the helper, e.g. the overwrite notices) is shown as
    // text; `job.json` holds the job token and is replaced by its size.
    secret["stringData"] = serde_json::json!({"runtime.json": plan.runtime_json});
    if let Some(Value::Object(data)) = secret.get_mut("data") {
        data.remove("runtime.json");
        for value in data.values_mut() {
            let size = value.as_str().map_or(0, |b64| b64.len() * 3 / 4);
            *value = Value::String(format!("<redacted: about {size} bytes; holds the job token>"));
        }
    }
    let pod = pod(&plan).map_err(|e| RenderError::Job(e.to_string()))?;
    let pod = serde_json::to_value(pod).expect("a Pod serialises");
    let yaml = |value: &Value| serde_yaml::to_string(value).expect("JSON values are YAML");
    Ok(format!("---\n{}---\n{}", yaml(&secret), yaml(&pod)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[runners]]
  name = "k8s"
  url = "https://gitlab.example.com"
  token = "glrt-secret"
  executor = "kubernetes"
  [runners.kubernetes]
    image = "ubuntu:24.04"
    memory_limit = "1Gi"
    [runners.kubernetes.node_selector]
      "kubernetes.io/arch" = "arm64"
"#;

    const JOB: &str = r#"{"id": 77, "token": "glcbt-job-token", "job_info": {"name": "build", "project_name": "app"},
        "runner_info": {"timeout": 600}, "steps": [], "variables": []}"#;

    #[test]
    fn renders_the_secret_redacted_and_the_pod_with_the_entry_settings() {
        let config = flotilla_config::runner_config_from_str(CONFIG).unwrap().config;
        let text = render(&config, None, &defaults(None), JOB).unwrap();
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|doc| Value::deserialize(doc).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"], "Secret");
        assert!(
            !text.contains("glcbt-job-token") && !text.contains("glrt-secret"),
            "{text}"
        );
        let pod = &docs[1];
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["name"], "flotilla-job-77");
        assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/arch"], "arm64");
        assert_eq!(pod["spec"]["containers"][0]["image"], "ubuntu:24.04");
        assert_eq!(pod["spec"]["containers"][0]["resources"]["limits"]["memory"], "1Gi");
    }

    #[test]
    fn an_unknown_runner_or_a_bad_job_is_named() {
        let config = flotilla_config::runner_config_from_str(CONFIG).unwrap().config;
        let error = render(&config, Some("nope"), &defaults(None), JOB).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config.toml has no runner entry named \"nope\" (names: \"k8s\")"
        );
        let error = render(&config, None, &defaults(None), "{not json").unwrap_err();
        assert!(
            error.to_string().starts_with("the job payload is not usable: "),
            "{error}"
        );
    }

    use serde::Deserialize;
}
