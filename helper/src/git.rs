//! `get_sources`: the project checkout with the `git` CLI, per `GIT_STRATEGY`.
//!
//! - `none`: nothing is fetched; the project dir is only created.
//! - `empty`: the project dir is emptied (or created), nothing is fetched.
//! - `fetch` (default): an existing repository in the project dir is reused (stale lock files
//!   removed), then fetched, checked out (`checkout -f`) and cleaned (`clean -ffdx`, or
//!   `GIT_CLEAN_FLAGS`; `none` disables it). `allow_git_fetch: false` turns it into `clone`.
//! - `clone`: the project dir is emptied first, then as `fetch` (init + fetch, like the official
//!   runner).
//!
//! Credentials: like recent official runners, the `origin` remote is the URL *without* the
//! `gitlab-ci-token:<token>@` credentials, and the credentials are supplied per git invocation by
//! a `url.<with creds>.insteadOf <without>` setting passed through the environment
//! (`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`, so not on any command line). The
//! job token is therefore never written to the repository's `.git/config`, which the build
//! container can read. Everything git prints goes through the log's masker.
//!
//! Failures: a git command that fails ends the job as `script_failure` with git's exit code (the
//! official runner runs these commands in a shell script, so its get_sources failures are script
//! failures too), after an `ERROR:` line naming the command. Not being able to run git at all, or
//! to touch the project dir, is a `runner_system_failure` (the helper image or the Pod is broken).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::interrupt::{Interrupt, Watch};
use crate::job::JobPayload;
use crate::local::{self, LocalError};
use crate::log::JobLog;

/// Why get_sources did not complete.
#[derive(Debug)]
pub enum SourcesError {
    Interrupted(Interrupt),
    /// A git command failed (→ `script_failure`).
    Failed {
        exit_code: i32,
        message: String,
    },
    /// The helper could not do its part (→ `runner_system_failure`).
    System(String),
}

impl From<io::Error> for SourcesError {
    fn from(e: io::Error) -> Self {
        SourcesError::System(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    None,
    Empty,
    Fetch,
    Clone,
}

/// Everything get_sources needs besides the log and the watch.
pub struct Sources<'a> {
    pub job: &'a JobPayload,
    pub project_dir: &'a Path,
    /// Job variables (resolved) to export to git (proxies, `GIT_SSL_*`, …).
    pub env: Vec<(String, String)>,
    /// The job deadline.
    pub deadline: Instant,
}

/// Splits `scheme://userinfo@host/...` into the URL without credentials and whether it had any.
pub fn strip_credentials(url: &str) -> (String, bool) {
    let Some(pos) = url.find("://") else {
        return (url.to_string(), false);
    };
    let (scheme, rest) = url.split_at(pos + 3);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => (format!("{scheme}{}", &rest[at + 1..]), true),
        None => (url.to_string(), false),
    }
}

/// Removes everything inside `dir` (not `dir` itself, which may be a mount point).
pub fn empty_dir(dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn var<'a>(job: &'a JobPayload, key: &str) -> Option<&'a str> {
    job.variable(key).map(str::trim).filter(|v| !v.is_empty())
}

/// The strategy from `GIT_STRATEGY` (default `fetch`; `clone` when GitLab forbids fetch).
pub fn strategy(job: &JobPayload) -> Result<Strategy, String> {
    let s = match var(job, "GIT_STRATEGY").map(str::to_ascii_lowercase).as_deref() {
        None | Some("fetch") => Strategy::Fetch,
        Some("clone") => Strategy::Clone,
        Some("none") => Strategy::None,
        Some("empty") => Strategy::Empty,
        Some(other) => {
            return Err(format!(
                "unknown GIT_STRATEGY {other:?} (expected fetch, clone, none or empty)"
            ))
        }
    };
    Ok(if s == Strategy::Fetch && job.allow_git_fetch == Some(false) {
        Strategy::Clone
    } else {
        s
    })
}

/// `GIT_DEPTH` when it is a number, else `git_info.depth`; 0 means full history.
pub fn depth(job: &JobPayload, log: &mut JobLog) -> u64 {
    if let Some(v) = var(job, "GIT_DEPTH") {
        match v.parse::<i64>() {
            Ok(d) => return d.max(0) as u64,
            Err(_) => log.warning(&format!("GIT_DEPTH {v:?} is not a number; using the project's depth")),
        }
    }
    job.git_info.depth.max(0) as u64
}

