//! Escape sequences from tasks never reach a terminal or a summary raw
//! (issue 14, class 6): file names, task output, failure reasons and agent
//! summaries are shown with their control characters escaped.

use serde_json::json;

use crate::support::model::{MockModel, Options, Reply, Wire, tool};
use crate::support::{TestRepo, redact, snapshot_settings, stable_stderr, summary_of};

/// OSC 52 (write the clipboard), then the one-byte CSI U+009B.
const OSC52: &str = "\u{1b}]52;c;aGk=\u{7}";

/// Panics if `bytes` hold anything a terminal acts on: ESC, BEL, or
/// U+009B (as UTF-8 or as a lone byte).
#[track_caller]
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !bytes.iter().any(|&b| b == 0x1b || b == 0x07 || b == 0x9b),
        "{what} holds a raw control byte:\n{text:?}"
    );
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

fn swarm_bytes(repo: &TestRepo, args: &[&str]) -> std::process::Output {
    repo.swarm_cmd(args).output().unwrap()
}

const PLAN: &str = r#"[swarm]
on_failure = "continue"

[defaults]
on_conflict = "stop"

[[task]]
id = "left"
run = '''printf left > "$(printf 'f\033]52;c;aGk=\007\302\233x')"; printf left > '<img src=x>`a`.txt' '''

[[task]]
id = "right"
run = '''printf right > "$(printf 'f\033]52;c;aGk=\007\302\233x')"; printf right > '<img src=x>`a`.txt' '''

[[task]]
id = "noisy"
run = '''printf '\033]52;c;aGk=\007out\302\233\n'; printf '\033]52;c;aGk=\007err\n' >&2; exit 3'''
"#;

