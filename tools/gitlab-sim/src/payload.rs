//! The job payload (201 body of `POST /jobs/request`), built as plain JSON from the reference's
//! field list (§3.4) — deliberately not from any type of Flotilla's own GitLab client.

use serde_json::{json, Value};

use crate::git::Repository;
use crate::state::Job;

/// Failure reasons recent GitLab accepts (`features.failure_reasons`); the runner maps its own
/// reasons onto this list. Also what a final `PUT` may carry (anything else is stored as
/// `unknown_failure`).
pub const FAILURE_REASONS: &[&str] = &[
    "unknown_failure",
    "script_failure",
    "api_failure",
    "stuck_or_timeout_failure",
    "runner_system_failure",
    "missing_dependency_failure",
    "runner_unsupported",
    "stale_schedule",
    "job_execution_timeout",
    "archived_failure",
    "unmet_prerequisites",
    "scheduler_failure",
    "data_integrity_failure",
    "forward_deployment_failure",
    "user_blocked",
    "project_deleted",
    "ci_quota_exceeded",
    "pipeline_loop_detected",
    "no_matching_runner",
    "trace_size_exceeded",
    "builds_disabled",
    "environment_creation_failure",
    "deployment_rejected",
    "failed_outdated_deployment_job",
    "job_execution_server_timeout",
    "stuck_pending_with_matching_runners",
    "stuck_pending_no_matching_runners",
    "no_updates_running",
    "no_updates_canceling",
    "server_timeout_running",
    "server_timeout_canceling",
    "runner_configuration_error",
    "runner_external_dependency_failure",
    "runner_interrupted",
];

/// The project and server a payload describes.
#[derive(Debug, Clone)]
pub struct Project {
    pub id: u64,
    /// `namespace/name`.
    pub path: String,
    pub pipeline_id: u64,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub server_url: String,
    pub repository: Repository,
}

impl Project {
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    pub fn namespace(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(ns, _)| ns)
    }

    /// Clone URL carrying the job token, as GitLab puts it in `git_info.repo_url`.
    pub fn repo_url(&self, job_token: &str) -> String {
        let (scheme, rest) = self.server_url.split_once("://").unwrap_or(("http", &self.server_url));
        format!("{scheme}://gitlab-ci-token:{job_token}@{rest}/{}.git", self.path)
    }
}

/// A finished dependency whose artifacts a job downloads.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub id: u64,
    pub name: String,
    /// `(filename, size)` of its `archive` artifact, if it uploaded one.
    pub artifacts_file: Option<(String, usize)>,
}

/// Builds the whole 201 body for `job`.
pub fn job_payload(project: &Project, job: &Job, dependencies: &[Dependency]) -> Value {
    let spec = &job.spec;
    let repo = &project.repository;
    let mut steps = vec![json!({
        "name": "script",
        "script": spec.before_script.iter().chain(&spec.script).collect::<Vec<_>>(),
        "timeout": spec.timeout,
        "when": "on_success",
        "allow_failure": false,
    })];
    // GitLab sends no after_script step when the job has none.
    if !spec.after_script.is_empty() {
        steps.push(json!({
            "name": "after_script",
            "script": spec.after_script,
            "timeout": spec.timeout,
            "when": "always",
            "allow_failure": true,
        }));
    }
    let services: Vec<Value> = spec
        .services
        .iter()
        .map(|s| {
            json!({
                "name": s.name, "alias": s.alias, "entrypoint": s.entrypoint, "command": s.command,
                "ports": [], "variables": [],
            })
        })
        .collect();
    let artifacts: Vec<Value> = spec
        .artifacts
        .iter()
        .map(|a| {
            json!({
                "name": a.name, "untracked": a.untracked, "paths": a.paths, "exclude": a.exclude,
                "when": a.when.as_deref().unwrap_or("on_success"),
                "artifact_type": "archive", "artifact_format": "zip", "expire_in": a.expire_in,
            })
        })
        .collect();
    let dependencies: Vec<Value> = dependencies
        .iter()
        .map(|d| {
            // Modern GitLab puts the *requesting* job's token here.
            let mut dep = json!({"id": d.id, "name": d.name, "token": job.token});
            if let Some((filename, size)) = &d.artifacts_file {
                dep["artifacts_file"] = json!({"filename": filename, "size": size});
            }
            dep
        })
        .collect();
    let time_in_queue = job
        .started_at
        .map(|s| (s - job.created_at).num_milliseconds() as f64 / 1000.0)
        .unwrap_or(0.0);
    json!({
        "id": job.id,
        "token": job.token,
        "allow_git_fetch": true,
        "job_info": {
            "id": job.id,
            "name": spec.name,
            "stage": spec.stage,
            "project_id": project.id,
            "project_name": project.name(),
            "project_full_path": project.path,
            "pipeline_id": project.pipeline_id,
            "time_in_queue_seconds": time_in_queue,
            "user_id": 1,
        },
        "git_info": {
            "repo_url": project.repo_url(&job.token),
            "ref": repo.branch,
            "sha": repo.sha,
            "before_sha": "0000000000000000000000000000000000000000",
            "ref_type": "branch",
            "refspecs": [
                format!("+refs/pipelines/{0}:refs/pipelines/{0}", project.pipeline_id),
                format!("+refs/heads/{0}:refs/remotes/origin/{0}", repo.branch),
            ],
            "depth": 20,
            "repo_object_format": "sha1",
            "protected": false,
        },
        "runner_info": {"timeout": spec.timeout, "runner_session_url": null},
        "variables": variables(project, job),
        "steps": steps,
        "image": spec.image.as_ref().map(|name| {
            let mut image = json!({"name": name, "entrypoint": [], "ports": []});
            if let Some(user) = &spec.image_user {
                image["executor_opts"] = json!({"kubernetes": {"user": user}});
            }
            image
        }),
        "services": services,
        "artifacts": artifacts,
        "cache": [],
        "credentials": [],
        "dependencies": dependencies,
        "features": {"trace_sections": true, "failure_reasons": FAILURE_REASONS},
    })
}

