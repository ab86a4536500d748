//! Experiments (issue 18): a task run several ways (`variants`), each
//! variant in its own worktree and sandbox, ranked by `score` among those
//! that passed `verify`, the best merged; every variant kept on its ref.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::{KEY, run_with_key};
use crate::resume::{journal, kill9, started};
use crate::support::model::{MockModel, Options, Reply, Wire, tool};
use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task, wait_until};

/// Runs `tasks` in plan `name` (with `swarm` settings), returning the run.
fn run(repo: &TestRepo, name: &str, swarm: &str, tasks: &str) -> crate::support::Run {
    let plan = plan(repo, name, swarm, tasks);
    repo.run_plan(&plan, &[])
}

fn plan(repo: &TestRepo, name: &str, swarm: &str, tasks: &str) -> std::path::PathBuf {
    repo.plan_exact(
        &format!("{name}.toml"),
        &format!("[swarm]\nname = \"{name}\"\n{swarm}\n\n[defaults]\ntimeout = \"60s\"\n\n{tasks}"),
    )
}

/// The experiment's ranking: (variant, rank, ineligible reason).
fn ranking(report: &Value, id: &str) -> Vec<(String, Option<u64>, Option<String>)> {
    task(report, id)["experiment"]["ranking"]
        .as_array()
        .unwrap_or_else(|| panic!("no ranking for {id}: {report}"))
        .iter()
        .map(|r| {
            (
                r["task"].as_str().unwrap().to_string(),
                r["rank"].as_u64(),
                r["ineligible"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn has_ref(repo: &TestRepo, name: &str) -> bool {
    repo.has_rev(name)
}

#[test]
fn min_ranks_the_verified_variants_and_merges_the_best_for_its_dependents() {
    let repo = TestRepo::new();
    // n = 1 has the best score but fails verify: it is never picked.
    let out = run(
        &repo,
        "lowest",
        "",
        r#"[[task]]
id = "exp"
creates = ["n.txt"]
variants = { n = [5, 3, 9, 1, 7] }
run = "echo {n} > n.txt"
verify = "test {n} -ne 1"
score = "cat n.txt"
pick = "min"

[[task]]
id = "after"
deps = ["exp"]
creates = ["seen.txt"]
run = "cp n.txt seen.txt"
"#,
    );
    out.assert_code(0);
    let report = repo.report();
    let exp = task(&report, "exp");
    assert_eq!(exp["status"], "merged", "{report}");
    assert_eq!(exp["experiment"]["winner"], "exp@2");
    assert_eq!(exp["experiment"]["pick"], "min");
    let r = ranking(&report, "exp");
    let order: Vec<(&str, Option<u64>)> = r.iter().map(|(t, k, _)| (t.as_str(), *k)).collect();
    assert_eq!(
        order,
        [
            ("exp@2", Some(1)),
            ("exp@1", Some(2)),
            ("exp@5", Some(3)),
            ("exp@3", Some(4)),
            ("exp@4", None)
        ]
    );
    assert_eq!(r[4].2.as_deref(), Some("verify failed"));
    assert_eq!(task(&report, "exp@4")["status"], "failed");
    // The winner is merged, and its dependent started from it.
    assert_eq!(repo.show("swarm/lowest", "n.txt").trim(), "3");
    assert_eq!(repo.show("swarm/lowest", "seen.txt").trim(), "3");
    // Every variant keeps its ref, the failed one included.
    for k in 1..=5 {
        assert!(
            has_ref(&repo, &format!("refs/swarm/lowest/exp@{k}")),
            "exp@{k}"
        );
    }
    assert_eq!(repo.show("refs/swarm/lowest/exp@4", "n.txt").trim(), "1");
    // Scores, diffs and variant values are in the report and the summary.
    assert_eq!(task(&report, "exp@3")["score"]["value"], 9.0);
    assert_eq!(task(&report, "exp@3")["diff"]["files"], 1);
    assert_eq!(task(&report, "exp@3")["variant_of"], "exp");
    assert_eq!(exp["experiment"]["ranking"][0]["values"]["n"], "3");
    // `swarm compare` prints the ranking and diffs two variants.
    let compare = repo.swarm(&["compare", "lowest", "exp"]);
    compare.assert_code(0);
    let diff = repo.swarm(&["compare", "lowest", "exp", "--diff", "1", "exp@2"]);
    diff.assert_code(0);
    // A variant may be named by its values too (`exp@2` is `n = 3`).
    let by_values = repo.swarm(&["compare", "lowest", "exp", "--diff", "n=5", "n=3"]);
    by_values.assert_code(0);
    assert_eq!(by_values.stdout, diff.stdout);
    let no_such_value = repo.swarm(&["compare", "lowest", "exp", "--diff", "n=5", "n=4"]);
    no_such_value.assert_code(2);
    let unknown = repo.swarm(&["compare", "lowest", "exp", "--diff", "1", "9"]);
    unknown.assert_code(2);
    let no_experiment = repo.swarm(&["compare", "lowest", "after"]);
    no_experiment.assert_code(2);
    // The summary has the ranking, and variants count through their
    // experiment, not as failed tasks.
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("experiment_summary", redact(summary_of(&out.stderr), &repo));
        insta::assert_snapshot!("compare_ranking", redact(&compare.stdout, &repo));
        insta::assert_snapshot!("compare_diff", redact(&diff.stdout, &repo));
        insta::assert_snapshot!(
            "compare_errors",
            redact(
                &format!(
                    "{}{}{}",
                    unknown.stderr, no_such_value.stderr, no_experiment.stderr
                ),
                &repo
            )
        );
    });
}

#[test]
fn max_breaks_ties_by_number_and_a_score_without_a_number_or_in_time_is_ineligible() {
    let repo = TestRepo::new();
    let out = run(
        &repo,
        "highest",
        "",
        r#"[[task]]
id = "exp"
creates = ["n.txt"]
variants = { n = [4, 8, 8, 2] }
run = "echo {n} > n.txt"
score = "case {n} in 4) sleep 20; cat n.txt;; 2) echo fast;; *) echo warming up; cat n.txt;; esac"
score_timeout = "1s"
pick = "max"
"#,
    );
    out.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "exp")["experiment"]["winner"], "exp@2");
    let r = ranking(&report, "exp");
    assert_eq!((r[0].0.as_str(), r[0].1), ("exp@2", Some(1)));
    assert_eq!((r[1].0.as_str(), r[1].1), ("exp@3", Some(2)));
    // Why each variant that was not ranked is ineligible.
    let why: String = r
        .iter()
        .filter_map(|(id, _, why)| Some(format!("{id}: {}\n", why.as_ref()?)))
        .collect();
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&why, &repo), @"
    exp@1: score timed out after 1s
    exp@4: score printed no number: its last line is `fast` (see [TMP]/repo/.swarm/runs/highest/logs/exp@4/1.score.out)
    "));
    assert_eq!(repo.show("swarm/highest", "n.txt").trim(), "8");
    // A score's output is reachable (issue 63).
    let logs = repo.swarm(&["logs", "highest", "exp@3", "--score"]);
    logs.assert_code(0);
    insta::assert_snapshot!(logs.stdout, @"
    warming up
    8
    ");
}

#[test]
fn no_eligible_variant_fails_the_experiment_and_blocks_its_dependents() {
    let repo = TestRepo::new();
    let out = run(
        &repo,
        "none-ok",
        "on_failure = \"continue\"",
        r#"[[task]]
id = "exp"
creates = ["n.txt"]
variants = 2
run = "echo {variant} > n.txt; exit 3"

[[task]]
id = "after"
deps = ["exp"]
run = "true"
"#,
    );
    out.assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "exp")["status"], "failed");
    let reason = task(&report, "exp")["reason"].as_str().unwrap().to_string();
    assert!(
        reason.starts_with("no variant could be picked (exp@1: failed"),
        "{reason}"
    );
    assert_eq!(task(&report, "after")["status"], "blocked");
    assert!(has_ref(&repo, "refs/swarm/none-ok/exp@1"));
}

