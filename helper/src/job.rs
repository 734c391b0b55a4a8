//! The inputs of `flotilla-helper run`: the GitLab job payload (`job.json`) and what the worker
//! adds (`runtime.json`), both from the `job` Secret mounted at `/flotilla/job`.
//!
//! [`JobPayload`] is a *minimal, tolerant* serde view of the `201` body of `POST /jobs/request`
//! (`shared/reference/gitlab-runner-api.md` §3.4): only the fields the helper uses, unknown fields
//! ignored, missing or `null` fields defaulted. It is a stop-gap: it is to be replaced by
//! `flotilla_gitlab::types` once that crate lands (the helper must then keep building without
//! pulling the HTTP client into the binary).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

/// Deserializes `null` (or an absent field, with `#[serde(default)]`) as `T::default()`.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The job payload GitLab hands out. To be replaced by `flotilla_gitlab::types::JobPayload`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobPayload {
    #[serde(deserialize_with = "nullable")]
    pub id: i64,
    /// The job token. Never printed.
    #[serde(deserialize_with = "nullable")]
    pub token: String,
    /// `false` turns `GIT_STRATEGY=fetch` into `clone` (as the official runner does).
    #[serde(deserialize_with = "nullable")]
    pub allow_git_fetch: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub job_info: JobInfo,
    #[serde(deserialize_with = "nullable")]
    pub git_info: GitInfo,
    #[serde(deserialize_with = "nullable")]
    pub runner_info: RunnerInfo,
    #[serde(deserialize_with = "nullable")]
    pub variables: Vec<Variable>,
    #[serde(deserialize_with = "nullable")]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobInfo {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub stage: String,
    #[serde(deserialize_with = "nullable")]
    pub project_id: i64,
    #[serde(deserialize_with = "nullable")]
    pub project_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GitInfo {
    /// HTTPS clone URL, normally with `gitlab-ci-token:<job token>@` credentials.
    #[serde(deserialize_with = "nullable")]
    pub repo_url: String,
    #[serde(rename = "ref", deserialize_with = "nullable")]
    pub git_ref: String,
    #[serde(deserialize_with = "nullable")]
    pub sha: String,
    #[serde(deserialize_with = "nullable")]
    pub before_sha: String,
    /// `branch` or `tag`.
    #[serde(deserialize_with = "nullable")]
    pub ref_type: String,
    #[serde(deserialize_with = "nullable")]
    pub refspecs: Vec<String>,
    /// 0 = full history.
    #[serde(deserialize_with = "nullable")]
    pub depth: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RunnerInfo {
    /// The effective job timeout in seconds (≤ 0: the runner default).
    #[serde(deserialize_with = "nullable")]
    pub timeout: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Variable {
    #[serde(deserialize_with = "nullable")]
    pub key: String,
    #[serde(deserialize_with = "nullable")]
    pub value: String,
    #[serde(deserialize_with = "nullable")]
    pub public: bool,
    #[serde(deserialize_with = "nullable")]
    pub masked: bool,
    /// Only present when true: the value goes to a file and the variable holds its path.
    #[serde(deserialize_with = "nullable")]
    pub file: bool,
    /// Only present when true: no `$VAR` expansion of the value.
    #[serde(deserialize_with = "nullable")]
    pub raw: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Step {
    /// `script`, `after_script`, `release`, …
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub script: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub timeout: i64,
    /// `on_success` (also when empty), `on_failure`, `always`.
    #[serde(deserialize_with = "nullable")]
    pub when: String,
    #[serde(deserialize_with = "nullable")]
    pub allow_failure: bool,
}

/// When a step runs, relative to the outcome of the steps before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    OnSuccess,
    OnFailure,
    Always,
}

impl Step {
    /// The step's `when`; empty or unknown values mean `on_success` (GitLab's default).
    pub fn when(&self) -> When {
        match self.when.as_str() {
            "always" => When::Always,
            "on_failure" => When::OnFailure,
            _ => When::OnSuccess,
        }
    }

    pub fn is_after_script(&self) -> bool {
        self.name == "after_script"
    }

    /// The GitLab section / build stage name of this step: `step_script`, `after_script`, `step_<name>`.
    pub fn stage_name(&self) -> String {
        match self.name.as_str() {
            "after_script" => "after_script".to_string(),
            "" => "step_script".to_string(),
            name => format!("step_{}", sanitize_section_name(name)),
        }
    }
}

/// Section names may only hold `[a-z0-9_.-]`-ish characters (GitLab drops the section otherwise).
fn sanitize_section_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl JobPayload {
    /// The value of job variable `key` (the last one wins, as for GitLab), before expansion.
    pub fn variable(&self, key: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|v| v.key == key)
            .map(|v| v.value.as_str())
    }
}

/// What the worker adds next to the payload (`runtime.json`). Every field has a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Runtime {
    #[serde(deserialize_with = "nullable")]
    pub builds_dir: Option<PathBuf>,
    #[serde(deserialize_with = "nullable")]
    pub project_dir: Option<PathBuf>,
    #[serde(deserialize_with = "nullable")]
    pub shell: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub timeout_seconds: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub after_script_timeout_seconds: Option<i64>,
    /// Lines the worker wants at the top of the job log (e.g. the overwrites it applied).
    #[serde(deserialize_with = "nullable")]
    pub notices: Vec<String>,
    /// The runner entry's `pre_build_script`: runs before the job's script, in its shell.
    #[serde(deserialize_with = "nullable")]
    pub pre_build_script: Option<String>,
    /// The runner entry's `post_build_script`: runs after the job's script, in its shell.
    #[serde(deserialize_with = "nullable")]
    pub post_build_script: Option<String>,
    /// The runner entry's `pre_get_sources_script`: runs in the helper container before git.
    #[serde(deserialize_with = "nullable")]
    pub pre_get_sources_script: Option<String>,
    /// The runner entry's `post_get_sources_script`: runs in the helper container after git.
    #[serde(deserialize_with = "nullable")]
    pub post_get_sources_script: Option<String>,
}

