//! MCP servers as tools of agent tasks: a real server nobody here wrote
//! (the reference filesystem server, pinned from the npm registry), started
//! by swarm's agent inside the task's sandbox, its tools offered to the
//! model (the mock server, scripted) under the server's prefix. The server
//! was told it may write anywhere; the sandbox still holds it to the
//! worktree.

use serde_json::json;

use crate::agent::{KEY, anthropic_plan, run_with_key};
use crate::support::model::{MockModel, Options, Reply, tool};
use crate::support::{TestRepo, agent_cli, redact, snapshot_settings, summary_of, task};

#[test]
fn an_agents_mcp_server_runs_in_the_tasks_sandbox_and_its_tools_are_the_agents() {
    let repo = TestRepo::new();
    let server = agent_cli("mcp-server-filesystem");
    let outside = repo.outside();
    std::fs::create_dir_all(&outside).unwrap();
    let escape = outside.join("escaped.txt");
    let into_checkout = repo.path().join("escaped.txt");
    let targets = (
        escape.display().to_string(),
        into_checkout.display().to_string(),
    );
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        move |call| match call.turn {
            0 => {
                for name in ["files__write_file", "files__read_text_file", "write_file"] {
                    assert!(
                        call.tools.iter().any(|t| t == name),
                        "{name} not offered: {:?}",
                        call.tools
                    );
                }
                Reply::answer(vec![
                    tool(
                        "m1",
                        "files__write_file",
                        json!({"path": targets.0, "content": "escaped\n"}),
                    ),
                    tool(
                        "m2",
                        "files__write_file",
                        json!({"path": targets.1, "content": "escaped\n"}),
                    ),
                    tool(
                        "m3",
                        "files__write_file",
                        json!({"path": "from-mcp.txt", "content": "written through MCP\n"}),
                    ),
                    tool("m4", "files__read_text_file", json!({"path": "README.md"})),
                ])
            }
            1 => {
                let results = &call.tool_results;
                for (i, what) in [(0, "outside the repository"), (1, "the main checkout")] {
                    assert!(
                        results[i].is_error,
                        "a write to {what} went through: {:?}",
                        results[i]
                    );
                    // Refused by the kernel, not by the server's own
                    // checks (it was told `/` is allowed).
                    let said = results[i].content.to_lowercase();
                    assert!(
                        ["eacces", "erofs", "permission denied", "read-only"]
                            .iter()
                            .any(|w| said.contains(w)),
                        "a write to {what} failed for another reason: {:?}",
                        results[i]
                    );
                }
                assert!(!results[2].is_error, "{:?}", results[2]);
                assert!(!results[3].is_error, "{:?}", results[3]);
                assert!(
                    results[3].content.contains("# test repo"),
                    "{:?}",
                    results[3]
                );
                Reply::answer(vec![tool(
                    "f1",
                    "finish",
                    json!({"summary": "wrote from-mcp.txt through the files server"}),
                )])
            }
            other => panic!("unexpected turn {other}"),
        },
    );
    let plan = repo.plan(
        "mcp.toml",
        &anthropic_plan(
            &mock,
            "",
            &format!(
                r#"
# The server may write anywhere as far as it knows ("/"); the sandbox
# is what stops it.
[mcp.files]
command = ["{server}", ".", "/"]

[[task]]
id = "docs"
prompt = "Write from-mcp.txt with the files server."
mcp = ["files"]
"#,
                server = server.display()
            ),
        ),
    );
    let run = run_with_key(&repo, &plan);
    run.assert_code(0);
    mock.assert_clean();

    assert_eq!(
        repo.show("swarm/mcp", "from-mcp.txt"),
        "written through MCP"
    );
    assert!(!escape.exists(), "the server wrote outside the repository");
    assert!(
        !into_checkout.exists(),
        "the server wrote into the main checkout"
    );

    let report = repo.report();
    let docs = &task(&report, "docs")["agent"];
    assert_eq!(docs["outcome"], "finished");
    // Its calls are in the transcript, as the agent's own tools are.
    let transcript = std::fs::read_to_string(docs["transcript"].as_str().unwrap()).unwrap();
    let calls = transcript
        .lines()
        .filter(|l| l.contains(r#""tool""#) && l.contains("files__write_file"))
        .count();
    assert_eq!(calls, 3, "{transcript}");
}

#[test]
fn an_mcp_server_that_cannot_start_fails_the_attempt_with_its_last_words() {
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |_| panic!("the model was called although the task's server never started"),
    );
    let plan = repo.plan(
        "broken.toml",
        &anthropic_plan(
            &mock,
            "",
            r#"
[mcp.db]
command = ["/bin/sh", "-c", "echo 'cannot open db.sqlite: no such file' >&2; exit 3"]

[[task]]
id = "query"
prompt = "Count the users."
mcp = ["db"]
"#,
        ),
    );
    let run = run_with_key(&repo, &plan);
    run.assert_code(1);
    assert_eq!(mock.calls().len(), 0);
    let report = repo.report();
    let query = task(&report, "query");
    assert_eq!(query["status"], "failed");
    assert_eq!(query["agent"]["outcome"], "mcp_failed");
    // Said in swarm's words, however the MCP client library found the
    // server gone first (a broken pipe or a closed connection).
    let settings = snapshot_settings();
    let detail = query["agent"]["detail"].as_str().unwrap();
    settings.bind(|| {
        insta::assert_snapshot!(detail, @"start MCP server `db`: it ended before it answered swarm's handshake; its stderr ends with: cannot open db.sqlite: no such file")
    });
    // The summary says why.
    settings.bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
    run broken: finished with failures (exit 1)
      task   status          time  try  changed    tokens      cost  result
      query  failed         [T]s    1        0         0   $0.0000  refs/swarm/broken/query

      0 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/broken at [HASH], [T]s
      agents: 1 session, 0 turns, 0 tokens in, 0 out, $0.0000
      query: start MCP server `db`: it ended before it answered swarm's handshake; its stderr ends with: cannot open db.sqlite: no such file
      query log: .swarm/runs/broken/logs/query/1.err
      query transcript: .swarm/runs/broken/logs/query/1.transcript.jsonl
    "));
}

