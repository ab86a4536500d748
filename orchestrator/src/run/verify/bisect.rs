//! The search for the merge that broke the run-wide verify, as merge
//! queues do it: a binary search over the prefixes of a sequence of
//! merges, for the first one that fails.
//!
//! Prefix `k` is the integration commit after the `k`-th merge of the
//! sequence; prefix 0 is the commit before them (the last one known to
//! pass, or the run's base, which is assumed to pass until the search
//! reaches it: it is checked only when every merge fails). The last prefix
//! is known to fail: that is why the search runs. With several verifies
//! at once ([`Bisect::round`]) it is a k-way search: each round probes
//! points that split what is in doubt evenly. Pure: the dispatcher runs
//! the probes (each a verify of one commit) and records their verdicts.

/// Where a search stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bisect {
    /// The highest prefix known (or assumed) to pass.
    good: usize,
    /// Whether prefix `good` was checked (only prefix 0 can be assumed).
    good_known: bool,
    /// The lowest prefix known to fail.
    bad: usize,
}

/// What the search needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The verdict of this prefix.
    Probe(usize),
    /// Merge `k` (1-based) is the first whose prefix fails: the culprit.
    Culprit(usize),
    /// Prefix 0 fails too: no merge is to blame.
    StartFails,
}

impl Bisect {
    /// A search over `merges` merges whose last prefix fails; prefix 0 was
    /// checked to pass when `start_known`.
    pub(crate) fn new(merges: usize, start_known: bool) -> Self {
        Self {
            good: 0,
            good_known: start_known,
            bad: merges,
        }
    }

    pub(crate) fn next(&self) -> Step {
        if self.bad == self.good {
            // Only prefix 0 can be both: it was probed, and failed.
            return Step::StartFails;
        }
        if self.bad > self.good + 1 {
            return Step::Probe(self.good + (self.bad - self.good) / 2);
        }
        match self.good_known {
            true => Step::Culprit(self.bad),
            false => Step::Probe(self.good),
        }
    }

    /// The prefixes to probe at once with `p` verifies: `p` points that
    /// split the prefixes still in doubt into `p + 1` even parts (the next
    /// probe alone for `p = 1`, or when one prefix is left to ask), so a
    /// search of `n` merges takes `ceil(log_{p+1} n)` rounds. Record a
    /// round's verdicts in ascending order.
    pub(crate) fn round(&self, p: usize) -> Vec<usize> {
        match self.next() {
            Step::Probe(k) if p > 1 && self.bad > self.good + 1 => {
                let span = self.bad - self.good;
                let mut ks: Vec<usize> = (1..=p)
                    .map(|i| self.good + span * i / (p + 1))
                    .filter(|&k| k > self.good && k < self.bad)
                    .collect();
                ks.dedup();
                if ks.is_empty() { vec![k] } else { ks }
            }
            Step::Probe(k) => vec![k],
            Step::Culprit(_) | Step::StartFails => Vec::new(),
        }
    }

    /// Prefix `k`'s verdict.
    pub(crate) fn record(&mut self, k: usize, passed: bool) {
        if passed {
            // A pass below a known pass says nothing new (a flaky verify
            // must not move the search backwards).
            if k >= self.good && k < self.bad {
                self.good = k;
                self.good_known = true;
            }
        } else if k < self.bad && (k > self.good || !self.good_known) {
            self.bad = k;
        }
    }
}

