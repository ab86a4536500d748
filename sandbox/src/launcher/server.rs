//! The launcher process (`swarm __sandbox`): sets up the run-wide
//! namespaces once, then serves spawn and stop requests from the
//! coordinator until its socket closes. Single-threaded by design: Landlock,
//! `unshare(CLONE_NEWUSER)` and forking all require it. In
//! [`Mode::Unconfined`] (`swarm __sandbox --unconfined`) it sets up nothing
//! and starts unconfined commands only.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use seccompiler::BpfProgram;

use super::cell::{Cell, Like};
use super::child::{self, Prepared};
use super::stack;
use super::{CHANNEL_FD, MAX_FDS, MAX_MESSAGE, Mode, Reply, Request};
use crate::namespaces::{self, Base, NamespaceError, TaskMounts};
use crate::policy::{GatewayPorts, Network, Policy};
use crate::template::Templates;
use crate::{confine, seccomp};

impl Cells {
    /// A cell for a task `like` (whose filter is `filter`: its network
    /// kind's), with `running` other workers running: an idle
    /// one, or one made now (which the task then waits for); `None` if none
    /// can be made. Cells are made ahead for such tasks from now on.
    fn take(
        &mut self,
        like: Like,
        filter: &BpfProgram,
        templates: &Templates,
        running: usize,
    ) -> Option<Cell> {
        if !matches!(&self.last, Some((l, _)) if *l == like) {
            self.last = Some((like, filter.clone()));
        }
        // As many cells as workers run at once (this one counted).
        self.target = self.target.max((running + 1).min(MOST_CELLS));
        // The oldest idle one that is ready, else the oldest; one that
        // failed or died is let go of (the task is not its business).
        let fits = |c: &Cell| c.like == like;
        loop {
            let at = self
                .idle
                .iter()
                .position(|c| fits(c) && c.settled())
                .or_else(|| self.idle.iter().position(fits));
            let Some(at) = at else {
                // None made ahead: with more running than CPUs, a cell
                // made now would only cost its own work on top (the usual
                // start).
                if running > self.cpus {
                    return None;
                }
                return self.start(templates);
            };
            let mut cell = self.idle.remove(at);
            if cell.prepared().is_ok() {
                return Some(cell);
            }
            self.let_go(cell);
        }
    }

    /// Whether an idle cell is wanted for tasks like the last one, with
    /// `running` workers running. Not while more run than there are CPUs:
    /// a cell made ahead costs the same CPU as one made for its task, and
    /// gains only where a CPU or the launcher would otherwise wait. With
    /// as many as the CPUs (short tasks on every CPU) it gains: a task
    /// whose cell is made at its start holds the launcher, which serves
    /// every slot, while the cell prepares (a third of the launcher's time
    /// in a run of sandboxed no-op tasks at `-j 2` on two CPUs, with one
    /// CPU idle meanwhile).
    fn wanted(&self, templates: &Templates, running: usize) -> bool {
        let Some((like, _)) = &self.last else {
            return false;
        };
        if running > self.cpus {
            return false;
        }
        let idle = self.idle.iter().filter(|c| c.like == *like).count();
        idle < self.target && templates.namespace(like.serial).is_some()
    }

    /// Makes one idle cell for tasks like the last one; lets go of idle
    /// cells of templates gone or beyond what is kept.
    fn make(&mut self, templates: &Templates) {
        let mut keep = Vec::with_capacity(self.idle.len());
        for cell in std::mem::take(&mut self.idle) {
            let current = templates.namespace(cell.like.serial).is_some();
            if current && keep.len() < 2 * MOST_CELLS {
                keep.push(cell);
            } else {
                self.let_go(cell);
            }
        }
        self.idle = keep;
        match self.start(templates) {
            Some(cell) => self.idle.push(cell),
            // None now, none later: cells are not to be had here.
            None => self.last = None,
        }
    }

    /// A new cell for tasks like the last one.
    fn start(&mut self, templates: &Templates) -> Option<Cell> {
        let (like, filter) = self.last.as_ref()?;
        let namespace = templates.namespace(like.serial)?;
        let covers = templates.covers(like.serial)?;
        let launcher = self.pidfd.as_ref()?;
        let network_ns = match like.network {
            Network::None => Some(self.no_network.as_ref()?.as_fd()),
            Network::Full | Network::Gateway { .. } => None,
        };
        let arming = super::cell::Arming {
            filter,
            network: network_ns,
            then: child::armed_worker,
        };
        Cell::start(
            *like,
            namespace,
            covers,
            launcher.as_fd(),
            child::cell_init,
            Some(arming),
            self.spare.pop(),
        )
        .ok()
    }

    /// Keeps the stacks of a reaped init for a later cell (a few).
    fn spare(&mut self, stacks: Option<[stack::ChildStack; 2]>) {
        if let Some(stacks) = stacks
            && self.spare.len() < 2 * MOST_CELLS
        {
            self.spare.push(stacks);
        }
    }

    /// Kills `cell` and keeps it until it is reaped.
    fn let_go(&mut self, cell: Cell) {
        cell.kill();
        self.dying.push(cell);
    }

    /// Whether a cell is still to be reaped.
    fn any(&self) -> bool {
        !self.idle.is_empty() || !self.dying.is_empty()
    }

    /// Child `pid`, reaped, was no worker: a cell, idle or let go of.
    fn reaped(&mut self, pid: i32) {
        let mut stacks = None;
        for list in [&mut self.idle, &mut self.dying] {
            if let Some(at) = list.iter().position(|c| c.pid == pid) {
                stacks = list.swap_remove(at).reaped();
                break;
            }
        }
        self.spare(stacks);
    }
}

/// Exit code of the launcher when it cannot serve at all.
const EXIT_FATAL: i32 = super::EXIT_SANDBOX_FAILED;

/// A worker the launcher started and has not reaped yet.
struct Worker {
    id: u64,
    /// Read end of the pipe on which the worker's confinement reports a
    /// failure (closed unread by a successful `execve`).
    errors: OwnedFd,
    /// Namespace layer: read end of the pipe on which init reports the
    /// worker's wait status. `None` in the baseline, where `pid` is the
    /// worker itself (and leads its process group).
    ///
    /// Init writes it only once everything the worker left is killed and
    /// reaped, so when it comes the worktree is nobody's but the
    /// coordinator's to snapshot. Nothing of the task can write to it: the
    /// worker's copy is closed before `execve`, and init's `/proc/1/fd` is
    /// closed to processes that cannot ptrace init (none of the task's).
    status: Option<OwnedFd>,
    /// Namespace layer: whether the status pipe is still watched. Init
    /// writes the status once everything in the namespace is gone, then
    /// leaves; the worker's end is reported then, not when init is reaped
    /// (its exit first tears the namespace's mounts down). An init killed
    /// before it wrote (a stop with SIGKILL) is reported when reaped.
    watching: bool,
    /// The worker's end went to the coordinator already; its init is
    /// still to be reaped.
    reported: bool,
    /// An unconfined command's cgroup (its `cgroup.procs`), whose members
    /// are killed with it if the coordinator goes away.
    reap: Option<PathBuf>,
    /// Namespace layer: the stacks init and the worker ran on, in the
    /// launcher's memory, which init shares: unmapped once init is reaped.
    stacks: Option<[stack::ChildStack; 2]>,
    /// An unconfined command's stdout and stderr (the launcher's copies),
    /// closed once its end is reported: the coordinator reads to the end
    /// of them, and a command's exit closing the last copy woke the
    /// coordinator on the command's CPU (a pipe's wake-up is "sync"),
    /// where it did its work for the task's end and the next task's start
    /// before the command's exit could finish and be reaped: the command
    /// on deck waited for that, a third of a no-op task at one slot.
    #[expect(
        dead_code,
        reason = "held, never read: closed with the record, once the end is reported"
    )]
    outputs: Vec<OwnedFd>,
    /// A worker started in a cell that has not said yet that it runs: what
    /// it still reads of the launcher's memory (see `child::Starting`).
    starting: Option<child::Starting>,
}

