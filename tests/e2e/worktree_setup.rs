//! `[setup]`: a worktree made ready before its task, once per key (kept
//! across runs), sandboxed like the task, its outputs never committed, a
//! failing setup reported as such with its own log.

use crate::support::{TestRepo, redact, snapshot_settings, stable_stderr, summary_of, task};

/// [`snapshot_settings`], and the setup's times as the live view says
/// them (`(setup ran in 1s 234ms)`, humantime's words) as `[T]`.
fn setup_settings() -> insta::Settings {
    let mut settings = crate::support::snapshot_settings_any_cpus();
    settings.add_filter(r" in \d+[a-zµ]+( \d+[a-zµ]+)*\)", " in [T])");
    // How many tasks run at once: the machine's CPU count by default.
    settings
}

/// A repository whose "dependencies" setup installs: `deps/` (ignored, as
/// `node_modules` is) from `deps.lock`, and a generated file that is not
/// ignored.
fn project() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("deps.lock", "left-pad 1.3.0\n");
    repo.write(".gitignore", "deps/\n");
    repo.write("src/a.txt", "a\n");
    repo.write("src/b.txt", "b\n");
    repo.write("src/c.txt", "c\n");
    repo.commit_all("a project with a lockfile");
    repo
}

const SETUP: &str = "[setup]\nrun = '''\n\
    mkdir -p deps && cp deps.lock deps/installed && echo \"setup ran in $SWARM_TASK\"\n\
    echo generated > gen.txt\n'''\nkey = [\"deps.lock\"]\n\n";

fn setup_logs(repo: &TestRepo, run: &str) -> Vec<String> {
    let mut ran: Vec<String> = ["a", "b", "c"]
        .into_iter()
        .filter(|t| {
            repo.path()
                .join(format!(".swarm/runs/{run}/logs/{t}/1.setup.out"))
                .exists()
        })
        .map(str::to_string)
        .collect();
    ran.sort();
    ran
}

#[test]
fn setup_runs_once_per_key_its_outputs_are_never_committed_and_a_later_run_reuses_it() {
    let repo = project();
    let plan = repo.plan(
        "s.toml",
        &format!(
            "{SETUP}[[task]]\nid = \"{{f}}\"\nmatrix = {{ f = [\"a\", \"b\", \"c\"] }}\n\
             run = '''\ntest -f deps/installed && test -f gen.txt && echo done >> src/{{f}}.txt\n'''\n\n\
             [[task]]\nid = \"edits-generated\"\ndeps = [\"a\"]\nrun = \"echo changed > gen.txt\"\n"
        ),
    );
    let run = repo.run_plan(&plan, &["--name", "one"]);
    run.assert_code(0);
    // One of the three tasks ran setup; the others got a copy of it.
    assert_eq!(setup_logs(&repo, "one").len(), 1, "{}", run.stderr);
    for f in ["a", "b", "c"] {
        assert_eq!(
            repo.show("swarm/one", &format!("src/{f}.txt")),
            format!("{f}\ndone")
        );
    }
    // What setup made is in no result; what a task changed of it is.
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "refs/swarm/one/a"]);
    assert!(
        !tree.contains("gen.txt") && !tree.contains("deps/"),
        "{tree}"
    );
    assert_eq!(repo.show("swarm/one", "gen.txt"), "changed");
    let report = repo.report();
    assert_eq!(task(&report, "a")["status"], "merged");
    // Its own phase: in the report, the live view and the trace.
    let reused = ["a", "b", "c"]
        .iter()
        .filter(|t| task(&report, t)["setup_reused"] == true)
        .count();
    assert_eq!(reused, 2, "{report:#}");
    assert!(
        ["a", "b", "c"]
            .iter()
            .all(|t| task(&report, t)["setup_ms"].is_u64())
    );
    // A task that waited for another's setup of its key says so apart
    // from the copy (issue 76), one that did not, only the copy.
    // (Its ignored `deps/` shown as an overlay where the sandbox can.)
    assert!(
        run.stderr.contains("(setup ran in ")
            && (run.stderr.contains("(setup copied in ")
                || run.stderr.contains("(kept setup shown as an overlay in ")
                || run
                    .stderr
                    .contains("for another worktree's setup, then copied it in ")
                || run
                    .stderr
                    .contains("for another worktree's setup, then showed it as an overlay in ")),
        "{}",
        run.stderr
    );
    let trace = repo.swarm(&["trace", "one"]);
    trace.assert_code(0);
    assert!(trace.stdout.contains("\"setup\""), "{}", trace.stdout);

    // A later run with the same lockfile runs no setup at all.
    let again = repo.run_plan(&plan, &["--name", "two"]);
    again.assert_code(0);
    assert_eq!(
        setup_logs(&repo, "two"),
        Vec::<String>::new(),
        "{}",
        again.stderr
    );

    // A changed lockfile is a new key: setup runs again, once.
    repo.write("deps.lock", "left-pad 1.3.1\n");
    repo.commit_all("bump");
    let bumped = repo.run_plan(&plan, &["--name", "three"]);
    bumped.assert_code(0);
    assert_eq!(setup_logs(&repo, "three").len(), 1, "{}", bumped.stderr);
}

