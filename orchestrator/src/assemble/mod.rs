//! Where a run is put together: a parsed plan plus the facts of the host
//! it runs on (a [`HostEnv`] the front end read) become the [`RunOptions`]
//! the dispatcher takes, once, in one place: the command line's overrides,
//! concurrency, the WASM engine with every program loaded, the model
//! gateway (and, for a cluster, its relay), the sandbox launcher, what
//! tasks are granted (read paths, toolchains) and their build caches.
//!
//! `swarm run`, `swarm resume`, a cluster node's job, `validate` and
//! `doctor` all use it; so can a test or another front end, which is the
//! point: running a plan needs no code of the binary. Nothing here prints
//! or reads the process environment: what would be printed comes back as
//! [`Notice`]s.

pub mod agents;
pub mod doctor;
pub mod gateway;
pub mod grants;
mod host;
mod mcp;
pub mod toolchains;
pub use mcp::mcp_programs;
mod wasm;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use self::host::HostEnv;
pub use self::wasm::wasm_engine;
use crate::gateway::relay::Relay;
use crate::plan::{self, Plan, PlanError, SandboxMode};
use crate::run::remote::GatewayAccess;
use crate::run::slurm::ClusterOptions;
use crate::run::{BuildCache, ExecutorOptions, RunOptions, SandboxSettings};

/// Failure to put a run together, as a fragment that reads after "failed
/// to".
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The plan asks for something this host cannot give (a `read_paths`
    /// entry that does not exist, a WASM program that does not load, a
    /// model whose key is not set): an error at its place in the plan.
    #[error("{}", .0.message)]
    Plan(Box<PlanError>),
    #[error("start run: --concurrency must be at least 1")]
    ZeroConcurrency,
    /// The kernel cannot enforce the sandbox, and the run does not run
    /// unconfined unless told to.
    #[error(
        "start run: tasks cannot be sandboxed on this machine: {why}\n\
         help: `swarm doctor` shows what this kernel supports; to run without any confinement \
         (tasks get your permissions), set `sandbox = \"none\"` in the [swarm] table of {plan} \
         or pass --sandbox none"
    )]
    NoSandbox { why: String, plan: String },
    /// The run needs the `swarm` binary (as the sandbox launcher, the
    /// agent worker or a cluster job's program) and the host gave none.
    #[error("find the swarm binary {what}")]
    NoProgram { what: &'static str },
    #[error("start run: failed to {0}")]
    Wasm(#[source] swarm_worker::wasm::WasmError),
    #[error("start the model gateway: failed to {0}")]
    Gateway(String),
    #[error("listen for the nodes' agent tasks on {listen} (--gateway-listen): {source}")]
    Relay {
        listen: SocketAddr,
        source: std::io::Error,
    },
    #[error("make the gateway's token: {0}")]
    Token(#[source] std::io::Error),
    /// The plan, or the command line (`--record` / `--replay`), asks for
    /// something its executor does not offer (`plan::capabilities`).
    #[error(transparent)]
    Unsupported(#[from] plan::capabilities::Unsupported),
    /// The launcher of an unconfined run's commands did not start.
    #[error("start the launcher of unconfined commands: {0}")]
    Launcher(String),
}

impl SetupError {
    /// Whether the person running swarm can fix it (a plan or a command
    /// line to change), rather than something that went wrong.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::Plan(_)
                | Self::ZeroConcurrency
                | Self::NoSandbox { .. }
                | Self::Relay { .. }
                | Self::Unsupported(_)
        )
    }
}

impl From<Box<PlanError>> for SetupError {
    fn from(e: Box<PlanError>) -> Self {
        Self::Plan(e)
    }
}

/// Where the run's tasks go, as the command line may say it over the
/// plan's `[executor]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorChoice {
    Local,
    Slurm,
}

