//! The namespace layer, under Landlock: what Landlock cannot take away.
//!
//! Landlock grants rights but does not cover `chmod`, `chown`, `utime` or
//! extended attributes, and cannot make a subtree read-only below a granted
//! one. So the launcher enters a new user + mount namespace once per run in
//! which every mount is remounted read-only ([`enter_base`]), and each
//! worker gets, on top of that, a mount namespace of its own whose root
//! holds only the paths it was granted (see [`crate::view`]), with only its
//! writable paths writable, a PID namespace with a fresh `/proc` (it sees
//! only its own processes) and a process cap, and a network namespace with
//! nothing but a loopback interface that is down ([`isolate_task`]). All of that fails with EROFS / ENETUNREACH outside
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

use crate::mount_api::locked_flags;

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

/// Enters the run-wide namespaces, in which every mount is read-only.
/// Must be called while the process is single-threaded.
///
/// As another user than root: a new user + mount namespace that maps the
/// user onto itself, so files keep their owners and workers keep exactly
/// the user's rights. As root: the same, plus
/// [`SANDBOX_IDENTITY`](crate::policy::SANDBOX_IDENTITY) mapped
/// onto itself, which workers switch to (see [`crate::policy`]); groups
/// stay settable so that they can drop root's supplementary groups.
pub(crate) fn enter_base() -> Result<Base, NamespaceError> {
    // SAFETY: getuid/getgid take no pointers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    match crate::policy::worker_identity() {
        // A map of more than one's own id must be written from the parent
        // namespace, by a process that keeps its capabilities there.
        Some((id, gid_of)) => map_from_outside(format!("{uid} {uid} 1\n{id} {id} 1\n"), {
            format!("{gid} {gid} 1\n{gid_of} {gid_of} 1\n")
        })?,
        None => {
            unshare_user_and_mounts()?;
            let write = |file: &str, text: String| {
                std::fs::write(file, text).map_err(NamespaceError::IdMap)
            };
            // An unprivileged writer of gid_map must give up setgroups first.
            write("/proc/self/setgroups", "deny".into())?;
            write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
            write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
        }
    }

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
        // nosuid and nodev too (but for device files), so that a bind of
        // any of these for a worker is already all it must be.
        let nodev = if mount_point.starts_with("/dev") {
            0
        } else {
            libc::MS_NODEV
        };
        let flags = libc::MS_REMOUNT
            | libc::MS_BIND
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | nodev
            | locked_flags(&mount_point);
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

fn unshare_user_and_mounts() -> Result<(), NamespaceError> {
    // SAFETY: unshare takes no pointers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } == -1 {
        return Err(NamespaceError::Unavailable(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Enters a new user + mount namespace whose id maps a child, left behind
/// in the parent namespace, writes.
fn map_from_outside(uid_map: String, gid_map: String) -> Result<(), NamespaceError> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| NamespaceError::IdMap(e.into()))?;
    let parent = std::process::id();
    // SAFETY: the launcher is single-threaded; the child reads one byte,
    // writes two files and leaves with _exit.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(NamespaceError::IdMap(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(write);
        let mut byte = [0u8; 1];
        let ok = nix::unistd::read(&read, &mut byte) == Ok(1)
            && byte[0] == 1
            && std::fs::write(format!("/proc/{parent}/uid_map"), &uid_map).is_ok()
            && std::fs::write(format!("/proc/{parent}/gid_map"), &gid_map).is_ok();
        // SAFETY: leaving the forked child without running the parent's
        // destructors.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            libc::_exit(i32::from(!ok))
        };
    }
    drop(read);
    let unshared = unshare_user_and_mounts();
    // Told to go on either way: it must not wait forever.
    let _ = nix::unistd::write(&write, &[u8::from(unshared.is_ok())]);
    drop(write);
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid pointer.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    unshared?;
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(NamespaceError::IdMap(std::io::Error::other(
            "the helper in the parent namespace could not write the id maps",
        )));
    }
    Ok(())
}

