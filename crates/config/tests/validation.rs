//! One test per validation rule of `config.toml`: each asserts the key path and the reason.
//! Then: every error of a file is collected, unknown keys are reported with their path, and
//! credentials never show in `Debug`.

use flotilla_config::{runner_config_from_str, runner_config_from_str_with_env, ConfigErrors};

const RUNNER: &str =
    "[[runners]]\nname = \"r\"\nurl = \"https://gitlab.example.com\"\ntoken = \"glrt-x\"\nexecutor = \"kubernetes\"\n";

/// The errors of a file made of one valid runner entry plus `extra` (runner keys, then tables).
fn errors_with(extra: &str) -> Vec<String> {
    errors_of(&format!("{RUNNER}{extra}"))
}

fn errors_of(text: &str) -> Vec<String> {
    match runner_config_from_str(text) {
        Ok(loaded) => panic!("loaded without errors: {:?}", loaded.warnings),
        Err(errors) => texts(&errors),
    }
}

fn texts(errors: &ConfigErrors) -> Vec<String> {
    errors.errors.iter().map(ToString::to_string).collect()
}

fn kubernetes_errors(keys: &str) -> Vec<String> {
    errors_with(&format!("[runners.kubernetes]\n{keys}\n"))
}

#[test]
fn a_valid_entry_loads() {
    assert!(runner_config_from_str(RUNNER).is_ok());
}

#[test]
fn executor_must_be_kubernetes() {
    assert_eq!(
        errors_of(&RUNNER.replace("\"kubernetes\"", "\"docker\"")),
        ["runners[0].executor: \"docker\" is not supported: Flotilla runs the \"kubernetes\" executor only"]
    );
    assert_eq!(
        errors_of(&RUNNER.replace("executor = \"kubernetes\"\n", "")),
        ["runners[0].executor: is required and must be \"kubernetes\""]
    );
}

#[test]
fn url_and_token_are_required() {
    assert_eq!(
        errors_of("[[runners]]\nexecutor = \"kubernetes\"\n"),
        ["runners[0].url: is required", "runners[0].token: is required"]
    );
    assert_eq!(
        errors_of(&RUNNER.replace("https://gitlab.example.com", "gitlab.example.com")),
        ["runners[0].url: \"gitlab.example.com\" is not an absolute http(s) URL (e.g. \"https://gitlab.example.com\")"]
    );
}

#[test]
fn url_and_token_expand_environment_variables() {
    let text = RUNNER
        .replace("https://gitlab.example.com", "${GITLAB_URL}")
        .replace("glrt-x", "$RUNNER_TOKEN");
    let env = |name: &str| match name {
        "GITLAB_URL" => Some("https://gitlab.internal".to_owned()),
        "RUNNER_TOKEN" => Some("glrt-from-env".to_owned()),
        _ => None,
    };
    let loaded = runner_config_from_str_with_env(&text, &env).unwrap();
    assert_eq!(loaded.config.runners[0].url, "https://gitlab.internal");
    assert_eq!(loaded.config.runners[0].token.expose(), "glrt-from-env");
    let errors = runner_config_from_str_with_env(&text, &|_| None).unwrap_err();
    assert_eq!(
        texts(&errors),
        ["runners[0].url: is required", "runners[0].token: is required"]
    );
}

#[test]
fn concurrent_zero_is_refused() {
    assert_eq!(
        errors_of(&format!("concurrent = 0\n{RUNNER}")),
        ["concurrent: must be at least 1 (GitLab Runner refuses 0 too)"]
    );
}

#[test]
fn type_errors_name_the_key() {
    assert_eq!(
        errors_with("limit = \"ten\"\n"),
        ["runners[0].limit: invalid type: string \"ten\", expected u32"]
    );
    assert_eq!(
        errors_with("limit = -1\n"),
        ["runners[0].limit: invalid value: integer `-1`, expected u32"]
    );
}

#[test]
fn quantities_are_checked() {
    assert_eq!(
        kubernetes_errors("cpu_limit = \"2x\""),
        ["runners[0].kubernetes.cpu_limit: \"2x\" is not a valid Kubernetes quantity"]
    );
    assert_eq!(
        kubernetes_errors("helper_memory_limit_overwrite_max_allowed = \"1 Gi\""),
        ["runners[0].kubernetes.helper_memory_limit_overwrite_max_allowed: \"1 Gi\" is not a valid Kubernetes quantity"]
    );
    assert_eq!(
        kubernetes_errors("memory_request = \"2Gi\"\nmemory_limit = \"1Gi\""),
        ["runners[0].kubernetes.memory_request: 2Gi is more than memory_limit (1Gi); Kubernetes refuses such a Pod"]
    );
}

#[test]
fn overwrite_regexes_are_compiled() {
    let errors = errors_of(&format!(
        "{RUNNER}{}[runners.kubernetes]\nnamespace_overwrite_allowed = \"ci-(\"\n",
        RUNNER.replace("name = \"r\"", "name = \"second\"")
    ));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("runners[1].kubernetes.namespace_overwrite_allowed: invalid regex: "),
        "{errors:?}"
    );
}

