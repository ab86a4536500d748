//! Checks of what a plan means, beyond its syntax and graph: whether tasks
//! that may run side by side write the same files, whether the paths it
//! names exist at its base, whether anything checks an agent's work,
//! which entries a sharded task leaves out, and (for plans a model wrote)
//! whether it stays within the limits it was given. They run for every plan, hand-written or planned, once the base
//! commit is known: `swarm validate`, `swarm run` and the planner's own
//! rounds.
//!
//! The base is seen only through a function saying whether a path exists
//! there, so this module stays free of git.

use swarm_protocol::Isolation;

use super::{Payload, Plan, PlanError, PlanErrorKind, Task, path_within};
use crate::graph::{TaskGraph, TaskIndex};

/// Limits a planned plan must keep; a hand-written one has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// At most this many tasks.
    pub max_tasks: Option<usize>,
    /// At most this many tasks on one chain of dependencies.
    pub max_depth: Option<usize>,
    /// What two unordered tasks that may write the same files are.
    pub overlap: Overlap,
}

/// What two writing tasks that are not ordered and may write the same
/// files (neither has disjoint `paths`) are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overlap {
    /// An error: for plans a model writes (`swarm plan`, subtasks,
    /// replans), where declaring `paths` is the contract.
    #[default]
    Refuse,
    /// A warning saying what to do: for plans people write, which git
    /// merges when the changes are disjoint (a real conflict is reported
    /// and nothing is lost), and which ran before this check existed.
    Warn,
}

/// What the checks found: errors refuse the plan, warnings are shown.
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<PlanError>,
    pub warnings: Vec<PlanError>,
}

/// Most tasks an error about one task's overlaps names before "and N more".
const NAMED: usize = 3;

/// Checks `plan` against its base, where `exists(path)` says whether a
/// path (relative to the repository root) exists.
pub fn check(plan: &Plan, exists: &dyn Fn(&str) -> bool, limits: Limits) -> Findings {
    let mut found = Findings::default();
    let graph = TaskGraph::new(&plan.tasks);
    let ancestors = Ancestry::new(&graph);
    limits_check(plan, &graph, limits, &mut found);
    paths_exist(plan, &ancestors, exists, &mut found);
    overlaps(plan, &ancestors, limits.overlap, &mut found);
    unchecked(plan, &mut found);
    phase_rights(plan, &mut found);
    entries_left_out(plan, &mut found);
    affects_unmatched(plan, &mut found);
    found
}

/// Rules of a sharded task's `affects` with an entry glob that matches
/// none of its entries: not followed (a change to their paths runs every
/// entry), said once per task so that a typo is mended.
fn affects_unmatched(plan: &Plan, found: &mut Findings) {
    use super::shards::Sharding;
    for task in &plan.tasks {
        let (id, rules) = match task.sharding.as_deref() {
            Some(Sharding::Unsplit { affects, .. }) => (task.id.as_str(), affects.as_slice()),
            Some(Sharding::Shard {
                of,
                number: 1,
                affected: Some(affected),
                ..
            }) => (of.as_str(), affected.affects.as_slice()),
            _ => continue,
        };
        for rule in rules.iter().filter(|r| !r.unmatched.is_empty()) {
            let globs: Vec<String> = rule.unmatched.iter().map(|g| format!("`{g}`")).collect();
            found.warnings.push(
                plan.source
                    .error(
                        PlanErrorKind::BadValue,
                        format!(
                            "`affects` of task `{id}`: {} match{} none of its entries, so a change to `{}` runs every entry",
                            globs.join(", "),
                            if globs.len() == 1 { "es" } else { "" },
                            rule.changes
                        ),
                        Some(task.span.clone()),
                        "this task",
                    )
                    .with_help("name entries as its matrix gives them, or remove the glob if those tests are gone"),
            );
        }
    }
}

