//! What runs in the launcher's children, between `fork` and `execve`.
//!
//! Everything a child needs (C strings, the Landlock ruleset, the compiled
//! seccomp filter) is prepared by the launcher before it forks, so the
//! child only makes system calls. The launcher is single-threaded, so a
//! forked child may still allocate (error messages do). An unconfined
//! command's process is not forked: it shares the launcher's memory until
//! it execs, as with `posix_spawn` (see [`spawn_unconfined`]).
//!
//! Namespace layer: the launcher `clone`s the worker's init with new mount
//! and PID namespaces. Init makes the writable paths writable, mounts a
//! fresh `/proc`, caps the process count, leaves the network, then starts
//! the worker (sharing init's memory until it execs, see [`start_worker`])
//! and waits. SIGTERM sent to init is passed on to every process
//! in the namespace; when the worker ends, init kills and reaps whatever
//! is left, reports the worker's status and exits.
//!
//! Order in the worker matters: signal mask and session first (its own
//! process group, no controlling terminal), then fds, directory, limits,
//! capabilities, `no_new_privs`, Landlock, and seccomp last (it forbids
//! calls the earlier steps need).

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};

use landlock::RulesetCreated;
use seccompiler::BpfProgram;

use crate::confine;
use crate::namespaces::{self, TaskMounts};
use crate::policy::Policy;
use crate::seccomp;

/// Everything a worker's process needs, built before init is cloned.
pub(super) struct Prepared<'a> {
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: CString,
    /// (fd received from the coordinator, where it lands in the worker).
    pub fds: Vec<(RawFd, RawFd)>,
    /// Fds above 2 that stay open in the worker.
    pub keep: Vec<RawFd>,
    /// `cgroup.procs` files to join before anything of the worker runs.
    pub cgroups: Vec<RawFd>,
    pub policy: &'a Policy,
    /// The unprivileged (uid, gid) the worker switches to, if any.
    pub identity: Option<(u32, u32)>,
    pub ruleset: RulesetCreated,
    pub filter: &'a BpfProgram,
    /// Write end of the failure pipe (close-on-exec).
    pub errors: RawFd,
    /// The launcher's read ends of this worker's pipes: closed first thing
    /// in the child, so that the pipes' only readers are in the launcher.
    pub launcher_ends: Vec<RawFd>,
}

/// Everything an unconfined command's process needs, built before it
/// starts: the process shares the launcher's memory until it execs (see
/// [`spawn_unconfined`]), so it allocates nothing on its way there.
pub(super) struct Unconfined {
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: CString,
    /// (fd received from the coordinator, where it lands in the command).
    pub fds: Vec<(RawFd, RawFd)>,
    /// Fds above 2 that stay open in the command.
    pub keep: Vec<RawFd>,
    /// `cgroup.procs` files to join before anything of the command runs.
    pub cgroups: Vec<RawFd>,
    /// Write end of the failure pipe (close-on-exec).
    pub errors: RawFd,
    /// The launcher's read ends of this command's pipes.
    pub launcher_ends: Vec<RawFd>,
}

