//! The local executor: task attempts on this machine, each a tokio task
//! ([`self::task::execute`]) driving a worktree, a sandboxed process, a
//! WASM guest or an agent session, reporting through one channel.

pub(crate) mod agent_task;
pub(crate) mod attempt;
pub(crate) mod cli_agent;
pub(crate) mod ctx;
pub(crate) mod describe;
pub(crate) mod egress;
mod handed;
mod hints;
pub(crate) mod layers;
pub(crate) mod message;
pub(crate) mod own_caches;
pub(crate) mod owned_paths;
pub(crate) mod prepare;
mod prepare_files;
mod running;
pub(crate) mod score;
pub(crate) mod served;
mod sweeper;
pub(crate) mod task;
mod tests;
pub(crate) mod worker_files;

use crate::ids::TaskIndex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use dashmap::DashMap;
use futures_util::future::BoxFuture;
use swarm_protocol::TaskStatus;
use swarm_sandbox::Stop;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use self::ctx::Ctx;
use self::running::{Decked, Running};
use self::task::Done;
use crate::git::{GitError, Worktrees};
use crate::plan::Task;
use crate::run::error::RunError;
use crate::run::executor::{Admission, ExecEvent, Executor, Launch, Reattached};
use crate::run::prepared::Prepared;
use crate::worktree_home::WorktreeHome;

/// Runs attempts as tokio tasks of this process, at most `concurrency` at
/// once.
pub(super) struct LocalExecutor {
    ctx: Arc<Ctx>,
    concurrency: usize,
    /// The tokio tasks of the tasks it started.
    joins: JoinSet<Done>,
    /// What it keeps of each task it started, until its tokio task ends.
    running: HashMap<TaskIndex, Running>,
    events: mpsc::UnboundedReceiver<ExecEvent>,
    /// Ends seen while events the task sent before ending were unread.
    ended: VecDeque<ExecEvent>,
    /// Deleting what finished tasks no longer need, off the way.
    sweeper: sweeper::Sweeper,
    /// The run's base, whose read-only checkout is made as the run begins
    /// ([`LocalExecutor::warm_readonly`]).
    warm: Option<git2::Oid>,
    /// That checkout being made.
    warming: Option<tokio::task::JoinHandle<()>>,
    /// Memory of tasks started in the last [`STARTING`] (when, how much):
    /// what they will take is not yet gone from `MemAvailable`, so a burst
    /// of starts is admitted against it too.
    starting: VecDeque<(std::time::Instant, u64)>,
    /// How many tasks went on deck (see [`Executor::admit_on_deck`]), at
    /// most one behind each running task: they hold no place of
    /// `concurrency` until the one they follow ends or another place
    /// frees. Numbers them, the first waiting first.
    decked: u64,
    /// The task `admit_on_deck` admitted and the one it waits behind: the
    /// next `start` of that task puts it on deck.
    admitted: Option<(TaskIndex, TaskIndex)>,
}

/// Most tasks on deck one behind another for one place (see
/// [`Executor::admit_on_deck`]).
const DECK_DEPTH: usize = 2;

/// How long a started task's memory is reserved for admission: an agent
/// CLI reaches its resident size in a few seconds.
const STARTING: std::time::Duration = std::time::Duration::from_secs(10);

