//! The coordinator's Prometheus metrics, served at `/metrics` on the `listen_address` of
//! `config.toml` (the official runner's key for its metrics endpoint): jobs by state, what each
//! worker offers and runs, where jobs were placed (production or overflow pools), how jobs
//! ended, and the overflow switch. Labels never carry job names, tokens or variables.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use flotilla_proto::StatusReply;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::core::CoreMessage;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Placement {
    cluster: String,
    pool: String,
    overflow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Ending {
    result: String,
    failure_reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobState {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Worker {
    worker: String,
    cluster: String,
    pool: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Mode {
    mode: String,
}

pub struct Metrics {
    registry: Registry,
    assigned: Family<Placement, Counter>,
    ended: Family<Ending, Counter>,
    jobs: Family<JobState, Gauge>,
    capacity: Family<Worker, Gauge>,
    used: Family<Worker, Gauge>,
    overflow_mode: Family<Mode, Gauge>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("flotilla");
        let metrics = Metrics {
            assigned: Family::default(),
            ended: Family::default(),
            jobs: Family::default(),
            capacity: Family::default(),
            used: Family::default(),
            overflow_mode: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "jobs_assigned",
            "Jobs handed to a worker, by cluster and pool",
            metrics.assigned.clone(),
        );
        registry.register(
            "jobs_ended",
            "Jobs whose final state GitLab accepted",
            metrics.ended.clone(),
        );
        registry.register("jobs", "Jobs the coordinator holds, by state", metrics.jobs.clone());
        registry.register(
            "worker_capacity",
            "Jobs a connected worker may run at once",
            metrics.capacity.clone(),
        );
        registry.register("worker_used", "Jobs a connected worker runs", metrics.used.clone());
        registry.register(
            "overflow_mode",
            "The overflow switch (1 for the current mode)",
            metrics.overflow_mode.clone(),
        );
        Arc::new(Metrics { registry, ..metrics })
    }

    pub fn job_assigned(&self, cluster: &str, pool: &str, overflow: bool) {
        self.assigned
            .get_or_create(&Placement {
                cluster: cluster.into(),
                pool: pool.into(),
                overflow: overflow.to_string(),
            })
            .inc();
    }

    pub fn job_ended(&self, result: &str, failure_reason: Option<&str>) {
        self.ended
            .get_or_create(&Ending {
                result: result.into(),
                failure_reason: failure_reason.unwrap_or_default().into(),
            })
            .inc();
    }

    /// The text exposition, with the gauges taken from `status`.
    pub fn render(&self, status: &StatusReply) -> String {
        self.jobs.clear();
        for state in ["accepted", "assigned", "running", "finishing", "done"] {
            let count = status.jobs.iter().filter(|j| j.state == state).count();
            self.jobs
                .get_or_create(&JobState { state: state.into() })
                .set(count as i64);
        }
        self.capacity.clear();
        self.used.clear();
        for w in &status.workers {
            let labels = Worker {
                worker: w.worker_id.clone(),
                cluster: w.cluster.clone(),
                pool: w.pool.clone(),
                state: w.state.clone(),
            };
            self.capacity.get_or_create(&labels).set(i64::from(w.capacity));
            self.used.get_or_create(&labels).set(i64::from(w.used));
        }
        self.overflow_mode.clear();
        for mode in ["auto", "on", "off"] {
            let current = i64::from(status.overflow_mode == mode);
            self.overflow_mode
                .get_or_create(&Mode { mode: mode.into() })
                .set(current);
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Serves `/metrics` until `shutdown`; returns the address it listens on.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    core: mpsc::UnboundedSender<CoreMessage>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/metrics", get(scrape))
        .with_state((metrics, core));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Ok(local)
}

async fn scrape(
    State((metrics, core)): State<(Arc<Metrics>, mpsc::UnboundedSender<CoreMessage>)>,
) -> Result<([(axum::http::header::HeaderName, &'static str); 1], String), axum::http::StatusCode> {
    let (reply, answer) = oneshot::channel();
    core.send(CoreMessage::Status { reply })
        .map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE)?;
    let status = answer.await.map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(&status),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_proto::{JobStatus, WorkerStatus};

    #[test]
    fn renders_jobs_workers_placements_and_the_switch() {
        let metrics = Metrics::new();
        metrics.job_assigned("qa-a", "qa", true);
        metrics.job_ended("failed", Some("script_failure"));
        let status = StatusReply {
            workers: vec![WorkerStatus {
                worker_id: "w".into(),
                cluster: "qa-a".into(),
                pool: "qa".into(),
                capacity: 3,
                used: 1,
                state: "ready".into(),
                ..Default::default()
            }],
            jobs: vec![JobStatus {
                state: "running".into(),
                ..Default::default()
            }],
            overflow_mode: "on".into(),
        };
        let text = metrics.render(&status);
        for line in [
            "flotilla_jobs_assigned_total{cluster=\"qa-a\",pool=\"qa\",overflow=\"true\"} 1",
            "flotilla_jobs_ended_total{result=\"failed\",failure_reason=\"script_failure\"} 1",
            "flotilla_jobs{state=\"running\"} 1",
            "flotilla_jobs{state=\"done\"} 0",
            "flotilla_worker_capacity{worker=\"w\",cluster=\"qa-a\",pool=\"qa\",state=\"ready\"} 3",
            "flotilla_worker_used{worker=\"w\",cluster=\"qa-a\",pool=\"qa\",state=\"ready\"} 1",
            "flotilla_overflow_mode{mode=\"on\"} 1",
            "flotilla_overflow_mode{mode=\"off\"} 0",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    }
}
