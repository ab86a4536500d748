//! Snapshots: turning whatever a worker left in its worktree into a commit,
//! without the worker's cooperation and without running anything of its.
//!
//! The worktree is hostile input to the coordinator, so the snapshot does
//! not hand it to libgit2's working-directory machinery (which applies the
//! worker's `.gitattributes`: CRLF conversion, `ident`, filter drivers, and
//! buffers whole files to do so). It walks the worktree itself
//! ([`scan`](super::scan)) and stores exact bytes:
//!
//! - a file whose stat data matches its index entry is not read (the
//!   index written at checkout is what keeps an unchanged tree cheap);
//! - any other file is streamed into the object database in chunks, so
//!   memory does not grow with file size; a file over the task's
//!   `max_file_size` is never read at all;
//! - symlinks are stored as links and never followed; no hook runs;
//! - a path git refuses (`.GIT/config`, `git~1/config`, `sub/.git/...`),
//!   a file over the limit, and anything unreadable is left out and
//!   reported, and the rest is committed: one bad path never costs a task
//!   its work;
//! - a file holding what a [`Screen`] keeps out (the person's `.env`) is
//!   left out the same way, before its content is written anywhere (see
//!   [`super::screen`]), and said apart ([`Withheld`]).
//!
//! What is written goes into a quarantine ([`super::incoming`]) first, a
//! [`state`]'s too: only what a commit a ref will name brings is ever
//! moved into the repository's objects.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io::{Read, Seek as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use git2::{Index, IndexEntry, IndexTime, ObjectType, Oid, Repository};
use swarm_protocol::{SkipReason, SkippedFile};

use super::incoming::Incoming;
use super::scan::{self, Found};
use super::screen::Screen;
use super::{Context, GitError, signature};

const MODE_FILE: u32 = 0o100_644;
const MODE_EXECUTABLE: u32 = 0o100_755;
const MODE_SYMLINK: u32 = 0o120_000;
const MODE_GITLINK: u32 = 0o160_000;

/// Files up to this size are read into memory in one go (so that one
/// holding its index entry's blob is only hashed, see `Builder::store`);
/// larger ones are streamed.
const SMALL_FILE: u64 = 256 << 10;

/// The commit a worktree was snapshotted into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The new commit, or the base itself when nothing changed.
    pub commit: Oid,
    /// Paths that differ from the base, sorted.
    pub changed: Vec<String>,
    /// Paths left out, sorted: they are in no commit (a tracked one keeps
    /// its content from the base).
    pub skipped: Vec<SkippedFile>,
    /// How long the snapshot took.
    pub duration: Duration,
    /// How many files had their content read: the others' stat data
    /// matched the index.
    pub hashed: usize,
    /// How many of those were handed to the object database to write
    /// (one it has already is not written again): the others, read whole,
    /// still held their index entry's blob.
    pub written: usize,
}

impl Snapshot {
    pub fn is_unchanged(&self) -> bool {
        self.changed.is_empty()
    }
}

/// What a snapshot takes from the task's plan.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotLimits<'a> {
    /// Limits which paths may be seen as deleted: a worktree checked out
    /// with only some paths (`Task::checkout`: its `paths` and `creates`)
    /// does not have the rest on disk, and their absence is not a
    /// deletion. New files anywhere are always taken (whether the task may
    /// write them is the result check's business, `run::ownership`).
    pub scope: &'a [String],
    /// Files larger than this (in bytes) are left out, unread.
    pub max_file_size: u64,
    /// The run the snapshot is taken for: its kept packs hold the objects
    /// of the snapshot's commit until the run ends (see [`super::hold`]).
    pub run: &'a str,
}

/// Commits the state of the worktree at `path`, whose git directory is
/// `git_dir`, on top of `base`, with the message `message` makes of the
/// files left out and the paths that differ from `base`. `git_dir` comes from swarm's own records, never from the
/// worktree's `.git` file, which the worker could rewrite.
pub fn snapshot(
    path: &Path,
    git_dir: &Path,
    base: Oid,
    limits: SnapshotLimits<'_>,
    message: impl Fn(&[SkippedFile], &[String]) -> String,
) -> Result<Snapshot, GitError> {
    snapshot_screened(path, git_dir, base, limits, None, message).map(|(snap, _)| snap)
}

