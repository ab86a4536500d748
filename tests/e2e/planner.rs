//! `swarm plan` and `swarm run --goal` against the mock model server with
//! scripted answers: a plan accepted at once, each kind of problem sent
//! back and fixed on the next round, a model that never gets it right, a
//! 429, a "do not split" answer, the prompt as the model sees it, and a
//! goal planned and run end to end by agents.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::model::{Call, MockModel, Options, Part, Reply, Wire, text, tool};
use crate::support::{Run, TestRepo, redact, snapshot_settings};

const KEY: &str = "sk-test-PLANNER-0123456789";

/// A repository with two modules and a planner configuration pointing at
/// `mock`; `swarm` is the configuration's extra `[swarm]` lines.
fn repo_for(mock: &MockModel, swarm: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write("src/a/lib.rs", "pub fn a() -> &'static str { \"a\" }\n");
    repo.write("src/b/lib.rs", "pub fn b() -> &'static str { \"b\" }\n");
    repo.write(
        "swarm.toml",
        &format!(
            r#"[swarm]
on_failure = "continue"
{swarm}

[models.default]
provider = "anthropic"
model = "mock-model"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"
"#,
            url = mock.base_url(Wire::Anthropic)
        ),
    );
    repo.commit_all("two modules and a planner configuration");
    // Its endpoint and key variable are not the provider's: the user
    // trusts it (see trust.rs).
    repo.swarm(&["trust"]).assert_code(0);
    repo
}

fn swarm(repo: &TestRepo, args: &[&str]) -> Run {
    let mut cmd = repo.swarm_cmd(args);
    cmd.env("TEST_MODEL_KEY", KEY);
    cmd.output().unwrap().into()
}

fn options() -> Options {
    Options {
        api_key: Some(KEY.into()),
        // The planner asks for whole answers, agents stream.
        stream: None,
        ..Options::new("mock-model")
    }
}

fn is_planner(call: &Call) -> bool {
    call.system.starts_with("You are the planner of swarm")
}

/// An answer holding `tasks` as the planner's JSON.
fn answer(split: bool, tasks: Value) -> Reply {
    let plan = json!({
        "split": split,
        "reason": if split { "the two modules change independently" } else { "a one-line change" },
        "verify": "test -f README.md",
        "tasks": tasks,
    });
    Reply::text(format!(
        "Here is the plan.\n```json\n{}\n```",
        serde_json::to_string_pretty(&plan).unwrap()
    ))
}

fn good_tasks() -> Value {
    json!([
        {"id": "mod-a", "why": "module a gets its greeting", "paths": ["src/a"],
         "prompt": "Write src/a/hello.txt."},
        {"id": "mod-b", "why": "module b gets its greeting", "paths": ["src/b"],
         "prompt": "Write src/b/hello.txt."},
        {"id": "docs", "why": "the README names both greetings", "deps": ["mod-a", "mod-b"],
         "paths": ["README.md"], "prompt": "Mention the greetings in README.md."}
    ])
}

