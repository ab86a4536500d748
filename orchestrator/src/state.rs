//! swarm's own state directory, `.swarm/` at the root of the repository's
//! main working tree, and the only safe ways to touch it.
//!
//! ```text
//! .swarm/runs/latest                 name of the newest run
//! .swarm/runs/<run>/                 lock, events.jsonl, report.json, plan.toml
//! .swarm/runs/<run>/logs/<task>/     <attempt>.out, .err, .transcript.jsonl
//! .swarm/runs/<run>/tmp/<task>/      a task's private tmp (HOME, TMPDIR)
//! .swarm/worktrees/<run>/<task>      a task's worktree, in runs from before
//!                                    worktrees moved out of the repository
//! ```
//!
//! The directory sits in a checkout, and a checkout is whatever a branch or
//! a pull request says: it can hold a symbolic link at `.swarm` or anywhere
//! below it (`.swarm/worktrees/<run> -> /home/me`), and swarm writing,
//! truncating or deleting through such a link would act outside the
//! repository. So swarm refuses a `.swarm` that git tracks, and every path
//! of the layout is resolved one component at a time, relative to a
//! directory descriptor, with `O_NOFOLLOW`: a link anywhere is an error
//! naming it, never followed. Removal goes through cap-std's
//! `remove_dir_all`, which unlinks links inside the tree rather than
//! following them.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};

use crate::git::{GitError, Repo};

/// The state directory's name, at the root of the main working tree.
pub use crate::layout::STATE_DIR;