impl LocalExecutor {
    /// The executor of `prepared`'s tasks (`tasks`, shared with the
    /// dispatcher), with worktrees in `home`. A `resumed` run first removes
    /// the shared checkouts its dead coordinator left.
    pub(super) fn new(
        prepared: &Prepared,
        tasks: crate::run::table::TaskTable,
        spawner: Arc<crate::run::spawn::Spawner>,
        home: &WorktreeHome,
        (resumed, run_base): (bool, Option<git2::Oid>),
    ) -> Result<Self, RunError> {
        let worktree_dir = home.run_dir(&prepared.run);
        if resumed {
            remove_readonly_checkouts(&prepared.repo, &worktree_dir);
        }
        let options = &prepared.options;
        // Only tasks that set limits (or have a stall watch, which reads
        // their CPU time there) get cgroups of their own (see
        // attempt.rs); unconfined ones share one. A run with neither makes
        // none.
        let processes = |t: &Task| !self::attempt::in_process(&t.payload);
        let limited = tasks
            .all()
            .iter()
            .any(|t| processes(t) && self::attempt::wants_cgroup(t));
        let unconfined = options.sandbox.is_none() && tasks.all().iter().any(|t| processes(t));
        let cgroups = (limited || unconfined)
            .then(|| crate::run::cgroup::Cgroups::new(&prepared.run))
            .flatten();
        let shared = match (&cgroups, unconfined) {
            (Some(cgroups), true) => cgroups
                .task("unconfined", None, None)
                .map_err(|e| tracing::warn!(error = %e, "failed to create the cgroup of unconfined tasks; what they start outside their process groups may outlive the run"))
                .ok(),
            _ => None,
        };
        // The launcher joins the shared cgroup once, so that its commands
        // are born in it; if it cannot, each joins it.
        let mut shared = shared;
        if let (Some(shared), Some(pid)) = (
            shared.as_mut(),
            options.unconfined.as_ref().and_then(|l| l.pid()),
        ) && let Err(e) = shared.adopt(pid)
        {
            tracing::debug!(error = %e, "the launcher stays out of the cgroup of unconfined tasks; each joins it");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (caches, setup_caches) = cache_dirs(prepared, home)?;
        let ctx = Arc::new(Ctx {
            worktrees: prepared.worktrees(),
            repo: prepared.repo.clone(),
            run_base,
            run: prepared.run.clone(),
            run_dir: prepared.run_dir(),
            worktree_dir,
            caches,
            setup_caches,
            warm: Some((
                crate::run::warm::WarmDir::new(home.warm_dir()?),
                tasks
                    .all()
                    .iter()
                    .filter(|t| t.isolation == swarm_protocol::Isolation::Worktree)
                    .count(),
            )),
            resumed,
            // The person's files, for the person's plans only.
            included: Arc::new(
                prepared
                    .repo
                    .open()
                    .ok()
                    .filter(|_| !prepared.plan.origin.is_untrusted())
                    .map(|git| crate::worktree_include::find(&prepared.repo.workdir, &git))
                    .transpose()
                    .map_err(|e| RunError::Io {
                        action: "copy the files .worktreeinclude names".into(),
                        source: std::io::Error::other(e.to_string()),
                    })?
                    .unwrap_or_default(),
            ),
            cleanup: prepared.plan.cleanup.clone(),
            // Refused to an untrusted plan already; never applied for one.
            quarantine: match prepared.plan.origin.is_untrusted() {
                true => Arc::from([]),
                false => Arc::clone(&prepared.plan.quarantine),
            },
            setups: match &prepared.plan.setup {
                Some(setup) => Some(ctx::Setups::new(
                    setup.clone(),
                    match &options.setup_cache {
                        Some(cache) => cache.clone(),
                        None => home.setup_dir()?,
                    },
                    prepared.base_commit,
                )),
                None => None,
            },
            tasks,
            grace: options.grace,
            sandbox: options.sandbox.clone(),
            unconfined_launcher: options.unconfined.clone(),
            egress_via: options.egress_via.clone(),
            read_paths: options.read_paths.clone(),
            wasm: options.wasm.clone(),
            gateway: options.gateway.clone(),
            agent_program: options.agent_program.clone(),
            agent_clis: options.agent_clis.clone(),
            mcp_servers: options.mcp_servers.clone(),
            secret_vars: prepared.plan.secret_vars(),
            min_free_space: prepared.plan.min_free_space,
            free_space: std::sync::Mutex::new(None),
            unconfined: shared,
            cgroups,
            readonly: DashMap::new(),
            readonly_views: Default::default(),
            own_caches: Default::default(),
            class_dirs: Default::default(),
            events: tx,
            spawner,
        });
        Ok(Self {
            ctx,
            warm: None,
            warming: None,
            concurrency: options.concurrency.max(1),
            joins: JoinSet::new(),
            running: HashMap::new(),
            starting: VecDeque::new(),
            decked: 0,
            admitted: None,
            events: rx,
            ended: VecDeque::new(),
            sweeper: sweeper::Sweeper::start(Worktrees::new(prepared.repo.clone())),
        })
    }

    /// The event for a task's tokio task that ended, and the clean-up of
    /// what it leaves.
    fn on_joined(
        &mut self,
        joined: Result<(tokio::task::Id, Done), tokio::task::JoinError>,
    ) -> Option<ExecEvent> {
        let done = match joined {
            Ok((_, done)) => {
                if let Some(running) = self.running.remove(&done.task) {
                    self.released(done.task, running, done.status == TaskStatus::Succeeded);
                }
                done
            }
            Err(e) => {
                // Lost (it panicked): found by its tokio task, which is
                // all a join error names.
                let task = self
                    .running
                    .iter()
                    .find_map(|(&t, r)| (r.id == e.id()).then_some(t))?;
                let running = self.running.remove(&task)?;
                self.released(task, running, false);
                return Some(ExecEvent::Lost {
                    task,
                    why: e.to_string(),
                });
            }
        };
        if done.withdrawn {
            return Some(ExecEvent::Withdrawn { task: done.task });
        }
        if let Some((path, admin)) = done.removable {
            // Its work is on its ref; deleting the tree must not delay anyone.
            self.sweeper.worktree(&self.ctx.worktrees, path, admin);
        }
        if done.status == TaskStatus::Succeeded {
            // Its private tmp and its view of the git directory are scratch,
            // gone with its worktree (what failed keeps them, for a look).
            let (run_dir, task) = (&self.ctx.run_dir, self.ctx.tasks.get(done.task));
            let tmp = crate::layout::task_tmp(run_dir, &task.id);
            // As root, a sandboxed task's tmp (its HOME) holds the
            // `.gitconfig` swarm wrote in it (`worker_files::trust_checkouts`):
            // removed here, the tmp of a task that wrote nothing is one
            // `rmdir`, not a walk on the sweeper's thread. (`unlink` of a
            // link the task put there removes the link.)
            if self.ctx.tmp_holds_gitconfig()
                && let Ok(dir) = crate::untrusted::TaskDir::open(&tmp)
            {
                let _ = dir.remove(".gitconfig");
            }
            let mut dirs: Vec<std::path::PathBuf> =
                (!done.tmp_removed).then_some(tmp).into_iter().collect();
            // Read-only tasks share a view, removed as the run ends.
            if task.isolation == swarm_protocol::Isolation::Worktree {
                dirs.push(crate::layout::git_view(run_dir, &task.id));
            }
            self.sweeper.dirs(&self.ctx.worktrees, dirs);
        }
        Some(ExecEvent::Finished {
            task: done.task,
            status: done.status,
            reason: done.reason,
        })
    }
}

impl LocalExecutor {
    /// Task `task`'s tokio task ended (`succeeded` or not). The place it
    /// held goes to the task on deck behind it, else to the first one
    /// waiting on deck anywhere (which starts now), else back to the pool.
    /// After a failure, every task still waiting on deck is withdrawn
    /// instead: whether anything more starts is the dispatcher's call
    /// (`on_failure`), and a withdrawn task goes back to its queue.
    fn released(&mut self, task: TaskIndex, running: Running, succeeded: bool) {
        use swarm_worker::DeckSignal;
        if let Some(decked) = running.deck {
            // Ended before it started (withdrawn, stopped, or its set-up
            // failed): it held no place.
            if !decked.began() {
                return;
            }
            // Started by the launcher in its leader's place (never told to
            // start), before the leader's end was handled here.
            // (A leader that failed was released already, keeping it.)
            if *decked.signal.borrow() == DeckSignal::Wait
                && let Some(leader) = self.running.get_mut(&decked.behind)
            {
                leader.passed = true;
            }
        }
        if !succeeded {
            for decked in self.decks().filter(|d| d.waiting()) {
                decked.signal.send_replace(DeckSignal::Withdraw);
            }
            // What began meanwhile holds a place.
            for running in self.running.values_mut() {
                if running.deck.as_ref().is_some_and(Decked::began) {
                    running.deck = None;
                }
            }
            return;
        }
        if running.passed {
            return;
        }
        // The one behind this task takes its place: the launcher started
        // it when this task's command exited 0, or starts it now (it came
        // too late to be held, or is not sent yet). Else the first one
        // waiting anywhere starts now, in this place.
        let next = self
            .first_on_deck(|d| d.behind == task && !d.withdrawn())
            .or_else(|| self.first_on_deck(Decked::waiting));
        if let Some(decked) = next.and_then(|t| self.running.get_mut(&t)?.deck.take()) {
            decked.signal.send_replace(DeckSignal::Go);
        }
    }