#[test]
fn a_plan_naming_a_server_it_does_not_declare_is_refused_at_its_line() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "typo.toml",
        r#"
[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"

[mcp.files]
command = ["/bin/cat"]

[[task]]
id = "a"
prompt = "Do it."
mcp = ["file"]
"#,
    );
    let run = repo.swarm(&["validate", plan.to_str().unwrap()]);
    run.assert_code(2);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&run.stderr, &repo), @r#"
    error: invalid plan
      × task `a` uses MCP server `file`, which the plan does not have
        ╭─[[TMP]/plans/typo.toml:12:8]
     11 │ prompt = "Do it."
     12 │ mcp = ["file"]
        ·        ───┬──
        ·           ╰── no such server
        ╰────
      help: did you mean `files`?
    "#)
    });
}

/// Claude Code (from the npm registry) gets the task's servers through
/// `--mcp-config` and starts them itself, inside the same sandbox.
#[test]
fn claude_code_gets_the_tasks_mcp_servers_and_they_are_sandboxed_too() {
    let claude = agent_cli("claude");
    let server = agent_cli("mcp-server-filesystem");
    let repo = TestRepo::new();
    let outside = repo.outside();
    std::fs::create_dir_all(&outside).unwrap();
    let escape = outside.join("escaped-claude.txt");
    let target = escape.display().to_string();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        move |call| {
            if !crate::agent_cli::about(call, "Write with the files server") {
                return Reply::text("ok");
            }
            match call.turn {
                0 => {
                    assert!(
                        call.tools.iter().any(|t| t == "mcp__files__write_file"),
                        "the server's tools were not offered: {:?}",
                        call.tools
                    );
                    Reply::answer(vec![
                        tool(
                            "m1",
                            "mcp__files__write_file",
                            json!({"path": target, "content": "escaped\n"}),
                        ),
                        tool(
                            "m2",
                            "mcp__files__write_file",
                            json!({"path": "from-claude.txt", "content": "written by Claude through MCP\n"}),
                        ),
                    ])
                }
                1 => {
                    let results = &call.tool_results;
                    assert!(results[0].is_error, "{results:?}");
                    assert!(!results[1].is_error, "{results:?}");
                    Reply::text("Done.")
                }
                _ => Reply::text("Done."),
            }
        },
    );
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        &crate::agent_cli::plan(
            &mock,
            &claude,
            &format!(
                r#"[mcp.files]
command = ["{server}", ".", "/"]

[[task]]
id = "docs"
agent = "claude"
prompt = "Write with the files server."
mcp = ["files"]
# Its tools straight in the request, not behind Claude Code's tool search.
env = {{ ENABLE_TOOL_SEARCH = "false" }}
"#,
                server = server.display()
            ),
        ),
    );
    let run = run_with_key(&repo, &plan_path);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    mock.assert_clean();
    assert_eq!(
        repo.git(&["show", "swarm/plan:from-claude.txt"]).trim(),
        "written by Claude through MCP"
    );
    assert!(!escape.exists(), "Claude Code's server wrote outside");
}

/// A server that dies mid-session (here the agent's own bash kills it)
/// fails the attempt at its next call, saying which server and why.
#[test]
fn an_mcp_server_that_dies_mid_session_fails_the_attempt() {
    let repo = TestRepo::new();
    let server = agent_cli("mcp-server-filesystem");
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| match call.turn {
            0 => Reply::answer(vec![tool(
                "b1",
                "bash",
                json!({"command": "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '[s]erver-filesystem' && kill -9 ${p#/proc/}; done; echo killed"}),
            )]),
            1 => Reply::answer(vec![tool(
                "m1",
                "files__list_directory",
                json!({"path": "."}),
            )]),
            other => panic!("the session went on to turn {other} after its server died"),
        },
    );
    let plan = repo.plan(
        "dies.toml",
        &anthropic_plan(
            &mock,
            "",
            &format!(
                r#"
[mcp.files]
command = ["{server}", "."]

[[task]]
id = "docs"
prompt = "List the files."
mcp = ["files"]
"#,
                server = server.display()
            ),
        ),
    );
    let run = run_with_key(&repo, &plan);
    run.assert_code(1);
    let report = repo.report();
    let docs = task(&report, "docs");
    assert_eq!(docs["agent"]["outcome"], "mcp_failed", "{docs}");
    // Its first line: swarm's words, however the client library found the
    // server gone (a write to a closed pipe or a closed read: a race). The
    // server's own last words are its own.
    let detail = docs["agent"]["detail"].as_str().unwrap();
    // What the server itself wrote last (its own words, its paths) is
    // left out.
    let (said, _server) = detail
        .split_once("; its stderr ends with: ")
        .expect("the detail says what the server wrote last");
    insta::assert_snapshot!(said, @"MCP server `files` ended while swarm called its tool `list_directory`");
    // Its work so far is kept on its ref, as for any failed attempt.
    assert!(
        docs["ref"].as_str().is_some_and(|r| !r.is_empty()),
        "{docs}"
    );
}
