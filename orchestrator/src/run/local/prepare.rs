//! `[setup]`: a fresh worktree made ready before its task runs, once per
//! key.
//!
//! Setup runs as a command task made of the task (its sandbox, its `env`
//! and limits, with setup's own `network`, `timeout` and variables, and
//! the whole worktree to write), logging to `<attempt>.setup.out|.err`.
//! With a `key`, its outputs are kept in the worktree home
//! (`<home>/.setup/<key>/`, see [`super::prepare_files`]) and the next
//! worktree whose key files hold the same content gets a copy instead of
//! running it: tasks of one run with the same key wait for the first one's
//! setup rather than run it beside it, and a later run reuses it too.
//!
//! `[cleanup]` ([`clean_up`]) runs the same way when swarm is done with a
//! worktree (after an attempt's result is taken): its changes are in no
//! result, and its failure is a warning in the task's log.
//!
//! The worktree's content once setup is done is recorded as a tree
//! ([`crate::git::state`]): the task's snapshot leaves out whatever of it
//! the task did not change (`git::leave_out`), so setup's files are never
//! committed with a result.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use git2::Oid;
use swarm_protocol::{AttemptOutcome, Isolation};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use super::attempt::{Phase, run_attempt};
use super::ctx::{Ctx, Rights, Setups};
use crate::git::{GitError, SnapshotLimits, State};
use crate::plan::{Payload, Role, Setup, Task};
use crate::run::blocking::blocking;
use crate::worktree_home::SetupHold;

/// How a worktree's setup went.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// Nothing to do: no `[setup]`, `setup = false`, or no worktree of its
    /// own.
    Nothing,
    /// Ready: what the worktree held when setup was done.
    Ready {
        state: State,
        /// Whether a kept setup was copied instead of running it.
        reused: bool,
        /// Whether its ignored directories were shown as overlays.
        layered: bool,
        /// How long it waited for another worktree's setup with its key.
        waited: std::time::Duration,
    },
    /// Setup failed (or was stopped): the attempt fails with `reason`.
    Failed {
        outcome: AttemptOutcome,
        reason: String,
    },
}

/// Whether `task`'s worktree gets the run's setup.
pub(crate) fn applies(ctx: &Ctx, task: &Task) -> bool {
    ctx.setups.is_some() && task.setup && task.isolation == Isolation::Worktree
}

/// Whether `[setup]` asks for more than `task` has: a wider network, or
/// variables the task does not have as they are.
fn wider(setup: &Setup, task: &Task) -> bool {
    setup.network.wider_than(&task.network)
        || setup.env.iter().any(|(k, v)| task.env.get(k) != Some(v))
}

/// Makes the worktree `workdir` (git directory `admin`, checked out at
/// `base`; `fresh` when it was just made, not a warm one) ready for
/// attempt `attempt` of `task`.
#[expect(
    clippy::too_many_arguments,
    reason = "one attempt's worktree: the task, where it runs, whether it is fresh, and its stop"
)]
pub(crate) async fn prepare(
    ctx: &Arc<Ctx>,
    task: &Task,
    attempt: u32,
    base: Oid,
    workdir: &Path,
    admin: &Path,
    fresh: bool,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Prepared {
    // Whatever an earlier attempt in this worktree was shown goes first:
    // this one is shown only what its own setup readies below.
    if let Some(setups) = &ctx.setups {
        setups.layers.forget(workdir);
    }
    let Some(setups) = ctx.setups.as_ref().filter(|_| applies(ctx, task)) else {
        return Prepared::Nothing;
    };
    let at = Where {
        base,
        workdir,
        admin,
        fresh,
    };
    match prepare_inner(ctx, setups, task, attempt, at, stop).await {
        Ok(prepared) => prepared,
        Err(e) => Prepared::Failed {
            outcome: AttemptOutcome::SpawnFailed {
                message: e.to_string(),
            },
            reason: format!("setup could not run: failed to {e}"),
        },
    }
}

/// Where setup runs: the worktree, its git directory and base, and
/// whether it was just made.
struct Where<'a> {
    base: Oid,
    workdir: &'a Path,
    admin: &'a Path,
    fresh: bool,
}

