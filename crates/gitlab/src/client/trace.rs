//! `PATCH /jobs/:id/trace` (reference §5): append bytes to a job's log.
//!
//! `Content-Range` is GitLab's own syntax, not RFC 7233: `start-end` with `end` the offset of
//! the last byte (inclusive), no unit, no total. GitLab's answer uses an exclusive end
//! (`Range: 0-<stored length>`).

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderValue;
use reqwest::Method;

use super::{error_message, headers, Call, RunnerClient};
use crate::error::GitlabError;
use crate::secret::Secret;

const ENDPOINT: &str = "PATCH jobs/:id/trace";

/// How GitLab took a log patch (reference §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchOutcome {
    /// `202`: stored; the next patch starts at `new_offset` (= offset + length).
    Accepted {
        /// Bytes GitLab now holds.
        new_offset: u64,
        /// `X-GitLab-Trace-Update-Interval`: GitLab's wish for the patch cadence.
        update_interval: Option<Duration>,
        /// `Job-Status: canceling`: the user canceled, start a graceful cancel.
        cancel_requested: bool,
    },
    /// `416`: GitLab holds a different amount of log; re-send from `server_offset` (the end of
    /// its `Range: 0-N`, 0 when missing).
    RangeMismatch {
        /// Bytes GitLab holds.
        server_offset: u64,
    },
    /// The job is over server-side (`Job-Status: canceled`/`failed`, checked first, or 403, which
    /// is also how GitLab refuses a log over its size limit): hard-abort, stop patching.
    Abort {
        /// HTTP status.
        status: u16,
        /// `Job-Status`, if sent.
        job_status: Option<String>,
    },
    /// `404`: the job is gone; the final flush stops sending.
    NotFound,
    /// Anything else (400, 5xx/429 after the retry layer): retry at the next tick.
    Failed {
        /// HTTP status.
        status: u16,
        /// GitLab's message.
        message: String,
    },
}

impl RunnerClient {
    /// Sends `bytes` as the part of the log starting at `offset`.
    ///
    /// An empty patch is never sent ([`GitlabError::EmptyPatch`]): GitLab would compute an end
    /// before the start, and there is nothing to append anyway.
    pub async fn patch_trace(
        &self,
        job_id: u64,
        job_token: &Secret,
        offset: u64,
        bytes: impl Into<Bytes>,
        debug_trace: bool,
    ) -> Result<PatchOutcome, GitlabError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(GitlabError::EmptyPatch);
        }
        let len = bytes.len() as u64;
        let range = content_range(offset, len);
        let call = Call::new(
            ENDPOINT,
            Method::PATCH,
            format!("jobs/{job_id}/trace?debug_trace={debug_trace}"),
        )
        .text(bytes)
        .job_token(job_token)?
        .header(
            headers::CONTENT_RANGE,
            HeaderValue::from_str(&range).expect("digits and a dash are a valid header value"),
        );
        let response = self.send(call).await?;
        let status = response.status().as_u16();
        let job_status = headers::job_status(response.headers());
        let outcome = match (status, job_status.as_deref()) {
            (_, Some("canceled" | "failed")) | (403, _) => PatchOutcome::Abort { status, job_status },
            (202, _) => PatchOutcome::Accepted {
                new_offset: offset + len,
                update_interval: headers::update_interval(response.headers()),
                cancel_requested: job_status.as_deref() == Some("canceling"),
            },
            (404, _) => PatchOutcome::NotFound,
            (416, _) => PatchOutcome::RangeMismatch {
                server_offset: headers::range_end(response.headers()),
            },
            _ => PatchOutcome::Failed {
                status,
                message: error_message(response).await,
            },
        };
        tracing::debug!(job = job_id, range = %range, ?outcome, "trace patched");
        Ok(outcome)
    }
}

/// `start-end`, end inclusive: 4 bytes at 0 are `0-3`, the next byte `4-4`.
fn content_range(offset: u64, len: u64) -> String {
    debug_assert!(len > 0);
    format!("{offset}-{}", offset + len - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_inclusive() {
        assert_eq!(content_range(0, 4), "0-3");
        assert_eq!(content_range(4, 1), "4-4");
        assert_eq!(content_range(1024, 476), "1024-1499");
    }
}
