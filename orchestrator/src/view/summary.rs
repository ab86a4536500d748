//! The table at the end of a run and in `swarm status`, the lines that
//! name test counts, conflicting hunks and what sandboxed tasks are
//! granted: a finished run's report as text for people.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use swarm_protocol::verify::VerifyPurpose;
use swarm_protocol::{AttemptOutcome, RunReport, TaskStatus};

use crate::escape;
use crate::report::RunState;

use super::units::duration;
use crate::git::short;

/// What the run-wide verify did and where the branch stands with it, if
/// it ran: `verify: 5 runs (4 to find what broke it, 2.10s); the branch
/// passes`.
fn verify_line(report: &RunReport, rel: &dyn Fn(&str) -> String) -> Option<String> {
    let runs = &report.verify_runs;
    let last = runs.last()?;
    let searching = runs
        .iter()
        .filter(|r| r.purpose != VerifyPurpose::Tip)
        .count();
    let ms: u64 = runs.iter().map(|r| r.duration_ms).sum();
    // A failure that a later run of the same commit passed was a flake.
    let reproduced = |r: &&swarm_protocol::verify::VerifyRun| {
        !r.passed && !runs.iter().any(|p| p.commit == r.commit && p.passed)
    };
    let verdict = if let Some(base) = runs
        .iter()
        .filter(reproduced)
        .find(|r| r.purpose == VerifyPurpose::Base)
    {
        format!(
            "it FAILS at the base {} too, so no task is blamed; see {}",
            short(&base.commit),
            rel(&base.stderr_log)
        )
    } else if let Some(named) = &report.verify_named {
        named.reason.clone()
    } else if let AttemptOutcome::SpawnFailed { message } = &last.outcome {
        format!("it could not run: {message}")
    } else if let Some(proof) = runs.iter().filter(reproduced).rfind(|r| {
        r.purpose == VerifyPurpose::Proof
            && runs
                .iter()
                .rfind(|t| t.commit == report.integration_commit)
                .is_some_and(|t| !t.passed)
    }) {
        // The search found where it first fails, and the branch without
        // that merge fails too: nothing was taken out.
        format!(
            "the branch FAILS, and no single task broke it: it fails without `{}`'s merge too (every merge is kept), see {}",
            proof.after.as_deref().unwrap_or("?"),
            rel(&proof.stderr_log)
        )
    } else {
        let merged = report
            .tasks
            .iter()
            .any(|t| t.status == swarm_protocol::TaskStatus::Merged);
        let taken_out = report
            .tasks
            .iter()
            .any(|t| t.status == swarm_protocol::TaskStatus::BrokeVerify);
        match runs.iter().rfind(|r| r.commit == report.integration_commit) {
            // Nothing of the run's work is left on it: that is no pass of
            // the run's work.
            Some(r) if r.passed && taken_out && !merged => {
                "every merge was taken out: the branch is the run's base again".to_string()
            }
            Some(r) if r.passed => "the branch passes".to_string(),
            Some(r) => format!("the branch FAILS, see {}", rel(&r.stderr_log)),
            None => "the branch's tip was not verified".to_string(),
        }
    };
    let flaky_runs = report.merge_queue.as_ref().map_or(0, |q| q.flaky_runs);
    // Runs spent searching, and flaky ones, are said when there were
    // some.
    let mut said = Vec::new();
    if searching > 0 {
        said.push(format!("{searching} to find what broke it"));
    }
    if flaky_runs > 0 {
        said.push(format!("{flaky_runs} flaky"));
    }
    said.push(duration(ms));
    Some(format!(
        "verify: {} run{} ({}); {verdict}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        said.join(", ")
    ))
}

/// The table printed at the end of a run and by `swarm status`, with every
/// control character a task put into it (file names, reasons) escaped.
pub fn summary(report: &RunReport, workdir: &Path) -> String {
    escape::text(&summary_text(report, workdir, true, false)).into_owned()
}

/// The summary of `swarm run -q`: the table only has the tasks that did
/// not succeed (none when all did), so that it stays short however many
/// tasks the run had; the totals and every next step are the same.
pub fn quiet_summary(report: &RunReport, workdir: &Path) -> String {
    escape::text(&summary_text(report, workdir, true, true)).into_owned()
}

/// The summary `swarm status` prints: a run whose journal has no end is
/// running only while a coordinator drives it (`driven`); otherwise its
/// coordinator died, and the summary says how to continue it.
pub fn status_summary(report: &RunReport, workdir: &Path, driven: bool) -> String {
    escape::text(&summary_text(report, workdir, driven, false)).into_owned()
}

