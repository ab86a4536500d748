//! The Slurm executor: every attempt is one batch job on a cluster, an
//! element of a job array.
//!
//! The coordinator keeps the graph, the merges and the journal. For a
//! ready task it merges the dependencies' results (as locally), pushes
//! that base to the shared repository and submits a job (`submit.rs`)
//! whose script runs `swarm __node` (`node.rs`): on the node, the attempt
//! runs exactly as the local executor runs it, and its snapshot and exit
//! record are pushed back (`record.rs`). The pushed record is the truth
//! about an attempt (jobs vanish from `squeue` minutes after they end);
//! one poll every `poll_interval` asks `squeue --json` how all the jobs
//! are (one call, whatever their number) and fetches the records that
//! arrived (one fetch). A job that ended without a record lost its
//! attempt: its node failed (`NODE_FAIL`: tried again on another job,
//! without using up the task's retries) or its worker died.
//!
//! What a job costs is Slurm's more than swarm's (issue 32): a submission
//! per task, and before each job a login shell (`--export=NONE`). So the
//! attempts the dispatcher starts in one step are gathered and submitted
//! together as job arrays (`flush`), and a job's environment is made by
//! swarm from nothing and passed with `--export=ALL` (`submit.rs`), which
//! keeps the coordinator's keys out as `--export=NONE` did, without the
//! login shell.

mod cluster;
mod submit;

use crate::ids::TaskIndex;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use git2::Oid;
use swarm_protocol::{AttemptOutcome, TaskStatus};
use swarm_sandbox::Stop;
use tokio::task::JoinSet;

use self::cluster::JobState;
use self::submit::{Jobs, NotSubmitted, output_of};
use super::error::RunError;
use super::executor::{Admission, ExecEvent, Executor, Launch, Reattached};
use super::prepared::Prepared;
use super::remote::record::{ExitRecord, exit_ref, exit_refspec, read_record};
use crate::fold::TaskState;
use crate::git::{GitError, Repo, Snapshot, refs, run_git};
use crate::plan::SlurmConfig;

pub use self::cluster::ClusterError;

/// How long the first look at the cluster may take (Slurm's clients retry
/// a missing configuration for a minute).
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a task's attempt may be lost to failed nodes before the
/// task fails for it (these do not use up its `retries`).
const NODE_FAILURES: u32 = 3;

/// Polls in a row a job may be missing (or ended without a record) before
/// its attempt counts as lost: a record pushed to a shared file system can
/// take a moment to show.
const MISSING_POLLS: u32 = 3;

pub use super::options::ClusterOptions;

/// One task's job, while it is in flight.
#[derive(Debug)]
struct Job {
    attempt: u32,
    last_attempt: u32,
    base: Option<Oid>,
    /// The cluster's id, once submitted.
    id: Option<String>,
    node: Option<String>,
    stop: Option<Stop>,
    since: Instant,
    /// Polls in a row that did not find it alive or finished.
    missing: u32,
    node_failures: u32,
    /// Its job runs other attempts too (`tasks_per_job`): a stop of the
    /// job that this task did not ask for (another's cancel) ends this
    /// attempt too, which then runs again.
    packed: bool,
}

/// What the executor's background work brings back.
enum Work {
    /// Each attempt of a batch: its base and job id, or why not.
    Submitted(Vec<(TaskIndex, u32, Submission)>),
    Polled(Poll),
}

/// An attempt's base and job id once submitted, or why it was not.
type Submission = Result<(Oid, String), NotSubmitted>;

/// How an attempt finds its base (on the blocking pool: it may merge).
type BaseOf = Box<dyn FnOnce(&Jobs) -> Result<Oid, NotSubmitted> + Send>;

/// An exit record that arrived, read, with the ref its snapshot is now
/// on; or why it could not be read.
type Arrived = Result<(ExitRecord, Option<String>), String>;

/// One look at the cluster and the shared repository.
struct Poll {
    queue: Result<HashMap<String, JobState>, String>,
    /// Records that arrived, by task and attempt.
    records: Vec<(TaskIndex, u32, Arrived)>,
}

