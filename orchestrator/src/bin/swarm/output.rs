//! What users see: a line per notable event while a run goes, the final
//! summary table, and errors.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use std::collections::HashSet;
use std::time::Instant;

use swarm_protocol::verify::VerifyPurpose;
use swarm_protocol::{AttemptOutcome, Event, EventBody, RunReport, TaskInfo, TaskStatus};

use swarm_orchestrator::escape;
use swarm_orchestrator::report::RunState;

use crate::Failure;

/// Turns run events into progress lines, and keeps what the live view
/// shows: the running tasks, the counts and the critical path left.
pub struct Progress {
    total: usize,
    finished: usize,
    failed: usize,
    width: usize,
    tasks: Vec<TaskInfo>,
    done: HashSet<String>,
    running: Vec<(String, Instant)>,
    /// Agent tasks: the tool running now, tokens and cost so far.
    agents: std::collections::HashMap<String, (String, u64, f64)>,
    /// Paths of the working tree with changes the run does not see.
    uncommitted: usize,
    /// What each task is expected to take, in milliseconds, when the
    /// repository's duration history knows some of them, and what the
    /// others are expected to take.
    expected: Option<(std::collections::HashMap<String, u64>, u64)>,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            total: 0,
            finished: 0,
            failed: 0,
            width: 8,
            tasks: Vec::new(),
            done: HashSet::new(),
            running: Vec::new(),
            agents: std::collections::HashMap::new(),
            uncommitted: 0,
            expected: None,
        }
    }

    /// The live view's block: one line per running task and a line of
    /// counts. Redrawn in place on a terminal.
    pub fn block(&self) -> Vec<String> {
        let running = self.running.len();
        let queued = self.total.saturating_sub(self.finished + running);
        let spent = if self.agents.is_empty() {
            String::new()
        } else {
            let tokens: u64 = self.agents.values().map(|a| a.1).sum();
            let usd: f64 = self.agents.values().map(|a| a.2).sum();
            format!(", {tokens} tokens, ${usd:.4}")
        };
        let mut lines = vec![format!(
            "  -- {running} running, {queued} queued, {}/{} done ({} failed), critical path left {}{spent} --",
            self.finished.min(self.total),
            self.total,
            self.failed,
            match &self.expected {
                None => self.critical_path_left().to_string(),
                Some((expected, fallback)) => seconds(self.time_left(expected, *fallback)),
            }
        )];
        for (task, since) in &self.running {
            let kind = self
                .tasks
                .iter()
                .find(|t| &t.id == task)
                .map_or("", |t| t.kind.name());
            let agent = self
                .agents
                .get(task)
                .map(|(tool, tokens, usd)| format!("  {tokens} tok ${usd:.4}  {tool}"))
                .unwrap_or_default();
            let mut line = format!(
                "  > {task:<w$} {kind:<8} {:>7.1}s{agent}",
                since.elapsed().as_secs_f64(),
                w = self.width
            );
            // One screen line per task, whatever the tool's detail.
            if line.chars().count() > 118 {
                line = line.chars().take(117).collect::<String>() + "~";
            }
            lines.push(line);
        }
        lines
    }

    /// Tasks on the longest chain of unfinished tasks.
    fn critical_path_left(&self) -> usize {
        // Tasks come in merge order (dependencies first).
        let mut depth: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut longest = 0;
        for t in &self.tasks {
            if self.done.contains(&t.id) {
                continue;
            }
            let d = 1 + t
                .deps
                .iter()
                .filter_map(|d| depth.get(d.as_str()))
                .max()
                .copied()
                .unwrap_or(0);
            longest = longest.max(d);
            depth.insert(&t.id, d);
        }
        longest
    }

    /// Expected milliseconds on the longest chain of unfinished tasks, a
    /// running task counting what it is expected to take still.
    fn time_left(&self, expected: &std::collections::HashMap<String, u64>, fallback: u64) -> u64 {
        let mut left: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        let mut longest = 0;
        for t in &self.tasks {
            if self.done.contains(&t.id) {
                continue;
            }
            let mut own = expected.get(&t.id).copied().unwrap_or(fallback);
            if let Some((_, since)) = self.running.iter().find(|(r, _)| *r == t.id) {
                let ran = swarm_orchestrator::millis(since.elapsed());
                own = own.saturating_sub(ran);
            }
            let after = t
                .deps
                .iter()
                .filter_map(|d| left.get(d.as_str()))
                .max()
                .copied()
                .unwrap_or(0);
            let total = after.saturating_add(own);
            longest = longest.max(total);
            left.insert(&t.id, total);
        }
        longest
    }

    fn lines(&mut self, event: &Event) -> Vec<String> {
        let mut out = Vec::new();
        macro_rules! say {
            ($($arg:tt)*) => { out.push(format!($($arg)*)) };
        }
        match &event.body {
            EventBody::RunStarted {
                run,
                base,
                base_commit,
                integration_branch,
                concurrency,
                tasks,
                ..
            } => {
                self.total = tasks.len();
                self.tasks = tasks.clone();
                self.width = tasks
                    .iter()
                    .map(|t| t.id.len())
                    .max()
                    .unwrap_or(8)
                    .clamp(8, 40);
                let unseen = match self.uncommitted {
                    0 => String::new(),
                    n => format!(
                        " (without the {n} uncommitted change{} in the working tree)",
                        if n == 1 { "" } else { "s" }
                    ),
                };
                let into = match integration_branch {
                    Some(branch) => format!(" into branch {branch}"),
                    None => ", no branch (read-only run)".to_string(),
                };
                say!(
                    "swarm: run {run}: {} tasks, up to {concurrency} at once, from {base} ({}){unseen}{into}",
                    tasks.len(),
                    short(base_commit)
                );
            }
            EventBody::TaskStarted {
                task,
                attempt,
                job,
                setup_run,
                ..
            } => {
                self.running.retain(|(t, _)| t != task);
                self.running.push((task.clone(), Instant::now()));
                let again = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                let job = match job {
                    Some(job) => format!(" job {job}"),
                    None => String::new(),
                };
                let setup = match setup_run {
                    Some(run) if run.reused => format!(
                        " (setup copied in {})",
                        humantime::format_duration(std::time::Duration::from_millis(run.ms))
                    ),
                    Some(run) => format!(
                        " (setup ran in {})",
                        humantime::format_duration(std::time::Duration::from_millis(run.ms))
                    ),
                    None => String::new(),
                };
                say!(
                    "  {:<10} {task:<w$}{again}{job}{setup}",
                    "start",
                    w = self.width
                );
            }
            EventBody::AttemptPlaced {
                task, job, node, ..
            } => {
                say!(
                    "  {:<10} {task:<w$} job {job} on {node}",
                    "placed",
                    w = self.width
                );
            }
            EventBody::RunResumed {
                restarted,
                pending,
                retried,
                rebuilt,
                ..
            } => {
                if let Some(why) = rebuilt {
                    say!(
                        "swarm: the integration branch was broken ({why}): made again from the base and the merged tasks' refs"
                    );
                }
                self.finished = self.total.saturating_sub(pending.len());
                let again = match retried.len() {
                    0 => String::new(),
                    n => format!(
                        ", {n} failed task{} retried: {}",
                        if n == 1 { "" } else { "s" },
                        retried.join(", ")
                    ),
                };
                let restarted = match restarted.len() {
                    0 => String::new(),
                    n => format!(" ({n} restarted from a clean worktree, their partial work kept)"),
                };
                say!(
                    "swarm: resuming: {} task{} to run{restarted}{again}",
                    pending.len(),
                    if pending.len() == 1 { "" } else { "s" },
                );
            }
            EventBody::AttemptFinished {
                task,
                attempt,
                outcome: swarm_protocol::AttemptOutcome::Lost { message },
                ..
            } => {
                say!(
                    "  {:<10} {task:<w$}  attempt {attempt}: {}",
                    "lost",
                    escape::line(message),
                    w = self.width
                );
            }
            EventBody::AttemptFinished { .. }
            | EventBody::RunFinished { .. }
            | EventBody::TaskQueued { .. } => {}
            EventBody::AgentTool { task, detail, .. } => {
                self.agents.entry(task.clone()).or_default().0 = detail.clone();
            }
            EventBody::AgentUsage {
                task,
                total,
                cost_usd,
                ..
            } => {
                let a = self.agents.entry(task.clone()).or_default();
                a.1 = total.total();
                a.2 = *cost_usd;
            }
            EventBody::BudgetSpent { task, message } => {
                say!("  {:<10} {task:<w$}  {message}", "budget", w = self.width);
            }
            EventBody::TestsReported {
                task,
                tests: Some(tests),
                ..
            } => {
                say!(
                    "  {:<10} {task:<w$}  {}",
                    "tests",
                    crate::output::test_counts(tests),
                    w = self.width
                );
            }
            EventBody::TestsReported {
                task,
                warning: Some(warning),
                ..
            } => {
                say!(
                    "  {:<10} {task:<w$}  {}",
                    "warning",
                    swarm_orchestrator::escape::line(warning),
                    w = self.width
                );
            }
            EventBody::TestsReported { .. } => {}
            EventBody::TaskSharded { task, shards } => {
                let sizes: Vec<String> = shards.iter().map(|s| s.len().to_string()).collect();
                say!(
                    "  {:<10} {task:<w$}  {} entries in {} tasks ({})",
                    "shards",
                    shards.iter().map(Vec::len).sum::<usize>(),
                    shards.len(),
                    sizes.join(" + "),
                    w = self.width
                );
            }
            EventBody::TaskFinished {
                task,
                status,
                reason,
            } => {
                // A task that succeeded and then conflicted at its merge is
                // finished twice: it is counted once.
                if self.done.insert(task.clone()) {
                    self.finished += 1;
                }
                self.running.retain(|(t, _)| t != task);
                if matches!(
                    status,
                    TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Conflicted
                ) {
                    self.failed += 1;
                }
                let why = reason
                    .as_deref()
                    .map(|r| format!("  {}", escape::line(r)))
                    .unwrap_or_default();
                say!(
                    "  {:<10} {task:<w$} [{}/{}]{why}",
                    status.as_str(),
                    self.finished.min(self.total),
                    self.total,
                    w = self.width
                );
            }
            EventBody::TaskMerged { task, .. } => {
                say!("  {:<10} {task}", "merged");
            }
            EventBody::SubtasksSpawned { task, tasks, .. } => {
                // The run grew: its children count, and are shown.
                self.total += tasks.len();
                self.tasks.extend(tasks.iter().cloned());
                self.width = self
                    .width
                    .max(tasks.iter().map(|t| t.id.len()).max().unwrap_or(0).min(40));
                self.running.retain(|(t, _)| t != task);
                say!(
                    "  {:<10} {task:<w$}  {} subtask{}: {}",
                    "spawned",
                    tasks.len(),
                    if tasks.len() == 1 { "" } else { "s" },
                    tasks
                        .iter()
                        .map(|t| t.id.rsplit('/').next().unwrap_or(&t.id))
                        .collect::<Vec<_>>()
                        .join(", "),
                    w = self.width
                );
            }
            EventBody::ReplanStarted {
                task,
                round,
                rounds,
                ..
            } => {
                say!(
                    "  {:<10} {task:<w$}  failed; asking for a new plan (replan {round} of {rounds})",
                    "replan",
                    w = self.width
                );
            }
            EventBody::Replanned {
                task,
                reason,
                diff,
                error,
                ..
            } => match error {
                Some(why) => say!(
                    "  {:<10} {task:<w$}  no fix: {why}",
                    "replan",
                    w = self.width
                ),
                None => {
                    say!("  {:<10} {task:<w$}  {reason}", "replanned", w = self.width);
                    out.extend(diff.lines().map(|l| format!("             {l}")));
                }
            },
            EventBody::SubtasksMerged { task, commit } => {
                say!(
                    "  {:<10} {task:<w$}  its subtasks merged onto it ({})",
                    "joined",
                    short(commit),
                    w = self.width
                );
            }
            EventBody::ExperimentDecided { task, decision } => {
                out.extend(
                    swarm_orchestrator::export::ranking_table(task, decision)
                        .lines()
                        .map(str::to_string),
                );
            }
            EventBody::TaskConflicted { task, files, .. } => {
                say!(
                    "  {:<10} {task:<w$}  in {}",
                    "conflict",
                    files.join(", "),
                    w = self.width
                );
            }
            EventBody::TaskHeld {
                task,
                behind,
                files,
            } => {
                say!(
                    "  {:<10} {task:<w$}  until {behind} is merged (both change {}), then on the branch as it is",
                    "wait",
                    files.join(", "),
                    w = self.width
                );
            }
            EventBody::TaskRequeued {
                task,
                base_commit,
                rerun,
                reruns,
            } => {
                say!(
                    "  {:<10} {task:<w$}  again on the branch as it is ({}), re-run {rerun} of {reruns}",
                    "rerun",
                    short(base_commit),
                    w = self.width
                );
            }
            EventBody::RunVerified { run } => {
                let at = match (&run.after, run.purpose) {
                    (_, VerifyPurpose::Base) => "the base".to_string(),
                    (Some(task), VerifyPurpose::Proof) => format!("proof: without {task}"),
                    (Some(task), VerifyPurpose::Bisect) => format!("bisect: after {task}"),
                    (Some(task), VerifyPurpose::Tip) => format!("tip: after {task}"),
                    (None, _) => run.purpose.as_str().to_string(),
                };
                let verdict = match (run.passed, &run.outcome) {
                    (true, _) => "passed".to_string(),
                    (false, AttemptOutcome::Exited { code }) => format!("failed (exit {code})"),
                    (false, AttemptOutcome::TimedOut) => "timed out".to_string(),
                    (false, AttemptOutcome::SpawnFailed { message }) => {
                        format!("could not run: {message}")
                    }
                    (false, _) => "failed".to_string(),
                };
                say!(
                    "  {:<10} {} ({at}) {verdict} in {}",
                    "verify",
                    short(&run.commit),
                    duration(run.duration_ms)
                );
            }
            EventBody::VerifyBroken {
                task,
                unmerged,
                conflicted,
                ..
            } => {
                let with = unmerged
                    .iter()
                    .chain(conflicted)
                    .cloned()
                    .collect::<Vec<_>>();
                let with = match with.as_slice() {
                    [] => String::new(),
                    list => format!(" (with {})", list.join(", ")),
                };
                say!(
                    "  {:<10} {task:<w$}  its merge was taken out of the integration branch{with}",
                    "unmerged",
                    w = self.width
                );
            }
        }
        out
    }
}

