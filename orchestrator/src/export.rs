//! A run's report in the formats CI systems read: JUnit XML (one test case
//! per task, failures with the tail of their log) and a Markdown summary
//! (for `$GITHUB_STEP_SUMMARY`). Both are views of the same report that
//! `swarm status` shows, so they cannot disagree with it.
//!
//! Reasons, file names, agent summaries and logs are the tasks' own text:
//! control characters in them are escaped (see [`crate::escape`]), and in
//! Markdown they cannot open code spans, links, images or HTML.

#![allow(
    clippy::disallowed_methods,
    reason = "a run's own files (its journal, the test cases swarm kept) and the report files the person names"
)]

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use swarm_protocol::experiment::{Decision, Pick, Ranked};
use swarm_protocol::{RunReport, TaskReport, TaskStatus};

use crate::escape;
use crate::git::short;

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

/// The run `report` (whose journal is `events`, flushed to the disk at
/// `flushes`) as one HTML page, with the end of each task's logs.
pub fn html(
    report: &RunReport,
    events: &[swarm_protocol::Event],
    flushes: &[crate::flushes::Flush],
) -> String {
    let timeline = crate::timeline::Timeline::of(events).with_flushes(flushes);
    crate::html::render(report, &timeline, &|task| {
        let mut tail = log_tail(Path::new(&task.stdout_log));
        let err = log_tail(Path::new(&task.stderr_log));
        if !err.trim().is_empty() {
            if !tail.is_empty() && !tail.ends_with('\n') {
                tail.push('\n');
            }
            tail.push_str(&err);
        }
        tail
    })
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

/// How a failed task ended, as JUnit's failure `type`: its status
/// (`failed`, `timed_out`, `stalled`, `conflicted`...), or for an agent that
/// did not finish, how it stopped (`max_turns`, `budget`, `model_error`,
/// `crashed`...), so that each end is told apart.
fn end_kind(task: &TaskReport) -> &'static str {
    use swarm_protocol::agent::AgentOutcome;
    match (&task.agent, task.status) {
        (Some(agent), TaskStatus::Failed) if agent.outcome != AgentOutcome::Finished => {
            agent.outcome.as_str()
        }
        (_, status) => status.as_str(),
    }
}

fn is_failure(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Failed
            | TaskStatus::TimedOut
            | TaskStatus::Stalled
            | TaskStatus::Conflicted
            | TaskStatus::BrokeVerify
    )
}

/// The end of the run-wide verify's output on the commit that `task`'s
/// merge made, which failed (for a task that broke it).
fn verify_tail(report: &RunReport, task: &TaskReport) -> String {
    report
        .verify_runs
        .iter()
        .rfind(|r| !r.passed && r.after.as_deref() == Some(task.id.as_str()))
        .map(|r| {
            let err = log_tail(Path::new(&r.stderr_log));
            let tail = match err.trim().is_empty() {
                true => log_tail(Path::new(&r.stdout_log)),
                false => err,
            };
            escape::text(&tail).into_owned()
        })
        .unwrap_or_default()
}

/// The run-wide verify as one test case: failed when the integration
/// branch's last verdict is a failure (or it could not run).
fn verify_case(report: &RunReport) -> Option<TestCase> {
    let last = report.verify_runs.last()?;
    let tip = report
        .verify_runs
        .iter()
        .rfind(|r| r.commit == report.integration_commit);
    let status = match tip {
        Some(r) if r.passed => {
            // Each failure of that tree before it passed: a flaky run.
            let mut s = TestCaseStatus::success();
            for flake in report
                .verify_runs
                .iter()
                .filter(|f| f.commit == r.commit && !f.passed)
            {
                let mut rerun = quick_junit::TestRerun::new(NonSuccessKind::Failure);
                rerun.set_message(format!(
                    "flaky: the run-wide verify failed on {} then passed, see {}",
                    short(&flake.commit),
                    flake.stderr_log
                ));
                s.add_rerun(rerun);
            }
            s
        }
        _ => {
            let failed = tip.unwrap_or(last);
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!(
                "the run-wide verify failed on {} ({}), see {}",
                short(&failed.commit),
                failed.purpose.as_str(),
                failed.stderr_log
            ));
            s.set_description(escape::text(&log_tail(Path::new(&failed.stderr_log))).into_owned());
            s
        }
    };
    let mut case = TestCase::new("(run-wide verify)", status);
    case.set_classname(format!("swarm.{}", report.run));
    let ms: u64 = report.verify_runs.iter().map(|r| r.duration_ms).sum();
    case.set_time(Duration::from_millis(ms));
    case.add_property(quick_junit::Property::new(
        "runs",
        report.verify_runs.len().to_string(),
    ));
    Some(case)
}

