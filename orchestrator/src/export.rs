//! A run's report in the formats CI systems read: JUnit XML (one test case
//! per task, failures with the tail of their log) and a Markdown summary
//! (for `$GITHUB_STEP_SUMMARY`). Both are views of the same report that
//! `swarm status` shows, so they cannot disagree with it.
//!
//! Reasons, file names, agent summaries and logs are the tasks' own text:
//! control characters in them are escaped (see [`crate::escape`]), and in
//! Markdown they cannot open code spans, links, images or HTML.

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use swarm_protocol::{RunReport, TaskReport, TaskStatus};

use crate::escape;

/// Bytes of a failed task's log put into reports.
const LOG_TAIL: u64 = 4096;

/// The last [`LOG_TAIL`] bytes of the file at `path` (empty if none).
pub fn log_tail(path: &Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(LOG_TAIL);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if start > 0 {
        format!("[... {start} earlier bytes]\n{text}")
    } else {
        text
    }
}

/// The end of a task's output: its stderr log, or its stdout log if that
/// is all it wrote.
fn task_tail(task: &TaskReport) -> String {
    let err = log_tail(Path::new(&task.stderr_log));
    let tail = if err.trim().is_empty() {
        log_tail(Path::new(&task.stdout_log))
    } else {
        err
    };
    escape::text(&tail).into_owned()
}

/// A task's reason (or its status) as one line of plain text.
fn reason(task: &TaskReport) -> String {
    task.reason
        .as_deref()
        .map_or_else(|| task.status.to_string(), |r| escape::line(r).into_owned())
}

fn is_failure(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Conflicted
    )
}

/// The run as JUnit XML: one test suite (the run), one test case per task.
/// Failed, timed-out and conflicted tasks are failures carrying their
/// reason and the tail of their log; blocked, skipped and cancelled tasks
/// are skipped.
pub fn junit(report: &RunReport) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new(format!("swarm run {}", report.run));
    for task in &report.tasks {
        let mut status = if task.status.is_success() {
            TestCaseStatus::success()
        } else if is_failure(task.status) {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(reason(task));
            s.set_type(task.status.as_str());
            s.set_description(task_tail(task));
            s
        } else {
            let mut s = TestCaseStatus::skipped();
            s.set_message(reason(task));
            s
        };
        if task.status == TaskStatus::Pending || task.status == TaskStatus::Running {
            status = TestCaseStatus::skipped();
            status.set_message(format!("still {}", task.status));
        }
        let mut case = TestCase::new(task.id.clone(), status);
        case.set_classname(format!("swarm.{}", report.run));
        case.set_time(Duration::from_millis(task.duration_ms));
        if let Some(r) = &task.git_ref {
            case.add_property(quick_junit::Property::new("ref", r.clone()));
        }
        if let Some(agent) = &task.agent {
            case.add_property(quick_junit::Property::new(
                "agent_outcome",
                agent.outcome.as_str(),
            ));
            case.add_property(quick_junit::Property::new(
                "tokens",
                agent.usage.total().to_string(),
            ));
            case.add_property(quick_junit::Property::new(
                "cost_usd",
                format!("{:.4}", agent.cost_usd),
            ));
        }
        suite.add_test_case(case);
    }
    if let Some(ms) = report.duration_ms {
        suite.set_time(Duration::from_millis(ms));
    }
    let mut junit = Report::new("swarm");
    junit.add_test_suite(suite);
    junit.to_string()
}

fn duration(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// The run as Markdown: a headline, a table of tasks, and the tail of each
/// failed task's log in a collapsed section.
pub fn markdown(report: &RunReport) -> String {
    let mut out = String::new();
    let state = match report.exit_code {
        None => "running",
        Some(0) => "succeeded",
        Some(130) => "interrupted",
        Some(_) => "finished with failures",
    };
    let icon = match report.exit_code {
        Some(0) => "✅",
        None => "⏳",
        _ => "❌",
    };
    let _ = writeln!(out, "## {icon} swarm run `{}`: {state}\n", report.run);
    let count =
        |pred: &dyn Fn(TaskStatus) -> bool| report.tasks.iter().filter(|t| pred(t.status)).count();
    let _ = writeln!(
        out,
        "{} tasks: {} merged, {} succeeded (read-only), {} failed, {} conflicted, {} blocked or skipped, {} cancelled. \
         {}{}.\n",
        report.tasks.len(),
        count(&|s| s == TaskStatus::Merged),
        count(&|s| s == TaskStatus::Succeeded),
        count(&|s| matches!(s, TaskStatus::Failed | TaskStatus::TimedOut)),
        count(&|s| s == TaskStatus::Conflicted),
        count(&|s| matches!(s, TaskStatus::Blocked | TaskStatus::Skipped)),
        count(&|s| s == TaskStatus::Cancelled),
        match &report.integration_branch {
            Some(branch) => format!(
                "Branch `{branch}` at `{}`",
                short(&report.integration_commit)
            ),
            None => "No branch (read-only run)".to_string(),
        },
        report
            .duration_ms
            .map(|ms| format!(", {}", duration(ms)))
            .unwrap_or_default(),
    );
    let agents = report.tasks.iter().any(|t| t.agent.is_some());
    out.push_str("| task | status | time | attempts | changed |");
    if agents {
        out.push_str(" tokens | cost |");
    }
    out.push_str(" note |\n|---|---|---:|---:|---:|");
    if agents {
        out.push_str("---:|---:|");
    }
    out.push_str("---|\n");
    for t in &report.tasks {
        let note = match t.status {
            TaskStatus::Conflicted => format!(
                "conflict in {}",
                t.conflict_files
                    .iter()
                    .map(|f| escape::markdown(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            s if s.is_success() => t
                .agent
                .as_ref()
                .map(|a| escape::markdown(&a.summary))
                .unwrap_or_default(),
            _ => escape::markdown_prose(t.reason.as_deref().unwrap_or_default()),
        };
        let _ = write!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            t.id,
            t.status,
            if t.attempts == 0 {
                "-".into()
            } else {
                duration(t.duration_ms)
            },
            t.attempts,
            t.changed_files.len()
        );
        if agents {
            match &t.agent {
                Some(a) => {
                    let _ = write!(out, " {} | ${:.4} |", a.usage.total(), a.cost_usd);
                }
                None => out.push_str(" | |"),
            }
        }
        let _ = writeln!(out, " {note} |");
    }
    for t in report.tasks.iter().filter(|t| is_failure(t.status)) {
        let tail = task_tail(t);
        if tail.trim().is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n<details><summary><code>{}</code>: {}</summary>\n\n```text\n{}\n```\n\n</details>",
            t.id,
            escape::html(t.reason.as_deref().unwrap_or(t.status.as_str())),
            tail.trim_end().replace("```", "'''")
        );
    }
    out
}
