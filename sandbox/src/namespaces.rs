//! The namespace layer, under Landlock: what Landlock cannot take away.
//!
//! Landlock grants rights but does not cover `chmod`, `chown`, `utime` or
//! extended attributes, and cannot make a subtree read-only below a granted
//! one. A new user + mount namespace in which every mount but the worker's
//! writable paths is remounted read-only makes all of those fail with EROFS
//! outside the worktree, also for a worker running as root. A new network
//! namespace leaves only a loopback interface that is down.
//!
//! Where the kernel refuses unprivileged user namespaces, the helper goes on
//! with the Landlock + seccomp baseline, and `swarm doctor` says so.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::policy::Policy;

/// Why the namespace layer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The kernel does not allow this process a user namespace: the caller
    /// falls back to the baseline.
    #[error("create user, mount and network namespaces: {0}")]
    Unavailable(std::io::Error),
    #[error("map user and group ids in the new namespace: {0}")]
    IdMap(std::io::Error),
    #[error("make {path} {what}: {source}")]
    Mount {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
}

fn cstr(path: &Path) -> Result<CString, std::io::Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

/// Enters new namespaces and leaves only `policy.read_write` writable.
pub(crate) fn isolate(policy: &Policy) -> Result<(), NamespaceError> {
    // SAFETY: getuid/getgid/unshare take no pointers.
    #[allow(unsafe_code)]
    let (uid, gid, ret) = unsafe {
        let (uid, gid) = (libc::getuid(), libc::getgid());
        (
            uid,
            gid,
            libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWNET),
        )
    };
    if ret == -1 {
        return Err(NamespaceError::Unavailable(std::io::Error::last_os_error()));
    }
    // Map our own ids onto themselves: files keep their owners, and the
    // worker keeps exactly the rights it had (capabilities are dropped next).
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
    )?;
    let writable: Vec<&Path> = policy
        .read_write
        .iter()
        .map(PathBuf::as_path)
        .filter(|p| p.exists())
        .collect();
    for path in &writable {
        mount(
            Some(path),
            path,
            libc::MS_BIND | libc::MS_REC,
            "a mount of its own",
        )?;
    }
    for mount_point in mount_points().map_err(|source| NamespaceError::Mount {
        path: "/proc/self/mountinfo".into(),
        what: "readable",
        source,
    })? {
        if writable.iter().any(|w| mount_point.starts_with(w)) {
            continue;
        }
        let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | locked_flags(&mount_point);
        match mount(None, &mount_point, flags, "read-only") {
            Ok(()) => {}
            // Gone, or hidden under another mount: nothing reachable there.
            Err(NamespaceError::Mount { ref source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ENOENT | libc::EINVAL | libc::EACCES)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    // The working directory was entered before its bind mount existed and
    // still points into the (now read-only) mount below: enter it again by
    // path, which resolves to the writable mount on top.
    let cwd = std::env::current_dir().map_err(|source| NamespaceError::Mount {
        path: ".".into(),
        what: "the working directory again",
        source,
    })?;
    std::env::set_current_dir(&cwd).map_err(|source| NamespaceError::Mount {
        path: cwd.clone(),
        what: "the working directory again",
        source,
    })
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    flags: libc::c_ulong,
    what: &'static str,
) -> Result<(), NamespaceError> {
    let err = |source| NamespaceError::Mount {
        path: target.to_path_buf(),
        what,
        source,
    };
    let target_c = cstr(target).map_err(err)?;
    let source_c = source.map(cstr).transpose().map_err(err)?;
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
        Err(err(std::io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

/// Flags a remount inside a user namespace must keep: the kernel refuses to
/// clear flags that were set when the mount was inherited.
fn locked_flags(mount_point: &Path) -> libc::c_ulong {
    let Ok(path) = cstr(mount_point) else {
        return 0;
    };
    // SAFETY: `stat` is written by statvfs and read only on success.
    #[allow(unsafe_code)]
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut stat) != 0 {
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

fn unescape(field: &str) -> std::ffi::OsString {
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
            std::ffi::OsString::from("/mnt/with space")
        );
        assert_eq!(unescape("/plain"), std::ffi::OsString::from("/plain"));
    }
}
