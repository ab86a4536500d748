//! The dispatcher: the one owner of a run's state.
//!
//! It starts ready tasks (longest remaining critical path first, up to the
//! concurrency limit), waits on task completions, progress messages and stop
//! requests in one `select!`, merges results into the integration branch in
//! a fixed topological order, and writes every state change to the journal.
//! Task workers never change run state; they send messages.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use git2::Oid;
use swarm_protocol::{
    Event, EventBody, Isolation, RunReport, SCHEMA_VERSION, TaskInfo, TaskStatus,
};
use swarm_sandbox::Stop;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinSet;

use super::lock::RunLock;
use super::task::{self, Ctx, Done, Progress};
use super::{Prepared, RunError};
use crate::gateway::AgentNote;
use crate::git::{GitError, MergeOutcome, Merger, Worktrees, refs};
use crate::graph::TaskGraph;
use crate::journal::Journal;
use crate::plan::{History, OnFailure};
use crate::report::ReportBuilder;
use crate::worktree_home::WorktreeHome;

fn io(action: String) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Io { action, source }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Removes the shared read-only checkouts a dead coordinator left (they
/// hold nothing to keep).
fn remove_readonly_checkouts(repo: &crate::git::Repo, worktree_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(worktree_dir) else {
        return;
    };
    let worktrees = Worktrees::new(repo.clone());
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".readonly-")
            && let Err(e) = worktrees.remove(&entry.path(), None)
        {
            tracing::warn!(path = %entry.path().display(), error = %e, "failed to remove a stale checkout");
        }
    }
}

/// The build caches of a sandboxed run, created (writable by the identity
/// its tasks run as).
fn cache_dirs(prepared: &Prepared, home: &WorktreeHome) -> Result<Vec<task::Cache>, RunError> {
    if prepared.options.sandbox.is_none() {
        return Ok(Vec::new());
    }
    let owner = swarm_sandbox::worker_identity();
    prepared
        .options
        .caches
        .iter()
        .map(|c| {
            Ok(task::Cache {
                var: c.var.clone(),
                dir: home.cache_dir(&c.name, owner)?,
                per_task: c.per_task,
            })
        })
        .collect()
}

/// Why no new task is being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    /// A task failed and the plan says `on_failure = "stop"`.
    Failure,
    /// The user (or a signal) asked the run to stop.
    Cancel,
}

pub(super) struct Dispatcher<'o> {
    ctx: Arc<Ctx>,
    graph: TaskGraph,
    on_failure: OnFailure,
    history: History,
    concurrency: usize,
    base_commit: Oid,
    status: Vec<TaskStatus>,
    /// Each finished task's result commit.
    result: Vec<Option<Oid>>,
    /// Dependencies not yet succeeded, per task.
    waiting_on: Vec<usize>,
    ready: BinaryHeap<(usize, Reverse<usize>)>,
    /// Ready tasks waiting for memory to become available.
    deferred: Vec<(usize, Reverse<usize>)>,
    running: JoinSet<Done>,
    progress: mpsc::UnboundedReceiver<Progress>,
    /// Next position in the merge order.
    cursor: usize,
    integration: Oid,
    merger: Merger,
    stopping: Option<Stopping>,
    stop: watch::Receiver<Option<Stop>>,
    journal: Journal,
    report: ReportBuilder,
    observer: &'o mut (dyn FnMut(&Event) + Send),
    started: Instant,
    cleanup: JoinSet<()>,
    /// The attempt number each task starts at (1, or more when resumed).
    next_attempt: Vec<u32>,
    /// Held while this dispatcher drives the run.
    _lock: RunLock,
}