/// [`snapshot`], leaving out every file that holds what `screen` keeps out
/// (before its content is written anywhere): those are in the snapshot's
/// `skipped`, and returned apart.
pub fn snapshot_screened(
    path: &Path,
    git_dir: &Path,
    base: Oid,
    limits: SnapshotLimits<'_>,
    screen: Option<&Screen>,
    message: impl Fn(&[SkippedFile], &[String]) -> String,
) -> Result<(Snapshot, Vec<Withheld>), GitError> {
    // An object a prune took between its writing and its holding: written
    // again.
    super::hold::again_on_prune_race(|| {
        take(path, git_dir, base, limits, Take::Commit(&message), screen)
    })
    .map(|taken| (taken.snap, taken.withheld))
}

/// What the worktree at `path` holds against `base`, and the paths that
/// differ: a snapshot that commits nothing, writes nothing into the
/// repository's objects and leaves the index and HEAD alone (`[setup]`'s
/// outputs, see [`leave_out`]).
pub fn state(
    path: &Path,
    git_dir: &Path,
    base: Oid,
    limits: SnapshotLimits<'_>,
) -> Result<State, GitError> {
    take(path, git_dir, base, limits, Take::State(None), None).map(|taken| taken.state)
}

/// [`state`], and the worktree as it is written into the new directory
/// `dir`: a checkout of its own, which no index or HEAD records (for a
/// scorer that must not see the worktree itself).
pub fn state_into(
    path: &Path,
    git_dir: &Path,
    base: Oid,
    limits: SnapshotLimits<'_>,
    dir: &Path,
) -> Result<State, GitError> {
    take(path, git_dir, base, limits, Take::State(Some(dir)), None).map(|taken| taken.state)
}

/// Writes tree `tree` of `repo` into the new directory `dir`.
fn checkout_to(repo: &Repository, tree: Oid, dir: &Path) -> Result<(), GitError> {
    let action = || format!("check out a copy at {}", dir.display());
    let tree = repo.find_tree(tree).context(action)?;
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout
        .target_dir(dir)
        .force()
        .recreate_missing(true)
        .update_index(false);
    repo.checkout_tree(tree.as_object(), Some(&mut checkout))
        .context(action)
}

/// A worktree's content at one moment, not committed (see [`state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Paths that differ from the base, sorted.
    pub changed: Vec<String>,
    /// What each of them holds, in the same order: its blob (or
    /// gitlink) and mode; `None` where it is gone.
    pub entries: Vec<Option<(Oid, i32)>>,
}

impl State {
    /// What `path` (one of `changed`) holds; `None` if it is gone or did
    /// not change.
    fn entry(&self, path: &str) -> Option<(Oid, i32)> {
        let i = self
            .changed
            .binary_search_by(|p| p.as_str().cmp(path))
            .ok()?;
        self.entries.get(i).copied().flatten()
    }

    /// Whether it changed `path` to blob `id`.
    pub fn made(&self, path: &str, id: Oid) -> bool {
        self.entry(path).is_some_and(|(made, _)| made == id)
    }

    /// This state as a snapshot that left out `withheld` sees it: a file
    /// it made whole, which the snapshot cut, is as the snapshot has it
    /// (so that [`leave_out`] still knows it for setup's).
    pub fn as_withheld(&self, withheld: &[Withheld]) -> State {
        let mut state = self.clone();
        for w in withheld {
            if let Ok(i) = state.changed.binary_search(&w.path)
                && let Some(Some((id, _))) = state.entries.get_mut(i)
                && *id == w.id
                && let Some(cut) = w.cut
            {
                *id = cut;
            }
        }
        state
    }
}

/// A file a snapshot left out for holding what its [`Screen`] keeps out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld {
    pub path: String,
    /// The blob it would have been (written nowhere).
    pub id: Oid,
    /// The screen's files it holds, by name.
    pub files: Vec<String>,
    /// It is one of them whole, not more.
    pub whole: bool,
    /// The blob committed in its place: the file with each place that
    /// held one of them saying so; `None`: nothing of it is committed.
    pub cut: Option<Oid>,
}

