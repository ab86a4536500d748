//! Subtasks (issue 20): a running task asks for children (a command by
//! writing `$SWARM_SUBTASKS`, an agent through its `spawn_subtasks` tool);
//! they are checked like a plan, run like any task from the parent's
//! result, and merged onto it before anything that depends on the parent
//! starts. Limits are refused with their names; a resumed run re-runs
//! nothing that finished.

use serde_json::Value;

use crate::resume::{journal, kill9, started};
use crate::support::{TestRepo, redact, task, wait_until};

fn plan(repo: &TestRepo, name: &str, swarm: &str, tasks: &str) -> std::path::PathBuf {
    repo.plan_exact(
        &format!("{name}.toml"),
        &format!("[swarm]\nname = \"{name}\"\n{swarm}\n\n[defaults]\ntimeout = \"60s\"\n\n{tasks}"),
    )
}

/// A command task `id` that writes `file` and asks for `request`.
fn spawning(id: &str, creates: &str, own: &str, request: &str) -> String {
    format!(
        "[[task]]\nid = \"{id}\"\ncreates = [\"{creates}\"]\nrun = '''\n{own}\ncat > \"$SWARM_SUBTASKS\" <<'REQUEST'\n{request}\nREQUEST\n'''\n"
    )
}

const SPLIT: &str = r#"[[task]]
id = "a"
creates = ["parts/a.txt"]
run = "sleep 1; echo a > parts/a.txt"

[[task]]
id = "b"
creates = ["parts/b.txt"]
run = "sleep 1; echo b > parts/b.txt"

[[task]]
id = "c"
deps = ["a", "b"]
creates = ["parts/c.txt"]
run = "cat parts/a.txt parts/b.txt > parts/c.txt""#;

/// Position in the journal of the first `event` about `task`.
pub(crate) fn at(events: &[Value], event: &str, task: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == event && e["task"] == task)
        .unwrap_or_else(|| panic!("no {event} of {task} in {events:#?}"))
}

#[test]
fn a_commands_subtasks_run_in_parallel_and_merge_before_its_dependents_start() {
    let repo = TestRepo::new();
    let tasks = format!(
        "{}\n[[task]]\nid = \"after\"\ndeps = [\"split\"]\ncreates = [\"after.txt\"]\nrun = \"cat parts/c.txt > after.txt\"\n",
        spawning(
            "split",
            "parts",
            "mkdir -p parts && echo own > parts/own.txt",
            SPLIT
        )
    );
    let plan = plan(&repo, "tree", "concurrency = 4", &tasks);
    let out = repo.run_plan(&plan, &[]);
    out.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "split")["status"], "merged", "{report}");
    assert_eq!(
        task(&report, "split")["subtasks"],
        serde_json::json!(["split/a", "split/b", "split/c"])
    );
    for child in ["split/a", "split/b", "split/c"] {
        assert_eq!(task(&report, child)["status"], "succeeded", "{report}");
        assert_eq!(task(&report, child)["parent"], "split");
    }
    assert_eq!(task(&report, "after")["status"], "merged");
    assert_eq!(repo.show("swarm/tree", "parts/own.txt"), "own");
    assert_eq!(repo.show("swarm/tree", "parts/c.txt"), "a\nb");
    assert_eq!(repo.show("swarm/tree", "after.txt"), "a\nb");
    // Every child's work is on a ref of its own.
    assert_eq!(repo.show("refs/swarm/tree/split+a", "parts/a.txt"), "a");
    let events = journal(&repo, "tree");
    // a and b ran side by side; c waited for both.
    let (a_start, b_start) = (
        at(&events, "task_started", "split/a"),
        at(&events, "task_started", "split/b"),
    );
    let first_end =
        at(&events, "task_finished", "split/a").min(at(&events, "task_finished", "split/b"));
    assert!(a_start < first_end && b_start < first_end, "{events:#?}");
    assert!(at(&events, "task_started", "split/c") > first_end);
    // The subtree is merged onto its parent before its dependent starts.
    assert!(at(&events, "subtasks_spawned", "split") < a_start);
    let joined = at(&events, "subtasks_merged", "split");
    assert!(joined > at(&events, "task_finished", "split/c"));
    assert!(at(&events, "task_finished", "split") > joined);
    assert!(at(&events, "task_started", "after") > joined);
    // The live view says what it asked for (the other lines' order is
    // the scheduler's).
    let spawned = out
        .stderr
        .lines()
        .find(|l| l.contains("subtasks:"))
        .unwrap_or_else(|| panic!("no subtasks line in:\n{}", out.stderr));
    insta::assert_snapshot!(spawned, @"  spawned    split     3 subtasks: a, b, c");
}

