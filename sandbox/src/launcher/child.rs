//! What runs in the launcher's children, between `clone` and `execve`.
//!
//! Everything a child needs (C strings and the pointer arrays `execve`
//! takes, the Landlock ruleset, the compiled seccomp filter, the fds to
//! keep) is prepared by the launcher before the child exists, so the child
//! only makes system calls. No child of the launcher is a copy of it:
//! copying its page tables, faulting its pages back in and tearing the
//! copy down again was a third of a sandboxed spawn's CPU. An unconfined
//! command's process and a worker share the launcher's memory until they
//! exec, as with `posix_spawn` (see [`spawn_unconfined`]).
//!
//! Namespace layer: the launcher `clone`s the worker's init into new mount
//! and PID namespaces, sharing the launcher's memory (`CLONE_VM`, see
//! [`spawn_in_namespaces`]), and waits while init builds the worker's file
//! system, mounts a fresh `/proc`, caps the process count, leaves the
//! network and starts the worker (see [`start_worker`]). Once the worker
//! has exec'd (in a sandbox cell: once its worker made ahead has its
//! task, see [`spawn_in_namespaces`]), init tells the launcher, which goes
//! on, and waits: SIGTERM
//! sent to init is passed on to every process in the namespace; when the
//! worker ends, init kills and reaps whatever is left, reports the worker's
//! status and exits. From the moment the launcher goes on, init runs
//! beside it in the same memory and makes raw system calls only, on its own
//! stack (see [`raw`](super::raw)).
//!
//! Order in the worker matters: signal mask and session first (its own
//! process group, no controlling terminal), then fds, directory, limits,
//! capabilities, `no_new_privs`, Landlock, and seccomp last (it forbids
//! calls the earlier steps need).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use seccompiler::BpfProgram;

use crate::confine;
use crate::namespaces::{self, TaskMounts};
use crate::policy::Policy;
use crate::seccomp;

use super::stack::ChildStack;

/// Everything a worker's process needs, built before init is cloned.
pub(super) struct Prepared {
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: CString,
    /// (fd received from the coordinator, where it lands in the worker).
    pub fds: Vec<(RawFd, RawFd)>,
    /// Fds above 2 that stay open in the worker.
    pub keep: Vec<RawFd>,
    /// `cgroup.procs` files to join before anything of the worker runs.
    pub cgroups: Vec<RawFd>,
    pub policy: Box<Policy>,
    /// The unprivileged (uid, gid) the worker switches to, if any.
    pub identity: Option<(u32, u32)>,
    /// The Landlock ruleset, as its fd: init adds the rules of what it
    /// mounts to the ruleset the launcher built, which the worker applies.
    pub ruleset: OwnedFd,
    /// Shared with the launcher's cache of filters, one per network kind.
    pub filter: std::rc::Rc<BpfProgram>,
    /// Write end of the failure pipe (close-on-exec).
    pub errors: RawFd,
    /// The launcher's read ends of this worker's pipes: closed first thing
    /// in the child, so that the pipes' only readers are in the launcher.
    pub launcher_ends: Vec<RawFd>,
}

/// What the worker's process reads of [`Prepared`] on its way to `execve`,
/// laid out by the launcher: a process that shares the launcher's memory
/// must not allocate what nobody would free.
struct Laid {
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// Fds that stay open past 2, sorted: the kept ones and the failure
    /// pipe.
    open: Vec<u32>,
}

impl Laid {
    fn of(prepared: &Prepared) -> Self {
        let pointers = |strings: &[CString]| {
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Self {
            argv: pointers(&prepared.argv),
            envp: pointers(&prepared.env),
            open: sorted_above_2(prepared.keep.iter().chain([&prepared.errors])),
        }
    }
}

/// The fds above 2 of `fds`, sorted, once each.
fn sorted_above_2<'a>(fds: impl Iterator<Item = &'a RawFd> + Clone) -> Vec<u32> {
    let mut open = vec![0; fds.clone().count()];
    let n = sorted_above_2_in(fds, &mut open);
    open.truncate(n);
    open
}

/// [`sorted_above_2`] into `out`: how many it wrote (those past `out`'s
/// room are left out). It allocates nothing, for a cell's worker made
/// ahead (see [`armed_worker`]), which runs beside the launcher in its
/// memory.
fn sorted_above_2_in<'a>(fds: impl Iterator<Item = &'a RawFd>, out: &mut [u32]) -> usize {
    let mut count = 0;
    for fd in fds.filter_map(|&fd| u32::try_from(fd).ok()) {
        if fd > 2 && count < out.len() {
            out[count] = fd;
            count += 1;
        }
    }
    let open = &mut out[..count];
    open.sort_unstable();
    let mut unique = 0;
    for i in 0..open.len() {
        if unique == 0 || open[i] != open[unique - 1] {
            open[unique] = open[i];
            unique += 1;
        }
    }
    unique
}

/// Everything an unconfined command's process needs, built before it
/// starts: the process shares the launcher's memory until it execs (see
/// [`spawn_unconfined`]), so it allocates nothing on its way there.
pub(super) struct Unconfined {
    pub argv: Vec<CString>,
    pub env: Vec<std::rc::Rc<std::ffi::CStr>>,
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

/// A worker's init, started by [`spawn_in_namespaces`]: its pid, and the
/// stacks it and the worker ran on, which the launcher must keep mapped
/// until init is reaped (init shares the launcher's memory; the worker
/// did until it exec'd, and a worker killed with init before it did is
/// gone only once init is).
pub(super) struct Namespaced {
    pub pid: i32,
    pub stacks: [ChildStack; 2],
    /// In a cell whose worker had its task but had not said it runs when
    /// the launcher went on: what the worker still reads (see [`Pending`]).
    pub pending: Option<Pending>,
}

/// Of a worker given its task in a cell (see [`spawn_in_namespaces`]),
/// what it may still read of the launcher's memory on its way to
/// `execve`, beside the [`Prepared`] the launcher keeps with it: its
/// pointer arrays, and the launcher's dumpable flag to restore once it
/// has exec'd (see [`restore_dumpable`]).
pub(super) struct Pending {
    _laid: Box<Laid>,
    dumpable: libc::c_int,
}

/// A worker started in a cell that has not said yet that it runs:
/// everything it and its init may still read of the launcher's memory
/// (its [`Prepared`] and [`Pending`], the cell's word init waits on), kept
/// until init says the worker has exec'd or left (then nothing of it is
/// read any more) or init is reaped (then nothing of its namespace runs).
/// Dropped, it makes the launcher dumpable again as it was (see
/// [`restore_dumpable`]).
pub(super) struct Starting {
    pending: Pending,
    _prepared: Box<Prepared>,
    cell: super::cell::Cell,
    /// Whether init may still say something (it has not left without).
    watching: bool,
}

impl Starting {
    pub fn new(pending: Pending, prepared: Box<Prepared>, cell: super::cell::Cell) -> Self {
        Self {
            pending,
            _prepared: prepared,
            cell,
            watching: true,
        }
    }