/// The run as JUnit XML: one test suite (the run), one test case per task;
/// a task with its own test report (`junit`) is a suite of its own, of
/// its tests.
/// Failed, timed-out and conflicted tasks are failures carrying their
/// reason and the tail of their log; blocked, skipped and cancelled tasks
/// are skipped.
pub fn junit(report: &RunReport) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new(format!("swarm run {}", report.run));
    let mut task_suites = Vec::new();
    for task in tree_order(report) {
        let mut status = if task.status.is_success() {
            TestCaseStatus::success()
        } else if is_failure(task.status) {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(reason(task));
            s.set_type(end_kind(task));
            s.set_description(match task.status {
                TaskStatus::BrokeVerify => verify_tail(report, task),
                _ => task_tail(task),
            });
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
        // A variant that failed is part of its experiment's work, not a
        // failure of the run: its experiment's case says how that went.
        if task.variant_of.is_some() && is_failure(task.status) {
            status = TestCaseStatus::skipped();
            status.set_message(format!("variant not picked: {}", reason(task)));
        }
        let mut case = TestCase::new(task.id.clone(), status);
        case.set_classname(format!("swarm.{}", report.run));
        case.set_time(Duration::from_millis(task.duration_ms));
        if let Some(r) = &task.git_ref {
            case.add_property(quick_junit::Property::new("ref", r.clone()));
        }
        if let Some(of) = &task.variant_of {
            case.add_property(quick_junit::Property::new("variant_of", of.clone()));
        }
        if let Some(parent) = &task.parent {
            case.add_property(quick_junit::Property::new("parent", parent.clone()));
        }
        for child in &task.subtasks {
            case.add_property(quick_junit::Property::new("subtask", child.clone()));
        }
        if let Some(value) = task.score.as_ref().and_then(|s| s.value) {
            case.add_property(quick_junit::Property::new("score", value.to_string()));
        }
        if let Some(d) = &task.experiment {
            case.add_property(quick_junit::Property::new("pick", d.pick.as_str()));
            if let Some(w) = &d.winner {
                case.add_property(quick_junit::Property::new("winner", w.clone()));
            }
            for r in &d.ranking {
                let place = r.rank.map_or_else(|| "-".to_string(), |n| n.to_string());
                case.add_property(quick_junit::Property::new(
                    format!("rank.{}", r.variant),
                    format!("{place} {}", ranking_note(r)),
                ));
            }
        }
        for warning in &task.warnings {
            case.add_property(quick_junit::Property::new("warning", warning.clone()));
        }
        // Where each attempt ran, on a cluster.
        for j in &task.jobs {
            case.add_property(quick_junit::Property::new(
                format!("job.{}", j.attempt),
                j.job.clone(),
            ));
            if let Some(node) = &j.node {
                case.add_property(quick_junit::Property::new(
                    format!("node.{}", j.attempt),
                    node.clone(),
                ));
            }
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
            if let Some(output) = &agent.output {
                // The answer is the model's: escaped as any property value.
                case.add_property(quick_junit::Property::new(
                    "output",
                    crate::escape::line(&output.to_string()).to_string(),
                ));
            }
        }
        // A task with its own test report is a suite of its tests: its
        // own case only when it failed with no failing test to say so.
        // A shard's entries skipped by selection (`affected`) are its
        // tests too: skipped, each named as its entry.
        if let Some(tests) = &task.tests
            && let Some(cases) =
                kept_cases(tests).or_else(|| (!tests.selected_out.is_empty()).then(Vec::new))
        {
            let mut own = TestSuite::new(task.id.clone());
            for c in &cases {
                own.add_test_case(test_case(c));
            }
            for entry in &tests.selected_out {
                let mut status = TestCaseStatus::skipped();
                status.set_message("not affected by the run's changes (`affected = true`)");
                let mut skipped = TestCase::new(escape::line(entry).into_owned(), status);
                skipped.set_classname("swarm.selection");
                own.add_test_case(skipped);
            }
            // Its own case too when nothing else says it passed or failed
            // (a shard that ran none of its entries, or no report).
            if cases.is_empty() || (is_failure(task.status) && tests.failed == 0) {
                own.add_test_case(case);
            }
            own.set_time(Duration::from_millis(task.duration_ms));
            task_suites.push(own);
            continue;
        }
        suite.add_test_case(case);
    }
    if let Some(case) = verify_case(report) {
        suite.add_test_case(case);
    }
    if let Some(ms) = report.duration_ms {
        suite.set_time(Duration::from_millis(ms));
    }
    let mut junit = Report::new("swarm");
    // Empty when every task was a suite of its own.
    if !suite.test_cases.is_empty() || task_suites.is_empty() {
        junit.add_test_suite(suite);
    }
    junit.add_test_suites(task_suites);
    for suite in &mut junit.test_suites {
        properties_to_suite(suite);
    }
    Ok(skipped_by_name(&junit.to_string()?))
}

