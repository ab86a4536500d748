//! The names of swarm's own files, in one place: `.swarm/` in the
//! repository (see [`crate::state`] for how it is opened safely), and a
//! run's directory in it.
//!
//! ```text
//! .swarm/runs/latest              the newest run's name
//! .swarm/durations.json           how long tasks took (crate::durations)
//! .swarm/runs/<run>/events.jsonl  the journal (crate::journal)
//! .swarm/runs/<run>/report.json   the final report
//! .swarm/runs/<run>/plan.toml     the plan as it ran (what resume runs)
//! .swarm/runs/<run>/lock          held while a coordinator drives it
//! .swarm/runs/<run>/shared        a cluster run's shared repository
//! .swarm/runs/<run>/logs/<task>/  each attempt's output
//! .swarm/runs/<run>/tmp/<task>    each task's private tmp (and HOME)
//! .swarm/runs/<run>/tmp/<task>.git  its view of the git directory
//! .swarm/plans/<run>/plan.toml    a plan `swarm run --goal` wrote
//! .swarm/plans/<run>/plan.map.md  the repository map its planner saw
//! .swarm/plans/<run>/planner.transcript.jsonl  the planner's conversation
//! ```

use std::path::{Path, PathBuf};

pub use crate::ids::LATEST;
use crate::ids::flat;

/// swarm's directory in a repository.
pub const STATE_DIR: &str = ".swarm";

pub const RUNS: &str = "runs";
/// The history of task durations, shared by the repository's runs.
pub const DURATIONS: &str = "durations.json";
pub const JOURNAL: &str = "events.jsonl";
/// In a run's directory: the run was cleaned because newer runs pushed
/// it past `[swarm] keep_runs` (so later runs do not clean it again).
pub const CLEANED: &str = "cleaned";
/// When the journal was flushed to the disk, beside it (`flushes`).
pub const FLUSHES: &str = "flushes";
pub const REPORT: &str = "report.json";
pub const PLAN: &str = "plan.toml";
pub const LOCK: &str = "lock";
/// In a cluster run's directory: the shared repository its jobs pushed to
/// (a path or a URL), for `swarm clean` to remove the run's refs there.
pub const SHARED: &str = "shared";
pub const LOGS: &str = "logs";
pub const TMP: &str = "tmp";
pub const PLANS: &str = "plans";
/// `swarm mcp`'s own directory: the logs of the runs it started, and
/// (`mcp/plans/`) the plans its clients sent, each named by the SHA-256
/// of its bytes.
pub const MCP: &str = "mcp";
/// Where `swarm mcp`'s `plan_goal` writes the plans it makes, under
/// `mcp/`: the one place in `.swarm/` a client may name a plan.
pub const GOALS: &str = "goals";
/// The repository map beside a planned plan (`plan.toml` -> `plan.map.md`).
pub const MAP_SUFFIX: &str = "map.md";
/// The replanner's conversation, in the run's directory.
pub const REPLAN_TRANSCRIPT: &str = "replan.transcript.jsonl";
/// The planner's transcript beside a planned plan.
pub const PLANNER_TRANSCRIPT: &str = "planner.transcript.jsonl";

/// Where `swarm run --goal` keeps the plan of run `run` and what made it.
pub fn plans_dir(repo: &Path, run: &str) -> PathBuf {
    repo.join(STATE_DIR).join(PLANS).join(run)
}

/// The directory of run `run` in the repository at `repo`.
pub fn run_dir(repo: &Path, run: &str) -> PathBuf {
    repo.join(STATE_DIR).join(RUNS).join(run)
}

/// Task `task`'s private tmp directory in the run directory `run_dir`.
pub fn task_tmp(run_dir: &Path, task: &str) -> PathBuf {
    run_dir.join(TMP).join(&*flat(task))
}

/// Where an attempt of task `task` that cannot have its own build caches
/// (another run's attempt holds them) builds in empty ones instead
/// (`<tmp>/<task>.caches/<tool>`, swarm's: a name with a `.`, which no
/// task id has, so no task's tmp is it).
pub fn own_caches_tmp(run_dir: &Path, task: &str) -> PathBuf {
    run_dir.join(TMP).join(format!("{}.caches", flat(task)))
}

/// Task `task`'s private tmp (and HOME) while its `[setup]` runs: apart
/// from the task's own, made fresh each time (a name with a `.`, which no
/// task id has).
/// Where the upper layers of the overlays task `task`'s worktree is shown
/// are (swarm's; no task is granted it): beside its tmp.
pub fn layers_tmp(run_dir: &Path, task: &str) -> PathBuf {
    run_dir.join(TMP).join(format!("{}.layers", flat(task)))
}

pub fn setup_tmp(run_dir: &Path, task: &str) -> PathBuf {
    run_dir.join(TMP).join(format!("{}.setup", flat(task)))
}

/// Task `task`'s private tmp (and HOME) while its `[cleanup]` runs, made
/// fresh each time.
pub fn cleanup_tmp(run_dir: &Path, task: &str) -> PathBuf {
    run_dir.join(TMP).join(format!("{}.cleanup", flat(task)))
}