#[test]
fn file_names_and_output_with_escape_sequences_are_shown_escaped() {
    let repo = TestRepo::new();
    let plan = repo.plan("esc.toml", PLAN);
    let summary = repo.root().join("summary.md");
    let junit = repo.root().join("junit.xml");
    let run = swarm_bytes(
        &repo,
        &[
            "run",
            plan.to_str().unwrap(),
            "-j",
            "1",
            "--events",
            "json",
            "--summary",
            summary.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_inert("run's stderr", &run.stderr);
    assert_inert("run's stdout (events)", &run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // The conflicting file is named, visibly. (Whether `noisy` ends before
    // `right`'s merge is found conflicting is the writer thread's timing:
    // the counts are left out.)
    let mut settings = snapshot_settings();
    settings.add_filter(r"\[\d/3\]", "[_/3]");
    settings
        .bind(|| insta::assert_snapshot!(redact(&stable_stderr(&stderr), &repo), @r"
        swarm: run esc: 3 tasks, up to 1 at once, from HEAD ([HASH]) into branch swarm/esc
          start      left    
          succeeded  left     [_/3]
          merged     left
          start      right   
          succeeded  right    [_/3]
          conflict   right     in <img src=x>`a`.txt, f\x1b]52;c;aGk=\x07\u{9b}x
          conflicted right    [_/3]  conflicts with the integration branch in <img src=x>`a`.txt, f\x1b]52;c;aGk=\x07\u{9b}x, also changed by left
          start      noisy   
          failed     noisy    [_/3]  exited with code 3

        run esc: finished with failures (exit 1)
          task   status          time  try  changed  result
          left   merged         [T]s    1        2  refs/swarm/esc/left
          right  conflicted     [T]s    1        2  conflict in <img src=x>`a`.txt, f\x1b]52;c;aGk=\x07\u{9b}x
          noisy  failed         [T]s    1        0  refs/swarm/esc/noisy

          1 merged, 0 succeeded (read-only), 1 failed, 1 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/esc at [HASH], [T]s
          noisy: exited with code 3
          noisy log: .swarm/runs/esc/logs/noisy/1.err
          right: conflict in <img src=x>`a`.txt line 1; f\x1b]52;c;aGk=\x07\u{9b}x line 1 with left
          right: next step: git switch swarm/esc && git merge refs/swarm/esc/right, fix, commit, then `swarm resolve esc right` (see `swarm resolve --help`)
        "));
    // The events are still JSON with the real name in them.
    let conflicted = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "task_conflicted" || e["type"] == "task_conflicted")
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(conflicted.contains("\\u001b]52"), "{conflicted}");

    let md = std::fs::read(&summary).unwrap();
    assert_inert("the Markdown summary", &md);
    let md = String::from_utf8_lossy(&md);
    assert!(
        !md.replace("\\<", "").contains("<img"),
        "HTML from a file name: {md}"
    );
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&md, &repo), @r"
    ## ❌ swarm run `esc`: finished with failures

    3 tasks: 1 merged, 0 succeeded (read-only), 1 failed, 1 conflicted, 0 blocked or skipped, 0 cancelled. Branch `swarm/esc` at `[HASH]`, [T]s.

    | task | status | time | attempts | changed | note |
    |---|---|---:|---:|---:|---|
    | `left` | merged | [T]s | 1 | 2 |  |
    | `right` | conflicted | [T]s | 1 | 2 | conflict in \<img src=x\>\`a\`.txt, f\\x1b\]52;c;aGk=\\x07\\u\{9b\}x |
    | `noisy` | failed | [T]s | 1 | 0 | exited with code 3 |

    <details><summary><code>noisy</code>: exited with code 3</summary>

    ```text
    \x1b]52;c;aGk=\x07err
    ```

    </details>
    "));
    assert_inert("the JUnit report", &std::fs::read(&junit).unwrap());

    for args in [
        &["status"][..],
        &["status", "--json"],
        &["status", "esc"],
        &["logs", "esc", "noisy"],
    ] {
        let out = swarm_bytes(&repo, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_inert(&format!("stdout of {args:?}"), &out.stdout);
        assert_inert(&format!("stderr of {args:?}"), &out.stderr);
    }
    let logs = swarm_bytes(&repo, &["logs", "esc", "noisy"]);
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout),
        "\\x1b]52;c;aGk=\\x07out\\u{9b}\n--- stderr\n\\x1b]52;c;aGk=\\x07err\n"
    );
    // --raw into a pipe: the bytes as the task wrote them.
    let raw = swarm_bytes(&repo, &["logs", "esc", "noisy", "--raw"]);
    assert_eq!(raw.status.code(), Some(0), "{raw:?}");
    assert_eq!(
        String::from_utf8_lossy(&raw.stdout),
        format!("{OSC52}out\u{9b}\n--- stderr\n{OSC52}err\n")
    );
}

#[test]
fn agent_reasons_and_summaries_are_shown_escaped() {
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some("sk-test".into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| match call.conversation.as_str() {
            "fail" => Reply::status(400, format!("{OSC52}bad\u{9b}request")),
            _ => Reply::answer(vec![tool(
                "f",
                "finish",
                json!({"summary": format!("done {OSC52}<script>x</script>")}),
            )]),
        },
    );
    let plan = repo.plan(
        "agents.toml",
        &format!(
            r#"[swarm]
on_failure = "continue"

[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"
retries = 0

[[task]]
id = "fails"
prompt = "fail"

[[task]]
id = "works"
prompt = "work"
"#,
            url = mock.base_url(Wire::Anthropic)
        ),
    );
    let summary = repo.root().join("summary.md");
    let run = repo
        .swarm_cmd(&[
            "run",
            plan.to_str().unwrap(),
            "--summary",
            summary.to_str().unwrap(),
        ])
        .env("TEST_MODEL_KEY", "sk-test")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_inert("run's stderr", &run.stderr);
    assert_inert("run's stdout", &run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(&head_and_summary(&stderr), &repo), @r#"
          ⚠ agent task `fails` has no `verify`: nothing checks its work before it is merged
            ╭─[[TMP]/plans/agents.toml:12:6]
         11 │ [[task]]
         12 │ id = "fails"
            ·      ───┬───
            ·         ╰── this task
         13 │ prompt = "fail"
            ╰────
          help: add `verify = "..."` (a test command) to the task, or to [defaults] for every task

          ⚠ agent task `works` has no `verify`: nothing checks its work before it is merged
            ╭─[[TMP]/plans/agents.toml:16:6]
         15 │ [[task]]
         16 │ id = "works"
            ·      ───┬───
            ·         ╰── this task
         17 │ prompt = "work"
            ╰────
          help: add `verify = "..."` (a test command) to the task, or to [defaults] for every task
        warning: the plan grants more than swarm's defaults:
          [TMP]/plans/agents.toml:7: [models.default] base_url = "http://127.0.0.1:[PORT]": sends $TEST_MODEL_KEY to 127.0.0.1:[PORT]
          [TMP]/plans/agents.toml:8: [models.default] api_key_env = "TEST_MODEL_KEY": reads $TEST_MODEL_KEY as the API key (the provider's own is $ANTHROPIC_API_KEY)
        […]
        run agents: finished with failures (exit 1)
          task   status          time  try  changed    tokens      cost  result
          fails  failed         [T]s    1        0         0   $0.0000  refs/swarm/agents/fails
          works  merged         [T]s    1        0       120   $0.0006  refs/swarm/agents/works

          1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/agents at [HASH], [T]s
          warning: `works` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
          agents: 2 sessions, 2 turns, 100 tokens in, 20 out, $0.0006
          fails: the model call failed: HTTP 400: \x1b]52;c;aGk=\x07bad\u{9b}request
          fails log: .swarm/runs/agents/logs/fails/1.err
          fails transcript: .swarm/runs/agents/logs/fails/1.transcript.jsonl
        "#));
    let md = std::fs::read(&summary).unwrap();
    assert_inert("the Markdown summary", &md);
    assert!(
        !String::from_utf8_lossy(&md)
            .replace("\\<", "")
            .contains("<script>")
    );
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["logs", "agents", "works"],
    ] {
        let out = swarm_bytes(&repo, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_inert(&format!("stdout of {args:?}"), &out.stdout);
        assert_inert(&format!("stderr of {args:?}"), &out.stderr);
    }
}
