//! The launcher of an unconfined run's commands (`swarm __sandbox
//! --unconfined`), driven directly through its library API: what it gives
//! a command (exit code, signal, environment, directory), that a dropped
//! command dies with what it started, and that each launcher starts only
//! its own kind (a sandboxed run's launcher never starts anything
//! unconfined). That commands die with a coordinator killed with SIGKILL
//! is tested through `swarm run` in `faults.rs`. And of a sandboxed run's
//! launcher: that a worker's end is reported only once nothing it started
//! runs (its init kills and reaps them first), whatever they did to stay.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use swarm_sandbox::{Exit, Launcher, Policy, SpawnRequest, UnconfinedRequest};

use crate::support::{swarm_bin, wait_until};

/// Runs a test's body on a runtime of its own, failing it if the body is
/// still waiting after two minutes (every body here takes seconds): a
/// launcher that never answers fails its test, naming it, rather than
/// holding the whole suite.
fn run<F: std::future::Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            match tokio::time::timeout(Duration::from_secs(120), body).await {
                Ok(output) => output,
                Err(_) => panic!(
                    "still waiting after 120 s: {}",
                    std::thread::current().name().unwrap_or("this test")
                ),
            }
        })
}

fn null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

fn file(path: &Path) -> OwnedFd {
    std::fs::File::create(path).unwrap().into()
}

fn script(dir: &Path, script: &str, out: &Path) -> UnconfinedRequest {
    UnconfinedRequest {
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        inherit: true,
        remove: vec!["SECRET_KEY".into()],
        env: vec![("ADDED".into(), "by the request".into())],
        cwd: dir.to_path_buf(),
        keep_fds: Vec::new(),
        cgroups: Vec::new(),
        reap: None,
        after: None,
        started: None,
        stdin: None,
        stdout: file(out),
        stderr: null(),
    }
}

/// A sandboxed `sh -c SCRIPT` in `own`, granted `own` only, its stdout
/// `stdout`.
fn sh_in(own: &Path, script: &str, stdout: OwnedFd) -> SpawnRequest {
    SpawnRequest {
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: own.to_path_buf(),
        policy: Policy::for_worker(vec![own.to_path_buf()], Vec::new()),
        after: None,
        started: None,
        stdin: null(),
        stdout,
        stderr: null(),
    }
}

/// A temporary directory every user may write in: as root, a sandboxed
/// worker runs as an unprivileged user (a run hands the worktree over to
/// it; here the directory is open to all).
fn open_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// A sandboxed run's launcher with the namespace layer; `None` on a
/// machine without it (covered by `sandbox.rs`'s checks).
async fn namespaced_launcher() -> Option<Launcher> {
    let launcher = Launcher::start(Path::new(swarm_bin())).await.ok()?;
    launcher.degraded().is_none().then_some(launcher)
}

fn env() -> Vec<(String, String)> {
    vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("INHERITED".into(), "from the run".into()),
        ("SECRET_KEY".into(), "sk-never".into()),
        ("ADDED".into(), "overridden".into()),
    ]
}

fn alive(pid: i32) -> bool {
    // A zombie (not reaped yet by whoever is its parent) is as good as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn an_unconfined_command_gets_its_exit_code_signal_environment_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(async {
        let launcher = Launcher::start_unconfined(Path::new(swarm_bin()), &env())
            .await
            .unwrap();
        let mut spawned = launcher
            .spawn_unconfined(script(
                dir.path(),
                "pwd; echo \"$INHERITED|${SECRET_KEY-unset}|$ADDED\"; exit 7",
                &out,
            ))
            .await
            .unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(7));
        // Asked again, the same answer.
        assert_eq!(spawned.wait().await, Exit::Exited(7));
        let seen = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            seen,
            format!(
                "{}\nfrom the run|unset|by the request\n",
                dir.path().canonicalize().unwrap().display()
            )
        );

        let mut killed = launcher
            .spawn_unconfined(script(dir.path(), "kill -USR1 $$", &out))
            .await
            .unwrap();
        assert_eq!(
            killed.wait().await,
            Exit::Signaled(nix::sys::signal::Signal::SIGUSR1 as i32)
        );

        // Not inheriting: only what the request sets.
        let mut bare = script(dir.path(), "env | sort", &out);
        bare.inherit = false;
        let mut spawned = launcher.spawn_unconfined(bare).await.unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        let seen = std::fs::read_to_string(&out).unwrap();
        assert!(
            !seen.contains("INHERITED") && !seen.contains("sk-never"),
            "{seen}"
        );
        assert!(seen.contains("ADDED=by the request"), "{seen}");

        // Sent without a stdin, a command reads the launcher's /dev/null
        // (at once at its end); sent with one, it reads that.
        let stdin = "readlink /proc/self/fd/0; cat";
        let mut spawned = launcher
            .spawn_unconfined(script(dir.path(), stdin, &out))
            .await
            .unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "/dev/null\n");
        let given = dir.path().join("given");
        std::fs::write(&given, "what the caller gave\n").unwrap();
        let mut with_stdin = script(dir.path(), stdin, &out);
        with_stdin.stdin = Some(std::fs::File::open(&given).unwrap().into());
        let mut spawned = launcher.spawn_unconfined(with_stdin).await.unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!("{}\nwhat the caller gave\n", given.display())
        );

        // A program that does not exist: a failure that says so, not an
        // exit code.
        let mut missing = script(dir.path(), "", &out);
        missing.argv = vec!["/nonexistent/program".into()];
        let mut spawned = launcher.spawn_unconfined(missing).await.unwrap();
        match spawned.wait().await {
            Exit::Failed(message) => {
                insta::assert_snapshot!(message, @"start /nonexistent/program: No such file or directory (os error 2)")
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn requests_sent_faster_than_the_launcher_reads_them_wait_for_room_and_all_run() {
    // 48 requests of 270 KB each at once, to a launcher stopped for a
    // moment: 13 MB, several times the socket's send buffer (0.4 MB with
    // the default `net.core.wmem_max`, which also caps a request at 360
    // KB; 2 MB where that allows), so sends find it full and wait for the
    // launcher to read (the socket is registered for reading only; a send
    // that finds no room registers a copy for writing). Each command sees
    // its own variables whole.
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let launcher = Launcher::start_unconfined(Path::new(swarm_bin()), &env())
            .await
            .unwrap();
        use nix::sys::signal::{Signal, kill};
        let pid = nix::unistd::Pid::from_raw(i32::try_from(launcher.pid().unwrap()).unwrap());
        kill(pid, Signal::SIGSTOP).unwrap();
        let resume = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            kill(pid, Signal::SIGCONT).unwrap();
        });
        let requests = (0..48u8).map(|i| {
            let out = dir.path().join(format!("out{i}"));
            let mut request = script(
                dir.path(),
                "for v in $(env | grep -o '^BIG_[0-9]*'); do printenv $v; done | wc -c",
                &out,
            );
            // Three variables of 90 KB (one is at most 128 KB to execve).
            request.env = (0..3)
                .map(|v| {
                    (
                        format!("BIG_{v}"),
                        char::from(b'a' + i % 26).to_string().repeat(90_000),
                    )
                })
                .collect();
            let launcher = &launcher;
            async move {
                let mut spawned = launcher.spawn_unconfined(request).await.unwrap();
                (spawned.wait().await, out)
            }
        });
        let ended = tokio::time::timeout(
            Duration::from_secs(60),
            futures_util::future::join_all(requests),
        )
        .await
        .expect("a request waiting for room in the socket was never sent");
        resume.join().unwrap();
        for (i, (exit, out)) in ended.into_iter().enumerate() {
            assert_eq!(exit, Exit::Exited(0), "request {i}");
            // Each variable's 90,000 characters and a newline, 3 times.
            assert_eq!(
                std::fs::read_to_string(&out).unwrap().trim(),
                "270003",
                "request {i}"
            );
        }
    });
}