/// How setup goes for one worktree, decided before anything runs.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Copy the setup kept under this key (it is there).
    Copy,
    /// Make the setup of the run's base in a checkout of its own (the
    /// worktree holds a task's work, but its key files are the base's),
    /// keep it, then copy it.
    MakeAtBase,
    /// Run setup in the worktree with `rights`; `scrub` first (a warm
    /// worktree about to run setup with its own rights); `keep` what it
    /// made.
    Here {
        rights: Rights,
        scrub: bool,
        keep: bool,
    },
}

/// What setup does in a worktree at `at` for `task`: with setup's own
/// rights only where nothing a task wrote is (the run's base, fresh or
/// scrubbed); elsewhere a kept setup of the base is copied, or setup runs
/// with the task's rights. `key`/`base_key`: the key at the worktree's
/// base and at the run's; `kept`: whether a setup is kept under `key`.
fn plan_setup(
    setup: &Setup,
    task: &Task,
    at: &Where<'_>,
    run_base: Oid,
    keys: (Option<&str>, Option<&str>),
    kept: bool,
) -> Plan {
    let (key, base_key) = keys;
    if kept {
        return Plan::Copy;
    }
    let at_base = at.base == run_base;
    let wider = wider(setup, task);
    // Its key files hold what they hold at the run's base: the setup made
    // there is this worktree's too.
    let makeable = key.is_some() && key == base_key && !task.sparse;
    match (at_base, makeable) {
        // The base, checked out fully: setup's own work, kept.
        (true, true) => Plan::Here {
            rights: Rights::Setup,
            scrub: !at.fresh,
            keep: true,
        },
        (false, true) => Plan::MakeAtBase,
        // The base, not kept (no key, or a partial checkout): its own
        // rights in a tree no task wrote.
        (true, false) if wider => Plan::Here {
            rights: Rights::Setup,
            scrub: !at.fresh,
            keep: false,
        },
        // A tree a task wrote, or a setup asking for no more than the task
        // has (it is the task's own code then): the task's rights.
        _ => Plan::Here {
            rights: Rights::Task,
            scrub: false,
            keep: false,
        },
    }
}

