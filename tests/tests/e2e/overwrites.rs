//! Per-job `KUBERNETES_*` overwrites through the whole fleet (issue 5): one the runner entry
//! allows changes the job's Pod; one it does not fails the job in GitLab with
//! `runner_configuration_error` and says which variable and which rule — and the worker goes
//! on with the next job.

use flotilla_e2e::gitlab::start_under_entry;
use flotilla_e2e::gitlab::{all_finished, gitlab};
use gitlab_sim::{Expect, JobSpec, JobState};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

#[tokio::test(flavor = "multi_thread")]
async fn allowed_overwrites_shape_the_pod_and_refused_ones_fail_the_job() {
    let sim = gitlab().await;
    let entry = r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes]
    cpu_limit = "1"
    cpu_limit_overwrite_max_allowed = "2"
"#;
    let fleet = start_under_entry(&sim, entry, 2).await;

    // Kept until it is checked: the Pod stays while the job sleeps.
    let allowed = sim
        .add_job(
            JobSpec::new("allowed", ["sleep 2"])
                .variable("GIT_STRATEGY", "none")
                .variable("KUBERNETES_CPU_LIMIT", "1500m"),
        )
        .unwrap();
    let mut too_much = JobSpec::new("too-much", ["echo never runs"])
        .variable("GIT_STRATEGY", "none")
        .variable("KUBERNETES_CPU_LIMIT", "3");
    too_much.expect = Expect::Failed;
    let too_much = sim.add_job(too_much).unwrap();

    let pods: Api<Pod> = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let name = flotilla_worker::pod::object_name(allowed);
    let pod = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            if let Ok(pod) = pods.get(&name).await {
                return pod;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the allowed job's Pod is created");
    let build = &pod.spec.unwrap().containers[0];
    assert_eq!(
        build.resources.as_ref().unwrap().limits.as_ref().unwrap()["cpu"].0,
        "1500m"
    );

    all_finished(&sim).await;
    let allowed = sim.job(allowed).unwrap();
    assert_eq!(allowed.state, JobState::Success);
    assert!(
        allowed
            .trace_text()
            .contains("KUBERNETES_CPU_LIMIT overwrites the runner's setting with \"1500m\""),
        "the job log says what was overwritten: {}",
        allowed.trace_text()
    );
    let refused = sim.job(too_much).unwrap();
    assert_eq!(refused.state, JobState::Failed);
    assert_eq!(refused.failure_reason.as_deref(), Some("runner_configuration_error"));
    let trace = refused.trace_text();
    assert!(
        trace.contains(
            "ERROR: Job failed: couldn't prepare overwrites: KUBERNETES_CPU_LIMIT=\"3\": is more than cpu_limit_overwrite_max_allowed (2)"
        ),
        "the job's own configuration is no system failure: {trace}"
    );
    assert!(!trace.contains("never runs"));
}

/// The runner entry's `namespace`, and `KUBERNETES_NAMESPACE_OVERWRITE` where the entry allows
/// it: each job's Pod is created, followed and deleted in its own namespace.
#[tokio::test(flavor = "multi_thread")]
async fn jobs_run_in_the_entrys_namespace_or_an_allowed_overwrite() {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::PostParams;

    let sim = gitlab().await;
    let entry = r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes]
    namespace = "ci-default"
    namespace_overwrite_allowed = "ci-.*"
"#;
    let fleet = start_under_entry(&sim, entry, 2).await;
    let client = fleet.workers[0].0.kube.clone();
    for name in ["ci-default", "ci-other", "ci-main"] {
        let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }
    let plain = sim
        .add_job(JobSpec::new("plain", ["sleep 2"]).variable("GIT_STRATEGY", "none"))
        .unwrap();
    let moved = sim
        .add_job(
            JobSpec::new("moved", ["sleep 2"])
                .variable("GIT_STRATEGY", "none")
                .variable("KUBERNETES_NAMESPACE_OVERWRITE", "ci-other"),
        )
        .unwrap();
    // The seed's example: the overwrite names the branch through a variable.
    let by_branch = sim
        .add_job(
            JobSpec::new("by-branch", ["sleep 2"])
                .variable("GIT_STRATEGY", "none")
                .variable("KUBERNETES_NAMESPACE_OVERWRITE", "ci-${CI_COMMIT_REF_SLUG}"),
        )
        .unwrap();
    for (job, namespace) in [(plain, "ci-default"), (moved, "ci-other"), (by_branch, "ci-main")] {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let name = flotilla_worker::pod::object_name(job);
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while pods.get(&name).await.is_err() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("job {job}'s Pod appears in {namespace}"));
    }
    all_finished(&sim).await;
    assert_eq!(sim.job(plain).unwrap().state, JobState::Success);
    assert_eq!(sim.job(moved).unwrap().state, JobState::Success);
    assert_eq!(sim.job(by_branch).unwrap().state, JobState::Success);
}

