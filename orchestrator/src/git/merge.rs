//! Merging task results, entirely in memory: no worktree is checked out for
//! a merge, which makes one cost milliseconds instead of a checkout.

use git2::{Oid, Repository};

use super::{Context, GitError, Repo, signature};

/// What merging one commit into another did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// A merge commit was created.
    Merged(Oid),
    /// `theirs` was already part of `ours`; nothing to do.
    AlreadyIn,
    /// The two sides conflict in these files; nothing was written.
    Conflict(Vec<String>),
}

/// Merges `theirs` into `ours`, creating a merge commit with both as
/// parents (a task's merge is always visible in history).
pub fn merge_into(
    repo: &Repo,
    ours: Oid,
    theirs: Oid,
    message: &str,
) -> Result<MergeOutcome, GitError> {
    let repo = repo.open()?;
    merge_in(&repo, ours, theirs, message)
}

fn merge_in(
    repo: &Repository,
    ours: Oid,
    theirs: Oid,
    message: &str,
) -> Result<MergeOutcome, GitError> {
    let action = || format!("merge {theirs} into {ours}");
    if ours == theirs || repo.graph_descendant_of(ours, theirs).context(action)? {
        return Ok(MergeOutcome::AlreadyIn);
    }
    let ours_commit = repo.find_commit(ours).context(action)?;
    let theirs_commit = repo.find_commit(theirs).context(action)?;
    let mut index = repo
        .merge_commits(&ours_commit, &theirs_commit, None)
        .context(action)?;
    if index.has_conflicts() {
        let mut files: Vec<String> = index
            .conflicts()
            .context(action)?
            .filter_map(Result::ok)
            .filter_map(|c| c.our.or(c.their).or(c.ancestor))
            .map(|entry| String::from_utf8_lossy(&entry.path).into_owned())
            .collect();
        files.sort();
        files.dedup();
        return Ok(MergeOutcome::Conflict(files));
    }
    let tree_id = index.write_tree_to(repo).context(action)?;
    let tree = repo.find_tree(tree_id).context(action)?;
    let sig = signature()?;
    let commit = repo
        .commit(
            None,
            &sig,
            &sig,
            message,
            &tree,
            &[&ours_commit, &theirs_commit],
        )
        .context(action)?;
    Ok(MergeOutcome::Merged(commit))
}

/// The commit a task with several dependencies starts from: the merge of
/// their results, in the given order. `Err` carries the conflicting files.
pub fn merge_results(
    repo: &Repo,
    results: &[Oid],
    message: &str,
) -> Result<Result<Oid, Vec<String>>, GitError> {
    let repo = repo.open()?;
    let Some((&first, rest)) = results.split_first() else {
        return Err(GitError::Cli {
            action: "merge dependency results".into(),
            message: "no results to merge".into(),
        });
    };
    let mut acc = first;
    for &next in rest {
        match merge_in(&repo, acc, next, message)? {
            MergeOutcome::Merged(commit) => acc = commit,
            MergeOutcome::AlreadyIn => {}
            MergeOutcome::Conflict(files) => return Ok(Err(files)),
        }
    }
    Ok(Ok(acc))
}
