//! [`GitlabError`]: what can go wrong talking to GitLab, other than the protocol outcomes.
//!
//! Expected answers (no job, forbidden, abort, range mismatch, …) are not errors: they are the
//! outcome enums of [`crate::client`]. Errors are what the caller cannot act on as protocol:
//! transport failures, answers that break the protocol, statuses outside the documented set.
//! No variant carries a token; header values are never echoed.

use crate::types::PayloadError;

/// An error of a runner API call.
#[derive(Debug, thiserror::Error)]
pub enum GitlabError {
    /// The configured GitLab URL is unusable.
    #[error("invalid GitLab URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL (password redacted).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("building the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The configured CA certificate bundle is not valid PEM.
    #[error("invalid CA certificate bundle: {0}")]
    InvalidCaCertificate(#[source] reqwest::Error),
    /// A token contains characters that cannot go into an HTTP header.
    #[error("the {header} token is not a valid HTTP header value")]
    InvalidToken {
        /// Which header (`RUNNER-TOKEN` or `JOB-TOKEN`).
        header: &'static str,
    },
    /// The request could not be encoded.
    #[error("encoding the {endpoint} request: {source}")]
    Encode {
        /// The endpoint.
        endpoint: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Connecting, sending or reading the response failed (not retried, as in the official
    /// runner: the caller's own loop decides).
    #[error("{endpoint}: transport error: {source}")]
    Transport {
        /// The endpoint.
        endpoint: &'static str,
        /// The HTTP client error.
        #[source]
        source: reqwest::Error,
    },
    /// A success answer that should carry JSON has another media type.
    #[error("{endpoint}: expected an application/json response, got {content_type:?}")]
    NotJson {
        /// The endpoint.
        endpoint: &'static str,
        /// The `Content-Type` received, if any.
        content_type: Option<String>,
    },
    /// A success answer whose JSON body does not have the documented shape. Only the kind and
    /// position of the problem are kept: the body may hold a token.
    #[error("{endpoint}: unexpected response body: {reason}")]
    InvalidBody {
        /// The endpoint.
        endpoint: &'static str,
        /// What is wrong with it, without any of its values.
        reason: String,
    },
    /// A `201` job payload that does not parse.
    #[error("jobs/request: {0}")]
    InvalidPayload(#[from] PayloadError),
    /// A status code outside the endpoint's documented outcomes (after the retry layer).
    #[error("{endpoint}: unexpected HTTP status {status}: {message}")]
    UnexpectedStatus {
        /// The endpoint.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// GitLab's `message` (or the start of the body).
        message: String,
    },
    /// The caller asked to PATCH zero bytes; GitLab's end offset would underflow, so such a patch
    /// is never sent.
    #[error("refusing to send an empty trace patch")]
    EmptyPatch,
}

impl GitlabError {
    /// Whether the official runner would count this `jobs/request` result as "unhealthy"
    /// (transport failure or an unusable `201`). Unexpected statuses (e.g. 503 after retries)
    /// are not: GitLab is busy, not broken for this runner.
    pub fn marks_runner_unhealthy(&self) -> bool {
        matches!(
            self,
            GitlabError::Transport { .. } | GitlabError::NotJson { .. } | GitlabError::InvalidPayload(_)
        )
    }

    /// The HTTP status, for [`GitlabError::UnexpectedStatus`].
    pub fn status(&self) -> Option<u16> {
        match self {
            GitlabError::UnexpectedStatus { status, .. } => Some(*status),
            _ => None,
        }
    }
}
