//! The run-wide verify (`[swarm] verify`): run on the integration branch
//! after merges, sandboxed in a read-only checkout; a failure is
//! attributed to one merge by bisection, that task is `broke-verify`, its
//! merge (and those of its merged dependents) taken out, its ref kept.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::resume::{journal, kill9};
use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task, wait_until};

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
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(why, &repo), @"its merge broke the run-wide verify `if grep -l BAD *.txt; then exit 1; fi`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it passes ([HASH]), see .swarm/runs/v/logs/@verify/6.err; its merge was taken out, its work is on refs/swarm/v/t5"));
    assert_eq!(repo.show("refs/swarm/v/t5", "t5.txt").trim(), "BAD");
    // Its dependent was merged before the verify, and is taken out with it.
    let after = task(&report, "after5");
    assert_eq!(after["status"], "blocked", "{report}");
    insta::assert_snapshot!(after["reason"].as_str().unwrap(), @"dependency `t5` broke the run-wide verify; its merge was taken out with it");
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
    // and the proof: the branch rebuilt without t5, which passes. The
    // tip's failure and the culprit's are run again before they count
    // (`verify_retries = 1`); a probe's steers the search as it is.
    let runs = verified(&repo, "v");
    assert_eq!(
        purposes(&runs),
        [
            "tip", "tip", "bisect", "bisect", "bisect", "bisect", "proof"
        ]
    );
    let after: Vec<&str> = runs.iter().map(|r| r["after"].as_str().unwrap()).collect();
    assert_eq!(after, ["after5", "after5", "t4", "t6", "t5", "t5", "t5"]);
    let verdicts: Vec<bool> = runs
        .iter()
        .map(|r| r["passed"].as_bool().unwrap())
        .collect();
    assert_eq!(verdicts, [false, false, true, false, false, false, true]);
    let attempts: Vec<u64> = runs
        .iter()
        .map(|r| r["attempt"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(attempts, [0, 1, 0, 0, 0, 1, 0]);
    // The failing run's log names the file; its tail is in the event.
    insta::assert_snapshot!(runs[0]["tail"].as_str().unwrap(), @"t5.txt");
    let broken: Vec<Value> = journal(&repo, "v")
        .into_iter()
        .filter(|e| e["event"] == "verify_broken")
        .collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0]["task"], "t5");
    assert_eq!(broken[0]["unmerged"], serde_json::json!(["after5"]));
    assert_eq!(broken[0]["commit"], runs[4]["commit"]);
    assert_eq!(broken[0]["passed_commit"], runs[2]["commit"]);

    // The summary says it, and where the log is.
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&out.stderr), &repo), @"
        run v: finished with failures (exit 1)
          task    status            time  try  changed  result
          t1      merged           [T]s    1        1  refs/swarm/v/t1
          t2      merged           [T]s    1        1  refs/swarm/v/t2
          t3      merged           [T]s    1        1  refs/swarm/v/t3
          t4      merged           [T]s    1        1  refs/swarm/v/t4
          t5      broke-verify     [T]s    1        1  refs/swarm/v/t5
          t6      merged           [T]s    1        1  refs/swarm/v/t6
          t7      merged           [T]s    1        1  refs/swarm/v/t7
          t8      merged           [T]s    1        1  refs/swarm/v/t8
          after5  blocked          [T]s    1        1  refs/swarm/v/after5

          7 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 1 blocked or skipped, 0 cancelled, 1 broke verify
          branch swarm/v at [HASH], [T]s
          verify: 7 runs (5 to find what broke it, [T]s); the branch passes
          t5: its merge broke the run-wide verify `if grep -l BAD *.txt; then exit 1; fi`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it passes ([HASH]), see .swarm/runs/v/logs/@verify/6.err; its merge was taken out, its work is on refs/swarm/v/t5
        "));
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
    insta::assert_snapshot!(late["reason"].as_str().unwrap(), @"dependency `t2` broke the run-wide verify");
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
    // The tip, the bisection down to the first merge, then the base: the
    // tip's failure and the base's run again before they count.
    assert_eq!(
        purposes(&runs),
        ["tip", "tip", "bisect", "bisect", "base", "base"]
    );
    assert!(runs.iter().all(|r| r["passed"] == false), "{runs:?}");
    assert!(
        journal(&repo, "b")
            .iter()
            .all(|e| e["event"] != "verify_broken")
    );
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&out.stderr), &repo), @"
        run b: finished with failures (exit 1)
          task  status          time  try  changed  result
          t1    merged         [T]s    1        1  refs/swarm/b/t1
          t2    merged         [T]s    1        1  refs/swarm/b/t2
          t3    merged         [T]s    1        1  refs/swarm/b/t3
          t4    merged         [T]s    1        1  refs/swarm/b/t4

          4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/b at [HASH], [T]s
          verify: 6 runs (4 to find what broke it, [T]s); it FAILS at the base [HASH] too, so no task is blamed; see .swarm/runs/b/logs/@verify/5.err
        "));
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
    // No commit was verified again but to reproduce a failure: the
    // resumed search used the verdicts the journal had.
    let runs = verified(&repo, "k");
    for commit in runs.iter().map(|r| r["commit"].as_str().unwrap()) {
        let of: Vec<&Value> = runs.iter().filter(|r| r["commit"] == commit).collect();
        let passes = of.iter().filter(|r| r["passed"] == true).count();
        assert!(passes <= 1 && of.len() - passes <= 2, "{commit}: {runs:?}");
        assert!(
            passes == 0 || of.last().unwrap()["passed"] == true,
            "{runs:?}"
        );
    }
    // A second resume has nothing to do, and the branch stays as it is.
    let tip = repo.git(&["rev-parse", "swarm/k"]);
    repo.swarm(&["resume", "k"]).assert_code(1);
    assert_eq!(repo.git(&["rev-parse", "swarm/k"]), tip);
}

