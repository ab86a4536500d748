//! A job's side on a cluster node (`swarm __node`): one attempt of one
//! task, or several one after another (`[executor] tasks_per_job`), each
//! run exactly as the local executor runs it (worktree, sandbox, verify,
//! score, snapshot), in a clone of the shared repository on node-local
//! disk; then their snapshots and exit records pushed back.

#![allow(
    clippy::disallowed_methods,
    reason = "a node job's own directory, swarm's"
)]

use crate::ids::TaskIndex;
use std::path::{Path, PathBuf};

use git2::Oid;
use swarm_protocol::{AttemptOutcome, TaskStatus};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use super::record::{ExitRecord, NodeJob, attempt_ref, exit_ref, write_record};
use crate::git::{GitError, Repo, run_git};
use crate::plan::Plan;
use crate::run::blocking::blocking;
use crate::run::error::RunError;
use crate::run::executor::{ExecEvent, Executor as _, Launch};
use crate::run::local::LocalExecutor;
use crate::run::options::RunOptions;
use crate::run::prepared::Prepared;
use crate::state::State;
use crate::worktree_home::WorktreeHome;

/// Why a job's spec gives no attempt to run, as a fragment after "failed
/// to" (its cause, if any, after it).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("read the job's spec (swarm __node is started by a swarm job's script)")]
    Unreadable(#[source] serde_json::Error),
    #[error(
        "read SLURM_ARRAY_TASK_ID: the spec is a job array's, and this job is no array element"
    )]
    NoIndex(#[source] std::env::VarError),
    #[error("read SLURM_ARRAY_TASK_ID `{index}`")]
    BadIndex {
        index: String,
        #[source]
        error: std::num::ParseIntError,
    },
    #[error("the job array's spec has {elements} element(s), none at index {index}")]
    NoElement { elements: usize, index: usize },
    #[error("the job's spec names no attempt")]
    Empty,
    #[error("run job {task}.{attempt}: the plan has no task `{task}`")]
    NoTask { task: String, attempt: u32 },
}

/// This job's attempts, from its spec `text`: a job array's batch, of
/// which it runs the element `index` names (`SLURM_ARRAY_TASK_ID`, as the
/// front end read it), or a lone job's (as jobs submitted before arrays
/// carried). Never empty.
pub fn read_spec(
    text: &str,
    index: Result<String, std::env::VarError>,
) -> Result<Vec<NodeJob>, SpecError> {
    if let Ok(job) = serde_json::from_str::<NodeJob>(text) {
        return Ok(vec![job]);
    }
    let batch: super::NodeBatch = serde_json::from_str(text).map_err(SpecError::Unreadable)?;
    let index = index.map_err(SpecError::NoIndex)?;
    let at: usize = index.trim().parse().map_err(|error| SpecError::BadIndex {
        index: index.clone(),
        error,
    })?;
    let jobs = batch.jobs(at).ok_or_else(|| SpecError::NoElement {
        elements: batch.packs.len().max(batch.elements.len()),
        index: at,
    })?;
    match jobs.is_empty() {
        true => Err(SpecError::Empty),
        false => Ok(jobs),
    }
}

/// The plan of `jobs` (all of one run), with only their tasks; a `glob`
/// of its matrices read in `clone` (this node's clone of the shared
/// repository, at the first job's base), not beside the plan's path on the
/// coordinator, which the node may not see.
pub fn job_plan(jobs: &[NodeJob], clone: &Path) -> Result<Plan, JobPlanError> {
    let Some(job) = jobs.first() else {
        return Err(JobPlanError::Spec(SpecError::Empty));
    };
    let at = crate::plan::origin::files::RunIn {
        repo: clone.to_path_buf(),
        base: Some(job.base.clone()),
    };
    let mut plan = crate::plan::parse_in(Path::new(&job.plan_path), job.plan_text.clone(), at)
        .map_err(JobPlanError::Plan)?;
    // Its shards as the coordinator split them (the plan holds them
    // whole); a sharded task the run does not run (`--only`) is not split.
    let split: Vec<&str> = job.shards.iter().map(|(of, _)| of.as_str()).collect();
    plan.tasks.retain(|t| {
        !matches!(
            t.sharding.as_deref(),
            Some(crate::plan::shards::Sharding::Unsplit { .. })
        ) || split.contains(&t.id.as_str())
    });
    if !job.shards.is_empty() {
        crate::plan::shards::split(&mut plan, &job.shards).map_err(JobPlanError::Split)?;
    }
    plan.tasks.retain(|t| jobs.iter().any(|j| j.task == t.id));
    // A shard runs the entries the coordinator selected (`affected`).
    for task in &mut plan.tasks {
        let selection = jobs
            .iter()
            .find(|j| j.task == task.id)
            .and_then(|j| j.selection.as_ref());
        if let Some(narrowed) = selection.and_then(|s| crate::plan::shards::narrowed(task, s)) {
            *task = narrowed;
        }
    }
    if let Some(missing) = jobs
        .iter()
        .find(|j| !plan.tasks.iter().any(|t| t.id == j.task))
    {
        return Err(JobPlanError::Spec(SpecError::NoTask {
            task: missing.task.clone(),
            attempt: missing.attempt,
        }));
    }
    Ok(plan)
}

