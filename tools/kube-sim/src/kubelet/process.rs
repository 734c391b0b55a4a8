//! Starting a container's process: a local process in a private mount namespace where each
//! volume is bind-mounted at its mountPath, with the container's env, working directory
//! and user. `exec` joins the namespace of a running container the same way.
//!
//! Everything the child does between fork and exec is plain libc calls on data prepared
//! beforehand, so nothing allocates in the forked child.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

/// A directory or file of the host bind-mounted into the container.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// What a container (or an exec into it) runs.
#[derive(Debug, Clone, Default)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub mounts: Vec<Mount>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Vec<u32>,
    pub stdin: bool,
    /// Build the container's root here: every top-level host directory bind-mounted in,
    /// then `chroot`. Mount points that the host lacks (`/builds`) are then created in
    /// this private directory instead of on the host's `/`.
    pub root_dir: Option<PathBuf>,
    /// The capability bounding set (a mask by capability number); None: kube-sim's own.
    pub capabilities: Option<u64>,
}

/// How to give the process its view of the filesystem.
pub enum Namespace {
    /// A fresh private mount namespace, with the private root built from scratch if the
    /// spec has a `root_dir` (slow: one bind mount per top-level directory).
    Fresh,
    /// A private copy of this process's mount namespace, which already holds the private
    /// root at the spec's `root_dir` (a container's main process: copying is fast).
    CopyOf(u32),
    /// The mount namespace and root of this running process (exec).
    JoinOf(u32),
}

/// The private root of a fresh container: host top-level directories to bind in.
struct Root {
    dir: CString,
    /// (source, target, is a directory, bind its submounts too)
    binds: Vec<(CString, CString, bool, bool)>,
}

struct Prepared {
    root: Option<Root>,
    /// exec: the container's root, entered after joining its namespace.
    root_fd: Option<File>,
    mounts: Vec<(CString, CString, bool, bool)>,
    mkdirs: Vec<CString>,
    touch: Vec<CString>,
    working_dir: Option<(Vec<CString>, CString)>,
    ns_fd: Option<File>,
    /// Unshare a new mount namespace (Fresh, CopyOf) and make the spec's mounts.
    fresh: bool,
    /// CopyOf: chroot into the root prepared in the copied namespace.
    copied_root: Option<CString>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Vec<libc::gid_t>,
    /// Capabilities to drop from the bounding set.
    drop_caps: Vec<libc::c_ulong>,
}

/// The kernel's highest capability number.
fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(40)
    })
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Ancestors of `path` from the root down, so `mkdir` on each in turn is `mkdir -p`.
fn ancestors(path: &Path) -> io::Result<Vec<CString>> {
    let mut list: Vec<&Path> = path.ancestors().filter(|p| p.parent().is_some()).collect();
    list.reverse();
    list.into_iter().map(cstring).collect()
}

fn prepare(spec: &ProcessSpec, namespace: Namespace) -> io::Result<Prepared> {
    let mut mounts = Vec::new();
    let mut mkdirs = Vec::new();
    let mut touch = Vec::new();
    let mut sorted = spec.mounts.clone();
    // Parents first, so a mount inside another mount lands on top of it.
    sorted.sort_by_key(|m| m.target.components().count());
    for m in &sorted {
        let is_dir = m.source.is_dir();
        if is_dir {
            mkdirs.extend(ancestors(&m.target)?);
        } else {
            if let Some(parent) = m.target.parent() {
                mkdirs.extend(ancestors(parent)?);
            }
            touch.push(cstring(&m.target)?);
        }
        mounts.push((cstring(&m.source)?, cstring(&m.target)?, m.read_only, is_dir));
    }
    let working_dir = match &spec.working_dir {
        Some(dir) => Some((ancestors(dir)?, cstring(dir)?)),
        None => None,
    };
    let (ns_fd, root_fd, fresh) = match namespace {
        Namespace::Fresh => (None, None, true),
        Namespace::CopyOf(pid) => (Some(File::open(format!("/proc/{pid}/ns/mnt"))?), None, true),
        Namespace::JoinOf(pid) => (
            Some(File::open(format!("/proc/{pid}/ns/mnt"))?),
            Some(File::open(format!("/proc/{pid}/root"))?),
            false,
        ),
    };
    let (root, copied_root) = match (&spec.root_dir, &namespace) {
        (Some(dir), Namespace::Fresh) => (Some(prepare_root(dir)?), None),
        (Some(dir), Namespace::CopyOf(_)) => (None, Some(cstring(dir)?)),
        _ => (None, None),
    };
    Ok(Prepared {
        root,
        root_fd,
        mounts,
        mkdirs,
        touch,
        working_dir,
        ns_fd,
        fresh,
        copied_root,
        uid: spec.uid,
        gid: spec.gid,
        groups: spec.groups.clone(),
        drop_caps: spec
            .capabilities
            .map(|mask| super::capabilities::outside(mask, last_cap()))
            .unwrap_or_default()
            .into_iter()
            .map(libc::c_ulong::from)
            .collect(),
    })
}