#[test]
fn a_failing_child_blocks_its_parent_and_the_parents_dependents() {
    let repo = TestRepo::new();
    let request = "[[task]]\nid = \"ok\"\ncreates = [\"d/ok.txt\"]\nrun = \"echo ok > d/ok.txt\"\n\n[[task]]\nid = \"bad\"\ncreates = [\"d/bad.txt\"]\nrun = \"echo partial > d/bad.txt; exit 3\"";
    let tasks = format!(
        "{}\n[[task]]\nid = \"after\"\ndeps = [\"p\"]\ncreates = [\"after.txt\"]\nrun = \"true\"\n\n[[task]]\nid = \"other\"\ncreates = [\"other.txt\"]\nrun = \"echo x > other.txt\"\n",
        spawning("p", "d", "mkdir -p d", request)
    );
    let plan = plan(&repo, "fail", "on_failure = \"continue\"", &tasks);
    repo.run_plan(&plan, &[]).assert_code(1);
    let report = repo.report();
    let p = task(&report, "p");
    assert_eq!(p["status"], "blocked", "{report}");
    assert_eq!(p["reason"], "subtask `p/bad` failed");
    assert_eq!(task(&report, "p/bad")["status"], "failed");
    assert_eq!(task(&report, "p/ok")["status"], "succeeded");
    assert_eq!(task(&report, "after")["status"], "blocked");
    assert_eq!(task(&report, "other")["status"], "merged");
    // Nothing of the failed subtree reached the branch, nothing is lost.
    assert!(
        !repo
            .git(&["ls-tree", "-r", "--name-only", "swarm/fail"])
            .contains("d/")
    );
    assert_eq!(repo.show("refs/swarm/fail/p+bad", "d/bad.txt"), "partial");
}

/// Runs plan `name` of one spawning task and returns its report's task
/// and its stderr log (its reason and log redacted).
fn refused(swarm: &str, request: &str) -> (Value, String) {
    let repo = TestRepo::new();
    let tasks = spawning("p", "d", "mkdir -p d", request);
    let plan = plan(&repo, "limits", swarm, &tasks);
    repo.run_plan(&plan, &[]).assert_code(1);
    let report = repo.report();
    let mut p = task(&report, "p").clone();
    if let Some(reason) = p["reason"].as_str() {
        p["reason"] = redact(reason, &repo).into();
    }
    let log = std::fs::read_to_string(p["stderr_log"].as_str().unwrap()).unwrap_or_default();
    (p, redact(&log, &repo))
}

