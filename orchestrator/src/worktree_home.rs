//! Where a repository's task worktrees live: outside the repository, so
//! that a worktree behaves like a clone for every tool that walks up the
//! directory tree (cargo finding the outer `Cargo.toml` and workspace, npm
//! and node finding an outer `package.json` or `node_modules`, go finding an
//! outer `go.mod`, python tooling finding `pyproject.toml`).
//!
//! ```text
//! <root>/<repo>-<hash>/.repository        the repository this home belongs to
//! <root>/<repo>-<hash>/<run>/<task>       a task's worktree
//! <root>/<repo>-<hash>/<run>/.readonly-*  shared read-only checkouts
//! <root>/<repo>-<hash>/.cache/<tool>      build caches shared by its tasks
//! ```
//!
//! `<root>` is the user's choice (the CLI defaults it to the user's cache
//! directory); `<repo>-<hash>` keeps two repositories of the same name
//! apart. The home is opened with the same care as `.swarm` (no link below
//! it is followed), and a run's journal records where its worktrees are,
//! but a journal is only a file in the repository: swarm removes nothing in
//! a home whose `.repository` does not name this repository.
//!
//! Runs recorded before worktrees moved out (journals that name no home)
//! keep theirs in `.swarm/worktrees/<run>`.

#![allow(
    clippy::disallowed_methods,
    reason = "the worktree home's own entries, swarm's (a task's worktree is reached only through untrusted::TaskDir)"
)]

use std::path::{Path, PathBuf};

use crate::git::{GitError, Repo};
use crate::state::{Entry, State, StateError};

/// The marker naming the repository a home belongs to.
const MARKER: &str = ".repository";

/// Why a worktree home cannot be used, as a fragment after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(
        "use {root} for worktrees: it is inside the repository {repo}, where tools that walk up the directory tree (cargo, npm, go, git) would find the repository's own files"
    )]
    InsideRepository { root: PathBuf, repo: PathBuf },
    #[error("use {root} for worktrees: the path is not absolute")]
    Relative { root: PathBuf },
    #[error(
        "use worktree home {home}: it belongs to another repository ({owner}), so swarm leaves it alone"
    )]
    Foreign { home: PathBuf, owner: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Git(#[from] GitError),
}

impl HomeError {
    /// True when the user's choice of directory is wrong (exit code 2).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            Self::InsideRepository { .. } | Self::Relative { .. } | Self::Foreign { .. } => true,
            Self::State(e) => e.is_unsafe(),
            Self::Git(_) => false,
        }
    }
}

/// The directory of one repository's worktrees, opened and checked.
#[derive(Debug)]
pub struct WorktreeHome {
    dir: State,
    /// `Some("worktrees")` for the `.swarm` layout of earlier runs.
    prefix: Option<&'static str>,
}

/// `<name of the repository's directory>-<8 hex digits of its git
/// directory's path>`: readable, and distinct per repository.
pub fn repo_key(repo: &Repo) -> String {
    let common = git_dir(repo);
    let hash = git2::Oid::hash_object(
        git2::ObjectType::Blob,
        common.as_os_str().as_encoded_bytes(),
    )
    .map(|oid| oid.to_string())
    .unwrap_or_default();
    let name: String = repo
        .workdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    let name = name.trim_start_matches(['.', '-']);
    let name = if name.is_empty() { "repo" } else { name };
    format!("{name}-{}", hash.get(..8).unwrap_or("0"))
}

/// The repository's git directory, resolved: what names it for its home.
fn git_dir(repo: &Repo) -> PathBuf {
    repo.common_dir
        .canonicalize()
        .unwrap_or_else(|_| repo.common_dir.clone())
}

/// What `.repository` says: the repository's git directory.
fn marker_text(repo: &Repo) -> String {
    format!("{}\n", git_dir(repo).display())
}