/// Why the plan of a job could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JobPlanError {
    #[error(transparent)]
    Plan(Box<crate::plan::PlanError>),
    #[error(transparent)]
    Spec(SpecError),
    #[error(transparent)]
    Split(crate::plan::shards::SplitError),
}

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

/// The node's directory of kept setups for `job`'s shared repository,
/// which every job of it on this node shares:
/// `<cache>/<12 hex digits of the shared repository's name>`, `<cache>`
/// the job's `cache_dir` (`%N` in it the node's name `node`, as in
/// Slurm's own file patterns: a cache per node on a file system the nodes
/// share), else `swarm-cache-<uid>` in its scratch directory (as
/// [`job_dir`]). Made 0700 where missing; an existing one
/// is used only when it is a directory of this user's that no one else
/// may write (no link followed): jobs of another user, or a link planted
/// in a shared `/tmp`, must not feed this job a setup.
pub fn setup_cache(job: &NodeJob, tmpdir: Option<&Path>, node: &str) -> std::io::Result<PathBuf> {
    let root = match &job.cache_dir {
        Some(dir) => PathBuf::from(dir.replace("%N", node)),
        None => job
            .scratch
            .as_deref()
            .map(PathBuf::from)
            .or_else(|| tmpdir.map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join(format!("swarm-cache-{}", nix::unistd::getuid())),
    };
    let shared = Oid::hash_object(git2::ObjectType::Blob, job.shared.as_bytes())
        .map_err(|e| std::io::Error::other(e.message().to_string()))?
        .to_string();
    let dir = root.join(&shared[..12]);
    for at in [&root, &dir] {
        own_dir(at)?;
    }
    Ok(dir)
}

/// `dir`, made (0700) if missing, checked to be a directory (not a link)
/// of this user's that neither group nor others may write.
fn own_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let ours = meta.uid() == nix::unistd::getuid().as_raw();
    if !meta.is_dir() || !ours || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a directory of this user's that only it may write",
            dir.display()
        )));
    }
    Ok(())
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
    stop: watch::Receiver<Option<Stop>>,
) -> Result<ExitRecord, RunError> {
    let jobs = std::slice::from_ref(job);
    let repo = clone_bases(jobs, dir).await?;
    let mut records = run_pack(jobs, repo, plan, options, node, stop).await?;
    records.pop().ok_or_else(|| RunError::Io {
        action: format!("run job {}.{}", job.task, job.attempt),
        source: std::io::Error::other("it left no record"),
    })
}

