//! Papercuts (issue 15): what a user meets in ordinary use, each fixed
//! and checked here.

use std::fs::File;

use crate::support::{TestRepo, redact, snapshot_settings, stable_stderr, summary_of};

const HEADER: &str = "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n";

/// Cuts a run's journal after its last `task_finished`, as a coordinator
/// killed there leaves it.
fn crash_after_last_task(repo: &TestRepo, run: &str) {
    let path = repo.path().join(format!(".swarm/runs/{run}/events.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"run_finished\""))
        .collect();
    assert!(kept.len() < text.lines().count(), "the run had finished");
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
}

#[test]
fn status_of_a_run_whose_coordinator_died_says_interrupted_and_how_to_resume() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        &format!("{HEADER}[[task]]\nid = \"one\"\nrun = \"echo 1 > one.txt\"\n"),
    );
    repo.run_plan(&plan, &["--name", "r"]).assert_code(0);
    crash_after_last_task(&repo, "r");

    let interrupted = repo.swarm(&["status", "r"]);
    interrupted.assert_code(0);

    // While a coordinator holds the run's lock, the run is running.
    let lock = File::open(repo.path().join(".swarm/runs/r/lock")).unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    let running = repo.swarm(&["status"]);
    running.assert_code(0);
    drop(held);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("status_interrupted", redact(&interrupted.stdout, &repo));
        insta::assert_snapshot!("status_running", redact(&running.stdout, &repo));
    });
}

#[test]
fn a_failed_verify_has_logs_of_its_own_and_a_reason_naming_it() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{HEADER}[[task]]\nid = \"t\"\nrun = \"echo built; echo run-err >&2\"\nverify = \"echo checking; echo bad >&2; exit 4\"\n"
        ),
    );
    let run = repo.run_plan(&plan, &["--name", "v"]);
    run.assert_code(1);
    let reason = r#"verify "echo checking; echo bad >&2; exit 4" exited with code 4, see .swarm/runs/v/logs/t/1.verify.err (and .verify.out)"#;
    let report = repo.report();
    assert_eq!(crate::support::task(&report, "t")["reason"], reason);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @r#"
        run v: finished with failures (exit 1)
          task  status          time  try  changed  result
          t     failed         [T]s    1        0  refs/swarm/v/t

          0 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/v at [HASH], [T]s
          t: verify "echo checking; echo bad >&2; exit 4" exited with code 4, see .swarm/runs/v/logs/t/1.verify.err (and .verify.out)
        "#));
    let log = |name: &str| {
        std::fs::read_to_string(repo.path().join(".swarm/runs/v/logs/t").join(name)).unwrap()
    };
    assert_eq!(log("1.out"), "built\n");
    assert_eq!(log("1.err"), "run-err\n");
    assert_eq!(log("1.verify.out"), "checking\n");
    assert_eq!(log("1.verify.err"), "bad\n");
    let logs = repo.swarm(&["logs", "v", "t"]);
    logs.assert_code(0);
    assert_eq!(
        logs.stdout,
        "built\n--- stderr\nrun-err\n--- verify stdout\nchecking\n--- verify stderr\nbad\n"
    );
}

#[test]
fn logs_of_nothing_say_so_and_one_argument_means_the_latest_run() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        &format!(
            "{HEADER}[[task]]\nid = \"fails\"\nrun = \"echo out; exit 3\"\n\n[[task]]\nid = \"after\"\ndeps = [\"fails\"]\nrun = \"true\"\n"
        ),
    );
    repo.run_plan(&plan, &["--name", "l"]).assert_code(1);

    let never = repo.swarm(&["logs", "l", "after"]);
    never.assert_code(2);
    assert_eq!(never.stdout, "");

    let attempt = repo.swarm(&["logs", "l", "fails", "--attempt", "2"]);
    attempt.assert_code(2);

    // `swarm logs TASK`: the latest run's task.
    let latest = repo.swarm(&["logs", "fails"]);
    latest.assert_code(0);
    assert_eq!(latest.stdout, "out\n");

    // Logs that are gone are said to be gone.
    std::fs::remove_dir_all(repo.path().join(".swarm/runs/l/logs/fails")).unwrap();
    let gone = repo.swarm(&["logs", "fails"]);
    gone.assert_code(2);
    let refusals: String = [
        ("swarm logs l after", &never),
        ("swarm logs l fails --attempt 2", &attempt),
        ("swarm logs fails", &gone),
    ]
    .iter()
    .map(|(command, out)| format!("$ {command}\n{}\n", out.stderr))
    .collect();
    insta::assert_snapshot!("logs_refusals", redact(&refusals, &repo));
}

