//! Shared serde types of swarm: how a task ended, the events of a run's
//! journal, and the report written at the end of a run.
//!
//! These types are the contract between the coordinator and everything that
//! reads its output (`swarm status`, CI systems, other tools), so they live
//! apart from the runtime and change only with a bump of [`SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};
/// The vector of [`TaskReport`]'s lists (re-exported for those who build one).
pub use thin_vec::ThinVec;

pub mod agent;
pub mod cassette;
pub mod experiment;
pub mod verify;

/// The JSON schema of journal events (`events.jsonl`, `--events json`),
/// pretty-printed, as committed in `events.schema.json`.
pub fn events_schema() -> String {
    let schema = schemars::schema_for!(Event);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Version of the journal and report formats. Bumped on any incompatible
/// change; readers refuse versions they do not know.
pub const SCHEMA_VERSION: u32 = 1;

/// How a task ended, as shown to users and recorded in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not started yet.
    Pending,
    /// Its worker is running (or its worktree is being prepared).
    Running,
    /// Ran, exited 0, passed `verify`; not merged yet.
    Succeeded,
    /// Succeeded and its result is part of the integration branch.
    Merged,
    /// Exited non-zero, was killed by a signal, or failed `verify`.
    Failed,
    /// Killed because it ran past its `timeout`.
    TimedOut,
    /// Ended because it showed no sign of life (no output, no CPU time, no
    /// model call) for its `stall_after`.
    Stalled,
    /// Its result conflicts with the integration branch.
    Conflicted,
    /// Not run (or not merged) because a dependency did not succeed.
    Blocked,
    /// Not run because the run stopped early (`on_failure = "stop"`).
    Skipped,
    /// Stopped by the user (Ctrl-C) or by a signal to the coordinator.
    Cancelled,
    /// Its merge broke the run-wide verify (`[swarm] verify`), found by
    /// bisecting the merges: taken out of the integration branch, its
    /// result kept on its ref.
    BrokeVerify,
}

impl TaskStatus {
    /// True once the task will not change state again in this run.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Running | Self::Succeeded)
    }

    /// True for outcomes that count as the task doing its job.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Succeeded | Self::Merged)
    }

    /// The lowercase word used in human output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Merged => "merged",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Stalled => "stalled",
            Self::Conflicted => "conflicted",
            Self::Blocked => "blocked",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
            Self::BrokeVerify => "broke-verify",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of payload a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A shell command (`run = "..."`), run with `sh -c`.
    Command,
    /// A WASI program (`wasm = "..."`), run by wasmtime.
    Wasm,
    /// A coding agent (`prompt = "..."`), talking to a model through the
    /// coordinator's gateway.
    Agent,
}

impl TaskKind {
    /// The kind's name, as plans and the live view say it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Wasm => "wasm",
            Self::Agent => "agent",
        }
    }
}

/// Where a task's worker runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Its own writable worktree; its changes are committed and merged.
    #[default]
    Worktree,
    /// A checkout of its base commit shared with other read-only tasks;
    /// nothing is committed or merged.
    Readonly,
}

/// How one attempt of a task's worker ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AttemptOutcome {
    /// The command exited with this code (0 is success).
    Exited { code: i32 },
    /// The command was killed by this signal (not by swarm).
    Signaled { signal: i32 },
    /// swarm killed it because it ran past its timeout.
    TimedOut,
    /// swarm ended it because it showed no sign of life for `after_ms`
    /// (its `stall_after`): no output, no CPU time, no model call.
    Stalled { after_ms: u64 },
    /// swarm killed it because the run was cancelled.
    Cancelled,
    /// The worker could not be started at all.
    SpawnFailed { message: String },
    /// A WASM guest trapped (unreachable, stack overflow, out-of-bounds
    /// access, out of fuel, ...); the message names the trap.
    Trapped { message: String },
    /// The kernel killed a process of the task because the task went over
    /// its memory limit (its cgroup's, in bytes).
    OutOfMemory { limit: Option<u64> },
    /// The attempt's worker was lost where it ran: its cluster node failed,
    /// or its job ended without reporting a result; the message says how.
    Lost { message: String },
}

