//! Attacks on the sandbox's limits and process isolation: fork bombs,
//! memory balloons, output floods, looking for (or killing) processes
//! outside, and a coordinator killed with SIGKILL. Each runs as command
//! tasks in real sandboxed workers through the `swarm` binary, and checks
//! the host afterwards.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::sandbox::{assert_all_denied, attack, sandbox_available};
use crate::support::{TestRepo, assert_truncated, task};

/// Command lines of every process on the host that contain `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(cmdline);
            }
        }
    }
    found
}

#[test]
fn fork_bombs_memory_balloons_and_output_floods_are_contained() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let p = repo.plan(
        "limits.toml",
        r#"[swarm]
name = "limits"
on_failure = "continue"

# Counts how many processes it can have before fork fails.
[[task]]
id = "forks"
processes = 40
run = '''
python3 -c "
import os, time
n = 0
try:
    while n < 5000:
        if os.fork() == 0:
            time.sleep(41.5)
            os._exit(0)
        n += 1
except OSError:
    pass
open('forks.txt', 'w').write(str(n))
"
'''

# The classic: stopped by the process cap, then by the timeout.
[[task]]
id = "bomb"
processes = 64
timeout = "3s"
run = "bomb() { bomb | bomb & }; bomb; sleep 42.5"

[[task]]
id = "balloon"
memory = "128MiB"
run = '''
head -c 50000000 /dev/zero | wc -c > small.txt
if tail /dev/zero; then echo ALLOWED > balloon.txt; else echo denied > balloon.txt; fi
'''

[[task]]
id = "flood"
max_output = "64KiB"
run = "yes swarm-flood-line | head -c 30000000; echo done > flood.txt"
"#,
    );
    let started = Instant::now();
    let run = repo.run_plan(&p, &["--grace", "200ms"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    let report = repo.report();

    // Between the cap and the cap + 300 (see `processes`), counting the
    // shell and python themselves (and, with a cgroup, the task's init).
    assert_eq!(task(&report, "forks")["status"], "merged");
    let forks: u32 = repo
        .show("refs/swarm/limits/forks", "forks.txt")
        .parse()
        .unwrap();
    assert!(
        (36..340).contains(&forks),
        "forked {forks} times with a cap of 40"
    );

    // The cap makes forks fail; the shell gives up (failed) or goes on
    // until its timeout, depending on where the failure hits it.
    let bomb = task(&report, "bomb")["status"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(bomb == "failed" || bomb == "timed_out", "{bomb}");
    let log =
        std::fs::read_to_string(repo.path().join(".swarm/runs/limits/logs/bomb/1.err")).unwrap();
    assert!(log.contains("fork"), "{log}");

    // With a cgroup the kernel kills `tail` for the task's memory, and a
    // task killed for its memory limit fails even though its shell went on
    // (issue 29); under rlimits only, `tail` is refused memory instead.
    let balloon = task(&report, "balloon");
    match balloon["status"].as_str() {
        Some("merged") => {}
        Some("failed") => assert!(
            balloon["reason"]
                .as_str()
                .unwrap()
                .contains("killed: out of memory"),
            "{balloon}"
        ),
        other => panic!("balloon: {other:?}"),
    }
    assert_eq!(
        repo.show("refs/swarm/limits/balloon", "small.txt"),
        "50000000"
    );
    assert_eq!(
        repo.show("refs/swarm/limits/balloon", "balloon.txt"),
        "denied"
    );

    assert_eq!(task(&report, "flood")["status"], "merged");
    assert_eq!(repo.show("refs/swarm/limits/flood", "flood.txt"), "done");
    let log =
        std::fs::read_to_string(repo.path().join(".swarm/runs/limits/logs/flood/1.out")).unwrap();
    assert!(log.len() < 64 * 1024 + 200, "log of {} bytes", log.len());
    assert!(log.starts_with("swarm-flood-line\n"));
    assert_truncated(&log, 30_000_000 - 65536, 65536);

    // Nothing of any of them is left on the host.
    for marker in ["41.5", "42.5", "swarm-flood-line", "/dev/zero"] {
        assert_eq!(processes_with(marker), Vec::<String>::new(), "{marker}");
    }
}

/// Sandbox cells set their tasks' process cap before the task comes (and
/// make `/proc` read-only then): a cell made for one cap never serves a
/// task with another. Tasks one at a time, caps alternating, each sees its
/// own (`processes` + 300) and cannot change it. Needs a kernel that keeps
/// `pid_max` per PID namespace (6.14 and later, as this machine's).
#[test]
fn each_task_gets_its_own_process_cap_whatever_cell_it_starts_in() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let task = |id: &str, cap: Option<u32>| {
        let cap = cap.map_or(String::new(), |c| format!("processes = {c}\n"));
        format!(
            "[[task]]\nid = \"{id}\"\n{cap}creates = [\"{id}.txt\"]\n\
             run = \"cat /proc/sys/kernel/pid_max > {id}.txt; \
             (echo 9999 > /proc/sys/kernel/pid_max) 2>/dev/null || echo refused >> {id}.txt\"\n\n"
        )
    };
    let plan = format!(
        "[swarm]\nname = \"caps\"\nconcurrency = 1\n\n{}{}{}{}",
        task("a", Some(100)),
        task("b", None),
        task("c", Some(100)),
        task("d", Some(50)),
    );
    let p = repo.plan("caps.toml", &plan);
    let run = repo.run_plan(&p, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (id, cap) in [("a", "400"), ("b", "4396"), ("c", "400"), ("d", "350")] {
        assert_eq!(
            repo.show("swarm/caps", &format!("{id}.txt")),
            format!("{cap}\nrefused"),
            "task {id}"
        );
    }
}

#[test]
fn a_worker_sees_only_its_own_processes() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let me = std::process::id().to_string();
    let results = attack(
        &repo,
        &[("OUTSIDE", me)],
        &[(
            "pids",
            [
                "try see-outside test -e /proc/$OUTSIDE",
                "try signal-outside kill -0 $OUTSIDE",
                "try see-many sh -c 'test $(ls /proc | grep -c \"^[0-9]*$\") -gt 10'",
                "try host-init sh -c 'tr \"\\0\" \" \" < /proc/1/cmdline | grep -qv __sandbox'",
                "try write-sysctl sh -c 'echo 100000 > /proc/sys/kernel/pid_max'",
                "try signal-init kill -KILL 1",
            ]
            .join("\n"),
        )],
    );
    assert_all_denied(&results, 6);
}

#[test]
fn network_full_is_an_explicit_opt_in() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    // Set once the run has ended: every connection its tasks made is in
    // (the listener accepts what is queued before it looks at this).
    let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let over = std::sync::Arc::clone(&ended);
    let server = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut buf = [0u8; 1024];
                    let n = stream.read(&mut buf).unwrap_or(0);
                    seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                    let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nhi\n");
                }
                Err(_) if over.load(std::sync::atomic::Ordering::SeqCst) => break,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            if seen.len() == 2 {
                break;
            }
        }
        seen
    });
    let p = repo.plan(
        "net.toml",
        &format!(
            r#"[swarm]
name = "net"
on_failure = "continue"

[[task]]
id = "open"
network = "full"
run = "curl -s --max-time 5 http://127.0.0.1:{port}/open > got.txt"

[[task]]
id = "closed"
run = "curl -s --max-time 5 http://127.0.0.1:{port}/closed > got.txt"
"#
        ),
    );
    repo.run_plan(&p, &[]).assert_code(1);
    ended.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = repo.report();
    assert_eq!(task(&report, "open")["status"], "merged");
    assert_eq!(repo.show("refs/swarm/net/open", "got.txt"), "hi");
    assert_eq!(task(&report, "closed")["status"], "failed");
    let seen = server.join().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with("GET /open "), "{seen:?}");
}

