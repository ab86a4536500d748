//! The integration branch as a merge queue: a result that conflicts runs
//! again on top of what landed before it (`on_conflict = "rerun"`), a
//! conflict predicted from what tasks change starts the later task after
//! the earlier one merged, the run-wide verify takes a merge out only when
//! it proves the merge broke it (groups verified as one), and the branch is
//! a function of the plan and the tasks' results, whatever order they
//! finished in.

use serde_json::{Value, json};

use crate::agent::{KEY, anthropic_plan, run_with_key};
use crate::resume::journal;
use crate::support::model::{MockModel, Options, Reply, tool};
use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task};

/// The tasks on the first-parent line of `branch`, oldest first.
fn merged_in_order(repo: &TestRepo, branch: &str) -> Vec<String> {
    let mut tasks: Vec<String> = repo
        .git(&["log", "--first-parent", "--format=%B", branch])
        .lines()
        .filter_map(|l| l.strip_prefix("Swarm-Task: ").map(str::to_string))
        .collect();
    tasks.reverse();
    tasks
}

fn events(repo: &TestRepo, run: &str, kind: &str) -> Vec<Value> {
    journal(repo, run)
        .into_iter()
        .filter(|e| e["event"] == kind)
        .collect()
}

/// Eight command tasks appending to one file, side by side: every one is
/// merged, and the file holds their lines in plan order, whether the
/// conflicts are run again or predicted, at one task at a time or four;
/// the four runs give the same tree and the same history of merges.
#[test]
fn eight_tasks_appending_to_one_file_all_merge_in_plan_order() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.commit_all("a log");
    let mut trees = Vec::new();
    for (name, predict, jobs) in [
        ("rerun4", false, "4"),
        ("rerun2", false, "2"),
        ("predict4", true, "4"),
        ("predict2", true, "2"),
    ] {
        let plan = repo.plan_exact(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\npredict_conflicts = {predict}\n\n[defaults]\nallow_overlap = true\n\n[[task]]\nid = \"a{{n}}\"\nrun = \"echo line-{{n}} >> log.txt\"\npaths = [\"log.txt\"]\nmatrix = {{ n = [\"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\"] }}\n"
            ),
        );
        let run = repo.run_plan(&plan, &["-j", jobs]);
        run.assert_code(0);
        let report = repo.report();
        for n in 1..=8 {
            assert_eq!(
                task(&report, &format!("a{n}"))["status"],
                "merged",
                "{name}"
            );
        }
        let want: String = std::iter::once("start".to_string())
            .chain((1..=8).map(|n| format!("line-{n}")))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            repo.show(&format!("swarm/{name}"), "log.txt"),
            want,
            "{name}"
        );
        assert_eq!(
            merged_in_order(&repo, &format!("swarm/{name}")),
            (1..=8).map(|n| format!("a{n}")).collect::<Vec<_>>(),
            "{name}"
        );
        let reruns = events(&repo, name, "task_requeued").len();
        let held = events(&repo, name, "task_held").len();
        // The result that conflicted is kept on its attempt's ref, next to
        // the re-run's on the task's.
        for conflicted in events(&repo, name, "task_conflicted") {
            let id = conflicted["task"].as_str().unwrap_or_default();
            let kept = repo.git(&[
                "for-each-ref",
                "--format=%(objectname)",
                &format!("refs/swarm/{name}/{id}.*"),
            ]);
            assert!(
                kept.lines()
                    .any(|c| Some(c) == conflicted["commit"].as_str()),
                "{name}: {id}'s conflicted result {} is on no ref: {kept}",
                conflicted["commit"]
            );
        }
        match predict {
            // Each starts from the base: all but the first conflict, and
            // run again on the branch as it is.
            false => assert!(reruns > 0 && held == 0, "{name}: {reruns} re-runs"),
            // Predicted from their declared `paths`: each waits (once, for
            // the last task before it still to land), and none conflicts.
            true => assert!(
                reruns == 0 && held > 0 && held <= 7,
                "{name}: {held} held, {reruns} re-runs"
            ),
        }
        trees.push(repo.git(&["rev-parse", &format!("swarm/{name}^{{tree}}")]));
    }
    assert!(trees.windows(2).all(|w| w[0] == w[1]), "{trees:?}");
}

/// A task that may not run again (`conflict_reruns = 0`, or `on_conflict =
/// "stop"`) ends `conflicted`, its result kept on its ref, for a person.
/// (A re-run starts on the branch as it is, and the merges after it wait
/// for it: its result descends from the branch it lands on, so a re-run
/// never conflicts again.)
#[test]
fn a_task_that_may_not_run_again_ends_conflicted_with_its_result_kept() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.commit_all("a log");
    let mut summaries = String::new();
    for (name, key) in [
        ("zero", "conflict_reruns = 0"),
        ("stop", "on_conflict = \"stop\""),
    ] {
        let plan = repo.plan_exact(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\non_failure = \"continue\"\npredict_conflicts = false\n\n[defaults]\nallow_overlap = true\n\n[[task]]\nid = \"first\"\nrun = \"echo first >> log.txt\"\npaths = [\"log.txt\"]\n\n[[task]]\nid = \"second\"\nrun = \"sleep 0.5; echo second >> log.txt\"\npaths = [\"log.txt\"]\n{key}\n"
            ),
        );
        let run = repo.run_plan(&plan, &[]);
        run.assert_code(1);
        let report = repo.report();
        let second = task(&report, "second");
        assert_eq!(second["status"], "conflicted", "{name}: {report}");
        assert_eq!(second["conflict_files"], json!(["log.txt"]), "{name}");
        assert_eq!(
            repo.show(&format!("refs/swarm/{name}/second"), "log.txt"),
            "start\nsecond",
            "{name}"
        );
        assert!(events(&repo, name, "task_requeued").is_empty(), "{name}");
        summaries.push_str(&format!("--- {name}\n{}", summary_of(&run.stderr)));
    }
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&summaries, &repo), @"
    --- zero
    run zero: finished with failures (exit 1)
      task    status          time  try  changed  result
      first   merged         [T]s    1        1  refs/swarm/zero/first
      second  conflicted     [T]s    1        1  conflict in log.txt

      1 merged, 0 succeeded (read-only), 0 failed, 1 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/zero at [HASH], [T]s
      second: conflict in log.txt line 2 with first
      second: next step: git switch swarm/zero && git merge refs/swarm/zero/second, fix, commit, then `swarm resolve zero second` (see `swarm resolve --help`)
    --- stop
    run stop: finished with failures (exit 1)
      task    status          time  try  changed  result
      first   merged         [T]s    1        1  refs/swarm/stop/first
      second  conflicted     [T]s    1        1  conflict in log.txt

      1 merged, 0 succeeded (read-only), 0 failed, 1 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/stop at [HASH], [T]s
      second: conflict in log.txt line 2 with first
      second: next step: git switch swarm/stop && git merge refs/swarm/stop/second, fix, commit, then `swarm resolve stop second` (see `swarm resolve --help`)
    "));
}