/// The verify command of the tests below: the checks the commit holds
/// (`checks/*.py`), each run by its own python, as a test runner does.
const CHECKS: &str =
    "for f in checks/*.py; do [ -e \"$f\" ] || continue; python3 \"$f\" || exit 1; done\n";

/// Issue 73, finding 5: a later merge's code plants a startup hook in the
/// verify's HOME (python's `usercustomize.py`, which ends python with 1
/// unless the guilty task's file is there). Its own verify fails (it
/// breaks the branch with `a`); the bisection then probes the branch
/// without it. Each verify starts from a fresh, empty HOME, so the probe
/// of `a`'s merge passes, `b` is the one blamed, and `a` stays merged.
///
/// With the fix reverted (the HOME kept from one verify to the next), the
/// probe runs the hook and fails, the base passes, the branch rebuilt
/// without `a` passes: `a`'s merge is taken out and `b` lands.
#[test]
fn run_verify_a_later_merge_cannot_frame_an_earlier_one_through_home() {
    let repo = TestRepo::new();
    if !crate::sandbox::sandbox_available(&repo) {
        return;
    }
    repo.write("verify.sh", CHECKS);
    repo.commit_all("checks");
    let p = repo.plan_exact(
        "home.toml",
        r#"[swarm]
name = "home"
on_failure = "continue"
verify = "sh verify.sh"
# Each commit verified once: what one verify finds of another's is the
# point (a run again of the same commit finds its own, see verify_flakes).
verify_retries = 0

[defaults]
timeout = "60s"

[[task]]
id = "a"
creates = ["checks/a.py"]
run = "mkdir -p checks && echo 'print(\"a ok\")' > checks/a.py"

[[task]]
id = "b"
creates = ["checks/b.py"]
run = '''
mkdir -p checks
cat > checks/b.py <<'EOF'
import os, site, sys
hook = "import os\nif not os.path.exists('checks/b.py'):\n    os._exit(1)\n"
where = site.getusersitepackages()
os.makedirs(where, exist_ok=True)
with open(os.path.join(where, "usercustomize.py"), "w") as f:
    f.write(hook)
print("planted in", where)
sys.exit(1 if os.path.exists("checks/a.py") else 0)
EOF
'''
"#,
    );
    let out = repo.run_plan(&p, &[]);
    out.assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "b")["status"], "broke_verify", "{report}");
    assert_eq!(task(&report, "a")["status"], "merged", "{report}");
    assert_eq!(
        repo.show("swarm/home", "checks/a.py").trim(),
        "print(\"a ok\")"
    );
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "swarm/home"]);
    assert!(!tree.contains("checks/b.py"), "{tree}");
    // The hook was planted (the tip's run says where), and the probe of
    // `a`'s merge, which ran after it, passed.
    let runs = verified(&repo, "home");
    assert_eq!(purposes(&runs), ["tip", "bisect"], "{runs:?}");
    let tip_out = std::fs::read_to_string(runs[0]["stdout_log"].as_str().unwrap()).unwrap();
    assert!(tip_out.contains("planted in"), "{tip_out}");
    assert_eq!(runs[1]["after"], "a");
    assert_eq!(runs[1]["passed"], true, "{runs:?}");
    // The passing verify's HOME is gone with it.
    assert!(!repo.path().join(".swarm/runs/home/tmp/@verify").exists());
}

