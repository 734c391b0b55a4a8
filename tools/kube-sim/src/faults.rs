//! Fault injection: what tests switch on to see Flotilla survive a misbehaving cluster.
//!
//! Each fault is reachable as a method here (library use) and through the `/sim/faults`
//! control API (see `api::control`).

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::ApiError;

/// The long-lived streams a test can cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Watch,
    Log,
    Exec,
}

/// Answer a share of API requests with an error instead of serving them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorFault {
    /// Share of requests hit, 0.0..=1.0.
    pub fraction: f64,
    /// 429 (with Retry-After) or 500.
    pub code: u16,
    #[serde(default = "one")]
    pub retry_after_seconds: u64,
    /// Stop after this many injected errors (None: until cleared).
    #[serde(default)]
    pub remaining: Option<u64>,
    /// Only requests of this HTTP method (e.g. `POST`); None: any.
    #[serde(default)]
    pub method: Option<String>,
    /// Only requests whose path contains this (e.g. `/secrets`); None: any.
    #[serde(default)]
    pub path_contains: Option<String>,
}

impl ErrorFault {
    /// Every request (or `fraction` of them) answered with `code`, until cleared.
    pub fn new(code: u16, fraction: f64) -> ErrorFault {
        ErrorFault {
            fraction,
            code,
            retry_after_seconds: 1,
            remaining: None,
            method: None,
            path_contains: None,
        }
    }

    fn applies_to(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path_contains.as_deref().is_none_or(|p| path.contains(p))
    }
}

fn one() -> u64 {
    1
}

/// Make pulls of an image fail (ErrImagePull, then ImagePullBackOff).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImagePullFault {
    pub image: String,
    /// Only fail pulls under this imagePullPolicy (e.g. "Always": the registry is down but
    /// a cached copy would do). None: every policy fails.
    #[serde(default)]
    pub pull_policy: Option<String>,
}

pub struct Faults {
    drops: [watch::Sender<u64>; 3],
    /// How long after creation a Pod is scheduled; changes apply to Pods already waiting.
    schedule_delay: watch::Sender<Duration>,
    image_pulls: Mutex<Vec<ImagePullFault>>,
    errors: Mutex<Option<ErrorFault>>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            drops: std::array::from_fn(|_| watch::channel(0).0),
            schedule_delay: watch::channel(Duration::ZERO).0,
            image_pulls: Mutex::new(Vec::new()),
            errors: Mutex::new(None),
        }
    }
}

fn index(kind: StreamKind) -> usize {
    match kind {
        StreamKind::Watch => 0,
        StreamKind::Log => 1,
        StreamKind::Exec => 2,
    }
}

/// Resolves when the streams of one kind are told to drop.
pub struct DropSignal(watch::Receiver<u64>);

impl DropSignal {
    pub async fn dropped(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Faults {
    /// Cuts every open stream of these kinds (the clients see the connection end).
    pub fn drop_streams(&self, kinds: &[StreamKind]) {
        for kind in kinds {
            self.drops[index(*kind)].send_modify(|generation| *generation += 1);
        }
    }

    pub fn drop_signal(&self, kind: StreamKind) -> DropSignal {
        DropSignal(self.drops[index(kind)].subscribe())
    }

    /// Delays scheduling; lowering it releases Pods that are already waiting.
    pub fn set_schedule_delay(&self, delay: Duration) {
        self.schedule_delay.send_replace(delay);
    }

    pub fn schedule_delay(&self) -> watch::Receiver<Duration> {
        self.schedule_delay.subscribe()
    }

    pub fn fail_image_pulls(&self, fault: ImagePullFault) {
        let mut pulls = self.image_pulls.lock().unwrap();
        pulls.retain(|f| f.image != fault.image);
        pulls.push(fault);
    }

    pub fn clear_image_pull_failure(&self, image: &str) {
        self.image_pulls.lock().unwrap().retain(|f| f.image != image);
    }

    pub fn pull_fails(&self, image: &str, pull_policy: &str) -> bool {
        self.image_pulls
            .lock()
            .unwrap()
            .iter()
            .any(|f| f.image == image && f.pull_policy.as_deref().is_none_or(|p| p == pull_policy))
    }

    pub fn set_errors(&self, fault: Option<ErrorFault>) {
        *self.errors.lock().unwrap() = fault;
    }

    /// The error to answer this request with, if the error fault picks it.
    pub fn injected_error(&self, method: &str, path: &str) -> Option<ApiError> {
        let mut guard = self.errors.lock().unwrap();
        let fault = guard.as_mut()?;
        if !fault.applies_to(method, path) || !rand::thread_rng().gen_bool(fault.fraction.clamp(0.0, 1.0)) {
            return None;
        }
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
        }
        let error = if fault.code == 429 {
            let mut e = ApiError::new(
                429,
                "TooManyRequests",
                "Too many requests, please try again later (kube-sim fault injection)",
            );
            e.retry_after = Some(fault.retry_after_seconds);
            e
        } else {
            ApiError::internal("kube-sim fault injection: internal error")
        };
        if fault.remaining == Some(0) {
            *guard = None;
        }
        Some(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fault_counts_down() {
        let faults = Faults::default();
        faults.set_errors(Some(ErrorFault {
            retry_after_seconds: 2,
            remaining: Some(2),
            ..ErrorFault::new(429, 1.0)
        }));
        let first = faults.injected_error("GET", "/api/v1/pods").unwrap();
        assert_eq!((first.code, first.retry_after), (429, Some(2)));
        assert_eq!(faults.injected_error("GET", "/api/v1/pods").unwrap().code, 429);
        assert!(faults.injected_error("GET", "/api/v1/pods").is_none());
    }

    #[test]
    fn error_fault_picks_requests_by_method_and_path() {
        let faults = Faults::default();
        faults.set_errors(Some(ErrorFault {
            method: Some("POST".into()),
            path_contains: Some("/secrets".into()),
            remaining: Some(1),
            ..ErrorFault::new(500, 1.0)
        }));
        assert!(faults
            .injected_error("GET", "/api/v1/namespaces/default/secrets")
            .is_none());
        assert!(faults
            .injected_error("POST", "/api/v1/namespaces/default/pods")
            .is_none());
        assert_eq!(
            faults
                .injected_error("post", "/api/v1/namespaces/default/secrets")
                .unwrap()
                .code,
            500
        );
        assert!(faults
            .injected_error("POST", "/api/v1/namespaces/default/secrets")
            .is_none());
    }

    #[test]
    fn image_pull_fault_by_policy() {
        let faults = Faults::default();
        faults.fail_image_pulls(ImagePullFault {
            image: "alpine".into(),
            pull_policy: Some("Always".into()),
        });
        assert!(faults.pull_fails("alpine", "Always"));
        assert!(!faults.pull_fails("alpine", "IfNotPresent"));
        assert!(!faults.pull_fails("busybox", "Always"));
        faults.clear_image_pull_failure("alpine");
        assert!(!faults.pull_fails("alpine", "Always"));
    }

    #[tokio::test]
    async fn drop_signal_fires_for_its_kind() {
        let faults = Faults::default();
        let mut log = faults.drop_signal(StreamKind::Log);
        let watch = faults.drop_signal(StreamKind::Watch);
        faults.drop_streams(&[StreamKind::Log]);
        tokio::time::timeout(Duration::from_secs(1), log.dropped())
            .await
            .unwrap();
        assert!(!watch.0.has_changed().unwrap());
    }
}
