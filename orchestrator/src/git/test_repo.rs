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
