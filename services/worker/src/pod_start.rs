//! Whether a job's Pod has started, from the Pod object alone: started once its `build`
//! container runs (or the Pod already ended), failed at once when a container waits for a
//! reason that no amount of waiting fixes (a failed pull, a bad image name, a config error),
//! pending otherwise. The job runner watches the Pod with this until `poll_timeout`, as the
//! official runner polls it, and names the reason when it gives up.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Why a job's Pod never started. The text goes to the end of the job's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartFailure {
    #[error("failed to pull image {image:?} for container {container} with pull policy {policy}: {message}")]
    ImagePull {
        container: String,
        image: String,
        /// The container's `imagePullPolicy` (`cluster default` when unset).
        policy: String,
        message: String,
    },
    #[error("container {container} cannot start: {reason}: {message}")]
    Container {
        container: String,
        reason: String,
        message: String,
    },
    #[error("the job's Pod was deleted before it started")]
    Deleted,
    #[error("the job was canceled before its Pod started")]
    Canceled,
    #[error("timed out waiting for pod to start (last phase: {phase}){detail}")]
    Timeout {
        phase: String,
        /// The Pod's unmet conditions, e.g. `; PodScheduled is false (Unschedulable: 0/3 …)`.
        detail: String,
    },
}

impl StartFailure {
    /// The failure reason GitLab is told. A Pod that never got a node is a system failure too,
    /// as in the official runner: GitLab's `scheduler_failure` means its own scheduler.
    pub fn failure_reason(&self) -> &'static str {
        match self {
            StartFailure::ImagePull { .. } => "image_pull_failure",
            StartFailure::Container { reason, .. } if reason == "InvalidImageName" => "image_pull_failure",
            StartFailure::Canceled => "job_canceled",
            _ => "runner_system_failure",
        }
    }
}

/// Where a job's Pod is on its way to running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Pending,
    Started,
    Failed(StartFailure),
}

/// Waiting reasons after which a container of a `restartPolicy: Never` Pod will not start by
/// itself (the official runner's list).
const PULL_FAILURES: [&str; 2] = ["ErrImagePull", "ImagePullBackOff"];
const TERMINAL_WAITS: [&str; 3] = ["InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError"];

/// The Pod's progress (`None`: the Pod is gone).
pub fn progress(pod: Option<&Pod>) -> Progress {
    let Some(pod) = pod else {
        return Progress::Failed(StartFailure::Deleted);
    };
    let status = pod.status.clone().unwrap_or_default();
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return Progress::Started;
    }
    let statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for container in statuses {
        if let Some(failure) = terminal_wait(pod, container) {
            return Progress::Failed(failure);
        }
    }
    let build_running = status
        .container_statuses
        .iter()
        .flatten()
        .filter(|c| c.name == "build")
        .filter_map(|c| c.state.as_ref())
        .any(|state| state.running.is_some() || state.terminated.is_some());
    if build_running {
        Progress::Started
    } else {
        Progress::Pending
    }
}

fn terminal_wait(pod: &Pod, container: &ContainerStatus) -> Option<StartFailure> {
    let waiting = container.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.clone().unwrap_or_default();
    let message = waiting.message.clone().unwrap_or_default();
    if PULL_FAILURES.contains(&reason.as_str()) {
        let policy = pod
            .spec
            .iter()
            .flat_map(|spec| spec.init_containers.iter().flatten().chain(&spec.containers))
            .find(|c| c.name == container.name)
            .and_then(|c| c.image_pull_policy.clone())
            .unwrap_or_else(|| "cluster default".into());
        return Some(StartFailure::ImagePull {
            container: container.name.clone(),
            image: container.image.clone(),
            policy,
            message,
        });
    }
    TERMINAL_WAITS
        .contains(&reason.as_str())
        .then(|| StartFailure::Container {
            container: container.name.clone(),
            reason,
            message,
        })
}

/// What to say when the Pod did not start in time: its phase and its unmet conditions.
pub fn timed_out(pod: Option<&Pod>) -> StartFailure {
    let status = pod.and_then(|p| p.status.clone()).unwrap_or_default();
    let detail: String = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status != "True")
        .map(|c| {
            let why = [c.reason.as_deref(), c.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            format!(
                "; {} is false{}",
                c.type_,
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                }
            )
        })
        .collect();
    StartFailure::Timeout {
        phase: status.phase.unwrap_or_else(|| "Pending".into()),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn with_status(containers: serde_json::Value) -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [
                {"name": "helper", "image": "helper:1"},
                {"name": "build", "image": "alpine:3", "imagePullPolicy": "Always"},
            ]},
            "status": {"phase": "Pending", "containerStatuses": containers},
        }))
    }

    #[test]
    fn started_when_the_build_container_runs_or_the_pod_ended() {
        let waiting = serde_json::json!([{"name": "build", "image": "alpine:3", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]);
        assert_eq!(progress(Some(&with_status(waiting))), Progress::Pending);
        let running = serde_json::json!([{"name": "build", "image": "alpine:3", "imageID": "", "ready": true,
            "restartCount": 0, "state": {"running": {}}}]);
        assert_eq!(progress(Some(&with_status(running))), Progress::Started);
        let ended = pod(serde_json::json!({"metadata": {"name": "p"}, "status": {"phase": "Failed"}}));
        assert_eq!(progress(Some(&ended)), Progress::Started);
        assert_eq!(progress(None), Progress::Failed(StartFailure::Deleted));
    }

    #[test]
    fn a_failed_pull_names_the_container_image_and_policy() {
        let backoff = serde_json::json!([{"name": "build", "image": "alpine:3", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]);
        let Progress::Failed(failure) = progress(Some(&with_status(backoff))) else {
            panic!("a pull back-off is final");
        };
        assert_eq!(failure.failure_reason(), "image_pull_failure");
        assert_eq!(
            failure.to_string(),
            "failed to pull image \"alpine:3\" for container build with pull policy Always: Back-off pulling image"
        );
    }

    #[test]
    fn a_bad_container_config_fails_at_once() {
        let config = serde_json::json!([{"name": "build", "image": "alpine:3", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"x\" not found"}}}]);
        let Progress::Failed(failure) = progress(Some(&with_status(config))) else {
            panic!("a config error is final");
        };
        assert_eq!(failure.failure_reason(), "runner_system_failure");
        assert!(failure.to_string().contains("secret \"x\" not found"));
    }

    #[test]
    fn a_timeout_says_why_the_pod_waits() {
        let unschedulable = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/1 nodes are available"}]},
        }));
        let failure = timed_out(Some(&unschedulable));
        assert_eq!(failure.failure_reason(), "runner_system_failure");
        assert_eq!(
            failure.to_string(),
            "timed out waiting for pod to start (last phase: Pending); PodScheduled is false (Unschedulable: 0/1 nodes are available)"
        );
        assert_eq!(
            timed_out(None).to_string(),
            "timed out waiting for pod to start (last phase: Pending)"
        );
    }
}