/// An agent whose result conflicts, run again on the branch as it is, is
/// told its earlier change and what was merged meanwhile in those files
/// (the mock records it), and lands.
#[test]
fn an_agent_run_again_is_told_its_change_and_the_other_side() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.commit_all("a log");
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| {
            if !call.conversation.contains("Add the agent line.") {
                return Reply::text("ok");
            }
            let again = call.conversation.contains("conflicted");
            match (again, call.turn) {
                (false, 0) => Reply::answer(vec![tool(
                    "w1",
                    "write_file",
                    json!({"path": "log.txt", "content": "start\nagent\n"}),
                )]),
                (true, 0) => {
                    // Its own change and the other side's, as diffs.
                    assert!(
                        call.conversation.contains("+agent"),
                        "{}",
                        call.conversation
                    );
                    assert!(
                        call.conversation.contains("+first"),
                        "{}",
                        call.conversation
                    );
                    Reply::answer(vec![tool(
                        "w2",
                        "write_file",
                        json!({"path": "log.txt", "content": "start\nfirst\nagent\n"}),
                    )])
                }
                _ => Reply::answer(vec![tool("f1", "finish", json!({"summary": "added"}))]),
            }
        },
    );
    let tasks = "[[task]]\nid = \"first\"\nrun = \"sleep 1; echo first >> log.txt\"\npaths = [\"log.txt\"]\nallow_overlap = true\n\n[[task]]\nid = \"agent\"\nprompt = \"Add the agent line.\"\npaths = [\"log.txt\"]\nallow_overlap = true\non_conflict = \"rerun\"\n";
    let text = anthropic_plan(&mock, "", tasks).replace(
        "[swarm]\n",
        "[swarm]\nname = \"agent\"\npredict_conflicts = false\n",
    );
    let plan = repo.plan_exact("agent.toml", &text);
    let run = run_with_key(&repo, &plan);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(repo.show("swarm/agent", "log.txt"), "start\nfirst\nagent");
    let requeued = events(&repo, "agent", "task_requeued");
    assert_eq!(requeued.len(), 1, "{requeued:?}");
    assert_eq!(requeued[0]["task"], "agent");
    assert_eq!(task(&repo.report(), "agent")["conflict_reruns"], 1);
    // The note went to the model once: the re-run's first request.
    let told = mock
        .calls()
        .iter()
        .filter(|c| {
            c.conversation
                .contains("your earlier change for this task conflicted")
        })
        .count();
    assert!(told >= 1);
    mock.assert_clean();
}

/// `text` with the counts of a run-wide verify hidden: with
/// `verify_every = "merge"`, or an agent's result still to come, how many
/// merges one verify covers (so how many verifies ran, and which one's log
/// is named) depends on when tasks finish.
fn verify_counts_hidden(text: &str) -> String {
    let runs = regex::Regex::new(r"verify: \d+ runs? \(\d+ to find").unwrap();
    let log = regex::Regex::new(r"@verify/\d+\.err").unwrap();
    let text = runs.replace_all(text, "verify: [N] runs ([N] to find");
    log.replace_all(&text, "@verify/[N].err").into_owned()
}