/// What the person running swarm said on top of the plan. Each may only be
/// given by them (a command line, a front end's own settings), never by a
/// task or a model.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--sandbox`.
    pub sandbox: Option<SandboxMode>,
    /// `--executor`.
    pub executor: Option<ExecutorChoice>,
    /// `--concurrency`.
    pub concurrency: Option<usize>,
    /// `--worktrees`: where worktree homes go, over the plan's `worktrees`.
    pub worktrees: Option<PathBuf>,
    /// `--gateway-listen`: where a cluster run's relay listens.
    pub gateway_listen: Option<SocketAddr>,
    /// `--name`, or the run being resumed.
    pub name: Option<String>,
    /// `--grace`: between SIGTERM and SIGKILL when a worker is stopped.
    pub grace: Duration,
    /// `swarm resume --retry-failed` (with its `--only` tasks).
    pub retry_failed: Option<Vec<String>>,
    /// `--record`, `--replay`, `--replay-fallthrough`: model traffic kept
    /// in cassettes, or served from them.
    pub tape: crate::gateway::tape::TapeSettings,
    /// `swarm land`: the results its run adopts.
    pub adopt: Option<std::sync::Arc<crate::run::land::Adopted>>,
    /// A cluster node's kept setups, shared by its jobs
    /// (`node::setup_cache`), over the worktree home's.
    pub setup_cache: Option<PathBuf>,
    /// A cluster node's egress through the coordinator's relay.
    pub egress_via: Option<GatewayAccess>,
}

impl Overrides {
    /// What a cluster node's job (`swarm __node`) runs its attempts with,
    /// its worktrees under `dir`.
    pub fn for_node(
        job: &crate::run::remote::NodeJob,
        dir: &Path,
        setup_cache: Option<PathBuf>,
    ) -> Self {
        Self {
            sandbox: Some(match job.sandbox {
                true => SandboxMode::Landlock,
                false => SandboxMode::None,
            }),
            // The node runs its attempt with the local executor itself
            // (`node::run_job`); the plan's executor stays as the
            // coordinator read it.
            executor: None,
            concurrency: Some(1),
            worktrees: Some(dir.join("worktrees")),
            gateway_listen: None,
            name: Some(job.run.clone()),
            grace: Duration::from_millis(job.grace_ms),
            retry_failed: None,
            // A cluster run is refused --record and --replay before any
            // job starts (`plan::capabilities`).
            tape: Default::default(),
            adopt: None,
            setup_cache,
            egress_via: job
                .egress_via_coordinator
                .then(|| job.gateway.clone())
                .flatten(),
        }
    }
}

/// Whose models agent tasks reach.
#[derive(Debug, Clone)]
pub enum Models {
    /// This process holds the keys (the coordinator).
    Own,
    /// Through the coordinator's gateway at `GatewayAccess` (a cluster
    /// node's job; `None`: the job has no agent task).
    Remote(Option<GatewayAccess>),
}

/// Something the person should read before the run starts.
#[derive(Debug)]
pub enum Notice {
    /// A plan warning, at its place.
    Plan(PlanError),
    /// A line of text.
    Warning(String),
}

/// A run put together: what `run::prepare` takes, and what to tell the
/// person first.
#[derive(Debug)]
pub struct Assembly {
    pub options: RunOptions,
    pub notices: Vec<Notice>,
}

/// `overrides`' sandbox and executor applied to `plan`: they change what
/// the plan's own checks see, so they come before anything else.
pub fn apply(plan: &mut Plan, overrides: &Overrides) {
    if let Some(sandbox) = overrides.sandbox {
        plan.sandbox = sandbox;
    }
    match overrides.executor {
        Some(ExecutorChoice::Local) => plan.executor = plan::Executor::Local,
        Some(ExecutorChoice::Slurm) if !matches!(plan.executor, plan::Executor::Slurm(_)) => {
            plan.executor = plan::Executor::Slurm(Box::default());
        }
        _ => {}
    }
}

/// How many tasks run at once: the command line's, else for a cluster its
/// `max_jobs` (the cluster's jobs, not this machine's CPUs), else the
/// plan's, else the host's CPUs.
pub fn concurrency(plan: &Plan, host: &HostEnv, given: Option<usize>) -> Result<usize, SetupError> {
    if given == Some(0) {
        return Err(SetupError::ZeroConcurrency);
    }
    Ok(match &plan.executor {
        plan::Executor::Slurm(config) => given.unwrap_or(config.max_jobs),
        plan::Executor::Local => given.or(plan.concurrency).unwrap_or(host.cpus.max(1)),
    })
}

