//! The shipping loop against collabora's independent `gitlab-runner-mock`: the masked log
//! arrives whole and in order, and a job canceled in GitLab stops the shipping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_gitlab::{JobRequest, RunnerClient, Secret, SystemId, TraceChecksum, VersionInfo};
use flotilla_log_shipper::joblog::{JobLog, LogPolicy};
use flotilla_log_shipper::ship::{ship, ShipEnd, ShipEvent, ShipTarget, ShipTiming};
use gitlab_runner_mock::GitlabRunnerMock;
use tokio::sync::{mpsc, Notify};

async fn running_job(mock: &GitlabRunnerMock, client: &RunnerClient) -> (u64, Secret) {
    mock.add_dummy_job("build".to_owned());
    let request = client
        .request_job(
            &Secret::new(mock.runner_token()),
            &SystemId::random(),
            &VersionInfo::flotilla(),
            None,
        )
        .await
        .unwrap();
    let JobRequest::Job(job) = request else {
        panic!("expected a job, got {request:?}")
    };
    (job.payload.id, job.payload.token.clone())
}

fn timing() -> ShipTiming {
    ShipTiming {
        interval: Duration::from_millis(20),
        retry_after: Duration::from_millis(20),
        keepalive: Duration::from_millis(200),
    }
}

#[tokio::test]
async fn the_masked_log_arrives_whole_with_its_checksum() {
    let mock = GitlabRunnerMock::start().await;
    let client = RunnerClient::new(mock.uri().as_str()).unwrap();
    let (job_id, token) = running_job(&mock, &client).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = LogPolicy {
        masked_values: vec!["hunter2-secret".into()],
        output_limit_bytes: 4 << 20,
    };
    let log = Arc::new(Mutex::new(JobLog::open(dir.path(), &policy).unwrap()));
    let wake = Arc::new(Notify::new());
    let (events_tx, _events) = mpsc::unbounded_channel();
    let target = ShipTarget {
        client,
        job_id,
        job_token: token,
        debug_trace: false,
    };
    let shipping = tokio::spawn(ship(log.clone(), target, wake.clone(), events_tx, timing()));

    // A big log in small chunks, the secret split across two of them.
    let mut raw = Vec::new();
    for i in 0..40_000 {
        raw.extend_from_slice(format!("line {i}: some output of the build\n").as_bytes());
    }
    raw.extend_from_slice(b"password is hunter2-secret, done\n");
    for (n, chunk) in raw.chunks(64 * 1024 + 7).enumerate() {
        log.lock().unwrap().append((n * (64 * 1024 + 7)) as u64, chunk).unwrap();
        wake.notify_one();
    }
    log.lock().unwrap().close().unwrap();
    wake.notify_one();

    let end = tokio::time::timeout(Duration::from_secs(30), shipping)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let expected = String::from_utf8(raw).unwrap().replace("hunter2-secret", "[MASKED]");
    let mut sum = TraceChecksum::new();
    sum.update(expected.as_bytes());
    assert_eq!(
        end,
        ShipEnd::Flushed {
            bytesize: expected.len() as u64,
            checksum: sum.checksum()
        }
    );
    let job = mock.get_job(job_id).unwrap();
    assert_eq!(String::from_utf8(job.log()).unwrap(), expected);
    assert!(job.log_patches() >= 2, "more than 1 MiB goes in several patches");
}

#[tokio::test]
async fn a_job_canceled_in_gitlab_stops_shipping() {
    let mock = GitlabRunnerMock::start().await;
    let client = RunnerClient::new(mock.uri().as_str()).unwrap();
    let (job_id, token) = running_job(&mock, &client).await;
    mock.get_job(job_id).unwrap().cancel();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(
        JobLog::open(
            dir.path(),
            &LogPolicy {
                masked_values: vec![],
                output_limit_bytes: 1 << 20,
            },
        )
        .unwrap(),
    ));
    log.lock().unwrap().append(0, b"hello\n").unwrap();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let target = ShipTarget {
        client,
        job_id,
        job_token: token,
        debug_trace: false,
    };
    let end = tokio::time::timeout(
        Duration::from_secs(30),
        ship(log, target, Arc::new(Notify::new()), events_tx, timing()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(matches!(end, ShipEnd::Stopped { .. }), "{end:?}");
    assert_eq!(
        events.recv().await,
        Some(ShipEvent::CancelRequested { graceful: false })
    );
}
