//! The agent loop: ask the model (through the coordinator), run the tools
//! it calls, send back one result per call, until it finishes, runs out of
//! turns or is refused. After `finish`, the coordinator's verdict on
//! `verify` either ends the session or starts a repair round.
//!
//! What the agent prints goes to the task's log: the model's text as it
//! streams in and one line per tool call.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use swarm_protocol::agent::{
    AgentMessage, AgentOutcome, AgentReport, Block, CoordinatorMessage, StopReason,
};

use super::channel::{Channel, ChannelError};
use super::mcp::Servers;
use super::prompt::system_prompt;
use super::tools::{Tools, become_subreaper};

/// How the agent process ends: its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentExit {
    /// Finished and accepted (exit 0).
    Finished,
    /// Stopped on a limit, a refusal or a failed verify (exit 2).
    Stopped,
    /// The channel or the worktree failed (exit 1).
    Error,
}

impl AgentExit {
    pub fn code(self) -> i32 {
        match self {
            Self::Finished => 0,
            Self::Error => 1,
            Self::Stopped => 2,
        }
    }
}

/// Runs an agent session on `stream` in the worktree `root`, logging to
/// `log`.
pub fn run(stream: UnixStream, root: &Path, log: &mut dyn Write) -> AgentExit {
    let mut channel = match Channel::new(stream) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(log, "swarm agent: failed to {e}");
            return AgentExit::Error;
        }
    };
    match session(&mut channel, root, log) {
        Ok(exit) => exit,
        Err(e) => {
            let _ = writeln!(log, "\nswarm agent: failed to {e}");
            AgentExit::Error
        }
    }
}

