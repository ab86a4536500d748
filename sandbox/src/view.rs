//! The file system a sandboxed worker sees: a fresh root that holds what
//! its policy grants and nothing else.
//!
//! Landlock decides which files a worker may open, but it does not cover
//! `connect` on pathname Unix sockets (before ABI 9), so a task could talk
//! to any host service whose socket it can name: the Docker daemon, the
//! ssh-agent, D-Bus, a database. The root cause is that those sockets are
//! in the worker's view at all. So each worker's init builds a new root (as
//! bubblewrap does): a small tmpfs into which only the granted paths are
//! bind-mounted, at their own paths (or, for a [`View`](crate::policy::View),
//! at another), then `pivot_root`s into it and detaches the host's tree.
//! `/run`, `/tmp`, `/var`, `/dev/shm` and home directories show only what
//! the task was granted, which for most tasks is nothing.
//!
//! Every mount is `nosuid` (and, but for device files, `nodev`); only the
//! worktree (or the paths a task owns within it, bound writable over its
//! read-only bind) and the private tmp are writable. The directories swarm creates
//! to hold the mounts are read-only once the root is built.
//!
//! [`plan`] runs in the launcher (it resolves paths, which may allocate and
//! fail); [`build`] runs in the worker's init, in its own mount namespace.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::cache::SystemPaths;
use crate::mount_api::cstr;
use crate::policy::Policy;

/// How a granted path is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Access {
    ReadOnly,
    Device,
    ReadWrite,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum What {
    /// Bind-mount `source` (a canonical host path, a directory when `dir`).
    Bind {
        source: PathBuf,
        dir: bool,
        access: Access,
    },
    /// A symlink whose text resolves, in the view, to a granted path: how
    /// `/bin -> usr/bin` and `/etc/localtime` stay links.
    Link(PathBuf),
    /// An overlay file system of `lower` beneath `upper` (host paths),
    /// a directory the worker may write, or read only where the rest of
    /// the worktree is read-only to it (a score's) (see
    /// [`crate::policy::Overlay`]).
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        access: Access,
    },
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub target: PathBuf,
    pub what: What,
    /// Granted to every worker of the run alike (a system path, a path a
    /// policy says is run-wide, a covered directory): a template may hold
    /// it (see [`crate::template`]).
    pub shared: bool,
}

/// The mounts of one worker's root, resolved before its init exists.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub entries: Vec<Entry>,
}

/// Where the new root is assembled (under the temporary root) when it
/// shows the host's `/` itself.
const NEW_ROOT: &str = "/newroot";
/// Where the host's root stays reachable while the new one is assembled
/// (a name no granted path has: it is removed before the worker exists).
pub(crate) const OLD_ROOT: &str = "/.swarm-oldroot";

