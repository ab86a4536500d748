//! One attempt of a task on this machine: its environment, build caches,
//! cgroup, view of the git directory and sandbox policy, then the command
//! and its `verify`, the agent, or the WASM guest.

use std::path::PathBuf;
use std::sync::Arc;

use git2::Oid;
use swarm_protocol::agent::AgentReport;
use swarm_protocol::{AttemptOutcome, Isolation};
use swarm_sandbox::{GatewayPorts, Network, Policy, Stop};
use swarm_worker::wasm::WasmSpec;
use swarm_worker::{CommandSpec, Sandboxed};
use tokio::sync::watch;

use super::ctx::{Ctx, Rights};
use super::describe::{Verify, did_its_work};
use super::egress::Egress;
use super::handed::Handed;
use super::own_caches::task_caches;
use super::worker_files::trust_checkouts;
use crate::git::write_view;
use crate::layout::{log_paths, verify_log_paths};
use crate::plan::{AgentTask, Payload, Task, TaskNetwork, WasmTask};
use crate::untrusted::TaskDir;

/// The build caches of a `[setup]` with its own rights: setup's own
/// (`<home>/.cache/@setup/<tool>`), which no task is shown, so that nothing
/// a task planted in a cache runs with setup's network.
fn setups_caches_of(ctx: &Ctx) -> Vec<(String, PathBuf)> {
    ctx.caches
        .iter()
        .filter_map(|c| Some((c.var.clone(), c.setup_dir.clone()?)))
        .collect()
}

/// What one attempt did: how its command (or agent, or program) ended,
/// its `verify`, the agent's report and a variant's score.
#[derive(Debug)]
pub(crate) struct Ran {
    pub outcome: AttemptOutcome,
    pub verify: Option<Verify>,
    /// How long the verify command took, when it ran on its own.
    pub verify_time: Option<std::time::Duration>,
    pub agent: Option<AgentReport>,
    pub score: Option<swarm_protocol::experiment::Score>,
    /// Where its kept tmp is marked worth keeping (`mark_kept`), if it has
    /// one: by `conclude`, once every check of the attempt passed.
    pub kept_mark: Option<PathBuf>,
}

impl Ran {
    /// An attempt that could not start, and why.
    fn not_started(message: String) -> Self {
        Self {
            outcome: AttemptOutcome::SpawnFailed { message },
            verify: None,
            verify_time: None,
            agent: None,
            score: None,
            kept_mark: None,
        }
    }

    /// Whether the attempt did its work: it ran to success, its `verify`
    /// did not fail and an agent finished.
    pub(super) fn passed(&self) -> bool {
        did_its_work(&self.outcome, self.verify.as_ref(), self.agent.as_ref())
    }
}

/// The command (or the agent, or the WASM program), then `verify` if it
/// succeeded, within one deadline; then a variant's score. In steps: what
/// the attempt runs in is set up ([`Setup::make`]), what it may change is
/// handed to the sandbox's user ([`Setup::hand_over`]), it runs
/// ([`run_in`]), and what it changed is taken back.
#[expect(
    clippy::too_many_arguments,
    reason = "one attempt: the task, where it runs, its deck links and its stop"
)]
pub(crate) async fn run_attempt(
    ctx: &Ctx,
    task: &Task,
    attempt: u32,
    base: Oid,
    workdir: &std::path::Path,
    git_dir: &std::path::Path,
    deck: swarm_worker::Deck,
    stop: &mut watch::Receiver<Option<Stop>>,
    phase: Phase,
) -> Ran {
    // Whether the run's launcher is in the shared cgroup of unconfined
    // commands (it is moved in while the run's first tasks are set up). A
    // task with limits has a cgroup of its own and does not wait (if
    // making it fails, the command joins the shared one itself).
    let launcher_joined = match &ctx.unconfined {
        Some(shared) if !in_process(&task.payload) && !wants_cgroup(task) => {
            shared.holds_launcher().await
        }
        _ => false,
    };
    // Its kept TMPDIR, readied off the coordinator's thread (a walk of up
    // to `KEPT_TMP_LIMITS` entries, or its removal).
    let kept = match phase {
        Phase::Task => ready_kept_tmp(ctx, task, workdir).await,
        Phase::Setup(_) | Phase::Cleanup => None,
    };
    let made = Setup::make(
        ctx,
        task,
        attempt,
        base,
        (workdir, git_dir),
        launcher_joined,
        phase,
        kept,
    );
    let mut setup = match made {
        Ok(setup) => setup,
        Err(message) => return Ran::not_started(message),
    };
    // The executor gives deck links to command tasks only (see
    // `LocalExecutor::admit_on_deck`).
    if matches!(task.payload, Payload::Command { .. }) {
        setup.spec.deck = deck;
    }
    // What it was shown through idmapped copies: its files stay root's on
    // disk, so no take-back clears a privilege bit there. Given back at
    // the attempt's end, or after a hand-over that failed half way; the
    // bits cleared even if the attempt's future goes before (`handed`).
    let shown: Vec<PathBuf> = setup
        .spec
        .sandbox
        .as_ref()
        .map(|s| s.policy.idmapped.clone())
        .unwrap_or_default();
    let handed = Handed::new(
        task.id.to_string(),
        setup.owned.clone(),
        setup.tmp.path().to_path_buf(),
        shown,
    );
    if let Err(message) = setup.hand_over().await {
        handed.give_back().await;
        return Ran::not_started(message);
    }
    let Setup {
        spec,
        cgroup,
        kept_mark,
        egress,
        ..
    } = setup;
    // A worktree of its own (not a shared read-only checkout): what an
    // unconfined scorer's checkout is made from.
    let own = (task.isolation == Isolation::Worktree).then_some((base, git_dir));
    let ran = run_in(
        ctx,
        task,
        attempt,
        workdir,
        own,
        spec,
        cgroup.as_ref(),
        egress.as_ref(),
        stop,
    )
    .await;
    handed.give_back().await;
    // Marked by `conclude`, after its own checks (a refused subtask
    // request, files outside the task's paths fail the attempt too).
    let ran = Ran { kept_mark, ..ran };
    // What the task left outside its process group goes with it.
    drop(cgroup);
    ran
}

