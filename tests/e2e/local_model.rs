//! A real model nobody here wrote, served locally: llama.cpp's
//! `llama-server` with SmolLM2-135M-Instruct (support/local_model.rs).
//! The assertions are on outcomes and accounting, never on what the model
//! writes: a model this small plans poorly and codes worse, but held to a
//! shape (a JSON schema, a required tool call) it answers in that shape.

use crate::support::local_model::LocalModel;
use crate::support::{TestRepo, redact, snapshot_settings};

/// A repository whose `swarm.toml` points at `model` (a loopback endpoint
/// without a key: trusted by the user, as `swarm trust` does).
fn repo_for(model: &LocalModel, extra: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write("README.md", "# demo\n");
    repo.write("src/greet.txt", "hello\n");
    repo.write(
        "swarm.toml",
        &format!(
            "[models.default]\nprovider = \"openai\"\nmodel = \"smollm2\"\nbase_url = \"{}\"\n\
             api_key_env = \"\"\nmax_tokens = 2048\ntimeout = \"300s\"\n{extra}",
            model.base_url()
        ),
    );
    repo.commit_all("a small repository and a local model");
    repo.swarm(&["trust"]).assert_code(0);
    repo
}

/// A plan of one agent task, `hi`, on model `small` (the local model with
/// at most `max_tokens` an answer, `model_extra` more lines of its table),
/// with `task_extra` more lines of the task.
fn small_plan(model: &LocalModel, max_tokens: u32, model_extra: &str, task_extra: &str) -> String {
    format!(
        "[models.small]\nprovider = \"openai\"\nmodel = \"smollm2\"\nbase_url = \"{}\"\n\
         api_key_env = \"\"\nmax_tokens = {max_tokens}\ntimeout = \"300s\"\n{model_extra}\n\
         [[task]]\nid = \"hi\"\nmodel = \"small\"\nprompt = \"Add a line saying hi to README.md\"\n\
         {task_extra}",
        model.base_url()
    )
}

/// `swarm plan` of a one-line goal with at most `max_tasks` tasks, on the
/// local model in a new repository: the model, the repository, the run.
fn plan_hi(max_tasks: u32) -> (LocalModel, TestRepo, crate::support::Run) {
    let model = LocalModel::start();
    let repo = repo_for(&model, "");
    let max = max_tasks.to_string();
    let run = repo.swarm(&[
        "plan",
        "Add a line saying hi to README.md",
        "--max-tasks",
        &max,
    ]);
    (model, repo, run)
}

/// Held to the planner's JSON schema (`response_format`, which llama.cpp
/// makes a grammar), a 135M-parameter model gives a plan that validates:
/// the schema says the rules a shape can say (ids in the id alphabet, one
/// of `prompt` and `run`, `paths` from the base's list, no `deps` in a
/// plan of one task), and without them this model named paths that do not
/// exist and tasks that are not there, round after round. It may be a poor
/// plan; it is a valid one, on the first round.
#[test]
fn swarm_plan_with_a_small_local_model_gives_a_plan_that_validates() {
    let (model, repo, run) = plan_hi(1);
    let context = with_server_log(&model, &run.stderr);
    assert_eq!(run.code, 0, "{context}");
    assert!(run.stderr.contains("1 round"), "{context}");
    let plan = repo.path().join("plan.toml");
    repo.swarm(&["validate", plan.to_str().unwrap()])
        .assert_code(0);
}

