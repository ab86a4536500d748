//! Running a plan: preparation (every check that can fail before anything is
//! changed), then the dispatcher, which owns all run state and drives task
//! workers, merges, the journal and the report from one loop.

mod blocking;
mod cgroup;
mod dispatch;
mod executor;
mod experiment;
pub mod land;
pub mod landing;
mod lineage;
mod list;
mod local;
pub(crate) use local::layers::probe as probe_layers;
mod lock;
mod lost_branch;
pub mod remote;
mod replan;
pub(crate) mod resume;
pub mod slurm;
mod spawn;
mod table;
mod verify;
pub mod warm;
mod writer;

pub use crate::layout::transcript_path;
pub use list::{ListError, Listing, Note, list_runs};
pub use lock::{RunLock, is_held as is_driven};

/// How many nice steps below the dispatcher's thread swarm's background
/// threads run: the run's writer (merges) and, set by the CLI's runtime,
/// the blocking pool (checkouts, snapshots, deletions). Processes of tasks
/// are spawned from the dispatcher's thread and keep its priority.
pub const BACKGROUND_NICE: i32 = 5;

/// Which cgroups tasks get on this machine (`"v2"`, `"v1"`), or `None`
/// when their limits are rlimits only.
pub fn cgroup_support() -> Option<&'static str> {
    cgroup::Cgroups::probe()
}

/// Takes run `run`'s lock, as a coordinator does: for anything that must
/// not happen while the run is driven. The run's directory is created
/// through `state`, never through a link.
pub fn lock_run(state: &State, run: &str) -> Result<RunLock, RunError> {
    check_run_name(run)?;
    state.check_run(run)?;
    let run_dir = state.ensure_dir(&[crate::layout::RUNS, run])?;
    RunLock::acquire(&run_dir, run)
}

/// Whether run `run` was stopped before its start was journaled: its
/// directory is there, nobody holds its lock, and its journal is missing,
/// empty or one torn line. None of its tasks ran. A journal that cannot be
/// read, or whose lines this swarm cannot parse (a newer one's), is taken
/// as started: it is never discarded.
pub fn never_started(state: &State, run: &str) -> bool {
    let dir = state.path().join(crate::layout::RUNS).join(run);
    dir.is_dir() && !is_driven(&dir) && journal_unstarted(&dir.join(crate::layout::JOURNAL))
}

/// Whether the journal at `path` holds no complete line.
#[allow(clippy::disallowed_methods, reason = "a run's own journal")]
fn journal_unstarted(path: &Path) -> bool {
    use std::io::Read as _;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return e.kind() == std::io::ErrorKind::NotFound,
    };
    // The first line is `run_started`: a newline within it says a line
    // was completed. Read only as far as that.
    let mut buf = [0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) if buf.get(..n).is_some_and(|b| b.contains(&b'\n')) => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// Removes all a run stopped before its start was journaled left: the
/// `.lock` files of refs it was writing, the integration branch it made at
/// the base (only if its tip is on another branch or HEAD, as `git branch
/// -d`: it has no commits of its own), and its directory (lock, saved
/// plan, logs). Its name is free again. What became of the branch.
pub fn discard_unstarted(
    repo: &Repo,
    state: &State,
    run: &str,
) -> Result<Option<crate::git::branch::BranchFate>, RunError> {
    let lock = lock_run(state, run)?;
    // Checked again under the lock: it may have started meanwhile.
    let journal = state
        .path()
        .join(crate::layout::RUNS)
        .join(run)
        .join(crate::layout::JOURNAL);
    if !journal_unstarted(&journal) {
        return Ok(None);
    }
    resume::remove_stale_ref_locks(repo, run);
    let fate = crate::git::branch::delete_branch(repo, run, false)?;
    // Removed under the lock, so that no one starts the run in between.
    state.remove(&[crate::layout::RUNS, run])?;
    drop(lock);
    Ok(fate)
}

