//! The dispatcher: the one owner of a run's state.
//!
//! It starts ready tasks (longest remaining critical path first, in the
//! seconds the repository's duration history expects, as the executor
//! admits them), and waits in one `select!` on the executor's
//! events, the writer's merge results and stop requests. It merges results
//! into the integration branch in a fixed topological order, one at a time
//! on the writer's thread, and every state change is an event: applied to
//! the run's fold (its state), shown to the observer and queued for the
//! journal. Nothing slow runs on its thread, so a large merge or an fsync
//! never delays another task's start or a Ctrl-C.

#![allow(
    clippy::disallowed_methods,
    reason = "a run's own files (its saved plan, its kept test cases)"
)]

use crate::ids::TaskIndex;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use git2::Oid;
use swarm_protocol::{
    Event, EventBody, Isolation, RunReport, SCHEMA_VERSION, TaskInfo, TaskStatus,
};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use super::error::RunError;
use super::executor::{Admission, Executor, Launch};
use super::lock::RunLock;
use super::prepared::Prepared;
use super::writer::Writer;
use crate::fold::RunFold;
use crate::git::{Repo, refs};
use crate::graph::TaskGraph;
use crate::journal::Journal;
use crate::plan::{History, OnFailure};
use crate::worktree_home::WorktreeHome;

mod events;
mod experiments;
mod merge_cursor;
mod merging;
mod predict;
mod predict_state;
mod queue;
mod replan_state;
mod replanning;
mod resumed;
mod slots;
mod subtasks;
mod timings;
mod verify_state;
mod verifying;

/// A finished subtree's merge onto its parent's result: the new result,
/// or the files that conflicted.
type Joined = Result<Result<Oid, Vec<String>>, crate::git::GitError>;

fn io(action: String) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Io { action, source }
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
    /// Every task: the plan's, then subtasks as they are spawned.
    tasks: crate::run::table::TaskTable,
    repo: Repo,
    run: String,
    run_dir: std::path::PathBuf,
    executor: Box<dyn Executor>,
    graph: TaskGraph,
    /// What the plan says of the run as a whole.
    settings: RunSettings,
    base_commit: Oid,
    /// The run's state: what its events add up to.
    fold: RunFold,
    /// What the dispatcher keeps about each task, by task index.
    slots: slots::Slots,
    /// Tasks ready to start.
    queue: queue::Queue,
    /// How long tasks took, in earlier runs and in this one.
    timings: timings::Timings,
    /// Where merging into the integration branch stands.
    merges: merge_cursor::MergeCursor,
    writer: Writer,
    stopping: Option<Stopping>,
    stop: watch::Receiver<Option<Stop>>,
    observer: &'o mut (dyn FnMut(&Event) + Send),
    started: Instant,
    /// The model gateway, whose budgets decide whether another variant
    /// may start.
    gateway: Option<Arc<crate::gateway::Gateway>>,
    /// Subtask requests of running attempts, taken when a task succeeds.
    spawner: Arc<super::spawn::Spawner>,
    /// Merges of a finished subtree onto its parent's result, on the
    /// blocking pool.
    joins: tokio::task::JoinSet<(TaskIndex, Joined)>,
    /// Replanning of failed tasks (`[swarm] replan`), when the run has a
    /// model to ask and replans to make.
    replanning: Option<replan_state::Replanning>,
    /// The run-wide verify (`[swarm] verify`), if the plan has one.
    verify: Option<verify_state::Verifying>,
    /// Conflicts predicted (`[swarm] predict_conflicts`), if on.
    predict: Option<predict_state::Predicting>,
    /// Held while this dispatcher drives the run.
    _lock: RunLock,
}

/// What the plan says of the run as a whole.
#[derive(Debug, Clone, Copy)]
struct RunSettings {
    on_failure: OnFailure,
    history: History,
    /// How many tasks run at once (at least one).
    concurrency: usize,
}

