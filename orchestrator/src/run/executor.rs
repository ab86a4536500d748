//! Where task attempts run: the seam between the dispatcher, which decides
//! what runs when, and an executor, which runs it.
//!
//! The dispatcher hands an executor a ready task ([`Launch`]) once the
//! executor admits it, and selects on the executor's [`ExecEvent`]s:
//! attempts starting and ending (with their result commits), progress of
//! agent tasks, the task's end, or its loss. It stops tasks through
//! [`Executor::cancel`] and, when a run is resumed, asks whether attempts
//! the dead coordinator started still live ([`Executor::reattach`]).
//!
//! [`super::local::LocalExecutor`] runs attempts on this machine (worktree,
//! kernel or WASM sandbox, cgroups, the agent gateway). Another executor (a
//! batch cluster) implements the same trait; see "Adding an executor" in
//! ARCHITECTURE.md.

use crate::ids::TaskIndex;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::BoxFuture;
use git2::Oid;
use swarm_protocol::agent::AgentReport;
use swarm_protocol::{AttemptOutcome, TaskStatus};
use swarm_sandbox::Stop;

use crate::git::Snapshot;

/// A ready task, handed to an executor: task `task` (its index in the
/// plan) starts from `base`, merged with `deps` (its dependencies' results
/// in plan order; empty for a root task), numbering its attempts from
/// `first_attempt`.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub task: TaskIndex,
    pub base: Oid,
    pub deps: Vec<Oid>,
    pub first_attempt: u32,
    /// For a task run again after its result conflicted: what its agent
    /// is told first (its earlier change, the other side's).
    pub note: Option<std::sync::Arc<str>>,
    /// It ran before in this run (a re-run after a conflict): what its
    /// earlier run left is being deleted, and must be first.
    pub again: bool,
}

/// Whether an executor takes a task now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    Start,
    /// No room for any task: try again when one ends.
    Full,
    /// Not this task yet (it needs more memory than is free while others
    /// run): try others, and this one again when one ends.
    Wait,
    /// Never: the task fails with this reason, without starting.
    Refuse(String),
}

/// What became of an attempt a dead coordinator started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reattached {
    /// It is gone: the task starts again (its leftovers kept first).
    Gone,
    /// The executor found it alive and reports its events from now on
    /// (attempts that outlive the coordinator: a batch cluster's jobs;
    /// local attempts die with it).
    Adopted,
}

/// What an executor reports, per task, in the order things happen.
#[derive(Debug)]
pub(crate) enum ExecEvent {
    /// An attempt started in `workdir`, from `base` (for a cluster: its
    /// job `job` was submitted).
    Started {
        task: TaskIndex,
        attempt: u32,
        base: Oid,
        workdir: PathBuf,
        job: Option<String>,
        /// When it really started, if that was before this event was sent
        /// (a task on deck): the journal's line says then, not when the
        /// event was read.
        at: Option<std::time::Instant>,
        /// How long its set-up took (see `EventBody::TaskStarted`).
        setup: Option<std::time::Duration>,
        /// Its `[setup]`, if it had one (see `EventBody::TaskStarted`).
        setup_run: Option<swarm_protocol::SetupRun>,
    },
    /// A cluster job of an attempt started on node `node`.
    Placed {
        task: TaskIndex,
        attempt: u32,
        job: String,
        node: String,
    },
    /// A cluster job's attempt had `[setup]` on its node (a local
    /// attempt's comes with its `Started`).
    SetUp {
        task: TaskIndex,
        attempt: u32,
        run: swarm_protocol::SetupRun,
    },
    /// An attempt ended; its worktree is on `snapshot`'s ref.
    AttemptFinished {
        task: TaskIndex,
        attempt: u32,
        outcome: AttemptOutcome,
        verify_passed: Option<bool>,
        duration: Duration,
        /// How long `verify` took, of `duration`, when it ran on its own.
        verify: Option<Duration>,
        /// Boxed: the snapshot's lists make this variant much larger
        /// than the others.
        snapshot: Option<Box<(Snapshot, String)>>,
        /// What the snapshot changed outside the task's paths (which
        /// failed the attempt).
        outside_paths: Vec<String>,
        /// Boxed too: an agent's report is several times the rest.
        agent: Option<Box<AgentReport>>,
        /// A variant's score, when it has one and the attempt succeeded.
        /// Boxed, like the snapshot: rare, and large.
        score: Option<Box<swarm_protocol::experiment::Score>>,
        /// A variant's change against its base.
        diff: Option<swarm_protocol::experiment::DiffStat>,
    },
    /// An attempt's own test report (`junit`), read after its command:
    /// its counts, or why it could not be read.
    Tests {
        task: TaskIndex,
        attempt: u32,
        tests: Option<Box<swarm_protocol::TestCounts>>,
        warning: Option<String>,
    },
    /// What an agent task's session reports as it goes.
    Agent {
        task: TaskIndex,
        note: crate::gateway::AgentNote,
    },
    /// The task reached its end: its last attempt's result is what its
    /// last `AttemptFinished` recorded.
    Finished {
        task: TaskIndex,
        status: TaskStatus,
        reason: Option<String>,
    },
    /// The executor lost the task (its worker died in a way it cannot
    /// account for); it counts as failed.
    Lost { task: TaskIndex, why: String },
    /// A task on deck was taken back before it started (see
    /// [`Executor::admit_on_deck`]): nothing of it ran or was reported,
    /// and it is ready again.
    Withdrawn { task: TaskIndex },
}

