//! Subtask requests of running tasks: an agent's `spawn_subtasks` tool
//! call, or the request file a command leaves at `$SWARM_SUBTASKS`.
//!
//! A request is checked the moment it comes, exactly as a plan is
//! (`plan::subtasks::resolve`), and against the run's limits (`max_depth`,
//! `max_children`, `max_tasks`), so that an agent gets every error back
//! while it can still fix its request; nothing is ever cut short to fit
//! a limit. What an attempt asked for is kept here until the attempt
//! ends: the dispatcher takes it when the task succeeds (and the children
//! join the run), and a failed attempt's requests are dropped with it.
//! Accepted requests count against `max_tasks` from the moment they are
//! accepted, so two tasks cannot each be promised the last free places.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::plan::subtasks::{self, Inherited, Limits};
use crate::plan::{Plan, Source, Task};

/// The name of the request file in a task's private tmp directory, which
/// `$SWARM_SUBTASKS` names.
pub(crate) const REQUEST_FILE: &str = "subtasks.toml";

/// The variable naming a command's request file.
pub(crate) const REQUEST_VAR: &str = "SWARM_SUBTASKS";

/// What one task's running attempt asked for, checked.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    /// Every `[[task]]` table accepted so far, as one request.
    pub request: String,
    /// The children it makes, with full ids.
    pub tasks: Vec<Task>,
    /// When they must have ended (journaled, so that a resumed run keeps
    /// it).
    pub deadline: Option<SystemTime>,
}

/// The run's subtask requests and limits.
#[derive(Debug)]
pub(crate) struct Spawner {
    plan: Plan,
    /// The WASM modules the plan's own tasks run: all a subtask may run.
    modules: Vec<std::path::PathBuf>,
    limits: Limits,
    /// Why no request can be taken here (a cluster node, which cannot
    /// hand children to the coordinator).
    disabled: Option<String>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Tasks of the run: the plan's and those spawned.
    total: usize,
    /// Accepted requests of running attempts, by task id.
    pending: HashMap<String, Accepted>,
    /// When each running attempt started (its children's deadline counts
    /// from there), by task id.
    started: HashMap<String, SystemTime>,
}

impl Spawner {
    /// The spawner of `plan`'s run, which has `total` tasks now (more than
    /// the plan's when resumed after subtasks were spawned).
    pub(crate) fn new(plan: &Plan, total: usize) -> Self {
        // A checked plan has a task; none here means its tasks were taken
        // out first, and subtasks would be allowed no WASM module.
        debug_assert!(!plan.tasks.is_empty(), "the spawner needs the plan's tasks");
        Self {
            plan: plan.without_tasks(),
            modules: crate::plan::ceiling::modules(&plan.tasks),
            limits: plan.subtask_limits,
            disabled: None,
            state: Mutex::new(State {
                total,
                pending: HashMap::new(),
                started: HashMap::new(),
            }),
        }
    }

