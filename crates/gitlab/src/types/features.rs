//! [`JobFeatures`]: the payload's `features`, what this GitLab supports for the job.

use serde::{Deserialize, Serialize};

use super::de::nullable;
use crate::failure::FailureReason;

/// `features` of the job payload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobFeatures {
    /// GitLab parses `section_start`/`section_end` markers in the log.
    #[serde(deserialize_with = "nullable")]
    pub trace_sections: bool,
    /// Extra token prefixes to mask in the log (besides `glpat-`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub token_mask_prefixes: Vec<String>,
    /// Failure reasons this GitLab accepts (drives [`JobFeatures::map_failure_reason`]).
    #[serde(deserialize_with = "nullable")]
    pub failure_reasons: Vec<String>,
    /// OpenTelemetry tracing context (kept as JSON; Flotilla does not export spans to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<serde_json::Value>,
}

impl JobFeatures {
    /// The `failure_reason` to send for a failed job (reference §4.4).
    pub fn map_failure_reason(&self, reason: Option<FailureReason>) -> FailureReason {
        FailureReason::map_for(reason, &self.failure_reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_against_the_payload_list() {
        let f: JobFeatures = serde_json::from_str(
            r#"{"trace_sections":true,"failure_reasons":["script_failure","image_pull_failure"]}"#,
        )
        .unwrap();
        assert!(f.trace_sections);
        assert!(f.token_mask_prefixes.is_empty());
        assert_eq!(
            f.map_failure_reason(Some(FailureReason::ImagePullFailure)),
            FailureReason::ImagePullFailure
        );
        assert_eq!(
            f.map_failure_reason(Some(FailureReason::RunnerInterrupted)),
            FailureReason::UnknownFailure
        );
        assert_eq!(f.map_failure_reason(None), FailureReason::ScriptFailure);
    }
}
