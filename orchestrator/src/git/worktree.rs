//! Task worktrees: created in parallel, cheaply, and removed off the
//! critical path.
//!
//! `git worktree add` is not safe to run concurrently (it races on
//! `.git/worktrees/`), so only that metadata step is serialised, and it is
//! done with `--no-checkout`, which takes a few milliseconds whatever the
//! repository's size. The checkout itself then runs in parallel: the git CLI
//! for a full tree (git's checkout is the fastest there is), libgit2 in
//! process when a task names its `paths` (a handful of files).
//!
//! git's checkout runs the filter drivers of the person's configuration
//! (git-lfs, git-crypt: programs, run unconfined) on the files the
//! checkout's `.gitattributes` routes to them, and git-lfs reads where to
//! fetch from in the checkout's `.lfsconfig`. A commit holding a task's
//! work holds that task's `.gitattributes` and `.lfsconfig`: had git
//! checked it out, a task without network would make swarm fetch from a
//! host of its choosing. So where git's checkout of a commit could run a
//! driver (the configuration has one, and an attributes file of the
//! person's or a `.gitattributes` of the commit names a `filter`), git
//! checks out only the run's base (the person's files, through their
//! filters) in a directory holding nothing else, and what the commit
//! changes from there is written by libgit2, which runs no filter driver:
//! as the commit holds it, which is how swarm commits a task's files. A
//! worktree that holds a task's files (a warm one, the run-wide verify's)
//! is then made again rather than moved by git.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::{Oid, Repository, build::CheckoutBuilder};

use super::{Context, GitError, Repo, run_git};

/// Held only while a `.git/worktrees/` is being changed. One for the whole
/// process, not one per [`Worktrees`]: the executor's tasks and the
/// run-wide verify each have their own, and `git worktree add` reads every
/// other record there (a half-made one fails it).
static METADATA: Mutex<()> = Mutex::new(());

/// The file in the repository's common git directory whose `flock`
/// serialises changes to `worktrees/` across processes: two runs started
/// together share git's records as they share the repository.
const METADATA_LOCK: &str = "swarm-worktrees.lock";

/// Both locks on a repository's worktree records: this process's (threads)
/// and the repository's (processes).
struct MetadataGuard {
    file: Option<nix::fcntl::Flock<std::fs::File>>,
    _thread: std::sync::MutexGuard<'static, ()>,
}

impl MetadataGuard {
    /// Waits for both. Without a lock file (a read-only `.git`), the
    /// process's own lock is all there is, as before.
    fn take(repo: &Repo) -> Self {
        let thread = METADATA
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let file = crate::untrusted::lock_file(&repo.common_dir.join(METADATA_LOCK))
            .ok()
            .and_then(|file| {
                nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).ok()
            });
        Self {
            file,
            _thread: thread,
        }
    }

    /// Gives the git command `cmd` a share of the repository's lock (the
    /// same open file, as its stdin, which git does not read): a `git
    /// worktree add` that outlives a killed coordinator holds it until it
    /// ends, so that no other swarm changes the records beside it.
    fn share(&self, cmd: &mut std::process::Command) {
        if let Some(shared) = self.file.as_ref().and_then(|f| f.try_clone().ok()) {
            cmd.stdin(shared);
        }
    }
}

/// Creates and removes the worktrees of one repository.
#[derive(Debug)]
pub struct Worktrees {
    repo: Repo,
    /// The commit git may check out with the person's filter drivers: the
    /// run's base (see the module's doc).
    trusted: Option<Oid>,
    /// Whether the person's git configuration has a filter driver, once
    /// asked.
    filters: std::sync::OnceLock<bool>,
    /// Whether an attributes file of the person's names a filter, once
    /// read.
    person_routes: std::sync::OnceLock<bool>,
    /// Whether this git reads attributes from a commit instead of the
    /// worktree (`--attr-source`, git 2.40), once asked.
    attr_source: std::sync::OnceLock<bool>,
}

impl Worktrees {
    pub fn new(repo: Repo) -> Self {
        Self {
            repo,
            trusted: None,
            filters: std::sync::OnceLock::new(),
            person_routes: std::sync::OnceLock::new(),
            attr_source: std::sync::OnceLock::new(),
        }
    }

    /// These worktrees, checking out `base` (the run's) as git does, with
    /// the person's filter drivers; any other commit only as far as it
    /// differs from `base`, with none.
    pub fn trusting(mut self, base: Oid) -> Self {
        self.trusted = Some(base);
        self
    }

