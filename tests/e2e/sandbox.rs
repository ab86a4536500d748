//! Attacks on the sandbox, each run as a command task in a real sandboxed
//! worker through the `swarm` binary. Every attempt must fail, and the host
//! must be unchanged afterwards: the tests check both.
//!
//! A task records each attempt in `result.txt` in its worktree ("denied X"
//! or "ALLOWED X"); the file comes back through the real snapshot commit.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::time::Duration;

use crate::support::{TestRepo, redact, snapshot_settings, stable_stderr, summary_of, task};

/// Shell prelude: `try NAME CMD...` records whether CMD succeeded.
const PRELUDE: &str = r#"mkdir -p results; R="$PWD/results/$SWARM_TASK.txt"
try() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "ALLOWED $n" >> "$R"; else echo "denied $n" >> "$R"; fi; }
"#;

/// Whether this kernel can enforce the sandbox. Where it cannot, the tests
/// say so loudly and pass, except under `CI=true`, where they must run.
pub(crate) fn sandbox_available(repo: &TestRepo) -> bool {
    let doctor = repo.swarm(&["doctor"]);
    if doctor.code == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but this machine cannot enforce the sandbox:\n{}",
        doctor.stdout
    );
    eprintln!(
        "SKIPPED: sandbox attack test: this kernel cannot enforce the sandbox:\n{}",
        doctor.stdout
    );
    false
}