/// `namespace_per_job`: each job gets a `ci-job-<id>` namespace, created before its Pod and
/// deleted with it.
#[tokio::test(flavor = "multi_thread")]
async fn namespace_per_job_creates_and_removes_the_jobs_namespace() {
    use k8s_openapi::api::core::v1::Namespace;

    let sim = gitlab().await;
    let entry = "[[runners]]\nurl = \"https://gitlab.example.com\"\ntoken = \"t\"\nexecutor = \"kubernetes\"\n[runners.kubernetes]\nnamespace_per_job = true\n";
    let fleet = start_under_entry(&sim, entry, 1).await;
    let client = fleet.workers[0].0.kube.clone();
    let id = sim
        .add_job(JobSpec::new("isolated", ["sleep 1"]).variable("GIT_STRATEGY", "none"))
        .unwrap();
    let namespace = format!("ci-job-{id}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let name = flotilla_worker::pod::object_name(id);
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while pods.get(&name).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the Pod appears in the job's own namespace");
    all_finished(&sim).await;
    assert_eq!(sim.job(id).unwrap().state, JobState::Success);
    let namespaces: Api<Namespace> = Api::all(client);
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while namespaces.get(&namespace).await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the job's namespace is deleted after it");
}

/// A runner entry with its own `host` creates its jobs' Pods on that API server (the worker's
/// own cluster is not used), with the job's `KUBERNETES_BEARER_TOKEN` where the entry allows
/// it: the right token runs the job there; a wrong one is refused by the API server and fails
/// the job, without the token in its log.
#[tokio::test(flavor = "multi_thread")]
async fn an_entrys_own_host_is_used_with_the_jobs_bearer_token() {
    let sim = gitlab().await;
    let dir = tempfile::tempdir().unwrap();
    let (elsewhere, elsewhere_client) = flotilla_e2e::cluster(dir.path(), "elsewhere").await;
    let ca_file = dir.path().join("elsewhere-ca.pem");
    std::fs::write(&ca_file, elsewhere.ca_pem().expect("kube-sim serves TLS")).unwrap();
    let entry = format!(
        r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes]
    host = "{}"
    ca_file = "{}"
    bearer_token_overwrite_allowed = true
"#,
        elsewhere.url(),
        ca_file.display()
    );
    let fleet = start_under_entry(&sim, &entry, 2).await;
    let right = sim
        .add_job(
            JobSpec::new("right-token", ["sleep 1", "echo ran elsewhere"])
                .variable("GIT_STRATEGY", "none")
                .masked_variable("KUBERNETES_BEARER_TOKEN", elsewhere.token()),
        )
        .unwrap();
    let mut wrong = JobSpec::new("wrong-token", ["echo never runs"])
        .variable("GIT_STRATEGY", "none")
        .variable("KUBERNETES_BEARER_TOKEN", "not-the-token");
    wrong.expect = Expect::Failed;
    let wrong = sim.add_job(wrong).unwrap();

    let name = flotilla_worker::pod::object_name(right);
    let there: Api<Pod> = Api::default_namespaced(elsewhere_client);
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while there.get(&name).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job's Pod is created on the entry's host");
    all_finished(&sim).await;
    let here: Api<Pod> = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    assert!(
        here.get_opt(&name).await.unwrap().is_none(),
        "not in the worker's cluster"
    );

    let right = sim.job(right).unwrap();
    let trace = right.trace_text();
    assert_eq!(right.state, JobState::Success, "{trace}");
    assert!(
        trace.contains("ran elsewhere")
            && trace.contains("KUBERNETES_BEARER_TOKEN overwrites the runner's bearer token")
    );
    assert!(!trace.contains(elsewhere.token()), "{trace}");
    let wrong = sim.job(wrong).unwrap();
    let trace = wrong.trace_text();
    assert_eq!(wrong.state, JobState::Failed, "{trace}");
    assert!(
        trace.contains("Unauthorized"),
        "the API server's refusal is in the log: {trace}"
    );
    assert!(!trace.contains("not-the-token"), "{trace}");
}

/// An entry's `context` (without `host`): its jobs' Pods go to that context of the worker's
/// kubeconfig, as the official runner looks the context up in its own; a context the
/// kubeconfig does not have fails the job as a configuration error.
#[tokio::test(flavor = "multi_thread")]
async fn an_entrys_context_of_the_workers_kubeconfig_is_used() {
    use kube::config::Kubeconfig;

    let sim = gitlab().await;
    let dir = tempfile::tempdir().unwrap();
    let (_elsewhere, elsewhere_client) = flotilla_e2e::cluster(dir.path(), "elsewhere").await;
    let entry = |context: &str| {
        format!(
            "[[runners]]\n  url = \"https://gitlab.example.com\"\n  token = \"t\"\n  executor = \"kubernetes\"\n  \
             [runners.kubernetes]\n    context = \"{context}\"\n"
        )
    };
    let fleet = start_under_entry(&sim, &entry("elsewhere"), 1).await;
    // The worker's kubeconfig gets a second context, for the other cluster.
    let own = fleet.dir.path().join("cluster-a.kubeconfig");
    let merged = Kubeconfig::read_from(&own)
        .unwrap()
        .merge(Kubeconfig::read_from(dir.path().join("elsewhere.kubeconfig")).unwrap())
        .unwrap();
    std::fs::write(&own, serde_json::to_vec(&merged).unwrap()).unwrap();

    let id = sim
        .add_job(JobSpec::new("in-context", ["echo ran in the context"]).variable("GIT_STRATEGY", "none"))
        .unwrap();
    let name = flotilla_worker::pod::object_name(id);
    let there: Api<Pod> = Api::default_namespaced(elsewhere_client);
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while there.get(&name).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job's Pod is created in the entry's context");
    all_finished(&sim).await;
    let job = sim.job(id).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Success, "{trace}");
    assert!(trace.contains("\nran in the context\n"), "{trace}");
    drop(fleet);

    let _fleet = start_under_entry(&sim, &entry("nowhere"), 1).await;
    let mut lost = JobSpec::new("no-context", ["echo never runs"]).variable("GIT_STRATEGY", "none");
    lost.expect = Expect::Failed;
    let id = sim.add_job(lost).unwrap();
    all_finished(&sim).await;
    let job = sim.job(id).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Failed, "{trace}");
    assert_eq!(job.failure_reason.as_deref(), Some("runner_configuration_error"));
    assert!(trace.contains("nowhere"), "the log names the context: {trace}");
}