/// The summary; `only_unsuccessful` leaves the tasks that succeeded out
/// of the table.
fn summary_text(
    report: &RunReport,
    workdir: &Path,
    driven: bool,
    only_unsuccessful: bool,
) -> String {
    let prefix = format!("{}/", workdir.display());
    let rel = |p: &str| p.strip_prefix(prefix.as_str()).unwrap_or(p).to_string();
    let mut out = String::new();
    let _ = writeln!(out, "\nrun {}: {}", report.run, state_words(report, driven));
    task_table(&mut out, report, only_unsuccessful);
    totals_lines(&mut out, report, &rel);
    ends_lines(&mut out, report, &rel);
    build_output_warnings(report, &mut out);
    out
}

/// How the run stands, in the words of a summary.
fn state_words(report: &RunReport, driven: bool) -> String {
    // The same decision as `swarm runs`, in the words of a summary.
    match RunState::of(report, driven) {
        RunState::Running => "running".to_string(),
        RunState::Interrupted => format!(
            "interrupted (its coordinator is gone); `swarm resume {}` continues it",
            report.run
        ),
        RunState::FinishedOk => "succeeded".to_string(),
        RunState::Stopped => format!("interrupted; `swarm resume {}` continues it", report.run),
        RunState::Failed => format!(
            "finished with failures (exit {})",
            report.exit_code.unwrap_or_default()
        ),
    }
}

/// The table of tasks (those that did not succeed, with
/// `only_unsuccessful`).
fn task_table(out: &mut String, report: &RunReport, only_unsuccessful: bool) {
    let width = report
        .tasks
        .iter()
        .map(|t| t.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let rows: Vec<&swarm_protocol::TaskReport> = crate::export::tree_order(report)
        .into_iter()
        .filter(|t| !only_unsuccessful || !t.status.is_success())
        .collect();
    let agents = report.tasks.iter().any(|t| t.agent.is_some());
    // A cluster run says where each task's last attempt ran.
    let cluster = report.tasks.iter().any(|t| !t.jobs.is_empty());
    // `broke-verify` is the one status longer than the column.
    let status_width = report
        .tasks
        .iter()
        .map(|t| t.status.as_str().len())
        .max()
        .unwrap_or(0)
        .max(10);
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "  {:<width$}  {:<status_width$}  {:>8}  {:>3}  {:>7}  {}{}result",
            "task",
            "status",
            "time",
            "try",
            "changed",
            if cluster {
                format!("{:<16}  ", "where")
            } else {
                String::new()
            },
            if agents { "  tokens      cost  " } else { "" }
        );
    }
    for t in rows {
        let result = match (&t.git_ref, t.status) {
            (_, TaskStatus::Conflicted) => format!("conflict in {}", t.conflict_files.join(", ")),
            (Some(r), _) => r.clone(),
            // A reason holds what a task or a model wrote: one line, so
            // that it cannot forge rows of the table.
            (None, _) => escape::line(t.reason.as_deref().unwrap_or_default()).into_owned(),
        };
        let usage = match (&t.agent, agents) {
            (Some(a), _) => format!(
                "{:>8}  {:>8}  ",
                a.usage.total(),
                format!("${:.4}", a.cost_usd)
            ),
            (None, true) => format!("{:>8}  {:>8}  ", "-", "-"),
            (None, false) => String::new(),
        };
        let place = match (cluster, t.jobs.last()) {
            (false, _) => String::new(),
            (true, None) => format!("{:<16}  ", "-"),
            (true, Some(j)) => {
                let at = j
                    .node
                    .as_deref()
                    .map(|n| format!(" on {n}"))
                    .unwrap_or_default();
                format!("{:<16}  ", format!("job {}{at}", j.job))
            }
        };
        let _ = writeln!(
            out,
            "  {:<width$}  {:<status_width$}  {:>8}  {:>3}  {:>7}  {place}{usage}{result}",
            t.id,
            t.status.as_str(),
            if t.attempts == 0 {
                "-".into()
            } else {
                duration(t.duration_ms)
            },
            t.attempts,
            t.changed_files.len(),
        );
    }
}

