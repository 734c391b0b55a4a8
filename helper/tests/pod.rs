//! End-to-end: `flotilla-helper run` and `flotilla-helper step-runner` as the two containers of a
//! job Pod, talking through the shared run directory.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;

const GREEN: &str = "\x1b[32;1m";
const RESET: &str = "\x1b[0;m";

fn none_job(script: &[&str], after: &[&str]) -> serde_json::Value {
    job(steps(script, after), json!([var("GIT_STRATEGY", "none")]))
}

#[test]
fn a_job_that_echoes_succeeds_and_logs_each_line_once() {
    let pod = Pod::new(&none_job(&["echo hello-from-step"], &["echo hello-from-after"]));
    let (result, log) = pod.run();
    assert_eq!(
        result,
        json!({"state": "success", "exit_code": 0, "stage": "after_script"}),
        "{log}"
    );
    assert_eq!(
        count(&log, &format!("{GREEN}$ echo hello-from-step{RESET}\n")),
        1,
        "{log}"
    );
    assert_eq!(count(&log, "hello-from-step\n"), 1, "{log}");
    assert_eq!(count(&log, "hello-from-after\n"), 1, "{log}");
    assert!(log.starts_with("Running with flotilla-helper "), "{log}");
    for section in [
        "prepare_script",
        "get_sources",
        "step_script",
        "after_script",
        "cleanup_file_variables",
    ] {
        assert_eq!(
            count(&log, &format!(":{section}\r\x1b[0K")),
            2,
            "section {section}: {log}"
        );
    }
    assert!(log.contains("Skipping Git repository setup"), "{log}");
    assert!(log.ends_with(&format!("{GREEN}Job succeeded{RESET}\n")), "{log}");
    // The step came after the echo, inside the step_script section.
    let echo = log.find("$ echo hello-from-step").unwrap();
    assert!(log[echo..].find("hello-from-step\n").is_some());
    assert!(log.find("section_start:").unwrap() < echo);
    // The scripts (which hold the variables) are gone, the step-runner was told to stop.
    assert!(!pod.run_dir.join("steps/0.sh").exists());
    assert!(pod.run_dir.join("steps/shutdown").exists());
    assert_eq!(
        fs::read_to_string(pod.run_dir.join("steps/0.exit")).unwrap().trim(),
        "0"
    );
}

#[test]
fn a_failing_script_fails_the_job_and_after_script_still_runs() {
    let pod = Pod::new(&none_job(
        &["echo before", "exit 3", "echo never-printed"],
        &["echo after-ran status=$CI_JOB_STATUS", "exit 7"],
    ));
    let (result, log) = pod.run();
    assert_eq!(
        result,
        json!({"state": "failed", "exit_code": 3, "failure_reason": "script_failure", "stage": "step_script"}),
        "{log}"
    );
    assert!(log.contains("before\n") && !log.contains("never-printed\n"), "{log}");
    assert_eq!(count(&log, "after-ran status=failed\n"), 1, "{log}");
    // after_script's own failure is only a warning.
    assert!(
        log.contains("after_script failed, but job will continue unaffected: exit code 7"),
        "{log}"
    );
    assert!(
        log.ends_with("\x1b[31;1mERROR: Job failed: exit code 3\x1b[0;m\n"),
        "{log}"
    );
}

#[test]
fn when_on_failure_and_allow_failure_steps() {
    let steps = json!([
        {"name": "script", "script": ["echo main"], "when": "on_success"},
        {"name": "release", "script": ["echo release-ran", "false"], "when": "on_success", "allow_failure": true},
        {"name": "notify", "script": ["echo notify-ran"], "when": "on_failure"},
        {"name": "after_script", "script": ["echo after-ran"], "when": "always", "allow_failure": true}
    ]);
    let pod = Pod::new(&job(steps, json!([var("GIT_STRATEGY", "none")])));
    let (result, log) = pod.run();
    assert_eq!(result["state"], "success", "{log}");
    assert!(log.contains("release-ran\n") && log.contains("after-ran\n"), "{log}");
    assert!(!log.contains("notify-ran\n"), "{log}");
    assert!(log.contains(":step_release\r"), "{log}");
}

