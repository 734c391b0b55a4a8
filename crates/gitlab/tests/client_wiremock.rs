//! `RunnerClient` against hand-written wiremock answers: every outcome of the three endpoints,
//! the headers we send, the retry layer, and that no token reaches Debug or tracing output.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_gitlab::{
    ClientOptions, FailureReason, GitlabError, JobRequest, JobUpdate, PatchOutcome, RetryPolicy, RunnerClient, Secret,
    SystemId, TraceChecksum, TraceOutput, UpdateOutcome, VersionInfo,
};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const RUNNER_TOKEN: &str = "glrt-runner-secret-token";
const JOB_TOKEN: &str = "glcbt-job-secret-token";

fn job_json(id: u64) -> String {
    serde_json::json!({
        "id": id,
        "token": JOB_TOKEN,
        "allow_git_fetch": true,
        "job_info": {"name": "build", "stage": "test", "project_id": 1, "project_name": "p"},
        "git_info": {"repo_url": format!("https://gitlab-ci-token:{JOB_TOKEN}@h/g/p.git"), "ref": "main",
                     "sha": "a", "before_sha": "b", "ref_type": "branch", "refspecs": [], "depth": 20},
        "runner_info": {"timeout": 3600},
        "variables": [{"key": "CI_JOB_TOKEN", "value": JOB_TOKEN, "public": false, "masked": true}],
        "steps": [{"name": "script", "script": ["echo hi"], "timeout": 3600, "when": "on_success", "allow_failure": false}],
        "image": null, "services": [], "artifacts": [], "cache": [], "credentials": [], "dependencies": [],
        "features": {"trace_sections": true, "failure_reasons": ["script_failure"]}
    })
    .to_string()
}

/// Retries without real waiting, so tests of the retry layer run fast.
fn fast_options() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    }
}

async fn setup() -> (MockServer, RunnerClient) {
    let server = MockServer::start().await;
    let client = RunnerClient::with_options(&format!("{}/ci/", server.uri()), fast_options()).unwrap();
    (server, client)
}

fn system_id() -> SystemId {
    SystemId::parse("s_0123456789ab").unwrap()
}

async fn request(client: &RunnerClient, last_update: Option<&str>) -> Result<JobRequest, GitlabError> {
    client
        .request_job(
            &Secret::new(RUNNER_TOKEN),
            &system_id(),
            &VersionInfo::flotilla(),
            last_update,
        )
        .await
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).map(|v| v.to_str().unwrap())
}

// ---------------------------------------------------------------------------------------------
// POST /jobs/request

#[tokio::test]
async fn request_job_201_returns_the_parsed_job_and_raw_body() {
    let (server, client) = setup().await;
    let body = job_json(42);
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_raw(body.clone(), "application/json; charset=utf-8")
                .insert_header("X-GitLab-Last-Update", "queue-v2"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let JobRequest::Job(job) = request(&client, Some("queue-v1")).await.unwrap() else {
        panic!("expected a job");
    };
    assert_eq!(job.payload.id, 42);
    assert_eq!(job.payload.token.expose(), JOB_TOKEN);
    assert_eq!(job.raw.as_ref(), body.as_bytes(), "raw body kept byte for byte");
    assert_eq!(job.last_update.as_deref(), Some("queue-v2"));

    let reqs = received(&server).await;
    let req = &reqs[0];
    assert_eq!(header(req, "RUNNER-TOKEN"), Some(RUNNER_TOKEN));
    assert_eq!(header(req, "Accept"), Some("application/json"));
    assert_eq!(header(req, "Content-Type"), Some("application/json"));
    let request_id = header(req, "X-Request-Id").unwrap();
    assert_eq!(request_id.len(), 32);
    assert!(request_id.bytes().all(|b| b.is_ascii_hexdigit()));
    let ua = header(req, "User-Agent").unwrap();
    assert!(
        ua.starts_with(&format!("flotilla {} (linux/", flotilla_gitlab::VERSION)),
        "{ua}"
    );

    let sent: serde_json::Value = req.body_json().unwrap();
    assert_eq!(sent["token"], RUNNER_TOKEN);
    assert_eq!(sent["system_id"], "s_0123456789ab");
    assert_eq!(sent["last_update"], "queue-v1");
    assert_eq!(sent["info"]["executor"], "kubernetes");
    assert_eq!(sent["info"]["features"].as_object().unwrap().len(), 31);
    assert_eq!(sent["info"]["features"]["refspecs"], true);
    assert_eq!(sent["info"]["features"]["two_phase_job_commit"], false);
}

#[tokio::test]
async fn request_job_201_without_json_content_type_is_an_unhealthy_error() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(job_json(1), "text/html"))
        .mount(&server)
        .await;
    let err = request(&client, None).await.unwrap_err();
    assert!(
        matches!(&err, GitlabError::NotJson { content_type: Some(ct), .. } if ct == "text/html"),
        "{err:?}"
    );
    assert!(err.marks_runner_unhealthy());
}

