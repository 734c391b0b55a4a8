//! The example `config.toml` files of the seeds (copied into `tests/fixtures/`, see its README)
//! load unchanged: every `[runners.kubernetes]` keyword in them is accepted, and what a file
//! lacks or gets wrong is reported by key path.

use std::path::PathBuf;

use flotilla_config::kubernetes::pull_policy::PullPolicy;
use flotilla_config::kubernetes::scheduling::{DnsPolicy, TaintEffect, Toleration, TolerationOperator};
use flotilla_config::kubernetes::security::ProfileType;
use flotilla_config::runner::{LogLevel, Shell};
use flotilla_config::{
    load_runner_config, runner_config_from_str, ConfigErrors, ContainerKind, Loaded, RunnerConfigFile, WarningKind,
};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

fn load(name: &str) -> Loaded<RunnerConfigFile> {
    load_runner_config(fixture_path(name)).unwrap_or_else(|errors| panic!("{name}:\n{errors}"))
}

fn load_errors(name: &str) -> Vec<String> {
    texts(
        &load_runner_config(fixture_path(name))
            .err()
            .unwrap_or_else(|| panic!("{name} loaded")),
    )
}

fn texts(errors: &ConfigErrors) -> Vec<String> {
    errors.errors.iter().map(ToString::to_string).collect()
}

fn warnings(loaded: &Loaded<RunnerConfigFile>) -> Vec<String> {
    loaded.warnings.iter().map(ToString::to_string).collect()
}

/// The docs' examples leave `url`/`token` out ("# usual configuration"); this puts them in
/// right after the entry's `executor` line, so the rest of the example can be inspected.
fn with_credentials(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("url =") && !line.trim_start().starts_with("token ="))
        .collect();
    kept.join("\n").replacen(
        "executor = \"kubernetes\"",
        "executor = \"kubernetes\"\nurl = \"https://gitlab.example.com\"\ntoken = \"glrt-test\"",
        1,
    )
}

/// A fragment (`[runners.kubernetes] …`) under a complete runner entry.
fn under_runner(fragment: &str) -> String {
    format!(
        "[[runners]]\nname = \"fragment\"\nurl = \"https://gitlab.example.com\"\ntoken = \"glrt-test\"\nexecutor = \"kubernetes\"\n{fragment}"
    )
}

fn load_text(text: &str) -> Loaded<RunnerConfigFile> {
    runner_config_from_str(text).unwrap_or_else(|errors| panic!("{errors}\n---\n{text}"))
}

const NO_CREDENTIALS: [&str; 2] = ["runners[0].url: is required", "runners[0].token: is required"];
const SCHEMELESS_URL: &str =
    "runners[0].url: \"gitlab.example.com\" is not an absolute http(s) URL (e.g. \"https://gitlab.example.com\")";

