//! Process groups: starting a worker as the leader of its own group and
//! stopping the whole group, including children that outlive the worker;
//! and how swarm's own threads ask to be scheduled.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How urgently a worker is to be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    /// SIGTERM, then SIGKILL after the grace period.
    Graceful,
    /// SIGKILL at once (a second Ctrl-C).
    Immediate,
}

/// Sends SIGKILL to every process left in group `pgid`. A group that is
/// already empty is not an error.
pub fn kill_group(pgid: u32) {
    signal(pgid, Signal::SIGKILL);
}

fn signal(pgid: u32, sig: Signal) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    if raw <= 1 {
        // Never signal group 0 (our own) or 1 (init's): a bug must not
        // become a kill of the coordinator or the machine.
        return;
    }
    match killpg(Pid::from_raw(raw), sig) {
        Ok(()) => {}
        // No such group: the leader may have left it (or never made it);
        // signal the leader itself.
        Err(Errno::ESRCH) => match nix::sys::signal::kill(Pid::from_raw(raw), sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(err) => tracing::warn!(pgid, ?sig, %err, "failed to signal process"),
        },
        Err(err) => tracing::warn!(pgid, ?sig, %err, "failed to signal process group"),
    }
}

/// Restores SIGPIPE's default action (Rust ignores it), so that a command
/// whose output is piped into `head` ends quietly when the reader goes away,
/// like any Unix tool, instead of failing on its next write.
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler, so nothing can run in signal
    // context.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Lowers the calling thread's scheduling priority by `by` nice steps (on
/// Linux a nice value belongs to a thread, not the process): for threads
/// that do bulk work in the background, so that under a full CPU they
/// yield to the thread that must react at once. Best effort.
pub fn lower_thread_priority(by: i32) {
    // SAFETY: nice only changes the calling thread's nice value; its -1
    // return is also a valid value, so errno is not consulted.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        libc::nice(by);
    }
}

/// The slice asked for by [`shorten_thread_slice`]: the least the kernel
/// takes. What a dispatching thread does when it wakes (read a reply,
/// start the next command, answer) takes tens of microseconds.
const DISPATCH_SLICE_NS: u64 = 100_000;

/// `struct sched_attr` (`SCHED_ATTR_SIZE_VER1`).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// The calling thread's scheduling attributes (`sched_getattr`).
fn this_thread_attr() -> Option<SchedAttr> {
    let mut attr = SchedAttr::default();
    // SAFETY: `attr` is a writable `sched_attr` of the size passed.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let got = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            std::ptr::from_mut(&mut attr),
            std::mem::size_of::<SchedAttr>(),
            0,
        )
    };
    (got == 0).then_some(attr)
}

/// Asks the kernel for short turns on a CPU for the calling thread: a
/// slice of [`DISPATCH_SLICE_NS`] (Linux 6.12 and later; on an older
/// kernel nothing is changed). For the threads that hand out work: the coordinator's
/// runtime thread and the launcher. Returns whether the kernel holds the
/// slice now. Best effort.
///
/// Why: with as many commands running as CPUs, each command's end wakes
/// them while the other CPUs run commands. With the default slice (about
/// a millisecond) a woken dispatcher often waited for the command running
/// on its CPU to end, while the CPU the last command left stayed idle
/// (the kernel does not pull a task over for so short an idle): 1,000
/// no-op tasks at two slots on two CPUs spent an eighth of the run idle
/// (`perf sched`, section 17 of BENCHMARKS.md). A short slice gives a
/// woken dispatcher the CPU at once; its share of the CPU is unchanged.
///
/// Only the slice changes: the policy and nice value stay. Children and
/// threads made afterwards start with the default slice
/// (`SCHED_FLAG_RESET_ON_FORK`): a command must not inherit it. That flag
/// also resets a negative nice value or a real-time policy in children,
/// so a thread that has either (a person asked for it) is left alone. And
/// while it is set, an unprivileged user can no longer change the thread's
/// policy (`chrt -b -p` on the coordinator fails with EPERM; `renice`
/// still works).
pub fn shorten_thread_slice() -> bool {
    const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
    let Some(mut attr) = this_thread_attr() else {
        return false;
    };
    let fair = matches!(
        i32::try_from(attr.policy),
        Ok(libc::SCHED_OTHER | libc::SCHED_BATCH)
    );
    // A kernel that keeps a slice per thread (6.12 and later) reports it
    // here; an older one reports 0 and would ignore ours, and then the
    // flag below would only cost what it costs (see the function).
    if !fair || attr.nice < 0 || attr.runtime == 0 {
        return false;
    }
    attr.size = u32::try_from(std::mem::size_of::<SchedAttr>()).unwrap_or(0);
    attr.flags = SCHED_FLAG_RESET_ON_FORK;
    attr.runtime = DISPATCH_SLICE_NS;
    // SAFETY: `attr` is a `sched_attr` of the size it states, read above
    // from this thread and changed in its slice and flags only.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let set = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, std::ptr::from_ref(&attr), 0) };
    set == 0 && this_thread_attr().is_some_and(|now| now.runtime == DISPATCH_SLICE_NS)
}

