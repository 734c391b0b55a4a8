//! [`RunnerFailure`]: why a `fleetctl runner` command failed, sorted into fleetctl's exit codes
//! (1 GitLab refused, 2 usage, 3 GitLab unreachable), with a hint where one helps.

use flotilla_gitlab::GitlabError;

use super::system::SystemIdError;

/// Exit code of usage errors, the code clap exits with for its own.
const EXIT_USAGE: i32 = 2;

/// Why a `fleetctl runner` command failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerFailure {
    /// Arguments that clap cannot check (exit 2).
    #[error("{0}")]
    Usage(String),
    /// GitLab could not be reached (exit 3).
    #[error("cannot reach GitLab at {url}: {detail}")]
    Unreachable {
        /// GitLab's URL as given.
        url: String,
        /// The transport error and its causes.
        detail: String,
    },
    /// GitLab answered, but not yes (exit 1).
    #[error("{message}")]
    Refused {
        /// What GitLab said no to.
        message: String,
        /// What to do about it.
        hint: Option<&'static str>,
    },
    /// GitLab's answer broke the protocol or had an undocumented status (exit 1).
    #[error(transparent)]
    Gitlab(GitlabError),
}

impl RunnerFailure {
    /// fleetctl's exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunnerFailure::Usage(_) => EXIT_USAGE,
            RunnerFailure::Unreachable { .. } => crate::EXIT_UNREACHABLE,
            RunnerFailure::Refused { .. } | RunnerFailure::Gitlab(_) => crate::EXIT_REFUSED,
        }
    }

    pub(super) fn refused(message: impl Into<String>, hint: Option<&'static str>) -> Self {
        RunnerFailure::Refused {
            message: message.into(),
            hint,
        }
    }

    /// Sorts a client error into fleetctl's exit codes.
    pub(super) fn from_gitlab(url: &str, error: GitlabError) -> Self {
        match error {
            GitlabError::Transport { .. } => RunnerFailure::Unreachable {
                url: url.to_owned(),
                detail: causes(&error),
            },
            GitlabError::InvalidUrl { .. }
            | GitlabError::InvalidCaCertificate(_)
            | GitlabError::InvalidToken { .. } => RunnerFailure::Usage(error.to_string()),
            GitlabError::UnexpectedStatus { status: 410, .. } => RunnerFailure::refused(
                error.to_string(),
                Some(
                    "this GitLab does not accept registration tokens: create the runner in GitLab \
                     (Settings > CI/CD > Runners > New runner) and pass its glrt- token with --token",
                ),
            ),
            other => RunnerFailure::Gitlab(other),
        }
    }
}

impl From<SystemIdError> for RunnerFailure {
    fn from(error: SystemIdError) -> Self {
        RunnerFailure::Usage(error.to_string())
    }
}

/// An error with its chain of causes (`reqwest` keeps the useful part, such as "connection
/// refused", in its sources).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(RunnerFailure::Usage("x".into()).exit_code(), 2);
        assert_eq!(
            RunnerFailure::Unreachable {
                url: "u".into(),
                detail: "d".into()
            }
            .exit_code(),
            3
        );
        assert_eq!(RunnerFailure::refused("no", None).exit_code(), 1);
    }

    #[test]
    fn client_errors_are_sorted() {
        let invalid = RunnerFailure::from_gitlab(
            "gitlab",
            GitlabError::InvalidUrl {
                url: "gitlab".into(),
                reason: "not an absolute URL",
            },
        );
        assert_eq!(invalid.exit_code(), EXIT_USAGE);
        let gone = RunnerFailure::from_gitlab(
            "u",
            GitlabError::UnexpectedStatus {
                endpoint: "POST runners",
                status: 410,
                message: "410 Gone".into(),
            },
        );
        assert!(matches!(gone, RunnerFailure::Refused { hint: Some(_), .. }));
    }
}
