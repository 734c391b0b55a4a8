//! `POST /jobs/request` (reference §3): ask GitLab for a job.

use std::fmt;

use bytes::Bytes;
use reqwest::Method;
use serde::Serialize;

use super::{headers, unexpected_status, Call, RunnerClient};
use crate::error::GitlabError;
use crate::info::VersionInfo;
use crate::secret::Secret;
use crate::system_id::SystemId;
use crate::types::JobPayload;

const ENDPOINT: &str = "jobs/request";

/// The outcome of a job request.
#[derive(Debug)]
pub enum JobRequest {
    /// `201`: a job for us. GitLab considers it running from now on (legacy job commit).
    Job(Box<ReceivedJob>),
    /// `204`: nothing to do. `last_update` is GitLab's new `X-GitLab-Last-Update`, if it sent one
    /// (Workhorse's long-poll 204s do not): send it as `last_update` next time, else keep the old.
    NoJob {
        /// New queue version, if any.
        last_update: Option<String>,
    },
    /// `403`: the runner token is invalid (runner deleted or token rotated): unhealthy.
    Forbidden,
    /// `409`: another runner manager took the job concurrently: poll again.
    Conflict,
}

/// A job GitLab handed to us.
pub struct ReceivedJob {
    /// The parsed payload.
    pub payload: JobPayload,
    /// The body exactly as GitLab sent it (stored by the coordinator, handed to the Pod).
    pub raw: Bytes,
    /// `X-GitLab-Last-Update` of the response, if any.
    pub last_update: Option<String>,
}

impl fmt::Debug for ReceivedJob {
    /// The raw body holds the job token, so only its size is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedJob")
            .field("payload", &self.payload)
            .field("raw", &format_args!("<{} bytes>", self.raw.len()))
            .field("last_update", &self.last_update)
            .finish()
    }
}

#[derive(Serialize)]
struct JobRequestBody<'a> {
    info: &'a VersionInfo,
    token: &'a str,
    system_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update: Option<&'a str>,
}

impl RunnerClient {
    /// Asks for a job. GitLab (Workhorse) may hold the request for up to ~50 s when
    /// `last_update` matches its queue version; the client's timeouts allow for that.
    ///
    /// Statuses other than 201/204/403/409 (e.g. 503 or 429 once the retry layer gave up, 400,
    /// 422) are [`GitlabError::UnexpectedStatus`]; see [`GitlabError::marks_runner_unhealthy`].
    pub async fn request_job(
        &self,
        runner_token: &Secret,
        system_id: &SystemId,
        info: &VersionInfo,
        last_update: Option<&str>,
    ) -> Result<JobRequest, GitlabError> {
        let body = JobRequestBody {
            info,
            token: runner_token.expose(),
            system_id: system_id.as_str(),
            last_update: last_update.filter(|s| !s.is_empty()),
        };
        let call = Call::new(ENDPOINT, Method::POST, ENDPOINT.to_owned())
            .json(&body)?
            .runner_token(runner_token)?
            .accept_json();
        let response = self.send(call).await?;
        let last_update = headers::last_update(response.headers());
        match response.status().as_u16() {
            201 => {
                let raw = Self::read_json_body(ENDPOINT, response).await?;
                let payload = JobPayload::from_slice(&raw)?;
                tracing::info!(job = payload.id, "received a job");
                Ok(JobRequest::Job(Box::new(ReceivedJob {
                    payload,
                    raw,
                    last_update,
                })))
            }
            204 => Ok(JobRequest::NoJob { last_update }),
            403 => {
                tracing::warn!("jobs/request forbidden: the runner token is invalid");
                Ok(JobRequest::Forbidden)
            }
            409 => Ok(JobRequest::Conflict),
            _ => Err(unexpected_status(ENDPOINT, response).await),
        }
    }
}