    /// The launcher's end of the pipe on which init says the worker runs,
    /// while it is to be watched.
    pub fn watched(&self) -> Option<RawFd> {
        self.watching.then(|| self.cell.ready().1)
    }

    /// Init said something, or left: whether the worker runs now (then
    /// this may go). Once init left without a word, this stays until it
    /// is reaped, and is watched no more.
    pub fn heard(&mut self) -> bool {
        match self.cell.runs() {
            Some(true) => true,
            Some(false) => {
                self.watching = false;
                false
            }
            None => false,
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        restore_dumpable(self.pending.dumpable);
    }
}

/// What init reads of the launcher's, through the pointer `clone` passes.
struct InitArgs<'a> {
    prepared: &'a Prepared,
    laid: &'a Laid,
    mounts: &'a TaskMounts,
    /// Where the worker's wait status goes (the launcher reads it).
    status: RawFd,
    /// Written once the worker has exec'd: the launcher goes on then.
    ready: RawFd,
    /// The launcher's end of `ready`.
    ready_read: RawFd,
    worker_stack: &'a ChildStack,
    /// In a cell (see [`cell`](super::cell)): it made the shared part of
    /// the file system already, and shares the launcher's file table until
    /// the worker runs.
    in_cell: bool,
    /// The cell's worker made ahead, if it has one (see
    /// [`armed`](super::armed)).
    armed: Option<super::cell::ArmedWorker>,
}

/// Whether a worker's init can share the launcher's memory (and so be a
/// cell): not for a worker that joins cgroups, nor off x86-64 and AArch64
/// (see [`spawn_in_namespaces`]).
pub(super) fn init_shares(prepared: &Prepared) -> bool {
    prepared.cgroups.is_empty() && cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
}

/// Starts the worker's init in new mount and PID namespaces and returns
/// once init has started the worker (or failed to; its failure pipe then
/// says why, and reaping it reports the worker's end); a worker that joins
/// cgroups gets an init that is a copy of the launcher, which is not
/// waited for (see below).
///
/// Init is `clone`d sharing the launcher's memory (`CLONE_VM`): a `fork`
/// copied the launcher's page tables, had both of them fault pages back
/// in, and tore the copy down when init left, about a third of a
/// sandboxed spawn's CPU. So the launcher waits (on a pipe) while init
/// prepares the worker's namespaces, since init uses the launcher's heap
/// meanwhile, as a thread would; once the worker has exec'd, init touches
/// nothing but its own stack and makes raw system calls only (see
/// [`init`]). So the launcher serves nothing else while an init prepares
/// (a few hundred microseconds, unless a file system stalls the worker's
/// way to `execve`: its directory, its program).
///
/// In a cell, the launcher waits less: only until the cell's worker made
/// ahead has its task (init has used the heap until then), not until it
/// has exec'd. The worker's own steps and the start of its `execve` (a
/// third to a half of a sandboxed no-op task's start, in which the
/// launcher, serving every slot, could do nothing else) run beside the
/// launcher; they make raw calls only and allocate nothing (see
/// [`armed_worker`]). What they read of the launcher's memory, the caller
/// keeps (`prepared`, boxed, and [`Namespaced::pending`]) until init says
/// the worker runs or init is reaped (see [`Starting`]).
pub(super) fn spawn_in_namespaces(
    prepared: &Prepared,
    mounts: &TaskMounts,
    status: &OwnedFd,
    cell: Option<&mut super::cell::Cell>,
) -> Result<Namespaced, String> {
    let laid = Box::new(Laid::of(prepared));
    if let Some(cell) = cell {
        return in_cell(prepared, laid, mounts, status, cell);
    }
    spawn_init(prepared, &laid, mounts, status)
}

/// [`spawn_in_namespaces`] in a cell that awaits its task: it goes on
/// from there as any init, while the launcher waits.
fn in_cell(
    prepared: &Prepared,
    laid: Box<Laid>,
    mounts: &TaskMounts,
    status: &OwnedFd,
    cell: &mut super::cell::Cell,
) -> Result<Namespaced, String> {
    let dumpable = dumpable();
    // What the cell made is known before its task is built on it.
    cell.prepared()?;
    // Init runs on the cell's first stack (it does already); the worker
    // on its second. Lent for the time of the start, back to the cell if
    // it fails (the cell is reaped later, and may still be on them).
    let stacks = cell.lend_stacks();
    let Some(stacks) = stacks else {
        return Err("start the worker's init: its cell has no stacks".into());
    };
    let (ready, ready_read) = cell.ready();
    let args = InitArgs {
        prepared,
        laid: &laid,
        mounts,
        status: status.as_raw_fd(),
        ready,
        ready_read,
        worker_stack: &stacks[1],
        in_cell: true,
        armed: cell.armed(),
    };
    // SAFETY: `args` lives on this frame until `take` returns, which is
    // once the worker has its task, or has exec'd, or init is gone: init
    // reads nothing of `args` after it handed the task over (see
    // `cell_init`). What the worker reads after is `prepared` and `laid`,
    // which the caller keeps until the worker runs or init is reaped.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let taken = unsafe { cell.take(std::ptr::from_ref(&args).cast()) };
    match taken {
        Ok((pid, true)) => {
            restore_dumpable(dumpable);
            Ok(Namespaced {
                pid,
                stacks,
                pending: None,
            })
        }
        Ok((pid, false)) => Ok(Namespaced {
            pid,
            stacks,
            pending: Some(Pending {
                _laid: laid,
                dumpable,
            }),
        }),
        Err(why) => {
            cell.give_back(stacks);
            Err(why)
        }
    }
}

/// The launcher's dumpable flag, before a worker that may switch users in
/// its memory starts (see [`restore_dumpable`]).
fn dumpable() -> libc::c_int {
    // SAFETY: prctl with integer arguments.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0)
    }
}

