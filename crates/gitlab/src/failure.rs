//! [`FailureReason`]: why a job failed, and the mapping onto the reasons a GitLab accepts.
//!
//! The runner knows a few reasons GitLab may not (older instances lack `image_pull_failure`, and
//! `job_canceled` is runner-internal). GitLab lists what it accepts in the job payload's
//! `features.failure_reasons`; before the final `PUT` the reason is mapped as the official runner
//! does (reference §4.4): supported reasons as is, otherwise through a compatibility table, else
//! `unknown_failure`. GitLab would store an unknown value as `unknown_failure` anyway, but mapping
//! first keeps e.g. an image pull failure visible as a system failure on older instances.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A runner-side failure reason (`failure_reason` of a `failed` job update).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The job's script failed (non-zero exit). Also the default when nothing more is known.
    ScriptFailure,
    /// Something on the runner side broke (Pod, helper, Kubernetes API).
    RunnerSystemFailure,
    /// The job ran longer than its timeout.
    JobExecutionTimeout,
    /// An image of the job (build or service) could not be pulled.
    ImagePullFailure,
    /// Unknown.
    UnknownFailure,
    /// The runner's configuration does not allow what the job asks for.
    RunnerConfigurationError,
    /// An external dependency (registry, cache server, …) failed.
    RunnerExternalDependencyFailure,
    /// The runner was interrupted (shut down) while running the job.
    RunnerInterrupted,
    /// Runner-internal: the job was canceled (graceful cancel). Usually maps to `unknown_failure`.
    JobCanceled,
}

/// Reasons the official runner sends whatever GitLab lists (every GitLab knows them).
const ALWAYS_SUPPORTED: [FailureReason; 3] = [
    FailureReason::ScriptFailure,
    FailureReason::RunnerSystemFailure,
    FailureReason::JobExecutionTimeout,
];

impl FailureReason {
    /// Every reason, in declaration order.
    pub const ALL: [FailureReason; 9] = [
        FailureReason::ScriptFailure,
        FailureReason::RunnerSystemFailure,
        FailureReason::JobExecutionTimeout,
        FailureReason::ImagePullFailure,
        FailureReason::UnknownFailure,
        FailureReason::RunnerConfigurationError,
        FailureReason::RunnerExternalDependencyFailure,
        FailureReason::RunnerInterrupted,
        FailureReason::JobCanceled,
    ];

    /// The wire value (`script_failure`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ScriptFailure => "script_failure",
            FailureReason::RunnerSystemFailure => "runner_system_failure",
            FailureReason::JobExecutionTimeout => "job_execution_timeout",
            FailureReason::ImagePullFailure => "image_pull_failure",
            FailureReason::UnknownFailure => "unknown_failure",
            FailureReason::RunnerConfigurationError => "runner_configuration_error",
            FailureReason::RunnerExternalDependencyFailure => "runner_external_dependency_failure",
            FailureReason::RunnerInterrupted => "runner_interrupted",
            FailureReason::JobCanceled => "job_canceled",
        }
    }

    /// The older reason GitLab knew before this one was split out of it, if any.
    fn compatible_fallback(self) -> Option<FailureReason> {
        match self {
            FailureReason::ImagePullFailure => Some(FailureReason::RunnerSystemFailure),
            FailureReason::RunnerConfigurationError => Some(FailureReason::ScriptFailure),
            FailureReason::RunnerExternalDependencyFailure => Some(FailureReason::RunnerSystemFailure),
            _ => None,
        }
    }

    fn is_supported(self, supported_by_gitlab: &[String]) -> bool {
        ALWAYS_SUPPORTED.contains(&self) || supported_by_gitlab.iter().any(|s| s == self.as_str())
    }

    /// Maps a reason onto one that GitLab accepts, given the job's `features.failure_reasons`
    /// (reference §4.4). No reason at all means a script failure.
    pub fn map_for(reason: Option<FailureReason>, supported_by_gitlab: &[String]) -> FailureReason {
        let Some(reason) = reason else {
            return FailureReason::ScriptFailure;
        };
        if reason.is_supported(supported_by_gitlab) {
            return reason;
        }
        // The table is one level deep today; follow it anyway in case it grows (the official
        // runner bounds the walk at depth 10).
        let mut current = reason;
        for _ in 0..10 {
            match current.compatible_fallback() {
                Some(next) if next.is_supported(supported_by_gitlab) => return next,
                Some(next) => current = next,
                None => break,
            }
        }
        FailureReason::UnknownFailure
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the runner-side failure reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure reason {0:?}")]
pub struct UnknownFailureReason(pub String);

impl FromStr for FailureReason {
    type Err = UnknownFailureReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownFailureReason(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// The 23 "classic" reasons gitlab-runner-mock advertises.
    fn mock_list() -> Vec<String> {
        list(&[
            "unknown_failure",
            "script_failure",
            "api_failure",
            "stuck_or_timeout_failure",
            "runner_system_failure",
            "missing_dependency_failure",
            "runner_unsupported",
            "stale_schedule",
            "job_execution_timeout",
            "archived_failure",
            "unmet_prerequisites",
            "scheduler_failure",
            "data_integrity_failure",
            "forward_deployment_failure",
            "user_blocked",
            "project_deleted",
            "insufficient_bridge_permissions",
            "downstream_bridge_project_not_found",
            "invalid_bridge_trigger",
            "bridge_pipeline_is_child_pipeline",
            "downstream_pipeline_creation_failed",
            "secrets_provider_not_found",
            "reached_max_descendant_pipelines_depth",
        ])
    }

    #[test]
    fn no_reason_is_a_script_failure() {
        assert_eq!(FailureReason::map_for(None, &mock_list()), FailureReason::ScriptFailure);
        assert_eq!(FailureReason::map_for(None, &[]), FailureReason::ScriptFailure);
    }

    #[test]
    fn supported_reasons_pass_through() {
        let recent = list(&["image_pull_failure", "runner_configuration_error", "runner_interrupted"]);
        for r in [
            FailureReason::ImagePullFailure,
            FailureReason::RunnerConfigurationError,
            FailureReason::RunnerInterrupted,
        ] {
            assert_eq!(FailureReason::map_for(Some(r), &recent), r);
        }
    }

    #[test]
    fn always_supported_even_with_empty_list() {
        for r in ALWAYS_SUPPORTED {
            assert_eq!(FailureReason::map_for(Some(r), &[]), r);
        }
    }

    #[test]
    fn compatibility_map_on_old_gitlab() {
        let old = mock_list();
        assert_eq!(
            FailureReason::map_for(Some(FailureReason::ImagePullFailure), &old),
            FailureReason::RunnerSystemFailure
        );
        assert_eq!(
            FailureReason::map_for(Some(FailureReason::RunnerConfigurationError), &old),
            FailureReason::ScriptFailure
        );
        assert_eq!(
            FailureReason::map_for(Some(FailureReason::RunnerExternalDependencyFailure), &old),
            FailureReason::RunnerSystemFailure
        );
    }

    #[test]
    fn unmappable_becomes_unknown() {
        let old = mock_list();
        assert_eq!(
            FailureReason::map_for(Some(FailureReason::JobCanceled), &old),
            FailureReason::UnknownFailure
        );
        assert_eq!(
            FailureReason::map_for(Some(FailureReason::RunnerInterrupted), &old),
            FailureReason::UnknownFailure
        );
    }

    #[test]
    fn string_round_trip() {
        for r in FailureReason::ALL {
            assert_eq!(r.as_str().parse::<FailureReason>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.as_str()));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert!("api_failure".parse::<FailureReason>().is_err());
    }
}
