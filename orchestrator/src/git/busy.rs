//! Waiting for the processes a killed coordinator left working in a
//! worktree.
//!
//! When a coordinator is killed with `kill -9`, the git commands it had
//! started (`git worktree add`, the checkout after it) go on as orphans,
//! and a worker may take a moment to be stopped by its watcher. A resumed
//! run that removes or snapshots the worktree meanwhile races them: a
//! `git worktree add` whose directory vanished cleans up after itself and
//! deletes the directory the resumed run has just made again. So, before
//! touching a leftover worktree, the resumed run waits until no process
//! works there any more. Only a leftover directory costs this scan of
//! `/proc` (on resume, or a run reusing a name), never a task's normal
//! start or end.

#![allow(clippy::disallowed_methods, reason = "/proc, the kernel's")]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits until no other process has its working directory in `dir` or
/// names `dir` as an argument, for at most `limit`. Returns false if some
/// still did when the time ran out (the caller goes on: the leftover is
/// then as good as it gets).
pub(crate) fn wait_until_unused(dir: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !in_use(dir) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True if a process other than this one works in `dir` (its working
/// directory is `dir` or below it) or has `dir` as one of its arguments.
/// Processes whose records cannot be read (another user's, one that just
/// ended, a zombie) do not count.
pub(crate) fn in_use(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let me = std::process::id().to_string();
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let is_pid = name.as_bytes().iter().all(u8::is_ascii_digit);
        if !is_pid || name.as_bytes() == me.as_bytes() {
            return false;
        }
        let proc_dir = entry.path();
        let cwd_inside =
            std::fs::read_link(proc_dir.join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir));
        cwd_inside
            || std::fs::read(proc_dir.join("cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|&b| b == 0)
                    .any(|arg| Path::new(OsStr::from_bytes(arg)) == dir)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_working_in_a_directory_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("wt");
        std::fs::create_dir(&inside).unwrap();
        assert!(!in_use(&inside));
        let mut child = std::process::Command::new("sleep")
            .arg("0.3")
            .current_dir(&inside)
            .spawn()
            .unwrap();
        assert!(in_use(&inside));
        // A sibling directory whose name starts the same is not the same.
        let sibling = dir.path().join("w");
        std::fs::create_dir(&sibling).unwrap();
        assert!(!in_use(&sibling));
        // Reaped by a thread, as the dead coordinator's orphans are by init.
        let reaper = std::thread::spawn(move || child.wait().unwrap());
        assert!(wait_until_unused(&inside, Duration::from_secs(10)));
        assert!(reaper.join().unwrap().success());
    }

    #[test]
    fn a_process_naming_a_directory_is_waited_for_and_the_wait_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("wt");
        // `; :` keeps the shell from becoming `sleep` (its arguments with it).
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5; :", "sh"])
            .arg(&target)
            .spawn()
            .unwrap();
        // Its arguments show in /proc a moment after `spawn` returns (the
        // kernel sets them up after it lets the parent go on).
        let seen = Instant::now();
        while !in_use(&target) {
            assert!(seen.elapsed() < Duration::from_secs(3), "never seen");
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = Instant::now();
        assert!(!wait_until_unused(&target, Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(4));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!in_use(&target));
    }
}
