//! Defaults are the official runner's; the worker and log-shipper files load and are checked;
//! a loaded runner entry survives the JSON trip the coordinator makes to hand it to workers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flotilla_config::{
    load_runner_config, load_shipper_config, load_worker_config, runner_config_from_str, shipper_config_from_str,
    worker_config_from_str, ConfigError, ContainerKind, KubernetesConfig, KubernetesConnection, RunnerConfig,
};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

const MINIMAL: &str = "[[runners]]\nurl = \"https://gitlab.example.com\"\ntoken = \"t\"\nexecutor = \"kubernetes\"\n";

#[test]
fn global_and_runner_defaults_are_the_official_ones() {
    let file = runner_config_from_str(MINIMAL).unwrap().config;
    assert_eq!(file.concurrent, 1);
    assert_eq!(file.check_interval, 3);
    assert_eq!(file.shutdown_timeout, 30);
    assert_eq!(file.connection_max_age, Duration::from_secs(15 * 60));
    assert_eq!(
        (file.log_level, file.log_format, file.listen_address.as_deref()),
        (None, None, None)
    );
    assert_eq!(file.session_server.session_timeout, 1800);
    let runner = &file.runners[0];
    assert_eq!(runner.limit, 0, "0 = unlimited");
    assert_eq!(runner.request_concurrency, 1);
    assert_eq!(runner.output_limit, 4096);
    assert_eq!(runner.output_limit_bytes(), 4 * 1024 * 1024);
    assert_eq!(runner.unhealthy_requests_limit, 3);
    assert_eq!(runner.unhealthy_interval, Duration::from_secs(3600));
    assert_eq!(runner.job_status_final_update_retry_limit, 10);
    assert!(!runner.debug_trace_disabled && !runner.strict_check_interval);
    assert_eq!(runner.cache, None);
    assert!(runner.feature_flags.is_empty());
}

#[test]
fn kubernetes_defaults_are_the_official_ones() {
    let kubernetes = KubernetesConfig::default();
    assert_eq!(
        kubernetes,
        runner_config_from_str(MINIMAL).unwrap().config.runners[0].kubernetes
    );
    assert_eq!(kubernetes.namespace, "default");
    assert_eq!((kubernetes.poll_interval, kubernetes.poll_timeout), (3, 180));
    assert_eq!(kubernetes.poll_timeout(), Duration::from_secs(180));
    assert_eq!(kubernetes.retry_limit, 5);
    assert_eq!(kubernetes.retry_backoff_max(), Duration::from_millis(2000));
    assert_eq!(kubernetes.cleanup_resources_timeout, Duration::from_secs(300));
    assert_eq!(kubernetes.resource_availability_check_max_attempts, 0, "off by default");
    assert!(kubernetes.print_pod_warning_events);
    assert!(!kubernetes.pod_disruption_budget);
    assert!(!kubernetes.namespace_per_job && !kubernetes.bearer_token_overwrite_allowed);
    assert_eq!(
        (kubernetes.privileged, kubernetes.allow_privilege_escalation),
        (None, None)
    );
    assert!(kubernetes.pull_policy.is_empty(), "unset: the cluster's default");
    assert_eq!(kubernetes.dns_policy, None);
    assert_eq!(kubernetes.effective_pod_termination_grace_period_seconds(), None);
    for kind in ContainerKind::ALL {
        assert_eq!(
            kubernetes.resources(kind),
            Default::default(),
            "no resources by default"
        );
    }
    assert!(kubernetes.volumes.is_empty() && kubernetes.services.is_empty());
}

#[test]
fn zero_or_less_means_the_default_as_in_the_official_runner() {
    let text = format!(
        "check_interval = 0\nshutdown_timeout = -1\n{MINIMAL}request_concurrency = 0\noutput_limit = 0\n\
         [runners.kubernetes]\npoll_interval = 0\npoll_timeout = -5\nretry_limit = 0\nretry_backoff_max = 100\n\
         resource_availability_check_max_attempts = -1\nnamespace = \"\"\ncleanup_resources_timeout = \"0s\""
    );
    let file = runner_config_from_str(&text).unwrap().config;
    assert_eq!((file.check_interval, file.shutdown_timeout), (3, 30));
    let runner = &file.runners[0];
    assert_eq!((runner.request_concurrency, runner.output_limit), (1, 4096));
    let kubernetes = &runner.kubernetes;
    assert_eq!(
        (
            kubernetes.poll_interval,
            kubernetes.poll_timeout,
            kubernetes.retry_limit
        ),
        (3, 180, 5)
    );
    assert_eq!(kubernetes.retry_backoff_max, 500, "below 500 ms is raised to 500 ms");
    assert_eq!(
        kubernetes.resource_availability_check_max_attempts, 5,
        "negative means 5"
    );
    assert_eq!(kubernetes.namespace, "default");
    assert_eq!(kubernetes.cleanup_resources_timeout, Duration::from_secs(300));
}

