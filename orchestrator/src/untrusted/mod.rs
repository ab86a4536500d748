//! Files a task leaves for the coordinator, and files that came with a
//! repository, read (and written) as hostile input.
//!
//! The coordinator often runs as root, and whatever a task leaves in its
//! worktree or private tmp (a subtask request, the worktree's `.git`
//! link) was written by code swarm does not trust. Such a file is read
//! only through [`read`]: opened relative to a directory the coordinator
//! owns, walked one component at a time without following a link (a link
//! to a host file would make root read it for the task), only if it is a
//! regular file (a FIFO would block the reader for good, a device might
//! never end), and never past a size cap, checked before reading and held
//! while reading (a sparse file of any size costs nothing to make).
//! [`read_with_deadline`] does the same on the blocking pool, so that a
//! file system that hangs cannot stop the dispatcher.
//!
//! A refusal names the path and what was wrong with it, never what the
//! file (or a link's target) holds.
//!
//! A directory a task could have written (its tmp, its worktree) is
//! touched only through [`TaskDir`] ([`task_dir`]): held open, reached
//! without following a link, files only ever made new.

use std::fmt;
use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::Mode;

mod task_dir;

pub use task_dir::{EntryKind, TaskDir, TreeLimits};

/// How much of a file a task left swarm reads by default.
pub const DEFAULT_MAX_SIZE: u64 = 1 << 20;

/// How long reading a file a task left may take by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// What may be read, and what the file is called in messages.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest file read, in bytes.
    pub max_size: u64,
    /// How the file is named in a refusal: "is 2 MiB, more than the 1 MiB
    /// {what} may be".
    pub what: &'static str,
}

impl Limits {
    /// The default cap, for a file called `what`.
    pub const fn new(what: &'static str) -> Self {
        Self {
            max_size: DEFAULT_MAX_SIZE,
            what,
        }
    }
}

/// Why a file a task left was not read.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedError {
    /// Nothing is there (often fine: the task left nothing).
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("{} is a symbolic link; swarm does not follow links where it reads or writes files it did not make", path.display())]
    Link { path: PathBuf },
    #[error("{} is not a regular file (it is {kind})", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is {}, more than the {} {what} may be", path.display(), Size(*size), Size(*max))]
    TooLarge {
        path: PathBuf,
        size: u64,
        max: u64,
        what: &'static str,
    },
    #[error("{} is there already; swarm writes a file for a task only where none is", path.display())]
    Taken { path: PathBuf },
    #[error("{} has other names (hard links); swarm does not write to such a file", path.display())]
    HardLink { path: PathBuf },
    #[error("{} is not a plain relative path (`{name}`)", dir.display())]
    BadName { dir: PathBuf, name: String },
    #[error("{} could not be read: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{} could not be read within {}", path.display(), humantime::format_duration(*deadline))]
    TimedOut { path: PathBuf, deadline: Duration },
}

impl UntrustedError {
    /// Whether nothing was there.
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing { .. })
    }
}

/// A size as people write it: whole MiB or KiB when it is one, else bytes.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= 1 << 30 && n % (1 << 30) == 0 => write!(f, "{} GiB", n >> 30),
            n if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{} MiB", n >> 20),
            n if n >= 1 << 10 && n % (1 << 10) == 0 => write!(f, "{} KiB", n >> 10),
            n if n >= 1 << 20 => write!(f, "{:.1} MiB", n as f64 / f64::from(1 << 20)),
            n => write!(f, "{n} bytes"),
        }
    }
}

/// Reads `rel` (one or more plain components, `/`-separated) under `dir`
/// (a directory the coordinator owns, itself not a link), within `limits`.
pub fn read(dir: &Path, rel: &str, limits: Limits) -> Result<Vec<u8>, UntrustedError> {
    let (file, path, _) = open_regular(dir, rel)?;
    read_open(file, path, limits)
}

