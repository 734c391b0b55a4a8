//! The real binaries as an operator runs them: `--help`, a config refused with its key named,
//! `--check`, and `make demo`'s script running the whole fleet as separate processes on the
//! demo pipeline (`make test` builds every binary first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn binary(name: &str) -> Command {
    let path = root().join("target/debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: `make test` builds every binary first",
        path.display()
    );
    Command::new(path)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_binary_says_what_it_is() {
    for (name, words) in [
        ("flotilla-coordinator", "polls GitLab's runner API"),
        ("flotilla-worker", "one per Kubernetes cluster"),
        ("flotilla-log-shipper", "workers stream job logs to it"),
        ("flotilla-helper", "Pod"),
        ("fleetctl", "fleet"),
        ("gitlab-sim", "GitLab stand-in"),
        ("kube-sim", "Kubernetes API server stand-in"),
    ] {
        let output = binary(name).arg("--help").output().unwrap();
        assert!(output.status.success(), "{name} --help: {}", text(&output));
        assert!(
            text(&output).contains(words),
            "{name} --help says {words:?}:\n{}",
            text(&output)
        );
    }
}

#[test]
fn a_bad_config_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("worker.toml");
    std::fs::write(
        &file,
        "[worker]\nid = \"w\"\ncoordinator_url = \"http://127.0.0.1:7600\"\ntoken = \"t\"\ncluster = \"c\"\ncapacity = 0\n",
    )
    .unwrap();
    let output = binary("flotilla-worker").arg("--config").arg(&file).output().unwrap();
    assert!(!output.status.success());
    let said = text(&output);
    assert!(said.contains("worker.capacity: must be at least 1"), "{said}");
    assert!(!said.contains("token = "), "{said}");
}

#[test]
fn check_validates_the_demo_coordinator_config() {
    let config = root().join("deploy/demo/coordinator.toml");
    let output = binary("flotilla-coordinator")
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .env("GITLAB_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("ok (1 runner entry, 2 pools)"),
        "{}",
        text(&output)
    );

    // The same file without its pools cannot run a fleet: refused, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let without_pools = dir.path().join("config.toml");
    let full = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&without_pools, full.split("[[coordinator.pools]]").next().unwrap()).unwrap();
    let output = binary("flotilla-coordinator")
        .arg("--config")
        .arg(&without_pools)
        .arg("--check")
        .env("GITLAB_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("coordinator.pools: no worker pool"),
        "{}",
        text(&output)
    );
}

/// `make demo` without the build: gitlab-sim, two kube-sim clusters, the coordinator, the
/// log-shipper and two workers as separate processes; every job of the demo pipeline ends as
/// expected, on both clusters, with the masked value kept out of GitLab.
#[test]
fn the_demo_fleet_runs_the_demo_pipeline() {
    let output = Command::new(root().join("scripts/demo.sh")).output().unwrap();
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("10/10 jobs ended as expected"), "{said}");
    assert!(said.contains("the token is [MASKED]"), "{said}");
    // Ten jobs of a second or more for six slots: whichever worker registers first, the other
    // is in long before the queue drains. The final `fleetctl status` shows where each ran.
    for cluster in ["cluster-a", "cluster-b"] {
        let ran_there = said
            .lines()
            .filter(|line| line.split_whitespace().nth(3) == Some(cluster))
            .count();
        assert!(ran_there > 0, "work landed on {cluster}:\n{said}");
    }
}

#[test]
fn render_pod_prints_what_the_worker_would_create() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        r#"{"id": 5, "token": "glcbt-do-not-print", "job_info": {"name": "build", "project_name": "app"},
            "runner_info": {"timeout": 600}, "steps": [], "variables": [], "image": {"name": "rust:1"}}"#,
    )
    .unwrap();
    let output = binary("flotilla-worker")
        .args(["render-pod", "--config"])
        .arg(root().join("deploy/demo/coordinator.toml"))
        .arg("--job")
        .arg(&job)
        .env("GITLAB_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("kind: Secret") && said.contains("kind: Pod"), "{said}");
    assert!(
        said.contains("name: flotilla-job-5") && said.contains("image: rust:1"),
        "{said}"
    );
    assert!(!said.contains("glcbt-do-not-print"), "the job token stays out: {said}");
}