/// Refuses a root inside the repository's working tree.
pub fn check_root(root: &Path, repo: &Repo) -> Result<(), HomeError> {
    if !root.is_absolute() {
        return Err(HomeError::Relative {
            root: root.to_path_buf(),
        });
    }
    // Compare what both resolve to (a root not made yet: its nearest
    // existing ancestor, plus the rest).
    let resolve = |p: &Path| -> PathBuf {
        let mut missing = Vec::new();
        let mut current = p.to_path_buf();
        loop {
            if let Ok(real) = current.canonicalize() {
                return missing.iter().rev().fold(real, |acc, part| acc.join(part));
            }
            match (current.file_name(), current.parent()) {
                (Some(name), Some(parent)) => {
                    missing.push(name.to_os_string());
                    current = parent.to_path_buf();
                }
                _ => return p.to_path_buf(),
            }
        }
    };
    let workdir = resolve(&repo.workdir);
    if resolve(root).starts_with(&workdir) {
        return Err(HomeError::InsideRepository {
            root: root.to_path_buf(),
            repo: repo.workdir.clone(),
        });
    }
    Ok(())
}

impl WorktreeHome {
    /// The home of `repo` under `root`.
    pub fn path_for(root: &Path, repo: &Repo) -> PathBuf {
        root.join(repo_key(repo))
    }