/// Entries a sharded task leaves out (`shards::unlistable`), said once per
/// task, whether or not the run split it yet.
fn entries_left_out(plan: &Plan, found: &mut Findings) {
    use super::shards::Sharding;
    for task in &plan.tasks {
        let (id, left_out) = match task.sharding.as_deref() {
            Some(Sharding::Unsplit { left_out, .. }) => (task.id.as_str(), left_out),
            Some(Sharding::Shard {
                of,
                number: 1,
                left_out,
                ..
            }) => (of.as_str(), left_out),
            _ => continue,
        };
        if left_out.is_empty() {
            continue;
        }
        let mut named: Vec<String> = left_out
            .iter()
            .take(NAMED)
            .map(|e| {
                // Line and paragraph separators too: they are why it is
                // left out.
                let shown = crate::escape::line(e)
                    .replace('\u{2028}', "\\u{2028}")
                    .replace('\u{2029}', "\\u{2029}");
                format!("`{shown}`")
            })
            .collect();
        if left_out.len() > NAMED {
            named.push(format!("and {} more", left_out.len() - NAMED));
        }
        found.warnings.push(
            plan.source
                .error(
                    PlanErrorKind::BadValue,
                    format!(
                        "sharded task `{id}` leaves out {} entr{} holding a line break or another control character, which would be more than one line of `$SWARM_ENTRIES`: {}",
                        left_out.len(),
                        if left_out.len() == 1 { "y" } else { "ies" },
                        named.join(", ")
                    ),
                    Some(task.span.clone()),
                    "this task",
                )
                .with_help("rename them to run them; its other entries run"),
        );
    }
}

/// Which tasks a task depends on, directly or not, worked out for a task
/// only when a check asks (a bit set per task asked about, and per task it
/// depends on). Made for every task up front, the sets took n² bits: 12.5
/// MB and most of the plan check's time for 10,000 tasks, of which most
/// plans ask about few (only writers whose paths overlap, and tasks whose
/// paths do not exist yet).
struct Ancestry<'g> {
    graph: &'g TaskGraph,
    sets: std::cell::RefCell<Vec<Option<std::rc::Rc<Vec<u64>>>>>,
}

impl<'g> Ancestry<'g> {
    fn new(graph: &'g TaskGraph) -> Self {
        Self {
            graph,
            sets: std::cell::RefCell::new(vec![None; graph.len()]),
        }
    }

    /// Whether `of` depends on `task`, directly or not.
    fn is_ancestor(&self, task: usize, of: usize) -> bool {
        if let Some(Some(set)) = self.sets.borrow().get(of) {
            return Self::has(set, task);
        }
        Self::has(&self.set(of), task)
    }

    fn has(set: &[u64], task: usize) -> bool {
        set.get(task / 64)
            .is_some_and(|w| w & (1 << (task % 64)) != 0)
    }

    /// `of`'s ancestors: the union of its dependencies' sets and the
    /// dependencies themselves, each set made once (in post-order, without
    /// recursion: a chain may be 10,000 tasks deep).
    fn set(&self, of: usize) -> std::rc::Rc<Vec<u64>> {
        let cached = |t: usize| self.sets.borrow().get(t).cloned().flatten();
        if let Some(set) = cached(of) {
            return set;
        }
        let words = self.graph.len().div_ceil(64);
        let mut stack: Vec<(usize, bool)> = vec![(of, false)];
        while let Some((t, deps_made)) = stack.pop() {
            if cached(t).is_some() {
                continue;
            }
            let deps = || self.graph.deps(TaskIndex::new(t)).map(TaskIndex::get);
            if !deps_made {
                stack.push((t, true));
                stack.extend(deps().filter(|&d| cached(d).is_none()).map(|d| (d, false)));
                continue;
            }
            let mut set = vec![0u64; words];
            for dep in deps() {
                if let Some(theirs) = cached(dep) {
                    for (w, x) in set.iter_mut().zip(theirs.iter()) {
                        *w |= x;
                    }
                }
                if let Some(w) = set.get_mut(dep / 64) {
                    *w |= 1 << (dep % 64);
                }
            }
            if let Some(slot) = self.sets.borrow_mut().get_mut(t) {
                *slot = Some(std::rc::Rc::new(set));
            }
        }
        cached(of).unwrap_or_default()
    }
}

