//! The agent channel: what an agent worker and the coordinator's model
//! gateway say to each other, and the report an agent session ends with.
//!
//! An agent worker has no network and no API key. The coordinator hands it
//! one end of a Unix stream socket at spawn; both sides write one JSON
//! object per line. The gateway keeps the conversation: the worker sends
//! only what is new (its tool results, a prompt), so it never resends the
//! history, cannot rewrite what the model said, and stays small in memory.
//!
//! A session goes:
//!
//! ```text
//! coordinator                         worker
//!   Hello ───────────────────────────►
//!         ◄─────────────────────────── Start (system prompt, tools)
//!         ◄─────────────────────────── Turn (the prompt)
//!   Delta* Reply ────────────────────►          (one model call)
//!         ◄─────────────────────────── Turn (a result per tool call)
//!   ...
//!         ◄─────────────────────────── Finished (summary)
//!   Verdict ─────────────────────────►          (verify ran; accept or repair)
//!         ◄─────────────────────────── Report
//! ```

/// The variable naming the descriptor of an agent worker's end of the
/// channel (set by the coordinator, read by `swarm __agent`).
pub const CHANNEL_FD_VAR: &str = "SWARM_GATEWAY_FD";

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tool the agent offers the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON schema of the tool's input object.
    pub input_schema: Value,
}

/// One piece of a message, in a provider-neutral form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    /// The model asks for a tool to run. `input` is the parsed arguments;
    /// when the model sent arguments that are not a JSON object, `input` is
    /// `{}` and `invalid_input` holds the raw text and why it was refused,
    /// so the agent can answer with an error instead of guessing.
    ToolCall {
        id: String,
        name: String,
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invalid_input: Option<InvalidInput>,
    },
    /// The agent's answer to the tool call `id`.
    ToolResult {
        id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
}

/// Tool-call arguments the gateway could not parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvalidInput {
    pub raw: String,
    pub error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

/// Why the model stopped producing its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It wants tool results.
    ToolUse,
    /// It hit the response's token limit.
    MaxTokens,
    /// Anything else the provider said (content filter, ...).
    Other,
}

/// Tokens of one call, or summed over several.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Usage {
    /// Every token of the prompt, those read from or written to the
    /// provider's prompt cache included.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache
    /// (billed at a fraction of the input price).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Of `input_tokens`, those written to the provider's prompt cache
    /// (Anthropic bills them above the input price).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
    }

    /// Input tokens neither read from nor written to the prompt cache.
    pub fn uncached_input(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_tokens + self.cache_write_tokens)
    }
}

/// Worker → coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// Sent once, first: the system prompt (with the repository's
    /// instructions) and the tools the agent offers.
    Start {
        system: String,
        tools: Vec<ToolSpec>,
    },
    /// Adds a user message to the conversation and asks the model. After an
    /// answer with tool calls, `content` must hold exactly one result per
    /// call (the gateway refuses anything else).
    Turn { content: Vec<Block> },
    /// A tool is about to run (for progress views and the transcript).
    Tool { name: String, detail: String },
    /// The agent is done with this round; the coordinator runs `verify`
    /// and answers with a [`CoordinatorMessage::Verdict`].
    Finished { summary: String },
    /// The model asked for subtasks (the `spawn_subtasks` tool's input:
    /// `{"tasks": [...]}`); the coordinator answers with
    /// [`CoordinatorMessage::Spawned`].
    Spawn { input: serde_json::Value },
    /// Sent last: how the session ended.
    Report(AgentReport),
}

/// Coordinator → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoordinatorMessage {
    /// Sent once, first: the task.
    Hello {
        task: String,
        prompt: String,
        max_turns: u32,
        /// Most seconds one `bash` tool call may run (and one call of an
        /// MCP server's tool).
        bash_timeout_secs: u64,
        /// The MCP servers the agent starts, in its own sandbox, and offers
        /// the tools of.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mcp: Vec<McpServer>,
        /// A task with a network list: the list, as the plan writes it
        /// (`["crates.io"]`), for the system prompt; its bash commands
        /// reach those hosts through the proxy in `HTTP_PROXY`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        network: Option<String>,
    },
    /// Text of the model's answer as it streams in.
    Delta { text: String },
    /// The call failed part-way and is being retried: forget the deltas
    /// since the last reply.
    Retrying { reason: String },
    /// The model's whole answer to the last turn.
    Reply {
        content: Vec<Block>,
        stop: StopReason,
        /// This call's tokens.
        usage: Usage,
        /// The task's tokens and cost so far.
        total: Usage,
        cost_usd: f64,
    },
    /// The call was refused or failed for good; the agent must stop.
    Refused { why: Refusal, message: String },
    /// The answer to [`AgentMessage::Spawn`]: the ids accepted (with the
    /// parent's prefix), or every problem with the request (then nothing
    /// of it was accepted).
    Spawned {
        accepted: Vec<String>,
        errors: Vec<String>,
    },
    /// The answer to [`AgentMessage::Finished`].
    Verdict {
        accepted: bool,
        /// Why it was not accepted: the tail of `verify`'s output.
        feedback: String,
        /// Not accepted, and the agent gets another round to fix it (else
        /// it must stop).
        repair: bool,
    },
}