/// Which part of an attempt runs: the plan's `[setup]` (a command task
/// made of it, see `prepare`) or the task itself. Where its output and
/// tmp go differ, and a setup with its own rights has build caches of its
/// own (the task's could hold what a task planted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Setup(Rights),
    Task,
    /// The plan's `[cleanup]`, when swarm is done with the worktree.
    Cleanup,
}

/// Everything an attempt runs in, made before it starts.
struct Setup {
    /// The process to start: script, environment, logs, sandbox, limits.
    spec: CommandSpec,
    /// The attempt's own cgroup, for a task with limits.
    cgroup: Option<crate::run::cgroup::TaskCgroup>,
    /// What the sandbox's unprivileged user owns while the attempt runs
    /// (as root only).
    owned: Vec<PathBuf>,
    /// The phase's private tmp (and HOME), made fresh for it.
    tmp: TaskDir,
    /// Where its kept tmp is marked worth keeping, if it has one
    /// (`mark_kept`, once it passed every check).
    kept_mark: Option<PathBuf>,
    /// Its egress proxy, with a network list: logging beside the phase's
    /// output (`<attempt>.egress.log`, `<attempt>.setup.egress.log`).
    egress: Option<Arc<Egress>>,
}

impl Setup {
    /// Logs and tmp, environment, cgroup, git view, build caches and the
    /// sandbox policy of attempt `attempt` of `task`; the error says why
    /// it cannot start. `launcher_joined`: the run's shared cgroup holds
    /// the launcher, so its commands are born in it.
    #[expect(
        clippy::too_many_arguments,
        reason = "one attempt: the task, where it runs, and which of its phases"
    )]
    fn make(
        ctx: &Ctx,
        task: &Task,
        attempt: u32,
        base: Oid,
        (workdir, git_dir): (&std::path::Path, &std::path::Path),
        launcher_joined: bool,
        phase: Phase,
        kept: Option<(TaskDir, PathBuf)>,
    ) -> Result<Self, String> {
        let (stdout, stderr) = match phase {
            Phase::Task => log_paths(&ctx.run_dir, &task.id, attempt),
            Phase::Setup(_) => crate::layout::setup_log_paths(&ctx.run_dir, &task.id, attempt),
            Phase::Cleanup => crate::layout::cleanup_log_paths(&ctx.run_dir, &task.id, attempt),
        };
        // A command's logs are made when it first writes (most print
        // nothing, and each inode made per task is what a no-op task costs
        // on a disk); an agent's and a WASM program's directory holds more
        // than what they print.
        let logs = (task.kind() != swarm_protocol::TaskKind::Command)
            .then(|| stdout.parent())
            .flatten();
        if let Some(dir) = logs {
            #[allow(
                clippy::disallowed_methods,
                reason = "the task's logs, swarm's own directory"
            )]
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        // Made fresh for this phase of this attempt: whatever an earlier
        // phase, attempt or run left there (a link where swarm is about to
        // write a file for the task, an earlier attempt's subtask request)
        // is gone, so what swarm writes in it goes nowhere else.
        let tmp = make_tmp(&phase_tmp(ctx, task, phase))?;
        // A sandboxed task in its warm worktree keeps its TMPDIR between
        // runs (`kept`, see `ready_kept_tmp`); its HOME and swarm's files
        // for it stay in the fresh one. Setup and cleanup never see it.
        let (kept, kept_mark) = kept.unzip();
        let tmpdir = kept.as_ref().map_or(tmp.path(), TaskDir::path);
        let mut env = attempt_env(ctx, task, attempt, base, tmp.path(), tmpdir);
        let cgroup = task_cgroup(ctx, task, attempt);
        let mut sandbox = match &ctx.sandbox {
            None => None,
            Some(settings) => {
                let confined = Confined {
                    task,
                    workdir,
                    git_dir,
                    tmp: tmp.path(),
                    kept_tmp: kept.as_ref().map(TaskDir::path),
                    own_cgroup: cgroup.is_some(),
                    setups_caches: phase == Phase::Setup(Rights::Setup),
                };
                Some(confined.sandbox(ctx, settings, &mut env)?)
            }
        };
        if task.isolation == Isolation::Readonly
            && !env.iter().any(|(k, _)| k == "CARGO_TARGET_DIR")
        {
            // A read-only checkout cannot hold build output: cargo writes
            // `target/` beside Cargo.toml unless told otherwise. Its build
            // cache (kept across runs, as a writing task's) when it has
            // one, else its private tmp. The task's own `env` (added
            // below) still wins.
            env.push((
                "CARGO_TARGET_DIR".into(),
                tmp.join("target").display().to_string(),
            ));
        }
        let answers = write_task_files(ctx, task, &tmp, &mut env)?;
        env.extend(task.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        // Its dependencies' answers, where it names them: in variables
        // its command references (after the task's own `env`, which cannot
        // stand for them).
        let script = match &task.payload {
            Payload::Command { run } => {
                let filled = crate::output_schema::fill(run, &answers)
                    .map_err(|e| format!("fill in its command: {e}"))?;
                env.extend(filled.env);
                filled.script
            }
            // A WASM program runs in swarm's process; `agent::run` sets
            // the program (the agent) in place of a script.
            Payload::Wasm(_) | Payload::Agent(_) => String::new(),
        };
        // As root, workers run as an unprivileged user, which must own what
        // they may change, and only while they run. Its worktree is shown
        // to it through an idmapped copy instead where the file system
        // takes one (no `chown` of every file, twice, and every ctime left
        // as it was: see `swarm_sandbox::idmap`).
        let owned: Vec<PathBuf> = match (&mut sandbox, swarm_sandbox::worker_identity()) {
            (Some(sandboxed), Some(_)) => {
                let handed =
                    task.isolation == Isolation::Worktree && !show_idmapped(sandboxed, workdir);
                std::iter::once(tmp.path().to_path_buf())
                    .chain(handed.then(|| workdir.to_path_buf()))
                    .collect()
            }
            _ => Vec::new(),
        };
        // An unconfined command without a cgroup of its own joins the run's:
        // when the coordinator dies, its launcher kills everything in it.
        // (`Ctx::unconfined` exists only for unsandboxed runs.)
        let shared = ctx
            .unconfined
            .as_ref()
            .filter(|_| !in_process(&task.payload));
        let spec = CommandSpec {
            script,
            program: None,
            pass_fds: Vec::new(),
            inherit_env: true,
            env_remove: ctx.secret_vars.clone(),
            cwd: workdir.to_path_buf(),
            env,
            stdout,
            stderr,
            deadline: deadline(task),
            grace: ctx.grace,
            max_output: task.max_output,
            // The person's included files never reach a log.
            redact: ctx.included.redact.clone(),
            sandbox,
            unconfined: ctx.unconfined_launcher.clone(),
            deck: swarm_worker::Deck::default(),
            // The shared cgroup holds the launcher (when it could move it
            // in), and so every command it starts from birth.
            cgroups: match (&cgroup, shared) {
                (Some(own), _) => own.fds(),
                (None, Some(shared)) if !launcher_joined => shared.fds(),
                _ => Vec::new(),
            },
            cgroup_procs: cgroup.as_ref().or(shared).map(|c| c.members()),
            stall: stall(task, phase, cgroup.as_ref()),
        };
        let egress = egress(ctx, task, attempt, phase);
        Ok(Self {
            spec,
            cgroup,
            owned,
            tmp,
            kept_mark,
            egress,
        })
    }

    /// Hands what the attempt may change to the sandbox's user (as root).
    async fn hand_over(&self) -> Result<(), String> {
        if self.owned.is_empty() {
            return Ok(());
        }
        // The view of the git directory stays root's (read-only to the task
        // anyway): the task's own global configuration (HOME is its tmp)
        // trusts it.
        trust_checkouts(&self.tmp).map_err(|e| format!("write {e}"))?;
        // The tmp is new and holds a file or two: handed over here,
        // without a hop to a blocking thread and back for each task. A
        // worktree is a walk of a tree.
        let mut rest = self.owned.clone();
        rest.retain(|p| p != self.tmp.path());
        swarm_sandbox::ownership::hand_over(self.tmp.path(), swarm_sandbox::SANDBOX_IDENTITY)
            .map_err(|e| format!("failed to {e}"))?;
        hand_over(rest).await
    }
}

