//! What a job moves around besides its log: [`Artifact`] (`artifacts[]`), [`Cache`] (`cache[]`)
//! and [`Dependency`] (`dependencies[]`, artifacts of earlier jobs to download).

use serde::{Deserialize, Serialize};

use super::de::nullable;
use super::step::When;
use crate::secret::Secret;

/// An artifact upload the job must make.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Artifact {
    /// Archive name (empty: `default`).
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Include untracked files.
    #[serde(deserialize_with = "nullable")]
    pub untracked: bool,
    /// Paths (globs) to include.
    #[serde(deserialize_with = "nullable")]
    pub paths: Vec<String>,
    /// Paths (globs) to exclude.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// When to upload.
    pub when: When,
    /// `archive`, `junit`, `dotenv`, … (any GitLab file type).
    #[serde(deserialize_with = "nullable")]
    pub artifact_type: String,
    /// `zip`, `gzip`, `raw` (the official runner also knows `zipzstd`, `tarzstd`).
    #[serde(deserialize_with = "nullable")]
    pub artifact_format: String,
    /// Expiry, e.g. `1 week`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_in: Option<String>,
}

/// A cache the job restores and/or saves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cache {
    /// Cache key.
    #[serde(deserialize_with = "nullable")]
    pub key: String,
    /// Include untracked files.
    #[serde(deserialize_with = "nullable")]
    pub untracked: bool,
    /// `pull-push` (also when empty), `pull` or `push`.
    #[serde(deserialize_with = "nullable")]
    pub policy: String,
    /// Paths (globs).
    #[serde(deserialize_with = "nullable")]
    pub paths: Vec<String>,
    /// When to save.
    pub when: When,
    /// Keys to try when `key` has no cache yet.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub fallback_keys: Vec<String>,
}

impl Cache {
    /// Whether the cache is restored before the job.
    pub fn pulls(&self) -> bool {
        matches!(self.policy.as_str(), "" | "pull-push" | "pull")
    }

    /// Whether the cache is saved after the job.
    pub fn pushes(&self) -> bool {
        matches!(self.policy.as_str(), "" | "pull-push" | "push")
    }
}

/// An earlier job whose artifacts this job downloads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dependency {
    /// The dependency's job id (`GET /jobs/:id/artifacts`).
    #[serde(deserialize_with = "nullable")]
    pub id: u64,
    /// Its job name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Token for the download (`JOB-TOKEN`); modern GitLab sends the running job's token here.
    pub token: Secret,
    /// Its artifacts archive; `None`: nothing to download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts_file: Option<ArtifactsFile>,
}

/// `dependencies[].artifacts_file`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArtifactsFile {
    /// File name, e.g. `artifacts.zip`.
    #[serde(deserialize_with = "nullable")]
    pub filename: String,
    /// Size in bytes.
    #[serde(deserialize_with = "nullable")]
    pub size: u64,
}

/// A registry credential (`credentials[]`). The password is a [`Secret`], so `Debug` is safe.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Credential {
    /// `registry`.
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    /// Registry host (optionally with port).
    #[serde(deserialize_with = "nullable")]
    pub url: String,
    /// User name.
    #[serde(deserialize_with = "nullable")]
    pub username: String,
    /// Password or token.
    pub password: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_style_artifact() {
        // gitlab-runner-mock sends `when: null`, `artifact_format: null`, misspells `expire_in`
        // and omits `untracked` when false.
        let a: Artifact = serde_json::from_str(
            r#"{"name":null,"paths":["out/"],"when":null,"exprire_in":"1d","artifact_type":"archive","artifact_format":null}"#,
        )
        .unwrap();
        assert_eq!(a.name, "");
        assert_eq!(a.when, When::OnSuccess);
        assert_eq!(a.artifact_format, "");
        assert_eq!(a.expire_in, None);
        assert!(!a.untracked);
    }

    #[test]
    fn cache_policies() {
        let c = |p: &str| Cache {
            policy: p.into(),
            ..Cache::default()
        };
        assert!(c("").pulls() && c("").pushes());
        assert!(c("pull").pulls() && !c("pull").pushes());
        assert!(!c("push").pulls() && c("push").pushes());
    }

    #[test]
    fn dependency_without_artifacts() {
        let d: Dependency =
            serde_json::from_str(r#"{"id":1,"name":"build","token":"t","artifacts_file":null}"#).unwrap();
        assert!(d.artifacts_file.is_none());
        assert_eq!(d.token.expose(), "t");
    }

    #[test]
    fn credential_debug_masks_password() {
        let c: Credential = serde_json::from_str(
            r#"{"type":"registry","url":"registry.example.com","username":"gitlab-ci-token","password":"registry-dummy-tokn"}"#,
        )
        .unwrap();
        assert_eq!(c.kind, "registry");
        assert!(!format!("{c:?}").contains("registry-dummy-tokn"));
    }
}