impl<'o> Dispatcher<'o> {
    /// Creates the run's refs and journal, and announces it.
    pub(super) fn start(
        mut prepared: Prepared,
        lock: RunLock,
        home: &WorktreeHome,
        observer: &'o mut (dyn FnMut(&Event) + Send),
        stop: watch::Receiver<Option<Stop>>,
    ) -> Result<Self, RunError> {
        // The run's directories and `runs/latest` are made, checked, by
        // `State::begin_run` before the dispatcher starts, and `.swarm`
        // excluded from `git status` by `run::execute` before it is made.
        let run_dir = prepared.run_dir();
        // `swarm resume` runs exactly this plan, whatever becomes of the file.
        let saved = run_dir.join(crate::layout::PLAN);
        std::fs::write(&saved, prepared.plan.source.text.as_bytes())
            .map_err(io(format!("write {}", saved.display())))?;
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
        let origin = crate::plan::origin::recorded(&prepared.plan);
        let base_branch = prepared.repo.branch_of(&prepared.plan.base);
        let plan_tasks = prepared.plan.tasks.len();
        // Before the tasks leave the plan: the spawner reads the WASM
        // modules a subtask may run from them.
        let spawner = Arc::new(super::spawn::Spawner::new(&prepared.plan, plan_tasks));
        // Moved, not copied: the table is where the run's tasks live, and a
        // copy beside the plan's own was the run's peak of memory at its
        // start.
        let tasks = crate::run::table::TaskTable::new(std::mem::take(&mut prepared.plan.tasks));
        let executor = crate::run::executor_for::executor_for(
            &prepared,
            tasks.clone(),
            Arc::clone(&spawner),
            home,
            false,
        )?;
        let verify = verify_state::Verifying::new(&prepared, &tasks, home, base_commit)?;
        let mut dispatcher = Self::new(
            prepared, plan_tasks, tasks, spawner, executor, observer, stop, lock,
        )?;
        dispatcher.verify = verify;
        let infos = dispatcher.task_infos();
        dispatcher.emit(EventBody::RunStarted {
            run: dispatcher.run.clone(),
            plan: plan_path,
            repo: dispatcher.repo.workdir.display().to_string(),
            base,
            base_commit: base_commit.to_string(),
            integration_branch: branch,
            concurrency: dispatcher.settings.concurrency,
            tasks: infos,
            worktrees: Some(home.path().display().to_string()),
            origin,
            base_branch,
        })?;
        // How each task of many entries was split, for `swarm resume`.
        let sharded = dispatcher.shard_groups();
        if !sharded.is_empty() {
            // And what moved since the last run, which a test that fails
            // only now may be why.
            let history = crate::durations::History::load(&dispatcher.repo.workdir);
            for (task, shards) in sharded {
                let moved = history.moved(&task, &shards);
                dispatcher.emit(EventBody::TaskSharded {
                    task,
                    shards,
                    moved,
                })?;
            }
        }
        dispatcher.number_tasks()?;
        dispatcher.announce_ready()?;
        Ok(dispatcher)
    }

    /// The tasks split into shards (`shards`), each with its shards'
    /// entries in order.
    fn shard_groups(&self) -> Vec<(String, Vec<Vec<String>>)> {
        let tasks: Vec<Arc<crate::plan::Task>> =
            self.tasks.indices().map(|i| self.tasks.get(i)).collect();
        crate::plan::shards::groupings(tasks.iter().map(|t| &**t))
    }

    /// [`Self::shard_groups`] of the tasks that run all their shards (a
    /// run of `--only pytest-2` says nothing of how pytest's entries are
    /// grouped).
    fn whole_groupings(&self) -> Vec<(String, Vec<Vec<String>>)> {
        use crate::plan::shards::Sharding;
        let split_into = |of: &str| {
            self.tasks
                .all()
                .iter()
                .find_map(|t| match t.sharding.as_deref() {
                    Some(Sharding::Shard { of: o, count, .. }) if o == of => Some(*count),
                    _ => None,
                })
        };
        self.shard_groups()
            .into_iter()
            .filter(|(of, groups)| split_into(of) == Some(groups.len()))
            .collect()
    }

    /// Queues task `i`, which may start now, and says so.
    fn enqueue(&mut self, i: TaskIndex) -> Result<(), RunError> {
        self.queue.push(i, self.graph.priority(i));
        self.emit(EventBody::TaskQueued {
            task: self.tasks.get(i).id.clone(),
        })
    }

    /// Emits `task_queued` for every task in the ready queue.
    fn announce_ready(&mut self) -> Result<(), RunError> {
        for i in self.queue.queued() {
            self.emit(EventBody::TaskQueued {
                task: self.tasks.get(i).id.clone(),
            })?;
        }
        Ok(())
    }

