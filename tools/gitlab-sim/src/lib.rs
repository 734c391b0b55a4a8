//! gitlab-sim: a GitLab stand-in serving the runner API (`/api/v4`), the project's git repository
//! and a control API (`/sim`), for Flotilla's demo and end-to-end tests.
//!
//! It is written from the protocol reference (`shared/reference/gitlab-runner-api.md`), not from
//! Flotilla's own GitLab client, so a test passing against it says something about compatibility
//! with real GitLab. Start one with [`GitlabSim::start`] (library) or the `gitlab-sim` binary.
//!
//! ```no_run
//! # async fn demo() -> gitlab_sim::Result<()> {
//! use gitlab_sim::{GitlabSim, JobSpec, SimConfig};
//! let sim = GitlabSim::start(SimConfig::default()).await?;
//! let id = sim.add_job(JobSpec::new("build", ["echo hello"]))?;
//! // ... point a runner at sim.url() with sim.runner_tokens()[0] ...
//! sim.wait_all_finished().await;
//! println!("{}", sim.summary());
//! # let _ = id; Ok(()) }
//! ```

pub mod api;
pub mod control;
pub mod error;
pub mod git;
pub mod payload;
pub mod pipeline;
pub mod runners;
pub mod state;
pub mod summary;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use crate::error::{Result, SimError};
pub use crate::pipeline::{Expect, JobSpec, Pipeline, Variable};
pub use crate::runners::Runner;
pub use crate::state::{JobState, JobView, UpdateRecord};
pub use crate::summary::Summary;

use crate::api::{App, Settings};
use crate::git::Repository;
use crate::payload::Project;
use crate::runners::{new_runner_token, Runners};
use crate::state::Store;

/// Project id of the simulated project.
pub const PROJECT_ID: u64 = 1;
/// Pipeline all jobs belong to.
pub const PIPELINE_ID: u64 = 100;
/// First job id (distinct from project and pipeline ids so mix-ups show).
pub const FIRST_JOB_ID: u64 = 1001;

/// How to start a gitlab-sim.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    /// Project, repository and initial jobs.
    pub pipeline: Pipeline,
    /// Runner authentication tokens accepted on `jobs/request`; one `glrt-…` is generated if empty.
    pub runner_tokens: Vec<String>,
    /// Registration token for legacy `POST /api/v4/runners` (disabled if None).
    pub registration_token: Option<String>,
    /// How long a job request with a current `last_update` is held (0: answered at once).
    pub long_poll: Duration,
    /// Where the repository lives; a temporary directory (removed on drop) if None.
    pub data_dir: Option<PathBuf>,
    /// `X-GitLab-Trace-Update-Interval` answered on trace PATCHes (seconds).
    pub trace_update_interval: u32,
    /// How many times a final update whose checksum does not match the trace is answered 202
    /// before it is accepted anyway.
    pub checksum_retries: u32,
    /// Largest accepted artifact (bytes).
    pub max_artifact_size: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pipeline: Pipeline::default(),
            runner_tokens: Vec::new(),
            registration_token: None,
            long_poll: Duration::from_secs(5),
            data_dir: None,
            trace_update_interval: 3,
            checksum_retries: 2,
            max_artifact_size: 100 << 20,
        }
    }
}

/// A running simulated GitLab. Dropping it stops the server.
pub struct GitlabSim {
    app: Arc<App>,
    addr: SocketAddr,
    url: String,
    shutdown: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
    _temp_dir: Option<tempfile::TempDir>,
}

