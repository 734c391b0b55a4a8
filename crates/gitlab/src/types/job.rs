//! The payload's descriptive objects: [`JobInfo`] (`job_info`), [`GitInfo`] (`git_info`) and
//! [`RunnerInfo`] (`runner_info`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::de::{nullable, string_or_number};
use crate::secret::MASK;

/// `job_info`: names and ids around the job. Older GitLab sends only name, stage, project id and
/// project name; everything newer is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobInfo {
    /// Job id (same as the payload's `id`; not sent by every GitLab).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Job name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Stage name.
    #[serde(deserialize_with = "nullable")]
    pub stage: String,
    /// Project id.
    #[serde(deserialize_with = "nullable")]
    pub project_id: u64,
    /// Project name (path component).
    #[serde(deserialize_with = "nullable")]
    pub project_name: String,
    /// `group/subgroup/project`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_full_path: Option<String>,
    /// Pipeline id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<u64>,
    /// Namespace id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_id: Option<u64>,
    /// Root namespace id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_namespace_id: Option<u64>,
    /// Organization id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<u64>,
    /// GitLab instance id (a string on the wire).
    #[serde(deserialize_with = "string_or_number", skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// GitLab instance UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_uuid: Option<String>,
    /// User who triggered the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    /// Scoped user id (nullable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scoped_user_id: Option<u64>,
    /// Seconds the job waited in the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_queue_seconds: Option<f64>,
    /// Sent by GitLab as a string.
    #[serde(deserialize_with = "string_or_number", skip_serializing_if = "Option::is_none")]
    pub project_jobs_running_on_instance_runners_count: Option<String>,
    /// Queue size when the job was picked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_size: Option<u64>,
    /// Queue depth when the job was picked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
}

/// `git_info`: what to clone.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GitInfo {
    /// HTTPS clone URL, with `gitlab-ci-token:<job token>@` credentials (hence the masking Debug).
    #[serde(deserialize_with = "nullable")]
    pub repo_url: String,
    /// Branch or tag name.
    #[serde(rename = "ref", deserialize_with = "nullable")]
    pub git_ref: String,
    /// Commit to build.
    #[serde(deserialize_with = "nullable")]
    pub sha: String,
    /// Previous commit of the push.
    #[serde(deserialize_with = "nullable")]
    pub before_sha: String,
    /// `branch` or `tag`.
    #[serde(deserialize_with = "nullable")]
    pub ref_type: String,
    /// Refspecs to fetch.
    #[serde(deserialize_with = "nullable")]
    pub refspecs: Vec<String>,
    /// Clone depth; 0 = full history.
    #[serde(deserialize_with = "nullable")]
    pub depth: u32,
    /// `sha1` or `sha256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_object_format: Option<String>,
    /// Whether the ref is protected (nullable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
}

impl fmt::Debug for GitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitInfo")
            .field("repo_url", &redact_url_password(&self.repo_url))
            .field("git_ref", &self.git_ref)
            .field("sha", &self.sha)
            .field("before_sha", &self.before_sha)
            .field("ref_type", &self.ref_type)
            .field("refspecs", &self.refspecs)
            .field("depth", &self.depth)
            .field("repo_object_format", &self.repo_object_format)
            .field("protected", &self.protected)
            .finish()
    }
}

/// Replaces the password of `scheme://user:password@host/…` with `[MASKED]`.
pub(crate) fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:{MASK}{}",
        &url[..authority_start],
        &userinfo[..colon],
        &url[authority_start + at..]
    )
}

/// `runner_info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunnerInfo {
    /// Effective job timeout in seconds; ≤ 0 means "runner default".
    #[serde(deserialize_with = "nullable")]
    pub timeout: i64,
    /// Session URL echoed back (ignored by runners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_session_url: Option<String>,
    /// Runner UUID (newer GitLab).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

impl RunnerInfo {
    /// The official runner's default job timeout, used when GitLab sends none.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(7200);

    /// The job's hard deadline.
    pub fn job_timeout(&self) -> Duration {
        u64::try_from(self.timeout)
            .ok()
            .filter(|&s| s > 0)
            .map_or(Self::DEFAULT_TIMEOUT, Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_password_redaction() {
        assert_eq!(
            redact_url_password("https://gitlab-ci-token:glcbt-123@gitlab.example.com/g/p.git"),
            "https://gitlab-ci-token:[MASKED]@gitlab.example.com/g/p.git"
        );
        assert_eq!(redact_url_password("https://bla/dummy.git"), "https://bla/dummy.git");
        assert_eq!(redact_url_password("https://user@h/p.git"), "https://user@h/p.git");
        assert_eq!(
            redact_url_password("https://h/p.git?a=b:c@d"),
            "https://h/p.git?a=b:c@d"
        );
        assert_eq!(redact_url_password("not a url"), "not a url");
    }

    #[test]
    fn git_info_debug_masks_token() {
        let g = GitInfo {
            repo_url: "https://gitlab-ci-token:glcbt-secret@h/g/p.git".into(),
            ..GitInfo::default()
        };
        let dbg = format!("{g:?}");
        assert!(!dbg.contains("glcbt-secret"), "{dbg}");
        assert!(dbg.contains("h/g/p.git"));
    }

    #[test]
    fn job_timeout_defaults() {
        let t = |timeout| {
            RunnerInfo {
                timeout,
                ..RunnerInfo::default()
            }
            .job_timeout()
        };
        assert_eq!(t(3600), Duration::from_secs(3600));
        assert_eq!(t(0), RunnerInfo::DEFAULT_TIMEOUT);
        assert_eq!(t(-5), RunnerInfo::DEFAULT_TIMEOUT);
    }

    #[test]
    fn job_info_tolerates_old_and_new_shapes() {
        let old: JobInfo =
            serde_json::from_str(r#"{"name":"b","stage":"test","project_id":1,"project_name":"p"}"#).unwrap();
        assert_eq!(old.name, "b");
        assert_eq!(old.pipeline_id, None);
        let new: JobInfo = serde_json::from_str(
            r#"{"name":"b","stage":"s","project_id":1,"project_name":"p","scoped_user_id":null,
                "project_jobs_running_on_instance_runners_count":"+Inf","instance_id":12,"time_in_queue_seconds":0.5,
                "some_future_field":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(
            new.project_jobs_running_on_instance_runners_count.as_deref(),
            Some("+Inf")
        );
        assert_eq!(new.instance_id.as_deref(), Some("12"));
        assert_eq!(new.time_in_queue_seconds, Some(0.5));
    }
}