/// Progress on stderr. On a terminal, event lines scroll by while the block
/// of running tasks (see [`Progress::block`]) stays below them, redrawn in
/// place by `tick` as time passes; elsewhere only the lines are printed.
pub struct Live {
    progress: Progress,
    tty: bool,
    /// Lines of the block on screen now.
    drawn: usize,
    over: bool,
}

impl Live {
    pub fn new(tty: bool) -> Self {
        Self {
            progress: Progress::new(),
            tty,
            drawn: 0,
            over: false,
        }
    }

    /// The header says that `paths` changed paths of the working tree are
    /// not in the run (it starts from a commit).
    pub fn uncommitted(mut self, paths: usize) -> Self {
        self.progress.uncommitted = paths;
        self
    }

    /// The block shows the critical path left in expected time: `expected`
    /// milliseconds for each task it names, `fallback` for the others.
    pub fn expected(
        mut self,
        expected: Option<(std::collections::HashMap<String, u64>, u64)>,
    ) -> Self {
        self.progress.expected = expected;
        self
    }

    pub fn event(&mut self, event: &Event) {
        use std::io::Write as _;
        let lines = self.progress.lines(event);
        let mut err = std::io::stderr().lock();
        self.erase(&mut err);
        // File names, reasons and agent details are the task's: one
        // visible line each, never an escape sequence.
        for line in lines {
            let _ = writeln!(err, "{}", escape::line(&line));
        }
        if matches!(event.body, EventBody::RunFinished { .. }) {
            self.over = true;
        } else {
            self.draw(&mut err);
        }
        let _ = err.flush();
    }