/// Runs attempts as Slurm jobs.
pub(super) struct SlurmExecutor {
    jobs_ctx: Arc<Jobs>,
    jobs: HashMap<TaskIndex, Job>,
    work: JoinSet<Work>,
    /// Attempts to submit, gathered until `next` is awaited: every task
    /// the dispatcher started in one step goes out in one `sbatch`.
    queued: Vec<(TaskIndex, u32, BaseOf)>,
    /// Jobs to stop, likewise in one `scancel` each way (batch script
    /// only, or all of the job).
    cancels: Vec<(String, bool)>,
    events: VecDeque<ExecEvent>,
    tick: tokio::time::Interval,
    polling: bool,
    /// What one look at the cluster said, for the reattach calls of a
    /// resume (the records it fetched are then in the repository).
    seen: Option<Poll>,
    /// The relay jobs reach the model gateway through: it serves for as
    /// long as the executor lives (the run's options are dropped once the
    /// dispatcher is made).
    _relay: Option<Arc<crate::gateway::relay::Relay>>,
    /// The notes agents on nodes post to the relay as they go (tools,
    /// tokens), read at each turn of `next`.
    notes: Option<tokio::sync::mpsc::UnboundedReceiver<crate::gateway::relay::NodeNote>>,
}

impl SlurmExecutor {
    /// The executor of `prepared`'s tasks on the cluster `config` names.
    pub(super) fn new(
        prepared: &Prepared,
        tasks: crate::run::table::TaskTable,
        config: &SlurmConfig,
    ) -> Result<Self, RunError> {
        let super::options::ExecutorOptions::Slurm(cluster) = prepared.options.executor.clone()
        else {
            return Err(RunError::Io {
                action: "start the Slurm executor".into(),
                source: std::io::Error::other(
                    "the run was not put together for a cluster (assemble::assemble does it)",
                ),
            });
        };
        // One look at the cluster before any job: without one (no
        // controller, a name that does not resolve), every task would fail
        // on its own with sbatch's error.
        cluster::reachable(REACH_TIMEOUT).map_err(|why| RunError::NoCluster { why })?;
        let shared = shared_repo(&prepared.repo, config.repo.as_deref())?;
        // Where the run's refs go, for `swarm clean` to remove them there.
        let recorded = crate::state::State::create(&prepared.repo.workdir).and_then(|state| {
            state.replace_file(
                &[crate::layout::RUNS, &prepared.run, crate::layout::SHARED],
                &shared,
            )
        });
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "failed to record the shared repository; `swarm clean` will not remove the run's refs there");
        }
        let mut tick = tokio::time::interval(config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // How the run split its shards, before the table moves in.
        let shards = crate::plan::shards::numbered_groupings(tasks.all().iter().map(|t| &**t));
        // Refused to an untrusted plan already; never applied for one.
        let quarantine = match prepared.plan.origin.is_untrusted() {
            true => Arc::from([]),
            false => Arc::clone(&prepared.plan.quarantine),
        };
        let jobs_ctx = Jobs {
            repo: prepared.repo.clone(),
            run_base: prepared.base_commit,
            run: prepared.run.clone(),
            run_dir: prepared.run_dir(),
            tasks,
            config: config.clone(),
            shared,
            swarm: cluster.swarm,
            env: cluster.env,
            submit_env: cluster.submit_env,
            plan_path: prepared.plan.path.display().to_string(),
            plan_text: prepared.plan.source.text.to_string(),
            sandbox: prepared.options.sandbox.is_some(),
            grace: prepared.options.grace,
            gateway: cluster.gateway,
            shards,
            max_array: cluster::max_array_size(),
            quarantine,
            pushed: Mutex::new(Default::default()),
            // Read only when tasks share jobs.
            history: match config.tasks_per_job {
                1 => crate::durations::History::default(),
                _ => crate::durations::History::load(&prepared.repo.workdir),
            },
        };
        Ok(Self {
            jobs_ctx: Arc::new(jobs_ctx),
            jobs: HashMap::new(),
            work: JoinSet::new(),
            queued: Vec::new(),
            cancels: Vec::new(),
            events: VecDeque::new(),
            tick,
            polling: false,
            seen: None,
            notes: cluster.relay.as_ref().and_then(|r| r.take_notes()),
            _relay: cluster.relay,
        })
    }

    /// The notes nodes posted since the last look, as the events of the
    /// attempts in flight they are of (a late one of an attempt that ended
    /// is dropped).
    fn take_notes(&mut self) {
        let Some(notes) = self.notes.as_mut() else {
            return;
        };
        while let Ok(n) = notes.try_recv() {
            let Some(task) = self.jobs_ctx.tasks.position(&n.task) else {
                continue;
            };
            if self.jobs.get(&task).is_some_and(|j| j.attempt == n.attempt) {
                self.events
                    .push_back(ExecEvent::Agent { task, note: n.note });
            }
        }
    }

    /// Queues attempt `attempt` of `task`, from the base `base_of` finds,
    /// for the next `flush`.
    fn submit(
        &mut self,
        task: TaskIndex,
        attempt: u32,
        base_of: impl FnOnce(&Jobs) -> Result<Oid, NotSubmitted> + Send + 'static,
    ) {
        self.queued.push((task, attempt, Box::new(base_of)));
    }

    /// Submits every queued attempt, off the dispatcher's thread: each
    /// one's base found and pushed to the shared repository, then all of
    /// them as job arrays (`Jobs::submit_batch`); and stops the jobs
    /// waiting to be stopped.
    ///
    /// Why arrays: `sbatch` is a round trip to the controller, which then
    /// schedules, logs and keeps one job record per submission; an array
    /// is one submission, one script (the plan stored once, not once per
    /// task) and is started by Slurm in bulk. Each element is still one
    /// attempt with an id of its own (`ARRAY_INDEX`) that `squeue`,
    /// `scancel`, the journal and resume use as they used a job's, so
    /// retries, cancels and lost nodes stay per attempt.
    fn flush(&mut self) {
        if !self.queued.is_empty() {
            let ctx = Arc::clone(&self.jobs_ctx);
            let queued = std::mem::take(&mut self.queued);
            self.work.spawn_blocking(move || {
                let mut results = Vec::new();
                let mut ready = Vec::new();
                for (task, attempt, base_of) in queued {
                    let based = base_of(&ctx).and_then(|base| {
                        ctx.push_base(base)
                            .map_err(|e| NotSubmitted::Failed(format!("failed to {e}")))?;
                        Ok(base)
                    });
                    match based {
                        Ok(base) => ready.push((task, attempt, base)),
                        Err(e) => results.push((task, attempt, Err(e))),
                    }
                }
                let ids = ctx.submit_batch(&ready);
                for ((task, attempt, base), id) in ready.into_iter().zip(ids) {
                    let result = id.map(|id| (base, id)).map_err(NotSubmitted::Failed);
                    results.push((task, attempt, result));
                }
                Work::Submitted(results)
            });
        }
        for batch_only in [true, false] {
            let ids: Vec<String> = self
                .cancels
                .iter()
                .filter(|(_, b)| *b == batch_only)
                .map(|(id, _)| id.clone())
                .collect();
            if ids.is_empty() {
                continue;
            }
            tokio::task::spawn_blocking(move || {
                if let Err(e) = cluster::cancel(&ids, batch_only) {
                    tracing::warn!(jobs = %ids.join(" "), error = %e, "failed to stop jobs");
                }
            });
        }
        self.cancels.clear();
    }

    /// Stops job `id` at the next `flush`; a failure is logged (the job's
    /// end still comes through the polls).
    fn stop_job(&mut self, id: String, how: Stop, running: bool) {
        // A running job's worker stops its task itself and reports; a
        // pending one, or an escalation, is Slurm's to end.
        self.cancels.push((id, running && how == Stop::Graceful));
    }

    fn on_work(&mut self, work: Work) {
        match work {
            Work::Submitted(results) => {
                let mut shared: HashMap<String, usize> = HashMap::new();
                for (_, _, result) in &results {
                    if let Ok((_, id)) = result {
                        *shared.entry(id.clone()).or_default() += 1;
                    }
                }
                for (task, attempt, result) in results {
                    let packed =
                        matches!(&result, Ok((_, id)) if shared.get(id).is_some_and(|&n| n > 1));
                    self.on_submitted(task, attempt, result, packed);
                }
            }
            Work::Polled(poll) => {
                self.polling = false;
                self.on_poll(poll);
            }
        }
    }

    fn on_submitted(&mut self, task: TaskIndex, attempt: u32, result: Submission, packed: bool) {
        let Some(job) = self.jobs.get_mut(&task) else {
            return;
        };
        match result {
            Ok((base, id)) => {
                job.base = Some(base);
                job.id = Some(id.clone());
                job.packed = packed;
                job.node = None;
                job.missing = 0;
                job.since = Instant::now();
                if let Some(how) = job.stop {
                    self.stop_job(id.clone(), how, false);
                }
                self.events.push_back(ExecEvent::Started {
                    task,
                    attempt,
                    base,
                    workdir: PathBuf::from(format!("job {id} (a worktree on its node)")),
                    job: Some(id),
                    at: None,
                    setup: None,
                    setup_run: None,
                });
            }
            Err(NotSubmitted::Conflict(files)) => {
                self.jobs.remove(&task);
                self.events.push_back(ExecEvent::Finished {
                    task,
                    status: TaskStatus::Blocked,
                    reason: Some(format!(
                        "its dependencies conflict with each other in {}",
                        files.join(", ")
                    )),
                });
            }
            Err(NotSubmitted::Failed(why)) => {
                self.jobs.remove(&task);
                self.events.push_back(ExecEvent::Finished {
                    task,
                    status: TaskStatus::Failed,
                    reason: Some(format!("swarm could not submit its job: {why}")),
                });
            }
        }
    }

    /// Starts a look at the cluster, off the dispatcher's thread.
    fn start_poll(&mut self) {
        self.polling = true;
        let ctx = Arc::clone(&self.jobs_ctx);
        // Each submitted job's attempt, and whether it is the task's last.
        let wanted: Vec<(TaskIndex, u32, Ending)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.id.is_some())
            .map(|(&t, j)| (t, j.attempt, Ending::of(j)))
            .collect();
        // The arrays those jobs are elements of: `squeue` is asked of
        // them only.
        let arrays: std::collections::BTreeSet<String> = self
            .jobs
            .values()
            .filter_map(|j| j.id.as_deref())
            .map(|id| {
                id.split_once('_')
                    .map_or(id, |(array, _)| array)
                    .to_string()
            })
            .collect();
        let arrays: Vec<String> = arrays.into_iter().collect();
        self.work
            .spawn_blocking(move || Work::Polled(look(&ctx, Some(&arrays), &wanted)));
    }

    fn on_poll(&mut self, poll: Poll) {
        let mut recorded = HashMap::new();
        for (task, attempt, record) in poll.records {
            recorded.insert(task, (attempt, record));
        }
        let queue = match poll.queue {
            Ok(q) => Some(q),
            Err(e) => {
                tracing::warn!(error = %e, "failed to ask the cluster how its jobs are; asking again");
                None
            }
        };
        let tasks: Vec<TaskIndex> = self.jobs.keys().copied().collect();
        for task in tasks {
            let Some(job) = self.jobs.get(&task) else {
                continue;
            };
            let Some(id) = job.id.clone() else {
                continue;
            };
            if let Some((attempt, record)) = recorded.remove(&task)
                && attempt == job.attempt
            {
                match record {
                    Ok((record, git_ref)) => self.on_record(task, record, git_ref),
                    Err(e) => self.lost(task, format!("its exit record is unreadable: {e}"), false),
                }
                continue;
            }
            let Some(queue) = &queue else {
                continue;
            };
            let state = queue.get(&id).cloned();
            let Some(job) = self.jobs.get_mut(&task) else {
                continue;
            };
            match state {
                Some(state) if !state.ended() => {
                    job.missing = 0;
                    if state.running()
                        && job.node.is_none()
                        && let Some(node) = state.node.clone()
                    {
                        job.node = Some(node.clone());
                        self.events.push_back(ExecEvent::Placed {
                            task,
                            attempt: job.attempt,
                            job: id,
                            node,
                        });
                    }
                }
                ended => {
                    job.missing += 1;
                    if job.missing < MISSING_POLLS {
                        continue;
                    }
                    self.ended_without_record(task, &id, ended);
                }
            }
        }
    }

    /// An attempt's exit record arrived.
    fn on_record(&mut self, task: TaskIndex, record: ExitRecord, git_ref: Option<String>) {
        let Some(job) = self.jobs.get_mut(&task) else {
            return;
        };
        let ending = Ending::of(job);
        if job.node.is_none()
            && let Some(id) = job.id.clone()
        {
            job.node = Some(record.node.clone());
            self.events.push_back(ExecEvent::Placed {
                task,
                attempt: job.attempt,
                job: id,
                node: record.node.clone(),
            });
        }
        let snapshot = match (&record.commit, git_ref) {
            (Some(commit), Some(git_ref)) => Oid::from_str(commit).ok().map(|commit| {
                Box::new((
                    Snapshot {
                        commit,
                        changed: record.changed_files.clone(),
                        skipped: record.skipped_files.clone(),
                        duration: Duration::from_millis(record.snapshot_ms.unwrap_or(0)),
                        hashed: 0,
                        written: 0,
                    },
                    git_ref,
                ))
            }),
            _ => None,
        };
        if ending.stopped_for_another(&record) {
            // Stopped with its job for another task's cancel: what it did
            // is kept on the attempt's ref, and it runs again.
            let message = "its job was stopped for another task that shared it".to_string();
            self.events.push_back(ExecEvent::AttemptFinished {
                task,
                attempt: record.attempt,
                outcome: AttemptOutcome::Lost {
                    message: message.clone(),
                },
                verify_passed: None,
                duration: Duration::from_millis(record.duration_ms),
                verify: None,
                snapshot,
                outside_paths: Vec::new(),
                agent: None,
                score: None,
                diff: None,
            });
            return self.lost_to_another(task, message);
        }
        if let Some(run) = record.setup_run {
            self.events.push_back(ExecEvent::SetUp {
                task,
                attempt: record.attempt,
                run,
            });
        }
        // Whether it ends its task, as decided when its ref was set.
        let last = ending.ends_task(&record);
        let mut record = record;
        // Its test report, as the node read it: the cases came back with
        // the record's logs, into this run's logs of the task, and are
        // folded here with its earlier attempts' (each ran on a node of
        // its own), so that a test that failed and then passed is flaky;
        // an attempt that passed without showing a test that failed before
        // pass, or with flaky tests under `flaky = "fail"`, fails its task
        // (here, on its last attempt: its ref is the task's already).
        let spec = self.jobs_ctx.tasks.get(task);
        let (tests, why) = match spec.junit.is_some() {
            true => {
                let ctx = &self.jobs_ctx;
                let fails_on_flaky = spec.flaky == crate::plan::schema::Flaky::Fail;
                let folded = crate::test_attempts::fold_kept(
                    &ctx.run_dir,
                    &spec.id,
                    record.attempt,
                    &ctx.quarantine,
                    fails_on_flaky,
                );
                folded.map_or((None, None), |(t, why)| (Some(Box::new(t)), why))
            }
            false => (None, None),
        };
        // What the node skipped by selection (`affected`) is its own word;
        // a shard that ran none of its entries, or has no report of its
        // own, is reported by them alone.
        let selected_out = record.tests.as_ref().map(|t| t.selected_out.clone());
        let tests = match tests {
            Some(mut tests) => {
                tests.selected_out = selected_out.unwrap_or_default();
                Some(tests)
            }
            None => record
                .tests
                .take()
                .filter(|t| !t.selected_out.is_empty())
                .map(Box::new),
        };
        if let Some(why) = why.filter(|_| record.status == TaskStatus::Succeeded) {
            record.status = TaskStatus::Failed;
            record.reason = Some(why);
        }
        if tests.is_some() || record.tests_warning.is_some() {
            self.events.push_back(ExecEvent::Tests {
                task,
                attempt: record.attempt,
                tests,
                warning: record.tests_warning.clone(),
            });
        }
        let succeeded = record.status == TaskStatus::Succeeded;
        let cancelled = matches!(record.outcome, AttemptOutcome::Cancelled) || job.stop.is_some();
        self.events.push_back(ExecEvent::AttemptFinished {
            task,
            attempt: record.attempt,
            outcome: record.outcome.clone(),
            verify_passed: record.verify_passed,
            duration: Duration::from_millis(record.duration_ms),
            verify: record.verify_ms.map(Duration::from_millis),
            snapshot,
            outside_paths: record.outside_paths.clone(),
            agent: record.agent.clone().map(Box::new),
            score: record.score.clone().map(Box::new),
            diff: record.diff,
        });
        if last {
            let status = match (succeeded, cancelled) {
                (false, true) => TaskStatus::Cancelled,
                _ => record.status,
            };
            self.jobs.remove(&task);
            self.events.push_back(ExecEvent::Finished {
                task,
                status,
                reason: record.reason,
            });
        } else {
            self.again(task, false);
        }
    }

    /// The job ended (or vanished) without a record.
    fn ended_without_record(&mut self, task: TaskIndex, id: &str, state: Option<JobState>) {
        let Some(job) = self.jobs.get(&task) else {
            return;
        };
        let on = job
            .node
            .clone()
            .or_else(|| state.as_ref().and_then(|s| s.node.clone()));
        let on_node = on
            .as_deref()
            .map(|n| format!(" on node {n}"))
            .unwrap_or_default();
        let Some(state) = state else {
            return self.lost(
                task,
                format!("its job {id} is no longer known to the cluster and left no result"),
                false,
            );
        };
        let output = format!("see {} on its node", output_of(id));
        match state.state.as_str() {
            "CANCELLED" if job.stop.is_some() => {
                self.finish_attempt(task, AttemptOutcome::Cancelled, None);
            }
            "CANCELLED" if job.packed => self.lost(
                task,
                format!("its job {id} was stopped for another task that shared it"),
                true,
            ),
            "NODE_FAIL" | "BOOT_FAIL" => self.lost(
                task,
                format!(
                    "its node{} failed while job {id} ran ({})",
                    on.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
                    state.state
                ),
                true,
            ),
            "TIMEOUT" | "DEADLINE" => self.finish_attempt(
                task,
                AttemptOutcome::TimedOut,
                Some(format!(
                    "its job {id} ran past its Slurm time limit{on_node}"
                )),
            ),
            "OUT_OF_MEMORY" => self.finish_attempt(
                task,
                AttemptOutcome::OutOfMemory { limit: None },
                Some(format!(
                    "its job {id} ran out of memory{on_node} ({output})"
                )),
            ),
            other => self.lost(
                task,
                format!("its job {id} ended {other}{on_node} without a result ({output})"),
                false,
            ),
        }
    }

    /// The attempt is lost: tried again when it may be, else the task
    /// fails. A failed node does not use up the task's retries.
    fn lost(&mut self, task: TaskIndex, message: String, node_failed: bool) {
        self.finish_attempt_with(
            task,
            AttemptOutcome::Lost {
                message: message.clone(),
            },
            Some(message),
            node_failed,
        );
    }

    /// The attempt was stopped with its job for another task (its
    /// `AttemptFinished` already out): it runs again without using up the
    /// task's retries, as after a failed node, and as often.
    fn lost_to_another(&mut self, task: TaskIndex, message: String) {
        let Some(job) = self.jobs.get_mut(&task) else {
            return;
        };
        if job.node_failures < NODE_FAILURES {
            job.node_failures += 1;
            return self.again(task, true);
        }
        self.jobs.remove(&task);
        self.events.push_back(ExecEvent::Finished {
            task,
            status: TaskStatus::Failed,
            reason: Some(message),
        });
    }

    fn finish_attempt(&mut self, task: TaskIndex, outcome: AttemptOutcome, reason: Option<String>) {
        self.finish_attempt_with(task, outcome, reason, false);
    }

    fn finish_attempt_with(
        &mut self,
        task: TaskIndex,
        outcome: AttemptOutcome,
        reason: Option<String>,
        node_failed: bool,
    ) {
        let Some(job) = self.jobs.get_mut(&task) else {
            return;
        };
        self.events.push_back(ExecEvent::AttemptFinished {
            task,
            attempt: job.attempt,
            outcome: outcome.clone(),
            verify_passed: None,
            duration: job.since.elapsed(),
            verify: None,
            snapshot: None,
            outside_paths: Vec::new(),
            agent: None,
            score: None,
            diff: None,
        });
        let stopped = job.stop.is_some() || matches!(outcome, AttemptOutcome::Cancelled);
        let node_retry = node_failed && job.node_failures < NODE_FAILURES;
        if !stopped && (node_retry || job.attempt < job.last_attempt) {
            if node_retry {
                job.node_failures += 1;
            }
            return self.again(task, node_retry);
        }
        let status = match outcome {
            _ if stopped => TaskStatus::Cancelled,
            AttemptOutcome::TimedOut => TaskStatus::TimedOut,
            AttemptOutcome::Stalled { .. } => TaskStatus::Stalled,
            _ => TaskStatus::Failed,
        };
        let reason = match status {
            TaskStatus::Cancelled => Some(match job.node {
                None => "cancelled before its job started".to_string(),
                Some(_) => "cancelled".to_string(),
            }),
            _ => reason,
        };
        self.jobs.remove(&task);
        self.events.push_back(ExecEvent::Finished {
            task,
            status,
            reason,
        });
    }

    /// The next attempt, as a new job from the same base; `extra` when it
    /// does not count against the task's retries.
    fn again(&mut self, task: TaskIndex, extra: bool) {
        let Some(job) = self.jobs.get_mut(&task) else {
            return;
        };
        let Some(base) = job.base else {
            return;
        };
        job.attempt += 1;
        if extra {
            job.last_attempt += 1;
        }
        job.id = None;
        job.node = None;
        job.missing = 0;
        let attempt = job.attempt;
        self.submit(task, attempt, move |_| Ok(base));
    }
}

