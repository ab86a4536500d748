//! What a plan asks of the executor its attempts run on, and each
//! executor's answer, decided in one place.
//!
//! Most of a plan is the coordinator's business whatever runs the
//! attempts (the graph, merges, the run-wide verify, budgets across the
//! run). Some of it is done where an attempt runs, and an executor may not
//! do it: a set-up cached where the worktrees are, test reports read beside
//! the attempt, an egress proxy, cgroup limits, cassettes of model traffic.
//! Each such thing is a [`Feature`]; every key of every table of the plan
//! has a rule in [`NEEDS`] (the tests walk the plan's JSON schema and fail
//! for a key without one, as the origin allow-list's do), and every
//! executor answers for every feature in one exhaustive match
//! ([`Capabilities`] for [`Executor`]). A plan check ([`unsupported`]) asks
//! the executor about each feature the file, as written, uses: a new
//! executor says what it supports before its first plan runs, and a
//! feature it lacks is refused before anything starts, at the key that
//! asks for it.

use toml::de::{DeTable, DeValue};

use super::error::Source;
use super::executor::Executor;
use super::origin::rules::Table;
use super::origin::{KeyAt, each_key};

/// A part of a plan done where its attempts run, which an executor may
/// not offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// `--record` / `--replay`: agent tasks' model traffic kept in, or
    /// answered from, a cassette (not a plan key: the command line's).
    Tape,
    /// `[setup]`, a task's `setup`: run before attempts, and kept, where
    /// their worktrees are.
    Setup,
    /// `[cleanup]`: run after each attempt where it ran.
    Cleanup,
    /// `shards`, `shard_grouping`, `list_tests`: a task split into shards,
    /// each given its entries.
    Shards,
    /// `junit`, `flaky`, `[[quarantine]]`: test reports read beside the
    /// attempt, and its attempts folded per test.
    TestReports,
    /// `prompt`, `model`, `[models]` and what goes with them: swarm's own
    /// agent, its model calls through the run's gateway.
    Agents,
    /// `agent`, `[agents]`: an agent CLI, its calls through a door.
    AgentClis,
    /// `mcp`, `[mcp]`: MCP servers beside an agent.
    McpServers,
    /// `wasm`, `args`, `fuel`: a WASI module under wasmtime.
    Wasm,
    /// `network` other than `"none"`: the attempt's connections through
    /// an egress proxy that holds it to its list.
    Egress,
    /// `memory`, `processes`, `max_output`, `max_file_size`: limits held
    /// where the attempt runs.
    Limits,
    /// `stall_after`: a watch on the attempt's output, CPU and model calls.
    Stalls,
    /// `warm`: worktrees kept between runs.
    WarmWorktrees,
    /// `variants`, `score` and what goes with them: an experiment's
    /// variants run and scored.
    Experiments,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 14] = [
        Feature::Tape,
        Feature::Setup,
        Feature::Cleanup,
        Feature::Shards,
        Feature::TestReports,
        Feature::Agents,
        Feature::AgentClis,
        Feature::McpServers,
        Feature::Wasm,
        Feature::Egress,
        Feature::Limits,
        Feature::Stalls,
        Feature::WarmWorktrees,
        Feature::Experiments,
    ];

    /// How a person reads it, after "does not support".
    pub fn shown(self) -> &'static str {
        match self {
            Feature::Tape => "--record and --replay",
            Feature::Setup => "a [setup]",
            Feature::Cleanup => "a [cleanup]",
            Feature::Shards => "sharded tasks",
            Feature::TestReports => "test reports",
            Feature::Agents => "agent tasks",
            Feature::AgentClis => "agent CLI tasks",
            Feature::McpServers => "MCP servers",
            Feature::Wasm => "WASM tasks",
            Feature::Egress => "network allow-lists",
            Feature::Limits => "resource limits",
            Feature::Stalls => "stall detection",
            Feature::WarmWorktrees => "warm worktrees",
            Feature::Experiments => "experiments",
        }
    }
}

