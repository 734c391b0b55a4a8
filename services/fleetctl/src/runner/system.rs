//! Which runner manager a `fleetctl runner` command speaks for.
//!
//! GitLab keeps one runner manager per `system_id` that used a runner's token. The fleet's
//! manager is the coordinator's: its id lives in `<data_dir>/.runner_system_id`, written by the
//! coordinator on its first start (`flotilla_gitlab::system_id`). fleetctl usually runs somewhere
//! else, so it never invents an id of its own host: it takes `--system-id`, or reads the
//! coordinator's file through `--data-dir`, and never writes that file (a file created by another
//! user could stop the coordinator from reading it).

use std::path::{Path, PathBuf};

use clap::Args;
use flotilla_gitlab::SystemId;

/// The coordinator's state file holding its system id.
pub const FILE_NAME: &str = ".runner_system_id";

/// `--system-id` / `--data-dir`.
#[derive(Args, Debug, Default)]
pub struct SystemIdArgs {
    /// The runner manager's system ID as the coordinator sends it (`s_` or `r_` and 12 letters or
    /// digits).
    #[arg(long, value_name = "ID", conflicts_with = "data_dir")]
    pub system_id: Option<String>,
    /// The coordinator's `[coordinator] data_dir`: its `.runner_system_id` file holds the system ID.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Why no system id could be had.
#[derive(Debug, thiserror::Error)]
pub enum SystemIdError {
    /// `--system-id` is malformed.
    #[error("--system-id: {0}")]
    Invalid(#[from] flotilla_gitlab::system_id::InvalidSystemId),
    /// The coordinator has not written its file (yet) in this directory.
    #[error("{} does not exist: has the coordinator run with this data_dir? Pass --system-id instead", .0.display())]
    Missing(PathBuf),
    /// The file is there but unusable.
    #[error("reading {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl SystemIdArgs {
    /// Whether either flag was given.
    pub fn given(&self) -> bool {
        self.system_id.is_some() || self.data_dir.is_some()
    }

    /// The system id the flags name, if they name one.
    pub fn resolve(&self) -> Result<Option<SystemId>, SystemIdError> {
        if let Some(id) = &self.system_id {
            return Ok(Some(SystemId::parse(id)?));
        }
        self.data_dir.as_deref().map(read).transpose()
    }
}

/// Reads the coordinator's `.runner_system_id` in `data_dir`.
fn read(data_dir: &Path) -> Result<SystemId, SystemIdError> {
    let path = data_dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SystemIdError::Missing(path)),
        Err(e) => {
            return Err(SystemIdError::Unreadable {
                path,
                reason: e.to_string(),
            })
        }
    };
    SystemId::parse(&text).map_err(|e| SystemIdError::Unreadable {
        path,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(system_id: Option<&str>, data_dir: Option<&Path>) -> SystemIdArgs {
        SystemIdArgs {
            system_id: system_id.map(str::to_owned),
            data_dir: data_dir.map(Path::to_path_buf),
        }
    }

    #[test]
    fn from_the_flag() {
        let id = args(Some("s_0123456789ab"), None).resolve().unwrap().unwrap();
        assert_eq!(id.as_str(), "s_0123456789ab");
        assert!(matches!(
            args(Some("laptop"), None).resolve(),
            Err(SystemIdError::Invalid(_))
        ));
        assert_eq!(args(None, None).resolve().unwrap(), None);
        assert!(!args(None, None).given());
    }

    #[test]
    fn from_the_coordinator_data_dir_without_writing_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = args(None, Some(dir.path())).resolve().unwrap_err();
        assert!(matches!(err, SystemIdError::Missing(_)), "{err}");
        assert!(!dir.path().join(FILE_NAME).exists(), "fleetctl never creates the file");

        std::fs::write(dir.path().join(FILE_NAME), "r_AbCdEf012345\n").unwrap();
        let id = args(None, Some(dir.path())).resolve().unwrap().unwrap();
        assert_eq!(id.as_str(), "r_AbCdEf012345");

        std::fs::write(dir.path().join(FILE_NAME), "garbage").unwrap();
        assert!(matches!(
            args(None, Some(dir.path())).resolve(),
            Err(SystemIdError::Unreadable { .. })
        ));
    }
}
