//! The merge queue with a verify that is flaky, several culprits, and a
//! refactor with one incomplete piece: no correct merge is taken out on a
//! flake, a culprit among flakes is found, every culprit the failure
//! names is found, and a failure no removal explains names the task that
//! owns what it names while every merge stays.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::resume::journal;
use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task};

/// Fails (naming the files) when any `.txt` file holds `BAD`; with a
/// `flaky` directory, first fails once on every commit, as a flaky suite
/// does (its runs are unconfined, `sandbox = "none"`, to remember there
/// which commits they have seen: nothing a sandboxed verify writes lasts
/// from one commit's verify to another's).
fn verify(flaky: Option<&std::path::Path>) -> String {
    let flake = match flaky {
        Some(dir) => {
            std::fs::create_dir_all(dir).unwrap();
            format!(
                "seen={}/$SWARM_VERIFY_COMMIT; if [ ! -e $seen ]; then : > $seen; echo flake: a port was taken >&2; exit 1; fi; ",
                dir.display()
            )
        }
        None => String::new(),
    };
    format!("{flake}if grep -l BAD *.txt; then exit 1; fi")
}

fn plan(repo: &TestRepo, name: &str, verify: &str, swarm: &str, tasks: &str) -> std::path::PathBuf {
    repo.plan_exact(
        &format!("{name}.toml"),
        &format!(
            "[swarm]\nname = \"{name}\"\non_failure = \"continue\"\nverify = \"{verify}\"\n{swarm}\n\n[defaults]\ntimeout = \"60s\"\n\n{tasks}"
        ),
    )
}

/// `n` tasks `t1`..`tn`, each creating its own file; those in `bad`
/// write BAD.
fn writers(n: usize, bad: &[usize]) -> String {
    (1..=n)
        .map(|i| {
            let word = if bad.contains(&i) { "BAD" } else { "ok" };
            format!("[[task]]\nid = \"t{i}\"\ncreates = [\"t{i}.txt\"]\nrun = \"echo {word} > t{i}.txt\"\n\n")
        })
        .collect()
}

/// Snapshot settings that also hide how many verify runs there were (and
/// so the numbers of their logs): how many checks a search or a queue
/// checking after every merge makes depends on which merges each check
/// found, which the order tasks end in decides.
fn settings() -> insta::Settings {
    let mut settings = snapshot_settings();
    settings.add_filter(
        r"\d+ runs? \(\d+ to find what broke it",
        "[N] runs ([N] to find what broke it",
    );
    settings.add_filter(r"it, \d+ flaky", "it, [N] flaky");
    // With nothing to find, the count of runs and of flaky ones alone.
    settings.add_filter(r"\d+ runs? \(\d+ flaky", "[N] runs ([N] flaky");
    settings.add_filter(r"@verify/\d+\.", "@verify/[N].");
    settings
}

/// What a run says before its header (warnings) and its final summary:
/// the live lines between come in the order tasks happen to end.
fn head_and_summary(stderr: &str) -> String {
    let head: String = stderr
        .lines()
        .take_while(|l| !l.starts_with("swarm: run "))
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{head}[…]\n{}", summary_of(stderr))
}

fn events(repo: &TestRepo, run: &str, kind: &str) -> Vec<Value> {
    journal(repo, run)
        .into_iter()
        .filter(|e| e["event"] == kind)
        .collect()
}

