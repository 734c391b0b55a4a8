//! The `gitlab-sim` binary: start-up line, `--exit-when-done` exit codes, `--state-file`, signals.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::runner_info;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const PIPELINE: &str = r#"
project: demo/app
jobs:
  - name: build
    stage: build
    image: alpine:3.19
    variables:
      API_KEY: {value: "s3cr3t-value-123", masked: true}
    script: ["echo hello"]
    expect: success
  - name: lint
    script: ["exit 1"]
    expect: failed
"#;

struct Sim {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    url: String,
    token: String,
}

async fn start(dir: &Path, extra: &[&str]) -> Sim {
    let pipeline = dir.join("pipeline.yml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitlab-sim"))
        .args(["--listen", "127.0.0.1:0", "--pipeline"])
        .arg(&pipeline)
        .args(["--runner-token", "glrt-cli-token", "--long-poll", "0s"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("start-up line");
    let url = first
        .strip_prefix("gitlab-sim listening on ")
        .expect(&first)
        .to_string();
    let second = lines.next_line().await.unwrap().unwrap();
    let token = second.strip_prefix("gitlab-sim runner token ").unwrap().to_string();
    Sim {
        child,
        lines,
        url,
        token,
    }
}

/// Takes the next job and finishes it with `state`, trace and checksum like the official runner.
async fn run_job(http: &reqwest::Client, sim: &Sim, state: &str) -> Value {
    let response = http
        .post(format!("{}/api/v4/jobs/request", sim.url))
        .json(&json!({"token": sim.token, "info": runner_info()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let job: Value = response.json().await.unwrap();
    let token = job["token"].as_str().unwrap();
    let trace = format!("running {}\nline two\n", job["job_info"]["name"].as_str().unwrap());
    let patch = http
        .patch(format!("{}/api/v4/jobs/{}/trace", sim.url, job["id"]))
        .header("JOB-TOKEN", token)
        .header("Content-Type", "text/plain")
        .header("Content-Range", format!("0-{}", trace.len() - 1))
        .body(trace.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::ACCEPTED);
    let checksum = format!("crc32:{:08x}", crc32(trace.as_bytes()));
    let mut body = json!({"token": token, "state": state,
                          "output": {"checksum": checksum, "bytesize": trace.len()}});
    if state == "failed" {
        body["failure_reason"] = json!("script_failure");
        body["exit_code"] = json!(1);
    }
    let put = http
        .put(format!("{}/api/v4/jobs/{}", sim.url, job["id"]))
        .header("JOB-TOKEN", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    job
}

/// CRC-32 (IEEE), written out so the test does not reuse the simulator's code.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn rest_of_stdout(sim: Sim) -> (std::process::ExitStatus, String) {
    let Sim { mut child, lines, .. } = sim;
    let mut out = String::new();
    lines.into_inner().read_to_string(&mut out).await.unwrap();
    (child.wait().await.unwrap(), out)
}

#[tokio::test]
async fn exits_zero_when_every_job_ends_as_expected() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    let sim = start(
        dir.path(),
        &["--exit-when-done", "--state-file", state_file.to_str().unwrap()],
    )
    .await;
    let http = reqwest::Client::new();
    let build = run_job(&http, &sim, "success").await;
    assert_eq!(build["job_info"]["name"], "build");
    let api_key = build["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "API_KEY")
        .unwrap();
    assert_eq!(api_key["masked"], true);
    run_job(&http, &sim, "failed").await;

    let (status, out) = rest_of_stdout(sim).await;
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("2/2 jobs ended as expected"), "{out}");
    assert!(out.contains("script_failure"), "{out}");
    assert!(out.contains("  | line two"), "{out}");
    let state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["all_as_expected"], true);
    assert_eq!(state["jobs"][0]["checksum_matched"], true);
    assert_eq!(state["jobs"][1]["exit_code"], 1);
}

#[tokio::test]
async fn exits_one_when_a_job_ends_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(dir.path(), &["--exit-when-done"]).await;
    let http = reqwest::Client::new();
    run_job(&http, &sim, "failed").await; // build was expected to succeed
    run_job(&http, &sim, "failed").await;
    let (status, out) = rest_of_stdout(sim).await;
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("1/2 jobs ended as expected"), "{out}");
}

#[tokio::test]
async fn prints_the_summary_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    let sim = start(dir.path(), &["--state-file", state_file.to_str().unwrap()]).await;
    let pid = sim.child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let (status, out) = rest_of_stdout(sim).await;
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("0/2 jobs ended as expected"), "{out}");
    let state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["jobs"][0]["state"], "pending");
}

#[tokio::test]
async fn refuses_a_bad_pipeline_file() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("bad.yml");
    std::fs::write(&pipeline, "project: demo/app\njobs:\n  - name: x\n    scrpt: [true]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gitlab-sim"))
        .arg("--pipeline")
        .arg(&pipeline)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yml") && stderr.contains("scrpt"), "{stderr}");
}