    /// The dispatcher of `prepared` with nothing started yet, its tasks
    /// (the first `plan_tasks` of them the plan's own, then subtasks) run
    /// by `executor`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        prepared: Prepared,
        plan_tasks: usize,
        tasks: crate::run::table::TaskTable,
        spawner: Arc<super::spawn::Spawner>,
        executor: Box<dyn Executor>,
        observer: &'o mut (dyn FnMut(&Event) + Send),
        stop: watch::Receiver<Option<Stop>>,
        lock: RunLock,
    ) -> Result<Self, RunError> {
        let run_dir = prepared.run_dir();
        let journal_path = run_dir.join(crate::layout::JOURNAL);
        let journal = Journal::create(&journal_path)
            .map_err(io(format!("create {}", journal_path.display())))?;
        let writer = Writer::start(journal, &prepared.repo, &prepared.run)?;
        let Prepared {
            repo,
            plan,
            run,
            base_commit,
            options,
        } = prepared;
        // Subtasks (a resumed run's) are in the graph but not in the merge
        // order: their results reach the branch through their parents'.
        let all = tasks.all();
        let mut graph = TaskGraph::new(&all[..plan_tasks]);
        graph.extend(&all, TaskIndex::new(plan_tasks));
        let timings =
            timings::Timings::new(crate::durations::History::load(&repo.workdir), all.len());
        graph.weigh(timings.expected(&all));
        let mut slots = slots::Slots::with_capacity(all.len());
        let mut queue = queue::Queue::default();
        for (i, t) in TaskIndex::all(all.len()).zip(all.iter()) {
            let waiting_on = graph.deps(i).count();
            if waiting_on == 0 {
                queue.push(i, graph.priority(i));
            }
            let experiment_of = t.variant().and_then(|v| tasks.position(&v.of));
            let parent = crate::ids::parent_of(&t.id).and_then(|p| tasks.position(p));
            slots.push(slots::Slot::new(waiting_on, experiment_of, parent));
        }
        for i in TaskIndex::all(all.len()) {
            if let Some(p) = slots[i].parent {
                slots[p].children.push(i);
            }
        }
        let gateway = options.gateway.clone();
        let predict = plan.predict_conflicts.then(|| {
            predict_state::Predicting::new(
                &all[..plan_tasks],
                graph.merge_order(),
                timings.history(),
            )
        });
        let replan = plan.replan.clone();
        let replanning = match (&gateway, replan.rounds) {
            (Some(gateway), 1..) => Some(super::replan::Replanner {
                gateway: Arc::clone(gateway),
                model: replan.model.clone(),
                spawner: Arc::clone(&spawner),
                repo: repo.clone(),
                transcript: run_dir.join(crate::layout::REPLAN_TRANSCRIPT),
                // What a failure's reason and logs quote of the run's
                // places, for its cassette's keys.
                places: vec![
                    (
                        "<worktrees>".into(),
                        WorktreeHome::path_for(&options.worktree_root, &repo).join(&run),
                    ),
                    ("<run>".into(), run_dir.clone()),
                    ("<repo>".into(), repo.workdir.clone()),
                ],
            }),
            _ => None,
        }
        .map(|replanner| replan_state::Replanning::new(replanner, replan.rounds));
        Ok(Self {
            tasks,
            repo,
            run,
            run_dir,
            executor,
            graph,
            settings: RunSettings {
                on_failure: plan.on_failure,
                history: plan.history,
                concurrency: options.concurrency.max(1),
            },
            base_commit,
            fold: RunFold::default(),
            slots,
            queue,
            timings,
            merges: merge_cursor::MergeCursor::new(base_commit),
            writer,
            stopping: None,
            stop,
            observer,
            started: Instant::now(),
            gateway,
            spawner,
            joins: tokio::task::JoinSet::new(),
            replanning,
            verify: None,
            predict,
            _lock: lock,
        })
    }

    /// Every task as announced at the start of a run, in merge order.
    fn task_infos(&self) -> Vec<TaskInfo> {
        self.graph
            .merge_order()
            .iter()
            .map(|&i| {
                let t = &self.tasks.get(i);
                TaskInfo {
                    id: t.id.clone(),
                    kind: t.kind(),
                    isolation: t.isolation,
                    deps: t.deps.clone(),
                    variant_of: t.variant().map(|v| v.of.clone()),
                }
            })
            .collect()
    }

    /// Numbers the fold's tasks as the table does (`TaskIndex`), once it
    /// has seen `run_started`, and again as subtasks join.
    fn number_tasks(&mut self) -> Result<(), RunError> {
        let all = self.tasks.all();
        self.fold
            .number(all.iter().map(|t| t.id.as_str()))
            .map_err(|id| RunError::NotResumable {
                run: self.run.clone(),
                why: format!("its journal's run_started does not list task `{id}`"),
            })
    }

    /// Where task `i` stands: what its events say, or running from the
    /// moment it is handed to the executor.
    fn status(&self, i: TaskIndex) -> TaskStatus {
        match self.fold.status(i) {
            TaskStatus::Pending if self.slots[i].in_flight() => TaskStatus::Running,
            status => status,
        }
    }

    /// What task `i` gives its dependents and the integration branch.
    fn result(&self, i: TaskIndex) -> Option<Oid> {
        self.fold.result(i)
    }

    /// Records a state change: the journal gets it (its flush queued on the
    /// writer's thread), the fold applies it, the observer sees it.
    fn emit(&mut self, body: EventBody) -> Result<(), RunError> {
        self.emit_at(body, None)
    }

    /// [`Self::emit`], the line stamped `at` (what happened a moment
    /// before it could be recorded) instead of now.
    fn emit_at(&mut self, body: EventBody, at: Option<SystemTime>) -> Result<(), RunError> {
        let event = Event {
            v: SCHEMA_VERSION,
            ts: crate::timestamp(at.unwrap_or_else(SystemTime::now)),
            body,
        };
        self.writer.append(&event)?;
        let tasks = &self.tasks;
        self.timings.record(&event.body, |id| tasks.position(id));
        self.fold.apply(&event);
        (self.observer)(&event);
        Ok(())
    }

    pub(super) async fn run(mut self) -> Result<RunReport, RunError> {
        self.executor.begin();
        loop {
            self.dispatch()?;
            self.drive_verify(false)?;
            // One flush for everything this step wrote.
            self.writer.commit()?;
            let running = self.slots.any_in_flight();
            let verifying = self.verify.as_ref().is_some_and(|v| v.busy());
            let replanning = self
                .replanning
                .as_ref()
                .is_some_and(|r| !r.answers.is_empty());
            if !running
                && !self.merges.busy()
                && self.joins.is_empty()
                && self
                    .replanning
                    .as_ref()
                    .is_none_or(|r| r.answers.is_empty())
                && !verifying
            {
                break;
            }
            tokio::select! {
                event = self.executor.next(), if running => match event {
                    Some(event) => self.on_event(event)?,
                    None => self.lose_all("its executor stopped reporting")?,
                },
                merged = self.writer.next_merged(), if self.merges.busy() => {
                    let (task, merged) = merged?;
                    self.on_merged(task, merged)?;
                }
                Some(joined) = self.joins.join_next(), if !self.joins.is_empty() => {
                self.on_joined(joined)?;
            }
                Some(answered) = replan_state::next_answer(&mut self.replanning), if replanning => {
                self.on_replanned(answered)?;
            }
                done = verify_state::next_done(&mut self.verify), if verifying => {
                    if let Some(done) = done {
                        self.on_verify_done(done)?;
                    }
                }
                Ok(()) = self.stop.changed() => self.on_stop(),
            }
        }
        self.finish().await
    }

    /// A stop request (Ctrl-C, SIGTERM; a second one escalates): no task
    /// starts any more, and every running one is told how to stop.
    fn on_stop(&mut self) {
        let Some(how) = *self.stop.borrow() else {
            return;
        };
        self.stopping = Some(Stopping::Cancel);
        for i in self.tasks.indices() {
            if self.slots[i].in_flight() {
                self.executor.cancel(i, how);
            }
        }
        self.stop_verify(how);
    }

    /// Starts ready tasks while the executor admits them.
    fn dispatch(&mut self) -> Result<(), RunError> {
        // Tasks that waited for memory get another chance each time.
        self.queue.round();
        if self.stop.borrow().is_some() {
            self.stopping = Some(Stopping::Cancel);
        }
        while self.stopping.is_none() {
            let Some(i) = self.queue.next() else {
                break;
            };
            // Not pending any more, or held back since it was queued (a
            // dependency runs again after a conflict): it is queued again
            // when it may start.
            if self.status(i) != TaskStatus::Pending || self.slots[i].waiting_on > 0 {
                self.queue.take();
                continue;
            }
            // Expected to conflict with a running task: it waits for that
            // one's merge.
            if self.held_back(i)? {
                self.queue.take();
                continue;
            }
            match self.executor.admit(i) {
                Admission::Full => {
                    if self.may_deck(i) {
                        let (graph, slots) = (&self.graph, &self.slots);
                        let unlocks = |r: TaskIndex| {
                            let slot = &slots[r];
                            // A variant decides its experiment; a subtask
                            // maybe its parent's end.
                            slot.experiment_of.is_some()
                                || slot.parent.is_some()
                                || graph.dependents(r).any(|d| slots[d].waiting_on == 1)
                        };
                        if self.executor.admit_on_deck(i, &unlocks) {
                            self.queue.take();
                            self.launch(i);
                            continue;
                        }
                    }
                    break;
                }
                Admission::Wait => {
                    self.queue.defer();
                }
                Admission::Refuse(reason) => {
                    self.queue.take();
                    self.on_done(i, TaskStatus::Failed, Some(reason))?;
                }
                Admission::Start => {
                    self.queue.take();
                    // An experiment runs nothing and is never queued: it is
                    // decided when its variants end.
                    debug_assert!(self.tasks.get(i).experiment().is_none());
                    // The budget left stops new variants before it stops
                    // running ones.
                    if let Some(why) = self.budget_stops(i) {
                        self.on_done(i, TaskStatus::Skipped, Some(why))?;
                        continue;
                    }
                    self.launch(i);
                }
            }
        }
        Ok(())
    }

    /// Hands ready task `i` to the executor, which admitted it.
    fn launch(&mut self, i: TaskIndex) {
        self.slots.set_in_flight(i, true);
        // Run again after a conflict, or held for an expected one: on the
        // integration branch as it is, with its dependencies' results (a
        // dependency later in merge order may not be merged yet).
        if let Some(rerun) = self.slots[i].rerun.take() {
            let (base, note) = *rerun;
            let again = self.slots[i].next_attempt > 1;
            let mut deps: Vec<TaskIndex> = self.graph.deps(i).collect();
            deps.sort_unstable();
            let deps = std::iter::once(base)
                .chain(deps.iter().filter_map(|&d| self.result(d)))
                .collect();
            self.executor.start(Launch {
                task: i,
                base,
                deps,
                first_attempt: self.slots[i].next_attempt,
                note,
                again,
            });
            return;
        }
        let mut deps: Vec<TaskIndex> = self.graph.deps(i).collect();
        deps.sort_unstable();
        // A subtask starts from its parent's result, merged with its
        // siblings' it depends on.
        let line = self.slots[i].parent.and_then(|p| self.line_start(p));
        let deps = line
            .into_iter()
            .chain(deps.iter().filter_map(|&d| self.result(d)))
            .collect();
        self.executor.start(Launch {
            task: i,
            base: self.base_commit,
            deps,
            first_attempt: self.slots[i].next_attempt,
            note: None,
            again: false,
        });
    }

    /// Whether task `i` may wait on deck when no place is free (see
    /// [`Executor::admit_on_deck`]): not a variant (an experiment may be
    /// decided before it starts). After a failure, the executor takes back
    /// what waits on deck (`ExecEvent::Withdrawn`), so `on_failure = "stop"`
    /// holds as without it.
    fn may_deck(&self, i: TaskIndex) -> bool {
        self.slots[i].experiment_of.is_none()
    }

    pub(super) fn on_done(
        &mut self,
        i: TaskIndex,
        status: TaskStatus,
        reason: Option<String>,
    ) -> Result<(), RunError> {
        self.slots.set_in_flight(i, false);
        self.spawner.ended(&self.tasks.get(i).id);
        // A task that asked for subtasks and succeeded waits for them.
        if status == TaskStatus::Succeeded
            && let Some(accepted) = self.spawner.take(&self.tasks.get(i).id)
        {
            return self.spawn_children(i, accepted);
        }
        // A task that failed for good may be replanned instead.
        if matches!(
            status,
            TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Stalled
        ) {
            if self.may_replan(i) {
                return self.start_replan(i, status, reason);
            }
            if let Some(rounds) = self
                .replanning
                .as_ref()
                .filter(|r| r.left == 0)
                .map(|r| r.rounds)
            {
                let reason = Some(format!(
                    "{}; not replanned: the run's {} replan{} used up (`replan` in [swarm])",
                    reason.unwrap_or_else(|| status.as_str().to_string()),
                    rounds,
                    if rounds == 1 { " is" } else { "s are" },
                ));
                return self.end_task(i, status, reason);
            }
        }
        self.end_task(i, status, reason)
    }

    /// Task `i` ends with `status`: journaled, and what follows from it.
    pub(super) fn end_task(
        &mut self,
        i: TaskIndex,
        status: TaskStatus,
        reason: Option<String>,
    ) -> Result<(), RunError> {
        let reason = match self.slots[i].superseded.take() {
            Some(why) if status == TaskStatus::Cancelled => Some(why.into()),
            _ => reason,
        };
        self.emit(EventBody::TaskFinished {
            task: self.tasks.get(i).id.clone(),
            status,
            reason,
        })?;
        if let Some(e) = self.slots[i].experiment_of {
            return self.on_variant_done(i, e, status);
        }
        self.after_finished(i, status)?;
        match self.slots[i].parent {
            Some(p) => self.on_child_done(p),
            None => Ok(()),
        }
    }

    /// What follows task `i`'s end: its dependents start or are blocked,
    /// `on_failure` applies, merges go on.
    fn after_finished(&mut self, i: TaskIndex, status: TaskStatus) -> Result<(), RunError> {
        // A re-run after a conflict released its dependents the first time.
        if status == TaskStatus::Succeeded && !std::mem::replace(&mut self.slots[i].released, true)
        {
            let dependents: Vec<TaskIndex> = self.graph.dependents(i).collect();
            for d in dependents {
                self.slots[d].waiting_on = self.slots[d].waiting_on.saturating_sub(1);
                if self.slots[d].waiting_on == 0 && self.status(d) == TaskStatus::Pending {
                    self.enqueue(d)?;
                }
            }
        } else {
            let what = match status {
                TaskStatus::Blocked => "was blocked",
                TaskStatus::Cancelled => "was cancelled",
                TaskStatus::TimedOut => "timed out",
                TaskStatus::Stalled => "stalled",
                _ => "failed",
            };
            self.block_dependents(i, what)?;
            if self.settings.on_failure == OnFailure::Stop
                && matches!(
                    status,
                    TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Stalled
                )
            {
                self.stopping.get_or_insert(Stopping::Failure);
            }
        }
        self.advance_merges()
    }

    /// Marks every pending task that depends on `i` (directly or not) blocked.
    fn block_dependents(&mut self, i: TaskIndex, what: &str) -> Result<(), RunError> {
        let mut stack: Vec<TaskIndex> = self.graph.dependents(i).collect();
        let reason = format!("dependency `{}` {what}", self.tasks.get(i).id);
        while let Some(d) = stack.pop() {
            if self.status(d) != TaskStatus::Pending {
                continue;
            }
            self.emit(EventBody::TaskFinished {
                task: self.tasks.get(d).id.clone(),
                status: TaskStatus::Blocked,
                reason: Some(reason.clone()),
            })?;
            stack.extend(self.graph.dependents(d));
        }
        Ok(())
    }

    /// Ends what will not run now that the run stops: tasks that never
    /// started (cancelled, or skipped after a failure), and tasks waiting
    /// for subtasks that will not all run.
    fn end_leftovers(&mut self) -> Result<(), RunError> {
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
        for i in self.tasks.indices() {
            if self.status(i) == TaskStatus::Pending {
                self.emit(EventBody::TaskFinished {
                    task: self.tasks.get(i).id.clone(),
                    status: leftover.0,
                    reason: Some(leftover.1.into()),
                })?;
            }
        }
        // A task waiting for subtasks that will not run now ends with them
        // (children come after their parents: the deepest first).
        for i in self.tasks.indices().rev() {
            if self.status(i) == TaskStatus::Running && !self.slots[i].in_flight() {
                self.emit(EventBody::TaskFinished {
                    task: self.tasks.get(i).id.clone(),
                    status: leftover.0,
                    reason: Some(format!(
                        "its subtasks did not all run: {}",
                        leftover.1.trim_end_matches(" before it started")
                    )),
                })?;
            }
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<RunReport, RunError> {
        self.end_leftovers()?;
        self.advance_merges()?;
        // The last merges, and the run-wide verify of what they made
        // (with the search and removals a failure starts, and a repair
        // round: an agent it names runs again, so tasks are dispatched
        // here too).
        loop {
            self.drive_verify(!self.slots.any_in_flight())?;
            self.dispatch()?;
            self.writer.commit()?;
            let verifying = self.verify.as_ref().is_some_and(|v| v.busy());
            let running = self.slots.any_in_flight();
            if !self.merges.busy() && !verifying && !running {
                break;
            }
            tokio::select! {
                event = self.executor.next(), if running => match event {
                    Some(event) => self.on_event(event)?,
                    None => self.lose_all("its executor stopped reporting")?,
                },
                merged = self.writer.next_merged(), if self.merges.busy() => {
                    let (task, merged) = merged?;
                    self.on_merged(task, merged)?;
                }
                done = verify_state::next_done(&mut self.verify), if verifying => {
                    if let Some(done) = done {
                        self.on_verify_done(done)?;
                    }
                }
                Ok(()) = self.stop.changed() => self.on_stop(),
            }
        }
        if let Some(verify) = &mut self.verify {
            verify.close().await;
        }
        self.executor.shutdown().await;

        let exit_code = if self.stopping == Some(Stopping::Cancel) {
            crate::exit::INTERRUPTED
        } else if self
            .tasks
            .indices()
            // A variant that failed is part of an experiment's work; the
            // experiment's own status says whether it did its job.
            .filter(|&i| self.slots[i].experiment_of.is_none())
            .all(|i| self.status(i).is_success())
            && self.verify.as_ref().is_none_or(|v| v.passed())
        {
            crate::exit::SUCCESS
        } else {
            crate::exit::TASKS_FAILED
        };
        self.emit(EventBody::RunFinished {
            integration_commit: self.merges.integration().to_string(),
            exit_code,
            duration_ms: crate::millis(self.started.elapsed()),
        })?;
        // Every commit the run made is on a ref now: the packs that held
        // their objects while it ran are git's again (`git::hold`).
        crate::git::hold::release(&self.repo.common_dir, &self.run);
        let groupings = self.whole_groupings();
        // What the run kept per task and needs no more is let go of before
        // the history is read and written again: on top of it, that was
        // the run's peak of memory at 10,000 tasks.
        drop(self.graph);
        drop(self.slots);
        drop(self.queue);
        let took = self.timings.into_took();
        // The history is a hint for later runs: failing to keep it is no
        // reason for this one to fail.
        // Not a shard whose last attempt ran again only its failed tests,
        // nor one that ran only the entries the run's changes affect: its
        // time says nothing of what the whole shard takes.
        let reran = |id: &str| {
            let t = self.fold.index(id).and_then(|i| self.fold.task(i));
            t.and_then(|t| t.tests.as_deref())
                .is_some_and(|t| t.reran > 0 || !t.selected_out.is_empty())
        };
        let took: Vec<_> = took
            .iter()
            .map(|&(i, ms)| (self.tasks.get(i), ms))
            .filter(|(task, _)| !reran(&task.id))
            .collect();
        // With what each changed, which predicts the next run's conflicts.
        let changed = |task: &crate::plan::Task| {
            let t = self.fold.task(self.fold.index(&task.id)?)?;
            Some(t.changed_files.as_slice())
        };
        if let Err(e) =
            crate::durations::History::add_run_changed(&self.repo.workdir, &took, changed)
        {
            tracing::warn!(error = %crate::error_chain(&e), "failed to keep the tasks' durations");
        }
        // And how long each entry of a shard took, for the next grouping.
        let learned = entry_times(&self.fold, &took, |files| {
            self.repo.sizes_at(self.base_commit, files)
        });
        if let Err(e) = crate::durations::History::add_entries(
            &self.repo.workdir,
            &learned.entries,
            &groupings,
            (&learned.startups, &learned.threads, &learned.profiles),
        ) {
            tracing::warn!(error = %crate::error_chain(&e), "failed to keep the entries' durations");
        }
        let Self {
            writer,
            fold,
            run_dir,
            ..
        } = self;
        writer.close()?;
        let report = fold.into_report().ok_or_else(|| RunError::Io {
            action: "build the report".into(),
            source: std::io::Error::other("the journal has no run_started event"),
        })?;
        let path = run_dir.join(crate::layout::REPORT);
        // Streamed: at 10,000 tasks the report's text is as large as the
        // report itself, and holding both was the run's peak of memory.
        let written = std::fs::File::create(&path).and_then(|file| {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(file);
            serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
            out.flush()
        });
        written.map_err(|source| RunError::Io {
            action: format!("write {}", path.display()),
            source,
        })?;
        Ok(report)
    }
}

/// What a run's shards tell of their entries, for the next grouping.
struct Learned {
    /// How long each entry took (task, entry, milliseconds).
    entries: Vec<(String, String, u64)>,
    /// What each sharded task's shards take whatever their entries (task,
    /// milliseconds): the least that any of its shards' reports left
    /// unaccounted for.
    startups: Vec<(String, u64)>,
    /// On how many threads each sharded task's runner ran a shard's tests
    /// (task, threads): the median over its shards whose reports say
    /// when each test began ([`threads`]).
    threads: Vec<(String, u32)>,
    /// How each entry run in parts took its time over its tests (task,
    /// entry, profile): each part's own tests' times, when every part ran
    /// as one range in a shard that succeeded with a test report; and of
    /// an entry that ran whole and may be split later ([`whole_profile`]),
    /// its tests' own times.
    profiles: Vec<crate::durations::EntryProfile>,
}

/// How long each task's shards' tests ran together over their summed
/// times (`Accounted::entry_times`), of the shards (task, entries, their
/// report) whose reports say.
fn scales<'a>(
    shards: &[(&'a String, &[String], crate::durations::Accounted)],
) -> std::collections::HashMap<&'a str, (u64, u64)> {
    let mut scales: std::collections::HashMap<&str, (u64, u64)> = Default::default();
    for (of, _, accounted) in shards {
        if let Some((ran, summed)) = accounted.ratio() {
            let scale = scales.entry(of.as_str()).or_default();
            *scale = (scale.0.saturating_add(ran), scale.1.saturating_add(summed));
        }
    }
    scales
}

/// On how many threads each task's runner ran a shard's tests, of the
/// shards (task, entries, their report) whose reports say: the median of
/// theirs, as a shard that held one long test and a few short ones may
/// have run no two at once.
fn threads(shards: &[(&String, &[String], crate::durations::Accounted)]) -> Vec<(String, u32)> {
    let mut of_task: Vec<(&String, Vec<u32>)> = Vec::new();
    for (of, _, accounted) in shards {
        let Some(n) = accounted.threads() else {
            continue;
        };
        match of_task.iter_mut().find(|(o, _)| o == of) {
            Some((_, seen)) => seen.push(n),
            None => of_task.push((of, vec![n])),
        }
    }
    of_task
        .into_iter()
        .map(|(of, mut seen)| {
            seen.sort_unstable();
            (of.clone(), seen[(seen.len() - 1) / 2])
        })
        .collect()
}

/// For each sharded task that lists its entries' tests (`list_tests`),
/// how long one of its entries that ran whole must have taken for its
/// profile to be learned ([`whole_profile`]): half its shards' mean time.
/// Such an entry is one a later grouping may split (one longer than a mean
/// shard, at this count or a higher one, or once its times move), and at
/// most twice as many as the task's shards are that long.
fn whole_profiled(took: &[(Arc<crate::plan::Task>, u64)]) -> impl Fn(&str) -> Option<u64> + use<> {
    use crate::plan::shards::Sharding;
    let mut of_task: std::collections::HashMap<String, (u64, u64)> = Default::default();
    for (task, ms) in took {
        if let Some(Sharding::Shard {
            of, list: Some(_), ..
        }) = task.sharding.as_deref()
        {
            let (sum, n) = of_task.entry(of.clone()).or_default();
            *sum = sum.saturating_add(*ms);
            *n += 1;
        }
    }
    move |of: &str| of_task.get(of).map(|&(sum, n)| sum / n.max(1) / 2)
}

/// The profile of the `k`th entry of a shard (`name`, which took `ms` of
/// it) that ran whole, when it took at least `least` (`None`: its task
/// does not list its tests) and its report told each of its tests' times
/// in its runner's list order: what its first split deals test by test
/// (`shard_parts::fill`). Without it, an entry split for the first time
/// was cut by its tests' places as if each took as long: on itertools'
/// suite at N = 8 (BENCHMARKS 30), the first run after two learning runs
/// ended 2.03 apart, its two long files cut into eight even stretches.
fn whole_profile(
    accounted: &crate::durations::Accounted,
    k: usize,
    name: &str,
    ms: u64,
    least: Option<u64>,
) -> Option<crate::plan::shard_parts::Profile> {
    use crate::plan::shard_parts::{Profile, WHOLE, parse};
    let least = least?;
    let own = accounted.own()?.get(k).copied()?;
    let (each, tests) = (accounted.each(k), accounted.count(k));
    if parse(name).is_some() || ms < least || tests == 0 || each.len() != tests as usize {
        return None;
    }
    Profile::of_held(&[(vec![(0, WHOLE)], own, each)], tests)
}

/// Each shard that succeeded (`took`) with its task's id, its entries and
/// what its own test report tells of them.
fn reported<'t>(
    fold: &RunFold,
    took: &'t [(Arc<crate::plan::Task>, u64)],
) -> Vec<(&'t String, &'t [String], crate::durations::Accounted)> {
    use crate::plan::shards::Sharding;
    took.iter()
        .filter_map(|(task, ms)| {
            let Some(Sharding::Shard {
                of,
                entries,
                packages,
                ..
            }) = task.sharding.as_deref()
            else {
                return None;
            };
            let cases: Vec<swarm_protocol::TestCase> = fold
                .index(&task.id)
                .and_then(|i| fold.task(i))
                .and_then(|t| t.tests.as_deref())
                .and_then(|tests| std::fs::read(&tests.cases).ok())
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            let accounted = crate::durations::Accounted::new((entries, packages), *ms, &cases);
            Some((of, entries.as_slice(), accounted))
        })
        .collect()
}