#[test]
fn docs_keywords_example_loads_clean() {
    let loaded = load("docs_keywords_example.toml");
    assert!(loaded.warnings.is_empty(), "{:?}", warnings(&loaded));
    let file = &loaded.config;
    assert_eq!(file.concurrent, 4);
    let runner = &file.runners[0];
    assert_eq!(
        (runner.name.as_str(), runner.url.as_str(), runner.executor.as_str()),
        ("Kubernetes Runner", "https://gitlab.com/ci", "kubernetes")
    );
    let kubernetes = &runner.kubernetes;
    assert_eq!(kubernetes.host.as_deref(), Some("https://45.67.34.123:4892"));
    assert_eq!(kubernetes.ca_file.as_deref(), Some("/etc/ssl/kubernetes/ca.crt"));
    assert_eq!(kubernetes.namespace, "gitlab");
    assert!(kubernetes
        .namespace_overwrite_allowed
        .as_ref()
        .unwrap()
        .is_match("ci-feature"));
    assert!(kubernetes.bearer_token_overwrite_allowed);
    assert_eq!(kubernetes.privileged, Some(true));
    assert_eq!(
        kubernetes.resources(ContainerKind::Build).cpu.limit.unwrap().as_str(),
        "1"
    );
    assert_eq!(
        kubernetes
            .resources(ContainerKind::Helper)
            .memory
            .limit
            .unwrap()
            .as_str(),
        "100Mi"
    );
    assert_eq!(
        kubernetes
            .resources(ContainerKind::Service)
            .memory
            .limit
            .unwrap()
            .as_str(),
        "1Gi"
    );
    assert_eq!((kubernetes.poll_interval, kubernetes.poll_timeout), (5, 3600));
    assert_eq!(kubernetes.dns_policy, Some(DnsPolicy::ClusterFirst));
    assert_eq!(kubernetes.node_selector["gitlab"], "true");
    let tolerations: Vec<Toleration> = kubernetes
        .node_tolerations
        .iter()
        .map(|(entry, effect)| Toleration::parse(entry, *effect).unwrap())
        .collect();
    let find = |key: &str| tolerations.iter().find(|toleration| toleration.key == key).unwrap();
    assert_eq!(
        find("node-role.kubernetes.io/master").operator,
        TolerationOperator::Exists
    );
    assert_eq!(find("custom.toleration").value.as_deref(), Some("value"));
    assert_eq!(find("empty.value").value.as_deref(), Some(""));
    assert_eq!(find("empty.value").effect, Some(TaintEffect::PreferNoSchedule));
    assert_eq!(find("onlyKey").effect, None);
}

#[test]
fn docs_volumes_example() {
    assert_eq!(load_errors("docs_volumes_example.toml"), NO_CREDENTIALS);
    let loaded = load_text(&with_credentials(&fixture("docs_volumes_example.toml")));
    let volumes = &loaded.config.runners[0].kubernetes.volumes;
    assert_eq!(volumes.host_path[0].effective_host_path(), "/path/on/host");
    assert_eq!(volumes.host_path[1].effective_host_path(), "/path/to/mount/point_2");
    assert_eq!(volumes.pvc[0].name, "pvc-1");
    assert_eq!(volumes.config_map[0].items.0.len(), 2);
    assert_eq!(volumes.secret[0].items.0[0].path, "relative/path/to/secret_1_file");
    assert!(volumes.empty_dir[0].medium.is_some());
    assert_eq!(volumes.csi[0].volume_attributes["size"], "2Gi");
}

#[test]
fn docs_host_aliases_example() {
    assert_eq!(load_errors("docs_host_aliases_example.toml"), NO_CREDENTIALS);
    let loaded = load_text(&with_credentials(&fixture("docs_host_aliases_example.toml")));
    let aliases = &loaded.config.runners[0].kubernetes.host_aliases;
    assert_eq!(aliases[1].ip, "192.168.1.1");
    assert_eq!(aliases[1].hostnames, ["web14", "web15"]);
}

#[test]
fn docs_node_affinity_example() {
    assert_eq!(
        load_errors("docs_node_affinity_example.toml"),
        [SCHEMELESS_URL, "runners[0].token: is required"]
    );
    let loaded = load_text(&with_credentials(&fixture("docs_node_affinity_example.toml")));
    let node_affinity = loaded.config.runners[0]
        .kubernetes
        .affinity
        .node_affinity
        .clone()
        .unwrap();
    let preferred = &node_affinity.preferred_during_scheduling_ignored_during_execution;
    assert_eq!((preferred[0].weight, preferred[1].weight), (100, 50));
    assert_eq!(preferred[1].preference.match_fields[0].key, "cpu_type");
    let required = node_affinity
        .required_during_scheduling_ignored_during_execution
        .unwrap();
    assert_eq!(
        required.node_selector_terms[0].match_expressions[0].values,
        ["e2e-az1", "e2e-az2"]
    );
}

