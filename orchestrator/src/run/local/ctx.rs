//! What every task of a run shares ([`Ctx`]): the repository, the run's
//! places and settings, its sandbox and cgroups, and the few things tasks
//! make once for all (read-only checkouts, kept setups, the last reading
//! of the free space).
//!
//! The bottom of `run/local/`: every file of it may use `Ctx`, and this
//! file uses none of them, so a file that needs the run's context never
//! closes a circle through the code that runs a task.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use git2::Oid;
use tokio::sync::{OnceCell, mpsc};

use crate::git::{GitError, Repo, Worktrees};
use crate::plan::Setup;
use crate::run::blocking::blocking;
use crate::run::executor::ExecEvent;

/// What every task of a run shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub repo: Repo,
    /// The run's base: what a shard's start is compared with to tell what
    /// the run changed for it (`affected = true`); `None` where that is not
    /// known (a cluster node's job knows only its own start), and then
    /// every entry runs.
    pub run_base: Option<git2::Oid>,
    pub worktrees: Worktrees,
    pub run: String,
    pub run_dir: PathBuf,
    pub worktree_dir: PathBuf,
    /// Build caches of sandboxed tasks.
    pub caches: Vec<Cache>,
    /// `[setup]`'s own build caches (each [`Cache::setup_dir`]), held for
    /// the run's base while the run lasts.
    pub setup_caches: Option<crate::run::lineage::Caches>,
    /// The plan's `[setup]` and the setups kept, if it has one.
    pub setups: Option<Setups>,
    /// The plan's `[cleanup]`, if it has one.
    pub cleanup: Option<crate::plan::Cleanup>,
    /// The plan's `[[quarantine]]`: failing tests that do not gate.
    pub quarantine: Arc<[crate::plan::quarantine::Quarantine]>,
    /// Where warm worktrees are kept, and how many of the run's tasks have
    /// worktrees (see `Task::warm_by_default`).
    pub warm: Option<(crate::run::warm::WarmDir, usize)>,
    /// Whether the run resumes an interrupted one (whose warm worktrees it
    /// may take over).
    pub resumed: bool,
    /// The files `.worktreeinclude` brings into each worktree.
    pub included: Arc<crate::worktree_include::Included>,
    pub tasks: crate::run::table::TaskTable,
    pub grace: Duration,
    pub sandbox: Option<crate::run::options::SandboxSettings>,
    /// Starts unconfined commands (see `RunOptions::unconfined`).
    pub unconfined_launcher: Option<swarm_sandbox::Launcher>,
    /// Where egress proxies open their connections on a cluster node
    /// whose jobs reach hosts through the coordinator (`None`: directly).
    pub egress_via: Option<crate::run::options::GatewayAccess>,
    /// The plan's `read_paths`, expanded.
    pub read_paths: Vec<PathBuf>,
    /// Runs the WASM tasks (when the plan has any).
    pub wasm: Option<Arc<swarm_worker::wasm::WasmEngine>>,
    pub gateway: Option<Arc<crate::gateway::Gateway>>,
    pub agent_program: Option<PathBuf>,
    /// The agent CLIs tasks use, by agent name.
    pub agent_clis: std::collections::BTreeMap<String, crate::run::options::CliProgram>,
    pub mcp_servers: std::collections::BTreeMap<String, crate::run::options::McpProgram>,
    /// Variables holding API keys: never passed to an unconfined command.
    pub secret_vars: Vec<String>,
    /// Free bytes the worktrees' file system must keep.
    pub min_free_space: u64,
    /// The last reading of the free space, and when (see
    /// [`short_of_space`]).
    pub free_space: std::sync::Mutex<Option<(Instant, u64)>>,
    /// The cgroup unconfined tasks without limits of their own share, so
    /// that nothing they start (even outside their process groups) outlives
    /// the run or its coordinator: dropping it (with the executor, when the
    /// run ends) kills what is left in it. Before `cgroups`: dropped first.
    pub unconfined: Option<crate::run::cgroup::TaskCgroup>,
    /// The run's cgroups, when the machine allows them.
    pub cgroups: Option<crate::run::cgroup::Cgroups>,
    /// Shared read-only checkouts (and their git directories), by commit:
    /// each made once, by the first task that needs it, while tasks on
    /// other commits go on.
    pub readonly: DashMap<Oid, Arc<OnceCell<(PathBuf, PathBuf)>>>,
    /// The git views read-only tasks share, by the checkout's record:
    /// every read-only task on one checkout is shown the same view
    /// (read-only, as every view), so it is written once, not once per
    /// task (see `attempt::readonly_view`).
    pub readonly_views:
        std::sync::Mutex<std::collections::HashMap<PathBuf, Vec<swarm_sandbox::View>>>,
    /// Each running task's own build caches, by task id, as readied for
    /// its attempt (`own_caches::ready`, whose token goes first):
    /// `(variable, directory)`.
    pub own_caches: DashMap<String, (u64, Vec<(String, PathBuf)>)>,
    /// The directories of the classes of rights in the shared caches
    /// made so far, by (variable, class) (`own_caches::ready`): made once
    /// a run (swarm's, in swarm's directory: no task can move one).
    pub class_dirs: DashMap<(String, String), PathBuf>,
    /// Where the task's events go (its executor).
    pub events: mpsc::UnboundedSender<ExecEvent>,
    /// Subtask requests of running attempts, checked as they come.
    pub spawner: Arc<crate::run::spawn::Spawner>,
}

