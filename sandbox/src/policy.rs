//! What a sandboxed worker may do: the paths it may read and write, whether
//! it may use the network, the limits it runs under. The coordinator builds a
//! [`Policy`] per task and hands it to the sandbox helper, which enforces it
//! before `execve`; nothing the worker does afterwards can widen it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Network access of a sandboxed worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// No sockets but Unix ones, no TCP, no UDP, no DNS.
    #[default]
    None,
    /// Unrestricted network (explicit opt-in only).
    Full,
    /// TCP to `127.0.0.1` on `ports` and nothing else, in a network
    /// namespace of the worker's own whose loopback is up: the coordinator
    /// holds the listening sockets there (handed over through
    /// [`Policy::gateway_handoff`]) and serves them: the model gateway of
    /// an agent CLI, which speaks HTTP to its model, and the egress proxy
    /// of a task with a network allow-list. Landlock allows a TCP
    /// `connect` to these ports only and no `bind`; there is no route
    /// anywhere else, the host's loopback included. Needs the namespace
    /// layer: the baseline refuses it rather than open the host's network.
    Gateway { ports: GatewayPorts },
}

/// The ports of [`Network::Gateway`]: one or two, each a listener the
/// worker's init makes and hands over, in this order. Two at most: an
/// agent CLI's model door and its egress proxy; a fixed size keeps
/// [`Network`] a plain value the launcher keys its filters and cells by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GatewayPorts {
    first: u16,
    second: Option<u16>,
}

impl GatewayPorts {
    /// One port.
    pub const fn one(port: u16) -> Self {
        Self {
            first: port,
            second: None,
        }
    }

    /// Two ports, handed over in this order.
    pub const fn two(first: u16, second: u16) -> Self {
        Self {
            first,
            second: Some(second),
        }
    }

    /// The ports, in the order their listeners are handed over.
    pub fn iter(self) -> impl Iterator<Item = u16> {
        std::iter::once(self.first).chain(self.second)
    }
}

/// Resource limits (rlimits) of a worker and everything it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Processes and threads of the worker at once (stops fork bombs). With
    /// the namespace layer it is the PID namespace's `pid_max` (so between
    /// this and this + 300 processes); in the baseline, RLIMIT_NPROC (which
    /// counts all processes of the user, and does not bind root).
    pub processes: u64,
    /// RLIMIT_NOFILE: open files per process.
    pub open_files: u64,
    /// RLIMIT_FSIZE: largest file a process may write, in bytes.
    pub file_size: u64,
    /// RLIMIT_AS: address space per process, in bytes.
    pub address_space: u64,
    /// RLIMIT_CPU: CPU seconds per process.
    pub cpu_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            processes: 4096,
            open_files: 4096,
            file_size: 8 << 30,
            address_space: 16 << 30,
            cpu_seconds: 6 * 3600,
        }
    }
}

/// Everything the sandbox helper enforces for one worker.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    /// Directories (and files) the worker may read, write, create and delete
    /// in: its worktree (or, for a task that owns only some paths, those
    /// within it, the worktree itself being in `read_only`) and its private
    /// tmp. A file is written in place: removing or renaming it takes rights
    /// on its directory.
    pub read_write: Vec<PathBuf>,
    /// Paths the worker may read and execute but not change: system
    /// directories, the repository's `.git`, a shared read-only checkout.
    pub read_only: Vec<PathBuf>,
    /// Device files that may be read and written (`/dev/null`, ...).
    pub devices: Vec<PathBuf>,
    pub network: Network,
    pub limits: Limits,
    /// File descriptors above 2 that stay open in the worker (everything
    /// else is closed before `execve`).
    pub keep_fds: Vec<i32>,
    /// Descriptors of ours, each a `cgroup.procs` file opened for writing:
    /// the worker (with its init) joins these cgroups before anything of it
    /// runs, so the cgroups' limits cover all of it.
    #[serde(default)]
    pub cgroups: Vec<i32>,
    /// Directories shown read-only at another path than their own: the
    /// sanitised git directory a task sees in place of the repository's.
    /// Only the namespace layer can show them; without it they are not
    /// granted at all (the baseline cannot hide what lies at the target).
    #[serde(default)]
    pub views: Vec<View>,
    /// With [`Network::Gateway`]: a Unix socket of the coordinator's on
    /// which the worker's init sends the listening sockets it made in the
    /// worker's network namespace (`SCM_RIGHTS`, one message, in the
    /// order of the ports), before the worker starts. Never reaches the
    /// worker.
    #[serde(default)]
    pub gateway_handoff: Option<i32>,
    /// Paths among `read_only` and `read_write` that every worker of the
    /// run is granted alike (toolchains, shared build caches): the launcher
    /// resolves them once a run, as it does the system paths, and shows
    /// them from its template of workers' roots. What a worker is granted
    /// is the same with or without it (a path here that the lists above do
    /// not hold grants nothing); what such a path is, is what it was when
    /// the run's first worker was granted it (a toolchain replaced in the
    /// middle of a run is seen by the next run).
    #[serde(default)]
    pub run_wide: Vec<PathBuf>,
    /// Directories shown as an overlay: what a kept `[setup]` made
    /// (`lower`, never written) under a layer of the worker's own
    /// (`upper`), at `target` (beneath a `read_write` path), so a worktree
    /// gets a setup's outputs without a copy and what the worker changes
    /// there is its own. Only the namespace layer can show them; without
    /// it they are not shown at all (the caller copies instead).
    #[serde(default)]
    pub overlays: Vec<Overlay>,
    /// `read_write` paths the worker is shown through an idmapped copy
    /// ([`crate::idmap`]) that the launcher's client makes for each start,
    /// in place of a copy the launcher makes: files root owns on disk are
    /// the worker's identity's there, and what it makes is root's on disk.
    /// Set only where the caller does not hand the path over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idmapped: Vec<PathBuf>,
}

