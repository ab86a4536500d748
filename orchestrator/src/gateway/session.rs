//! The coordinator's side of one agent worker's channel: the conversation,
//! the protocol checks on what the worker sends, the task's turn and budget
//! limits, the model calls, the `verify` verdicts and the transcript.
//!
//! The worker is untrusted (a model drives it), so nothing it says is taken
//! on faith: the gateway keeps the history itself, refuses a turn that does
//! not answer every tool call exactly once, counts turns, tokens and cost
//! itself, and decides the session's outcome from what it saw.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use swarm_protocol::agent::{
    AgentMessage, AgentOutcome, AgentReport, Block, CoordinatorMessage, Message, Refusal, Role,
    StopReason, ToolSpec, Usage, VerifyRound,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::provider::Ask;
use super::transcript::Transcript;
use super::{BudgetScope, Endpoint, Gateway, call};
use crate::gateway::config::AgentTask;

/// Longest line the worker may send (a turn with its tool results).
const MAX_LINE: usize = 16 << 20;

/// Tool notes recorded in a transcript at most.
const MAX_TOOL_NOTES: u32 = 10_000;

/// The result of running `verify` after the agent said it was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// It failed; `feedback` is the end of its output.
    Failed {
        feedback: String,
    },
}

/// What a session tells the dispatcher as it goes (for progress views and
/// the event stream); from a cluster node, through the relay
/// (`relay::NodeNote`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum AgentNote {
    Tool {
        name: String,
        detail: String,
    },
    Usage {
        turn: u32,
        usage: Usage,
        total: Usage,
        cost_usd: f64,
    },
    Budget {
        message: String,
    },
}

/// Where a session's notes go.
pub type Notes = Box<dyn Fn(AgentNote) + Send + Sync>;

/// Takes a subtask request of the model (the `spawn_subtasks` tool's
/// input): the ids accepted, or every problem with it. A future, so that
/// the checks (file reads, a plan's parse) run off the session's thread.
pub type Spawn = Box<
    dyn Fn(
            serde_json::Value,
        ) -> futures_util::future::BoxFuture<'static, Result<Vec<String>, Vec<String>>>
        + Send,
>;

/// Runs a task's `verify` when its agent says it is done.
pub trait Verifier: Send {
    fn verify(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Verdict> + Send + '_>>;
    /// Whether `verify` runs a command (and so takes time worth a round in
    /// the report), rather than passing at once.
    fn has_command(&self) -> bool {
        true
    }
}

/// How a session ended, for the task.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    pub report: AgentReport,
    /// Whether the last `verify` passed (`None`: it never ran).
    pub verify_passed: Option<bool>,
}

/// The name of the agent's tool that ends a round.
const FINISH_TOOL: &str = "finish";

/// `tools` with the `finish` tool's input asking for `output` matching
/// `schema` (the task's `output_schema`).
fn with_output(tools: &mut [ToolSpec], schema: &serde_json::Value) {
    for tool in tools.iter_mut().filter(|t| t.name == FINISH_TOOL) {
        let input = &mut tool.input_schema;
        if let Some(properties) = input.get_mut("properties").and_then(|p| p.as_object_mut()) {
            let mut described = schema.clone();
            if let Some(object) = described.as_object_mut() {
                object.entry("description").or_insert_with(|| {
                    json!("The task's final answer, as JSON matching this schema.")
                });
            }
            properties.insert("output".into(), described);
        }
        match input.get_mut("required").and_then(|r| r.as_array_mut()) {
            Some(required) => required.push(json!("output")),
            None => {
                if let Some(object) = input.as_object_mut() {
                    object.insert("required".into(), json!(["output"]));
                }
            }
        }
        tool.description
            .push_str(" This task also needs your final answer as JSON in `output`.");
    }
}

