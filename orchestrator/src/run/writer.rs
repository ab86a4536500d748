//! The run's writer: journal lines are written at once, in the order the
//! dispatcher emits them (a write to the page cache, which a crash of the
//! process cannot lose); the fsyncs that make state changes survive a power
//! loss, and the merges into the integration branch (libgit2), run on one
//! thread of their own, so that neither ever blocks the dispatcher.
//!
//! That thread's jobs run strictly in the order submitted: a merge starts
//! only after every journal line before it is on disk, so a crash can leave
//! the integration branch at most one merge ahead of the journal (which
//! resume reads from git), as when both ran on the dispatcher.
//!
//! Flushes are grouped: the dispatcher asks for one per step
//! ([`Writer::commit`]), not per line, and one queued flush covers every
//! line written before it starts, so lines written together (a task's
//! attempt and its end), or while the disk is busy with an earlier flush,
//! share one `fdatasync` instead of one each (a disk flush costs
//! milliseconds on ext4). And a flush waits until [`FLUSH_GAP`] after the
//! last one, unless a merge or a branch move is queued behind it.

use crate::ids::TaskIndex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use git2::Oid;
use swarm_protocol::{ConflictHunk, Event};
use tokio::sync::mpsc;

use super::error::RunError;
use crate::git::{GitError, MergeOutcome, Merger, Repo, refs};
use crate::journal::Journal;

/// A merge of a task's result into the integration branch.
#[derive(Debug)]
pub(super) struct MergeJob {
    pub task: TaskIndex,
    pub id: String,
    pub ours: Oid,
    pub theirs: Oid,
    pub message: String,
    /// One commit holding the task's changes instead of a merge commit.
    pub squash: bool,
}

/// How a merge went.
#[derive(Debug)]
pub(super) enum Merged {
    /// The integration branch moved to this commit.
    Moved(Oid),
    /// The result was already in it.
    AlreadyIn,
    Conflict {
        files: Vec<String>,
        /// Where, when that could be found (best effort).
        hunks: Vec<ConflictHunk>,
    },
}

enum Job {
    /// Flush the journal's lines so far to the disk.
    Flush,
    Merge(MergeJob),
    /// Move the integration branch to a commit made elsewhere (a rebuild
    /// that took a merge out), after the lines that say so are on disk.
    SetBranch(Oid),
}

/// The least time between two journal flushes while nothing else waits
/// for one: no-op tasks end every fraction of a millisecond, and each
/// state change got a flush (and a wakeup of this thread) of its own. A
/// power loss may lose this much more of the journal; a crash of the
/// process loses none of it (the lines are in the page cache).
const FLUSH_GAP: std::time::Duration = std::time::Duration::from_millis(5);