fn session(
    channel: &mut Channel,
    root: &Path,
    log: &mut dyn Write,
) -> Result<AgentExit, ChannelError> {
    let CoordinatorMessage::Hello {
        task,
        prompt,
        max_turns,
        bash_timeout_secs,
        mcp,
        network,
    } = channel.recv()?
    else {
        let _ = writeln!(log, "swarm agent: the coordinator did not start with hello");
        return Ok(AgentExit::Error);
    };
    // Orphans of bash commands come back to us, so they can be killed.
    if let Err(e) = become_subreaper() {
        let _ = writeln!(
            log,
            "swarm agent: cannot become a subreaper ({e}); background processes of commands may outlive them"
        );
    }
    let mut tools = match Tools::new(root, Duration::from_secs(bash_timeout_secs)) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(
                log,
                "swarm agent: failed to open the worktree {}: {e}",
                root.display()
            );
            return Ok(AgentExit::Error);
        }
    };
    let report = |channel: &mut Channel, outcome, summary: String, turns, detail| {
        channel.send(&AgentMessage::Report(AgentReport {
            outcome,
            summary,
            turns,
            repair_rounds: 0,
            usage: Default::default(),
            cost_usd: 0.0,
            transcript: None,
            detail,
            // The coordinator's session keeps the answer it checked, and
            // times the verify rounds.
            output: None,
            verify_rounds: Vec::new(),
        }))
    };

    let mut specs = Tools::specs();
    // Dropped on the way out, which stops them.
    let servers = if mcp.is_empty() {
        None
    } else {
        let taken: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let timeout = Duration::from_secs(bash_timeout_secs);
        match Servers::start(&mcp, root, timeout, &taken, log) {
            Ok(servers) => {
                let _ = writeln!(
                    log,
                    "swarm agent: MCP servers started: {} ({} tools)",
                    mcp.iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    servers.specs().len()
                );
                specs.extend(servers.specs().iter().cloned());
                Some(servers)
            }
            Err(e) => {
                let detail = e.to_string();
                let _ = writeln!(log, "swarm agent: failed to {detail}");
                report(
                    channel,
                    AgentOutcome::McpFailed,
                    String::new(),
                    0,
                    Some(detail),
                )?;
                return Ok(AgentExit::Stopped);
            }
        }
    };
    channel.send(&AgentMessage::Start {
        system: system_prompt(&task, root, network.as_deref()),
        tools: specs,
    })?;

    let mut pending = vec![Block::Text { text: prompt }];
    let mut turns = 0u32;
    let mut summary = String::new();
    loop {
        if turns >= max_turns {
            let detail = format!("reached max_turns ({max_turns}) without finishing");
            let _ = writeln!(log, "\nswarm agent: {detail}");
            report(
                channel,
                AgentOutcome::MaxTurns,
                summary,
                turns,
                Some(detail),
            )?;
            return Ok(AgentExit::Stopped);
        }
        turns += 1;
        let _ = writeln!(log, "\n[turn {turns}]");
        channel.send(&AgentMessage::Turn {
            content: std::mem::take(&mut pending),
        })?;
        let (content, stop) = loop {
            match channel.recv()? {
                CoordinatorMessage::Delta { text } => {
                    let _ = log.write_all(text.as_bytes());
                    let _ = log.flush();
                }
                CoordinatorMessage::Retrying { reason } => {
                    let _ = writeln!(log, "\n[retrying: {reason}]");
                }
                CoordinatorMessage::Reply { content, stop, .. } => break (content, stop),
                CoordinatorMessage::Refused { why, message } => {
                    let _ = writeln!(log, "\nswarm agent: stopped: {message}");
                    let outcome = why.outcome();
                    report(channel, outcome, summary, turns, Some(message))?;
                    return Ok(AgentExit::Stopped);
                }
                other => {
                    let _ = writeln!(
                        log,
                        "\nswarm agent: unexpected message from the coordinator: {other:?}"
                    );
                    return Ok(AgentExit::Error);
                }
            }
        };
        let _ = writeln!(log);

        // One result per call, in order, whatever else happens.
        let mut finished: Option<String> = None;
        let mut said = String::new();
        for block in &content {
            match block {
                Block::Text { text } => said.push_str(text),
                Block::ToolCall {
                    id,
                    name,
                    input,
                    invalid_input,
                } => {
                    let (text, is_error) = if let Some(bad) = invalid_input {
                        let _ = writeln!(log, "-> {name}: invalid arguments");
                        (
                            format!(
                                "Your arguments for `{name}` were refused: {}. Call the tool again with a JSON object that matches its schema.",
                                bad.error
                            ),
                            true,
                        )
                    } else if name == "spawn_subtasks" {
                        let _ = writeln!(log, "-> spawn_subtasks");
                        channel.send(&AgentMessage::Spawn {
                            input: input.clone(),
                        })?;
                        match channel.recv()? {
                            CoordinatorMessage::Spawned { accepted, errors }
                                if errors.is_empty() =>
                            {
                                let _ = writeln!(log, "   accepted: {}", accepted.join(", "));
                                (
                                    format!(
                                        "Accepted: {}. They start from your result once you finish.",
                                        accepted.join(", ")
                                    ),
                                    false,
                                )
                            }
                            CoordinatorMessage::Spawned { errors, .. } => {
                                let _ = writeln!(log, "   refused: {}", errors.join("; "));
                                (
                                    format!(
                                        "The request was refused; nothing of it was accepted. Fix these and call spawn_subtasks again:\n{}",
                                        errors.join("\n")
                                    ),
                                    true,
                                )
                            }
                            other => {
                                let _ = writeln!(
                                    log,
                                    "\nswarm agent: unexpected message from the coordinator: {other:?}"
                                );
                                return Ok(AgentExit::Error);
                            }
                        }
                    } else if name == "finish" {
                        let s = input["summary"].as_str().unwrap_or_default().to_string();
                        let _ = writeln!(log, "-> finish: {s}");
                        finished = Some(s);
                        ("Recorded. Your work is being checked.".to_string(), false)
                    } else if let Some(servers) = servers.as_ref().filter(|s| s.has(name)) {
                        let detail = Servers::describe(name, input);
                        let _ = writeln!(log, "-> {detail}");
                        channel.send(&AgentMessage::Tool {
                            name: name.clone(),
                            detail,
                        })?;
                        match servers.call(name, input) {
                            Ok(answer) => answer,
                            Err(e) => {
                                let detail = e.to_string();
                                let _ = writeln!(log, "\nswarm agent: failed: {detail}");
                                report(
                                    channel,
                                    AgentOutcome::McpFailed,
                                    summary,
                                    turns,
                                    Some(detail),
                                )?;
                                return Ok(AgentExit::Stopped);
                            }
                        }
                    } else {
                        let detail = Tools::describe(name, input);
                        let _ = writeln!(log, "-> {detail}");
                        channel.send(&AgentMessage::Tool {
                            name: name.clone(),
                            detail,
                        })?;
                        let out = tools.call(name, input);
                        (out.content, out.is_error)
                    };
                    pending.push(Block::ToolResult {
                        id: id.clone(),
                        content: text,
                        is_error,
                    });
                }
                Block::ToolResult { .. } => {}
            }
        }
        if pending.is_empty() {
            match stop {
                // Cut off mid-answer: let it go on.
                StopReason::MaxTokens => {
                    pending.push(Block::Text {
                        text: "Your answer was cut off at the token limit. Continue, in smaller steps.".into(),
                    });
                    continue;
                }
                // A refusal or a content filter is not the work done.
                StopReason::Other => {
                    let detail = format!(
                        "the model stopped without finishing the task: {}",
                        said.trim()
                    );
                    let _ = writeln!(log, "\nswarm agent: {detail}");
                    report(
                        channel,
                        AgentOutcome::ModelError,
                        summary,
                        turns,
                        Some(detail),
                    )?;
                    return Ok(AgentExit::Stopped);
                }
                _ if said.trim().is_empty() => {
                    pending.push(Block::Text {
                        text: "You ended your turn without saying or doing anything. Use the tools to do the task, then call finish.".into(),
                    });
                    continue;
                }
                // A turn of text without tool calls: the model is done.
                _ => finished = Some(said.trim().to_string()),
            }
        }
        let Some(done) = finished else { continue };
        summary = done;
        channel.send(&AgentMessage::Finished {
            summary: summary.clone(),
        })?;
        match channel.recv()? {
            CoordinatorMessage::Verdict { accepted: true, .. } => {
                let _ = writeln!(log, "\nswarm agent: finished");
                report(channel, AgentOutcome::Finished, summary, turns, None)?;
                return Ok(AgentExit::Finished);
            }
            CoordinatorMessage::Verdict {
                accepted: false,
                feedback,
                repair: true,
            } => {
                let _ = writeln!(log, "\nswarm agent: verify failed; repairing");
                pending.push(Block::Text {
                    text: format!(
                        "The task's verify command failed after you finished. Its output ends with:\n\n{feedback}\n\nFix the problem, then call finish again."
                    ),
                });
            }
            CoordinatorMessage::Verdict { .. } => {
                let detail = "verify failed and no repair rounds are left".to_string();
                let _ = writeln!(log, "\nswarm agent: {detail}");
                report(
                    channel,
                    AgentOutcome::VerifyFailed,
                    summary,
                    turns,
                    Some(detail),
                )?;
                return Ok(AgentExit::Stopped);
            }
            other => {
                let _ = writeln!(
                    log,
                    "\nswarm agent: unexpected message from the coordinator: {other:?}"
                );
                return Ok(AgentExit::Error);
            }
        }
    }
}
