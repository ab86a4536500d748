//! Workers that misbehave and machines that run short: the run ends as it
//! should, with nothing left running and nothing lost.

use std::time::{Duration, Instant};

use crate::support::{TestRepo, redact, signal, snapshot_settings, summary_of, task, wait_until};

/// Pids of processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(marker)
                })
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn a_worker_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let repo = TestRepo::new();
    // Ignored signals stay ignored across exec: sleep ignores TERM too. Its
    // background child (with a unique duration, to find it) as well.
    let plan = repo.plan(
        "stubborn.toml",
        "[[task]]\nid = \"stubborn\"\nrun = \"trap '' TERM; sleep 31.71 & echo ready > r.txt; sleep 31.72\"\n",
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--grace", "500ms"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = repo.worktree("stubborn", "stubborn").join("r.txt");
    wait_until("the task to start", || ready.exists());
    signal(&child, nix::sys::signal::Signal::SIGINT);
    let stopped = Instant::now();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_millis(450),
        "no grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(processes_with("31.71").is_empty() && processes_with("31.72").is_empty());
    let report = repo.report();
    assert_eq!(task(&report, "stubborn")["status"], "cancelled");
    assert_eq!(repo.show("refs/swarm/stubborn/stubborn", "r.txt"), "ready");
}

#[test]
fn a_worker_that_closes_its_output_and_runs_on_still_times_out() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "mute.toml",
        "[[task]]\nid = \"mute\"\ntimeout = \"1s\"\nrun = \"echo before; exec >&- 2>&-; sleep 32.61\"\n",
    );
    let started = Instant::now();
    let run = repo.run_plan(&plan, &["--grace", "300ms"]);
    run.assert_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let report = repo.report();
    let mute = task(&report, "mute");
    assert_eq!(mute["status"], "timed_out");
    let log = std::fs::read_to_string(mute["stdout_log"].as_str().unwrap()).unwrap();
    assert_eq!(log, "before\n");
    assert!(processes_with("32.61").is_empty());
}

#[test]
fn a_worker_that_fills_the_disk_stops_the_next_task_at_the_guard() {
    let repo = TestRepo::new();
    let stat = nix::sys::statvfs::statvfs(repo.path().as_path()).unwrap();
    let free = stat.blocks_available() * stat.fragment_size();
    // The guard sits 40 MiB below what is free now; the first task writes
    // 80 MiB in its TMPDIR and fails, the next must not start.
    let guard = free.saturating_sub(40 << 20);
    let plan = repo.plan(
        "full.toml",
        &format!(
            "[swarm]\nmin_free_space = \"{guard}B\"\non_failure = \"continue\"\nconcurrency = 1\n\n[[task]]\nid = \"filler\"\nrun = \"dd if=/dev/zero of=$TMPDIR/fill bs=1M count=80 2>/dev/null; exit 1\"\n\n[[task]]\nid = \"next\"\nrun = \"echo next > n.txt\"\n"
        ),
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "filler")["status"], "failed");
    let next = task(&report, "next");
    assert_eq!(next["status"], "failed");
    let reason = next["reason"].as_str().unwrap();
    // The guard stops tasks, not the record of the run: cleaning frees it
    // (the filler's TMPDIR is the tmp kept with its warm worktree, which
    // `--warm` frees, as the guard's reason says).
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(reason, &repo), @"not started: [SIZE] free on the file system of [WORKTREES]/full, below min_free_space ([SIZE]); free some space (`swarm clean --all --warm` removes ended runs and the warm worktrees, with what their setups and tasks built; `swarm clean --caches` the build caches) or lower min_free_space"));
    let cleaned = repo.swarm(&["clean", "--warm"]);
    cleaned.assert_code(0);
    // The sizes are the file system's: [SIZE] in the snapshot.
    assert!(
        cleaned.stdout.contains("freed 80.0 MiB") || cleaned.stdout.contains("freed 8"),
        "{}",
        cleaned.stdout
    );
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&cleaned.stdout, &repo), @"
    run full: removed 0 worktrees ([SIZE]) and 2 tmp directories ([SIZE])
    removed [WORKTREES]/.warm/filler ([SIZE])
    removed [WORKTREES]/.warm/.tmp/filler ([SIZE])
    freed [SIZE]
    ")
    });
}

