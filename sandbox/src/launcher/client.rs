//! The coordinator's side of the launcher: starts `swarm __sandbox` once per
//! run (per mode), sends it spawn and stop requests, and routes each
//! worker's end back to whoever is waiting for it.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, recvmsg, sendmsg, socketpair,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

use super::{CHANNEL_FD, MAX_FDS, MAX_MESSAGE, Mode, Reply, Request};
use crate::policy::Policy;

/// Why the launcher could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("start the sandbox launcher {helper}: {source}")]
    Start {
        helper: PathBuf,
        source: std::io::Error,
    },
    #[error("start the sandbox launcher: {0}")]
    Refused(String),
    #[error("talk to the sandbox launcher: {0}")]
    Channel(std::io::Error),
    #[error("talk to the sandbox launcher: it exited")]
    Gone,
    #[error("start a sandboxed worker: at most {MAX_FDS} file descriptors can be passed")]
    TooManyFds,
    #[error(
        "start a sandboxed worker: its command is {len} bytes, and the sandbox takes at most {max}; put the script in a file in the repository and run that file"
    )]
    TooLarge { len: usize, max: usize },
}

/// How a sandboxed worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Exited(i32),
    Signaled(i32),
    /// Confinement failed: the worker's command never ran.
    Failed(String),
    /// The launcher died; the worker died with it.
    LauncherGone,
}