/// Runs `tasks` (id, script) sandboxed in one plan and returns each task's
/// `result.txt` lines.
pub(crate) fn attack(
    repo: &TestRepo,
    env: &[(&str, String)],
    tasks: &[(&str, String)],
) -> Vec<(String, Vec<String>)> {
    let env_table = env
        .iter()
        .map(|(k, v)| format!("{k} = {v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut plan = format!(
        "[swarm]\nname = \"attack\"\non_failure = \"continue\"\n\n[defaults]\ntimeout = \"20s\"\nenv = {{ {env_table} }}\n\n"
    );
    for (id, script) in tasks {
        plan.push_str(&format!(
            "[[task]]\nid = \"{id}\"\nrun = '''\n{PRELUDE}{script}\ntrue\n'''\n\n"
        ));
    }
    let p = repo.plan("attack.toml", &plan);
    let run = repo.run_plan(&p, &[]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let report = repo.report();
    tasks
        .iter()
        .map(|(id, _)| {
            let t = task(&report, id);
            assert_eq!(t["status"], "merged", "task {id} did not run cleanly: {t}");
            (id.to_string(), results_of(repo, id))
        })
        .collect()
}

/// The attempts task `id` recorded (none if it recorded nothing).
fn results_of(repo: &TestRepo, id: &str) -> Vec<String> {
    let rev = format!("refs/swarm/attack/{id}:results/{id}.txt");
    if !repo.git_output(&["cat-file", "-e", &rev]).status.success() {
        return Vec::new();
    }
    repo.git(&["show", &rev])
        .lines()
        .map(str::to_string)
        .collect()
}

#[track_caller]
pub(crate) fn assert_all_denied(results: &[(String, Vec<String>)], expected: usize) {
    let mut count = 0;
    for (id, lines) in results {
        for line in lines {
            assert!(line.starts_with("denied "), "task {id}: {line}");
            count += 1;
        }
    }
    assert_eq!(
        count, expected,
        "not every attempt was recorded: {results:?}"
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"))
}

#[test]
fn writes_outside_the_worktree_fail_and_leave_the_host_unchanged() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let out = repo.outside();
    std::fs::write(out.join("victim.txt"), "original\n").unwrap();
    std::fs::create_dir(out.join("dir")).unwrap();
    std::fs::write(out.join("dir/inner.txt"), "inner\n").unwrap();
    let (mode_before, mtime_before) = {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(out.join("victim.txt")).unwrap();
        (meta.mode() & 0o777, meta.mtime())
    };
    let results = attack(
        &repo,
        &[("OUT", out.display().to_string())],
        &[
            ("absolute", "try abs sh -c 'echo x > \"$OUT/new.txt\"'\ntry abs-append sh -c 'echo x >> \"$OUT/victim.txt\"'".into()),
            ("dotdot", "try dotdot sh -c 'echo x > ../../../../../outside/new2.txt'\ntry mkdir mkdir \"$OUT/newdir\"".into()),
            ("symlink", "ln -s \"$OUT\" out-link\nln -s \"$OUT/victim.txt\" victim-link\ntry via-dir-link sh -c 'echo x > out-link/new3.txt'\ntry via-file-link sh -c 'echo pwned > victim-link'".into()),
            ("swap", "mkdir -p sub\necho ok > sub/f\nrm -rf sub\nln -s \"$OUT/dir\" sub\ntry swapped-link sh -c 'echo pwned > sub/inner.txt'".into()),
            ("move-in", "try mv-dir-in mv \"$OUT/dir\" ./stolen\ntry mv-file-in mv \"$OUT/victim.txt\" ./stolen.txt".into()),
            ("truncate", "try truncate truncate -s 0 \"$OUT/victim.txt\"\ntry rm rm \"$OUT/victim.txt\"\ntry rm-dir rm -r \"$OUT/dir\"".into()),
            (
                "metadata",
                "try chown chown 4242 \"$OUT/victim.txt\"\n\
                 try chmod chmod 777 \"$OUT/victim.txt\"\n\
                 try utime touch -d 2001-01-01 \"$OUT/victim.txt\"\n\
                 try setxattr python3 -c \"import os; os.setxattr(os.environ['OUT'] + '/victim.txt', 'user.x', b'1')\"\n\
                 echo mine > mine.txt\n\
                 chmod 600 mine.txt && touch -d 2001-01-01 mine.txt && echo ok > own-metadata.txt"
                    .into(),
            ),
        ],
    );
    assert_all_denied(&results, 16);
    // Metadata of the worker's own files is still its to change.
    assert_eq!(
        repo.show("refs/swarm/attack/metadata", "own-metadata.txt"),
        "ok"
    );
    assert_eq!(read(&out.join("victim.txt")), "original\n");
    assert_eq!(read(&out.join("dir/inner.txt")), "inner\n");
    let mut entries: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["dir", "victim.txt"]);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(out.join("victim.txt")).unwrap();
    assert_ne!(meta.uid(), 4242);
    assert_eq!(meta.mode() & 0o777, mode_before);
    assert_eq!(meta.mtime(), mtime_before);
}

#[test]
fn the_repository_git_directory_is_read_only() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    repo.git(&["branch", "other"]);
    let git_dir = repo.path().join(".git");
    let config_before = read(&git_dir.join("config"));
    let results = attack(
        &repo,
        &[],
        &[
            (
                "git-dir",
                "common=$(git rev-parse --git-common-dir)\n\
                 try hook sh -c \"echo evil > $common/hooks/post-checkout\"\n\
                 try config sh -c \"echo '[core] fsmonitor = evil' >> $common/config\"\n\
                 try update-ref git update-ref refs/heads/evil HEAD\n\
                 try branch-file sh -c \"echo 0000 > $common/refs/heads/other\"\n\
                 try other-admin sh -c \"echo x > $common/worktrees/victim-admin\"\n\
                 try objects sh -c \"echo x > $common/objects/evil\"\n\
                 try git-commit sh -c 'echo y > y.txt && git add y.txt && git -c user.name=a -c user.email=a@b commit -qm evil'"
                    .into(),
            ),
            // A worker may rewrite its worktree's .git file; swarm must not
            // follow it when it snapshots.
            ("gitfile", "echo 'gitdir: /nonexistent/evil' > .git\necho kept > kept.txt".into()),
        ],
    );
    assert_all_denied(&results[..1], 7);
    assert_eq!(read(&git_dir.join("config")), config_before);
    assert!(!git_dir.join("hooks/post-checkout").exists());
    assert!(!repo.has_rev("refs/heads/evil"));
    assert_eq!(
        repo.git(&["rev-parse", "other"]),
        repo.git(&["rev-parse", "main"])
    );
    assert_eq!(repo.show("refs/swarm/attack/gitfile", "kept.txt"), "kept");
}