#[test]
fn a_task_that_needs_more_memory_than_the_machine_has_is_not_started() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "big.toml",
        "[swarm]\non_failure = \"continue\"\n\n[[task]]\nid = \"huge\"\nmemory = \"1000TiB\"\nrun = \"true\"\n\n[[task]]\nid = \"small\"\nrun = \"true\"\n\n[[task]]\nid = \"after\"\ndeps = [\"huge\"]\nrun = \"true\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let report = repo.report();
    let huge = task(&report, "huge");
    assert_eq!(huge["status"], "failed");
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(huge["reason"].as_str().unwrap(), &repo), @"not started: it needs 1000.0 TiB of memory (`memory`, or its agent's) and the machine has [SIZE] available"));
    assert_eq!(huge["attempts"], 0);
    assert_eq!(task(&report, "small")["status"], "merged");
    assert_eq!(task(&report, "after")["status"], "blocked");
}

#[test]
fn sigterm_stops_a_run_like_ctrl_c_and_a_second_signal_skips_the_grace_period() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "term.toml",
        "[[task]]\nid = \"stubborn\"\nrun = \"trap '' TERM; echo ready > r.txt; sleep 33.81\"\n",
    );
    // A grace period far longer than the test: only the second signal can
    // end it early.
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--grace", "60s"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = repo.worktree("term", "stubborn").join("r.txt");
    wait_until("the task to start", || ready.exists());
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it did not wait for the grace period"
    );
    let second = Instant::now();
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "{:?}",
        second.elapsed()
    );
    assert!(processes_with("33.81").is_empty());
    assert_eq!(repo.show("refs/swarm/term/stubborn", "r.txt"), "ready");
}

/// What `swarm doctor` says of cgroups on this machine.
fn cgroups(repo: &TestRepo) -> Option<String> {
    let doctor = repo.swarm(&["doctor"]);
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.starts_with("cgroups"))?
        .to_string();
    (!line.contains("unavailable")).then_some(line)
}

#[test]
fn a_task_over_its_memory_is_killed_and_reported_as_out_of_memory() {
    let repo = TestRepo::new();
    // Three processes of 48 MiB each: every one is under the task's 96 MiB,
    // together they are not.
    let plan = repo.plan(
        "oom.toml",
        "[swarm]\non_failure = \"continue\"\n\n[[task]]\nid = \"hungry\"\nmemory = \"96MiB\"\nrun = '''\nfor i in 1 2 3; do python3 -c 'import time; x = bytearray(48 << 20); time.sleep(3)' & done\nwait; wait; exit 1\n'''\n\n[[task]]\nid = \"modest\"\nmemory = \"96MiB\"\nrun = \"python3 -c 'x = bytearray(16 << 20)' && echo ok > ok.txt\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "modest")["status"], "merged");
    let hungry = task(&report, "hungry");
    assert_eq!(hungry["status"], "failed");
    let reason = hungry["reason"].as_str().unwrap();
    match cgroups(&repo) {
        // The task as a whole is limited: the kernel kills one of them.
        Some(_) => assert_eq!(
            reason,
            "killed: out of memory (the task's limit is 96.0 MiB, `memory` in the plan)"
        ),
        // Each process is limited on its own, so all three fit: the task
        // fails by its own exit code.
        None => assert_eq!(reason, "exited with code 1"),
    }
}

#[test]
fn unconfined_workers_and_their_children_die_with_a_killed_coordinator() {
    let repo = TestRepo::new();
    // Each task leaves a background child and a grandchild in a new shell.
    let plan = repo.plan(
        "orphans.toml",
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"a\"\nrun = \"sleep 41.71 & sh -c 'sleep 41.71' & touch $TMPDIR/../../ready-a; sleep 41.71\"\n\n\
         [[task]]\nid = \"b\"\nrun = \"sleep 41.71 & touch $TMPDIR/../../ready-b; wait\"\n",
    );
    let mut coordinator = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "orphans"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run_dir = repo.path().join(".swarm/runs/orphans");
    wait_until("both tasks to start their children", || {
        run_dir.join("ready-a").exists() && run_dir.join("ready-b").exists()
    });
    assert!(processes_with("41.71").len() >= 4);
    coordinator.kill().unwrap();
    coordinator.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with("41.71").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        processes_with("41.71").is_empty(),
        "unconfined workers outlived their coordinator"
    );
}