/// One worker to start.
#[derive(Debug)]
pub struct SpawnRequest {
    /// `argv[0]` is the program's path (no PATH search).
    pub argv: Vec<String>,
    /// The worker's whole environment.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub policy: Policy,
    /// Start it on deck behind worker `after`, as
    /// [`UnconfinedRequest::after`].
    pub after: Option<u64>,
    /// As [`UnconfinedRequest::started`].
    pub started: Option<Arc<std::sync::OnceLock<std::time::Instant>>>,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// One unconfined command to start (a launcher in [`Mode::Unconfined`]).
#[derive(Debug)]
pub struct UnconfinedRequest {
    /// `argv[0]` is the program's path (no PATH search).
    pub argv: Vec<String>,
    /// Whether the command gets the launcher's environment (the one it was
    /// started with), before `remove` and `env`.
    pub inherit: bool,
    /// Variables it must not get (API keys).
    pub remove: Vec<String>,
    /// Variables set over the rest.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Descriptors of the caller's that stay open, at the same numbers.
    pub keep_fds: Vec<RawFd>,
    /// `cgroup.procs` files (open for writing) the command joins first.
    pub cgroups: Vec<RawFd>,
    /// The `cgroup.procs` of one of them: its every member is killed if the
    /// coordinator goes away (what left the process group with it).
    pub reap: Option<PathBuf>,
    /// Start it "on deck" behind command `after` (a [`Spawned::id`] of this
    /// launcher's): the moment that one is reaped, in its place, or
    /// earlier on [`Spawned::begin_now`]. One that already ended left its
    /// place free: the command starts at once.
    pub after: Option<u64>,
    /// Set (to when) the moment the reply saying that a command sent on
    /// deck started is read, before anyone waiting in [`Spawned::began`]
    /// runs; for one sent without `after` (one the caller had on deck and
    /// starts at once), as it is sent. For a caller that counts what
    /// runs, and times it.
    pub started: Option<Arc<std::sync::OnceLock<std::time::Instant>>>,
    /// `None`: the launcher's own `/dev/null`, opened once for the run (an
    /// open, a close and a descriptor sent less per command, where most
    /// read nothing).
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

type Waiters = DashMap<u64, oneshot::Sender<Exit>>;

/// Who waits for a command on deck to start (dropped unsent when it ends
/// without starting), and the flag to set when it does.
type BeganWaiters = DashMap<
    u64,
    (
        oneshot::Sender<()>,
        Option<Arc<std::sync::OnceLock<std::time::Instant>>>,
    ),
>;

/// A close-on-exec duplicate of `fd`: a descriptor of the caller's that
/// goes to a worker, or the socket's copy a send waits for room on.
fn duplicate(fd: RawFd) -> Result<OwnedFd, LaunchError> {
    // SAFETY: the caller asked for this fd of ours to be passed on; we only
    // duplicate it.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup == -1 {
        return Err(LaunchError::Channel(std::io::Error::last_os_error()));
    }
    // SAFETY: `dup` is a fresh descriptor we own.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(dup) })
}

/// `fd` on this runtime's reactor, for `interest` only.
fn register(fd: OwnedFd, interest: Interest) -> Result<AsyncFd<OwnedFd>, LaunchError> {
    // SAFETY: `fd` is an OwnedFd, so the descriptor stays open (and is not
    // reused) for as long as the registration that owns it.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe { AsyncFd::register_with_interest(fd, interest) }
        .map_err(|e| LaunchError::Channel(std::io::Error::other(e.to_string())))
}

struct Inner {
    sock: Arc<AsyncFd<OwnedFd>>,
    next_id: AtomicU64,
    waiters: Arc<Waiters>,
    began: Arc<BeganWaiters>,
    degraded: Option<String>,
    /// Largest request the socket carries (its send buffer's size).
    max_message: usize,
    /// The launcher's pid (while it runs: it is our child until reaped).
    pid: Option<u32>,
    /// How a sandboxed worker is shown what it may change without a
    /// hand-over (as root, with the namespace layer; see [`crate::idmap`]),
    /// and which file systems (by device) take it.
    idmap: Option<crate::idmap::IdMap>,
    idmaps: std::sync::Mutex<std::collections::HashMap<u64, bool>>,
    // Kept so the launcher is reaped (and killed if still there) with us.
    process: tokio::process::Child,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The launcher sees the end of its requests, stops whatever still
        // runs and exits; the reply reader then sees it go.
        let _ = nix::sys::socket::shutdown(
            self.sock.get_ref().as_raw_fd(),
            nix::sys::socket::Shutdown::Write,
        );
        // Waited for (briefly: it only kills what is left and exits), so
        // that nothing it started outlives the run's end, and so that its
        // time and its commands' count in ours (`time swarm run`).
        let deadline = std::time::Instant::now() + LAUNCHER_EXIT;
        while matches!(self.process.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// How long the last [`Launcher`]'s drop waits for the launcher to exit
/// (then `kill_on_drop` has the runtime kill and reap it).
const LAUNCHER_EXIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A running launcher. Cheap to clone; the launcher exits when the last
/// clone is dropped and the coordinator closes the socket (or dies).
#[derive(Clone)]
pub struct Launcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launcher")
            .field("degraded", &self.inner.degraded)
            .finish_non_exhaustive()
    }
}

impl Launcher {
    /// Starts `helper __sandbox` (the `swarm` binary) and waits until it is
    /// ready. Fails when the machine cannot enforce the sandbox.
    pub async fn start(helper: &Path) -> Result<Self, LaunchError> {
        Self::start_in(helper, Mode::Sandboxed, &[]).await
    }

    /// Starts `helper __sandbox --unconfined`, which starts an unconfined
    /// run's commands, with environment `env` (what commands that inherit
    /// one get: the caller leaves keys out).
    pub async fn start_unconfined(
        helper: &Path,
        env: &[(String, String)],
    ) -> Result<Self, LaunchError> {
        Self::start_in(helper, Mode::Unconfined, env).await
    }

