//! The kubelet's picture of one Pod (what each container is doing) and the Pod `status`
//! rendered from it exactly as a real kubelet reports it: phase, the five conditions in
//! their fixed order, container states and QoS.

use serde_json::{json, Value};

use crate::defaults::now;

#[derive(Debug, Clone, PartialEq)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: String,
    pub message: String,
    pub started_at: Option<String>,
    pub finished_at: String,
    pub container_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting { reason: String, message: Option<String> },
    Running { started_at: String },
    Terminated(Terminated),
}

#[derive(Debug, Clone)]
pub struct ContainerModel {
    pub name: String,
    pub image: String,
    pub init: bool,
    /// A native sidecar: an init container with restartPolicy Always.
    pub sidecar: bool,
    pub state: State,
    pub last_terminated: Option<Terminated>,
    pub restart_count: u32,
    pub container_id: Option<String>,
}

impl ContainerModel {
    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    pub fn terminated(&self) -> Option<&Terminated> {
        match &self.state {
            State::Terminated(t) => Some(t),
            _ => None,
        }
    }

    fn render(&self) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated(t) => json!({"terminated": render_terminated(t)}),
        };
        let running = self.is_running();
        let mut status = json!({
            "name": self.name,
            "image": self.image,
            "imageID": if self.container_id.is_some() { format!("sim.local/{}@sha256:{}", self.image, "0".repeat(64)) } else { String::new() },
            "ready": running,
            "restartCount": self.restart_count,
            "started": running,
            "state": state,
            "lastState": self.last_terminated.as_ref().map(|t| json!({"terminated": render_terminated(t)})).unwrap_or(json!({})),
        });
        if let Some(id) = &self.container_id {
            status["containerID"] = json!(id);
        }
        status
    }
}

fn render_terminated(t: &Terminated) -> Value {
    let mut v = json!({
        "exitCode": t.exit_code,
        "reason": t.reason,
        "finishedAt": t.finished_at,
        "containerID": t.container_id,
    });
    if let Some(s) = &t.started_at {
        v["startedAt"] = json!(s);
    }
    if let Some(sig) = t.signal {
        v["signal"] = json!(sig);
    }
    if !t.message.is_empty() {
        v["message"] = json!(t.message);
    }
    v
}

/// Why a Pod has not been scheduled.
#[derive(Debug, Clone)]
pub struct Unschedulable(pub String);

#[derive(Debug, Clone, Default)]
pub struct PodModel {
    pub scheduled: bool,
    pub unschedulable: Option<Unschedulable>,
    pub accepted: bool,
    pub sandbox_ready: bool,
    pub start_time: Option<String>,
    pub containers: Vec<ContainerModel>,
    /// A terminal reason such as DeadlineExceeded, with its message.
    pub failure: Option<(String, String)>,
    pub host_ip: String,
    pub(super) conditions: Vec<(String, String, String)>, // (type, status, lastTransitionTime)
}

impl PodModel {
    pub fn container_mut(&mut self, name: &str) -> Option<&mut ContainerModel> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    fn regular(&self) -> impl Iterator<Item = &ContainerModel> {
        self.containers.iter().filter(|c| !c.init)
    }

    fn init_done(&self) -> bool {
        self.containers.iter().filter(|c| c.init).all(|c| {
            if c.sidecar {
                c.is_running() || c.restart_count > 0 || c.terminated().is_some()
            } else {
                c.terminated().is_some_and(|t| t.exit_code == 0)
            }
        })
    }

    pub fn init_failed(&self) -> bool {
        self.containers
            .iter()
            .any(|c| c.init && !c.sidecar && c.terminated().is_some_and(|t| t.exit_code != 0))
    }

