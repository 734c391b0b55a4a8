//! The official gitlab-runner `config.toml`: its global keys, `[session_server]` and every
//! `[[runners]]` entry, with the official key names, types and defaults so an existing file
//! loads unchanged. The coordinator reads this file; its own settings live in the
//! `[coordinator]` section of the same file ([`crate::coordinator`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::CacheConfig;
use crate::coordinator::CoordinatorSection;
use crate::de::{datetime_text, keyword_enum, optional, positive_or};
use crate::kubernetes::KubernetesConfig;
use crate::path::KeyPath;
use crate::secret::Secret;
use crate::validate::{Validate, Validator};

keyword_enum! {
    /// `log_level`.
    pub enum LogLevel {
        Debug = "debug",
        Info = "info",
        Warn = "warn" | "warning",
        Error = "error",
        Fatal = "fatal",
        Panic = "panic",
    }
}

keyword_enum! {
    /// `log_format`.
    pub enum LogFormat {
        Runner = "runner",
        Text = "text",
        Json = "json",
    }
}

keyword_enum! {
    /// `shell` of a runner entry; the Kubernetes executor runs `bash`/`sh` on Linux and
    /// `pwsh`/`powershell` on Windows nodes.
    pub enum Shell {
        Bash = "bash",
        Sh = "sh",
        Pwsh = "pwsh",
        Powershell = "powershell",
    }
}

/// A whole `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerConfigFile {
    /// Most jobs running at once across all runner entries (default 1; 0 is refused, as by
    /// the official runner).
    #[serde(default = "default_concurrent")]
    pub concurrent: u32,
    /// Seconds between job requests, spread over the runner entries (default 3; 0 or less: 3).
    #[serde(default = "default_check_interval", deserialize_with = "positive_or::<_, 3>")]
    pub check_interval: u32,
    /// `debug`, `info`, `warn`, `error`, `fatal` or `panic`; unset: the command line's.
    #[serde(default, deserialize_with = "optional")]
    pub log_level: Option<LogLevel>,
    /// `runner`, `text` or `json`; unset: `runner`.
    #[serde(default, deserialize_with = "optional")]
    pub log_format: Option<LogFormat>,
    /// Seconds a graceful shutdown may take before it is forced (default 30; 0 or less: 30).
    #[serde(default = "default_shutdown_timeout", deserialize_with = "positive_or::<_, 30>")]
    pub shutdown_timeout: u32,
    /// `host:port` of the Prometheus metrics endpoint; unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub listen_address: Option<String>,
    /// Sentry DSN for error reports; unset: none.
    #[serde(default, deserialize_with = "optional")]
    pub sentry_dsn: Option<Secret>,
    /// Unix user the official runner switches to; kept for compatibility, unused.
    #[serde(default, deserialize_with = "optional")]
    pub user: Option<String>,
    /// Longest life of a TLS connection to GitLab (default `15m`).
    #[serde(default = "default_connection_max_age", with = "crate::duration")]
    pub connection_max_age: Duration,
    /// Labels every runner entry inherits.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Interactive web terminal server: accepted and kept; Flotilla does not serve terminals.
    #[serde(default)]
    pub session_server: SessionServer,
    /// The runner entries, each polled with its own token.
    #[serde(default)]
    pub runners: Vec<RunnerConfig>,
    /// Flotilla's coordinator settings (absent from official files: every default applies).
    #[serde(default)]
    pub coordinator: CoordinatorSection,
}

/// `[session_server]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionServer {
    #[serde(default, deserialize_with = "optional")]
    pub listen_address: Option<String>,
    #[serde(default, deserialize_with = "optional")]
    pub advertise_address: Option<String>,
    /// Seconds a terminal session may outlive its job (default 1800).
    #[serde(default = "default_session_timeout", deserialize_with = "positive_or::<_, 1800>")]
    pub session_timeout: u32,
}

impl Default for SessionServer {
    fn default() -> Self {
        Self {
            listen_address: None,
            advertise_address: None,
            session_timeout: default_session_timeout(),
        }
    }
}

