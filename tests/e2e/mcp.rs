//! `swarm mcp` driven by an MCP client built on the official SDK (`rmcp`):
//! the real binary, serving a real repository over stdio, runs plans in
//! the background, reports their status, shows logs, cancels and resumes.

use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

use crate::support::{TestRepo, redact, snapshot_settings, swarm_bin};

type Client = RunningService<RoleClient, ()>;

async fn connect(repo: &TestRepo) -> Client {
    let mut cmd = std::process::Command::new(swarm_bin());
    crate::support::hermetic(&mut cmd, &repo.home());
    cmd.arg("-C").arg(repo.path()).arg("mcp");
    let transport = TokioChildProcess::new(tokio::process::Command::from(cmd)).unwrap();
    ().serve(transport).await.unwrap()
}

/// Calls `tool` with `args`: its text, and whether it was an error.
async fn call(client: &Client, tool: &str, args: Value) -> (String, bool) {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap();
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    (text, result.is_error == Some(true))
}

async fn status(client: &Client, run: &str, wait: u64) -> Value {
    let (text, error) = call(client, "run_status", json!({"run": run, "wait_secs": wait})).await;
    assert!(!error, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Polls `run_status` (waiting for changes) until `done` says so; if it
/// never does, fails with the run's status and its detached process's
/// output (`.swarm/mcp/<run>.log` under `repo`).
async fn until(
    client: &Client,
    repo: &std::path::Path,
    run: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    // Bounded by time, not by calls: a call returns early on any change.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while std::time::Instant::now() < deadline {
        let s = status(client, run, 5).await;
        if done(&s) {
            return s;
        }
    }
    let log =
        std::fs::read_to_string(repo.join(format!(".swarm/mcp/{run}.log"))).unwrap_or_default();
    let holder = std::fs::read_to_string(repo.join(format!(".swarm/runs/{run}/lock")))
        .unwrap_or_else(|e| format!("({e})"));
    // Which processes there are and where they wait, to tell a resume
    // that never started from one that hangs.
    let ps = std::process::Command::new("ps")
        .args(["-eo", "pid,ppid,pgid,stat,wchan:24,etime,args"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    panic!(
        "run {run} never got there: {}\n--- its output:\n{log}\n--- its lock names: {holder}\n--- processes:\n{ps}",
        status(client, run, 0).await
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_validates_runs_follows_cancels_and_resumes() {
    let repo = TestRepo::new();
    repo.write(
        "plans/greet.toml",
        "[[task]]\nid = \"hello\"\nrun = \"echo hello from mcp; echo hi > hello.txt\"\ncreates = [\"hello.txt\"]\n\n[[task]]\nid = \"bye\"\nrun = \"echo bye > bye.txt\"\ncreates = [\"bye.txt\"]\n",
    );
    repo.write(
        "plans/slow.toml",
        "[[task]]\nid = \"slow\"\nrun = \"[ \\\"$SWARM_ATTEMPT\\\" -gt 1 ] || sleep 313; echo done > slow.txt\"\n",
    );
    repo.write(
        "plans/open.toml",
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"x\"\nrun = \"true\"\n",
    );
    repo.commit_all("plans");
    let client = connect(&repo).await;
    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for tool in [
        "validate_plan",
        "plan_goal",
        "run_plan",
        "run_status",
        "task_logs",
        "compare",
        "cancel_run",
        "resume_run",
        "list_runs",
    ] {
        assert!(tools.iter().any(|t| t == tool), "{tool} missing: {tools:?}");
    }

    // A bad plan's errors name their place.
    let (text, error) = call(
        &client,
        "validate_plan",
        json!({"text": "[[task]]\nid = \"a\"\nrun = \"true\"\ndepends = [\"b\"]\n"}),
    )
    .await;
    assert!(error, "{text}");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&text, &repo), @r#"
        error: invalid plan
          × unknown field `depends`, expected one of `id`, `deps`, `run`, `wasm`, `args`, `fuel`,
          │ `prompt`, `agent`, `mcp`, `output_schema`, `model`, `max_turns`, `budget`, `repair_rounds`,
          │ `env`, `timeout`, `stall_after`, `retries`, `verify`, `paths`, `sparse`, `creates`,
          │ `allow_overlap`, `isolation`, `group`, `junit`, `flaky`, `on_conflict`, `conflict_reruns`,
          │ `network`, `setup`, `warm`, `memory`, `processes`, `max_output`, `max_file_size`, `matrix`,
          │ `shards`, `shard_grouping`, `list_tests`, `affected`, `affects`, `variants`, `score`,
          │ `score_timeout`, `score_repeat`, `pick`, `temperature`
           ╭─[plan-[HASH].toml:4:1]
         3 │ run = "true"
         4 │ depends = ["b"]
           · ───┬───
           ·    ╰── unknown key
           ╰────
          help: did you mean `deps`?
        "#)
    });
    let (text, error) = call(
        &client,
        "validate_plan",
        json!({"path": "plans/greet.toml"}),
    )
    .await;
    assert!(!error, "{text}");
    // Its first line: the toolchains it lists next are the machine's.
    let first = text.lines().next().unwrap_or_default();
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(first, &repo), @"plans/greet.toml: ok: 2 tasks, 2 without dependencies, longest chain 1, base HEAD ([HASH])"));

    // Nothing outside the repository, nothing that weakens the sandbox.
    let (text, error) = call(&client, "run_plan", json!({"path": "../outside.toml"})).await;
    assert!(error, "{text}");
    let (text, error) = call(&client, "run_plan", json!({"path": "/etc/passwd"})).await;
    assert!(error, "{text}");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&text, &repo), @"the plan `/etc/passwd` is an absolute path"));
    let (text, error) = call(&client, "run_plan", json!({"path": "plans/open.toml"})).await;
    assert!(error, "{text}");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&text, &repo), @r#"
    error: invalid plan
      × [swarm] `sandbox` needs trust: it runs tasks unconfined, with your permissions and files
       ╭─[plans/open.toml:2:11]
     1 │ [swarm]
     2 │ sandbox = "none"
       ·           ───┬──
       ·              ╰── in a plan that came over MCP
     3 │ 
       ╰────
      help: a plan that comes over MCP may set only what swarm's defaults allow (no sandbox off, no
            network, no keys or calls sent elsewhere, no file outside the repository, no program of
            its own): its author runs it with `swarm run` if they mean it
    "#)
    });

    // A run starts at once and is followed to its end.
    let (text, error) = call(&client, "run_plan", json!({"path": "plans/greet.toml"})).await;
    assert!(!error, "{text}");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&text, &repo), @r#"run `greet` started; follow it with run_status {"run": "greet", "wait_secs": 30}"#));
    let done = until(&client, &repo.path(), "greet", |s| s["state"] != "running").await;
    assert_eq!(done["state"], "finished ok", "{done}");
    assert!(
        done["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "merged"),
        "{done}"
    );
    assert_eq!(repo.show("swarm/greet", "hello.txt"), "hi");
    let (logs, error) = call(
        &client,
        "task_logs",
        json!({"run": "greet", "task": "hello"}),
    )
    .await;
    assert!(!error, "{logs}");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&logs, &repo), @"hello from mcp"));
    let (runs, _) = call(&client, "list_runs", json!({})).await;
    assert!(runs.contains("\"greet\""), "{runs}");
    // The run is the command line's as well.
    let cli = repo.swarm(&["status", "greet"]);
    cli.assert_code(0);
    // Its report as a resource.
    let report = client
        .read_resource(ReadResourceRequestParams::new("swarm://runs/greet/report"))
        .await
        .unwrap();
    let body = serde_json::to_string(&report).unwrap();
    assert!(body.contains("integration_branch"), "{body}");

    // A long run is cancelled: its processes are gone; resumed, it ends.
    let (text, error) = call(&client, "run_plan", json!({"path": "plans/slow.toml"})).await;
    assert!(!error, "{text}");
    until(&client, &repo.path(), "slow", |s| {
        s["tasks"][0]["status"] == "running"
    })
    .await;
    std::thread::sleep(Duration::from_millis(300));
    let (text, error) = call(&client, "cancel_run", json!({"run": "slow"})).await;
    assert!(!error, "{text}");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&text, &repo), @"run `slow` cancelled; its work is kept; resume_run goes on with it"));
    let cancelled = status(&client, "slow", 0).await;
    assert_eq!(cancelled["state"], "stopped", "{cancelled}");
    let ps = std::process::Command::new("pgrep")
        .args(["-f", "sleep 313"])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
    let (text, error) = call(&client, "resume_run", json!({"run": "slow"})).await;
    assert!(!error, "{text}");
    let resumed = until(&client, &repo.path(), "slow", |s| {
        s["state"] != "running" && s["state"] != "stopped"
    })
    .await;
    assert_eq!(resumed["state"], "finished ok", "{resumed}");
    assert_eq!(repo.show("swarm/slow", "slow.txt"), "done");
    client.cancel().await.unwrap();
}