impl<'o> Dispatcher<'o> {
    /// Creates the run's directories, refs and journal, and announces it.
    pub(super) fn start(
        prepared: Prepared,
        home: &WorktreeHome,
        observer: &'o mut (dyn FnMut(&Event) + Send),
        stop: watch::Receiver<Option<Stop>>,
    ) -> Result<Self, RunError> {
        let run_dir = prepared.run_dir();
        std::fs::create_dir_all(run_dir.join("logs"))
            .map_err(io(format!("create {}", run_dir.display())))?;
        let lock = RunLock::acquire(&run_dir, &prepared.run)?;
        let runs = run_dir.parent().map(|p| p.join("latest"));
        if let Some(latest) = runs {
            std::fs::write(&latest, format!("{}\n", prepared.run))
                .map_err(io(format!("write {}", latest.display())))?;
        }
        // `swarm resume` runs exactly this plan, whatever becomes of the file.
        let saved = run_dir.join("plan.toml");
        std::fs::write(&saved, prepared.plan.source.text.as_bytes())
            .map_err(io(format!("write {}", saved.display())))?;
        prepared
            .repo
            .exclude(&format!("/{}/", crate::state::STATE_DIR))?;
        // A run of read-only tasks merges nothing: a branch would only be
        // one more thing to clean up.
        let branch = (!prepared
            .plan
            .tasks
            .iter()
            .all(|t| t.isolation == Isolation::Readonly))
        .then(|| refs::integration_branch(&prepared.run));
        if branch.is_some() {
            prepared.repo.set_ref(
                &refs::integration(&prepared.run),
                prepared.base_commit,
                "swarm: start run",
            )?;
        }
        let base_commit = prepared.base_commit;
        let plan_path = prepared.plan.path.display().to_string();
        let base = prepared.plan.base.clone();
        let worktree_dir = home.run_dir(&prepared.run);
        let caches = cache_dirs(&prepared, home)?;
        let mut dispatcher = Self::new(prepared, worktree_dir, caches, observer, stop, lock)?;
        let infos = dispatcher.task_infos();
        dispatcher.emit(EventBody::RunStarted {
            run: dispatcher.ctx.run.clone(),
            plan: plan_path,
            repo: dispatcher.ctx.repo.workdir.display().to_string(),
            base,
            base_commit: base_commit.to_string(),
            integration_branch: branch,
            concurrency: dispatcher.concurrency,
            tasks: infos,
            worktrees: Some(home.path().display().to_string()),
        })?;
        dispatcher.announce_ready()?;
        Ok(dispatcher)
    }

    /// Emits `task_queued` for every task in the ready queue.
    fn announce_ready(&mut self) -> Result<(), RunError> {
        let mut queued: Vec<usize> = self.ready.iter().map(|(_, Reverse(i))| *i).collect();
        queued.sort_unstable();
        for i in queued {
            self.emit(EventBody::TaskQueued {
                task: self.ctx.tasks[i].id.clone(),
            })?;
        }
        Ok(())
    }