impl Ctx {
    /// Where a task's `TMPDIR` is kept between runs, if it is: a sandboxed
    /// command in its warm worktree (`workdir` is that worktree's path,
    /// which only the task holding its lease is given) keeps the tmp
    /// beside it ([`crate::run::warm::WarmDir::tmp_path`]), so that what
    /// tools cache in `TMPDIR` (jest's haste map and transforms) is found
    /// again, as in a person's `/tmp`. Only sandboxed: as the build caches,
    /// whose owner is the sandbox's user (an unconfined task run as root
    /// would leave files the next sandboxed one cannot write). Nothing more
    /// trusted than the task reads it: setup, cleanup and verify have tmps
    /// of their own, a variant's score is kept from it, and swarm reads
    /// only a `$TMPDIR/` test report there, as hostile input, after
    /// removing any the last run left (`attempt::kept_tmp`).
    pub(crate) fn kept_tmp_path(
        &self,
        task: &crate::plan::Task,
        workdir: &std::path::Path,
    ) -> Option<PathBuf> {
        self.kept_tmp_paths(task, workdir).map(|(tmp, _)| tmp)
    }

    /// [`Self::kept_tmp_path`], and where swarm marks it worth keeping
    /// ([`crate::run::warm::WarmDir::tmp_mark`]).
    pub(crate) fn kept_tmp_paths(
        &self,
        task: &crate::plan::Task,
        workdir: &std::path::Path,
    ) -> Option<(PathBuf, PathBuf)> {
        let (warm, _) = self.warm.as_ref()?;
        self.sandbox.as_ref()?;
        if !matches!(task.payload, crate::plan::Payload::Command { .. })
            || task.isolation != swarm_protocol::Isolation::Worktree
        {
            return None;
        }
        let flat = crate::ids::flat(&task.id);
        (warm.path(&flat) == workdir).then(|| (warm.tmp_path(&flat), warm.tmp_mark(&flat)))
    }
    /// Whether swarm writes a `.gitconfig` into each attempt's tmp (its
    /// HOME): as root in a sandbox, where workers run as another user and
    /// git must trust the checkouts (`worker_files::trust_checkouts`).
    pub(super) fn tmp_holds_gitconfig(&self) -> bool {
        self.sandbox.is_some() && swarm_sandbox::worker_identity().is_some()
    }
}

/// A build cache (see [`crate::run::options::BuildCache`]), its directory made.
#[derive(Debug)]
pub(crate) struct Cache {
    pub var: String,
    pub dir: PathBuf,
    /// For a cache each task has its own of (`<dir>/<task>`, made when it
    /// first runs): where swarm records whose lineage each task's is
    /// (`<home>/.cache/@lineage/<tool>`, see `own_caches`).
    pub records: Option<PathBuf>,
    /// `[setup]`'s own (`<home>/.cache/@setup/<tool>`, or the run's own
    /// when another run holds those), for a run with one: a setup with its
    /// own rights reads no cache a task, or a setup of a base outside its
    /// base's history, could write.
    pub setup_dir: Option<PathBuf>,
}

/// With whose rights a `[setup]` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rights {
    /// Setup's own: its network, its variables, build caches of its own
    /// (`<home>/.cache/@setup/`). Only in a worktree that holds nothing a
    /// task wrote: a fresh checkout of the run's base (or a warm worktree
    /// scrubbed of everything git does not track first).
    Setup,
    /// The task's own: its network, its variables, its caches. In a
    /// worktree that holds a task's work (its dependencies' results, its
    /// parent's, an earlier run's leftovers), setup runs files a task
    /// could have written, so it can have no more than that task.
    Task,
}

