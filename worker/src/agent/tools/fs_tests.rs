//! Tests of the file tools, including attempts to leave the worktree.

use super::*;
use serde_json::{Value, json};
use std::fs;

type Tool = fn(&Root, &Input) -> Result<String, String>;

fn setup() -> (tempfile::TempDir, Root) {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root::open(tmp.path()).unwrap();
    (tmp, root)
}

fn run(tool: Tool, root: &Root, input: Value) -> Result<String, String> {
    tool(root, &Input::new(&input).unwrap())
}

#[test]
fn read_file_numbers_lines_and_pages() {
    let (tmp, root) = setup();
    let text: String = (1..=10).map(|i| format!("line {i}\r\n")).collect();
    fs::write(tmp.path().join("a.txt"), text).unwrap();

    let all = run(read_file, &root, json!({"path": "a.txt"})).unwrap();
    assert!(all.starts_with("    1\tline 1\n    2\tline 2\n"), "{all}");
    assert!(!all.contains('\r') && !all.contains("showing"), "{all}");

    let part = run(
        read_file,
        &root,
        json!({"path": "a.txt", "offset": 3, "limit": 2}),
    )
    .unwrap();
    assert_eq!(
        part,
        "    3\tline 3\n    4\tline 4\n[showing lines 3-4 of 10; read more with offset=5]\n"
    );

    let past = run(read_file, &root, json!({"path": "a.txt", "offset": 11})).unwrap_err();
    assert!(
        past.contains("past the end") && past.contains("10 lines"),
        "{past}"
    );
}

#[test]
fn read_file_cuts_long_lines_and_big_output() {
    let (tmp, root) = setup();
    fs::write(tmp.path().join("long"), "x".repeat(5000) + "\nshort\n").unwrap();
    let out = run(read_file, &root, json!({"path": "long"})).unwrap();
    assert!(out.contains("[line cut at 2000 bytes]"), "{out}");
    assert!(out.contains("    2\tshort"), "{out}");
    assert!(out.len() < 2100, "{}", out.len());

    let wide: String = (0..200).map(|_| "y".repeat(1500) + "\n").collect();
    fs::write(tmp.path().join("wide"), wide).unwrap();
    let out = run(read_file, &root, json!({"path": "wide"})).unwrap();
    assert!(out.len() <= MAX_READ + 200, "{}", out.len());
    assert!(out.contains("of 200; read more with offset="), "{out:.100}");
}

#[test]
fn read_file_refuses_binary_and_directories() {
    let (tmp, root) = setup();
    fs::write(tmp.path().join("bin"), b"abc\0def").unwrap();
    let err = run(read_file, &root, json!({"path": "bin"})).unwrap_err();
    assert!(err.contains("binary"), "{err}");
    fs::create_dir(tmp.path().join("d")).unwrap();
    let err = run(read_file, &root, json!({"path": "d"})).unwrap_err();
    assert!(err.contains("is a directory"), "{err}");
    let err = run(read_file, &root, json!({"path": "nope"})).unwrap_err();
    assert_eq!(err, "nope does not exist");
    fs::write(tmp.path().join("empty"), "").unwrap();
    assert_eq!(
        run(read_file, &root, json!({"path": "empty"})).unwrap(),
        "(empty is empty)"
    );
}

#[test]
fn write_file_creates_parents_and_overwrites() {
    let (tmp, root) = setup();
    let out = run(
        write_file,
        &root,
        json!({"path": "a/b/c.txt", "content": "hi"}),
    )
    .unwrap();
    assert_eq!(out, "created a/b/c.txt (2 bytes)");
    let out = run(
        write_file,
        &root,
        json!({"path": "a/b/c.txt", "content": "bye!"}),
    )
    .unwrap();
    assert_eq!(out, "overwrote a/b/c.txt (4 bytes)");
    assert_eq!(
        fs::read_to_string(tmp.path().join("a/b/c.txt")).unwrap(),
        "bye!"
    );
    let err = run(write_file, &root, json!({"path": "a", "content": ""})).unwrap_err();
    assert!(err.contains("is a directory"), "{err}");
    let err = run(write_file, &root, json!({"path": "x"})).unwrap_err();
    assert_eq!(err, "missing field `content` (a string)");
}

