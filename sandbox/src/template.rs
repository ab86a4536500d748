//! The part of workers' roots that every worker of a run is shown alike,
//! built once in a mount namespace of its own: a template.
//!
//! A worker's root (see [`crate::view`]) holds some forty mounts: the
//! system directories, the covers of `/etc` and `/dev`, toolchains, shared
//! build caches, and a handful of the task's own (its worktree, its tmp,
//! its view of the git directory). Building all of them for every worker
//! (a scratch root, a `pivot_root`, a bind per grant, the host's tree
//! detached again) was most of a sandboxed spawn's kernel time. So the
//! launcher builds the shared part once, in a namespace a short-lived
//! helper makes and the launcher keeps by an fd ([`Templates`]); each
//! worker's init enters a copy of it (`setns`, then `unshare`) and adds
//! only its task's own mounts, which the launcher hands it as detached
//! trees (`open_tree`) that init moves into place (`move_mount`), see
//! [`enter`].
//!
//! What a worker sees is the same as with [`crate::view::build`]: the same
//! entries at the same paths with the same flags, a fresh `/proc`, a
//! private `/dev/shm`, a read-only scaffolding. Where a task's own paths
//! lie under a top-level directory that is not itself shown whole (the
//! repository under `/work`, worktrees under `/tmp`), the template holds
//! an empty directory there, which each worker covers with a small tmpfs
//! of its own to build the paths to its mounts in: nothing one worker
//! makes there is seen by another. Shared entries under such a directory
//! are mounted per worker with the task's own (they would be hidden).
//! The template holds no `/proc`, only the directory for one: the kernel
//! lets a user namespace make a proc file system only where one is fully
//! visible, so each worker's init makes its own (detached, `fsmount`)
//! while it is still in the launcher's mount namespace, whose `/proc` is
//! the host's, and puts it in place once it is in its copy of the
//! template. Nothing of the host's `/proc` is ever in a worker's
//! namespace, and there is no host `/proc` to detach per worker, a detach
//! that waited for an RCU grace period (IPIs to every CPU) each time.
//!
//! Kernels without `open_tree` (before 5.2), and a root that shows the
//! host's `/` itself, use the full build instead.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::mount_api::{fresh_proc, move_mount, open_tree, overlay_tree};
use crate::view::{self, Access, Dirs, Entry, Plan, What};

/// Templates never grow past this many (a run's tasks share one or two);
/// past it the oldest is let go of.
const MOST: usize = 8;

/// What a template holds: the shared entries, and the empty places a
/// worker's own mounts go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    shared: Vec<(PathBuf, What)>,
    /// Directories each worker covers with a tmpfs of its own, in which
    /// the paths to its own mounts are made.
    covers: Vec<PathBuf>,
    /// Mount points of a worker's own entries directly under `/` (a
    /// directory, or a file when false).
    points: Vec<(PathBuf, bool)>,
}

/// The launcher's templates, by what they hold.
#[derive(Debug, Default)]
pub(crate) struct Templates {
    /// Each with its serial number, which no later template reuses (an fd
    /// number may be).
    built: Vec<(Key, OwnedFd, u64)>,
    /// The serial of the next template built.
    next: u64,
    /// The kernel has no `open_tree`: every worker's root is built whole.
    unsupported: bool,
}

/// A worker's part of its root, made in the launcher for its init.
#[derive(Debug)]
pub(crate) struct TaskView {
    /// The template's mount namespace (the launcher keeps it open).
    template: RawFd,
    /// The template's serial number (see [`Templates::namespace`]).
    pub serial: u64,
    /// Top-level directories covered by a tmpfs of the worker's own.
    covered: Vec<PathBuf>,
    /// In the order they are made (parents first).
    mounts: Vec<Mount>,
}

#[derive(Debug)]
struct Mount {
    target: PathBuf,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A detached copy of the granted tree, moved to `target`.
    Tree {
        tree: OwnedFd,
        dir: bool,
        access: Access,
    },
    Link(PathBuf),
}

