//! The dispatcher's side of the run-wide verify (`[swarm] verify`): when
//! it runs, what its verdicts mean, and taking out the merges that broke
//! it.
//!
//! The dispatcher keeps the merges made since the last commit known to
//! pass (the chain) and every run's result by commit ([`Verdicts`], also
//! the journal's, so a resumed run asks nothing twice): a failing run is
//! run again (`verify_retries`) before its failure counts, so a flaky
//! suite neither takes a correct merge out nor hides a culprit. With
//! `verify_every = "end"` the tip is verified once every merge is done;
//! with `"merge"`, whenever no verify runs and something was merged since
//! the last one (merges that land while it runs are checked together by
//! the next).
//!
//! What to verify next is the search's ([`Queue`]): the tip, then a
//! bisection over the chain's units (one merge, or a `group`'s, verified
//! and taken out as one), then the branch rebuilt without the unit found
//! first to fail (`verify::rebuild`, on the blocking pool, merges held
//! meanwhile), and so on for a second and third culprit, each proven in
//! the branch without the ones before it. Only when the rebuilt branch
//! passes are the culprits taken out: each becomes `broke-verify`, its
//! dependents are blocked, the branch moves. When removals prove nothing
//! (the pieces of an incomplete refactor), the tasks that own the files
//! the failure names are named (`verify::owners`) and every merge stays.
//! While merges are still to come, a search that proves nothing waits for
//! them. Everything runs off the dispatcher's thread: runs and rebuilds
//! are futures of one `JoinSet` its loop selects on.

use crate::ids::TaskIndex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use git2::Oid;
use swarm_protocol::verify::{NamedTask, VerifyNamed, VerifyPurpose, VerifyRun};
use swarm_protocol::{AttemptOutcome, EventBody, TaskStatus};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use super::super::error::RunError;
use super::super::verify::Ran;
use super::super::verify::owners::{self, By, Owns, Place};
use super::super::verify::queue::{Candidate, End, Named, Need};
use super::super::verify::rebuild::{Rebuilt, Remerge, rebuild};
use super::{Dispatcher, Stopping};
use crate::plan::{History, OnFailure, VerifyEvery};
use crate::run::writer::merge_message;

use super::verify_state::{Done, Found, MAX_CULPRITS_WITHOUT_PASS, NAMES_READ, Running, Search};