struct Git<'a> {
    dir: &'a Path,
    env: Vec<(String, String)>,
    deadline: Instant,
}

impl Git<'_> {
    /// Runs `git <args>` in the project dir, its output (stdout and stderr, in order) masked into
    /// the log; a non-zero exit is [`SourcesError::Failed`].
    fn run(&self, args: &[&str], log: &mut JobLog, watch: &mut Watch) -> Result<(), SourcesError> {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(self.dir);
        for key in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_COMMON_DIR",
        ] {
            cmd.env_remove(key);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let code = match local::run_logged(cmd, self.deadline, log, watch) {
            Ok(code) => code,
            Err(LocalError::Interrupted(i)) => return Err(SourcesError::Interrupted(i)),
            Err(LocalError::Io(e)) => {
                return Err(SourcesError::System(format!(
                    "cannot run git (is it installed in the helper image?): {e}"
                )))
            }
        };
        if code != 0 {
            return Err(SourcesError::Failed {
                exit_code: code,
                message: format!("`git {}` failed with exit code {code}", args.join(" ")),
            });
        }
        Ok(())
    }
}

/// The environment of every git command: the job's variables, no prompts, and our configuration
/// (credentials via insteadOf, no hints, any directory owner accepted).
fn git_env(sources: &Sources, plain_url: &str, has_creds: bool) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = sources
        .env
        .iter()
        .filter(|(k, _)| !k.starts_with("GIT_CONFIG"))
        .cloned()
        .collect();
    if !env.iter().any(|(k, _)| k == "GIT_SSL_CAINFO") {
        if let Some((_, ca)) = sources.env.iter().rev().find(|(k, _)| k == "CI_SERVER_TLS_CA_FILE") {
            env.push(("GIT_SSL_CAINFO".into(), ca.clone()));
        }
    }
    env.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
    let mut config: Vec<(String, String)> = vec![
        ("init.defaultBranch".into(), "main".into()),
        ("advice.detachedHead".into(), "false".into()),
        ("safe.directory".into(), "*".into()),
        ("fetch.recurseSubmodules".into(), "false".into()),
    ];
    if has_creds {
        config.push((
            format!("url.{}.insteadOf", sources.job.git_info.repo_url),
            plain_url.to_string(),
        ));
    }
    env.push(("GIT_CONFIG_COUNT".into(), config.len().to_string()));
    for (i, (k, v)) in config.into_iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}"), k));
        env.push((format!("GIT_CONFIG_VALUE_{i}"), v));
    }
    env
}

/// The refspecs to fetch: GitLab's, or the ref's own when GitLab sent none.
fn refspecs(job: &JobPayload) -> Vec<String> {
    if !job.git_info.refspecs.is_empty() {
        return job.git_info.refspecs.clone();
    }
    let r = &job.git_info.git_ref;
    if r.is_empty() {
        return Vec::new();
    }
    if job.git_info.ref_type == "tag" {
        vec![format!("+refs/tags/{r}:refs/tags/{r}")]
    } else {
        vec![format!("+refs/heads/{r}:refs/remotes/origin/{r}")]
    }
}