#[test]
fn pick_first_cancels_the_other_variants_and_their_processes_are_gone() {
    // The winner takes 2 s, so that the three others have started and
    // written their file by then (their rows show the change), also on
    // a busy two-core machine.
    let repo = TestRepo::new();
    let started = Instant::now();
    let out = run(
        &repo,
        "first",
        "concurrency = 4",
        r#"[[task]]
id = "exp"
creates = ["f.txt"]
variants = 5
pick = "first"
run = "if [ {variant} = 2 ]; then sleep 2; echo two > f.txt; else echo started > f.txt; sleep 37; fi"
"#,
    );
    out.assert_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let report = repo.report();
    let exp = task(&report, "exp");
    assert_eq!(exp["experiment"]["winner"], "exp@2", "{report}");
    let saved = &exp["experiment"]["saved"];
    assert_eq!(saved["stopped"].as_array().unwrap().len(), 3, "{saved}");
    assert_eq!(saved["not_started"], json!(["exp@5"]), "{saved}");
    // The same reason for each: snapshotted once.
    let reason = task(&report, "exp@1")["reason"].as_str().unwrap();
    for id in ["exp@1", "exp@3", "exp@4", "exp@5"] {
        assert_eq!(task(&report, id)["status"], "cancelled", "{id}");
        assert_eq!(task(&report, id)["reason"], reason, "{id}");
    }
    insta::assert_snapshot!(reason, @r#"variant `exp@2` passed first (pick = "first")"#);
    // The stopped variants' work is kept; the winner's is merged.
    assert_eq!(
        repo.show("refs/swarm/first/exp@1", "f.txt").trim(),
        "started"
    );
    assert_eq!(repo.show("swarm/first", "f.txt").trim(), "two");
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&out.stderr), &repo), @r#"
        run first: succeeded
          task   status          time  try  changed  result
          exp@1  cancelled      [T]s    1        1  refs/swarm/first/exp@1
          exp@2  succeeded      [T]s    1        1  refs/swarm/first/exp@2
          exp@3  cancelled      [T]s    1        1  refs/swarm/first/exp@3
          exp@4  cancelled      [T]s    1        1  refs/swarm/first/exp@4
          exp@5  cancelled          -    0        0  variant `exp@2` passed first (pick = "first")
          exp    merged             -    0        1  refs/swarm/first/exp@2

          experiment exp (pick = "first"): picked exp@2; 1 never started, 3 stopped (they had spent [T]s, 0 tokens, $0.0000); about [T]s and $0.0000 not spent
            rank variant score verify  time diff
            1    exp@2       - -      [T]s 1 file +1 -0 picked
            -    exp@1       - -      [T]s 1 file +1 -0 cancelled: variant `exp@2` passed first (pick = "first")
            -    exp@3       - -      [T]s 1 file +1 -0 cancelled: variant `exp@2` passed first (pick = "first")
            -    exp@4       - -      [T]s 1 file +1 -0 cancelled: variant `exp@2` passed first (pick = "first")
            -    exp@5       - -      [T]s -            cancelled: variant `exp@2` passed first (pick = "first")

          1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled; 5 variants (see the rankings)
          branch swarm/first at [HASH], [T]s
        "#));
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 37"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn pick_none_merges_nothing_and_keeps_every_variant() {
    let repo = TestRepo::new();
    let base = repo.git(&["rev-parse", "HEAD^{tree}"]);
    let out = run(
        &repo,
        "keep",
        "",
        r#"[[task]]
id = "exp"
creates = ["v.txt"]
variants = { word = ["a", "b", "c"] }
run = "echo {word} > v.txt"
score = "wc -c < v.txt"
pick = "none"
"#,
    );
    out.assert_code(0);
    let report = repo.report();
    let exp = task(&report, "exp");
    assert_eq!(exp["status"], "succeeded", "{report}");
    assert!(exp["experiment"]["winner"].is_null());
    assert_eq!(repo.git(&["rev-parse", "swarm/keep^{tree}"]), base);
    for (k, word) in [(1, "a"), (2, "b"), (3, "c")] {
        assert_eq!(
            repo.show(&format!("refs/swarm/keep/exp@{k}"), "v.txt")
                .trim(),
            word
        );
    }
    // Ranked all the same (equal scores: by number).
    let r = ranking(&report, "exp");
    assert_eq!(r.iter().filter(|x| x.1.is_some()).count(), 3);
}