#[test]
fn secrets_of_the_real_home_and_environment_stay_hidden() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let home = repo.home();
    for (path, content) in [
        (".ssh/id_ed25519", "PRIVATE KEY"),
        (".aws/credentials", "aws_secret"),
        (".git-credentials", "https://u:p@host"),
    ] {
        std::fs::create_dir_all(home.join(path).parent().unwrap()).unwrap();
        std::fs::write(home.join(path), content).unwrap();
    }
    let plan = repo.plan(
        "secrets.toml",
        &format!(
            "[swarm]\nname = \"attack\"\n\n[[task]]\nid = \"secrets\"\nenv = {{ REAL_HOME = {:?} }}\nrun = '''\n{PRELUDE}\
             try ssh-key cat \"$REAL_HOME/.ssh/id_ed25519\"\n\
             try aws cat \"$REAL_HOME/.aws/credentials\"\n\
             try git-credentials cat \"$REAL_HOME/.git-credentials\"\n\
             try parent-environ cat /proc/$PPID/environ\n\
             try shadow cat /etc/shadow\n\
             env | sort > env.txt\n\
             grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd|Seccomp):' /proc/self/status > status.txt\n\
             true\n'''\n",
            home.display().to_string()
        ),
    );
    let mut cmd = repo.swarm_cmd(&["run", p_str(&plan)]);
    cmd.env("ANTHROPIC_API_KEY", "sk-ant-secret")
        .env("SSH_AUTH_SOCK", "/tmp/agent.sock")
        .env("AWS_SECRET_ACCESS_KEY", "aws-secret");
    let run: crate::support::Run = cmd.output().unwrap().into();
    run.assert_code(0);
    let results = vec![("secrets".to_string(), results_of(&repo, "secrets"))];
    assert_all_denied(&results, 5);
    let env = repo.show("refs/swarm/attack/secrets", "env.txt");
    for line in env.lines() {
        let name = line.split('=').next().unwrap();
        assert!(
            [
                "PATH",
                "HOME",
                "TMPDIR",
                "PWD",
                "SHLVL",
                "OLDPWD",
                "_",
                "LC_ALL",
                "NO_COLOR",
                "REAL_HOME",
                // What detected toolchains need to be found (paths, no
                // secrets): see `swarm validate`.
                "CARGO_HOME",
                "RUSTUP_HOME",
                "RUSTUP_TOOLCHAIN",
                "PYENV_ROOT",
                "PYENV_VERSION",
                "VIRTUAL_ENV",
                "CONDA_PREFIX",
                "GOROOT",
                "GOPATH",
                "GOMODCACHE",
                // Their build caches (paths under the worktree home).
                "CARGO_TARGET_DIR",
                "npm_config_cache",
                "PIP_CACHE_DIR",
                "GOCACHE"
            ]
            .contains(&name)
                || name.starts_with("SWARM_"),
            "unexpected variable in the worker: {line}"
        );
    }
    for secret in ["sk-ant-secret", "aws-secret", "agent.sock"] {
        assert!(
            !env.contains(secret),
            "{secret} leaked into the worker:\n{env}"
        );
    }
    let status = repo.show("refs/swarm/attack/secrets", "status.txt");
    insta::assert_snapshot!(status, @"
    CapPrm:	0000000000000000
    CapEff:	0000000000000000
    CapBnd:	0000000000000000
    NoNewPrivs:	1
    Seccomp:	2
    ");
}

