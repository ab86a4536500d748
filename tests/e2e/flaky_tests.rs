//! Flaky tests and quarantine (issue 77), on real pytest: a shard that
//! fails runs again only its failing tests; a test that failed and then
//! passed is reported flaky, never a plain pass; `flaky = "fail"` makes it
//! gate; a quarantined failing test does not gate until its review day.

use crate::support::{TestRepo, python_tool, redact, snapshot_settings, summary_of};

/// A suite of four files: `test_a` holds a test that fails the first time
/// it runs (it leaves a mark beside the repository, seeded by that file's
/// absence) and passes after; `test_b` a test that always fails;
/// `test_c` a failing test under quarantine; `test_d` one whose quarantine
/// ended.
fn flaky_suite(mark: &std::path::Path) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", "__pycache__/\n.pytest_cache/\n");
    repo.write(
        "tests/test_a.py",
        &format!(
            "import os\n\ndef test_ok():\n    pass\n\n\
             class TestK:\n    def test_flaky(self):\n        mark = {:?}\n        \
             seen = os.path.exists(mark)\n        open(mark, 'a').close()\n        \
             assert seen, 'first run'\n",
            mark.display().to_string()
        ),
    );
    repo.write(
        "tests/test_b.py",
        "def test_fine():\n    pass\n\ndef test_broken():\n    assert False, 'always'\n",
    );
    repo.write(
        "tests/test_c.py",
        "def test_held():\n    assert False, 'known'\n\ndef test_c_fine():\n    pass\n",
    );
    repo.write(
        "tests/test_d.py",
        "def test_lapsed():\n    assert False, 'known too'\n",
    );
    repo.commit_all("a flaky suite");
    repo
}

/// The plan: the suite in four shards (one file each), each retried twice,
/// unsandboxed (the flaky test writes its mark outside its worktree).
fn plan(pytest: &std::path::Path, flaky: &str, glob: &str) -> String {
    format!(
        "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n\
         [[quarantine]]\ntest = \"tests.test_c::test_held\"\nowner = \"@qa\"\n\
         reason = \"https://example.com/issues/7\"\nreview_by = 2999-01-01\n\n\
         [[quarantine]]\ntest = \"tests.test_d::test_lapsed\"\nowner = \"@qa\"\nreason = \"#8\"\n\
         review_by = 2020-01-31\n\n\
         [[task]]\nid = \"pytest\"\nisolation = \"readonly\"\nshards = 4\nretries = 2\n{flaky}\
         matrix = {{ file = {{ glob = \"{glob}\" }} }}\n\
         run = \"PYTHONDONTWRITEBYTECODE=1 {} -q -p no:cacheprovider {{entries}} --junitxml=$TMPDIR/report.xml\"\n\
         junit = \"$TMPDIR/report.xml\"\n",
        pytest.display()
    )
}

/// What attempt `attempt` of `task` in run `run` printed.
fn output(repo: &TestRepo, run: &str, task: &str, attempt: u32) -> String {
    let shown = repo.swarm(&["logs", run, task, "--attempt", &attempt.to_string()]);
    shown.assert_code(0);
    shown.stdout
}

/// The shard of `report` that ran `file`.
fn shard_of(report: &serde_json::Value, file: &str) -> String {
    let shards = report["tasks"].as_array().unwrap();
    let t = shards
        .iter()
        .find(|t| {
            let cases = t["tests"]["cases"].as_str().unwrap_or("");
            std::fs::read_to_string(cases).is_ok_and(|c| c.contains(file))
        })
        .unwrap_or_else(|| panic!("no shard ran {file}: {report:#}"));
    t["id"].as_str().unwrap().to_string()
}

