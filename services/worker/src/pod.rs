//! The job Pod and its Secret, as `docs/pod-contract.md` describes them: an init container
//! that copies `flotilla-helper` into a shared volume, the `helper` container that drives
//! the stages, and the `build` container that runs the scripts through the copied helper.
//!
//! This module only shapes Kubernetes objects from a [`PodPlan`]; deciding the plan from
//! the runner's configuration and the job payload is the caller's job.

use std::collections::BTreeMap;

use flotilla_config::{ContainerKind, KubernetesConfig, PatchType, PodSpecPatch};
use flotilla_kube_patch::{apply_patch, PatchKind};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, DownwardAPIVolumeFile, DownwardAPIVolumeSource, EmptyDirVolumeSource, EnvVar, HostAlias,
    ObjectFieldSelector, Pod, PodSpec, Secret, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::ByteString;

use crate::services::ServicePlan;
use crate::{affinity, pod_settings, volumes};

/// Where the contract puts things inside every container.
pub const RUN_DIR: &str = "/flotilla/run";
pub const JOB_DIR: &str = "/flotilla/job";
pub const POD_INFO_DIR: &str = "/flotilla/pod";
/// The label every object of a job carries (re-adoption and the orphan reaper select on it).
pub const JOB_ID_LABEL: &str = "flotilla.io/job-id";
pub const WORKER_LABEL: &str = "flotilla.io/worker";
/// The annotation the helper watches for cancellation (`graceful` or `abort`).
pub const CANCEL_ANNOTATION: &str = "flotilla.io/cancel";
/// The entry's `poll_timeout` in seconds, on the Pod: a worker that re-adopts the Pod after a
/// restart waits for it to start as long as the entry says, counted from its creation.
pub const POLL_TIMEOUT_ANNOTATION: &str = "flotilla.io/poll-timeout";

/// Everything that decides a job's Pod.
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub job_id: u64,
    pub namespace: String,
    pub worker_id: String,
    /// The job's image (the `build` container).
    pub build_image: String,
    pub helper_image: String,
    /// Path of `flotilla-helper` inside the helper image (the bootstrap command).
    pub helper_binary: String,
    pub builds_dir: String,
    /// The GitLab job payload, as GitLab sent it (goes into the Secret: it holds the job token).
    pub payload_json: String,
    /// What the worker adds for the helper (`runtime.json`).
    pub runtime_json: String,
    /// Extra labels (the official runner's `*.runner.gitlab.com` ones, `pod_labels`).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The Pod's hard deadline: the job timeout plus a minute. The helper enforces the job
    /// timeout itself and needs the time to run after_script and report; the official runner,
    /// which enforces it from outside, adds a second.
    pub active_deadline_seconds: Option<i64>,
    pub termination_grace_period_seconds: Option<i64>,
    pub service_account: Option<String>,
    /// The runner entry's `[runners.kubernetes]` (see `pod_settings`).
    pub kubernetes: KubernetesConfig,
    /// The `svc-N` containers.
    pub services: Vec<ServicePlan>,
    /// How many of the entry's pull policies each container has used up (by container name):
    /// a failed pull moves it to the next one.
    pub pull_attempts: BTreeMap<String, usize>,
    /// The entry's `pod_spec` patches, applied in order to the generated Pod spec; empty unless
    /// `FF_USE_ADVANCED_POD_SPEC_CONFIGURATION` is on for the job.
    pub pod_spec_patches: Vec<PodSpecPatch>,
}

/// A `pod_spec` patch that does not apply to the job's generated Pod spec.
#[derive(Debug, thiserror::Error)]
#[error("pod_spec patch {name:?}: {reason}")]
pub struct PodSpecError {
    pub name: String,
    pub reason: String,
}

impl PodPlan {
    /// A container's `imagePullPolicy`: the entry's `pull_policy` list at the place its failed
    /// pulls moved it to (`["always", "if-not-present"]` falls back to the node's copy).
    pub fn pull_policy(&self, container: &str) -> Option<String> {
        let used = self.pull_attempts.get(container).copied().unwrap_or(0);
        self.kubernetes
            .pull_policy
            .iter()
            .nth(used)
            .map(|policy| policy.as_kubernetes().to_string())
    }