impl AttemptOutcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Exited { code: 0 })
    }

    /// The exit code to report, where the worker produced one.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Self::Exited { code } => Some(*code),
            _ => None,
        }
    }
}

/// One line of a run's journal (`.swarm/runs/<run>/events.jsonl`).
///
/// The journal is append-only; `swarm status` and the final report are
/// folds over it, so they can never disagree with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// [`SCHEMA_VERSION`] of the writer.
    pub v: u32,
    /// RFC 3339 time, UTC, milliseconds.
    pub ts: String,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum EventBody {
    RunStarted {
        run: String,
        plan: String,
        repo: String,
        base: String,
        base_commit: String,
        /// `None` for a run whose tasks are all read-only: it has nothing
        /// to merge, so it creates no branch.
        #[serde(default)]
        integration_branch: Option<String>,
        concurrency: usize,
        /// Every task of the expanded plan, in merge order.
        tasks: Vec<TaskInfo>,
        /// The directory holding the repository's task worktrees (the run's
        /// are in `<worktrees>/<run>/`); absent in journals of runs that
        /// kept them in `.swarm/worktrees/`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worktrees: Option<String>,
        /// Where the plan came from when the person running swarm did not
        /// write it (a plan sent over MCP); absent: theirs. `swarm resume`
        /// holds the saved plan to the same rules.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<PlanOrigin>,
        /// The branch `base` named when the run started (`HEAD`'s, or the
        /// branch itself), if it named one: where `swarm land` lands the
        /// run by default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_branch: Option<String>,
    },
    /// `swarm resume` took over the run after its coordinator died (or the
    /// run was cancelled): what follows continues it.
    RunResumed {
        /// Tasks that were running and start again from a clean worktree
        /// (their partial work is on `<task>.<attempt>` refs).
        restarted: Vec<String>,
        /// Every task that will run again (the restarted ones, and those
        /// cancelled, skipped or blocked by them).
        pending: Vec<String>,
        /// The integration branch's tip the run continues from.
        integration_commit: String,
        /// Tasks that had failed or timed out and run again
        /// (`swarm resume --retry-failed`); also in `pending`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        retried: Vec<String>,
        /// Tasks whose merge the integration branch holds though the
        /// journal lost its `task_merged` to the crash: merged now.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        merged: Vec<String>,
        /// The integration branch was broken (its tip or an object it
        /// needs gone, as a `git gc --prune=now` beside an older swarm
        /// could leave it): what was wrong. It was made again from the
        /// base and the merged tasks' refs, in merge order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rebuilt: Option<String>,
    },
    /// Every dependency of the task succeeded: it waits for a free slot.
    TaskQueued { task: String },
    /// The task is ready, but waits for `behind` (earlier in merge order,
    /// still to land) to be merged first and then starts on the integration
    /// branch as it is: what each last changed (or declares in `paths`)
    /// overlaps in `files`, so running both side by side would most likely
    /// make it conflict, and run again.
    TaskHeld {
        task: String,
        behind: String,
        files: Vec<String>,
    },
    TaskStarted {
        task: String,
        attempt: u32,
        base_commit: String,
        /// Where the attempt runs: its worktree on this machine, or, for a
        /// cluster job, where the node will make it.
        workdir: String,
        /// The batch job running the attempt (cluster executors: the Slurm
        /// job id), journaled as soon as it is submitted so that `swarm
        /// resume` can find it again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<String>,
        /// How long the attempt's set-up took, from the moment the
        /// dispatcher gave it its place (for a first attempt; for a retry,
        /// from the previous attempt's end) to its start, or to its place
        /// on deck behind a running command: its dependencies merged, its
        /// worktree or checkout made. The attempt held its place all that
        /// time. Absent for a cluster job, and in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        setup_ms: Option<u64>,
        /// The plan's `[setup]` in the attempt's fresh worktree (part of
        /// `setup_ms`, just before the start): how long it took and whether
        /// a kept one was copied instead of running it. Absent without a
        /// `[setup]` (or for a task that skips it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        setup_run: Option<SetupRun>,
        /// The task's `max_file_size` (bytes): files larger are never
        /// committed from its worktree, by its snapshot or by a later
        /// `swarm clean` (or `keep_runs`) that keeps what the worktree
        /// holds. Absent in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_file_size: Option<u64>,
    },
    /// A cluster job of the attempt started on a node.
    AttemptPlaced {
        task: String,
        attempt: u32,
        job: String,
        node: String,
    },
    /// A cluster job's attempt had the plan's `[setup]` on its node (the
    /// node's own setup, or one kept there copied): journaled with its
    /// record, before its `attempt_finished` (a local attempt says it in
    /// `task_started.setup_run`).
    AttemptSetUp {
        task: String,
        attempt: u32,
        #[serde(flatten)]
        setup: SetupRun,
    },
    /// One attempt ended. With retries left a failed attempt is followed by
    /// another `task_started`.
    AttemptFinished {
        task: String,
        attempt: u32,
        #[serde(flatten)]
        outcome: AttemptOutcome,
        /// Whether `verify` ran and passed (`None`: not run).
        verify_passed: Option<bool>,
        duration_ms: u64,
        /// The snapshot of the worktree after this attempt, if it has one.
        commit: Option<String>,
        /// The ref that keeps `commit`.
        #[serde(rename = "ref")]
        git_ref: Option<String>,
        changed_files: Vec<String>,
        /// Files of the worktree the snapshot left out (too large, refused
        /// by git, unreadable); everything else is in `commit`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped_files: Vec<SkippedFile>,
        /// Files of `changed_files` outside the task's `paths` and
        /// `creates`: the attempt failed for them, whatever its outcome
        /// (its work is still on `ref`, but not merged).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        outside_paths: Vec<String>,
        /// How long the snapshot took (absent: no snapshot was taken).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot_ms: Option<u64>,
        /// How long the task's `verify` took, of `duration_ms` (absent: it
        /// did not run, or ran inside an agent's session).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verify_ms: Option<u64>,
        /// What an agent task's session did (agent tasks only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<Box<agent::AgentReport>>,
        /// A variant's `score` (variants of a scored experiment whose
        /// attempt succeeded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<experiment::Score>,
        /// The size of a variant's change against its base (variants only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diff: Option<experiment::DiffStat>,
    },
    /// Every variant of an experiment is final: their ranking, and the
    /// one whose result is the task's (followed by the task's
    /// `task_finished`).
    ExperimentDecided {
        task: String,
        #[serde(flatten)]
        decision: experiment::Decision,
    },
    /// A task asked for subtasks (an agent's `spawn_subtasks` tool, or a
    /// command's request file) and its attempt succeeded: its children
    /// join the run. They start from its result, their results are merged
    /// onto it (`subtasks_merged`), and it ends when they have.
    SubtasksSpawned {
        task: String,
        attempt: u32,
        /// The children, with their full ids (`<task>/<child>`).
        tasks: Vec<TaskInfo>,
        /// The request as accepted (`[[task]]` tables, with the ids the
        /// task wrote): what `swarm resume` reads the children from again.
        request: String,
        /// When the subtree must have ended (RFC 3339): the task's
        /// `timeout` from the start of the attempt that asked. Absent when
        /// the task has no timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<String>,
    },
    /// Every child of a task succeeded: their results merged onto the
    /// task's own (its line) make `commit`, now the task's result.
    SubtasksMerged { task: String, commit: String },
    /// A task failed after its retries and the run replans it (`[swarm]
    /// replan`): the coordinator asks its model what should take its
    /// place. `round` of at most `rounds` in the run.
    ReplanStarted {
        task: String,
        round: u32,
        rounds: u32,
        /// Why the task failed.
        reason: String,
    },
    /// The replanner's answer: the change to the plan as a diff of
    /// `[[task]]` tables (`-` the failed task, `+` the tasks that take its
    /// place, which `subtasks_spawned` then adds, starting from where it
    /// started); or, with `error`, why no fix came (the task fails).
    Replanned {
        task: String,
        round: u32,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        diff: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The task reached a final status (or `succeeded`, before its merge).
    TaskFinished {
        task: String,
        status: TaskStatus,
        /// Why, in a few words, for anything but success.
        reason: Option<String>,
    },
    /// A task of many entries (`shards`) was split into tasks `<task>-1`
    /// ... `<task>-N`, the k-th running `shards[k-1]`: journaled right
    /// after `run_started`, so that `swarm resume` runs the same shards.
    TaskSharded {
        task: String,
        shards: Vec<Vec<String>>,
        /// Entries in another shard than the task's last run put them in
        /// (regrouped by the times learned).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        moved: Vec<String>,
    },
    /// An attempt's own test report (`junit`), read after its command:
    /// its counts, or why it could not be read (a warning, never a
    /// failure of the task).
    TestsReported {
        task: String,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tests: Option<TestCounts>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        warning: Option<String>,
    },
    /// An agent task is running a tool (for progress views).
    AgentTool {
        task: String,
        name: String,
        detail: String,
    },
    /// An agent task's model call ended: its tokens, and the task's so far.
    AgentUsage {
        task: String,
        turn: u32,
        usage: agent::Usage,
        total: agent::Usage,
        cost_usd: f64,
    },
    /// A task's or the run's budget stopped an agent task.
    BudgetSpent { task: String, message: String },
    TaskMerged {
        task: String,
        commit: String,
        integration_commit: String,
        /// The user merged it by hand after a conflict (`swarm resolve`):
        /// `integration_commit` is their merge commit, which its dependents
        /// start from.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resolved: bool,
    },
    TaskConflicted {
        task: String,
        commit: String,
        files: Vec<String>,
        /// The conflicting regions, in lines of the integration branch's
        /// version of each file (files both sides added or deleted have
        /// none: the whole file conflicts).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        hunks: Vec<ConflictHunk>,
        /// Merged tasks that changed these files too: the other side.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        touched_by: Vec<String>,
    },
    /// The task's result conflicted (the `task_conflicted` before it), and
    /// it runs again on top of the integration branch as it is
    /// (`on_conflict = "rerun"`): it is pending again, and the merges after
    /// it in merge order wait for it.
    TaskRequeued {
        task: String,
        /// The integration commit it starts from.
        base_commit: String,
        /// Which re-run this is (1 for the first), of at most `reruns`.
        rerun: u32,
        reruns: u32,
        /// A repair round, not a conflict's re-run: the run-wide verify's
        /// failure names the task (or its merge was proven to break it),
        /// and it runs again on the branch as it is, its merge kept, told
        /// the failure. `rerun` is then the conflict re-runs it had.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        repair: bool,
        /// What its agent is told as it starts again (the other side of a
        /// conflict, the verify's failure): journaled, so that a resumed
        /// run tells it too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The run-wide verify (`[swarm] verify`) ran on an integration
    /// commit.
    RunVerified {
        #[serde(flatten)]
        run: verify::VerifyRun,
    },
    /// Bisection found the merge that broke the run-wide verify: it, and
    /// the merges of its merged dependents (which hold its changes), were
    /// taken out of the integration branch, and the merges after them
    /// made again onto the last commit that passed.
    VerifyBroken {
        task: String,
        /// The first integration commit that failed: the task's merge.
        commit: String,
        /// The commit before it, which passed: the branch was rebuilt on it.
        passed_commit: String,
        /// The integration branch's tip after the rebuild.
        integration_commit: String,
        /// Merged tasks taken out with it, because their results hold its
        /// changes (they are blocked).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unmerged: Vec<String>,
        /// Merged tasks whose merge conflicted once it was taken out (they
        /// are conflicted).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        conflicted: Vec<String>,
        reason: String,
    },
    /// The run-wide verify's failure could not be explained by taking
    /// merges out; the tasks owning what it names are named, and every
    /// merge is kept.
    VerifyNamed {
        #[serde(flatten)]
        named: verify::VerifyNamed,
    },
    RunFinished {
        integration_commit: String,
        exit_code: i32,
        duration_ms: u64,
    },
}

/// One conflicting region of a file: lines `start` to `end` (1-based,
/// inclusive) of the integration branch's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConflictHunk {
    pub path: String,
    pub start: u32,
    pub end: u32,
}

impl std::fmt::Display for ConflictHunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{} line {}", self.path, self.start)
        } else {
            write!(f, "{} lines {}-{}", self.path, self.start, self.end)
        }
    }
}

