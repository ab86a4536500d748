//! Everything swarm does to git: opening the user's repository, creating and
//! removing task worktrees, snapshotting a worktree into a commit, merging
//! task results, and the ref layout that keeps every result.
//!
//! libgit2 (git2) does the object work in process; the git CLI is used only
//! where it is faster or the only safe way (worktree metadata, full
//! checkouts). No hook ever runs: git2 never runs hooks, and every git CLI
//! call disables them.

pub mod branch;
mod busy;
pub mod hold;
mod incoming;
mod merge;
pub(crate) mod scan;
pub mod screen;
mod snapshot;
#[cfg(test)]
pub(crate) mod test_repo;
mod tracked;
mod treemerge;
mod view;
mod worktree;

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Oid, Repository};

pub use merge::{MergeOutcome, Merger, merge_results};
pub use screen::Screen;
pub(crate) use snapshot::changed_paths;
pub use tracked::FileAt;

/// Whether a file name is git's: `.git`, or a name that stands for it on
/// some file system (`.GIT`, `.git.`, `.git `, `git~1`), which git itself
/// refuses to check out. Nothing at or below one is a file of the
/// worktree's: it is a repository's record, and its configuration names
/// commands git runs.
pub fn stands_for_git(name: &[u8]) -> bool {
    let trimmed = name.trim_ascii_end();
    let trimmed = match trimmed.iter().rposition(|b| *b != b'.') {
        Some(end) => &trimmed[..=end],
        None => trimmed,
    };
    trimmed.eq_ignore_ascii_case(b".git") || name.eq_ignore_ascii_case(b"git~1")
}
pub use snapshot::{
    Snapshot, SnapshotLimits, State, Withheld, leave_out, snapshot, snapshot_screened, state,
    state_into,
};
pub use view::write_view;
pub(crate) use worktree::Leftover;
pub use worktree::Worktrees;

/// Failure of a git operation, as a fragment that reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("find a git repository at {} or any parent directory", path.display())]
    NotARepo { path: PathBuf, source: git2::Error },
    #[error(
        "use the repository at {path}: it is bare; run swarm in a repository with a working tree"
    )]
    Bare { path: PathBuf },
    #[error(
        "resolve base `{rev}`: {}",
        if *empty {
            format!("the repository {} has no commits yet", repo.display())
        } else {
            format!("no such commit in {}", repo.display())
        }
    )]
    UnknownRev {
        rev: String,
        repo: PathBuf,
        /// The repository has no commit at all (`git init` and nothing more).
        empty: bool,
    },
    #[error("{action}: {}", source.message())]
    Git2 { action: String, source: git2::Error },
    #[error("{action}: {message}")]
    Cli { action: String, message: String },
    #[error("{action}: {source}")]
    Io {
        action: String,
        source: std::io::Error,
    },
}

/// How long a ref whose lock another process holds is waited for: `git
/// gc` packing refs holds each one's lock for a moment, and git's own
/// commands wait for it too (`core.filesRefLockTimeout`,
/// `core.packedRefsTimeout`).
const REF_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `change` (of a ref), tried again while the ref's lock is held by
/// another process, for up to [`REF_LOCK_WAIT`].
pub(crate) fn when_unlocked(
    mut change: impl FnMut() -> Result<(), git2::Error>,
) -> Result<(), git2::Error> {
    let until = std::time::Instant::now() + REF_LOCK_WAIT;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match change() {
            Err(e) if e.code() == git2::ErrorCode::Locked && std::time::Instant::now() < until => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            done => return done,
        }
    }
}

impl GitError {
    /// Whether a concurrent `git prune` may be the cause: libgit2 could not
    /// find an object it needed (one the prune just deleted), or could not
    /// move a new loose object into its fan-out directory (which the prune
    /// removed as empty in that moment; git's own writers retry then too).
    /// Done again, the operation writes what is missing.
    pub fn is_prune_race(&self) -> bool {
        let Self::Git2 { source, .. } = self else {
            return false;
        };
        (source.code() == git2::ErrorCode::NotFound && source.class() == git2::ErrorClass::Odb)
            || (source.class() == git2::ErrorClass::Os && source.message().contains("/objects/"))
    }
}

pub(crate) trait Context<T> {
    fn context(self, action: impl FnOnce() -> String) -> Result<T, GitError>;
}

impl<T> Context<T> for Result<T, git2::Error> {
    fn context(self, action: impl FnOnce() -> String) -> Result<T, GitError> {
        self.map_err(|source| GitError::Git2 {
            action: action(),
            source,
        })
    }
}