fn p_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn no_network_reaches_the_host() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let tcp6 = TcpListener::bind("[::1]:0").ok();
    if let Some(l) = &tcp6 {
        l.set_nonblocking(true).unwrap();
    }
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let abstract_name = format!("swarm-test-{}", std::process::id());
    let unix = {
        use std::os::linux::net::SocketAddrExt;
        let addr =
            std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
        std::os::unix::net::UnixListener::bind_addr(&addr).unwrap()
    };
    unix.set_nonblocking(true).unwrap();
    let py = |code: &str| format!("python3 -c \"{code}\"");
    let port6 = tcp6.as_ref().map_or(1, |l| l.local_addr().unwrap().port());
    let results = attack(
        &repo,
        &[
            ("TCP_PORT", tcp.local_addr().unwrap().port().to_string()),
            ("TCP6_PORT", port6.to_string()),
            ("UDP_PORT", udp.local_addr().unwrap().port().to_string()),
            ("ABSTRACT", abstract_name.clone()),
        ],
        &[
            (
                "net",
                [
                    format!("try tcp4 {}", py("import os,socket; socket.create_connection(('127.0.0.1', int(os.environ['TCP_PORT'])), 2)")),
                    format!("try tcp6 {}", py("import os,socket; socket.create_connection(('::1', int(os.environ['TCP6_PORT'])), 2)")),
                    format!("try udp {}", py("import os,socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'leak', ('127.0.0.1', int(os.environ['UDP_PORT'])))")),
                    format!("try raw {}", py("import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)")),
                    format!("try netlink {}", py("import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)")),
                    format!("try abstract-unix {}", py("import os,socket; s=socket.socket(socket.AF_UNIX); s.connect('\\0' + os.environ['ABSTRACT'])")),
                    "try dns getent hosts example.com".to_string(),
                    "try curl curl -sS -m 2 http://127.0.0.1:$TCP_PORT/".to_string(),
                    "try wget wget -q -t 1 -T 2 -O /dev/null http://127.0.0.1:$TCP_PORT/".to_string(),
                ]
                .join("\n"),
            ),
            // Unix sockets inside the sandbox keep working (tools need them).
            ("unix-ok", py("import socket; a,b=socket.socketpair(); a.send(b'x'); assert b.recv(1)==b'x'") + " && echo fine > fine.txt"),
        ],
    );
    assert_all_denied(&results[..1], 9);
    assert_eq!(repo.show("refs/swarm/attack/unix-ok", "fine.txt"), "fine");
    assert!(tcp.accept().is_err(), "a TCP connection reached the host");
    if let Some(l) = &tcp6 {
        assert!(
            l.accept().is_err(),
            "an IPv6 TCP connection reached the host"
        );
    }
    let mut buf = [0u8; 16];
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "a UDP datagram reached the host"
    );
    match unix.accept() {
        Ok((mut s, _)) => {
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            panic!("an abstract unix connection reached the host");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
    }
}

#[test]
fn processes_cannot_touch_the_coordinator_or_escape() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let py = |code: &str| format!("python3 -c \"{code}\"");
    let results = attack(
        &repo,
        &[],
        &[(
            "procs",
            [
                "try kill-coordinator kill -TERM $PPID".to_string(),
                "try kill-init kill -0 1".to_string(),
                format!("try ptrace {}", py("import ctypes,os; libc=ctypes.CDLL(None, use_errno=True); r=libc.ptrace(16, os.getppid(), 0, 0); assert r == 0")),
                "try proc-mem sh -c 'head -c 1 /proc/$PPID/mem'".to_string(),
                "try unshare unshare -r true".to_string(),
                "try unshare-net unshare -n true".to_string(),
                format!("try tiocsti {}", py("import fcntl,termios,os; fd=os.open('/dev/tty', os.O_RDWR); fcntl.ioctl(fd, termios.TIOCSTI, b'x')")),
                format!("try tiocsti-stdin {}", py("import fcntl,termios; fcntl.ioctl(0, termios.TIOCSTI, b'x')")),
                format!("try io-uring {}", py("import ctypes; libc=ctypes.CDLL(None, use_errno=True); p=ctypes.create_string_buffer(120); r=libc.syscall(425, 1, p); assert r >= 0")),
                format!("try bpf {}", py("import ctypes; libc=ctypes.CDLL(None, use_errno=True); r=libc.syscall(321, 0, 0, 0); assert r >= 0")),
                format!("try keyctl {}", py("import ctypes; libc=ctypes.CDLL(None, use_errno=True); r=libc.syscall(250, 0, -3, 0); assert r >= 0")),
                format!("try mount {}", py("import ctypes; libc=ctypes.CDLL(None, use_errno=True); r=libc.mount(b'none', b'/tmp', b'tmpfs', 0, None); assert r == 0")),
            ]
            .join("\n"),
        )],
    );
    // setsid and setpgid are allowed with the namespace layer: the PID
    // namespace contains what leaves the group (the daemon test below).
    assert_all_denied(&results, 12);
}

#[test]
fn sandboxed_timeouts_kill_the_whole_tree() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let p = repo.plan(
        "slow.toml",
        "[swarm]\nname = \"attack\"\n\n[[task]]\nid = \"slow\"\ntimeout = \"500ms\"\nrun = \"(sleep 2; touch late.txt) & (trap '' TERM; sleep 37.25) & echo partial > partial.txt; sleep 37.25\"\n",
    );
    let started = std::time::Instant::now();
    repo.run_plan(&p, &["--grace", "200ms"]).assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(task(&repo.report(), "slow")["status"], "timed_out");
    assert_eq!(
        repo.show("refs/swarm/attack/slow", "partial.txt"),
        "partial"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let wt = repo.worktree("attack", "slow");
    assert!(
        !wt.join("late.txt").exists(),
        "a background child outlived its timed-out task"
    );
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains("sleep 37.25"),
        "a process ignoring SIGTERM survived"
    );
}