/// A file of a task's worktree that its snapshot did not commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SkippedFile {
    /// Relative to the worktree (`/`-separated; bytes that are not UTF-8
    /// shown as U+FFFD).
    pub path: String,
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// Why a snapshot left a file out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum SkipReason {
    /// Larger than the task's `max_file_size` (both in bytes); its content
    /// was never read.
    TooLarge { size: u64, limit: u64 },
    /// Git refuses the path (a name that stands for `.git`, such as
    /// `.GIT`, `git~1` or `sub/.git`); for a directory, everything in it.
    Refused { message: String },
    /// It could not be read: permissions, an I/O error, or not a regular
    /// file, directory or symlink (a named pipe, socket or device).
    Unreadable { message: String },
}

impl std::fmt::Display for SkippedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            SkipReason::TooLarge { size, limit } => write!(
                f,
                "{}: too large ({}, over max_file_size of {})",
                self.path,
                human_size(*size),
                human_size(*limit)
            ),
            SkipReason::Refused { message } => {
                write!(f, "{}: refused by git: {message}", self.path)
            }
            SkipReason::Unreadable { message } => write!(f, "{}: unreadable: {message}", self.path),
        }
    }
}

/// `2.0 GiB`, `100.0 MiB`, `512 B`: binary units, one decimal.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a run's plan came from, when not from the person running swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanOrigin {
    /// `mcp` (a plan an MCP client sent), or `repository` (a plan from a
    /// repository's configuration that was not trusted).
    pub origin: String,
    /// The directory inside the repository the plan's file names are
    /// relative to (`""`: its root).
    pub files_dir: String,
}

