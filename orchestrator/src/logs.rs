//! An attempt's logs for people (`swarm logs`): which files of a run's
//! directory hold what was asked for (a task's output and transcript,
//! verify's output, what its egress proxy let through, its `[setup]`'s,
//! `score`'s or `[cleanup]`'s output, a cassette, the planner's
//! conversation, the replans), read into the parts shown, in order.
//! Nothing here prints: the front end writes the parts (escaped, or raw
//! into a pipe) and follows a log as it grows.

#![allow(
    clippy::disallowed_methods,
    reason = "a run's logs, transcripts and plans, swarm's own files (a task writes its logs only through its output streams)"
)]

use std::path::{Path, PathBuf};
use swarm_protocol::TaskStatus;

use swarm_protocol::{Event, EventBody, RunReport};

use crate::gateway::tape::{MAX_CASSETTE, ReelId};
use crate::journal::{self, JournalError, Skipped};
use crate::untrusted::{self, UntrustedError};
use crate::{layout, plan, report, view};

/// What of a task's attempt is shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Show {
    /// Its output (and transcript, verify's output).
    Output,
    /// Its output as it grows (`--follow`).
    Follow,
    /// Its cassette in a `--record` directory (`--cassette DIR`).
    Cassette(PathBuf),
    /// The output of its `[setup]` (`--setup`).
    Setup,
    /// The output of a variant's `score` (`--score`).
    Score,
    /// The output of its `[cleanup]` (`--cleanup`).
    Cleanup,
}

/// One part of what is shown, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// The task's bytes, or text made of them (a transcript, a cassette):
    /// shown with control characters escaped, unless raw into a pipe.
    Output(Vec<u8>),
    /// A line of swarm's own before the next part, `--- <name>`.
    Heading(&'static str),
}

/// What is shown of an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// These parts, then `note` (on stderr: a pipe of the output gets the
    /// output only) when there was nothing to show.
    Parts {
        parts: Vec<Part>,
        note: Option<String>,
    },
    /// The log to show as it grows, until [`task_ended`] says the task
    /// (or the run) ended.
    Follow { log: PathBuf },
}

/// Why logs cannot be shown, as a fragment after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("show logs of run `{run}`: {error} (see `swarm status` for runs)")]
    Journal { run: String, error: JournalError },
    #[error("show logs of run `{run}`: it has not started")]
    NotStarted { run: String },
    #[error("show logs of run `{run}`: {message}")]
    Pattern { run: String, message: String },
    #[error("show logs of run `{run}`: `{pattern}` matches no task")]
    NoMatch { run: String, pattern: String },
    #[error("show the planner's log of run `{run}`: {error}")]
    Planner { run: String, error: std::io::Error },
    #[error(
        "show the replans of run `{run}`: it replanned nothing (`replan` in [swarm] allows it)"
    )]
    NoReplans { run: String },
    #[error("show logs of task `{task}`: run `{run}` has no such task{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    NoTask {
        run: String,
        task: String,
        suggestion: Option<String>,
    },
    #[error("show logs of task `{task}`: it never ran in run `{run}` (it is {status}{})", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    NeverRan {
        run: String,
        task: String,
        status: &'static str,
        reason: Option<String>,
    },
    #[error(
        "show logs of task `{task}`: it has no attempt {attempt} in run `{run}` (attempts: 1 to {attempts})"
    )]
    NoAttempt {
        run: String,
        task: String,
        attempt: u32,
        attempts: u32,
    },
    #[error("show logs of task `{task}`: attempt {attempt} of run `{run}` left no logs at {}", path.display())]
    Gone {
        run: String,
        task: String,
        attempt: u32,
        path: PathBuf,
    },
    #[error("show the cassette of {whose}: {error}")]
    Cassette {
        whose: String,
        error: UntrustedError,
    },
}