    /// Whether git's checkout of `commit` could run a filter driver: the
    /// person's configuration has one, and an attributes file could route
    /// a file to it (one of the person's, or a `.gitattributes` of
    /// `commit`'s tree, which names a `filter`). Else git runs no program
    /// as it checks `commit` out, whoever wrote it: a checkout holding a
    /// task's files may be moved there by git, which reads attributes from
    /// `commit` alone (`--attr-source`, see `bring_to`). A git that cannot
    /// (older than 2.40) would read a `.gitattributes` the task left where
    /// the scrub does not see it (in a directory its `.gitignore` hid,
    /// which `commit` adds): with a filter driver configured, any checkout
    /// may run one then.
    pub fn may_run_filters(&self, commit: Oid) -> bool {
        self.runs_filters()
            && (!self.reads_attr_source()
                || self.person_routes()
                || tree_routes(&self.repo, commit))
    }

    /// Whether `commit` is `from` or a descendant of it (one that cannot be
    /// read is taken not to be).
    pub fn descends(&self, commit: Oid, from: Oid) -> bool {
        commit == from
            || self
                .repo
                .open()
                .is_ok_and(|git| git.graph_descendant_of(commit, from).unwrap_or(false))
    }

    /// Whether this git takes `--attr-source` (2.40): asked once.
    fn reads_attr_source(&self) -> bool {
        *self.attr_source.get_or_init(|| {
            let mut cmd = self.repo.git(&self.repo.workdir);
            // The empty tree: in every repository, holds no attributes.
            cmd.args([
                "--attr-source=4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                "check-attr",
                "-a",
                "--",
                "x",
            ]);
            matches!(cmd.output().map(|o| o.status.success()), Ok(true))
        })
    }

    /// Whether the person's git configuration (the repository's, theirs,
    /// the system's) names a filter driver git runs as it checks out
    /// (`filter.<driver>.smudge` or `.process`): asked once. If git cannot
    /// say, it is taken to.
    fn runs_filters(&self) -> bool {
        *self.filters.get_or_init(|| {
            let mut cmd = self.repo.git(&self.repo.workdir);
            cmd.args(["config", "--get-regexp", r"^filter\..+\.(smudge|process)$"]);
            !matches!(cmd.output().map(|o| o.status.code()), Ok(Some(1)))
        })
    }

