//! Merging task results, entirely in memory: no worktree is checked out for
//! a merge, which makes one cost milliseconds instead of a checkout.

use git2::{Oid, Repository};

use super::incoming::Incoming;
use super::treemerge::merge_trees;
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

/// Merges one result after another into the integration branch.
///
/// It keeps one repository handle for all merges: libgit2 caches the trees it
/// has read, and consecutive merges read the same large trees again and again
/// (reopening per merge made them about twice as slow on a 10k-file tree).
pub struct Merger {
    repo: Repository,
    /// Where a holding merger writes its merges' objects until they are
    /// held (see [`super::incoming`]); emptied after each merge.
    incoming: Option<Incoming>,
    /// The run whose kept packs hold each merge's new objects before the
    /// caller moves a ref to it (see [`super::hold`]); `None` for merges
    /// no ref will name (a dry run).
    run: Option<String>,
}

impl std::fmt::Debug for Merger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merger")
            .field("repo", &self.repo.path())
            .finish()
    }
}

impl Merger {
    /// A merger whose merges nothing holds: for a dry run, whose commits
    /// no ref will name.
    pub fn new(repo: &Repo) -> Result<Self, GitError> {
        Ok(Self {
            repo: repo.open()?,
            incoming: None,
            run: None,
        })
    }

    /// A merger for run `run`: each merge's new objects are held by the
    /// run's kept packs before it is returned.
    pub fn holding(repo: &Repo, run: &str) -> Result<Self, GitError> {
        let main = repo.open()?;
        let incoming = Incoming::open(main.commondir())?;
        incoming.attach(&main)?;
        Ok(Self {
            repo: main,
            incoming: Some(incoming),
            run: Some(run.to_string()),
        })
    }

    /// Merges `theirs` into `ours`, creating a merge commit with both as
    /// parents (a task's merge is always visible in history).
    pub fn merge(&self, ours: Oid, theirs: Oid, message: &str) -> Result<MergeOutcome, GitError> {
        self.held(ours, theirs, || merge_in(&self.repo, ours, theirs, message))
    }

    /// `merge` (a merge or a squash of `theirs` onto `ours`), with a merge
    /// commit it makes held (see [`Self::holding`]); made again when a
    /// concurrent prune took one of its objects before it was held.
    fn held(
        &self,
        ours: Oid,
        theirs: Oid,
        merge: impl Fn() -> Result<MergeOutcome, GitError>,
    ) -> Result<MergeOutcome, GitError> {
        let Some(run) = &self.run else {
            return merge();
        };
        let incoming = self.incoming.as_ref();
        let made = super::hold::again_on_prune_race(|| {
            merge().and_then(|outcome| match outcome {
                MergeOutcome::Merged(commit) => {
                    super::hold::hold(&self.repo, incoming, commit, &[ours, theirs], run, 0)
                        .map(|()| outcome)
                }
                other => Ok(other),
            })
        });
        // Held, or (a conflict, a failure) never to be named by a ref.
        if let Some(incoming) = incoming {
            incoming.clear();
        }
        made
    }

    /// Applies the changes of task result `theirs` (relative to its parent,
    /// the task's base) onto `ours` as one commit with `ours` as its only
    /// parent: a cherry-pick, in memory. A result that is its base (the
    /// task changed nothing) or already in `ours` adds no commit.
    pub fn squash(&self, ours: Oid, theirs: Oid, message: &str) -> Result<MergeOutcome, GitError> {
        self.held(ours, theirs, || self.squash_in(ours, theirs, message))
    }

    fn squash_in(&self, ours: Oid, theirs: Oid, message: &str) -> Result<MergeOutcome, GitError> {
        let repo = &self.repo;
        let action = || format!("squash {theirs} onto {ours}");
        if ours == theirs || repo.graph_descendant_of(ours, theirs).context(action)? {
            return Ok(MergeOutcome::AlreadyIn);
        }
        let ours_commit = repo.find_commit(ours).context(action)?;
        let theirs_commit = repo.find_commit(theirs).context(action)?;
        // A snapshot has exactly one parent, its base; anything else is a
        // base itself (the merge of a task's dependencies): no change.
        if theirs_commit.parent_count() != 1 {
            return Ok(MergeOutcome::AlreadyIn);
        }
        let mut index = repo
            .cherrypick_commit(&theirs_commit, &ours_commit, 0, None)
            .context(action)?;
        if index.has_conflicts() {
            return Ok(MergeOutcome::Conflict(
                conflicted_files(&index).context(action)?,
            ));
        }
        let tree_id = index.write_tree_to(repo).context(action)?;
        if tree_id == ours_commit.tree_id() {
            return Ok(MergeOutcome::AlreadyIn);
        }
        let tree = repo.find_tree(tree_id).context(action)?;
        let sig = signature()?;
        let commit = repo
            .commit(None, &sig, &sig, message, &tree, &[&ours_commit])
            .context(action)?;
        Ok(MergeOutcome::Merged(commit))
    }

