//! The capability ceiling: what a task that swarm did not get from the
//! person running it (a subtask a running task asks for, a replan's fix a
//! model writes) may be given at most. It is its parent's confinement:
//! such a task can only narrow what its parent may do, never widen it.
//!
//! Every key of a `[[task]]` table has one rule, decided with every other
//! origin's in `plan::origin::rules` ([`KEYS`]): inherited
//! (left out, the child gets its parent's value, not the plan's
//! `[defaults]`), may only narrow (a value above the parent's is refused,
//! naming the key and the parent's value; nothing is silently clamped),
//! free (the child's own business, inside the sandbox it inherits) or
//! refused (not for subtasks at all). A unit test there walks the task
//! schema and fails for a key without a rule, so the next key cannot be
//! forgotten.
//!
//! What is not a task key cannot be asked for at all: a request holds
//! `[[task]]` tables only, so the sandbox mode, read grants, toolchains,
//! caches, models and their keys, the executor and the run's limits stay
//! the plan's.

// As in expand.rs: a PlanError is built once per mistake, on the way out.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use swarm_protocol::Isolation;

use super::error::{PlanError, PlanErrorKind, Source};
use super::models::{Budget, DEFAULT_MAX_TURNS};
use super::schema::TaskFields;
use super::{Payload, Task, TaskNetwork};

pub use super::origin::rules::{
    SUBTASK as KEYS, Subtask as Rule, SubtaskRule as KeyRule, refused_subtask_keys as refused_keys,
};

/// What a task's children may be given at most: its own confinement.
#[derive(Debug, Clone)]
pub struct Ceiling {
    /// Whose ceiling it is (named in refusals).
    pub parent: String,
    pub network: TaskNetwork,
    pub isolation: Isolation,
    pub memory: Option<u64>,
    pub processes: Option<u64>,
    pub timeout: Option<Duration>,
    /// When the subtree must have ended, if it must.
    pub not_after: Option<SystemTime>,
    pub retries: u32,
    pub conflict_reruns: u32,
    pub max_output: u64,
    pub max_file_size: u64,
    /// A WASM parent's fuel (`None`: no fuel limit to keep).
    pub fuel: Option<u64>,
    pub max_turns: u32,
    pub budget: Budget,
    /// An agent parent's MCP servers (none for another parent).
    pub mcp: Vec<String>,
    /// The WASM modules the plan's own tasks run.
    pub modules: Vec<PathBuf>,
}

/// The WASM modules `tasks` run: what a subtask may run.
pub fn modules(tasks: &[Task]) -> Vec<PathBuf> {
    tasks
        .iter()
        .filter_map(|t| match &t.payload {
            Payload::Wasm(w) => Some(w.module.clone()),
            Payload::Command { .. } | Payload::Agent(_) => None,
        })
        .collect()
}

/// swarm's own limits when a task sets none (the sandbox's defaults).
const DEFAULT_MEMORY: u64 = 16 << 30;
const DEFAULT_PROCESSES: u64 = 4096;

