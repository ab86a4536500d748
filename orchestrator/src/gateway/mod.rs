//! The model gateway: the only way agent workers reach a model.
//!
//! Workers have no network and never see an API key. Each one talks to the
//! coordinator over a Unix socket ([`session`]); the gateway holds the
//! conversation, calls the provider with reqwest (rustls), streams the answer
//! back, and writes every turn to the task's transcript. What it shares
//! across all workers of a run lives here: one HTTP client, and per model a
//! concurrency cap, pacing to the account's rate limits and a cool-down
//! after a 429 ([`limiter`]); the run's budget, and the budget scopes of
//! tasks and other callers under it ([`budget`]). Coordinator-side code
//! calls a model through the same machinery with [`Gateway::complete`].
//!
//! Providers: the Anthropic Messages API and OpenAI-style Chat Completions,
//! each behind the `provider::Provider` trait, which turns the provider's
//! answer (an SSE stream, or one JSON response when the call does not
//! stream) into common events; one fold ([`stream`]) builds the answer
//! from them.

mod attempt;
mod budget;
mod call;
mod complete;
pub mod config;
pub mod door;
mod door_shapes;
mod limiter;
mod passing;
pub mod prices;
pub(crate) mod provider;
pub mod relay;
mod reply;
mod request;
mod schema_calls;
mod session;
mod sse;
mod stream;
pub mod tape;
mod transcript;
mod translate;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarm_protocol::agent::Usage;

use crate::gateway::config::{Budget, ModelConfig};

pub use budget::BudgetScope;
pub use complete::{AnswerFormat, Completion, CompletionRequest, ToolCall};
pub use session::{AgentNote, Notes, Session, SessionEnd, Spawn, Verdict, Verifier};

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
    /// Reached through a cluster's relay (a node's gateway): each call
    /// says whose it is, and the relay may refuse it for a budget.
    pub relayed: bool,
}

