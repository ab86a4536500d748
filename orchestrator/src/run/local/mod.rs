//! The local executor: task attempts on this machine, each a tokio task
//! ([`self::task::execute`]) driving a worktree, a sandboxed process, a
//! WASM guest or an agent session, reporting through one channel.

pub(crate) mod agent_task;
pub(crate) mod attempt;
pub(crate) mod cgroup;
pub(crate) mod cli_agent;
pub(crate) mod message;
pub(crate) mod owned_paths;
pub(crate) mod score;
mod sweeper;
pub(crate) mod task;

use crate::ids::TaskIndex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use dashmap::DashMap;
use futures_util::future::BoxFuture;
use swarm_protocol::TaskStatus;
use swarm_sandbox::Stop;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use self::task::{Ctx, Done};
use crate::git::{GitError, Worktrees};
use crate::plan::Task;
use crate::run::executor::{Admission, ExecEvent, Executor, Launch, Reattached};
use crate::run::{Prepared, RunError};
use crate::worktree_home::WorktreeHome;

/// Runs attempts as tokio tasks of this process, at most `concurrency` at
/// once.
pub(super) struct LocalExecutor {
    ctx: Arc<Ctx>,
    concurrency: usize,
    running: JoinSet<Done>,
    /// The task each running tokio task runs, to name a lost one.
    ids: HashMap<tokio::task::Id, TaskIndex>,
    /// Each running task's own stop signal.
    stops: HashMap<TaskIndex, watch::Sender<Option<Stop>>>,
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
}

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
        resumed: bool,
    ) -> Result<Self, RunError> {
        let worktree_dir = home.run_dir(&prepared.run);
        if resumed {
            remove_readonly_checkouts(&prepared.repo, &worktree_dir);
        }
        let options = &prepared.options;
        // Only tasks that set limits get cgroups of their own (see
        // attempt.rs); unconfined ones share one. A run with neither makes
        // none.
        let processes = |t: &Task| !self::attempt::in_process(&t.payload);
        let limited = tasks
            .all()
            .iter()
            .any(|t| processes(t) && (t.memory.is_some() || t.processes.is_some()));
        let unconfined = options.sandbox.is_none() && tasks.all().iter().any(|t| processes(t));
        let cgroups = (limited || unconfined)
            .then(|| self::cgroup::Cgroups::new(&prepared.run))
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
        let ctx = Arc::new(Ctx {
            worktrees: Worktrees::new(prepared.repo.clone()),
            repo: prepared.repo.clone(),
            run: prepared.run.clone(),
            run_dir: prepared.run_dir(),
            worktree_dir,
            caches: cache_dirs(prepared, home)?,
            tasks,
            grace: options.grace,
            sandbox: options.sandbox.clone(),
            unconfined_launcher: options.unconfined.clone(),
            read_paths: options.read_paths.clone(),
            wasm: options.wasm.clone(),
            gateway: options.gateway.clone(),
            agent_program: options.agent_program.clone(),
            agent_clis: options.agent_clis.clone(),
            mcp_servers: options.mcp_servers.clone(),
            secret_vars: prepared.plan.secret_vars(),
            min_free_space: prepared.plan.min_free_space,
            unconfined: shared,
            cgroups,
            readonly: DashMap::new(),
            events: tx,
            spawner,
        });
        Ok(Self {
            ctx,
            warm: None,
            warming: None,
            concurrency: options.concurrency.max(1),
            running: JoinSet::new(),
            ids: HashMap::new(),
            stops: HashMap::new(),
            starting: VecDeque::new(),
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
            Ok((id, done)) => {
                self.ids.remove(&id);
                done
            }
            Err(e) => {
                let task = self.ids.remove(&e.id())?;
                self.stops.remove(&task);
                return Some(ExecEvent::Lost {
                    task,
                    why: e.to_string(),
                });
            }
        };
        self.stops.remove(&done.task);
        if let Some((path, admin)) = done.removable {
            // Its work is on its ref; deleting the tree must not delay anyone.
            self.sweeper.worktree(&self.ctx.worktrees, path, admin);
        }
        if done.status == TaskStatus::Succeeded {
            // Its private tmp and its view of the git directory are scratch,
            // gone with its worktree (what failed keeps them, for a look).
            let (run_dir, id) = (&self.ctx.run_dir, &self.ctx.tasks.get(done.task).id);
            let dirs = vec![
                crate::layout::task_tmp(run_dir, id),
                crate::layout::git_view(run_dir, id),
            ];
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
        if task::short_of_space(&self.ctx).is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let ctx = Arc::clone(&self.ctx);
        self.warming = Some(runtime.spawn(async move {
            if let Err(e) = task::readonly_checkout(&ctx, base).await {
                tracing::debug!(error = %e, "the read-only checkout is made by the first task that needs it");
            }
        }));
    }

    fn admit(&self, task: TaskIndex) -> Admission {
        if self.running.len() >= self.concurrency {
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
            if !self.running.is_empty() {
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
        let (stop, stopped) = watch::channel(None);
        // A span per task, so that logs of many workers can be told apart.
        let span = tracing::info_span!(
            "task",
            id = %self.ctx.tasks.get(i).id,
            attempt = launch.first_attempt
        );
        let handle = self.running.spawn(tracing::Instrument::instrument(
            task::execute(Arc::clone(&self.ctx), launch, stopped),
            span,
        ));
        self.ids.insert(handle.id(), i);
        self.stops.insert(i, stop);
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
                if self.running.is_empty() {
                    return None;
                }
                tokio::select! {
                    biased;
                    Some(event) = self.events.recv() => return Some(event),
                    Some(joined) = self.running.join_next_with_id() => {
                        if let Some(event) = self.on_joined(joined) {
                            self.ended.push_back(event);
                        }
                    }
                }
            }
        })
    }

    fn cancel(&mut self, task: TaskIndex, how: Stop) {
        if let Some(stop) = self.stops.get(&task) {
            stop.send_replace(Some(how));
        }
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
            let ctx = Arc::clone(&self.ctx);
            // `remove` deletes each worktree's metadata too, so no `git
            // worktree prune` (a process spawn) is needed at the end of
            // every run.
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
        })
    }
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
pub(super) fn cache_dirs(
    prepared: &Prepared,
    home: &WorktreeHome,
) -> Result<Vec<task::Cache>, RunError> {
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