/// A command on deck (see the module's documentation of `after`):
/// everything its start needs, kept until then.
struct Held {
    id: u64,
    /// The command whose end starts it; `None` once that one was stopped
    /// (then only [`Request::Begin`] starts it: the coordinator decides
    /// what follows a stopped task).
    after: Option<u64>,
    argv: Vec<String>,
    cwd: PathBuf,
    targets: Vec<i32>,
    fds: Vec<OwnedFd>,
    what: HeldKind,
}

/// What kind of start a held command waits for: the launcher's mode's.
enum HeldKind {
    Unconfined {
        /// Its environment (see [`unconfined_env`]), made as its request
        /// came (a command on deck starts without making it then); a
        /// variable `execve` cannot carry fails it when it would start.
        env: Result<Vec<Rc<CStr>>, String>,
        reap: Option<PathBuf>,
    },
    Sandboxed {
        env: Vec<(String, String)>,
        policy: Box<Policy>,
    },
    /// A sandboxed one held on deck, made ready as far as the launcher can
    /// alone (see [`Staged`]), or why it could not be: said when it would
    /// start.
    Staged(Box<Result<Staged, String>>),
}

/// A sandboxed worker's start, as far as the launcher takes it before a
/// cell or init does its part: its arguments and environment laid out,
/// its Landlock ruleset built (on the shared part made ahead), its view
/// planned over a template and its own trees copied (`open_tree`). Made
/// when its request comes on deck, while the command it follows runs, so
/// that when that one ends only the cell's part and the worker's are left
/// (the launcher's part was 250 µs of the way from one sandboxed no-op
/// task's end to the next one's start at one slot). What the worker is
/// granted is the same: the same request, the same steps, earlier; its own
/// paths (made by the coordinator before it sent the request) are copied
/// as they are then, as for any request.
struct Staged {
    argv: Vec<CString>,
    env: Vec<CString>,
    cwd: CString,
    policy: Box<Policy>,
    targets: Vec<i32>,
    fds: Vec<OwnedFd>,
    ruleset: OwnedFd,
    /// The filter's network kind (a gateway's port is Landlock's).
    mode: Network,
    mounts: Option<TaskMounts>,
    /// Its own descriptor of its template's namespace, which `mounts`
    /// uses (see `TaskView::hold_template`), for one held on deck.
    _template: Option<OwnedFd>,
}

struct Server {
    mode: Mode,
    sock: OwnedFd,
    base: Option<Base>,
    filters: HashMap<Network, std::rc::Rc<BpfProgram>>,
    workers: HashMap<i32, Worker>,
    by_id: HashMap<u64, i32>,
    sigchld: OwnedFd,
    buf: Vec<u8>,
    /// The system paths every worker is granted, resolved once.
    system: crate::cache::SystemPaths,
    /// The shared part of workers' roots, built once a run.
    templates: Templates,
    /// Every cgroup a command was started to be reaped from: emptied when
    /// the coordinator goes, whether or not a command of it still runs
    /// (what a finished one left, `setsid` and gone, is in it too).
    cgroups: std::collections::BTreeSet<PathBuf>,
    /// Where an unconfined command's process runs until it execs.
    stack: stack::ChildStack,
    /// Commands on deck (at most two per running command: a few).
    held: Vec<Held>,
    /// The last [`ENDED`] commands that ended, and whether each exited 0:
    /// a command sent on deck behind one that ended before the request
    /// came starts at once only if that one succeeded.
    ended: std::collections::VecDeque<(u64, bool)>,
    /// Sandbox cells made ahead of their tasks.
    cells: Cells,
    /// The shared part of the next worker's ruleset, built ahead.
    rulesets: Rulesets,
    /// `/dev/null`, the stdin of every unconfined command sent without
    /// one (see `UnconfinedRequest::stdin`). Never a sandboxed worker's:
    /// one open file shared by tasks would be a channel between them.
    null: Option<OwnedFd>,
    /// An unconfined run's launcher's own environment, for the commands
    /// that inherit it: it never changes (the launcher sets no variable).
    inherited: Vec<(Box<[u8]>, Rc<CStr>)>,
}

/// The shared part of workers' Landlock rulesets (see
/// [`confine::Shared`]), built ahead while the launcher waits, once two
/// tasks in a row had the same one: tasks of a run are mostly granted
/// alike, and one built for nothing costs what building it for its task
/// would have.
#[derive(Default)]
struct Rulesets {
    ahead: Option<confine::Built>,
    /// The last task's part, and whether the one before it had it too.
    last: Option<confine::Shared>,
    steady: bool,
}

impl Rulesets {
    fn take(&mut self) -> Option<confine::Built> {
        self.ahead.take()
    }

    fn note(&mut self, shared: confine::Shared) {
        self.steady = self.last.as_ref() == Some(&shared);
        self.last = Some(shared);
    }

    fn wanted(&self) -> bool {
        self.steady && self.ahead.is_none() && self.last.is_some()
    }

    /// Builds the next one; after a failure, none ahead until the next
    /// task shows the part again (its own build says what failed).
    fn make(&mut self) {
        if let Some(shared) = &self.last {
            match confine::Built::new(shared.clone()) {
                Ok(built) => self.ahead = Some(built),
                Err(_) => self.steady = false,
            }
        }
    }
}

