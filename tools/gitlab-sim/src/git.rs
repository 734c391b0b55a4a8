//! The project's git repository: built once at start-up with the `git` CLI into a bare repository
//! under the data directory, and served over HTTP through `git http-backend` (see `api/git.rs`).
//!
//! The repository gets one commit on `main` holding the pipeline's `repository:` directory (or a
//! generated README.md and build.sh), plus `refs/pipelines/<id>` like GitLab's persistent pipeline
//! refs, and `git update-server-info` so the dumb protocol's static files are there too.
//!
//! Every git command runs with system and global configuration disabled, so a developer's
//! `commit.gpgsign` or hooks cannot change what the simulator builds.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::error::{Result, SimError};

/// Branch the commit is made on (the job's `ref`).
pub const BRANCH: &str = "main";

/// A built, served repository.
#[derive(Debug, Clone)]
pub struct Repository {
    /// `GIT_PROJECT_ROOT` for `git http-backend`: the directory holding `<project>.git`.
    pub root: PathBuf,
    /// The bare repository, `<root>/<project>.git`.
    pub bare: PathBuf,
    /// Project path (`namespace/name`).
    pub project: String,
    /// HEAD commit.
    pub sha: String,
    pub branch: String,
}

/// A `git` command with configuration isolated from the machine's.
pub(crate) fn git_command() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        // Inherited from a surrounding git hook these would redirect every command.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs git with `args` (optionally on `git_dir`/`work_tree`) and returns its trimmed stdout.
async fn git(git_dir: &Path, work_tree: Option<&Path>, args: &[&str]) -> Result<String> {
    let mut cmd = git_command();
    cmd.arg("--git-dir").arg(git_dir);
    if let Some(work_tree) = work_tree {
        cmd.arg("--work-tree").arg(work_tree);
    }
    cmd.args(args)
        .env("GIT_AUTHOR_NAME", "GitLab Sim")
        .env("GIT_AUTHOR_EMAIL", "gitlab-sim@example.invalid")
        .env("GIT_COMMITTER_NAME", "GitLab Sim")
        .env("GIT_COMMITTER_EMAIL", "gitlab-sim@example.invalid");
    let output = cmd.output().await.map_err(|err| SimError::Git {
        args: args.join(" "),
        message: format!("cannot run git: {err}"),
    })?;
    if !output.status.success() {
        return Err(SimError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

impl Repository {
    /// Builds `<data_dir>/repos/<project>.git` with one commit of `source` (or generated files)
    /// and the ref `refs/pipelines/<pipeline_id>`.
    pub async fn create(data_dir: &Path, project: &str, source: Option<&Path>, pipeline_id: u64) -> Result<Repository> {
        let root = data_dir.join("repos");
        let bare = root.join(format!("{project}.git"));
        if bare.exists() {
            // A data dir reused across runs: start from a clean repository so HEAD is what this
            // run's pipeline says.
            std::fs::remove_dir_all(&bare).map_err(|e| SimError::io(format!("removing {}", bare.display()), e))?;
        }
        std::fs::create_dir_all(&bare).map_err(|e| SimError::io(format!("creating {}", bare.display()), e))?;
        git(&bare, None, &["init", "--quiet", "--bare", "--initial-branch", BRANCH]).await?;
        // http-backend enables pushes for authenticated users; this repository is read-only.
        git(&bare, None, &["config", "http.receivepack", "false"]).await?;
        // Real GitLab lets runners fetch the pipeline's commit by sha.
        git(&bare, None, &["config", "uploadpack.allowReachableSHA1InWant", "true"]).await?;

        let work_tree = match source {
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(SimError::InvalidPipeline(format!(
                        "repository {} is not a directory",
                        dir.display()
                    )));
                }
                dir.to_path_buf()
            }
            None => generate_source(data_dir, project)?,
        };
        // Committing straight from the source directory into the bare repository leaves the
        // source untouched (the index lives in the bare repository).
        git(&bare, Some(&work_tree), &["add", "--all", "."]).await?;
        git(
            &bare,
            Some(&work_tree),
            &[
                "commit",
                "--quiet",
                "--allow-empty",
                "--no-verify",
                "-m",
                "Initial commit",
            ],
        )
        .await?;
        let sha = git(&bare, None, &["rev-parse", "HEAD"]).await?;
        git(
            &bare,
            None,
            &["update-ref", &format!("refs/pipelines/{pipeline_id}"), &sha],
        )
        .await?;
        git(&bare, None, &["update-server-info"]).await?;
        Ok(Repository {
            root,
            bare,
            project: project.to_string(),
            sha,
            branch: BRANCH.to_string(),
        })
    }
}

/// Writes the default repository content: a README and an executable build script.
fn generate_source(data_dir: &Path, project: &str) -> Result<PathBuf> {
    let dir = data_dir.join("generated-source");
    let io = |what: &str, e| SimError::io(format!("{what} {}", dir.display()), e);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| io("removing", e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| io("creating", e))?;
    std::fs::write(
        dir.join("README.md"),
        format!("# {project}\n\nThis repository is served by gitlab-sim.\n"),
    )
    .map_err(|e| io("writing README.md in", e))?;
    let script = dir.join("build.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nset -eu\necho \"building ${CI_PROJECT_PATH:-project} at ${CI_COMMIT_SHORT_SHA:-HEAD}\"\n",
    )
    .map_err(|e| io("writing build.sh in", e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).map_err(|e| io("chmod in", e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builds_a_generated_repository() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::create(dir.path(), "demo/app", None, 7).await.unwrap();
        assert_eq!(repo.sha.len(), 40);
        assert_eq!(repo.bare, dir.path().join("repos/demo/app.git"));
        let files = git(&repo.bare, None, &["ls-tree", "--name-only", "HEAD"])
            .await
            .unwrap();
        assert_eq!(files.lines().collect::<Vec<_>>(), ["README.md", "build.sh"]);
        let mode = git(&repo.bare, None, &["ls-tree", "HEAD", "build.sh"]).await.unwrap();
        assert!(mode.starts_with("100755"), "{mode}");
        let refs = std::fs::read_to_string(repo.bare.join("info/refs")).unwrap();
        assert!(
            refs.contains("refs/heads/main") && refs.contains("refs/pipelines/7"),
            "{refs}"
        );
    }

    #[tokio::test]
    async fn commits_a_given_directory_and_can_be_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/file.txt"), "content\n").unwrap();
        let repo = Repository::create(dir.path(), "g/p", Some(&src), 1).await.unwrap();
        let content = git(&repo.bare, None, &["show", "HEAD:sub/file.txt"]).await.unwrap();
        assert_eq!(content, "content");
        // Same data dir again: rebuilt, same tree.
        let again = Repository::create(dir.path(), "g/p", Some(&src), 1).await.unwrap();
        assert!(again.bare.exists());
        assert!(
            Repository::create(dir.path(), "g/p", Some(&dir.path().join("missing")), 1)
                .await
                .is_err()
        );
    }
}
