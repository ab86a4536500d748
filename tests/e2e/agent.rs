//! Agent tasks end to end: the real `swarm` binary runs agents in the
//! sandbox against the mock model server (a real HTTP server on loopback
//! speaking both providers' wire protocols), which checks every request.

use std::path::Path;

use serde_json::json;

use crate::support::model::{Call, MockModel, Options, Reply, Wire, text, tool, tool_raw};
use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task};

pub(crate) const KEY: &str = "sk-test-SECRET-0123456789";

pub(crate) fn anthropic_plan(mock: &MockModel, extra_models: &str, tasks: &str) -> String {
    format!(
        r#"[swarm]
on_failure = "continue"

[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"
{extra_models}
{tasks}"#,
        url = mock.base_url(Wire::Anthropic)
    )
}

pub(crate) fn run_with_key(repo: &TestRepo, plan: &Path) -> crate::support::Run {
    let mut cmd = repo.swarm_cmd(&["run", plan.to_str().unwrap()]);
    cmd.env("TEST_MODEL_KEY", KEY);
    cmd.output().unwrap().into()
}

/// Every file under `dir`, recursively (not following links).
pub(crate) fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            out.extend(files_under(&path));
        } else if meta.is_file() {
            out.push(path);
        }
    }
    out
}

fn assert_key_nowhere(repo: &TestRepo, mock: &MockModel, outputs: &[&str]) {
    for out in outputs {
        assert!(!out.contains(KEY), "the key leaked into swarm's output");
    }
    for file in files_under(&repo.path().join(".swarm")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(KEY),
            "the key leaked into {}",
            file.display()
        );
    }
    for call in mock.calls() {
        assert!(
            !call.body.to_string().contains(KEY),
            "the key reached the model in request {}",
            call.index
        );
    }
}

fn result_of(call: &Call, i: usize) -> (String, bool) {
    let r = &call.tool_results[i];
    (r.content.clone(), r.is_error)
}