#[test]
fn a_run_stopped_by_a_failure_resumes_what_it_skipped() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "s.toml",
        "[swarm]\nsandbox = \"none\"\nconcurrency = 1\non_failure = \"stop\"\n\n\
         [[task]]\nid = \"fails\"\nrun = \"exit 1\"\n\n\
         [[task]]\nid = \"after\"\ndeps = [\"fails\"]\nrun = \"true\"\n\n\
         [[task]]\nid = \"later\"\nrun = \"echo later > later.txt\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let report = repo.report();
    assert_eq!(crate::support::task(&report, "later")["status"], "skipped");

    let resumed = repo.swarm(&["resume"]);
    // `fails` stays failed (and `after` blocked): the run still failed.
    resumed.assert_code(1);
    let report = repo.report();
    assert_eq!(crate::support::task(&report, "later")["status"], "merged");
    assert_eq!(crate::support::task(&report, "fails")["attempts"], 1);
    assert_eq!(crate::support::task(&report, "after")["status"], "blocked");
    assert_eq!(repo.show("swarm/s", "later.txt"), "later");

    // Nothing skipped any more: nothing to resume; the run as it ended,
    // with its own exit code.
    let again = repo.swarm(&["resume"]);
    again.assert_code(1);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "resume_after_a_stop",
            redact(
                &format!(
                    "$ swarm resume\n{}\n$ swarm resume\n{}",
                    stable_stderr(&resumed.stderr),
                    again.stderr
                ),
                &repo
            )
        );
    });
}

#[test]
fn a_succeeded_tasks_tmp_goes_with_its_worktree_and_clean_names_what_it_freed() {
    let repo = TestRepo::new();
    // Sandboxed, as by default: each task also has a view of the git
    // directory under tmp/.
    let plan = repo.plan(
        "t.toml",
        "[defaults]\nwarm = false\n\n[swarm]\non_failure = \"continue\"\n\n\
         [[task]]\nid = \"ok\"\nrun = \"head -c 100000 /dev/zero > $TMPDIR/scratch\"\n\n\
         [[task]]\nid = \"bad\"\nrun = \"head -c 100000 /dev/zero > $TMPDIR/scratch; exit 3\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let tmp = repo.path().join(".swarm/runs/t/tmp");
    assert!(!tmp.join("ok").exists(), "the succeeded task's tmp is kept");
    assert!(!tmp.join("ok.git").exists(), "its git view is kept");
    assert!(tmp.join("bad/scratch").exists());
    assert!(tmp.join("bad.git").exists());

    let out = repo.swarm(&["clean"]);
    out.assert_code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("run t: "))
        .unwrap();
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&out.stdout, &repo), @"
    run t: removed 1 worktree ([SIZE]) and 2 tmp directories ([SIZE])
    freed [SIZE]
    ")
    });
    // The tmp directories' size is theirs, not the worktree's.
    let tmp_size = line.rsplit('(').next().unwrap();
    assert!(
        tmp_size.contains("KiB") || tmp_size.contains("KB"),
        "{line}"
    );
    assert!(!tmp.exists());
}

#[test]
fn uncommitted_changes_are_said_to_be_left_out() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "d.toml",
        &format!("{HEADER}[[task]]\nid = \"read\"\nrun = \"cat README.md > seen.txt\"\n"),
    );
    // Clean: nothing said.
    let clean = repo.run_plan(&plan, &["--name", "clean"]);
    clean.assert_code(0);
    assert!(!clean.stderr.contains("uncommitted"), "{}", clean.stderr);

    repo.write("README.md", "# edited, not committed\n");
    repo.write("new.txt", "untracked\n");
    // One at a time: the header says how many at once (the CPU count).
    let dirty = repo.run_plan(&plan, &["--name", "dirty", "-j", "1"]);
    dirty.assert_code(0);
    // The warning, the header that says it again, the run, its summary.
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "uncommitted_changes_run",
            redact(&stable_stderr(&dirty.stderr), &repo)
        );
    });
    assert_eq!(repo.show("swarm/dirty", "seen.txt"), "# test repo");
}