#[test]
fn docs_dns_config_example_has_its_table_header_misplaced() {
    // `[dns_config]` after `[runners.kubernetes]` is a top-level table: the official runner
    // ignores it silently; we load the file and say where the key belongs.
    let loaded = load("docs_dns_config_example.toml");
    assert_eq!(
        warnings(&loaded),
        ["dns_config: unknown key, ignored (`dns_config` is a key of [runners.kubernetes]; is a table header missing or misplaced?)"]
    );
    assert!(loaded.config.runners[0].kubernetes.dns_config.is_empty());
    let fixed = fixture("docs_dns_config_example.toml")
        .replace("[dns_config]", "[runners.kubernetes.dns_config]")
        .replace("[[dns_config.options]]", "[[runners.kubernetes.dns_config.options]]");
    let dns = load_text(&fixed).config.runners[0].kubernetes.dns_config.clone();
    assert_eq!(dns.nameservers, ["1.2.3.4"]);
    assert_eq!(dns.options[0].value.as_deref(), Some("2"));
    assert_eq!(dns.options[1].value, None);
}

#[test]
fn docs_capabilities_example() {
    assert_eq!(
        load_errors("docs_capabilities_example.toml"),
        [SCHEMELESS_URL, "runners[0].token: is required"]
    );
    let loaded = load_text(&with_credentials(&fixture("docs_capabilities_example.toml")));
    let kubernetes = &loaded.config.runners[0].kubernetes;
    assert_eq!(
        (kubernetes.cap_add.as_slice(), kubernetes.cap_drop.as_slice()),
        (
            &["SYS_TIME".to_owned(), "IPC_LOCK".to_owned()][..],
            &["SYS_ADMIN".to_owned()][..]
        )
    );
}

#[test]
fn docs_pod_security_context_example() {
    // The page is a template: `%(concurrent)s` is not TOML, and the error points at it.
    let errors = load_errors("docs_pod_security_context_example.toml");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("line 1, column 14: "), "{errors:?}");
    let text = fixture("docs_pod_security_context_example.toml").replace("%(concurrent)s", "1");
    assert_eq!(
        texts(&runner_config_from_str(&text).unwrap_err()),
        [SCHEMELESS_URL, "runners[0].token: is required"]
    );
    let loaded = load_text(&with_credentials(&text));
    let kubernetes = &loaded.config.runners[0].kubernetes;
    assert_eq!(
        kubernetes.helper_image.as_deref(),
        Some("gitlab-registy.example.com/helper:latest")
    );
    let context = &kubernetes.pod_security_context;
    assert_eq!(
        (
            context.run_as_non_root,
            context.run_as_user,
            context.run_as_group,
            context.fs_group
        ),
        (Some(true), Some(59417), Some(59417), Some(59417))
    );
}

#[test]
fn docs_services_example() {
    assert_eq!(
        load_errors("docs_services_example.toml"),
        [SCHEMELESS_URL, "runners[0].token: is required"]
    );
    let loaded = load_text(&with_credentials(&fixture("docs_services_example.toml")));
    let services = &loaded.config.runners[0].kubernetes.services;
    assert_eq!(
        (services[0].name.as_str(), services[0].aliases()),
        ("postgres:12-alpine", vec!["db1"])
    );
    assert_eq!(services[1].entrypoint, ["entrypoint.sh"]);
    assert_eq!(services[1].command, ["executable", "param1", "param2"]);
}

#[test]
fn docs_pull_policy_fragments() {
    let single = load_text(&under_runner(&fixture("docs_pull_policy_single_fragment.toml")));
    assert_eq!(single.config.runners[0].kubernetes.pull_policy.0, [PullPolicy::Never]);
    let multiple = load_text(&under_runner(&fixture("docs_pull_policy_multiple_fragment.toml")));
    assert_eq!(
        multiple.config.runners[0].kubernetes.pull_policy.0,
        [PullPolicy::Always, PullPolicy::IfNotPresent]
    );
}