    /// Every task on deck.
    fn decks(&self) -> impl Iterator<Item = &Decked> {
        self.running.values().filter_map(|r| r.deck.as_ref())
    }

    /// The task that went on deck first of those `which` picks.
    fn first_on_deck(&self, which: impl Fn(&Decked) -> bool) -> Option<TaskIndex> {
        self.running
            .iter()
            .filter_map(|(&t, r)| Some((t, r.deck.as_ref().filter(|d| which(d))?)))
            .min_by_key(|(_, d)| d.order)
            .map(|(t, _)| t)
    }

    /// Tasks on deck that hold no place: neither started nor told to.
    fn unplaced(&self) -> usize {
        self.decks().filter(|d| !d.began()).count()
    }

    /// Whether `task` could wait on deck: a command started by the run's
    /// launcher (the sandbox's, or that of unconfined commands), with no
    /// deadline of a subtree (its own `timeout` counts from its start) and
    /// no memory to wait for.
    fn deckable(&self, task: TaskIndex) -> bool {
        let t = self.ctx.tasks.get(task);
        (self.ctx.sandbox.is_some() || self.ctx.unconfined_launcher.is_some())
            && matches!(t.payload, crate::plan::Payload::Command { .. })
            && t.not_after.is_none()
            // Its setup runs first, in its own place.
            && !prepare::applies(&self.ctx, &t)
            && self.memory_need(task).is_none()
    }

