//! `fleetctl` (the real binary) against a running fleet: every admin command, as tables for
//! people and JSON for scripts, and the exit codes scripts rely on.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use flotilla_e2e::{start, status_until, ADMIN_TOKEN};
use gitlab_sim::{GitlabSim, JobSpec, SimConfig};

struct Ctl<'a> {
    admin_url: &'a str,
}

impl Ctl<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/fleetctl");
        assert!(path.exists(), "`make test` builds fleetctl first");
        std::process::Command::new(path)
            .args(["--coordinator", self.admin_url, "--token", ADMIN_TOKEN])
            .args(args)
            .env_remove("FLEETCTL_TOKEN")
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "fleetctl {args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("JSON output parses")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_admin_command_for_people_and_scripts() {
    let sim = GitlabSim::start(SimConfig {
        long_poll: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let fleet = start(sim.url(), &sim.runner_tokens()[0], 2, 2).await;
    status_until(&fleet, |s| s.workers.len() == 2).await;
    let ctl = Ctl {
        admin_url: &fleet.admin_url,
    };

    let workers = ctl.ok(&["workers"]);
    assert!(workers.starts_with("WORKER "), "{workers}");
    assert!(workers.contains("worker-cluster-a") && workers.contains("0/2") && workers.contains("ready"));
    let json = ctl.json(&["workers"]);
    assert_eq!(json["workers"].as_array().unwrap().len(), 2);

    // Drain a cluster: both the table and JSON say so; new work goes to the other cluster.
    let drained = ctl.ok(&["drain", "--cluster", "cluster-a"]);
    assert_eq!(drained, "cluster cluster-a draining (workers: worker-cluster-a)\n");
    let json = ctl.json(&["workers"]);
    let state_of = |json: &serde_json::Value, cluster: &str| {
        json["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["cluster"] == cluster)
            .map(|w| w["state"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(state_of(&json, "cluster-a"), "drained");
    let id = sim
        .add_job(JobSpec::new("listed", ["echo hi"]).variable("GIT_STRATEGY", "none"))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), sim.wait_all_finished())
        .await
        .unwrap();
    status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    ctl.ok(&["uncordon", "--cluster", "cluster-a"]);
    assert_eq!(state_of(&ctl.json(&["workers"]), "cluster-a"), "ready");
    assert_eq!(
        ctl.ok(&["cordon", "worker-cluster-b"]),
        "worker worker-cluster-b cordoned (workers: worker-cluster-b)\n"
    );
    assert_eq!(state_of(&ctl.json(&["workers"]), "cluster-b"), "cordoned");

    // Jobs, filtered, and one job in detail.
    let jobs = ctl.ok(&["jobs", "--state", "done", "--cluster", "cluster-b"]);
    assert!(jobs.contains(&id.to_string()) && jobs.contains("listed"), "{jobs}");
    let none = ctl.json(&["jobs", "--cluster", "cluster-a"]);
    assert_eq!(none["jobs"].as_array().unwrap().len(), 0, "the job ran on cluster-b");
    let detail = ctl.ok(&["job", &id.to_string()]);
    assert!(
        detail.contains("State           done") && detail.contains("Cluster         cluster-b"),
        "{detail}"
    );
    assert!(
        detail.contains("Log (end):\n") && detail.contains("\n  | hi\n"),
        "{detail}"
    );
    assert!(detail.ends_with("  | Job succeeded\n"), "{detail}");
    let detail = ctl.json(&["job", &id.to_string(), "--tail", "1"]);
    assert_eq!(
        (detail["result"].as_str(), detail["dispatches"].as_u64()),
        (Some("success"), Some(1))
    );
    assert_eq!(detail["trace_tail"], serde_json::json!(["Job succeeded"]));

    // Overflow switch.
    assert!(ctl
        .ok(&["overflow", "status"])
        .starts_with("overflow: auto (0 overflow worker(s)"));
    assert_eq!(ctl.json(&["overflow", "on"])["mode"], "on");
    assert_eq!(ctl.json(&["status"])["overflow_mode"], "on");
    ctl.ok(&["overflow", "auto"]);

    // Cancel, and the exit codes of what cannot be done.
    let refused = ctl.run(&["cancel", &id.to_string()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("has already ended (done)"));
    let unknown = ctl.run(&["job", "999999"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("the coordinator has no job 999999"));
    let usage = ctl.run(&["cordon"]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "naming neither a worker nor a cluster is a usage error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_tokens_and_an_absent_coordinator_have_their_own_exit_codes() {
    let sim = GitlabSim::start(SimConfig::default()).await.unwrap();
    let fleet = start(sim.url(), &sim.runner_tokens()[0], 0, 1).await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/fleetctl");
    let wrong = std::process::Command::new(&path)
        .args([
            "--coordinator",
            &fleet.admin_url,
            "--token",
            "not-the-admin-token",
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("admin token refused") && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-admin-token"));

    let away = std::process::Command::new(&path)
        .args(["--coordinator", "http://127.0.0.1:9", "status"])
        .output()
        .unwrap();
    assert_eq!(away.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&away.stderr).contains("cannot reach the coordinator at http://127.0.0.1:9"));
}