    /// Moves a container whose pull failed to its next pull policy; false when it has none.
    pub fn next_pull_policy(&mut self, container: &str) -> bool {
        let used = self.pull_attempts.get(container).copied().unwrap_or(0);
        if used + 1 >= self.kubernetes.pull_policy.0.len() {
            return false;
        }
        self.pull_attempts.insert(container.to_string(), used + 1);
        true
    }

    /// Adds a line to what the helper prints at the top of the job's log.
    pub fn add_notice(&mut self, line: &str) {
        let mut runtime: serde_json::Value = serde_json::from_str(&self.runtime_json).unwrap_or_default();
        if !runtime["notices"].is_array() {
            runtime["notices"] = serde_json::json!([]);
        }
        if let Some(notices) = runtime["notices"].as_array_mut() {
            notices.push(line.into());
        }
        self.runtime_json = runtime.to_string();
    }
}

/// Pod and Secret names are derived from the job id, so creating them is idempotent.
pub fn object_name(job_id: u64) -> String {
    format!("flotilla-job-{job_id}")
}

fn labels(plan: &PodPlan) -> BTreeMap<String, String> {
    // `pod_labels` first: Flotilla's own labels (which its reconciliation keys on) win.
    let mut labels = plan.kubernetes.pod_labels.clone();
    labels.extend(plan.labels.clone());
    labels.insert(JOB_ID_LABEL.into(), plan.job_id.to_string());
    labels.insert(WORKER_LABEL.into(), plan.worker_id.clone());
    labels.insert("app.kubernetes.io/managed-by".into(), "flotilla".into());
    labels
}

/// The per-job Secret: `job.json` and `runtime.json` (see the contract).
pub fn secret(plan: &PodPlan) -> Secret {
    let data = [("job.json", &plan.payload_json), ("runtime.json", &plan.runtime_json)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.clone().into_bytes())))
        .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(object_name(plan.job_id)),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels(plan)),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Makes the Pod the Secret's owner, so Kubernetes collects the Secret with the Pod.