    /// Whether another task may wait on deck behind `task`: its one
    /// command is the last thing its attempt does (no `verify`, no retry,
    /// and read-only: a worktree task's snapshot comes after), so when
    /// that command ends its place is free and its end follows at once.
    /// A worktree task's successor starting during its snapshot would
    /// make the order of ends, which `-j 1` keeps the same on every run,
    /// depend on which finished first.
    fn may_lead(&self, task: TaskIndex) -> bool {
        let t = self.ctx.tasks.get(task);
        self.deckable(task)
            && t.retries == 0
            && t.verify.is_none()
            && t.isolation == swarm_protocol::Isolation::Readonly
    }

    /// Has the shared checkout of `base` that read-only tasks of the first
    /// wave run in made as the run begins ([`Executor::begin`]), beside the
    /// rest of its start (the launcher's cgroup, the journal, the first
    /// worktrees), instead of by the first such task: its two git processes
    /// were most of a small run's start. A task that needs it waits for the
    /// same checkout; if making it fails, the first task tries again and
    /// reports the error. Only for a run's own coordinator (a Slurm job's
    /// node runs one task, maybe not a read-only one).
    pub(super) fn warm_readonly(&mut self, base: git2::Oid) {
        let first_wave_readonly = self.ctx.tasks.all().iter().any(|t| {
            t.isolation == swarm_protocol::Isolation::Readonly
                && t.deps.is_empty()
                && t.experiment().is_none()
        });
        self.warm = first_wave_readonly.then_some(base);
    }

