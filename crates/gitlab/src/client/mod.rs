//! [`RunnerClient`]: the runner API over HTTP for one GitLab URL.
//!
//! One client serves every runner token and job of that GitLab (tokens are per call). Each
//! endpoint lives in its own module and returns an outcome enum that mirrors how the official
//! runner classifies the answer; [`GitlabError`] is for everything that is not a protocol
//! outcome. Every request goes through the retry layer of [`retry`] and carries
//! `User-Agent: flotilla <version> (linux/<arch>)` and a fresh `X-Request-Id`.
//!
//! The runner lifecycle (reference §2: register, verify, unregister) is in [`runners`]; token
//! reset (`POST /runners/reset_authentication_token`) is not implemented yet.

mod headers;
mod request_job;
pub mod retry;
pub mod runners;
mod trace;
mod update_job;
mod url;

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response};

use crate::error::GitlabError;
use crate::secret::Secret;

pub use headers::MAX_UPDATE_INTERVAL;
pub use request_job::{JobRequest, ReceivedJob};
pub use retry::RetryPolicy;
pub use runners::{
    is_created_runner_token, AccessLevel, RegisterParams, Registration, RunnerCredentials, Unregistration, Verification,
};
pub use trace::PatchOutcome;
pub use update_job::{JobState, JobUpdate, TraceOutput, UpdateOutcome};

/// How much of an error body is read to find GitLab's `message`.
const ERROR_BODY_LIMIT: usize = 4096;

/// Connection settings of a [`RunnerClient`]. Defaults are the official runner's.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The retry layer.
    pub retry: RetryPolicy,
    /// TCP connect (and TLS handshake) timeout.
    pub connect_timeout: Duration,
    /// Longest silence while waiting for response headers or body bytes. GitLab (Workhorse) holds
    /// `jobs/request` up to ~50 s, so this must stay well above that; the official runner's
    /// response-header timeout is 10 min.
    pub read_timeout: Duration,
    /// Whole-request limit (official runner: 60 min).
    pub request_timeout: Duration,
    /// Extra CA certificates (PEM bundle) to trust, like `tls-ca-file` of `config.toml`.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(10 * 60),
            request_timeout: Duration::from_secs(60 * 60),
            tls_ca_pem: None,
        }
    }
}

/// The runner API client for one GitLab URL. Cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct RunnerClient {
    http: reqwest::Client,
    base: ::url::Url,
    retry: RetryPolicy,
}

/// `flotilla <version> (linux/<arch>)`.
pub fn user_agent() -> String {
    format!("flotilla {} (linux/{})", crate::VERSION, crate::info::go_arch())
}

impl RunnerClient {
    /// A client for the GitLab at `url` (as written in `config.toml`: trailing `/` and `/ci`
    /// are stripped, `/api/v4/` is appended) with default options.
    pub fn new(url: &str) -> Result<Self, GitlabError> {
        Self::with_options(url, ClientOptions::default())
    }

    /// A client with explicit options.
    pub fn with_options(url: &str, options: ClientOptions) -> Result<Self, GitlabError> {
        let base = url::api_base(url)?;
        let mut builder = reqwest::Client::builder()
            .user_agent(user_agent())
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .timeout(options.request_timeout)
            .min_tls_version(reqwest::tls::Version::TLS_1_2);
        if let Some(pem) = &options.tls_ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(GitlabError::InvalidCaCertificate)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(GitlabError::HttpClient)?;
        Ok(Self {
            http,
            base,
            retry: options.retry,
        })
    }

    /// The normalised API base, ending in `/api/v4/`.
    pub fn api_base(&self) -> &::url::Url {
        &self.base
    }