    async fn start_in(
        helper: &Path,
        mode: Mode,
        env: &[(String, String)],
    ) -> Result<Self, LaunchError> {
        let start_err = |source| LaunchError::Start {
            helper: helper.to_path_buf(),
            source,
        };
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| start_err(e.into()))?;
        let mut cmd = tokio::process::Command::new(helper);
        cmd.arg("__sandbox");
        if mode == Mode::Unconfined {
            cmd.arg("--unconfined");
        }
        cmd.env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            // Its own group: a Ctrl-C at the terminal reaches the
            // coordinator, which stops workers gracefully through it.
            .process_group(0)
            .kill_on_drop(true);
        let raw = theirs.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe; it places the socket at the
        // fd the launcher expects (clearing close-on-exec on the copy).
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(raw, CHANNEL_FD) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let process = cmd.spawn().map_err(start_err)?;
        drop(theirs);
        set_nonblocking(&ours).map_err(LaunchError::Channel)?;
        // A request is one packet, which must fit the sender's buffer; ask
        // for room for large scripts (the system may grant less).
        use nix::sys::socket::{getsockopt, setsockopt, sockopt::SndBuf};
        let _ = setsockopt(&ours, SndBuf, &(MAX_MESSAGE + (64 << 10)));
        let max_message = getsockopt(&ours, SndBuf)
            .map_or(64 << 10, |granted| granted.saturating_sub(64 << 10))
            .min(MAX_MESSAGE);
        // Readable only: registered for writing too, every request the
        // launcher reads (its room freed in our send buffer) woke this
        // runtime for nothing, between the request and the worker's start
        // (a `perf` trace of the spawn loop: 155 of 200 spawns). A send
        // that finds no room waits on a registration of its own (`send`).
        let sock = register(ours, Interest::READABLE)?;
        let mut buf = vec![0u8; 64 << 10];
        let degraded = match recv(&sock, &mut buf).await? {
            Some(Reply::Ready { degraded }) => degraded,
            Some(Reply::Fatal { message }) => return Err(LaunchError::Refused(message)),
            Some(other) => {
                return Err(LaunchError::Refused(format!(
                    "unexpected first message {other:?}"
                )));
            }
            None => return Err(LaunchError::Gone),
        };
        // Only where workers switch identity and their roots are built of
        // detached trees (the namespace layer).
        let idmap = (mode != Mode::Unconfined && degraded.is_none())
            .then(crate::policy::worker_identity)
            .flatten()
            .and_then(|owner| crate::idmap::IdMap::new(owner).ok());
        let inner = Arc::new(Inner {
            sock: Arc::new(sock),
            next_id: AtomicU64::new(1),
            waiters: Arc::new(DashMap::new()),
            began: Arc::new(DashMap::new()),
            degraded,
            max_message,
            pid: process.id(),
            idmap,
            idmaps: Default::default(),
            process,
        });
        tokio::spawn(read_replies(
            Arc::clone(&inner.sock),
            Arc::clone(&inner.waiters),
            Arc::clone(&inner.began),
            buf,
        ));
        Ok(Self { inner })
    }

    /// Why the namespace layer is off (Landlock + seccomp only), if it is.
    pub fn degraded(&self) -> Option<&str> {
        self.inner.degraded.as_deref()
    }

    /// The launcher's process id: a caller may move it into a cgroup, which
    /// everything it starts from then on inherits (see
    /// [`UnconfinedRequest::cgroups`] for joining one per command instead).
    pub fn pid(&self) -> Option<u32> {
        self.inner.pid
    }