impl ExecEvent {
    /// The task the event is about.
    pub(crate) fn task(&self) -> TaskIndex {
        match self {
            Self::Started { task, .. }
            | Self::Placed { task, .. }
            | Self::SetUp { task, .. }
            | Self::AttemptFinished { task, .. }
            | Self::Agent { task, .. }
            | Self::Tests { task, .. }
            | Self::Finished { task, .. }
            | Self::Lost { task, .. }
            | Self::Withdrawn { task } => *task,
        }
    }
}

/// Runs task attempts for the dispatcher. Methods never block: anything
/// slow happens inside the executor, reported through [`Executor::next`].
pub(crate) trait Executor: Send {
    /// Whether `task` can start now (capacity, memory).
    fn admit(&self, task: TaskIndex) -> Admission;

    /// The run loop begins: what the first tasks will need may be made
    /// now. Called once, after everything that can fail before the loop
    /// (which ends with [`Executor::shutdown`]).
    fn begin(&mut self) {}

    /// Whether `task`, which [`Executor::admit`] found no room for, may
    /// wait "on deck" behind a running task instead: started by the
    /// executor the moment that task's last process ends (or another place
    /// frees), without waiting for the dispatcher's step between the two,
    /// and never adding to what runs at once. `unlocks(r)`: whether running
    /// task `r`'s end would make another task ready or decide another
    /// task's fate; while one would, nothing goes on deck (it would take
    /// the place that task needs). If true, the next [`Executor::start`] of
    /// `task` puts it on deck; its `Started` comes when it really starts.
    fn admit_on_deck(&mut self, _task: TaskIndex, _unlocks: &dyn Fn(TaskIndex) -> bool) -> bool {
        false
    }

    /// Starts an admitted task; its events follow through `next`.
    fn start(&mut self, launch: Launch);

    /// The next event of any task. `None` once nothing runs. Must be
    /// cancel-safe: the dispatcher drops it when something else is ready.
    fn next(&mut self) -> BoxFuture<'_, Option<ExecEvent>>;

    /// Stops a running task (`Graceful` first, `Immediate` to escalate);
    /// it still reports its end.
    fn cancel(&mut self, task: TaskIndex, how: Stop);

    /// After a coordinator restart: whether the attempt of `task` the
    /// journal says was running (`state`: its number, base and job) still
    /// runs.
    fn reattach(&mut self, task: TaskIndex, state: &crate::fold::TaskState) -> Reattached;

    /// Waits for the executor's own clean-up (worktrees of finished tasks,
    /// shared checkouts) once no task runs.
    fn shutdown(&mut self) -> BoxFuture<'_, ()>;
}
