//! The run journal: `.swarm/runs/<run>/events.jsonl`, one [`Event`] per
//! line, appended as the run goes. It is the run's source of truth: the
//! report and `swarm status` are folds over it.

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
        let file = OpenOptions::new().create(true).append(true).open(path)?;
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
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        if is_state_change(&event.body) {
            self.file.sync_data()?;
        }
        Ok(())
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
        EventBody::TaskStarted { .. }
            | EventBody::TaskQueued { .. }
            | EventBody::AgentTool { .. }
            | EventBody::AgentUsage { .. }
    )
}

/// Reads every event of the journal at `path`. A last line without its
/// newline (the writer was interrupted mid-write) is ignored.
pub fn read(path: &Path) -> Result<Vec<Event>, JournalError> {
    let io_err = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut reader = BufReader::new(file);
    let mut events = Vec::new();
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(io_err)?;
        if n == 0 {
            break;
        }
        number += 1;
        if !line.ends_with('\n') {
            break;
        }
        let event: Event =
            serde_json::from_str(&line).map_err(|e| {
                match serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("v")?.as_u64())
                {
                    Some(v) if v > u64::from(SCHEMA_VERSION) => JournalError::TooNew {
                        path: path.to_path_buf(),
                        found: u32::try_from(v).unwrap_or(u32::MAX),
                    },
                    _ => JournalError::Corrupt {
                        path: path.to_path_buf(),
                        line: number,
                        message: e.to_string(),
                    },
                }
            })?;
        events.push(event);
    }
    Ok(events)
}
