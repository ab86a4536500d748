//! The files git tracks at a commit: what a matrix `{ glob = ... }` lists
//! (the files a task's worktree will hold, not the working tree's), and
//! the paths a planned task may name there.

use git2::{ObjectType, Oid, TreeWalkMode, TreeWalkResult};

use super::{Context, GitError, Repo};

/// What a commit holds at a path, as [`Repo::files_at`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAt {
    /// Nothing.
    Absent,
    /// Something that is no regular file within the size asked for (a
    /// link, a directory, a submodule, a larger file), or that could not
    /// be read.
    Unreadable,
    /// A regular file's bytes.
    Bytes(Vec<u8>),
}

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

    /// A reader of the regular files (no link, no submodule) of commit
    /// `rev`, by path from the repository's root ([`FileAt`]): a file's
    /// bytes, or that the commit holds nothing there, or something that is
    /// no regular file of at most `max` bytes. Reads git's objects only,
    /// never a working tree.
    pub fn files_at(
        &self,
        rev: &str,
        max: u64,
    ) -> Result<impl Fn(&str) -> FileAt + use<>, GitError> {
        let commit = self.resolve(rev)?;
        let repo = self.open()?;
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .context(|| format!("read the tree of `{rev}`"))?
            .id();
        Ok(move |path: &str| {
            let Ok(tree) = repo.find_tree(tree) else {
                return FileAt::Unreadable;
            };
            let entry = match tree.get_path(std::path::Path::new(path)) {
                Ok(entry) => entry,
                Err(e) if e.code() == git2::ErrorCode::NotFound => return FileAt::Absent,
                Err(_) => return FileAt::Unreadable,
            };
            if entry.kind() != Some(ObjectType::Blob)
                || !matches!(entry.filemode(), 0o100644 | 0o100755)
            {
                return FileAt::Unreadable;
            }
            let read = || -> Option<Vec<u8>> {
                let (size, _) = repo.odb().ok()?.read_header(entry.id()).ok()?;
                (size as u64 <= max).then_some(())?;
                Some(repo.find_blob(entry.id()).ok()?.content().to_vec())
            };
            read().map_or(FileAt::Unreadable, FileAt::Bytes)
        })
    }

    /// Every path at commit `commit`, files and directories (`/`-separated,
    /// sorted), or `None` when there are more than `limit`: the paths a
    /// planned task's `paths` may name, listed to a model only when the
    /// list is short enough to be read.
    pub fn paths_at(&self, commit: Oid, limit: usize) -> Result<Option<Vec<String>>, GitError> {
        let repo = self.open()?;
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .context(|| format!("read the tree of commit {commit}"))?;
        let mut paths = Vec::new();
        let mut over = false;
        let walked = tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            let kind = entry.kind();
            if !matches!(kind, Some(ObjectType::Blob | ObjectType::Tree)) {
                return TreeWalkResult::Skip;
            }
            let Ok(name) = entry.name() else {
                return TreeWalkResult::Skip;
            };
            if paths.len() == limit {
                over = true;
                return TreeWalkResult::Abort;
            }
            paths.push(format!("{dir}{name}"));
            TreeWalkResult::Ok
        });
        // An abort is how the walk stops early, not a failure.
        if over {
            return Ok(None);
        }
        walked.context(|| format!("list the paths of commit {commit}"))?;
        paths.sort_unstable();
        Ok(Some(paths))
    }

    /// The size in bytes of each of `paths` at `commit`: a file's, or all
    /// the files' below a directory; `None` for a path the commit does not
    /// hold. What a test file's collection costs grows with its source
    /// (`durations::Accounted`), and the commit's objects are what a task
    /// ran, whatever a worktree holds now.
    pub fn sizes_at(&self, commit: Oid, paths: &[&str]) -> Result<Vec<Option<u64>>, GitError> {
        let repo = self.open()?;
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .context(|| format!("read the tree of commit {commit}"))?;
        let odb = repo
            .odb()
            .context(|| format!("open the object database of {}", self.git_dir.display()))?;
        let size = |id: Oid| odb.read_header(id).map(|(size, _)| size as u64);
        let mut sizes = Vec::with_capacity(paths.len());
        for path in paths {
            // A path the tree does not hold, or cannot (empty, `..`), has
            // no size; the others still do.
            let Ok(entry) = tree.get_path(std::path::Path::new(path)) else {
                sizes.push(None);
                continue;
            };
            let bytes = match entry.kind() {
                Some(ObjectType::Blob) => Some(size(entry.id())),
                Some(ObjectType::Tree) => {
                    let below = repo
                        .find_tree(entry.id())
                        .context(|| format!("read the tree of `{path}` at commit {commit}"))?;
                    let mut blobs = Vec::new();
                    below
                        .walk(TreeWalkMode::PreOrder, |_, entry| {
                            if entry.kind() == Some(ObjectType::Blob) {
                                blobs.push(entry.id());
                            }
                            TreeWalkResult::Ok
                        })
                        .context(|| format!("list the files of `{path}` at commit {commit}"))?;
                    Some(blobs.into_iter().map(size).sum::<Result<u64, _>>())
                }
                _ => None,
            };
            sizes.push(
                bytes
                    .transpose()
                    .context(|| format!("read the size of `{path}` at commit {commit}"))?,
            );
        }
        Ok(sizes)
    }

    /// The paths that differ between commits `old` and `new` (files,
    /// from the repository's root, sorted): what a run changed for a task
    /// that starts from `new` (`plan::selection`).
    pub fn changed_between(&self, old: Oid, new: Oid) -> Result<Vec<String>, GitError> {
        let repo = self.open()?;
        let tree = |commit: Oid| {
            repo.find_commit(commit)
                .and_then(|c| c.tree())
                .context(|| format!("read the tree of commit {commit}"))
        };
        let (from, to) = (tree(old)?, tree(new)?);
        super::snapshot::changed_paths(&repo, &from, &to)
            .context(|| format!("compare commits {old} and {new}"))
    }

    /// Whether `commit` is `HEAD`'s or one a branch, a remote-tracking
    /// branch or a tag holds: committed where the person keeps their
    /// history, not only a stash, a reflog entry or one of swarm's own
    /// refs (a task's attempt) would.
    pub fn on_a_ref(&self, commit: Oid) -> Result<bool, GitError> {
        let repo = git2::Repository::open(&self.git_dir)
            .context(|| format!("open repository {}", self.git_dir.display()))?;
        let mut tips = Vec::new();
        if let Ok(head) = repo.head().and_then(|h| h.peel_to_commit()) {
            tips.push(head.id());
        }
        for glob in ["refs/heads/*", "refs/remotes/*", "refs/tags/*"] {
            let refs = repo
                .references_glob(glob)
                .context(|| format!("list the references {glob}"))?;
            tips.extend(
                refs.flatten()
                    .filter_map(|r| r.peel_to_commit().ok().map(|c| c.id())),
            );
        }
        if tips.contains(&commit) {
            return Ok(true);
        }
        Ok(tips
            .iter()
            .any(|tip| repo.graph_descendant_of(*tip, commit).unwrap_or(false)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_repo;

    /// Files and the directories that hold them, sorted; `None` past the
    /// limit, and the limit itself is still a list.
    #[test]
    fn paths_at_lists_files_and_directories_up_to_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, base) = test_repo::with_files(
            dir.path(),
            &[("README.md", "x"), ("src/a/b.rs", "x"), ("src/c.rs", "x")],
        );
        let all = ["README.md", "src", "src/a", "src/a/b.rs", "src/c.rs"];
        assert_eq!(repo.paths_at(base, 5).unwrap().unwrap(), all);
        assert_eq!(repo.paths_at(base, 4).unwrap(), None);
    }

    /// A file's size, a directory's files' together, none for what the
    /// commit does not hold.
    #[test]
    fn sizes_at_are_a_files_bytes_or_a_directorys_files() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, base) = test_repo::with_files(
            dir.path(),
            &[
                ("README.md", "xy"),
                ("src/a/b.rs", "xyz"),
                ("src/c.rs", "x"),
            ],
        );
        let sizes = repo.sizes_at(base, &["README.md", "src", "src/a", "gone.rs"]);
        assert_eq!(sizes.unwrap(), [Some(2), Some(4), Some(3), None]);
    }
}