/// The launcher's sandbox cells (see [`cell`](super::cell)).
struct Cells {
    /// Made ahead of their tasks, idle.
    idle: Vec<Cell>,
    /// Cells that failed or are no longer wanted, killed, until reaped.
    dying: Vec<Cell>,
    /// The launcher's own pidfd, which a new cell checks; `None` where
    /// there are no cells (no namespace layer, or no pidfds).
    pidfd: Option<OwnedFd>,
    /// The run's network namespace without network (a copy of the
    /// base's), which a cell for tasks without network joins before it
    /// makes its worker.
    no_network: Option<OwnedFd>,
    /// What the last worker that started in a cell was like, and its
    /// filter: cells are made ahead for such tasks.
    last: Option<(Like, BpfProgram)>,
    /// How many idle cells to keep: as many as workers ran at once, at
    /// most [`MOST_CELLS`].
    target: usize,
    /// Stacks of reaped inits, for the next cells: a new mapping, its
    /// guard, its pages faulted in and its unmapping (a TLB shootdown on
    /// every CPU where a process sharing the launcher's memory runs) were
    /// some tens of microseconds a spawn.
    spare: Vec<[stack::ChildStack; 2]>,
    /// The CPUs the launcher may run on: cells are made ahead only while
    /// fewer workers run.
    cpus: usize,
}

/// The most idle cells the launcher keeps (a cell that waits holds two
/// namespaces and two stacks).
const MOST_CELLS: usize = 4;

/// How many ended commands the launcher remembers for late requests on deck
/// (one behind a command it does not know waits for the coordinator's word).
const ENDED: usize = 256;

/// Runs the launcher on the socket at [`CHANNEL_FD`]. Returns the process's
/// exit code once the coordinator closes the socket.
pub fn serve(mode: Mode) -> i32 {
    // It starts the next command as the last one ends: see the function.
    crate::process::shorten_thread_slice();
    // SAFETY: the coordinator passes the socket as fd 3; nothing else in
    // this fresh process owns it.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let sock = unsafe { OwnedFd::from_raw_fd(CHANNEL_FD) };
    let mut server = match Server::new(sock, mode) {
        Ok(server) => server,
        Err((sock, message)) => {
            let _ = send(sock.as_raw_fd(), &Reply::Fatal { message });
            return EXIT_FATAL;
        }
    };
    server.run();
    0
}

