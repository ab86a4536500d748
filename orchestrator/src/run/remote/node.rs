//! A job's side on a cluster node (`swarm __node`): one attempt of one
//! task, run exactly as the local executor runs it (worktree, sandbox,
//! verify, score, snapshot), in a clone of the shared repository on
//! node-local disk; then its snapshot and exit record pushed back.

use crate::ids::TaskIndex;
use std::path::{Path, PathBuf};

use git2::Oid;
use swarm_protocol::{AttemptOutcome, TaskStatus};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use super::record::{ExitRecord, NodeJob, attempt_ref, exit_ref, write_record};
use crate::git::{GitError, Repo, run_git};
use crate::plan::Plan;
use crate::run::executor::{ExecEvent, Executor as _, Launch};
use crate::run::local::LocalExecutor;
use crate::run::local::task::blocking;
use crate::run::{Prepared, RunError, RunOptions};
use crate::state::State;
use crate::worktree_home::WorktreeHome;

/// Where a job works: `<scratch>/swarm-<run>-<task>-<attempt>-<pid>`.
pub fn job_dir(job: &NodeJob, tmpdir: Option<&Path>) -> PathBuf {
    let scratch = job
        .scratch
        .as_deref()
        .map(PathBuf::from)
        .or_else(|| tmpdir.map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    scratch.join(format!(
        "swarm-{}-{}-{}-{}",
        job.run,
        job.task,
        job.attempt,
        std::process::id()
    ))
}

/// Runs `job` in `dir` on node `node` and pushes its result and exit
/// record to the shared repository. `options` are the run's, made on this
/// node from `plan` (`plan` holds only the job's task). Returns the record
/// pushed. Whatever happens after the clone exists, a record is pushed: a
/// job that cannot run its task says why.
pub async fn run_job(
    job: &NodeJob,
    plan: Plan,
    options: RunOptions,
    dir: &Path,
    node: &str,
    mut stop: watch::Receiver<Option<Stop>>,
) -> Result<ExitRecord, RunError> {
    let base = Oid::from_str(&job.base).map_err(|_| RunError::Io {
        action: format!("read the job's base commit `{}`", job.base),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })?;
    let repo = clone_base(job, dir).await?;
    let logs =
        crate::layout::task_logs(&crate::layout::run_dir(&repo.workdir, &job.run), &job.task);
    let started = std::time::Instant::now();
    let record = match attempt(job, plan, options, &repo, base, &mut stop).await {
        Ok(record) => record,
        Err(e) => {
            let message = format!("swarm could not run it on node {node}: failed to {e}");
            ExitRecord {
                duration_ms: crate::millis(started.elapsed()),
                reason: Some(message.clone()),
                ..ExitRecord::failed(job, AttemptOutcome::SpawnFailed { message })
            }
        }
    };
    let record = ExitRecord {
        node: node.to_string(),
        ..record
    };
    push(job, &repo, &record, &logs).await?;
    Ok(record)
}

/// An empty repository at `<dir>/repo` holding the job's base (fetched
/// shallow: an attempt needs its base's tree, not its history).
async fn clone_base(job: &NodeJob, dir: &Path) -> Result<Repo, RunError> {
    let (job, dir) = (job.clone(), dir.to_path_buf());
    let repo = blocking(move || {
        let path = dir.join("repo");
        std::fs::create_dir_all(&path).map_err(|source| GitError::Io {
            action: format!("create {}", path.display()),
            source,
        })?;
        let init = || format!("make the job's repository in {}", path.display());
        git2::Repository::init(&path).map_err(|e| GitError::Cli {
            action: init(),
            message: e.message().to_string(),
        })?;
        let repo = Repo::discover(&path)?;
        let mut fetch = repo.git(&path);
        fetch.args(["fetch", "-q", "--no-tags", "--depth=1", &job.shared]);
        fetch.arg(format!("{0}:{0}", job.base_ref));
        run_git(fetch, || {
            format!("fetch the base {} from {}", job.base, job.shared)
        })?;
        Ok(repo)
    })
    .await?;
    Ok(repo)
}

/// The attempt itself, through the local executor.
async fn attempt(
    job: &NodeJob,
    mut plan: Plan,
    options: RunOptions,
    repo: &Repo,
    base: Oid,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<ExitRecord, RunError> {
    let Some(index) = plan.tasks.iter().position(|t| t.id == job.task) else {
        return Err(RunError::Io {
            action: format!("find task `{}` in the plan", job.task),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    };
    // The coordinator decides about retries: a job is one attempt.
    plan.tasks[index].retries = 0;
    State::create(&repo.workdir)?.begin_run(&job.run)?;
    let home = WorktreeHome::create(&options.worktree_root, repo)?;
    home.begin_run(&job.run)?;
    let tasks = crate::run::table::TaskTable::new(plan.tasks.clone());
    let prepared = Prepared {
        repo: repo.clone(),
        plan,
        run: job.run.clone(),
        base_commit: base,
        options,
    };
    // A job's attempt cannot hand children to the coordinator.
    let spawner = std::sync::Arc::new(crate::run::spawn::Spawner::disabled(
        &prepared.plan,
        "subtasks need the local executor; this task runs as a Slurm job",
    ));
    let mut executor = LocalExecutor::new(&prepared, tasks, spawner, &home, false)?;
    executor.start(Launch {
        task: TaskIndex::new(index),
        base,
        deps: Vec::new(),
        first_attempt: job.attempt,
    });
    let mut record = ExitRecord::failed(
        job,
        AttemptOutcome::Lost {
            message: "the attempt reported no end".into(),
        },
    );
    let mut stopping = true;
    loop {
        tokio::select! {
            event = executor.next() => match event {
                None => break,
                Some(event) => fold(&mut record, event),
            },
            changed = stop.changed(), if stopping => match changed {
                Ok(()) => {
                    if let Some(how) = *stop.borrow() {
                        executor.cancel(TaskIndex::new(index), how);
                    }
                }
                Err(_) => stopping = false,
            },
        }
    }
    executor.shutdown().await;
    Ok(record)
}

/// What an executor event adds to the record.
fn fold(record: &mut ExitRecord, event: ExecEvent) {
    match event {
        ExecEvent::AttemptFinished {
            outcome,
            verify_passed,
            duration,
            verify,
            snapshot,
            outside_paths,
            agent,
            score,
            diff,
            ..
        } => {
            record.outcome = outcome;
            record.verify_passed = verify_passed;
            record.duration_ms = crate::millis(duration);
            record.verify_ms = verify.map(crate::millis);
            if let Some(snapshot) = snapshot {
                let (snap, _) = *snapshot;
                record.commit = Some(snap.commit.to_string());
                record.changed_files = snap.changed;
                record.skipped_files = snap.skipped;
                record.snapshot_ms = Some(crate::millis(snap.duration));
            }
            record.outside_paths = outside_paths;
            record.agent = agent.map(|a| *a);
            record.score = score.map(|s| *s);
            record.diff = diff;
        }
        ExecEvent::Finished { status, reason, .. } => {
            record.status = status;
            record.reason = reason;
        }
        ExecEvent::Lost { why, .. } => {
            record.status = TaskStatus::Failed;
            record.reason = Some(format!("swarm lost it: {why}"));
        }
        ExecEvent::Started { .. } | ExecEvent::Placed { .. } | ExecEvent::Agent { .. } => {}
    }
}

/// Pushes the snapshot and the exit record to the shared repository, both
/// or neither.
async fn push(
    job: &NodeJob,
    repo: &Repo,
    record: &ExitRecord,
    logs: &Path,
) -> Result<(), RunError> {
    let (job, repo, record, logs) = (
        job.clone(),
        repo.clone(),
        record.clone(),
        logs.to_path_buf(),
    );
    blocking(move || {
        let exit = write_record(&repo, &job.run, &record, &logs)?;
        let mut push = repo.git(&repo.workdir);
        push.args(["push", "-q", "--atomic", &job.shared]);
        if let Some(commit) = &record.commit {
            push.arg(format!(
                "+{commit}:{}",
                attempt_ref(&job.run, &job.task, job.attempt)
            ));
        }
        push.arg(format!(
            "+{exit}:{}",
            exit_ref(&job.run, &job.task, job.attempt)
        ));
        run_git(push, || {
            format!(
                "push the result of {}.{} to {}",
                job.task, job.attempt, job.shared
            )
        })?;
        Ok(())
    })
    .await?;
    Ok(())
}