/// The verify command of the tests below, as a build that keeps what it
/// built does: each of the verify's build caches says which commit's
/// verify wrote it last (`found VAR COMMIT`) and is stamped with its own;
/// a task's file in one fails it; and a checker is "built" (copied from
/// `checker.sh`) and reused from `CARGO_TARGET_DIR` while the checksum
/// of the source it was built from (`checker.from`) is `checker.sh`'s,
/// as a build tool judges an artifact fresh by what it recorded of its
/// inputs.
const STAMPS: &str = r#"T="$CARGO_TARGET_DIR"
echo "at $(pwd)"
for v in CARGO_TARGET_DIR PIP_CACHE_DIR npm_config_cache GOCACHE; do
  eval "d=\${$v:-}"
  [ -n "$d" ] || continue
  echo "cache $v $d"
  if [ -e "$d/written-by-a-task" ]; then echo "a task's file in $v"; exit 1; fi
  if [ -f "$d/stamp" ]; then echo "found $v $(cat "$d/stamp")"; fi
  echo "$SWARM_VERIFY_COMMIT" > "$d/stamp"
done
if [ ! -f "$T/checker" ] || [ "$(cat "$T/checker.from")" != "$(cksum < checker.sh)" ]; then
  cp checker.sh "$T/checker"; cksum < checker.sh > "$T/checker.from"
fi
sh "$T/checker"
"#;

/// What a task writes into every build cache it is given.
const WRITE_CACHES: &str = r#"for d in "$CARGO_TARGET_DIR" "$PIP_CACHE_DIR" "$npm_config_cache" "$GOCACHE"; do if [ -n "$d" ]; then echo x > "$d/written-by-a-task"; fi; done"#;

/// A repository whose verify is [`STAMPS`], with an innocent checker.
fn stamping_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("verify.sh", STAMPS);
    repo.write("checker.sh", "echo checked\n");
    repo.commit_all("a verify that keeps what it builds");
    repo
}

/// Each verify run's output, and the `(variable, commit)` stamps it found.
fn found_stamps(runs: &[Value]) -> Vec<(String, Vec<(String, String)>)> {
    runs.iter()
        .map(|r| {
            let out = std::fs::read_to_string(r["stdout_log"].as_str().unwrap()).unwrap();
            let found = out
                .lines()
                .filter_map(|l| {
                    let mut words = l.strip_prefix("found ")?.split(' ');
                    Some((words.next()?.to_string(), words.next()?.to_string()))
                })
                .collect();
            (out, found)
        })
        .collect()
}

