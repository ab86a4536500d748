//! What the run-wide verify's runs say of each tree, flakes counted: a
//! failure counts only once it reproduces.
//!
//! Real test suites fail now and then for no reason of the commit's (a
//! timing, a port taken, a slow machine). A merge queue that takes one
//! failure as the commit's verdict blames innocent merges, or blames
//! nobody where a culprit is there. So a failing run is run again, up to
//! `verify_retries` times: a commit fails only when every one of its
//! `1 + verify_retries` runs failed, and passes as soon as one passed (a
//! verify that passes a broken tree is not what running it again can
//! fix: a flake is a false failure). One that failed, then passed, is
//! *flaky*: it passes, and the report counts it (`QueueStats`).
//!
//! Pure and keyed by anything (`K`: a commit for the dispatcher, a set of
//! merges for the property test): the dispatcher records each run here
//! and asks before every run whether its verdict is known already, so a
//! commit is never verified twice except to reproduce a failure, a
//! resumed run included (its journal's runs are recorded again).

use std::collections::HashMap;
use std::hash::Hash;

/// The runs of one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub passes: u32,
    pub fails: u32,
}

/// The verdicts of a run's verifies.
#[derive(Debug, Clone)]
pub(crate) struct Verdicts<K> {
    /// Runs again a failure this many times before it counts.
    retries: u32,
    tallies: HashMap<K, Tally>,
}

impl<K: Eq + Hash + Clone> Verdicts<K> {
    pub(crate) fn new(retries: u32) -> Self {
        Self {
            retries,
            tallies: HashMap::new(),
        }
    }

    /// Records one run's result.
    pub(crate) fn record(&mut self, key: K, passed: bool) {
        let tally = self.tallies.entry(key).or_default();
        match passed {
            true => tally.passes += 1,
            false => tally.fails += 1,
        }
    }

    /// `key`'s verdict: `Some(true)` once a run passed, `Some(false)` once
    /// `1 + retries` runs failed, `None` while it needs another run.
    pub(crate) fn verdict(&self, key: &K) -> Option<bool> {
        let tally = self.tallies.get(key)?;
        if tally.passes > 0 {
            Some(true)
        } else if tally.fails > self.retries {
            Some(false)
        } else {
            None
        }
    }

    /// `key`'s first word: `Some(true)` once a run passed, `Some(false)`
    /// once one failed, `None` before any ran: what a bisection's probe
    /// steers by (a culprit's failure is asked to reproduce before it
    /// counts).
    pub(crate) fn first(&self, key: &K) -> Option<bool> {
        let tally = self.tallies.get(key)?;
        match (tally.passes, tally.fails) {
            (0, 0) => None,
            (0, _) => Some(false),
            _ => Some(true),
        }
    }

    /// The failures `key` has shown so far.
    pub(crate) fn fails(&self, key: &K) -> u32 {
        self.tallies.get(key).map_or(0, |t| t.fails)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_counts_only_once_it_reproduces() {
        let mut v = Verdicts::new(1);
        assert_eq!(v.verdict(&"a"), None);
        v.record("a", false);
        assert_eq!(v.verdict(&"a"), None, "one failure is not a verdict");
        v.record("a", false);
        assert_eq!(v.verdict(&"a"), Some(false));
    }

    #[test]
    fn a_pass_after_a_failure_is_a_flaky_pass() {
        let mut v = Verdicts::new(2);
        v.record("b", false);
        v.record("b", false);
        assert_eq!(v.verdict(&"b"), None);
        v.record("b", true);
        assert_eq!(v.verdict(&"b"), Some(true));
        assert_eq!(v.fails(&"b"), 2);
    }

    #[test]
    fn no_retries_takes_the_first_failure() {
        let mut v = Verdicts::new(0);
        v.record(1, false);
        assert_eq!(v.verdict(&1), Some(false));
        v.record(2, true);
        assert_eq!(v.verdict(&2), Some(true));
    }
}
