//! The seeds' example `config.toml` files (issue 5), end to end: each is loaded as the
//! coordinator loads its file (the copies in crates/config/tests/fixtures, whose README says
//! where each comes from), handed to a worker, and one job runs under it in kube-sim. The job
//! looks at what the example configures from inside (`id`, `/proc/self/status`, its mounts,
//! its host names) and the test reads the Pod object for the rest (resources, scheduling).
//!
//! Only what ties an example to its authors' machines is changed, after loading: the API
//! server and certificate files of the keywords example point at a kube-sim, host paths at a
//! temporary directory. The objects an example refers to (namespaces, Secrets, ConfigMaps,
//! a service account, node labels) are created first, as an operator would have them.

use std::collections::BTreeMap;

use flotilla_config::RunnerConfig;
use flotilla_e2e::gitlab::{all_finished, gitlab, start_under_runner};
use flotilla_e2e::ClusterSpec;
use gitlab_sim::pipeline::ServiceSpec;
use gitlab_sim::{Expect, GitlabSim, JobSpec, JobState};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    let path = format!("{}/../crates/config/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The docs' examples leave `url` and `token` to "the usual configuration" (or give a URL
/// without a scheme): a complete entry needs both.
fn with_credentials(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("url =") && !line.trim_start().starts_with("token ="))
        .collect();
    kept.join("\n").replacen(
        "executor = \"kubernetes\"",
        "executor = \"kubernetes\"\nurl = \"https://gitlab.example.com\"\ntoken = \"glrt-example\"",
        1,
    )
}

/// Fragments (`[runners.kubernetes] …`) under a complete runner entry.
fn under_runner(fragments: &[&str]) -> String {
    format!(
        "[[runners]]\nname = \"fragment\"\nurl = \"https://gitlab.example.com\"\ntoken = \"glrt-example\"\nexecutor = \"kubernetes\"\n{}",
        fragments.join("\n")
    )
}

/// The one runner entry of a config.toml, loaded as the coordinator loads it.
fn runner(text: &str) -> RunnerConfig {
    let loaded = flotilla_config::runner_config_from_str(text).unwrap_or_else(|errors| panic!("{errors}\n---\n{text}"));
    loaded.config.runners.into_iter().next().expect("one [[runners]] entry")
}

/// Creates an object in the cluster, as the example's operator would have it.
async fn create<K>(client: &kube::Client, namespace: Option<&str>, value: Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let object: K = serde_json::from_value(value).unwrap();
    let api: Api<K> = Api::namespaced(client.clone(), namespace.unwrap_or("default"));
    api.create(&PostParams::default(), &object).await.unwrap();
}

async fn namespace(client: &kube::Client, name: &str) {
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
}

fn job(name: &str, script: &[&str]) -> JobSpec {
    JobSpec::new(name, script.iter().copied()).variable("GIT_STRATEGY", "none")
}

/// What a job left: its end in GitLab and its Pod as the API server had it.
struct Ran {
    state: JobState,
    failure_reason: Option<String>,
    trace: String,
    pod: Value,
}

impl Ran {
    fn assert_succeeded(&self) {
        assert_eq!(self.state, JobState::Success, "{}", self.trace);
    }

    /// The trace has `line` as a line of its own.
    fn assert_line(&self, line: &str) {
        assert!(
            self.trace.lines().any(|l| l.trim_end() == line),
            "no line {line:?} in the job's log:\n{}",
            self.trace
        );
    }

    fn container(&self, name: &str) -> &Value {
        self.pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name} in {}", self.pod))
    }
}