/// Marks the paths of `sandboxed`'s policy that it may change within
/// `workdir` to be shown through idmapped copies, if its launcher can
/// make them there; whether it did (else `workdir` is handed over).
fn show_idmapped(sandboxed: &mut swarm_worker::Sandboxed, workdir: &std::path::Path) -> bool {
    // One an attempt left handed over, or half taken back (a coordinator
    // killed mid-task, an older swarm), holds files the copy would show as
    // no one's: handed over and taken back once more, which makes them
    // root's again (a walk takes its top back last).
    if !swarm_sandbox::ownership::top_is_ours(workdir) {
        return false;
    }
    let policy = &sandboxed.policy;
    // What it may change in the worktree, but where an overlay is shown
    // instead (its layers are handed over).
    let shown: Vec<PathBuf> = policy
        .read_write
        .iter()
        .filter(|path| path.starts_with(workdir))
        .filter(|path| !policy.overlays.iter().any(|o| &o.target == *path))
        .cloned()
        .collect();
    // Each a file descriptor of the start request, beside its own: a task
    // of many `paths` is handed over as before. Every path on a file
    // system that takes a copy (tried once each a run).
    if shown.is_empty()
        || shown.len() > MOST_IDMAPPED
        || !shown.iter().all(|p| sandboxed.launcher.idmaps(p))
    {
        return false;
    }
    sandboxed.policy.idmapped = shown;
    true
}

/// The most paths a start shows through idmapped copies (a file descriptor
/// each, among the launcher's `MAX_FDS` with its stdio and cgroups).
const MOST_IDMAPPED: usize = 6;

/// Where `phase` of `task` has its private tmp (and HOME): the task's
/// own, or one apart for its `[setup]` and its `[cleanup]`, so that no
/// phase runs in what another left.
fn phase_tmp(ctx: &Ctx, task: &Task, phase: Phase) -> PathBuf {
    match phase {
        Phase::Task => crate::layout::task_tmp(&ctx.run_dir, &task.id),
        Phase::Setup(_) => crate::layout::setup_tmp(&ctx.run_dir, &task.id),
        Phase::Cleanup => crate::layout::cleanup_tmp(&ctx.run_dir, &task.id),
    }
}

/// Makes a phase's private tmp (its HOME too) anew at `path`: an earlier
/// attempt's (its subtask request, links it planted) goes with it.
fn make_tmp(path: &std::path::Path) -> Result<TaskDir, String> {
    match TaskDir::fresh(path, 0o700) {
        Ok(dir) => Ok(dir),
        // The run's `tmp/` itself is missing (a node's job directory, a
        // run made before it was): swarm's own, made, then tried again.
        Err(e) if e.is_missing() => {
            if let Some(parent) = path.parent() {
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the run's own tmp/, swarm's: no task writes there"
                )]
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("create {}: {e}", parent.display()))?;
            }
            TaskDir::fresh(path, 0o700).map_err(|e| format!("make {e}"))
        }
        Err(e) => Err(format!("make {e}")),
    }
}