/// Where a process started with [`ChildStack::spawn`] (an unconfined
/// command, a worker started by its init) runs until it execs. One is
/// enough: its parent is suspended while the process uses it. A mapping of
/// its own with an inaccessible page below it, so that an overflow faults
/// instead of writing over the parent's memory, which the process shares.
pub(super) struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    /// Room for the few frames between `clone` and `execve`, and for the
    /// formatting of a failure's message.
    const SIZE: usize = 256 << 10;

    /// The guard below the stack (larger than any page size Linux uses on
    /// the machines swarm runs on).
    const GUARD: usize = 64 << 10;

    pub fn new() -> std::io::Result<Self> {
        let len = Self::SIZE + Self::GUARD;
        // SAFETY: a fresh anonymous mapping, owned by the value made here;
        // its lowest GUARD bytes are made inaccessible before any use.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            let stack = Self { base, len };
            if libc::mprotect(base, Self::GUARD, libc::PROT_NONE) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(stack)
        }
    }

    /// Starts a process that shares this process's memory and runs
    /// `entry(arg)` on this stack, as `posix_spawn` does (`CLONE_VM |
    /// CLONE_VFORK`): the calling thread is suspended until the process has
    /// exec'd or exited. Returns its pid.
    ///
    /// # Safety
    ///
    /// `arg` must point to what `entry` expects, alive until the process
    /// execs or exits (it does while the caller is suspended, if it lives
    /// in the caller's frame); `entry` must never return into the caller's
    /// frames (it execs or exits).
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe fn spawn(
        &mut self,
        entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
        arg: *mut libc::c_void,
    ) -> std::io::Result<i32> {
        // The top of the mapping, page-aligned and so 16-byte aligned, as
        // the ABI wants of a stack pointer.
        let top = self.base.cast::<u8>().wrapping_add(self.len);
        // SAFETY: the stack is ours and used by nothing else while the
        // caller is suspended; the rest is the caller's promise.
        let pid = unsafe {
            libc::clone(
                entry,
                top.cast(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                arg,
            )
        };
        if pid == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(pid)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, used by no process any more (a
        // process on it has exec'd or exited before `spawn` returned).
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

/// [`Unconfined`] as the process uses it: every pointer array and fd list
/// made by the launcher.
struct Ready<'a> {
    command: &'a Unconfined,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// (a close-on-exec copy of the source, well above every target; the
    /// target).
    placed: Vec<(RawFd, RawFd)>,
    /// What stays open past fd 2, sorted: the targets, the kept fds and the
    /// failure pipe.
    open: Vec<u32>,
}

/// Exit code of a child whose confinement failed (the reason is on the
/// failure pipe).
const EXIT_CONFINE: i32 = super::EXIT_SANDBOX_FAILED;

/// Starts the worker's init in new mount and PID namespaces; returns its
/// (host) pid.
pub(super) fn spawn_in_namespaces(
    prepared: Prepared<'_>,
    mounts: &TaskMounts,
    status: &std::os::fd::OwnedFd,
) -> Result<i32, String> {
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::SIGCHLD;
    // SAFETY: a fork-like clone (no new stack, no shared memory) from a
    // single-threaded process; the child never returns from `init`.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match pid {
        -1 => Err(format!(
            "start the worker's init (clone): {}",
            std::io::Error::last_os_error()
        )),
        0 => init(prepared, mounts, status.as_raw_fd()),
        pid => i32::try_from(pid).map_err(|e| e.to_string()),
    }
}

/// Starts the worker directly (baseline, no namespaces); returns its pid.
pub(super) fn spawn_plain(prepared: Prepared<'_>) -> Result<i32, String> {
    // SAFETY: fork from a single-threaded process; the child never returns.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    match unsafe { libc::fork() } {
        -1 => Err(format!(
            "start the worker (fork): {}",
            std::io::Error::last_os_error()
        )),
        0 => {
            die_with_launcher(prepared.errors, &prepared.launcher_ends);
            join_cgroups(&prepared.cgroups, prepared.errors);
            worker(prepared, true)
        }
        pid => Ok(pid),
    }
}

/// Starts an unconfined command, leader of a process group of its own (in
/// the launcher's session: unlike a worker, it keeps the terminal, as any
/// command a person starts does); returns its pid.
///
/// The process is made as `posix_spawn` makes one (`CLONE_VM |
/// CLONE_VFORK`): it shares the launcher's memory, on a stack of its own,
/// and the launcher waits until it has exec'd or exited. A `fork` copies
/// the launcher's page tables and faults its pages back in, then `execve`
/// throws them away: for a command that does little, that was a third of
/// its start. `posix_spawn` itself cannot set a parent-death signal or
/// join cgroups by fd, which these processes do.
pub(super) fn spawn_unconfined(
    command: &Unconfined,
    stack: &mut ChildStack,
) -> Result<i32, String> {
    let mut argv: Vec<*const libc::c_char> = command.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = command.env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // Sources moved out of the way of every target first, so that no
    // `dup2` in the process overwrites a source still to be placed.
    let mut placed = Vec::with_capacity(command.fds.len());
    let mut copies = Vec::with_capacity(command.fds.len());
    for &(src, dst) in &command.fds {
        let high = nix::fcntl::fcntl(
            // SAFETY: `src` is a descriptor the request brought, open for
            // the length of this call.
            #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
            unsafe {
                std::os::fd::BorrowedFd::borrow_raw(src)
            },
            nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(1024),
        )
        .map_err(|e| format!("start the command: place its file descriptors: {e}"))?;
        // SAFETY: `high` is a fresh descriptor we own.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        copies.push(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high) });
        placed.push((high, dst));
    }
    let mut open: Vec<u32> = command
        .keep
        .iter()
        .chain(std::iter::once(&command.errors))
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd > 2)
        .collect();
    open.sort_unstable();
    open.dedup();
    let ready = Ready {
        command,
        argv,
        envp,
        placed,
        open,
    };
    // SAFETY: `unconfined_child` gets a pointer to `ready`, which outlives
    // the process's use of it (this thread is suspended until the process
    // has exec'd or exited); the process never returns into our frames.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let pid = unsafe {
        stack.spawn(
            unconfined_child,
            std::ptr::from_ref(&ready).cast_mut().cast(),
        )
    };
    drop(copies);
    pid.map_err(|e| format!("start the command (clone): {e}"))
}