/// Asks every process in group `pgid` to stop (SIGTERM).
pub fn term_group(pgid: u32) {
    signal(pgid, Signal::SIGTERM);
}

/// Makes `fd` (one of ours, normally close-on-exec) stay open, at the same
/// number, in the program `cmd` starts: how an unsandboxed agent worker
/// inherits its channel to the coordinator. (Sandboxed workers get theirs
/// through the launcher, `Policy::keep_fds`.)
pub fn pass_fd(cmd: &mut tokio::process::Command, fd: std::os::fd::RawFd) {
    // SAFETY: fcntl is async-signal-safe and touches only the child's copy
    // of the descriptor table.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Takes ownership of `fd`, a descriptor this process inherited (an agent
/// worker's channel), and marks it close-on-exec so that nothing the
/// worker runs inherits it. Fails if `fd` is not open or is a standard
/// stream.
pub fn adopt_fd(fd: std::os::fd::RawFd) -> std::io::Result<std::os::fd::OwnedFd> {
    if fd <= 2 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("fd {fd} is a standard stream"),
        ));
    }
    // SAFETY: F_SETFD on a number we were told is ours; fails with EBADF
    // (and we stop) if it is not open.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        if libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(std::os::fd::FromRawFd::from_raw_fd(fd))
    }
}

/// Makes this process's memory and environment (`/proc/self/environ`,
/// `/proc/self/mem`) unreadable to other processes of the same user, and
/// turns off its core dumps: the coordinator holds API keys, and an
/// unconfined worker (`sandbox = "none"`) runs as the same user.
pub fn hide_secrets() -> std::io::Result<()> {
    nix::sys::prctl::set_dumpable(false).map_err(std::io::Error::from)
}

/// Makes the unconfined command `cmd` starts die, with everything it
/// started, when the coordinator dies, however it dies (`kill -9`, OOM):
/// a sandboxed worker has its PID namespace for that; an unconfined one
/// gets a watcher.
///
/// The process `cmd` tracks becomes a small watcher that leads the
/// command's process group and never `exec`s: it forks the command (which
/// goes on to `exec`), asks the kernel for SIGUSR1 when the coordinator
/// dies (`PR_SET_PDEATHSIG`), and then waits. When the command ends, the
/// watcher ends the same way (same exit code, or same signal), so callers
/// see the command's outcome. When the coordinator dies, the watcher kills
/// the whole group. It ignores SIGTERM, so that a graceful stop of the
/// group (SIGTERM, grace, SIGKILL) still gives the command its grace
/// period. Must be the last `pre_exec` step, and `cmd` must be spawned from
/// a thread that lives as long as the command (the parent-death signal
/// follows the spawning thread): the coordinator's runtime thread.
///
/// The command joins the cgroups whose `cgroup.procs` are open as `join`
/// (the watcher does not: watchers of tasks sharing a cgroup must not kill
/// each other). With `cgroup_procs` (the path of the member list of one of
/// them), the watcher first kills every member of that cgroup: what left
/// the process group (`setsid`, a daemon's double fork) dies too.
pub fn watch_coordinator(
    cmd: &mut tokio::process::Command,
    join: Vec<std::os::fd::RawFd>,
    cgroup_procs: Option<&std::path::Path>,
) {
    let coordinator = i32::try_from(std::process::id()).unwrap_or(0);
    // Made before the fork: nothing may allocate after it.
    let reap = cgroup_procs.and_then(|p| {
        std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())).ok()
    });
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (setpgid, sigprocmask, fork, write, prctl, getppid, kill, sigwaitinfo,
    // waitpid, signal, syscall(close_range), open, read, close, nanosleep,
    // _exit); nothing allocates.
    #[expect(unsafe_code, reason = "fork and signal handling between fork and exec")]
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // Blocked before the fork, so that neither the command's end
            // nor the coordinator's death can come before the wait.
            let mut waited: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut waited);
            libc::sigaddset(&mut waited, libc::SIGCHLD);
            libc::sigaddset(&mut waited, libc::SIGUSR1);
            let mut old: libc::sigset_t = std::mem::zeroed();
            if libc::sigprocmask(libc::SIG_BLOCK, &waited, &mut old) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            let command = libc::fork();
            if command == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if command == 0 {
                // The command: into its cgroups, then on to exec, with the
                // mask it was given.
                for &fd in &join {
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                return Ok(());
            }
            watch(command, coordinator, &waited, reap.as_deref())
        });
    }
}

