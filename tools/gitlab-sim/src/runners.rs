//! Runner identities: the runners GitLab knows (authentication token, the settings a legacy
//! registration gives them) and their runner managers, plus the registration, verification,
//! unregistration and token-reset operations of the runner API.
//!
//! As in GitLab, a runner is one record shared by every process that uses its token. Each such
//! process is a *runner manager*, keyed by the `system_id` it sends (`<legacy>` when it sends
//! none) and created the first time it authenticates on `verify` or `jobs/request`. Deleting the
//! runner (`DELETE /runners`) takes its managers with it; deleting a manager
//! (`DELETE /runners/managers`) leaves the runner and its other managers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::state::random_alnum;

/// The manager GitLab records for requests that carry no `system_id`.
pub const LEGACY_SYSTEM_ID: &str = "<legacy>";
/// Most tags a runner may have.
pub const MAX_TAGS: usize = 50;
/// Longest maintenance note.
pub const MAX_MAINTENANCE_NOTE: usize = 1024;
/// Smallest `maximum_timeout`, in seconds.
pub const MIN_MAXIMUM_TIMEOUT: u64 = 600;

/// A runner GitLab knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub id: u64,
    pub token: String,
    pub description: String,
    pub maintenance_note: String,
    pub tags: Vec<String>,
    /// Whether it takes jobs without tags.
    pub run_untagged: bool,
    pub locked: bool,
    /// `not_protected` or `ref_protected`.
    pub access_level: String,
    pub maximum_timeout: Option<u64>,
    pub paused: bool,
    /// `info.name` of the process that registered it.
    pub name: Option<String>,
    /// `system_id`s of its runner managers.
    pub managers: BTreeSet<String>,
}

impl Runner {
    /// A runner as GitLab's UI creates one by default: untagged jobs, unlocked, active.
    fn created(id: u64, token: String) -> Runner {
        Runner {
            id,
            token,
            description: String::new(),
            maintenance_note: String::new(),
            tags: Vec::new(),
            run_untagged: true,
            locked: false,
            access_level: "not_protected".to_string(),
            maximum_timeout: None,
            paused: false,
            name: None,
            managers: BTreeSet::new(),
        }
    }
}

/// The settings of a legacy registration (`POST /runners`), parameters already parsed; `None`
/// keeps GitLab's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    pub description: Option<String>,
    pub maintenance_note: Option<String>,
    pub tags: Vec<String>,
    pub run_untagged: Option<bool>,
    pub locked: Option<bool>,
    pub access_level: Option<String>,
    pub maximum_timeout: Option<u64>,
    pub paused: Option<bool>,
    pub name: Option<String>,
}

/// Why GitLab refused a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// Registration tokens are disabled on this instance (410).
    Disallowed,
    /// The registration token is wrong (403).
    Forbidden,
    /// The runner would not be valid (400): attribute → messages, as GitLab's validation errors.
    Invalid(BTreeMap<String, Vec<String>>),
}

/// Why a runner manager could not be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerError {
    /// No runner has this token (403).
    UnknownToken,
    /// The runner has no manager with this `system_id` (404).
    NotFound,
}

/// The runners GitLab knows.
#[derive(Debug)]
pub struct Runners {
    inner: Mutex<Vec<Runner>>,
    next_id: Mutex<u64>,
    /// Legacy registration token accepted by `POST /runners`; `None`: registration disabled.
    registration_token: Option<String>,
}

