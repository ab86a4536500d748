//! Snapshots: turning whatever a worker left in its worktree into a commit,
//! without the worker's cooperation and without running anything of its.
//!
//! libgit2 does the work in the coordinator: it stores symlinks as symlinks
//! (it never follows one), honours `.gitignore`, and runs no hooks, so a
//! worker cannot make the coordinator execute or read anything by planting
//! files.

use std::path::Path;

use git2::{IndexAddOption, Oid, Repository};

use super::{Context, GitError, signature};

/// The commit a worktree was snapshotted into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The new commit, or the base itself when nothing changed.
    pub commit: Oid,
    /// Paths that differ from the base, sorted.
    pub changed: Vec<String>,
}

impl Snapshot {
    pub fn is_unchanged(&self) -> bool {
        self.changed.is_empty()
    }
}

/// Commits the state of the worktree at `path`, whose git directory is
/// `git_dir`, on top of `base`. `git_dir` comes from swarm's own records,
/// never from the worktree's `.git` file, which the worker could rewrite.
///
/// `scope` limits which paths may be seen as deleted: a worktree checked out
/// with only some `paths` does not have the rest on disk, and their absence
/// is not a deletion. New files anywhere are always taken.
pub fn snapshot(
    path: &Path,
    git_dir: &Path,
    base: Oid,
    scope: &[String],
    message: &str,
) -> Result<Snapshot, GitError> {
    let action = || format!("snapshot worktree {}", path.display());
    let repo = Repository::open(git_dir).context(action)?;
    repo.set_workdir(path, false).context(action)?;
    let mut index = repo.index().context(action)?;
    // add_all adds new and modified files and drops index entries whose
    // file is gone; outside `scope` a missing file was never checked out,
    // so it is skipped (callback result 1) instead of deleted.
    let mut skip_unchecked = |p: &Path, _: &[u8]| -> i32 {
        if scope.is_empty() || in_scope(p, scope) || path.join(p).symlink_metadata().is_ok() {
            0
        } else {
            1
        }
    };
    index
        .add_all(["*"], IndexAddOption::DEFAULT, Some(&mut skip_unchecked))
        .context(action)?;
    let tree_id = index.write_tree().context(action)?;
    let base_commit = repo.find_commit(base).context(action)?;
    let base_tree = base_commit.tree().context(action)?;
    if tree_id == base_tree.id() {
        return Ok(Snapshot {
            commit: base,
            changed: Vec::new(),
        });
    }
    let tree = repo.find_tree(tree_id).context(action)?;
    let changed = changed_paths(&repo, &base_tree, &tree).context(action)?;
    let sig = signature()?;
    let commit = repo
        .commit(None, &sig, &sig, message, &tree, &[&base_commit])
        .context(action)?;
    // Leave the worktree consistent with its snapshot, so that a kept
    // (failed) worktree shows a clean `git status` and `git log` shows it.
    index.write().context(action)?;
    repo.set_head_detached(commit).context(action)?;
    Ok(Snapshot { commit, changed })
}

fn in_scope(p: &Path, scope: &[String]) -> bool {
    scope.iter().any(|s| p.starts_with(s))
}

/// Paths that differ between two trees, sorted.
pub(crate) fn changed_paths(
    repo: &Repository,
    old: &git2::Tree<'_>,
    new: &git2::Tree<'_>,
) -> Result<Vec<String>, git2::Error> {
    let diff = repo.diff_tree_to_tree(Some(old), Some(new), None)?;
    let mut paths: Vec<String> = diff
        .deltas()
        .filter_map(|d| {
            d.new_file()
                .path()
                .or_else(|| d.old_file().path())
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}