#[test]
fn killing_the_coordinator_kills_every_worker() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let p = repo.plan(
        "orphans.toml",
        "[swarm]\nname = \"orphans\"\n\n[[task]]\nid = \"a\"\nrun = \"sleep 43.25 & echo up > up.txt; sleep 43.25\"\n\n[[task]]\nid = \"b\"\nrun = \"sleep 43.25 & echo up > up.txt; sleep 43.25\"\n",
    );
    let mut coordinator = repo
        .swarm_cmd(&["run", p.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Two shells and two sleeps per task, all running.
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_with("sleep 43.25").len() < 6 {
        assert!(
            Instant::now() < deadline,
            "the workers never started: {:?}",
            processes_with("sleep 43.25")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    coordinator.kill().unwrap();
    coordinator.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with("sleep 43.25").is_empty() {
        assert!(
            Instant::now() < deadline,
            "workers outlived their coordinator: {:?}",
            processes_with("sleep 43.25")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_rewritten_git_file_cannot_steer_the_coordinators_cleanup() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    // After success (worktree removed in the background) and after a failed
    // attempt (removed before the retry), swarm deletes the worktree and its
    // git directory: it must not take the directory from the worktree's
    // `.git` file, which the worker can rewrite.
    let common = repo.path().join(".git");
    let p = repo.plan(
        "gitfile.toml",
        &format!(
            r#"[defaults]
warm = false

[swarm]
name = "gitfile"
on_failure = "continue"

[[task]]
id = "up"
run = "echo 'gitdir: {common}/worktrees/../..' > .git; echo x > up.txt"

[[task]]
id = "sideways"
retries = 1
run = "echo 'gitdir: {common}/worktrees/victim' > .git; echo x > sideways.txt; test \"$SWARM_ATTEMPT\" = 2"

[[task]]
id = "victim"
run = "sleep 1; echo x > victim.txt"
"#,
            common = common.display()
        ),
    );
    let run = repo.run_plan(&p, &[]);
    run.assert_code(0);
    assert!(common.join("HEAD").exists(), "the repository was deleted");
    assert!(repo.path().join("README.md").exists());
    let report = repo.report();
    for id in ["up", "sideways", "victim"] {
        assert_eq!(task(&report, id)["status"], "merged", "{id}");
    }
    assert_eq!(repo.show("swarm/gitfile", "victim.txt"), "x");
    // Every worktree and its metadata is gone, and git agrees.
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("worktree ").count(), 1, "{list}");
}
