//! What users and CI systems see of a run: the human summary, the JSON
//! event stream, the JUnit report, the Markdown summary and `swarm logs`,
//! snapshotted for a run with a success, a failure, a conflict and a
//! blocked dependent, and for runs where everything merges, tasks fail
//! each their own way, a conflict, an interrupted run and warnings.

use crate::support::{
    Run, TestRepo, by_task, redact, signal, snapshot_settings, stable_stderr, summary_of,
    wait_until,
};

const PLAN: &str = r#"[defaults]
warm = false

[swarm]
on_failure = "continue"

[[task]]
id = "ok"
run = "echo ok > ok.txt"

[[task]]
id = "fails"
run = "echo working; echo 'error: it broke' >&2; exit 3"

[[task]]
id = "left"
run = "echo left > same.txt"

[[task]]
id = "right"
run = "echo right > same.txt"
on_conflict = "stop"

[[task]]
id = "after"
deps = ["fails"]
run = "true"
"#;

/// What changes from run to run: times, durations, temp paths, hashes.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r#""ts":"[^"]+""#, r#""ts":"[TS]""#),
        (
            r#""(duration_ms|snapshot_ms|setup_ms|started_at|finished_at)":("[^"]+"|\d+)"#,
            r#""$1":[X]"#,
        ),
        (r#"time="[0-9.]+""#, r#"time="[T]""#),
        (r#"timestamp="[^"]+""#, r#"timestamp="[T]""#),
        (r"\b\d+\.\d\ds\b", "[T]s"),
        (r"\b\d+m \d\ds\b", "[T]"),
    ]
}

#[test]
fn a_runs_outputs_agree_and_read_well() {
    let repo = TestRepo::new();
    let plan = repo.plan("outputs.toml", PLAN);
    let junit = repo.root().join("junit.xml");
    let summary = repo.root().join("summary.md");
    // One at a time: the order of events is then the same on every run.
    let run = repo.swarm(&[
        "run",
        plan.to_str().unwrap(),
        "-j",
        "1",
        "--events",
        "json",
        "--junit",
        junit.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    run.assert_code(1);

    // stdout holds the events and nothing else: each line is an event.
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event per line"))
        .collect();
    assert!(events.iter().all(|e| e["v"] == 1 && e["event"].is_string()));
    // The same events as the journal, in the same order.
    let journal =
        std::fs::read_to_string(repo.path().join(".swarm/runs/outputs/events.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), events.len());
    let journalled: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(journalled, events);

    // The live lines of the human summary: up to the first blank line.
    let (live, table) = run.stderr.split_once("\n\n").unwrap();
    let (head, live) = live.split_once('\n').unwrap();
    let human = format!(
        "{head}\n{}\n{table}",
        by_task(live, |l| l
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string())
    );
    let json = by_task(&run.stdout, |l| {
        let e: serde_json::Value = serde_json::from_str(l).unwrap();
        e["task"]
            .as_str()
            .or(e["event"].as_str())
            .unwrap()
            .to_string()
    });
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("summary_human", redact(&human, &repo));
        insta::assert_snapshot!("events_json", redact(&json, &repo));
        insta::assert_snapshot!("junit_xml", redact(&std::fs::read_to_string(&junit).unwrap(), &repo));
        insta::assert_snapshot!("summary_markdown", redact(&std::fs::read_to_string(&summary).unwrap(), &repo));
    });

    let logs = repo.swarm(&["logs", "outputs", "fails"]);
    logs.assert_code(0);
    assert_eq!(logs.stdout, "working\n--- stderr\nerror: it broke\n");
    let followed = repo.swarm(&["logs", "outputs", "ok", "--follow"]);
    followed.assert_code(0);
    let unknown = repo.swarm(&["logs", "outputs", "fail"]);
    unknown.assert_code(2);
    assert!(
        unknown.stderr.contains("did you mean `fails`?"),
        "{}",
        unknown.stderr
    );
}

/// `swarm run PLAN --name NAME`, one task at a time and unconfined (the
/// same warning on every machine, whatever its sandbox), with `extra`.
fn run_named(repo: &TestRepo, plan: &std::path::Path, name: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--name", name, "-j", "1", "--sandbox", "none"];
    args.extend_from_slice(extra);
    repo.run_plan(plan, &args)
}

/// Where a run writes its JUnit report and Markdown summary, as
/// `--junit` and `--summary` arguments.
fn exports(repo: &TestRepo) -> [String; 4] {
    [
        "--junit".into(),
        repo.root().join("junit.xml").display().to_string(),
        "--summary".into(),
        repo.root().join("summary.md").display().to_string(),
    ]
}

fn junit_of(repo: &TestRepo) -> String {
    std::fs::read_to_string(repo.root().join("junit.xml")).unwrap()
}

fn markdown_of(repo: &TestRepo) -> String {
    std::fs::read_to_string(repo.root().join("summary.md")).unwrap()
}

/// A chain (so that every line comes in one order) of a writing task, its
/// dependent and a read-only check.
const ALL_MERGED: &str = r#"[[task]]
id = "docs"
run = "echo docs > docs.txt"

[[task]]
id = "code"
deps = ["docs"]
run = "echo code > code.txt; echo more >> docs.txt"

[[task]]
id = "check"
deps = ["code"]
isolation = "readonly"
run = "test -f code.txt"
"#;

#[test]
fn a_run_whose_tasks_all_merge_says_so_in_every_output() {
    let repo = TestRepo::new();
    let plan = repo.plan("merged.toml", ALL_MERGED);
    let files = exports(&repo);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let run = run_named(&repo, &plan, "merged", &files);
    run.assert_code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(repo.show("swarm/merged", "docs.txt"), "docs\nmore");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "all_merged_stderr",
            redact(&stable_stderr(&run.stderr), &repo)
        );
        insta::assert_snapshot!("all_merged_markdown", redact(&markdown_of(&repo), &repo));
        insta::assert_snapshot!("all_merged_junit", redact(&junit_of(&repo), &repo));
    });
}

