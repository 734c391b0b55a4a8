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
