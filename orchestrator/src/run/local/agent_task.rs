//! One attempt of an agent task: the agent process (`swarm __agent`, in the
//! task's sandbox, with no network or the hosts of its network list) and
//! its gateway session, side by side,
//! joined by a socket pair; `verify` runs when the agent says it is done,
//! and its failure goes back to the agent for a repair round.

#![allow(
    clippy::disallowed_methods,
    reason = "a task's logs and the verify's captures beside them, swarm's own files"
)]

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use swarm_protocol::AttemptOutcome;
use swarm_protocol::agent::{AgentOutcome, AgentReport};
use swarm_sandbox::Stop;
use swarm_worker::CommandSpec;
use tokio::sync::watch;

use super::ctx::Ctx;
use super::describe::describe_outcome;
use crate::gateway::{Gateway, Session, Verdict, Verifier};
use crate::plan::{AgentTask, Task};

/// Most seconds one bash call of an agent may run.
const MAX_BASH_TIMEOUT: Duration = Duration::from_secs(600);

/// Bytes of `verify`'s output given back to the agent.
const FEEDBACK_BYTES: u64 = 8 << 10;

/// How an agent attempt ended.
pub(crate) struct AgentAttempt {
    pub outcome: AttemptOutcome,
    pub verify_passed: Option<bool>,
    pub report: Option<AgentReport>,
}

fn failed(message: String) -> AgentAttempt {
    AgentAttempt {
        outcome: AttemptOutcome::SpawnFailed { message },
        verify_passed: None,
        report: None,
    }
}

/// The cassette of attempt `attempt` of `task` when the run records or
/// replays model traffic, with the places of this attempt that its
/// requests may quote (a recorded run's were elsewhere).
pub(super) fn reel(
    ctx: &Ctx,
    gateway: &Gateway,
    task: &Task,
    attempt: u32,
    spec: &CommandSpec,
) -> Result<Option<std::sync::Arc<crate::gateway::tape::Reel>>, String> {
    let mut paths = vec![
        ("<worktree>".to_string(), spec.cwd.clone()),
        (
            "<tmp>".to_string(),
            crate::layout::task_tmp(&ctx.run_dir, &task.id),
        ),
        ("<run>".to_string(), ctx.run_dir.clone()),
    ];
    // The repository: the run directory is `<repo>/.swarm/runs/<run>`.
    if let Some(repo) = ctx.run_dir.ancestors().nth(3) {
        paths.push(("<repo>".to_string(), repo.to_path_buf()));
    }
    gateway.reel(
        crate::gateway::tape::ReelId::Attempt {
            task: task.id.clone(),
            attempt,
        },
        paths,
    )
}

/// The MCP servers `agent` uses, as this host has them; the sandbox in
/// `spec` is made to show their installations, read-only.
pub(super) fn mcp_servers(
    ctx: &Ctx,
    agent: &AgentTask,
    spec: &mut CommandSpec,
) -> Result<Vec<swarm_protocol::agent::McpServer>, String> {
    let mut servers = Vec::new();
    for name in &agent.mcp {
        let Some(found) = ctx.mcp_servers.get(name) else {
            return Err(format!(
                "start MCP server `{name}`: its program was not found when the run started"
            ));
        };
        if let Some(sandboxed) = &mut spec.sandbox
            && !sandboxed.policy.read_only.contains(&found.grant)
        {
            sandboxed.policy.read_only.push(found.grant.clone());
        }
        servers.push(found.server.clone());
    }
    Ok(servers)
}

