//! The library's error type: everything that can go wrong while loading a pipeline, building the
//! served repository, starting the server or driving jobs from a test.

use std::path::PathBuf;

use crate::state::JobState;

/// Errors of the gitlab-sim library.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("reading pipeline file {path}: {source}")]
    ReadPipeline {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pipeline file {path}: {message}")]
    ParsePipeline { path: PathBuf, message: String },
    #[error("invalid pipeline: {0}")]
    InvalidPipeline(String),
    #[error("invalid job {name:?}: {reason}")]
    InvalidJob { name: String, reason: String },
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no job with id {0}")]
    NoSuchJob(u64),
    #[error("job {id} has already finished ({state})")]
    AlreadyFinished { id: u64, state: JobState },
}

impl SimError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SimError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result with [`SimError`].
pub type Result<T> = std::result::Result<T, SimError>;
