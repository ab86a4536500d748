//! One coordinator per run: an exclusive `flock` on the run's `lock` file,
//! held for as long as the run is driven. The kernel drops it when its
//! holder dies, however it dies, so a crashed run can be resumed at once and
//! a live one can never be driven twice.
//!
//! "When it dies" is when its last thread has gone: a coordinator killed
//! with SIGKILL while one of its threads waits on the disk (a journal
//! `fdatasync`) keeps its files, the lock's included, until that wait
//! ends, which can be a second on a busy disk. So a lock whose recorded
//! holder is dead, a zombie or being killed is waited for (a few seconds),
//! not reported as driven by a process that no longer exists.

#![allow(
    clippy::disallowed_methods,
    reason = "a run's lock and /proc, swarm's own and the kernel's"
)]

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::error::RunError;

/// The held lock of a run.
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<File>,
}

impl RunLock {
    /// Takes the lock of the run in `run_dir` (named `run` in messages), or
    /// says which process holds it.
    pub fn acquire(run_dir: &Path, run: &str) -> Result<Self, RunError> {
        let path = run_dir.join(crate::layout::LOCK);
        let io = |source| RunError::Io {
            action: format!("open {}", path.display()),
            source,
        };
        let mut file = crate::untrusted::lock_file(&path).map_err(io)?;
        let deadline = std::time::Instant::now() + DYING_HOLDER_WAIT;
        let mut lock = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                // A lock on a file that is no longer at `path` (a run
                // removed under its lock by whoever held it before: a
                // run that never started, discarded) locks nothing
                // anyone else sees: the file now at `path` is taken.
                Ok(lock) if !still_at(&lock, &path) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(RunError::Locked {
                            run: run.to_string(),
                            holder: String::new(),
                        });
                    }
                    drop(lock);
                    file = crate::untrusted::lock_file(&path).map_err(io)?;
                }
                Ok(lock) => break lock,
                Err((mut back, _)) => {
                    let holder = holder_of(&mut back);
                    if std::time::Instant::now() < deadline && is_dying(&holder) {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        file = back;
                        continue;
                    }
                    return Err(RunError::Locked {
                        run: run.to_string(),
                        holder,
                    });
                }
            }
        };
        // Who holds it, for the message another coordinator shows.
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "{}", std::process::id());
        Ok(Self { _lock: lock })
    }
}

/// Whether the locked `file` is still the one at `path`.
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), path.symlink_metadata()) {
        (Ok(held), Ok(there)) => held.dev() == there.dev() && held.ino() == there.ino(),
        _ => false,
    }
}

/// The pid the holder of a lock recorded in it. A holder writes it just
/// after taking the lock: an empty file is read again for a moment, so
/// that a refusal names who holds the run.
fn holder_of(file: &mut File) -> String {
    let until = std::time::Instant::now() + PID_WAIT;
    loop {
        let mut holder = String::new();
        let _ = file.rewind();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim().to_string();
        if !holder.is_empty() || std::time::Instant::now() >= until {
            return holder;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// How long an empty lock file is read again for its holder's pid.
const PID_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a lock whose recorded holder is dying is waited for.
const DYING_HOLDER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether process `pid` (as the lock file recorded it) is gone, a zombie,
/// or being killed: its lock is about to be released.
fn is_dying(pid: &str) -> bool {
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        // No such process: what holds the lock is a process it left (or
        // a race with its exit); it is waited for all the same.
        return true;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let state = field("State:");
    // SIGKILL (9) pending for the whole process: bit 8 of ShdPnd.
    let killed = u64::from_str_radix(&field("ShdPnd:"), 16).is_ok_and(|m| m & (1 << 8) != 0);
    state.starts_with('Z') || state.starts_with('X') || killed
}

/// Whether a coordinator holds the lock of the run in `run_dir` now. A run
/// whose journal has no end and whose lock nobody holds was interrupted
/// (its coordinator died). The probe takes a shared lock for an instant,
/// never creates the file and never follows a link.
pub fn is_held(run_dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt as _;
    let Ok(file) = std::fs::OpenOptions::new()
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .read(true)
        .open(run_dir.join(crate::layout::LOCK))
    else {
        return false;
    };
    Flock::lock(file, FlockArg::LockSharedNonblock).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_held_only_while_a_coordinator_has_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_held(dir.path()), "no lock file: nobody drives the run");
        let lock = RunLock::acquire(dir.path(), "r").unwrap();
        assert!(is_held(dir.path()));
        drop(lock);
        assert!(!is_held(dir.path()));
    }

    /// A lock still held a moment after its recorded holder is gone (the
    /// kernel closing a killed coordinator's files) is waited for; one held
    /// by a live process is refused at once.
    #[test]
    fn a_dying_holders_lock_is_waited_for_and_a_live_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunLock::acquire(dir.path(), "r").unwrap();
        // Recorded as held by a process that no longer exists.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(dir.path().join(crate::layout::LOCK), dead.to_string()).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        let started = std::time::Instant::now();
        let lock = RunLock::acquire(dir.path(), "r").unwrap();
        assert!(started.elapsed() >= std::time::Duration::from_millis(250));
        release.join().unwrap();
        // Now held by this (live) process: refused without waiting.
        let started = std::time::Instant::now();
        let refused = RunLock::acquire(dir.path(), "r").unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(
            refused
                .to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        drop(lock);
    }
}
