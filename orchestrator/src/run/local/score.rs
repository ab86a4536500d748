//! A variant's `score`: the experiment's command, run in the variant's
//! worktree after its `verify` passed, in the same sandbox as the task but
//! with the worktree read-only (a score ranks a result; it cannot change
//! it), under a deadline of its own. Its last line of output is the score.
//! Unconfined (`sandbox = "none"`), where nothing makes the worktree
//! read-only, it runs in a checkout of its own of the worktree as it is
//! (`own_checkout`), removed after.
//!
//! The scorer judges the variant, so it sees nothing the variant wrote but
//! its worktree: a fresh, empty HOME and TMPDIR of its own (removed after),
//! not the variant's tmp (its HOME, where a `usercustomize.py` or a
//! `.bashrc` would run in the scorer) and not the build caches the variant
//! wrote to.

use std::path::Path;
use std::time::Instant;

use swarm_protocol::AttemptOutcome;
use swarm_protocol::experiment::Score;
use swarm_sandbox::{Policy, Stop};
use swarm_worker::CommandSpec;
use tokio::sync::watch;

use super::ctx::Ctx;
use crate::layout::score_log_paths;
use crate::plan::{ScoreCommand, Task};

/// Runs `score` for attempt `attempt` of variant `task`, with `spec` (the
/// attempt's own command, environment and sandbox) as its template; `own`:
/// the attempt's base and its worktree's git directory, from which an
/// unconfined scorer's checkout of its own is made.
#[expect(
    clippy::too_many_arguments,
    reason = "one variant's attempt: the task, where it ran, and its score"
)]
pub(crate) async fn run(
    ctx: &Ctx,
    task: &Task,
    attempt: u32,
    workdir: &Path,
    own: Option<(git2::Oid, &Path)>,
    score: &ScoreCommand,
    mut spec: CommandSpec,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Score {
    spec.script = score.command.clone();
    spec.program = None;
    (spec.stdout, spec.stderr) = score_log_paths(&ctx.run_dir, &task.id, attempt);
    spec.deadline = Some(tokio::time::Instant::now() + score.timeout);
    if let Some(sandbox) = &mut spec.sandbox {
        read_only_worktree(&mut sandbox.policy, workdir);
    }
    // Unconfined, nothing keeps a scorer from writing the variant's
    // worktree, whose writes would be committed with the variant's work:
    // it runs in a checkout of its own of that worktree as it is.
    let checkout = match (&spec.sandbox, own) {
        (None, Some((base, git_dir))) => {
            let dir = crate::layout::score_checkout(&ctx.run_dir, &task.id);
            let (wd, git_dir, d, t) = (
                workdir.to_path_buf(),
                git_dir.to_path_buf(),
                dir.clone(),
                task.clone(),
            );
            let made =
                tokio::task::spawn_blocking(move || own_checkout(&wd, &git_dir, base, &t, &d))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|made| made);
            if let Err(e) = made {
                return Score {
                    value: None,
                    error: Some(format!("score could not run: {e}")),
                    duration_ms: 0,
                    runs: Vec::new(),
                };
            }
            spec.cwd = dir.clone();
            Some(dir)
        }
        _ => None,
    };
    let scored = run_in(ctx, task, attempt, workdir, score, spec, stop).await;
    if let Some(dir) = checkout {
        let removed =
            tokio::task::spawn_blocking(move || crate::untrusted::TaskDir::discard(&dir)).await;
        if let Ok(Err(e)) = removed {
            tracing::warn!(task = %task.id, error = %e, "failed to remove the scorer's checkout");
        }
    }
    scored
}

/// A checkout at `dir` of the worktree at `workdir` as it is now (its git
/// directory `git_dir`, its base `base`), for an unconfined scorer.
fn own_checkout(
    workdir: &Path,
    git_dir: &Path,
    base: git2::Oid,
    task: &Task,
    dir: &Path,
) -> Result<(), String> {
    // Made fresh: whatever an earlier (unconfined) scorer left there goes.
    crate::untrusted::TaskDir::fresh(dir, 0o755).map_err(|e| format!("make {e}"))?;
    let scope = task.checkout();
    let limits = crate::git::SnapshotLimits {
        scope: &scope,
        max_file_size: task.max_file_size,
        // A state commits nothing: nothing is held.
        run: "",
    };
    // Never written into the repository's objects: the worktree is the
    // task's, not yet through its result check.
    crate::git::state_into(workdir, git_dir, base, limits, dir)
        .map(drop)
        .map_err(|e| format!("failed to {e}"))
}