/// What a run of `plan` would be given, checked without starting
/// anything (no launcher, gateway or relay): every step of [`assemble`]
/// that can refuse a plan on this host. `assemble` starts with it, and
/// `swarm validate` is it, so a check added here is made by both.
#[derive(Debug)]
pub struct Checked {
    /// How many tasks run at once.
    pub concurrency: usize,
    /// The engine of the plan's WASM tasks, every program loaded.
    pub wasm: Option<Arc<swarm_worker::wasm::WasmEngine>>,
    /// The agent CLIs and MCP servers the plan's tasks use, found.
    pub agent_clis: BTreeMap<String, crate::run::CliProgram>,
    pub mcp_servers: BTreeMap<String, crate::run::McpProgram>,
    /// Where the run's worktrees go (`--worktrees` over the plan's).
    pub worktree_root: PathBuf,
    /// What tasks may read, the toolchains found, and what to warn about.
    pub grants: grants::Grants,
}

/// Checks `plan` (overrides already [`apply`]d) on `host` as [`assemble`]
/// would, starting nothing.
pub fn check(
    plan: &Plan,
    host: &HostEnv,
    overrides: &Overrides,
    models: &Models,
) -> Result<Checked, SetupError> {
    // What the plan asks of where its attempts run, asked of that
    // executor: on a node (`Models::Remote`) the local one runs them.
    let runs_on = match models {
        Models::Own => &plan.executor,
        Models::Remote(_) => &plan::Executor::Local,
    };
    if let Some(refused) =
        plan::capabilities::unsupported(&plan.source, !overrides.tape.is_off(), runs_on)
    {
        return Err(refused.into());
    }
    let concurrency = concurrency(plan, host, overrides.concurrency)?;
    Ok(Checked {
        concurrency,
        wasm: wasm_engine(plan, concurrency, host)?,
        agent_clis: agents::agent_programs(plan, host)?,
        mcp_servers: mcp::mcp_programs(plan, host)?,
        worktree_root: resolved(&match &overrides.worktrees {
            Some(dir) => dir.clone(),
            None => grants::worktree_root(plan, host)?,
        }),
        grants: grants::grants(plan, host)?,
    })
}

/// Puts together the run of `plan` (overrides already [`apply`]d) on
/// `host`. Async because the sandbox launcher and a cluster's relay start
/// here; call it on the runtime that will drive the run.
pub async fn assemble(
    plan: &Plan,
    plan_path: &str,
    host: &HostEnv,
    overrides: &Overrides,
    models: Models,
) -> Result<Assembly, SetupError> {
    let mut notices = Vec::new();
    let checked = check(plan, host, overrides, &models)?;
    let gateway = match &models {
        Models::Own => gateway::for_run(plan, host, &overrides.tape, &mut notices)?,
        Models::Remote(None) => None,
        Models::Remote(Some(access)) => gateway::remote(plan, access)?,
    };
    let agent_program = match gateway {
        None => None,
        Some(_) => Some(host.program("to run agent workers")?),
    };
    let confinement = confinement(plan, plan_path, host, checked.grants, &mut notices).await?;
    // Exhaustive, so that a new executor is pointed at here: its options
    // are put together in its own arm.
    let executor = match (&plan.executor, &models) {
        // A node runs its attempt with the local executor, whatever the
        // plan's executor is.
        (plan::Executor::Local, _) | (plan::Executor::Slurm(_), Models::Remote(_)) => {
            ExecutorOptions::Local
        }
        (plan::Executor::Slurm(config), Models::Own) => {
            let mut cluster = cluster_options(config, host)?;
            // Agent tasks reach their models through the relay, and with
            // `egress = "coordinator"` the nodes their hosts.
            let egress =
                (config.egress == plan::Egress::Coordinator).then(|| gateway::egress_check(plan));
            let relayed = match &gateway {
                Some(gateway) => Some(Arc::clone(gateway)),
                None if egress.is_some() => Some(gateway::empty()?),
                None => None,
            };
            if let Some(relayed) = relayed {
                let scopes = gateway::relay_scopes(plan, &relayed);
                let (relay, access) =
                    start_relay(relayed, (scopes, egress), overrides.gateway_listen, host).await?;
                cluster.gateway = Some(access);
                cluster.relay = Some(Arc::new(relay));
            }
            ExecutorOptions::Slurm(cluster)
        }
    };
    let options = RunOptions {
        name: overrides.name.clone(),
        concurrency: checked.concurrency,
        grace: overrides.grace,
        sandbox: confinement.sandbox,
        unconfined: confinement.unconfined,
        read_paths: confinement.read_paths,
        wasm: checked.wasm,
        gateway,
        agent_program,
        agent_clis: checked.agent_clis,
        mcp_servers: checked.mcp_servers,
        worktree_root: checked.worktree_root,
        setup_cache: overrides.setup_cache.clone(),
        egress_via: overrides.egress_via.clone(),
        caches: confinement.caches,
        retry_failed: overrides.retry_failed.clone(),
        executor,
        adopt: overrides.adopt.clone(),
    };
    Ok(Assembly { options, notices })
}