/// With room for several tasks the same model answers every round in
/// shape and never runs into the token limit (the schema bounds its
/// strings and lists): before, it gave "no JSON object" round after round,
/// and without the bounds it ran a string to the limit. It repeats a task,
/// ids and all; a repair round holds it to the ids it gave, told apart, and
/// each task's deps to the others, so the last round's problems are never
/// a repeated id or a dependency on no task. What is left (three tasks
/// writing one file unordered) goes back in words; whether it gets that
/// right in four rounds is the model's business, so either end is
/// accepted, but never an answer out of shape.
#[test]
fn swarm_plan_with_a_small_local_model_answers_in_shape() {
    let (model, repo, run) = plan_hi(3);
    let context = with_server_log(&model, &run.stderr);
    match run.code {
        0 => {
            let plan = repo.path().join("plan.toml");
            repo.swarm(&["validate", plan.to_str().unwrap()])
                .assert_code(0);
        }
        2 => {
            assert!(run.stderr.contains("gave no acceptable plan"), "{context}");
            assert!(!run.stderr.contains("no JSON object"), "{context}");
            assert!(!run.stderr.contains("cut off"), "{context}");
            // Nothing a shape says is broken: no id out of the alphabet,
            // no path that is not at the base, no task without a prompt
            // or a command; and after a repair round held to its ids, no
            // repeated id and no dependency on no task.
            for said in [
                "invalid task id",
                "does not exist at the base",
                "neither `prompt`",
                "both `prompt`",
                "duplicate task id",
                "depends on unknown task",
            ] {
                assert!(!run.stderr.contains(said), "{said}: {context}");
            }
            // The last answer was kept for the person: as a plan, or as
            // the answer itself when it was wrong before it could be one.
            let kept = ["plan.rejected.toml", "plan.rejected.txt"];
            assert!(
                kept.iter().any(|k| repo.path().join(k).is_file()),
                "{context}"
            );
        }
        other => panic!("exit {other}: {context}"),
    }
}

/// swarm's own agent on the real model: it keeps to `max_turns`, and what
/// the report says the model wrote is what the server counted
/// (`tokens_predicted_total`); what it read is at least what the server
/// processed (the rest came from the server's prompt cache). The model's
/// work is its own business: any ending the agent knows is accepted.
#[test]
fn swarms_agent_on_a_local_model_keeps_to_max_turns_and_counts_what_the_server_counted() {
    let model = LocalModel::start();
    let repo = repo_for(&model, "");
    repo.write("plan.toml", &small_plan(&model, 128, "", "max_turns = 2\n"));
    let run = repo.swarm(&["run", "plan.toml", "--name", "local"]);
    let context = with_server_log(&model, &run.stderr);
    assert!([0, 1].contains(&run.code), "exit {}: {context}", run.code);
    let agent = counted_as_the_server_counted(&repo, &model, &context);
    let turns = agent["turns"].as_u64().unwrap_or(0);
    assert!(
        (1..=2).contains(&turns),
        "{turns} turns: {agent}\n{context}"
    );
    let outcome = agent["outcome"].as_str().unwrap_or_default();
    // The model's own choices end it: done, or out of turns. Never the
    // model unreachable or unusable, never the agent broken.
    assert!(
        ["finished", "max_turns"].contains(&outcome),
        "{agent}\n{context}"
    );
}

/// `tool_choice = "schema"`: the server holds each answer to the schema
/// of a call of one of the agent's tools (which it does enforce, where it
/// answers `required` in prose), and swarm reads the answer back as a
/// call. The small model then really calls swarm's agent's tools: the
/// transcript has tool calls and their results, and every model turn but
/// a cut one is a call.
#[test]
fn swarms_agent_calls_its_tools_on_a_local_model_held_to_a_call_schema() {
    let model = LocalModel::start();
    let repo = repo_for(&model, "");
    repo.write(
        "plan.toml",
        &small_plan(&model, 256, "tool_choice = \"schema\"\n", "max_turns = 3\n"),
    );
    let run = repo.swarm(&["run", "plan.toml", "--name", "tools"]);
    let context = with_server_log(&model, &run.stderr);
    assert!([0, 1].contains(&run.code), "exit {}: {context}", run.code);
    let report = repo.report();
    let agent = &crate::support::task(&report, "hi")["agent"];
    let transcript = std::fs::read_to_string(agent["transcript"].as_str().unwrap()).unwrap();
    let calls = transcript.matches("\"type\":\"tool_call\"").count();
    assert!(calls >= 1, "no tool call in:\n{transcript}\n{context}");
    assert!(
        transcript.contains("\"type\":\"tool_result\""),
        "no tool ran:\n{transcript}"
    );
}

