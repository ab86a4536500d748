//! Process groups: starting a worker as the leader of its own group and
//! stopping the whole group, including children that outlive the worker.

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

/// Makes the program `cmd` starts join the cgroups whose `cgroup.procs`
/// files `fds` are (open for writing) before it runs: how an unsandboxed
/// task gets its cgroup limits. (Sandboxed ones join through the launcher,
/// `Policy::cgroups`.)
pub fn join_cgroups(cmd: &mut tokio::process::Command, fds: Vec<std::os::fd::RawFd>) {
    // SAFETY: write is async-signal-safe; the buffer is a constant.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
