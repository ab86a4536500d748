//! Agent CLIs as workers, end to end: the real Claude Code from the npm
//! registry runs as a task in the sandbox, reaching the mock model server
//! only through the coordinator's gateway door on its own loopback port,
//! with a per-attempt token where the key would be.

use serde_json::json;

use crate::agent::{KEY, files_under, run_with_key};
use crate::support::model::{Call, MockModel, Options, Reply, Wire, text, tool};
use crate::support::{TestRepo, agent_cli, redact, snapshot_settings, summary_of};

/// The provider's model name the plan gives.
const MODEL: &str = "claude-sonnet-4-5";

pub(crate) fn plan(mock: &MockModel, claude: &std::path::Path, tasks: &str) -> String {
    format!(
        r#"[swarm]
on_failure = "continue"

[models.default]
provider = "anthropic"
model = "{MODEL}"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"

[agents.claude]
kind = "claude-code"
program = "{program}"

{tasks}"#,
        url = mock.base_url(Wire::Anthropic),
        program = claude.display()
    )
}

/// Whether the request is part of the conversation of the task whose
/// prompt is `prompt` (Claude Code puts context before it).
pub(crate) fn about(call: &Call, prompt: &str) -> bool {
    call.body["messages"].to_string().contains(prompt)
}

/// Claude Code's Bash tool.
pub(crate) fn bash(id: &str, command: &str) -> crate::support::model::Part {
    tool(
        id,
        "Bash",
        json!({"command": command, "description": "run it"}),
    )
}

#[test]
fn claude_code_edits_in_the_sandbox_through_the_gateway_and_repairs_in_its_session() {
    let claude = agent_cli("claude");
    let repo = TestRepo::new();
    let mock_port = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let port = std::sync::Arc::clone(&mock_port);
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new(MODEL)
        },
        move |call| {
            if !about(call, "Write the answer") {
                return Reply::text("ok");
            }
            let host = port.load(std::sync::atomic::Ordering::SeqCst);
            match call.turn {
                // The first try: a wrong answer, the token it was given,
                // and what it can reach besides its door.
                0 => Reply::answer(vec![
                    text("Writing it."),
                    bash(
                        "b1",
                        &format!(
                            "echo 41 > answer.txt; printf '%s' \"$ANTHROPIC_API_KEY\" > token.txt; \
                             printf '%s' \"$ANTHROPIC_BASE_URL\" > url.txt; \
                             {{ (exec 3<>/dev/tcp/127.0.0.1/{host}) 2>/dev/null && echo host-open || echo host-closed; \
                               (exec 3<>/dev/tcp/127.0.0.1/4142) 2>/dev/null && echo other-open || echo other-closed; \
                               (exec 3<>/dev/tcp/1.1.1.1/443) 2>/dev/null && echo internet-open || echo internet-closed; \
                               getent hosts example.com >/dev/null 2>&1 && echo dns-open || echo dns-closed; }} > net.txt"
                        ),
                    ),
                ]),
                1 => Reply::text("Done: the answer is written."),
                // verify failed; the same session goes on with its output.
                2 => {
                    let all = call.body["messages"].to_string();
                    assert!(all.contains("b1"), "the resumed session lost its history");
                    Reply::answer(vec![bash("b2", "echo 42 > answer.txt")])
                }
                _ => Reply::text("Fixed."),
            }
        },
    );
    mock_port.store(mock.addr().port(), std::sync::atomic::Ordering::SeqCst);
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        &plan(
            &mock,
            &claude,
            r#"[[task]]
id = "answer"
agent = "claude"
prompt = "Write the answer to answer.txt."
verify = "grep -qx 42 answer.txt"
"#,
        ),
    );
    let run = run_with_key(&repo, &plan_path);
    assert!(
        (run.code == 0),
        "{}",
        format!("{}{}", run.stdout, run.stderr)
    );
    mock.assert_clean();

    // Merged like any task's work.
    let tree = repo.git(&["show", "swarm/plan:answer.txt"]);
    assert_eq!(tree.trim(), "42");
    // What the program could reach: its door only.
    let net = repo.git(&["show", "swarm/plan:net.txt"]);
    assert_eq!(
        net.split_whitespace().collect::<Vec<_>>(),
        [
            "host-closed",
            "other-closed",
            "internet-closed",
            "dns-closed"
        ],
        "{net}"
    );
    let url = repo.git(&["show", "swarm/plan:url.txt"]);
    assert_eq!(url, "http://127.0.0.1:4141");
    // It had a token, never the key; the model got the key.
    let token = repo.git(&["show", "swarm/plan:token.txt"]);
    assert!(token.starts_with("swarm-") && token != KEY, "{token}");
    assert!(mock.calls().len() >= 4);
    // The key is in nothing swarm or the task wrote.
    assert!(!format!("{}{}", run.stdout, run.stderr).contains(KEY));
    for dir in [repo.path().join(".swarm"), repo.worktree_home()] {
        for file in files_under(&dir) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(KEY),
                "the key leaked into {}",
                file.display()
            );
        }
    }
    for reference in repo
        .git(&["for-each-ref", "--format=%(objectname)"])
        .lines()
    {
        let tree = repo.git(&["ls-tree", "-r", reference]);
        for blob in tree.lines().filter_map(|l| l.split_whitespace().nth(2)) {
            assert!(!repo.git(&["cat-file", "-p", blob]).contains(KEY));
        }
    }

    // The report: one repair round in the session, the door's count.
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.path().join(".swarm/runs/plan/report.json")).unwrap(),
    )
    .unwrap();
    let task = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "answer")
        .unwrap();
    assert_eq!(task["agent"]["outcome"], "finished", "{task}");
    assert_eq!(task["agent"]["repair_rounds"], 1, "{task}");
    let passed: Vec<_> = task["agent"]["verify_rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["passed"].clone())
        .collect();
    assert_eq!(passed, [false, true], "{task}");
    assert!(task["agent"]["turns"].as_u64().unwrap() >= 4, "{task}");
    assert!(task["agent"]["usage"]["input_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn claude_code_stops_when_the_gateway_refuses_its_budget() {
    let claude = agent_cli("claude");
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new(MODEL)
        },
        |call| {
            if !about(call, "Spend it all") {
                return Reply::text("ok");
            }
            Reply::Answer {
                parts: vec![bash("b1", "true")],
                input_tokens: 200_000,
                output_tokens: 10,
            }
        },
    );
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        &plan(
            &mock,
            &claude,
            r#"[[task]]
id = "spender"
agent = "claude"
prompt = "Spend it all."
budget = { tokens = 150000 }
"#,
        ),
    );
    let run = run_with_key(&repo, &plan_path);
    assert!(run.code != 0, "{}", format!("{}{}", run.stdout, run.stderr));
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run plan: finished with failures (exit 1)
          task     status          time  try  changed    tokens      cost  result
          spender  failed         [T]s    1        0    200010   $0.6001  refs/swarm/plan/spender

          0 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/plan at [HASH], [T]s
          agents: 1 session, 1 turn, 200000 tokens in, 10 out, $0.6001
          spender: the agent's budget ran out: task `spender` has used 200010 of its 150000 tokens
          spender log: .swarm/runs/plan/logs/spender/1.err
          spender transcript: .swarm/runs/plan/logs/spender/1.transcript.jsonl
        "));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.path().join(".swarm/runs/plan/report.json")).unwrap(),
    )
    .unwrap();
    let task = &report["tasks"][0];
    assert_eq!(task["agent"]["outcome"], "budget", "{task}");
    // One call went through; the next was refused at the door.
    let calls = mock
        .calls()
        .into_iter()
        .filter(|c| about(c, "Spend it all"))
        .count();
    assert_eq!(calls, 1);
}