#[test]
fn a_failing_setup_fails_the_attempt_with_its_own_reason_and_log() {
    let repo = project();
    let plan = repo.plan(
        "f.toml",
        "[setup]\nrun = \"echo cannot reach the registry >&2; exit 3\"\n\n\
         [[task]]\nid = \"a\"\nrun = \"echo never > ran.txt\"\n",
    );
    let run = repo.run_plan(&plan, &["--name", "f"]);
    run.assert_code(1);
    let report = repo.report();
    let a = task(&report, "a");
    assert_eq!(a["status"], "failed");
    let reason = a["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("setup exited with code 3; see `swarm logs f a --setup`"),
        "{reason}"
    );
    let logs = repo.swarm(&["logs", "f", "a", "--setup"]);
    logs.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&logs.stdout, &repo), @"
    --- stderr
    cannot reach the registry
    ")
    });
    // The task never ran.
    assert!(!repo.has_rev("refs/swarm/f/a"));
}

#[test]
fn a_task_may_skip_setup() {
    let repo = project();
    let plan = repo.plan(
        "k.toml",
        &format!("{SETUP}[[task]]\nid = \"a\"\nsetup = false\nrun = \"test ! -e deps && echo ok > src/a.txt\"\n"),
    );
    repo.run_plan(&plan, &["--name", "k"]).assert_code(0);
    assert_eq!(repo.show("swarm/k", "src/a.txt"), "ok");
    assert!(setup_logs(&repo, "k").is_empty());
}

#[test]
fn worktreeinclude_copies_ignored_files_of_the_checkout_and_a_result_holding_one_is_refused() {
    let repo = TestRepo::new();
    repo.write(".gitignore", ".env\nsecret/\n");
    repo.write(".worktreeinclude", ".env\ntracked.txt\n");
    repo.write("tracked.txt", "tracked\n");
    repo.commit_all("a project with a .worktreeinclude");
    // The person's files: ignored by git, in the main checkout only.
    std::fs::write(repo.path().join(".env"), "TOKEN=hunter2\n").unwrap();
    let outside = repo.outside().join("elsewhere");
    std::fs::write(&outside, "not mine to copy\n").unwrap();
    std::os::unix::fs::symlink(&outside, repo.path().join("secret")).unwrap();
    let plan = repo.plan(
        "i.toml",
        "[swarm]\non_failure = \"continue\"\n\n\
         [[task]]\nid = \"reads\"\nrun = \"grep -q TOKEN .env && echo read > out.txt\"\n\n\
         [[task]]\nid = \"leaks\"\nrun = \"cp .env config.txt\"\n",
    );
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    validate.assert_code(0);
    // Only its `includes` line: the toolchains it lists are the machine's.
    let includes = validate
        .stdout
        .lines()
        .find(|l| l.starts_with("includes "))
        .unwrap_or_else(|| panic!("{}", validate.stdout));
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(includes, &repo), @"includes          .worktreeinclude copies 1 file of yours into each worktree, never committed: .env (the list came with the repository)"));
    let run = repo.run_plan(&plan, &["--name", "i"]);
    run.assert_code(1);
    // What it says before it starts, and its summary: its live lines'
    // order is the scheduler's.
    let before = run.stderr.split("swarm: run i:").next().unwrap();
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(before, &repo), @"
    note: .worktreeinclude copies 1 file of yours into each worktree, never committed: .env (the list came with the repository)
    warning: the working tree has 1 uncommitted change, which the run does not see: its tasks start from the commit [HASH] (commit the changes first, or pass --base to say where to start)
    "));
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
    run i: finished with failures (exit 1)
      task   status          time  try  changed  result
      reads  merged         [T]s    1        1  refs/swarm/i/reads
      leaks  failed         [T]s    1        0  refs/swarm/i/leaks

      1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/i at [HASH], [T]s
      leaks: wrote outside its paths: config.txt (the content of .env, a file of yours from .worktreeinclude, never committed); its work is on refs/swarm/i/leaks: add it to `paths` or `creates`, or leave it to another task
      leaks log: .swarm/runs/i/logs/leaks/1.err
      leaks: 1 file not committed (see the report):
        config.txt: refused by git: it holds the content of .env, which is never committed
    "));
    assert_eq!(repo.show("swarm/i", "out.txt"), "read");
    // Never committed: not by the task that read it, not under another
    // name by the one that copied it.
    let merged = repo.git(&["ls-tree", "-r", "--name-only", "swarm/i"]);
    assert!(
        !merged.contains(".env") && !merged.contains("config.txt"),
        "{merged}"
    );
    let report = repo.report();
    let reason = task(&report, "leaks")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&reason, &repo), @"wrote outside its paths: config.txt (the content of .env, a file of yours from .worktreeinclude, never committed); its work is on refs/swarm/i/leaks: add it to `paths` or `creates`, or leave it to another task"));
}