/// The handle the dispatcher holds; dropping it finishes the queued jobs.
pub(super) struct Writer {
    journal: Journal,
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    merged: mpsc::UnboundedReceiver<(TaskIndex, Result<Merged, GitError>)>,
    /// The first journal flush that failed: the run cannot go on.
    failed: Arc<Mutex<Option<RunError>>>,
    /// A flush is queued and has not started: lines written now are on
    /// disk when it ends, so they need no flush of their own.
    flush_queued: Arc<AtomicBool>,
    /// Lines that must reach the disk were written since the last
    /// [`Writer::commit`].
    unflushed: bool,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread that flushes `journal` (whose lines `append`
    /// writes on the caller's thread) and merges into run `run`'s
    /// integration branch of `repo`.
    pub(super) fn start(journal: Journal, repo: &Repo, run: &str) -> Result<Self, RunError> {
        let merger = Merger::holding(repo, run)?;
        let file = journal.flusher().map_err(|source| RunError::Io {
            action: format!("open journal {}", journal.path().display()),
            source,
        })?;
        let path = journal.path().to_path_buf();
        let mut flushes = crate::flushes::FlushLog::beside(&path);
        let (repo, branch) = (repo.clone(), refs::integration(run));
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let (done, merged) = mpsc::unbounded_channel();
        let failed = Arc::new(Mutex::new(None));
        let failure = Arc::clone(&failed);
        let flush_queued = Arc::new(AtomicBool::new(false));
        let queued = Arc::clone(&flush_queued);
        let thread = std::thread::Builder::new()
            .name("swarm-writer".into())
            .spawn(move || {
                // Merges are bulk work: under a full CPU the dispatcher's
                // thread comes first.
                swarm_sandbox::process::lower_thread_priority(super::options::BACKGROUND_NICE);
                let mut last_flush: Option<std::time::Instant> = None;
                let mut next: Option<Job> = None;
                while let Some(job) = next.take().or_else(|| queue.recv().ok()) {
                    match job {
                        Job::Flush => {
                            // Grouped in time too: a flush within FLUSH_GAP
                            // of the last one waits out the gap (lines
                            // written meanwhile are covered), unless other
                            // work arrives, which must find the lines
                            // before it on disk: then at once.
                            let wait = last_flush.and_then(|at| {
                                (at + FLUSH_GAP).checked_duration_since(std::time::Instant::now())
                            });
                            if let Some(wait) = wait
                                && let Ok(job) = queue.recv_timeout(wait)
                            {
                                next = Some(job);
                            }
                            // Cleared before the flush: a line written
                            // from now on asks for a flush of its own.
                            queued.store(false, Ordering::SeqCst);
                            let started = std::time::Instant::now();
                            let wall = std::time::SystemTime::now();
                            last_flush = Some(started);
                            let synced = file.sync_data();
                            flushes.record(wall, started.elapsed());
                            if let Err(source) = synced {
                                let mut failed =
                                    failure.lock().unwrap_or_else(PoisonError::into_inner);
                                failed.get_or_insert(RunError::Io {
                                    action: format!("flush journal {}", path.display()),
                                    source,
                                });
                            }
                        }
                        Job::Merge(job) => {
                            let task = job.task;
                            let _ = done.send((task, merge(&merger, &repo, &branch, job)));
                        }
                        Job::SetBranch(commit) => {
                            if let Err(e) = repo.set_ref(&branch, commit, "swarm: rebuilt") {
                                let mut failed =
                                    failure.lock().unwrap_or_else(PoisonError::into_inner);
                                failed.get_or_insert(RunError::Git(e));
                            }
                        }
                    }
                }
            })
            .map_err(|source| RunError::Io {
                action: "start the journal's writer thread".into(),
                source,
            })?;
        Ok(Self {
            journal,
            jobs: Some(jobs),
            merged,
            failed,
            flush_queued,
            unflushed: false,
            thread: Some(thread),
        })
    }

    /// Writes `event` to the journal (its flush, if it is a state change,
    /// queued by the next [`Writer::commit`]); fails if an earlier write or
    /// flush failed.
    pub(super) fn append(&mut self, event: &Event) -> Result<(), RunError> {
        self.check()?;
        let flush = self.journal.write(event).map_err(|source| RunError::Io {
            action: format!("write journal {}", self.journal.path().display()),
            source,
        })?;
        self.unflushed |= flush;
        Ok(())
    }

    /// Queues the flush of the state changes written since the last call
    /// (the dispatcher calls it once a step, before it waits again). A
    /// flush that is queued and has not started covers them already.
    pub(super) fn commit(&mut self) -> Result<(), RunError> {
        if std::mem::take(&mut self.unflushed) && !self.flush_queued.swap(true, Ordering::SeqCst) {
            self.submit(Job::Flush)?;
        }
        Ok(())
    }

    /// Queues a merge, after the flush of every line before it; its result
    /// comes through [`Writer::next_merged`].
    pub(super) fn merge(&mut self, job: MergeJob) -> Result<(), RunError> {
        self.commit()?;
        self.submit(Job::Merge(job))
    }

    /// Queues moving the integration branch to `commit`, after the flush of
    /// every line before it and every job queued before (its failure fails
    /// the next append).
    pub(super) fn set_branch(&mut self, commit: Oid) -> Result<(), RunError> {
        self.commit()?;
        self.submit(Job::SetBranch(commit))
    }

    /// The next merge's result: the task and how it went. Cancel-safe.
    pub(super) async fn next_merged(&mut self) -> Result<(TaskIndex, Merged), RunError> {
        match self.merged.recv().await {
            Some((task, result)) => Ok((task, result?)),
            None => Err(self.gone()),
        }
    }

    /// Flushes what is left, waits for every queued job; the first journal
    /// flush that failed.
    pub(super) fn close(mut self) -> Result<(), RunError> {
        self.commit()?;
        self.join();
        self.check()
    }

    fn submit(&mut self, job: Job) -> Result<(), RunError> {
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => Ok(()),
            _ => Err(self.gone()),
        }
    }

    fn check(&self) -> Result<(), RunError> {
        match self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn gone(&self) -> RunError {
        RunError::Io {
            action: format!("write journal {}", self.journal.path().display()),
            source: std::io::Error::other("its writer thread ended"),
        }
    }

    fn join(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the journal's writer thread panicked");
        }
    }
}

impl Drop for Writer {
    /// Whatever ends the run, the lines it wrote reach the disk.
    fn drop(&mut self) {
        let _ = self.commit();
        self.join();
    }
}

fn merge(merger: &Merger, repo: &Repo, branch: &str, job: MergeJob) -> Result<Merged, GitError> {
    let outcome = if job.squash {
        merger.squash(job.ours, job.theirs, &job.message)?
    } else {
        merger.merge(job.ours, job.theirs, &job.message)?
    };
    Ok(match outcome {
        MergeOutcome::Merged(new) => {
            repo.set_ref(branch, new, &format!("swarm: merge {}", job.id))?;
            Merged::Moved(new)
        }
        MergeOutcome::AlreadyIn => Merged::AlreadyIn,
        MergeOutcome::Conflict(files) => {
            // Best effort: the conflict itself is already known.
            let hunks = merger
                .conflict_hunks(job.ours, job.theirs, job.squash)
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "failed to find the conflicting lines");
                    Vec::new()
                });
            Merged::Conflict { files, hunks }
        }
    })
}

/// The message of task `id`'s merge (or squashed commit) in run `run`:
/// its `Swarm-Task:` trailer is how resume and the run-wide verify read
/// the branch back.
pub(in crate::run) fn merge_message(run: &str, id: &str, squash: bool) -> String {
    format!(
        "swarm: {} {run}/{id}\n\nSwarm-Run: {run}\nSwarm-Task: {id}\n",
        if squash { "squash" } else { "merge" },
    )
}