/// A task budget against the real server: the agent stops at it
/// (`budget`), and what it spent, by the server's own counts, stays
/// within it.
#[test]
fn swarms_agent_on_a_local_model_stops_at_its_budget() {
    let model = LocalModel::start();
    let repo = repo_for(&model, "");
    repo.write(
        "plan.toml",
        &small_plan(
            &model,
            128,
            "",
            "budget = { tokens = 4000 }\nmax_turns = 20\n",
        ),
    );
    let run = repo.swarm(&["run", "plan.toml", "--name", "budget"]);
    let context = with_server_log(&model, &run.stderr);
    assert_eq!(run.code, 1, "{context}");
    let report = repo.report();
    let agent = &crate::support::task(&report, "hi")["agent"];
    assert_eq!(agent["outcome"], "budget", "{agent}\n{context}");
    let usage = &agent["usage"];
    let spent = usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap();
    assert!(spent <= 4000, "spent {spent} of 4000: {agent}");
    assert_eq!(
        usage["output_tokens"].as_u64().unwrap() as f64,
        model.metric("tokens_predicted_total"),
        "{agent}"
    );
}

/// `swarm doctor --model` asks the real server the three questions and
/// says what it found: SmolLM2 answers, holds an answer to a JSON schema
/// (llama.cpp makes the schema a grammar), and answers a tool in text
/// (its chat template has no tools), with what to do about it. A model
/// that is not there is named with the ones that are; a server that is
/// down is "no", exit 1.
#[test]
fn doctor_asks_a_local_model_what_it_does_for_swarm() {
    let model = LocalModel::start();
    let repo = repo_for(&model, "");
    let run = repo.swarm(&["doctor", "--model", "default"]);
    let context = with_server_log(&model, &format!("{}{}", run.stdout, run.stderr));
    assert_eq!(run.code, 0, "{context}");
    // What the model said, how long it took and how much it wrote are
    // the model's: placeholders.
    let mut settings = snapshot_settings();
    // (An answer is quoted on one line, and may hold quotes itself.)
    settings.add_filter(
        r#"(?m)^(answers +yes, in )(\d+\.\d+|\[T\])s: \d+ tokens read, \d+ written \(".*"\)$"#,
        r#"${1}[T]s: [N] tokens read, [N] written ("[ANSWER]")"#,
    );
    settings.add_filter(
        r#"answered in text \(".*"\); swarm's agent"#,
        r#"answered in text ("[ANSWER]"); swarm's agent"#,
    );
    settings.bind(|| insta::assert_snapshot!(redact(&run.stdout, &repo), @r#"
    model             `default` of swarm.toml: openai `smollm2` at http://127.0.0.1:[PORT]/v1
    answers           yes, in [T]s: [N] tokens read, [N] written ("[ANSWER]")
    JSON schema       yes: the answer held to its schema (`swarm plan`, `output_schema`)
    tool calls        no: given a tool, it answered in text ("[ANSWER]"); swarm's agent works through tool calls: try `tool_choice = "required"` in [models.default], or `tool_choice = "schema"` for a server that holds answers to a JSON schema (llama.cpp's llama-server)
    "#));
    // Three calls, each counted by the server.
    assert!(model.metric("tokens_predicted_total") > 0.0);

    let missing = repo.swarm(&["doctor", "--model", "nosuch"]);
    missing.assert_code(2);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&missing.stderr, &repo), @"
        error: failed to check a model: model `nosuch` is not among the models of swarm.toml (default)
        help: add a [models.nosuch] table there, or pass --model with one of its names
        ")
    });
    drop(model);
    let down = repo.swarm(&["doctor", "--model", "default"]);
    down.assert_code(1);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&down.stdout, &repo), @"
    model             `default` of swarm.toml: openai `smollm2` at http://127.0.0.1:[PORT]/v1
    answers           no: failed to call model `default`: reach http://127.0.0.1:[PORT]/v1: error sending request for url (http://127.0.0.1:[PORT]/v1/chat/completions): client error (Connect): tcp connect error: Connection refused (os error 111) (gave up after 4 retries)
    "));
}