/// A worker that switched to the sandbox's user did so in the launcher's
/// memory, which the kernel then marks not dumpable (no ptrace, no /proc
/// access, also for what the launcher forks later): the worker has its
/// own memory now, and the launcher's is made as it was.
fn restore_dumpable(dumpable: libc::c_int) {
    if dumpable >= 0 {
        // SAFETY: prctl with integer arguments.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, dumpable, 0, 0, 0);
        }
    }
}

/// [`spawn_in_namespaces`] with an init cloned now.
fn spawn_init(
    prepared: &Prepared,
    laid: &Laid,
    mounts: &TaskMounts,
    status: &OwnedFd,
) -> Result<Namespaced, String> {
    let stack = |what: &str| {
        ChildStack::new().map_err(|e| format!("start the worker's {what} (its stack): {e}"))
    };
    let stacks = [stack("init")?, stack("process")?];
    let (ready_read, ready) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("start the worker's init (a pipe): {e}"))?;
    let args = InitArgs {
        prepared,
        laid,
        mounts,
        status: status.as_raw_fd(),
        ready: ready.as_raw_fd(),
        ready_read: ready_read.as_raw_fd(),
        worker_stack: &stacks[1],
        in_cell: false,
        armed: None,
    };
    // Over a template, init enters a copy of it: a copy of the launcher's
    // namespace (every mount of the host's) would only be thrown away.
    let dumpable = dumpable();
    let mut flags = match mounts.template {
        Some(_) => libc::CLONE_NEWPID,
        None => libc::CLONE_NEWNS | libc::CLONE_NEWPID,
    };
    // A worker that joins cgroups may wait there (a migration waits for an
    // RCU grace period, milliseconds on cgroup v1), and the launcher would
    // wait with it, holding up every other spawn: such a worker's init is
    // a copy of the launcher instead, which it does not wait for.
    // Elsewhere than x86-64 and AArch64, init's raw calls would go through
    // libc (see `raw`), and the kernel's signal set may be wider than init
    // passes: there init is a copy too.
    let shares = init_shares(prepared);
    if shares {
        flags |= libc::CLONE_VM;
    }
    // SAFETY: init runs on a stack of its own that the launcher keeps
    // mapped until init is reaped; sharing the launcher's memory, it uses
    // it (`args`, the heap) only until it writes to `ready`, and this
    // thread waits for that (or for init's end) before it touches
    // anything again; as a copy, it uses its own.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let pid = unsafe {
        stacks[0].clone_on(
            init_entry,
            std::ptr::from_ref(&args).cast_mut().cast(),
            flags,
        )
    }
    .map_err(|e| format!("start the worker's init (clone): {e}"))?;
    // Only init may hold the write end now: its end (a write, or its exit)
    // is what wakes us.
    drop(ready);
    if shares {
        let mut byte = [0u8; 1];
        // A byte: the worker runs. Nothing: init failed or was killed
        // (reaping it reports that).
        while nix::unistd::read(&ready_read, &mut byte) == Err(nix::errno::Errno::EINTR) {}
        restore_dumpable(dumpable);
    }
    Ok(Namespaced {
        pid,
        stacks,
        pending: None,
    })
}