/// Says the kept tmp whose mark is `mark` is worth keeping: its attempt
/// passed, every check of it included. Only then does the next attempt find it as it was; after a
/// failure (a retry, a timeout, a coordinator killed mid-attempt) the next
/// starts with an empty one, as a fresh tmp would, so that nothing a
/// failed attempt half wrote there (a cache cut off mid-write) fails the
/// next one again.
pub(super) fn mark_kept(mark: &std::path::Path) {
    #[allow(
        clippy::disallowed_methods,
        reason = "`<home>/.warm/.tmp-kept`, swarm's: no task writes there"
    )]
    let made = mark
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::File::create(mark).map(drop));
    if let Err(e) = made {
        tracing::warn!(mark = %mark.display(), error = %e, "failed to mark a kept tmp; the next attempt starts with an empty one");
    }
}

/// How much a kept tmp may hold before an attempt: what tools cache there
/// (jest: a few MB a project) with room to spare, not what a run after run
/// of leaked temporary files adds up to.
const KEPT_TMP_LIMITS: crate::untrusted::TreeLimits = crate::untrusted::TreeLimits {
    depth: 64,
    entries: 100_000,
    bytes: 1 << 30,
};

/// Why the kept tmp `dir` cannot be kept as it is, if it cannot: tools
/// that leave files in TMPDIR would fill it run after run, so past its
/// limits (or unmeasured) it starts again empty, as a fresh tmp would;
/// and the plan's `$TMPDIR/` test report `report` an earlier run left is
/// removed here (as what it is), a link on the way to it making the whole
/// tmp go instead, nothing followed.
fn not_kept(dir: &TaskDir, report: Option<&str>) -> Option<String> {
    match dir.within(KEPT_TMP_LIMITS) {
        Ok(true) => {}
        Ok(false) => return Some("it holds more than 1 GiB or 100,000 entries".into()),
        Err(e) => return Some(format!("failed to measure it: {e}")),
    }
    let e = dir.remove(report?).err()?;
    Some(format!("failed to clear the test report it holds: {e}"))
}

/// The task's kept tmp and its mark ([`kept_tmp`]), readied on a blocking
/// thread; one that cannot be made or emptied (a tree too deep to remove)
/// is left for `swarm clean --warm`: the attempt runs in its fresh tmp
/// instead, never kept from starting.
async fn ready_kept_tmp(
    ctx: &Ctx,
    task: &Task,
    workdir: &std::path::Path,
) -> Option<(TaskDir, PathBuf)> {
    let (path, mark) = ctx.kept_tmp_paths(task, workdir)?;
    let report = task
        .junit
        .as_deref()
        .and_then(|j| j.strip_prefix("$TMPDIR/"))
        .map(str::to_owned);
    let id = task.id.clone();
    let readied = tokio::task::spawn_blocking(move || kept_tmp(&id, path, mark, report.as_deref()))
        .await
        .map_err(|e| format!("ready it: {e}"))
        .and_then(|r| r);
    match readied {
        Ok(kept) => Some(kept),
        Err(e) => {
            tracing::warn!(task = %task.id, error = %e, "failed to ready its kept tmp; it runs in a fresh one");
            None
        }
    }
}

/// Task `task`'s kept tmp at `path` (its mark `mark`), made if it is new
/// and the sandbox's user's (as root); a test report at the plan's
/// `$TMPDIR/...` path (`report`, relative to it) that an earlier run left
/// is removed (as what it is, a link never followed), so that only this
/// attempt's can be read.
fn kept_tmp(
    task: &str,
    path: PathBuf,
    mark: PathBuf,
    report: Option<&str>,
) -> Result<(TaskDir, PathBuf), String> {
    if let Some(parent) = path.parent() {
        #[allow(
            clippy::disallowed_methods,
            reason = "`<home>/.warm/.tmp`, swarm's: a task writes only inside its own tmp there"
        )]
        std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    }
    // Kept only after an attempt that passed (`mark_kept`): the mark goes
    // now, and comes back only if this attempt passes too.
    #[allow(
        clippy::disallowed_methods,
        reason = "`<home>/.warm/.tmp-kept`, swarm's: no task writes there"
    )]
    let passed = std::fs::remove_file(&mark).is_ok();
    let mut dir = match passed {
        true => TaskDir::open_or_make(&path, 0o700),
        false => TaskDir::fresh(&path, 0o700),
    }
    .map_err(|e| format!("make {e}"))?;
    if passed && let Some(why) = not_kept(&dir, report) {
        tracing::warn!(%task, path = %path.display(), reason = %why, "its kept tmp is made anew");
        dir = TaskDir::fresh(&path, 0o700).map_err(|e| format!("make {e}"))?;
    }
    if let Some(identity) = swarm_sandbox::worker_identity() {
        dir.hand_to(identity)
            .map_err(|e| format!("hand over {e}"))?;
    }
    Ok((dir, mark))
}

/// The files swarm writes in the task's `tmp` for it, each named by a
/// variable of `env`: the answers of the dependencies that gave one
/// (`output_schema`), by id, returned for its command to be filled in
/// with; a shard's entries, one per line.
fn write_task_files(
    ctx: &Ctx,
    task: &Task,
    tmp: &TaskDir,
    env: &mut Vec<(String, String)>,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    // The answers of the dependencies that gave one (`output_schema`),
    // by id, in a file of the task's tmp.
    let answers: serde_json::Map<String, serde_json::Value> = task
        .deps
        .iter()
        .filter_map(|dep| {
            #[allow(
                clippy::disallowed_methods,
                reason = "a dependency's answer as swarm kept it in the run's directory"
            )]
            let text =
                std::fs::read_to_string(crate::layout::output_path(&ctx.run_dir, dep)).ok()?;
            Some((dep.clone(), serde_json::from_str(&text).ok()?))
        })
        .collect();
    if !answers.is_empty() {
        let text = serde_json::Value::Object(answers.clone()).to_string();
        let file = tmp
            .write_new("deps-output.json", text.as_bytes(), 0o644)
            .map_err(|e| format!("write {e}"))?;
        env.push(("SWARM_DEPS_OUTPUT".into(), file.display().to_string()));
    }
    // A shard's entries, one per line, in a file of its tmp.
    if let Some(crate::plan::shards::Sharding::Shard { entries, .. }) = task.sharding.as_deref() {
        let mut text = entries.join("\n");
        text.push('\n');
        let file = tmp
            .write_new("swarm-entries.txt", text.as_bytes(), 0o644)
            .map_err(|e| format!("write {e}"))?;
        env.push(("SWARM_ENTRIES".into(), file.display().to_string()));
    }
    Ok(answers)
}