    /// Whether an attributes file of the person's (the repository's
    /// `info/attributes`, `core.attributesFile`, the system's) names a
    /// `filter`: read once; one that cannot be read is taken to.
    #[allow(
        clippy::disallowed_methods,
        reason = "the person's own git attributes files, never a task's"
    )]
    fn person_routes(&self) -> bool {
        *self.person_routes.get_or_init(|| {
            let mut files = vec![
                self.repo.common_dir.join("info").join("attributes"),
                PathBuf::from("/etc/gitattributes"),
            ];
            let mut cmd = self.repo.git(&self.repo.workdir);
            cmd.args(["config", "--path", "--get", "core.attributesFile"]);
            match cmd.output() {
                Ok(out) if out.status.success() => files.push(PathBuf::from(
                    String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'),
                )),
                Ok(out) if out.status.code() == Some(1) => {
                    let xdg = std::env::var_os("XDG_CONFIG_HOME")
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                        .or_else(|| {
                            std::env::var_os("HOME").map(|h| Path::new(&h).join(".config"))
                        });
                    files.extend(xdg.map(|dir| dir.join("git").join("attributes")));
                }
                _ => return true,
            }
            files.iter().any(|file| match std::fs::read(file) {
                Ok(text) => names_a_filter(&text),
                Err(e) => e.kind() != std::io::ErrorKind::NotFound,
            })
        })
    }

    /// Creates a worktree at `path` with a detached HEAD at `commit`, and
    /// returns its git directory (under `.git/worktrees/`).
    ///
    /// With `paths`, only those paths are checked out; the index still
    /// holds the whole tree, so a snapshot sees nothing else as deleted.
    ///
    /// The git directory is read now, before any worker runs: later, the
    /// worktree's `.git` file is the worker's to rewrite, and swarm must not
    /// follow it.
    pub fn create(&self, path: &Path, commit: Oid, paths: &[String]) -> Result<PathBuf, GitError> {
        if path.symlink_metadata().is_ok() || self.admin_dir(path).is_some() {
            // A leftover from an interrupted run with the same name (or a
            // record git made before the coordinator was killed, whose
            // directory never came to be). Its git may still be at work.
            super::busy::wait_until_unused(path, LEFTOVER_WAIT);
            self.remove(path, None)?;
        }
        if let Some(parent) = path.parent() {
            #[allow(
                clippy::disallowed_methods,
                reason = "the run's worktree directory, swarm's: a worktree goes in it"
            )]
            std::fs::create_dir_all(parent).context(|| format!("create {}", parent.display()))?;
        }
        let action = || format!("create worktree {}", path.display());
        let mut tries = 1;
        loop {
            let added = {
                let guard = MetadataGuard::take(&self.repo);
                let mut cmd = self.repo.git(&self.repo.workdir);
                cmd.args(["worktree", "add", "--no-checkout", "--detach", "--quiet"])
                    .arg(path)
                    .arg(commit.to_string());
                guard.share(&mut cmd);
                run_git(cmd, action)
            };
            match added {
                Ok(_) => break,
                // `git worktree prune` (which `git gc` runs) removes a
                // record whose `gitdir` file is not written yet: a
                // worktree being added in that moment fails. What it left
                // goes, and it is added again.
                Err(_) if tries < ADD_TRIES => {
                    tries += 1;
                    self.remove(path, None)?;
                }
                Err(e) => return Err(e),
            }
        }
        if !paths.is_empty() {
            checkout_paths(path, commit, paths)?;
        } else if self.trusted == Some(commit) || !self.may_run_filters(commit) {
            let mut cmd = self.repo.git(path);
            cmd.args(["reset", "--hard", "--quiet"]);
            run_git(cmd, || {
                format!("check out {} in {}", commit, path.display())
            })?;
        } else {
            self.check_out_unfiltered(path, commit)?;
        }
        self.admin_dir(path).ok_or_else(|| GitError::Cli {
            action: action(),
            message: format!("git recorded no worktree at {}", path.display()),
        })
    }

    /// Checks out `commit` in the new worktree at `path` (holding nothing
    /// yet) so that no filter driver runs on a file the person did not
    /// commit: git checks out the run's base, the person's files through
    /// their filters; libgit2, which runs no filter driver, then writes
    /// what `commit` changes from it, as `commit` holds it.
    fn check_out_unfiltered(&self, path: &Path, commit: Oid) -> Result<(), GitError> {
        let action = || format!("check out {commit} in {}", path.display());
        if let Some(base) = self.trusted {
            let mut cmd = self.repo.git(path);
            cmd.args(["reset", "--hard", "--quiet"])
                .arg(base.to_string());
            run_git(cmd, action)?;
        }
        // The worktree was just made: its `.git` is git's own.
        let repo = Repository::open(path).context(action)?;
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .context(action)?;
        let mut checkout = CheckoutBuilder::new();
        checkout.force().update_index(true);
        if let Some(base) = self.trusted {
            // Only what differs from the base: the base's files stay as
            // git wrote them, through their filters. Each path as it is,
            // never a pattern.
            let base_tree = repo
                .find_commit(base)
                .and_then(|c| c.tree())
                .context(action)?;
            let diff = repo
                .diff_tree_to_tree(Some(&base_tree), Some(&tree), None)
                .context(action)?;
            checkout.disable_pathspec_match(true);
            let mut changed = false;
            for delta in diff.deltas() {
                for file in [delta.old_file(), delta.new_file()] {
                    if let Some(p) = file.path() {
                        checkout.path(p);
                        changed = true;
                    }
                }
            }
            if !changed {
                repo.set_head_detached(commit).context(action)?;
                return Ok(());
            }
        }
        repo.checkout_tree(tree.as_object(), Some(&mut checkout))
            .context(action)?;
        repo.set_head_detached(commit).context(action)?;
        Ok(())
    }

    /// Deletes the worktree at `path` and its metadata under `.git/worktrees`
    /// (`admin`, as [`create`](Self::create) returned it, or `None` to look
    /// it up). The caller must have committed anything worth keeping first.
    ///
    /// Nothing in the worktree is read: its `.git` file is the worker's to
    /// rewrite (`gitdir: <repo>/.git/worktrees/../..` would otherwise make
    /// this delete the repository).
    pub fn remove(&self, path: &Path, admin: Option<&Path>) -> Result<(), GitError> {
        let admin = match admin {
            Some(admin) => self.is_admin_dir(admin).then(|| admin.to_path_buf()),
            None => self.admin_dir(path),
        };
        if path.symlink_metadata().is_ok() {
            remove_tree(path).context(|| format!("remove worktree {}", path.display()))?;
        }
        if let Some(admin) = admin {
            let _guard = MetadataGuard::take(&self.repo);
            if admin.exists() {
                remove_tree(&admin).context(|| format!("remove {}", admin.display()))?;
            }
        }
        Ok(())
    }

    /// Puts back the link from the worktree at `path` to its record
    /// `admin` (a `.git` file naming it), unless it is intact. A worker may
    /// have replaced it with a repository of its own whose configuration
    /// runs a command (`core.fsmonitor`, a filter) when the user later runs
    /// git there. Whatever is there is removed without following links.
    /// Returns whether the link had to be restored.
    pub fn restore_link(path: &Path, admin: &Path) -> Result<bool, GitError> {
        let link = path.join(".git");
        let want = format!("gitdir: {}\n", admin.display());
        // Read as what it may be: the task's file (no link followed, no
        // FIFO waited on, a few KiB at most).
        let limits = crate::untrusted::Limits {
            max_size: 4096,
            what: "a worktree's .git link",
        };
        let intact = crate::untrusted::read(path, ".git", limits)
            .is_ok_and(|text| text.trim_ascii() == want.trim().as_bytes());
        if intact || path.symlink_metadata().is_err() {
            return Ok(false);
        }
        // The worktree is the task's: whatever is at `.git` is removed as
        // what it is and the link made new, never through a link.
        let worktree = crate::untrusted::TaskDir::open(path).map_err(|e| GitError::Cli {
            action: format!("restore {}", link.display()),
            message: e.to_string(),
        })?;
        worktree
            .replace(".git", want.as_bytes(), 0o644)
            .map_err(|e| GitError::Cli {
                action: format!("restore {}", link.display()),
                message: e.to_string(),
            })?;
        Ok(true)
    }

    /// `git worktree prune`: forgets worktrees whose directory is gone.
    pub fn prune(&self) -> Result<(), GitError> {
        let guard = MetadataGuard::take(&self.repo);
        let mut cmd = self.repo.git(&self.repo.workdir);
        cmd.args(["worktree", "prune"]);
        guard.share(&mut cmd);
        run_git(cmd, || "prune worktree metadata".into()).map(drop)
    }
}