/// Refuses a run name that is not one path component and one git ref
/// component: the same rule as a plan's `name`, checked before anything is
/// created (a name like `../x` or `/tmp/x` would otherwise put the run's
/// directory, lock and worktrees outside `.swarm`).
pub fn check_run_name(name: &str) -> Result<(), RunError> {
    if crate::ids::is_valid_run_name(name) {
        Ok(())
    } else {
        Err(RunError::BadName {
            name: name.to_string(),
        })
    }
}

/// What a valid run name is, for help messages.
pub const RUN_NAME_RULE: &str = "a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . \
     (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`";

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::Oid;
use swarm_protocol::{Event, RunReport};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use crate::git::{GitError, Repo, refs};
use crate::plan::Plan;
use crate::state::{State, StateError};
use crate::worktree_home::WorktreeHome;

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
    pub egress_via: Option<remote::GatewayAccess>,
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
    pub adopt: Option<std::sync::Arc<land::Adopted>>,
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
    Slurm(slurm::ClusterOptions),
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

/// ` (pid N)` for a lock's recorded holder, nothing when it recorded none.
fn holder_note(holder: &str) -> String {
    match holder.is_empty() {
        true => String::new(),
        false => format!(" (pid {holder})"),
    }
}

/// Failure to run a plan, as a fragment that reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("start run `{name}`: the name is already used in this repository ({what})")]
    NameTaken { name: String, what: String },
    #[error(
        "start run `{name}`: a branch named `swarm` exists, so branches `swarm/<run>` cannot be created"
    )]
    SwarmBranchExists { name: String },
    #[error(
        "drive run `{run}`: another swarm process{} is driving it; wait for it to end, or stop it",
        holder_note(.holder)
    )]
    Locked { run: String, holder: String },
    #[error("use run name `{name}`: {RUN_NAME_RULE}")]
    BadName { name: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Home(#[from] crate::worktree_home::HomeError),
    #[error("resume run `{run}`: {why}")]
    NotResumable { run: String, why: String },
    /// Resumed, the run had finished and has nothing left that can run:
    /// not an error of the command (a CI retry of a step that passed), the
    /// caller reports the run and exits with its code.
    #[error(
        "resume run `{run}`: it finished (exit {exit_code}) and has no task left that can run; {hint}"
    )]
    Finished {
        run: String,
        exit_code: i32,
        hint: String,
    },
    #[error("{action}: {source}")]
    Io {
        action: String,
        source: std::io::Error,
    },
    #[error(
        "reach the Slurm cluster before submitting any job: {why} (check that its controller runs and that `squeue` works here)"
    )]
    NoCluster { why: String },
}

impl RunError {
    /// True when the error is the user's input (exit code 2) rather than a
    /// failure of the machine or of git.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::NameTaken { .. }
                | Self::BadName { .. }
                | Self::SwarmBranchExists { .. }
                | Self::Locked { .. }
                | Self::NotResumable { .. }
                | Self::Finished { .. }
                | Self::NoCluster { .. }
                | Self::Git(GitError::UnknownRev { .. })
        ) || matches!(self, Self::State(e) if e.is_unsafe())
            || matches!(self, Self::Home(e) if e.is_invalid_input())
    }
}

/// A plan checked against its repository, with nothing changed yet.
#[derive(Debug)]
pub struct Prepared {
    pub repo: Repo,
    pub plan: Plan,
    pub run: String,
    pub base_commit: Oid,
    pub options: RunOptions,
}

impl Prepared {
    pub fn run_dir(&self) -> PathBuf {
        crate::layout::run_dir(&self.repo.workdir, &self.run)
    }

    pub fn integration_branch(&self) -> String {
        refs::integration_branch(&self.run)
    }

    /// The run's worktrees: git checks out the run's base with the
    /// person's filter drivers when the person chose it (a plan from
    /// elsewhere may start from a branch tasks wrote, `swarm/<run>`), any
    /// other commit only as far as it differs from it (`git::worktree`).
    fn worktrees(&self) -> crate::git::Worktrees {
        let worktrees = crate::git::Worktrees::new(self.repo.clone());
        match self.plan.origin.is_untrusted() {
            true => worktrees,
            false => worktrees.trusting(self.base_commit),
        }
    }