/// What an executor answers when a plan asks for a feature.
pub trait Capabilities {
    /// Its name, as `[executor] kind` writes it.
    fn kind(&self) -> &'static str;
    /// Whether its attempts can have `feature`.
    fn supports(&self, feature: Feature) -> bool;
}

impl Capabilities for Executor {
    fn kind(&self) -> &'static str {
        match self {
            Executor::Local => "local",
            Executor::Slurm(_) => "slurm",
        }
    }

    fn supports(&self, feature: Feature) -> bool {
        // Exhaustive in both: a new executor, or a new feature, is pointed
        // at here by the compiler.
        match (self, feature) {
            (Executor::Local, _) => true,
            // A node's model calls reach the coordinator through its relay,
            // which keeps no cassettes.
            (Executor::Slurm(_), Feature::Tape) => false,
            // A node runs its attempt with the local executor (`swarm
            // __node`): setup cached per node, reports read there, its own
            // egress proxy or the coordinator's relay (cluster.md).
            (
                Executor::Slurm(_),
                Feature::Setup
                | Feature::Cleanup
                | Feature::Shards
                | Feature::TestReports
                | Feature::Agents
                | Feature::AgentClis
                | Feature::McpServers
                | Feature::Wasm
                | Feature::Egress
                | Feature::Limits
                | Feature::Stalls
                | Feature::WarmWorktrees
                | Feature::Experiments,
            ) => true,
        }
    }
}

/// What one key of a plan asks of its executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: the coordinator does it, or any executor runs it as a
    /// command in a worktree.
    Nothing,
    /// That feature.
    Feature(Feature),
}

/// One key's rule.
#[derive(Debug, Clone, Copy)]
pub struct KeyNeed {
    pub table: Table,
    pub key: &'static str,
    pub need: Need,
}

const fn any(table: Table, key: &'static str) -> KeyNeed {
    KeyNeed {
        table,
        key,
        need: Need::Nothing,
    }
}

const fn needs(table: Table, key: &'static str, feature: Feature) -> KeyNeed {
    KeyNeed {
        table,
        key,
        need: Need::Feature(feature),
    }
}

use Feature as F;
use Table as T;