/// The egress proxy of `phase` of attempt `attempt`, for a task with a
/// network list: logging beside the phase's output.
fn egress(ctx: &Ctx, task: &Task, attempt: u32, phase: Phase) -> Option<Arc<Egress>> {
    task.network.hosts().map(|hosts| {
        let (whose, log) = match phase {
            Phase::Task => (
                format!("task `{}`", task.id),
                crate::layout::egress_log_path(&ctx.run_dir, &task.id, attempt),
            ),
            Phase::Setup(_) => (
                format!("the [setup] of task `{}`", task.id),
                crate::layout::setup_egress_log_path(&ctx.run_dir, &task.id, attempt),
            ),
            Phase::Cleanup => (
                format!("the [cleanup] of task `{}`", task.id),
                crate::layout::cleanup_egress_log_path(&ctx.run_dir, &task.id, attempt),
            ),
        };
        Arc::new(Egress::new(&whose, hosts.clone(), log).via(ctx.egress_via.clone()))
    })
}

/// The variables swarm gives every attempt (the sandbox's and the task's
/// own come after).
fn attempt_env(
    ctx: &Ctx,
    task: &Task,
    attempt: u32,
    base: Oid,
    tmp: &std::path::Path,
    tmpdir: &std::path::Path,
) -> Vec<(String, String)> {
    vec![
        ("SWARM_RUN".into(), ctx.run.clone()),
        ("SWARM_TASK".into(), task.id.clone()),
        ("SWARM_ATTEMPT".into(), attempt.to_string()),
        ("SWARM_BASE".into(), base.to_string()),
        ("TMPDIR".into(), tmpdir.display().to_string()),
        // Where a command may ask for subtasks (see `run::spawn`).
        (
            crate::run::spawn::REQUEST_VAR.into(),
            tmp.join(crate::run::spawn::REQUEST_FILE)
                .display()
                .to_string(),
        ),
    ]
}

/// The stall watch of `phase` of `task`, if it has a `stall_after`: the
/// task's own command only (setup and cleanup have their timeouts), its
/// CPU time read from its own `cgroup`. Without one there is no CPU time
/// to read, and no stall is ever declared (never on a guess).
fn stall(
    task: &Task,
    phase: Phase,
    cgroup: Option<&crate::run::cgroup::TaskCgroup>,
) -> Option<swarm_worker::Stall> {
    let after = task.stall_after.filter(|_| phase == Phase::Task)?;
    let cpu: std::sync::Arc<dyn Fn() -> Option<u64> + Send + Sync> = match cgroup {
        Some(cgroup) => std::sync::Arc::new(cgroup.cpu_reader()),
        None => {
            tracing::debug!(task = %task.id, "no cgroup of its own to read its CPU time: `stall_after` is not enforced");
            std::sync::Arc::new(|| None)
        }
    };
    Some(swarm_worker::Stall {
        after,
        cpu,
        activity: Default::default(),
    })
}

/// Whether an attempt of `task` gets a cgroup of its own (where the
/// machine gives cgroups): it sets limits, or has a stall watch, which
/// reads its CPU time there.
pub(crate) fn wants_cgroup(task: &Task) -> bool {
    task.memory.is_some() || task.processes.is_some() || task.stall_after.is_some()
}

/// The attempt's own cgroup, for a task that asks for limits: making and
/// removing one costs about a millisecond in the kernel, which doubled the
/// cost of a no-op task. Unconfined tasks without limits share the run's
/// (`Ctx::unconfined`), which holds whatever they start.
fn task_cgroup(ctx: &Ctx, task: &Task, attempt: u32) -> Option<crate::run::cgroup::TaskCgroup> {
    match &ctx.cgroups {
        Some(cgroups) if wants_cgroup(task) && !in_process(&task.payload) => {
            let processes = Some(
                task.processes
                    .unwrap_or(swarm_sandbox::Limits::default().processes),
            );
            let name = format!("{}-{attempt}", crate::ids::flat(&task.id));
            cgroups
                .task(&name, task.memory, processes)
                .map_err(|e| tracing::warn!(task = %task.id, error = %e, "failed to create the task's cgroup; it runs under rlimits only"))
                .ok()
        }
        _ => None,
    }
}

/// The view of the git directory of the read-only checkout recorded at
/// `admin`, which every read-only task on it is shown: written by the
/// first such task of the run, then shared. Sharing it gives nothing away
/// between tasks: it is the same for each (the checkout is too), and a
/// view is read-only to the task. A failure is not remembered: the next
/// attempt writes it again.
fn readonly_view(ctx: &Ctx, admin: &std::path::Path) -> Result<Vec<swarm_sandbox::View>, String> {
    // Poisoned only by a panic while writing one, which left no entry.
    let mut views = ctx
        .readonly_views
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(made) = views.get(admin) {
        return Ok(made.clone());
    }
    let dir = crate::layout::readonly_git_view(&ctx.run_dir, admin);
    let made = write_view(&ctx.repo, &dir, admin).map_err(|e| e.to_string())?;
    views.insert(admin.to_path_buf(), made.clone());
    Ok(made)
}