#[test]
fn agents_edit_in_parallel_repair_after_verify_and_dependents_see_their_work() {
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| match (call.conversation.as_str(), call.turn) {
            ("Write a.txt.", 0) => Reply::answer(vec![
                text("I will write the file."),
                tool(
                    "w1",
                    "write_file",
                    json!({"path": "a.txt", "content": "A\n"}),
                ),
            ]),
            ("Write a.txt.", _) => {
                assert!(!call.tool_results[0].is_error, "{:?}", call.tool_results);
                Reply::answer(vec![tool(
                    "f1",
                    "finish",
                    json!({"summary": "wrote a.txt"}),
                )])
            }
            ("Fix the README.", 0) => Reply::answer(vec![tool(
                "e1",
                "edit_file",
                json!({"path": "README.md", "old_string": "# test repo", "new_string": "# test repo B"}),
            )]),
            ("Fix the README.", 1) => {
                Reply::answer(vec![tool("f1", "finish", json!({"summary": "first try"}))])
            }
            // verify failed: its output came back with the finish's result.
            ("Fix the README.", 2) => {
                assert!(
                    call.last_user_text.contains("verify command failed"),
                    "{}",
                    call.last_user_text
                );
                assert!(
                    call.last_user_text.contains("not fixed yet"),
                    "{}",
                    call.last_user_text
                );
                assert_eq!(call.tool_results.len(), 1);
                Reply::answer(vec![tool(
                    "e2",
                    "edit_file",
                    json!({"path": "README.md", "old_string": "repo B", "new_string": "repo B fixed"}),
                )])
            }
            ("Fix the README.", _) => Reply::answer(vec![tool(
                "f2",
                "finish",
                json!({"summary": "fixed the README"}),
            )]),
            ("Combine.", 0) => Reply::answer(vec![
                tool("r1", "read_file", json!({"path": "a.txt"})),
                tool("r2", "grep", json!({"pattern": "fixed"})),
            ]),
            ("Combine.", 1) => {
                let (a, _) = result_of(call, 0);
                let (grep, _) = result_of(call, 1);
                let content = format!(
                    "a has A: {}\nreadme fixed: {}\n",
                    a.contains('A'),
                    grep.contains("README.md")
                );
                Reply::answer(vec![tool(
                    "w1",
                    "write_file",
                    json!({"path": "c.txt", "content": content}),
                )])
            }
            ("Combine.", _) => Reply::text("All done: c.txt written."),
            other => panic!("unexpected conversation {other:?}"),
        },
    );
    let plan = repo.plan(
        "agents.toml",
        &anthropic_plan(
            &mock,
            "",
            r#"
[[task]]
id = "a"
prompt = "Write a.txt."

[[task]]
id = "b"
prompt = "Fix the README."
verify = "grep -q fixed README.md || { echo not fixed yet; exit 1; }"

[[task]]
id = "c"
prompt = "Combine."
deps = ["a", "b"]
"#,
        ),
    );
    let run = run_with_key(&repo, &plan);
    run.assert_code(0);
    mock.assert_clean();

    assert_eq!(repo.show("swarm/agents", "a.txt"), "A");
    assert_eq!(
        repo.show("swarm/agents", "README.md"),
        "# test repo B fixed"
    );
    assert_eq!(
        repo.show("swarm/agents", "c.txt"),
        "a has A: true\nreadme fixed: true"
    );

    let report = repo.report();
    let b = &task(&report, "b")["agent"];
    assert_eq!(b["outcome"], "finished");
    assert_eq!(b["summary"], "fixed the README");
    assert_eq!(b["turns"], 4);
    assert_eq!(b["repair_rounds"], 1);
    // Both verify runs, timed in the session: failed, then passed.
    let rounds = b["verify_rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{rounds:?}");
    assert_eq!(
        (&rounds[0]["passed"], &rounds[1]["passed"]),
        (&json!(false), &json!(true))
    );
    let end_of_first = rounds[0]["at_ms"].as_u64().unwrap() + rounds[0]["dur_ms"].as_u64().unwrap();
    assert!(
        rounds[1]["at_ms"].as_u64().unwrap() >= end_of_first,
        "{rounds:?}"
    );
    // The trace shows them on b's slot, within its run.
    let trace = repo.swarm(&["trace", "agents"]);
    trace.assert_code(0);
    let trace: serde_json::Value = serde_json::from_str(&trace.stdout).unwrap();
    let verifies = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["args"]["task"] == "b" && e["cat"] == "verify")
        .count();
    assert_eq!(verifies, 2, "{trace}");
    assert_eq!(b["usage"]["input_tokens"], 400);
    assert_eq!(b["usage"]["output_tokens"], 80);
    // claude-sonnet-4-5 at $3 / $15 per million tokens.
    let cost = b["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - (400.0 * 3.0 + 80.0 * 15.0) / 1e6).abs() < 1e-9,
        "{cost}"
    );
    let transcript = std::fs::read_to_string(b["transcript"].as_str().unwrap()).unwrap();
    let kinds: Vec<String> = transcript
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for kind in [
        "start",
        "user",
        "assistant",
        "tool",
        "finished",
        "verify",
        "report",
        "end",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} in the transcript: {kinds:?}"
        );
    }
    // The agent's log shows the model's text and its tool calls.
    let log = std::fs::read_to_string(task(&report, "a")["stdout_log"].as_str().unwrap()).unwrap();
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&log, &repo), @"

    [turn 1]
    I will write the file.
    -> write_file a.txt

    [turn 2]

    -> finish: wrote a.txt

    swarm agent: finished
    ")
    });
    // The commit of an agent task carries its prompt and summary.
    let message = repo.git(&["log", "-1", "--format=%B", "refs/swarm/agents/b"]);
    insta::assert_snapshot!(redact(&message, &repo), @"
    swarm: agents/b: succeeded

    Fix the README.

    fixed the README

    Swarm-Run: agents
    Swarm-Task: b
    Swarm-Attempt: 1
    ");

    // The event stream shows what agents do as they do it.
    let journal =
        std::fs::read_to_string(repo.path().join(".swarm/runs/agents/events.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().any(|e| e["event"] == "agent_tool"
        && e["task"] == "a"
        && e["detail"] == "write_file a.txt"));
    let last_usage = events
        .iter()
        .rfind(|e| e["event"] == "agent_usage" && e["task"] == "b")
        .unwrap();
    assert_eq!(last_usage["turn"], 4);
    assert_eq!(last_usage["total"]["input_tokens"], 400);

    // `swarm logs` reads the transcript for people.
    let logs = repo.swarm(&["logs", "agents", "b"]);
    logs.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&logs.stdout, &repo), @r##"
    agent of task b with model claude-sonnet-4-5 (9 tools)

    > Fix the README.

    [turn 1] 100 tokens in, 20 out
      -> edit_file {"new_string":"# test repo B","old_string":"# test repo","path":"README.md"}
      <- replaced 1 occurrence in README.md at line 1

    [turn 2] 100 tokens in, 20 out
      -> finish {"summary":"first try"}

    finished: first try
    verify: failed (repair round follows)
    not fixed yet

    [verify: exited with code 1]
      <- Recorded. Your work is being checked.

    > The task's verify command failed after you finished. Its output ends with:
    > 
    > not fixed yet
    > 
    > [verify: exited with code 1]
    > 
    > Fix the problem, then call finish again.

    [turn 3] 100 tokens in, 20 out
      -> edit_file {"new_string":"repo B fixed","old_string":"repo B","path":"README.md"}
      <- replaced 1 occurrence in README.md at line 1

    [turn 4] 100 tokens in, 20 out
      -> finish {"summary":"fixed the README"}

    finished: fixed the README
    verify: passed

    end: finished after 4 turns, 480 tokens, $0.0024
    "##)
    });

    assert_key_nowhere(&repo, &mock, &[&run.stdout, &run.stderr]);
}