/// Starts the worker directly (baseline, no namespaces); returns its pid.
/// A plain `fork`: this is the path of machines without user namespaces,
/// where the launcher starts few enough workers to pay for the copy.
pub(super) fn spawn_plain(prepared: &Prepared) -> Result<i32, String> {
    let laid = Laid::of(prepared);
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
            worker(prepared, &laid, true)
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
pub(super) fn spawn_unconfined(command: &Unconfined, stack: &ChildStack) -> Result<i32, String> {
    let mut argv: Vec<*const libc::c_char> = command.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = command.env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // Sources moved out of the way of every target first (where one is
    // another's target), so that no `dup2` in the process overwrites a
    // source still to be placed.
    let mut placed = Vec::with_capacity(command.fds.len());
    let mut copies = Vec::with_capacity(command.fds.len());
    let above = above_targets(&command.fds);
    let clear = clear_of_targets(&command.fds);
    if clear {
        placed.extend_from_slice(&command.fds);
    }
    for &(src, dst) in command.fds.iter().filter(|_| !clear) {
        let high = nix::fcntl::fcntl(
            // SAFETY: `src` is a descriptor the request brought, open for
            // the length of this call.
            #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
            unsafe {
                std::os::fd::BorrowedFd::borrow_raw(src)
            },
            nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(above),
        )
        .map_err(|e| format!("start the command: place its file descriptors: {e}"))?;
        // SAFETY: `high` is a fresh descriptor we own.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        copies.push(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high) });
        placed.push((high, dst));
    }
    let open = sorted_above_2(command.keep.iter().chain([&command.errors]));
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

/// The lowest fd number above every target of `fds` (and above stdio):
/// where a source is moved out of the way of them all.
///
/// Not a fixed high number (it was 1024 and 2048): a descriptor that high
/// grows the file table to thousands of slots, which the process then
/// copies, and `close_range` and `execve` walk slot by slot: two of a
/// sandboxed worker's `close_range` calls took 16 µs each.
fn above_targets(fds: &[(RawFd, RawFd)]) -> RawFd {
    fds.iter()
        .map(|&(_, target)| target.saturating_add(1))
        .fold(3, RawFd::max)
}

/// Whether no source of `fds` is a target (of any of them, its own
/// too): then each can be put in its place straight away, no `dup2`
/// overwriting a source still to be placed (and none a no-op that would
/// leave the fd close-on-exec). So it is for the usual worker, whose
/// sources came after its stdio, which are its only targets.
fn clear_of_targets(fds: &[(RawFd, RawFd)]) -> bool {
    !fds.iter()
        .any(|&(src, _)| fds.iter().any(|&(_, dst)| dst == src))
}

/// Puts each received fd at its place. The sources are first moved out of
/// the way of every target (unless they are [clear of
/// them](clear_of_targets)), so that no `dup2` overwrites a source still
/// to be placed. Allocation-free: at most [`MAX_FDS`](super::MAX_FDS)
/// come.
fn place_fds(fds: &[(RawFd, RawFd)]) -> Result<(), i32> {
    let mut moved = [(0, 0); super::MAX_FDS];
    if fds.len() > moved.len() {
        return Err(libc::EMFILE);
    }
    let above = above_targets(fds);
    let clear = clear_of_targets(fds);
    for (slot, &(src, dst)) in moved.iter_mut().zip(fds) {
        let high = match clear {
            true => src,
            false => fcntl_dupfd(src, above),
        };
        if high < 0 {
            return Err(-high);
        }
        *slot = (high, dst);
    }
    for &(high, dst) in &moved[..fds.len()] {
        // `dup3` with no flags is `dup2` (which AArch64 lacks); `high` is
        // never `dst` (a source on its own target is moved up first).
        // SAFETY: dup3 on fds of this process.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let ret = unsafe {
            super::raw::syscall4(
                libc::SYS_dup3,
                high.unsigned_abs() as usize,
                dst.unsigned_abs() as usize,
                0,
                0,
            )
        };
        if ret < 0 {
            return Err(i32::try_from(-ret).unwrap_or(libc::EIO));
        }
    }
    Ok(())
}

/// `fd` where no `dup2` of [`place_fds`] lands: itself, or, when it is
/// one of `fds`' targets, a close-on-exec copy above every target (`Err`:
/// the errno of the copy). The worker's Landlock ruleset is made in the
/// launcher at the lowest free number, which may be the number a kept fd
/// goes to (an agent's channel at 3): placed first, that fd closed the
/// ruleset, and `landlock_restrict_self` found another file there
/// (`EBADFD`, "File descriptor in bad state"; seen with twenty agents
/// starting at once).
fn clear_of(fd: RawFd, fds: &[(RawFd, RawFd)]) -> Result<RawFd, i32> {
    if !fds.iter().any(|&(_, dst)| dst == fd) {
        return Ok(fd);
    }
    let moved = fcntl_dupfd(fd, above_targets(fds));
    match moved < 0 {
        true => Err(-moved),
        false => Ok(moved),
    }
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, lowest)`, raw: the new fd, or `-errno`.
fn fcntl_dupfd(fd: RawFd, lowest: RawFd) -> RawFd {
    // SAFETY: fcntl on an fd of this process, integer arguments.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ret = unsafe {
        super::raw::syscall4(
            libc::SYS_fcntl,
            fd.unsigned_abs() as usize,
            libc::F_DUPFD_CLOEXEC as usize,
            lowest.unsigned_abs() as usize,
            0,
        )
    };
    RawFd::try_from(ret).unwrap_or(-libc::EBADF)
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
    fail_os(errors, &[message.as_bytes()], None)
}

/// Writes the concatenation of `parts` to the failure pipe, with `errno`
/// after a NUL (the launcher reads it as `<parts>: <errno's message>`, see
/// [`failure_message`]), and exits: no allocation, raw calls only, for a
/// process that runs beside the launcher in its memory.
///
/// At most `PIPE_BUF` bytes: the launcher reads the pipe only once the
/// worker has ended, and a longer write (a failed `execve` names the
/// program, which may be long) could wait for room forever while the
/// launcher waits for this process.
fn fail_os(errors: RawFd, parts: &[&[u8]], errno: Option<i32>) -> ! {
    // After the parts, a NUL, then the errno's digits.
    let mut digits = [0u8; 20];
    let number = match errno {
        Some(errno) => super::raw::decimal(u64::from(errno.unsigned_abs()), &mut digits),
        None => &[],
    };
    let nul = usize::from(errno.is_some());
    let mut message = [0u8; libc::PIPE_BUF];
    let room = message.len() - nul - number.len();
    let mut len = 0;
    for part in parts {
        let take = part.len().min(room - len);
        message[len..len + take].copy_from_slice(&part[..take]);
        len += take;
    }
    // The buffer is zeroed: the NUL is there already.
    len += nul;
    message[len..len + number.len()].copy_from_slice(number);
    len += number.len();
    // SAFETY: writing a local buffer, then leaving without running any
    // of the parent's destructors or atexit handlers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        super::raw::syscall4(
            libc::SYS_write,
            errors.unsigned_abs() as usize,
            message.as_ptr() as usize,
            len,
            0,
        );
    }
    super::raw::exit(EXIT_CONFINE)
}

/// The failure a worker's process wrote (see [`fail_os`]), as the
/// message the coordinator gets: an errno after a NUL is spelled out.
pub(super) fn failure_message(written: &[u8]) -> String {
    let errno = written
        .iter()
        .rposition(|&b| b == 0)
        .and_then(|at| Some((at, std::str::from_utf8(&written[at + 1..]).ok()?)))
        .and_then(|(at, digits)| Some((at, digits.parse::<i32>().ok()?)));
    match errno {
        Some((at, errno)) => format!(
            "{}: {}",
            String::from_utf8_lossy(&written[..at]),
            std::io::Error::from_raw_os_error(errno)
        ),
        None => String::from_utf8_lossy(written).into_owned(),
    }
}

