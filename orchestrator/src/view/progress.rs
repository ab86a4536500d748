//! Run events as the lines people read while a run goes, and the block of
//! running tasks the live view keeps below them (what is running, the
//! counts, the critical path left). Text only: the binary decides where it
//! goes.

use std::collections::HashMap;
use std::time::Instant;

use swarm_protocol::verify::VerifyPurpose;
use swarm_protocol::{AttemptOutcome, Event, EventBody, TaskStatus};

use crate::escape;
use crate::fold::RunFold;

use super::units::{duration, seconds};
use crate::git::short;

/// Turns run events into progress lines, and keeps what the live view
/// shows: the running tasks, the counts and the critical path left. Every
/// status and count it shows is read from the run's fold ([`RunFold`],
/// the one code that turns events into state), which it feeds each event
/// first; it keeps only how things look (widths, since when a task runs).
pub struct Progress {
    fold: RunFold,
    width: usize,
    /// When each task's running attempt was seen start.
    since: HashMap<String, Instant>,
    /// Paths of the working tree with changes the run does not see.
    uncommitted: usize,
    /// What each task is expected to take, in milliseconds, when the
    /// repository's duration history knows some of them, and what the
    /// others are expected to take.
    expected: Option<(HashMap<String, u64>, u64)>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a task of `status` is done as the view counts it: it ended
/// (succeeded and waiting for its merge included).
fn done(status: TaskStatus) -> bool {
    !matches!(status, TaskStatus::Pending | TaskStatus::Running)
}

/// Whether a task of `status` counts as failed in the view's counts.
fn failed(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Stalled | TaskStatus::Conflicted
    )
}

impl Progress {
    pub fn new() -> Self {
        Self {
            fold: RunFold::default(),
            width: 8,
            since: HashMap::new(),
            uncommitted: 0,
            expected: None,
        }
    }

    /// The tasks running now, in the order they started: those the fold
    /// says run, but a task waiting for its subtasks.
    fn running(&self) -> Vec<(&str, Instant)> {
        let mut running: Vec<(&str, Instant)> = self
            .fold
            .tasks()
            .filter(|(t, s)| t.status == TaskStatus::Running && s.spawned.is_none())
            .map(|(t, _)| {
                let since = self.since.get(&t.id).copied();
                (t.id.as_str(), since.unwrap_or_else(Instant::now))
            })
            .collect();
        running.sort_by_key(|(_, since)| *since);
        running
    }

    /// How many tasks are done, and how many of them failed.
    fn counts(&self) -> (usize, usize) {
        self.fold.tasks().fold((0, 0), |(d, f), (t, _)| {
            (
                d + usize::from(done(t.status)),
                f + usize::from(failed(t.status)),
            )
        })
    }