    /// Creates (or opens) the home of `repo` under `root` for a new run.
    pub fn create(root: &Path, repo: &Repo) -> Result<Self, HomeError> {
        check_root(root, repo)?;
        let key = repo_key(repo);
        let dir = State::owned(root, &key, true)?.ok_or_else(|| StateError::Io {
            action: "create",
            path: root.join(&key),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let want = marker_text(repo);
        match dir.read_file(&[MARKER])? {
            // Renamed into place: two runs of the repository started at
            // once both write it (the same text), and neither reads the
            // other's half-written one.
            None => dir.replace_file(&[MARKER], &want)?,
            Some(owner) if owner == want => {}
            Some(owner) => {
                return Err(HomeError::Foreign {
                    home: dir.path().to_path_buf(),
                    owner: owner.trim().to_string(),
                });
            }
        }
        Ok(Self { dir, prefix: None })
    }

    /// The home a run's journal recorded (`None` for runs from before
    /// homes: `.swarm/worktrees`), checked to belong to `repo`. `Ok(None)`
    /// when it is gone.
    pub fn open(recorded: Option<&Path>, repo: &Repo) -> Result<Option<Self>, HomeError> {
        let Some(home) = recorded else {
            return Ok(State::open(&repo.workdir)?.map(|dir| Self {
                dir,
                prefix: Some("worktrees"),
            }));
        };
        let (Some(parent), Some(name)) = (home.parent(), home.file_name()) else {
            return Ok(None);
        };
        let Some(dir) = State::owned(parent, &name.to_string_lossy(), false)? else {
            return Ok(None);
        };
        match dir.read_file(&[MARKER])? {
            Some(owner) if owner == marker_text(repo) => Ok(Some(Self { dir, prefix: None })),
            owner => Err(HomeError::Foreign {
                home: home.to_path_buf(),
                owner: owner.map_or_else(|| "none recorded".into(), |o| o.trim().to_string()),
            }),
        }
    }

    /// The home's path (what a run's journal records).
    pub fn path(&self) -> PathBuf {
        match self.prefix {
            Some(prefix) => self.dir.path().join(prefix),
            None => self.dir.path().to_path_buf(),
        }
    }

    fn parts<'a>(&self, rest: &[&'a str]) -> Vec<&'a str> {
        self.prefix
            .into_iter()
            .chain(rest.iter().copied())
            .collect()
    }

    /// `<home>/<run>`: where run `run`'s worktrees go.
    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.path().join(run)
    }

    /// Creates `<home>/<run>` before a run writes through its plain path;
    /// refuses a link there or at any entry in it.
    pub fn begin_run(&self, run: &str) -> Result<PathBuf, HomeError> {
        self.check_run(run)?;
        Ok(self.dir.ensure_dir(&self.parts(&[run]))?)
    }

    /// Refuses a link at `<home>/<run>` (opening it never follows one) or
    /// directly in it.
    pub fn check_run(&self, run: &str) -> Result<(), HomeError> {
        for e in self.dir.entries(&self.parts(&[run]))? {
            if e.kind == crate::state::Kind::Symlink {
                return Err(StateError::Symlink {
                    path: self.run_dir(run).join(&e.name),
                }
                .into());
            }
        }
        Ok(())
    }

    /// The entries of `<home>/<run>` (none if absent), links not followed.
    pub fn entries(&self, run: &str) -> Result<Vec<Entry>, HomeError> {
        Ok(self.dir.entries(&self.parts(&[run]))?)
    }

    /// Removes `<home>/<run>/<name>` (or `<home>/<run>` itself when `name`
    /// is `None`) without following links.
    pub fn remove(&self, run: &str, name: Option<&str>) -> Result<(), HomeError> {
        let parts = self.parts(&[run]);
        let parts = match name {
            Some(name) => parts.into_iter().chain([name]).collect(),
            None => parts,
        };
        Ok(self.dir.remove(&parts)?)
    }

    /// Bytes held under `<home>/<run>/<name>`.
    pub fn size(&self, run: &str, name: &str) -> u64 {
        self.dir.size(&self.parts(&[run, name]))
    }

    /// `<home>/.setup`, created: finished `[setup]`s, by key.
    pub fn setup_dir(&self) -> Result<PathBuf, HomeError> {
        Ok(self.dir.ensure_dir(&self.parts(&[SETUP]))?)
    }

    /// `<home>/.warm`, created: warm worktrees, by task.
    pub fn warm_dir(&self) -> Result<PathBuf, HomeError> {
        Ok(self.dir.ensure_dir(&self.parts(&[WARM]))?)
    }

    /// Bytes held by the warm worktree of task `flat`.
    pub fn warm_size(&self, flat: &str) -> u64 {
        self.dir.size(&self.parts(&[WARM, flat]))
    }

    /// Bytes held by the tmp kept with the warm worktree of task `flat`.
    pub fn warm_tmp_size(&self, flat: &str) -> u64 {
        self.dir.size(&self.parts(&[WARM, WARM_TMP, flat]))
    }

    /// Removes the tmp kept with the warm worktree of task `flat`, links
    /// not followed.
    pub fn remove_warm_tmp(&self, flat: &str) -> Result<(), HomeError> {
        Ok(self.dir.remove(&self.parts(&[WARM, WARM_TMP, flat]))?)
    }

    /// Bytes held by kept setups (`<home>/.setup`).
    pub fn setups_size(&self) -> u64 {
        self.dir.size(&self.parts(&[SETUP]))
    }

    /// Removes every kept setup no run holds ([`hold_setup`]), links not
    /// followed, and every half-made copy (`.<key>.<pid>`) whose process is
    /// gone: the bytes freed, the setups left (a run is copying one or
    /// showing it to its tasks, or a live process is still making it), and
    /// what could not be removed, each a fragment after "failed to".
    pub fn remove_setups(&self) -> (u64, Vec<PathBuf>, Vec<String>) {
        let root = self.path().join(SETUP);
        let (mut freed, mut held, mut problems) = (0, Vec::new(), Vec::new());
        let Ok(entries) = std::fs::read_dir(&root) else {
            return (freed, held, problems);
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = entry.path();
            if copy_alive(&name) == Some(true) {
                held.push(path);
                continue;
            }
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            // Held exclusively while it goes: no run starts to use it.
            let _hold = match is_dir {
                true => match hold_setup(&path, SetupHold::Exclusive) {
                    Ok(Some(hold)) => Some(hold),
                    Ok(None) => {
                        held.push(path);
                        continue;
                    }
                    Err(e) => {
                        problems.push(format!("hold the kept setup {}: {e}", path.display()));
                        continue;
                    }
                },
                false => None,
            };
            let parts = self.parts(&[SETUP, &name]);
            let bytes = self.dir.size(&parts);
            match self.dir.remove(&parts) {
                Ok(()) => freed += bytes,
                Err(e) => problems.push(e.to_string()),
            }
        }
        (freed, held, problems)
    }

    /// `<home>/.cache/<tool>`, created, swarm's own: a build cache the
    /// repository's tasks share, each class of rights in a directory of
    /// its own below it (`run::local::own_caches`), and each task with a
    /// cache of its own too: those are handed to the identity sandboxed
    /// tasks run as, never this one, which no task is shown. An older
    /// swarm handed it over (root's tasks run as nobody): taken back.
    pub fn cache_dir(&self, tool: &str) -> Result<PathBuf, HomeError> {
        let path = self.dir.ensure_dir(&self.parts(&[".cache", tool]))?;
        own_dir(&path)?;
        Ok(path)
    }

    /// `<home>/.cache/<phase>/<tool>`, created: the build cache of one
    /// actor with more rights than a task (`@setup`, `@verify`), which no
    /// task is shown: `<home>/.cache/` is swarm's, and a task sees only its
    /// tool's directory (or its own below it), never this one; or of the
    /// tasks of an untrusted origin (`@untrusted`), which no other task is
    /// shown. Handed to `owner` as [`WorktreeHome::cache_dir`] does.
    pub fn own_cache_dir(
        &self,
        phase: &str,
        tool: &str,
        owner: Option<(u32, u32)>,
    ) -> Result<PathBuf, HomeError> {
        let path = self.dir.ensure_dir(&self.parts(&[CACHE, phase, tool]))?;
        match owner {
            Some(owner) => chown_dir(&path, owner, "hand over")?,
            None => own_dir(&path)?,
        }
        Ok(path)
    }

    /// The build caches in this home: `(tool, path, bytes)` for each
    /// `<home>/.cache/<tool>`, links not followed (a link there is listed,
    /// and removed, as itself); not the records of whose the tasks' own
    /// caches are ([`LINEAGE_RECORDS`], removed with the caches by
    /// [`WorktreeHome::remove_records`]).
    pub fn caches(&self) -> Result<Vec<(String, PathBuf, u64)>, HomeError> {
        let cache = self.path().join(CACHE);
        let mut out: Vec<_> = self
            .dir
            .entries(&self.parts(&[CACHE]))?
            .into_iter()
            .filter(|e| e.name != LINEAGE_RECORDS)
            .map(|e| {
                let bytes = self.dir.size(&self.parts(&[CACHE, &e.name]));
                (e.name.clone(), cache.join(&e.name), bytes)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes the build cache `<home>/.cache/<tool>`, links not followed.
    pub fn remove_cache(&self, tool: &str) -> Result<(), HomeError> {
        Ok(self.dir.remove(&self.parts(&[CACHE, tool]))?)
    }

    /// Removes the records of whose the tasks' own caches are (with the
    /// caches: a record left alone would only empty a cache again).
    pub fn remove_records(&self) -> Result<(), HomeError> {
        self.remove_cache(LINEAGE_RECORDS)
    }
}

/// Where, under a home's `.cache/`, swarm records whose lineage each
/// task's own build cache is (`run::local::own_caches`): not a cache.
pub const LINEAGE_RECORDS: &str = "@lineage";

/// Where a home keeps its build caches.
const CACHE: &str = ".cache";
/// Where finished `[setup]`s are kept, by key.
const SETUP: &str = ".setup";
/// Where warm worktrees are kept, by task.
const WARM: &str = ".warm";
/// How a kept setup's directory is held ([`hold_setup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupHold {
    /// While a run copies it into a worktree or shows it as an overlay.
    Shared,
    /// To remove it.
    Exclusive,
}

/// Makes the directory `path` (of swarm's home, no link on its path)
/// root's again where it is another's: one an older swarm, run as root,
/// handed to the sandbox's identity (only root hands anything over).
fn own_dir(path: &Path) -> Result<(), HomeError> {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if !uid.is_root() {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(path).map_err(|source| StateError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    if meta.uid() == uid.as_raw() {
        return Ok(());
    }
    chown_dir(path, (uid.as_raw(), gid.as_raw()), "take back")
}

/// Makes `uid:gid` the owner of the directory `path`, of swarm's home:
/// the path has no link in it (checked component by component when it
/// was made, and only swarm writes above it).
fn chown_dir(path: &Path, (uid, gid): (u32, u32), action: &'static str) -> Result<(), HomeError> {
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(|e| {
        StateError::Io {
            action,
            path: path.to_path_buf(),
            source: std::io::Error::from(e),
        }
        .into()
    })
}

/// Holds the setup kept at `dir` (`<home>/.setup/<key>`) by a `flock` on
/// the directory: shared while a run copies it or shows it to a
/// worktree's commands as an overlay, exclusive to remove it (an older
/// one of its family, `swarm clean --warm`), so that nothing removes a
/// setup a running task is shown, nor one half copied. Never waits:
/// `None` when it is held the other way.
pub fn hold_setup(
    dir: &Path,
    how: SetupHold,
) -> std::io::Result<Option<nix::fcntl::Flock<std::fs::File>>> {
    use nix::fcntl::{FlockArg, OFlag};
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits())
        .open(dir)?;
    let arg = match how {
        SetupHold::Shared => FlockArg::LockSharedNonblock,
        SetupHold::Exclusive => FlockArg::LockExclusiveNonblock,
    };
    crate::untrusted::try_lock(file, arg)
}

/// Whether the process making the copy `name` in `<home>/.setup`
/// (`.<key>.<pid>`, renamed into place when done) is alive; `None` if
/// `name` is not such a copy.
pub fn copy_alive(name: &str) -> Option<bool> {
    let pid = name
        .strip_prefix('.')
        .and_then(|rest| rest.rsplit_once('.'))
        .and_then(|(_, pid)| pid.parse::<i32>().ok())?;
    Some(!matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    ))
}

/// The directory of the warm worktrees' kept tmps, in `<home>/.warm`
/// (hidden: `run::warm::list` skips it).
pub const WARM_TMP: &str = ".tmp";

/// A worktree home whose repository no longer exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoneHome {
    /// `<root>/<repo>-<hash>`.
    pub path: PathBuf,
    /// The git directory its `.repository` named.
    pub repository: String,
    /// Bytes it held.
    pub bytes: u64,
}