/// Splits `plan` into a template's key and the worker's own entries;
/// `None` where no template can show it (a root that shows the host's
/// `/`, a link of the task's own directly under `/`).
///
/// A worker's own entry inside a shown directory (shared or its own) is
/// mounted where it is. Any other needs the directories leading to it
/// made: in a tmpfs each worker mounts over the entry's parent (one for
/// entries that share a parent or lie below another's), which the
/// template holds empty; shared entries below such a parent would be
/// hidden by it, so they are the worker's to mount too.
fn split(plan: &Plan) -> Option<(Key, Vec<&Entry>)> {
    let root = Path::new("/");
    if plan.entries.iter().any(|e| e.target == root) {
        return None;
    }
    let dir_bind =
        |e: &&Entry| matches!(e.what, What::Bind { dir: true, .. } | What::Overlay { .. });
    let shown: Vec<&Path> = plan
        .entries
        .iter()
        .filter(dir_bind)
        .map(|e| e.target.as_path())
        .collect();
    // Inside a directory some entry shows (the entries are in path order,
    // so a directory comes before what it holds). A plan's paths are
    // normal: compared as bytes (`view::is_below`).
    let inside = |t: &Path| shown.iter().any(|d| view::is_below(t, d));
    let mut parents: Vec<&Path> = Vec::new();
    let mut points = Vec::new();
    for e in plan.entries.iter().filter(|e| !e.shared) {
        if inside(&e.target) {
            continue;
        }
        match (e.target.parent(), &e.what) {
            (Some(parent), _) if parent != root => parents.push(parent),
            (_, What::Bind { dir, .. }) => points.push((e.target.clone(), *dir)),
            (_, What::Overlay { .. }) => points.push((e.target.clone(), true)),
            (_, What::Link(_)) => return None,
        }
    }
    // One cover for parents below another.
    parents.sort();
    parents.dedup();
    let covers: Vec<PathBuf> = parents
        .iter()
        .filter(|p| !parents.iter().any(|q| view::is_below(p, q)))
        .map(|p| p.to_path_buf())
        .collect();
    // The task's own: its entries, and shared ones that would be hidden
    // (beneath a cover, or beneath a directory of the task's own, which is
    // mounted over the template). In path order, a directory comes first.
    let mut own_dirs: Vec<&Path> = Vec::new();
    let mut shared = Vec::new();
    let mut task = Vec::new();
    for e in &plan.entries {
        let hidden = covers.iter().any(|c| view::is_within(&e.target, c))
            || own_dirs.iter().any(|d| view::is_below(&e.target, d));
        if e.shared && !hidden {
            shared.push((e.target.clone(), e.what.clone()));
            continue;
        }
        if dir_bind(&e) {
            own_dirs.push(&e.target);
        }
        task.push(e);
    }
    Some((
        Key {
            shared,
            covers,
            points,
        },
        task,
    ))
}

impl Templates {
    /// The worker's part of its root for `plan`, over a template built
    /// now if none holds what `plan` shares; `None` where the root must be
    /// built whole (see the module's documentation).
    pub fn view(
        &mut self,
        plan: &Plan,
        trees: &mut Vec<(std::path::PathBuf, OwnedFd)>,
    ) -> Result<Option<TaskView>, String> {
        if self.unsupported {
            return Ok(None);
        }
        let Some((key, task)) = split(plan) else {
            return Ok(None);
        };
        let mut mounts = Vec::with_capacity(task.len());
        for entry in task {
            let kind = match &entry.what {
                What::Link(text) => Kind::Link(text.clone()),
                What::Overlay {
                    lower,
                    upper,
                    work,
                    access,
                } => match overlay_tree(lower, upper, work, Path::new("/proc")) {
                    Ok(tree) => Kind::Tree {
                        tree,
                        dir: true,
                        access: *access,
                    },
                    Err(e) => {
                        return Err(format!(
                            "build the worker's file system: show {} over {}: {e}",
                            entry.target.display(),
                            lower.display()
                        ));
                    }
                },
                // An idmapped copy made for it is taken instead of a copy
                // made here (`crate::idmap`).
                What::Bind {
                    source,
                    dir,
                    access,
                } => match trees
                    .iter()
                    .position(|(path, _)| path == source)
                    .map(|at| Ok(trees.swap_remove(at).1))
                    .unwrap_or_else(|| open_tree(source))
                {
                    Ok(tree) => Kind::Tree {
                        tree,
                        dir: *dir,
                        access: *access,
                    },
                    Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                        self.unsupported = true;
                        return Ok(None);
                    }
                    Err(e) => {
                        return Err(format!(
                            "build the worker's file system: copy the tree of {}: {e}",
                            source.display()
                        ));
                    }
                },
            };
            mounts.push(Mount {
                target: entry.target.clone(),
                kind,
            });
        }
        let covered = key.covers.clone();
        let (template, serial) = match self.built.iter().find(|(k, _, _)| *k == key) {
            Some((_, ns, serial)) => (ns.as_raw_fd(), *serial),
            None => {
                let ns = build(&key)
                    .map_err(|e| format!("build the workers' shared file system: {e}"))?;
                let raw = ns.as_raw_fd();
                if self.built.len() >= MOST {
                    self.built.remove(0);
                }
                let serial = self.next;
                self.next += 1;
                self.built.push((key, ns, serial));
                (raw, serial)
            }
        };
        Ok(Some(TaskView {
            template,
            serial,
            covered,
            mounts,
        }))
    }

    /// The mount namespace of template `serial`, while the launcher keeps
    /// it (a cell made for it enters it, see
    /// [`cell`](crate::launcher::cell)).
    pub fn namespace(&self, serial: u64) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.built
            .iter()
            .find(|(_, _, s)| *s == serial)
            .map(|(_, ns, _)| ns.as_fd())
    }

    /// The covers of template `serial`: the directories each of its
    /// workers gets a tmpfs of its own over (see [`TaskView`]).
    pub fn covers(&self, serial: u64) -> Option<&[PathBuf]> {
        self.built
            .iter()
            .find(|(_, _, s)| *s == serial)
            .map(|(key, _, _)| key.covers.as_slice())
    }
}

