//! The confinement steps of a worker process, each a small function the
//! launcher's child calls in order just before `execve` (see
//! `launcher::child`): limits, file descriptors, capabilities,
//! `no_new_privs`, Landlock. The Landlock ruleset is built in the launcher
//! (once per worker, before its init exists) and only applied in the
//! child.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope,
};

use crate::cache::{Remembered, SystemPaths};
use crate::launcher::raw::{self, syscall4};

use crate::policy::{GatewayPorts, Network, Policy};

/// The Landlock ABI swarm needs: 6 adds signal and abstract-socket scopes
/// (4 added TCP rules).
pub const REQUIRED_ABI: ABI = ABI::V6;

/// Why a worker could not be confined. The worker is not started.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("set resource limit {name}: {source}")]
    Limit {
        name: &'static str,
        source: std::io::Error,
    },
    #[error("close inherited file descriptors: {0}")]
    Fds(std::io::Error),
    #[error("drop capabilities: {0}")]
    Capabilities(std::io::Error),
    #[error("switch to the sandbox's unprivileged user: {0}")]
    Identity(std::io::Error),
    #[error("set no_new_privs: {0}")]
    NoNewPrivs(std::io::Error),
    #[error("apply the Landlock ruleset: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error("apply the Landlock ruleset: {0}")]
    Restrict(std::io::Error),
    #[error("build the Landlock ruleset: add a path's rule: {0}")]
    AddRule(std::io::Error),
    #[error(
        "apply the Landlock ruleset: the kernel enforces it only partly (Landlock ABI {REQUIRED_ABI:?} or newer is needed)"
    )]
    LandlockPartial,
}

impl ConfineError {
    /// The failure as its [`Display`](std::fmt::Display) would say it,
    /// unformatted: the step, a detail after it (a limit's name) and the
    /// errno that follows a colon. For a process that must not allocate
    /// (a sandbox cell's worker beside the launcher, see
    /// `launcher::child::armed_worker`).
    pub(crate) fn parts(&self) -> (&'static str, &'static str, Option<i32>) {
        let errno = |e: &std::io::Error| e.raw_os_error();
        match self {
            Self::Limit { name, source } => ("set resource limit ", name, errno(source)),
            Self::Fds(e) => ("close inherited file descriptors", "", errno(e)),
            Self::Capabilities(e) => ("drop capabilities", "", errno(e)),
            Self::Identity(e) => ("switch to the sandbox's unprivileged user", "", errno(e)),
            Self::NoNewPrivs(e) => ("set no_new_privs", "", errno(e)),
            Self::Restrict(e) => ("apply the Landlock ruleset", "", errno(e)),
            Self::AddRule(e) => (
                "build the Landlock ruleset: add a path's rule",
                "",
                errno(e),
            ),
            Self::Landlock(_) | Self::LandlockPartial => ("apply the Landlock ruleset", "", None),
        }
    }
}

/// A raw system call's answer (see [`raw`]) as a `Result`: the error its
/// negative errno names. The steps here make raw calls, not libc's: a
/// sandbox cell's worker takes them beside the launcher, in its memory,
/// where a libc wrapper's failure would write the launcher's `errno`.
fn checked<T>(ret: isize, wrap: impl FnOnce(std::io::Error) -> T) -> Result<isize, T> {
    if ret < 0 {
        let errno = i32::try_from(-ret).unwrap_or(libc::EIO);
        Err(wrap(std::io::Error::from_raw_os_error(errno)))
    } else {
        Ok(ret)
    }
}

/// Sets `no_new_privs`: nothing the worker executes gains privileges.
pub(crate) fn no_new_privs() -> Result<(), ConfineError> {
    // SAFETY: prctl with integer arguments only.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ret = unsafe { prctl(libc::PR_SET_NO_NEW_PRIVS, 1) };
    checked(ret, ConfineError::NoNewPrivs).map(drop)
}

/// `prctl(option, arg, 0, 0, 0)`, raw.
///
/// # Safety
///
/// As for `prctl` with these arguments (integers for every option used
/// here).
#[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
unsafe fn prctl(option: libc::c_int, arg: libc::c_ulong) -> isize {
    // SAFETY: the caller's promise.
    unsafe {
        syscall4(
            libc::SYS_prctl,
            option.unsigned_abs() as usize,
            arg as usize,
            0,
            0,
        )
    }
}

