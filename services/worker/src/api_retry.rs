//! A job's Kubernetes API requests, retried when they fail for a reason that passes: the
//! runner entry's `retry_limit` tries in all (default 5), `retry_limits` per error message
//! substring, and a backoff doubling from 500 ms up to `retry_backoff_max` (default 2 s), as
//! the official runner retries its requests. A blip of the API server then costs a job a
//! moment, not a `runner_system_failure`.
//!
//! What passes: a connection that failed or broke, `429 Too Many Requests`, and the `5xx`
//! answers of an overloaded or restarting API server (500, 502, 503, 504). The official runner
//! matches network error texts and lets client-go retry 429s; Flotilla classifies the error
//! instead, which takes in the 5xx answers its list spells out as texts ("etcdserver: request
//! timed out", "Timeout occurred"). kube's client already retries 429, 503 and 504 within one
//! try (its default `server_retry` policy); this adds the rest and the entry's settings.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use flotilla_config::KubernetesConfig;

/// The first pause between two tries.
const BACKOFF_MIN: Duration = Duration::from_millis(500);

/// How a job's requests are retried (its runner entry's settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRetry {
    limit: u32,
    limits: BTreeMap<String, u32>,
    backoff_max: Duration,
}

impl Default for ApiRetry {
    /// The official defaults, for a job whose entry is not known (a Pod re-adopted after a
    /// worker restart).
    fn default() -> Self {
        ApiRetry::from_config(&KubernetesConfig::default())
    }
}

impl ApiRetry {
    pub fn from_config(kubernetes: &KubernetesConfig) -> ApiRetry {
        ApiRetry {
            limit: kubernetes.retry_limit,
            limits: kubernetes.retry_limits.clone(),
            backoff_max: kubernetes.retry_backoff_max(),
        }
    }

    /// How many tries `error` gets in all (1: it is not retried). A `retry_limits` entry whose
    /// text the error contains decides, and makes any error retryable.
    fn tries(&self, error: &kube::Error) -> u32 {
        let text = error.to_string();
        if let Some(limit) = self
            .limits
            .iter()
            .find(|(substring, _)| text.contains(substring.as_str()))
            .map(|(_, limit)| *limit)
        {
            return limit.max(1);
        }
        if passes(error) {
            self.limit.max(1)
        } else {
            1
        }
    }

    /// Runs `request` until it succeeds, fails for good, or has used its tries; `what` names
    /// it in the worker's log.
    pub async fn run<T, F, Fut>(&self, job_id: u64, what: &str, mut request: F) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut tried = 0;
        let mut backoff = BACKOFF_MIN.min(self.backoff_max);
        loop {
            let error = match request().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            tried += 1;
            let tries = self.tries(&error);
            if tried >= tries {
                return Err(error);
            }
            tracing::warn!(job_id, request = what, %error, tried, tries, "Kubernetes API request failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.backoff_max);
        }
    }
}

/// Whether `error` is one that passes by itself (see the module docs).
pub fn passes(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status::failure(message, "").with_code(code)))
    }

    fn retry(limit: u32, limits: &[(&str, u32)], backoff_max_ms: u32) -> ApiRetry {
        ApiRetry::from_config(&KubernetesConfig {
            retry_limit: limit,
            retry_limits: limits.iter().map(|(text, n)| (text.to_string(), *n)).collect(),
            retry_backoff_max: backoff_max_ms,
            ..KubernetesConfig::default()
        })
    }

    /// Runs a request that fails with `error()` `failures` times, then succeeds; how many
    /// calls it took, or the error it ended with.
    async fn calls(retry: &ApiRetry, failures: u32, error: impl Fn() -> kube::Error) -> Result<u32, String> {
        let made = AtomicU32::new(0);
        retry
            .run(1, "test", || async {
                let n = made.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= failures {
                    Err(error())
                } else {
                    Ok(n)
                }
            })
            .await
            .map_err(|e| e.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn passing_errors_are_retried_up_to_retry_limit_tries() {
        let retry = ApiRetry::default();
        assert_eq!(
            calls(&retry, 4, || api_error(500, "etcdserver: request timed out")).await,
            Ok(5)
        );
        assert_eq!(calls(&retry, 2, || api_error(429, "slow down")).await, Ok(3));
        let failed = calls(&retry, 5, || api_error(503, "unavailable")).await;
        assert!(
            failed.unwrap_err().contains("unavailable"),
            "the fifth failure is the last try"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lasting_errors_are_not_retried() {
        let retry = ApiRetry::default();
        for code in [400, 403, 404, 409, 422] {
            let made = calls(&retry, 1, || api_error(code, "lasting")).await;
            assert!(made.is_err(), "{code}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_limits_match_error_texts_and_win() {
        let retry = retry(2, &[("forbidden", 3), ("unavailable", 1)], 2000);
        // A lasting error made retryable by its text.
        assert_eq!(calls(&retry, 2, || api_error(403, "forbidden")).await, Ok(3));
        // A passing one limited below retry_limit.
        assert!(calls(&retry, 1, || api_error(503, "unavailable")).await.is_err());
        assert_eq!(calls(&retry, 1, || api_error(500, "internal")).await, Ok(2));
        assert!(calls(&retry, 2, || api_error(500, "internal")).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_backoff_doubles_up_to_retry_backoff_max() {
        let retry = retry(5, &[], 1500);
        let started = tokio::time::Instant::now();
        assert_eq!(calls(&retry, 4, || api_error(500, "internal")).await, Ok(5));
        // 500 + 1000 + 1500 + 1500 ms of (paused, auto-advanced) time.
        assert_eq!(started.elapsed(), Duration::from_millis(4500));
    }
}
