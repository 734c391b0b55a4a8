//! [`RetryPolicy`]: the official runner's HTTP retry layer (reference §0).
//!
//! Statuses 408, 429, 500, 502, 503, 504 and anything ≥ 512 are retried inside the client, at
//! most 5 attempts in total. The wait before the next attempt is taken from
//! `RateLimit-ResetTime` (an RFC 1123 date) if it lies in the future, else from `Retry-After`
//! (integer seconds, if positive), else from an exponential backoff 100 ms → 60 s with jitter.
//! Transport errors are not retried here (the callers' loops own that decision). After the last
//! attempt the final response is handed to the caller like any other.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::headers::RATELIMIT_RESET_TIME;

/// How the client retries throttled or failing requests. The defaults are the official
/// runner's; tests shrink the durations.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (≥ 1).
    pub max_attempts: u32,
    /// First backoff delay.
    pub min_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// Growth factor per retry.
    pub factor: f64,
    /// Randomise each delay between `min_backoff` and its exponential value.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(60),
            factor: 2.0,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No retries at all: every response goes straight to the caller.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Whether the official runner retries a response with this status.
    pub fn is_retriable(status: StatusCode) -> bool {
        matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504) || status.as_u16() >= 512
    }

    /// The backoff before retry number `retry` (0 for the first retry), as `jpillora/backoff`
    /// computes it: `min * factor^retry`, jittered into `[min, that)`, capped at `max`.
    pub fn backoff(&self, retry: u32) -> Duration {
        if self.min_backoff >= self.max_backoff {
            return self.max_backoff;
        }
        let min = self.min_backoff.as_secs_f64();
        let mut secs = min * self.factor.powi(retry.min(i32::MAX as u32) as i32);
        if self.jitter && secs > min {
            secs = rand::thread_rng().gen_range(min..secs);
        }
        if !secs.is_finite() || secs >= self.max_backoff.as_secs_f64() {
            return self.max_backoff;
        }
        Duration::from_secs_f64(secs)
    }

    /// The wait before retry number `retry` after a retriable response with these headers.
    pub fn delay(&self, retry: u32, headers: &HeaderMap, now: DateTime<Utc>) -> Duration {
        reset_time_wait(headers, now)
            .or_else(|| retry_after_wait(headers))
            .unwrap_or_else(|| self.backoff(retry))
    }
}

/// `RateLimit-ResetTime: Wed, 21 Oct 2015 07:28:00 GMT` → time until then, if in the future.
fn reset_time_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RATELIMIT_RESET_TIME)?.to_str().ok()?;
    let at = DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (at.with_timezone(&Utc) - now).to_std().ok().filter(|d| !d.is_zero())
}

/// `Retry-After: <seconds>`; the HTTP-date form is not used by GitLab and, as in the official
/// runner, ignored.
fn retry_after_wait(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn retriable_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 512, 599] {
            assert!(RetryPolicy::is_retriable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 201, 204, 400, 401, 403, 404, 409, 416, 501, 505, 511] {
            assert!(!RetryPolicy::is_retriable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn backoff_without_jitter_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(800));
        assert_eq!(p.backoff(10), Duration::from_secs(60));
        assert_eq!(p.backoff(10_000), Duration::from_secs(60));
    }

    #[test]
    fn jittered_backoff_stays_in_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        for retry in 1..8 {
            let upper = Duration::from_millis(100 * 2u64.pow(retry)).min(Duration::from_secs(60));
            for _ in 0..50 {
                let d = p.backoff(retry);
                assert!(d >= Duration::from_millis(100) && d <= upper, "retry {retry}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_wins_over_backoff() {
        let p = RetryPolicy::default();
        let now = Utc::now();
        assert_eq!(
            p.delay(0, &headers(&[("retry-after", "60")]), now),
            Duration::from_secs(60)
        );
        // Zero, dates and garbage fall back to the backoff.
        for v in ["0", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"] {
            assert_eq!(
                p.delay(0, &headers(&[("retry-after", v)]), now),
                Duration::from_millis(100)
            );
        }
    }

    #[test]
    fn reset_time_wins_over_retry_after() {
        let p = RetryPolicy::default();
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:27:30 GMT")
            .unwrap()
            .with_timezone(&Utc);
        let h = headers(&[
            ("ratelimit-resettime", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("retry-after", "5"),
        ]);
        assert_eq!(p.delay(0, &h, now), Duration::from_secs(30));
        // A reset time in the past is ignored.
        let later = now + chrono::Duration::seconds(120);
        assert_eq!(p.delay(0, &h, later), Duration::from_secs(5));
    }
}
