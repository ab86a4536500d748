//! CI batches (issue 63): matrices listed from the repository, shards
//! balanced by learned durations, and test-level reports merged from the
//! tasks' own JUnit files.

use crate::support::{Run, TestRepo, redact, snapshot_settings, summary_of};

/// `swarm validate PLAN` with only git in PATH (what it says of this
/// machine's toolchains is not the test's).
fn validate(repo: &TestRepo, plan: &std::path::Path) -> Run {
    let mut cmd = repo.swarm_cmd(&["validate", plan.to_str().unwrap()]);
    crate::sandbox::only_git_in_path(repo, &mut cmd);
    cmd.output().unwrap().into()
}

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
    let validated = validate(&repo, &plan);
    validated.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("glob_matrix_validate", redact(&validated.stdout, &repo));
    });
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
    insta::assert_snapshot!("logs_of_a_glob", redact(&logs.stdout, &repo));
    let none = repo.swarm(&["logs", "g", "lint-*"]);
    none.assert_code(2);
    insta::assert_snapshot!(
        "logs_of_a_glob_matching_nothing",
        redact(&none.stderr, &repo)
    );

    // `--only` too.
    repo.run_plan(&plan, &["--name", "o", "--only", "test-tests-test_*"])
        .assert_code(0);
    let report = repo.report();
    assert_eq!(report["tasks"].as_array().unwrap().len(), 2, "{report}");
    // A file committed since: listed from HEAD, not from the base a run
    // is told to start from.
    repo.write("tests/test_new.py", "# new\n");
    repo.commit_all("a new test");
    repo.run_plan(&plan, &["--name", "b", "--base", "HEAD~1"])
        .assert_code(0);
    assert_eq!(repo.report()["tasks"].as_array().unwrap().len(), 3);
    // (The commit took the untracked test too; the ignored one stays out.)
    repo.run_plan(&plan, &["--name", "h"]).assert_code(0);
    assert_eq!(repo.report()["tasks"].as_array().unwrap().len(), 5);
    let unknown = repo.run_plan(&plan, &["--name", "u", "--only", "lint-*"]);
    unknown.assert_code(2);
    insta::assert_snapshot!(
        "only_a_glob_matching_nothing",
        redact(&unknown.stderr, &repo)
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
    let validated = validate(&repo, &plan);
    validated.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("lines_matrix_validate", redact(&validated.stdout, &repo));
    });
    repo.run_plan(&plan, &["--name", "l"]).assert_code(0);
    assert_eq!(repo.show("swarm/l", "beta.txt").trim(), "beta");

    // Each plan's errors, one after the other, snapshotted together.
    let mut errors = String::new();
    for matrix in [
        "{ glob = \"nothing/*.py\" }",
        "{ glob = \"tests/[\" }",
        "{ lines = \"missing.txt\" }",
        "{ glob = \"*\", lines = \"targets.txt\" }",
        "{ files = \"x\" }",
    ] {
        let bad = repo.plan(
            "bad.toml",
            &format!(
                "{HEADER}[[task]]\nid = \"t-{{f}}\"\nrun = \"true\"\nmatrix = {{ f = {matrix} }}\n"
            ),
        );
        let out = repo.swarm(&["validate", bad.to_str().unwrap()]);
        out.assert_code(2);
        errors.push_str(&format!("$ swarm validate bad.toml\n{}\n", out.stderr));
    }
    insta::assert_snapshot!("bad_matrix_sources", redact(&errors, &repo));
}

/// The `[swarm]` of a sandboxed plan that runs `pytest` (the one of
/// tests/python-tools): its virtual environment and the Python it was made
/// from are granted for reading, as a user grants a tool outside the
/// system's directories.
fn pytest_swarm(pytest: &std::path::Path) -> String {
    let venv = pytest.parent().unwrap().parent().unwrap();
    let base = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", "import sys; print(sys.base_prefix)"])
        .output()
        .unwrap();
    let base = String::from_utf8(base.stdout).unwrap();
    format!(
        "[swarm]\non_failure = \"continue\"\nread_paths = [\"{}\", \"{}\"]\n\n",
        venv.display(),
        base.trim()
    )
}

/// A small real pytest suite: two files, one test failing, one skipped.
fn pytest_suite() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", "__pycache__/\n.pytest_cache/\n");
    repo.write(
        "tests/test_math.py",
        "def test_add():\n    assert 1 + 1 == 2\n\ndef test_mul():\n    assert 2 * 3 == 6\n\ndef test_sub():\n    assert 3 - 1 == 2\n",
    );
    repo.write(
        "tests/test_text.py",
        "import pytest\n\ndef test_upper():\n    assert 'a'.upper() == 'A'\n\ndef test_bad():\n    assert 'a' * 2 == 'aaa', 'doubled'\n\n@pytest.mark.skip(reason='not here')\ndef test_later():\n    pass\n",
    );
    repo.commit_all("a suite");
    repo
}

