//! What a run is given beside its plan: the command line's settings, the
//! executor's options, the sandbox, build caches, and the agent CLIs and
//! MCP servers found on the host.

use std::path::PathBuf;
use std::time::Duration;

use super::adopted::Adopted;

/// How many nice steps below the dispatcher's thread swarm's background
/// threads run: the run's writer (merges) and, set by the CLI's runtime,
/// the blocking pool (checkouts, snapshots, deletions). Processes of tasks
/// are spawned from the dispatcher's thread and keep its priority.
pub const BACKGROUND_NICE: i32 = 5;

/// Settings of one run that come from the command line rather than the plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// An explicit run name (`--name`); taken names are then an error
    /// instead of getting a numeric suffix.
    pub name: Option<String>,
    /// At most this many tasks at once (already resolved from the plan,
    /// the command line or the number of CPUs).
    pub concurrency: usize,
    /// Time between SIGTERM and SIGKILL when a worker is stopped.
    pub grace: Duration,
    /// How workers are confined; `None` runs them unconfined.
    pub sandbox: Option<SandboxSettings>,
    /// Starts an unconfined run's commands (`swarm __sandbox --unconfined`),
    /// so that the coordinator never forks itself for one; `None` in a
    /// sandboxed run, or where no `swarm` binary was given (then the
    /// coordinator starts them itself, at twice a fork of its whole
    /// process each).
    pub unconfined: Option<swarm_sandbox::Launcher>,
    /// Extra paths tasks may read (the plan's `read_paths`, expanded):
    /// through the sandbox for commands, preopened for WASM tasks.
    pub read_paths: Vec<PathBuf>,
    /// Runs WASM tasks, with every program of the plan already loaded
    /// (`None` when the plan has none).
    pub wasm: Option<std::sync::Arc<swarm_worker::wasm::WasmEngine>>,
    /// Reaches the models of agent tasks (`None` when the plan has none).
    pub gateway: Option<std::sync::Arc<crate::gateway::Gateway>>,
    /// The `swarm` binary, run as `swarm __agent` for agent tasks.
    pub agent_program: Option<PathBuf>,
    /// The agent CLIs (Claude Code, Codex, ...) tasks use, found on this
    /// host, by agent name.
    pub agent_clis: std::collections::BTreeMap<String, CliProgram>,
    /// The `[mcp]` servers of the plan found on this host, by name.
    pub mcp_servers: std::collections::BTreeMap<String, McpProgram>,
    /// Where repositories' worktree homes are made (see
    /// [`crate::worktree_home`]): outside the repository. A resumed run
    /// uses the home its journal recorded instead.
    pub worktree_root: PathBuf,
    /// Where finished `[setup]`s are kept by key, when not in the worktree
    /// home (`<home>/.setup`): a cluster node's cache, shared by its jobs.
    pub setup_cache: Option<PathBuf>,
    /// A cluster node's way out for its egress proxies when the nodes
    /// reach their hosts through the coordinator: its relay.
    pub egress_via: Option<GatewayAccess>,
    /// Build caches sandboxed tasks share (one per detected toolchain,
    /// none when the plan turns them off).
    pub caches: Vec<BuildCache>,
    /// When resuming: run again the tasks that failed or timed out (all of
    /// them if empty, else these), and those they blocked.
    pub retry_failed: Option<Vec<String>>,
    /// What the plan's executor needs beyond the plan.
    pub executor: ExecutorOptions,
    /// Results taken from the run a landing run lands (`swarm land`): its
    /// tasks start already done (see [`land`]).
    pub adopt: Option<std::sync::Arc<Adopted>>,
}

/// The options of the executor the plan names, put together by
/// `assemble::assemble`: each executor's own, so that another engine adds
/// a variant here and its arm in [`Prepared::executor`].
#[derive(Debug, Clone, Default)]
pub enum ExecutorOptions {
    /// Attempts run on this machine.
    #[default]
    Local,
    /// Attempts run as Slurm jobs.
    Slurm(ClusterOptions),
}

/// A build cache of the repository's sandboxed tasks: the variable `var`
/// points a task at `<worktree home>/.cache/<name>` (or, `per_task`, at
/// `<worktree home>/.cache/<name>/<task>`), which it may write, and which
/// later runs find again.
///
/// Download and build caches that are content-addressed (npm's, pip's,
/// go's) are shared by all tasks: the tools keep concurrent use consistent.
/// Cargo's target directory is not: two tasks building the same package
/// from different worktrees into one target directory would take each
/// other's artifacts for fresh (cargo judges by modification times), so
/// each task id keeps its own, and every later run of that task starts
/// with its dependencies built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCache {
    pub name: String,
    pub var: String,
    pub per_task: bool,
}

/// Confinement of a run's workers.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// The run's sandbox launcher (`swarm __sandbox`), already started.
    pub launcher: swarm_sandbox::Launcher,
    /// The only variables of the coordinator's environment workers see
    /// (already filtered by the allowlist).
    pub env: Vec<(String, String)>,
}

/// An agent CLI found on the host: its plan entry, its program (a real
/// path), and what the sandbox shows of its installation, read-only.
#[derive(Debug, Clone)]
pub struct CliProgram {
    pub cli: crate::plan::agents::AgentCli,
    pub program: PathBuf,
    pub grant: PathBuf,
}

/// An MCP server found on the host: how the worker starts it (its
/// program resolved to a real path) and what the sandbox shows of its
/// installation, read-only.
#[derive(Debug, Clone)]
pub struct McpProgram {
    pub server: swarm_protocol::agent::McpServer,
    pub grant: PathBuf,
}

/// What a cluster run needs beyond its plan (put together by
/// `assemble::assemble`).
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The `swarm` binary on the nodes.
    pub swarm: std::path::PathBuf,
    /// The variables every job's script sets (never a secret).
    pub env: Vec<(String, String)>,
    /// `sbatch`'s whole environment, which becomes its jobs' (never a
    /// secret: `env` and Slurm's own variables).
    pub submit_env: Vec<(String, String)>,
    /// The coordinator's gateway for agent tasks on nodes.
    pub gateway: Option<GatewayAccess>,
    /// The relay nodes reach `gateway` through, kept for as long as the
    /// run's options are.
    pub relay: Option<std::sync::Arc<crate::gateway::relay::Relay>>,
}

/// The coordinator's model gateway as a node reaches it: the provider's
/// wire protocol at `url`, authenticated with the run's `token` (never a
/// provider key).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GatewayAccess {
    pub url: String,
    pub token: String,
}