impl GitlabSim {
    /// Builds the repository, binds the listener, queues the pipeline's jobs and serves.
    pub async fn start(config: SimConfig) -> Result<GitlabSim> {
        config.pipeline.validate()?;
        let (temp_dir, data_dir) = match &config.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| SimError::io(format!("creating {}", dir.display()), e))?;
                (None, dir.clone())
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("gitlab-sim-")
                    .tempdir()
                    .map_err(|e| SimError::io("creating a temporary data dir", e))?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let repository = Repository::create(
            &data_dir,
            &config.pipeline.project,
            config.pipeline.repository.as_deref(),
            PIPELINE_ID,
        )
        .await?;

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| SimError::io(format!("binding {}", config.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimError::io("reading the bound address", e))?;
        let url = format!("http://{addr}");

        let tokens = if config.runner_tokens.is_empty() {
            vec![new_runner_token()]
        } else {
            config.runner_tokens.clone()
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let app = Arc::new(App {
            store: Arc::new(Store::new(FIRST_JOB_ID)),
            runners: Runners::new(&tokens, config.registration_token.clone()),
            project: Project {
                id: PROJECT_ID,
                path: config.pipeline.project.clone(),
                pipeline_id: PIPELINE_ID,
                server_url: url.clone(),
                repository,
            },
            settings: Settings {
                long_poll: config.long_poll,
                trace_update_interval: config.trace_update_interval,
                checksum_retries: config.checksum_retries,
                max_artifact_size: config.max_artifact_size,
            },
            shutdown: shutdown_rx.clone(),
        });
        for job in &config.pipeline.jobs {
            app.store.enqueue(job.clone())?;
        }

        let router = api::router(app.clone());
        let mut stop = shutdown_rx;
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(err) = result {
                tracing::error!(error = %err, "gitlab-sim server failed");
            }
        });
        tracing::info!(%url, project = %app.project.path, sha = %app.project.repository.sha, "gitlab-sim serving");
        Ok(GitlabSim {
            app,
            addr,
            url,
            shutdown,
            server: Some(server),
            _temp_dir: temp_dir,
        })
    }

    /// Base URL, `http://127.0.0.1:PORT` (no trailing slash): the runner's `url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runner authentication tokens currently accepted.
    pub fn runner_tokens(&self) -> Vec<String> {
        self.app.runners.tokens()
    }

    /// Every runner GitLab knows, with its settings and runner managers, in registration order.
    pub fn runners(&self) -> Vec<Runner> {
        self.app.runners.all()
    }

    /// The runner with GitLab id `id`, if it exists.
    pub fn runner(&self, id: u64) -> Option<Runner> {
        self.app.runners.all().into_iter().find(|r| r.id == id)
    }

    /// Project path, e.g. `demo/app`.
    pub fn project(&self) -> &str {
        &self.app.project.path
    }

    /// The served repository's HEAD commit.
    pub fn commit_sha(&self) -> &str {
        &self.app.project.repository.sha
    }

    /// Clone URL with a job token in it, as put in job payloads.
    pub fn repo_url(&self, job_token: &str) -> String {
        self.app.project.repo_url(job_token)
    }

    /// Queues a job (pending at once); returns its id.
    pub fn add_job(&self, spec: JobSpec) -> Result<u64> {
        self.app.store.enqueue(spec)
    }

    pub fn job(&self, id: u64) -> Option<JobView> {
        self.app.store.view(id)
    }

    pub fn jobs(&self) -> Vec<JobView> {
        self.app.store.views()
    }

    /// Cancels a job: graceful → `canceling` (a running job), hard → `canceled`. Returns the new state.
    pub fn cancel(&self, id: u64, graceful: bool) -> Result<JobState> {
        self.app.store.cancel(id, graceful)
    }

    /// Resolves once every job has finished (at once if there are none).
    pub async fn wait_all_finished(&self) {
        self.app.store.wait_all_finished().await
    }

    /// Resolves once some job is unfinished again (after jobs were added).
    pub async fn wait_some_unfinished(&self) {
        self.app.store.wait_some_unfinished().await
    }

    /// Resolves once at least `n` job requests are being held by long polling.
    pub async fn wait_held_polls(&self, n: usize) {
        self.app.store.wait_held_polls(n).await
    }

    /// Structured summary of every job.
    pub fn summary_data(&self) -> Summary {
        Summary::from_views(&self.jobs())
    }

    /// The summary table with trace tails.
    pub fn summary(&self) -> String {
        self.summary_data().render()
    }

    /// Stops serving: held long polls end at once, in-flight requests complete.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for GitlabSim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
