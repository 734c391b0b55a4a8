//! The pipeline file: which project the simulated GitLab hosts, what its repository holds and which
//! jobs it queues. The same [`JobSpec`] is accepted as JSON by the control API.
//!
//! ```yaml
//! project: demo/app            # namespace/name; the project id is assigned
//! repository: ./repo           # optional, relative to this file; default: a generated repo
//! jobs:
//!   - name: build
//!     stage: build
//!     image: alpine:3.19
//!     variables:
//!       PLAIN: "1"
//!       API_KEY: {value: "s3cr3t-value-123", masked: true}
//!     before_script: ["echo before"]
//!     script: ["echo hello", "make"]
//!     after_script: ["echo after"]
//!     timeout: 3600
//!     expect: success          # success | failed | canceled, for the summary
//! ```
//!
//! Unknown keys are errors, so a typo in a demo file is reported instead of silently ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Result, SimError};
use crate::state::JobState;

/// The whole pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Project path, `namespace/name` (several namespace levels allowed).
    pub project: String,
    /// Directory whose files are committed into the served repository. Relative paths are
    /// resolved against the pipeline file's directory by [`Pipeline::from_file`].
    #[serde(default)]
    pub repository: Option<PathBuf>,
    /// Jobs, queued in this order.
    #[serde(default)]
    pub jobs: Vec<JobSpec>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            project: "demo/app".into(),
            repository: None,
            jobs: Vec::new(),
        }
    }
}

