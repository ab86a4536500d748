//! Issue 79: a task that shows no sign of life for its `stall_after` is
//! ended as `stalled` (its own status, a nonzero exit, its work kept on
//! its ref) and retried; a quiet task that works (CPU time) and an agent
//! waiting on a slow model are not.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::agent::{anthropic_plan, run_with_key};
use crate::support::model::{MockModel, Options, Reply, tool};
use crate::support::{TestRepo, task};

#[test]
fn a_silent_sleeping_task_is_stalled_within_twice_its_window_and_retried() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "stall.toml",
        "[[task]]\nid = \"hung\"\nstall_after = \"1s\"\nretries = 1\n\
         run = \"echo $SWARM_ATTEMPT > attempt.txt; sleep 60\"\n\n\
         [[task]]\nid = \"after\"\ndeps = [\"hung\"]\nrun = \"true\"\n",
    );
    let started = Instant::now();
    let run = repo.run_plan(&plan, &["--name", "stall"]);
    // Two attempts of a 1 s window each, not two minutes of sleep.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 1, "a stalled task fails the run: {}", run.stderr);
    let report = repo.report();
    let hung = task(&report, "hung");
    assert_eq!(hung["status"], "stalled", "{hung:#}");
    assert_eq!(hung["attempts"], 2, "retried once: {hung:#}");
    let reason = hung["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("stalled: no output, no CPU time and no model call for 1s"),
        "{reason}"
    );
    assert_eq!(task(&report, "after")["status"], "blocked");
    // Each attempt ended within twice its window of its start.
    let journal =
        std::fs::read_to_string(repo.path().join(".swarm/runs/stall/events.jsonl")).unwrap();
    let ends: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "attempt_finished" && e["task"] == "hung")
        .collect();
    assert_eq!(ends.len(), 2);
    for end in &ends {
        assert_eq!(end["outcome"], "stalled", "{end}");
        let ms = end["duration_ms"].as_u64().unwrap();
        assert!((1000..2000).contains(&ms), "ended after {ms} ms: {end}");
    }
    // What it had done is on its attempts' refs.
    assert_eq!(repo.show("refs/swarm/stall/hung", "attempt.txt"), "2");
    // Its own word in the summary.
    assert!(run.stderr.contains("stalled"), "{}", run.stderr);
}

#[test]
fn a_quiet_task_that_works_is_not_stalled() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "busy.toml",
        // Three seconds of CPU, nothing printed, with a 1 s window.
        "[[task]]\nid = \"busy\"\nstall_after = \"1s\"\n\
         run = \"timeout 3 sh -c 'while :; do :; done' || true; echo done > busy.txt\"\n",
    );
    let run = repo.run_plan(&plan, &["--name", "busy"]);
    run.assert_code(0);
    assert_eq!(repo.show("swarm/busy", "busy.txt"), "done");
}

#[test]
fn an_agent_waiting_on_a_slow_model_is_not_stalled() {
    let repo = TestRepo::new();
    // Each answer takes 3 s; the agent's window is 1 s.
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |call| {
        std::thread::sleep(Duration::from_secs(3));
        match call.turn {
            0 => Reply::answer(vec![tool(
                "w",
                "write_file",
                json!({"path": "slow.txt", "content": "worth the wait\n"}),
            )]),
            _ => Reply::answer(vec![tool("f", "finish", json!({"summary": "done"}))]),
        }
    });
    let plan = repo.plan(
        "slow.toml",
        &anthropic_plan(
            &mock,
            "",
            "[[task]]\nid = \"patient\"\nprompt = \"Write slow.txt.\"\nstall_after = \"1s\"\n",
        ),
    );
    let run = run_with_key(&repo, &plan);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(repo.show("swarm/slow", "slow.txt"), "worth the wait");
    assert_eq!(mock.calls().len(), 2);
}
