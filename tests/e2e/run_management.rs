//! Managing runs (issue 15 §3): `swarm runs`, `swarm clean --refs` and the
//! integration branch, read-only runs without a branch, `swarm run --only`,
//! `swarm resume --retry-failed` and `swarm resolve` after a conflict.

use serde_json::Value;

use crate::support::{TestRepo, redact, snapshot_settings, stable_stderr, summary_of, task};

const HEADER: &str = "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n";

fn plan(repo: &TestRepo, name: &str, tasks: &str) -> String {
    repo.plan(name, &format!("{HEADER}{tasks}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// Rewrites run `run`'s journal line by line.
fn edit_journal(repo: &TestRepo, run: &str, f: impl Fn(&str) -> Option<String>) {
    let path = repo.path().join(format!(".swarm/runs/{run}/events.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text.lines().filter_map(f).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

fn journal(repo: &TestRepo, run: &str) -> Vec<Value> {
    let path = repo.path().join(format!(".swarm/runs/{run}/events.jsonl"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `swarm runs`, which prints local times, in UTC (the hermetic
/// environment has no TZ, and tasks are not given one).
fn runs_in_utc(repo: &TestRepo) -> crate::support::Run {
    repo.swarm_cmd(&["runs"])
        .env("TZ", "UTC")
        .output()
        .unwrap()
        .into()
}

#[test]
fn runs_lists_every_run_newest_first_with_its_state_counts_and_branch() {
    let repo = TestRepo::new();
    let empty = repo.swarm(&["runs"]);
    empty.assert_code(0);
    assert_eq!(
        empty.stdout,
        "no runs yet (start one with `swarm run PLAN`)\n"
    );
    assert_eq!(repo.swarm(&["runs", "--json"]).stdout, "[]\n");

    let ok = plan(
        &repo,
        "ok.toml",
        "[[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n",
    );
    let bad = plan(
        &repo,
        "bad.toml",
        "[[task]]\nid = \"good\"\nrun = \"echo g > g.txt\"\n\n[[task]]\nid = \"bad\"\nrun = \"exit 3\"\n\n[[task]]\nid = \"after\"\ndeps = [\"bad\"]\nrun = \"true\"\n",
    );
    repo.swarm(&["run", &ok, "--name", "first"]).assert_code(0);
    repo.swarm(&["run", &bad, "--name", "second"])
        .assert_code(1);
    repo.swarm(&["run", &ok, "--name", "third"]).assert_code(0);
    repo.swarm(&["run", &ok, "--name", "fourth"]).assert_code(0);
    // The journal's times have milliseconds; runs started within one are
    // told apart by a later start time written here.
    for (run, ts) in [
        ("first", "2026-01-01T10:00:00.000Z"),
        ("second", "2026-01-01T11:00:00.000Z"),
        ("third", "2026-01-01T12:00:00.000Z"),
        ("fourth", "2026-01-01T13:00:00.000Z"),
    ] {
        edit_journal(&repo, run, |l| {
            Some(if l.contains("\"run_started\"") {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v["ts"] = ts.into();
                v.to_string()
            } else {
                l.to_string()
            })
        });
    }
    // `third` was cancelled; `fourth`'s coordinator died.
    edit_journal(&repo, "third", |l| {
        Some(l.replace("\"exit_code\":0", "\"exit_code\":130"))
    });
    edit_journal(&repo, "fourth", |l| {
        (!l.contains("\"run_finished\"")).then(|| l.to_string())
    });
    repo.git(&["branch", "-D", "swarm/first"]);

    let list = runs_in_utc(&repo);
    list.assert_code(0);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", list.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["run", "state", "started", "merged/failed/total", "branch"]
    );
    // In UTC; the age depends on today's date.
    let row = |i: usize| -> String {
        let mut text = lines[i].split_whitespace().collect::<Vec<_>>().join(" ");
        let open = text.find('(').unwrap();
        let close = text.find(" ago)").unwrap();
        text.replace_range(open..close + 5, "(AGE)");
        text
    };
    assert_eq!(
        row(1),
        "fourth interrupted 2026-01-01 13:00 (AGE) 1/0/1 swarm/fourth"
    );
    assert_eq!(
        row(2),
        "third stopped 2026-01-01 12:00 (AGE) 1/0/1 swarm/third"
    );
    assert_eq!(
        row(3),
        "second failed 2026-01-01 11:00 (AGE) 1/1/3 swarm/second"
    );
    assert_eq!(row(4), "first finished ok 2026-01-01 10:00 (AGE) 1/0/1 -");

    let json: Value = serde_json::from_str(&repo.swarm(&["runs", "--json"]).stdout).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fourth", "third", "second", "first"]);
    let second = &json[2];
    assert_eq!(second["state"], "failed");
    assert_eq!(second["started_at"], "2026-01-01T11:00:00.000Z");
    assert_eq!(
        (&second["merged"], &second["failed"], &second["total"]),
        (&Value::from(1), &Value::from(1), &Value::from(3))
    );
    assert_eq!(second["branch"], "swarm/second");
    assert_eq!(second["exit_code"], 1);
    assert_eq!(json[3]["branch"], Value::Null);
    assert!(json[3]["age_secs"].is_u64());

    // A run directory whose coordinator died before its first event is
    // named on stderr, not listed.
    std::fs::create_dir_all(repo.path().join(".swarm/runs/ghost")).unwrap();
    std::fs::write(repo.path().join(".swarm/runs/ghost/events.jsonl"), "").unwrap();
    let with_ghost = repo.swarm(&["runs"]);
    with_ghost.assert_code(0);
    assert_eq!(
        with_ghost.stdout.lines().count(),
        5,
        "{}",
        with_ghost.stdout
    );
    insta::assert_snapshot!("runs_empty_journal", redact(&with_ghost.stderr, &repo));

    // The same decision as `swarm status`.
    let status = repo.swarm(&["status", "fourth"]);
    crate::support::snapshot_settings().bind(|| {
        insta::assert_snapshot!("status_interrupted_run", redact(&status.stdout, &repo));
    });
    let _ = task;
}

/// `swarm runs` and `swarm status` as a user reads them: every state of a
/// run in the list, and the summary of a failed run.
#[test]
fn runs_and_status_print_what_a_user_reads() {
    let repo = TestRepo::new();
    let ok = plan(
        &repo,
        "ok.toml",
        "[[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n",
    );
    let bad = plan(
        &repo,
        "bad.toml",
        "[[task]]\nid = \"good\"\nrun = \"echo g > g.txt\"\n\n[[task]]\nid = \"bad\"\nrun = \"echo 'no space left' >&2; exit 3\"\n\n[[task]]\nid = \"after\"\ndeps = [\"bad\"]\nrun = \"true\"\n",
    );
    let ro = plan(
        &repo,
        "ro.toml",
        "[[task]]\nid = \"check\"\nisolation = \"readonly\"\nrun = \"true\"\n",
    );
    repo.swarm(&["run", &ok, "--name", "first"]).assert_code(0);
    repo.swarm(&["run", &bad, "--name", "second", "-j", "1"])
        .assert_code(1);
    repo.swarm(&["run", &ok, "--name", "third"]).assert_code(0);
    repo.swarm(&["run", &ok, "--name", "fourth"]).assert_code(0);
    repo.swarm(&["run", &ro, "--name", "checks"]).assert_code(0);
    // Started hours apart (the list's ages are then whole hours), newest
    // last; the dates themselves are today's, filtered.
    let now = std::time::SystemTime::now();
    for (hours, run) in [
        (5, "first"),
        (4, "second"),
        (3, "third"),
        (2, "fourth"),
        (1, "checks"),
    ] {
        let ts = humantime::format_rfc3339_millis(
            now - std::time::Duration::from_secs(hours * 3600 + 60),
        )
        .to_string();
        edit_journal(&repo, run, |l| {
            Some(if l.contains("\"run_started\"") {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v["ts"] = ts.as_str().into();
                v.to_string()
            } else {
                l.to_string()
            })
        });
    }
    // `third` was cancelled; `fourth`'s coordinator died.
    edit_journal(&repo, "third", |l| {
        Some(l.replace("\"exit_code\":0", "\"exit_code\":130"))
    });
    edit_journal(&repo, "fourth", |l| {
        (!l.contains("\"run_finished\"")).then(|| l.to_string())
    });
    repo.git(&["branch", "-D", "swarm/first"]);

    let runs = runs_in_utc(&repo);
    runs.assert_code(0);
    assert_eq!(runs.stderr, "");
    let status = repo.swarm(&["status", "second"]);
    status.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("runs_table", redact(&runs.stdout, &repo));
        insta::assert_snapshot!("status_failed", redact(&status.stdout, &repo));
    });
}

#[test]
fn clean_refs_deletes_the_branch_only_when_its_tip_is_on_another_branch() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "b.toml",
        "[[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n",
    );
    repo.swarm(&["run", &p, "--name", "r"]).assert_code(0);
    let tip = repo.git(&["rev-parse", "swarm/r"]);

    // Merged nowhere: kept, and said so, with how to force it.
    // The task ref of a merged task goes, as before.
    let kept = repo.swarm(&["clean", "r", "--refs"]);
    kept.assert_code(0);
    assert!(repo.has_rev("swarm/r"));
    assert!(!repo.has_rev("refs/swarm/r/a"));
    // The tip's hash is named (and checked) as [TIP].
    let shown = |out: &str, tip: &str| redact(&out.replace(&tip[..10], "[TIP]"), &repo);

    // Merged into main: deleted, with the hash that brings it back.
    repo.git(&["merge", "-q", "--ff-only", "swarm/r"]);
    let deleted = repo.swarm(&["clean", "r", "--refs"]);
    deleted.assert_code(0);
    assert!(!repo.has_rev("refs/heads/swarm/r"));
    assert_eq!(repo.git(&["rev-parse", "main"]), tip);

    // Never the branch checked out in the main worktree, even forced.
    repo.swarm(&["run", &p, "--name", "s"]).assert_code(0);
    repo.git(&["switch", "-q", "swarm/s"]);
    let checked_out = repo.swarm(&["clean", "s", "--refs", "--force"]);
    checked_out.assert_code(0);
    assert!(repo.has_rev("swarm/s"));
    repo.git(&["switch", "-q", "main"]);
    // Nor one checked out in a linked worktree.
    let linked = repo.root().join("linked");
    repo.git(&["worktree", "add", "-q", linked.to_str().unwrap(), "swarm/s"]);
    let out = repo.swarm(&["clean", "s", "--refs", "--force"]);
    assert!(
        out.stdout
            .contains("  kept branch swarm/s: it is checked out"),
        "{}",
        out.stdout
    );
    repo.git(&["worktree", "remove", linked.to_str().unwrap()]);
    // Forced, an unmerged branch goes, its hash printed.
    let s_tip = repo.git(&["rev-parse", "swarm/s"]);
    let forced = repo.swarm(&["clean", "s", "--refs", "--force"]);
    forced.assert_code(0);
    assert!(!repo.has_rev("refs/heads/swarm/s"));
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("clean_refs_kept_unmerged_branch", shown(&kept.stdout, &tip));
        insta::assert_snapshot!(
            "clean_refs_deleted_merged_branch",
            shown(&deleted.stdout, &tip)
        );
        insta::assert_snapshot!(
            "clean_refs_kept_checked_out_branch",
            redact(&checked_out.stdout, &repo)
        );
        insta::assert_snapshot!("clean_refs_forced", shown(&forced.stdout, &s_tip));
    });
    // --force means nothing without --refs.
    repo.swarm(&["clean", "s", "--force"]).assert_code(2);
}

#[test]
fn a_run_of_read_only_tasks_creates_no_branch() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "ro.toml",
        "[[task]]\nid = \"check\"\nisolation = \"readonly\"\nrun = \"test -f README.md\"\n\n[[task]]\nid = \"lint\"\nisolation = \"readonly\"\ndeps = [\"check\"]\nrun = \"grep -q test README.md\"\n",
    );
    // `-j 2`: the header says how many at once (else the CPU count).
    let run = repo.swarm(&["run", &p, "--name", "ro", "-j", "2"]);
    run.assert_code(0);
    assert!(!repo.has_rev("refs/heads/swarm/ro"));
    let status = repo.swarm(&["status", "ro"]);
    status.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "read_only_run_stderr",
            redact(&stable_stderr(&run.stderr), &repo)
        );
        insta::assert_snapshot!("read_only_status", redact(&status.stdout, &repo));
    });
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.path().join(".swarm/runs/ro/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["integration_branch"], Value::Null);
    let runs: Value = serde_json::from_str(&repo.swarm(&["runs", "--json"]).stdout).unwrap();
    assert_eq!(runs[0]["branch"], Value::Null);
    // An interrupted read-only run resumes without a branch.
    edit_journal(&repo, "ro", |l| {
        let cut = l.contains("\"run_finished\"")
            || (l.contains("\"task_finished\"") && l.contains("\"lint\""));
        (!cut).then(|| l.to_string())
    });
    repo.swarm(&["resume", "ro"]).assert_code(0);
    assert!(!repo.has_rev("refs/heads/swarm/ro"));
    // A run with one task that writes has its branch, as before.
    let mixed = plan(
        &repo,
        "mixed.toml",
        "[[task]]\nid = \"check\"\nisolation = \"readonly\"\nrun = \"true\"\n\n[[task]]\nid = \"w\"\nrun = \"echo w > w.txt\"\n",
    );
    repo.swarm(&["run", &mixed, "--name", "mixed"])
        .assert_code(0);
    assert_eq!(repo.show("swarm/mixed", "w.txt"), "w");
}