    /// Whether a worker can be shown `path` through an idmapped copy
    /// ([`Policy::idmapped`]) instead of having it handed over: as root,
    /// with the namespace layer, on a file system that takes it (tried
    /// once per file system and run).
    pub fn idmaps(&self, path: &Path) -> bool {
        let Some(map) = &self.inner.idmap else {
            return false;
        };
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return false;
        };
        let Ok(mut known) = self.inner.idmaps.lock() else {
            return false;
        };
        *known
            .entry(std::os::unix::fs::MetadataExt::dev(&meta))
            .or_insert_with(|| map.tree(path).is_ok())
    }

    /// Starts a worker. Returns once the request is sent; confinement
    /// failures arrive as [`Exit::Failed`].
    pub async fn spawn(&self, request: SpawnRequest) -> Result<Spawned, LaunchError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let SpawnRequest {
            argv,
            env,
            cwd,
            policy,
            after,
            started,
            stdin,
            stdout,
            stderr,
        } = request;
        let (mut fds, mut targets) = passed_fds(
            [Some(stdin), Some(stdout), Some(stderr)],
            &policy.keep_fds,
            &policy.cgroups,
        )?;
        if let Some(fd) = policy.gateway_handoff {
            fds.push(duplicate(fd)?);
            targets.push(super::GATEWAY_HANDOFF);
            if fds.len() > MAX_FDS {
                return Err(LaunchError::TooManyFds);
            }
        }
        // A fresh copy for each start: a detached tree is attached once.
        for path in &policy.idmapped {
            let map = self.inner.idmap.as_ref().ok_or_else(|| {
                LaunchError::Refused(format!(
                    "show {} through an idmapped copy: this launcher makes none",
                    path.display()
                ))
            })?;
            let tree = map
                .tree(path)
                .map_err(|e| LaunchError::Refused(format!("failed to {e}")))?;
            fds.push(tree);
            targets.push(super::IDMAPPED_TREE);
            if fds.len() > MAX_FDS {
                return Err(LaunchError::TooManyFds);
            }
        }
        let message = Request::Spawn {
            id,
            argv,
            env,
            cwd,
            policy: Box::new(policy),
            fds: targets,
            after,
        };
        self.request(id, &message, fds, after, started).await
    }

    /// Starts an unconfined command (a launcher started with
    /// [`Launcher::start_unconfined`]). Returns once the request is sent.
    pub async fn spawn_unconfined(
        &self,
        request: UnconfinedRequest,
    ) -> Result<Spawned, LaunchError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let UnconfinedRequest {
            argv,
            inherit,
            remove,
            env,
            cwd,
            keep_fds,
            cgroups,
            reap,
            after,
            started,
            stdin,
            stdout,
            stderr,
        } = request;
        let (fds, targets) = passed_fds([stdin, Some(stdout), Some(stderr)], &keep_fds, &cgroups)?;
        let message = Request::Unconfined {
            id,
            argv,
            inherit,
            remove,
            env,
            cwd,
            fds: targets,
            reap,
            after,
        };
        self.request(id, &message, fds, after, started).await
    }

    /// Sends start request `message` (worker `id`) with `fds`. `started`:
    /// the flag to set when it starts: when the launcher says so if it is
    /// sent on deck (`after`), else once it is sent.
    async fn request(
        &self,
        id: u64,
        message: &Request,
        fds: Vec<OwnedFd>,
        after: Option<u64>,
        started: Option<Arc<std::sync::OnceLock<std::time::Instant>>>,
    ) -> Result<Spawned, LaunchError> {
        let (held, at_once) = match after {
            Some(_) => (Some(started.unwrap_or_default()), None),
            None => (None, started),
        };
        let (tx, rx) = oneshot::channel();
        self.inner.waiters.insert(id, tx);
        let began = held.map(|flag| {
            let (tx, rx) = oneshot::channel();
            self.inner.began.insert(id, (tx, Some(flag)));
            rx
        });
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        if let Err(e) = self.send(message, &raw).await {
            self.inner.waiters.remove(&id);
            self.inner.began.remove(&id);
            return Err(e);
        }
        if let Some(flag) = at_once {
            let _ = flag.set(std::time::Instant::now());
        }
        Ok(Spawned {
            id,
            exit: Some(rx),
            ended: None,
            began,
            started: true,
            launcher: self.clone(),
        })
    }

    async fn send(&self, request: &Request, fds: &[RawFd]) -> Result<(), LaunchError> {
        let bytes = serde_json::to_vec(request)
            .map_err(|e| LaunchError::Channel(std::io::Error::other(e)))?;
        if bytes.len() > self.inner.max_message {
            return Err(LaunchError::TooLarge {
                len: bytes.len(),
                max: self.inner.max_message,
            });
        }
        let iov = [IoSlice::new(&bytes)];
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
        let sock = self.inner.sock.as_raw_fd();
        loop {
            match sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => {
                    // No room: the launcher is behind. Wait for it through
                    // a registration for writing of a copy of the socket,
                    // made only now (the socket's own is for reading, see
                    // `start`); epoll reports room there at once if it came
                    // in the meantime.
                    let room = register(duplicate(sock)?, Interest::WRITABLE)?;
                    room.writable()
                        .await
                        .map_err(LaunchError::Channel)?
                        .clear_ready();
                }
                Err(nix::errno::Errno::EPIPE) => return Err(LaunchError::Gone),
                Err(e) => return Err(LaunchError::Channel(e.into())),
            }
        }
    }
}