/// What a [`take`] makes: a commit (with the message this makes of the
/// files left out and the paths changed), or a [`State`] (written out into
/// a directory, if one is given).
enum Take<'a> {
    Commit(&'a dyn Fn(&[SkippedFile], &[String]) -> String),
    State(Option<&'a Path>),
}

/// What a [`take`] made.
struct Taken {
    snap: Snapshot,
    /// Filled for a [`Take::State`] only.
    state: State,
    withheld: Vec<Withheld>,
}

/// [`snapshot`] and [`state`].
#[allow(
    clippy::disallowed_methods,
    reason = "the worktree's index, in git's record of it (the admin directory), swarm's"
)]
fn take(
    path: &Path,
    git_dir: &Path,
    base: Oid,
    limits: SnapshotLimits<'_>,
    make: Take<'_>,
    screen: Option<&Screen>,
) -> Result<Taken, GitError> {
    let started = Instant::now();
    let action = || format!("snapshot worktree {}", path.display());
    // Bare: libgit2 gets no working directory, so nothing below can reach
    // the worktree through it (index writes would otherwise diff "racily
    // clean" entries against it, with the worker's filters).
    let repo = Repository::open_bare(git_dir).context(action)?;
    // Every object is written where no prune looks and no task reads
    // until it is held: a state's (committed by no one) never is.
    let incoming = Incoming::open(repo.commondir())?;
    incoming.attach(&repo)?;
    let base_commit = repo.find_commit(base).context(action)?;
    let base_tree = base_commit.tree().context(action)?;
    let mut index = open_index(&repo, git_dir, &base_tree).context(action)?;

    let mut builder = Builder {
        repo: &repo,
        root: path,
        max_file_size: limits.max_file_size,
        // Entries whose file changed after the index was written may still
        // match it by stat data ("racily clean"): those are always read.
        index_written: std::fs::metadata(git_dir.join("index"))
            .ok()
            .map(|m| (m.mtime(), m.mtime_nsec())),
        entries: index.iter().map(|e| (e.path.clone(), e)).collect(),
        probe: Index::new().context(action)?,
        screen: screen.filter(|s| !s.is_empty()),
        withheld: Vec::new(),
        skipped: Vec::new(),
        hashed: 0,
        written: 0,
        write_failed: None,
        largest: 0,
    };

    let exclude = scan::read_ignore_file(path, &repo.commondir().join("info").join("exclude"));
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    scan::walk(path, exclude.as_ref(), |found| {
        builder.walked(&mut index, found, &mut seen)
    });
    builder
        .not_walked(&mut index, &seen, limits.scope)
        .context(action)?;

    let Builder {
        mut skipped,
        hashed,
        written,
        write_failed,
        largest,
        mut withheld,
        ..
    } = builder;
    if let Some(e) = write_failed {
        return Err(e).context(action);
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.dedup_by(|a, b| a.path == b.path);
    withheld.sort_by(|a, b| a.path.cmp(&b.path));
    withheld.dedup_by(|a, b| a.path == b.path);
    let tree_id = index.write_tree_to(&repo).context(action)?;
    let unchanged =
        |skipped: Vec<SkippedFile>, changed: Vec<String>, tree: Option<&git2::Tree<'_>>| {
            let state = match tree {
                Some(tree) => state_of(tree, &changed),
                None => Vec::new(),
            };
            let snap = Snapshot {
                commit: base,
                changed,
                skipped,
                duration: started.elapsed(),
                hashed,
                written,
            };
            (snap, state)
        };
    let message = match make {
        Take::Commit(message) => message,
        Take::State(into) => {
            let tree = repo.find_tree(tree_id).context(action)?;
            let changed = match tree_id == base_tree.id() {
                true => Vec::new(),
                false => changed_paths(&repo, &base_tree, &tree).context(action)?,
            };
            // Read from the quarantine, before it goes.
            if let Some(dir) = into {
                checkout_to(&repo, tree_id, dir)?;
            }
            let (snap, entries) = unchanged(skipped, changed, Some(&tree));
            let state = State {
                changed: snap.changed.clone(),
                entries,
            };
            return Ok(Taken {
                snap,
                state,
                withheld,
            });
        }
    };
    let no_state = || State {
        changed: Vec::new(),
        entries: Vec::new(),
    };
    if tree_id == base_tree.id() {
        let (snap, _) = unchanged(skipped, Vec::new(), None);
        return Ok(Taken {
            snap,
            state: no_state(),
            withheld,
        });
    }
    let tree = repo.find_tree(tree_id).context(action)?;
    let changed = changed_paths(&repo, &base_tree, &tree).context(action)?;
    let commit = commit_on(
        &repo,
        &signature()?,
        &base_commit,
        &tree,
        &message(&skipped, &changed),
    )
    .context(action)?;
    // Held before any ref or HEAD names the commit.
    super::hold::hold(&repo, Some(&incoming), commit, &[base], limits.run, largest)?;
    // Leave the worktree consistent with its snapshot, so that a kept
    // (failed) worktree shows a clean `git status` and `git log` shows it.
    index.write().context(action)?;
    super::when_unlocked(|| repo.set_head_detached(commit)).context(action)?;
    let snap = Snapshot {
        commit,
        changed,
        skipped,
        duration: started.elapsed(),
        hashed,
        written,
    };
    Ok(Taken {
        snap,
        state: no_state(),
        withheld,
    })
}