#[test]
fn each_tasks_own_junit_is_merged_test_by_test_counted_and_its_failing_test_named() {
    let pytest = crate::support::python_tool("pytest");
    let repo = pytest_suite();
    // Read-only tasks (they check, they change nothing), each writing its
    // report in its own tmp; sandboxed as any task.
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{}[[task]]\nid = \"test-{{file}}\"\nisolation = \"readonly\"\n\
             run = \"PYTHONDONTWRITEBYTECODE=1 {} -q -p no:cacheprovider {{file}} --junitxml=$TMPDIR/report.xml\"\n\
             junit = \"$TMPDIR/report.xml\"\nmatrix = {{ file = {{ glob = \"tests/test_*.py\" }} }}\n",
            pytest_swarm(&pytest),
            pytest.display()
        ),
    );
    let junit = repo.root().join("run.xml");
    let run = repo.run_plan(&plan, &["--name", "j", "--junit", junit.to_str().unwrap()]);
    run.assert_code(1);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run j: finished with failures (exit 1)
          task                     status          time  try  changed  result
          test-tests-test_math-py  succeeded      [T]s    1        0  
          test-tests-test_text-py  failed         [T]s    1        0  exited with code 1

          0 merged, 1 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          tests: 4 passed, 1 failed, 1 skipped in 2 tasks
            failed: tests.test_text::test_bad (in test-tests-test_text-py)
          no branch (read-only run), [T]s
          test-tests-test_text-py: exited with code 1
          test-tests-test_text-py log: .swarm/runs/j/logs/test-tests-test_text-py/1.err
        "));
    let report = repo.report();
    let text = crate::support::task(&report, "test-tests-test_text-py");
    assert_eq!(text["tests"]["passed"], 1);
    assert_eq!(text["tests"]["failed"], 1);
    assert_eq!(text["tests"]["skipped"], 1);

    // The run's JUnit: a suite per task, a case per test, the failure's
    // message and text; the passing task's suite all passed.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="test-tests-test_text-py" tests="3" skipped="1" errors="0" failures="1""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuite name="test-tests-test_math-py" tests="3" skipped="0" errors="0" failures="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="test_bad" classname="tests.test_text""#),
        "{xml}"
    );
    assert!(xml.contains("AssertionError: doubled"), "{xml}");
    assert!(
        !xml.contains("swarm run j"),
        "no empty suite of the run: {xml}"
    );
    assert!(xml.contains(r#"<skipped message="not here"/>"#), "{xml}");
    // Valid against the JUnit schema pytest's own tests check with
    // (Jenkins' junit-10.xsd), by a validator from PyPI.
    crate::support::assert_valid_junit(&junit);
    // Every test of the run counted at the top.
    assert!(
        xml.contains(r#"<testsuites name="swarm" tests="6" failures="1""#),
        "{xml}"
    );

    // The HTML page says it too.
    let page = repo.root().join("run.html");
    repo.swarm(&["report", "j", "--html", page.to_str().unwrap()])
        .assert_code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("tests: 4 passed, 1 failed, 1 skipped in 2 tasks; failed: <span class=\"mono\">tests.test_text::test_bad</span> (in test-tests-test_text-py)"),
        "{}",
        &html[..3000.min(html.len())]
    );
}

#[test]
fn a_report_in_the_worktree_is_read_never_committed_and_a_missing_one_is_a_warning() {
    let pytest = crate::support::python_tool("pytest");
    let repo = pytest_suite();
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{HEADER}[[task]]\nid = \"math\"\nrun = \"PYTHONDONTWRITEBYTECODE=1 {} -q -p no:cacheprovider tests/test_math.py --junitxml=report.xml && echo ran > ran.txt\"\n\
             junit = \"report.xml\"\n\n[[task]]\nid = \"none\"\nrun = \"echo x > x.txt\"\njunit = \"missing.xml\"\n\n\
             [[task]]\nid = \"bad\"\nrun = \"echo '<html/>' > r.xml; echo y > y.txt\"\njunit = \"r.xml\"\n",
            pytest.display()
        ),
    );
    let run = repo.run_plan(&plan, &["--name", "w"]);
    run.assert_code(0);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run w: succeeded
          task  status          time  try  changed  result
          math  merged         [T]s    1        1  refs/swarm/w/math
          none  merged         [T]s    1        1  refs/swarm/w/none
          bad   merged         [T]s    1        1  refs/swarm/w/bad

          3 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          tests: 3 passed in 1 task
          branch swarm/w at [HASH], [T]s
          warning: `none` attempt 1: no test report: the task wrote no `missing.xml` (the plan's `junit`)
          warning: `bad` attempt 1: its test report `r.xml` is not JUnit XML: not a JUnit report: its root is <html>, not <testsuites> or <testsuite>
        "));
    // The task's work is merged, its report is not.
    assert_eq!(repo.show("swarm/w", "ran.txt").trim(), "ran");
    let files = repo.git(&["ls-tree", "-r", "--name-only", "swarm/w"]);
    assert!(!files.contains("report.xml"), "{files}");
    let report = repo.report();
    let none = crate::support::task(&report, "none");
    assert_eq!(none["status"], "merged");
    let warnings = none["warnings"].to_string();
    assert!(
        warnings.contains("no test report: the task wrote no `missing.xml` (the plan's `junit`)"),
        "{warnings}"
    );
    let bad = crate::support::task(&report, "bad");
    assert!(
        bad["warnings"].to_string().contains(
            "its test report `r.xml` is not JUnit XML: not a JUnit report: its root is <html>"
        ),
        "{}",
        bad["warnings"]
    );
}

/// A pytest suite of eight files whose times are skewed: one takes 1.2 s,
/// the others 0.2 s each.
fn skewed_suite() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", "__pycache__/\n.pytest_cache/\n");
    for i in 0..8 {
        let secs = if i == 0 { "1.2" } else { "0.2" };
        repo.write(
            &format!("tests/test_{i}.py"),
            &format!("import time\n\ndef test_{i}_one():\n    time.sleep({secs} / 2)\n\ndef test_{i}_two():\n    time.sleep({secs} / 2)\n"),
        );
    }
    repo.commit_all("a skewed suite");
    repo
}