#[test]
fn a_valid_plan_is_written_checked_and_editable() {
    let mock = MockModel::start(options(), |call| {
        assert!(!call.stream, "the planner asks for a whole answer");
        answer(true, good_tasks())
    });
    let repo = repo_for(&mock, "");
    let run = swarm(&repo, &["plan", "Greet from both modules"]);
    run.assert_code(0);
    mock.assert_clean();
    assert_eq!(mock.calls().len(), 1);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&run.stderr, &repo), @"
    planning with model `default` (6 files, map of 64 tokens)...
    wrote plan.toml: 3 tasks, 1 round, 100 tokens in / 20 out ($0.0000)
      reason: the two modules change independently
      map:    [TMP]/repo/plan.map.md (64 tokens, [HASH])
    ")
    });

    let plan = std::fs::read_to_string(repo.path().join("plan.toml")).unwrap();
    let head = repo.git(&["rev-parse", "HEAD"]);
    // The whole file, as the user reads and edits it: its base is HEAD,
    // the configuration's settings and models come along.
    let shown = redact(&plan.replace(head.trim(), "[HEAD]"), &repo);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(shown, @r#"
        # Plan written by `swarm plan`: review and edit it, then `swarm run` it.
        # Goal:    Greet from both modules
        # Model:   default (mock-model via anthropic)
        # Base:    HEAD = [HEAD]
        # Context: repository map [HASH] (64 tokens), saved as plan.map.md
        # Planner: split into 3 tasks: the two modules change independently

        [swarm]
        base = "[HEAD]"
        on_failure = "continue"


        [models.default]
        provider = "anthropic"
        model = "mock-model"
        base_url = "http://127.0.0.1:[PORT]"
        api_key_env = "TEST_MODEL_KEY"

        [defaults]
        verify = "test -f README.md"

        # module a gets its greeting
        [[task]]
        id = "mod-a"
        paths = ["src/a"]
        prompt = "Write src/a/hello.txt."

        # module b gets its greeting
        [[task]]
        id = "mod-b"
        paths = ["src/b"]
        prompt = "Write src/b/hello.txt."

        # the README names both greetings
        [[task]]
        id = "docs"
        deps = ["mod-a", "mod-b"]
        paths = ["README.md"]
        prompt = "Mention the greetings in README.md."
        "#)
    });
    assert!(!plan.contains(KEY));

    let map = std::fs::read_to_string(repo.path().join("plan.map.md")).unwrap();
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&map, &repo), @"
    # Repository map

    6 files, [SIZE], tracked at this commit.

    ## Files

    docs/ (1 file, [SIZE])
      guide.txt ([SIZE])
    src/ (3 files, [SIZE])
      a/ (1 file, [SIZE])
        lib.rs ([SIZE])
      b/ (1 file, [SIZE])
        lib.rs ([SIZE])
      lib.txt ([SIZE])
    README.md ([SIZE])
    swarm.toml ([SIZE])
    ")
    });
    assert!(
        mock.calls()[0].last_user_text.contains(map.trim()),
        "the model saw the saved map"
    );
    let transcript = std::fs::read_to_string(repo.path().join("plan.transcript.jsonl")).unwrap();
    assert!(transcript.contains("planner") && !transcript.contains(KEY));

    let validate = repo.swarm(&["validate", "plan.toml"]);
    validate.assert_code(0);
    // Its first line: those after it name this machine's toolchains.
    let checked = validate.stdout.lines().next().unwrap_or_default();
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(checked, &repo), @"plan.toml: ok: 3 tasks, 2 without dependencies, longest chain 2, base [HASH] ([HASH])"));
    // An existing plan is not replaced by accident.
    let again = swarm(&repo, &["plan", "Greet from both modules"]);
    again.assert_code(2);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&again.stderr, &repo), @"
    error: failed to write the plan to plan.toml: it exists
    help: pass --force to replace it, or -o another file
    ")
    });
}

/// The planner asks for its answer's shape as the provider offers it:
/// to Anthropic, one tool (`plan`, with the answer's JSON schema) the model
/// must call. A model that answers through it, as a small model held to
/// the shape does, gives a plan.
#[test]
fn the_planner_asks_for_its_answers_shape_and_takes_it_as_a_forced_tool_call() {
    let mock = MockModel::start(options(), |call| {
        let body = &call.body;
        assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "plan"}));
        let tool = body["tools"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == "plan"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(tool["input_schema"]["type"], "object", "{tool}");
        assert!(
            tool["input_schema"]["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|k| k == "tasks")),
            "{tool}"
        );
        Reply::answer(vec![tool_call_plan()])
    });
    let repo = repo_for(&mock, "");
    let run = swarm(&repo, &["plan", "Greet from both modules"]);
    run.assert_code(0);
    mock.assert_clean();
    assert_eq!(mock.calls().len(), 1);
    let plan = std::fs::read_to_string(repo.path().join("plan.toml")).unwrap();
    // Its defaults and tasks (the header above them is the first test's).
    let tasks = &plan[plan.find("[defaults]").unwrap_or_default()..];
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(tasks, &repo), @r#"
    [defaults]
    verify = "test -f README.md"

    # module a gets its greeting
    [[task]]
    id = "mod-a"
    paths = ["src/a"]
    prompt = "Write src/a/hello.txt."

    # module b gets its greeting
    [[task]]
    id = "mod-b"
    paths = ["src/b"]
    prompt = "Write src/b/hello.txt."

    # the README names both greetings
    [[task]]
    id = "docs"
    deps = ["mod-a", "mod-b"]
    paths = ["README.md"]
    prompt = "Mention the greetings in README.md."
    "#)
    });
    repo.swarm(&["validate", "plan.toml"]).assert_code(0);
}

/// The plan as a call of the `plan` tool (its input the answer's JSON).
fn tool_call_plan() -> Part {
    tool(
        "p1",
        "plan",
        json!({"split": true, "reason": "two modules", "verify": "test -f README.md",
               "tasks": good_tasks()}),
    )
}

