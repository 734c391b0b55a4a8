//! One Pod's life on the simulated node: schedule, set up volumes, pull, start init
//! containers in order and then the regular ones, restart by policy, honour
//! activeDeadlineSeconds, and terminate gracefully (SIGTERM, then SIGKILL after the grace
//! period) when deleted. Every step is one status write, like the real kubelet's.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::env::{container_env, default_path, expand};
use super::events::{container_path, record, Source};
use super::logs::ContainerLog;
use super::process::{self, Mount, Namespace, ProcessSpec};
use super::status::{ContainerModel, PodModel, State, Terminated, Unschedulable};
use super::volumes::{self, Volumes};
use super::{ContainerRun, Kubelet, PodRuntime};
use crate::defaults::{now, qos_class};
use crate::resources::PODS;

/// Why the worker stopped what it was doing.
enum Interrupt {
    /// Deletion asked for, with this grace period (zero: the object is already gone).
    Terminate(Duration),
}

struct Exit {
    name: String,
    terminated: Terminated,
}

pub struct PodWorker {
    kubelet: Arc<Kubelet>,
    runtime: Arc<PodRuntime>,
    namespace: String,
    name: String,
    spec: Value,
    restart_policy: String,
    model: PodModel,
    volumes: Volumes,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
    terminate: tokio::sync::watch::Receiver<Option<Duration>>,
    /// The Pod object is gone from the store: stop writing status.
    gone: bool,
    pod_ip: Option<String>,
}

impl PodWorker {
    pub fn new(kubelet: Arc<Kubelet>, runtime: Arc<PodRuntime>, pod: Value) -> PodWorker {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let terminate = runtime.terminate.subscribe();
        let spec = pod["spec"].clone();
        let containers = ["initContainers", "containers"]
            .iter()
            .flat_map(|list| {
                spec[*list]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |c| (*list == "initContainers", c))
            })
            .map(|(init, c)| ContainerModel {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                image: c["image"].as_str().unwrap_or_default().to_string(),
                init,
                sidecar: init && c["restartPolicy"] == "Always",
                state: State::Waiting {
                    reason: if init { "PodInitializing" } else { "ContainerCreating" }.to_string(),
                    message: None,
                },
                last_terminated: None,
                restart_count: 0,
                container_id: None,
            })
            .collect();
        let host_ip = kubelet.node.ip.clone();
        PodWorker {
            namespace: pod["metadata"]["namespace"].as_str().unwrap_or("default").to_string(),
            name: pod["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            restart_policy: spec["restartPolicy"].as_str().unwrap_or("Always").to_string(),
            spec,
            model: PodModel {
                containers,
                host_ip,
                ..Default::default()
            },
            volumes: Volumes::default(),
            kubelet,
            runtime,
            exits_tx,
            exits,
            terminate,
            gone: false,
            pod_ip: None,
        }
    }

    pub async fn run(mut self) {
        let outcome = self.live().await;
        let grace = match outcome {
            Err(Interrupt::Terminate(grace)) => grace,
            Ok(()) => {
                // Finished on its own: keep logs and status until someone deletes it.
                match self.wait_for_termination().await {
                    Interrupt::Terminate(grace) => grace,
                }
            }
        };
        self.terminate_all(grace).await;
        self.finish().await;
    }

    /// The Pod's life until it has finished on its own (Ok) or is interrupted.
    async fn live(&mut self) -> Result<(), Interrupt> {
        self.schedule().await?;
        self.accept();
        self.set_up_volumes().await?;
        self.model.sandbox_ready = true;
        self.push_status();
        self.run_init_containers().await?;
        let regular: Vec<Value> = self.spec["containers"].as_array().cloned().unwrap_or_default();
        for container in &regular {
            self.start(container, false).await?;
        }
        self.supervise().await
    }

    // ---- scheduling and admission ------------------------------------------------