#[test]
fn a_daemon_cannot_escape_the_task() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    // The classic double fork: the grandchild tries to become a session
    // leader so that a group kill misses it, then outlives the task.
    let p = repo.plan(
        "daemon.toml",
        "[swarm]\nname = \"attack\"\n\n[[task]]\nid = \"daemon\"\nrun = '''\npython3 -c \"\nimport os, time\nif os.fork() == 0:\n    try:\n        os.setsid()\n    except OSError:\n        pass\n    if os.fork() == 0:\n        time.sleep(38.5)\n        open('late.txt', 'w').write('x')\n    os._exit(0)\n\"\necho started > started.txt\n'''\n",
    );
    repo.run_plan(&p, &[]).assert_code(0);
    std::thread::sleep(Duration::from_millis(300));
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains("38.5"),
        "the daemon outlived its task"
    );
}

/// `cmd` with only git in its PATH: `swarm doctor` and `validate` then
/// find no toolchain of this machine, and list the same on every one.
pub(crate) fn only_git_in_path(repo: &TestRepo, cmd: &mut std::process::Command) {
    let bin = repo.root().join("only-git");
    if !bin.exists() {
        std::fs::create_dir_all(&bin).unwrap();
        let path = std::env::var_os("PATH").unwrap();
        let git = std::env::split_paths(&path)
            .map(|dir| dir.join("git"))
            .find(|git| git.is_file())
            .expect("git is in PATH");
        std::os::unix::fs::symlink(git, bin.join("git")).unwrap();
    }
    cmd.env("PATH", &bin);
}

/// What `swarm doctor` says that is this machine's, not swarm's: the
/// kernel, its Landlock ABI, cgroups, namespaces, git's version and the
/// identity of workers (root or not).
fn machine_filters() -> insta::Settings {
    let mut settings = crate::support::snapshot_settings();
    for (regex, placeholder) in [
        (r"(?m)^kernel            .+$", "kernel            [KERNEL]"),
        (
            r"(?m)^landlock          ABI \d+ ",
            "landlock          ABI [ABI] ",
        ),
        (r"(?m)^cgroups           .+$", "cgroups           [CGROUPS]"),
        (
            r"(?m)^namespaces        .+$",
            "namespaces        [NAMESPACES]",
        ),
        (
            r"(?m)^git               git version .+$",
            "git               git version [VERSION]",
        ),
        (r"(?m)^  identity   .+$", "  identity   [IDENTITY]"),
        (
            r"(?m)^(setup outputs     copied into each worktree .+: overlays failed to ).+$",
            "${1}[WHY]",
        ),
    ] {
        settings.add_filter(regex, placeholder);
    }
    settings
}

/// [`snapshot_settings`], and how many tasks a run starts at once (the
/// machine's CPU count) as `[N]`.
fn run_filters() -> insta::Settings {
    crate::support::snapshot_settings_any_cpus()
}

#[test]
fn doctor_reports_what_is_enforced() {
    let repo = TestRepo::new();
    let mut cmd = repo.swarm_cmd(&["doctor"]);
    only_git_in_path(&repo, &mut cmd);
    let run: crate::support::Run = cmd.output().unwrap().into();
    run.assert_code(0);
    let identity = if nix::unistd::geteuid().is_root() {
        "identity   uid 65534, gid 65534 (nobody)".to_string()
    } else {
        format!("identity   your own user (uid {})", nix::unistd::geteuid())
    };
    assert!(run.stdout.contains(&identity), "{}", run.stdout);
    // The shape of the report, not this machine's values.
    machine_filters().bind(|| {
        insta::assert_snapshot!("doctor", redact(&run.stdout, &repo));
    });
}