#[test]
fn each_kind_of_problem_goes_back_and_is_fixed_on_the_next_round() {
    let mut bad_cycle = good_tasks();
    bad_cycle[0]["deps"] = json!(["docs"]);
    let mut bad_dep = good_tasks();
    bad_dep[1]["deps"] = json!(["nope"]);
    let mut bad_overlap = good_tasks();
    bad_overlap[1]["paths"] = json!(["src"]);
    let mut bad_path = good_tasks();
    bad_path[1]["paths"] = json!(["src/c"]);
    let cases: Vec<(&str, Reply, &str)> = vec![
        ("cycle", answer(true, bad_cycle), "cycle"),
        ("unknown dependency", answer(true, bad_dep), "`nope`"),
        (
            "overlapping paths",
            answer(true, bad_overlap),
            "may both write",
        ),
        (
            "missing path",
            answer(true, bad_path),
            "`src/c` of task `mod-b` does not exist at the base",
        ),
        (
            "malformed JSON",
            Reply::text("```json\n{\"split\": true, \"tasks\": [ {\"id\": }\n```"),
            "JSON object is invalid",
        ),
        (
            "unbalanced JSON",
            Reply::text("{\"split\": true, \"reason\": \"r\", \"tasks\": ["),
            "ends early",
        ),
    ];
    let mut said: Option<String> = None;
    for (what, bad, expect) in cases {
        let mock = MockModel::start(options(), move |call| match call.turn {
            0 => bad.clone(),
            _ => answer(true, good_tasks()),
        });
        let repo = repo_for(&mock, "");
        let run = swarm(&repo, &["plan", "Greet from both modules"]);
        run.assert_code(0);
        mock.assert_clean();
        let calls = mock.calls();
        assert_eq!(calls.len(), 2, "{what}: {}", run.stderr);
        assert!(
            calls[1].last_user_text.contains(expect),
            "{what}: the repair message lacks {expect:?}:\n{}",
            calls[1].last_user_text
        );
        assert!(calls[1].last_user_text.contains("Answer again"), "{what}");
        let stderr = redact(&run.stderr, &repo);
        match &said {
            None => said = Some(stderr),
            Some(first) => assert_eq!(&stderr, first, "{what}"),
        }
        repo.swarm(&["validate", "plan.toml"]).assert_code(0);
    }
    // Each case says the same: planned in two rounds.
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(said.unwrap_or_default(), @"
    planning with model `default` (6 files, map of 64 tokens)...
    wrote plan.toml: 3 tasks, 2 rounds, 200 tokens in / 40 out ($0.0000)
      reason: the two modules change independently
      map:    [TMP]/repo/plan.map.md (64 tokens, [HASH])
    ")
    });
}

#[test]
fn a_cut_answer_and_a_429_are_retried_within_the_round() {
    let mock = MockModel::start(options(), |call| match call.attempt {
        1 => Reply::Cut {
            parts: vec![text("```json\n{\"split\": true, \"tasks\": []}\n```")],
            after_events: 1,
        },
        2 => Reply::rate_limited(1),
        _ => answer(true, good_tasks()),
    });
    let repo = repo_for(&mock, "");
    let run = swarm(&repo, &["plan", "Greet from both modules"]);
    run.assert_code(0);
    mock.assert_clean();
    assert_eq!(mock.calls().len(), 3, "{}", run.stderr);
    assert_eq!(
        mock.stats().early_retries,
        0,
        "the 429's retry-after was waited out"
    );
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&run.stderr, &repo), @"
    planning with model `default` (6 files, map of 64 tokens)...
    wrote plan.toml: 3 tasks, 1 round, 100 tokens in / 20 out ($0.0000)
      reason: the two modules change independently
      map:    [TMP]/repo/plan.map.md (64 tokens, [HASH])
    ")
    });
}