/// A Node package whose one dependency is a tarball in the repository,
/// locked by a real `package-lock.json`: `npm ci` installs it offline.
pub(crate) fn node_project() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "vendor/leftish/package.json",
        "{\"name\": \"leftish\", \"version\": \"1.0.0\", \"main\": \"index.js\"}\n",
    );
    repo.write(
        "vendor/leftish/index.js",
        "module.exports = (s, n) => ' '.repeat(Math.max(0, n - s.length)) + s;\n",
    );
    let npm = |dir: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new("npm")
            .args(args)
            .current_dir(dir)
            .env("HOME", repo.home())
            .env("npm_config_cache", repo.home().join(".npm"))
            .output()
            .expect("npm (installed by .ci/run)");
        assert!(
            out.status.success(),
            "npm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    npm(
        &repo.path().join("vendor/leftish"),
        &["pack", "--pack-destination", ".."],
    );
    std::fs::remove_dir_all(repo.path().join("vendor/leftish")).unwrap();
    repo.write(
        "package.json",
        "{\"name\": \"app\", \"version\": \"1.0.0\", \"private\": true,\n \"dependencies\": {\"leftish\": \"file:vendor/leftish-1.0.0.tgz\"}}\n",
    );
    npm(
        &repo.path(),
        &[
            "install",
            "--package-lock-only",
            "--offline",
            "--no-audit",
            "--no-fund",
        ],
    );
    repo.write(".gitignore", "node_modules/\n");
    repo.commit_all("a node package with a lockfile");
    repo
}

#[test]
fn npm_ci_runs_once_per_lockfile_and_node_modules_is_never_committed() {
    let repo = node_project();
    let plan = repo.plan(
        "n.toml",
        "[setup]\nrun = \"npm ci --offline --no-audit --no-fund\"\nkey = [\"package-lock.json\"]\n\n\
         [[task]]\nid = \"{n}\"\nmatrix = { n = [\"a\", \"b\"] }\n\
         run = \"node -e \\\"console.log(require('leftish')('{n}', 4))\\\" > {n}.txt\"\n",
    );
    let run = repo.run_plan(&plan, &["--name", "n"]);
    run.assert_code(0);
    assert_eq!(repo.show("swarm/n", "a.txt"), "   a");
    assert_eq!(repo.show("swarm/n", "b.txt"), "   b");
    let report = repo.report();
    let ran: Vec<bool> = ["a", "b"]
        .iter()
        .map(|t| task(&report, t)["setup_reused"] != true)
        .collect();
    assert_eq!(ran.iter().filter(|r| **r).count(), 1, "{report:#}");
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "swarm/n"]);
    assert!(!tree.contains("node_modules"), "{tree}");
}

