//! A run's integration branch `swarm/<run>` deleted the way `git branch
//! -d` does (only if its tip is on another branch or HEAD) or `-D` does
//! (`force`), never under a worktree that has it checked out: for `swarm
//! clean --refs` and for removing what a run killed before it started left.

#![allow(
    clippy::disallowed_methods,
    reason = "git's own records of the repository's worktrees"
)]

use git2::Oid;

use super::{GitError, Repo, refs};

/// What `--refs` did with a run's integration branch `swarm/<run>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchFate {
    /// Deleted; it pointed at `was`, so it can be recreated.
    Deleted { name: String, was: Oid },
    /// Kept: its tip is on no other branch and not at HEAD, so deleting it
    /// would lose merged work (`force` deletes it).
    Unmerged { name: String, tip: Oid },
    /// Kept: the main worktree (or a linked one) has it checked out.
    CheckedOut { name: String },
}

/// Deletes run `run`'s integration branch if it may go (see the module);
/// what became of it, or `None` if there is none.
pub fn delete_branch(repo: &Repo, run: &str, force: bool) -> Result<Option<BranchFate>, GitError> {
    use crate::git::Context as _;
    let full = refs::integration(run);
    let name = refs::integration_branch(run);
    let git = repo.open()?;
    let Ok(branch) = git.find_reference(&full) else {
        return Ok(None);
    };
    let Some(tip) = branch.target() else {
        return Ok(None);
    };
    // The main worktree's HEAD (the common directory's), whatever worktree
    // swarm was started in: deleting the branch under it would orphan it.
    if let Ok(head) = git.find_reference("HEAD")
        && head.symbolic_target().ok().flatten() == Some(full.as_str())
    {
        return Ok(Some(BranchFate::CheckedOut { name }));
    }
    // Nor under a linked worktree (git's records: `worktrees/*/HEAD`).
    let linked = std::fs::read_dir(repo.common_dir.join("worktrees"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("HEAD")).ok());
    for head in linked {
        if head.trim().strip_prefix("ref: ") == Some(full.as_str()) {
            return Ok(Some(BranchFate::CheckedOut { name }));
        }
    }
    if !force {
        let mut tips: Vec<Oid> = Vec::new();
        if let Ok(head) = git.head()
            && let Some(oid) = head.target()
        {
            tips.push(oid);
        }
        let branches = git
            .references_glob("refs/heads/*")
            .context(|| "list branches".into())?;
        for r in branches.flatten() {
            if r.name().ok() != Some(full.as_str())
                && let Some(oid) = r.target()
            {
                tips.push(oid);
            }
        }
        let mut reachable = false;
        for other in tips {
            if other == tip
                || git
                    .graph_descendant_of(other, tip)
                    .context(|| format!("compare {name} with the other branches"))?
            {
                reachable = true;
                break;
            }
        }
        if !reachable {
            return Ok(Some(BranchFate::Unmerged { name, tip }));
        }
    }
    drop(branch);
    repo.delete_ref(&full)?;
    Ok(Some(BranchFate::Deleted { name, was: tip }))
}