#[test]
fn docs_v12_example_with_its_table_headers_lost() {
    // As extracted, every key of the example sits at the top level: nothing is a runner.
    // The file is valid TOML, so it loads, and each stray key says where it belongs.
    let loaded = load("docs_v12_keywords_example_headers_lost.toml");
    assert!(loaded.config.runners.is_empty());
    assert_eq!(loaded.config.concurrent, 4);
    let unknown: Vec<_> = loaded.unknown_keys().collect();
    assert_eq!(unknown.len(), 20, "{:?}", warnings(&loaded));
    let hint_of = |key: &str| {
        let warning = unknown.iter().find(|warning| warning.path.to_string() == key).unwrap();
        match &warning.kind {
            WarningKind::UnknownKey { hint } => hint.clone().unwrap_or_default(),
            other => panic!("{other:?}"),
        }
    };
    assert!(
        hint_of("token").starts_with("`token` is a key of [[runners]]"),
        "{}",
        hint_of("token")
    );
    assert!(
        hint_of("poll_timeout").starts_with("`poll_timeout` is a key of [runners.kubernetes]"),
        "{}",
        hint_of("poll_timeout")
    );
}

#[test]
fn blog_configmap_loads_and_its_dead_cache_keys_are_reported() {
    let loaded = load("blog_configmap_reconstructed.toml");
    let runner = &loaded.config.runners[0];
    assert_eq!(runner.output_limit, 409_600);
    assert!(runner
        .pre_build_script
        .as_deref()
        .unwrap()
        .contains("npm config set _auth"));
    assert_eq!(
        runner.kubernetes.bearer_token.as_ref().unwrap().expose(),
        "thisisasecret"
    );
    assert_eq!(runner.kubernetes.host, None, "host = \"\" means in-cluster discovery");
    assert_eq!(runner.kubernetes.service_account.as_deref(), Some("gitlab-runner"));
    assert_eq!(
        runner
            .kubernetes
            .resources(ContainerKind::Service)
            .cpu
            .request
            .unwrap()
            .as_str(),
        "100m"
    );
    assert_eq!(runner.kubernetes.volumes.secret.len(), 5);
    // The blog writes S3 settings straight under [runners.cache], the pre-12.0 layout: the
    // official runner ignores them silently, so the cache never worked. We say so.
    let warnings = warnings(&loaded);
    for key in ["AccessKey", "BucketName", "Insecure", "SecretKey", "ServerAddress"] {
        let expected = format!("runners[0].cache.{key}: unknown key, ignored (`{key}` is a key of [runners.cache.s3]");
        assert!(
            warnings.iter().any(|warning| warning.starts_with(&expected)),
            "{key}: {warnings:?}"
        );
    }
    assert!(warnings.contains(
        &"runners[0].cache.s3: is missing while Type is s3: jobs will run without the distributed cache".to_owned()
    ));
    assert!(!format!("{:?}", loaded.config).contains("thisisasecret"));
}

#[test]
fn cern_core_runner() {
    assert_eq!(load_errors("cern_core_runner.toml"), NO_CREDENTIALS);
    let loaded = load_text(&with_credentials(&fixture("cern_core_runner.toml")));
    let kubernetes = &loaded.config.runners[0].kubernetes;
    assert_eq!(
        (kubernetes.namespace.as_str(), kubernetes.image.as_deref()),
        ("gitlab-runner", Some("alpine:latest"))
    );
    assert_eq!(kubernetes.pull_policy.0, [PullPolicy::IfNotPresent]);
    assert_eq!(kubernetes.privileged, Some(false));
}

#[test]
fn cern_allowed_users_secret_and_projected_volumes() {
    let loaded = load_text(&under_runner(&fixture("cern_allowed_users_fragment.toml")));
    let kubernetes = &loaded.config.runners[0].kubernetes;
    assert_eq!(
        kubernetes.allowed_users.iter().map(|id| id.0).collect::<Vec<_>>(),
        [1000, 1001, 65534]
    );
    assert_eq!(kubernetes.allowed_groups.len(), 2);

    // `secret_name` is not a key of the official runner: the volume's `name` is the Secret's name.
    let loaded = load_text(&under_runner(&fixture("cern_secret_volume_fragment.toml")));
    assert_eq!(
        warnings(&loaded),
        ["runners[0].kubernetes.volumes.secret[0].secret_name: unknown key, ignored"]
    );
    assert!(loaded.config.runners[0].kubernetes.volumes.secret[0].read_only);

    let loaded = load_text(&under_runner(&fixture("cern_projected_volume_fragment.toml")));
    assert!(loaded.warnings.is_empty(), "{:?}", warnings(&loaded));
    let projected = &loaded.config.runners[0].kubernetes.volumes.projected[0];
    assert_eq!(projected.sources.secret[1].name, "npm-config");
    assert_eq!(projected.sources.secret[1].items.0[0].path, "npm/.npmrc");
}