/// What a sandboxed attempt's policy is made from.
struct Confined<'a> {
    task: &'a Task,
    workdir: &'a std::path::Path,
    git_dir: &'a std::path::Path,
    tmp: &'a std::path::Path,
    /// The task's `TMPDIR` kept with its warm worktree (`kept_tmp`).
    kept_tmp: Option<&'a std::path::Path>,
    /// Whether the attempt has a cgroup of its own (which then holds its
    /// memory limit).
    own_cgroup: bool,
    /// A `[setup]` with its own rights: build caches of setup's own, never
    /// the tasks'.
    setups_caches: bool,
}

impl Confined<'_> {
    /// The sandbox of the attempt (its git view and build caches made),
    /// the variables it needs added to `env`.
    fn sandbox(
        &self,
        ctx: &Ctx,
        settings: &crate::run::options::SandboxSettings,
        env: &mut Vec<(String, String)>,
    ) -> Result<Sandboxed, String> {
        let Self {
            task,
            workdir,
            git_dir,
            tmp,
            kept_tmp,
            own_cgroup,
            setups_caches,
        } = *self;
        // A WASM guest runs in swarm's process: this policy is not its, and
        // nothing is made for it.
        let in_process = in_process(&task.payload);
        // Git commands in the worktree see a view of the git directory:
        // its objects and the task's own records, not the repository's
        // configuration or other tasks' refs (see `git::view`).
        let views = match (in_process, task.isolation) {
            (true, _) => Vec::new(),
            (false, Isolation::Readonly) => readonly_view(ctx, git_dir)?,
            (false, Isolation::Worktree) => {
                let dir = crate::layout::git_view(&ctx.run_dir, &task.id);
                write_view(&ctx.repo, &dir, git_dir).map_err(|e| e.to_string())?
            }
        };
        let caches = match (in_process, setups_caches) {
            (true, _) => Vec::new(),
            (false, true) => setups_caches_of(ctx),
            (false, false) => task_caches(ctx, task)?,
        };
        // Writable: the worktree (for a task with `paths` or `creates`,
        // only those, see `owned_paths::writable`: the rest of the worktree
        // is read-only to it) and the private tmp. Readable: the git view
        // (git commands in the worktree need it) and a shared read-only
        // checkout. Nothing else of the repository. The worktree's `.git`
        // link is read-only: a task cannot point git elsewhere for whoever
        // inspects the worktree later.
        let mut read_write = vec![tmp.to_path_buf()];
        read_write.extend(kept_tmp.map(std::path::Path::to_path_buf));
        read_write.extend(caches.iter().map(|(_, dir)| dir.clone()));
        let mut read_only = ctx.read_paths.clone();
        let owned = task.owned().filter(|_| !in_process);
        let restricted = owned.is_some();
        match (task.isolation, owned) {
            (Isolation::Worktree, None) => {
                read_write.push(workdir.to_path_buf());
                read_only.push(workdir.join(".git"));
            }
            (Isolation::Worktree, Some(owned)) => {
                read_only.push(workdir.to_path_buf());
                read_only.push(workdir.join(".git"));
                read_write.extend(super::owned_paths::writable(workdir, &owned));
                // Cargo writes `target/` beside Cargo.toml, which the task
                // may not write now: its private tmp instead, unless a
                // build cache gives it a target directory (added below).
                // The task's own `env` still wins.
                if !caches.iter().any(|(var, _)| var == "CARGO_TARGET_DIR") {
                    env.push((
                        "CARGO_TARGET_DIR".into(),
                        tmp.join("target").display().to_string(),
                    ));
                }
            }
            (Isolation::Readonly, _) => read_only.push(workdir.to_path_buf()),
        }
        env.extend(settings.env.iter().cloned());
        env.extend(
            caches
                .iter()
                .map(|(var, dir)| (var.clone(), dir.display().to_string())),
        );
        env.push(("HOME".into(), tmp.display().to_string()));
        // A kept setup's directories shown as overlays (`layers`): the
        // task's own layer, which it may write even where the rest of the
        // worktree is read-only to it (an ignored directory: in no result).
        let overlays = match (in_process, task.isolation, &ctx.setups) {
            (false, Isolation::Worktree, Some(setups)) => setups.layers.of(workdir),
            _ => Vec::new(),
        };
        if restricted {
            read_write.extend(overlays.iter().map(|o| o.target.clone()));
        }
        let mut policy = Policy::for_worker(read_write, read_only);
        policy.views = views;
        policy.overlays = overlays;
        // The toolchains and the shared build caches are every task's
        // alike: the launcher resolves them once a run.
        policy.run_wide = ctx.read_paths.clone();
        if !setups_caches {
            let shared = |var: &String| {
                ctx.caches
                    .iter()
                    .any(|c| c.var == *var && c.records.is_none())
            };
            policy.run_wide.extend(
                caches
                    .iter()
                    .filter(|(var, _)| shared(var))
                    .map(|(_, dir)| dir.clone()),
            );
        }
        // So is a read-only checkout and the view read-only tasks share of
        // its git directory: each made once and unchanged while the run
        // lasts, so resolved once too.
        if task.isolation == Isolation::Readonly {
            policy.run_wide.push(workdir.to_path_buf());
            policy
                .run_wide
                .extend(policy.views.iter().map(|v| v.source.clone()));
        }
        policy.network = match task.network {
            TaskNetwork::None => Network::None,
            TaskNetwork::Full => Network::Full,
            // Its one way out: the egress proxy, which each command of the
            // attempt is served (`egress::run_command`), its listener handed
            // over then.
            TaskNetwork::Hosts(_) => Network::Gateway {
                ports: GatewayPorts::one(super::egress::PROXY_PORT),
            },
        };
        // With a cgroup, `memory` limits the task as a whole; without one,
        // each of its processes.
        if let Some(memory) = task.memory.filter(|_| !own_cgroup) {
            policy.limits.address_space = memory;
        }
        if let Some(processes) = task.processes {
            policy.limits.processes = processes;
        }
        Ok(Sandboxed {
            launcher: settings.launcher.clone(),
            policy,
        })
    }
}

