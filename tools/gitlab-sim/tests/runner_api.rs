//! The runner API against a real server on loopback, as the official runner uses it.

mod common;

use std::time::{Duration, Instant};

use common::{header, job, sim, sim_with, Runner};
use gitlab_sim::state::trace_checksum;
use gitlab_sim::{JobSpec, JobState};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn var<'a>(payload: &'a Value, key: &str) -> &'a Value {
    payload["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == key)
        .unwrap_or_else(|| panic!("variable {key} missing"))
}

#[tokio::test]
async fn request_hands_out_the_full_payload() {
    let sim = sim().await;
    let mut spec = JobSpec::new("build", ["echo hello", "make"])
        .variable("PLAIN", "1")
        .masked_variable("API_KEY", "s3cr3t-value-123");
    spec.stage = "build".into();
    spec.image = Some("alpine:3.19".into());
    spec.before_script = vec!["echo before".into()];
    spec.after_script = vec!["echo after".into()];
    spec.timeout = 600;
    let id = sim.add_job(spec).unwrap();
    let runner = Runner::new(&sim);

    let response = runner.request(None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(header(&response, "content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        header(&response, "x-request-id"),
        Some("0123456789abcdef0123456789abcdef"),
        "the runner's request id is echoed"
    );
    let p: Value = response.json().await.unwrap();
    let token = p["token"].as_str().unwrap();
    assert!(token.starts_with("glcbt-"));
    assert_eq!(p["id"], id);
    assert_eq!(p["allow_git_fetch"], true);
    assert_eq!(p["job_info"]["name"], "build");
    assert_eq!(p["job_info"]["stage"], "build");
    assert_eq!(p["job_info"]["project_name"], "app");
    let port = sim.addr().port();
    assert_eq!(
        p["git_info"]["repo_url"],
        format!("http://gitlab-ci-token:{token}@127.0.0.1:{port}/demo/app.git")
    );
    assert_eq!(p["git_info"]["sha"], sim.commit_sha());
    assert_eq!(p["git_info"]["ref"], "main");
    assert_eq!(p["git_info"]["ref_type"], "branch");
    assert_eq!(p["git_info"]["depth"], 20);
    assert_eq!(p["runner_info"]["timeout"], 600);
    assert_eq!(p["image"]["name"], "alpine:3.19");
    for empty in ["services", "artifacts", "cache", "credentials", "dependencies"] {
        assert_eq!(p[empty], json!([]), "{empty}");
    }
    assert_eq!(p["features"]["trace_sections"], true);
    let reasons = p["features"]["failure_reasons"].as_array().unwrap();
    assert!(reasons.contains(&json!("script_failure")) && reasons.contains(&json!("runner_interrupted")));

    assert_eq!(
        p["steps"],
        json!([
            {"name": "script", "script": ["echo before", "echo hello", "make"], "timeout": 600,
             "when": "on_success", "allow_failure": false},
            {"name": "after_script", "script": ["echo after"], "timeout": 600, "when": "always",
             "allow_failure": true},
        ])
    );

    assert_eq!(var(&p, "CI_JOB_ID")["value"], id.to_string());
    assert_eq!(var(&p, "CI_JOB_NAME")["value"], "build");
    assert_eq!(var(&p, "CI_JOB_STAGE")["value"], "build");
    assert_eq!(var(&p, "CI_PROJECT_PATH")["value"], "demo/app");
    assert_eq!(var(&p, "CI_PROJECT_NAME")["value"], "app");
    assert_eq!(var(&p, "CI_PROJECT_ID")["value"], "1");
    assert_eq!(var(&p, "CI_PIPELINE_ID")["value"], "100");
    assert_eq!(var(&p, "CI_COMMIT_SHA")["value"], sim.commit_sha());
    assert_eq!(var(&p, "CI_COMMIT_REF_NAME")["value"], "main");
    assert_eq!(var(&p, "CI_SERVER_URL")["value"], sim.url());
    assert_eq!(var(&p, "CI_REPOSITORY_URL")["value"], p["git_info"]["repo_url"]);
    assert_eq!(var(&p, "GITLAB_CI")["value"], "true");
    assert_eq!(var(&p, "CI")["value"], "true");
    let job_token = var(&p, "CI_JOB_TOKEN");
    assert_eq!(job_token["value"], token);
    assert_eq!(
        (job_token["masked"].clone(), job_token["public"].clone()),
        (json!(true), json!(false))
    );
    let key = var(&p, "API_KEY");
    assert_eq!(key["value"], "s3cr3t-value-123");
    assert_eq!(
        (key["masked"].clone(), key["public"].clone()),
        (json!(true), json!(false))
    );
    let plain = var(&p, "PLAIN");
    assert_eq!(
        (plain["masked"].clone(), plain["public"].clone()),
        (json!(false), json!(true))
    );
    assert!(
        p["variables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["key"] != "CI_PROJECT_DIR"),
        "the runner sets CI_PROJECT_DIR"
    );

    let view = sim.job(id).unwrap();
    assert_eq!(view.state, JobState::Running, "legacy flow: running once handed out");
    assert_eq!(view.runner_token.as_deref(), Some("glrt-test-token"));
    assert_eq!(
        runner.request(None).await.status(),
        StatusCode::NO_CONTENT,
        "handed out once"
    );
}

#[tokio::test]
async fn idle_request_gets_204_with_last_update_which_changes_on_enqueue() {
    let sim = sim().await;
    let runner = Runner::new(&sim);
    let first = runner.request(None).await;
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    let version = header(&first, "x-gitlab-last-update").unwrap().to_string();
    assert_eq!(version.len(), 32);

    // No long poll configured: the cheap path echoes the value.
    let again = runner.request(Some(&version)).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&again, "x-gitlab-last-update"), Some(version.as_str()));

    sim.add_job(job("a")).unwrap();
    // An old last_update must not hide the new job.
    assert_eq!(runner.request(Some(&version)).await.status(), StatusCode::CREATED);
    let after = runner.request(Some(&version)).await;
    assert_ne!(header(&after, "x-gitlab-last-update"), Some(version.as_str()));
}

#[tokio::test]
async fn long_poll_is_released_by_a_new_job() {
    let sim = sim_with(Duration::from_secs(60)).await;
    let runner = Runner::new(&sim);
    let version = header(&runner.request(None).await, "x-gitlab-last-update")
        .unwrap()
        .to_string();

    let started = Instant::now();
    let held = tokio::spawn({
        let runner = Runner::new(&sim);
        let version = version.clone();
        async move { runner.request(Some(&version)).await }
    });
    sim.wait_held_polls(1).await;
    let id = sim.add_job(job("a")).unwrap();
    let response = held.await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "gitlab-ci-builds-polling"), Some("yes"));
    assert_eq!(header(&response, "x-gitlab-last-update"), None, "Workhorse sends none");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "released by the job, not the timer"
    );

    // The runner polls again with its old value and gets the job.
    let response = runner.request(Some(&version)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<Value>().await.unwrap()["id"], id);
}

