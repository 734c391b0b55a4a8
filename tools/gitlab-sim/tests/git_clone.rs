//! `git clone` of the served repository with the real git CLI.

mod common;

use std::path::Path;
use std::process::Output;

use common::{job, sim, Runner};
use gitlab_sim::{GitlabSim, Pipeline, SimConfig};
use serde_json::json;

/// Runs git with no user or system configuration and no way to prompt for credentials.
async fn git(args: &[&str], cwd: &Path) -> Output {
    tokio::process::Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .env_remove("GIT_DIR")
        .output()
        .await
        .expect("run git")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn clone_with_the_job_token_succeeds_and_without_fails() {
    let sim = sim().await;
    sim.add_job(job("a")).unwrap();
    let runner = Runner::new(&sim);
    let job = runner.take_job().await;
    let repo_url = job["git_info"]["repo_url"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Shallow, as the runner fetches (depth 20): needs the smart protocol.
    let out = git(
        &["clone", "--depth", "20", "--branch", "main", repo_url, "shallow"],
        dir.path(),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let head = git(&["rev-parse", "HEAD"], &dir.path().join("shallow")).await;
    assert_eq!(String::from_utf8_lossy(&head.stdout).trim(), sim.commit_sha());
    assert!(dir.path().join("shallow/README.md").is_file());
    assert!(dir.path().join("shallow/build.sh").is_file());

    // The runner's refspecs, fetched into a fresh repository.
    let fetch_dir = dir.path().join("fetched");
    std::fs::create_dir(&fetch_dir).unwrap();
    git(&["init", "-q"], &fetch_dir).await;
    let mut args = vec!["fetch", "--depth", "20", repo_url];
    let refspecs: Vec<String> = job["git_info"]["refspecs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    args.extend(refspecs.iter().map(String::as_str));
    let out = git(&args, &fetch_dir).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let sha = git(&["rev-parse", "refs/pipelines/100"], &fetch_dir).await;
    assert_eq!(String::from_utf8_lossy(&sha.stdout).trim(), sim.commit_sha());

    // Without credentials: 401, git fails instead of prompting.
    let anonymous = format!("{}/demo/app.git", sim.url());
    let out = git(&["clone", &anonymous, "anonymous"], dir.path()).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Authentication failed") || stderr(&out).contains("could not read Username"),
        "{}",
        stderr(&out)
    );

    // With a wrong token.
    let wrong = sim.repo_url("glcbt-not-a-job-token");
    let out = git(&["clone", &wrong, "wrong"], dir.path()).await;
    assert!(!out.status.success());

    // Once the job has finished its token no longer works.
    runner.put(&job, json!({"state": "success"})).await;
    let out = git(&["clone", repo_url, "after"], dir.path()).await;
    assert!(!out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn serves_the_pipeline_repository_directory_and_refuses_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir_all(source.join("src")).unwrap();
    std::fs::write(source.join("Makefile"), "all:\n\techo built\n").unwrap();
    std::fs::write(source.join("src/main.c"), "int main(void) { return 0; }\n").unwrap();
    let pipeline_file = dir.path().join("pipeline.yml");
    std::fs::write(
        &pipeline_file,
        "project: group/tool\nrepository: source\njobs:\n  - {name: build, script: [make]}\n",
    )
    .unwrap();
    let sim = GitlabSim::start(SimConfig {
        pipeline: Pipeline::from_file(&pipeline_file).unwrap(),
        data_dir: Some(dir.path().join("data")),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let runner = Runner::new(&sim);
    let job = runner.take_job().await;
    let repo_url = job["git_info"]["repo_url"].as_str().unwrap();
    assert!(repo_url.ends_with("/group/tool.git"));
    // Full clone (no depth) works too.
    let out = git(&["clone", repo_url, "clone"], dir.path()).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let clone = dir.path().join("clone");
    assert_eq!(
        std::fs::read_to_string(clone.join("src/main.c")).unwrap(),
        "int main(void) { return 0; }\n"
    );
    assert!(dir.path().join("data/repos/group/tool.git").is_dir());

    std::fs::write(clone.join("new.txt"), "x").unwrap();
    git(&["add", "new.txt"], &clone).await;
    git(
        &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        &clone,
    )
    .await;
    let out = git(&["push", "origin", "HEAD:main"], &clone).await;
    assert!(!out.status.success(), "pushes are refused");
}
