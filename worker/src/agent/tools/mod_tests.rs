//! Tests of the `Tools` front: dispatch, errors and descriptions.

use super::*;
use serde_json::json;

fn tools() -> (tempfile::TempDir, Tools) {
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), Duration::from_secs(10)).unwrap();
    (tmp, tools)
}

#[test]
fn specs_are_stable_and_include_finish() {
    let names: Vec<String> = Tools::specs().into_iter().map(|spec| spec.name).collect();
    assert_eq!(
        names,
        [
            "read_file",
            "write_file",
            "edit_file",
            "list_dir",
            "glob",
            "grep",
            "bash",
            "spawn_subtasks",
            "finish"
        ]
    );
    let finish = Tools::specs().pop().unwrap();
    assert_eq!(finish.input_schema["required"], json!(["summary"]));
    assert_eq!(Tools::specs(), Tools::specs());
}

#[test]
fn unknown_tools_and_finish_are_errors() {
    let (_tmp, mut tools) = tools();
    let out = tools.call("rm_rf", &json!({}));
    assert!(out.is_error);
    assert_eq!(
        out.content,
        "unknown tool `rm_rf`; the tools are: read_file, write_file, edit_file, list_dir, glob, grep, bash, spawn_subtasks, finish"
    );
    let out = tools.call("finish", &json!({"summary": "done"}));
    assert!(out.is_error);
    let out = tools.call("read_file", &json!("a.txt"));
    assert!(out.is_error);
    assert_eq!(out.content, "the input must be a JSON object, got a string");
}

#[test]
fn calls_reach_the_tools() {
    let (tmp, mut tools) = tools();
    let out = tools.call(
        "write_file",
        &json!({"path": "src/a.txt", "content": "one\n"}),
    );
    assert!(!out.is_error, "{}", out.content);
    let out = tools.call(
        "edit_file",
        &json!({"path": "src/a.txt", "old_string": "one", "new_string": "two"}),
    );
    assert!(!out.is_error, "{}", out.content);
    let out = tools.call("read_file", &json!({"path": "src/a.txt"}));
    assert_eq!(
        out,
        ToolOutput {
            content: "    1\ttwo\n".to_owned(),
            is_error: false
        }
    );
    let out = tools.call("grep", &json!({"pattern": "tw."}));
    assert_eq!(out.content, "src/a.txt:1:two\n");
    let out = tools.call("glob", &json!({"pattern": "**/*.txt"}));
    assert_eq!(out.content, "src/a.txt\n");
    let out = tools.call("list_dir", &json!({}));
    assert_eq!(out.content, "src/\n");
    let out = tools.call("bash", &json!({"command": "cat src/a.txt; exit 1"}));
    assert_eq!(
        out,
        ToolOutput {
            content: "exit code 1\ntwo\n".to_owned(),
            is_error: false
        }
    );
    let abs = tmp.path().join("src/a.txt");
    let out = tools.call("read_file", &json!({"path": abs}));
    assert!(!out.is_error, "{}", out.content);
}

#[test]
fn escapes_are_errors_through_call() {
    let (tmp, mut tools) = tools();
    std::os::unix::fs::symlink("/etc", tmp.path().join("etc")).unwrap();
    for (name, input) in [
        ("read_file", json!({"path": "../x"})),
        ("read_file", json!({"path": "/etc/passwd"})),
        ("read_file", json!({"path": "etc/passwd"})),
        ("write_file", json!({"path": "etc/x", "content": ""})),
        ("glob", json!({"pattern": "*", "path": "etc"})),
    ] {
        let out = tools.call(name, &input);
        assert!(out.is_error, "{name} {input}");
        assert!(
            out.content.ends_with("is outside the worktree"),
            "{}",
            out.content
        );
    }
}

#[test]
fn describe_is_one_short_line() {
    assert_eq!(
        Tools::describe("read_file", &json!({"path": "src/lib.rs"})),
        "read_file src/lib.rs"
    );
    assert_eq!(
        Tools::describe("bash", &json!({"command": "cargo check\n  -p core"})),
        "bash cargo check -p core"
    );
    assert_eq!(Tools::describe("list_dir", &json!({})), "list_dir .");
    assert_eq!(
        Tools::describe(
            "grep",
            &json!({"pattern": "fn main", "path": "src", "glob": "*.rs"})
        ),
        "grep fn main in src (*.rs)"
    );
    assert_eq!(
        Tools::describe("finish", &json!({"summary": "x"})),
        "finish"
    );
    assert_eq!(Tools::describe("edit_file", &json!(null)), "edit_file");
    let long = Tools::describe("bash", &json!({"command": "x".repeat(500)}));
    assert_eq!(long.chars().count(), 100);
    assert!(long.ends_with('…') && !long.contains('\n'));
}