    /// Takes over a run whose coordinator died or was cancelled: finished
    /// tasks stay finished, merges stay done, interrupted tasks start again
    /// from a clean worktree after their leftovers are committed.
    pub(super) fn resume(
        prepared: Prepared,
        home: &WorktreeHome,
        observer: &'o mut (dyn FnMut(&Event) + Send),
        stop: watch::Receiver<Option<Stop>>,
    ) -> Result<Self, RunError> {
        let run_dir = prepared.run_dir();
        let lock = RunLock::acquire(&run_dir, &prepared.run)?;
        let worktree_dir = home.run_dir(&prepared.run);
        let recovered = super::resume::recover(
            &prepared.repo,
            &Worktrees::new(prepared.repo.clone()),
            &prepared.run,
            &run_dir,
            &worktree_dir,
            &prepared.plan.tasks,
            prepared.options.retry_failed.as_deref(),
        )?;
        remove_readonly_checkouts(&prepared.repo, &worktree_dir);
        let mut prepared = prepared;
        prepared.base_commit = recovered.base_commit;
        let caches = cache_dirs(&prepared, home)?;
        let mut dispatcher = Self::new(prepared, worktree_dir, caches, observer, stop, lock)?;
        // The new observer has not seen the run start.
        (dispatcher.observer)(&recovered.run_started);
        for event in crate::journal::read(dispatcher.journal.path()).unwrap_or_default() {
            dispatcher.report.apply(&event);
        }
        dispatcher.status = recovered.status;
        dispatcher.result = recovered.result;
        dispatcher.next_attempt = recovered.next_attempt;
        dispatcher.integration = recovered.integration;
        let pending: Vec<usize> = (0..dispatcher.status.len())
            .filter(|&i| dispatcher.status[i] == TaskStatus::Pending)
            .collect();
        let ids = |list: &[usize]| -> Vec<String> {
            list.iter()
                .map(|&i| dispatcher.ctx.tasks[i].id.clone())
                .collect()
        };
        let body = EventBody::RunResumed {
            restarted: ids(&recovered.restarted),
            pending: ids(&pending),
            integration_commit: dispatcher.integration.to_string(),
            retried: ids(&recovered.retried),
        };
        dispatcher.emit(body)?;
        dispatcher.ready.clear();
        for i in 0..dispatcher.status.len() {
            dispatcher.waiting_on[i] = dispatcher
                .graph
                .deps(i)
                .filter(|&d| {
                    !matches!(
                        dispatcher.status[d],
                        TaskStatus::Succeeded | TaskStatus::Merged
                    )
                })
                .count();
            if dispatcher.status[i] == TaskStatus::Pending && dispatcher.waiting_on[i] == 0 {
                dispatcher
                    .ready
                    .push((dispatcher.graph.critical_path(i), Reverse(i)));
            }
        }
        // Dependents of what failed before stay blocked.
        for i in 0..dispatcher.status.len() {
            let what = match dispatcher.status[i] {
                TaskStatus::Failed => "failed",
                TaskStatus::TimedOut => "timed out",
                TaskStatus::Conflicted => "conflicted",
                _ => continue,
            };
            dispatcher.block_dependents(i, what)?;
        }
        dispatcher.announce_ready()?;
        Ok(dispatcher)
    }

    /// The dispatcher of `prepared` with nothing started yet.
    fn new(
        prepared: Prepared,
        worktree_dir: PathBuf,
        caches: Vec<task::Cache>,
        observer: &'o mut (dyn FnMut(&Event) + Send),
        stop: watch::Receiver<Option<Stop>>,
        lock: RunLock,
    ) -> Result<Self, RunError> {
        let run_dir = prepared.run_dir();
        let journal_path = run_dir.join("events.jsonl");
        let journal = Journal::create(&journal_path)
            .map_err(io(format!("create {}", journal_path.display())))?;

        let Prepared {
            repo,
            plan,
            run,
            base_commit,
            options,
        } = prepared;
        let merger = Merger::new(&repo)?;
        let graph = TaskGraph::new(&plan.tasks);
        let (tx, rx) = mpsc::unbounded_channel();
        let waiting_on: Vec<usize> = (0..plan.tasks.len())
            .map(|i| graph.deps(i).count())
            .collect();
        let mut ready = BinaryHeap::new();
        for (i, n) in waiting_on.iter().enumerate() {
            if *n == 0 {
                ready.push((graph.critical_path(i), Reverse(i)));
            }
        }
        let n = plan.tasks.len();
        // Only tasks that set limits get cgroups (see task.rs): a run
        // without any makes none.
        let limited = plan.tasks.iter().any(|t| {
            !super::task::in_process(&t.payload) && (t.memory.is_some() || t.processes.is_some())
        });
        let cgroups = limited.then(|| super::cgroup::Cgroups::new(&run)).flatten();
        let ctx = Arc::new(Ctx {
            worktrees: Worktrees::new(repo.clone()),
            repo,
            run,
            run_dir,
            worktree_dir,
            caches,
            tasks: plan.tasks,
            grace: options.grace,
            sandbox: options.sandbox,
            read_paths: options.read_paths,
            wasm: options.wasm,
            gateway: options.gateway,
            agent_program: options.agent_program,
            secret_vars: plan
                .models
                .values()
                .filter_map(|m| m.api_key_env.clone())
                .collect(),
            min_free_space: plan.min_free_space,
            cgroups,
            readonly: Mutex::new(HashMap::new()),
            progress: tx,
        });
        let dispatcher = Self {
            graph,
            on_failure: plan.on_failure,
            history: plan.history,
            concurrency: options.concurrency.max(1),
            base_commit,
            status: vec![TaskStatus::Pending; n],
            result: vec![None; n],
            waiting_on,
            ready,
            deferred: Vec::new(),
            running: JoinSet::new(),
            progress: rx,
            cursor: 0,
            integration: base_commit,
            merger,
            stopping: None,
            stop,
            journal,
            report: ReportBuilder::default(),
            observer,
            started: Instant::now(),
            cleanup: JoinSet::new(),
            next_attempt: vec![1; n],
            _lock: lock,
            ctx,
        };
        Ok(dispatcher)
    }

