//! Record and replay of model traffic, end to end: a run of agent tasks
//! recorded against the mock model (a real HTTP server on loopback), the
//! mock stopped, and the run replayed with no key and no model: the same
//! tree. A changed prompt is a named miss; `--replay-fallthrough` asks the
//! model what was not recorded and `--record` keeps it.

use std::path::Path;

use serde_json::json;

use crate::agent::{KEY, files_under};
use crate::support::model::{MockModel, Options, Reply, Wire, text, tool};
use crate::support::{TestRepo, redact, snapshot_settings, task};

fn plan(url: &str, prompt_b: &str) -> String {
    format!(
        r#"[swarm]
on_failure = "continue"

[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"

[[task]]
id = "a"
prompt = "Write the greeting."

[[task]]
id = "b"
prompt = "{prompt_b}"
deps = ["a"]
"#
    )
}

/// A model that writes a file named after the conversation's prompt and
/// runs a command on it, then finishes.
fn scripted(options: Options) -> MockModel {
    MockModel::start(options, |call| {
        let file = if call.conversation.contains("greeting") {
            "greeting.txt"
        } else {
            "farewell.txt"
        };
        match call.turn {
            0 => Reply::answer(vec![
                text("Writing."),
                tool(
                    "w1",
                    "write_file",
                    json!({"path": file, "content": format!("{}\n", call.conversation)}),
                ),
                tool(
                    "b1",
                    "bash",
                    json!({"command": format!("wc -l {file} && pwd")}),
                ),
            ]),
            _ => Reply::answer(vec![tool("f1", "finish", json!({"summary": "written"}))]),
        }
    })
}

/// What a failed task's report says of it: its status, reason, and its
/// agent's outcome and detail, one to a line.
fn what_failed(task: &serde_json::Value) -> String {
    let mut said = String::new();
    for (name, value) in [
        ("status", &task["status"]),
        ("reason", &task["reason"]),
        ("outcome", &task["agent"]["outcome"]),
        ("detail", &task["agent"]["detail"]),
    ] {
        if let Some(text) = value.as_str() {
            said.push_str(&format!("{name}: {text}\n"));
        }
    }
    said
}

fn tree(repo: &TestRepo, branch: &str) -> String {
    repo.git(&["rev-parse", &format!("{branch}^{{tree}}")])
}

fn run(repo: &TestRepo, plan: &Path, args: &[&str], key: bool) -> crate::support::Run {
    let mut all = vec!["run", plan.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut cmd = repo.swarm_cmd(&all);
    if key {
        cmd.env("TEST_MODEL_KEY", KEY);
    }
    cmd.output().unwrap().into()
}

#[test]
fn a_recorded_run_replays_without_key_or_model_to_the_same_tree() {
    let repo = TestRepo::new();
    let tapes = repo.outside().join("tapes");
    let mock = scripted(Options {
        api_key: Some(KEY.into()),
        ..Options::new("claude-sonnet-4-5")
    });
    let url = mock.base_url(Wire::Anthropic);
    let path = repo.plan("rec.toml", &plan(&url, "Write the farewell."));
    let tapes_arg = tapes.to_str().unwrap();
    run(&repo, &path, &["--record", tapes_arg], true).assert_code(0);
    mock.assert_clean();
    assert_eq!(mock.calls().len(), 4);
    let recorded = tree(&repo, "swarm/rec");
    assert_eq!(
        repo.show("swarm/rec", "greeting.txt"),
        "Write the greeting."
    );

    // One cassette per attempt: a header and two exchanges each, with
    // the answer event by event; the key in none of them.
    let a = std::fs::read_to_string(tapes.join("tasks/a/1.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = a
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{a}");
    assert_eq!(lines[0]["kind"], "cassette");
    assert_eq!(lines[0]["name"], "task `a`, attempt 1");
    assert_eq!(lines[1]["kind"], "exchange");
    assert_eq!(lines[1]["request"]["path"], "/v1/messages");
    assert!(lines[1]["response"]["events"].as_array().unwrap().len() > 3);
    assert!(lines[1]["usage"]["input_tokens"].as_u64().unwrap() > 0);
    for file in files_under(&tapes) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(KEY), "the key is in {}", file.display());
    }
    drop(mock);

    // No model, no key: the same answers, the same tree.
    let again = run(
        &repo,
        &path,
        &["--replay", tapes_arg, "--name", "again"],
        false,
    );
    again.assert_code(0);
    assert_eq!(tree(&repo, "swarm/again"), recorded);
    let report = repo.report();
    assert_eq!(task(&report, "a")["agent"]["turns"], 2);
    // The same usage as recorded: spending replays too.
    assert!(
        task(&report, "b")["agent"]["usage"]["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Replaying one directory while recording another copies the whole
    // run there: it replays on its own.
    let copy = repo.outside().join("copy");
    let copy_arg = copy.to_str().unwrap();
    run(
        &repo,
        &path,
        &[
            "--replay", tapes_arg, "--record", copy_arg, "--name", "copied",
        ],
        false,
    )
    .assert_code(0);
    run(
        &repo,
        &path,
        &["--replay", copy_arg, "--name", "from-copy"],
        false,
    )
    .assert_code(0);
    assert_eq!(tree(&repo, "swarm/from-copy"), recorded);

    let shown = repo.swarm(&["logs", "again", "a", "--cassette", tapes_arg]);
    shown.assert_code(0);
    // How long each answer took to stream: the recording's.
    let mut settings = snapshot_settings();
    settings.add_filter(r"events in \d+ ms", "events in [N] ms");
    settings.bind(|| {
        insta::assert_snapshot!(redact(&shown.stdout, &repo), @"
    cassette of task `a`, attempt 1 (format version 1)

    ── turn 1 · POST /v1/messages key [HASH] · stream of 19 events in [N] ms, 100 in / 20 out tokens
    Writing.
    → write_file
    → bash

    ── turn 2 · POST /v1/messages key [HASH] · stream of 9 events in [N] ms, 100 in / 20 out tokens
    → finish
    ")
    });

    // A changed prompt was not recorded: the task fails naming its turn,
    // with what changed; what did not change still replays.
    let changed = repo.plan("rec.toml", &plan(&url, "Write the goodbye."));
    let missed = run(
        &repo,
        &changed,
        &["--replay", tapes_arg, "--name", "missed"],
        false,
    );
    assert_ne!(missed.code, 0);
    let report = repo.report();
    assert_eq!(task(&report, "a")["status"], "merged");
    let b = task(&report, "b");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&what_failed(b), &repo), @r#"
    status: failed
    reason: the model call failed: replay: no recorded answer for task `b`, attempt 1, turn 1 (/v1/messages): cassette [TMP]/outside/tapes/tasks/b/1.jsonl has no request like it; the nearest recorded one (turn 1) differs:
      - "text": "Write the farewell.",
      + "text": "Write the goodbye.",
    help: record the run again with --record, or add --replay-fallthrough to ask the provider what was not recorded
    outcome: model_error
    detail: the model call failed: replay: no recorded answer for task `b`, attempt 1, turn 1 (/v1/messages): cassette [TMP]/outside/tapes/tasks/b/1.jsonl has no request like it; the nearest recorded one (turn 1) differs:
      - "text": "Write the farewell.",
      + "text": "Write the goodbye.",
    help: record the run again with --record, or add --replay-fallthrough to ask the provider what was not recorded
    "#));

    // Falling through to a model asks it only what was not recorded, and
    // records it; the changed plan then replays on its own.
    let model = scripted(Options {
        api_key: Some(KEY.into()),
        ..Options::new("claude-sonnet-4-5")
    });
    let through = repo.plan(
        "rec.toml",
        &plan(&model.base_url(Wire::Anthropic), "Write the goodbye."),
    );
    run(
        &repo,
        &through,
        &[
            "--replay",
            tapes_arg,
            "--replay-fallthrough",
            "--record",
            tapes_arg,
            "--name",
            "through",
        ],
        true,
    )
    .assert_code(0);
    model.assert_clean();
    // Task a replayed; b's two calls went to the model.
    assert_eq!(model.calls().len(), 2);
    assert!(
        model
            .calls()
            .iter()
            .all(|c| c.conversation.contains("goodbye"))
    );
    drop(model);
    run(
        &repo,
        &changed,
        &["--replay", tapes_arg, "--name", "replayed"],
        false,
    )
    .assert_code(0);
    assert_eq!(tree(&repo, "swarm/replayed"), tree(&repo, "swarm/through"));
}

#[test]
fn a_hand_written_cassette_drives_an_agent_with_no_model_at_all() {
    let repo = TestRepo::new();
    let tapes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cassettes/hand-written");
    let path = repo.plan(
        "hand.toml",
        r#"[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"

[[task]]
id = "note"
prompt = "Write a note."
"#,
    );
    // The model needs ANTHROPIC_API_KEY, which is not set: replaying, no
    // key is asked for.
    let run = repo.run_plan(&path, &["--replay", tapes.to_str().unwrap()]);
    run.assert_code(0);
    assert_eq!(
        repo.show("swarm/hand", "NOTE.md"),
        "written from a cassette"
    );
    // Without --replay the same plan needs its key.
    let keyless = repo.run_plan(&path, &["--name", "keyless"]);
    assert_ne!(keyless.code, 0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&keyless.stderr, &repo), @r#"
    error: invalid plan
      × model `default` reads its API key from $ANTHROPIC_API_KEY, which is not set
       ╭─[[TMP]/plans/hand.toml:1:1]
     1 │ [models.default]
       · ────────┬───────
       ·         ╰── this model
     2 │ provider = "anthropic"
       ╰────
      help: export ANTHROPIC_API_KEY=... before `swarm run`, or name another variable with api_key_env
            ("" for endpoints without a key, such as a local Ollama)
    "#));
}

#[test]
fn record_and_replay_are_refused_on_a_cluster_and_a_missing_cassette_is_named() {
    let repo = TestRepo::new();
    let path = repo.plan(
        "none.toml",
        r#"[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"

[[task]]
id = "note"
prompt = "Write a note."
"#,
    );
    let empty = repo.outside().join("empty-tapes");
    let run = repo.run_plan(&path, &["--replay", empty.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    let report = repo.report();
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(&what_failed(task(&report, "note")), &repo), @"
        status: failed
        reason: the model call failed: replay: no recorded answer for task `note`, attempt 1, turn 1 (/v1/messages): no cassette was recorded at [TMP]/outside/empty-tapes/tasks/note/1.jsonl
        help: record the run again with --record, or add --replay-fallthrough to ask the provider what was not recorded
        outcome: model_error
        detail: the model call failed: replay: no recorded answer for task `note`, attempt 1, turn 1 (/v1/messages): no cassette was recorded at [TMP]/outside/empty-tapes/tasks/note/1.jsonl
        help: record the run again with --record, or add --replay-fallthrough to ask the provider what was not recorded
        "));
    let slurm = repo.run_plan(
        &path,
        &[
            "--replay",
            empty.to_str().unwrap(),
            "--executor",
            "slurm",
            "--name",
            "cluster",
        ],
    );
    assert_eq!(slurm.code, 2, "{}", slurm.stderr);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&slurm.stderr, &repo), @"
    error: failed to start run: the slurm executor does not support --record and --replay
    help: run the plan with --executor local to record or replay its model traffic
    ")
    });
}

/// A run with repair rounds (a verify that fails twice, printing nothing
/// the first time), recorded and replayed many times: every replay finds
/// every request it makes recorded, the verify's feedback included, while
/// the agent's commands write to the same logs as the verify.
#[test]
fn a_recorded_run_with_repair_rounds_replays_exactly() {
    let repo = TestRepo::new();
    let tapes = repo.outside().join("tapes");
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| {
            // Each round: a command that prints (its output lands in the
            // log the verify shares), one more line, then finish.
            let n = call.body.to_string().matches("[verify:").count();
            match call.turn % 2 {
                0 => Reply::answer(vec![tool(
                    format!("b{}", call.turn),
                    "bash",
                    json!({"command": format!("printf 'round {n}\\n'; echo line >> count.txt")}),
                )]),
                _ => Reply::answer(vec![tool(
                    format!("f{}", call.turn),
                    "finish",
                    json!({"summary": "done"}),
                )]),
            }
        },
    );
    let url = mock.base_url(Wire::Anthropic);
    let path = repo.plan(
        "repair.toml",
        &format!(
            "[models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\nbase_url = \"{url}\"\napi_key_env = \"TEST_MODEL_KEY\"\n\n\
             [[task]]\nid = \"fix\"\nprompt = \"Add three lines.\"\n\
             verify = \"n=$(wc -l < count.txt); [ $n -ge 2 ] || echo only $n >&2; [ $n -ge 3 ]\"\n"
        ),
    );
    let tapes_arg = tapes.to_str().unwrap();
    run(
        &repo,
        &path,
        &["--record", tapes_arg, "--name", "rec"],
        true,
    )
    .assert_code(0);
    mock.assert_clean();
    let recorded = tree(&repo, "swarm/rec");
    assert_eq!(repo.show("swarm/rec", "count.txt").lines().count(), 3);
    drop(mock);
    for round in 0..5 {
        let name = format!("again{round}");
        let again = run(
            &repo,
            &path,
            &["--replay", tapes_arg, "--name", &name],
            false,
        );
        again.assert_code(0);
        assert_eq!(tree(&repo, &format!("swarm/{name}")), recorded);
    }
}

/// The provider's refusal of a request itself (a 400: too large for its
/// context) is the answer that request gets, every time: it is recorded,
/// and the replay ends the task as the recorded run ended, on the same
/// words, where it would have found no recorded answer.
#[test]
fn a_refused_request_is_recorded_and_replays_as_refused() {
    let repo = TestRepo::new();
    let tapes = repo.outside().join("tapes");
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| match call.turn {
            0 => Reply::answer(vec![tool(
                "b1",
                "bash",
                json!({"command": "echo line >> count.txt"}),
            )]),
            _ => Reply::status(400, "the request exceeds the context size (8192 tokens)"),
        },
    );
    let url = mock.base_url(Wire::Anthropic);
    let path = repo.plan(
        "refused.toml",
        &format!(
            "[models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\nbase_url = \"{url}\"\napi_key_env = \"TEST_MODEL_KEY\"\n\n\
             [[task]]\nid = \"big\"\nprompt = \"Add a line.\"\n"
        ),
    );
    let tapes_arg = tapes.to_str().unwrap();
    let recorded = run(
        &repo,
        &path,
        &["--record", tapes_arg, "--name", "rec"],
        true,
    );
    recorded.assert_code(1);
    let report = repo.report();
    let detail = |report: &serde_json::Value| task(report, "big")["reason"].clone();
    let said = detail(&report);
    insta::assert_snapshot!(said.as_str().unwrap(), @"the model call failed: HTTP 400: the request exceeds the context size (8192 tokens)");
    // Two calls: the answer and the refusal, each asked once (a refusal
    // is not retried).
    assert_eq!(mock.calls().len(), 2);
    drop(mock);
    let again = run(
        &repo,
        &path,
        &["--replay", tapes_arg, "--name", "again"],
        false,
    );
    again.assert_code(1);
    assert!(
        !again.stderr.contains("no recorded answer"),
        "{}",
        again.stderr
    );
    assert_eq!(detail(&repo.report()), said);
}
