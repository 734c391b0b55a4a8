//! A worker lost mid-job (issue 4): if it comes back within the coordinator's grace it
//! re-adopts its Pod by label and resumes the log from what the log-shipper has, and the job
//! ends as if nothing happened — no line lost or repeated, nothing run twice; if it does not,
//! the job fails with `runner_system_failure` and a line in its log saying why. A Pod re-adopted
//! while it is still starting keeps its runner entry's `poll_timeout`, counted from its creation.

use std::time::Duration;

use flotilla_coordinator::core::WorkerTiming;
use flotilla_e2e::gitlab::{all_finished, assert_survived, gitlab, survivor_job, wait_for_line};
use flotilla_e2e::{start_fleet, status_until, FleetSpec};
use gitlab_sim::{Expect, JobSpec, JobState};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::wait::await_condition;

fn timing(reconnect_grace: Duration) -> WorkerTiming {
    WorkerTiming {
        heartbeat_interval: Duration::from_millis(200),
        worker_timeout: Duration::from_secs(2),
        reconnect_grace,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_back_within_its_grace_finishes_its_job_untouched() {
    let sim = gitlab().await;
    let mut spec = FleetSpec::new(sim.url(), &sim.runner_tokens()[0], 1, 1);
    spec.workers = timing(Duration::from_secs(30));
    let mut fleet = start_fleet(spec).await;
    let id = sim.add_job(survivor_job(2)).unwrap();
    wait_for_line(&sim, id, "\nbefore-20\n").await;

    fleet.stop_worker(0);
    status_until(&fleet, |s| s.workers.is_empty()).await;
    fleet.restart_worker(0);

    tokio::time::timeout(Duration::from_secs(60), sim.wait_all_finished())
        .await
        .expect("the job ends");
    assert_survived(&sim, id);
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    assert_eq!(status.jobs[0].dispatches, 1, "the job was handed to a worker once");
    assert_eq!(status.jobs[0].result, "success");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_stays_away_fails_its_running_job_with_the_reason() {
    let sim = gitlab().await;
    let mut spec = FleetSpec::new(sim.url(), &sim.runner_tokens()[0], 1, 1);
    spec.workers = timing(Duration::from_secs(1));
    let mut fleet = start_fleet(spec).await;
    let id = sim
        .add_job(JobSpec::new("orphan", ["echo started", "sleep 120"]).variable("GIT_STRATEGY", "none"))
        .unwrap();
    wait_for_line(&sim, id, "\nstarted\n").await;

    fleet.stop_worker(0);
    tokio::time::timeout(Duration::from_secs(30), sim.wait_all_finished())
        .await
        .expect("the job is failed well before its script would end");
    let job = sim.job(id).unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.failure_reason.as_deref(), Some("runner_system_failure"));
    let trace = job.trace_text();
    assert!(trace.contains("\nstarted\n"), "what was shipped stays: {trace}");
    assert!(
        trace.contains("the worker worker-cluster-a running this job was lost and did not come back within 1s"),
        "{trace}"
    );
    assert_eq!(job.checksum_matched, Some(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_worker_is_dropped_after_its_timeout() {
    use flotilla_proto::Register;

    let sim = gitlab().await;
    let mut spec = FleetSpec::new(sim.url(), &sim.runner_tokens()[0], 0, 1);
    spec.workers = WorkerTiming {
        heartbeat_interval: Duration::from_millis(200),
        worker_timeout: Duration::from_secs(1),
        reconnect_grace: Duration::from_secs(30),
    };
    let fleet = start_fleet(spec).await;
    // A partitioned worker: its session stays open but nothing arrives, no heartbeat either.
    let register = Register {
        worker_id: "silent".into(),
        cluster: "far-away".into(),
        pool: "prod".into(),
        capacity: 1,
        ..Default::default()
    };
    let (outgoing, mut incoming) = hand_driven_session(&fleet, register).await;
    status_until(&fleet, |s| s.workers.iter().any(|w| w.worker_id == "silent")).await;
    status_until(&fleet, |s| s.workers.is_empty()).await;
    // The coordinator also ends the session, so a worker that is only slow reconnects.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = incoming.message().await {}
    })
    .await;
    assert!(ended.is_ok(), "the silent worker's session is closed");
    drop(outgoing);
}

/// The real `flotilla-worker` process, SIGKILLed mid-job and started again: the job's Pod
/// lives on in its cluster, the new process re-adopts it and the job ends untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_process_re_adopts_its_pod() {
    use std::process::{Command, Stdio};

    let sim = gitlab().await;
    let mut spec = FleetSpec::new(sim.url(), &sim.runner_tokens()[0], 0, 1);
    spec.workers = timing(Duration::from_secs(30));
    let fleet = start_fleet(spec).await;
    let (_cluster, _) = flotilla_e2e::cluster(fleet.dir.path(), "cluster-k").await;
    let config = fleet.dir.path().join("worker.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[worker]
id = "worker-k"
coordinator_url = "{coordinator}"
token = "{token}"
cluster = "cluster-k"
capacity = 1

[kubernetes]
kubeconfig = "{kubeconfig}"
helper_binary = "{helper}"
"#,
            coordinator = fleet.coordinator_url,
            token = flotilla_e2e::POOL_TOKEN,
            kubeconfig = fleet.dir.path().join("cluster-k.kubeconfig").display(),
            helper = flotilla_e2e::helper_binary(),
        ),
    )
    .unwrap();
    let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/flotilla-worker");
    let worker = || {
        Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut process = worker();
    let id = sim.add_job(survivor_job(3)).unwrap();
    wait_for_line(&sim, id, "\nbefore-20\n").await;
    process.kill().unwrap();
    process.wait().unwrap();
    let mut process = worker();

    tokio::time::timeout(Duration::from_secs(60), sim.wait_all_finished())
        .await
        .expect("the job ends");
    assert_survived(&sim, id);
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    assert_eq!(status.jobs[0].dispatches, 1, "run once");
    process.kill().unwrap();
    process.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_re_adopted_while_it_starts_keeps_its_entrys_poll_timeout() {
    let sim = gitlab().await;
    let mut spec = FleetSpec::new(sim.url(), &sim.runner_tokens()[0], 1, 1);
    spec.workers = timing(Duration::from_secs(30));
    let entry = "[[runners]]\nurl = \"https://gitlab.example.com\"\ntoken = \"t\"\nexecutor = \"kubernetes\"\n\
                 [runners.kubernetes]\npoll_interval = 1\npoll_timeout = 8\n";
    let runner = &flotilla_config::runner_config_from_str(entry).unwrap().config.runners[0];
    spec.runner_config_json = serde_json::to_string(runner).unwrap();
    let mut fleet = start_fleet(spec).await;
    // The Pod never gets a node: only its start wait can end the job.
    fleet.clusters[0].faults().set_schedule_delay(Duration::from_secs(3600));
    let mut stuck = JobSpec::new("stuck", ["echo never"]).variable("GIT_STRATEGY", "none");
    stuck.expect = Expect::Failed;
    let id = sim.add_job(stuck).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(fleet.workers[0].0.kube.clone());
    let name = format!("flotilla-job-{id}");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(pods, &name, |pod: Option<&Pod>| pod.is_some()),
    )
    .await
    .expect("the job's Pod is created")
    .unwrap();

    fleet.stop_worker(0);
    status_until(&fleet, |s| s.workers.is_empty()).await;
    fleet.restart_worker(0);
    // Well before the default 180 s (`all_finished` gives up after 90): the re-adopted Pod
    // keeps the 8 s of its entry.
    all_finished(&sim).await;
    let job = sim.job(id).unwrap();
    let trace = job.trace_text();
    assert_eq!(job.state, JobState::Failed, "{trace}");
    assert!(
        trace.contains("timed out waiting for pod to start (last phase: Pending)"),
        "{trace}"
    );
}

/// A worker session driven by the test: connected with the pool token, `register` sent; what
/// the test sends, and what the coordinator answers.
async fn hand_driven_session(
    fleet: &flotilla_e2e::Fleet,
    register: flotilla_proto::Register,
) -> (
    tokio::sync::mpsc::Sender<flotilla_proto::WorkerMessage>,
    tonic::Streaming<flotilla_proto::CoordinatorMessage>,
) {
    use flotilla_proto::worker_gateway_client::WorkerGatewayClient;
    use flotilla_proto::{worker_message, WorkerMessage};

    let channel = tonic::transport::Endpoint::from_shared(fleet.coordinator_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", flotilla_e2e::POOL_TOKEN).parse().unwrap();
    let mut client = WorkerGatewayClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", bearer.clone());
        Ok(r)
    });
    let (outgoing, stream) = tokio::sync::mpsc::channel(4);
    let hello = WorkerMessage {
        kind: Some(worker_message::Kind::Register(register)),
    };
    outgoing.send(hello).await.unwrap();
    let incoming = client
        .session(tokio_stream::wrappers::ReceiverStream::new(stream))
        .await
        .unwrap()
        .into_inner();
    (outgoing, incoming)
}

/// The next thing the coordinator tells a hand-driven worker.
async fn next_message(
    incoming: &mut tonic::Streaming<flotilla_proto::CoordinatorMessage>,
) -> flotilla_proto::coordinator_message::Kind {
    tokio::time::timeout(Duration::from_secs(30), incoming.message())
        .await
        .expect("the coordinator says something")
        .unwrap()
        .and_then(|m| m.kind)
        .expect("a message")
}

/// A worker lost after its Pod was created but before its start report arrived: the job went
/// back to the queue; when the worker reconnects with the job's Pod, the job is its again (not
/// stopped, not handed out a second time). The worker here is driven by hand to hit that gap.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_back_with_the_pod_of_a_requeued_job_keeps_it() {
    use flotilla_proto::{
        coordinator_message, job_event, worker_message, JobEvent, JobFinished, JobResult, Register, RunningJob,
        WorkerMessage,
    };

    let sim = gitlab().await;
    let mut spec = FleetSpec::new(sim.url(), &sim.runner_tokens()[0], 0, 1);
    spec.workers = WorkerTiming {
        heartbeat_interval: Duration::from_millis(200),
        worker_timeout: Duration::from_secs(60),
        reconnect_grace: Duration::from_secs(60),
    };
    let fleet = start_fleet(spec).await;
    let register = |running: Vec<RunningJob>| Register {
        worker_id: "by-hand".into(),
        cluster: "cluster-h".into(),
        pool: "prod".into(),
        capacity: 1,
        running,
        ..Default::default()
    };
    // First session: the job is assigned, and the worker is lost before it reports the start.
    let (outgoing, mut incoming) = hand_driven_session(&fleet, register(Vec::new())).await;
    let id = sim
        .add_job(JobSpec::new("gap", ["echo never"]).variable("GIT_STRATEGY", "none"))
        .unwrap();
    loop {
        if let coordinator_message::Kind::Assign(assign) = next_message(&mut incoming).await {
            assert_eq!(assign.job_id, id);
            break;
        }
    }
    drop((outgoing, incoming));
    status_until(&fleet, |s| {
        s.jobs.iter().any(|j| j.job_id == id && j.state == "accepted")
    })
    .await;

    // Back, with the job's Pod.
    let running = vec![RunningJob {
        job_id: id,
        log_offset: 0,
    }];
    let (outgoing, mut incoming) = hand_driven_session(&fleet, register(running)).await;
    status_until(&fleet, |s| {
        s.jobs
            .iter()
            .any(|j| j.job_id == id && j.state == "running" && j.worker_id == "by-hand")
    })
    .await;
    let finished = JobFinished {
        result: Some(JobResult {
            state: "success".into(),
            ..Default::default()
        }),
        log_bytes: 0,
    };
    outgoing
        .send(WorkerMessage {
            kind: Some(worker_message::Kind::JobEvent(JobEvent {
                job_id: id,
                event: Some(job_event::Event::Finished(finished)),
            })),
        })
        .await
        .unwrap();
    loop {
        match next_message(&mut incoming).await {
            coordinator_message::Kind::Ended(ended) if ended.job_id == id => break,
            coordinator_message::Kind::Cancel(cancel) => panic!("the job was stopped: {cancel:?}"),
            coordinator_message::Kind::Assign(assign) => panic!("the job was handed out again: {assign:?}"),
            _ => {}
        }
    }
    all_finished(&sim).await;
    assert_eq!(sim.job(id).unwrap().state, JobState::Success);
}