fn children(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[task]]\nid = \"c{i}\"\ncreates = [\"d/{i}.txt\"]\nrun = \"touch d/{i}.txt\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_limit_is_refused_with_its_name_never_cut_short() {
    let (p, log) = refused("max_children = 2", &children(3));
    let reason = p["reason"].as_str().unwrap();
    assert_eq!(p["status"], "failed");
    insta::assert_snapshot!(reason, @"its subtask request was refused: `max_children` is 2 and this would give `p` 3 subtasks: ask for fewer, larger subtasks (or raise `max_children` in [swarm])");
    insta::assert_snapshot!(log, @"
    swarm: the subtask request was refused:
      refused: `max_children` is 2 and this would give `p` 3 subtasks: ask for fewer, larger subtasks (or raise `max_children` in [swarm])
    ");
    assert!(p["subtasks"].is_null(), "{p}");

    let (p, _) = refused("max_tasks = 3", &children(3));
    insta::assert_snapshot!(p["reason"].as_str().unwrap(), @"its subtask request was refused: `max_tasks` is 3 and the run has 1 task: 3 more would make 4; ask for fewer subtasks (or raise `max_tasks` in [swarm])");

    let (p, _) = refused("max_depth = 0", &children(1));
    insta::assert_snapshot!(p["reason"].as_str().unwrap(), @"its subtask request was refused: subtasks are turned off for this run (`max_depth = 0` in [swarm])");

    // A request with mistakes names its file and line, as a plan's do.
    let (p, log) = refused(
        "",
        "[[task]]\nid = \"x\"\nrun = \"true\"\ndepends = [\"y\"]",
    );
    insta::assert_snapshot!(p["reason"].as_str().unwrap(), @"its subtask request was refused: [TMP]/repo/.swarm/runs/limits/tmp/p/subtasks.toml:4:1: unknown field `depends`, expected one of `id`, `deps`, `run`, `wasm`, `args`, `fuel`, `prompt`, `agent`, `mcp`, `output_schema`, `model`, `max_turns`, `budget`, `repair_rounds`, `env`, `timeout`, `stall_after`, `retries`, `verify`, `paths`, `sparse`, `creates`, `allow_overlap`, `isolation`, `group`, `junit`, `flaky`, `on_conflict`, `conflict_reruns`, `network`, `setup`, `warm`, `memory`, `processes`, `max_output`, `max_file_size`, `matrix`, `shards`, `shard_grouping`, `list_tests`, `affected`, `affects`, `variants`, `score`, `score_timeout`, `score_repeat`, `pick`, `temperature` (did you mean `deps`?)");
    insta::assert_snapshot!(log, @"
    swarm: the subtask request was refused:
      [TMP]/repo/.swarm/runs/limits/tmp/p/subtasks.toml:4:1: unknown field `depends`, expected one of `id`, `deps`, `run`, `wasm`, `args`, `fuel`, `prompt`, `agent`, `mcp`, `output_schema`, `model`, `max_turns`, `budget`, `repair_rounds`, `env`, `timeout`, `stall_after`, `retries`, `verify`, `paths`, `sparse`, `creates`, `allow_overlap`, `isolation`, `group`, `junit`, `flaky`, `on_conflict`, `conflict_reruns`, `network`, `setup`, `warm`, `memory`, `processes`, `max_output`, `max_file_size`, `matrix`, `shards`, `shard_grouping`, `list_tests`, `affected`, `affects`, `variants`, `score`, `score_timeout`, `score_repeat`, `pick`, `temperature` (did you mean `deps`?)
    ");
    // Outside the parent's paths.
    let (p, _) = refused(
        "",
        "[[task]]\nid = \"x\"\ncreates = [\"elsewhere.txt\"]\nrun = \"true\"",
    );
    insta::assert_snapshot!(p["reason"].as_str().unwrap(), @"its subtask request was refused: [TMP]/repo/.swarm/runs/limits/tmp/p/subtasks.toml:2:6: subtask `x` may write `elsewhere.txt`, outside what its parent `p` may write (d) (a subtask's `paths` and `creates` must lie inside its parent's)");
}

#[test]
fn subtasks_spawn_subtasks_down_to_max_depth() {
    // Each level's request is a file of the repository the task copies.
    let leaf = "[[task]]\nid = \"leaf\"\ncreates = [\"t/m/leaf.txt\"]\nrun = \"echo leaf > t/m/leaf.txt\"\n";
    let mid = "[[task]]\nid = \"mid\"\ncreates = [\"t/m\"]\nrun = \"mkdir -p t/m && echo mid > t/m/mid.txt && cp req/leaf.toml $SWARM_SUBTASKS\"\n";
    let repo = TestRepo::new();
    repo.write("req/leaf.toml", leaf);
    repo.write("req/mid.toml", mid);
    repo.commit_all("requests");
    let tasks = "[[task]]\nid = \"top\"\ncreates = [\"t\"]\nrun = \"mkdir -p t && cp req/mid.toml $SWARM_SUBTASKS\"\n";
    let deep = plan(&repo, "deep", "", tasks);
    repo.run_plan(&deep, &[]).assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "top")["status"], "merged", "{report}");
    assert_eq!(task(&report, "top/mid")["status"], "succeeded");
    assert_eq!(task(&report, "top/mid/leaf")["status"], "succeeded");
    assert_eq!(task(&report, "top/mid/leaf")["parent"], "top/mid");
    assert_eq!(repo.show("swarm/deep", "t/m/leaf.txt"), "leaf");
    assert_eq!(repo.show("swarm/deep", "t/m/mid.txt"), "mid");

    // A leaf that asks for more goes past max_depth = 2.
    let repo = TestRepo::new();
    repo.write(
        "req/deeper.toml",
        "[[task]]\nid = \"deeper\"\nrun = \"true\"\n",
    );
    repo.write(
        "req/leaf.toml",
        &leaf.replace(
            "echo leaf > t/m/leaf.txt",
            "echo leaf > t/m/leaf.txt && cp req/deeper.toml $SWARM_SUBTASKS",
        ),
    );
    repo.write("req/mid.toml", mid);
    repo.commit_all("requests");
    let deep = plan(&repo, "deep", "", tasks);
    repo.run_plan(&deep, &[]).assert_code(1);
    let report = repo.report();
    let leaf = task(&report, "top/mid/leaf");
    assert_eq!(leaf["status"], "failed", "{report}");
    insta::assert_snapshot!(leaf["reason"].as_str().unwrap(), @"its subtask request was refused: `top/mid/leaf` is already 2 levels deep and `max_depth` is 2: do this work in this task instead (or raise `max_depth` in [swarm])");
    assert_eq!(task(&report, "top/mid")["status"], "blocked");
    assert_eq!(task(&report, "top")["status"], "blocked");
}

