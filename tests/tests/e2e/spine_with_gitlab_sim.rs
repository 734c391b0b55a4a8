//! The spine end to end with gitlab-sim, our GitLab stand-in, as GitLab: what
//! `gitlab-runner-mock` cannot show — a real clone of the project over HTTP with the job token,
//! `before_script`/`after_script` as GitLab sends them, a graceful cancel (`canceling`) that
//! still runs `after_script`, and GitLab's view of each trace's checksum.

use std::time::Duration;

use flotilla_e2e::gitlab::{all_finished, gitlab};
use flotilla_e2e::{start, status_until};
use gitlab_sim::{Expect, JobSpec, JobState};

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_jobs_end_as_gitlab_expects() {
    let sim = gitlab().await;
    let token = sim.runner_tokens()[0].clone();
    let fleet = start(sim.url(), &token, 2, 2).await;
    // Both workers are in before GitLab has jobs, so the spread does not depend on timing.
    status_until(&fleet, |s| s.workers.len() == 2).await;

    let mut echo = JobSpec::new("echo", ["echo the-line-we-look-for"]).variable("GIT_STRATEGY", "none");
    echo.before_script = vec!["echo before-line".into()];
    echo.after_script = vec!["echo after-line".into()];
    let echo = sim.add_job(echo).unwrap();
    let mut fails =
        JobSpec::new("fails", ["echo about to fail", "exit 3", "echo not-reached"]).variable("GIT_STRATEGY", "none");
    fails.expect = Expect::Failed;
    let fails = sim.add_job(fails).unwrap();
    let masked = sim
        .add_job(
            JobSpec::new("masked", ["echo \"value is $SECRET_VALUE\""])
                .variable("GIT_STRATEGY", "none")
                .masked_variable("SECRET_VALUE", "hush-hush-value-1"),
        )
        .unwrap();
    let clone = sim
        .add_job(JobSpec::new("clone", ["git log -1 --format=commit-%H", "ls"]).variable("GIT_STRATEGY", "clone"))
        .unwrap();
    all_finished(&sim).await;

    let echo = sim.job(echo).unwrap();
    assert_eq!(echo.state, JobState::Success, "{}", echo.trace_text());
    let trace = echo.trace_text();
    assert_eq!(trace.matches("\nthe-line-we-look-for\n").count(), 1, "{trace}");
    let before = trace.find("\nbefore-line\n").expect("before_script ran");
    let after = trace.find("\nafter-line\n").expect("after_script ran");
    assert!(
        before < trace.find("\nthe-line-we-look-for\n").unwrap() && after > before,
        "{trace}"
    );

    let fails = sim.job(fails).unwrap();
    assert_eq!(fails.state, JobState::Failed);
    assert_eq!(fails.failure_reason.as_deref(), Some("script_failure"));
    assert_eq!(fails.exit_code, Some(3));
    assert!(!fails.trace_text().contains("\nnot-reached\n"));

    let masked = sim.job(masked).unwrap();
    assert_eq!(masked.state, JobState::Success);
    assert!(
        masked.trace_text().contains("value is [MASKED]"),
        "{}",
        masked.trace_text()
    );
    assert!(!masked.trace_text().contains("hush-hush-value-1"));

    let clone = sim.job(clone).unwrap();
    assert_eq!(clone.state, JobState::Success, "{}", clone.trace_text());
    assert!(
        clone.trace_text().contains(&format!("commit-{}", sim.commit_sha())),
        "the job checked out GitLab's commit:\n{}",
        clone.trace_text()
    );

    for job in sim.jobs() {
        assert_eq!(job.checksum_matched, Some(true), "job {} trace checksum", job.name);
    }
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    let clusters: std::collections::BTreeSet<&str> = status.jobs.iter().map(|j| j.cluster.as_str()).collect();
    assert_eq!(clusters.len(), 2, "jobs ran on both clusters: {:?}", status.jobs);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_cancel_stops_the_script_and_runs_after_script() {
    let sim = gitlab().await;
    let token = sim.runner_tokens()[0].clone();
    let _fleet = start(sim.url(), &token, 1, 1).await;
    let mut long = JobSpec::new("long", ["echo started", "sleep 120", "echo never"]).variable("GIT_STRATEGY", "none");
    long.after_script = vec!["echo after-script-ran".into()];
    long.expect = Expect::Canceled;
    let id = sim.add_job(long).unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !sim.job(id).unwrap().trace_text().contains("\nstarted\n") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job starts");
    assert_eq!(sim.cancel(id, true).unwrap(), JobState::Canceling);
    // Far less than the script's 120 s: the script was stopped.
    all_finished(&sim).await;
    let job = sim.job(id).unwrap();
    assert_eq!(job.state, JobState::Canceled);
    let trace = job.trace_text();
    assert!(
        trace.contains("\nafter-script-ran\n"),
        "after_script runs on a graceful cancel:\n{trace}"
    );
    assert!(!trace.contains("\nnever\n"), "{trace}");
}
