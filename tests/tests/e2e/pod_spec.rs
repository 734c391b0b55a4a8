//! The entry's `pod_spec` patches (`FF_USE_ADVANCED_POD_SPEC_CONFIGURATION`) end to end: the
//! patched Pod is accepted by kube-sim and the job sees the patch; a patch that does not apply
//! fails the job as a configuration error, and the worker goes on.

use flotilla_e2e::gitlab::{all_finished, gitlab, start_under_entry};
use gitlab_sim::{Expect, JobSpec, JobState};

const ENTRY: &str = r#"
[[runners]]
  url = "https://gitlab.example.com"
  token = "t"
  executor = "kubernetes"
  [runners.feature_flags]
    FF_USE_ADVANCED_POD_SPEC_CONFIGURATION = true
  [runners.kubernetes]
  [[runners.kubernetes.pod_spec]]
    name = "build-env"
    patch = '''
      containers:
      - name: build
        env:
        - name: PATCHED_BY
          value: pod-spec
    '''
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_patched_pod_runs_the_job_and_a_broken_patch_fails_it() {
    let sim = gitlab().await;
    let broken = format!(
        "{ENTRY}  [[runners.kubernetes.pod_spec]]\n    name = \"broken\"\n    patch_type = \"json\"\n    patch = '[{{\"op\": \"remove\", \"path\": \"/priority\"}}]'\n"
    );
    let patched_fleet = start_under_entry(&sim, ENTRY, 1).await;
    let job = JobSpec::new("patched", ["echo \"patched-by=$PATCHED_BY\""]).variable("GIT_STRATEGY", "none");
    let patched = sim.add_job(job).unwrap();
    all_finished(&sim).await;
    let job = sim.job(patched).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Success, "{trace}");
    assert!(trace.contains("\npatched-by=pod-spec\n"), "{trace}");
    assert!(
        trace.contains(
            "WARNING: Advanced Pod Spec configuration enabled, merging the provided PodSpec to the generated one."
        ),
        "{trace}"
    );
    drop(patched_fleet);

    let _broken_fleet = start_under_entry(&sim, &broken, 1).await;
    let mut job = JobSpec::new("broken", ["echo never runs"]).variable("GIT_STRATEGY", "none");
    job.expect = Expect::Failed;
    let failed = sim.add_job(job).unwrap();
    all_finished(&sim).await;
    let job = sim.job(failed).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Failed, "{trace}");
    assert_eq!(job.failure_reason.as_deref(), Some("runner_configuration_error"));
    assert!(
        trace.contains("ERROR: Job failed: pod_spec patch \"broken\": "),
        "{trace}"
    );
}
