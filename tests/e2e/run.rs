//! `swarm run` on real repositories: order, parallelism, failures,
//! conflicts, matrices, verify, retries, timeouts, and what is kept.

use std::time::{Duration, Instant};

use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task};

const HEADER: &str = "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n";

fn plan(repo: &TestRepo, body: &str) -> std::path::PathBuf {
    repo.plan("p.toml", &format!("{HEADER}{body}"))
}

#[test]
fn dependents_see_their_dependencies_results_and_everything_merges() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        r#"
[defaults]
warm = false

[[task]]
id = "a"
run = "echo from-a > a.txt"

[[task]]
id = "b"
run = "echo from-b > b.txt"

[[task]]
id = "c"
deps = ["a", "b"]
run = "cat a.txt b.txt > c.txt"
"#,
    );
    repo.run_plan(&p, &[]).assert_code(0);
    assert_eq!(repo.show("swarm/p", "c.txt"), "from-a\nfrom-b");
    assert_eq!(repo.show("swarm/p", "a.txt"), "from-a");
    assert_eq!(repo.show("refs/swarm/p/a", "a.txt"), "from-a");
    // The user's own branch and working tree are untouched.
    assert!(!repo.path().join("a.txt").exists());
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert_eq!(repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]), "main");

    let report = repo.report();
    assert_eq!(report["exit_code"], 0);
    for id in ["a", "b", "c"] {
        assert_eq!(task(&report, id)["status"], "merged", "{id}");
    }
    assert_eq!(
        task(&report, "c")["changed_files"],
        serde_json::json!(["c.txt"])
    );
    // Successful tasks' worktrees are gone, and git knows it.
    assert_eq!(repo.git(&["worktree", "list"]).lines().count(), 1);
}

#[test]
fn independent_tasks_run_in_parallel_within_the_concurrency_limit() {
    let repo = TestRepo::new();
    let log = repo.outside().join("log");
    let mut body = String::new();
    for i in 0..6 {
        body.push_str(&format!(
            "[[task]]\nid = \"t{i}\"\nrun = \"echo + >> {log}; sleep 0.4; echo - >> {log}\"\n\n",
            log = log.display()
        ));
    }
    let p = plan(&repo, &body);
    let started = Instant::now();
    repo.run_plan(&p, &["--concurrency", "3"]).assert_code(0);
    let elapsed = started.elapsed();

    let (mut now, mut peak) = (0i32, 0i32);
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        now += if line == "+" { 1 } else { -1 };
        peak = peak.max(now);
    }
    assert_eq!(peak, 3, "expected exactly 3 tasks at once at the peak");
    // Six 0.4 s tasks, three at a time: two waves, far from six in a row.
    assert!(
        elapsed < Duration::from_millis(6 * 400),
        "took {elapsed:?}: not parallel"
    );
}

#[test]
fn a_failure_blocks_dependents_and_keeps_the_failed_work_on_its_ref() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        r#"
[[task]]
id = "broken"
run = "echo half-done > work.txt; echo oops >&2; exit 3"

[[task]]
id = "after"
deps = ["broken"]
run = "true"

[[task]]
id = "after-after"
deps = ["after"]
run = "true"

[[task]]
id = "unrelated"
run = "echo fine > fine.txt"
"#,
    );
    let run = repo.run_plan(&p, &[]);
    run.assert_code(1);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run p: finished with failures (exit 1)
          task         status          time  try  changed  result
          broken       failed         [T]s    1        1  refs/swarm/p/broken
          after        blocked            -    0        0  dependency `broken` failed
          after-after  blocked            -    0        0  dependency `broken` failed
          unrelated    merged         [T]s    1        1  refs/swarm/p/unrelated

          1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 2 blocked or skipped, 0 cancelled
          branch swarm/p at [HASH], [T]s
          broken: exited with code 3
          broken log: .swarm/runs/p/logs/broken/1.err
        "));

    // Nothing lost: the failed attempt's file is committed on its ref.
    assert_eq!(repo.show("refs/swarm/p/broken", "work.txt"), "half-done");
    let report = repo.report();
    let broken = task(&report, "broken");
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["exit_code"], 3);
    let log = std::fs::read_to_string(broken["stderr_log"].as_str().unwrap()).unwrap();
    assert_eq!(log, "oops\n");
    assert_eq!(task(&report, "after")["status"], "blocked");
    assert_eq!(task(&report, "after-after")["status"], "blocked");
    assert_eq!(task(&report, "unrelated")["status"], "merged");
    assert_eq!(repo.show("swarm/p", "fine.txt"), "fine");
    assert!(!repo.has_rev("swarm/p:work.txt"));
    // The failed worktree is kept for inspection, clean against its snapshot.
    let kept = repo.worktree("p", "broken");
    assert!(kept.join("work.txt").exists());
}