/// Lays out the private root: host symlinks copied (they are relative or resolve inside
/// the chroot the same way), every other top-level entry listed for a bind mount.
fn prepare_root(dir: &Path) -> io::Result<Root> {
    std::fs::create_dir_all(dir)?;
    let mut binds = Vec::new();
    for entry in std::fs::read_dir("/")? {
        let entry = entry?;
        let source = entry.path();
        let target = dir.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            if std::fs::symlink_metadata(&target).is_err() {
                std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
            }
        } else {
            // Submounts matter only for the kernel filesystems; copying every other
            // directory's submounts (e.g. other runs under /tmp) is what makes a start slow.
            let recursive = matches!(entry.file_name().to_str(), Some("dev" | "proc" | "sys" | "run"));
            binds.push((cstring(&source)?, cstring(&target)?, kind.is_dir(), recursive));
        }
    }
    Ok(Root {
        dir: cstring(dir)?,
        binds,
    })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Runs in the forked child, before exec.
fn enter(p: &Prepared) -> io::Result<()> {
    unsafe {
        // A kube-sim killed with SIGKILL must not leave containers behind.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        if let Some(fd) = &p.ns_fd {
            check(libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNS))?;
        }
        if let Some(root) = &p.root_fd {
            // Joining the namespace put us at its real root; the container lives in a chroot.
            check(libc::fchdir(root.as_raw_fd()))?;
            check(libc::chroot(c".".as_ptr()))?;
            check(libc::chdir(c"/".as_ptr()))?;
        }
        if p.fresh {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            let root = c"/";
            check(libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            if let Some(root) = &p.root {
                for (source, target, is_dir, recursive) in &root.binds {
                    if *is_dir {
                        libc::mkdir(target.as_ptr(), 0o755);
                    } else {
                        let fd = libc::open(target.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
                        if fd >= 0 {
                            libc::close(fd);
                        }
                    }
                    check(libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | if *recursive { libc::MS_REC } else { 0 },
                        std::ptr::null(),
                    ))?;
                }
                check(libc::chroot(root.dir.as_ptr()))?;
                check(libc::chdir(c"/".as_ptr()))?;
            }
            if let Some(dir) = &p.copied_root {
                check(libc::chroot(dir.as_ptr()))?;
                check(libc::chdir(c"/".as_ptr()))?;
            }
            for dir in &p.mkdirs {
                libc::mkdir(dir.as_ptr(), 0o755);
            }
            for file in &p.touch {
                let fd = libc::open(file.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
                if fd >= 0 {
                    libc::close(fd);
                }
            }
            for (source, target, read_only, is_dir) in &p.mounts {
                if *is_dir {
                    libc::mkdir(target.as_ptr(), 0o755);
                }
                check(libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?;
                if *read_only {
                    check(libc::mount(
                        std::ptr::null(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    ))?;
                }
            }
        }
        if let Some((ancestors, dir)) = &p.working_dir {
            // Like runc, create the working directory if the image lacks it.
            for a in ancestors {
                libc::mkdir(a.as_ptr(), 0o755);
            }
            check(libc::chdir(dir.as_ptr()))?;
        }
        // Before changing user: dropping from the bounding set needs CAP_SETPCAP, and the
        // current effective set (which setuid needs) is left alone; exec applies the bound.
        for cap in &p.drop_caps {
            check(libc::prctl(libc::PR_CAPBSET_DROP, *cap, 0, 0, 0))?;
        }
        if let Some(gid) = p.gid {
            check(libc::setgroups(p.groups.len(), p.groups.as_ptr()))?;
            check(libc::setgid(gid))?;
        } else if !p.groups.is_empty() {
            check(libc::setgroups(p.groups.len(), p.groups.as_ptr()))?;
        }
        if let Some(uid) = p.uid {
            if p.gid.is_none() {
                // The image's /etc/passwd would give the group; the host's root group is
                // not what a non-root container user gets.
                check(libc::setgid(uid))?;
            }
            check(libc::setuid(uid))?;
        }
    }
    Ok(())
}

/// Starts the process with piped stdout/stderr (and stdin if the spec asks), in its own
/// process group so the whole container can be signalled at once.
pub fn spawn(spec: &ProcessSpec, namespace: Namespace) -> io::Result<Child> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no command specified"));
    };
    let prepared = prepare(spec, namespace)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    unsafe {
        command.pre_exec(move || enter(&prepared));
    }
    command.spawn()
}

