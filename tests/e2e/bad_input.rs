//! Every kind of bad input exits 2, says what is wrong and where, and
//! leaves no trace: no refs, no branches, no `.swarm/`, no worktrees.

use crate::support::{TestRepo, redact};

/// Runs the plan, asserts exit 2 and no side effects, returns redacted stderr.
fn rejected(repo: &TestRepo, toml: &str) -> String {
    let plan = repo.plan("bad.toml", toml);
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(2);
    assert!(
        repo.swarm_traces().is_empty(),
        "side effects: {:?}",
        repo.swarm_traces()
    );
    // `validate` rejects it the same way.
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    validate.assert_code(2);
    assert_eq!(validate.stderr, run.stderr, "run and validate disagree");
    redact(&run.stderr, repo)
}

#[test]
fn toml_syntax_error_shows_file_line_and_column() {
    let repo = TestRepo::new();
    let err = rejected(&repo, "[[task]]\nid = \"a\"\nrun = \"echo hi\n");
    assert!(err.contains("bad.toml:3:"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"true\"\ntiemout = \"5s\"\n",
    );
    assert!(err.contains("did you mean `timeout`?"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn duplicate_id_names_both_places() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"true\"\n\n[[task]]\nid = \"a\"\nrun = \"false\"\n",
    );
    assert!(err.contains("first defined at"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_dependency_suggests_a_close_id() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"build\"\nrun = \"true\"\n\n[[task]]\nid = \"test\"\ndeps = [\"biuld\"]\nrun = \"true\"\n",
    );
    assert!(err.contains("did you mean `build`?"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn self_dependency() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\ndeps = [\"a\"]\nrun = \"true\"\n",
    );
    insta::assert_snapshot!(err);
}

#[test]
fn cycle_is_named() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\ndeps = [\"c\"]\nrun = \"true\"\n\n[[task]]\nid = \"b\"\ndeps = [\"a\"]\nrun = \"true\"\n\n[[task]]\nid = \"c\"\ndeps = [\"b\"]\nrun = \"true\"\n",
    );
    assert!(err.contains("a -> b -> c -> a"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn matrix_expanding_to_duplicate_ids() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"test-{os}\"\nrun = \"true\"\nmatrix = { os = [\"linux\", \"mac\"], v = [1, 2] }\n",
    );
    assert!(err.contains("duplicate id `test-linux`"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn empty_plan() {
    let repo = TestRepo::new();
    let err = rejected(&repo, "[swarm]\nname = \"nothing\"\n");
    insta::assert_snapshot!(err);
}

#[test]
fn base_ref_that_does_not_exist() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[swarm]\nbase = \"no-such-branch\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
    );
    insta::assert_snapshot!(err);
}

#[test]
fn an_agent_task_without_a_model_shows_how_to_add_one() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"agent\"\nprompt = \"refactor everything\"\n",
    );
    assert!(err.contains("[models.default]"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn agent_settings_are_checked_against_the_models() {
    let repo = TestRepo::new();
    let models = "[models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n\n[models.local]\nprovider = \"openai\"\nmodel = \"llama3.1:8b\"\nbase_url = \"http://localhost:11434/v1\"\n\n";
    // Each plan's errors, one after the other, snapshotted together.
    let mut errors = String::new();
    for tasks in [
        "[[task]]\nid = \"a\"\nprompt = \"x\"\nmodel = \"locl\"\n",
        "[[task]]\nid = \"a\"\nprompt = \"x\"\nmodel = \"local\"\nbudget = { usd = 1.0 }\n",
        "[[task]]\nid = \"a\"\nrun = \"true\"\nmax_turns = 3\n",
        "[[task]]\nid = \"a\"\nprompt = \"x\"\nbudget = { tokens = 0 }\n",
        "[[task]]\nid = \"a\"\nprompt = \"  \"\n",
    ] {
        let err = rejected(&repo, &format!("{models}{tasks}"));
        errors.push_str(&format!("$ swarm run bad.toml\n{err}\n"));
    }
    insta::assert_snapshot!(errors);
}

#[test]
fn invalid_values_point_at_them() {
    let repo = TestRepo::new();
    // Each plan's errors, one after the other, snapshotted together.
    let mut errors = String::new();
    for toml in [
        "[[task]]\nid = \"Bad Id\"\nrun = \"true\"\n",
        "[[task]]\nid = \"a\"\nrun = \"true\"\ntimeout = \"soon\"\n",
        "[[task]]\nid = \"a\"\n",
        "[[task]]\nid = \"a\"\nrun = \"true\"\nisolation = \"readwrite\"\n",
        "[swarm]\nsandbox = \"landlok\"\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
        "[[task]]\nid = \"a\"\nrun = \"true\"\npaths = [\"../etc\"]\n",
        "[swarm]\nconcurrency = 0\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
    ] {
        let err = rejected(&repo, toml);
        errors.push_str(&format!("$ swarm run bad.toml\n{err}\n"));
    }
    insta::assert_snapshot!(errors);
}

#[test]
fn not_inside_a_git_repository() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "ok.toml",
        "[swarm]\nsandbox = \"none\"\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
    );
    let mut cmd = repo.swarm_cmd(&["run", plan.to_str().unwrap()]);
    cmd.current_dir(repo.outside());
    let run: crate::support::Run = cmd.output().unwrap().into();
    run.assert_code(2);
    assert!(
        std::fs::read_dir(repo.outside()).unwrap().next().is_none(),
        "wrote into the directory"
    );
    insta::assert_snapshot!(redact(&run.stderr, &repo));
}

#[test]
fn bad_command_line_exits_2() {
    let repo = TestRepo::new();
    repo.swarm(&["run"]).assert_code(2);
    repo.swarm(&["frobnicate"]).assert_code(2);
    let plan = repo.plan("ok.toml", "[[task]]\nid = \"a\"\nrun = \"true\"\n");
    repo.swarm(&[
        "run",
        plan.to_str().unwrap(),
        "--concurrency",
        "0",
        "--sandbox",
        "none",
    ])
    .assert_code(2);
    assert!(repo.swarm_traces().is_empty());
}

#[test]
fn bad_limits_point_at_them() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"true\"\nmemory = \"lots\"\n",
    );
    assert!(err.contains("bad.toml:4:"), "{err}");
    insta::assert_snapshot!(err);
    let err = rejected(
        &repo,
        "[defaults]\nmax_output = \"0KiB\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
    );
    assert!(
        err.contains("invalid max_output `0KiB` for task `a`: must be more than zero"),
        "{err}"
    );
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = \"some\"\n",
    );
    assert!(err.contains("`none`") && err.contains("`full`"), "{err}");
}