    /// Every task as announced at the start of a run, in merge order.
    fn task_infos(&self) -> Vec<TaskInfo> {
        self.graph
            .merge_order()
            .iter()
            .map(|&i| {
                let t = &self.ctx.tasks[i];
                TaskInfo {
                    id: t.id.clone(),
                    kind: t.kind(),
                    isolation: t.isolation,
                    deps: t.deps.clone(),
                }
            })
            .collect()
    }

    fn emit(&mut self, body: EventBody) -> Result<(), RunError> {
        let event = Event {
            v: SCHEMA_VERSION,
            ts: crate::timestamp(SystemTime::now()),
            body,
        };
        self.journal.append(&event).map_err(|source| RunError::Io {
            action: format!("write journal {}", self.journal.path().display()),
            source,
        })?;
        self.report.apply(&event);
        (self.observer)(&event);
        Ok(())
    }

    pub(super) async fn run(mut self) -> Result<RunReport, RunError> {
        loop {
            self.dispatch()?;
            if self.running.is_empty() {
                break;
            }
            let listen_for_stop = self.stopping != Some(Stopping::Cancel);
            tokio::select! {
                Some(progress) = self.progress.recv() => self.on_progress(progress)?,
                Some(joined) = self.running.join_next() => {
                    // Progress sent before the task ended comes first.
                    while let Ok(progress) = self.progress.try_recv() {
                        self.on_progress(progress)?;
                    }
                    match joined {
                        Ok(done) => self.on_done(done)?,
                        Err(e) => return Err(RunError::Io {
                            action: "run a task".into(),
                            source: std::io::Error::other(e.to_string()),
                        }),
                    }
                }
                Ok(()) = self.stop.changed(), if listen_for_stop => {
                    if self.stop.borrow().is_some() {
                        self.stopping = Some(Stopping::Cancel);
                    }
                }
            }
        }
        self.finish().await
    }

    /// Starts ready tasks while there is room.
    fn dispatch(&mut self) -> Result<(), RunError> {
        // Tasks that waited for memory get another chance each time.
        self.ready.extend(self.deferred.drain(..));
        if self.stop.borrow().is_some() {
            self.stopping = Some(Stopping::Cancel);
        }
        while self.stopping.is_none() && self.running.len() < self.concurrency {
            let Some((_, Reverse(i))) = self.ready.pop() else {
                break;
            };
            if self.status[i] != TaskStatus::Pending {
                continue;
            }
            // Admission: a task that says how much memory it needs waits
            // until that much is available; with nothing else running to
            // wait for, it fails, saying so.
            if let Some(need) = self.ctx.tasks[i].memory
                && let Some(available) = mem_available()
                && need > available
            {
                if !self.running.is_empty() {
                    self.deferred
                        .push((self.graph.critical_path(i), Reverse(i)));
                    continue;
                }
                self.status[i] = TaskStatus::Failed;
                let reason = format!(
                    "not started: it needs {} of memory (`memory`) and the machine has {} available",
                    bytesize::ByteSize::b(need),
                    bytesize::ByteSize::b(available)
                );
                self.emit(EventBody::TaskFinished {
                    task: self.ctx.tasks[i].id.clone(),
                    status: TaskStatus::Failed,
                    reason: Some(reason),
                })?;
                self.block_dependents(i, "failed")?;
                if self.on_failure == OnFailure::Stop {
                    self.stopping.get_or_insert(Stopping::Failure);
                }
                continue;
            }
            self.status[i] = TaskStatus::Running;
            let deps: Vec<Oid> = {
                let mut deps: Vec<usize> = self.graph.deps(i).collect();
                deps.sort_unstable();
                deps.iter().filter_map(|&d| self.result[d]).collect()
            };
            let ctx = Arc::clone(&self.ctx);
            let stop = self.stop.clone();
            let base = self.base_commit;
            let first = self.next_attempt[i];
            // A span per task, so that logs of many workers can be told apart.
            let span = tracing::info_span!("task", id = %self.ctx.tasks[i].id, attempt = first);
            self.running.spawn(tracing::Instrument::instrument(
                task::execute(ctx, i, base, deps, first, stop),
                span,
            ));
        }
        Ok(())
    }

