//! Captured output: a worker writes to a pipe, and the coordinator copies
//! it into the task's log file, up to a limit. A worker that floods its
//! output (by bug or on purpose) cannot fill the disk; past the limit the
//! rest is read and dropped, so the worker never blocks on a full pipe, and
//! the log ends with a line saying how much was dropped.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

/// How much of one output stream is kept: the first `limit` bytes; the
/// rest is counted and dropped. Shared by command and WASM tasks, so both
/// bound their logs the same way and say so the same way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    limit: u64,
    kept: u64,
    dropped: u64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            kept: 0,
            dropped: 0,
        }
    }

    /// Of `len` new bytes, how many to keep (the rest is counted dropped).
    pub(crate) fn take(&mut self, len: usize) -> usize {
        let room = usize::try_from(self.limit.saturating_sub(self.kept)).unwrap_or(usize::MAX);
        let take = len.min(room);
        self.kept += take as u64;
        self.dropped += (len - take) as u64;
        take
    }

    /// Bytes kept that the log write then failed on (disk full) are
    /// not in the log.
    pub(crate) fn unkeep(&mut self, len: usize) {
        self.kept -= len as u64;
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The line that ends a truncated log, if anything was dropped.
    pub(crate) fn note(&self) -> Option<String> {
        (self.dropped > 0).then(|| {
            format!(
                "\n[swarm: output truncated: {} more bytes were dropped (the limit is {} bytes, `max_output` in the plan)]\n",
                self.dropped, self.limit
            )
        })
    }
}

/// A pipe for one output stream: the end the worker writes to (blocking,
/// close-on-exec in the coordinator) and the end the coordinator reads.
pub(crate) fn pipe() -> std::io::Result<(OwnedFd, pipe::Receiver)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // Only our end is non-blocking (a command's writes block as usual).
    // `from_owned_fd` would ask the kernel again what the fd is and which
    // flags it has: two system calls per pipe, two pipes per task, for
    // what `pipe2` just told us.
    nix::fcntl::fcntl(
        &read,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok((write, pipe::Receiver::from_owned_fd_unchecked(read)?))
}

/// Opens the log at `path` to append to it, made (with its directory) if
/// it is not there yet: a command's logs are made when first written.
pub fn open_log(path: &std::path::Path) -> std::io::Result<File> {
    path.parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        })
}

/// A log file made when its first byte comes (or when an attempt that
/// failed needs it to exist, [`Log::touch`]): a task that prints nothing,
/// most of them, creates no file and no directory. On a disk, each was an
/// inode made and later deleted per task, which was most of a no-op task's
/// cost there.
#[derive(Debug)]
pub(crate) struct Log {
    path: std::path::PathBuf,
    file: Option<File>,
    /// Why opening it failed, if it did: what comes is dropped, and the
    /// attempt fails for it ([`Log::lost`]).
    failed: Option<std::io::Error>,
    /// Bytes the stream carried, kept or not: a sign of life for a stall
    /// watch (`command::Stall`), read while it is written.
    heard: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Log {
    pub(crate) fn new(path: &std::path::Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
            failed: None,
            heard: Default::default(),
        }
    }

    /// The count of bytes the stream carried, as it grows.
    pub(crate) fn heard(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        std::sync::Arc::clone(&self.heard)
    }

    fn file(&mut self) -> Option<&mut File> {
        if self.file.is_none() && self.failed.is_none() {
            match open_log(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(e) => self.failed = Some(e),
            }
        }
        self.file.as_mut()
    }

    /// Why the output could not be kept, if it could not: the log could
    /// not be made.
    pub(crate) fn lost(&self) -> Option<String> {
        self.failed
            .as_ref()
            .map(|e| format!("make its log {}: {e}", self.path.display()))
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.file() {
            Some(file) => file.write_all(bytes),
            None => Err(std::io::Error::other("the log file could not be opened")),
        }
    }

    /// Makes the file exist, empty if nothing was written.
    pub(crate) fn touch(&mut self) {
        let _ = self.file();
    }
}

/// Copies `from` into `log` until the writers are gone, keeping at most
/// `limit` bytes, with the person's secrets `redact` names taken out (see
/// [`crate::redact`]). Returns the number of bytes dropped.
pub(crate) async fn capture(
    mut from: pipe::Receiver,
    log: &mut Log,
    limit: u64,
    redact: Option<&crate::redact::Redact>,
) -> u64 {
    let mut redacting = redact.map(crate::redact::Redact::stream);
    // Small until bytes come, and never zeroed (`read_buf` reads into the
    // spare room): most tasks print little or nothing, and two zeroed
    // 64 KiB buffers per task were a tenth of the coordinator's time on
    // no-op tasks.
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut budget = Budget::new(limit);
    loop {
        buf.clear();
        let n = match from.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        log.heard
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        let take = budget.take(n);
        // A failing log write (disk full) must not stop the draining: the
        // worker would block on a full pipe.
        let written = match (&mut redacting, take) {
            (_, 0) => Ok(()),
            (Some(stream), _) => log.write_all(&stream.push(&buf[..take])),
            (None, _) => log.write_all(&buf[..take]),
        };
        if written.is_err() {
            budget.unkeep(take);
        }
        // Output is coming: read it in large pieces from now on.
        if buf.capacity() < 64 << 10 {
            buf.clear();
            buf.reserve_exact(64 << 10);
        }
    }
    if let Some(held) = redacting.map(crate::redact::Stream::finish)
        && !held.is_empty()
    {
        let _ = log.write_all(&held);
    }
    if let Some(note) = budget.note() {
        let _ = log.write_all(note.as_bytes());
    }
    budget.dropped()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[tokio::test]
    async fn output_beyond_the_limit_is_dropped_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (write, read) = pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let mut w = File::from(write);
            for _ in 0..100 {
                w.write_all(&[b'x'; 1000]).unwrap();
            }
        });
        let dropped = capture(read, &mut Log::new(&path), 2500, None).await;
        writer.join().unwrap();
        assert_eq!(dropped, 100_000 - 2500);
        let mut text = String::new();
        File::open(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.starts_with(&"x".repeat(2500)));
        assert!(!text.contains(&"x".repeat(2501)));
        assert!(text.contains("97500 more bytes were dropped"), "{text}");
    }

    #[tokio::test]
    async fn output_within_the_limit_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (write, read) = pipe().unwrap();
        File::from(write).write_all(b"hello\n").unwrap();
        assert_eq!(capture(read, &mut Log::new(&path), 6, None).await, 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\n");
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_made_says_so() {
        let dir = tempfile::tempdir().unwrap();
        // Its directory would be below a file.
        std::fs::write(dir.path().join("file"), "").unwrap();
        let path = dir.path().join("file/t/1.out");
        let (write, read) = pipe().unwrap();
        File::from(write).write_all(b"lost\n").unwrap();
        let mut log = Log::new(&path);
        assert_eq!(log.lost(), None);
        capture(read, &mut log, 100, None).await;
        let lost = log.lost().unwrap();
        assert!(lost.starts_with("make its log "), "{lost}");
        assert!(lost.contains("file/t/1.out"), "{lost}");
    }

    #[tokio::test]
    async fn nothing_written_makes_no_file_until_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/t/1.out");
        let (write, read) = pipe().unwrap();
        drop(write);
        let mut log = Log::new(&path);
        assert_eq!(capture(read, &mut log, 6, None).await, 0);
        assert!(!path.exists());
        assert!(!path.parent().unwrap().exists());
        log.touch();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