fn limits_check(plan: &Plan, graph: &TaskGraph, limits: Limits, found: &mut Findings) {
    if let Some(max) = limits.max_tasks
        && plan.tasks.len() > max
    {
        found.errors.push(
            PlanError::plain(
                PlanErrorKind::BadValue,
                format!(
                    "the plan has {} tasks, more than the {max} allowed",
                    plan.tasks.len()
                ),
            )
            .with_help("merge related tasks into one, or raise --max-tasks"),
        );
    }
    if let Some(max) = limits.max_depth {
        let deepest = TaskIndex::all(graph.len()).max_by_key(|&i| graph.critical_path(i));
        if let Some(i) = deepest
            && graph.critical_path(i) > max
        {
            let task = &plan.tasks[i.get()];
            found.errors.push(
                plan.source
                    .error(
                        PlanErrorKind::BadValue,
                        format!(
                            "a chain of {} dependent tasks starts at `{}`, longer than the {max} allowed",
                            graph.critical_path(i),
                            task.id
                        ),
                        Some(task.span.clone()),
                        "the chain starts here",
                    )
                    .with_help("let tasks that do not need each other's work run side by side (fewer `deps`), or merge steps of the chain"),
            );
        }
    }
}

/// Every `paths` entry exists at the base or is created by a task this one
/// depends on; a `creates` entry that already exists is only worth a
/// warning (the task may still write it).
fn paths_exist(
    plan: &Plan,
    ancestors: &Ancestry<'_>,
    exists: &dyn Fn(&str) -> bool,
    found: &mut Findings,
) {
    // A variant's paths are its experiment's, checked there.
    for (i, task) in plan.tasks.iter().enumerate() {
        if task.variant().is_some() {
            continue;
        }
        for path in &task.paths {
            if exists(path) {
                continue;
            }
            let created_before = plan.tasks.iter().enumerate().any(|(j, other)| {
                other
                    .creates
                    .iter()
                    .any(|c| path_within(path, c) || path_within(c, path))
                    && ancestors.is_ancestor(j, i)
            });
            let created_here = task.creates.iter().any(|c| path_within(path, c));
            if created_before || created_here {
                continue;
            }
            found.errors.push(
                plan.source
                    .error(
                        PlanErrorKind::BadValue,
                        format!(
                            "path `{path}` of task `{}` does not exist at the base ({})",
                            task.id, plan.base
                        ),
                        Some(task.span.clone()),
                        "in this task",
                    )
                    .with_help(format!(
                        "fix the path, or if the task makes it, move it to `creates = [\"{path}\"]`"
                    )),
            );
        }
        for path in &task.creates {
            if exists(path) {
                found.warnings.push(
                    plan.source
                        .error(
                            PlanErrorKind::BadValue,
                            format!(
                                "`creates` entry `{path}` of task `{}` already exists at the base ({})",
                                task.id, plan.base
                            ),
                            Some(task.span.clone()),
                            "in this task",
                        )
                        .with_help(format!("list it in `paths` instead: `paths = [\"{path}\"]`")),
                );
            }
        }
    }
}