/// The shared repository's location: a URL as written, or a path (relative
/// to the repository), made a bare repository when it does not exist.
fn shared_repo(repo: &Repo, written: Option<&str>) -> Result<String, RunError> {
    let written = written.unwrap_or(".swarm/cluster.git");
    // Never an option of git's (`--upload-pack=...`).
    if written.starts_with('-') {
        return Err(RunError::Git(GitError::Cli {
            action: format!("use `{written}` as the shared repository"),
            message: "a name starting with `-` is no repository: write a path or a URL".into(),
        }));
    }
    if is_url(written) {
        return Ok(written.to_string());
    }
    let path = match Path::new(written).is_absolute() {
        true => PathBuf::from(written),
        false => repo.workdir.join(written),
    };
    if !path.exists() {
        git2::Repository::init_bare(&path).map_err(|e| {
            RunError::Git(GitError::Cli {
                action: format!("create the shared repository {}", path.display()),
                message: e.message().to_string(),
            })
        })?;
    }
    Ok(path.display().to_string())
}

/// What decides whether an attempt's record ends its task, known before
/// the record is read (for the ref its snapshot goes on) and when its end
/// is reported, decided alike both times.
#[derive(Debug, Clone, Copy)]
struct Ending {
    /// No other attempt may follow (`final`), or the task was asked to
    /// stop.
    final_or_stopped: bool,
    /// Its job ran other tasks' attempts too, and this task was not asked
    /// to stop: a cancelled record means the job was stopped for another.
    packed_unstopped: bool,
}