#[tokio::test]
async fn request_job_201_with_garbage_is_an_unhealthy_error() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(201).set_body_raw("{\"id\":", "application/json"))
        .mount(&server)
        .await;
    let err = request(&client, None).await.unwrap_err();
    assert!(matches!(err, GitlabError::InvalidPayload(_)), "{err:?}");
    assert!(err.marks_runner_unhealthy());
}

#[tokio::test]
async fn request_job_204_carries_last_update_and_omits_it_when_unknown() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(204).insert_header("X-GitLab-Last-Update", "abc123"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(204).insert_header("Gitlab-Ci-Builds-Polling", "yes"))
        .mount(&server)
        .await;

    let first = request(&client, None).await.unwrap();
    assert!(
        matches!(first, JobRequest::NoJob { last_update: Some(ref v) } if v == "abc123"),
        "{first:?}"
    );
    // Workhorse's long-poll 204 has no Last-Update: keep polling with the old one.
    let second = request(&client, Some("abc123")).await.unwrap();
    assert!(matches!(second, JobRequest::NoJob { last_update: None }), "{second:?}");

    let reqs = received(&server).await;
    let first_body: serde_json::Value = reqs[0].body_json().unwrap();
    assert!(
        first_body.get("last_update").is_none(),
        "no last_update before we know one"
    );
    let second_body: serde_json::Value = reqs[1].body_json().unwrap();
    assert_eq!(second_body["last_update"], "abc123");
}

#[tokio::test]
async fn request_job_403_is_forbidden_and_409_is_conflict() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({"message": "403 Forbidden"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(409))
        .mount(&server)
        .await;
    assert!(matches!(request(&client, None).await.unwrap(), JobRequest::Forbidden));
    assert!(matches!(request(&client, None).await.unwrap(), JobRequest::Conflict));
    assert_eq!(received(&server).await.len(), 2, "neither is retried");
}

#[tokio::test]
async fn request_job_429_with_retry_after_is_retried_after_the_given_seconds() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(serde_json::json!({"message": "Executing database migrations. Please retry later."})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(job_json(7), "application/json"))
        .expect(1)
        .mount(&server)
        .await;

    let started = Instant::now();
    let outcome = request(&client, None).await.unwrap();
    // The backoff is configured to milliseconds, so a wait of a second can only be Retry-After.
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert!(matches!(outcome, JobRequest::Job(ref j) if j.payload.id == 7));

    let reqs = received(&server).await;
    assert_eq!(reqs.len(), 2);
    // The same logical request: same correlation id, body regenerated identically.
    assert_eq!(header(&reqs[0], "X-Request-Id"), header(&reqs[1], "X-Request-Id"));
    assert_eq!(reqs[0].body, reqs[1].body);
}

#[tokio::test]
async fn retry_layer_gives_up_after_five_attempts() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(503).set_body_json(serde_json::json!({"message": "down"})))
        .mount(&server)
        .await;
    let err = request(&client, None).await.unwrap_err();
    assert!(
        matches!(&err, GitlabError::UnexpectedStatus { status: 503, message, .. } if message == "down"),
        "{err:?}"
    );
    assert!(
        !err.marks_runner_unhealthy(),
        "503 is GitLab being busy, not our runner being broken"
    );
    assert_eq!(received(&server).await.len(), 5);
}

