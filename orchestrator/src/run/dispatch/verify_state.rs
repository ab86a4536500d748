//! What the run-wide verify keeps between the dispatcher's calls
//! ([`Verifying`]): its runner, the chain of merges since the last pass,
//! the verdicts, the search for culprits and its jobs in flight. The
//! dispatcher's side is `verifying.rs`.

use crate::ids::TaskIndex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use git2::Oid;
use swarm_protocol::verify::VerifyPurpose;
use swarm_sandbox::Stop;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::super::error::RunError;
use super::super::prepared::Prepared;
use super::super::verify::owners::{By, Place};
use super::super::verify::queue::{Candidate, Queue};
use super::super::verify::rebuild::Rebuilt;
use super::super::verify::verdicts::Verdicts;
use super::super::verify::{Ran, Runner};
use crate::git::GitError;
use crate::plan::VerifyEvery;
use crate::worktree_home::WorktreeHome;

/// Culprits taken out without the tip passing in between before swarm
/// stops blaming tasks: past it the verify more likely fails for a reason
/// no merge explains (broken by the machine).
pub(super) const MAX_CULPRITS_WITHOUT_PASS: u32 = 8;

/// Most bytes of each log of a failure read for the places it names: a
/// compiler's first errors come first.
pub(super) const NAMES_READ: u64 = 1 << 20;

/// What a job of the run-wide verify gave.
pub(super) enum Done {
    /// A run, in its slot.
    Ran(usize, Ran),
    Rebuilt {
        /// The units it was rebuilt without.
        removed: Vec<usize>,
        rebuilt: Result<Rebuilt, GitError>,
    },
}

/// A verify in flight.
pub(super) struct Running {
    pub(super) slot: usize,
    pub(super) commit: Oid,
    /// The search's round that asked it.
    pub(super) round: u32,
    pub(super) purpose: VerifyPurpose,
    /// The task whose merge made the commit (for a proof: the last unit
    /// it was rebuilt without).
    pub(super) after: Option<TaskIndex>,
    pub(super) stop: watch::Sender<Option<Stop>>,
}

/// A culprit the search found: the commit with it (which failed) and the
/// one before it (which passed), in the branch as it then stood.
#[derive(Debug, Clone, Copy)]
pub(super) struct Found {
    pub(super) unit: usize,
    pub(super) failing: Oid,
    pub(super) before: Oid,
}

/// One search over the chain, from a tip to its end.
pub(super) struct Search {
    pub(super) queue: Queue,
    /// Each unit's chain positions `from..to`.
    pub(super) units: Vec<(usize, usize)>,
    /// How long the chain was when it began: merges after that are not
    /// searched (a search that meets them before taking anything out
    /// starts again over all of them).
    pub(super) covered: usize,
    /// The commit the sequence starts from, and the commit after each
    /// unit of `queue.seq()`.
    pub(super) start: Oid,
    pub(super) after: Vec<Oid>,
    /// The branch rebuilt without `queue.removed()`.
    pub(super) rebuilt: Option<Rebuilt>,
    pub(super) found: Vec<Found>,
    /// The failing tip whose output was read, and the tasks it names.
    pub(super) tip: Oid,
    pub(super) named: Vec<(TaskIndex, By, Vec<Place>)>,
}

impl Search {
    /// The commit `c` stands for, in the branch as it stands.
    pub(super) fn commit(&self, c: &Candidate) -> Option<Oid> {
        if c.removed != self.queue.removed() {
            return None;
        }
        match c.upto {
            0 => Some(self.start),
            k => self.after.get(k - 1).copied(),
        }
    }
}

/// The run-wide verify's state.
pub(super) struct Verifying {
    pub(super) every: VerifyEvery,
    pub(super) command: String,
    /// One runner per slot (`verify_concurrency`).
    pub(super) runners: Vec<Arc<Runner>>,
    /// The build of the base cache started with the run (`verify::base`),
    /// and how to stop it.
    pub(super) priming: Option<(watch::Sender<Option<Stop>>, tokio::task::JoinHandle<()>)>,
    pub(super) jobs: JoinSet<Done>,
    pub(super) running: Vec<Running>,
    /// Rounds of the searches before this one (numbering rounds run-wide).
    pub(super) rounds_before: u32,
    pub(super) rebuilding: bool,
    /// The last commit known to pass, or the base (assumed until a search
    /// reaches it).
    pub(super) green: Oid,
    pub(super) green_known: bool,
    /// The merges since `green`, in order: (task, integration commit
    /// after it).
    pub(super) chain: Vec<(TaskIndex, Oid)>,
    pub(super) search: Option<Search>,
    /// Each task's group, for those in one.
    pub(super) groups: HashMap<TaskIndex, String>,
    /// Whether every merge of the run is done (the last `drive_verify`
    /// said so): only then is the branch the one a proof is about.
    pub(super) at_end: bool,
    /// A failing tip whose search found no proof yet while merges were
    /// still to come (`verify_every = "merge"`): not searched again until
    /// the branch moves or the merges are done.
    pub(super) deferred: Option<Oid>,
    /// Every run's result, by commit.
    pub(super) verdicts: Verdicts<Oid>,
    /// The logs (stdout, stderr) of each commit's last failed run.
    pub(super) logs: HashMap<Oid, (String, String)>,
    /// Why it stopped for the rest of the run (it fails at the base, it
    /// could not run, no removal explains it).
    pub(super) given_up: Option<String>,
    pub(super) culprits_without_pass: u32,
    /// Runs so far (numbering their logs).
    pub(super) runs: u32,
    /// Agents given a repair round (once each).
    pub(super) repaired: HashSet<TaskIndex>,
    /// Those whose repair's result has not merged yet: the branch is not
    /// verified again before it has.
    pub(super) awaiting: HashSet<TaskIndex>,
}