/// Reads `file` (opened without following a link, at `path`) if it is a
/// regular file within `limits`.
fn read_open(
    file: std::fs::File,
    path: PathBuf,
    limits: Limits,
) -> Result<Vec<u8>, UntrustedError> {
    let meta = file.metadata().map_err(|e| UntrustedError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(UntrustedError::NotRegular {
            path,
            kind: kind(&meta),
        });
    }
    let io = |e: std::io::Error| UntrustedError::Io {
        path: path.clone(),
        message: e.to_string(),
    };
    let too_large = |size: u64| UntrustedError::TooLarge {
        path: path.clone(),
        size,
        max: limits.max_size,
        what: limits.what,
    };
    if meta.len() > limits.max_size {
        return Err(too_large(meta.len()));
    }
    // The file may grow between the check and the read: one byte past the
    // cap is enough to know.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limits.max_size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limits.max_size {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The path of `rel` under `dir`, once it is known to be a regular file
/// reached without a link: for a file that is read later by something
/// that takes a path (a WASM module).
pub fn regular_file(dir: &Path, rel: &str) -> Result<PathBuf, UntrustedError> {
    open_regular(dir, rel).map(|(_, path, _)| path)
}

/// The plain components of `rel`, or why it is not a plain relative path.
fn components<'a>(dir: &Path, rel: &'a str) -> Result<Vec<&'a str>, UntrustedError> {
    let components: Vec<&str> = rel.split('/').collect();
    if components
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Err(UntrustedError::BadName {
            dir: dir.to_path_buf(),
            name: rel.to_string(),
        });
    }
    Ok(components)
}

const DIRECTORY: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Opens `name` in the directory `dir` (held open) to read, never
/// through a link (`path` names it in an error). O_NONBLOCK: opening a
/// FIFO with no writer returns at once (its type is the caller's to
/// refuse) instead of waiting for one.
fn open_file_at(
    dir: &impl std::os::fd::AsFd,
    name: &str,
    path: &Path,
) -> Result<std::fs::File, UntrustedError> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map(std::fs::File::from)
    .map_err(|e| opened(path.to_path_buf(), e))
}

/// Opens `rel` under `dir` without following a link, if it is a regular
/// file: the file, its path and its metadata.
fn open_regular(
    dir: &Path,
    rel: &str,
) -> Result<(std::fs::File, PathBuf, std::fs::Metadata), UntrustedError> {
    let path = dir.join(rel);
    let components = components(dir, rel)?;
    let mut current: OwnedFd =
        open(dir, DIRECTORY, Mode::empty()).map_err(|e| opened(dir.to_path_buf(), e))?;
    let mut walked = dir.to_path_buf();
    let (last, parents) = components
        .split_last()
        .ok_or_else(|| UntrustedError::BadName {
            dir: dir.to_path_buf(),
            name: rel.to_string(),
        })?;
    for component in parents {
        walked.push(component);
        current = openat(&current, *component, DIRECTORY, Mode::empty())
            .map_err(|e| opened(walked.clone(), e))?;
    }
    // A FIFO is refused below by its type.
    let file = open_file_at(&current, last, &path)?;
    let meta = file.metadata().map_err(|e| UntrustedError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(UntrustedError::NotRegular {
            path,
            kind: kind(&meta),
        });
    }
    Ok((file, path, meta))
}

/// Opens (creating it, never truncating it) the lock file at `path` for
/// reading and writing: a link planted there is refused (`O_NOFOLLOW`),
/// never written through. For swarm's `flock` files: a run's lock, a warm
/// worktree's lease, the repository's worktree records.
#[allow(
    clippy::disallowed_methods,
    reason = "O_NOFOLLOW: a link planted at the lock's name is refused, never followed"
)]
pub fn lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