/// Records of a pack's attempts wait at most this long to be pushed while
/// later ones run: the coordinator hears of them on the way, not all at
/// the end, and a job killed outright loses no more than that.
const PUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `jobs` (attempts of tasks of one run, from the shared repository
/// `jobs[0].shared`) one after another in `dir` on node `node`, and pushes
/// their results and exit records: one fetch of every base they start
/// from, one sandbox launcher (`options`), and a push (in the background,
/// while the next attempt runs) of the records that wait when
/// [`PUSH_EVERY`] has passed since the last, then one of the rest when the
/// last attempt has ended or the job is stopped. A stop (SIGTERM) stops
/// the attempt that runs; those not started yet are recorded as
/// cancelled, never run. `repo` is the node's clone holding every base
/// ([`clone_bases`]); `plan` holds the jobs' tasks. Returns the records,
/// in order.
pub async fn run_pack(
    jobs: &[NodeJob],
    repo: Repo,
    plan: Plan,
    options: RunOptions,
    node: &str,
    mut stop: watch::Receiver<Option<Stop>>,
) -> Result<Vec<ExitRecord>, RunError> {
    let Some(first) = jobs.first() else {
        return Ok(Vec::new());
    };
    let pushing = |done: Vec<(ExitRecord, PathBuf)>| {
        push(first.run.clone(), first.shared.clone(), repo.clone(), done)
    };
    let mut records = Vec::with_capacity(jobs.len());
    let mut waiting: Vec<(ExitRecord, PathBuf)> = Vec::new();
    let mut pushes = Vec::new();
    let mut last_push = tokio::time::Instant::now();
    for job in jobs {
        let logs =
            crate::layout::task_logs(&crate::layout::run_dir(&repo.workdir, &job.run), &job.task);
        let started = std::time::Instant::now();
        let stopped = stop.borrow().is_some();
        let record = match (stopped, Oid::from_str(&job.base)) {
            (true, _) => ExitRecord {
                reason: Some("its job was stopped before it started".into()),
                status: TaskStatus::Cancelled,
                ..ExitRecord::failed(job, AttemptOutcome::Cancelled)
            },
            (false, Err(_)) => ExitRecord::failed(
                job,
                AttemptOutcome::SpawnFailed {
                    message: format!("its base commit `{}` is no commit id", job.base),
                },
            ),
            (false, Ok(base)) => {
                let run = attempt(job, plan.clone(), options.clone(), &repo, base, &mut stop);
                tokio::pin!(run);
                let ran = loop {
                    tokio::select! {
                        ran = &mut run => break ran,
                        () = tokio::time::sleep_until(last_push + PUSH_EVERY), if !waiting.is_empty() => {
                            pushes.push(tokio::spawn(pushing(std::mem::take(&mut waiting))));
                            last_push = tokio::time::Instant::now();
                        }
                    }
                };
                match ran {
                    Ok(record) => record,
                    Err(e) => {
                        let message =
                            format!("swarm could not run it on node {node}: failed to {e}");
                        ExitRecord {
                            duration_ms: crate::millis(started.elapsed()),
                            reason: Some(message.clone()),
                            ..ExitRecord::failed(job, AttemptOutcome::SpawnFailed { message })
                        }
                    }
                }
            }
        };
        let record = ExitRecord {
            node: node.to_string(),
            ..record
        };
        records.push(record.clone());
        waiting.push((record, logs));
        if last_push.elapsed() >= PUSH_EVERY && records.len() < jobs.len() {
            pushes.push(tokio::spawn(pushing(std::mem::take(&mut waiting))));
            last_push = tokio::time::Instant::now();
        }
    }
    let mut result = Ok(());
    for pushed in pushes {
        let done = pushed.await.map_err(|e| RunError::Io {
            action: "push the job's results".into(),
            source: std::io::Error::other(e.to_string()),
        });
        if let Err(e) = done.and_then(|r| r) {
            result = result.and(Err(e));
        }
    }
    if !waiting.is_empty() {
        result = result.and(pushing(waiting).await);
    }
    result.map(|()| records)
}

/// An empty repository at `<dir>/repo` holding the bases of `jobs`
/// (fetched shallow, all in one fetch: an attempt needs its base's tree,
/// not its history).
pub async fn clone_bases(jobs: &[NodeJob], dir: &Path) -> Result<Repo, RunError> {
    let Some(first) = jobs.first() else {
        return Err(RunError::Io {
            action: "run a job".into(),
            source: std::io::Error::other("it has no attempt"),
        });
    };
    let shared = first.shared.clone();
    let mut refs: Vec<(String, String)> = jobs
        .iter()
        .map(|j| (j.base_ref.clone(), j.base.clone()))
        .collect();
    refs.sort();
    refs.dedup();
    let dir = dir.to_path_buf();
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
        fetch.args(["fetch", "-q", "--no-tags", "--depth=1", &shared]);
        fetch.args(refs.iter().map(|(r, _)| format!("{r}:{r}")));
        run_git(fetch, || {
            let bases: Vec<&str> = refs.iter().map(|(_, b)| b.as_str()).collect();
            format!("fetch the base {} from {shared}", bases.join(", "))
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
    let mut executor = LocalExecutor::new(&prepared, tasks, spawner, &home, (false, None))?;
    executor.start(Launch {
        task: TaskIndex::new(index),
        base,
        deps: Vec::new(),
        first_attempt: job.attempt,
        note: None,
        again: false,
    });
    let mut record = ExitRecord::failed(
        job,
        AttemptOutcome::Lost {
            message: "the attempt reported no end".into(),
        },
    );
    // Its agent's notes go to the coordinator as they come.
    let notes = job
        .gateway
        .clone()
        .map(|g| post_notes(g, job.task.clone(), job.attempt));
    let mut stopping = true;
    loop {
        tokio::select! {
            event = executor.next() => match event {
                None => break,
                Some(event) => {
                    if let (Some((to, _)), ExecEvent::Agent { note, .. }) = (&notes, &event) {
                        let _ = to.send(note.clone());
                    }
                    fold(&mut record, event);
                }
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
    // The last notes go before the record (a coordinator gone is no
    // reason to wait long).
    if let Some((to, posting)) = notes {
        drop(to);
        let _ = tokio::time::timeout(NOTES_GRACE, posting).await;
    }
    Ok(record)
}

/// How long an attempt's last notes may take to reach the coordinator.
const NOTES_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A poster of task `task`'s attempt `attempt`'s agent notes to the
/// coordinator's relay (`gateway`), one after another in the order sent;
/// its task ends when the sender is dropped and everything sent was
/// posted. A note that cannot be posted is dropped: notes are for views,
/// the record carries the attempt's result.
fn post_notes(
    gateway: super::record::GatewayAccess,
    task: String,
    attempt: u32,
) -> (
    tokio::sync::mpsc::UnboundedSender<crate::gateway::AgentNote>,
    tokio::task::JoinHandle<()>,
) {
    let (to, mut from) = tokio::sync::mpsc::unbounded_channel::<crate::gateway::AgentNote>();
    let posting = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("{}/notes", gateway.url.trim_end_matches('/'));
        while let Some(note) = from.recv().await {
            let note = crate::gateway::relay::NodeNote {
                task: task.clone(),
                attempt,
                note,
            };
            let Ok(body) = serde_json::to_vec(&note) else {
                continue;
            };
            let sent = client
                .post(&url)
                .bearer_auth(&gateway.token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await;
            if let Err(e) = sent {
                tracing::debug!(error = %e, "failed to post an agent's note to the coordinator");
            }
        }
    });
    (to, posting)
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
        // Its test report's counts go back with the record, its kept cases
        // with the record's logs.
        ExecEvent::Tests { tests, warning, .. } => {
            record.tests = tests.map(|t| *t);
            record.tests_warning = warning;
        }
        // Its setup goes back with the record, for the coordinator's
        // journal.
        ExecEvent::Started { setup_run, .. } => record.setup_run = setup_run,
        // A node starts its attempts itself, never on deck.
        ExecEvent::SetUp { .. }
        | ExecEvent::Placed { .. }
        | ExecEvent::Agent { .. }
        | ExecEvent::Withdrawn { .. } => {}
    }
}

/// Pushes the snapshots and the exit records of `done` (attempts of run
/// `run`, with their logs) to the shared repository `shared`, all or none.
async fn push(
    run: String,
    shared: String,
    repo: Repo,
    done: Vec<(ExitRecord, PathBuf)>,
) -> Result<(), RunError> {
    blocking(move || {
        let mut push = repo.git(&repo.workdir);
        push.args(["push", "-q", "--atomic", &shared]);
        for (record, logs) in &done {
            let exit = write_record(&repo, &run, record, logs)?;
            if let Some(commit) = &record.commit {
                push.arg(format!(
                    "+{commit}:{}",
                    attempt_ref(&run, &record.task, record.attempt)
                ));
            }
            push.arg(format!(
                "+{exit}:{}",
                exit_ref(&run, &record.task, record.attempt)
            ));
        }
        let names: Vec<String> = done
            .iter()
            .map(|(r, _)| format!("{}.{}", r.task, r.attempt))
            .collect();
        run_git(push, || {
            format!("push the result of {} to {shared}", names.join(", "))
        })?;
        Ok(())
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn job(cache_dir: String) -> NodeJob {
        serde_json::from_value(serde_json::json!({
            "run": "r", "task": "t", "attempt": 1, "shared": "/s.git",
            "base": "b", "base_ref": "refs/swarm/r/base.d/b",
            "plan_path": "/p.toml", "plan_text": "", "sandbox": true,
            "grace_ms": 1000, "scratch": null, "gateway": null,
            "cache_dir": cache_dir,
        }))
        .unwrap()
    }

    /// A node's kept setups are used only from a directory of this
    /// user's that no one else may write: one planted as a link (in a
    /// shared `/tmp`, by another user or a job) or left writable to others
    /// is refused, and the job sets up its own.
    #[test]
    fn the_setup_cache_is_never_a_link_nor_writable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let at = |rel: &str| dir.path().join(rel).display().to_string();
        let made = setup_cache(&job(format!("{}/%N", at("cache"))), None, "n1").unwrap();
        assert!(made.starts_with(dir.path().join("cache/n1")));
        let mode = std::fs::metadata(&made).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        // As a default `/tmp/swarm-cache-<uid>` could be planted.
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("planted")).unwrap();
        let linked = setup_cache(&job(at("planted")), None, "n2");
        assert!(linked.is_err(), "{linked:?}");
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());

        let open = dir.path().join("open");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(setup_cache(&job(at("open")), None, "n3").is_err());
    }
}