/// The HOME and TMPDIR of variant `task`'s scorer, made fresh for it.
pub fn score_home(run_dir: &Path, task: &str) -> PathBuf {
    run_dir.join(TMP).join(format!("{}.score", flat(task)))
}

/// Where an unconfined variant's scorer runs: a checkout of its own of the
/// variant's worktree as it is (a sandboxed scorer sees the worktree
/// read-only instead).
pub fn score_checkout(run_dir: &Path, task: &str) -> PathBuf {
    run_dir
        .join(TMP)
        .join(format!("{}.score-checkout", flat(task)))
}

/// Where task `task`'s view of the git directory is made.
pub fn git_view(run_dir: &Path, task: &str) -> PathBuf {
    run_dir.join(TMP).join(format!("{}.git", flat(task)))
}

/// Where the view of the git directory that read-only tasks on the
/// checkout recorded at `admin` share is made (see
/// `attempt::readonly_view`). A name with a `.`, which no task id has.
pub fn readonly_git_view(run_dir: &Path, admin: &Path) -> PathBuf {
    let name = admin.file_name().unwrap_or_default().to_string_lossy();
    run_dir.join(TMP).join(format!("readonly.{name}.git"))
}

/// The directory of task `task`'s logs.
pub fn task_logs(run_dir: &Path, task: &str) -> PathBuf {
    run_dir.join(LOGS).join(&*flat(task))
}

/// Where a task attempt's logs are, relative to nothing: absolute paths
/// under the run directory.
pub fn log_paths(
    run_dir: &Path,
    task: &str,
    attempt: u32,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = task_logs(run_dir, task);
    (
        dir.join(format!("{attempt}.out")),
        dir.join(format!("{attempt}.err")),
    )
}

/// Where the output of an attempt's `[setup]` is: apart from the
/// command's own (`<attempt>.setup.out|.err`).
/// The test cases of attempt `attempt` of `task`'s own test report
/// (`junit`), as swarm keeps them (JSON).
pub fn tests_path(run_dir: &Path, task: &str, attempt: u32) -> PathBuf {
    task_logs(run_dir, task).join(format!("{attempt}.tests.json"))
}

pub fn setup_log_paths(
    run_dir: &Path,
    task: &str,
    attempt: u32,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = task_logs(run_dir, task);
    (
        dir.join(format!("{attempt}.setup.out")),
        dir.join(format!("{attempt}.setup.err")),
    )
}

/// Where the output of an attempt's `verify` command is: apart from the
/// command's own (`<attempt>.verify.out|.err`).
pub fn verify_log_paths(
    run_dir: &Path,
    task: &str,
    attempt: u32,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = task_logs(run_dir, task);
    (
        dir.join(format!("{attempt}.verify.out")),
        dir.join(format!("{attempt}.verify.err")),
    )
}

/// Where attempt `attempt` of variant `task` logs its `score` command.
pub fn score_log_paths(
    run_dir: &Path,
    task: &str,
    attempt: u32,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = task_logs(run_dir, task);
    (
        dir.join(format!("{attempt}.score.out")),
        dir.join(format!("{attempt}.score.err")),
    )
}

/// Where an agent task's final answer (its `output_schema` JSON) is kept
/// for its dependents, from its last successful attempt.
pub fn output_path(run_dir: &Path, task: &str) -> PathBuf {
    task_logs(run_dir, task).join("output.json")
}

/// Where the egress proxy of attempt `attempt` of task `task` (a task
/// with a network allow-list) writes what it let through and refused.
pub fn egress_log_path(run_dir: &Path, task: &str, attempt: u32) -> PathBuf {
    task_logs(run_dir, task).join(format!("{attempt}.egress.log"))
}

/// The same for the attempt's `[setup]`, which has a network of its own.
pub fn setup_egress_log_path(run_dir: &Path, task: &str, attempt: u32) -> PathBuf {
    task_logs(run_dir, task).join(format!("{attempt}.setup.egress.log"))
}

/// Where the output of an attempt's `[cleanup]` is
/// (`<attempt>.cleanup.out|.err`).
pub fn cleanup_log_paths(run_dir: &Path, task: &str, attempt: u32) -> (PathBuf, PathBuf) {
    let dir = task_logs(run_dir, task);
    (
        dir.join(format!("{attempt}.cleanup.out")),
        dir.join(format!("{attempt}.cleanup.err")),
    )
}

/// Where the egress proxy of an attempt's `[cleanup]` logs.
pub fn cleanup_egress_log_path(run_dir: &Path, task: &str, attempt: u32) -> PathBuf {
    task_logs(run_dir, task).join(format!("{attempt}.cleanup.egress.log"))
}

/// Where attempt `attempt` of agent task `task` keeps its transcript.
pub fn transcript_path(run_dir: &Path, task: &str, attempt: u32) -> PathBuf {
    task_logs(run_dir, task).join(format!("{attempt}.transcript.jsonl"))
}