#[test]
fn a_dropped_command_and_what_it_started_are_killed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pids");
    run(async {
        let launcher = Launcher::start_unconfined(Path::new(swarm_bin()), &env())
            .await
            .unwrap();
        let spawned = launcher
            .spawn_unconfined(script(dir.path(), "sleep 300 & echo $$ $!; wait", &out))
            .await
            .unwrap();
        wait_until("the command wrote its pids", || {
            std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with('\n'))
        });
        let pids: Vec<i32> = std::fs::read_to_string(&out)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert!(pids.iter().all(|&p| alive(p)));
        // An attempt aborted mid-run drops its command.
        drop(spawned);
        // Something of the runtime's must run for the launcher's reply.
        tokio::time::sleep(Duration::from_millis(10)).await;
        wait_until("the dropped command's group is gone", || {
            pids.iter().all(|&p| !alive(p))
        });
    });
}

#[test]
fn each_launcher_starts_only_its_own_kind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(async {
        let unconfined = Launcher::start_unconfined(Path::new(swarm_bin()), &env())
            .await
            .unwrap();
        let request = SpawnRequest {
            argv: vec!["/bin/true".into()],
            env: Vec::new(),
            cwd: dir.path().to_path_buf(),
            policy: Policy::for_worker(vec![dir.path().to_path_buf()], Vec::new()),
            after: None,
            started: None,
            stdin: null(),
            stdout: null(),
            stderr: null(),
        };
        let mut spawned = unconfined.spawn(request).await.unwrap();
        match spawned.wait().await {
            Exit::Failed(message) => {
                insta::assert_snapshot!(message, @"start a sandboxed worker: this launcher starts unconfined commands only");
            }
            other => panic!("{other:?}"),
        }

        // A sandboxed run's launcher, where the machine has one, refuses
        // to start anything unconfined, whoever asks.
        let Ok(sandboxed) = Launcher::start(Path::new(swarm_bin())).await else {
            return;
        };
        let mut spawned = sandboxed
            .spawn_unconfined(script(dir.path(), "echo ran", &out))
            .await
            .unwrap();
        match spawned.wait().await {
            Exit::Failed(message) => {
                insta::assert_snapshot!(message, @"start an unconfined command: this launcher starts sandboxed workers only");
            }
            other => panic!("{other:?}"),
        }
        assert!(std::fs::read_to_string(&out).unwrap_or_default().is_empty());
    });
}

#[test]
fn a_sandboxed_workers_end_is_reported_only_once_nothing_it_started_runs() {
    let dir = open_dir();
    run(async {
        // A machine without the sandbox is covered by `sandbox.rs`'s checks.
        let Ok(launcher) = Launcher::start(Path::new(swarm_bin())).await else {
            return;
        };
        // Writers the worker leaves behind: plain background jobs, one that
        // ignores SIGTERM, one in a session of its own. The worker ends
        // while they write.
        // They write as fast as they can: any of them still alive for a
        // moment after the report would be seen. The worker ends once each
        // has written (a fixed wait was too short on a busy machine: "a
        // writer never ran").
        let script = "for f in a b; do (while :; do echo x >> $f; done) & done; \
             (trap '' TERM; while :; do echo x >> c; done) & \
             setsid sh -c 'while :; do echo x >> d; done' & \
             until [ -s a ] && [ -s b ] && [ -s c ] && [ -s d ]; do sleep 0.01; done; exit 3";
        let mut spawned = launcher
            .spawn(sh_in(dir.path(), script, null()))
            .await
            .unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(3));
        // At the report, every writer is gone: nothing grows after it.
        let sizes = |dir: &Path| -> Vec<u64> {
            ["a", "b", "c", "d"]
                .iter()
                .map(|f| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len()))
                .collect()
        };
        let at_report = sizes(dir.path());
        assert!(
            at_report.iter().all(|&n| n > 0),
            "a writer never ran: {at_report:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            sizes(dir.path()),
            at_report,
            "a process of the worker wrote after its end was reported"
        );
    });
}