/// The body of init, pid 1 of the worker's namespace (see
/// [`spawn_in_namespaces`]).
extern "C" fn init_entry(args: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the pointer `spawn_in_namespaces` passed, to `InitArgs` that
    // live while the launcher waits; read only before `ready` is written.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let args = unsafe { &*args.cast::<InitArgs<'_>>() };
    let (status, ready) = (args.status, args.ready);
    let child = prepare_init(args, None);
    let mut keep = [0u32; 4];
    let kept = init_keeps(status, ready, &args.prepared.fds, &mut keep);
    close_all_but(&keep[..kept]);
    init(child, status, ready)
}

/// Where a cell goes on once its task came (see
/// [`cell`](super::cell)): `args` points to the task's [`InitArgs`];
/// `ahead`: what the cell made before its task came.
pub(super) fn cell_init(args: *mut libc::c_void, ahead: namespaces::Ahead) -> libc::c_int {
    // SAFETY: the pointer `in_cell` stored for the cell before waking it,
    // to `InitArgs` that live while the launcher waits.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let args = unsafe { &*args.cast::<InitArgs<'_>>() };
    let (status, ready) = (args.status, args.ready);
    // What it keeps open, reckoned now: once the worker has its task, the
    // launcher goes on, and init reads nothing of `args` any more.
    let mut keep = [0u32; 4];
    let kept = init_keeps(status, ready, &args.prepared.fds, &mut keep);
    // A file table of its own first, a copy of the launcher's with
    // everything the launcher opened for the task: what init opens from
    // here on (the process cap's file, a rule's path) must not be caught
    // in the copy another cell makes of the shared table as it starts its
    // worker (a `pid_max` file open for writing there kept `/proc` from
    // being made read-only).
    // SAFETY: unshare takes no pointers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    if unsafe { libc::unshare(libc::CLONE_FILES) } == -1 {
        fail(
            args.prepared.errors,
            &format!(
                "start the worker's init: a file table of its own: {}",
                std::io::Error::last_os_error()
            ),
        );
    }
    let child = prepare_init(args, Some(ahead));
    close_all_but(&keep[..kept]);
    init(child, status, ready)
}

/// The fds init keeps (see [`close_all_but`]), sorted into `keep`: its
/// status pipe, `ready` and its copies of the worker's stdout and stderr
/// (of `fds`, the worker's (source, target) pairs). How many.
fn init_keeps(status: RawFd, ready: RawFd, fds: &[(RawFd, RawFd)], keep: &mut [u32; 4]) -> usize {
    let outputs = fds
        .iter()
        .filter(|&&(_, target)| super::is_output(target))
        .map(|(source, _)| source);
    sorted_above_2_in([&status, &ready].into_iter().chain(outputs), keep)
}

/// Closes all of init's fds but `keep` (sorted, see [`init_keeps`]).
///
/// Init keeps nothing else of the launcher's: the coordinator's socket,
/// the worker's other fds and the failure pipe are the worker's business.
/// It keeps the worker's output until it leaves, just after it wrote the
/// worker's status: the worker's exit closing the last copy woke the
/// coordinator (a pipe's wake-up is "sync": on the closing CPU), which did
/// its work for the task's end and the next task's start there before the
/// exit could finish and the next task on deck could start (300 µs of a
/// sandboxed no-op task at one slot). Raw calls only: in a cell, the
/// launcher runs beside by now.
fn close_all_but(keep: &[u32]) {
    if confine::close_fds_sorted(keep).is_err() {
        super::raw::exit(EXIT_CONFINE);
    }
}

/// Init's work while the launcher waits: isolation, the worker started.
/// Returns the worker's pid; on failure, says why on the failure pipe and
/// exits. Whatever it allocates it frees before it returns (the heap is
/// the launcher's), but for the message of a failure, which the launcher
/// keeps (a few hundred bytes a failed spawn). It must not panic: the
/// panic machinery's state is the launcher's too (every step returns its
/// error instead, as the workspace's lints hold).
fn prepare_init(args: &InitArgs<'_>, cell: Option<namespaces::Ahead>) -> i32 {
    let prepared = args.prepared;
    // The launcher dies with the coordinator; init (and so the whole
    // namespace) dies with the launcher. A cell saw to that as it began
    // (the launcher's ends are in its copy of the table, closed with the
    // rest once the worker runs).
    if !args.in_cell {
        die_with_launcher(args.status, &prepared.launcher_ends);
        // SAFETY: closing init's copy of the launcher's end of `ready`.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            libc::close(args.ready_read);
        }
    }
    // Init stays out of the task's cgroups (the worker joins them, and so
    // does all it starts): init reports the worker's end before its own
    // exit has torn the namespace down, and a member still on its way out
    // would keep the cgroup busy after the report.
    let capped = match namespaces::isolate_task(args.mounts, cell) {
        Ok(capped) => capped,
        Err(message) => fail(prepared.errors, &message),
    };
    // Landlock ignores rules on a covered mount point: the fresh /proc
    // needs a rule of its own, which only exists now; so does the private
    // /dev/shm the view mounted (init exists only where the view was
    // built, so this is never the host's).
    let ruleset = prepared.ruleset.as_raw_fd();
    if let Err(e) = confine::allow_read_fd(ruleset, std::path::Path::new("/proc")) {
        fail(prepared.errors, &format!("confine the worker: {e}"));
    }
    let shm = std::path::Path::new(crate::view::SHM);
    if cell.map_or_else(|| shm.is_dir(), |ahead| ahead.shm)
        && let Err(e) = confine::allow_write_fd(ruleset, shm)
    {
        fail(prepared.errors, &format!("confine the worker: {e}"));
    }
    if let Some(armed) = args.armed {
        if let Some(pid) = give_task(args, armed, !capped) {
            return pid;
        }
        // Gone, or it could not take the task: one started now instead,
        // on the stack it ran on.
        super::armed::put_down(armed.pid);
    }
    start_worker(args, !capped)
}

