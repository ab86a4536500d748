//! The dispatcher's side of the run-wide verify (`[swarm] verify`): when
//! it runs, what its verdicts mean, and taking out the merge that broke it.
//!
//! The dispatcher keeps the merges made since the last commit known to
//! pass (the chain) and the verdicts by commit (also the journal's, so a
//! resumed run asks nothing twice). With `verify_every = "end"` the tip is
//! verified once every merge is done; with `"merge"`, whenever no verify
//! runs and something was merged since the last one (merges that land
//! while it runs are checked together by the next). A failing tip starts a
//! bisection over the chain (`verify::bisect`), one verify at a time; its
//! culprit's merge is taken out by rebuilding the branch without it
//! (`verify::rebuild`, on the blocking pool, merges held meanwhile), the
//! task becomes `broke-verify` and its dependents are blocked; then the new
//! tip is verified again. Everything runs off the dispatcher's thread: runs
//! and rebuilds are futures of one `JoinSet` its loop selects on.

use crate::ids::TaskIndex;
use std::collections::HashMap;
use std::sync::Arc;

use git2::Oid;
use swarm_protocol::verify::{VerifyPurpose, VerifyRun};
use swarm_protocol::{AttemptOutcome, EventBody, TaskStatus};
use swarm_sandbox::Stop;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::super::verify::bisect::{Bisect, Step};
use super::super::verify::rebuild::{Rebuilt, Remerge, rebuild};
use super::super::verify::{Ran, Runner};
use super::super::{Prepared, RunError};
use super::merging::merge_message;
use super::{Dispatcher, Stopping};
use crate::git::GitError;
use crate::plan::{History, OnFailure, VerifyEvery};
use crate::worktree_home::WorktreeHome;

/// Culprits taken out without the tip passing in between before swarm
/// stops blaming tasks: past it the verify more likely fails for a reason
/// no merge explains (flaky, or broken by the machine).
const MAX_CULPRITS_WITHOUT_PASS: u32 = 8;

/// What a job of the run-wide verify gave.
pub(super) enum Done {
    Ran(Ran),
    Rebuilt {
        culprit: TaskIndex,
        /// The chain position of its merge.
        at: usize,
        rebuilt: Result<Rebuilt, GitError>,
    },
}

/// The run-wide verify's state.
pub(super) struct Verifying {
    every: VerifyEvery,
    command: String,
    runner: Arc<Runner>,
    jobs: JoinSet<Done>,
    /// The run in flight: its commit, purpose, the prefix it probes, and
    /// its stop signal.
    running: Option<(Oid, VerifyPurpose, usize, watch::Sender<Option<Stop>>)>,
    rebuilding: bool,
    /// The last commit known to pass, or the base (assumed until a search
    /// reaches it).
    green: Oid,
    green_known: bool,
    /// The merges since `green`, in order: (task, integration commit
    /// after it).
    chain: Vec<(TaskIndex, Oid)>,
    bisect: Option<Bisect>,
    /// A culprit's chain position, waiting for the merge in flight.
    culprit: Option<usize>,
    /// Verdicts by commit, and the log of the run that gave each.
    known: HashMap<Oid, (bool, String)>,
    /// Why it stopped for the rest of the run (it fails at the base, it
    /// could not run, too many culprits).
    given_up: Option<String>,
    culprits_without_pass: u32,
    /// Runs so far (numbering their logs).
    runs: u32,
}

impl Verifying {
    /// The state of `prepared`'s run-wide verify, if the plan has one,
    /// for a run starting at `base`.
    pub(super) fn new(
        prepared: &Prepared,
        home: &WorktreeHome,
        base: Oid,
    ) -> Result<Option<Self>, RunError> {
        let Some(verify) = &prepared.plan.verify else {
            return Ok(None);
        };
        Ok(Some(Self {
            every: verify.every,
            command: verify.command.clone(),
            runner: Arc::new(Runner::new(prepared, home, verify)?),
            jobs: JoinSet::new(),
            running: None,
            rebuilding: false,
            green: base,
            green_known: false,
            chain: Vec::new(),
            bisect: None,
            culprit: None,
            known: HashMap::new(),
            given_up: None,
            culprits_without_pass: 0,
            runs: 0,
        }))
    }

    /// Removes what the runs kept between them (the run is over).
    pub(super) async fn close(&self) {
        Arc::clone(&self.runner).close().await;
    }

