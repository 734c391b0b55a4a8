//! [`Step`] (`steps[]`), [`Hook`] (`hooks[]`) and the [`When`] condition they share with
//! artifacts and caches.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::de::nullable;

/// When a step (or an artifact/cache transfer) runs, relative to the job's success so far.
///
/// GitLab sends `on_success`, `on_failure` or `always`; empty or `null` means `on_success`.
/// Unknown values are kept verbatim so a newer GitLab never makes a payload unparseable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "Option<String>", into = "String")]
pub enum When {
    /// Only while the job is succeeding (the default).
    #[default]
    OnSuccess,
    /// Only once the job has failed.
    OnFailure,
    /// Regardless of the outcome.
    Always,
    /// A value this crate does not know.
    Other(String),
}

impl When {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            When::OnSuccess => "on_success",
            When::OnFailure => "on_failure",
            When::Always => "always",
            When::Other(s) => s,
        }
    }

    /// Runs while the job is succeeding.
    pub fn on_success(&self) -> bool {
        matches!(self, When::OnSuccess | When::Always)
    }

    /// Runs once the job has failed.
    pub fn on_failure(&self) -> bool {
        matches!(self, When::OnFailure | When::Always)
    }
}

impl From<Option<String>> for When {
    fn from(value: Option<String>) -> Self {
        match value.as_deref() {
            None | Some("") | Some("on_success") => When::OnSuccess,
            Some("on_failure") => When::OnFailure,
            Some("always") => When::Always,
            Some(_) => When::Other(value.unwrap_or_default()),
        }
    }
}

impl From<When> for String {
    fn from(value: When) -> Self {
        match value {
            When::Other(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One build step: `script` (before_script + script), `after_script`, `release`, `run`, ….
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    /// Step name (`script`, `after_script`, …).
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Shell lines.
    #[serde(deserialize_with = "nullable")]
    pub script: Vec<String>,
    /// Timeout in seconds (GitLab mirrors the job timeout here).
    #[serde(deserialize_with = "nullable")]
    pub timeout: u64,
    /// When the step runs.
    pub when: When,
    /// A failure of this step does not fail the job.
    #[serde(deserialize_with = "nullable")]
    pub allow_failure: bool,
}

impl Step {
    /// Name of the main step (before_script + script).
    pub const SCRIPT: &'static str = "script";
    /// Name of the after_script step.
    pub const AFTER_SCRIPT: &'static str = "after_script";
    /// Name of the release step.
    pub const RELEASE: &'static str = "release";
}

/// A hook script (`pre_get_sources_script`, `post_get_sources_script`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hook {
    /// Hook name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Shell lines.
    #[serde(deserialize_with = "nullable")]
    pub script: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_parsing() {
        let parse = |s: &str| serde_json::from_str::<When>(s).unwrap();
        assert_eq!(parse("null"), When::OnSuccess);
        assert_eq!(parse("\"\""), When::OnSuccess);
        assert_eq!(parse("\"on_failure\""), When::OnFailure);
        assert_eq!(parse("\"always\""), When::Always);
        assert_eq!(parse("\"manual\""), When::Other("manual".into()));
        assert_eq!(
            serde_json::to_string(&When::Other("manual".into())).unwrap(),
            "\"manual\""
        );
        assert_eq!(serde_json::to_string(&When::OnFailure).unwrap(), "\"on_failure\"");
        assert!(When::Always.on_success() && When::Always.on_failure());
        assert!(!When::OnFailure.on_success());
    }

    #[test]
    fn step_defaults() {
        let s: Step = serde_json::from_str(r#"{"name":"script","script":["echo hi"]}"#).unwrap();
        assert_eq!(s.when, When::OnSuccess);
        assert_eq!(s.timeout, 0);
        assert!(!s.allow_failure);
    }
}