#[test]
fn read_paths_open_toolchains_read_only() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let tools = repo.home().join("tools/bin");
    std::fs::create_dir_all(&tools).unwrap();
    std::fs::write(
        tools.join("hello"),
        "#!/bin/sh\necho hello from a toolchain\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tools.join("hello"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = repo.plan(
        "tools.toml",
        &format!(
            "[swarm]\nname = \"attack\"\nread_paths = [\"~/tools\"]\n\n[[task]]\nid = \"tools\"\nrun = '''\n{PRELUDE}\
             {bin}/hello > out.txt\ntry write-toolchain sh -c 'echo x > {bin}/evil'\n'''\n",
            bin = tools.display()
        ),
    );
    repo.run_plan(&p, &[]).assert_code(0);
    assert_eq!(
        repo.show("refs/swarm/attack/tools", "out.txt"),
        "hello from a toolchain"
    );
    assert_all_denied(&[("tools".into(), results_of(&repo, "tools"))], 1);
    assert!(!tools.join("evil").exists());
}

/// Runs `swarm ARGS` as a process in which the Landlock system calls fail
/// with ENOSYS, as on a kernel built without Landlock: python3 installs a
/// seccomp filter (no_new_privs first) and execs swarm.
fn swarm_without_landlock(repo: &TestRepo, args: &[&str]) -> crate::support::Run {
    swarm_denied(repo, 444, 447, 38, args)
}

/// Runs `swarm ARGS` with system calls `first..end` (x86_64 numbers)
/// failing with `errno`, through a seccomp filter python3 installs.
pub(crate) fn swarm_denied(
    repo: &TestRepo,
    first: u32,
    end: u32,
    errno: u32,
    args: &[&str],
) -> crate::support::Run {
    const DENY: &str = r#"
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
def insn(code, jt, jf, k): return struct.pack("HBBI", code, jt, jf, k)
first, end, errno = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
prog = b"".join([
    insn(0x20, 0, 0, 0),                          # load the syscall number
    insn(0x35, 0, 3, first),                      # < first: allow
    insn(0x35, 2, 0, end),                        # >= end: allow
    insn(0x06, 0, 0, 0x00050000 | errno),         # first..end: errno
    insn(0x06, 0, 0, 0x7fff0000),
    insn(0x06, 0, 0, 0x7fff0000),
])
buf = ctypes.create_string_buffer(prog)
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
assert libc.prctl(38, 1, 0, 0, 0) == 0                  # PR_SET_NO_NEW_PRIVS
assert libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, filter
os.execv(sys.argv[4], sys.argv[4:])
"#;
    let mut cmd = std::process::Command::new("python3");
    crate::support::hermetic(&mut cmd, &repo.home());
    cmd.current_dir(repo.path())
        .args(["-c", DENY])
        .args([first, end, errno].map(|n| n.to_string()))
        .arg(crate::support::swarm_bin())
        .args(args);
    cmd.output().unwrap().into()
}