async fn prepare_inner(
    ctx: &Arc<Ctx>,
    setups: &Setups,
    task: &Task,
    attempt: u32,
    at: Where<'_>,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<Prepared, GitError> {
    let setup = &setups.setup;
    let (key, base_key) = match setup.key.is_empty() {
        true => (None, None),
        false => {
            let (repo, setup, sandboxed) = (ctx.repo.clone(), setup.clone(), ctx.sandbox.is_some());
            let (base, run_base) = (at.base, setups.base);
            let keys = blocking(move || {
                let key = key_of(&repo, run_base, base, &setup, sandboxed)?;
                let base_key = match base == run_base {
                    true => key.clone(),
                    false => key_of(&repo, run_base, run_base, &setup, sandboxed)?,
                };
                Ok((key, base_key))
            })
            .await?;
            (Some(keys.0), Some(keys.1))
        }
    };
    // Held until this worktree's setup is done: another task with the key
    // then finds it kept.
    let lock = key.as_ref().map(|k| setups.lock(k));
    let waiting = std::time::Instant::now();
    let _held = match &lock {
        Some(lock) => Some(lock.lock().await),
        None => None,
    };
    let kept = key.as_ref().map(|k| setups.kept.join(k));
    let mut is_kept = kept.as_ref().is_some_and(|k| k.is_dir());
    // Other processes share the kept setups too (a cluster node's jobs,
    // runs beside this one): one makes a setup, the others wait for it
    // and copy it. Held until it is kept.
    let mut making = None;
    if let (Some(kept), false) = (&kept, is_kept) {
        making = hold_making(&setups.kept, stop).await;
        is_kept = kept.is_dir();
    }
    let waited = waiting.elapsed();
    let keys = (key.as_deref(), base_key.as_deref());
    let mut plan = plan_setup(setup, task, &at, setups.base, keys, is_kept);
    if plan == Plan::MakeAtBase
        && let (Some(key), Some(kept)) = (&key, &kept)
    {
        match make_at_base(ctx, setups, task, attempt, key, kept, stop).await? {
            Some(failed) => return Ok(failed),
            None => plan = Plan::Copy,
        }
    }
    if !matches!(plan, Plan::Here { keep: true, .. }) {
        // Kept (or not to be): others may copy it while this worktree does.
        drop(making.take());
    }
    let (mut reused, mut layered) = (false, false);
    setups.layers.forget(at.workdir);
    if plan == Plan::Copy
        && let Some(kept) = &kept
    {
        let shown = show_layers(ctx, task, kept, &at).await;
        layered = !shown.is_empty();
        reused = restore(task, kept, at.workdir, shown).await;
        if !reused {
            setups.layers.forget(at.workdir);
            layered = false;
        }
        if !reused {
            // A kept setup that could not be copied: it runs here, as the
            // worktree allows.
            plan = plan_setup(setup, task, &at, setups.base, keys, false);
            if plan == Plan::MakeAtBase {
                plan = Plan::Here {
                    rights: Rights::Task,
                    scrub: false,
                    keep: false,
                };
            }
        }
    }
    if let Plan::Here {
        rights,
        scrub,
        keep: keep_it,
    } = plan
    {
        let here = Here {
            at: &at,
            rights,
            scrub,
            keep: keep_it
                .then(|| key.as_deref().zip(kept.as_deref()))
                .flatten(),
        };
        if let Some(failed) = run_here(ctx, setups, task, attempt, here, stop).await? {
            return Ok(failed);
        }
    }
    let run = ctx.run.clone();
    let (wd, git_dir, scope, max) = (
        at.workdir.to_path_buf(),
        at.admin.to_path_buf(),
        task.checkout(),
        task.max_file_size,
    );
    let base = at.base;
    let state = blocking(move || {
        let limits = SnapshotLimits {
            scope: &scope,
            max_file_size: max,
            run: &run,
        };
        crate::git::state(&wd, &git_dir, base, limits)
    })
    .await?;
    Ok(Prepared::Ready {
        state,
        reused,
        layered,
        waited,
    })
}

/// The top-level directories of the setup kept at `kept` that the
/// worktree's commands are shown as overlays (see `layers`), where the
/// run's launcher shows them; none else, or if readying them failed.
async fn show_layers(ctx: &Arc<Ctx>, task: &Task, kept: &Path, at: &Where<'_>) -> Vec<String> {
    let Some(setups) = &ctx.setups else {
        return Vec::new();
    };
    let launcher = ctx.sandbox.as_ref().map(|s| &s.launcher);
    let probe = ctx.run_dir.join(crate::layout::TMP).join("@layers-probe");
    if !setups.layers.available(launcher, &probe).await {
        return Vec::new();
    }
    let (me, kept, workdir, admin) = (
        Arc::clone(ctx),
        kept.to_path_buf(),
        at.workdir.to_path_buf(),
        at.admin.to_path_buf(),
    );
    let layers = crate::layout::layers_tmp(&ctx.run_dir, &task.id);
    let shown = tokio::task::spawn_blocking(move || match &me.setups {
        Some(setups) => setups
            .layers
            .show(&me.repo, &kept, (&workdir, &admin), &layers),
        None => Ok(Vec::new()),
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|shown| shown);
    match shown {
        Ok(names) => names,
        Err(e) => {
            setups.layers.forget(at.workdir);
            tracing::warn!(task = %task.id, error = %e, "failed to show the kept setup as overlays; copying it");
            Vec::new()
        }
    }
}

/// Copies the setup kept at `kept` into `workdir` (but the directories
/// `shown` as overlays): whether it could.
async fn restore(task: &Task, kept: &Path, workdir: &Path, shown: Vec<String>) -> bool {
    let (from, to) = (kept.to_path_buf(), workdir.to_path_buf());
    let copied = tokio::task::spawn_blocking(move || {
        // Held while it is copied: no run removes it half way.
        let _held = match crate::worktree_home::hold_setup(&from, SetupHold::Shared)? {
            Some(held) => held,
            None => return Err(std::io::Error::other("it is being removed")),
        };
        super::prepare_files::restore(&from, &to, &shown)
    });
    match copied.await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(task = %task.id, error = %e, kept = %kept.display(), "failed to copy a kept setup; running setup");
            false
        }
        Err(e) => {
            tracing::warn!(task = %task.id, error = %e, "failed to copy a kept setup; running setup");
            false
        }
    }
}