/// `se.slice` of a `/proc/.../sched` text: a thread's scheduling slice.
fn slice_in(sched: &str) -> Option<u64> {
    let line = sched.lines().find(|l| l.starts_with("se.slice"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

/// Whether a launcher started by this process takes the short slice: the
/// kernel shows slices in `/proc/PID/sched` (6.14 and later, which keep
/// one per thread), and this process's nice value is not negative (a
/// launcher then leaves its own alone). `None` where the kernel does not
/// show them: the sandbox crate's unit tests check the slice through
/// `sched_getattr` there.
fn launchers_take_the_short_slice() -> Option<bool> {
    slice_in(&std::fs::read_to_string("/proc/self/sched").ok()?)?;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command's name in parentheses: nice is the 17th.
    let nice: i32 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    Some(nice >= 0)
}

#[test]
fn launchers_take_short_turns_and_the_commands_they_start_do_not() {
    // What `swarm_sandbox::process::shorten_thread_slice` asks for.
    const SHORT: u64 = 100_000;
    let dir = open_dir();
    let (plain_out, boxed_out) = (dir.path().join("plain"), dir.path().join("boxed"));
    let Some(short) = launchers_take_the_short_slice() else {
        eprintln!("this kernel shows no slices in /proc: checked by the unit tests only");
        return;
    };
    run(async {
        let unconfined = Launcher::start_unconfined(Path::new(swarm_bin()), &env())
            .await
            .unwrap();
        let sched = |launcher: &Launcher| {
            std::fs::read_to_string(format!("/proc/{}/sched", launcher.pid().unwrap())).unwrap()
        };
        // What a started process printed of its `/proc/self/sched`: a
        // slice, not the launcher's.
        let started_with_the_default = |out: &Path| {
            let sched = std::fs::read_to_string(out).unwrap();
            assert!(slice_in(&sched).is_some(), "{sched}");
            assert_ne!(
                slice_in(&sched),
                Some(SHORT),
                "{} took the launcher's slice",
                out.display()
            );
        };
        assert_eq!(
            slice_in(&sched(&unconfined)) == Some(SHORT),
            short,
            "{}",
            sched(&unconfined)
        );
        let mut spawned = unconfined
            .spawn_unconfined(script(dir.path(), "cat /proc/self/sched", &plain_out))
            .await
            .unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        started_with_the_default(&plain_out);

        let Some(sandboxed) = namespaced_launcher().await else {
            return;
        };
        assert_eq!(slice_in(&sched(&sandboxed)) == Some(SHORT), short);
        let mut spawned = sandboxed
            .spawn(sh_in(dir.path(), "cat /proc/self/sched", file(&boxed_out)))
            .await
            .unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        started_with_the_default(&boxed_out);
    });
}

/// What the sandbox launcher's process holds: (VmSize, VmRSS) in KiB.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmSize:"), field("VmRSS:"))
}

#[test]
fn workers_see_only_their_own_paths_and_the_launcher_keeps_nothing_of_them() {
    use std::os::unix::fs::PermissionsExt as _;
    // Each worker's own directory beside the other's, under a parent no
    // policy shows: each worker builds the way to its own in a tmpfs of its
    // own (the shared part of its root is a template, see
    // sandbox/src/template.rs), so neither sees the other's.
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("tasks");
    let open = |p: &Path| {
        std::fs::create_dir_all(p).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    };
    let (a, b) = (parent.join("a"), parent.join("b"));
    open(&a);
    open(&b);
    let request = |own: &Path, script: String, out: &Path| sh_in(own, &script, file(out));
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        let p = parent.display();
        // `a` waits, with a file of its own there, while `b` looks.
        let a_out = dir.path().join("a.out");
        let mut first = launcher
            .spawn(request(
                &a,
                "echo mine > mine.txt; sleep 1; ls -A .".into(),
                &a_out,
            ))
            .await
            .unwrap();
        let b_out = dir.path().join("b.out");
        // (Landlock lets it list nothing but its own directory; what is
        // there at all, `test` tells.)
        let look = format!(
            "test -e {p}/b && echo own; test -e {p}/a && echo other; \
             test -e {p}/a/mine.txt && echo others-file; echo --; \
             touch {p}/planted 2>/dev/null && echo planted; echo --; \
             grep -c ' proc ' /proc/self/mountinfo"
        );
        let mut second = launcher.spawn(request(&b, look, &b_out)).await.unwrap();
        assert_eq!(second.wait().await, Exit::Exited(0));
        assert_eq!(first.wait().await, Exit::Exited(0));
        let seen = std::fs::read_to_string(&b_out).unwrap();
        let parts: Vec<&str> = seen.split("--\n").collect();
        assert_eq!(
            parts,
            ["own\n", "", "1\n"],
            "what the second worker saw: {seen}"
        );
        assert_eq!(std::fs::read_to_string(&a_out).unwrap(), "mine.txt\n");
        assert!(!parent.join("planted").exists());

        // Hundreds of workers later, the launcher (whose memory each
        // worker's init shares) is as large as it was.
        let pid = launcher.pid().unwrap();
        let run = |n: usize| {
            let launcher = &launcher;
            let out = dir.path().join("loop.out");
            let a = a.clone();
            async move {
                for _ in 0..n {
                    let mut spawned = launcher
                        .spawn(request(&a, "true".into(), &out))
                        .await
                        .unwrap();
                    assert_eq!(spawned.wait().await, Exit::Exited(0));
                }
            }
        };
        run(100).await;
        let (size, rss) = memory_of(pid);
        run(400).await;
        let (size_after, rss_after) = memory_of(pid);
        assert!(
            size_after <= size + 4096 && rss_after <= rss + 2048,
            "the launcher grew from {size} to {size_after} KiB mapped, \
             {rss} to {rss_after} KiB resident over 400 workers"
        );
    });
}

