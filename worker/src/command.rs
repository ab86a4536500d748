//! Command tasks: `sh -c <script>` in the task's directory, output to log
//! files, stopped on deadline or on request.

use std::fs::OpenOptions;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use swarm_protocol::AttemptOutcome;
use swarm_sandbox::{Policy, Stop, kill_group, term_group};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::Instant;

/// One command to run.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Given to `sh -c`.
    pub script: String,
    pub cwd: PathBuf,
    /// Variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Output is appended to these files (created if missing).
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// When the command is killed as timed out.
    pub deadline: Option<Instant>,
    /// How long a stopped command gets between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Confine the command; `None` runs it unconfined with the inherited
    /// environment plus `env`.
    pub sandbox: Option<Sandboxed>,
}

/// How to confine a command: the sandbox helper (the `swarm` binary, run as
/// `swarm __sandbox`) and the policy it enforces before `execve`.
#[derive(Debug, Clone)]
pub struct Sandboxed {
    pub helper: PathBuf,
    pub policy: Policy,
}

/// Runs `spec` to completion, deadline or stop request, and reaps its whole
/// process group either way: background children die with the attempt.
pub async fn run_command(
    spec: &CommandSpec,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> AttemptOutcome {
    let open = |path: &PathBuf| OpenOptions::new().create(true).append(true).open(path);
    let (stdout, stderr) = match (open(&spec.stdout), open(&spec.stderr)) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            return AttemptOutcome::SpawnFailed {
                message: format!("open log files: {e}"),
            };
        }
    };
    // An absolute path spares a PATH search (several failed execve calls)
    // per task; every POSIX system has /bin/sh.
    let mut cmd = match &spec.sandbox {
        None => Command::new("/bin/sh"),
        Some(sandboxed) => {
            let policy = match serde_json::to_string(&sandboxed.policy) {
                Ok(json) => json,
                Err(e) => {
                    return AttemptOutcome::SpawnFailed {
                        message: format!("encode the sandbox policy: {e}"),
                    };
                }
            };
            let mut cmd = Command::new(&sandboxed.helper);
            cmd.args(["__sandbox", "--policy", &policy, "--", "/bin/sh"]);
            // Nothing of the coordinator's environment reaches a sandboxed
            // worker but what `env` lists (an allowlist built by the caller).
            cmd.env_clear();
            cmd
        }
    };
    cmd.arg("-c")
        .arg(&spec.script)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true);
    if spec.sandbox.is_none() {
        // A sandboxed worker's helper calls setsid, which makes it the
        // leader of a new group (and fails if it already leads one).
        cmd.process_group(0);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return AttemptOutcome::SpawnFailed {
                message: format!("start `sh -c` in {}: {e}", spec.cwd.display()),
            };
        }
    };
    let Some(pgid) = child.id() else {
        return AttemptOutcome::SpawnFailed {
            message: "the command exited before it could be tracked".into(),
        };
    };
    let deadline = async {
        match spec.deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };

    let (outcome, how) = tokio::select! {
        status = child.wait() => {
            kill_group(pgid);
            return match status {
                Ok(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => AttemptOutcome::Exited { code },
                    (None, Some(signal)) => AttemptOutcome::Signaled { signal },
                    (None, None) => AttemptOutcome::Exited { code: -1 },
                },
                Err(e) => AttemptOutcome::SpawnFailed { message: format!("wait for the command: {e}") },
            };
        }
        () = deadline => (AttemptOutcome::TimedOut, Stop::Graceful),
        how = requested(stop, Stop::Graceful) => (AttemptOutcome::Cancelled, how),
    };

    if how == Stop::Graceful {
        term_group(pgid);
        tokio::select! {
            _ = child.wait() => {}
            () = tokio::time::sleep(spec.grace) => {}
            _ = requested(stop, Stop::Immediate) => {}
        }
    }
    kill_group(pgid);
    let _ = child.wait().await;
    // Anything that was still starting up when the leader died.
    kill_group(pgid);
    outcome
}

/// Resolves once a stop of at least `level` has been requested.
async fn requested(stop: &mut watch::Receiver<Option<Stop>>, level: Stop) -> Stop {
    // Copy the value out at once: the watch guard must not live across the
    // await below.
    let seen = stop
        .wait_for(|s| s.is_some_and(|s| s >= level))
        .await
        .map(|s| *s);
    match seen {
        Ok(s) => s.unwrap_or(level),
        // The coordinator is gone: nobody will ever ask.
        Err(_) => std::future::pending().await,
    }
}