#[test]
fn an_agent_program_that_is_missing_is_a_plan_error_at_validate() {
    let repo = TestRepo::new();
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        r#"[models.default]
provider = "anthropic"
model = "m"
api_key_env = ""
base_url = "http://127.0.0.1:9"

[agents.claude]
kind = "claude-code"
program = "/nonexistent/claude"

[[task]]
id = "a"
agent = "claude"
prompt = "Do it."
"#,
    );
    let run = repo.swarm(&["validate", plan_path.to_str().unwrap()]);
    assert!(run.code != 0);
    assert_eq!(run.stdout, "");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&run.stderr, &repo), @r#"
    error: invalid plan
      × agent `claude` (claude-code) needs the program `/nonexistent/claude`, which is not there (or
      │ not executable)
       ╭─[[TMP]/repo/plan.toml:7:1]
     6 │ 
     7 │ [agents.claude]
       · ───────┬───────
       ·        ╰── its program is missing
     8 │ kind = "claude-code"
       ╰────
      help: install it (npm install -g @anthropic-ai/claude-code), or give its path in [agents.NAME]
            program = "..."
    "#)
    });
}

#[test]
fn codex_found_on_path_edits_through_the_responses_door_and_resumes_its_thread() {
    let codex = agent_cli("codex");
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("gpt-5-codex")
        },
        |call| {
            if !call.conversation.contains("Write the answer") {
                return Reply::text("ok");
            }
            let exec = |id: &str, cmd: &str| tool(id, "exec_command", json!({"cmd": cmd}));
            match call.turn {
                0 => Reply::answer(vec![exec(
                    "c1",
                    "echo 41 > answer.txt; printf '%s' \"$SWARM_GATEWAY_TOKEN\" > token.txt",
                )]),
                1 => Reply::text("Done."),
                2 => {
                    assert!(
                        call.body["input"].to_string().contains("c1"),
                        "the resumed thread lost its history"
                    );
                    Reply::answer(vec![exec("c2", "echo 42 > answer.txt")])
                }
                _ => Reply::text("Fixed."),
            }
        },
    );
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        &format!(
            r#"[models.default]
provider = "openai"
model = "gpt-5-codex"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"

[[task]]
id = "answer"
agent = "codex"
prompt = "Write the answer to answer.txt."
verify = "grep -qx 42 answer.txt"
"#,
            url = mock.base_url(Wire::Responses)
        ),
    );
    let mut cmd = repo.swarm_cmd(&["run", plan_path.to_str().unwrap()]);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env(
        "PATH",
        format!("{}:{path}", codex.parent().unwrap().display()),
    );
    cmd.env("TEST_MODEL_KEY", KEY);
    let run: crate::support::Run = cmd.output().unwrap().into();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    mock.assert_clean();
    assert_eq!(repo.git(&["show", "swarm/plan:answer.txt"]).trim(), "42");
    let token = repo.git(&["show", "swarm/plan:token.txt"]);
    assert!(token.starts_with("swarm-") && token != KEY, "{token}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.path().join(".swarm/runs/plan/report.json")).unwrap(),
    )
    .unwrap();
    let task = &report["tasks"][0];
    assert_eq!(task["agent"]["outcome"], "finished", "{task}");
    assert_eq!(task["agent"]["repair_rounds"], 1, "{task}");
}

