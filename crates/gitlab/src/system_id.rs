//! The runner manager's `system_id` (reference §1.2) and its `.runner_system_id` file.
//!
//! Several runner processes may share one runner token; GitLab tells them apart by `system_id`
//! and keeps one "runner manager" record per id. The id must therefore be stable across restarts
//! of the same host and different between hosts, which is why it is derived from the machine id
//! and persisted. Format, exactly as the official runner's: `s_` + the first 12 lowercase hex
//! digits of HMAC-SHA256(key = machine id, message = `gitlab-runner`), or `r_` + 12 random
//! alphanumerics when there is no machine id — always 14 characters.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

/// Where the machine id is looked for, in order (systemd, then the older D-Bus location).
pub const MACHINE_ID_PATHS: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/// Length of every valid system id.
pub const SYSTEM_ID_LEN: usize = 14;

const RANDOM_CHARSET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A validated `system_id`: `^[sr]_[0-9a-zA-Z]{12}$`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SystemId(String);

/// Failures of [`SystemId::load_or_create`].
#[derive(Debug, thiserror::Error)]
pub enum SystemIdError {
    /// The state file exists but could not be read.
    #[error("reading the runner system ID file {path}: {source}")]
    Read {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A string that is not a valid system id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid system id {0:?}: expected s_ or r_ followed by 12 letters or digits")]
pub struct InvalidSystemId(pub String);

impl SystemId {
    /// Validates a system id (surrounding whitespace is ignored, as in the state file).
    pub fn parse(value: &str) -> Result<Self, InvalidSystemId> {
        let value = value.trim();
        let valid = value.len() == SYSTEM_ID_LEN
            && (value.starts_with("s_") || value.starts_with("r_"))
            && value.bytes().skip(2).all(|b| b.is_ascii_alphanumeric());
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidSystemId(value.to_owned()))
        }
    }

    /// The `s_` id derived from a machine id; `None` when the machine id is empty.
    pub fn from_machine_id(machine_id: &str) -> Option<Self> {
        let machine_id = machine_id.trim();
        if machine_id.is_empty() {
            return None;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(machine_id.as_bytes()).expect("HMAC accepts keys of any length");
        mac.update(b"gitlab-runner");
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Some(Self(format!("s_{hex}")))
    }

    /// A random `r_` id (the fallback when the host has no machine id).
    pub fn random() -> Self {
        let mut rng = rand::thread_rng();
        let tail: String = (0..12)
            .map(|_| RANDOM_CHARSET[rng.gen_range(0..RANDOM_CHARSET.len())] as char)
            .collect();
        Self(format!("r_{tail}"))
    }

    /// A fresh id for this host: from the first readable machine id file, else random.
    pub fn generate() -> Self {
        Self::generate_from(MACHINE_ID_PATHS.iter().map(Path::new))
    }

    /// Like [`SystemId::generate`], reading the machine id from the given files (first usable wins).
    pub fn generate_from<'a>(machine_id_paths: impl IntoIterator<Item = &'a Path>) -> Self {
        machine_id_paths
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .find_map(|contents| Self::from_machine_id(&contents))
            .unwrap_or_else(Self::random)
    }

    /// Loads the id from the state file (normally `.runner_system_id` next to `config.toml`), or
    /// generates one for this host and writes it there. Invalid file contents are replaced.
    ///
    /// As with the official runner, a file that cannot be written is not fatal: the id is still
    /// returned (and logged) so the runner keeps working, just with an id that may change on the
    /// next start.
    pub fn load_or_create(path: &Path) -> Result<Self, SystemIdError> {
        Self::load_or_create_with(path, Self::generate)
    }

