//! The command line of `fleetctl runner`: its subcommands and flags, and how the flags of a
//! legacy registration become GitLab's registration parameters (with the official
//! `gitlab-runner register` defaults).

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use flotilla_gitlab::{AccessLevel, RegisterParams};

use super::system::SystemIdArgs;

/// The subcommands of `fleetctl runner`.
#[derive(Subcommand, Debug)]
pub enum RunnerCommand {
    /// Register a runner with a registration token (GitLab creates it now), or check the token of
    /// a runner created in GitLab (`--token glrt-…`); print its `[[runners]]` entry for the
    /// coordinator's config.toml.
    // Boxed: its many flags would make every `fleetctl` command as large as this one.
    Register(Box<RegisterArgs>),
    /// Check whether GitLab knows a runner token: exit 0 if it does, 1 if not.
    Verify {
        #[command(flatten)]
        gitlab: GitlabArgs,
        /// The runner authentication token.
        #[arg(long, env = "FLEETCTL_RUNNER_TOKEN", hide_env_values = true)]
        token: String,
        #[command(flatten)]
        system: SystemIdArgs,
    },
    /// Unregister: a registered (legacy) token's runner is deleted; for a `glrt-` token only the
    /// coordinator's runner manager is (the runner stays in GitLab).
    Unregister {
        #[command(flatten)]
        gitlab: GitlabArgs,
        /// The runner authentication token.
        #[arg(long, env = "FLEETCTL_RUNNER_TOKEN", hide_env_values = true)]
        token: String,
        #[command(flatten)]
        system: SystemIdArgs,
    },
}

/// `fleetctl runner register`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("credential").required(true).args(["registration_token", "token"])))]
pub struct RegisterArgs {
    #[command(flatten)]
    pub(super) gitlab: GitlabArgs,
    /// Registration token (deprecated by GitLab): GitLab creates a new runner.
    #[arg(long, env = "FLEETCTL_REGISTRATION_TOKEN", hide_env_values = true)]
    pub(super) registration_token: Option<String>,
    /// Authentication token of an existing runner (`glrt-…` from GitLab's UI or API): only
    /// checked, the runner's settings stay as GitLab has them.
    // No `env` here: a FLEETCTL_RUNNER_TOKEN exported for verify/unregister would otherwise
    // clash with every --registration-token.
    #[arg(long)]
    pub(super) token: Option<String>,
    /// Name of the entry in config.toml; local only (default: this host's name).
    #[arg(long)]
    pub(super) name: Option<String>,
    /// `[runners.kubernetes] service_account` of the printed entry: the service account job
    /// Pods run as (the official `--kubernetes-service-account`; `--service-account` is its
    /// older spelling).
    #[arg(
        long,
        alias = "service-account",
        env = "KUBERNETES_SERVICE_ACCOUNT",
        value_name = "NAME"
    )]
    pub(super) kubernetes_service_account: Option<String>,
    #[command(flatten)]
    pub(super) settings: SettingsArgs,
    #[command(flatten)]
    pub(super) system: SystemIdArgs,
}

/// Where GitLab is.
#[derive(Args, Debug)]
pub struct GitlabArgs {
    /// GitLab's URL, as in `[[runners]] url` (e.g. https://gitlab.example.com).
    #[arg(long, env = "FLEETCTL_GITLAB_URL")]
    pub(super) url: String,
    /// CA certificates (PEM) GitLab's certificate may chain to, like `tls-ca-file` in config.toml.
    #[arg(long, value_name = "PEM")]
    pub(super) tls_ca_file: Option<PathBuf>,
}

/// Settings of a new runner (legacy registration only: an existing runner's live in GitLab).
#[derive(Args, Debug, Default)]
pub struct SettingsArgs {
    /// Description shown in GitLab (default: the name).
    #[arg(long)]
    description: Option<String>,
    /// Note for GitLab's administrators.
    #[arg(long)]
    maintenance_note: Option<String>,
    /// Job tags the runner takes, comma-separated.
    #[arg(long, value_name = "TAGS", value_delimiter = ',')]
    tag_list: Vec<String>,
    /// Also take jobs without tags (the default when no tags are given).
    #[arg(long)]
    run_untagged: bool,
    /// Lock the runner to the registration token's project (default: true; `--locked=false`).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    locked: Option<bool>,
    /// Which refs' jobs the runner runs.
    #[arg(long, value_enum)]
    access_level: Option<AccessLevelArg>,
    /// Upper bound on the runner's job timeouts, in seconds (GitLab requires at least 600).
    #[arg(long, value_name = "SECONDS")]
    maximum_timeout: Option<u32>,
    /// Register the runner paused: GitLab gives it no jobs until it is resumed.
    #[arg(long)]
    paused: bool,
}

/// `--access-level`, spelled as GitLab spells it.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum AccessLevelArg {
    #[value(name = "not_protected")]
    NotProtected,
    #[value(name = "ref_protected")]
    RefProtected,
}

impl SettingsArgs {
    /// The flags given, by name.
    pub(super) fn given(&self) -> Vec<&'static str> {
        [
            ("--description", self.description.is_some()),
            ("--maintenance-note", self.maintenance_note.is_some()),
            ("--tag-list", !self.tag_list.is_empty()),
            ("--run-untagged", self.run_untagged),
            ("--locked", self.locked.is_some()),
            ("--access-level", self.access_level.is_some()),
            ("--maximum-timeout", self.maximum_timeout.is_some()),
            ("--paused", self.paused),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// The registration parameters, with the official CLI's defaults: described by the name,
    /// untagged jobs when there are no tags, locked.
    pub(super) fn params(&self, name: &str) -> RegisterParams {
        let tags: Vec<String> = self
            .tag_list
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        RegisterParams {
            description: self.description.clone().unwrap_or_else(|| name.to_owned()),
            maintenance_note: self.maintenance_note.clone().unwrap_or_default(),
            run_untagged: self.run_untagged || tags.is_empty(),
            tags,
            locked: self.locked.unwrap_or(true),
            access_level: self.access_level.map(|level| match level {
                AccessLevelArg::NotProtected => AccessLevel::NotProtected,
                AccessLevelArg::RefProtected => AccessLevel::RefProtected,
            }),
            maximum_timeout: self.maximum_timeout,
            paused: self.paused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_defaults_follow_the_official_cli() {
        let params = SettingsArgs::default().params("host-1");
        assert_eq!(params.description, "host-1");
        assert!(params.run_untagged, "untagged jobs when there are no tags");
        assert!(params.locked);
        assert!(!params.paused);

        let tagged = SettingsArgs {
            tag_list: vec!["k8s-default".into(), " ".into()],
            locked: Some(false),
            ..SettingsArgs::default()
        };
        let params = tagged.params("host-1");
        assert_eq!(params.tags, ["k8s-default"]);
        assert!(!params.run_untagged, "tags alone: tagged jobs only");
        assert!(!params.locked);
        assert_eq!(tagged.given(), ["--tag-list", "--locked"]);
    }
}