#[test]
fn without_landlock_sandboxed_runs_are_refused_and_none_is_loud() {
    let repo = TestRepo::new();
    let p = repo.plan(
        "plain.toml",
        "[swarm]\nname = \"plain\"\n\n[[task]]\nid = \"a\"\nrun = \"echo hi > hi.txt\"\n",
    );
    let plan = p.to_str().unwrap();
    let refused = swarm_without_landlock(&repo, &["run", plan]);
    refused.assert_code(2);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&refused.stderr, &repo), @r#"
    error: failed to start run: tasks cannot be sandboxed on this machine: start the sandbox launcher: Landlock is not available: the kernel was built without Landlock
    help: `swarm doctor` shows what this kernel supports; to run without any confinement (tasks get your permissions), set `sandbox = "none"` in the [swarm] table of [TMP]/plans/plain.toml or pass --sandbox none
    "#));
    assert!(repo.swarm_traces().is_empty(), "{:?}", repo.swarm_traces());
    let doctor = swarm_without_landlock(&repo, &["doctor"]);
    assert_eq!(doctor.code, 1, "{}", doctor.stdout);
    machine_filters().bind(|| {
        insta::assert_snapshot!("doctor_without_landlock", redact(&doctor.stdout, &repo));
    });
    // The explicit opt-out runs, and says loudly that it is unconfined.
    let unconfined = swarm_without_landlock(&repo, &["run", plan, "--sandbox", "none"]);
    unconfined.assert_code(0);
    run_filters()
        .bind(|| insta::assert_snapshot!(redact(&stable_stderr(&unconfined.stderr), &repo), @r#"
        warning: sandbox = "none": tasks of run `plain` run UNCONFINED, with your permissions and environment
        swarm: run plain: 1 task, up to [N] at once, from HEAD ([HASH]) into branch swarm/plain
          start      a       
          succeeded  a        [1/1]
          merged     a

        run plain: succeeded
          task  status          time  try  changed  result
          a     merged         [T]s    1        1  refs/swarm/plain/a

          1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/plain at [HASH], [T]s
        "#));
    assert_eq!(repo.show("swarm/plain", "hi.txt"), "hi");
}

// The filter below names `unshare` by its x86_64 number.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_user_namespaces_the_baseline_still_confines() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let out = repo.outside();
    std::fs::write(out.join("victim.txt"), "original\n").unwrap();
    // Without a mount namespace a root swarm's workers (uid 65534) reach
    // their worktree through the host's own directories, which must let
    // them pass, as a CI checkout's do (the test's temporary root is 0700).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(repo.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = repo.plan(
        "baseline.toml",
        &format!(
            "[swarm]\nname = \"baseline\"\non_failure = \"continue\"\n\n[defaults]\nenv = {{ OUT = {:?} }}\n\n\
             [[task]]\nid = \"attacks\"\nrun = '''\n{PRELUDE}\
             try write-outside sh -c 'echo x > \"$OUT/victim.txt\"'\n\
             try net python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\"\n\
             try setsid python3 -c \"import os; os.setsid()\"\n\
             echo inside > inside.txt\n'''\n\n\
             [[task]]\nid = \"slow\"\ntimeout = \"500ms\"\nrun = \"(trap '' TERM; sleep 44.75) & sleep 44.75\"\n\n\
             [[task]]\nid = \"listed\"\nnetwork = [\"127.0.0.2:8000\"]\nrun = \"echo ran > ran.txt\"\n",
            out.display().to_string()
        ),
    );
    // unshare (272 on x86_64) refused: no user namespace for the launcher.
    let run = swarm_denied(
        &repo,
        272,
        273,
        1,
        &["run", p.to_str().unwrap(), "--grace", "200ms"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    // What it says before it starts, and its summary: the tasks' lines
    // between them come in the order two at a time run.
    let before = &run.stderr[..run.stderr.find("swarm: run ").unwrap()];
    let said = format!("{before}...\n\n{}", summary_of(&run.stderr));
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&said, &repo), @r#"
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/baseline.toml:27: task `listed` network = ["127.0.0.2:8000"]: lets tasks reach the hosts it lists, through swarm's egress proxy
    warning: user namespaces are unavailable (Operation not permitted (os error 1)): tasks run under Landlock + seccomp only, so chmod, utime and xattr changes outside the worktree are not blocked (see `swarm doctor`)
    ...

    run baseline: finished with failures (exit 1)
      task     status          time  try  changed  result
      attacks  merged         [T]s    1        2  refs/swarm/baseline/attacks
      slow     timed_out      [T]s    1        0  refs/swarm/baseline/slow
      listed   failed         [T]s    1        0  refs/swarm/baseline/listed

      1 merged, 0 succeeded (read-only), 2 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/baseline at [HASH], [T]s
      slow: timed out after 500ms
      slow log: .swarm/runs/baseline/logs/slow/1.err
      listed: could not start: give the worker its gateway port: that needs the namespace layer (user namespaces), which is off here, and the baseline has no network of the worker's own to put it in
      listed log: .swarm/runs/baseline/logs/listed/1.err
    "#));
    let report = repo.report();
    assert_eq!(task(&report, "attacks")["status"], "merged");
    assert_eq!(task(&report, "slow")["status"], "timed_out");
    // A network list needs a namespace of the task's own for its proxy:
    // the baseline refuses to start it rather than give it the host's.
    let listed = task(&report, "listed");
    assert_eq!(listed["status"], "failed", "{listed}");
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(listed["reason"].as_str().unwrap(), &repo), @"could not start: give the worker its gateway port: that needs the namespace layer (user namespaces), which is off here, and the baseline has no network of the worker's own to put it in"));
    let results = repo.git(&["show", "refs/swarm/baseline/attacks:results/attacks.txt"]);
    assert_eq!(
        results.lines().collect::<Vec<_>>(),
        ["denied write-outside", "denied net", "denied setsid"]
    );
    assert_eq!(
        repo.show("refs/swarm/baseline/attacks", "inside.txt"),
        "inside"
    );
    assert_eq!(read(&out.join("victim.txt")), "original\n");
    std::thread::sleep(Duration::from_millis(300));
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains("sleep 44.75"),
        "a process of the timed-out task survived"
    );
}