#[test]
fn on_failure_stop_starts_nothing_new() {
    let repo = TestRepo::new();
    let p = repo.plan(
        "stop.toml",
        "[swarm]\nsandbox = \"none\"\nconcurrency = 1\n\n[[task]]\nid = \"first\"\nrun = \"exit 1\"\n\n[[task]]\nid = \"second\"\nrun = \"touch second\"\n",
    );
    repo.run_plan(&p, &[]).assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "first")["status"], "failed");
    assert_eq!(task(&report, "second")["status"], "skipped");
    assert_eq!(task(&report, "second")["attempts"], 0);
}

#[test]
fn a_conflict_is_reported_and_both_sides_survive() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        r#"
[[task]]
id = "left"
run = "echo left > README.md"

[[task]]
id = "right"
run = "echo right > README.md"
on_conflict = "stop"

[[task]]
id = "needs-right"
deps = ["right"]
run = "true"
"#,
    );
    let run = repo.run_plan(&p, &[]);
    run.assert_code(1);
    let report = repo.report();
    // Merge order is plan order among independent tasks: left wins.
    assert_eq!(task(&report, "left")["status"], "merged");
    let right = task(&report, "right");
    assert_eq!(right["status"], "conflicted");
    assert_eq!(right["conflict_files"], serde_json::json!(["README.md"]));
    assert_eq!(task(&report, "needs-right")["status"], "blocked");
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run p: finished with failures (exit 1)
          task         status          time  try  changed  result
          left         merged         [T]s    1        1  refs/swarm/p/left
          right        conflicted     [T]s    1        1  conflict in README.md
          needs-right  blocked        [T]s    1        0  refs/swarm/p/needs-right

          1 merged, 0 succeeded (read-only), 0 failed, 1 conflicted, 1 blocked or skipped, 0 cancelled
          branch swarm/p at [HASH], [T]s
          right: conflict in README.md line 1 with left
          right: next step: git switch swarm/p && git merge refs/swarm/p/right, fix, commit, then `swarm resolve p right` (see `swarm resolve --help`)
        "));
    assert_eq!(repo.show("swarm/p", "README.md"), "left");
    assert_eq!(repo.show("refs/swarm/p/left", "README.md"), "left");
    assert_eq!(repo.show("refs/swarm/p/right", "README.md"), "right");
}

#[test]
fn matrix_tasks_expand_with_substitution() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        r#"
[[task]]
id = "gen-{lang}-{n}"
run = "echo $GREETING > out-{lang}-{n}.txt"
env = { GREETING = "hello {lang} {n}" }
matrix = { lang = ["en", "fr"], n = [1, 2] }

[[task]]
id = "all"
deps = ["gen-{lang}-{n}"]
run = "ls out-*.txt | wc -l | tr -d ' ' > count.txt"
"#,
    );
    repo.run_plan(&p, &[]).assert_code(0);
    for (lang, n) in [("en", 1), ("en", 2), ("fr", 1), ("fr", 2)] {
        assert_eq!(
            repo.show("swarm/p", &format!("out-{lang}-{n}.txt")),
            format!("hello {lang} {n}")
        );
    }
    assert_eq!(repo.show("swarm/p", "count.txt"), "4");
    let report = repo.report();
    assert_eq!(task(&report, "all")["deps"].as_array().unwrap().len(), 4);
}

#[test]
fn verify_failure_fails_the_task() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "[[task]]\nid = \"v\"\nrun = \"echo draft > doc.txt\"\nverify = \"grep -q final doc.txt\"\n",
    );
    let run = repo.run_plan(&p, &[]);
    run.assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "v")["status"], "failed");
    assert_eq!(
        task(&report, "v")["reason"],
        r#"verify "grep -q final doc.txt" exited with code 1, see .swarm/runs/p/logs/v/1.verify.err (and .verify.out)"#
    );
    assert_eq!(repo.show("refs/swarm/p/v", "doc.txt"), "draft");
}

