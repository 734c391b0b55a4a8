//! The `/sim` control API.

mod common;

use common::{sim, Runner};
use gitlab_sim::JobState;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn add_show_list_cancel_and_summarise_jobs() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/sim/{path}", sim.url());

    let info: Value = http.get(url("info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["project"], "demo/app");
    assert_eq!(info["sha"], sim.commit_sha());
    assert_eq!(info["runner_tokens"], json!(["glrt-test-token"]));

    let added = http
        .post(url("jobs"))
        .json(&json!({
            "name": "deploy", "stage": "deploy", "script": "./deploy.sh",
            "variables": {"TOKEN": {"value": "very-secret-token", "masked": true}},
            "expect": "canceled"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    assert!(added.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let id = added.json::<Value>().await.unwrap()["id"].as_u64().unwrap();

    let bad = http.post(url("jobs")).json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "script is required");

    let runner = Runner::new(&sim);
    let job = runner.take_job().await;
    assert_eq!(job["id"], id);
    runner.patch(&job, Some("0-6"), b"line 1\n").await;
    runner.put(&job, json!({"state": "running"})).await;

    let shown: Value = http
        .get(url(&format!("jobs/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["state"], "running");
    assert_eq!(shown["trace"], "line 1\n");
    assert_eq!(shown["trace_bytes"], 7);
    assert_eq!(shown["patches"], 1);
    assert_eq!(shown["puts"], 1);
    let raw = http.get(url(&format!("jobs/{id}/trace"))).send().await.unwrap();
    assert_eq!(raw.bytes().await.unwrap(), "line 1\n");

    let canceled: Value = http
        .post(url(&format!("jobs/{id}/cancel")))
        .json(&json!({"graceful": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(canceled["state"], "canceling");
    let canceled: Value = http
        .post(url(&format!("jobs/{id}/cancel")))
        .json(&json!({"graceful": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(canceled["state"], "canceled");
    assert_eq!(sim.job(id).unwrap().state, JobState::Canceled);
    let again = http.post(url(&format!("jobs/{id}/cancel"))).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let missing = http.get(url("jobs/9999")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let list: Value = http.get(url("jobs")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let summary: Value = http.get(url("summary")).send().await.unwrap().json().await.unwrap();
    assert_eq!(summary["all_finished"], true);
    assert_eq!(summary["all_as_expected"], true);
    assert_eq!(summary["jobs"][0]["trace_tail"], json!(["line 1"]));
    assert!(sim.summary().contains("deploy"));
}