#[test]
fn an_agent_cli_waits_for_its_memory_and_is_refused_what_the_machine_cannot_give() {
    let claude = agent_cli("claude");
    let repo = TestRepo::new();
    let mock = MockModel::start(Options::new(MODEL), |_| Reply::text("ok"));
    let plan_path = repo.path().join("plan.toml");
    let text = plan(
        &mock,
        &claude,
        r#"[[task]]
id = "huge"
agent = "claude"
prompt = "Do it."
"#,
    )
    .replace(
        "kind = \"claude-code\"",
        "kind = \"claude-code\"\nmemory = \"100TiB\"",
    );
    repo.write("plan.toml", &text);
    let run = run_with_key(&repo, &plan_path);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run plan: finished with failures (exit 1)
          task  status          time  try  changed  result
          huge  failed             -    0        0  not started: it needs 100.0 TiB of memory (`memory`, or its agent's) and the machine has [SIZE] available

          0 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/plan at [HASH], [T]s
          huge: not started: it needs 100.0 TiB of memory (`memory`, or its agent's) and the machine has [SIZE] available
          huge log: .swarm/runs/plan/logs/huge/1.err
        "));
    assert!(mock.calls().is_empty());
}

#[test]
fn doctor_lists_the_agent_clis_on_path_with_their_versions() {
    let bin = agent_cli("claude").parent().unwrap().to_path_buf();
    let repo = TestRepo::new();
    let mut cmd = repo.swarm_cmd(&["doctor"]);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    let run: crate::support::Run = cmd.output().unwrap().into();
    run.assert_code(0);
    // The rest of what doctor says is this machine's (kernel, toolchains):
    // its last section, the agent CLIs (pinned in
    // tests/agent-clis/package.json), where they were installed redacted.
    let clis = std::fs::canonicalize(bin.parent().unwrap().parent().unwrap()).unwrap();
    let at = run
        .stdout
        .find("agent CLIs on PATH")
        .unwrap_or_else(|| panic!("no agent CLIs in:\n{}", run.stdout));
    let section = run.stdout[at..].replace(&clis.display().to_string(), "[AGENT-CLIS]");
    insta::assert_snapshot!(section, @r#"
    agent CLIs on PATH (`agent = "claude-code"` / `"codex"`; each runs sandboxed, its key kept out):
      claude-code  2.1.331 (Claude Code) ([AGENT-CLIS]/node_modules/@anthropic-ai/claude-code/bin/claude.exe)
      codex        codex-cli 0.169.0 ([AGENT-CLIS]/node_modules/@openai/codex/bin/codex.js)
    "#);
}

/// `kind = "command"`: any CLI, given by its command line; here Claude
/// Code again, driven as an unknown program would be (its own flags, the
/// base URL and token in the variables the table names).
#[test]
fn a_command_agent_gets_its_prompt_url_and_token_as_its_table_says() {
    // The sandbox shows real paths: no `..` in what the command names.
    let claude = agent_cli("claude")
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap()
        .join("claude");
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new(MODEL)
        },
        |call| {
            if !about(call, "Say it in a file") {
                return Reply::text("ok");
            }
            match call.turn {
                0 => Reply::answer(vec![bash(
                    "b1",
                    "printf '%s %s' \"$MY_URL\" \"${MY_TOKEN%%-*}\" > said.txt",
                )]),
                _ => Reply::text("Said."),
            }
        },
    );
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        &format!(
            r#"[swarm]
read_paths = ["{modules}"]

[models.default]
provider = "anthropic"
model = "{MODEL}"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"

[agents.any]
kind = "command"
command = ["/bin/sh", "-c", "ANTHROPIC_BASE_URL=\"$MY_URL\" ANTHROPIC_API_KEY=\"$MY_TOKEN\" exec {program} -p --permission-mode bypassPermissions \"$1\"", "sh", "{{prompt}}"]
protocol = "anthropic"
base_url_env = "MY_URL"
token_env = "MY_TOKEN"

[[task]]
id = "said"
agent = "any"
prompt = "Say it in a file."
verify = "test -s said.txt"
"#,
            url = mock.base_url(Wire::Anthropic),
            program = claude.display(),
            modules = claude.parent().unwrap().parent().unwrap().display(),
        ),
    );
    let _ = plan_path;
    let run = run_with_key(&repo, &repo.path().join("plan.toml"));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        repo.git(&["show", "swarm/plan:said.txt"]),
        "http://127.0.0.1:4141 swarm"
    );
}

