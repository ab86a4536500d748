//! What users and CI systems see of a run: the human summary, the JSON
//! event stream, the JUnit report, the Markdown summary and `swarm logs`,
//! snapshotted for a run with a success, a failure, a conflict and a
//! blocked dependent.

use crate::support::{TestRepo, redact};

const PLAN: &str = r#"[swarm]
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
            r#""(duration_ms|snapshot_ms|started_at|finished_at)":("[^"]+"|\d+)"#,
            r#""$1":[X]"#,
        ),
        (r#"time="[0-9.]+""#, r#"time="[T]""#),
        (r#"timestamp="[^"]+""#, r#"timestamp="[T]""#),
        (r"\b\d+\.\d\ds\b", "[T]s"),
        (r"\b\d+m \d\ds\b", "[T]"),
    ]
}

/// `text`'s lines grouped by what `key` says they are about (a task), the
/// groups in the order of their first lines, each group's lines in their
/// own order. Merges run on the dispatcher's writer thread, so whether
/// `left`'s merge or `right`'s start is reported first differs from run to
/// run even one task at a time; each task's own story does not.
fn by_task(text: &str, key: impl Fn(&str) -> String) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        let k = key(line);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, lines)) => lines.push(line),
            None => groups.push((k, vec![line])),
        }
    }
    let lines: Vec<&str> = groups.into_iter().flat_map(|(_, l)| l).collect();
    lines.join("\n") + "\n"
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