const RETRY: &str = "[[task]]\nid = \"ok\"\nrun = \"echo ok > ok.txt\"\n\n[[task]]\nid = \"flaky\"\nrun = \"echo try > flaky.txt; test -f FIXED\"\n\n[[task]]\nid = \"after\"\ndeps = [\"flaky\"]\nrun = \"cat flaky.txt > after.txt\"\n\n[[task]]\nid = \"other\"\nrun = \"exit 5\"\n";

#[test]
fn run_only_runs_the_named_tasks_and_their_dependencies() {
    let repo = TestRepo::new();
    let p = plan(&repo, "only.toml", &RETRY.replace("FIXED", "README.md"));
    let run = repo.swarm(&["run", &p, "--name", "o", "--only", "after"]);
    run.assert_code(0);
    let report = repo.report();
    let ids: Vec<&str> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["flaky", "after"]);
    assert_eq!(repo.show("swarm/o", "after.txt"), "try");
    assert!(!repo.has_rev("refs/swarm/o/ok"));

    // An unknown id is invalid input, with a suggestion; nothing starts.
    let bad = repo.swarm(&["run", &p, "--name", "bad", "--only", "ok,aftr"]);
    bad.assert_code(2);
    insta::assert_snapshot!("only_unknown_task", redact(&bad.stderr, &repo));
    assert!(!repo.path().join(".swarm/runs/bad").exists());

    // Resuming such a run runs its own tasks, not the whole plan's.
    edit_journal(&repo, "o", |l| {
        let cut =
            l.contains("\"run_finished\"") || (l.contains("\"task_") && l.contains("\"after\""));
        (!cut).then(|| l.to_string())
    });
    repo.swarm(&["resume", "o"]).assert_code(0);
    assert_eq!(task(&repo.report(), "after")["status"], "merged");
    assert_eq!(repo.report()["tasks"].as_array().unwrap().len(), 2);
}