    /// Redraws the block (elapsed times move on).
    pub fn tick(&mut self) {
        use std::io::Write as _;
        if !self.tty || self.over {
            return;
        }
        let mut err = std::io::stderr().lock();
        self.erase(&mut err);
        self.draw(&mut err);
        let _ = err.flush();
    }

    fn erase(&mut self, w: &mut impl std::io::Write) {
        if self.drawn > 0 {
            // Up to the block's first line, then clear to the end.
            let _ = write!(w, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn draw(&mut self, w: &mut impl std::io::Write) {
        if !self.tty || self.progress.total == 0 {
            return;
        }
        let block = self.progress.block();
        for line in &block {
            let _ = writeln!(w, "{}", escape::line(line));
        }
        self.drawn = block.len();
    }
}

/// A duration the block shows: `~42s`, `~3m05s`, `~2h10m`.
fn seconds(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    match s {
        0..60 => format!("~{s}s"),
        60..3600 => format!("~{}m{:02}s", s / 60, s % 60),
        _ => format!("~{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

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
    let verdict = if let Some(base) = runs
        .iter()
        .find(|r| r.purpose == VerifyPurpose::Base && !r.passed)
    {
        format!(
            "it FAILS at the base {} too, so no task is blamed; see {}",
            short(&base.commit),
            rel(&base.stderr_log)
        )
    } else if let AttemptOutcome::SpawnFailed { message } = &last.outcome {
        format!("it could not run: {message}")
    } else if let Some(proof) = runs.iter().rfind(|r| {
        r.purpose == VerifyPurpose::Proof
            && !r.passed
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
    Some(format!(
        "verify: {} run{} ({searching} to find what broke it, {}); {verdict}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        duration(ms)
    ))
}

fn duration(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else if ms < 600_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
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
    let width = report
        .tasks
        .iter()
        .map(|t| t.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    // The same decision as `swarm runs`, in the words of a summary.
    let state = match RunState::of(report, driven) {
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
    };
    let _ = writeln!(out, "\nrun {}: {state}", report.run);
    let rows: Vec<&swarm_protocol::TaskReport> = swarm_orchestrator::export::tree_order(report)
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
    for t in &report.tasks {
        if let Some(decision) = &t.experiment {
            out.push('\n');
            out.push_str(&swarm_orchestrator::export::ranking_table(&t.id, decision));
        }
    }
    let _ = writeln!(
        out,
        "\n  {}",
        swarm_orchestrator::export::Tally::of(report).counts()
    );
    if let Some(line) = swarm_orchestrator::test_report::tests_line(report) {
        let _ = writeln!(out, "  {line}");
        for (task, test) in swarm_orchestrator::test_report::failing_tests(report) {
            let _ = writeln!(out, "    failed: {test} (in {task})");
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
            "  agents: {} sessions, {turns} turns, {input} tokens in, {output} out, ${usd:.4}",
            agents.len()
        );
    }
    for t in report.tasks.iter().filter(|t| {
        matches!(
            t.status,
            TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::BrokeVerify
        ) && t.variant_of.is_none()
    }) {
        if let Some(reason) = &t.reason {
            let _ = writeln!(out, "  {}: {}", t.id, escape::line(reason));
        }
        // A task that broke verify did its own job: its reason names the
        // verify's log, which is the one to read.
        if t.status != TaskStatus::BrokeVerify {
            let _ = writeln!(out, "  {} log: {}", t.id, rel(&t.stderr_log));
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
    build_output_warnings(report, &mut out);
    out
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

pub fn print_failure(failure: &Failure) {
    eprintln!("{}", failure_text(failure, use_color()));
}

/// What [`print_failure`] prints: `error: ...`, a plan's errors with
/// their places.
pub fn failure_text(failure: &Failure, color: bool) -> String {
    match failure {
        Failure::Plan(err) => {
            let errors: Vec<_> = err.all().collect();
            let text = swarm_orchestrator::plan::render(
                &errors,
                miette::Severity::Error,
                err.omitted,
                color,
            );
            let count = err.count();
            if count == 1 {
                format!("error: invalid plan\n{text}")
            } else {
                format!("error: invalid plan ({count} errors)\n{text}")
            }
        }
        Failure::Invalid(err) | Failure::Internal(err) | Failure::Failed(err) => {
            // Errors name paths and files a task may have chosen.
            format!("error: failed to {}", escape::text(&format!("{err:#}")))
        }
    }
}

/// Prints what the plan's checks warn about (the plan is still run).
pub fn print_plan_warnings(warnings: &[swarm_orchestrator::plan::PlanError]) {
    eprint!("{}", plan_warnings(warnings, use_color()));
}

/// The plan's warnings as [`print_plan_warnings`] prints them.
pub fn plan_warnings(warnings: &[swarm_orchestrator::plan::PlanError], color: bool) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    // As for errors: the first screenful helps, the rest is counted.
    let shown: Vec<_> = warnings
        .iter()
        .take(swarm_orchestrator::plan::MAX_ERRORS)
        .collect();
    let omitted = warnings.len() - shown.len();
    swarm_orchestrator::plan::render(&shown, miette::Severity::Warning, omitted, color)
}

fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

#[cfg(test)]
#[path = "output_tests.rs"]
mod tests;

/// What putting a run together found to warn about, in order.
pub fn print_notices(notices: &[swarm_orchestrator::assemble::Notice]) {
    use swarm_orchestrator::assemble::Notice;
    for notice in notices {
        match notice {
            Notice::Plan(warning) => print_plan_warnings(std::slice::from_ref(warning)),
            Notice::Warning(text) => eprintln!("warning: {}", escape::text(text)),
        }
    }
}

/// Lines saying what sandboxed tasks are granted, for `validate` and
/// `doctor`.
/// `home`: the repository's worktree home when tasks share build caches.
pub fn print_grants(
    read_paths: &[PathBuf],
    found: &[swarm_orchestrator::assemble::toolchains::Toolchain],
    home: Option<&Path>,
) {
    write_grants(&mut std::io::stdout().lock(), read_paths, found, home);
}

/// [`print_grants`] into `out`.
pub fn write_grants(
    out: &mut dyn std::io::Write,
    read_paths: &[PathBuf],
    found: &[swarm_orchestrator::assemble::toolchains::Toolchain],
    home: Option<&Path>,
) {
    if found.is_empty() {
        let _ = writeln!(
            out,
            "toolchains        none found (or turned off by `toolchains`)"
        );
    }
    for toolchain in found {
        let _ = writeln!(out, "toolchain {:<7} {}", toolchain.name, toolchain.found);
        for grant in &toolchain.grants {
            let _ = writeln!(out, "  read-only       {}", grant.display());
        }
        for (key, value) in &toolchain.env {
            let _ = writeln!(out, "  env             {key}={value}");
        }
        if let (Some(home), Some((name, var))) = (
            home,
            swarm_orchestrator::assemble::toolchains::cache_of(toolchain.name),
        ) {
            let dir = home.join(".cache").join(name);
            let _ = match var {
                "CARGO_TARGET_DIR" => writeln!(
                    out,
                    "  build cache     {var}={}/<task> (writable, kept for the task's later runs)",
                    dir.display()
                ),
                _ => writeln!(
                    out,
                    "  shared cache    {var}={} (writable, shared by the repository's tasks)",
                    dir.display()
                ),
            };
        }
    }
    for path in read_paths {
        let _ = writeln!(out, "read_paths        {}", path.display());
    }
}

/// Conflicting hunks, each file named once with its lines:
/// `src/lib.rs lines 3-5, 10; CHANGELOG.md line 7` (files in the order
/// they come).
pub(crate) fn hunks_by_file(hunks: &[swarm_protocol::ConflictHunk]) -> String {
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

/// A test report's counts as a line: "40 passed, 2 failed, 1 skipped in
/// 3.2 s", and the failing tests named.
pub fn test_counts(tests: &swarm_protocol::TestCounts) -> String {
    let mut parts = vec![format!("{} passed", tests.passed)];
    if tests.failed > 0 {
        parts.push(format!("{} failed", tests.failed));
    }
    if tests.skipped > 0 {
        parts.push(format!("{} skipped", tests.skipped));
    }
    let mut line = parts.join(", ");
    if !tests.failing.is_empty() {
        let named: Vec<String> = tests
            .failing
            .iter()
            .map(|f| swarm_orchestrator::escape::line(f).into_owned())
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