/// What [`remove_gone`] did under a root.
#[derive(Debug, Default)]
pub struct GoneHomes {
    /// Homes removed.
    pub removed: Vec<GoneHome>,
    /// Homes whose repository still exists (left alone).
    pub live: usize,
    /// Entries of the root that are not homes swarm can vouch for (no
    /// marker, a link, a file): left alone.
    pub unknown: Vec<PathBuf>,
    /// What could not be removed, each as a fragment after "failed to".
    pub problems: Vec<String>,
}

/// Removes every home under `root` whose `.repository` names a git
/// directory that no longer exists. Only directories directly under
/// `root` that carry the marker are candidates; nothing is followed
/// through a link, and a home whose repository may still exist (any
/// answer but "not found") is kept.
pub fn remove_gone(root: &Path) -> Result<GoneHomes, HomeError> {
    let mut out = GoneHomes::default();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(StateError::Io {
                action: "list",
                path: root.to_path_buf(),
                source,
            }
            .into());
        }
    };
    let mut names: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        // `file_type` does not follow a link.
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        match (is_dir, entry.file_name().into_string()) {
            (true, Ok(name)) => names.push(name),
            _ => out.unknown.push(path),
        }
    }
    names.sort();
    for name in names {
        let path = root.join(&name);
        match gone_home(root, &name) {
            Ok(Some((home, repository))) => {
                let bytes = home_size(&home);
                match empty_home(&home).and_then(|()| {
                    // The home is empty now; `remove_dir` removes a
                    // directory, never what a link there points to.
                    std::fs::remove_dir(&path).map_err(|source| {
                        StateError::Io {
                            action: "remove",
                            path: path.clone(),
                            source,
                        }
                        .into()
                    })
                }) {
                    Ok(()) => out.removed.push(GoneHome {
                        path,
                        repository,
                        bytes,
                    }),
                    Err(e) => out.problems.push(e.to_string()),
                }
            }
            Ok(None) => out.live += 1,
            Err(GoneError::Unknown) => out.unknown.push(path),
            Err(GoneError::Home(e)) => out.problems.push(e.to_string()),
        }
    }
    Ok(out)
}