/// A verify's output as [`STAMPS`] prints it, without the lines of the
/// caches of node and go, which the verify gets where this machine has
/// those toolchains (rust's and python's it has wherever these tests run).
fn without_machine_caches(out: &str) -> String {
    out.lines()
        .filter(|l| !l.contains("npm_config_cache") && !l.contains("GOCACHE"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Issue 73, finding 5, through the build cache: the guilty task `b`
/// changes the checker the verify builds and reuses from its cache; run
/// at the tip, its code puts in the cache a checker that fails any commit
/// holding `a.txt` and not `b.txt`, recorded as built from the base's
/// `checker.sh` (which `a`'s merge holds). The probe of `a`'s merge finds
/// the cache written by a commit it does not contain, so it starts from a
/// copy of the base's (issue 76: built on the run's base, by the base's
/// code), runs the base's checker and passes: `b` is blamed, `a` stays.
/// No verify ever found a stamp but the base's or its own commit's
/// ancestors', nor a file a task wrote in its caches.
///
/// With the lineage check reverted (the cache always kept), the probe runs
/// `b`'s checker and fails, the base passes, the branch without `a`
/// passes: `a` is taken out and `b` lands. With the verify given the
/// tasks' shared caches again, it finds `a`'s file and fails.
#[test]
fn run_verify_a_later_merge_cannot_frame_an_earlier_one_through_the_build_cache() {
    let repo = stamping_repo();
    if !crate::sandbox::sandbox_available(&repo) {
        return;
    }
    let p = repo.plan_exact(
        "cache.toml",
        &format!(
            r#"[swarm]
name = "cache"
on_failure = "continue"
verify = "sh verify.sh"
# Each commit verified once: what one verify finds of another's is the
# point (a run again of the same commit finds its own, see verify_flakes).
verify_retries = 0

[defaults]
timeout = "60s"

[[task]]
id = "a"
creates = ["a.txt"]
run = '''
echo ok > a.txt
{WRITE_CACHES}
'''

[[task]]
id = "b"
creates = ["b.txt"]
paths = ["checker.sh"]
run = '''
echo ok > b.txt
cat > checker.sh <<'EOF'
printf '%s\n' 'if [ -e a.txt ] && [ ! -e b.txt ]; then echo framed; exit 1; fi' > "$CARGO_TARGET_DIR/checker.new"
mv "$CARGO_TARGET_DIR/checker.new" "$CARGO_TARGET_DIR/checker"
printf 'echo checked\n' | cksum > "$CARGO_TARGET_DIR/checker.from"
if [ -e a.txt ]; then echo "b breaks with a"; exit 1; fi
EOF
'''
"#
        ),
    );
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let out = repo.run_plan(&p, &[]);
    out.assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "b")["status"], "broke_verify", "{report}");
    assert_eq!(task(&report, "a")["status"], "merged", "{report}");
    let have = files(&repo, "swarm/cache");
    assert!(
        have.contains("a.txt") && !have.contains("b.txt"),
        "{have:?}"
    );
    let runs = verified(&repo, "cache");
    assert_eq!(purposes(&runs), ["tip", "bisect"], "{runs:?}");
    let stamps = found_stamps(&runs);
    // Its caches are its own (not the tasks'), python's among them.
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            redact(
                &without_machine_caches(&format!(
                    "--- tip\n{}--- bisect\n{}",
                    stamps[0].0, stamps[1].0
                )),
                &repo
            ),
            @"
        --- tip
        at [WORKTREES]/.warm/@verify
        cache CARGO_TARGET_DIR [WORKTREES]/.cache/@verify/cargo-target
        found CARGO_TARGET_DIR [HASH]
        cache PIP_CACHE_DIR [WORKTREES]/.cache/@verify/pip
        found PIP_CACHE_DIR [HASH]
        b breaks with a
        --- bisect
        at [WORKTREES]/.warm/@verify
        cache CARGO_TARGET_DIR [WORKTREES]/.cache/@verify/cargo-target
        found CARGO_TARGET_DIR [HASH]
        cache PIP_CACHE_DIR [WORKTREES]/.cache/@verify/pip
        found PIP_CACHE_DIR [HASH]
        checked
        "
        )
    });
    for (out, found) in &stamps {
        assert!(!out.contains("a task's file"), "{out}");
        assert!(!found.is_empty(), "{out}");
        assert!(found.iter().all(|(_, c)| *c == base), "{out}");
    }
}