#[test]
fn a_python_venv_made_by_setup_is_reused_and_never_committed() {
    let repo = TestRepo::new();
    // A wheel (a zip of the module and its metadata), as a package index
    // would serve it: pip installs it with no index and no build.
    let wheel = "vendor/tinypkg-1.0-py3-none-any.whl";
    std::fs::create_dir_all(repo.path().join("vendor")).unwrap();
    let made = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w') as z:\n\
             \x20   z.writestr('tinypkg.py', 'def answer():\\n    return 42\\n')\n\
             \x20   d = 'tinypkg-1.0.dist-info/'\n\
             \x20   z.writestr(d + 'METADATA', 'Metadata-Version: 2.1\\nName: tinypkg\\nVersion: 1.0\\n')\n\
             \x20   z.writestr(d + 'WHEEL', 'Wheel-Version: 1.0\\nGenerator: hand\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n\
             \x20   z.writestr(d + 'RECORD', '')\n",
        )
        .arg(repo.path().join(wheel))
        .output()
        .expect("python3");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    repo.write("requirements.txt", &format!("./{wheel}\n"));
    repo.write(".gitignore", ".venv/\nbuild/\n*.egg-info/\n");
    repo.commit_all("a python project");
    let plan = repo.plan(
        "p.toml",
        "[setup]\nrun = '''\npython3 -m venv .venv\n\
         .venv/bin/pip install -q --no-index -r requirements.txt\n'''\n\
         key = [\"requirements.txt\"]\n\n\
         [[task]]\nid = \"{n}\"\nmatrix = { n = [\"a\", \"b\"] }\n\
         run = \".venv/bin/python -c 'import tinypkg; print(tinypkg.answer())' > {n}.txt\"\n",
    );
    let run = repo.run_plan(&plan, &["--name", "p"]);
    assert_eq!(
        run.code,
        0,
        "{}\n{}",
        run.stderr,
        repo.swarm(&["logs", "p", "a", "--setup"]).stdout
    );
    assert_eq!(repo.show("swarm/p", "a.txt"), "42");
    assert_eq!(repo.show("swarm/p", "b.txt"), "42");
    let report = repo.report();
    let copied = ["a", "b"]
        .iter()
        .filter(|t| task(&report, t)["setup_reused"] == true)
        .count();
    assert_eq!(copied, 1, "{report:#}");
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "swarm/p"]);
    assert!(!tree.contains(".venv"), "{tree}");
}

#[test]
fn a_kept_setup_is_setups_work_alone_never_a_tasks_leftovers() {
    let repo = TestRepo::new();
    repo.write("lock", "v1\n");
    repo.write(".gitignore", "deps/\n");
    repo.commit_all("a project");
    let plan = repo.plan(
        "k.toml",
        "[setup]\nrun = \"mkdir -p deps && echo good > deps/lib.sh\"\nkey = [\"lock\"]\n\n\
         [[task]]\nid = \"evil\"\nrun = \"echo 'echo PWNED' > deps/backdoor.sh\"\n\n\
         [[task]]\nid = \"victim\"\ndeps = [\"evil\"]\nrun = \"cat deps/*.sh >&2; test ! -e deps/backdoor.sh\"\n",
    );
    repo.run_plan(&plan, &["--name", "one"]).assert_code(0);
    // A new key: setup runs again, in `evil`'s warm worktree among
    // others. What it keeps must not hold what `evil` left there.
    repo.write("lock", "v2\n");
    repo.commit_all("bump");
    let run = repo.run_plan(&plan, &["--name", "two"]);
    run.assert_code(0);
    repo.swarm(&["clean", "--all", "--warm"]).assert_code(0);
    let again = repo.run_plan(&plan, &["--name", "three"]);
    again.assert_code(0);
}

#[test]
fn worktreeinclude_never_takes_swarms_own_state_nor_a_file_swapped_for_a_link() {
    let repo = TestRepo::new();
    repo.write(".gitignore", ".env\n");
    repo.write(".worktreeinclude", ".swarm/\n.env\n");
    repo.commit_all("a list naming swarm's state");
    std::fs::write(repo.path().join(".env"), "TOKEN=1\n").unwrap();
    // A first run leaves swarm's state behind.
    let first = repo.plan("a.toml", "[[task]]\nid = \"a\"\nrun = \"true\"\n");
    repo.run_plan(&first, &["--name", "a"]).assert_code(0);
    let plan = repo.plan(
        "b.toml",
        "[[task]]\nid = \"b\"\nrun = \"test ! -e .swarm && grep -q TOKEN .env && echo ok > ok.txt\"\n",
    );
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    // Only its `includes` line: the toolchains it lists are the machine's.
    let includes = validate
        .stdout
        .lines()
        .find(|l| l.starts_with("includes "))
        .unwrap_or_else(|| panic!("{}", validate.stdout));
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(includes, &repo), @"includes          .worktreeinclude copies 1 file of yours into each worktree, never committed: .env (the list came with the repository)"));
    repo.run_plan(&plan, &["--name", "b"]).assert_code(0);
    assert_eq!(repo.show("swarm/b", "ok.txt"), "ok");
}

