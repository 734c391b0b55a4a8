//! What every Flotilla process (coordinator, worker, log-shipper) does around its real work:
//! set up logging, load its configuration file (refusing to start on any error, each naming
//! its key; warning about what it ignores), and turn SIGTERM/SIGINT into a cancellation
//! token its services stop on.

use std::path::{Path, PathBuf};

use flotilla_config::{ConfigErrors, Loaded};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// A configuration file the process refuses to start with: every error, then the file's
/// warnings, since an unknown key is often the typo behind an error (`mount_paht` → "mount_path:
/// is required").
#[derive(Debug, thiserror::Error)]
pub struct ConfigRefused {
    pub path: PathBuf,
    pub errors: ConfigErrors,
}

impl std::fmt::Display for ConfigRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.errors.errors.len();
        let plural = if count == 1 { "" } else { "s" };
        write!(
            f,
            "{}: refused ({count} error{plural}):\n{}",
            self.path.display(),
            self.errors
        )?;
        let warnings = &self.errors.warnings;
        if !warnings.is_empty() {
            let plural = if warnings.len() == 1 { "" } else { "s" };
            write!(f, "\nand {} warning{plural}:", warnings.len())?;
            for warning in warnings {
                write!(f, "\n{warning}")?;
            }
        }
        Ok(())
    }
}

/// Logs to stderr; `RUST_LOG` chooses what (default: `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Loads a configuration file with `load` (one of `flotilla_config::load_*`), logging each
/// warning (unknown keys with their hints, deprecations) with the file's name.
pub fn load_config<T>(path: &Path, load: fn(&Path) -> Result<Loaded<T>, ConfigErrors>) -> Result<T, ConfigRefused> {
    let loaded = load(path).map_err(|errors| ConfigRefused {
        path: path.to_path_buf(),
        errors,
    })?;
    for warning in &loaded.warnings {
        tracing::warn!(file = %path.display(), "{warning}");
    }
    Ok(loaded.config)
}

/// A token cancelled on the first SIGTERM or SIGINT (Kubernetes stops Pods with SIGTERM).
pub fn stop_on_signal() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "stopping");
        cancel.cancel();
    });
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_file_names_itself_and_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        std::fs::write(&path, "[worker]\ncapacity = 0\n").unwrap();
        let refused = load_config(&path, |p| flotilla_config::load_worker_config(p)).unwrap_err();
        let text = refused.to_string();
        assert!(text.starts_with(&format!("{}: refused (", path.display())), "{text}");
        assert!(text.contains("worker.capacity: must be at least 1"), "{text}");
        assert!(text.contains("worker.id: is required"), "{text}");
    }

    #[test]
    fn a_refused_file_lists_its_unknown_keys_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[[runners]]\nname = \"a\"\nurl = \"https://gitlab.example.com\"\ntoken = \"glrt-x\"\nexecutor = \"kubernetes\"\n\
             [[runners.kubernetes.volumes.empty_dir]]\nname = \"cache\"\nmount_paht = \"/cache\"\n",
        )
        .unwrap();
        let refused = load_config(&path, |p| flotilla_config::load_runner_config(p)).unwrap_err();
        let text = refused.to_string();
        assert!(
            text.contains("runners[0].kubernetes.volumes.empty_dir[0].mount_path: is required"),
            "{text}"
        );
        let warnings = text
            .split_once("\nand 1 warning:\n")
            .map(|(_, w)| w)
            .unwrap_or_default();
        assert!(
            warnings.contains("runners[0].kubernetes.volumes.empty_dir[0].mount_paht: unknown key"),
            "{text}"
        );
    }

    #[test]
    fn a_good_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shipper.toml");
        std::fs::write(
            &path,
            "[log_shipper]\ncoordinator_url = \"http://127.0.0.1:7600\"\nunknown = 1\n",
        )
        .unwrap();
        let config = load_config(&path, |p| flotilla_config::load_shipper_config(p)).unwrap();
        assert_eq!(config.log_shipper.coordinator_url, "http://127.0.0.1:7600");
    }
}