/// What every key of every table asks of the executor. A table's own
/// key says what the table needs; its keys then need nothing more.
pub const NEEDS: &[KeyNeed] = &[
    any(T::Plan, "swarm"),
    any(T::Plan, "defaults"),
    any(T::Plan, "task"),
    needs(T::Plan, "models", F::Agents),
    needs(T::Plan, "agents", F::AgentClis),
    needs(T::Plan, "mcp", F::McpServers),
    any(T::Plan, "executor"),
    needs(T::Plan, "setup", F::Setup),
    needs(T::Plan, "quarantine", F::TestReports),
    any(T::Quarantine, "test"),
    any(T::Quarantine, "task"),
    any(T::Quarantine, "owner"),
    any(T::Quarantine, "reason"),
    any(T::Quarantine, "review_by"),
    needs(T::Plan, "cleanup", F::Cleanup),
    any(T::MatrixFrom, "glob"),
    any(T::MatrixFrom, "lines"),
    any(T::Cleanup, "run"),
    any(T::Cleanup, "network"),
    any(T::Cleanup, "timeout"),
    any(T::Setup, "run"),
    any(T::Setup, "key"),
    any(T::Setup, "network"),
    any(T::Setup, "timeout"),
    any(T::Setup, "env"),
    any(T::Swarm, "name"),
    any(T::Swarm, "base"),
    any(T::Swarm, "concurrency"),
    any(T::Swarm, "sandbox"),
    any(T::Swarm, "on_failure"),
    any(T::Swarm, "on_conflict"),
    any(T::Swarm, "predict_conflicts"),
    any(T::Swarm, "history"),
    any(T::Swarm, "keep_runs"),
    any(T::Swarm, "read_paths"),
    any(T::Swarm, "toolchains"),
    any(T::Swarm, "worktrees"),
    any(T::Swarm, "caches"),
    needs(T::Swarm, "budget", F::Agents),
    any(T::Swarm, "min_free_space"),
    any(T::Swarm, "plan_repair_rounds"),
    any(T::Swarm, "plan_context_tokens"),
    any(T::Swarm, "max_depth"),
    any(T::Swarm, "max_children"),
    any(T::Swarm, "max_tasks"),
    any(T::Swarm, "replan"),
    any(T::Swarm, "replan_model"),
    any(T::Swarm, "verify"),
    any(T::Swarm, "verify_every"),
    any(T::Swarm, "verify_timeout"),
    any(T::Swarm, "verify_retries"),
    any(T::Swarm, "verify_concurrency"),
    any(T::Task, "id"),
    any(T::Task, "deps"),
    any(T::Task, "run"),
    needs(T::Task, "wasm", F::Wasm),
    needs(T::Task, "args", F::Wasm),
    needs(T::Task, "fuel", F::Wasm),
    needs(T::Task, "prompt", F::Agents),
    needs(T::Task, "agent", F::AgentClis),
    needs(T::Task, "mcp", F::McpServers),
    needs(T::Task, "output_schema", F::Agents),
    needs(T::Task, "model", F::Agents),
    needs(T::Task, "max_turns", F::Agents),
    needs(T::Task, "budget", F::Agents),
    needs(T::Task, "repair_rounds", F::Agents),
    any(T::Task, "env"),
    any(T::Task, "timeout"),
    needs(T::Task, "stall_after", F::Stalls),
    any(T::Task, "retries"),
    any(T::Task, "verify"),
    any(T::Task, "paths"),
    any(T::Task, "sparse"),
    any(T::Task, "creates"),
    any(T::Task, "allow_overlap"),
    any(T::Task, "isolation"),
    any(T::Task, "group"),
    needs(T::Task, "shards", F::Shards),
    needs(T::Task, "junit", F::TestReports),
    needs(T::Task, "shard_grouping", F::Shards),
    needs(T::Task, "list_tests", F::Shards),
    needs(T::Task, "affected", F::Shards),
    needs(T::Task, "affects", F::Shards),
    needs(T::Task, "flaky", F::TestReports),
    any(T::Task, "on_conflict"),
    any(T::Task, "conflict_reruns"),
    needs(T::Task, "network", F::Egress),
    needs(T::Task, "setup", F::Setup),
    needs(T::Task, "warm", F::WarmWorktrees),
    needs(T::Task, "memory", F::Limits),
    needs(T::Task, "processes", F::Limits),
    needs(T::Task, "max_output", F::Limits),
    needs(T::Task, "max_file_size", F::Limits),
    any(T::Task, "matrix"),
    needs(T::Task, "variants", F::Experiments),
    needs(T::Task, "score", F::Experiments),
    needs(T::Task, "score_timeout", F::Experiments),
    needs(T::Task, "score_repeat", F::Experiments),
    needs(T::Task, "pick", F::Experiments),
    needs(T::Task, "temperature", F::Agents),
    any(T::Model, "provider"),
    any(T::Model, "model"),
    any(T::Model, "base_url"),
    any(T::Model, "api_key_env"),
    any(T::Model, "max_tokens"),
    any(T::Model, "concurrency"),
    any(T::Model, "requests_per_minute"),
    any(T::Model, "tokens_per_minute"),
    any(T::Model, "retries"),
    any(T::Model, "timeout"),
    any(T::Model, "price"),
    any(T::Model, "prompt_cache"),
    any(T::Model, "tool_choice"),
    any(T::Price, "input"),
    any(T::Price, "output"),
    any(T::Price, "cache_read"),
    any(T::Price, "cache_write"),
    any(T::Budget, "tokens"),
    any(T::Budget, "usd"),
    any(T::Agent, "kind"),
    any(T::Agent, "model"),
    any(T::Agent, "program"),
    any(T::Agent, "args"),
    any(T::Agent, "command"),
    any(T::Agent, "protocol"),
    any(T::Agent, "base_url_env"),
    any(T::Agent, "token_env"),
    any(T::Agent, "memory"),
    any(T::Mcp, "command"),
    any(T::Mcp, "env"),
    any(T::Executor, "kind"),
    any(T::Executor, "repo"),
    any(T::Executor, "partition"),
    any(T::Executor, "account"),
    any(T::Executor, "qos"),
    any(T::Executor, "time_limit"),
    any(T::Executor, "cpus_per_task"),
    any(T::Executor, "mem"),
    any(T::Executor, "extra_args"),
    any(T::Executor, "swarm"),
    any(T::Executor, "scratch"),
    any(T::Executor, "cache_dir"),
    any(T::Executor, "egress"),
    any(T::Executor, "poll_interval"),
    any(T::Executor, "max_jobs"),
    any(T::Executor, "tasks_per_job"),
    any(T::Executor, "pack_under"),
];