#[test]
fn resume_after_kill_9_mid_experiment_runs_no_finished_variant_again() {
    let repo = TestRepo::new();
    // Variant 3 hangs in its first attempt only.
    let plan = plan(
        &repo,
        "crash",
        "concurrency = 3",
        r#"[[task]]
id = "exp"
creates = ["n.txt"]
variants = { n = [20, 10, 30] }
run = "if [ {variant} = 3 ] && [ $SWARM_ATTEMPT = 1 ]; then sleep 60; fi; echo {n} > n.txt"
score = "cat n.txt"
pick = "min"
"#,
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("variants 1 and 2 finished", || {
        let events = journal(&repo, "crash");
        ["exp@1", "exp@2"].iter().all(|id| {
            events
                .iter()
                .any(|e| e["event"] == "task_finished" && e["task"] == *id)
        })
    });
    kill9(&mut child);
    let out = repo.swarm(&["resume", "crash"]);
    out.assert_code(0);
    let events = journal(&repo, "crash");
    assert_eq!(started(&events, "exp@1"), 1);
    assert_eq!(started(&events, "exp@2"), 1);
    assert_eq!(started(&events, "exp@3"), 2);
    let report = repo.report();
    assert_eq!(
        task(&report, "exp")["experiment"]["winner"],
        "exp@2",
        "{report}"
    );
    assert_eq!(repo.show("swarm/crash", "n.txt").trim(), "10");
}

/// A mock model that writes `content` to out.txt and finishes; it checks
/// that the temperature of the variant reached it.
fn writer(model: &str, content: &'static str) -> MockModel {
    writer_costing(model, content, 100)
}

/// [`writer`], whose every answer says its prompt was `input_tokens`.
fn writer_costing(model: &str, content: &'static str, input_tokens: u64) -> MockModel {
    MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new(model)
        },
        move |call| {
            let t = call.body["temperature"].as_f64();
            assert!(matches!(t, Some(0.2 | 0.8)), "temperature {t:?}");
            let parts = match call.turn {
                0 => vec![tool(
                    "w",
                    "write_file",
                    json!({"path": "out.txt", "content": content}),
                )],
                _ => vec![tool("f", "finish", json!({"summary": "wrote it"}))],
            };
            Reply::Answer {
                parts,
                input_tokens,
                output_tokens: 20,
            }
        },
    )
}

