//! The files git tracks at a commit: what a matrix `{ glob = ... }` lists
//! (the files a task's worktree will hold, not the working tree's).

use git2::{ObjectType, TreeWalkMode, TreeWalkResult};

use super::{Context, GitError, Repo};

impl Repo {
    /// Every file tracked at commit `rev` (paths from the repository's
    /// root, `/`-separated, sorted); submodules are not files and are left
    /// out, as are paths that are not UTF-8 (a matrix value is text).
    pub fn tracked_files(&self, rev: &str) -> Result<Vec<String>, GitError> {
        let commit = self.resolve(rev)?;
        let repo = self.open()?;
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .context(|| format!("read the tree of `{rev}`"))?;
        let mut files = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob)
                && let Ok(name) = entry.name()
            {
                files.push(format!("{dir}{name}"));
            }
            TreeWalkResult::Ok
        })
        .context(|| format!("list the files of `{rev}`"))?;
        // Git orders a directory as if its name ended in `/`: sorted here
        // as plain text, the order people expect of a sorted list.
        files.sort_unstable();
        Ok(files)
    }
}