/// Setup run in the worktree itself.
struct Here<'a> {
    at: &'a Where<'a>,
    rights: Rights,
    /// A warm worktree made as fresh as a new one first.
    scrub: bool,
    /// Where what it makes is kept (its key and directory), if it is.
    keep: Option<(&'a str, &'a Path)>,
}

/// Runs setup in the worktree `here` says; the attempt's end if it
/// failed.
async fn run_here(
    ctx: &Arc<Ctx>,
    setups: &Setups,
    task: &Task,
    attempt: u32,
    here: Here<'_>,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<Option<Prepared>, GitError> {
    let Here {
        at,
        rights,
        scrub,
        keep: keep_at,
    } = here;
    let setup = &setups.setup;
    // Nothing a task left in a warm worktree may run with setup's rights,
    // nor be kept as setup's work.
    if scrub {
        let (c, wd, a) = (
            Arc::clone(ctx),
            at.workdir.to_path_buf(),
            at.admin.to_path_buf(),
        );
        blocking(move || c.worktrees.clean_all(&wd, &a)).await?;
        if !ctx.included.is_empty() {
            copy_included(ctx, task, at.workdir).await?;
        }
    }
    if rights == Rights::Task && wider(setup, task) {
        say_task_rights(ctx, task, attempt, setup);
    }
    let index = at.admin.join("index");
    let setup_task = setup_task(task, setup, rights);
    let ran = run_attempt(
        ctx,
        &setup_task,
        attempt,
        at.base,
        at.workdir,
        at.admin,
        swarm_worker::Deck::default(),
        stop,
        Phase::Setup(rights),
    )
    .await;
    if !ran.outcome.is_success() {
        return Ok(Some(setup_failed(
            ctx,
            task,
            attempt,
            &setup_task,
            ran.outcome,
            rights,
            stop,
        )));
    }
    discard_tmp(ctx, task);
    if let Some((key, kept)) = keep_at {
        let included = Arc::clone(&ctx.included);
        keep(
            &setups.kept,
            key,
            kept,
            at.workdir,
            &index,
            &task.id,
            included,
        )
        .await;
    }
    Ok(None)
}

/// Holds the lock of making a setup in the kept setups' directory `root`
/// (`worktree_home::hold_setup` of the directory itself), waiting while
/// another process makes one; `None` when it cannot be held (no lock, and
/// setup is made as before: at worst twice) or the attempt is stopped.
async fn hold_making(
    root: &Path,
    stop: &watch::Receiver<Option<Stop>>,
) -> Option<nix::fcntl::Flock<std::fs::File>> {
    loop {
        match crate::worktree_home::hold_setup(root, SetupHold::Exclusive) {
            Ok(Some(held)) => return Some(held),
            Ok(None) if stop.borrow().is_none() => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, dir = %root.display(), "failed to lock the kept setups to make one");
                return None;
            }
        }
    }
}