fn errno(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

impl Server {
    fn new(sock: OwnedFd, mode: Mode) -> Result<Self, (OwnedFd, String)> {
        let fail = |sock, message| Err((sock, message));
        // SAFETY: plain syscalls on our own process and fds.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let sigchld = unsafe {
            libc::fcntl(sock.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
            // Blocked here, so inherited blocked by every init process,
            // which waits for them with sigwaitinfo; workers unblock all.
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, sig);
            }
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            let mut chld: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut chld);
            libc::sigaddset(&mut chld, libc::SIGCHLD);
            let fd = libc::signalfd(-1, &chld, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd == -1 {
                return fail(sock, errno("create a signalfd for SIGCHLD"));
            }
            OwnedFd::from_raw_fd(fd)
        };
        let stack = match stack::ChildStack::new() {
            Ok(stack) => stack,
            Err(e) => return fail(sock, format!("map a stack for the commands it starts: {e}")),
        };
        let mut system = crate::cache::SystemPaths::default();
        let (base, degraded) = match mode {
            Mode::Unconfined => (None, None),
            Mode::Sandboxed => {
                if let Err(why) = crate::probe::probe().require() {
                    return fail(sock, why);
                }
                match namespaces::enter_base() {
                    Ok(base) => match crate::view::cover_system_dirs(&mut system) {
                        Ok(_) => {
                            // Nothing from here on execs but a worker,
                            // which must not gain a capability by it: one
                            // emptying for the run, not one per cell.
                            if super::cell::empty_bounding_set() {
                                crate::confine::note_bounding_set_empty();
                            }
                            (Some(base), None)
                        }
                        Err(e) => {
                            return fail(sock, format!("prepare the workers' file system: {e}"));
                        }
                    },
                    // Without user namespaces, Landlock and seccomp still hold.
                    Err(NamespaceError::Unavailable(e)) => (None, Some(e.to_string())),
                    Err(e) => return fail(sock, e.to_string()),
                }
            }
        };
        // SAFETY: pidfd_open of this process.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let pidfd = base.as_ref().and_then(|_| {
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
            RawFd::try_from(fd)
                .ok()
                .filter(|&fd| fd >= 0)
                // SAFETY: a fresh fd the kernel gave us.
                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        });
        let no_network = base
            .as_ref()
            .and_then(|base| base.no_network.try_clone().ok());
        let null = match mode {
            Mode::Unconfined => match std::fs::File::open("/dev/null") {
                Ok(null) => Some(OwnedFd::from(null)),
                Err(e) => return fail(sock, format!("open /dev/null: {e}")),
            },
            Mode::Sandboxed => None,
        };
        let inherited = match mode {
            Mode::Unconfined => inherited_env(),
            Mode::Sandboxed => Vec::new(),
        };
        let server = Self {
            mode,
            null,
            inherited,
            rulesets: Rulesets::default(),
            cells: Cells {
                idle: Vec::new(),
                dying: Vec::new(),
                pidfd,
                last: None,
                target: 1,
                no_network,
                spare: Vec::new(),
                cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            },
            sock,
            base,
            filters: HashMap::new(),
            workers: HashMap::new(),
            by_id: HashMap::new(),
            sigchld,
            buf: vec![0; MAX_MESSAGE],
            system,
            templates: Templates::default(),
            cgroups: std::collections::BTreeSet::new(),
            stack,
            held: Vec::new(),
            ended: std::collections::VecDeque::with_capacity(ENDED),
        };
        if send(server.sock.as_raw_fd(), &Reply::Ready { degraded }).is_err() {
            return fail(server.sock, "answer the coordinator".into());
        }
        Ok(server)
    }

    fn run(&mut self) {
        let poll = |fd: RawFd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = Vec::new();
        let mut watched = Vec::new();
        loop {
            fds.clear();
            fds.push(poll(self.sock.as_raw_fd()));
            fds.push(poll(self.sigchld.as_raw_fd()));
            watched.clear();
            // Inits saying their worker runs first (what it read of this
            // memory may go), then statuses.
            for (&pid, worker) in &self.workers {
                if let Some(ready) = worker.starting.as_ref().and_then(child::Starting::watched) {
                    fds.push(poll(ready));
                    watched.push((pid, true));
                }
            }
            for (&pid, worker) in &self.workers {
                if let Some(status) = worker.status.as_ref().filter(|_| worker.watching) {
                    fds.push(poll(status.as_raw_fd()));
                    watched.push((pid, false));
                }
            }
            let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
            // A ruleset or a cell is made ahead only when nothing else
            // waits: a look first. The ruleset first: it is on the way of
            // the next spawn.
            let running = self.workers.values().filter(|w| !w.reported).count();
            let wants_ruleset = self.rulesets.wanted();
            let wants_cell = self.cells.wanted(&self.templates, running);
            let timeout = if wants_ruleset || wants_cell { 0 } else { -1 };
            // SAFETY: `fds` is a valid array of `count` pollfds.
            #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
            let n = unsafe { libc::poll(fds.as_mut_ptr(), count, timeout) };
            if n == 0 && wants_ruleset {
                self.rulesets.make();
                continue;
            }
            if n == 0 && wants_cell {
                self.cells.make(&self.templates);
                continue;
            }
            if n == -1 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            // Unconfined, requests first: one sent on deck behind a
            // command that has just ended is then held, and started as
            // that one is reaped below, before its end is reported. A
            // sandboxed spawn costs a millisecond or more: ends first.
            let requests_first = self.mode == Mode::Unconfined;
            if requests_first && fds[0].revents != 0 && !self.serve_one() {
                break;
            }
            for (fd, &(pid, starting)) in fds[2..].iter().zip(&watched) {
                match (fd.revents != 0, starting) {
                    (false, _) => {}
                    (true, true) => self.runs(pid),
                    (true, false) => self.status_came(pid),
                }
            }
            if fds[1].revents != 0 {
                self.reap();
            }
            if !requests_first && fds[0].revents != 0 && !self.serve_one() {
                break;
            }
        }
        // The coordinator is gone (or closed the socket): nothing may run
        // without it.
        // Groups first, cgroups after: the launcher may itself be in a
        // cgroup it kills (the run's shared one, joined once so that its
        // commands need not join it each), and must outlive the groups.
        let namespaced = self.base.is_some();
        for (&pid, worker) in &mut self.workers {
            kill_worker(pid, namespaced, libc::SIGKILL);
            // Inits killed but not reaped may still be on their stacks
            // (they share this memory), and their workers may still read
            // what they were given: those stay until the launcher's own
            // exit.
            std::mem::forget(worker.stacks.take());
            std::mem::forget(worker.starting.take());
        }
        let live = self.workers.values().filter_map(|w| w.reap.as_ref());
        let cgroups: std::collections::BTreeSet<&PathBuf> = live.chain(&self.cgroups).collect();
        for procs in cgroups {
            kill_cgroup(procs);
        }
    }

    /// Handles one request; false when the socket is closed.
    fn serve_one(&mut self) -> bool {
        let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
        let mut iov = [IoSliceMut::new(&mut self.buf)];
        let msg = match recvmsg::<()>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => return true,
            Err(_) => return false,
        };
        let len = msg.bytes;
        let truncated = msg
            .flags
            .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
        let mut fds = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    // SAFETY: the kernel just installed these fds for us.
                    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
        }
        if len == 0 {
            return false;
        }
        let request = match serde_json::from_slice::<Request>(&self.buf[..len]) {
            Ok(request) if !truncated => request,
            // A broken request cannot be answered by id: give up, which
            // the coordinator sees as a dead launcher (and fails closed).
            _ => return false,
        };
        match request {
            Request::Spawn {
                id,
                argv,
                env,
                cwd,
                policy,
                fds: targets,
                after,
            } => {
                // Fails closed: an unconfined run's launcher never starts
                // a sandboxed worker (it has no namespaces to put it in).
                if self.mode == Mode::Unconfined {
                    let message =
                        "start a sandboxed worker: this launcher starts unconfined commands only"
                            .into();
                    let _ = send(self.sock.as_raw_fd(), &Reply::Failed { id, message });
                    return true;
                }
                let held = Held {
                    id,
                    after,
                    argv,
                    cwd,
                    targets,
                    fds,
                    what: HeldKind::Sandboxed { env, policy },
                };
                self.start_or_hold(held);
            }
            Request::Unconfined {
                id,
                argv,
                inherit,
                remove,
                env,
                cwd,
                fds: targets,
                reap,
                after,
            } => {
                // Fails closed: a sandboxed run's launcher never starts
                // anything unconfined, whatever it is asked.
                if self.mode == Mode::Sandboxed {
                    let message =
                        "start an unconfined command: this launcher starts sandboxed workers only"
                            .into();
                    let _ = send(self.sock.as_raw_fd(), &Reply::Failed { id, message });
                    return true;
                }
                let held = Held {
                    id,
                    after,
                    argv,
                    cwd,
                    targets,
                    fds,
                    what: HeldKind::Unconfined {
                        env: unconfined_env(&self.inherited, inherit, &remove, &env),
                        reap,
                    },
                };
                self.start_or_hold(held);
            }
            Request::Begin { id } => {
                if let Some(at) = self.held.iter().position(|h| h.id == id) {
                    let held = self.held.swap_remove(at);
                    self.start_held(held, true, true);
                }
            }
            Request::Withdraw { id } => {
                self.let_go(id, "withdrawn before it started");
            }
            Request::Stop { id, kill } => {
                // Held: nothing to signal.
                if self.let_go(id, "stopped before it started") {
                    return true;
                }
                if let Some(&pid) = self.by_id.get(&id) {
                    let sig = if kill { libc::SIGKILL } else { libc::SIGTERM };
                    kill_worker(pid, self.base.is_some(), sig);
                }
            }
        }
        true
    }

    /// Starts `held` now, or holds it on deck behind the command it names
    /// (`after`) while that one runs. Behind one that already ended: at
    /// once if that one succeeded (its place is free), else held for the
    /// coordinator's word. One sent on deck is told when it starts.
    fn start_or_hold(&mut self, mut held: Held) {
        let on_deck = held.after.is_some();
        let running = |a: &u64| self.by_id.contains_key(a) || self.held.iter().any(|h| h.id == *a);
        let succeeded = |a: &u64| self.ended.iter().any(|&(id, ok)| id == *a && ok);
        let (after, now) = match held.after {
            Some(a) if running(&a) => (Some(a), false),
            Some(a) => (None, succeeded(&a)),
            None => (None, true),
        };
        held.after = after;
        match now {
            true => {
                self.start_held(held, on_deck, true);
            }
            false => {
                let held = self.stage_held(held);
                self.held.push(held);
            }
        }
    }

    /// Command `id` ended (`succeeded`: it exited 0): remembered for a
    /// request on deck behind it that comes late.
    fn note_end(&mut self, id: u64, succeeded: bool) {
        if self.ended.len() == ENDED {
            self.ended.pop_front();
        }
        self.ended.push_back((id, succeeded));
    }

    /// Command `id` ended: the one on deck behind it starts in its place
    /// if it exited 0 (`succeeded`); after a failure it waits for the
    /// coordinator's word. The id of the one that started, unless its
    /// start is said already (`told`: the end it follows was reported).
    fn follow(&mut self, id: u64, succeeded: bool, told: bool) -> Option<u64> {
        let at = self.held.iter().position(|h| h.after == Some(id))?;
        if !succeeded {
            self.held[at].after = None;
            return None;
        }
        let held = self.held.swap_remove(at);
        let next = held.id;
        (self.start_held(held, true, told) && !told).then_some(next)
    }

    /// Command `id` is withdrawn or stopped: what follows it waits for the
    /// coordinator's word, and if it is held itself, it is dropped and
    /// answered that nothing ran (`why`). Whether it was held.
    fn let_go(&mut self, id: u64, why: &str) -> bool {
        for held in self.held.iter_mut().filter(|h| h.after == Some(id)) {
            held.after = None;
        }
        let Some(at) = self.held.iter().position(|h| h.id == id) else {
            return false;
        };
        self.held.swap_remove(at);
        let message = why.to_string();
        let _ = send(self.sock.as_raw_fd(), &Reply::Failed { id, message });
        true
    }

    /// Starts `held` (a command on deck, or one sent to start at once) and
    /// says so: `Began` for one sent on deck (unless `!tell`: the caller
    /// says it with the end it follows), `Failed` if it could not start.
    /// Whether it started.
    fn start_held(&mut self, held: Held, on_deck: bool, tell: bool) -> bool {
        let Held {
            id,
            argv,
            cwd,
            targets,
            fds,
            what,
            ..
        } = held;
        let started = match what {
            HeldKind::Unconfined { env, reap } => {
                env.and_then(|env| self.spawn_unconfined(id, &argv, env, &cwd, &targets, fds, reap))
            }
            HeldKind::Sandboxed { env, policy } => self
                .stage(&argv, &env, &cwd, policy, targets, fds)
                .and_then(|staged| self.launch(id, staged)),
            HeldKind::Staged(staged) => (*staged).and_then(|staged| self.launch(id, staged)),
        };
        let reply = match started {
            Ok(()) if on_deck && tell => Reply::Began { id },
            Ok(()) => return true,
            Err(message) => Reply::Failed { id, message },
        };
        let started = matches!(reply, Reply::Began { .. });
        let _ = send(self.sock.as_raw_fd(), &reply);
        started
    }

    /// A sandboxed request held on deck, made ready now (see [`Staged`]);
    /// any other as it is.
    fn stage_held(&mut self, mut held: Held) -> Held {
        let (env, policy) = match held.what {
            HeldKind::Sandboxed { env, policy } => (env, policy),
            _ => return held,
        };
        let (targets, fds) = (
            std::mem::take(&mut held.targets),
            std::mem::take(&mut held.fds),
        );
        let staged = self
            .stage(&held.argv, &env, &held.cwd, policy, targets, fds)
            .and_then(|mut staged| {
                // Its template may be let go of before it starts.
                let task = staged.mounts.as_mut().and_then(|m| m.template.as_mut());
                if let Some(task) = task {
                    let own = task
                        .hold_template()
                        .map_err(|e| format!("start the worker: keep its template: {e}"))?;
                    staged._template = Some(own);
                }
                Ok(staged)
            });
        held.what = HeldKind::Staged(Box::new(staged));
        held
    }

    /// The launcher's part of a sandboxed worker's start (see [`Staged`]).
    fn stage(
        &mut self,
        argv: &[String],
        env: &[(String, String)],
        cwd: &std::path::Path,
        policy: Box<Policy>,
        targets: Vec<i32>,
        fds: Vec<OwnedFd>,
    ) -> Result<Staged, String> {
        if fds.len() != targets.len() {
            return Err(format!(
                "receive the worker's file descriptors ({} of {})",
                fds.len(),
                targets.len()
            ));
        }
        let cstring = |s: &[u8]| CString::new(s).map_err(|e| holds_nul("an argument", &e));
        let argv = argv
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        if argv.is_empty() {
            return Err("start the worker: no command given".into());
        }
        let env = own_env(env)?;
        let cwd = cstring(cwd.as_os_str().as_bytes())?;
        let (mut trees, targets, fds) = idmapped_trees(&policy, targets, fds)?;
        self.system.note_run_wide(&policy.run_wide);
        let ahead = self.rulesets.take();
        let (ruleset, shared) =
            confine::ruleset(&policy, self.base.is_some(), &mut self.system, ahead)
                .map_err(|e| e.to_string())?;
        self.rulesets.note(shared);
        // One filter per kind of network: a gateway's ports are Landlock's.
        let mode = match policy.network {
            Network::Gateway { .. } => Network::Gateway {
                ports: GatewayPorts::one(0),
            },
            other => other,
        };
        if let std::collections::hash_map::Entry::Vacant(e) = self.filters.entry(mode) {
            e.insert(std::rc::Rc::new(
                seccomp::compile_filter(mode, self.base.is_some())
                    .map_err(|e| format!("compile the seccomp filter: {e}"))?,
            ));
        }
        let handoff = fds
            .iter()
            .map(AsRawFd::as_raw_fd)
            .zip(targets.iter().copied())
            .find(|&(_, target)| target == super::GATEWAY_HANDOFF)
            .map(|(fd, _)| fd);
        let gateway = match (policy.network, handoff) {
            (Network::Gateway { ports }, Some(fd)) => {
                if self.base.is_none() {
                    return Err(
                        "give the worker its gateway port: that needs the namespace layer \
                         (user namespaces), which is off here, and the baseline has no \
                         network of the worker's own to put it in"
                            .into(),
                    );
                }
                Some((ports, fd))
            }
            (Network::Gateway { .. }, None) => {
                return Err("give the worker its gateway port: no handoff socket came".into());
            }
            _ => None,
        };
        let view = self
            .base
            .as_ref()
            .map(|_| crate::view::plan(&policy, true, &mut self.system));
        let template = match &view {
            Some(view) => self.templates.view(view, &mut trees)?,
            None => None,
        };
        // Each copy is shown where its path is, or the worker would find
        // root's files there, not its own.
        if let Some((path, _)) = trees.first().filter(|_| template.is_some()) {
            return Err(format!(
                "show the worker its idmapped copy of {}: its root has no mount of it",
                path.display()
            ));
        }
        if self.base.is_none() && !trees.is_empty() {
            return Err(
                "show the worker its idmapped copies: that needs the namespace layer \
                 (user namespaces), which is off here"
                    .into(),
            );
        }
        let mounts = self.base.as_ref().zip(view).map(|(base, view)| TaskMounts {
            gateway,
            view,
            template,
            trees,
            // The kernel allocates pids from 300 up once they wrap, and
            // refuses a pid_max under 301: this bound lets the worker have
            // at least `processes` at once and never more than 300 beyond.
            pid_max: Some(policy.limits.processes.saturating_add(300)),
            no_network: (policy.network == Network::None).then(|| base.no_network.as_raw_fd()),
        });
        Ok(Staged {
            argv,
            env,
            cwd,
            policy,
            targets,
            fds,
            ruleset,
            mode,
            mounts,
            _template: None,
        })
    }

    /// The rest of a sandboxed worker's start: its init (a cell, or one
    /// made now) and the worker.
    fn launch(&mut self, id: u64, staged: Staged) -> Result<(), String> {
        let Staged {
            argv,
            env,
            cwd,
            policy,
            targets,
            fds,
            ruleset,
            mode,
            mounts,
            _template,
        } = staged;
        let filter = self
            .filters
            .get(&mode)
            .ok_or("start the worker: its seccomp filter is gone")?
            .clone();
        let (errors_r, errors_w) = pipe()?;
        let errors_w = clear_of(errors_w, &targets)?;
        let (status_r, status_w) = match mounts {
            Some(_) => {
                let (r, w) = pipe()?;
                (Some(r), Some(w))
            }
            None => (None, None),
        };
        // Boxed: a worker started in a cell reads it on its way to `execve`
        // while the launcher goes on (see `child::Starting`).
        let prepared = Box::new(Prepared {
            argv,
            env,
            cwd,
            fds: fds
                .iter()
                .map(AsRawFd::as_raw_fd)
                .zip(targets.iter().copied())
                .filter(|&(_, target)| target >= 0)
                .collect(),
            keep: targets.iter().copied().filter(|&t| t >= 0).collect(),
            cgroups: fds
                .iter()
                .map(AsRawFd::as_raw_fd)
                .zip(targets.iter().copied())
                .filter(|&(_, target)| target == super::JOIN_CGROUP)
                .map(|(fd, _)| fd)
                .collect(),
            policy,
            identity: crate::policy::worker_identity(),
            ruleset,
            filter,
            errors: errors_w.as_raw_fd(),
            launcher_ends: std::iter::once(errors_r.as_raw_fd())
                .chain(status_r.as_ref().map(AsRawFd::as_raw_fd))
                .collect(),
        });
        let (pid, stacks, starting) = match (&mounts, &status_w) {
            (Some(mounts), Some(status)) => {
                let running = self.workers.values().filter(|w| !w.reported).count();
                let mut cell = mounts
                    .template
                    .as_ref()
                    .filter(|task| child::init_shares(&prepared) && task.fits_cell())
                    .and_then(|task| {
                        let like = Like {
                            serial: task.serial,
                            network: mode,
                            pid_max: mounts.pid_max,
                        };
                        let filter = &prepared.filter;
                        self.cells.take(like, filter, &self.templates, running)
                    });
                let init =
                    match child::spawn_in_namespaces(&prepared, mounts, status, cell.as_mut()) {
                        Ok(init) => init,
                        Err(why) => {
                            // A cell that failed may still be on its way out.
                            if let Some(cell) = cell {
                                self.cells.let_go(cell);
                            }
                            return Err(why);
                        }
                    };
                let starting = init
                    .pending
                    .zip(cell)
                    .map(|(pending, cell)| child::Starting::new(pending, prepared, cell));
                (init.pid, Some(init.stacks), starting)
            }
            _ => (child::spawn_plain(&prepared)?, None, None),
        };
        self.workers.insert(
            pid,
            Worker {
                id,
                errors: errors_r,
                watching: status_r.is_some(),
                reported: false,
                status: status_r,
                reap: None,
                stacks,
                outputs: Vec::new(),
                starting,
            },
        );
        self.by_id.insert(id, pid);
        Ok(())
    }

    #[expect(clippy::too_many_arguments, reason = "one start request, unpacked")]
    fn spawn_unconfined(
        &mut self,
        id: u64,
        argv: &[String],
        env: Vec<Rc<CStr>>,
        cwd: &std::path::Path,
        targets: &[i32],
        fds: Vec<OwnedFd>,
        reap: Option<PathBuf>,
    ) -> Result<(), String> {
        if fds.len() != targets.len() {
            return Err(format!(
                "receive the command's file descriptors ({} of {})",
                fds.len(),
                targets.len()
            ));
        }
        let cstring = |s: &[u8]| CString::new(s).map_err(|e| holds_nul("an argument", &e));
        let argv = argv
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        if argv.is_empty() {
            return Err("start the command: no command given".into());
        }
        let (errors_r, errors_w) = pipe()?;
        let errors_w = clear_of(errors_w, targets)?;
        let raw = || {
            fds.iter()
                .map(AsRawFd::as_raw_fd)
                .zip(targets.iter().copied())
        };
        // Sent without a stdin: the launcher's /dev/null.
        let null = self
            .null
            .as_ref()
            .filter(|_| !targets.contains(&0))
            .map(|null| (null.as_raw_fd(), 0));
        let prepared = child::Unconfined {
            argv,
            env,
            cwd: cstring(cwd.as_os_str().as_bytes())?,
            fds: null
                .into_iter()
                .chain(raw().filter(|&(_, target)| target >= 0))
                .collect(),
            keep: null
                .map(|(_, target)| target)
                .into_iter()
                .chain(targets.iter().copied().filter(|&t| t >= 0))
                .collect(),
            cgroups: raw()
                .filter(|&(_, target)| target == super::JOIN_CGROUP)
                .map(|(fd, _)| fd)
                .collect(),
            errors: errors_w.as_raw_fd(),
            launcher_ends: vec![errors_r.as_raw_fd()],
        };
        let pid = child::spawn_unconfined(&prepared, &self.stack)?;
        let outputs = fds
            .into_iter()
            .zip(targets)
            .filter(|&(_, &target)| super::is_output(target))
            .map(|(fd, _)| fd)
            .collect();
        if let Some(procs) = &reap {
            self.cgroups.insert(procs.clone());
        }
        self.workers.insert(
            pid,
            Worker {
                id,
                errors: errors_r,
                status: None,
                watching: false,
                reported: false,
                reap,
                stacks: None,
                outputs,
                starting: None,
            },
        );
        self.by_id.insert(id, pid);
        Ok(())
    }

    /// Init of worker `pid` started in a cell said its worker runs, or
    /// left: what the worker read of this memory goes in the first case.
    fn runs(&mut self, pid: i32) {
        let Some(worker) = self.workers.get_mut(&pid) else {
            return;
        };
        if worker.starting.as_mut().is_some_and(child::Starting::heard) {
            worker.starting = None;
        }
    }

    /// Init of worker `pid` wrote its status, or left without: reports
    /// the worker's end in the first case (init is reaped later).
    fn status_came(&mut self, pid: i32) {
        let Some(worker) = self.workers.get_mut(&pid) else {
            return;
        };
        let Some(fd) = worker.status.as_ref() else {
            return;
        };
        let mut bytes = [0u8; 4];
        // SAFETY: reading into a local buffer from a nonblocking pipe.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let n = unsafe { libc::read(fd.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            // Init writes its 4 bytes at once, and a pipe write that small
            // is never split.
            Ok(4) => {
                worker.watching = false;
                worker.reported = true;
                let id = worker.id;
                let mut reply = ended(id, i32::from_ne_bytes(bytes), &worker.errors);
                self.by_id.remove(&id);
                // Everything of the worker is gone (init killed the rest
                // before it wrote): the one on deck behind it starts now,
                // before the end is reported, and is named with it.
                let succeeded = matches!(reply, Reply::Exited { code: Some(0), .. });
                self.note_end(id, succeeded);
                if let (Some(next), Reply::Exited { began, .. }) =
                    (self.follow(id, succeeded, false), &mut reply)
                {
                    *began = Some(next);
                }
                let _ = send(self.sock.as_raw_fd(), &reply);
            }
            // Nothing will come (init was killed): reaping reports it.
            Ok(_) => worker.watching = false,
            Err(_) => {
                if std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock {
                    worker.watching = false;
                }
            }
        }
    }

    /// Reaps every ended worker and reports it.
    fn reap(&mut self) {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        // SAFETY: reading into a buffer of the right size; nonblocking fd.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        while unsafe {
            libc::read(
                self.sigchld.as_raw_fd(),
                info.as_mut_ptr().cast(),
                info.len(),
            )
        } > 0
        {}
        // Every child of the launcher is a worker: none left, none to wait
        // for (and no ECHILD to take).
        while !self.workers.is_empty() || self.cells.any() {
            // Seen before it is reaped: while the ended worker is a zombie,
            // its process group cannot be anyone else's, and a signal to
            // it succeeds (a group whose leader alone is left is empty to
            // the kernel only once the leader is reaped).
            // SAFETY: `info` is a valid out pointer; WNOWAIT reaps nothing.
            #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
            let pid = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                let found = libc::waitid(
                    libc::P_ALL,
                    0,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                );
                if found == -1 { 0 } else { info.si_pid() }
            };
            if pid <= 0 {
                break;
            }
            if self.workers.get(&pid).is_some_and(|w| w.status.is_none()) {
                // Whatever the worker left in its group dies with it.
                // SAFETY: kill takes no pointers; `pid` is our unreaped
                // child, so its group is its own.
                #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let mut status = 0;
            // SAFETY: `status` is a valid out pointer.
            #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
            if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
                break;
            }
            let Some(mut worker) = self.workers.remove(&pid) else {
                self.cells.reaped(pid);
                continue;
            };
            // A sandboxed worker whose init reported its end was dealt
            // with then (`status_came`): what was on deck behind it too.
            if worker.reported {
                self.follow(worker.id, false, true);
                // Nothing runs on them any more: a later cell's.
                self.cells.spare(worker.stacks.take());
                continue;
            }
            // Init reports the worker's own status, and may have written
            // it after the look that found its pipe empty (others ended
            // at the same moment): it is read here then. Without it, init
            // itself was killed (a stop with SIGKILL), which took the
            // worker along.
            let status = match &worker.status {
                Some(fd) => <[u8; 4]>::try_from(read_all(fd.as_fd()).as_slice())
                    .map_or(status, i32::from_ne_bytes),
                None => status,
            };
            self.by_id.remove(&worker.id);
            let mut reply = ended(worker.id, status, &worker.errors);
            // The command on deck behind it takes its place first (the
            // report can wait a few microseconds, the slot should not), if
            // it exited 0: after a failure the coordinator decides.
            let succeeded = matches!(reply, Reply::Exited { code: Some(0), .. });
            self.note_end(worker.id, succeeded);
            let began = self.follow(worker.id, succeeded, false);
            // Nothing runs on them any more: a later cell's.
            self.cells.spare(worker.stacks.take());
            match (&mut reply, began) {
                (Reply::Exited { began: slot, .. }, began) => *slot = began,
                // Its follower starts only after an exit 0, never a failure.
                (_, Some(id)) => {
                    let _ = send(self.sock.as_raw_fd(), &Reply::Began { id });
                }
                (_, None) => {}
            }
            let _ = send(self.sock.as_raw_fd(), &reply);
        }
    }
}

