//! The merge queue's search: which merges to take out of a branch whose
//! run-wide verify fails, proven, every culprit found, and a failure no
//! removal explains named by who owns what it names.
//!
//! The branch is a sequence of *units* since the last commit known to
//! pass: one merge each, or a `group`'s merges, verified and taken out as
//! one. The search is over the sequence as it stands without the units
//! found so far (`removed`):
//!
//! 1. its tip is verified; a pass ends the search: the units removed are
//!    the culprits, each proven (the prefix before it passed, with it the
//!    prefix failed, and the branch without all of them passes);
//! 2. a failing tip is bisected ([`Bisect`]) for the first unit whose
//!    prefix fails; that unit is added to `removed`, the branch is rebuilt
//!    without them all, and its tip is verified again (1).
//!
//! So two or three independent culprits are found one after another,
//! each proven in the branch without the ones before it. But verdicts
//! alone cannot tell two culprits from two pieces of an incomplete
//! refactor: in both, each merge fails without the other, and only the
//! branch without both passes; taking out every piece of a refactor
//! would throw correct work away on a guess. What tells them apart is the
//! failure's own word: the files the tip's failure names, mapped to the
//! units that own them (`named`). When taking a unit out did not make the
//! branch pass, the search goes on only if the failure named that unit;
//! else it ends: [`End::Named`] (the named units are the evidence) or,
//! if it named nothing, [`End::Unexplained`], and every merge stays. A
//! culprit that is a group whose failure names only some of its members
//! is not taken out either: those members are named (the rest of the
//! group's work is correct and stays). At most [`MAX_CULPRITS`] are
//! taken out by one search.
//!
//! Verdicts come from [`super::verdicts::Verdicts`], which runs a failure
//! again before it counts: every verdict this search sees is reproduced.
//! Pure: the dispatcher maps a [`Candidate`] to a commit, rebuilds, runs,
//! and reports back; the property test at the end drives it with a model.

use super::bisect::{Bisect, Step};

/// Culprits taken out at once before swarm stops blaming: past it the
/// verify more likely fails for a reason no merge explains.
pub(crate) const MAX_CULPRITS: usize = 8;

/// A commit the search asks the verdict of: the branch without `removed`
/// (the units by their number in the search's first sequence), up to and
/// including the `upto`-th unit of the sequence as it stands (0: the
/// commit the sequence starts from).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Candidate {
    pub removed: Vec<usize>,
    pub upto: usize,
    /// Whether its failure must reproduce before it counts (the tip, a
    /// proof, the start, a culprit's commit); a bisection's probe takes
    /// its first run's word, to steer by, and the culprit it points to is
    /// asked again surely before anything is blamed.
    pub sure: bool,
}

/// What the search needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// The (reproduced) verdicts of these candidates, asked at once (a
    /// round): [`Queue::verdict`] for each.
    Verdicts(Vec<Candidate>),
    /// The units the failure of the tip names ([`Queue::named`]).
    Names,
    /// The branch rebuilt without these units: [`Queue::rebuilt`] with
    /// the sequence's units that are still on it.
    Rebuild(Vec<usize>),
    Done(End),
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The tip passes: nothing to take out.
    Passes,
    /// These units broke it, each proven: the branch without them passes.
    Culprits(Vec<usize>),
    /// No removal is proven, or a group's culprit is only some of its
    /// members: the units the failure names are the evidence, and every
    /// merge stays.
    Named,
    /// Nothing named, and no set of at most [`MAX_CULPRITS`] removals
    /// makes it pass: every merge stays.
    Unexplained {
        /// The first unit the search found failing.
        first: Option<usize>,
    },
    /// The sequence's start fails too: nobody is blamed.
    StartFails,
}

/// A unit the tip's failure names: wholly (every member, or its only
/// merge), or only some of a group's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Named {
    pub unit: usize,
    pub whole: bool,
}