#[test]
fn agent_variants_across_two_models_and_temperatures_are_ranked() {
    let repo = TestRepo::new();
    let fast = writer("fast-model", "a\n");
    let smart = writer("smart-model", "bbbb\n");
    let plan = repo.plan_exact(
        "agents.toml",
        &format!(
            r#"[swarm]
name = "models"

[models.fast]
provider = "anthropic"
model = "fast-model"
base_url = "{fast}"
api_key_env = "TEST_MODEL_KEY"

[models.smart]
provider = "anthropic"
model = "smart-model"
base_url = "{smart}"
api_key_env = "TEST_MODEL_KEY"

[[task]]
id = "write"
prompt = "Write out.txt."
creates = ["out.txt"]
verify = "test -s out.txt"
variants = {{ model = ["fast", "smart"], temperature = [0.2, 0.8] }}
score = "wc -c < out.txt"
pick = "max"
"#,
            fast = fast.base_url(Wire::Anthropic),
            smart = smart.base_url(Wire::Anthropic),
        ),
    );
    let out = run_with_key(&repo, &plan);
    out.assert_code(0);
    assert_eq!(fast.calls().len(), 4, "two variants, two turns each");
    assert_eq!(smart.calls().len(), 4);
    let report = repo.report();
    let exp = task(&report, "write");
    // Equal scores and costs: the lowest number of the smart model wins.
    assert_eq!(exp["experiment"]["winner"], "write@3", "{report}");
    assert_eq!(exp["experiment"]["ranking"][0]["values"]["model"], "smart");
    assert_eq!(
        exp["experiment"]["ranking"][0]["values"]["temperature"],
        "0.2"
    );
    assert_eq!(task(&report, "write@1")["agent"]["outcome"], "finished");
    assert!(task(&report, "write@1")["agent"]["usage"]["input_tokens"].as_u64() > Some(0));
    assert_eq!(repo.show("swarm/models", "out.txt").trim(), "bbbb");
    // Variants named by their values: all of them name one; a value two
    // variants share is refused, naming both.
    let named = repo.swarm(&[
        "compare",
        "models",
        "write",
        "--diff",
        "model=fast,temperature=0.2",
        // A number as a person may write it.
        "model=smart,temperature=0.20",
    ]);
    named.assert_code(0);
    let by_number = repo.swarm(&["compare", "models", "write", "--diff", "1", "3"]);
    assert_eq!(named.stdout, by_number.stdout);
    let shared = repo.swarm(&["compare", "models", "write", "--diff", "model=smart", "1"]);
    shared.assert_code(2);
    insta::assert_snapshot!(shared.stderr, @"
    error: failed to compare `model=smart` in run `models`: 2 variants of `write` have these values
    help: name one by more of its values (`key=value,key=value`): write@3 (model=smart,temperature=0.2), write@4 (model=smart,temperature=0.8)
    ");
}

#[test]
fn plan_errors_name_the_variant_keys_that_do_not_fit() {
    let repo = TestRepo::new();
    // Every plan's errors, one after the other, snapshotted together.
    let mut errors = String::new();
    let mut check = |text: &str| {
        let plan = repo.plan_exact("bad.toml", text);
        let out = repo.swarm(&["validate", plan.to_str().unwrap()]);
        out.assert_code(2);
        errors.push_str(&format!("$ swarm validate bad.toml\n{}\n", out.stderr));
    };
    let t = "[[task]]\nid = \"e\"\nrun = \"true\"\n";
    check(&format!("{t}variants = 1\n"));
    check(&format!("{t}score = \"x\"\n"));
    check(&format!("{t}variants = 2\nscore = \"x\"\n"));
    check(&format!("{t}variants = 2\npick = \"min\"\n"));
    check(&format!("{t}variants = 2\npick = \"best\"\n"));
    check(&format!(
        "{t}variants = 2\n\n[[task]]\nid = \"f\"\nrun = \"true\"\ndeps = [\"e@1\"]\n"
    ));
    check(&format!("{t}variants = 2\nisolation = \"readonly\"\n"));
    check("[[task]]\nid = \"e\"\nrun = \"echo {speed}\"\nvariants = { level = [1, 2] }\n");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("variant_plan_errors", redact(&errors, &repo));
    });
    // A good one: validate counts the experiment once.
    let plan = repo.plan_exact(
        "good.toml",
        &format!("{t}creates = [\"x\"]\nvariants = 3\n"),
    );
    // Only git in PATH: no toolchain of this machine's in what it says.
    let mut cmd = repo.swarm_cmd(&["validate", plan.to_str().unwrap()]);
    crate::sandbox::only_git_in_path(&repo, &mut cmd);
    let out: crate::support::Run = cmd.output().unwrap().into();
    out.assert_code(0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&out.stdout, &repo), @"
    [TMP]/plans/good.toml: ok: 1 task (1 experiment of 3 variants: 3 tasks run), 3 without dependencies, longest chain 2, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              4 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)
    "));
}

