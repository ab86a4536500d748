//! Every kind of bad input exits 2, says what is wrong and where, and
//! leaves no trace: no refs, no branches, no `.swarm/`, no worktrees.

use crate::support::{TestRepo, redact, snapshot_settings};

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
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"true\"\ntiemout = \"5s\"\n",
    );
    insta::assert_snapshot!(err);
}

#[test]
fn duplicate_id_names_both_places() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"true\"\n\n[[task]]\nid = \"a\"\nrun = \"false\"\n",
    );
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_dependency_suggests_a_close_id() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"build\"\nrun = \"true\"\n\n[[task]]\nid = \"test\"\ndeps = [\"biuld\"]\nrun = \"true\"\n",
    );
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
    insta::assert_snapshot!(err);
}

#[test]
fn matrix_expanding_to_duplicate_ids() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"test-{os}\"\nrun = \"true\"\nmatrix = { os = [\"linux\", \"mac\"], v = [1, 2] }\n",
    );
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
    let usage = |args: &[&str]| {
        let run = repo.swarm(args);
        run.assert_code(2);
        assert_eq!(run.stdout, "", "swarm {args:?} wrote to stdout");
        redact(&run.stderr, &repo)
    };
    insta::assert_snapshot!("run_without_a_plan", usage(&["run"]));
    insta::assert_snapshot!("unknown_command", usage(&["frobnicate"]));
    insta::assert_snapshot!("misspelt_command", usage(&["valdate", "plan.toml"]));
    insta::assert_snapshot!("unknown_flag", usage(&["status", "--jsn"]));
    let plan = repo.plan("ok.toml", "[[task]]\nid = \"a\"\nrun = \"true\"\n");
    let plan = plan.to_str().unwrap();
    insta::assert_snapshot!(
        "zero_concurrency",
        usage(&["run", plan, "--concurrency", "0", "--sandbox", "none"])
    );
    insta::assert_snapshot!(
        "unknown_sandbox",
        usage(&["run", plan, "--sandbox", "landlok"])
    );
    insta::assert_snapshot!("bad_grace", usage(&["run", plan, "--grace", "soon"]));
    insta::assert_snapshot!("conflicting_flags", usage(&["clean", "--gone", "--all"]));
    assert!(repo.swarm_traces().is_empty());
}

#[test]
fn bad_limits_point_at_them() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"true\"\nmemory = \"lots\"\n",
    );
    insta::assert_snapshot!(err);
    let err = rejected(
        &repo,
        "[defaults]\nmax_output = \"0KiB\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
    );
    insta::assert_snapshot!("max_output_of_zero", err);
    let err = rejected(
        &repo,
        "[[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = \"some\"\n",
    );
    insta::assert_snapshot!("unknown_network", err);
}

/// `swarm validate PLAN` and `swarm run PLAN` on a plan file that cannot
/// be read: exit 2, the same message, no trace.
fn unreadable(repo: &TestRepo, plan: &std::path::Path) -> String {
    let plan = plan.to_str().unwrap();
    let validate = repo.swarm(&["validate", plan]);
    validate.assert_code(2);
    let run = repo.swarm(&["run", plan]);
    run.assert_code(2);
    assert_eq!(validate.stderr, run.stderr, "run and validate disagree");
    assert!(repo.swarm_traces().is_empty(), "{:?}", repo.swarm_traces());
    redact(&validate.stderr, repo)
}

#[test]
fn a_plan_that_cannot_be_read_says_why() {
    let repo = TestRepo::new();
    let missing = repo.root().join("plans/missing.toml");
    insta::assert_snapshot!("plan_not_found", unreadable(&repo, &missing));
    let directory = repo.root().join("plans");
    insta::assert_snapshot!("plan_is_a_directory", unreadable(&repo, &directory));
    let latin1 = repo.root().join("plans/latin1.toml");
    std::fs::write(&latin1, b"[[task]]\nid = \"caf\xe9\"\nrun = \"true\"\n").unwrap();
    insta::assert_snapshot!("plan_not_utf8", unreadable(&repo, &latin1));
}

#[test]
fn toml_that_is_no_key_value() {
    let repo = TestRepo::new();
    let err = rejected(&repo, "[[task]]\nid = \"a\"\nrun = \"true\"\ngarbage\n");
    insta::assert_snapshot!(err);
}

