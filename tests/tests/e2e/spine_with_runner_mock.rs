//! The spine end to end, with collabora's independent `gitlab-runner-mock` as GitLab: jobs
//! are polled by the coordinator, run as Pods on two workers in two kube-sim clusters, their
//! logs reach GitLab through the log-shipper, masked, and their final states follow.

use std::time::Duration;

use flotilla_e2e::{start, status_until};
use flotilla_proto::admin_client::AdminClient;
use flotilla_proto::StatusRequest;
use gitlab_runner_mock::{GitlabRunnerMock, MockJob, MockJobState, MockJobStepName, MockJobStepWhen};

fn job(mock: &GitlabRunnerMock, name: &str, script: &[&str], masked: Option<&str>) -> MockJob {
    let mut builder = mock.job_builder(name.to_owned());
    builder.add_variable("GIT_STRATEGY".into(), "none".into(), true, false);
    if let Some(value) = masked {
        builder.add_variable("SECRET_VALUE".into(), value.into(), false, true);
    }
    let script = script.iter().map(|s| s.to_string()).collect();
    builder.add_step(MockJobStepName::Script, script, 600, MockJobStepWhen::OnSuccess, false);
    let job = builder.build();
    mock.enqueue_job(job.clone());
    job
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_run_on_two_workers_and_report_to_gitlab() {
    let mock = GitlabRunnerMock::start().await;
    let fleet = start(mock.uri().as_str(), mock.runner_token(), 2, 2).await;
    // Both workers are in before GitLab has jobs, so the spread does not depend on timing.
    status_until(&fleet, |s| s.workers.len() == 2).await;
    let ok = job(&mock, "echo", &["echo the-line-we-look-for"], None);
    let failing = job(&mock, "fails", &["echo about to fail", "exit 3"], None);
    let secret = job(
        &mock,
        "masked",
        &["echo \"value is $SECRET_VALUE\""],
        Some("hush-hush-value-1"),
    );

    let status = status_until(&fleet, |s| {
        s.jobs.len() == 3 && s.jobs.iter().all(|j| j.state == "done")
    })
    .await;
    assert_eq!(ok.state(), MockJobState::Success);
    let trace = String::from_utf8(ok.log()).unwrap();
    assert_eq!(
        trace.matches("\nthe-line-we-look-for\n").count(),
        1,
        "the line is in the trace exactly once:\n{trace}"
    );

    assert_eq!(failing.state(), MockJobState::Failed);
    assert!(String::from_utf8(failing.log()).unwrap().contains("exit code 3"));

    assert_eq!(secret.state(), MockJobState::Success);
    let trace = String::from_utf8(secret.log()).unwrap();
    assert!(trace.contains("value is [MASKED]"), "{trace}");
    assert!(!trace.contains("hush-hush-value-1"));

    let clusters: std::collections::BTreeSet<&str> = status.jobs.iter().map(|j| j.cluster.as_str()).collect();
    assert_eq!(clusters.len(), 2, "jobs ran on both clusters: {:?}", status.jobs);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_canceled_in_gitlab_stops_its_pod() {
    let mock = GitlabRunnerMock::start().await;
    let fleet = start(mock.uri().as_str(), mock.runner_token(), 1, 1).await;
    let long = job(&mock, "long", &["echo started", "sleep 120", "echo never"], None);
    tokio::time::timeout(Duration::from_secs(30), async {
        while !String::from_utf8_lossy(&long.log()).contains("\nstarted\n") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the job starts");
    long.cancel();
    // Far less than the script's 120 s: the Pod was stopped, the job is done for the fleet.
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        status_until(&fleet, |s| s.jobs.first().is_some_and(|j| j.state == "done")),
    )
    .await
    .expect("the canceled job ends without waiting for its script");
    assert_eq!(status.jobs[0].result, "failed");
    assert_eq!(long.state(), MockJobState::Cancelled);
    assert!(!String::from_utf8_lossy(&long.log()).contains("never"));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_refused_with_a_clear_error() {
    use flotilla_proto::worker_gateway_client::WorkerGatewayClient;
    use flotilla_proto::{worker_message, Register, WorkerMessage};

    let mock = GitlabRunnerMock::start().await;
    let fleet = start(mock.uri().as_str(), mock.runner_token(), 0, 1).await;
    let channel = tonic::transport::Endpoint::from_shared(fleet.coordinator_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = "Bearer not-the-token".parse().unwrap();
    let mut client = WorkerGatewayClient::with_interceptor(channel.clone(), move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", bearer.clone());
        Ok(r)
    });
    let register = Register {
        worker_id: "intruder".into(),
        cluster: "x".into(),
        pool: "prod".into(),
        capacity: 1,
        ..Default::default()
    };
    let hello = WorkerMessage {
        kind: Some(worker_message::Kind::Register(register)),
    };
    let refused = client.session(tokio_stream::iter([hello])).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(refused.message().contains("pool \"prod\""), "{}", refused.message());
    assert!(!refused.message().contains("not-the-token"), "the secret is not echoed");
    let admin_channel = tonic::transport::Endpoint::from_shared(fleet.admin_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut admin = AdminClient::new(admin_channel);
    assert_eq!(
        admin.status(StatusRequest {}).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
}