/// `setsid` leaves the task's process group: only the run's cgroup still
/// holds what it starts (where the machine gives swarm cgroups).
#[test]
fn unconfined_processes_that_leave_their_group_die_with_a_killed_coordinator() {
    let repo = TestRepo::new();
    assert!(
        cgroups(&repo).is_some(),
        "this test needs cgroups for swarm (see `swarm doctor`): run it as root or in a delegated cgroup"
    );
    let plan = repo.plan(
        "escape.toml",
        // Two tasks, whose watchers share the cgroup; more escapees than
        // one read of the member list holds.
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"a\"\nrun = \"for i in $(seq 700); do setsid sleep 42.71 & done; touch $TMPDIR/../../ready-a; sleep 42.72\"\n\n\
         [[task]]\nid = \"b\"\nrun = \"setsid sleep 42.71 & sleep 42.72 & touch $TMPDIR/../../ready-b; wait\"\n",
    );
    let mut coordinator = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "escape"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run_dir = repo.path().join(".swarm/runs/escape");
    wait_until("the tasks to start their escapees", || {
        run_dir.join("ready-a").exists()
            && run_dir.join("ready-b").exists()
            && processes_with("42.71").len() >= 701
    });
    coordinator.kill().unwrap();
    coordinator.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(processes_with("42.71").is_empty() && processes_with("42.72").is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        processes_with("42.71").is_empty(),
        "a process that left the task's group outlived the coordinator"
    );
    assert!(processes_with("42.72").is_empty());
}

#[test]
fn what_an_unconfined_task_leaves_running_outside_its_group_ends_with_the_run() {
    let repo = TestRepo::new();
    assert!(
        cgroups(&repo).is_some(),
        "this test needs cgroups for swarm (see `swarm doctor`): run it as root or in a delegated cgroup"
    );
    // A daemon of its own session, its output closed so that the task's
    // end does not wait for it.
    let plan = repo.plan(
        "daemon.toml",
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"a\"\nrun = \"setsid sleep 43.71 >/dev/null 2>&1 < /dev/null & echo ok > ok.txt\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(0);
    assert!(
        processes_with("43.71").is_empty(),
        "a daemon an unconfined task started outlived the run"
    );
}

#[test]
fn an_unconfined_workers_exit_code_signal_and_grace_period_are_its_own() {
    let repo = TestRepo::new();
    // The watcher in front of an unconfined command passes its end on
    // unchanged, and a timeout's SIGTERM reaches the command, which may
    // use its grace period.
    let plan = repo.plan(
        "ends.toml",
        "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n\
         [[task]]\nid = \"code\"\nrun = \"exit 7\"\n\n\
         [[task]]\nid = \"signal\"\nrun = \"kill -USR2 $$\"\n\n\
         [[task]]\nid = \"graceful\"\ntimeout = \"1s\"\nrun = \"trap 'echo cleaned > cleaned.txt; exit 0' TERM; sleep 30 & wait\"\n",
    );
    repo.run_plan(&plan, &["--name", "ends", "--grace", "5s"])
        .assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "code")["exit_code"], 7, "{report}");
    let reason = task(&report, "signal")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    insta::assert_snapshot!(reason, @"killed by signal 12 (SIGUSR2)");
    assert_eq!(task(&report, "graceful")["status"], "timed_out");
    assert_eq!(
        repo.show("refs/swarm/ends/graceful", "cleaned.txt"),
        "cleaned"
    );
}

