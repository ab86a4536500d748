//! Deleting what finished tasks leave (a worktree whose work is on its
//! ref, a succeeded task's private tmp and git view) on one thread of its
//! own, off the way of the tasks still to start.
//!
//! One long-lived thread fed by a channel rather than a blocking task per
//! finished task: at hundreds of tasks a second, a tokio blocking task
//! each (a task cell, a thread woken, a result kept until joined) cost
//! more than the removals of a task that wrote nothing.

use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use crate::git::Worktrees;

/// Something to delete.
enum Sweep {
    /// A task's worktree and its record under `.git/worktrees/`.
    Worktree { path: PathBuf, admin: PathBuf },
    /// Scratch directories (missing ones are fine).
    Dirs(Vec<PathBuf>),
    /// Says when everything sent before it is deleted.
    Barrier(std::sync::mpsc::Sender<()>),
}

/// The handle the executor holds.
pub(super) struct Sweeper {
    jobs: Option<Sender<Sweep>>,
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Starts the thread (or, if it cannot start, deletes on the caller's
    /// thread instead).
    pub(super) fn start(worktrees: Worktrees) -> Self {
        let (jobs, queue) = channel::<Sweep>();
        let thread = std::thread::Builder::new()
            .name("swarm-sweeper".into())
            .spawn(move || {
                swarm_sandbox::process::lower_thread_priority(crate::run::options::BACKGROUND_NICE);
                while let Ok(job) = queue.recv() {
                    sweep(&worktrees, job);
                }
            });
        match thread {
            Ok(thread) => Self {
                jobs: Some(jobs),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!(error = %e, "failed to start the clean-up thread; cleaning up in line");
                Self {
                    jobs: None,
                    thread: None,
                }
            }
        }
    }

    /// Deletes the worktree at `path` (recorded at `admin`).
    pub(super) fn worktree(&self, worktrees: &Worktrees, path: PathBuf, admin: PathBuf) {
        self.send(worktrees, Sweep::Worktree { path, admin });
    }

    /// Deletes `dirs`. Empty or missing ones (a task that wrote nothing
    /// in its tmp: most short tasks) are removed here, with one `rmdir`
    /// each; only the others go to the thread. Waking the thread, and its
    /// walk of an empty directory, cost more than the `rmdir` and took a
    /// core's time from the tasks for every task.
    pub(super) fn dirs(&self, worktrees: &Worktrees, mut dirs: Vec<PathBuf>) {
        #[allow(
            clippy::disallowed_methods,
            reason = "rmdir of a directory in the run's tmp/, swarm's: it removes an empty directory or nothing, and never follows a link"
        )]
        dirs.retain(|dir| match std::fs::remove_dir(dir) {
            Ok(()) => false,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        });
        if !dirs.is_empty() {
            self.send(worktrees, Sweep::Dirs(dirs));
        }
    }

    /// What says when everything sent so far is deleted: a task that
    /// runs again (after a conflict) waits for it before it makes its
    /// worktree and tmp at the paths its first run's are deleted from.
    pub(super) fn barrier(&self, worktrees: &Worktrees) -> std::sync::mpsc::Receiver<()> {
        let (done, wait) = std::sync::mpsc::channel();
        self.send(worktrees, Sweep::Barrier(done));
        wait
    }

    fn send(&self, worktrees: &Worktrees, job: Sweep) {
        match &self.jobs {
            Some(jobs) => {
                if let Err(unsent) = jobs.send(job) {
                    sweep(worktrees, unsent.0);
                }
            }
            None => sweep(worktrees, job),
        }
    }

    /// Waits for everything sent so far to be deleted.
    pub(super) async fn finish(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || join(thread)).await;
        }
    }
}

impl Drop for Sweeper {
    /// Ended without `finish` (an error path): what was sent is still
    /// deleted before the run's process goes on to exit.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            join(thread);
        }
    }
}

/// Waits for the thread, which ends once its channel is closed and empty.
fn join(thread: JoinHandle<()>) {
    if thread.join().is_err() {
        tracing::error!("the clean-up thread panicked");
    }
}

fn sweep(worktrees: &Worktrees, job: Sweep) {
    match job {
        Sweep::Worktree { path, admin } => {
            if let Err(e) = worktrees.remove(&path, Some(&admin)) {
                tracing::warn!(path = %path.display(), error = %e, "failed to remove worktree");
            }
        }
        Sweep::Barrier(done) => {
            let _ = done.send(());
        }
        Sweep::Dirs(dirs) => {
            for dir in dirs {
                // A task's tmp or git view: what the task left in it is
                // removed as what it is, never through a link.
                if let Err(e) = crate::untrusted::TaskDir::discard(&dir) {
                    tracing::warn!(path = %dir.display(), error = %e, "failed to remove a task's tmp directory");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Empty and missing directories are dealt with on the caller's thread;
    /// one with something in it is still deleted, by the thread, by the
    /// time `finish` returns.
    #[tokio::test]
    async fn empty_dirs_go_at_once_and_full_ones_by_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, _) = crate::git::test_repo::with_files(dir.path(), &[("a", "a")]);
        let worktrees = Worktrees::new(repo.clone());
        let mut sweeper = Sweeper::start(Worktrees::new(repo));
        let (empty, full, missing) = (
            dir.path().join("empty"),
            dir.path().join("full"),
            dir.path().join("missing"),
        );
        std::fs::create_dir(&empty).unwrap();
        std::fs::create_dir_all(full.join("deep")).unwrap();
        std::fs::write(full.join("deep/file"), "x").unwrap();

        sweeper.dirs(&worktrees, vec![empty.clone(), full.clone(), missing]);
        assert!(!empty.exists(), "an empty directory waits for the thread");
        sweeper.finish().await;
        assert!(!full.exists(), "a directory with files in it is kept");
    }
}
