//! Shared helpers: start a simulator and talk to it like the official runner does.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use gitlab_sim::{GitlabSim, JobSpec, Pipeline, SimConfig};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

/// A simulator with no jobs, a known runner token and the given long-poll duration.
pub async fn sim_with(long_poll: Duration) -> GitlabSim {
    GitlabSim::start(SimConfig {
        runner_tokens: vec!["glrt-test-token".into()],
        long_poll,
        pipeline: Pipeline::default(),
        ..SimConfig::default()
    })
    .await
    .expect("start gitlab-sim")
}

pub async fn sim() -> GitlabSim {
    sim_with(Duration::ZERO).await
}

/// The `info` object the official runner sends (every feature key present).
pub fn runner_info() -> Value {
    let features: serde_json::Map<String, Value> = [
        "variables",
        "image",
        "services",
        "artifacts",
        "cache",
        "fallback_cache_keys",
        "shared",
        "upload_multiple_artifacts",
        "upload_raw_artifacts",
        "session",
        "terminal",
        "refspecs",
        "masking",
        "proxy",
        "raw_variables",
        "artifacts_exclude",
        "multi_build_steps",
        "trace_reset",
        "trace_checksum",
        "trace_size",
        "vault_secrets",
        "cancelable",
        "return_exit_code",
        "service_variables",
        "service_multiple_aliases",
        "image_executor_opts",
        "service_executor_opts",
        "cancel_gracefully",
        "native_steps_integration",
        "two_phase_job_commit",
        "job_inputs",
    ]
    .iter()
    .map(|k| (k.to_string(), json!(true)))
    .collect();
    json!({
        "name": "gitlab-runner", "version": "18.3.0", "revision": "abcdef12", "platform": "linux",
        "architecture": "amd64", "executor": "kubernetes", "shell": "bash", "features": features,
        "config": {"gpus": ""}, "labels": {"team": "ci"}
    })
}

/// A runner-API client.
pub struct Runner {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Runner {
    pub fn new(sim: &GitlabSim) -> Runner {
        Runner {
            http: reqwest::Client::new(),
            base: sim.url().to_string(),
            token: sim.runner_tokens()[0].clone(),
        }
    }

    /// `POST /jobs/request` as the official runner sends it.
    pub async fn request(&self, last_update: Option<&str>) -> Response {
        let mut body = json!({"token": self.token, "system_id": "s_0123456789ab", "info": runner_info()});
        if let Some(last) = last_update {
            body["last_update"] = json!(last);
        }
        self.http
            .post(format!("{}/api/v4/jobs/request", self.base))
            .header("RUNNER-TOKEN", &self.token)
            .header("X-Request-Id", "0123456789abcdef0123456789abcdef")
            .header("Accept", "application/json")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Requests and expects a job.
    pub async fn take_job(&self) -> Value {
        let response = self.request(None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn put(&self, job: &Value, body: Value) -> Response {
        let mut body = body;
        body["token"] = job["token"].clone();
        body["info"] = runner_info();
        self.http
            .put(format!("{}/api/v4/jobs/{}", self.base, job["id"]))
            .header("JOB-TOKEN", job["token"].as_str().unwrap())
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, job: &Value, range: Option<&str>, body: &'static [u8]) -> Response {
        let mut request = self
            .http
            .patch(format!(
                "{}/api/v4/jobs/{}/trace?debug_trace=false",
                self.base, job["id"]
            ))
            .header("JOB-TOKEN", job["token"].as_str().unwrap())
            .header("Content-Type", "text/plain")
            .body(body);
        if let Some(range) = range {
            request = request.header("Content-Range", range);
        }
        request.send().await.unwrap()
    }
}

pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A plain job.
pub fn job(name: &str) -> JobSpec {
    JobSpec::new(name, ["echo hello"])
}