    /// The phase by the kubelet's rules; sidecars do not count.
    pub fn phase(&self, restart_policy: &str) -> &'static str {
        if self.failure.is_some() {
            return "Failed";
        }
        if restart_policy == "Never" && self.init_failed() {
            return "Failed";
        }
        let regular: Vec<&ContainerModel> = self.regular().collect();
        let all_terminated = regular.iter().all(|c| c.terminated().is_some());
        if all_terminated && regular.iter().all(|c| c.container_id.is_some()) {
            // Sidecars still being stopped keep the Pod Running a moment longer, so a client
            // that sees a terminal phase sees every container terminated.
            if self.containers.iter().any(|c| c.sidecar && c.is_running()) {
                return "Running";
            }
            let all_ok = regular.iter().all(|c| c.terminated().is_some_and(|t| t.exit_code == 0));
            return if all_ok { "Succeeded" } else { "Failed" };
        }
        if regular
            .iter()
            .any(|c| c.is_running() || c.restart_count > 0 || c.terminated().is_some())
        {
            return "Running";
        }
        "Pending"
    }

    /// The `status` object for the store.
    pub fn render(&mut self, restart_policy: &str, qos_class: &str, pod_ip: Option<&str>) -> Value {
        let phase = self.phase(restart_policy);
        let terminal = matches!(phase, "Succeeded" | "Failed");
        let unready: Vec<&str> = self
            .regular()
            .filter(|c| !c.is_running())
            .map(|c| c.name.as_str())
            .collect();
        let incomplete: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| c.init && !(c.terminated().is_some_and(|t| t.exit_code == 0) || (c.sidecar && c.is_running())))
            .map(|c| c.name.as_str())
            .collect();
        let mut conditions = Vec::new();
        if self.accepted {
            conditions.push(("PodReadyToStartContainers", self.sandbox_ready && !terminal, None, None));
            let init_reason = (!self.init_done()).then(|| {
                (
                    "ContainersNotInitialized",
                    format!("containers with incomplete status: [{}]", incomplete.join(" ")),
                )
            });
            conditions.push((
                "Initialized",
                self.init_done(),
                init_reason.clone().map(|r| r.0),
                init_reason.map(|r| r.1),
            ));
            let ready = unready.is_empty() && !terminal;
            let (reason, message) = if ready {
                (None, None)
            } else if terminal {
                (
                    Some(if phase == "Succeeded" {
                        "PodCompleted"
                    } else {
                        "PodFailed"
                    }),
                    None,
                )
            } else {
                (
                    Some("ContainersNotReady"),
                    Some(format!("containers with unready status: [{}]", unready.join(" "))),
                )
            };
            conditions.push(("Ready", ready, reason, message.clone()));
            conditions.push(("ContainersReady", ready, reason, message));
        }
        if self.scheduled {
            conditions.push(("PodScheduled", true, None, None));
        } else if let Some(Unschedulable(msg)) = &self.unschedulable {
            conditions.push(("PodScheduled", false, Some("Unschedulable"), Some(msg.clone())));
        }
        let rendered_conditions: Vec<Value> = conditions
            .into_iter()
            .map(|(kind, status, reason, message)| {
                let status = if status { "True" } else { "False" };
                let since = self.transition_time(kind, status);
                let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
                if let Some(r) = reason {
                    c["reason"] = json!(r);
                }
                if let Some(m) = message {
                    c["message"] = json!(m);
                }
                c
            })
            .collect();
        let mut status = json!({"phase": phase, "qosClass": qos_class});
        if !rendered_conditions.is_empty() {
            status["conditions"] = json!(rendered_conditions);
        }
        if let Some((reason, message)) = &self.failure {
            status["reason"] = json!(reason);
            status["message"] = json!(message);
        }
        if self.accepted {
            status["hostIP"] = json!(self.host_ip);
            status["hostIPs"] = json!([{"ip": self.host_ip}]);
            if let Some(t) = &self.start_time {
                status["startTime"] = json!(t);
            }
            let inits: Vec<Value> = self
                .containers
                .iter()
                .filter(|c| c.init)
                .map(ContainerModel::render)
                .collect();
            if !inits.is_empty() {
                status["initContainerStatuses"] = json!(inits);
            }
            status["containerStatuses"] = json!(self.regular().map(ContainerModel::render).collect::<Vec<_>>());
        }
        if let Some(ip) = pod_ip {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        status
    }

    fn transition_time(&mut self, kind: &str, status: &str) -> String {
        match self.conditions.iter_mut().find(|(k, _, _)| k == kind) {
            Some((_, s, t)) if s == status => t.clone(),
            Some(entry) => {
                entry.1 = status.to_string();
                entry.2 = now();
                entry.2.clone()
            }
            None => {
                let t = now();
                self.conditions.push((kind.to_string(), status.to_string(), t.clone()));
                t
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, init: bool, state: State) -> ContainerModel {
        ContainerModel {
            name: name.into(),
            image: "busybox".into(),
            init,
            sidecar: false,
            state,
            last_terminated: None,
            restart_count: 0,
            container_id: Some("containerd://x".into()),
        }
    }

    fn exited(code: i32) -> State {
        State::Terminated(Terminated {
            exit_code: code,
            signal: None,
            reason: if code == 0 { "Completed".into() } else { "Error".into() },
            message: String::new(),
            started_at: None,
            finished_at: now(),
            container_id: "containerd://x".into(),
        })
    }

    fn model(containers: Vec<ContainerModel>) -> PodModel {
        PodModel {
            scheduled: true,
            accepted: true,
            sandbox_ready: true,
            containers,
            host_ip: "127.0.0.1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn running_then_succeeded() {
        let mut pod = model(vec![container("main", false, State::Running { started_at: now() })]);
        let status = pod.render("Never", "BestEffort", Some("127.0.0.1"));
        assert_eq!(status["phase"], "Running");
        let types: Vec<_> = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert_eq!(status["conditions"][2]["status"], "True");
        pod.containers[0].state = exited(0);
        let status = pod.render("Never", "BestEffort", Some("127.0.0.1"));
        assert_eq!(status["phase"], "Succeeded");
        assert_eq!(status["conditions"][2]["reason"], "PodCompleted");
        assert_eq!(
            status["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    }

    #[test]
    fn one_failure_fails_the_pod_once_all_exit() {
        let mut pod = model(vec![
            container("a", false, exited(0)),
            container("b", false, State::Running { started_at: now() }),
        ]);
        assert_eq!(pod.phase("Never"), "Running");
        pod.containers[1].state = exited(3);
        assert_eq!(pod.phase("Never"), "Failed");
    }

    #[test]
    fn init_containers_gate_initialized() {
        let mut pod = model(vec![
            container("init", true, State::Running { started_at: now() }),
            container(
                "main",
                false,
                State::Waiting {
                    reason: "PodInitializing".into(),
                    message: None,
                },
            ),
        ]);
        let status = pod.render("Never", "BestEffort", None);
        assert_eq!(status["phase"], "Pending");
        assert_eq!(status["conditions"][1]["reason"], "ContainersNotInitialized");
        assert_eq!(
            status["conditions"][1]["message"],
            "containers with incomplete status: [init]"
        );
        pod.containers[0].state = exited(1);
        assert_eq!(pod.phase("Never"), "Failed");
    }

    #[test]
    fn sidecars_do_not_decide_the_phase() {
        let mut sidecar = container("side", true, State::Running { started_at: now() });
        sidecar.sidecar = true;
        let mut pod = model(vec![sidecar, container("main", false, exited(0))]);
        // Still being stopped.
        assert_eq!(pod.phase("Never"), "Running");
        pod.containers[0].state = exited(137);
        assert_eq!(pod.phase("Never"), "Succeeded");
    }
}