/// Gives the cell's worker made ahead its task (see
/// [`armed`](super::armed)): its pid once it has exec'd (or failed, which
/// its end reports), `None` if it cannot take it.
fn give_task(
    args: &InitArgs<'_>,
    armed: super::cell::ArmedWorker,
    nproc_limit: bool,
) -> Option<i32> {
    let prepared = args.prepared;
    let worker_args = WorkerArgs {
        prepared,
        laid: args.laid,
        nproc_limit,
    };
    // In the order `armed_worker` reads them; on this frame, not the
    // heap: the launcher goes on as the worker has them, before this
    // returns.
    let mut fds = [-1 as RawFd; super::armed::MOST_FDS];
    let own = prepared.fds.iter().map(|&(source, _)| source);
    let mut count = 0;
    for (slot, fd) in fds.iter_mut().zip(
        [prepared.errors, prepared.ruleset.as_raw_fd()]
            .into_iter()
            .chain(own),
    ) {
        *slot = fd;
        count += 1;
    }
    // `worker_args` lives on this frame until the worker has exec'd: the
    // hand-over waits for that.
    let address = std::ptr::from_ref(&worker_args) as usize;
    // SAFETY: the word lives in the cell's `Shared`, which the launcher
    // keeps until init says the worker runs (see `Starting`).
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let running = unsafe { &*armed.running };
    super::armed::hand_over(armed.task_end, running, address, &fds[..count], args.ready)
        .then_some(armed.pid)
}

/// Where a cell's worker made ahead goes on once its task came (see
/// [`armed`](super::armed)): `args` is the address of its [`WorkerArgs`]
/// (on its init's stack), `fds` the `count` fds it was sent: its failure
/// pipe, its ruleset, then its own in the order of `Prepared::fds`.
/// `args`, and the launcher's memory it points to, live until its
/// `execve` (the cell's init waits for that on its word, see
/// [`armed::hand_over`](super::armed::hand_over), and the launcher keeps
/// what it reads until init says so, see [`Starting`]). Its task's steps,
/// then `execve`.
///
/// The launcher runs beside it from the moment it has its task: raw calls
/// only (a libc wrapper's failure would write the launcher's `errno`), no
/// allocation, and a failure is said without formatting (see
/// [`fail_os`]).
pub(super) extern "C" fn armed_worker(args: usize, fds: *const RawFd, count: usize) -> libc::c_int {
    // SAFETY: the address `give_task` sent, of `WorkerArgs` alive until this
    // process execs or exits; `fds` points to `count` fds on the caller's
    // stack.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let (args, fds) = unsafe {
        (
            &*(args as *const WorkerArgs<'_>),
            std::slice::from_raw_parts(fds, count),
        )
    };
    let p = args.prepared;
    // Both moved out of the way of the fds to be placed, if a kept fd's
    // target is the number one of them came as.
    let above = above_targets(&p.fds);
    let high = |fd: RawFd| {
        if p.fds.iter().all(|&(_, target)| target != fd) {
            return fd;
        }
        fcntl_dupfd(fd, above)
    };
    let [errors, ruleset, own @ ..] = fds else {
        // Nowhere to say why.
        super::raw::exit(EXIT_CONFINE);
    };
    let (errors, ruleset) = (high(*errors), high(*ruleset));
    if errors < 0 {
        super::raw::exit(EXIT_CONFINE);
    }
    if ruleset < 0 || own.len() != p.fds.len() || own.len() > super::MAX_FDS {
        fail(
            errors,
            "start the worker: its file descriptors did not all come",
        );
    }
    let mut placed = [(0, 0); super::MAX_FDS];
    for (slot, (&received, &(_, target))) in placed.iter_mut().zip(own.iter().zip(&p.fds)) {
        *slot = (received, target);
    }
    let mut open = [0u32; super::MAX_FDS + 2];
    let unique = sorted_above_2_in(p.keep.iter().chain([&errors]), &mut open);
    let open = &open[..unique];
    if let Err((what, detail, errno)) =
        confine_armed(p, &placed[..own.len()], ruleset, open, args.nproc_limit)
    {
        fail_os(errors, &[b"confine the worker: ", what, detail], errno);
    }
    execve(&args.laid.argv, &args.laid.envp, errors)
}

/// A failure of a step, for [`fail_os`]: the step, a detail (a path, a
/// limit's name) and the errno.
type Unformatted<'a> = (&'static [u8], &'a [u8], Option<i32>);

/// What is left of a worker's confinement (see [`confine_worker`]) once a
/// cell's worker made ahead has its task: it took its session, signals,
/// parent-death signal, `no_new_privs` and seccomp filter before (the
/// filter denies none of the calls here). A failure as the step, a detail
/// (a path, a limit's name) and the errno, unformatted (see
/// [`armed_worker`]).
fn confine_armed<'a>(
    p: &'a Prepared,
    placed: &[(RawFd, RawFd)],
    ruleset: RawFd,
    open: &[u32],
    nproc_limit: bool,
) -> Result<(), Unformatted<'a>> {
    let parts = |e: confine::ConfineError| {
        let (what, detail, errno) = e.parts();
        (what.as_bytes(), detail.as_bytes(), errno)
    };
    let ruleset = clear_of(ruleset, placed).map_err(|errno| {
        (
            &b"move the Landlock ruleset clear of the worker's file descriptors"[..],
            &b""[..],
            Some(errno),
        )
    })?;
    place_fds(placed).map_err(|errno| {
        (
            &b"place the worker's file descriptors"[..],
            &b""[..],
            Some(errno),
        )
    })?;
    // SAFETY: chdir with a C string the launcher keeps alive.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ret = unsafe { super::raw::syscall4(libc::SYS_chdir, p.cwd.as_ptr() as usize, 0, 0, 0) };
    if ret < 0 {
        let errno = i32::try_from(-ret).ok();
        return Err((&b"enter "[..], p.cwd.as_bytes(), errno));
    }
    confine::set_limits(&p.policy, nproc_limit).map_err(parts)?;
    confine::drop_capabilities(p.identity).map_err(parts)?;
    confine::restrict_fd(ruleset).map_err(parts)?;
    confine::close_fds_sorted(open).map_err(parts)
}