    /// The memory task `task` needs to start: its `memory`, else what its
    /// agent CLI takes (`[agents.NAME] memory`, or the kind's default).
    fn memory_need(&self, task: TaskIndex) -> Option<u64> {
        let task = self.ctx.tasks.get(task);
        task.memory.or_else(|| {
            let cli = task.agent()?.cli.as_ref()?;
            self.ctx.agent_clis.get(cli).map(|c| c.cli.memory)
        })
    }
}

impl Executor for LocalExecutor {
    fn begin(&mut self) {
        let Some(base) = self.warm.take() else {
            return;
        };
        // Not while the disk is short of space: the first task says so.
        if ctx::short_of_space(&self.ctx).is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let ctx = Arc::clone(&self.ctx);
        self.warming = Some(runtime.spawn(async move {
            if let Err(e) = ctx::readonly_checkout(&ctx, base).await {
                tracing::debug!(error = %e, "the read-only checkout is made by the first task that needs it");
            }
        }));
    }

    fn admit(&self, task: TaskIndex) -> Admission {
        // Tasks on deck hold no place until they start.
        if self.joins.len() - self.unplaced() >= self.concurrency {
            return Admission::Full;
        }
        // A task that says how much memory it needs waits until that much
        // is available; with nothing else running to wait for, it fails,
        // saying so.
        let starting: u64 = self
            .starting
            .iter()
            .filter(|(at, _)| at.elapsed() < STARTING)
            .map(|(_, need)| need)
            .sum();
        if let Some(need) = self.memory_need(task)
            && let Some(available) = mem_available()
            && need.saturating_add(starting) > available
        {
            if !self.joins.is_empty() {
                return Admission::Wait;
            }
            return Admission::Refuse(format!(
                "not started: it needs {} of memory (`memory`, or its agent's) and the machine has {} available",
                bytesize::ByteSize::b(need),
                bytesize::ByteSize::b(available)
            ));
        }
        Admission::Start
    }

    fn start(&mut self, launch: Launch) {
        let i = launch.task;
        while self
            .starting
            .front()
            .is_some_and(|(at, _)| at.elapsed() >= STARTING)
        {
            self.starting.pop_front();
        }
        if let Some(need) = self.memory_need(i) {
            self.starting.push_back((std::time::Instant::now(), need));
        }
        let mut deck = task::DeckLinks::default();
        let mut published = None;
        if self.may_lead(i) {
            let (publish, receiver) = watch::channel(None);
            published = Some(receiver);
            deck.publish = Some(publish);
        }
        let mut decked = None;
        if let Some((t, behind)) = self.admitted.take()
            && t == i
            && let Some(published) = self.running.get(&behind).and_then(|r| r.published.as_ref())
        {
            let (signal, signals) = watch::channel(swarm_worker::DeckSignal::Wait);
            let began = Arc::new(std::sync::OnceLock::new());
            deck.on_deck = Some(task::OnDeckLinks {
                behind: published.clone(),
                signal: signals,
                began: Arc::clone(&began),
            });
            decked = Some(Decked {
                behind,
                signal,
                began,
                order: self.decked,
            });
            self.decked += 1;
        }
        let (stop, stopped) = watch::channel(None);
        // A span per task, so that logs of many workers can be told apart.
        let span = tracing::info_span!(
            "task",
            id = %self.ctx.tasks.get(i).id,
            attempt = launch.first_attempt
        );
        // A re-run's paths are its first run's, which may still be being
        // deleted: it starts after that.
        let swept = launch
            .again
            .then(|| self.sweeper.barrier(&self.ctx.worktrees));
        let ctx = Arc::clone(&self.ctx);
        let handle = self.joins.spawn(tracing::Instrument::instrument(
            async move {
                if let Some(swept) = swept {
                    let _ = tokio::task::spawn_blocking(move || swept.recv()).await;
                }
                task::execute(ctx, launch, stopped, deck).await
            },
            span,
        ));
        self.running.insert(
            i,
            Running {
                id: handle.id(),
                stop,
                published,
                passed: false,
                deck: decked,
            },
        );
    }

