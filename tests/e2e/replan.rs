//! Bounded replanning (issue 20): a task that failed after its retries is
//! shown to the model (the mock, answering whole), whose fix is checked
//! like a plan, journaled as a diff and run in the failed task's place;
//! at most `replan` times per run.

use crate::resume::journal;
use crate::subtasks::{at, model_plan};
use crate::support::{TestRepo, redact, snapshot_settings, stable_stderr, task};

pub(crate) fn fix_answer(json: &str) -> crate::support::model::Reply {
    crate::support::model::Reply::answer(vec![crate::support::model::text(format!(
        "Here is the fix.\n```json\n{json}\n```"
    ))])
}

/// The mock model as the replanner meets it: the key, whole answers.
fn replanner(
    script: impl Fn(&crate::support::model::Call) -> crate::support::model::Reply
    + Send
    + Sync
    + 'static,
) -> crate::support::model::MockModel {
    crate::subtasks::keyed_mock(Some(false), script)
}

#[test]
fn replanning_inserts_a_fix_that_succeeds_and_the_failed_tasks_dependents_run_on_it() {
    use crate::agent::run_with_key;

    let repo = TestRepo::new();
    let mock = replanner(|call| {
        assert!(
            call.conversation.starts_with("Replan 1 of at most 1"),
            "{}",
            call.conversation
        );
        match call.turn {
            0 => {
                assert!(
                    call.conversation.contains("The failed task `build`"),
                    "{}",
                    call.conversation
                );
                assert!(
                    call.conversation.contains("exited with code 1"),
                    "{}",
                    call.conversation
                );
                assert!(
                    call.conversation.contains("no missing.txt here"),
                    "{}",
                    call.conversation
                );
                // Outside what build may write: refused, sent back.
                fix_answer(
                    r#"{"reason": "r", "tasks": [{"id": "fix", "why": "w", "run": "true", "creates": ["elsewhere.txt"]}]}"#,
                )
            }
            _ => {
                assert!(
                    call.last_user_text
                        .contains("outside what its parent `build` may write"),
                    "{}",
                    call.last_user_text
                );
                fix_answer(
                    r#"{"reason": "missing.txt is never made: write out.txt directly", "tasks": [{"id": "fix", "why": "make the output", "run": "echo fixed > out.txt", "creates": ["out.txt"]}]}"#,
                )
            }
        }
    });
    let tasks = "[[task]]\nid = \"build\"\ncreates = [\"out.txt\"]\nrun = \"echo half > out.txt; test -f missing.txt || { echo no missing.txt here >&2; exit 1; }\"\n\n[[task]]\nid = \"after\"\ndeps = [\"build\"]\ncreates = [\"after.txt\"]\nrun = \"cat out.txt > after.txt\"\n";
    let plan = model_plan(&repo, &mock, "fix", "replan = 1", tasks);
    let out = run_with_key(&repo, &plan);
    out.assert_code(0);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    assert_eq!(mock.calls().len(), 2);
    let report = repo.report();
    let build = task(&report, "build");
    assert_eq!(build["status"], "merged", "{report}");
    assert_eq!(
        build["replanned"],
        "missing.txt is never made: write out.txt directly"
    );
    assert_eq!(task(&report, "build/fix")["status"], "succeeded");
    // The fix started where build started: build's failed result is not
    // part of the line.
    assert_eq!(repo.show("swarm/fix", "out.txt"), "fixed");
    assert_eq!(repo.show("swarm/fix", "after.txt"), "fixed");
    // Build's failed attempt is kept.
    assert_eq!(repo.show("refs/swarm/fix/build.1", "out.txt"), "half");
    let events = journal(&repo, "fix");
    assert!(at(&events, "replan_started", "build") < at(&events, "replanned", "build"));
    assert!(at(&events, "replanned", "build") < at(&events, "subtasks_spawned", "build"));
    // The live view and the summary; how many tasks run at once is this
    // machine's CPU count.
    let settings = crate::support::snapshot_settings_any_cpus();
    settings.bind(|| insta::assert_snapshot!(redact(&stable_stderr(&out.stderr), &repo), @r#"
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/fix.toml:11: [models.default] base_url = "http://127.0.0.1:[PORT]": sends $TEST_MODEL_KEY to 127.0.0.1:[PORT]
      [TMP]/plans/fix.toml:12: [models.default] api_key_env = "TEST_MODEL_KEY": reads $TEST_MODEL_KEY as the API key (the provider's own is $ANTHROPIC_API_KEY)
    swarm: run fix: 2 tasks, up to [N] at once, from HEAD ([HASH]) into branch swarm/fix
      start      build   
      replan     build     failed; asking for a new plan (replan 1 of 1)
      replanned  build     missing.txt is never made: write out.txt directly
                 - [[task]] id = "build"   # exited with code 1
                 -   run = "echo half > out.txt; test -f missing.txt || { echo no missing.txt here >&2; exit 1; }"
                 + [[task]]
                 + creates = ["out.txt"]
                 + id = "build/fix"
                 + run = "echo fixed > out.txt"
      spawned    build      1 subtask: fix
      start      build/fix
      succeeded  build/fix [1/3]
      joined     build      its subtasks merged onto it ([HASH])
      succeeded  build     [2/3]
      merged     build
      start      after    
      succeeded  after     [3/3]
      merged     after

    run fix: succeeded
      task       status          time  try  changed  result
      build      merged         [T]s    1        1  refs/swarm/fix/build
      build/fix  succeeded      [T]s    1        1  refs/swarm/fix/build+fix
      after      merged         [T]s    1        1  refs/swarm/fix/after

      2 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled; 1 subtask merged with its parent
      branch swarm/fix at [HASH], [T]s
    "#));
    let logs = repo.swarm(&["logs", "fix", "replan"]);
    logs.assert_code(0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&logs.stdout, &repo), @r#"
    replan 1 of 1 ([TIMESTAMP]): task `build` failed: exited with code 1
    fix: missing.txt is never made: write out.txt directly
    - [[task]] id = "build"   # exited with code 1
    -   run = "echo half > out.txt; test -f missing.txt || { echo no missing.txt here >&2; exit 1; }"
    + [[task]]
    + creates = ["out.txt"]
    + id = "build/fix"
    + run = "echo fixed > out.txt"
    "#));
}

#[test]
fn replanning_stops_at_its_limit_and_a_fix_that_never_passes_fails_the_task() {
    use crate::agent::run_with_key;

    let repo = TestRepo::new();
    // Never an acceptable answer: a dependency on nothing.
    let mock = replanner(|_| {
        fix_answer(r#"{"reason": "r", "tasks": [{"id": "fix", "run": "true", "deps": ["ghost"]}]}"#)
    });
    let tasks = "[[task]]\nid = \"one\"\ncreates = [\"one.txt\"]\nrun = \"exit 1\"\n\n[[task]]\nid = \"two\"\ndeps = [\"one\"]\ncreates = [\"two.txt\"]\nrun = \"true\"\n\n[[task]]\nid = \"three\"\ncreates = [\"three.txt\"]\nrun = \"sleep 1; exit 2\"\n";
    let plan = model_plan(
        &repo,
        &mock,
        "limit",
        "replan = 1\non_failure = \"continue\"",
        tasks,
    );
    let out = run_with_key(&repo, &plan);
    out.assert_code(1);
    let report = repo.report();
    let one = task(&report, "one");
    assert_eq!(one["status"], "failed", "{report}");
    insta::assert_snapshot!(one["reason"].as_str().unwrap(), @"exited with code 1; replanning found no fix: no fix passed the checks in 3 rounds: replan:2:9: task `fix` depends on unknown task `ghost` (every entry of `deps` must be the id of a task in this plan)");
    assert_eq!(task(&report, "two")["status"], "blocked");
    let three = task(&report, "three");
    insta::assert_snapshot!(three["reason"].as_str().unwrap(), @"exited with code 2; not replanned: the run's 1 replan is used up (`replan` in [swarm])");
    // One replan of three rounds, nothing for the second failure.
    assert_eq!(mock.calls().len(), 3);
    let events = journal(&repo, "limit");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "replan_started")
            .count(),
        1
    );
}