#[test]
fn variables_reach_the_script_literally_and_file_variables_are_files() {
    let variables = json!([
        var("GIT_STRATEGY", "none"),
        {"key": "TRICKY", "value": "it's $HOME `id` \"q\" \\n\nline2", "public": true, "raw": true},
        // Not raw: expanded against the job's variables only (official runner semantics).
        var("EXPANDED", "home=$HOME"),
        var("BASE", "base"),
        var("DERIVED", "$BASE/${BASE}-$$"),
        {"key": "RAW", "value": "$BASE", "public": true, "raw": true},
        {"key": "CONF", "value": "k='v' $BASE", "public": true, "file": true, "raw": true},
    ]);
    let pod = Pod::new(&job(
        steps(
            &[
                "printf '<%s>\\n' \"$TRICKY\" \"$DERIVED\" \"$RAW\" \"$EXPANDED\" \"$CI_PROJECT_DIR\"",
                "printf 'conf=<%s>\\n' \"$(cat \"$CONF\")\"",
            ],
            &[],
        ),
        variables,
    ));
    let (result, log) = pod.run();
    assert_eq!(result["state"], "success", "{log}");
    assert!(
        log.contains("<it's $HOME `id` \"q\" \\n\nline2>\n<base/base-$>\n<$BASE>\n<home=>\n"),
        "{log}"
    );
    assert!(log.contains(&format!("<{}>\n", pod.project_dir.display())), "{log}");
    assert!(log.contains("conf=<k='v' $BASE>\n"), "{log}");
    // File variables are removed at the end.
    assert_eq!(fs::read_dir(pod.run_dir.join("tmp")).unwrap().count(), 0);
}

#[test]
fn git_strategy_clone_checks_out_the_commit() {
    let pod = Pod::new(&json!({}));
    let (repo, sha) = source_repo(pod.root.path());
    let pod = Pod::new(&git_job(&repo, &sha, "clone", &["cat README.md"]));
    // Something left in the project dir is removed by clone.
    fs::create_dir_all(&pod.project_dir).unwrap();
    fs::write(pod.project_dir.join("stale.txt"), "x").unwrap();
    let (result, log) = pod.run();
    assert_eq!(result["state"], "success", "{log}");
    assert_eq!(git(&pod.project_dir, &["rev-parse", "HEAD"]), sha);
    assert!(!pod.project_dir.join("stale.txt").exists());
    assert!(log.contains(&format!("{GREEN}Fetching changes...{RESET}\n")), "{log}");
    assert!(log.contains("Initialized empty Git repository in "), "{log}");
    assert!(
        log.contains(&format!("{GREEN}Created fresh repository.{RESET}\n")),
        "{log}"
    );
    assert!(
        log.contains(&format!("Checking out {} as detached HEAD (ref is main)...", &sha[..8])),
        "{log}"
    );
    assert!(log.contains("Skipping Git submodules setup"), "{log}");
    assert!(log.contains("$ cat README.md\x1b[0;m\nfirst\n"), "{log}");
}