/// Sets the worker's rlimits. `nproc` is false where a PID namespace caps
/// the worker's processes instead (RLIMIT_NPROC counts every process of the
/// user, so it would be shared by all workers of a run).
pub(crate) fn set_limits(policy: &Policy, nproc: bool) -> Result<(), ConfineError> {
    let l = policy.limits;
    let limits = [
        (
            "RLIMIT_NPROC",
            libc::RLIMIT_NPROC,
            if nproc {
                l.processes
            } else {
                libc::RLIM_INFINITY
            },
        ),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE, l.open_files),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE, l.file_size),
        ("RLIMIT_AS", libc::RLIMIT_AS, l.address_space),
        ("RLIMIT_CPU", libc::RLIMIT_CPU, l.cpu_seconds),
        // No core dumps of a worker's memory into its worktree.
        ("RLIMIT_CORE", libc::RLIMIT_CORE, 0),
    ];
    for (name, resource, value) in limits {
        if value == libc::RLIM_INFINITY {
            continue;
        }
        let limit = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: `limit` is a valid rlimit for the duration of the call;
        // no old limit is asked for.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let ret = unsafe {
            syscall4(
                libc::SYS_prlimit64,
                0,
                resource as usize,
                (&raw const limit) as usize,
                0,
            )
        };
        checked(ret, |source| ConfineError::Limit { name, source })?;
    }
    Ok(())
}

/// Closes every fd above 2 except `keep`, a list sorted, every fd in it
/// above 2: it allocates nothing, for a process that shares its parent's
/// memory.
pub(crate) fn close_fds_sorted(keep: &[u32]) -> Result<(), ConfineError> {
    let mut from = 3u32;
    for &fd in keep.iter().chain(std::iter::once(&u32::MAX)) {
        if fd > from {
            // SAFETY: close_range only closes descriptors of this process.
            #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
            let ret = unsafe {
                syscall4(
                    libc::SYS_close_range,
                    from as usize,
                    (fd - 1) as usize,
                    0,
                    0,
                )
            };
            checked(ret, ConfineError::Fds)?;
        }
        from = fd.saturating_add(1);
    }
    Ok(())
}

/// Set once the launcher emptied its bounding set, which each of its
/// workers inherits (see `launcher::cell::empty_bounding_set`): a worker
/// then skips reading it back, one `prctl` per capability.
static BOUNDING_SET_EMPTY: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Says that this process's bounding set is empty, and so will be every
/// descendant's that makes no user namespace.
pub(crate) fn note_bounding_set_empty() {
    BOUNDING_SET_EMPTY.store(true, std::sync::atomic::Ordering::Release);
}

