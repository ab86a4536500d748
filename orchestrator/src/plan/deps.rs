//! Dependencies: template deps replaced by their expansions, globs
//! (`"fmt-*"`) by the ids they match, every dep checked against the plan's
//! ids, and cycles found.

// A PlanError is built at most once per mistake, on the way out; its size
// costs nothing that boxing every internal return would save.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::Task;
use super::error::{PlanError, PlanErrorKind, Source, did_you_mean};

/// A task's deps as written (after matrix substitution), with their spans.
pub(super) type Written = Vec<(String, Range<usize>)>;

/// Sets each task's `deps` from `written` (every task id of the plan, in
/// plan order, with its deps as written after matrix substitution, and their
/// spans), adding an error for each dep that names no task, and for a cycle.
///
/// `tasks` are the tasks without errors of their own, in plan order. The
/// deps of the others are checked too, but a dep on one of them is not
/// reported: its own errors are.
pub(super) fn resolve(
    source: &Source,
    tasks: &mut [Task],
    written: Vec<(String, Written)>,
    templates: &HashMap<String, Vec<String>>,
    errors: &mut Vec<PlanError>,
) {
    let ids: HashSet<String> = tasks.iter().map(|t| t.id.clone()).collect();
    let seen: Vec<&String> = written.iter().map(|(id, _)| id).collect();
    let spans: HashMap<&String, &Range<usize>> = tasks.iter().map(|t| (&t.id, &t.span)).collect();
    let mut resolved: HashMap<&String, Vec<String>> = HashMap::new();
    for (id, deps_written) in &written {
        let task_span = spans.get(id).map(|s| (*s).clone());
        let mut deps = Vec::new();
        for (dep, span) in deps_written.iter().cloned() {
            if let Some(expansions) = templates.get(&dep).filter(|_| !seen.contains(&&dep)) {
                deps.extend(expansions.iter().filter(|id| ids.contains(*id)).cloned());
            } else if dep == *id {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::SelfDependency,
                            format!("task `{dep}` depends on itself"),
                            Some(span),
                            "self-dependency",
                        )
                        .with_help("remove it from its own `deps`"),
                );
            } else if let Some((of, _)) = dep
                .split_once('@')
                // Only an experiment depends on its variants.
                .filter(|(of, _)| ids.contains(&dep) && of != id)
            {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::UnknownDependency,
                            format!("task `{}` depends on variant `{dep}`", *id),
                            Some(span),
                            "a variant",
                        )
                        .with_help(format!(
                            "depend on the experiment: `{of}` gives its dependents the variant it picks"
                        )),
                );
            } else if ids.contains(&dep) {
                deps.push(dep);
            } else if seen.contains(&&dep) {
                // A task with errors of its own: those are reported.
            } else if is_glob(&dep) {
                match glob(source, &dep, span, &seen) {
                    // A task is never its own dependency through a glob
                    // (`deps = ["lint-*"]` in `lint-all`).
                    Ok(matched) => deps.extend(
                        matched
                            .into_iter()
                            // Variants are reached through their experiment.
                            .filter(|m| *m != id && ids.contains(*m) && !m.contains('@'))
                            .cloned(),
                    ),
                    Err(e) => errors.push(e),
                }
            } else {
                let close = did_you_mean(&dep, seen.iter().map(|id| id.as_str()));
                errors.push(
                    source
                        .error(
                            PlanErrorKind::UnknownDependency,
                            format!("task `{}` depends on unknown task `{dep}`", *id),
                            Some(span),
                            "no task has this id",
                        )
                        .with_help(match close {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => {
                                "every entry of `deps` must be the id of a task in this plan".into()
                            }
                        }),
                );
            }
        }
        if let Some(span) = task_span.filter(|_| deps.contains(id)) {
            errors.push(source.error(
                PlanErrorKind::SelfDependency,
                format!("task `{id}` depends on itself"),
                Some(span),
                "through its own matrix",
            ));
            deps.retain(|d| d != id);
        }
        let mut unique = HashSet::new();
        deps.retain(|d| unique.insert(d.clone()));
        resolved.insert(id, deps);
    }
    for task in tasks.iter_mut() {
        task.deps = resolved.remove(&task.id).unwrap_or_default();
    }
    if let Some(cycle) = crate::graph::find_cycle(tasks) {
        let names: Vec<&str> = cycle.iter().map(|&i| tasks[i].id.as_str()).collect();
        let first = &tasks[cycle[0]];
        errors.push(
            source
                .error(
                    PlanErrorKind::Cycle,
                    format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
                    Some(first.span.clone()),
                    "this task depends on itself through the cycle",
                )
                .with_help(
                    "remove one of these dependencies; a plan must be a directed acyclic graph",
                ),
        );
    }
}

/// True if `dep` is a glob: ids never hold `*`, `?` or `[`.
pub fn is_glob(dep: &str) -> bool {
    dep.contains(['*', '?', '['])
}

/// The ids of `ids` the glob `pattern` matches (as a glob in `deps` does:
/// `--only` and `swarm logs` take the same), variants (`id@k`) left out;
/// why not if `pattern` is not a glob.
pub fn ids_matching<'a>(
    pattern: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<&'a str>, String> {
    let matcher = globset::Glob::new(pattern)
        .map_err(|e| format!("`{pattern}` is not a glob: {}", e.kind()))?
        .compile_matcher();
    Ok(ids
        .into_iter()
        .filter(|id| !id.contains('@') && matcher.is_match(id))
        .collect())
}

/// The ids of `seen` (every id of the plan, in plan order) that the glob
/// `dep` matches; an error at `span` if it is not a glob or matches none.
fn glob<'a>(
    source: &Source,
    dep: &str,
    span: Range<usize>,
    seen: &[&'a String],
) -> Result<Vec<&'a String>, PlanError> {
    let matcher = globset::Glob::new(dep)
        .map_err(|e| {
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("invalid glob `{dep}` in `deps`: {}", e.kind()),
                    Some(span.clone()),
                    "not a glob",
                )
                .with_help("`*` matches any characters of an id, `?` one, `[abc]` one of these")
        })?
        .compile_matcher();
    let matched: Vec<&String> = seen
        .iter()
        .copied()
        .filter(|id| matcher.is_match(id.as_str()))
        .collect();
    if !matched.is_empty() {
        return Ok(matched);
    }
    // A typo is most likely in the literal part before the first wildcard:
    // compare it with the same length of every id.
    let wild = dep.find(['*', '?', '[', '{']).unwrap_or(dep.len());
    let (literal, rest) = dep.split_at(wild);
    let width = literal.chars().count();
    let prefixes: Vec<String> = seen
        .iter()
        .map(|id| id.chars().take(width).collect())
        .collect();
    let close = (!literal.is_empty())
        .then(|| did_you_mean(literal, prefixes.iter().map(String::as_str)))
        .flatten()
        .filter(|close| *close != literal);
    Err(source
        .error(
            PlanErrorKind::UnknownDependency,
            format!("`deps` glob `{dep}` matches no task"),
            Some(span),
            "matches no task id",
        )
        .with_help(match close {
            Some(close) => format!("did you mean `{close}{rest}`?"),
            None => {
                "a glob in `deps` matches task ids (after matrix expansion), e.g. \"test-*\"".into()
            }
        }))
}