#[test]
fn a_failing_shard_runs_again_only_its_failing_tests_and_a_flaky_one_is_never_a_plain_pass() {
    let pytest = python_tool("pytest");
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("flaky.seen");
    let repo = flaky_suite(&mark);
    let p = repo.plan("p.toml", &plan(&pytest, "", "tests/test_*.py"));
    let junit = repo.root().join("run.xml");
    let run = repo.run_plan(&p, &["--name", "f", "--junit", junit.to_str().unwrap()]);
    // test_b's failure gates, and so does test_d's lapsed quarantine.
    run.assert_code(1);
    let report = repo.report();
    let status = |id: &str| crate::support::task(&report, id)["status"].clone();
    let (a, b, c, d) = (
        shard_of(&report, "test_flaky"),
        shard_of(&report, "test_broken"),
        shard_of(&report, "test_held"),
        shard_of(&report, "test_lapsed"),
    );

    // The flaky test: run again alone (pytest's own word), passed, and the
    // shard succeeded with it counted flaky, not passed.
    assert!(output(&repo, "f", &a, 1).contains("1 failed, 1 passed"));
    let again = output(&repo, "f", &a, 2);
    assert!(
        again.contains("1 passed") && !again.contains("2 passed"),
        "{again}"
    );
    assert_eq!(status(&a), "succeeded");
    let tests = &crate::support::task(&report, &a)["tests"];
    assert_eq!(
        (tests["passed"].as_u64(), tests["flaky"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(tests["flaky_tests"][0], "tests.test_a.TestK::test_flaky");

    // The broken test: run again alone twice, failed each time.
    for attempt in [2, 3] {
        let out = output(&repo, "f", &b, attempt);
        assert!(out.contains("1 failed") && !out.contains("passed"), "{out}");
    }
    assert_eq!(status(&b), "failed");

    // The quarantined test failed and did not gate; the lapsed one did.
    assert_eq!(status(&c), "succeeded");
    assert_eq!(crate::support::task(&report, &c)["tests"]["quarantined"], 1);
    assert_eq!(status(&d), "failed");

    // The shards as the report has them: a test's shard is named by
    // what ran it.
    assert_eq!(
        [&a, &b, &c, &d],
        ["pytest-1", "pytest-2", "pytest-3", "pytest-4"]
    );
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run f: finished with failures (exit 1)
          task      status          time  try  changed  result
          pytest-1  succeeded      [T]s    2        0  
          pytest-2  failed         [T]s    3        0  exited with code 1
          pytest-3  succeeded      [T]s    1        0  
          pytest-4  failed         [T]s    3        0  exited with code 1

          0 merged, 2 succeeded (read-only), 2 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          tests: 3 passed, 2 failed, 1 flaky, 1 quarantined in 4 tasks
            failed: tests.test_b::test_broken (in pytest-2)
            failed: tests.test_d::test_lapsed (in pytest-4)
            flaky: tests.test_a.TestK::test_flaky (in pytest-1)
            quarantine expired: tests.test_d::test_lapsed: its quarantine ended 2020-01-31 (owner @qa: #8) (in pytest-4)
          no branch (read-only run), [T]s
          pytest-2: exited with code 1
          pytest-2 log: .swarm/runs/f/logs/pytest-2/3.err
          pytest-4: exited with code 1
          pytest-4 log: .swarm/runs/f/logs/pytest-4/3.err
        "));

    // The run's JUnit as Surefire writes reruns, valid against the schema.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<flakyFailure").count(), 1, "{xml}");
    assert_eq!(xml.matches("<rerunFailure").count(), 4, "{xml}");
    assert!(
        xml.contains(r#"<skipped message="quarantined until 2999-01-01 (owner @qa: https://example.com/issues/7); failed: AssertionError: known"#)
            && xml.contains(r#"type="quarantined">"#),
        "{xml}"
    );
    crate::support::assert_valid_junit(&junit);

    // `flaky = "fail"`: the flaky test fails its task, named in its reason.
    std::fs::remove_file(&mark).unwrap();
    let p = repo.plan(
        "strict.toml",
        &plan(&pytest, "flaky = \"fail\"\n", "tests/test_a.py"),
    );
    let run = repo.run_plan(&p, &["--name", "strict"]);
    run.assert_code(1);
    let report = repo.report();
    let t = crate::support::task(&report, "pytest-1");
    assert_eq!(t["status"], "failed");
    let reason = t["reason"].as_str().unwrap();
    insta::assert_snapshot!(reason, @r#"1 flaky test (failed, then passed when run again) and `flaky = "fail"`: tests.test_a.TestK::test_flaky"#);
}

#[test]
fn resume_retry_failed_runs_only_the_failed_tests_in_the_same_shards_and_merges_their_reports() {
    let pytest = python_tool("pytest");
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed");
    let repo = TestRepo::new();
    repo.write(".gitignore", "__pycache__/\n.pytest_cache/\n");
    repo.write(
        "tests/test_a.py",
        "def test_one():\n    pass\n\ndef test_two():\n    pass\n",
    );
    // Fails until something outside the repository is mended.
    repo.write(
        "tests/test_b.py",
        &format!(
            "import os\n\ndef test_three():\n    pass\n\n\
             def test_env():\n    assert os.path.exists({:?}), 'not mended'\n",
            fixed.display().to_string()
        ),
    );
    repo.commit_all("a suite");
    let p = repo.plan(
        "p.toml",
        &format!(
            "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n\
             [[task]]\nid = \"pytest\"\nisolation = \"readonly\"\nshards = 2\n\
             matrix = {{ file = {{ glob = \"tests/test_*.py\" }} }}\n\
             run = \"PYTHONDONTWRITEBYTECODE=1 {} -v -p no:cacheprovider {{entries}} --junitxml=$TMPDIR/report.xml\"\n\
             junit = \"$TMPDIR/report.xml\"\n",
            pytest.display()
        ),
    );
    repo.run_plan(&p, &["--name", "r"]).assert_code(1);
    let report = repo.report();
    let b = shard_of(&report, "test_env");
    let a = shard_of(&report, "test_one");

    std::fs::write(&fixed, "").unwrap();
    let junit = repo.root().join("run.xml");
    let resumed = repo.swarm(&[
        "resume",
        "r",
        "--retry-failed",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    resumed.assert_code(0);
    // Only the failed test ran again (pytest's own list), in its shard;
    // the shard that passed did not run again.
    let again = output(&repo, "r", &b, 2);
    assert!(
        again.contains("tests/test_b.py::test_env PASSED") && !again.contains("test_three"),
        "{again}"
    );
    let report = repo.report();
    assert_eq!(crate::support::task(&report, &a)["attempts"], 1);
    // Its shard's report holds both of its tests, the mended one flaky.
    let tests = &crate::support::task(&report, &b)["tests"];
    assert_eq!(
        (tests["passed"].as_u64(), tests["flaky"].as_u64()),
        (Some(1), Some(1))
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<testcase name="test_three""#), "{xml}");
    assert_eq!(xml.matches("<flakyFailure").count(), 1, "{xml}");
    crate::support::assert_valid_junit(&junit);
}

/// cargo-nextest (`.ci/run` installs it where the machine lacks it).
pub(crate) fn cargo_nextest() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").expect("PATH is set");
    std::env::split_paths(&path)
        .map(|dir| dir.join("cargo-nextest"))
        .find(|p| p.is_file())
        .expect("cargo-nextest is in PATH (.ci/run installs it)")
}

/// A crate whose `tests/wobbly.rs` has a test that fails the first time
/// it runs, beside `calm` and `tests/steady.rs`, run by one nextest shard
/// with a retry: `words` what its command makes of `{entries}`, `list` its
/// `list_tests` line (or none); `--junit` to `run.xml` beside the
/// repository.
fn flaky_nextest_run(words: &str, list: &str) -> (TestRepo, crate::support::Run) {
    let nextest = cargo_nextest();
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("seen");
    let repo = TestRepo::new();
    crate::toolchains::write_crate(&repo);
    // nextest writes its JUnit where its profile says.
    repo.write(
        ".config/nextest.toml",
        "[profile.default.junit]\npath = \"junit.xml\"\n",
    );
    repo.write(
        "tests/steady.rs",
        "#[test]\nfn holds() {\n    assert_eq!(tiny::one(), 1);\n}\n",
    );
    repo.write("tests/wobbly.rs", &wobbly("calm", &mark));
    repo.commit_all("a crate with a flaky test");
    let cargo = crate::toolchains::cargo_home(&repo);
    // `--no-fail-fast`: nextest's default stops at the first failure, and
    // a shard whose report lacks an entry's tests runs whole again.
    let plan = repo.plan(
        "n.toml",
        &format!(
            "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n\
             [[task]]\nid = \"nextest\"\nallow_overlap = true\nshards = 1\nretries = 1\n\
             matrix = {{ file = {{ glob = \"tests/*.rs\" }} }}\n\
             run = '{} nextest run --offline --no-fail-fast {}'\n{list}\
             junit = \"target/nextest/default/junit.xml\"\n",
            nextest.display(),
            words,
        ),
    );
    let junit = repo.root().join("run.xml");
    let run = crate::toolchains::swarm_with_cargo(
        &repo,
        &cargo,
        &[
            "run",
            plan.to_str().unwrap(),
            "--name",
            "n",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    drop(dir);
    (repo, run)
}

/// A Rust test file of a test `steady` that passes and `wobbles`, which
/// fails the first time it runs (it leaves `mark`, outside the crate).
fn wobbly(steady: &str, mark: &std::path::Path) -> String {
    format!(
        "#[test]\nfn {steady}() {{}}\n\n#[test]\nfn wobbles() {{\n    let mark = std::path::Path::new({:?});\n    \
         let seen = mark.exists();\n    std::fs::write(mark, \"\").unwrap();\n    assert!(seen, \"first run\");\n}}\n",
        mark.display().to_string()
    )
}

/// nextest's own lines of what passed and its count, from its output
/// `text` (each past its timing: `(1/1) b::quick wobbles`).
fn nextest_ran(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains(" PASS [") || l.contains(" test run: "))
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .collect()
}

/// What attempt `attempt` of `shard` of run `n` printed on stderr.
fn attempt_err(repo: &TestRepo, shard: &str, attempt: u32) -> String {
    std::fs::read_to_string(
        repo.path()
            .join(format!(".swarm/runs/n/logs/{shard}/{attempt}.err")),
    )
    .unwrap()
}

#[test]
fn a_nextest_shard_whose_task_lists_its_tests_runs_again_only_its_failing_test() {
    let (repo, _) = flaky_nextest_run(
        crate::ci_batches::NEXTEST_FILTERS,
        &format!(
            "list_tests = '{} nextest list --offline --message-format oneline'\n",
            cargo_nextest().display()
        ),
    );
    let shard = shard_of(&repo.report(), "wobbles");
    // nextest's own lines: the one failing test of the shard's three.
    let again = attempt_err(&repo, &shard, 2);
    let ran = nextest_ran(&again);
    insta::assert_debug_snapshot!(ran, @r#"
    [
        "(1/1) tiny::wobbly wobbles",
        "1 test run: 1 passed, 1 skipped",
    ]
    "#);
}

#[test]
fn a_nextest_shard_runs_again_only_its_failing_test_file_and_reports_the_flaky_test() {
    // The files as test targets: what a plan without `list_tests` writes.
    let targets =
        r#"$(for f in {entries}; do n=${f#tests/}; printf -- "--test %s " "${n%.rs}"; done)"#;
    let (repo, run) = flaky_nextest_run(targets, "");
    let report = repo.report();
    let shard = shard_of(&report, "wobbles");
    // Its second attempt ran the failing test's file again, not the
    // shard's other file (nextest's own count: the file's two tests of
    // the shard's three).
    let again = attempt_err(&repo, &shard, 2);
    assert!(again.contains("2 tests run: 2 passed"), "{again}");
    let tests = &crate::support::task(&report, &shard)["tests"];
    assert_eq!(
        (tests["passed"].as_u64(), tests["flaky"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(shard, "nextest-1");
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @r#"
        run n: succeeded
          task       status          time  try  changed  result
          nextest-1  merged         [T]s    2        0  refs/swarm/n/nextest-1

          1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          tests: 2 passed, 1 flaky in 1 task
            flaky: tiny::wobbly::wobbles (in nextest-1)
          branch swarm/n at [HASH], [T]s
          warning: `nextest-1` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
        "#));
    let junit = repo.root().join("run.xml");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<flakyFailure").count(), 1, "{xml}");
    crate::support::assert_valid_junit(&junit);
}

/// The book's recipe for a workspace: a test file's nextest binary id is
/// its package's name (the first `name =` of the `Cargo.toml` above its
/// `tests/`) and its binary's, so two packages' `tests/quick.rs` are
/// `alpha::quick` and `b::quick`.
pub(crate) const WORKSPACE_BINARY_ID: &str = r#"bin_id() { f=${1%%::*}; b=${f##*/}; printf %s::%s "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "${f%tests/*}Cargo.toml" | head -n 1)" "${b%.rs}"; };"#;

/// What the workspace recipe's command turns `{entries}` into: a file's
/// binary id, or one test of it.
const WORKSPACE_FILTERS: &str = r#"$(for e in {entries}; do case $e in *::*) printf -- "-E binary_id(=%s)&test(=%s) " "$(bin_id "$e")" "${e#*::}";; *) printf -- "-E binary_id(=%s) " "$(bin_id "$e")";; esac; done)"#;

/// In a workspace two packages' `tests/quick.rs` are two entries, told
/// apart by their packages (read from their manifests, one named other
/// than its directory): the failing test of one runs again as its own,
/// not as the other file's (where nextest would find no such test).
#[test]
fn in_a_workspace_a_failing_test_runs_again_as_its_own_packages_file() {
    let book = include_str!("../../book/src/results.md");
    assert_eq!(
        [WORKSPACE_BINARY_ID, WORKSPACE_FILTERS].map(|r| book.matches(r).count()),
        [2, 1],
        "results.md's recipe for a workspace"
    );
    let nextest = cargo_nextest();
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("seen");
    let repo = TestRepo::new();
    repo.write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"crates/a\", \"crates/b\"]\nresolver = \"2\"\n",
    );
    repo.write(
        "Cargo.lock",
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"alpha\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"b\"\nversion = \"0.1.0\"\n",
    );
    repo.write(".gitignore", "target/\n");
    repo.write(
        ".config/nextest.toml",
        "[profile.default.junit]\npath = \"junit.xml\"\n",
    );
    for (dir, name) in [("a", "alpha"), ("b", "b")] {
        repo.write(
            &format!("crates/{dir}/Cargo.toml"),
            &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        );
        repo.write(&format!("crates/{dir}/src/lib.rs"), "");
    }
    repo.write("crates/a/tests/quick.rs", "#[test]\nfn calm() {}\n");
    repo.write("crates/b/tests/quick.rs", &wobbly("holds", &mark));
    repo.commit_all("a workspace of two packages with a tests/quick.rs each");
    let cargo = crate::toolchains::cargo_home(&repo);
    let nextest = nextest.display();
    let plan = repo.plan(
        "n.toml",
        &format!(
            "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n\
             [[task]]\nid = \"nextest\"\nallow_overlap = true\nshards = 1\nretries = 1\n\
             matrix = {{ file = {{ glob = \"crates/*/tests/*.rs\" }} }}\n\
             run = \'\'\'{WORKSPACE_BINARY_ID} {nextest} nextest run --workspace --offline --no-fail-fast {WORKSPACE_FILTERS}\'\'\'\n\
             list_tests = \'\'\'{WORKSPACE_BINARY_ID} {nextest} nextest list --workspace --offline --message-format oneline $(for f in {{entries}}; do printf -- \"-E binary_id(=%s) \" \"$(bin_id \"$f\")\"; done)\'\'\'\n\
             junit = \"target/nextest/default/junit.xml\"\n"
        ),
    );
    let run = crate::toolchains::swarm_with_cargo(
        &repo,
        &cargo,
        &["run", plan.to_str().unwrap(), "--name", "n"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // nextest's own lines: the second attempt ran b's failing test alone.
    let again = attempt_err(&repo, "nextest-1", 2);
    let ran = nextest_ran(&again);
    insta::assert_debug_snapshot!(ran, @r#"
    [
        "(1/1) b::quick wobbles",
        "1 test run: 1 passed, 1 skipped",
    ]
    "#);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @r#"
        run n: succeeded
          task       status          time  try  changed  result
          nextest-1  merged         [T]s    2        0  refs/swarm/n/nextest-1

          1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          tests: 2 passed, 1 flaky in 1 task
            flaky: b::quick::wobbles (in nextest-1)
          branch swarm/n at [HASH], [T]s
          warning: `nextest-1` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
        "#));
    drop(dir);
}
