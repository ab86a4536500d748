//! Unit tests of path ownership: the sandbox's writable set, and the
//! result check on real snapshots.

use std::path::Path;

use git2::Repository;

use super::*;
use crate::git::{SnapshotLimits, Worktrees, snapshot};

/// The first task of a plan of one command task with these extra keys.
fn task(keys: &str) -> Task {
    let toml = format!("[[task]]\nid = \"t\"\nrun = \"true\"\n{keys}\n");
    crate::plan::parse(Path::new("/plans/p.toml"), toml)
        .map(|p| p.tasks[0].clone())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn outside_is_every_change_not_within_paths_or_creates() {
    let t = task("paths = [\"src/a/\"]\ncreates = [\"./src/new.rs\"]");
    let changed = strings(&[
        "README.md",
        "src/a",
        "src/a/x.rs",
        "src/a/deep/y.rs",
        "src/ab",
        "src/b/f",
        "src/new.rs",
        "src/new.rs.bak",
    ]);
    assert_eq!(
        outside(&t, &changed),
        ["README.md", "src/ab", "src/b/f", "src/new.rs.bak"]
    );
    assert!(outside(&t, &strings(&["src/a/x.rs", "src/new.rs"])).is_empty());
}

#[test]
fn a_task_without_paths_or_creates_owns_everything() {
    let t = task("");
    assert!(outside(&t, &strings(&["README.md", "a/b/c"])).is_empty());
    // `creates` alone: the task needs the whole repository but writes
    // only what it creates.
    let t = task("creates = [\"gen/\"]");
    assert_eq!(t.checkout(), Vec::<String>::new());
    assert_eq!(
        outside(&t, &strings(&["gen/a.rs", "README.md"])),
        ["README.md"]
    );
}

#[test]
fn the_checkout_is_paths_and_creates_or_everything() {
    assert_eq!(
        task("paths = [\"src/a\"]\nsparse = true\ncreates = [\"src/b.rs\"]").checkout(),
        ["src/a", "src/b.rs"]
    );
    // Not sparse: the whole tree, whatever it may write.
    assert!(
        task("paths = [\"src/a\"]\ncreates = [\"src/b.rs\"]")
            .checkout()
            .is_empty()
    );
    assert!(task("").checkout().is_empty());
}

#[test]
fn the_reason_names_the_files_and_the_owned_paths() {
    let t = task("paths = [\"src/parser/\"]\ncreates = [\"src/parser/fast.rs\"]");
    assert_eq!(
        describe(&t, &strings(&["README.md", "src/other.rs"])),
        "wrote outside its paths: README.md, src/other.rs (its paths: src/parser; creates: src/parser/fast.rs)"
    );
    let many: Vec<String> = (0..13).map(|i| format!("f{i}")).collect();
    let t = task("creates = [\"gen\"]");
    assert_eq!(
        describe(&t, &many),
        "wrote outside its paths: f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 and 3 more (its creates: gen)"
    );
}

/// A worktree-like directory: `src/a/` (with a file), `src/b.rs`, a link
/// `link -> /` and a link `src/l -> a`.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src/a")).unwrap();
    std::fs::write(root.join("src/a/x.rs"), "x").unwrap();
    std::fs::write(root.join("src/b.rs"), "b").unwrap();
    std::os::unix::fs::symlink("/", root.join("link")).unwrap();
    std::os::unix::fs::symlink("a", root.join("src/l")).unwrap();
    dir
}

#[test]
fn owned_directories_are_writable_as_they_are_and_files_through_theirs() {
    let dir = tree();
    let root = dir.path();
    assert_eq!(writable(root, &["src/a"]), [root.join("src/a")]);
    // A file's directory: `sed -i` and friends write beside it and rename
    // over it (the result check keeps the task to the file).
    assert_eq!(writable(root, &["src/a/x.rs"]), [root.join("src/a")]);
    assert_eq!(writable(root, &["src/a", "src/b.rs"]), [root.join("src")]);
}

#[test]
fn a_path_to_be_created_is_writable_through_its_parent_made_for_it() {
    let dir = tree();
    let root = dir.path();
    // The parent exists: it is granted.
    assert_eq!(writable(root, &["src/new.rs"]), [root.join("src")]);
    // Missing directories on the way are made, never the path itself
    // (it may be a file).
    assert_eq!(writable(root, &["gen/deep/out"]), [root.join("gen/deep")]);
    assert!(root.join("gen/deep").is_dir());
    assert!(!root.join("gen/deep/out").exists());
    // At the top: the worktree itself.
    assert_eq!(writable(root, &["NEW.md"]), [root.to_path_buf()]);
}