#[test]
fn the_budget_left_stops_new_variants_first() {
    let repo = TestRepo::new();
    // A prompt of 3,000 tokens, as an agent's first ones are.
    let model = writer_costing("only-model", "x\n", 3000);
    let plan = repo.plan_exact(
        "budget.toml",
        &format!(
            r#"[swarm]
name = "budget"
concurrency = 1

[models.default]
provider = "anthropic"
model = "only-model"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"

[[task]]
id = "write"
prompt = "Write out.txt."
creates = ["out.txt"]
verify = "test -s out.txt"
temperature = 0.2
budget = {{ tokens = 10000 }}
variants = 3
score = "wc -c < out.txt"
pick = "max"
"#,
            url = model.base_url(Wire::Anthropic),
        ),
    );
    let out = run_with_key(&repo, &plan);
    out.assert_code(0);
    // One variant's two calls cost more than half the task's budget: the
    // others never start.
    assert_eq!(model.calls().len(), 2);
    let report = repo.report();
    assert_eq!(
        task(&report, "write")["experiment"]["winner"],
        "write@1",
        "{report}"
    );
    for id in ["write@2", "write@3"] {
        assert_eq!(task(&report, id)["status"], "skipped", "{report}");
        let reason = task(&report, id)["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("not started: task `write` (all its variants) has"),
            "{reason}"
        );
    }
}