/// The reply for a worker that ended with wait status `status`, unless its
/// confinement failed (then nothing ran, and the failure pipe says why).
fn ended(id: u64, status: i32, errors: &OwnedFd) -> Reply {
    let failure = read_all(errors.as_fd());
    if !failure.is_empty() {
        return Reply::Failed {
            id,
            message: child::failure_message(&failure),
        };
    }
    if libc::WIFEXITED(status) {
        Reply::Exited {
            id,
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
            began: None,
        }
    } else {
        Reply::Exited {
            id,
            code: None,
            signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
            began: None,
        }
    }
}

/// Signals worker `pid`: with the namespace layer, `pid` is the worker's
/// init (SIGTERM is passed on to every process in the namespace, SIGKILL
/// ends the namespace); in the baseline, its process group.
fn kill_worker(pid: i32, namespaced: bool, sig: i32) {
    // SAFETY: kill takes no pointers; `pid` is our unreaped child, so it
    // cannot have been reused.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        if namespaced || libc::kill(-pid, sig) == -1 {
            libc::kill(pid, sig);
        }
    }
}

/// An unconfined command's environment, ready for `execve`: the
/// launcher's own (`inherited`: the one the coordinator started it with)
/// if `inherit`, without `remove` and the variables `env` sets, then `env`
/// (a later value of a variable replacing an earlier one, as
/// `Command::env` does). The inherited variables are shared, not copied:
/// copying some thirty of them for every command was most of a tenth of
/// the launcher's work for a no-op command.
fn unconfined_env(
    inherited: &[(Box<[u8]>, Rc<CStr>)],
    inherit: bool,
    remove: &[String],
    env: &[(String, String)],
) -> Result<Vec<Rc<CStr>>, String> {
    // Hashed: a request may carry thousands of names.
    let named: std::collections::HashSet<&[u8]> = env
        .iter()
        .map(|(n, _)| n.as_bytes())
        .chain(remove.iter().map(|n| n.as_bytes()))
        .collect();
    let mut out: Vec<Rc<CStr>> = Vec::with_capacity(inherited.len() + env.len());
    if inherit {
        out.extend(
            inherited
                .iter()
                .filter(|(k, _)| !named.contains(&**k))
                .map(|(_, entry)| Rc::clone(entry)),
        );
    }
    out.extend(own_env(env)?.into_iter().map(Rc::from));
    Ok(out)
}

