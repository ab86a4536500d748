//! The namespace layer, under Landlock: what Landlock cannot take away.
//!
//! Landlock grants rights but does not cover `chmod`, `chown`, `utime` or
//! extended attributes, and cannot make a subtree read-only below a granted
//! one. So the launcher enters a new user + mount namespace once per run in
//! which every mount is remounted read-only ([`enter_base`]), and each
//! worker gets, on top of that, a mount namespace of its own in which only
//! its writable paths are writable again, a PID namespace with a fresh
//! `/proc` (it sees only its own processes) and a process cap, and a
//! network namespace with nothing but a loopback interface that is down
//! ([`isolate_task`]). All of that fails with EROFS / ENETUNREACH outside
//! the worktree, also for a worker running as root.
//!
//! Doing the expensive part (remounting every mount) once per run instead
//! of once per worker is what keeps a sandboxed spawn cheap.
//!
//! Where the kernel refuses unprivileged user namespaces, the launcher goes
//! on with the Landlock + seccomp baseline, and `swarm doctor` says so.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why the namespace layer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The kernel does not allow this process a user namespace: the
    /// launcher falls back to the baseline.
    #[error("create user and mount namespaces: {0}")]
    Unavailable(std::io::Error),
    #[error("map user and group ids in the new namespace: {0}")]
    IdMap(std::io::Error),
    #[error("make {path} {what}: {source}")]
    Mount {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("create the workers' network namespace: {0}")]
    Network(std::io::Error),
}

/// The run-wide namespaces the launcher lives in.
#[derive(Debug)]
pub(crate) struct Base {
    /// A network namespace with only a (down) loopback interface, joined by
    /// every worker that has no network.
    pub no_network: OwnedFd,
}

fn cstr(path: &Path) -> Result<CString, std::io::Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

/// Enters a new user + mount namespace in which every mount is read-only.
/// Must be called while the process is single-threaded.
pub(crate) fn enter_base() -> Result<Base, NamespaceError> {
    // SAFETY: getuid/getgid/unshare take no pointers.
    #[allow(unsafe_code)]
    let (uid, gid, ret) = unsafe {
        let (uid, gid) = (libc::getuid(), libc::getgid());
        (
            uid,
            gid,
            libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS),
        )
    };
    if ret == -1 {
        return Err(NamespaceError::Unavailable(std::io::Error::last_os_error()));
    }
    // Map our own ids onto themselves: files keep their owners, and workers
    // keep exactly the rights they had (capabilities are dropped later).
    let write =
        |file: &str, text: String| std::fs::write(file, text).map_err(NamespaceError::IdMap);
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;

    mount(
        None,
        Path::new("/"),
        libc::MS_REC | libc::MS_PRIVATE,
        "private",
    )
    .map_err(|(what, source)| NamespaceError::Mount {
        path: "/".into(),
        what,
        source,
    })?;
    for mount_point in mount_points().map_err(|source| NamespaceError::Mount {
        path: "/proc/self/mountinfo".into(),
        what: "readable",
        source,
    })? {
        let Ok(target) = cstr(&mount_point) else {
            continue;
        };
        let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | locked_flags(&target);
        match mount(None, &mount_point, flags, "read-only") {
            Ok(()) => {}
            // Gone, or hidden under another mount: nothing reachable there.
            Err((_, e))
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::EINVAL | libc::EACCES)
                ) => {}
            Err((what, source)) => {
                return Err(NamespaceError::Mount {
                    path: mount_point,
                    what,
                    source,
                });
            }
        }
    }
    Ok(Base {
        no_network: network_namespace().map_err(NamespaceError::Network)?,
    })
}

/// A new network namespace, kept alive by an fd: a short-lived child
/// creates it (the launcher itself stays in the host's, which workers with
/// `network = "full"` need) and the launcher opens it through `/proc`.
fn network_namespace() -> Result<OwnedFd, std::io::Error> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the launcher is single-threaded; the child only calls
    // unshare, write and pause before it is killed.
    #[allow(unsafe_code)]
    unsafe {
        let pid = libc::fork();
        if pid == -1 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            let ok: u8 = u8::from(libc::unshare(libc::CLONE_NEWNET) == 0);
            libc::write(write.as_raw_fd(), (&raw const ok).cast(), 1);
            loop {
                libc::pause();
            }
        }
        drop(write);
        let mut ok = 0u8;
        let n = libc::read(read.as_raw_fd(), (&raw mut ok).cast(), 1);
        let result = if n == 1 && ok == 1 {
            std::fs::File::open(format!("/proc/{pid}/ns/net")).map(OwnedFd::from)
        } else {
            Err(std::io::Error::other("unshare(CLONE_NEWNET) failed"))
        };
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        result
    }
}

