//! `PATCH /api/v4/jobs/:id/trace`: the runner appends to a job's log.
//!
//! Strict where GitLab is strict and a little stricter where a lax answer would hide a client bug:
//! `Content-Type` and `Content-Range` (`start-end`, end inclusive) are required (400), the end
//! must match the body length (400; GitLab silently recomputes it), and `start` must equal the
//! stored length (416 + `Range: 0-<len>`). Accepted chunks are answered 202 with `Range`,
//! `Job-Status` and `X-GitLab-Trace-Update-Interval`; a job that is not executing gets 403 +
//! `Job-Status`. The log is stored as opaque bytes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;

use super::{authenticated_job, empty, job_token, message, not_executing, with_job_status, App};
use crate::state::Job;

/// Why a chunk was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceRejection {
    MissingContentType,
    MissingContentRange,
    BadContentRange(String),
    /// `start` is not the stored length (which is given).
    RangeNotSatisfiable(usize),
}

/// Parses `start-end` (no unit, no total; end inclusive).
pub fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let (start, end) = value.trim().split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?))
}

/// Appends `body` to `job`'s trace if the headers describe it exactly.
pub fn append(
    job: &mut Job,
    content_type: Option<&str>,
    content_range: Option<&str>,
    body: &[u8],
) -> Result<usize, TraceRejection> {
    if content_type.is_none_or(|ct| ct.trim().is_empty()) {
        return Err(TraceRejection::MissingContentType);
    }
    let range = content_range.ok_or(TraceRejection::MissingContentRange)?;
    let (start, end) = parse_content_range(range).ok_or_else(|| TraceRejection::BadContentRange(range.to_string()))?;
    let len = job.trace.len();
    if start != len as u64 {
        return Err(TraceRejection::RangeNotSatisfiable(len));
    }
    // Runners never send empty chunks; if one comes, its end cannot be checked meaningfully.
    if !body.is_empty() && end != start + body.len() as u64 - 1 {
        return Err(TraceRejection::BadContentRange(format!(
            "{range} does not describe {} bytes at {start} (the end is inclusive)",
            body.len()
        )));
    }
    job.trace.extend_from_slice(body);
    Ok(job.trace.len())
}

pub async fn append_trace(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = job_token(&headers, &uri, None);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (content_type, content_range) = (header("content-type"), header("content-range"));
    let interval = app.settings.trace_update_interval;
    app.store.modify(|jobs| {
        let job = match authenticated_job(jobs, &id, token.as_deref()) {
            Ok(job) => job,
            Err(response) => return response,
        };
        job.patches += 1;
        if !job.state.is_executing() {
            return not_executing(job.state);
        }
        match append(job, content_type.as_deref(), content_range.as_deref(), &body) {
            Ok(len) => {
                let mut response = with_job_status(empty(StatusCode::ACCEPTED), job.state);
                let headers = response.headers_mut();
                headers.insert("range", HeaderValue::from_str(&format!("0-{len}")).expect("digits"));
                headers.insert("x-gitlab-trace-update-interval", HeaderValue::from(interval));
                response
            }
            Err(TraceRejection::RangeNotSatisfiable(len)) => {
                let mut response = message(StatusCode::RANGE_NOT_SATISFIABLE, "416 Range Not Satisfiable");
                let headers = response.headers_mut();
                headers.insert("range", HeaderValue::from_str(&format!("0-{len}")).expect("digits"));
                // GitLab sets no Job-Status on 416 (it errors out before setting it).
                response
            }
            Err(TraceRejection::MissingContentType) => {
                message(StatusCode::BAD_REQUEST, "400 Missing header Content-Type")
            }
            Err(TraceRejection::MissingContentRange) => {
                message(StatusCode::BAD_REQUEST, "400 Missing header Content-Range")
            }
            Err(TraceRejection::BadContentRange(why)) => message(
                StatusCode::BAD_REQUEST,
                &format!("400 Invalid header Content-Range: {why}"),
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::JobSpec;
    use crate::state::Store;

    fn job() -> Job {
        let store = Store::default();
        store.enqueue(JobSpec::new("j", ["true"])).unwrap();
        store.assign_next("r").unwrap()
    }

    const TEXT: Option<&str> = Some("text/plain");

    #[test]
    fn appends_consecutive_chunks() {
        let mut job = job();
        assert_eq!(append(&mut job, TEXT, Some("0-3"), b"abcd"), Ok(4));
        assert_eq!(append(&mut job, TEXT, Some("4-4"), b"e"), Ok(5));
        assert_eq!(job.trace, b"abcde");
    }

    #[test]
    fn rejects_gaps_overlaps_and_bad_headers() {
        let mut job = job();
        append(&mut job, TEXT, Some("0-1"), b"ab").unwrap();
        assert_eq!(
            append(&mut job, TEXT, Some("0-1"), b"ab"),
            Err(TraceRejection::RangeNotSatisfiable(2))
        );
        assert_eq!(
            append(&mut job, TEXT, Some("5-6"), b"ab"),
            Err(TraceRejection::RangeNotSatisfiable(2))
        );
        assert_eq!(
            append(&mut job, TEXT, None, b"c"),
            Err(TraceRejection::MissingContentRange)
        );
        assert_eq!(
            append(&mut job, None, Some("2-2"), b"c"),
            Err(TraceRejection::MissingContentType)
        );
        assert!(matches!(
            append(&mut job, TEXT, Some("2-3"), b"c"),
            Err(TraceRejection::BadContentRange(_))
        ));
        assert!(matches!(
            append(&mut job, TEXT, Some("bytes 2-2/3"), b"c"),
            Err(TraceRejection::BadContentRange(_))
        ));
        assert_eq!(job.trace, b"ab", "nothing stored by refused chunks");
    }

    #[test]
    fn content_range_syntax() {
        assert_eq!(parse_content_range("0-1023"), Some((0, 1023)));
        assert_eq!(parse_content_range("a-b"), None);
        assert_eq!(parse_content_range("12"), None);
    }
}
