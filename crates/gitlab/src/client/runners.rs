//! The runner lifecycle (reference §2): legacy registration (`POST /runners`), verification
//! (`POST /runners/verify`) and unregistration (`DELETE /runners`, `DELETE /runners/managers`).
//!
//! An operator's tool (`fleetctl runner`) makes these calls, not the running fleet: they create,
//! check and delete the runner records whose tokens the coordinator's `[[runners]]` entries hold.
//! As the official runner does, every call carries the token in the JSON body (what GitLab
//! authenticates) and in `RUNNER-TOKEN`; only register and verify, which expect a JSON answer,
//! send `Accept: application/json`. Answers are classified like the official runner classifies
//! them; a status it treats as a failure is [`GitlabError::UnexpectedStatus`] with GitLab's
//! message (validation errors, `410` when registration tokens are disabled, `422` orphaned).

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{unexpected_status, Call, RunnerClient};
use crate::error::GitlabError;
use crate::info::VersionInfo;
use crate::secret::Secret;
use crate::system_id::SystemId;

const REGISTER: &str = "POST runners";
const VERIFY: &str = "POST runners/verify";
const UNREGISTER: &str = "DELETE runners";
const UNREGISTER_MANAGER: &str = "DELETE runners/managers";

/// The prefix the official runner looks for to tell a runner created in GitLab (UI, API) from
/// one registered with a registration token.
pub const CREATED_RUNNER_TOKEN_PREFIX: &str = "glrt-";

/// Whether `token` belongs to a runner created in GitLab (`glrt-…`) rather than one registered
/// with a registration token (opaque or `glrtr-…`).
///
/// It decides how a runner is unregistered: a created runner is managed in GitLab and outlives
/// the processes using its token, so only this runner manager is deleted
/// ([`RunnerClient::unregister_manager`]); a registered runner is deleted as a whole
/// ([`RunnerClient::unregister`]). As in the official runner only the plain prefix counts, so a
/// token with an instance-wide custom prefix (`acme-glrt-…`) is treated as a legacy one.
pub fn is_created_runner_token(token: &Secret) -> bool {
    token.expose().starts_with(CREATED_RUNNER_TOKEN_PREFIX)
}

/// `access_level` of a runner: which refs' jobs it may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    /// Jobs of every ref.
    NotProtected,
    /// Only jobs of protected branches and tags.
    RefProtected,
}

/// The runner settings sent with a legacy registration. From then on they live in GitLab and
/// are changed there, not by registering again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterParams {
    /// Shown in GitLab's runner list (omitted when empty).
    pub description: String,
    /// Free-form note for administrators, at most 1024 characters (omitted when empty).
    pub maintenance_note: String,
    /// Job tags the runner takes; sent comma-separated, blanks dropped (omitted when empty).
    pub tags: Vec<String>,
    /// Whether it also takes jobs without tags. GitLab refuses a runner with neither.
    pub run_untagged: bool,
    /// Locked to the project whose registration token was used.
    pub locked: bool,
    /// Which refs' jobs it runs (GitLab's default when `None`: every ref).
    pub access_level: Option<AccessLevel>,
    /// Upper bound on its jobs' timeouts, in seconds (omitted when `None` or 0).
    pub maximum_timeout: Option<u32>,
    /// Registered paused: GitLab hands it no jobs until it is resumed.
    pub paused: bool,
}

impl Default for RegisterParams {
    /// The official `gitlab-runner register` defaults: no tags so untagged jobs, locked, active.
    fn default() -> Self {
        Self {
            description: String::new(),
            maintenance_note: String::new(),
            tags: Vec::new(),
            run_untagged: true,
            locked: true,
            access_level: None,
            maximum_timeout: None,
            paused: false,
        }
    }
}

/// A runner's identity as GitLab hands it out: what its `[[runners]]` entry needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerCredentials {
    /// GitLab's runner id.
    pub id: u64,
    /// The runner authentication token.
    pub token: Secret,
    /// When the token stops working (`None`: never).
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// The outcome of a legacy registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    /// `201`: a new runner exists in GitLab. Its token is handed out only this once.
    Registered(RunnerCredentials),
    /// `403`: GitLab does not accept this registration token.
    Forbidden,
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// `200`: GitLab knows the token. `None` when the answer names no runner id: older GitLab
    /// answers a bare `200`, which the official runner accepts as valid too.
    Valid(Option<RunnerCredentials>),
    /// `403`: GitLab does not know the token (runner deleted, token rotated or mistyped).
    Invalid,
}

/// The outcome of an unregistration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unregistration {
    /// `204`: deleted.
    Deleted,
    /// `403`: GitLab does not know the token.
    Forbidden,
    /// `404` of `DELETE /runners/managers`: the runner exists but has no manager with this
    /// `system_id` (already unregistered, or that system never contacted GitLab).
    ManagerNotFound,
}

