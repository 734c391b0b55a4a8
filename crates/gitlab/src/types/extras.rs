//! The payload's newer, optional sections: `secrets` ([`JobSecret`]), `inputs` ([`JobInput`]),
//! `policy_options` ([`PolicyOptions`]) and `suspend_options` ([`SuspendOptions`]).
//!
//! Flotilla does not act on most of these yet (no `vault_secrets`, no `job_inputs` feature, so
//! GitLab should not send them), but they are parsed so a payload that carries them round-trips
//! and never fails to parse.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::de::{is_false, nullable};
use crate::secret::MASK;

/// One entry of `secrets`: exactly one provider (`vault`, `gcp_secret_manager`,
/// `azure_key_vault`, `aws_secrets_manager`, `gitlab_secrets_manager`, …) and `file`.
///
/// Provider configurations carry JWTs, so they are kept as opaque JSON and `Debug` prints only
/// the provider names.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobSecret {
    /// Expose the secret as a file variable (GitLab's default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<bool>,
    /// Provider name → its configuration.
    #[serde(flatten)]
    pub providers: BTreeMap<String, serde_json::Value>,
}

impl fmt::Debug for JobSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSecret")
            .field("file", &self.file)
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One job input (`inputs[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobInput {
    /// Input name.
    #[serde(deserialize_with = "nullable")]
    pub key: String,
    /// Typed value.
    pub value: JobInputValue,
}

/// `inputs[].value`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobInputValue {
    /// `string`, `number`, `boolean`, `array` or `struct`.
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    /// The value, JSON of that type.
    pub content: serde_json::Value,
    /// Must not be shown (masked in `Debug`).
    #[serde(deserialize_with = "nullable")]
    pub sensitive: bool,
}

impl fmt::Debug for JobInputValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("JobInputValue");
        d.field("kind", &self.kind);
        if self.sensitive {
            d.field("content", &format_args!("{MASK}"));
        } else {
            d.field("content", &self.content);
        }
        d.field("sensitive", &self.sensitive).finish()
    }
}

/// `policy_options`: set when the job comes from a security/compliance execution policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyOptions {
    /// The job was injected by an execution policy.
    #[serde(deserialize_with = "nullable")]
    pub execution_policy_job: bool,
    /// The policy's name.
    #[serde(deserialize_with = "nullable")]
    pub policy_name: String,
    /// Whether project variables may override policy variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_variables_override_allowed: Option<bool>,
    /// Exceptions to the override rule.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub policy_variables_override_exceptions: Vec<String>,
}

/// `suspend_options`: suspend/resume of the job's environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SuspendOptions {
    /// Suspend when the job succeeds.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub suspend_on_success: bool,
    /// Suspend when the job fails.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub suspend_on_failure: bool,
    /// Environment key to echo in job updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_environment_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_provider_config() {
        let s: JobSecret = serde_json::from_str(
            r#"{"vault":{"server":{"url":"https://v","auth":{"name":"jwt","path":"jwt","data":{"jwt":"eyJsecret"}}},"engine":{"name":"kv-v2","path":"kv"},"path":"p","field":"f"},"file":false}"#,
        )
        .unwrap();
        assert_eq!(s.file, Some(false));
        assert!(s.providers.contains_key("vault"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("eyJsecret"), "{dbg}");
        assert!(dbg.contains("vault"));
    }

    #[test]
    fn sensitive_input_debug() {
        let i: JobInput =
            serde_json::from_str(r#"{"key":"pw","value":{"type":"string","content":"s3cr3t","sensitive":true}}"#)
                .unwrap();
        assert_eq!(i.value.content, "s3cr3t");
        assert!(!format!("{i:?}").contains("s3cr3t"));
    }
}