    /// A spawner that refuses every request, saying `why`.
    pub(crate) fn disabled(plan: &Plan, why: &str) -> Self {
        Self {
            disabled: Some(why.to_string()),
            ..Self::new(plan, plan.tasks.len())
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Levels of subtasks the run allows below a plan's task.
    pub(crate) fn max_depth(&self) -> usize {
        self.limits.max_depth as usize
    }

    /// A new attempt of `task` starts (at `started`, for an attempt that
    /// runs; `None` for a replan's new round, whose fix gets no deadline
    /// beyond the failed task's own): what an earlier one asked for is
    /// void.
    pub(crate) fn reset(&self, task: &str, started: Option<SystemTime>) {
        let mut state = self.state();
        state.pending.remove(task);
        match started {
            Some(at) => state.started.insert(task.to_string(), at),
            None => state.started.remove(task),
        };
    }

    /// `task` ended for good (its last attempt is over): nothing of it
    /// can ask for children any more, so when it started is forgotten
    /// (kept, it grew by one entry per task of the run).
    pub(crate) fn ended(&self, task: &str) {
        self.state().started.remove(task);
    }

    /// What `parent`'s running attempt passes on to its children.
    fn inherited(&self, parent: &Task) -> Inherited {
        let started = self.state().started.get(&parent.id).copied();
        Inherited {
            modules: self.modules.clone(),
            deadline: started.zip(parent.timeout).map(|(at, t)| at + t),
        }
    }

    /// Checks `request` (`[[task]]` tables, read from `name`) of `parent`,
    /// where `exists` says whether a path exists where the children start,
    /// adding it to what the attempt asked for before. The ids it adds, or
    /// every problem found, one line each.
    pub(crate) fn request(
        &self,
        parent: &Task,
        name: &str,
        request: &str,
        exists: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>, Vec<String>> {
        if let Some(why) = &self.disabled {
            return Err(vec![format!("refused: {why}")]);
        }
        let depth = subtasks::depth(&parent.id) + 1;
        if depth > self.limits.max_depth as usize {
            return Err(vec![match self.limits.max_depth {
                0 => "refused: subtasks are turned off for this run (`max_depth = 0` in [swarm])"
                    .to_string(),
                max => format!(
                    "refused: `{}` is already {} level{} deep and `max_depth` is {max}: do this work in this task instead (or raise `max_depth` in [swarm])",
                    parent.id,
                    depth - 1,
                    if depth - 1 == 1 { "" } else { "s" }
                ),
            }]);
        }
        let earlier = self.state().pending.get(&parent.id).cloned();
        let combined = match &earlier {
            Some(earlier) => format!("{}\n{request}", earlier.request),
            None => request.to_string(),
        };
        // The limits first, on a count of the tables (a matrix's
        // combinations counted, not made): resolving a request of 50,000
        // tasks only to refuse it cost the coordinator hundreds of MB.
        if let Some(at_least) = count_tasks(&combined) {
            self.check_children(parent, at_least, earlier.as_ref())?;
            self.check_total(parent, at_least)?;
        }
        let source = Source::new(Path::new(name), combined.clone());
        let inherited = self.inherited(parent);
        let tasks = subtasks::resolve(&self.plan, parent, &source, exists, &inherited)
            .map_err(|e| subtasks::messages(&e, &source))?;
        self.check_children(parent, tasks.len(), earlier.as_ref())?;
        let mut state = self.state();
        Self::total_within(&state, &self.limits, parent, tasks.len())?;
        let known = earlier.map_or(0, |e| e.tasks.len());
        let added = tasks[known..].iter().map(|t| t.id.clone()).collect();
        state.pending.insert(
            parent.id.clone(),
            Accepted {
                request: combined,
                tasks,
                deadline: inherited.deadline,
            },
        );
        Ok(added)
    }

    /// Refuses `count` children of `parent` past `max_children`.
    fn check_children(
        &self,
        parent: &Task,
        count: usize,
        earlier: Option<&Accepted>,
    ) -> Result<(), Vec<String>> {
        let max_children = self.limits.max_children as usize;
        if count <= max_children {
            return Ok(());
        }
        Err(vec![format!(
            "refused: `max_children` is {max_children} and this would give `{}` {count} subtasks{}: ask for fewer, larger subtasks (or raise `max_children` in [swarm])",
            parent.id,
            match earlier {
                Some(e) => format!(" ({} asked for before)", e.tasks.len()),
                None => String::new(),
            }
        )])
    }

    /// Refuses `count` children of `parent` past `max_tasks`.
    fn check_total(&self, parent: &Task, count: usize) -> Result<(), Vec<String>> {
        Self::total_within(&self.state(), &self.limits, parent, count)
    }

    fn total_within(
        state: &State,
        limits: &Limits,
        parent: &Task,
        count: usize,
    ) -> Result<(), Vec<String>> {
        let promised: usize = state
            .pending
            .iter()
            .filter(|(id, _)| **id != parent.id)
            .map(|(_, a)| a.tasks.len())
            .sum();
        let after = state.total + promised + count;
        if after <= limits.max_tasks {
            return Ok(());
        }
        Err(vec![format!(
            "refused: `max_tasks` is {} and the run has {} task{}{}: {count} more would make {after}; ask for fewer subtasks (or raise `max_tasks` in [swarm])",
            limits.max_tasks,
            state.total,
            if state.total == 1 { "" } else { "s" },
            match promised {
                0 => String::new(),
                n => format!(" ({n} more promised to other tasks)"),
            },
        )])
    }

    /// What `task`'s attempt asked for, taken to be spawned: its children
    /// count as tasks of the run from now on.
    pub(crate) fn take(&self, task: &str) -> Option<Accepted> {
        let mut state = self.state();
        let accepted = state.pending.remove(task)?;
        state.total += accepted.tasks.len();
        Some(accepted)
    }
}

/// How many tasks `request` makes at least, counted without resolving
/// it: one per `[[task]]` table, or per combination of its `matrix` (the
/// cross product of its keys, less at most what each `exclude` entry
/// matches, plus its `include` entries). `None` when it does not parse
/// (resolving it then reports why).
pub(crate) fn count_tasks(request: &str) -> Option<usize> {
    let document: toml::Table = toml::from_str(request).ok()?;
    let Some(toml::Value::Array(tables)) = document.get("task") else {
        return Some(0);
    };
    Some(
        tables
            .iter()
            .map(|table| match table.get("matrix") {
                Some(toml::Value::Table(matrix)) => combinations(matrix),
                _ => 1,
            })
            .fold(0usize, usize::saturating_add),
    )
}

/// The fewest combinations `matrix` can make (see [`count_tasks`]).
fn combinations(matrix: &toml::Table) -> usize {
    let list = |key: &str| match matrix.get(key) {
        Some(toml::Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    let keys: Vec<(&String, &Vec<toml::Value>)> = matrix
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "include" | "exclude"))
        .filter_map(|(k, v)| v.as_array().map(|a| (k, a)))
        .collect();
    let product = match keys.is_empty() {
        // Only `include`: exactly its entries.
        true => 0,
        false => keys
            .iter()
            .map(|(_, values)| values.len())
            .fold(1usize, usize::saturating_mul),
    };
    // An exclude entry fixes some keys: it matches at most the product of
    // the others' lengths (none if a value it names is not in the list).
    let excluded = list("exclude")
        .iter()
        .filter_map(toml::Value::as_table)
        .map(|entry| {
            keys.iter()
                .map(|(k, values)| match entry.get(k.as_str()) {
                    // Values compare as the matrix compares them: as text.
                    Some(v) => values
                        .iter()
                        .filter(|x| scalar(x).is_some_and(|x| Some(x) == scalar(v)))
                        .count(),
                    None => values.len(),
                })
                .fold(1usize, usize::saturating_mul)
        })
        .fold(0usize, usize::saturating_add);
    product.saturating_sub(excluded) + list("include").len()
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The children of `parent` that a journaled request (`request`, accepted
/// when they were spawned, with `deadline`) makes, read again from `plan`
/// for a resumed run.
pub(crate) fn replay(
    plan: &Plan,
    parent: &Task,
    request: &str,
    deadline: Option<SystemTime>,
) -> Result<Vec<Task>, Vec<String>> {
    let source = Source::new(Path::new("journaled request"), request.to_string());
    let inherited = Inherited {
        modules: crate::plan::ceiling::modules(&plan.tasks),
        deadline,
    };
    // Paths were checked against the parent's worktree when accepted.
    subtasks::resolve(plan, parent, &source, &|_| true, &inherited)
        .map_err(|e| subtasks::messages(&e, &source))
}

/// Whether `path` exists in the worktree `workdir`, following no link on
/// the way (the task made the worktree: a link there to a host directory
/// must not let it ask root what exists outside).
pub(crate) fn exists_in(workdir: &Path) -> impl Fn(&str) -> bool + '_ {
    move |path: &str| {
        let mut real_dirs = HashMap::new();
        crate::git::scan::lstat_beneath(workdir, path.as_bytes(), &mut real_dirs)
            .is_ok_and(|found| found.is_some())
    }
}

/// Where a command of task `id` leaves its request (`$SWARM_SUBTASKS`).
pub(crate) fn request_path(run_dir: &Path, id: &str) -> PathBuf {
    crate::layout::task_tmp(run_dir, id).join(REQUEST_FILE)
}

/// An agent's request (the tool's JSON: `{"tasks": [{...}, ...]}`) as
/// `[[task]]` tables, so that it is read by the same code as a file.
pub(crate) fn json_request(input: &serde_json::Value) -> Result<String, String> {
    let tasks = input
        .get("tasks")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| "the input must be an object with a `tasks` list".to_string())?;
    let mut tables = Vec::new();
    for (n, task) in tasks.iter().enumerate() {
        let Some(fields) = task.as_object() else {
            return Err(format!("task {} of the list is not an object", n + 1));
        };
        // JSON's nulls mean "not set"; TOML has none.
        let fields: toml::Table = fields
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| Ok((k.clone(), to_toml(v)?)))
            .collect::<Result<_, String>>()?;
        tables.push(toml::Value::Table(fields));
    }
    // One document, so that a task's own tables (`env`) stay its own.
    let mut document = toml::Table::new();
    document.insert("task".into(), toml::Value::Array(tables));
    toml::to_string(&document).map_err(|e| e.to_string())
}

fn to_toml(value: &serde_json::Value) -> Result<toml::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        J::Null => return Err("null inside a value".into()),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(items.iter().map(to_toml).collect::<Result<_, _>>()?),
        J::Object(map) => toml::Value::Table(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), to_toml(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::json_request;

    #[test]
    fn tasks_are_counted_without_resolving_them() {
        use super::count_tasks;
        assert_eq!(count_tasks("[[task]]\n[[task]]\nid = 'x'\n"), Some(2));
        assert_eq!(count_tasks(&"[[task]]\n".repeat(50_000)), Some(50_000));
        let matrix = "[[task]]\nid = 't-{a}-{b}'\nmatrix = { a = [1, 2, 3], b = ['x', 'y'] }\n";
        assert_eq!(count_tasks(matrix), Some(6));
        // 250 x 200: counted, never made.
        let big = format!(
            "[[task]]\nid = 't-{{a}}-{{b}}'\nmatrix = {{ a = {:?}, b = {:?} }}\n",
            (0..250).collect::<Vec<_>>(),
            (0..200).collect::<Vec<_>>()
        );
        assert_eq!(count_tasks(&big), Some(50_000));
        // `exclude` removes at most what it matches (values compared as
        // text, as the matrix does); `include` adds its entries.
        let tuned = "[[task]]\nid = 't'\nmatrix = { a = [1, 2, 3], b = ['x', 'y'], exclude = [{ a = '1' }, { a = 2, b = 'y' }, { a = 9 }], include = [{ a = 7, b = 'z' }] }\n";
        assert_eq!(count_tasks(tuned), Some(6 - 2 - 1 + 1));
        assert_eq!(count_tasks("not toml ["), None);
        assert_eq!(count_tasks(""), Some(0));
    }

    #[test]
    fn an_agents_json_becomes_task_tables() {
        let toml = json_request(&json!({"tasks": [
            {"id": "a", "run": "make", "paths": ["src"], "verify": null},
            {"id": "b", "prompt": "Do b.", "deps": ["a"], "retries": 2, "env": {"X": "1"}}
        ]}))
        .unwrap();
        let parsed: toml::Table = toml::from_str(&toml).unwrap();
        let tasks = parsed["task"].as_array().unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0]["paths"][0].as_str(), Some("src"));
        // A null is "not set".
        assert!(tasks[0].get("verify").is_none());
        assert_eq!(tasks[1]["retries"].as_integer(), Some(2));
        assert_eq!(tasks[1]["env"]["X"].as_str(), Some("1"));
        assert!(
            json_request(&json!({"task": []}))
                .unwrap_err()
                .contains("`tasks` list")
        );
        assert!(
            json_request(&json!({"tasks": ["a"]}))
                .unwrap_err()
                .contains("not an object")
        );
    }
}
