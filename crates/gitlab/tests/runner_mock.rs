//! `RunnerClient` against collabora's independent `gitlab-runner-mock` (reference §10): a whole
//! job's life as the mock sees it, a bad runner token, and a job canceled under our feet.

use std::time::Duration;

use flotilla_gitlab::types::{Step, When};
use flotilla_gitlab::{
    ClientOptions, JobRequest, JobUpdate, PatchOutcome, ReceivedJob, RetryPolicy, RunnerClient, Secret, SystemId,
    TraceChecksum, TraceOutput, UpdateOutcome, VersionInfo,
};
use gitlab_runner_mock::{GitlabRunnerMock, MockJobState, MockJobStepName, MockJobStepWhen};

async fn start() -> (GitlabRunnerMock, RunnerClient) {
    let mock = GitlabRunnerMock::start().await;
    // The mock asserts these when set: prove that our `info` carries them.
    mock.set_expected_metadata_version(flotilla_gitlab::VERSION);
    mock.set_expected_metadata_platform("linux");
    mock.set_expected_metadata_architecture(flotilla_gitlab::info::go_arch());
    let options = ClientOptions {
        retry: RetryPolicy {
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    let client = RunnerClient::with_options(mock.uri().as_str(), options).unwrap();
    (mock, client)
}

async fn request(mock: &GitlabRunnerMock, client: &RunnerClient) -> JobRequest {
    client
        .request_job(
            &Secret::new(mock.runner_token()),
            &SystemId::random(),
            &VersionInfo::flotilla(),
            None,
        )
        .await
        .unwrap()
}

async fn request_job(mock: &GitlabRunnerMock, client: &RunnerClient) -> ReceivedJob {
    match request(mock, client).await {
        JobRequest::Job(job) => *job,
        other => panic!("expected a job, got {other:?}"),
    }
}

#[tokio::test]
async fn a_whole_job_as_the_mock_sees_it() {
    let (mock, client) = start().await;
    let mut builder = mock.job_builder("build".to_owned());
    builder.add_step(
        MockJobStepName::Script,
        vec!["make".to_owned(), "make test".to_owned()],
        1800,
        MockJobStepWhen::OnSuccess,
        false,
    );
    builder.add_step(
        MockJobStepName::AfterScript,
        vec!["cleanup".to_owned()],
        300,
        MockJobStepWhen::Always,
        true,
    );
    builder.add_variable("MY_SECRET".to_owned(), "hunter2".to_owned(), false, true);
    builder.add_artifact_paths(vec!["out/".to_owned()]);
    let job = builder.build();
    mock.enqueue_job(job.clone());

    // 201: the mock's JSON, with its ~75 default variables, parses into our types.
    let received = request_job(&mock, &client).await;
    let payload = &received.payload;
    assert_eq!(payload.id, job.id());
    assert_eq!(payload.token.expose(), job.token());
    assert_eq!(payload.job_info.name, "build");
    assert_eq!(payload.job_info.stage, "build");
    assert_eq!(payload.job_info.project_id, 4);
    assert_eq!(payload.git_info.refspecs.len(), 2);
    assert_eq!(payload.git_info.depth, 50);
    assert_eq!(payload.runner_info.timeout, 3600);
    assert!(payload.variables.len() >= 70, "{} variables", payload.variables.len());
    assert_eq!(payload.variables.len(), job.variables().len());
    let secret = payload.variable("MY_SECRET").unwrap();
    assert!(secret.masked && !secret.public);
    assert!(payload.variable("CI_JOB_TOKEN").unwrap().masked);
    assert_eq!(payload.variable("CI_JOB_ID").unwrap().value, job.id().to_string());
    let script = payload.step(Step::SCRIPT).unwrap();
    assert_eq!(script.script, vec!["make", "make test"]);
    assert_eq!(
        (script.timeout, &script.when, script.allow_failure),
        (1800, &When::OnSuccess, false)
    );
    let after = payload.step(Step::AFTER_SCRIPT).unwrap();
    assert_eq!(
        (after.timeout, &after.when, after.allow_failure),
        (300, &When::Always, true)
    );
    assert!(payload.image.is_none());
    assert_eq!(payload.artifacts.len(), 1);
    assert_eq!(payload.artifacts[0].paths, vec!["out/"]);
    assert_eq!(payload.artifacts[0].artifact_type, "archive");
    assert_eq!(payload.artifacts[0].artifact_format, "zip");
    assert_eq!(payload.credentials.len(), 2);
    assert!(payload.features.trace_sections);
    assert_eq!(payload.features.failure_reasons.len(), 23);
    assert_eq!(job.state(), MockJobState::Running);
    // Nothing of the mock's payload is a secret in Debug output.
    let debug = format!("{received:?}");
    assert!(!debug.contains(job.token()) && !debug.contains("hunter2"), "{debug}");

    let token = payload.token.clone();
    let id = payload.id;

    // Acceptance touch (legacy job commit: the job is already running).
    let touch = client
        .update_job(id, &token, &JobUpdate::running(TraceOutput::default()))
        .await
        .unwrap();
    assert_eq!(touch, UpdateOutcome::Accepted);

    // Two log chunks, inclusive Content-Range.
    let chunks: [&[u8]; 2] = [b"$ make\nbuilding...\n", b"$ make test\nok\n"];
    let mut checksum = TraceChecksum::new();
    let mut offset = 0;
    for chunk in chunks {
        let outcome = client
            .patch_trace(id, &token, offset, chunk.to_vec(), payload.debug_trace())
            .await
            .unwrap();
        let PatchOutcome::Accepted {
            new_offset,
            update_interval,
            cancel_requested,
        } = outcome
        else {
            panic!("patch not accepted: {outcome:?}");
        };
        assert_eq!(new_offset, offset + chunk.len() as u64);
        assert_eq!(
            update_interval,
            Some(Duration::from_secs(3)),
            "the mock's default interval"
        );
        assert!(!cancel_requested);
        offset = new_offset;
        checksum.update(chunk);
    }

    // A patch from a stale offset is refused; the mock sends no Range, so we learn offset 0.
    let stale = client
        .patch_trace(id, &token, 0, b"again".to_vec(), false)
        .await
        .unwrap();
    assert_eq!(stale, PatchOutcome::RangeMismatch { server_offset: 0 });

    // Final update.
    let done = client
        .update_job(
            id,
            &token,
            &JobUpdate::success(checksum.output()).with_info(VersionInfo::flotilla()),
        )
        .await
        .unwrap();
    assert_eq!(done, UpdateOutcome::Accepted);

    assert_eq!(job.state(), MockJobState::Success);
    assert_eq!(job.log(), chunks.concat());
    assert_eq!(job.log_patches(), 2);
    // Picked (1) + running touch (1) + success (1).
    assert_eq!(job.state_updates(), 3);
    assert_eq!(mock.n_requests().await, 1);

    // The queue is empty now.
    assert!(matches!(
        request(&mock, &client).await,
        JobRequest::NoJob { last_update: None }
    ));
    assert_eq!(mock.n_requests().await, 2);
}

#[tokio::test]
async fn dummy_job_and_failed_final_update() {
    let (mock, client) = start().await;
    let job = mock.add_dummy_job("dummy".to_owned());
    let received = request_job(&mock, &client).await;
    assert_eq!(received.payload.steps.len(), 1);
    assert_eq!(received.payload.steps[0].script, vec!["dummy"]);
    let token = received.payload.token.clone();

    let outcome = client
        .patch_trace(job.id(), &token, 0, b"ERROR: Job failed: exit code 1\n".to_vec(), false)
        .await
        .unwrap();
    assert!(
        matches!(outcome, PatchOutcome::Accepted { new_offset: 31, .. }),
        "{outcome:?}"
    );

    let reason = received.payload.features.map_failure_reason(None);
    let update = JobUpdate::failed(reason, Some(1), TraceOutput::default());
    let outcome = client.update_job(job.id(), &token, &update).await.unwrap();
    // GitLab (and the mock) answer an applied `failed` with `Job-Status: failed`, which the
    // official runner's classification calls Abort: the job is over either way.
    assert_eq!(
        outcome,
        UpdateOutcome::Abort {
            status: 200,
            job_status: Some("failed".into())
        }
    );
    assert_eq!(job.state(), MockJobState::Failed);
}

#[tokio::test]
async fn a_wrong_runner_token_is_forbidden() {
    let (mock, client) = start().await;
    mock.add_dummy_job("never picked".to_owned());
    let outcome = client
        .request_job(
            &Secret::new("glrt-wrong"),
            &SystemId::parse("s_0123456789ab").unwrap(),
            &VersionInfo::flotilla(),
            None,
        )
        .await
        .unwrap();
    assert!(matches!(outcome, JobRequest::Forbidden), "{outcome:?}");
    assert_eq!(mock.n_requests().await, 1);
}

#[tokio::test]
async fn a_wrong_job_token_is_an_abort() {
    let (mock, client) = start().await;
    let job = mock.add_dummy_job("job".to_owned());
    request_job(&mock, &client).await;
    let wrong = Secret::new("not-the-job-token");
    let patch = client
        .patch_trace(job.id(), &wrong, 0, b"x".to_vec(), false)
        .await
        .unwrap();
    assert_eq!(
        patch,
        PatchOutcome::Abort {
            status: 403,
            job_status: None
        }
    );
    let update = client
        .update_job(job.id(), &wrong, &JobUpdate::running(TraceOutput::default()))
        .await
        .unwrap();
    assert_eq!(
        update,
        UpdateOutcome::Abort {
            status: 403,
            job_status: None
        }
    );
    assert!(job.log().is_empty());
}

#[tokio::test]
async fn a_canceled_job_aborts_patches_and_updates() {
    let (mock, client) = start().await;
    let job = mock.add_dummy_job("to be canceled".to_owned());
    let received = request_job(&mock, &client).await;
    let token = received.payload.token.clone();
    assert_eq!(
        client
            .update_job(job.id(), &token, &JobUpdate::running(TraceOutput::default()))
            .await
            .unwrap(),
        UpdateOutcome::Accepted
    );
    let first = client
        .patch_trace(job.id(), &token, 0, b"start\n".to_vec(), false)
        .await
        .unwrap();
    assert!(matches!(first, PatchOutcome::Accepted { new_offset: 6, .. }));

    job.cancel();

    let patch = client
        .patch_trace(job.id(), &token, 6, b"more\n".to_vec(), false)
        .await
        .unwrap();
    assert_eq!(
        patch,
        PatchOutcome::Abort {
            status: 403,
            job_status: Some("canceled".into())
        }
    );
    let mut sum = TraceChecksum::new();
    sum.update(b"start\n");
    let update = client
        .update_job(job.id(), &token, &JobUpdate::success(sum.output()))
        .await
        .unwrap();
    assert_eq!(
        update,
        UpdateOutcome::Abort {
            status: 403,
            job_status: Some("canceled".into())
        }
    );
    assert_eq!(job.state(), MockJobState::Cancelled);
    assert_eq!(job.log(), b"start\n");
}

#[tokio::test]
async fn unknown_job_is_not_found_for_patches_and_abort_for_updates() {
    let (mock, client) = start().await;
    let token = Secret::new("job-token-999");
    assert_eq!(
        client.patch_trace(999, &token, 0, b"x".to_vec(), false).await.unwrap(),
        PatchOutcome::NotFound
    );
    assert_eq!(
        client
            .update_job(999, &token, &JobUpdate::running(TraceOutput::default()))
            .await
            .unwrap(),
        UpdateOutcome::Abort {
            status: 404,
            job_status: None
        }
    );
    drop(mock);
}

#[tokio::test]
async fn dependencies_parse() {
    let (mock, client) = start().await;
    let earlier = mock.add_completed_job("earlier".to_owned(), b"zip bytes".to_vec());
    let mut builder = mock.job_builder("later".to_owned());
    builder.add_step(
        MockJobStepName::Script,
        vec!["ls".to_owned()],
        60,
        MockJobStepWhen::OnSuccess,
        false,
    );
    builder.dependency(earlier.clone());
    let job = builder.build();
    mock.enqueue_job(job.clone());

    let received = request_job(&mock, &client).await;
    assert_eq!(received.payload.id, job.id());
    let dep = &received.payload.dependencies[0];
    assert_eq!(dep.id, earlier.id());
    assert_eq!(dep.name, "earlier");
    assert_eq!(dep.token.expose(), earlier.token());
    // Mock quirk: add_completed_job uploads with no artifact_type, so it is not an archive.
    assert!(dep.artifacts_file.is_none());
}