/// What each of `changed` holds in `tree` (see [`State::entries`]).
fn state_of(tree: &git2::Tree<'_>, changed: &[String]) -> Vec<Option<(Oid, i32)>> {
    changed
        .iter()
        .map(|p| {
            tree.get_path(Path::new(p))
                .ok()
                .map(|e| (e.id(), e.filemode()))
        })
        .collect()
}

/// `snap` (a snapshot of the worktree at `path`, whose git directory is
/// `git_dir`, on top of `base`) without what `setup` made: each path
/// `[setup]` changed that the task left as setup made it is as it is at
/// `base` (gone, if `base` has none). What the task changed, setup's
/// outputs included, stays. The commit is made again only when that
/// changes it, its message by `message`.
pub fn leave_out(
    path: &Path,
    git_dir: &Path,
    snap: Snapshot,
    base: Oid,
    setup: &State,
    run: &str,
    message: impl Fn(&[SkippedFile], &[String]) -> String,
) -> Result<Snapshot, GitError> {
    if setup.changed.is_empty() || snap.is_unchanged() {
        return Ok(snap);
    }
    let action = || {
        format!(
            "leave setup's files out of the snapshot of {}",
            path.display()
        )
    };
    let repo = Repository::open_bare(git_dir).context(action)?;
    // New trees and the commit go where no prune looks until held.
    let incoming = Incoming::open(repo.commondir())?;
    incoming.attach(&repo)?;
    let base_commit = repo.find_commit(base).context(action)?;
    let base_tree = base_commit.tree().context(action)?;
    let task_tree = repo
        .find_commit(snap.commit)
        .and_then(|c| c.tree())
        .context(action)?;
    let entry = |tree: &git2::Tree<'_>, p: &str| {
        tree.get_path(Path::new(p))
            .ok()
            .map(|e| (e.id(), e.filemode()))
    };
    let mut update = git2::build::TreeUpdateBuilder::new();
    let mut left_out = 0;
    for p in &setup.changed {
        let made = setup.entry(p);
        if entry(&task_tree, p) != made {
            continue;
        }
        left_out += 1;
        match entry(&base_tree, p) {
            Some((id, mode)) => update.upsert(p.as_str(), id, filemode(mode)),
            None => update.remove(p.as_str()),
        };
    }
    if left_out == 0 {
        return Ok(snap);
    }
    let tree_id = update.create_updated(&repo, &task_tree).context(action)?;
    let Snapshot {
        commit: snap_commit,
        skipped,
        duration,
        hashed,
        written,
        ..
    } = snap;
    if tree_id == base_tree.id() {
        super::when_unlocked(|| repo.set_head_detached(base)).context(action)?;
        return Ok(Snapshot {
            commit: base,
            changed: Vec::new(),
            skipped,
            duration,
            hashed,
            written,
        });
    }
    let tree = repo.find_tree(tree_id).context(action)?;
    let changed = changed_paths(&repo, &base_tree, &tree).context(action)?;
    let commit = commit_on(
        &repo,
        &signature()?,
        &base_commit,
        &tree,
        &message(&skipped, &changed),
    )
    .context(action)?;
    // Its objects are the snapshot's and the base's, but for new trees.
    // Only trees are new: nothing large.
    super::hold::hold(&repo, Some(&incoming), commit, &[base, snap_commit], run, 0)?;
    super::when_unlocked(|| repo.set_head_detached(commit)).context(action)?;
    Ok(Snapshot {
        commit,
        changed,
        skipped,
        duration,
        hashed,
        written,
    })
}

/// Commits `tree` with `message` on top of `base`, by swarm (no ref
/// moves): a snapshot's commit, and [`leave_out`]'s.
fn commit_on(
    repo: &Repository,
    sig: &git2::Signature<'_>,
    base: &git2::Commit<'_>,
    tree: &git2::Tree<'_>,
    message: &str,
) -> Result<Oid, git2::Error> {
    repo.commit(None, sig, sig, message, tree, &[base])
}

/// A tree entry's mode as the tree builder takes it.
fn filemode(mode: i32) -> git2::FileMode {
    match mode as u32 {
        MODE_EXECUTABLE => git2::FileMode::BlobExecutable,
        MODE_SYMLINK => git2::FileMode::Link,
        MODE_GITLINK => git2::FileMode::Commit,
        0o040_000 => git2::FileMode::Tree,
        _ => git2::FileMode::Blob,
    }
}