impl<T> Context<T> for Result<T, std::io::Error> {
    fn context(self, action: impl FnOnce() -> String) -> Result<T, GitError> {
        self.map_err(|source| GitError::Io {
            action: action(),
            source,
        })
    }
}

/// The repository a run works in.
#[derive(Debug, Clone)]
pub struct Repo {
    /// Root of the main working tree (where `.swarm/` lives).
    pub workdir: PathBuf,
    /// The common git directory (`.git` of the main working tree).
    pub common_dir: PathBuf,
    /// The git directory swarm was started in: differs from `common_dir` in
    /// a linked worktree, whose `HEAD` is the one revisions resolve against.
    pub git_dir: PathBuf,
}

/// A commit as people read it: its first ten hex digits (all of it when
/// shorter). The tables, progress lines, pages, `land`, `resolve` and
/// `clean` all show commits so.
pub fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// [`short`] of a commit's id.
pub fn short_id(commit: Oid) -> String {
    short(&commit.to_string()).to_string()
}

/// The identity of commits swarm creates. Fixed, so that a run's commits
/// never depend on the machine's or user's git configuration.
pub fn signature() -> Result<git2::Signature<'static>, GitError> {
    git2::Signature::now("swarm", "swarm@localhost")
        .context(|| "create the commit signature".into())
}