#[test]
fn an_unconfined_scorer_runs_in_a_checkout_of_its_own_and_its_writes_go_nowhere() {
    // With `sandbox = "none"` nothing keeps a scorer from writing: it runs
    // in a checkout of the variant's worktree as it is, so what it writes
    // is on no ref and in no merge, and it still sees the variant's work.
    let repo = TestRepo::new();
    let out = run(
        &repo,
        "unconfined",
        "sandbox = \"none\"",
        r#"[[task]]
id = "exp"
creates = ["n.txt"]
variants = { n = [2, 7] }
run = "echo {n} > n.txt"
score = "echo scored > scored.txt; echo changed >> n.txt; head -n 1 n.txt"
pick = "max"
"#,
    );
    out.assert_code(0);
    let report = repo.report();
    assert_eq!(
        task(&report, "exp")["experiment"]["winner"],
        "exp@2",
        "{report}"
    );
    for rev in [
        "swarm/unconfined",
        "refs/swarm/unconfined/exp@1",
        "refs/swarm/unconfined/exp@2",
    ] {
        let files = repo.git(&["ls-tree", "-r", "--name-only", rev]);
        assert!(!files.contains("scored.txt"), "{rev}: {files}");
        assert!(!repo.show(rev, "n.txt").contains("changed"), "{rev}");
    }
    assert_eq!(repo.show("swarm/unconfined", "n.txt"), "7");
}

/// Issue 79: `score_repeat = 3` runs each variant's score three times and
/// ranks by the median, so one run's noise (a busy machine) does not flip
/// the ranking; every run's number is in the report.
#[test]
fn a_repeated_score_ranks_by_the_median_of_its_runs() {
    let repo = TestRepo::new();
    let out = run(
        &repo,
        "median",
        "",
        r#"[[task]]
id = "exp"
creates = ["n.txt"]
variants = { n = [10, 20] }
run = "echo {n} > n.txt"
score = "echo $(( $(cat n.txt) + 1$(date +%N) % 7 ))"
score_repeat = 3
pick = "max"
"#,
    );
    out.assert_code(0);
    let report = repo.report();
    for k in [1, 2] {
        let score = &task(&report, &format!("exp@{k}"))["score"];
        let mut runs: Vec<f64> = score["runs"]
            .as_array()
            .unwrap_or_else(|| panic!("no runs: {score}"))
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(runs.len(), 3, "{score}");
        runs.sort_by(f64::total_cmp);
        assert_eq!(score["value"].as_f64(), Some(runs[1]), "{score}");
    }
    assert_eq!(task(&report, "exp")["experiment"]["winner"], "exp@2");
}