    /// Whether a run or rebuild is in flight.
    pub(super) fn busy(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// The next job's result. Cancel-safe.
    pub(super) async fn next(&mut self) -> Option<Done> {
        loop {
            match self.jobs.join_next().await? {
                Ok(done) => return Some(done),
                // A panic in a job: nothing to report; the state clears.
                Err(e) => {
                    tracing::error!(error = %e, "a job of the run-wide verify failed");
                    self.running = None;
                    self.rebuilding = false;
                }
            }
        }
    }

    /// The commit of prefix `k` of the chain (0: `green`).
    fn prefix(&self, k: usize) -> Oid {
        match k {
            0 => self.green,
            k => self.chain[k - 1].1,
        }
    }

    /// Whether the branch's tip is known to pass (or nothing is there to
    /// verify), for the run's exit code.
    pub(super) fn passed(&self) -> bool {
        self.given_up.is_none()
            && self
                .chain
                .last()
                .is_none_or(|(_, tip)| self.known.get(tip).is_some_and(|(p, _)| *p))
    }

    /// A tip's verdict: a pass moves `green` up to it, a failure starts
    /// the search.
    fn on_tip(&mut self, tip: Oid, passed: bool) {
        let Some(at) = self.chain.iter().position(|(_, c)| *c == tip) else {
            return;
        };
        if passed {
            self.green = tip;
            self.green_known = true;
            self.chain.drain(..=at);
            self.culprits_without_pass = 0;
        } else {
            self.bisect = Some(Bisect::new(at + 1, self.green_known));
        }
    }
}

impl Dispatcher<'_> {
    /// True while a culprit's merge is being taken out: merges wait, as
    /// they would land on the branch being replaced.
    pub(super) fn verify_holds_merges(&self) -> bool {
        self.verify
            .as_ref()
            .is_some_and(|v| v.rebuilding || v.culprit.is_some())
    }

    /// A merge of task `i` moved the branch to `commit`.
    pub(super) fn merged_into_branch(&mut self, i: TaskIndex, commit: Oid) {
        if let Some(v) = &mut self.verify {
            v.chain.push((i, commit));
        }
    }

    /// Starts what the run-wide verify needs next, if anything: a probe
    /// of the search, a culprit's removal, or the tip (at the end, or
    /// after merges with `verify_every = "merge"`). `at_end`: every task
    /// is final and every merge done.
    pub(super) fn drive_verify(&mut self, at_end: bool) -> Result<(), RunError> {
        if self.stopping == Some(Stopping::Cancel) {
            return Ok(());
        }
        loop {
            let merging = self.merging.is_some();
            let Some(v) = &mut self.verify else {
                return Ok(());
            };
            if v.given_up.is_some() || v.busy() {
                return Ok(());
            }
            if let Some(at) = v.culprit {
                if !merging {
                    self.start_removal(at)?;
                }
                return Ok(());
            }
            if let Some(step) = v.bisect.as_ref().map(Bisect::next) {
                match step {
                    Step::Probe(k) => {
                        let commit = v.prefix(k);
                        if let Some(&(passed, _)) = v.known.get(&commit) {
                            if let Some(search) = &mut v.bisect {
                                search.record(k, passed);
                            }
                            continue;
                        }
                        let purpose = match (k, v.green_known) {
                            (0, false) => VerifyPurpose::Base,
                            _ => VerifyPurpose::Bisect,
                        };
                        self.start_verify(commit, purpose, k);
                        return Ok(());
                    }
                    Step::Culprit(k) => {
                        v.bisect = None;
                        v.culprit = Some(k - 1);
                        continue;
                    }
                    Step::StartFails => {
                        v.bisect = None;
                        v.given_up = Some(format!(
                            "the run-wide verify fails at the run's base {} too, so no task is blamed: fix the base (or the verify command) and run again",
                            short(v.green)
                        ));
                        return Ok(());
                    }
                }
            }
            let Some(&(_, tip)) = v.chain.last() else {
                return Ok(());
            };
            if !(at_end || v.every == VerifyEvery::Merge) {
                return Ok(());
            }
            if let Some(&(passed, _)) = v.known.get(&tip) {
                v.on_tip(tip, passed);
                if passed {
                    return Ok(());
                }
                continue;
            }
            self.start_verify(tip, VerifyPurpose::Tip, 0);
            return Ok(());
        }
    }

    fn start_verify(&mut self, commit: Oid, purpose: VerifyPurpose, k: usize) {
        let Some(v) = &mut self.verify else {
            return;
        };
        v.runs += 1;
        let (stop, stopped) = watch::channel(None);
        let runner = Arc::clone(&v.runner);
        let number = v.runs;
        v.jobs
            .spawn(async move { Done::Ran(runner.run(number, commit, stopped).await) });
        v.running = Some((commit, purpose, k, stop));
    }

