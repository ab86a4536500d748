//! The run-wide verify (`[swarm] verify`): run on the integration branch
//! after merges, sandboxed in a read-only checkout; a failure is
//! attributed to one merge by bisection, that task is `broke-verify`, its
//! merge (and those of its merged dependents) taken out, its ref kept.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::resume::{journal, kill9};
use crate::support::{TestRepo, task, wait_until};

/// Fails (naming the file) when any `.txt` file holds `BAD`.
const VERIFY: &str = "if grep -l BAD *.txt; then exit 1; fi";

fn plan(repo: &TestRepo, name: &str, swarm: &str, tasks: &str) -> std::path::PathBuf {
    repo.plan_exact(
        &format!("{name}.toml"),
        &format!(
            "[swarm]\nname = \"{name}\"\non_failure = \"continue\"\nverify = \"{VERIFY}\"\n{swarm}\n\n[defaults]\ntimeout = \"60s\"\n\n{tasks}"
        ),
    )
}

/// `n` tasks `t1`..`tn`, each creating its own file; `bad` writes BAD.
fn writers(n: usize, bad: usize) -> String {
    (1..=n)
        .map(|i| {
            let word = if i == bad { "BAD" } else { "ok" };
            format!("[[task]]\nid = \"t{i}\"\ncreates = [\"t{i}.txt\"]\nrun = \"echo {word} > t{i}.txt\"\n\n")
        })
        .collect()
}

/// The journal's `run_verified` events.
fn verified(repo: &TestRepo, run: &str) -> Vec<Value> {
    journal(repo, run)
        .into_iter()
        .filter(|e| e["event"] == "run_verified")
        .collect()
}

fn purposes(runs: &[Value]) -> Vec<String> {
    runs.iter()
        .map(|r| r["purpose"].as_str().unwrap().to_string())
        .collect()
}

/// The files of the branch's tip.
fn files(repo: &TestRepo, rev: &str) -> BTreeSet<String> {
    repo.git(&["ls-tree", "--name-only", rev])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn run_verify_catches_a_bad_merge_among_8_by_bisection_and_takes_it_out() {
    let repo = TestRepo::new();
    let tasks = format!(
        "{}[[task]]\nid = \"after5\"\ndeps = [\"t5\"]\ncreates = [\"after5.txt\"]\nrun = \"echo ok > after5.txt\"\n",
        writers(8, 5)
    );
    let out = repo.run_plan(&plan(&repo, "v", "", &tasks), &[]);
    out.assert_code(1);
    let report = repo.report();

    // The culprit: broke-verify, its work kept on its ref, its merge gone.
    let t5 = task(&report, "t5");
    assert_eq!(t5["status"], "broke_verify", "{report}");
    let why = t5["reason"].as_str().unwrap();
    assert!(why.contains("broke the run-wide verify"), "{why}");
    assert!(why.contains("refs/swarm/v/t5"), "{why}");
    assert_eq!(repo.show("refs/swarm/v/t5", "t5.txt").trim(), "BAD");
    // Its dependent was merged before the verify, and is taken out with it.
    let after = task(&report, "after5");
    assert_eq!(after["status"], "blocked", "{report}");
    assert!(
        after["reason"].as_str().unwrap().contains("`t5`"),
        "{after}"
    );
    assert!(repo.has_rev("refs/swarm/v/after5"));
    // The seven others are merged, and nothing of t5 is on the branch.
    let mut want: BTreeSet<String> = (1..=8)
        .filter(|&i| i != 5)
        .map(|i| format!("t{i}.txt"))
        .collect();
    want.insert("README.md".into());
    for i in [1, 2, 3, 4, 6, 7, 8] {
        assert_eq!(task(&report, &format!("t{i}"))["status"], "merged", "t{i}");
    }
    let have = files(&repo, "swarm/v");
    assert!(want.is_subset(&have), "{have:?}");
    assert!(
        !have.contains("t5.txt") && !have.contains("after5.txt"),
        "{have:?}"
    );
    let log = repo.git(&["log", "--format=%B", "swarm/v"]);
    assert!(!log.contains("Swarm-Task: t5\n"), "{log}");
    assert!(log.contains("Swarm-Task: t8\n"), "{log}");
    assert_eq!(
        report["integration_commit"],
        repo.git(&["rev-parse", "swarm/v"])
    );

    // O(log n) verifies: the tip, three probes among 9 merges (4, 6, 5),
    // and the proof: the branch rebuilt without t5, which passes.
    let runs = verified(&repo, "v");
    assert_eq!(
        purposes(&runs),
        ["tip", "bisect", "bisect", "bisect", "proof"]
    );
    let after: Vec<&str> = runs.iter().map(|r| r["after"].as_str().unwrap()).collect();
    assert_eq!(after, ["after5", "t4", "t6", "t5", "t5"]);
    let verdicts: Vec<bool> = runs
        .iter()
        .map(|r| r["passed"].as_bool().unwrap())
        .collect();
    assert_eq!(verdicts, [false, true, false, false, true]);
    // The failing run's log names the file; its tail is in the event.
    assert!(
        runs[0]["tail"].as_str().unwrap().contains("t5.txt"),
        "{}",
        runs[0]
    );
    let broken: Vec<Value> = journal(&repo, "v")
        .into_iter()
        .filter(|e| e["event"] == "verify_broken")
        .collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0]["task"], "t5");
    assert_eq!(broken[0]["unmerged"], serde_json::json!(["after5"]));
    assert_eq!(broken[0]["commit"], runs[3]["commit"]);
    assert_eq!(broken[0]["passed_commit"], runs[1]["commit"]);

    // The summary says it, and where the log is.
    assert!(out.stderr.contains("broke-verify"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("verify: 5 runs (4 to find what broke it"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("the branch passes"), "{}", out.stderr);
    // The checkout it ran in is gone.
    let home = repo.worktree_home().join("v");
    assert!(!home.join(".readonly-verify").exists());
}

#[test]
fn run_verify_every_merge_blocks_a_culprits_dependents_before_they_start() {
    let repo = TestRepo::new();
    // `late` depends on t2 (bad) and on `slow`: by the time slow ends, the
    // verify after t2's merge has found t2, so `late` never starts.
    let tasks = format!(
        "{}[[task]]\nid = \"slow\"\ncreates = [\"slow.txt\"]\nrun = \"sleep 4 && echo ok > slow.txt\"\n\n[[task]]\nid = \"late\"\ndeps = [\"t2\", \"slow\"]\ncreates = [\"late.txt\"]\nrun = \"echo ok > late.txt\"\n",
        writers(3, 2)
    );
    let out = repo.run_plan(&plan(&repo, "m", "verify_every = \"merge\"", &tasks), &[]);
    out.assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "t2")["status"], "broke_verify", "{report}");
    let late = task(&report, "late");
    assert_eq!(late["status"], "blocked", "{report}");
    assert_eq!(late["attempts"], 0, "{late}");
    assert!(late["reason"].as_str().unwrap().contains("`t2`"), "{late}");
    for id in ["t1", "t3", "slow"] {
        assert_eq!(task(&report, id)["status"], "merged", "{id}");
    }
    let have = files(&repo, "swarm/m");
    assert!(
        have.contains("t3.txt") && have.contains("slow.txt"),
        "{have:?}"
    );
    assert!(!have.contains("t2.txt"), "{have:?}");
    // Found before the slow task ended: early, not at the end.
    let events = journal(&repo, "m");
    let at = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred).unwrap();
    let broken = at(&|e| e["event"] == "verify_broken");
    let slow_done = at(&|e| e["event"] == "task_finished" && e["task"] == "slow");
    assert!(broken < slow_done, "{events:?}");
    // The last verify is of the final tip, and it passes.
    let runs = verified(&repo, "m");
    let last = runs.last().unwrap();
    assert_eq!(last["commit"], report["integration_commit"]);
    assert_eq!(last["passed"], true);
}