/// Init once the worker runs: tells the launcher, then waits, passing
/// SIGTERM (and SIGINT, SIGHUP) on to every process of the namespace; when
/// the worker ends, kills and reaps everything it left, writes its wait
/// status to `status` and leaves.
///
/// From the write to `ready` on, the launcher runs again in the memory
/// init shares: so everything here lives on init's own stack, and every
/// call is a raw system call (no `errno`, no libc state).
fn init(child: i32, status: RawFd, ready: RawFd) -> ! {
    use super::raw::syscall4;
    // Built before the launcher goes on (sigaddset touches only `set`).
    // SAFETY: signal set handling on a local.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        set
    };
    // The kernel's sigset is 64 bits wide, libc's larger.
    const KERNEL_SIGSET: usize = 8;
    let byte = super::cell::RUNS;
    // SAFETY: raw system calls on locals of this frame and on fds of ours;
    // wait4 with a null rusage.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        syscall4(
            libc::SYS_write,
            ready as usize,
            (&raw const byte) as usize,
            1,
            0,
        );
        syscall4(libc::SYS_close, ready as usize, 0, 0, 0);
        loop {
            let sig = syscall4(
                libc::SYS_rt_sigtimedwait,
                (&raw const set) as usize,
                0,
                0,
                KERNEL_SIGSET,
            );
            if sig == libc::SIGTERM as isize
                || sig == libc::SIGINT as isize
                || sig == libc::SIGHUP as isize
            {
                // Every process of the namespace but init itself.
                syscall4(libc::SYS_kill, -1isize as usize, sig as usize, 0, 0);
                continue;
            }
            loop {
                let mut wstatus: libc::c_int = 0;
                let pid = syscall4(
                    libc::SYS_wait4,
                    -1isize as usize,
                    (&raw mut wstatus) as usize,
                    (libc::WNOHANG | libc::__WALL) as usize,
                    0,
                );
                if pid <= 0 {
                    break;
                }
                if pid == child as isize {
                    // Everything the worker left behind dies, and is
                    // reaped, before the status goes out: once the launcher
                    // has it, nothing in the namespace can still write to
                    // the worktree. (The kernel would kill them when init
                    // leaves, but only after tearing the namespace's mounts
                    // down, which then delayed every worker's end.) A kill
                    // of every process cannot miss one being forked: a
                    // fork that races a SIGKILL to its parent fails.
                    syscall4(
                        libc::SYS_kill,
                        -1isize as usize,
                        libc::SIGKILL as usize,
                        0,
                        0,
                    );
                    while syscall4(
                        libc::SYS_wait4,
                        -1isize as usize,
                        0,
                        libc::__WALL as usize,
                        0,
                    ) > 0
                    {}
                    let bytes = wstatus.to_ne_bytes();
                    syscall4(
                        libc::SYS_write,
                        status as usize,
                        bytes.as_ptr() as usize,
                        bytes.len(),
                        0,
                    );
                    super::raw::exit(0);
                }
            }
        }
    }
}

/// What the worker's process reads (see [`start_worker`]).
struct WorkerArgs<'a> {
    prepared: &'a Prepared,
    laid: &'a Laid,
    nproc_limit: bool,
}

/// Starts the worker from init as `posix_spawn` would (`CLONE_VM |
/// CLONE_VFORK`), returns its pid; on failure, says why and exits (init
/// has nothing else to do). The worker runs on a stack the launcher made
/// while init is suspended, in the memory init and the launcher share; it
/// allocates nothing on its way to `execve` but a failure's message.
fn start_worker(args: &InitArgs<'_>, nproc_limit: bool) -> i32 {
    let worker_args = WorkerArgs {
        prepared: args.prepared,
        laid: args.laid,
        nproc_limit,
    };
    // SAFETY: `worker_entry` gets a pointer to `worker_args`, which lives
    // on this frame while init is suspended; the worker never returns into
    // init's frames.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let pid = unsafe {
        args.worker_stack.spawn(
            worker_entry,
            std::ptr::from_ref(&worker_args).cast_mut().cast(),
        )
    };
    match pid {
        Ok(pid) => pid,
        Err(e) => fail(
            args.prepared.errors,
            &format!("start the worker (clone): {e}"),
        ),
    }
}

/// The body of the worker's process (see [`start_worker`]).
extern "C" fn worker_entry(args: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the pointer `start_worker` passed, to `WorkerArgs` that live
    // until this process execs or exits.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let args = unsafe { &*args.cast::<WorkerArgs<'_>>() };
    // Before anything of the worker runs, so that it and all it starts are
    // in them.
    join_cgroups(&args.prepared.cgroups, args.prepared.errors);
    worker(args.prepared, args.laid, args.nproc_limit)
}

/// The worker's own process: confine, then `execve` (`argv[0]` is a path).
fn worker(prepared: &Prepared, laid: &Laid, nproc_limit: bool) -> ! {
    let errors = prepared.errors;
    if let Err(message) = confine_worker(prepared, laid, nproc_limit) {
        fail(errors, &format!("confine the worker: {message}"));
    }
    execve(&laid.argv, &laid.envp, errors)
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
    let ret = unsafe {
        super::raw::syscall4(
            libc::SYS_execve,
            program as usize,
            argv.as_ptr() as usize,
            envp.as_ptr() as usize,
            0,
        )
    };
    // SAFETY: `program` is a non-null pointer into a live C string.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let program = unsafe { std::ffi::CStr::from_ptr(program) };
    let errno = i32::try_from(-ret).ok();
    fail_os(errors, &[b"start ", program.to_bytes()], errno)
}