/// Switches the process to `identity` (uid, gid; no supplementary groups),
/// if given, and leaves it without any capability, also when it runs as
/// root: empty bounding and ambient sets, and securebits so that `execve`
/// as uid 0 does not grant them back.
pub(crate) fn drop_capabilities(identity: Option<(u32, u32)>) -> Result<(), ConfineError> {
    const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
    const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
    const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
    const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
    const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
    const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
    const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_SETPCAP: u32 = 8;

    // SAFETY: prctl/capset with valid arguments; the structs live across
    // the calls.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        let has_setpcap = {
            let mut header = CapHeader {
                version: LINUX_CAPABILITY_VERSION_3,
                pid: 0,
            };
            let mut data = [CapData {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            }; 2];
            syscall4(
                libc::SYS_capget,
                (&raw mut header) as usize,
                data.as_mut_ptr() as usize,
                0,
                0,
            ) == 0
                && data[0].effective & (1 << CAP_SETPCAP) != 0
        };
        checked(
            prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            ),
            ConfineError::Capabilities,
        )?;
        if has_setpcap {
            // The launcher's workers inherit its empty set.
            let inherited_empty = BOUNDING_SET_EMPTY.load(std::sync::atomic::Ordering::Acquire);
            if !inherited_empty {
                for cap in 0..=63 {
                    // EINVAL past the last capability the kernel knows. A
                    // drop makes new credentials (freed after an RCU grace
                    // period), a read does not.
                    match prctl(libc::PR_CAPBSET_READ, cap) {
                        ..0 => break,
                        0 => {}
                        _ => {
                            if prctl(libc::PR_CAPBSET_DROP, cap) < 0 {
                                break;
                            }
                        }
                    }
                }
            }
            let bits = SECBIT_NOROOT
                | SECBIT_NOROOT_LOCKED
                | SECBIT_NO_SETUID_FIXUP
                | SECBIT_NO_SETUID_FIXUP_LOCKED
                | SECBIT_KEEP_CAPS_LOCKED
                | SECBIT_NO_CAP_AMBIENT_RAISE
                | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
            checked(
                prctl(libc::PR_SET_SECUREBITS, bits),
                ConfineError::Capabilities,
            )?;
        }
        // With SECBIT_NO_SETUID_FIXUP the switch keeps the capabilities
        // until the capset below clears them all. (Raw calls change this
        // process's credentials only, which is all a worker has.)
        if let Some((uid, gid)) = identity {
            let (uid, gid) = (uid as usize, gid as usize);
            checked(
                syscall4(libc::SYS_setgroups, 0, 0, 0, 0),
                ConfineError::Identity,
            )?;
            checked(
                raw::syscall5(libc::SYS_setresgid, gid, gid, gid, 0, 0),
                ConfineError::Identity,
            )?;
            checked(
                raw::syscall5(libc::SYS_setresuid, uid, uid, uid, 0, 0),
                ConfineError::Identity,
            )?;
        }
        let mut header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        let ret = syscall4(
            libc::SYS_capset,
            (&raw mut header) as usize,
            data.as_ptr() as usize,
            0,
            0,
        );
        checked(ret, ConfineError::Capabilities)?;
    }
    Ok(())
}

/// The part of a worker's Landlock ruleset that comes from the launcher's
/// remembered descriptors (system and run-wide paths, see
/// [`SystemPaths`]), with the rights the ruleset handles: the same for
/// every task of a run granted alike. So the launcher builds the next one
/// ahead, while it waits for its workers (see `launcher::server`), and a
/// spawn whose part is the same adds only its task's own paths: some
/// forty-five `landlock_add_rule` calls off the way from request to
/// worker. Descriptors are remembered for the launcher's life, so their
/// numbers name their paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shared {
    /// Whether TCP is handled (every network but `full`), and the ports
    /// a gateway's worker may connect to.
    network: (bool, Option<GatewayPorts>),
    /// (descriptor, access) of each rule, in order.
    rules: Vec<(RawFd, u64)>,
}

/// A [`Shared`] part built: the ruleset, to be completed with a task's
/// own paths.
#[derive(Debug)]
pub(crate) struct Built {
    shared: Shared,
    ruleset: OwnedFd,
}

impl Built {
    /// Builds `shared`'s ruleset.
    pub(crate) fn new(shared: Shared) -> Result<Self, ConfineError> {
        let abi = REQUIRED_ABI;
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(abi))?
            .scope(Scope::from_all(abi))?;
        if shared.network.0 {
            ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
        }
        let mut created = ruleset.create()?;
        for port in shared.network.1.into_iter().flat_map(GatewayPorts::iter) {
            created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
        }
        // Path rules straight to the kernel: the crate asks the file
        // system whether each path is a file (a `stat` per rule, fifty a
        // spawn), which the launcher knows of the paths it opened once.
        let ruleset = into_fd(created)?;
        for &(fd, access) in &shared.rules {
            add_rule_fd(ruleset.as_raw_fd(), fd, access).map_err(ConfineError::AddRule)?;
        }
        Ok(Self { shared, ruleset })
    }
}