#[derive(Debug, Clone)]
enum State {
    /// The tip of the branch without `removed` is asked.
    Tip,
    /// The tip failed; waiting for what it names.
    Naming,
    /// A round of probes: each prefix asked, and its verdict once in.
    Bisecting(Bisect, Vec<(usize, Option<bool>)>),
    /// The bisection points to the unit whose prefix `k` failed: that
    /// failure is asked to reproduce before the unit is a suspect.
    Confirming(usize),
    Rebuilding,
    Done(End),
}

/// One search.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    /// The units on the branch without `removed`, in order.
    seq: Vec<usize>,
    /// Whether the sequence's start is known to pass (else it is assumed,
    /// and asked only when every unit fails).
    start_known: bool,
    removed: Vec<usize>,
    /// The probes' verdicts over the sequence as it stands (prefix,
    /// passed): what a bisection is rebuilt from when a failure it went
    /// by does not reproduce.
    seen: Vec<(usize, bool)>,
    named: Vec<Named>,
    /// Whether the failure names tasks none of the units holds (a piece
    /// with no merge on the branch): evidence all the same.
    elsewhere: bool,
    state: State,
    /// How many verifies may run at once: the probes of a round.
    parallel: usize,
    /// Rounds asked so far (a tip, a proof, a round of probes): each run
    /// is tagged with its round.
    round: u32,
}

impl Queue {
    /// A search over `units` units whose start passed (`start_known`) or
    /// is assumed to.
    /// With `parallel` verifies at once, the bisection probes that many
    /// prefixes per round.
    pub(crate) fn new(units: usize, start_known: bool, parallel: usize) -> Self {
        Self {
            seq: (0..units).collect(),
            start_known,
            removed: Vec::new(),
            seen: Vec::new(),
            named: Vec::new(),
            elsewhere: false,
            state: State::Tip,
            parallel: parallel.max(1),
            round: 1,
        }
    }

    /// The round what is asked now belongs to (from 1).
    pub(crate) fn round(&self) -> u32 {
        self.round
    }

    /// What the search needs now.
    pub(crate) fn need(&self) -> Need {
        match &self.state {
            State::Tip => Need::Verdicts(vec![self.candidate(self.seq.len(), true)]),
            State::Confirming(k) => Need::Verdicts(vec![self.candidate(*k, true)]),
            State::Naming => Need::Names,
            State::Rebuilding => Need::Rebuild(self.removed.clone()),
            State::Done(end) => Need::Done(end.clone()),
            State::Bisecting(_, round) => Need::Verdicts(
                round
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    // The start is asked only to blame nobody: surely.
                    .map(|&(k, _)| self.candidate(k, k == 0))
                    .collect(),
            ),
        }
    }

    /// The units removed so far.
    pub(crate) fn removed(&self) -> &[usize] {
        &self.removed
    }

    /// The sequence as it stands.
    pub(crate) fn seq(&self) -> &[usize] {
        &self.seq
    }

    fn candidate(&self, upto: usize, sure: bool) -> Candidate {
        Candidate {
            removed: self.removed.clone(),
            upto,
            sure,
        }
    }

    /// The reproduced verdict of `c`, one of what [`Need::Verdicts`]
    /// asked (any other is ignored).
    pub(crate) fn verdict(&mut self, c: &Candidate, passed: bool) {
        if c.removed != self.removed {
            return;
        }
        match std::mem::replace(&mut self.state, State::Rebuilding) {
            State::Tip if c.upto == self.seq.len() => self.on_tip(passed),
            State::Bisecting(mut search, mut round) => {
                if let Some(entry) = round.iter_mut().find(|(k, _)| *k == c.upto) {
                    entry.1 = Some(passed);
                }
                if round.iter().any(|(_, v)| v.is_none()) {
                    self.state = State::Bisecting(search, round);
                    return;
                }
                // The round is in: recorded lowest first, so the lowest
                // failure and the highest pass below it bound the rest.
                round.sort_unstable_by_key(|&(k, _)| k);
                for (k, v) in round {
                    let v = v.unwrap_or(false);
                    self.seen.push((k, v));
                    search.record(k, v);
                }
                self.after_probe(search);
            }
            State::Confirming(k) if c.upto == k && c.sure => {
                if passed {
                    // A flake steered it: the bisection again, from what
                    // it saw, with this prefix passing.
                    self.seen.retain(|&(at, _)| at != k);
                    self.seen.push((k, true));
                    self.bisect();
                } else {
                    self.suspect(k);
                }
            }
            other => self.state = other,
        }
    }