/// A new network namespace, kept alive by an fd: a short-lived child
/// creates it (the launcher itself stays in the host's, which workers with
/// `network = "full"` need) and the launcher opens it through `/proc`.
fn network_namespace() -> Result<OwnedFd, std::io::Error> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the launcher is single-threaded; the child only calls
    // unshare, write and pause before it is killed.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
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

/// What a sandbox cell did ahead of its task (see `launcher::cell`), as
/// its init goes on with the task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ahead {
    /// It mounted a private `/dev/shm`.
    pub shm: bool,
    /// The process cap it set, if it was made for one (`/proc` is
    /// read-only then).
    pub pid_max: Option<PidMax>,
}

/// A `pid_max` a cell set ahead: the value, and whether the kernel took
/// it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PidMax {
    pub value: u64,
    pub taken: bool,
}

/// What [`isolate_task`] needs, prepared before the worker's process exists.
#[derive(Debug)]
pub(crate) struct TaskMounts {
    /// The worker's file system: what it may see, and where.
    pub view: crate::view::Plan,
    /// The same over the run's template, where there is one: the worker's
    /// init then enters a copy of it and adds only the task's own mounts
    /// (see [`crate::template`]) instead of building `view` whole.
    pub template: Option<crate::template::TaskView>,
    /// Value for the new PID namespace's `pid_max`: caps the number of
    /// processes (and threads) the worker can have at once.
    pub pid_max: Option<u64>,
    /// The run's no-network namespace, joined unless the worker may use
    /// the network.
    pub no_network: Option<RawFd>,
    /// With `Network::Gateway`: the ports, and the socket their listeners
    /// go out on. The worker gets a network namespace of its own instead
    /// of the run's.
    pub gateway: Option<(crate::policy::GatewayPorts, RawFd)>,
    /// Idmapped copies of the task's own paths (`Policy::idmapped`) not
    /// taken by its template's mounts: for a root built whole.
    pub trees: Vec<(std::path::PathBuf, std::os::fd::OwnedFd)>,
}

/// Runs in the worker's init process, inside its new mount and PID
/// namespaces: its own root with only the granted paths, a fresh `/proc`,
/// the process cap, no network. Returns whether the process cap is in
/// force (Linux >= 6.14 keeps `pid_max` per PID namespace). Errors say what
/// failed; the worker is not started. `cell`: init is a sandbox cell, which
/// entered a copy of the template and made `/dev/shm` and `/proc` ahead of
/// the task (only over a template).
pub(crate) fn isolate_task(mounts: &TaskMounts, cell: Option<Ahead>) -> Result<bool, String> {
    let mut capped = false;
    let knobs = |proc: &Path| {
        capped = mounts.pid_max.is_some_and(|pid_max| {
            std::fs::write(proc.join("sys/kernel/pid_max"), pid_max.to_string()).is_ok()
        });
        Ok(())
    };
    match (&mounts.template, cell) {
        // The cell set the process cap and made `/proc` read-only: its
        // task's cap must be that one (the launcher gives a cell only such
        // a task).
        (
            Some(task),
            Some(Ahead {
                pid_max: Some(set), ..
            }),
        ) => {
            if Some(set.value) != mounts.pid_max {
                return Err(format!(
                    "isolate the worker: its sandbox cell set a process cap of {}, not its task's",
                    set.value
                ));
            }
            crate::template::enter_settled_cell(task)?;
            capped = set.taken;
        }
        (Some(task), Some(_)) => crate::template::enter_in_cell(task, knobs)?,
        (Some(task), None) => crate::template::enter(task, knobs)?,
        (None, _) => crate::view::build(&mounts.view, &mounts.trees, knobs)?,
    }
    if let Some((ports, handoff)) = mounts.gateway {
        crate::loopback::listen_and_hand_over(ports, handoff)
            .map_err(|e| format!("isolate the worker: open its gateway ports: {e}"))?;
    } else if let Some(fd) = mounts.no_network {
        // SAFETY: setns with an fd the launcher opened and keeps open.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
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
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
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