/// The merge (1-based) whose prefix is the first to fail among `merges`
/// merges whose last prefix fails, asking `passes` for each probe; `None`
/// when prefix 0 fails too. Prefix 0 is asked only if every merge fails
/// and `start_known` is false.
/// (The dispatcher drives a [`Bisect`] itself, one verify at a time.)
#[cfg(test)]
pub(crate) fn first_failing(
    merges: usize,
    start_known: bool,
    mut passes: impl FnMut(usize) -> bool,
) -> Option<usize> {
    let mut search = Bisect::new(merges, start_known);
    loop {
        match search.next() {
            Step::Probe(k) => search.record(k, passes(k)),
            Step::Culprit(k) => return Some(k),
            Step::StartFails => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The culprit and the prefixes asked, for a sequence whose prefixes
    /// from `bad_from` on fail (0: the start fails too).
    fn search(merges: usize, bad_from: usize, start_known: bool) -> (Option<usize>, Vec<usize>) {
        let mut asked = Vec::new();
        let found = first_failing(merges, start_known, |k| {
            asked.push(k);
            k < bad_from
        });
        (found, asked)
    }

    #[test]
    fn finds_every_culprit_among_64_in_six_probes() {
        for culprit in 1..=64 {
            let (found, asked) = search(64, culprit, true);
            assert_eq!(found, Some(culprit));
            assert_eq!(asked.len(), 6, "culprit {culprit}: asked {asked:?}");
            assert!(asked.iter().all(|&k| k > 0 && k < 64), "{asked:?}");
        }
    }

    #[test]
    fn probes_are_logarithmic_for_any_length() {
        for merges in 1..=200usize {
            let bound = usize::BITS - (merges - 1).leading_zeros();
            for culprit in [1, merges / 2 + 1, merges] {
                let (found, asked) = search(merges, culprit, true);
                assert_eq!(found, Some(culprit), "{merges} merges");
                assert!(asked.len() <= bound as usize, "{merges}: {asked:?}");
            }
        }
    }

    #[test]
    fn the_first_of_eight_asks_three_probes() {
        assert_eq!(search(8, 1, true), (Some(1), vec![4, 2, 1]));
        assert_eq!(search(8, 6, true), (Some(6), vec![4, 6, 5]));
        assert_eq!(search(8, 8, true), (Some(8), vec![4, 6, 7]));
    }

    #[test]
    fn an_unchecked_start_is_asked_only_when_every_merge_fails() {
        // A culprit above the first merge: the start is never asked.
        assert_eq!(search(8, 3, false), (Some(3), vec![4, 2, 3]));
        // The first merge fails: the start is asked before it is blamed.
        assert_eq!(search(8, 1, false), (Some(1), vec![4, 2, 1, 0]));
        // The start fails too: nobody is blamed.
        assert_eq!(search(8, 0, false), (None, vec![4, 2, 1, 0]));
        // One merge, start unchecked.
        assert_eq!(search(1, 1, false), (Some(1), vec![0]));
        assert_eq!(search(1, 0, false), (None, vec![0]));
    }

    #[test]
    fn a_single_known_good_merge_needs_no_probe() {
        assert_eq!(search(1, 1, true), (Some(1), vec![]));
    }

    /// Every culprit among 64, with 3 verifies at once: 3 rounds
    /// (`ceil(log4 64)`), the culprit found as one at a time finds it.
    #[test]
    fn three_at_once_find_any_culprit_among_64_in_three_rounds() {
        for merges in [2usize, 7, 64, 100] {
            let bound = {
                let mut rounds = 0;
                let mut left = merges;
                while left > 1 {
                    left = left.div_ceil(4);
                    rounds += 1;
                }
                rounds
            };
            for culprit in 1..=merges {
                let mut search = Bisect::new(merges, true);
                let mut rounds = 0;
                loop {
                    let probes = search.round(3);
                    if probes.is_empty() {
                        break;
                    }
                    assert!(probes.len() <= 3, "{probes:?}");
                    rounds += 1;
                    for k in probes {
                        search.record(k, k < culprit);
                    }
                }
                assert_eq!(search.next(), Step::Culprit(culprit), "{merges}");
                assert!(
                    rounds <= bound,
                    "{merges}, culprit {culprit}: {rounds} rounds"
                );
            }
        }
        assert_eq!(Bisect::new(64, true).round(1), vec![32]);
        assert_eq!(Bisect::new(64, true).round(3), vec![16, 32, 48]);
    }

    #[test]
    fn contradicting_verdicts_never_leave_the_bounds() {
        // A flaky verify: every probe passes, though the last prefix was
        // seen failing. The search still ends, on the last merge.
        let found = first_failing(16, true, |_| true);
        assert_eq!(found, Some(16));
        let mut b = Bisect::new(8, true);
        b.record(4, false);
        b.record(6, true); // above a known failure: ignored
        b.record(2, true);
        b.record(1, false); // below a known pass: ignored
        assert_eq!(b.next(), Step::Probe(3));
    }
}