#[test]
fn resume_after_kill_9_mid_subtree_reruns_nothing_that_finished() {
    let repo = TestRepo::new();
    let request = "[[task]]\nid = \"fast\"\ncreates = [\"s/fast.txt\"]\nrun = \"echo fast > s/fast.txt\"\n\n[[task]]\nid = \"slow\"\ncreates = [\"s/slow.txt\"]\nrun = \"if [ $SWARM_ATTEMPT = 1 ]; then sleep 60; fi; echo slow > s/slow.txt\"";
    let tasks = format!(
        "{}\n[[task]]\nid = \"after\"\ndeps = [\"p\"]\ncreates = [\"after.txt\"]\nrun = \"cat s/fast.txt s/slow.txt > after.txt\"\n",
        spawning("p", "s", "mkdir -p s && echo own > s/own.txt", request)
    );
    let plan = plan(&repo, "crash", "concurrency = 2", &tasks);
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("fast finished while slow runs", || {
        let events = journal(&repo, "crash");
        events
            .iter()
            .any(|e| e["event"] == "task_finished" && e["task"] == "p/fast")
            && events
                .iter()
                .any(|e| e["event"] == "task_started" && e["task"] == "p/slow")
    });
    kill9(&mut child);
    let out = repo.swarm(&["resume", "crash"]);
    out.assert_code(0);
    let events = journal(&repo, "crash");
    assert_eq!(started(&events, "p"), 1, "{events:#?}");
    assert_eq!(started(&events, "p/fast"), 1);
    assert_eq!(started(&events, "p/slow"), 2);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "subtasks_spawned")
            .count(),
        1
    );
    let report = repo.report();
    assert_eq!(task(&report, "p")["status"], "merged", "{report}");
    assert_eq!(repo.show("swarm/crash", "after.txt"), "fast\nslow");
    assert_eq!(repo.show("swarm/crash", "s/own.txt"), "own");
    // The interrupted attempt's worktree is kept on its attempt ref.
    assert!(repo.has_rev("refs/swarm/crash/p+slow.1"));
}