#[test]
fn git_strategy_fetch_reuses_the_repository_and_cleans_it() {
    let shared = tempfile::tempdir().unwrap();
    let (repo, first) = source_repo(shared.path());
    let builds = shared.path().join("builds");
    let pod = Pod::with_builds(&git_job(&repo, &first, "fetch", &["true"]), Some(&builds));
    let (result, log) = pod.run();
    assert_eq!(result["state"], "success", "{log}");
    assert_eq!(git(&pod.project_dir, &["rev-parse", "HEAD"]), first);

    // A new commit upstream, an untracked file left by the first job.
    fs::write(repo.join("README.md"), "second\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "second"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    fs::write(pod.project_dir.join("untracked.txt"), "x").unwrap();

    let mut job = git_job(&repo, &second, "fetch", &["cat README.md"]);
    job["variables"].as_array_mut().unwrap().push(var("GIT_DEPTH", "1"));
    let pod = Pod::with_builds(&job, Some(&builds));
    let (result, log) = pod.run();
    assert_eq!(result["state"], "success", "{log}");
    assert_eq!(git(&pod.project_dir, &["rev-parse", "HEAD"]), second);
    assert!(!pod.project_dir.join("untracked.txt").exists(), "git clean did not run");
    assert!(log.contains("Fetching changes with git depth set to 1..."), "{log}");
    assert!(log.contains("Reinitialized existing Git repository in "), "{log}");
    assert!(!log.contains("Created fresh repository."), "{log}");
    assert!(log.contains("\nsecond\n"), "{log}");
}

#[test]
fn git_strategy_none_checks_nothing_out() {
    let pod = Pod::new(&json!({}));
    let (repo, sha) = source_repo(pod.root.path());
    let pod = Pod::new(&git_job(&repo, &sha, "none", &["ls -A"]));
    let (result, log) = pod.run();
    assert_eq!(result["state"], "success", "{log}");
    assert!(pod.project_dir.is_dir());
    assert!(!pod.project_dir.join(".git").exists());
    assert!(!pod.project_dir.join("README.md").exists());
    assert!(
        log.contains(&format!("{GREEN}Skipping Git repository setup{RESET}\n")),
        "{log}"
    );
    assert!(!log.contains("Checking out"), "{log}");
}

fn base64(input: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An HTTP server that asks for Basic auth, records the credentials it gets, then refuses.
fn refusing_git_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut auth = None;
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.strip_prefix("Authorization: ") {
                    auth = Some(v.trim().to_string());
                }
            }
            let response = match auth {
                None => "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                Some(a) => {
                    record.lock().unwrap().push(a);
                    "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                }
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (port, seen)
}

#[test]
fn git_failure_is_a_script_failure_and_never_shows_the_token_or_masked_values() {
    let (port, seen) = refusing_git_server();
    let mut job = job(
        steps(&["echo never-run"], &["echo after-never-run"]),
        json!([{"key": "PROJECT_SECRET", "value": "masked-path-4711", "public": false, "masked": true}]),
    );
    job["git_info"]["repo_url"] = json!(format!(
        "http://gitlab-ci-token:jobtoken-s3cr3t@127.0.0.1:{port}/masked-path-4711/p.git"
    ));
    let pod = Pod::new(&job);
    let (result, log) = pod.run();
    assert_eq!(result["state"], "failed", "{log}");
    assert_eq!(result["failure_reason"], "script_failure", "{log}");
    assert_eq!(result["stage"], "get_sources", "{log}");
    assert_ne!(result["exit_code"], 0);
    assert!(log.contains("ERROR: `git fetch origin"), "{log}");
    assert!(
        !log.contains("never-run"),
        "no step runs after a get_sources failure: {log}"
    );
    assert!(!log.contains("jobtoken-s3cr3t"), "{log}");
    assert!(!log.contains("masked-path-4711"), "{log}");
    assert!(
        log.contains("[MASKED]"),
        "git's error should be in the log, masked: {log}"
    );
    // git did get the credentials (through the environment), the repository did not.
    let expected = format!("Basic {}", base64(b"gitlab-ci-token:jobtoken-s3cr3t"));
    assert!(
        seen.lock().unwrap().contains(&expected),
        "credentials seen: {:?}",
        seen.lock().unwrap()
    );
    let config = fs::read_to_string(pod.project_dir.join(".git/config")).unwrap();
    assert!(!config.contains("jobtoken-s3cr3t"), "{config}");
    assert_eq!(
        git(&pod.project_dir, &["config", "remote.origin.url"]),
        format!("http://127.0.0.1:{port}/masked-path-4711/p.git")
    );
}

#[test]
fn the_job_timeout_kills_the_script_and_after_script_runs() {
    let mut job = none_job(
        &["echo started", "sleep 30", "echo never-printed"],
        &["echo after-timeout"],
    );
    job["runner_info"]["timeout"] = json!(3);
    let pod = Pod::new(&job);
    let started = std::time::Instant::now();
    let (result, log) = pod.run();
    assert!(started.elapsed().as_secs() < 20, "the step was not killed in time");
    assert_eq!(result["state"], "failed", "{log}");
    assert_eq!(result["failure_reason"], "job_execution_timeout", "{log}");
    assert_eq!(result["stage"], "step_script", "{log}");
    assert!(log.contains("started\n") && !log.contains("never-printed\n"), "{log}");
    assert_eq!(count(&log, "after-timeout\n"), 1, "{log}");
    assert!(
        log.ends_with("ERROR: Job failed: execution took longer than 3 seconds\x1b[0;m\n"),
        "{log}"
    );
    assert!(pod.run_dir.join("steps/0.kill").exists());
}

#[test]
fn graceful_cancellation_stops_the_script_and_runs_after_script() {
    let pod = Pod::new(&none_job(
        &["echo started", "sleep 30", "echo never-printed"],
        &["echo after-cancel status=$CI_JOB_STATUS"],
    ));
    let runner = pod.step_runner();
    let helper = pod.helper();
    pod.wait_for_log("started\n");
    pod.annotate_cancel("graceful");
    let (result, log) = pod.finish(helper, runner);
    assert_eq!(result["state"], "failed", "{log}");
    assert_eq!(result["failure_reason"], "job_canceled", "{log}");
    assert_eq!(result["stage"], "step_script", "{log}");
    assert!(!log.contains("never-printed\n"), "{log}");
    assert_eq!(count(&log, "after-cancel status=canceled\n"), 1, "{log}");
    assert!(log.ends_with("ERROR: Job failed: canceled\x1b[0;m\n"), "{log}");
}

#[test]
fn abort_stops_the_script_without_after_script() {
    let pod = Pod::new(&none_job(&["echo started", "sleep 30"], &["echo after-abort"]));
    let runner = pod.step_runner();
    let helper = pod.helper();
    pod.wait_for_log("started\n");
    pod.annotate_cancel("abort");
    let (result, log) = pod.finish(helper, runner);
    assert_eq!(result["failure_reason"], "job_canceled", "{log}");
    assert!(!log.contains("after-abort"), "{log}");
}

#[test]
fn bootstrap_installs_a_runnable_copy() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("run/bin");
    let out = Command::new(BIN)
        .args(["bootstrap", "--dest"])
        .arg(&dest)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let installed = dest.join("flotilla-helper");
    assert_eq!(fs::metadata(&installed).unwrap().permissions().mode() & 0o777, 0o755);
    assert_eq!(fs::read(&installed).unwrap(), fs::read(BIN).unwrap());
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("flotilla-helper {}", env!("CARGO_PKG_VERSION"))
    );
    // No temporary file left behind; a second install replaces the first.
    let again = Command::new(BIN)
        .args(["bootstrap", "--dest"])
        .arg(&dest)
        .status()
        .unwrap();
    assert!(again.success());
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 1);
}

