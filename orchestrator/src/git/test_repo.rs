//! A real repository for unit tests: one commit holding the given files,
//! made with swarm's own fixed signature.

use std::path::Path;

use git2::{Oid, Repository};

use super::{Repo, signature};

/// `dir/repo`, a repository whose first commit (`HEAD`) holds `files`;
/// returns it and that commit.
pub(crate) fn with_files(dir: &Path, files: &[(&str, &str)]) -> (Repo, Oid) {
    let main = dir.join("repo");
    let repo = Repository::init(&main).unwrap();
    let mut index = repo.index().unwrap();
    for (path, content) in files {
        let abs = main.join(path);
        std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
        std::fs::write(&abs, content).unwrap();
        index.add_path(Path::new(path)).unwrap();
    }
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = signature().unwrap();
    let base = repo
        .commit(Some("HEAD"), &sig, &sig, "base", &tree, &[])
        .unwrap();
    (Repo::discover(&main).unwrap(), base)
}

/// A commit on `parent` that adds `file` with `content` (as a task's
/// snapshot does), on no ref.
pub(crate) fn commit_on(git: &Repository, parent: Oid, file: &str, content: &str) -> Oid {
    let parent = git.find_commit(parent).unwrap();
    let mut builder = git.treebuilder(Some(&parent.tree().unwrap())).unwrap();
    let blob = git.blob(content.as_bytes()).unwrap();
    builder.insert(file, blob, 0o100644).unwrap();
    let tree = git.find_tree(builder.write().unwrap()).unwrap();
    let sig = signature().unwrap();
    git.commit(None, &sig, &sig, file, &tree, &[&parent])
        .unwrap()
}