    /// The executor the plan chose for its tasks.
    fn executor(
        &self,
        tasks: crate::run::table::TaskTable,
        spawner: std::sync::Arc<spawn::Spawner>,
        home: &WorktreeHome,
        resumed: bool,
    ) -> Result<Box<dyn executor::Executor + 'static>, RunError> {
        let inner = self.plain_executor(tasks.clone(), spawner, home, resumed)?;
        Ok(match &self.options.adopt {
            Some(adopted) => Box::new(land::AdoptingExecutor::new(
                inner,
                self.repo.clone(),
                self.run.clone(),
                tasks,
                adopted,
            )),
            None => inner,
        })
    }

    /// The plan's own executor.
    fn plain_executor(
        &self,
        tasks: crate::run::table::TaskTable,
        spawner: std::sync::Arc<spawn::Spawner>,
        home: &WorktreeHome,
        resumed: bool,
    ) -> Result<Box<dyn executor::Executor + 'static>, RunError> {
        Ok(match &self.plan.executor {
            crate::plan::Executor::Local => {
                let mut local = local::LocalExecutor::new(self, tasks, spawner, home, resumed)?;
                if !resumed {
                    local.warm_readonly(self.base_commit);
                }
                Box::new(local)
            }
            crate::plan::Executor::Slurm(config) => {
                Box::new(slurm::SlurmExecutor::new(self, tasks, config)?)
            }
        })
    }
}

/// Checks everything about running `plan` in `repo` that can be checked
/// without changing anything: the base exists, the run name is free.
pub fn prepare(repo: Repo, plan: Plan, options: RunOptions) -> Result<Prepared, RunError> {
    let wanted = options.name.clone().unwrap_or_else(|| plan.name.clone());
    check_run_name(&wanted)?;
    State::check_untracked(&repo)?;
    let state = State::open(&repo.workdir)?;
    let base_commit = repo.resolve(&plan.base)?;
    if repo.has_ref("refs/heads/swarm")? {
        return Err(RunError::SwarmBranchExists { name: wanted });
    }
    let run = if options.name.is_some() {
        if let Some(what) = name_in_use(&repo, &wanted)? {
            return Err(RunError::NameTaken { name: wanted, what });
        }
        wanted
    } else {
        free_run_name(&repo, &wanted, |_| false)?
    };
    if let Some(state) = &state {
        state.check_run(&run)?;
    }
    crate::worktree_home::check_root(&options.worktree_root, &repo)?;
    Ok(Prepared {
        repo,
        plan,
        run,
        base_commit,
        options,
    })
}

/// A run to resume: `run`, with the plan it was started with (its saved
/// copy). Whether it can be resumed is checked when it is driven, under its
/// lock; that its name and state directory are sound, now.
pub fn prepare_resume(
    repo: Repo,
    plan: Plan,
    run: String,
    options: RunOptions,
) -> Result<Prepared, RunError> {
    check_run_name(&run)?;
    open_run_state(&repo, &run)?;
    Ok(Prepared {
        repo,
        plan,
        run,
        // Read from the run's journal when it is resumed.
        base_commit: Oid::ZERO_SHA1,
        options,
    })
}

/// The checks of what `plan` means (`plan::semantic`: overlapping writers,
/// paths missing at the base, unchecked agents, `limits`) against its base
/// commit `base`.
pub fn check_plan(
    repo: &Repo,
    base: Oid,
    plan: &Plan,
    limits: crate::plan::semantic::Limits,
) -> Result<crate::plan::semantic::Findings, RunError> {
    Ok(repo.with_paths_of(base, |exists| {
        crate::plan::semantic::check(plan, exists, limits)
    })?)
}

/// The state directory of `repo` for reading or resuming run `run`: it must
/// be untracked, and nothing of the run's layout may be a link.
pub fn open_run_state(repo: &Repo, run: &str) -> Result<Option<State>, RunError> {
    check_run_name(run)?;
    State::check_untracked(repo)?;
    let state = State::open(&repo.workdir)?;
    if let Some(state) = &state {
        state.check_run(run)?;
    }
    Ok(state)
}