/// What [`isolate_task`] needs, prepared before the worker's process exists.
#[derive(Debug)]
pub(crate) struct TaskMounts {
    /// Paths made writable again (bind-mounted onto themselves).
    pub writable: Vec<CString>,
    /// Value for the new PID namespace's `pid_max`: caps the number of
    /// processes (and threads) the worker can have at once.
    pub pid_max: Option<u64>,
    /// The run's no-network namespace, joined unless the worker may use
    /// the network.
    pub no_network: Option<RawFd>,
}

/// Runs in the worker's init process, inside its new mount and PID
/// namespaces: writable paths, a fresh `/proc`, the process cap, no network.
/// Returns whether the process cap is in force (Linux >= 6.14 keeps
/// `pid_max` per PID namespace). Errors say what failed; the worker is not
/// started.
pub(crate) fn isolate_task(mounts: &TaskMounts) -> Result<bool, String> {
    let fail = |what: &str, path: &Path, e: std::io::Error| {
        format!("isolate the worker: make {} {what}: {e}", path.display())
    };
    for path in &mounts.writable {
        let p = Path::new(std::ffi::OsStr::from_bytes(path.as_bytes()));
        mount(
            Some(p),
            p,
            libc::MS_BIND | libc::MS_REC,
            "a mount of its own",
        )
        .map_err(|(what, e)| fail(what, p, e))?;
        let flags = libc::MS_REMOUNT | libc::MS_BIND | locked_flags(path);
        mount(None, p, flags, "writable").map_err(|(what, e)| fail(what, p, e))?;
    }
    let proc_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: constant C strings, no data argument.
    #[allow(unsafe_code)]
    let ret = unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            proc_flags,
            std::ptr::null(),
        )
    };
    if ret == -1 {
        return Err(fail(
            "a fresh proc file system",
            Path::new("/proc"),
            std::io::Error::last_os_error(),
        ));
    }
    let capped = mounts.pid_max.is_some_and(|pid_max| {
        std::fs::write("/proc/sys/kernel/pid_max", pid_max.to_string()).is_ok()
    });
    // Nothing in the worker may change a sysctl or other /proc knob of its
    // namespaces (it has no capabilities left; this is the second wall).
    mount(
        None,
        Path::new("/proc"),
        libc::MS_REMOUNT | libc::MS_RDONLY | proc_flags,
        "read-only",
    )
    .map_err(|(what, e)| fail(what, Path::new("/proc"), e))?;
    if let Some(fd) = mounts.no_network {
        // SAFETY: setns with an fd the launcher opened and keeps open.
        #[allow(unsafe_code)]
        if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } == -1 {
            return Err(format!(
                "isolate the worker: join the no-network namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(capped)
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    flags: libc::c_ulong,
    what: &'static str,
) -> Result<(), (&'static str, std::io::Error)> {
    let target_c = cstr(target).map_err(|e| (what, e))?;
    let source_c = source.map(cstr).transpose().map_err(|e| (what, e))?;
    // SAFETY: the strings outlive the call; null fstype and data are allowed
    // for bind mounts, remounts and propagation changes.
    #[allow(unsafe_code)]
    let ret = unsafe {
        libc::mount(
            source_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if ret == -1 {
        Err((what, std::io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

/// Flags a remount inside a user namespace must keep: the kernel refuses to
/// clear flags that were set when the mount was inherited.
fn locked_flags(mount_point: &CString) -> libc::c_ulong {
    // SAFETY: `stat` is written by statvfs and read only on success.
    #[allow(unsafe_code)]
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(mount_point.as_ptr(), &mut stat) != 0 {
            return 0;
        }
        stat
    };
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(st, _)| stat.f_flag & st != 0)
        .fold(0, |acc, (_, ms)| acc | ms)
}

/// Mount points of this mount namespace, from `/proc/self/mountinfo`
/// (field 5, with `\040`-style octal escapes decoded).
fn mount_points() -> Result<Vec<PathBuf>, std::io::Error> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .collect())
}

fn unescape(field: &str) -> OsString {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    std::ffi::OsStr::from_bytes(&out).to_os_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(
            unescape("/mnt/with\\040space"),
            OsString::from("/mnt/with space")
        );
        assert_eq!(unescape("/plain"), OsString::from("/plain"));
    }
}
