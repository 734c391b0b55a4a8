//! [`JobVariable`]: one entry of the payload's `variables` (and of `services[].variables`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::de::{is_false, nullable};
use crate::secret::MASK;

/// A CI/CD variable as GitLab sends it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobVariable {
    /// Name.
    #[serde(deserialize_with = "nullable")]
    pub key: String,
    /// Value (for `file` variables: the file's content).
    #[serde(deserialize_with = "nullable")]
    pub value: String,
    /// Visible to anyone who can see the job (predefined, non-secret variables).
    #[serde(deserialize_with = "nullable")]
    pub public: bool,
    /// Must be masked in the job log.
    #[serde(deserialize_with = "nullable")]
    pub masked: bool,
    /// The value goes into a temporary file and the variable holds its path. Sent only when true.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub file: bool,
    /// No `$VAR` expansion of the value. Sent only when true.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub raw: bool,
}

impl JobVariable {
    /// A plain public variable.
    pub fn public(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            public: true,
            ..Self::default()
        }
    }

    /// Whether `Debug` may show the value: only public, unmasked variables are shown, because
    /// non-public ones are the project's own CI/CD variables and often secrets.
    fn printable(&self) -> bool {
        self.public && !self.masked
    }
}

impl fmt::Debug for JobVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("JobVariable");
        d.field("key", &self.key);
        if self.printable() {
            d.field("value", &self.value);
        } else {
            d.field("value", &format_args!("{MASK}"));
        }
        d.field("public", &self.public)
            .field("masked", &self.masked)
            .field("file", &self.file)
            .field("raw", &self.raw)
            .finish()
    }
}

/// Looks a variable up by key; the last occurrence wins, as in the official runner.
pub fn find_variable<'a>(variables: &'a [JobVariable], key: &str) -> Option<&'a JobVariable> {
    variables.iter().rev().find(|v| v.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_raw_only_serialised_when_true() {
        let v = JobVariable::public("A", "1");
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!({"key": "A", "value": "1", "public": true, "masked": false})
        );
        let f = JobVariable {
            file: true,
            raw: true,
            ..v
        };
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["file"], true);
        assert_eq!(json["raw"], true);
    }

    #[test]
    fn debug_hides_secret_values() {
        let secret: JobVariable =
            serde_json::from_str(r#"{"key":"CI_JOB_TOKEN","value":"glcbt-abc","public":false,"masked":true}"#).unwrap();
        let private: JobVariable =
            serde_json::from_str(r#"{"key":"DB_PASSWORD","value":"hunter2","public":false}"#).unwrap();
        let public = JobVariable::public("CI_JOB_ID", "42");
        assert!(!format!("{secret:?}").contains("glcbt-abc"));
        assert!(!format!("{private:?}").contains("hunter2"));
        assert!(format!("{public:?}").contains("42"));
    }

    #[test]
    fn last_duplicate_wins() {
        let vars = vec![JobVariable::public("A", "1"), JobVariable::public("A", "2")];
        assert_eq!(find_variable(&vars, "A").unwrap().value, "2");
        assert!(find_variable(&vars, "B").is_none());
    }
}