/// Takes the `flock` `how` on `file` without waiting: `None` when another
/// holds it the other way (or at all, for an exclusive one).
pub fn try_lock(
    file: std::fs::File,
    how: nix::fcntl::FlockArg,
) -> std::io::Result<Option<nix::fcntl::Flock<std::fs::File>>> {
    match nix::fcntl::Flock::lock(file, how) {
        Ok(held) => Ok(Some(held)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(std::io::Error::from(e)),
    }
}

/// Opens `rel` under `dir` to append to it, as hostile a place as a
/// file that came with a repository can be: every directory on the way is
/// made if missing (mode 0700) and entered without following a link; the
/// file is made new (`O_EXCL`) or, if it is there, opened without
/// following a link and only if it is a regular file with no other name
/// (a hard link to a file of the user's would have it written to). So a
/// link planted anywhere under `dir` makes this fail, never writes
/// through it.
pub fn append(dir: &Path, rel: &str) -> Result<std::fs::File, UntrustedError> {
    use nix::sys::stat::mkdirat;
    let path = dir.join(rel);
    let components = components(dir, rel)?;
    let mut current: OwnedFd =
        open(dir, DIRECTORY, Mode::empty()).map_err(|e| opened(dir.to_path_buf(), e))?;
    let mut walked = dir.to_path_buf();
    let (last, parents) = components
        .split_last()
        .ok_or_else(|| UntrustedError::BadName {
            dir: dir.to_path_buf(),
            name: rel.to_string(),
        })?;
    for component in parents {
        walked.push(component);
        match mkdirat(&current, *component, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(opened(walked.clone(), e)),
        }
        current = openat(&current, *component, DIRECTORY, Mode::empty())
            .map_err(|e| opened(walked.clone(), e))?;
    }
    let write = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(
        &current,
        *last,
        write | OFlag::O_CREAT | OFlag::O_EXCL,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(fd) => fd,
        // There already: open it as it is, never through a link, and
        // without blocking on a FIFO.
        Err(Errno::EEXIST) => openat(&current, *last, write | OFlag::O_NONBLOCK, Mode::empty())
            .map_err(|e| opened(path.clone(), e))?,
        Err(e) => return Err(opened(path.clone(), e)),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| UntrustedError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(UntrustedError::NotRegular {
            path,
            kind: kind(&meta),
        });
    }
    {
        use std::os::unix::fs::MetadataExt as _;
        if meta.nlink() > 1 {
            return Err(UntrustedError::HardLink { path });
        }
    }
    Ok(file)
}

/// Writes `bytes` to a new file `name` (one plain component) in `dir` (a
/// directory the coordinator owns, not a link), read-only to everyone
/// (0444), never through a link and never over a file that is there:
/// `Ok(false)` if one is (the caller reads it back to compare). Synced, so
/// that what a later reader finds is whole.
pub fn create_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<bool, UntrustedError> {
    use std::io::Write as _;
    let path = dir.join(name);
    let components = components(dir, name)?;
    if components.len() != 1 {
        return Err(UntrustedError::BadName {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        });
    }
    let parent: OwnedFd =
        open(dir, DIRECTORY, Mode::empty()).map_err(|e| opened(dir.to_path_buf(), e))?;
    let fd = match openat(
        &parent,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o444),
    ) {
        Ok(fd) => fd,
        Err(Errno::EEXIST) => return Ok(false),
        Err(e) => return Err(opened(path, e)),
    };
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| UntrustedError::Io {
            path,
            message: e.to_string(),
        })?;
    Ok(true)
}

/// [`read`] on the blocking pool, given up after `deadline` (the read
/// itself then finishes, or not, on its own thread: nothing waits for it).
pub async fn read_with_deadline(
    dir: PathBuf,
    rel: String,
    limits: Limits,
    deadline: Duration,
) -> Result<Vec<u8>, UntrustedError> {
    let path = dir.join(&rel);
    let job = tokio::task::spawn_blocking(move || read(&dir, &rel, limits));
    match tokio::time::timeout(deadline, job).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => Err(UntrustedError::Io {
            path,
            message: e.to_string(),
        }),
        Err(_) => Err(UntrustedError::TimedOut { path, deadline }),
    }
}

