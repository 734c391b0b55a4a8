//! Fault injection (library and `/sim` HTTP control API), authentication, native sidecars,
//! downward-API refresh, scheduling delays, and the binary's clean shutdown.

mod common;

use std::time::Duration;

use common::{start, within};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::json;

fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

fn phase(p: Option<&Pod>) -> Option<String> {
    p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.clone())
}

async fn control(client: &kube::Client, method: &str, path: &str, body: serde_json::Value) -> String {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    client
        .request_text(request)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn token_or_client_certificate_is_required() {
    let cluster = start().await;
    let mut config = common::config_for(&cluster.kubeconfig).await;
    // Client certificate only: accepted.
    let mut cert_only = config.clone();
    cert_only.auth_info.token = None;
    let pods: Api<Pod> = Api::default_namespaced(kube::Client::try_from(cert_only).unwrap());
    pods.list(&Default::default())
        .await
        .expect("client certificate is accepted");
    // Token only: accepted.
    let mut token_only = config.clone();
    token_only.auth_info.client_certificate_data = None;
    token_only.auth_info.client_key_data = None;
    let pods: Api<Pod> = Api::default_namespaced(kube::Client::try_from(token_only).unwrap());
    pods.list(&Default::default()).await.expect("token is accepted");
    // Neither, or a wrong token: 401.
    config.auth_info.client_certificate_data = None;
    config.auth_info.client_key_data = None;
    config.auth_info.token = Some("wrong".to_string().into());
    let pods: Api<Pod> = Api::default_namespaced(kube::Client::try_from(config).unwrap());
    let err = pods.list(&Default::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 401), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_429s_are_retried_and_500s_surface() {
    let cluster = start().await;
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    control(
        &client,
        "PUT",
        "/sim/faults/errors",
        json!({"fraction": 1.0, "code": 429, "retryAfterSeconds": 0, "remaining": 2}),
    )
    .await;
    // kube-rs retries 429 by itself; the third attempt gets through.
    pods.list(&Default::default()).await.expect("429s are retried");
    assert!(
        cluster.sim.faults().injected_error("GET", "/api/v1/pods").is_none(),
        "both injected errors were used"
    );
    control(
        &client,
        "PUT",
        "/sim/faults/errors",
        json!({"fraction": 1.0, "code": 500, "remaining": 1}),
    )
    .await;
    let err = pods.list(&Default::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 500), "{err:?}");
    pods.list(&Default::default()).await.expect("the fault is spent");
    // Only the requests a fault names.
    control(
        &client,
        "PUT",
        "/sim/faults/errors",
        json!({"fraction": 1.0, "code": 500, "method": "DELETE", "pathContains": "/pods/"}),
    )
    .await;
    pods.list(&Default::default()).await.expect("a list is no DELETE");
    let err = pods.delete("absent", &Default::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 500), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_killed_from_outside_fails_the_pod() {
    let cluster = start().await;
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(
        &PostParams::default(),
        &pod(json!({"metadata": {"name": "k"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}})),
    )
    .await
    .unwrap();
    within(
        "k to run",
        await_condition(pods.clone(), "k", |p: Option<&Pod>| {
            phase(p).as_deref() == Some("Running")
        }),
    )
    .await
    .unwrap();
    control(
        &client,
        "POST",
        "/sim/pods/default/k/kill",
        json!({"container": "main", "signal": 9}),
    )
    .await;
    let failed = within(
        "k to fail",
        await_condition(pods.clone(), "k", |p: Option<&Pod>| {
            phase(p).as_deref() == Some("Failed")
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let terminated = failed.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(terminated.exit_code, 137);
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduling_delay_keeps_pods_unscheduled_and_they_delete_at_once() {
    let cluster = start().await;
    let client = cluster.client().await;
    control(&client, "PUT", "/sim/faults/schedule-delay", json!({"millis": 600_000})).await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(
        &PostParams::default(),
        &pod(json!({"metadata": {"name": "waiting"}, "spec": {
        "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}})),
    )
    .await
    .unwrap();
    let p = pods.get("waiting").await.unwrap();
    assert!(p.spec.unwrap().node_name.is_none());
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    // An unscheduled Pod has no kubelet to wait for: it goes at once.
    pods.delete("waiting", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt("waiting").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn native_sidecars_keep_running_and_do_not_decide_the_phase() {
    let cluster = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    pods.create(&PostParams::default(), &pod(json!({"metadata": {"name": "with-sidecar"}, "spec": {"restartPolicy": "Never",
        "volumes": [{"name": "shared", "emptyDir": {}}],
        "initContainers": [{"name": "proxy", "image": "busybox", "restartPolicy": "Always",
            "command": ["sh", "-c", "echo up > /shared/proxy; exec sleep 3600"], "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}],
        "containers": [{"name": "main", "image": "busybox",
            "command": ["sh", "-c", "while [ ! -f /shared/proxy ]; do sleep 0.05; done; cat /shared/proxy"], "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}]}})))
        .await
        .unwrap();
    let done = within(
        "the pod to succeed",
        await_condition(pods.clone(), "with-sidecar", |p: Option<&Pod>| {
            phase(p).as_deref() == Some("Succeeded")
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let sidecar = &done.status.unwrap().init_container_statuses.unwrap()[0];
    assert!(
        sidecar.state.as_ref().unwrap().terminated.is_some(),
        "the sidecar was stopped: {sidecar:?}"
    );
    assert_eq!(
        pods.logs(
            "with-sidecar",
            &kube::api::LogParams {
                container: Some("main".into()),
                ..Default::default()
            }
        )
        .await
        .unwrap(),
        "up\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn downward_api_files_follow_label_patches() {
    let cluster = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    pods.create(&PostParams::default(), &pod(json!({"metadata": {"name": "labels", "labels": {"app": "x"}}, "spec": {"restartPolicy": "Never",
        "volumes": [{"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}],
        "containers": [{"name": "main", "image": "busybox", "volumeMounts": [{"name": "info", "mountPath": "/info"}],
            "command": ["sh", "-c", "cat /info/labels; echo; until grep -q cancel /info/labels; do sleep 0.05; done; cat /info/labels"]}]}})))
        .await
        .unwrap();
    within(
        "labels to run",
        await_condition(pods.clone(), "labels", |p: Option<&Pod>| {
            phase(p).as_deref() == Some("Running")
        }),
    )
    .await
    .unwrap();
    pods.patch(
        "labels",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"cancel": "now"}}})),
    )
    .await
    .unwrap();
    within(
        "the container to see the label",
        await_condition(pods.clone(), "labels", |p: Option<&Pod>| {
            phase(p).as_deref() == Some("Succeeded")
        }),
    )
    .await
    .unwrap();
    let log = pods.logs("labels", &Default::default()).await.unwrap();
    assert_eq!(log, "app=\"x\"\napp=\"x\"\ncancel=\"now\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_binary_and_every_container() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The address is printed once the kubeconfig is written.
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    use tokio::io::AsyncBufReadExt;
    within("the banner", stdout.read_line(&mut banner)).await.unwrap();
    assert!(banner.contains("serving https://127.0.0.1:"), "{banner}");
    let pods: Api<Pod> = Api::default_namespaced(common::client_for(&kubeconfig).await);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    pods.create(
        &PostParams::default(),
        &pod(json!({"metadata": {"name": "long"}, "spec": {
        "volumes": [{"name": "out", "hostPath": {"path": out.display().to_string()}}],
        "containers": [{"name": "main", "image": "busybox", "volumeMounts": [{"name": "out", "mountPath": "/out"}],
            // `$$` is Kubernetes' escape for `$`, so the shell sees `$$`.
            "command": ["sh", "-c", "echo $$$$ > /out/pid.tmp; mv /out/pid.tmp /out/pid; exec sleep 3600"]}]}})),
    )
    .await
    .unwrap();
    let pid_file = out.join("pid");
    within("the container to start", async {
        while !pid_file.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let status = within("kube-sim to exit", child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
    within("the container process to be gone", async {
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