/// The body of an unconfined command's process (see [`spawn_unconfined`]):
/// system calls only, on what the launcher prepared, then `execve`. A
/// failure is formatted (the one allocation, on the launcher's heap while
/// it is suspended: leaked, never freed twice), written to the failure
/// pipe, and the process exits.
extern "C" fn unconfined_child(ready: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the pointer `spawn_unconfined` passed, to a `Ready` that
    // lives until this process execs or exits.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ready = unsafe { &*ready.cast::<Ready<'_>>() };
    let command = ready.command;
    let errors = command.errors;
    die_with_launcher(errors, &command.launcher_ends);
    join_cgroups(&command.cgroups, errors);
    if let Err(step) = enter_unconfined(ready) {
        let why = std::io::Error::last_os_error();
        let what = match step {
            Step::Group => "lead a process group (setpgid)".to_string(),
            Step::Fds => "place the command's file descriptors".to_string(),
            Step::Dir => format!("enter {}", command.cwd.to_string_lossy()),
            Step::Close => "close the launcher's file descriptors".to_string(),
        };
        fail(errors, &format!("start the command: {what}: {why}"));
    }
    execve(&ready.argv, &ready.envp, errors)
}

/// What failed on an unconfined command's way to `execve` (errno says why).
enum Step {
    Group,
    Fds,
    Dir,
    Close,
}

/// An unconfined command's process before `execve`: default signal
/// handling, its own process group, its fds and directory.
fn enter_unconfined(ready: &Ready<'_>) -> Result<(), Step> {
    default_signals();
    // SAFETY: plain syscalls on this process, on fds and a C string the
    // launcher keeps open and alive until we exec.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        if libc::setpgid(0, 0) == -1 {
            return Err(Step::Group);
        }
        for &(high, dst) in &ready.placed {
            if libc::dup2(high, dst) == -1 {
                return Err(Step::Fds);
            }
        }
        if libc::chdir(ready.command.cwd.as_ptr()) == -1 {
            return Err(Step::Dir);
        }
    }
    confine::close_fds_sorted(&ready.open).map_err(|_| Step::Close)
}

/// No signal blocked, and SIGPIPE back to its default (the launcher, a
/// Rust program, ignores it, and an ignored signal stays ignored across
/// `execve`): `yes | head -1` must end.
fn default_signals() {
    // SAFETY: signal-set handling on locals; SIG_DFL installs no handler.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Puts each received fd at its place. The sources are first moved out of
/// the way of every target, so that no `dup2` overwrites a source still to
/// be placed.
fn place_fds(fds: &[(RawFd, RawFd)]) -> Result<(), ()> {
    let mut moved = Vec::with_capacity(fds.len());
    // SAFETY: fcntl and dup2 on fds of this process.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        for &(src, dst) in fds {
            let high = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 1024);
            if high == -1 {
                return Err(());
            }
            moved.push((high, dst));
        }
        for (high, dst) in moved {
            if libc::dup2(high, dst) == -1 {
                return Err(());
            }
        }
    }
    Ok(())
}

/// Sets the parent-death signal, then makes sure the launcher did not die
/// before it was set (the signal would never come): `pipe` is our write end
/// of a pipe the launcher reads, and a pipe whose reader is gone polls as
/// an error. (`getppid` cannot tell: across a PID namespace it is 0.)
fn die_with_launcher(pipe: RawFd, launcher_ends: &[RawFd]) {
    // SAFETY: closing our copies of the launcher's fds; prctl and poll with
    // a valid pointer to a local pollfd.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        for &fd in launcher_ends {
            libc::close(fd);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        let mut fd = libc::pollfd {
            fd: pipe,
            events: 0,
            revents: 0,
        };
        if libc::poll(&mut fd, 1, 0) == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            libc::_exit(EXIT_CONFINE);
        }
    }
}

/// Moves this process into the task's cgroups: writing `0` to a
/// `cgroup.procs` means "the writer". The files were opened by the
/// coordinator, whose credentials the kernel checks, so this works from
/// inside the user namespace and the read-only mounts.
fn join_cgroups(cgroups: &[RawFd], errors: RawFd) {
    for &fd in cgroups {
        // SAFETY: a write of a local buffer to an fd we were given.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        if n != 1 {
            fail(
                errors,
                &format!(
                    "join the task's cgroup: {}",
                    std::io::Error::last_os_error()
                ),
            );
        }
        // SAFETY: closing an fd of ours that nothing else uses.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            libc::close(fd);
        }
    }
}

