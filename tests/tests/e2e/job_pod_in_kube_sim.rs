//! The job Pod of `docs/pod-contract.md` really runs: the worker's Pod and Secret, created
//! in kube-sim, with the real `flotilla-helper` bootstrapped into it, run a job end to end
//! and leave the result in the helper's termination message (no exec, no attach).

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_config::KubernetesConfig;
use flotilla_worker::pod::{object_name, owned_by, pod, secret, PodPlan};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, LogParams, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::{json, Value};

fn payload(job_id: u64, script: &[&str]) -> Value {
    json!({
        "id": job_id,
        "token": "glcbt-job-token-123",
        "allow_git_fetch": true,
        "job_info": {"id": job_id, "name": "build", "stage": "test", "project_id": 1, "project_name": "app"},
        "git_info": {"repo_url": "http://gitlab-ci-token:glcbt-job-token-123@127.0.0.1:1/group/app.git", "ref": "main",
                     "sha": "0123456789abcdef0123456789abcdef01234567", "before_sha": "0000000000000000000000000000000000000000",
                     "ref_type": "branch", "refspecs": [], "depth": 20},
        "runner_info": {"timeout": 600},
        "variables": [
            {"key": "CI_JOB_NAME", "value": "build", "public": true},
            {"key": "GIT_STRATEGY", "value": "none", "public": true},
            {"key": "GREETING", "value": "hello from the build container", "public": true},
        ],
        "steps": [
            {"name": "script", "script": script, "timeout": 600, "when": "on_success", "allow_failure": false},
            {"name": "after_script", "script": ["echo cleaning up"], "timeout": 600, "when": "always", "allow_failure": true},
        ],
        "image": {"name": "alpine:3.19"}, "services": [], "artifacts": [], "cache": [], "credentials": [], "dependencies": [],
        "features": {"trace_sections": true, "failure_reasons": ["script_failure", "runner_system_failure", "job_execution_timeout", "unknown_failure"]}
    })
}

