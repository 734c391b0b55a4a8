//! The `info` object (reference §1.3) the runner sends on `jobs/request` and every job update.
//!
//! GitLab stores it on the runner manager and makes capability decisions from `features`:
//! a job that needs a feature we do not advertise is not handed to us (or is failed with
//! `runner_unsupported`). The official runner serialises `features` from a Go struct without
//! `omitempty`, so every one of the 31 keys is always present; we do the same.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `info` object: who we are and what we can do. `Default` is an empty `info` with every
/// feature false; use [`VersionInfo::flotilla`] for ours.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionInfo {
    /// Product name (`gitlab-runner` for the official runner).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Product version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Source revision (short git sha for the official runner).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Go `GOOS` spelling: `linux`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    /// Go `GOARCH` spelling: `amd64`, `arm64`, ….
    #[serde(skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    /// Executor name; `kubernetes` for us.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub executor: String,
    /// Shell the scripts are generated for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub shell: String,
    /// Capability flags, all keys always present.
    pub features: FeaturesInfo,
    /// `{"gpus": "..."}`, always present.
    pub config: ConfigInfo,
    /// Optional runner labels (≤ 32 entries).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl VersionInfo {
    /// Flotilla's `info`: name `flotilla`, this crate's version, `linux`/build architecture,
    /// executor `kubernetes`, shell `bash`, and [`FeaturesInfo::flotilla`].
    pub fn flotilla() -> Self {
        Self {
            name: "flotilla".to_owned(),
            version: crate::VERSION.to_owned(),
            // Set at build time by release builds; local builds say "unknown" rather than nothing
            // so GitLab's runner page shows that the field is intentionally unset.
            revision: option_env!("FLOTILLA_REVISION").unwrap_or("unknown").to_owned(),
            platform: "linux".to_owned(),
            architecture: go_arch().to_owned(),
            executor: "kubernetes".to_owned(),
            shell: "bash".to_owned(),
            features: FeaturesInfo::flotilla(),
            config: ConfigInfo::default(),
            labels: BTreeMap::new(),
        }
    }
}

/// `info.config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigInfo {
    /// The `gpus` setting of the runner (empty: none).
    pub gpus: String,
}

/// `info.features`: the 31 capability flags of reference §1.4, in the official runner's order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeaturesInfo {
    /// Understands job variables.
    pub variables: bool,
    /// Honours `image:`.
    pub image: bool,
    /// Honours `services:`.
    pub services: bool,
    /// Can upload artifacts.
    pub artifacts: bool,
    /// Supports `cache:`.
    pub cache: bool,
    /// Supports `cache:fallback_keys` (GitLab requires it for jobs that use them).
    pub fallback_cache_keys: bool,
    /// The executor shares its host between jobs.
    pub shared: bool,
    /// Several artifact uploads per job (GitLab requires it for `artifacts:reports`).
    pub upload_multiple_artifacts: bool,
    /// `artifact_format: raw` uploads.
    pub upload_raw_artifacts: bool,
    /// Has a session server.
    pub session: bool,
    /// Interactive web terminal.
    pub terminal: bool,
    /// Honours `git_info.refspecs` (GitLab requires it for merge-request refs).
    pub refspecs: bool,
    /// Masks `masked` variables in the log.
    pub masking: bool,
    /// Proxies service ports through the session.
    pub proxy: bool,
    /// Honours `raw: true` variables.
    pub raw_variables: bool,
    /// `artifacts:exclude` (GitLab requires it for jobs that use it).
    pub artifacts_exclude: bool,
    /// Steps beyond script/after_script (GitLab requires it for `release:`).
    pub multi_build_steps: bool,
    /// Re-sends the whole log from offset 0 when a job update answers 412.
    pub trace_reset: bool,
    /// Sends `output.checksum`.
    pub trace_checksum: bool,
    /// Sends `output.bytesize`.
    pub trace_size: bool,
    /// Resolves `secrets:` (Vault and other providers).
    pub vault_secrets: bool,
    /// Honours `Job-Status` cancellation.
    pub cancelable: bool,
    /// Sends `exit_code` on failure (GitLab requires it for `allow_failure:exit_codes`).
    pub return_exit_code: bool,
    /// Honours `services[].variables`.
    pub service_variables: bool,
    /// Comma/space separated service aliases.
    pub service_multiple_aliases: bool,
    /// Honours `image.executor_opts`.
    pub image_executor_opts: bool,
    /// Honours `services[].executor_opts`.
    pub service_executor_opts: bool,
    /// Understands the `canceling` state (runs `after_script` on cancel).
    pub cancel_gracefully: bool,
    /// Runs `run:` (step-runner) natively.
    pub native_steps_integration: bool,
    /// Two-phase job commit: the job stays `pending` until the runner PUTs `running`.
    pub two_phase_job_commit: bool,
    /// Understands the payload's `inputs`.
    pub job_inputs: bool,
}

