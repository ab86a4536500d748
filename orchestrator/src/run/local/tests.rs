//! A task's own test report (`junit`), taken after its command: read from
//! its worktree or tmp as hostile input (`crate::untrusted`), its test
//! cases folded with its earlier attempts' (`test_attempts`) and kept in
//! the run's logs (capped: `test_report`), their counts for the journal,
//! and the file taken out of the worktree so that it is never committed
//! with the task's result. Whatever goes wrong is a warning,
//! never a failure.

use std::path::Path;

use git2::Oid;
use swarm_protocol::TestCounts;

use crate::git::Repo;
use crate::test_attempts::History;
use crate::test_report::{self, Parsed};
use crate::untrusted::{self, Limits};

/// Where an attempt's report is and goes.
pub(super) struct Report<'a> {
    /// As the plan says: relative to the worktree, or `$TMPDIR/...`.
    pub junit: &'a str,
    pub workdir: &'a Path,
    pub tmp: Option<&'a Path>,
    /// For a task whose worktree is committed: the repository and the
    /// attempt's base, against which the report is taken out of it.
    pub base: Option<(&'a Repo, Oid)>,
    /// The person's secrets, taken out of the test cases as out of logs
    /// (see [`swarm_worker::redact`]).
    pub redact: Option<&'a swarm_worker::Redact>,
}

/// The report's test cases, or why there are none.
pub(super) fn read(report: &Report<'_>) -> Result<Parsed, String> {
    let (dir, rel, in_worktree) = match report.junit.strip_prefix("$TMPDIR/") {
        Some(rest) => match report.tmp {
            Some(tmp) => (tmp, rest, false),
            None => {
                return Err(format!(
                    "read its test report `{}`: it has no tmp",
                    report.junit
                ));
            }
        },
        None => (report.workdir, report.junit.trim_start_matches("./"), true),
    };
    let limits = Limits {
        max_size: test_report::MAX_REPORT,
        what: "a test report",
    };
    let read = untrusted::read(dir, rel, limits);
    // Out of the worktree whatever it is, read or not: a link (refused
    // above, never followed), a FIFO or a file too large is no more the
    // task's result than a report is.
    if in_worktree && let Some((repo, base)) = report.base {
        take_out(repo, base, report.workdir, rel);
    }
    let bytes = read.map_err(|e| match e {
        // Where it looked is the task's worktree or tmp: said as the plan
        // names it.
        untrusted::UntrustedError::Missing { .. } => format!(
            "no test report: the task wrote no `{}` (the plan's `junit`)",
            report.junit
        ),
        e => format!(
            "no test report: failed to read `{}` (the plan's `junit`): {e}",
            report.junit
        ),
    })?;
    let mut parsed = test_report::parse(&bytes)
        .map_err(|e| format!("its test report `{}` is not JUnit XML: {e}", report.junit))?;
    if let Some(redact) = report.redact {
        for case in &mut parsed.cases {
            for text in [
                &mut case.name,
                &mut case.classname,
                &mut case.file,
                &mut case.message,
                &mut case.text,
            ] {
                *text = redact.text(text);
            }
        }
    }
    Ok(parsed)
}

/// The task's tests so far (`history`), their cases kept at `kept` (in the
/// run's logs), counted; and what could not be kept, as a warning.
#[allow(
    clippy::disallowed_methods,
    reason = "the kept test cases go in the task's logs, swarm's own directory"
)]
pub(super) fn keep(history: &History, kept: &Path) -> (TestCounts, Option<String>) {
    let shown = kept.display().to_string();
    let written = serde_json::to_vec(history.cases())
        .map_err(|e| e.to_string())
        .and_then(|json| {
            if let Some(dir) = kept.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            std::fs::write(kept, json).map_err(|e| e.to_string())
        });
    let counts = history.counts(shown.clone());
    let beyond = counts.total() as usize > history.cases().len();
    let mut warnings = Vec::new();
    if beyond {
        warnings.push(format!(
            "its test report holds more than {} test cases: all are counted, the first {} are kept at {shown}",
            test_report::MAX_CASES,
            test_report::MAX_CASES,
        ));
    }
    if let Err(e) = written {
        warnings.push(format!("its test cases could not be kept at {shown}: {e}"));
    }
    (counts, (!warnings.is_empty()).then(|| warnings.join("; ")))
}

/// Removes the report at `rel` from the worktree at `workdir` unless git
/// tracks it at `base` (then it is the task's change like any other): a
/// report is the run's record, not the task's work.
fn take_out(repo: &Repo, base: Oid, workdir: &Path, rel: &str) {
    let tracked = repo
        .open()
        .ok()
        .and_then(|r| {
            let tree = r.find_commit(base).ok()?.tree().ok()?;
            Some(tree.get_path(Path::new(rel)).is_ok())
        })
        .unwrap_or(true);
    // The worktree is the task's: the report is removed as what it is,
    // never through a link on the way.
    if !tracked && let Ok(worktree) = crate::untrusted::TaskDir::open(workdir) {
        let _ = worktree.remove(rel);
    }
}