/// Resolves `policy` into mounts. Missing paths are skipped, as Landlock
/// skips them; `/proc` is never bound (each worker gets a fresh one).
/// `views` are included only where they can be shown (`with_views`).
pub(crate) fn plan(policy: &Policy, with_views: bool, system: &mut SystemPaths) -> Plan {
    // The covered directories are the launcher's (copied here: resolving
    // below needs `system` whole).
    let covered = system.covered().to_vec();
    // (target made normal, target as given, source, access, granted to
    // every worker alike), borrowed from the policy: the launcher plans a
    // root for every request, and copying some sixty paths twice, or
    // comparing them component by component, was a third of it. A target
    // that is not absolute is no grant, and `/proc` is never bound.
    let mut grants: Vec<(PathBuf, &Path, &Path, Access, bool)> = Vec::new();
    let made = |target: &Path| normal(target).filter(|t| !t.starts_with("/proc"));
    for (paths, access) in [
        (&policy.read_write, Access::ReadWrite),
        (&policy.read_only, Access::ReadOnly),
        (&policy.devices, Access::Device),
    ] {
        for p in paths {
            if let Some(target) = made(p) {
                grants.push((target, p, p, access, system.shared(p)));
            }
        }
    }
    if with_views {
        for v in &policy.views {
            if let Some(target) = made(&v.target) {
                grants.push((target, &v.target, &v.source, Access::ReadOnly, false));
            }
        }
    }
    // Entries of a directory the launcher covered are shown by one bind of
    // the covering tmpfs, which holds them (see `cover_system_dirs`).
    for dir in &covered {
        let dir_is_normal = normal(dir).is_some_and(|n| n.as_os_str() == dir.as_os_str());
        grants.retain(|(target, given, ..)| !beneath(given, target, dir, dir_is_normal));
        let access = if dir == Path::new("/dev") {
            Access::Device
        } else {
            Access::ReadOnly
        };
        if let Some(target) = made(dir) {
            grants.push((target, dir, dir, access, true));
        }
    }
    // Resolve each grant: (target, canonical source, is a link at the
    // target, is a directory, access, shared).
    let mut resolved = Vec::new();
    for (target, _, source, access, shared) in grants {
        let Some(r) = system.resolve(source) else {
            continue;
        };
        resolved.push((target, r.real, r.is_link, r.is_dir, access, shared));
    }
    // One grant per target: the strongest access wins.
    resolved.sort_by(|a, b| a.0.cmp(&b.0).then(b.4.cmp(&a.4)));
    resolved.dedup_by(|later, kept| later.0 == kept.0);
    let bound: Vec<(PathBuf, PathBuf)> = resolved
        .iter()
        .filter(|r| !r.2)
        .map(|r| (r.1.clone(), r.0.clone()))
        .collect();
    let mut entries = Vec::with_capacity(resolved.len());
    for (target, real, is_link, dir, access, shared) in resolved {
        // A link whose destination is shown anyway stays a link; any other
        // link is replaced by what it points to (`/etc/resolv.conf` into
        // `/run`: the file, not `/run`).
        let shown = is_link
            .then(|| {
                bound.iter().find_map(|(source, at)| {
                    real.strip_prefix(source).ok().map(|rest| at.join(rest))
                })
            })
            .flatten();
        let what = match shown {
            Some(text) => What::Link(text),
            None => What::Bind {
                source: real,
                dir,
                access,
            },
        };
        entries.push(Entry {
            target,
            what,
            shared,
        });
    }
    // A grant beneath a link is reached through the link's destination.
    let links: Vec<PathBuf> = entries
        .iter()
        .filter(|e| matches!(e.what, What::Link(_)))
        .map(|e| e.target.clone())
        .collect();
    entries.retain(|e| !links.iter().any(|l| is_below(&e.target, l)));
    if with_views && !policy.overlays.is_empty() {
        for o in &policy.overlays {
            let Some(target) = made(&o.target) else {
                continue;
            };
            // Beneath a granted directory, in place of a grant of its own
            // target (a directory) if there is one: writable where that
            // grant or a directory above it is, read-only elsewhere (a
            // score's view of a worktree), never in place of anything else.
            let writable = |e: &Entry| {
                matches!(
                    e.what,
                    What::Bind {
                        dir: true,
                        access: Access::ReadWrite,
                        ..
                    }
                )
            };
            let beneath = entries.iter().any(|e| {
                matches!(e.what, What::Bind { dir: true, .. }) && is_below(&target, &e.target)
            });
            let granted = entries
                .iter()
                .any(|e| writable(e) && (is_below(&target, &e.target) || e.target == target));
            let taken = entries
                .iter()
                .any(|e| e.target == target && !matches!(e.what, What::Bind { dir: true, .. }));
            if !beneath || taken {
                continue;
            }
            let access = match granted {
                true => Access::ReadWrite,
                false => Access::ReadOnly,
            };
            entries.retain(|e| e.target != target);
            entries.push(Entry {
                target,
                what: What::Overlay {
                    lower: o.lower.clone(),
                    upper: o.upper.clone(),
                    work: o.work.clone(),
                    access,
                },
                shared: false,
            });
        }
        // In path order again (the rest already is): a directory before
        // what it holds.
        entries.sort_by(|a, b| a.target.cmp(&b.target));
    }
    Plan { entries }
}

/// `path.starts_with(dir)`, for paths made [`normal`] (absolute, no `.`,
/// `..`, repeated or trailing `/`), whose components are the text between
/// slashes: compared as bytes, not parsed component by component (the
/// launcher asks this of every pair of a plan's paths). And for such paths
/// `==` is equality of their bytes too.
pub(crate) fn is_within(path: &Path, dir: &Path) -> bool {
    let (path, dir) = (path.as_os_str().as_bytes(), dir.as_os_str().as_bytes());
    dir == b"/" || (path.starts_with(dir) && path.get(dir.len()).is_none_or(|&b| b == b'/'))
}

/// [`is_within`] `dir` but not `dir` itself, for normal paths.
pub(crate) fn is_below(path: &Path, dir: &Path) -> bool {
    path.as_os_str() != dir.as_os_str() && is_within(path, dir)
}

