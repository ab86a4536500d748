//! The fast path of a merge: a three-way merge of trees that never descends
//! into a subtree that is the same on two sides.
//!
//! libgit2's `merge_commits` builds an index of every file of all three
//! trees, so a merge costs time in proportion to the repository's size. Task
//! results usually touch a few directories of a large tree; comparing tree
//! ids level by level (as git's merge-ort does) costs time in proportion to
//! what changed. Only the trivial cases are resolved here: one side changed
//! an entry, or both made the same change. Anything else (both sides changed
//! one file, a file deleted on both sides, which rename detection might pair
//! with an addition) returns `None` and the caller does libgit2's full merge,
//! so results are always what the full merge would give.

use std::collections::BTreeSet;

use git2::{Oid, Repository, Tree};

/// One entry of a tree: object id and file mode.
type Entry = (Oid, i32);

const TREE_MODE: i32 = 0o040000;

fn is_tree(entry: Option<Entry>) -> bool {
    entry.is_some_and(|(_, mode)| mode == TREE_MODE)
}

fn get(tree: Option<&Tree<'_>>, name: &str) -> Option<Entry> {
    tree?.get_name(name).map(|e| (e.id(), e.filemode()))
}

/// Merges tree `theirs` into tree `ours` against `base` (`None`: no common
/// content). Returns the merged tree, or `None` when the case needs the full
/// merge.
pub(crate) fn merge_trees(
    repo: &Repository,
    base: Option<Oid>,
    ours: Oid,
    theirs: Oid,
) -> Result<Option<Oid>, git2::Error> {
    if ours == theirs || base == Some(theirs) {
        return Ok(Some(ours));
    }
    if base == Some(ours) {
        return Ok(Some(theirs));
    }
    let base_tree = base.map(|b| repo.find_tree(b)).transpose()?;
    let ours_tree = repo.find_tree(ours)?;
    let theirs_tree = repo.find_tree(theirs)?;
    let mut names = BTreeSet::new();
    for tree in [Some(&ours_tree), Some(&theirs_tree), base_tree.as_ref()]
        .into_iter()
        .flatten()
    {
        for entry in tree.iter() {
            // Names that are not UTF-8 are rare; the full merge handles them.
            let Ok(name) = entry.name() else {
                return Ok(None);
            };
            names.insert(name.to_string());
        }
    }

    let mut builder = repo.treebuilder(Some(&ours_tree))?;
    for name in &names {
        let b = get(base_tree.as_ref(), name);
        let o = get(Some(&ours_tree), name);
        let t = get(Some(&theirs_tree), name);
        let merged = if o == t {
            if o.is_none() && b.is_some() {
                // Deleted on both sides: with additions elsewhere this may
                // be a rename on both sides, which only the full merge sees.
                return Ok(None);
            }
            continue;
        } else if b == o {
            t
        } else if b == t {
            continue;
        } else if is_tree(o) && is_tree(t) && (b.is_none() || is_tree(b)) {
            let (Some((o_id, _)), Some((t_id, _))) = (o, t) else {
                return Ok(None);
            };
            match merge_trees(repo, b.map(|(id, _)| id), o_id, t_id)? {
                Some(id) => Some((id, TREE_MODE)),
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        match merged {
            // git stores no empty trees: a directory emptied by the merge goes.
            Some((id, mode)) if !(mode == TREE_MODE && repo.find_tree(id)?.is_empty()) => {
                builder.insert(name, id, mode)?;
            }
            _ => {
                if builder.get(name)?.is_some() {
                    builder.remove(name)?;
                }
            }
        }
    }
    builder.write().map(Some)
}