#[tokio::test]
async fn long_poll_ends_with_the_timer() {
    let hold = Duration::from_millis(200);
    let sim = sim_with(hold).await;
    let runner = Runner::new(&sim);
    let version = header(&runner.request(None).await, "x-gitlab-last-update")
        .unwrap()
        .to_string();
    let started = Instant::now();
    let response = runner.request(Some(&version)).await;
    assert!(started.elapsed() >= hold);
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "gitlab-ci-builds-polling"), Some("yes"));
    // Without last_update (first poll) nothing is held.
    let started = Instant::now();
    assert_eq!(runner.request(None).await.status(), StatusCode::NO_CONTENT);
    assert!(started.elapsed() < hold);
}

#[tokio::test]
async fn wrong_runner_token_is_forbidden() {
    let sim = sim().await;
    sim.add_job(job("a")).unwrap();
    let mut runner = Runner::new(&sim);
    runner.token = "glrt-wrong".into();
    let response = runner.request(None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(header(&response, "content-type")
        .unwrap()
        .starts_with("application/json"));
    let missing = runner
        .http
        .post(format!("{}/api/v4/jobs/request", sim.url()))
        .json(&json!({"info": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sim.job(1001).unwrap().state, JobState::Pending);
}

#[tokio::test]
async fn put_states_and_job_status() {
    let sim = sim().await;
    let id = sim.add_job(job("a")).unwrap();
    let runner = Runner::new(&sim);
    let job = runner.take_job().await;

    let response = runner.put(&job, json!({"state": "running", "output": {}})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "job-status"), Some("running"));

    // Without any token: 403, nothing revealed.
    let anonymous = runner
        .http
        .put(format!("{}/api/v4/jobs/{id}", sim.url()))
        .json(&json!({"state": "success"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&anonymous, "job-status"), None);

    runner.patch(&job, Some("0-5"), b"hello\n").await;
    let checksum = trace_checksum(b"hello\n");
    let response = runner
        .put(
            &job,
            json!({"state": "failed", "failure_reason": "script_failure", "exit_code": 2,
                   "checksum": checksum, "output": {"checksum": checksum, "bytesize": 6},
                   "runtime_environment_key": "x", "something_new": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "job-status"), Some("failed"));

    let view = sim.job(id).unwrap();
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(view.failure_reason.as_deref(), Some("script_failure"));
    assert_eq!(view.exit_code, Some(2));
    assert_eq!(view.checksum_matched, Some(true));
    assert_eq!(view.reported_bytesize, Some(6));
    assert_eq!(view.puts, 2);
    assert_eq!(view.updates.last().unwrap().status, 200);

    // Finished: further updates are refused with the state.
    let response = runner.put(&job, json!({"state": "running"})).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&response, "job-status"), Some("failed"));
}

#[tokio::test]
async fn trace_patch_semantics() {
    let sim = sim().await;
    let id = sim.add_job(job("a")).unwrap();
    let runner = Runner::new(&sim);
    let job = runner.take_job().await;

    let response = runner.patch(&job, Some("0-3"), b"abcd").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&response, "range"), Some("0-4"));
    assert_eq!(header(&response, "job-status"), Some("running"));
    assert_eq!(header(&response, "x-gitlab-trace-update-interval"), Some("3"));
    let response = runner.patch(&job, Some("4-4"), b"e").await;
    assert_eq!(header(&response, "range"), Some("0-5"));

    // Wrong start: 416 with the stored length.
    let response = runner.patch(&job, Some("3-5"), b"xyz").await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&response, "range"), Some("0-5"));

    // No Content-Range: 400.
    let response = runner.patch(&job, None, b"f").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // No Content-Type: 400.
    let response = runner
        .http
        .patch(format!("{}/api/v4/jobs/{id}/trace", sim.url()))
        .header("JOB-TOKEN", job["token"].as_str().unwrap())
        .header("Content-Range", "5-5")
        .body("f")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Wrong token: 403 without Job-Status.
    let response = runner
        .http
        .patch(format!("{}/api/v4/jobs/{id}/trace", sim.url()))
        .header("JOB-TOKEN", "glcbt-wrong")
        .header("Content-Type", "text/plain")
        .header("Content-Range", "5-5")
        .body("f")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&response, "job-status"), None);

    assert_eq!(sim.job(id).unwrap().trace, b"abcde");

    runner.put(&job, json!({"state": "success"})).await;
    let response = runner.patch(&job, Some("5-5"), b"f").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&response, "job-status"), Some("success"));
    assert_eq!(sim.job(id).unwrap().trace, b"abcde");
}

