//! CI batches (issue 63): matrices listed from the repository, shards
//! balanced by learned durations, and test-level reports merged from the
//! tasks' own JUnit files.

use crate::support::TestRepo;

const HEADER: &str = "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n";

/// A repository with five test files, one of them untracked and one
/// ignored, and a file of values.
fn suite() -> TestRepo {
    let repo = TestRepo::new();
    for name in [
        "tests/test_b.py",
        "tests/test_a.py",
        "tests/sub/test_c.py",
        "tests/helper.py",
    ] {
        repo.write(name, "# a test\n");
    }
    repo.write(".gitignore", "tests/test_ignored.py\n");
    repo.write("shards.txt", "# the targets\nalpha\n\n  beta  \n");
    repo.commit_all("tests");
    repo.write("tests/test_ignored.py", "# ignored\n");
    repo.write("tests/test_untracked.py", "# not committed\n");
    repo
}

#[test]
fn a_glob_matrix_lists_the_files_git_tracks_at_the_base_sorted_and_validate_shows_them() {
    let repo = suite();
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{HEADER}[[task]]\nid = \"test-{{file}}\"\nrun = \"echo {{file}} > out.txt\"\nmatrix = {{ file = {{ glob = \"tests/**/test_*.py\" }} }}\n"
        ),
    );
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    validate.assert_code(0);
    assert!(
        validate.stdout.contains("ok: 3 tasks"),
        "{}",
        validate.stdout
    );
    assert!(
        validate.stdout.contains(
            "matrix            test-{file} `file`: 3 values from the glob `tests/**/test_*.py` (tests/sub/test_c.py, tests/test_a.py, tests/test_b.py)"
        ),
        "{}",
        validate.stdout
    );
    repo.run_plan(&plan, &["--name", "g"]).assert_code(0);
    let report = repo.report();
    let ids: Vec<&str> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "test-tests-sub-test_c-py",
            "test-tests-test_a-py",
            "test-tests-test_b-py"
        ]
    );
    assert_eq!(repo.show("swarm/g", "out.txt").trim(), "tests/test_b.py");

    // `swarm logs` takes a glob as `deps` does: each task's log, headed.
    let logs = repo.swarm(&["logs", "g", "test-tests-test_*"]);
    logs.assert_code(0);
    assert!(
        logs.stdout.contains("==> test-tests-test_a-py <==")
            && logs.stdout.contains("==> test-tests-test_b-py <==")
            && !logs.stdout.contains("sub"),
        "{}",
        logs.stdout
    );
    let none = repo.swarm(&["logs", "g", "lint-*"]);
    none.assert_code(2);
    assert!(
        none.stderr.contains("`lint-*` matches no task"),
        "{}",
        none.stderr
    );

    // `--only` too.
    repo.run_plan(&plan, &["--name", "o", "--only", "test-tests-test_*"])
        .assert_code(0);
    let report = repo.report();
    assert_eq!(report["tasks"].as_array().unwrap().len(), 2, "{report}");
    let unknown = repo.run_plan(&plan, &["--name", "u", "--only", "lint-*"]);
    unknown.assert_code(2);
    assert!(
        unknown
            .stderr
            .contains("select task `lint-*`: the plan has no task it matches"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn a_lines_matrix_reads_a_file_beside_the_plan_and_bad_sources_say_why() {
    let repo = suite();
    std::fs::write(
        repo.root().join("plans/targets.txt"),
        "# targets\nalpha\n\n  beta  \n",
    )
    .unwrap();
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{HEADER}[[task]]\nid = \"build-{{t}}\"\nrun = \"echo {{t}} > {{t}}.txt\"\nmatrix = {{ t = {{ lines = \"targets.txt\" }} }}\n"
        ),
    );
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    validate.assert_code(0);
    assert!(
        validate
            .stdout
            .contains("build-{t} `t`: 2 values from the lines of `targets.txt` (alpha, beta)"),
        "{}",
        validate.stdout
    );
    repo.run_plan(&plan, &["--name", "l"]).assert_code(0);
    assert_eq!(repo.show("swarm/l", "beta.txt").trim(), "beta");

    for (matrix, says) in [
        (
            "{ glob = \"nothing/*.py\" }",
            "matrix key `f` has no values: matches no file git tracks at `HEAD`",
        ),
        (
            "{ glob = \"tests/[\" }",
            "matrix key `f`: `tests/[` is not a glob",
        ),
        (
            "{ lines = \"missing.txt\" }",
            "matrix key `f` cannot read its values: read",
        ),
        (
            "{ glob = \"*\", lines = \"targets.txt\" }",
            "it needs exactly one of `glob` or `lines`",
        ),
        ("{ files = \"x\" }", "unknown field `files`"),
    ] {
        let bad = repo.plan(
            "bad.toml",
            &format!(
                "{HEADER}[[task]]\nid = \"t-{{f}}\"\nrun = \"true\"\nmatrix = {{ f = {matrix} }}\n"
            ),
        );
        let out = repo.swarm(&["validate", bad.to_str().unwrap()]);
        out.assert_code(2);
        assert!(out.stderr.contains(says), "{matrix}: {}", out.stderr);
        assert!(
            out.stderr.contains("plans/bad.toml:"),
            "{matrix}: {}",
            out.stderr
        );
    }
}