#[test]
fn run_verify_failing_at_the_base_blames_no_task() {
    let repo = TestRepo::new();
    repo.write("base.txt", "BAD\n");
    repo.commit_all("a broken base");
    let out = repo.run_plan(&plan(&repo, "b", "", &writers(4, 0)), &[]);
    out.assert_code(1);
    let report = repo.report();
    for i in 1..=4 {
        assert_eq!(task(&report, &format!("t{i}"))["status"], "merged", "t{i}");
    }
    let runs = verified(&repo, "b");
    // The tip, the bisection down to the first merge, then the base.
    assert_eq!(purposes(&runs), ["tip", "bisect", "bisect", "base"]);
    assert!(runs.iter().all(|r| r["passed"] == false), "{runs:?}");
    assert!(
        journal(&repo, "b")
            .iter()
            .all(|e| e["event"] != "verify_broken")
    );
    assert!(
        out.stderr.contains("FAILS at the base") && out.stderr.contains("no task is blamed"),
        "{}",
        out.stderr
    );
}

#[test]
fn run_verify_interrupted_mid_bisection_resumes_without_asking_twice() {
    let repo = TestRepo::new();
    // Each verify takes a moment, so that the kill lands inside the search.
    let p = repo.plan_exact(
        "k.toml",
        &format!(
            "[swarm]\nname = \"k\"\non_failure = \"continue\"\nverify = \"sleep 1; {VERIFY}\"\n\n{}",
            writers(8, 3)
        ),
    );
    let mut child = repo
        .swarm_cmd(&["run", p.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("a probe of the bisection is journaled", || {
        verified(&repo, "k")
            .iter()
            .any(|r| r["purpose"] == "bisect")
    });
    kill9(&mut child);
    let out = repo.swarm(&["resume", "k"]);
    out.assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "t3")["status"], "broke_verify", "{report}");
    assert!(!files(&repo, "swarm/k").contains("t3.txt"));
    for i in [1, 2, 4, 5, 6, 7, 8] {
        assert_eq!(task(&report, &format!("t{i}"))["status"], "merged", "t{i}");
    }
    // No commit was verified twice: the resumed search used the verdicts
    // the journal had.
    let runs = verified(&repo, "k");
    let commits: BTreeSet<&str> = runs.iter().map(|r| r["commit"].as_str().unwrap()).collect();
    assert_eq!(commits.len(), runs.len(), "{runs:?}");
    // A second resume has nothing to do, and the branch stays as it is.
    let tip = repo.git(&["rev-parse", "swarm/k"]);
    repo.swarm(&["resume", "k"]).assert_code(1);
    assert_eq!(repo.git(&["rev-parse", "swarm/k"]), tip);
}