    fn admit_on_deck(&mut self, task: TaskIndex, unlocks: &dyn Fn(TaskIndex) -> bool) -> bool {
        // At most `DECK_DEPTH` waiting per place in all: tasks whose
        // commands ended but whose tokio tasks have not yet (their
        // snapshots, their ends on this thread) may lead too, and without
        // a bound in all, a coordinator behind its commands took more on
        // deck the further behind it was.
        if !self.deckable(task) || self.unplaced() >= DECK_DEPTH * self.concurrency {
            return false;
        }
        // A task on deck takes the next free place first: not while the
        // end of a running task (or of one on deck) could make a more
        // urgent one ready.
        if self.running.keys().any(|&t| unlocks(t)) {
            return false;
        }
        // How many unplaced tasks a place's chain holds before `t`.
        let depth = |mut t: TaskIndex| {
            let mut depth = 0;
            while let Some(d) = (self.running.get(&t))
                .and_then(|r| r.deck.as_ref())
                .filter(|d| !d.began())
            {
                if d.withdrawn() {
                    return usize::MAX;
                }
                depth += 1;
                t = d.behind;
            }
            depth
        };
        let led = |t: &TaskIndex| self.decks().any(|d| d.behind == *t);
        // Behind the oldest command (launcher ids grow), the likeliest to
        // end first; one not sent yet comes last. A chain holds a few, so
        // that a slot whose commands are shorter than the coordinator's
        // step does not wait for it.
        let Some(&behind) = self
            .running
            .iter()
            // One whose place went on already leads nothing: the
            // launcher would start what follows it at once, beside the
            // one that took that place.
            .filter(|(t, r)| !led(t) && !r.passed && depth(**t) < DECK_DEPTH)
            .filter_map(|(t, r)| Some((t, *r.published.as_ref()?.borrow())))
            .min_by_key(|&(_, id)| id.unwrap_or(u64::MAX))
            .map(|(t, _)| t)
        else {
            return false;
        };
        self.admitted = Some((task, behind));
        true
    }

    fn next(&mut self) -> BoxFuture<'_, Option<ExecEvent>> {
        Box::pin(async move {
            loop {
                // What a task sent before it ended comes before its end.
                if let Ok(event) = self.events.try_recv() {
                    return Some(event);
                }
                if let Some(event) = self.ended.pop_front() {
                    return Some(event);
                }
                if self.joins.is_empty() {
                    return None;
                }
                tokio::select! {
                    biased;
                    Some(event) = self.events.recv() => return Some(event),
                    Some(joined) = self.joins.join_next_with_id() => {
                        if let Some(event) = self.on_joined(joined) {
                            self.ended.push_back(event);
                        }
                    }
                }
            }
        })
    }

    fn cancel(&mut self, task: TaskIndex, how: Stop) {
        // One on deck that has not started is taken back (the dispatcher
        // records it as never started); if it started, the stop stops it.
        let Some(running) = self.running.get(&task) else {
            return;
        };
        if let Some(decked) = running.deck.as_ref().filter(|d| !d.began()) {
            decked
                .signal
                .send_replace(swarm_worker::DeckSignal::Withdraw);
        }
        running.stop.send_replace(Some(how));
    }

    fn reattach(&mut self, _task: TaskIndex, _state: &crate::fold::TaskState) -> Reattached {
        // Local attempts are children of the coordinator: they died with it.
        Reattached::Gone
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Deleting worktrees of merged tasks overlapped with the run;
            // here we only wait for what is left of it.
            self.sweeper.finish().await;
            // A checkout still being made is removed with the others.
            if let Some(warming) = self.warming.take() {
                let _ = warming.await;
            }
            let readonly: Vec<_> = self
                .ctx
                .readonly
                .iter()
                .filter_map(|c| c.value().get().cloned())
                .collect();
            self.ctx.readonly.clear();
            let run_dir = &self.ctx.run_dir;
            let views: Vec<std::path::PathBuf> = match self.ctx.readonly_views.lock() {
                Ok(mut views) => views
                    .drain()
                    .map(|(admin, _)| crate::layout::readonly_git_view(run_dir, &admin))
                    .collect(),
                Err(_) => Vec::new(),
            };
            let ctx = Arc::clone(&self.ctx);
            // `remove` deletes each worktree's metadata too, so no `git
            // worktree prune` (a process spawn) is needed at the end of
            // every run.
            let pruned = tokio::task::spawn_blocking(move || -> Result<(), GitError> {
                if let Some(caches) = &ctx.setup_caches {
                    caches.close();
                }
                for view in views {
                    if let Err(e) = crate::untrusted::TaskDir::discard(&view) {
                        tracing::warn!(path = %view.display(), error = %e, "failed to remove a git view");
                    }
                }
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
        })
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
#[allow(clippy::disallowed_methods, reason = "/proc, the kernel's")]
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
#[allow(
    clippy::disallowed_methods,
    reason = "the run's worktree directory, swarm's: its entries are removed by git's worktree records"
)]
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