/// What already uses run name `name`, if anything.
/// `wanted`, or the first of `wanted-2`, `wanted-3`, ... that no run uses
/// and `taken` does not refuse: running the same plan again must just work,
/// and nothing of the earlier runs is lost.
pub fn free_run_name(
    repo: &Repo,
    wanted: &str,
    taken: impl Fn(&str) -> bool,
) -> Result<String, RunError> {
    check_run_name(wanted)?;
    let mut n = 1;
    loop {
        let candidate = if n == 1 {
            wanted.to_string()
        } else {
            format!("{wanted}-{n}")
        };
        if !taken(&candidate) && name_in_use(repo, &candidate)?.is_none() {
            return Ok(candidate);
        }
        n += 1;
    }
}

fn name_in_use(repo: &Repo, name: &str) -> Result<Option<String>, RunError> {
    // A run stopped before its start was journaled ran nothing: its name
    // is free, and `execute` removes what it left first.
    if let Some(state) = State::open(&repo.workdir)?
        && never_started(&state, name)
    {
        return Ok(None);
    }
    let branch = refs::integration(name);
    if repo.has_ref(&branch)? {
        return Ok(Some(format!("branch {}", refs::integration_branch(name))));
    }
    if repo.has_refs_under(&refs::run_prefix(name))? {
        return Ok(Some(format!("refs under {}", refs::run_prefix(name))));
    }
    let dir = crate::layout::run_dir(&repo.workdir, name);
    // A link there is taken too (and refused later); never followed.
    if dir.symlink_metadata().is_ok() {
        return Ok(Some(format!("directory {}", dir.display())));
    }
    Ok(None)
}

/// Runs a prepared plan to the end (or until `stop` says otherwise).
///
/// `observer` sees every event as it is journalled; the returned report is
/// the fold of exactly those events.
pub async fn execute(
    mut prepared: Prepared,
    observer: &mut (dyn FnMut(&Event) + Send),
    stop: watch::Receiver<Option<Stop>>,
) -> Result<RunReport, RunError> {
    // Everything the run writes into exists, checked, before the
    // dispatcher writes through plain paths.
    State::check_untracked(&prepared.repo)?;
    // Excluded before `.swarm` exists: another process's `git status`
    // (a second run's check for uncommitted changes) never counts it.
    prepared
        .repo
        .exclude(&format!("/{}/", crate::state::STATE_DIR))?;
    let state = State::create(&prepared.repo.workdir)?;
    let lock = claim(&mut prepared, &state)?;
    state.begin_run(&prepared.run)?;
    let home = WorktreeHome::create(&prepared.options.worktree_root, &prepared.repo)?;
    home.begin_run(&prepared.run)?;
    dispatch::Dispatcher::start(prepared, lock, &home, observer, stop)?
        .run()
        .await
}

/// Takes the lock of the new run `prepared.run`, the one step that makes
/// a name a process's own: two processes that chose the same name (two CI
/// jobs started at once) never both drive it. Under the lock, what a run
/// of that name stopped before its start left is cleared (its directory
/// and lock kept), and a run another process started meanwhile is never
/// joined. A name swarm chose moves on to the next free one; a name the
/// user gave (`--name`) is refused, naming the process that holds it.
fn claim(prepared: &mut Prepared, state: &State) -> Result<RunLock, RunError> {
    let mut tried: Vec<String> = Vec::new();
    loop {
        let existed = prepared.run_dir().symlink_metadata().is_ok();
        let refused = match lock_run(state, &prepared.run) {
            Ok(lock) => {
                let journal = prepared.run_dir().join(crate::layout::JOURNAL);
                if journal_unstarted(&journal) {
                    if existed {
                        clear_unstarted(&prepared.repo, state, &prepared.run)?;
                    }
                    return Ok(lock);
                }
                RunError::NameTaken {
                    name: prepared.run.clone(),
                    what: "a run another swarm process started meanwhile".into(),
                }
            }
            Err(refused @ RunError::Locked { .. }) => refused,
            Err(e) => return Err(e),
        };
        if prepared.options.name.is_some() {
            return Err(refused);
        }
        tried.push(std::mem::take(&mut prepared.run));
        prepared.run = free_run_name(&prepared.repo, &prepared.plan.name, |n| {
            tried.iter().any(|t| t == n)
        })?;
    }
}