/// Makes the setup of the run's base under `key` in a checkout of its
/// own (a tree no task wrote) and keeps it at `kept`, for a worktree that
/// holds a task's work: `None` once it is kept, or the attempt's end if
/// it failed.
async fn make_at_base(
    ctx: &Arc<Ctx>,
    setups: &Setups,
    task: &Task,
    attempt: u32,
    key: &str,
    kept: &Path,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<Option<Prepared>, GitError> {
    let scratch = ctx.worktree_dir.join(format!(".setup-{key}"));
    let (c, p, base) = (Arc::clone(ctx), scratch.clone(), setups.base);
    // A scratch checkout an earlier, interrupted attempt left goes first.
    let admin = blocking(move || {
        if p.symlink_metadata().is_ok() {
            let admin = c.worktrees.admin_dir(&p);
            c.worktrees.remove(&p, admin.as_deref())?;
        }
        c.worktrees.create(&p, base, &[])
    })
    .await?;
    if !ctx.included.is_empty() {
        copy_included(ctx, task, &scratch).await?;
    }
    let at = Where {
        base: setups.base,
        workdir: &scratch,
        admin: &admin,
        fresh: true,
    };
    let here = Here {
        at: &at,
        rights: Rights::Setup,
        scrub: false,
        keep: Some((key, kept)),
    };
    let failed = run_here(ctx, setups, task, attempt, here, stop).await?;
    let (c, p) = (Arc::clone(ctx), scratch.clone());
    if let Err(e) = blocking(move || c.worktrees.remove(&p, Some(&admin))).await {
        tracing::warn!(task = %task.id, error = %e, "failed to remove the checkout setup ran in");
    }
    Ok(failed)
}

/// Says, in the setup's log and as a warning, that setup runs with the
/// task's rights in its worktree, and why.
fn say_task_rights(ctx: &Ctx, task: &Task, attempt: u32, setup: &Setup) {
    let note = format!(
        "swarm: [setup] runs with the rights of task `{}` (network = {}, its own variables), not its own (network = {}): its worktree holds {}, whose files setup would run; a `key` whose files are as at the run's base makes it copy the setup made there instead",
        task.id,
        task.network,
        setup.network,
        match crate::ids::parent_of(&task.id) {
            Some(parent) => format!("its parent `{parent}`'s work"),
            None => "its dependencies' results".to_string(),
        },
    );
    tracing::warn!(task = %task.id, "{note}");
    let (_, stderr) = crate::layout::setup_log_paths(&ctx.run_dir, &task.id, attempt);
    if let Ok(mut log) = swarm_worker::open_log(&stderr) {
        use std::io::Write as _;
        let _ = writeln!(log, "{note}");
    }
}

/// The attempt's end when its setup failed (or was stopped).
fn setup_failed(
    ctx: &Ctx,
    task: &Task,
    attempt: u32,
    setup_task: &Task,
    outcome: AttemptOutcome,
    rights: Rights,
    stop: &watch::Receiver<Option<Stop>>,
) -> Prepared {
    let how =
        super::describe::describe_failure(&outcome, None, setup_task, &ctx.run, attempt, None);
    let reduced = match rights {
        Rights::Task if ctx.setups.as_ref().is_some_and(|s| wider(&s.setup, task)) => format!(
            " (it ran with the task's network = {}, since its worktree holds tasks' work: give the task the network setup needs, or [setup] a `key` that lets it copy the setup of the run's base)",
            task.network
        ),
        _ => String::new(),
    };
    let reason = match stop.borrow().is_some() {
        true => "cancelled during setup".to_string(),
        false => format!(
            "setup {how}{reduced}; see `swarm logs {} {} --setup`",
            ctx.run, task.id
        ),
    };
    Prepared::Failed { outcome, reason }
}

/// Removes a finished setup's tmp: what it made for the task is in the
/// worktree (a failed one's stays, for a look).
fn discard_tmp(ctx: &Ctx, task: &Task) {
    let tmp = crate::layout::setup_tmp(&ctx.run_dir, &task.id);
    if let Err(e) = crate::untrusted::TaskDir::discard(&tmp) {
        tracing::warn!(task = %task.id, error = %e, "failed to remove the [setup]'s tmp");
    }
}

/// The command task setup runs as: `task`'s sandbox and limits, with
/// setup's command and timeout, the whole worktree to write, and nothing
/// after it (no verify, no score). With setup's own rights, its network
/// and variables (and the task's variables, for a task of the plan: a
/// subtask's are a running task's choice); with the task's, the task's.
fn setup_task(task: &Task, setup: &Setup, rights: Rights) -> Task {
    let (env, network) = match rights {
        Rights::Setup => {
            let mut env = match crate::ids::parent_of(&task.id) {
                None => task.env.clone(),
                Some(_) => Default::default(),
            };
            env.extend(setup.env.iter().cloned());
            (env, setup.network.clone())
        }
        Rights::Task => (task.env.clone(), task.network.clone()),
    };
    Task {
        payload: Payload::Command {
            run: setup.run.clone(),
        },
        env,
        timeout: Some(setup.timeout),
        verify: None,
        paths: Vec::new(),
        creates: Vec::new(),
        network,
        role: Role::Plain,
        ..task.clone()
    }
}

/// The key of a setup for a worktree at `base` in a run from `run_base`:
/// its command, network, variables, whether it is sandboxed, the tree of
/// the run's base (a setup is kept only from a base a person chose, and
/// its other files, scripts setup runs among them, are part of what it
/// made), and the content of its key files at `base` (not in the
/// worktree: a task cannot choose it).
fn key_of(
    repo: &crate::git::Repo,
    run_base: Oid,
    base: Oid,
    setup: &Setup,
    sandboxed: bool,
) -> Result<String, GitError> {
    let action = || format!("read the key files of [setup] at {base}");
    let git = repo.open().map_err(|e| GitError::Cli {
        action: action(),
        message: e.to_string(),
    })?;
    let tree_of = |commit: Oid| {
        git.find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| GitError::Cli {
                action: action(),
                message: e.to_string(),
            })
    };
    let tree = tree_of(base)?;
    let run_tree = tree_of(run_base)?.id();
    // `None` and `Full` as they were written before lists.
    let network = match &setup.network {
        crate::plan::TaskNetwork::None => "None".to_string(),
        crate::plan::TaskNetwork::Full => "Full".to_string(),
        crate::plan::TaskNetwork::Hosts(list) => list.to_string(),
    };
    // Everything but the base's tree: what a newer kept setup of the same
    // setup replaces (see `keep`).
    let mut text = format!(
        "swarm setup 2\nrun {:?}\nnetwork {network}\nsandboxed {sandboxed}\n",
        setup.run
    );
    for (k, v) in &setup.env {
        text.push_str(&format!("env {k:?}={v:?}\n"));
    }
    for file in &setup.key {
        let id = tree
            .get_path(Path::new(file))
            .map(|e| e.id().to_string())
            .unwrap_or_else(|_| "absent".into());
        text.push_str(&format!("file {file:?} {id}\n"));
    }
    let family =
        Oid::hash_object(git2::ObjectType::Blob, text.as_bytes()).map_err(|e| GitError::Cli {
            action: action(),
            message: e.to_string(),
        })?;
    Ok(format!(
        "{}-{}",
        &family.to_string()[..KEY_FAMILY],
        &run_tree.to_string()[..12]
    ))
}