/// The worker's Landlock ruleset, built in the launcher (paths that do not
/// exist are skipped): read-write beneath `read_write`, read-only beneath
/// `read_only` (and the sources of `views`, where they are shown), devices,
/// no TCP unless the network is open, and the signal and abstract-socket
/// scopes. `ahead` is a shared part built ahead, taken if it is this
/// policy's; returns the ruleset and this policy's shared part.
pub(crate) fn ruleset(
    policy: &Policy,
    with_views: bool,
    system: &mut SystemPaths,
    ahead: Option<Built>,
) -> Result<(OwnedFd, Shared), ConfineError> {
    let abi = REQUIRED_ABI;
    let read = AccessFs::from_read(abi);
    let device = read | AccessFs::WriteFile | AccessFs::IoctlDev;
    let all = AccessFs::from_all(abi);
    let file_access = |is_file: bool, access: BitFlags<AccessFs>| {
        if is_file {
            access & AccessFs::from_file(abi)
        } else {
            access
        }
    };
    let ports = match policy.network {
        Network::Gateway { ports } => Some(ports),
        Network::None | Network::Full => None,
    };
    let mut shared = Shared {
        network: (policy.network != Network::Full, ports),
        rules: Vec::new(),
    };
    // System and run-wide paths through the launcher's descriptors, opened
    // once a run; the task's own paths afresh (skipped if missing).
    let mut fresh: Vec<(&Path, BitFlags<AccessFs>)> = Vec::new();
    let granted = [
        (&policy.read_only, read),
        (&policy.devices, device),
        (&policy.read_write, all),
    ];
    for (paths, access) in granted {
        for path in paths {
            match system.fd(path) {
                Remembered::Open(fd, is_file) => {
                    let access = file_access(is_file, access).bits();
                    shared.rules.push((fd.as_raw_fd(), access));
                }
                Remembered::Missing => {}
                Remembered::No => fresh.push((path, access)),
            }
        }
    }
    let views = policy.views.iter().filter(|_| with_views);
    fresh.extend(views.map(|v| (v.source.as_path(), read)));
    let built = match ahead {
        Some(built) if built.shared == shared => built,
        _ => Built::new(shared.clone())?,
    };
    let ruleset = built.ruleset;
    for (path, access) in fresh {
        let Ok(file) = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(path)
        else {
            continue;
        };
        let is_file = !file.metadata().map_err(ConfineError::AddRule)?.is_dir();
        add_rule_fd(
            ruleset.as_raw_fd(),
            file.as_raw_fd(),
            file_access(is_file, access).bits(),
        )
        .map_err(ConfineError::AddRule)?;
    }
    Ok((ruleset, shared))
}

/// Adds a read-only rule for `path` to the ruleset `ruleset` (an fd the
/// launcher made): for a mount made after the ruleset was built (the
/// worker's fresh `/proc`), whose root is not the inode a rule built
/// earlier names. Raw calls on the fd, since init, which makes them,
/// shares the launcher's memory and its ruleset value.
pub(crate) fn allow_read_fd(ruleset: RawFd, path: &Path) -> Result<(), std::io::Error> {
    add_path_rule(ruleset, path, AccessFs::from_read(REQUIRED_ABI).bits())
}

/// [`allow_read_fd`], read-write (the worker's private `/dev/shm`).
pub(crate) fn allow_write_fd(ruleset: RawFd, path: &Path) -> Result<(), std::io::Error> {
    add_path_rule(ruleset, path, AccessFs::from_all(REQUIRED_ABI).bits())
}

/// `landlock_add_rule(ruleset, PATH_BENEATH, {access, fd of path})`.
fn add_path_rule(ruleset: RawFd, path: &Path, access: u64) -> Result<(), std::io::Error> {
    let dir = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)?;
    add_rule_fd(ruleset, std::os::fd::AsRawFd::as_raw_fd(&dir), access)
}

/// `landlock_add_rule(ruleset, PATH_BENEATH, {access, parent})`.
fn add_rule_fd(ruleset: RawFd, parent: RawFd, access: u64) -> Result<(), std::io::Error> {
    // The kernel's `struct landlock_path_beneath_attr`, packed.
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    let attr = PathBeneath {
        allowed_access: access,
        parent_fd: parent,
    };
    const LANDLOCK_RULE_PATH_BENEATH: libc::c_long = 1;
    // SAFETY: `attr` is a valid rule attribute for the duration of the
    // call; the ruleset and the path's fd are open.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &raw const attr,
            0,
        )
    };
    if ret == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Restricts the calling process (and its future children) by the
