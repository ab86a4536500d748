//! The exit codes of `swarm`, in one place. Documented in the README; a
//! change here is a breaking change for every CI script that calls swarm.

/// Every task succeeded and was merged.
pub const SUCCESS: i32 = 0;
/// Some task failed, timed out or conflicted (or was blocked by one that did).
pub const TASKS_FAILED: i32 = 1;
/// The plan or the command line is invalid; nothing was run or changed.
pub const INVALID_INPUT: i32 = 2;
/// The run was interrupted (Ctrl-C, SIGTERM); all work is kept on refs.
pub const INTERRUPTED: i32 = 130;

/// Exit code of the sandbox helper when it could not confine a worker (the
/// worker's command never ran). Seen in a task's result, not as swarm's own.
pub const SANDBOX_FAILED: i32 = 125;
