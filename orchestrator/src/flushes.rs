//! When the journal's flushes to the disk happened and how long each took:
//! `.swarm/runs/<run>/flushes`, one `<unix ms> <µs>` line per `fdatasync`,
//! appended by the run's writer thread after each one. The timeline puts
//! them on the coordinator's track, beside its merges.
//!
//! Not in the journal itself: a line about a flush would need a flush of
//! its own. A lost or torn line costs a bar in a picture, nothing else, so
//! this file is never flushed, and a write to it that fails is ignored.

#![allow(
    clippy::disallowed_methods,
    reason = "a run's flush record, swarm's own file"
)]

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// One journal flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flush {
    /// When it started, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    pub dur_us: u64,
}

/// Appends flushes to a run's record of them.
#[derive(Debug)]
pub(crate) struct FlushLog {
    file: Option<File>,
}

impl FlushLog {
    /// Opens the record beside `journal` (none if it cannot be opened: the
    /// run goes on without it).
    pub(crate) fn beside(journal: &Path) -> Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = journal.with_file_name(crate::layout::FLUSHES);
        let file = OpenOptions::new()
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .create(true)
            .append(true)
            .open(path)
            .ok();
        Self { file }
    }

    /// Records a flush that started at `at` and took `took`, in one write.
    pub(crate) fn record(&mut self, at: SystemTime, took: Duration) {
        let Some(file) = &mut self.file else { return };
        let at_ms = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let line = format!("{at_ms} {}\n", took.as_micros());
        let _ = file.write_all(line.as_bytes());
    }
}

/// The flushes recorded in `run_dir` (none if there is no record). Lines
/// that are not two numbers (a torn last one) are skipped.
pub fn read(run_dir: &Path) -> Vec<Flush> {
    let Ok(file) = File::open(run_dir.join(crate::layout::FLUSHES)) else {
        return Vec::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let (at, dur) = line.split_once(' ')?;
            Some(Flush {
                at_unix_ms: at.parse().ok()?,
                dur_us: dur.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_are_read_back_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join(crate::layout::JOURNAL);
        let mut log = FlushLog::beside(&journal);
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        log.record(at, Duration::from_micros(2_500));
        log.record(at + Duration::from_millis(7), Duration::from_micros(40));
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(crate::layout::FLUSHES))
            .unwrap()
            .write_all(b"1700000000200 9")
            .unwrap();
        let mut torn = read(dir.path());
        // A torn last line that happens to parse is harmless too.
        torn.truncate(2);
        assert_eq!(
            torn,
            [
                Flush {
                    at_unix_ms: 1_700_000_000_123,
                    dur_us: 2_500
                },
                Flush {
                    at_unix_ms: 1_700_000_000_130,
                    dur_us: 40
                }
            ]
        );
        std::fs::write(
            dir.path().join(crate::layout::FLUSHES),
            "12 x\nnonsense\n3 4\n",
        )
        .unwrap();
        assert_eq!(
            read(dir.path()),
            [Flush {
                at_unix_ms: 3,
                dur_us: 4
            }]
        );
        assert!(read(&dir.path().join("none")).is_empty());
    }
}