#[test]
fn dns_policy_is_a_keyword() {
    assert_eq!(
        kubernetes_errors("dns_policy = \"sometimes\""),
        ["runners[0].kubernetes.dns_policy: \"sometimes\" is not one of none, default, cluster-first, cluster-first-with-host-net"]
    );
}

#[test]
fn malformed_tolerations_are_refused() {
    assert_eq!(
        kubernetes_errors("[runners.kubernetes.node_tolerations]\n\"=value\" = \"NoSchedule\"\n\"a=b=c\" = \"\""),
        [
            "runners[0].kubernetes.node_tolerations.\"=value\": toleration \"=value\" has an empty key",
            "runners[0].kubernetes.node_tolerations.\"a=b=c\": toleration \"a=b=c\" has more than one '=' (write \"key=value\" = \"Effect\")",
        ]
    );
    assert_eq!(
        kubernetes_errors("[runners.kubernetes.node_tolerations]\nkey = \"Sometimes\""),
        ["runners[0].kubernetes.node_tolerations.key: \"Sometimes\" is not one of NoSchedule, PreferNoSchedule, NoExecute (or \"\" for every effect)"]
    );
}

#[test]
fn volumes_need_a_name_and_a_mount_path() {
    assert_eq!(
        kubernetes_errors("[[runners.kubernetes.volumes.host_path]]\nhost_path = \"/var/run/docker.sock\"\n[[runners.kubernetes.volumes.secret]]\nname = \"s\""),
        [
            "runners[0].kubernetes.volumes.host_path[0].name: is required",
            "runners[0].kubernetes.volumes.host_path[0].mount_path: is required",
            "runners[0].kubernetes.volumes.secret[0].mount_path: is required",
        ]
    );
}

#[test]
fn pull_policies_are_keywords() {
    assert_eq!(
        kubernetes_errors("pull_policy = [\"always\", \"on-tuesdays\"]"),
        ["runners[0].kubernetes.pull_policy: \"on-tuesdays\" is not one of always, if-not-present, never"]
    );
}

#[test]
fn allowed_users_are_numeric() {
    assert_eq!(
        kubernetes_errors("allowed_users = [\"1000\", \"bob\"]"),
        ["runners[0].kubernetes.allowed_users[1]: \"bob\" is not a numeric ID"]
    );
}

#[test]
fn durations_need_a_unit() {
    assert_eq!(
        kubernetes_errors("cleanup_resources_timeout = \"soon\""),
        ["runners[0].kubernetes.cleanup_resources_timeout: \"soon\" is not a duration (write e.g. \"90s\", \"5m\" or \"1h30m\")"]
    );
    assert_eq!(
        kubernetes_errors("cleanup_resources_timeout = 300"),
        ["runners[0].kubernetes.cleanup_resources_timeout: 300 has no unit; write e.g. \"300s\" (GitLab Runner reads a bare number as nanoseconds)"]
    );
}

#[test]
fn poll_timeout_must_cover_poll_interval() {
    assert_eq!(
        kubernetes_errors("poll_interval = 10\npoll_timeout = 5"),
        ["runners[0].kubernetes.poll_timeout: 5 s is shorter than poll_interval (10 s)"]
    );
}

#[test]
fn log_level_is_a_keyword() {
    assert_eq!(
        errors_of(&format!("log_level = \"loud\"\n{RUNNER}")),
        ["log_level: \"loud\" is not one of debug, info, warn, error, fatal, panic"]
    );
}

#[test]
fn environment_entries_are_key_value() {
    assert_eq!(
        errors_with("environment = [\"A=1\", \"JUST_A_NAME\"]\n"),
        ["runners[0].environment[1]: \"JUST_A_NAME\" is not of the form KEY=VALUE"]
    );
}

#[test]
fn security_contexts_are_checked() {
    assert_eq!(
        kubernetes_errors("[runners.kubernetes.build_container_security_context]\nproc_mount = \"masked\"\n[runners.kubernetes.pod_security_context.seccomp_profile]\ntype = \"Localhost\""),
        [
            "runners[0].kubernetes.build_container_security_context.proc_mount: \"masked\" is not one of default, unmasked",
            "runners[0].kubernetes.pod_security_context.seccomp_profile.localhost_profile: is required when type is Localhost",
        ]
    );
}

#[test]
fn coordinator_section_is_checked() {
    assert_eq!(
        errors_of(&format!(
            "{RUNNER}[coordinator]\nworker_timeout = \"1s\"\ngrpc_listen = \"localhost:7600\"\n[[coordinator.pools]]\nname = \"qa\"\ntoken = \"\"\n"
        )),
        [
            "coordinator.grpc_listen: invalid socket address syntax",
            "coordinator.worker_timeout: 1s is not longer than heartbeat_interval (2s); every worker would time out",
            "coordinator.pools[0].token: is required",
        ]
    );
}