    /// Where merging `theirs` into `ours` conflicts, in lines of `ours`'
    /// version of each file. Merges again (conflicts are rare, and
    /// [`Self::merge`] stays as fast as it was); a file deleted on one side
    /// has none (the whole file conflicts).
    /// With `squash`, as [`Self::squash`] merges (against the result's
    /// parent).
    pub fn conflict_hunks(
        &self,
        ours: Oid,
        theirs: Oid,
        squash: bool,
    ) -> Result<Vec<swarm_protocol::ConflictHunk>, GitError> {
        let repo = &self.repo;
        let action = || format!("find the conflicts of {theirs} with {ours}");
        let ours_commit = repo.find_commit(ours).context(action)?;
        let theirs_commit = repo.find_commit(theirs).context(action)?;
        let index = if squash {
            repo.cherrypick_commit(&theirs_commit, &ours_commit, 0, None)
        } else {
            repo.merge_commits(&ours_commit, &theirs_commit, None)
        }
        .context(action)?;
        let mut hunks = Vec::new();
        for conflict in index.conflicts().context(action)?.flatten() {
            let (Some(our), Some(their)) = (&conflict.our, &conflict.their) else {
                continue;
            };
            let path = String::from_utf8_lossy(&our.path).into_owned();
            let blob = |id: Oid| repo.find_blob(id).context(action);
            let (our_blob, their_blob) = (blob(our.id)?, blob(their.id)?);
            // Both sides added the file: merged against an empty one, as
            // git does.
            let base_blob = match &conflict.ancestor {
                Some(base) => Some(blob(base.id)?),
                None => None,
            };
            let mut base_in = git2::MergeFileInput::new();
            base_in.content(base_blob.as_ref().map_or(&[][..], |b| b.content()));
            let mut our_in = git2::MergeFileInput::new();
            our_in.content(our_blob.content());
            let mut their_in = git2::MergeFileInput::new();
            their_in.content(their_blob.content());
            let merged = git2::merge_file(&base_in, &our_in, &their_in, None).context(action)?;
            for (start, end) in marker_regions(merged.content()) {
                hunks.push(swarm_protocol::ConflictHunk {
                    path: path.clone(),
                    start,
                    end,
                });
            }
        }
        Ok(hunks)
    }
}

