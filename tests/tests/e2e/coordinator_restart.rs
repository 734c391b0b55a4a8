//! The coordinator killed with SIGKILL while a job runs (issue 4): the real
//! `flotilla-coordinator` binary is restarted on the same config and sled store; the worker
//! and the log-shipper reconnect, the worker reports the job it still runs, and the job ends
//! in GitLab with its complete log and the right state — run once, no line lost or repeated.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use flotilla_e2e::gitlab::{assert_survived, survivor_job, wait_for_line};
use flotilla_e2e::{start_fleet, status_until, FleetSpec, ADMIN_TOKEN, POOL_TOKEN};
use gitlab_sim::{GitlabSim, SimConfig};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn coordinator(config: &Path) -> Child {
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/flotilla-coordinator");
    assert!(binary.exists(), "`make test` builds flotilla-coordinator first");
    Command::new(binary)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_survives_a_killed_and_restarted_coordinator() {
    let sim = GitlabSim::start(SimConfig {
        long_poll: Duration::from_millis(300),
        trace_update_interval: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (grpc, admin) = (free_port(), free_port());
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
concurrent = 4
check_interval = 1

[[runners]]
  name = "restart-test"
  url = "{url}"
  token = "{token}"
  executor = "kubernetes"

[coordinator]
  grpc_listen = "127.0.0.1:{grpc}"
  admin_listen = "127.0.0.1:{admin}"
  data_dir = "{data}"
  admin_token = "{ADMIN_TOKEN}"
  heartbeat_interval = "200ms"
  worker_timeout = "2s"
  reconnect_grace = "20s"

  [[coordinator.pools]]
    name = "prod"
    token = "{POOL_TOKEN}"
"#,
            url = sim.url(),
            token = sim.runner_tokens()[0],
            data = dir.path().join("coordinator").display(),
        ),
    )
    .unwrap();
    let mut process = coordinator(&config);
    let mut spec = FleetSpec::new(sim.url(), &sim.runner_tokens()[0], 1, 2);
    spec.coordinator = Some((format!("http://127.0.0.1:{grpc}"), format!("http://127.0.0.1:{admin}")));
    let fleet = start_fleet(spec).await;
    status_until(&fleet, |s| s.workers.len() == 1).await;

    let id = sim.add_job(survivor_job(3)).unwrap();
    wait_for_line(&sim, id, "\nbefore-20\n").await;

    // Operator decisions made before the crash outlive it.
    let mut admin = fleet.admin().await;
    admin
        .overflow(flotilla_proto::OverflowRequest { set_mode: "off".into() })
        .await
        .unwrap();
    admin
        .cordon(flotilla_proto::CordonRequest {
            target: Some(flotilla_proto::cordon_request::Target::Cluster("cluster-a".into())),
            action: "drain".into(),
        })
        .await
        .unwrap();

    process.kill().unwrap(); // SIGKILL: no chance to tidy up
    process.wait().unwrap();
    let mut process = coordinator(&config);

    tokio::time::timeout(Duration::from_secs(60), sim.wait_all_finished())
        .await
        .expect("the job ends after the restart");
    assert_survived(&sim, id);
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    assert_eq!(status.jobs.len(), 1);
    assert_eq!(
        status.jobs[0].dispatches, 1,
        "handed to a worker once, before the restart"
    );
    assert_eq!(status.overflow_mode, "off", "the overflow switch survived the restart");
    assert_eq!(status.workers[0].state, "drained", "so did the drain of cluster-a");
    process.kill().unwrap();
    process.wait().unwrap();
}