/// The rule of `key` in `table`, if it has one.
fn need(table: Table, key: &str) -> Need {
    NEEDS
        .iter()
        .find(|n| n.table == table && n.key == key)
        .map_or(Need::Nothing, |n| n.need)
}

/// A feature a plan asks for that its executor lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "start run: the {executor} executor does not support {}{}\n\
     help: {}",
    feature.shown(),
    at.as_deref().map(|at| format!(" ({at})")).unwrap_or_default(),
    help(*feature)
)]
pub struct Unsupported {
    pub executor: &'static str,
    pub feature: Feature,
    /// The key that asks for it, as ``shards` in task `build`` (`None`:
    /// the command line).
    pub at: Option<String>,
}

fn help(feature: Feature) -> &'static str {
    match feature {
        Feature::Tape => "run the plan with --executor local to record or replay its model traffic",
        _ => "run the plan with --executor local, or take the key out",
    }
}

/// The first feature `source` (a plan as written) or the command line
/// (`tape`: `--record` or `--replay` given) asks for that `executor`
/// lacks, if any.
pub fn unsupported(
    source: &Source,
    tape: bool,
    executor: &dyn Capabilities,
) -> Option<Unsupported> {
    let refused = |feature, at| Unsupported {
        executor: executor.kind(),
        feature,
        at,
    };
    if tape && !executor.supports(Feature::Tape) {
        return Some(refused(Feature::Tape, None));
    }
    // An executor that offers everything (the local one, every run's and
    // every node's) has nothing to refuse: the file is not read again.
    if Feature::ALL.iter().all(|&f| executor.supports(f)) {
        return None;
    }
    // A file that does not read is refused by the plan's checks.
    let document = DeTable::parse(&source.text).ok()?;
    let mut found = None;
    each_key(Table::Plan, document.get_ref(), "the plan", &mut |at| {
        if found.is_some() {
            return;
        }
        if let Some(feature) = asked(&at)
            && !executor.supports(feature)
        {
            found = Some(refused(
                feature,
                Some(format!("`{}` in {}", at.key, at.shown)),
            ));
        }
    });
    found
}

/// The feature the key `at` asks for, if any.
fn asked(at: &KeyAt<'_, '_>) -> Option<Feature> {
    match need(at.kind, at.key) {
        Need::Nothing => None,
        // No network is no egress proxy.
        Need::Feature(Feature::Egress) if matches!(at.value.get_ref(), DeValue::String(s) if s == "none") => {
            None
        }
        Need::Feature(feature) => Some(feature),
    }
}

#[cfg(test)]
#[path = "capabilities_tests.rs"]
mod tests;