/// One `[[runners]]` entry: a registered runner whose jobs Flotilla runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerConfig {
    /// Description of the runner; informational.
    #[serde(default)]
    pub name: String,
    /// GitLab instance URL (required; `$VAR`/`${VAR}` are expanded from the environment).
    #[serde(default)]
    pub url: String,
    /// Runner ID assigned by GitLab at registration.
    #[serde(default)]
    pub id: i64,
    /// Runner authentication token (required; `$VAR`/`${VAR}` are expanded).
    #[serde(default)]
    pub token: Secret,
    /// When the token was obtained (written by `register`).
    #[serde(default, deserialize_with = "datetime_text", skip_serializing_if = "Option::is_none")]
    pub token_obtained_at: Option<String>,
    /// When the token expires (written by `register`).
    #[serde(default, deserialize_with = "datetime_text", skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<String>,
    /// CA bundle to verify GitLab's certificate.
    #[serde(rename = "tls-ca-file", default, deserialize_with = "optional")]
    pub tls_ca_file: Option<String>,
    /// Client certificate for GitLab.
    #[serde(rename = "tls-cert-file", default, deserialize_with = "optional")]
    pub tls_cert_file: Option<String>,
    /// Private key of `tls-cert-file`.
    #[serde(rename = "tls-key-file", default, deserialize_with = "optional")]
    pub tls_key_file: Option<String>,
    /// Must be `kubernetes`: Flotilla runs jobs on Kubernetes only.
    #[serde(default)]
    pub executor: String,
    /// Most jobs of this entry running at once (default 0: no limit besides `concurrent`).
    #[serde(default)]
    pub limit: u32,
    /// Job requests to GitLab in flight at once (default 1; 0 or less: 1).
    #[serde(default = "default_request_concurrency", deserialize_with = "positive_or::<_, 1>")]
    pub request_concurrency: u32,
    /// Do not request again right after receiving a job (default false).
    #[serde(default)]
    pub strict_check_interval: bool,
    /// Largest job log, in KiB (default 4096; 0 or less: 4096).
    #[serde(default = "default_output_limit", deserialize_with = "positive_or::<_, 4096>")]
    pub output_limit: u32,
    /// Unhealthy answers to job requests before the entry pauses (default 3).
    #[serde(
        default = "default_unhealthy_requests_limit",
        deserialize_with = "positive_or::<_, 3>"
    )]
    pub unhealthy_requests_limit: u32,
    /// How long an unhealthy entry pauses (default `1h`).
    #[serde(default = "default_unhealthy_interval", with = "crate::duration")]
    pub unhealthy_interval: Duration,
    /// Retries of the final job status update (default 10).
    #[serde(
        default = "default_final_update_retry_limit",
        deserialize_with = "positive_or::<_, 10>"
    )]
    pub job_status_final_update_retry_limit: u32,
    /// Shell of job scripts; unset: bash (falling back to sh).
    #[serde(default, deserialize_with = "optional")]
    pub shell: Option<Shell>,
    /// Where jobs check out the project; unset: `/builds`.
    #[serde(default, deserialize_with = "optional")]
    pub builds_dir: Option<String>,
    /// Where the local cache lives; unset: `/cache`.
    #[serde(default, deserialize_with = "optional")]
    pub cache_dir: Option<String>,
    /// Clone from this URL instead of `url`.
    #[serde(default, deserialize_with = "optional")]
    pub clone_url: Option<String>,
    /// `KEY=VALUE` variables added to every job (also how feature flags are often set).
    #[serde(default)]
    pub environment: Vec<String>,
    /// Script run before the repository is fetched.
    #[serde(default, deserialize_with = "optional")]
    pub pre_get_sources_script: Option<String>,
    /// Script run after the repository is fetched.
    #[serde(default, deserialize_with = "optional")]
    pub post_get_sources_script: Option<String>,
    /// Script run before the job's script, in the same shell.
    #[serde(default, deserialize_with = "optional")]
    pub pre_build_script: Option<String>,
    /// Script run after the job's script, in the same shell.
    #[serde(default, deserialize_with = "optional")]
    pub post_build_script: Option<String>,
    /// Ignore `CI_DEBUG_TRACE` (default false).
    #[serde(default)]
    pub debug_trace_disabled: bool,
    /// Add the build directory to git's `safe.directory` (default: the runner's choice).
    #[serde(default)]
    pub safe_directory_checkout: Option<bool>,
    /// Clean git configuration around the job (default true).
    #[serde(default)]
    pub clean_git_config: Option<bool>,
    /// Longest `prepare` stage; unset: the job timeout.
    #[serde(default, with = "crate::duration::option")]
    pub prepare_timeout: Option<Duration>,
    /// Longest `get_sources` stage; unset: the job timeout.
    #[serde(default, with = "crate::duration::option")]
    pub get_sources_timeout: Option<Duration>,
    /// Labels of this entry (over the global `labels`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Flotilla: the cluster labels this entry's jobs need (`arch=arm64,region!=us`); a job
    /// may add its own with the `FLOTILLA_CLUSTER_SELECTOR` variable. Empty: any cluster.
    #[serde(default)]
    pub cluster_selector: crate::selector::ClusterSelector,
    /// `[runners.custom_build_dir]`.
    #[serde(default)]
    pub custom_build_dir: CustomBuildDir,
    /// `[runners.cache]`; unset: no distributed cache.
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    /// `[runners.artifact]`: timeouts of artifact uploads.
    #[serde(default)]
    pub artifact: ArtifactConfig,
    /// `[runners.feature_flags]`: `FF_… = true|false`.
    #[serde(default)]
    pub feature_flags: BTreeMap<String, bool>,
    /// `[runners.kubernetes]`; an absent table means every default.
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
}