/// Writes `message` to the failure pipe and exits.
fn fail(errors: RawFd, message: &str) -> ! {
    // SAFETY: writing a local buffer, then leaving without running any
    // of the parent's destructors or atexit handlers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        libc::write(errors, message.as_ptr().cast(), message.len());
        libc::_exit(EXIT_CONFINE)
    }
}

/// Pid 1 of the worker's namespace.
fn init(mut prepared: Prepared<'_>, mounts: &TaskMounts, status: RawFd) -> ! {
    // The launcher dies with the coordinator; init (and so the whole
    // namespace) dies with the launcher.
    die_with_launcher(status, &prepared.launcher_ends);
    // Init stays out of the task's cgroups (the worker joins them, and so
    // does all it starts): init reports the worker's end before its own
    // exit has torn the namespace down, and a member still on its way out
    // would keep the cgroup busy after the report.
    let capped = match namespaces::isolate_task(mounts) {
        Ok(capped) => capped,
        Err(message) => fail(prepared.errors, &message),
    };
    // Landlock ignores rules on a covered mount point: the fresh /proc needs
    // a rule of its own, which only exists now.
    prepared.ruleset = match confine::allow_read(prepared.ruleset, std::path::Path::new("/proc")) {
        Ok(ruleset) => ruleset,
        Err(e) => fail(prepared.errors, &format!("confine the worker: {e}")),
    };
    // So does the private /dev/shm the view mounted (init exists only
    // where the view was built, so this is never the host's).
    let shm = std::path::Path::new(crate::view::SHM);
    if shm.is_dir() {
        prepared.ruleset = match confine::allow_write(prepared.ruleset, shm) {
            Ok(ruleset) => ruleset,
            Err(e) => fail(prepared.errors, &format!("confine the worker: {e}")),
        };
    }
    let child = start_worker(prepared, !capped);
    // Init keeps nothing of the launcher's but the status pipe: the
    // coordinator's socket, the worker's fds and the failure pipe are the
    // worker's business (a held pipe would keep the coordinator reading).
    if confine::close_fds(&[status]).is_err() {
        // SAFETY: leaving; the kernel kills the namespace with us.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            libc::_exit(EXIT_CONFINE)
        };
    }
    // SAFETY: signal set handling and waits on our own children, with
    // valid pointers to locals.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        loop {
            let sig = libc::sigwaitinfo(&set, std::ptr::null_mut());
            if sig == libc::SIGTERM || sig == libc::SIGINT || sig == libc::SIGHUP {
                // Every process of the namespace but init itself.
                libc::kill(-1, sig);
                continue;
            }
            loop {
                let mut wstatus = 0;
                let pid = libc::waitpid(-1, &mut wstatus, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == child {
                    // Everything the worker left behind dies, and is
                    // reaped, before the status goes out: once the launcher
                    // has it, nothing in the namespace can still write to
                    // the worktree. (The kernel would kill them when init
                    // leaves, but only after tearing the namespace's mounts
                    // down, which then delayed every worker's end.) A kill
                    // of every process cannot miss one being forked: a
                    // fork that races a SIGKILL to its parent fails.
                    libc::kill(-1, libc::SIGKILL);
                    while libc::waitpid(-1, std::ptr::null_mut(), libc::__WALL) > 0 {}
                    let bytes = wstatus.to_ne_bytes();
                    libc::write(status, bytes.as_ptr().cast(), bytes.len());
                    libc::_exit(0);
                }
            }
        }
    }
}

/// What init hands the worker's process (see [`start_worker`]).
struct Handoff<'a> {
    prepared: std::mem::ManuallyDrop<Prepared<'a>>,
    nproc_limit: bool,
}

