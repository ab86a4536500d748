//! The dispatcher's side of the run-wide verify (`[swarm] verify`): when
//! it runs, what its verdicts mean, and taking out the merge that broke it.
//!
//! The dispatcher keeps the merges made since the last commit known to
//! pass (the chain) and the verdicts by commit (also the journal's, so a
//! resumed run asks nothing twice). With `verify_every = "end"` the tip is
//! verified once every merge is done; with `"merge"`, whenever no verify
//! runs and something was merged since the last one (merges that land
//! while it runs are checked together by the next). A failing tip starts a
//! bisection over the chain (`verify::bisect`), one verify at a time, over
//! the prefixes that split no group (`group`: the tasks of a refactor that
//! do not build alone are verified, and taken out, as one).
//!
//! A culprit is proven, not guessed: the branch is rebuilt without the
//! merge (or the group) the search found first to fail (`verify::rebuild`,
//! on the blocking pool, merges held meanwhile), and that rebuilt tip is
//! verified. Only if it passes is the merge taken out: the task becomes
//! `broke-verify`, its dependents are blocked, the branch moves. If it
//! fails too, no single task broke it (the pieces of a refactor that is
//! incomplete, two failures at once): every merge is kept, and the verify
//! says so and stops blaming. Everything runs off the dispatcher's thread:
//! runs and rebuilds are futures of one `JoinSet` its loop selects on.

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
        suspect: Suspect,
        rebuilt: Result<Rebuilt, GitError>,
    },
}

/// The merges the search found first to fail: chain positions `from..to`
/// (one merge, or a group's, with what stands between its members).
#[derive(Debug, Clone)]
pub(super) struct Suspect {
    from: usize,
    to: usize,
    /// Their tasks, in chain order.
    tasks: Vec<TaskIndex>,
}

/// A suspect and the branch rebuilt without it, waiting for that branch's
/// verdict.
struct Proof {
    suspect: Suspect,
    rebuilt: Rebuilt,
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
    /// The prefixes the search may probe (those that split no group),
    /// by the search's own numbering: its `k` is prefix `points[k]`.
    points: Vec<usize>,
    /// A suspect, waiting for the merge in flight before its removal.
    culprit: Option<Suspect>,
    /// A suspect removed in a rebuild, waiting for the rebuilt tip's verdict.
    proving: Option<Proof>,
    /// Each task's group, for those in one.
    groups: HashMap<TaskIndex, String>,
    /// Whether every merge of the run is done (the last `drive_verify`
    /// said so): only then is the branch the one a proof is about.
    at_end: bool,
    /// A failing tip whose search found no proof yet while merges were
    /// still to come (`verify_every = "merge"`): not searched again until
    /// the branch moves or the merges are done.
    deferred: Option<Oid>,
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
        tasks: &crate::run::table::TaskTable,
        home: &WorktreeHome,
        base: Oid,
    ) -> Result<Option<Self>, RunError> {
        let Some(verify) = &prepared.plan.verify else {
            return Ok(None);
        };
        // The run's tasks (the plan's are moved out of it into the table).
        let groups = tasks
            .all()
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((TaskIndex::new(i), t.group.clone()?)))
            .collect();
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
            points: Vec::new(),
            culprit: None,
            proving: None,
            groups,
            at_end: false,
            deferred: None,
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
            self.points = self.whole_prefixes(at + 1);
            self.bisect = Some(Bisect::new(self.points.len() - 1, self.green_known));
        }
    }

    /// The prefixes among the first `n` of the chain that split no group
    /// (every member the chain holds is in it, or none): where the search
    /// may probe. Always 0 and `n`.
    fn whole_prefixes(&self, n: usize) -> Vec<usize> {
        let group = |k: usize| self.groups.get(&self.chain[k].0);
        (0..=n)
            .filter(|&k| {
                k == 0
                    || k == n
                    || !(0..k).any(|before| {
                        group(before).is_some_and(|g| (k..n).any(|after| group(after) == Some(g)))
                    })
            })
            .collect()
    }

    /// The merges between the search's points `j - 1` and `j`.
    fn suspect(&self, j: usize) -> Suspect {
        let (from, to) = (self.points[j - 1], self.points[j]);
        Suspect {
            from,
            to,
            tasks: self.chain[from..to].iter().map(|(t, _)| *t).collect(),
        }
    }

    /// Whether a group has some merges on the branch and members still to
    /// come (not final): the tip is not verified then.
    fn group_open(&self, final_: impl Fn(TaskIndex) -> bool) -> bool {
        self.chain.iter().any(|(t, _)| {
            self.groups.get(t).is_some_and(|g| {
                self.groups
                    .iter()
                    .any(|(other, og)| og == g && !final_(*other))
            })
        })
    }
}