    /// Sends a call through the retry layer and returns the final response, whatever its status.
    pub(crate) async fn send(&self, call: Call) -> Result<Response, GitlabError> {
        let url = self.base.join(&call.path).map_err(|_| GitlabError::InvalidUrl {
            url: call.path.clone(),
            reason: "cannot be joined to the API base",
        })?;
        let request_id = headers::new_request_id();
        let request_id_value = HeaderValue::from_str(&request_id).expect("hex is a valid header value");
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(call.method.clone(), url.clone())
                .headers(call.headers.clone())
                .header(headers::REQUEST_ID, request_id_value.clone());
            if let Some((body, content_type)) = &call.body {
                request = request
                    .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
                    .body(body.clone());
            }
            let response = request.send().await.map_err(|source| GitlabError::Transport {
                endpoint: call.endpoint,
                source,
            })?;
            let status = response.status();
            tracing::debug!(
                endpoint = call.endpoint,
                %status,
                attempt,
                request_id = %request_id,
                server_request_id = headers::request_id(response.headers()).as_deref(),
                "GitLab answered"
            );
            if !RetryPolicy::is_retriable(status) || attempt >= self.retry.max_attempts.max(1) {
                return Ok(response);
            }
            let wait = self.retry.delay(attempt - 1, response.headers(), Utc::now());
            tracing::info!(
                endpoint = call.endpoint,
                %status,
                attempt,
                wait_ms = wait.as_millis() as u64,
                request_id = %request_id,
                "GitLab asked to retry; waiting before the next attempt"
            );
            drop(response);
            tokio::time::sleep(wait).await;
        }
    }

    /// Reads a JSON success body, requiring `Content-Type: application/json` as the official
    /// runner does (parameters such as `charset` allowed).
    pub(crate) async fn read_json_body(endpoint: &'static str, response: Response) -> Result<Bytes, GitlabError> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let is_json = content_type.as_deref().is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
        });
        if !is_json {
            return Err(GitlabError::NotJson { endpoint, content_type });
        }
        response
            .bytes()
            .await
            .map_err(|source| GitlabError::Transport { endpoint, source })
    }
}

/// One logical request: what [`RunnerClient::send`] sends (again on each retry).
pub(crate) struct Call {
    endpoint: &'static str,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Option<(Bytes, &'static str)>,
}

impl Call {
    /// A request to `path` (relative to `/api/v4/`); `endpoint` names it in logs and errors.
    pub(crate) fn new(endpoint: &'static str, method: Method, path: String) -> Self {
        Self {
            endpoint,
            method,
            path,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// Adds a JSON body.
    pub(crate) fn json<T: serde::Serialize>(mut self, body: &T) -> Result<Self, GitlabError> {
        let bytes = serde_json::to_vec(body).map_err(|source| GitlabError::Encode {
            endpoint: self.endpoint,
            source,
        })?;
        self.body = Some((Bytes::from(bytes), "application/json"));
        Ok(self)
    }

    /// Adds a plain-text body.
    pub(crate) fn text(mut self, body: Bytes) -> Self {
        self.body = Some((body, "text/plain"));
        self
    }

    /// Sets `RUNNER-TOKEN`.
    pub(crate) fn runner_token(mut self, token: &Secret) -> Result<Self, GitlabError> {
        self.headers
            .insert(headers::RUNNER_TOKEN, headers::token_value(token, "RUNNER-TOKEN")?);
        Ok(self)
    }

    /// Sets `JOB-TOKEN`.
    pub(crate) fn job_token(mut self, token: &Secret) -> Result<Self, GitlabError> {
        self.headers
            .insert(headers::JOB_TOKEN, headers::token_value(token, "JOB-TOKEN")?);
        Ok(self)
    }

    /// Sets `Accept: application/json` (only for calls that expect a JSON answer).
    pub(crate) fn accept_json(mut self) -> Self {
        self.headers
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        self
    }

    /// Sets another header.
    pub(crate) fn header(mut self, name: reqwest::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

/// GitLab's error `message` (or the start of the body) for logs and errors.
pub(crate) async fn error_message(mut response: Response) -> String {
    let status = response.status();
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) {
        match json.get("message").or_else(|| json.get("error")) {
            Some(serde_json::Value::String(s)) => return s.clone(),
            Some(other) => return other.to_string(),
            None => {}
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("").to_owned()
    } else {
        text.chars().take(200).collect()
    }
}

/// [`GitlabError::UnexpectedStatus`] for a response.
pub(crate) async fn unexpected_status(endpoint: &'static str, response: Response) -> GitlabError {
    let status = response.status().as_u16();
    GitlabError::UnexpectedStatus {
        endpoint,
        status,
        message: error_message(response).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_shape() {
        let ua = user_agent();
        assert!(ua.starts_with(&format!("flotilla {} (linux/", crate::VERSION)), "{ua}");
        assert!(ua.ends_with(')'));
    }

    #[test]
    fn client_base_url() {
        let c = RunnerClient::new("https://gitlab.example.com/ci/").unwrap();
        assert_eq!(c.api_base().as_str(), "https://gitlab.example.com/api/v4/");
        assert!(RunnerClient::new("gitlab.example.com").is_err());
    }

    #[test]
    fn invalid_ca_bundle_is_rejected() {
        let options = ClientOptions {
            tls_ca_pem: Some(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec()),
            ..ClientOptions::default()
        };
        assert!(matches!(
            RunnerClient::with_options("https://h", options),
            Err(GitlabError::InvalidCaCertificate(_))
        ));
    }
}
