//! git maintenance run beside a run (`git gc --prune=now` in a loop, as a
//! person or a tool may): nothing swarm wrote is lost, and a run killed
//! meanwhile resumes to the exact tree.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::{TestRepo, task, wait_until};

/// `git gc --prune=now` (and a bare `git prune --expire=now`) in `repo`,
/// again and again until dropped; how many completed.
struct GcLoop {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GcLoop {
    fn start(repo: &TestRepo) -> Self {
        let (stop, done) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (halt, count) = (Arc::clone(&stop), Arc::clone(&done));
        let dir = repo.path();
        let thread = std::thread::spawn(move || {
            let mut round = 0;
            while !halt.load(Ordering::SeqCst) {
                let args: &[&str] = match round % 3 {
                    2 => &["prune", "--expire=now"],
                    _ => &["gc", "--prune=now", "--quiet"],
                };
                round += 1;
                let ok = Command::new("git")
                    .current_dir(&dir)
                    .env("GIT_CONFIG_GLOBAL", "/dev/null")
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Self {
            stop,
            done,
            thread: Some(thread),
        }
    }

    /// Stops the loop; how many gc or prune runs completed.
    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.done.load(Ordering::SeqCst)
    }
}

/// A plan of `n` tasks, each writing files of its own (a new file, a new
/// directory, a changed shared file's line of its own), slow enough for
/// several gc runs to pass through it.
fn plan(repo: &TestRepo, n: usize) -> std::path::PathBuf {
    let mut lines = String::new();
    for i in 0..n {
        lines += &format!("line {i}\n\n\n");
    }
    repo.write("shared.txt", &lines);
    repo.commit_all("shared file");
    let mut toml = String::from("[swarm]\non_failure = \"continue\"\n\n");
    for i in 0..n {
        toml += &format!(
            "[[task]]\nid = \"t{i:02}\"\nrun = \"mkdir -p d{i} && seq 1 {lines} > d{i}/n.txt && echo {i}-{i} > f{i}.txt && \
             sed -i 's/^line {i}$/line {i} done/' shared.txt && sleep 0.2\"\n\n",
            lines = 100 + i
        );
    }
    repo.plan("gc.toml", &crate::support::allow_overlap(&toml))
}

/// What every task of [`plan`] must have left on `rev`.
fn assert_all_there(repo: &TestRepo, rev: &str, n: usize) {
    let shared = repo.show(rev, "shared.txt");
    for i in 0..n {
        assert_eq!(repo.show(rev, &format!("f{i}.txt")), format!("{i}-{i}"));
        let numbers = repo.show(rev, &format!("d{i}/n.txt"));
        assert_eq!(numbers.lines().count(), 100 + i);
        assert!(shared.contains(&format!("line {i} done")), "{shared}");
    }
}

/// git's own check that every object every ref, reflog and index reaches
/// is there.
fn assert_whole(repo: &TestRepo) {
    let out = repo.git_output(&["fsck", "--full", "--no-dangling", "--no-progress"]);
    assert!(
        out.status.success(),
        "git fsck: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The keep files swarm wrote that are still there.
fn swarm_keeps(repo: &TestRepo) -> Vec<String> {
    std::fs::read_dir(repo.path().join(".git/objects/pack"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "keep"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|text| text.starts_with("swarm run "))
        .collect()
}

#[test]
fn gc_prune_now_in_a_loop_beside_a_run_loses_nothing() {
    let repo = TestRepo::new();
    let n = 16;
    let plan = plan(&repo, n);
    let gc = GcLoop::start(&repo);
    let run = repo.run_plan(&plan, &["--name", "gc", "-j", "2"]);
    let gcs = gc.stop();
    run.assert_code(0);
    assert!(gcs >= 3, "only {gcs} gc runs passed through the run");
    let report = repo.report();
    for i in 0..n {
        assert_eq!(task(&report, &format!("t{i:02}"))["status"], "merged");
        // Each task's own ref holds its work, whole.
        assert_eq!(
            repo.show(&format!("refs/swarm/gc/t{i:02}"), &format!("f{i}.txt")),
            format!("{i}-{i}")
        );
    }
    assert_all_there(&repo, "swarm/gc", n);
    assert_whole(&repo);
    // The run's refs hold everything now: its packs are released.
    assert_eq!(swarm_keeps(&repo), Vec::<String>::new());
}

#[test]
fn a_run_killed_while_gc_prunes_resumes_to_the_exact_tree() {
    let repo = TestRepo::new();
    let n = 12;
    let plan = plan(&repo, n);
    let gc = GcLoop::start(&repo);
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "killed", "-j", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = repo.path().join(".swarm/runs/killed/events.jsonl");
    wait_until("some tasks to merge", || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.matches("\"task_merged\"").count() >= 4)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Held while the run is not finished: a kill does not release them.
    assert!(!swarm_keeps(&repo).is_empty());
    let resumed = repo.swarm(&["resume", "killed"]);
    let gcs = gc.stop();
    resumed.assert_code(0);
    assert!(gcs >= 2, "only {gcs} gc runs passed through the run");
    assert_all_there(&repo, "swarm/killed", n);
    assert_whole(&repo);
    assert_eq!(swarm_keeps(&repo), Vec::<String>::new());
}

/// Issue 75, finding 1: a task with two or more dependencies starts from
/// the merge of their results, which swarm makes; it is held from its
/// making like every other object swarm writes, so a prune in a loop
/// beside runs that reuse their warm worktrees never takes it (where it
/// was written loose: "object not found", and `git fsck` found a
/// worktree's HEAD pointing at nothing).
#[test]
fn a_fan_in_tasks_start_is_held_against_prune_beside_warm_runs() {
    let repo = TestRepo::new();
    let mut toml = String::from("[swarm]\non_failure = \"continue\"\n\n");
    for i in 1..=4 {
        toml += &format!(
            "[[task]]\nid = \"a{i}\"\ncreates = [\"a{i}.txt\"]\nrun = \"sleep 0.2; date +%N > a{i}.txt\"\n\n"
        );
    }
    for (b, deps) in [("b1", "\"a1\", \"a2\""), ("b2", "\"a3\", \"a4\"")] {
        toml += &format!(
            "[[task]]\nid = \"{b}\"\ndeps = [{deps}]\ncreates = [\"{b}.txt\"]\nrun = \"sleep 0.3; cat a*.txt > {b}.txt\"\n\n"
        );
    }
    toml += "[[task]]\nid = \"c\"\ndeps = [\"b1\", \"b2\"]\ncreates = [\"c.txt\"]\nrun = \"sleep 0.3; cat b*.txt > c.txt\"\n";
    let plan = repo.plan_exact("fanin.toml", &toml);
    let gc = GcLoop::start(&repo);
    for round in 1..=3 {
        let run = repo.run_plan(&plan, &["--name", &format!("fanin{round}"), "-j", "2"]);
        assert_eq!(run.code, 0, "round {round}: {}", run.stderr);
        let branch = format!("swarm/fanin{round}");
        assert_eq!(
            repo.show(&branch, "c.txt").lines().count(),
            4,
            "round {round}"
        );
    }
    let gcs = gc.stop();
    assert!(gcs >= 3, "only {gcs} gc runs passed through the runs");
    assert_whole(&repo);
}

/// Issue 75, finding 3: a swarm process whose clock is two days ahead
/// (faketime) runs beside a live run. It clears the quarantines left by
/// dead processes, and only those: the live run's, made seconds before
/// but "two days old" by that clock, is its owner's (a lock says so), so
/// the live run's later merges still hold their objects and it ends well.
#[test]
fn a_clock_two_days_ahead_never_takes_a_live_runs_quarantine() {
    let repo = TestRepo::new();
    let slow = repo.plan_exact(
        "slow.toml",
        "[[task]]\nid = \"quick\"\ncreates = [\"q.txt\"]\nrun = \"echo q > q.txt\"\n\n\
         [[task]]\nid = \"slow\"\ncreates = [\"s.txt\"]\nrun = \"sleep 3; echo s > s.txt\"\n",
    );
    let live = repo
        .swarm_cmd(&["run", slow.to_str().unwrap(), "--name", "live"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the live run merged its first task", || {
        std::fs::read_to_string(repo.path().join(".swarm/runs/live/events.jsonl"))
            .is_ok_and(|j| j.contains("\"task_merged\""))
    });
    let quick = repo.plan_exact(
        "ahead.toml",
        "[[task]]\nid = \"other\"\ncreates = [\"o.txt\"]\nrun = \"echo o > o.txt\"\n",
    );
    let mut ahead = Command::new("faketime");
    crate::support::hermetic(&mut ahead, &repo.home());
    ahead
        .current_dir(repo.path())
        .args(["-f", "+2d", crate::support::swarm_bin(), "run"])
        .arg(&quick)
        .args(["--name", "ahead"]);
    let out = ahead.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = live.wait_with_output().unwrap();
    assert!(
        live.status.success(),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    assert_eq!(repo.show("swarm/live", "s.txt"), "s");
    assert_whole(&repo);
}