/// Whether the grant of `given` (made normal: `target`) lies beneath the
/// directory `dir` as written: `given.starts_with(dir) && given != dir`,
/// where a `..` is a component like any other. Without one, and with `dir`
/// normal, the normal target says the same, as bytes.
fn beneath(given: &Path, target: &Path, dir: &Path, dir_is_normal: bool) -> bool {
    if dir_is_normal && !has_parent_component(given) {
        is_below(target, dir)
    } else {
        given.starts_with(dir) && given != dir
    }
}

/// Whether `path` has a `..` component.
fn has_parent_component(path: &Path) -> bool {
    path.as_os_str()
        .as_bytes()
        .split(|&b| b == b'/')
        .any(|part| part == b"..")
}

/// `path` made absolute-normal (no `.`, `..` or repeated `/`), if it is
/// absolute.
fn normal(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Some(out)
}

fn errno(what: &str, path: &Path) -> String {
    format!(
        "{what} {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    )
}

pub(crate) fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&std::ffi::CStr>,
    flags: libc::c_ulong,
    data: Option<&std::ffi::CStr>,
) -> Result<(), String> {
    let target_c = cstr(target)?;
    let source_c = source.map(cstr).transpose()?;
    // SAFETY: every pointer is a valid C string (or null where the call
    // allows it) that outlives the call.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ret = unsafe {
        libc::mount(
            source_c.as_ref().map_or(c"none".as_ptr(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype.map_or(std::ptr::null(), std::ffi::CStr::as_ptr),
            flags,
            data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    if ret == -1 {
        Err(errno("mount", target))
    } else {
        Ok(())
    }
}

pub(crate) fn pivot_root(new_root: &Path, put_old: &Path) -> Result<(), String> {
    let (new_c, old_c) = (cstr(new_root)?, cstr(put_old)?);
    // SAFETY: two valid C strings.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, new_c.as_ptr(), old_c.as_ptr()) };
    if ret == -1 {
        Err(errno("pivot_root into", new_root))
    } else {
        Ok(())
    }
}

pub(crate) fn detach(path: &Path) -> Result<(), String> {
    let c = cstr(path)?;
    // SAFETY: a valid C string.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == -1 {
        return Err(errno("detach", path));
    }
    Ok(())
}

pub(crate) fn chdir(path: &Path) -> Result<(), String> {
    std::env::set_current_dir(path).map_err(|e| format!("enter {}: {e}", path.display()))
}

/// Below `root`: `path` (absolute) re-rooted there.
pub(crate) fn under(root: &str, path: &Path) -> PathBuf {
    Path::new(root).join(path.strip_prefix("/").unwrap_or(path))
}

/// Gives the mount just made at `at` the flags `access` wants: read-only
/// (but for the writable), `nosuid`, and `nodev` but for device files.
pub(crate) fn settle(at: &Path, access: Access) -> Result<(), String> {
    let private = libc::MS_NOSUID | libc::MS_NODEV;
    let (flags, already) = match access {
        Access::ReadWrite => (private, 0),
        Access::ReadOnly => (
            private | libc::MS_RDONLY,
            libc::ST_RDONLY | libc::ST_NOSUID | libc::ST_NODEV,
        ),
        Access::Device => (
            libc::MS_NOSUID | libc::MS_RDONLY,
            libc::ST_RDONLY | libc::ST_NOSUID,
        ),
    };
    // The run-wide namespace made every mount read-only, nosuid and (but
    // /dev) nodev, and a bind keeps its source's flags: a remount is needed
    // only where that did not take (and for the writable).
    if already != 0 && crate::mount_api::mount_flags(at) & already == already {
        return Ok(());
    }
    let locked = crate::mount_api::locked_flags(at);
    mount(
        None,
        at,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | flags | locked,
        None,
    )
}

/// Builds the worker's root from `plan` and enters it. Runs in the
/// worker's init, in fresh mount and PID namespaces, before anything of
/// the task exists. `proc` is called with the new root's fresh `/proc`
/// mounted read-write (to set its knobs); it is read-only afterwards.
pub(crate) fn build(
    plan: &Plan,
    trees: &[(PathBuf, std::os::fd::OwnedFd)],
    proc: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let fail = |e: String| format!("build the worker's file system: {e}");
    // A scratch root on a directory every system has; pivoting into it
    // leaves the host's whole tree reachable under OLD_ROOT for the binds.
    // The view is built in the scratch root itself (one tmpfs a worker,
    // made and torn down with its namespace), unless the plan shows the
    // host's `/` itself, which needs a root of its own to be bound on.
    let scratch = [Path::new("/tmp"), Path::new("/mnt"), Path::new("/proc")]
        .into_iter()
        .find(|p| p.is_dir())
        .ok_or_else(|| fail("find a directory to mount a scratch root on".into()))?;
    let nested = plan.entries.iter().any(|e| e.target == Path::new("/"));
    let new_root = if nested { NEW_ROOT } else { "/" };
    let private = libc::MS_NOSUID | libc::MS_NODEV;
    mount(
        Some(Path::new("tmpfs")),
        scratch,
        Some(c"tmpfs"),
        private,
        Some(c"mode=0755,size=1m"),
    )
    .map_err(fail)?;
    let scratch_dirs: &[&str] = if nested {
        &[NEW_ROOT, OLD_ROOT]
    } else {
        &[OLD_ROOT]
    };
    for dir in scratch_dirs {
        std::fs::create_dir(under(&scratch.display().to_string(), Path::new(dir)))
            .map_err(|e| fail(format!("create {dir}: {e}")))?;
    }
    chdir(scratch).map_err(fail)?;
    pivot_root(Path::new("."), &under(".", Path::new(OLD_ROOT))).map_err(fail)?;
    chdir(Path::new("/")).map_err(fail)?;
    // The new root holds nothing yet but what is made here.
    let mut dirs = Dirs::default();
    dirs.known.insert(PathBuf::from(new_root));
    if nested {
        mount(
            Some(Path::new("tmpfs")),
            Path::new(NEW_ROOT),
            Some(c"tmpfs"),
            private,
            Some(c"mode=0755,size=1m"),
        )
        .map_err(fail)?;
    }

    for entry in &plan.entries {
        let What::Bind {
            source,
            dir,
            access,
        } = &entry.what
        else {
            continue;
        };
        let at = under(new_root, &entry.target);
        dirs.mount_point(&at, *dir).map_err(fail)?;
        // An idmapped copy made for it is moved in instead (`crate::idmap`).
        match trees.iter().find(|(path, _)| path == source) {
            Some((_, tree)) => crate::mount_api::move_mount(tree, &at)
                .map_err(|e| fail(format!("mount {}: {e}", at.display())))?,
            None => mount(
                Some(&under(OLD_ROOT, source)),
                &at,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .map_err(fail)?,
        }
        settle(&at, *access).map_err(fail)?;
    }
    // Overlays go on the directories bound above (a worktree's).
    for entry in &plan.entries {
        let What::Overlay {
            lower,
            upper,
            work,
            access,
        } = &entry.what
        else {
            continue;
        };
        let at = under(new_root, &entry.target);
        dirs.mount_point(&at, true).map_err(fail)?;
        // The host's paths, and its /proc, are beneath the old root here.
        crate::mount_api::overlay_tree(
            &under(OLD_ROOT, lower),
            &under(OLD_ROOT, upper),
            &under(OLD_ROOT, work),
            &under(OLD_ROOT, Path::new("/proc")),
        )
        .and_then(|tree| crate::mount_api::move_mount(&tree, &at))
        .map_err(|e| {
            fail(format!(
                "show {} over {}: {e}",
                entry.target.display(),
                lower.display()
            ))
        })?;
        settle(&at, *access).map_err(fail)?;
    }
    for entry in &plan.entries {
        if let What::Link(text) = &entry.what {
            dirs.link(text, &under(new_root, &entry.target))
                .map_err(fail)?;
        }
    }
    let dev = Path::new(new_root).join("dev");
    if dev.is_dir() && dev.join("fd").symlink_metadata().is_err() {
        dev_links(&dev).map_err(fail)?;
    }
    // A private, size-limited `/dev/shm`: POSIX shared memory and
    // semaphores (Python's multiprocessing, pytest-xdist) need it, and the
    // host's would be a channel between tasks. It lives in this mount
    // namespace, so it is gone with the attempt; its pages count against
    // the task's cgroup like any memory it uses.
    let shm = dev.join("shm");
    if shm.is_dir() {
        mount(
            Some(Path::new("tmpfs")),
            &shm,
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(SHM_OPTIONS),
        )
        .map_err(|e| fail(format!("a private /dev/shm: {e}")))?;
    }

    let proc_dir = Path::new(new_root).join("proc");
    dirs.make(&proc_dir)
        .map_err(|e| fail(format!("create /proc: {e}")))?;
    mount(
        Some(Path::new("proc")),
        &proc_dir,
        Some(c"proc"),
        PROC_FLAGS,
        None,
    )
    .map_err(|e| fail(format!("a fresh proc file system: {e}")))?;
    proc(&proc_dir)?;
    mount(None, &proc_dir, None, PROC_READ_ONLY, None).map_err(fail)?;
    let read_only = |root: &Path| {
        mount(
            None,
            root,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | private,
            None,
        )
    };

    // Leave the host's tree behind for good: the binds keep what they show.
    if nested {
        read_only(Path::new(NEW_ROOT)).map_err(fail)?;
        detach(Path::new(OLD_ROOT)).map_err(fail)?;
        chdir(Path::new(NEW_ROOT)).map_err(fail)?;
        pivot_root(Path::new("."), Path::new(".")).map_err(fail)?;
        detach(Path::new(".")).map_err(fail)?;
    } else {
        detach(Path::new(OLD_ROOT)).map_err(fail)?;
        std::fs::remove_dir(OLD_ROOT).map_err(|e| fail(format!("remove {OLD_ROOT}: {e}")))?;
        read_only(Path::new("/")).map_err(fail)?;
    }
    chdir(Path::new("/")).map_err(fail)
}

/// The mount options of a worker's private `/dev/shm`: writable by
/// whoever the worker runs as (sticky, as the host's), as large as
/// Docker's default.
pub(crate) const SHM_OPTIONS: &std::ffi::CStr = c"mode=1777,size=64m,nr_inodes=16384";

/// How a worker's `/proc` is mounted: no set-id programs, devices or
/// programs run from it.
pub(crate) const PROC_FLAGS: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

/// The remount that makes a worker's `/proc` read-only once its process
/// cap is set: nothing in the worker may change a sysctl or another knob
/// of its namespaces (it has no capabilities left; this is the second
/// wall). One for every way a `/proc` is made (a view, a template, a cell).
pub(crate) const PROC_READ_ONLY: libc::c_ulong = libc::MS_REMOUNT | libc::MS_RDONLY | PROC_FLAGS;

/// Where a worker's private `/dev/shm` is, in its own root.
pub(crate) const SHM: &str = "/dev/shm";

/// What shells and tools expect of `/dev` beside the device files.
fn dev_links(dev: &Path) -> Result<(), String> {
    for (name, text) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        link(Path::new(text), &dev.join(name))?;
    }
    Ok(())
}

/// Replaces `/etc` and `/dev`, in the launcher's own mount namespace, by a
/// read-only tmpfs holding only the entries every worker is granted (bind
/// mounts of the originals, copies of small regular files of `/etc` (see
/// [`copyable`]), links where they lead to shown paths), and
/// returns the directories it covered. A worker's root then shows each with
/// one recursive bind instead of one mount per file: with some thirty
/// files of `/etc` granted, that was most of the mounts of a spawn.
/// Called once per run, before any worker exists.
pub(crate) fn cover_system_dirs(system: &mut SystemPaths) -> Result<Vec<PathBuf>, String> {
    use crate::policy::{SYSTEM_DEVICES, SYSTEM_READ_ONLY};
    let mut covered = Vec::new();
    for dir in ["/etc", "/dev"] {
        let dir = Path::new(dir);
        let etc = dir == Path::new("/etc");
        if !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let under = |list: &[&str]| -> Vec<PathBuf> {
            list.iter()
                .map(PathBuf::from)
                .filter(|p| p.starts_with(dir) && p != dir)
                .collect()
        };
        let policy = Policy {
            read_only: under(SYSTEM_READ_ONLY),
            devices: under(SYSTEM_DEVICES),
            ..Policy::default()
        };
        let plan = plan(&policy, false, system);
        // The originals, held open while the tmpfs covers their directory;
        // small regular files of `/etc` are read now and copied in.
        let mut sources = Vec::new();
        let mut copies = Vec::new();
        let mut room = COPIES_AT_MOST;
        for entry in &plan.entries {
            if let What::Bind {
                source,
                dir: is_dir,
                ..
            } = &entry.what
            {
                if let Some(copy) = copyable(etc, source, *is_dir)
                    && let Some(left) = room.checked_sub(copy.0.len() as u64)
                {
                    room = left;
                    copies.push((copy, &entry.target));
                    continue;
                }
                let file = std::fs::File::options()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
                    .open(source)
                    .map_err(|e| format!("open {}: {e}", source.display()))?;
                sources.push((file, &entry.target, *is_dir));
            }
        }
        let flags = libc::MS_NOSUID | libc::MS_NODEV;
        mount(
            Some(Path::new("tmpfs")),
            dir,
            Some(c"tmpfs"),
            flags,
            Some(c"mode=0755,size=4m"),
        )?;
        for ((bytes, mode), target) in &copies {
            mount_point(target, false)?;
            std::fs::write(target, bytes)
                .and_then(|()| {
                    std::fs::set_permissions(target, std::fs::Permissions::from_mode(*mode))
                })
                .map_err(|e| format!("copy {} into its cover: {e}", target.display()))?;
        }
        for (file, target, is_dir) in &sources {
            mount_point(target, *is_dir)?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(file);
            mount(
                Some(Path::new(&format!("/proc/self/fd/{fd}"))),
                target,
                None,
                libc::MS_BIND,
                None,
            )?;
        }
        for entry in &plan.entries {
            if let What::Link(text) = &entry.what {
                link(text, &entry.target)?;
            }
        }
        if dir == Path::new("/dev") {
            dev_links(dir)?;
            // Where each worker mounts its private `/dev/shm` (see `build`).
            std::fs::create_dir(dir.join("shm"))
                .map_err(|e| format!("create {}: {e}", dir.join("shm").display()))?;
        }
        mount(
            None,
            dir,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | flags,
            None,
        )?;
        covered.push(dir.to_path_buf());
    }
    system.set_covered(covered.clone());
    Ok(covered)
}

/// Largest file of `/etc` copied into its cover rather than bound.
const COPY_AT_MOST: u64 = 256 << 10;

/// Most bytes of `/etc` copied into its cover, all files together (the
/// cover's tmpfs holds 4 MiB); past it, files are bound as any other.
const COPIES_AT_MOST: u64 = 2 << 20;

/// The content and permission bits of `source` if it is copied into the
/// cover of `/etc` instead of bound: a regular file of at most
/// [`COPY_AT_MOST`] bytes that the launcher can read (one it cannot is
/// bound, as before). Each bind in the cover is a mount every worker's
/// namespace copies, and tears down at its end (two dozen of them, a tenth
/// of a sandboxed spawn's CPU), while the files (`passwd`, `hosts`,
/// `ld.so.cache`, ...) are small and read-only to workers anyway. A worker
/// sees them as they were when the run started.
fn copyable(etc: bool, source: &Path, is_dir: bool) -> Option<(Vec<u8>, u32)> {
    use std::io::Read;
    if !etc || is_dir {
        return None;
    }
    let mut file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(source)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > COPY_AT_MOST {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.by_ref()
        .take(COPY_AT_MOST + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > COPY_AT_MOST {
        return None;
    }
    // Never a set-id bit (these are data, not programs), and no write
    // bit: run as another user than root, a worker is the copies' owner,
    // and only the read-only mount and Landlock would stand in its way.
    Some((bytes, meta.permissions().mode() & 0o555))
}

/// Directories known to exist while a root is built: each is made (or
/// found) once. `create_dir_all` for every mount point walked and tried
/// each deep path from the top again (a worktree is a dozen components
/// down), a sixth of a sandboxed spawn's work in the worker's init.
#[derive(Default)]
pub(crate) struct Dirs {
    pub known: std::collections::HashSet<PathBuf>,
}

impl Dirs {
    /// Makes `dir` (absolute) and its missing ancestors.
    pub fn make(&mut self, dir: &Path) -> std::io::Result<()> {
        if self.known.contains(dir) {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut at = dir;
        while !self.known.contains(at) {
            missing.push(at);
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            match std::fs::create_dir(dir) {
                Ok(()) => {}
                // Made before, or in a bound directory: a mount on what
                // is not a directory fails later with its own error.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if dir == Path::new("/") => drop(e),
                Err(e) => return Err(e),
            }
            self.known.insert(dir.to_path_buf());
        }
        Ok(())
    }

    /// Makes `at` exist as a directory (or an empty file) to mount on.
    pub fn mount_point(&mut self, at: &Path, dir: bool) -> Result<(), String> {
        let create = |e: std::io::Error| format!("create mount point {}: {e}", at.display());
        if dir {
            return self.make(at).map_err(create);
        }
        if let Some(parent) = at.parent() {
            self.make(parent).map_err(create)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(at)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(create(e)),
        }
    }

    /// Makes a symbolic link `at` to `text` (one already there is kept).
    pub fn link(&mut self, text: &Path, at: &Path) -> Result<(), String> {
        if let Some(parent) = at.parent() {
            self.make(parent)
                .map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        link_only(text, at)
    }
}

/// Makes `at` exist as a directory (or an empty file) to mount on.
fn mount_point(at: &Path, dir: bool) -> Result<(), String> {
    Dirs::default().mount_point(at, dir)
}

fn link(text: &Path, at: &Path) -> Result<(), String> {
    Dirs::default().link(text, at)
}

/// A symbolic link `at` to `text`, its directory there (one already there
/// is kept).
fn link_only(text: &Path, at: &Path) -> Result<(), String> {
    match std::os::unix::fs::symlink(text, at) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(format!("create link {}: {e}", at.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(plan: &Plan) -> Vec<String> {
        plan.entries
            .iter()
            .map(|e| match &e.what {
                What::Bind { access, .. } => format!("{} {access:?}", e.target.display()),
                What::Link(text) => format!("{} -> {}", e.target.display(), text.display()),
                What::Overlay { lower, access, .. } => {
                    format!("{} over {} {access:?}", e.target.display(), lower.display())
                }
            })
            .collect()
    }

    #[test]
    fn paths_compared_as_bytes_say_what_their_components_say() {
        // Every path of up to three parts from these, absolute or not,
        // with single or doubled slashes: as written, and made normal.
        let parts = ["", ".", "..", "etc", "etcx", "e", "dev", "usr"];
        let mut written = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = written
                .iter()
                .flat_map(|w| {
                    parts.iter().flat_map(move |p| {
                        ["/", "//"]
                            .into_iter()
                            .map(move |sep| format!("{w}{sep}{p}"))
                    })
                })
                .collect();
            written.extend(longer);
        }
        written.extend(["etc", "etc/x", "./etc", "../etc"].map(String::from));
        let dirs = [
            "/",
            "/etc",
            "/e",
            "/etc/x",
            "/etc/",
            "/./etc",
            "/usr/../etc",
            "etc",
        ];
        let mut checked = 0;
        for given in &written {
            let given = Path::new(given);
            let Some(target) = normal(given) else {
                continue;
            };
            for dir in dirs {
                let dir = Path::new(dir);
                let dir_is_normal = normal(dir).is_some_and(|n| n.as_os_str() == dir.as_os_str());
                assert_eq!(
                    beneath(given, &target, dir, dir_is_normal),
                    given.starts_with(dir) && given != dir,
                    "{} beneath {}",
                    given.display(),
                    dir.display()
                );
                if dir_is_normal {
                    assert_eq!(
                        is_within(&target, dir),
                        target.starts_with(dir),
                        "{} within {}",
                        target.display(),
                        dir.display()
                    );
                    assert_eq!(target.as_os_str() == dir.as_os_str(), target == dir);
                }
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn links_to_shown_paths_stay_links_and_others_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(root.join("run/resolve")).unwrap();
        std::fs::write(root.join("run/resolve/stub.conf"), "x").unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink(root.join("run/resolve/stub.conf"), root.join("resolv.conf"))
            .unwrap();
        let policy = Policy {
            read_only: vec![
                root.join("usr"),
                root.join("bin"),
                root.join("resolv.conf"),
                root.join("missing"),
                "/proc".into(),
            ],
            read_write: vec![root.join("usr/bin/../bin")],
            ..Policy::default()
        };
        let plan = plan(&policy, true, &mut SystemPaths::default());
        let r = root.display();
        assert_eq!(
            targets(&plan),
            [
                format!("{r}/bin -> {r}/usr/bin"),
                format!("{r}/resolv.conf ReadOnly"),
                format!("{r}/usr ReadOnly"),
                format!("{r}/usr/bin ReadWrite"),
            ]
        );
        let What::Bind { source, dir, .. } = &plan.entries[1].what else {
            panic!("not a bind");
        };
        assert_eq!(*source, root.join("run/resolve/stub.conf"));
        assert!(!dir);
    }

    #[test]
    fn owned_paths_are_bound_writable_after_their_read_only_worktree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("wt/src/a")).unwrap();
        std::fs::write(root.join("wt/f.txt"), "f").unwrap();
        let policy = Policy {
            read_only: vec![root.join("wt")],
            read_write: vec![root.join("wt/src/a"), root.join("wt/f.txt")],
            ..Policy::default()
        };
        let plan = plan(&policy, true, &mut SystemPaths::default());
        let r = root.display();
        // In mount order: the worktree first, then what is bound over it.
        assert_eq!(
            targets(&plan),
            [
                format!("{r}/wt ReadOnly"),
                format!("{r}/wt/f.txt ReadWrite"),
                format!("{r}/wt/src/a ReadWrite"),
            ]
        );
    }

    #[test]
    fn a_covered_directory_hides_what_lies_beneath_it_even_another_cover() {
        let dir = tempfile::tempdir().unwrap();
        let (outer, inner) = (dir.path().join("a"), dir.path().join("a/b"));
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join("f"), "x").unwrap();
        let beside = dir.path().join("c");
        std::fs::create_dir(&beside).unwrap();
        let policy = Policy {
            read_only: vec![inner.join("f"), beside.join("../a/b/f"), beside.clone()],
            ..Policy::default()
        };
        let mut system = SystemPaths::default();
        // The inner first: the outer's cover hides it as it hides the
        // grants beneath it (as written: `c/../a/b/f` is beneath neither).
        system.set_covered(vec![inner.clone(), outer.clone()]);
        let shown = |p: &Path, access: &str| format!("{} {access}", p.display());
        assert_eq!(
            targets(&plan(&policy, true, &mut system)),
            [
                shown(&outer, "ReadOnly"),
                shown(&inner.join("f"), "ReadOnly"),
                shown(&beside, "ReadOnly")
            ]
        );
    }

    #[test]
    fn overlays_are_shown_beneath_a_granted_directory_after_it_writable_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let wt = dir.path().join("wt");
        std::fs::create_dir_all(wt.join("node_modules")).unwrap();
        let overlay = |target: &Path| crate::policy::Overlay {
            target: target.to_path_buf(),
            lower: "/kept/node_modules".into(),
            upper: "/layers/upper".into(),
            work: "/layers/work".into(),
        };
        let policy = Policy {
            read_write: vec![wt.clone()],
            read_only: vec![dir.path().join("ro")],
            overlays: vec![
                overlay(&wt.join("node_modules")),
                // Beneath a read-only directory (read-only), and in place
                // of a granted directory itself (not shown).
                overlay(&dir.path().join("ro/x")),
                overlay(&wt),
            ],
            ..Policy::default()
        };
        std::fs::create_dir_all(dir.path().join("ro/x")).unwrap();
        let mut system = SystemPaths::default();
        // A worktree read-only but for some paths and the overlay's own
        // target: the overlay takes that grant's place.
        let restricted = Policy {
            read_write: vec![wt.join("node_modules")],
            read_only: vec![wt.clone()],
            overlays: vec![overlay(&wt.join("node_modules"))],
            ..Policy::default()
        };
        assert_eq!(
            targets(&plan(&restricted, true, &mut system)),
            [
                format!("{} ReadOnly", wt.display()),
                format!(
                    "{}/node_modules over /kept/node_modules ReadWrite",
                    wt.display()
                ),
            ]
        );
        // All read-only (a score's view): a read-only overlay.
        let score = Policy {
            read_only: vec![wt.clone()],
            overlays: vec![overlay(&wt.join("node_modules"))],
            ..Policy::default()
        };
        assert_eq!(
            targets(&plan(&score, true, &mut system)),
            [
                format!("{} ReadOnly", wt.display()),
                format!(
                    "{}/node_modules over /kept/node_modules ReadOnly",
                    wt.display()
                ),
            ]
        );
        let shown = targets(&plan(&policy, true, &mut system));
        let wt = wt.display();
        assert_eq!(
            shown,
            [
                format!("{}/ro ReadOnly", dir.path().display()),
                format!(
                    "{}/ro/x over /kept/node_modules ReadOnly",
                    dir.path().display()
                ),
                format!("{wt} ReadWrite"),
                format!("{wt}/node_modules over /kept/node_modules ReadWrite"),
            ]
        );
        // Where no namespace shows them: none.
        assert_eq!(targets(&plan(&policy, false, &mut system)).len(), 2);
    }

    #[test]
    fn views_are_shown_only_where_they_can_be() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy {
            views: vec![crate::policy::View {
                source: dir.path().to_path_buf(),
                target: "/repo/.git".into(),
            }],
            ..Policy::default()
        };
        let mut system = SystemPaths::default();
        assert_eq!(
            targets(&plan(&policy, true, &mut system)),
            ["/repo/.git ReadOnly"]
        );
        assert!(plan(&policy, false, &mut system).entries.is_empty());
    }
}
