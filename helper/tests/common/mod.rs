//! A job Pod on the local filesystem: the `job`, `run`, `pod-info` and builds directories, the
//! helper (`run`) and the step-runner as child processes of the test, like the containers.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_flotilla-helper");
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Pod {
    pub root: tempfile::TempDir,
    pub job_dir: PathBuf,
    pub run_dir: PathBuf,
    pub pod_info: PathBuf,
    pub builds_dir: PathBuf,
    pub project_dir: PathBuf,
    pub termination_log: PathBuf,
}

/// A job payload with the given steps and variables, the official runner's minimal shape.
pub fn job(steps: Value, variables: Value) -> Value {
    json!({
        "id": 42,
        "token": "jobtoken-s3cr3t",
        "allow_git_fetch": true,
        "job_info": {"name": "test", "stage": "test", "project_id": 1, "project_name": "p"},
        "git_info": {
            "repo_url": "https://gitlab-ci-token:jobtoken-s3cr3t@gitlab.invalid/g/p.git",
            "ref": "main", "sha": "0123456789abcdef0123456789abcdef01234567",
            "before_sha": "0000000000000000000000000000000000000000", "ref_type": "branch",
            "refspecs": ["+refs/heads/main:refs/remotes/origin/main"], "depth": 20
        },
        "runner_info": {"timeout": 3600},
        "variables": variables,
        "steps": steps,
        "image": null, "services": [], "features": {"trace_sections": true}
    })
}

/// `script` then `after_script`, as GitLab sends them.
pub fn steps(script: &[&str], after_script: &[&str]) -> Value {
    json!([
        {"name": "script", "script": script, "timeout": 3600, "when": "on_success", "allow_failure": false},
        {"name": "after_script", "script": after_script, "timeout": 3600, "when": "always", "allow_failure": true}
    ])
}

pub fn var(key: &str, value: &str) -> Value {
    json!({"key": key, "value": value, "public": true, "masked": false})
}

impl Pod {
    pub fn new(job: &Value) -> Pod {
        Pod::with_builds(job, None)
    }

    /// A Pod whose builds dir is `builds` (to reuse a checkout across Pods, as a persistent volume).
    pub fn with_builds(job: &Value, builds: Option<&Path>) -> Pod {
        let root = tempfile::tempdir().unwrap();
        let job_dir = root.path().join("job");
        let run_dir = root.path().join("run");
        let pod_info = root.path().join("pod");
        let builds_dir = builds
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.path().join("builds"));
        let project_dir = builds_dir.join("g/p");
        for d in [&job_dir, &run_dir, &pod_info, &builds_dir] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(job_dir.join("job.json"), serde_json::to_vec(job).unwrap()).unwrap();
        let runtime = json!({
            "builds_dir": builds_dir, "project_dir": project_dir, "shell": "bash",
            "after_script_timeout_seconds": 300
        });
        fs::write(job_dir.join("runtime.json"), serde_json::to_vec(&runtime).unwrap()).unwrap();
        fs::write(pod_info.join("annotations"), "kubernetes.io/config.source=\"api\"\n").unwrap();
        let termination_log = root.path().join("termination-log");
        Pod {
            root,
            job_dir,
            run_dir,
            pod_info,
            builds_dir,
            project_dir,
            termination_log,
        }
    }

    pub fn step_runner(&self) -> Child {
        let log = fs::File::create(self.root.path().join("step-runner.log")).unwrap();
        Command::new(BIN)
            .args(["step-runner", "--run"])
            .arg(&self.run_dir)
            .arg("--workdir")
            .arg(&self.builds_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    pub fn helper(&self) -> Child {
        Command::new(BIN)
            .args(["run", "--job"])
            .arg(&self.job_dir)
            .arg("--run")
            .arg(&self.run_dir)
            .arg("--pod-info")
            .arg(&self.pod_info)
            .arg("--termination-log")
            .arg(&self.termination_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs both containers to their end; returns the result and the helper's stdout.
    pub fn run(&self) -> (Value, String) {
        let runner = self.step_runner();
        let helper = self.helper();
        self.finish(helper, runner)
    }

    /// Waits for both containers; checks that both exited 0 and that stdout and `job.log` agree.
    pub fn finish(&self, helper: Child, mut runner: Child) -> (Value, String) {
        let out = wait_output(helper);
        let runner_status = wait(&mut runner);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "helper exited {:?}; stderr: {}\nlog:\n{stdout}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(runner_status.success(), "step-runner exited {runner_status:?}");
        assert_eq!(stdout, self.log(), "stdout and job.log differ");
        (self.result(), stdout)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.run_dir.join("job.log")).unwrap_or_default()
    }

    pub fn result(&self) -> Value {
        let text = fs::read_to_string(&self.termination_log).expect("no termination message");
        serde_json::from_str(&text).unwrap()
    }

    /// Waits until the job log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        let until = Instant::now() + WAIT;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < until,
                "job log never showed {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sets the cancellation annotation the way the kubelet updates downward-API files (atomically).
    pub fn annotate_cancel(&self, how: &str) {
        let tmp = self.pod_info.join(".annotations.tmp");
        fs::write(
            &tmp,
            format!("kubernetes.io/config.source=\"api\"\nflotilla.io/cancel=\"{how}\"\n"),
        )
        .unwrap();
        fs::rename(tmp, self.pod_info.join("annotations")).unwrap();
    }
}

pub fn wait(child: &mut Child) -> ExitStatus {
    let until = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("child {} did not exit within {WAIT:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `wait_with_output` with a deadline (stdout/stderr are read by threads meanwhile).
pub fn wait_output(mut child: Child) -> std::process::Output {
    use std::io::Read;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let status = wait(&mut child);
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

pub fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// `git` with a fixed identity, in `dir`; returns trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A source repository with one commit on `main`; returns (dir, sha).
pub fn source_repo(root: &Path) -> (PathBuf, String) {
    let dir = root.join("source");
    fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q"]);
    fs::write(dir.join("README.md"), "first\n").unwrap();
    git(&dir, &["add", "README.md"]);
    git(&dir, &["commit", "-q", "-m", "first"]);
    let sha = git(&dir, &["rev-parse", "HEAD"]);
    (dir, sha)
}

/// Points the job at `repo` (a file:// URL) and commit `sha` with `GIT_STRATEGY=strategy`.
pub fn git_job(repo: &Path, sha: &str, strategy: &str, script: &[&str]) -> Value {
    let mut job = job(steps(script, &[]), json!([var("GIT_STRATEGY", strategy)]));
    job["git_info"]["repo_url"] = json!(format!("file://{}", repo.display()));
    job["git_info"]["sha"] = json!(sha);
    job["git_info"]["depth"] = json!(0);
    job
}