/// What the shards that succeeded (`took`) tell of their entries, whose
/// files' sizes (at the run's base) `sizes` reads.
fn entry_times(
    fold: &RunFold,
    took: &[(Arc<crate::plan::Task>, u64)],
    sizes: impl FnOnce(&[&str]) -> Result<Vec<Option<u64>>, crate::git::GitError>,
) -> Learned {
    let shards = reported(fold, took);
    // The size of each entry's file (a part's or a test's is its file's):
    // what its collection's share of its shard's time goes by.
    let files: Vec<&str> = {
        let mut files: Vec<&str> = shards
            .iter()
            .flat_map(|(_, entries, _)| {
                entries
                    .iter()
                    .map(|e| crate::plan::selection::entry_file(e))
            })
            .collect();
        files.sort_unstable();
        files.dedup();
        files
    };
    let size_of: std::collections::HashMap<&str, u64> = match sizes(&files) {
        Ok(sizes) => files
            .iter()
            .zip(sizes)
            .filter_map(|(f, s)| Some((*f, s?)))
            .collect(),
        Err(e) => {
            tracing::debug!(error = %crate::error_chain(&e), "entries' sizes unread: their collection is shared evenly");
            Default::default()
        }
    };
    // What a task's shards take whatever their entries: the least any of
    // them left unaccounted. A shard holding a part lists its tests first,
    // so what it leaves is its start-up and that listing: the start-up is
    // learned from the shards without parts (none when every shard has
    // one, whose least is still what the entries' times leave out).
    let least = |of: &str, plain_only: bool| {
        shards
            .iter()
            .filter(|(o, entries, _)| {
                o.as_str() == of
                    && (!plain_only
                        || entries
                            .iter()
                            .all(|e| crate::plan::shard_parts::parse(e).is_none()))
            })
            .filter_map(|(_, _, accounted)| accounted.unaccounted())
            .min()
    };
    let scales = scales(&shards);
    let long_enough = whole_profiled(took);
    let mut startups: Vec<(String, u64)> = Vec::new();
    for (of, _, _) in &shards {
        if !startups.iter().any(|(o, _)| o == *of)
            && let Some(ms) = least(of, true)
        {
            startups.push(((*of).clone(), ms));
        }
    }
    // An entry run in parts (`plan::shard_parts`) took what its parts took
    // together.
    let mut out: Vec<(String, String, u64)> = Vec::new();
    let mut at: std::collections::HashMap<(&str, &str), usize> = Default::default();
    // Each split entry's parts' times by their ranges, with their tests'
    // own times in the order of the runner's list; `None` once a part
    // without a report was seen (a part whose tests cannot be told one by
    // one is learned as a whole: `per_test`). Beside them, how many tests
    // their reports held (the parts' summed).
    type Segments<'a> = Option<Vec<crate::plan::shard_parts::Held<'a>>>;
    let mut segments: Vec<((&str, &str), Segments, u32)> = Vec::new();
    let mut whole: Vec<crate::durations::EntryProfile> = Vec::new();
    for (of, entries, accounted) in &shards {
        let learned = startups.iter().find(|(o, _)| o == *of).map(|s| s.1);
        let startup = learned.or_else(|| least(of, false)).unwrap_or(0);
        let sizes: Vec<Option<u64>> = entries
            .iter()
            .map(|e| size_of.get(crate::plan::selection::entry_file(e)).copied())
            .collect();
        let times = accounted.entry_times(startup, &sizes, scales.get(of.as_str()).copied());
        // A part's share of its entry's time: its own tests' times only
        // (a shard's start-up and listing are no test's), from a report.
        let own = accounted.own();
        for (k, (name, t)) in entries.iter().zip(times).enumerate() {
            let entry = crate::plan::shard_parts::whole(name);
            if let Some(part) = crate::plan::shard_parts::parse(name) {
                let key = (of.as_str(), entry);
                let at = match segments.iter().position(|(k, _, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        segments.push((key, Some(Vec::new()), 0));
                        segments.len() - 1
                    }
                };
                let (_, seen, tests) = &mut segments[at];
                *tests += accounted.count(k);
                let tested = own.map(|own| own[k]);
                match (seen.as_mut(), tested) {
                    (Some(seen), Some(tested)) => {
                        seen.push((part.ranges, tested, accounted.each(k)))
                    }
                    _ => *seen = None,
                }
            }
            if let Some(profile) = whole_profile(accounted, k, name, t, long_enough(of)) {
                whole.push(((*of).clone(), entry.to_string(), profile));
            }
            match at.get(&(of.as_str(), entry)) {
                Some(&i) => out[i].2 += t,
                None => {
                    at.insert((of.as_str(), entry), out.len());
                    out.push(((*of).clone(), entry.to_string(), t));
                }
            }
        }
    }
    // A profile only from parts that cover the entry: every shard of it
    // succeeded.
    let profiles = segments
        .into_iter()
        .filter_map(|((of, entry), seen, tests)| {
            let profile = crate::plan::shard_parts::Profile::of_held(&seen?, tests)?;
            Some((of.to_string(), entry.to_string(), profile))
        })
        .chain(whole)
        .collect();
    Learned {
        entries: out,
        startups,
        threads: threads(&shards),
        profiles,
    }
}