    async fn schedule(&mut self) -> Result<(), Interrupt> {
        let created = tokio::time::Instant::now();
        let mut delay = self.kubelet.faults.schedule_delay();
        loop {
            let deadline = created + *delay.borrow_and_update();
            if deadline <= tokio::time::Instant::now() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                // The delay changed: recompute the deadline.
                _ = delay.changed() => {}
                grace = wait_requested(&mut self.terminate) => return Err(Interrupt::Terminate(grace)),
            }
        }
        if let Some(reason) = self.unschedulable_reason() {
            let message = format!("0/1 nodes are available: 1 {reason}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.");
            self.model.unschedulable = Some(Unschedulable(message.clone()));
            self.push_status();
            self.event(true, "FailedScheduling", &message, None, Source::Scheduler);
            // The node never changes, so the Pod stays Pending until deleted.
            return Err(self.wait_for_termination().await);
        }
        let node = self.kubelet.node.name.clone();
        self.model.scheduled = true;
        let status = self.render();
        self.write(|pod| {
            pod["spec"]["nodeName"] = json!(node);
            pod["status"] = status;
        });
        let message = format!(
            "Successfully assigned {}/{} to {}",
            self.namespace, self.name, self.kubelet.node.name
        );
        self.event(false, "Scheduled", &message, None, Source::Scheduler);
        Ok(())
    }

    fn unschedulable_reason(&self) -> Option<String> {
        let selector = self.spec["nodeSelector"].as_object()?;
        let labels = &self.kubelet.node.labels;
        let matches = selector
            .iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
        (!matches).then(|| "node(s) didn't match Pod's node affinity/selector".to_string())
    }

    fn accept(&mut self) {
        self.model.accepted = true;
        self.model.start_time = Some(now());
        self.push_status();
    }

    async fn set_up_volumes(&mut self) -> Result<(), Interrupt> {
        let mut last_error = String::new();
        loop {
            let store = self.kubelet.store.clone();
            let pod = self.current_object();
            let dir = self.runtime.dir.clone();
            let data_dir = self.kubelet.data_dir.clone();
            let result = tokio::task::spawn_blocking(move || volumes::set_up(&store, &pod, &dir, &data_dir)).await;
            match result {
                Ok(Ok(volumes)) => {
                    *self.runtime.volumes.lock().unwrap() = Some(volumes.clone());
                    self.volumes = volumes;
                    return self.write_hosts_file().await;
                }
                Ok(Err(error)) => {
                    let message = error.to_string();
                    if message != last_error {
                        self.event(true, "FailedMount", &message, None, Source::Kubelet);
                        last_error = message;
                    }
                    self.pause(Duration::from_millis(500)).await?;
                }
                Err(join) => {
                    self.event(true, "FailedMount", &join.to_string(), None, Source::Kubelet);
                    return Err(self.wait_for_termination().await);
                }
            }
        }
    }

    /// The kubelet-managed /etc/hosts: the Pod's own name and its hostAliases.
    async fn write_hosts_file(&mut self) -> Result<(), Interrupt> {
        let ip = &self.kubelet.node.ip;
        let mut hosts = format!(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n{ip}\t{}\n",
            self.name
        );
        if let Some(aliases) = self.spec["hostAliases"].as_array().filter(|a| !a.is_empty()) {
            hosts.push_str("\n# Entries added by HostAliases.\n");
            for alias in aliases {
                let names: Vec<&str> = alias["hostnames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                hosts.push_str(&format!(
                    "{}\t{}\n",
                    alias["ip"].as_str().unwrap_or(""),
                    names.join("\t")
                ));
            }
        }
        let path = self.runtime.dir.join("etc-hosts");
        if let Some(parent) = path.parent() {
            let _ = tokio::fs::create_dir_all(parent).await;
        }
        let _ = tokio::fs::write(&path, hosts).await;
        Ok(())
    }

    // ---- containers --------------------------------------------------------------------

    async fn run_init_containers(&mut self) -> Result<(), Interrupt> {
        let inits: Vec<Value> = self.spec["initContainers"].as_array().cloned().unwrap_or_default();
        for container in &inits {
            let name = container["name"].as_str().unwrap_or_default().to_string();
            let sidecar = container["restartPolicy"] == "Always";
            loop {
                self.start(container, true).await?;
                if sidecar {
                    break;
                }
                let exit = self.wait_exit_of(&name).await?;
                if exit == 0 {
                    break;
                }
                if self.restart_policy == "Never" {
                    self.push_status();
                    // The Pod has failed; nothing else starts.
                    return Ok(());
                }
                self.back_off(&name, true).await?;
            }
        }
        Ok(())
    }

    /// Waits for `name` to exit, handling other containers' exits (sidecars) meanwhile.
    async fn wait_exit_of(&mut self, name: &str) -> Result<i32, Interrupt> {
        loop {
            let exit = self.next_exit(None).await?;
            let code = exit.terminated.exit_code;
            let is_target = exit.name == name;
            self.record_exit(exit);
            if is_target {
                return Ok(code);
            }
        }
    }

    /// Runs until every regular container has finished for good.
    async fn supervise(&mut self) -> Result<(), Interrupt> {
        if self.model.init_failed() && self.restart_policy == "Never" {
            return Ok(());
        }
        let deadline = self.spec["activeDeadlineSeconds"]
            .as_u64()
            .map(|s| Instant::now() + Duration::from_secs(s));
        loop {
            if self.regular_all_done() {
                self.stop_sidecars().await;
                self.model.sandbox_ready = false;
                self.push_status();
                return Ok(());
            }
            let exit = match self.next_exit(deadline).await {
                Ok(exit) => exit,
                Err(Interrupt::Terminate(g)) if deadline.is_some_and(|d| Instant::now() >= d) && g == Duration::MAX => {
                    self.model.failure = Some((
                        "DeadlineExceeded".into(),
                        "Pod was active on the node longer than the specified deadline".into(),
                    ));
                    self.event(
                        true,
                        "DeadlineExceeded",
                        "Pod was active on the node longer than the specified deadline",
                        None,
                        Source::Kubelet,
                    );
                    self.kill_running(Duration::from_secs(self.grace_seconds())).await;
                    self.model.sandbox_ready = false;
                    self.push_status();
                    return Ok(());
                }
                Err(other) => return Err(other),
            };
            let name = exit.name.clone();
            let code = exit.terminated.exit_code;
            let is_sidecar = self.model.containers.iter().any(|c| c.name == name && c.sidecar);
            self.record_exit(exit);
            let restart =
                is_sidecar || self.restart_policy == "Always" || (self.restart_policy == "OnFailure" && code != 0);
            if restart && !self.regular_all_done_except_restarting(&name, is_sidecar) {
                self.back_off(&name, is_sidecar).await?;
                let container = self.container_spec(&name);
                self.start(&container, is_sidecar).await?;
            }
        }
    }

    fn regular_all_done(&self) -> bool {
        let restart_always = self.restart_policy == "Always";
        self.model
            .containers
            .iter()
            .filter(|c| !c.init)
            .all(|c| match c.terminated() {
                Some(t) => !restart_always && (self.restart_policy == "Never" || t.exit_code == 0),
                None => false,
            })
    }

    fn regular_all_done_except_restarting(&self, _name: &str, is_sidecar: bool) -> bool {
        // A sidecar is not restarted once the regular containers are finished.
        is_sidecar && self.regular_all_done()
    }

    fn container_spec(&self, name: &str) -> Value {
        ["initContainers", "containers"]
            .iter()
            .filter_map(|l| self.spec[*l].as_array())
            .flatten()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_default()
    }

    fn grace_seconds(&self) -> u64 {
        self.spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30)
    }

    /// CrashLoopBackOff: 10 s doubling to 5 min, as the kubelet does.
    async fn back_off(&mut self, name: &str, init: bool) -> Result<(), Interrupt> {
        let restarts = self.model.container_mut(name).map(|c| c.restart_count).unwrap_or(0);
        let delay = Duration::from_secs((10u64 << restarts.min(5)).min(300));
        let message = format!(
            "back-off {}s restarting failed container={name} pod={}_{}({})",
            delay.as_secs(),
            self.name,
            self.namespace,
            self.runtime.uid
        );
        if let Some(c) = self.model.container_mut(name) {
            c.last_terminated = c.terminated().cloned();
            c.restart_count += 1;
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(message),
            };
        }
        self.push_status();
        let text = format!(
            "Back-off restarting failed container {name} in pod {}_{}({})",
            self.name, self.namespace, self.runtime.uid
        );
        self.event(
            true,
            "BackOff",
            &text,
            Some(&container_path(init, name)),
            Source::Kubelet,
        );
        self.pause(delay).await
    }

    fn record_exit(&mut self, exit: Exit) {
        self.runtime.update_container(&exit.name, |run| run.pid = None);
        if let Some(c) = self.model.container_mut(&exit.name) {
            c.state = State::Terminated(exit.terminated);
        }
        self.push_status();
    }

    /// Pull, configure and start one container; its exit arrives later on `exits`.
    async fn start(&mut self, container: &Value, init: bool) -> Result<(), Interrupt> {
        let name = container["name"].as_str().unwrap_or_default().to_string();
        let path = container_path(init, &name);
        self.pull(container, &path).await?;
        let pod = self.current_object();
        let env = loop {
            match container_env(&self.kubelet.store, &pod, container, &self.base_env(container)) {
                Ok(env) => break env,
                Err(error) => {
                    self.set_state(
                        &name,
                        State::Waiting {
                            reason: "CreateContainerConfigError".into(),
                            message: Some(error.0.clone()),
                        },
                    );
                    self.event(
                        true,
                        "Failed",
                        &format!("Error: {}", error.0),
                        Some(&path),
                        Source::Kubelet,
                    );
                    self.pause(Duration::from_secs(1)).await?;
                }
            }
        };
        let restart = self.model.container_mut(&name).map(|c| c.restart_count).unwrap_or(0);
        let run_dir = self
            .runtime
            .dir
            .join("containers")
            .join(&name)
            .join(restart.to_string());
        let _ = tokio::fs::create_dir_all(&run_dir).await;
        let termination_log = run_dir.join("termination-log");
        let _ = tokio::fs::write(&termination_log, b"").await;
        let _ = tokio::fs::set_permissions(&termination_log, std::fs::Permissions::from_mode(0o666)).await;
        let spec = self.process_spec(container, env, &termination_log);
        let log = match ContainerLog::create(&run_dir.join("log")).await {
            Ok(log) => Arc::new(log),
            Err(error) => {
                self.start_failed(&name, &path, &error.to_string());
                return Ok(());
            }
        };
        let previous = self.runtime.container(&name).map(|run| run.log);
        let container_id = format!("containerd://{}", random_hex(64));
        self.event(
            false,
            "Created",
            &format!("Created container: {name}"),
            Some(&path),
            Source::Kubelet,
        );
        let template = self.kubelet.root_template().await;
        let spawned = match template {
            Ok(pid) => process::spawn_off_thread(spec.clone(), Namespace::CopyOf(pid)).await,
            Err(error) => Err(error),
        };
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                log.finish().await;
                self.runtime.set_container(
                    &name,
                    ContainerRun {
                        log,
                        previous,
                        pid: None,
                        spec,
                    },
                );
                let program = container["command"]
                    .get(0)
                    .or(container["args"].get(0))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let message = process::start_error_message(program, &error);
                self.start_failed(&name, &path, &message);
                if let Some(c) = self.model.container_mut(&name) {
                    c.container_id = Some(container_id);
                }
                return Ok(());
            }
        };
        let started_at = now();
        self.runtime.set_container(
            &name,
            ContainerRun {
                log: log.clone(),
                previous,
                pid: child.id(),
                spec,
            },
        );
        if let Some(c) = self.model.container_mut(&name) {
            c.container_id = Some(container_id.clone());
            c.state = State::Running {
                started_at: started_at.clone(),
            };
        }
        self.event(
            false,
            "Started",
            &format!("Started container {name}"),
            Some(&path),
            Source::Kubelet,
        );
        self.push_status();
        let policy = container["terminationMessagePolicy"]
            .as_str()
            .unwrap_or("File")
            .to_string();
        tokio::spawn(watch_process(
            child,
            log,
            termination_log,
            policy,
            name,
            started_at,
            container_id,
            self.exits_tx.clone(),
        ));
        Ok(())
    }

    fn start_failed(&mut self, name: &str, path: &str, message: &str) {
        let finished = now();
        let terminated = Terminated {
            exit_code: 128,
            signal: None,
            reason: "StartError".into(),
            message: message.to_string(),
            started_at: Some(finished.clone()),
            finished_at: finished,
            container_id: String::new(),
        };
        self.event(
            true,
            "Failed",
            &format!("Error: {message}"),
            Some(path),
            Source::Kubelet,
        );
        let _ = self.exits_tx.send(Exit {
            name: name.to_string(),
            terminated,
        });
    }

    async fn pull(&mut self, container: &Value, path: &str) -> Result<(), Interrupt> {
        let name = container["name"].as_str().unwrap_or_default().to_string();
        let image = container["image"].as_str().unwrap_or_default().to_string();
        let policy = container["imagePullPolicy"]
            .as_str()
            .unwrap_or("IfNotPresent")
            .to_string();
        let mut attempt = 0u32;
        while self.kubelet.faults.pull_fails(&image, &policy) {
            let failure = format!("failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": pull access denied, repository does not exist or may require authorization (kube-sim fault injection)");
            self.event(
                false,
                "Pulling",
                &format!("Pulling image \"{image}\""),
                Some(path),
                Source::Kubelet,
            );
            self.set_state(
                &name,
                State::Waiting {
                    reason: "ErrImagePull".into(),
                    message: Some(failure.clone()),
                },
            );
            self.event(
                true,
                "Failed",
                &format!("Failed to pull image \"{image}\": {failure}"),
                Some(path),
                Source::Kubelet,
            );
            self.event(true, "Failed", "Error: ErrImagePull", Some(path), Source::Kubelet);
            // Short back-off: the real one is 10 s doubling, too slow for tests to watch.
            self.pause(Duration::from_millis(300)).await?;
            let message = format!("Back-off pulling image \"{image}\"");
            self.set_state(
                &name,
                State::Waiting {
                    reason: "ImagePullBackOff".into(),
                    message: Some(message.clone()),
                },
            );
            self.event(false, "BackOff", &message, Some(path), Source::Kubelet);
            self.event(true, "Failed", "Error: ImagePullBackOff", Some(path), Source::Kubelet);
            attempt += 1;
            self.pause(Duration::from_millis((300 << attempt.min(5)).min(5000)))
                .await?;
        }
        if policy == "Always" {
            self.event(
                false,
                "Pulling",
                &format!("Pulling image \"{image}\""),
                Some(path),
                Source::Kubelet,
            );
            let ms = rand::thread_rng().gen_range(5..40);
            self.event(
                false,
                "Pulled",
                &format!(
                    "Successfully pulled image \"{image}\" in {ms}ms ({ms}ms including waiting). Image size: 0 bytes."
                ),
                Some(path),
                Source::Kubelet,
            );
        } else {
            self.event(
                false,
                "Pulled",
                &format!("Container image \"{image}\" already present on machine"),
                Some(path),
                Source::Kubelet,
            );
        }
        Ok(())
    }

    fn base_env(&self, _container: &Value) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), default_path().into()),
            ("HOSTNAME".into(), self.name.clone()),
            ("HOME".into(), "/root".into()),
        ]
    }

    fn process_spec(
        &self,
        container: &Value,
        env: Vec<(String, String)>,
        termination_log: &std::path::Path,
    ) -> ProcessSpec {
        let words = |key: &str| -> Vec<String> {
            container[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|w| expand(w, &env))
                .collect()
        };
        let mut argv = words("command");
        argv.extend(words("args"));
        let mut mounts = volumes::mounts_for(container, &self.volumes);
        mounts.push(Mount {
            source: self.runtime.dir.join("etc-hosts"),
            target: PathBuf::from("/etc/hosts"),
            read_only: false,
        });
        let message_path = container["terminationMessagePath"]
            .as_str()
            .unwrap_or("/dev/termination-log");
        mounts.push(Mount {
            source: termination_log.to_path_buf(),
            target: PathBuf::from(message_path),
            read_only: false,
        });
        let pod_ctx = &self.spec["securityContext"];
        let ctx = &container["securityContext"];
        let pick = |key: &str| ctx[key].as_u64().or(pod_ctx[key].as_u64()).map(|v| v as u32);
        let mut groups: Vec<u32> = pod_ctx["supplementalGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .map(|g| g as u32)
            .collect();
        if let Some(fs_group) = pod_ctx["fsGroup"].as_u64() {
            groups.push(fs_group as u32);
        }
        let uid = pick("runAsUser");
        let mut env = env;
        if uid.is_some_and(|u| u != 0) {
            env.iter_mut()
                .filter(|(k, _)| k == "HOME")
                .for_each(|(_, v)| *v = "/".into());
        }
        ProcessSpec {
            argv,
            env,
            working_dir: container["workingDir"]
                .as_str()
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            mounts,
            uid,
            gid: pick("runAsGroup"),
            groups,
            stdin: false,
            root_dir: Some(self.kubelet.root_dir()),
            capabilities: Some(super::capabilities::mask(ctx)),
        }
    }

    fn set_state(&mut self, name: &str, state: State) {
        if let Some(c) = self.model.container_mut(name) {
            if c.state == state {
                return;
            }
            c.state = state;
        }
        self.push_status();
    }

    // ---- waiting and termination -------------------------------------------------

    fn termination_requested(&self) -> Option<Duration> {
        *self.terminate.borrow()
    }

    /// Sleeps, unless deletion is asked for first.
    async fn pause(&mut self, duration: Duration) -> Result<(), Interrupt> {
        if let Some(grace) = self.termination_requested() {
            return Err(Interrupt::Terminate(grace));
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            grace = wait_requested(&mut self.terminate) => Err(Interrupt::Terminate(grace)),
        }
    }

    async fn wait_for_termination(&mut self) -> Interrupt {
        let grace = wait_requested(&mut self.terminate).await;
        Interrupt::Terminate(grace)
    }

    /// The next container exit; a deadline reached is `Terminate(Duration::MAX)`.
    async fn next_exit(&mut self, deadline: Option<Instant>) -> Result<Exit, Interrupt> {
        if let Some(grace) = self.termination_requested() {
            return Err(Interrupt::Terminate(grace));
        }
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            exit = self.exits.recv() => exit.ok_or(Interrupt::Terminate(Duration::ZERO)),
            grace = wait_requested(&mut self.terminate) => Err(Interrupt::Terminate(grace)),
            _ = until_deadline => Err(Interrupt::Terminate(Duration::MAX)),
        }
    }

    /// Graceful stop: regular containers, then sidecars in reverse order.
    async fn terminate_all(&mut self, grace: Duration) {
        if grace.is_zero() {
            self.gone = self.gone || self.kubelet.store.try_get(PODS, &self.namespace, &self.name).is_none();
        }
        self.kill_running(grace).await;
        self.stop_sidecars_with(grace).await;
    }

    async fn kill_running(&mut self, grace: Duration) {
        let names: Vec<(String, bool)> = self
            .model
            .containers
            .iter()
            .filter(|c| !c.init && c.is_running())
            .map(|c| (c.name.clone(), false))
            .collect();
        self.stop(names, grace).await;
    }

    async fn stop_sidecars(&mut self) {
        let grace = Duration::from_secs(self.grace_seconds());
        self.stop_sidecars_with(grace).await;
    }

    async fn stop_sidecars_with(&mut self, grace: Duration) {
        let sidecars: Vec<(String, bool)> = self
            .model
            .containers
            .iter()
            .rev()
            .filter(|c| c.init && c.is_running())
            .map(|c| (c.name.clone(), true))
            .collect();
        for sidecar in sidecars {
            self.stop(vec![sidecar], grace).await;
        }
    }

    /// SIGTERM, wait up to `grace`, SIGKILL, and record each container's end.
    async fn stop(&mut self, containers: Vec<(String, bool)>, grace: Duration) {
        if containers.is_empty() {
            return;
        }
        let mut pending = Vec::new();
        for (name, init) in &containers {
            let Some(pid) = self.runtime.container(name).and_then(|c| c.pid) else {
                continue;
            };
            if !self.gone {
                self.event(
                    false,
                    "Killing",
                    &format!("Stopping container {name}"),
                    Some(&container_path(*init, name)),
                    Source::Kubelet,
                );
            }
            process::signal_group(pid, if grace.is_zero() { libc::SIGKILL } else { libc::SIGTERM });
            pending.push((name.clone(), pid));
        }
        let deadline = tokio::time::Instant::now() + grace.min(Duration::from_secs(3600));
        while !pending.is_empty() {
            let exit = tokio::select! {
                exit = self.exits.recv() => exit,
                _ = tokio::time::sleep_until(deadline) => {
                    for (_, pid) in &pending {
                        process::signal_group(*pid, libc::SIGKILL);
                    }
                    self.exits.recv().await
                }
            };
            let Some(exit) = exit else { break };
            pending.retain(|(name, _)| *name != exit.name);
            self.record_exit(exit);
        }
    }

    /// After termination: write the final status and remove the object, then the files.
    async fn finish(&mut self) {
        self.model.sandbox_ready = false;
        if !self.gone {
            self.push_status();
            let finalizers = self
                .kubelet
                .store
                .try_get(PODS, &self.namespace, &self.name)
                .map(|p| p["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()));
            if finalizers == Some(false) {
                let _ = self.kubelet.store.remove(PODS, &self.namespace, &self.name);
            }
        }
        let dir = self.runtime.dir.clone();
        // Logs stay readable while the object exists; it is gone (or held by finalizers) now.
        if self.kubelet.store.try_get(PODS, &self.namespace, &self.name).is_none() {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
    }

    // ---- store writes --------------------------------------------------------------------

    fn render(&mut self) -> Value {
        let qos = qos_class(&self.spec);
        // The IP is assigned with the sandbox and stays in the status after the Pod ends.
        if self.model.sandbox_ready {
            self.pod_ip = Some(self.kubelet.node.ip.clone());
        }
        let pod_ip = self.pod_ip.clone();
        self.model.render(&self.restart_policy, qos, pod_ip.as_deref())
    }

    fn push_status(&mut self) {
        if self.gone {
            return;
        }
        let status = self.render();
        self.write(|pod| pod["status"] = status);
    }

    fn write(&mut self, change: impl FnOnce(&mut Value)) {
        let result = self.kubelet.store.update(PODS, &self.namespace, &self.name, |pod| {
            change(pod);
            Ok(())
        });
        if result.is_err() {
            self.gone = true;
        }
    }

    fn current_object(&self) -> Value {
        self.kubelet
            .store
            .try_get(PODS, &self.namespace, &self.name)
            .unwrap_or_else(|| self.runtime.object.borrow().clone())
    }

    fn event(&self, warning: bool, reason: &str, message: &str, field_path: Option<&str>, source: Source) {
        if self.gone {
            return;
        }
        record(
            &self.kubelet.store,
            &self.current_object(),
            warning,
            reason,
            message,
            field_path,
            source,
        );
    }
}

async fn wait_requested(rx: &mut tokio::sync::watch::Receiver<Option<Duration>>) -> Duration {
    match rx.wait_for(Option::is_some).await {
        Ok(grace) => grace.unwrap_or_default(),
        Err(_) => Duration::ZERO,
    }
}

fn random_hex(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// Owns a running container's process: captures its output, waits for it, reads its
/// termination message, and reports the exit.
#[allow(clippy::too_many_arguments)]
async fn watch_process(
    mut child: tokio::process::Child,
    log: Arc<ContainerLog>,
    termination_log: PathBuf,
    policy: String,
    name: String,
    started_at: String,
    container_id: String,
    exits: mpsc::UnboundedSender<Exit>,
) {
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_log = log.clone();
    let err_log = log.clone();
    let capture = tokio::spawn(async move {
        let out = async {
            if let Some(s) = stdout {
                out_log.capture("stdout", s).await;
            }
        };
        let err = async {
            if let Some(s) = stderr {
                err_log.capture("stderr", s).await;
            }
        };
        tokio::join!(out, err);
    });
    let status = child.wait().await;
    if let Some(pid) = pid {
        // The container ends with its main process: take down whatever it left behind.
        process::signal_group(pid, libc::SIGKILL);
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), capture).await;
    log.finish().await;
    let (exit_code, signal) = match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            match (s.code(), s.signal()) {
                (Some(code), _) => (code, None),
                (None, Some(sig)) => (128 + sig, Some(sig)),
                _ => (255, None),
            }
        }
        Err(_) => (255, None),
    };
    let mut message = tokio::fs::read(&termination_log)
        .await
        .map(|b| String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned())
        .unwrap_or_default();
    if message.is_empty() && exit_code != 0 && policy == "FallbackToLogsOnError" {
        message = log.tail_text(80, 2048).await;
    }
    let reason = if exit_code == 0 { "Completed" } else { "Error" };
    let terminated = Terminated {
        exit_code,
        signal: None,
        reason: reason.into(),
        message,
        started_at: Some(started_at),
        finished_at: now(),
        container_id,
    };
    let _ = signal;
    let _ = exits.send(Exit { name, terminated });
}