/// The official runner's job timeout when GitLab sends none (`runner_info.timeout` ≤ 0).
pub const DEFAULT_JOB_TIMEOUT_SECS: u64 = 7200;
/// The official runner's `after_script` timeout.
pub const DEFAULT_AFTER_SCRIPT_TIMEOUT_SECS: u64 = 300;
pub const DEFAULT_BUILDS_DIR: &str = "/builds";

/// [`Runtime`] with every default applied.
#[derive(Debug, Clone)]
pub struct Settings {
    pub builds_dir: PathBuf,
    pub project_dir: PathBuf,
    /// `bash` or `sh`: the flavour of the generated script (see `script.rs`).
    pub shell: String,
    pub timeout_secs: u64,
    pub after_script_timeout_secs: u64,
    pub pre_build_script: Option<String>,
    pub post_build_script: Option<String>,
    pub pre_get_sources_script: Option<String>,
    pub post_get_sources_script: Option<String>,
}

impl Settings {
    /// Defaults: builds dir `/builds`; project dir `<builds_dir>/$CI_PROJECT_PATH` (else the project
    /// name, else `project`); shell `bash`; job timeout `runtime.timeout_seconds`, else
    /// `runner_info.timeout`, else 7200 s; after_script timeout 300 s.
    pub fn resolve(runtime: &Runtime, job: &JobPayload) -> Settings {
        let builds_dir = runtime
            .builds_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BUILDS_DIR));
        let project_dir = runtime.project_dir.clone().unwrap_or_else(|| {
            let rel = job
                .variable("CI_PROJECT_PATH")
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .or_else(|| Some(job.job_info.project_name.clone()).filter(|n| !n.is_empty()))
                .unwrap_or_else(|| "project".to_string());
            builds_dir.join(Path::new(rel.trim_start_matches('/')))
        });
        let shell = match runtime.shell.as_deref() {
            Some("sh") => "sh".to_string(),
            _ => "bash".to_string(),
        };
        let script = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
        let positive = |v: Option<i64>| v.filter(|v| *v > 0).map(|v| v as u64);
        let timeout_secs = positive(runtime.timeout_seconds)
            .or(positive(Some(job.runner_info.timeout)))
            .unwrap_or(DEFAULT_JOB_TIMEOUT_SECS);
        let after_script_timeout_secs =
            positive(runtime.after_script_timeout_seconds).unwrap_or(DEFAULT_AFTER_SCRIPT_TIMEOUT_SECS);
        Settings {
            builds_dir,
            project_dir,
            shell,
            timeout_secs,
            after_script_timeout_secs,
            pre_build_script: script(&runtime.pre_build_script),
            post_build_script: script(&runtime.post_build_script),
            pre_get_sources_script: script(&runtime.pre_get_sources_script),
            post_get_sources_script: script(&runtime.post_get_sources_script),
        }
    }

    /// The commands of a step: the job's `script` step (GitLab's before_script and script)
    /// between the entry's `pre_build_script` and `post_build_script`, each of those one
    /// command of the same shell, as the official runner writes them; other steps as they are.
    pub fn commands(&self, step: &Step) -> Vec<String> {
        if step.name != "script" {
            return step.script.clone();
        }
        self.pre_build_script
            .iter()
            .cloned()
            .chain(step.script.iter().cloned())
            .chain(self.post_build_script.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_minimal_payload_and_ignores_unknown_fields() {
        let json = r#"{"id":10,"token":"jobtok","allow_git_fetch":true,"job_info":{"name":"build","stage":"test","project_id":1,"project_name":"p","extra":1},"git_info":{"repo_url":"https://gitlab-ci-token:jobtok@h/g/p.git","ref":"main","sha":"0123456789abcdef0123456789abcdef01234567","before_sha":"0000000000000000000000000000000000000000","ref_type":"branch","refspecs":["+refs/heads/main:refs/remotes/origin/main"],"depth":20,"protected":null},"runner_info":{"timeout":3600,"runner_session_url":null},"variables":[{"key":"CI_JOB_ID","value":"10","public":true},{"key":"F","value":"x","public":false,"masked":true,"file":true,"raw":true}],"steps":[{"name":"script","script":["echo hi"],"timeout":3600,"when":"on_success","allow_failure":false},{"name":"after_script","script":null,"timeout":300,"when":null,"allow_failure":true}],"image":null,"services":[],"features":{"trace_sections":true}}"#;
        let job: JobPayload = serde_json::from_str(json).unwrap();
        assert_eq!(job.id, 10);
        assert_eq!(job.git_info.git_ref, "main");
        assert_eq!(job.git_info.depth, 20);
        assert_eq!(job.runner_info.timeout, 3600);
        assert!(job.variables[1].file && job.variables[1].raw && job.variables[1].masked);
        assert!(!job.variables[0].file);
        assert_eq!(job.steps[1].script.len(), 0);
        assert_eq!(job.steps[1].when(), When::OnSuccess);
        assert_eq!(job.steps[0].stage_name(), "step_script");
        assert_eq!(job.steps[1].stage_name(), "after_script");
    }

    #[test]
    fn settings_defaults() {
        let job: JobPayload = serde_json::from_str(
            r#"{"job_info":{"project_name":"p"},"runner_info":{"timeout":0},"variables":[{"key":"CI_PROJECT_PATH","value":"g/p"}]}"#,
        )
        .unwrap();
        let s = Settings::resolve(&Runtime::default(), &job);
        assert_eq!(s.project_dir, PathBuf::from("/builds/g/p"));
        assert_eq!(s.timeout_secs, DEFAULT_JOB_TIMEOUT_SECS);
        assert_eq!(s.after_script_timeout_secs, 300);
        assert_eq!(s.shell, "bash");
        let rt: Runtime = serde_json::from_str(r#"{"builds_dir":"/b","shell":"sh","timeout_seconds":5}"#).unwrap();
        let s = Settings::resolve(&rt, &job);
        assert_eq!(s.project_dir, PathBuf::from("/b/g/p"));
        assert_eq!((s.shell.as_str(), s.timeout_secs), ("sh", 5));
    }
}