/// How often `git worktree add` is tried before its error is given.
const ADD_TRIES: u32 = 3;

/// How long a resumed run waits for the processes a killed coordinator
/// left in a worktree (an orphaned `git worktree add` or checkout, a worker
/// its watcher is stopping) before it touches the worktree anyway.
const LEFTOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What an interrupted run left where a task's worktree goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Leftover {
    /// No directory (git's record of one may be left: `create` removes
    /// it).
    Nothing,
    /// A worktree whose making was cut short: its record is incomplete or
    /// it was never checked out. No worker ran in it, so there is nothing
    /// in it to keep.
    HalfMade,
    /// A whole worktree, with its record under `.git/worktrees/`.
    Made { admin: PathBuf },
}

impl Worktrees {
    /// What an interrupted run left at `path`, once no process works there
    /// any more (see [`super::busy`]).
    pub(crate) fn leftover(&self, path: &Path) -> Leftover {
        // No directory: nothing ran there to keep (a record git made
        // without one is removed by `create`). Looked at before the wait
        // (no wait for anyone) and after it (an orphaned git may have
        // cleaned up after itself meanwhile).
        let gone = || path.symlink_metadata().is_err();
        if gone() {
            return Leftover::Nothing;
        }
        super::busy::wait_until_unused(path, LEFTOVER_WAIT);
        if gone() {
            return Leftover::Nothing;
        }
        match self.admin_dir(path) {
            // `git worktree add --no-checkout` writes `HEAD` and
            // `commondir`; the checkout after it (git's or libgit2's)
            // writes the index. A worker starts only after both.
            Some(admin)
                if admin.join("HEAD").is_file()
                    && admin.join("commondir").is_file()
                    && admin.join("index").is_file() =>
            {
                Leftover::Made { admin }
            }
            _ => Leftover::HalfMade,
        }
    }

