//! kube-rs against kube-sim: CRUD, watches that survive dropped streams, logs that resume
//! after a drop without losing a line, exec, volumes and env, errors as kube sees them.

mod common;

use std::collections::BTreeSet;

use common::{start, within};
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, AttachParams, DeleteParams, ListParams, LogParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube_sim::faults::StreamKind;
use serde_json::json;

fn pod(name: &str, script: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"suite": "kube-client"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]}
    }))
    .unwrap()
}

fn is_phase(phase: &'static str) -> impl Fn(Option<&Pod>) -> bool {
    move |pod: Option<&Pod>| pod.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some(phase)
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_and_api_errors() {
    let cluster = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let created = pods.create(&PostParams::default(), &pod("a", "true")).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(
        created.spec.as_ref().unwrap().termination_grace_period_seconds,
        Some(30)
    );
    let err = pods
        .create(&PostParams::default(), &pod("a", "true"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.reason == "AlreadyExists" && s.code == 409),
        "{err:?}"
    );
    let err = pods.get("nope").await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 404), "{err:?}");
    assert!(pods.get_opt("nope").await.unwrap().is_none());
    let listed = pods
        .list(&ListParams::default().labels("suite=kube-client"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.resource_version.is_some());
    let by_name = pods
        .list(&ListParams::default().fields("metadata.name=a"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let err = pods
        .list(&ListParams::default().fields("spec.bogus=x"))
        .await
        .unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 400), "{err:?}");
    let mut invalid = pod("b", "true");
    invalid.spec.as_mut().unwrap().containers[0].image = None;
    let err = pods.create(&PostParams::default(), &invalid).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.message.contains("spec.containers[0].image")),
        "{err:?}"
    );
    let patched = pods
        .patch(
            "a",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"extra": "yes"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["extra"], "yes");
    within(
        "pod a to succeed",
        await_condition(pods.clone(), "a", is_phase("Succeeded")),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_volume_env_and_termination_message() {
    let cluster = start().await;
    let client = cluster.client().await;
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "job-1"}, "stringData": {"token": "s3cret", "script": "echo from-script"}}),
    )
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client);
    let spec: Pod = serde_json::from_value(json!({
        "metadata": {"name": "uses-secret"},
        "spec": {"restartPolicy": "Never",
            "volumes": [{"name": "s", "secret": {"secretName": "job-1", "items": [{"key": "script", "path": "run.sh"}]}}],
            "containers": [{"name": "main", "image": "busybox",
                "command": ["sh", "-c", "sh /scripts/run.sh; echo token=$TOKEN; echo finished-ok > /dev/termination-log; exit 4"],
                "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "job-1", "key": "token"}}}],
                "volumeMounts": [{"name": "s", "mountPath": "/scripts", "readOnly": true}]}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &spec).await.unwrap();
    let done = within(
        "the pod to fail",
        await_condition(pods.clone(), "uses-secret", is_phase("Failed")),
    )
    .await
    .unwrap()
    .unwrap();
    let state = done.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap();
    let terminated = state.terminated.unwrap();
    assert_eq!(terminated.exit_code, 4);
    assert_eq!(terminated.reason.as_deref(), Some("Error"));
    assert_eq!(terminated.message.as_deref(), Some("finished-ok\n"));
    let logs = pods.logs("uses-secret", &LogParams::default()).await.unwrap();
    assert_eq!(logs, "from-script\ntoken=s3cret\n");
}

/// The capability sets a container's process sees: containerd's default set with the
/// context's `add` and `drop`, or everything when privileged.
#[tokio::test(flavor = "multi_thread")]
async fn containers_get_their_capabilities() {
    let cluster = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let contexts = [
        ("caps-default", json!({})),
        (
            "caps-custom",
            json!({"capabilities": {"add": ["SYS_TIME"], "drop": ["NET_RAW"]}}),
        ),
        ("caps-privileged", json!({"privileged": true})),
    ];
    for (name, context) in &contexts {
        let mut value = serde_json::to_value(pod(name, "grep -E '^Cap(Bnd|Eff):' /proc/self/status")).unwrap();
        value["spec"]["containers"][0]["securityContext"] = context.clone();
        let spec: Pod = serde_json::from_value(value).unwrap();
        pods.create(&PostParams::default(), &spec).await.unwrap();
    }
    let mut masks = Vec::new();
    for (name, _) in &contexts {
        within(
            "the pod to end",
            await_condition(pods.clone(), name, is_phase("Succeeded")),
        )
        .await
        .unwrap();
        let logs = pods.logs(name, &LogParams::default()).await.unwrap();
        let field = |key: &str| {
            let line = logs
                .lines()
                .find(|l| l.starts_with(key))
                .unwrap_or_else(|| panic!("{key} in {logs}"));
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(
            field("CapBnd:"),
            field("CapEff:"),
            "root's effective set is its bound: {logs}"
        );
        masks.push(field("CapBnd:"));
    }
    let (net_raw, sys_time, sys_admin, chown) = (1u64 << 13, 1u64 << 25, 1u64 << 21, 1u64);
    assert_eq!(masks[0] & (net_raw | chown), net_raw | chown, "the default set");
    assert_eq!(masks[0] & (sys_time | sys_admin), 0, "the default set");
    assert_eq!(masks[1] & (net_raw | sys_time), sys_time, "add and drop");
    assert_eq!(
        masks[2] & (sys_admin | net_raw | sys_time),
        sys_admin | net_raw | sys_time,
        "privileged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watcher_survives_dropped_streams() {
    let cluster = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let mut stream = watcher(pods.clone(), watcher::Config::default().labels("suite=kube-client")).boxed();
    // Initial list of nothing.
    loop {
        if let watcher::Event::InitDone = within("watcher init", stream.try_next()).await.unwrap().unwrap() {
            break;
        }
    }
    pods.create(&PostParams::default(), &pod("w1", "true")).await.unwrap();
    let mut names = BTreeSet::new();
    within("w1 to be seen", async {
        while let Some(event) = stream.try_next().await.unwrap() {
            if let watcher::Event::Apply(p) = event {
                names.insert(p.metadata.name.unwrap());
                if names.contains("w1") {
                    break;
                }
            }
        }
    })
    .await;
    cluster.sim.faults().drop_streams(&[StreamKind::Watch]);
    pods.create(&PostParams::default(), &pod("w2", "true")).await.unwrap();
    within("w2 to be seen after the drop", async {
        while let Some(event) = stream.try_next().await.unwrap() {
            if let watcher::Event::Apply(p) = event {
                if p.metadata.name.as_deref() == Some("w2") {
                    break;
                }
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn too_old_resource_version_is_an_error_event() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let sim = kube_sim::Sim::start(kube_sim::SimConfig {
        kubeconfig: Some(kubeconfig.clone()),
        history_limit: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(common::client_for(&kubeconfig).await);
    let secrets: Api<Secret> = Api::default_namespaced(pods.clone().into_client());
    for i in 0..10 {
        let s: Secret = serde_json::from_value(json!({"metadata": {"name": format!("s{i}")}})).unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let mut events = pods.watch(&WatchParams::default(), "2").await.unwrap().boxed();
    match within("the ERROR event", events.next()).await {
        Some(Ok(WatchEvent::Error(e))) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    drop(sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn log_follow_resumes_after_a_drop_without_losing_lines() {
    let cluster = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    pods.create(
        &PostParams::default(),
        &pod("chatty", "for i in $(seq 1 40); do echo line-$i; sleep 0.05; done"),
    )
    .await
    .unwrap();
    within(
        "chatty to run",
        await_condition(pods.clone(), "chatty", is_phase("Running")),
    )
    .await
    .unwrap();

    // Follow with timestamps; after the first lines, cut the stream; resume with sinceTime
    // (whole seconds) and drop what we already have by timestamp, as the worker will.
    let params = LogParams {
        follow: true,
        timestamps: true,
        container: Some("main".into()),
        ..Default::default()
    };
    let mut lines = pods.log_stream("chatty", &params).await.unwrap().lines();
    let mut received: Vec<(String, String)> = Vec::new();
    within("the first lines", async {
        while received.len() < 5 {
            let line = lines.try_next().await.unwrap().unwrap();
            let (ts, text) = line.split_once(' ').unwrap();
            received.push((ts.to_string(), text.to_string()));
        }
    })
    .await;
    cluster.sim.faults().drop_streams(&[StreamKind::Log]);
    within("the dropped stream to end", async {
        while lines.try_next().await.ok().flatten().is_some() {}
    })
    .await;

    let last_ts = received.last().unwrap().0.clone();
    // kube rounds sinceTime to the *nearest* second, which can skip lines: floor it first.
    let last: jiff::Timestamp = last_ts.parse().unwrap();
    let since = jiff::Timestamp::from_second(last.as_second()).unwrap();
    let resume = LogParams {
        since_time: Some(since),
        ..params.clone()
    };
    let mut lines = pods.log_stream("chatty", &resume).await.unwrap().lines();
    within("the rest of the log", async {
        while let Some(line) = lines.try_next().await.unwrap() {
            let (ts, text) = line.split_once(' ').unwrap();
            if ts > last_ts.as_str() {
                received.push((ts.to_string(), text.to_string()));
            }
        }
    })
    .await;
    let texts: Vec<String> = received.into_iter().map(|(_, t)| t).collect();
    let expected: Vec<String> = (1..=40).map(|i| format!("line-{i}")).collect();
    assert_eq!(texts, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_reports_the_exit_status() {
    let cluster = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    pods.create(&PostParams::default(), &pod("sleeper", "sleep 3600"))
        .await
        .unwrap();
    within(
        "sleeper to run",
        await_condition(pods.clone(), "sleeper", is_phase("Running")),
    )
    .await
    .unwrap();
    let mut attached = pods
        .exec(
            "sleeper",
            ["sh", "-c", "read x; echo got $x; exit 7"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await
        .unwrap();
    let mut stdin = attached.stdin().unwrap();
    use tokio::io::AsyncWriteExt;
    stdin.write_all(b"input\n").await.unwrap();
    stdin.shutdown().await.unwrap();
    let mut stdout = attached.stdout().unwrap();
    let status = attached.take_status().unwrap();
    let mut output = String::new();
    use tokio::io::AsyncReadExt;
    within("exec output", stdout.read_to_string(&mut output)).await.unwrap();
    assert_eq!(output, "got input\n");
    let status = within("exec status", status).await.unwrap();
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let code = status
        .details
        .unwrap()
        .causes
        .unwrap()
        .into_iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .unwrap()
        .message;
    assert_eq!(code.as_deref(), Some("7"));
    within("join", attached.join()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_delete_and_owned_secret_collection() {
    let cluster = start().await;
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let running = pods
        .create(
            &PostParams::default(),
            &pod("victim", "trap 'exit 0' TERM; while true; do sleep 0.1; done"),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let owned: Secret = serde_json::from_value(json!({"metadata": {"name": "victim-secret", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "victim", "uid": running.metadata.uid}]}}))
    .unwrap();
    secrets.create(&PostParams::default(), &owned).await.unwrap();
    within(
        "victim to run",
        await_condition(pods.clone(), "victim", is_phase("Running")),
    )
    .await
    .unwrap();
    let response = pods.delete("victim", &DeleteParams::default()).await.unwrap();
    let pending = response.left().expect("a running pod is deleted gracefully");
    assert!(pending.metadata.deletion_timestamp.is_some());
    let uid = pending.metadata.uid.unwrap();
    within(
        "victim to go",
        await_condition(pods.clone(), "victim", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap();
    within("the owned secret to be collected", async {
        while secrets.get_opt("victim-secret").await.unwrap().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn image_pull_failures_keep_the_pod_pending() {
    let cluster = start().await;
    cluster.sim.faults().fail_image_pulls(kube_sim::faults::ImagePullFault {
        image: "registry.example/broken:1".into(),
        pull_policy: None,
    });
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let mut p = pod("broken", "true");
    p.spec.as_mut().unwrap().containers[0].image = Some("registry.example/broken:1".into());
    pods.create(&PostParams::default(), &p).await.unwrap();
    let backoff = |pod: Option<&Pod>| {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c[0].state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref())
            == Some("ImagePullBackOff")
    };
    let pending = within("ImagePullBackOff", await_condition(pods.clone(), "broken", backoff))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.status.unwrap().phase.as_deref(), Some("Pending"));
    cluster
        .sim
        .faults()
        .clear_image_pull_failure("registry.example/broken:1");
    within(
        "the pod to run once the image pulls",
        await_condition(pods, "broken", is_phase("Succeeded")),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn log_options_tail_limit_and_errors() {
    let cluster = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    pods.create(
        &PostParams::default(),
        &pod("lines", "for i in 1 2 3 4 5; do echo line-$i; done"),
    )
    .await
    .unwrap();
    within(
        "lines to finish",
        await_condition(pods.clone(), "lines", is_phase("Succeeded")),
    )
    .await
    .unwrap();
    let tail = pods
        .logs(
            "lines",
            &LogParams {
                tail_lines: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tail, "line-4\nline-5\n");
    let limited = pods
        .logs(
            "lines",
            &LogParams {
                limit_bytes: Some(9),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(limited, "line-1\nli");
    let recent = pods
        .logs(
            "lines",
            &LogParams {
                since_seconds: Some(3600),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(recent.lines().count(), 5);
    let err = pods
        .logs(
            "lines",
            &LogParams {
                container: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message.contains("container nope is not valid")),
        "{err:?}"
    );
    let err = pods
        .logs(
            "lines",
            &LogParams {
                previous: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 400), "{err:?}");
}