#[test]
fn a_model_that_never_gets_it_right_ends_with_exit_2_and_its_attempt_saved() {
    let mut bad = good_tasks();
    bad[0]["deps"] = json!(["docs"]);
    let mock = MockModel::start(options(), move |_| answer(true, bad.clone()));
    let repo = repo_for(&mock, "plan_repair_rounds = 1");
    let run = swarm(&repo, &["plan", "Greet from both modules"]);
    run.assert_code(2);
    mock.assert_clean();
    assert_eq!(mock.calls().len(), 2, "one answer and one repair round");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&run.stderr, &repo), @"
    planning with model `default` (6 files, map of 64 tokens)...
    error: failed to plan the goal: the model gave no acceptable plan in 2 rounds; the last one's problems:
      - dependency cycle: mod-a -> docs -> mod-a (remove one of these dependencies; a plan must be a directed acyclic graph)
    help: its last attempt is saved at [TMP]/repo/plan.rejected.toml: fix it by hand and `swarm validate` it, or try again (a clearer goal, another --model, more `plan_repair_rounds`)
    "));
    assert!(!repo.path().join("plan.toml").exists());
    let saved = std::fs::read_to_string(repo.path().join("plan.rejected.toml")).unwrap();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let shown = redact(&saved.replace(head.trim(), "[HEAD]"), &repo);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(shown, @r#"
        # REJECTED: the model's last attempt, which swarm's checks refused.
        # Fix what they found, then `swarm validate` it before a run:
        #   dependency cycle: mod-a -> docs -> mod-a (remove one of these dependencies; a plan must be a directed acyclic graph)
        # Plan written by `swarm plan`: review and edit it, then `swarm run` it.
        # Goal:    Greet from both modules
        # Model:   default (mock-model via anthropic)
        # Base:    HEAD = [HEAD]
        # Context: repository map [HASH] (64 tokens), saved as plan.map.md
        # Planner: split into 3 tasks: the two modules change independently

        [swarm]
        base = "[HEAD]"
        on_failure = "continue"
        plan_repair_rounds = 1

        [models.default]
        provider = "anthropic"
        model = "mock-model"
        base_url = "http://127.0.0.1:[PORT]"
        api_key_env = "TEST_MODEL_KEY"

        [defaults]
        verify = "test -f README.md"

        # module a gets its greeting
        [[task]]
        id = "mod-a"
        deps = ["docs"]
        paths = ["src/a"]
        prompt = "Write src/a/hello.txt."

        # module b gets its greeting
        [[task]]
        id = "mod-b"
        paths = ["src/b"]
        prompt = "Write src/b/hello.txt."

        # the README names both greetings
        [[task]]
        id = "docs"
        deps = ["mod-a", "mod-b"]
        paths = ["README.md"]
        prompt = "Mention the greetings in README.md."
        "#)
    });
    // The user fixes it by hand: validate names the same problem.
    let validate = repo.swarm(&["validate", "plan.rejected.toml"]);
    validate.assert_code(2);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&validate.stderr, &repo), @r#"
        error: invalid plan
          × dependency cycle: mod-a -> docs -> mod-a
            ╭─[[TMP]/repo/plan.rejected.toml:27:6]
         26 │ [[task]]
         27 │ id = "mod-a"
            ·      ───┬───
            ·         ╰── this task depends on itself through the cycle
         28 │ deps = ["docs"]
            ╰────
          help: remove one of these dependencies; a plan must be a directed acyclic graph
        "#)
    });
}

#[test]
fn small_goals_stay_one_task() {
    let mock = MockModel::start(options(), |_| {
        answer(
            false,
            json!([{"id": "rename", "why": "one small edit", "paths": ["README.md"],
                    "prompt": "Rename the title in README.md."}]),
        )
    });
    let repo = repo_for(&mock, "");
    let run = swarm(
        &repo,
        &["plan", "Rename the README title", "-o", "small.toml"],
    );
    run.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&run.stderr, &repo), @"
    planning with model `default` (6 files, map of 64 tokens)...
    wrote small.toml: 1 task (not split), 1 round, 100 tokens in / 20 out ($0.0000)
      reason: a one-line change
      map:    [TMP]/repo/small.map.md (64 tokens, [HASH])
    ")
    });
    let plan = std::fs::read_to_string(repo.path().join("small.toml")).unwrap();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let shown = redact(&plan.replace(head.trim(), "[HEAD]"), &repo);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(shown, @r#"
        # Plan written by `swarm plan`: review and edit it, then `swarm run` it.
        # Goal:    Rename the README title
        # Model:   default (mock-model via anthropic)
        # Base:    HEAD = [HEAD]
        # Context: repository map [HASH] (64 tokens), saved as small.map.md
        # Planner: one task is best here: a one-line change

        [swarm]
        base = "[HEAD]"
        on_failure = "continue"


        [models.default]
        provider = "anthropic"
        model = "mock-model"
        base_url = "http://127.0.0.1:[PORT]"
        api_key_env = "TEST_MODEL_KEY"

        [defaults]
        verify = "test -f README.md"

        # one small edit
        [[task]]
        id = "rename"
        paths = ["README.md"]
        prompt = "Rename the title in README.md."
        "#)
    });
    assert_eq!(plan.matches("[[task]]").count(), 1, "{plan}");
    assert!(repo.path().join("small.map.md").exists());
}