/// The worktree's index, or (if the worker damaged it beyond reading) a
/// fresh one holding the base tree: then every file is read, but nothing
/// is lost.
#[allow(
    clippy::disallowed_methods,
    reason = "the worktree's index, in git's record of it (the admin directory), swarm's"
)]
fn open_index(
    repo: &Repository,
    git_dir: &Path,
    base_tree: &git2::Tree<'_>,
) -> Result<Index, git2::Error> {
    let mut index = match repo.index() {
        Ok(index) => index,
        Err(_) => {
            let file = git_dir.join("index");
            let _ = std::fs::remove_file(&file);
            let mut index = Index::open(&file)?;
            index.read_tree(base_tree)?;
            return Ok(index);
        }
    };
    // A worker that ran `git merge` may have left conflict stages, which
    // no tree can hold; the files on disk say what the task wants.
    if index.has_conflicts() {
        let staged: Vec<(Vec<u8>, i32)> = index
            .iter()
            .map(|e| (e.path, i32::from((e.flags >> 12) & 3)))
            .filter(|(_, stage)| *stage != 0)
            .collect();
        for (rel, stage) in staged {
            index.remove(Path::new(OsStr::from_bytes(&rel)), stage)?;
        }
    }
    Ok(index)
}

/// Builds the new index entry by entry, collecting what it leaves out.
struct Builder<'a> {
    repo: &'a Repository,
    root: &'a Path,
    max_file_size: u64,
    index_written: Option<(i64, i64)>,
    /// The index as checked out (stage 0), by path.
    entries: HashMap<Vec<u8>, IndexEntry>,
    /// An index without a repository, to ask libgit2 whether it accepts a
    /// path before any content is read.
    probe: Index,
    /// What no file may hold (see [`super::screen`]); `None`: nothing.
    screen: Option<&'a Screen>,
    /// The files left out for holding it.
    withheld: Vec<Withheld>,
    skipped: Vec<SkippedFile>,
    hashed: usize,
    written: usize,
    /// The first object the object database failed to write.
    write_failed: Option<git2::Error>,
    /// The size of the largest file stored.
    largest: u64,
}

/// Why a file's content is not in the object database.
enum Unstored {
    /// The file could not be read as it was (a reason for its entry).
    File(String),
    /// The object database failed to write it.
    Write(git2::Error),
    /// It holds what the screen keeps out (see [`Withheld`]).
    Withheld {
        found: Vec<usize>,
        id: Oid,
        whole: bool,
        cut: Option<Oid>,
    },
}

impl From<String> for Unstored {
    fn from(message: String) -> Self {
        Self::File(message)
    }
}

impl From<&str> for Unstored {
    fn from(message: &str) -> Self {
        Self::File(message.to_string())
    }
}