/// [`run`] once its command is set up: `score.repeat` runs, each with a
/// fresh HOME, the median of their numbers the score (the first failure
/// the score's error). Every run's number is kept (`Score::runs`).
async fn run_in(
    ctx: &Ctx,
    task: &Task,
    attempt: u32,
    workdir: &Path,
    score: &ScoreCommand,
    spec: CommandSpec,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Score {
    let (mut values, mut duration_ms) = (Vec::new(), 0);
    for _ in 0..score.repeat.max(1) {
        let run = run_once(ctx, task, attempt, workdir, score, spec.clone(), stop).await;
        duration_ms += run.duration_ms;
        match run.value {
            Some(value) => values.push(value),
            None => return Score { duration_ms, ..run },
        }
    }
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = match sorted.len() % 2 {
        1 => sorted[mid],
        _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
    };
    Score {
        value: Some(median),
        error: None,
        duration_ms,
        runs: match values.len() {
            1 => Vec::new(),
            _ => values,
        },
    }
}

/// One run of the score command.
async fn run_once(
    ctx: &Ctx,
    task: &Task,
    attempt: u32,
    workdir: &Path,
    score: &ScoreCommand,
    mut spec: CommandSpec,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Score {
    // Its own output only: the runs before it wrote to the same log.
    #[allow(
        clippy::disallowed_methods,
        reason = "the scorer's log, swarm's own file"
    )]
    let from = std::fs::metadata(&spec.stdout).map_or(0, |m| m.len());
    let home = crate::layout::score_home(&ctx.run_dir, &task.id);
    let made = {
        let (home, sandboxed) = (home.clone(), spec.sandbox.is_some());
        tokio::task::spawn_blocking(move || fresh_home(&home, sandboxed))
            .await
            .map_err(|e| e.to_string())
            .and_then(|made| made)
    };
    if let Err(e) = made {
        return Score {
            value: None,
            error: Some(format!("score could not run: {e}")),
            duration_ms: 0,
            runs: Vec::new(),
        };
    }
    // The variant's private tmp (its HOME), the TMPDIR kept with its warm
    // worktree if it has one, and the build caches of its own it got if
    // another run held its caches: the variant's, as its HOME is.
    let variant_tmp = crate::layout::task_tmp(&ctx.run_dir, &task.id);
    let private_caches = crate::layout::own_caches_tmp(&ctx.run_dir, &task.id);
    let kept_tmp = ctx.kept_tmp_path(task, workdir);
    let variant_tmps: Vec<&Path> = [variant_tmp.as_path(), private_caches.as_path()]
        .into_iter()
        .chain(kept_tmp.as_deref())
        .collect();
    let caches: Vec<&Path> = ctx.caches.iter().map(|c| c.dir.as_path()).collect();
    let cache_vars: Vec<&str> = ctx.caches.iter().map(|c| c.var.as_str()).collect();
    isolate(&mut spec, &home, &variant_tmps, &caches, &cache_vars);
    let started = Instant::now();
    // The scorer runs in the task's sandbox, network list included.
    let egress = super::egress::Egress::of(ctx, task, attempt);
    let outcome = super::egress::run_command(&spec, egress.as_ref(), stop).await;
    let duration_ms = crate::millis(started.elapsed());
    {
        let home = home.clone();
        let removed =
            tokio::task::spawn_blocking(move || crate::untrusted::TaskDir::discard(&home)).await;
        if let Ok(Err(e)) = removed {
            tracing::warn!(task = %task.id, error = %e, "failed to remove the scorer's home");
        }
    }
    let failed = |error: String| Score {
        value: None,
        error: Some(error),
        duration_ms,
        runs: Vec::new(),
    };
    match outcome {
        AttemptOutcome::Exited { code: 0 } => {}
        AttemptOutcome::TimedOut => {
            return failed(format!(
                "score timed out after {}",
                humantime::format_duration(score.timeout)
            ));
        }
        AttemptOutcome::Stalled { .. } => return failed("score stalled".into()),
        AttemptOutcome::Exited { code } => {
            return failed(format!(
                "score exited with {code}, see {}",
                spec.stderr.display()
            ));
        }
        AttemptOutcome::Cancelled => return failed("score was cancelled".into()),
        AttemptOutcome::Signaled { signal } => {
            return failed(format!(
                "score was killed by {}",
                super::describe::signal_named(signal)
            ));
        }
        AttemptOutcome::SpawnFailed { message }
        | AttemptOutcome::Trapped { message }
        | AttemptOutcome::Lost { message } => {
            return failed(format!("score could not run: {message}"));
        }
        AttemptOutcome::OutOfMemory { .. } => return failed("score ran out of memory".into()),
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "the scorer's log, swarm's own file"
    )]
    let text = std::fs::read(&spec.stdout).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    match parse(&text) {
        Ok(value) => Score {
            value: Some(value),
            error: None,
            duration_ms,
            runs: Vec::new(),
        },
        Err(why) => failed(format!("{why} (see {})", spec.stdout.display())),
    }
}