#[test]
fn cern_security_contexts() {
    // As printed, markdown ate the underscores: every table is unknown, with the intended name as a hint.
    let loaded = load_text(&under_runner(&fixture(
        "cern_security_contexts_as_extracted_fragment.toml",
    )));
    assert_eq!(
        warnings(&loaded),
        [
            "runners[0].kubernetes.buildcontainersecuritycontext: unknown key, ignored (did you mean `build_container_security_context`?)",
            "runners[0].kubernetes.helpercontainersecuritycontext: unknown key, ignored (did you mean `helper_container_security_context`?)",
            "runners[0].kubernetes.podsecuritycontext: unknown key, ignored (did you mean `pod_security_context`?)",
            "runners[0].kubernetes.servicecontainersecuritycontext: unknown key, ignored (did you mean `service_container_security_context`?)",
        ]
    );
    let loaded = load_text(&under_runner(&fixture("cern_security_contexts_restored_fragment.toml")));
    assert!(loaded.warnings.is_empty());
    let kubernetes = &loaded.config.runners[0].kubernetes;
    assert_eq!(kubernetes.pod_security_context.run_as_user, Some(1500));
    assert_eq!(kubernetes.build_container_security_context.run_as_group, Some(2001));
    assert_eq!(kubernetes.helper_container_security_context.run_as_user, Some(3000));
    assert_eq!(kubernetes.service_container_security_context.run_as_group, Some(4001));
}

#[test]
fn official_register_output_loads() {
    let loaded = load("official_register_output.toml");
    assert!(loaded.warnings.is_empty(), "{:?}", warnings(&loaded));
    let file = &loaded.config;
    assert_eq!(
        (file.check_interval, file.shutdown_timeout, file.log_level),
        (1, 30, Some(LogLevel::Debug))
    );
    assert_eq!(file.session_server.session_timeout, 1800);
    let runner = &file.runners[0];
    assert_eq!(runner.token_obtained_at.as_deref(), Some("0001-01-01T00:00:00Z"));
    assert_eq!(runner.shell, Some(Shell::Bash));
    assert_eq!(
        runner.feature_flag("FF_USE_ADVANCED_POD_SPEC_CONFIGURATION"),
        Some(true)
    );
    assert!(runner.kubernetes.pod_spec[0]
        .patch
        .as_deref()
        .unwrap()
        .contains("name: env1"));
}

#[test]
fn flotilla_coordinator_file_loads_clean() {
    let loaded = load("flotilla_coordinator.toml");
    assert!(loaded.warnings.is_empty(), "{:?}", warnings(&loaded));
    let coordinator = &loaded.config.coordinator;
    assert_eq!(coordinator.grpc_listen.to_string(), "0.0.0.0:7600");
    assert_eq!(coordinator.pools.len(), 2);
    assert!(coordinator.pools[1].overflow);
    assert_eq!(
        coordinator.tls.as_ref().unwrap().client_ca_file.as_deref(),
        Some(std::path::Path::new("/etc/flotilla/tls/ca.crt"))
    );
    let kubernetes = &loaded.config.runners[0].kubernetes;
    assert!(kubernetes
        .namespace_overwrite_allowed
        .as_ref()
        .unwrap()
        .is_full_match("ci-main"));
    assert_eq!(
        kubernetes
            .resources(ContainerKind::Build)
            .memory
            .limit_overwrite_max_allowed
            .unwrap()
            .as_str(),
        "8Gi"
    );
    let debug = format!("{:?}", loaded.config);
    for secret in [
        "glrt-production-token",
        "admin-secret",
        "shipper-secret",
        "prod-pool-secret",
        "qa-pool-secret",
    ] {
        assert!(!debug.contains(secret), "{secret} shows in Debug");
    }
}

