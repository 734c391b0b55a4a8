//! The job payload: the `201` body of `POST /jobs/request` (reference §3.4).
//!
//! Every documented field is modelled, and parsing is tolerant: unknown fields are ignored,
//! missing or `null` fields take their defaults, a few loosely typed fields accept either shape.
//! GitLab adds fields over time and a job we fail to parse would be stranded (GitLab already
//! marked it running on us). Serialising a parsed payload keeps every field modelled here; for a
//! byte-exact copy (what the coordinator stores and the worker hands to the Pod) keep the raw
//! body, see [`crate::client::ReceivedJob`].
//!
//! Secrets inside the payload (job token, registry passwords, dependency tokens, masked or
//! non-public variable values, the token in `git_info.repo_url`, secret provider configuration,
//! sensitive inputs) never appear in `Debug` output.

mod de;
mod extras;
mod features;
mod image;
mod job;
mod step;
mod transfer;
mod variable;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use extras::{JobInput, JobInputValue, JobSecret, PolicyOptions, SuspendOptions};
pub use features::JobFeatures;
pub use image::{DockerExecutorOpts, ExecutorOpts, Image, KubernetesExecutorOpts, Port, Service, StringOrInt};
pub(crate) use job::redact_url_password;
pub use job::{GitInfo, JobInfo, RunnerInfo};
pub use step::{Hook, Step, When};
pub use transfer::{Artifact, ArtifactsFile, Cache, Credential, Dependency};
pub use variable::{find_variable, JobVariable};

use crate::secret::Secret;
use de::nullable;

/// A job as GitLab hands it to a runner.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobPayload {
    /// Job id.
    #[serde(deserialize_with = "nullable")]
    pub id: u64,
    /// Job token (`JOB-TOKEN` for this job's updates, log and artifacts).
    pub token: Secret,
    /// Whether the fetch git strategy is permitted.
    #[serde(deserialize_with = "nullable")]
    pub allow_git_fetch: bool,
    /// Names and ids.
    pub job_info: JobInfo,
    /// What to clone.
    pub git_info: GitInfo,
    /// Timeout and runner-side info.
    pub runner_info: RunnerInfo,
    /// CI/CD variables, in order (duplicates: the last one wins).
    #[serde(deserialize_with = "nullable")]
    pub variables: Vec<JobVariable>,
    /// Build steps (absent for `run:` jobs).
    #[serde(deserialize_with = "nullable")]
    pub steps: Vec<Step>,
    /// `run:` jobs only: a JSON-encoded array of step-runner steps, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Hook scripts.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    /// Build image (`null` when the job does not set one).
    pub image: Option<Image>,
    /// Service containers.
    #[serde(deserialize_with = "nullable")]
    pub services: Vec<Service>,
    /// Artifact uploads.
    #[serde(deserialize_with = "nullable")]
    pub artifacts: Vec<Artifact>,
    /// Caches.
    #[serde(deserialize_with = "nullable")]
    pub cache: Vec<Cache>,
    /// Registry credentials.
    #[serde(deserialize_with = "nullable")]
    pub credentials: Vec<Credential>,
    /// Artifacts of earlier jobs to download.
    #[serde(deserialize_with = "nullable")]
    pub dependencies: Vec<Dependency>,
    /// What this GitLab supports for the job.
    pub features: JobFeatures,
    /// External secrets (EE), by variable name.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, JobSecret>,
    /// Job inputs.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<JobInput>,
    /// Execution-policy metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_options: Option<PolicyOptions>,
    /// Suspend/resume options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspend_options: Option<SuspendOptions>,
}

/// Why a job payload was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON of the payload's shape.
    #[error("invalid job payload JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Parsed, but without the id or token every later call needs.
    #[error("job payload lacks {0}")]
    Missing(&'static str),
}