enum GoneError {
    /// Not a home swarm made (no marker, or one it cannot read as a path).
    Unknown,
    Home(HomeError),
}

impl From<StateError> for GoneError {
    fn from(e: StateError) -> Self {
        Self::Home(e.into())
    }
}

/// `<root>/<name>`, opened without following a link, with the git
/// directory its marker names, if that no longer exists (`None`: it does,
/// or may).
fn gone_home(root: &Path, name: &str) -> Result<Option<(State, String)>, GoneError> {
    let Some(home) = State::owned(root, name, false)? else {
        return Ok(None);
    };
    let marker = match home.read_file(&[MARKER]) {
        Ok(Some(marker)) => marker,
        Ok(None) | Err(StateError::Symlink { .. }) => return Err(GoneError::Unknown),
        Err(e) => return Err(e.into()),
    };
    let repository = marker.trim_end_matches('\n').to_string();
    let git_dir = Path::new(&repository);
    if repository.is_empty() || repository.contains('\n') || !git_dir.is_absolute() {
        return Err(GoneError::Unknown);
    }
    match std::fs::symlink_metadata(git_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some((home, repository))),
        _ => Ok(None),
    }
}

fn home_size(home: &State) -> u64 {
    home.entries(&[])
        .unwrap_or_default()
        .iter()
        .map(|e| home.size(&[e.name.as_str()]))
        .sum()
}