/// Which agent does this task best: Claude Code, Codex and swarm's own
/// agent as variants of one task, each in its worktree and sandbox, ranked
/// by a score.
#[test]
fn variants_over_three_agents_are_ranked_by_their_score() {
    let bin = agent_cli("claude").parent().unwrap().to_path_buf();
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("m-test")
        },
        |call| {
            let done = !call.tool_results.is_empty();
            match call.wire {
                // Codex.
                Wire::Responses if done => Reply::text("Wrote 3."),
                Wire::Responses => Reply::answer(vec![tool(
                    "c1",
                    "exec_command",
                    json!({"cmd": "echo 3 > n.txt"}),
                )]),
                // swarm's own agent offers write_file; Claude Code, Bash.
                Wire::Anthropic if call.tools.iter().any(|t| t == "write_file") => {
                    if done {
                        Reply::answer(vec![tool("f1", "finish", json!({"summary": "wrote 2"}))])
                    } else {
                        Reply::answer(vec![tool(
                            "w1",
                            "write_file",
                            json!({"path": "n.txt", "content": "2\n"}),
                        )])
                    }
                }
                Wire::Anthropic if done => Reply::text("Wrote 1."),
                Wire::Anthropic => Reply::answer(vec![bash("b1", "echo 1 > n.txt")]),
                Wire::OpenAi => Reply::status(400, "not this wire"),
            }
        },
    );
    repo.write(
        "plan.toml",
        &format!(
            r#"[models.default]
provider = "anthropic"
model = "m-test"
base_url = "{anthropic}"
api_key_env = "TEST_MODEL_KEY"

[models.oai]
provider = "openai"
model = "m-test"
base_url = "{openai}"
api_key_env = "TEST_MODEL_KEY"

[agents.cx]
kind = "codex"
model = "oai"

[[task]]
id = "best"
prompt = "Write your number to n.txt."
variants = {{ agent = ["claude-code", "cx", "swarm"] }}
verify = "test -s n.txt"
score = "cat n.txt"
pick = "max"
"#,
            anthropic = mock.base_url(Wire::Anthropic),
            openai = mock.base_url(Wire::Responses),
        ),
    );
    let mut cmd = repo.swarm_cmd(&["run", "plan.toml"]);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    cmd.env("TEST_MODEL_KEY", KEY);
    let run: crate::support::Run = cmd.output().unwrap().into();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    mock.assert_clean();
    // Codex's 3 won and was merged; each agent's result kept its ref.
    assert_eq!(repo.git(&["show", "swarm/plan:n.txt"]).trim(), "3");
    let scores: Vec<String> = (1..=3)
        .map(|k| repo.git(&["show", &format!("refs/swarm/plan/best@{k}:n.txt")]))
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(scores, ["1", "3", "2"]);
}