#[test]
fn resume_retry_failed_reruns_failed_tasks_and_what_they_blocked_in_the_same_run() {
    let repo = TestRepo::new();
    let fixed = repo.outside().join("fixed");
    let p = plan(
        &repo,
        "retry.toml",
        &RETRY.replace("FIXED", fixed.to_str().unwrap()),
    );
    repo.swarm(&["run", &p, "--name", "r"]).assert_code(1);
    let before = repo.report();
    assert_eq!(task(&before, "flaky")["status"], "failed");
    assert_eq!(task(&before, "after")["status"], "blocked");
    let tip = repo.git(&["rev-parse", "swarm/r"]);

    // A finished run is not resumed without asking for the retry: it is
    // reported as it ended, with its own exit code.
    let plain = repo.swarm(&["resume", "r"]);
    plain.assert_code(1);
    // Only failed tasks can be named, and names are checked.
    let merged = repo.swarm(&["resume", "r", "--retry-failed", "--only", "ok"]);
    merged.assert_code(2);
    let typo = repo.swarm(&["resume", "r", "--retry-failed", "--only", "flakey"]);
    typo.assert_code(2);
    let without = repo.swarm(&["resume", "r", "--only", "flaky"]);
    without.assert_code(2);
    let refusals: String = [
        ("swarm resume r", &plain),
        ("swarm resume r --retry-failed --only ok", &merged),
        ("swarm resume r --retry-failed --only flakey", &typo),
        ("swarm resume r --only flaky", &without),
    ]
    .iter()
    .map(|(command, out)| format!("$ {command}\n{}\n", out.stderr))
    .collect();
    // Times filtered: the finished run's summary is part of it.
    crate::support::snapshot_settings().bind(|| {
        insta::assert_snapshot!("resume_refusals", redact(&refusals, &repo));
    });

    // The cause is fixed; only `flaky` is retried (`other` still fails).
    std::fs::write(&fixed, "").unwrap();
    // `-j 2`: the header says how many at once (else the CPU count).
    let again = repo.swarm(&[
        "resume",
        "r",
        "--retry-failed",
        "--only",
        "flaky",
        "-j",
        "2",
    ]);
    again.assert_code(1);
    crate::support::snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "retry_failed_only",
            redact(&crate::support::stable_stderr(&again.stderr), &repo)
        );
    });
    let report = repo.report();
    assert_eq!(task(&report, "flaky")["status"], "merged");
    assert_eq!(task(&report, "flaky")["attempts"], 2);
    assert_eq!(task(&report, "after")["status"], "merged");
    assert_eq!(task(&report, "ok")["attempts"], 1);
    assert_eq!(task(&report, "other")["status"], "failed");
    // From the integration branch as it was: its history goes on.
    repo.git(&["merge-base", "--is-ancestor", &tip, "swarm/r"]);
    assert_eq!(repo.show("swarm/r", "after.txt"), "try");
    assert_eq!(repo.show("swarm/r", "ok.txt"), "ok");
    // The failed attempt is kept; `ok` was not run again.
    assert_eq!(repo.show("refs/swarm/r/flaky.1", "flaky.txt"), "try");
    let events = journal(&repo, "r");
    let starts = |id: &str| {
        events
            .iter()
            .filter(|e| e["event"] == "task_started" && e["task"] == id)
            .count()
    };
    assert_eq!((starts("ok"), starts("flaky"), starts("other")), (1, 2, 1));
    let resumed: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "run_resumed")
        .collect();
    assert_eq!(
        resumed.last().unwrap()["retried"],
        serde_json::json!(["flaky"])
    );

    // Then the rest: `other` is retried (and fails again, attempt 2). Its
    // worktree was cleaned away: its first result is kept from its ref.
    repo.swarm(&["clean", "r"]).assert_code(0);
    let first = repo.git(&["rev-parse", "refs/swarm/r/other"]);
    let rest = repo.swarm(&["resume", "r", "--retry-failed"]);
    rest.assert_code(1);
    assert_eq!(repo.git(&["rev-parse", "refs/swarm/r/other.1"]), first);
    assert_eq!(task(&repo.report(), "other")["attempts"], 2);
    assert_eq!(task(&repo.report(), "flaky")["attempts"], 2);
}

