//! The capability ceiling: what a task that swarm did not get from the
//! person running it (a subtask a running task asks for, a replan's fix a
//! model writes) may be given at most. It is its parent's confinement:
//! such a task can only narrow what its parent may do, never widen it.
//!
//! Every key of a `[[task]]` table has one rule here ([`KEYS`]): inherited
//! (left out, the child gets its parent's value, not the plan's
//! `[defaults]`), may only narrow (a value above the parent's is refused,
//! naming the key and the parent's value; nothing is silently clamped),
//! free (the child's own business, inside the sandbox it inherits) or
//! refused (not for subtasks at all). A unit test walks the task schema
//! and fails for a key without a rule, so the next key cannot be
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
use super::{NetworkMode, Payload, Task};

/// How a key of a `[[task]]` table is treated in a subtask request or a
/// replan's fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Left out, the child gets its parent's value; given, it may not be
    /// more than the parent's (refused otherwise).
    Narrows,
    /// The child's own business: it changes what the child does, not
    /// what it may reach; it runs inside the confinement it inherits.
    Free,
    /// Not for subtasks: refused whenever it is given.
    Refused,
}

/// One key's rule, with the reason shown in the README's table.
#[derive(Debug, Clone, Copy)]
pub struct KeyRule {
    pub key: &'static str,
    pub rule: Rule,
    pub why: &'static str,
}

/// The rule of every `[[task]]` key (in the order of the README's table).
pub const KEYS: &[KeyRule] = &[
    KeyRule {
        key: "network",
        rule: Rule::Narrows,
        why: "`none` < `full`: a child of a task without network has none",
    },
    KeyRule {
        key: "paths",
        rule: Rule::Narrows,
        why: "inside the parent's `paths` and `creates`; left out, the parent's",
    },
    KeyRule {
        key: "creates",
        rule: Rule::Narrows,
        why: "inside the parent's `paths` and `creates`; left out, the parent's",
    },
    KeyRule {
        key: "isolation",
        rule: Rule::Narrows,
        why: "`readonly` < `worktree`: a child of a read-only task writes nothing",
    },
    KeyRule {
        key: "memory",
        rule: Rule::Narrows,
        why: "at most the parent's (swarm's default when the parent sets none)",
    },
    KeyRule {
        key: "processes",
        rule: Rule::Narrows,
        why: "at most the parent's (swarm's default when the parent sets none)",
    },
    KeyRule {
        key: "timeout",
        rule: Rule::Narrows,
        why: "at most the parent's; a subtree also ends by its parent's deadline (the parent's timeout from the start of the attempt that asked)",
    },
    KeyRule {
        key: "retries",
        rule: Rule::Narrows,
        why: "at most the parent's",
    },
    KeyRule {
        key: "max_output",
        rule: Rule::Narrows,
        why: "at most the parent's: what the coordinator keeps of its output",
    },
    KeyRule {
        key: "max_file_size",
        rule: Rule::Narrows,
        why: "at most the parent's: what the coordinator commits of it",
    },
    KeyRule {
        key: "fuel",
        rule: Rule::Narrows,
        why: "at most a WASM parent's fuel; free under another kind of parent (its timeout bounds it)",
    },
    KeyRule {
        key: "max_turns",
        rule: Rule::Narrows,
        why: "at most an agent parent's; under another parent, what the plan's [defaults] give",
    },
    KeyRule {
        key: "budget",
        rule: Rule::Narrows,
        why: "at most an agent parent's (whose budget covers its whole subtree); under another parent, the plan's [defaults]",
    },
    KeyRule {
        key: "mcp",
        rule: Rule::Narrows,
        why: "some of an agent parent's own servers (programs the person running swarm chose, started in the child's own sandbox); left out, the parent's; a request cannot declare servers",
    },
    KeyRule {
        key: "wasm",
        rule: Rule::Narrows,
        why: "a module the plan's own tasks run: a request cannot make the coordinator read another file of the host",
    },
    KeyRule {
        key: "agent",
        rule: Rule::Free,
        why: "one of the agents the plan declares in [agents] or its own tasks use (programs the person running it chose); a request cannot declare agents. Every agent runs in the sandbox the child inherits; a CLI's one TCP port leads to the gateway only",
    },
    KeyRule {
        key: "output_schema",
        rule: Rule::Free,
        why: "what the child's final answer must look like; inline only: a request cannot make the coordinator read a file",
    },
    KeyRule {
        key: "model",
        rule: Rule::Free,
        why: "one of the plan's own [models] (endpoints and keys the person running it chose); a request cannot declare models",
    },
    KeyRule {
        key: "id",
        rule: Rule::Free,
        why: "becomes `<parent>/<id>`, unique in the run by construction",
    },
    KeyRule {
        key: "deps",
        rule: Rule::Free,
        why: "siblings only",
    },
    KeyRule {
        key: "run",
        rule: Rule::Free,
        why: "what it does, inside the confinement it inherits",
    },
    KeyRule {
        key: "prompt",
        rule: Rule::Free,
        why: "what it does, inside the confinement it inherits",
    },
    KeyRule {
        key: "args",
        rule: Rule::Free,
        why: "arguments of its WASM program",
    },
    KeyRule {
        key: "verify",
        rule: Rule::Free,
        why: "runs in the child's own sandbox",
    },
    KeyRule {
        key: "env",
        rule: Rule::Free,
        why: "values for its own processes, in its own sandbox; the API-key variables are never passed on whatever it says",
    },
    KeyRule {
        key: "repair_rounds",
        rule: Rule::Free,
        why: "each round counts against `max_turns` and the budget",
    },
    KeyRule {
        key: "temperature",
        rule: Rule::Free,
        why: "sampling only",
    },
    KeyRule {
        key: "sparse",
        rule: Rule::Free,
        why: "checks out less; writes are still limited to its paths",
    },
    KeyRule {
        key: "allow_overlap",
        rule: Rule::Free,
        why: "a conflict is reported and nothing is lost; it grants no access",
    },
    KeyRule {
        key: "matrix",
        rule: Rule::Free,
        why: "each combination is one child, counted against `max_children` and `max_tasks`",
    },
    KeyRule {
        key: "variants",
        rule: Rule::Refused,
        why: "experiments are planned up front",
    },
    KeyRule {
        key: "score",
        rule: Rule::Refused,
        why: "experiments are planned up front",
    },
    KeyRule {
        key: "score_timeout",
        rule: Rule::Refused,
        why: "experiments are planned up front",
    },
    KeyRule {
        key: "pick",
        rule: Rule::Refused,
        why: "experiments are planned up front",
    },
];