/// A run's `[setup]`, and the setups it keeps.
#[derive(Debug)]
pub(crate) struct Setups {
    pub setup: Setup,
    /// Where finished setups are kept by key (`<home>/.setup`).
    pub kept: PathBuf,
    /// The run's base: only a setup of a fresh worktree at it is kept (a
    /// later base may hold results no person has looked at).
    pub(super) base: Oid,
    /// One lock per key: the first task with a key runs its setup, the
    /// others wait and copy it.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The kept setups' directories shown to worktrees as overlays.
    pub(super) layers: super::layers::Layers,
}

impl Setups {
    pub fn new(setup: Setup, kept: PathBuf, base: Oid) -> Self {
        // Only swarm reads and writes it.
        #[allow(
            clippy::disallowed_methods,
            reason = "the kept setups' directory, swarm's alone"
        )]
        let made =
            std::fs::set_permissions(&kept, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        if let Err(e) = made {
            tracing::warn!(error = %e, dir = %kept.display(), "failed to make the kept setups swarm's alone");
        }
        Self {
            setup,
            kept,
            base,
            locks: Default::default(),
            layers: Default::default(),
        }
    }

    pub(super) fn lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(key.to_string()).or_default())
    }
}

/// Why the disk is too full for another worktree, if it is: a task that
/// would fill it fails before it starts instead.
pub(super) fn short_of_space(ctx: &Ctx) -> Option<String> {
    short_of_space_as_of(ctx, false)
}

/// [`short_of_space`], read now (no earlier reading stands in for it):
/// after a command that may have filled the disk in moments.
pub(super) fn short_of_space_now(ctx: &Ctx) -> Option<String> {
    short_of_space_as_of(ctx, true)
}

fn short_of_space_as_of(ctx: &Ctx, now_only: bool) -> Option<String> {
    if ctx.min_free_space == 0 {
        return None;
    }
    // Looked at before every start (a task may fill the disk in moments),
    // but not again within moments of a reading that left room for more
    // than the minimum twice over: short tasks start hundreds a second,
    // and a `statvfs` each walked the worktrees' path every time.
    let now = Instant::now();
    if let Ok(last) = ctx.free_space.lock()
        && !now_only
        && let Some((at, free)) = *last
        && now.duration_since(at) < FREE_SPACE_FRESH
        && free / 2 >= ctx.min_free_space
    {
        return None;
    }
    // The worktrees' file system, or the repository's while the
    // worktrees' directory does not exist yet.
    let (dir, stat) = [&ctx.worktree_dir, &ctx.repo.workdir]
        .into_iter()
        .find_map(|d| Some((d, nix::sys::statvfs::statvfs(d.as_path()).ok()?)))?;
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    if let Ok(mut last) = ctx.free_space.lock() {
        *last = Some((now, free));
    }
    (free < ctx.min_free_space).then(|| {
        format!(
            "not started: {} free on the file system of {}, below min_free_space ({}); free some space (`swarm clean --all --warm` removes ended runs and the warm worktrees, with what their setups and tasks built; `swarm clean --caches` the build caches) or lower min_free_space",
            bytesize::ByteSize::b(free),
            dir.display(),
            bytesize::ByteSize::b(ctx.min_free_space)
        )
    })
}

/// How long a reading of the free space with room to spare stands for the
/// next starts (see [`short_of_space`]).
const FREE_SPACE_FRESH: std::time::Duration = std::time::Duration::from_millis(100);

/// The shared checkout of `commit` for read-only tasks (and its record
/// under `.git/worktrees/`), created once.
pub(super) async fn readonly_checkout(
    ctx: &Arc<Ctx>,
    commit: Oid,
) -> Result<(PathBuf, PathBuf), GitError> {
    // The map's lock is held only to find the cell, never across the wait.
    let cell = Arc::clone(ctx.readonly.entry(commit).or_default().value());
    let made = cell
        .get_or_try_init(|| async {
            let path = ctx
                .worktree_dir
                .join(format!(".readonly-{}", &commit.to_string()[..12]));
            let (c, p) = (Arc::clone(ctx), path.clone());
            let admin = blocking(move || c.worktrees.create(&p, commit, &[])).await?;
            Ok::<_, GitError>((path, admin))
        })
        .await?;
    Ok(made.clone())
}