#[test]
fn the_prompt_shows_the_goal_the_limits_and_the_map() {
    let mock = MockModel::start(options(), |_| answer(true, good_tasks()));
    let repo = repo_for(&mock, "");
    swarm(
        &repo,
        &["plan", "Rename `greet_user` to greet", "--max-tasks", "5"],
    )
    .assert_code(0);
    let call = &mock.calls()[0];
    insta::assert_snapshot!(
        "planner_prompt",
        redact(
            &format!("SYSTEM:\n{}\n\nUSER:\n{}", call.system, call.last_user_text),
            &repo
        )
    );
}

/// The agents of the planned tasks: each writes its file and finishes.
fn agent(call: &Call) -> Reply {
    let file = match call.conversation.as_str() {
        "Write src/a/hello.txt." => "src/a/hello.txt",
        "Write src/b/hello.txt." => "src/b/hello.txt",
        "Mention the greetings in README.md." => "README.md",
        other => panic!("unexpected conversation {other:?}"),
    };
    match call.turn {
        0 => Reply::answer(vec![tool(
            "w1",
            "write_file",
            json!({"path": file, "content": format!("hello from {file}\n")}),
        )]),
        _ => Reply::answer(vec![Part::ToolCall {
            id: "f1".into(),
            name: "finish".into(),
            args: json!({"summary": format!("wrote {file}")}).to_string(),
            chunks: 1,
        }]),
    }
}

#[test]
fn run_goal_plans_prints_runs_and_merges_and_the_saved_plan_runs_the_same() {
    let mock = MockModel::start(options(), |call| {
        if is_planner(call) {
            answer(true, good_tasks())
        } else {
            agent(call)
        }
    });
    let repo = repo_for(&mock, "");

    // --dry-run plans and stops.
    let dry = swarm(
        &repo,
        &["run", "--goal", "Greet from both modules", "--dry-run"],
    );
    dry.assert_code(0);
    assert!(
        dry.stdout.starts_with("# Plan written by `swarm plan`"),
        "{}",
        dry.stdout
    );
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&dry.stderr, &repo), @"
    planning with model `default` (6 files, map of 64 tokens)...
    wrote .swarm/plans/greet-from-both-modules/plan.toml: 3 tasks, 1 round, 100 tokens in / 20 out ($0.0000)
      reason: the two modules change independently
      map:    [TMP]/repo/.swarm/plans/greet-from-both-modules/plan.map.md (64 tokens, [HASH])
    dry run: nothing ran. Edit the plan if you like, then: swarm run .swarm/plans/greet-from-both-modules/plan.toml
    "));
    assert!(
        !repo
            .path()
            .join(".swarm/runs/greet-from-both-modules")
            .exists()
    );
    assert!(
        repo.path()
            .join(".swarm/plans/greet-from-both-modules/plan.toml")
            .exists()
    );

    let run = swarm(&repo, &["run", "--goal", "Greet from both modules"]);
    run.assert_code(0);
    mock.assert_clean();
    // The dry run's plan directory took the first name.
    let name = "greet-from-both-modules-2";
    assert!(
        run.stdout.starts_with("# Plan written by `swarm plan`"),
        "{}",
        run.stdout
    );
    let branch = format!("swarm/{name}");
    assert_eq!(
        repo.show(&branch, "src/a/hello.txt"),
        "hello from src/a/hello.txt"
    );
    assert_eq!(
        repo.show(&branch, "src/b/hello.txt"),
        "hello from src/b/hello.txt"
    );
    assert_eq!(repo.show(&branch, "README.md"), "hello from README.md");
    let planned =
        std::fs::read_to_string(repo.path().join(format!(".swarm/plans/{name}/plan.toml")))
            .unwrap();
    let ran =
        std::fs::read_to_string(repo.path().join(format!(".swarm/runs/{name}/plan.toml"))).unwrap();
    assert_eq!(planned, ran);
    assert!(
        repo.path()
            .join(format!(".swarm/plans/{name}/plan.map.md"))
            .exists()
    );

    let logs = swarm(&repo, &["logs", name, "plan"]);
    logs.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&logs.stdout, &repo), @r#"
    planner with model mock-model

    > Goal:
    > Greet from both modules
    > 
    > Limits: at most 12 tasks; at most 6 tasks on any chain of dependencies.
    > 
    > The repository at the base commit:
    > 
    > # Repository map
    > 
    > 6 files, [SIZE], tracked at this commit.
    > 
    > ## Files
    > 
    > docs/ (1 file, [SIZE])
    >   guide.txt ([SIZE])
    > src/ (3 files, [SIZE])
    >   a/ (1 file, [SIZE])
    >     lib.rs ([SIZE])
    >   b/ (1 file, [SIZE])
    >     lib.rs ([SIZE])
    >   lib.txt ([SIZE])
    > README.md ([SIZE])
    > swarm.toml ([SIZE])
    > 

    [turn 1] 100 tokens in, 20 out
    Here is the plan.
    ```json
    {
      "reason": "the two modules change independently",
      "split": true,
      "tasks": [
        {
          "id": "mod-a",
          "paths": [
            "src/a"
          ],
          "prompt": "Write src/a/hello.txt.",
          "why": "module a gets its greeting"
        },
        {
          "id": "mod-b",
          "paths": [
            "src/b"
          ],
          "prompt": "Write src/b/hello.txt.",
          "why": "module b gets its greeting"
        },
        {
          "deps": [
            "mod-a",
            "mod-b"
          ],
          "id": "docs",
          "paths": [
            "README.md"
          ],
          "prompt": "Mention the greetings in README.md.",
          "why": "the README names both greetings"
        }
      ],
      "verify": "test -f README.md"
    }
    ```
    "#)
    });

    // The unedited file runs the same tasks to the same tree.
    let path = format!(".swarm/plans/{name}/plan.toml");
    let again = swarm(&repo, &["run", &path, "--name", "by-hand"]);
    again.assert_code(0);
    assert_eq!(
        repo.git(&["rev-parse", &format!("{branch}^{{tree}}")]),
        repo.git(&["rev-parse", "swarm/by-hand^{tree}"])
    );
}

