//! One coordinator per run: an exclusive `flock` on the run's `lock` file,
//! held for as long as the run is driven. The kernel drops it when its
//! holder dies, however it dies, so a crashed run can be resumed at once and
//! a live one can never be driven twice.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::RunError;

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
        use std::os::unix::fs::OpenOptionsExt as _;
        // A link planted at `lock` is refused, never truncated through.
        let file = std::fs::OpenOptions::new()
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, _)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(RunError::Locked {
                    run: run.to_string(),
                    holder: holder.trim().to_string(),
                });
            }
        };
        // Who holds it, for the message another coordinator shows.
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "{}", std::process::id());
        Ok(Self { _lock: lock })
    }
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
}
