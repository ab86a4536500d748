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

use std::path::Path;
use std::sync::Arc;

use git2::Oid;
use swarm_protocol::{AttemptOutcome, Isolation};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use super::attempt::{Phase, run_attempt};
use super::ctx::{Ctx, Setups};
use crate::git::{GitError, SnapshotLimits, State};
use crate::plan::{Payload, Role, Setup, Task};
use crate::run::blocking::blocking;

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

/// Makes the fresh worktree `workdir` (git directory `admin`, checked out
/// at `base`) ready for attempt `attempt` of `task`.
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
    let Some(setups) = ctx.setups.as_ref().filter(|_| applies(ctx, task)) else {
        return Prepared::Nothing;
    };
    // What is kept must be setup's work alone: made in a fresh full
    // checkout of the run's base, not in a warm worktree (a task's
    // leftovers), a partial one, or on dependencies' results.
    let keepable = fresh && !task.sparse && base == setups.base;
    let at = Where {
        base,
        workdir,
        admin,
        keepable,
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
/// whether what setup makes there may be kept.
struct Where<'a> {
    base: Oid,
    workdir: &'a Path,
    admin: &'a Path,
    keepable: bool,
    fresh: bool,
}

async fn prepare_inner(
    ctx: &Arc<Ctx>,
    setups: &Setups,
    task: &Task,
    attempt: u32,
    at: Where<'_>,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<Prepared, GitError> {
    let Where {
        base,
        workdir,
        admin,
        keepable,
        fresh,
    } = at;
    let setup = &setups.setup;
    let mut keepable = keepable;
    let key = match setup.key.is_empty() {
        true => None,
        false => {
            let (repo, setup, sandboxed) = (ctx.repo.clone(), setup.clone(), ctx.sandbox.is_some());
            Some(blocking(move || key_of(&repo, base, &setup, sandboxed)).await?)
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
    let waited = waiting.elapsed();
    let kept = key.as_ref().map(|k| setups.kept.join(k));
    let mut reused = false;
    if let Some(kept) = kept.as_ref().filter(|k| k.is_dir()) {
        let (from, to) = (kept.clone(), workdir.to_path_buf());
        match tokio::task::spawn_blocking(move || super::prepare_files::restore(&from, &to)).await {
            Ok(Ok(_)) => reused = true,
            Ok(Err(e)) => {
                tracing::warn!(task = %task.id, error = %e, kept = %kept.display(), "failed to copy a kept setup; running setup")
            }
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "failed to copy a kept setup; running setup")
            }
        }
    }
    // A warm worktree about to run a setup that will be kept starts as
    // fresh as a new one: nothing a task left in it may be kept.
    if !reused && !fresh && key.is_some() && !task.sparse && base == setups.base {
        let (c, wd, a) = (Arc::clone(ctx), workdir.to_path_buf(), admin.to_path_buf());
        blocking(move || c.worktrees.clean_all(&wd, &a)).await?;
        keepable = true;
    }
    if !reused {
        let index = admin.join("index");
        let setup_task = setup_task(task, setup);
        let ran = run_attempt(
            ctx,
            &setup_task,
            attempt,
            base,
            workdir,
            admin,
            swarm_worker::Deck::default(),
            stop,
            Phase::Setup,
        )
        .await;
        if ran.outcome.is_success() {
            // Its tmp is scratch: what it made for the task is in the
            // worktree (a failed one's stays, for a look).
            let tmp = crate::layout::setup_tmp(&ctx.run_dir, &task.id);
            if let Err(e) = crate::untrusted::TaskDir::discard(&tmp) {
                tracing::warn!(task = %task.id, error = %e, "failed to remove the [setup]'s tmp");
            }
        } else {
            let how = super::describe::describe_failure(
                &ran.outcome,
                None,
                &setup_task,
                &ctx.run,
                attempt,
                None,
            );
            let stopped = stop.borrow().is_some();
            let reason = match stopped {
                true => "cancelled during setup".to_string(),
                false => format!(
                    "setup {how}; see `swarm logs {} {} --setup`",
                    ctx.run, task.id
                ),
            };
            return Ok(Prepared::Failed {
                outcome: ran.outcome,
                reason,
            });
        }
        if let (Some(kept), Some(key), true) = (&kept, &key, keepable) {
            let included = Arc::clone(&ctx.included);
            keep(&setups.kept, key, kept, workdir, &index, &task.id, included).await;
        }
    }
    let run = ctx.run.clone();
    let (wd, git_dir, scope, max) = (
        workdir.to_path_buf(),
        admin.to_path_buf(),
        task.checkout(),
        task.max_file_size,
    );
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
        waited,
    })
}

/// The command task setup runs as: `task`'s sandbox, environment and
/// limits, with setup's command, network, timeout and variables, the whole
/// worktree to write, and nothing after it (no verify, no score).
fn setup_task(task: &Task, setup: &Setup) -> Task {
    let mut env = task.env.clone();
    env.extend(setup.env.iter().cloned());
    Task {
        payload: Payload::Command {
            run: setup.run.clone(),
        },
        env,
        timeout: Some(setup.timeout),
        verify: None,
        paths: Vec::new(),
        creates: Vec::new(),
        network: setup.network.clone(),
        role: Role::Plain,
        ..task.clone()
    }
}

/// The key of a setup on `base`: its command, network, variables, whether
/// it is sandboxed, and the content of its key files at `base` (not in the
/// worktree: a task cannot choose it).
fn key_of(
    repo: &crate::git::Repo,
    base: Oid,
    setup: &Setup,
    sandboxed: bool,
) -> Result<String, GitError> {
    let action = || format!("read the key files of [setup] at {base}");
    let git = repo.open().map_err(|e| GitError::Cli {
        action: action(),
        message: e.to_string(),
    })?;
    let tree = git
        .find_commit(base)
        .and_then(|c| c.tree())
        .map_err(|e| GitError::Cli {
            action: action(),
            message: e.to_string(),
        })?;
    // `None` and `Full` as they were written before lists, so that the
    // setups kept by earlier runs keep their keys.
    let network = match &setup.network {
        crate::plan::TaskNetwork::None => "None".to_string(),
        crate::plan::TaskNetwork::Full => "Full".to_string(),
        crate::plan::TaskNetwork::Hosts(list) => list.to_string(),
    };
    let mut text = format!(
        "swarm setup 1\nrun {:?}\nnetwork {network}\nsandboxed {sandboxed}\n",
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
    let id =
        Oid::hash_object(git2::ObjectType::Blob, text.as_bytes()).map_err(|e| GitError::Cli {
            action: action(),
            message: e.to_string(),
        })?;
    Ok(id.to_string()[..20].to_string())
}

/// Keeps what setup made in `workdir` (against the checkout's index at
/// `index`) as `kept` (in `root`, under `key`): copied to a directory of
/// its own first and renamed into place, so that a kept setup is always
/// whole. A failure costs the next worktree a setup run, nothing more.
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
        let tmp = root.join(format!(".{key}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        super::prepare_files::keep(&workdir, &outputs, &tmp)?;
        match std::fs::rename(&tmp, &kept) {
            Ok(()) => Ok(()),
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

/// Runs the plan's `[cleanup]` in `task`'s worktree `workdir` (git
/// directory `git_dir`, at `base`) after attempt `attempt`, whose result is
/// taken already: sandboxed like the task, with cleanup's network and
/// timeout. A failure is said in the task's error log and a warning.
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
        network: cleanup.network.clone(),
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
