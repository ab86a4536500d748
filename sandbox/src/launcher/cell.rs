//! Sandbox cells: a worker's init made before its task comes.
//!
//! Of what a worker's init does before the worker can start, a good part
//! does not depend on the task: its PID namespace, a mount namespace that
//! is a copy of the run's template (some forty mounts copied), a private
//! `/dev/shm`, and a `/proc` of its own. A cell is an init that has done
//! all of that ahead, in the background, while the launcher serves other
//! requests and the slot's previous worker still runs; when a task comes,
//! the cell only adds the task's own mounts and starts the worker, as any
//! init does (see [`child`](super::child)). It is made for one process
//! cap too (that of the last task like it): it sets `pid_max` and makes
//! `/proc` read-only ahead, and takes only a task with that cap.
//!
//! A cell serves exactly one task and dies with it, as every init does:
//! nothing of one task's namespaces is ever another's. It is made for one
//! template (by the template's serial, never reused) and takes only a task
//! over that template whose own mounts lie outside `/proc` and `/dev`
//! (those it made first). What it holds before its task is what any init
//! holds before its worker starts: the launcher's capabilities, in the
//! launcher's user namespace; no worker code runs in it until the worker,
//! confined as ever, has exec'd. So a cell adds no grant and no key: the
//! worker's Landlock ruleset, seccomp filter, limits and identity are made
//! for its task as before, and the attack suites run through cells (every
//! sandboxed worker over a template starts in one).
//!
//! How a cell runs: it is `clone`d sharing the launcher's memory and file
//! table (`CLONE_VM | CLONE_FILES`) into a new PID namespace, on a stack of
//! its own, and prepares with raw system calls only (the launcher runs at
//! the same time: no allocation, no `errno`, see [`raw`](super::raw)). It
//! says on `ready` whether that worked, then waits on `go`. The launcher,
//! when a task comes, puts the task's init arguments where the cell reads
//! them, writes `go` and waits until the cell's worker made ahead has its
//! task (then the cell says so on `ready`, and once more when the worker
//! has exec'd; see `child::Starting` for what the launcher keeps until
//! then). The cell first takes a file table of its own (`unshare`: a copy
//! holding everything the launcher opened for the task, its trees, its
//! pipes, its ruleset, which sharing the table let it have without passing
//! them), so that what it opens for the task is never caught in a copy
//! another cell makes of the shared table; then it is the task's init.
//!
//! A cell dies with the launcher (`PR_SET_PDEATHSIG`, set first thing,
//! then a look at the launcher's pidfd in case it died before that); one
//! never used is killed when its template goes, and the launcher's exit
//! takes the rest.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicPtr, Ordering};

use super::armed::Armed;
use super::raw::{syscall4, syscall5};
use super::stack::ChildStack;
use crate::namespaces::Ahead;
use crate::policy::Network;

/// What a cell reads of the launcher's, through the pointer `clone` passes
/// (boxed: its place must not move while the cell lives).
struct Shared {
    /// The cell's own copy of its template's namespace fd.
    template: RawFd,
    /// The launcher's pidfd: a cell made as the launcher died must not
    /// wait for a task forever.
    launcher: RawFd,
    ready: RawFd,
    go: RawFd,
    /// The task's init arguments (`child::InitArgs`), set before `go` is
    /// written.
    args: AtomicPtr<libc::c_void>,
    /// Where the task's init continues once `go` came: `child::cell_init`,
    /// told what the cell made ahead.
    init: fn(*mut libc::c_void, Ahead) -> libc::c_int,
    /// The `pid_max` the cell sets in its PID namespace as it prepares (the
    /// process cap of the tasks it is made for), then `/proc` made
    /// read-only; 0 for none (its task's init sets its own).
    pid_max: u64,
    /// Its worker, made ahead (x86-64; see [`armed`](super::armed)).
    armed: Option<Armed>,
    /// The network namespace the cell joins before it makes its worker.
    network: Option<RawFd>,
    /// The template's covers (see `template::TaskView`): the tmpfs of the
    /// cell's own over each is mounted as it prepares, not at its task.
    covers: Vec<std::ffi::CString>,
}