    /// The live view's block: one line per running task and a line of
    /// counts. Redrawn in place on a terminal.
    pub fn block(&self) -> Vec<String> {
        let running = self.running();
        let total = self.total();
        let (finished, failed) = self.counts();
        let queued = total.saturating_sub(finished + running.len());
        let spent = match self.fold.agents_spent() {
            None => String::new(),
            Some((tokens, usd)) => format!(", {tokens} tokens, ${usd:.4}"),
        };
        let mut lines = vec![format!(
            "  -- {} running, {queued} queued, {}/{} done ({} failed), critical path left {}{spent} --",
            running.len(),
            finished.min(total),
            total,
            failed,
            match &self.expected {
                None => self.critical_path_left().to_string(),
                Some((expected, fallback)) => seconds(self.time_left(expected, *fallback)),
            }
        )];
        for (task, since) in running {
            let kind = self
                .fold
                .tasks()
                .find(|(t, _)| t.id == task)
                .map_or("", |(t, _)| t.kind.name());
            let agent = self
                .fold
                .live_agent(task)
                .map(|a| format!("  {} tok ${:.4}  {}", a.tokens, a.cost_usd, a.tool))
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
        let mut depth: HashMap<&str, usize> = HashMap::new();
        let mut longest = 0;
        for (t, _) in self.fold.tasks() {
            if done(t.status) {
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
    fn time_left(&self, expected: &HashMap<String, u64>, fallback: u64) -> u64 {
        let mut left: HashMap<&str, u64> = HashMap::new();
        let mut longest = 0;
        for (t, _) in self.fold.tasks() {
            if done(t.status) {
                continue;
            }
            let mut own = expected.get(&t.id).copied().unwrap_or(fallback);
            if t.status == TaskStatus::Running
                && let Some(since) = self.since.get(&t.id)
            {
                own = own.saturating_sub(crate::millis(since.elapsed()));
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

    /// Starts from a resumed run's journal so far (`fold`): the run's
    /// `run_started`, shown again when it resumes, is then said and not
    /// folded again (it would start the run's state afresh).
    pub fn resume_from(&mut self, fold: RunFold) {
        self.width = fold
            .tasks()
            .map(|(t, _)| t.id.len())
            .max()
            .unwrap_or(8)
            .clamp(8, 40);
        self.fold = fold;
    }

    /// The header says that `paths` changed paths of the working tree are
    /// not in the run (it starts from a commit).
    pub fn set_uncommitted(&mut self, paths: usize) {
        self.uncommitted = paths;
    }

    /// The block shows the critical path left in expected time: `expected`
    /// milliseconds for each task it names, `fallback` for the others.
    pub fn set_expected(&mut self, expected: Option<(HashMap<String, u64>, u64)>) {
        self.expected = expected;
    }

    /// How many tasks the run has (0 until it started).
    pub fn total(&self) -> usize {
        self.fold.tasks().count()
    }

    /// The lines `event` adds to the scrolling log (none for most).
    pub fn lines(&mut self, event: &Event) -> Vec<String> {
        let again =
            matches!(event.body, EventBody::RunStarted { .. }) && self.fold.report().is_some();
        if !again {
            self.fold.apply(event);
        }
        let mut out = Vec::new();
        macro_rules! say {
            ($($arg:tt)*) => { out.push(format!($($arg)*)) };
        }
        match &event.body {
            EventBody::TaskStarted {
                task,
                attempt,
                job,
                setup_run,
                ..
            } => {
                self.since.insert(task.clone(), Instant::now());
                let again = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                let job = match job {
                    Some(job) => format!(" job {job}"),
                    None => String::new(),
                };
                let setup = setup_run.as_ref().map(setup_words).unwrap_or_default();
                say!(
                    "  {:<10} {task:<w$}{again}{job}{setup}",
                    "start",
                    w = self.width
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
            // The fold keeps what an agent does; the block shows it.
            EventBody::AgentTool { .. } | EventBody::AgentUsage { .. } => {}
            EventBody::TaskFinished { task, reason, .. } => {
                // A task that succeeded and then conflicted at its merge is
                // finished twice: the fold counts it once. Its status is
                // the fold's.
                self.since.remove(task);
                let (finished, total) = (self.counts().0, self.total());
                let status = self
                    .fold
                    .index(task)
                    .map_or(TaskStatus::Pending, |i| self.fold.status(i));
                let why = reason
                    .as_deref()
                    .map(|r| format!("  {}", escape::line(r)))
                    .unwrap_or_default();
                say!(
                    "  {:<10} {task:<w$} [{}/{}]{why}",
                    status.as_str(),
                    finished.min(total),
                    total,
                    w = self.width
                );
            }
            EventBody::TaskMerged { task, .. } => {
                say!("  {:<10} {task}", "merged");
            }
            body @ (EventBody::SubtasksSpawned { .. }
            | EventBody::ReplanStarted { .. }
            | EventBody::Replanned { .. }
            | EventBody::SubtasksMerged { .. }
            | EventBody::ExperimentDecided { .. }
            | EventBody::TaskConflicted { .. }
            | EventBody::TaskHeld { .. }
            | EventBody::TaskRequeued { .. }
            | EventBody::RunVerified { .. }
            | EventBody::VerifyNamed { .. }
            | EventBody::VerifyBroken { .. }) => return self.graph_lines(body),
            body @ (EventBody::RunStarted { .. }
            | EventBody::AttemptSetUp { .. }
            | EventBody::AttemptPlaced { .. }
            | EventBody::RunResumed { .. }
            | EventBody::BudgetSpent { .. }
            | EventBody::TestsReported { .. }
            | EventBody::TaskSharded { .. }) => return self.run_lines(body),
        }
        out
    }

    /// The lines of the run's own events, a task's setting up and its
    /// tests (the rest are [`Self::lines`]'s).
    fn run_lines(&mut self, body: &EventBody) -> Vec<String> {
        let mut out = Vec::new();
        macro_rules! say {
            ($($arg:tt)*) => { out.push(format!($($arg)*)) };
        }
        match body {
            EventBody::RunStarted {
                run,
                base,
                base_commit,
                integration_branch,
                concurrency,
                tasks,
                ..
            } => {
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
                    "swarm: run {run}: {} task{}, up to {concurrency} at once, from {base} ({}){unseen}{into}",
                    tasks.len(),
                    if tasks.len() == 1 { "" } else { "s" },
                    short(base_commit)
                );
            }
            EventBody::AttemptSetUp { task, setup, .. } => {
                say!(
                    "  {:<10} {task:<w$}{} on its node",
                    "setup",
                    setup_words(setup),
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
                    super::summary::test_counts(tests),
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
                    crate::escape::line(warning),
                    w = self.width
                );
            }
            EventBody::TestsReported { .. } => {}
            EventBody::TaskSharded { task, shards, .. } => {
                let sizes: Vec<String> = shards.iter().map(|s| s.len().to_string()).collect();
                let entries = shards.iter().map(Vec::len).sum::<usize>();
                say!(
                    "  {:<10} {task:<w$}  {} entr{} in {} task{} ({})",
                    "shards",
                    entries,
                    if entries == 1 { "y" } else { "ies" },
                    shards.len(),
                    if shards.len() == 1 { "" } else { "s" },
                    sizes.join(" + "),
                    w = self.width
                );
            }
            // `lines` says the others.
            _ => {}
        }
        out
    }

    /// The lines of the events of the graph growing, merges, the merge
    /// queue and the run-wide verify (the rest are [`Self::lines`]'s).
    fn graph_lines(&mut self, body: &EventBody) -> Vec<String> {
        let mut out = Vec::new();
        macro_rules! say {
            ($($arg:tt)*) => { out.push(format!($($arg)*)) };
        }
        match body {
            EventBody::SubtasksSpawned { task, tasks, .. } => {
                // The run grew (the fold counts its children): they are
                // shown.
                self.width = self
                    .width
                    .max(tasks.iter().map(|t| t.id.len()).max().unwrap_or(0).min(40));
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
                    crate::export::ranking_table(task, decision)
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
                repair: true,
                ..
            } => {
                say!(
                    "  {:<10} {task:<w$}  again on the branch as it is ({}), told the run-wide verify's failure",
                    "repair",
                    short(base_commit),
                    w = self.width
                );
            }
            EventBody::TaskRequeued {
                task,
                base_commit,
                rerun,
                reruns,
                ..
            } => {
                say!(
                    "  {:<10} {task:<w$}  again on the branch as it is ({}), re-run {rerun} of {reruns}",
                    "rerun",
                    short(base_commit),
                    w = self.width
                );
            }
            body @ (EventBody::RunVerified { .. }
            | EventBody::VerifyNamed { .. }
            | EventBody::VerifyBroken { .. }) => return self.verify_lines(body),
            // `lines` says the others.
            _ => {}
        }
        out
    }

    /// The lines of the run-wide verify's events (the rest are
    /// [`Self::lines`]'s and [`Self::graph_lines`]'s).
    fn verify_lines(&mut self, body: &EventBody) -> Vec<String> {
        let mut out = Vec::new();
        macro_rules! say {
            ($($arg:tt)*) => { out.push(format!($($arg)*)) };
        }
        match body {
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
                    (false, AttemptOutcome::Stalled { .. }) => "stalled".to_string(),
                    (false, AttemptOutcome::SpawnFailed { message }) => {
                        format!("could not run: {message}")
                    }
                    (false, _) => "failed".to_string(),
                };
                // A run again of a failure: `verify_retries`.
                let failures = |n: u32| format!("{n} failure{}", if n == 1 { "" } else { "s" });
                let again = match (run.attempt, run.passed) {
                    (0, _) => String::new(),
                    (n, true) => format!(", run again after {}: flaky", failures(n)),
                    (n, false) => format!(", run again after {}", failures(n)),
                };
                say!(
                    "  {:<10} {} ({at}{again}) {verdict} in {}",
                    "verify",
                    short(&run.commit),
                    duration(run.duration_ms)
                );
            }
            EventBody::VerifyNamed { named } => {
                let tasks = named
                    .tasks
                    .iter()
                    .map(|t| t.task.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                say!(
                    "  {:<10} {tasks:<w$}  named by the verify's failure; every merge is kept",
                    "named",
                    w = self.width
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
            // The others are said elsewhere.
            _ => {}
        }
        out
    }
}

/// How an attempt's `[setup]` went, as the live view says it after the
/// task's name: ` (setup ran in 2s)`, ` (setup copied in 80ms)`...
fn setup_words(run: &swarm_protocol::SetupRun) -> String {
    let shown =
        |ms: u64| humantime::format_duration(std::time::Duration::from_millis(ms)).to_string();
    match Some(run) {
        // Waiting for another worktree's setup of its key is
        // not copying: said apart, so a slow copy is not
        // blamed for a wait.
        Some(run) if run.reused && run.waited_ms >= 100 => format!(
            " (waited {} for another worktree's setup, then {} in {})",
            shown(run.waited_ms),
            match run.layered {
                true => "showed it as an overlay",
                false => "copied it",
            },
            shown(run.ms.saturating_sub(run.waited_ms))
        ),
        Some(run) if run.reused && run.layered => {
            format!(" (kept setup shown as an overlay in {})", shown(run.ms))
        }
        Some(run) if run.reused => format!(" (setup copied in {})", shown(run.ms)),
        Some(run) => format!(
            " (setup ran in {})",
            humantime::format_duration(std::time::Duration::from_millis(run.ms))
        ),
        None => String::new(),
    }
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