#[tokio::test]
async fn statuses_outside_the_retry_set_are_not_retried() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({"message": {"token": ["missing"]}})))
        .mount(&server)
        .await;
    let err = request(&client, None).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn status_512_and_above_is_retried() {
    let (server, client) = setup().await;
    Mock::given(method("PUT"))
        .and(path("/api/v4/jobs/9"))
        .respond_with(ResponseTemplate::new(520))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v4/jobs/9"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let outcome = client
        .update_job(9, &Secret::new(JOB_TOKEN), &JobUpdate::running(TraceOutput::default()))
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Accepted);
    assert_eq!(received(&server).await.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// PUT /jobs/:id

async fn update(server: &MockServer, client: &RunnerClient, response: ResponseTemplate) -> UpdateOutcome {
    Mock::given(method("PUT"))
        .and(path("/api/v4/jobs/42"))
        .respond_with(response)
        .mount(server)
        .await;
    let mut sum = TraceChecksum::new();
    sum.update(b"hello\n");
    client
        .update_job(42, &Secret::new(JOB_TOKEN), &JobUpdate::success(sum.output()))
        .await
        .unwrap()
}

#[tokio::test]
async fn update_job_200_is_accepted_and_sends_the_documented_request() {
    let (server, client) = setup().await;
    let outcome = update(
        &server,
        &client,
        ResponseTemplate::new(200).insert_header("Job-Status", "success"),
    )
    .await;
    assert_eq!(outcome, UpdateOutcome::Accepted);

    let reqs = received(&server).await;
    let req = &reqs[0];
    assert_eq!(header(req, "JOB-TOKEN"), Some(JOB_TOKEN));
    assert_eq!(header(req, "Content-Type"), Some("application/json"));
    // The official runner sends no Accept on PUT; reqwest's default `*/*` says the same.
    assert_ne!(header(req, "Accept"), Some("application/json"));
    assert!(header(req, "RUNNER-TOKEN").is_none());
    let body: serde_json::Value = req.body_json().unwrap();
    let crc = format!("crc32:{:08x}", crc32fast::hash(b"hello\n"));
    assert_eq!(
        body,
        serde_json::json!({"token": JOB_TOKEN, "state": "success", "checksum": crc,
                           "output": {"checksum": crc, "bytesize": 6}})
    );
}

#[tokio::test]
async fn update_job_failed_sends_reason_and_exit_code() {
    let (server, client) = setup().await;
    Mock::given(method("PUT"))
        .and(path("/api/v4/jobs/5"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let update = JobUpdate::failed(FailureReason::ScriptFailure, Some(3), TraceOutput::default())
        .with_info(VersionInfo::flotilla());
    client.update_job(5, &Secret::new(JOB_TOKEN), &update).await.unwrap();
    let body: serde_json::Value = received(&server).await[0].body_json().unwrap();
    assert_eq!(body["state"], "failed");
    assert_eq!(body["failure_reason"], "script_failure");
    assert_eq!(body["exit_code"], 3);
    assert_eq!(body["output"], serde_json::json!({}));
    assert_eq!(body["info"]["name"], "flotilla");
}

#[tokio::test]
async fn update_job_202_is_accepted_not_completed_with_the_interval() {
    let (server, client) = setup().await;
    let outcome = update(
        &server,
        &client,
        ResponseTemplate::new(202)
            .insert_header("Job-Status", "running")
            .insert_header("X-GitLab-Trace-Update-Interval", "4"),
    )
    .await;
    assert_eq!(
        outcome,
        UpdateOutcome::AcceptedNotCompleted {
            retry_after: Some(Duration::from_secs(4))
        }
    );
}

#[tokio::test]
async fn update_job_canceling_is_cancel_requested() {
    let (server, client) = setup().await;
    let outcome = update(
        &server,
        &client,
        ResponseTemplate::new(200).insert_header("Job-Status", "canceling"),
    )
    .await;
    assert_eq!(
        outcome,
        UpdateOutcome::CancelRequested {
            completed: true,
            retry_after: None
        }
    );
    server.reset().await;
    let outcome = update(
        &server,
        &client,
        ResponseTemplate::new(202)
            .insert_header("Job-Status", "canceling")
            .insert_header("X-GitLab-Trace-Update-Interval", "2"),
    )
    .await;
    assert_eq!(
        outcome,
        UpdateOutcome::CancelRequested {
            completed: false,
            retry_after: Some(Duration::from_secs(2))
        }
    );
}

#[tokio::test]
async fn update_job_abort_cases() {
    let cases = [
        (
            ResponseTemplate::new(200).insert_header("Job-Status", "canceled"),
            200,
            Some("canceled"),
        ),
        (
            ResponseTemplate::new(202).insert_header("Job-Status", "failed"),
            202,
            Some("failed"),
        ),
        (ResponseTemplate::new(403), 403, None),
        (
            ResponseTemplate::new(403).insert_header("Job-Status", "success"),
            403,
            Some("success"),
        ),
        (ResponseTemplate::new(404), 404, None),
    ];
    for (response, status, job_status) in cases {
        let (server, client) = setup().await;
        let outcome = update(&server, &client, response).await;
        assert_eq!(
            outcome,
            UpdateOutcome::Abort {
                status,
                job_status: job_status.map(str::to_owned)
            }
        );
    }
}

#[tokio::test]
async fn update_job_other_statuses_fail_and_412_asks_for_a_trace_reset() {
    let (server, client) = setup().await;
    let outcome = update(
        &server,
        &client,
        ResponseTemplate::new(400).set_body_json(serde_json::json!({"message": "400 Bad request - state is invalid"})),
    )
    .await;
    assert_eq!(
        outcome,
        UpdateOutcome::Failed {
            status: 400,
            message: "400 Bad request - state is invalid".into()
        }
    );
    server.reset().await;
    assert_eq!(
        update(&server, &client, ResponseTemplate::new(412)).await,
        UpdateOutcome::TraceResetRequested
    );
}

// ---------------------------------------------------------------------------------------------
// PATCH /jobs/:id/trace

async fn patch(
    server: &MockServer,
    client: &RunnerClient,
    response: ResponseTemplate,
    offset: u64,
    bytes: &'static [u8],
) -> PatchOutcome {
    Mock::given(method("PATCH"))
        .and(path("/api/v4/jobs/42/trace"))
        .respond_with(response)
        .mount(server)
        .await;
    client
        .patch_trace(42, &Secret::new(JOB_TOKEN), offset, bytes, false)
        .await
        .unwrap()
}

#[tokio::test]
async fn patch_trace_202_advances_the_offset_and_sends_the_documented_request() {
    let (server, client) = setup().await;
    let outcome = patch(
        &server,
        &client,
        ResponseTemplate::new(202)
            .insert_header("Job-Status", "running")
            .insert_header("Range", "0-1028")
            .insert_header("X-GitLab-Trace-Update-Interval", "60"),
        1024,
        b"abcd",
    )
    .await;
    assert_eq!(
        outcome,
        PatchOutcome::Accepted {
            new_offset: 1028,
            update_interval: Some(Duration::from_secs(60)),
            cancel_requested: false
        }
    );
    let reqs = received(&server).await;
    let req = &reqs[0];
    assert_eq!(
        header(req, "Content-Range"),
        Some("1024-1027"),
        "inclusive end, no unit"
    );
    assert_eq!(header(req, "Content-Type"), Some("text/plain"));
    assert_eq!(header(req, "JOB-TOKEN"), Some(JOB_TOKEN));
    assert_eq!(header(req, "Content-Length"), Some("4"));
    assert_eq!(req.url.query(), Some("debug_trace=false"));
    assert_eq!(req.body, b"abcd");
}

#[tokio::test]
async fn patch_trace_single_byte_range_and_debug_trace_query() {
    let (server, client) = setup().await;
    Mock::given(method("PATCH"))
        .and(path("/api/v4/jobs/42/trace"))
        .and(query_param("debug_trace", "true"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let outcome = client
        .patch_trace(42, &Secret::new(JOB_TOKEN), 4, b"x".to_vec(), true)
        .await
        .unwrap();
    assert!(
        matches!(outcome, PatchOutcome::Accepted { new_offset: 5, .. }),
        "{outcome:?}"
    );
    assert_eq!(header(&received(&server).await[0], "Content-Range"), Some("4-4"));
}

#[tokio::test]
async fn patch_trace_canceling_sets_cancel_requested() {
    let (server, client) = setup().await;
    let outcome = patch(
        &server,
        &client,
        ResponseTemplate::new(202).insert_header("Job-Status", "canceling"),
        0,
        b"log",
    )
    .await;
    assert!(
        matches!(
            outcome,
            PatchOutcome::Accepted {
                new_offset: 3,
                cancel_requested: true,
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn patch_trace_416_reports_the_server_offset() {
    let (server, client) = setup().await;
    let outcome = patch(
        &server,
        &client,
        ResponseTemplate::new(416)
            .insert_header("Range", "0-1500")
            .set_body_json(serde_json::json!({"message": "416 Range Not Satisfiable"})),
        2000,
        b"late",
    )
    .await;
    assert_eq!(outcome, PatchOutcome::RangeMismatch { server_offset: 1500 });
    server.reset().await;
    // Without a Range header (gitlab-runner-mock does that) the official runner restarts at 0.
    let outcome = patch(&server, &client, ResponseTemplate::new(416), 10, b"x").await;
    assert_eq!(outcome, PatchOutcome::RangeMismatch { server_offset: 0 });
}

#[tokio::test]
async fn patch_trace_abort_not_found_and_failed() {
    let cases: [(ResponseTemplate, PatchOutcome); 5] = [
        (
            ResponseTemplate::new(403),
            PatchOutcome::Abort {
                status: 403,
                job_status: None,
            },
        ),
        (
            ResponseTemplate::new(202).insert_header("Job-Status", "canceled"),
            PatchOutcome::Abort {
                status: 202,
                job_status: Some("canceled".into()),
            },
        ),
        (
            ResponseTemplate::new(416).insert_header("Job-Status", "failed"),
            PatchOutcome::Abort {
                status: 416,
                job_status: Some("failed".into()),
            },
        ),
        (ResponseTemplate::new(404), PatchOutcome::NotFound),
        (
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"message": "Missing header Content-Range"})),
            PatchOutcome::Failed {
                status: 400,
                message: "Missing header Content-Range".into(),
            },
        ),
    ];
    for (response, expected) in cases {
        let (server, client) = setup().await;
        assert_eq!(patch(&server, &client, response, 0, b"data").await, expected);
    }
}

#[tokio::test]
async fn patch_trace_never_sends_an_empty_patch() {
    let (server, client) = setup().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(202))
        .expect(0)
        .mount(&server)
        .await;
    let err = client
        .patch_trace(42, &Secret::new(JOB_TOKEN), 10, Vec::new(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, GitlabError::EmptyPatch));
    assert!(received(&server).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Tokens in Debug and tracing output

/// A `tracing` subscriber that writes every span and event field into one string.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Recorder<'a>(&'a mut String);

impl tracing::field::Visit for Recorder<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        attrs.record(&mut Recorder(&mut self.0.lock().unwrap()));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Recorder(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut out = self.0.lock().unwrap();
        out.push_str(event.metadata().target());
        out.push(' ');
        event.record(&mut Recorder(&mut out));
        out.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn tokens_never_appear_in_debug_or_tracing_output() {
    let capture = Capture::default();
    let _guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(capture.clone()));

    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v4/jobs/request"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(job_json(42), "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(403).insert_header("Job-Status", "canceled"))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;

    let runner_token = Secret::new(RUNNER_TOKEN);
    let job_token = Secret::new(JOB_TOKEN);
    let mut debug = String::new();

    let outcome = request(&client, None).await.unwrap();
    debug.push_str(&format!("{outcome:?}"));
    let update = JobUpdate::running(TraceOutput::default()).with_info(VersionInfo::flotilla());
    debug.push_str(&format!(
        "{:?}",
        client.update_job(42, &job_token, &update).await.unwrap()
    ));
    debug.push_str(&format!(
        "{:?}",
        client
            .patch_trace(42, &job_token, 0, b"x".to_vec(), false)
            .await
            .unwrap()
    ));
    debug.push_str(&format!("{client:?} {runner_token:?} {job_token} {update:?}"));
    // Errors too: a token GitLab would never accept in a header.
    let bad = Secret::new(format!("{JOB_TOKEN}\n"));
    let err = client.update_job(42, &bad, &update).await.unwrap_err();
    debug.push_str(&format!("{err:?} {err}"));

    let traced = capture.0.lock().unwrap().clone();
    assert!(traced.contains("flotilla_gitlab"), "the client does log: {traced}");
    for (what, text) in [("Debug", &debug), ("tracing", &traced)] {
        assert!(!text.contains(RUNNER_TOKEN), "runner token in {what} output: {text}");
        assert!(!text.contains(JOB_TOKEN), "job token in {what} output: {text}");
    }
    assert!(debug.contains("[MASKED]"));
}