/// What `swarm validate` says of a plan up to its toolchains: its
/// header, matrices and shards. (The toolchains found on this machine,
/// and the pytest granted by its path, are the machine's.)
fn plan_said(stdout: &str) -> String {
    stdout
        .lines()
        .take_while(|l| {
            !["toolchain", "read_paths", "worktrees", "weakens"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// [`snapshot_settings`], and the shards' times `swarm validate` expects
/// from the durations measured by earlier runs (they differ from run to
/// run, and so may the number of entries that balance them).
fn measured_settings() -> insta::Settings {
    let mut settings = snapshot_settings();
    settings.add_filter(r"\d+ \(\d+\.\d s\)", "[N] ([T] s)");
    settings.add_filter(r"expected \d+\.\d s", "expected [T] s");
    settings.add_filter(r"longest/mean (\d)\.\d\d", "longest/mean $1.[XX]");
    settings
}

/// The `task_sharded` line of run `run`'s journal.
fn sharded_line(repo: &TestRepo, run: &str) -> String {
    let journal =
        std::fs::read_to_string(repo.path().join(format!(".swarm/runs/{run}/events.jsonl")))
            .unwrap();
    journal
        .lines()
        .find(|l| l.contains("task_sharded"))
        .unwrap()
        .to_string()
}

/// The shards' times of run `run`'s report, by id.
fn shard_times(repo: &TestRepo) -> Vec<(String, u64)> {
    let report = repo.report();
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["duration_ms"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_file_longer_than_a_mean_shard_is_split_by_the_tests_its_shards_list_and_each_runs_once() {
    let pytest = crate::support::python_tool("pytest");
    let repo = TestRepo::new();
    repo.write(".gitignore", "__pycache__/\n.pytest_cache/\n");
    let big = |n: usize| -> String {
        (0..n)
            .map(|i| format!("def test_big_{i}():\n    time.sleep(1.0)\n\n"))
            .collect::<String>()
    };
    repo.write("tests/test_big.py", &format!("import time\n\n{}", big(8)));
    for name in ["a", "b"] {
        repo.write(
            &format!("tests/test_{name}.py"),
            &format!("def test_{name}():\n    pass\n"),
        );
    }
    repo.commit_all("a suite with one long file");
    let py = format!(
        "PYTHONDONTWRITEBYTECODE=1 {} -q -p no:cacheprovider",
        pytest.display()
    );
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{}[[task]]\nid = \"pytest\"\nisolation = \"readonly\"\nshards = 2\n\
             run = \"{py} {{entries}} --junitxml=$TMPDIR/report.xml\"\n\
             list_tests = \"{py} --collect-only {{entries}}\"\n\
             junit = \"$TMPDIR/report.xml\"\nmatrix = {{ file = {{ glob = \"tests/test_*.py\" }} }}\n",
            pytest_swarm(&pytest),
        ),
    );
    // Nothing learned yet: whole files, by count. The long file (8 s)
    // is then worth splitting in two while a shard's start-up, what each
    // part pays again to list the tests, is under about 3.5 s. (With 4 s,
    // under 1.6 s: a sandboxed pytest's start-up measured on a loaded
    // machine passed that, and the file was rightly left whole.)
    repo.run_plan(&plan, &["--name", "first"]).assert_code(0);
    // A test added since: no run has seen it, and it must still run.
    repo.write(
        "tests/test_big.py",
        &format!("import time\n\n{}def test_new():\n    pass\n", big(8)),
    );
    repo.commit_all("one more test");
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    measured_settings()
        .bind(|| insta::assert_snapshot!(redact(&plan_said(&validate.stdout), &repo), @"
        [TMP]/plans/p.toml: ok: 1 task (1 sharded into 2: 2 tasks run), 1 without dependencies, longest chain 1, base HEAD ([HASH])
        matrix            pytest `file`: 3 values from the glob `tests/test_*.py` (tests/test_a.py, tests/test_b.py, tests/test_big.py)
        shards            pytest: 3 entries in 2 tasks (pytest-1 ...): [N] ([T] s) + [N] ([T] s) (balanced by the durations of earlier runs); expected [T] s, longest/mean 1.[XX]
                          tests/test_big.py: longer than a mean shard, split in 2 parts by the tests `list_tests` lists
        "));
    let junit = repo.path().join("junit.xml");
    let second = repo.run_plan(
        &plan,
        &["--name", "second", "--junit", junit.to_str().unwrap()],
    );
    second.assert_code(0);
    // Each of the eleven tests ran once: none twice, none left out.
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&second.stderr), &repo), @"
        run second: succeeded
          task      status          time  try  changed  result
          pytest-1  succeeded      [T]s    1        0  
          pytest-2  succeeded      [T]s    1        0  

          0 merged, 2 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          tests: 11 passed in 2 tasks
          no branch (read-only run), [T]s
        "));
    let xml = std::fs::read_to_string(&junit).unwrap();
    for name in ["test_new", "test_big_0", "test_big_7", "test_a", "test_b"] {
        assert_eq!(
            xml.matches(&format!("name=\"{name}\"")).count(),
            1,
            "{name}: {xml}"
        );
    }
    // The long file's tests are in both shards, by the journaled parts.
    let sharded = &sharded_line(&repo, "second");
    let shards = serde_json::from_str::<serde_json::Value>(sharded).unwrap()["shards"].clone();
    let parts: Vec<&str> = shards
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g.as_array().unwrap())
        .filter_map(|e| e.as_str())
        .filter(|e| e.starts_with("tests/test_big.py\u{1f}"))
        .collect();
    assert_eq!(parts.len(), 2, "{sharded}");
    for shard in ["pytest-1", "pytest-2"] {
        let log = repo.swarm(&["logs", "second", shard]);
        assert!(log.stdout.contains(" passed"), "{shard}: {}", log.stdout);
    }
}

/// The times the repository's duration history learned for `entry` of
/// sharded task `task`, oldest first (a panic with the history if none).
fn learned_ms(repo: &TestRepo, task: &str, entry: &str) -> Vec<u64> {
    let history = durations(repo);
    let id = format!("{task}\u{1f}{entry}");
    let found = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["task"] == id.as_str())
        .unwrap_or_else(|| panic!("no {id} in {history:#}"));
    found["ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ms| ms.as_u64().unwrap())
        .collect()
}

/// The repository's duration history (`.swarm/durations.json`) as JSON.
fn durations(repo: &TestRepo) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo.path().join(".swarm/durations.json")).unwrap(),
    )
    .unwrap()
}