/// A file of the test's open for writing at the lowest free fd number
/// from `from` on (close-on-exec here, as the coordinator's are): a
/// descriptor a caller keeps for its worker. Its number; closed by
/// [`close_kept`].
fn kept_file(path: &Path, from: i32) -> i32 {
    let file = std::fs::File::create(path).unwrap();
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(from)).unwrap()
}

fn close_kept(fds: &[i32]) {
    for &fd in fds {
        nix::unistd::close(fd).unwrap();
    }
}

#[test]
fn descriptors_a_caller_keeps_reach_the_worker_at_their_numbers() {
    // A worker moves what it received out of the way of every target
    // before it places them: kept fds low (from 5 on) and far above
    // (from 900 on) come through at their numbers, nothing else of the
    // launcher's or the cell's does.
    let dir = open_dir();
    let d = dir.path();
    run(async {
        // Writes to each kept fd, then lists its fds (`ls`'s own
        // directory is 3).
        let write_then_list = |fds: &[i32]| {
            // (bash: dash takes one-digit fd numbers only.)
            let writes: String = fds
                .iter()
                .map(|n| format!("bash -c 'echo {n} >&{n}'; "))
                .collect();
            format!("{writes}ls /proc/self/fd | sort -n | tr '\\n' ' '")
        };
        let check = |out: &Path, label: &str, fds: &[i32]| {
            for n in fds {
                let text = std::fs::read_to_string(d.join(format!("{label}.{n}"))).unwrap();
                assert_eq!(text, format!("{n}\n"), "{label}: fd {n}");
            }
            let mut open = vec![0, 1, 2, 3];
            open.extend(fds);
            open.sort_unstable();
            let expected: String = open.iter().map(|n| format!("{n} ")).collect();
            assert_eq!(
                std::fs::read_to_string(out).unwrap(),
                expected,
                "{label}: the fds the worker had"
            );
        };
        let keep = |label: &str| {
            let mut fds = Vec::new();
            for from in [5, 5, 900] {
                let n = kept_file(&d.join("new"), from);
                std::fs::rename(d.join("new"), d.join(format!("{label}.{n}"))).unwrap();
                fds.push(n);
            }
            fds
        };
        let unconfined = Launcher::start_unconfined(Path::new(swarm_bin()), &env())
            .await
            .unwrap();
        let out = d.join("unconfined.out");
        let fds = keep("unconfined");
        let mut request = script(d, &write_then_list(&fds), &out);
        request.keep_fds = fds.clone();
        let mut spawned = unconfined.spawn_unconfined(request).await.unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        close_kept(&fds);
        check(&out, "unconfined", &fds);

        let Some(sandboxed) = namespaced_launcher().await else {
            return;
        };
        // Twice: the first worker starts the usual way, the second in a
        // cell made ahead for tasks like it.
        for round in ["first", "second"] {
            let label = format!("sandboxed-{round}");
            let out = d.join(format!("{label}.out"));
            let fds = keep(&label);
            let mut request = sh_in(d, &write_then_list(&fds), file(&out));
            request.policy.keep_fds = fds.clone();
            let mut spawned = sandboxed.spawn(request).await.unwrap();
            assert_eq!(spawned.wait().await, Exit::Exited(0), "{label}");
            close_kept(&fds);
            check(&out, &label, &fds);
            // Time for the launcher to make its cell.
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

#[test]
fn a_worker_that_cannot_take_its_own_steps_fails_saying_why_in_a_cell_too() {
    // Its directory is gone: the worker's `chdir` fails after it got its
    // task, and it exits without `execve`. Its init learns that as it
    // learns of an `execve` (the kernel clears the worker's tid), and the
    // failure comes back; twice, so that the second goes through a cell
    // made ahead.
    let dir = open_dir();
    let own = dir.path().to_path_buf();
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        for round in ["first", "second"] {
            let mut request = sh_in(&own, "touch ran", null());
            request.cwd = own.join("gone");
            let mut spawned = launcher.spawn(request).await.unwrap();
            let waited = tokio::time::timeout(Duration::from_secs(20), spawned.wait()).await;
            let gone = own.join("gone");
            match waited {
                Ok(Exit::Failed(message)) => assert_eq!(
                    message,
                    format!(
                        "confine the worker: enter {}: No such file or directory (os error 2)",
                        gone.display()
                    ),
                    "{round}"
                ),
                other => panic!("{round}: {other:?}"),
            }
            assert!(!own.join("ran").exists(), "{round}");
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

#[test]
fn workers_on_their_way_to_execve_beside_the_launcher_each_run_or_fail_as_their_own() {
    // A cell's worker takes its own steps and starts its `execve` while
    // the launcher goes on with other requests, in the same memory. Forty
    // tasks, two at a time, every other one failing a step (its directory
    // gone) after it had its task: each succeeds or fails with its own
    // message, and writes only its own output.
    let dir = open_dir();
    let own = dir.path().to_path_buf();
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        let mut running = std::collections::VecDeque::new();
        for i in 0..40usize {
            let mut request = sh_in(&own, &format!("echo {i} > out{i}"), null());
            if !i.is_multiple_of(2) {
                request.cwd = own.join(format!("gone{i}"));
            }
            running.push_back((i, launcher.spawn(request).await.unwrap()));
            if running.len() == 2 {
                let (i, mut spawned) = running.pop_front().unwrap();
                check(i, &own, spawned.wait().await);
            }
        }
        for (i, mut spawned) in running {
            check(i, &own, spawned.wait().await);
        }
    });
    fn check(i: usize, own: &Path, exit: Exit) {
        if i.is_multiple_of(2) {
            assert_eq!(exit, Exit::Exited(0), "task {i}");
            let out = std::fs::read_to_string(own.join(format!("out{i}"))).unwrap();
            assert_eq!(out, format!("{i}\n"), "task {i}");
        } else {
            let gone = own.join(format!("gone{i}"));
            let expected = format!(
                "confine the worker: enter {}: No such file or directory (os error 2)",
                gone.display()
            );
            assert_eq!(exit, Exit::Failed(expected), "task {i}");
            assert!(!own.join(format!("out{i}")).exists(), "task {i}");
        }
    }
}

#[test]
fn a_sandboxed_worker_on_deck_starts_even_when_its_leaders_end_is_reaped_before_it_is_read() {
    // The launcher learns a sandboxed worker's end two ways: its init's
    // status pipe, or reaping the init. When others end at the same
    // moment, the init can be reaped before its pipe is read; the worker
    // exited 0 all the same, and the one on deck behind it starts in its
    // place then too (once, it waited for a word that never came: a hang
    // under the full suite's load). Leaders ending together with three
    // companions each, many rounds: every follower starts by itself.
    use std::os::unix::fs::PermissionsExt as _;
    let dir = open_dir();
    let d = dir.path().join("own");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        for round in 0..12 {
            // Each waits for the same moment, to the millisecond.
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                + Duration::from_millis(500);
            let sleep = &format!(
                "while [ \"$(date +%s%N)\" -lt {} ]; do :; done",
                deadline.as_nanos()
            );
            let mut companions = Vec::new();
            let mut leader = launcher.spawn(sh_in(&d, sleep, null())).await.unwrap();
            for _ in 0..3 {
                companions.push(launcher.spawn(sh_in(&d, sleep, null())).await.unwrap());
            }
            let next = SpawnRequest {
                after: Some(leader.id()),
                ..sh_in(&d, &format!("touch next{round}"), null())
            };
            let mut next = launcher.spawn(next).await.unwrap();
            assert_eq!(leader.wait().await, Exit::Exited(0), "round {round}");
            let began = tokio::time::timeout(Duration::from_secs(20), next.began()).await;
            assert_eq!(began, Ok(true), "round {round}: its leader exited 0");
            assert_eq!(next.wait().await, Exit::Exited(0), "round {round}");
            for mut c in companions {
                assert_eq!(c.wait().await, Exit::Exited(0), "round {round}");
            }
        }
    });
}

#[test]
fn a_task_held_on_deck_starts_in_its_template_after_the_launcher_let_that_go() {
    // A sandboxed request held on deck is made ready as it comes, over a
    // template; while it waits, tasks over ten other templates (each
    // task's own directory under a parent of its own) make the launcher
    // let the oldest go. The held one still starts, in its own.
    use std::os::unix::fs::PermissionsExt as _;
    let dir = open_dir();
    let own = |name: &str| {
        let parent = dir.path().join(name);
        let own = parent.join("own");
        std::fs::create_dir_all(&own).unwrap();
        for p in [&parent, &own] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        own
    };
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        let leading = own("leading");
        let mut first = launcher
            .spawn(sh_in(&leading, "sleep 3", null()))
            .await
            .unwrap();
        let held_dir = own("held");
        let held = SpawnRequest {
            after: Some(first.id()),
            ..sh_in(&held_dir, "echo ran > out", null())
        };
        let mut held = launcher.spawn(held).await.unwrap();
        for i in 0..10 {
            let other = own(&format!("other{i}"));
            let mut spawned = launcher.spawn(sh_in(&other, "true", null())).await.unwrap();
            assert_eq!(spawned.wait().await, Exit::Exited(0), "other {i}");
        }
        assert!(!held_dir.join("out").exists(), "it started before its turn");
        assert_eq!(first.wait().await, Exit::Exited(0));
        assert_eq!(held.wait().await, Exit::Exited(0));
        assert_eq!(
            std::fs::read_to_string(held_dir.join("out")).unwrap(),
            "ran\n"
        );
    });
}