/// Runs the attempt's payload as `spec` says, then its verify, then a
/// variant's score; a kill for memory (counted by `cgroup`) fails it
/// whatever its exit looked like.
#[expect(
    clippy::too_many_arguments,
    reason = "one attempt's run: the task, where (and its own worktree), its spec, cgroup, egress and stop"
)]
async fn run_in(
    ctx: &Ctx,
    task: &Task,
    attempt: u32,
    workdir: &std::path::Path,
    own: Option<(Oid, &std::path::Path)>,
    spec: CommandSpec,
    cgroup: Option<&crate::run::cgroup::TaskCgroup>,
    egress: Option<&Arc<Egress>>,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Ran {
    let score_with = task
        .variant()
        .and_then(|v| v.score.clone())
        .map(|score| (score, spec.clone()));
    let (outcome, verify, agent, verify_time) = match &task.payload {
        Payload::Wasm(wasm) => {
            let (env, out, err) = (spec.env.clone(), spec.stdout.clone(), spec.stderr.clone());
            // Boxed, like the agents below: a running task's future is as
            // large as its largest branch, and many command tasks run (or
            // wait on deck) at once; these are kilobytes each.
            let outcome = Box::pin(run_wasm(ctx, task, wasm, workdir, env, out, err, stop)).await;
            (outcome, None, None, None)
        }
        Payload::Command { .. } => {
            command_or_agent(ctx, task, None, attempt, spec, cgroup, egress, stop).await
        }
        Payload::Agent(agent) => {
            command_or_agent(ctx, task, Some(agent), attempt, spec, cgroup, egress, stop).await
        }
    };
    let mut ran = Ran {
        outcome,
        verify,
        verify_time,
        agent,
        score: None,
        kept_mark: None,
    };
    // A task the kernel killed a process of for its memory limit failed
    // for that reason, whatever its shell made of the kill (137, or 0 from
    // a shell that went on): decided by the cgroup's count of OOM kills,
    // read once nothing of the command and its verify is left (so that a
    // kill still on its way is counted), never by how the exit looked. A
    // kill during its verify is the verify's (`command_or_agent` counted
    // the command's before the verify began).
    let oom_kills = cgroup.map(|c| {
        c.empty();
        c.oom_kills()
    });
    let oom = oom_kills.is_some_and(|n| n > 0)
        && !ended_by_swarm(&ran.outcome)
        && !matches!(
            ran.verify,
            Some(Verify::Failed(Some(AttemptOutcome::OutOfMemory { .. })))
        );
    if oom {
        return Ran {
            outcome: AttemptOutcome::OutOfMemory { limit: task.memory },
            verify: None,
            score: None,
            ..ran
        };
    }
    if let Some((score, spec)) = score_with
        && ran.passed()
        && stop.borrow().is_none()
    {
        let mut scored = Box::pin(super::score::run(
            ctx, task, attempt, workdir, own, &score, spec, stop,
        ))
        .await;
        // The score runs in the task's cgroup: a kill for memory there
        // fails the score, even if its shell printed a number after.
        if let Some(c) = cgroup {
            c.empty();
            if c.oom_kills() > oom_kills.unwrap_or(0) {
                scored.value = None;
                scored.error = Some(
                    super::describe::describe_failure(
                        &AttemptOutcome::OutOfMemory { limit: task.memory },
                        None,
                        task,
                        &ctx.run,
                        attempt,
                        None,
                    )
                    .replacen("killed", "score was killed", 1),
                );
            }
        }
        ran.score = Some(scored);
    }
    ran
}

/// Whether swarm ended the attempt itself (its deadline, a stall, a
/// cancel): a kill for memory on the way does not change that account.
fn ended_by_swarm(outcome: &AttemptOutcome) -> bool {
    matches!(
        outcome,
        AttemptOutcome::Cancelled | AttemptOutcome::TimedOut | AttemptOutcome::Stalled { .. }
    )
}

/// Hands `paths` to the sandbox's unprivileged user, off the async
/// threads (a walk of the whole worktree); [`Handed`] gives them back.
async fn hand_over(paths: Vec<PathBuf>) -> Result<(), String> {
    if paths.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || {
        paths.iter().try_for_each(|p| {
            swarm_sandbox::ownership::hand_over(p, swarm_sandbox::SANDBOX_IDENTITY)
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("failed to {e}"))
}

/// The agent (`agent`, the task's payload if it is an agent task), or the
/// command and then `verify`, whose output goes to logs of its own
/// (`<attempt>.verify.out|.err`).
#[expect(
    clippy::too_many_arguments,
    reason = "one attempt's payload: the task, its agent, its spec and cgroup (whose kills before the verify are the command's), egress and stop"
)]
async fn command_or_agent(
    ctx: &Ctx,
    task: &Task,
    agent: Option<&AgentTask>,
    attempt: u32,
    mut spec: CommandSpec,
    cgroup: Option<&crate::run::cgroup::TaskCgroup>,
    egress: Option<&Arc<Egress>>,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> (
    AttemptOutcome,
    Option<Verify>,
    Option<AgentReport>,
    Option<std::time::Duration>,
) {
    if let Some(agent) = agent {
        let done = match &agent.cli {
            None => {
                Box::pin(super::agent_task::run(
                    ctx, task, agent, attempt, spec, stop,
                ))
                .await
            }
            Some(name) => match ctx.agent_clis.get(name) {
                Some(cli) => {
                    Box::pin(super::cli_agent::run(
                        ctx, task, agent, cli, attempt, spec, stop,
                    ))
                    .await
                }
                None => super::agent_task::AgentAttempt {
                    outcome: AttemptOutcome::SpawnFailed {
                        message: format!(
                            "run agent `{name}`: its program was not found when the run started"
                        ),
                    },
                    verify_passed: None,
                    report: None,
                },
            },
        };
        // Its answer, for dependents (`$SWARM_DEPS_OUTPUT`).
        if let Some(output) = done.report.as_ref().and_then(|r| r.output.as_ref()) {
            let path = crate::layout::output_path(&ctx.run_dir, &task.id);
            #[allow(
                clippy::disallowed_methods,
                reason = "the run's directory, swarm's own"
            )]
            let written = std::fs::write(&path, output.to_string());
            if let Err(e) = written {
                tracing::warn!(task = %task.id, path = %path.display(), error = %e, "failed to keep the task's answer for its dependents");
            }
        }
        let verify = done.verify_passed.map(|passed| match passed {
            true => Verify::Passed,
            false => Verify::Failed(None),
        });
        return (done.outcome, verify, done.report, None);
    }
    let outcome = super::egress::run_command(&spec, egress, stop).await;
    let Some(verify) = task.verify.as_ref().filter(|_| outcome.is_success()) else {
        return (outcome, None, None, None);
    };
    // A kill for memory so far is the command's own: counted now, before
    // its verify can add one (the command has ended, so the kernel has
    // counted every kill of it; `run_in` reads the count again at the end,
    // and says a command without a verify killed so). Without the PID
    // namespace a process the command left running is not ended first: a
    // kill of it during the verify counts as the verify's, which fails the
    // attempt all the same.
    let killed_before = cgroup.map_or(0, |c| c.oom_kills());
    if killed_before > 0 {
        let outcome = AttemptOutcome::OutOfMemory { limit: task.memory };
        return (outcome, None, None, None);
    }
    spec.script = verify.clone();
    // The deck was the command's: verify starts at once, in its place.
    spec.deck = swarm_worker::Deck::default();
    (spec.stdout, spec.stderr) = verify_log_paths(&ctx.run_dir, &task.id, attempt);
    let started = std::time::Instant::now();
    let verified = super::egress::run_command(&spec, egress, stop).await;
    let took = Some(started.elapsed());
    // Killed for memory while it verified: the verify's end, said as such
    // (its shell may have gone on and exited 0). What is left of it ends
    // first, so that a kill still on its way is counted.
    let verify_killed = match cgroup {
        Some(c) if !ended_by_swarm(&verified) => {
            c.empty();
            c.oom_kills() > killed_before
        }
        _ => false,
    };
    let verified = match verify_killed {
        true => AttemptOutcome::OutOfMemory { limit: task.memory },
        false => verified,
    };
    match verified {
        AttemptOutcome::Exited { code: 0 } => (outcome, Some(Verify::Passed), None, took),
        AttemptOutcome::Exited { .. }
        | AttemptOutcome::Signaled { .. }
        | AttemptOutcome::Trapped { .. }
        | AttemptOutcome::OutOfMemory { .. }
        | AttemptOutcome::SpawnFailed { .. } => {
            (outcome, Some(Verify::Failed(Some(verified))), None, took)
        }
        // A timeout or cancel during verify is the attempt's outcome.
        other => (other, None, None, took),
    }
}

