//! Showing a task's own directory to the sandbox's user without handing
//! it over: an idmapped copy of the tree, in which the files root owns on
//! disk are the sandbox user's, and what that user makes is root's on
//! disk.
//!
//! As root, workers run as an unprivileged identity
//! ([`crate::SANDBOX_IDENTITY`]), which must own what it may change. Handing
//! a worktree over and taking it back is a `chown` of every file, twice,
//! and changes every file's ctime, so the snapshot after the task reads
//! every file again (a 10,000-file worktree: most of a writing task's
//! cost beyond the unconfined one). An idmapped mount
//! (`mount_setattr(MOUNT_ATTR_IDMAP)`, Linux 5.12, per file system) leaves
//! the files as they are.
//!
//! The copy is made here, in the coordinator's process (real root in the
//! host's user namespace: the launcher's own user namespace may not idmap
//! a host file system), detached (`open_tree`), and the launcher moves it
//! into the worker's root in place of the copy it would make itself. The
//! user namespace that says the mapping (on-disk uid and gid 0 as the
//! sandbox's) is made once, by a child that exists only for that.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

/// `mount_setattr` flag: the mount is idmapped by `userns_fd`.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// `mount_setattr` flags: read-only, no set-user-ID programs, no device
/// files.
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// Why idmapped copies cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct IdMapError {
    what: String,
    source: std::io::Error,
}

fn failed(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IdMapError {
    let what = what.into();
    move |source| IdMapError { what, source }
}

/// The user namespace that shows on-disk uid and gid 0 as `owner`'s.
#[derive(Debug)]
pub struct IdMap {
    userns: OwnedFd,
}

impl IdMap {
    /// Makes the mapping's user namespace (as root only: the map needs
    /// the host's `CAP_SETUID`).
    pub fn new((uid, gid): (u32, u32)) -> Result<Self, IdMapError> {
        // Close-on-exec: a command another thread starts meanwhile must
        // not keep the helper's end open.
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| failed("make a pipe")(e.into()))?;
        let parent = nix::unistd::getpid().as_raw();
        // SAFETY: the child makes only async-signal-safe calls (`prctl`,
        // `getppid`, `close_range`, `unshare`, `write`, `pause`, `_exit`)
        // on an fd it inherited: safe after a fork of a multi-threaded
        // process.
        #[expect(unsafe_code, reason = "fork: see the SAFETY comment")]
        let child = unsafe { libc::fork() };
        if child == -1 {
            return Err(failed("fork the mapping's helper")(
                std::io::Error::last_os_error(),
            ));
        }
        if child == 0 {
            helper(ready_w.as_raw_fd(), parent);
        }
        drop(ready_w);
        let made = (|| {
            let mut byte = [0u8; 1];
            let n = nix::unistd::read(&ready_r, &mut byte)
                .map_err(|e| failed("wait for the mapping's helper")(e.into()))?;
            if n != 1 || byte[0] != b'u' {
                return Err(failed("make the mapping's user namespace")(
                    std::io::Error::other("its helper could not unshare one"),
                ));
            }
            let proc = Path::new("/proc").join(child.to_string());
            let write = |name: &str, text: String| {
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the kernel's files of the helper swarm made, in /proc"
                )]
                std::fs::write(proc.join(name), text).map_err(failed(format!("write {name}")))
            };
            write("setgroups", "deny".into())?;
            write("uid_map", format!("0 {uid} 1\n"))?;
            write("gid_map", format!("0 {gid} 1\n"))?;
            #[allow(
                clippy::disallowed_methods,
                reason = "the user namespace of the helper swarm made, in /proc"
            )]
            let ns = std::fs::File::open(proc.join("ns/user"))
                .map_err(failed("open its user namespace"))?;
            Ok(OwnedFd::from(ns))
        })();
        // The helper is ended by a signal, never by a pipe closing: a
        // helper another thread forked meanwhile holds a copy of every fd
        // this one had (two such helpers held each other's pipe, and each
        // waited for the other's to close). The namespace lives on in the
        // fd opened above.
        let helper = nix::unistd::Pid::from_raw(child);
        let _ = nix::sys::signal::kill(helper, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(helper, None);
        made.map(|userns| Self { userns })
    }

    /// A detached copy of the tree at `path`, idmapped; an error where the
    /// kernel or the file system cannot, or where `path` holds a symbolic
    /// link anywhere (a caller's path to a task's own directory is
    /// resolved: a link there is one a task made).
    ///
    /// The copy is made as real root, of what the path names at the
    /// moment, and shows every root-owned file in it as the task's own,
    /// writable: a link a task planted at a granted path (checked by the
    /// caller, but checked is not opened) would show the host's `/etc` so.
    /// So the path is opened without following any link, and the copy is
    /// of what was opened. Mounts the host has beneath it come with it
    /// read-only and as they are (not idmapped), as the launcher's own
    /// copy of a granted path shows them: only the tree itself is the
    /// task's to write.
    pub fn tree(&self, path: &Path) -> Result<OwnedFd, IdMapError> {
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let opened = nix::fcntl::openat2(nix::fcntl::AT_FDCWD, path, how).map_err(|e| {
            failed(format!("open {} without following a link", path.display()))(e.into())
        })?;
        let tree = crate::mount_api::open_tree_of(&opened)
            .map_err(failed(format!("copy {}", path.display())))?;
        // Every mount of the copy: read-only, `nosuid`, `nodev`, and
        // private, so that nothing mounted on it later (the git view, an
        // overlay) propagates back to a peer in the host's namespace; then
        // its top alone idmapped and writable.
        let every = libc::mount_attr {
            attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            attr_clr: 0,
            propagation: libc::MS_PRIVATE,
            userns_fd: 0,
        };
        let top = libc::mount_attr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: MOUNT_ATTR_RDONLY,
            propagation: 0,
            userns_fd: self.userns.as_raw_fd() as u64,
        };
        crate::mount_api::set_attr(&tree, &every, true)
            .and_then(|()| crate::mount_api::set_attr(&tree, &top, false))
            .map_err(failed(format!("idmap the copy of {}", path.display())))?;
        Ok(tree)
    }
}

