//! `swarm clean`: frees worktrees and scratch space, never work.

use std::path::Path;

use crate::support::{TestRepo, wait_until};

#[test]
fn clean_frees_worktrees_but_commits_work_that_is_on_no_ref_first() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "c.toml",
        "[swarm]\non_failure = \"continue\"\n\n[[task]]\nid = \"good\"\nrun = \"echo good > good.txt\"\n\n[[task]]\nid = \"bad\"\nrun = \"echo half > half.txt; exit 3\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    // The failed task's worktree stays for inspection; someone edits it
    // after the run, so part of its content is on no ref.
    let worktree = repo.worktree("c", "bad");
    assert!(worktree.join("half.txt").exists());
    std::fs::write(worktree.join("fix.txt"), "by hand\n").unwrap();

    let out = repo.swarm(&["clean", "--refs"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("run c: removed 1 worktree"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("kept bad's uncommitted work on refs/swarm/c/bad.1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("deleted refs/swarm/c/good (merged)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("freed "), "{}", out.stdout);
    assert!(!worktree.exists());
    assert_eq!(repo.show("refs/swarm/c/bad.1", "fix.txt"), "by hand");
    assert_eq!(repo.show("refs/swarm/c/bad.1", "half.txt"), "half");
    // The failed task's own ref stays (not merged); the merged work is in
    // the integration branch.
    assert_eq!(repo.show("refs/swarm/c/bad", "half.txt"), "half");
    assert_eq!(repo.show("swarm/c", "good.txt"), "good");
    // git forgot the worktree too.
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(
        list.lines().filter(|l| l.starts_with("worktree ")).count(),
        1,
        "{list}"
    );
    // A second clean has nothing left to do and keeps nothing twice.
    let again = repo.swarm(&["clean"]);
    again.assert_code(0);
    assert!(
        again.stdout.contains("removed 0 worktrees"),
        "{}",
        again.stdout
    );
    assert!(!again.stdout.contains("kept"), "{}", again.stdout);
}

#[test]
fn clean_leaves_a_running_run_alone() {
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
    wait_until("the task to start", || started.exists());
    let out = repo.swarm(&["clean", "busy"]);
    let _ = child.kill();
    let _ = child.wait();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("clean run `busy`: it is being driven by swarm process"),
        "{}",
        out.stderr
    );
    assert!(started.exists(), "clean removed a running task's worktree");
}

#[test]
fn clean_names_an_unknown_run() {
    let repo = TestRepo::new();
    let plan = repo.plan("one.toml", "[[task]]\nid = \"a\"\nrun = \"true\"\n");
    repo.run_plan(&plan, &[]).assert_code(0);
    let out = repo.swarm(&["clean", "nope"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("no such run") && out.stderr.contains("runs: one"),
        "{}",
        out.stderr
    );
}

#[test]
fn clean_goes_past_a_worktree_it_cannot_commit_and_says_why() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "c.toml",
        "[swarm]\non_failure = \"continue\"\n\n[[task]]\nid = \"bad\"\nrun = \"echo half > half.txt; exit 3\"\n\n[[task]]\nid = \"other\"\nrun = \"echo other > other.txt; exit 3\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let bad = repo.worktree("c", "bad");
    let other = repo.worktree("c", "other");
    std::fs::write(bad.join("unsaved.txt"), "by hand\n").unwrap();
    std::fs::write(other.join("unsaved.txt"), "by hand\n").unwrap();
    // Lose `bad`'s git records (its admin directory under .git/worktrees):
    // its work cannot be committed, so it must not be deleted either.
    let admin = std::fs::read_to_string(bad.join(".git")).unwrap();
    let admin = Path::new(admin.trim().strip_prefix("gitdir: ").unwrap()).to_path_buf();
    assert!(admin.starts_with(repo.path().join(".git/worktrees")));
    std::fs::remove_dir_all(&admin).unwrap();
    let tmp = repo.path().join(".swarm/runs/c/tmp");
    assert!(tmp.exists());

    let out = repo.swarm(&["clean"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("error: run c: failed to keep the work of task `bad`")
            && out.stderr.contains("left in place")
            && out.stderr.contains("none under .git/worktrees names it"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("removed 1 worktree"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("kept other's uncommitted work on refs/swarm/c/other.1"),
        "{}",
        out.stdout
    );
    assert!(bad.join("unsaved.txt").exists(), "unsaved work was deleted");
    assert!(!other.exists());
    assert!(!tmp.exists());
    assert_eq!(repo.show("refs/swarm/c/other.1", "unsaved.txt"), "by hand");
}