impl LogsError {
    /// What the person can do about it, if swarm knows.
    pub fn help(&self) -> Option<String> {
        match self {
            Self::NoMatch { run, .. } => Some(format!(
                "a glob matches task ids as in `deps`, e.g. \"test-*\"; `swarm status {run}` lists them"
            )),
            Self::Cassette { .. } => Some(
                "--cassette names the directory a run was recorded to (`swarm run --record DIR`)"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// A run's journal, read for its logs.
#[derive(Debug)]
pub struct RunLogs {
    workdir: PathBuf,
    run: String,
    dir: PathBuf,
    events: Vec<Event>,
    report: RunReport,
}

impl RunLogs {
    /// Run `run` of the repository at `workdir`, with the journal lines a
    /// tolerant read skipped.
    pub fn open(workdir: &Path, run: &str) -> Result<(Self, Vec<Skipped>), LogsError> {
        let dir = report::run_dir(workdir, run);
        let (events, skipped) =
            journal::read_tolerant(&dir.join(layout::JOURNAL)).map_err(|error| {
                LogsError::Journal {
                    run: run.to_string(),
                    error,
                }
            })?;
        let report = report::fold(&events).ok_or_else(|| LogsError::NotStarted {
            run: run.to_string(),
        })?;
        let logs = Self {
            workdir: workdir.to_path_buf(),
            run: run.to_string(),
            dir,
            events,
            report,
        };
        Ok((logs, skipped))
    }

    /// The tasks the glob `pattern` matches (as in `deps`), in plan order.
    pub fn matching(&self, pattern: &str) -> Result<Vec<String>, LogsError> {
        let ids = self.report.tasks.iter().map(|t| t.id.as_str());
        let matched = plan::ids_matching(pattern, ids).map_err(|message| LogsError::Pattern {
            run: self.run.clone(),
            message,
        })?;
        if matched.is_empty() {
            return Err(LogsError::NoMatch {
                run: self.run.clone(),
                pattern: pattern.to_string(),
            });
        }
        Ok(matched.into_iter().map(str::to_string).collect())
    }

    /// What `swarm logs RUN plan` and `swarm logs RUN replan` show when no
    /// task has that id: the planner's transcript (or its cassette), the
    /// replans'.
    fn run_wide(&self, task: &str, show: &Show) -> Option<Result<Shown, LogsError>> {
        let run = &self.run;
        if self.report.tasks.iter().any(|t| t.id == task) {
            return None;
        }
        if task == "plan" {
            if let Show::Cassette(dir) = show {
                return Some(cassette(dir, &ReelId::Planner.file(), "the planner"));
            }
            let planner = layout::plans_dir(&self.workdir, run).join(layout::PLANNER_TRANSCRIPT);
            if planner.is_file() {
                let text = std::fs::read_to_string(&planner).map_err(|error| LogsError::Planner {
                    run: run.clone(),
                    error,
                });
                return Some(text.map(|text| output(view::transcript::render(&text).into_bytes())));
            }
        }
        if task == "replan" {
            let text = view::transcript::replans(&self.events);
            if text.is_empty() {
                return Some(Err(LogsError::NoReplans { run: run.clone() }));
            }
            return Some(Ok(output(text.into_bytes())));
        }
        None
    }

    /// What `show` shows of attempt `attempt` (default: the last) of
    /// `task`; `plan` and `replan`, unless tasks of the run, are the
    /// planner's conversation and the replans. Nothing to show is an
    /// error naming why, never an empty success: a task that never ran
    /// (blocked, skipped; one still to come is followed), an attempt it
    /// did not make, logs that are gone.
    pub fn show(&self, task: &str, attempt: Option<u32>, show: &Show) -> Result<Shown, LogsError> {
        let run = &self.run;
        if let Some(shown) = self.run_wide(task, show) {
            return shown;
        }
        let Some(t) = self.report.tasks.iter().find(|t| t.id == task) else {
            let ids = self.report.tasks.iter().map(|t| t.id.as_str());
            return Err(LogsError::NoTask {
                run: run.clone(),
                task: task.to_string(),
                suggestion: plan::did_you_mean(task, ids).map(str::to_string),
            });
        };
        let follow = *show == Show::Follow;
        if t.attempts == 0 && (!follow || t.status.is_final()) {
            return Err(LogsError::NeverRan {
                run: run.clone(),
                task: task.to_string(),
                status: t.status.as_str(),
                reason: t.reason.clone(),
            });
        }
        if let Some(n) = attempt.filter(|&n| n == 0 || n > t.attempts) {
            return Err(LogsError::NoAttempt {
                run: run.clone(),
                task: task.to_string(),
                attempt: n,
                attempts: t.attempts,
            });
        }
        let attempt = attempt.unwrap_or(t.attempts.max(1));
        let dir = &self.dir;
        let phase = |(out, err): (PathBuf, PathBuf), egress: Option<PathBuf>, what| {
            Ok(phase_logs(
                &out,
                &err,
                egress.as_deref(),
                what,
                task,
                attempt,
            ))
        };
        match show {
            Show::Cassette(records) => {
                let id = ReelId::Attempt {
                    task: task.to_string(),
                    attempt,
                };
                let whose = format!("task `{task}`, attempt {attempt}");
                return cassette(records, &id.file(), &whose);
            }
            Show::Setup => {
                let egress = report::setup_egress_log_path(dir, task, attempt);
                return phase(
                    report::setup_log_paths(dir, task, attempt),
                    Some(egress),
                    "setup",
                );
            }
            Show::Cleanup => {
                let egress = report::cleanup_egress_log_path(dir, task, attempt);
                let paths = report::cleanup_log_paths(dir, task, attempt);
                return phase(paths, Some(egress), "cleanup");
            }
            Show::Score => {
                return phase(report::score_log_paths(dir, task, attempt), None, "score");
            }
            Show::Follow => {
                let (log, _) = report::log_paths(dir, task, attempt);
                return Ok(Shown::Follow { log });
            }
            Show::Output => {}
        }
        let (out, err) = report::log_paths(dir, task, attempt);
        let (verify_out, verify_err) = report::verify_log_paths(dir, task, attempt);
        let transcript = layout::transcript_path(dir, task, attempt);
        let egress = report::egress_log_path(dir, task, attempt);
        // A command makes its logs when it first prints, and a failed
        // command always has them. So no log at all is "gone" only for the
        // last attempt of a finished task whose command did not exit 0; an
        // attempt still running, an earlier one (its command may have
        // exited 0 and the attempt failed after) or one that exited 0
        // printed nothing.
        let surely_made = attempt == t.attempts && t.status.is_final() && t.exit_code != Some(0);
        let logs = [&out, &err, &transcript, &verify_out, &verify_err, &egress];
        if surely_made && !logs.iter().any(|p| p.exists()) {
            return Err(LogsError::Gone {
                run: run.clone(),
                task: task.to_string(),
                attempt,
                path: out,
            });
        }
        let first = match transcript.exists() {
            true => {
                let text = std::fs::read_to_string(&transcript).unwrap_or_default();
                // An empty transcript is nothing shown, whatever it renders as.
                match text.is_empty() {
                    true => Vec::new(),
                    false => view::transcript::render(&text).into_bytes(),
                }
            }
            false => std::fs::read(&out).unwrap_or_default(),
        };
        // `verify`'s output, apart from the command's; what the egress
        // proxy of a task with a network list let through and refused.
        let parts = sections(
            first,
            &[
                (err.as_path(), "stderr"),
                (verify_out.as_path(), "verify stdout"),
                (verify_err.as_path(), "verify stderr"),
                (egress.as_path(), "network (swarm's egress proxy)"),
            ],
        );
        let mut parts = parts;
        let note = parts
            .is_empty()
            .then(|| format!("(no output: attempt {attempt} of task `{task}` printed nothing)"));
        // Why its last attempt failed, as the summary says it, when swarm
        // knows more than its output shows: the grant the sandbox may have
        // wanted, writes it refused, where its work is, a stall.
        let says_more =
            |r: &str| t.status == TaskStatus::Stalled || SAYS_MORE.iter().any(|m| r.contains(m));
        if attempt == t.attempts
            && t.status.is_final()
            && !t.status.is_success()
            && let Some(reason) = t.reason.as_ref().filter(|r| says_more(r))
        {
            parts.push(Part::Heading("why it failed (swarm)"));
            parts.push(Part::Output(format!("{reason}\n").into_bytes()));
        }
        Ok(Shown::Parts { parts, note })
    }
}

/// What a failed task's reason says that its output does not: the
/// sandbox's part in it (`run/local/hints.rs`, `owned_paths.rs`), and
/// where its work is kept.
const SAYS_MORE: &[&str] = &[
    "the sandbox hides",
    "the task has no network",
    "it was refused",
    "its work is on",
];

/// Whether task `task` of the run in `run_dir` has ended (or the run
/// has), as its journal says now.
pub fn task_ended(run_dir: &Path, task: &str) -> bool {
    journal::read_tolerant(&run_dir.join(layout::JOURNAL))
        .map(|(events, _)| {
            events.iter().any(|e| match &e.body {
                EventBody::TaskFinished { task: t, .. } => t == task,
                EventBody::RunFinished { .. } => true,
                _ => false,
            })
        })
        .unwrap_or(false)
}

/// A log read as it grows (`--follow`).
#[derive(Debug, Default)]
pub struct Tail {
    offset: u64,
    /// Read, not yet returned: the end of a line still being written.
    pending: Vec<u8>,
}

impl Tail {
    /// What was added to `log` since the last read; with `whole_lines`,
    /// up to its last newline only, the rest kept for the next read (an
    /// escape sequence or a character split across two reads must not
    /// slip through escaping).
    pub fn read(&mut self, log: &Path, whole_lines: bool) -> Vec<u8> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let Ok(mut file) = std::fs::File::open(log) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || file.read_to_end(&mut bytes).is_err()
            || bytes.is_empty()
        {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.pending.extend_from_slice(&bytes);
        let whole = match whole_lines {
            false => self.pending.len(),
            true => self
                .pending
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1),
        };
        self.pending.drain(..whole).collect()
    }

    /// What is left once the log is complete.
    pub fn rest(self) -> Vec<u8> {
        self.pending
    }
}

fn output(bytes: Vec<u8>) -> Shown {
    Shown::Parts {
        parts: vec![Part::Output(bytes)],
        note: None,
    }
}

/// `first`, then each non-empty file of `rest` under its heading; empty
/// when none had anything.
fn sections(first: Vec<u8>, rest: &[(&Path, &'static str)]) -> Vec<Part> {
    let mut parts = Vec::new();
    if !first.is_empty() {
        parts.push(Part::Output(first));
    }
    for &(path, name) in rest {
        let text = std::fs::read(path).unwrap_or_default();
        if !text.is_empty() {
            parts.push(Part::Heading(name));
            parts.push(Part::Output(text));
        }
    }
    parts
}

/// The output of attempt `attempt`'s `[setup]`, `score` or `[cleanup]`
/// (`what`), from its logs `out` and `err` and what its egress proxy let
/// through and refused: none if it had none (or its setup was a copy of
/// one kept).
fn phase_logs(
    out: &Path,
    err: &Path,
    egress: Option<&Path>,
    what: &str,
    task: &str,
    attempt: u32,
) -> Shown {
    let text = std::fs::read(out).unwrap_or_default();
    let mut rest = vec![(err, "stderr")];
    rest.extend(egress.map(|path| (path, "network (swarm's egress proxy)")));
    let parts = sections(text, &rest);
    let note = parts.is_empty().then(|| {
        let why = match what {
            "setup" => "ran no setup, got a kept one, or its setup printed nothing",
            "cleanup" => "ran no cleanup, or its cleanup printed nothing",
            _ => "ran no score, or its score printed nothing",
        };
        format!("(no {what} output: attempt {attempt} of task `{task}` {why})")
    });
    Shown::Parts { parts, note }
}

/// The cassette `file` under `dir` (of `whose` calls), for people: read as
/// the file of a repository it may be (no link followed, a regular file,
/// at most as large as a cassette replayed may be).
fn cassette(dir: &Path, file: &Path, whose: &str) -> Result<Shown, LogsError> {
    let limits = untrusted::Limits {
        max_size: MAX_CASSETTE,
        what: "a cassette",
    };
    let bytes = untrusted::read(dir, &file.to_string_lossy(), limits).map_err(|error| {
        LogsError::Cassette {
            whose: whose.to_string(),
            error,
        }
    })?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(output(view::cassette::render(&text).into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_returns_whole_lines_as_they_come() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("1.out");
        let mut tail = Tail::default();
        assert!(tail.read(&log, true).is_empty());
        std::fs::write(&log, "one\ntw").unwrap();
        assert_eq!(tail.read(&log, true), b"one\n");
        std::fs::write(&log, "one\ntwo\nthr").unwrap();
        assert_eq!(tail.read(&log, true), b"two\n");
        assert_eq!(tail.rest(), b"thr");
    }

    #[test]
    fn sections_head_each_file_with_something_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "oops\n").unwrap();
        let rest = [(a.as_path(), "stderr"), (b.as_path(), "verify stderr")];
        let parts = sections(b"out\n".to_vec(), &rest);
        assert_eq!(
            parts,
            [
                Part::Output(b"out\n".to_vec()),
                Part::Heading("verify stderr"),
                Part::Output(b"oops\n".to_vec())
            ]
        );
        assert!(sections(Vec::new(), &rest[..1]).is_empty());
    }
}