/// The planner's calls are recorded like an agent's: `swarm plan` replays
/// them with no model and no key, to the same plan.
#[test]
fn a_recorded_plan_is_planned_again_from_its_cassette() {
    let mock = MockModel::start(options(), |_| answer(true, good_tasks()));
    let repo = repo_for(&mock, "");
    let tapes = repo.outside().join("tapes");
    let tapes = tapes.to_str().unwrap();
    swarm(
        &repo,
        &["plan", "Greet from both modules", "--record", tapes],
    )
    .assert_code(0);
    drop(mock);
    let cassette = std::fs::read_to_string(Path::new(tapes).join("planner.jsonl")).unwrap();
    assert!(cassette.contains("\"name\":\"the planner\""), "{cassette}");
    assert!(!cassette.contains(KEY));

    let replayed = repo.swarm(&[
        "plan",
        "Greet from both modules",
        "-o",
        "again.toml",
        "--replay",
        tapes,
    ]);
    replayed.assert_code(0);
    let tasks = |file: &str| {
        let text = std::fs::read_to_string(repo.path().join(file)).unwrap();
        text[text.find("[[task]]").unwrap()..].to_string()
    };
    assert_eq!(tasks("again.toml"), tasks("plan.toml"));
    // Another goal was never recorded.
    let missed = repo.swarm(&[
        "plan",
        "Greet from module a only",
        "-o",
        "missed.toml",
        "--replay",
        tapes,
    ]);
    assert_ne!(missed.code, 0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&missed.stderr, &repo), @r#"
    planning with model `default` (6 files, map of 64 tokens)...
    error: failed to call model `default`: replay: no recorded answer for the planner, turn 1 (/v1/messages): cassette [TMP]/outside/tapes/planner.jsonl has no request like it; the nearest recorded one (turn 1) differs:
      - "text": "Goal:\nGreet from both modules\n\nLimits: at most 12 tasks; at most 6 tasks on any chain of dependencies.\n\nThe repository at the base commit:\n\n# Re…
      + "text": "Goal:\nGreet from module a only\n\nLimits: at most 12 tasks; at most 6 tasks on any chain of dependencies.\n\nThe repository at the base commit:\n\n# R…
    help: record the run again with --record, or add --replay-fallthrough to ask the provider what was not recorded
    help: the planner's conversation so far is in [TMP]/repo/missed.transcript.jsonl
    "#));
}
