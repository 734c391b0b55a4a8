//! The "kubelet": runs every Pod the store holds as local processes and reports back
//! through the Pod's status, events and logs.
//!
//! It watches the store (never missing a change): a new Pod gets a `pod::PodWorker` task;
//! a deletionTimestamp asks that task for graceful termination; a Pod removed outright is
//! killed at once; label/annotation changes refresh downward-API files. Deleting a Pod
//! also collects the Secrets and ConfigMaps it owns, as the garbage collector would.

mod capabilities;
mod env;
mod events;
mod logs;
mod pod;
pub mod process;
mod status;
mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

pub use events::NODE_NAME;
pub use logs::{ContainerLog, Entry, Follower};
pub use process::ProcessSpec;

use crate::faults::Faults;
use crate::resources::{CONFIG_MAPS, PODS, SECRETS};
use crate::store::{Change, EventType, Store};

/// What the API needs to know about one container's current run.
#[derive(Clone)]
pub struct ContainerRun {
    pub log: Arc<ContainerLog>,
    pub previous: Option<Arc<ContainerLog>>,
    /// The main process while it runs.
    pub pid: Option<u32>,
    /// Env, working dir and user, for exec.
    pub spec: ProcessSpec,
}

/// The handle the kubelet and the API share for one Pod.
pub struct PodRuntime {
    pub uid: String,
    pub dir: PathBuf,
    containers: Mutex<HashMap<String, ContainerRun>>,
    /// Some(grace) once deletion was asked for; zero means "the object is gone, kill now".
    terminate: watch::Sender<Option<Duration>>,
    /// The latest Pod object, for downward-API refreshes.
    object: watch::Sender<Value>,
    /// The Pod's volumes once set up.
    volumes: Mutex<Option<volumes::Volumes>>,
}

impl PodRuntime {
    pub fn container(&self, name: &str) -> Option<ContainerRun> {
        self.containers.lock().unwrap().get(name).cloned()
    }

    fn set_container(&self, name: &str, run: ContainerRun) {
        self.containers.lock().unwrap().insert(name.to_string(), run);
    }

    fn update_container(&self, name: &str, f: impl FnOnce(&mut ContainerRun)) {
        if let Some(run) = self.containers.lock().unwrap().get_mut(name) {
            f(run);
        }
    }

    fn request_termination(&self, grace: Duration) {
        self.terminate.send_modify(|current| {
            // A second delete may shorten the grace period, never lengthen it.
            *current = Some(current.map_or(grace, |g| g.min(grace)));
        });
    }

    fn pids(&self) -> Vec<u32> {
        self.containers.lock().unwrap().values().filter_map(|c| c.pid).collect()
    }
}

/// Node facts the scheduler and containers see.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub ip: String,
    pub labels: BTreeMap<String, String>,
}