/// The coordinator killed with SIGKILL while Claude Code waits for its
/// model: nothing of the task survives it, and `swarm resume` runs the task
/// again to the end.
#[test]
fn a_coordinator_killed_mid_agent_resumes_and_finishes() {
    let claude = agent_cli("claude");
    let repo = TestRepo::new();
    let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let seen = std::sync::Arc::clone(&first);
    let mock = MockModel::start(Options::new(MODEL), move |call| {
        if !about(call, "Finish after a restart") {
            return Reply::text("ok");
        }
        if seen.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Reply::Hang;
        }
        match call.turn {
            0 => Reply::answer(vec![bash("b1", "echo done > done.txt")]),
            _ => Reply::text("Done."),
        }
    });
    repo.write(
        "plan.toml",
        &plan(
            &mock,
            &claude,
            r#"[[task]]
id = "slow"
agent = "claude"
prompt = "Finish after a restart."
verify = "test -s done.txt"
"#,
        )
        .replace("api_key_env = \"TEST_MODEL_KEY\"", "api_key_env = \"\""),
    );
    let mut child = repo
        .swarm_cmd(&["run", "plan.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let waited = std::time::Instant::now();
    while !mock
        .calls()
        .iter()
        .any(|c| about(c, "Finish after a restart"))
    {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(60),
            "no call came"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    crate::resume::kill9(&mut child);
    // Nothing of the task lives on: no Claude Code of this run.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let left = std::process::Command::new("pgrep")
        .args(["-f", "Finish after a restart"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    let resumed = repo.swarm(&["resume", "plan"]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(repo.git(&["show", "swarm/plan:done.txt"]).trim(), "done");
}

/// A CLI swarm has no adapter for, as the manual shows it: opencode (from the
/// npm registry) as a `command` agent, its provider pointed at the
/// variable swarm fills in.
#[test]
fn opencode_runs_as_a_command_agent_through_the_anthropic_door() {
    let opencode = agent_cli("opencode")
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap()
        .join("opencode");
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new(MODEL)
        },
        |call| {
            if !about(call, "Leave a note") || call.tools.is_empty() {
                // Its session title, asked of the same model.
                return Reply::text("A note");
            }
            match call.turn {
                0 => Reply::answer(vec![tool(
                    "t1",
                    "bash",
                    json!({"command": "echo noted > note.txt", "description": "write the note"}),
                )]),
                _ => Reply::text("Noted."),
            }
        },
    );
    repo.write(
        "plan.toml",
        &format!(
            r#"[models.default]
provider = "anthropic"
model = "{MODEL}"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"

[agents.opencode]
kind = "command"
command = ["{program}", "run", "-m", "anthropic/{MODEL}", "--format", "json", "{{prompt}}"]
protocol = "anthropic"

[[task]]
id = "note"
agent = "opencode"
prompt = "Leave a note in note.txt."
verify = "grep -q noted note.txt"
env = {{ OPENCODE_CONFIG_CONTENT = '{{"provider": {{"anthropic": {{"options": {{"baseURL": "{{env:ANTHROPIC_BASE_URL}}/v1"}}}}}}, "autoupdate": false, "share": "disabled"}}' }}
"#,
            url = mock.base_url(Wire::Anthropic),
            program = opencode.display(),
        ),
    );
    let run = run_with_key(&repo, &repo.path().join("plan.toml"));
    let log = std::fs::read_to_string(repo.path().join(".swarm/runs/plan/logs/note/1.err"))
        .unwrap_or_default();
    assert_eq!(run.code, 0, "{}{}\n{log}", run.stdout, run.stderr);
    mock.assert_clean();
    assert_eq!(repo.git(&["show", "swarm/plan:note.txt"]).trim(), "noted");
}

/// `output_schema` for every kind of agent: Claude Code (`--json-schema`,
/// its StructuredOutput tool), Codex (`--output-schema`, its last message)
/// and swarm's agent (`finish`'s `output`, refused once for not matching);
/// each answer lands in the report, and a dependent reads them all.
#[test]
fn every_agent_answers_to_its_output_schema_and_dependents_read_the_answers() {
    let bin = agent_cli("claude").parent().unwrap().to_path_buf();
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("m-test")
        },
        |call| {
            let done = !call.tool_results.is_empty();
            match call.wire {
                Wire::Responses => {
                    assert!(
                        call.body["text"]["format"].to_string().contains("verdict"),
                        "codex was not given the schema: {}",
                        call.body["text"]
                    );
                    Reply::text(r#"{"verdict": "reject"}"#)
                }
                Wire::Anthropic if call.tools.iter().any(|t| t == "finish") => {
                    let finish = call
                        .body
                        .to_string()
                        .contains("This task also needs your final answer as JSON");
                    assert!(finish, "the finish tool does not ask for output");
                    match call.turn {
                        0 => Reply::answer(vec![tool(
                            "f1",
                            "finish",
                            json!({"summary": "reviewed", "output": {"verdict": "perhaps"}}),
                        )]),
                        _ => {
                            assert!(
                                call.last_user_text.contains("does not match"),
                                "{}",
                                call.last_user_text
                            );
                            Reply::answer(vec![tool(
                                "f2",
                                "finish",
                                json!({"summary": "reviewed", "output": {"verdict": "approve"}}),
                            )])
                        }
                    }
                }
                Wire::Anthropic if done => Reply::text("Reviewed."),
                Wire::Anthropic if call.tools.iter().any(|t| t == "StructuredOutput") => {
                    Reply::answer(vec![tool(
                        "s1",
                        "StructuredOutput",
                        json!({"verdict": "approve"}),
                    )])
                }
                _ => Reply::text("ok"),
            }
        },
    );
    std::fs::write(
        repo.path().join("review.schema.json"),
        r#"{"type": "object", "properties": {"verdict": {"enum": ["approve", "reject"]}}, "required": ["verdict"], "additionalProperties": false}"#,
    )
    .unwrap();
    repo.write(
        "plan.toml",
        &format!(
            r#"[models.default]
provider = "anthropic"
model = "m-test"
base_url = "{anthropic}"
api_key_env = "TEST_MODEL_KEY"

[models.oai]
provider = "openai"
model = "m-test"
base_url = "{openai}"
api_key_env = "TEST_MODEL_KEY"

[defaults]
output_schema = "review.schema.json"
isolation = "readonly"

[[task]]
id = "by-claude"
agent = "claude-code"
prompt = "Review it."

[[task]]
id = "by-codex"
agent = "codex"
model = "oai"
prompt = "Review it."

[[task]]
id = "by-swarm"
prompt = "Review it."

[[task]]
id = "tally"
deps = ["by-claude", "by-codex", "by-swarm"]
isolation = "worktree"
run = "cp \"$SWARM_DEPS_OUTPUT\" tally.json && echo {{deps.by-codex.output.verdict}} > verdict.txt"
"#,
            anthropic = mock.base_url(Wire::Anthropic),
            openai = mock.base_url(Wire::Responses),
        ),
    );
    let mut cmd = repo.swarm_cmd(&["run", "plan.toml", "--junit", "junit.xml"]);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    cmd.env("TEST_MODEL_KEY", KEY);
    let run: crate::support::Run = cmd.output().unwrap().into();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    mock.assert_clean();
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.path().join(".swarm/runs/plan/report.json")).unwrap(),
    )
    .unwrap();
    let output = |id: &str| {
        report["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["agent"]["output"].clone())
            .unwrap()
    };
    assert_eq!(output("by-claude"), json!({"verdict": "approve"}));
    assert_eq!(output("by-codex"), json!({"verdict": "reject"}));
    assert_eq!(output("by-swarm"), json!({"verdict": "approve"}));
    let tally: serde_json::Value =
        serde_json::from_str(&repo.git(&["show", "swarm/plan:tally.json"])).unwrap();
    assert_eq!(
        tally,
        json!({"by-claude": {"verdict": "approve"}, "by-codex": {"verdict": "reject"},
               "by-swarm": {"verdict": "approve"}})
    );
    assert_eq!(
        repo.git(&["show", "swarm/plan:verdict.txt"]).trim(),
        "reject"
    );
    let junit = std::fs::read_to_string(repo.path().join("junit.xml")).unwrap();
    assert!(junit.contains(r#"name="by-claude.output""#), "{junit}");
}

#[test]
fn a_command_naming_an_answer_it_cannot_have_is_a_plan_error() {
    let repo = TestRepo::new();
    repo.write(
        "plan.toml",
        r#"[models.default]
provider = "anthropic"
model = "m"
api_key_env = ""
base_url = "http://127.0.0.1:9"

[[task]]
id = "review"
prompt = "Review it."
isolation = "readonly"

[[task]]
id = "gate"
deps = ["review"]
run = "test {deps.review.output.verdict} = approve && test {deps.other.output} = x"
"#,
    );
    let run = repo.swarm(&["validate", "plan.toml"]);
    assert_ne!(run.code, 0);
    assert_eq!(run.stdout, "");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&run.stderr, &repo), @r#"
    error: invalid plan (2 errors)
      × task `gate`: `{deps.review.output.verdict}` in `run`: `review` gives no answer: only an agent
      │ task with an `output_schema` does
        ╭─[[TMP]/repo/plan.toml:13:6]
     12 │ [[task]]
     13 │ id = "gate"
        ·      ───┬──
        ·         ╰── this task
     14 │ deps = ["review"]
        ╰────
      help: add `review` to `deps`, and give it `output_schema`; its answer is then here, shell-quoted

      × task `gate`: `{deps.other.output}` in `run`: `other` is not one of its `deps`
        ╭─[[TMP]/repo/plan.toml:13:6]
     12 │ [[task]]
     13 │ id = "gate"
        ·      ───┬──
        ·         ╰── this task
     14 │ deps = ["review"]
        ╰────
      help: add `other` to `deps`, and give it `output_schema`; its answer is then here, shell-quoted
    "#));
}

#[test]
fn an_output_schema_that_is_not_a_schema_is_a_plan_error() {
    let repo = TestRepo::new();
    repo.write(
        "plan.toml",
        r#"[models.default]
provider = "anthropic"
model = "m"
api_key_env = ""
base_url = "http://127.0.0.1:9"

[[task]]
id = "a"
prompt = "Do it."
output_schema = { type = 3 }
"#,
    );
    let run = repo.swarm(&["validate", "plan.toml"]);
    assert_ne!(run.code, 0);
    assert_eq!(run.stdout, "");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&run.stderr, &repo), @r#"
    error: invalid plan
      × task `a`: output_schema is not a usable JSON Schema: 3 is not valid under any of the schemas
      │ listed in the 'anyOf' keyword
        ╭─[[TMP]/repo/plan.toml:10:17]
      9 │ prompt = "Do it."
     10 │ output_schema = { type = 3 }
        ·                 ──────┬─────
        ·                       ╰── this schema
        ╰────
      help: see https://json-schema.org; e.g. { type = "object", properties = { verdict = { enum =
            ["approve", "reject"] } }, required = ["verdict"] }
    "#)
    });
}

