//! The real kubectl against kube-sim: the checks from the kube-sim issue, one per test.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{start, within, TestCluster};
use tokio::io::AsyncBufReadExt;

const KUBECTL: &str = "/usr/bin/kubectl";

fn require_kubectl() {
    assert!(
        Path::new(KUBECTL).exists(),
        "these tests need the real kubectl at {KUBECTL} (the machine image ships it; install kubectl 1.32 there)"
    );
}

fn base_args(cluster: &TestCluster) -> Vec<String> {
    vec![
        "--kubeconfig".into(),
        cluster.kubeconfig.display().to_string(),
        "--cache-dir".into(),
        cluster.dir.path().join("kube-cache").display().to_string(),
    ]
}

async fn kubectl(cluster: &TestCluster, args: &[&str]) -> Output {
    require_kubectl();
    let mut command = tokio::process::Command::new(KUBECTL);
    command
        .args(base_args(cluster))
        .args(args)
        .env_remove("KUBECTL_REMOTE_COMMAND_WEBSOCKETS");
    within(&format!("kubectl {}", args.join(" ")), command.output())
        .await
        .expect("kubectl runs")
}

async fn kubectl_stdin(cluster: &TestCluster, args: &[&str], stdin: &str) -> Output {
    require_kubectl();
    let mut child = tokio::process::Command::new(KUBECTL)
        .args(base_args(cluster))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    use tokio::io::AsyncWriteExt;
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    within("kubectl with stdin", child.wait_with_output()).await.unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn wait_for_phase(cluster: &TestCluster, pod: &str, phase: &str) {
    let out = kubectl(
        cluster,
        &[
            "wait",
            &format!("--for=jsonpath={{.status.phase}}={phase}"),
            &format!("pod/{pod}"),
            "--timeout=60s",
        ],
    )
    .await;
    assert!(out.status.success(), "pod {pod} never reached {phase}: {}", text(&out));
}

const JOB_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: demo
  labels: {app: demo}
spec:
  restartPolicy: Never
  volumes:
  - name: shared
    emptyDir: {}
  initContainers:
  - name: prepare
    image: busybox:1.36
    command: ["sh", "-c", "echo prepared > /shared/ready"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "cat /shared/ready; echo line-two; sleep 1; echo done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: side
    image: alpine:3.19
    command: ["sh", "-c", "echo from side"]
    volumeMounts: [{name: shared, mountPath: /shared}]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn create_watch_logs_and_events() {
    let cluster = start().await;
    // Hold the Pod unscheduled until kubectl's watch shows it, so every state is seen.
    cluster
        .sim
        .faults()
        .set_schedule_delay(std::time::Duration::from_secs(3600));
    let created = kubectl_stdin(&cluster, &["create", "-f", "-"], JOB_POD).await;
    assert!(created.status.success(), "{}", text(&created));
    require_kubectl();
    let mut watch = tokio::process::Command::new(KUBECTL)
        .args(base_args(&cluster))
        .args(["get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    within("kubectl get pods -w to list the pod", async {
        while seen.len() < 2 {
            seen.push(lines.next_line().await.unwrap().unwrap());
        }
    })
    .await;
    cluster.sim.faults().set_schedule_delay(std::time::Duration::ZERO);
    assert_eq!(String::from_utf8_lossy(&created.stdout).trim(), "pod/demo created");

    within("kubectl get pods -w to show Completed", async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("Completed");
            seen.push(line);
            if done {
                break;
            }
        }
    })
    .await;
    assert!(
        seen[0].split_whitespace().collect::<Vec<_>>() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{seen:?}"
    );
    let statuses: Vec<&str> = seen[1..].iter().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(statuses.first(), Some(&"Pending"), "{seen:?}");
    assert!(statuses.iter().any(|s| s.starts_with("Init:")), "{seen:?}");
    assert_eq!(statuses.last(), Some(&"Completed"), "{seen:?}");

    let listed = kubectl(&cluster, &["get", "pods"]).await;
    let listed = text(&listed);
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["demo", "0/2", "Completed", "0"], "{listed}");

    let logs = kubectl(&cluster, &["logs", "demo", "-c", "main"]).await;
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "prepared\nline-two\ndone\n");
    let side = kubectl(&cluster, &["logs", "demo", "-c", "side", "--timestamps"]).await;
    let side = String::from_utf8_lossy(&side.stdout).to_string();
    let (stamp, line) = side.trim_end().split_once(' ').unwrap();
    assert!(stamp.ends_with('Z') && stamp.contains('T'), "{side}");
    assert_eq!(line, "from side");
    let tail = kubectl(&cluster, &["logs", "demo", "-c", "main", "--tail=1"]).await;
    assert_eq!(String::from_utf8_lossy(&tail.stdout), "done\n");

    let labelled = kubectl(&cluster, &["label", "pod", "demo", "color=blue"]).await;
    assert!(labelled.status.success(), "{}", text(&labelled));
    let selected = text(&kubectl(&cluster, &["get", "pods", "-l", "color=blue", "-o", "name"]).await);
    assert_eq!(selected.trim(), "pod/demo");
    let none = text(&kubectl(&cluster, &["get", "pods", "-l", "color=red"]).await);
    assert!(none.contains("No resources found"), "{none}");

    let events = kubectl(&cluster, &["get", "events"]).await;
    let events = text(&events);
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(events.contains(reason), "no {reason} event in:\n{events}");
    }
    assert!(events.lines().next().unwrap().contains("LAST SEEN"), "{events}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_streams_until_the_container_ends() {
    let cluster = start().await;
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ticker"},"spec":{"restartPolicy":"Never","containers":[
        {"name":"main","image":"busybox","command":["sh","-c","for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done"]}]}}"#;
    let created = kubectl_stdin(&cluster, &["create", "-f", "-"], pod).await;
    assert!(created.status.success(), "{}", text(&created));
    wait_for_phase(&cluster, "ticker", "Running").await;
    let followed = kubectl(&cluster, &["logs", "-f", "ticker"]).await;
    assert!(followed.status.success(), "{}", text(&followed));
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout),
        "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_prints_output_and_returns_the_exit_code() {
    let cluster = start().await;
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"box"},"spec":{"containers":[
        {"name":"c","image":"busybox","command":["sleep","3600"],"env":[{"name":"WHO","value":"container"}],"workingDir":"/tmp"}]}}"#;
    assert!(kubectl_stdin(&cluster, &["create", "-f", "-"], pod)
        .await
        .status
        .success());
    wait_for_phase(&cluster, "box", "Running").await;
    let out = kubectl(
        &cluster,
        &[
            "exec",
            "box",
            "-c",
            "c",
            "--",
            "sh",
            "-c",
            "echo hi; echo $WHO; pwd; echo oops >&2; exit 3",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\ncontainer\n/tmp\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("oops"));
    let input = kubectl_stdin(
        &cluster,
        &["exec", "-i", "box", "--", "sh", "-c", "cat; echo end"],
        "from stdin\n",
    )
    .await;
    assert!(input.status.success(), "{}", text(&input));
    assert_eq!(String::from_utf8_lossy(&input.stdout), "from stdin\nend\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_waits_for_graceful_termination() {
    let cluster = start().await;
    let marker_dir = cluster.dir.path().join("marker");
    std::fs::create_dir(&marker_dir).unwrap();
    let pod = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"graceful"}},"spec":{{"terminationGracePeriodSeconds":20,
        "volumes":[{{"name":"out","hostPath":{{"path":"{}"}}}}],
        "containers":[{{"name":"c","image":"busybox","volumeMounts":[{{"name":"out","mountPath":"/out"}}],
        "command":["sh","-c","trap 'sleep 1; echo got-term > /out/term; exit 0' TERM; echo ready > /out/ready; while true; do sleep 0.1; done"]}}]}}}}"#,
        marker_dir.display()
    );
    assert!(kubectl_stdin(&cluster, &["create", "-f", "-"], &pod)
        .await
        .status
        .success());
    wait_for_phase(&cluster, "graceful", "Running").await;
    let ready = within("the container to start", async {
        while !marker_dir.join("ready").exists() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    ready.await;
    let deleted = kubectl(&cluster, &["delete", "pod", "graceful"]).await;
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(text(&deleted).contains("pod \"graceful\" deleted"));
    // kubectl returned only once the Pod was gone, after the container handled SIGTERM.
    assert_eq!(std::fs::read_to_string(marker_dir.join("term")).unwrap(), "got-term\n");
    let gone = kubectl(&cluster, &["get", "pod", "graceful"]).await;
    assert!(text(&gone).contains("NotFound"), "{}", text(&gone));
    let events = text(&kubectl(&cluster, &["get", "events", "--field-selector", "reason=Killing"]).await);
    assert!(events.contains("Stopping container c"), "{events}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_pods_are_refused_with_the_field_named() {
    let cluster = start().await;
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"},"spec":{"containers":[
        {"name":"c","image":"busybox","volumeMounts":[{"name":"missing","mountPath":"/x"}]}]}}"#;
    let out = kubectl_stdin(&cluster, &["create", "-f", "-"], pod).await;
    assert!(!out.status.success());
    let message = text(&out);
    assert!(message.contains("is invalid"), "{message}");
    assert!(message.contains("metadata.name"), "{message}");
    assert!(message.contains("spec.containers[0].volumeMounts[0].name"), "{message}");
}

