//! What a shard's tests take when its runner runs them on several threads
//! at once (cargo nextest: one a CPU by default).
//!
//! Such a runner starts its tests in its list's order, each on the first
//! thread to come free, so a shard ends when its last thread does. A sum
//! of the tests' times, scaled by how well the task's tests shared their
//! threads, cannot tell that: a slow test late in a shard's list runs on
//! while its other threads stand idle, and the same test first in the list
//! runs beside the rest. On itertools' suite at N = 8 under two threads a
//! shard (BENCHMARKS 30), the scaled sum missed what a shard's tests took
//! by 133-168 ms on average and by up to 567 ms; this list schedule, made
//! from the same tests' times, by 5 ms on average and 21 ms at most.
//!
//! An entry's time is learned as its tests ran (their summed times scaled
//! by the task's, `durations::Accounted::entry_times`): about a thread's
//! share of them. A piece of `ms` is thus taken to keep one thread busy
//! for `ms` times the thread count, so that a shard of short tests only is
//! expected to take what their learned times sum to, as before, and only a
//! test long beside its shard changes what is expected.
//!
//! A shard's list is taken in the plan's order of its entries (a glob's
//! are sorted by path), each entry's tests by their places. nextest lists
//! test binaries by binary id (`<package>::<stem>`), which is that order
//! unless a workspace's directories sort otherwise than its packages'
//! names or a file's stem sorts otherwise than its path (`a-b.rs` before
//! `a.rs`): the schedule then misplaces whole files, never a file's tests.

/// A stretch of a shard's work, in its runner's list order, by its
/// expected time as entries' times are learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// One test, which runs on one thread from start to end.
    Test(u64),
    /// Tests whose own times are not known (an entry learned as a whole),
    /// taken as short: they fill the threads as they come free, the least
    /// busy first.
    Run(u64),
}

/// The most threads a task is taken to run its tests on: a report's
/// timestamps are the task's own, and say nothing more of any other task.
pub const MAX_THREADS: u32 = 64;

/// How long `pieces` (in list order) take run on `threads` threads: each
/// test on the first thread to come free, each run spread over the least
/// busy ones. Their sum for one thread.
pub fn span(threads: u32, pieces: impl IntoIterator<Item = Piece>) -> u64 {
    let threads = threads.clamp(1, MAX_THREADS);
    if threads == 1 {
        return pieces
            .into_iter()
            .map(|p| match p {
                Piece::Test(ms) | Piece::Run(ms) => ms,
            })
            .fold(0u64, u64::saturating_add);
    }
    let t = u64::from(threads);
    // When each thread comes free, least first.
    let mut free = vec![0u64; threads as usize];
    for piece in pieces {
        match piece {
            Piece::Test(ms) => {
                free[0] = free[0].saturating_add(ms.saturating_mul(t));
                free.sort_unstable();
            }
            Piece::Run(ms) => fill(&mut free, ms.saturating_mul(t)),
        }
    }
    free.last().copied().unwrap_or(0)
}

/// `amount` poured over the threads that come free at `free` (sorted, kept
/// so): the least busy raised to one level, as many as it reaches.
fn fill(free: &mut [u64], amount: u64) {
    if amount == 0 {
        return;
    }
    // Wide: a report's times may be anything, and a sum of them saturated
    // would lower the level below a thread already busy past it.
    let mut below = 0u128;
    for k in 1..=free.len() {
        below += u128::from(free[k - 1]);
        let total = below + u128::from(amount);
        let level = total / k as u128;
        if k == free.len() || level <= u128::from(free[k]) {
            // What the division left goes a millisecond each to the first,
            // so that the pour holds `amount` exactly.
            let left = (total % k as u128) as usize;
            for (i, f) in free[..k].iter_mut().enumerate() {
                let at = level + u128::from(i < left);
                *f = u64::try_from(at).unwrap_or(u64::MAX);
            }
            free.sort_unstable();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Piece, span};

    #[test]
    fn on_one_thread_a_shard_takes_its_pieces_sum() {
        let pieces = [Piece::Test(300), Piece::Run(200), Piece::Test(1000)];
        assert_eq!(span(1, pieces), 1500);
        assert_eq!(span(0, pieces), 1500);
    }

    #[test]
    fn runs_of_short_tests_take_their_learned_sum_on_any_number_of_threads() {
        // Learned times are a thread's share of the tests: short tests
        // alone are expected as the sum, however many threads share them.
        for threads in [2, 3, 8] {
            let pieces = [Piece::Run(400), Piece::Run(250), Piece::Run(350)];
            assert_eq!(span(threads, pieces), 1000, "{threads} threads");
        }
    }

    #[test]
    fn a_slow_test_costs_more_last_in_its_list_than_first() {
        // Two threads: the slow test (a thread's 2 s) first runs beside
        // the run, which fills the other thread and then both; last, it
        // starts once the run is done and runs alone.
        let first = span(2, [Piece::Test(1000), Piece::Run(1000)]);
        let last = span(2, [Piece::Run(1000), Piece::Test(1000)]);
        assert_eq!(first, 2000);
        assert_eq!(last, 3000);
        // A sum says 2000 either way.
        assert_eq!(span(1, [Piece::Run(1000), Piece::Test(1000)]), 2000);
    }

    #[test]
    fn tests_take_the_first_thread_to_come_free() {
        // Two threads: 3 s, 1 s, 1 s, 1 s as a thread's times (each piece
        // half that, as learned): the three short ones run one after
        // another beside the long one.
        let pieces = [1500, 500, 500, 500].map(Piece::Test);
        assert_eq!(span(2, pieces), 3000);
        let pieces = [500, 500, 500, 1500].map(Piece::Test);
        // 1+1 | 1 then the long one from 1 s on the first to come free.
        assert_eq!(span(2, pieces), 4000);
    }

    #[test]
    fn a_report_claiming_absurd_threads_or_times_does_not_overflow() {
        // Taken as 64 threads, the run's time saturated and spread.
        assert_eq!(span(u32::MAX, [Piece::Run(u64::MAX)]), u64::MAX / 64 + 1);
        assert_eq!(span(2, [Piece::Test(u64::MAX), Piece::Run(5)]), u64::MAX);
        // More work never makes a shard shorter, saturated or not.
        let huge = Piece::Test(u64::MAX / 2);
        let before = span(2, [huge, huge]);
        assert!(span(2, [huge, huge, Piece::Run(1)]) >= before);
    }
}