impl Repo {
    /// Finds the repository containing `dir`.
    pub fn discover(dir: &Path) -> Result<Self, GitError> {
        // Object checks on every write cost ~90% of a merge; every object
        // swarm writes comes from libgit2 itself, so they are redundant.
        git2::opts::strict_object_creation(false);
        let repo = Repository::discover(dir).map_err(|source| GitError::NotARepo {
            path: dir.to_path_buf(),
            source,
        })?;
        if repo.is_bare() {
            return Err(GitError::Bare {
                path: repo.path().to_path_buf(),
            });
        }
        let common_dir = repo.commondir().to_path_buf();
        let git_dir = repo.path().to_path_buf();
        // From a linked worktree, `.swarm/` still belongs to the main one.
        let workdir = if repo.is_worktree() {
            common_dir
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| common_dir.clone())
        } else {
            repo.workdir()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| common_dir.clone())
        };
        // libgit2 reports directories with a trailing `/`; normalise so
        // that joined paths and messages look as users expect.
        let workdir: PathBuf = workdir.components().collect();
        Ok(Self {
            workdir,
            common_dir,
            git_dir,
        })
    }

    /// Opens a fresh handle (git2 handles are not `Sync`; each blocking job
    /// opens its own).
    pub fn open(&self) -> Result<Repository, GitError> {
        Repository::open(&self.common_dir)
            .context(|| format!("open repository {}", self.common_dir.display()))
    }

    /// The commit `rev` names.
    pub fn resolve(&self, rev: &str) -> Result<Oid, GitError> {
        let repo = Repository::open(&self.git_dir)
            .context(|| format!("open repository {}", self.git_dir.display()))?;
        repo.revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .map_err(|_| GitError::UnknownRev {
                rev: rev.to_string(),
                repo: self.workdir.clone(),
                empty: has_no_commits(&repo),
            })
    }

    /// How many paths of the working tree differ from `HEAD` (changed,
    /// staged, or untracked and not ignored): what a run, which starts from
    /// a commit, does not see. Files of `except` (such as the plan being
    /// run, which is rarely committed yet) are not counted.
    pub fn uncommitted(&self, except: &[&Path]) -> Result<usize, GitError> {
        let repo = Repository::open(&self.git_dir)
            .context(|| format!("open repository {}", self.git_dir.display()))?;
        let mut options = git2::StatusOptions::new();
        // Untracked files one by one, so that `except` (the plan just
        // written, in a new directory) can be told from the rest.
        options
            .include_untracked(true)
            .recurse_untracked_dirs(!except.is_empty())
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = repo
            .statuses(Some(&mut options))
            .context(|| format!("read the status of {}", self.workdir.display()))?;
        let root = self
            .workdir
            .canonicalize()
            .unwrap_or_else(|_| self.workdir.clone());
        let skipped: Vec<PathBuf> = except
            .iter()
            .filter_map(|p| p.canonicalize().ok())
            .filter_map(|p| p.strip_prefix(&root).ok().map(Path::to_path_buf))
            .collect();
        Ok(statuses
            .iter()
            .filter(|entry| {
                entry
                    .path()
                    .ok()
                    .is_none_or(|p| !skipped.iter().any(|s| s == Path::new(p)))
            })
            // swarm's own directory, made by another run before it was
            // excluded, is no change of the user's.
            .filter(|entry| {
                entry.path().ok().is_none_or(|p| {
                    Path::new(p).components().next()
                        != Some(std::path::Component::Normal(
                            crate::layout::STATE_DIR.as_ref(),
                        ))
                })
            })
            .count())
    }

    /// Whether a ref exists.
    pub fn has_ref(&self, name: &str) -> Result<bool, GitError> {
        Ok(self.open()?.find_reference(name).is_ok())
    }

    /// Whether any ref exists under `prefix` (e.g. `refs/swarm/run/`).
    pub fn has_refs_under(&self, prefix: &str) -> Result<bool, GitError> {
        let repo = self.open()?;
        let mut refs = repo
            .references_glob(&format!("{prefix}*"))
            .context(|| format!("list refs under {prefix}"))?;
        Ok(refs.next().is_some())
    }

    /// Points `name` at `oid`, creating or moving it.
    pub fn set_ref(&self, name: &str, oid: Oid, log: &str) -> Result<(), GitError> {
        let repo = self.open()?;
        when_unlocked(|| repo.reference(name, oid, true, log).map(drop))
            .context(|| format!("update {name}"))
    }

    /// Moves `name` from `old` to `new`, only if it still points at `old`
    /// (as `git update-ref NAME NEW OLD`): `false` if it moved meanwhile.
    pub fn move_ref(&self, name: &str, new: Oid, old: Oid, log: &str) -> Result<bool, GitError> {
        let repo = self.open()?;
        match when_unlocked(|| repo.reference_matching(name, new, true, old, log).map(drop)) {
            Ok(_) => Ok(true),
            Err(e)
                if e.code() == git2::ErrorCode::Modified
                    || e.code() == git2::ErrorCode::NotFound =>
            {
                Ok(false)
            }
            Err(e) => Err(e).context(|| format!("update {name}")),
        }
    }

    /// The branch `rev` names, if it names one: `HEAD` when it is a branch
    /// (its name), or a branch's own name.
    pub fn branch_of(&self, rev: &str) -> Option<String> {
        let repo = self.open().ok()?;
        if rev == "HEAD" {
            let head = repo.find_reference("HEAD").ok()?;
            let target = head.symbolic_target_bytes()?;
            return std::str::from_utf8(target)
                .ok()
                .and_then(|t| t.strip_prefix("refs/heads/"))
                .map(str::to_string);
        }
        let name = rev.strip_prefix("refs/heads/").unwrap_or(rev);
        repo.find_reference(&format!("refs/heads/{name}"))
            .ok()
            .map(|_| name.to_string())
    }

    /// Deletes ref `name` (a ref that is already gone is not an error).
    pub fn delete_ref(&self, name: &str) -> Result<(), GitError> {
        let repo = self.open()?;
        when_unlocked(|| match repo.find_reference(name) {
            Ok(mut r) => r.delete(),
            Err(_) => Ok(()),
        })
        .context(|| format!("delete {name}"))
    }

    /// The tree of commit `commit`.
    pub fn tree_of(&self, commit: Oid) -> Result<Oid, GitError> {
        Ok(self
            .open()?
            .find_commit(commit)
            .context(|| format!("read commit {commit}"))?
            .tree_id())
    }

    /// The size of the change from commit `from` to commit `to`: files,
    /// lines added and removed (binary files count as files only).
    pub fn diff_stat(
        &self,
        from: Oid,
        to: Oid,
    ) -> Result<swarm_protocol::experiment::DiffStat, GitError> {
        let git = self.open()?;
        let stats = diff_of(&git, from, to, &[])?
            .stats()
            .context(|| format!("count the diff of {from} against {to}"))?;
        Ok(swarm_protocol::experiment::DiffStat {
            files: stats.files_changed() as u64,
            insertions: stats.insertions() as u64,
            deletions: stats.deletions() as u64,
        })
    }

    /// The change from commit `from` to commit `to` as a patch (`git
    /// diff` format, no colour).
    pub fn patch(&self, from: Oid, to: Oid) -> Result<Vec<u8>, GitError> {
        self.patch_of(from, to, &[])
    }

    /// [`Repo::patch`] of only `paths` (all of it when empty).
    pub fn patch_of(&self, from: Oid, to: Oid, paths: &[String]) -> Result<Vec<u8>, GitError> {
        let git = self.open()?;
        let diff = diff_of(&git, from, to, paths)?;
        let mut out = Vec::new();
        diff.print(git2::DiffFormat::Patch, |_, _, line| {
            if matches!(line.origin(), '+' | '-' | ' ') {
                out.push(line.origin() as u8);
            }
            out.extend_from_slice(line.content());
            true
        })
        .context(|| format!("print the diff of {from} against {to}"))?;
        Ok(out)
    }

    /// `f` given a function saying whether a path (relative to the root)
    /// exists in commit `commit`: what a plan's checks ask of its base.
    pub fn with_paths_of<R>(
        &self,
        commit: Oid,
        f: impl FnOnce(&dyn Fn(&str) -> bool) -> R,
    ) -> Result<R, GitError> {
        let git = self.open()?;
        let tree = git
            .find_commit(commit)
            .and_then(|c| c.tree())
            .context(|| format!("read the tree of commit {commit}"))?;
        Ok(f(&|p: &str| tree.get_path(Path::new(p)).is_ok()))
    }

    /// Adds `pattern` to `.git/info/exclude` unless it is there already, so
    /// swarm's own files never show up in `git status`.
    #[allow(
        clippy::disallowed_methods,
        reason = "the repository's .git/info/exclude, git's and the person's, never a task's"
    )]
    pub fn exclude(&self, pattern: &str) -> Result<(), GitError> {
        let path = self.common_dir.join("info").join("exclude");
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current.lines().any(|l| l.trim() == pattern) {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
        }
        let mut text = current;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(pattern);
        text.push('\n');
        // Renamed into place: a reader (another swarm, git) sees the old
        // list or the new, never an empty file whose rewrite would lose
        // the user's own patterns.
        let tmp = path.with_file_name(format!("exclude.swarm-{}", std::process::id()));
        std::fs::write(&tmp, text).context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).context(|| format!("write {}", path.display()))
    }

    /// A `git` command run in `dir` (see [`git_command`]).
    pub fn git(&self, dir: &Path) -> Command {
        git_command(dir)
    }
}