/// Runs one attempt of agent task `task`. `spec` is set up for the task's
/// worktree, environment, logs, deadline and sandbox; this turns it into
/// the agent process and a verify command.
pub(crate) async fn run(
    ctx: &Ctx,
    task: &Task,
    agent: &AgentTask,
    attempt: u32,
    mut spec: CommandSpec,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> AgentAttempt {
    let (Some(gateway), Some(program)) = (&ctx.gateway, &ctx.agent_program) else {
        return failed("run an agent task: the run has no model gateway".into());
    };
    let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => return failed(format!("create the agent's channel: {e}")),
    };
    let ours = match ours
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(ours))
    {
        Ok(s) => s,
        Err(e) => return failed(format!("create the agent's channel: {e}")),
    };
    let transcript = crate::layout::transcript_path(&ctx.run_dir, &task.id, attempt);
    let bash_timeout = task
        .timeout
        .unwrap_or(MAX_BASH_TIMEOUT)
        .min(MAX_BASH_TIMEOUT);
    let mut session =
        match Session::new(gateway.clone(), &task.id, agent, bash_timeout, &transcript) {
            // The person's files an agent reads stay out of its transcript.
            Ok(s) => s.with_redact(ctx.included.redact.clone()),
            Err(e) => return failed(e),
        };
    for group in budget_groups(ctx, task, gateway, agent) {
        session.join_group(group);
    }
    match reel(ctx, gateway, task, attempt, &spec) {
        Ok(reel) => session = session.with_reel(reel),
        Err(e) => return failed(e),
    }
    session = session.with_network(task.network.hosts().map(ToString::to_string));
    session = session.with_activity(
        spec.stall
            .as_ref()
            .map(|s| std::sync::Arc::clone(&s.activity)),
    );
    match mcp_servers(ctx, agent, &mut spec) {
        Ok(servers) => session = session.with_mcp(servers),
        Err(e) => return failed(e),
    }
    // The model's subtask requests, checked as they come (`run::spawn`).
    session = session.with_spawn(spawn_check(ctx, task, &spec.cwd));
    if let Some(index) = ctx.tasks.position(&task.id) {
        let events = ctx.events.clone();
        session = session.with_notes(Box::new(move |note| {
            let _ = events.send(crate::run::executor::ExecEvent::Agent { task: index, note });
        }));
    }

    let verify_spec = task.verify.as_ref().map(|v| CommandSpec {
        script: v.clone(),
        // Its own timeout bounds it; the agent's watch is the agent's.
        stall: None,
        ..spec.clone()
    });
    let fd = theirs.as_raw_fd();
    spec.program = Some(vec![program.display().to_string(), "__agent".into()]);
    spec.pass_fds = vec![fd];
    // Sandboxed, the agent's environment is swarm's own list; unconfined
    // (`sandbox = "none"`), it is the user's, as for any task, minus the
    // variables holding API keys (`env_remove`).
    spec.env
        .push((swarm_protocol::agent::CHANNEL_FD_VAR.into(), fd.to_string()));
    if let Some(sandboxed) = &mut spec.sandbox {
        // The agent is the swarm binary, wherever it is installed.
        sandboxed.policy.read_only.push(program.clone());
    }

    // Its bash tool's commands run in its sandbox: a network list reaches
    // them, as it does verify, through the same proxy.
    let egress = super::egress::Egress::of(ctx, task, attempt);
    let mut verifier = VerifyRunner {
        spec: verify_spec,
        egress: egress.clone(),
        stop: stop.clone(),
    };

    let (outcome, stopped_by_us) = serve_beside(
        &spec,
        egress.as_ref(),
        &mut session,
        ours,
        theirs,
        &mut verifier,
        stop,
    )
    .await;
    let end = session.end();
    let mut report = end.report;
    let outcome = settle(outcome, &mut report, stopped_by_us, stop.borrow().is_some());
    AgentAttempt {
        outcome,
        verify_passed: end.verify_passed,
        report: Some(report),
    }
}

/// Checks the model's subtask requests for `task` (working in `cwd`) as
/// they come (`run::spawn`), off the async threads.
fn spawn_check(ctx: &Ctx, task: &Task, cwd: &Path) -> crate::gateway::Spawn {
    let (spawner, parent, workdir) = (
        std::sync::Arc::clone(&ctx.spawner),
        std::sync::Arc::new(task.clone()),
        std::sync::Arc::new(cwd.to_path_buf()),
    );
    Box::new(move |input| {
        let (spawner, parent, workdir) = (
            std::sync::Arc::clone(&spawner),
            std::sync::Arc::clone(&parent),
            std::sync::Arc::clone(&workdir),
        );
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let request = crate::run::spawn::json_request(&input).map_err(|e| vec![e])?;
                spawner.request(
                    &parent,
                    "spawn_subtasks",
                    &request,
                    &crate::run::spawn::exists_in(&workdir),
                )
            })
            .await
            .unwrap_or_else(|e| Err(vec![format!("swarm could not check it: {e}")]))
        })
    })
}

/// The agent process (`spec`) and its gateway session side by side, to
/// the agent's end: how it ended, and whether we stopped it. The agent
/// runs under a stop signal of its own: the run's (forwarded) or ours,
/// when the session ended first because the agent broke the protocol and
/// must not go on unsupervised.
async fn serve_beside(
    spec: &CommandSpec,
    egress: Option<&std::sync::Arc<super::egress::Egress>>,
    session: &mut Session,
    ours: tokio::net::UnixStream,
    theirs: std::os::unix::net::UnixStream,
    verifier: &mut VerifyRunner,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> (AttemptOutcome, bool) {
    let (local_stop, mut agent_stop) = watch::channel(*stop.borrow());
    let mut stopped_by_us = false;
    let agent_run = super::egress::run_command(spec, egress, &mut agent_stop);
    let serving = session.serve(ours, verifier);
    tokio::pin!(agent_run, serving);
    let mut served = false;
    let mut run_stop_open = true;
    let outcome = loop {
        tokio::select! {
            outcome = &mut agent_run => break outcome,
            () = &mut serving, if !served => {
                served = true;
                if local_stop.borrow().is_none() {
                    stopped_by_us = true;
                    let _ = local_stop.send(Some(Stop::Graceful));
                }
            }
            changed = stop.changed(), if run_stop_open => match changed {
                Ok(()) => {
                    let level = *stop.borrow();
                    let _ = local_stop.send(level);
                }
                Err(_) => run_stop_open = false,
            },
        }
    };
    // The agent is gone: once our copy of its end is closed too, the
    // session reads what is left (its report) and sees the end. A call
    // still in flight is abandoned after a moment.
    drop(theirs);
    if !served {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut serving).await;
    }
    (outcome, stopped_by_us)
}