#[test]
fn retries_start_clean_and_keep_every_attempt() {
    let repo = TestRepo::new();
    let counter = repo.outside().join("count");
    let p = plan(
        &repo,
        &format!(
            "[[task]]\nid = \"flaky\"\nretries = 2\nrun = \"\"\"\ntest -e leftover && exit 9\necho x >> {c}; touch leftover\necho attempt-$SWARM_ATTEMPT > result.txt\n[ $(wc -l < {c}) -ge 2 ]\n\"\"\"\n",
            c = counter.display()
        ),
    );
    repo.run_plan(&p, &[]).assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "flaky")["attempts"], 2);
    assert_eq!(task(&report, "flaky")["status"], "merged");
    assert_eq!(repo.show("refs/swarm/p/flaky.1", "result.txt"), "attempt-1");
    assert_eq!(repo.show("swarm/p", "result.txt"), "attempt-2");
}

#[test]
fn a_timeout_kills_the_whole_process_tree() {
    let repo = TestRepo::new();
    let marker = repo.outside().join("survivor");
    let p = plan(
        &repo,
        &format!(
            "[[task]]\nid = \"slow\"\ntimeout = \"500ms\"\nrun = \"echo partial > partial.txt; (sleep 2; touch {m}) & sleep 30\"\n",
            m = marker.display()
        ),
    );
    let started = Instant::now();
    repo.run_plan(&p, &["--grace", "200ms"]).assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(10));
    let report = repo.report();
    assert_eq!(task(&report, "slow")["status"], "timed_out");
    assert_eq!(repo.show("refs/swarm/p/slow", "partial.txt"), "partial");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !marker.exists(),
        "a background child outlived its timed-out task"
    );
}

#[test]
fn background_children_die_with_their_task() {
    let repo = TestRepo::new();
    let marker = repo.outside().join("late");
    let p = plan(
        &repo,
        &format!(
            "[[task]]\nid = \"bg\"\nrun = \"(sleep 1; touch {m}) & echo done\"\n",
            m = marker.display()
        ),
    );
    repo.run_plan(&p, &[]).assert_code(0);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!marker.exists());
}

#[test]
fn a_task_that_changes_nothing_records_that() {
    let repo = TestRepo::new();
    let p = plan(&repo, "[[task]]\nid = \"noop\"\nrun = \"cat README.md\"\n");
    repo.run_plan(&p, &[]).assert_code(0);
    let report = repo.report();
    let noop = task(&report, "noop");
    assert_eq!(noop["changed_files"], serde_json::json!([]));
    assert_eq!(noop["commit"], report["base_commit"]);
    assert_eq!(report["integration_commit"], report["base_commit"]);
}

#[test]
fn snapshots_store_symlinks_deletions_and_dotfiles_without_following_links() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "[[task]]\nid = \"s\"\nrun = \"ln -s /etc/passwd link; git rm -q docs/guide.txt; echo x > .hidden; mkdir -p build; echo junk > build/out; echo build/ > .gitignore\"\n",
    );
    repo.run_plan(&p, &[]).assert_code(0);
    let tree = repo.git(&["ls-tree", "-r", "swarm/p"]);
    // The link as a link (mode 120000), the dotfile, the deletion
    // (no docs/guide.txt), no ignored build/out.
    insta::assert_snapshot!(redact(&tree, &repo), @"
    100644 blob [HASH]	.gitignore
    100644 blob [HASH]	.hidden
    100644 blob [HASH]	README.md
    120000 blob [HASH]	link
    100644 blob [HASH]	src/lib.txt
    ");
    assert_eq!(repo.show("swarm/p", "link"), "/etc/passwd");
}

#[test]
fn paths_check_out_only_what_the_task_needs_and_lose_nothing_else() {
    let repo = TestRepo::new();
    let seen = repo.outside().join("seen");
    let p = plan(
        &repo,
        &format!(
            "[[task]]\nid = \"narrow\"\npaths = [\"src\"]\nsparse = true\ncreates = [\"extra.txt\"]\nrun = \"find . -path ./.git -prune -o -type f -print | sort > {s}; echo edited >> src/lib.txt; echo new > extra.txt\"\n",
            s = seen.display()
        ),
    );
    repo.run_plan(&p, &[]).assert_code(0);
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "./src/lib.txt\n");
    assert_eq!(repo.show("swarm/p", "src/lib.txt"), "fn main\nedited");
    assert_eq!(repo.show("swarm/p", "README.md"), "# test repo");
    assert_eq!(repo.show("swarm/p", "docs/guide.txt"), "guide");
    assert_eq!(repo.show("swarm/p", "extra.txt"), "new");
}