/// What a cell's worker made ahead needs from the launcher: the filter of
/// the cell's network kind, the network namespace it joins first (the
/// run's without network, for `Network::None`; none for `Network::Full`),
/// and where it goes on once its task came (`child::armed_worker`). Not for
/// `Network::Gateway`: such a worker's network namespace is made with its
/// task, and the worker must be made in it.
pub(super) struct Arming<'a> {
    pub filter: &'a seccompiler::BpfProgram,
    pub network: Option<BorrowedFd<'a>>,
    pub then: extern "C" fn(usize, *const RawFd, usize) -> libc::c_int,
}

/// The fds a cell's init uses to give its worker made ahead its task, and
/// the worker's pid (see [`armed::hand_over`](super::armed::hand_over)).
#[derive(Debug, Clone, Copy)]
pub(super) struct ArmedWorker {
    pub task_end: RawFd,
    /// Its [`Armed::running`](super::armed::Armed), in the cell's
    /// `Shared`, which lives as long as the cell.
    pub running: *const std::sync::atomic::AtomicU32,
    pub pid: i32,
}

/// What a cell is made for, and so the only tasks it takes: tasks over
/// one template, with one kind of network and one process cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Like {
    /// The serial of the template it copies.
    pub serial: u64,
    /// The network kind its worker's filter is for (a gateway's port is
    /// Landlock's, not the filter's).
    pub network: Network,
    /// The process cap (`pid_max`) it sets ahead.
    pub pid_max: Option<u64>,
}

/// A cell the launcher made: idle until [`Cell::take`].
pub(super) struct Cell {
    pub pid: i32,
    /// The tasks it takes.
    pub like: Like,
    shared: Box<Shared>,
    /// The stacks the cell (then its init) and its worker run on: kept
    /// mapped until the cell is reaped.
    stacks: Option<[ChildStack; 2]>,
    /// The cell's copy of the template's namespace, and the pipes' ends
    /// the cell uses: in the file table the cell shares, so closed only
    /// once it is reaped or has a table of its own (a number closed under
    /// a cell could be reused by the next open).
    fds: Option<Vec<OwnedFd>>,
    /// The launcher's copy of the end of its socket the worker made ahead
    /// keeps: closed once the cell says it is prepared (the worker exists
    /// then, with a copy of its own), so that its end closes the socket.
    handed: Option<OwnedFd>,
    /// The cell's end of that socket.
    armed: Option<RawFd>,
    ready_read: OwnedFd,
    go: OwnedFd,
    /// To notice the cell's death while waiting for it (its end of `ready`
    /// is in the file table it shares with the launcher: no end of file
    /// would come).
    pidfd: OwnedFd,
    /// What the cell said of its preparation, once read: whether it made a
    /// private `/dev/shm`, or why it failed.
    prepared: Option<Result<bool, String>>,
}

/// What `ready` carries from a cell: prepared, with or without `/dev/shm`,
/// or the step that failed and its errno.
const PREPARED: u8 = 1;
const PREPARED_SHM: u8 = 2;
const FAILED: u8 = 3;

/// What every init writes on `ready` once its worker runs (see
/// `child::init`); a cell's init writes [`HANDED`](super::armed::HANDED)
/// before it.
pub(super) const RUNS: u8 = 1;

/// The steps of a cell's preparation, for a failure's message.
const STEPS: [&str; 10] = [
    "a fresh proc file system (fsopen)",
    "a fresh proc file system (fsconfig)",
    "a fresh proc file system (fsmount)",
    "enter the shared part",
    "a mount namespace of its own",
    "enter /",
    "a private /dev/shm",
    "mount /proc",
    "cover the parent of a task's own path",
    "make /proc read-only",
];