#[test]
fn a_closed_or_full_stderr_or_stdout_loses_what_swarm_prints_never_its_exit_code() {
    // `swarm run plan.toml 2>&1 >/dev/null | true`: the reader of stderr
    // is gone before the summary is printed; `2>/dev/full`: every write
    // fails. The run's own exit code either way, 0 and 1.
    use std::process::Stdio;
    let repo = TestRepo::new();
    let ok = repo.plan(
        "ok.toml",
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n",
    );
    let failing = repo.plan(
        "failing.toml",
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"b\"\nrun = \"exit 3\"\n",
    );
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for (n, (plan, code)) in [(&ok, 0), (&failing, 1)].into_iter().enumerate() {
        let plan = plan.to_str().unwrap();
        // A pipe whose reader is gone.
        let mut cmd = repo.swarm_cmd(&["run", plan, "--name", &format!("closed-{n}")]);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        assert_eq!(
            child.wait().unwrap().code(),
            Some(code),
            "{plan}: stderr closed"
        );
        // A full device.
        let status = repo
            .swarm_cmd(&["run", plan, "--name", &format!("full-{n}")])
            .stdout(full())
            .stderr(full())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code), "{plan}: stderr and stdout full");
    }
    // A command that only prints, into a full stdout: its own code too.
    let status = repo
        .swarm_cmd(&["status", "full-0"])
        .stdout(full())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_worktree_removed_from_outside_while_its_task_runs_is_said_so_never_as_writes_outside() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"t\"\npaths = [\"src/\"]\n\
         run = \"touch src/started; sleep 2; echo hi > src/lib.txt\"\n",
    );
    let child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "gone"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let worktree = repo.worktree("gone", "t");
    wait_until("the task to start", || {
        worktree.join("src/started").exists()
    });
    std::fs::remove_dir_all(&worktree).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Its summary (the line before it says how many tasks run at once:
    // the machine's CPU count).
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(summary_of(&stderr), &repo), @"
    run gone: finished with failures (exit 1)
      task  status          time  try  changed  result
      t     failed         [T]s    1        0  its worktree [WORKTREES]/.warm/t disappeared while it ran (removed from outside swarm): nothing of it could be kept

      0 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/gone at [HASH], [T]s
      warning: `t` attempt 1 was lost: its worktree [WORKTREES]/.warm/t disappeared while it ran (removed from outside swarm): nothing of it could be kept
      t: its worktree [WORKTREES]/.warm/t disappeared while it ran (removed from outside swarm): nothing of it could be kept
      t log: .swarm/runs/gone/logs/t/1.err
    "));
    assert!(!stderr.contains("outside its paths"), "{stderr}");
    assert!(!stderr.contains("not committed"), "{stderr}");
    // The next run of it starts afresh and succeeds.
    repo.run_plan(&plan, &["--name", "again"]).assert_code(0);
    assert_eq!(repo.show("swarm/again", "src/lib.txt"), "hi");
}

#[test]
fn a_coordinator_paused_past_a_timeout_does_not_time_out_tasks_that_had_ended() {
    // SIGSTOP for 4 s (a suspended VM, a debugger, a loaded host), then
    // SIGCONT: two tasks ended during the pause, well within their 2 s,
    // and succeed; one that really runs past its timeout is still timed
    // out.
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "[swarm]\nsandbox = \"none\"\non_failure = \"continue\"\n\n\
         [[task]]\nid = \"quick\"\ntimeout = \"2s\"\nrun = \"sleep 0.3; echo q > q.txt\"\n\n\
         [[task]]\nid = \"second\"\ntimeout = \"2s\"\nrun = \"sleep 1; echo s > s.txt\"\n\n\
         [[task]]\nid = \"long\"\ntimeout = \"2s\"\nrun = \"sleep 30\"\n",
    );
    let child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "paused", "-j", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let journal = repo.path().join(".swarm/runs/paused/events.jsonl");
    wait_until("the tasks to start", || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.matches("task_started").count() == 3)
    });
    signal(&child, nix::sys::signal::Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(4));
    signal(&child, nix::sys::signal::Signal::SIGCONT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report = repo.report();
    assert_eq!(task(&report, "quick")["status"], "merged", "{stderr}");
    assert_eq!(task(&report, "second")["status"], "merged", "{stderr}");
    assert_eq!(task(&report, "long")["status"], "timed_out", "{stderr}");
}

/// Every run directory's journal: how many `run_started` and
/// `run_finished` lines each holds.
fn starts_and_ends(repo: &TestRepo) -> Vec<(String, usize, usize)> {
    let runs = repo.path().join(".swarm/runs");
    let mut all: Vec<(String, usize, usize)> = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let journal =
                std::fs::read_to_string(e.path().join("events.jsonl")).unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                journal.matches("\"run_started\"").count(),
                journal.matches("\"run_finished\"").count(),
            )
        })
        .collect();
    all.sort();
    all
}

/// Starts `swarm` twice at the same moment with the same arguments, and
/// waits for both.
fn twice_at_once(repo: &TestRepo, args: &[&str]) -> [std::process::Output; 2] {
    let spawn = || {
        repo.swarm_cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()]
}