#[test]
fn readonly_tasks_share_a_checkout_and_merge_nothing() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "[defaults]\nisolation = \"readonly\"\n\n[[task]]\nid = \"lint\"\nrun = \"test -f README.md && pwd > $TMPDIR/where\"\n\n[[task]]\nid = \"shard-{n}\"\nrun = \"grep -q main src/lib.txt\"\nmatrix = { n = [1, 2, 3] }\n",
    );
    repo.run_plan(&p, &[]).assert_code(0);
    let report = repo.report();
    for id in ["lint", "shard-1", "shard-2", "shard-3"] {
        assert_eq!(task(&report, id)["status"], "succeeded", "{id}");
        assert!(task(&report, id)["ref"].is_null());
    }
    assert_eq!(report["integration_commit"], report["base_commit"]);
    assert!(repo.git(&["for-each-ref", "refs/swarm"]).is_empty());
    assert_eq!(
        repo.git(&["worktree", "list"]).lines().count(),
        1,
        "shared checkout not removed"
    );
}

#[test]
fn running_the_same_plan_twice_keeps_both_runs() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"echo $SWARM_RUN > run.txt\"\n",
    );
    repo.run_plan(&p, &[]).assert_code(0);
    repo.run_plan(&p, &[]).assert_code(0);
    assert_eq!(repo.show("swarm/p", "run.txt"), "p");
    assert_eq!(repo.show("swarm/p-2", "run.txt"), "p-2");
    // An explicit name that is taken is an error, with nothing changed.
    let before = repo.swarm_traces();
    repo.run_plan(&p, &["--name", "p"]).assert_code(2);
    assert_eq!(repo.swarm_traces(), before);
}

#[test]
fn status_agrees_with_the_report_file() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"touch a\"\n\n[[task]]\nid = \"b\"\nrun = \"exit 1\"\n",
    );
    repo.run_plan(&p, &[]).assert_code(1);
    let from_status = repo.report();
    let file = std::fs::read_to_string(repo.path().join(".swarm/runs/p/report.json")).unwrap();
    let from_file: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(from_status, from_file);
    let human = repo.swarm(&["status"]);
    human.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&human.stdout, &repo), @"

    run p: finished with failures (exit 1)
      task  status          time  try  changed  result
      a     merged         [T]s    1        1  refs/swarm/p/a
      b     failed         [T]s    1        0  refs/swarm/p/b

      1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/p at [HASH], [T]s
      b: exited with code 1
      b log: .swarm/runs/p/logs/b/1.err
    ")
    });
}

#[test]
fn sigint_cancels_running_tasks_and_keeps_their_work() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "[[task]]\nid = \"long\"\nrun = \"echo started > p.tmp && mv p.tmp progress.txt; sleep 30\"\n\n[[task]]\nid = \"later\"\ndeps = [\"long\"]\nrun = \"true\"\n",
    );
    let mut child = repo
        .swarm_cmd(&["run", p.to_str().unwrap(), "--grace", "300ms"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the task has written its file.
    let progress = repo.worktree("p", "long").join("progress.txt");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !progress.exists() {
        assert!(Instant::now() < deadline, "task never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let report = repo.report();
    assert_eq!(task(&report, "long")["status"], "cancelled");
    assert_eq!(task(&report, "later")["status"], "blocked");
    assert_eq!(repo.show("refs/swarm/p/long", "progress.txt"), "started");
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"true\"\n\n[[task]]\nid = \"b-1\"\ndeps = [\"a\"]\nrun = \"true\"\n",
    );
    let dot = repo.swarm(&["graph", p.to_str().unwrap()]);
    dot.assert_code(0);
    insta::assert_snapshot!("graph_dot", dot.stdout);
    let mermaid = repo.swarm(&["graph", p.to_str().unwrap(), "--format", "mermaid"]);
    mermaid.assert_code(0);
    insta::assert_snapshot!("graph_mermaid", mermaid.stdout);
}

#[test]
fn from_a_linked_worktree_head_is_that_worktrees_head() {
    let repo = TestRepo::new();
    let linked = repo.root().join("linked");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "feature",
        linked.to_str().unwrap(),
    ]);
    std::fs::write(linked.join("feature.txt"), "feature\n").unwrap();
    repo.git_in(&linked, &["add", "feature.txt"]);
    repo.git_in(&linked, &["commit", "-qm", "feature"]);
    let p = plan(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"cat feature.txt > seen.txt\"\n",
    );
    let mut cmd = repo.swarm_cmd(&["run", p.to_str().unwrap()]);
    cmd.current_dir(&linked);
    let run: crate::support::Run = cmd.output().unwrap().into();
    run.assert_code(0);
    assert_eq!(repo.show("swarm/p", "seen.txt"), "feature");
    // Run state lives with the main worktree.
    assert!(repo.path().join(".swarm/runs/p/report.json").exists());
}