fn statuses(report: &Value, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| {
            task(report, &format!("t{i}"))["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Every tree fails its first verify: each failure is run again, passes,
/// and counts as a flaky pass; no merge is taken out, for a merge queue
/// checking after every merge or once at the end.
#[test]
fn a_flake_on_the_first_verify_of_every_tree_takes_no_merge_out() {
    let mut shown = String::new();
    for every in ["end", "merge"] {
        let repo = TestRepo::new();
        let name = format!("flaky-{every}");
        let swarm = format!("verify_every = \"{every}\"\nsandbox = \"none\"");
        let flakes = repo.outside().join("flakes");
        let out = repo.run_plan(
            &plan(
                &repo,
                &name,
                &verify(Some(&flakes)),
                &swarm,
                &writers(6, &[]),
            ),
            &[],
        );
        out.assert_code(0);
        let report = repo.report();
        assert!(
            statuses(&report, 6).iter().all(|s| s == "merged"),
            "{every}: {report}"
        );
        let runs = events(&repo, &name, "run_verified");
        // Every failure is followed by a pass of the same commit.
        for (i, run) in runs.iter().enumerate() {
            if run["passed"] == false {
                let next = &runs[i + 1];
                assert_eq!(next["commit"], run["commit"], "{runs:?}");
                assert_eq!(next["passed"], true);
                assert_eq!(next["attempt"], 1);
            }
        }
        assert!(runs.iter().all(|r| r["purpose"] == "tip"), "{runs:?}");
        let stats = &report["merge_queue"];
        assert!(stats["flaky_runs"].as_u64().unwrap() >= 1, "{stats}");
        assert_eq!(stats["culprits"], 0, "{stats}");
        assert_eq!(stats["flaky_runs"], stats["retry_runs"], "{stats}");
        shown += &format!(
            "--- verify_every = {every}\n{}",
            redact(summary_of(&out.stderr), &repo)
        );
        // The tip's tree is the one that passed.
        let tip = runs.last().unwrap();
        assert_eq!(
            tip["tree"],
            repo.git(&["rev-parse", &format!("swarm/{name}^{{tree}}")])
        );
    }
    settings().bind(|| {
        insta::assert_snapshot!(shown, @"
        --- verify_every = end
        run flaky-end: succeeded
          task  status          time  try  changed  result
          t1    merged         [T]s    1        1  refs/swarm/flaky-end/t1
          t2    merged         [T]s    1        1  refs/swarm/flaky-end/t2
          t3    merged         [T]s    1        1  refs/swarm/flaky-end/t3
          t4    merged         [T]s    1        1  refs/swarm/flaky-end/t4
          t5    merged         [T]s    1        1  refs/swarm/flaky-end/t5
          t6    merged         [T]s    1        1  refs/swarm/flaky-end/t6

          6 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/flaky-end at [HASH], [T]s
          verify: [N] runs ([N] flaky, [T]s); the branch passes
        --- verify_every = merge
        run flaky-merge: succeeded
          task  status          time  try  changed  result
          t1    merged         [T]s    1        1  refs/swarm/flaky-merge/t1
          t2    merged         [T]s    1        1  refs/swarm/flaky-merge/t2
          t3    merged         [T]s    1        1  refs/swarm/flaky-merge/t3
          t4    merged         [T]s    1        1  refs/swarm/flaky-merge/t4
          t5    merged         [T]s    1        1  refs/swarm/flaky-merge/t5
          t6    merged         [T]s    1        1  refs/swarm/flaky-merge/t6

          6 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/flaky-merge at [HASH], [T]s
          verify: [N] runs ([N] flaky, [T]s); the branch passes
        ")
    });
}

/// A real culprit among flakes: every probe's failure reproduces before
/// it counts, so the bisection finds it and only it.
#[test]
fn a_real_culprit_among_flakes_is_found_and_only_it() {
    let repo = TestRepo::new();
    let flakes = repo.outside().join("flakes");
    let out = repo.run_plan(
        &plan(
            &repo,
            "among",
            &verify(Some(&flakes)),
            "sandbox = \"none\"",
            &writers(8, &[5]),
        ),
        &[],
    );
    out.assert_code(1);
    let report = repo.report();
    let mut want = vec!["merged".to_string(); 8];
    want[4] = "broke_verify".into();
    assert_eq!(statuses(&report, 8), want, "{report}");
    assert_eq!(repo.show("refs/swarm/among/t5", "t5.txt").trim(), "BAD");
    settings().bind(|| insta::assert_snapshot!(redact(summary_of(&out.stderr), &repo), @"
    run among: finished with failures (exit 1)
      task  status            time  try  changed  result
      t1    merged           [T]s    1        1  refs/swarm/among/t1
      t2    merged           [T]s    1        1  refs/swarm/among/t2
      t3    merged           [T]s    1        1  refs/swarm/among/t3
      t4    merged           [T]s    1        1  refs/swarm/among/t4
      t5    broke-verify     [T]s    1        1  refs/swarm/among/t5
      t6    merged           [T]s    1        1  refs/swarm/among/t6
      t7    merged           [T]s    1        1  refs/swarm/among/t7
      t8    merged           [T]s    1        1  refs/swarm/among/t8

      7 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled, 1 broke verify
      branch swarm/among at [HASH], [T]s
      verify: [N] runs ([N] to find what broke it, [N] flaky, [T]s); the branch passes
      t5: its merge broke the run-wide verify `seen=[TMP]/outside/flakes/$SWARM_VERIFY_COMM ...`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it passes ([HASH]), see .swarm/runs/among/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/among/t5
    "));
    assert_eq!(report["merge_queue"]["culprits"], 1);
}

/// Two and three tasks that each break the build: the branch without the
/// first still fails, so the search goes on in it, and each is proven in
/// the branch without the ones found before it; the rest stay merged.
#[test]
fn two_and_three_independent_culprits_are_all_found() {
    let mut shown = String::new();
    for bad in [&[2usize, 6][..], &[3, 5, 7]] {
        let repo = TestRepo::new();
        let name = format!("culprits-{}", bad.len());
        let out = repo.run_plan(
            &plan(&repo, &name, &verify(None), "", &writers(8, bad)),
            &[],
        );
        out.assert_code(1);
        let report = repo.report();
        let want: Vec<String> = (1..=8)
            .map(|i| match bad.contains(&i) {
                true => "broke_verify".to_string(),
                false => "merged".to_string(),
            })
            .collect();
        assert_eq!(statuses(&report, 8), want, "{report}");
        let branch = format!("swarm/{name}");
        let have: BTreeSet<String> = repo
            .git(&["ls-tree", "--name-only", &branch])
            .lines()
            .map(str::to_string)
            .collect();
        for i in 1..=8 {
            assert_eq!(
                have.contains(&format!("t{i}.txt")),
                !bad.contains(&i),
                "{have:?}"
            );
        }
        let broken = events(&repo, &name, "verify_broken");
        assert_eq!(broken.len(), bad.len(), "{broken:?}");
        let why = task(&report, &format!("t{}", bad[0]))["reason"]
            .as_str()
            .unwrap()
            .to_string();
        shown += &format!(
            "--- {name}\n{}\n\n{}",
            redact(&why, &repo),
            redact(summary_of(&out.stderr), &repo)
        );
        assert_eq!(report["merge_queue"]["culprits"], bad.len());
    }
    settings().bind(|| insta::assert_snapshot!(shown, @"
    --- culprits-2
    its merge broke the run-wide verify `if grep -l BAD *.txt; then exit 1; fi`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it and `t6` passes ([HASH]), see .swarm/runs/culprits-2/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/culprits-2/t2

    run culprits-2: finished with failures (exit 1)
      task  status            time  try  changed  result
      t1    merged           [T]s    1        1  refs/swarm/culprits-2/t1
      t2    broke-verify     [T]s    1        1  refs/swarm/culprits-2/t2
      t3    merged           [T]s    1        1  refs/swarm/culprits-2/t3
      t4    merged           [T]s    1        1  refs/swarm/culprits-2/t4
      t5    merged           [T]s    1        1  refs/swarm/culprits-2/t5
      t6    broke-verify     [T]s    1        1  refs/swarm/culprits-2/t6
      t7    merged           [T]s    1        1  refs/swarm/culprits-2/t7
      t8    merged           [T]s    1        1  refs/swarm/culprits-2/t8

      6 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled, 2 broke verify
      branch swarm/culprits-2 at [HASH], [T]s
      verify: [N] runs ([N] to find what broke it, [T]s); the branch passes
      t2: its merge broke the run-wide verify `if grep -l BAD *.txt; then exit 1; fi`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it and `t6` passes ([HASH]), see .swarm/runs/culprits-2/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/culprits-2/t2
      t6: its merge broke the run-wide verify `if grep -l BAD *.txt; then exit 1; fi`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it and `t2` passes ([HASH]), see .swarm/runs/culprits-2/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/culprits-2/t6
    --- culprits-3
    its merge broke the run-wide verify `if grep -l BAD *.txt; then exit 1; fi`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it and `t5`, `t7` passes ([HASH]), see .swarm/runs/culprits-3/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/culprits-3/t3

    run culprits-3: finished with failures (exit 1)
      task  status            time  try  changed  result
      t1    merged           [T]s    1        1  refs/swarm/culprits-3/t1
      t2    merged           [T]s    1        1  refs/swarm/culprits-3/t2
      t3    broke-verify     [T]s    1        1  refs/swarm/culprits-3/t3
      t4    merged           [T]s    1        1  refs/swarm/culprits-3/t4
      t5    broke-verify     [T]s    1        1  refs/swarm/culprits-3/t5
      t6    merged           [T]s    1        1  refs/swarm/culprits-3/t6
      t7    broke-verify     [T]s    1        1  refs/swarm/culprits-3/t7
      t8    merged           [T]s    1        1  refs/swarm/culprits-3/t8

      5 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled, 3 broke verify
      branch swarm/culprits-3 at [HASH], [T]s
      verify: [N] runs ([N] to find what broke it, [T]s); the branch passes
      t3: its merge broke the run-wide verify `if grep -l BAD *.txt; then exit 1; fi`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it and `t5`, `t7` passes ([HASH]), see .swarm/runs/culprits-3/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/culprits-3/t3
      t5: its merge broke the run-wide verify `if grep -l BAD *.txt; then exit 1; fi`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it and `t3`, `t7` passes ([HASH]), see .swarm/runs/culprits-3/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/culprits-3/t5
      t7: its merge broke the run-wide verify `if grep -l BAD *.txt; then exit 1; fi`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it and `t3`, `t5` passes ([HASH]), see .swarm/runs/culprits-3/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/culprits-3/t7
    "));
}

/// Five files renamed by five tasks, one piece of which forgets its file:
/// every merge fails without the others, so no removal proves anything.
/// The failure names `f3.txt`, which `r3` owns by its `paths`: `r3` is
/// named, every merge stays (with and without `group`), and the way to
/// finish is printed; it works: `r3` fixed and run on the failed branch
/// passes, and lands.
#[test]
fn a_refactor_with_one_incomplete_piece_names_it_and_keeps_every_merge() {
    let mut shown = String::new();
    for grouped in [false, true] {
        let repo = TestRepo::new();
        for n in 1..=5 {
            repo.write(&format!("f{n}.txt"), "alpha\n");
        }
        repo.commit_all("five files");
        let name = if grouped { "rename-group" } else { "rename" };
        let pieces = |broken: bool| -> String {
            (1..=5)
                .map(|n| {
                    let run = match (n, broken) {
                        (3, true) => "true".to_string(),
                        _ => format!("sed -i s/alpha/beta/ f{n}.txt"),
                    };
                    let group = if grouped { "group = \"rename\"\n" } else { "" };
                    format!("[[task]]\nid = \"r{n}\"\n{group}paths = [\"f{n}.txt\"]\nrun = \"{run}\"\n\n")
                })
                .collect()
        };
        // As a compiler does once the new name exists: every file still
        // using the old one is an error, named.
        let verify = "if grep -q beta f*.txt; then ! grep -l alpha f*.txt; fi";
        let out = repo.run_plan(&plan(&repo, name, verify, "", &pieces(true)), &[]);
        out.assert_code(1);
        let report = repo.report();
        for n in 1..=5 {
            assert_eq!(
                task(&report, &format!("r{n}"))["status"],
                "merged",
                "grouped {grouped}: {report}"
            );
        }
        assert!(events(&repo, name, "verify_broken").is_empty());
        let named = &report["verify_named"];
        assert_eq!(named["tasks"][0]["task"], "r3", "{named}: {}", out.stderr);
        assert_eq!(named["tasks"][0]["by"], "paths", "{named}");
        assert_eq!(named["tasks"][0]["places"][0], "f3.txt", "{named}");
        assert_eq!(named["tasks"].as_array().unwrap().len(), 1, "{named}");
        shown += &format!("--- {name}\n{}", redact(summary_of(&out.stderr), &repo));
        if grouped {
            continue;
        }
        // The recovery, as printed: the piece fixed, run on the branch.
        let fixed = plan(&repo, "rename-fix", verify, "", &pieces(false));
        repo.run_plan(&fixed, &["--base", "swarm/rename", "--only", "r3"])
            .assert_code(0);
        assert_eq!(repo.show("swarm/rename-fix", "f3.txt"), "beta");
        assert_eq!(repo.show("swarm/rename-fix", "f1.txt"), "beta");
    }
    settings().bind(|| insta::assert_snapshot!(shown, @r#"
    --- rename
    run rename: finished with failures (exit 1)
      task  status          time  try  changed  result
      r1    merged         [T]s    1        1  refs/swarm/rename/r1
      r2    merged         [T]s    1        1  refs/swarm/rename/r2
      r3    merged         [T]s    1        0  refs/swarm/rename/r3
      r4    merged         [T]s    1        1  refs/swarm/rename/r4
      r5    merged         [T]s    1        1  refs/swarm/rename/r5

      5 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/rename at [HASH], [T]s
      verify: [N] runs ([N] to find what broke it, [T]s); the branch FAILS and no merge taken out would make it pass; its failure names `r3` (at f3.txt, see .swarm/runs/rename/logs/@verify/[N].out): every merge is kept. Fix it, then `swarm run PLAN --base swarm/rename --only r3` and `swarm land` that run
      warning: `r3` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
    --- rename-group
    run rename-group: finished with failures (exit 1)
      task  status          time  try  changed  result
      r1    merged         [T]s    1        1  refs/swarm/rename-group/r1
      r2    merged         [T]s    1        1  refs/swarm/rename-group/r2
      r3    merged         [T]s    1        0  refs/swarm/rename-group/r3
      r4    merged         [T]s    1        1  refs/swarm/rename-group/r4
      r5    merged         [T]s    1        1  refs/swarm/rename-group/r5

      5 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/rename-group at [HASH], [T]s
      verify: [N] runs ([N] to find what broke it, [T]s); the branch FAILS and no merge taken out would make it pass; its failure names `r3` (at f3.txt, see .swarm/runs/rename-group/logs/@verify/[N].out): every merge is kept. Fix it, then `swarm run PLAN --base swarm/rename-group --only r3` and `swarm land` that run
      warning: `r3` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
    "#));
}

/// The tree that lands is one a verify passed on: a run whose verify gave
/// up early (it fails at the base) merged more after it, so its tip was
/// never verified. `swarm land` verifies it first, as a landing run, and
/// since that fails, the branch stays where it was.
#[test]
fn land_never_moves_a_branch_to_a_tree_no_verify_passed_on() {
    let repo = TestRepo::new();
    repo.write("base.txt", "BAD\n");
    repo.commit_all("a broken base");
    let main = repo.git(&["rev-parse", "HEAD"]);
    let tasks = format!(
        "{}[[task]]\nid = \"late\"\ncreates = [\"late.txt\"]\nrun = \"sleep 3 && echo ok > late.txt\"\n",
        writers(2, &[])
    );
    let p = plan(
        &repo,
        "gave-up",
        &verify(None),
        "verify_every = \"merge\"",
        &tasks,
    );
    repo.run_plan(&p, &[]).assert_code(1);
    let report = repo.report();
    let tip = repo.git(&["rev-parse", "swarm/gave-up"]);
    let runs = events(&repo, "gave-up", "run_verified");
    assert!(runs.iter().all(|r| r["commit"] != tip.as_str()), "{runs:?}");
    assert_eq!(report["integration_commit"], tip.as_str());

    let out = repo.swarm(&["land", "gave-up"]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    settings().bind(|| insta::assert_snapshot!(redact(&head_and_summary(&out.stderr), &repo), @"
    run `gave-up`'s branch was never verified: verifying it first, as a landing run
    landing run `gave-up`: 3 merged tasks again onto [HASH] as run `gave-up-land`
    […]
    run gave-up-land: finished with failures (exit 1)
      task  status          time  try  changed  result
      t1    merged         [T]s    1        1  refs/swarm/gave-up-land/t1
      t2    merged         [T]s    1        1  refs/swarm/gave-up-land/t2
      late  merged         [T]s    1        1  refs/swarm/gave-up-land/late

      3 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/gave-up-land at [HASH], [T]s
      verify: [N] runs ([N] to find what broke it, [T]s); it FAILS at the base [HASH] too, so no task is blamed; see .swarm/runs/gave-up-land/logs/@verify/[N].err
    run `gave-up-land` did not end well: nothing was landed (its branch is swarm/gave-up-land)
    "));
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main, "the branch moved");
}

/// With `verify_concurrency = 3` the bisection probes three commits per
/// round, each in a checkout of its own: the same culprit, in fewer
/// rounds (`ceil(log4 16)` = 2 against 4), and its checkouts are gone
/// when the run ends.
#[test]
fn three_verifies_at_once_find_the_same_culprit_in_fewer_rounds() {
    let mut rounds = Vec::new();
    for concurrency in [1, 3] {
        let repo = TestRepo::new();
        let name = format!("p{concurrency}");
        let swarm = format!("verify_concurrency = {concurrency}\nverify_retries = 0");
        let out = repo.run_plan(
            &plan(&repo, &name, &verify(None), &swarm, &writers(16, &[11])),
            &[],
        );
        out.assert_code(1);
        let report = repo.report();
        assert_eq!(task(&report, "t11")["status"], "broke_verify", "{report}");
        let runs = events(&repo, &name, "run_verified");
        let probes: Vec<&Value> = runs.iter().filter(|r| r["purpose"] == "bisect").collect();
        let most_at_once = probes
            .iter()
            .map(|p| probes.iter().filter(|q| q["round"] == p["round"]).count())
            .max()
            .unwrap_or(0);
        assert_eq!(most_at_once, concurrency, "{runs:?}");
        rounds.push(report["merge_queue"]["rounds"].as_u64().unwrap());
        let home = repo.worktree_home().join(&name);
        assert!(!home.join(".readonly-verify").exists());
        assert!(!home.join(".readonly-verify-3").exists());
    }
    // The probes' rounds and the proof's.
    assert_eq!(rounds, [4 + 1, 2 + 1], "{rounds:?}");
}
