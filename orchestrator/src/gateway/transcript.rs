//! A task's transcript: one JSON object per line, appended as the session
//! goes (the system prompt and tools, every user turn, every answer with
//! its usage, retries, tool activity, verify results, the end). With the
//! conversation it records, each request the gateway sent can be rebuilt
//! exactly: a request is the system prompt, the tools and every message so
//! far. Headers are never recorded, so the API key never is; nor are the
//! person's secrets (the files `.worktreeinclude` brings in, which an agent
//! reads as it reads any file): each line is redacted as a log is (see
//! [`swarm_worker::redact`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

#[derive(Debug)]
pub(crate) struct Transcript {
    path: PathBuf,
    file: Option<File>,
    started: std::time::Instant,
    redact: Option<swarm_worker::Redact>,
}

impl Transcript {
    /// Opens (appends to) the transcript at `path`. A transcript that cannot
    /// be written does not stop the task; the failure is logged once.
    #[allow(
        clippy::disallowed_methods,
        reason = "a transcript in the task's logs, swarm's own file"
    )]
    pub fn open(path: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| tracing::warn!(path = %path.display(), %e, "failed to open a transcript"))
            .ok();
        Self {
            path: path.to_path_buf(),
            file,
            started: std::time::Instant::now(),
            redact: None,
        }
    }

    /// Takes `redact`'s secrets out of every line written from now on.
    pub fn redacting(&mut self, redact: Option<swarm_worker::Redact>) {
        self.redact = redact;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` (an object) with the milliseconds since the session
    /// started, in one write so a crash leaves whole lines.
    pub fn write(&mut self, kind: &str, mut entry: Value) {
        let Some(file) = &mut self.file else { return };
        if let Value::Object(map) = &mut entry {
            map.insert("type".into(), json!(kind));
            map.insert(
                "ms".into(),
                json!(self.started.elapsed().as_millis() as u64),
            );
        }
        let mut line = entry.to_string();
        if let Some(redact) = &self.redact {
            line = redact.text(&line);
        }
        line.push('\n');
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!(path = %self.path.display(), %e, "failed to write a transcript");
            self.file = None;
        }
    }
}
