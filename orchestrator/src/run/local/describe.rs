//! What an attempt's end says: whether it did its work
//! ([`did_its_work`], its `verify` a [`Verify`]) and, when it did not, why,
//! in the words a task's reason and its commit message use.
//!
//! Below the code that runs attempts (`task.rs`, `attempt.rs`, the agents,
//! setup): each of them describes an end with this, and this imports none
//! of them (only `owned_paths`, for a write outside a task's paths).

use swarm_protocol::AttemptOutcome;
use swarm_protocol::agent::{AgentOutcome, AgentReport};

use super::owned_paths;
use crate::layout::verify_log_paths;
use crate::plan::Task;

/// How an attempt's `verify` went, when it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verify {
    Passed,
    /// How the verify command ended; `None` for an agent's verify, whose
    /// rounds are in its transcript.
    Failed(Option<AttemptOutcome>),
}

/// Whether an attempt did its work: it ran to success, its `verify` did
/// not fail and an agent finished.
pub(crate) fn did_its_work(
    outcome: &AttemptOutcome,
    verify: Option<&Verify>,
    agent: Option<&AgentReport>,
) -> bool {
    outcome.is_success()
        && !matches!(verify, Some(Verify::Failed(_)))
        && agent.is_none_or(|r| r.outcome == swarm_protocol::agent::AgentOutcome::Finished)
}

/// Why an attempt failed: how it ended (`describe_failure`) and what it
/// wrote outside the task's paths (`outside`, which fails an attempt that
/// otherwise succeeded).
pub(crate) fn describe_result(
    outcome: &AttemptOutcome,
    verify: Option<&Verify>,
    task: &Task,
    run: &str,
    attempt: u32,
    agent: Option<&AgentReport>,
    outside: &[String],
) -> String {
    let ran_ok = did_its_work(outcome, verify, agent);
    let outside = (!outside.is_empty()).then(|| owned_paths::describe(task, outside));
    match (ran_ok, outside) {
        (true, Some(outside)) => outside,
        (false, Some(outside)) => format!(
            "{}; it also {outside}",
            describe_failure(outcome, verify, task, run, attempt, agent)
        ),
        (_, None) => describe_failure(outcome, verify, task, run, attempt, agent),
    }
}

/// How an attempt ended, in a few words: an agent's own account when it
/// ended itself, else how its command (or `verify`) ended.
pub(crate) fn describe_failure(
    outcome: &AttemptOutcome,
    verify: Option<&Verify>,
    task: &Task,
    run: &str,
    attempt: u32,
    agent: Option<&AgentReport>,
) -> String {
    let ended_itself = !matches!(
        outcome,
        AttemptOutcome::TimedOut
            | AttemptOutcome::Stalled { .. }
            | AttemptOutcome::Cancelled
            | AttemptOutcome::SpawnFailed { .. }
    );
    if let Some(why) = agent
        .filter(|_| ended_itself)
        .and_then(describe_agent_failure)
    {
        return why;
    }
    match outcome {
        AttemptOutcome::Exited { code: 0 } => match verify {
            Some(Verify::Failed(Some(ended))) => {
                // The command as written (its first line), and where its
                // output is, relative to the repository.
                let script = task.verify.as_deref().unwrap_or_default();
                let mut shown: String = script
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(80)
                    .collect();
                if shown.len() < script.trim_end().len() {
                    shown.push_str(" ...");
                }
                let (_, err) = verify_log_paths(
                    &crate::layout::run_dir(std::path::Path::new(""), run),
                    &task.id,
                    attempt,
                );
                format!(
                    "verify \"{shown}\" {}, see {} (and .verify.out)",
                    describe_failure(ended, None, task, run, attempt, None),
                    err.display()
                )
            }
            _ => "verify failed".into(),
        },
        AttemptOutcome::Exited { code } => format!("exited with code {code}"),
        AttemptOutcome::Signaled { signal } => format!("killed by {}", signal_named(*signal)),
        AttemptOutcome::TimedOut => match (task.timeout, task.not_after) {
            // The subtree's deadline came first.
            (_, Some(at)) if at <= std::time::SystemTime::now() => {
                let parent = crate::ids::parent_of(&task.id).unwrap_or("its parent");
                format!(
                    "timed out: the deadline of `{parent}`'s subtree passed (a parent's `timeout` covers its subtasks)"
                )
            }
            (Some(t), _) => format!("timed out after {}", humantime::format_duration(t)),
            (None, _) => "timed out".into(),
        },
        AttemptOutcome::Stalled { after_ms } => format!(
            "stalled: no output, no CPU time and no model call for {} (its `stall_after`); what it had done is kept on its ref",
            humantime::format_duration(std::time::Duration::from_millis(*after_ms))
        ),
        AttemptOutcome::Cancelled => "cancelled".into(),
        AttemptOutcome::SpawnFailed { message } => format!("could not start: {message}"),
        AttemptOutcome::Trapped { message } | AttemptOutcome::Lost { message } => message.clone(),
        AttemptOutcome::OutOfMemory { limit } => match limit {
            Some(limit) => format!(
                "killed: out of memory (the task's limit is {}, `memory` in the plan)",
                bytesize::ByteSize::b(*limit)
            ),
            None => "killed: out of memory".into(),
        },
    }
}

/// Why an agent attempt did not succeed, in a few words.
pub(crate) fn describe_agent_failure(report: &AgentReport) -> Option<String> {
    let detail = report.detail.clone().unwrap_or_default();
    Some(match report.outcome {
        AgentOutcome::Finished => return None,
        AgentOutcome::MaxTurns => format!("the agent stopped: {detail}"),
        AgentOutcome::Budget => format!("the agent's budget ran out: {detail}"),
        AgentOutcome::ModelError => detail,
        AgentOutcome::VerifyFailed => detail,
        AgentOutcome::Crashed => format!("the agent failed: {detail}"),
        AgentOutcome::McpFailed => detail,
        AgentOutcome::Cancelled => "cancelled".into(),
    })
}

/// How a command ended, in a few words (an agent's `verify` round, told
/// to the model; a CLI agent that ended without its report).
pub(crate) fn describe_outcome(outcome: &AttemptOutcome) -> String {
    match outcome {
        AttemptOutcome::Exited { code } => format!("exited with code {code}"),
        AttemptOutcome::Signaled { signal } => format!("killed by {}", signal_named(*signal)),
        AttemptOutcome::TimedOut => "timed out".into(),
        AttemptOutcome::Stalled { .. } => "stalled (no sign of life)".into(),
        AttemptOutcome::Cancelled => "cancelled".into(),
        AttemptOutcome::SpawnFailed { message } => format!("could not start: {message}"),
        AttemptOutcome::Trapped { message } | AttemptOutcome::Lost { message } => message.clone(),
        AttemptOutcome::OutOfMemory { .. } => "killed: out of memory".into(),
    }
}

/// Signal `signal` as a reason says it: `signal 12 (SIGUSR2)`, its name
/// where this system has one for it.
pub(super) fn signal_named(signal: i32) -> String {
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(name) => format!("signal {signal} ({})", name.as_str()),
        Err(_) => format!("signal {signal}"),
    }
}