impl Cell {
    /// Starts a cell for tasks `like`, over the template whose namespace
    /// is `namespace`; it prepares beside the launcher from now on.
    /// `launcher` is the launcher's own pidfd; `init` the function the
    /// cell continues in once its task came; `arming`, for a cell that
    /// makes its worker ahead (x86-64), for tasks with its network; `stacks`
    /// to run on, if the launcher has spare ones (nothing runs on them).
    /// `covers` are the template's (see `template::Templates::covers`).
    pub fn start(
        like: Like,
        namespace: BorrowedFd<'_>,
        covers: &[std::path::PathBuf],
        launcher: BorrowedFd<'_>,
        init: fn(*mut libc::c_void, Ahead) -> libc::c_int,
        arming: Option<Arming<'_>>,
        stacks: Option<[ChildStack; 2]>,
    ) -> Result<Self, String> {
        let os = |what: &str, e: std::io::Error| format!("make a sandbox cell: {what}: {e}");
        // A template whose covers lie in `/proc` or `/dev` takes no task in
        // a cell (`TaskView::fits_cell`): those are not made ahead.
        let covers = covers
            .iter()
            .filter(|c| crate::template::clear_of_cell(c))
            .map(|c| std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(c.as_os_str())))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| os("a cover's path", std::io::Error::other(e)))?;
        let namespace = namespace
            .try_clone_to_owned()
            .map_err(|e| os("keep the template", e))?;
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| os("a pipe", std::io::Error::from(e)))
        };
        let (ready_read, ready) = pipe()?;
        let (go_read, go) = pipe()?;
        // Stacks a reaped worker's init left, or new ones.
        let stacks = match stacks {
            Some(stacks) => stacks,
            None => [
                ChildStack::new().map_err(|e| os("its stack", e))?,
                ChildStack::new().map_err(|e| os("its worker's stack", e))?,
            ],
        };
        let mut fds = vec![namespace, ready, go_read];
        let (mut handed, mut armed_ends, mut armed, mut joins) = (None, None, None, None);
        let armable =
            cfg!(target_arch = "x86_64") && !matches!(like.network, Network::Gateway { .. });
        if let Some(arming) = arming.filter(|_| armable) {
            // Its own copy: the cell uses it as it prepares.
            if let Some(ns) = arming.network {
                let ns = ns
                    .try_clone_to_owned()
                    .map_err(|e| os("keep the network namespace", e))?;
                joins = Some(ns.as_raw_fd());
                fds.push(ns);
            }
            let (task_end, worker_end) = nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::SeqPacket,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| os("a socket for its worker", std::io::Error::from(e)))?;
            armed = Some(Armed {
                filter: arming.filter.clone(),
                worker_end: worker_end.as_raw_fd(),
                stack_top: stacks[1].top(),
                pid: std::sync::atomic::AtomicI32::new(0),
                running: std::sync::atomic::AtomicU32::new(0),
                then: arming.then,
            });
            armed_ends = Some(task_end.as_raw_fd());
            fds.push(task_end);
            handed = Some(worker_end);
        }
        let shared = Box::new(Shared {
            template: fds[0].as_raw_fd(),
            launcher: launcher.as_raw_fd(),
            ready: fds[1].as_raw_fd(),
            go: fds[2].as_raw_fd(),
            args: AtomicPtr::new(std::ptr::null_mut()),
            init,
            armed,
            network: joins,
            covers,
            pid_max: like.pid_max.unwrap_or(0),
        });
        // SAFETY: the cell runs on a stack of its own, which stays mapped
        // until it is reaped; it reads `shared` (boxed, kept by the value
        // made here until then) and, until its task comes, makes raw system
        // calls only on its own stack (see `cell_entry`).
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let pid = unsafe {
            stacks[0].clone_on(
                cell_entry,
                std::ptr::from_ref::<Shared>(&shared).cast_mut().cast(),
                libc::CLONE_VM | libc::CLONE_FILES | libc::CLONE_NEWPID,
            )
        }
        .map_err(|e| os("clone", e))?;
        // SAFETY: pidfd_open of our own unreaped child.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = match RawFd::try_from(pidfd) {
            Ok(fd) if fd >= 0 => {
                // SAFETY: a fresh fd the kernel gave us.
                #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
                unsafe {
                    OwnedFd::from_raw_fd(fd)
                }
            }
            _ => {
                let e = std::io::Error::last_os_error();
                // Without it, a dead cell could not be told from a slow
                // one: it goes.
                // SAFETY: kill and waitpid of our own unreaped child.
                #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
                }
                return Err(os("its pidfd", e));
            }
        };
        Ok(Self {
            pid,
            like,
            shared,
            stacks: Some(stacks),
            fds: Some(fds),
            handed,
            armed: armed_ends,
            ready_read,
            go,
            pidfd,
            prepared: None,
        })
    }

    /// Whether the cell has said how its preparation went (without
    /// waiting).
    pub fn settled(&self) -> bool {
        self.prepared.is_some() || self.readable(0)
    }

    /// Waits until `ready` has something or the cell is gone (then false),
    /// at most `timeout` ms (-1: no limit).
    fn readable(&self, timeout: i32) -> bool {
        let mut fds = [
            libc::pollfd {
                fd: self.ready_read.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            // SAFETY: a valid array of two pollfds.
            #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
            if n == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return n > 0;
        }
    }

    /// Reads what the cell said on `ready`, waiting for it: a byte, or a
    /// failure's step and errno; `None` if the cell died without a word.
    fn read_ready(&self) -> Option<[u8; 8]> {
        if !self.readable(-1) {
            return None;
        }
        let (bytes, n) = self.read_now()?;
        (n > 0).then_some(bytes)
    }

    /// What `ready` holds now, without waiting: `None` if nothing came;
    /// else the bytes and how many (none: every writer is gone, as a cell
    /// dead without a word leaves it).
    fn read_now(&self) -> Option<([u8; 8], usize)> {
        let mut bytes = [0u8; 8];
        let mut fd = [libc::pollfd {
            fd: self.ready_read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: a valid pollfd; then a read into a local buffer.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            if libc::poll(fd.as_mut_ptr(), 1, 0) != 1 {
                return None;
            }
            if fd[0].revents & libc::POLLIN == 0 {
                return Some((bytes, 0));
            }
            let n = libc::read(
                self.ready_read.as_raw_fd(),
                bytes.as_mut_ptr().cast(),
                bytes.len(),
            );
            Some((bytes, usize::try_from(n).unwrap_or(0)))
        }
    }

    /// How the cell's preparation went: whether it made a private
    /// `/dev/shm`, or why it failed (waits for it).
    pub fn prepared(&mut self) -> Result<bool, String> {
        if let Some(prepared) = &self.prepared {
            return prepared.clone();
        }
        let said = match self.read_ready() {
            Some([PREPARED, ..]) => Ok(false),
            Some([PREPARED_SHM, ..]) => Ok(true),
            Some([FAILED, step, _, _, a, b, c, d]) => {
                let errno = i32::from_ne_bytes([a, b, c, d]);
                let step = STEPS.get(usize::from(step)).copied().unwrap_or("prepare");
                Err(format!(
                    "build the worker's file system: {step}: {}",
                    std::io::Error::from_raw_os_error(errno)
                ))
            }
            _ => Err("build the worker's file system: its sandbox cell died".to_string()),
        };
        if said.is_ok() {
            // The worker made ahead has its own copies by now.
            drop(self.handed.take());
        }
        self.prepared = Some(said.clone());
        said
    }

    /// The cell's worker made ahead, once the cell is prepared: `None` if
    /// it has none (it could not be made: its task gets one the usual
    /// way).
    pub fn armed(&self) -> Option<ArmedWorker> {
        let task_end = self.armed?;
        let armed = self.shared.armed.as_ref()?;
        let pid = armed.pid.load(Ordering::Acquire);
        (self.prepared.as_ref()?.is_ok() && pid > 0).then_some(ArmedWorker {
            task_end,
            running: &raw const armed.running,
            pid,
        })
    }

    /// The cell's `ready` pipe: (its write end, which the cell's init
    /// writes once its worker runs; the launcher's read end).
    pub fn ready(&self) -> (RawFd, RawFd) {
        let write = self
            .fds
            .as_ref()
            .and_then(|fds| fds.get(1))
            .map_or(-1, AsRawFd::as_raw_fd);
        (write, self.ready_read.as_raw_fd())
    }

    /// The cell's stacks, for the start of its worker (see
    /// [`Self::give_back`]).
    pub fn lend_stacks(&mut self) -> Option<[ChildStack; 2]> {
        self.stacks.take()
    }

    /// Stacks lent for a start that failed: kept with the cell until it is
    /// reaped.
    pub fn give_back(&mut self, stacks: [ChildStack; 2]) {
        self.stacks = Some(stacks);
    }

    /// Gives the cell its task: `args` points to the task's
    /// `child::InitArgs`, which the cell uses (in the launcher's memory)
    /// until it says its worker has the task; returns once it has, or once
    /// the worker runs, or once the cell is gone (reaping it reports why),
    /// with the cell's pid (it is that task's init now) and whether the
    /// worker is known to run (else its init says so later on `ready`, see
    /// `child::Starting`). Its stacks must have been lent
    /// ([`Self::lend_stacks`]) and are the worker's from now on.
    ///
    /// # Safety
    ///
    /// `args` must point to what `child::cell_init` expects, alive until
    /// this returns.
    #[expect(
        unsafe_code,
        reason = "hands the cell a pointer: see the SAFETY comment"
    )]
    pub unsafe fn take(&mut self, args: *const libc::c_void) -> Result<(i32, bool), String> {
        self.prepared()?;
        self.shared.args.store(args.cast_mut(), Ordering::Release);
        if nix::unistd::write(&self.go, &[1u8]) != Ok(1) {
            return Err("start the worker's init: wake its sandbox cell".into());
        }
        // `HANDED`: the worker has its task (its `1` may follow). A `1`
        // alone: the worker runs (started the usual way, its made-ahead one
        // gone). Nothing: init failed (its failure pipe says why) or was
        // killed; reaping it reports that, and until then the worker may
        // still be on its way out, in this memory.
        let said = self.read_ready();
        // The cell has a file table of its own now, or is gone.
        drop(self.fds.take());
        Ok((self.pid, said.is_some_and(|bytes| bytes.contains(&RUNS))))
    }

    /// Reads what is left on `ready` once the cell's worker had its task
    /// (see [`Self::take`]): `Some(true)` once the worker runs, `Some(false)`
    /// when init is gone without saying so, `None` if nothing came yet.
    pub fn runs(&self) -> Option<bool> {
        self.read_now().map(|(bytes, n)| bytes[..n].contains(&RUNS))
    }

    /// Kills the cell (never given a task); it is reaped later, and only
    /// then may it be dropped (see [`Self::reaped`]).
    pub fn kill(&self) {
        // SAFETY: kill of our own unreaped child.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
    }

    /// The cell was reaped: nothing runs on its stacks, nothing uses its
    /// fds any more. Its stacks, for another.
    pub fn reaped(mut self) -> Option<[ChildStack; 2]> {
        drop(self.fds.take());
        drop(self.handed.take());
        self.stacks.take()
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        // A cell dropped neither reaped nor taken (the launcher leaving)
        // may still run on its stacks and use its fds: it is killed, and
        // they are kept (a leak of a few hundred kilobytes, never a use
        // after free or a reused fd number).
        if let Some(stacks) = self.stacks.take() {
            self.kill();
            std::mem::forget(stacks);
            std::mem::forget(self.fds.take());
            std::mem::forget(self.handed.take());
        }
    }
}