/// Starts the process off the async threads: `fork` returns only once the child has set
/// up its mounts and called `exec`, which takes milliseconds. Long-lived spawner threads do
/// it, because a child's PR_SET_PDEATHSIG fires when the *thread* that forked it exits.
pub async fn spawn_off_thread(spec: ProcessSpec, namespace: Namespace) -> io::Result<Child> {
    let (reply, result) = tokio::sync::oneshot::channel();
    let job = SpawnJob {
        spec,
        namespace,
        runtime: tokio::runtime::Handle::current(),
        reply,
    };
    spawner()
        .lock()
        .unwrap()
        .send(job)
        .map_err(|_| io::Error::other("spawner threads are gone"))?;
    result
        .await
        .map_err(|_| io::Error::other("spawner thread dropped the request"))?
}

struct SpawnJob {
    spec: ProcessSpec,
    namespace: Namespace,
    runtime: tokio::runtime::Handle,
    reply: tokio::sync::oneshot::Sender<io::Result<Child>>,
}

fn spawner() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<SpawnJob>> {
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<SpawnJob>>> =
        std::sync::OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..2 {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("kube-sim-spawner-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock().unwrap().recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    // tokio::process registers the child with the caller's runtime.
                    let _guard = job.runtime.enter();
                    let _ = job.reply.send(spawn(&job.spec, job.namespace));
                })
                .expect("spawning a thread");
        }
        std::sync::Mutex::new(tx)
    })
}

/// Sends a signal to the process group of a container's main process.
pub fn signal_group(pid: u32, signal: i32) {
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// The containerd-style message for a process that could not start.
pub fn start_error_message(program: &str, error: &io::Error) -> String {
    let cause = match error.kind() {
        io::ErrorKind::NotFound => format!("exec: \"{program}\": executable file not found in $PATH"),
        io::ErrorKind::PermissionDenied => format!("exec: \"{program}\": permission denied"),
        _ => error.to_string(),
    };
    format!(
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: {cause}: unknown"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_with_env_working_dir_and_private_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("vol");
        std::fs::create_dir(&volume).unwrap();
        std::fs::write(volume.join("hello.txt"), "from the volume").unwrap();
        let target = dir.path().join("not-yet/mounted-here");
        let spec = ProcessSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo $GREETING; pwd; cat mounted-here/hello.txt".into(),
            ],
            env: vec![
                ("GREETING".into(), "hi".into()),
                ("PATH".into(), "/usr/bin:/bin".into()),
            ],
            working_dir: Some(dir.path().join("not-yet")),
            mounts: vec![Mount {
                source: volume.clone(),
                target: target.clone(),
                read_only: true,
            }],
            ..Default::default()
        };
        let child = spawn(&spec, Namespace::Fresh).unwrap();
        let output = child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected = format!("hi\n{}\nfrom the volume", dir.path().join("not-yet").display());
        assert_eq!(stdout, expected);
        // The mount is private to the container: the host sees the empty mount point.
        assert!(target.is_dir());
        assert!(!target.join("hello.txt").exists());
    }

    #[tokio::test]
    async fn missing_program_is_a_start_error() {
        let spec = ProcessSpec {
            argv: vec!["definitely-not-a-program".into()],
            ..Default::default()
        };
        let err = spawn(&spec, Namespace::Fresh).unwrap_err();
        assert!(start_error_message("definitely-not-a-program", &err).contains("executable file not found in $PATH"));
    }
}