/// The fds a start request carries (the worker's stdin, stdout, stderr,
/// those given, then `keep` at their own numbers), and where each lands:
/// `keep` name fds of the coordinator to pass on unchanged; cgroups to
/// join travel the same way, marked by a negative target.
fn passed_fds(
    std: [Option<OwnedFd>; 3],
    keep: &[RawFd],
    cgroups: &[RawFd],
) -> Result<(Vec<OwnedFd>, Vec<i32>), LaunchError> {
    let (mut fds, mut targets) = (Vec::with_capacity(3), Vec::with_capacity(3));
    for (fd, target) in std.into_iter().zip(0..) {
        if let Some(fd) = fd {
            fds.push(fd);
            targets.push(target);
        }
    }
    let passed = keep.iter().map(|&fd| (fd, fd));
    let joined = cgroups.iter().map(|&fd| (fd, super::JOIN_CGROUP));
    for (fd, target) in passed.chain(joined) {
        fds.push(duplicate(fd)?);
        targets.push(target);
    }
    if fds.len() > MAX_FDS {
        return Err(LaunchError::TooManyFds);
    }
    Ok((fds, targets))
}

/// A worker the launcher was asked to start. Dropped before it ended (an
/// attempt aborted), it is killed, with everything it started.
#[derive(Debug)]
pub struct Spawned {
    id: u64,
    /// Until the worker's end is known.
    exit: Option<oneshot::Receiver<Exit>>,
    ended: Option<Exit>,
    /// Until a command sent on deck has started (or ended unstarted).
    began: Option<oneshot::Receiver<()>>,
    /// Whether it started (known once `began` is gone).
    started: bool,
    launcher: Launcher,
}

impl Spawned {
    /// The launcher's id of the command, which a command sent on deck
    /// behind it names ([`UnconfinedRequest::after`]).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether it was sent on deck and has not started (as far as the
    /// replies read so far say).
    pub fn on_deck(&self) -> bool {
        self.began.is_some()
    }

    /// Waits until a command sent on deck has started (true) or ended
    /// without starting (false); cancel-safe; at once (true) for any other.
    pub async fn began(&mut self) -> bool {
        let Some(rx) = self.began.as_mut() else {
            return self.started;
        };
        self.started = rx.await.is_ok();
        self.began = None;
        self.started
    }

    /// What [`Spawned::began`] would answer now, if it would answer at
    /// once.
    pub fn try_began(&mut self) -> Option<bool> {
        let Some(rx) = self.began.as_mut() else {
            return Some(self.started);
        };
        self.started = match rx.try_recv() {
            Ok(()) => true,
            Err(oneshot::error::TryRecvError::Empty) => return None,
            Err(oneshot::error::TryRecvError::Closed) => false,
        };
        self.began = None;
        Some(self.started)
    }

    /// Starts a command on deck now, if the launcher still holds it.
    pub async fn begin_now(&self) {
        let _ = self
            .launcher
            .send(&Request::Begin { id: self.id }, &[])
            .await;
    }

    /// Takes back a command on deck, if the launcher still holds it (it
    /// then ends without starting); one that started goes on.
    pub async fn withdraw(&self) {
        let _ = self
            .launcher
            .send(&Request::Withdraw { id: self.id }, &[])
            .await;
    }