#[test]
fn an_unreadable_payload_is_a_runner_system_failure_reported_with_exit_0() {
    let pod = Pod::new(&json!({}));
    fs::write(pod.job_dir.join("job.json"), "{not json").unwrap();
    let out = wait_output(pod.helper());
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{log}");
    let result = pod.result();
    assert_eq!(result["state"], "failed", "{log}");
    assert_eq!(result["failure_reason"], "runner_system_failure", "{log}");
    assert_eq!(result["stage"], "prepare_script", "{log}");
    assert!(log.contains("cannot parse"), "{log}");
    assert_eq!(count(&log, "section_end:"), count(&log, "section_start:"), "{log}");
    assert!(pod.run_dir.join("steps/shutdown").exists());
}

/// The runner entry's `pre_build_script` and `post_build_script` run in the job's script step,
/// before and after it, in its shell; a failing script skips `post_build_script`.
#[test]
fn pre_and_post_build_scripts_wrap_the_script() {
    let with_scripts = |pod: &Pod| {
        let path = pod.job_dir.join("runtime.json");
        let mut runtime: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        runtime["pre_build_script"] = json!("if true; then\n  echo pre-build-ran\nfi");
        runtime["post_build_script"] = json!("echo post-build-ran");
        fs::write(&path, serde_json::to_vec(&runtime).unwrap()).unwrap();
    };
    let pod = Pod::new(&none_job(&["echo the-script"], &["echo the-after-script"]));
    with_scripts(&pod);
    let (result, log) = pod.run();
    assert_eq!(result["state"], "success", "{log}");
    let at = |needle: &str| log.find(needle).unwrap_or_else(|| panic!("{needle} in {log}"));
    assert!(at("\npre-build-ran\n") < at("\nthe-script\n"), "{log}");
    assert!(at("\nthe-script\n") < at("\npost-build-ran\n"), "{log}");
    assert_eq!(count(&log, "post-build-ran\n"), 1, "not in after_script: {log}");

    let failing = Pod::new(&none_job(&["exit 3"], &[]));
    with_scripts(&failing);
    let (result, log) = failing.run();
    assert_eq!(result["state"], "failed", "{log}");
    assert!(
        log.contains("\npre-build-ran\n") && !log.contains("\npost-build-ran\n"),
        "{log}"
    );
}