impl TaskView {
    /// A descriptor of its template's namespace of its own, which this
    /// view uses from now on: for a view made ahead of its start (a task
    /// held on deck), whose template the launcher may let go of meanwhile
    /// (past [`MOST`], the oldest goes, and its descriptor with it). The
    /// caller keeps it as long as the view.
    pub fn hold_template(&mut self) -> std::io::Result<OwnedFd> {
        // SAFETY: the launcher's descriptor of a template it still keeps
        // (the view was made just now); duplicated, not taken.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let own =
            unsafe { std::os::fd::BorrowedFd::borrow_raw(self.template) }.try_clone_to_owned()?;
        self.template = own.as_raw_fd();
        Ok(own)
    }

    /// Whether a cell can take this task: one that made its private
    /// `/dev/shm` and its `/proc` before the task's own mounts, which must
    /// then lie elsewhere (the full entry, [`enter`], mounts them first).
    pub fn fits_cell(&self) -> bool {
        self.covered.iter().all(|dir| clear_of_cell(dir))
            && self.mounts.iter().all(|m| clear_of_cell(&m.target))
    }
}

/// Whether `path` lies outside what a cell makes before its task (its
/// `/dev/shm` and its `/proc`): whole components, `/devices` is not
/// beneath `/dev`. A cell mounts ahead only the covers that are.
pub(crate) fn clear_of_cell(path: &Path) -> bool {
    !(path.starts_with("/proc") || path.starts_with("/dev"))
}

/// Builds the template `key` in a new mount namespace, made by a helper
/// forked for it; returns the namespace (the helper is gone).
///
/// The helper sends its namespace over a socket rather than the launcher
/// opening `/proc/<helper>/ns/mnt`: that open takes ptrace access, which
/// the kernel refuses while the launcher's memory is not dumpable (a
/// worker switching identity marks it so until the launcher puts it
/// back, and a helper forked meanwhile is a copy).
fn build(key: &Key) -> Result<OwnedFd, String> {
    use nix::sys::socket::{
        AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
        sendmsg, socketpair,
    };
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| format!("a socket pair: {e}"))?;
    // SAFETY: fork from the single-threaded launcher; the child builds,
    // sends and leaves with _exit, never returning.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(format!(
            "fork a helper: {}",
            std::io::Error::last_os_error()
        ));
    }
    if pid == 0 {
        drop(ours);
        let sent = match make(key) {
            Ok(ns) => {
                let fds = [ns.as_raw_fd()];
                sendmsg::<()>(
                    theirs.as_raw_fd(),
                    &[std::io::IoSlice::new(b"ok")],
                    &[ControlMessage::ScmRights(&fds)],
                    MsgFlags::empty(),
                    None,
                )
            }
            Err(message) => sendmsg::<()>(
                theirs.as_raw_fd(),
                &[std::io::IoSlice::new(message.as_bytes())],
                &[],
                MsgFlags::empty(),
                None,
            ),
        };
        // SAFETY: leaving the forked helper without running the launcher's
        // destructors.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            libc::_exit(i32::from(sent.is_err()))
        }
    }
    drop(theirs);
    let mut buf = vec![0u8; 16 << 10];
    let received = loop {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        match recvmsg::<()>(
            ours.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break Err(format!("hear from the helper that builds it: {e}")),
            Ok(msg) => {
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(rights) = c {
                            fds.extend(rights);
                        }
                    }
                }
                break Ok((msg.bytes, fds));
            }
        }
    };
    // SAFETY: our own child, not yet reaped.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    let (bytes, fds) = received?;
    // SAFETY: the kernel just gave us these descriptors; they are ours.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let mut fds = fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    match fds.next() {
        Some(ns) => Ok(ns),
        None if bytes == 0 => Err("the helper that builds it ended without a word".into()),
        None => Err(String::from_utf8_lossy(buf.get(..bytes).unwrap_or_default()).into_owned()),
    }
}