#[test]
fn a_runner_entry_survives_the_json_trip_to_workers() {
    let loaded = load_runner_config(fixture_path("flotilla_coordinator.toml")).unwrap();
    let runner = &loaded.config.runners[0];
    let json = serde_json::to_string(runner).unwrap();
    assert!(
        json.contains("glrt-production-token"),
        "serialisation carries credentials to the wire"
    );
    let back: RunnerConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, runner);
    let kubernetes_json = serde_json::to_string(&runner.kubernetes).unwrap();
    assert_eq!(
        serde_json::from_str::<KubernetesConfig>(&kubernetes_json).unwrap(),
        runner.kubernetes
    );
}

#[test]
fn a_missing_file_names_itself() {
    let errors = load_runner_config("/nonexistent/config.toml").unwrap_err();
    assert!(matches!(errors.errors[0], ConfigError::Read { .. }));
    assert!(
        errors
            .to_string()
            .starts_with("/nonexistent/config.toml: cannot read: "),
        "{errors}"
    );
}

#[test]
fn worker_file_loads() {
    let loaded = load_worker_config(fixture_path("worker.toml")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let worker = &loaded.config.worker;
    assert_eq!(
        (
            worker.id.as_str(),
            worker.cluster.as_str(),
            worker.pool.as_str(),
            worker.capacity
        ),
        ("cluster-a-1", "cluster-a", "prod", 25)
    );
    assert_eq!(worker.labels["region"], "eu-west");
    assert_eq!(
        worker.tls.as_ref().unwrap().cert_file.as_deref(),
        Some(Path::new("/etc/flotilla/tls/worker.crt"))
    );
    assert_eq!(loaded.config.kubernetes.namespace, "ci");
    assert_eq!(
        loaded.config.kubernetes.connection(),
        KubernetesConnection::Discover { context: None }
    );
    assert!(!format!("{:?}", loaded.config).contains("prod-pool-secret"));
}

#[test]
fn worker_defaults_and_rules() {
    let loaded = worker_config_from_str(
        "[worker]\nid = \"w\"\ncoordinator_url = \"http://c:7600\"\ntoken = \"t\"\ncluster = \"a\"",
    )
    .unwrap();
    assert_eq!(
        (loaded.config.worker.pool.as_str(), loaded.config.worker.capacity),
        ("prod", 10)
    );
    assert_eq!(loaded.config.kubernetes.namespace, "default");
    let errors = worker_config_from_str("[worker]\ncapacity = 0\nfleet = \"x\"\n[kubernetes]\nbearer_token = \"b\"")
        .unwrap_err();
    let listed: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        [
            "worker.id: is required",
            "worker.coordinator_url: is required",
            "worker.token: is required",
            "worker.cluster: is required",
            "worker.capacity: must be at least 1",
            "kubernetes.bearer_token: is only used with host",
        ]
    );
    assert_eq!(errors.warnings[0].to_string(), "worker.fleet: unknown key, ignored");
}

#[test]
fn shipper_file_loads() {
    let loaded = load_shipper_config(fixture_path("log_shipper.toml")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let section = &loaded.config.log_shipper;
    assert_eq!(section.listen.to_string(), "0.0.0.0:7700");
    assert_eq!(section.advertised_url(), "https://log-shipper.flotilla.svc:7700");
    assert_eq!(section.data_dir, PathBuf::from("/var/lib/flotilla/log-shipper"));
    assert!(!format!("{:?}", loaded.config).contains("shipper-secret"));
}

#[test]
fn shipper_rules() {
    let errors =
        shipper_config_from_str("[log_shipper]\nlisten = \"everywhere\"\n[log_shipper.tls]\ncert_file = \"/c\"")
            .unwrap_err();
    let listed: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        [
            "log_shipper.listen: invalid socket address syntax",
            "log_shipper.coordinator_url: is required",
            "log_shipper.tls.key_file: is required",
        ]
    );
}