/// Writes `bytes` to `fd` with a raw call.
fn say(fd: RawFd, bytes: &[u8]) {
    // SAFETY: a write of a local buffer.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        syscall4(
            libc::SYS_write,
            fd as usize,
            bytes.as_ptr() as usize,
            bytes.len(),
            0,
        );
    }
}

/// The cell's body (see the module's documentation).
extern "C" fn cell_entry(shared: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the pointer `Cell::start` passed, to a boxed `Shared` that
    // lives until the cell is reaped.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let shared = unsafe { &*shared.cast::<Shared>() };
    // SAFETY: prctl with integers; ppoll with a local pollfd and a zero
    // timeout.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        syscall4(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG as usize,
            libc::SIGKILL as usize,
            0,
            0,
        );
        let mut fd = libc::pollfd {
            fd: shared.launcher,
            events: libc::POLLIN,
            revents: 0,
        };
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let n = syscall5(
            libc::SYS_ppoll,
            (&raw mut fd) as usize,
            1,
            (&raw const zero) as usize,
            0,
            0,
        );
        // The launcher is gone (or can't be told alive): so is the cell.
        if n != 0 {
            super::raw::exit(super::EXIT_SANDBOX_FAILED);
        }
    }
    let ahead = match prepare(shared.template, &shared.covers, shared.pid_max) {
        Ok(ahead) => {
            // Its worker, made now with the credentials it has here; one
            // that cannot be made leaves the pid at 0, and the task gets
            // one the usual way.
            // In its network namespace first: the worker is made in the
            // one the cell is in (a worker that could not be, is not).
            if let Some(armed) = &shared.armed
                && join_network(shared.network)
            {
                super::armed::start(armed);
            }
            say(
                shared.ready,
                &[if ahead.shm { PREPARED_SHM } else { PREPARED }],
            );
            ahead
        }
        Err((step, errno)) => {
            let e = errno.to_ne_bytes();
            say(shared.ready, &[FAILED, step, 0, 0, e[0], e[1], e[2], e[3]]);
            super::raw::exit(super::EXIT_SANDBOX_FAILED);
        }
    };
    let mut byte = 0u8;
    loop {
        // SAFETY: a read into a local byte.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let n = unsafe {
            syscall4(
                libc::SYS_read,
                shared.go as usize,
                (&raw mut byte) as usize,
                1,
                0,
            )
        };
        match n {
            1 => break,
            n if n == -(libc::EINTR as isize) => {}
            _ => super::raw::exit(super::EXIT_SANDBOX_FAILED),
        }
    }
    (shared.init)(shared.args.load(Ordering::Acquire), ahead)
}