impl Runners {
    /// Runners with the given tokens (as if created in GitLab's UI); ids start at 1.
    pub fn new(tokens: &[String], registration_token: Option<String>) -> Runners {
        let runners: Vec<Runner> = tokens
            .iter()
            .enumerate()
            .map(|(i, token)| Runner::created(i as u64 + 1, token.clone()))
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

    /// Every runner, in registration order.
    pub fn all(&self) -> Vec<Runner> {
        self.runners().clone()
    }

    /// Current tokens, in registration order.
    pub fn tokens(&self) -> Vec<String> {
        self.runners().iter().map(|r| r.token.clone()).collect()
    }

    /// Authenticates a runner request (`verify`, `jobs/request`) and records the runner manager
    /// it comes from, as GitLab does on every authenticated request.
    pub fn authenticate(&self, token: &str, system_id: Option<&str>) -> Option<Runner> {
        let mut runners = self.runners();
        let runner = runners.iter_mut().find(|r| r.token == token)?;
        let system_id = system_id.filter(|id| !id.is_empty()).unwrap_or(LEGACY_SYSTEM_ID);
        runner.managers.insert(system_id.to_string());
        Some(runner.clone())
    }

    /// Legacy registration: a new runner with a `glrtr-` token and the given settings, checked
    /// in GitLab's order (token, then the runner's validations).
    pub fn register(&self, registration_token: &str, registration: Registration) -> Result<Runner, RegisterError> {
        let Some(expected) = &self.registration_token else {
            return Err(RegisterError::Disallowed);
        };
        if expected != registration_token {
            return Err(RegisterError::Forbidden);
        }
        let mut runner = Runner::created(0, format!("glrtr-{}", random_alnum(20)));
        runner.description = registration.description.unwrap_or_default();
        runner.maintenance_note = registration.maintenance_note.unwrap_or_default();
        runner.tags = registration.tags;
        runner.run_untagged = registration.run_untagged.unwrap_or(true);
        runner.locked = registration.locked.unwrap_or(false);
        if let Some(level) = registration.access_level {
            runner.access_level = level;
        }
        runner.maximum_timeout = registration.maximum_timeout;
        runner.paused = registration.paused.unwrap_or(false);
        runner.name = registration.name;
        validate(&runner)?;

        let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        runner.id = *next;
        *next += 1;
        self.runners().push(runner.clone());
        Ok(runner)
    }

    /// Deletes the runner owning `token` and all its managers.
    pub fn unregister(&self, token: &str) -> bool {
        let mut runners = self.runners();
        let before = runners.len();
        runners.retain(|r| r.token != token);
        runners.len() != before
    }

    /// Deletes the manager `system_id` of the runner owning `token`; the runner stays.
    pub fn unregister_manager(&self, token: &str, system_id: &str) -> Result<(), ManagerError> {
        let mut runners = self.runners();
        let runner = runners
            .iter_mut()
            .find(|r| r.token == token)
            .ok_or(ManagerError::UnknownToken)?;
        if runner.managers.remove(system_id) {
            Ok(())
        } else {
            Err(ManagerError::NotFound)
        }
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

/// GitLab's validations of a runner record (`Ci::Runner`), all errors at once.
fn validate(runner: &Runner) -> Result<(), RegisterError> {
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |attribute: &str, message: String| errors.entry(attribute.to_string()).or_default().push(message);
    if runner.tags.is_empty() && !runner.run_untagged {
        add(
            "tags_list",
            "can not be empty when runner is not allowed to pick untagged jobs".to_string(),
        );
    }
    if runner.tags.len() > MAX_TAGS {
        add(
            "tags_list",
            format!("Too many tags specified. Please limit the number of tags to {MAX_TAGS}"),
        );
    }
    if runner.maximum_timeout.is_some_and(|t| t < MIN_MAXIMUM_TIMEOUT) {
        add("maximum_timeout", "needs to be at least 10 minutes".to_string());
    }
    if runner.maintenance_note.chars().count() > MAX_MAINTENANCE_NOTE {
        add(
            "maintenance_note",
            format!("is too long (maximum is {MAX_MAINTENANCE_NOTE} characters)"),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RegisterError::Invalid(errors))
    }
}

/// A runner authentication token in the shape GitLab creates them.
pub fn new_runner_token() -> String {
    format!("glrt-{}", random_alnum(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> Registration {
        Registration::default()
    }

    #[test]
    fn register_verify_reset_unregister() {
        let runners = Runners::new(&["glrt-a".into()], Some("reg".into()));
        assert_eq!(runners.find("glrt-a").unwrap().id, 1);
        assert_eq!(runners.register("wrong", registration()), Err(RegisterError::Forbidden));
        let new = runners.register("reg", registration()).unwrap();
        assert_eq!(new.id, 2);
        assert!(new.token.starts_with("glrtr-"));
        assert!(new.run_untagged, "untagged jobs by default");
        let reset = runners.reset_token("glrt-a").unwrap();
        assert!(runners.find("glrt-a").is_none());
        assert_eq!(runners.find(&reset).unwrap().id, 1);
        assert!(runners.unregister(&new.token));
        assert!(!runners.unregister(&new.token));
        assert_eq!(runners.tokens(), vec![reset]);
    }

    #[test]
    fn registration_disabled_without_a_registration_token() {
        let runners = Runners::new(&[], None);
        assert_eq!(runners.register("", registration()), Err(RegisterError::Disallowed));
        assert!(new_runner_token().starts_with("glrt-"));
    }

    #[test]
    fn registration_keeps_the_settings() {
        let runners = Runners::new(&[], Some("reg".into()));
        let runner = runners
            .register(
                "reg",
                Registration {
                    description: Some("k8s".into()),
                    tags: vec!["k8s-default".into()],
                    run_untagged: Some(false),
                    locked: Some(true),
                    access_level: Some("ref_protected".into()),
                    maximum_timeout: Some(3600),
                    paused: Some(true),
                    name: Some("flotilla".into()),
                    ..registration()
                },
            )
            .unwrap();
        assert_eq!(runners.find(&runner.token), Some(runner.clone()));
        assert_eq!(runner.tags, ["k8s-default"]);
        assert!(!runner.run_untagged && runner.locked && runner.paused);
        assert_eq!(runner.access_level, "ref_protected");
        assert_eq!(runner.maximum_timeout, Some(3600));
        assert_eq!(runner.name.as_deref(), Some("flotilla"));
    }

    #[test]
    fn invalid_runners_are_not_created() {
        let runners = Runners::new(&[], Some("reg".into()));
        let Err(RegisterError::Invalid(errors)) = runners.register(
            "reg",
            Registration {
                run_untagged: Some(false),
                maximum_timeout: Some(60),
                maintenance_note: Some("x".repeat(1025)),
                ..registration()
            },
        ) else {
            panic!("expected validation errors");
        };
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["maintenance_note", "maximum_timeout", "tags_list"]
        );
        let too_many = Registration {
            tags: (0..51).map(|i| format!("t{i}")).collect(),
            ..registration()
        };
        assert!(matches!(
            runners.register("reg", too_many),
            Err(RegisterError::Invalid(_))
        ));
        assert!(runners.all().is_empty());
    }

    #[test]
    fn managers_come_and_go_with_their_runner() {
        let runners = Runners::new(&["glrt-a".into()], None);
        assert!(runners.authenticate("glrt-x", Some("s_000000000001")).is_none());
        runners.authenticate("glrt-a", Some("s_000000000001")).unwrap();
        runners.authenticate("glrt-a", Some("s_000000000002")).unwrap();
        let runner = runners.authenticate("glrt-a", None).unwrap();
        assert_eq!(
            runner.managers.iter().collect::<Vec<_>>(),
            ["<legacy>", "s_000000000001", "s_000000000002"]
        );

        assert_eq!(runners.unregister_manager("glrt-a", "s_000000000001"), Ok(()));
        assert_eq!(
            runners.unregister_manager("glrt-a", "s_000000000001"),
            Err(ManagerError::NotFound)
        );
        assert_eq!(
            runners.unregister_manager("glrt-x", "s_000000000002"),
            Err(ManagerError::UnknownToken)
        );
        assert_eq!(runners.find("glrt-a").unwrap().managers.len(), 2, "the runner stays");
        assert!(runners.unregister("glrt-a"));
        assert!(runners.all().is_empty());
    }
}