/// The forked helper: a user namespace of its own, said on `ready`, kept
/// until its parent kills it (or dies: then the kernel kills it). It
/// closes every other fd it inherited first: another thread's pipe (or
/// the test harness's output) held open by it would keep a reader
/// waiting. Raw calls only (see [`IdMap::new`]).
fn helper(ready: RawFd, parent: libc::pid_t) -> ! {
    // SAFETY: async-signal-safe calls on an inherited fd, then `_exit` or
    // `pause` until killed.
    #[expect(
        unsafe_code,
        reason = "a forked child's raw calls: see the SAFETY comment"
    )]
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        let ready = ready as libc::c_uint;
        if ready > 0 {
            libc::syscall(libc::SYS_close_range, 0, ready - 1, 0);
        }
        libc::syscall(libc::SYS_close_range, ready + 1, libc::c_uint::MAX, 0);
        let said: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
            b'u'
        } else {
            b'x'
        };
        libc::write(ready as RawFd, (&said as *const u8).cast(), 1);
        libc::close(ready as RawFd);
        loop {
            libc::pause();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Mappings made at once by several threads of one process (tests in
    /// parallel; runs an MCP server drives) each end: a helper forked by
    /// one thread inherits what another thread's helper waits on, so
    /// nothing a helper waits for may be a pipe that any fork can copy
    /// (two such helpers held each other's pipe open, and two tests of
    /// CI's hung until its time ran out).
    #[test]
    fn mappings_made_by_many_threads_at_once_all_end() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let (done, ended) = std::sync::mpsc::channel();
        for _ in 0..8 {
            let done = done.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let _ = IdMap::new(crate::SANDBOX_IDENTITY).unwrap();
                }
                let _ = done.send(());
            });
        }
        for n in 0..8 {
            ended
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{} of 8 threads' mappings never ended", 8 - n));
        }
    }

    #[test]
    fn an_idmapped_copy_shows_roots_files_as_the_sandbox_users() {
        if !nix::unistd::geteuid().is_root() {
            // Only root may map; the e2e tests run sandboxed tasks as root.
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "a").unwrap();
        let map = IdMap::new(crate::SANDBOX_IDENTITY).unwrap();
        let Ok(tree) = map.tree(dir.path()) else {
            // A file system without idmapped mounts: the caller hands over.
            return;
        };
        // Seen through the copy (as `/proc/self/fd/N`), the file is the
        // sandbox user's; on disk it is still root's.
        let seen = Path::new("/proc/self/fd")
            .join(tree.as_raw_fd().to_string())
            .join("a");
        assert_eq!(
            std::fs::metadata(&seen).unwrap().uid(),
            crate::SANDBOX_IDENTITY.0
        );
        assert_eq!(std::fs::metadata(dir.path().join("a")).unwrap().uid(), 0);
    }

    /// A path through a symbolic link (one a task could have planted at a
    /// granted path) is refused, not copied: the copy would show what the
    /// link names (the host's `/etc`, say) as the task's own.
    #[test]
    fn a_path_through_a_link_is_never_copied() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("sub")).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let map = IdMap::new(crate::SANDBOX_IDENTITY).unwrap();
        if map.tree(&real).is_err() {
            // A file system without idmapped mounts: the caller hands over.
            return;
        }
        for path in [dir.path().join("link"), dir.path().join("link/sub")] {
            let refused = map.tree(&path).unwrap_err().to_string();
            assert_eq!(
                refused,
                format!(
                    "open {} without following a link: Too many levels of symbolic links (os error 40)",
                    path.display()
                )
            );
        }
    }

    /// A mount the host has beneath a copied tree comes with the copy
    /// read-only and not idmapped (its root-owned files are not shown as
    /// the task's); the tree itself is writable. In a mount namespace of
    /// this test's own thread.
    #[test]
    fn mounts_beneath_an_idmapped_copy_stay_read_only_and_unmapped() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let (top, sub) = std::thread::spawn(|| {
            // SAFETY: unshares this thread's own mount namespace only.
            #[expect(unsafe_code, reason = "unshare(2): see the SAFETY comment")]
            let ret = unsafe { libc::unshare(libc::CLONE_NEWNS) };
            assert_eq!(ret, 0);
            let c = |p: &Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let (wt, at) = (dir.path().join("wt"), dir.path().join("at"));
            std::fs::create_dir_all(wt.join("sub")).unwrap();
            std::fs::create_dir(&at).unwrap();
            std::fs::write(wt.join("a"), "a").unwrap();
            let (root, sub) = (c(Path::new("/")), c(&wt.join("sub")));
            // SAFETY: valid C strings and null pointers, as mount(2) takes.
            #[expect(unsafe_code, reason = "mount(2): see the SAFETY comment")]
            unsafe {
                let none = std::ptr::null();
                assert_eq!(
                    libc::mount(
                        none,
                        root.as_ptr(),
                        none,
                        libc::MS_REC | libc::MS_PRIVATE,
                        none.cast()
                    ),
                    0
                );
                assert_eq!(
                    libc::mount(
                        c"tmpfs".as_ptr(),
                        sub.as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        none.cast()
                    ),
                    0
                );
            }
            std::fs::write(wt.join("sub/f"), "f").unwrap();
            let map = IdMap::new(crate::SANDBOX_IDENTITY).unwrap();
            let Ok(tree) = map.tree(&wt) else {
                return (None, None);
            };
            crate::mount_api::move_mount(&tree, &at).unwrap();
            let seen = |p: &Path| {
                let read_only = nix::sys::statvfs::statvfs(p)
                    .unwrap()
                    .flags()
                    .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
                (read_only, std::fs::metadata(p).unwrap().uid())
            };
            let found = (Some(seen(&at.join("a"))), Some(seen(&at.join("sub/f"))));
            // SAFETY: valid C strings.
            #[expect(unsafe_code, reason = "umount2(2): see the SAFETY comment")]
            unsafe {
                libc::umount2(c(&at).as_ptr(), libc::MNT_DETACH);
                libc::umount2(sub.as_ptr(), libc::MNT_DETACH);
            }
            found
        })
        .join()
        .unwrap();
        let Some(top) = top else {
            return;
        };
        assert_eq!(top, (false, crate::SANDBOX_IDENTITY.0));
        assert_eq!(sub, Some((true, 0)));
    }

    /// A mount made on a copy (as the launcher mounts the git view and
    /// overlays on a worktree's) does not reach the copy's source through
    /// a shared peer group: the copy is private. In a mount namespace of
    /// this test's own thread, over a tmpfs made shared for it.
    #[test]
    fn a_mount_on_an_idmapped_copy_does_not_propagate_to_its_source() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let seen = std::thread::spawn(|| {
            let mount = |source: Option<&str>, target: &Path, kind: Option<&str>, flags| {
                let c = |s: &str| std::ffi::CString::new(s).unwrap();
                let (source, kind) = (source.map(c), kind.map(c));
                let target = c(target.to_str().unwrap());
                let ptr = |s: &Option<std::ffi::CString>| {
                    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
                };
                // SAFETY: valid C strings or null, as mount(2) takes them.
                #[expect(unsafe_code, reason = "mount(2): see the SAFETY comment")]
                let ret = unsafe {
                    libc::mount(
                        ptr(&source),
                        target.as_ptr(),
                        ptr(&kind),
                        flags,
                        std::ptr::null(),
                    )
                };
                assert_eq!(
                    ret,
                    0,
                    "mount {}: {}",
                    target.to_str().unwrap(),
                    std::io::Error::last_os_error()
                );
            };
            // SAFETY: unshares this thread's own mount namespace only.
            #[expect(unsafe_code, reason = "unshare(2): see the SAFETY comment")]
            let ret = unsafe { libc::unshare(libc::CLONE_NEWNS) };
            assert_eq!(ret, 0);
            let dir = tempfile::tempdir().unwrap();
            let (shared, at) = (dir.path().join("shared"), dir.path().join("at"));
            std::fs::create_dir(&shared).unwrap();
            std::fs::create_dir(&at).unwrap();
            mount(None, Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE);
            mount(Some("tmpfs"), &shared, Some("tmpfs"), 0);
            mount(None, &shared, None, libc::MS_SHARED);
            std::fs::create_dir_all(shared.join("wt/sub")).unwrap();
            let map = IdMap::new(crate::SANDBOX_IDENTITY).unwrap();
            let seen = match map.tree(&shared.join("wt")) {
                // A kernel whose tmpfs takes no idmap: nothing to see.
                Err(_) => false,
                Ok(tree) => {
                    crate::mount_api::move_mount(&tree, &at).unwrap();
                    mount(Some("tmpfs"), &at.join("sub"), Some("tmpfs"), 0);
                    std::fs::write(at.join("sub/x"), "x").unwrap();
                    shared.join("wt/sub/x").exists()
                }
            };
            for target in [at.join("sub"), at.clone(), shared.clone()] {
                let c = std::ffi::CString::new(target.to_str().unwrap()).unwrap();
                // SAFETY: a valid C string.
                #[expect(unsafe_code, reason = "umount2(2): see the SAFETY comment")]
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
            seen
        })
        .join()
        .unwrap();
        assert!(!seen, "a mount on the copy reached its source");
    }
}