#[test]
fn openai_compatible_endpoints_stream_split_tool_calls() {
    let repo = TestRepo::new();
    let mock = MockModel::start(Options::new("llama3.1:8b"), |call| match call.turn {
        0 => Reply::answer(vec![
            text("Writing."),
            tool_raw(
                "call_1",
                "write_file",
                r#"{"path": "notes/n.txt", "content": "from a local model\n"}"#,
                7,
            ),
            tool_raw("call_2", "list_dir", r#"{"path": "."}"#, 2),
        ]),
        _ => {
            assert!(
                call.tool_results.iter().all(|r| !r.is_error),
                "{:?}",
                call.tool_results
            );
            assert!(
                call.tool_results[1].content.contains("notes/"),
                "{:?}",
                call.tool_results
            );
            Reply::answer(vec![tool("call_3", "finish", json!({"summary": "noted"}))])
        }
    });
    let plan = repo.plan(
        "local.toml",
        &format!(
            r#"[models.default]
provider = "openai"
model = "llama3.1:8b"
base_url = "{}"
api_key_env = ""

[[task]]
id = "note"
prompt = "Write a note."
"#,
            mock.base_url(Wire::OpenAi)
        ),
    );
    repo.run_plan(&plan, &[]).assert_code(0);
    mock.assert_clean();
    assert_eq!(
        repo.show("swarm/local", "notes/n.txt"),
        "from a local model"
    );
    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].body["stream_options"]["include_usage"], true);
    // An unpriced local model costs nothing and needs no key.
    let report = repo.report();
    assert_eq!(task(&report, "note")["agent"]["cost_usd"], 0.0);
}