    /// Brings the kept worktree at `path` to `commit` (a warm worktree,
    /// see `run::warm`): its link to the repository restored first (the
    /// task may have rewritten its `.git`), then tracked files reset and
    /// untracked ones removed, what `.gitignore` ignores (build output,
    /// `node_modules`) kept. Files that do not change keep their
    /// modification times. Returns its git directory, or `None` when git
    /// has no record of it (it is then made again).
    ///
    /// Only for a `commit` whose checkout runs no filter driver
    /// ([`Self::may_run_filters`], which its callers ask, making the
    /// worktree again otherwise): its refresh and its reset would run one
    /// on the task's files.
    pub fn bring_to(&self, path: &Path, commit: Oid) -> Result<Option<PathBuf>, GitError> {
        debug_assert!(
            !self.may_run_filters(commit),
            "bring_to where a filter may run"
        );
        let Some(admin) = self.admin_dir(path) else {
            return Ok(None);
        };
        Self::restore_link(path, &admin)?;
        // swarm's own record of where its git directory is, never the
        // worktree's `.git` file: it is the task's.
        let git = |args: &[&str]| {
            let mut cmd = self.repo.git(path);
            cmd.arg(format!("--git-dir={}", admin.display()))
                .arg(format!("--work-tree={}", path.display()))
                .args(args);
            cmd
        };
        // What a task left must not steer what comes next: an untracked
        // `.gitattributes` changes how the reset writes files, and an
        // untracked `.gitignore` (ignoring itself) would hide both its
        // files from the clean-up and the next run's new files from its
        // snapshot. Such files go first, then whatever they hid; then the
        // reset, then the clean-up at the new base.
        self.scrub(path, &git)?;
        let target = commit.to_string();
        Self::refresh(commit, &git);
        // Attributes from `commit` alone, never from a `.gitattributes`
        // the task left (one in a directory its `.gitignore` hid from the
        // scrub, which `commit` adds, would route the files checked out
        // there to the person's filter driver). A git without the option
        // writes no file through a driver here: `may_run_filters` says so
        // where one is configured, and the worktree is made again.
        let source = format!("--attr-source={commit}");
        let mut reset = vec!["reset", "--hard", "--quiet", target.as_str()];
        if self.reads_attr_source() {
            reset.insert(0, &source);
        }
        run_git(git(&reset), || {
            format!("bring worktree {} to {commit}", path.display())
        })?;
        // Twice forced: a repository a task made inside (`sub/.git`) goes
        // too, or its other files would be the next run's "changes".
        remove_untracked(path, &git)?;
        // The clean keeps what git ignores (the point of a warm worktree),
        // and with it a repository a task left in there (`target/x/.git`),
        // whose configuration names commands git runs for whatever later
        // runs git in it (a setup, with setup's network). Its `.git` goes.
        let listed = list_ignored(path, &git)?;
        remove_nested_gits(path, &listed)
            .context(|| format!("remove repositories left in worktree {}", path.display()))?;
        Ok(Some(admin))
    }

    /// Tells git's index of a kept worktree which tracked files still hold
    /// what it says (each one whose stat changed read and compared with its
    /// blob), so that the reset to `commit` after it writes only the files
    /// that differ and the rest keep their modification times: a build
    /// tool's incremental state goes by them. Run as root, swarm hands the
    /// worktree to the sandbox's user and takes it back, which changes
    /// every file's ctime; git took that as a change, and the reset
    /// rewrote every file each run (cargo then built the crate again in
    /// every warm worktree: 1-4 s a shard of itertools, BENCHMARKS 30).
    ///
    /// A file is kept only when its content is its blob's, read through
    /// the attributes of `commit` (`--attr-source`), never through a
    /// `.gitattributes` the task changed; no filter driver runs on it
    /// (`bring_to` is only for a commit where none can). A git without
    /// `--attr-source` (older than 2.40), or any failure, leaves the index
    /// as it was: the reset then writes every file, as before.
    fn refresh(commit: Oid, git: &dyn Fn(&[&str]) -> std::process::Command) {
        let source = format!("--attr-source={commit}");
        let refreshed = run_git(git(&[&source, "update-index", "-q", "--refresh"]), || {
            "refresh the index of a kept worktree".to_string()
        });
        if let Err(e) = refreshed {
            tracing::debug!(error = %crate::error_chain(&e), "index not refreshed: every tracked file is written again");
        }
    }

    /// Removes every untracked file of the worktree at `path` (git
    /// directory `admin`), ignored ones too: a warm worktree made as
    /// fresh as a new one, for a setup whose outputs are kept.
    pub fn clean_all(&self, path: &Path, admin: &Path) -> Result<(), GitError> {
        let mut cmd = self.repo.git(path);
        cmd.arg(format!("--git-dir={}", admin.display()))
            .arg(format!("--work-tree={}", path.display()))
            .args(["clean", "-d", "-x", "--force", "--force", "--quiet"]);
        run_git(cmd, || {
            format!(
                "remove untracked and ignored files of worktree {}",
                path.display()
            )
        })
        .map(drop)
    }

