//! Tests of the bash tool: exit reports, output bounds, timeouts, and the
//! cleanup of what a command leaves behind.

use super::*;
use serde_json::{Value, json};
use std::path::Path;

fn setup() -> (tempfile::TempDir, Root) {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root::open(tmp.path()).unwrap();
    (tmp, root)
}

fn run(root: &Root, input: Value, max: Duration) -> Result<String, String> {
    bash(root, &Input::new(&input).unwrap(), max)
}

fn sh(root: &Root, command: &str) -> Result<String, String> {
    run(root, json!({"command": command}), Duration::from_secs(30))
}

/// Whether `pid` is a live process (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .unwrap()
            .1
            .trim_start()
            .starts_with('Z')
    })
}

fn read_pid(dir: &Path, name: &str) -> u32 {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn reports_exit_code_and_merged_output() {
    let (_tmp, root) = setup();
    assert_eq!(
        sh(&root, "echo out; echo err >&2; exit 3").unwrap(),
        "exit code 3\nout\nerr\n"
    );
    assert_eq!(sh(&root, "true").unwrap(), "exit code 0 (no output)");
    assert_eq!(sh(&root, "cat").unwrap(), "exit code 0 (no output)");
    assert_eq!(
        sh(&root, "kill -9 $$").unwrap(),
        "killed by signal 9 (SIGKILL) (no output)"
    );
}

#[test]
fn runs_in_the_worktree_with_the_agent_environment() {
    let (tmp, root) = setup();
    let out = sh(&root, "pwd; echo \"$HOME\"").unwrap();
    let home = std::env::var("HOME").unwrap_or_default();
    let real = tmp.path().canonicalize().unwrap();
    assert_eq!(out, format!("exit code 0\n{}\n{home}\n", real.display()));
}

#[test]
fn long_output_keeps_head_and_tail() {
    let (_tmp, root) = setup();
    let out = sh(
        &root,
        "echo START; head -c 100000 /dev/zero | tr '\\0' a; echo; echo END",
    )
    .unwrap();
    assert!(out.starts_with("exit code 0\nSTART\naaa"), "{out:.40}");
    assert!(out.ends_with("aaa\nEND\n"));
    let dropped = 6 + 100_001 + 4 - 2 * KEEP;
    assert!(
        out.contains(&format!("[... {dropped} bytes of output omitted ...]")),
        "{}",
        out.len()
    );
    assert!(out.len() < 2 * KEEP + 100);
}

#[test]
fn capture_keeps_both_ends_across_chunks() {
    let mut capture = Capture::default();
    for i in 0..10_000u32 {
        capture.push(format!("{i:05}\n").as_bytes());
    }
    let text = capture.render();
    assert!(text.starts_with("00000\n00001\n"));
    assert!(text.ends_with("09998\n09999\n"));
    assert!(text.contains(&format!("[... {} bytes", 60_000 - 2 * KEEP)));
    let mut small = Capture::default();
    small.push(b"hi");
    assert_eq!(small.render(), "hi");
}

#[test]
fn timeout_kills_the_command_and_its_background_children() {
    become_subreaper().unwrap();
    let (tmp, root) = setup();
    let started = Instant::now();
    let err = run(
        &root,
        json!({
            "command": "echo $$ > sh.pid; sleep 30 & echo $! > bg.pid; echo waiting; sleep 30",
            "timeout": 1
        }),
        Duration::from_secs(60),
    )
    .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, "timed out after 1s, killed\nwaiting\n");
    assert!(took < Duration::from_secs(4), "{took:?}");
    for name in ["sh.pid", "bg.pid"] {
        let pid = read_pid(tmp.path(), name);
        assert!(!alive(pid), "{name} {pid} survived");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{name} {pid} was not reaped"
        );
    }
}

#[test]
fn timeout_input_cannot_raise_the_limit() {
    // As the agent is: dash forks `sleep`, which the killed shell leaves
    // to whoever reaps orphans.
    become_subreaper().unwrap();
    let (_tmp, root) = setup();
    let started = Instant::now();
    let err = run(
        &root,
        json!({"command": "sleep 10", "timeout": 100}),
        Duration::from_millis(500),
    )
    .unwrap_err();
    assert_eq!(err, "timed out after 0.5s, killed (no output)");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn leftovers_of_a_finished_command_are_killed_without_waiting() {
    become_subreaper().unwrap();
    let (tmp, root) = setup();
    let started = Instant::now();
    let out = sh(&root, "sleep 30 & echo $! > bg.pid; echo done; exit 4").unwrap();
    assert_eq!(out, "exit code 4\ndone\n");
    assert!(started.elapsed() < Duration::from_secs(2));
    let pid = read_pid(tmp.path(), "bg.pid");
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{pid} left");
}

#[test]
fn leftovers_that_clear_their_environment_are_found_by_their_output() {
    become_subreaper().unwrap();
    let (tmp, root) = setup();
    let started = Instant::now();
    let out = sh(
        &root,
        "env -i /bin/sh -c ': > ready; exec sleep 30' & echo $! > bg.pid; \
             until [ -e ready ]; do sleep 0.01; done",
    )
    .unwrap();
    assert_eq!(out, "exit code 0 (no output)");
    assert!(started.elapsed() < Duration::from_secs(2));
    let pid = read_pid(tmp.path(), "bg.pid");
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{pid} left");
}

#[test]
fn other_children_of_the_agent_are_left_alone() {
    become_subreaper().unwrap();
    let (_tmp, root) = setup();
    let mut bystander = Command::new("sleep").arg("30").spawn().unwrap();
    sh(&root, "sleep 30 & exit 0").unwrap();
    let still_running = bystander.try_wait().unwrap().is_none();
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    assert!(still_running);
}

#[test]
fn commands_run_side_by_side_never_kill_each_other() {
    // Each command's end looks for what it left, by its output pipe among
    // other marks; a command starting beside it holds a copy of that pipe
    // until it execs (a fork of the agent), and was killed as if it were
    // the other's.
    let (_tmp, root) = setup();
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..25)
                        .map(|_| sh(&root, "true").unwrap())
                        .filter(|report| report != "exit code 0 (no output)")
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for run in runs {
            let wrong = run.join().unwrap();
            assert!(wrong.is_empty(), "{wrong:?}");
        }
    });
}

#[test]
fn bad_input_is_refused() {
    let (_tmp, root) = setup();
    let max = Duration::from_secs(5);
    assert_eq!(
        run(&root, json!({}), max).unwrap_err(),
        "missing field `command` (a string)"
    );
    let err = run(&root, json!({"command": "true", "timeout": 0}), max).unwrap_err();
    assert!(err.contains("positive number of seconds"), "{err}");
}