/// Removes everything in `home`, links not followed.
fn empty_home(home: &State) -> Result<(), HomeError> {
    for e in home.entries(&[])? {
        home.remove(&[e.name.as_str()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs of one repository started at the same moment make its
    /// home together: both get it, neither sees the other's half-made
    /// `.repository` as a foreign one.
    #[test]
    fn two_processes_making_one_home_at_once_both_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, _) = crate::git::test_repo::with_files(dir.path(), &[("a", "a\n")]);
        for round in 0..200 {
            let root = dir.path().join(format!("homes-{round}"));
            let barrier = std::sync::Barrier::new(2);
            std::thread::scope(|s| {
                let made: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            WorktreeHome::create(&root, &repo).map(|_| ())
                        })
                    })
                    .collect();
                for m in made {
                    m.join().unwrap().unwrap();
                }
            });
        }
    }

    /// A shared build cache's directory is swarm's: a task is shown only a
    /// directory below it (its class's, its own), and one an older swarm
    /// handed to the sandbox's identity is taken back.
    #[test]
    fn a_shared_caches_directory_is_swarms_own() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (repo, _) = crate::git::test_repo::with_files(dir.path(), &[("a", "a\n")]);
        let home = WorktreeHome::create(&dir.path().join("homes"), &repo).unwrap();
        let cache = home.cache_dir("npm").unwrap();
        let ours =
            |p: &Path| std::fs::metadata(p).unwrap().uid() == nix::unistd::geteuid().as_raw();
        assert!(ours(&cache));
        if !nix::unistd::geteuid().is_root() {
            // Only root gives a directory away; CI runs the tests as root.
            return;
        }
        let nobody = Some(nix::unistd::Uid::from_raw(65534));
        nix::unistd::chown(&cache, nobody, None).unwrap();
        let untrusted = home.own_cache_dir("@untrusted", "npm", None).unwrap();
        nix::unistd::chown(&untrusted, nobody, None).unwrap();
        assert_eq!(home.cache_dir("npm").unwrap(), cache);
        assert_eq!(
            home.own_cache_dir("@untrusted", "npm", None).unwrap(),
            untrusted
        );
        assert!(ours(&cache) && ours(&untrusted));
    }
}