    fn ask_tip(&mut self) {
        self.round += 1;
        self.state = State::Tip;
    }

    fn on_tip(&mut self, passed: bool) {
        if passed {
            let part_of_group = self
                .removed
                .iter()
                .any(|u| self.named.iter().any(|n| n.unit == *u && !n.whole));
            self.state = State::Done(match (self.removed.is_empty(), part_of_group) {
                (true, _) => End::Passes,
                (false, true) => End::Named,
                (false, false) => End::Culprits(self.removed.clone()),
            });
            return;
        }
        if self.removed.is_empty() {
            self.state = State::Naming;
            return;
        }
        // Taking the last unit out did not make it pass. By verdicts alone,
        // a second culprit cannot be told from the next piece of an
        // incomplete change (each fails without the others, as two
        // culprits do): go on only with a unit the failure named.
        let last = self.removed.last().copied();
        if self.named.iter().any(|n| Some(n.unit) == last) {
            self.bisect();
            return;
        }
        self.state = State::Done(self.unproven());
    }

    /// How a search ends that proved nothing: named, if the failure named
    /// anyone.
    fn unproven(&self) -> End {
        match self.named.is_empty() && !self.elsewhere {
            true => End::Unexplained {
                first: self.removed.first().copied(),
            },
            false => End::Named,
        }
    }

    /// What the tip's failure names: units, and whether tasks none of
    /// them holds (`elsewhere`).
    pub(crate) fn named(&mut self, named: Vec<Named>, elsewhere: bool) {
        if matches!(self.state, State::Naming) {
            self.named = named;
            self.elsewhere = elsewhere;
            self.bisect();
        }
    }

    /// The bisection of the sequence as it stands, from the probes'
    /// verdicts seen on it (lowest first).
    fn bisect(&mut self) {
        let mut search = Bisect::new(self.seq.len(), self.start_known);
        let mut seen = self.seen.clone();
        seen.sort_unstable();
        for (k, passed) in seen {
            search.record(k, passed);
        }
        self.after_probe(search);
    }

    fn after_probe(&mut self, search: Bisect) {
        match search.next() {
            Step::Probe(_) => {
                let round = search
                    .round(self.parallel)
                    .into_iter()
                    .map(|k| (k, None))
                    .collect();
                self.round += 1;
                self.state = State::Bisecting(search, round);
            }
            Step::StartFails => self.state = State::Done(End::StartFails),
            Step::Culprit(k) => {
                self.round += 1;
                self.state = State::Confirming(k);
            }
        }
    }

    /// Prefix `k` failed reproducibly and the one before it passed: unit
    /// `k` is the suspect, and the branch without it is asked next.
    fn suspect(&mut self, k: usize) {
        // A culprit needs a passing prefix before it: the start is known
        // to pass from here on.
        self.start_known = true;
        let unit = self.seq[k - 1];
        if self.removed.len() >= MAX_CULPRITS {
            self.state = State::Done(self.unproven());
            return;
        }
        self.removed.push(unit);
        self.state = State::Rebuilding;
    }