#[test]
fn every_error_is_collected() {
    let text = "\
concurrent = 0
log_format = \"xml\"
[[runners]]
executor = \"shell\"
output_limit = \"big\"
[runners.kubernetes]
cpu_limit = \"2x\"
dns_policy = \"sometimes\"
[[runners.kubernetes.volumes.pvc]]
name = \"data\"
[[runners]]
url = \"https://gitlab.example.com\"
token = \"t\"
executor = \"kubernetes\"
[runners.kubernetes]
namespace_overwrite_allowed = \"[\"
memory_limit = \"lots\"
";
    let errors = runner_config_from_str(text).unwrap_err();
    let listed = errors.to_string();
    let expected_paths = [
        "concurrent",
        "log_format",
        "runners[0].output_limit",
        "runners[0].url",
        "runners[0].token",
        "runners[0].executor",
        "runners[0].kubernetes.cpu_limit",
        "runners[0].kubernetes.dns_policy",
        "runners[0].kubernetes.volumes.pvc[0].mount_path",
        "runners[1].kubernetes.namespace_overwrite_allowed",
        "runners[1].kubernetes.memory_limit",
    ];
    for path in expected_paths {
        assert!(errors.at(path).is_some(), "no error at {path}:\n{listed}");
    }
    assert_eq!(errors.errors.len(), expected_paths.len(), "{listed}");
    assert_eq!(
        listed.lines().count(),
        expected_paths.len(),
        "one error per line:\n{listed}"
    );
}

#[test]
fn unknown_keys_are_warnings_with_their_path() {
    let text = format!(
        "{RUNNER}namespase = \"x\"\n[runners.docker]\nimage = \"alpine\"\n[runners.kubernetes]\nnamespase = \"ci\"\nfuture_option = true\n[future_section]\nx = 1\n"
    );
    let loaded = runner_config_from_str(&text).unwrap();
    let warnings: Vec<String> = loaded.unknown_keys().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "future_section: unknown key, ignored",
            "runners[0].docker: unknown key, ignored (settings of the docker executor; Flotilla runs the kubernetes executor only)",
            "runners[0].kubernetes.future_option: unknown key, ignored",
            "runners[0].kubernetes.namespase: unknown key, ignored (did you mean `namespace`?)",
            "runners[0].namespase: unknown key, ignored (did you mean `namespace`, a key of [runners.kubernetes]?)",
        ]
    );
}

#[test]
fn warnings_survive_a_failed_load() {
    let errors = runner_config_from_str(&format!("{RUNNER}limt = 3\nlimit = \"x\"\n")).unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert_eq!(errors.warnings.len(), 1);
    assert_eq!(errors.warnings[0].path.to_string(), "runners[0].limt");
}

#[test]
fn credentials_never_show_in_debug() {
    let text = "\
sentry_dsn = \"https://key-1@sentry.example.com/1\"
[[runners]]
url = \"https://gitlab.example.com\"
token = \"glrt-secret-2\"
executor = \"kubernetes\"
[runners.kubernetes]
bearer_token = \"bearer-secret-3\"
[runners.cache]
Type = \"s3\"
[runners.cache.s3]
BucketName = \"b\"
AccessKey = \"access-4\"
SecretKey = \"secret-5\"
[coordinator]
admin_token = \"admin-6\"
[[coordinator.pools]]
name = \"prod\"
token = \"pool-7\"
";
    let loaded = runner_config_from_str(text).unwrap();
    let debug = format!("{:?} {:#?}", loaded.config, loaded.config);
    for secret in [
        "key-1",
        "glrt-secret-2",
        "bearer-secret-3",
        "access-4",
        "secret-5",
        "admin-6",
        "pool-7",
    ] {
        assert!(!debug.contains(secret), "{secret} shows in Debug");
    }
    assert!(debug.contains("[MASKED]"));
    assert_eq!(loaded.config.runners[0].token.expose(), "glrt-secret-2");
}

#[test]
fn a_bad_cluster_selector_is_refused_by_key() {
    let errors = flotilla_config::runner_config_from_str(
        "[[runners]]\nurl = \"https://gitlab.example.com\"\ntoken = \"t\"\nexecutor = \"kubernetes\"\ncluster_selector = \"arch=arm 64\"\n",
    )
    .unwrap_err();
    let error = errors.at("runners[0].cluster_selector").expect("the key is named");
    assert!(error.reason().contains("is not a label value"), "{error}");
}

#[test]
fn a_cluster_selector_is_parsed() {
    let loaded = flotilla_config::runner_config_from_str(
        "[[runners]]\nurl = \"https://gitlab.example.com\"\ntoken = \"t\"\nexecutor = \"kubernetes\"\ncluster_selector = \"arch=arm64\"\n",
    )
    .unwrap();
    assert_eq!(loaded.config.runners[0].cluster_selector.to_string(), "arch=arm64");
    assert_eq!(loaded.unknown_keys().count(), 0);
}