/// Claude Code on a model that speaks OpenAI's Chat Completions (a local
/// Ollama, vLLM): the door reads its Messages calls into the gateway's own
/// conversation and writes the answers back as Messages.
/// A plan of one task run by Claude Code (`claude`) on the mock's
/// OpenAI model `qwen-coder`, the task's own lines `task`.
fn claude_on_openai(mock: &MockModel, claude: &std::path::Path, task: &str) -> String {
    format!(
        "[models.default]\nprovider = \"openai\"\nmodel = \"qwen-coder\"\nbase_url = \"{url}\"\n\
         api_key_env = \"TEST_MODEL_KEY\"\n\n[agents.claude]\nkind = \"claude-code\"\n\
         program = \"{program}\"\n\n[[task]]\nagent = \"claude\"\n{task}",
        url = mock.base_url(Wire::OpenAi),
        program = claude.display()
    )
}

#[test]
fn claude_code_works_on_an_openai_model_through_the_translating_door() {
    let claude = agent_cli("claude");
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("qwen-coder")
        },
        |call| {
            assert_eq!(call.wire, Wire::OpenAi, "not translated");
            if call.tools.is_empty() || !call.body["messages"].to_string().contains("Translate") {
                return Reply::text("ok");
            }
            match call.turn {
                0 => Reply::answer(vec![tool(
                    "call_1",
                    "Bash",
                    json!({"command": "echo via > via.txt", "description": "write"}),
                )]),
                _ => {
                    assert_eq!(call.tool_results.len(), 1, "{:?}", call.tool_results);
                    Reply::text("Written.")
                }
            }
        },
    );
    repo.write(
        "plan.toml",
        &claude_on_openai(
            &mock,
            &claude,
            "id = \"via\"\nprompt = \"Translate this into a file.\"\nverify = \"grep -q via via.txt\"\n",
        ),
    );
    let run = run_with_key(&repo, &repo.path().join("plan.toml"));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    mock.assert_clean();
    assert_eq!(repo.git(&["show", "swarm/plan:via.txt"]).trim(), "via");
}