/// How many hex digits of a key name its family (all but the base's
/// tree): the kept setups of one family differ only by base.
const KEY_FAMILY: usize = 16;

/// How many kept setups of one family (one setup and key files, on
/// different bases) stay: each new base keeps one, and the oldest go.
const KEPT_PER_FAMILY: usize = 3;

/// Removes the kept setups in `root` of `key`'s family beyond the
/// [`KEPT_PER_FAMILY`] newest: a new commit on the base keeps a new
/// setup, and the older ones would fill the disk. One a run is copying or
/// showing to its tasks (held, `worktree_home::hold_setup`) stays, until
/// a later setup of the family finds it free.
fn forget_older(root: &Path, key: &str) {
    let Some((family, _)) = key.split_once('-') else {
        return;
    };
    #[allow(
        clippy::disallowed_methods,
        reason = "the kept setups' directory: swarm's alone (0700)"
    )]
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut same: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(family) && name.as_bytes().get(family.len()) == Some(&b'-')
        })
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_dir())?;
            // When it was kept: its files' directory, made then and never
            // written after (a marker `layers` writes beside it later
            // would make an old setup look new).
            let kept = std::fs::symlink_metadata(e.path().join(super::prepare_files::FILES))
                .and_then(|m| m.modified())
                .or_else(|_| meta.modified())
                .ok()?;
            Some((kept, e.path()))
        })
        .collect();
    same.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, old) in same.into_iter().skip(KEPT_PER_FAMILY) {
        let _held = match crate::worktree_home::hold_setup(&old, SetupHold::Exclusive) {
            Ok(Some(held)) => held,
            Ok(None) => {
                tracing::debug!(kept = %old.display(), "an older kept setup stays: a run is using it");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, kept = %old.display(), "failed to hold an older kept setup to remove it");
                continue;
            }
        };
        if let Err(e) = crate::untrusted::TaskDir::discard(&old) {
            tracing::warn!(error = %e, kept = %old.display(), "failed to remove an older kept setup");
        }
    }
}