impl Builder<'_> {
    /// What the walk of the worktree found: a file brought up to date,
    /// a directory entered or not, what cannot be committed said; whether
    /// the walk goes into it. `seen` gathers the paths whose entries are
    /// settled.
    fn walked(&mut self, index: &mut Index, found: Found, seen: &mut HashSet<Vec<u8>>) -> bool {
        match found {
            Found::File(rel, meta) => {
                self.add(index, &rel, &meta);
                seen.insert(rel);
                true
            }
            Found::Dir(rel) => {
                // A gitlink's directory is another repository's checkout: the
                // gitlink stays as it is.
                if self
                    .entries
                    .get(&rel)
                    .is_some_and(|e| e.mode == MODE_GITLINK)
                {
                    seen.insert(rel);
                    false
                } else if let Err(message) = self.valid_dir(&rel) {
                    self.skip(&rel, SkipReason::Refused { message });
                    false
                } else {
                    true
                }
            }
            Found::Special(rel, meta) => {
                let message = format!(
                    "{}: only regular files, directories and symlinks can be committed",
                    file_kind(&meta)
                );
                self.skip(&rel, SkipReason::Unreadable { message });
                // Left out, but not deleted: a tracked path keeps its entry.
                seen.insert(rel);
                true
            }
            Found::Unreadable(rel, e) => {
                self.skip(
                    &rel,
                    SkipReason::Unreadable {
                        message: e.to_string(),
                    },
                );
                true
            }
        }
    }

    /// What the walk did not see (`seen` holds what it did): deleted
    /// files, tracked files that match an ignore pattern (they stay
    /// tracked), and files outside `scope` that were never checked out.
    fn not_walked(
        &mut self,
        index: &mut Index,
        seen: &HashSet<Vec<u8>>,
        scope: &[String],
    ) -> Result<(), git2::Error> {
        let mut real_dirs = HashMap::new();
        let unseen: Vec<(Vec<u8>, u32)> = self
            .entries
            .iter()
            .filter(|(p, _)| !seen.contains(*p))
            .map(|(p, e)| (p.clone(), e.mode))
            .collect();
        for (rel, mode) in unseen {
            match scan::lstat_beneath(self.root, &rel, &mut real_dirs) {
                Ok(Some(m)) if mode == MODE_GITLINK && m.is_dir() => {}
                Ok(Some(m)) if !m.is_dir() => self.add(index, &rel, &m),
                Ok(Some(_)) => remove(index, &rel)?,
                Ok(None) if scope.is_empty() || in_scope(&rel, scope) => {
                    remove(index, &rel)?;
                }
                Ok(None) => {}
                // Kept as it was: unreadable is not deleted.
                Err(e) => self.skip(
                    &rel,
                    SkipReason::Unreadable {
                        message: e.to_string(),
                    },
                ),
            }
        }
        Ok(())
    }

    /// Brings the entry of the file or symlink at `rel` (whose `lstat` is
    /// `meta`) up to date, or leaves it out and says why.
    fn add(&mut self, index: &mut Index, rel: &[u8], meta: &Metadata) {
        let mode = if meta.is_symlink() {
            MODE_SYMLINK
        } else if meta.mode() & 0o100 != 0 {
            MODE_EXECUTABLE
        } else {
            MODE_FILE
        };
        if let Some(old) = self.entries.get(rel)
            && self.unchanged(old, meta, mode)
        {
            return;
        }
        if let Err(message) = self.valid_path(rel, mode) {
            self.skip(rel, SkipReason::Refused { message });
            return;
        }
        if mode != MODE_SYMLINK && meta.len() > self.max_file_size {
            self.skip(
                rel,
                SkipReason::TooLarge {
                    size: meta.len(),
                    limit: self.max_file_size,
                },
            );
            return;
        }
        let known = self.entries.get(rel).map(|old| old.id);
        let (id, meta) = match self.store(rel, meta, mode, known) {
            Ok((id, meta, written)) => {
                self.written += usize::from(written);
                (id, meta)
            }
            Err(Unstored::File(message)) => {
                self.skip(rel, SkipReason::Unreadable { message });
                return;
            }
            // Not the file's doing: the snapshot fails (and is taken
            // again, if a concurrent prune was the cause), the file is
            // never left out for it.
            Err(Unstored::Write(e)) => {
                self.write_failed.get_or_insert(e);
                return;
            }
            // Its entry stays as it was (the base's, or none): the
            // worktree still has the file, no commit has it.
            Err(Unstored::Withheld {
                found,
                id,
                whole,
                cut,
            }) => {
                self.withhold(rel, &found, id, whole, cut);
                // What is left of it, in the commit; its stat data none
                // (the file on disk is not that): read again next time.
                if let Some(cut) = cut
                    && let Err(e) = index.add(&statless_entry(rel, mode, cut))
                {
                    self.write_failed.get_or_insert(e);
                }
                return;
            }
        };
        self.hashed += 1;
        self.largest = self.largest.max(meta.len());
        let entry = IndexEntry {
            ctime: index_time(meta.ctime(), meta.ctime_nsec()),
            mtime: index_time(meta.mtime(), meta.mtime_nsec()),
            // The index keeps the low 32 bits of these, as git does.
            dev: meta.dev() as u32,
            ino: meta.ino() as u32,
            mode,
            uid: meta.uid(),
            gid: meta.gid(),
            file_size: meta.len() as u32,
            id,
            flags: 0,
            flags_extended: 0,
            path: rel.to_vec(),
        };
        if let Err(e) = index.add(&entry) {
            self.skip(
                rel,
                SkipReason::Refused {
                    message: e.message().to_string(),
                },
            );
        }
    }

    /// Writes the content of `rel` as a blob: the link's target for a
    /// symlink, the file's exact bytes (no attribute, filter or line-ending
    /// conversion) otherwise. Returns the blob, the `fstat` of what was
    /// read, which goes into the index, and whether it was written. A file
    /// read whole that still holds `known` (its index entry's blob, which
    /// the repository has) is not written again: as root, handing a worktree to the sandbox's user
    /// and back changes every file's ctime, so every file of a sandboxed
    /// task's worktree comes here, and libgit2 wrote each into a temporary
    /// object before it found the object there already (on a 10,000-file
    /// worktree, most of a writing task's snapshot).
    #[allow(
        clippy::disallowed_methods,
        reason = "readlink of a link the walk found: never followed"
    )]
    fn store(
        &self,
        rel: &[u8],
        meta: &Metadata,
        mode: u32,
        known: Option<Oid>,
    ) -> Result<(Oid, Metadata, bool), Unstored> {
        let abs = scan::join(self.root, rel);
        if mode == MODE_SYMLINK {
            let target = std::fs::read_link(&abs).map_err(|e| e.to_string())?;
            // A link's target is left out whole: there is nothing of the
            // task's to keep in it.
            self.screen_small(rel, target.as_os_str().as_bytes(), false)?;
            let id = self
                .repo
                .blob(target.as_os_str().as_bytes())
                .map_err(Unstored::Write)?;
            return Ok((id, meta.clone(), true));
        }
        let file = scan::open_no_follow(&abs).map_err(|e| e.to_string())?;
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("it changed while it was being read".into());
        }
        let size = meta.len();
        if size > self.max_file_size {
            return Err("it grew past max_file_size while it was being read".into());
        }
        let mut reader = (&file).take(size);
        let id = if size <= SMALL_FILE {
            let mut data = Vec::with_capacity(size as usize);
            reader.read_to_end(&mut data).map_err(|e| e.to_string())?;
            if data.len() as u64 != size {
                return Err("it shrank while it was being read".into());
            }
            if let Some(known) = known.filter(|&known| self.holds(known, &data)) {
                // Nothing in it is new: nothing for the screen to find.
                return Ok((known, meta, false));
            }
            self.screen_small(rel, &data, true)?;
            self.repo.blob(&data).map_err(Unstored::Write)?
        } else {
            // Looked through before any of it is written; then read again
            // from its start, from the same descriptor.
            if let Some(screen) = self.screen {
                let found = screen.found_in_reader(reader).map_err(|e| e.to_string())?;
                let found = self.new_at(rel, found);
                if !found.is_empty() {
                    return Err(Unstored::Withheld {
                        found,
                        id: Oid::ZERO_SHA1,
                        whole: false,
                        cut: None,
                    });
                }
                (&file)
                    .seek(std::io::SeekFrom::Start(0))
                    .map_err(|e| e.to_string())?;
            }
            let mut reader = (&file).take(size);
            let odb = self.repo.odb().map_err(Unstored::Write)?;
            let len = usize::try_from(size).map_err(|e| e.to_string())?;
            let mut writer = odb.writer(len, ObjectType::Blob).map_err(Unstored::Write)?;
            let copied = std::io::copy(&mut reader, &mut writer).map_err(|e| e.to_string())?;
            if copied != size {
                return Err("it shrank while it was being read".into());
            }
            let id = writer.finalize().map_err(Unstored::Write)?;
            // One of the files whole, large: it is in the quarantine only,
            // which goes with the snapshot (no tree names it).
            if let Some(found) = self.screen.map(|s| s.with_id(id))
                && !found.is_empty()
            {
                return Err(Unstored::Withheld {
                    found,
                    id,
                    whole: true,
                    cut: None,
                });
            }
            id
        };
        Ok((id, meta, true))
    }

    /// Whether `data` is the blob `known` and the repository has it (a
    /// hash in memory and a lookup, where writing it again compressed it
    /// into a temporary file first).
    fn holds(&self, known: Oid, data: &[u8]) -> bool {
        Oid::hash_object(ObjectType::Blob, data).is_ok_and(|id| id == known)
            && self.repo.odb().is_ok_and(|odb| odb.exists(known))
    }

    /// Refuses `data` (the content of `rel`, read whole) if it holds what
    /// the screen keeps out, before it is written; what is left of it
    /// without that is written instead, if `cut` says to.
    fn screen_small(&self, rel: &[u8], data: &[u8], cut: bool) -> Result<(), Unstored> {
        let Some(screen) = self.screen else {
            return Ok(());
        };
        let found = self.new_at(rel, screen.found_in(data));
        if found.is_empty() {
            return Ok(());
        }
        let id = Oid::hash_object(ObjectType::Blob, data).map_err(Unstored::Write)?;
        let whole = found.iter().any(|i| screen.is_whole(*i, data));
        // A file that is one of them and nothing more has nothing of the
        // task's to keep.
        let cut = match cut && !whole {
            true => Some(
                self.repo
                    .blob(&screen.cut(data, &found))
                    .map_err(Unstored::Write)?,
            ),
            false => None,
        };
        Err(Unstored::Withheld {
            found,
            id,
            whole,
            cut,
        })
    }

    /// Of the screen's files `found` in the new content of `rel`, those
    /// its content at the base did not hold already (that is in the
    /// repository anyway).
    fn new_at(&self, rel: &[u8], found: Vec<usize>) -> Vec<usize> {
        let (Some(screen), false) = (self.screen, found.is_empty()) else {
            return found;
        };
        let Some(old) = self.entries.get(rel).filter(|e| e.mode != MODE_GITLINK) else {
            return found;
        };
        let held = match self.repo.find_blob(old.id) {
            Ok(blob) => screen.found_in(blob.content()),
            Err(_) => return found,
        };
        found.into_iter().filter(|i| !held.contains(i)).collect()
    }

    /// Leaves `rel` out for holding the screen's files `found` (but for
    /// what is left of it without them, `cut`).
    fn withhold(&mut self, rel: &[u8], found: &[usize], id: Oid, whole: bool, cut: Option<Oid>) {
        let Some(screen) = self.screen else {
            return;
        };
        let files: Vec<String> = found.iter().map(|i| screen.name(*i).to_string()).collect();
        let message = match cut {
            Some(_) => format!(
                "committed without the content of {} in it, which is never committed",
                files.join(", ")
            ),
            None => format!(
                "it holds the content of {}, which is never committed",
                files.join(", ")
            ),
        };
        self.skip(rel, SkipReason::Refused { message });
        self.withheld.push(Withheld {
            path: String::from_utf8_lossy(rel).into_owned(),
            id,
            files,
            whole,
            cut,
        });
    }

    /// True if the file's stat data proves it is what the index entry
    /// says, as git decides it: same type and mode, size, inode, owner,
    /// mtime and ctime (which no worker can set back), and not touched in
    /// the same clock tick as the index was written.
    fn unchanged(&self, old: &IndexEntry, meta: &Metadata, mode: u32) -> bool {
        let same_time = |t: &IndexTime, secs: i64, nsecs: i64| {
            t.seconds() == secs as i32 && (t.nanoseconds() == 0 || t.nanoseconds() == nsecs as u32)
        };
        let racy = match self.index_written {
            Some((secs, nsecs)) => {
                (
                    i64::from(old.mtime.seconds()),
                    i64::from(old.mtime.nanoseconds()),
                ) >= (secs, nsecs)
            }
            None => true,
        };
        old.mode == mode
            && old.file_size == meta.len() as u32
            && old.ino == meta.ino() as u32
            && old.uid == meta.uid()
            && old.gid == meta.gid()
            && same_time(&old.mtime, meta.mtime(), meta.mtime_nsec())
            && same_time(&old.ctime, meta.ctime(), meta.ctime_nsec())
            && !racy
    }

    /// Whether libgit2 would store `rel` at all: it refuses names that
    /// stand for `.git` (`.GIT`, `git~1`, `.git ` on some file systems) in
    /// any component, and `.`/`..`.
    fn valid_path(&mut self, rel: &[u8], mode: u32) -> Result<(), String> {
        let entry = statless_entry(rel, mode, Oid::ZERO_SHA1);
        let answer = self.probe.add(&entry).map_err(|e| e.message().to_string());
        let _ = self.probe.clear();
        answer
    }

    /// Whether the files of directory `rel` could be stored: a directory
    /// whose name git refuses is left out whole, as one entry.
    fn valid_dir(&mut self, rel: &[u8]) -> Result<(), String> {
        let mut probe = rel.to_vec();
        probe.extend_from_slice(b"/f");
        self.valid_path(&probe, MODE_FILE).map_err(|_| {
            "git refuses this directory's name (`.git`, or a name that can stand for it), so nothing in it was committed".to_string()
        })
    }

    fn skip(&mut self, rel: &[u8], reason: SkipReason) {
        self.skipped.push(SkippedFile {
            path: String::from_utf8_lossy(rel).into_owned(),
            reason,
        });
    }
}

