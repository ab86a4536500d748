//! The exit codes of `swarm`, in one place. Documented in the manual (book/src/commands.md, "Exit codes"); a
//! change here is a breaking change for every CI script that calls swarm.

/// Every task succeeded and was merged.
pub const SUCCESS: i32 = 0;
/// Some task failed, timed out, stalled or conflicted (or was blocked by one
/// that did).
pub const TASKS_FAILED: i32 = 1;
/// The plan or the command line is invalid; nothing was run or changed.
pub const INVALID_INPUT: i32 = 2;
/// The run was interrupted (Ctrl-C, SIGTERM); all work is kept on refs.
pub const INTERRUPTED: i32 = 130;

/// swarm itself failed (an I/O or git error it could not get past, a bug):
/// not the tasks' fault, and not the input's. What was done is kept.
pub const INTERNAL_ERROR: i32 = 3;

/// Exit code of the sandbox launcher (`swarm __sandbox`, internal) when it
/// cannot serve at all; it tells the coordinator why before it exits, and
/// `swarm run` then refuses to start (INVALID_INPUT). Defined once, by the
/// launcher.
pub const SANDBOX_FAILED: i32 = swarm_sandbox::launcher::EXIT_SANDBOX_FAILED;
