//! Subtasks: tasks that a running task asks for (an agent's
//! `spawn_subtasks` tool, or a command's request file), read and checked
//! exactly as a plan's own tasks are: the same `[[task]]` tables, the
//! plan's `[defaults]` and `[models]` applied, the same resolution of each
//! kind, the same dependency and overlap checks. Only what is particular to
//! a tree is added here: ids are the parent's and the child's
//! (`parent/child`), dependencies name siblings, and what a child may
//! write lies inside what its parent may.
//!
//! The run-wide limits (`max_depth`, `max_children`, `max_tasks`) are
//! checked by the run, which knows how many tasks it has.

// As in expand.rs: a PlanError is built once per mistake, on the way out.
#![allow(clippy::result_large_err)]

pub use crate::ids::{SEPARATOR, child_id, depth, flat, parent_of};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Deserialize;
use toml::Spanned;

use super::ceiling::Ceiling;
use super::ctx::Ctx;
use super::error::{PlanError, PlanErrorKind, Source};
use super::expand;
use super::schema::{PlanFile, TaskFields};
use super::{Plan, Task, path_within, semantic};

pub use super::limits::{DEFAULT_MAX_CHILDREN, DEFAULT_MAX_DEPTH, DEFAULT_MAX_TASKS, Limits};

/// A request: `[[task]]` tables and nothing else.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFile {
    #[serde(default)]
    task: Vec<Spanned<TaskFields>>,
}

/// What a parent passes on to its children beyond its own fields.
#[derive(Debug, Clone, Default)]
pub struct Inherited {
    /// The WASM modules the plan's own tasks run (`ceiling::modules`).
    pub modules: Vec<PathBuf>,
    /// When the children must have ended (the parent's timeout from the
    /// start of the attempt that asked for them), if they must.
    pub deadline: Option<SystemTime>,
}

/// Reads the children `parent` asks for in `request` (`[[task]]` tables),
/// resolved against `plan` as its own tasks are, and checked as a plan is:
/// `exists` says whether a path exists where the children will start
/// (the parent's worktree). Each child is fitted under its parent's
/// capability ceiling (`ceiling`): what it leaves out it inherits, what it
/// asks for beyond is refused. Children are returned in request order with
/// their full ids (`parent/child`) and dependencies; one without `paths`
/// or `creates` gets its parent's.
pub fn resolve(
    plan: &Plan,
    parent: &Task,
    request: &Source,
    exists: &dyn Fn(&str) -> bool,
    inherited: &Inherited,
) -> Result<Vec<Task>, PlanError> {
    // The plan ran, so it parses; its defaults apply to children too.
    let plan_file = expand::parse(&plan.source)?;
    let file: RequestFile =
        toml::from_str(&request.text).map_err(|e| super::keys::toml_error(request, &e))?;
    let mut errors = refused_keys(request);
    if !errors.is_empty() {
        return Err(bundle(errors));
    }
    // What each table asked for itself, to tell a key it left out (which
    // the child inherits) from one it set (which the ceiling judges).
    let tables: Vec<(std::ops::Range<usize>, TaskFields)> = file
        .task
        .iter()
        .map(|t| (t.span(), t.get_ref().clone()))
        .collect();
    let as_plan = PlanFile {
        task: file.task,
        ..PlanFile::default()
    };
    // A request lists its matrix values: it reads nothing of the repository.
    let expanded = expand::matrix(request, &as_plan, None, &mut errors);
    let ctx = Ctx {
        source: request,
        files: &plan.files,
        on_conflict: plan_file.swarm.on_conflict,
        models: &plan.models,
        broken_models: HashSet::new(),
        agents: &plan.agents,
        mcp: &plan.mcp,
        from_request: true,
        defaults: &plan_file.defaults,
    };
    let templates = expanded.templates;
    let (mut tasks, written) = expand::resolve(&ctx, expanded.items, &mut errors);
    super::deps::resolve(request, &mut tasks, written, &templates, &mut errors);
    if !errors.is_empty() {
        return Err(bundle(errors));
    }
    let ceiling = Ceiling::of(
        parent,
        &inherited.modules,
        inherited.deadline,
        &plan_file.defaults,
    );
    for task in &mut tasks {
        // A child's id stands in its own table, after the table's header
        // and before the next one's (a matrix's children share a table).
        let Some((_, fields)) = tables
            .iter()
            .rev()
            .find(|(span, _)| span.start <= task.span.start)
        else {
            errors.push(request.error(
                PlanErrorKind::BadValue,
                format!("subtask `{}` comes from no `[[task]]` table", task.id),
                Some(task.span.clone()),
                "this subtask",
            ));
            continue;
        };
        ceiling.admit(task, fields, request, &mut errors);
        if task.paths.is_empty() && task.creates.is_empty() {
            task.paths = parent.paths.clone();
            task.creates = parent.creates.clone();
        }
        if let Some(owned) = parent.owned() {
            let outside: Vec<&String> = task
                .paths
                .iter()
                .chain(&task.creates)
                .filter(|p| !owned.iter().any(|o| path_within(p, o)))
                .collect();
            if let Some(first) = outside.first() {
                errors.push(
                    request
                        .error(
                            PlanErrorKind::BadValue,
                            format!(
                                "subtask `{}` may write `{first}`, outside what its parent `{}` may write ({})",
                                task.id,
                                parent.id,
                                owned.join(", ")
                            ),
                            Some(task.span.clone()),
                            "this subtask",
                        )
                        .with_help("a subtask's `paths` and `creates` must lie inside its parent's"),
                );
            }
        }
    }
    // The plan's own checks of what the children mean: overlaps between
    // unordered siblings, paths that do not exist where they start.
    let children = Plan {
        source: request.clone(),
        tasks: tasks.clone(),
        ..plan.clone()
    };
    let found = semantic::check(&children, exists, semantic::Limits::default());
    errors.extend(found.errors);
    if !errors.is_empty() {
        return Err(bundle(errors));
    }
    for task in &mut tasks {
        task.id = child_id(&parent.id, &task.id);
        for dep in &mut task.deps {
            *dep = child_id(&parent.id, dep);
        }
    }
    Ok(tasks)
}