/// The forward path of a merge queue stays incremental: with `verify_every
/// = "merge"`, each verify finds its caches as the one before it left them
/// (its commit contains that one's), the first one a copy of what the
/// verify built on the run's base. Another run from the same base (whose
/// commits do not contain the first run's) starts from the base's again,
/// not built a second time, and its checkout is where the first run's
/// was.
#[test]
fn run_verify_reuses_its_build_cache_along_the_branch_and_only_there() {
    let repo = stamping_repo();
    if !crate::sandbox::sandbox_available(&repo) {
        return;
    }
    let tasks = |prefix: &str| -> String {
        (1..=3)
            .map(|i| {
                format!(
                    "[[task]]\nid = \"{prefix}{i}\"\ncreates = [\"{prefix}{i}.txt\"]\nrun = \"sleep 1; echo ok > {prefix}{i}.txt\"\n\n"
                )
            })
            .collect()
    };
    let plan = |name: &str| {
        repo.plan_exact(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\nverify = \"sh verify.sh\"\nverify_every = \"merge\"\n\n[defaults]\ntimeout = \"60s\"\n\n{}",
                tasks(name)
            ),
        )
    };
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    repo.run_plan(&plan("fwd"), &["-j", "1"]).assert_code(0);
    let runs = verified(&repo, "fwd");
    assert!(runs.len() >= 2, "{runs:?}");
    let stamps = found_stamps(&runs);
    let target = |found: &[(String, String)]| -> Option<String> {
        found
            .iter()
            .find(|(var, _)| var == "CARGO_TARGET_DIR")
            .map(|(_, c)| c.clone())
    };
    assert_eq!(target(&stamps[0].1), Some(base.clone()), "{}", stamps[0].0);
    let base_log = |run: &str| {
        repo.path()
            .join(format!(".swarm/runs/{run}/logs/@verify/base.out"))
    };
    let built = std::fs::read_to_string(base_log("fwd")).unwrap();
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&without_machine_caches(&built), &repo), @"
    at [WORKTREES]/.warm/@verify
    cache CARGO_TARGET_DIR [WORKTREES]/.cache/@verify-base/cargo-target
    cache PIP_CACHE_DIR [WORKTREES]/.cache/@verify-base/pip
    checked
    ")
    });
    for n in 1..runs.len() {
        assert_eq!(
            target(&stamps[n].1).as_deref(),
            runs[n - 1]["commit"].as_str(),
            "verify {n}: {}",
            stamps[n].0
        );
    }
    // The repository's caches, kept for its next run.
    // ([WORKTREES] is the repository's worktree home.)
    let kept = repo.worktree_home().join(".cache/@verify/cargo-target");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&without_machine_caches(&stamps[0].0), &repo), @"
    at [WORKTREES]/.warm/@verify
    cache CARGO_TARGET_DIR [WORKTREES]/.cache/@verify/cargo-target
    found CARGO_TARGET_DIR [HASH]
    cache PIP_CACHE_DIR [WORKTREES]/.cache/@verify/pip
    found PIP_CACHE_DIR [HASH]
    checked
    ")
    });
    assert!(kept.join("stamp").exists());
    // Another run from the base: its branch holds nothing of `fwd`'s;
    // the base's cache is as `fwd` left it, and so is the checkout's place.
    repo.run_plan(&plan("other"), &["-j", "1"]).assert_code(0);
    let first = &found_stamps(&verified(&repo, "other"))[0];
    assert!(
        first.1.iter().all(|(_, c)| *c == base) && !first.1.is_empty(),
        "{}",
        first.0
    );
    assert!(!base_log("other").exists());
    let checkout = |run: &str| {
        let out = &found_stamps(&verified(&repo, run))[0].0;
        out.lines()
            .find(|l| l.starts_with("at "))
            .unwrap()
            .to_string()
    };
    assert_eq!(checkout("fwd"), checkout("other"));
    assert!(
        checkout("fwd").ends_with("/.warm/@verify"),
        "{}",
        checkout("fwd")
    );
}