/// Runs `job` (a fleet polling `sim` takes it); its Pod is looked for in `pods` (the entry's
/// namespace, on the entry's API server).
async fn run(sim: &GitlabSim, pods: Api<Pod>, job: JobSpec) -> Ran {
    let id = sim.add_job(job).unwrap();
    let name = flotilla_worker::pod::object_name(id);
    let pod = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            if let Some(pod) = pods.get_opt(&name).await.unwrap() {
                return pod;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job's Pod is created");
    all_finished(sim).await;
    let job = sim.job(id).unwrap();
    Ran {
        state: job.state,
        failure_reason: job.failure_reason.clone(),
        trace: job.trace_text(),
        pod: serde_json::to_value(pod).unwrap(),
    }
}

/// The capability mask of the job's `/proc/self/status` field `key` (`CapBnd`, `CapEff`).
fn capabilities(trace: &str, key: &str) -> u64 {
    let line = trace
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {trace}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

const CHOWN: u64 = 1;
const NET_RAW: u64 = 1 << 13;
const IPC_LOCK: u64 = 1 << 14;
const SYS_ADMIN: u64 = 1 << 21;
const SYS_TIME: u64 = 1 << 25;

/// Seed 001, "Define keywords in the configuration TOML": its own API server (reached with
/// the client certificate, key and CA files it names), namespace, privileged containers,
/// resources, DNS policy, node selector and tolerations.
#[tokio::test(flavor = "multi_thread")]
async fn docs_keywords_example() {
    let mut entry = runner(&fixture("docs_keywords_example.toml"));
    let dir = tempfile::tempdir().unwrap();
    let node = BTreeMap::from([("gitlab".to_string(), "true".to_string())]);
    let (api_server, api_client) = flotilla_e2e::cluster_with_node_labels(dir.path(), "keywords", &node).await;
    let (cert, key) = api_server
        .client_identity_pem()
        .expect("kube-sim issues client certificates");
    let files = [
        ("api.crt", cert),
        ("api.key", key),
        ("ca.crt", api_server.ca_pem().unwrap()),
    ];
    for (file, pem) in files {
        std::fs::write(dir.path().join(file), pem).unwrap();
    }
    let kube = &mut entry.kubernetes;
    assert_eq!(kube.host.as_deref(), Some("https://45.67.34.123:4892"));
    kube.host = Some(api_server.url().to_string());
    kube.cert_file = Some(dir.path().join("api.crt").display().to_string());
    kube.key_file = Some(dir.path().join("api.key").display().to_string());
    kube.ca_file = Some(dir.path().join("ca.crt").display().to_string());
    namespace(&api_client, "gitlab").await;

    let sim = gitlab().await;
    let _fleet = start_under_runner(&sim, &entry, ClusterSpec::new("worker-cluster", 1)).await;
    let pods = Api::namespaced(api_client, "gitlab");
    let ran = run(
        &sim,
        pods,
        job("keywords", &["grep -E '^Cap(Bnd|Eff):' /proc/self/status"]),
    )
    .await;
    ran.assert_succeeded();
    assert_eq!(
        capabilities(&ran.trace, "CapEff") & (SYS_ADMIN | NET_RAW | SYS_TIME),
        SYS_ADMIN | NET_RAW | SYS_TIME,
        "privileged: every capability"
    );
    let build = ran.container("build");
    assert_eq!(build["securityContext"]["privileged"], true);
    assert_eq!(build["resources"]["limits"], json!({"cpu": "1", "memory": "1Gi"}));
    assert_eq!(
        ran.container("helper")["resources"]["limits"],
        json!({"cpu": "500m", "memory": "100Mi"})
    );
    let spec = &ran.pod["spec"];
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["nodeSelector"], json!({"gitlab": "true"}));
    let tolerations = spec["tolerations"].as_array().unwrap();
    for expected in [
        json!({"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "custom.toleration", "operator": "Equal", "value": "value", "effect": "NoSchedule"}),
        json!({"key": "empty.value", "operator": "Equal", "value": "", "effect": "PreferNoSchedule"}),
        json!({"key": "onlyKey", "operator": "Exists"}),
    ] {
        assert!(tolerations.contains(&expected), "{expected} in {tolerations:?}");
    }
}

/// Seed 001, "Using volumes": every kind, with items, read-only mounts and a medium.
#[tokio::test(flavor = "multi_thread")]
async fn docs_volumes_example() {
    let mut entry = runner(&with_credentials(&fixture("docs_volumes_example.toml")));
    let host = tempfile::tempdir().unwrap();
    for volume in &mut entry.kubernetes.volumes.host_path {
        let dir = host.path().join(&volume.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("marker"), format!("from {}\n", volume.name)).unwrap();
        volume.host_path = Some(dir.display().to_string());
    }
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let client = fleet.workers[0].0.kube.clone();
    create::<ConfigMap>(
        &client,
        None,
        json!({"metadata": {"name": "config-map-1"}, "data": {"key_1": "value one", "key_2": "value two"}}),
    )
    .await;
    create::<Secret>(
        &client,
        None,
        json!({"metadata": {"name": "secrets"}, "stringData": {"secret_1": "secret one"}}),
    )
    .await;
    let script = [
        "cat /path/to/mount/point/marker /path/to/mount/point_2/marker",
        "touch /path/to/mount/point/new 2>/dev/null && echo hostpath-writable || echo hostpath-read-only",
        "echo; cat /path/to/directory/relative/path/to/key_1_file; echo; cat /path/to/directory/key_2; echo",
        "cat /path/to/directory1/relative/path/to/secret_1_file; echo",
        "echo kept > /path/to/mount/point1/file && echo pvc-writable",
        "test -d /path/to/empty_dir && echo empty-dir-mounted",
        "test -d /path/to/csi/volume && echo csi-mounted",
    ];
    let ran = run(&sim, Api::default_namespaced(client), job("volumes", &script)).await;
    ran.assert_succeeded();
    for line in [
        "from hostpath-1",
        "from hostpath-2",
        "hostpath-read-only",
        "value one",
        "value two",
        "secret one",
        "pvc-writable",
        "empty-dir-mounted",
        "csi-mounted",
    ] {
        ran.assert_line(line);
    }
    let volumes = ran.pod["spec"]["volumes"].as_array().unwrap();
    let volume = |name: &str| volumes.iter().find(|v| v["name"] == name).unwrap().clone();
    assert_eq!(volume("empty-dir")["emptyDir"]["medium"], "Memory");
    assert_eq!(volume("pvc-1")["persistentVolumeClaim"]["claimName"], "pvc-1");
    assert_eq!(
        volume("csi-volume")["csi"],
        json!({"driver": "my-csi-driver", "volumeAttributes": {"size": "2Gi"}})
    );
    assert_eq!(
        volume("config-map-1")["configMap"]["items"],
        json!([{"key": "key_1", "path": "relative/path/to/key_1_file"}, {"key": "key_2", "path": "key_2"}])
    );
}

/// Seed 001, "Adding extra host aliases".
#[tokio::test(flavor = "multi_thread")]
async fn docs_host_aliases_example() {
    let entry = runner(&with_credentials(&fixture("docs_host_aliases_example.toml")));
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let pods = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let script = [
        "getent hosts web2 | awk '{print \"web2 is \" $1}'",
        "getent hosts web15 | awk '{print \"web15 is \" $1}'",
    ];
    let ran = run(&sim, pods, job("aliases", &script)).await;
    ran.assert_succeeded();
    ran.assert_line("web2 is 127.0.0.1");
    ran.assert_line("web15 is 192.168.1.1");
}

/// Seed 001, "Node Affinity": required and preferred terms, expressions and fields.
#[tokio::test(flavor = "multi_thread")]
async fn docs_node_affinity_example() {
    let entry = runner(&with_credentials(&fixture("docs_node_affinity_example.toml")));
    let sim = gitlab().await;
    let cluster = ClusterSpec::new("cluster-a", 1).node_label("kubernetes.io/e2e-az-name", "e2e-az1");
    let fleet = start_under_runner(&sim, &entry, cluster).await;
    let pods = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let ran = run(&sim, pods, job("affinity", &["echo scheduled"])).await;
    ran.assert_succeeded();
    let node_affinity = &ran.pod["spec"]["affinity"]["nodeAffinity"];
    assert_eq!(
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"],
        json!([{"key": "kubernetes.io/e2e-az-name", "operator": "In", "values": ["e2e-az1", "e2e-az2"]}])
    );
    let preferred = node_affinity["preferredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .unwrap();
    assert_eq!(preferred.len(), 2);
    assert_eq!(preferred[0]["weight"], 100);
    assert_eq!(
        preferred[0]["preference"]["matchExpressions"].as_array().unwrap().len(),
        2
    );
    assert_eq!(preferred[1]["weight"], 50);
    assert_eq!(
        preferred[1]["preference"]["matchFields"],
        json!([{"key": "cpu_type", "operator": "In", "values": ["arm64"]}])
    );
}

/// Seed 001, "Pod's DNS Config". As published, its `[dns_config]` header sits at the top level
/// (loading reports it as an unknown key and the Pod has no DNS config); placed under
/// `[runners.kubernetes]` as the page means it, the Pod gets it.
#[tokio::test(flavor = "multi_thread")]
async fn docs_dns_config_example() {
    let published = fixture("docs_dns_config_example.toml");
    assert!(runner(&published).kubernetes.dns_config == Default::default());
    let meant = published
        .replace("[dns_config]", "[runners.kubernetes.dns_config]")
        .replace("[[dns_config.options]]", "[[runners.kubernetes.dns_config.options]]");
    let entry = runner(&meant);
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let pods = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let ran = run(&sim, pods, job("dns", &["echo resolved"])).await;
    ran.assert_succeeded();
    assert_eq!(
        ran.pod["spec"]["dnsConfig"],
        json!({
            "nameservers": ["1.2.3.4"],
            "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
        })
    );
}

/// Seed 001, "Capabilities configuration": added and dropped capabilities, and `NET_RAW`
/// dropped by default, as the job's process sees them.
#[tokio::test(flavor = "multi_thread")]
async fn docs_capabilities_example() {
    let entry = runner(&with_credentials(&fixture("docs_capabilities_example.toml")));
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let pods = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let ran = run(&sim, pods, job("caps", &["grep -E '^Cap(Bnd|Eff):' /proc/self/status"])).await;
    ran.assert_succeeded();
    let caps = capabilities(&ran.trace, "CapEff");
    assert_eq!(
        caps & (SYS_TIME | IPC_LOCK | CHOWN),
        SYS_TIME | IPC_LOCK | CHOWN,
        "added, and the default set"
    );
    assert_eq!(caps & (SYS_ADMIN | NET_RAW), 0, "dropped, and NET_RAW by default");
    assert_eq!(
        ran.container("build")["securityContext"]["capabilities"],
        json!({"add": ["SYS_TIME", "IPC_LOCK"], "drop": ["SYS_ADMIN", "NET_RAW"]})
    );
}

/// Seed 001, "Using Security Context": the whole Pod runs as the given user and groups.
#[tokio::test(flavor = "multi_thread")]
async fn docs_pod_security_context_example() {
    let text = fixture("docs_pod_security_context_example.toml").replace("%(concurrent)s", "1");
    let entry = runner(&with_credentials(&text));
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let pods = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let ran = run(
        &sim,
        pods,
        job("security", &["echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G)\""]),
    )
    .await;
    ran.assert_succeeded();
    ran.assert_line("uid=59417 gid=59417 groups=59417");
    assert_eq!(
        ran.pod["spec"]["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 59417, "runAsGroup": 59417, "fsGroup": 59417})
    );
}

/// Seed 001, "Using services": the runner's services run beside the build, reachable by alias.
#[tokio::test(flavor = "multi_thread")]
async fn docs_services_example() {
    let entry = runner(&with_credentials(&fixture("docs_services_example.toml")));
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let pods = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let script = [
        "getent hosts db1 | awk '{print \"db1 is \" $1}'",
        "getent hosts svc1 | awk '{print \"svc1 is \" $1}'",
    ];
    let ran = run(&sim, pods, job("services", &script)).await;
    ran.assert_succeeded();
    ran.assert_line("db1 is 127.0.0.1");
    ran.assert_line("svc1 is 127.0.0.1");
    assert_eq!(ran.container("svc-0")["image"], "postgres:12-alpine");
    let svc1 = ran.container("svc-1");
    assert_eq!(svc1["image"], "registry.example.com/svc1");
    assert_eq!(svc1["command"], json!(["entrypoint.sh"]));
    assert_eq!(svc1["args"], json!(["executable", "param1", "param2"]));
}

/// Seed 001, "Using pull policies" (one policy; the fallback of several is in pod_start.rs).
#[tokio::test(flavor = "multi_thread")]
async fn docs_pull_policy_example() {
    let entry = runner(&under_runner(&[&fixture("docs_pull_policy_single_fragment.toml")]));
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let pods = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let ran = run(&sim, pods, job("never-pull", &["echo from the copy on the node"])).await;
    ran.assert_succeeded();
    assert_eq!(ran.container("build")["imagePullPolicy"], "Never");
}

/// Seed 003 (CERN), the core runner: its namespace, image and pull policy, unprivileged.
#[tokio::test(flavor = "multi_thread")]
async fn cern_core_runner() {
    let entry = runner(&with_credentials(&fixture("cern_core_runner.toml")));
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let client = fleet.workers[0].0.kube.clone();
    namespace(&client, "gitlab-runner").await;
    let pods = Api::namespaced(client, "gitlab-runner");
    let ran = run(&sim, pods, job("cern", &["grep -E '^Cap(Bnd|Eff):' /proc/self/status"])).await;
    ran.assert_succeeded();
    assert_eq!(capabilities(&ran.trace, "CapEff") & SYS_ADMIN, 0, "not privileged");
    let build = ran.container("build");
    assert_eq!(build["image"], "alpine:latest");
    assert_eq!(build["imagePullPolicy"], "IfNotPresent");
    assert_eq!(build["securityContext"]["privileged"], false);
}

/// Seed 003 (CERN): `allowed_users`/`allowed_groups` against the job image's `kubernetes:
/// user`, and its secret and projected volumes. Its secret volume also sets `secret_name`,
/// a key the official runner does not have: loading reports it, and the volume mounts the
/// Secret its `name` names, as the official runner's would.
#[tokio::test(flavor = "multi_thread")]
async fn cern_allowed_users_and_secret_volumes() {
    let text = under_runner(&[
        &fixture("cern_allowed_users_fragment.toml"),
        &fixture("cern_secret_volume_fragment.toml"),
        &fixture("cern_projected_volume_fragment.toml"),
    ]);
    let loaded = flotilla_config::runner_config_from_str(&text).unwrap();
    let unknown: Vec<String> = loaded.unknown_keys().map(|key| key.to_string()).collect();
    assert_eq!(
        unknown,
        ["runners[0].kubernetes.volumes.secret[0].secret_name: unknown key, ignored"]
    );
    let entry = runner(&text);
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 2)).await;
    let client = fleet.workers[0].0.kube.clone();
    for (name, key, value) in [
        ("ci-secrets", "token", "ci secret"),
        ("docker-config", "config.json", "docker config"),
        ("npm-config", ".npmrc", "npm config"),
    ] {
        create::<Secret>(
            &client,
            None,
            json!({"metadata": {"name": name}, "stringData": {key: value}}),
        )
        .await;
    }
    let mut allowed = job(
        "allowed-user",
        &[
            "echo \"uid=$(id -u) gid=$(id -g)\"",
            "cat /secrets/token; echo",
            "cat /credentials/docker/config.json; echo",
            "cat /credentials/npm/.npmrc; echo",
        ],
    );
    allowed.image = Some("alpine:3.19".into());
    allowed.image_user = Some("1001:65534".into());
    let ran = run(&sim, Api::default_namespaced(client.clone()), allowed).await;
    ran.assert_succeeded();
    for line in ["uid=1001 gid=65534", "ci secret", "docker config", "npm config"] {
        ran.assert_line(line);
    }

    let mut root = job("root-user", &["echo never runs"]);
    root.image = Some("alpine:3.19".into());
    root.image_user = Some("0".into());
    root.expect = Expect::Failed;
    let id = sim.add_job(root).unwrap();
    all_finished(&sim).await;
    let refused = sim.job(id).unwrap();
    assert_eq!(refused.failure_reason.as_deref(), Some("runner_configuration_error"));
    let trace = refused.trace_text();
    assert!(
        trace.contains("allowed_users") && !trace.contains("never runs"),
        "{trace}"
    );
}

/// Seed 003 (CERN), security contexts (with the underscores the article's markdown ate put
/// back): the Pod's and each container's user and group, as the processes run.
#[tokio::test(flavor = "multi_thread")]
async fn cern_security_contexts() {
    let entry = runner(&under_runner(&[&fixture(
        "cern_security_contexts_restored_fragment.toml",
    )]));
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let pods = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let mut contexts = job(
        "contexts",
        &[
            "echo \"build uid=$(id -u) gid=$(id -g)\"",
            "for i in $(seq 1 100); do pgrep -f service-marker-5678 >/dev/null && break; sleep 0.1; done",
            "echo \"service uid=$(stat -c %u /proc/$(pgrep -f service-marker-5678 | head -1))\"",
        ],
    );
    contexts.services = vec![ServiceSpec {
        name: "redis:7".into(),
        alias: Some("cache".into()),
        entrypoint: vec!["sh".into(), "-c".into()],
        command: vec!["sleep 300; echo service-marker-5678".into()],
    }];
    let ran = run(&sim, pods, contexts).await;
    ran.assert_succeeded();
    ran.assert_line("build uid=2000 gid=2001");
    ran.assert_line("service uid=4000");
    assert_eq!(
        ran.pod["spec"]["securityContext"],
        json!({"runAsUser": 1500, "runAsGroup": 1500})
    );
    let helper = &ran.container("helper")["securityContext"];
    assert_eq!(
        (&helper["runAsUser"], &helper["runAsGroup"]),
        (&json!(3000), &json!(3001))
    );
}

/// Seed 002 (the blog's ConfigMap): its namespace, service account, requests and limits and
/// secret volumes. Its `pre_build_script` (which Flotilla runs before the job's script)
/// configures npm, gem, maven, kubectl and git with the secrets; kube-sim's containers see this
/// machine's files, so the test puts a harmless one in its place rather than let it rewrite
/// the host's git and kubectl settings.
#[tokio::test(flavor = "multi_thread")]
async fn blog_configmap_example() {
    let mut entry = runner(&fixture("blog_configmap_reconstructed.toml"));
    assert!(entry
        .pre_build_script
        .as_deref()
        .is_some_and(|s| s.contains("Configuring environment")));
    entry.pre_build_script = Some("echo 'Configuring environment'".into());
    let sim = gitlab().await;
    let fleet = start_under_runner(&sim, &entry, ClusterSpec::new("cluster-a", 1)).await;
    let client = fleet.workers[0].0.kube.clone();
    namespace(&client, "myteam-ci").await;
    create::<ServiceAccount>(
        &client,
        Some("myteam-ci"),
        json!({"metadata": {"name": "gitlab-runner"}}),
    )
    .await;
    for name in [
        "gitlab-npm-publish",
        "gitlab-gem-publish",
        "gitlab-mvn-publish",
        "gitlab-k8s-deploy",
        "gitlab-git",
    ] {
        create::<Secret>(
            &client,
            Some("myteam-ci"),
            json!({"metadata": {"name": name}, "stringData": {"user": format!("{name} user")}}),
        )
        .await;
    }
    let pods = Api::namespaced(client, "myteam-ci");
    let ran = run(
        &sim,
        pods,
        job("blog", &["cat /k8s-secrets/user; echo", "cat /git-secrets/user; echo"]),
    )
    .await;
    ran.assert_succeeded();
    ran.assert_line("Configuring environment");
    ran.assert_line("gitlab-k8s-deploy user");
    ran.assert_line("gitlab-git user");
    assert_eq!(ran.pod["spec"]["serviceAccountName"], "gitlab-runner");
    let resources =
        json!({"limits": {"cpu": "300", "memory": "1000Mi"}, "requests": {"cpu": "100m", "memory": "200Mi"}});
    assert_eq!(ran.container("build")["resources"], resources);
    assert_eq!(ran.container("helper")["resources"], resources);
    assert_eq!(ran.failure_reason, None);
}