/// Runs get_sources. Prints like the official runner.
pub fn get_sources(sources: &Sources, log: &mut JobLog, watch: &mut Watch) -> Result<(), SourcesError> {
    let job = sources.job;
    let dir = sources.project_dir;
    let strategy = strategy(job).map_err(|m| SourcesError::Failed {
        exit_code: 1,
        message: m,
    })?;
    match strategy {
        Strategy::None => {
            log.notice("Skipping Git repository setup");
            fs::create_dir_all(dir)?;
            return Ok(());
        }
        Strategy::Empty => {
            log.notice("Skipping Git repository setup and creating an empty build directory");
            empty_dir(dir)?;
            fs::create_dir_all(dir)?;
            return Ok(());
        }
        Strategy::Clone => empty_dir(dir)?,
        Strategy::Fetch => {}
    }
    if job.git_info.repo_url.is_empty() {
        return Err(SourcesError::Failed {
            exit_code: 1,
            message: "the job has no repository URL".into(),
        });
    }
    let depth = depth(job, log);
    if depth > 0 {
        log.notice(&format!("Fetching changes with git depth set to {depth}..."));
    } else {
        log.notice("Fetching changes...");
    }
    fs::create_dir_all(dir)?;
    let git_dir = dir.join(".git");
    let existed = git_dir.is_dir();
    if existed {
        // Left behind by a git killed in an earlier job using this builds dir.
        for lock in [
            "index.lock",
            "shallow.lock",
            "HEAD.lock",
            "config.lock",
            "hooks/post-checkout",
        ] {
            let _ = fs::remove_file(git_dir.join(lock));
        }
    }

    let (plain_url, has_creds) = strip_credentials(&job.git_info.repo_url);
    let git = Git {
        dir,
        env: git_env(sources, &plain_url, has_creds),
        deadline: sources.deadline,
    };
    git.run(&["init", "-q", "--template=", "."], log, watch)?;
    let shown = absolute(&git_dir);
    if existed {
        log.line(&format!(
            "Reinitialized existing Git repository in {}/",
            shown.display()
        ));
    } else {
        log.line(&format!("Initialized empty Git repository in {}/", shown.display()));
        log.notice("Created fresh repository.");
    }
    git.run(&["config", "remote.origin.url", &plain_url], log, watch)?;

    let mut fetch: Vec<String> = ["fetch", "origin", "--prune", "--no-recurse-submodules"]
        .map(String::from)
        .into();
    let depth_arg;
    if depth > 0 {
        depth_arg = format!("--depth={depth}");
        fetch.push(depth_arg);
    } else if git_dir.join("shallow").exists() {
        fetch.push("--unshallow".into());
    }
    fetch.extend(refspecs(job));
    let fetch: Vec<&str> = fetch.iter().map(String::as_str).collect();
    git.run(&fetch, log, watch)?;

    if var(job, "GIT_CHECKOUT").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
        log.notice("Skipping Git checkout");
    } else {
        let sha = job.git_info.sha.as_str();
        let target = if sha.is_empty() { "FETCH_HEAD" } else { sha };
        let short: String = target.chars().take(8).collect();
        log.notice(&format!(
            "Checking out {short} as detached HEAD (ref is {})...",
            job.git_info.git_ref
        ));
        git.run(&["checkout", "-f", "-q", target], log, watch)?;
        if strategy == Strategy::Fetch {
            let flags = var(job, "GIT_CLEAN_FLAGS").unwrap_or("-ffdx");
            if flags != "none" {
                let mut args = vec!["clean"];
                args.extend(flags.split_whitespace());
                git.run(&args, log, watch)?;
            }
        }
    }
    match var(job, "GIT_SUBMODULE_STRATEGY") {
        Some(s) if s != "none" => {
            log.warning(&format!(
                "GIT_SUBMODULE_STRATEGY={s} is not supported by flotilla-helper yet"
            ));
            log.notice("Skipping Git submodules setup");
        }
        _ => log.notice("Skipping Git submodules setup"),
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_credentials() {
        assert_eq!(
            strip_credentials("https://gitlab-ci-token:tok@gitlab.example.com/g/p.git"),
            ("https://gitlab.example.com/g/p.git".to_string(), true)
        );
        assert_eq!(
            strip_credentials("file:///tmp/r.git"),
            ("file:///tmp/r.git".to_string(), false)
        );
        assert_eq!(strip_credentials("/tmp/r"), ("/tmp/r".to_string(), false));
        assert_eq!(strip_credentials("https://h/p@x"), ("https://h/p@x".to_string(), false));
    }

    #[test]
    fn strategy_from_variables() {
        let job = |vars: &str, allow: &str| -> JobPayload {
            serde_json::from_str(&format!(r#"{{"allow_git_fetch":{allow},"variables":[{vars}]}}"#)).unwrap()
        };
        assert_eq!(strategy(&job("", "true")), Ok(Strategy::Fetch));
        assert_eq!(strategy(&job("", "false")), Ok(Strategy::Clone));
        assert_eq!(
            strategy(&job(r#"{"key":"GIT_STRATEGY","value":"none"}"#, "true")),
            Ok(Strategy::None)
        );
        assert_eq!(
            strategy(&job(r#"{"key":"GIT_STRATEGY","value":"Clone"}"#, "true")),
            Ok(Strategy::Clone)
        );
        assert!(strategy(&job(r#"{"key":"GIT_STRATEGY","value":"rsync"}"#, "true")).is_err());
    }
}