#[cfg(test)]
mod tests {
    use super::whole_profile;
    use crate::durations::Accounted;
    use crate::durations::tests::passed;

    #[test]
    fn a_long_entry_that_ran_whole_keeps_each_tests_time_in_its_lists_order() {
        let entries = vec!["tests/a.rs".to_string(), "tests/b.rs\u{1f}0-500".into()];
        // As a report gives them: in the order they ended.
        let cases = [
            passed("", "z", "tests/a.rs", 30),
            passed("", "x", "tests/a.rs", 10),
            passed("", "y", "tests/a.rs", 20),
            passed("", "w", "tests/b.rs", 40),
        ];
        let shard = Accounted::new((&entries, &Default::default()), 200, &cases);
        let profile = whole_profile(&shard, 0, &entries[0], 60, Some(50)).unwrap();
        // By name, which is a Rust file's list: x, y, z.
        assert_eq!(
            profile.segments(),
            [(0, 333, 10), (333, 666, 20), (666, 1000, 30)]
        );
        assert_eq!(profile.tests(), 3);
        assert!(profile.by_test());
        // Shorter than half a mean shard, or of a task that does not list
        // its tests: none kept.
        assert_eq!(whole_profile(&shard, 0, &entries[0], 60, Some(61)), None);
        assert_eq!(whole_profile(&shard, 0, &entries[0], 60, None), None);
        // A part is learned with its entry's other parts.
        assert_eq!(whole_profile(&shard, 1, &entries[1], 60, Some(0)), None);
    }
}