/// The score in a score command's output: its last non-empty line, a
/// finite number.
pub(crate) fn parse(output: &str) -> Result<f64, String> {
    let Some(last) = output.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
        return Err("score printed nothing; it must print one number".into());
    };
    match last.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => {
            let shown: String = last.chars().take(60).collect();
            Err(format!(
                "score printed no number: its last line is `{shown}`"
            ))
        }
    }
}

/// Makes `home`, empty (whatever an earlier scorer left there goes), with
/// a git configuration that trusts root's checkouts and, for a sandboxed
/// scorer run as root, owned by the sandbox's identity.
fn fresh_home(home: &Path, sandboxed: bool) -> Result<(), String> {
    let home = crate::untrusted::TaskDir::fresh(home, 0o700).map_err(|e| format!("make {e}"))?;
    if sandboxed && swarm_sandbox::worker_identity().is_some() {
        super::worker_files::trust_checkouts(&home).map_err(|e| format!("write {e}"))?;
        swarm_sandbox::ownership::hand_over(home.path(), swarm_sandbox::SANDBOX_IDENTITY)
            .map_err(|e| format!("failed to {e}"))?;
    }
    Ok(())
}

/// `spec` for a scorer whose HOME and TMPDIR are `home`, that neither
/// reads nor writes `variant_tmps` (the variant's private tmp, its HOME,
/// and its kept TMPDIR) or the build `caches`, and whose cargo builds
/// into `home`.
fn isolate(
    spec: &mut CommandSpec,
    home: &Path,
    variant_tmps: &[&Path],
    caches: &[&Path],
    cache_vars: &[&str],
) {
    let foreign = |p: &Path| variant_tmps.iter().chain(caches).any(|t| p.starts_with(t));
    let points_in = |value: &str| foreign(Path::new(value));
    let had_target = spec.env.iter().any(|(k, _)| k == "CARGO_TARGET_DIR");
    spec.env.retain(|(k, v)| {
        !matches!(k.as_str(), "HOME" | "TMPDIR" | "CARGO_TARGET_DIR")
            && k != crate::run::spawn::REQUEST_VAR
            && !cache_vars.contains(&k.as_str())
            && !points_in(v)
    });
    let home_text = home.display().to_string();
    spec.env.push(("TMPDIR".into(), home_text.clone()));
    if had_target {
        spec.env.push((
            "CARGO_TARGET_DIR".into(),
            home.join("target").display().to_string(),
        ));
    }
    if let Some(sandbox) = &mut spec.sandbox {
        // Unconfined, HOME is the user's, as for every unconfined command.
        spec.env.push(("HOME".into(), home_text));
        let policy = &mut sandbox.policy;
        policy.read_write.retain(|p| !foreign(p));
        policy.read_only.retain(|p| !foreign(p));
        policy.read_write.push(home.to_path_buf());
    }
}

/// `policy` with everything of the worktree read-only (its private tmp
/// and caches stay writable).
fn read_only_worktree(policy: &mut Policy, workdir: &Path) {
    policy.read_write.retain(|p| !p.starts_with(workdir));
    // Nothing of it is shown writable, through an idmapped copy either.
    policy.idmapped.retain(|p| !p.starts_with(workdir));
    if !policy.read_only.iter().any(|p| p == workdir) {
        policy.read_only.push(workdir.to_path_buf());
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_last_line_is_the_score() {
        assert_eq!(parse("warming up\n12.5\n"), Ok(12.5));
        assert_eq!(parse("  42  \n\n"), Ok(42.0));
        assert_eq!(parse("-3e2"), Ok(-300.0));
        let none = parse("").unwrap_err();
        assert!(none.contains("printed nothing"), "{none}");
        let words = parse("1\nfast enough\n").unwrap_err();
        assert!(words.contains("`fast enough`"), "{words}");
        assert!(parse("NaN").is_err());
        assert!(parse("inf").is_err());
    }
}