    /// [`SystemId::load_or_create`] with a custom generator (tests, or a fixed machine id).
    pub fn load_or_create_with(path: &Path, generate: impl FnOnce() -> Self) -> Result<Self, SystemIdError> {
        match std::fs::read_to_string(path) {
            Ok(contents) => match Self::parse(&contents) {
                Ok(id) => return Ok(id),
                Err(_) => tracing::warn!(path = %path.display(), "invalid runner system ID file, regenerating"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SystemIdError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        }
        let id = generate();
        tracing::info!(system_id = %id, "created missing unique system ID");
        if let Err(e) = write_atomically(path, id.as_str()) {
            tracing::warn!(
                path = %path.display(),
                system_id = %id,
                error = %e,
                "could not save the runner system ID; it may change on the next start"
            );
        }
        Ok(id)
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SystemId {
    type Err = InvalidSystemId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Writes through a temporary file and a rename so a crash never leaves a half-written id.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_from_machine_id() {
        let id = SystemId::from_machine_id("0123456789abcdef0123456789abcdef\n").unwrap();
        assert_eq!(id.as_str().len(), SYSTEM_ID_LEN);
        assert!(id.as_str().starts_with("s_"));
        assert!(id.as_str()[2..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // Deterministic, and whitespace around the machine id does not matter.
        assert_eq!(
            SystemId::from_machine_id("0123456789abcdef0123456789abcdef"),
            Some(id.clone())
        );
        assert_ne!(SystemId::from_machine_id("another-machine"), Some(id));
        assert_eq!(SystemId::from_machine_id(" \n"), None);
    }

    #[test]
    fn hmac_known_answer() {
        // The well-known example HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
        // = f7bc83f4…: checks that key and message are wired the right way round.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(hex.starts_with("f7bc83f430538424"), "{hex}");
    }

    #[test]
    fn random_format() {
        let a = SystemId::random();
        let b = SystemId::random();
        for id in [&a, &b] {
            assert_eq!(id.as_str().len(), SYSTEM_ID_LEN);
            assert!(id.as_str().starts_with("r_"));
            assert!(SystemId::parse(id.as_str()).is_ok());
        }
        assert_ne!(a, b);
    }

    #[test]
    fn parse_validates() {
        assert!(SystemId::parse("s_0123456789ab").is_ok());
        assert!(SystemId::parse("r_AbCdEf012345\n").is_ok());
        for bad in [
            "",
            "s_0123456789a",
            "s_0123456789abc",
            "x_0123456789ab",
            "s-0123456789ab",
            "s_01234567-9ab",
        ] {
            assert!(SystemId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generate_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let real = dir.path().join("machine-id");
        std::fs::write(&real, "feedfacefeedfacefeedfacefeedface\n").unwrap();
        let missing = dir.path().join("missing");

        let id = SystemId::generate_from([missing.as_path(), empty.as_path(), real.as_path()]);
        assert_eq!(Some(id), SystemId::from_machine_id("feedfacefeedfacefeedfacefeedface"));

        let fallback = SystemId::generate_from([missing.as_path(), empty.as_path()]);
        assert!(fallback.as_str().starts_with("r_"));
    }

    #[test]
    fn creates_then_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(".runner_system_id");
        let created = SystemId::load_or_create_with(&path, || SystemId::parse("s_aaaaaaaaaaaa").unwrap()).unwrap();
        assert_eq!(created.as_str(), "s_aaaaaaaaaaaa");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "s_aaaaaaaaaaaa");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // The persisted id wins over whatever the generator would produce now.
        let reloaded = SystemId::load_or_create_with(&path, || panic!("must not regenerate")).unwrap();
        assert_eq!(reloaded, created);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn accepts_trailing_newline_in_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner_system_id");
        std::fs::write(&path, "r_Zz0123456789\n").unwrap();
        let id = SystemId::load_or_create_with(&path, || panic!("must not regenerate")).unwrap();
        assert_eq!(id.as_str(), "r_Zz0123456789");
    }

    #[test]
    fn invalid_content_is_regenerated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner_system_id");
        std::fs::write(&path, "garbage").unwrap();
        let id = SystemId::load_or_create_with(&path, || SystemId::parse("s_bbbbbbbbbbbb").unwrap()).unwrap();
        assert_eq!(id.as_str(), "s_bbbbbbbbbbbb");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "s_bbbbbbbbbbbb");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn unwritable_location_still_returns_an_id() {
        // Nobody, not even root, can create files in procfs; reading the missing file there is
        // a plain "not found", so this exercises exactly the failed-save path.
        let path = Path::new("/proc/self/.runner_system_id");
        let id = SystemId::load_or_create_with(path, || SystemId::parse("s_cccccccccccc").unwrap()).unwrap();
        assert_eq!(id.as_str(), "s_cccccccccccc");
        assert!(!path.exists());
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be read as a file.
        let err = SystemId::load_or_create_with(dir.path(), || panic!("must not regenerate")).unwrap_err();
        assert!(matches!(err, SystemIdError::Read { .. }));
    }

    #[test]
    fn default_generation_is_valid() {
        let id = SystemId::generate();
        assert!(SystemId::parse(id.as_str()).is_ok());
    }
}
