//! A job's `services:` run as `svc-N` containers of its Pod (issue 5): started with the
//! entrypoint and command the job gives, reachable from the build container by alias and on
//! localhost (the Pod's containers share its network).

use flotilla_e2e::gitlab::{all_finished, gitlab};
use flotilla_e2e::start;
use gitlab_sim::pipeline::ServiceSpec;
use gitlab_sim::{JobSpec, JobState};

#[tokio::test(flavor = "multi_thread")]
async fn a_service_is_reachable_by_its_alias() {
    let sim = gitlab().await;
    let _fleet = start(sim.url(), &sim.runner_tokens()[0], 1, 1).await;
    let mut job = JobSpec::new(
        "with-a-service",
        [
            "getent hosts cache | grep -q 127.0.0.1 && echo cache-resolves-to-localhost",
            "for i in $(seq 1 100); do pgrep -f service-marker-1234 >/dev/null && break; sleep 0.1; done",
            "pgrep -f service-marker-1234 >/dev/null && echo the-service-runs",
        ],
    )
    .variable("GIT_STRATEGY", "none");
    job.services = vec![ServiceSpec {
        name: "redis:7".into(),
        alias: Some("cache".into()),
        entrypoint: vec!["sh".into(), "-c".into()],
        command: vec!["sleep 300; echo service-marker-1234".into()],
    }];
    let id = sim.add_job(job).unwrap();
    all_finished(&sim).await;
    let job = sim.job(id).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Success, "{trace}");
    assert!(trace.contains("\ncache-resolves-to-localhost\n"), "{trace}");
    assert!(trace.contains("\nthe-service-runs\n"), "{trace}");
}
