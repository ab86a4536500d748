//! What the gateway needs to know of a model and of an agent task: the
//! configuration of a model endpoint (`[models.NAME]`, resolved), its
//! wire protocol and price, spending limits, and what an agent task asks.
//! Owned here, on the gateway's side; the plan reads its tables into
//! these types, so the gateway needs nothing of the plan.

use std::ops::Range;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// The wire protocol of a model endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Anthropic,
    Openai,
}

impl Provider {
    /// Its name in a plan (`provider = "openai"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::Openai => "openai",
        }
    }
}

/// Whether a model must call a tool in each of its answers to swarm's own
/// agent (`[models.NAME] tool_choice`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the providers' default).
    #[default]
    Auto,
    /// Every answer calls a tool (OpenAI `tool_choice: "required"`,
    /// Anthropic `{"type": "any"}`): for small and local models that
    /// otherwise answer in prose. A server may not enforce it: llama.cpp's
    /// `llama-server` of llama-cpp-python 0.3.36 answers SmolLM2 in prose
    /// with its own chat template and with three templates that have
    /// tools. The agent still ends by calling `finish`.
    Required,
    /// Every answer is a tool call asked for as a JSON schema (OpenAI
    /// `response_format`, which llama.cpp's server makes a grammar) and
    /// read back as a call: for servers that do not enforce `required`
    /// (see `gateway::schema_calls`). Anthropic: as `required`.
    Schema,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Input read from the provider's prompt cache. Default: a tenth of
    /// `input` for an `anthropic` model, the table's price for a known
    /// OpenAI model, else `input`.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Input written to the provider's prompt cache. Default: 1.25 times
    /// `input` for an `anthropic` model, else `input`.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl Price {
    /// `input` and `output` USD per million tokens, with the cache's
    /// prices to be filled in ([`crate::gateway::prices::for_provider`]).
    pub const fn new(input: f64, output: f64) -> Self {
        Self {
            input,
            output,
            cache_read: None,
            cache_write: None,
        }
    }
}

/// A model endpoint as the gateway uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The table's name (`default` in `[models.default]`).
    pub name: String,
    pub provider: Provider,
    pub model: String,
    /// Endpoint without a trailing `/`.
    pub base_url: String,
    /// The variable holding the key; `None` for endpoints without auth.
    pub api_key_env: Option<String>,
    pub max_tokens: u32,
    pub concurrency: usize,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
    pub retries: u32,
    pub timeout: Duration,
    /// Known or configured price; `None`: calls are counted as free.
    pub price: Option<Price>,
    /// Whether swarm's own requests mark their stable start for the
    /// provider's prompt cache.
    pub prompt_cache: bool,
    /// Whether swarm's own agent makes the model call a tool every turn.
    pub tool_choice: ToolChoice,
    /// Where the table stands in the plan.
    pub span: Range<usize>,
}

#[cfg(test)]
impl ModelConfig {
    /// A model named `default` at `base_url`, one request at a time, no
    /// retries, a one-second timeout: for tests of the gateway.
    pub(crate) fn for_test(provider: Provider, base_url: &str) -> Self {
        Self {
            name: "default".into(),
            provider,
            model: "m".into(),
            base_url: base_url.into(),
            api_key_env: None,
            max_tokens: 10,
            concurrency: 1,
            requests_per_minute: None,
            tokens_per_minute: None,
            retries: 0,
            timeout: std::time::Duration::from_secs(1),
            price: None,
            prompt_cache: true,
            tool_choice: ToolChoice::Auto,
            span: 0..0,
        }
    }
}

/// A spending limit; `None` parts are unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    pub tokens: Option<u64>,
    pub usd: Option<f64>,
}

/// What an agent task does (its `prompt`, model and limits).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTask {
    pub prompt: String,
    /// Name of its `[models.NAME]` table.
    pub model: String,
    pub max_turns: u32,
    pub budget: Budget,
    pub repair_rounds: u32,
    /// Sampling temperature, when the plan sets one.
    pub temperature: Option<f64>,
    /// The agent CLI that works on it (a name in the plan's `agents`);
    /// `None`: swarm's own agent.
    pub cli: Option<String>,
    /// The JSON Schema its final answer must match (`output_schema`).
    pub output_schema: Option<serde_json::Value>,
    /// The plan's `[mcp]` servers it uses, by name.
    pub mcp: Vec<String>,
}
