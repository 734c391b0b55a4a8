//! `flotilla-helper bootstrap --dest DIR`: the init container copies this very binary into the
//! shared emptyDir, so the build container (any image) can run it as its step-runner.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub const BINARY_NAME: &str = "flotilla-helper";

/// Copies `source` (normally `/proc/self/exe`) to `DEST/flotilla-helper`, mode 0755, atomically
/// (temporary file in `DEST`, fsync, rename). Returns the installed path.
pub fn install(source: &Path, dest: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let target = dest.join(BINARY_NAME);
    let tmp = dest.join(format!(".{BINARY_NAME}.tmp.{}", std::process::id()));
    let copy = || -> io::Result<()> {
        let mut from = fs::File::open(source)?;
        let mut to = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&tmp)?;
        io::copy(&mut from, &mut to)?;
        // The mode given to open() is filtered by the umask: set it explicitly.
        to.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        to.sync_all()?;
        drop(to);
        fs::rename(&tmp, &target)
    };
    if let Err(e) = copy() {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot copy {} to {}", source.display(), target.display()));
    }
    Ok(target)
}

pub fn bootstrap(dest: &Path) -> Result<()> {
    let target = install(Path::new("/proc/self/exe"), dest)?;
    println!(
        "flotilla-helper {}: installed {}",
        env!("CARGO_PKG_VERSION"),
        target.display()
    );
    Ok(())
}