#[test]
fn a_root_showing_the_hosts_slash_is_built_whole_and_still_confines() {
    // The one root a template cannot show (it holds the host's `/` itself):
    // the worker's root is then built whole, as before templates.
    let dir = open_dir();
    let outside = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        let o = outside.path().display();
        // Pid 1 of the worker's namespace is its init (the launcher's
        // clone), and its /proc (mounted over the host's, which the bind
        // of / brings) says so.
        let script = format!(
            "echo ok > mine.txt; test -d {o} && echo sees-outside; \
             touch {o}/planted 2>/dev/null && echo planted; \
             cat /proc/1/comm"
        );
        let mut spawned = launcher
            .spawn(SpawnRequest {
                policy: Policy::for_worker(vec![dir.path().to_path_buf()], vec!["/".into()]),
                ..sh_in(dir.path(), &script, file(&out))
            })
            .await
            .unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "sees-outside\nswarm\n",
            "the host's / is shown read-only, with the worker's own /proc"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("mine.txt")).unwrap(),
            "ok\n"
        );
        assert!(!outside.path().join("planted").exists());
    });
}

/// What a command on deck (`after`) wrote at its start: its marker file.
fn ran(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

#[test]
fn a_command_on_deck_starts_when_the_one_it_follows_exits_0_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    run(async {
        let launcher = Launcher::start_unconfined(Path::new(swarm_bin()), &env())
            .await
            .unwrap();

        // Held while the first one runs, started as it is reaped: after
        // its last write, and before its end is even reported.
        let mut first = launcher
            .spawn_unconfined(script(d, "sleep 0.4; date +%s%N > first.end", &out))
            .await
            .unwrap();
        let mut next = script(d, "date +%s%N > next.start", &out);
        next.after = Some(first.id());
        let flag = std::sync::Arc::new(std::sync::OnceLock::new());
        next.started = Some(std::sync::Arc::clone(&flag));
        let mut next = launcher.spawn_unconfined(next).await.unwrap();
        assert!(next.on_deck());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!ran(d, "next.start"), "it started before its turn");
        assert!(flag.get().is_none());
        assert_eq!(first.wait().await, Exit::Exited(0));
        assert!(next.began().await);
        assert!(flag.get().is_some());
        assert_eq!(next.wait().await, Exit::Exited(0));
        let time = |name: &str| -> u128 {
            std::fs::read_to_string(d.join(name))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert!(time("next.start") >= time("first.end"));

        // The one it follows failed: it waits for the caller's word, and
        // taken back, it never runs.
        let mut failing = launcher
            .spawn_unconfined(script(d, "sleep 0.2; exit 3", &out))
            .await
            .unwrap();
        let mut behind = script(d, "touch after-failure", &out);
        behind.after = Some(failing.id());
        let mut behind = launcher.spawn_unconfined(behind).await.unwrap();
        assert_eq!(failing.wait().await, Exit::Exited(3));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!ran(d, "after-failure"), "it started after a failure");
        behind.withdraw().await;
        assert!(!behind.began().await);
        match behind.wait().await {
            Exit::Failed(message) => {
                insta::assert_snapshot!(message, @"withdrawn before it started")
            }
            other => panic!("{other:?}"),
        }
        assert!(!ran(d, "after-failure"));

        // Told to start early (a place freed elsewhere), it runs beside
        // the one it was to follow; dropped while held, it never runs.
        let long = launcher
            .spawn_unconfined(script(d, "sleep 30", &out))
            .await
            .unwrap();
        let mut early = script(d, "touch early", &out);
        early.after = Some(long.id());
        let mut early = launcher.spawn_unconfined(early).await.unwrap();
        let mut dropped = script(d, "touch dropped", &out);
        dropped.after = Some(early.id());
        let dropped = launcher.spawn_unconfined(dropped).await.unwrap();
        // Dropped while held (the one it follows has not even begun): had
        // it stayed, `early`'s exit 0 would start it.
        drop(dropped);
        early.begin_now().await;
        assert!(early.began().await);
        assert_eq!(early.wait().await, Exit::Exited(0));
        assert!(ran(d, "early"));
        drop(long);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!ran(d, "dropped"), "a dropped command on deck ran");

        // Behind one already reaped: at once.
        let mut done = launcher
            .spawn_unconfined(script(d, "true", &out))
            .await
            .unwrap();
        assert_eq!(done.wait().await, Exit::Exited(0));
        let mut late = script(d, "touch late", &out);
        late.after = Some(done.id());
        let mut late = launcher.spawn_unconfined(late).await.unwrap();
        assert!(late.began().await);
        assert_eq!(late.wait().await, Exit::Exited(0));
        assert!(ran(d, "late"));

        // Behind one already reaped that failed: held for the caller's
        // word, like one held before the failure.
        let mut failed = launcher
            .spawn_unconfined(script(d, "exit 1", &out))
            .await
            .unwrap();
        assert_eq!(failed.wait().await, Exit::Exited(1));
        let mut late = script(d, "touch late-after-failure", &out);
        late.after = Some(failed.id());
        let mut late = launcher.spawn_unconfined(late).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!ran(d, "late-after-failure"), "it started after a failure");
        assert_eq!(late.try_began(), None);
        late.begin_now().await;
        assert!(late.began().await);
        assert_eq!(late.wait().await, Exit::Exited(0));
        assert!(ran(d, "late-after-failure"));
    });
}