impl Pipeline {
    /// Reads and validates a pipeline file.
    pub fn from_file(path: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::ReadPipeline {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|err| match err {
            SimError::ParsePipeline { message, .. } => SimError::ParsePipeline {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates pipeline YAML; a relative `repository` is resolved against `base_dir`.
    pub fn parse(yaml: &str, base_dir: &Path) -> Result<Pipeline> {
        let mut pipeline: Pipeline = serde_yaml::from_str(yaml).map_err(|err| SimError::ParsePipeline {
            path: PathBuf::from("<inline>"),
            message: err.to_string(),
        })?;
        if let Some(repo) = &pipeline.repository {
            if repo.is_relative() {
                pipeline.repository = Some(base_dir.join(repo));
            }
        }
        pipeline.validate()?;
        Ok(pipeline)
    }

    /// Checks the project path and every job.
    pub fn validate(&self) -> Result<()> {
        validate_project_path(&self.project)?;
        let mut names = std::collections::BTreeSet::new();
        for job in &self.jobs {
            job.validate()?;
            if !names.insert(job.name.as_str()) {
                return Err(SimError::InvalidPipeline(format!(
                    "job name {:?} is used twice",
                    job.name
                )));
            }
        }
        for job in &self.jobs {
            for dep in &job.dependencies {
                if !names.contains(dep.as_str()) {
                    return Err(SimError::InvalidJob {
                        name: job.name.clone(),
                        reason: format!("dependency {dep:?} is not a job of this pipeline"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A project path is `segment(/segment)+` with GitLab's path characters; it becomes part of
/// URLs and of a directory name, so nothing else is let through.
fn validate_project_path(path: &str) -> Result<()> {
    let segments: Vec<&str> = path.split('/').collect();
    let ok_segment = |s: &&str| {
        !s.is_empty()
            && !s.starts_with('.')
            && !s.ends_with(".git")
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if segments.len() < 2 || !segments.iter().all(ok_segment) {
        return Err(SimError::InvalidPipeline(format!(
            "project {path:?} must look like namespace/name (letters, digits, '-', '_', '.')"
        )));
    }
    Ok(())
}

/// One job of the pipeline (also the body of `POST /sim/jobs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    #[serde(default = "default_stage")]
    pub stage: String,
    #[serde(default)]
    pub image: Option<String>,
    /// The image's `kubernetes: user` (`"uid[:gid]"`), sent as the image's `executor_opts`.
    #[serde(default)]
    pub image_user: Option<String>,
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    #[serde(default)]
    pub variables: Variables,
    #[serde(default, deserialize_with = "lines")]
    pub before_script: Vec<String>,
    #[serde(deserialize_with = "lines")]
    pub script: Vec<String>,
    #[serde(default, deserialize_with = "lines")]
    pub after_script: Vec<String>,
    /// Kept for the summary; GitLab does not send it to the runner.
    #[serde(default)]
    pub allow_failure: bool,
    /// Job timeout in seconds (`runner_info.timeout` and every step's timeout).
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    #[serde(default)]
    pub artifacts: Option<ArtifactsSpec>,
    /// Names of earlier jobs whose artifacts this job downloads. A job is handed out only once
    /// its dependencies have finished (there is no other stage ordering).
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// How the job is expected to end, for the summary and `--exit-when-done`.
    #[serde(default)]
    pub expect: Expect,
}

fn default_stage() -> String {
    "test".into()
}

fn default_timeout() -> u64 {
    3600
}

impl JobSpec {
    /// A job with the given script and every other field at its default.
    pub fn new(name: impl Into<String>, script: impl IntoIterator<Item = impl Into<String>>) -> JobSpec {
        JobSpec {
            name: name.into(),
            stage: default_stage(),
            image: None,
            image_user: None,
            services: Vec::new(),
            variables: Variables::default(),
            before_script: Vec::new(),
            script: script.into_iter().map(Into::into).collect(),
            after_script: Vec::new(),
            allow_failure: false,
            timeout: default_timeout(),
            artifacts: None,
            dependencies: Vec::new(),
            expect: Expect::Success,
        }
    }

    /// Adds a plain (public, unmasked) variable.
    pub fn variable(mut self, key: impl Into<String>, value: impl Into<String>) -> JobSpec {
        self.variables.0.push(Variable::plain(key, value));
        self
    }

    /// Adds a masked variable (not public, like a masked project CI/CD variable).
    pub fn masked_variable(mut self, key: impl Into<String>, value: impl Into<String>) -> JobSpec {
        self.variables.0.push(Variable::masked(key, value));
        self
    }

    /// Checks what GitLab's own validation would refuse.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: &str| SimError::InvalidJob {
            name: self.name.clone(),
            reason: reason.into(),
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name is empty"));
        }
        if self.script.is_empty() {
            return Err(invalid("script is empty (GitLab requires one)"));
        }
        if self.timeout == 0 {
            return Err(invalid("timeout must be positive"));
        }
        for v in &self.variables.0 {
            if v.key.is_empty() || !v.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(&format!("variable name {:?} is not valid", v.key)));
            }
            // GitLab refuses to mask values shorter than 8 characters or spanning lines.
            if v.masked && (v.value.len() < 8 || v.value.contains('\n')) {
                return Err(invalid(&format!(
                    "masked variable {} must be one line of at least 8 characters",
                    v.key
                )));
            }
        }
        Ok(())
    }
}

/// How a job is expected to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    #[default]
    Success,
    Failed,
    #[serde(alias = "cancelled")]
    Canceled,
}

impl Expect {
    /// Whether a job that ended in `state` ended as expected.
    pub fn matches(self, state: JobState) -> bool {
        matches!(
            (self, state),
            (Expect::Success, JobState::Success)
                | (Expect::Failed, JobState::Failed)
                | (Expect::Canceled, JobState::Canceled)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Success => "success",
            Expect::Failed => "failed",
            Expect::Canceled => "canceled",
        }
    }
}

/// A job service (`services:`), as a plain image name or an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ServiceRepr")]
pub struct ServiceSpec {
    pub name: String,
    pub alias: Option<String>,
    pub entrypoint: Vec<String>,
    pub command: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ServiceRepr {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        alias: Option<String>,
        #[serde(default)]
        entrypoint: Vec<String>,
        #[serde(default)]
        command: Vec<String>,
    },
}

impl From<ServiceRepr> for ServiceSpec {
    fn from(repr: ServiceRepr) -> Self {
        match repr {
            ServiceRepr::Name(name) => ServiceSpec {
                name,
                alias: None,
                entrypoint: Vec::new(),
                command: Vec::new(),
            },
            ServiceRepr::Full {
                name,
                alias,
                entrypoint,
                command,
            } => ServiceSpec {
                name,
                alias,
                entrypoint,
                command,
            },
        }
    }
}

/// `artifacts:` of a job; becomes one `archive`/`zip` entry of the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactsSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub untracked: bool,
    /// `on_success` (default), `on_failure` or `always`.
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub expire_in: Option<String>,
}

/// One job variable as it will appear in the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub key: String,
    pub value: String,
    pub public: bool,
    pub masked: bool,
    /// Written to a file by the runner; the variable then holds the path.
    pub file: bool,
    /// No `$VAR` expansion (`expand: false` in GitLab YAML).
    pub raw: bool,
}

impl Variable {
    pub fn plain(key: impl Into<String>, value: impl Into<String>) -> Variable {
        Variable {
            key: key.into(),
            value: value.into(),
            public: true,
            masked: false,
            file: false,
            raw: false,
        }
    }

    pub fn masked(key: impl Into<String>, value: impl Into<String>) -> Variable {
        Variable {
            public: false,
            masked: true,
            ..Variable::plain(key, value)
        }
    }
}

/// The job's variables in file order (order matters: the last duplicate wins in the runner).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Variables(pub Vec<Variable>);

/// A variable's value in the file: a scalar, or an object with flags.
#[derive(Deserialize)]
#[serde(untagged)]
enum VariableRepr {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Full(FullVariable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullVariable {
    value: Scalar,
    #[serde(default)]
    masked: bool,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    file: bool,
    #[serde(default)]
    raw: bool,
    #[serde(default)]
    expand: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)] // accepted because GitLab YAML allows it; not sent to runners
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

impl VariableRepr {
    fn into_variable(self, key: String) -> Variable {
        let scalar = |s: Scalar| Variable::plain(key.clone(), s.into_string());
        match self {
            VariableRepr::Text(s) => scalar(Scalar::Text(s)),
            VariableRepr::Integer(i) => scalar(Scalar::Integer(i)),
            VariableRepr::Float(f) => scalar(Scalar::Float(f)),
            VariableRepr::Bool(b) => scalar(Scalar::Bool(b)),
            VariableRepr::Full(full) => Variable {
                key: key.clone(),
                value: full.value.into_string(),
                // Masked variables come from project settings in real GitLab, which are not public.
                public: full.public.unwrap_or(!full.masked),
                masked: full.masked,
                file: full.file,
                raw: full.raw || full.expand == Some(false),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Variables {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Variables;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of variable names to values or {value, masked, ...}")
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Variables, E> {
                Ok(Variables::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Variables, A::Error> {
                let mut out = Vec::new();
                while let Some((key, repr)) = map.next_entry::<String, VariableRepr>()? {
                    out.push(repr.into_variable(key));
                }
                Ok(Variables(out))
            }
        }
        deserializer.deserialize_any(OrderedVisitor)
    }
}

impl Serialize for Variables {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for v in &self.0 {
            map.serialize_entry(
                &v.key,
                &serde_json::json!({
                    "value": v.value, "masked": v.masked, "public": v.public, "file": v.file, "raw": v.raw
                }),
            )?;
        }
        map.end()
    }
}

/// A script may be one string or a list of strings.
fn lines<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lines {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Lines>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(Lines::One(line)) => vec![line],
        Some(Lines::Many(lines)) => lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
project: demo/app
repository: ./repo
jobs:
  - name: build
    stage: build
    image: alpine:3.19
    variables:
      PLAIN: "1"
      NUMBER: 42
      API_KEY: {value: "s3cr3t-value-123", masked: true}
      GIT_STRATEGY: clone
      LITERAL: {value: "$HOME", expand: false}
    before_script: ["echo before"]
    script: ["echo hello", "make"]
    after_script: ["echo after"]
    allow_failure: false
    timeout: 600
    expect: success
  - name: lint
    script: "exit 1"
    expect: failed
    services: ["postgres:16", {name: "redis:7", alias: cache}]
"#;

    #[test]
    fn parses_the_example_with_a_masked_variable() {
        let p = Pipeline::parse(EXAMPLE, Path::new("/pipelines")).unwrap();
        assert_eq!(p.project, "demo/app");
        assert_eq!(p.repository.as_deref(), Some(Path::new("/pipelines/./repo")));
        let build = &p.jobs[0];
        assert_eq!(build.stage, "build");
        assert_eq!(build.timeout, 600);
        assert_eq!(build.image.as_deref(), Some("alpine:3.19"));
        let keys: Vec<&str> = build.variables.0.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(
            keys,
            ["PLAIN", "NUMBER", "API_KEY", "GIT_STRATEGY", "LITERAL"],
            "file order is kept"
        );
        assert_eq!(build.variables.0[1].value, "42");
        let key = &build.variables.0[2];
        assert_eq!(key.value, "s3cr3t-value-123");
        assert!(key.masked && !key.public);
        assert!(build.variables.0[0].public && !build.variables.0[0].masked);
        assert!(build.variables.0[4].raw);
        assert_eq!(build.before_script, ["echo before"]);
        assert_eq!(build.script, ["echo hello", "make"]);

        let lint = &p.jobs[1];
        assert_eq!(lint.stage, "test");
        assert_eq!(lint.script, ["exit 1"]);
        assert_eq!(lint.expect, Expect::Failed);
        assert_eq!(lint.timeout, 3600);
        assert_eq!(lint.services[0].name, "postgres:16");
        assert_eq!(lint.services[1].alias.as_deref(), Some("cache"));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let typo = "project: a/b\njobs:\n  - name: x\n    scirpt: [x]\n";
        assert!(matches!(
            Pipeline::parse(typo, Path::new(".")),
            Err(SimError::ParsePipeline { .. })
        ));
        let short_mask =
            "project: a/b\njobs:\n  - name: x\n    script: [x]\n    variables: {K: {value: abc, masked: true}}\n";
        let err = Pipeline::parse(short_mask, Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("at least 8"), "{err}");
        for project in ["app", "a/../b", "/a/b", "a//b", "a/b.git"] {
            let yaml = format!("project: {project:?}\n");
            assert!(Pipeline::parse(&yaml, Path::new(".")).is_err(), "{project}");
        }
        let dup = "project: a/b\njobs:\n  - {name: x, script: [x]}\n  - {name: x, script: [y]}\n";
        assert!(Pipeline::parse(dup, Path::new(".")).is_err());
        let dep = "project: a/b\njobs:\n  - {name: x, script: [x], dependencies: [nope]}\n";
        assert!(Pipeline::parse(dep, Path::new(".")).is_err());
    }

    #[test]
    fn job_spec_round_trips_through_json() {
        let spec = JobSpec::new("t", ["true"])
            .variable("A", "1")
            .masked_variable("S", "secret-123");
        let json = serde_json::to_string(&spec).unwrap();
        let back: JobSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn expectations_match_final_states() {
        assert!(Expect::Success.matches(JobState::Success));
        assert!(!Expect::Success.matches(JobState::Failed));
        assert!(Expect::Canceled.matches(JobState::Canceled));
        let e: Expect = serde_yaml::from_str("cancelled").unwrap();
        assert_eq!(e, Expect::Canceled);
    }
}