pub fn owned_by(secret: &mut Secret, pod_uid: &str, pod_name: &str) {
    secret.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pod_name.into(),
        uid: pod_uid.into(),
        block_owner_deletion: Some(true),
        controller: Some(false),
    }]);
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn words(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The `svc-N` containers: the service image with its entrypoint and command replaced as the
/// job (or the runner entry) says, its variables, ports, service resources and security context.
fn service_containers(plan: &PodPlan, mounts: &[VolumeMount]) -> Vec<Container> {
    let kube = &plan.kubernetes;
    plan.services
        .iter()
        .enumerate()
        .map(|(n, service)| Container {
            name: format!("svc-{n}"),
            image: Some(service.image.clone()),
            command: (!service.entrypoint.is_empty()).then(|| service.entrypoint.clone()),
            args: (!service.command.is_empty()).then(|| service.command.clone()),
            env: (!service.env.is_empty()).then(|| {
                service
                    .env
                    .iter()
                    .map(|(name, value)| EnvVar {
                        name: name.clone(),
                        value: Some(value.clone()),
                        ..Default::default()
                    })
                    .collect()
            }),
            ports: (!service.ports.is_empty()).then(|| {
                service
                    .ports
                    .iter()
                    .map(|port| ContainerPort {
                        container_port: i32::from(*port),
                        ..Default::default()
                    })
                    .collect()
            }),
            image_pull_policy: plan.pull_policy(&format!("svc-{n}")),
            resources: service.resources.clone(),
            security_context: Some(pod_settings::container_security(
                kube,
                &kube.service_container_security_context,
            )),
            volume_mounts: (!mounts.is_empty()).then(|| mounts.to_vec()),
            lifecycle: pod_settings::lifecycle(kube),
            ..Default::default()
        })
        .collect()
}

/// The services' aliases on 127.0.0.1 first (the Pod's containers share its network), then
/// the runner entry's `host_aliases`.
fn host_aliases(plan: &PodPlan) -> Option<Vec<HostAlias>> {
    let mut aliases: Vec<String> = plan.services.iter().flat_map(|s| s.aliases.clone()).collect();
    aliases.dedup();
    let services = (!aliases.is_empty()).then(|| HostAlias {
        ip: "127.0.0.1".into(),
        hostnames: Some(aliases),
    });
    let all: Vec<HostAlias> = services
        .into_iter()
        .chain(pod_settings::host_aliases(&plan.kubernetes).unwrap_or_default())
        .collect();
    (!all.is_empty()).then_some(all)
}

/// The job Pod.
/// The job's Pod: the generated one, then the entry's `pod_spec` patches on its spec, as the
/// official runner applies them (each to the JSON of the spec the previous one left).
pub fn pod(plan: &PodPlan) -> Result<Pod, PodSpecError> {
    let mut pod = generated_pod(plan);
    if plan.pod_spec_patches.is_empty() {
        return Ok(pod);
    }
    let mut spec = serde_json::to_value(pod.spec.take().unwrap_or_default()).expect("a Pod spec serialises");
    for patch in &plan.pod_spec_patches {
        let failed = |reason: String| PodSpecError {
            name: patch.name.clone(),
            reason,
        };
        let body = serde_json::to_vec(&patch.value().map_err(failed)?).expect("JSON serialises");
        let kind = match patch.effective_patch_type() {
            PatchType::Strategic => PatchKind::StrategicMerge,
            PatchType::Merge => PatchKind::Merge,
            PatchType::Json => PatchKind::Json,
        };
        spec = apply_patch(kind, &spec, &body).map_err(|e| failed(e.to_string()))?;
    }
    let spec = serde_json::from_value(spec).map_err(|e| PodSpecError {
        name: "pod_spec".into(),
        reason: format!("the patched spec is not a Pod spec: {e}"),
    })?;
    pod.spec = Some(spec);
    Ok(pod)
}

/// The Pod the worker makes of a job, before any `pod_spec` patch.
fn generated_pod(plan: &PodPlan) -> Pod {
    let helper_in_volume = format!("{RUN_DIR}/bin/flotilla-helper");
    let (user_volumes, user_mounts) = volumes::volumes(&plan.kubernetes);
    let shared: Vec<VolumeMount> = [
        mount("flotilla", RUN_DIR, false),
        mount("repo", &plan.builds_dir, false),
    ]
    .into_iter()
    .chain(user_mounts.iter().cloned())
    .collect();
    let with_job = {
        let mut mounts = shared.clone();
        mounts.push(mount("job", JOB_DIR, true));
        mounts.push(mount("pod-info", POD_INFO_DIR, true));
        mounts
    };
    let kube = &plan.kubernetes;
    let helper_security = Some(pod_settings::container_security(
        kube,
        &kube.helper_container_security_context,
    ));
    let helper_resources = pod_settings::resources(kube, ContainerKind::Helper);
    // The official runner's init container (`init-permissions`) has a context of its own;
    // ours is the bootstrap, part of the helper otherwise.
    let bootstrap_security = if kube.init_permissions_container_security_context == Default::default() {
        helper_security.clone()
    } else {
        Some(pod_settings::container_security(
            kube,
            &kube.init_permissions_container_security_context,
        ))
    };
    let bootstrap = Container {
        name: "bootstrap".into(),
        image: Some(plan.helper_image.clone()),
        image_pull_policy: plan.pull_policy("bootstrap"),
        security_context: bootstrap_security,
        resources: helper_resources.clone(),
        command: Some(vec![
            plan.helper_binary.clone(),
            "bootstrap".into(),
            "--dest".into(),
            format!("{RUN_DIR}/bin"),
        ]),
        volume_mounts: Some(vec![mount("flotilla", RUN_DIR, false)]),
        ..Default::default()
    };
    let helper = Container {
        name: "helper".into(),
        image: Some(plan.helper_image.clone()),
        image_pull_policy: plan.pull_policy("helper"),
        command: Some(vec![helper_in_volume.clone()]),
        args: Some(words(&[
            "run",
            "--job",
            JOB_DIR,
            "--run",
            RUN_DIR,
            "--pod-info",
            POD_INFO_DIR,
        ])),
        volume_mounts: Some(with_job),
        termination_message_policy: Some("File".into()),
        security_context: helper_security,
        resources: helper_resources,
        lifecycle: pod_settings::lifecycle(kube),
        ..Default::default()
    };
    let build = Container {
        name: "build".into(),
        image: Some(plan.build_image.clone()),
        command: Some(vec![helper_in_volume]),
        args: Some(vec![
            "step-runner".into(),
            "--run".into(),
            RUN_DIR.into(),
            "--workdir".into(),
            plan.builds_dir.clone(),
        ]),
        working_dir: Some(plan.builds_dir.clone()),
        volume_mounts: Some(shared),
        image_pull_policy: plan.pull_policy("build"),
        lifecycle: pod_settings::lifecycle(kube),
        security_context: Some(pod_settings::container_security(
            kube,
            &kube.build_container_security_context,
        )),
        resources: pod_settings::resources(kube, ContainerKind::Build),
        ..Default::default()
    };
    let mut volumes = vec![
        Volume {
            name: "flotilla".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        Volume {
            name: "repo".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        Volume {
            name: "job".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(object_name(plan.job_id)),
                default_mode: Some(0o444),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "pod-info".into(),
            downward_api: Some(DownwardAPIVolumeSource {
                items: Some(vec![DownwardAPIVolumeFile {
                    path: "annotations".into(),
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.annotations".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    volumes.extend(user_volumes);
    Pod {
        metadata: ObjectMeta {
            name: Some(object_name(plan.job_id)),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels(plan)),
            annotations: {
                let mut annotations = plan.annotations.clone();
                annotations.extend(kube.pod_annotations.clone());
                annotations.insert(
                    POLL_TIMEOUT_ANNOTATION.into(),
                    kube.poll_timeout().as_secs().to_string(),
                );
                Some(annotations)
            },
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            init_containers: Some(vec![bootstrap]),
            containers: [build, helper]
                .into_iter()
                .chain(service_containers(plan, &user_mounts))
                .collect(),
            volumes: Some(volumes),
            active_deadline_seconds: plan.active_deadline_seconds,
            termination_grace_period_seconds: plan.termination_grace_period_seconds.or(kube
                .effective_pod_termination_grace_period_seconds()
                .map(|seconds| seconds as i64)),
            service_account_name: plan.service_account.clone().or_else(|| kube.service_account.clone()),
            automount_service_account_token: kube.automount_service_account_token,
            node_selector: (!kube.node_selector.is_empty()).then(|| kube.node_selector.clone()),
            affinity: affinity::affinity(&kube.affinity),
            resources: pod_settings::resources(kube, ContainerKind::Pod),
            tolerations: pod_settings::tolerations(kube),
            scheduler_name: kube.scheduler_name.clone(),
            priority_class_name: kube.priority_class_name.clone(),
            runtime_class_name: kube.runtime_class_name.clone(),
            dns_policy: kube.dns_policy.map(|policy| policy.as_kubernetes().to_string()),
            dns_config: pod_settings::dns_config(kube),
            host_aliases: host_aliases(plan),
            image_pull_secrets: pod_settings::image_pull_secrets(kube),
            security_context: pod_settings::pod_security(&kube.pod_security_context),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PodPlan {
        PodPlan {
            job_id: 42,
            namespace: "ci".into(),
            worker_id: "worker-a".into(),
            build_image: "alpine:3.19".into(),
            helper_image: "flotilla/helper:0.1".into(),
            helper_binary: "/usr/local/bin/flotilla-helper".into(),
            builds_dir: "/builds".into(),
            payload_json: "{\"id\":42,\"token\":\"glcbt-secret\"}".into(),
            runtime_json: "{}".into(),
            labels: BTreeMap::from([("job.runner.gitlab.com/pod".into(), "p".into())]),
            annotations: BTreeMap::new(),
            active_deadline_seconds: Some(3601),
            termination_grace_period_seconds: None,
            service_account: None,
            kubernetes: KubernetesConfig::default(),
            services: Vec::new(),
            pull_attempts: Default::default(),
            pod_spec_patches: Vec::new(),
        }
    }

    #[test]
    fn pod_follows_the_contract() {
        let pod = pod(&plan()).unwrap();
        let value = serde_json::to_value(&pod).unwrap();
        assert_eq!(value["metadata"]["name"], "flotilla-job-42");
        assert_eq!(value["metadata"]["labels"][JOB_ID_LABEL], "42");
        assert_eq!(value["metadata"]["labels"]["job.runner.gitlab.com/pod"], "p");
        let spec = &value["spec"];
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(spec["activeDeadlineSeconds"], 3601);
        assert_eq!(
            spec["initContainers"][0]["command"],
            serde_json::json!([
                "/usr/local/bin/flotilla-helper",
                "bootstrap",
                "--dest",
                "/flotilla/run/bin"
            ])
        );
        let names: Vec<&str> = spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["build", "helper"]);
        assert_eq!(spec["containers"][0]["command"][0], "/flotilla/run/bin/flotilla-helper");
        assert_eq!(spec["containers"][0]["args"][0], "step-runner");
        // The build container never sees the job Secret.
        let build_mounts: Vec<&str> = spec["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(build_mounts, ["flotilla", "repo"]);
        let helper_mounts: Vec<&str> = spec["containers"][1]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(helper_mounts, ["flotilla", "repo", "job", "pod-info"]);
    }

    #[test]
    fn a_failed_pull_moves_only_that_container_to_its_next_policy() {
        let mut plan = plan();
        plan.kubernetes = crate::test_support::kube("pull_policy = [\"always\", \"if-not-present\"]");
        assert_eq!(plan.pull_policy("build").as_deref(), Some("Always"));
        assert!(plan.next_pull_policy("build"));
        assert_eq!(plan.pull_policy("build").as_deref(), Some("IfNotPresent"));
        assert_eq!(plan.pull_policy("svc-0").as_deref(), Some("Always"));
        assert!(!plan.next_pull_policy("build"), "the list is used up");
        plan.kubernetes = KubernetesConfig::default();
        assert_eq!(plan.pull_policy("build"), None, "no list: the cluster's default");
    }

    #[test]
    fn the_bootstrap_takes_the_init_permissions_context_else_the_helpers() {
        let mut plan = plan();
        plan.kubernetes =
            crate::test_support::kube("[runners.kubernetes.helper_container_security_context]\nrun_as_user = 1000");
        let value = serde_json::to_value(pod(&plan).unwrap()).unwrap();
        assert_eq!(value["spec"]["initContainers"][0]["securityContext"]["runAsUser"], 1000);
        plan.kubernetes = crate::test_support::kube(
            "[runners.kubernetes.helper_container_security_context]\nrun_as_user = 1000\n[runners.kubernetes.init_permissions_container_security_context]\nrun_as_user = 0",
        );
        let value = serde_json::to_value(pod(&plan).unwrap()).unwrap();
        assert_eq!(value["spec"]["initContainers"][0]["securityContext"]["runAsUser"], 0);
        assert_eq!(value["spec"]["containers"][1]["securityContext"]["runAsUser"], 1000);
    }

    #[test]
    fn notices_are_added_to_the_runtime_file() {
        let mut plan = plan();
        plan.add_notice("first");
        plan.add_notice("second");
        let runtime: serde_json::Value = serde_json::from_str(&plan.runtime_json).unwrap();
        assert_eq!(runtime["notices"], serde_json::json!(["first", "second"]));
    }

    #[test]
    fn secret_holds_the_payload_and_is_owned_by_the_pod() {
        let mut secret = secret(&plan());
        owned_by(&mut secret, "uid-1", "flotilla-job-42");
        let value = serde_json::to_value(&secret).unwrap();
        assert_eq!(value["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        let data = secret.data.unwrap();
        assert_eq!(data["job.json"].0, b"{\"id\":42,\"token\":\"glcbt-secret\"}");
        assert!(data.contains_key("runtime.json"));
    }
}