/// Clears, under run `run`'s lock (held by the caller), what the run left
/// when it was stopped before its start was journaled: the `.lock` files of
/// refs it was writing, its integration branch (if it has no commits of its
/// own and is not checked out) and everything in its directory but the
/// lock.
fn clear_unstarted(repo: &Repo, state: &State, run: &str) -> Result<(), RunError> {
    use crate::git::branch::BranchFate;
    resume::remove_stale_ref_locks(repo, run);
    // A branch with commits of its own (someone worked on it) or checked
    // out keeps the name taken.
    if let Some(BranchFate::Unmerged { name, .. } | BranchFate::CheckedOut { name }) =
        crate::git::branch::delete_branch(repo, run, false)?
    {
        return Err(RunError::NameTaken {
            name: run.to_string(),
            what: format!("branch {name}, with commits of its own or checked out"),
        });
    }
    for entry in state.entries(&[crate::layout::RUNS, run])? {
        if entry.name != crate::layout::LOCK {
            state.remove(&[crate::layout::RUNS, run, &entry.name])?;
        }
    }
    Ok(())
}

/// Continues a run whose coordinator died or was cancelled, from its journal
/// and git; the report covers the whole run.
pub async fn resume(
    prepared: Prepared,
    observer: &mut (dyn FnMut(&Event) + Send),
    stop: watch::Receiver<Option<Stop>>,
) -> Result<RunReport, RunError> {
    let Some(state) = open_run_state(&prepared.repo, &prepared.run)? else {
        return Err(RunError::NotResumable {
            run: prepared.run.clone(),
            why: format!("swarm has not run in {}", prepared.repo.workdir.display()),
        });
    };
    if state
        .entries(&[crate::layout::RUNS])?
        .iter()
        .all(|e| e.name != prepared.run)
    {
        return Err(RunError::NotResumable {
            run: prepared.run.clone(),
            why: "no such run (see .swarm/runs/)".into(),
        });
    }
    for parts in [
        &[
            crate::layout::RUNS,
            prepared.run.as_str(),
            crate::layout::LOGS,
        ][..],
        &[crate::layout::RUNS, &prepared.run, crate::layout::TMP],
    ] {
        state.ensure_dir(parts)?;
    }
    let home = resume_home(&prepared)?;
    home.begin_run(&prepared.run)?;
    dispatch::Dispatcher::resume(prepared, &home, observer, stop)?
        .run()
        .await
}

/// The worktree home a run's journal recorded (made again if it is gone),
/// or `.swarm/worktrees` for runs from before homes.
fn resume_home(prepared: &Prepared) -> Result<WorktreeHome, RunError> {
    let journal = prepared.run_dir().join(crate::layout::JOURNAL);
    let recorded = crate::journal::run_started(&journal)
        .and_then(|e| match e.body {
            swarm_protocol::EventBody::RunStarted { worktrees, .. } => worktrees,
            _ => None,
        })
        .map(PathBuf::from);
    if let Some(home) = WorktreeHome::open(recorded.as_deref(), &prepared.repo)? {
        return Ok(home);
    }
    match recorded.as_deref().and_then(Path::parent) {
        // Gone (a cleared cache): made again where it was.
        Some(root) => Ok(WorktreeHome::create(root, &prepared.repo)?),
        None => {
            State::create(&prepared.repo.workdir)?;
            WorktreeHome::open(None, &prepared.repo)?.ok_or_else(|| RunError::NotResumable {
                run: prepared.run.clone(),
                why: "its state directory is gone".into(),
            })
        }
    }
}

/// The newest run recorded in the repository at `workdir`, if any.
pub fn latest_run(workdir: &Path) -> Result<Option<String>, RunError> {
    match State::open(workdir)? {
        None => Ok(None),
        Some(state) => Ok(state.latest()?),
    }
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