/// A request the model's server refuses (a 400: larger than its context)
/// reaches Claude Code behind the translating door as a 400
/// `invalid_request_error` with the server's words, which it does not
/// retry: the server is asked once, where a 502 had Claude Code retry it
/// for minutes.
#[test]
fn claude_code_is_told_a_refused_request_once_through_the_translating_door() {
    let claude = agent_cli("claude");
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("qwen-coder")
        },
        |call| {
            if !call.body["messages"].to_string().contains("Too big") {
                return Reply::text("ok");
            }
            Reply::status(
                400,
                "the request exceeds the available context size (8192 tokens)",
            )
        },
    );
    repo.write(
        "plan.toml",
        &claude_on_openai(
            &mock,
            &claude,
            "id = \"big\"\nprompt = \"Too big for this model.\"\n",
        ),
    );
    let run = run_with_key(&repo, &repo.path().join("plan.toml"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let asked = mock
        .calls()
        .iter()
        .filter(|c| c.body["messages"].to_string().contains("Too big"))
        .count();
    assert_eq!(asked, 1, "retried: {}", run.stderr);
    let out = std::fs::read_to_string(repo.path().join(".swarm/runs/plan/logs/big/1.out")).unwrap();
    assert!(
        out.contains("the model's server refused the request")
            && out.contains("exceeds the available context size"),
        "{out}"
    );
}

/// Codex on a model that speaks Anthropic's Messages: the door reads its
/// Responses calls into the gateway's own conversation and writes the
/// answers back as Responses events.
#[test]
fn codex_works_on_an_anthropic_model_through_the_translating_door() {
    let bin = agent_cli("codex").parent().unwrap().to_path_buf();
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| {
            assert_eq!(call.wire, Wire::Anthropic, "not translated");
            if !call.conversation.contains("Translate") {
                return Reply::text("ok");
            }
            match call.turn {
                0 => Reply::answer(vec![tool(
                    "toolu_1",
                    "exec_command",
                    json!({"cmd": "echo via > via.txt"}),
                )]),
                _ => {
                    assert_eq!(call.tool_results.len(), 1, "{:?}", call.tool_results);
                    Reply::text("Written.")
                }
            }
        },
    );
    repo.write(
        "plan.toml",
        &format!(
            r#"[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"

[[task]]
id = "via"
agent = "codex"
prompt = "Translate this into a file."
verify = "grep -q via via.txt"
"#,
            url = mock.base_url(Wire::Anthropic),
        ),
    );
    let mut cmd = repo.swarm_cmd(&["run", "plan.toml"]);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    cmd.env("TEST_MODEL_KEY", KEY);
    let run: crate::support::Run = cmd.output().unwrap().into();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    mock.assert_clean();
    assert_eq!(repo.git(&["show", "swarm/plan:via.txt"]).trim(), "via");
}