/// `suite`'s test cases' properties (a task's ref, score, jobs) moved to
/// the suite, each named after its case (`edit.ref`): the JUnit schema CI
/// systems validate against (Jenkins' `junit-10.xsd`) has properties on a
/// suite only, and refuses a file with them on a test case.
fn properties_to_suite(suite: &mut TestSuite) {
    let mut moved = Vec::new();
    for case in &mut suite.test_cases {
        for p in std::mem::take(&mut case.properties) {
            let name = format!("{}.{}", case.name.as_str(), p.name.as_str());
            moved.push(quick_junit::Property::new(name, p.value));
        }
    }
    suite.properties.extend(moved);
}

/// `xml` (quick-junit's) with each suite's count of skipped tests in the
/// attribute the JUnit schema CI systems validate against names it
/// (Jenkins' `junit-10.xsd`: `skipped`), not in `disabled`, which that
/// schema refuses. Anything that does not read is left as it was.
fn skipped_by_name(xml: &str) -> String {
    use quick_xml::events::{BytesStart, Event};
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(xml.len()));
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(event) => event,
            Err(_) => return xml.to_string(),
        };
        let renamed = |e: &BytesStart<'_>| {
            let mut tag = BytesStart::new("testsuite");
            for a in e.attributes().flatten() {
                match a.key.as_ref() {
                    b"disabled" => tag.push_attribute((&b"skipped"[..], a.value.as_ref())),
                    _ => tag.push_attribute(a),
                }
            }
            tag
        };
        let written = match event {
            Event::Start(e) if e.name().as_ref() == b"testsuite" => {
                writer.write_event(Event::Start(renamed(&e)))
            }
            Event::Empty(e) if e.name().as_ref() == b"testsuite" => {
                writer.write_event(Event::Empty(renamed(&e)))
            }
            other => writer.write_event(other),
        };
        if written.is_err() {
            return xml.to_string();
        }
    }
    String::from_utf8(writer.into_inner()).unwrap_or_else(|_| xml.to_string())
}