#[derive(Serialize)]
struct RegisterBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maintenance_note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag_list: Option<String>,
    // The official runner always sends these three, so GitLab never falls back to its own
    // defaults behind the operator's back.
    run_untagged: bool,
    locked: bool,
    paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_level: Option<AccessLevel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_timeout: Option<u32>,
    info: &'a VersionInfo,
    token: &'a str,
}

impl<'a> RegisterBody<'a> {
    fn new(token: &'a Secret, params: &'a RegisterParams, info: &'a VersionInfo) -> Self {
        let non_empty = |s: &'a String| Some(s.as_str()).filter(|s| !s.trim().is_empty());
        let tags: Vec<&str> = params.tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect();
        Self {
            description: non_empty(&params.description),
            maintenance_note: non_empty(&params.maintenance_note),
            tag_list: Some(tags.join(",")).filter(|t| !t.is_empty()),
            run_untagged: params.run_untagged,
            locked: params.locked,
            paused: params.paused,
            access_level: params.access_level,
            maximum_timeout: params.maximum_timeout.filter(|&t| t > 0),
            info,
            token: token.expose(),
        }
    }
}

#[derive(Serialize)]
struct VerifyBody<'a> {
    // Sent on verify because GitLab records it on the runner manager the verification creates,
    // and reads capabilities such as `cancel_gracefully` from there until the first job request.
    info: &'a VersionInfo,
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_id: Option<&'a str>,
}

#[derive(Serialize)]
struct UnregisterBody<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_id: Option<&'a str>,
}

/// The `{id, token, token_expires_at}` answer of register and verify.
#[derive(Debug, Deserialize)]
struct CredentialsBody {
    #[serde(default)]
    id: u64,
    #[serde(default)]
    token: Secret,
    #[serde(default)]
    token_expires_at: Option<DateTime<Utc>>,
}

/// Parses a credentials answer; the error names only where the body went wrong, because the body
/// holds a token and serde's messages quote the offending value.
fn parse_credentials(endpoint: &'static str, body: &[u8]) -> Result<CredentialsBody, GitlabError> {
    serde_json::from_slice(body).map_err(|e| GitlabError::InvalidBody {
        endpoint,
        reason: format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column()),
    })
}

impl RunnerClient {
    /// Registers a new runner with a (deprecated) registration token and returns its
    /// credentials. `info` is Flotilla's; GitLab keeps its `name` on the runner.
    ///
    /// `403` (the token is refused) is [`Registration::Forbidden`]; every other status, such as
    /// `400` for settings GitLab rejects or `410` when the instance disabled registration tokens,
    /// is [`GitlabError::UnexpectedStatus`] with GitLab's message.
    pub async fn register(
        &self,
        registration_token: &Secret,
        params: &RegisterParams,
    ) -> Result<Registration, GitlabError> {
        let info = VersionInfo::flotilla();
        let call = Call::new(REGISTER, Method::POST, "runners".to_owned())
            .json(&RegisterBody::new(registration_token, params, &info))?
            .runner_token(registration_token)?
            .accept_json();
        let response = self.send(call).await?;
        match response.status().as_u16() {
            201 => {
                let body = Self::read_json_body(REGISTER, response).await?;
                let answer = parse_credentials(REGISTER, &body)?;
                if answer.id == 0 || answer.token.is_empty() {
                    return Err(GitlabError::InvalidBody {
                        endpoint: REGISTER,
                        reason: "no runner id or token".to_owned(),
                    });
                }
                tracing::info!(runner = answer.id, "registered a runner");
                Ok(Registration::Registered(RunnerCredentials {
                    id: answer.id,
                    token: answer.token,
                    token_expires_at: answer.token_expires_at,
                }))
            }
            403 => Ok(Registration::Forbidden),
            _ => Err(unexpected_status(REGISTER, response).await),
        }
    }

    /// Asks GitLab whether it knows a runner token. With a `system_id`, GitLab records (or
    /// refreshes) that runner manager; without one it uses its `<legacy>` manager.
    ///
    /// `422` (the runner's project or group is gone) and other statuses are
    /// [`GitlabError::UnexpectedStatus`].
    pub async fn verify(&self, token: &Secret, system_id: Option<&SystemId>) -> Result<Verification, GitlabError> {
        let info = VersionInfo::flotilla();
        let body = VerifyBody {
            info: &info,
            token: token.expose(),
            system_id: system_id.map(SystemId::as_str),
        };
        let call = Call::new(VERIFY, Method::POST, "runners/verify".to_owned())
            .json(&body)?
            .runner_token(token)?
            .accept_json();
        let response = self.send(call).await?;
        match response.status().as_u16() {
            200 => {
                // Older GitLab answers `200` with a plain-text body; the official runner then
                // accepts the token without details, and so do we.
                let details = match Self::read_json_body(VERIFY, response).await {
                    Ok(body) => parse_credentials(VERIFY, &body).ok(),
                    Err(GitlabError::NotJson { .. }) => None,
                    Err(e) => return Err(e),
                };
                let details = details.filter(|d| d.id != 0).map(|d| RunnerCredentials {
                    id: d.id,
                    // GitLab echoes the token; an answer without it still vouches for ours.
                    token: if d.token.is_empty() { token.clone() } else { d.token },
                    token_expires_at: d.token_expires_at,
                });
                Ok(Verification::Valid(details))
            }
            403 => Ok(Verification::Invalid),
            _ => Err(unexpected_status(VERIFY, response).await),
        }
    }