#[tokio::test]
async fn final_update_with_a_mismatching_checksum_is_202_then_200() {
    let sim = sim().await;
    let id = sim.add_job(job("a")).unwrap();
    let runner = Runner::new(&sim);
    let job = runner.take_job().await;
    runner.patch(&job, Some("0-4"), b"hello").await;
    // The runner claims more than was stored (a lost chunk).
    let body = json!({"state": "success", "output": {"checksum": trace_checksum(b"hello world"), "bytesize": 11}});
    for _ in 0..2 {
        let response = runner.put(&job, body.clone()).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&response, "x-gitlab-trace-update-interval"), Some("1"));
        assert_eq!(header(&response, "job-status"), Some("running"));
    }
    let response = runner.put(&job, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "job-status"), Some("success"));
    let view = sim.job(id).unwrap();
    assert_eq!(view.state, JobState::Success);
    assert_eq!(view.checksum_matched, Some(false));
    assert_eq!(
        view.updates.iter().map(|u| u.status).collect::<Vec<_>>(),
        [202, 202, 200]
    );
}

#[tokio::test]
async fn graceful_cancel_goes_through_canceling() {
    let sim = sim().await;
    let id = sim.add_job(job("a")).unwrap();
    let runner = Runner::new(&sim);
    let job = runner.take_job().await;
    assert_eq!(sim.cancel(id, true).unwrap(), JobState::Canceling);

    let response = runner.patch(&job, Some("0-4"), b"hello").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "the log is still accepted");
    assert_eq!(header(&response, "job-status"), Some("canceling"));
    let response = runner.put(&job, json!({"state": "running"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "job-status"), Some("canceling"));

    // after_script ran, the runner reports failure: the job ends canceled.
    let response = runner
        .put(&job, json!({"state": "failed", "failure_reason": "unknown_failure"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "job-status"), Some("canceled"));
    assert_eq!(sim.job(id).unwrap().state, JobState::Canceled);
    sim.wait_all_finished().await;
}

#[tokio::test]
async fn hard_cancel_answers_403_canceled() {
    let sim = sim().await;
    let id = sim.add_job(job("a")).unwrap();
    let runner = Runner::new(&sim);
    let job = runner.take_job().await;
    runner.patch(&job, Some("0-4"), b"hello").await;
    assert_eq!(sim.cancel(id, false).unwrap(), JobState::Canceled);

    let response = runner.patch(&job, Some("5-5"), b"!").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&response, "job-status"), Some("canceled"));
    let response = runner.put(&job, json!({"state": "failed"})).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&response, "job-status"), Some("canceled"));
    assert_eq!(sim.job(id).unwrap().trace, b"hello");
    assert!(sim.cancel(id, false).is_err(), "already finished");
}