    /// The branch was rebuilt without [`Self::removed`]: `seq` is the
    /// units still on it, in order (a rebuild also leaves out what holds a
    /// removed unit's changes, and what conflicts without it).
    pub(crate) fn rebuilt(&mut self, seq: Vec<usize>) {
        if matches!(self.state, State::Rebuilding) {
            self.seq = seq;
            self.seen.clear();
            self.ask_tip();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::verdicts::Verdicts;
    use super::*;
    use std::collections::BTreeSet;

    /// A model branch: `n` units; the verify fails on any set holding a
    /// culprit (or, with `refactor`, on any set holding some but not all
    /// of its pieces, or its incomplete piece); a flake fails a run at
    /// random, at most `retries` times in a row on one candidate.
    struct Model {
        n: usize,
        culprits: BTreeSet<usize>,
        /// The pieces of a refactor and its one incomplete piece.
        refactor: Option<(BTreeSet<usize>, usize)>,
        /// Whether the failure names the culprits (a compiler's errors).
        names: bool,
        retries: u32,
        flake_rate: f64,
        rng: fastrand::Rng,
        runs: u32,
        /// Verifies at once, and the rounds the search took.
        parallel: usize,
        rounds: u32,
        /// Flakes in a row, by set.
        in_a_row: std::collections::HashMap<BTreeSet<usize>, u32>,
    }

    impl Model {
        fn fails(&self, set: &BTreeSet<usize>) -> bool {
            if !set.is_disjoint(&self.culprits) {
                return true;
            }
            if let Some((pieces, bad)) = &self.refactor {
                let held = set.intersection(pieces).count();
                return set.contains(bad) || (held > 0 && held < pieces.len());
            }
            false
        }

        /// The units on the branch a candidate stands for.
        fn set(&self, queue: &Queue, c: &Candidate) -> BTreeSet<usize> {
            assert_eq!(c.removed, queue.removed(), "a candidate of another branch");
            queue.seq()[..c.upto].iter().copied().collect()
        }

        /// Drives a search to its end; returns it and the units left.
        fn search(&mut self) -> (End, BTreeSet<usize>) {
            let mut queue = Queue::new(self.n, true, self.parallel);
            let mut verdicts: Verdicts<BTreeSet<usize>> = Verdicts::new(self.retries);
            for _ in 0..10_000 {
                match queue.need() {
                    Need::Verdicts(asked) => {
                        // A round's runs, in any order: the last first.
                        for c in asked.iter().rev() {
                            let set = self.set(&queue, c);
                            let verdict = loop {
                                let known = match c.sure {
                                    true => verdicts.verdict(&set),
                                    false => verdicts.first(&set),
                                };
                                if let Some(v) = known {
                                    break v;
                                }
                                self.runs += 1;
                                // At most `retries` flakes in a row on one
                                // set, whoever asked.
                                let row = self.in_a_row.entry(set.clone()).or_default();
                                let flake = *row < self.retries && self.rng.f64() < self.flake_rate;
                                *row = if flake { *row + 1 } else { 0 };
                                verdicts.record(set.clone(), !flake && !self.fails(&set));
                            };
                            queue.verdict(c, verdict);
                        }
                        self.rounds = queue.round();
                    }
                    Need::Names => {
                        let tip: BTreeSet<usize> = queue.seq().iter().copied().collect();
                        let mut named: Vec<Named> = match self.names {
                            true => tip
                                .intersection(&self.culprits)
                                .map(|&unit| Named { unit, whole: true })
                                .collect(),
                            false => Vec::new(),
                        };
                        if let Some((_, bad)) = self.refactor.as_ref().filter(|_| self.names) {
                            let bad = *bad;
                            named.push(Named {
                                unit: bad,
                                whole: true,
                            });
                        }
                        queue.named(named, false);
                    }
                    Need::Rebuild(removed) => {
                        let seq = (0..self.n).filter(|u| !removed.contains(u)).collect();
                        queue.rebuilt(seq);
                    }
                    Need::Done(end) => {
                        // Only culprits are taken out; what the search
                        // removed on its way otherwise stays.
                        let left = (0..self.n)
                            .filter(|u| match &end {
                                End::Culprits(taken) => !taken.contains(u),
                                _ => true,
                            })
                            .collect();
                        return (end, left);
                    }
                }
            }
            panic!("the search did not end");
        }
    }

    fn model(n: usize, culprits: &[usize], seed: u64) -> Model {
        Model {
            n,
            culprits: culprits.iter().copied().collect(),
            refactor: None,
            names: false,
            retries: 1,
            flake_rate: 0.0,
            rng: fastrand::Rng::with_seed(seed),
            runs: 0,
            parallel: 1,
            rounds: 0,
            in_a_row: std::collections::HashMap::new(),
        }
    }

    #[test]
    fn one_culprit_is_found_and_proven() {
        let (end, left) = model(8, &[5], 1).search();
        assert_eq!(end, End::Culprits(vec![5]));
        assert!(!left.contains(&5));
    }

    #[test]
    fn two_and_three_independent_culprits_named_by_the_failure_are_all_found() {
        for culprits in [&[2, 6][..], &[0, 7], &[1, 3, 5], &[7, 6, 0]] {
            let mut m = model(8, culprits, 2);
            m.names = true;
            let (end, _) = m.search();
            let End::Culprits(found) = end else {
                panic!("{culprits:?}: {end:?}");
            };
            let found: BTreeSet<usize> = found.into_iter().collect();
            assert_eq!(found, m.culprits);
        }
    }

    #[test]
    fn two_culprits_the_failure_does_not_name_keep_every_merge() {
        // Indistinguishable by verdicts from two pieces of a refactor.
        let (end, left) = model(8, &[2, 6], 5).search();
        assert_eq!(end, End::Unexplained { first: Some(2) });
        assert_eq!(left.len(), 8);
    }

    #[test]
    fn a_passing_tip_asks_nothing_else() {
        let mut m = model(16, &[], 3);
        assert_eq!(m.search().0, End::Passes);
        assert_eq!(m.runs, 1);
    }

    #[test]
    fn a_refactor_with_one_incomplete_piece_names_it_and_keeps_every_merge() {
        // Units 1..=6 are pieces of one refactor, 4 is incomplete; 0 and 7
        // are unrelated. Every merge fails without the others.
        let mut m = model(8, &[], 4);
        m.refactor = Some(((1..=6).collect(), 4));
        m.names = true;
        let (end, left) = m.search();
        assert_eq!(end, End::Named);
        assert_eq!(left.len(), 8, "every merge stays");
    }

    fn ask(upto: usize, sure: bool) -> Need {
        Need::Verdicts(vec![at(upto, sure)])
    }

    fn at(upto: usize, sure: bool) -> Candidate {
        Candidate {
            removed: vec![],
            upto,
            sure,
        }
    }

    #[test]
    fn a_group_whose_failure_names_one_member_is_not_taken_out() {
        let mut q = Queue::new(3, true, 1);
        assert_eq!(q.need(), ask(3, true));
        q.verdict(&at(3, true), false);
        assert_eq!(q.need(), Need::Names);
        // Unit 1 is a group; its failure names one of its members.
        let named = Named {
            unit: 1,
            whole: false,
        };
        q.named(vec![named], false);
        assert_eq!(q.need(), ask(1, false));
        q.verdict(&at(1, false), true);
        assert_eq!(q.need(), ask(2, false));
        q.verdict(&at(2, false), false);
        // Before it is a suspect, its failure reproduces.
        assert_eq!(q.need(), ask(2, true));
        q.verdict(&at(2, true), false);
        assert_eq!(q.need(), Need::Rebuild(vec![1]));
        q.rebuilt(vec![0, 2]);
        let proof = Candidate {
            removed: vec![1],
            upto: 2,
            sure: true,
        };
        assert_eq!(q.need(), Need::Verdicts(vec![proof.clone()]));
        q.verdict(&proof, true);
        assert_eq!(q.need(), Need::Done(End::Named));
    }

    /// A probe that failed once steers the bisection; when the culprit it
    /// points to does not fail again, the bisection goes on past it.
    #[test]
    fn a_probe_whose_failure_does_not_reproduce_is_a_pass() {
        let mut q = Queue::new(8, true, 1);
        q.verdict(&at(8, true), false);
        q.named(Vec::new(), false);
        // The real culprit is unit 6 (prefix 7); prefix 4 flakes once.
        assert_eq!(q.need(), ask(4, false));
        q.verdict(&at(4, false), false);
        assert_eq!(q.need(), ask(2, false));
        q.verdict(&at(2, false), true);
        assert_eq!(q.need(), ask(3, false));
        q.verdict(&at(3, false), true);
        assert_eq!(q.need(), ask(4, true));
        q.verdict(&at(4, true), true);
        assert_eq!(q.need(), ask(6, false));
        q.verdict(&at(6, false), true);
        assert_eq!(q.need(), ask(7, false));
        q.verdict(&at(7, false), false);
        assert_eq!(q.need(), ask(7, true));
        q.verdict(&at(7, true), false);
        assert_eq!(q.need(), Need::Rebuild(vec![6]));
    }

    #[test]
    fn a_failing_start_blames_nobody() {
        let mut q = Queue::new(2, false, 1);
        q.verdict(&at(2, true), false);
        q.named(Vec::new(), false);
        // Probes 1, then the start.
        while let Need::Verdicts(asked) = q.need() {
            for c in asked {
                q.verdict(&c, false);
            }
        }
        assert_eq!(q.need(), Need::Done(End::StartFails));
    }

    #[test]
    fn three_verifies_at_once_find_the_culprit_in_fewer_rounds() {
        for culprit in [0, 20, 47, 63] {
            let mut one = model(64, &[culprit], 6);
            assert_eq!(one.search().0, End::Culprits(vec![culprit]));
            let mut three = model(64, &[culprit], 6);
            three.parallel = 3;
            assert_eq!(three.search().0, End::Culprits(vec![culprit]));
            // The tip, the rounds of probes, the culprit's failure again,
            // the proof.
            assert_eq!(one.rounds, 1 + 6 + 1 + 1, "culprit {culprit}");
            assert!(
                three.rounds <= 1 + 3 + 1 + 1,
                "culprit {culprit}: {}",
                three.rounds
            );
        }
    }

    proptest::proptest! {
        /// For random culprits and flakes (a flake never repeats more than
        /// `retries` times in a row), every merge taken out is a culprit;
        /// where the failure names its culprits (or there is at most
        /// one), the branch at the end passes and every culprit is taken
        /// out.
        #[test]
        fn every_culprit_and_only_culprits_are_taken_out_whatever_the_flakes(
            n in 1usize..40,
            picks in proptest::collection::vec(0usize..40, 0..4),
            retries in 1u32..3,
            flake_rate in 0.0f64..0.5,
            names: bool,
            parallel in 1usize..4,
            seed: u64,
        ) {
            let culprits: Vec<usize> = picks.into_iter().filter(|&c| c < n).collect();
            let mut m = model(n, &culprits, seed);
            m.parallel = parallel;
            m.retries = retries;
            m.flake_rate = flake_rate;
            m.names = names;
            let (end, left) = m.search();
            let taken: BTreeSet<usize> = (0..n).filter(|u| !left.contains(u)).collect();
            proptest::prop_assert!(taken.is_subset(&m.culprits), "{:?}", end);
            if names || m.culprits.len() <= 1 {
                proptest::prop_assert!(!m.fails(&left), "the branch fails: {:?}", end);
                proptest::prop_assert_eq!(&taken, &m.culprits, "{:?}", end);
            } else {
                // Unnamed, several culprits are kept with the rest.
                proptest::prop_assert!(taken.is_empty(), "{:?}", end);
            }
        }
    }
}