impl Ending {
    fn of(job: &Job) -> Self {
        Self {
            final_or_stopped: job.attempt >= job.last_attempt || job.stop.is_some(),
            packed_unstopped: job.packed && job.stop.is_none(),
        }
    }

    /// The attempt was stopped with its job for another task's cancel.
    fn stopped_for_another(self, record: &ExitRecord) -> bool {
        self.packed_unstopped && matches!(record.outcome, AttemptOutcome::Cancelled)
    }

    /// Whether `record`'s attempt is its task's last: it succeeded, was
    /// cancelled (for the task itself), or no other may follow. Its
    /// snapshot then goes on the task's ref, else on the attempt's.
    fn ends_task(self, record: &ExitRecord) -> bool {
        !self.stopped_for_another(record)
            && (self.final_or_stopped
                || record.status == TaskStatus::Succeeded
                || matches!(record.outcome, AttemptOutcome::Cancelled))
    }
}

/// Whether the shared repository holds exit records of the run that this
/// one lacks (or holds at another commit). Read directly where the shared
/// repository is a path on this machine: a fetch, five times a second, was
/// five git processes each, most of them finding nothing. Through a URL,
/// only a fetch can tell: always true.
fn news(ctx: &Jobs) -> bool {
    if is_url(&ctx.shared) {
        return true;
    }
    let (Ok(shared), Ok(ours)) = (git2::Repository::open_bare(&ctx.shared), ctx.repo.open()) else {
        return true;
    };
    let Ok(refs) = shared.references_glob(&format!("refs/swarm/{}/exit.d/*", ctx.run)) else {
        return true;
    };
    for r in refs {
        let Ok(r) = r else {
            return true;
        };
        let (Ok(name), Some(target)) = (r.name(), r.target()) else {
            return true;
        };
        if ours.refname_to_id(name).ok() != Some(target) {
            return true;
        }
    }
    false
}

