//! Everyday tools inside the sandbox (issue 30): what people run in their
//! tasks works under swarm as it does outside. Python's multiprocessing
//! (a `Pool`, a `Lock`: POSIX shared memory and semaphores) needs a
//! `/dev/shm`; each sandboxed task gets a private one, which is neither
//! the host's nor another task's.

use crate::sandbox::sandbox_available;
use crate::support::{TestRepo, task};

#[test]
fn python_multiprocessing_works_in_a_private_dev_shm() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    // A file on the host's /dev/shm that no task may see.
    let marker = format!("/dev/shm/swarm-e2e-{}", std::process::id());
    std::fs::write(&marker, "host").unwrap();
    let script = r#"
import multiprocessing as mp, os
def square(x):
    return x * x
if __name__ == "__main__":
    lock = mp.Lock()
    with lock:
        pass
    with mp.Pool(2) as pool:
        total = sum(pool.map(square, range(10)))
    seen = sorted(os.listdir("/dev/shm"))
    open("out/pool.txt", "w").write(f"{total} {seen}\n")
"#;
    repo.write("pool.py", script);
    repo.commit_all("a multiprocessing script");
    let plan = repo.plan(
        "shm.toml",
        "[swarm]\nname = \"shm\"\n\n[[task]]\nid = \"pool\"\ncreates = [\"out\"]\nrun = \"mkdir -p out && python3 pool.py\"\n\n[[task]]\nid = \"writer\"\ncreates = [\"w.txt\"]\nrun = \"echo mine > /dev/shm/mine && cat /dev/shm/mine > w.txt\"\n",
    );
    let out = repo.run_plan(&plan, &[]);
    let _ = std::fs::remove_file(&marker);
    out.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "pool")["status"], "merged", "{report}");
    // 285 = the sum of the squares below 10; the listing is of the task's
    // own /dev/shm: neither the host's marker nor the other task's file.
    assert_eq!(repo.show("swarm/shm", "out/pool.txt"), "285 []");
    assert_eq!(repo.show("swarm/shm", "w.txt"), "mine");
}

/// The simplest plan (two tasks writing different files, no `paths`)
/// runs: git merges disjoint changes, so unordered writers are a warning
/// that says what to do, not an error. A model's plan keeps the contract
/// (a subtask request with the same pair is refused).
#[test]
fn two_writers_without_paths_run_with_a_warning_but_a_models_request_is_refused() {
    let repo = TestRepo::new();
    let plan = repo.plan_exact(
        "pair.toml",
        "[swarm]\nname = \"pair\"\n\n[[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n\n[[task]]\nid = \"b\"\nrun = \"echo b > b.txt\"\n",
    );
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    validate.assert_code(0);
    // (miette wraps the lines: look for the pieces.)
    for piece in [
        "⚠ tasks `a` and `b`",
        "may both write anything",
        "isolation = \"readonly\"",
    ] {
        assert!(validate.stderr.contains(piece), "{}", validate.stderr);
    }
    let out = repo.run_plan(&plan, &[]);
    out.assert_code(0);
    assert_eq!(repo.show("swarm/pair", "a.txt"), "a");
    assert_eq!(repo.show("swarm/pair", "b.txt"), "b");
    // The same pair asked for by a running task: refused, paths are the
    // contract there.
    let spawning = repo.plan_exact(
        "asks.toml",
        "[swarm]\nname = \"asks\"\n\n[[task]]\nid = \"lead\"\nrun = '''\ncat > \"$SWARM_SUBTASKS\" <<'REQUEST'\n[[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n\n[[task]]\nid = \"b\"\nrun = \"echo b > b.txt\"\nREQUEST\n'''\n",
    );
    let out = repo.run_plan(&spawning, &[]);
    out.assert_code(1);
    let report = repo.report();
    assert!(
        task(&report, "lead")["reason"]
            .as_str()
            .unwrap()
            .contains("they will conflict"),
        "{report}"
    );
}

/// A sandboxed write outside `paths` fails as the tool reports it ("Read-only
/// file system"); the reason says the rule, the task's paths and the file,
/// as good as the unsandboxed run's "wrote outside its paths".
#[test]
fn a_sandboxed_write_outside_paths_says_why_and_names_the_file() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    repo.write("a/a.txt", "a\n");
    repo.write("b/b.txt", "b\n");
    repo.commit_all("two directories");
    let plan = repo.plan(
        "out.toml",
        "[swarm]\nname = \"out\"\n\n[[task]]\nid = \"stray\"\npaths = [\"a\"]\nrun = \"echo x > b/y\"\n",
    );
    let out = repo.run_plan(&plan, &[]);
    out.assert_code(1);
    let report = repo.report();
    let reason = task(&report, "stray")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.starts_with("exited with code 2; writes outside its paths are refused in the sandbox (its paths: a): it was refused b/y; add it to `paths` or `creates`"),
        "{reason}"
    );
}

/// A pipeline whose reader leaves early ends quietly, as in a terminal:
/// a task's commands start with SIGPIPE at its default action, sandboxed
/// or not (the launcher, a Rust program, ignores it, and an ignored signal
/// stays ignored across `execve`: `yes` then failed with "Broken pipe").
#[test]
fn a_pipeline_into_head_ends_quietly_sandboxed_or_not() {
    let repo = TestRepo::new();
    let mut modes = vec!["none"];
    if sandbox_available(&repo) {
        modes.push("landlock");
    }
    for mode in modes {
        let name = format!("pipe-{mode}");
        let plan = repo.plan(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\nsandbox = \"{mode}\"\n\n[[task]]\nid = \"p\"\ncreates = [\"head.txt\", \"ignored.txt\"]\nrun = \"yes | head -1 > head.txt; grep SigIgn /proc/self/status > ignored.txt\"\n"
            ),
        );
        let out = repo.run_plan(&plan, &[]);
        out.assert_code(0);
        assert_eq!(
            repo.show(&format!("swarm/{name}"), "head.txt"),
            "y",
            "{mode}"
        );
        // A command's log is made when it first prints: none is no output.
        let log =
            std::fs::read_to_string(repo.path().join(format!(".swarm/runs/{name}/logs/p/1.err")))
                .unwrap_or_default();
        assert!(!log.contains("Broken pipe"), "{mode}: {log}");
        // Bit 13 (SIGPIPE) of the ignored signals' mask is clear.
        let ignored = repo.show(&format!("swarm/{name}"), "ignored.txt");
        let mask = u64::from_str_radix(ignored.trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(mask & (1 << 12), 0, "{mode}: {ignored}");
    }
}
