//! A job Pod that cannot start (issue 5): `pull_policy = ["always", "if-not-present"]` falls
//! back to the node's copy when the registry fails, and says so in the job log; a pull that
//! fails under every policy fails the job as an image pull failure; a Pod that never gets a
//! node fails after `poll_timeout` with the reason, unless the job is canceled first: then it
//! ends at once. With `resource_availability_check_max_attempts`, a Pod waits for its service
//! account to exist, or the job fails saying which is missing. kube-sim fails the pulls on
//! request, as a registry that is down would.

use std::time::Duration;

use flotilla_e2e::gitlab::{all_finished, gitlab, start_under_entry};
use gitlab_sim::{Expect, JobSpec, JobState};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::runtime::wait::await_condition;
use kube_sim::faults::ImagePullFault;

const ENTRY: &str = r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes]
    pull_policy = ["always", "if-not-present"]
"#;

fn job(name: &str, image: &str) -> JobSpec {
    let mut job = JobSpec::new(name, ["echo the job ran"]).variable("GIT_STRATEGY", "none");
    job.image = Some(image.into());
    job
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_pull_falls_back_to_the_next_policy_or_fails_the_job() {
    let sim = gitlab().await;
    let fleet = start_under_entry(&sim, ENTRY, 2).await;
    let faults = fleet.clusters[0].faults();
    // The registry is down for this image, but the node has a copy.
    faults.fail_image_pulls(ImagePullFault {
        image: "registry.example/cached:1".into(),
        pull_policy: Some("Always".into()),
    });
    // This one is nowhere.
    faults.fail_image_pulls(ImagePullFault {
        image: "registry.example/missing:1".into(),
        pull_policy: None,
    });
    let cached = sim.add_job(job("cached", "registry.example/cached:1")).unwrap();
    let mut missing = job("missing", "registry.example/missing:1");
    missing.expect = Expect::Failed;
    let missing = sim.add_job(missing).unwrap();
    all_finished(&sim).await;

    let cached = sim.job(cached).unwrap();
    let trace = cached.trace_text();
    assert_eq!(cached.state, JobState::Success, "{trace}");
    assert!(
        trace.contains(
            "WARNING: Failed to pull image \"registry.example/cached:1\" for container build with pull policy Always"
        ) && trace.contains("trying pull policy IfNotPresent"),
        "the log says the pull fell back: {trace}"
    );
    assert!(trace.contains("the job ran"), "{trace}");

    let missing = sim.job(missing).unwrap();
    let trace = missing.trace_text();
    assert_eq!(missing.state, JobState::Failed, "{trace}");
    // `image_pull_failure`, mapped as the official runner maps it for a GitLab that does not
    // list that reason (gitlab-sim does not).
    assert_eq!(missing.failure_reason.as_deref(), Some("runner_system_failure"));
    assert!(
        trace.contains(
            "failed to pull image \"registry.example/missing:1\" for container build with pull policy IfNotPresent"
        ),
        "the log names the image and the last policy tried: {trace}"
    );
    // `print_pod_warning_events` (default true): the Pod's Warning events, before the failure.
    let warning = "WARNING: Event retrieved from the cluster: Failed to pull image \"registry.example/missing:1\"";
    let failure = "ERROR: Job failed: failed to pull image";
    assert!(
        trace.find(warning).zip(trace.find(failure)).is_some_and(|(w, f)| w < f),
        "the Pod's warning events come before the failure: {trace}"
    );
    assert!(!trace.contains("the job ran"), "{trace}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_that_never_gets_a_node_fails_after_poll_timeout() {
    let sim = gitlab().await;
    let entry = r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes]
    poll_interval = 1
    poll_timeout = 2
    [runners.kubernetes.node_selector]
      "disktype" = "ssd"
"#;
    let fleet = start_under_entry(&sim, entry, 1).await;
    let mut stuck = job("stuck", "alpine:3.19");
    stuck.expect = Expect::Failed;
    let stuck = sim.add_job(stuck).unwrap();
    // The next job runs: the worker is not held up by the one that never started.
    let mut next = job("next", "alpine:3.19");
    next.expect = Expect::Failed;
    let next = sim.add_job(next).unwrap();
    all_finished(&sim).await;

    for id in [stuck, next] {
        let job = sim.job(id).unwrap();
        let trace = job.trace_text();
        assert_eq!(job.state, JobState::Failed, "{trace}");
        assert_eq!(job.failure_reason.as_deref(), Some("runner_system_failure"));
        assert!(
            trace.contains("timed out waiting for pod to start (last phase: Pending); PodScheduled is false (Unschedulable: 0/1 nodes are available"),
            "the log says why the Pod waited: {trace}"
        );
        assert!(
            trace.contains("WARNING: Event retrieved from the cluster: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector"),
            "the scheduler's Warning event is in the log: {trace}"
        );
    }
    drop(fleet);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_canceled_while_its_pod_waits_for_a_node_ends_at_once() {
    let sim = gitlab().await;
    // Far longer than `all_finished` waits: only the cancel can end this job in time.
    let entry = r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes]
    poll_timeout = 3600
    [runners.kubernetes.node_selector]
      "disktype" = "ssd"
"#;
    let fleet = start_under_entry(&sim, entry, 1).await;
    let mut stuck = job("stuck", "alpine:3.19");
    stuck.expect = Expect::Canceled;
    let stuck = sim.add_job(stuck).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let unschedulable = |pod: Option<&Pod>| {
        pod.and_then(|pod| pod.status.as_ref())
            .and_then(|status| status.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
    };
    let name = format!("flotilla-job-{stuck}");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(pods.clone(), &name, unschedulable),
    )
    .await
    .expect("the job's Pod waits for a node")
    .unwrap();

    assert_eq!(sim.cancel(stuck, true).unwrap(), JobState::Canceling);
    all_finished(&sim).await;
    let job = sim.job(stuck).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Canceled, "{trace}");
    assert!(!trace.contains("timed out waiting for pod"), "{trace}");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(pods, &name, |pod: Option<&Pod>| pod.is_none()),
    )
    .await
    .expect("the canceled job's Pod is deleted")
    .unwrap();
    drop(fleet);
}

fn entry_with_account(account: &str, attempts: u32) -> String {
    format!(
        r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes]
    service_account = "{account}"
    resource_availability_check_max_attempts = {attempts}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_service_account_fails_the_job_after_the_availability_checks() {
    let sim = gitlab().await;
    let _fleet = start_under_entry(&sim, &entry_with_account("absent-account", 1), 1).await;
    let mut missing = job("missing-account", "alpine:3.19");
    missing.expect = Expect::Failed;
    let id = sim.add_job(missing).unwrap();
    all_finished(&sim).await;
    let job = sim.job(id).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Failed, "{trace}");
    assert!(
        trace.contains("Timed out while waiting for ServiceAccount/absent-account to be present in the cluster"),
        "{trace}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_waits_for_a_service_account_that_appears_within_the_checks() {
    let sim = gitlab().await;
    let fleet = start_under_entry(&sim, &entry_with_account("late-account", 3), 1).await;
    let id = sim.add_job(job("late-account", "alpine:3.19")).unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while sim.job(id).unwrap().state != JobState::Running {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the job is picked up");
    // Created while the worker checks for it (three checks span ten seconds).
    let accounts: Api<ServiceAccount> = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let account: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "late-account"}})).unwrap();
    accounts.create(&PostParams::default(), &account).await.unwrap();
    all_finished(&sim).await;
    let job = sim.job(id).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Success, "{trace}");
    assert!(trace.contains("the job ran"), "{trace}");
}