/// Joins the network namespace `network`, if any (raw call); whether the
/// cell is where its worker must be made.
fn join_network(network: Option<RawFd>) -> bool {
    let Some(fd) = network else {
        return true;
    };
    // SAFETY: setns with an fd of the cell's.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let joined = unsafe {
        syscall4(
            libc::SYS_setns,
            fd.unsigned_abs() as usize,
            libc::CLONE_NEWNET as usize,
            0,
            0,
        )
    };
    joined == 0
}

/// Drops every capability from the bounding set (raw calls), as far as it
/// can (without `CAP_SETPCAP`, none); whether the set is empty after.
///
/// The launcher does so once, as it starts (see `server`): the set bounds
/// only what an `execve` can grant, and the launcher and its cells never
/// exec; every cell and worker inherits the empty set. A drop makes new
/// credentials, so a cell that emptied its own set paid 41 of them (and as
/// many RCU frees) for each task. Once it is empty, the launcher says so
/// ([`confine::note_bounding_set_empty`](crate::confine)), and a worker
/// does not read the set again, capability by capability, on its way to
/// its `execve` (the kernel lets a set only shrink, and nothing between
/// the launcher and a worker makes a user namespace, which would fill it
/// again); a worker made any other way still empties its own.
pub(super) fn empty_bounding_set() -> bool {
    for cap in 0..=63usize {
        // SAFETY: prctl with integers.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let (read, dropped) = unsafe {
            let read = syscall4(libc::SYS_prctl, libc::PR_CAPBSET_READ as usize, cap, 0, 0);
            if read != 1 {
                (read, 0)
            } else {
                let dropped = syscall4(libc::SYS_prctl, libc::PR_CAPBSET_DROP as usize, cap, 0, 0);
                (read, dropped)
            }
        };
        // Past the last capability the kernel knows (EINVAL): every one
        // before it was read as dropped, or dropped.
        if read == -(libc::EINVAL as isize) {
            return cap > 0;
        }
        // Not allowed, or another failure: the set may hold some still.
        if read < 0 || dropped < 0 {
            return false;
        }
    }
    true
}

