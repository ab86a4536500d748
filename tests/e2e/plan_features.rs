//! Plan features a first day needs (issue 15), as the user sees them:
//! every error of a plan at once, a bad `base` at its line, globs in
//! `deps`, matrix values that make ids, `include`/`exclude` matrices, and
//! what `swarm validate` says of a plan that runs, warnings included.

use crate::support::{TestRepo, redact, snapshot_settings};

/// `swarm validate` and `swarm run` reject the plan alike (exit 2, nothing
/// left behind); returns the redacted stderr.
fn rejected(repo: &TestRepo, toml: &str) -> String {
    // Exactly as written: the messages quote its lines.
    let plan = repo.plan_exact("bad.toml", toml);
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    validate.assert_code(2);
    let run = repo.run_plan(&plan, &["--sandbox", "none"]);
    run.assert_code(2);
    assert_eq!(validate.stderr, run.stderr, "run and validate disagree");
    assert!(repo.swarm_traces().is_empty(), "{:?}", repo.swarm_traces());
    redact(&validate.stderr, repo)
}

/// The first line of `swarm validate`'s stdout, what it checked, redacted:
/// the lines after it name this machine's toolchains.
fn summary_line(stdout: &str, repo: &TestRepo) -> String {
    redact(stdout.lines().next().unwrap_or_default(), repo)
}

/// `swarm validate` accepts the plan; returns its stdout.
fn valid(repo: &TestRepo, toml: &str) -> String {
    let plan = repo.plan("ok.toml", toml);
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    validate.assert_code(0);
    validate.stdout
}

#[test]
fn every_plan_error_is_reported_at_once() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"build\"\nrun = \"true\"\ntimeout = \"soon\"\n\n[[task]]\nid = \"Test\"\nrun = \"true\"\n\n[[task]]\nid = \"lint\"\nrun = \"true\"\ndeps = [\"biuld\", \"fmt\"]\n",
    );
    // All four, in file order, each at its line.
    insta::assert_snapshot!(err);
}

#[test]
fn past_twenty_errors_the_rest_are_counted() {
    let repo = TestRepo::new();
    let tasks: String = (0..25)
        .map(|i| format!("[[task]]\nid = \"t{i}\"\nrun = \"true\"\ndeps = [\"nope{i}\"]\n"))
        .collect();
    let err = rejected(&repo, &tasks);
    assert!(
        err.starts_with("error: invalid plan (25 errors)\n"),
        "{err}"
    );
    assert_eq!(err.matches("depends on unknown task").count(), 20, "{err}");
    assert!(err.trim_end().ends_with("... and 5 more errors"), "{err}");
}

#[test]
fn a_base_that_does_not_exist_points_at_its_line() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[swarm]\nbase = \"nope\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
    );
    insta::assert_snapshot!(err);

    // From the command line there is no line to show: it says so.
    let plan = repo.plan("ok.toml", "[[task]]\nid = \"a\"\nrun = \"true\"\n");
    let run = repo.run_plan(&plan, &["--sandbox", "none", "--base", "nope"]);
    run.assert_code(2);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&run.stderr, &repo), @"
    error: failed to resolve base `nope`: no such commit in [TMP]/repo
    help: `nope` was given with --base; pass an existing branch, tag or commit
    ")
    });
    assert!(repo.swarm_traces().is_empty());
}

#[test]
fn glob_deps_fan_in_and_a_glob_matching_nothing_is_an_error() {
    let repo = TestRepo::new();
    let out = valid(
        &repo,
        "[[task]]\nid = \"fmt-{c}\"\nrun = \"true\"\nmatrix = { c = [\"a\", \"b\", \"c\"] }\n\n[[task]]\nid = \"fmt-all\"\nrun = \"true\"\ndeps = [\"fmt-*\"]\n",
    );

    let err = rejected(
        &repo,
        "[[task]]\nid = \"fmt-a\"\nrun = \"true\"\n\n[[task]]\nid = \"all\"\nrun = \"true\"\ndeps = [\"fnt-*\"]\n",
    );
    insta::assert_snapshot!(err);
    // The valid plan's line after the file snapshot: an inline one before
    // it would take the file's name (`-2` and so on).
    snapshot_settings().bind(|| insta::assert_snapshot!(summary_line(&out, &repo), @"[TMP]/plans/ok.toml: ok: 4 tasks, 3 without dependencies, longest chain 2, base HEAD ([HASH])"));
}

#[test]
fn glob_deps_run_after_every_match() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "globs.toml",
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"part-{n}\"\nrun = \"echo {n} > part-{n}.txt\"\nmatrix = { n = [1, 2] }\n\n[[task]]\nid = \"join\"\ndeps = [\"part-*\"]\nrun = \"cat part-1.txt part-2.txt > all.txt\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(0);
    assert_eq!(repo.show("swarm/globs", "all.txt").trim_end(), "1\n2");
}