/// Each value of the wrong type is named with the type it has and the
/// one it needs, at its place.
#[test]
fn values_of_the_wrong_type_point_at_them() {
    let repo = TestRepo::new();
    let task = "[[task]]\nid = \"a\"\nrun = \"true\"\n";
    insta::assert_snapshot!(
        "timeout_not_a_string",
        rejected(&repo, &format!("{task}timeout = 5\n"))
    );
    insta::assert_snapshot!(
        "deps_not_a_list",
        rejected(&repo, &format!("{task}deps = \"b\"\n"))
    );
    insta::assert_snapshot!(
        "id_not_a_string",
        rejected(&repo, "[[task]]\nid = 3\nrun = \"true\"\n")
    );
    insta::assert_snapshot!(
        "retries_negative",
        rejected(&repo, &format!("{task}retries = -1\n"))
    );
    insta::assert_snapshot!(
        "env_not_a_table",
        rejected(&repo, &format!("{task}env = [\"A=1\"]\n"))
    );
    insta::assert_snapshot!(
        "matrix_values_not_a_list",
        rejected(
            &repo,
            "[[task]]\nid = \"a-{os}\"\nrun = \"true\"\nmatrix = { os = \"linux\" }\n"
        )
    );
    insta::assert_snapshot!(
        "task_a_table_not_a_list",
        rejected(&repo, "[task]\nid = \"a\"\nrun = \"true\"\n")
    );
}

#[test]
fn a_task_without_an_id_or_with_two_things_to_run() {
    let repo = TestRepo::new();
    insta::assert_snapshot!(
        "task_without_id",
        rejected(&repo, "[[task]]\nrun = \"true\"\n")
    );
    insta::assert_snapshot!(
        "task_with_run_and_prompt",
        rejected(
            &repo,
            "[[task]]\nid = \"a\"\nrun = \"true\"\nprompt = \"x\"\n"
        )
    );
}

/// What a Slurm cluster did not run before issue 78 (`[setup]`,
/// `[cleanup]`, a task's `junit`) is a valid cluster plan now: `swarm
/// validate` accepts it, with no error.
#[test]
fn setup_cleanup_and_junit_are_accepted_on_a_cluster() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "slurm.toml",
        "[executor]\nkind = \"slurm\"\n\n[setup]\nrun = \"true\"\n\n[cleanup]\nrun = \"true\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\njunit = \"report.xml\"\n",
    );
    let out = repo.swarm(&["validate", plan.to_str().unwrap()]);
    out.assert_code(0);
    // Its first line: those after it name this machine's toolchains.
    let checked = out.stdout.lines().next().unwrap_or_default();
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(checked, &repo), @"[TMP]/plans/slurm.toml: ok: 1 task, 1 without dependencies, longest chain 1, base HEAD ([HASH])"));
}

/// The plan's tables besides its tasks (`[swarm]`, `[executor]`,
/// `[setup]`, `[cleanup]`) and what a task may ask only as an agent: each
/// mistake at its line, with what to write.
#[test]
fn settings_errors_point_at_them() {
    let repo = TestRepo::new();
    let task = "[[task]]\nid = \"a\"\nrun = \"true\"\n";
    insta::assert_snapshot!(
        "executor_keys_of_a_local_run",
        rejected(&repo, &format!("[executor]\npartition = \"gpu\"\n\n{task}"))
    );
    insta::assert_snapshot!(
        "slurm_settings",
        rejected(
            &repo,
            &format!(
                "[executor]\nkind = \"slurm\"\ntime_limit = \"soon\"\nmem = \"lots\"\npoll_interval = \"1ms\"\n\n{task}"
            )
        )
    );
    insta::assert_snapshot!(
        "setup_and_cleanup_settings",
        rejected(
            &repo,
            &format!(
                "[setup]\nrun = \"\"\n\n[cleanup]\nrun = \"true\"\ntimeout = \"soon\"\n\n{task}"
            )
        )
    );
    insta::assert_snapshot!(
        "verify_timeout_without_verify",
        rejected(
            &repo,
            &format!("[swarm]\nverify_timeout = \"5m\"\n\n{task}")
        )
    );
    insta::assert_snapshot!(
        "swarm_settings",
        rejected(
            &repo,
            &format!(
                "[swarm]\nname = \"a b\"\nworktrees = \"rel\"\ntoolchains = [\"rustt\"]\nmin_free_space = \"lots\"\n\n{task}"
            )
        )
    );
    insta::assert_snapshot!(
        "mcp_on_a_command_task",
        rejected(&repo, &format!("{task}mcp = [\"search\"]\n"))
    );
}