#[test]
fn model_faults_are_retried_or_reported_and_partial_work_is_kept() {
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| {
            let finish = || Reply::answer(vec![tool("f", "finish", json!({"summary": "ok"}))]);
            let write = |name: &str| {
                Reply::answer(vec![tool(
                    "w",
                    "write_file",
                    json!({"path": format!("{name}.txt"), "content": "partial\n"}),
                )])
            };
            match (call.conversation.as_str(), call.turn, call.attempt) {
                ("rate limited", 0, 1) => Reply::rate_limited(1),
                ("server error", 0, 1) => Reply::status(500, "internal error"),
                ("cut stream", 0, 1) => Reply::Cut {
                    parts: vec![text("this answer is cut"), text("off")],
                    after_events: 3,
                },
                ("hung", 0, 1) => Reply::Hang,
                ("malformed", 0, _) => Reply::answer(vec![tool_raw(
                    "m1",
                    "write_file",
                    r#"{"path": "x.txt", "content": "#,
                    3,
                )]),
                ("malformed", 1, _) => {
                    let (content, is_error) = result_of(call, 0);
                    assert!(is_error && content.contains("not valid JSON"), "{content}");
                    finish()
                }
                ("unknown tool", 0, _) => {
                    Reply::answer(vec![tool("u1", "launch_missiles", json!({}))])
                }
                ("unknown tool", 1, _) => {
                    let (content, is_error) = result_of(call, 0);
                    assert!(is_error && content.contains("unknown tool"), "{content}");
                    finish()
                }
                ("turns", t, _) => write(&format!("turns{t}")),
                // Calls as large as an agent's prompts are: 4,000 tokens.
                ("budget", t, _) => match write(&format!("budget{t}")) {
                    Reply::Answer { parts, .. } => Reply::Answer {
                        parts,
                        input_tokens: 4000,
                        output_tokens: 20,
                    },
                    other => other,
                },
                ("always failing", _, _) => Reply::status(503, "overloaded forever"),
                (_, 0, _) => finish(),
                other => panic!("unexpected call {other:?}"),
            }
        },
    );
    let plan = repo.plan(
        "faults.toml",
        &anthropic_plan(
            &mock,
            &format!(
                r#"
[models.impatient]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"
timeout = "1s"
retries = 1
"#,
                url = mock.base_url(Wire::Anthropic)
            ),
            r#"
[[task]]
id = "rate-limited"
prompt = "rate limited"

[[task]]
id = "server-error"
prompt = "server error"

[[task]]
id = "cut-stream"
prompt = "cut stream"

[[task]]
id = "hung"
prompt = "hung"
model = "impatient"

[[task]]
id = "malformed"
prompt = "malformed"

[[task]]
id = "unknown-tool"
prompt = "unknown tool"

[[task]]
id = "turns"
prompt = "turns"
max_turns = 2

[[task]]
id = "budget"
prompt = "budget"
budget = { tokens = 9000 }

[[task]]
id = "gives-up"
prompt = "always failing"
model = "impatient"
"#,
        ),
    );
    let run = run_with_key(&repo, &plan);
    run.assert_code(1);
    mock.assert_clean();
    assert_eq!(mock.stats().early_retries, 0);
    let report = repo.report();
    for id in [
        "rate-limited",
        "server-error",
        "cut-stream",
        "hung",
        "malformed",
        "unknown-tool",
    ] {
        let t = task(&report, id);
        assert_eq!(t["status"], "merged", "{id}: {t}");
        assert_eq!(t["agent"]["outcome"], "finished", "{id}");
    }
    // The cut stream was paid for (the 10 prompt tokens and the 1 token of
    // answer its start reported), besides the whole answer after it.
    let cut = &task(&report, "cut-stream")["agent"]["usage"];
    assert_eq!(
        (cut["input_tokens"].as_u64(), cut["output_tokens"].as_u64()),
        (Some(110), Some(21)),
        "{cut}"
    );
    // The 429 was waited out: the retry came a second later, not before.
    let calls = mock.calls();
    let rl: Vec<&Call> = calls
        .iter()
        .filter(|c| c.conversation == "rate limited")
        .collect();
    assert_eq!(rl.len(), 2);

    let turns = task(&report, "turns");
    assert_eq!(turns["status"], "failed");
    assert_eq!(turns["agent"]["outcome"], "max_turns");
    insta::assert_snapshot!(turns["reason"].as_str().unwrap(), @"the agent stopped: reached max_turns (2) without finishing");
    // Its partial work is on its ref.
    assert_eq!(
        repo.show("refs/swarm/faults/turns", "turns0.txt"),
        "partial"
    );

    let budget = task(&report, "budget");
    assert_eq!(budget["status"], "failed");
    assert_eq!(budget["agent"]["outcome"], "budget");
    assert_eq!(budget["agent"]["turns"], 2, "{budget}");
    insta::assert_snapshot!(budget["reason"].as_str().unwrap(), @"the agent's budget ran out: task `budget` has 960 of its 9000 tokens left, less than the call's prompt (about 2916)");
    assert_eq!(
        repo.show("refs/swarm/faults/budget", "budget1.txt"),
        "partial"
    );

    let gave_up = task(&report, "gives-up");
    assert_eq!(gave_up["agent"]["outcome"], "model_error");
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(gave_up["reason"].as_str().unwrap(), &repo), @"the model call failed: HTTP 503: overloaded forever (gave up after 1 retry)"));
    assert_key_nowhere(&repo, &mock, &[&run.stdout, &run.stderr]);
}

