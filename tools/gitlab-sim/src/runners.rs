//! Runner identities: the runner authentication tokens GitLab accepts on `jobs/request`, plus the
//! registration, verification, unregistration and token-reset operations of the runner API.

use std::sync::Mutex;

use crate::state::random_alnum;

/// A registered runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub id: u64,
    pub token: String,
}

/// The runners GitLab knows.
#[derive(Debug)]
pub struct Runners {
    inner: Mutex<Vec<Runner>>,
    next_id: Mutex<u64>,
    /// Legacy registration token accepted by `POST /runners`, if any.
    registration_token: Option<String>,
}

impl Runners {
    /// Runners with the given tokens; ids start at 1.
    pub fn new(tokens: &[String], registration_token: Option<String>) -> Runners {
        let runners: Vec<Runner> = tokens
            .iter()
            .enumerate()
            .map(|(i, token)| Runner {
                id: i as u64 + 1,
                token: token.clone(),
            })
            .collect();
        Runners {
            next_id: Mutex::new(runners.len() as u64 + 1),
            inner: Mutex::new(runners),
            registration_token,
        }
    }

    fn runners(&self) -> std::sync::MutexGuard<'_, Vec<Runner>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The runner owning `token`.
    pub fn find(&self, token: &str) -> Option<Runner> {
        self.runners().iter().find(|r| r.token == token).cloned()
    }

    /// Current tokens, in registration order.
    pub fn tokens(&self) -> Vec<String> {
        self.runners().iter().map(|r| r.token.clone()).collect()
    }

    /// Legacy registration: a new runner with a `glrtr-` token if `registration_token` is right.
    pub fn register(&self, registration_token: &str) -> Option<Runner> {
        if self.registration_token.as_deref() != Some(registration_token) {
            return None;
        }
        let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Runner {
            id: *next,
            token: format!("glrtr-{}", random_alnum(20)),
        };
        *next += 1;
        self.runners().push(runner.clone());
        Some(runner)
    }

    /// Deletes the runner owning `token`.
    pub fn unregister(&self, token: &str) -> bool {
        let mut runners = self.runners();
        let before = runners.len();
        runners.retain(|r| r.token != token);
        runners.len() != before
    }

    /// Replaces `token` by a fresh one (same prefix); the old one stops working at once.
    pub fn reset_token(&self, token: &str) -> Option<String> {
        let mut runners = self.runners();
        let runner = runners.iter_mut().find(|r| r.token == token)?;
        let prefix = if token.starts_with("glrtr-") { "glrtr-" } else { "glrt-" };
        runner.token = format!("{prefix}{}", random_alnum(20));
        Some(runner.token.clone())
    }
}

/// A runner authentication token in the shape GitLab creates them.
pub fn new_runner_token() -> String {
    format!("glrt-{}", random_alnum(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_verify_reset_unregister() {
        let runners = Runners::new(&["glrt-a".into()], Some("reg".into()));
        assert_eq!(runners.find("glrt-a").unwrap().id, 1);
        assert!(runners.register("wrong").is_none());
        let new = runners.register("reg").unwrap();
        assert_eq!(new.id, 2);
        assert!(new.token.starts_with("glrtr-"));
        let reset = runners.reset_token("glrt-a").unwrap();
        assert!(runners.find("glrt-a").is_none());
        assert_eq!(runners.find(&reset).unwrap().id, 1);
        assert!(runners.unregister(&new.token));
        assert!(!runners.unregister(&new.token));
        assert_eq!(runners.tokens(), vec![reset]);
    }

    #[test]
    fn no_registration_without_a_registration_token() {
        let runners = Runners::new(&[], None);
        assert!(runners.register("").is_none());
        assert!(new_runner_token().starts_with("glrt-"));
    }
}