/// How the attempt ended, its agent's `report` told of a cancel or a
/// timeout: an agent we stopped for breaking the protocol (the run not
/// `run_stopped`) failed, it was not cancelled.
fn settle(
    outcome: AttemptOutcome,
    report: &mut AgentReport,
    stopped_by_us: bool,
    run_stopped: bool,
) -> AttemptOutcome {
    match outcome {
        // SIGTERM (Linux), which is what it was stopped with.
        AttemptOutcome::Cancelled if stopped_by_us && !run_stopped => {
            AttemptOutcome::Signaled { signal: 15 }
        }
        AttemptOutcome::Cancelled => {
            report.outcome = AgentOutcome::Cancelled;
            AttemptOutcome::Cancelled
        }
        AttemptOutcome::TimedOut => {
            if report.outcome == AgentOutcome::Crashed {
                report.detail = Some("timed out".into());
            }
            AttemptOutcome::TimedOut
        }
        stalled @ AttemptOutcome::Stalled { .. } => {
            if report.outcome == AgentOutcome::Crashed {
                report.detail =
                    Some("stalled: no model call and no work for its stall_after".into());
            }
            stalled
        }
        other => other,
    }
}

/// The budgets an agent task shares beside its attempt's own: a task's
/// budget covers all its attempts (retries, runs again on a conflict), all
/// its variants, and its subtree (a subtask also spends what its agent
/// ancestors may).
pub(crate) fn budget_groups(
    ctx: &Ctx,
    task: &Task,
    gateway: &crate::gateway::Gateway,
    agent: &AgentTask,
) -> Vec<std::sync::Arc<crate::gateway::BudgetScope>> {
    gateway.task_scopes(
        &task.id,
        agent.budget,
        task.variant().map(|v| v.of.as_str()),
        |id| {
            let ancestor = ctx.tasks.position(id).map(|i| ctx.tasks.get(i))?;
            ancestor.agent().map(|a| a.budget)
        },
    )
}

/// Runs `spec` (a task's verify) and gives back `None` if it passed, else
/// the end of its output with how it ended ([`feedback`]).
///
/// The verify writes into files of its own (beside the task's logs), which
/// are then appended to the task's logs: the feedback is what the verify
/// printed and nothing else, never a line of the agent's that was still
/// landing in the shared log. So a recorded run's repair rounds send the
/// model the same text when replayed.
pub(crate) async fn run_verify(
    spec: &CommandSpec,
    egress: Option<&std::sync::Arc<super::egress::Egress>>,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Option<String> {
    let mut own = spec.clone();
    own.stdout = verify_capture(&spec.stdout);
    own.stderr = verify_capture(&spec.stderr);
    for capture in [&own.stdout, &own.stderr] {
        // A capture a killed coordinator left is not this verify's.
        let _ = std::fs::remove_file(capture);
    }
    let outcome = super::egress::run_command(&own, egress, stop).await;
    take_feedback(spec, &own, outcome)
}

/// After a verify ran with its output in `own`'s files: the feedback from
/// those files alone (`None` if it passed), and the files joined to the
/// task's logs (`spec`'s) and removed.
fn take_feedback(spec: &CommandSpec, own: &CommandSpec, outcome: AttemptOutcome) -> Option<String> {
    let out = tail(&own.stdout, 0);
    let err = tail(&own.stderr, 0);
    for (capture, log) in [(&own.stdout, &spec.stdout), (&own.stderr, &spec.stderr)] {
        append_to(log, capture);
        let _ = std::fs::remove_file(capture);
    }
    match outcome {
        AttemptOutcome::Exited { code: 0 } => None,
        other => Some(feedback(&out, &err, &other)),
    }
}

/// The feedback a failed verify gives the model: a function of what the
/// verify printed (the ends of its stdout and stderr) and how it ended
/// only.
pub(crate) fn feedback(out: &str, err: &str, outcome: &AttemptOutcome) -> String {
    format!("{out}{err}\n[verify: {}]", describe_outcome(outcome))
}

/// Where a verify's output stream goes before it joins `log`.
fn verify_capture(log: &Path) -> std::path::PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(".verify");
    log.with_file_name(name)
}

