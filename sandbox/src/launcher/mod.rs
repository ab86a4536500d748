//! The sandbox launcher: one helper process per run that starts every
//! sandboxed worker.
//!
//! The coordinator is multi-threaded, and Landlock, user namespaces and
//! seccomp must be set up by a single-threaded process; re-executing a
//! helper for every worker costs two `execve`s of a large binary per task
//! (that made a sandboxed spawn ~6x a plain one). So the `swarm` binary is
//! re-executed once per run (`swarm __sandbox`), enters the run-wide
//! namespaces, and then serves spawn requests over a Unix socket: for each
//! one it builds the worker's Landlock ruleset, forks, confines the child
//! and `execve`s the worker, and reports the worker's end.
//!
//! With the namespace layer on, each worker is the child of a tiny init
//! process (pid 1 of the worker's own PID namespace, see [`child`]): when
//! the worker ends, init kills and reaps everything left in the namespace
//! before it reports the end, so nothing a worker starts can outlive it,
//! double-forked daemons included. The end is reported then, not when init
//! is reaped: init's exit tears the namespace's mounts down, which is no
//! business of the worker's. Over a template, that init is a sandbox cell
//! made before its task came (see [`cell`]), and on x86-64 its worker
//! too, confined ahead as far as it can be without its task (see
//! [`armed`]).
//!
//! The same process, started in [`Mode::Unconfined`], starts the commands
//! of an unconfined run (`sandbox = "none"`): the coordinator is a large
//! multi-threaded process, and forking it for every command (and once more
//! for a watcher that killed the command's group if the coordinator died)
//! was most of a no-op task's cost. The launcher is small and
//! single-threaded, so its fork is cheap, and it is the one watcher of all
//! of them: when the coordinator's socket closes, however the coordinator
//! died, it kills every command's process group and cgroup.
//!
//! Wire format: one JSON message per `SOCK_SEQPACKET` packet; a spawn
//! request carries the worker's stdin, stdout, stderr and any further fds
//! (`Policy::keep_fds`) as `SCM_RIGHTS`. Every spawn gets exactly one
//! answer, [`Reply::Exited`] or [`Reply::Failed`].
//!
//! A command may be sent "on deck" (`after`: the id of a command still
//! running): the launcher holds it and starts it the moment that one ends
//! (an unconfined command is reaped; a sandboxed worker's init reports
//! its end, everything of it gone), before it even reports the end, so
//! that a slot's next short command does not wait for the coordinator's
//! round trip (a no-op task's end, its journal lines and the next task's
//! set-up were most of the time between two commands; with a sandbox, the
//! launcher's and init's work for the next worker too). It starts only if
//! that one exited 0:
//! after a failure the coordinator decides (a plan may stop at its first
//! failure). A held command starts early on [`Request::Begin`] (a slot
//! freed elsewhere), is dropped on [`Request::Withdraw`] or a stop, and
//! gets [`Reply::Began`] when it starts. It never adds to what runs at
//! once: it takes the place of the one it follows.

/// Exit code of the launcher when it cannot serve at all, and of a worker
/// whose confinement failed before `execve` (the reason goes to the
/// coordinator separately). The coordinator reads it as `exit::SANDBOX_FAILED`.
pub const EXIT_SANDBOX_FAILED: i32 = 125;

mod armed;
mod cell;
mod child;
mod client;
pub(crate) mod raw;
mod server;
mod stack;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;

pub use client::{Exit, LaunchError, Launcher, SpawnRequest, Spawned, UnconfinedRequest};
pub use server::serve;

/// The fd on which the launcher finds its socket to the coordinator.
pub const CHANNEL_FD: i32 = 3;

/// Largest message on the socket (a spawn request with its script).
const MAX_MESSAGE: usize = 1 << 20;

/// The target of a passed fd that is a `cgroup.procs` to join, not an fd
/// of the worker.
const JOIN_CGROUP: i32 = -1;

/// The target of a passed fd that is the socket the worker's init hands
/// its gateway listener over on (`Policy::gateway_handoff`).
const GATEWAY_HANDOFF: i32 = -2;

/// The target of a passed fd that is an idmapped copy of a tree, one for
/// each of `Policy::idmapped` in order (see [`crate::idmap`]).
const IDMAPPED_TREE: i32 = -3;

/// Most fds one request may carry.
const MAX_FDS: usize = 16;

/// Whether `target` is where a worker's output goes (stdout, stderr): the
/// copies of those the launcher or init keep until the worker's end is
/// reported (see `child::close_all_but`).
fn is_output(target: i32) -> bool {
    target == 1 || target == 2
}

/// What a launcher starts. A launcher serves one mode only, chosen when it
/// starts: a sandboxed run's launcher never starts anything unconfined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Confined workers ([`Launcher::spawn`]).
    Sandboxed,
    /// Unconfined commands ([`Launcher::spawn_unconfined`]), each the leader
    /// of its own process group.
    Unconfined,
}

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    /// Start a worker. The packet carries one fd per entry of `fds`, which
    /// says where each lands in the worker (0, 1, 2, then `keep_fds`).
    Spawn {
        id: u64,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: PathBuf,
        policy: Box<Policy>,
        fds: Vec<i32>,
        /// Held until worker `after` has ended (if it still runs), then
        /// started in its place.
        #[serde(default)]
        after: Option<u64>,
    },
    /// Start an unconfined command (a launcher in [`Mode::Unconfined`]
    /// only). Its environment is the launcher's own if `inherit`, without
    /// `remove`, with `env` over it; the packet's fds as for `Spawn`.
    Unconfined {
        id: u64,
        argv: Vec<String>,
        inherit: bool,
        remove: Vec<String>,
        env: Vec<(String, String)>,
        cwd: PathBuf,
        fds: Vec<i32>,
        /// The `cgroup.procs` of the cgroup the command joins, whose every
        /// member is killed if the coordinator goes away.
        reap: Option<PathBuf>,
        /// Held until command `after` is reaped (if it still runs), then
        /// started in its place.
        #[serde(default)]
        after: Option<u64>,
    },
    /// Start held command `id` now, if it is still held.
    Begin { id: u64 },
    /// Drop held command `id` (answered `Failed`), if it is still held; if
    /// it started, nothing happens.
    Withdraw { id: u64 },
    /// Stop worker `id`: SIGTERM to everything in it (`kill: false`) or
    /// SIGKILL to all of it at once.
    Stop { id: u64, kill: bool },
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    /// The launcher is ready; `degraded` says why the namespace layer is
    /// off, if it is.
    Ready { degraded: Option<String> },
    /// The launcher cannot work at all.
    Fatal { message: String },
    /// The worker ended.
    Exited {
        id: u64,
        code: Option<i32>,
        signal: Option<i32>,
        /// The command on deck behind it, which started in its place (its
        /// `Began`, in the same message: one message fewer a task).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        began: Option<u64>,
    },
    /// The worker could not be started (confinement failed): nothing ran.
    Failed { id: u64, message: String },
    /// Held command `id` started (it is reported like any other from now).
    Began { id: u64 },
}