/// One payload variable; `file`/`raw` only appear when true, as GitLab sends them.
fn variable(key: &str, value: impl Into<String>, public: bool, masked: bool) -> Value {
    json!({"key": key, "value": value.into(), "public": public, "masked": masked})
}

/// Predefined `CI_*` variables (the ones GitLab computes; the runner adds `CI_PROJECT_DIR`,
/// `CI_RUNNER_*` and friends itself), then the job's own variables.
fn variables(project: &Project, job: &Job) -> Vec<Value> {
    let spec = &job.spec;
    let repo = &project.repository;
    let url = &project.server_url;
    let (scheme, host_port) = url.split_once("://").unwrap_or(("http", url));
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "80"));
    let project_url = format!("{url}/{}", project.path);
    let slug = |s: &str| -> String {
        let lowered: String = s
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        lowered
            .chars()
            .take(63)
            .collect::<String>()
            .trim_matches('-')
            .to_string()
    };
    let public = |k: &str, v: String| variable(k, v, true, false);
    let mut vars = vec![
        public("CI_PIPELINE_ID", project.pipeline_id.to_string()),
        public(
            "CI_PIPELINE_URL",
            format!("{project_url}/-/pipelines/{}", project.pipeline_id),
        ),
        public("CI_JOB_ID", job.id.to_string()),
        public("CI_JOB_URL", format!("{project_url}/-/jobs/{}", job.id)),
        variable("CI_JOB_TOKEN", job.token.clone(), false, true),
        public(
            "CI_JOB_STARTED_AT",
            job.started_at.unwrap_or(job.created_at).to_rfc3339(),
        ),
        variable("CI_REPOSITORY_URL", project.repo_url(&job.token), false, false),
        public("GITLAB_CI", "true".into()),
        public("CI", "true".into()),
        public("CI_SERVER", "yes".into()),
        public("CI_SERVER_URL", url.clone()),
        public("CI_SERVER_HOST", host.into()),
        public("CI_SERVER_PORT", port.into()),
        public("CI_SERVER_PROTOCOL", scheme.into()),
        public("CI_SERVER_NAME", "GitLab".into()),
        public("CI_SERVER_VERSION", "18.3.0".into()),
        public("CI_API_V4_URL", format!("{url}/api/v4")),
        public("CI_PROJECT_ID", project.id.to_string()),
        public("CI_PROJECT_NAME", project.name().into()),
        public("CI_PROJECT_TITLE", project.name().into()),
        public("CI_PROJECT_PATH", project.path.clone()),
        public("CI_PROJECT_PATH_SLUG", slug(&project.path)),
        public("CI_PROJECT_NAMESPACE", project.namespace().into()),
        public(
            "CI_PROJECT_ROOT_NAMESPACE",
            project.path.split('/').next().unwrap_or_default().into(),
        ),
        public("CI_PROJECT_URL", project_url.clone()),
        public("CI_PROJECT_VISIBILITY", "private".into()),
        public("CI_DEFAULT_BRANCH", repo.branch.clone()),
        public("CI_CONFIG_PATH", ".gitlab-ci.yml".into()),
        public("CI_PIPELINE_IID", "1".into()),
        public("CI_PIPELINE_SOURCE", "push".into()),
        public("CI_COMMIT_SHA", repo.sha.clone()),
        public("CI_COMMIT_SHORT_SHA", repo.sha.chars().take(8).collect()),
        public(
            "CI_COMMIT_BEFORE_SHA",
            "0000000000000000000000000000000000000000".into(),
        ),
        public("CI_COMMIT_REF_NAME", repo.branch.clone()),
        public("CI_COMMIT_REF_SLUG", slug(&repo.branch)),
        public("CI_COMMIT_BRANCH", repo.branch.clone()),
        public("CI_COMMIT_MESSAGE", "Initial commit".into()),
        public("CI_COMMIT_TITLE", "Initial commit".into()),
        public("CI_JOB_NAME", spec.name.clone()),
        public("CI_JOB_NAME_SLUG", slug(&spec.name)),
        public("CI_JOB_STAGE", spec.stage.clone()),
        public("CI_NODE_TOTAL", "1".into()),
        public("GITLAB_USER_ID", "1".into()),
        public("GITLAB_USER_LOGIN", "root".into()),
        public("GITLAB_USER_NAME", "Administrator".into()),
        public("GITLAB_USER_EMAIL", "admin@example.com".into()),
    ];
    if let Some(image) = &spec.image {
        vars.push(public("CI_JOB_IMAGE", image.clone()));
    }
    for v in &spec.variables.0 {
        let mut value = variable(&v.key, v.value.clone(), v.public, v.masked);
        if v.file {
            value["file"] = json!(true);
        }
        if v.raw {
            value["raw"] = json!(true);
        }
        vars.push(value);
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{ArtifactsSpec, JobSpec, Variable};
    use crate::state::Store;

    fn project() -> Project {
        Project {
            id: 3,
            path: "group/sub/app".into(),
            pipeline_id: 77,
            server_url: "http://127.0.0.1:4567".into(),
            repository: Repository {
                root: "/r".into(),
                bare: "/r/group/sub/app.git".into(),
                project: "group/sub/app".into(),
                sha: "a".repeat(40),
                branch: "main".into(),
            },
        }
    }

    fn find<'a>(vars: &'a Value, key: &str) -> &'a Value {
        vars.as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == key)
            .unwrap_or_else(|| panic!("no {key}"))
    }

    #[test]
    fn payload_has_the_reference_shape() {
        let store = Store::new(5);
        let mut spec = JobSpec::new("unit tests", ["make test"]).masked_variable("KEY", "secret-value");
        spec.before_script = vec!["echo before".into()];
        spec.after_script = vec!["echo after".into()];
        spec.image = Some("alpine:3.19".into());
        spec.variables.0.push(Variable {
            file: true,
            raw: true,
            ..Variable::plain("CONF", "x=1")
        });
        spec.artifacts = Some(ArtifactsSpec {
            name: None,
            paths: vec!["out/".into()],
            exclude: vec![],
            untracked: false,
            when: None,
            expire_in: Some("1 week".into()),
        });
        let id = store.enqueue(spec).unwrap();
        let job = store.assign_next("glrt-x").unwrap();
        let p = job_payload(&project(), &job, &[]);

        assert_eq!(p["id"], id);
        assert_eq!(p["token"], job.token.as_str());
        assert_eq!(p["job_info"]["project_name"], "app");
        assert_eq!(p["job_info"]["stage"], "test");
        assert_eq!(
            p["git_info"]["repo_url"],
            format!("http://gitlab-ci-token:{}@127.0.0.1:4567/group/sub/app.git", job.token)
        );
        assert_eq!(p["git_info"]["refspecs"][0], "+refs/pipelines/77:refs/pipelines/77");
        assert_eq!(p["git_info"]["depth"], 20);
        assert_eq!(p["runner_info"]["timeout"], 3600);
        assert_eq!(p["steps"][0]["script"], json!(["echo before", "make test"]));
        assert_eq!(p["steps"][1]["when"], "always");
        assert_eq!(p["steps"][1]["allow_failure"], true);
        assert_eq!(p["image"]["name"], "alpine:3.19");
        assert!(p["image"].get("executor_opts").is_none());
        assert_eq!(p["artifacts"][0]["expire_in"], "1 week");
        assert_eq!(p["artifacts"][0]["artifact_type"], "archive");

        let vars = &p["variables"];
        assert_eq!(find(vars, "CI_JOB_ID")["value"], id.to_string());
        assert_eq!(find(vars, "CI_JOB_NAME_SLUG")["value"], "unit-tests");
        assert_eq!(find(vars, "CI_PROJECT_NAMESPACE")["value"], "group/sub");
        assert_eq!(find(vars, "CI_PROJECT_PATH_SLUG")["value"], "group-sub-app");
        assert_eq!(find(vars, "CI_SERVER_PORT")["value"], "4567");
        let token = find(vars, "CI_JOB_TOKEN");
        assert_eq!(
            (token["masked"].as_bool(), token["public"].as_bool()),
            (Some(true), Some(false))
        );
        let key = find(vars, "KEY");
        assert_eq!(
            (key["masked"].as_bool(), key["public"].as_bool()),
            (Some(true), Some(false))
        );
        assert!(find(vars, "CI_JOB_ID").get("file").is_none(), "file only when true");
        assert_eq!(find(vars, "CONF")["file"], true);
        assert_eq!(find(vars, "CONF")["raw"], true);
    }

    #[test]
    fn no_after_script_step_without_after_script() {
        let store = Store::default();
        store.enqueue(JobSpec::new("j", ["true"])).unwrap();
        let job = store.assign_next("r").unwrap();
        let deps = [Dependency {
            id: 9,
            name: "build".into(),
            artifacts_file: Some(("artifacts.zip".into(), 12)),
        }];
        let p = job_payload(&project(), &job, &deps);
        assert_eq!(p["steps"].as_array().unwrap().len(), 1);
        assert_eq!(p["image"], Value::Null);
        assert_eq!(p["dependencies"][0]["token"], job.token.as_str());
        assert_eq!(p["dependencies"][0]["artifacts_file"]["size"], 12);
    }
}
