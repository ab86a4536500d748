//! Papercuts (issue 15): what a user meets in ordinary use, each fixed
//! and checked here.

use std::fs::File;

use crate::support::TestRepo;

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

    let status = repo.swarm(&["status", "r"]);
    status.assert_code(0);
    assert!(
        status.stdout.contains(
            "run r: interrupted (its coordinator is gone); `swarm resume r` continues it"
        ),
        "{}",
        status.stdout
    );

    // While a coordinator holds the run's lock, the run is running.
    let lock = File::open(repo.path().join(".swarm/runs/r/lock")).unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    let status = repo.swarm(&["status"]);
    status.assert_code(0);
    assert!(
        status.stdout.contains("run r: running\n"),
        "{}",
        status.stdout
    );
    drop(held);
}