/// `[runners.custom_build_dir]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomBuildDir {
    /// Let jobs choose their build directory (`GIT_CLONE_PATH`); unset: the executor's default.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `[runners.artifact]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactConfig {
    /// Longest artifact upload (default `1h`).
    #[serde(default, with = "crate::duration::option")]
    pub upload_timeout: Option<Duration>,
    /// Longest wait for the response headers of an upload (default `10m`).
    #[serde(default, with = "crate::duration::option")]
    pub response_header_timeout: Option<Duration>,
}

impl RunnerConfig {
    /// Whether a feature flag is on, from `[runners.feature_flags]` or `environment`
    /// (`FF_X=true`), as the official runner reads them.
    pub fn feature_flag(&self, name: &str) -> Option<bool> {
        if let Some(value) = self.feature_flags.get(name) {
            return Some(*value);
        }
        self.environment
            .iter()
            .filter_map(|entry| entry.split_once('='))
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| value.parse().ok())
    }

    /// `output_limit` in bytes.
    pub fn output_limit_bytes(&self) -> u64 {
        u64::from(self.output_limit) * 1024
    }

    /// `url` and `token` with `$VAR`/`${VAR}` replaced (missing variables become empty), as
    /// the official runner does at load.
    pub(crate) fn expand_credentials(&mut self, lookup: &dyn Fn(&str) -> Option<String>) {
        self.url = expand(&self.url, lookup);
        self.token = Secret::new(expand(self.token.expose(), lookup));
    }
}

/// Go's `os.Expand` for `$NAME` and `${NAME}`.
fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if consumed == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&lookup(name).unwrap_or_default());
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

impl Validate for RunnerConfigFile {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        if self.concurrent == 0 {
            validator.error(
                &path.key("concurrent"),
                "must be at least 1 (GitLab Runner refuses 0 too)",
            );
        }
        if let Some(address) = &self.listen_address {
            check_host_port(address, &path.key("listen_address"), validator);
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, runner) in self.runners.iter().enumerate() {
            let runner_path = path.key("runners").index(index);
            runner.validate(&runner_path, validator);
            if let Some(first) = names.insert(runner.name.as_str(), index) {
                validator.note(
                    &runner_path.key("name"),
                    format!("{:?} is also the name of runners[{first}]", runner.name),
                );
            }
        }
        self.coordinator.validate(&path.key("coordinator"), validator);
    }
}