/// Starts the worker from init as `posix_spawn` would (`CLONE_VM |
/// CLONE_VFORK`), returns its pid; on failure, says why and exits (init
/// has nothing else to do). A `fork` copied init's page tables (init is a
/// copy of the launcher) and `execve` threw them away again: with the
/// namespace's own end, that was a fifth of a sandboxed spawn's CPU.
///
/// The worker runs on a stack of its own while init is suspended, and may
/// allocate on the heap they share: init never returns nor frees anything
/// after this (it waits, then leaves with `_exit`), so what the worker
/// takes from `prepared` is never dropped twice.
fn start_worker(prepared: Prepared<'_>, nproc_limit: bool) -> i32 {
    let errors = prepared.errors;
    let mut handoff = Handoff {
        prepared: std::mem::ManuallyDrop::new(prepared),
        nproc_limit,
    };
    // Never unmapped: init leaves with `_exit`.
    let mut stack = match ChildStack::new() {
        Ok(stack) => std::mem::ManuallyDrop::new(stack),
        Err(e) => fail(errors, &format!("start the worker (its stack): {e}")),
    };
    // SAFETY: `worker_entry` gets a pointer to `handoff`, which lives on
    // this frame while init is suspended; the worker never returns into
    // init's frames.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let pid = unsafe { stack.spawn(worker_entry, std::ptr::from_mut(&mut handoff).cast()) };
    match pid {
        Ok(pid) => pid,
        Err(e) => fail(errors, &format!("start the worker (clone): {e}")),
    }
}

/// The body of the worker's process (see [`start_worker`]).
extern "C" fn worker_entry(handoff: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the pointer `start_worker` passed, to a `Handoff` that lives
    // until this process execs or exits; init, suspended meanwhile, never
    // touches it again, so the worker may take `prepared` out of it.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let (prepared, nproc_limit) = unsafe {
        let handoff = &mut *handoff.cast::<Handoff<'_>>();
        (
            std::mem::ManuallyDrop::take(&mut handoff.prepared),
            handoff.nproc_limit,
        )
    };
    // Before anything of the worker runs, so that it and all it starts are
    // in them.
    join_cgroups(&prepared.cgroups, prepared.errors);
    worker(prepared, nproc_limit)
}

/// The worker's own process: confine, then `execve` (`argv[0]` is a path).
fn worker(mut prepared: Prepared<'_>, nproc_limit: bool) -> ! {
    let errors = prepared.errors;
    let argv_c = std::mem::take(&mut prepared.argv);
    let env_c = std::mem::take(&mut prepared.env);
    if let Err(message) = confine_worker(prepared, nproc_limit) {
        fail(errors, &format!("confine the worker: {message}"));
    }
    exec(&argv_c, &env_c, errors)
}

/// `execve(argv[0], argv, env)`; on failure, says why on `errors` and exits.
fn exec(argv_c: &[CString], env_c: &[CString], errors: RawFd) -> ! {
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env_c.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    execve(&argv, &envp, errors)
}

/// `execve` of null-terminated pointer arrays (`argv[0]` the program);
/// on failure, says why on `errors` and exits.
fn execve(argv: &[*const libc::c_char], envp: &[*const libc::c_char], errors: RawFd) -> ! {
    let program = argv.first().copied().unwrap_or(std::ptr::null());
    if program.is_null() {
        fail(errors, "start the worker: no command given");
    }
    // SAFETY: null-terminated arrays of pointers into C strings that live
    // until execve replaces this process (or we exit).
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        libc::execve(program, argv.as_ptr(), envp.as_ptr());
    }
    let why = std::io::Error::last_os_error();
    // SAFETY: `program` is a non-null pointer into a live C string.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let program = unsafe { std::ffi::CStr::from_ptr(program) };
    fail(
        errors,
        &format!("start {}: {why}", program.to_string_lossy()),
    )
}

fn confine_worker(p: Prepared<'_>, nproc_limit: bool) -> Result<(), String> {
    let os = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    default_signals();
    // SAFETY: plain syscalls on this process with valid local pointers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        // A new session: no controlling terminal (so no TIOCSTI into the
        // user's shell), and a process group of its own for group kills.
        if libc::setsid() == -1 {
            return Err(os("detach from the terminal (setsid)"));
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        place_fds(&p.fds).map_err(|()| os("place the worker's file descriptors"))?;
        if libc::chdir(p.cwd.as_ptr()) == -1 {
            return Err(os(&format!("enter {}", p.cwd.to_string_lossy())));
        }
    }
    confine::set_limits(p.policy, nproc_limit).map_err(|e| e.to_string())?;
    confine::drop_capabilities(p.identity).map_err(|e| e.to_string())?;
    confine::no_new_privs().map_err(|e| e.to_string())?;
    confine::restrict(p.ruleset).map_err(|e| e.to_string())?;
    let mut keep = p.keep.clone();
    keep.push(p.errors);
    confine::close_fds(&keep).map_err(|e| e.to_string())?;
    seccomp::apply(p.filter).map_err(|e| format!("install the seccomp filter: {e}"))
}