#[test]
fn an_agent_spawns_subtasks_fixing_its_request_from_the_errors_it_gets_back() {
    use crate::agent::run_with_key;
    use crate::support::model::{Reply, tool};
    use serde_json::json;

    let repo = TestRepo::new();
    let mock = keyed_mock(None, |call| match (call.conversation.as_str(), call.turn) {
        ("Split the work.", 0) => Reply::answer(vec![
            tool(
                "w",
                "write_file",
                json!({"path": "lead.txt", "content": "lead\n"}),
            ),
            // Two mistakes: a dependency on no sibling, a task without
            // an id; both come back at once.
            tool(
                "s1",
                "spawn_subtasks",
                json!({"tasks": [
                    {"id": "docs", "prompt": "Write docs.", "creates": ["docs/a.md"], "deps": ["nope"]},
                    {"run": "ls | wc -l > count.txt", "creates": ["count.txt"]}
                ]}),
            ),
        ]),
        ("Split the work.", 1) => {
            let refused = &call.tool_results[1];
            assert!(refused.is_error, "{refused:?}");
            assert!(
                refused.content.contains("unknown task `nope`"),
                "{}",
                refused.content
            );
            assert!(
                refused.content.contains("a task has no `id`"),
                "{}",
                refused.content
            );
            Reply::answer(vec![tool(
                "s2",
                "spawn_subtasks",
                json!({"tasks": [
                    {"id": "docs", "prompt": "Write docs.", "creates": ["docs/a.md"]},
                    {"id": "count", "run": "ls lead.txt > count.txt", "creates": ["count.txt"], "deps": ["docs"]}
                ]}),
            )])
        }
        ("Split the work.", _) => {
            let accepted = &call.tool_results[0];
            assert!(!accepted.is_error, "{accepted:?}");
            assert!(
                accepted.content.contains("lead/docs, lead/count"),
                "{}",
                accepted.content
            );
            Reply::answer(vec![tool("f", "finish", json!({"summary": "split it"}))])
        }
        ("Write docs.", 0) => Reply::answer(vec![tool(
            "w",
            "write_file",
            json!({"path": "docs/a.md", "content": "# docs\n"}),
        )]),
        ("Write docs.", _) => Reply::answer(vec![tool("f", "finish", json!({"summary": "docs"}))]),
        (other, turn) => panic!("unexpected conversation {other:?} turn {turn}"),
    });
    let plan = model_plan(
        &repo,
        &mock,
        "agents",
        "",
        "[[task]]\nid = \"lead\"\nprompt = \"Split the work.\"\nverify = \"test -f lead.txt\"\n",
    );
    let out = run_with_key(&repo, &plan);
    out.assert_code(0);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let report = repo.report();
    assert_eq!(task(&report, "lead")["status"], "merged", "{report}");
    assert_eq!(task(&report, "lead/docs")["status"], "succeeded");
    assert_eq!(task(&report, "lead/count")["status"], "succeeded");
    assert_eq!(repo.show("swarm/agents", "docs/a.md"), "# docs");
    assert_eq!(repo.show("swarm/agents", "count.txt"), "lead.txt");
    assert_eq!(repo.show("swarm/agents", "lead.txt"), "lead");
    // The lead's transcript records both requests and their answers.
    let transcript = std::fs::read_to_string(
        repo.path()
            .join(".swarm/runs/agents/logs/lead/1.transcript.jsonl"),
    )
    .unwrap();
    assert_eq!(transcript.matches("\"spawn\"").count(), 2, "{transcript}");
}

/// The mock model expecting the agent tests' key, and, with `stream`,
/// that every request streams (or not).
pub(crate) fn keyed_mock(
    stream: Option<bool>,
    script: impl Fn(&crate::support::model::Call) -> crate::support::model::Reply
    + Send
    + Sync
    + 'static,
) -> crate::support::model::MockModel {
    use crate::support::model::{MockModel, Options};
    MockModel::start(
        Options {
            api_key: Some(crate::agent::KEY.into()),
            stream,
            ..Options::new("claude-sonnet-4-5")
        },
        script,
    )
}