/// Tasks that fail each their own way, none merged, so that the order of
/// the lines is the plan's: an exit code with an error on stderr (and the
/// dependent it blocks), a timeout, a failed `verify`.
const FAILING: &str = r#"[swarm]
on_failure = "continue"

[[task]]
id = "build"
run = "echo compiling; echo 'error[E0308]: mismatched types' >&2; exit 101"

[[task]]
id = "test"
deps = ["build"]
run = "true"

[[task]]
id = "slow"
timeout = "1s"
run = "echo waiting; sleep 30"

[[task]]
id = "checked"
run = "echo built > built.txt"
verify = "echo checking; echo 'expected 2, got 3' >&2; exit 4"
"#;

#[test]
fn a_failed_task_is_reported_with_its_reason_and_log_in_every_output() {
    let repo = TestRepo::new();
    let plan = repo.plan("failing.toml", FAILING);
    let files = exports(&repo);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let run = run_named(
        &repo,
        &plan,
        "failing",
        &[&["--grace", "200ms"], &files[..]].concat(),
    );
    run.assert_code(1);
    assert!(!repo.has_rev("refs/swarm/failing/test"));
    assert!(repo.has_rev("refs/swarm/failing/checked"));
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("failed_stderr", redact(&stable_stderr(&run.stderr), &repo));
        insta::assert_snapshot!("failed_markdown", redact(&markdown_of(&repo), &repo));
        insta::assert_snapshot!("failed_junit", redact(&junit_of(&repo), &repo));
    });
}

#[test]
fn a_conflict_is_reported_with_where_with_whom_and_the_next_step() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "conflict.toml",
        r#"[swarm]
on_failure = "continue"

[[task]]
id = "left"
run = "echo left > same.txt"