#[tokio::test]
async fn artifacts_upload_and_dependency_download() {
    let sim = sim().await;
    let mut build = job("build");
    build.artifacts = Some(serde_json::from_value(json!({"paths": ["out/"], "expire_in": "1 week"})).unwrap());
    let build_id = sim.add_job(build).unwrap();
    let mut test = job("test");
    test.dependencies = vec!["build".into()];
    let test_id = sim.add_job(test).unwrap();
    let runner = Runner::new(&sim);

    let build = runner.take_job().await;
    assert_eq!(build["artifacts"][0]["paths"], json!(["out/"]));
    assert_eq!(
        runner.request(None).await.status(),
        StatusCode::NO_CONTENT,
        "test waits for its dependency"
    );

    let multipart = |token: &str| {
        runner
            .http
            .post(format!(
                "{}/api/v4/jobs/{build_id}/artifacts?artifact_format=zip&artifact_type=archive&expire_in=1+week",
                sim.url()
            ))
            .header("JOB-TOKEN", token)
            .header("Content-Type", "multipart/form-data; boundary=BOUNDARY")
            .body(
                "--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"default.zip\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\nPK-zip-bytes\r\n--BOUNDARY--\r\n",
            )
            .send()
    };
    assert_eq!(multipart("glcbt-wrong").await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        multipart(build["token"].as_str().unwrap()).await.unwrap().status(),
        StatusCode::CREATED
    );
    runner.put(&build, json!({"state": "success"})).await;

    let test = runner.take_job().await;
    assert_eq!(test["id"], test_id);
    let dep = &test["dependencies"][0];
    assert_eq!(dep["id"], build_id);
    assert_eq!(dep["token"], test["token"], "modern GitLab: the requesting job's token");
    assert_eq!(dep["artifacts_file"], json!({"filename": "default.zip", "size": 12}));

    let download = |token: String| {
        runner
            .http
            .get(format!(
                "{}/api/v4/jobs/{build_id}/artifacts?direct_download=true",
                sim.url()
            ))
            .header("JOB-TOKEN", token)
            .send()
    };
    let response = download(test["token"].as_str().unwrap().into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), "PK-zip-bytes");
    // The finished build job's own token no longer works.
    let response = download(build["token"].as_str().unwrap().into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn runner_lifecycle_endpoints() {
    let sim = gitlab_sim::GitlabSim::start(gitlab_sim::SimConfig {
        runner_tokens: vec!["glrt-one".into()],
        registration_token: Some("reg-token".into()),
        long_poll: Duration::ZERO,
        ..Default::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/api/v4/{path}", sim.url());

    let verify = http
        .post(url("runners/verify"))
        .json(&json!({"token": "glrt-one", "system_id": "s_0123456789ab", "info": common::runner_info()}))
        .send()
        .await
        .unwrap();
    assert_eq!(verify.status(), StatusCode::OK);
    assert!(header(&verify, "content-type").unwrap().starts_with("application/json"));
    assert_eq!(verify.json::<Value>().await.unwrap()["id"], 1);
    let bad = http
        .post(url("runners/verify"))
        .json(&json!({"token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);

    let registered: Value = http
        .post(url("runners"))
        .json(
            &json!({"token": "reg-token", "description": "r", "run_untagged": true, "locked": false, "paused": false}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_token = registered["token"].as_str().unwrap().to_string();
    assert!(sim.runner_tokens().contains(&new_token));

    let reset = http
        .post(url("runners/reset_authentication_token"))
        .json(&json!({"token": new_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::CREATED);
    let reset_token = reset.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!sim.runner_tokens().contains(&new_token));

    // A manager exists once its system has authenticated; deleting it keeps the runner.
    let verify = http
        .post(url("runners/verify"))
        .json(&json!({"token": reset_token, "system_id": "s_0123456789ab"}))
        .send()
        .await
        .unwrap();
    assert_eq!(verify.status(), StatusCode::OK);
    let managers = http
        .delete(url("runners/managers"))
        .json(&json!({"token": reset_token, "system_id": "s_0123456789ab"}))
        .send()
        .await
        .unwrap();
    assert_eq!(managers.status(), StatusCode::NO_CONTENT);
    assert!(sim.runner_tokens().contains(&reset_token));
    let delete = http
        .delete(url("runners"))
        .json(&json!({"token": reset_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.runner_tokens(), ["glrt-one"]);
}