/// `path` without `.`, `..` or links in it, as git records a worktree's
/// place (`--worktrees ../wt` made paths git did not know as its own):
/// the part that exists resolved, the rest cleaned by its components.
fn resolved(path: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut rest = Vec::new();
    let mut existing = path;
    let base = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(Component::Normal(name));
                existing = parent;
            }
            // `..` or `.` at the end of a path that does not exist, or no
            // parent: clean what is there.
            _ => {
                rest.extend(existing.components().rev());
                break PathBuf::new();
            }
        }
    };
    let mut out = base;
    for component in rest.into_iter().rev() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// How a plan's tasks are confined on a host: the sandbox launcher (with
/// the detected toolchains' variables), the paths tasks may read, the
/// build caches they share.
struct Confinement {
    sandbox: Option<SandboxSettings>,
    unconfined: Option<swarm_sandbox::Launcher>,
    read_paths: Vec<PathBuf>,
    caches: Vec<BuildCache>,
}

async fn confinement(
    plan: &Plan,
    plan_path: &str,
    host: &HostEnv,
    granted: grants::Grants,
    notices: &mut Vec<Notice>,
) -> Result<Confinement, SetupError> {
    let (sandbox, unconfined) = match plan.sandbox {
        SandboxMode::None => (None, unconfined_launcher(plan, host).await?),
        SandboxMode::Landlock => (Some(sandbox_settings(plan_path, host).await?), None),
    };
    notices.extend(granted.warnings.into_iter().map(Notice::Plan));
    let found = granted.toolchains;
    let sandbox = sandbox.map(|mut settings| {
        for toolchain in &found {
            settings.env.extend(toolchain.env.iter().cloned());
        }
        settings
    });
    let mut read_paths = granted.read_paths;
    read_paths.extend(found.iter().flat_map(|t| t.grants.iter().cloned()));
    let caches = match plan.caches {
        false => Vec::new(),
        true => found
            .iter()
            .filter_map(|t| toolchains::cache_of(t.name))
            .map(|(name, var)| BuildCache {
                name: name.into(),
                var: var.into(),
                per_task: var == "CARGO_TARGET_DIR",
            })
            .collect(),
    };
    Ok(Confinement {
        sandbox,
        unconfined,
        read_paths,
        caches,
    })
}

/// Starts the run's sandbox launcher. Fails closed: sandboxed runs need
/// the kernel to enforce the sandbox.
async fn sandbox_settings(plan_path: &str, host: &HostEnv) -> Result<SandboxSettings, SetupError> {
    let refuse = |why: String| SetupError::NoSandbox {
        why,
        plan: plan_path.to_string(),
    };
    // The launcher checks the kernel itself and says why it refuses.
    let launcher = start_launcher(host)
        .await
        .map_err(|e| refuse(crate::error_chain(&e)))?;
    Ok(SandboxSettings {
        launcher,
        env: host.worker_env(),
    })
}