/// Where the build caches of runs of an untrusted origin are, under the
/// worktree home's `.cache/`.
const UNTRUSTED_CACHES: &str = "@untrusted";

/// The build caches of a sandboxed run, created (swarm's: what a task is
/// shown below them is handed to the identity it runs as); and
/// `[setup]`'s own, for a run with one: a lineage of the run's base
/// (`run::lineage`), whose lock the run holds.
pub(super) fn cache_dirs(
    prepared: &Prepared,
    home: &WorktreeHome,
) -> Result<(Vec<ctx::Cache>, Option<crate::run::lineage::Caches>), RunError> {
    if prepared.options.sandbox.is_none() {
        return Ok((Vec::new(), None));
    }
    let caches = &prepared.options.caches;
    // Setup with its own rights runs only at the run's base: its caches
    // hold what setups of that base's history wrote, never another
    // base's (a pull request's setup, run before, must not build main's).
    let setup = match prepared.plan.setup.is_some() && !caches.is_empty() {
        false => None,
        true => {
            let tools = caches
                .iter()
                .map(|c| (c.var.clone(), c.name.clone()))
                .collect();
            let lineage = crate::run::lineage::Caches::new(
                (prepared.options.sandbox.is_some(), &prepared.run_dir()),
                home,
                ("@setup", "[setup]"),
                tools,
                true,
            )?;
            let (dirs, kept) = lineage
                .ready(&prepared.repo, prepared.base_commit)
                .map_err(|e| RunError::Io {
                    action: "ready the build caches of [setup]".into(),
                    source: std::io::Error::other(e),
                })?;
            tracing::debug!(kept, "the build caches of [setup]");
            Some((lineage, dirs))
        }
    };
    let dirs = caches
        .iter()
        .map(|c| {
            let setup_dir = setup.as_ref().and_then(|(_, dirs)| {
                dirs.iter()
                    .find(|(var, _)| *var == c.var)
                    .map(|(_, dir)| dir.clone())
            });
            // An untrusted origin's tasks (a repository's plan, one an MCP
            // client sent) build in caches of their own: a later run of the
            // person's, with its network and keys, must not run or build
            // on what they left there (a test binary cargo takes as fresh,
            // a wheel), as it never takes their warm worktrees.
            let untrusted = prepared.plan.origin.is_untrusted();
            // Swarm's own: what a task is shown is a directory below it,
            // its class's or its own, handed to the sandbox's identity
            // when it is made (`own_caches`).
            let dir = match untrusted {
                true => home.own_cache_dir(UNTRUSTED_CACHES, &c.name, None)?,
                false => home.cache_dir(&c.name)?,
            };
            // Whose lineage each task's own cache is, in a directory of
            // swarm's no task is shown (see `own_caches`).
            let records = c
                .per_task
                .then(|| {
                    let tool = match untrusted {
                        true => format!("{UNTRUSTED_CACHES}-{}", c.name),
                        false => c.name.clone(),
                    };
                    home.own_cache_dir(crate::worktree_home::LINEAGE_RECORDS, &tool, None)
                })
                .transpose()?;
            Ok(ctx::Cache {
                var: c.var.clone(),
                dir,
                records,
                setup_dir,
            })
        })
        .collect::<Result<Vec<_>, RunError>>()?;
    Ok((dirs, setup.map(|(lineage, _)| lineage)))
}