#[test]
fn get_sources_hooks_run_around_git_in_the_helper() {
    let pod = Pod::new(&json!({}));
    let (repo, sha) = source_repo(pod.root.path());
    let mut job = git_job(&repo, &sha, "clone", &["echo the-script"]);
    job["variables"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "HOOK_WORD", "value": "from-the-job", "public": true}));
    let pod = Pod::new(&job);
    let path = pod.job_dir.join("runtime.json");
    let mut runtime: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    runtime["pre_get_sources_script"] =
        json!("echo \"pre-get-sources $HOOK_WORD\"; test ! -e README.md && echo no-checkout-yet");
    runtime["post_get_sources_script"] = json!("echo \"post-get-sources $(cat README.md)\"");
    fs::write(&path, serde_json::to_vec(&runtime).unwrap()).unwrap();
    let (result, log) = pod.run();
    assert_eq!(result["state"], "success", "{log}");
    let at = |needle: &str| log.find(needle).unwrap_or_else(|| panic!("{needle} in {log}"));
    assert!(
        at("\npre-get-sources from-the-job\n") < at("Fetching changes..."),
        "{log}"
    );
    assert!(at("\nno-checkout-yet\n") < at("Fetching changes..."), "{log}");
    assert!(
        at("Skipping Git submodules setup") < at("\npost-get-sources first\n"),
        "{log}"
    );
    assert!(at("\npost-get-sources first\n") < at("\nthe-script\n"), "{log}");
    assert_eq!(
        fs::read_dir(pod.run_dir.join("tmp")).unwrap().count(),
        0,
        "the hook files are gone"
    );

    // A failing hook fails get_sources as a script failure; nothing after it runs.
    let failing = Pod::new(&git_job(&repo, &sha, "clone", &["echo the-script"]));
    let path = failing.job_dir.join("runtime.json");
    let mut runtime: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    runtime["pre_get_sources_script"] = json!("exit 4");
    fs::write(&path, serde_json::to_vec(&runtime).unwrap()).unwrap();
    let (result, log) = failing.run();
    assert_eq!(result["state"], "failed", "{log}");
    assert_eq!(result["failure_reason"], "script_failure", "{log}");
    assert!(log.contains("pre_get_sources_script failed with exit code 4"), "{log}");
    assert!(
        !log.contains("Fetching changes") && !log.contains("\nthe-script\n"),
        "{log}"
    );
}