/// A real MCP client nobody here wrote: Claude Code (pinned from the npm
/// registry) with `swarm mcp` configured as its server, its model scripted
/// by the mock to call `run_plan`, then `run_status` until the run ends.
#[test]
fn claude_code_drives_swarm_over_mcp_and_the_run_merges() {
    use crate::support::model::{MockModel, Options, Reply, Wire, text, tool};

    let claude = crate::support::agent_cli("claude");
    let repo = TestRepo::new();
    repo.write(
        "plans/greet.toml",
        "[[task]]\nid = \"hello\"\nrun = \"echo hi > hello.txt\"\ncreates = [\"hello.txt\"]\n",
    );
    repo.commit_all("a plan");
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |call| {
        let offered = call.tools.iter().any(|t| t == "mcp__swarm__run_plan");
        if !offered || !call.conversation.contains("greet plan") {
            return Reply::text("ok");
        }
        match call.turn {
            0 => Reply::answer(vec![
                text("Starting it."),
                tool(
                    "t1",
                    "mcp__swarm__run_plan",
                    json!({"path": "plans/greet.toml"}),
                ),
            ]),
            // Followed until it ends, as a model would: a call answers at
            // the run's first change, which may come before its end.
            turn if turn < 40
                && !call
                    .tool_results
                    .iter()
                    .any(|r| r.content.contains("\"state\": \"finished ok\"")) =>
            {
                Reply::answer(vec![tool(
                    format!("t{}", turn + 1),
                    "mcp__swarm__run_status",
                    json!({"run": "greet", "wait_secs": 60}),
                )])
            }
            _ => Reply::text("The greet run finished and merged."),
        }
    });
    let home = repo.home();
    let config = json!({"mcpServers": {"swarm": {
        "command": swarm_bin(),
        "args": ["-C", repo.path(), "mcp"],
        "env": {"HOME": home, "GIT_CONFIG_GLOBAL": "/dev/null",
                "PATH": std::env::var("PATH").unwrap_or_default()}
    }}});
    let mut cmd = std::process::Command::new(&claude);
    crate::support::hermetic(&mut cmd, &home);
    cmd.current_dir(repo.path())
        .args([
            "-p",
            "Run the greet plan with swarm and tell me when it is merged.",
        ])
        .args(["--output-format", "stream-json", "--verbose"])
        .args([
            "--permission-mode",
            "bypassPermissions",
            "--strict-mcp-config",
        ])
        .args(["--model", "claude-sonnet-4-5"])
        .arg("--mcp-config")
        .arg(config.to_string())
        .env("ANTHROPIC_BASE_URL", mock.base_url(Wire::Anthropic))
        .env("ANTHROPIC_API_KEY", "sk-test-not-a-key")
        .env("CLAUDE_CONFIG_DIR", home.join(".claude"))
        .env("IS_SANDBOX", "1")
        // Its MCP tools in the request, not behind its tool search.
        .env("ENABLE_TOOL_SEARCH", "false")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .stdin(std::process::Stdio::null());
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    mock.assert_clean();
    // Claude Code got swarm's answers back as tool results.
    let results: Vec<String> = mock
        .calls()
        .iter()
        .flat_map(|c| c.tool_results.iter().map(|r| r.content.clone()))
        .collect();
    let offered: Vec<Vec<String>> = mock.calls().iter().map(|c| c.tools.clone()).collect();
    assert!(
        results.iter().any(|r| r.contains("run `greet` started")),
        "{results:?}\n{offered:?}\n{stdout}"
    );
    assert!(
        results
            .iter()
            .any(|r| r.contains("\"state\": \"finished ok\"")),
        "{results:?}"
    );
    assert_eq!(repo.show("swarm/greet", "hello.txt"), "hi");
}
