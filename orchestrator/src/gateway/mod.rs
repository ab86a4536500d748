//! The model gateway: the only way agent workers reach a model.
//!
//! Workers have no network and never see an API key. Each one talks to the
//! coordinator over a Unix socket ([`session`]); the gateway holds the
//! conversation, calls the provider with reqwest (rustls), streams the answer
//! back, and writes every turn to the task's transcript. What it shares
//! across all workers of a run lives here: one HTTP client, and per model a
//! concurrency cap, pacing to the account's rate limits and a cool-down
//! after a 429 ([`limiter`]); the run's budget. Coordinator-side code calls
//! a model through the same machinery with [`Gateway::complete`].
//!
//! Providers: the Anthropic Messages API and OpenAI-style Chat Completions,
//! each behind the `provider::Provider` trait, which turns the provider's
//! answer (an SSE stream, or one JSON response when the call does not
//! stream) into common events; one fold ([`stream`]) builds the answer
//! from them.

mod attempt;
mod call;
mod complete;
mod limiter;
pub mod prices;
mod provider;
mod session;
mod stream;
mod transcript;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarm_protocol::agent::Usage;

use crate::plan::{Budget, ModelConfig};

pub use complete::{Completion, CompletionRequest, ToolCall};
pub use session::{AgentNote, Notes, Session, SessionEnd, Verdict, Verifier};

/// An API key. Never printed: its `Debug` is redacted, and every error
/// text the gateway records is scrubbed of it.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(key: impl Into<Arc<str>>) -> Self {
        Self(key.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why the gateway could not be set up, or a coordinator-side call
/// ([`Gateway::complete`]) did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("create the HTTP client for the model gateway: {0}")]
    Client(#[from] reqwest::Error),
    #[error("find model `{0}` among the plan's models")]
    UnknownModel(String),
    #[error("call model `{model}`: {why}")]
    Budget { model: String, why: String },
    #[error("call model `{model}`: {message}")]
    Call { model: String, message: String },
}

/// One model endpoint, shared by every task that uses it.
pub(crate) struct Endpoint {
    pub config: ModelConfig,
    pub key: Option<Secret>,
    pub limiter: limiter::Limiter,
    /// Chosen once, from `config`.
    pub provider: &'static dyn provider::Provider,
}

/// What a run spends on models.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Spent {
    pub usage: Usage,
    pub usd: f64,
}

/// The run-wide part of the gateway. Cheap to share (`Arc`).
pub struct Gateway {
    http: reqwest::Client,
    endpoints: BTreeMap<String, Arc<Endpoint>>,
    budget: Budget,
    spent: Mutex<Spent>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("models", &self.endpoints.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway for `models`, with the keys the CLI read (by model name)
    /// and the run's `budget`.
    pub fn new(
        models: &BTreeMap<String, ModelConfig>,
        keys: &BTreeMap<String, Secret>,
        budget: Budget,
    ) -> Result<Self, GatewayError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            // Never follow a redirect with the key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("swarm/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let endpoints = models
            .iter()
            .map(|(name, config)| {
                let endpoint = Endpoint {
                    config: config.clone(),
                    key: keys.get(name).cloned(),
                    limiter: limiter::Limiter::new(config),
                    provider: provider::for_config(config),
                };
                (name.clone(), Arc::new(endpoint))
            })
            .collect();
        Ok(Self {
            http,
            endpoints,
            budget,
            spent: Mutex::new(Spent::default()),
        })
    }

    /// What the run has spent so far.
    pub fn spent(&self) -> (Usage, f64) {
        let s = lock(&self.spent);
        (s.usage, s.usd)
    }

    fn endpoint(&self, model: &str) -> Option<Arc<Endpoint>> {
        self.endpoints.get(model).cloned()
    }

    /// Why the run's budget forbids another call, if it does.
    fn run_budget_spent(&self) -> Option<String> {
        let s = *lock(&self.spent);
        over_budget(&self.budget, &s, "the run")
    }

    /// Counts a call's `answer` against the run: a server that reports no
    /// usage (one that ignores `stream_options`) must not escape the budget,
    /// so it is estimated at about four bytes a token from the request's
    /// `estimate` and the answer. Returns the call's cost and whether its
    /// usage was estimated.
    fn settle(
        &self,
        config: &ModelConfig,
        answer: &mut stream::Answer,
        estimate: u64,
    ) -> (f64, bool) {
        let estimated = answer.usage.total() == 0;
        if estimated {
            let said: usize = answer
                .content
                .iter()
                .map(|b| serde_json::to_string(b).map_or(0, |t| t.len()))
                .sum();
            answer.usage.input_tokens = estimate;
            answer.usage.output_tokens = said as u64 / 4;
        }
        let usd = prices::cost(
            config.price,
            answer.usage.input_tokens,
            answer.usage.output_tokens,
        );
        let mut s = lock(&self.spent);
        s.usage.add(answer.usage);
        s.usd += usd;
        (usd, estimated)
    }
}

/// Why `budget` forbids another call after `spent`, if it does.
pub(crate) fn over_budget(budget: &Budget, spent: &Spent, whose: &str) -> Option<String> {
    if let Some(limit) = budget.tokens
        && spent.usage.total() >= limit
    {
        return Some(format!(
            "{whose} has used {} of its {limit} tokens",
            spent.usage.total()
        ));
    }
    if let Some(limit) = budget.usd
        && spent.usd >= limit
    {
        return Some(format!(
            "{whose} has spent ${:.4} of its ${limit:.2}",
            spent.usd
        ));
    }
    None
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `text` with every occurrence of `key` replaced, for anything the gateway
/// records or shows that came from the network.
pub(crate) fn redact(text: &str, key: Option<&Secret>) -> String {
    match key {
        Some(k) if !k.expose().is_empty() => text.replace(k.expose(), "[redacted]"),
        _ => text.to_string(),
    }
}