#[test]
fn edit_file_replaces_exactly_once() {
    let (tmp, root) = setup();
    let file = tmp.path().join("f.rs");
    fs::write(&file, "fn a() {}\nfn b() {}\nfn b() {}\n").unwrap();
    let out = run(
        edit_file,
        &root,
        json!({"path": "f.rs", "old_string": "fn a", "new_string": "fn z"}),
    )
    .unwrap();
    assert_eq!(out, "replaced 1 occurrence in f.rs at line 1");
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "fn z() {}\nfn b() {}\nfn b() {}\n"
    );

    let err = run(
        edit_file,
        &root,
        json!({"path": "f.rs", "old_string": "fn b", "new_string": "fn c"}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "old_string occurs 2 times in f.rs; include more context to make it unique or set replace_all"
    );
    let out = run(
        edit_file,
        &root,
        json!({"path": "f.rs", "old_string": "fn b", "new_string": "fn c", "replace_all": true}),
    )
    .unwrap();
    assert_eq!(out, "replaced 2 occurrences in f.rs, the first at line 2");
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "fn z() {}\nfn c() {}\nfn c() {}\n"
    );
}

#[test]
fn edit_file_errors() {
    let (tmp, root) = setup();
    fs::write(tmp.path().join("f"), "abc").unwrap();
    let edit = |old: &str, new: &str| {
        run(
            edit_file,
            &root,
            json!({"path": "f", "old_string": old, "new_string": new}),
        )
        .unwrap_err()
    };
    assert!(edit("zzz", "y").starts_with("old_string was not found in f;"));
    assert!(edit("", "y").starts_with("old_string is empty"));
    assert!(edit("abc", "abc").contains("the same"));
    let err = run(
        edit_file,
        &root,
        json!({"path": "f", "old_string": "a", "new_string": 1}),
    )
    .unwrap_err();
    assert_eq!(err, "field `new_string` must be a string, got a number");
    assert_eq!(fs::read_to_string(tmp.path().join("f")).unwrap(), "abc");
}

#[test]
fn edit_file_matches_crlf_files() {
    let (tmp, root) = setup();
    fs::write(tmp.path().join("w"), "one\r\ntwo\r\n").unwrap();
    run(
        edit_file,
        &root,
        json!({"path": "w", "old_string": "one\ntwo", "new_string": "1\n2"}),
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(tmp.path().join("w")).unwrap(),
        "1\r\n2\r\n"
    );
}

#[test]
fn list_dir_sorts_and_marks() {
    let (tmp, root) = setup();
    fs::create_dir_all(tmp.path().join(".git")).unwrap();
    fs::create_dir_all(tmp.path().join("src")).unwrap();
    fs::write(tmp.path().join("b.txt"), "").unwrap();
    fs::write(tmp.path().join(".hidden"), "").unwrap();
    std::os::unix::fs::symlink("b.txt", tmp.path().join("link")).unwrap();
    let out = run(list_dir, &root, json!({})).unwrap();
    assert_eq!(out, ".hidden\nb.txt\nlink -> b.txt\nsrc/\n");
    assert_eq!(
        run(list_dir, &root, json!({"path": "src"})).unwrap(),
        "(src is empty)"
    );
    let err = run(list_dir, &root, json!({"path": "b.txt"})).unwrap_err();
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn escapes_are_refused() {
    let (tmp, root) = setup();
    std::os::unix::fs::symlink("/etc", tmp.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("pw")).unwrap();
    let cases: [(Tool, Value); 9] = [
        (read_file, json!({"path": "../x"})),
        (read_file, json!({"path": "/etc/passwd"})),
        (read_file, json!({"path": "etc/passwd"})),
        (read_file, json!({"path": "pw"})),
        (write_file, json!({"path": "etc/evil", "content": "x"})),
        (write_file, json!({"path": "pw", "content": "x"})),
        (write_file, json!({"path": "../evil", "content": "x"})),
        (
            edit_file,
            json!({"path": "etc/passwd", "old_string": "root", "new_string": "x"}),
        ),
        (list_dir, json!({"path": "etc"})),
    ];
    for (tool, input) in cases {
        let p = input["path"].as_str().unwrap().to_owned();
        let err = run(tool, &root, input).unwrap_err();
        assert_eq!(err, format!("path {p} is outside the worktree"));
    }
    assert!(!tmp.path().parent().unwrap().join("evil").exists());
}