/// The idmapped copies among a start's fds (target `IDMAPPED_TREE`), each
/// with its path of `Policy::idmapped`, and the rest of its fds and
/// targets.
#[allow(clippy::type_complexity, reason = "three lists taken apart at once")]
fn idmapped_trees(
    policy: &Policy,
    targets: Vec<i32>,
    fds: Vec<OwnedFd>,
) -> Result<(Vec<(std::path::PathBuf, OwnedFd)>, Vec<i32>, Vec<OwnedFd>), String> {
    let (mut trees, mut rest_targets, mut rest_fds) = (Vec::new(), Vec::new(), Vec::new());
    for (target, fd) in targets.into_iter().zip(fds) {
        match target == super::IDMAPPED_TREE {
            true => trees.push(fd),
            false => {
                rest_targets.push(target);
                rest_fds.push(fd);
            }
        }
    }
    if trees.len() != policy.idmapped.len() {
        return Err(format!(
            "receive the worker's idmapped copies ({} of {})",
            trees.len(),
            policy.idmapped.len()
        ));
    }
    let trees = policy.idmapped.iter().cloned().zip(trees).collect();
    Ok((trees, rest_targets, rest_fds))
}

/// A command's own variables, ready for `execve`, in their order. A later
/// value of a variable replaces an earlier one (a task's `env` over a
/// toolchain's), as `Command::env` does: execve would pass both, and which
/// one a program reads differs (getenv takes the first).
fn own_env(env: &[(String, String)]) -> Result<Vec<CString>, String> {
    let last: HashMap<&str, usize> = env
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.as_str(), i))
        .collect();
    env.iter()
        .enumerate()
        .filter(|(i, (k, _))| last.get(k.as_str()) == Some(i))
        .map(|(_, (k, v))| {
            env_entry(k.as_bytes(), v.as_bytes())
                .map_err(|e| holds_nul(&format!("variable `{k}`"), &e))
        })
        .collect()
}