/// The conflicting regions of a file merged with conflict markers, as
/// 1-based inclusive line ranges of "ours" (the lines before `=======`, or
/// `|||||||` in diff3 style). A region where ours has no lines is shown at
/// the line it would be.
fn marker_regions(content: &[u8]) -> Vec<(u32, u32)> {
    #[derive(PartialEq)]
    enum In {
        Outside,
        Ours,
        Other,
    }
    let mut regions = Vec::new();
    let mut line = 0u32;
    let mut start = 0u32;
    let mut at = In::Outside;
    for text in content.split(|&b| b == b'\n') {
        match at {
            In::Outside if text.starts_with(b"<<<<<<<") => {
                at = In::Ours;
                start = line + 1;
            }
            In::Ours if text.starts_with(b"|||||||") || text == b"=======" => at = In::Other,
            In::Other | In::Ours if text.starts_with(b">>>>>>>") => {
                regions.push((start, line.max(start)));
                at = In::Outside;
            }
            In::Other => {}
            In::Outside | In::Ours => line += 1,
        }
    }
    regions
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
    let tree_id =
        match fast_merge(repo, ours, theirs, &ours_commit, &theirs_commit).context(action)? {
            Some(tree_id) => tree_id,
            None => {
                let mut index = repo
                    .merge_commits(&ours_commit, &theirs_commit, None)
                    .context(action)?;
                if index.has_conflicts() {
                    return Ok(MergeOutcome::Conflict(
                        conflicted_files(&index).context(action)?,
                    ));
                }
                index.write_tree_to(repo).context(action)?
            }
        };
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

/// The merged tree from the fast path, when there is a single merge base and
/// the fast path can answer; `None` sends the caller to the full merge.
fn fast_merge(
    repo: &Repository,
    ours: Oid,
    theirs: Oid,
    ours_commit: &git2::Commit<'_>,
    theirs_commit: &git2::Commit<'_>,
) -> Result<Option<Oid>, git2::Error> {
    let bases = repo.merge_bases(ours, theirs)?;
    let [base] = &*bases else { return Ok(None) };
    let base_tree = repo.find_commit(*base)?.tree_id();
    merge_trees(
        repo,
        Some(base_tree),
        ours_commit.tree_id(),
        theirs_commit.tree_id(),
    )
}

/// The commit a task with several dependencies starts from: the merge of
/// their results, in the given order. `Err` carries the conflicting files.
/// Each merge commit it makes is held by run `run`'s kept packs before it
/// is returned (see [`super::hold`]): no ref names it until the task's
/// result does, and a `git gc --prune=now` beside the run must not take
/// what the task's worktree is about to be checked out at.
pub fn merge_results(
    repo: &Repo,
    run: &str,
    results: &[Oid],
    message: &str,
) -> Result<Result<Oid, Vec<String>>, GitError> {
    let Some((&first, rest)) = results.split_first() else {
        return Err(GitError::Cli {
            action: "merge dependency results".into(),
            message: "no results to merge".into(),
        });
    };
    if rest.is_empty() {
        return Ok(Ok(first));
    }
    let merger = Merger::holding(repo, run)?;
    let mut acc = first;
    for &next in rest {
        match merger.merge(acc, next, message)? {
            MergeOutcome::Merged(commit) => acc = commit,
            MergeOutcome::AlreadyIn => {}
            MergeOutcome::Conflict(files) => return Ok(Err(files)),
        }
    }
    Ok(Ok(acc))
}

/// The paths of a merged index's conflicts, sorted, each once.
fn conflicted_files(index: &git2::Index) -> Result<Vec<String>, git2::Error> {
    let mut files: Vec<String> = index
        .conflicts()?
        .filter_map(Result::ok)
        .filter_map(|c| c.our.or(c.their).or(c.ancestor))
        .map(|entry| String::from_utf8_lossy(&entry.path).into_owned())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use git2::{Index, IndexEntry, IndexTime, Oid, Repository};

    use super::super::treemerge::merge_trees;
    use super::*;

    #[test]
    fn marker_regions_are_lines_of_ours() {
        let merged = b"a\n<<<<<<< ours\nb1\nb2\n=======\nc\n>>>>>>> theirs\nd\n<<<<<<< ours\n||||||| base\nx\n=======\ny\n>>>>>>> theirs\ne\n";
        // Ours: a, b1, b2, d, e: the first region is lines 2-3; the second
        // has no line of ours and is shown where it would be (line 5).
        assert_eq!(marker_regions(merged), [(2, 3), (5, 5)]);
        assert!(marker_regions(b"no conflict\n").is_empty());
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        repo: Repository,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repository::init(dir.path()).unwrap();
            Self { _dir: dir, repo }
        }

        /// A commit whose tree holds exactly `files`, on top of `parent`.
        fn commit(&self, files: &BTreeMap<&str, &str>, parent: Option<Oid>) -> Oid {
            let mut index = Index::new().unwrap();
            for (path, content) in files {
                let entry = IndexEntry {
                    ctime: IndexTime::new(0, 0),
                    mtime: IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: 0o100644,
                    uid: 0,
                    gid: 0,
                    file_size: 0,
                    id: self.repo.blob(content.as_bytes()).unwrap(),
                    flags: 0,
                    flags_extended: 0,
                    path: path.as_bytes().to_vec(),
                };
                index.add(&entry).unwrap();
            }
            let tree = self
                .repo
                .find_tree(index.write_tree_to(&self.repo).unwrap())
                .unwrap();
            let sig = signature().unwrap();
            let parents: Vec<_> = parent
                .map(|p| self.repo.find_commit(p).unwrap())
                .into_iter()
                .collect();
            let parents: Vec<_> = parents.iter().collect();
            self.repo
                .commit(None, &sig, &sig, "c", &tree, &parents)
                .unwrap()
        }

        fn tree_of(&self, commit: Oid) -> Oid {
            self.repo.find_commit(commit).unwrap().tree_id()
        }

        /// Merges both ways (fast path first, then libgit2's full merge) and
        /// checks they agree wherever the fast path answers.
        fn merge(&self, base: Oid, ours: Oid, theirs: Oid) -> (Option<Oid>, MergeOutcome) {
            let fast = merge_trees(
                &self.repo,
                Some(self.tree_of(base)),
                self.tree_of(ours),
                self.tree_of(theirs),
            )
            .unwrap();
            let full = {
                let mut index = self
                    .repo
                    .merge_commits(
                        &self.repo.find_commit(ours).unwrap(),
                        &self.repo.find_commit(theirs).unwrap(),
                        None,
                    )
                    .unwrap();
                (!index.has_conflicts()).then(|| index.write_tree_to(&self.repo).unwrap())
            };
            if let Some(fast) = fast {
                assert_eq!(Some(fast), full, "fast path and full merge disagree");
            }
            (fast, merge_in(&self.repo, ours, theirs, "m").unwrap())
        }

        fn file(&self, commit: Oid, path: &str) -> Option<String> {
            let tree = self.repo.find_commit(commit).unwrap().tree().unwrap();
            let entry = tree.get_path(std::path::Path::new(path)).ok()?;
            let blob = self.repo.find_blob(entry.id()).unwrap();
            Some(String::from_utf8(blob.content().to_vec()).unwrap())
        }
    }

    fn files<'a>(pairs: &[(&'a str, &'a str)]) -> BTreeMap<&'a str, &'a str> {
        pairs.iter().copied().collect()
    }

    const BASE: &[(&str, &str)] = &[
        ("a/one.txt", "1\n2\n3\n4\n5\n6\n7\n8\n"),
        ("a/two.txt", "two\n"),
        ("b/three.txt", "three\n"),
        ("c/four.txt", "four\n"),
    ];

    fn with(
        changes: &[(&'static str, Option<&'static str>)],
    ) -> BTreeMap<&'static str, &'static str> {
        let mut map = files(BASE);
        for (path, content) in changes {
            match content {
                Some(c) => map.insert(path, c),
                None => map.remove(path),
            };
        }
        map
    }

    #[test]
    fn disjoint_changes_take_the_fast_path_and_match_the_full_merge() {
        let f = Fixture::new();
        let base = f.commit(&files(BASE), None);
        let ours = f.commit(
            &with(&[("a/two.txt", Some("TWO\n")), ("new/x.txt", Some("x\n"))]),
            Some(base),
        );
        let theirs = f.commit(
            &with(&[
                ("b/three.txt", Some("THREE\n")),
                ("new/y.txt", Some("y\n")),
                ("c/four.txt", None),
            ]),
            Some(base),
        );
        let (fast, outcome) = f.merge(base, ours, theirs);
        assert!(
            fast.is_some(),
            "disjoint changes must not need the full merge"
        );
        let MergeOutcome::Merged(merged) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(f.file(merged, "a/two.txt").as_deref(), Some("TWO\n"));
        assert_eq!(f.file(merged, "b/three.txt").as_deref(), Some("THREE\n"));
        assert_eq!(f.file(merged, "new/x.txt").as_deref(), Some("x\n"));
        assert_eq!(f.file(merged, "new/y.txt").as_deref(), Some("y\n"));
        // c/ lost its only file, so the directory is gone too.
        assert_eq!(f.file(merged, "c/four.txt"), None);
        assert!(
            f.repo
                .find_commit(merged)
                .unwrap()
                .tree()
                .unwrap()
                .get_name("c")
                .is_none()
        );
    }

    #[test]
    fn edits_to_one_file_fall_back_to_a_content_merge() {
        let f = Fixture::new();
        let base = f.commit(&files(BASE), None);
        let ours = f.commit(
            &with(&[("a/one.txt", Some("ONE\n2\n3\n4\n5\n6\n7\n8\n"))]),
            Some(base),
        );
        let theirs = f.commit(
            &with(&[("a/one.txt", Some("1\n2\n3\n4\n5\n6\n7\nEIGHT\n"))]),
            Some(base),
        );
        let (fast, outcome) = f.merge(base, ours, theirs);
        assert!(fast.is_none());
        let MergeOutcome::Merged(merged) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            f.file(merged, "a/one.txt").as_deref(),
            Some("ONE\n2\n3\n4\n5\n6\n7\nEIGHT\n")
        );
    }

    #[test]
    fn conflicting_edits_name_the_file() {
        let f = Fixture::new();
        let base = f.commit(&files(BASE), None);
        let ours = f.commit(&with(&[("b/three.txt", Some("left\n"))]), Some(base));
        let theirs = f.commit(&with(&[("b/three.txt", Some("right\n"))]), Some(base));
        let (_, outcome) = f.merge(base, ours, theirs);
        assert_eq!(outcome, MergeOutcome::Conflict(vec!["b/three.txt".into()]));
    }

    #[test]
    fn a_rename_meeting_an_edit_falls_back_to_rename_detection() {
        let f = Fixture::new();
        let base = f.commit(&files(BASE), None);
        let ours = f.commit(
            &with(&[("a/one.txt", None), ("a/renamed.txt", Some(BASE[0].1))]),
            Some(base),
        );
        let theirs = f.commit(
            &with(&[("a/one.txt", Some("1\n2\n3\n4\n5\n6\n7\nEIGHT\n"))]),
            Some(base),
        );
        let (fast, outcome) = f.merge(base, ours, theirs);
        assert!(fast.is_none());
        let MergeOutcome::Merged(merged) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            f.file(merged, "a/renamed.txt").as_deref(),
            Some("1\n2\n3\n4\n5\n6\n7\nEIGHT\n")
        );
        assert_eq!(f.file(merged, "a/one.txt"), None);
    }

    #[test]
    fn a_file_deleted_on_both_sides_is_left_to_the_full_merge() {
        let f = Fixture::new();
        let base = f.commit(&files(BASE), None);
        let ours = f.commit(
            &with(&[("a/two.txt", None), ("a/left.txt", Some("two\n"))]),
            Some(base),
        );
        let theirs = f.commit(
            &with(&[("a/two.txt", None), ("a/right.txt", Some("two\n"))]),
            Some(base),
        );
        let (fast, _) = f.merge(base, ours, theirs);
        assert!(
            fast.is_none(),
            "a rename on both sides must reach rename detection"
        );
    }

    #[test]
    fn a_result_already_merged_is_not_merged_again() {
        let f = Fixture::new();
        let base = f.commit(&files(BASE), None);
        let ours = f.commit(&with(&[("a/two.txt", Some("TWO\n"))]), Some(base));
        assert_eq!(
            merge_in(&f.repo, ours, base, "m").unwrap(),
            MergeOutcome::AlreadyIn
        );
    }
}