/// Experiments' rankings, the counts, tests, the branch, the run-wide
/// verify, warnings and what agents spent.
fn totals_lines(out: &mut String, report: &RunReport, rel: &dyn Fn(&str) -> String) {
    for t in &report.tasks {
        if let Some(decision) = &t.experiment {
            out.push('\n');
            out.push_str(&crate::export::ranking_table(&t.id, decision));
        }
    }
    let _ = writeln!(out, "\n  {}", crate::export::Tally::of(report).counts());
    if let Some(line) = crate::test_report::tests_line(report) {
        let _ = writeln!(out, "  {line}");
        for (word, task, test) in crate::test_report::named_tests(report) {
            let _ = writeln!(out, "    {word}: {test} (in {task})");
        }
    }
    let took = report
        .duration_ms
        .map(|d| format!(", {}", duration(d)))
        .unwrap_or_default();
    match &report.integration_branch {
        Some(branch) => {
            let _ = writeln!(
                out,
                "  branch {branch} at {}{took}",
                short(&report.integration_commit)
            );
        }
        None => {
            let _ = writeln!(out, "  no branch (read-only run){took}");
        }
    }
    if let Some(line) = verify_line(report, &rel) {
        let _ = writeln!(out, "  {line}");
    }
    for t in report.tasks.iter().filter(|t| !t.warnings.is_empty()) {
        for warning in &t.warnings {
            let _ = writeln!(out, "  warning: `{}` {warning}", t.id);
        }
    }
    let agents: Vec<_> = report
        .tasks
        .iter()
        .filter_map(|t| t.agent.as_ref())
        .collect();
    if !agents.is_empty() {
        let turns: u32 = agents.iter().map(|a| a.turns).sum();
        let input: u64 = agents.iter().map(|a| a.usage.input_tokens).sum();
        let output: u64 = agents.iter().map(|a| a.usage.output_tokens).sum();
        let usd: f64 = agents.iter().map(|a| a.cost_usd).sum();
        let _ = writeln!(
            out,
            "  agents: {} session{}, {turns} turn{}, {input} tokens in, {output} out, ${usd:.4}",
            agents.len(),
            if agents.len() == 1 { "" } else { "s" },
            if turns == 1 { "" } else { "s" },
        );
    }
}

/// How each task that did not succeed ended and what to do next: reasons
/// and logs, conflicts, what a resolved conflict lets run, files a
/// snapshot left out.
fn ends_lines(out: &mut String, report: &RunReport, rel: &dyn Fn(&str) -> String) {
    for t in report.tasks.iter().filter(|t| {
        matches!(
            t.status,
            TaskStatus::Failed
                | TaskStatus::TimedOut
                | TaskStatus::Stalled
                | TaskStatus::BrokeVerify
        ) && t.variant_of.is_none()
    }) {
        if let Some(reason) = &t.reason {
            let _ = writeln!(out, "  {}: {}", t.id, escape::line(reason));
        }
        // A task that broke verify did its own job: its reason names the
        // verify's log, which is the one to read. Nor is a log the reason
        // names already (its own verify's) named twice.
        let log = rel(&t.stderr_log);
        // (An empty path is in every reason: it is no name.)
        let named = !log.is_empty()
            && t.reason
                .as_deref()
                .is_some_and(|r| r.contains(log.as_str()));
        if t.status != TaskStatus::BrokeVerify && !named {
            let _ = writeln!(out, "  {} log: {log}", t.id);
        }
        if let Some(transcript) = t.agent.as_ref().and_then(|a| a.transcript.as_deref()) {
            let _ = writeln!(out, "  {} transcript: {}", t.id, rel(transcript));
        }
    }
    // A conflict is the user's to merge: the next step, in one line (the
    // whole recipe is in `swarm resolve --help`).
    for t in report
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Conflicted)
    {
        let place = if t.conflict_hunks.is_empty() {
            t.conflict_files.join(", ")
        } else {
            hunks_by_file(&t.conflict_hunks)
        };
        let with = match t.conflict_with.as_slice() {
            [] => String::new(),
            tasks => format!(" with {}", tasks.join(", ")),
        };
        let _ = writeln!(out, "  {}: conflict in {place}{with}", t.id);
        let _ = writeln!(
            out,
            "  {id}: next step: git switch {branch} && git merge refs/swarm/{run}/{id}, fix, commit, then `swarm resolve {run} {id}` (see `swarm resolve --help`)",
            id = t.id,
            run = report.run,
            branch = report.integration_branch.as_deref().unwrap_or_default(),
        );
    }
    // After `swarm resolve`, tasks the conflict blocked can run: their
    // dependencies are all merged now.
    let runnable: Vec<&str> = report
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Blocked)
        .filter(|t| {
            t.deps.iter().all(|d| {
                report
                    .tasks
                    .iter()
                    .any(|o| &o.id == d && o.status.is_success())
            })
        })
        .map(|t| t.id.as_str())
        .collect();
    if report.exit_code.is_some() && !runnable.is_empty() {
        let _ = writeln!(
            out,
            "  `swarm resume {}` runs what a resolved conflict blocked: {}",
            report.run,
            runnable.join(", ")
        );
    }
    // Work a snapshot left out (too large, refused by git, unreadable) is
    // named, so that nobody takes the ref for all of it.
    const SHOWN: usize = 5;
    for t in report.tasks.iter().filter(|t| !t.skipped_files.is_empty()) {
        let n = t.skipped_files.len();
        let _ = writeln!(
            out,
            "  {}: {n} file{} not committed (see the report):",
            t.id,
            if n == 1 { "" } else { "s" }
        );
        for skipped in t.skipped_files.iter().take(SHOWN) {
            let _ = writeln!(out, "    {skipped}");
        }
        if n > SHOWN {
            let _ = writeln!(out, "    and {} more", n - SHOWN);
        }
    }
}