/// The launcher's environment, each variable as `execve` takes it (see
/// [`unconfined_env`]).
fn inherited_env() -> Vec<(Box<[u8]>, Rc<CStr>)> {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let entry = env_entry(k.as_bytes(), v.as_bytes()).ok()?;
            Some((Box::from(k.as_bytes()), Rc::from(entry)))
        })
        .collect()
}

/// `k=v`, as `execve` takes a variable.
fn env_entry(k: &[u8], v: &[u8]) -> Result<CString, std::ffi::NulError> {
    CString::new([k, b"=", v].concat())
}

/// Why `what` (an argument, a variable) cannot be passed to `execve`.
fn holds_nul(what: &str, e: &std::ffi::NulError) -> String {
    format!(
        "pass {what} to execve: it holds a NUL byte (at byte {}), which a C string cannot",
        e.nul_position()
    )
}

/// Kills every member of the cgroup whose `cgroup.procs` is `procs`, until
/// none is left: through `cgroup.kill` where the kernel has it (it also
/// catches processes forking while they are killed), else member by
/// member, the list read anew each round (at most a hundred rounds, a
/// millisecond apart: killed processes stay listed until they exited).
fn kill_cgroup(procs: &std::path::Path) {
    let me = std::process::id();
    let member = |list: &str| list.lines().any(|l| l.trim().parse::<u32>() == Ok(me));
    // `cgroup.kill` would kill the launcher too when it is a member.
    if let Some(dir) = procs.parent()
        && !std::fs::read_to_string(procs).is_ok_and(|list| member(&list))
        && std::fs::write(dir.join("cgroup.kill"), b"1").is_ok()
    {
        return;
    }
    for _ in 0..100 {
        let Ok(list) = std::fs::read_to_string(procs) else {
            return;
        };
        let mut others = false;
        for pid in list.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if u32::try_from(pid).is_ok_and(|p| p != me) && pid > 1 {
                // SAFETY: kill takes no pointers.
                #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                others = true;
            }
        }
        if !others {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A failure pipe's write end where no fd of the process it is for lands:
/// itself, or, when its number is one of `targets` (an agent's channel is
/// kept at the coordinator's own number, which may be the launcher's
/// lowest free one), a close-on-exec copy above all of them. Placing the
/// process's fds would otherwise close it, and a failure after that would
/// be written into the task's own channel, or lost.
fn clear_of(write: OwnedFd, targets: &[RawFd]) -> Result<OwnedFd, String> {
    use nix::fcntl::{FcntlArg, fcntl};
    if !targets.contains(&write.as_raw_fd()) {
        return Ok(write);
    }
    let above = targets
        .iter()
        .map(|t| t.saturating_add(1))
        .fold(3, RawFd::max);
    let high = fcntl(&write, FcntlArg::F_DUPFD_CLOEXEC(above))
        .map_err(|e| format!("move a failure pipe clear of the process's fds: {e}"))?;
    // SAFETY: `high` is a fresh descriptor fcntl made, owned by no one else.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// A pipe whose read end never blocks (a reader must not hang on a writer
/// that a worker may have kept alive).
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .and_then(|(r, w)| fcntl(&r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map(|_| (r, w)))
        .map_err(|e| format!("create a pipe: {e}"))?;
    Ok((read, write))
}

/// Everything left in a pipe whose writers are all gone.
fn read_all(fd: BorrowedFd<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // SAFETY: reading into a local buffer.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let n = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        match usize::try_from(n) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
        if out.len() > 64 << 10 {
            break;
        }
    }
    out
}

fn send(sock: RawFd, reply: &Reply) -> Result<(), ()> {
    let bytes = serde_json::to_vec(reply).map_err(drop)?;
    let iov = [IoSlice::new(&bytes)];
    let no_fds: [ControlMessage<'_>; 0] = [];
    loop {
        match sendmsg::<()>(sock, &iov, &no_fds, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(env: &[Rc<CStr>]) -> Vec<String> {
        env.iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_failure_pipe_on_a_number_the_process_gets_moves_above_every_target() {
        let (_read, write) = pipe().unwrap();
        let at = write.as_raw_fd();
        let kept = clear_of(write, &[0, 1, 2]).unwrap();
        assert_eq!(kept.as_raw_fd(), at);
        // An agent's channel kept at the coordinator's number, which is
        // where the launcher made the pipe.
        let moved = clear_of(kept, &[0, 1, 2, at, 5]).unwrap();
        assert!(moved.as_raw_fd() > at.max(5));
        let flags = nix::fcntl::fcntl(&moved, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }

    #[test]
    fn a_commands_environment_is_the_launchers_without_what_it_sets_or_removes_then_its_own() {
        let entry = |k: &str, v: &str| {
            let text = CString::new(format!("{k}={v}")).unwrap();
            (Box::from(k.as_bytes()), Rc::from(text))
        };
        let inherited = vec![
            entry("PATH", "/usr/bin"),
            entry("SECRET", "sk"),
            entry("HOME", "/root"),
            entry("LANG", "C"),
        ];
        let own = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        let env = own(&[
            ("HOME", "/tmp/h"),
            ("A", "1"),
            ("HOME", "/tmp/last"),
            ("B", "2"),
        ]);
        let got = unconfined_env(&inherited, true, &["SECRET".into()], &env).unwrap();
        assert_eq!(
            texts(&got),
            ["PATH=/usr/bin", "LANG=C", "A=1", "HOME=/tmp/last", "B=2"]
        );
        // Shared with the launcher's, not copied.
        assert!(Rc::ptr_eq(&got[0], &inherited[0].1));
        // Without `inherit`, its own only.
        let got = unconfined_env(&inherited, false, &[], &own(&[("A", "1")])).unwrap();
        assert_eq!(texts(&got), ["A=1"]);
        // Many names, a name twice: the same rules.
        let many: Vec<(String, String)> = (0..2)
            .flat_map(|round| (0..20).map(move |v| (format!("V{v}"), format!("{round}"))))
            .chain([("HOME".to_string(), "/h".to_string())])
            .collect();
        let got =
            unconfined_env(&inherited, true, &["SECRET".into(), "LANG".into()], &many).unwrap();
        let mut expected = vec!["PATH=/usr/bin".to_string()];
        expected.extend((0..20).map(|v| format!("V{v}=1")));
        expected.push("HOME=/h".into());
        assert_eq!(texts(&got), expected);
        // A variable no `execve` can carry is this command's failure.
        let bad = unconfined_env(&inherited, true, &[], &own(&[("A", "x\0y")]));
        assert!(bad.unwrap_err().contains("execve"));
    }
}