    fn on_progress(&mut self, progress: Progress) -> Result<(), RunError> {
        match progress {
            Progress::Agent { task, note } => {
                let task = self.ctx.tasks[task].id.clone();
                self.emit(match note {
                    AgentNote::Tool { name, detail } => EventBody::AgentTool { task, name, detail },
                    AgentNote::Usage {
                        turn,
                        usage,
                        total,
                        cost_usd,
                    } => EventBody::AgentUsage {
                        task,
                        turn,
                        usage,
                        total,
                        cost_usd,
                    },
                    AgentNote::Budget { message } => EventBody::BudgetSpent { task, message },
                })
            }
            Progress::Started {
                task,
                attempt,
                base,
                workdir,
            } => self.emit(EventBody::TaskStarted {
                task: self.ctx.tasks[task].id.clone(),
                attempt,
                base_commit: base.to_string(),
                workdir: workdir.display().to_string(),
            }),
            Progress::AttemptFinished {
                task,
                attempt,
                outcome,
                verify_passed,
                duration,
                snapshot,
                agent,
            } => {
                let (commit, git_ref, changed, skipped, snapshot_ms) = match snapshot.map(|b| *b) {
                    Some((snap, r)) => (
                        Some(snap.commit.to_string()),
                        Some(r),
                        snap.changed,
                        snap.skipped,
                        Some(u64::try_from(snap.duration.as_millis()).unwrap_or(u64::MAX)),
                    ),
                    None => (None, None, Vec::new(), Vec::new(), None),
                };
                self.emit(EventBody::AttemptFinished {
                    task: self.ctx.tasks[task].id.clone(),
                    attempt,
                    outcome,
                    verify_passed,
                    duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                    commit,
                    git_ref,
                    changed_files: changed,
                    skipped_files: skipped,
                    snapshot_ms,
                    agent,
                })
            }
        }
    }

