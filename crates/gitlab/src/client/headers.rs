//! Header names of the runner API and the parsing of the headers GitLab answers with.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::GitlabError;
use crate::secret::Secret;

/// Runner token header (register, verify, jobs/request).
pub(crate) const RUNNER_TOKEN: HeaderName = HeaderName::from_static("runner-token");
/// Job token header (job update, trace, artifacts).
pub(crate) const JOB_TOKEN: HeaderName = HeaderName::from_static("job-token");
/// GitLab's job status after a job call.
pub(crate) const JOB_STATUS: HeaderName = HeaderName::from_static("job-status");
/// Seconds until the next trace update / final update retry.
pub(crate) const TRACE_UPDATE_INTERVAL: HeaderName = HeaderName::from_static("x-gitlab-trace-update-interval");
/// The build queue's version, echoed as `last_update` in the next job request.
pub(crate) const LAST_UPDATE: HeaderName = HeaderName::from_static("x-gitlab-last-update");
/// Correlation id.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Trace PATCH range (`start-end`, end inclusive).
pub(crate) const CONTENT_RANGE: HeaderName = HeaderName::from_static("content-range");
/// Rate limiting: wait until this RFC 1123 date.
pub(crate) const RATELIMIT_RESET_TIME: HeaderName = HeaderName::from_static("ratelimit-resettime");

/// The official runner caps server-provided update intervals at 15 minutes.
pub const MAX_UPDATE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// A token as a header value, marked sensitive so the HTTP stack never logs or indexes it.
pub(crate) fn token_value(token: &Secret, header: &'static str) -> Result<HeaderValue, GitlabError> {
    let mut value = HeaderValue::from_str(token.expose()).map_err(|_| GitlabError::InvalidToken { header })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A new correlation id: a UUID v4 as 32 hex digits, like the official runner's.
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `Job-Status`, if present.
pub(crate) fn job_status(headers: &HeaderMap) -> Option<String> {
    text(headers, &JOB_STATUS)
}

/// `X-GitLab-Last-Update`, if present and non-empty.
pub(crate) fn last_update(headers: &HeaderMap) -> Option<String> {
    text(headers, &LAST_UPDATE)
}

/// The server's `X-Request-Id`, for logs.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    text(headers, &REQUEST_ID)
}

/// `X-GitLab-Trace-Update-Interval`: positive integer seconds, capped at
/// [`MAX_UPDATE_INTERVAL`]; zero, negative or unparseable values are ignored.
pub(crate) fn update_interval(headers: &HeaderMap) -> Option<Duration> {
    let secs: i64 = text(headers, &TRACE_UPDATE_INTERVAL)?.parse().ok()?;
    let secs = u64::try_from(secs).ok().filter(|&s| s > 0)?;
    Some(Duration::from_secs(secs).min(MAX_UPDATE_INTERVAL))
}

/// The end of GitLab's `Range: 0-N` (N = bytes it has stored); 0 when missing or malformed, as
/// the official runner does (it then re-sends from the start and GitLab corrects it again).
pub(crate) fn range_end(headers: &HeaderMap) -> u64 {
    text(headers, &reqwest::header::RANGE)
        .and_then(|r| {
            let (_, end) = r.split_once('-')?;
            end.trim().parse().ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn interval_parsing() {
        let i = |v| update_interval(&map(&[("x-gitlab-trace-update-interval", v)]));
        assert_eq!(i("3"), Some(Duration::from_secs(3)));
        assert_eq!(i("0"), None);
        assert_eq!(i("-1"), None);
        assert_eq!(i("abc"), None);
        assert_eq!(i("3600"), Some(MAX_UPDATE_INTERVAL));
        assert_eq!(update_interval(&HeaderMap::new()), None);
    }

    #[test]
    fn range_parsing() {
        assert_eq!(range_end(&map(&[("range", "0-1500")])), 1500);
        assert_eq!(range_end(&map(&[("range", "bogus")])), 0);
        assert_eq!(range_end(&HeaderMap::new()), 0);
    }

    #[test]
    fn request_ids_are_32_hex() {
        let id = new_request_id();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn token_header_is_sensitive_and_validated() {
        let v = token_value(&Secret::new("glrt-abc"), "RUNNER-TOKEN").unwrap();
        assert!(v.is_sensitive());
        assert!(matches!(
            token_value(&Secret::new("bad\ntoken"), "JOB-TOKEN"),
            Err(GitlabError::InvalidToken { header: "JOB-TOKEN" })
        ));
    }

    #[test]
    fn empty_last_update_is_none() {
        assert_eq!(last_update(&map(&[("x-gitlab-last-update", "")])), None);
        assert_eq!(
            last_update(&map(&[("x-gitlab-last-update", "abc")])).as_deref(),
            Some("abc")
        );
    }
}