/// ruleset `ruleset` (an fd made by [`ruleset`] and [`into_fd`]).
/// `no_new_privs` must be set.
pub(crate) fn restrict_fd(ruleset: RawFd) -> Result<(), ConfineError> {
    // SAFETY: integer arguments only.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ret = unsafe {
        syscall4(
            libc::SYS_landlock_restrict_self,
            ruleset.unsigned_abs() as usize,
            0,
            0,
            0,
        )
    };
    checked(ret, ConfineError::Restrict).map(drop)
}

/// The fd of a ruleset made by [`ruleset`], which the worker applies with
/// [`restrict_fd`]: the ruleset is created with every right required
/// (`CompatLevel::HardRequirement`), so one that exists is enforced in
/// full, and one without an fd (Landlock missing) is refused here.
pub(crate) fn into_fd(ruleset: RulesetCreated) -> Result<OwnedFd, ConfineError> {
    Option::<OwnedFd>::from(ruleset).ok_or(ConfineError::LandlockPartial)
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    /// Whether a process restricted by `ruleset` may open `file`: a child
    /// forked for it, making raw calls only, restricts itself and tries.
    fn can_read(ruleset: &OwnedFd, file: &Path) -> bool {
        let file = CString::new(file.as_os_str().as_bytes()).unwrap();
        // SAFETY: the child makes raw calls on what was prepared before the
        // fork and leaves with `_exit`.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
            if pid == 0 {
                let restricted = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                    && libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0) == 0;
                if !restricted {
                    libc::_exit(2);
                }
                let fd = libc::open(file.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                libc::_exit(if fd >= 0 { 0 } else { 1 });
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            assert!(libc::WIFEXITED(status), "the child: {status:#x}");
            match libc::WEXITSTATUS(status) {
                0 => true,
                1 => false,
                _ => panic!("the child could not restrict itself"),
            }
        }
    }

    #[test]
    fn a_ruleset_built_ahead_serves_only_a_task_granted_alike() {
        let dir = tempfile::tempdir().unwrap();
        let granted = dir.path().join("toolchain");
        std::fs::create_dir(&granted).unwrap();
        let file = granted.join("bin");
        std::fs::write(&file, "x").unwrap();
        // A run-wide path: its rule is in the shared part, by descriptor.
        let mut system = SystemPaths::default();
        system.note_run_wide(std::slice::from_ref(&granted));
        let wide = Policy::for_worker(Vec::new(), vec![granted.clone()]);
        let narrow = Policy::for_worker(Vec::new(), Vec::new());
        let (alone, wide_part) = ruleset(&wide, false, &mut system, None).unwrap();
        assert!(can_read(&alone, &file));
        let (_, narrow_part) = ruleset(&narrow, false, &mut system, None).unwrap();
        assert_ne!(wide_part, narrow_part);

        // Built ahead for the wide task, offered to a narrow one: not taken.
        let ahead = Built::new(wide_part.clone()).unwrap();
        let (taken, part) = ruleset(&narrow, false, &mut system, Some(ahead)).unwrap();
        assert_eq!(part, narrow_part);
        assert!(
            !can_read(&taken, &file),
            "the narrow task got the wide grant"
        );
        // Offered to a task granted alike: taken, and it grants the same.
        let ahead = Built::new(wide_part.clone()).unwrap();
        let ahead_fd = ahead.ruleset.as_raw_fd();
        let (taken, part) = ruleset(&wide, false, &mut system, Some(ahead)).unwrap();
        assert_eq!(part, wide_part);
        assert_eq!(taken.as_raw_fd(), ahead_fd, "the one built ahead");
        assert!(can_read(&taken, &file));
        // A task's own paths are added to the one taken.
        let own_dir = dir.path().join("worktree");
        std::fs::create_dir(&own_dir).unwrap();
        let own_file = own_dir.join("lib.rs");
        std::fs::write(&own_file, "x").unwrap();
        let own = Policy::for_worker(vec![own_dir], Vec::new());
        let ahead = Built::new(narrow_part.clone()).unwrap();
        let ahead_fd = ahead.ruleset.as_raw_fd();
        let (taken, part) = ruleset(&own, false, &mut system, Some(ahead)).unwrap();
        assert_eq!((part, taken.as_raw_fd()), (narrow_part, ahead_fd));
        assert!(can_read(&taken, &own_file));
        assert!(!can_read(&taken, &file));
    }
}