impl Drop for Verifying {
    /// A run whose dispatcher ends without [`Verifying::close`] (an
    /// error on the way) does not leave the base cache's build running
    /// detached: it is told to stop, then taken down.
    fn drop(&mut self) {
        if let Some((stop, priming)) = self.priming.take() {
            stop.send_replace(Some(Stop::Immediate));
            priming.abort();
        }
    }
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
        let runners = Runner::slots(prepared, home, verify, base)?;
        // The base cache is built beside the tasks, before the first
        // merge needs it (when there is a runtime to build it on: there
        // always is, but for a unit test's).
        let priming = match (runners.first(), tokio::runtime::Handle::try_current()) {
            (Some(first), Ok(runtime)) => {
                let (stop, stopped) = watch::channel(None);
                Some((stop, runtime.spawn(Arc::clone(first).prime(stopped))))
            }
            _ => None,
        };
        Ok(Some(Self {
            every: verify.every,
            command: verify.command.clone(),
            runners,
            priming,
            jobs: JoinSet::new(),
            running: Vec::new(),
            rounds_before: 0,
            rebuilding: false,
            green: base,
            green_known: false,
            chain: Vec::new(),
            search: None,
            groups,
            at_end: false,
            deferred: None,
            verdicts: Verdicts::new(verify.retries),
            logs: HashMap::new(),
            given_up: None,
            culprits_without_pass: 0,
            runs: 0,
            repaired: HashSet::new(),
            awaiting: HashSet::new(),
        }))
    }

    /// Removes what the runs kept between them (the run is over).
    pub(super) async fn close(&mut self) {
        if let Some((stop, priming)) = self.priming.take() {
            stop.send_replace(Some(Stop::Graceful));
            if let Err(e) = priming.await {
                tracing::warn!(error = %e, "the build of the run-wide verify's base cache ended badly");
            }
        }
        for runner in &self.runners {
            Arc::clone(runner).close().await;
        }
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
                    self.running.clear();
                    self.rebuilding = false;
                }
            }
        }
    }

    /// The commit of chain position `k` (0: `green`).
    pub(super) fn prefix(&self, k: usize) -> Oid {
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
                .is_none_or(|(_, tip)| self.verdicts.verdict(tip) == Some(true))
    }

    /// A search over the whole chain, its tip first.
    pub(super) fn begin(&mut self) {
        let n = self.chain.len();
        let points = self.whole_prefixes(n);
        let units: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
        let after = units.iter().map(|&(_, to)| self.prefix(to)).collect();
        self.search = Some(Search {
            queue: Queue::new(units.len(), self.green_known, self.runners.len()),
            units,
            covered: n,
            start: self.green,
            after,
            rebuilt: None,
            found: Vec::new(),
            tip: self.prefix(n),
            named: Vec::new(),
        });
    }

    /// The prefixes among the first `n` of the chain that split no group
    /// (every member the chain holds is in it, or none): where the search
    /// may probe. Always 0 and `n`.
    pub(super) fn whole_prefixes(&self, n: usize) -> Vec<usize> {
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

    /// Whether a group has some merges on the branch and members still to
    /// come (not final): the tip is not verified then.
    pub(super) fn group_open(&self, final_: impl Fn(TaskIndex) -> bool) -> bool {
        self.chain.iter().any(|(t, _)| {
            self.groups.get(t).is_some_and(|g| {
                self.groups
                    .iter()
                    .any(|(other, og)| og == g && !final_(*other))
            })
        })
    }

    /// The tasks of unit `u` of `search`, in chain order.
    pub(super) fn unit_tasks(&self, search: &Search, u: usize) -> Vec<TaskIndex> {
        let (from, to) = search.units[u];
        self.chain[from..to].iter().map(|(t, _)| *t).collect()
    }

    /// Drops the search for now: merges are still to come, and it proved
    /// nothing; the branch is searched again once it moves.
    pub(super) fn defer(&mut self) {
        if let Some(search) = self.end() {
            self.deferred = Some(search.tip);
        }
    }

    /// Takes the search out, ended: its rounds are counted as done (the
    /// next search's are numbered after them).
    pub(super) fn end(&mut self) -> Option<Search> {
        let search = self.search.take()?;
        self.rounds_before += search.queue.round();
        Some(search)
    }
}

/// The next result of `verify`'s jobs; never, without a verify.
pub(super) async fn next_done(verify: &mut Option<Verifying>) -> Option<Done> {
    match verify {
        Some(v) => v.next().await,
        None => std::future::pending().await,
    }
}