/// Whether a shared repository as written is a URL (`ssh://host/x.git`,
/// `host:x.git`) rather than a path.
fn is_url(written: &str) -> bool {
    written.contains("://") || (written.contains(':') && !written.starts_with('/'))
}

/// Asks the cluster how its jobs are (those of `arrays`, or every job),
/// then fetches the exit records that arrived (in that order: a job the
/// cluster shows ended has pushed its record before, so the fetch that
/// follows has it). `wanted`: the jobs' tasks, attempts, and how their
/// records end them.
fn look(ctx: &Jobs, arrays: Option<&[String]>, wanted: &[(TaskIndex, u32, Ending)]) -> Poll {
    let queue = match arrays {
        Some(arrays) => cluster::queue_of(arrays),
        None => cluster::queue(),
    }
    .map_err(|e| e.to_string());
    let mut records = Vec::new();
    if news(ctx) {
        let mut fetch = ctx.repo.git(&ctx.repo.workdir);
        // Several fetches a second: git's automatic maintenance after each
        // is not for now.
        fetch
            .args(["-c", "maintenance.auto=false", "-c", "gc.auto=0"])
            .args(["fetch", "-q", "--no-tags", &ctx.shared])
            .arg(exit_refspec(&ctx.run));
        if let Err(e) = run_git(fetch, || format!("fetch exit records from {}", ctx.shared)) {
            tracing::warn!(error = %e, "failed to fetch the jobs' results; trying again");
            return Poll { queue, records };
        }
    }
    for &(task, attempt, ending) in wanted {
        let id = &ctx.tasks.get(task).id;
        let Ok(commit) = ctx.repo.resolve(&exit_ref(&ctx.run, id, attempt)) else {
            continue;
        };
        let logs = crate::layout::task_logs(&ctx.run_dir, id);
        let read = read_record(&ctx.repo, commit, &logs)
            .map_err(|e| e.to_string())
            .and_then(|record| {
                let git_ref = match &record.commit {
                    None => None,
                    Some(c) => {
                        let oid = Oid::from_str(c).map_err(|e| e.to_string())?;
                        let is_last = ending.ends_task(&record);
                        let name = match is_last {
                            true => refs::task(&ctx.run, id),
                            false => refs::attempt(&ctx.run, id, attempt),
                        };
                        ctx.repo
                            .set_ref(&name, oid, "swarm: task snapshot")
                            .map_err(|e| e.to_string())?;
                        Some(name)
                    }
                };
                Ok((record, git_ref))
            });
        records.push((task, attempt, read));
    }
    Poll { queue, records }
}