    /// Stops the verify in flight (the run is being stopped).
    pub(super) fn stop_verify(&mut self, how: Stop) {
        if let Some((_, _, _, stop)) = self.verify.as_ref().and_then(|v| v.running.as_ref()) {
            stop.send_replace(Some(how));
        }
    }

    /// A job of the run-wide verify ended.
    pub(super) fn on_verify_done(&mut self, done: Done) -> Result<(), RunError> {
        match done {
            Done::Ran(ran) => self.on_verified(ran),
            Done::Rebuilt {
                culprit,
                at,
                rebuilt,
            } => self.on_rebuilt(culprit, at, rebuilt?),
        }
    }

    fn on_verified(&mut self, ran: Ran) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        let Some((commit, purpose, k, _)) = v.running.take() else {
            return Ok(());
        };
        // Stopped with the run: no verdict; a resumed run asks again.
        if ran.outcome == AttemptOutcome::Cancelled {
            return Ok(());
        }
        let after = match purpose {
            VerifyPurpose::Tip => v.chain.iter().find(|(_, c)| *c == commit).map(|l| l.0),
            VerifyPurpose::Bisect => k.checked_sub(1).map(|k| v.chain[k].0),
            VerifyPurpose::Base => None,
        };
        let run = VerifyRun {
            commit: commit.to_string(),
            purpose,
            after: after.map(|i| self.tasks.get(i).id.clone()),
            passed: ran.outcome.is_success(),
            outcome: ran.outcome,
            duration_ms: crate::millis(ran.duration),
            stdout_log: ran.stdout.display().to_string(),
            stderr_log: ran.stderr.display().to_string(),
            tail: ran.tail,
        };
        let (passed, could_not_run) = (run.passed, run.could_not_run());
        let log = run.stderr_log.clone();
        let message = match &run.outcome {
            AttemptOutcome::SpawnFailed { message } => message.clone(),
            _ => String::new(),
        };
        self.emit(EventBody::RunVerified { run })?;
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        if could_not_run {
            // The machine's failure says nothing of the commit.
            v.bisect = None;
            v.given_up = Some(format!("the run-wide verify could not run: {message}"));
            return Ok(());
        }
        v.known.insert(commit, (passed, log));
        match purpose {
            VerifyPurpose::Tip => v.on_tip(commit, passed),
            VerifyPurpose::Bisect | VerifyPurpose::Base => {
                if let Some(search) = &mut v.bisect {
                    search.record(k, passed);
                }
                if passed && purpose == VerifyPurpose::Base {
                    v.green_known = true;
                }
            }
        }
        self.advance_merges()
    }

    /// Takes the merge at chain position `at` out: the branch is rebuilt
    /// without it (and what holds its changes) on the blocking pool.
    fn start_removal(&mut self, at: usize) -> Result<(), RunError> {
        let Some(v) = &self.verify else {
            return Ok(());
        };
        let culprit = v.chain[at].0;
        let onto = v.prefix(at);
        let Some(removed) = self.result(culprit) else {
            return Ok(());
        };
        let squash = self.history == History::Squash;
        let dependents = self.all_dependents(culprit);
        let later: Vec<Remerge> = v.chain[at + 1..]
            .iter()
            .filter_map(|&(task, _)| {
                Some(Remerge {
                    task,
                    result: self.result(task)?,
                    message: merge_message(&self.run, &self.tasks.get(task).id, squash),
                    dependent: dependents.contains(&task),
                })
            })
            .collect();
        let repo = self.repo.clone();
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        v.rebuilding = true;
        v.culprit = None;
        v.jobs.spawn(async move {
            let rebuilt = crate::run::local::task::blocking(move || {
                rebuild(&repo, onto, removed, &later, squash)
            })
            .await;
            Done::Rebuilt {
                culprit,
                at,
                rebuilt,
            }
        });
        Ok(())
    }

    /// The branch was rebuilt without `culprit`'s merge (chain position
    /// `at`): journaled, then the branch moves (on the writer, after the
    /// line is on disk), then its dependents are blocked.
    fn on_rebuilt(
        &mut self,
        culprit: TaskIndex,
        at: usize,
        rebuilt: Rebuilt,
    ) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        v.rebuilding = false;
        let (commit, onto) = (v.chain[at].1, v.prefix(at));
        let log = v.known.get(&commit).map(|(_, log)| log.clone());
        let command = v.command.clone();
        v.green = onto;
        v.green_known = true;
        v.chain = rebuilt.links.clone();
        v.culprits_without_pass += 1;
        if v.culprits_without_pass >= MAX_CULPRITS_WITHOUT_PASS {
            v.given_up = Some(format!(
                "the run-wide verify still failed after {MAX_CULPRITS_WITHOUT_PASS} merges were taken out; swarm stopped blaming tasks (is it flaky?)"
            ));
        }
        let id = self.tasks.get(culprit).id.clone();
        let ids = |list: &[TaskIndex]| -> Vec<String> {
            list.iter().map(|&i| self.tasks.get(i).id.clone()).collect()
        };
        let (unmerged, conflicted) = (ids(&rebuilt.unmerged), ids(&rebuilt.conflicted));
        let mut reason = format!(
            "its merge broke the run-wide verify `{}`: {} (with it) fails, {} (before it) passes",
            first_line(&command),
            short(commit),
            short(onto)
        );
        if let Some(log) = log {
            // Relative to the repository, as other reasons name logs.
            let prefix = format!("{}/", self.repo.workdir.display());
            let log = log.strip_prefix(prefix.as_str()).unwrap_or(&log);
            reason.push_str(&format!(", see {log}"));
        }
        reason.push_str(&format!(
            "; its merge was taken out, its work is on {}",
            crate::git::refs::task(&self.run, &id)
        ));
        self.emit(EventBody::VerifyBroken {
            task: id,
            commit: commit.to_string(),
            passed_commit: onto.to_string(),
            integration_commit: rebuilt.tip.to_string(),
            unmerged,
            conflicted,
            reason,
        })?;
        self.writer.set_branch(rebuilt.tip)?;
        self.integration = rebuilt.tip;
        if self.on_failure == OnFailure::Stop {
            self.stopping.get_or_insert(Stopping::Failure);
        }
        self.block_dependents(culprit, "broke the run-wide verify")?;
        for &i in rebuilt.unmerged.iter().chain(&rebuilt.conflicted) {
            let what = match self.status(i) {
                TaskStatus::Conflicted => "conflicted",
                _ => "was blocked",
            };
            self.block_dependents(i, what)?;
        }
        self.advance_merges()
    }

    /// Every task that depends on `i`, directly or not.
    fn all_dependents(&self, i: TaskIndex) -> std::collections::HashSet<TaskIndex> {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<TaskIndex> = self.graph.dependents(i).collect();
        while let Some(d) = stack.pop() {
            if seen.insert(d) {
                stack.extend(self.graph.dependents(d));
            }
        }
        seen
    }

    /// A resumed run's verify state: the branch's merges since the base
    /// (read from git), the verdicts the journal holds, and the last
    /// commit known to pass among them.
    pub(super) fn resume_verify(&mut self) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        let Some(report) = self.fold.report() else {
            return Ok(());
        };
        for run in &report.verify_runs {
            if let Ok(commit) = Oid::from_str(&run.commit)
                && !run.could_not_run()
            {
                v.known.insert(commit, (run.passed, run.stderr_log.clone()));
            }
        }
        v.runs = u32::try_from(report.verify_runs.len()).unwrap_or(u32::MAX);
        v.green = self.base_commit;
        v.green_known = v.known.get(&self.base_commit).is_some_and(|(p, _)| *p);
        let merges = super::super::verify::rebuild::merges_since(
            &self.repo,
            self.base_commit,
            self.integration,
        )?;
        for (commit, task) in merges {
            if let Some(i) = self.tasks.position(&task) {
                v.chain.push((i, commit));
            }
        }
        if let Some(last_pass) = v
            .chain
            .iter()
            .rposition(|(_, c)| v.known.get(c).is_some_and(|(p, _)| *p))
        {
            v.green = v.chain[last_pass].1;
            v.green_known = true;
            v.chain.drain(..=last_pass);
        }
        Ok(())
    }
}

fn short(commit: Oid) -> String {
    commit.to_string()[..12].to_string()
}

fn first_line(command: &str) -> String {
    let line = command.lines().next().unwrap_or_default();
    let mut shown: String = line.chars().take(60).collect();
    if shown.len() < command.trim_end().len() {
        shown.push_str(" ...");
    }
    shown
}

/// The next result of `verify`'s jobs; never, without a verify.
pub(super) async fn next_done(verify: &mut Option<Verifying>) -> Option<Done> {
    match verify {
        Some(v) => v.next().await,
        None => std::future::pending().await,
    }
}