#[test]
fn a_sandboxed_worker_on_deck_starts_when_the_one_it_follows_exits_0_and_only_then() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("own");
    std::fs::create_dir(&d).unwrap();
    // As root, workers run as an unprivileged user.
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = dir.path().join("out");
    let worker = |script: &str, after: Option<u64>| SpawnRequest {
        after,
        ..sh_in(&d, script, file(&out))
    };
    run(async {
        let launcher = match Launcher::start(Path::new(swarm_bin())).await {
            Ok(launcher) => launcher,
            Err(e) => {
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{e}");
                return;
            }
        };

        // Held while the first one runs; started once its init reported
        // its end (everything of it gone), after its last write.
        let mut first = launcher
            .spawn(worker("sleep 0.4; date +%s%N > first.end", None))
            .await
            .unwrap();
        let mut next = worker("date +%s%N > next.start", Some(first.id()));
        let flag = std::sync::Arc::new(std::sync::OnceLock::new());
        next.started = Some(std::sync::Arc::clone(&flag));
        let mut next = launcher.spawn(next).await.unwrap();
        assert!(next.on_deck());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!ran(&d, "next.start"), "it started before its turn");
        assert!(flag.get().is_none());
        assert_eq!(first.wait().await, Exit::Exited(0));
        assert!(next.began().await);
        assert!(flag.get().is_some());
        assert_eq!(next.wait().await, Exit::Exited(0));
        let time = |name: &str| -> u128 {
            std::fs::read_to_string(d.join(name))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert!(time("next.start") >= time("first.end"));

        // The one it follows failed: it waits for the caller's word, and
        // taken back, it never runs.
        let mut failing = launcher
            .spawn(worker("sleep 0.2; exit 3", None))
            .await
            .unwrap();
        let mut behind = launcher
            .spawn(worker("touch after-failure", Some(failing.id())))
            .await
            .unwrap();
        assert_eq!(failing.wait().await, Exit::Exited(3));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!ran(&d, "after-failure"), "it started after a failure");
        behind.withdraw().await;
        assert!(!behind.began().await);
        match behind.wait().await {
            Exit::Failed(message) => {
                insta::assert_snapshot!(message, @"withdrawn before it started")
            }
            other => panic!("{other:?}"),
        }
        assert!(!ran(&d, "after-failure"));

        // Told to start early, it runs beside the one it was to follow.
        let long = launcher.spawn(worker("sleep 30", None)).await.unwrap();
        let mut early = launcher
            .spawn(worker("touch early", Some(long.id())))
            .await
            .unwrap();
        early.begin_now().await;
        assert!(early.began().await);
        assert_eq!(early.wait().await, Exit::Exited(0));
        assert!(ran(&d, "early"));
        drop(long);

        // Behind one that already ended: at once if it succeeded.
        let mut done = launcher.spawn(worker("true", None)).await.unwrap();
        assert_eq!(done.wait().await, Exit::Exited(0));
        let mut late = launcher
            .spawn(worker("touch late", Some(done.id())))
            .await
            .unwrap();
        assert!(late.began().await);
        assert_eq!(late.wait().await, Exit::Exited(0));
        assert!(ran(&d, "late"));

        // Held, it is made ready as far as the launcher can alone; what
        // cannot be (an argument execve cannot pass) is said when it would
        // start, not before, and nothing of it runs.
        let mut leading = launcher
            .spawn(worker("sleep 0.3; date +%s%N > leading.end", None))
            .await
            .unwrap();
        let mut broken = worker("", Some(leading.id()));
        broken.argv = vec!["/bin/sh".into(), "-c".into(), "touch broken\0".into()];
        let mut broken = launcher.spawn(broken).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!ran(&d, "leading.end"));
        match broken.wait().await {
            Exit::Failed(message) => {
                insta::assert_snapshot!(message, @"pass an argument to execve: it holds a NUL byte (at byte 12), which a C string cannot")
            }
            other => panic!("{other:?}"),
        }
        assert!(
            ran(&d, "leading.end"),
            "its failure was said before its turn"
        );
        assert_eq!(leading.wait().await, Exit::Exited(0));
        assert!(!ran(&d, "broken"));
    });
}