/// The task-independent part of an init's file system (as
/// `template::enter` makes it): a fresh `/proc`, a copy of the template
/// entered, a private `/dev/shm`, the `/proc` put in place, and a tmpfs of
/// the cell's own over each of the template's `covers` (the parents of its
/// tasks' own paths: the same for every task of the template, so a task's
/// way to its worker is one mount shorter). Raw calls only: the launcher
/// runs beside it in the same memory. Returns what it made (whether
/// `/dev/shm` was made; the process cap, when `pid_max` is not 0, and
/// whether the kernel took it), or the failed step's index in [`STEPS`]
/// and its errno.
fn prepare(
    template: RawFd,
    covers: &[std::ffi::CString],
    pid_max: u64,
) -> Result<Ahead, (u8, i32)> {
    const FSOPEN_CLOEXEC: usize = 1;
    const FSCONFIG_CMD_CREATE: usize = 6;
    const FSMOUNT_CLOEXEC: usize = 1;
    const MOUNT_ATTR_NOSUID: usize = 0x2;
    const MOUNT_ATTR_NODEV: usize = 0x4;
    const MOUNT_ATTR_NOEXEC: usize = 0x8;
    const MOVE_MOUNT_F_EMPTY_PATH: usize = 0x4;
    let check = |step: u8, ret: isize| -> Result<usize, (u8, i32)> {
        if ret < 0 {
            Err((step, i32::try_from(-ret).unwrap_or(libc::EINVAL)))
        } else {
            Ok(ret.unsigned_abs())
        }
    };
    let s = |c: &std::ffi::CStr| c.as_ptr() as usize;
    // SAFETY: raw system calls on constant C strings, fds of ours and
    // integers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        // The proc file system first, while the cell is still in the
        // launcher's mount namespace, whose `/proc` vouches for it (see
        // `template`): the template holds none to detach.
        let context = check(
            0,
            syscall4(libc::SYS_fsopen, s(c"proc"), FSOPEN_CLOEXEC, 0, 0),
        )?;
        let close = |fd: usize| syscall4(libc::SYS_close, fd, 0, 0, 0);
        let created = syscall5(libc::SYS_fsconfig, context, FSCONFIG_CMD_CREATE, 0, 0, 0);
        if created < 0 {
            close(context);
            check(1, created)?;
        }
        let fresh = syscall4(
            libc::SYS_fsmount,
            context,
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            0,
        );
        close(context);
        let fresh = check(2, fresh)?;
        // From here a failed step closes the proc file system too.
        let step = |step: u8, ret: isize| {
            if ret < 0 {
                close(fresh);
            }
            check(step, ret)
        };
        step(
            3,
            syscall4(
                libc::SYS_setns,
                template as usize,
                libc::CLONE_NEWNS as usize,
                0,
                0,
            ),
        )?;
        step(
            4,
            syscall4(libc::SYS_unshare, libc::CLONE_NEWNS as usize, 0, 0, 0),
        )?;
        step(5, syscall4(libc::SYS_chdir, s(c"/"), 0, 0, 0))?;
        let shm = syscall5(
            libc::SYS_mount,
            s(c"tmpfs"),
            s(c"/dev/shm"),
            s(c"tmpfs"),
            (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as usize,
            s(crate::view::SHM_OPTIONS),
        );
        let shm = match shm {
            0 => true,
            // No /dev/shm shown: none made (as `template::enter` does).
            n if n == -(libc::ENOENT as isize) || n == -(libc::ENOTDIR as isize) => false,
            n => {
                step(6, n)?;
                false
            }
        };
        let moved = syscall5(
            libc::SYS_move_mount,
            fresh,
            s(c""),
            libc::AT_FDCWD as usize,
            s(c"/proc"),
            MOVE_MOUNT_F_EMPTY_PATH,
        );
        close(fresh);
        check(7, moved)?;
        for cover in covers {
            check(
                8,
                syscall5(
                    libc::SYS_mount,
                    s(c"tmpfs"),
                    cover.as_ptr() as usize,
                    s(c"tmpfs"),
                    (libc::MS_NOSUID | libc::MS_NODEV) as usize,
                    s(crate::template::COVER_OPTIONS),
                ),
            )?;
        }
        // The process cap, as a task's init sets it (see
        // `template::settle_proc`): a kernel that keeps no `pid_max` per PID
        // namespace refuses it, and the worker gets RLIMIT_NPROC instead.
        // Then `/proc` is read-only, as the worker sees it.
        let pid_max = match pid_max {
            0 => None,
            value => {
                let file = syscall4(
                    libc::SYS_openat,
                    libc::AT_FDCWD as usize,
                    s(c"/proc/sys/kernel/pid_max"),
                    (libc::O_WRONLY | libc::O_CLOEXEC) as usize,
                    0,
                );
                let mut digits = [0u8; 20];
                let text = super::raw::decimal(value, &mut digits);
                let taken = file >= 0 && {
                    let file = file.unsigned_abs();
                    let written =
                        syscall4(libc::SYS_write, file, text.as_ptr() as usize, text.len(), 0);
                    close(file);
                    written == text.len() as isize
                };
                check(
                    9,
                    syscall5(
                        libc::SYS_mount,
                        0,
                        s(c"/proc"),
                        0,
                        crate::view::PROC_READ_ONLY as usize,
                        0,
                    ),
                )?;
                Some(crate::namespaces::PidMax { value, taken })
            }
        };
        Ok(Ahead { shm, pid_max })
    }
}