/// A task as announced at the start of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskInfo {
    pub id: String,
    pub kind: TaskKind,
    pub isolation: Isolation,
    pub deps: Vec<String>,
    /// For a variant (`<task>@<k>`), the experiment it is one way of doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_of: Option<String>,
}

/// `.swarm/runs/<run>/report.json`: the result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunReport {
    pub v: u32,
    pub run: String,
    pub plan: String,
    pub repo: String,
    pub base: String,
    pub base_commit: String,
    /// `None` for a run whose tasks are all read-only (no branch).
    #[serde(default)]
    pub integration_branch: Option<String>,
    /// Tip of the integration branch (equal to `base_commit` if nothing merged).
    pub integration_commit: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    /// The process exit code `swarm run` ended (or will end) with.
    pub exit_code: Option<i32>,
    pub tasks: Vec<TaskReport>,
    /// Every run of the run-wide verify (`[swarm] verify`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_runs: Vec<verify::VerifyRun>,
    /// The tasks a failing verify's output names, when no merge could be
    /// proven to have broken it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_named: Option<verify::VerifyNamed>,
    /// The merge queue's numbers (with a run-wide verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_queue: Option<verify::QueueStats>,
}

/// What a task's own test report (`junit = "PATH"`) says: its tests
/// counted, the failing ones named, and where every test case is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TestCounts {
    pub passed: u32,
    /// Failures and errors.
    pub failed: u32,
    pub skipped: u32,
    /// The sum of the test cases' times.
    pub time_ms: u64,
    /// The first failing tests (`classname::name`), at most ten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    /// The JSON file of every test case (see `TestCase`).
    pub cases: String,
    /// Tests that failed and then passed when run again (`TestOutcome::Flaky`),
    /// not counted in `passed`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub flaky: u32,
    /// The first flaky tests (`classname::name`), at most ten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flaky_tests: Vec<String>,
    /// Failing tests the plan's `[[quarantine]]` holds until a date not yet
    /// past: reported, never gating; not counted in `failed`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub quarantined: u32,
    /// Failing tests whose quarantine is past its `review_by`: they gate
    /// again (counted in `failed`), each said with its entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expired: Vec<String>,
    /// This report's last attempt ran again only this many of the tests
    /// (or, where the runner takes no test id, entries) that failed before
    /// (0: it ran all of them).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub reran: u32,
    /// The entries of its shard that did not run because no change of the
    /// run could affect them (`affected = true`): skipped by selection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selected_out: Vec<String>,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