#[test]
fn security_profiles_parse_in_context() {
    let loaded = load_text(&under_runner(
        "[runners.kubernetes.build_container_security_context.seccomp_profile]\ntype = \"RuntimeDefault\"",
    ));
    let profile = loaded.config.runners[0]
        .kubernetes
        .build_container_security_context
        .seccomp_profile
        .clone();
    assert_eq!(profile.unwrap().profile_type, Some(ProfileType::RuntimeDefault));
}

/// Every keyword of the seeds' `[runners.kubernetes]` keyword tables (seed 001) and of the
/// other seeds is a key we take: written with any value, it is never an unknown key.
#[test]
fn every_seed_keyword_is_a_kubernetes_key() {
    let keywords = "affinity allow_privilege_escalation bearer_token bearer_token_overwrite_allowed cap_add cap_drop \
        cpu_limit cpu_limit_overwrite_max_allowed cpu_request cpu_request_overwrite_max_allowed dns_config dns_policy \
        ephemeral_storage_limit ephemeral_storage_limit_overwrite_max_allowed ephemeral_storage_request \
        ephemeral_storage_request_overwrite_max_allowed helper_cpu_limit helper_cpu_limit_overwrite_max_allowed \
        helper_cpu_request helper_cpu_request_overwrite_max_allowed helper_ephemeral_storage_limit \
        helper_ephemeral_storage_limit_overwrite_max_allowed helper_ephemeral_storage_request \
        helper_ephemeral_storage_request_overwrite_max_allowed helper_image helper_memory_limit \
        helper_memory_limit_overwrite_max_allowed helper_memory_request helper_memory_request_overwrite_max_allowed \
        host_aliases image_pull_secrets memory_limit memory_limit_overwrite_max_allowed memory_request \
        memory_request_overwrite_max_allowed namespace namespace_overwrite_allowed node_selector node_tolerations \
        pod_annotations pod_annotations_overwrite_allowed pod_labels pod_security_context poll_interval poll_timeout \
        privileged pull_policy service_account service_account_overwrite_allowed service_cpu_limit \
        service_cpu_limit_overwrite_max_allowed service_cpu_request service_cpu_request_overwrite_max_allowed \
        service_ephemeral_storage_limit service_ephemeral_storage_limit_overwrite_max_allowed \
        service_ephemeral_storage_request service_ephemeral_storage_request_overwrite_max_allowed service_memory_limit \
        service_memory_limit_overwrite_max_allowed service_memory_request service_memory_request_overwrite_max_allowed \
        services terminationGracePeriodSeconds volumes host cert_file key_file ca_file image allowed_users allowed_groups";
    for keyword in keywords.split_whitespace() {
        let text = under_runner(&format!("[runners.kubernetes]\n{keyword} = \"x\""));
        let warnings = match runner_config_from_str(&text) {
            Ok(loaded) => loaded.warnings,
            Err(errors) => errors.warnings,
        };
        assert!(
            !warnings.iter().any(|warning| warning.is_unknown_key()),
            "{keyword}: {warnings:?}"
        );
    }
}

/// The coordinator hands each runner entry to workers as JSON: every fixture that loads must
/// come back from JSON unchanged, or a worker would build a different Pod than configured.
#[test]
fn every_runner_entry_survives_the_trip_to_workers() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixture_path("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let Ok(loaded) = flotilla_config::load_runner_config(&path) else {
            continue;
        };
        for runner in &loaded.config.runners {
            let json = serde_json::to_string(runner).unwrap();
            let back: flotilla_config::RunnerConfig =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{}: {e}\n{json}", path.display()));
            assert_eq!(&back, runner, "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 5, "the fixtures hold runner entries ({checked})");
}