/// Removes the half-made copies (`.<key>.<pid>`) in the kept setups'
/// directory `root` whose process is dead (killed while it copied): never
/// one a live process is still writing.
fn remove_dead_copies(root: &Path) {
    #[allow(
        clippy::disallowed_methods,
        reason = "the kept setups' directory: swarm's alone (0700)"
    )]
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let dead = crate::worktree_home::copy_alive(&name) == Some(false);
        if dead && let Err(e) = crate::untrusted::TaskDir::discard(&entry.path()) {
            tracing::warn!(error = %e, "failed to remove a half-made kept setup");
        }
    }
}

/// Keeps what setup made in `workdir` (against the checkout's index at
/// `index`) as `kept` (in `root`, under `key`): copied to a directory of
/// its own first and renamed into place, so that a kept setup is always
/// whole. A failure costs the next worktree a setup run, nothing more.
#[allow(
    clippy::disallowed_methods,
    reason = "the kept setups' directory, swarm's alone (0700); what it copies from the worktree goes through prepare_files"
)]
async fn keep(
    root: &Path,
    key: &str,
    kept: &Path,
    workdir: &Path,
    index: &Path,
    task: &str,
    included: Arc<crate::worktree_include::Included>,
) {
    let (root, key, kept, workdir, index) = (
        root.to_path_buf(),
        key.to_string(),
        kept.to_path_buf(),
        workdir.to_path_buf(),
        index.to_path_buf(),
    );
    let kept_shown = kept.display().to_string();
    let done = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&root)?;
        let index = git2::Index::open(&index).map_err(std::io::Error::other)?;
        let mut outputs = super::prepare_files::outputs(&workdir, &index)?;
        // The person's included files are theirs, never kept.
        outputs
            .made
            .retain(|p| !crate::worktree_include::names(&included, p));
        super::prepare_files::check_size(&workdir, &outputs)?;
        remove_dead_copies(&root);
        let tmp = root.join(format!(".{key}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        if let Err(e) = super::prepare_files::keep(&workdir, &outputs, &tmp) {
            // Half a copy (a full disk) frees its space at once.
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        match std::fs::rename(&tmp, &kept) {
            Ok(()) => {
                forget_older(&root, &key);
                Ok(())
            }
            // Another run kept the same setup first: its copy stands.
            Err(_) if kept.is_dir() => std::fs::remove_dir_all(&tmp),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(task, error = %e, kept = kept_shown, "failed to keep the setup's files; the next worktree runs setup again")
        }
        Err(e) => tracing::warn!(task, error = %e, "failed to keep the setup's files"),
    }
}