fn plan(job_id: u64, payload: &Value, kubernetes: KubernetesConfig) -> PodPlan {
    PodPlan {
        job_id,
        namespace: "default".into(),
        worker_id: "worker-test".into(),
        build_image: "alpine:3.19".into(),
        helper_image: "flotilla/helper:dev".into(),
        helper_binary: flotilla_e2e::helper_binary(),
        builds_dir: "/builds".into(),
        payload_json: payload.to_string(),
        runtime_json: json!({"builds_dir": "/builds", "project_dir": "/builds/group/app", "timeout_seconds": 600})
            .to_string(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        active_deadline_seconds: Some(601),
        termination_grace_period_seconds: Some(5),
        service_account: None,
        kubernetes,
        services: Vec::new(),
        pull_attempts: Default::default(),
        pod_spec_patches: Vec::new(),
    }
}

/// Runs one job Pod to its end; returns the helper's log and the result message.
async fn run_job(client: &kube::Client, job_id: u64, script: &[&str]) -> (String, Value) {
    run_job_with(client, job_id, script, KubernetesConfig::default()).await
}

/// [`run_job`] with a runner entry's `[runners.kubernetes]`.
async fn run_job_with(
    client: &kube::Client,
    job_id: u64,
    script: &[&str],
    kubernetes: KubernetesConfig,
) -> (String, Value) {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let plan = plan(job_id, &payload(job_id, script), kubernetes);
    let mut job_secret = secret(&plan);
    secrets.create(&PostParams::default(), &job_secret).await.unwrap();
    let created = pods.create(&PostParams::default(), &pod(&plan).unwrap()).await.unwrap();
    owned_by(
        &mut job_secret,
        created.metadata.uid.as_deref().unwrap(),
        &object_name(job_id),
    );
    secrets
        .replace(&object_name(job_id), &PostParams::default(), &job_secret)
        .await
        .unwrap();

    let helper_done = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == "helper"))
            .and_then(|c| c.state.as_ref())
            .is_some_and(|s| s.terminated.is_some())
    };
    let done = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), &object_name(job_id), helper_done),
    )
    .await
    .expect("the job finishes")
    .unwrap()
    .unwrap();
    let status = done.status.unwrap();
    let helper = status
        .container_statuses
        .unwrap()
        .into_iter()
        .find(|c| c.name == "helper")
        .unwrap();
    let message = helper.state.unwrap().terminated.unwrap().message.unwrap_or_default();
    let result: Value = serde_json::from_str(&message).unwrap_or_else(|e| panic!("result {message:?}: {e}"));
    let log = pods
        .logs(
            &object_name(job_id),
            &LogParams {
                container: Some("helper".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (log, result)
}

async fn cluster() -> (kube_sim::Sim, kube::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = flotilla_e2e::cluster(dir.path(), "test").await;
    (sim, client, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_runs_in_its_pod_and_reports_success() {
    let (_sim, client, _dir) = cluster().await;
    let (log, result) = run_job(&client, 101, &["echo \"$GREETING\"", "echo second line"]).await;
    assert_eq!(result["state"], "success", "{log}");
    assert_eq!(log.matches("hello from the build container\n").count(), 1, "{log}");
    assert!(log.contains("$ echo \"$GREETING\""), "{log}");
    assert!(log.contains("cleaning up"), "after_script ran: {log}");
    assert!(
        !log.contains("glcbt-job-token-123"),
        "the job token never reaches the log: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_script_reports_its_exit_code() {
    let (_sim, client, _dir) = cluster().await;
    let (log, result) = run_job(&client, 102, &["echo before the failure", "exit 3", "echo never"]).await;
    assert_eq!(result["state"], "failed", "{log}");
    assert_eq!(result["exit_code"], 3);
    assert_eq!(result["failure_reason"], "script_failure");
    assert!(!log.contains("\nnever"), "{log}");
    assert!(log.contains("cleaning up"), "after_script runs after a failure: {log}");
}

/// A runner entry's `[runners.kubernetes]` reaches the Pod: kube-sim (which validates like the
/// API server) accepts it, the job sees what the Pod was given, and the Pod object carries
/// labels, annotations, tolerations, capabilities and resources.
#[tokio::test(flavor = "multi_thread")]
async fn runner_kubernetes_settings_shape_the_pod() {
    let (_sim, client, dir) = cluster().await;
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello.txt"), "from the host path\n").unwrap();
    let text = r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes]
    cpu_request = "250m"
    memory_limit = "512Mi"
    pod_memory_limit = "2Gi"
    helper_cpu_limit = "100m"
    cap_add = ["SYS_TIME"]
    [runners.kubernetes.pod_labels]
      team = "platform"
    [runners.kubernetes.pod_annotations]
      "example.com/owner" = "ci"
    [runners.kubernetes.node_tolerations]
      "dedicated=ci" = "NoSchedule"
    [[runners.kubernetes.host_aliases]]
      ip = "10.9.8.7"
      hostnames = ["registry.internal"]
    [[runners.kubernetes.volumes.host_path]]
      name = "shared"
      mount_path = "/mnt/shared"
      host_path = "@SHARED@"
      read_only = true
    [[runners.kubernetes.volumes.empty_dir]]
      name = "scratch"
      mount_path = "/scratch"
    [runners.kubernetes.container_lifecycle.pre_stop.exec]
      command = ["true"]
    [[runners.kubernetes.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution]]
      weight = 10
      [runners.kubernetes.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution.preference]
        [[runners.kubernetes.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution.preference.match_expressions]]
          key = "disk"
          operator = "In"
          values = ["ssd"]
"#
    .replace("@SHARED@", &shared.display().to_string());
    let kubernetes = flotilla_config::runner_config_from_str(&text).unwrap().config.runners[0]
        .kubernetes
        .clone();
    let script = [
        "grep registry.internal /etc/hosts",
        "cat /mnt/shared/hello.txt",
        "echo scratch-works > /scratch/x && cat /scratch/x",
        "if touch /mnt/shared/nope 2>/dev/null; then echo writable; else echo read-only-as-configured; fi",
    ];
    let (log, result) = run_job_with(&client, 103, &script, kubernetes).await;
    assert_eq!(result["state"], "success", "{log}");
    assert!(log.contains("10.9.8.7"), "hostAliases reach /etc/hosts: {log}");
    assert!(
        log.contains("\nfrom the host path\n"),
        "the host path is mounted: {log}"
    );
    assert!(log.contains("\nscratch-works\n"), "the emptyDir is mounted: {log}");
    assert!(log.contains("\nread-only-as-configured\n"), "{log}");

    let pods: Api<Pod> = Api::default_namespaced(client);
    let created = serde_json::to_value(pods.get(&object_name(103)).await.unwrap()).unwrap();
    assert_eq!(created["metadata"]["labels"]["team"], "platform");
    assert_eq!(created["metadata"]["annotations"]["example.com/owner"], "ci");
    let spec = &created["spec"];
    assert_eq!(
        spec["tolerations"][0],
        json!({"key": "dedicated", "operator": "Equal", "value": "ci", "effect": "NoSchedule"})
    );
    let build = &spec["containers"][0];
    assert_eq!(build["resources"]["requests"]["cpu"], "250m");
    assert_eq!(build["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(
        build["securityContext"]["capabilities"],
        json!({"add": ["SYS_TIME"], "drop": ["NET_RAW"]})
    );
    assert_eq!(spec["containers"][1]["resources"]["limits"]["cpu"], "100m");
    assert_eq!(spec["resources"]["limits"]["memory"], "2Gi", "pod-level resources");
    assert_eq!(build["lifecycle"]["preStop"]["exec"]["command"], json!(["true"]));
    assert_eq!(
        spec["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
        10
    );
}

/// A build container running as a non-root user (the job image's `kubernetes: user`, or the
/// runner's `build_container_security_context`) still runs the job through the shared volumes.
#[tokio::test(flavor = "multi_thread")]
async fn a_non_root_build_container_runs_the_job() {
    let (_sim, client, _dir) = cluster().await;
    let text = "[[runners]]\nurl = \"https://g.example.com\"\ntoken = \"t\"\nexecutor = \"kubernetes\"\n[runners.kubernetes.build_container_security_context]\nrun_as_user = 1000\nrun_as_group = 1000\n";
    let kubernetes = flotilla_config::runner_config_from_str(text).unwrap().config.runners[0]
        .kubernetes
        .clone();
    let script = [
        "echo uid=$(id -u)",
        "echo written > build-output.txt && cat build-output.txt",
    ];
    let (log, result) = run_job_with(&client, 104, &script, kubernetes).await;
    assert_eq!(result["state"], "success", "{log}");
    assert!(log.contains("\nuid=1000\n"), "{log}");
    assert!(
        log.contains("\nwritten\n"),
        "it can write in its working directory: {log}"
    );
}