/// In the helper: a new mount namespace whose root is the template;
/// returns it, opened.
fn make(key: &Key) -> Result<std::fs::File, String> {
    // SAFETY: unshare takes no pointers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } == -1 {
        return Err(format!(
            "a mount namespace of its own: {}",
            std::io::Error::last_os_error()
        ));
    }
    // Opened now: the template shows no /proc to open it through.
    let namespace = std::fs::File::open("/proc/self/ns/mnt")
        .map_err(|e| format!("open its mount namespace: {e}"))?;
    let old = Path::new(view::OLD_ROOT);
    let scratch = [Path::new("/tmp"), Path::new("/mnt"), Path::new("/proc")]
        .into_iter()
        .find(|p| p.is_dir())
        .ok_or("find a directory to mount a scratch root on")?;
    let private = libc::MS_NOSUID | libc::MS_NODEV;
    view::mount(
        Some(Path::new("tmpfs")),
        scratch,
        Some(c"tmpfs"),
        private,
        Some(c"mode=0755,size=1m"),
    )?;
    std::fs::create_dir(view::under(&scratch.display().to_string(), old))
        .map_err(|e| format!("create {}: {e}", old.display()))?;
    view::chdir(scratch)?;
    view::pivot_root(Path::new("."), &view::under(".", old))?;
    view::chdir(Path::new("/"))?;
    let mut dirs = Dirs::default();
    dirs.known.insert(PathBuf::from("/"));
    for (target, what) in &key.shared {
        if let What::Bind {
            source,
            dir,
            access,
        } = what
        {
            dirs.mount_point(target, *dir)?;
            view::mount(
                Some(&view::under(view::OLD_ROOT, source)),
                target,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )?;
            view::settle(target, *access)?;
        }
    }
    for (target, what) in &key.shared {
        if let What::Link(text) = what {
            dirs.link(text, target)?;
        }
    }
    for cover in &key.covers {
        dirs.make(cover)
            .map_err(|e| format!("create {}: {e}", cover.display()))?;
    }
    for (point, dir) in &key.points {
        dirs.mount_point(point, *dir)?;
    }
    // Only the directory: each worker mounts its own /proc there.
    let proc_dir = Path::new("/proc");
    dirs.make(proc_dir)
        .map_err(|e| format!("create {}: {e}", proc_dir.display()))?;
    view::detach(old)?;
    std::fs::remove_dir(old).map_err(|e| format!("remove {}: {e}", old.display()))?;
    view::mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | private,
        None,
    )?;
    Ok(namespace)
}