/// One agent task's conversation with its model.
pub struct Session {
    gateway: Arc<Gateway>,
    endpoint: Arc<Endpoint>,
    task: String,
    agent: AgentTask,
    bash_timeout: Duration,
    transcript: Transcript,
    system: String,
    tools: Vec<ToolSpec>,
    messages: Vec<Message>,
    started: bool,
    /// When the session was made, just before its agent starts: verify
    /// rounds are timed from here.
    born: std::time::Instant,
    verify_rounds: Vec<VerifyRound>,
    /// The agent said it was done and has not sent a turn since.
    finished_round: bool,
    tool_notes: u32,
    turns: u32,
    rounds: u32,
    /// The task's budget and what its calls spent.
    budget: Arc<BudgetScope>,
    /// Budgets shared with other sessions (an experiment's variants, the
    /// subtree of each task this one descends from).
    groups: Vec<Arc<BudgetScope>>,
    summary: String,
    /// Decided by the coordinator, from what it saw.
    outcome: Option<(AgentOutcome, Option<String>)>,
    worker_report: Option<AgentReport>,
    verify_passed: Option<bool>,
    notes: Option<Notes>,
    /// The attempt's cassette, when the run records or replays.
    reel: Option<Arc<super::tape::Reel>>,
    spawn: Option<Spawn>,
    /// `spawn_subtasks` calls of the model's last answer not yet served.
    spawns_asked: Vec<serde_json::Value>,
    /// Told of each model call in flight, for the task's stall watch.
    activity: Option<Arc<swarm_worker::Activity>>,
    /// The final answer, checked against `output_schema`.
    output: Option<serde_json::Value>,
    /// The MCP servers the agent starts in its sandbox.
    mcp: Vec<swarm_protocol::agent::McpServer>,
    /// The task's network list, for the agent's system prompt.
    network: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("model", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("task", &self.task)
            .field("turns", &self.turns)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Sends the session's notes (tool calls, usage, budget stops) to `notes`.
    pub fn with_notes(mut self, notes: Notes) -> Self {
        self.notes = Some(notes);
        self
    }

    /// Takes `redact`'s secrets (the person's) out of its transcript.
    pub fn with_redact(mut self, redact: Option<swarm_worker::Redact>) -> Self {
        self.transcript.redacting(redact);
        self
    }

    /// Records the session's model calls to `reel`, or answers them from
    /// it.
    pub fn with_reel(mut self, reel: Option<Arc<super::tape::Reel>>) -> Self {
        self.reel = reel;
        self
    }

    /// Has the agent start `servers` (the task's MCP servers, as this host
    /// has them) and offer their tools.
    pub fn with_mcp(mut self, servers: Vec<swarm_protocol::agent::McpServer>) -> Self {
        self.mcp = servers;
        self
    }

    /// Tells `activity` of each model call in flight (the task's stall
    /// watch: an agent waiting on its model is not stalled).
    pub fn with_activity(mut self, activity: Option<Arc<swarm_worker::Activity>>) -> Self {
        self.activity = activity;
        self
    }

    /// Tells the agent the hosts its task's network list allows.
    pub fn with_network(mut self, network: Option<String>) -> Self {
        self.network = network;
        self
    }

    /// Hands the model's subtask requests to `spawn`.
    pub fn with_spawn(mut self, spawn: Spawn) -> Self {
        self.spawn = Some(spawn);
        self
    }

    fn note(&self, note: AgentNote) {
        if let Some(notes) = &self.notes {
            notes(note);
        }
    }

    /// A session of task `task` doing `agent`, writing its transcript at
    /// `transcript`.
    pub fn new(
        gateway: Arc<Gateway>,
        task: &str,
        agent: &AgentTask,
        bash_timeout: Duration,
        transcript: &Path,
    ) -> Result<Self, String> {
        let endpoint = gateway
            .endpoint(&agent.model)
            .ok_or_else(|| format!("find model `{}` for task `{task}`", agent.model))?;
        Ok(Self {
            gateway,
            endpoint,
            task: task.to_string(),
            agent: agent.clone(),
            bash_timeout,
            transcript: Transcript::open(transcript),
            system: String::new(),
            tools: Vec::new(),
            messages: Vec::new(),
            started: false,
            born: std::time::Instant::now(),
            verify_rounds: Vec::new(),
            finished_round: false,
            tool_notes: 0,
            turns: 0,
            rounds: 0,
            budget: Arc::new(BudgetScope::new(format!("task `{task}`"), agent.budget)),
            groups: Vec::new(),
            summary: String::new(),
            outcome: None,
            worker_report: None,
            verify_passed: None,
            notes: None,
            reel: None,
            spawn: None,
            spawns_asked: Vec::new(),
            activity: None,
            output: None,
            mcp: Vec::new(),
            network: None,
        })
    }

    /// Counts this session's calls against `group` too (the budget an
    /// experiment's variants share).
    pub fn join_group(&mut self, group: Arc<BudgetScope>) {
        self.groups.push(group);
    }

    /// The session's own budget, then its groups'.
    fn scopes(&self) -> Vec<Arc<BudgetScope>> {
        std::iter::once(&self.budget)
            .chain(self.groups.iter())
            .cloned()
            .collect()
    }

    /// Serves the worker on `stream` until it closes it. `verify` runs the
    /// task's verify command (`Passed` when it has none).
    pub async fn serve(&mut self, stream: UnixStream, verifier: &mut dyn Verifier) {
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let hello = CoordinatorMessage::Hello {
            task: self.task.clone(),
            prompt: self.agent.prompt.clone(),
            max_turns: self.agent.max_turns,
            bash_timeout_secs: self.bash_timeout.as_secs().max(1),
            mcp: self.mcp.clone(),
            network: self.network.clone(),
        };
        if send(&mut write, &hello).await.is_err() {
            return;
        }
        let mut line = Vec::new();
        loop {
            let message = match recv(&mut read, &mut line).await {
                Ok(None) => break,
                Ok(Some(m)) => m,
                Err(e) => {
                    self.broken(&mut write, e).await;
                    break;
                }
            };
            let keep_going = match message {
                AgentMessage::Start { system, tools } if !self.started => {
                    self.started = true;
                    self.transcript.write(
                        "start",
                        json!({"task": self.task, "model": self.endpoint.config.model,
                               "provider": self.endpoint.config.name,
                               "system": system, "tools": tools}),
                    );
                    self.system = system;
                    self.tools = tools;
                    if let Some(schema) = &self.agent.output_schema {
                        with_output(&mut self.tools, schema);
                    }
                    true
                }
                AgentMessage::Start { .. } => {
                    self.broken(&mut write, "a second start".into()).await;
                    false
                }
                AgentMessage::Turn { content } => self.turn(&mut write, content).await,
                AgentMessage::Tool { name, detail } => {
                    // Notes are for people; a worker cannot flood the disk
                    // with them.
                    if self.tool_notes < MAX_TOOL_NOTES {
                        self.tool_notes += 1;
                        let name: String = name.chars().take(64).collect();
                        let detail: String = detail.chars().take(300).collect();
                        self.transcript
                            .write("tool", json!({"name": name, "detail": detail}));
                        self.note(AgentNote::Tool { name, detail });
                    }
                    true
                }
                AgentMessage::Finished { .. }
                    if self.outcome.is_some()
                        || self.finished_round
                        || !matches!(self.messages.last(), Some(m) if m.role == Role::Assistant) =>
                {
                    // Only an agent whose model just answered, in a session
                    // still going, can say it is done (once per round): a
                    // worker cannot turn a stop into a success.
                    self.broken(&mut write, "finished out of turn".into()).await;
                    false
                }
                AgentMessage::Finished { summary } => {
                    self.finished_round = true;
                    self.summary = summary.chars().take(4000).collect();
                    self.transcript
                        .write("finished", json!({"summary": self.summary}));
                    // The answer first: a wrong one goes back like a
                    // failed verify, without running verify.
                    let verdict = match self.check_output() {
                        Err(feedback) => Verdict::Failed { feedback },
                        Ok(()) => {
                            let at = self.born.elapsed();
                            let verdict = verifier.verify().await;
                            if verifier.has_command() {
                                self.verify_rounds.push(VerifyRound {
                                    at_ms: crate::millis(at),
                                    dur_ms: crate::millis(self.born.elapsed().saturating_sub(at)),
                                    passed: matches!(verdict, Verdict::Passed),
                                });
                            }
                            verdict
                        }
                    };
                    self.verdict(&mut write, verdict).await
                }
                AgentMessage::Spawn { input } => self.spawn(&mut write, input).await,
                AgentMessage::Report(report) => {
                    self.transcript.write("report", json!({"report": report}));
                    self.worker_report = Some(report);
                    true
                }
            };
            if !keep_going {
                break;
            }
        }
    }

    /// The session's end as far as it got (also after `serve` was
    /// cancelled because the worker's process ended).
    pub fn end(&mut self) -> SessionEnd {
        let (outcome, detail) = match (&self.outcome, &self.worker_report) {
            (Some((o, d)), _) => (*o, d.clone()),
            // The worker may stop on its own limits (turns) or be
            // cancelled; it cannot declare success itself.
            (None, Some(r)) if r.outcome != AgentOutcome::Finished => (r.outcome, r.detail.clone()),
            (None, Some(_)) => (
                AgentOutcome::Crashed,
                Some("the agent reported success without a verdict from the coordinator".into()),
            ),
            (None, None) => (
                AgentOutcome::Crashed,
                Some("the agent process ended without a report".into()),
            ),
        };
        let summary = if self.summary.is_empty() {
            self.worker_report
                .as_ref()
                .map(|r| r.summary.chars().take(4000).collect())
                .unwrap_or_default()
        } else {
            self.summary.clone()
        };
        let (usage, cost_usd) = self.budget.spent();
        let report = AgentReport {
            outcome,
            summary,
            turns: self.turns,
            repair_rounds: self.rounds,
            usage,
            cost_usd,
            transcript: Some(self.transcript.path().display().to_string()),
            detail,
            output: self
                .output
                .clone()
                .filter(|_| outcome == AgentOutcome::Finished),
            verify_rounds: self.verify_rounds.clone(),
        };
        self.transcript.write("end", json!({"report": report}));
        SessionEnd {
            report,
            verify_passed: self.verify_passed,
        }
    }

    /// With an `output_schema`: the `output` of the `finish` call in the
    /// model's last answer, checked (kept if it matches); what is wrong
    /// with it, in words for the model, if not.
    fn check_output(&mut self) -> Result<(), String> {
        let Some(schema) = &self.agent.output_schema else {
            return Ok(());
        };
        let given = self
            .messages
            .last()
            .filter(|m| m.role == Role::Assistant)
            .and_then(|m| {
                m.content.iter().find_map(|b| match b {
                    Block::ToolCall { name, input, .. } if name == FINISH_TOOL => {
                        input.get("output").cloned()
                    }
                    _ => None,
                })
            });
        let Some(output) = given else {
            return Err(
                "the task needs your final answer as JSON: call `finish` again with \
                        `output` matching its schema"
                    .into(),
            );
        };
        match crate::output_schema::check(schema, &output) {
            Ok(()) => {
                self.transcript.write("output", json!({"output": output}));
                self.output = Some(output);
                Ok(())
            }
            Err(errors) => Err(format!(
                "your `output` does not match the task's output_schema:\n- {}\nCall `finish` again with a corrected `output`.",
                errors.join("\n- ")
            )),
        }
    }

    fn stop(&mut self, outcome: AgentOutcome, detail: String) {
        if self.outcome.is_none() {
            self.outcome = Some((outcome, Some(detail)));
        }
    }

    async fn broken(&mut self, write: &mut OwnedWriteHalf, why: String) {
        let message = format!("the agent broke the channel protocol: {why}");
        self.transcript.write("error", json!({"message": message}));
        let _ = send(
            write,
            &CoordinatorMessage::Refused {
                why: Refusal::Protocol,
                message: message.clone(),
            },
        )
        .await;
        self.stop(AgentOutcome::Crashed, message);
    }

    async fn refuse(&mut self, write: &mut OwnedWriteHalf, why: Refusal, message: String) -> bool {
        let outcome = why.outcome();
        self.transcript
            .write("refused", json!({"why": why, "message": message}));
        if why == Refusal::Budget {
            self.note(AgentNote::Budget {
                message: message.clone(),
            });
        }
        self.stop(outcome, message.clone());
        send(write, &CoordinatorMessage::Refused { why, message })
            .await
            .is_ok()
    }

    /// Why another call is not allowed, if it is not (budgets aside:
    /// [`Gateway::admit`] checks those).
    fn refusal(&self) -> Option<(Refusal, String)> {
        if let Some((outcome, _)) = self.outcome {
            return Some((
                Refusal::Protocol,
                format!("the session already ended ({})", outcome.as_str()),
            ));
        }
        if self.turns >= self.agent.max_turns {
            return Some((
                Refusal::MaxTurns,
                format!("the task reached its max_turns ({})", self.agent.max_turns),
            ));
        }
        None
    }

    /// A subtask request: served only as the model's own `spawn_subtasks`
    /// call of its last answer (once per call), so a worker cannot ask for
    /// subtasks the model did not.
    async fn spawn(&mut self, write: &mut OwnedWriteHalf, input: serde_json::Value) -> bool {
        let Some(at) = self.spawns_asked.iter().position(|asked| *asked == input) else {
            self.broken(write, "a subtask request the model did not make".into())
                .await;
            return false;
        };
        self.spawns_asked.remove(at);
        let answer = match &mut self.spawn {
            Some(spawn) => spawn(input.clone()).await,
            None => Err(vec!["subtasks are not available to this task".into()]),
        };
        let (accepted, errors) = match answer {
            Ok(accepted) => (accepted, Vec::new()),
            Err(errors) => (Vec::new(), errors),
        };
        self.transcript.write(
            "spawn",
            json!({"input": input, "accepted": accepted, "errors": errors}),
        );
        self.note(AgentNote::Tool {
            name: "spawn_subtasks".into(),
            detail: match errors.is_empty() {
                true => format!("accepted {}", accepted.join(", ")),
                false => format!("refused ({} problems)", errors.len()),
            },
        });
        send(write, &CoordinatorMessage::Spawned { accepted, errors })
            .await
            .is_ok()
    }

    async fn turn(&mut self, write: &mut OwnedWriteHalf, content: Vec<Block>) -> bool {
        if !self.started {
            self.broken(write, "a turn before start".into()).await;
            return false;
        }
        self.finished_round = false;
        if let Err(why) = check_turn(&self.messages, &content) {
            self.broken(write, why).await;
            return false;
        }
        if let Some((why, message)) = self.refusal() {
            return self.refuse(write, why, message).await;
        }
        let endpoint = Arc::clone(&self.endpoint);
        let config = &endpoint.config;
        let scopes = self.scopes();
        self.messages.push(Message {
            role: Role::User,
            content,
        });
        // Always streamed: the worker shows the text as it comes.
        let ask = |messages: &[Message], max_tokens| {
            endpoint.prepare(&Ask {
                system: &self.system,
                tools: &self.tools,
                messages,
                max_tokens,
                stream: true,
                temperature: self.agent.temperature,
                format: None,
                tool_choice: config.tool_choice,
            })
        };
        let prompt = super::budget::prompt_hold(
            ask(&self.messages, config.max_tokens)
                .body
                .to_string()
                .len(),
        );
        let hold = match self
            .gateway
            .admit(&scopes, config.max_tokens, prompt, config.price)
            .await
        {
            Ok(hold) => hold,
            Err(why) => {
                self.messages.pop();
                return self.refuse(write, Refusal::Budget, why).await;
            }
        };
        let mut request = ask(&self.messages, hold.max_tokens);
        request.task = Some(self.task.clone());
        if let Some(Message { content, .. }) = self.messages.last() {
            self.transcript.write("user", json!({"content": content}));
        }
        self.turns += 1;

        // Text and retries stream to the worker while the call runs.
        let (tx, mut rx) =
            mpsc::unbounded_channel::<(CoordinatorMessage, Option<serde_json::Value>)>();
        let (http, endpoint, request, reel) =
            (&self.gateway.http, &endpoint, &request, self.reel.as_ref());
        let calling = async move {
            let text_tx = tx.clone();
            let mut on_text = move |text: &str| {
                let _ = text_tx.send((
                    CoordinatorMessage::Delta {
                        text: text.to_string(),
                    },
                    None,
                ));
            };
            let mut on_retry = move |reason: &str, wait: Duration, limited: bool| {
                let note = json!({"reason": reason, "wait_ms": wait.as_millis() as u64, "rate_limited": limited});
                let _ = tx.send((
                    CoordinatorMessage::Retrying {
                        reason: reason.to_string(),
                    },
                    Some(note),
                ));
            };
            call::call(http, endpoint, request, reel, &mut on_text, &mut on_retry).await
        };
        let transcript = &mut self.transcript;
        let forwarding = async {
            let mut worker_gone = false;
            while let Some((message, note)) = rx.recv().await {
                if let Some(note) = note {
                    transcript.write("retry", note);
                }
                if !worker_gone {
                    worker_gone = send(write, &message).await.is_err();
                }
            }
        };
        let busy = self.activity.as_ref().map(|a| a.begin());
        let (result, ()) = tokio::join!(calling, forwarding);
        drop(busy);

        match result {
            Ok(answer) => {
                self.answered(write, endpoint, answer, request.estimate, hold)
                    .await
            }
            Err(failed) => {
                self.call_failed(write, endpoint, failed, request.estimate, hold)
                    .await
            }
        }
    }

    /// The model's answer to turn `self.turns` (its call held `hold`,
    /// estimated at `estimate` tokens): settled, kept, and sent to the
    /// worker; whether the worker is still there.
    async fn answered(
        &mut self,
        write: &mut OwnedWriteHalf,
        endpoint: &Endpoint,
        mut answer: super::stream::Answer,
        estimate: u64,
        hold: super::budget::Hold,
    ) -> bool {
        let config = &endpoint.config;
        if config.tool_choice == super::config::ToolChoice::Schema {
            super::schema_calls::read_back(
                &mut answer.content,
                &mut answer.stop,
                &self.tools,
                format!("call_{}", self.turns),
            );
        }
        let (usd, estimated) = self.gateway.settle(config, &mut answer, estimate, hold);
        if estimated {
            self.transcript.write(
                "note",
                json!({"message": "the server reported no token usage; it was estimated"}),
            );
        }
        let (total, cost_usd) = self.budget.spent();
        self.transcript.write(
            "assistant",
            json!({"content": answer.content, "stop": answer.stop,
                   "usage": answer.usage, "cost_usd": usd}),
        );
        self.messages.push(Message {
            role: Role::Assistant,
            content: answer.content.clone(),
        });
        self.spawns_asked = answer
            .content
            .iter()
            .filter_map(|b| match b {
                Block::ToolCall {
                    name,
                    input,
                    invalid_input: None,
                    ..
                } if name == "spawn_subtasks" => Some(input.clone()),
                _ => None,
            })
            .collect();
        self.note(AgentNote::Usage {
            turn: self.turns,
            usage: answer.usage,
            total,
            cost_usd,
        });
        let reply = CoordinatorMessage::Reply {
            content: answer.content,
            stop: answer.stop,
            usage: answer.usage,
            total,
            cost_usd,
        };
        send(write, &reply).await.is_ok()
    }

    /// The turn's model call failed: what it spent before it broke off is
    /// paid, and the worker told why (a budget stop, or the model's
    /// failure); whether the worker is still there.
    async fn call_failed(
        &mut self,
        write: &mut OwnedWriteHalf,
        endpoint: &Endpoint,
        failed: call::CallFailed,
        estimate: u64,
        hold: super::budget::Hold,
    ) -> bool {
        let config = &endpoint.config;
        if failed.spent.total() > 0 {
            // What broke off mid-answer was paid for.
            let mut cut = super::stream::Answer {
                content: Vec::new(),
                stop: StopReason::EndTurn,
                usage: failed.spent,
            };
            let (usd, _) = self.gateway.settle(config, &mut cut, estimate, hold);
            self.transcript.write(
                "note",
                json!({"message": "answers cut off mid-stream were counted", "usage": cut.usage, "cost_usd": usd}),
            );
        }
        if failed.why == super::call::FailedBecause::Budget {
            // The run's budgets on the coordinator (a node's call
            // through the relay): a stop for the budget, as here.
            self.messages.pop();
            return self.refuse(write, Refusal::Budget, failed.message).await;
        }
        let message = format!("the model call failed: {}", failed.message);
        self.refuse(write, Refusal::Model, message).await
    }

    async fn verdict(&mut self, write: &mut OwnedWriteHalf, verdict: Verdict) -> bool {
        let message = match verdict {
            Verdict::Passed => {
                self.verify_passed = Some(true);
                if self.outcome.is_none() {
                    self.outcome = Some((AgentOutcome::Finished, None));
                }
                self.transcript.write("verify", json!({"passed": true}));
                CoordinatorMessage::Verdict {
                    accepted: true,
                    feedback: String::new(),
                    repair: false,
                }
            }
            Verdict::Failed { feedback } => {
                self.verify_passed = Some(false);
                let repair = self.rounds < self.agent.repair_rounds;
                self.transcript.write(
                    "verify",
                    json!({"passed": false, "output": feedback, "repair": repair}),
                );
                if repair {
                    self.rounds += 1;
                } else {
                    self.stop(
                        AgentOutcome::VerifyFailed,
                        format!(
                            "verify still failed after {} repair round{}",
                            self.rounds,
                            if self.rounds == 1 { "" } else { "s" }
                        ),
                    );
                }
                CoordinatorMessage::Verdict {
                    accepted: false,
                    feedback,
                    repair,
                }
            }
        };
        send(write, &message).await.is_ok()
    }
}

/// Checks that a turn answers every tool call of the model's last answer
/// exactly once and nothing else.
fn check_turn(messages: &[Message], content: &[Block]) -> Result<(), String> {
    if content.is_empty() {
        return Err("an empty turn".into());
    }
    let pending: Vec<&str> = match messages.last() {
        None => Vec::new(),
        Some(Message {
            role: Role::User, ..
        }) => {
            return Err("a turn before the model answered the last one".into());
        }
        Some(Message { content, .. }) => content
            .iter()
            .filter_map(|b| match b {
                Block::ToolCall { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect(),
    };
    let mut answered: Vec<&str> = Vec::new();
    for block in content {
        match block {
            Block::ToolCall { .. } => return Err("a turn with a tool call in it".into()),
            Block::ToolResult { id, .. } => {
                if !pending.contains(&id.as_str()) {
                    return Err(format!("a result for `{id}`, which the model did not call"));
                }
                if answered.contains(&id.as_str()) {
                    return Err(format!("two results for `{id}`"));
                }
                answered.push(id);
            }
            Block::Text { .. } => {}
        }
    }
    if let Some(missing) = pending.iter().find(|id| !answered.contains(id)) {
        return Err(format!("no result for the tool call `{missing}`"));
    }
    Ok(())
}

async fn send(write: &mut OwnedWriteHalf, message: &CoordinatorMessage) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await
}

/// The next message, `None` at the end of the stream; an error names what
/// was wrong with the line.
async fn recv(
    read: &mut BufReader<OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> Result<Option<AgentMessage>, String> {
    line.clear();
    loop {
        let available = read.fill_buf().await.map_err(|e| format!("read: {e}"))?;
        if available.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err("a message cut off by the end of the stream".into())
            };
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        line.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        read.consume(used);
        if line.len() > MAX_LINE {
            return Err(format!("a message of more than {MAX_LINE} bytes"));
        }
        if done.is_some() {
            break;
        }
    }
    serde_json::from_slice(line)
        .map(Some)
        .map_err(|e| format!("an unreadable message: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn call(id: &str) -> Block {
        Block::ToolCall {
            id: id.into(),
            name: "bash".into(),
            input: Value::Null,
            invalid_input: None,
        }
    }

    fn result(id: &str) -> Block {
        Block::ToolResult {
            id: id.into(),
            content: String::new(),
            is_error: false,
        }
    }

    /// A worker that says it finished before the model ever answered is
    /// refused, and the session does not count as a success.
    #[tokio::test]
    async fn a_worker_cannot_declare_success_out_of_turn() {
        use crate::gateway::config::{Budget, ModelConfig, Provider};
        // Nothing listens here: no call may be made.
        let config = ModelConfig::for_test(Provider::Anthropic, "http://127.0.0.1:9");
        let models = std::collections::BTreeMap::from([("default".to_string(), config)]);
        let gateway =
            Arc::new(Gateway::new(&models, &Default::default(), Budget::default()).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let agent = AgentTask {
            prompt: "p".into(),
            model: "default".into(),
            max_turns: 5,
            budget: Budget::default(),
            repair_rounds: 0,
            temperature: None,
            cli: None,
            output_schema: None,
            mcp: Vec::new(),
        };
        let mut session = Session::new(
            gateway,
            "t",
            &agent,
            Duration::from_secs(5),
            &dir.path().join("t.jsonl"),
        )
        .unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        struct Pass;
        impl Verifier for Pass {
            fn verify(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Verdict> + Send + '_>> {
                Box::pin(async { Verdict::Passed })
            }
        }
        let worker = async move {
            let (read, mut write) = theirs.into_split();
            let mut lines = BufReader::new(read).lines();
            let _hello = lines.next_line().await.unwrap();
            for m in [
                AgentMessage::Start {
                    system: "s".into(),
                    tools: vec![],
                },
                AgentMessage::Finished {
                    summary: "all done, honest".into(),
                },
            ] {
                let mut line = serde_json::to_vec(&m).unwrap();
                line.push(b'\n');
                write.write_all(&line).await.unwrap();
            }
            lines.next_line().await.unwrap().unwrap_or_default()
        };
        let mut pass = Pass;
        let (reply, ()) = tokio::join!(worker, session.serve(ours, &mut pass));
        assert!(
            reply.contains("refused") && reply.contains("finished out of turn"),
            "{reply}"
        );
        let end = session.end();
        assert_eq!(end.report.outcome, AgentOutcome::Crashed);
        assert_eq!(end.verify_passed, None);
    }

    #[test]
    fn a_turn_must_answer_every_call_exactly_once() {
        let history = vec![
            Message {
                role: Role::User,
                content: vec![Block::Text { text: "go".into() }],
            },
            Message {
                role: Role::Assistant,
                content: vec![call("a"), call("b")],
            },
        ];
        assert!(check_turn(&history, &[result("a"), result("b")]).is_ok());
        let err = |c: &[Block]| check_turn(&history, c).err().unwrap_or_default();
        assert_eq!(err(&[result("a")]), "no result for the tool call `b`");
        assert_eq!(
            err(&[result("a"), result("a"), result("b")]),
            "two results for `a`"
        );
        assert!(err(&[result("a"), result("b"), result("c")]).contains("did not call"));
        assert!(check_turn(&history[..1], &[Block::Text { text: "x".into() }]).is_err());
        assert!(check_turn(&[], &[result("a")]).is_err());
    }
}