/// The run-wide part of the gateway. Cheap to share (`Arc`).
pub struct Gateway {
    http: reqwest::Client,
    endpoints: BTreeMap<String, Arc<Endpoint>>,
    /// The run's budget, which every call counts against.
    run: Arc<BudgetScope>,
    /// Told when a call in flight gives back the room it held.
    freed: Arc<tokio::sync::Notify>,
    /// Taken while a call is checked against its budgets and holds room.
    admitting: Mutex<()>,
    /// Budgets shared by several tasks: an experiment's, which covers all
    /// its variants. By name.
    groups: Mutex<BTreeMap<String, Arc<BudgetScope>>>,
    /// `--record` / `--replay`: where model traffic is kept or served from.
    tape: Option<tape::Tape>,
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
        Self::build(models, keys, budget, false)
    }

    /// The gateway of a cluster node, whose `models` are the coordinator's
    /// relay (`keys` the run's token): each call names its task there, and
    /// a budget refusal from the relay is one ([`Endpoint::relayed`]).
    pub fn for_node(
        models: &BTreeMap<String, ModelConfig>,
        keys: &BTreeMap<String, Secret>,
        budget: Budget,
    ) -> Result<Self, GatewayError> {
        Self::build(models, keys, budget, true)
    }

    fn build(
        models: &BTreeMap<String, ModelConfig>,
        keys: &BTreeMap<String, Secret>,
        budget: Budget,
        relayed: bool,
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
                    provider: provider::for_kind(config.provider),
                    relayed,
                };
                (name.clone(), Arc::new(endpoint))
            })
            .collect();
        Ok(Self {
            http,
            endpoints,
            run: Arc::new(BudgetScope::new("the run", budget)),
            freed: Arc::new(tokio::sync::Notify::new()),
            admitting: Mutex::new(()),
            groups: Mutex::new(BTreeMap::new()),
            tape: None,
        })
    }

    /// The gateway recording model traffic to cassettes, or replaying it
    /// from them, as `settings` say.
    pub fn with_tape(mut self, settings: &tape::TapeSettings) -> Self {
        if settings.is_off() {
            return self;
        }
        let secrets = self
            .endpoints
            .values()
            .filter_map(|e| e.key.clone())
            .collect();
        self.tape = Some(tape::Tape::new(settings.clone(), secrets));
        self
    }

    /// The cassette of `id` (`None` when the run neither records nor
    /// replays), with the run's `paths` that requests may quote by the
    /// placeholder that stands for them in a request's key.
    pub fn reel(
        &self,
        id: tape::ReelId,
        paths: Vec<(String, std::path::PathBuf)>,
    ) -> Result<Option<Arc<tape::Reel>>, String> {
        match &self.tape {
            None => Ok(None),
            Some(tape) => tape.reel(id, paths).map(Some),
        }
    }

    /// The budget experiment `task`'s variants share (made with `budget`
    /// the first time it is asked for).
    pub fn group(&self, task: &str, budget: Budget) -> Arc<BudgetScope> {
        self.shared(task.to_string(), budget, || {
            format!("task `{task}` (all its variants)")
        })
    }

    /// The budget all attempts of task `task` share: a retry and a run
    /// again on a conflict spend from what the earlier attempts left, not
    /// from a budget of their own. Each attempt still keeps its own scope,
    /// which says what that attempt spent.
    pub fn attempts(&self, task: &str, budget: Budget) -> Arc<BudgetScope> {
        self.shared(format!("{task}#"), budget, || {
            format!("task `{task}` (all its attempts)")
        })
    }

    /// The budget task `task` shares with the subtasks it spawned (and
    /// theirs): what the whole tree below it spends counts against it.
    pub fn subtree(&self, task: &str, budget: Budget) -> Arc<BudgetScope> {
        self.shared(format!("{task}/"), budget, || {
            format!("task `{task}` (its subtasks included)")
        })
    }

    /// Every budget a call of agent task `task` (its own `budget`) counts
    /// against beside its attempt's own and the run's: all its attempts',
    /// its experiment's when it is a variant of `variant_of`, and the
    /// subtree of each ancestor that `budget_of` says is an agent task
    /// (with that budget). The same for a task on this machine and one on
    /// a cluster's node, whose calls the relay counts.
    pub fn task_scopes(
        &self,
        task: &str,
        budget: Budget,
        variant_of: Option<&str>,
        budget_of: impl Fn(&str) -> Option<Budget>,
    ) -> Vec<Arc<BudgetScope>> {
        let mut scopes = vec![self.attempts(task, budget)];
        if let Some(of) = variant_of {
            scopes.push(self.group(of, budget));
        }
        let mut above = crate::ids::parent_of(task);
        while let Some(id) = above {
            if let Some(theirs) = budget_of(id) {
                scopes.push(self.subtree(id, theirs));
            }
            above = crate::ids::parent_of(id);
        }
        scopes
    }

    /// The shared scope `key` names, made with `budget` (named by `whose`)
    /// the first time it is asked for.
    fn shared(
        &self,
        key: String,
        budget: Budget,
        whose: impl FnOnce() -> String,
    ) -> Arc<BudgetScope> {
        let mut groups = lock(&self.groups);
        Arc::clone(
            groups
                .entry(key)
                .or_insert_with(|| Arc::new(BudgetScope::new(whose(), budget))),
        )
    }

    /// The run's budget.
    pub fn run_budget(&self) -> &BudgetScope {
        &self.run
    }

    /// What the run has spent so far.
    pub fn spent(&self) -> (Usage, f64) {
        self.run.spent()
    }

    /// The provider's name of model `model` (its `model` key).
    pub fn model_name(&self, model: &str) -> Option<String> {
        self.endpoints.get(model).map(|e| e.config.model.clone())
    }

    fn endpoint(&self, model: &str) -> Option<Arc<Endpoint>> {
        self.endpoints.get(model).cloned()
    }
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