/// Starts the launcher of an unconfined run's commands, with the host's
/// environment less the plan's keys (what commands inherit), when the host
/// has a `swarm` binary; without one, the coordinator starts commands
/// itself.
async fn unconfined_launcher(
    plan: &Plan,
    host: &HostEnv,
) -> Result<Option<swarm_sandbox::Launcher>, SetupError> {
    let Some(helper) = &host.exe else {
        return Ok(None);
    };
    let secrets = plan.secret_vars();
    let mut env: Vec<(String, String)> = host
        .vars
        .iter()
        .filter(|(k, _)| !secrets.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.sort();
    swarm_sandbox::Launcher::start_unconfined(helper, &env)
        .await
        .map(Some)
        .map_err(|e| SetupError::Launcher(crate::error_chain(&e)))
}

/// Why the sandbox launcher did not start.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    #[error("find the swarm binary to use as the sandbox launcher")]
    NoProgram,
    #[error(transparent)]
    Sandbox(#[from] swarm_sandbox::LaunchError),
}

/// Starts the host's `swarm` binary as the sandbox launcher
/// (`swarm __sandbox`).
pub async fn start_launcher(host: &HostEnv) -> Result<swarm_sandbox::Launcher, LauncherError> {
    let helper = host.exe.as_ref().ok_or(LauncherError::NoProgram)?;
    Ok(swarm_sandbox::Launcher::start(helper).await?)
}

/// What jobs on a cluster get from the coordinator: the `swarm` binary
/// they run and the variables their scripts set (the sandbox's allowlist
/// and the home directory: never a key).
fn cluster_options(
    config: &plan::SlurmConfig,
    host: &HostEnv,
) -> Result<ClusterOptions, SetupError> {
    let swarm = match &config.swarm {
        Some(path) => PathBuf::from(path),
        None => host.program("for the cluster's jobs")?,
    };
    let mut env = host.worker_env();
    env.extend(
        ["HOME", "USER", "LOGNAME"]
            .iter()
            .filter_map(|k| Some((k.to_string(), host.var(k)?.to_string()))),
    );
    env.sort();
    // sbatch's environment becomes the job's (`--export=ALL`, which spares
    // each job a login shell): the job's variables, and Slurm's own
    // (`SLURM_CONF` finds the cluster, `SBATCH_*` are the user's defaults
    // for sbatch), which `--export=NONE` passed on as well. Nothing else of
    // this process's environment, which holds API keys.
    let mut submit_env = env.clone();
    submit_env.extend(
        host.vars
            .iter()
            .filter(|(k, _)| k.starts_with("SLURM_") || k.starts_with("SBATCH_"))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    submit_env.sort();
    Ok(ClusterOptions {
        swarm,
        env,
        submit_env,
        gateway: None,
        relay: None,
    })
}

/// Starts the gateway's relay for agent tasks on nodes, on `listen`
/// (default: every interface, a free port), with a fresh token.
#[allow(clippy::disallowed_methods, reason = "/dev/urandom")]
async fn start_relay(
    gateway: Arc<crate::gateway::Gateway>,
    (scopes, egress): (
        crate::gateway::relay::ScopesOf,
        Option<crate::gateway::relay::EgressCheck>,
    ),
    listen: Option<SocketAddr>,
    host: &HostEnv,
) -> Result<(Relay, GatewayAccess), SetupError> {
    use std::io::Read as _;
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(SetupError::Token)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let relay = Relay::start(gateway, listen, token.clone(), scopes, egress)
        .await
        .map_err(|source| SetupError::Relay { listen, source })?;
    let addr = relay.addr();
    // Nodes need a name for this machine when it listens everywhere.
    let name = match addr.ip().is_unspecified() {
        false => addr.ip().to_string(),
        true => host.hostname.clone().unwrap_or_else(|| "localhost".into()),
    };
    let name = match addr.ip() {
        std::net::IpAddr::V6(_) if !addr.ip().is_unspecified() => format!("[{name}]"),
        _ => name,
    };
    let access = GatewayAccess {
        url: format!("http://{name}:{}", addr.port()),
        token,
    };
    Ok((relay, access))
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