/// Copies the person's files `.worktreeinclude` names into `workdir`,
/// warning of each it could not.
pub(super) async fn copy_included(ctx: &Ctx, task: &Task, workdir: &Path) -> Result<(), GitError> {
    let (from, included, to) = (
        ctx.repo.workdir.clone(),
        Arc::clone(&ctx.included),
        workdir.to_path_buf(),
    );
    let skipped = blocking(move || {
        crate::worktree_include::copy_into(&from, &included, &to).map_err(|e| GitError::Cli {
            action: format!(
                "copy the files .worktreeinclude names into {}",
                to.display()
            ),
            message: e.to_string(),
        })
    })
    .await?;
    for why in skipped {
        tracing::warn!(task = %task.id, "a file .worktreeinclude names was not copied: {why}");
    }
    Ok(())
}

/// Runs the plan's `[cleanup]` in `task`'s worktree `workdir` (git
/// directory `git_dir`, at `base`) after attempt `attempt`, whose result is
/// taken already: sandboxed like the task, with the task's rights (its
/// caches, a fresh tmp of its own; cleanup's network only where it is
/// within the task's) and cleanup's timeout. A failure is said in the
/// task's error log and a warning.
pub(crate) async fn clean_up(
    ctx: &Ctx,
    task: &Task,
    attempt: u32,
    base: Oid,
    workdir: &Path,
    git_dir: &Path,
    stop: &mut watch::Receiver<Option<Stop>>,
) {
    let Some(cleanup) = ctx.cleanup.as_ref() else {
        return;
    };
    if task.isolation != Isolation::Worktree {
        return;
    }
    let cleanup_task = Task {
        payload: Payload::Command {
            run: cleanup.run.clone(),
        },
        timeout: Some(cleanup.timeout),
        verify: None,
        paths: Vec::new(),
        creates: Vec::new(),
        // It runs in the task's worktree, whatever the task made of it
        // (`make clean` runs the task's Makefile): never with more than
        // the task has (`swarm validate` warns of a wider one).
        network: match cleanup.network.wider_than(&task.network) {
            true => task.network.clone(),
            false => cleanup.network.clone(),
        },
        role: Role::Plain,
        ..task.clone()
    };
    let ran = run_attempt(
        ctx,
        &cleanup_task,
        attempt,
        base,
        workdir,
        git_dir,
        swarm_worker::Deck::default(),
        stop,
        Phase::Cleanup,
    )
    .await;
    if ran.outcome.is_success() {
        // Its tmp is scratch (a failed one's stays, for a look, until the
        // next cleanup of the task makes it fresh).
        let tmp = crate::layout::cleanup_tmp(&ctx.run_dir, &task.id);
        if let Err(e) = crate::untrusted::TaskDir::discard(&tmp) {
            tracing::warn!(task = %task.id, error = %e, "failed to remove the [cleanup]'s tmp");
        }
    } else {
        let how = super::describe::describe_failure(
            &ran.outcome,
            None,
            &cleanup_task,
            &ctx.run,
            attempt,
            None,
        );
        tracing::warn!(task = %task.id, attempt, "[cleanup] {how}; see `swarm logs {} {} --cleanup`", ctx.run, task.id);
        let (_, stderr) = crate::layout::log_paths(&ctx.run_dir, &task.id, attempt);
        if let Ok(mut log) = swarm_worker::open_log(&stderr) {
            use std::io::Write as _;
            let _ = writeln!(
                log,
                "swarm: [cleanup] {how}; see `swarm logs {} {} --cleanup`",
                ctx.run, task.id
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The older kept setups of a family go by when they were kept, not
    /// by their directory's time: a marker written in the oldest later
    /// (as `layers` writes one) does not make it the one that stays.
    #[test]
    fn older_kept_setups_go_by_when_they_were_kept() {
        let root = tempfile::tempdir().unwrap();
        for key in ["fam-a", "fam-b", "fam-c", "fam-d"] {
            std::fs::create_dir_all(
                root.path()
                    .join(key)
                    .join(super::super::prepare_files::FILES),
            )
            .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::write(root.path().join("fam-a/.layers-owned.deps"), "").unwrap();
        forget_older(root.path(), "fam-d");
        let mut left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["fam-b", "fam-c", "fam-d"]);
    }
}