    fn on_done(&mut self, done: Done) -> Result<(), RunError> {
        let i = done.task;
        self.status[i] = done.status;
        self.result[i] = done.result;
        self.emit(EventBody::TaskFinished {
            task: self.ctx.tasks[i].id.clone(),
            status: done.status,
            reason: done.reason,
        })?;
        if let Some((path, admin)) = done.removable {
            // Its work is on its ref; deleting the tree must not delay anyone.
            let ctx = Arc::clone(&self.ctx);
            self.cleanup.spawn_blocking(move || {
                if let Err(e) = ctx.worktrees.remove(&path, Some(&admin)) {
                    tracing::warn!(path = %path.display(), error = %e, "failed to remove worktree");
                }
            });
        }
        if done.status == TaskStatus::Succeeded {
            // Its private tmp and its view of the git directory are scratch,
            // gone with its worktree (what failed keeps them, for a look).
            let tmp = self.ctx.run_dir.join("tmp");
            let id = self.ctx.tasks[i].id.clone();
            self.cleanup.spawn_blocking(move || {
                for dir in [tmp.join(&id), tmp.join(format!("{id}.git"))] {
                    match std::fs::remove_dir_all(&dir) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            tracing::warn!(path = %dir.display(), error = %e, "failed to remove a task's tmp directory");
                        }
                        _ => {}
                    }
                }
            });
            let dependents: Vec<usize> = self.graph.dependents(i).collect();
            for d in dependents {
                self.waiting_on[d] -= 1;
                if self.waiting_on[d] == 0 && self.status[d] == TaskStatus::Pending {
                    self.ready.push((self.graph.critical_path(d), Reverse(d)));
                    self.emit(EventBody::TaskQueued {
                        task: self.ctx.tasks[d].id.clone(),
                    })?;
                }
            }
        } else {
            let what = match done.status {
                TaskStatus::Blocked => "was blocked",
                TaskStatus::Cancelled => "was cancelled",
                TaskStatus::TimedOut => "timed out",
                _ => "failed",
            };
            self.block_dependents(i, what)?;
            if self.on_failure == OnFailure::Stop
                && matches!(done.status, TaskStatus::Failed | TaskStatus::TimedOut)
            {
                self.stopping.get_or_insert(Stopping::Failure);
            }
        }
        self.advance_merges()
    }

    /// Marks every pending task that depends on `i` (directly or not) blocked.
    fn block_dependents(&mut self, i: usize, what: &str) -> Result<(), RunError> {
        let mut stack: Vec<usize> = self.graph.dependents(i).collect();
        let reason = format!("dependency `{}` {what}", self.ctx.tasks[i].id);
        while let Some(d) = stack.pop() {
            if self.status[d] != TaskStatus::Pending {
                continue;
            }
            self.status[d] = TaskStatus::Blocked;
            self.emit(EventBody::TaskFinished {
                task: self.ctx.tasks[d].id.clone(),
                status: TaskStatus::Blocked,
                reason: Some(reason.clone()),
            })?;
            stack.extend(self.graph.dependents(d));
        }
        Ok(())
    }

    /// Merges finished tasks into the integration branch, strictly in merge
    /// order, so that the same plan always gives the same history and the
    /// same conflicts whatever order tasks finished in.
    fn advance_merges(&mut self) -> Result<(), RunError> {
        while let Some(&i) = self.graph.merge_order().get(self.cursor) {
            match self.status[i] {
                TaskStatus::Pending | TaskStatus::Running => return Ok(()),
                TaskStatus::Succeeded => self.merge(i)?,
                _ => {}
            }
            self.cursor += 1;
        }
        Ok(())
    }

    fn merge(&mut self, i: usize) -> Result<(), RunError> {
        let id = self.ctx.tasks[i].id.clone();
        let unmerged_dep = self.graph.deps(i).find(|&d| !self.is_in_integration(d));
        if let Some(d) = unmerged_dep {
            self.status[i] = TaskStatus::Blocked;
            return self.emit(EventBody::TaskFinished {
                task: id,
                status: TaskStatus::Blocked,
                reason: Some(format!(
                    "dependency `{}` {}, so its result cannot be merged",
                    self.ctx.tasks[d].id, self.status[d]
                )),
            });
        }
        if self.ctx.tasks[i].isolation == Isolation::Readonly {
            return Ok(());
        }
        let Some(commit) = self.result[i] else {
            return Ok(());
        };
        let squash = self.history == History::Squash;
        let message = format!(
            "swarm: {} {}/{id}\n\nSwarm-Run: {}\nSwarm-Task: {id}\n",
            if squash { "squash" } else { "merge" },
            self.ctx.run,
            self.ctx.run
        );
        let outcome = if squash {
            self.merger.squash(self.integration, commit, &message)?
        } else {
            self.merger.merge(self.integration, commit, &message)?
        };
        match outcome {
            MergeOutcome::Merged(new) => {
                self.ctx.repo.set_ref(
                    &refs::integration(&self.ctx.run),
                    new,
                    &format!("swarm: merge {id}"),
                )?;
                self.integration = new;
            }
            MergeOutcome::AlreadyIn => {}
            MergeOutcome::Conflict(files) => {
                self.status[i] = TaskStatus::Conflicted;
                let (hunks, touched_by) = self.conflict_details(commit, &files);
                let with = match touched_by.as_slice() {
                    [] => String::new(),
                    tasks => format!(", also changed by {}", tasks.join(", ")),
                };
                self.emit(EventBody::TaskConflicted {
                    task: id.clone(),
                    commit: commit.to_string(),
                    files: files.clone(),
                    hunks,
                    touched_by,
                })?;
                self.emit(EventBody::TaskFinished {
                    task: id,
                    status: TaskStatus::Conflicted,
                    reason: Some(format!(
                        "conflicts with the integration branch in {}{with}",
                        files.join(", ")
                    )),
                })?;
                if self.on_failure == OnFailure::Stop {
                    self.stopping.get_or_insert(Stopping::Failure);
                }
                return self.block_dependents(i, "conflicted");
            }
        }
        self.status[i] = TaskStatus::Merged;
        self.emit(EventBody::TaskMerged {
            task: id,
            commit: commit.to_string(),
            integration_commit: self.integration.to_string(),
            resolved: false,
        })
    }

    /// Where `commit` conflicts with the integration branch, and which
    /// merged tasks changed those files: what the user needs to resolve it.
    /// Best effort: the conflict itself is already known.
    fn conflict_details(
        &self,
        commit: Oid,
        files: &[String],
    ) -> (Vec<swarm_protocol::ConflictHunk>, Vec<String>) {
        let hunks = self
            .merger
            .conflict_hunks(self.integration, commit, self.history == History::Squash)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "failed to find the conflicting lines");
                Vec::new()
            });
        let touched_by = self
            .report
            .report()
            .map(|r| {
                r.tasks
                    .iter()
                    .filter(|t| t.status == TaskStatus::Merged)
                    .filter(|t| t.changed_files.iter().any(|f| files.contains(f)))
                    .map(|t| t.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        (hunks, touched_by)
    }

    fn is_in_integration(&self, i: usize) -> bool {
        match self.status[i] {
            TaskStatus::Merged => true,
            TaskStatus::Succeeded => self.ctx.tasks[i].isolation == Isolation::Readonly,
            _ => false,
        }
    }

    async fn finish(mut self) -> Result<RunReport, RunError> {
        let leftover = match self.stopping {
            Some(Stopping::Cancel) => (
                TaskStatus::Cancelled,
                "the run was cancelled before it started",
            ),
            _ => (
                TaskStatus::Skipped,
                "the run stopped after a failure before it started",
            ),
        };
        for i in 0..self.status.len() {
            if self.status[i] == TaskStatus::Pending {
                self.status[i] = leftover.0;
                self.emit(EventBody::TaskFinished {
                    task: self.ctx.tasks[i].id.clone(),
                    status: leftover.0,
                    reason: Some(leftover.1.into()),
                })?;
            }
        }
        self.advance_merges()?;

        // Deleting worktrees of merged tasks overlaps with the merges above;
        // here we only wait for what is left of it.
        while self.cleanup.join_next().await.is_some() {}
        let readonly: Vec<_> = self
            .ctx
            .readonly
            .lock()
            .await
            .drain()
            .map(|(_, p)| p)
            .collect();
        let ctx = Arc::clone(&self.ctx);
        // `remove` deletes each worktree's metadata too, so no `git worktree
        // prune` (a process spawn) is needed at the end of every run.
        let pruned = tokio::task::spawn_blocking(move || -> Result<(), GitError> {
            for (path, admin) in readonly {
                ctx.worktrees.remove(&path, Some(&admin))?;
            }
            Ok(())
        })
        .await;
        match pruned {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "failed to clean up worktrees"),
            Err(e) => tracing::warn!(error = %e, "failed to clean up worktrees"),
        }

        let exit_code = if self.stopping == Some(Stopping::Cancel) {
            crate::exit::INTERRUPTED
        } else if self.status.iter().all(|s| s.is_success()) {
            crate::exit::SUCCESS
        } else {
            crate::exit::TASKS_FAILED
        };
        self.emit(EventBody::RunFinished {
            integration_commit: self.integration.to_string(),
            exit_code,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })?;
        let report = self.report.into_report().ok_or_else(|| RunError::Io {
            action: "build the report".into(),
            source: std::io::Error::other("the journal has no run_started event"),
        })?;
        let path = self.ctx.run_dir.join("report.json");
        let text = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other);
        text.and_then(|t| std::fs::write(&path, t))
            .map_err(|source| RunError::Io {
                action: format!("write {}", path.display()),
                source,
            })?;
        Ok(report)
    }
}
