//! A job from GitLab (collabora's independent `gitlab-runner-mock`) runs in a kube-sim Pod
//! through the worker's job runner; its log goes through the real log-shipper to GitLab,
//! byte for byte as the helper container wrote it (minus masking), even when the log
//! stream is cut mid-job.

use std::time::Duration;

use flotilla_gitlab::{JobRequest, RunnerClient, Secret, SystemId, VersionInfo};
use flotilla_log_shipper::service::{Shipper, TraceSinkService};
use flotilla_log_shipper::ship::ShipTiming;
use flotilla_proto::trace_sink_server::TraceSinkServer;
use flotilla_proto::{shipper_message, OpenTrace};
use flotilla_worker::job_runner::JobRunner;
use gitlab_runner_mock::{GitlabRunnerMock, MockJobStepName, MockJobStepWhen};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread")]
async fn the_job_log_reaches_gitlab_byte_for_byte_across_a_dropped_stream() {
    // GitLab with one job whose script prints for a while and holds a masked value.
    let mock = GitlabRunnerMock::start().await;
    let mut builder = mock.job_builder("build".to_owned());
    builder.add_variable("GIT_STRATEGY".into(), "none".into(), true, false);
    builder.add_variable("API_KEY".into(), "s3cr3t-api-key-value".into(), false, true);
    let script = vec![
        "echo \"key=$API_KEY\"".to_string(),
        "for i in $(seq 1 40); do echo \"line $i\"; sleep 0.02; done".to_string(),
        // One line far longer than the runtime's 16 KiB log entries.
        "head -c 40000 /dev/zero | tr '\\0' x; echo".to_string(),
    ];
    builder.add_step(MockJobStepName::Script, script, 600, MockJobStepWhen::OnSuccess, false);
    let job = builder.build();
    mock.enqueue_job(job.clone());
    let client = RunnerClient::new(mock.uri().as_str()).unwrap();
    let JobRequest::Job(received) = client
        .request_job(
            &Secret::new(mock.runner_token()),
            &SystemId::random(),
            &VersionInfo::flotilla(),
            None,
        )
        .await
        .unwrap()
    else {
        panic!("no job")
    };
    let payload_json = String::from_utf8(received.raw.to_vec()).unwrap();

    // The log-shipper, told about the job as the coordinator would.
    let dir = tempfile::tempdir().unwrap();
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let shipper = Shipper::new(
        dir.path().join("shipper"),
        reports_tx,
        ShipTiming {
            interval: Duration::from_millis(20),
            retry_after: Duration::from_millis(20),
            keepalive: Duration::from_millis(200),
        },
    );
    let masked: Vec<String> = received
        .payload
        .variables
        .iter()
        .filter(|v| v.masked)
        .map(|v| v.value.clone())
        .collect();
    shipper
        .open(OpenTrace {
            job_id: job.id(),
            gitlab_url: mock.uri().to_string(),
            job_token: received.payload.token.expose().to_string(),
            masked_values: masked,
            output_limit_bytes: 4 << 20,
            ..Default::default()
        })
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shipper_url = format!("http://{}", listener.local_addr().unwrap());
    let sink = TraceSinkService(shipper.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceSinkServer::new(sink))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });

    // The cluster, and the worker's job runner.
    let (sim, client) = flotilla_e2e::cluster(dir.path(), "cluster-a").await;
    let runner = JobRunner {
        client,
        kubeconfig: None,
        namespace: "default".into(),
        worker_id: "worker-test".into(),
        helper_image: "flotilla/helper:dev".into(),
        helper_binary: flotilla_e2e::helper_binary(),
        default_image: "alpine:3.19".into(),
        builds_dir: "/builds".into(),
        shipper_url,
        tls: None,
        places: Default::default(),
        cancels: Default::default(),
    };
    let run = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run(&payload_json).await }
    });
    // Cut the log stream while the job prints: once GitLab shows line 5 (of 40).
    tokio::time::timeout(Duration::from_secs(30), async {
        while !String::from_utf8_lossy(&job.log()).contains("line 5\n") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    sim.faults().drop_streams(&[kube_sim::faults::StreamKind::Log]);
    let run = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(run.result.state, "success");
    shipper.close(&flotilla_proto::CloseTrace {
        job_id: job.id(),
        final_size: run.log_bytes,
        ..Default::default()
    });
    let flushed = tokio::time::timeout(Duration::from_secs(30), reports.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(flushed.kind, Some(shipper_message::Kind::Flushed(_))),
        "{flushed:?}"
    );

    let trace = String::from_utf8(job.log()).unwrap();
    let lines: Vec<&str> = trace.lines().filter(|l| l.starts_with("line ")).collect();
    let expected: Vec<String> = (1..=40).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected, "every line once, in order:\n{trace}");
    assert!(trace.contains("key=[MASKED]"), "{trace}");
    assert!(
        trace.contains(&format!("\n{}\n", "x".repeat(40_000))),
        "the long line arrives whole"
    );
    assert!(!trace.contains("s3cr3t-api-key-value"));
    assert_eq!(
        run.log_bytes as usize,
        trace.len() + "s3cr3t-api-key-value".len() - "[MASKED]".len(),
        "byte for byte, minus masking"
    );
}