/// A WASM task's attempt. The guest's environment is swarm's variables and
/// the task's own, nothing of the coordinator's; it sees the worktree as
/// `.` and the plan's `read_paths` directories, read-only (with or without
/// the kernel sandbox).
#[expect(
    clippy::too_many_arguments,
    reason = "one WASM attempt, unpacked from the task and its context"
)]
async fn run_wasm(
    ctx: &Ctx,
    task: &Task,
    wasm: &WasmTask,
    workdir: &std::path::Path,
    mut env: Vec<(String, String)>,
    stdout: PathBuf,
    stderr: PathBuf,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> AttemptOutcome {
    let Some(engine) = &ctx.wasm else {
        return AttemptOutcome::SpawnFailed {
            message: "run a WASM task: the run has no WASM engine".into(),
        };
    };
    // The guest may write anywhere in the worktree: a WASI preopen cannot
    // simply express nested permissions, so a task's `paths` and `creates`
    // hold for it through the result check alone (`ownership`), as they
    // do for unsandboxed commands.
    // TMPDIR names a host path the guest cannot see.
    env.retain(|(k, _)| k.starts_with("SWARM_"));
    env.extend(task.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let read_only = ctx
        .read_paths
        .iter()
        .filter(|p| p.is_dir())
        .cloned()
        .collect();
    let spec = WasmSpec {
        module: wasm.module.clone(),
        args: wasm.args.clone(),
        env,
        dir: workdir.to_path_buf(),
        read_only,
        stdout,
        stderr,
        max_output: task.max_output,
        redact: ctx.included.redact.clone(),
        deadline: deadline(task),
        memory: task.memory.unwrap_or(DEFAULT_WASM_MEMORY),
        fuel: wasm.fuel,
        grace: ctx.grace,
    };
    engine.run(&spec, stop).await
}

/// When an attempt of `task` that starts now must end: its `timeout`
/// from now, or its subtree's deadline (a subtask's parent's) if sooner.
pub(crate) fn deadline(task: &Task) -> Option<tokio::time::Instant> {
    let now = tokio::time::Instant::now();
    let own = task.timeout.map(|t| now + t);
    let subtree = task.not_after.map(|at| {
        now + at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
    });
    match (own, subtree) {
        (Some(own), Some(subtree)) => Some(own.min(subtree)),
        (own, subtree) => own.or(subtree),
    }
}

/// True for a payload that runs inside swarm's own process (a WASM guest
/// under wasmtime, confined by WASI): the cgroup, git view and build caches
/// of a sandboxed process are not for it.
pub(crate) fn in_process(payload: &Payload) -> bool {
    match payload {
        Payload::Wasm(_) => true,
        Payload::Command { .. } | Payload::Agent(_) => false,
    }
}

/// A WASM guest's memory when the plan does not say: all a 32-bit guest
/// can address.
const DEFAULT_WASM_MEMORY: u64 = 4 << 30;