/// A directory shown at `target` as an overlay file system: `lower`
/// read-only beneath `upper`, which takes every change (`work`: the
/// overlay's own scratch directory, on `upper`'s file system, empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    pub target: PathBuf,
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// A directory shown read-only at `target` in the worker's file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub source: PathBuf,
    pub target: PathBuf,
}

/// The unprivileged identity (uid, gid) a sandboxed worker runs as when
/// swarm itself runs as root: `nobody` / `nogroup`, so that ordinary file
/// permissions protect the machine too (a root-only file stays unreadable
/// even where a read-only rule exposes its directory). When swarm runs as
/// another user, workers keep that user's identity, which is already
/// unprivileged.
pub const SANDBOX_IDENTITY: (u32, u32) = (65534, 65534);

/// The identity workers of this process run as, if it is not the process's
/// own: [`SANDBOX_IDENTITY`] when the effective uid is root.
pub fn worker_identity() -> Option<(u32, u32)> {
    nix::unistd::geteuid().is_root().then_some(SANDBOX_IDENTITY)
}

/// System paths every worker may read: enough to run a shell, coreutils,
/// git and the usual toolchains installed system-wide. Only a subset of
/// `/etc`: not `/etc/shadow`, SSH host keys or other credentials. Missing
/// ones are skipped.
pub const SYSTEM_READ_ONLY: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/proc",
    "/sys",
    "/etc/alternatives",
    "/etc/bash.bashrc",
    "/etc/ca-certificates",
    "/etc/debian_version",
    "/etc/environment",
    "/etc/gitattributes",
    "/etc/gitconfig",
    "/etc/group",
    "/etc/host.conf",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/inputrc",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/locale.alias",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/passwd",
    "/etc/profile",
    "/etc/protocols",
    "/etc/resolv.conf",
    "/etc/services",
    "/etc/ssl",
    "/etc/terminfo",
    "/etc/timezone",
];

/// Device files every worker may use.
pub const SYSTEM_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// Environment variables passed through to a sandboxed worker; everything
/// else (API keys, SSH_AUTH_SOCK, cloud credentials...) is scrubbed.
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TERM",
    "TZ",
    "NO_COLOR",
];

impl Policy {
    /// The usual policy for a worker: `read_write` plus the system paths.
    pub fn for_worker(read_write: Vec<PathBuf>, read_only: Vec<PathBuf>) -> Self {
        let mut ro: Vec<PathBuf> = SYSTEM_READ_ONLY.iter().map(PathBuf::from).collect();
        ro.extend(read_only);
        Self {
            read_write,
            read_only: ro,
            devices: SYSTEM_DEVICES.iter().map(PathBuf::from).collect(),
            network: Network::None,
            limits: Limits::default(),
            keep_fds: Vec::new(),
            cgroups: Vec::new(),
            views: Vec::new(),
            gateway_handoff: None,
            run_wide: Vec::new(),
            overlays: Vec::new(),
            idmapped: Vec::new(),
        }
    }
}