impl JobPayload {
    /// Parses a payload and checks that it has what every later call needs (id and token).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PayloadError> {
        let payload: JobPayload = serde_json::from_slice(bytes)?;
        if payload.id == 0 {
            return Err(PayloadError::Missing("id"));
        }
        if payload.token.is_empty() {
            return Err(PayloadError::Missing("token"));
        }
        Ok(payload)
    }

    /// A variable by key (the last occurrence wins).
    pub fn variable(&self, key: &str) -> Option<&JobVariable> {
        find_variable(&self.variables, key)
    }

    /// A step by name (`script`, `after_script`, …).
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Whether `CI_DEBUG_TRACE` is on (sent as `debug_trace=true` with log patches).
    pub fn debug_trace(&self) -> bool {
        self.variable("CI_DEBUG_TRACE")
            .is_some_and(|v| v.value.eq_ignore_ascii_case("true"))
    }

    /// The `run:` steps decoded from their JSON string, if the job has any.
    pub fn run_steps(&self) -> Option<Result<Vec<serde_json::Value>, serde_json::Error>> {
        self.run.as_deref().map(serde_json::from_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's minimal body that the official runner accepts.
    const MINIMAL: &str = r#"{"id":10,"token":"jobtok","allow_git_fetch":true,"job_info":{"name":"build","stage":"test","project_id":1,"project_name":"p"},"git_info":{"repo_url":"https://gitlab-ci-token:jobtok@h/g/p.git","ref":"main","sha":"0123456789012345678901234567890123456789","before_sha":"0000000000000000000000000000000000000000","ref_type":"branch","refspecs":["+refs/heads/main:refs/remotes/origin/main"],"depth":20},"runner_info":{"timeout":3600},"variables":[{"key":"CI_JOB_ID","value":"10","public":true}],"steps":[{"name":"script","script":["echo hi"],"timeout":3600,"when":"on_success","allow_failure":false}],"image":null,"services":[],"artifacts":[],"cache":[],"credentials":[],"dependencies":[],"features":{"trace_sections":true,"failure_reasons":["script_failure","runner_system_failure","job_execution_timeout","unknown_failure"]}}"#;

    #[test]
    fn minimal_body() {
        let p = JobPayload::from_slice(MINIMAL.as_bytes()).unwrap();
        assert_eq!(p.id, 10);
        assert_eq!(p.token.expose(), "jobtok");
        assert_eq!(p.job_info.name, "build");
        assert_eq!(p.git_info.git_ref, "main");
        assert_eq!(p.git_info.depth, 20);
        assert_eq!(p.runner_info.timeout, 3600);
        assert_eq!(p.variable("CI_JOB_ID").unwrap().value, "10");
        assert_eq!(p.step(Step::SCRIPT).unwrap().script, vec!["echo hi"]);
        assert!(p.image.is_none());
        assert_eq!(p.features.failure_reasons.len(), 4);
        assert!(!p.debug_trace());
    }

    /// A payload with every documented field (reference §3.4), some of them in their odd shapes.
    fn full_payload() -> serde_json::Value {
        serde_json::json!({
            "id": 42,
            "token": "glcbt-jobtoken",
            "allow_git_fetch": true,
            "job_info": {
                "id": 42, "name": "test", "stage": "test", "project_id": 7, "project_name": "p",
                "project_full_path": "g/p", "namespace_id": 3, "root_namespace_id": 2, "organization_id": 1,
                "instance_id": "inst", "instance_uuid": "uuid-1", "user_id": 5, "scoped_user_id": 6,
                "time_in_queue_seconds": 1.5, "project_jobs_running_on_instance_runners_count": "3",
                "queue_size": 4, "queue_depth": 1, "pipeline_id": 99
            },
            "git_info": {
                "repo_url": "https://gitlab-ci-token:glcbt-jobtoken@gitlab.example.com/g/p.git",
                "ref": "main", "sha": "a", "before_sha": "b", "ref_type": "branch",
                "refspecs": ["+refs/heads/main:refs/remotes/origin/main"], "depth": 0,
                "repo_object_format": "sha1", "protected": true
            },
            "runner_info": {"timeout": 600, "runner_session_url": "https://s", "uuid": "r-uuid"},
            "variables": [
                {"key": "CI_DEBUG_TRACE", "value": "true", "public": true, "masked": false},
                {"key": "SECRET_FILE", "value": "s3cret-file-value", "public": false, "masked": true, "file": true, "raw": true}
            ],
            "steps": [
                {"name": "script", "script": ["make"], "timeout": 600, "when": "on_success", "allow_failure": false},
                {"name": "after_script", "script": ["cleanup"], "timeout": 600, "when": "always", "allow_failure": true}
            ],
            "run": "[{\"name\":\"s\",\"script\":\"echo\"}]",
            "hooks": [{"name": "pre_get_sources_script", "script": ["echo pre"]}],
            "image": {"name": "alpine:3", "entrypoint": [""], "pull_policy": ["always"],
                      "executor_opts": {"kubernetes": {"user": "1000"}}},
            "services": [{"name": "redis", "alias": "cache", "command": ["redis-server"],
                          "ports": [{"number": 6379}],
                          "variables": [{"key": "A", "value": "1", "public": true, "masked": false}]}],
            "artifacts": [{"name": "bin", "untracked": false, "paths": ["bin/"], "exclude": ["bin/*.o"],
                           "when": "on_success", "artifact_type": "archive", "artifact_format": "zip",
                           "expire_in": "1 week"}],
            "cache": [{"key": "k", "untracked": true, "policy": "pull", "paths": ["vendor/"], "when": "on_success",
                       "fallback_keys": ["main"]}],
            "credentials": [{"type": "registry", "url": "registry.example.com", "username": "u", "password": "pw"}],
            "dependencies": [{"id": 41, "name": "build", "token": "glcbt-jobtoken",
                              "artifacts_file": {"filename": "artifacts.zip", "size": 123}}],
            "features": {"trace_sections": true, "token_mask_prefixes": ["glpat-"],
                         "failure_reasons": ["script_failure"],
                         "tracing": {"trace_id": "t", "span_parent_id": "s", "otel_endpoints": []}},
            "secrets": {"DB": {"vault": {"path": "p", "field": "f"}, "file": false}},
            "inputs": [{"key": "env", "value": {"type": "string", "content": "prod", "sensitive": false}}],
            "policy_options": {"execution_policy_job": true, "policy_name": "pol",
                               "policy_variables_override_allowed": false,
                               "policy_variables_override_exceptions": ["X"]},
            "suspend_options": {"suspend_on_failure": true, "runtime_environment_key": "env-1"}
        })
    }

    #[test]
    fn full_payload_round_trips() {
        let json = full_payload();
        let p: JobPayload = serde_json::from_value(json.clone()).unwrap();
        assert!(p.debug_trace());
        assert_eq!(p.run_steps().unwrap().unwrap().len(), 1);
        assert_eq!(p.dependencies[0].artifacts_file.as_ref().unwrap().size, 123);
        assert_eq!(p.services[0].aliases(), vec!["cache"]);
        assert_eq!(p.job_info.pipeline_id, Some(99));
        // Every field we know survives serialisation unchanged.
        assert_eq!(serde_json::to_value(&p).unwrap(), json);
    }

    #[test]
    fn debug_output_leaks_no_secret() {
        let p: JobPayload = serde_json::from_value(full_payload()).unwrap();
        let dbg = format!("{p:?}");
        for secret in ["glcbt-jobtoken", "\"pw\"", "s3cret-file-value"] {
            assert!(!dbg.contains(secret), "{secret} leaked: {dbg}");
        }
    }

    #[test]
    fn tolerant_of_nulls_missing_and_unknown_fields() {
        let p = JobPayload::from_slice(
            br#"{"id":1,"token":"t","artifacts":null,"cache":null,"services":null,"variables":null,
                 "dependencies":null,"credentials":null,"steps":null,"image":null,"hooks":null,"secrets":null,
                 "features":{"failure_reasons":null},"brand_new_field":{"x":[1,2]},
                 "git_info":{"refspecs":null,"protected":null,"depth":null}}"#,
        )
        .unwrap();
        assert!(p.artifacts.is_empty() && p.cache.is_empty() && p.services.is_empty());
        assert!(p.features.failure_reasons.is_empty());
        assert_eq!(p.git_info.protected, None);
    }

    #[test]
    fn id_and_token_are_required() {
        assert!(matches!(
            JobPayload::from_slice(br#"{"token":"t"}"#),
            Err(PayloadError::Missing("id"))
        ));
        assert!(matches!(
            JobPayload::from_slice(br#"{"id":3}"#),
            Err(PayloadError::Missing("token"))
        ));
        assert!(matches!(
            JobPayload::from_slice(b"{\"id\":"),
            Err(PayloadError::Json(_))
        ));
        assert!(matches!(JobPayload::from_slice(b"<html>"), Err(PayloadError::Json(_))));
    }
}