#[test]
fn an_agent_that_tries_to_exfiltrate_gets_errors_and_the_host_is_unchanged() {
    let repo = TestRepo::new();
    std::fs::create_dir_all(repo.home().join(".ssh")).unwrap();
    std::fs::write(
        repo.home().join(".ssh/id_rsa"),
        "SSH-PRIVATE-KEY-MATERIAL\n",
    )
    .unwrap();
    let canary = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    canary.set_nonblocking(true).unwrap();
    let port = canary.local_addr().unwrap().port();
    let home = repo.home().display().to_string();
    let outside = repo.outside().display().to_string();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        move |call| match call.turn {
            0 => Reply::answer(vec![
                tool(
                    "t1",
                    "bash",
                    json!({"command": "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'"}),
                ),
                tool(
                    "t2",
                    "read_file",
                    json!({"path": format!("{home}/.ssh/id_rsa")}),
                ),
                tool(
                    "t3",
                    "bash",
                    json!({"command": format!("cat {home}/.ssh/id_rsa")}),
                ),
                tool(
                    "t4",
                    "bash",
                    json!({"command": format!("curl -s -m 2 http://127.0.0.1:{port}/ || echo curl failed")}),
                ),
                tool(
                    "t5",
                    "write_file",
                    json!({"path": "../../outside/pwned.txt", "content": "x"}),
                ),
                tool(
                    "t6",
                    "bash",
                    json!({"command": format!("echo x > {outside}/pwned.txt")}),
                ),
                tool(
                    "t7",
                    "read_file",
                    json!({"path": "/proc/self/root/etc/shadow"}),
                ),
            ]),
            _ => {
                let results = &call.tool_results;
                assert!(results[1].is_error, "{:?}", results[1]);
                assert!(results[4].is_error, "{:?}", results[4]);
                assert!(
                    results[3].content.contains("curl failed"),
                    "{:?}",
                    results[3]
                );
                for r in results {
                    assert!(!r.content.contains("SSH-PRIVATE-KEY-MATERIAL"), "{r:?}");
                }
                Reply::answer(vec![tool("f", "finish", json!({"summary": "tried"}))])
            }
        },
    );
    let plan = repo.plan(
        "exfil.toml",
        &anthropic_plan(
            &mock,
            "",
            "[[task]]\nid = \"evil\"\nprompt = \"Steal things.\"\n",
        ),
    );
    let run = run_with_key(&repo, &plan);
    run.assert_code(0);
    mock.assert_clean();
    assert_eq!(mock.calls().len(), 2, "the second turn's asserts ran");
    assert!(!repo.outside().join("pwned.txt").exists());
    assert!(canary.accept().is_err(), "the agent reached the network");
    assert_key_nowhere(&repo, &mock, &[&run.stdout, &run.stderr]);
}

#[test]
fn a_missing_api_key_is_a_plan_error_before_anything_runs() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "nokey.toml",
        "[models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n\n[[task]]\nid = \"a\"\nprompt = \"hi\"\n",
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(2);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&run.stderr, &repo), @r#"
    error: invalid plan
      × model `default` reads its API key from $ANTHROPIC_API_KEY, which is not set
       ╭─[[TMP]/plans/nokey.toml:1:1]
     1 │ [models.default]
       · ────────┬───────
       ·         ╰── this model
     2 │ provider = "anthropic"
       ╰────
      help: export ANTHROPIC_API_KEY=... before `swarm run`, or name another variable with api_key_env
            ("" for endpoints without a key, such as a local Ollama)
    "#));
    assert!(repo.swarm_traces().is_empty());
}