#[test]
fn the_longest_remaining_chain_starts_first() {
    let repo = TestRepo::new();
    // With one slot, `lone` (first in the plan, nothing after it) must wait
    // for `head` and `middle`, which have longer chains behind them; once
    // `lone` and `tail` are level (one task each), plan order decides.
    let p = repo.plan(
        "order.toml",
        "[swarm]\nsandbox = \"none\"\nconcurrency = 1\n\n[[task]]\nid = \"lone\"\nrun = \"true\"\n\n[[task]]\nid = \"head\"\nrun = \"true\"\n\n[[task]]\nid = \"middle\"\ndeps = [\"head\"]\nrun = \"true\"\n\n[[task]]\nid = \"tail\"\ndeps = [\"middle\"]\nrun = \"true\"\n",
    );
    repo.run_plan(&p, &[]).assert_code(0);
    let journal =
        std::fs::read_to_string(repo.path().join(".swarm/runs/order/events.jsonl")).unwrap();
    let started: Vec<String> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "task_started")
        .map(|e| e["task"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(started, ["head", "middle", "lone", "tail"]);
}

/// The tasks of run `run` in the order they started, from its journal.
fn start_order(repo: &TestRepo, run: &str) -> Vec<String> {
    let journal =
        std::fs::read_to_string(repo.path().join(format!(".swarm/runs/{run}/events.jsonl")))
            .unwrap();
    journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "task_started")
        .map(|e| e["task"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_second_run_starts_the_longest_chain_in_time_first() {
    let repo = TestRepo::new();
    // One slot. `slow` is one long task, last in the plan; `c1 -> c2 ->
    // c3` is a chain of three instant ones. Counted in tasks (the first
    // run, with no history) the chain is longer and starts first; in the
    // time the first run measured, `slow` is, and the second run starts
    // it first. Neither plan order nor the count would put `slow` first.
    let p = repo.plan(
        "order.toml",
        "[swarm]\nsandbox = \"none\"\nconcurrency = 1\n\n\
         [[task]]\nid = \"c1\"\nrun = \"true\"\n\n\
         [[task]]\nid = \"c2\"\ndeps = [\"c1\"]\nrun = \"true\"\n\n\
         [[task]]\nid = \"c3\"\ndeps = [\"c2\"]\nrun = \"true\"\n\n\
         [[task]]\nid = \"slow\"\nrun = \"sleep 1.5\"\n",
    );
    let history = repo.path().join(".swarm/durations.json");
    assert!(!history.exists());
    repo.run_plan(&p, &["--name", "first"]).assert_code(0);
    assert_eq!(start_order(&repo, "first"), ["c1", "c2", "c3", "slow"]);
    let text = std::fs::read_to_string(&history).unwrap();
    let kept: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = kept["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{text}");
    let slow = entries.iter().find(|e| e["task"] == "slow").unwrap();
    assert!(slow["ms"][0].as_u64().unwrap() >= 1500, "{text}");

    repo.run_plan(&p, &["--name", "second"]).assert_code(0);
    assert_eq!(start_order(&repo, "second"), ["slow", "c1", "c2", "c3"]);

    // Deleting the file forgets: the order by count again.
    std::fs::remove_file(&history).unwrap();
    repo.run_plan(&p, &["--name", "third"]).assert_code(0);
    assert_eq!(start_order(&repo, "third"), ["c1", "c2", "c3", "slow"]);
}

#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    use std::io::BufRead;
    let repo = TestRepo::new();
    // A graph far larger than a pipe's buffer.
    // (three matrices: one may have at most 10,000 combinations)
    let values = (0..10000)
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let tasks: String = ["t", "u", "v"]
        .iter()
        .map(|t| {
            format!("[[task]]\nid = \"{t}-{{n}}\"\nrun = \"true\"\nmatrix = {{ n = [{values}] }}\n")
        })
        .collect();
    let p = plan(&repo, &tasks);
    let mut child = repo
        .swarm_cmd(&["graph", p.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone now, like `swarm graph | head -1`.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(first.starts_with("digraph"), "{first}");
}
