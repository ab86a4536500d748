//! Issue 79: a task that shows no sign of life for its `stall_after` is
//! ended as `stalled` (its own status, a nonzero exit, its work kept on
//! its ref) and retried; a quiet task that works (CPU time) and an agent
//! waiting on a slow model are not.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::agent::{anthropic_plan, run_with_key};
use crate::support::model::{MockModel, Options, Reply, tool};
use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task};

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
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run stall: finished with failures (exit 1)
          task   status          time  try  changed  result
          hung   stalled        [T]s    2        1  refs/swarm/stall/hung
          after  blocked            -    0        0  dependency `hung` stalled

          0 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 1 blocked or skipped, 0 cancelled
          branch swarm/stall at [HASH], [T]s
          hung: stalled: no output, no CPU time and no model call for 1s (its `stall_after`); what it had done is kept on its ref
          hung log: .swarm/runs/stall/logs/hung/2.err
        "));
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

/// Issue 79: a task that fails reading a file the sandbox hides (it
/// exists on this machine) is told which grant would allow it; with that
/// grant, it passes. Nothing is granted by the hint itself. One that
/// writes where it may only read is told where a task writes.
#[test]
fn a_task_reading_a_hidden_file_is_told_the_grant_that_would_allow_it() {
    let repo = TestRepo::new();
    let data = repo.home().join("datasets");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("input.csv"), "a,b\n").unwrap();
    let task = format!(
        "[[task]]\nid = \"load\"\nrun = \"cat {}/input.csv > copy.csv\"\n",
        data.display()
    );
    let plan = repo.plan("hidden.toml", &task);
    let run = repo.run_plan(&plan, &["--name", "hidden"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = repo.report();
    let reason = task_reason(&report, "load").replace(&data.display().to_string(), "[DATA]");
    insta::assert_snapshot!(reason, @r#"exited with code 1; the sandbox hides `[DATA]/input.csv` (it exists on this machine, outside what the task is shown): to let it read there, add `read_paths = ["[DATA]/input.csv"]` to [swarm] (see the book's Sandbox chapter, "read_paths")"#);
    // `swarm logs` ends with it too.
    let logs = repo.swarm(&["logs", "hidden", "load"]);
    logs.assert_code(0);
    let shown = logs.stdout.replace(&data.display().to_string(), "[DATA]");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&shown, &repo), @r#"
    --- stderr
    cat: [DATA]/input.csv: No such file or directory
    --- why it failed (swarm)
    exited with code 1; the sandbox hides `[DATA]/input.csv` (it exists on this machine, outside what the task is shown): to let it read there, add `read_paths = ["[DATA]/input.csv"]` to [swarm] (see the book's Sandbox chapter, "read_paths")
    "#));
    // The grant it names lets it through.
    let granted = repo.plan(
        "granted.toml",
        &format!("[swarm]\nread_paths = [\"{}\"]\n\n{task}", data.display()),
    );
    repo.run_plan(&granted, &["--name", "granted"])
        .assert_code(0);
    assert_eq!(repo.show("swarm/granted", "copy.csv"), "a,b");
    // What it may read it may not change: a write there is told where a
    // task writes (not `paths`, which are its worktree's).
    let writes = repo.plan(
        "writes.toml",
        &format!(
            "[swarm]\nread_paths = [\"{}\"]\n\n[[task]]\nid = \"append\"\npaths = [\"src/\"]\nrun = \"echo c,d >> {}/input.csv\"\n",
            data.display(),
            data.display()
        ),
    );
    repo.run_plan(&writes, &["--name", "writes"]).assert_code(1);
    let reason =
        task_reason(&repo.report(), "append").replace(&data.display().to_string(), "[DATA]");
    insta::assert_snapshot!(reason, @r#"exited with code 2; the sandbox shows `[DATA]/input.csv` read-only (what a task may read outside its worktree, `read_paths` included, it may not change): write in its worktree or `$TMPDIR` instead, or make what tasks share in a `[setup]` step (see the book's Sandbox chapter, "Threat model")"#);
    assert_eq!(
        std::fs::read_to_string(data.join("input.csv")).unwrap(),
        "a,b\n"
    );
}

/// Issue 79: a task with no network that fails to reach a host is told
/// its network list would allow it, naming the host it tried; one whose
/// output shows the sandbox's own answer to a network socket (its seccomp
/// filter's EAFNOSUPPORT: Python connecting to an address, no name to
/// resolve) is told it was the sandbox. With the filter's EPERM, that
/// task's output (`Operation not permitted`) got no hint at all.
#[test]
fn a_task_reaching_the_network_without_one_is_told_its_network_list() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "offline.toml",
        "[swarm]\non_failure = \"continue\"\n\n[[task]]\nid = \"fetch\"\nrun = \"curl -sS -m 5 https://registry.example.org/pkg > pkg.json\"\n\n[[task]]\nid = \"direct\"\nrun = \"python3 -c \\\"import socket; socket.create_connection(('192.0.2.1', 80), 3)\\\"\"\n",
    );
    let run = repo.run_plan(&plan, &["--name", "offline"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = repo.report();
    insta::assert_snapshot!(task_reason(&report, "direct"), @r#"exited with code 1; the task has no network (the sandbox refused it a network socket: `Address family not supported` is its answer): to let it, give it `network = ["host"]` with the hosts it needs, or `network = "full"` (see the book's Sandbox chapter, "Network by allow-list"); a netlink or packet socket (`ip`, a listing of interfaces) only `network = "full"` gives"#);
    let reason = task_reason(&report, "fetch");
    insta::assert_snapshot!(reason, @r#"exited with code 6; the task has no network (it could not reach a host): to let it, give it `network = ["registry.example.org"]`, or `network = "full"` (see the book's Sandbox chapter, "Network by allow-list")"#);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @r#"
        run offline: finished with failures (exit 1)
          task    status          time  try  changed  result
          fetch   failed         [T]s    1        1  refs/swarm/offline/fetch
          direct  failed         [T]s    1        0  refs/swarm/offline/direct

          0 merged, 0 succeeded (read-only), 2 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/offline at [HASH], [T]s
          fetch: exited with code 6; the task has no network (it could not reach a host): to let it, give it `network = ["registry.example.org"]`, or `network = "full"` (see the book's Sandbox chapter, "Network by allow-list")
          fetch log: .swarm/runs/offline/logs/fetch/1.err
          direct: exited with code 1; the task has no network (the sandbox refused it a network socket: `Address family not supported` is its answer): to let it, give it `network = ["host"]` with the hosts it needs, or `network = "full"` (see the book's Sandbox chapter, "Network by allow-list"); a netlink or packet socket (`ip`, a listing of interfaces) only `network = "full"` gives
          direct log: .swarm/runs/offline/logs/direct/1.err
        "#));
}

fn task_reason(report: &serde_json::Value, id: &str) -> String {
    task(report, id)["reason"].as_str().unwrap().to_string()
}

/// Issue 79: no run exits 0 while a task is timed out, stalled, stopped
/// by `max_turns` or its budget, or its agent CLI was killed with
/// SIGKILL; each end is its own in the report and its own failure type in
/// the JUnit, and every such attempt's worktree is on its ref.
#[test]
fn every_end_that_is_no_success_is_said_as_itself_and_fails_the_run() {
    let repo = TestRepo::new();
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |call| {
        // Never done: another command each turn.
        Reply::answer(vec![tool(
            format!("b{}", call.turn),
            "bash",
            json!({"command": "echo step >> steps.txt"}),
        )])
    });
    let tasks = r#"
[agents.dies]
kind = "command"
command = ["/bin/sh", "-c", "echo partial > partial.txt; kill -9 $$", "sh", "{prompt}"]
protocol = "anthropic"

[[task]]
id = "timed"
timeout = "1s"
run = "echo begun > begun.txt; sleep 30"

[[task]]
id = "stalls"
stall_after = "1s"
run = "sleep 30"

[[task]]
id = "turns"
prompt = "Keep going."
max_turns = 2

[[task]]
id = "broke"
prompt = "Spend."
budget = { tokens = 10 }

[[task]]
id = "killed"
agent = "dies"
prompt = "Die."
"#;
    let plan = repo.plan("ends.toml", &anthropic_plan(&mock, "", tasks));
    let junit = repo.root().join("ends.xml");
    let mut cmd = repo.swarm_cmd(&[
        "run",
        plan.to_str().unwrap(),
        "--name",
        "ends",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    cmd.env("TEST_MODEL_KEY", crate::agent::KEY);
    let run: crate::support::Run = cmd.output().unwrap().into();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = repo.report();
    let end = |id: &str| {
        let t = task(&report, id);
        (
            t["status"].as_str().unwrap().to_string(),
            t["agent"]["outcome"].as_str().unwrap_or("-").to_string(),
        )
    };
    let ends: Vec<(String, String)> = ["timed", "stalls", "turns", "broke", "killed"]
        .iter()
        .map(|id| end(id))
        .collect();
    insta::assert_debug_snapshot!(ends, @r#"
    [
        (
            "timed_out",
            "-",
        ),
        (
            "stalled",
            "-",
        ),
        (
            "failed",
            "max_turns",
        ),
        (
            "failed",
            "budget",
        ),
        (
            "failed",
            "crashed",
        ),
    ]
    "#);
    // Each its own failure type in the JUnit.
    let xml = std::fs::read_to_string(&junit).unwrap();
    for kind in ["timed_out", "stalled", "max_turns", "budget", "crashed"] {
        assert!(xml.contains(&format!("type=\"{kind}\"")), "{kind}: {xml}");
    }
    // What each had done before its end is kept.
    assert_eq!(repo.show("refs/swarm/ends/timed", "begun.txt"), "begun");
    assert_eq!(
        repo.show("refs/swarm/ends/turns", "steps.txt"),
        "step\nstep"
    );
    assert_eq!(
        repo.show("refs/swarm/ends/killed", "partial.txt"),
        "partial"
    );
}

/// Issue 79: an agent cut off by its timeout is retried from its work,
/// not from scratch: the next attempt's worktree holds what the first
/// had written, and the agent is told what happened and what it last said.
/// The task's result holds both attempts' work.
#[test]
fn a_timed_out_agents_retry_goes_on_from_its_work_and_is_told_so() {
    let repo = TestRepo::new();
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |call| {
        if call.conversation.contains("was cut off") {
            // The second attempt: its first file is there already.
            return Reply::answer(vec![
                tool(
                    "w2",
                    "write_file",
                    json!({"path": "second.txt", "content": "after\n"}),
                ),
                tool("f", "finish", json!({"summary": "went on"})),
            ]);
        }
        match call.turn {
            0 => Reply::Answer {
                parts: vec![
                    crate::support::model::Part::Text("Half done: first.txt written.".into()),
                    tool(
                        "w1",
                        "write_file",
                        json!({"path": "first.txt", "content": "before\n"}),
                    ),
                ],
                input_tokens: 10,
                output_tokens: 10,
            },
            // Then the model is slow: the attempt's timeout ends it. (Not
            // much longer: the mock answers one call at a time, and the
            // retry's first call waits for this one.)
            _ => {
                std::thread::sleep(Duration::from_millis(3500));
                Reply::answer(vec![tool("f", "finish", json!({"summary": "late"}))])
            }
        }
    });
    let plan = repo.plan(
        "carry.toml",
        &anthropic_plan(
            &mock,
            "",
            "[[task]]\nid = \"long\"\nprompt = \"Write two files.\"\ntimeout = \"3s\"\nretries = 1\n",
        ),
    );
    let run = run_with_key(&repo, &plan);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(repo.show("swarm/carry", "first.txt"), "before");
    assert_eq!(repo.show("swarm/carry", "second.txt"), "after");
    let report = repo.report();
    assert_eq!(task(&report, "long")["attempts"], 2);
    // What the second attempt was told.
    let told = mock
        .calls()
        .into_iter()
        .find(|c| c.conversation.contains("was cut off"))
        .expect("the retry was told");
    insta::assert_snapshot!(told.conversation.lines().take(4).collect::<Vec<_>>().join("\n"), @r"
    swarm: your previous attempt (1) was cut off: timed out. What it had changed is in this worktree again (not committed): go on from it rather than starting over.

    The last thing you said then:
    Half done: first.txt written.
    ");
}

/// Issue 79: the cut-off attempt's work is carried into the next
/// worktree after setup ran there, never through what setup left: a link
/// it planted where the work goes is not followed (the file is left out,
/// and nothing outside the worktree is written).
#[test]
fn carried_work_is_never_written_through_a_link_setup_left() {
    let repo = TestRepo::new();
    let outside = repo.outside();
    std::fs::create_dir_all(&outside).unwrap();
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |call| {
        if call.conversation.contains("was cut off") {
            return Reply::answer(vec![tool("f", "finish", json!({"summary": "went on"}))]);
        }
        match call.turn {
            0 => Reply::answer(vec![tool(
                "w1",
                "write_file",
                json!({"path": "sub/first.txt", "content": "before\n"}),
            )]),
            _ => {
                std::thread::sleep(Duration::from_millis(3500));
                Reply::answer(vec![tool("f", "finish", json!({"summary": "late"}))])
            }
        }
    });
    let plan = repo.plan(
        "linked.toml",
        &anthropic_plan(
            &mock,
            "",
            &format!(
                "[setup]\nrun = '[ \"$SWARM_ATTEMPT\" = 2 ] && ln -s {} sub || true'\n\n\
                 [[task]]\nid = \"long\"\nprompt = \"Write it.\"\ntimeout = \"3s\"\nretries = 1\n",
                outside.display()
            ),
        ),
    );
    let run = run_with_key(&repo, &plan);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(task(&repo.report(), "long")["attempts"], 2);
    let planted: Vec<_> = std::fs::read_dir(&outside).unwrap().flatten().collect();
    assert!(planted.is_empty(), "written through the link: {planted:?}");
}