impl TestCounts {
    /// Every test, each counted once.
    pub fn total(&self) -> u32 {
        self.passed + self.failed + self.skipped + self.flaky + self.quarantined
    }
}

/// One test case of a task's test report, as swarm keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TestCase {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub classname: String,
    /// The file the test is in, when the report says.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    pub time_ms: u64,
    /// When it began, in milliseconds since the Unix epoch, when the
    /// report says (nextest gives each case a `timestamp`): with it, the
    /// cases tell how long a shard's tests ran together, on however many
    /// threads, apart from the shard's start-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    pub outcome: TestOutcome,
    /// The failure's or skip's message, and for a failure its text
    /// (capped).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Its failures in earlier attempts of its task, oldest first: a
    /// `Flaky` test's before it passed, a `Failed` one's before its last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reruns: Vec<TestRerun>,
    /// The plan's `[[quarantine]]` entry that keeps this failing (or
    /// flaky) test from gating: who owns it, why, until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<String>,
}

/// One earlier failing run of a test (see `TestCase::reruns`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TestRerun {
    /// The attempt of its task it failed in.
    pub attempt: u32,
    pub time_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    Passed,
    Failed,
    Skipped,
    /// It failed, then passed when its task ran it again.
    Flaky,
}

/// An attempt's `[setup]` (see `EventBody::TaskStarted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SetupRun {
    pub ms: u64,
    /// A kept setup with the same key was copied; setup did not run.
    pub reused: bool,
    /// Of `ms`, how long it waited for another worktree's setup with the
    /// same key (whose outputs it then copied).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waited_ms: u64,
    /// The kept setup's ignored directories were shown to the worktree as
    /// overlays rather than copied (the rest was copied).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub layered: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskReport {
    pub id: String,
    pub kind: TaskKind,
    pub isolation: Isolation,
    #[schemars(with = "Vec<String>")]
    pub deps: ThinVec<String>,
    pub status: TaskStatus,
    pub reason: Option<String>,
    /// Exit code of the last attempt, if it exited.
    pub exit_code: Option<i32>,
    pub attempts: u32,
    /// Sum over all attempts.
    pub duration_ms: u64,
    /// The task's result commit (the snapshot of its last attempt).
    pub commit: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// Files the last attempt changed relative to its base; empty when the
    /// task changed nothing.
    #[schemars(with = "Vec<String>")]
    pub changed_files: ThinVec<String>,
    /// Files the last attempt's snapshot left out, and why: they are in no
    /// commit (a tracked one keeps its base content).
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schemars(with = "Vec<SkippedFile>")]
    pub skipped_files: ThinVec<SkippedFile>,
    /// Files the last attempt changed outside the task's `paths` and
    /// `creates`, which failed it (see `reason`).
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub outside_paths: ThinVec<String>,
    /// Time spent snapshotting worktrees, summed over all attempts (not
    /// part of `duration_ms`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub snapshot_ms: u64,
    #[schemars(with = "Vec<String>")]
    pub conflict_files: ThinVec<String>,
    /// Where the files conflict (see [`ConflictHunk`]).
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schemars(with = "Vec<ConflictHunk>")]
    pub conflict_hunks: ThinVec<ConflictHunk>,
    /// Merged tasks that changed the conflicting files too.
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub conflict_with: ThinVec<String>,
    /// How many times it ran again after its result conflicted with the
    /// integration branch (`on_conflict = "rerun"`).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub conflict_reruns: u32,
    /// Time spent in the plan's `[setup]`, summed over all attempts (part
    /// of no attempt's `duration_ms`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub setup_ms: u64,
    /// Whether the last attempt's setup was a kept one, copied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub setup_reused: bool,
    /// Its last attempt's own test report (`junit`), counted. Boxed: most
    /// tasks have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Box<TestCounts>>,
    pub stdout_log: String,
    pub stderr_log: String,
    /// An agent task's last session: outcome, summary, turns, tokens, cost
    /// and transcript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Box<agent::AgentReport>>,
    /// For a variant (`<task>@<k>`), the experiment it is one way of doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_of: Option<String>,
    /// For a subtask (`<parent>/<child>`), the task that spawned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For a task that spawned subtasks, their ids.
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub subtasks: ThinVec<String>,
    /// For a failed task that was replanned: the replanner's reason (its
    /// subtasks are what took its place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replanned: Option<String>,
    /// A variant's score, when its experiment has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Box<experiment::Score>>,
    /// A variant's change against its base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<Box<experiment::DiffStat>>,
    /// For an experiment: its variants ranked, and which one was picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<Box<experiment::Decision>>,
    /// The cluster jobs of its attempts (cluster executors only).
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schemars(with = "Vec<JobPlacement>")]
    pub jobs: ThinVec<JobPlacement>,
    /// What a person should look at though the task did not fail, e.g.
    /// `changed nothing: ...` for a writing task that succeeded without
    /// changing a file.
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub warnings: ThinVec<String>,
}