/// Directories that hold build output, caches and environments: a result
/// that adds files under them most likely committed what a `.gitignore`
/// would have left out. `dist` and `build` can be sources, so they need
/// more files before they are named.
const BUILD_DIRS: [(&str, usize); 6] = [
    ("target", 1),
    ("node_modules", 1),
    ("__pycache__", 1),
    (".venv", 1),
    ("dist", 20),
    ("build", 20),
];

/// Names the tasks whose result committed build output, and how to keep
/// it out.
fn build_output_warnings(report: &RunReport, out: &mut String) {
    for t in &report.tasks {
        for (dir, threshold) in BUILD_DIRS {
            let n = t
                .changed_files
                .iter()
                .filter(|f| f.split('/').rev().skip(1).any(|part| part == dir))
                .count();
            if n >= threshold {
                let _ = writeln!(
                    out,
                    "  warning: {} committed {n} file{} under {dir}/ (build output?); \
                     add `{dir}/` to .gitignore (or .git/info/exclude) to leave it out",
                    t.id,
                    if n == 1 { "" } else { "s" }
                );
            }
        }
    }
}

/// Lines saying what sandboxed tasks are granted (read paths, toolchains
/// and their variables, build caches), for `validate` and `doctor`;
/// `home`: the repository's worktree home when tasks share build caches.
pub fn grants(
    read_paths: &[PathBuf],
    found: &[crate::assemble::toolchains::Toolchain],
    home: Option<&Path>,
) -> String {
    let mut out = String::new();
    if found.is_empty() {
        let _ = writeln!(
            &mut out,
            "toolchains        none found (or turned off by `toolchains`)"
        );
    }
    for toolchain in found {
        let _ = writeln!(
            &mut out,
            "toolchain {:<7} {}",
            toolchain.name, toolchain.found
        );
        for grant in &toolchain.grants {
            let _ = writeln!(&mut out, "  read-only       {}", grant.display());
        }
        for (key, value) in &toolchain.env {
            let _ = writeln!(&mut out, "  env             {key}={value}");
        }
        if let (Some(home), Some((name, var))) =
            (home, crate::assemble::toolchains::cache_of(toolchain.name))
        {
            let dir = home.join(".cache").join(name);
            let _ = match var {
                "CARGO_TARGET_DIR" => writeln!(
                    &mut out,
                    "  build cache     {var}={}/<task> (writable, kept for the task's later runs)",
                    dir.display()
                ),
                _ => writeln!(
                    &mut out,
                    "  shared cache    {var}={} (writable, shared by the repository's tasks)",
                    dir.display()
                ),
            };
        }
    }
    for path in read_paths {
        let _ = writeln!(&mut out, "read_paths        {}", path.display());
    }
    out
}

/// Conflicting hunks, each file named once with its lines:
/// `src/lib.rs lines 3-5, 10; CHANGELOG.md line 7` (files in the order
/// they come).
pub fn hunks_by_file(hunks: &[swarm_protocol::ConflictHunk]) -> String {
    let mut files: Vec<(&str, Vec<String>)> = Vec::new();
    for h in hunks {
        let lines = match h.start == h.end {
            true => h.start.to_string(),
            false => format!("{}-{}", h.start, h.end),
        };
        match files.iter_mut().find(|(path, _)| *path == h.path) {
            Some((_, all)) => all.push(lines),
            None => files.push((&h.path, vec![lines])),
        }
    }
    files
        .into_iter()
        .map(|(path, lines)| {
            let one = lines.len() == 1 && !lines[0].contains('-');
            format!(
                "{path} {} {}",
                if one { "line" } else { "lines" },
                lines.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A test report's counts as a line: "40 passed, 2 failed, 1 flaky, 1
/// skipped", and the failing tests named.
pub fn test_counts(tests: &swarm_protocol::TestCounts) -> String {
    let mut line = crate::test_report::counted_of(tests);
    if !tests.failing.is_empty() {
        let named: Vec<String> = tests
            .failing
            .iter()
            .map(|f| crate::escape::line(f).into_owned())
            .collect();
        let more = if (tests.failed as usize) > named.len() {
            ", …"
        } else {
            ""
        };
        line.push_str(&format!(" ({}{more})", named.join(", ")));
    }
    line
}