    /// Removes the ignore and attribute files a task left untracked in the
    /// worktree at `path` (git's `git` runs there), and the untracked files
    /// they hid, until none is left (a few rounds: one may hide another).
    fn scrub(
        &self,
        path: &Path,
        git: &dyn Fn(&[&str]) -> std::process::Command,
    ) -> Result<(), GitError> {
        let planted = |name: &[u8]| {
            let base = name.rsplit(|b| *b == b'/').next().unwrap_or(name);
            base == b".gitignore" || base == b".gitattributes"
        };
        for _ in 0..4 {
            remove_untracked(path, git)?;
            let listed = list_ignored(path, git)?;
            let found: Vec<&[u8]> = listed
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty() && planted(p))
                .collect();
            if found.is_empty() {
                return Ok(());
            }
            // The worktree is the task's: each file removed as what it is,
            // never through a link on the way.
            let worktree = crate::untrusted::TaskDir::open(path).map_err(|e| GitError::Cli {
                action: format!("remove planted ignore files of worktree {}", path.display()),
                message: e.to_string(),
            })?;
            for rel in found {
                let Ok(rel) = std::str::from_utf8(rel) else {
                    continue;
                };
                if matches!(worktree.kind(rel), Ok(Some(k)) if k != crate::untrusted::EntryKind::Dir)
                {
                    worktree.remove(rel).map_err(|e| GitError::Cli {
                        action: format!("remove {}", path.join(rel).display()),
                        message: e.to_string(),
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The worktree's directory under `.git/worktrees/`, found from git's
    /// own record there (each admin directory's `gitdir` file names its
    /// worktree's `.git`). Workers cannot write under `.git`.
    #[allow(
        clippy::disallowed_methods,
        reason = "git's own records of the repository's worktrees"
    )]
    pub(crate) fn admin_dir(&self, worktree: &Path) -> Option<PathBuf> {
        let want = worktree.join(".git");
        let entries = std::fs::read_dir(self.repo.common_dir.join("worktrees")).ok()?;
        entries.flatten().map(|e| e.path()).find(|admin| {
            std::fs::read_to_string(admin.join("gitdir"))
                .is_ok_and(|text| Path::new(text.trim()) == want)
        })
    }

    /// The commit the worktree recorded in `admin` was checked out at (its
    /// detached `HEAD`), when that can be read.
    #[allow(
        clippy::disallowed_methods,
        reason = "git's own record of a worktree (its admin directory in the repository)"
    )]
    pub(crate) fn checked_out_at(admin: &Path) -> Option<Oid> {
        let head = std::fs::read_to_string(admin.join("HEAD")).ok()?;
        Oid::from_str(head.trim()).ok()
    }

    /// True if `admin` is exactly one directory below `.git/worktrees/`.
    fn is_admin_dir(&self, admin: &Path) -> bool {
        let root = self.repo.common_dir.join("worktrees");
        admin.parent() == Some(root.as_path())
            && admin
                .file_name()
                .is_some_and(|name| name != ".." && name != ".")
    }
}

/// Removes the untracked files of the worktree at `path` (its git run
/// by `git`), a repository a task made inside included; what git ignores
/// stays.
fn remove_untracked(
    path: &Path,
    git: &dyn Fn(&[&str]) -> std::process::Command,
) -> Result<(), GitError> {
    run_git(
        git(&["clean", "-d", "--force", "--force", "--quiet"]),
        || format!("remove untracked files of worktree {}", path.display()),
    )
    .map(drop)
}

/// What git ignores in the worktree at `path` (its git run by `git`):
/// `git ls-files -z --others --ignored --exclude-standard --directory`.
fn list_ignored(
    path: &Path,
    git: &dyn Fn(&[&str]) -> std::process::Command,
) -> Result<Vec<u8>, GitError> {
    let listed = git(&[
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--directory",
    ])
    .output()
    .context(|| format!("list ignored files of worktree {}", path.display()))?;
    Ok(listed.stdout)
}

/// Whether a `.gitattributes` of `commit`'s tree names a `filter` (one
/// that cannot be read is taken to).
fn tree_routes(repo: &Repo, commit: Oid) -> bool {
    let Ok(git) = repo.open() else {
        return true;
    };
    let Ok(tree) = git.find_commit(commit).and_then(|c| c.tree()) else {
        return true;
    };
    let mut found = false;
    let walked = tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        if entry.name_bytes() == b".gitattributes"
            && entry.kind() == Some(git2::ObjectType::Blob)
            && git
                .find_blob(entry.id())
                .map_or(true, |blob| names_a_filter(blob.content()))
        {
            found = true;
            return git2::TreeWalkResult::Abort;
        }
        git2::TreeWalkResult::Ok
    });
    // An aborted walk is an error too.
    found || walked.is_err()
}