/// The worker's confinement, in order; allocates nothing but a failure's
/// message (it may share the launcher's memory).
fn confine_worker(p: &Prepared, laid: &Laid, nproc_limit: bool) -> Result<(), String> {
    let os = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    default_signals();
    let ruleset = clear_of(p.ruleset.as_raw_fd(), &p.fds).map_err(|errno| {
        let why = std::io::Error::from_raw_os_error(errno);
        format!("move the Landlock ruleset clear of the worker's file descriptors: {why}")
    })?;
    // SAFETY: plain syscalls on this process with valid local pointers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        // A new session: no controlling terminal (so no TIOCSTI into the
        // user's shell), and a process group of its own for group kills.
        if libc::setsid() == -1 {
            return Err(os("detach from the terminal (setsid)"));
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        place_fds(&p.fds).map_err(|errno| {
            let why = std::io::Error::from_raw_os_error(errno);
            format!("place the worker's file descriptors: {why}")
        })?;
        if libc::chdir(p.cwd.as_ptr()) == -1 {
            return Err(os(&format!("enter {}", p.cwd.to_string_lossy())));
        }
    }
    confine::set_limits(&p.policy, nproc_limit).map_err(|e| e.to_string())?;
    confine::drop_capabilities(p.identity).map_err(|e| e.to_string())?;
    confine::no_new_privs().map_err(|e| e.to_string())?;
    confine::restrict_fd(ruleset).map_err(|e| e.to_string())?;
    confine::close_fds_sorted(&laid.open).map_err(|e| e.to_string())?;
    seccomp::apply(&p.filter).map_err(|e| format!("install the seccomp filter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ruleset_where_a_kept_fd_goes_is_moved_above_every_target() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let fd = read.as_raw_fd();
        // Not a target: left where it is.
        assert_eq!(clear_of(fd, &[(write.as_raw_fd(), 0)]), Ok(fd));
        // A target: a copy of the same file above every target.
        let fds = [(write.as_raw_fd(), fd), (write.as_raw_fd(), fd + 5)];
        let moved = clear_of(fd, &fds).unwrap();
        assert!(moved > fd + 5, "{moved}");
        let file = |fd: RawFd| std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        assert_eq!(file(moved), file(fd));
        nix::unistd::close(moved).unwrap();
    }

    #[test]
    fn fds_move_out_of_the_way_only_of_targets_and_just_above_them() {
        // The usual worker: its fds came after its stdio, its only targets.
        let usual = [(5, 0), (6, 1), (7, 2)];
        assert!(clear_of_targets(&usual));
        assert_eq!(above_targets(&usual), 3);
        // A kept fd whose target is the number another came as.
        let crossing = [(5, 0), (6, 1), (7, 2), (9, 6)];
        assert!(!clear_of_targets(&crossing));
        assert_eq!(above_targets(&crossing), 7);
        // One already at its own number: dup2 onto itself would leave it
        // close-on-exec, so it is moved too.
        assert!(!clear_of_targets(&[(4, 4)]));
        // A target far above: the copies go above it.
        assert_eq!(above_targets(&[(5, 0), (6, 900)]), 901);
        assert_eq!(above_targets(&[]), 3);
    }

    /// What a process that calls `fail_os(parts, errno)` writes, as the
    /// launcher reads it: run in a forked child, which leaves by it.
    fn failed_with(parts: &[&[u8]], errno: Option<i32>) -> (String, i32) {
        let (read, write) = nix::unistd::pipe().unwrap();
        // SAFETY: the child writes and leaves by raw calls only.
        #[expect(unsafe_code, reason = "a test of a child's last words")]
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            fail_os(write.as_raw_fd(), parts, errno);
        }
        drop(write);
        let mut status = 0;
        // SAFETY: our own child.
        #[expect(unsafe_code, reason = "a test of a child's last words")]
        unsafe {
            libc::waitpid(pid, &mut status, 0);
        }
        let mut written = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(read), &mut written).unwrap();
        (failure_message(&written), libc::WEXITSTATUS(status))
    }

    #[test]
    fn a_failure_said_without_formatting_reads_as_the_formatted_one() {
        let (message, code) =
            failed_with(&[b"confine the worker: ", b"enter ", b"/w/gone"], Some(2));
        assert_eq!(
            message,
            format!(
                "confine the worker: enter /w/gone: {}",
                std::io::Error::from_raw_os_error(2)
            )
        );
        assert_eq!(code, EXIT_CONFINE);
        // Without an errno, the text as it is.
        assert_eq!(
            failed_with(&[b"start the worker: no command given"], None).0,
            "start the worker: no command given"
        );
        // A long one is cut to what one pipe write holds, its errno kept.
        let long = vec![b'x'; 2 * libc::PIPE_BUF];
        let (message, _) = failed_with(&[b"start ", &long], Some(libc::ENOENT));
        assert!(
            message.ends_with(&format!(
                ": {}",
                std::io::Error::from_raw_os_error(libc::ENOENT)
            )),
            "{message}"
        );
        assert!(message.len() < libc::PIPE_BUF + 100);
        // Every step's error says the same both ways.
        use crate::confine::ConfineError;
        let os = || std::io::Error::from_raw_os_error(libc::EPERM);
        let steps = [
            ConfineError::Limit {
                name: "RLIMIT_NOFILE",
                source: os(),
            },
            ConfineError::Fds(os()),
            ConfineError::Capabilities(os()),
            ConfineError::Identity(os()),
            ConfineError::NoNewPrivs(os()),
            ConfineError::Restrict(os()),
            ConfineError::AddRule(os()),
        ];
        for step in steps {
            let (what, detail, errno) = step.parts();
            let (message, _) = failed_with(&[what.as_bytes(), detail.as_bytes()], errno);
            assert_eq!(message, step.to_string());
        }
        // A written text with no errno after a NUL is taken as it is.
        assert_eq!(failure_message(b"plain"), "plain");
    }
}