/// The keys a request may not set at all.
pub fn refused_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter()
        .filter(|k| k.rule == Rule::Refused)
        .map(|k| k.key)
}

/// What a task's children may be given at most: its own confinement.
#[derive(Debug, Clone)]
pub struct Ceiling {
    /// Whose ceiling it is (named in refusals).
    pub parent: String,
    pub network: NetworkMode,
    pub isolation: Isolation,
    pub memory: Option<u64>,
    pub processes: Option<u64>,
    pub timeout: Option<Duration>,
    /// When the subtree must have ended, if it must.
    pub not_after: Option<SystemTime>,
    pub retries: u32,
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
            network: parent.network,
            isolation: parent.isolation,
            memory: parent.memory,
            processes: parent.processes,
            timeout: parent.timeout,
            not_after: match (parent.not_after, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            retries: parent.retries,
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
        match fields.network {
            None => child.network = self.network,
            Some(asked) if wider_network(asked, self.network) => {
                refuse("network", network(asked), network(self.network));
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
}

/// Whether `asked` reaches further than `allowed`.
fn wider_network(asked: NetworkMode, allowed: NetworkMode) -> bool {
    matches!((asked, allowed), (NetworkMode::Full, NetworkMode::None))
}

/// A list of server names as a plan writes it: `["a", "b"]`.
fn names(list: &[String]) -> String {
    let quoted: Vec<String> = list.iter().map(|n| format!("{n:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn network(mode: NetworkMode) -> String {
    match mode {
        NetworkMode::None => "\"none\"".into(),
        NetworkMode::Full => "\"full\"".into(),
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{KEYS, Rule};
    use crate::plan::schema::TaskFields;

    /// Every key of a `[[task]]` table has a rule, and every rule a key:
    /// a new key fails here until someone decides what a subtask may ask
    /// of it.
    #[test]
    fn every_task_key_has_a_rule() {
        let schema = schemars::schema_for!(TaskFields);
        let value = serde_json::to_value(&schema).unwrap();
        let keys: BTreeSet<String> = value["properties"]
            .as_object()
            .expect("the task schema has properties")
            .keys()
            .cloned()
            .collect();
        let ruled: BTreeSet<String> = KEYS.iter().map(|k| k.key.to_string()).collect();
        let missing: Vec<&String> = keys.difference(&ruled).collect();
        assert!(
            missing.is_empty(),
            "task keys without a rule in plan::ceiling::KEYS: {missing:?}"
        );
        let stale: Vec<&String> = ruled.difference(&keys).collect();
        assert!(
            stale.is_empty(),
            "rules for keys that do not exist: {stale:?}"
        );
        assert_eq!(KEYS.len(), ruled.len(), "a key has two rules");
    }

    /// The README's table of what a subtask may ask for lists every key
    /// with its rule.
    #[test]
    fn the_readme_lists_every_rule() {
        let readme = include_str!("../../../README.md");
        for k in KEYS {
            let rule = match k.rule {
                Rule::Narrows => "may only narrow",
                Rule::Free => "free",
                Rule::Refused => "refused",
            };
            let row = format!("| `{}` | {rule} |", k.key);
            assert!(readme.contains(&row), "README lacks the row `{row}`");
        }
    }
}