    /// Deletes the runner that owns a token registered with a registration token, together
    /// with all its managers. Do not use it for `glrt-` tokens (see
    /// [`is_created_runner_token`]): it would delete a runner managed in GitLab's UI.
    pub async fn unregister(&self, token: &Secret) -> Result<Unregistration, GitlabError> {
        let body = UnregisterBody {
            token: token.expose(),
            system_id: None,
        };
        let call = Call::new(UNREGISTER, Method::DELETE, "runners".to_owned())
            .json(&body)?
            .runner_token(token)?;
        let response = self.send(call).await?;
        match response.status().as_u16() {
            204 => Ok(Unregistration::Deleted),
            403 => Ok(Unregistration::Forbidden),
            _ => Err(unexpected_status(UNREGISTER, response).await),
        }
    }

    /// Deletes only the runner manager `system_id` of a runner created in GitLab (`glrt-`): the
    /// runner and its other managers stay.
    pub async fn unregister_manager(
        &self,
        token: &Secret,
        system_id: &SystemId,
    ) -> Result<Unregistration, GitlabError> {
        let body = UnregisterBody {
            token: token.expose(),
            system_id: Some(system_id.as_str()),
        };
        let call = Call::new(UNREGISTER_MANAGER, Method::DELETE, "runners/managers".to_owned())
            .json(&body)?
            .runner_token(token)?;
        let response = self.send(call).await?;
        match response.status().as_u16() {
            204 => Ok(Unregistration::Deleted),
            403 => Ok(Unregistration::Forbidden),
            404 => Ok(Unregistration::ManagerNotFound),
            _ => Err(unexpected_status(UNREGISTER_MANAGER, response).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn register_body(params: &RegisterParams) -> serde_json::Value {
        let info = VersionInfo::default();
        serde_json::to_value(RegisterBody::new(&Secret::new("reg"), params, &info)).unwrap()
    }

    #[test]
    fn default_registration_body() {
        let mut body = register_body(&RegisterParams::default());
        body.as_object_mut().unwrap().remove("info");
        assert_eq!(
            body,
            json!({"token": "reg", "run_untagged": true, "locked": true, "paused": false})
        );
    }

    #[test]
    fn full_registration_body() {
        let params = RegisterParams {
            description: "k8s runner".into(),
            maintenance_note: "ops".into(),
            tags: vec![" k8s-default ".into(), String::new(), "linux".into()],
            run_untagged: false,
            locked: false,
            access_level: Some(AccessLevel::RefProtected),
            maximum_timeout: Some(3600),
            paused: true,
        };
        let body = register_body(&params);
        assert_eq!(body["description"], "k8s runner");
        assert_eq!(body["maintenance_note"], "ops");
        assert_eq!(body["tag_list"], "k8s-default,linux");
        assert_eq!(body["run_untagged"], false);
        assert_eq!(body["locked"], false);
        assert_eq!(body["paused"], true);
        assert_eq!(body["access_level"], "ref_protected");
        assert_eq!(body["maximum_timeout"], 3600);
    }

    #[test]
    fn blank_settings_are_omitted() {
        let params = RegisterParams {
            description: "  ".into(),
            tags: vec![" ".into()],
            maximum_timeout: Some(0),
            ..RegisterParams::default()
        };
        let body = register_body(&params);
        for key in [
            "description",
            "maintenance_note",
            "tag_list",
            "access_level",
            "maximum_timeout",
        ] {
            assert!(body.get(key).is_none(), "{key} should be omitted: {body}");
        }
    }

    #[test]
    fn created_runner_tokens() {
        assert!(is_created_runner_token(&Secret::new("glrt-abc")));
        for legacy in ["glrtr-abc", "abc123", "acme-glrt-abc", ""] {
            assert!(!is_created_runner_token(&Secret::new(legacy)), "{legacy}");
        }
    }

    #[test]
    fn credentials_parse_and_errors_do_not_quote_the_body() {
        let ok = parse_credentials(
            VERIFY,
            br#"{"id": 7, "token": "glrt-x", "token_expires_at": "2026-01-02T03:04:05.000Z"}"#,
        )
        .unwrap();
        assert_eq!(ok.id, 7);
        assert_eq!(ok.token.expose(), "glrt-x");
        assert_eq!(ok.token_expires_at.unwrap().to_rfc3339(), "2026-01-02T03:04:05+00:00");
        let null = parse_credentials(VERIFY, br#"{"id": 7, "token": "t", "token_expires_at": null}"#).unwrap();
        assert_eq!(null.token_expires_at, None);

        let err = parse_credentials(REGISTER, br#"{"id": "glrt-secret-value", "token": 5}"#).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("glrt-secret-value"), "{text}");
        assert!(text.starts_with("POST runners: unexpected response body:"), "{text}");
    }
}