/// A run of several turns against the real server, recorded, then
/// replayed with the server gone: every request the replay makes was
/// recorded, and it ends as the recorded run did, with the same turns and
/// usage, on the same tree. (SmolLM2 writes to `max_tokens` every turn and
/// never finishes, so the run ends at `max_turns`: no verify round is
/// reached with this model's own template; the pinned server's test,
/// `swarms_agent_repairs_on_a_local_model_and_the_run_replays_the_same`,
/// covers those.)
#[test]
fn a_run_of_several_turns_on_a_local_model_replays_without_it() {
    let model = LocalModel::start();
    let (repo, tapes, context) = recorded_run(
        &model,
        256,
        "verify = \"false\"\nrepair_rounds = 1\nmax_turns = 3\n",
    );
    let report = repo.report();
    let agent = crate::support::task(&report, "hi")["agent"].clone();
    assert!(
        agent["turns"].as_u64().unwrap_or(0) >= 2,
        "{agent}\n{context}"
    );
    drop(model);
    for round in 0..2 {
        replays_the_same(&repo, &tapes, &format!("again{round}"), &agent);
    }
}

/// swarm's own agent through verify and a repair round on the real
/// server, recorded, then replayed with the server gone to the same
/// outcome, turns, repair rounds, usage and tree. The server shows the
/// model a pinned conversation (`LocalModel::start_pinned`): with its own
/// template SmolLM2 writes to `max_tokens` and never ends a turn, so no
/// verify would be reached; pinned, it answers in a few words and ends
/// each turn, and the rounds are the agent's, not the model's luck.
#[test]
fn swarms_agent_repairs_on_a_local_model_and_the_run_replays_the_same() {
    let model = LocalModel::start_pinned();
    let (repo, tapes, context) = recorded_run(
        &model,
        128,
        "verify = \"false\"\nrepair_rounds = 2\nmax_turns = 6\n",
    );
    let agent = counted_as_the_server_counted(&repo, &model, &context);
    assert_eq!(agent["outcome"], "verify_failed", "{agent}\n{context}");
    assert_eq!(agent["repair_rounds"], 2, "{agent}\n{context}");
    // A turn per round: each answer ends its turn.
    assert_eq!(agent["turns"], 3, "{agent}\n{context}");
    let rounds = agent["verify_rounds"].as_array().map(Vec::len);
    assert_eq!(rounds, Some(3), "{agent}");

    drop(model);
    replays_the_same(&repo, &tapes, "again", &agent);
}

/// A plan of one task, `hi`, run by agent CLI `agent` (its table
/// `agent_table`) on the local model, with `task_extra` more lines.
fn cli_plan(model: &LocalModel, agent_table: &str, agent: &str, task_extra: &str) -> String {
    format!(
        "[models.default]\nprovider = \"openai\"\nmodel = \"smollm2\"\nbase_url = \"{}\"\n\
         api_key_env = \"\"\nmax_tokens = 256\ntimeout = \"300s\"\n\n{agent_table}\n\
         [[task]]\nid = \"hi\"\nagent = \"{agent}\"\nprompt = \"Add a line saying hi to README.md\"\n\
         {task_extra}",
        model.base_url()
    )
}

/// What the report says task `hi`'s agent read and wrote, checked against
/// the server's own counts: what it wrote is what the server counted
/// (`tokens_predicted_total`), what it read at least what the server
/// processed (the rest came from its prompt cache). Returns the agent's
/// record.
fn counted_as_the_server_counted(
    repo: &TestRepo,
    model: &LocalModel,
    context: &str,
) -> serde_json::Value {
    let report = repo.report();
    let agent = crate::support::task(&report, "hi")["agent"].clone();
    let usage = &agent["usage"];
    let written = usage["output_tokens"].as_u64().unwrap_or(0);
    assert!(written > 0, "{agent}\n{context}");
    assert_eq!(
        written as f64,
        model.metric("tokens_predicted_total"),
        "output tokens: the report against the server's count\n{context}"
    );
    let read = usage["input_tokens"].as_u64().unwrap_or(0);
    assert!(
        read as f64 >= model.metric("prompt_tokens_total"),
        "input tokens {read} below what the server processed: {agent}"
    );
    agent
}