/// What an `open` of `path` failing with `errno` says about it.
fn opened(path: PathBuf, errno: Errno) -> UntrustedError {
    match errno {
        Errno::ENOENT => UntrustedError::Missing { path },
        // O_NOFOLLOW on a link: ELOOP for the last component; a link on
        // the way, opened with O_DIRECTORY|O_NOFOLLOW, is ENOTDIR or ELOOP.
        Errno::ELOOP => UntrustedError::Link { path },
        Errno::ENOTDIR => match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_symlink() => UntrustedError::Link { path },
            Ok(meta) => UntrustedError::NotRegular {
                path,
                kind: kind(&meta),
            },
            Err(e) => UntrustedError::Io {
                path,
                message: e.to_string(),
            },
        },
        other => UntrustedError::Io {
            path,
            message: other.desc().to_string(),
        },
    }
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    const LIMITS: Limits = Limits {
        max_size: 16,
        what: "a test file",
    };

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_regular_file_under_the_cap_is_read() {
        let d = dir();
        std::fs::write(d.path().join("f"), "hello").unwrap();
        assert_eq!(read(d.path(), "f", LIMITS).unwrap(), b"hello");
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/g"), "").unwrap();
        assert_eq!(read(d.path(), "sub/g", LIMITS).unwrap(), b"");
    }

    #[test]
    fn exactly_the_cap_is_read_one_byte_more_is_refused() {
        let d = dir();
        std::fs::write(d.path().join("at"), [b'x'; 16]).unwrap();
        assert_eq!(read(d.path(), "at", LIMITS).unwrap().len(), 16);
        std::fs::write(d.path().join("over"), [b'x'; 17]).unwrap();
        let e = read(d.path(), "over", LIMITS).unwrap_err().to_string();
        assert!(
            e.ends_with("over is 17 bytes, more than the 16 bytes a test file may be"),
            "{e}"
        );
    }

    #[test]
    fn a_huge_sparse_file_is_refused_by_its_size_before_reading() {
        let d = dir();
        let f = std::fs::File::create(d.path().join("sparse")).unwrap();
        f.set_len(768 << 20).unwrap();
        let started = Instant::now();
        let e = read(d.path(), "sparse", Limits::new("a request"))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("sparse is 768 MiB, more than the 1 MiB a request may be"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_link_is_refused_and_its_target_never_shown() {
        let d = dir();
        std::fs::write(d.path().join("secret"), "MARKER-secret-key = 1").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), d.path().join("link")).unwrap();
        let e = read(d.path(), "link", LIMITS).unwrap_err();
        assert!(matches!(e, UntrustedError::Link { .. }), "{e}");
        let shown = e.to_string();
        assert!(shown.contains("link is a symbolic link"), "{shown}");
        assert!(!shown.contains("MARKER"), "{shown}");
        // A link on the way is refused too.
        std::fs::create_dir(d.path().join("real")).unwrap();
        std::fs::write(d.path().join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("via")).unwrap();
        let e = read(d.path(), "via/f", LIMITS).unwrap_err();
        assert!(matches!(e, UntrustedError::Link { .. }), "{e}");
        // And so is a directory that is itself a link.
        let e = read(&d.path().join("via"), "f", LIMITS).unwrap_err();
        assert!(matches!(e, UntrustedError::Link { .. }), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = dir();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let started = Instant::now();
        let e = read(d.path(), "fifo", LIMITS).unwrap_err().to_string();
        assert!(
            e.ends_with("fifo is not a regular file (it is a named pipe)"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_directory_a_missing_file_and_bad_names_are_refused() {
        let d = dir();
        std::fs::create_dir(d.path().join("d")).unwrap();
        let e = read(d.path(), "d", LIMITS).unwrap_err().to_string();
        assert!(
            e.ends_with("d is not a regular file (it is a directory)"),
            "{e}"
        );
        assert!(read(d.path(), "none", LIMITS).unwrap_err().is_missing());
        for name in ["", "../x", "a/../b", "/etc/passwd", "a//b", "."] {
            let e = read(d.path(), name, LIMITS).unwrap_err();
            assert!(matches!(e, UntrustedError::BadName { .. }), "{name}: {e}");
        }
    }

    #[tokio::test]
    async fn the_deadline_version_reads_the_same() {
        let d = dir();
        std::fs::write(d.path().join("f"), "ok").unwrap();
        let got = read_with_deadline(
            d.path().to_path_buf(),
            "f".into(),
            LIMITS,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(got, b"ok");
    }
}