[[task]]
id = "right"
run = "echo right > same.txt; echo ok > other.txt"
on_conflict = "stop"
"#,
    );
    let run = run_named(&repo, &plan, "conflict", &[]);
    run.assert_code(1);
    assert!(repo.has_rev("refs/swarm/conflict/right"));
    assert_eq!(repo.show("swarm/conflict", "same.txt"), "left");
    // The summary: the live lines are `outputs`' (and a dependent of
    // `right` could start from its result before its merge conflicts, or
    // not: the failed run's snapshot has a blocked dependent).
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("conflict_summary", redact(summary_of(&run.stderr), &repo));
    });
}

#[test]
fn an_interrupted_run_says_how_to_resume_it_in_every_output() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "stopped.toml",
        r#"[[task]]
id = "first"
run = "echo first > first.txt"

[[task]]
id = "slow"
deps = ["first"]
run = "echo started > started.txt; sleep 30"

[[task]]
id = "after"
deps = ["slow"]
run = "true"
"#,
    );
    let files = exports(&repo);
    let mut args = vec![
        "run",
        plan.to_str().unwrap(),
        "--name",
        "stopped",
        "-j",
        "1",
        "--sandbox",
        "none",
        "--grace",
        "200ms",
    ];
    args.extend(files.iter().map(String::as_str));
    let child = repo
        .swarm_cmd(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = repo.worktree("stopped", "slow").join("started.txt");
    // Its content, not just the file: the shell creates it before writing.
    wait_until("the slow task to start", || {
        std::fs::read_to_string(&started).is_ok_and(|s| s == "started\n")
    });
    signal(&child, nix::sys::signal::Signal::SIGINT);
    let run: Run = child.wait_with_output().unwrap().into();
    run.assert_code(130);
    assert_eq!(repo.show("swarm/stopped", "first.txt"), "first");
    assert_eq!(
        repo.show("refs/swarm/stopped/slow", "started.txt"),
        "started"
    );
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "interrupted_stderr",
            redact(&stable_stderr(&run.stderr), &repo)
        );
        insta::assert_snapshot!("interrupted_markdown", redact(&markdown_of(&repo), &repo));
    });
}

#[test]
fn warnings_are_reported_in_every_output() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "warned.toml",
        r#"[[task]]
id = "noop"
run = "true"

[[task]]
id = "build"
deps = ["noop"]
run = "mkdir -p target/debug && touch target/debug/app target/debug/app.d && echo fn > lib.rs"
"#,
    );
    // A change the run does not see.
    repo.write("README.md", "# edited, not committed\n");
    let files = exports(&repo);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let run = run_named(&repo, &plan, "warned", &files);
    run.assert_code(0);
    assert!(repo.has_rev("refs/swarm/warned/noop"));
    assert_eq!(repo.show("swarm/warned", "README.md"), "# test repo");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "warnings_stderr",
            redact(&stable_stderr(&run.stderr), &repo)
        );
        insta::assert_snapshot!("warnings_markdown", redact(&markdown_of(&repo), &repo));
        insta::assert_snapshot!("warnings_junit", redact(&junit_of(&repo), &repo));
    });
}

#[test]
fn quiet_prints_only_the_summary_and_in_it_only_what_did_not_succeed() {
    let repo = TestRepo::new();
    let plan = repo.plan("outputs.toml", PLAN);
    let run = repo.run_plan(&plan, &["-q", "--name", "quiet", "--grace", "200ms"]);
    run.assert_code(1);
    // Nothing before the summary: no live line, no table of every task.
    assert!(run.stderr.starts_with("\nrun quiet: "), "{}", run.stderr);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("quiet_stderr", redact(&run.stderr, &repo));
    });

    // A run where everything succeeds: the totals, no table.
    let fine = repo.plan(
        "fine.toml",
        "[[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n\n[[task]]\nid = \"b\"\nrun = \"echo b > b.txt\"\n",
    );
    let run = repo.run_plan(&fine, &["-q", "--name", "fine"]);
    run.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("quiet_all_merged", redact(&run.stderr, &repo));
    });
}