/// An MCP server an agent task uses (`[mcp.NAME]` in the plan), as the
/// worker starts it: over stdio, in the task's worktree and sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServer {
    /// The plan's name for it: the prefix of its tools' names.
    pub name: String,
    /// The program (resolved to a path on the host) and its arguments.
    pub command: Vec<String>,
    /// Variables set for it, on top of the task's environment.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
}

/// Why the gateway will not call the model (again) for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The task's or the run's token or USD budget is spent.
    Budget,
    /// The task has used all its turns.
    MaxTurns,
    /// The provider failed after every retry, or answered something the
    /// gateway could not use.
    Model,
    /// The worker broke the channel's protocol.
    Protocol,
    /// The run is being cancelled.
    Cancelled,
}

impl Refusal {
    /// How a session refused for this reason ends.
    pub fn outcome(self) -> AgentOutcome {
        match self {
            Self::Budget => AgentOutcome::Budget,
            Self::MaxTurns => AgentOutcome::MaxTurns,
            Self::Model => AgentOutcome::ModelError,
            Self::Protocol => AgentOutcome::Crashed,
            Self::Cancelled => AgentOutcome::Cancelled,
        }
    }
}

/// How an agent session ended. Only `finished` (with `verify` passing, if
/// the task has one) counts as success: a session that stopped on a limit
/// is never reported as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentOutcome {
    /// The model said it was done (the finish tool, or a turn without tool
    /// calls) and `verify`, if any, passed.
    Finished,
    /// `max_turns` model calls were made without finishing.
    MaxTurns,
    /// The token or USD budget ran out.
    Budget,
    /// The model could not be reached or answered unusably.
    ModelError,
    /// `verify` still failed after the last repair round.
    VerifyFailed,
    /// The agent process died or broke the protocol without a report.
    Crashed,
    /// One of the task's MCP servers failed to start or died.
    McpFailed,
    /// The run was cancelled.
    Cancelled,
}

impl AgentOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::MaxTurns => "max_turns",
            Self::Budget => "budget",
            Self::ModelError => "model_error",
            Self::VerifyFailed => "verify_failed",
            Self::Crashed => "crashed",
            Self::McpFailed => "mcp_failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What an agent session did, as recorded in the run report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentReport {
    pub outcome: AgentOutcome,
    /// The agent's own summary of its work (from the finish tool).
    pub summary: String,
    /// Model calls made.
    pub turns: u32,
    #[serde(default)]
    pub repair_rounds: u32,
    /// Counted by the gateway, not by the worker.
    #[serde(default)]
    pub usage: Usage,
    #[serde(default)]
    pub cost_usd: f64,
    /// The task's transcript (JSON lines), once the coordinator knows it.
    #[serde(default)]
    pub transcript: Option<String>,
    /// Details of a stop other than `finished`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The final answer as JSON, when the task has an `output_schema`
    /// (and the answer matched it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// Each run of the task's `verify` inside the session, timed by the
    /// coordinator (a worker's own report never sets these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_rounds: Vec<VerifyRound>,
}

/// One run of an agent task's `verify` within its session: the agent
/// said it was done, and the coordinator checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerifyRound {
    /// Milliseconds from the agent's start to the verify's.
    pub at_ms: u64,
    pub dur_ms: u64,
    pub passed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_messages_are_one_tagged_object_per_line() -> Result<(), serde_json::Error> {
        let m = AgentMessage::Turn {
            content: vec![Block::ToolResult {
                id: "t1".into(),
                content: "ok".into(),
                is_error: false,
            }],
        };
        let line = serde_json::to_string(&m)?;
        assert_eq!(
            line,
            r#"{"type":"turn","content":[{"type":"tool_result","id":"t1","content":"ok","is_error":false}]}"#
        );
        assert_eq!(serde_json::from_str::<AgentMessage>(&line)?, m);
        Ok(())
    }
}