/// Four tasks renaming a word in four of five files, with a verify that
/// all files agree: the pieces are correct, the plan is incomplete. No
/// single merge broke it (the branch without the first to fail fails
/// too), so every merge is kept and the summary says so; the run fails.
#[test]
fn an_incomplete_refactor_keeps_every_merge() {
    let mut summaries = String::new();
    for every in ["end", "merge"] {
        let repo = TestRepo::new();
        for n in 1..=5 {
            repo.write(&format!("f{n}.txt"), "alpha\n");
        }
        repo.commit_all("five files");
        let name = format!("rename-{every}");
        let tasks: String = (1..=4)
            .map(|n| {
                format!(
                    "[[task]]\nid = \"r{n}\"\npaths = [\"f{n}.txt\"]\nrun = \"sed -i s/alpha/beta/ f{n}.txt\"\n\n"
                )
            })
            .collect();
        let plan = repo.plan_exact(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\non_failure = \"continue\"\nverify = \"test $(cat f*.txt | sort -u | wc -l) -eq 1\"\nverify_every = \"{every}\"\n\n{tasks}"
            ),
        );
        let run = repo.run_plan(&plan, &[]);
        run.assert_code(1);
        let report = repo.report();
        for n in 1..=4 {
            assert_eq!(
                task(&report, &format!("r{n}"))["status"],
                "merged",
                "{every}: {report}"
            );
        }
        assert!(events(&repo, &name, "verify_broken").is_empty(), "{every}");
        for n in 1..=4 {
            assert_eq!(
                repo.show(&format!("swarm/{name}"), &format!("f{n}.txt")),
                "beta"
            );
        }
        let words = run.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            !words.contains("the branch passes"),
            "{every}: {}",
            run.stderr
        );
        let summary = redact(summary_of(&run.stderr), &repo);
        let summary = match every {
            "merge" => verify_counts_hidden(&summary),
            _ => summary,
        };
        summaries.push_str(&format!("--- {every}\n{summary}"));
    }
    snapshot_settings().bind(|| insta::assert_snapshot!(summaries, @"
    --- end
    run rename-end: finished with failures (exit 1)
      task  status          time  try  changed  result
      r1    merged         [T]s    1        1  refs/swarm/rename-end/r1
      r2    merged         [T]s    1        1  refs/swarm/rename-end/r2
      r3    merged         [T]s    1        1  refs/swarm/rename-end/r3
      r4    merged         [T]s    1        1  refs/swarm/rename-end/r4

      4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/rename-end at [HASH], [T]s
      verify: 8 runs (6 to find what broke it, [T]s); the branch FAILS, and no single task broke it: it fails without `r1`'s merge too (every merge is kept), see .swarm/runs/rename-end/logs/@verify/8.err
    --- merge
    run rename-merge: finished with failures (exit 1)
      task  status          time  try  changed  result
      r1    merged         [T]s    1        1  refs/swarm/rename-merge/r1
      r2    merged         [T]s    1        1  refs/swarm/rename-merge/r2
      r3    merged         [T]s    1        1  refs/swarm/rename-merge/r3
      r4    merged         [T]s    1        1  refs/swarm/rename-merge/r4

      4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/rename-merge at [HASH], [T]s
      verify: [N] runs ([N] to find what broke it, [T]s); the branch FAILS, and no single task broke it: it fails without `r1`'s merge too (every merge is kept), see .swarm/runs/rename-merge/logs/@verify/[N].err
    "));
}

/// The same refactor as one `group`: verified only as a whole (with
/// `verify_every = "merge"`, not before all four are in), and blamed as
/// one: the branch without the group passes (it is the base), so the
/// group is taken out, and the summary does not call the base a pass of
/// the run's work. Complete, the group passes.
#[test]
fn a_group_is_verified_and_taken_out_as_one() {
    for (name, files) in [("partial", 4), ("whole", 5)] {
        let repo = TestRepo::new();
        for n in 1..=5 {
            repo.write(&format!("f{n}.txt"), "alpha\n");
        }
        repo.commit_all("five files");
        let tasks: String = (1..=files)
            .map(|n| {
                format!(
                    "[[task]]\nid = \"r{n}\"\ngroup = \"rename\"\npaths = [\"f{n}.txt\"]\nrun = \"sed -i s/alpha/beta/ f{n}.txt\"\n\n"
                )
            })
            .collect();
        let plan = repo.plan_exact(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\non_failure = \"continue\"\nverify = \"test $(cat f*.txt | sort -u | wc -l) -eq 1\"\nverify_every = \"merge\"\n\n{tasks}"
            ),
        );
        let run = repo.run_plan(&plan, &[]);
        let runs = events(&repo, name, "run_verified");
        // No verify of a branch holding part of the group.
        for r in &runs {
            if r["purpose"] == "tip" {
                assert_eq!(r["after"], format!("r{files}"), "{name}: {runs:?}");
            }
        }
        let report = repo.report();
        match name {
            "whole" => {
                run.assert_code(0);
                assert_eq!(runs.len(), 1, "{runs:?}");
                for n in 1..=5 {
                    assert_eq!(task(&report, &format!("r{n}"))["status"], "merged");
                }
            }
            _ => {
                run.assert_code(1);
                for n in 1..=4 {
                    assert_eq!(
                        task(&report, &format!("r{n}"))["status"],
                        "broke_verify",
                        "{report}"
                    );
                }
                snapshot_settings()
                    .bind(|| insta::assert_snapshot!(verify_counts_hidden(&redact(summary_of(&run.stderr), &repo)), @"
                    run partial: finished with failures (exit 1)
                      task  status            time  try  changed  result
                      r1    broke-verify     [T]s    1        1  refs/swarm/partial/r1
                      r2    broke-verify     [T]s    1        1  refs/swarm/partial/r2
                      r3    broke-verify     [T]s    1        1  refs/swarm/partial/r3
                      r4    broke-verify     [T]s    1        1  refs/swarm/partial/r4

                      0 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled, 4 broke verify
                      branch swarm/partial at [HASH], [T]s
                      verify: [N] runs ([N] to find what broke it, [T]s); every merge was taken out: the branch is the run's base again
                      r1: its merge broke the run-wide verify `test $(cat f*.txt | sort -u | wc -l) -eq 1` (one of 4 merges verified as one: r1, r2, r3, r4): [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it passes ([HASH]), see .swarm/runs/partial/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/partial/r1
                      r2: its merge broke the run-wide verify `test $(cat f*.txt | sort -u | wc -l) -eq 1` (one of 4 merges verified as one: r1, r2, r3, r4): [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it passes ([HASH]), see .swarm/runs/partial/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/partial/r2
                      r3: its merge broke the run-wide verify `test $(cat f*.txt | sort -u | wc -l) -eq 1` (one of 4 merges verified as one: r1, r2, r3, r4): [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it passes ([HASH]), see .swarm/runs/partial/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/partial/r3
                      r4: its merge broke the run-wide verify `test $(cat f*.txt | sort -u | wc -l) -eq 1` (one of 4 merges verified as one: r1, r2, r3, r4): [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it passes ([HASH]), see .swarm/runs/partial/logs/@verify/[N].err; its merge was taken out, its work is on refs/swarm/partial/r4
                    "));
                assert_eq!(repo.show("swarm/partial", "f1.txt"), "alpha");
            }
        }
    }
}

/// A plan of three tasks appending to `log.txt` and one adding `b.txt`,
/// plus `extra` lines of `[swarm]`.
fn landing_plan(repo: &TestRepo, name: &str, extra: &str) -> std::path::PathBuf {
    repo.plan_exact(
        &format!("{name}.toml"),
        &format!(
            "[swarm]\nname = \"{name}\"\n{extra}\n\n[defaults]\nallow_overlap = true\n\n[[task]]\nid = \"a{{n}}\"\nrun = \"echo line-{{n}} >> log.txt\"\npaths = [\"log.txt\"]\nmatrix = {{ n = [\"1\", \"2\", \"3\"] }}\n\n[[task]]\nid = \"b\"\nrun = \"echo b > b.txt\"\ncreates = [\"b.txt\"]\n"
        ),
    )
}

/// A run whose branch did not move lands by fast-forward; one whose
/// branch moved (a commit on `log.txt` too) lands its results again on
/// the new tip, the ones that now conflict run again, and the branch
/// checked out here moves with its working tree.
#[test]
fn a_run_lands_on_its_branch_whether_it_moved_or_not() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.commit_all("a log");
    repo.run_plan(&landing_plan(&repo, "still", ""), &[])
        .assert_code(0);
    let dry = repo.swarm(&["land", "still", "--dry-run"]);
    dry.assert_code(0);
    insta::assert_snapshot!("dry_run_fast_forward", redact(&dry.stdout, &repo));
    let landed = repo.swarm(&["land", "still"]);
    landed.assert_code(0);
    insta::assert_snapshot!("landed_fast_forward", redact(&landed.stdout, &repo));
    assert_eq!(
        repo.git(&["rev-parse", "main"]),
        repo.git(&["rev-parse", "swarm/still"])
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // The branch moves while the next run goes.
    let base = repo.git(&["rev-parse", "main"]);
    repo.run_plan(&landing_plan(&repo, "moved", ""), &[])
        .assert_code(0);
    repo.write(
        "log.txt",
        &format!("{}\nsomeone else\n", repo.show("main", "log.txt")),
    );
    repo.commit_all("meanwhile");
    let meanwhile = repo.git(&["rev-parse", "main"]);
    let dry = repo.swarm(&["land", "moved", "--dry-run"]);
    dry.assert_code(0);
    insta::assert_snapshot!("dry_run_moved", redact(&dry.stdout, &repo));
    let landed = repo.swarm(&["land", "moved"]);
    landed.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("landed_moved", redact(&landed.stdout, &repo));
    });
    let log = repo.show("main", "log.txt");
    assert!(
        log.ends_with("someone else\nline-1\nline-2\nline-3"),
        "{log}"
    );
    assert_eq!(repo.show("main", "b.txt"), "b");
    // On top of what moved, nothing of it lost.
    repo.git(&["merge-base", "--is-ancestor", &meanwhile, "main"]);
    assert_ne!(repo.git(&["rev-parse", "main"]), base);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert!(!events(&repo, "moved-land", "task_requeued").is_empty());
}

/// A `swarm land`'s stderr, the same on every run: each landing run's
/// live view (its tasks start two at a time, in any order) with its lines
/// grouped by the task they are about, tasks in name order, each task's
/// lines in their own order, and its verifies after them in theirs.
fn stable_landing(stderr: &str) -> String {
    let key = |line: &str| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("verify"), _) => "~verify".to_string(),
            (_, Some(task)) => task.to_string(),
            _ => String::new(),
        }
    };
    let mut out: Vec<&str> = Vec::new();
    let mut live: Vec<&str> = Vec::new();
    let mut in_live = false;
    for line in stderr.lines() {
        if in_live && line.starts_with("  ") {
            live.push(line);
            continue;
        }
        live.sort_by_key(|l| key(l));
        out.append(&mut live);
        in_live = line.starts_with("swarm: ");
        out.push(line);
    }
    live.sort_by_key(|l| key(l));
    out.append(&mut live);
    out.join("\n") + "\n"
}

/// [`snapshot_settings`], and what a landing's stderr says that depends
/// on the machine or on which task finished first: how many tasks run at
/// once (the CPU count), and the `[k/n]` counters.
fn landing_settings() -> insta::Settings {
    let mut settings = crate::support::snapshot_settings_any_cpus();
    settings.add_filter(r"\[\d+/(\d+)\]", "[_/$1]");
    settings
}

/// A bare repository beside `repo` as its `origin`, with `main` pushed.
fn bare_origin(repo: &TestRepo) -> std::path::PathBuf {
    let remote = repo.root().join("remote.git");
    repo.git(&[
        "init",
        "-q",
        "--bare",
        "-b",
        "main",
        remote.to_str().unwrap(),
    ]);
    repo.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    remote
}

/// Pushed to a remote while someone else pushes to it: the lease refuses
/// the first push (nothing of theirs is overwritten), the run lands again
/// on their commit, and the second push goes through.
#[test]
fn landing_with_push_never_overwrites_what_someone_else_pushed() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.commit_all("a log");
    let remote = bare_origin(&repo);
    let other = repo.root().join("other");
    repo.git(&[
        "clone",
        "-q",
        remote.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    // Someone else pushes a commit the second time the run-wide verify
    // runs: the first landing's (the run's own is the first).
    let count = repo.outside().join("verifies");
    let verify = format!(
        "n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}; if [ $n -eq 2 ]; then cd {other} && echo theirs > theirs.txt && git add theirs.txt && git -c user.name=o -c user.email=o@o commit -qm theirs && git push -q origin main; fi; true",
        count = count.display(),
        other = other.display()
    );
    let plan = landing_plan(
        &repo,
        "pushed",
        &format!(
            "sandbox = \"none\"\nverify = \"{}\"",
            verify.replace('"', "\\\"")
        ),
    );
    repo.run_plan(&plan, &[]).assert_code(0);
    // The remote moves before the landing too (a commit of its own).
    repo.git_in(&other, &["pull", "-q", "origin", "main"]);
    std::fs::write(other.join("early.txt"), "early\n").unwrap();
    repo.git_in(&other, &["add", "early.txt"]);
    repo.git_in(
        &other,
        &[
            "-c",
            "user.name=o",
            "-c",
            "user.email=o@o",
            "commit",
            "-qm",
            "early",
        ],
    );
    repo.git_in(&other, &["push", "-q", "origin", "main"]);
    let landed = repo.swarm(&["land", "pushed", "--push", "origin"]);
    landed.assert_code(0);
    landing_settings().bind(|| insta::assert_snapshot!(redact(&stable_landing(&landed.stderr), &repo), @r#"
    landing run `pushed`: 4 merged tasks again onto [HASH] as run `pushed-land`
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/pushed.toml:3: [swarm] sandbox = "none": runs tasks unconfined, with your permissions and files
    warning: sandbox = "none": tasks of run `pushed-land` run UNCONFINED, with your permissions and environment
    swarm: run pushed-land: 4 tasks, up to [N] at once, from [HASH] ([HASH]) into branch swarm/pushed-land
      start      a1      
      succeeded  a1       [_/4]  adopted from the run it landed in
      merged     a1
      wait       a2        until a1 is merged (both change log.txt), then on the branch as it is
      start      a2      
      succeeded  a2       [_/4]  adopted from the run it landed in
      merged     a2
      wait       a3        until a2 is merged (both change log.txt), then on the branch as it is
      start      a3      
      succeeded  a3       [_/4]  adopted from the run it landed in
      merged     a3
      start      b       
      succeeded  b        [_/4]  adopted from the run it landed in
      merged     b
      verify     [HASH] (tip: after b) passed in [T]s

    run pushed-land: succeeded
      task  status          time  try  changed  result
      a1    merged         [T]s    1        1  refs/swarm/pushed-land/a1
      a2    merged         [T]s    1        1  refs/swarm/pushed-land/a2
      a3    merged         [T]s    1        1  refs/swarm/pushed-land/a3
      b     merged         [T]s    1        1  refs/swarm/pushed-land/b

      4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/pushed-land at [HASH], [T]s
      verify: 1 run ([T]s); the branch passes
    `main` moved while run `pushed` landed (landing 1 of 3): landing again on its new tip
    landing run `pushed`: 4 merged tasks again onto [HASH] as run `pushed-land-2`
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/pushed.toml:3: [swarm] sandbox = "none": runs tasks unconfined, with your permissions and files
    warning: sandbox = "none": tasks of run `pushed-land-2` run UNCONFINED, with your permissions and environment
    swarm: run pushed-land-2: 4 tasks, up to [N] at once, from [HASH] ([HASH]) into branch swarm/pushed-land-2
      start      a1      
      succeeded  a1       [_/4]  adopted from the run it landed in
      merged     a1
      wait       a2        until a1 is merged (both change log.txt), then on the branch as it is
      start      a2      
      succeeded  a2       [_/4]  adopted from the run it landed in
      merged     a2
      wait       a3        until a2 is merged (both change log.txt), then on the branch as it is
      start      a3      
      succeeded  a3       [_/4]  adopted from the run it landed in
      merged     a3
      start      b       
      succeeded  b        [_/4]  adopted from the run it landed in
      merged     b
      verify     [HASH] (tip: after b) passed in [T]s

    run pushed-land-2: succeeded
      task  status          time  try  changed  result
      a1    merged         [T]s    1        1  refs/swarm/pushed-land-2/a1
      a2    merged         [T]s    1        1  refs/swarm/pushed-land-2/a2
      a3    merged         [T]s    1        1  refs/swarm/pushed-land-2/a3
      b     merged         [T]s    1        1  refs/swarm/pushed-land-2/b

      4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/pushed-land-2 at [HASH], [T]s
      verify: 1 run ([T]s); the branch passes
    "#));
    let tip = repo.git_in(&remote, &["rev-parse", "main"]);
    let files = repo.git_in(&remote, &["ls-tree", "--name-only", &tip]);
    for f in ["early.txt", "theirs.txt", "b.txt", "log.txt"] {
        assert!(files.lines().any(|l| l == f), "{f} missing: {files}");
    }
    let log = repo.git_in(&remote, &["show", &format!("{tip}:log.txt")]);
    assert_eq!(log, "start\nline-1\nline-2\nline-3");
}

/// Whether `rev` holds a file at `path`.
fn has_file(repo: &TestRepo, rev: &str, path: &str) -> bool {
    repo.git_output(&["cat-file", "-e", &format!("{rev}:{path}")])
        .status
        .success()
}

/// The branches of `repo`, each with its commit: what a refused landing
/// must leave as it was.
fn branches(repo: &TestRepo) -> String {
    repo.git(&[
        "for-each-ref",
        "--format=%(objectname) %(refname)",
        "refs/heads",
    ])
}

/// `--onto BRANCH` lands on a branch other than the one the run started
/// from: by fast-forward onto one still at the run's base, merged again
/// onto one that moved; the run's own base branch stays where it is. What
/// is not a branch (a tag, a commit, `main~1`, a name of no branch here or
/// on the remote) is refused before anything runs, saying what to do,
/// exit 2.
#[test]
fn a_run_lands_onto_another_branch_and_never_onto_what_is_not_one() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.commit_all("a log");
    let base = repo.git(&["rev-parse", "main"]);
    repo.git(&["branch", "still", "main"]);
    repo.git(&["branch", "release", "main"]);
    repo.git(&["tag", "v1", "main"]);
    bare_origin(&repo);
    repo.run_plan(&landing_plan(&repo, "onto", ""), &[])
        .assert_code(0);
    // `release` moves (a line of its own in log.txt); `still` does not.
    repo.git(&["checkout", "-q", "release"]);
    repo.write("log.txt", "start\non release\n");
    repo.commit_all("on release");
    let release = repo.git(&["rev-parse", "release"]);
    repo.git(&["checkout", "-q", "main"]);

    let before = branches(&repo);
    // Each refusal, one after the other, snapshotted together; the same
    // with --dry-run.
    let mut refusals = String::new();
    for (onto, push) in [
        ("v1", false),
        ("refs/tags/v1", false),
        (base.as_str(), false),
        // A revision of a branch is not the branch (it once ran a whole
        // landing, then failed to move `refs/heads/release~1`, exit 3).
        ("release~1", false),
        ("nosuch", false),
        ("release~1", true),
        ("nosuch", true),
    ] {
        let mut args = vec!["land", "onto", "--onto", onto];
        if push {
            args.extend(["--push", "origin"]);
        }
        let refused = repo.swarm(&args);
        refused.assert_code(2);
        assert!(!refused.stdout.contains("landed"), "{}", refused.stdout);
        args.push("--dry-run");
        let dry = repo.swarm(&args);
        dry.assert_code(2);
        assert_eq!(dry.stderr, refused.stderr, "{args:?}");
        assert!(!dry.stdout.contains("landed"), "{}", dry.stdout);
        args.pop();
        refusals.push_str(&format!("$ swarm {}\n{}\n", args.join(" "), refused.stderr));
    }
    insta::assert_snapshot!("land_onto_refusals", redact(&refusals, &repo));
    assert_eq!(branches(&repo), before);
    assert!(!repo.has_rev("swarm/onto-land"), "a landing ran");

    // Onto a branch still at the run's base (named as a ref): fast-forward.
    let landed = repo.swarm(&["land", "onto", "--onto", "refs/heads/still"]);
    landed.assert_code(0);
    insta::assert_snapshot!("landed_onto_still", redact(&landed.stdout, &repo));
    assert_eq!(
        repo.git(&["rev-parse", "still"]),
        repo.git(&["rev-parse", "swarm/onto"])
    );
    // Onto one that moved: merged again on its tip.
    let landed = repo.swarm(&["land", "onto", "--onto", "release"]);
    landed.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("landed_onto_release", redact(&landed.stdout, &repo));
    });
    assert_eq!(
        repo.show("release", "log.txt"),
        "start\non release\nline-1\nline-2\nline-3"
    );
    assert_eq!(repo.show("release", "b.txt"), "b");
    repo.git(&["merge-base", "--is-ancestor", &release, "release"]);
    assert!(repo.has_rev("swarm/onto-land"));
    // The branch the run started from, checked out here, did not move.
    assert_eq!(repo.git(&["rev-parse", "main"]), base);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

/// A landing whose run-wide verify fails leaves the branch exactly where
/// it was, exit 1, and says nothing was landed: when a commit made on the
/// branch meanwhile breaks what the verify checks (the landing's base
/// fails too: no task is blamed), and when that commit and a result break
/// it together (that result is proven to break it and taken out; the
/// landing run's branch without it passes, but a landing is all of the
/// run's results or nothing).
#[test]
fn a_landing_whose_verify_fails_leaves_the_branch_where_it_was() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.write("config.txt", "ok\n");
    repo.commit_all("a log and a config");
    // The config must say `ok`, and `b.txt` hold no line `forbid.txt` lists
    // (no `forbid.txt`: `grep` fails, so the check passes).
    let verify = "grep -qx ok config.txt && ! grep -qxf forbid.txt b.txt";
    for name in ["together", "alone"] {
        repo.run_plan(
            &landing_plan(&repo, name, &format!("verify = \"{verify}\"")),
            &[],
        )
        .assert_code(0);
    }

    // A commit forbids what task `b` writes.
    repo.write("forbid.txt", "b\n");
    repo.commit_all("forbid b");
    let tip = repo.git(&["rev-parse", "main"]);
    let landed = repo.swarm(&["land", "together"]);
    landed.assert_code(1);
    landing_settings().bind(|| insta::assert_snapshot!(redact(&stable_landing(&landed.stderr), &repo), @"
    landing run `together`: 4 merged tasks again onto [HASH] as run `together-land`
    swarm: run together-land: 4 tasks, up to [N] at once, from [HASH] ([HASH]) into branch swarm/together-land
      start      a1      
      succeeded  a1       [_/4]  adopted from the run it landed in
      merged     a1
      wait       a2        until a1 is merged (both change log.txt), then on the branch as it is
      start      a2      
      succeeded  a2       [_/4]  adopted from the run it landed in
      merged     a2
      wait       a3        until a2 is merged (both change log.txt), then on the branch as it is
      start      a3      
      succeeded  a3       [_/4]  adopted from the run it landed in
      merged     a3
      start      b       
      succeeded  b        [_/4]  adopted from the run it landed in
      merged     b
      unmerged   b         its merge was taken out of the integration branch
      verify     [HASH] (tip: after b) failed (exit 1) in [T]s
      verify     [HASH] (tip: after b, run again after 1 failure) failed (exit 1) in [T]s
      verify     [HASH] (bisect: after a2) passed in [T]s
      verify     [HASH] (bisect: after a3) passed in [T]s

    run together-land: finished with failures (exit 1)
      task  status            time  try  changed  result
      a1    merged           [T]s    1        1  refs/swarm/together-land/a1
      a2    merged           [T]s    1        1  refs/swarm/together-land/a2
      a3    merged           [T]s    1        1  refs/swarm/together-land/a3
      b     broke-verify     [T]s    1        1  refs/swarm/together-land/b

      3 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled, 1 broke verify
      branch swarm/together-land at [HASH], [T]s
      verify: 4 runs (2 to find what broke it, [T]s); the branch passes
      b: its merge broke the run-wide verify `grep -qx ok config.txt && ! grep -qxf forbid.txt b.txt`: [HASH] (with it) fails, [HASH] (before it) passes, and the branch without it passes ([HASH]), see .swarm/runs/together-land/logs/@verify/2.err; its merge was taken out, its work is on refs/swarm/together-land/b
    run `together-land` did not end well: nothing was landed (its branch is swarm/together-land)
    "));
    assert!(!landed.stdout.contains("landed run"), "{}", landed.stdout);
    assert_eq!(repo.git(&["rev-parse", "main"]), tip);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    let report = repo.report();
    assert_eq!(report["run"], "together-land");
    assert_eq!(task(&report, "b")["status"], "broke_verify", "{report}");
    assert_eq!(task(&report, "a1")["status"], "merged", "{report}");
    assert!(!has_file(&repo, "swarm/together-land", "b.txt"));
    assert!(has_file(&repo, "swarm/together", "b.txt"));

    // A commit breaks the config: the landing fails at its base too.
    repo.git(&["rm", "-q", "forbid.txt"]);
    repo.write("config.txt", "broken\n");
    repo.commit_all("break the config");
    let tip = repo.git(&["rev-parse", "main"]);
    let landed = repo.swarm(&["land", "alone"]);
    landed.assert_code(1);
    landing_settings().bind(|| insta::assert_snapshot!(redact(&stable_landing(&landed.stderr), &repo), @"
    landing run `alone`: 4 merged tasks again onto [HASH] as run `alone-land`
    swarm: run alone-land: 4 tasks, up to [N] at once, from [HASH] ([HASH]) into branch swarm/alone-land
      start      a1      
      succeeded  a1       [_/4]  adopted from the run it landed in
      merged     a1
      wait       a2        until a1 is merged (both change log.txt), then on the branch as it is
      start      a2      
      succeeded  a2       [_/4]  adopted from the run it landed in
      merged     a2
      wait       a3        until a2 is merged (both change log.txt), then on the branch as it is
      start      a3      
      succeeded  a3       [_/4]  adopted from the run it landed in
      merged     a3
      start      b       
      succeeded  b        [_/4]  adopted from the run it landed in
      merged     b
      verify     [HASH] (tip: after b) failed (exit 1) in [T]s
      verify     [HASH] (tip: after b, run again after 1 failure) failed (exit 1) in [T]s
      verify     [HASH] (bisect: after a2) failed (exit 1) in [T]s
      verify     [HASH] (bisect: after a1) failed (exit 1) in [T]s
      verify     [HASH] (the base) failed (exit 1) in [T]s
      verify     [HASH] (the base, run again after 1 failure) failed (exit 1) in [T]s

    run alone-land: finished with failures (exit 1)
      task  status          time  try  changed  result
      a1    merged         [T]s    1        1  refs/swarm/alone-land/a1
      a2    merged         [T]s    1        1  refs/swarm/alone-land/a2
      a3    merged         [T]s    1        1  refs/swarm/alone-land/a3
      b     merged         [T]s    1        1  refs/swarm/alone-land/b

      4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/alone-land at [HASH], [T]s
      verify: 6 runs (4 to find what broke it, [T]s); it FAILS at the base [HASH] too, so no task is blamed; see .swarm/runs/alone-land/logs/@verify/5.err
    run `alone-land` did not end well: nothing was landed (its branch is swarm/alone-land)
    "));
    assert_eq!(repo.git(&["rev-parse", "main"]), tip);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    let report = repo.report();
    assert_eq!(report["run"], "alone-land");
    for id in ["a1", "a2", "a3", "b"] {
        assert_eq!(task(&report, id)["status"], "merged", "{report}");
    }
}

/// A run whose branch fails its run-wide verify (no single task broke it,
/// so every merge was kept) does not land by fast-forward, nor say it
/// would: exit 1, the branch where it was.
#[test]
fn a_branch_that_fails_its_verify_does_not_land_by_fast_forward() {
    let repo = TestRepo::new();
    for n in 1..=3 {
        repo.write(&format!("f{n}.txt"), "alpha\n");
    }
    repo.commit_all("three files");
    let tasks: String = (1..=2)
        .map(|n| {
            format!(
                "[[task]]\nid = \"r{n}\"\npaths = [\"f{n}.txt\"]\nrun = \"sed -i s/alpha/beta/ f{n}.txt\"\n\n"
            )
        })
        .collect();
    let plan = repo.plan_exact(
        "partial.toml",
        &format!(
            "[swarm]\nname = \"partial\"\non_failure = \"continue\"\nverify = \"test $(cat f*.txt | sort -u | wc -l) -eq 1\"\n\n{tasks}"
        ),
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "r2")["status"], "merged", "{report}");
    let main = repo.git(&["rev-parse", "main"]);
    assert_eq!(report["base_commit"], main.as_str());
    let mut refusals = Vec::new();
    for dry in [true, false] {
        let mut args = vec!["land", "partial"];
        if dry {
            args.push("--dry-run");
        }
        let refused = repo.swarm(&args);
        refused.assert_code(1);
        refusals.push(refused.stderr.clone());
        assert!(
            !refused.stdout.contains("fast-forward"),
            "{}",
            refused.stdout
        );
        assert_eq!(repo.git(&["rev-parse", "main"]), main);
    }
    // The same refusal with --dry-run and without.
    assert_eq!(refusals[0], refusals[1]);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&refusals[0], &repo), @"error: failed to land run `partial`: its branch fails its run-wide verify (see `swarm status partial`); nothing was landed"));
    assert_eq!(repo.show("main", "f1.txt"), "alpha");
}

/// A branch that moves during every landing (here the run-wide verify
/// itself commits to it, each time it runs): each landing ends well, finds
/// the branch moved and never overwrites it, lands again, and after the
/// third gives up, exit 1, nothing of the run on the branch.
#[test]
fn a_branch_that_keeps_moving_is_landed_on_three_times_then_left_alone() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.commit_all("a log");
    // Armed after the run: a commit on main (with main's tree, so the
    // working tree here stays as it is) each time the verify runs.
    let arm = repo.outside().join("arm");
    let verify = format!(
        "if [ -f {arm} ]; then cd {repo} && git update-ref refs/heads/main $(git -c user.name=o -c user.email=o@o commit-tree -p main -m moved main^{{tree}}); fi; true",
        arm = arm.display(),
        repo = repo.path().display()
    );
    let plan = landing_plan(
        &repo,
        "kept",
        &format!(
            "sandbox = \"none\"\nverify = \"{}\"",
            verify.replace('"', "\\\"")
        ),
    );
    repo.run_plan(&plan, &[]).assert_code(0);
    repo.write("other.txt", "other\n");
    repo.commit_all("meanwhile");
    let meanwhile = repo.git(&["rev-parse", "main"]);
    std::fs::write(&arm, "").unwrap();
    let landed = repo.swarm(&["land", "kept"]);
    landed.assert_code(1);
    landing_settings().bind(|| insta::assert_snapshot!(redact(&stable_landing(&landed.stderr), &repo), @r#"
    landing run `kept`: 4 merged tasks again onto [HASH] as run `kept-land`
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/kept.toml:3: [swarm] sandbox = "none": runs tasks unconfined, with your permissions and files
    warning: sandbox = "none": tasks of run `kept-land` run UNCONFINED, with your permissions and environment
    swarm: run kept-land: 4 tasks, up to [N] at once, from [HASH] ([HASH]) into branch swarm/kept-land
      start      a1      
      succeeded  a1       [_/4]  adopted from the run it landed in
      merged     a1
      wait       a2        until a1 is merged (both change log.txt), then on the branch as it is
      start      a2      
      succeeded  a2       [_/4]  adopted from the run it landed in
      merged     a2
      wait       a3        until a2 is merged (both change log.txt), then on the branch as it is
      start      a3      
      succeeded  a3       [_/4]  adopted from the run it landed in
      merged     a3
      start      b       
      succeeded  b        [_/4]  adopted from the run it landed in
      merged     b
      verify     [HASH] (tip: after b) passed in [T]s

    run kept-land: succeeded
      task  status          time  try  changed  result
      a1    merged         [T]s    1        1  refs/swarm/kept-land/a1
      a2    merged         [T]s    1        1  refs/swarm/kept-land/a2
      a3    merged         [T]s    1        1  refs/swarm/kept-land/a3
      b     merged         [T]s    1        1  refs/swarm/kept-land/b

      4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/kept-land at [HASH], [T]s
      verify: 1 run ([T]s); the branch passes
    `main` moved while run `kept` landed (landing 1 of 3): landing again on its new tip
    landing run `kept`: 4 merged tasks again onto [HASH] as run `kept-land-2`
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/kept.toml:3: [swarm] sandbox = "none": runs tasks unconfined, with your permissions and files
    warning: sandbox = "none": tasks of run `kept-land-2` run UNCONFINED, with your permissions and environment
    swarm: run kept-land-2: 4 tasks, up to [N] at once, from [HASH] ([HASH]) into branch swarm/kept-land-2
      start      a1      
      succeeded  a1       [_/4]  adopted from the run it landed in
      merged     a1
      wait       a2        until a1 is merged (both change log.txt), then on the branch as it is
      start      a2      
      succeeded  a2       [_/4]  adopted from the run it landed in
      merged     a2
      wait       a3        until a2 is merged (both change log.txt), then on the branch as it is
      start      a3      
      succeeded  a3       [_/4]  adopted from the run it landed in
      merged     a3
      start      b       
      succeeded  b        [_/4]  adopted from the run it landed in
      merged     b
      verify     [HASH] (tip: after b) passed in [T]s

    run kept-land-2: succeeded
      task  status          time  try  changed  result
      a1    merged         [T]s    1        1  refs/swarm/kept-land-2/a1
      a2    merged         [T]s    1        1  refs/swarm/kept-land-2/a2
      a3    merged         [T]s    1        1  refs/swarm/kept-land-2/a3
      b     merged         [T]s    1        1  refs/swarm/kept-land-2/b

      4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/kept-land-2 at [HASH], [T]s
      verify: 1 run ([T]s); the branch passes
    `main` moved while run `kept` landed (landing 2 of 3): landing again on its new tip
    landing run `kept`: 4 merged tasks again onto [HASH] as run `kept-land-3`
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/kept.toml:3: [swarm] sandbox = "none": runs tasks unconfined, with your permissions and files
    warning: sandbox = "none": tasks of run `kept-land-3` run UNCONFINED, with your permissions and environment
    swarm: run kept-land-3: 4 tasks, up to [N] at once, from [HASH] ([HASH]) into branch swarm/kept-land-3
      start      a1      
      succeeded  a1       [_/4]  adopted from the run it landed in
      merged     a1
      wait       a2        until a1 is merged (both change log.txt), then on the branch as it is
      start      a2      
      succeeded  a2       [_/4]  adopted from the run it landed in
      merged     a2
      wait       a3        until a2 is merged (both change log.txt), then on the branch as it is
      start      a3      
      succeeded  a3       [_/4]  adopted from the run it landed in
      merged     a3
      start      b       
      succeeded  b        [_/4]  adopted from the run it landed in
      merged     b
      verify     [HASH] (tip: after b) passed in [T]s

    run kept-land-3: succeeded
      task  status          time  try  changed  result
      a1    merged         [T]s    1        1  refs/swarm/kept-land-3/a1
      a2    merged         [T]s    1        1  refs/swarm/kept-land-3/a2
      a3    merged         [T]s    1        1  refs/swarm/kept-land-3/a3
      b     merged         [T]s    1        1  refs/swarm/kept-land-3/b

      4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/kept-land-3 at [HASH], [T]s
      verify: 1 run ([T]s); the branch passes
    `main` moved while run `kept` landed (landing 3 of 3)
    error: failed to land run `kept`: `main` kept moving; nothing was changed, land it again
    "#));
    assert!(!landed.stdout.contains("landed run"), "{}", landed.stdout);
    // Three landings, each of which ended well; none a fourth.
    for name in ["kept-land", "kept-land-2", "kept-land-3"] {
        let status = repo.swarm(&["status", name, "--json"]);
        status.assert_code(0);
        let report: Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(report["exit_code"], 0, "{name}: {report}");
    }
    assert!(!repo.has_rev("swarm/kept-land-4"));
    // Main is what moved it (three commits of the verify's on
    // `meanwhile`), nothing of the run's.
    let moved = repo.git(&["log", "--format=%s", &format!("{meanwhile}..main")]);
    assert_eq!(moved, "moved\nmoved\nmoved");
    assert_eq!(repo.show("main", "log.txt"), "start");
    assert!(!has_file(&repo, "main", "b.txt"));
    assert!(has_file(&repo, "swarm/kept-land-3", "b.txt"));
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

/// A model whose agent, told to rename alpha in `file`, first "forgets"
/// (writes it unchanged); told the run-wide verify's failure (which names
/// `file`), it renames it, after `pause`.
fn forgetful_renamer(file: &'static str, pause: std::time::Duration) -> MockModel {
    let prompt = format!("Rename alpha in {file}.");
    MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        move |call| {
            if !call.conversation.contains(&prompt) {
                return Reply::text("ok");
            }
            let told = call.conversation.contains("run-wide verify");
            match (told, call.turn) {
                (false, 0) => Reply::answer(vec![tool(
                    "w1",
                    "write_file",
                    json!({"path": file, "content": "alpha\n"}),
                )]),
                (true, 0) => {
                    assert!(call.conversation.contains(file), "{}", call.conversation);
                    std::thread::sleep(pause);
                    Reply::answer(vec![tool(
                        "w2",
                        "write_file",
                        json!({"path": file, "content": "beta\n"}),
                    )])
                }
                _ => Reply::answer(vec![tool("f1", "finish", json!({"summary": "renamed"}))]),
            }
        },
    )
}

/// A rename in five files, four pieces by shell tasks and the fifth by an
/// agent that leaves its file as it was: the verify's failure names
/// `f5.txt`, which the agent owns by its `paths`. Before anything is taken
/// out, the agent runs again on the integration branch as it is, told the
/// failure (a repair round); its fix merges on top, and the run passes.
#[test]
fn an_agent_named_by_the_verify_gets_a_repair_round_and_the_run_passes() {
    let repo = TestRepo::new();
    for n in 1..=5 {
        repo.write(&format!("f{n}.txt"), "alpha\n");
    }
    repo.commit_all("five files");
    let mock = forgetful_renamer("f5.txt", std::time::Duration::ZERO);
    let mut tasks: String = (1..=4)
        .map(|n| {
            format!(
                "[[task]]\nid = \"r{n}\"\npaths = [\"f{n}.txt\"]\nrun = \"sed -i s/alpha/beta/ f{n}.txt\"\n\n"
            )
        })
        .collect();
    tasks.push_str(
        "[[task]]\nid = \"r5\"\nprompt = \"Rename alpha in f5.txt.\"\npaths = [\"f5.txt\"]\n",
    );
    let text = anthropic_plan(&mock, "", &tasks).replace(
        "[swarm]\n",
        "[swarm]\nname = \"repair\"\nverify = \"if grep -q beta f*.txt; then ! grep -l alpha f*.txt; fi\"\n",
    );
    let plan = repo.plan_exact("repair.toml", &text);
    let run = run_with_key(&repo, &plan);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for n in 1..=5 {
        assert_eq!(
            repo.show("swarm/repair", &format!("f{n}.txt")),
            "beta",
            "f{n}"
        );
    }
    let requeued = events(&repo, "repair", "task_requeued");
    assert_eq!(requeued.len(), 1, "{requeued:?}");
    assert_eq!(requeued[0]["task"], "r5");
    assert_eq!(requeued[0]["repair"], true);
    assert!(events(&repo, "repair", "verify_broken").is_empty());
    let report = repo.report();
    assert_eq!(task(&report, "r5")["status"], "merged", "{report}");
    assert!(report.get("verify_named").is_none(), "{report}");
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(verify_counts_hidden(&redact(summary_of(&run.stderr), &repo)), @"
        run repair: succeeded
          task  status          time  try  changed    tokens      cost  result
          r1    merged         [T]s    1        1         -         -  refs/swarm/repair/r1
          r2    merged         [T]s    1        1         -         -  refs/swarm/repair/r2
          r3    merged         [T]s    1        1         -         -  refs/swarm/repair/r3
          r4    merged         [T]s    1        1         -         -  refs/swarm/repair/r4
          r5    merged         [T]s    2        1       240   $0.0012  refs/swarm/repair/r5

          5 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/repair at [HASH], [T]s
          verify: [N] runs ([N] to find what broke it, [T]s); the branch passes
          agents: 1 session, 2 turns, 200 tokens in, 40 out, $0.0012
        "));
    mock.assert_clean();
}

/// Issue 75, finding 2: `land` never moves a branch checked out in another
/// worktree of the repository (its files would stay behind and a `git
/// commit -a` there would undo the landing; `git branch -f` refuses the
/// same). It says where, and what to do; then it lands.
#[test]
fn land_never_moves_a_branch_checked_out_in_a_linked_worktree() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.commit_all("a log");
    repo.git(&["switch", "-q", "-c", "dev"]);
    let linked = repo.outside().join("linked");
    repo.git(&["worktree", "add", "-q", linked.to_str().unwrap(), "main"]);
    repo.run_plan(&landing_plan(&repo, "elsewhere", ""), &["--base", "main"])
        .assert_code(0);
    let main = repo.git(&["rev-parse", "main"]);
    let out = repo.swarm(&["land", "elsewhere"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&out.stderr, &repo), @"
    error: failed to land run `elsewhere`: `main` is checked out in the worktree [TMP]/outside/linked, whose files would not follow (git branch -f refuses the same)
    help: switch that worktree off it (`git -C [TMP]/outside/linked switch --detach`) and land again, or land onto another branch: `swarm land elsewhere --onto NAME`
    "));
    assert_eq!(repo.git(&["rev-parse", "main"]), main, "main moved");
    assert_eq!(repo.git_in(&linked, &["status", "--porcelain"]), "");
    // Switched off it there, it lands.
    repo.git_in(&linked, &["switch", "-q", "--detach"]);
    repo.swarm(&["land", "elsewhere"]).assert_code(0);
    assert_eq!(
        repo.git(&["rev-parse", "main"]),
        repo.git(&["rev-parse", "swarm/elsewhere"])
    );
}

/// Issue 75, finding 5: a `swarm land` killed while its landing run
/// verifies is continued under the landing run's own name by the next
/// `swarm land`; and one whose landing run ended well but whose branch did
/// not move (killed between the two) lands that run's branch, its verify
/// not run again.
#[test]
fn a_killed_landing_is_continued_under_its_own_name() {
    let repo = TestRepo::new();
    repo.write("log.txt", "start\n");
    repo.commit_all("a log");
    let plan = landing_plan(&repo, "stopped", "verify = \"sleep 2\"");
    repo.run_plan(&plan, &[]).assert_code(0);
    repo.write("c.txt", "someone else\n");
    repo.commit_all("meanwhile");
    let meanwhile = repo.git(&["rev-parse", "main"]);
    let mut child = repo
        .swarm_cmd(&["land", "stopped"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_until("the landing run merged its results", || {
        repo.path()
            .join(".swarm/runs/stopped-land/events.jsonl")
            .exists()
            && events(&repo, "stopped-land", "task_merged").len() == 4
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    crate::resume::kill9(&mut child);
    assert_eq!(repo.git(&["rev-parse", "main"]), meanwhile);

    let again = repo.swarm(&["land", "stopped"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    landing_settings().bind(|| insta::assert_snapshot!(redact(&stable_landing(&again.stderr), &repo), @"
    landing run `stopped-land` of run `stopped` was stopped: resuming it
    swarm: run stopped-land: 4 tasks, up to [N] at once, from [HASH] ([HASH]) into branch swarm/stopped-land
    swarm: resuming: 0 tasks to run
      verify     [HASH] (tip: after b) passed in [T]s

    run stopped-land: succeeded
      task  status          time  try  changed  result
      a1    merged         [T]s    1        1  refs/swarm/stopped-land/a1
      a2    merged         [T]s    1        1  refs/swarm/stopped-land/a2
      a3    merged         [T]s    1        1  refs/swarm/stopped-land/a3
      b     merged         [T]s    1        1  refs/swarm/stopped-land/b

      4 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/stopped-land at [HASH], [T]s
      verify: 1 run ([T]s); the branch passes
    "));
    assert!(!repo.path().join(".swarm/runs/stopped-land-2").exists());
    assert_eq!(
        repo.git(&["rev-parse", "main"]),
        repo.git(&["rev-parse", "swarm/stopped-land"])
    );

    // Landed, then the branch put back where the landing started: as if
    // killed between its verify and the branch's move.
    repo.git(&["reset", "-q", "--hard", &meanwhile]);
    let verified = events(&repo, "stopped-land", "run_verified").len();
    let once_more = repo.swarm(&["land", "stopped"]);
    assert_eq!(once_more.code, 0, "{}", once_more.stderr);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&once_more.stderr, &repo), @"run `stopped` was landed onto [HASH] as run `stopped-land`, which ended well: landing its branch"));
    assert_eq!(
        events(&repo, "stopped-land", "run_verified").len(),
        verified
    );
    assert!(!repo.path().join(".swarm/runs/stopped-land-2").exists());
    assert_eq!(
        repo.git(&["rev-parse", "main"]),
        repo.git(&["rev-parse", "swarm/stopped-land"])
    );
}

/// A run killed while its agent's repair round runs: `swarm resume` starts
/// the agent again from the branch as it is, told the verify's failure
/// again (the note is journaled), gives it no second round, and the run
/// passes.
#[test]
fn a_repair_round_interrupted_is_resumed_with_its_note() {
    let repo = TestRepo::new();
    for n in 1..=3 {
        repo.write(&format!("f{n}.txt"), "alpha\n");
    }
    repo.commit_all("three files");
    // Slow to repair: the coordinator is killed meanwhile.
    let mock = forgetful_renamer("f3.txt", std::time::Duration::from_secs(2));
    let tasks = "[[task]]\nid = \"r1\"\npaths = [\"f1.txt\"]\nrun = \"sed -i s/alpha/beta/ f1.txt\"\n\n\
                 [[task]]\nid = \"r2\"\npaths = [\"f2.txt\"]\nrun = \"sed -i s/alpha/beta/ f2.txt\"\n\n\
                 [[task]]\nid = \"r3\"\nprompt = \"Rename alpha in f3.txt.\"\npaths = [\"f3.txt\"]\n";
    let text = anthropic_plan(&mock, "", tasks).replace(
        "[swarm]\n",
        "[swarm]\nname = \"again\"\nverify = \"if grep -q beta f*.txt; then ! grep -l alpha f*.txt; fi\"\n",
    );
    let plan = repo.plan_exact("again.toml", &text);
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap()])
        .env("TEST_MODEL_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_until("the repair round began", || {
        repo.path().join(".swarm/runs/again/events.jsonl").exists()
            && !events(&repo, "again", "task_requeued").is_empty()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    crate::resume::kill9(&mut child);
    let resumed: crate::support::Run = repo
        .swarm_cmd(&["resume", "again"])
        .env("TEST_MODEL_KEY", KEY)
        .output()
        .unwrap()
        .into();
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    for n in 1..=3 {
        assert_eq!(
            repo.show("swarm/again", &format!("f{n}.txt")),
            "beta",
            "f{n}"
        );
    }
    assert_eq!(events(&repo, "again", "task_requeued").len(), 1);
}
