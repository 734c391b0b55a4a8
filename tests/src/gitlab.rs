//! gitlab-sim as the tests' GitLab: started with short polls, and the waits every scenario
//! needs.

use std::time::Duration;

use gitlab_sim::{GitlabSim, SimConfig};

/// A gitlab-sim that holds idle job requests briefly and asks for trace updates every second.
pub async fn gitlab() -> GitlabSim {
    GitlabSim::start(SimConfig {
        long_poll: Duration::from_millis(300),
        trace_update_interval: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// Waits until every job has ended in GitLab.
pub async fn all_finished(sim: &GitlabSim) {
    tokio::time::timeout(Duration::from_secs(90), sim.wait_all_finished())
        .await
        .expect("every job ends");
}

/// Waits until `line` is in the job's trace in GitLab.
pub async fn wait_for_line(sim: &GitlabSim, id: u64, line: &str) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !sim.job(id).unwrap().trace_text().contains(line) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{line:?} reaches GitLab"));
}

/// A job that prints 20 numbered `before-N` lines, pauses `pause_seconds`, then 20 `after-N`
/// lines: the survivor of the interruption tests (which interrupt it during the pause).
pub fn survivor_job(pause_seconds: u32) -> gitlab_sim::JobSpec {
    gitlab_sim::JobSpec::new(
        "survivor",
        [
            "for i in $(seq 1 20); do echo before-$i; done".to_string(),
            format!("sleep {pause_seconds}"),
            "for i in $(seq 1 20); do echo after-$i; done".to_string(),
        ],
    )
    .variable("GIT_STRATEGY", "none")
}

/// The survivor job ended well: every line of it exactly once in GitLab, nothing lost or
/// repeated, and the final update carried the whole log's checksum.
pub fn assert_survived(sim: &GitlabSim, id: u64) {
    let job = sim.job(id).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, gitlab_sim::JobState::Success, "{trace}");
    for i in 1..=20 {
        for phase in ["before", "after"] {
            let line = format!("\n{phase}-{i}\n");
            assert_eq!(trace.matches(&line).count(), 1, "{line:?} exactly once:\n{trace}");
        }
    }
    assert_eq!(
        job.checksum_matched,
        Some(true),
        "the final update carries the whole log's checksum"
    );
}

/// A fleet of one cluster with a worker of `capacity`, polling `sim` under the runner entry
/// written in `entry` (a `config.toml` with one `[[runners]]`).
pub async fn start_under_entry(sim: &GitlabSim, entry: &str, capacity: u32) -> crate::Fleet {
    let runner = &flotilla_config::runner_config_from_str(entry)
        .expect("the test's runner entry loads")
        .config
        .runners[0];
    start_under_runner(sim, runner, crate::ClusterSpec::new("cluster-a", capacity)).await
}

/// A fleet of the one `cluster`, polling `sim` under `runner` (as the coordinator hands it on).
pub async fn start_under_runner(
    sim: &GitlabSim,
    runner: &flotilla_config::RunnerConfig,
    cluster: crate::ClusterSpec,
) -> crate::Fleet {
    let mut spec = crate::FleetSpec::new(sim.url(), &sim.runner_tokens()[0], 0, 0);
    spec.clusters = vec![cluster];
    spec.runner_config_json = serde_json::to_string(runner).expect("a runner entry serializes");
    crate::start_fleet(spec).await
}