#[test]
fn ctrl_c_stops_an_agent_waiting_on_the_model_and_keeps_its_work() {
    use std::time::{Duration, Instant};
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| match call.turn {
            0 => Reply::answer(vec![tool(
                "w",
                "write_file",
                json!({"path": "progress.txt", "content": "half done\n"}),
            )]),
            // The model never answers the second turn.
            _ => Reply::Hang,
        },
    );
    let plan = repo.plan(
        "cancel.toml",
        &anthropic_plan(
            &mock,
            "",
            "[[task]]\nid = \"slow\"\nprompt = \"Take your time.\"\n",
        ),
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--grace", "500ms"])
        .env("TEST_MODEL_KEY", KEY)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while mock.calls().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the agent never made its second call"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let report = repo.report();
    let slow = task(&report, "slow");
    assert_eq!(slow["status"], "cancelled");
    assert_eq!(slow["agent"]["outcome"], "cancelled");
    assert_eq!(
        repo.show("refs/swarm/cancel/slow", "progress.txt"),
        "half done"
    );
    mock.assert_clean();
}

/// A task's budget covers all its attempts: a retry spends what the
/// first attempt left, not a budget of its own (as a conflict's re-run,
/// which takes the same way). With room for about one call, the first
/// attempt finishes and fails its verify; both retries are stopped by the
/// budget before they call the model.
#[test]
fn a_retry_spends_from_the_tasks_one_budget() {
    let repo = TestRepo::new();
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |_| Reply::Answer {
        parts: vec![tool("f", "finish", json!({"summary": "done"}))],
        input_tokens: 7000,
        output_tokens: 20,
    });
    let plan = repo.plan(
        "retry.toml",
        &anthropic_plan(
            &mock,
            "max_tokens = 100\n",
            r#"
[[task]]
id = "t"
prompt = "Do it."
verify = "false"
repair_rounds = 0
retries = 2
budget = { tokens = 8000 }
"#,
        ),
    );
    let run = run_with_key(&repo, &plan);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        mock.calls().len(),
        1,
        "the retries called the model on budgets of their own"
    );
    let journal =
        std::fs::read_to_string(repo.path().join(".swarm/runs/retry/events.jsonl")).unwrap();
    // Every retry ran, and each was stopped before its first call.
    assert_eq!(
        journal.matches("\"attempt_finished\"").count(),
        3,
        "{journal}"
    );
    let report = repo.report();
    let t = crate::support::task(&report, "t");
    assert_eq!(t["agent"]["outcome"], "budget", "{t}");
    // The refusal names the shared budget.
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run retry: finished with failures (exit 1)
          task  status          time  try  changed    tokens      cost  result
          t     failed         [T]s    3        0         0   $0.0000  refs/swarm/retry/t

          0 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/retry at [HASH], [T]s
          agents: 1 session, 0 turns, 0 tokens in, 0 out, $0.0000
          t: the agent's budget ran out: task `t` (all its attempts) has 980 of its 8000 tokens left, less than the call's prompt (about 2739)
          t log: .swarm/runs/retry/logs/t/3.err
          t transcript: .swarm/runs/retry/logs/t/3.transcript.jsonl
        "));
}