#[test]
fn cleanup_runs_when_swarm_is_done_with_a_worktree_and_its_changes_are_in_no_result() {
    let repo = project();
    let plan = repo.plan(
        "c.toml",
        "[swarm]\non_failure = \"continue\"\n\n\
         [cleanup]\nrun = \"echo cleaned $SWARM_TASK $SWARM_ATTEMPT; echo swept > swept.txt\"\n\n\
         [[task]]\nid = \"ok\"\nrun = \"echo work > src/a.txt\"\n\n\
         [[task]]\nid = \"retried\"\nretries = 1\nrun = \"test $SWARM_ATTEMPT = 2 && echo second > src/b.txt\"\n\n\
         [[task]]\nid = \"third\"\nrun = \"echo fine > src/c.txt\"\n",
    );
    let run = repo.run_plan(&plan, &["--name", "c"]);
    run.assert_code(0);
    // After every attempt, the failed one before its retry too.
    let mut cleaned = String::new();
    for (task, attempt) in [("ok", 1), ("retried", 1), ("retried", 2)] {
        let logs = repo.swarm(&[
            "logs",
            "c",
            task,
            "--attempt",
            &attempt.to_string(),
            "--cleanup",
        ]);
        logs.assert_code(0);
        cleaned.push_str(&format!("--- {task} {attempt}\n{}", logs.stdout));
    }
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&cleaned, &repo), @"
    --- ok 1
    cleaned ok 1
    --- retried 1
    cleaned retried 1
    --- retried 2
    cleaned retried 2
    ")
    });
    // What cleanup wrote is in no result.
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "swarm/c"]);
    assert!(!tree.contains("swept.txt"), "{tree}");
    assert_eq!(repo.show("swarm/c", "src/a.txt"), "work");
    assert_eq!(repo.show("swarm/c", "src/b.txt"), "second");
}

#[test]
fn a_failing_cleanup_is_a_warning_never_a_lost_result() {
    let repo = project();
    let plan = repo.plan(
        "w.toml",
        "[cleanup]\nrun = \"echo cannot reach the service >&2; exit 4\"\n\n\
         [[task]]\nid = \"t\"\nrun = \"echo work > src/a.txt\"\n",
    );
    repo.run_plan(&plan, &["--name", "w"]).assert_code(0);
    assert_eq!(repo.show("swarm/w", "src/a.txt"), "work");
    let logs = repo.swarm(&["logs", "w", "t"]);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&logs.stdout, &repo), @"
    --- stderr
    swarm: [cleanup] exited with code 4; see `swarm logs w t --cleanup`
    ")
    });
}

