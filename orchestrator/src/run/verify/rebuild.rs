//! Taking a merge that broke the run-wide verify out of the integration
//! branch: the merges after it are made again, in the same order, onto
//! the commit before it (in memory, with the run's own [`Merger`], so
//! `history = "squash"` keeps its one commit per task), leaving out the
//! tasks whose results hold its changes (its dependents, and any result
//! that descends from a removed one). And reading the branch's merges
//! back from git, for resume.

use crate::ids::TaskIndex;
use git2::Oid;
use swarm_protocol::TaskStatus;

use crate::fold::RunFold;
use crate::git::{Context, GitError, MergeOutcome, Merger, Repo, refs};

/// A merge to make again onto the rebuilt branch.
#[derive(Debug, Clone)]
pub(in crate::run) struct Remerge {
    pub task: TaskIndex,
    /// The result its merge took (what the fold recorded).
    pub result: Oid,
    pub message: String,
    /// It depends on the removed task (directly or not): left out.
    pub dependent: bool,
}

/// The branch rebuilt without a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::run) struct Rebuilt {
    /// The new tip (the commit it was rebuilt onto if nothing was merged
    /// again).
    pub tip: Oid,
    /// The merges made again: (task, integration commit after it).
    pub links: Vec<(TaskIndex, Oid)>,
    /// Tasks left out because their results hold the removed changes.
    pub unmerged: Vec<TaskIndex>,
    /// Tasks whose merge conflicted without the removed one.
    pub conflicted: Vec<TaskIndex>,
}

/// Makes the merges `later` again onto `onto`, without `removed` (the
/// results of the tasks whose merges are taken out: one, or a group's) or
/// anything built on them.
pub(in crate::run) fn rebuild(
    repo: &Repo,
    onto: Oid,
    removed: &[Oid],
    later: &[Remerge],
    squash: bool,
    run: &str,
) -> Result<Rebuilt, GitError> {
    let merger = Merger::holding(repo, run)?;
    let git = repo.open()?;
    let mut gone = removed.to_vec();
    let mut rebuilt = Rebuilt {
        tip: onto,
        links: Vec::new(),
        unmerged: Vec::new(),
        conflicted: Vec::new(),
    };
    for m in later {
        let holds_removed = m.dependent
            || gone.iter().try_fold(false, |found, &g| {
                Ok::<_, GitError>(
                    found
                        || m.result == g
                        || git
                            .graph_descendant_of(m.result, g)
                            .context(|| format!("compare {} with {g}", m.result))?,
                )
            })?;
        if holds_removed {
            gone.push(m.result);
            rebuilt.unmerged.push(m.task);
            continue;
        }
        let outcome = match squash {
            true => merger.squash(rebuilt.tip, m.result, &m.message)?,
            false => merger.merge(rebuilt.tip, m.result, &m.message)?,
        };
        match outcome {
            MergeOutcome::Merged(new) => {
                rebuilt.tip = new;
                rebuilt.links.push((m.task, new));
            }
            MergeOutcome::AlreadyIn => {}
            MergeOutcome::Conflict(_) => {
                gone.push(m.result);
                rebuilt.conflicted.push(m.task);
            }
        }
    }
    Ok(rebuilt)
}