#[test]
fn a_placeholder_that_is_no_matrix_key_is_refused_with_a_did_you_mean() {
    let repo = TestRepo::new();
    // The shell's own braces pass: ${VAR}, {a,b}, awk's {print $1}, find's {}.
    let ok = repo.plan(
        "ok.toml",
        "[[task]]\nid = \"t-{shard}\"\nrun = \"echo ${HOME} {a,b} | awk '{print $1}'; find . -exec true {} ';' # {shard}\"\nmatrix = { shard = [1, 2] }\n",
    );
    repo.swarm(&["validate", ok.to_str().unwrap()])
        .assert_code(0);

    let bad = repo.plan(
        "bad.toml",
        "[[task]]\nid = \"t-{shard}\"\nrun = \"make test SHARD={shrad}\"\nmatrix = { shard = [1, 2] }\n",
    );
    let out = repo.swarm(&["validate", bad.to_str().unwrap()]);
    out.assert_code(2);
    assert!(repo.swarm_traces().is_empty());
    insta::assert_snapshot!(redact(&out.stderr, &repo));
}

#[test]
fn build_output_that_is_not_ignored_is_named_with_how_to_leave_it_out() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "b.toml",
        &format!(
            "{HEADER}[[task]]\nid = \"build\"\nrun = \"mkdir -p target/debug src && touch target/debug/a target/debug/b src/new.rs\"\n\n\
             [[task]]\nid = \"ignored\"\nrun = \"printf 'target/\\\\n' > .gitignore; mkdir -p target && touch target/c\"\n"
        ),
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(0);
    // The summary ends with the warning. (The live view above it starts
    // the two tasks in either order.)
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run b: succeeded
          task     status          time  try  changed  result
          build    merged         [T]s    1        3  refs/swarm/b/build
          ignored  merged         [T]s    1        1  refs/swarm/b/ignored

          2 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/b at [HASH], [T]s
          warning: build committed 2 files under target/ (build output?); add `target/` to .gitignore (or .git/info/exclude) to leave it out
        "));
    assert!(!run.stderr.contains("warning: ignored"), "{}", run.stderr);
    let status = repo.swarm(&["status"]);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("status_build_output_warning", redact(&status.stdout, &repo));
    });
}

#[test]
fn a_repository_with_no_commits_says_so_and_how_to_make_one() {
    let repo = TestRepo::empty();
    let plan = repo.plan(
        "e.toml",
        &format!("{HEADER}[[task]]\nid = \"one\"\nrun = \"true\"\n"),
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(2);
    insta::assert_snapshot!("no_commits_yet", redact(&run.stderr, &repo));
}

#[test]
fn swarm_failing_itself_exits_3_not_as_a_failed_task() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "i.toml",
        &format!("{HEADER}[[task]]\nid = \"one\"\nrun = \"echo 1 > one.txt\"\n"),
    );
    // The tasks succeed; writing the JUnit report where no directory is
    // fails: swarm's failure, not the tasks' nor the plan's.
    let junit = repo.outside().join("no-such-dir/junit.xml");
    let run = repo.run_plan(
        &plan,
        &["--name", "i", "--junit", junit.to_str().unwrap(), "-j", "1"],
    );
    run.assert_code(3);
    // The run's summary, then swarm's own failure.
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "junit_not_written",
            redact(&stable_stderr(&run.stderr), &repo)
        );
    });
    // What was done is kept.
    assert_eq!(repo.show("swarm/i", "one.txt"), "1");
}

/// Issue 30's papercuts: the plan just written (not committed yet) is not
/// an "uncommitted change" of the run; a task that printed nothing has its
/// logs say so; `swarm run` without a plan names both ways to give one;
/// a `read_paths` entry swarm does not show is a warning.
#[test]
fn the_new_plan_is_no_uncommitted_change_and_silence_is_said() {
    let repo = TestRepo::new();
    std::fs::create_dir_all(repo.path().join("plans")).unwrap();
    let plan = repo.path().join("plans/new.toml");
    std::fs::write(
        &plan,
        format!("{HEADER}[[task]]\nid = \"quiet\"\nrun = \"true\"\n"),
    )
    .unwrap();
    let out = repo.run_plan(&plan, &["--name", "q"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("uncommitted"), "{}", out.stderr);
    let logs = repo.swarm(&["logs", "q", "quiet"]);
    logs.assert_code(0);
    assert_eq!(logs.stdout, "");
    insta::assert_snapshot!("logs_of_a_silent_task", logs.stderr);
    let none = repo.swarm(&["run"]);
    none.assert_code(2);
    insta::assert_snapshot!(redact(&none.stderr, &repo), @"
    error: the following required arguments were not provided:
      <PLAN|--goal <GOAL>>

    Usage: swarm run <PLAN|--goal <GOAL>>

    For more information, try '--help'.
    ");

    let etc = repo.plan(
        "etc.toml",
        "[swarm]\nread_paths = [\"/etc/hostname\"]\n\n[[task]]\nid = \"t\"\nrun = \"true\"\n",
    );
    let validate = repo.swarm(&["validate", etc.to_str().unwrap()]);
    validate.assert_code(0);
    insta::assert_snapshot!("read_paths_warning", redact(&validate.stderr, &repo));
}

/// `swarm completions SHELL` prints a completion script that knows the
/// subcommands (bash's is checked by bash itself).
#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let repo = TestRepo::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = repo.swarm(&["completions", shell]);
        out.assert_code(0);
        for word in ["run", "resume", "validate", "trust", "clean"] {
            assert!(out.stdout.contains(word), "{shell}: no `{word}`");
        }
        // Bash's words offered never include a hidden command (its
        // script names them only in case labels).
        if shell == "bash" {
            let offered: String = out
                .stdout
                .lines()
                .filter(|l| l.contains("opts=\""))
                .collect();
            assert!(
                !offered.contains("__sandbox"),
                "bash offers a hidden command"
            );
        }
    }
    let script = repo.path().join("swarm.bash");
    std::fs::write(&script, repo.swarm(&["completions", "bash"]).stdout).unwrap();
    let bash = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        bash.status.success(),
        "{}",
        String::from_utf8_lossy(&bash.stderr)
    );
}