/// One attempt's batch job and the node it ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobPlacement {
    pub attempt: u32,
    /// The cluster's job id.
    pub job: String,
    /// The node it ran on (`None` until it started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flat_json_objects_tagged_by_event() -> Result<(), serde_json::Error> {
        let event = Event {
            v: SCHEMA_VERSION,
            ts: "2026-01-01T00:00:00.000Z".into(),
            body: EventBody::AttemptFinished {
                task: "a".into(),
                attempt: 1,
                outcome: AttemptOutcome::Exited { code: 3 },
                verify_passed: None,
                duration_ms: 5,
                commit: None,
                git_ref: None,
                changed_files: vec![],
                skipped_files: vec![],
                outside_paths: vec![],
                snapshot_ms: None,
                verify_ms: None,
                agent: None,
                score: None,
                diff: None,
            },
        };
        let line = serde_json::to_string(&event)?;
        assert_eq!(
            line,
            r#"{"v":1,"ts":"2026-01-01T00:00:00.000Z","event":"attempt_finished","task":"a","attempt":1,"outcome":"exited","code":3,"verify_passed":null,"duration_ms":5,"commit":null,"ref":null,"changed_files":[]}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&line)?, event);
        Ok(())
    }

    #[test]
    fn skipped_files_are_flat_and_absent_when_none() -> Result<(), serde_json::Error> {
        let skipped = SkippedFile {
            path: "big.bin".into(),
            reason: SkipReason::TooLarge {
                size: 2 << 30,
                limit: 100 << 20,
            },
        };
        let json = serde_json::to_string(&skipped)?;
        assert_eq!(
            json,
            r#"{"path":"big.bin","reason":"too_large","size":2147483648,"limit":104857600}"#
        );
        assert_eq!(serde_json::from_str::<SkippedFile>(&json)?, skipped);
        assert_eq!(
            skipped.to_string(),
            "big.bin: too large (2.0 GiB, over max_file_size of 100.0 MiB)"
        );
        // A line written before these fields existed still reads.
        let old = r#"{"v":1,"ts":"t","event":"attempt_finished","task":"a","attempt":1,"outcome":"exited","code":0,"verify_passed":null,"duration_ms":5,"commit":"c","ref":"r","changed_files":[]}"#;
        let Event {
            body:
                EventBody::AttemptFinished {
                    skipped_files,
                    outside_paths,
                    snapshot_ms,
                    ..
                },
            ..
        } = serde_json::from_str::<Event>(old)?
        else {
            panic!("not an attempt_finished event");
        };
        assert!(skipped_files.is_empty());
        assert!(outside_paths.is_empty());
        assert_eq!(snapshot_ms, None);
        Ok(())
    }

    #[test]
    fn only_terminal_states_are_final() {
        assert!(!TaskStatus::Succeeded.is_final());
        assert!(TaskStatus::Merged.is_final());
        assert!(TaskStatus::Conflicted.is_final());
        assert!(!TaskStatus::Running.is_final());
    }
}

#[cfg(test)]
mod size_tests {
    /// A run keeps one report per task from its start (10,000 of them in
    /// BENCHMARKS.md section 8): growing it is a choice, not an accident.
    /// 368 since `conflict_reruns` (issue 61): 80 KB for 10,000 tasks;
    /// 376 since `setup_ms` and `setup_reused` (issue 62); 384 with
    /// `tests` (issue 63).
    #[test]
    fn a_task_report_stays_small() {
        let size = std::mem::size_of::<super::TaskReport>();
        assert!(size <= 384, "TaskReport is {size} bytes");
    }
}