/// The words a nextest command of a shard turns `{entries}` into: a whole
/// file (`tests/big.rs`) its test binary, a test a part lists
/// (`tests/big.rs::slow_1`) that test of it (as the book's recipe).
pub(crate) const NEXTEST_FILTERS: &str = r#"$(for e in {entries}; do f=${e%%::*}; b=${f##*/}; b=${b%.rs}; case $e in *::*) printf -- "-E binary(=%s)&test(=%s) " "$b" "${e#*::}";; *) printf -- "-E binary(=%s) " "$b";; esac; done)"#;

#[test]
fn a_long_rust_test_file_is_split_by_the_tests_cargo_nextest_lists_and_each_runs_once() {
    let nextest = crate::flaky_tests::cargo_nextest();
    // What is tested here is the book's recipe.
    let book = include_str!("../../book/src/results.md");
    assert_eq!(
        book.matches(NEXTEST_FILTERS).count(),
        1,
        "results.md's recipe"
    );
    let repo = TestRepo::new();
    crate::toolchains::write_crate(&repo);
    repo.write(
        ".config/nextest.toml",
        "[profile.default.junit]\npath = \"junit.xml\"\n",
    );
    // Eight tests of 2 s, which nextest runs two at a time (two test
    // threads, as its default gives a 2-core machine): a file of 8 s as
    // it runs, 16 s summed. Split in two, each part pays nextest's start
    // and its listing, which must leave the split 10% better: it is while
    // a start-up is under about 2.9 s (0.7 s on an idle machine, a
    // pytest's was seen at 1.9 s beside four other tests).
    let slow = |n: usize| -> String {
        (0..n)
            .map(|i| {
                format!(
                    "#[test]\nfn slow_{i}() {{\n    std::thread::sleep(std::time::Duration::from_millis(2000));\n}}\n\n"
                )
            })
            .collect()
    };
    repo.write("tests/big.rs", &slow(8));
    for name in ["a", "b"] {
        repo.write(
            &format!("tests/{name}.rs"),
            &format!("#[test]\nfn {name}() {{\n    assert_eq!(tiny::one(), 1);\n}}\n"),
        );
    }
    repo.commit_all("a crate with one long test file");
    let cargo = crate::toolchains::cargo_home(&repo);
    let nextest = nextest.display();
    let plan_of = |shards: usize| {
        repo.plan(
        "n.toml",
        &format!(
            "[swarm]\non_failure = \"continue\"\n\n\
             [[task]]\nid = \"nextest\"\nallow_overlap = true\nshards = {shards}\n\
             matrix = {{ file = {{ glob = \"tests/*.rs\" }} }}\n\
             run = '{nextest} nextest run --offline --no-fail-fast --test-threads 2 {NEXTEST_FILTERS}'\n\
             list_tests = '{nextest} nextest list --offline --message-format oneline $(for f in {{entries}}; do b=${{f##*/}}; printf -- \"--test %s \" \"${{b%.rs}}\"; done)'\n\
             junit = \"target/nextest/default/junit.xml\"\n"
        ),
    )
    };
    let swarm = |args: &[&str]| crate::toolchains::swarm_with_cargo(&repo, &cargo, args);
    // One shard first, which runs the long file whole. The first run
    // builds the shard's (warm) target directory, so its start-up says
    // little of what a listing costs; the second learns it.
    let plan = plan_of(1);
    for name in ["first", "second"] {
        let run = swarm(&["run", plan.to_str().unwrap(), "--name", name]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    // What the long file takes is learned as its tests ran, on nextest's
    // threads (it says when each began): about 8 s, where their times
    // sum to 16 s. Taken as their sum, a part (which pays nextest's start and
    // its listing) looked free beside it.
    let learned = learned_ms(&repo, "nextest", "tests/big.rs");
    // The second run's (the first one's shards built their target
    // directories too).
    assert!(learned.last().is_some_and(|&ms| ms < 12_000), "{learned:?}");
    // It ran whole, and long enough to be split later: each of its tests'
    // times is kept, in its list's order, for its first split to deal
    // them (without, its first parts were cut as if its tests took alike).
    let history = durations(&repo);
    let profile = history["profiles"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["task"] == "nextest\u{1f}tests/big.rs"))
        .unwrap_or_else(|| panic!("no profile of tests/big.rs in {history:#}"));
    // And on how many threads nextest ran a shard's tests, by when each
    // began: its two, each run. A shard is judged by that from here.
    let threads = history["entries"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|e| e["task"] == "nextest\u{1f}" && e["hash"] == "threads")
        })
        .unwrap_or_else(|| panic!("no threads of nextest in {history:#}"));
    assert_eq!(threads["ms"], serde_json::json!([2, 2]), "{threads:#}");
    assert_eq!(profile["tests"], 8, "{profile:#}");
    assert_eq!(profile["by_test"], true, "{profile:#}");
    let segments = profile["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 8, "{profile:#}");
    // Each a test of 2 s (on a loaded machine more, never less).
    assert!(
        segments.iter().all(|s| s[2].as_u64().unwrap() >= 1_900),
        "{profile:#}"
    );
    // Two shards from here: the long file's first split deals those tests.
    let plan = plan_of(2);
    // A test added since: no run has seen it, and it must still run.
    repo.write(
        "tests/big.rs",
        &format!("{}#[test]\nfn new_one() {{}}\n", slow(8)),
    );
    repo.commit_all("one more test");
    let validate = swarm(&["validate", plan.to_str().unwrap()]);
    measured_settings()
        .bind(|| insta::assert_snapshot!(redact(&plan_said(&validate.stdout), &repo), @"
        [TMP]/plans/n.toml: ok: 1 task (1 sharded into 2: 2 tasks run), 1 without dependencies, longest chain 1, base HEAD ([HASH])
        matrix            nextest `file`: 3 values from the glob `tests/*.rs` (tests/a.rs, tests/b.rs, tests/big.rs)
        shards            nextest: 3 entries in 2 tasks (nextest-1 ...): [N] ([T] s) + [N] ([T] s) (balanced by the durations of earlier runs); expected [T] s, longest/mean 1.[XX]
                          tests/big.rs: longer than a mean shard, split in 2 parts by the tests `list_tests` lists
        "));
    let junit = repo.path().join("junit.xml");
    let third = swarm(&[
        "run",
        plan.to_str().unwrap(),
        "--name",
        "third",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    // Of the two short files, one now runs in the second shard: which one
    // turns on their times as learned here, a few milliseconds apart.
    let summary = redact(summary_of(&third.stderr), &repo)
        .replace("(tests/a.rs)", "(tests/[a or b].rs)")
        .replace("(tests/b.rs)", "(tests/[a or b].rs)");
    snapshot_settings().bind(|| insta::assert_snapshot!(summary, @r#"
    run third: succeeded
      task       status          time  try  changed  result
      nextest-1  merged         [T]s    1        0  refs/swarm/third/nextest-1
      nextest-2  merged         [T]s    1        0  refs/swarm/third/nextest-2

      2 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      tests: 11 passed in 2 tasks
      branch swarm/third at [HASH], [T]s
      warning: `nextest-1` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
      warning: `nextest-2` regrouped: 1 of its entries ran in another shard last run (tests/[a or b].rs); a test that fails only now may depend on what ran before it (`shard_grouping = "pinned"` keeps a grouping)
      warning: `nextest-2` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
    "#));
    // Each of the eleven tests ran once: none twice, none left out.
    let xml = std::fs::read_to_string(&junit).unwrap();
    for name in ["new_one", "slow_0", "slow_7", "a", "b"] {
        assert_eq!(
            xml.matches(&format!("name=\"{name}\"")).count(),
            1,
            "{name}: {xml}"
        );
    }
    crate::support::assert_valid_junit(&junit);
    // And by nextest's own lines: the long file's nine tests ran in both
    // shards (a part each), eleven tests in all. How many in each follows
    // the times learned on this machine (4 and 5 when idle; a machine
    // loaded by other builds learned a.rs and b.rs slower and gave 3 and
    // 6), so only the split is asserted.
    let mut big = Vec::new();
    let mut all = 0;
    for shard in ["nextest-1", "nextest-2"] {
        let log = std::fs::read_to_string(
            repo.path()
                .join(format!(".swarm/runs/third/logs/{shard}/1.err")),
        )
        .unwrap();
        let passed: Vec<&str> = log.lines().filter(|l| l.contains(" PASS [")).collect();
        big.push(passed.iter().filter(|l| l.contains("tiny::big ")).count());
        all += passed.len();
    }
    assert!(big.iter().all(|&n| n > 0), "{big:?}");
    assert_eq!((big.iter().sum::<usize>(), all), (9, 11));
}

#[test]
fn shards_are_balanced_by_the_durations_learned_from_the_tests_own_reports() {
    let pytest = crate::support::python_tool("pytest");
    let repo = skewed_suite();
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{}[[task]]\nid = \"pytest\"\nisolation = \"readonly\"\nshards = 2\n\
             run = \"PYTHONDONTWRITEBYTECODE=1 {} -q -p no:cacheprovider {{entries}} --junitxml=$TMPDIR/report.xml\"\n\
             junit = \"$TMPDIR/report.xml\"\nmatrix = {{ file = {{ glob = \"tests/test_*.py\" }} }}\n\n\
             [[task]]\nid = \"after\"\ndeps = [\"pytest\"]\nisolation = \"readonly\"\nrun = \"true\"\n",
            pytest_swarm(&pytest),
            pytest.display()
        ),
    );
    // Nothing learned yet: by count, four files each (dealt in turn); the
    // one with the slow file takes much longer.
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    validate.assert_code(0);
    measured_settings()
        .bind(|| insta::assert_snapshot!(redact(&plan_said(&validate.stdout), &repo), @"
        [TMP]/plans/p.toml: ok: 2 tasks (1 sharded into 2: 3 tasks run), 1 without dependencies, longest chain 2, base HEAD ([HASH])
        matrix            pytest `file`: 8 values from the glob `tests/test_*.py` (tests/test_0.py, tests/test_1.py, tests/test_2.py, …)
        shards            pytest: 8 entries in 2 tasks (pytest-1 ...): 4 + 4 (no durations known yet: grouped by count)
        "));
    let first = repo.run_plan(&plan, &["--name", "first"]);
    first.assert_code(0);
    // The run's `shards` line (the shards' own lines come in either
    // order), and its summary.
    let shards_line: String = first
        .stderr
        .lines()
        .filter(|l| l.starts_with("  shards "))
        .map(|l| format!("{l}\n"))
        .collect();
    let said = format!("{shards_line}\n{}", summary_of(&first.stderr));
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&said, &repo), @"
      shards     pytest    8 entries in 2 tasks (4 + 4)

    run first: succeeded
      task      status          time  try  changed  result
      pytest-1  succeeded      [T]s    1        0  
      pytest-2  succeeded      [T]s    1        0  
      after     succeeded      [T]s    1        0  

      0 merged, 3 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      tests: 16 passed in 2 tasks
      no branch (read-only run), [T]s
    ")
    });
    // The dependent waited for every shard.
    let report = repo.report();
    let after = crate::support::task(&report, "after");
    assert_eq!(after["deps"], serde_json::json!(["pytest-1", "pytest-2"]));
    let journal =
        std::fs::read_to_string(repo.path().join(".swarm/runs/first/events.jsonl")).unwrap();
    assert!(
        journal.contains(r#""task_sharded","task":"pytest","shards":[["tests/test_0.py","tests/test_2.py","tests/test_4.py","tests/test_6.py"],["tests/test_1.py","tests/test_3.py","tests/test_5.py","tests/test_7.py"]]"#),
        "{journal}"
    );

    // The second run knows each file's time from the reports: the slow
    // file's shard gets fewer of the rest.
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    measured_settings()
        .bind(|| insta::assert_snapshot!(redact(&plan_said(&validate.stdout), &repo), @"
        [TMP]/plans/p.toml: ok: 2 tasks (1 sharded into 2: 3 tasks run), 1 without dependencies, longest chain 2, base HEAD ([HASH])
        matrix            pytest `file`: 8 values from the glob `tests/test_*.py` (tests/test_0.py, tests/test_1.py, tests/test_2.py, …)
        shards            pytest: 8 entries in 2 tasks (pytest-1 ...): [N] ([T] s) + [N] ([T] s) (balanced by the durations of earlier runs); expected [T] s, longest/mean 1.[XX]
        "));
    // The grouping's own estimate, from what the first run learned (the
    // slow file's 1.2 s against 0.2 s for each other): the shards end
    // within 20% of each other. What they take on this run is the
    // machine's moment as much as the grouping's (a busy machine moved it
    // past 20% once): BENCHMARKS section 28 measures it, not this test.
    let estimate: f64 = validate
        .stdout
        .split("longest/mean ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|ratio| ratio.parse().ok())
        .unwrap_or_else(|| panic!("no longest/mean in: {}", validate.stdout));
    assert!(
        estimate <= 1.2,
        "longest/mean {estimate}: {}",
        validate.stdout
    );
    repo.run_plan(&plan, &["--name", "second"]).assert_code(0);
    let times: Vec<u64> = shard_times(&repo)
        .into_iter()
        .filter(|(id, _)| id.starts_with("pytest-"))
        .map(|(_, ms)| ms)
        .collect();
    assert_eq!(times.len(), 2);
    eprintln!("the shards' times on the second run: {times:?}");
    let sharded = &sharded_line(&repo, "second");
    assert!(
        sharded.contains(r#"["tests/test_0.py","#)
            && !sharded.contains(
                r#"["tests/test_0.py","tests/test_2.py","tests/test_4.py","tests/test_6.py"]"#
            ),
        "{sharded}"
    );
    // What moved is said on the shards it moved to, in case a test fails
    // only in its new company.
    let report = repo.report();
    let warned: Vec<&serde_json::Value> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["warnings"].as_array().into_iter().flatten())
        .filter(|w| w.as_str().is_some_and(|w| w.starts_with("regrouped: ")))
        .collect();
    assert!(!warned.is_empty(), "{report:#}");

    // `validate` says what the longest shard is expected to take; a
    // pinned grouping is the last run's whatever was learned since (the
    // default, `stable`, moves entries only for a gain of more than 10%,
    // which the unit tests show: here it would hang on the times taken).
    let pinned = std::fs::read_to_string(&plan).unwrap().replace(
        "shards = 2
",
        "shards = 2
shard_grouping = \"pinned\"
",
    );
    let plan = repo.plan("pinned.toml", &pinned);
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    measured_settings()
        .bind(|| insta::assert_snapshot!(redact(&plan_said(&validate.stdout), &repo), @"
        [TMP]/plans/pinned.toml: ok: 2 tasks (1 sharded into 2: 3 tasks run), 1 without dependencies, longest chain 2, base HEAD ([HASH])
        matrix            pytest `file`: 8 values from the glob `tests/test_*.py` (tests/test_0.py, tests/test_1.py, tests/test_2.py, …)
        shards            pytest: 8 entries in 2 tasks (pytest-1 ...): [N] ([T] s) + [N] ([T] s) (balanced by the durations of earlier runs); expected [T] s, longest/mean 1.[XX]
        "));
    repo.run_plan(&plan, &["--name", "third"]).assert_code(0);
    let third =
        std::fs::read_to_string(repo.path().join(".swarm/runs/third/events.jsonl")).unwrap();
    let kept = third.lines().find(|l| l.contains("task_sharded")).unwrap();
    let shards = |line: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(line).unwrap()["shards"].clone()
    };
    assert_eq!(shards(kept), shards(sharded), "{kept}");
    assert!(!kept.contains("moved"), "{kept}");
}

/// A shard's time beyond its tests' (what collecting its files cost) is
/// learned as its files' in proportion to their sizes: of a shard holding
/// a large file beside a small one, the large one's collection. Each
/// test sleeps alike, so an even share would learn both files alike.
#[test]
fn a_shards_collection_is_learned_as_its_files_by_their_sizes() {
    let pytest = crate::support::python_tool("pytest");
    let repo = TestRepo::new();
    repo.write(".gitignore", "__pycache__/\n.pytest_cache/\n");
    let test = "import time\n\ndef test_it():\n    time.sleep(0.05)\n";
    for i in 1..4 {
        repo.write(&format!("tests/test_{i}.py"), test);
    }
    // About 240 KB of source: Python takes a moment to compile it (no
    // bytecode is written), which its shard's test report does not time.
    let helpers: String = (0..4000)
        .map(|i| format!("def helper_{i}(x):\n    return [x + {i} for _ in range(3)]\n\n"))
        .collect();
    repo.write("tests/test_0.py", &format!("{test}\n{helpers}"));
    repo.commit_all("a suite with a large file");
    // By count: tests/test_0.py and test_2.py in the first shard.
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{}[[task]]\nid = \"pytest\"\nisolation = \"readonly\"\nshards = 2\n\
             run = \"PYTHONDONTWRITEBYTECODE=1 {} -q -p no:cacheprovider {{entries}} --junitxml=$TMPDIR/report.xml\"\n\
             junit = \"$TMPDIR/report.xml\"\nmatrix = {{ file = {{ glob = \"tests/test_*.py\" }} }}\n",
            pytest_swarm(&pytest),
            pytest.display()
        ),
    );
    repo.run_plan(&plan, &["--name", "learn"]).assert_code(0);
    let learned = |file: &str| learned_ms(&repo, "pytest", &format!("tests/{file}"))[0];
    let (large, small) = (learned("test_0.py"), learned("test_2.py"));
    // The first shard's collection went almost all (240 of its 244 KiB
    // with the floor) to the large file; the same 50 ms test in each.
    assert!(
        large > small + 40,
        "test_0.py learned {large} ms, test_2.py {small} ms"
    );
}

/// `affected = true`: each shard runs only the entries the run's changes
/// (its dependency's merge) touched, and says the rest skipped by
/// selection; a change to a path that is no entry (source) runs them all,
/// unless the plan's `affects` names what it runs.
#[test]
fn a_sharded_task_with_affected_runs_only_the_entries_the_run_changed() {
    let pytest = crate::support::python_tool("pytest");
    let repo = TestRepo::new();
    repo.write(".gitignore", "__pycache__/\n.pytest_cache/\n");
    for name in ["a", "b", "c", "d"] {
        repo.write(
            &format!("tests/test_{name}.py"),
            &format!("def test_{name}():\n    assert True\n"),
        );
    }
    repo.write("src/helper.py", "X = 1\n");
    repo.commit_all("a suite");
    // Nothing learned: by count, test_a and test_c in the first shard, and
    // kept there (what a run learns would regroup them).
    let plan = |edit: &str| {
        format!(
            "{}[[task]]\nid = \"edit\"\nrun = \"{edit}\"\n\n\
             [[task]]\nid = \"pytest\"\ndeps = [\"edit\"]\nisolation = \"readonly\"\n\
             shards = 2\nshard_grouping = \"pinned\"\naffected = true\n\
             run = \"PYTHONDONTWRITEBYTECODE=1 {} -q -p no:cacheprovider {{entries}} --junitxml=$TMPDIR/report.xml\"\n\
             junit = \"$TMPDIR/report.xml\"\nmatrix = {{ file = {{ glob = \"tests/test_*.py\" }} }}\n",
            pytest_swarm(&pytest),
            pytest.display()
        )
    };
    let tests = "printf 'def test_b_more():\\\\n    assert True\\\\n' >> tests/test_b.py";
    let only_tests = repo.plan("tests.toml", &plan(tests));
    let junit = repo.root().join("run.xml");
    let run = repo.run_plan(
        &only_tests,
        &["--name", "tests", "--junit", junit.to_str().unwrap()],
    );
    run.assert_code(0);
    // The merged JUnit names each entry skipped by selection, skipped.
    crate::support::assert_valid_junit(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        xml.matches(r#"classname="swarm.selection""#).count(),
        3,
        "{xml}"
    );
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run tests: succeeded
          task      status          time  try  changed  result
          edit      merged         [T]s    1        1  refs/swarm/tests/edit
          pytest-1  succeeded      [T]s    1        0  
          pytest-2  succeeded      [T]s    1        0  

          1 merged, 2 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          tests: 2 passed in 2 tasks; 3 entries not affected by the run's changes skipped (`affected`)
          branch swarm/tests at [HASH], [T]s
        ");
    });
    let report = repo.report();
    // The runner's own report: only test_b's tests ran.
    assert_eq!(
        [said_of(&report, "pytest-1"), said_of(&report, "pytest-2")],
        [
            r#"pytest-1: ran [], skipped by selection ["tests/test_a.py","tests/test_c.py"]"#,
            r#"pytest-2: ran ["test_b", "test_b_more"], skipped by selection ["tests/test_d.py"]"#,
        ]
    );
    // Source changed: any test may depend on it, so every entry runs.
    let source = repo.plan("source.toml", &plan("echo 'X = 2' > src/helper.py"));
    repo.run_plan(&source, &["--name", "source"]).assert_code(0);
    let report = repo.report();
    assert_eq!(
        [said_of(&report, "pytest-1"), said_of(&report, "pytest-2")],
        [
            r#"pytest-1: ran ["test_a", "test_c"], skipped by selection null"#,
            r#"pytest-2: ran ["test_b", "test_d"], skipped by selection null"#,
        ]
    );
    // Unless the plan says what that source affects (and docs nothing).
    let said = plan("echo 'X = 3' > src/helper.py && mkdir -p docs && echo hi > docs/a.md").replace(
        "affected = true\n",
        "affected = true\naffects = { \"docs/**\" = [], \"src/*.py\" = [\"tests/test_c.py\"] }\n",
    );
    let said = repo.plan("said.toml", &said);
    repo.run_plan(&said, &["--name", "said"]).assert_code(0);
    let report = repo.report();
    assert_eq!(
        [said_of(&report, "pytest-1"), said_of(&report, "pytest-2")],
        [
            r#"pytest-1: ran ["test_c"], skipped by selection ["tests/test_a.py"]"#,
            r#"pytest-2: ran [], skipped by selection ["tests/test_b.py","tests/test_d.py"]"#,
        ]
    );
    // Without a test report of its own, what a shard left out is still
    // said (and its time not learned as its entries').
    let unreported = plan(tests).replace("junit = \"$TMPDIR/report.xml\"\n", "");
    let unreported = repo.plan("unreported.toml", &unreported);
    let run = repo.run_plan(&unreported, &["--name", "unreported"]);
    run.assert_code(0);
    let report = repo.report();
    assert_eq!(
        [said_of(&report, "pytest-1"), said_of(&report, "pytest-2")],
        [
            r#"pytest-1: ran [], skipped by selection ["tests/test_a.py","tests/test_c.py"]"#,
            r#"pytest-2: ran [], skipped by selection ["tests/test_d.py"]"#,
        ]
    );
}

/// What shard `id` of `report` ran (its test cases, by name) and skipped
/// by selection.
pub fn said_of(report: &serde_json::Value, id: &str) -> String {
    let tests = &crate::support::task(report, id)["tests"];
    let cases: Vec<serde_json::Value> =
        std::fs::read_to_string(tests["cases"].as_str().unwrap_or(""))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
    let ran: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    format!(
        "{id}: ran {ran:?}, skipped by selection {}",
        tests["selected_out"]
    )
}

#[test]
fn a_shards_entries_reach_its_command_quoted_and_in_a_file_and_resume_runs_the_same_shards() {
    let repo = TestRepo::new();
    for name in ["a b.txt", "c.txt", "d.txt", "e.txt", "f.txt"] {
        repo.write(&format!("data/{name}"), "x\n");
    }
    repo.commit_all("data");
    let marker = repo.root().join("fail-now");
    std::fs::write(&marker, "").unwrap();
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{HEADER}[[task]]\nid = \"count\"\nshards = \"auto\"\n\
             run = \"test ! -e {} && for f in {{entries}}; do echo \\\"$f\\\"; done > args-$SWARM_TASK.txt && cp $SWARM_ENTRIES list-$SWARM_TASK.txt\"\n\
             matrix = {{ f = {{ glob = \"data/*.txt\" }} }}\n",
            marker.display()
        ),
    );
    // Two at once: "auto" makes two shards of the five entries.
    let run = repo.run_plan(&plan, &["--name", "s", "--concurrency", "2"]);
    run.assert_code(1);
    let ids: Vec<String> = shard_times(&repo).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["count-1", "count-2"]);

    // `--only` names a shard as any task.
    repo.run_plan(&plan, &["--name", "one", "--only", "count-2"])
        .assert_code(1);
    assert_eq!(shard_times(&repo).len(), 1);
    // Resumed after its durations are forgotten and with one slot only:
    // the journal's shards run, not a new grouping.
    std::fs::remove_file(&marker).unwrap();
    let _ = std::fs::remove_file(repo.path().join(".swarm/durations.json"));
    let resumed = repo.swarm(&["resume", "s", "--retry-failed", "--concurrency", "1"]);
    resumed.assert_code(0);
    let args = repo.show("swarm/s", "args-count-1.txt");
    let list = repo.show("swarm/s", "list-count-1.txt");
    assert_eq!(args, list, "{{entries}} and $SWARM_ENTRIES name the same");
    assert_eq!(list, "data/a b.txt\ndata/d.txt\ndata/f.txt");
    assert_eq!(
        repo.show("swarm/s", "list-count-2.txt"),
        "data/c.txt\ndata/e.txt"
    );
}

#[test]
fn a_sharded_task_says_what_it_lacks() {
    let repo = TestRepo::new();
    // Each plan's errors, one after the other, snapshotted together.
    let mut errors = String::new();
    for task in [
        "id = \"s\"\nrun = \"true\"\nshards = 2\n",
        "id = \"s\"\nrun = \"echo {f}\"\nshards = 2\nmatrix = { f = [\"a\", \"b\"] }\n",
        "id = \"s\"\nrun = \"true\"\nshards = \"many\"\nmatrix = { f = [\"a\"] }\n",
        "id = \"s-{f}\"\nrun = \"true\"\nshards = 2\nmatrix = { f = [\"a\"] }\n",
    ] {
        let plan = repo.plan("p.toml", &format!("{HEADER}[[task]]\n{task}"));
        let out = repo.swarm(&["validate", plan.to_str().unwrap()]);
        out.assert_code(2);
        errors.push_str(&format!("$ swarm validate p.toml\n{}\n", out.stderr));
    }
    insta::assert_snapshot!("sharded_task_errors", redact(&errors, &repo));
}

#[test]
fn runs_past_keep_runs_are_cleaned_when_a_run_ends_and_work_on_no_branch_is_kept() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\nkeep_runs = 2\n\n\
         [[task]]\nid = \"ok\"\nrun = \"echo $SWARM_RUN > ok.txt\"\n\n\
         [[task]]\nid = \"bad\"\nrun = \"echo mine > bad.txt; exit 1\"\n",
    );
    for run in ["r1", "r2"] {
        let out = repo.run_plan(&plan, &["--name", run]);
        out.assert_code(1);
        assert!(!out.stderr.contains("keep_runs"), "{}", out.stderr);
    }
    let third = repo.run_plan(&plan, &["--name", "r3"]);
    third.assert_code(1);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&third.stderr), &repo), @"
        run r3: finished with failures (exit 1)
          task  status          time  try  changed  result
          ok    merged         [T]s    1        1  refs/swarm/r3/ok
          bad   failed         [T]s    1        1  refs/swarm/r3/bad

          1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/r3 at [HASH], [T]s
          bad: exited with code 1
          bad log: .swarm/runs/r3/logs/bad/1.err
          cleaned 1 run past the newest 2 (`[swarm] keep_runs`): [SIZE] freed, 1 merged ref deleted; kept 1 ref and 1 branch holding work no other branch has (`swarm clean --refs RUN` says which)
        "));
    // r1's merged task's ref went (its commit is on swarm/r1), the failed
    // task's work and the unmerged branch stay.
    assert!(!repo.has_rev("refs/swarm/r1/ok"));
    assert!(repo.has_rev("refs/swarm/r1/bad"));
    assert!(repo.has_rev("swarm/r1"));
    assert_eq!(repo.show("swarm/r1", "ok.txt"), "r1");
    assert!(repo.has_rev("refs/swarm/r2/ok"));
    // The next run cleans r2, and leaves r1 as it was.
    let fourth = repo.run_plan(&plan, &["--name", "r4"]);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&fourth.stderr), &repo), @"
        run r4: finished with failures (exit 1)
          task  status          time  try  changed  result
          ok    merged         [T]s    1        1  refs/swarm/r4/ok
          bad   failed         [T]s    1        1  refs/swarm/r4/bad

          1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/r4 at [HASH], [T]s
          bad: exited with code 1
          bad log: .swarm/runs/r4/logs/bad/1.err
          cleaned 1 run past the newest 2 (`[swarm] keep_runs`): [SIZE] freed, 1 merged ref deleted; kept 1 ref and 1 branch holding work no other branch has (`swarm clean --refs RUN` says which)
        "));
    assert!(!repo.has_rev("refs/swarm/r2/ok"));
    assert!(repo.has_rev("refs/swarm/r3/ok") && repo.has_rev("refs/swarm/r4/ok"));
    // Every run is still there to look at.
    let status = repo.swarm(&["status", "r1"]);
    status.assert_code(0);
}