/// The launcher's children now (idle sandbox cells, workers' inits).
fn children_of(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn each_sandbox_cell_serves_one_worker_and_nothing_of_it_reaches_the_next() {
    // A sandboxed worker's init is a cell made before its task came (see
    // sandbox/src/launcher/cell.rs). Each worker here leaves what it can
    // behind (a file in its /dev/shm, a process, its working directory
    // changed under it) and looks for what the ones before it left: every
    // one must find a fresh namespace, only its own processes, and only
    // its own fds.
    let dir = open_dir();
    let look = "ls -A /dev/shm; echo --; \
         cat /proc/[0-9]*/comm | grep -c sleep; echo --; \
         ls /proc/self/fd; echo --; \
         readlink /proc/self/ns/net /proc/self/ns/mnt /proc/self/ns/pid; echo --; \
         grep -c . /proc/self/mountinfo >/dev/null && echo mounts; \
         touch /dev/shm/left-behind; mkdir /dev/shm/dir; \
         (sleep 37 &); setsid sleep 37 & exit 0";
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        let launcher_pid = launcher.pid().unwrap();
        let request = |out: &Path| sh_in(dir.path(), look, file(out));
        // One at a time, then two at a time (each from a cell of its own).
        let mut outs = Vec::new();
        for round in 0..4 {
            let a = dir.path().join(format!("{round}a.out"));
            let b = dir.path().join(format!("{round}b.out"));
            let mut first = launcher.spawn(request(&a)).await.unwrap();
            if round < 2 {
                assert_eq!(first.wait().await, Exit::Exited(0));
            }
            let mut second = launcher.spawn(request(&b)).await.unwrap();
            assert_eq!(second.wait().await, Exit::Exited(0));
            if round >= 2 {
                assert_eq!(first.wait().await, Exit::Exited(0));
            }
            outs.extend([a, b]);
        }
        // The host's namespaces, which no worker may share (the network
        // one least: a worker without network is in the run's namespace
        // that has none).
        let host: Vec<String> = ["net", "mnt", "pid"]
            .iter()
            .map(|ns| {
                std::fs::read_link(format!("/proc/self/ns/{ns}"))
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        for out in &outs {
            let seen = std::fs::read_to_string(out).unwrap();
            let parts: Vec<&str> = seen.split("--\n").collect();
            assert_eq!(
                [parts[0], parts[1], parts[2], parts[4]],
                ["", "0\n", "0\n1\n2\n3\n", "mounts\n"],
                "what a worker found ({}): {seen}",
                out.display()
            );
            let namespaces: Vec<&str> = parts[3].lines().collect();
            assert_eq!(namespaces.len(), 3, "{seen}");
            for (theirs, host) in namespaces.iter().zip(&host) {
                assert_ne!(theirs, host, "a worker shares the host's namespace");
            }
        }
        // What is left of the launcher's children are idle cells, a few
        // (made ahead for the next worker).
        wait_until("the launcher to keep a few idle cells", || {
            (1..=4).contains(&children_of(launcher_pid).len())
        });
        let idle = children_of(launcher_pid);
        // No worker's process outlived it, in a cell or elsewhere.
        let sleepers = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("cmdline"))
                    .is_ok_and(|c| c == "sleep\u{0}37\u{0}")
            })
            .count();
        assert_eq!(sleepers, 0, "a worker's sleep outlived it");
        drop(launcher);
        wait_until("the launcher's idle cells to go with it", || {
            idle.iter().all(|&pid| !alive(pid))
        });
    });
}