/// The watcher's life (see [`watch_coordinator`]); never returns.
///
/// SAFETY: to be called only in the forked child, between fork and exec.
#[expect(unsafe_code, reason = "raw signal and process calls in a forked child")]
unsafe fn watch(
    command: libc::pid_t,
    coordinator: libc::pid_t,
    waited: &libc::sigset_t,
    reap: Option<&std::ffi::CStr>,
) -> ! {
    // SAFETY: see the function's contract.
    unsafe {
        // The watcher holds nothing: no copy of the output pipes (their
        // readers see the end when the command's tree is gone) and none of
        // the spawn's error pipe (whose end tells the coordinator that the
        // spawn is done).
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR1);
        if libc::getppid() != coordinator {
            // It died before the request took effect.
            kill_cgroup(reap);
            libc::kill(0, libc::SIGKILL);
        }
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(waited, &mut info);
            if sig == libc::SIGUSR1 {
                kill_cgroup(reap);
                libc::kill(0, libc::SIGKILL);
            }
            if sig != libc::SIGCHLD {
                continue;
            }
            let mut status = 0;
            if libc::waitpid(command, &mut status, libc::WNOHANG) != command {
                continue;
            }
            if libc::WIFEXITED(status) {
                libc::_exit(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                let signal = libc::WTERMSIG(status);
                libc::signal(signal, libc::SIG_DFL);
                let mut only: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut only);
                libc::sigaddset(&mut only, signal);
                libc::sigprocmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
                libc::kill(libc::getpid(), signal);
            }
            libc::_exit(128 + libc::WTERMSIG(status));
        }
    }
}

/// Kills every process listed in the `cgroup.procs` at `procs` (none:
/// nothing), except the caller, until none is left: the list is read whole
/// each round, through a fresh open (cgroup v1 caches an open file's list),
/// a millisecond apart (killed processes stay listed until they have
/// exited), at most a hundred rounds.
///
/// SAFETY: async-signal-safe (open, read, close, getpid, kill, nanosleep;
/// no allocation), for the watcher between fork and exec.
#[expect(unsafe_code, reason = "raw process calls in a forked child")]
unsafe fn kill_cgroup(procs: Option<&std::ffi::CStr>) {
    let Some(path) = procs else {
        return;
    };
    // SAFETY: see the function's contract.
    unsafe {
        let me = libc::getpid();
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        for _ in 0..100 {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return;
            }
            let mut others = false;
            // A number may be cut by the end of a read: carried on.
            let mut pid: libc::pid_t = 0;
            let mut buf = [0u8; 4096];
            loop {
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                let Ok(n) = usize::try_from(n) else {
                    break;
                };
                if n == 0 {
                    break;
                }
                for &b in buf.get(..n).unwrap_or_default() {
                    if b.is_ascii_digit() {
                        pid = pid
                            .saturating_mul(10)
                            .saturating_add(libc::pid_t::from(b - b'0'));
                        continue;
                    }
                    if pid > 0 && pid != me {
                        libc::kill(pid, libc::SIGKILL);
                        others = true;
                    }
                    pid = 0;
                }
            }
            libc::close(fd);
            if !others {
                return;
            }
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's slice, from the kernel's own account.
    fn slice_of(sched: &str) -> Option<u64> {
        sched
            .lines()
            .find(|l| l.starts_with("se.slice"))?
            .split(':')
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }

    /// The calling thread's nice value (on Linux a thread's own).
    fn nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // After the command's name in parentheses: state is field 3, nice 19.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(16).unwrap().parse().unwrap()
    }

    fn this_thread_slice() -> Option<u64> {
        slice_of(&std::fs::read_to_string("/proc/thread-self/sched").ok()?)
    }

    /// The calling thread's slice as `sched_getattr` reports it: 0 on a
    /// kernel that keeps none per thread (before 6.12, unless backported).
    fn reported_slice() -> u64 {
        this_thread_attr().unwrap().runtime
    }

    #[test]
    fn a_dispatching_thread_gets_a_short_slice_and_its_children_do_not() {
        std::thread::spawn(|| {
            let nice_before = nice();
            // Where the kernel keeps slices per thread and a person did not
            // lower this one's nice value below 0.
            let supported = reported_slice() != 0 && nice_before >= 0;
            let short = shorten_thread_slice();
            assert_eq!(short, supported);
            assert_eq!(nice(), nice_before);
            if !short {
                return;
            }
            assert_eq!(reported_slice(), DISPATCH_SLICE_NS);
            // The kernel's own account agrees, where it shows one (6.14+).
            if let Some(slice) = this_thread_slice() {
                assert_eq!(slice, DISPATCH_SLICE_NS);
            }
            // A thread and a command made now start with the default.
            let thread = std::thread::spawn(reported_slice).join().unwrap();
            assert_ne!(
                thread, DISPATCH_SLICE_NS,
                "a thread inherited the short slice"
            );
            let out = std::process::Command::new("cat")
                .arg("/proc/self/sched")
                .output()
                .unwrap();
            if let Some(child) = slice_of(&String::from_utf8_lossy(&out.stdout)) {
                assert_ne!(
                    child, DISPATCH_SLICE_NS,
                    "a command inherited the short slice"
                );
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_a_person_gave_a_negative_nice_value_is_left_alone() {
        std::thread::spawn(|| {
            // This thread's nice value only (allowed as root; otherwise
            // the test has nothing to check).
            // SAFETY: changes the calling thread's nice value only.
            #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
            let set = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -1) };
            if set != 0 {
                return;
            }
            let before = reported_slice();
            assert!(!shorten_thread_slice());
            assert_eq!(reported_slice(), before);
            assert_eq!(nice(), -1);
        })
        .join()
        .unwrap();
    }
}