/// Issue 76: where the sandbox shows overlays, a kept setup's ignored
/// directories reach each worktree as one (no copy): a task reads them,
/// what it writes, changes or removes there is its own (a task after it
/// sees the setup as setup left it, and so does the kept setup), and the
/// worktree on disk holds an empty directory there. What is not ignored
/// (`gen.txt`) is still copied. The writer owns only `src/a.txt` (the rest
/// of its worktree read-only to it): its layer is still its own to write.
#[test]
fn a_kept_setup_shown_as_an_overlay_is_each_tasks_own() {
    let repo = project();
    if !crate::sandbox::sandbox_available(&repo) {
        return;
    }
    let plan = repo.plan(
        "o.toml",
        &format!(
            "{SETUP}[[task]]\nid = \"writer\"\npaths = [\"src/a.txt\"]\nrun = '''\n\
             test \"$(cat deps/installed)\" = 'left-pad 1.3.0' && test -f gen.txt\n\
             echo tampered >> deps/installed && echo mine > deps/mine && rm deps/installed.bak\n\
             echo wrote >> src/a.txt\n'''\n\n\
             [[task]]\nid = \"reader\"\ndeps = [\"writer\"]\nrun = '''\n\
             test \"$(cat deps/installed)\" = 'left-pad 1.3.0' && test ! -e deps/mine && test -f deps/installed.bak\n\
             echo read >> src/b.txt\n'''\n"
        ),
    );
    let plan_text = std::fs::read_to_string(&plan).unwrap().replace(
        "cp deps.lock deps/installed",
        "cp deps.lock deps/installed && cp deps.lock deps/installed.bak",
    );
    std::fs::write(&plan, plan_text).unwrap();
    // The first run makes the setup (in one worktree, as files); the
    // second shows it to both tasks.
    repo.run_plan(&plan, &["--name", "one"]).assert_code(0);
    let run = repo.run_plan(&plan, &["--name", "two"]);
    run.assert_code(0);
    assert_eq!(setup_logs(&repo, "two"), Vec::<String>::new());
    setup_settings()
        .bind(|| insta::assert_snapshot!(redact(&stable_stderr(&run.stderr), &repo), @r#"
        warning: the plan grants more than swarm's defaults:
          [TMP]/plans/o.toml:2: [setup] run = ''': runs a command before every task, outside the task's own plan
          [TMP]/plans/o.toml:6: [setup] key = ["deps.lock"]: makes worktrees reuse a finished setup's files
        swarm: run two: 2 tasks, up to [N] at once, from HEAD ([HASH]) into branch swarm/two
          start      writer   (kept setup shown as an overlay in [T])
          succeeded  writer   [1/2]
          merged     writer
          start      reader   (kept setup shown as an overlay in [T])
          succeeded  reader   [2/2]
          merged     reader

        run two: succeeded
          task    status          time  try  changed  result
          writer  merged         [T]s    1        1  refs/swarm/two/writer
          reader  merged         [T]s    1        1  refs/swarm/two/reader

          2 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/two at [HASH], [T]s
        "#));
    assert_eq!(repo.show("swarm/two", "src/b.txt"), "b\nread");
    let kept: Vec<_> = std::fs::read_dir(repo.worktree_home().join(".setup"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("files/deps").is_dir())
        .map(|e| e.path().join("files"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let files = &kept[0];
    assert_eq!(
        std::fs::read_to_string(files.join("deps/installed")).unwrap(),
        "left-pad 1.3.0\n"
    );
    assert!(!files.join("deps/mine").exists());
    assert!(files.join("deps/installed.bak").exists());
    for t in ["writer", "reader"] {
        let wt = repo.worktree_home().join(".warm").join(t);
        assert_eq!(
            std::fs::read_dir(wt.join("deps")).unwrap().count(),
            0,
            "{t}'s worktree holds its setup's files: {}",
            run.stderr
        );
        assert!(wt.join("gen.txt").is_file());
    }
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "refs/swarm/two/writer"]);
    assert!(!tree.contains("deps/"), "{tree}");
}

/// A variant's score sees the worktree read-only, the kept setup's
/// directory shown there as an overlay too (read-only): a score that
/// needs setup's files (`deps/installed`) finds them, as it did when they
/// were copied. The same run twice: the second shows the kept setup to
/// every variant.
#[test]
fn a_variants_score_sees_the_kept_setup_shown_as_an_overlay() {
    let repo = project();
    if !crate::sandbox::sandbox_available(&repo) {
        return;
    }
    let plan = repo.plan(
        "v.toml",
        &format!(
            "{SETUP}[[task]]\nid = \"exp\"\ncreates = [\"n.txt\"]\nvariants = {{ n = [2, 3] }}\n\
             run = \"echo {{n}} > n.txt\"\n\
             score = \"test -f deps/installed && cat n.txt\"\npick = \"max\"\n"
        ),
    );
    repo.run_plan(&plan, &["--name", "one"]).assert_code(0);
    let run = repo.run_plan(&plan, &["--name", "two"]);
    run.assert_code(0);
    // The variants' own lines (`start`, `succeeded`) in one order, their
    // progress counts (`[1/3]`) as `[n/3]`: they run side by side, which
    // starts or ends first is the scheduler's.
    let (live, summary) = run
        .stderr
        .split_at(run.stderr.find("\n\nrun ").unwrap() + 1);
    let variant = |l: &&str| {
        !l.starts_with("   ")
            && l.split_whitespace()
                .nth(1)
                .is_some_and(|t| t.starts_with("exp@"))
    };
    let mut theirs: Vec<String> = live
        .lines()
        .filter(variant)
        .map(|l| match l.rsplit_once(" [") {
            Some((body, count)) if count.ends_with(']') => {
                format!("{body} [n/{}", count.split_once('/').map_or("", |c| c.1))
            }
            _ => l.to_string(),
        })
        .collect();
    theirs.sort_unstable();
    let mut theirs = theirs.into_iter();
    let live: Vec<String> = live
        .lines()
        .map(|l| match variant(&l) {
            true => theirs.next().unwrap_or_default(),
            false => l.to_string(),
        })
        .collect();
    let stderr = format!("{}\n{summary}", live.join("\n"));
    // Shown the kept setup, each: one may wait for the other's showing it
    // first (a lock on the key), and says so; which does is the
    // scheduler's.
    let mut settings = setup_settings();
    settings.add_filter(
        r"\((waited [^)]*? for another worktree's setup, then showed it|kept setup shown) as an overlay in \[T\]\)",
        "([waited or not] kept setup shown as an overlay in [T])",
    );
    settings.bind(|| insta::assert_snapshot!(redact(&stderr, &repo), @r#"
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/v.toml:2: [setup] run = ''': runs a command before every task, outside the task's own plan
      [TMP]/plans/v.toml:6: [setup] key = ["deps.lock"]: makes worktrees reuse a finished setup's files
    swarm: run two: 3 tasks, up to [N] at once, from HEAD ([HASH]) into branch swarm/two
      start      exp@1    ([waited or not] kept setup shown as an overlay in [T])
      start      exp@2    ([waited or not] kept setup shown as an overlay in [T])
      succeeded  exp@1    [n/3]
      succeeded  exp@2    [n/3]
      experiment exp (pick = "max"): picked exp@2
        rank variant score verify  time diff
        1    exp@2       3 -      [T]s 1 file +1 -0 n=3  picked
        2    exp@1       2 -      [T]s 1 file +1 -0 n=2
      succeeded  exp      [3/3]
      merged     exp

    run two: succeeded
      task   status          time  try  changed  result
      exp@1  succeeded      [T]s    1        1  refs/swarm/two/exp@1
      exp@2  succeeded      [T]s    1        1  refs/swarm/two/exp@2
      exp    merged             -    0        1  refs/swarm/two/exp@2

      experiment exp (pick = "max"): picked exp@2
        rank variant score verify  time diff
        1    exp@2       3 -      [T]s 1 file +1 -0 n=3  picked
        2    exp@1       2 -      [T]s 1 file +1 -0 n=2

      1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled; 2 variants (see the rankings)
      branch swarm/two at [HASH], [T]s
    "#));
    let report = repo.report();
    assert_eq!(task(&report, "exp@2")["score"]["value"], 3.0, "{report}");
    assert_eq!(repo.show("swarm/two", "n.txt"), "3");
}

/// A task that makes a directory it was shown as the kept setup's overlay
/// no longer ignored (to commit what it writes there) would lose those
/// files from its result (its layer is not in its worktree): its attempt
/// fails saying so, and the layer is kept aside for a look.
#[test]
fn a_task_that_unignores_a_shown_directory_fails_loudly_and_its_layer_is_kept() {
    let repo = project();
    if !crate::sandbox::sandbox_available(&repo) {
        return;
    }
    let plan = repo.plan(
        "u.toml",
        &format!(
            "{SETUP}[[task]]\nid = \"vendor\"\nrun = '''\n\
             : > .gitignore && echo vendored > deps/vendored.txt\n'''\n"
        ),
    );
    repo.run_plan(&plan, &["--name", "one"]).assert_code(0);
    let run = repo.run_plan(&plan, &["--name", "two"]);
    run.assert_code(1);
    let report = repo.report();
    let reason = task(&report, "vendor")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&reason, &repo), @"it made `deps/` no longer ignored, which it was shown as the kept setup's overlay: what it wrote there is in no result (kept in [TMP]/repo/.swarm/runs/two/tmp/vendor.layers.1); give the task `setup = false`, or keep `deps/` ignored"));
    let aside = repo
        .path()
        .join(".swarm/runs/two/tmp/vendor.layers.1/0/upper/vendored.txt");
    assert_eq!(std::fs::read_to_string(&aside).unwrap(), "vendored\n");
}