/// Twenty agents start at once against a run budget with room for five
/// calls: each call holds its most (prompt and max_tokens) until it
/// settles, so what they spend together never passes the budget.
#[test]
fn agents_at_once_never_spend_past_the_run_budget() {
    let repo = TestRepo::new();
    // The provider counts about four bytes a token of the prompt.
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |call| Reply::Answer {
        parts: vec![tool("f", "finish", json!({"summary": "done"}))],
        input_tokens: call.body.to_string().len() as u64 / 4,
        output_tokens: 20,
    });
    let tasks = |n: usize| {
        (0..n)
            .map(|i| format!("[[task]]\nid = \"t{i:02}\"\nprompt = \"Task {i:02}.\"\n"))
            .collect::<String>()
    };
    let plan = |name: &str, budget: u64, n: usize| {
        repo.plan(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nconcurrency = 20\nbudget = {{ tokens = {budget} }}\non_failure = \"continue\"\n\n\
                 [models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\nbase_url = \"{}\"\n\
                 api_key_env = \"\"\nmax_tokens = 200\n\n{}",
                mock.base_url(Wire::Anthropic),
                tasks(n)
            ),
        )
    };
    // One call's worth, measured.
    repo.run_plan(&plan("one", 1_000_000, 1), &[])
        .assert_code(0);
    let one = crate::support::task(&repo.report(), "t00")["agent"]["usage"].clone();
    let call = one["input_tokens"].as_u64().unwrap() + one["output_tokens"].as_u64().unwrap();
    let budget = 5 * call;

    let run = repo.run_plan(&plan("twenty", budget, 20), &[]);
    assert_ne!(run.code, 0, "not all twenty fit");
    let report = repo.report();
    let tasks = report["tasks"].as_array().unwrap();
    let spent: u64 = tasks
        .iter()
        .filter_map(|t| t["agent"]["usage"].as_object())
        .map(|u| u["input_tokens"].as_u64().unwrap() + u["output_tokens"].as_u64().unwrap())
        .sum();
    assert!(spent <= budget, "spent {spent} of {budget}");
    let merged = tasks.iter().filter(|t| t["status"] == "merged").count();
    // A hold (a third of the prompt's bytes, and max_tokens) is more than
    // a call costs: at least three of the five fit, never more than five.
    assert!((3..=5).contains(&merged), "{merged} merged");
    let refused = tasks
        .iter()
        .filter(|t| t["agent"]["outcome"] == "budget")
        .count();
    assert!(refused >= 15, "{refused} refused for the budget: {report}");
    assert_eq!(mock.calls().len(), 1 + merged);
}

/// swarm's agent marks the stable start of its requests for the prompt
/// cache; later turns read it, and the report prices what was read and
/// written as the provider bills it. `prompt_cache = false` turns it off.
#[test]
fn an_agents_later_turns_read_the_prompt_cache_and_cost_less() {
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            prompt_cache: true,
            ..Options::new("claude-sonnet-4-5")
        },
        |call| match call.turn {
            0..=3 => Reply::answer(vec![tool(
                format!("b{}", call.turn),
                "bash",
                json!({"command": format!("seq 1 200 | sed 's/^/line {} /'", call.turn)}),
            )]),
            _ => Reply::answer(vec![tool("f", "finish", json!({"summary": "looked"}))]),
        },
    );
    let plan = |name: &str, cache: bool| {
        repo.plan(
            &format!("{name}.toml"),
            &format!(
                "[models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\nbase_url = \"{}\"\n\
                 api_key_env = \"\"\nprompt_cache = {cache}\n\n[[task]]\nid = \"look\"\nprompt = \"Look around.\"\n",
                mock.base_url(Wire::Anthropic)
            ),
        )
    };
    repo.run_plan(&plan("cached", true), &[]).assert_code(0);
    mock.assert_clean();
    let calls = mock.calls();
    assert_eq!(calls.len(), 5);
    let ephemeral = json!({"type": "ephemeral"});
    assert_eq!(calls[1].body["system"][0]["cache_control"], ephemeral);
    let last = calls[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["content"].as_array().unwrap().last().unwrap()["cache_control"],
        ephemeral
    );
    let cached = task(&repo.report(), "look")["agent"].clone();
    let read = cached["usage"]["cache_read_tokens"].as_u64().unwrap();
    let written = cached["usage"]["cache_write_tokens"].as_u64().unwrap();
    let input = cached["usage"]["input_tokens"].as_u64().unwrap();
    assert!(read > input / 2, "{cached}");
    assert!(written > 0, "{cached}");

    repo.run_plan(&plan("plain", false), &[]).assert_code(0);
    let plain = task(&repo.report(), "look")["agent"].clone();
    assert!(
        mock.calls()[5..]
            .iter()
            .all(|c| !c.body.to_string().contains("cache_control")),
        "markers sent with prompt_cache = false"
    );
    assert!(plain["usage"].get("cache_read_tokens").is_none(), "{plain}");
    // About the same prompt, billed without the cache's discount.
    let plain_input = plain["usage"]["input_tokens"].as_u64().unwrap();
    assert!(plain_input.abs_diff(input) < input / 10, "{plain} {cached}");
    let (with, without) = (
        cached["cost_usd"].as_f64().unwrap(),
        plain["cost_usd"].as_f64().unwrap(),
    );
    assert!(with < without * 0.7, "cached ${with}, plain ${without}");
}