/// A plan of `tasks` with a model (the mock) and `[swarm]` settings.
pub(crate) fn model_plan(
    repo: &TestRepo,
    mock: &crate::support::model::MockModel,
    name: &str,
    swarm: &str,
    tasks: &str,
) -> std::path::PathBuf {
    repo.plan_exact(
        &format!("{name}.toml"),
        &format!(
            "[swarm]\nname = \"{name}\"\n{swarm}\n\n[defaults]\ntimeout = \"60s\"\n\n[models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\nbase_url = \"{}\"\napi_key_env = \"TEST_MODEL_KEY\"\n\n{tasks}",
            mock.base_url(crate::support::model::Wire::Anthropic)
        ),
    )
}

#[test]
fn an_agents_budget_covers_the_subtasks_it_spawns() {
    use crate::agent::run_with_key;
    use crate::support::model::{Reply, tool};
    use serde_json::json;

    let repo = TestRepo::new();
    // Every answer costs 120 tokens (100 in, 20 out).
    let mock = keyed_mock(None, |call| match (call.conversation.as_str(), call.turn) {
        ("Lead.", 0) => Reply::answer(vec![tool(
            "s",
            "spawn_subtasks",
            json!({"tasks": [{"id": "kid", "prompt": "Kid.", "creates": ["kid0.txt"]}]}),
        )]),
        ("Lead.", _) => Reply::answer(vec![tool("f", "finish", json!({"summary": "split"}))]),
        ("Kid.", 0) => Reply::answer(vec![tool(
            "w",
            "write_file",
            json!({"path": "kid0.txt", "content": "partial\n"}),
        )]),
        ("Kid.", _) => Reply::answer(vec![tool("f", "finish", json!({"summary": "kid"}))]),
        (other, turn) => panic!("unexpected conversation {other:?} turn {turn}"),
    });
    // A call holds its prompt (a third of its bytes) and its answer
    // against the budgets until it settles; how long the prompts are is
    // measured on a run with room for all of them.
    let tasks = |budget: u64| {
        format!("[[task]]\nid = \"lead\"\nprompt = \"Lead.\"\nbudget = {{ tokens = {budget} }}\n")
    };
    let calib = model_plan(&repo, &mock, "calib", "", &tasks(1_000_000));
    run_with_key(&repo, &calib).assert_code(0);
    let kid_prompts: Vec<u64> = mock
        .calls()
        .iter()
        .filter(|c| c.conversation == "Kid.")
        .map(|c| (c.body.to_string().len() as u64).div_ceil(3))
        .collect();
    assert_eq!(kid_prompts.len(), 2);
    let before = mock.calls().len();
    // The lead's two calls and the kid's first spend 360: what is left
    // then is less than the kid's second prompt. Its subtask has no
    // budget of its own, but the subtree's stops it.
    let plan = model_plan(&repo, &mock, "budget", "", &tasks(360 + kid_prompts[1] - 1));
    run_with_key(&repo, &plan).assert_code(1);
    let report = repo.report();
    let kid = task(&report, "lead/kid");
    assert_eq!(kid["status"], "failed", "{report}");
    assert_eq!(kid["agent"]["outcome"], "budget", "{kid}");
    // Its numbers: what is left (the budget less the 360 spent) and the
    // prompt it did not fit, whose size depends on the prompt's words.
    let prompt = kid_prompts[1];
    let reason = kid["reason"]
        .as_str()
        .unwrap()
        .replace(
            &format!("has {} of its {} tokens", prompt - 1, 360 + prompt - 1),
            "has [PROMPT - 1] of its [360 + PROMPT - 1] tokens",
        )
        .replace(&format!("(about {prompt})"), "(about [PROMPT])");
    insta::assert_snapshot!(reason, @"the agent's budget ran out: task `lead` (its subtasks included) has [PROMPT - 1] of its [360 + PROMPT - 1] tokens left, less than the call's prompt (about [PROMPT])");
    assert_eq!(task(&report, "lead")["status"], "blocked");
    let kid_calls = mock.calls()[before..]
        .iter()
        .filter(|c| c.conversation == "Kid.")
        .count();
    assert_eq!(kid_calls, 1);
    // Its work is kept.
    assert_eq!(
        repo.show("refs/swarm/budget/lead+kid", "kid0.txt"),
        "partial"
    );
}