#[test]
fn a_recorded_claude_code_task_replays_with_no_model_and_no_key() {
    let claude = agent_cli("claude");
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new(MODEL)
        },
        |call| {
            if !about(call, "Write the answer") {
                return Reply::text("ok");
            }
            match call.turn {
                0 => Reply::answer(vec![
                    text("Writing it."),
                    bash("b1", "echo 42 > answer.txt && cat answer.txt"),
                ]),
                _ => Reply::text("Done: the answer is written."),
            }
        },
    );
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        &plan(
            &mock,
            &claude,
            r#"[[task]]
id = "answer"
agent = "claude"
prompt = "Write the answer to answer.txt."
verify = "grep -qx 42 answer.txt"
"#,
        ),
    );
    let tapes = repo.outside().join("tapes");
    let tapes = tapes.to_str().unwrap();
    let mut cmd = repo.swarm_cmd(&["run", plan_path.to_str().unwrap(), "--record", tapes]);
    cmd.env("TEST_MODEL_KEY", KEY);
    let run: crate::support::Run = cmd.output().unwrap().into();
    run.assert_code(0);
    mock.assert_clean();
    let calls = mock.calls().len();
    assert!(calls >= 2, "{calls}");
    let recorded = repo.git(&["rev-parse", "swarm/plan^{tree}"]);
    for file in files_under(std::path::Path::new(tapes)) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(KEY), "the key is in {}", file.display());
    }
    let cassette =
        std::fs::read_to_string(std::path::Path::new(tapes).join("tasks/answer/1.jsonl")).unwrap();
    // Every call the program made, side calls included.
    assert_eq!(cassette.lines().count(), calls + 1, "{cassette}");
    drop(mock);

    let again = repo.swarm(&[
        "run",
        plan_path.to_str().unwrap(),
        "--replay",
        tapes,
        "--name",
        "again",
    ]);
    again.assert_code(0);
    assert_eq!(
        repo.git(&["rev-parse", "swarm/again^{tree}"]),
        recorded,
        "{}",
        again.stderr
    );
    let report = repo.report();
    assert_eq!(
        crate::support::task(&report, "answer")["agent"]["outcome"],
        "finished"
    );
}

#[test]
fn a_recorded_codex_task_replays_with_no_model_and_no_key() {
    let codex = agent_cli("codex");
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("gpt-5-codex")
        },
        |call| {
            if !call.conversation.contains("Write the answer") {
                return Reply::text("ok");
            }
            match call.turn {
                0 => Reply::answer(vec![tool(
                    "c1",
                    "exec_command",
                    json!({"cmd": "echo 42 > answer.txt && cat answer.txt"}),
                )]),
                _ => Reply::text("Done."),
            }
        },
    );
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        &format!(
            r#"[models.default]
provider = "openai"
model = "gpt-5-codex"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"

[[task]]
id = "answer"
agent = "codex"
prompt = "Write the answer to answer.txt."
verify = "grep -qx 42 answer.txt"
"#,
            url = mock.base_url(Wire::Responses)
        ),
    );
    let tapes = repo.outside().join("tapes");
    let tapes = tapes.to_str().unwrap();
    let path = format!(
        "{}:{}",
        codex.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = repo.swarm_cmd(&["run", plan_path.to_str().unwrap(), "--record", tapes]);
    cmd.env("PATH", &path).env("TEST_MODEL_KEY", KEY);
    let run: crate::support::Run = cmd.output().unwrap().into();
    run.assert_code(0);
    mock.assert_clean();
    let recorded = repo.git(&["rev-parse", "swarm/plan^{tree}"]);
    let calls = mock.calls().len();
    drop(mock);
    for file in files_under(std::path::Path::new(tapes)) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(KEY), "the key is in {}", file.display());
    }
    let cassette =
        std::fs::read_to_string(std::path::Path::new(tapes).join("tasks/answer/1.jsonl")).unwrap();
    assert_eq!(cassette.lines().count(), calls + 1, "{cassette}");

    let mut cmd = repo.swarm_cmd(&[
        "run",
        plan_path.to_str().unwrap(),
        "--replay",
        tapes,
        "--name",
        "again",
    ]);
    cmd.env("PATH", &path);
    let again: crate::support::Run = cmd.output().unwrap().into();
    again.assert_code(0);
    assert_eq!(repo.git(&["rev-parse", "swarm/again^{tree}"]), recorded);
}

/// The door's pass-through records the provider's refusal of a request
/// (a 400) as that request's answer: Claude Code, replayed with no model,
/// is refused again with the same words and ends as it ended live, where
/// the replay had no recorded answer.
#[test]
fn a_refused_claude_code_request_replays_as_refused_through_the_door() {
    let claude = agent_cli("claude");
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new(MODEL)
        },
        |call| {
            if !about(call, "Too long") {
                return Reply::text("ok");
            }
            Reply::status(400, "the parameter `frobnicate` is not supported")
        },
    );
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        &plan(
            &mock,
            &claude,
            "[[task]]\nid = \"long\"\nagent = \"claude\"\nprompt = \"Too long for the model.\"\n",
        ),
    );
    let tapes = repo.outside().join("tapes");
    let tapes = tapes.to_str().unwrap();
    let mut cmd = repo.swarm_cmd(&["run", plan_path.to_str().unwrap(), "--record", tapes]);
    cmd.env("TEST_MODEL_KEY", KEY);
    let run: crate::support::Run = cmd.output().unwrap().into();
    run.assert_code(1);
    let said = |run: &str| {
        std::fs::read_to_string(
            repo.path()
                .join(format!(".swarm/runs/{run}/logs/long/1.out")),
        )
        .unwrap_or_default()
    };
    assert!(said("plan").contains("frobnicate"), "{}", said("plan"));
    drop(mock);
    let again = repo.swarm(&[
        "run",
        plan_path.to_str().unwrap(),
        "--replay",
        tapes,
        "--name",
        "again",
    ]);
    again.assert_code(1);
    assert!(
        !again.stderr.contains("no recorded answer") && said("again").contains("frobnicate"),
        "{}\n{}",
        again.stderr,
        said("again")
    );
}