impl Dispatcher<'_> {
    /// True while merges are being taken out: merges wait, as they would
    /// land on the branch being replaced.
    pub(super) fn verify_holds_merges(&self) -> bool {
        self.verify.as_ref().is_some_and(|v| {
            v.rebuilding
                || v.search
                    .as_ref()
                    .is_some_and(|s| !s.queue.removed().is_empty())
        })
    }

    /// Task `i` had its repair round before the run was resumed: it gets
    /// no other.
    pub(super) fn note_repaired(&mut self, i: TaskIndex) {
        if let Some(v) = &mut self.verify {
            v.repaired.insert(i);
        }
    }

    /// A repair round's task whose new result is there to merge.
    pub(super) fn repair_to_merge(&self) -> Option<TaskIndex> {
        let v = self.verify.as_ref()?;
        let mut waiting: Vec<TaskIndex> = v.awaiting.iter().copied().collect();
        waiting.sort_unstable();
        waiting
            .into_iter()
            .find(|&t| self.status(t) == TaskStatus::Succeeded)
    }

    /// A repair round's merge is done (or there was none to do).
    pub(super) fn repair_merged(&mut self, i: TaskIndex) {
        if let Some(v) = &mut self.verify {
            v.awaiting.remove(&i);
        }
    }

    /// A merge of task `i` moved the branch to `commit`.
    pub(super) fn merged_into_branch(&mut self, i: TaskIndex, commit: Oid) {
        if let Some(v) = &mut self.verify {
            v.chain.push((i, commit));
            v.awaiting.remove(&i);
        }
    }

    /// Starts what the run-wide verify needs next, if anything: a run the
    /// search asks for, a rebuild without its culprits, or the tip (at
    /// the end, or after merges with `verify_every = "merge"`). `at_end`:
    /// every task is final and every merge done.
    pub(super) fn drive_verify(&mut self, at_end: bool) -> Result<(), RunError> {
        if self.stopping == Some(Stopping::Cancel) {
            return Ok(());
        }
        loop {
            let merging = self.merges.busy();
            let Some(v) = &mut self.verify else {
                return Ok(());
            };
            v.at_end = at_end;
            if v.given_up.is_some() || v.rebuilding {
                return Ok(());
            }
            if let Some(search) = &v.search {
                let asked = match search.queue.need() {
                    Need::Verdicts(asked) => asked,
                    // Anything else waits for the runs in flight.
                    _ if !v.running.is_empty() => return Ok(()),
                    need => {
                        if self.on_need(need, merging)? {
                            continue;
                        }
                        return Ok(());
                    }
                };
                // A verdict known already is the search's at once.
                let known = asked.iter().find_map(|c| {
                    let commit = search.commit(c)?;
                    let known = match c.sure {
                        true => v.verdicts.verdict(&commit),
                        false => v.verdicts.first(&commit),
                    };
                    Some((c.clone(), commit, known?))
                });
                if let Some((c, _, passed)) = known {
                    let proof = !c.removed.is_empty() && c.upto == search.queue.seq().len();
                    if proof && !at_end {
                        // Without later merges, the branch without the
                        // culprit is the prefix before it, which passed:
                        // that proves something only of the branch as it
                        // ends (the pieces of a refactor break it until
                        // the last lands). And a removal that does not make
                        // it pass decides nothing while merges are still
                        // to come.
                        let vacuous = search.rebuilt.as_ref().is_some_and(|r| {
                            r.links.is_empty() && r.unmerged.is_empty() && r.conflicted.is_empty()
                        });
                        if !passed || vacuous {
                            v.defer();
                            return self.advance_merges();
                        }
                    }
                    if let Some(search) = &mut v.search {
                        search.queue.verdict(&c, passed);
                    }
                    continue;
                }
                // The rest run, as many at once as there are free slots
                // (a failure again, until it reproduces or passes).
                let round = v.rounds_before + search.queue.round();
                let mut start = Vec::new();
                let mut free: Vec<usize> = (0..v.runners.len())
                    .filter(|slot| !v.running.iter().any(|r| r.slot == *slot))
                    .collect();
                for c in &asked {
                    let Some(commit) = search.commit(c) else {
                        continue;
                    };
                    if v.running.iter().any(|r| r.commit == commit)
                        || start.iter().any(|(_, _, at, _)| *at == commit)
                    {
                        continue;
                    }
                    let Some(slot) = free.pop() else {
                        break;
                    };
                    start.push((slot, c.clone(), commit, round));
                }
                for (slot, c, commit, round) in start {
                    self.start_verify(slot, commit, &c, round);
                }
                return Ok(());
            }
            if !v.running.is_empty() {
                return Ok(());
            }
            // A repair round's result is merged before the branch is
            // verified again (one that ended otherwise is not waited for).
            let awaiting: Vec<TaskIndex> = v.awaiting.iter().copied().collect();
            let waiting = awaiting.iter().any(|&t| {
                let status = self.status(t);
                !status.is_final() || status == TaskStatus::Succeeded
            });
            let Some(v) = &mut self.verify else {
                return Ok(());
            };
            if waiting {
                return Ok(());
            }
            v.awaiting.clear();
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
            match v.verdicts.verdict(&tip) {
                // Searched already, with merges still to come: wait for them.
                Some(false) if v.deferred == Some(tip) && !at_end => return Ok(()),
                // Passed already (a resumed run): nothing to search.
                Some(true) => {
                    v.green = tip;
                    v.green_known = true;
                    v.chain.clear();
                    return Ok(());
                }
                _ => v.begin(),
            }
        }
    }

    /// What the search needs besides verdicts: what the failure names, a
    /// rebuild, or its end. Whether there is more to do at once.
    fn on_need(&mut self, need: Need, merging: bool) -> Result<bool, RunError> {
        match need {
            Need::Names => {
                let (named, elsewhere) = self.names();
                if let Some(search) = self.verify.as_mut().and_then(|v| v.search.as_mut()) {
                    search.queue.named(named, elsewhere);
                }
                Ok(true)
            }
            Need::Rebuild(removed) => {
                let Some(v) = &mut self.verify else {
                    return Ok(false);
                };
                if v.search.as_ref().is_some_and(|s| v.chain.len() > s.covered) {
                    // Merges landed while it searched: search again over
                    // all of them (what it verified is kept).
                    v.end();
                    return Ok(true);
                }
                if !merging {
                    // After the merge in flight, else: `drive_verify`
                    // comes back once it is in.
                    self.start_removal(removed)?;
                }
                Ok(false)
            }
            Need::Done(end) => {
                let repairs = self.verify.as_ref().map_or(0, |v| v.repaired.len());
                self.end_search(end)?;
                // After a repair round, nothing until its result merges
                // (`at_end` is no longer so).
                Ok(self.verify.as_ref().is_some_and(|v| {
                    v.given_up.is_none() && v.search.is_none() && v.repaired.len() == repairs
                }))
            }
            Need::Verdicts(_) => Ok(false),
        }
    }

    /// Starts a run of the verify on `commit`, for candidate `c` of the
    /// search's round `round`, in slot `slot`.
    fn start_verify(&mut self, slot: usize, commit: Oid, c: &Candidate, round: u32) {
        let after = self.verify.as_ref().and_then(|v| {
            let search = v.search.as_ref()?;
            match c.upto {
                _ if !c.removed.is_empty() && c.upto == search.queue.seq().len() => {
                    let unit = *c.removed.last()?;
                    v.unit_tasks(search, unit).first().copied()
                }
                0 => None,
                k => {
                    let unit = *search.queue.seq().get(k - 1)?;
                    v.unit_tasks(search, unit).last().copied()
                }
            }
        });
        let Some(v) = &mut self.verify else {
            return;
        };
        let Some(search) = &v.search else {
            return;
        };
        let purpose = match (c.removed.is_empty(), c.upto) {
            (_, 0) => VerifyPurpose::Base,
            (true, k) if k == search.queue.seq().len() => VerifyPurpose::Tip,
            (false, k) if k == search.queue.seq().len() => VerifyPurpose::Proof,
            _ => VerifyPurpose::Bisect,
        };
        let Some(runner) = v.runners.get(slot).map(Arc::clone) else {
            return;
        };
        v.runs += 1;
        let (stop, stopped) = watch::channel(None);
        let number = v.runs;
        v.jobs
            .spawn(async move { Done::Ran(slot, runner.run(number, commit, stopped).await) });
        v.running.push(Running {
            slot,
            commit,
            round,
            purpose,
            after,
            stop,
        });
    }

    /// Stops the verify in flight (the run is being stopped).
    pub(super) fn stop_verify(&mut self, how: Stop) {
        if let Some(v) = &self.verify {
            if let Some((stop, _)) = &v.priming {
                stop.send_replace(Some(how));
            }
            for running in &v.running {
                running.stop.send_replace(Some(how));
            }
        }
    }

    /// A job of the run-wide verify ended.
    pub(super) fn on_verify_done(&mut self, done: Done) -> Result<(), RunError> {
        match done {
            Done::Ran(slot, ran) => self.on_verified(slot, ran),
            Done::Rebuilt { removed, rebuilt } => self.on_rebuilt(removed, rebuilt?),
        }
    }

    fn on_verified(&mut self, slot: usize, ran: Ran) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        let Some(at) = v.running.iter().position(|r| r.slot == slot) else {
            return Ok(());
        };
        let running = v.running.remove(at);
        // Stopped with the run: no verdict; a resumed run asks again.
        if ran.outcome == AttemptOutcome::Cancelled {
            return Ok(());
        }
        let commit = running.commit;
        let run = VerifyRun {
            commit: commit.to_string(),
            tree: ran.tree.map(|t| t.to_string()),
            purpose: running.purpose,
            attempt: v.verdicts.fails(&commit),
            round: Some(running.round),
            after: running.after.map(|i| self.tasks.get(i).id.clone()),
            passed: ran.outcome.is_success(),
            outcome: ran.outcome,
            duration_ms: crate::millis(ran.duration),
            stdout_log: ran.stdout.display().to_string(),
            stderr_log: ran.stderr.display().to_string(),
            tail: ran.tail,
        };
        let (passed, could_not_run) = (run.passed, run.could_not_run());
        let logs = (run.stdout_log.clone(), run.stderr_log.clone());
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
            v.end();
            v.given_up = Some(format!("the run-wide verify could not run: {message}"));
            return Ok(());
        }
        v.verdicts.record(commit, passed);
        if !passed {
            v.logs.insert(commit, logs);
        }
        if passed && running.purpose == VerifyPurpose::Base {
            v.green_known = true;
        }
        // The search takes the verdict once it is one (a failure, once it
        // reproduced): `drive_verify` runs it again until then.
        self.advance_merges()
    }

    /// What the failing tip's output names: the units owning the files
    /// it names, and whether it names tasks with no merge on the branch
    /// (a piece that changed nothing owns its `paths` all the same). Read
    /// from its last failed run's logs, mapped through every task's
    /// `paths` and `creates` and what each merge on the branch changed.
    fn names(&mut self) -> (Vec<Named>, bool) {
        let Some(v) = &self.verify else {
            return (Vec::new(), false);
        };
        let Some(search) = &v.search else {
            return (Vec::new(), false);
        };
        let text = match v.logs.get(&search.tip) {
            Some((out, err)) => format!("{}\n{}", read_start(err), read_start(out)),
            None => String::new(),
        };
        let places = match v.runners.first() {
            Some(runner) => owners::places(&text, runner.checkout()),
            None => Vec::new(),
        };
        if places.is_empty() {
            return (Vec::new(), false);
        }
        // What each merge on the branch changed.
        let git = self.repo.open().ok();
        let mut changed: HashMap<TaskIndex, Vec<String>> = HashMap::new();
        for k in 0..search.covered {
            let (task, commit) = v.chain[k];
            let before = v.prefix(k);
            let files = git
                .as_ref()
                .and_then(|git| {
                    let old = git.find_commit(before).ok()?.tree().ok()?;
                    let new = git.find_commit(commit).ok()?.tree().ok()?;
                    crate::git::changed_paths(git, &old, &new).ok()
                })
                .unwrap_or_default();
            changed.entry(task).or_default().extend(files);
        }
        // Every task of the run, with what it owns.
        let all: Vec<TaskIndex> = self.tasks.indices().collect();
        let owns: Vec<Owns> = all
            .iter()
            .map(|&i| {
                let plan = self.tasks.get(i);
                Owns {
                    scope: plan.paths.iter().chain(&plan.creates).cloned().collect(),
                    changed: changed.remove(&i).unwrap_or_default(),
                }
            })
            .collect();
        let found = owners::owners(&places, &owns);
        let named_tasks: Vec<(TaskIndex, By, Vec<Place>)> = found
            .iter()
            .map(|(&i, (by, places))| (all[i], *by, places.clone()))
            .collect();
        // A unit is named by its tasks, a group's by any of its members
        // (merged or not): wholly when every member is.
        let members = |u: usize| -> Vec<TaskIndex> {
            let tasks = v.unit_tasks(search, u);
            match tasks.first().and_then(|t| v.groups.get(t)) {
                Some(group) => all
                    .iter()
                    .copied()
                    .filter(|t| v.groups.get(t) == Some(group))
                    .collect(),
                None => tasks,
            }
        };
        let mut units = Vec::new();
        let mut covered: HashSet<TaskIndex> = HashSet::new();
        for u in 0..search.units.len() {
            let members = members(u);
            let hits = members
                .iter()
                .filter(|m| named_tasks.iter().any(|(t, _, _)| t == *m))
                .count();
            covered.extend(members.iter().copied());
            if hits > 0 {
                units.push(Named {
                    unit: u,
                    whole: hits == members.len(),
                });
            }
        }
        let elsewhere = named_tasks.iter().any(|(t, _, _)| !covered.contains(t));
        if let Some(search) = self.verify.as_mut().and_then(|v| v.search.as_mut()) {
            search.named = named_tasks;
        }
        (units, elsewhere)
    }

    /// Rebuilds the branch without the units `removed` (and what holds
    /// their changes), on the blocking pool: the branch its verdict is
    /// asked of before anything is taken out.
    fn start_removal(&mut self, removed: Vec<usize>) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        let Some(search) = &mut v.search else {
            return Ok(());
        };
        // The unit just found: where it first failed, in the branch as it
        // stands.
        if let Some(&unit) = removed.last()
            && let Some(at) = search.queue.seq().iter().position(|&u| u == unit)
        {
            let before = match at {
                0 => search.start,
                at => search.after[at - 1],
            };
            search.found.push(Found {
                unit,
                failing: search.after[at],
                before,
            });
        }
        let Some(v) = &self.verify else {
            return Ok(());
        };
        let Some(search) = &v.search else {
            return Ok(());
        };
        let from = removed
            .iter()
            .map(|&u| search.units[u].0)
            .min()
            .unwrap_or(search.covered);
        let onto = v.prefix(from);
        let gone: HashSet<TaskIndex> = removed
            .iter()
            .flat_map(|&u| v.unit_tasks(search, u))
            .collect();
        let results: Vec<Oid> = gone.iter().filter_map(|&t| self.result(t)).collect();
        let squash = self.settings.history == History::Squash;
        let mut dependents = HashSet::new();
        for &t in &gone {
            dependents.extend(self.all_dependents(t));
        }
        let later: Vec<Remerge> = v.chain[from..search.covered]
            .iter()
            .filter(|(task, _)| !gone.contains(task))
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
        v.jobs.spawn(async move {
            let rebuilt = crate::run::blocking::blocking(move || {
                rebuild(&repo, onto, &results, &later, squash, &run)
            })
            .await;
            Done::Rebuilt { removed, rebuilt }
        });
        Ok(())
    }

    /// The branch was rebuilt without `removed`: the search goes on over
    /// it, its tip's verdict first.
    fn on_rebuilt(&mut self, removed: Vec<usize>, rebuilt: Rebuilt) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        v.rebuilding = false;
        let Some(search) = &v.search else {
            return Ok(());
        };
        if search.queue.removed() != removed.as_slice() {
            return Ok(());
        }
        let from = removed
            .iter()
            .map(|&u| search.units[u].0)
            .min()
            .unwrap_or(search.covered);
        let dropped: HashSet<TaskIndex> = rebuilt
            .unmerged
            .iter()
            .chain(&rebuilt.conflicted)
            .copied()
            .collect();
        let mut seq = Vec::new();
        let mut after = Vec::new();
        let mut last = v.prefix(from);
        for (u, &(a, b)) in search.units.iter().enumerate() {
            if removed.contains(&u) {
                continue;
            }
            if b <= from {
                seq.push(u);
                after.push(v.prefix(b));
                continue;
            }
            let tasks = &v.chain[a..b];
            let links: Vec<Oid> = rebuilt
                .links
                .iter()
                .filter(|(t, _)| tasks.iter().any(|(own, _)| own == t))
                .map(|(_, c)| *c)
                .collect();
            if let Some(&c) = links.last() {
                last = c;
            } else if tasks.iter().all(|(t, _)| dropped.contains(t)) {
                continue;
            }
            seq.push(u);
            after.push(last);
        }
        let at_end = v.at_end;
        if let Some(search) = &mut v.search {
            search.after = after;
            search.rebuilt = Some(rebuilt);
            search.queue.rebuilt(seq);
        }
        self.drive_verify(at_end)
    }

    /// Where a search ended: the branch passes, culprits are taken out, a
    /// failure is named, or nobody is blamed.
    fn end_search(&mut self, end: End) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        let at_end = v.at_end;
        match end {
            End::Passes => {
                if let Some(search) = v.end() {
                    v.green = search.tip;
                    v.green_known = true;
                    v.chain.drain(..search.covered);
                    v.culprits_without_pass = 0;
                }
                Ok(())
            }
            End::Culprits(_) => match v.end() {
                Some(search) => {
                    // An agent proven to break it is told why first, its
                    // merge kept; taken out only if it is proven again.
                    let singles: Vec<TaskIndex> = search
                        .found
                        .iter()
                        .filter_map(|f| match v.unit_tasks(&search, f.unit).as_slice() {
                            [one] => Some(*one),
                            _ => None,
                        })
                        .collect();
                    let agents: Vec<TaskIndex> = singles
                        .into_iter()
                        .filter(|&t| self.repairable(t))
                        .collect();
                    match agents.is_empty() {
                        true => self.take_out(search),
                        false => self.repair(search, &agents, "taking its merge out makes it pass"),
                    }
                }
                None => Ok(()),
            },
            End::Named | End::Unexplained { .. } if !at_end => {
                v.defer();
                self.advance_merges()
            }
            End::Named => match v.end() {
                Some(search) => {
                    let agents: Vec<TaskIndex> = search
                        .named
                        .iter()
                        .map(|(t, _, _)| *t)
                        .filter(|&t| self.repairable(t))
                        .collect();
                    match agents.is_empty() {
                        true => self.name(search),
                        false => self.repair(search, &agents, "its failure names files you own"),
                    }
                }
                None => Ok(()),
            },
            End::Unexplained { first } => {
                let Some(search) = v.end() else {
                    return Ok(());
                };
                let failing = first
                    .and_then(|u| search.found.iter().find(|f| f.unit == u))
                    .map(|f| f.failing);
                let after = first
                    .and_then(|u| v.unit_tasks(&search, u).first().copied())
                    .map(|t| self.tasks.get(t).id.clone())
                    .unwrap_or_default();
                let log = failing
                    .and_then(|c| v.logs.get(&c))
                    .map(|(_, err)| err.clone())
                    .unwrap_or_default();
                v.given_up = Some(format!(
                    "no set of merges broke it: the tip {} fails with every merge, and without `{after}`'s merge (the first to fail, at {}, see {log}) and up to {} more too; every merge is kept",
                    short(search.tip),
                    failing.map(short).unwrap_or_default(),
                    super::super::verify::queue::MAX_CULPRITS - 1,
                ));
                self.advance_merges()
            }
            End::StartFails => {
                v.end();
                v.given_up = Some(format!(
                    "the run-wide verify fails at the run's base {} too, so no task is blamed: fix the base (or the verify command) and run again",
                    short(v.green)
                ));
                Ok(())
            }
        }
    }

    /// Whether task `i` may get a repair round: an agent, merged, run
    /// again for the verify at most once, not a variant or an experiment
    /// (decided among its variants), not one whose subtasks built on its
    /// result, and nothing is stopping the run.
    fn repairable(&self, i: TaskIndex) -> bool {
        let task = self.tasks.get(i);
        task.agent().is_some()
            && self.status(i) == TaskStatus::Merged
            && self.stopping.is_none()
            && task.experiment().is_none()
            && self.slots[i].experiment_of.is_none()
            && self.slots[i].children.is_empty()
            && self
                .verify
                .as_ref()
                .is_some_and(|v| !v.repaired.contains(&i))
    }

    /// The agents `agents` (named by the failure, or proven to break it)
    /// run again on the integration branch as it is, their merges kept,
    /// told the failure (`why` it is theirs, the places it names, the end
    /// of its output): a repair round, as a conflict's re-run. The branch
    /// is verified again once their results merge; nothing is taken out
    /// meanwhile.
    fn repair(&mut self, search: Search, agents: &[TaskIndex], why: &str) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        v.deferred = Some(search.tip);
        let command = first_line(&v.command);
        let tail = v
            .logs
            .get(&search.tip)
            .and_then(|(out, err)| {
                super::super::verify::tail(std::path::Path::new(err), std::path::Path::new(out))
            })
            .unwrap_or_default();
        v.repaired.extend(agents.iter().copied());
        v.awaiting.extend(agents.iter().copied());
        for &i in agents {
            let places: Vec<String> = search
                .named
                .iter()
                .filter(|(t, _, _)| *t == i)
                .flat_map(|(_, _, places)| places.iter().map(Place::to_string))
                .collect();
            let named = match places.is_empty() {
                true => String::new(),
                false => format!(" It names: {}.", places.join(", ")),
            };
            let note = format!(
                "swarm: the run-wide verify `{command}` fails on the integration branch, which holds your change (merged), and {why}.{named} \
                 This worktree now starts from that branch: make the verify pass (the same intent, completed), changing only what is yours to change.\n\n\
                 The end of its output:\n```\n{tail}\n```"
            );
            let conflict_reruns = self.fold.task(i).map_or(0, |t| t.conflict_reruns);
            let reruns = self.tasks.get(i).conflict_reruns;
            self.rerun(i, None, (conflict_reruns, reruns), Some(note.into()), true)?;
        }
        self.advance_merges()
    }

    /// No removal explains the failure (or only some of a group's pieces
    /// are to blame): the tasks owning what it names are named, every
    /// merge stays, and the way to finish the run is printed.
    fn name(&mut self, search: Search) -> Result<(), RunError> {
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        // The log that holds its output: stderr, else stdout.
        let log = v
            .logs
            .get(&search.tip)
            .map(|(out, err)| match read_start(err).trim().is_empty() {
                true => out.clone(),
                false => err.clone(),
            })
            .unwrap_or_default();
        let prefix = format!("{}/", self.repo.workdir.display());
        let log = log
            .strip_prefix(prefix.as_str())
            .unwrap_or(&log)
            .to_string();
        let ids: Vec<String> = search
            .named
            .iter()
            .map(|(t, _, _)| self.tasks.get(*t).id.clone())
            .collect();
        let tasks: Vec<NamedTask> = search
            .named
            .iter()
            .zip(&ids)
            .map(|((_, by, places), id)| NamedTask {
                task: id.clone(),
                places: places.iter().map(Place::to_string).collect(),
                by: by.as_str().to_string(),
            })
            .collect();
        let shown = ids
            .iter()
            .map(|id| format!("`{id}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let first = tasks
            .first()
            .and_then(|t| t.places.first().cloned())
            .unwrap_or_default();
        let branch = crate::git::refs::integration_branch(&self.run);
        let only = ids
            .iter()
            .map(|id| format!("--only {id}"))
            .collect::<Vec<_>>()
            .join(" ");
        let reason = format!(
            "the branch FAILS and no merge taken out would make it pass; its failure names {shown} (at {first}, see {log}): every merge is kept. Fix it, then `swarm run PLAN --base {branch} {only}` and `swarm land` that run"
        );
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        v.given_up = Some(reason.clone());
        self.emit(EventBody::VerifyNamed {
            named: VerifyNamed {
                commit: search.tip.to_string(),
                tasks,
                reason,
            },
        })?;
        self.advance_merges()
    }

    /// The search's culprits are proven (the branch without them passes):
    /// journaled, then the branch moves (on the writer, after the line is
    /// on disk), then their dependents are blocked.
    fn take_out(&mut self, search: Search) -> Result<(), RunError> {
        let Some(rebuilt) = search.rebuilt.clone() else {
            return Ok(());
        };
        let Some(v) = &mut self.verify else {
            return Ok(());
        };
        let command = v.command.clone();
        let units: Vec<Vec<TaskIndex>> = search
            .found
            .iter()
            .map(|f| v.unit_tasks(&search, f.unit))
            .collect();
        // The rebuilt tip passed: nothing after it is left to search.
        v.green = rebuilt.tip;
        v.green_known = true;
        v.chain.clear();
        v.culprits_without_pass += u32::try_from(search.found.len()).unwrap_or(u32::MAX);
        if v.culprits_without_pass >= MAX_CULPRITS_WITHOUT_PASS {
            v.given_up = Some(format!(
                "the run-wide verify still failed after {MAX_CULPRITS_WITHOUT_PASS} merges were taken out; swarm stopped blaming tasks"
            ));
        }
        let logs: Vec<Option<String>> = search
            .found
            .iter()
            .map(|f| v.logs.get(&f.failing).map(|(_, err)| err.clone()))
            .collect();
        let names: HashMap<TaskIndex, String> = units
            .iter()
            .flatten()
            .chain(&rebuilt.unmerged)
            .chain(&rebuilt.conflicted)
            .map(|&i| (i, self.tasks.get(i).id.clone()))
            .collect();
        let ids = |list: &[TaskIndex]| -> Vec<String> {
            list.iter().filter_map(|i| names.get(i).cloned()).collect()
        };
        let (unmerged, conflicted) = (ids(&rebuilt.unmerged), ids(&rebuilt.conflicted));
        let every: Vec<String> = units.iter().flat_map(|u| ids(u)).collect();
        let mut first = true;
        for ((found, tasks), log) in search.found.iter().zip(&units).zip(&logs) {
            let group = match tasks.as_slice() {
                [_] => String::new(),
                tasks => format!(
                    " (one of {} merges verified as one: {})",
                    tasks.len(),
                    ids(tasks).join(", ")
                ),
            };
            let others: Vec<String> = every
                .iter()
                .filter(|id| !ids(tasks).contains(id))
                .map(|id| format!("`{id}`"))
                .collect();
            let without = match others.is_empty() {
                true => "the branch without it passes".to_string(),
                false => format!("the branch without it and {} passes", others.join(", ")),
            };
            for id in ids(tasks) {
                let mut reason = format!(
                    "its merge broke the run-wide verify `{}`{group}: {} (with it) fails, {} (before it) passes, and {without} ({})",
                    first_line(&command),
                    short(found.failing),
                    short(found.before),
                    short(rebuilt.tip),
                );
                if let Some(log) = log {
                    // Relative to the repository, as other reasons name logs.
                    let prefix = format!("{}/", self.repo.workdir.display());
                    let log = log.strip_prefix(prefix.as_str()).unwrap_or(log);
                    reason.push_str(&format!(", see {log}"));
                }
                reason.push_str(&format!(
                    "; its merge was taken out, its work is on {}",
                    crate::git::refs::task(&self.run, &id)
                ));
                // The branch's fate is the first's to record; the others
                // are marked with the same tip.
                self.emit(EventBody::VerifyBroken {
                    task: id,
                    commit: found.failing.to_string(),
                    passed_commit: found.before.to_string(),
                    integration_commit: rebuilt.tip.to_string(),
                    unmerged: if first { unmerged.clone() } else { Vec::new() },
                    conflicted: if first {
                        conflicted.clone()
                    } else {
                        Vec::new()
                    },
                    reason,
                })?;
                first = false;
            }
        }
        self.writer.set_branch(rebuilt.tip)?;
        self.merges.moved_to(rebuilt.tip);
        if self.settings.on_failure == OnFailure::Stop {
            self.stopping.get_or_insert(Stopping::Failure);
        }
        for &task in units.iter().flatten() {
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
    fn all_dependents(&self, i: TaskIndex) -> HashSet<TaskIndex> {
        let mut seen = HashSet::new();
        let mut stack: Vec<TaskIndex> = self.graph.dependents(i).collect();
        while let Some(d) = stack.pop() {
            if seen.insert(d) {
                stack.extend(self.graph.dependents(d));
            }
        }
        seen
    }

    /// A resumed run's verify state: the branch's merges since the base
    /// (read from git), every run the journal holds, and the last commit
    /// known to pass among them.
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
                v.verdicts.record(commit, run.passed);
                if !run.passed {
                    v.logs
                        .insert(commit, (run.stdout_log.clone(), run.stderr_log.clone()));
                }
            }
        }
        v.runs = u32::try_from(report.verify_runs.len()).unwrap_or(u32::MAX);
        v.green = self.base_commit;
        v.green_known = v.verdicts.verdict(&self.base_commit) == Some(true);
        let merges = super::super::verify::rebuild::merges_since(
            &self.repo,
            self.base_commit,
            self.merges.integration(),
        )?;
        for (commit, task) in merges {
            if let Some(i) = self.tasks.position(&task) {
                v.chain.push((i, commit));
            }
        }
        if let Some(last_pass) = v
            .chain
            .iter()
            .rposition(|(_, c)| v.verdicts.verdict(c) == Some(true))
        {
            v.green = v.chain[last_pass].1;
            v.green_known = true;
            v.chain.drain(..=last_pass);
        }
        Ok(())
    }
}

/// The first [`NAMES_READ`] bytes of a log (nothing, if it cannot be
/// read).
#[allow(
    clippy::disallowed_methods,
    reason = "the verify's logs, swarm's own files"
)]
fn read_start(path: &str) -> String {
    use std::io::Read as _;
    let mut text = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.take(NAMES_READ).read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
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