/// Two writing tasks that may run at the same time (neither depends on the
/// other) and may write the same path: their results would likely
/// conflict. One error per task, naming the tasks it overlaps.
fn overlaps(plan: &Plan, ancestors: &Ancestry<'_>, mode: Overlap, found: &mut Findings) {
    // An experiment stands for its variants: they all write the same
    // paths, and only one of them is merged.
    // A task with `allow_overlap` clashes with nothing.
    let writers: Vec<usize> = (0..plan.tasks.len())
        .filter(|&i| {
            let task = &plan.tasks[i];
            task.isolation == Isolation::Worktree && task.variant().is_none() && !task.allow_overlap
        })
        .collect();
    // Each task's writable paths, once.
    let owned: Vec<Option<Vec<&str>>> = plan.tasks.iter().map(Task::owned).collect();
    for (k, &i) in writers.iter().enumerate() {
        let a = &plan.tasks[i];
        let mut clashes: Vec<(usize, Why<'_>)> = Vec::new();
        // Task i's ancestors, once it has a pair that would clash.
        let mut mine: Option<std::rc::Rc<Vec<u64>>> = None;
        for &j in &writers[k + 1..] {
            // Ordered tasks may write the same path; asked only of pairs
            // that would clash, so that most tasks' ancestry is never
            // worked out.
            if let Some(why) = overlap(&owned[i], &owned[j]) {
                let mine = mine.get_or_insert_with(|| ancestors.set(i));
                if !Ancestry::has(mine, j) && !ancestors.is_ancestor(i, j) {
                    clashes.push((j, why));
                }
            }
        }
        let Some((first, why)) = clashes.first() else {
            continue;
        };
        let b = &plan.tasks[*first];
        let (line, _) = plan.source.line_col(b.span.start);
        let more = match clashes.len() {
            1 => String::new(),
            n if n <= NAMED => format!(
                " (also {})",
                clashes[1..]
                    .iter()
                    .map(|(j, _)| format!("`{}`", plan.tasks[*j].id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            n => format!(
                " (also {} and {} more)",
                clashes[1..NAMED]
                    .iter()
                    .map(|(j, _)| format!("`{}`", plan.tasks[*j].id))
                    .collect::<Vec<_>>()
                    .join(", "),
                n - NAMED
            ),
        };
        let (list, consequence) = match mode {
            Overlap::Refuse => (&mut found.errors, "they will conflict"),
            Overlap::Warn => (
                &mut found.warnings,
                "if their changes touch the same lines they will conflict when merged (swarm then reports it and keeps both results)",
            ),
        };
        let readonly = match (&owned[i], &owned[*first]) {
            (None, _) | (_, None) => {
                "; a task that writes nothing can say so with `isolation = \"readonly\"`"
            }
            _ => "",
        };
        list.push(
            plan.source
                .error(
                    PlanErrorKind::Overlap,
                    format!(
                        "tasks `{}` and `{}` (line {line}) may both write {why}, and neither depends on the other{more}: {consequence}",
                        a.id, b.id
                    ),
                    Some(a.span.clone()),
                    "this task",
                )
                .with_help(format!(
                    "declare what each writes with disjoint `paths`, or add a dependency (`deps = [\"{}\"]` on `{}`){readonly}; if their changes cannot collide, set `allow_overlap = true` on one of them (or in [defaults])",
                    a.id, b.id
                )),
        );
    }
}

/// What two tasks may both write (said only when they clash: a plan of
/// 10,000 writers without `paths` asks about 50 million pairs).
#[derive(Clone, Copy)]
enum Why<'a> {
    Anything,
    Anywhere,
    Path(&'a str),
}

impl std::fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Anything => f.write_str("anything (neither has `paths`)"),
            Why::Anywhere => {
                f.write_str("the same files (one of them has no `paths`, so it may write anywhere)")
            }
            Why::Path(path) => write!(f, "`{path}`"),
        }
    }
}

/// What two tasks may both write, or `None` if nothing.
fn overlap<'a>(a: &Option<Vec<&'a str>>, b: &Option<Vec<&'a str>>) -> Option<Why<'a>> {
    match (a, b) {
        (None, None) => Some(Why::Anything),
        (None, Some(_)) | (Some(_), None) => Some(Why::Anywhere),
        (Some(a), Some(b)) => a.iter().find_map(|&p| {
            b.iter().find_map(|&q| {
                if path_within(p, q) {
                    Some(Why::Path(p))
                } else if path_within(q, p) {
                    Some(Why::Path(q))
                } else {
                    None
                }
            })
        }),
    }
}

/// Agent work that nothing checks.
fn unchecked(plan: &Plan, found: &mut Findings) {
    for task in plan.tasks.iter().filter(|t| t.variant().is_none()) {
        match &task.payload {
            Payload::Agent(_) if task.verify.is_none() => {
                let (message, help) = if task.isolation == Isolation::Readonly {
                    (
                        format!(
                            "agent task `{}` has no effect: it is read-only and has no `verify`",
                            task.id
                        ),
                        "give it a `verify` command whose exit status is the answer, or let it write (remove `isolation = \"readonly\"`)",
                    )
                } else {
                    (
                        format!(
                            "agent task `{}` has no `verify`: nothing checks its work before it is merged",
                            task.id
                        ),
                        "add `verify = \"...\"` (a test command) to the task, or to [defaults] for every task",
                    )
                };
                found.warnings.push(
                    plan.source
                        .error(
                            PlanErrorKind::BadValue,
                            message,
                            Some(task.span.clone()),
                            "this task",
                        )
                        .with_help(help),
                );
            }
            Payload::Agent(_) | Payload::Command { .. } | Payload::Wasm(_) => {}
        }
    }
}

/// Most tasks a warning about `[setup]`'s or `[cleanup]`'s rights names.
const NAMED_RIGHTS: usize = 5;

/// `[cleanup]` and `[setup]` asking for more than a task has where they
/// run the task's files: cleanup runs in every task's worktree after the
/// task (`make clean` runs the task's Makefile), so it gets no more than
/// the task; a setup without `key` in the worktree of a task that starts
/// from its dependencies' results runs their files, so it gets the task's
/// rights there. Both run; the warning says with what.
fn phase_rights(plan: &Plan, found: &mut Findings) {
    let writers = || {
        plan.tasks
            .iter()
            .filter(|t| t.isolation == Isolation::Worktree && t.experiment().is_none())
    };
    // "task `a` has", "tasks `a`, `b` have": the names, and whether many.
    let named = |tasks: &[&str]| {
        let shown: Vec<String> = tasks
            .iter()
            .take(NAMED_RIGHTS)
            .map(|t| format!("`{t}`"))
            .collect();
        let list = match tasks.len().saturating_sub(NAMED_RIGHTS) {
            0 => shown.join(", "),
            more => format!("{} and {more} more", shown.join(", ")),
        };
        match tasks.len() {
            1 => (format!("task {list}"), false),
            _ => (format!("tasks {list}"), true),
        }
    };
    if let Some(cleanup) = &plan.cleanup {
        let narrower: Vec<&str> = writers()
            .filter(|t| cleanup.network.wider_than(&t.network))
            .map(|t| t.id.as_str())
            .collect();
        if !narrower.is_empty() {
            found.warnings.push(
                plan.source
                    .error(
                        PlanErrorKind::BadValue,
                        {
                            let (who, many) = named(&narrower);
                            format!(
                                "`[cleanup]` asks for network {}, more than {who} {}: it runs there with the task's own",
                                cleanup.network,
                                if many { "have" } else { "has" },
                            )
                        },
                        Some(cleanup.span.clone()),
                        "runs with each task's own network",
                    )
                    .with_help("cleanup runs in a task's worktree, with whatever the task made of its files, so it never gets more than the task: give the task the network cleanup needs, or do the networked part in [setup]"),
            );
        }
    }
    // A variant's score runs in the variant's worktree: without `paths`
    // the variant may rewrite the scorer's own files (its result check
    // refuses changes outside `paths`, which makes such a variant
    // ineligible).
    let unguarded: Vec<&str> = plan
        .tasks
        .iter()
        .filter(|t| t.experiment().is_some())
        .filter(|t| {
            plan.tasks.iter().any(|v| {
                v.variant()
                    .is_some_and(|var| var.of == t.id && var.score.is_some())
                    && v.owned().is_none()
            })
        })
        .map(|t| t.id.as_str())
        .collect();
    for id in unguarded {
        let Some(task) = plan.tasks.iter().find(|t| t.id == id) else {
            continue;
        };
        found.warnings.push(
            plan.source
                .error(
                    PlanErrorKind::BadValue,
                    format!(
                        "the variants of `{id}` may change any file, the files `score` runs included: a variant could score itself"
                    ),
                    Some(task.span.clone()),
                    "no `paths`",
                )
                .with_help("give the task `paths` (and `creates`) for what its variants may change: a variant that changes anything else, its scorer included, is not eligible"),
        );
    }
    if let Some(setup) = plan.setup.as_ref().filter(|s| s.key.is_empty()) {
        let on_results: Vec<&str> = writers()
            .filter(|t| t.setup && !t.deps.is_empty())
            .filter(|t| {
                setup.network.wider_than(&t.network)
                    || setup.env.iter().any(|(k, v)| t.env.get(k) != Some(v))
            })
            .map(|t| t.id.as_str())
            .collect();
        if !on_results.is_empty() {
            found.warnings.push(
                plan.source
                    .error(
                        PlanErrorKind::BadValue,
                        {
                            let (who, many) = named(&on_results);
                            format!(
                                "`[setup]` asks for network {} or variables that {who} {}, and {} from {} dependencies' results: setup runs there with the task's own",
                                setup.network,
                                if many { "do not have" } else { "does not have" },
                                if many { "they start" } else { "it starts" },
                                if many { "their" } else { "its" },
                            )
                        },
                        Some(setup.span.clone()),
                        "runs with the task's network there",
                    )
                    .with_help("setup runs its own network and variables only in a checkout of the run's base, which no task wrote; give [setup] a `key` (the files its work depends on, e.g. key = [\"package-lock.json\"]) and those tasks copy the setup made at the base"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn findings(text: &str, at_base: &[&str], limits: Limits) -> Findings {
        let plan = crate::plan::parse(Path::new("plan.toml"), text.to_string()).unwrap();
        let exists = |p: &str| at_base.iter().any(|b| path_within(b, p));
        check(&plan, &exists, limits)
    }

    fn messages(errors: &[PlanError]) -> Vec<String> {
        errors.iter().map(|e| e.message.clone()).collect()
    }

    #[test]
    fn phases_asking_for_more_than_the_tasks_whose_files_they_run_warn() {
        let text = "[setup]\nrun = \"npm ci\"\nnetwork = \"full\"\n\n\
                    [cleanup]\nrun = \"make clean\"\nnetwork = [\"example.com\"]\n\n\
                    [[task]]\nid = \"a\"\nrun = \"x\"\npaths = [\"a\"]\n\n\
                    [[task]]\nid = \"b\"\ndeps = [\"a\"]\nrun = \"x\"\npaths = [\"b\"]\n\n\
                    [[task]]\nid = \"n\"\nnetwork = [\"example.com\"]\nrun = \"x\"\npaths = [\"n\"]\n\n\
                    [[task]]\nid = \"v\"\nvariants = 2\nscore = \"cat s\"\npick = \"max\"\nrun = \"x\"\n";
        let f = findings(text, &["a", "b", "n"], Limits::default());
        let warned = messages(&f.warnings);
        insta::assert_debug_snapshot!(warned, @r#"
        [
            "`[cleanup]` asks for network [\"example.com\"], more than tasks `a`, `b`, `v@1`, `v@2` have: it runs there with the task's own",
            "the variants of `v` may change any file, the files `score` runs included: a variant could score itself",
            "`[setup]` asks for network \"full\" or variables that task `b` does not have, and it starts from its dependencies' results: setup runs there with the task's own",
        ]
        "#);
        // With a key, a dependent copies the setup of the base: no warning
        // about it; a variant with `paths` cannot rewrite its scorer.
        let keyed = text
            .replace(
                "network = \"full\"\n",
                "network = \"full\"\nkey = [\"package-lock.json\"]\n",
            )
            .replace("variants = 2\n", "variants = 2\ncreates = [\"out\"]\n");
        let f = findings(&keyed, &["a", "b", "n"], Limits::default());
        assert_eq!(
            messages(&f.warnings).len(),
            1,
            "{:?}",
            messages(&f.warnings)
        );
    }

    #[test]
    fn unordered_writers_with_overlapping_paths_are_an_error() {
        let f = findings(
            "[[task]]\nid = \"a\"\nrun = \"x\"\npaths = [\"src\"]\n\n[[task]]\nid = \"b\"\nrun = \"x\"\npaths = [\"src/b.rs\"]\n",
            &["src/b.rs"],
            Limits::default(),
        );
        assert_eq!(f.errors.len(), 1, "{:?}", messages(&f.errors));
        insta::assert_snapshot!(f.errors[0].message, @"tasks `a` and `b` (line 7) may both write `src/b.rs`, and neither depends on the other: they will conflict");
        assert_eq!(f.errors[0].kind, PlanErrorKind::Overlap);
    }

    #[test]
    fn overlapping_writers_of_a_persons_plan_are_a_warning() {
        let text = "[[task]]\nid = \"a\"\nrun = \"x\"\n\n[[task]]\nid = \"b\"\nrun = \"x\"\n";
        let warn = Limits {
            overlap: Overlap::Warn,
            ..Limits::default()
        };
        let f = findings(text, &[], warn);
        assert!(f.errors.is_empty(), "{:?}", messages(&f.errors));
        assert_eq!(f.warnings.len(), 1);
        assert_eq!(f.warnings[0].kind, PlanErrorKind::Overlap);
        let refuse = findings(text, &[], Limits::default());
        assert_eq!(refuse.errors.len(), 1);
    }

    #[test]
    fn ordered_disjoint_readonly_or_allowed_tasks_pass() {
        let ordered = "[[task]]\nid = \"a\"\nrun = \"x\"\n\n[[task]]\nid = \"b\"\nrun = \"x\"\ndeps = [\"a\"]\n";
        assert!(findings(ordered, &[], Limits::default()).errors.is_empty());
        let disjoint = "[[task]]\nid = \"a\"\nrun = \"x\"\npaths = [\"src/a\"]\n\n[[task]]\nid = \"b\"\nrun = \"x\"\npaths = [\"src/ab\"]\n";
        assert!(
            findings(disjoint, &["src/a/x", "src/ab/y"], Limits::default())
                .errors
                .is_empty()
        );
        let readonly = "[[task]]\nid = \"a\"\nrun = \"x\"\nisolation = \"readonly\"\n\n[[task]]\nid = \"b\"\nrun = \"x\"\n";
        assert!(findings(readonly, &[], Limits::default()).errors.is_empty());
        let allowed = "[defaults]\nallow_overlap = true\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n\n[[task]]\nid = \"b\"\nrun = \"x\"\n";
        assert!(findings(allowed, &[], Limits::default()).errors.is_empty());
        // Ordered through a third task.
        let transitive = "[[task]]\nid = \"a\"\nrun = \"x\"\n\n[[task]]\nid = \"m\"\nrun = \"x\"\ndeps = [\"a\"]\nisolation = \"readonly\"\n\n[[task]]\nid = \"b\"\nrun = \"x\"\ndeps = [\"m\"]\n";
        assert!(
            findings(transitive, &[], Limits::default())
                .errors
                .is_empty()
        );
    }

    #[test]
    fn a_task_without_paths_overlaps_every_unordered_writer_in_one_error() {
        let mut text = String::from("[[task]]\nid = \"all\"\nrun = \"x\"\n");
        for i in 0..5 {
            text.push_str(&format!(
                "\n[[task]]\nid = \"t{i}\"\nrun = \"x\"\npaths = [\"p{i}\"]\n"
            ));
        }
        let at_base: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
        let at_base: Vec<&str> = at_base.iter().map(String::as_str).collect();
        let f = findings(&text, &at_base, Limits::default());
        assert_eq!(f.errors.len(), 1, "{:?}", messages(&f.errors));
        insta::assert_snapshot!(f.errors[0].message, @"tasks `all` and `t0` (line 6) may both write the same files (one of them has no `paths`, so it may write anywhere), and neither depends on the other (also `t1`, `t2` and 2 more): they will conflict");
    }

    #[test]
    fn missing_paths_need_creates_here_or_in_a_dependency() {
        let text = "[[task]]\nid = \"a\"\nrun = \"x\"\npaths = [\"src/old.rs\"]\ncreates = [\"src/new\"]\n\n[[task]]\nid = \"b\"\nrun = \"x\"\ndeps = [\"a\"]\npaths = [\"src/new/mod.rs\"]\n\n[[task]]\nid = \"c\"\nrun = \"x\"\ndeps = [\"b\"]\npaths = [\"docs/missing.md\"]\n";
        let f = findings(text, &["src/old.rs"], Limits::default());
        assert_eq!(messages(&f.errors).len(), 1, "{:?}", messages(&f.errors));
        let e = &f.errors[0];
        insta::assert_snapshot!(
            format!("{}\nhelp: {}", e.message, e.help.as_deref().unwrap_or_default()),
            @r#"
        path `docs/missing.md` of task `c` does not exist at the base (HEAD)
        help: fix the path, or if the task makes it, move it to `creates = ["docs/missing.md"]`
        "#
        );
        // A `creates` that exists is a warning.
        let f = findings(
            "[[task]]\nid = \"a\"\nrun = \"x\"\ncreates = [\"src\"]\n",
            &["src/x.rs"],
            Limits::default(),
        );
        assert!(f.errors.is_empty());
        assert_eq!(f.warnings.len(), 1);
    }

    #[test]
    fn agents_without_verify_warn_and_limits_are_errors() {
        let text = "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n[[task]]\nid = \"a\"\nprompt = \"do\"\n\n[[task]]\nid = \"b\"\nprompt = \"look\"\nisolation = \"readonly\"\ndeps = [\"a\"]\n\n[[task]]\nid = \"c\"\nrun = \"x\"\ndeps = [\"b\"]\n";
        let f = findings(
            text,
            &[],
            Limits {
                max_tasks: Some(2),
                max_depth: Some(2),
                ..Limits::default()
            },
        );
        let warnings = messages(&f.warnings);
        insta::assert_snapshot!(warnings.join("\n"), @"
        agent task `a` has no `verify`: nothing checks its work before it is merged
        agent task `b` has no effect: it is read-only and has no `verify`
        ");
        let errors = messages(&f.errors);
        insta::assert_snapshot!(errors.join("\n"), @"
        the plan has 3 tasks, more than the 2 allowed
        a chain of 3 dependent tasks starts at `a`, longer than the 2 allowed
        ");
        let f = findings(
            &text.replace(
                "[[task]]\nid = \"a\"",
                "[defaults]\nverify = \"true\"\n\n[[task]]\nid = \"a\"",
            ),
            &[],
            Limits::default(),
        );
        assert!(f.warnings.is_empty(), "{:?}", messages(&f.warnings));
    }

    #[test]
    fn a_sharded_entry_with_a_line_break_is_left_out_and_said_split_or_not() {
        let text = "[[task]]\nid = \"t\"\nrun = \"xargs -a $SWARM_ENTRIES ls\"\nshards = 2\n\
                    matrix = { f = [\"a.py\", \"b\\nc.py\", \"d\\u2028e\", \"tab\\t.py\", \"g.py\"] }\n";
        let mut plan = crate::plan::parse(Path::new("plan.toml"), text.to_string()).unwrap();
        let Some(crate::plan::shards::Sharding::Unsplit { entries, .. }) =
            plan.tasks[0].sharding.as_deref()
        else {
            panic!("not sharded: {:?}", plan.tasks[0].sharding)
        };
        assert_eq!(entries, &["a.py", "tab\t.py", "g.py"]);
        let said = |plan: &Plan| messages(&check(plan, &|_| true, Limits::default()).warnings);
        let warned = said(&plan);
        assert_eq!(warned.len(), 1, "{warned:?}");
        insta::assert_snapshot!(warned[0], @r"sharded task `t` leaves out 2 entries holding a line break or another control character, which would be more than one line of `$SWARM_ENTRIES`: `b\nc.py`, `d\u{2028}e`");
        // Split, its first shard says it (once).
        let groups = vec![(
            "t".to_string(),
            vec![
                vec!["a.py".to_string()],
                vec!["tab\t.py".into(), "g.py".into()],
            ],
        )];
        crate::plan::shards::split(&mut plan, &groups).unwrap();
        assert_eq!(said(&plan), warned);

        // None left: refused.
        let none = "[[task]]\nid = \"t\"\nrun = \"true\"\nshards = 2\n\
                    matrix = { f = [\"b\\nc.py\", \"x\\ry\"] }\n";
        let err = crate::plan::parse(Path::new("plan.toml"), none.to_string()).unwrap_err();
        let all: Vec<String> = err.all().map(|e| e.message.clone()).collect();
        insta::assert_snapshot!(all.join("\n"), @"every entry of sharded task `t` (its matrix key `f`) holds a line break or another control character, so none can be one line of `$SWARM_ENTRIES`");
    }
}