#[test]
fn two_runs_of_one_plan_started_together_are_two_runs_never_one_driven_twice() {
    // Two CI jobs started at once in one checkout, the run's name chosen by
    // swarm: both finish, as runs of their own, each journal with one start
    // and one end, and neither warns about changes the other made.
    let repo = TestRepo::new();
    let mut toml = String::new();
    for i in 0..6 {
        toml += &format!("[[task]]\nid = \"t{i:02}\"\nrun = \"echo {i} > f{i}.txt\"\n\n");
    }
    let plan = repo.plan("twice.toml", &toml);
    let plan = plan.to_str().unwrap();
    for _ in 0..4 {
        for out in twice_at_once(&repo, &["run", plan, "-q"]) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            assert!(!stderr.contains("uncommitted"), "{stderr}");
        }
    }
    let runs = starts_and_ends(&repo);
    assert_eq!(runs.len(), 8, "{runs:?}");
    for (run, started, finished) in &runs {
        assert_eq!((*started, *finished), (1, 1), "run {run}: {runs:?}");
        assert_eq!(repo.show(&format!("swarm/{run}"), "f5.txt"), "5");
    }
    // Every worktree record git keeps is whole.
    assert!(repo.git_output(&["worktree", "list"]).status.success());
}

#[test]
fn two_runs_given_one_name_started_together_one_runs_and_the_other_is_refused_with_its_holder() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "named.toml",
        "[[task]]\nid = \"a\"\nrun = \"sleep 0.2; echo a > a.txt\"\n\n\
         [[task]]\nid = \"b\"\nrun = \"echo b > b.txt\"\n",
    );
    let plan = plan.to_str().unwrap();
    let holder = regex::Regex::new(r"another swarm process \(pid \d+\) is driving it").unwrap();
    for round in 0..4 {
        let name = format!("same{round}");
        let outs = twice_at_once(&repo, &["run", plan, "-q", "--name", &name]);
        let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
        assert_eq!(
            codes.iter().filter(|c| **c == Some(0)).count(),
            1,
            "{codes:?}: {}\n{}",
            String::from_utf8_lossy(&outs[0].stderr),
            String::from_utf8_lossy(&outs[1].stderr)
        );
        let refused = outs.iter().find(|o| o.status.code() != Some(0)).unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        let named_holder = holder.is_match(&stderr);
        assert!(
            // Refused while the other drives it (naming it), or once it
            // has made the run (its branch, or its journal).
            named_holder || stderr.contains("the name is already used in this repository"),
            "{stderr}"
        );
        assert!(!stderr.contains("uncommitted"), "{stderr}");
    }
    for (run, started, finished) in starts_and_ends(&repo) {
        assert_eq!((started, finished), (1, 1), "run {run}");
    }
}

/// Issue 75, finding 6: a `[setup]` that fills the disk (an 8 MiB tmpfs
/// holding the worktrees) does not keep it full: what it wrote in the
/// task's warm worktree goes, the reason says so and names the command
/// that frees what other worktrees hold; a later run has room again.
#[test]
fn a_setup_that_fills_the_disk_frees_what_it_wrote() {
    let repo = TestRepo::new();
    let small = repo.outside().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "this test mounts a small tmpfs: run it as root"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let free = || {
        let stat = nix::sys::statvfs::statvfs(small.as_path()).unwrap();
        stat.blocks_available() * stat.fragment_size()
    };
    let plan = repo.plan(
        "fill.toml",
        "[swarm]\nmin_free_space = \"1MB\"\n\n[setup]\nrun = \"head -c 12000000 /dev/zero > big.bin\"\n\n\
         [[task]]\nid = \"t\"\ncreates = [\"t.txt\"]\nrun = \"echo t > t.txt\"\n",
    );
    let run = repo.run_plan(&plan, &["--worktrees", small.to_str().unwrap()]);
    run.assert_code(1);
    let reason = task(&repo.report(), "t")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&reason, &repo), @"setup exited with code 1; see `swarm logs fill t --setup`; the disk is full: what setup wrote in its warm worktree was removed (`swarm clean --all --warm` frees what the others hold)"));
    assert!(free() > 6 << 20, "still full: {} free", free());
}
