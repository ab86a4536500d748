//! A task's own test report (`junit`), taken after its command: read from
//! its worktree or tmp as hostile input (`crate::untrusted`), its test
//! cases kept in the run's logs (capped: `test_report`), its counts for
//! the journal, and the file taken out of the worktree so that it is never
//! committed with the task's result. Whatever goes wrong is a warning,
//! never a failure.

use std::path::Path;

use git2::Oid;
use swarm_protocol::TestCounts;

use crate::git::Repo;
use crate::test_report;
use crate::untrusted::{self, Limits};

/// Where an attempt's report is and goes.
pub(super) struct Report<'a> {
    /// As the plan says: relative to the worktree, or `$TMPDIR/...`.
    pub junit: &'a str,
    pub workdir: &'a Path,
    pub tmp: Option<&'a Path>,
    /// Where the test cases are kept.
    pub kept: &'a Path,
    /// For a task whose worktree is committed: the repository and the
    /// attempt's base, against which the report is taken out of it.
    pub base: Option<(&'a Repo, Oid)>,
    /// The person's secrets, taken out of the test cases as out of logs
    /// (see [`swarm_worker::redact`]).
    pub redact: Option<&'a swarm_worker::Redact>,
}

/// The report's counts, or a warning saying why there are none.
#[allow(
    clippy::disallowed_methods,
    reason = "the kept test cases go in the task's logs, swarm's own directory"
)]
pub(super) fn read(report: &Report<'_>) -> (Option<TestCounts>, Option<String>) {
    let (dir, rel, in_worktree) = match report.junit.strip_prefix("$TMPDIR/") {
        Some(rest) => match report.tmp {
            Some(tmp) => (tmp, rest, false),
            None => {
                return (
                    None,
                    Some(format!(
                        "read its test report `{}`: it has no tmp",
                        report.junit
                    )),
                );
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
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(e) => {
            return (
                None,
                Some(format!(
                    "no test report: failed to read `{}` (the plan's `junit`): {e}",
                    report.junit
                )),
            );
        }
    };
    let mut parsed = match test_report::parse(&bytes) {
        Ok(parsed) => parsed,
        Err(e) => {
            return (
                None,
                Some(format!(
                    "its test report `{}` is not JUnit XML: {e}",
                    report.junit
                )),
            );
        }
    };
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
    let kept = report.kept.display().to_string();
    let written = serde_json::to_vec(&parsed.cases)
        .map_err(|e| e.to_string())
        .and_then(|json| {
            if let Some(dir) = report.kept.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            std::fs::write(report.kept, json).map_err(|e| e.to_string())
        });
    let mut warnings = Vec::new();
    if parsed.beyond.cases > 0 {
        warnings.push(format!(
            "its test report `{}` holds {} test cases: all are counted, the first {} are kept at {kept}",
            report.junit,
            parsed.cases.len() + parsed.beyond.cases,
            test_report::MAX_CASES,
        ));
    }
    if let Err(e) = written {
        warnings.push(format!("its test cases could not be kept at {kept}: {e}"));
    }
    let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
    (Some(test_report::counts(&parsed, kept)), warning)
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