/// Run `rec` of swarm's agent's task `hi` (`small_plan` with at most
/// `max_tokens` an answer and `task_extra`), recorded, in a new
/// repository; it fails (its verify is `false`). The repository, the
/// cassettes' directory, and the run's context for a failure's message.
fn recorded_run(
    model: &LocalModel,
    max_tokens: u32,
    task_extra: &str,
) -> (TestRepo, String, String) {
    let repo = repo_for(model, "");
    let tapes = repo.outside().join("tapes").display().to_string();
    repo.write("plan.toml", &small_plan(model, max_tokens, "", task_extra));
    let recorded = repo.swarm(&["run", "plan.toml", "--name", "rec", "--record", &tapes]);
    let context = with_server_log(model, &recorded.stderr);
    assert_eq!(recorded.code, 1, "{context}");
    (repo, tapes, context)
}

/// Run `rec`, recorded in `tapes`, replayed as run `name` (its model
/// gone): every request it makes was recorded, and task `hi` ends as
/// `recorded` (its agent's record) did, with the same turns, repair
/// rounds and usage, on the same tree.
fn replays_the_same(repo: &TestRepo, tapes: &str, name: &str, recorded: &serde_json::Value) {
    let again = repo.swarm(&["run", "plan.toml", "--name", name, "--replay", tapes]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        !again.stderr.contains("no recorded answer"),
        "{}",
        again.stderr
    );
    let report = repo.report();
    let replayed = &crate::support::task(&report, "hi")["agent"];
    for key in ["outcome", "turns", "repair_rounds", "usage"] {
        assert_eq!(replayed[key], recorded[key], "{key}: {replayed}");
    }
    let tree = |run: &str| repo.git(&["rev-parse", &format!("refs/swarm/{run}/hi^{{tree}}")]);
    assert_eq!(tree(name), tree("rec"));
}