/// In the worker's init, in its new PID namespace: enters a copy of the
/// template and adds the task's own mounts, a private `/dev/shm`, a fresh
/// `/proc` (`proc` is called with it mounted read-write, to set its
/// knobs; it is read-only afterwards). Errors say what failed; the worker
/// is not started.
pub(crate) fn enter(
    task: &TaskView,
    proc: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let fail = |e: String| format!("build the worker's file system: {e}");
    // The worker's own /proc, made while init is still in the launcher's
    // namespace, whose /proc vouches for it (the template holds none).
    let fresh = fresh_proc().map_err(|e| fail(format!("a fresh proc file system: {e}")))?;
    // SAFETY: setns with the launcher's open namespace fd; unshare takes no
    // pointers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        if libc::setns(task.template, libc::CLONE_NEWNS) == -1 {
            return Err(fail(format!(
                "enter the shared part: {}",
                std::io::Error::last_os_error()
            )));
        }
        if libc::unshare(libc::CLONE_NEWNS) == -1 {
            return Err(fail(format!(
                "a mount namespace of its own: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    view::chdir(Path::new("/")).map_err(fail)?;
    own_mounts(task, true)?;
    let shm = Path::new(view::SHM);
    if shm.is_dir() {
        view::mount(
            Some(Path::new("tmpfs")),
            shm,
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(view::SHM_OPTIONS),
        )
        .map_err(|e| fail(format!("a private /dev/shm: {e}")))?;
    }
    move_mount(&fresh, Path::new("/proc")).map_err(|e| fail(format!("mount /proc: {e}")))?;
    settle_proc(proc)
}

/// The rest of [`enter`] in a cell that entered a copy of `task`'s
/// template and made its `/dev/shm` and `/proc` ahead of the task (see
/// [`cell`](crate::launcher::cell)); only for a task that
/// [fits](TaskView::fits_cell).
pub(crate) fn enter_in_cell(
    task: &TaskView,
    proc: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    // The cell mounted the covers as it prepared.
    own_mounts(task, false)?;
    settle_proc(proc)
}

/// [`enter_in_cell`] for a cell that set the process cap and made `/proc`
/// read-only as it prepared: the task's own mounts only.
pub(crate) fn enter_settled_cell(task: &TaskView) -> Result<(), String> {
    own_mounts(task, false)?;
    view::chdir(Path::new("/")).map_err(|e| format!("build the worker's file system: {e}"))
}

/// `/proc` once it is the worker's: `proc` sets what it must (the process
/// cap), then it is made read-only.
fn settle_proc(proc: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), String> {
    let fail = |e: String| format!("build the worker's file system: {e}");
    let proc_dir = Path::new("/proc");
    proc(proc_dir)?;
    view::mount(None, proc_dir, None, view::PROC_READ_ONLY, None).map_err(fail)?;
    view::chdir(Path::new("/")).map_err(fail)
}

/// The options of a cover's tmpfs.
pub(crate) const COVER_OPTIONS: &std::ffi::CStr = c"mode=0755,size=1m";

/// The task's own mounts, in a copy of its template: the covers of their
/// parents (unless `cover`: a cell mounted them ahead), the trees moved
/// in, the covers made read-only.
fn own_mounts(task: &TaskView, cover: bool) -> Result<(), String> {
    let fail = |e: String| format!("build the worker's file system: {e}");
    let private = libc::MS_NOSUID | libc::MS_NODEV;
    let mut dirs = Dirs::default();
    dirs.known.insert(PathBuf::from("/"));
    for dir in &task.covered {
        if cover {
            view::mount(
                Some(Path::new("tmpfs")),
                dir,
                Some(c"tmpfs"),
                private,
                Some(COVER_OPTIONS),
            )
            .map_err(fail)?;
        }
        dirs.known.insert(dir.clone());
    }
    // Targets mounted so far (parents come first).
    let mut mounted: Vec<&Path> = Vec::with_capacity(task.mounts.len());
    for mount in &task.mounts {
        let target = mount.target.as_path();
        match &mount.kind {
            Kind::Tree { tree, dir, access } => {
                // Beneath a cover (a fresh tmpfs) and no tree of the task
                // no mount point exists yet: made first. (The plan's paths,
                // normal: compared as bytes.)
                let fresh = task.covered.iter().any(|c| view::is_below(target, c))
                    && !mounted.iter().any(|m| view::is_within(target, m));
                if fresh {
                    dirs.mount_point(&mount.target, *dir).map_err(fail)?;
                }
                // Most other mount points exist (in a shown directory); the
                // rest are made in the worker's own tmpfs.
                if let Err(e) = move_mount(tree, &mount.target) {
                    if e.raw_os_error() != Some(libc::ENOENT) {
                        return Err(fail(format!("mount {}: {e}", mount.target.display())));
                    }
                    dirs.mount_point(&mount.target, *dir).map_err(fail)?;
                    move_mount(tree, &mount.target)
                        .map_err(|e| fail(format!("mount {}: {e}", mount.target.display())))?;
                }
                view::settle(&mount.target, *access).map_err(fail)?;
            }
            Kind::Link(text) => dirs.link(text, &mount.target).map_err(fail)?,
        }
        mounted.push(target);
    }
    for dir in &task.covered {
        view::mount(
            None,
            dir,
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | private,
            None,
        )
        .map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(target: &str, dir: bool, shared: bool) -> Entry {
        Entry {
            target: target.into(),
            what: What::Bind {
                source: target.into(),
                dir,
                access: Access::ReadOnly,
            },
            shared,
        }
    }

    #[test]
    fn a_tasks_own_paths_get_a_cover_and_take_shared_neighbours_along() {
        let plan = Plan {
            entries: vec![
                entry("/etc", true, true),
                entry("/opt", true, true),
                entry("/opt/repo/wt", true, false),
                entry("/root/.cargo/bin", true, true),
                entry("/srv", true, false),
                entry("/tmp/home/wt/.cache/npm", true, true),
                entry("/tmp/home/wt/t1", true, false),
                entry("/tmp/home/wt/t1/src", true, false),
                entry("/tmp/repo/.git", true, false),
                entry("/tmp/repo/.swarm/tmp/t1", true, false),
                entry("/usr", true, true),
            ],
        };
        let (key, task) = split(&plan).unwrap();
        let targets = |e: &[&Entry]| {
            e.iter()
                .map(|e| e.target.display().to_string())
                .collect::<Vec<_>>()
        };
        // Under /opt (shown whole), the worktree is mounted where it is;
        // /srv goes on a point of its own; the cache beside the worktree
        // goes with the task's own (its parent is covered).
        assert_eq!(
            targets(&task),
            [
                "/opt/repo/wt",
                "/srv",
                "/tmp/home/wt/.cache/npm",
                "/tmp/home/wt/t1",
                "/tmp/home/wt/t1/src",
                "/tmp/repo/.git",
                "/tmp/repo/.swarm/tmp/t1",
            ]
        );
        assert_eq!(
            key.covers,
            [PathBuf::from("/tmp/home/wt"), PathBuf::from("/tmp/repo")]
        );
        assert_eq!(key.points, [(PathBuf::from("/srv"), true)]);
        let shared: Vec<_> = key
            .shared
            .iter()
            .map(|(t, _)| t.display().to_string())
            .collect();
        assert_eq!(shared, ["/etc", "/opt", "/root/.cargo/bin", "/usr"]);
    }

    #[test]
    fn shared_entries_beneath_a_tasks_own_directory_are_the_tasks_to_mount() {
        // Mounted over the template, the task's own directory would hide
        // what the template holds beneath it: it is mounted with the
        // task's, after it, as a whole build would.
        let plan = Plan {
            entries: vec![
                entry("/opt", true, true),
                entry("/opt/repo/wt", true, false),
                entry("/opt/repo/wt/node_modules", true, true),
                entry("/srv", true, false),
                entry("/srv/tools", true, true),
                entry("/usr", true, true),
            ],
        };
        let (key, task) = split(&plan).unwrap();
        let targets: Vec<_> = task
            .iter()
            .map(|e| e.target.display().to_string())
            .collect();
        assert_eq!(
            targets,
            [
                "/opt/repo/wt",
                "/opt/repo/wt/node_modules",
                "/srv",
                "/srv/tools"
            ]
        );
        let shared: Vec<_> = key
            .shared
            .iter()
            .map(|(t, _)| t.display().to_string())
            .collect();
        assert_eq!(shared, ["/opt", "/usr"]);
    }

    #[test]
    fn clear_of_cell_compares_whole_components() {
        assert!(!clear_of_cell(Path::new("/dev")));
        assert!(!clear_of_cell(Path::new("/dev/shm")));
        assert!(clear_of_cell(Path::new("/devices/x")));
        assert!(clear_of_cell(Path::new("/procfs")));
        assert!(clear_of_cell(Path::new("/")));
    }

    #[test]
    fn a_root_showing_the_hosts_slash_is_built_whole() {
        let plan = Plan {
            entries: vec![entry("/", true, false)],
        };
        assert!(split(&plan).is_none());
    }
}
