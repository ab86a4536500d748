//! The run journal: `.swarm/runs/<run>/events.jsonl`, one [`Event`] per
//! line, appended as the run goes. It is the run's source of truth: the
//! report and `swarm status` are folds over it.

#![allow(
    clippy::disallowed_methods,
    reason = "a run's journal, swarm's own file"
)]

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use swarm_protocol::{Event, EventBody, SCHEMA_VERSION};

/// Appends events to a journal file.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

/// Failure to read a journal, as a fragment that reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("read journal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("read journal {path}: line {line} is not a swarm event: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "read journal {path}: written by a newer swarm (format {found}, this one reads {SCHEMA_VERSION})"
    )]
    TooNew { path: PathBuf, found: u32 },
}

impl Journal {
    pub fn create(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt as _;
        // A link planted at the journal's path is refused, never appended
        // through (the directories above it are checked by `state`).
        let file = OpenOptions::new()
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one event as one line, in a single write so that a concurrent
    /// reader sees whole lines (or a torn last one, which readers skip).
    /// Events that change what a resumed run would do (a task finished,
    /// merged, the run started or ended) are flushed to the disk before this
    /// returns, so a crash or power loss cannot forget them after the fact.
    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        if self.write(event)? {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Writes one event as one line (into the page cache: a crash of the
    /// process cannot lose it, a power loss can) and says whether it must
    /// be flushed to the disk too; the caller does that through a
    /// [`Journal::flusher`], on a thread where the wait harms nobody.
    pub fn write(&mut self, event: &Event) -> io::Result<bool> {
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        Ok(is_state_change(&event.body))
    }

    /// A handle on the journal's file for `sync_data`, from another thread.
    pub fn flusher(&self) -> io::Result<File> {
        self.file.try_clone()
    }
}

/// Cuts a torn last line (the writer died mid-write) off the journal at
/// `path`, so that appending to it again starts on a line of its own.
pub fn repair(path: &Path) -> io::Result<()> {
    let bytes = std::fs::read(path)?;
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(whole as u64)?;
        file.sync_data()?;
    }
    Ok(())
}

/// Whether `body` records a state a resumed run must see.
fn is_state_change(body: &EventBody) -> bool {
    !matches!(
        body,
        // A cluster job's id is what resume finds it by: that one is kept.
        EventBody::TaskStarted { job: None, .. }
            | EventBody::AttemptPlaced { .. }
            | EventBody::TaskQueued { .. }
            | EventBody::AgentTool { .. }
            | EventBody::AgentUsage { .. }
    )
}

/// A journal line a tolerant read skipped: not an event of this format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "skipped line {} of {}: it is not a swarm event ({})",
            self.line,
            self.path.display(),
            self.message
        )
    }
}

/// Reads every event of the journal at `path`. A last line without its
/// newline (the writer was interrupted mid-write) is ignored; any other
/// line that is not an event is an error naming it (what `resume` needs:
/// it must not guess what a lost line said).
pub fn read(path: &Path) -> Result<Vec<Event>, JournalError> {
    read_lines(path, false).map(|(events, _)| events)
}

/// Reads the journal at `path` like [`read`], but skips lines that are not
/// events, returning them: one damaged line must not hide the rest of a
/// run from `swarm status` or `swarm logs`. A line of a newer format is
/// still an error.
pub fn read_tolerant(path: &Path) -> Result<(Vec<Event>, Vec<Skipped>), JournalError> {
    read_lines(path, true)
}

/// The journal's `run_started` event (its first whole line that is one),
/// read without the rest of the journal: what a resume needs before it
/// takes the run over (the plan's path, the worktree home).
pub fn run_started(path: &Path) -> Option<Event> {
    let mut reader = BufReader::new(File::open(path).ok()?);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 || line.last() != Some(&b'\n') {
            return None;
        }
        if let Ok(event) = serde_json::from_slice::<Event>(&line)
            && matches!(event.body, EventBody::RunStarted { .. })
        {
            return Some(event);
        }
    }
}

fn read_lines(path: &Path, tolerant: bool) -> Result<(Vec<Event>, Vec<Skipped>), JournalError> {
    let io_err = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut reader = BufReader::new(file);
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err)?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            break;
        }
        match serde_json::from_slice::<Event>(&line) {
            Ok(event) => events.push(event),
            Err(e) => {
                if let Some(v) = serde_json::from_slice::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("v")?.as_u64())
                    && v > u64::from(SCHEMA_VERSION)
                {
                    return Err(JournalError::TooNew {
                        path: path.to_path_buf(),
                        found: u32::try_from(v).unwrap_or(u32::MAX),
                    });
                }
                if !tolerant {
                    return Err(JournalError::Corrupt {
                        path: path.to_path_buf(),
                        line: number,
                        message: e.to_string(),
                    });
                }
                skipped.push(Skipped {
                    path: path.to_path_buf(),
                    line: number,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok((events, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_middle_line_is_skipped_by_tolerant_reads_only() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(crate::layout::JOURNAL);
        let event = |run: &str| {
            serde_json::to_string(&Event {
                v: SCHEMA_VERSION,
                ts: String::new(),
                body: EventBody::RunFinished {
                    exit_code: 0,
                    duration_ms: 1,
                    integration_commit: run.into(),
                },
            })
            .unwrap_or_default()
        };
        let mut text = format!("{}\n{{\"v\":1,\"ev", event("a")).into_bytes();
        text.push(0xff);
        text.extend_from_slice(format!("\n{}\n{{torn", event("b")).as_bytes());
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
        match read(&path) {
            Err(JournalError::Corrupt { line: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        let (events, skipped) = read_tolerant(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(events.len(), 2);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].line, 2);
        assert!(skipped[0].to_string().starts_with("skipped line 2 of "));
    }
}