impl Dispatcher<'_> {
    /// True while a culprit's merge is being taken out: merges wait, as
    /// they would land on the branch being replaced.
    pub(super) fn verify_holds_merges(&self) -> bool {
        self.verify
            .as_ref()
            .is_some_and(|v| v.rebuilding || v.culprit.is_some() || v.proving.is_some())
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
            let merging = self.merges.merging.is_some();
            let Some(v) = &mut self.verify else {
                return Ok(());
            };
            v.at_end = at_end;
            if v.given_up.is_some() || v.busy() {
                return Ok(());
            }
            if let Some(proof) = &v.proving {
                // The rebuilt tip's verdict decides.
                let tip = proof.rebuilt.tip;
                if let Some(&(passed, _)) = v.known.get(&tip) {
                    self.on_proof(passed)?;
                    continue;
                }
                self.start_verify(tip, VerifyPurpose::Proof, 0);
                return Ok(());
            }
            if let Some(suspect) = v.culprit.clone() {
                if !merging {
                    self.start_removal(suspect)?;
                }
                return Ok(());
            }
            if let Some(step) = v.bisect.as_ref().map(Bisect::next) {
                match step {
                    Step::Probe(j) => {
                        let k = v.points[j];
                        let commit = v.prefix(k);
                        if let Some(&(passed, _)) = v.known.get(&commit) {
                            if let Some(search) = &mut v.bisect {
                                search.record(j, passed);
                            }
                            continue;
                        }
                        let purpose = match (k, v.green_known) {
                            (0, false) => VerifyPurpose::Base,
                            _ => VerifyPurpose::Bisect,
                        };
                        self.start_verify(commit, purpose, j);
                        return Ok(());
                    }
                    Step::Culprit(j) => {
                        v.bisect = None;
                        v.culprit = Some(v.suspect(j));
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
            // A group is verified as a whole: not while some of it is on
            // the branch and the rest may still come.
            if !at_end {
                let open = {
                    let final_ = |i: TaskIndex| self.status(i).is_final();
                    self.verify.as_ref().is_some_and(|v| v.group_open(final_))
                };
                if open {
                    return Ok(());
                }
            }
            let Some(v) = &mut self.verify else {
                return Ok(());
            };
            if let Some(&(passed, _)) = v.known.get(&tip) {
                // Searched already, with merges still to come: wait for them.
                if !passed && v.deferred == Some(tip) && !at_end {
                    return Ok(());
                }
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
            Done::Rebuilt { suspect, rebuilt } => self.on_rebuilt(suspect, rebuilt?),
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
            VerifyPurpose::Bisect => v.points[k].checked_sub(1).map(|k| v.chain[k].0),
            VerifyPurpose::Base => None,
            // The suspect it was rebuilt without.
            VerifyPurpose::Proof => v
                .proving
                .as_ref()
                .and_then(|p| p.suspect.tasks.first().copied()),
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
            VerifyPurpose::Proof => return self.on_proof(passed),
        }
        self.advance_merges()
    }

    /// The verdict of the branch rebuilt without the suspect: a pass
    /// proves it broke the verify (its merge is taken out); a failure
    /// proves nothing, and every merge stays.
    fn on_proof(&mut self, passed: bool) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        let Some(proof) = v.proving.take() else {
            return Ok(());
        };
        // Without later merges, the branch without the suspect is the
        // prefix before it, which passed: that proves something only of the
        // branch as it ends, not while merges are still to come (the
        // pieces of a refactor break the branch until the last lands).
        let vacuous = proof.rebuilt.links.is_empty()
            && proof.rebuilt.unmerged.is_empty()
            && proof.rebuilt.conflicted.is_empty();
        if passed && (!vacuous || v.at_end) {
            return self.take_out(proof.suspect, proof.rebuilt);
        }
        let tip = v.chain.last().map_or(v.green, |(_, c)| *c);
        if !v.at_end {
            // Merges are still to come: nothing is decided, nothing taken
            // out; the branch is searched again once it moves.
            v.deferred = Some(tip);
            return self.advance_merges();
        }
        let first = proof.suspect.tasks.first().copied();
        let failing = v.chain[proof.suspect.to - 1].1;
        let log = v
            .known
            .get(&failing)
            .map(|(_, log)| log.clone())
            .unwrap_or_default();
        let after = first.map_or_else(String::new, |t| self.tasks.get(t).id.clone());
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        v.given_up = Some(format!(
            "no single task broke it: the tip {} fails with every merge, and without `{after}`'s merge too (the first to fail, at {}, see {log}); every merge is kept",
            short(tip),
            short(failing)
        ));
        self.advance_merges()
    }

    /// Rebuilds the branch without the suspect's merges (and what holds
    /// their changes), on the blocking pool: the branch its verdict is
    /// asked of before anything is taken out.
    fn start_removal(&mut self, suspect: Suspect) -> Result<(), RunError> {
        let Some(v) = &self.verify else {
            return Ok(());
        };
        let onto = v.prefix(suspect.from);
        let removed: Vec<Oid> = suspect
            .tasks
            .iter()
            .filter_map(|&t| self.result(t))
            .collect();
        let squash = self.settings.history == History::Squash;
        let mut dependents = std::collections::HashSet::new();
        for &t in &suspect.tasks {
            dependents.extend(self.all_dependents(t));
        }
        let later: Vec<Remerge> = v.chain[suspect.to..]
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
        let (repo, run) = (self.repo.clone(), self.run.clone());
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        v.rebuilding = true;
        v.culprit = None;
        v.jobs.spawn(async move {
            let rebuilt = crate::run::blocking::blocking(move || {
                rebuild(&repo, onto, &removed, &later, squash, &run)
            })
            .await;
            Done::Rebuilt { suspect, rebuilt }
        });
        Ok(())
    }

    /// The branch was rebuilt without `suspect`: its verdict is asked next.
    fn on_rebuilt(&mut self, suspect: Suspect, rebuilt: Rebuilt) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        v.rebuilding = false;
        v.proving = Some(Proof { suspect, rebuilt });
        let at_end = v.at_end;
        self.drive_verify(at_end)
    }

    /// The suspect is proven to have broken the verify (the branch without
    /// it passes): journaled, then the branch moves (on the writer, after
    /// the line is on disk), then its dependents are blocked.
    fn take_out(&mut self, suspect: Suspect, rebuilt: Rebuilt) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        let (commit, onto) = (v.chain[suspect.to - 1].1, v.prefix(suspect.from));
        let log = v.known.get(&commit).map(|(_, log)| log.clone());
        let command = v.command.clone();
        // The rebuilt tip passed: nothing after it is left to search.
        v.green = rebuilt.tip;
        v.green_known = true;
        v.chain.clear();
        v.culprits_without_pass += 1;
        if v.culprits_without_pass >= MAX_CULPRITS_WITHOUT_PASS {
            v.given_up = Some(format!(
                "the run-wide verify still failed after {MAX_CULPRITS_WITHOUT_PASS} merges were taken out; swarm stopped blaming tasks (is it flaky?)"
            ));
        }
        let ids = |list: &[TaskIndex]| -> Vec<String> {
            list.iter().map(|&i| self.tasks.get(i).id.clone()).collect()
        };
        let (unmerged, conflicted) = (ids(&rebuilt.unmerged), ids(&rebuilt.conflicted));
        let group = match suspect.tasks.as_slice() {
            [_] => String::new(),
            tasks => format!(
                " (one of {} merges verified as one: {})",
                tasks.len(),
                ids(tasks).join(", ")
            ),
        };
        for (n, &task) in suspect.tasks.iter().enumerate() {
            let id = self.tasks.get(task).id.clone();
            let mut reason = format!(
                "its merge broke the run-wide verify `{}`{group}: {} (with it) fails, {} (before it) passes, and the branch without it passes ({})",
                first_line(&command),
                short(commit),
                short(onto),
                short(rebuilt.tip),
            );
            if let Some(log) = &log {
                // Relative to the repository, as other reasons name logs.
                let prefix = format!("{}/", self.repo.workdir.display());
                let log = log.strip_prefix(prefix.as_str()).unwrap_or(log);
                reason.push_str(&format!(", see {log}"));
            }
            reason.push_str(&format!(
                "; its merge was taken out, its work is on {}",
                crate::git::refs::task(&self.run, &id)
            ));
            // The branch's fate is the first's to record; the others are
            // marked with the same tip.
            let first = n == 0;
            self.emit(EventBody::VerifyBroken {
                task: id,
                commit: commit.to_string(),
                passed_commit: onto.to_string(),
                integration_commit: rebuilt.tip.to_string(),
                unmerged: if first { unmerged.clone() } else { Vec::new() },
                conflicted: if first {
                    conflicted.clone()
                } else {
                    Vec::new()
                },
                reason,
            })?;
        }
        self.writer.set_branch(rebuilt.tip)?;
        self.merges.integration = rebuilt.tip;
        if self.settings.on_failure == OnFailure::Stop {
            self.stopping.get_or_insert(Stopping::Failure);
        }
        for &task in &suspect.tasks {
            self.block_dependents(task, "broke the run-wide verify")?;
        }
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
            self.merges.integration,
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