/// Appends the content of `capture` to `log` (the task's log keeps the
/// verify's output, as before); best effort: the feedback is already
/// taken.
fn append_to(log: &Path, capture: &Path) {
    let Ok(mut from) = std::fs::File::open(capture) else {
        return;
    };
    let Ok(mut to) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    else {
        return;
    };
    let _ = std::io::copy(&mut from, &mut to);
}

/// Runs the task's verify command (if it has one) in the agent's
/// worktree, sandbox and logs, and gives back the end of its output.
struct VerifyRunner {
    spec: Option<CommandSpec>,
    /// The task's egress proxy, for a task with a network list.
    egress: Option<std::sync::Arc<super::egress::Egress>>,
    stop: watch::Receiver<Option<Stop>>,
}

impl Verifier for VerifyRunner {
    fn has_command(&self) -> bool {
        self.spec.is_some()
    }

    fn verify(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Verdict> + Send + '_>> {
        Box::pin(async move {
            let Some(spec) = &self.spec else {
                return Verdict::Passed;
            };
            match run_verify(spec, self.egress.as_ref(), &mut self.stop).await {
                None => Verdict::Passed,
                Some(feedback) => Verdict::Failed { feedback },
            }
        })
    }
}

pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// What was appended to `path` after offset `from`, at most the last
/// [`FEEDBACK_BYTES`].
fn tail(path: &Path, from: u64) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let end = file_len(path);
    let start = from.max(end.saturating_sub(FEEDBACK_BYTES));
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if start > from {
        format!("[... {} earlier bytes]\n{text}", start - from)
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A spec whose logs are `dir/NAME.out` and `dir/NAME.err`.
    fn spec_in(dir: &Path, name: &str) -> CommandSpec {
        CommandSpec {
            script: "false".into(),
            program: None,
            pass_fds: Vec::new(),
            inherit_env: false,
            env_remove: Vec::new(),
            cgroups: Vec::new(),
            cgroup_procs: None,
            cwd: dir.to_path_buf(),
            env: Vec::new(),
            stdout: dir.join(format!("{name}.out")),
            stderr: dir.join(format!("{name}.err")),
            deadline: None,
            grace: Duration::from_secs(1),
            max_output: crate::plan::DEFAULT_MAX_OUTPUT,
            redact: None,
            sandbox: None,
            unconfined: None,
            deck: Default::default(),
            stall: None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The feedback of a failed verify is a function of what the
        /// verify printed and how it ended only: whatever the task's logs
        /// held before (an agent's lines, one still without its newline,
        /// as when a run is recorded and then replayed), it is the same,
        /// and the logs keep the verify's output after their own.
        #[test]
        fn a_verifys_feedback_is_what_it_printed_whatever_the_log_held(
            before_a in "[a-z \n]{0,80}",
            before_b in "[a-z \n]{0,80}",
            printed_out in "[a-z0-9 .:\n]{0,120}",
            printed_err in "[a-z0-9 .:\n]{0,60}",
            code in 1i32..4,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut said = Vec::new();
            for (run, before) in [("a", &before_a), ("b", &before_b)] {
                let spec = spec_in(dir.path(), run);
                std::fs::write(&spec.stdout, before).unwrap();
                std::fs::write(&spec.stderr, before).unwrap();
                let own = CommandSpec {
                    stdout: verify_capture(&spec.stdout),
                    stderr: verify_capture(&spec.stderr),
                    ..spec.clone()
                };
                std::fs::write(&own.stdout, &printed_out).unwrap();
                std::fs::write(&own.stderr, &printed_err).unwrap();
                let feedback = take_feedback(&spec, &own, AttemptOutcome::Exited { code });
                prop_assert_eq!(
                    std::fs::read_to_string(&spec.stdout).unwrap(),
                    format!("{before}{printed_out}")
                );
                prop_assert!(!own.stdout.exists() && !own.stderr.exists());
                said.push(feedback);
            }
            prop_assert_eq!(&said[0], &said[1]);
            let expected = feedback(&printed_out, &printed_err, &AttemptOutcome::Exited { code });
            prop_assert_eq!(said[0].as_deref(), Some(expected.as_str()));
        }
    }

    /// A verify that passed gives no feedback, and its output still joins
    /// the logs.
    #[test]
    fn a_passed_verify_gives_no_feedback() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec_in(dir.path(), "t");
        let own = CommandSpec {
            stdout: verify_capture(&spec.stdout),
            stderr: verify_capture(&spec.stderr),
            ..spec.clone()
        };
        std::fs::write(&own.stdout, "ok\n").unwrap();
        assert_eq!(
            take_feedback(&spec, &own, AttemptOutcome::Exited { code: 0 }),
            None
        );
        assert_eq!(std::fs::read_to_string(&spec.stdout).unwrap(), "ok\n");
    }
}