#[test]
fn links_are_never_followed_and_nested_grants_are_merged() {
    let dir = tree();
    let root = dir.path();
    // A link at the owned path: only its directory can replace it.
    assert_eq!(writable(root, &["link"]), [root.to_path_buf()]);
    assert_eq!(writable(root, &["src/l"]), [root.join("src")]);
    // Beneath a link or a file: nothing (writing there means replacing
    // what is on the way, outside the path).
    assert!(writable(root, &["link/etc", "src/l/x.rs", "src/b.rs/x"]).is_empty());
    assert!(!root.join("src/b.rs/x").exists());
    // A grant inside another is covered by it.
    assert_eq!(
        writable(root, &["src/a", "src/new.rs", "src/a/x.rs", "src/a"]),
        [root.join("src")]
    );
}

#[test]
fn the_result_check_sees_every_change_of_the_snapshot_outside_the_task() {
    let dir = tempfile::tempdir().unwrap();
    // `src/made.rs` is a `creates` entry a dependency already made.
    let (repo, base) = crate::git::test_repo::with_files(
        dir.path(),
        &[
            ("README.md", "readme\n"),
            ("src/a/x.rs", "x\n"),
            ("src/made.rs", "made\n"),
            ("docs/d.txt", "d\n"),
        ],
    );
    let t = task("paths = [\"src/a\"]\nsparse = true\ncreates = [\"src/made.rs\", \"src/new/\"]");
    let worktrees = Worktrees::new(repo.clone());
    let path = dir.path().join("wt");
    let admin = worktrees.create(&path, base, &t.checkout()).unwrap();
    // The sparse checkout holds `paths` and what of `creates` exists.
    assert!(path.join("src/a/x.rs").is_file());
    assert!(path.join("src/made.rs").is_file());
    assert!(!path.join("README.md").exists());
    assert!(!path.join("docs").exists());

    std::fs::write(path.join("src/a/x.rs"), "x2\n").unwrap();
    std::fs::create_dir_all(path.join("src/new/deep")).unwrap();
    std::fs::write(path.join("src/new/deep/n.rs"), "n\n").unwrap();
    std::fs::write(path.join("README.md"), "mine\n").unwrap();
    std::fs::write(path.join("stray.txt"), "stray\n").unwrap();
    let checkout = t.checkout();
    let limits = SnapshotLimits {
        scope: &checkout,
        max_file_size: u64::MAX,
        run: "r",
    };
    let told = std::cell::RefCell::new(Vec::new());
    let snap = snapshot(&path, &admin, base, limits, |_, changed| {
        *told.borrow_mut() = outside(&t, changed);
        "m".into()
    })
    .unwrap();
    assert_eq!(
        snap.changed,
        ["README.md", "src/a/x.rs", "src/new/deep/n.rs", "stray.txt"]
    );
    assert_eq!(outside(&t, &snap.changed), ["README.md", "stray.txt"]);
    assert_eq!(told.into_inner(), ["README.md", "stray.txt"]);

    // Nothing is lost: what was not checked out is not deleted, what the
    // task created is committed, what a dependency created is kept.
    let git = Repository::open(dir.path().join("repo")).unwrap();
    let tree = git.find_commit(snap.commit).unwrap().tree().unwrap();
    for kept in ["docs/d.txt", "src/made.rs", "src/new/deep/n.rs"] {
        assert!(tree.get_path(Path::new(kept)).is_ok(), "{kept}");
    }

    // Deleting what `creates` names is the task's to do too.
    let path = dir.path().join("wt2");
    let admin = worktrees.create(&path, base, &t.checkout()).unwrap();
    std::fs::remove_file(path.join("src/made.rs")).unwrap();
    let snap = snapshot(&path, &admin, base, limits, |_, _| "m".into()).unwrap();
    assert_eq!(snap.changed, ["src/made.rs"]);
    assert!(outside(&t, &snap.changed).is_empty());
}

#[test]
fn a_sandboxed_refusal_is_explained_with_the_files_it_names() {
    let dir = tree();
    let root = dir.path();
    let t = task("paths = [\"src/a\"]");
    let why = super::refused_writes(
        &t,
        root,
        "sh: 1: cannot create src/b/y: Read-only file system\nsed: couldn't open temporary file src/sedX1: Read-only file system\n",
    )
    .unwrap();
    assert_eq!(
        why,
        format!(
            "writes outside its paths are refused in the sandbox (its paths: src/a): it was refused src/b/y; a tool's temporary file was refused in src/ (`sed -i` and the like write one beside the file they change: that file is outside its paths); {}",
            super::help(2)
        )
    );
    // sed's own words at the top of the worktree: its temporary file is
    // not named as if it were the person's.
    let why = super::refused_writes(
        &t,
        root,
        "sed: couldn't open temporary file ./sedCgSrmB: Read-only file system\n",
    )
    .unwrap();
    assert!(!why.contains("sedCgSrmB"), "{why}");
    assert!(
        why.contains("a tool's temporary file was refused in the worktree's top directory"),
        "{why}"
    );
    // Its own paths are not named; an unrelated failure says nothing.
    assert!(super::refused_writes(&t, root, "error: no such file\n").is_none());
    assert!(super::refused_writes(&t, root, "cat: /etc/shadow: Permission denied\n").is_none());
    // A task without paths owns everything.
    assert!(super::refused_writes(&task(""), root, "x: Read-only file system").is_none());
}