fn bundle(errors: Vec<PlanError>) -> PlanError {
    PlanError::bundle(errors).unwrap_or_else(|| {
        PlanError::plain(
            PlanErrorKind::BadValue,
            "the request has errors".to_string(),
        )
    })
}

/// Each error of `error` (read from `request`) as one line, with its
/// place (`file:line:column: message (help)`), without the source
/// excerpt: what an agent gets back from its tool, and a failed task's
/// reason.
pub fn messages(error: &PlanError, request: &Source) -> Vec<String> {
    error
        .all()
        .map(|e| {
            let at = match e.span {
                Some(span) => {
                    let (line, col) = request.line_col(span.offset());
                    format!("{}:{line}:{col}: ", request.name)
                }
                None => String::new(),
            };
            match &e.help {
                Some(help) => format!("{at}{} ({help})", e.message),
                None => format!("{at}{}", e.message),
            }
        })
        .chain((error.omitted > 0).then(|| format!("... and {} more", error.omitted)))
        .collect()
}

/// An error for each key of each of `request`'s tables that a subtask may
/// not set: those `origin::rules::SUBTASK` refuses, and any key it has no
/// rule for (an allow-list: what is not decided is refused).
fn refused_keys(request: &Source) -> Vec<PlanError> {
    use super::origin::rules::{SUBTASK, Subtask};
    use toml::de::{DeTable, DeValue};
    let Ok(document) = DeTable::parse(&request.text) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    let Some(DeValue::Array(tasks)) = document.get_ref().get("task").map(|t| t.get_ref()) else {
        return errors;
    };
    for task in tasks.iter() {
        let DeValue::Table(table) = task.get_ref() else {
            continue;
        };
        for (key, value) in table.iter() {
            let key_name: &str = key.get_ref();
            let help = match SUBTASK.iter().find(|r| r.key == key_name) {
                Some(r) if r.rule != Subtask::Refused => continue,
                Some(r) => format!(
                    "{}: remove `variants`, `score`, `score_timeout` and `pick`",
                    r.why
                ),
                None => "swarm has no rule for what a subtask may ask of it, so none may".into(),
            };
            errors.push(
                request
                    .error(
                        PlanErrorKind::BadValue,
                        format!("a subtask cannot have `{key_name}`"),
                        Some(value.span()),
                        "not for subtasks",
                    )
                    .with_help(help),
            );
        }
    }
    errors
}