#[test]
fn kubectl_version_reaches_the_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = runtime.block_on(start());
    require_kubectl();
    let out = Command::new(KUBECTL)
        .args(base_args(&cluster))
        .args(["version", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("v1.32.0-sim"));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_creates_then_patches_a_config_map() {
    let cluster = start().await;
    let v1 = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"settings\"},\"data\":{\"a\":\"1\",\"b\":\"2\"}}";
    let first = kubectl_stdin(&cluster, &["apply", "-f", "-"], v1).await;
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("configmap/settings created"), "{}", text(&first));
    let v2 =
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"settings\"},\"data\":{\"a\":\"10\"}}";
    let second = kubectl_stdin(&cluster, &["apply", "-f", "-"], v2).await;
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("configmap/settings configured"),
        "{}",
        text(&second)
    );
    let data = kubectl(&cluster, &["get", "configmap", "settings", "-o", "jsonpath={.data}"]).await;
    assert_eq!(String::from_utf8_lossy(&data.stdout), "{\"a\":\"10\"}");
}

#[tokio::test(flavor = "multi_thread")]
async fn imperative_creates_send_protobuf_and_work() {
    let cluster = start().await;
    let ns = kubectl(&cluster, &["create", "namespace", "ci"]).await;
    assert!(ns.status.success(), "{}", text(&ns));
    let secret = kubectl(
        &cluster,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "ci",
            "--from-literal=token=abc",
        ],
    )
    .await;
    assert!(secret.status.success(), "{}", text(&secret));
    let cm = kubectl(
        &cluster,
        &[
            "create",
            "configmap",
            "settings",
            "-n",
            "ci",
            "--from-literal=mode=fast",
        ],
    )
    .await;
    assert!(cm.status.success(), "{}", text(&cm));
    let token = kubectl(
        &cluster,
        &["get", "secret", "creds", "-n", "ci", "-o", "jsonpath={.data.token}"],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&token.stdout), "YWJj");
    let mode = kubectl(
        &cluster,
        &[
            "get",
            "configmap",
            "settings",
            "-n",
            "ci",
            "-o",
            "jsonpath={.data.mode}",
        ],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&mode.stdout), "fast");
}