#[test]
fn a_task_whose_cells_worker_made_ahead_died_still_runs_confined() {
    // A cell's worker made ahead (x86-64) that died before its task came
    // (killed from outside) is replaced by one started the usual way.
    let dir = open_dir();
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        let launcher_pid = launcher.pid().unwrap();
        let request = |script: &str, out: &Path| sh_in(dir.path(), script, file(out));
        // A first task makes the launcher keep cells for tasks like it.
        let first = dir.path().join("first.out");
        let mut spawned = launcher.spawn(request("true", &first)).await.unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        // Each idle cell's one child is its worker made ahead (off x86-64
        // there is none: nothing to test).
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let of = |pid: i32| children_of(u32::try_from(pid).unwrap());
        wait_until("idle cells, each with its worker made ahead", || {
            let cells = children_of(launcher_pid);
            !cells.is_empty() && cells.iter().all(|&cell| of(cell).len() == 1)
        });
        let workers: Vec<i32> = children_of(launcher_pid).into_iter().flat_map(of).collect();
        for &worker in &workers {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(worker),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        wait_until("the workers made ahead to die", || {
            workers.iter().all(|&pid| !alive(pid))
        });
        let out = dir.path().join("after.out");
        let look = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; \
                    readlink /proc/self/ns/net; touch /etc/planted 2>/dev/null && echo planted; \
                    echo ran";
        let mut spawned = launcher.spawn(request(look, &out)).await.unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        let seen = std::fs::read_to_string(&out).unwrap();
        let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert!(seen.contains("NoNewPrivs:\t1"), "{seen}");
        assert!(seen.contains("Seccomp:\t2"), "{seen}");
        assert!(!seen.contains(&host_net.display().to_string()), "{seen}");
        assert!(!seen.contains("planted"), "{seen}");
        assert!(seen.ends_with("ran\n"), "{seen}");
    });
}

#[test]
fn a_cell_sets_its_tasks_process_cap_ahead_and_serves_only_tasks_with_that_cap() {
    // A cell sets `pid_max` in its PID namespace as it prepares, then
    // makes `/proc` read-only: the cap of the tasks it is made for. Caps
    // alternating, one worker at a time (each start leaves a cell made
    // ahead for the next worker like it): each worker sees its own cap
    // (`processes` + 300), and cannot change it.
    let dir = open_dir();
    let look = "cat /proc/sys/kernel/pid_max; \
         (echo 9999 > /proc/sys/kernel/pid_max) 2>/dev/null || echo refused";
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        for (round, processes) in [100u64, 100, 4096, 50, 50, 100].into_iter().enumerate() {
            let out = dir.path().join(format!("{round}.out"));
            let mut request = sh_in(dir.path(), look, file(&out));
            request.policy.limits.processes = processes;
            let mut worker = launcher.spawn(request).await.unwrap();
            assert_eq!(worker.wait().await, Exit::Exited(0), "round {round}");
            assert_eq!(
                std::fs::read_to_string(&out).unwrap(),
                format!("{}\nrefused\n", processes + 300),
                "round {round}"
            );
        }
    });
}

/// Issue 76: a directory shown as an overlay (a kept setup's
/// `node_modules` in a worktree): the worker reads the lower layer's
/// files, what it writes, changes or removes there goes to its upper layer,
/// the lower layer stays as it was, the worker cannot reach the lower
/// layer at its own path, and the worktree outside holds nothing of it.
#[test]
fn an_overlay_shows_a_lower_layer_whose_changes_are_the_workers_own() {
    use std::os::unix::fs::PermissionsExt as _;
    run(async {
        let Some(launcher) = namespaced_launcher().await else {
            return;
        };
        let own = open_dir();
        let wt = own.path().join("wt");
        for dir in [wt.clone(), wt.join("node_modules")] {
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let layers = tempfile::tempdir().unwrap();
        let (lower, upper, work) = (
            layers.path().join("lower"),
            layers.path().join("upper"),
            layers.path().join("work"),
        );
        std::fs::create_dir_all(lower.join("pkg")).unwrap();
        std::fs::write(lower.join("pkg/index.js"), "lower\n").unwrap();
        std::fs::write(lower.join("gone.js"), "x").unwrap();
        std::fs::create_dir(&upper).unwrap();
        std::fs::create_dir(&work).unwrap();
        // As root the worker is another user: the layers are handed to it,
        // as a run hands a kept setup's files over.
        if let Some((uid, gid)) = swarm_sandbox::worker_identity() {
            for path in [
                lower.clone(),
                lower.join("pkg"),
                lower.join("pkg/index.js"),
                lower.join("gone.js"),
                upper.clone(),
                work.clone(),
            ] {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
        let mut request = sh_in(
            &wt,
            &format!(
                "cat node_modules/pkg/index.js; echo upper > node_modules/pkg/index.js; \
                 echo new > node_modules/new.js; rm node_modules/gone.js; \
                 cat node_modules/pkg/index.js; ls node_modules; \
                 test -e {} && echo reached the lower layer; true",
                lower.join("pkg/index.js").display()
            ),
            file(&own.path().join("out")),
        );
        request.policy.overlays = vec![swarm_sandbox::Overlay {
            target: wt.join("node_modules"),
            lower: lower.clone(),
            upper: upper.clone(),
            work,
        }];
        let mut spawned = launcher.spawn(request).await.unwrap();
        assert_eq!(spawned.wait().await, Exit::Exited(0));
        let out = std::fs::read_to_string(own.path().join("out")).unwrap();
        assert_eq!(out, "lower\nupper\nnew.js\npkg\n", "{out}");
        assert_eq!(
            std::fs::read_to_string(lower.join("pkg/index.js")).unwrap(),
            "lower\n"
        );
        assert!(lower.join("gone.js").exists());
        assert!(!lower.join("new.js").exists());
        assert_eq!(
            std::fs::read_to_string(upper.join("new.js")).unwrap(),
            "new\n"
        );
        assert_eq!(
            std::fs::read_to_string(upper.join("pkg/index.js")).unwrap(),
            "upper\n"
        );
        assert_eq!(
            std::fs::read_dir(wt.join("node_modules")).unwrap().count(),
            0
        );
    });
}
