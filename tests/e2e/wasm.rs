//! WASM tasks through the `swarm` binary: real wasmtime running WASI
//! guests (built from WAT in `wasm_guests`) against real worktrees.

use std::time::{Duration, Instant};

use crate::support::{TestRepo, assert_truncated, redact, task};
use crate::wasm_guests as guests;

/// Writes `bytes` as `name` beside the test's plans (where `wasm = "name"`
/// finds it).
fn tool(repo: &TestRepo, name: &str, bytes: &[u8]) {
    let path = repo.plan(name, "");
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn wasm_guests_edit_the_worktree_and_the_edits_merge() {
    let repo = TestRepo::new();
    tool(&repo, "writer.wasm", &guests::writer());
    tool(
        &repo,
        "writer-p2.wasm",
        &guests::component(&guests::writer()),
    );
    let p = repo.plan(
        "wasm.toml",
        r#"[swarm]
name = "wasm"

[[task]]
id = "p1"
wasm = "writer.wasm"
args = ["hello.txt", "hello from a preview 1 module"]

[[task]]
id = "p2"
wasm = "writer-p2.wasm"
args = ["hello-p2.txt", "hello from a preview 2 component"]

[[task]]
id = "after"
deps = ["p1", "p2"]
run = "cat hello.txt hello-p2.txt > both.txt"
"#,
    );
    repo.run_plan(&p, &[]).assert_code(0);
    let report = repo.report();
    for id in ["p1", "p2", "after"] {
        assert_eq!(task(&report, id)["status"], "merged", "{id}");
    }
    assert_eq!(task(&report, "p1")["kind"], "wasm");
    assert_eq!(
        repo.show("swarm/wasm", "both.txt"),
        "hello from a preview 1 module\nhello from a preview 2 component"
    );
    // The edit is the task's own commit on its ref.
    assert_eq!(
        repo.show("refs/swarm/wasm/p1", "hello.txt"),
        "hello from a preview 1 module"
    );
}

#[test]
fn a_wasm_result_commit_says_what_program_ran() {
    let repo = TestRepo::new();
    tool(&repo, "writer.wasm", &guests::writer());
    let p = repo.plan(
        "wasm-message.toml",
        r#"[swarm]
name = "wm"

[[task]]
id = "w"
wasm = "writer.wasm"
args = ["out.txt", "two words"]
"#,
    );
    repo.run_plan(&p, &[]).assert_code(0);
    // Like a command task's: the outcome, then what ran, then trailers.
    let message = repo.git(&["log", "-1", "--format=%B", "refs/swarm/wm/w"]);
    assert!(
        message.starts_with(
            "swarm: wm/w: succeeded\n\nwriter.wasm out.txt \"two words\"\n\nSwarm-Run: wm\nSwarm-Task: w\n"
        ),
        "{message}"
    );
}

#[test]
fn preopen_escapes_fail_and_leave_the_host_unchanged() {
    let repo = TestRepo::new();
    let out = repo.outside();
    std::fs::write(out.join("secret.txt"), "secret\n").unwrap();
    // Symlinks committed to the repository, checked out in the worktree.
    std::os::unix::fs::symlink(&out, repo.path().join("link-out")).unwrap();
    std::os::unix::fs::symlink("/proc/self/root", repo.path().join("proc-root")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", repo.path().join("link-up")).unwrap();
    repo.commit_all("symlinks out");
    tool(&repo, "probe.wasm", &guests::probe());
    tool(&repo, "probe-p2.wasm", &guests::component(&guests::probe()));
    let attempts = [
        "../escape.txt".to_string(),
        "../../../../../../../etc/passwd".to_string(),
        format!("{}/escape.txt", out.display()),
        "/etc/passwd".to_string(),
        "link-out/escape.txt".to_string(),
        "link-out/secret.txt".to_string(),
        "proc-root/etc/passwd".to_string(),
        "link-up/etc/passwd".to_string(),
        "inside.txt".to_string(),
    ];
    let args = attempts
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let p = repo.plan(
        "escape.toml",
        &format!(
            "[swarm]\nname = \"escape\"\n\n[defaults]\nargs = [{args}]\n\n[[task]]\nid = \"p1\"\nwasm = \"probe.wasm\"\n\n[[task]]\nid = \"p2\"\nwasm = \"probe-p2.wasm\"\n"
        ),
    );
    repo.run_plan(&p, &[]).assert_code(0);
    for id in ["p1", "p2"] {
        let log = std::fs::read_to_string(
            repo.path()
                .join(format!(".swarm/runs/escape/logs/{id}/1.out")),
        )
        .unwrap();
        let expected: Vec<String> = attempts
            .iter()
            .map(|a| {
                if a == "inside.txt" {
                    format!("ALLOWED {a}")
                } else {
                    format!("denied {a}")
                }
            })
            .collect();
        assert_eq!(log.lines().collect::<Vec<_>>(), expected, "task {id}");
    }
    assert!(!out.join("escape.txt").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("secret.txt")).unwrap(),
        "secret\n"
    );
    // The guest created its file inside, through the real worktree.
    assert_eq!(repo.show("refs/swarm/escape/p1", "inside.txt"), "");
}

#[test]
fn runaway_guests_are_stopped_and_named() {
    let repo = TestRepo::new();
    tool(&repo, "spin.wasm", &guests::spin());
    tool(&repo, "balloon.wasm", &guests::balloon());
    tool(&repo, "recurse.wasm", &guests::recurse());
    tool(&repo, "exit7.wasm", &guests::exit7());
    tool(&repo, "flood.wasm", &guests::flood());
    let p = repo.plan(
        "runaway.toml",
        r#"[swarm]
name = "runaway"
on_failure = "continue"

[[task]]
id = "spin"
wasm = "spin.wasm"
timeout = "1s"

[[task]]
id = "fuel"
wasm = "spin.wasm"
fuel = 1000000

[[task]]
id = "balloon"
wasm = "balloon.wasm"
memory = "8MiB"

[[task]]
id = "roomy"
wasm = "balloon.wasm"
memory = "2GiB"

[[task]]
id = "recurse"
wasm = "recurse.wasm"

[[task]]
id = "exit7"
wasm = "exit7.wasm"

[[task]]
id = "flood"
wasm = "flood.wasm"
max_output = "64KiB"
"#,
    );
    let started = Instant::now();
    let run = repo.run_plan(&p, &["--grace", "200ms"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    let report = repo.report();
    let reason = |id: &str| {
        task(&report, id)["reason"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(task(&report, "spin")["status"], "timed_out");
    assert_eq!(reason("spin"), "timed out after 1s");
    assert_eq!(task(&report, "fuel")["status"], "failed");
    assert_eq!(
        reason("fuel"),
        "trapped: out of fuel (the task allows 1000000)"
    );
    // memory.grow fails at the cap, and the guest sees it (exit 3).
    assert_eq!(reason("balloon"), "exited with code 3");
    assert_eq!(task(&report, "roomy")["status"], "merged");
    assert_eq!(
        reason("recurse"),
        "trapped: stack overflow (runaway recursion?)"
    );
    assert_eq!(reason("exit7"), "exited with code 7");
    assert_eq!(
        task(&report, "flood")["status"],
        "merged",
        "{}",
        reason("flood")
    );
    let log =
        std::fs::read_to_string(repo.path().join(".swarm/runs/runaway/logs/flood/1.out")).unwrap();
    assert!(log.starts_with(&"x".repeat(65536)));
    assert_truncated(&log, 40_000_000 - 65536, 65536);
}

/// `swarm validate` and `swarm run` both reject the plan, exit 2, with the
/// task, the file and the line; returns the redacted message (each caller
/// snapshots it whole: `[TMP]/plans/FILE` and `bad.toml:3:`).
fn rejected(repo: &TestRepo, file: &str, bytes: &[u8]) -> String {
    tool(repo, file, bytes);
    let p = repo.plan(
        "bad.toml",
        &format!("[[task]]\nid = \"tool\"\nwasm = \"{file}\"\n"),
    );
    let validate = repo.swarm(&["validate", p.to_str().unwrap()]);
    validate.assert_code(2);
    let run = repo.run_plan(&p, &[]);
    run.assert_code(2);
    assert_eq!(run.stderr, validate.stderr);
    assert!(repo.swarm_traces().is_empty(), "{:?}", repo.swarm_traces());
    redact(&validate.stderr, repo)
}

#[test]
fn bad_programs_are_rejected_before_anything_runs() {
    let repo = TestRepo::new();
    let err = rejected(&repo, "notes.wasm", b"these are notes, not wasm\n");
    insta::assert_snapshot!("wasm_not_wasm", err);
    let err = rejected(&repo, "lib.wasm", &guests::no_start());
    insta::assert_snapshot!(err, @r#"
    error: invalid plan
      × task `tool` cannot run its program: failed to load [TMP]/plans/lib.wasm: it
      │ has no `_start` function, so it is a library, not a WASI command (build it as a binary)
       ╭─[[TMP]/plans/bad.toml:3:8]
     2 │ id = "tool"
     3 │ wasm = "lib.wasm"
       ·        ─────┬────
       ·             ╰── this program
       ╰────
      help: build the tool as a WASI command: `cargo build --target wasm32-wasip1` (or wasm32-wasip2)
    "#);
    let err = rejected(&repo, "missiles.wasm", &guests::unknown_import());
    insta::assert_snapshot!("wasm_unknown_import", err);
    let missing = repo.plan(
        "missing.toml",
        "[[task]]\nid = \"tool\"\nwasm = \"nowhere.wasm\"\n",
    );
    let run = repo.swarm(&["validate", missing.to_str().unwrap()]);
    run.assert_code(2);
    insta::assert_snapshot!(redact(&run.stderr, &repo), @r#"
    error: invalid plan
      × task `tool` cannot run its program: failed to read [TMP]/plans/nowhere.wasm:
      │ No such file or directory (os error 2)
       ╭─[[TMP]/plans/missing.toml:3:8]
     2 │ id = "tool"
     3 │ wasm = "nowhere.wasm"
       ·        ───────┬──────
       ·               ╰── this program
       ╰────
      help: `wasm` paths are relative to the plan's directory
    "#);
    let args = repo.plan(
        "args.toml",
        "[[task]]\nid = \"a\"\nrun = \"true\"\nargs = [\"x\"]\n",
    );
    let run = repo.swarm(&["validate", args.to_str().unwrap()]);
    run.assert_code(2);
    insta::assert_snapshot!(redact(&run.stderr, &repo), @r#"
    error: invalid plan
      × task `a` sets `args`, which only WASM tasks take
       ╭─[[TMP]/plans/args.toml:2:6]
     1 │ [[task]]
     2 │ id = "a"
       ·      ─┬─
       ·       ╰── not a `wasm` task
     3 │ run = "true"
       ╰────
      help: put the arguments in the `run` command itself, or make it a `wasm` task; remove `args`
    "#);
}

#[test]
fn symlinks_a_guest_creates_are_stored_never_followed() {
    let repo = TestRepo::new();
    tool(&repo, "symlink.wasm", &guests::symlink());
    let p = repo.plan(
        "links.toml",
        r#"[swarm]
name = "links"
on_failure = "continue"

[[task]]
id = "inside"
wasm = "symlink.wasm"
args = ["README.md", "readme-link"]

[[task]]
id = "outside"
wasm = "symlink.wasm"
args = ["../../../../../../../etc/passwd", "passwd-link"]

[[task]]
id = "absolute"
wasm = "symlink.wasm"
args = ["/etc/passwd", "abs-link"]
"#,
    );
    repo.run_plan(&p, &[]);
    let report = repo.report();
    // A link inside the worktree is created and committed as a link.
    assert_eq!(task(&report, "inside")["status"], "merged");
    let tree = repo.git(&["ls-tree", "refs/swarm/links/inside", "readme-link"]);
    assert!(tree.starts_with("120000 blob "), "{tree}");
    assert_eq!(
        repo.show("refs/swarm/links/inside", "readme-link"),
        "README.md"
    );
    // Links pointing out are refused by WASI, or, where created, stored as
    // the link itself: the coordinator never reads through them.
    for (id, link, target) in [
        ("outside", "passwd-link", "../../../../../../../etc/passwd"),
        ("absolute", "abs-link", "/etc/passwd"),
    ] {
        let rev = format!("refs/swarm/links/{id}");
        if task(&report, id)["status"] == "merged" {
            let tree = repo.git(&["ls-tree", &rev, link]);
            assert!(tree.starts_with("120000 blob "), "{id}: {tree}");
            assert_eq!(repo.show(&rev, link), target);
        } else {
            assert_eq!(task(&report, id)["status"], "failed", "{id}");
            assert!(repo.git(&["ls-tree", &rev, link]).is_empty(), "{id}");
        }
    }
}

#[test]
fn ctrl_c_cancels_a_running_guest() {
    let repo = TestRepo::new();
    tool(&repo, "spin.wasm", &guests::spin());
    let p = repo.plan(
        "cancel.toml",
        "[swarm]\nname = \"cancel\"\n\n[[task]]\nid = \"spin\"\nwasm = \"spin.wasm\"\n",
    );
    let mut child = repo
        .swarm_cmd(&["run", p.to_str().unwrap(), "--grace", "300ms"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let events = repo.path().join(".swarm/runs/cancel/events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&events).is_ok_and(|e| e.contains("task_started")) {
        assert!(Instant::now() < deadline, "the guest never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let stopped = Instant::now();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(stopped.elapsed() < Duration::from_secs(5));
    assert_eq!(task(&repo.report(), "spin")["status"], "cancelled");
}

#[test]
fn read_paths_are_preopened_read_only_with_or_without_the_kernel_sandbox() {
    let repo = TestRepo::new();
    let data = repo.outside();
    std::fs::write(data.join("data.txt"), "data\n").unwrap();
    tool(&repo, "readonly.wasm", &guests::readonly_probe());
    for (name, sandbox) in [("sandboxed", "landlock"), ("unconfined", "none")] {
        let p = repo.plan(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\nsandbox = \"{sandbox}\"\nread_paths = [{:?}]\n\n[[task]]\nid = \"probe\"\nwasm = \"readonly.wasm\"\nargs = [\"data.txt\", \"new.txt\"]\n",
                data.display().to_string()
            ),
        );
        repo.run_plan(&p, &[]).assert_code(0);
        let log = std::fs::read_to_string(
            repo.path()
                .join(format!(".swarm/runs/{name}/logs/probe/1.out")),
        )
        .unwrap();
        assert_eq!(
            log.lines().collect::<Vec<_>>(),
            [
                "read ok data.txt",
                "write denied data.txt",
                "read denied new.txt",
                "write denied new.txt"
            ],
            "{name}"
        );
    }
    assert!(!data.join("new.txt").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("data.txt")).unwrap(),
        "data\n"
    );
}