impl FeaturesInfo {
    /// What Flotilla advertises.
    ///
    /// Notable `false`s:
    /// - `session`/`terminal`/`proxy`: no session server (exec-free Pods, no web terminal).
    /// - `multi_build_steps`: the helper runs only `script` and `after_script`.
    /// - `artifacts`, `cache` and their relatives: the helper does not transfer them yet; GitLab
    ///   refuses jobs with `artifacts:reports`, `artifacts:exclude` or cache fallback keys to a
    ///   runner without the matching flag, which is the honest outcome until it does.
    /// - `two_phase_job_commit`: we keep the legacy flow. GitLab marks the job `running` when it
    ///   answers 201 and our first `PUT state=running` is a plain touch. The coordinator already
    ///   stores the job durably before acknowledging it, so 2PC would add no safety, while it is
    ///   recent and opt-in (older GitLab and `gitlab-runner-mock` know only the legacy flow; the
    ///   mock even panics on `state=pending`), and a delayed acknowledgement under 2PC makes GitLab
    ///   re-queue a job we may already be starting.
    pub fn flotilla() -> Self {
        Self {
            variables: true,
            image: true,
            services: true,
            refspecs: true,
            masking: true,
            raw_variables: true,
            trace_reset: true,
            trace_checksum: true,
            trace_size: true,
            cancelable: true,
            return_exit_code: true,
            service_variables: true,
            cancel_gracefully: true,
            ..Self::default()
        }
    }
}

/// The build target's architecture in Go's `GOARCH` spelling, as GitLab expects.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "riscv64" => "riscv64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KEYS: [&str; 31] = [
        "variables",
        "image",
        "services",
        "artifacts",
        "cache",
        "fallback_cache_keys",
        "shared",
        "upload_multiple_artifacts",
        "upload_raw_artifacts",
        "session",
        "terminal",
        "refspecs",
        "masking",
        "proxy",
        "raw_variables",
        "artifacts_exclude",
        "multi_build_steps",
        "trace_reset",
        "trace_checksum",
        "trace_size",
        "vault_secrets",
        "cancelable",
        "return_exit_code",
        "service_variables",
        "service_multiple_aliases",
        "image_executor_opts",
        "service_executor_opts",
        "cancel_gracefully",
        "native_steps_integration",
        "two_phase_job_commit",
        "job_inputs",
    ];

    const ADVERTISED: [&str; 13] = [
        "variables",
        "image",
        "services",
        "refspecs",
        "masking",
        "raw_variables",
        "trace_reset",
        "trace_checksum",
        "trace_size",
        "cancelable",
        "return_exit_code",
        "service_variables",
        "cancel_gracefully",
    ];

    #[test]
    fn all_31_feature_keys_always_present() {
        let json = serde_json::to_value(VersionInfo::flotilla()).unwrap();
        let features = json["features"].as_object().unwrap();
        assert_eq!(features.len(), 31);
        for key in ALL_KEYS {
            let value = features.get(key).unwrap_or_else(|| panic!("missing feature {key}"));
            assert_eq!(value.as_bool(), Some(ADVERTISED.contains(&key)), "feature {key}");
        }
        // Even an all-false set keeps every key.
        let empty = serde_json::to_value(FeaturesInfo::default()).unwrap();
        assert_eq!(empty.as_object().unwrap().len(), 31);
    }

    #[test]
    fn flotilla_identity() {
        let json = serde_json::to_value(VersionInfo::flotilla()).unwrap();
        assert_eq!(json["name"], "flotilla");
        assert_eq!(json["version"], crate::VERSION);
        assert_eq!(json["platform"], "linux");
        assert_eq!(json["executor"], "kubernetes");
        assert_eq!(json["shell"], "bash");
        assert_eq!(json["config"], serde_json::json!({"gpus": ""}));
        assert!(json.get("labels").is_none(), "empty labels are omitted");
        let arch = json["architecture"].as_str().unwrap();
        #[cfg(target_arch = "x86_64")]
        assert_eq!(arch, "amd64");
        #[cfg(target_arch = "aarch64")]
        assert_eq!(arch, "arm64");
        assert!(!arch.is_empty());
    }

    #[test]
    fn tolerant_parse() {
        let info: VersionInfo =
            serde_json::from_str(r#"{"name":"x","features":{"image":true,"new_flag":true}}"#).unwrap();
        assert_eq!(info.name, "x");
        assert!(info.features.image);
        assert!(!info.features.variables);
    }
}