    /// Waits for the worker to end (cancel-safe; once it ended, at once,
    /// the same way).
    pub async fn wait(&mut self) -> Exit {
        if let Some(rx) = self.exit.as_mut() {
            let exit = rx.await.unwrap_or(Exit::LauncherGone);
            self.exit = None;
            self.ended = Some(exit);
        }
        self.ended.clone().unwrap_or(Exit::LauncherGone)
    }

    /// Asks the worker to stop: SIGTERM to every process in it, or, with
    /// `kill`, SIGKILL to all of it at once.
    pub async fn stop(&self, kill: bool) {
        let _ = self
            .launcher
            .send(&Request::Stop { id: self.id, kill }, &[])
            .await;
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.exit.is_none() {
            return;
        }
        // Best effort and without waiting (a drop cannot): a full socket
        // means a launcher far behind, which still kills everything when
        // the run ends.
        let Ok(bytes) = serde_json::to_vec(&Request::Stop {
            id: self.id,
            kill: true,
        }) else {
            return;
        };
        let iov = [IoSlice::new(&bytes)];
        let _ = sendmsg::<()>(
            self.launcher.inner.sock.get_ref().as_raw_fd(),
            &iov,
            &[],
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        );
    }
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// One reply; `None` when the launcher closed the socket.
async fn recv(sock: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> Result<Option<Reply>, LaunchError> {
    let len = sock
        .async_io(Interest::READABLE, |sock| {
            let mut iov = [IoSliceMut::new(buf)];
            recvmsg::<()>(sock.as_raw_fd(), &mut iov, None, MsgFlags::empty())
                .map(|m| m.bytes)
                .map_err(std::io::Error::from)
        })
        .await
        .map_err(LaunchError::Channel)?;
    if len == 0 {
        return Ok(None);
    }
    serde_json::from_slice(&buf[..len])
        .map(Some)
        .map_err(|e| LaunchError::Channel(std::io::Error::other(e)))
}

/// Command `id`, sent on deck, started: its flag first (for whoever
/// counts what runs), then its waiter.
fn began_now(began: &BeganWaiters, id: u64) {
    if let Some((_, (tx, flag))) = began.remove(&id) {
        if let Some(flag) = flag {
            let _ = flag.set(std::time::Instant::now());
        }
        let _ = tx.send(());
    }
}

/// Routes every worker's end to its waiter until the launcher goes away;
/// then every waiter learns that its worker is gone too.
async fn read_replies(
    sock: Arc<AsyncFd<OwnedFd>>,
    waiters: Arc<Waiters>,
    began: Arc<BeganWaiters>,
    mut buf: Vec<u8>,
) {
    loop {
        let (id, exit) = match recv(&sock, &mut buf).await {
            Ok(Some(Reply::Exited {
                id,
                code,
                signal,
                began: next,
            })) => {
                if let Some(next) = next {
                    began_now(&began, next);
                }
                (
                    id,
                    match (code, signal) {
                        (Some(code), _) => Exit::Exited(code),
                        (None, Some(signal)) => Exit::Signaled(signal),
                        (None, None) => Exit::Exited(-1),
                    },
                )
            }
            Ok(Some(Reply::Failed { id, message })) => (id, Exit::Failed(message)),
            Ok(Some(Reply::Began { id })) => {
                began_now(&began, id);
                continue;
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => {
                began.clear();
                let ids: Vec<u64> = waiters.iter().map(|w| *w.key()).collect();
                for id in ids {
                    if let Some((_, tx)) = waiters.remove(&id) {
                        let _ = tx.send(Exit::LauncherGone);
                    }
                }
                return;
            }
        };
        // One that ended without starting stops waiting to start.
        began.remove(&id);
        if let Some((_, tx)) = waiters.remove(&id) {
            let _ = tx.send(exit);
        }
    }
}