#[cfg(test)]
mod holding_tests {
    use super::*;
    use crate::git::test_repo;

    /// A holding merger writes where no prune looks, and what it made is
    /// the repository's once a merge returns: another handle reads each
    /// merge commit, and nothing is left loose in the incoming directory.
    #[test]
    fn a_holding_mergers_commits_are_the_repositorys_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (main, base) = test_repo::with_files(dir.path(), &[("a.txt", "a\n")]);
        let repo = main.open().unwrap();
        let one = test_repo::commit_on(&repo, base, "f1.txt", "one\n");
        let two = test_repo::commit_on(&repo, base, "f2.txt", "two\n");
        let merger = Merger::holding(&main, "r").unwrap();
        let MergeOutcome::Merged(first) = merger.merge(base, one, "first").unwrap() else {
            panic!("a merge commit is made")
        };
        let MergeOutcome::Merged(second) = merger.merge(first, two, "second").unwrap() else {
            panic!("a merge commit is made")
        };
        let other = main.open().unwrap();
        for commit in [first, second] {
            assert!(other.find_commit(commit).is_ok(), "{commit} is not held");
        }
        let objects = merger.incoming.as_ref().unwrap().objects_dir();
        let loose: Vec<_> = std::fs::read_dir(&objects)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "info" && n != "pack")
            .collect();
        assert!(loose.is_empty(), "left in {}: {loose:?}", objects.display());
        // Nothing of swarm's is loose in the repository either.
        let fanout = repo
            .commondir()
            .join("objects")
            .join(&first.to_string()[..2]);
        assert!(!fanout.join(&first.to_string()[2..]).exists());
    }
}