impl Validate for RunnerConfig {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        if validator.require(&path.key("url"), &self.url) {
            validator.check_http_url(&path.key("url"), &self.url);
        }
        validator.require(&path.key("token"), self.token.expose());
        match self.executor.as_str() {
            "kubernetes" => {}
            "" => validator.error(&path.key("executor"), "is required and must be \"kubernetes\""),
            other => validator.error(
                &path.key("executor"),
                format!("{other:?} is not supported: Flotilla runs the \"kubernetes\" executor only"),
            ),
        }
        if let Some(clone_url) = &self.clone_url {
            validator.check_http_url(&path.key("clone_url"), clone_url);
        }
        for (index, entry) in self.environment.iter().enumerate() {
            validator.check_env_entry(&path.key("environment").index(index), entry);
        }
        if let Some(cache) = &self.cache {
            cache.validate(&path.key("cache"), validator);
        }
        self.kubernetes.validate(&path.key("kubernetes"), validator);
        if !self.kubernetes.pod_spec.is_empty()
            && self.feature_flag("FF_USE_ADVANCED_POD_SPEC_CONFIGURATION") != Some(true)
        {
            validator.note(
                &path.key("kubernetes").key("pod_spec"),
                "GitLab Runner applies these patches only with FF_USE_ADVANCED_POD_SPEC_CONFIGURATION=true",
            );
        }
    }
}

/// `host:port` (host may be empty, as in `:9252`).
fn check_host_port(address: &str, path: &KeyPath, validator: &mut Validator) {
    match address.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => {}
        _ => validator.error(path, format!("{address:?} is not host:port")),
    }
}

fn default_concurrent() -> u32 {
    1
}

fn default_check_interval() -> u32 {
    3
}

fn default_shutdown_timeout() -> u32 {
    30
}

fn default_connection_max_age() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_session_timeout() -> u32 {
    1800
}

fn default_request_concurrency() -> u32 {
    1
}

fn default_output_limit() -> u32 {
    4096
}

fn default_unhealthy_requests_limit() -> u32 {
    3
}

fn default_unhealthy_interval() -> Duration {
    Duration::from_secs(60 * 60)
}

fn default_final_update_retry_limit() -> u32 {
    10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables_like_go() {
        let lookup = |name: &str| match name {
            "HOST" => Some("gitlab.example.com".to_owned()),
            "TOKEN" => Some("glrt-1".to_owned()),
            _ => None,
        };
        assert_eq!(expand("https://$HOST/", &lookup), "https://gitlab.example.com/");
        assert_eq!(expand("${TOKEN}", &lookup), "glrt-1");
        assert_eq!(expand("$MISSING", &lookup), "");
        assert_eq!(expand("cost: $", &lookup), "cost: $");
        assert_eq!(expand("plain", &lookup), "plain");
    }

    #[test]
    fn feature_flags_come_from_the_table_or_the_environment() {
        let runner: RunnerConfig = toml::from_str(
            "environment = [\"FF_USE_ADVANCED_POD_SPEC_CONFIGURATION=true\"]\n[feature_flags]\nFF_TIMESTAMPS = false",
        )
        .unwrap();
        assert_eq!(
            runner.feature_flag("FF_USE_ADVANCED_POD_SPEC_CONFIGURATION"),
            Some(true)
        );
        assert_eq!(runner.feature_flag("FF_TIMESTAMPS"), Some(false));
        assert_eq!(runner.feature_flag("FF_OTHER"), None);
    }

    #[test]
    fn listen_addresses_are_host_port() {
        let mut validator = Validator::default();
        for address in [":9252", "0.0.0.0:9252", "[::]:9252"] {
            check_host_port(address, &KeyPath::root(), &mut validator);
        }
        assert!(validator.errors.is_empty(), "{:?}", validator.errors);
        check_host_port("9252", &KeyPath::root().key("listen_address"), &mut validator);
        assert_eq!(
            validator.errors[0].to_string(),
            "listen_address: \"9252\" is not host:port"
        );
    }
}