#[test]
fn resolve_records_a_conflict_merged_by_hand_and_resume_runs_its_dependents_from_it() {
    let repo = TestRepo::new();
    let p = repo.plan(
        "c.toml",
        // `left` ends last, so `after` runs (and is blocked at its merge)
        // before `right`'s merge conflicts.
        &format!(
            "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\nconcurrency = 2\n\n{}",
            "[[task]]\nid = \"left\"\nrun = \"sleep 1; echo left > same.txt\"\n\n[[task]]\nid = \"right\"\nrun = \"echo right > same.txt\"\non_conflict = \"stop\"\n\n[[task]]\nid = \"after\"\ndeps = [\"right\"]\nrun = \"cat same.txt > after.txt\"\n"
        ),
    );
    let p = p.to_str().unwrap();
    let run = repo.swarm(&["run", p, "--name", "c"]);
    run.assert_code(1);
    // The conflict report says where, with whom, and what to do; the
    // blocked dependent is named as what a resolved conflict lets run.
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "resolve_conflict_summary",
            redact(summary_of(&run.stderr), &repo)
        );
    });
    let right = task(&repo.report(), "right").clone();
    assert_eq!(
        right["conflict_hunks"],
        serde_json::json!([{"path": "same.txt", "start": 1, "end": 1}])
    );
    assert_eq!(
        right["reason"],
        "conflicts with the integration branch in same.txt, also changed by left"
    );
    assert_eq!(right["conflict_with"], serde_json::json!(["left"]));
    let after = task(&repo.report(), "after").clone();
    assert_eq!(
        (&after["status"], &after["attempts"]),
        (&"blocked".into(), &1.into())
    );
    let help = repo.swarm(&["resolve", "--help"]);
    assert!(
        help.stdout.contains("git merge refs/swarm/RUN/TASK"),
        "{}",
        help.stdout
    );

    // Before the merge: what to do.
    let early = repo.swarm(&["resolve", "c", "right"]);
    early.assert_code(2);
    let merged = repo.swarm(&["resolve", "c", "left"]);
    merged.assert_code(2);
    let typo = repo.swarm(&["resolve", "c", "rigth"]);
    typo.assert_code(2);
    let refusals: String = [
        ("swarm resolve c right", &early),
        ("swarm resolve c left", &merged),
        ("swarm resolve c rigth", &typo),
    ]
    .iter()
    .map(|(command, out)| format!("$ {command}\n{}\n", out.stderr))
    .collect();
    insta::assert_snapshot!("resolve_refusals", redact(&refusals, &repo));

    // The user merges by hand, in a worktree of their own.
    let fix = repo.root().join("fix");
    repo.git(&["worktree", "add", "-q", fix.to_str().unwrap(), "swarm/c"]);
    let merge = repo.git_output_in(&fix, &["merge", "-q", "refs/swarm/c/right"]);
    assert!(!merge.status.success(), "the merge should conflict");
    std::fs::write(fix.join("same.txt"), "resolved\n").unwrap();
    repo.git_in(&fix, &["commit", "-q", "-am", "merge right by hand"]);
    repo.git(&["worktree", "remove", fix.to_str().unwrap()]);
    let merged_tip = repo.git(&["rev-parse", "swarm/c"]);

    let ok = repo.swarm(&["resolve", "c", "right"]);
    ok.assert_code(0);
    assert_eq!(
        ok.stdout,
        format!(
            "task right of run c: recorded as merged by your commit {}\n`swarm resume c` runs the 1 task it blocked, from your merge: after\n",
            &merged_tip[..10]
        )
    );
    let recorded = journal(&repo, "c");
    let last = recorded.last().unwrap();
    assert_eq!(last["event"], "task_merged");
    assert_eq!(last["resolved"], true);
    assert_eq!(last["integration_commit"], merged_tip.as_str());
    assert_eq!(task(&repo.report(), "right")["status"], "merged");
    let status = repo.swarm(&["status", "c"]);
    crate::support::snapshot_settings().bind(|| {
        insta::assert_snapshot!("status_after_resolve", redact(&status.stdout, &repo));
    });
    // Twice is refused: it is merged now.
    repo.swarm(&["resolve", "c", "right"]).assert_code(2);

    repo.swarm(&["resume", "c"]).assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "after")["status"], "merged");
    assert_eq!(report["exit_code"], 0);
    // The dependent started from the user's merge: it saw the fix. Its
    // first result (blocked at its merge) is kept.
    assert_eq!(repo.show("swarm/c", "after.txt"), "resolved");
    assert_eq!(repo.show("refs/swarm/c/after.1", "after.txt"), "right");
    repo.git(&["merge-base", "--is-ancestor", &merged_tip, "swarm/c"]);
}