/// The merges of tasks on the integration branch from `base` to `tip`,
/// oldest first: each commit on the first-parent line that a task's merge
/// made (a merge, or with `history = "squash"` a task's commit), with the
/// task its `Swarm-Task:` trailer names.
pub(in crate::run) fn merges_since(
    repo: &Repo,
    base: Oid,
    tip: Oid,
) -> Result<Vec<(Oid, String)>, GitError> {
    let git = repo.open()?;
    let mut merges = Vec::new();
    let mut at = tip;
    while at != base {
        let commit = git
            .find_commit(at)
            .context(|| format!("read integration commit {at}"))?;
        let message = commit.message().unwrap_or_default();
        if (commit.parent_count() >= 2 || message.starts_with("swarm: squash "))
            && let Some(task) = message.lines().find_map(|l| l.strip_prefix("Swarm-Task: "))
        {
            merges.push((at, task.trim().to_string()));
        }
        match commit.parent_ids().next() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    merges.reverse();
    Ok(merges)
}

/// The integration branch's tip a resumed run continues from, `tip` as
/// git has it unless a crash came between a rebuild's `verify_broken` line
/// (which names the new tip, made before it) and the branch's move: then
/// the branch still holds a merge the journal took out, and is moved to
/// the journal's tip, so that no removed merge comes back.
pub(in crate::run) fn reconcile(
    repo: &Repo,
    run: &str,
    base: Oid,
    tip: Oid,
    fold: &RunFold,
) -> Result<Oid, GitError> {
    let Some(report) = fold.report() else {
        return Ok(tip);
    };
    if !report
        .tasks
        .iter()
        .any(|t| t.status == TaskStatus::BrokeVerify)
    {
        return Ok(tip);
    }
    let taken_out = |id: &str| {
        report
            .tasks
            .iter()
            .any(|t| t.id == id && !matches!(t.status, TaskStatus::Merged | TaskStatus::Succeeded))
    };
    let stale = merges_since(repo, base, tip)?
        .iter()
        .any(|(_, id)| taken_out(id));
    let Ok(recorded) = Oid::from_str(&report.integration_commit) else {
        return Ok(tip);
    };
    if !stale || recorded == tip {
        return Ok(tip);
    }
    repo.set_ref(
        &refs::integration(run),
        recorded,
        "swarm: resume a rebuilt branch",
    )?;
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_repo;

    fn message(id: &str) -> String {
        format!("swarm: merge r/{id}\n\nSwarm-Run: r\nSwarm-Task: {id}\n")
    }

    #[test]
    fn a_merge_is_taken_out_with_what_is_built_on_it_and_the_rest_merged_again()
    -> Result<(), GitError> {
        let dir = tempfile::tempdir().unwrap();
        let (repo, base) = test_repo::with_files(dir.path(), &[("README", "x\n")]);
        let git = repo.open()?;
        // a, b (bad), c (built on b), d: each adds its own file.
        let a = test_repo::commit_on(&git, base, "a", "a\n");
        let b = test_repo::commit_on(&git, base, "b", "BAD\n");
        let c = test_repo::commit_on(&git, b, "c", "c\n");
        let d = test_repo::commit_on(&git, base, "d", "d\n");
        let ids = ["a", "b", "c", "d"];
        let merger = Merger::new(&repo)?;
        let mut tip = base;
        let mut chain = Vec::new();
        for (i, result) in [a, b, c, d].into_iter().enumerate() {
            let MergeOutcome::Merged(new) = merger.merge(tip, result, &message(ids[i]))? else {
                panic!("merge of {}", ids[i]);
            };
            tip = new;
            chain.push((i, new, result));
        }
        let seen = merges_since(&repo, base, tip)?;
        let names: Vec<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(names, ids);
        assert_eq!(seen[3].0, tip);

        // Take b out, onto a's merge: c (whose result descends from b's,
        // though not marked a dependent) is left out, d merged again.
        let later: Vec<Remerge> = chain[2..]
            .iter()
            .map(|&(task, _, result)| Remerge {
                task: TaskIndex::new(task),
                result,
                message: message(ids[task]),
                dependent: false,
            })
            .collect();
        let rebuilt = rebuild(&repo, chain[0].1, &[b], &later, false, "r")?;
        assert_eq!(rebuilt.unmerged, [TaskIndex::new(2)]);
        assert!(rebuilt.conflicted.is_empty());
        assert_eq!(rebuilt.links.len(), 1);
        assert_eq!(rebuilt.links[0].0, TaskIndex::new(3));
        assert_eq!(rebuilt.tip, rebuilt.links[0].1);
        let tree = git.find_commit(rebuilt.tip).unwrap().tree().unwrap();
        for (file, present) in [("a", true), ("b", false), ("c", false), ("d", true)] {
            assert_eq!(tree.get_name(file).is_some(), present, "{file}");
        }
        let names: Vec<String> = merges_since(&repo, base, rebuilt.tip)?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(names, ["a", "d"]);

        // A dependent is left out whatever its result.
        let mut marked = later.clone();
        marked[1].dependent = true;
        let rebuilt = rebuild(&repo, chain[0].1, &[b], &marked, false, "r")?;
        assert_eq!(rebuilt.unmerged, [TaskIndex::new(2), TaskIndex::new(3)]);
        assert_eq!(rebuilt.tip, chain[0].1);

        // Squashed, the same: one single-parent commit per task.
        let squashed = rebuild(&repo, chain[0].1, &[b], &later, true, "r")?;
        assert_eq!(squashed.unmerged, [TaskIndex::new(2)]);
        let tip = git.find_commit(squashed.tip).unwrap();
        assert_eq!(tip.parent_count(), 1);
        assert!(tip.tree().unwrap().get_name("d").is_some());
        assert!(tip.tree().unwrap().get_name("b").is_none());
        Ok(())
    }

    #[test]
    fn resume_moves_a_branch_that_still_holds_a_merge_the_journal_took_out() -> Result<(), GitError>
    {
        use swarm_protocol::{Event, EventBody, Isolation, SCHEMA_VERSION, TaskInfo, TaskKind};

        let dir = tempfile::tempdir().unwrap();
        let (repo, base) = test_repo::with_files(dir.path(), &[("README", "x\n")]);
        let git = repo.open()?;
        let (a, b) = (
            test_repo::commit_on(&git, base, "a", "a\n"),
            test_repo::commit_on(&git, base, "b", "BAD\n"),
        );
        let merger = Merger::new(&repo)?;
        let MergeOutcome::Merged(tip_a) = merger.merge(base, a, &message("a"))? else {
            panic!("merge of a");
        };
        let MergeOutcome::Merged(tip_b) = merger.merge(tip_a, b, &message("b"))? else {
            panic!("merge of b");
        };
        let branch = refs::integration("r");
        repo.set_ref(&branch, tip_b, "test")?;
        let event = |body| Event {
            v: SCHEMA_VERSION,
            ts: "2026-01-01T00:00:00.000Z".into(),
            body,
        };
        let info = |id: &str| TaskInfo {
            id: id.into(),
            kind: TaskKind::Command,
            isolation: Isolation::Worktree,
            deps: Vec::new(),
            variant_of: None,
        };
        let mut events = vec![event(EventBody::RunStarted {
            run: "r".into(),
            plan: "p.toml".into(),
            repo: "/repo".into(),
            base: "HEAD".into(),
            base_commit: base.to_string(),
            integration_branch: Some("swarm/r".into()),
            concurrency: 1,
            tasks: vec![info("a"), info("b")],
            worktrees: None,
            origin: None,
            base_branch: None,
        })];
        for (id, result, tip) in [("a", a, tip_a), ("b", b, tip_b)] {
            events.push(event(EventBody::TaskMerged {
                task: id.into(),
                commit: result.to_string(),
                integration_commit: tip.to_string(),
                resolved: false,
            }));
        }
        // Before the rebuild is journaled, git is right.
        let fold = RunFold::of(&events);
        assert_eq!(reconcile(&repo, "r", base, tip_b, &fold)?, tip_b);
        // Journaled, and the crash came before the branch moved: the
        // journal's tip wins, and the branch is moved to it.
        events.push(event(EventBody::VerifyBroken {
            task: "b".into(),
            commit: tip_b.to_string(),
            passed_commit: tip_a.to_string(),
            integration_commit: tip_a.to_string(),
            unmerged: Vec::new(),
            conflicted: Vec::new(),
            reason: "broke it".into(),
        }));
        let fold = RunFold::of(&events);
        assert_eq!(reconcile(&repo, "r", base, tip_b, &fold)?, tip_a);
        assert_eq!(repo.resolve(&branch)?, tip_a);
        // The branch moved: nothing to do.
        assert_eq!(reconcile(&repo, "r", base, tip_a, &fold)?, tip_a);
        Ok(())
    }
}