fn index_time(secs: i64, nsecs: i64) -> IndexTime {
    // The index format's 32-bit seconds, as git writes them.
    IndexTime::new(secs as i32, nsecs as u32)
}

fn file_kind(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

fn remove(index: &mut Index, rel: &[u8]) -> Result<(), git2::Error> {
    index.remove_path(Path::new(OsStr::from_bytes(rel)))
}

fn in_scope(rel: &[u8], scope: &[String]) -> bool {
    let p = Path::new(OsStr::from_bytes(rel));
    scope.iter().any(|s| p.starts_with(s))
}

/// An index entry for `rel` holding blob `id`, with no stat data: git
/// reads the file again next time (the file on disk is not that blob, or
/// there is none).
fn statless_entry(rel: &[u8], mode: u32, id: Oid) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: 0,
        id,
        flags: 0,
        flags_extended: 0,
        path: rel.to_vec(),
    }
}

/// Paths that differ between two trees, sorted.
pub(crate) fn changed_paths(
    repo: &Repository,
    old: &git2::Tree<'_>,
    new: &git2::Tree<'_>,
) -> Result<Vec<String>, git2::Error> {
    let diff = repo.diff_tree_to_tree(Some(old), Some(new), None)?;
    let mut paths: Vec<String> = diff
        .deltas()
        .filter_map(|d| {
            d.new_file()
                .path()
                .or_else(|| d.old_file().path())
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
