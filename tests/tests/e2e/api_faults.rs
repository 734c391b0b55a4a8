//! A Kubernetes API server that fails requests for a while, as an overloaded or restarting one
//! does (`500`, `502`): the worker retries each of a job's requests (its entry's
//! `retry_limit`, `retry_limits`, `retry_backoff_max`) and the jobs succeed with their whole
//! log, instead of failing as system failures.

use flotilla_e2e::gitlab::{all_finished, gitlab, start_under_entry};
use gitlab_sim::{JobSpec, JobState};
use kube_sim::faults::ErrorFault;

fn entry(retry: &str) -> String {
    format!(
        r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.kubernetes]
    retry_backoff_max = 500
    {retry}
"#
    )
}

fn job(name: &str) -> JobSpec {
    JobSpec::new(name, ["echo first-line", "echo last-line"]).variable("GIT_STRATEGY", "none")
}

fn assert_succeeded(sim: &gitlab_sim::GitlabSim, id: u64) {
    let job = sim.job(id).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Success, "{trace}");
    assert!(
        trace.contains("\nfirst-line\n") && trace.contains("\nlast-line\n"),
        "{trace}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_requests_of_a_job_are_retried() {
    let sim = gitlab().await;
    let fleet = start_under_entry(&sim, &entry(""), 1).await;
    // The job's Secret, then its Pod, are refused four times each: the fifth of the default
    // five tries goes through.
    let faults = fleet.clusters[0].faults();
    faults.set_errors(Some(ErrorFault {
        method: Some("POST".into()),
        path_contains: Some("/secrets".into()),
        remaining: Some(4),
        ..ErrorFault::new(500, 1.0)
    }));
    let first = sim.add_job(job("retried-secret")).unwrap();
    all_finished(&sim).await;
    assert_succeeded(&sim, first);

    faults.set_errors(Some(ErrorFault {
        method: Some("POST".into()),
        path_contains: Some("/pods".into()),
        remaining: Some(4),
        ..ErrorFault::new(502, 1.0)
    }));
    let second = sim.add_job(job("retried-pod")).unwrap();
    all_finished(&sim).await;
    assert_succeeded(&sim, second);
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_run_through_an_api_server_that_fails_a_share_of_requests() {
    let sim = gitlab().await;
    let fleet = start_under_entry(&sim, &entry("retry_limit = 12"), 2).await;
    // Every request has a one-in-five chance of a 500 while the jobs run (kube's client
    // retries 429, 503 and 504 by itself, not these); twelve tries make a request that fails
    // for good a one-in-240-million event.
    fleet.clusters[0].faults().set_errors(Some(ErrorFault::new(500, 0.2)));
    let ids: Vec<u64> = (0..2)
        .map(|n| sim.add_job(job(&format!("unlucky-{n}"))).unwrap())
        .collect();
    all_finished(&sim).await;
    for id in ids {
        assert_succeeded(&sim, id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_the_entry_does_not_retry_fails_the_job() {
    let sim = gitlab().await;
    // One try for the fault's own text: one refusal of the job's Pod fails it for good.
    let fleet = start_under_entry(
        &sim,
        &entry("[runners.kubernetes.retry_limits]\n\"kube-sim fault injection\" = 1"),
        1,
    )
    .await;
    fleet.clusters[0].faults().set_errors(Some(ErrorFault {
        method: Some("POST".into()),
        path_contains: Some("/pods".into()),
        remaining: Some(1),
        ..ErrorFault::new(500, 1.0)
    }));
    let mut failing = job("not-retried");
    failing.expect = gitlab_sim::Expect::Failed;
    let id = sim.add_job(failing).unwrap();
    all_finished(&sim).await;
    let job = sim.job(id).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Failed, "{trace}");
    assert_eq!(job.failure_reason.as_deref(), Some("runner_system_failure"));
    assert!(
        trace.contains("kube-sim fault injection"),
        "the log says what failed: {trace}"
    );
}