/// The test cases a task's report kept (`None` if they cannot be read:
/// the task is then one case, as without a report).
fn kept_cases(tests: &swarm_protocol::TestCounts) -> Option<Vec<swarm_protocol::TestCase>> {
    let bytes = std::fs::read(&tests.cases).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One of a task's own test cases as JUnit: a flaky test a success with
/// its earlier failures as `flakyFailure`s, a test that failed every time a
/// failure with the earlier ones as `rerunFailure`s (as Surefire and
/// nextest write them), a failing test the quarantine holds skipped with
/// the type `quarantined` (it did not gate), its failure in the message.
fn test_case(c: &swarm_protocol::TestCase) -> TestCase {
    use swarm_protocol::TestOutcome;
    let failure = |kind| {
        let mut s = TestCaseStatus::non_success(kind);
        if !c.message.is_empty() {
            s.set_message(escape::line(&c.message).into_owned());
        }
        if !c.text.is_empty() {
            s.set_description(escape::text(&c.text).into_owned());
        }
        s
    };
    let reruns = || {
        c.reruns.iter().map(|r| {
            let mut rerun = quick_junit::TestRerun::new(NonSuccessKind::Failure);
            // The schema CI systems check (`junit-10.xsd`) wants a type
            // and allows no time on a rerun.
            rerun.set_type(format!("failure in attempt {}", r.attempt));
            if !r.message.is_empty() {
                rerun.set_message(escape::line(&r.message).into_owned());
            }
            if !r.text.is_empty() {
                rerun.set_description(escape::text(&r.text).into_owned());
            }
            rerun
        })
    };
    let status = match (c.outcome, &c.quarantined) {
        (TestOutcome::Failed, Some(note)) => {
            let mut s = TestCaseStatus::skipped();
            s.set_type("quarantined");
            s.set_message(escape::line(&format!("{note}; failed: {}", c.message)).into_owned());
            if !c.text.is_empty() {
                s.set_description(escape::text(&c.text).into_owned());
            }
            s
        }
        (TestOutcome::Passed, _) => TestCaseStatus::success(),
        (TestOutcome::Flaky, _) => {
            let mut s = TestCaseStatus::success();
            s.add_reruns(reruns());
            s
        }
        (TestOutcome::Failed, None) => {
            let mut s = failure(NonSuccessKind::Failure);
            s.add_reruns(reruns());
            s
        }
        (TestOutcome::Skipped, _) => {
            let mut s = TestCaseStatus::skipped();
            if !c.message.is_empty() {
                s.set_message(escape::line(&c.message).into_owned());
            }
            s
        }
    };
    let mut case = TestCase::new(escape::line(&c.name).into_owned(), status);
    if !c.classname.is_empty() {
        case.set_classname(escape::line(&c.classname).into_owned());
    }
    case.set_time(Duration::from_millis(c.time_ms));
    // No properties (its file among them): the JUnit schema CI systems
    // check (`junit-10.xsd`) has none on a test case, and its classname
    // says where it is.
    case
}

fn duration(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A run's tasks counted by outcome. Variants count through their
/// experiment, not as tasks of their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub tasks: usize,
    pub merged: usize,
    /// Succeeded and not merged: read-only tasks (and experiments that
    /// keep their variants unmerged).
    pub succeeded: usize,
    pub failed: usize,
    pub conflicted: usize,
    pub blocked_or_skipped: usize,
    pub cancelled: usize,
    pub variants: usize,
    /// Subtasks that succeeded: their results reached the branch with
    /// their parents'.
    pub subtasks: usize,
    /// Tasks whose merge broke the run-wide verify.
    pub broke_verify: usize,
}

impl Tally {
    pub fn of(report: &RunReport) -> Self {
        let mut tally = Self::default();
        for t in &report.tasks {
            if t.variant_of.is_some() {
                tally.variants += 1;
                continue;
            }
            tally.tasks += 1;
            if t.parent.is_some() && t.status == TaskStatus::Succeeded {
                tally.subtasks += 1;
                continue;
            }
            let slot = match t.status {
                TaskStatus::Merged => &mut tally.merged,
                TaskStatus::Succeeded => &mut tally.succeeded,
                TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Stalled => {
                    &mut tally.failed
                }
                TaskStatus::Conflicted => &mut tally.conflicted,
                TaskStatus::Blocked | TaskStatus::Skipped => &mut tally.blocked_or_skipped,
                TaskStatus::Cancelled => &mut tally.cancelled,
                TaskStatus::BrokeVerify => &mut tally.broke_verify,
                TaskStatus::Pending | TaskStatus::Running => continue,
            };
            *slot += 1;
        }
        tally
    }

    /// `2 merged, 0 succeeded (read-only), ...`, and the variants if any.
    pub fn counts(&self) -> String {
        let mut out = format!(
            "{} merged, {} succeeded (read-only), {} failed, {} conflicted, {} blocked or skipped, {} cancelled",
            self.merged,
            self.succeeded,
            self.failed,
            self.conflicted,
            self.blocked_or_skipped,
            self.cancelled
        );
        if self.subtasks > 0 {
            let _ = write!(
                out,
                "; {} subtask{} merged with {} parent",
                self.subtasks,
                if self.subtasks == 1 { "" } else { "s" },
                if self.subtasks == 1 { "its" } else { "their" }
            );
        }
        if self.broke_verify > 0 {
            let _ = write!(out, ", {} broke verify", self.broke_verify);
        }
        if self.variants > 0 {
            let _ = write!(out, "; {} variants (see the rankings)", self.variants);
        }
        out
    }
}

/// The tasks of `report` as a tree: each task followed by the subtasks it
/// spawned (depth first), in the report's order otherwise.
pub fn tree_order(report: &RunReport) -> Vec<&swarm_protocol::TaskReport> {
    let by_id: std::collections::HashMap<&str, &swarm_protocol::TaskReport> =
        report.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut out = Vec::with_capacity(report.tasks.len());
    let mut stack: Vec<&swarm_protocol::TaskReport> = report
        .tasks
        .iter()
        .filter(|t| t.parent.is_none())
        .rev()
        .collect();
    while let Some(t) = stack.pop() {
        out.push(t);
        stack.extend(
            t.subtasks
                .iter()
                .rev()
                .filter_map(|c| by_id.get(c.as_str()).copied()),
        );
    }
    out
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
    let tally = Tally::of(report);
    let _ = writeln!(
        out,
        "{} tasks: {}. {}{}.\n",
        tally.tasks,
        tally.counts(),
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
    for t in tree_order(report) {
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
    for t in &report.tasks {
        if let Some(d) = &t.experiment {
            out.push_str(&markdown_ranking(&t.id, d));
        }
    }
    for t in report
        .tasks
        .iter()
        .filter(|t| is_failure(t.status) && t.variant_of.is_none())
    {
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

/// One variant's line of facts, for places with one cell for them.
fn ranking_note(r: &Ranked) -> String {
    let score = r.score.map_or_else(|| "-".to_string(), |s| s.to_string());
    let mut note = format!("{} score={score}", r.task);
    if let Some(why) = &r.ineligible {
        let _ = write!(note, " ({})", escape::line(why));
    }
    note
}

/// The columns of a ranking: rank, variant, score, verify, tokens, cost,
/// time, diff and a note (the winner, or why a variant was not eligible).
pub fn ranking_cells(d: &Decision) -> Vec<[String; 9]> {
    d.ranking
        .iter()
        .map(|r| {
            let winner = d.winner.as_deref() == Some(r.task.as_str());
            [
                r.rank.map_or_else(|| "-".to_string(), |n| n.to_string()),
                r.task.clone(),
                r.score.map_or_else(|| "-".to_string(), |s| s.to_string()),
                match r.verify_passed {
                    Some(true) => "passed".into(),
                    Some(false) => "failed".into(),
                    None => "-".into(),
                },
                r.tokens.to_string(),
                format!("${:.4}", r.cost_usd),
                duration(r.duration_ms),
                r.diff.map_or_else(|| "-".to_string(), |d| d.to_string()),
                {
                    let with: Vec<String> = r
                        .values
                        .iter()
                        .map(|(k, v)| escape::line(&format!("{k}={v}")).into_owned())
                        .collect();
                    let note = match (&r.ineligible, winner) {
                        (_, true) => "picked".to_string(),
                        (Some(why), _) => escape::line(why).into_owned(),
                        (None, false) => String::new(),
                    };
                    [with.join(" "), note]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("  ")
                },
            ]
        })
        .collect()
}

/// The headline of a decided experiment: what was picked, or why not.
pub fn ranking_headline(task: &str, d: &Decision) -> String {
    let what = match (&d.winner, d.pick) {
        (Some(w), _) => format!("picked {w}"),
        (None, Pick::None) => "kept every variant, merged none".to_string(),
        (None, _) => "no variant could be picked".to_string(),
    };
    let mut line = format!("experiment {task} (pick = \"{}\"): {what}", d.pick);
    if let Some(s) = &d.saved {
        let _ = write!(
            line,
            "; {} never started, {} stopped (they had spent {}, {} tokens, ${:.4}); about {} and ${:.4} not spent",
            s.not_started.len(),
            s.stopped.len(),
            duration(s.stopped_ms),
            s.stopped_tokens,
            s.stopped_cost_usd,
            duration(s.estimated_ms),
            s.estimated_cost_usd,
        );
    }
    line
}

/// A decided experiment as plain text: its headline and its ranking.
pub fn ranking_table(task: &str, d: &Decision) -> String {
    const HEAD: [&str; 9] = [
        "rank", "variant", "score", "verify", "tokens", "cost", "time", "diff", "",
    ];
    let cells = ranking_cells(d);
    // Tokens and cost are an agent's: command variants spend none.
    let spent = d.ranking.iter().any(|r| r.tokens > 0 || r.cost_usd > 0.0);
    let mut width = HEAD.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: [&str; 9]| {
        let mut out = String::from("   ");
        for (i, (cell, w)) in row.iter().zip(width).enumerate() {
            // Numbers right, words left; no padding after the last.
            let _ = match i {
                4 | 5 if !spent => Ok(()),
                8 => write!(out, " {cell}"),
                2 | 4 | 5 | 6 => write!(out, " {cell:>w$}"),
                _ => write!(out, " {cell:<w$}"),
            };
        }
        out.trim_end().to_string()
    };
    let mut out = format!("  {}\n", ranking_headline(task, d));
    out.push_str(&line(HEAD));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row.each_ref().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// A decided experiment as a Markdown section.
fn markdown_ranking(task: &str, d: &Decision) -> String {
    let mut out = format!(
        "\n### {}\n\n| rank | variant | score | verify | tokens | cost | time | diff | note |\n|---:|---|---:|---|---:|---:|---:|---|---|\n",
        escape::markdown_prose(&ranking_headline(task, d))
    );
    for row in ranking_cells(d) {
        let [rank, variant, score, verify, tokens, cost, time, diff, note] = row;
        let _ = writeln!(
            out,
            "| {rank} | `{variant}` | {score} | {verify} | {tokens} | {cost} | {time} | {diff} | {} |",
            escape::markdown_prose(&note)
        );
    }
    out
}