/// Whether attributes `text` may name a filter (a mention anywhere, a
/// comment's too: only its absence is sure).
fn names_a_filter(text: &[u8]) -> bool {
    text.windows(b"filter".len()).any(|w| w == b"filter")
}

/// Fills the index with the whole tree of `commit` but writes only `paths`
/// to disk.
fn checkout_paths(path: &Path, commit: Oid, paths: &[String]) -> Result<(), GitError> {
    let action = || format!("check out {} in {}", paths.join(", "), path.display());
    let repo = Repository::open(path).context(action)?;
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .context(action)?;
    let mut index = repo.index().context(action)?;
    index.read_tree(&tree).context(action)?;
    index.write().context(action)?;
    let mut checkout = CheckoutBuilder::new();
    checkout.force().update_index(true);
    for p in paths {
        checkout.path(p);
    }
    repo.checkout_tree(tree.as_object(), Some(&mut checkout))
        .context(action)?;
    Ok(())
}

/// `remove_dir_all`, tried again for a moment while a directory is not
/// empty: after a coordinator is killed, a git command it had started (a
/// checkout, an index lock) can still be writing there for a few
/// milliseconds when the resumed run cleans up.
#[allow(
    clippy::disallowed_methods,
    reason = "std's remove_dir_all unlinks the links inside a tree, never following one, and the tree's own parent is swarm's"
)]
fn remove_tree(path: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => return other,
        }
    }
}

/// Removes every `.git` (directory, file or link: whatever stands for
/// git's, see [`super::stands_for_git`]) at or below the ignored paths
/// `listed` (`git ls-files -z --others --ignored --directory` of the
/// worktree at `path`), walked by descriptor without following a link:
/// the worktree is what a task left.
fn remove_nested_gits(path: &Path, listed: &[u8]) -> std::io::Result<()> {
    let root = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
    for rel in listed.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
            rel.strip_suffix(b"/").unwrap_or(rel),
        );
        let rel = Path::new(rel);
        if rel
            .file_name()
            .is_some_and(|n| super::stands_for_git(n.as_encoded_bytes()))
        {
            remove_entry(&root, rel)?;
            continue;
        }
        // A directory (opened without following a link: a link here is
        // one entry git lists, nothing below it is the worktree's).
        let Ok(dir) = open_dir_beneath(&root, rel) else {
            continue;
        };
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in dir.entries()? {
                let entry = entry?;
                let name = entry.file_name();
                let kind = entry.file_type()?;
                if super::stands_for_git(name.as_encoded_bytes()) {
                    match kind.is_dir() {
                        true => dir.remove_dir_all(&name)?,
                        false => dir.remove_file(&name)?,
                    }
                } else if kind.is_dir() && !kind.is_symlink() {
                    stack.push(open_nofollow(&dir, &name)?);
                }
            }
        }
    }
    Ok(())
}

/// Opens directory `rel` below `root`, no link followed on the way.
fn open_dir_beneath(root: &cap_std::fs::Dir, rel: &Path) -> std::io::Result<cap_std::fs::Dir> {
    let mut dir = root.try_clone()?;
    for part in rel.components() {
        dir = open_nofollow(&dir, part.as_os_str())?;
    }
    Ok(dir)
}

/// Opens directory `name` of `dir`, not if it is a link.
fn open_nofollow(
    dir: &cap_std::fs::Dir,
    name: &std::ffi::OsStr,
) -> std::io::Result<cap_std::fs::Dir> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::openat(
        std::os::fd::AsFd::as_fd(dir),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(cap_std::fs::Dir::from(fd))
}

