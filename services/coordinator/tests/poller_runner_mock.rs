//! The poller against collabora's independent `gitlab-runner-mock`: it takes only as many
//! jobs as there are slots, stores each exactly as GitLab sent it before acknowledging it,
//! and the acknowledgement reaches GitLab.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flotilla_coordinator::job::JobState;
use flotilla_coordinator::poller::{PollTiming, Poller, PollerEvent, RunnerEntry};
use flotilla_coordinator::slots::{Limits, SlotGate};
use flotilla_coordinator::store::JobStore;
use flotilla_gitlab::{RunnerClient, Secret, SystemId};
use gitlab_runner_mock::{GitlabRunnerMock, MockJobState};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn timing() -> PollTiming {
    PollTiming {
        check_interval: Duration::from_millis(20),
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

#[tokio::test]
async fn takes_jobs_only_while_there_are_slots() {
    let mock = GitlabRunnerMock::start().await;
    let first = mock.add_dummy_job("first".to_owned());
    let second = mock.add_dummy_job("second".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(JobStore::open(dir.path()).unwrap());
    let gate = SlotGate::new(Limits {
        concurrent: 10,
        per_runner: HashMap::new(),
    });
    gate.set_fleet_free(1);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let poller = Poller {
        runner: RunnerEntry {
            name: "r".into(),
            url: mock.uri().to_string(),
            token: Secret::new(mock.runner_token()),
        },
        client: RunnerClient::new(mock.uri().as_str()).unwrap(),
        system_id: SystemId::random(),
        gate: gate.clone(),
        store: store.clone(),
        events: events_tx,
        timing: timing(),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(poller.run(shutdown.clone()));

    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, PollerEvent::Accepted { job_id: first.id() });
    let record = store.get(first.id()).unwrap().unwrap();
    assert_eq!(record.state, JobState::Accepted);
    assert!(
        record.payload_json.contains("\"token\":\"job-token-"),
        "stored exactly as GitLab sent it"
    );
    assert_eq!(first.state(), MockJobState::Running);
    assert!(first.state_updates() >= 2, "pickup and our PUT running");

    // One slot, promised to the first job: the poller waits instead of asking GitLab.
    let requests = mock.n_requests().await;
    tokio::task::yield_now().await;
    assert_eq!(second.state(), MockJobState::Pending);
    // The first job reaches a worker and the fleet reports room again.
    gate.dispatched();
    gate.set_fleet_free(1);
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, PollerEvent::Accepted { job_id: second.id() });
    assert!(mock.n_requests().await > requests);
    assert_eq!(gate.held(), 2);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_wrong_token_takes_nothing_and_frees_the_slot() {
    let mock = GitlabRunnerMock::start().await;
    let job = mock.add_dummy_job("job".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(JobStore::open(dir.path()).unwrap());
    let gate = SlotGate::new(Limits::default());
    gate.set_fleet_free(1);
    let (events_tx, _events) = mpsc::unbounded_channel();
    let poller = Poller {
        runner: RunnerEntry {
            name: "r".into(),
            url: mock.uri().to_string(),
            token: Secret::new("wrong"),
        },
        client: RunnerClient::new(mock.uri().as_str()).unwrap(),
        system_id: SystemId::random(),
        gate: gate.clone(),
        store: store.clone(),
        events: events_tx,
        timing: timing(),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(poller.run(shutdown.clone()));
    // Wait until the poller has been refused a few times (backing off between).
    tokio::time::timeout(Duration::from_secs(10), async {
        while mock.n_requests().await < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(job.state(), MockJobState::Pending);
    assert!(store.all().unwrap().is_empty());
    assert_eq!(gate.held(), 0);
}

#[tokio::test]
async fn the_final_update_reaches_gitlab() {
    use flotilla_coordinator::finisher::{deliver, final_update, FinishTiming, Finished};
    use flotilla_coordinator::job::JobOutcome;
    use flotilla_gitlab::{JobRequest, TraceChecksum, VersionInfo};

    let mock = GitlabRunnerMock::start().await;
    let job = mock.add_dummy_job("job".to_owned());
    let client = RunnerClient::new(mock.uri().as_str()).unwrap();
    let request = client
        .request_job(
            &Secret::new(mock.runner_token()),
            &SystemId::random(),
            &VersionInfo::flotilla(),
            None,
        )
        .await
        .unwrap();
    let JobRequest::Job(received) = request else {
        panic!("no job")
    };
    let patch = client
        .patch_trace(job.id(), &received.payload.token, 0, &b"exit 3\n"[..], false)
        .await
        .unwrap();
    assert!(matches!(patch, flotilla_gitlab::PatchOutcome::Accepted { .. }));
    let mut sum = TraceChecksum::new();
    sum.update(b"exit 3\n");
    let update = final_update(
        &JobOutcome::failed("script_failure", Some(3)),
        sum.output(),
        &received.payload.features,
    );
    let timing = FinishTiming {
        min_backoff: Duration::from_millis(5),
        ..FinishTiming::default()
    };
    assert_eq!(
        deliver(&client, job.id(), &received.payload.token, &update, timing).await,
        Finished::Delivered
    );
    assert_eq!(job.state(), MockJobState::Failed);
}

#[tokio::test]
async fn a_restarted_coordinator_resumes_jobs_from_its_store() {
    use flotilla_coordinator::core::{Core, CoreMessage, RunnerRoute, Session, WorkerTiming};
    use flotilla_coordinator::finisher::FinishTiming;
    use flotilla_coordinator::fleet::{PoolPolicy, WorkerInfo};
    use flotilla_coordinator::job::JobRecord;
    use flotilla_proto::coordinator_message;

    let mock = GitlabRunnerMock::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A job was accepted (stored and acknowledged) just before the coordinator died.
    {
        let store = JobStore::open(dir.path()).unwrap();
        store
            .insert(&JobRecord::accepted(
                4242,
                "r",
                "{\"id\":4242,\"token\":\"t\"}".into(),
                1,
            ))
            .unwrap();
    }
    let store = Arc::new(JobStore::open(dir.path()).unwrap());
    let gate = SlotGate::new(Limits::default());
    let client = RunnerClient::new(mock.uri().as_str()).unwrap();
    let route = RunnerRoute {
        client,
        config_json: "{}".into(),
        url: mock.uri().to_string(),
        output_limit_bytes: 1 << 20,
        cluster_selector: Default::default(),
    };
    let core = Core::spawn(
        store.clone(),
        gate.clone(),
        PoolPolicy::default(),
        HashMap::from([("r".into(), route)]),
        FinishTiming::default(),
        WorkerTiming {
            heartbeat_interval: Duration::from_secs(2),
            worker_timeout: Duration::from_secs(10),
            reconnect_grace: Duration::from_secs(30),
        },
        flotilla_coordinator::metrics::Metrics::new(),
    );
    assert_eq!(gate.held(), 1, "the stored job holds its slot again");
    // A log-shipper and a worker come: the stored job is dispatched, exactly once.
    let (shipper_tx, mut shipper_rx) = tokio::sync::mpsc::channel(8);
    core.send(CoreMessage::ShipperConnected {
        outbox: shipper_tx,
        sink_url: "http://127.0.0.1:1".into(),
    })
    .unwrap();
    let (worker_tx, mut worker_rx) = tokio::sync::mpsc::channel(8);
    let worker = WorkerInfo {
        worker_id: "w".into(),
        cluster: "c".into(),
        pool: "prod".into(),
        labels: Default::default(),
        capacity: 4,
        used: 0,
        last_heartbeat_ms: 0,
    };
    core.send(CoreMessage::WorkerConnected {
        session: Session {
            worker_id: "w".into(),
            id: "s1".into(),
        },
        info: worker,
        outbox: worker_tx,
        running: vec![],
        ended: vec![],
    })
    .unwrap();
    let registered = worker_rx.recv().await.unwrap();
    assert!(matches!(
        registered.kind,
        Some(coordinator_message::Kind::Registered(_))
    ));
    let assigned = tokio::time::timeout(Duration::from_secs(5), worker_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(assigned.kind, Some(coordinator_message::Kind::Assign(ref a)) if a.job_id == 4242),
        "{assigned:?}"
    );
    assert!(shipper_rx.recv().await.is_some(), "the log-shipper was told first");
    assert!(matches!(
        store.get(4242).unwrap().unwrap().state,
        JobState::Assigned { .. }
    ));
    assert!(worker_rx.try_recv().is_err(), "nothing is dispatched twice");
}