/// Every mistake of a plan in one pass (issue 30): three misspelt keys in
/// three tables and two wrong values, each at its place, not one per run.
#[test]
fn three_typos_and_two_wrong_values_are_reported_at_once() {
    let repo = TestRepo::new();
    let plan = repo.plan_exact(
        "typos.toml",
        "[swarm]\nconcurency = 2\n\n[[task]]\nid = \"a\"\nrun = \"x\"\nretries = \"two\"\ntimout = \"1s\"\n\n[[task]]\nid = \"b\"\ncomand = \"y\"\nprocesses = \"many\"\n",
    );
    let out = repo.swarm(&["validate", plan.to_str().unwrap()]);
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    insta::assert_snapshot!(redact(&out.stderr, &repo));
}

/// `swarm status` of a run going on shows a running task's time so far,
/// not the 0.00s of its ended attempts (issue 63).
#[test]
fn status_shows_a_running_tasks_time_so_far() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "busy.toml",
        "[[task]]\nid = \"slow\"\nrun = \"echo x > x.txt; sleep 20\"\n",
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = repo.worktree("busy", "slow").join("x.txt");
    crate::support::wait_until("the task to start", || started.exists());
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let status = repo.swarm(&["status", "busy"]);
    let _ = child.kill();
    let _ = child.wait();
    status.assert_code(0);
    let line = status
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("slow"))
        .unwrap_or_else(|| panic!("{}", status.stdout));
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(line, @"  slow  running        [T]s    1        0"));
    let time = line.split_whitespace().nth(2).unwrap_or_default();
    let seconds: f64 = time.trim_end_matches('s').parse().unwrap_or(0.0);
    assert!(seconds >= 1.0, "{line}");
}

/// Issue 79: `swarm validate` counts a sharded task as the tasks it runs,
/// writes a network list as a plan does, and says that a read-only task
/// gets no `[setup]` before it fails for a missing install.
#[test]
fn validate_counts_shards_writes_networks_as_plans_do_and_warns_of_setup_for_readonly_tasks() {
    let repo = TestRepo::new();
    repo.write("tests/test_a.py", "");
    repo.write("tests/test_b.py", "");
    repo.write("tests/test_c.py", "");
    repo.commit_all("tests");
    let plan = repo.plan(
        "v.toml",
        "[setup]\nrun = \"npm ci\"\nnetwork = [\"registry.npmjs.org\"]\n\n\
         [[task]]\nid = \"t\"\nshards = 2\nmatrix = { file = { glob = \"tests/test_*.py\" } }\nrun = \"echo {entries}\"\n\n\
         [[task]]\nid = \"check\"\nisolation = \"readonly\"\nrun = \"npm test\"\n",
    );
    let out = repo.swarm(&["validate", plan.to_str().unwrap()]);
    out.assert_code(0);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(": ok: ") || l.starts_with("setup "))
        .map(|l| l.split(", base ").next().unwrap_or(l))
        .map(|l| l.rsplit("plans/").next().unwrap_or(l))
        .collect();
    insta::assert_snapshot!(lines.join("\n"), @r#"
    v.toml: ok: 2 tasks (1 sharded into 2: 3 tasks run), 2 without dependencies, longest chain 1
    setup             npm ci (no key: runs in every fresh worktree; network ["registry.npmjs.org"])
    setup             not for read-only task `check` (their checkout is shared and never set up: give them `isolation = "worktree"` if they need what setup installs)
    "#);
}
