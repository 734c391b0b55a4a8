//! Runner registration, verification and unregistration as GitLab answers them: the settings a
//! legacy registration stores, its refusals (400/403/410), and runner managers appearing on
//! authenticated requests and going away with `DELETE /runners/managers` or their runner.

mod common;

use std::time::Duration;

use common::{runner_info, Runner};
use gitlab_sim::{GitlabSim, SimConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn sim(registration_token: Option<&str>) -> GitlabSim {
    GitlabSim::start(SimConfig {
        runner_tokens: vec!["glrt-created".into()],
        registration_token: registration_token.map(str::to_string),
        long_poll: Duration::ZERO,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

async fn call(sim: &GitlabSim, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}/api/v4/{path}", sim.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn register(sim: &GitlabSim, body: Value) -> (StatusCode, Value) {
    call(sim, reqwest::Method::POST, "runners", body).await
}

#[tokio::test]
async fn registration_stores_the_runner_settings() {
    let sim = sim(Some("reg-token")).await;
    let (status, body) = register(
        &sim,
        json!({"token": "reg-token", "description": "k8s", "tag_list": "k8s-default,linux",
               "run_untagged": false, "locked": true, "paused": false, "access_level": "ref_protected",
               "maximum_timeout": 3600, "info": runner_info()}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["token_expires_at"], Value::Null);
    let id = body["id"].as_u64().unwrap();
    let runner = sim.runner(id).unwrap();
    assert_eq!(runner.token, body["token"].as_str().unwrap());
    assert!(runner.token.starts_with("glrtr-"));
    assert_eq!(runner.description, "k8s");
    assert_eq!(runner.tags, ["k8s-default", "linux"]);
    assert!(!runner.run_untagged);
    assert!(runner.locked);
    assert_eq!(runner.access_level, "ref_protected");
    assert_eq!(runner.maximum_timeout, Some(3600));
    assert_eq!(runner.name.as_deref(), Some("gitlab-runner"));
    assert!(runner.managers.is_empty(), "registration creates no manager");
}

#[tokio::test]
async fn registration_refusals() {
    let sim = sim(Some("reg-token")).await;
    let (status, body) = register(&sim, json!({"token": "wrong"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["message"], "403 Forbidden - invalid token supplied");

    let (status, body) = register(&sim, json!({"token": "reg-token", "run_untagged": false})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"]["tags_list"],
        json!(["can not be empty when runner is not allowed to pick untagged jobs"])
    );

    let (status, body) = register(&sim, json!({"token": "reg-token", "maximum_timeout": 60})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"]["maximum_timeout"],
        json!(["needs to be at least 10 minutes"])
    );

    // Parameter errors come before the token check.
    let (status, body) = register(&sim, json!({"token": "wrong", "access_level": "all"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "access_level does not have a valid value");

    assert_eq!(sim.runners().len(), 1, "only the created runner exists");

    let disabled = self::sim(None).await;
    let (status, body) = register(&disabled, json!({"token": "anything"})).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["message"], "410 Gone - runner registration disallowed");
}

#[tokio::test]
async fn managers_are_recorded_and_unregistered_one_by_one() {
    let sim = sim(None).await;
    let verify = |system_id: Option<&str>| {
        let mut body = json!({"token": "glrt-created", "info": runner_info()});
        if let Some(id) = system_id {
            body["system_id"] = json!(id);
        }
        call(&sim, reqwest::Method::POST, "runners/verify", body)
    };
    let (status, body) = verify(Some("s_aaaaaaaaaaaa")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"id": 1, "token": "glrt-created", "token_expires_at": null})
    );
    verify(None).await;
    // A job request records its manager too.
    assert_eq!(Runner::new(&sim).request(None).await.status(), StatusCode::NO_CONTENT);
    let managers: Vec<String> = sim.runner(1).unwrap().managers.into_iter().collect();
    assert_eq!(managers, ["<legacy>", "s_0123456789ab", "s_aaaaaaaaaaaa"]);

    let delete = |body: Value| call(&sim, reqwest::Method::DELETE, "runners/managers", body);
    let (status, body) = delete(json!({"token": "glrt-created"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("system_id is missing"))
    );
    let (status, _) = delete(json!({"token": "glrt-other", "system_id": "s_aaaaaaaaaaaa"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = delete(json!({"token": "glrt-created", "system_id": "s_aaaaaaaaaaaa"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = delete(json!({"token": "glrt-created", "system_id": "s_aaaaaaaaaaaa"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "404 Runner manager not found Not Found");

    let runner = sim.runner(1).expect("deleting a manager keeps the runner");
    assert_eq!(runner.managers.len(), 2);
    assert_eq!(verify(Some("s_aaaaaaaaaaaa")).await.0, StatusCode::OK);

    // Deleting the runner takes every manager with it; its token is dead.
    let (status, _) = call(
        &sim,
        reqwest::Method::DELETE,
        "runners",
        json!({"token": "glrt-created"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(sim.runners().is_empty());
    assert_eq!(verify(None).await.0, StatusCode::FORBIDDEN);
}