impl Default for Node {
    fn default() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let labels = [
            ("kubernetes.io/hostname", NODE_NAME),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", arch),
            ("beta.kubernetes.io/os", "linux"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Node {
            name: NODE_NAME.to_string(),
            ip: "127.0.0.1".to_string(),
            labels,
        }
    }
}

pub struct Kubelet {
    store: Arc<Store>,
    faults: Arc<Faults>,
    data_dir: PathBuf,
    node: Node,
    pods: Mutex<HashMap<(String, String), Arc<PodRuntime>>>,
    /// A process whose mount namespace holds the containers' private root; each container
    /// starts in a copy of it (see `process::Namespace::CopyOf`).
    root_holder: tokio::sync::Mutex<Option<u32>>,
}

impl Kubelet {
    pub fn new(store: Arc<Store>, faults: Arc<Faults>, data_dir: PathBuf, node: Node) -> Arc<Kubelet> {
        Arc::new(Kubelet {
            store,
            faults,
            data_dir,
            node,
            pods: Mutex::new(HashMap::new()),
            root_holder: Default::default(),
        })
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Starts following the store. Returns the task; it ends when the store is dropped.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let mut changes = self.store.observe();
        let kubelet = self.clone();
        tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                kubelet.handle(&change);
            }
        })
    }

    fn handle(self: &Arc<Self>, change: &Change) {
        if change.resource != PODS {
            return;
        }
        let pod = &change.object;
        let key = (
            change.namespace.clone(),
            pod["metadata"]["name"].as_str().unwrap_or_default().to_string(),
        );
        match change.event {
            EventType::Added => self.admit(key, pod.clone()),
            EventType::Modified => {
                let Some(runtime) = self.runtime(&key.0, &key.1) else {
                    return;
                };
                runtime.object.send_replace(pod.clone());
                let meta_changed = change.previous.as_ref().is_none_or(|before| {
                    before["metadata"]["labels"] != pod["metadata"]["labels"]
                        || before["metadata"]["annotations"] != pod["metadata"]["annotations"]
                });
                if meta_changed {
                    self.refresh_downward_api(&runtime, pod.clone());
                }
                if pod["metadata"]["deletionTimestamp"].is_string() {
                    let grace = pod["metadata"]["deletionGracePeriodSeconds"].as_u64().unwrap_or(30);
                    runtime.request_termination(Duration::from_secs(grace));
                }
            }
            EventType::Deleted => {
                let runtime = self.pods.lock().unwrap().remove(&key);
                if let Some(runtime) = runtime {
                    runtime.request_termination(Duration::ZERO);
                }
                self.collect_owned(&change.namespace, pod["metadata"]["uid"].as_str().unwrap_or_default());
            }
        }
    }

    fn admit(self: &Arc<Self>, key: (String, String), pod: Value) {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let runtime = Arc::new(PodRuntime {
            dir: self.data_dir.join("pods").join(&uid),
            uid,
            containers: Mutex::new(HashMap::new()),
            terminate: watch::channel(None).0,
            object: watch::channel(pod.clone()).0,
            volumes: Mutex::new(None),
        });
        self.pods.lock().unwrap().insert(key, runtime.clone());
        let worker = pod::PodWorker::new(self.clone(), runtime, pod);
        tokio::spawn(worker.run());
    }

    /// Rewrites downward-API files after a label or annotation change, off the async threads.
    fn refresh_downward_api(&self, runtime: &Arc<PodRuntime>, pod: Value) {
        let Some(volumes) = runtime.volumes.lock().unwrap().clone() else {
            return;
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || volumes::refresh(&store, &pod, &volumes));
    }

    /// Deletes the Secrets and ConfigMaps whose ownerReferences name the deleted Pod.
    fn collect_owned(&self, namespace: &str, owner_uid: &str) {
        for resource in [SECRETS, CONFIG_MAPS] {
            let (owned, _) = self.store.list(resource, Some(namespace), |obj| {
                obj["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner_uid))
            });
            for obj in owned {
                let _ = self.store.remove(
                    resource,
                    namespace,
                    obj["metadata"]["name"].as_str().unwrap_or_default(),
                );
            }
        }
    }

    /// The containers' root directory (host top-level directories bind-mounted in).
    pub fn root_dir(&self) -> PathBuf {
        self.data_dir.join("rootfs")
    }

    /// The pid of the process holding the prepared root, starting it if needed.
    pub async fn root_template(&self) -> std::io::Result<u32> {
        let mut holder = self.root_holder.lock().await;
        if let Some(pid) = *holder {
            if std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok() {
                return Ok(pid);
            }
        }
        let spec = ProcessSpec {
            argv: vec!["sleep".into(), "2147483647".into()],
            env: vec![("PATH".into(), env::default_path().into())],
            root_dir: Some(self.root_dir()),
            ..Default::default()
        };
        let mut child = process::spawn_off_thread(spec, process::Namespace::Fresh).await?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("root holder exited at once"))?;
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        *holder = Some(pid);
        Ok(pid)
    }

    pub fn runtime(&self, namespace: &str, name: &str) -> Option<Arc<PodRuntime>> {
        self.pods
            .lock()
            .unwrap()
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Sends `signal` to a running container's processes (fault injection: "kill it from outside").
    pub fn kill_container(&self, namespace: &str, pod: &str, container: &str, signal: i32) -> Result<(), String> {
        let runtime = self
            .runtime(namespace, pod)
            .ok_or_else(|| format!("pod {namespace}/{pod} is not running here"))?;
        let pid = runtime
            .container(container)
            .and_then(|c| c.pid)
            .ok_or_else(|| format!("container {container} of pod {namespace}/{pod} is not running"))?;
        process::signal_group(pid, signal);
        Ok(())
    }

    /// Kills every process of every Pod (kube-sim is shutting down).
    pub fn kill_all(&self) {
        if let Ok(holder) = self.root_holder.try_lock() {
            if let Some(pid) = *holder {
                process::signal_group(pid, libc::SIGKILL);
            }
        }
        for runtime in self.pods.lock().unwrap().values() {
            for pid in runtime.pids() {
                process::signal_group(pid, libc::SIGKILL);
            }
        }
    }
}