#[test]
fn every_read_paths_entry_that_does_not_exist_is_reported() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[swarm]\nread_paths = [\"/nonexistent/a\", \"/nonexistent/b\"]\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
    );
    insta::assert_snapshot!(err, @r#"
    error: invalid plan (2 errors)
      × `read_paths` entry `/nonexistent/a` does not exist
       ╭─[[TMP]/plans/bad.toml:2:15]
     1 │ [swarm]
     2 │ read_paths = ["/nonexistent/a", "/nonexistent/b"]
       ·               ────────┬───────
       ·                       ╰── no such file or directory
     3 │ 
       ╰────
      help: fix the path, or remove the entry

      × `read_paths` entry `/nonexistent/b` does not exist
       ╭─[[TMP]/plans/bad.toml:2:33]
     1 │ [swarm]
     2 │ read_paths = ["/nonexistent/a", "/nonexistent/b"]
       ·                                 ────────┬───────
       ·                                         ╰── no such file or directory
     3 │ 
       ╰────
      help: fix the path, or remove the entry
    "#);
}

#[test]
fn file_paths_in_a_matrix_make_ids_and_reach_the_command_as_written() {
    let repo = TestRepo::new();
    repo.write("src/main.rs", "fn main() {}\n");
    repo.write("src/cli/Args.rs", "// args\n");
    repo.commit_all("sources");
    let plan = repo.plan(
        "files.toml",
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"count-{file}\"\nrun = \"wc -l < {file} > {file:slug}.count\"\nmatrix = { file = [\"src/main.rs\", \"src/cli/Args.rs\"] }\n\n[[task]]\nid = \"all\"\ndeps = [\"count-*\"]\nrun = \"cat *.count > total\"\n",
    );
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    validate.assert_code(0);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(summary_line(&validate.stdout, &repo), @"[TMP]/plans/files.toml: ok: 3 tasks, 2 without dependencies, longest chain 2, base HEAD ([HASH])"));
    repo.run_plan(&plan, &[]).assert_code(0);
    let report = repo.report();
    for id in ["count-src-main-rs", "count-src-cli-args-rs", "all"] {
        assert_eq!(crate::support::task(&report, id)["status"], "merged");
    }
    assert_eq!(
        repo.show("swarm/files", "src-cli-args-rs.count").trim(),
        "1"
    );
    assert_eq!(repo.show("swarm/files", "total").trim(), "1\n1");
}

#[test]
fn values_whose_slugs_collide_are_named_both() {
    let repo = TestRepo::new();
    let err = rejected(
        &repo,
        "[[task]]\nid = \"lint-{file}\"\nrun = \"true\"\nmatrix = { file = [\"src/a.rs\", \"src-a.rs\"] }\n",
    );
    insta::assert_snapshot!(err);
}

#[test]
fn include_and_exclude_shape_the_matrix() {
    let repo = TestRepo::new();
    let out = valid(
        &repo,
        "[[task]]\nid = \"build-{os}-{arch}\"\nrun = \"true\"\nmatrix = { include = [{ os = \"linux\", arch = \"x86_64\" }, { os = \"macos\", arch = \"aarch64\" }] }\n\n[[task]]\nid = \"test-{os}-{v}\"\nrun = \"true\"\nmatrix = { os = [\"linux\", \"macos\"], v = [1, 2], exclude = [{ os = \"macos\", v = 1 }] }\n\n[[task]]\nid = \"done\"\nrun = \"true\"\ndeps = [\"build-*\", \"test-*\"]\n",
    );

    let err = rejected(
        &repo,
        "[[task]]\nid = \"t-{os}\"\nrun = \"true\"\nmatrix = { os = [\"linux\"], include = [\"macos\"], exclude = [{ os = \"bsd\" }] }\n",
    );
    insta::assert_snapshot!(err);
    // The valid plan's line after the file snapshot: an inline one before
    // it would take the file's name (`-2` and so on).
    snapshot_settings().bind(|| insta::assert_snapshot!(summary_line(&out, &repo), @"[TMP]/plans/ok.toml: ok: 6 tasks, 5 without dependencies, longest chain 2, base HEAD ([HASH])"));
}

/// A plan that runs but has several things to look at: `swarm validate`
/// says what it checked on stdout and every warning at once on stderr.
#[test]
fn validate_says_what_it_checked_and_warns_of_everything_at_once() {
    let repo = TestRepo::new();
    // Exactly as written: overlapping writers are one of the warnings.
    let plan = repo.plan_exact(
        "warned.toml",
        r#"[swarm]
read_paths = ["/etc/hostname"]

[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"

[[task]]
id = "docs"
creates = ["README.md"]
run = "echo more >> README.md"

[[task]]
id = "fmt"
run = "sed -i s/fn/pub fn/ src/lib.txt"

[[task]]
id = "lint"
isolation = "readonly"
run = "true"

[[task]]
id = "review"
deps = ["docs"]
prompt = "Review the docs."
"#,
    );
    let mut cmd = repo.swarm_cmd(&["validate", plan.to_str().unwrap()]);
    crate::sandbox::only_git_in_path(&repo, &mut cmd);
    let validate: crate::support::Run = cmd.output().unwrap().into();
    validate.assert_code(0);
    assert!(repo.swarm_traces().is_empty(), "{:?}", repo.swarm_traces());
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("validate_warnings_stdout", redact(&validate.stdout, &repo));
        insta::assert_snapshot!("validate_warnings_stderr", redact(&validate.stderr, &repo));
    });
}