impl Executor for SlurmExecutor {
    fn admit(&self, _task: TaskIndex) -> Admission {
        match self.jobs.len() >= self.jobs_ctx.config.max_jobs {
            true => Admission::Full,
            false => Admission::Start,
        }
    }

    fn start(&mut self, launch: Launch) {
        let task = launch.task;
        let retries = self.jobs_ctx.tasks.get(task).retries;
        self.jobs.insert(
            task,
            Job {
                attempt: launch.first_attempt,
                last_attempt: launch.first_attempt + retries,
                base: None,
                id: None,
                node: None,
                stop: None,
                since: Instant::now(),
                missing: 0,
                node_failures: 0,
                packed: false,
            },
        );
        let Launch {
            base,
            deps,
            first_attempt,
            ..
        } = launch;
        self.submit(task, first_attempt, move |ctx| {
            ctx.base_of(task, base, &deps)
        });
    }

    fn next(&mut self) -> BoxFuture<'_, Option<ExecEvent>> {
        Box::pin(async move {
            loop {
                self.flush();
                self.take_notes();
                if let Some(event) = self.events.pop_front() {
                    return Some(event);
                }
                if self.jobs.is_empty() && self.work.is_empty() {
                    return None;
                }
                let submitted = self.jobs.values().any(|j| j.id.is_some());
                tokio::select! {
                    Some(done) = self.work.join_next() => match done {
                        Ok(work) => self.on_work(work),
                        Err(e) => tracing::warn!(error = %e, "a background job of the Slurm executor failed"),
                    },
                    _ = self.tick.tick(), if submitted && !self.polling => self.start_poll(),
                }
            }
        })
    }

    fn cancel(&mut self, task: TaskIndex, how: Stop) {
        let Some(job) = self.jobs.get_mut(&task) else {
            return;
        };
        let again = job.stop.is_some();
        job.stop = Some(how);
        if let Some(id) = job.id.clone() {
            let running = job.node.is_some();
            // Asked twice (the second Ctrl-C): Slurm ends all of it.
            self.stop_job(id, if again { Stop::Immediate } else { how }, running);
        }
    }

    fn reattach(&mut self, task: TaskIndex, state: &TaskState) -> Reattached {
        let (Some(id), Some(base)) = (state.job.clone(), state.base) else {
            return Reattached::Gone;
        };
        // One look at the cluster (and one fetch of the records) serves
        // every task of the resume.
        let ctx = Arc::clone(&self.jobs_ctx);
        // (Every job of the cluster: the tasks of a resume come one by one.)
        let queue = self.seen.get_or_insert_with(|| look(&ctx, None, &[]));
        let alive = match &queue.queue {
            Ok(q) => q.get(&id).is_some_and(|s| !s.ended()),
            Err(e) => {
                tracing::warn!(error = %e, "failed to ask the cluster about the run's jobs");
                false
            }
        };
        let recorded = ctx
            .repo
            .resolve(&exit_ref(&ctx.run, &ctx.tasks.get(task).id, state.attempt))
            .is_ok();
        if !alive && !recorded {
            return Reattached::Gone;
        }
        let retries = self.jobs_ctx.tasks.get(task).retries;
        if let Ok(mut pushed) = self.jobs_ctx.pushed.lock() {
            pushed.insert(base, Arc::new(Mutex::new(true)));
        }
        // Tasks that shared a job know it from each other's ids.
        let mut packed = false;
        for other in self.jobs.values_mut() {
            if other.id.as_deref() == Some(id.as_str()) {
                other.packed = true;
                packed = true;
            }
        }
        self.jobs.insert(
            task,
            Job {
                attempt: state.attempt,
                last_attempt: state.attempt + retries,
                base: Some(base),
                id: Some(id),
                node: None,
                stop: None,
                since: Instant::now(),
                missing: 0,
                node_failures: 0,
                packed,
            },
        );
        Reattached::Adopted
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move { while self.work.join_next().await.is_some() {} })
    }
}