/// A task that leaves a link where the kept setup's directory is shown
/// (its warm worktree's `deps -> outside`): the next run's overlay goes
/// in place of the link, removed as a link, never followed; what it
/// pointed to is untouched.
#[test]
fn a_link_left_where_a_setup_is_shown_is_removed_never_followed() {
    let repo = project();
    if !crate::sandbox::sandbox_available(&repo) {
        return;
    }
    // `deps` ignored as a name (a link there too, so it stays in the warm
    // worktree as ignored files do).
    repo.write(".gitignore", "deps\n");
    repo.commit_all("deps ignored whatever it is");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("canary"), "untouched").unwrap();
    let plan = repo.plan(
        "l.toml",
        &format!(
            "{SETUP}[[task]]\nid = \"planter\"\nrun = '''\n\
             test \"$(cat deps/installed)\" = 'left-pad 1.3.0'\n\
             if [ \"$SWARM_RUN\" = one ]; then rm -rf deps && ln -s {} deps; fi\n\
             echo planted >> src/a.txt\n'''\n",
            outside.path().display()
        ),
    );
    // The first run makes the setup in the planter's worktree and plants
    // the link there (sandboxed, the link points outside its view).
    repo.run_plan(&plan, &["--name", "one"]).assert_code(0);
    let wt = repo.worktree_home().join(".warm/planter");
    assert!(
        std::fs::symlink_metadata(wt.join("deps"))
            .unwrap()
            .is_symlink()
    );
    let run = repo.run_plan(&plan, &["--name", "two"]);
    run.assert_code(0);
    setup_settings()
        .bind(|| insta::assert_snapshot!(redact(&stable_stderr(&run.stderr), &repo), @r#"
        warning: the plan grants more than swarm's defaults:
          [TMP]/plans/l.toml:2: [setup] run = ''': runs a command before every task, outside the task's own plan
          [TMP]/plans/l.toml:6: [setup] key = ["deps.lock"]: makes worktrees reuse a finished setup's files
        swarm: run two: 1 task, up to [N] at once, from HEAD ([HASH]) into branch swarm/two
          start      planter  (kept setup shown as an overlay in [T])
          succeeded  planter  [1/1]
          merged     planter

        run two: succeeded
          task     status          time  try  changed  result
          planter  merged         [T]s    1        1  refs/swarm/two/planter

          1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/two at [HASH], [T]s
        "#));
    assert_eq!(
        std::fs::read_to_string(outside.path().join("canary")).unwrap(),
        "untouched"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    let deps = std::fs::symlink_metadata(wt.join("deps")).unwrap();
    assert!(deps.is_dir(), "{deps:?}");
}

/// A kept setup is never removed under a task it is shown to: `swarm
/// clean --warm` while the task runs leaves it (and says why), the task
/// still reads setup's files after that clean, and a clean once the run
/// has ended removes it. (Before: the clean removed the lower layer of the
/// running task's overlay.)
#[test]
fn a_kept_setup_shown_to_a_running_task_is_not_removed_under_it() {
    use crate::warm_worktrees::{Background, wait_for};
    let repo = project();
    if !crate::sandbox::sandbox_available(&repo) {
        return;
    }
    let plan = repo.plan(
        "h.toml",
        &format!(
            "{SETUP}[[task]]\nid = \"t\"\nrun = '''\n\
             if [ \"$SWARM_RUN\" = two ]; then\n\
               touch holding; while [ ! -e go ]; do sleep 0.05; done; rm holding go\n\
             fi\n\
             test \"$(cat deps/installed)\" = 'left-pad 1.3.0' && echo read > src/a.txt\n'''\n"
        ),
    );
    repo.run_plan(&plan, &["--name", "one"]).assert_code(0);
    let mut two = Background(Some(
        repo.swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "two"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let worktree = repo.worktree_home().join(".warm/t");
    wait_for(&worktree.join("holding"));
    let cleaned = repo.swarm(&["clean", "one", "--warm"]);
    cleaned.assert_code(0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&cleaned.stdout, &repo), @"
    run one: removed 0 worktrees ([SIZE]) and 0 tmp directories ([SIZE])
    kept [SIZE] of build caches (swarm clean --caches frees them):
      [WORKTREES]/.cache/@setup ([SIZE])
    kept [WORKTREES]/.warm/t: a run is using this warm worktree
    kept [WORKTREES]/.setup/[HASH]-[HASH]: a run is copying this kept setup or showing it to its tasks
    freed [SIZE]
    "));
    std::fs::write(worktree.join("go"), "").unwrap();
    let out = two.take().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    setup_settings().bind(|| insta::assert_snapshot!(redact(&stable_stderr(&stderr), &repo), @r#"
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/h.toml:2: [setup] run = ''': runs a command before every task, outside the task's own plan
      [TMP]/plans/h.toml:6: [setup] key = ["deps.lock"]: makes worktrees reuse a finished setup's files
    swarm: run two: 1 task, up to [N] at once, from HEAD ([HASH]) into branch swarm/two
      start      t        (kept setup shown as an overlay in [T])
      succeeded  t        [1/1]
      merged     t

    run two: succeeded
      task  status          time  try  changed  result
      t     merged         [T]s    1        1  refs/swarm/two/t

      1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/two at [HASH], [T]s
    "#));
    assert_eq!(repo.show("swarm/two", "src/a.txt"), "read");
    repo.swarm(&["clean", "--warm"]).assert_code(0);
    let left = std::fs::read_dir(repo.worktree_home().join(".setup"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0);
}
