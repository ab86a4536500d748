//! `swarm clean`: frees what runs leave on disk (worktrees, private tmp
//! directories, git's worktree records) without losing anything. A worktree
//! whose content is not on a ref yet is committed to one first; task refs
//! go only when asked, and only for tasks whose work is merged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::Oid;
use swarm_protocol::{EventBody, TaskStatus};

use crate::git::{GitError, Repo, Worktrees, refs, snapshot};
use crate::journal;
use crate::report::run_dir;

/// What cleaning one run did.
#[derive(Debug, Default)]
pub struct Cleaned {
    pub run: String,
    /// Worktrees and checkouts removed.
    pub worktrees: usize,
    /// Work that was only in a worktree, now committed: (task, ref).
    pub kept: Vec<(String, String)>,
    /// Task refs deleted (`--refs`).
    pub refs_deleted: Vec<String>,
    pub bytes_freed: u64,
}

/// Why a run could not be cleaned, as a fragment after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(
        "clean run `{run}`: it is being driven by swarm process {holder}; clean it when it ends"
    )]
    Running { run: String, holder: String },
    #[error("clean {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Cleans run `run` of the repository; with `delete_refs`, also deletes
/// the refs of its tasks whose result is merged.
pub fn clean(repo: &Repo, run: &str, delete_refs: bool) -> Result<Cleaned, CleanError> {
    let dir = run_dir(&repo.workdir, run);
    // Nobody may be driving the run while its worktrees go.
    let _lock = match crate::run::lock_run(&dir, run) {
        Ok(lock) => lock,
        Err(crate::run::RunError::Locked { holder, .. }) => {
            return Err(CleanError::Running {
                run: run.into(),
                holder,
            });
        }
        Err(e) => {
            return Err(CleanError::Io {
                path: dir,
                source: std::io::Error::other(e.to_string()),
            });
        }
    };
    let events = journal::read(&dir.join("events.jsonl")).unwrap_or_default();
    // Each task's last attempt and the commit it started from, and its status.
    let mut started: HashMap<String, (u32, Oid)> = HashMap::new();
    let mut status: HashMap<String, TaskStatus> = HashMap::new();
    for e in &events {
        match &e.body {
            EventBody::TaskStarted {
                task,
                attempt,
                base_commit,
                ..
            } => {
                if let Ok(base) = Oid::from_str(base_commit) {
                    started.insert(task.clone(), (*attempt, base));
                }
            }
            EventBody::TaskFinished {
                task, status: s, ..
            } => {
                status.insert(task.clone(), *s);
            }
            EventBody::TaskMerged { task, .. } => {
                status.insert(task.clone(), TaskStatus::Merged);
            }
            _ => {}
        }
    }

    let mut cleaned = Cleaned {
        run: run.into(),
        ..Cleaned::default()
    };
    let worktrees = Worktrees::new(repo.clone());
    let worktree_dir = repo.workdir.join(".swarm").join("worktrees").join(run);
    for entry in read_dir(&worktree_dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !name.starts_with(".readonly-")
            && let Some(kept) = keep(repo, &worktrees, run, &name, &path, started.get(&name))?
        {
            cleaned.kept.push((name.clone(), kept));
        }
        cleaned.bytes_freed += size_of(&path);
        worktrees.remove(&path, None)?;
        cleaned.worktrees += 1;
    }
    remove_dir(&worktree_dir)?;
    let tmp = dir.join("tmp");
    cleaned.bytes_freed += size_of(&tmp);
    remove_dir(&tmp)?;
    worktrees.prune()?;

    if delete_refs {
        for (task, s) in &status {
            let name = refs::task(run, task);
            if *s == TaskStatus::Merged && repo.has_ref(&name)? {
                repo.delete_ref(&name)?;
                cleaned.refs_deleted.push(name);
            }
        }
        cleaned.refs_deleted.sort();
    }
    Ok(cleaned)
}

/// Commits the worktree of `task` to a ref of its own unless its content is
/// already on one of the task's refs; returns the new ref.
fn keep(
    repo: &Repo,
    worktrees: &Worktrees,
    run: &str,
    task: &str,
    path: &Path,
    started: Option<&(u32, Oid)>,
) -> Result<Option<String>, CleanError> {
    let (Some(admin), Some(&(attempt, base))) = (worktrees.admin_dir(path), started) else {
        return Ok(None);
    };
    let message = format!(
        "swarm: {run}/{task}: worktree content kept by swarm clean\n\nSwarm-Run: {run}\nSwarm-Task: {task}\nSwarm-Attempt: {attempt}\n"
    );
    let snap = snapshot(path, &admin, base, &[], &message)?;
    let tree = repo.tree_of(snap.commit)?;
    let mut existing = vec![refs::task(run, task)];
    existing.extend((1..=attempt + 1).map(|n| refs::attempt(run, task, n)));
    for name in &existing {
        if let Ok(commit) = repo.resolve(name)
            && repo.tree_of(commit)? == tree
        {
            return Ok(None);
        }
    }
    let free = (attempt..)
        .map(|n| refs::attempt(run, task, n))
        .find(|name| !repo.has_ref(name).unwrap_or(true))
        .unwrap_or_else(|| refs::attempt(run, task, u32::MAX));
    repo.set_ref(&free, snap.commit, "swarm clean: worktree content")?;
    Ok(Some(free))
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, CleanError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CleanError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn remove_dir(dir: &Path) -> Result<(), CleanError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CleanError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Bytes of the files under `path` (not following links).
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
        .unwrap_or(0)
}

/// Every run recorded in the repository at `workdir`, by name.
pub fn runs(workdir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workdir.join(".swarm").join("runs"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