/// Why swarm's state cannot be used, as a fragment after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "use swarm's state directory: {path} is a symbolic link, and swarm never follows links in its own state"
    )]
    Symlink { path: PathBuf },
    #[error("use swarm's state directory: {path} is not a directory")]
    NotDir { path: PathBuf },
    #[error(
        "use swarm's state directory: {path} is not a regular file (a FIFO or a device is never read: it could hang every run)\nhelp: remove it: swarm writes it again"
    )]
    NotFile { path: PathBuf },
    #[error(
        "use swarm's state directory {path}: git tracks `{tracked}` in it, so whoever wrote the commit controls swarm's state"
    )]
    Tracked { path: PathBuf, tracked: String },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl StateError {
    /// True when the state directory is unsafe to use (exit code 2: the
    /// repository's content, not a failure of the machine).
    pub fn is_unsafe(&self) -> bool {
        matches!(
            self,
            Self::Symlink { .. }
                | Self::NotDir { .. }
                | Self::NotFile { .. }
                | Self::Tracked { .. }
        )
    }

    /// What the user can do about an unsafe state directory.
    pub fn help(&self) -> Option<String> {
        match self {
            Self::Symlink { path } | Self::NotDir { path } => Some(format!(
                "remove it (`rm {}`) if you did not make it; swarm creates what it needs",
                path.display()
            )),
            Self::Tracked { .. } => Some(
                "stop tracking it (`git rm -r --cached .swarm` and commit), then remove what the checkout put there; \
                 swarm's state is never part of a repository's content"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// An open, checked `.swarm` directory.
#[derive(Debug)]
pub struct State {
    /// `<workdir>/.swarm`, for messages and for callers that need paths.
    path: PathBuf,
    dir: OwnedFd,
}

/// What an entry of a state directory is, never following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

/// One entry of a state directory.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(Errno) -> StateError {
    let path = path.to_path_buf();
    move |e| StateError::Io {
        action,
        path,
        source: io::Error::from(e),
    }
}

/// What `name` in `parent` is, without following it; `None` if absent.
fn kind_at(parent: impl AsFd, name: &str, path: &Path) -> Result<Option<Kind>, StateError> {
    match nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            Ok(Some(if kind == SFlag::S_IFDIR {
                Kind::Dir
            } else if kind == SFlag::S_IFLNK {
                Kind::Symlink
            } else if kind == SFlag::S_IFREG {
                Kind::File
            } else {
                Kind::Other
            }))
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// Opens directory `name` of `parent` without following a link; `None` if
/// it does not exist.
fn open_dir_at(parent: impl AsFd, name: &str, path: &Path) -> Result<Option<OwnedFd>, StateError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match nix::fcntl::openat(&parent, name, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP | Errno::ENOTDIR) => match kind_at(&parent, name, path)? {
            Some(Kind::Symlink) => Err(StateError::Symlink {
                path: path.to_path_buf(),
            }),
            _ => Err(StateError::NotDir {
                path: path.to_path_buf(),
            }),
        },
        Err(e) => Err(io_err("open", path)(e)),
    }
}

/// Opens directory `name` of `parent`, creating it if needed, without
/// following a link.
fn ensure_dir_at(parent: impl AsFd, name: &str, path: &Path) -> Result<OwnedFd, StateError> {
    match nix::sys::stat::mkdirat(&parent, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(io_err("create", path)(e)),
    }
    open_dir_at(&parent, name, path)?.ok_or_else(|| StateError::Io {
        action: "create",
        path: path.to_path_buf(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })
}

impl State {
    /// The state directory of the repository whose main working tree is
    /// `workdir`, checked but not created: `None` if swarm never ran here.
    pub fn open(workdir: &Path) -> Result<Option<Self>, StateError> {
        let top = open_workdir(workdir)?;
        let path = workdir.join(STATE_DIR);
        Ok(open_dir_at(&top, STATE_DIR, &path)?.map(|dir| Self { path, dir }))
    }

    /// The state directory of `workdir`, created if needed.
    pub fn create(workdir: &Path) -> Result<Self, StateError> {
        let top = open_workdir(workdir)?;
        let path = workdir.join(STATE_DIR);
        let dir = ensure_dir_at(&top, STATE_DIR, &path)?;
        Ok(Self { path, dir })
    }

    /// A directory swarm owns outside the repository (a repository's
    /// worktree home): `name` in `parent`. `parent` is the user's own path,
    /// links and all (created if `create`); `name` is opened, and everything
    /// below it later, never through a link. `None` if it does not exist
    /// (and `create` is false).
    #[allow(
        clippy::disallowed_methods,
        reason = "the worktree root the person chose (links and all), where swarm makes its home"
    )]
    pub fn owned(parent: &Path, name: &str, create: bool) -> Result<Option<Self>, StateError> {
        if create {
            std::fs::create_dir_all(parent).map_err(|source| StateError::Io {
                action: "create",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let top = match open_workdir(parent) {
            Ok(top) => top,
            Err(StateError::Io { source, .. })
                if !create && source.kind() == io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let path = parent.join(name);
        let dir = match create {
            true => Some(ensure_dir_at(&top, name, &path)?),
            false => open_dir_at(&top, name, &path)?,
        };
        Ok(dir.map(|dir| Self { path, dir }))
    }

    /// The content of the file at `parts` (`None` if absent); a link there
    /// is refused, never followed.
    pub fn read_file(&self, parts: &[&str]) -> Result<Option<String>, StateError> {
        let Some((last, parents)) = parts.split_last() else {
            return Ok(None);
        };
        let path = self.path_of(parts);
        let Some(parent) = self.dir(parents, false)? else {
            return Ok(None);
        };
        // Non-blocking: a FIFO put where a file belongs opens at once (and
        // is refused below) rather than wait for a writer for ever.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match nix::fcntl::openat(&parent, *last, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(StateError::Symlink { path }),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let stat = nix::sys::stat::fstat(&fd).map_err(io_err("read", &path))?;
        if stat.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
            return Err(StateError::NotFile { path });
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).map_err(
            |source| StateError::Io {
                action: "read",
                path,
                source,
            },
        )?;
        Ok(Some(text))
    }

    /// Creates the file at `parts` with `content`; it must not exist yet
    /// (so nothing is ever written through a link).
    pub fn create_file(&self, parts: &[&str], content: &str) -> Result<(), StateError> {
        let Some((last, parents)) = parts.split_last() else {
            return Ok(());
        };
        let path = self.path_of(parts);
        let parent = self.made_dir(parents, &path)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&parent, *last, flags, Mode::from_bits_truncate(0o644))
            .map_err(io_err("create", &path))?;
        std::io::Write::write_all(&mut std::fs::File::from(fd), content.as_bytes()).map_err(
            |source| StateError::Io {
                action: "write",
                path,
                source,
            },
        )
    }

    /// Refuses a state directory that git tracks: a checkout would then
    /// decide what is in it. Also refuses when nothing of it exists yet,
    /// since a checkout could still put it there.
    pub fn check_untracked(repo: &Repo) -> Result<(), StateError> {
        let git = repo.open()?;
        let index = git.index().map_err(|e| StateError::Io {
            action: "read the index of",
            path: repo.workdir.clone(),
            source: io::Error::other(e.message().to_string()),
        })?;
        let tracked = index.iter().find(|e| {
            e.path == STATE_DIR.as_bytes()
                || (e.path.starts_with(STATE_DIR.as_bytes())
                    && e.path.get(STATE_DIR.len()) == Some(&b'/'))
        });
        match tracked {
            None => Ok(()),
            Some(entry) => Err(StateError::Tracked {
                path: repo.workdir.join(STATE_DIR),
                tracked: String::from_utf8_lossy(&entry.path).into_owned(),
            }),
        }
    }

    /// `<workdir>/.swarm`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn path_of(&self, parts: &[&str]) -> PathBuf {
        parts.iter().fold(self.path.clone(), |p, part| p.join(part))
    }

    /// Opens the directory at `parts` below `.swarm`, one component at a
    /// time and never through a link; `None` if some part does not exist
    /// (and `create` is false).
    /// The directory at `parts`, made if missing, for writing the file at
    /// `path` (named in the error).
    fn made_dir(&self, parts: &[&str], path: &Path) -> Result<OwnedFd, StateError> {
        self.dir(parts, true)?.ok_or_else(|| StateError::Io {
            action: "create",
            path: path.to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotFound),
        })
    }

    fn dir(&self, parts: &[&str], create: bool) -> Result<Option<OwnedFd>, StateError> {
        let mut current = self.dir.try_clone().map_err(|source| StateError::Io {
            action: "open",
            path: self.path.clone(),
            source,
        })?;
        for i in 0..parts.len() {
            let path = self.path_of(&parts[..=i]);
            let next = if create {
                Some(ensure_dir_at(&current, parts[i], &path)?)
            } else {
                open_dir_at(&current, parts[i], &path)?
            };
            match next {
                Some(fd) => current = fd,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// Creates the directory at `parts` below `.swarm` (and its parents)
    /// and returns its path, which then has no link in it.
    pub fn ensure_dir(&self, parts: &[&str]) -> Result<PathBuf, StateError> {
        self.dir(parts, true)?;
        Ok(self.path_of(parts))
    }

    /// The entries of the directory at `parts` (none if it does not
    /// exist), sorted by name, each with its kind (links not followed).
    pub fn entries(&self, parts: &[&str]) -> Result<Vec<Entry>, StateError> {
        let Some(fd) = self.dir(parts, false)? else {
            return Ok(Vec::new());
        };
        let path = self.path_of(parts);
        let dir = cap_std::fs::Dir::from(fd);
        let read = dir.entries().map_err(|source| StateError::Io {
            action: "list",
            path: path.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in read {
            let entry = entry.map_err(|source| StateError::Io {
                action: "list",
                path: path.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = match entry.file_type() {
                Ok(t) if t.is_symlink() => Kind::Symlink,
                Ok(t) if t.is_dir() => Kind::Dir,
                Ok(t) if t.is_file() => Kind::File,
                _ => Kind::Other,
            };
            out.push(Entry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Refuses a link at `parts` or anywhere above it (absent is fine).
    fn check_no_link(&self, parts: &[&str]) -> Result<(), StateError> {
        let Some((last, parents)) = parts.split_last() else {
            return Ok(());
        };
        let Some(parent) = self.dir(parents, false)? else {
            return Ok(());
        };
        let path = self.path_of(parts);
        match kind_at(&parent, last, &path)? {
            Some(Kind::Symlink) => Err(StateError::Symlink { path }),
            _ => Ok(()),
        }
    }

    /// Checks every path of run `run`'s layout that swarm creates, writes,
    /// reads or removes: none may be a link (what is absent is fine). A
    /// task's own files (inside its worktree and tmp) are not swarm's state
    /// and are not looked at.
    pub fn check_run(&self, run: &str) -> Result<(), StateError> {
        self.check_no_link(&[crate::layout::RUNS, crate::layout::LATEST])?;
        self.check_no_link(&["worktrees", run])?;
        for e in self.entries(&["worktrees", run])? {
            self.check_no_link(&["worktrees", run, &e.name])?;
        }
        self.check_no_link(&[crate::layout::RUNS, run])?;
        for e in self.entries(&[crate::layout::RUNS, run])? {
            self.check_no_link(&[crate::layout::RUNS, run, &e.name])?;
        }
        for sub in [crate::layout::LOGS, crate::layout::TMP] {
            for e in self.entries(&[crate::layout::RUNS, run, sub])? {
                self.check_no_link(&[crate::layout::RUNS, run, sub, &e.name])?;
                if sub == crate::layout::LOGS && e.kind == Kind::Dir {
                    for f in self.entries(&[crate::layout::RUNS, run, sub, &e.name])? {
                        self.check_no_link(&[crate::layout::RUNS, run, sub, &e.name, &f.name])?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Creates what run `run` writes into before it starts (its directory,
    /// `logs`, `tmp`) and records it as the latest run; refuses if any of
    /// it is or passes through a link. (Its worktrees are outside the
    /// repository: see [`crate::worktree_home`].)
    pub fn begin_run(&self, run: &str) -> Result<(), StateError> {
        self.check_run(run)?;
        for parts in [
            &[crate::layout::RUNS, run, crate::layout::LOGS][..],
            &[crate::layout::RUNS, run, crate::layout::TMP],
        ] {
            self.dir(parts, true)?;
        }
        self.set_latest(run)
    }

    /// Writes `runs/latest` (see [`State::replace_file`]: a link there is
    /// replaced, never written through).
    pub fn set_latest(&self, run: &str) -> Result<(), StateError> {
        self.replace_file(
            &[crate::layout::RUNS, crate::layout::LATEST],
            &format!("{run}\n"),
        )
    }

    /// Replaces the file at `parts` with `content`: a new file of its own
    /// name renamed over it, so a reader sees the old content or the new,
    /// never half, and a link there is replaced, never written through.
    pub fn replace_file(&self, parts: &[&str], content: &str) -> Result<(), StateError> {
        let Some((last, parents)) = parts.split_last() else {
            return Ok(());
        };
        let path = self.path_of(parts);
        let parent = self.made_dir(parents, &path)?;
        // Of this process and this moment: concurrent writers (two runs)
        // never share a temporary file, and the last rename wins.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = format!(".{last}.{}.{nanos}", std::process::id());
        let mut tmp_parts: Vec<&str> = parents.to_vec();
        tmp_parts.push(&tmp);
        let _ = nix::unistd::unlinkat(
            &parent,
            tmp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        if let Err(e) = self.create_file(&tmp_parts, content) {
            let _ = nix::unistd::unlinkat(
                &parent,
                tmp.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            return Err(e);
        }
        nix::fcntl::renameat(&parent, tmp.as_str(), &parent, *last).map_err(|e| {
            let _ = nix::unistd::unlinkat(
                &parent,
                tmp.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            io_err("write", &path)(e)
        })
    }

    /// The run named in `runs/latest`, if any (a link there is refused;
    /// a name that is not a valid run name counts as none).
    pub fn latest(&self) -> Result<Option<String>, StateError> {
        let text = self
            .read_file(&[crate::layout::RUNS, crate::layout::LATEST])?
            .unwrap_or_default();
        let name = text.trim();
        Ok(crate::ids::is_valid_run_name(name).then(|| name.to_string()))
    }

    /// Every run recorded here (directories under `runs/`), by name.
    pub fn runs(&self) -> Result<Vec<String>, StateError> {
        let mut names = Vec::new();
        for e in self.entries(&[crate::layout::RUNS])? {
            match e.kind {
                Kind::Dir if crate::ids::is_valid_run_name(&e.name) => names.push(e.name),
                Kind::Symlink => {
                    return Err(StateError::Symlink {
                        path: self.path_of(&[crate::layout::RUNS, &e.name]),
                    });
                }
                _ => {}
            }
        }
        Ok(names)
    }

    /// Removes whatever is at `parts` (a tree, a file or a link) without
    /// following any link: a link at `parts` is unlinked, links inside the
    /// tree are unlinked, nothing outside it is touched. Absent is fine.
    pub fn remove(&self, parts: &[&str]) -> Result<(), StateError> {
        let Some((last, parents)) = parts.split_last() else {
            return Ok(());
        };
        let path = self.path_of(parts);
        let Some(parent) = self.dir(parents, false)? else {
            return Ok(());
        };
        match kind_at(&parent, last, &path)? {
            None => Ok(()),
            Some(Kind::Dir) => {
                cap_std::fs::Dir::from(parent)
                    .remove_dir_all(last)
                    .map_err(|source| StateError::Io {
                        action: "remove",
                        path,
                        source,
                    })
            }
            Some(_) => {
                nix::unistd::unlinkat(&parent, *last, nix::unistd::UnlinkatFlags::NoRemoveDir)
                    .map_err(io_err("remove", &path))
            }
        }
    }

    /// Bytes of the files at `parts` (not following links).
    pub fn size(&self, parts: &[&str]) -> u64 {
        let Some((last, parents)) = parts.split_last() else {
            return 0;
        };
        let Ok(Some(parent)) = self.dir(parents, false) else {
            return 0;
        };
        let dir = cap_std::fs::Dir::from(parent);
        size_in(&dir, Path::new(last))
    }
}

fn size_in(dir: &cap_std::fs::Dir, rel: &Path) -> u64 {
    let Ok(meta) = dir.symlink_metadata(rel) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    dir.read_dir(rel)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| size_in(dir, &rel.join(e.file_name())))
                .sum()
        })
        .unwrap_or(0)
}

/// The main working tree itself: the user's own path, links and all.
fn open_workdir(workdir: &Path) -> Result<OwnedFd, StateError> {
    nix::fcntl::open(
        workdir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err("open", workdir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let work = root.path().join("repo");
        let outside = root.path().join("outside");
        for d in [&work, &outside] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(outside.join("keep"), "keep").unwrap_or_else(|e| panic!("{e}"));
        (root, work, outside)
    }

    #[test]
    fn a_link_anywhere_in_the_layout_is_refused_and_not_followed() {
        let (_root, work, outside) = setup();
        let state = State::create(&work).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(work.join(".swarm/worktrees")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&outside, work.join(".swarm/worktrees/r"))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = state.begin_run("r").err();
        assert!(
            matches!(&err, Some(StateError::Symlink { path }) if path.ends_with(".swarm/worktrees/r")),
            "{err:?}"
        );
        // Removal unlinks the link and leaves its target alone.
        state
            .remove(&["worktrees", "r"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(outside.join("keep").exists());
        assert!(
            work.join(".swarm/worktrees")
                .read_dir()
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        );
    }

    /// Issue 75: a FIFO where the durations file belongs is refused at
    /// once, where opening it waited for a writer and hung every run.
    #[test]
    fn a_fifo_in_the_state_directory_is_refused_not_waited_on() {
        let (_root, work, _outside) = setup();
        let state = State::create(&work).unwrap_or_else(|e| panic!("{e}"));
        let fifo = work.join(".swarm").join(crate::layout::DURATIONS);
        nix::unistd::mkfifo(
            &fifo,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let started = std::time::Instant::now();
        let err = state.read_file(&[crate::layout::DURATIONS]).err();
        assert!(matches!(&err, Some(StateError::NotFile { .. })), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The history is a hint: a run goes on without it, at once.
        let _history = crate::durations::History::load(&work);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn latest_is_replaced_not_written_through() {
        let (_root, work, outside) = setup();
        let state = State::create(&work).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(work.join(".swarm/runs")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(outside.join("keep"), work.join(".swarm/runs/latest"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(state.latest(), Err(StateError::Symlink { .. })));
        state.set_latest("r").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).unwrap_or_default(),
            "keep"
        );
        assert_eq!(state.latest().ok().flatten().as_deref(), Some("r"));
    }

    #[test]
    fn a_linked_state_directory_is_refused() {
        let (_root, work, outside) = setup();
        std::os::unix::fs::symlink(&outside, work.join(".swarm")).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            State::open(&work),
            Err(StateError::Symlink { .. })
        ));
        assert!(matches!(
            State::create(&work),
            Err(StateError::Symlink { .. })
        ));
    }

    #[test]
    fn removal_does_not_follow_links_inside_the_tree() {
        let (_root, work, outside) = setup();
        let state = State::create(&work).unwrap_or_else(|e| panic!("{e}"));
        let dir = state
            .ensure_dir(&[crate::layout::RUNS, "r", "tmp", "t"])
            .unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&outside, dir.join("out")).unwrap_or_else(|e| panic!("{e}"));
        state
            .remove(&[crate::layout::RUNS, "r", crate::layout::TMP])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(outside.join("keep").exists());
        assert!(!work.join(".swarm/runs/r/tmp").exists());
    }
}
