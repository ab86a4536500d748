//! An integration branch that git maintenance broke (its tip, or an object
//! it needs, gone: a `git gc --prune=now` beside a swarm older than
//! `git::hold`, or one it could not stop) is made again at resume from
//! what the refs still hold: the base and every merged task's result, in
//! the order the journal merged them. What cannot be made again is said,
//! naming what is missing.

use std::collections::HashMap;

use git2::{ObjectType, Oid, Repository};
use swarm_protocol::{Event, EventBody, TaskStatus};

use super::verify::rebuild::{Remerge, rebuild};
use super::writer::merge_message;
use crate::fold::RunFold;
use crate::git::{Repo, refs};
use crate::ids::TaskIndex;
use crate::plan::Task;

/// The commit ref `name` points at, whether or not the object store has
/// it; `None` if there is no such ref.
pub(super) fn tip_of(repo: &Repo, name: &str) -> Option<Oid> {
    repo.open().ok()?.find_reference(name).ok()?.target()
}

/// Why the commit `tip` (of a branch that grew from `base`) is not whole:
/// it, a commit between it and `base` on its first-parent line, or a tree
/// or blob of its tree is missing. `None` when all are there.
pub(super) fn broken(repo: &Repo, tip: Oid, base: Oid) -> Option<String> {
    let git = match repo.open() {
        Ok(git) => git,
        Err(e) => return Some(e.to_string()),
    };
    let Ok(commit) = git.find_commit(tip) else {
        return Some(format!("its tip {tip} is missing"));
    };
    if let Some(missing) = missing_in_tree(&git, commit.tree_id()) {
        return Some(format!("{missing}, of its tip's tree, is missing"));
    }
    let mut at = commit;
    while at.id() != base {
        let Some(parent) = at.parent_ids().next() else {
            break;
        };
        match git.find_commit(parent) {
            Ok(p) => at = p,
            Err(_) => return Some(format!("commit {parent}, on its history, is missing")),
        }
    }
    None
}

/// The first object below tree `tree` (itself included) that the object
/// store lacks.
fn missing_in_tree(git: &Repository, tree: Oid) -> Option<Oid> {
    let Ok(tree) = git.find_tree(tree) else {
        return Some(tree);
    };
    let odb = git.odb().ok()?;
    for entry in tree.iter() {
        match entry.kind() {
            Some(ObjectType::Tree) => {
                if let Some(missing) = missing_in_tree(git, entry.id()) {
                    return Some(missing);
                }
            }
            Some(ObjectType::Blob) if !odb.exists(entry.id()) => return Some(entry.id()),
            _ => {}
        }
    }
    None
}

/// Makes run `run`'s integration branch again from `base` and the merged
/// tasks' results (the `task_merged` events of `events`, the last one of
/// each task whose status `fold` says is merged, in the order they came),
/// each merged (or squashed) as the run merged it, and points the branch
/// at the result. Else what cannot be made again, to follow "the branch is
/// broken, and ...".
pub(super) fn make_again(
    repo: &Repo,
    run: &str,
    base: Oid,
    events: &[Event],
    fold: &RunFold,
    tasks: &[Task],
    squash: bool,
) -> Result<Oid, String> {
    let merged_now = |id: &str| {
        fold.index(id)
            .is_some_and(|i| fold.status(i) == TaskStatus::Merged)
    };
    // The last merge of each task that is merged now, in journal order.
    let mut last: HashMap<&str, (usize, Oid, bool)> = HashMap::new();
    for (at, event) in events.iter().enumerate() {
        if let EventBody::TaskMerged {
            task,
            commit,
            resolved,
            ..
        } = &event.body
            && merged_now(task)
        {
            let commit = Oid::from_str(commit)
                .map_err(|_| format!("task `{task}`'s merged result is unreadable"))?;
            last.insert(task, (at, commit, *resolved));
        }
    }
    let mut order: Vec<(usize, &str, Oid, bool)> = last
        .into_iter()
        .map(|(task, (at, commit, resolved))| (at, task, commit, resolved))
        .collect();
    order.sort_unstable_by_key(|&(at, ..)| at);
    if let Some((_, task, ..)) = order.iter().find(|&&(.., resolved)| resolved) {
        return Err(format!(
            "task `{task}` was merged by hand (`swarm resolve`): that merge cannot be made again; restore the branch from a clone"
        ));
    }
    let lost: Vec<String> = order
        .iter()
        .filter(|&&(_, _, commit, _)| broken(repo, commit, base).is_some())
        .map(|(_, task, commit, _)| format!("`{task}` ({commit})"))
        .collect();
    if !lost.is_empty() {
        return Err(format!(
            "the results of {} are missing too",
            lost.join(", ")
        ));
    }
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut later = Vec::new();
    for &(_, task, commit, _) in &order {
        let i = *index
            .get(task)
            .ok_or_else(|| format!("task `{task}` is not in its plan"))?;
        later.push(Remerge {
            task: TaskIndex::new(i),
            result: commit,
            message: merge_message(run, task, squash),
            dependent: false,
        });
    }
    let made = rebuild(repo, base, &[], &later, squash, run)
        .map_err(|e| format!("merging the tasks' results again failed: failed to {e}"))?;
    if let Some(&first) = made.conflicted.first().or(made.unmerged.first()) {
        let id = tasks.get(first.get()).map_or("?", |t| t.id.as_str());
        return Err(format!(
            "merging again task `{id}`'s result did not give the branch it had"
        ));
    }
    repo.set_ref(
        &refs::integration(run),
        made.tip,
        "swarm: made again at resume",
    )
    .map_err(|e| format!("failed to {e}"))?;
    Ok(made.tip)
}