impl Ceiling {
    /// The ceiling of `parent`'s children, where `modules` are the WASM
    /// modules the plan's own tasks run, `deadline` when the subtree must
    /// end (if sooner than the parent's own), and `defaults` the plan's
    /// `[defaults]` (which bound an agent child of a parent that is no
    /// agent).
    pub fn of(
        parent: &Task,
        modules: &[PathBuf],
        deadline: Option<SystemTime>,
        defaults: &TaskFields,
    ) -> Self {
        let (max_turns, budget, mcp) = match &parent.payload {
            Payload::Agent(agent) => (agent.max_turns, agent.budget, agent.mcp.clone()),
            Payload::Command { .. } | Payload::Wasm(_) => (
                defaults.max_turns.unwrap_or(DEFAULT_MAX_TURNS),
                defaults.budget.map(Budget::from).unwrap_or_default(),
                Vec::new(),
            ),
        };
        Self {
            parent: parent.id.clone(),
            network: parent.network.clone(),
            isolation: parent.isolation,
            memory: parent.memory,
            processes: parent.processes,
            timeout: parent.timeout,
            not_after: match (parent.not_after, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            retries: parent.retries,
            conflict_reruns: parent.conflict_reruns,
            max_output: parent.max_output,
            max_file_size: parent.max_file_size,
            fuel: match &parent.payload {
                Payload::Wasm(w) => w.fuel,
                Payload::Command { .. } | Payload::Agent(_) => None,
            },
            max_turns,
            budget,
            mcp,
            modules: modules.to_vec(),
        }
    }

    /// Fits `child` (resolved from its request table `fields`) under the
    /// ceiling: what the table left out is inherited, what it asks for
    /// beyond the ceiling is refused (an error in `errors` naming the key
    /// and the parent's value).
    pub fn admit(
        &self,
        child: &mut Task,
        fields: &TaskFields,
        source: &Source,
        errors: &mut Vec<PlanError>,
    ) {
        // Every key past the ceiling, reported together at the end.
        let mut refused: Vec<(&str, String, String)> = Vec::new();
        let mut refuse = |key: &'static str, asked: String, allowed: String| {
            refused.push((key, asked, allowed));
        };
        // A subtask's id is a task's choice: its worktree is never kept
        // for a later run to build on.
        if fields.warm == Some(true) {
            refuse(
                "warm",
                "true".into(),
                "false (a subtask's worktree is never kept warm)".into(),
            );
        }
        child.warm = Some(false);
        match &fields.network {
            None => child.network = self.network.clone(),
            Some(_) if child.network.wider_than(&self.network) => {
                refuse(
                    "network",
                    child.network.to_string(),
                    self.network.to_string(),
                );
            }
            Some(_) => {}
        }
        match fields.isolation {
            None => child.isolation = self.isolation,
            Some(Isolation::Worktree) if self.isolation == Isolation::Readonly => {
                refuse("isolation", "\"worktree\"".into(), "\"readonly\"".into());
            }
            Some(_) => {}
        }
        let limit = |own: Option<u64>, default: u64| own.unwrap_or(default);
        match &fields.memory {
            None => child.memory = self.memory,
            Some(asked)
                if limit(child.memory, DEFAULT_MEMORY) > limit(self.memory, DEFAULT_MEMORY) =>
            {
                refuse(
                    "memory",
                    format!("{:?}", asked.get_ref()),
                    size(limit(self.memory, DEFAULT_MEMORY)),
                );
            }
            Some(_) => {}
        }
        match fields.processes {
            None => child.processes = self.processes,
            Some(asked) if asked > limit(self.processes, DEFAULT_PROCESSES) => refuse(
                "processes",
                asked.to_string(),
                limit(self.processes, DEFAULT_PROCESSES).to_string(),
            ),
            Some(_) => {}
        }
        match (&fields.timeout, self.timeout) {
            (None, _) => child.timeout = self.timeout,
            (Some(asked), Some(allowed)) if child.timeout.is_none_or(|t| t > allowed) => refuse(
                "timeout",
                format!("{:?}", asked.get_ref()),
                format!("\"{}\"", humantime::format_duration(allowed)),
            ),
            (Some(_), _) => {}
        }
        child.not_after = match (child.not_after, self.not_after) {
            (Some(own), Some(parent)) => Some(own.min(parent)),
            (own, parent) => own.or(parent),
        };
        match fields.retries {
            None => child.retries = self.retries,
            Some(asked) if asked > self.retries => {
                refuse("retries", asked.to_string(), self.retries.to_string());
            }
            Some(_) => {}
        }
        match fields.conflict_reruns {
            None => child.conflict_reruns = self.conflict_reruns,
            Some(asked) if asked > self.conflict_reruns => refuse(
                "conflict_reruns",
                asked.to_string(),
                self.conflict_reruns.to_string(),
            ),
            Some(_) => {}
        }
        match &fields.max_output {
            None => child.max_output = self.max_output,
            Some(asked) if child.max_output > self.max_output => refuse(
                "max_output",
                format!("{:?}", asked.get_ref()),
                size(self.max_output),
            ),
            Some(_) => {}
        }
        match &fields.max_file_size {
            None => child.max_file_size = self.max_file_size,
            Some(asked) if child.max_file_size > self.max_file_size => refuse(
                "max_file_size",
                format!("{:?}", asked.get_ref()),
                size(self.max_file_size),
            ),
            Some(_) => {}
        }
        self.admit_payload(child, fields, (source, errors), &mut refuse);
        for (key, asked, allowed) in refused {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!(
                            "subtask `{}` asks for `{key} = {asked}`, more than its parent `{}` may have (`{key} = {allowed}`)",
                            child.id, self.parent
                        ),
                        Some(child.span.clone()),
                        "this subtask",
                    )
                    .with_help(format!(
                        "a subtask can only narrow what its parent may do: leave `{key}` out to inherit `{allowed}`, or ask for less"
                    )),
            );
        }
    }

    /// [`Self::admit`] of what a WASM or agent subtask asks for beyond the
    /// keys every task has: its module (one the plan's own tasks run), its
    /// fuel, MCP servers, turns and budget.
    fn admit_payload(
        &self,
        child: &mut Task,
        fields: &TaskFields,
        (source, errors): (&Source, &mut Vec<PlanError>),
        refuse: &mut dyn FnMut(&'static str, String, String),
    ) {
        match &mut child.payload {
            Payload::Wasm(wasm) => {
                if !self.modules.contains(&wasm.module) {
                    errors.push(
                        source
                            .error(
                                PlanErrorKind::BadValue,
                                format!(
                                    "subtask `{}` asks to run the WASM module {}, which none of the plan's own tasks runs",
                                    child.id,
                                    wasm.module.display()
                                ),
                                Some(wasm.span.clone()),
                                "this module",
                            )
                            .with_help(
                                "a subtask may run only a module the plan itself names (the person running swarm chose those files)",
                            ),
                    );
                }
                if let Some(allowed) = self.fuel {
                    match fields.fuel {
                        None => wasm.fuel = Some(allowed),
                        Some(asked) if asked > allowed => {
                            refuse("fuel", asked.to_string(), allowed.to_string());
                        }
                        Some(_) => {}
                    }
                }
            }
            Payload::Agent(agent) => {
                match &fields.mcp {
                    None => agent.mcp = self.mcp.clone(),
                    Some(_) if agent.mcp.iter().any(|m| !self.mcp.contains(m)) => {
                        refuse("mcp", names(&agent.mcp), names(&self.mcp))
                    }
                    Some(_) => {}
                }
                match fields.max_turns {
                    None => agent.max_turns = self.max_turns,
                    Some(asked) if asked > self.max_turns => {
                        refuse("max_turns", asked.to_string(), self.max_turns.to_string());
                    }
                    Some(_) => {}
                }
                match fields.budget {
                    None => agent.budget = narrower(agent.budget, self.budget),
                    Some(asked) => {
                        let over_tokens = self
                            .budget
                            .tokens
                            .is_some_and(|t| asked.tokens.is_none_or(|a| a > t));
                        let over_usd = self
                            .budget
                            .usd
                            .is_some_and(|u| asked.usd.is_none_or(|a| a > u));
                        if over_tokens || over_usd {
                            refuse("budget", budget(asked.into()), budget(self.budget));
                        }
                    }
                }
            }
            Payload::Command { .. } => {}
        }
    }
}

/// A list of server names as a plan writes it: `["a", "b"]`.
fn names(list: &[String]) -> String {
    let quoted: Vec<String> = list.iter().map(|n| format!("{n:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn size(bytes: u64) -> String {
    format!("\"{}\"", bytesize::ByteSize::b(bytes).display().iec())
}

fn budget(b: Budget) -> String {
    let parts: Vec<String> = [
        b.tokens.map(|t| format!("tokens = {t}")),
        b.usd.map(|u| format!("usd = {u}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    match parts.is_empty() {
        true => "{}".into(),
        false => format!("{{ {} }}", parts.join(", ")),
    }
}

/// The tighter of two budgets, limit by limit.
fn narrower(a: Budget, b: Budget) -> Budget {
    let min_u = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let min_f = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    Budget {
        tokens: min_u(a.tokens, b.tokens),
        usd: min_f(a.usd, b.usd),
    }
}