#[test]
fn squash_history_gives_one_commit_per_task_and_leaves_task_refs_alone() {
    let repo = TestRepo::new();
    let p = repo.plan(
        "s.toml",
        "[swarm]\nsandbox = \"none\"\nhistory = \"squash\"\nconcurrency = 1\n\n\
         [[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n\n\
         [[task]]\nid = \"b\"\ndeps = [\"a\"]\nrun = \"echo more >> a.txt\"\n\n\
         [[task]]\nid = \"c\"\nrun = \"echo c > c.txt\"\n\n\
         [[task]]\nid = \"noop\"\nrun = \"true\"\n",
    );
    repo.run_plan(&p, &["--name", "s"]).assert_code(0);
    let base = repo.git(&["rev-parse", "main"]);
    // Linear: one parent each, one commit per task that changed something.
    let log = repo.git(&["log", "--format=%P %s", &format!("{base}..swarm/s")]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    for line in &lines {
        let (parents, _) = line.split_once(" swarm: ").unwrap();
        assert_eq!(parents.split(' ').count(), 1, "{log}");
    }
    let subjects: Vec<&str> = lines.iter().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(
        subjects,
        [
            "swarm: squash s/c",
            "swarm: squash s/b",
            "swarm: squash s/a"
        ]
    );
    // A dependent's change lands on top of its dependency's, without a
    // conflict (each commit holds its task's own changes).
    assert_eq!(repo.show("swarm/s", "a.txt"), "a\nmore");
    assert_eq!(repo.show("swarm/s", "c.txt"), "c");
    assert_eq!(task(&repo.report(), "noop")["status"], "merged");
    // Task refs are the tasks' snapshots, as with merges: not on the branch.
    assert_eq!(repo.show("refs/swarm/s/b", "a.txt"), "a\nmore");
    let on_branch = repo
        .git_output(&["merge-base", "--is-ancestor", "refs/swarm/s/a", "swarm/s"])
        .status
        .success();
    assert!(!on_branch);

    // A crash after the branch moved but before the journal said so: the
    // resumed run takes the squash commit as the task's merge.
    edit_journal(&repo, "s", |l| {
        let cut = l.contains("\"run_finished\"")
            || (l.contains("\"task_merged\"") && l.contains("\"task\":\"c\""))
            || (l.contains("\"task_") && l.contains("\"noop\""));
        (!cut).then(|| l.to_string())
    });
    repo.swarm(&["resume", "s"]).assert_code(0);
    let merged_c = journal(&repo, "s")
        .iter()
        .filter(|e| e["event"] == "task_merged" && e["task"] == "c")
        .count();
    assert_eq!(merged_c, 0, "c was merged again");
    assert_eq!(
        repo.git(&["rev-list", "--count", &format!("{base}..swarm/s")]),
        "3"
    );
}