/// A `git` command run in `dir` with hooks disabled and none of the
/// variables that would point it at another repository.
pub(crate) fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "advice.detachedHead=false",
        ])
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_COMMON_DIR")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES");
    cmd
}

/// Runs a prepared git command, turning a non-zero exit into an error that
/// carries git's own message.
/// The tree-to-tree diff from commit `from` to commit `to`, of `paths`
/// only (literal paths; all of it when empty).
fn diff_of<'r>(
    git: &'r Repository,
    from: Oid,
    to: Oid,
    paths: &[String],
) -> Result<git2::Diff<'r>, GitError> {
    let tree = |c: Oid| {
        git.find_commit(c)
            .and_then(|c| c.tree())
            .context(|| format!("read the tree of commit {c}"))
    };
    let (a, b) = (tree(from)?, tree(to)?);
    let mut options = git2::DiffOptions::new();
    options.disable_pathspec_match(true);
    for p in paths {
        options.pathspec(p);
    }
    git.diff_tree_to_tree(Some(&a), Some(&b), Some(&mut options))
        .context(|| format!("diff {from} against {to}"))
}

pub(crate) fn run_git(mut cmd: Command, action: impl Fn() -> String) -> Result<String, GitError> {
    let out = cmd.output().map_err(|source| GitError::Io {
        action: format!("{} (running git)", action()),
        source,
    })?;
    if !out.status.success() {
        return Err(GitError::Cli {
            action: action(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The ref layout of a run. Task ids contain no `.`, and a subtask's `/`
/// becomes `+` (`ids::flat`), so these names can never collide:
/// no task ref is a directory of another, and earlier attempts
/// (`<task>.<n>`) cannot be mistaken for a task.
pub mod refs {
    use crate::ids::flat;

    /// `refs/swarm/<run>/<task>`: the result of a task.
    pub fn task(run: &str, task: &str) -> String {
        format!("refs/swarm/{run}/{}", flat(task))
    }

    /// `refs/swarm/<run>/<task>.<attempt>`: an earlier, failed attempt.
    pub fn attempt(run: &str, task: &str, attempt: u32) -> String {
        format!("refs/swarm/{run}/{}.{attempt}", flat(task))
    }

    /// `refs/heads/swarm/<run>`: the integration branch.
    pub fn integration(run: &str) -> String {
        format!("refs/heads/{}", integration_branch(run))
    }

    pub fn integration_branch(run: &str) -> String {
        format!("swarm/{run}")
    }

    /// Prefix of all of a run's hidden refs.
    pub fn run_prefix(run: &str) -> String {
        format!("refs/swarm/{run}/")
    }
}

/// `git init` and nothing more: HEAD names a branch not yet born and no
/// reference exists. (libgit2's `is_empty` answers false when the unborn
/// branch is not its own default name, e.g. after `git init -b main`.)
fn has_no_commits(repo: &Repository) -> bool {
    let unborn = matches!(repo.head(), Err(e) if e.code() == git2::ErrorCode::UnbornBranch);
    unborn
        && repo
            .references()
            .map(|mut refs| refs.next().is_none())
            .unwrap_or(false)
}