/// The JSON lines of a task's standard output (what the CLI printed).
fn printed(repo: &TestRepo, run: &str) -> Vec<serde_json::Value> {
    let out = repo.path().join(format!(".swarm/runs/{run}/logs/hi/1.out"));
    std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Claude Code from npm speaks Anthropic's Messages to the door, which
/// translates each turn to Chat Completions for llama-server and the
/// answer back: the task runs to its end, a failed verify sends it a
/// repair round in its session, the usage Claude Code itself reports is
/// the door's (the server's counts, not zeros), and the run, recorded,
/// replays with the server gone to the same turns, usage and tree. The
/// server shows the model a pinned conversation, so each round is one
/// short answer that ends the round, on any day in any directory.
#[test]
fn claude_code_through_the_messages_door_on_a_local_model_repairs_counts_and_replays() {
    let claude = crate::support::agent_cli("claude");
    // Its rounds must end as rounds whatever the day (see `start_pinned`).
    let model = LocalModel::start_pinned();
    let repo = repo_for(&model, "");
    let table = format!(
        "[agents.claude]\nkind = \"claude-code\"\nprogram = \"{}\"\n",
        claude.display()
    );
    repo.write(
        "plan.toml",
        &cli_plan(
            &model,
            &table,
            "claude",
            // Claude Code's own output limit, as a user of a small local
            // model sets it: its answers stay within the model's context.
            "verify = \"false\"\nrepair_rounds = 1\n\
             env = { CLAUDE_CODE_MAX_OUTPUT_TOKENS = \"128\" }\n",
        ),
    );
    let tapes = repo.outside().join("tapes");
    let tapes_arg = tapes.to_str().unwrap();
    let recorded = repo.swarm(&["run", "plan.toml", "--name", "rec", "--record", tapes_arg]);
    let context = with_server_log(&model, &recorded.stderr);
    // The verify always fails: the task fails after its repair round.
    assert_eq!(recorded.code, 1, "{}\n{context}", recorded.stdout);
    let agent = counted_as_the_server_counted(&repo, &model, &context);
    assert_eq!(agent["outcome"], "verify_failed", "{agent}\n{context}");
    assert_eq!(agent["repair_rounds"], 1, "{agent}\n{context}");
    // Claude Code's own count of its session (its `result` lines, one per
    // round) is the door's.
    let results: Vec<_> = printed(&repo, "rec")
        .into_iter()
        .filter(|e| e["type"] == "result")
        .collect();
    assert_eq!(results.len(), 2, "a result per round: {results:?}");
    let cli_written: u64 = results
        .iter()
        .map(|r| r["usage"]["output_tokens"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        cli_written,
        agent["usage"]["output_tokens"].as_u64().unwrap(),
        "{results:?}"
    );

    drop(model);
    replays_the_same(&repo, tapes_arg, "again", &agent);
}

/// Codex from npm speaks the Responses API to the door, which translates
/// it to Chat Completions for llama-server: the task runs to its end, and
/// the usage Codex itself reports (`turn.completed`) is the door's, which
/// is the server's. The server shows the model a pinned conversation
/// (`start_pinned`): Codex's own first request is about 4,600 tokens.
#[test]
fn codex_through_the_responses_door_on_a_local_model_counts_what_the_server_counted() {
    let bin = crate::support::agent_cli("codex")
        .parent()
        .unwrap()
        .to_path_buf();
    let model = LocalModel::start_pinned();
    let repo = repo_for(&model, "");
    repo.write("plan.toml", &cli_plan(&model, "", "codex", ""));
    let mut cmd = repo.swarm_cmd(&["run", "plan.toml", "--name", "local"]);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    let run: crate::support::Run = cmd.output().unwrap().into();
    let context = with_server_log(&model, &run.stderr);
    // What the model answers is its business; the CLI ends either way.
    assert!(
        [0, 1].contains(&run.code),
        "exit {}: {}\n{context}",
        run.code,
        run.stdout
    );
    let agent = counted_as_the_server_counted(&repo, &model, &context);
    let cli_written: u64 = printed(&repo, "local")
        .iter()
        .filter(|e| e["type"] == "turn.completed")
        .map(|e| e["usage"]["output_tokens"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        cli_written,
        agent["usage"]["output_tokens"].as_u64().unwrap(),
        "{agent}"
    );
}

/// opencode from npm speaks Chat Completions to the door (its bundled
/// OpenAI-compatible provider, `protocol = "openai"`), which passes them
/// to llama-server: the task runs to its end, the usage opencode reports
/// for its steps comes from the server through the door, and the report
/// counts what the server counted (its session title's call included).
/// The server shows the model a pinned conversation (`start_pinned`), as
/// for Codex.
#[test]
fn opencode_through_the_chat_door_on_a_local_model_counts_what_the_server_counted() {
    let opencode = crate::support::agent_cli("opencode")
        .canonicalize()
        .unwrap();
    let model = LocalModel::start_pinned();
    let repo = repo_for(&model, "");
    // Its output limit, as a user of a small local model sets it.
    let config = r#"{"provider": {"local": {"npm": "@ai-sdk/openai-compatible", "name": "local", "options": {"baseURL": "{env:OPENAI_BASE_URL}", "apiKey": "{env:OPENAI_API_KEY}"}, "models": {"smollm2": {"limit": {"context": 8192, "output": 128}}}}}, "autoupdate": false, "share": "disabled"}"#;
    let table = format!(
        "[agents.opencode]\nkind = \"command\"\n\
         command = [\"{}\", \"run\", \"-m\", \"local/smollm2\", \"--format\", \"json\", \"{{prompt}}\"]\n\
         protocol = \"openai\"\n",
        opencode.display()
    );
    repo.write(
        "plan.toml",
        &cli_plan(
            &model,
            &table,
            "opencode",
            &format!("env = {{ OPENCODE_CONFIG_CONTENT = '{config}' }}\n"),
        ),
    );
    let run = repo.swarm(&["run", "plan.toml", "--name", "local"]);
    let context = with_server_log(&model, &run.stderr);
    assert!(
        [0, 1].contains(&run.code),
        "exit {}: {}\n{context}",
        run.code,
        run.stdout
    );
    let agent = counted_as_the_server_counted(&repo, &model, &context);
    let steps: Vec<_> = printed(&repo, "local")
        .into_iter()
        .filter(|e| e["type"] == "step_finish")
        .collect();
    assert!(!steps.is_empty(), "{context}");
    let tokens = |key: &str| -> u64 {
        steps
            .iter()
            .map(|s| s["part"]["tokens"][key].as_u64().unwrap_or(0))
            .sum()
    };
    assert!(tokens("total") > 0, "{steps:?}");
    assert!(
        tokens("output") <= agent["usage"]["output_tokens"].as_u64().unwrap(),
        "{steps:?}\n{agent}"
    );
}

/// llama-cpp-python's own server (a popular local server) takes the turn
/// after a tool call: swarm sends the assistant's call with
/// `"content": ""`, where `null` had this server answer HTTP 500 on every
/// turn after a call. The first turn, a call of `bash`, is answered from a
/// hand-written cassette (this model calls no tool on its own here);
/// `--replay-fallthrough` sends the second, which holds the call and its
/// result, to the server, which answers it.
#[test]
fn llama_cpp_pythons_server_takes_the_turn_after_a_tool_call() {
    let model = LocalModel::start_llama_cpp_python();
    let repo = repo_for(&model, "");
    let tapes = repo.outside().join("tapes");
    let call = serde_json::json!({
        "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{
            "index": 0, "id": "call_1", "type": "function",
            "function": {"name": "bash", "arguments": "{\"command\": \"echo hi >> README.md\"}"}
        }]}, "finish_reason": null}]
    });
    let end = serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 300, "completion_tokens": 20}});
    let exchange = serde_json::json!({
        "kind": "exchange",
        "request": {"path": "/v1/chat/completions", "contains": ["Add a line saying hi"]},
        "response": {"content_type": "text/event-stream", "events": [
            {"data": call}, {"data": end}, {"data": "[DONE]"}
        ]}
    });
    let cassette = tapes.join("tasks/hi/1.jsonl");
    std::fs::create_dir_all(cassette.parent().unwrap()).unwrap();
    std::fs::write(
        &cassette,
        format!(
            "{}\n{exchange}\n",
            serde_json::json!({"kind": "cassette", "version": 1, "name": "a call of bash, then the server"})
        ),
    )
    .unwrap();
    repo.write("plan.toml", &small_plan(&model, 32, "", "max_turns = 2\n"));
    let tapes_arg = tapes.to_str().unwrap();
    let run = repo.swarm(&[
        "run",
        "plan.toml",
        "--name",
        "py",
        "--replay",
        tapes_arg,
        "--replay-fallthrough",
    ]);
    let context = with_server_log(&model, &run.stderr);
    assert!([0, 1].contains(&run.code), "exit {}: {context}", run.code);
    let report = repo.report();
    let agent = &crate::support::task(&report, "hi")["agent"];
    // The second turn was the server's answer, not an error.
    assert_eq!(agent["turns"], 2, "{agent}\n{context}");
    let outcome = agent["outcome"].as_str().unwrap_or_default();
    assert!(
        ["finished", "max_turns"].contains(&outcome),
        "{agent}\n{context}"
    );
    let transcript = std::fs::read_to_string(agent["transcript"].as_str().unwrap()).unwrap();
    let errors: Vec<serde_json::Value> = transcript
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["type"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{context}");
}

/// What swarm `said`, then the end of the server's own log: a failure's
/// message.
fn with_server_log(model: &LocalModel, said: &str) -> String {
    format!(
        "{said}\n--- the server's log (tail):\n{}",
        tail(&model.log())
    )
}

/// The last lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
