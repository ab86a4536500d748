//! Tests of glob and grep.

use super::*;
use serde_json::{Value, json};
use std::fs;

/// A worktree with an ignored directory, a hidden file, `.git` and a
/// symlink out of the worktree.
fn setup() -> (tempfile::TempDir, Root) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for d in [".git", "src/deep", "target"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    let files = [
        (".gitignore", "target/\n*.log\n"),
        ("a.rs", "fn alpha() {}\n"),
        (".hidden.rs", "fn hidden() {}\n"),
        ("src/b.rs", "fn beta() {}\nFN BIG() {}\n"),
        ("src/deep/c.rs", "fn gamma() {}\n"),
        ("src/notes.md", "fn in markdown\n"),
        ("target/d.rs", "fn ignored() {}\n"),
        ("debug.log", "fn logged\n"),
        (".git/e.rs", "fn git() {}\n"),
    ];
    for (path, text) in files {
        fs::write(dir.join(path), text).unwrap();
    }
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    let root = Root::open(dir).unwrap();
    (tmp, root)
}

fn call(
    tool: fn(&Root, &Input) -> Result<String, String>,
    root: &Root,
    input: Value,
) -> Result<String, String> {
    tool(root, &Input::new(&input).unwrap())
}

#[test]
fn glob_respects_gitignore_and_includes_hidden() {
    let (_tmp, root) = setup();
    let out = call(glob, &root, json!({"pattern": "**/*.rs"})).unwrap();
    assert_eq!(out, ".hidden.rs\na.rs\nsrc/b.rs\nsrc/deep/c.rs\n");
    let out = call(glob, &root, json!({"pattern": "*.rs"})).unwrap();
    assert_eq!(out, ".hidden.rs\na.rs\n");
    let out = call(glob, &root, json!({"pattern": "*.rs", "path": "src"})).unwrap();
    assert_eq!(out, "src/b.rs\n");
    let out = call(glob, &root, json!({"pattern": "**/*.log"})).unwrap();
    assert_eq!(out, "no files match **/*.log under .");
    let out = call(glob, &root, json!({"pattern": "etc"})).unwrap();
    assert_eq!(out, "etc\n", "the link is listed, not followed");
    let err = call(glob, &root, json!({"pattern": "a["})).unwrap_err();
    assert!(err.starts_with("invalid glob a["), "{err}");
}

#[test]
fn glob_caps_results() {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..1005 {
        fs::write(tmp.path().join(format!("f{i:04}")), "").unwrap();
    }
    let root = Root::open(tmp.path()).unwrap();
    let out = call(glob, &root, json!({"pattern": "*"})).unwrap();
    assert_eq!(out.lines().count(), 1001);
    assert!(out.ends_with("[showing 1000 of 1005 files; use a narrower pattern or path]\n"));
}

#[test]
fn grep_finds_lines_with_filters() {
    let (_tmp, root) = setup();
    let out = call(grep, &root, json!({"pattern": "fn \\w+\\("})).unwrap();
    assert_eq!(
        out,
        ".hidden.rs:1:fn hidden() {}\na.rs:1:fn alpha() {}\nsrc/b.rs:1:fn beta() {}\nsrc/deep/c.rs:1:fn gamma() {}\n"
    );
    let out = call(grep, &root, json!({"pattern": "fn", "glob": "*.md"})).unwrap();
    assert_eq!(out, "src/notes.md:1:fn in markdown\n");
    let out = call(grep, &root, json!({"pattern": "fn", "glob": "src/**/*.rs"})).unwrap();
    assert_eq!(
        out,
        "src/b.rs:1:fn beta() {}\nsrc/deep/c.rs:1:fn gamma() {}\n"
    );
    let out = call(
        grep,
        &root,
        json!({"pattern": "big", "path": "src", "case_insensitive": true}),
    )
    .unwrap();
    assert_eq!(out, "src/b.rs:2:FN BIG() {}\n");
    let out = call(grep, &root, json!({"pattern": "alpha", "path": "a.rs"})).unwrap();
    assert_eq!(out, "a.rs:1:fn alpha() {}\n");
    let out = call(grep, &root, json!({"pattern": "nothing here"})).unwrap();
    assert_eq!(out, "no matches for nothing here under .");
}

#[test]
fn grep_errors_and_confinement() {
    let (tmp, root) = setup();
    let err = call(grep, &root, json!({"pattern": "a("})).unwrap_err();
    assert!(err.starts_with("invalid regex:"), "{err}");
    for p in ["..", "/etc", "etc"] {
        let err = call(grep, &root, json!({"pattern": "root", "path": p})).unwrap_err();
        assert_eq!(err, format!("path {p} is outside the worktree"));
    }
    // The link to /etc is not followed by a walk from the root.
    fs::write(tmp.path().join("bin"), b"root\0root\n").unwrap();
    let out = call(grep, &root, json!({"pattern": "root"})).unwrap();
    assert_eq!(out, "no matches for root under .");
}

#[test]
fn grep_caps_matches_and_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let many: String = (0..600).map(|i| format!("hit {i}\n")).collect();
    fs::write(tmp.path().join("many"), many).unwrap();
    fs::write(
        tmp.path().join("wide"),
        format!("hit {}\n", "é".repeat(400)),
    )
    .unwrap();
    let root = Root::open(tmp.path()).unwrap();
    let out = call(grep, &root, json!({"pattern": "hit", "path": "many"})).unwrap();
    assert_eq!(out.lines().count(), 501);
    assert!(out.ends_with("[stopped after 500 matches; narrow the pattern, path or glob]\n"));
    let out = call(grep, &root, json!({"pattern": "hit", "path": "wide"})).unwrap();
    assert!(out.len() < MAX_LINE + 20 && out.ends_with(" …\n"), "{out}");
}