/// Removes `rel` below `root` as what it is (a link unlinked, a directory
/// with everything in it), no link followed on the way.
fn remove_entry(root: &cap_std::fs::Dir, rel: &Path) -> std::io::Result<()> {
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Ok(());
    };
    let dir = open_dir_beneath(root, parent)?;
    match dir.symlink_metadata(name)?.is_dir() {
        true => dir.remove_dir_all(name),
        false => dir.remove_file(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_repo;

    #[test]
    fn a_worktree_cut_short_while_being_made_is_half_made_and_a_whole_one_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, base) = test_repo::with_files(dir.path(), &[("a.txt", "a\n")]);
        let worktrees = Worktrees::new(repo.clone());
        let path = dir.path().join("wt").join("t");
        assert_eq!(worktrees.leftover(&path), Leftover::Nothing);

        // As `git worktree add --no-checkout` leaves it before the
        // checkout: a record, a directory, no index.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut cmd = repo.git(&repo.workdir);
        cmd.args(["worktree", "add", "--no-checkout", "--detach", "--quiet"])
            .arg(&path)
            .arg(base.to_string());
        run_git(cmd, || "add".into()).unwrap();
        assert_eq!(worktrees.leftover(&path), Leftover::HalfMade);

        // A record without its HEAD (git killed while writing it).
        let admin = worktrees.admin_dir(&path).unwrap();
        let mut cmd = repo.git(&path);
        cmd.args(["reset", "--hard", "--quiet"]);
        run_git(cmd, || "check out".into()).unwrap();
        assert_eq!(
            worktrees.leftover(&path),
            Leftover::Made {
                admin: admin.clone()
            }
        );
        std::fs::remove_file(admin.join("HEAD")).unwrap();
        assert_eq!(worktrees.leftover(&path), Leftover::HalfMade);

        // A record with no directory holds no work (the task's result ref,
        // if any, is kept by resume as for a task without a worktree).
        std::fs::remove_dir_all(&path).unwrap();
        assert!(worktrees.admin_dir(&path).is_some());
        assert_eq!(worktrees.leftover(&path), Leftover::Nothing);
        // A directory with no record at all.
        worktrees.remove(&path, None).unwrap();
        std::fs::create_dir_all(&path).unwrap();
        assert_eq!(worktrees.leftover(&path), Leftover::HalfMade);
        std::fs::remove_dir(&path).unwrap();
        assert_eq!(worktrees.leftover(&path), Leftover::Nothing);

        // Made again over a half-made one, it is whole.
        std::fs::create_dir_all(&path).unwrap();
        let admin = worktrees.create(&path, base, &[]).unwrap();
        assert_eq!(worktrees.leftover(&path), Leftover::Made { admin });
        assert_eq!(std::fs::read_to_string(path.join("a.txt")).unwrap(), "a\n");
    }

    /// Where a filter driver is configured, git's checkout runs it on the
    /// trusted base's files it routes and on nothing a later commit routes
    /// (a task's `.gitattributes`): what the commit changes is written as
    /// the commit holds it. With no driver, nothing can run.
    #[test]
    fn a_filter_driver_runs_only_on_the_trusted_bases_files() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, base) = test_repo::with_files(
            dir.path(),
            &[
                (".gitattributes", "notes.txt filter=up\n"),
                ("notes.txt", "base\n"),
            ],
        );
        let git = repo.open().unwrap();
        let task = test_repo::commit_on(
            &git,
            base,
            ".gitattributes",
            "notes.txt filter=up\npwn.txt filter=up\n",
        );
        let task = test_repo::commit_on(&git, task, "pwn.txt", "task\n");
        assert!(!Worktrees::new(repo.clone()).may_run_filters(task));
        git.config()
            .unwrap()
            .set_str("filter.up.smudge", "tr a-z A-Z")
            .unwrap();
        let worktrees = Worktrees::new(repo.clone()).trusting(base);
        assert!(worktrees.may_run_filters(task));
        let path = dir.path().join("wt");
        worktrees.create(&path, task, &[]).unwrap();
        let read = |name: &str| std::fs::read_to_string(path.join(name)).unwrap();
        assert_eq!(read("notes.txt"), "BASE\n");
        assert_eq!(read("pwn.txt"), "task\n");
        assert_eq!(
            Worktrees::checked_out_at(&worktrees.admin_dir(&path).unwrap()),
            Some(task)
        );
        // Untrusted (a plan from elsewhere): the driver runs on nothing.
        let path = dir.path().join("wt2");
        Worktrees::new(repo.clone())
            .create(&path, task, &[])
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(path.join("notes.txt")).unwrap(),
            "base\n"
        );
    }
}
