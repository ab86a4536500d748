//! `swarm resume`: a run whose coordinator was killed (kill -9) at random
//! points, or cancelled, continues to the same result as an uninterrupted
//! run, without re-running finished tasks or losing any work.

use std::collections::BTreeSet;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{TestRepo, redact, signal, snapshot_settings, wait_until};

/// Seven tasks: parallel roots, a diamond, a chain, a read-only check.
const PLAN: &str = r#"
[swarm]
concurrency = 2
on_failure = "continue"

[[task]]
id = "a"
run = "sleep 0.05; echo a > a.txt"

[[task]]
id = "b"
run = "echo b > b.txt; sleep 0.08"

[[task]]
id = "c"
run = "sleep 0.03; echo c > c.txt"

[[task]]
id = "d"
deps = ["a", "b"]
run = "cat a.txt b.txt > d.txt; sleep 0.02"

[[task]]
id = "e"
deps = ["c", "d"]
run = "cat c.txt d.txt > e.txt"

[[task]]
id = "f"
deps = ["a"]
run = "echo more >> a.txt"

[[task]]
id = "g"
deps = ["e", "f"]
isolation = "readonly"
run = "grep -q more a.txt && test -f e.txt"
"#;

/// A small deterministic generator, so a failing trial can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

pub(crate) fn journal(repo: &TestRepo, run: &str) -> Vec<Value> {
    let path = repo.path().join(format!(".swarm/runs/{run}/events.jsonl"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn tree(repo: &TestRepo, run: &str) -> String {
    repo.git(&["rev-parse", &format!("swarm/{run}^{{tree}}")])
}

fn start(repo: &TestRepo, args: &[&str]) -> Child {
    repo.swarm_cmd(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// How many times the journal `events` say task `id` started.
pub(crate) fn started(events: &[Value], id: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event"] == "task_started" && e["task"] == id)
        .count()
}

pub(crate) fn kill9(child: &mut Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

/// Tasks the journal says had finished (any final status, or succeeded).
fn finished(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| e["event"] == "task_finished")
        .map(|e| e["task"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kill_9_at_random_points_then_resume_gives_the_uninterrupted_result() {
    let repo = TestRepo::new();
    let plan = repo.plan("r.toml", PLAN);
    let plan = plan.to_str().unwrap();
    repo.swarm(&["run", plan, "--name", "reference"])
        .assert_code(0);
    let expected = tree(&repo, "reference");
    let full = {
        let t = Instant::now();
        repo.swarm(&["run", plan, "--name", "timing"])
            .assert_code(0);
        t.elapsed()
    };

    let mut rng = Lcg(0x5eed);
    let mut resumed = 0;
    // Where kills land: the run's time as measured, shortened each time a
    // kill came after the end (the first run may have been timed on a
    // machine busier than the later ones).
    let mut span = full.as_millis() as u64;
    // At least 50 trials, and more (up to 100) until 25 of them needed a
    // resume: a kill before the first journal line or after the run's end
    // needs none, and how many land there depends on the machine's timing.
    for trial in 0..100 {
        if trial >= 50 && resumed >= 25 {
            break;
        }
        let run = format!("t{trial}");
        let delay = Duration::from_millis(rng.next(span + span / 4 + 10));
        let context = format!(
            "trial {trial}: kill -9 after {delay:?} (full run {full:?}, kills within {span} ms)"
        );
        let mut child = start(&repo, &["run", plan, "--name", &run]);
        std::thread::sleep(delay);
        kill9(&mut child);
        let before = journal(&repo, &run);
        if before.is_empty() {
            // Killed before it wrote anything: nothing to resume; run it.
            assert!(repo.swarm(&["resume", &run]).code != 0, "{context}");
            continue;
        }
        let done_before = finished(&before);
        let ended = before.iter().any(|e| e["event"] == "run_finished");
        if ended {
            span = (span * 3 / 4).max(20);
        }
        // A third of the trials kill the resume too.
        if !ended && rng.next(3) == 0 {
            let mut again = start(&repo, &["resume", &run]);
            std::thread::sleep(Duration::from_millis(rng.next(span)));
            kill9(&mut again);
        }
        if !journal(&repo, &run)
            .iter()
            .any(|e| e["event"] == "run_finished")
        {
            let out = repo.swarm(&["resume", &run]);
            assert_eq!(out.code, 0, "{context}\n{}\n{}", out.stdout, out.stderr);
            resumed += 1;
        }
        assert_eq!(tree(&repo, &run), expected, "{context}");

        let after = journal(&repo, &run);
        let first_resume = after
            .iter()
            .position(|e| e["event"] == "run_resumed")
            .unwrap_or(after.len());
        for e in &after[first_resume..] {
            if e["event"] == "task_started" {
                let task = e["task"].as_str().unwrap();
                assert!(
                    !done_before.contains(task),
                    "{context}: task {task} had finished but ran again"
                );
            }
        }
        // Every interrupted attempt's work is on a ref of its own.
        for e in &after {
            if e["event"] == "run_resumed" {
                for task in e["restarted"].as_array().unwrap() {
                    let task = task.as_str().unwrap();
                    if task == "g" {
                        continue; // read-only: nothing to keep
                    }
                    let refs = repo.git(&[
                        "for-each-ref",
                        "--format=%(refname)",
                        &format!("refs/swarm/{run}/{task}.*"),
                    ]);
                    assert!(
                        !refs.is_empty(),
                        "{context}: no ref kept for interrupted {task}"
                    );
                }
            }
        }
    }
    assert!(resumed >= 25, "only {resumed} trials needed a resume");
}

#[test]
fn a_second_coordinator_on_a_run_is_refused() {
    let repo = TestRepo::new();
    let plan = repo.plan("slow.toml", "[[task]]\nid = \"slow\"\nrun = \"sleep 20\"\n");
    let mut child = start(&repo, &["run", plan.to_str().unwrap()]);
    wait_until("the run to start its task", || {
        journal(&repo, "slow")
            .iter()
            .any(|e| e["event"] == "task_started")
    });
    let second = repo.swarm(&["resume", "slow"]);
    kill9(&mut child);
    second.assert_code(2);
    // The process named is the coordinator's own.
    let said = second
        .stderr
        .replace(&format!("(pid {})", child.id()), "(pid [COORDINATOR])");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&said, &repo), @"error: failed to drive run `slow`: another swarm process (pid [COORDINATOR]) is driving it; wait for it to end, or stop it"));
}

#[test]
fn a_cancelled_run_resumes_its_cancelled_tasks() {
    let repo = TestRepo::new();
    // `slow` hangs on its first attempt only.
    let plan = repo.plan(
        "c.toml",
        "[[task]]\nid = \"quick\"\nrun = \"echo q > q.txt\"\n\n[[task]]\nid = \"slow\"\nrun = \"echo attempt $SWARM_ATTEMPT > s.txt; [ $SWARM_ATTEMPT -gt 1 ] || sleep 20\"\n\n[[task]]\nid = \"after\"\ndeps = [\"slow\"]\nrun = \"cat s.txt > after.txt\"\n",
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--grace", "200ms"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let progress = repo.worktree("c", "slow").join("s.txt");
    wait_until("the tasks to get going", || {
        !(!progress.exists() || !finished(&journal(&repo, "c")).contains("quick"))
    });
    signal(&child, nix::sys::signal::Signal::SIGINT);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let cancelled = repo.git(&["rev-parse", "refs/swarm/c/slow"]);

    // The plan file changes after the start: resume runs the saved copy.
    std::fs::write(&plan, "[[task]]\nid = \"other\"\nrun = \"true\"\n").unwrap();
    repo.swarm(&["resume"]).assert_code(0);
    let events = journal(&repo, "c");
    let starts = |task: &str| {
        events
            .iter()
            .filter(|e| e["event"] == "task_started" && e["task"] == task)
            .count()
    };
    assert_eq!(starts("quick"), 1, "a finished task ran again");
    assert_eq!(starts("slow"), 2);
    let r = events.iter().find(|e| e["event"] == "run_resumed").unwrap();
    let pending: Vec<&str> = r["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(pending, ["slow", "after"]);
    // `slow` was cancelled while it ran: it restarts, and is said to.
    assert_eq!(r["restarted"], serde_json::json!(["slow"]));
    assert_eq!(repo.show("swarm/c", "after.txt"), "attempt 2");
    assert_eq!(repo.show("swarm/c", "q.txt"), "q");
    // The cancelled attempt's work is kept on a ref of its own.
    assert_eq!(
        repo.git(&["rev-parse", "refs/swarm/c/slow.1^{tree}"]),
        repo.git(&["rev-parse", &format!("{cancelled}^{{tree}}")])
    );
    let report = repo.report();
    assert_eq!(report["exit_code"], 0);
}

#[test]
fn a_finished_run_resumed_again_says_so_and_ends_with_its_own_code() {
    // A CI retry of a step that passed must pass: the run is reported as
    // it ended, with its exit code, and a report a kill right after its
    // end left unwritten is written.
    let repo = TestRepo::new();
    let plan = repo.plan("done.toml", "[[task]]\nid = \"a\"\nrun = \"true\"\n");
    repo.run_plan(&plan, &[]).assert_code(0);
    let report = repo.path().join(".swarm/runs/done/report.json");
    let written = std::fs::read_to_string(&report).unwrap();
    std::fs::remove_file(&report).unwrap();
    let out = repo.swarm(&["resume"]);
    out.assert_code(0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&out.stderr, &repo), @r#"
    swarm: wrote the run's missing report, [TMP]/repo/.swarm/runs/done/report.json
    swarm: run done finished already (exit 0): nothing left to run; run the plan again with `swarm run`

    run done: succeeded
      task  status          time  try  changed  result
      a     merged         [T]s    1        0  refs/swarm/done/a

      1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/done at [HASH], [T]s
      warning: `a` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
    "#));
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let before: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(again, before);

    // A run that finished with a failure: its code, and how to retry.
    let failing = repo.plan(
        "failing.toml",
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"b\"\nrun = \"exit 3\"\n",
    );
    repo.run_plan(&failing, &[]).assert_code(1);
    let out = repo.swarm(&["resume", "failing"]);
    out.assert_code(1);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&out.stderr, &repo), @r#"
    warning: sandbox = "none": tasks of run `failing` run UNCONFINED, with your permissions and environment
    swarm: run failing finished already (exit 1): nothing left to run; after fixing the cause, `swarm resume failing --retry-failed` runs its failed tasks again

    run failing: finished with failures (exit 1)
      task  status          time  try  changed  result
      b     failed         [T]s    1        0  refs/swarm/failing/b

      0 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/failing at [HASH], [T]s
      b: exited with code 3
      b log: .swarm/runs/failing/logs/b/1.err
    "#));
}

/// A kill -9 in the first milliseconds of `swarm run`, at every delay from
/// 0 up: a run killed before its start was journaled ran nothing, `swarm
/// resume` says so, `swarm clean` removes all it left (nothing of it stays:
/// no directory, no lock, no ref, no branch) and the name is free again; a
/// run killed later resumes at once (the lock died with its holder) to the
/// uninterrupted result. No task process outlives it.
#[test]
fn a_kill_in_the_first_milliseconds_strands_nothing() {
    let repo = TestRepo::new();
    let marker = format!("early-kill-{}", std::process::id());
    let plan = repo.plan(
        "early.toml",
        &format!(
            r#"
[swarm]
concurrency = 2

[[task]]
id = "a"
run = "sleep 0.02; echo a > a.txt # {marker}"
creates = ["a.txt"]

[[task]]
id = "b"
run = "echo b > b.txt; sleep 0.03 # {marker}"
creates = ["b.txt"]

[[task]]
id = "c"
deps = ["a", "b"]
run = "cat a.txt b.txt > c.txt # {marker}"
creates = ["c.txt"]
"#
        ),
    );
    let plan = plan.to_str().unwrap();
    repo.swarm(&["run", plan, "--name", "reference"])
        .assert_code(0);
    let expected = tree(&repo, "reference");
    let mut stranded = 0;
    for (trial, ms) in (0..40).chain((40..200).step_by(10)).enumerate() {
        let run = format!("k{trial}");
        let context = format!("trial {trial}: kill -9 after {ms} ms");
        let mut child = start(&repo, &["run", plan, "--name", &run]);
        std::thread::sleep(Duration::from_millis(ms));
        kill9(&mut child);
        let events = journal(&repo, &run);
        if !events.iter().any(|e| e["event"] == "run_started") {
            stranded += 1;
            let resume = repo.swarm(&["resume", &run]);
            assert_eq!(resume.code, 2, "{context}\n{}", resume.stderr);
            assert!(
                resume
                    .stderr
                    .contains("stopped before its start was recorded")
                    || resume.stderr.contains("there is no such run"),
                "{context}\n{}",
                resume.stderr
            );
            if repo.path().join(format!(".swarm/runs/{run}")).exists() {
                repo.swarm(&["clean", &run]).assert_code(0);
            }
            assert!(
                !repo.path().join(format!(".swarm/runs/{run}")).exists(),
                "{context}: its directory stayed"
            );
            let refs = repo.git(&["for-each-ref", "--format=%(refname)"]);
            assert!(
                !refs.lines().any(|r| r.contains(&format!("/{run}"))),
                "{context}: refs stayed:\n{refs}"
            );
            // The name is free: the plan runs under it again.
            repo.swarm(&["run", plan, "--name", &run]).assert_code(0);
        } else if !events.iter().any(|e| e["event"] == "run_finished") {
            // At once: a lock still held by the dying coordinator is
            // waited for, not reported as driven by it.
            let out = repo.swarm(&["resume", &run]);
            assert_eq!(out.code, 0, "{context}\n{}\n{}", out.stdout, out.stderr);
        }
        assert_eq!(tree(&repo, &run), expected, "{context}");
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&marker) && !c.contains("--name"))
            .collect();
        assert!(left.is_empty(), "{context}: processes left: {left:?}");
    }
    assert!(stranded > 0, "no trial was killed before the run started");
    let fsck = repo.git_output(&["fsck", "--no-dangling"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
}

/// An integration branch git maintenance broke while the run was down (its
/// tip gone, as a `git gc --prune=now` beside an older swarm could leave
/// it) is made again at resume from the base and the merged tasks' refs,
/// says so, and the run ends with the tree an uninterrupted run gives.
#[test]
fn a_branch_broken_while_the_run_was_down_is_made_again_at_resume() {
    let repo = TestRepo::new();
    let mut toml = String::new();
    for i in 0..4 {
        // The last task hangs on its first attempt in run `lost` (in a slot
        // of its own beside the others'), so the kill below lands before
        // that run can end however slowly the merges go (a sleep alone
        // raced a loaded machine).
        let hang = if i == 3 {
            "; [ $SWARM_RUN != lost ] || [ $SWARM_ATTEMPT -gt 1 ] || sleep 60"
        } else {
            ""
        };
        toml += &format!(
            "[[task]]\nid = \"t{i}\"\nrun = \"echo {i} > f{i}.txt; sleep 0.4{hang}\"\ncreates = [\"f{i}.txt\"]\n\n"
        );
    }
    let plan = repo.plan("lost.toml", &toml);
    let plan = plan.to_str().unwrap();
    repo.swarm(&["run", plan, "--name", "reference", "-j", "2"])
        .assert_code(0);
    let expected = tree(&repo, "reference");
    let mut child = start(&repo, &["run", plan, "--name", "lost", "-j", "2"]);
    wait_until("three merges and the last task started", || {
        let events = journal(&repo, "lost");
        events
            .iter()
            .filter(|e| e["event"] == "task_merged")
            .count()
            == 3
            && started(&events, "t3") == 1
    });
    kill9(&mut child);
    assert!(
        !journal(&repo, "lost")
            .iter()
            .any(|e| e["event"] == "run_finished")
    );
    // A ref to a commit the object store no longer has.
    std::fs::write(
        repo.path().join(".git/refs/heads/swarm/lost"),
        "1111111111111111111111111111111111111111\n",
    )
    .unwrap();
    let resumed = repo.swarm(&["resume", "lost"]);
    resumed.assert_code(0);
    // What the resume says of the run (not the tasks' lines and the
    // summary, nor how many tasks are left or were cut off running: where
    // the kill landed, and which of two equally long tasks starts first,
    // differ from run to run). The tip written above is named so that `redact` keeps it apart
    // from the hashes it hides.
    let said: String = resumed
        .stderr
        .lines()
        .filter(|l| l.starts_with("swarm: "))
        .map(|l| {
            l.replace(
                "1111111111111111111111111111111111111111",
                "[THE TIP WRITTEN ABOVE]",
            ) + "\n"
        })
        .collect();
    let mut settings = snapshot_settings();
    settings.add_filter(
        r"resuming: \d+ tasks? to run(?: \(\d+ restarted from a clean worktree, their partial work kept\))?",
        "resuming: [N] tasks to run[, any cut off running restarted]",
    );
    settings.bind(|| insta::assert_snapshot!(redact(&said, &repo), @"
    swarm: run lost: 4 tasks, up to 2 at once, from HEAD ([HASH]) into branch swarm/lost
    swarm: the integration branch was broken (its tip [THE TIP WRITTEN ABOVE] is missing): made again from the base and the merged tasks' refs
    swarm: resuming: [N] tasks to run[, any cut off running restarted]
    "));
    assert_eq!(tree(&repo, "lost"), expected);
    let resumed_event = journal(&repo, "lost")
        .into_iter()
        .find(|e| e["event"] == "run_resumed")
        .unwrap();
    assert!(resumed_event["rebuilt"].is_string(), "{resumed_event}");
    // Every object the branch needs is there (its reflog still names the
    // lost tip, as it would after a prune: that is git's to expire).
    let fsck = repo.git_output(&["fsck", "--no-dangling", "--no-reflogs"]);
    let said =
        String::from_utf8_lossy(&fsck.stderr).into_owned() + &String::from_utf8_lossy(&fsck.stdout);
    assert!(
        said.lines()
            .all(|l| l.contains("reflog") || l.trim().is_empty()),
        "{said}"
    );
}
