//! Parts of an entry: a sharded task's entry expected to take longer than
//! its task's mean shard (one test file that dominates a suite) is split
//! across shards by its tests, when the task says how to list them
//! (`list_tests`, e.g. `pytest --collect-only -q {entries}`).
//!
//! Which tests a part runs is decided where it runs, by the runner's own
//! list at that commit, never by a list learned from an earlier run: a
//! test added since would otherwise run in no shard. A part is a range of
//! the entry's listed tests by position (per mille of the list, so the
//! ranges of an entry's parts cover it whatever its length): every listed
//! test falls in exactly one part. A listed test is `<entry>::<test>`:
//! pytest's node ids as listed, and `cargo nextest list`'s lines for a Rust
//! test file (`mycrate::quick adds` is `tests/quick.rs::adds`), which a
//! nextest command turns into its filters. The shard's command becomes a script
//! ([`script`]) that lists, keeps its parts' tests and runs the command
//! with them in `{entries}` and `$SWARM_ENTRIES`; all of it runs in the
//! task's own sandbox, so swarm itself never reads the list.
//!
//! A part is named in groupings (the journal, the durations history, a
//! node's job) as its entry, [`MARK`] and its ranges (`tests/a.py␟0-500`):
//! a name no entry can have, as entries never hold a control character.

use super::entries::{ENTRIES, quoted};
use super::shard_schedule::Piece;

/// What separates an entry's name from its part's ranges.
pub const MARK: char = '\u{1f}';

/// The whole of an entry's list, in the units of a part's range.
pub const WHOLE: u32 = 1000;

/// A part of an entry: the positions of its tests in the runner's list
/// that it runs, as half-open ranges in thousandths of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'e> {
    pub entry: &'e str,
    pub ranges: Vec<(u32, u32)>,
}

/// The part `name` names, if it names one.
pub fn parse(name: &str) -> Option<Part<'_>> {
    let (entry, ranges) = name.split_once(MARK)?;
    let ranges = ranges
        .split(',')
        .map(|r| {
            let (lo, hi) = r.split_once('-')?;
            let (lo, hi) = (lo.parse().ok()?, hi.parse().ok()?);
            (lo < hi && hi <= WHOLE).then_some((lo, hi))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Part { entry, ranges })
}

/// The entry `name` is of: the entry a part is of, else `name` itself.
pub fn whole(name: &str) -> &str {
    name.split_once(MARK).map_or(name, |(entry, _)| entry)
}

fn named(entry: &str, ranges: &[(u32, u32)]) -> String {
    let ranges: Vec<String> = ranges.iter().map(|(lo, hi)| format!("{lo}-{hi}")).collect();
    format!("{entry}{MARK}{}", ranges.join(","))
}

/// `entries` (their expected times `weights`) grouped into `n` shards,
/// each entry expected to take longer than the shards' mean load split
/// into parts where that shortens the longest shard by more than
/// [`SPLIT_GAIN`] percent. The other entries go first, longest first, each
/// to the least loaded shard; then the long entries whose profiles tell
/// each test's time are dealt test by test ([`deal`]); each other long
/// entry (longest first) is
/// poured over the shards as water fills a vessel: the least loaded get a
/// part each, sized to bring them to one level, so that an entry of 60%
/// of a suite beside one of 30% still ends level over two shards (equal
/// halves would not). A shard holding a part pays `listing` once (what
/// listing the tests costs: a runner's start-up); a part smaller than a
/// twentieth of the mean shard, or than a listing, is not made. With
/// `start` (a last grouping), the entries that are not long stay in the
/// shard it put them in, so that splitting one file moves no other. Each
/// group is in plan order, one entry's parts in it made one; empty groups
/// are left out.
///
/// Where the task's runner runs a shard's tests on `threads` threads
/// (more than one), the tests dealt are judged by what a shard is then
/// expected to take ([`Schedule`]), not by their sum, and moved or swapped
/// between shards while that shortens the longer of two ([`settle`]).
pub fn fill(
    entries: &[String],
    weights: &[u64],
    (n, listing, threads): (usize, u64, u32),
    start: Option<&[Vec<String>]>,
    profiles: &[Option<Profile>],
) -> Vec<Vec<String>> {
    let n = n.max(1);
    let schedule = Schedule::new(weights, profiles, threads);
    let total: u64 = weights.iter().sum();
    let mean = total / n as u64;
    let long = |i: usize| n >= 2 && weights[i] > mean;
    let mut shards = vec![Shard::default(); n];
    let mut placed = vec![false; entries.len()];
    if let Some(start) = start {
        let index: std::collections::HashMap<&str, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.as_str(), i))
            .collect();
        for (g, group) in start.iter().take(n).enumerate() {
            for name in group.iter().filter(|name| parse(name).is_none()) {
                let at = index.get(name.as_str()).copied();
                if let Some(i) = at.filter(|&i| !long(i) && !placed[i]) {
                    placed[i] = true;
                    shards[g].take(i, None, weights[i], 0);
                }
            }
        }
    }
    // Entries placed whole, each to the least loaded shard.
    let whole = |shards: &mut Vec<Shard>, items: Vec<usize>| placed_whole(shards, items, weights);
    whole(
        &mut shards,
        (0..entries.len())
            .filter(|&i| !long(i) && !placed[i])
            .collect(),
    );
    let mut order: Vec<usize> = (0..entries.len()).filter(|&i| long(i)).collect();
    order.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(a.cmp(&b)));
    // The long entries whose profiles tell each test's time are dealt
    // test by test, all of them together; the others poured.
    let tested: Vec<(usize, &Profile)> = order
        .iter()
        .filter_map(|&i| Some((i, profiles.get(i)?.as_ref().filter(|p| p.by_test())?)))
        .collect();
    if let Some(dealt) = dealt_if_it_pays(&shards, &tested, (&schedule, listing)) {
        shards = dealt;
        order.retain(|i| !tested.iter().any(|(t, _)| t == i));
    }
    let smallest = (mean / 20).max(listing).max(1);
    for i in order {
        let w = weights[i];
        let unsplit = {
            let mut load: Vec<u64> = shards.iter().map(|s| s.load).collect();
            load.sort_unstable();
            load[0] += w;
            load.into_iter().max().unwrap_or(0)
        };
        let shares = pour(&shards, w, listing, smallest);
        let poured = shards
            .iter()
            .enumerate()
            .map(|(g, s)| match shares.iter().find(|(at, _)| *at == g) {
                Some((_, share)) => s.load + share + if s.lists { 0 } else { listing },
                None => s.load,
            })
            .max()
            .unwrap_or(0);
        if shares.len() < 2 || poured * 100 >= unsplit * (100 - SPLIT_GAIN) {
            whole(&mut shards, vec![i]);
            continue;
        }
        // Each part's range: cut where the shards the pour reached end
        // most level (by the entry's profile, at its tests' places), the
        // parts in shard order, the last one ending at the whole. Its load
        // is what its range holds by the profile (a range left empty holds
        // none, its tests the next part's).
        let profile = profiles.get(i).and_then(Option::as_ref);
        let floors: Vec<u64> = shares
            .iter()
            .map(|&(g, _)| shards[g].load + if shards[g].lists { 0 } else { listing })
            .collect();
        let ends = cuts(profile, w, &floors);
        let mut lo = 0u32;
        for (k, &(g, _)) in shares.iter().enumerate() {
            let hi = ends.get(k).copied().unwrap_or(WHOLE);
            if hi > lo {
                let held = (self::share(profile, &[(lo, hi)]) * w as f64).round() as u64;
                shards[g].take(i, Some((lo, hi)), held, listing);
                lo = hi;
            }
        }
    }
    shards
        .into_iter()
        .filter(|s| !s.items.is_empty())
        .map(|mut s| {
            s.items.sort_by_key(|(i, range)| (*i, *range));
            merged(
                s.items
                    .into_iter()
                    .map(|(i, range)| match range {
                        Some(r) => named(&entries[i], &[r]),
                        None => entries[i].clone(),
                    })
                    .collect(),
            )
        })
        .collect()
}

/// How an entry's time lies over the positions of its listed tests,
/// learned from what each of its parts took: segments `(lo, hi, ms)` that
/// cover the whole list once. A suite's slow tests are seldom spread
/// evenly over a file (itertools' `specializations.rs` has its slowest in
/// one stretch), so parts of equal time are seldom of equal positions.
/// Without a profile, time is taken as even over the positions.
///
/// When the entry's number of tests is known (`tests`, from its report),
/// positions are taken as its tests are placed: test `i` of `n` at
/// `i * 1000 / n` (as [`script`] places them), each test's time on the
/// positions up to the next one's. A part's ranges then hold whole tests
/// (snapped to where tests are), its time is learned on those, and a cut
/// is made between two tests, so that a slow test is never taken as half
/// on each side of a cut it lies wholly on one side of (on itertools'
/// `specializations.rs`, 56 tests of up to 2 s in a shard of 6 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile(Vec<(u32, u32, u64)>, u32, Option<bool>);

/// The most segments a [`Profile`] keeps: a test each for a file of up
/// to this many tests (itertools' `quick.rs` has 142).
pub const MAX_SEGMENTS: usize = 256;

impl Profile {
    /// The profile `segments` make, if they cover the list once (sorted)
    /// and hold some time.
    pub fn new(mut segments: Vec<(u32, u32, u64)>) -> Option<Self> {
        segments.sort_unstable();
        let mut at = 0;
        for &(lo, hi, _) in &segments {
            if lo != at || hi <= lo {
                return None;
            }
            at = hi;
        }
        let timed = segments.iter().any(|s| s.2 > 0);
        (at == WHOLE && timed).then_some(Self(segments, 0, None))
    }

    /// The profile of an entry of `tests` tests whose parts took
    /// `parts` (`(lo, hi, ms)`, covering the list once): each part's time
    /// on the positions of the tests it held ([`Profile::snap`]); a part
    /// that held none is left out. `tests` 0: unknown, as [`Profile::new`].
    /// Learned from parts: not [`Profile::by_test`] until
    /// [`Profile::learned_by_test`] says so.
    pub fn of_parts(mut parts: Vec<(u32, u32, u64)>, tests: u32) -> Option<Self> {
        // As the shards ended; by position from here.
        parts.sort_unstable();
        let mut segments: Vec<(u32, u32, u64)> = Vec::with_capacity(parts.len());
        for (lo, hi, ms) in parts {
            let (lo, hi) = (snap(lo, tests), snap(hi, tests));
            match (hi > lo, segments.last_mut()) {
                (true, _) => segments.push((lo, hi, ms)),
                // No test there: what it took (none, or a rounding) goes
                // to the part before.
                (false, Some(last)) => last.2 += ms,
                (false, None) => {}
            }
        }
        Self::new(capped(segments)).map(|p| p.counted(tests).learned_by_test(false))
    }

    /// The profile an entry of `tests` tests is learned as from its parts
    /// `held` as a run's report told them ([`per_test`]).
    pub fn of_held(held: &[Held<'_>], tests: u32) -> Option<Self> {
        let (parts, by_test) = per_test(held, tests);
        Self::of_parts(parts, tests).map(|p| p.learned_by_test(by_test))
    }

    /// This profile, saying whether it was learned test by test (each
    /// of its tests' own time, [`per_test`]) or from parts.
    pub fn learned_by_test(self, by_test: bool) -> Self {
        Self(self.0, self.1, Some(by_test))
    }

    /// Whether it was learned test by test, if that is known (a history
    /// written before swarm kept it does not say).
    pub fn said_by_test(&self) -> Option<bool> {
        self.2
    }

    pub fn segments(&self) -> &[(u32, u32, u64)] {
        &self.0
    }

    /// How many tests the entry had when this was learned (0: unknown).
    pub fn tests(&self) -> u32 {
        self.1
    }

    /// Whether this tells each of the entry's tests' times: learned test
    /// by test ([`per_test`], or told by such a profile), with a segment a
    /// test (a place, for more tests than places) or as many segments as
    /// are kept. Segments alone do not say it: runs whose parts were cut
    /// at different places leave a boundary at every test
    /// ([`Profile::told`]) with times that were only ever learned part by
    /// part. A profile kept by a swarm that did not say how it was
    /// learned is taken by its segments.
    pub fn by_test(&self) -> bool {
        let places = self.1.min(WHOLE) as usize;
        let fine = self.1 > 0 && self.0.len() >= places.min(MAX_SEGMENTS);
        fine && self.2 != Some(false)
    }

    /// This profile, read back as kept, of an entry of `tests` tests.
    pub fn counted(self, tests: u32) -> Self {
        Self(self.0, tests, self.2)
    }

    /// `pos` moved to where the first of this entry's tests at or after
    /// it is placed ([`snap`]).
    pub fn snap(&self, pos: u32) -> u32 {
        snap(pos, self.1)
    }

    /// This profile told by a newer one (`newer`, of the last run's
    /// parts): each newer segment's time, spread over the finer segments
    /// both make as this one spreads it (evenly where this one holds no
    /// time there), then averaged with what this one holds there (scaled
    /// to the newer's total), so that each earlier run weighs half as
    /// much as the one after it. What each run's parts took is thus kept,
    /// in finer detail each time the parts are cut elsewhere, instead of
    /// only the last run's few segments; and one run's noise moves the
    /// cuts half as far: a test's time moves from run to run (on
    /// itertools' suite by a fifth to a third, its property tests drawing
    /// other inputs each run), and a profile that was the last run's alone
    /// cut the parts anew after every run. At most [`MAX_SEGMENTS`]
    /// ([`capped`]).
    pub fn told(&self, newer: &Profile) -> Profile {
        let mut cuts: Vec<u32> = self
            .0
            .iter()
            .chain(&newer.0)
            .flat_map(|&(lo, hi, _)| [lo, hi])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out: Vec<(u32, u32, f64)> = Vec::with_capacity(cuts.len());
        for pair in cuts.windows(2) {
            let (lo, hi) = (pair[0], pair[1]);
            let Some(&(nlo, nhi, nms)) = newer.0.iter().find(|s| s.0 <= lo && hi <= s.1) else {
                continue;
            };
            // A tenth spread by positions, so that a stretch the older
            // profile held no time in (no test there then, or a rounding)
            // is not held at none for ever.
            let even = f64::from(hi - lo) / f64::from(nhi - nlo);
            let fraction = match self.time_to(nhi) - self.time_to(nlo) {
                t if t > 0.0 => 0.9 * (self.time_to(hi) - self.time_to(lo)) / t + 0.1 * even,
                _ => even,
            };
            out.push((lo, hi, nms as f64 * fraction));
        }
        let scale = match self.total() {
            t if t > 0.0 => newer.total() / t,
            _ => 0.0,
        };
        let out: Vec<(u32, u32, u64)> = out
            .into_iter()
            .map(|(lo, hi, ms)| {
                let before = (self.time_to(hi) - self.time_to(lo)) * scale;
                let ms = match scale > 0.0 {
                    true => (ms + before) / 2.0,
                    false => ms,
                };
                (lo, hi, ms.round() as u64)
            })
            .collect();
        let out = capped(out);
        let tests = match newer.1 {
            0 => self.1,
            n => n,
        };
        // Test by test if the newer was, or the older was and its tests
        // are still placed where they were (as many of them): each test's
        // segment is kept, what the newer's parts took spread by the older's
        // tests' times. One kept by a swarm that did not say is not taken
        // for it: its next run learned test by test says so again.
        let same_list = newer.1 == 0 || newer.1 == self.1;
        let by_test = match (self.2, newer.2) {
            (_, Some(true)) => Some(true),
            (Some(true), _) if same_list => Some(true),
            (None, None) => None,
            _ => Some(false),
        };
        Profile::new(out)
            .map(|p| Profile(p.0, tests, by_test))
            .unwrap_or_else(|| newer.clone())
    }

    /// The time up to position `pos`, even within a segment.
    fn time_to(&self, pos: u32) -> f64 {
        self.0
            .iter()
            .map(|&(lo, hi, ms)| {
                let within = pos.clamp(lo, hi) - lo;
                ms as f64 * f64::from(within) / f64::from(hi - lo)
            })
            .sum()
    }

    fn total(&self) -> f64 {
        self.0.iter().map(|s| s.2 as f64).sum()
    }
}

/// `segments` (sorted, adjacent) made at most [`MAX_SEGMENTS`]: the two
/// neighbours that hold the least time together made one, again and
/// again, so that a slow test keeps a segment of its own (it is what a
/// cut must not be taken through) and a stretch of quick ones is taken
/// as even.
fn capped(mut segments: Vec<(u32, u32, u64)>) -> Vec<(u32, u32, u64)> {
    while segments.len() > MAX_SEGMENTS {
        let at = (0..segments.len() - 1)
            .min_by_key(|&i| {
                let (a, b) = (segments[i], segments[i + 1]);
                (a.2 + b.2, b.1 - a.0)
            })
            .unwrap_or(0);
        let next = segments.remove(at + 1);
        segments[at] = (segments[at].0, next.1, segments[at].2 + next.2);
    }
    segments
}

/// Where a shard's item sits in the runner's list: its entry's index and,
/// for a part, the ranges of the entry's tests it holds (`None`: all).
pub type Placed = (usize, Option<Vec<(u32, u32)>>);

/// One part of a split entry as a run's report told it: its ranges, what
/// its tests took together, and each one's time in the order of the
/// runner's list (empty when not known).
pub type Held<'a> = (Vec<(u32, u32)>, u64, &'a [u64]);

/// A split entry's parts (`held`) made segments for [`Profile::of_parts`],
/// and whether every part was told test by test: a segment a test where
/// a part's report told its tests' own times in the order of the
/// runner's list and they are as many as its ranges hold of the entry's
/// `tests` (placed as [`script`] places them); else each range of a part
/// is one segment, the part's time spread over its ranges by the tests
/// each holds (by their widths when that is not known) and taken as even
/// over its tests until later runs' cuts tell more. With each test's
/// time the next grouping knows where each slow test lies after one run
/// (on itertools' `specializations.rs`, 56 tests of 10 ms to 2 s, eight
/// parts of one run taken as even left shards expected level 1.4 apart).
/// Tests placed at one position (more than [`WHOLE`] of them) make one
/// segment, as a part always holds them together.
pub fn per_test(held: &[Held<'_>], tests: u32) -> (Vec<(u32, u32, u64)>, bool) {
    let n = u64::from(tests);
    let place = |i: u64| place(i, n);
    // The tests a range holds: the first placed at or after its start, up
    // to the first placed at or after its end.
    let first = |pos: u32| first_at(pos, n);
    let mut out: Vec<(u32, u32, u64)> = Vec::new();
    let mut by_test = true;
    for (ranges, ms, each) in held {
        let (ms, each) = (*ms, *each);
        let count: u64 = ranges.iter().map(|&(lo, hi)| first(hi) - first(lo)).sum();
        if n == 0 || each.is_empty() || count != each.len() as u64 {
            if n > 0 && !each.is_empty() {
                // A test listed and not reported (one ignored, or filtered
                // out by the command), or reported and not listed.
                tracing::debug!(
                    listed = count,
                    reported = each.len(),
                    "a part's report does not tell its tests one by one; learned as a whole"
                );
            }
            by_test = false;
            out.extend(spread(ranges, ms, |lo, hi| match n {
                0 => u64::from(hi - lo),
                _ => first(hi) - first(lo),
            }));
            continue;
        }
        // The times are in the list's order: so are the ranges walked.
        let mut ranges = ranges.clone();
        ranges.sort_unstable();
        let mut times = each.iter();
        for (lo, hi) in ranges {
            let mut carried: Option<(u32, u64)> = None;
            for (i, &t) in (first(lo)..first(hi)).zip(&mut times) {
                let (from, before) = carried.take().unwrap_or((place(i), 0));
                match place(i + 1) {
                    next if next > from => out.push((from, next, before + t)),
                    _ => carried = Some((from, before + t)),
                }
            }
        }
    }
    (out, by_test)
}

/// `ms` spread over `ranges` by what `weight` gives each (evenly where it
/// gives none at all), as `(lo, hi, ms)` segments summing to `ms`.
fn spread(
    ranges: &[(u32, u32)],
    ms: u64,
    weight: impl Fn(u32, u32) -> u64,
) -> Vec<(u32, u32, u64)> {
    let mut weights: Vec<u64> = ranges.iter().map(|&(lo, hi)| weight(lo, hi)).collect();
    if weights.iter().all(|&w| w == 0) {
        weights.fill(1);
    }
    let total: u64 = weights.iter().sum();
    let mut given = 0;
    let mut so_far = 0;
    ranges
        .iter()
        .zip(&weights)
        .map(|(&(lo, hi), &w)| {
            so_far += w;
            // Cumulative, so that the segments' times sum to `ms` exactly
            // (wide: a report's time may be anything up to `u64::MAX`).
            let upto = (u128::from(ms) * u128::from(so_far) / u128::from(total.max(1))) as u64;
            let t = upto - given;
            given = upto;
            (lo, hi, t)
        })
        .collect()
}

/// The long entries `tested` (each with its profile, which tells each of
/// its tests' times: [`Profile::by_test`]) dealt over `shards` test by
/// test: the slowest first (of any of them), each to the shard it leaves
/// least loaded (one not holding a part yet paying `listing` first), as a
/// grouping made by hand deals a suite's tests. A shard's tests of one
/// entry make its part, of as many ranges as it takes. Parts of one range
/// each, cut where the shards end most level ([`cuts`]), leave each shard
/// the tests that follow on in the list: on itertools' suite at N = 8 its
/// two long files' slow tests (1.6 and 1.75 s, in shards of 3.4 s) fell
/// where the shards were loaded already, and a fresh grouping was expected
/// 1.2 apart.
fn deal(shards: &mut [Shard], tested: &[(usize, &Profile)], (schedule, listing): Judged<'_>) {
    // Each test's range: from its place to the next test's (tests placed
    // at one position go together, as a part always holds them).
    let mut items: Vec<(u64, usize, (u32, u32))> = Vec::new();
    for &(i, profile) in tested {
        let places = places(profile.tests());
        for pair in places.windows(2) {
            let range = (pair[0], pair[1]);
            let ms = (share(Some(profile), &[range]) * schedule.weights[i] as f64).round() as u64;
            items.push((ms, i, range));
        }
    }
    items.sort_by(|a, b| b.0.cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    for (ms, i, range) in items {
        // Summed on one thread; on more, what the shard would take with
        // the test where its list puts it.
        let summed = schedule.threads <= 1 || schedule.spent();
        let cost = |s: &Shard| match summed {
            true => s.load + ms + if s.lists { 0 } else { listing },
            false => {
                let mut with = s.clone();
                with.take(i, Some(range), ms, listing);
                schedule.load(&with, listing)
            }
        };
        let least = (0..shards.len())
            .min_by_key(|&g| (cost(&shards[g]), g))
            .unwrap_or(0);
        shards[least].take(i, Some(range), ms, listing);
    }
    if schedule.threads > 1 {
        // The slowest tests dealt: where a quick one falls changes little,
        // and weighing every pair of a thousand would take minutes.
        let dealt = |(i, range): &(usize, Option<(u32, u32)>)| {
            range.is_some() && tested.iter().any(|(t, _)| t == i)
        };
        let mut times: Vec<u64> = shards
            .iter()
            .flat_map(|s| s.items.iter().zip(&s.held))
            .filter(|(item, _)| dealt(item))
            .map(|(_, &ms)| ms)
            .collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        let least = times
            .get(SETTLED - 1)
            .or(times.last())
            .copied()
            .unwrap_or(0)
            .max(1);
        let slow = |item: &(usize, Option<(u32, u32)>), ms: u64| ms >= least && dealt(item);
        settle(shards, slow, (schedule, listing));
    }
}

/// How many of the slowest tests dealt [`settle`] moves: each is weighed
/// against every other in every shard.
const SETTLED: usize = 64;

/// How a shard is judged while it is filled: the [`Schedule`] of its
/// task's runner, and what listing its tests costs a shard holding a part.
type Judged<'a> = (&'a Schedule<'a>, u64);

/// The most rounds of moves and swaps [`settle`] makes: each round that
/// changes anything shortens the longer of two shards, and a few rounds
/// settle a suite of hundreds of tests.
const SETTLE_ROUNDS: usize = 16;

/// The most pieces a [`Schedule`] lays out while one grouping is made
/// ([`deal`] and [`settle`]), each shard weighed laying out all its
/// tests: on itertools' suite at N = 8 (about 200 tests dealt, 50 a
/// shard) `deal` lays out about 80,000 and a round of `settle` about
/// 400,000. Past it, `deal` places the rest (its quickest tests, as it
/// deals the slowest first) by their sums and `settle` stops with what it
/// gained by then: seven files of 256 tests each dealt over 8 shards took
/// about 1.4 s in a debug build, most of it this budget.
const SCHEDULE_WORK: usize = 5_000_000;

/// `shards` with the items `movable` says may move (tests dealt one by
/// one) moved to another shard, or swapped with one of its own, while
/// that makes the longer of the two shorter by the [`Schedule`]. Dealing
/// slowest first places a slow test by the shards as they were then; the
/// quicker tests dealt after it fall before or after it in the shards'
/// lists, which decides whether it runs beside them or alone.
fn settle(
    shards: &mut [Shard],
    movable: impl Fn(&(usize, Option<(u32, u32)>), u64) -> bool,
    (schedule, listing): Judged<'_>,
) {
    // Each change shortens the longer of two shards, so changes cannot
    // cycle; the work is bounded all the same (`Schedule::spent`).
    let load = |s: &Shard| schedule.load(s, listing);
    for _ in 0..SETTLE_ROUNDS {
        let mut changed = false;
        for a in 0..shards.len() {
            let mut k = 0;
            while k < shards[a].items.len() {
                let item = shards[a].items[k];
                if !movable(&item, shards[a].held[k]) {
                    k += 1;
                    continue;
                }
                if schedule.spent() {
                    return;
                }
                let ms = shards[a].held[k];
                let before_a = load(&shards[a]);
                let from = shards[a].without(k, listing);
                let left = load(&from);
                let mut best: Option<(u64, usize, Option<usize>)> = None;
                for b in (0..shards.len()).filter(|&b| b != a) {
                    let now = before_a.max(load(&shards[b]));
                    // Moved.
                    let mut to = shards[b].clone();
                    to.take(item.0, item.1, ms, listing);
                    let moved = left.max(load(&to));
                    if moved < now && best.is_none_or(|(m, _, _)| moved < m) {
                        best = Some((moved, b, None));
                    }
                    // Swapped with each of `b`'s that may move.
                    let partners = (0..shards[b].items.len())
                        .filter(|&j| movable(&shards[b].items[j], shards[b].held[j]));
                    for j in partners {
                        let (other, other_ms) = (shards[b].items[j], shards[b].held[j]);
                        let mut from = from.clone();
                        from.take(other.0, other.1, other_ms, listing);
                        let mut to = shards[b].without(j, listing);
                        to.take(item.0, item.1, ms, listing);
                        let swapped = load(&from).max(load(&to));
                        if swapped < now && best.is_none_or(|(m, _, _)| swapped < m) {
                            best = Some((swapped, b, Some(j)));
                        }
                    }
                }
                let Some((_, b, swap)) = best else {
                    k += 1;
                    continue;
                };
                let mut from = from;
                if let Some(j) = swap {
                    let (other, other_ms) = (shards[b].items[j], shards[b].held[j]);
                    shards[b] = shards[b].without(j, listing);
                    from.take(other.0, other.1, other_ms, listing);
                }
                shards[b].take(item.0, item.1, ms, listing);
                shards[a] = from;
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// `items` (entries' places, their expected times `weights`) placed whole
/// on `shards`, longest first, each to the least loaded
/// ([`place_longest_first`]).
fn placed_whole(shards: &mut [Shard], items: Vec<usize>, weights: &[u64]) {
    let mut loads: Vec<u64> = shards.iter().map(|s| s.load).collect();
    for (i, g) in place_longest_first(&mut loads, items, weights) {
        shards[g].take(i, None, weights[i], 0);
    }
}

/// `shards` with the long entries `tested` dealt over them test by test
/// ([`deal`]), if there are any and that makes the longest shard more than
/// [`SPLIT_GAIN`] percent shorter than those entries placed whole, longest
/// first; else `None` (each is then poured, or placed whole, as an entry
/// whose tests are not known).
fn dealt_if_it_pays(
    shards: &[Shard],
    tested: &[(usize, &Profile)],
    (schedule, listing): Judged<'_>,
) -> Option<Vec<Shard>> {
    if tested.is_empty() {
        return None;
    }
    let mut dealt = shards.to_vec();
    deal(&mut dealt, tested, (schedule, listing));
    let mut whole = shards.to_vec();
    placed_whole(
        &mut whole,
        tested.iter().map(|&(i, _)| i).collect(),
        schedule.weights,
    );
    let longest = |shards: &[Shard]| {
        shards
            .iter()
            .map(|s| schedule.load(s, listing))
            .max()
            .unwrap_or(0)
    };
    (longest(&dealt) * 100 < longest(&whole) * (100 - SPLIT_GAIN)).then_some(dealt)
}

/// Where an entry of `w` ms, its time over its tests as `profile` has it,
/// is cut into parts, one for each shard whose load is in `floors` (in
/// the parts' order): the end of each part but the last, chosen so that
/// the most loaded of those shards is as little loaded as cuts at the
/// entry's tests' places allow (each shard in turn takes as many tests as
/// fit under a level, the least level found by halving). Cutting each part
/// at its share of the time instead, at the test place nearest it, left a
/// shard a slow test more than its share.
fn cuts(profile: Option<&Profile>, w: u64, floors: &[u64]) -> Vec<u32> {
    let places = places(profile.map_or(0, Profile::tests));
    let time: Vec<f64> = places
        .iter()
        .map(|&p| share(profile, &[(0, p)]) * w as f64)
        .collect();
    let last = places.len() - 1;
    // The ends of the parts when no shard goes past `level`, if none
    // need to.
    let under = |level: f64| -> Option<Vec<u32>> {
        let (mut from, mut ends) = (0usize, Vec::with_capacity(floors.len()));
        for (k, &floor) in floors.iter().enumerate() {
            let over = |to: usize| floor as f64 + (time[to] - time[from]) > level;
            if k + 1 == floors.len() {
                return (!over(last)).then_some(ends);
            }
            let mut to = from;
            while to < last && !over(to + 1) {
                to += 1;
            }
            ends.push(places[to]);
            from = to;
        }
        Some(ends)
    };
    // Halved to well under a millisecond: a cut between two tests moves
    // the level by a test's time, not by a rounding.
    let (mut low, mut high) = (0.0, (floors.iter().copied().max().unwrap_or(0) + w) as f64);
    for _ in 0..48 {
        let mid = (low + high) / 2.0;
        match under(mid) {
            Some(_) => high = mid,
            None => low = mid,
        }
    }
    under(high).unwrap_or_default()
}

/// The positions a cut can be made at in an entry of `tests` tests: each
/// test's place ([`script`] places test `i` at `i * WHOLE / tests`), and
/// the end; every position when the number is not known (0).
fn places(tests: u32) -> Vec<u32> {
    if tests == 0 {
        return (0..=WHOLE).collect();
    }
    let n = u64::from(tests);
    let mut places: Vec<u32> = (0..=n).map(|i| place(i, n)).collect();
    places.dedup();
    places
}

/// `pos` moved to where the first of `tests` tests at or after it is
/// placed (or the end): the ranges `[lo, hi)` and `[snap(lo), snap(hi))`
/// hold the same tests. `pos` itself when the number of tests is not
/// known (0).
fn snap(pos: u32, tests: u32) -> u32 {
    let n = u64::from(tests);
    if n == 0 {
        return pos;
    }
    place(first_at(pos, n), n)
}

/// Where the script places test `i` of `n` (floored, `i * WHOLE / n`);
/// [`WHOLE`] for `i` past the last.
fn place(i: u64, n: u64) -> u32 {
    match i < n {
        true => u32::try_from(i * u64::from(WHOLE) / n).unwrap_or(WHOLE),
        false => WHOLE,
    }
}

/// The first of `n` tests placed at or after `pos` (`n` when none is):
/// the least `i` with `i * WHOLE / n >= pos`, that is `i >= pos * n /
/// WHOLE`.
fn first_at(pos: u32, n: u64) -> u64 {
    (u64::from(pos) * n).div_ceil(u64::from(WHOLE)).min(n)
}

/// The fraction of an entry's time its `ranges` hold: by its `profile`, or
/// by their share of the positions.
pub fn share(profile: Option<&Profile>, ranges: &[(u32, u32)]) -> f64 {
    match profile {
        Some(p) if p.total() > 0.0 => {
            let t: f64 = ranges
                .iter()
                .map(|&(lo, hi)| p.time_to(p.snap(hi)) - p.time_to(p.snap(lo)))
                .sum();
            t / p.total()
        }
        _ => {
            let positions: u32 = ranges.iter().map(|(lo, hi)| hi - lo).sum();
            f64::from(positions) / f64::from(WHOLE)
        }
    }
}

/// How much shorter (in percent) the longest shard must be expected to
/// run for an entry to be split into parts: each part lists the tests
/// again, and a split for a few percent is within one run's noise.
pub const SPLIT_GAIN: u64 = 10;

/// A shard being filled: its entries (a part with its range), its
/// expected load, whether it lists tests (holds a part) already.
#[derive(Debug, Clone, Default)]
struct Shard {
    items: Vec<(usize, Option<(u32, u32)>)>,
    /// What each of `items` holds of the load.
    held: Vec<u64>,
    load: u64,
    lists: bool,
}

impl Shard {
    fn take(&mut self, entry: usize, range: Option<(u32, u32)>, ms: u64, listing: u64) {
        if range.is_some() && !self.lists {
            self.lists = true;
            self.load += listing;
        }
        self.items.push((entry, range));
        self.held.push(ms);
        self.load += ms;
    }

    /// This shard without its `k`th item (and its listing, if that was
    /// its last part).
    fn without(&self, k: usize, listing: u64) -> Shard {
        let mut out = self.clone();
        if k < out.items.len() {
            out.items.remove(k);
            out.load = out.load.saturating_sub(out.held.remove(k));
            if out.lists && out.items.iter().all(|(_, range)| range.is_none()) {
                out.lists = false;
                out.load = out.load.saturating_sub(listing);
            }
        }
        out
    }
}

/// What a shard of a task's entries is expected to take beside its
/// start-up when the task's runner runs its tests on `threads` threads
/// ([`super::shard_schedule`]): each test of an entry whose profile tells
/// them ([`Profile::by_test`]) as one piece, any other entry or part as a
/// run of short tests, in the runner's list order (the plan's order of
/// entries, each entry's tests by their places).
pub struct Schedule<'a> {
    weights: &'a [u64],
    profiles: &'a [Option<Profile>],
    /// Each entry's tests as `(lo, hi, ms)` (from a test's place to the
    /// next one's), where its profile tells each one's time.
    tests: Vec<Option<Vec<(u32, u32, u64)>>>,
    threads: u32,
    /// How many pieces it has laid out ([`SCHEDULE_WORK`]).
    work: std::cell::Cell<usize>,
}

impl<'a> Schedule<'a> {
    /// The schedule of entries whose expected times are `weights` and
    /// profiles `profiles` (by place; missing ones none), run on
    /// `threads` threads.
    pub fn new(weights: &'a [u64], profiles: &'a [Option<Profile>], threads: u32) -> Self {
        // One thread sums, and needs no test's own time.
        let tests = match threads {
            0 | 1 => Vec::new(),
            _ => (0..weights.len())
                .map(|i| {
                    let p = profiles.get(i)?.as_ref().filter(|p| p.by_test())?;
                    let places = places(p.tests());
                    let each = places.windows(2).map(|pair| {
                        let ms = share(Some(p), &[(pair[0], pair[1])]) * weights[i] as f64;
                        (pair[0], pair[1], ms.round() as u64)
                    });
                    Some(each.collect())
                })
                .collect(),
        };
        Self {
            weights,
            profiles,
            tests,
            threads,
            work: std::cell::Cell::new(0),
        }
    }

    /// Whether it has laid out [`SCHEDULE_WORK`] pieces: what is judged
    /// after that is judged by sums.
    fn spent(&self) -> bool {
        self.work.get() > SCHEDULE_WORK
    }

    /// The threads a shard's tests are taken to run on.
    pub fn threads(&self) -> u32 {
        self.threads
    }

    /// How long `items` (entries by place, each with the ranges of its
    /// tests it runs, `None` for all of them) take in the order given,
    /// which is the runner's list's.
    pub fn span<'r>(
        &self,
        items: impl IntoIterator<Item = (usize, Option<&'r [(u32, u32)]>)>,
    ) -> u64 {
        let mut pieces: Vec<Piece> = Vec::new();
        for (i, ranges) in items {
            let profile = self.profiles.get(i).and_then(Option::as_ref);
            match self.tests.get(i).and_then(Option::as_ref) {
                // The tests each range holds, found by their places (in
                // order, as the ranges are).
                Some(tests) => match ranges {
                    None => pieces.extend(tests.iter().map(|t| Piece::Test(t.2))),
                    Some(ranges) => {
                        let snap = |pos| profile.map_or(pos, |p| p.snap(pos));
                        let mut ranges = ranges.to_vec();
                        ranges.sort_unstable();
                        for (a, b) in ranges {
                            let (a, b) = (snap(a), snap(b));
                            let lo = tests.partition_point(|t| t.0 < a);
                            let hi = tests.partition_point(|t| t.1 <= b).max(lo);
                            pieces.extend(tests[lo..hi].iter().map(|t| Piece::Test(t.2)));
                        }
                    }
                },
                None => {
                    let w = self.weights.get(i).copied().unwrap_or(0);
                    let ms = match ranges {
                        None => w,
                        Some(ranges) => (w as f64 * share(profile, ranges)).round() as u64,
                    };
                    pieces.push(Piece::Run(ms));
                }
            }
        }
        self.work.set(self.work.get().saturating_add(pieces.len()));
        super::shard_schedule::span(self.threads, pieces)
    }

    /// What a shard holding `shard`'s items takes beside its start-up:
    /// their sum on one thread (as they were taken), else their
    /// [`Schedule::span`] in list order; and `listing` if it holds a part.
    fn load(&self, shard: &Shard, listing: u64) -> u64 {
        if self.threads <= 1 {
            return shard.load;
        }
        let mut items = shard.items.clone();
        items.sort_unstable();
        let span = self.span(
            items
                .iter()
                .map(|(i, range)| (*i, range.as_ref().map(std::slice::from_ref))),
        );
        span.saturating_add(if shard.lists { listing } else { 0 })
    }
}

/// `items` (entries' places, their expected times `weights`) each given
/// one of the groups whose expected times so far are `loads` (kept up to
/// date): longest first (equals in plan order), each to the least loaded
/// group (the first of equals). Each item with its group, in that order.
pub fn place_longest_first(
    loads: &mut [u64],
    mut items: Vec<usize>,
    weights: &[u64],
) -> Vec<(usize, usize)> {
    items.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(a.cmp(&b)));
    items
        .into_iter()
        .map(|i| {
            let least = (0..loads.len()).min_by_key(|&g| (loads[g], g)).unwrap_or(0);
            loads[least] += weights[i];
            (i, least)
        })
        .collect()
}

/// How `w` is poured over `shards` (a shard not yet listing paying
/// `listing` first): the shards it reaches and each one's share, in shard
/// order, summing to `w`; none below `smallest` (the least loaded shards
/// take it all then).
fn pour(shards: &[Shard], w: u64, listing: u64, smallest: u64) -> Vec<(usize, u64)> {
    let floor = |s: &Shard| s.load + if s.lists { 0 } else { listing };
    let mut by_floor: Vec<usize> = (0..shards.len()).collect();
    by_floor.sort_by_key(|&g| (floor(&shards[g]), g));
    let mut reach = by_floor.len();
    loop {
        let within = &by_floor[..reach];
        // The level: the most shards whose floors it covers.
        let (mut level, mut j) = (0u64, 0usize);
        let mut under = 0u64;
        for (k, &g) in within.iter().enumerate() {
            under += floor(&shards[g]);
            let l = (w + under) / (k as u64 + 1);
            if k > 0 && l < floor(&shards[g]) {
                break;
            }
            (level, j) = (l, k + 1);
        }
        let mut shares: Vec<(usize, u64)> = within[..j]
            .iter()
            .map(|&g| (g, level.saturating_sub(floor(&shards[g]))))
            .collect();
        let small = shares.iter().filter(|(_, s)| *s < smallest).count();
        if small == 0 || j <= 1 {
            // What rounding left over goes to the least loaded.
            let given: u64 = shares.iter().map(|(_, s)| s).sum();
            if let Some(first) = shares.first_mut() {
                first.1 += w.saturating_sub(given);
            }
            shares.retain(|(_, s)| *s > 0);
            shares.sort_unstable();
            return shares;
        }
        reach = j - 1;
    }
}

/// `ranges` (sorted) with each one that ends where the next starts made
/// one: `0-7,7-14` is `0-14`.
fn joined(ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if last.1 == lo => last.1 = hi,
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// `group` with the parts of one entry that landed in it made one part
/// (their ranges together), in the place of the first.
pub fn merged(group: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(group.len());
    for name in group {
        let Some(part) = parse(&name) else {
            out.push(name);
            continue;
        };
        let earlier = out
            .iter_mut()
            .find(|n| parse(n).is_some_and(|p| p.entry == part.entry));
        match earlier {
            Some(earlier) => {
                let mut ranges = parse(earlier).map(|p| p.ranges).unwrap_or_default();
                ranges.extend(part.ranges);
                ranges.sort_unstable();
                *earlier = named(part.entry, &joined(ranges));
            }
            None => out.push(name),
        }
    }
    out
}

/// Whether `groups` (a sharded task's shards' entries, as planned) hold
/// each of an entry's parts' tests exactly once: every position of its
/// list in one range of one part.
pub fn complete(groups: &[Vec<String>]) -> Result<(), String> {
    // An entry grouped whole twice, or whole beside parts, runs twice.
    let mut whole_once = std::collections::HashSet::new();
    for name in groups.iter().flatten().filter(|n| parse(n).is_none()) {
        if !whole_once.insert(name.as_str()) {
            return Err(name.clone());
        }
    }
    let mut seen: Vec<(&str, Vec<(u32, u32)>)> = Vec::new();
    for part in groups.iter().flatten().filter_map(|n| parse(n)) {
        match seen.iter_mut().find(|(e, _)| *e == part.entry) {
            Some((_, ranges)) => ranges.extend(part.ranges),
            None => seen.push((part.entry, part.ranges)),
        }
    }
    for (entry, mut ranges) in seen {
        if whole_once.contains(entry) {
            return Err(entry.to_string());
        }
        ranges.sort_unstable();
        let mut at = 0;
        for (lo, hi) in ranges {
            if lo != at {
                return Err(entry.to_string());
            }
            at = hi;
        }
        if at != WHOLE {
            return Err(entry.to_string());
        }
    }
    Ok(())
}

/// One word of shell for `text`, single-quoted.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Shell that sets `$__swarm_t` to the test of `entry` the list's line
/// `$__swarm_l` names, as `<entry>::<test>`, or to nothing: a line starting
/// `<entry>::` (pytest's node ids) as it is; for a Rust test file, also a
/// line of `cargo nextest list --message-format oneline`
/// (`mycrate::quick adds` for `tests/quick.rs`: its binary id, a space
/// and the test, whatever follows it): the line starts with the file's
/// binary id when its package is known ([`super::cargo::binary_id`]: in a
/// workspace `a::quick` and `b::quick` are two files'), else it names its
/// test binary ([`super::cargo::rust_test_binary`]) after any package.
fn listed_test(entry: &str, packages: &super::cargo::Packages) -> String {
    let prefix = sh_quote(&format!("{entry}::"));
    let pattern = match super::cargo::binary_id(entry, packages) {
        Some(id) => Some(format!("{}*", sh_quote(&format!("{id} ")))),
        None => super::cargo::rust_test_binary(entry)
            .map(|binary| format!("*{}*", sh_quote(&format!("::{binary} ")))),
    };
    let nextest = pattern
        .map(|pattern| {
            format!(
                " {pattern}) __swarm_t=${{__swarm_l#* }}; __swarm_t={prefix}\"${{__swarm_t%% *}}\";;"
            )
        })
        .unwrap_or_default();
    format!("case $__swarm_l in {prefix}*) __swarm_t=$__swarm_l;;{nextest} *) __swarm_t=;; esac;")
}

/// The script a shard holding parts (`entries`, whole entries and parts)
/// runs in its sandbox: `list` (its `{entries}` the parts' entries) into a
/// file of its tmp, failing the shard with the list's output if it fails;
/// then, for each part, the listed tests of its entry ([`listed_test`])
/// whose positions fall in its ranges, or the entry whole
/// for its first part when none is listed (so that the runner says why);
/// then `template` with the whole entries and those tests in `{entries}`
/// (as `"$@"`) and in a new `$SWARM_ENTRIES`. A shard left with nothing to
/// run says so and ends passing: its part of the list is empty.
pub fn script(
    template: &str,
    list: &str,
    entries: &[String],
    packages: &super::cargo::Packages,
) -> String {
    let (mut whole, mut parts) = (Vec::new(), Vec::new());
    for name in entries {
        match parse(name) {
            Some(part) => parts.push(part),
            None => whole.push(name.clone()),
        }
    }
    let listed: Vec<String> = parts.iter().map(|p| p.entry.to_string()).collect();
    let list = list.replace(&format!("{{{}}}", ENTRIES), &quoted(&listed));
    let tmp = "${TMPDIR:-/tmp}";
    let mut s = format!(
        "# swarm: this shard runs parts of {}: their tests as `list_tests` lists them\n\
         __swarm_listed=\"{tmp}/swarm-listed.txt\"\n\
         (\n{list}\n) > \"$__swarm_listed\"\n\
         __swarm_rc=$?\n\
         if [ \"$__swarm_rc\" -ne 0 ]; then cat \"$__swarm_listed\" >&2; \
         echo \"swarm: list_tests failed (exit code $__swarm_rc), so which of their tests this shard runs is not known\" >&2; \
         exit \"$__swarm_rc\"; fi\n\
         set -- {}\n",
        quoted(&listed),
        quoted(&whole),
    );
    for part in &parts {
        let test = listed_test(part.entry, packages);
        s.push_str(&format!(
            "__swarm_n=0\n\
             while IFS= read -r __swarm_l; do {test} [ -n \"$__swarm_t\" ] && __swarm_n=$((__swarm_n + 1)); done < \"$__swarm_listed\"\n"
        ));
        if part.ranges.iter().any(|(lo, _)| *lo == 0) {
            s.push_str(&format!(
                "if [ \"$__swarm_n\" -eq 0 ]; then set -- \"$@\" {}; fi\n",
                sh_quote(part.entry)
            ));
        }
        // The part's ranges in order, one at a time: a test's position
        // only grows down the list, so each line is checked against the
        // range it may be in, not against every one (a part dealt test by
        // test holds a range for each stretch of its tests: over a hundred
        // for a file of a thousand quick ones, each checked on every line
        // took 0.15 s a thousand lines).
        let mut ranges = part.ranges.clone();
        ranges.sort_unstable();
        let (first_lo, first_hi) = ranges.first().copied().unwrap_or((WHOLE, WHOLE + 1));
        let next: String = ranges
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, (lo, hi))| format!("{k}) __swarm_lo={lo}; __swarm_hi={hi};; "))
            .collect();
        let past = (WHOLE, WHOLE + 1);
        s.push_str(&format!(
            "__swarm_i=0; __swarm_r=0; __swarm_lo={first_lo}; __swarm_hi={first_hi}\n\
             while IFS= read -r __swarm_l; do {test} if [ -n \"$__swarm_t\" ]; then \
             __swarm_p=$((__swarm_i * {WHOLE} / __swarm_n)); \
             while [ \"$__swarm_p\" -ge \"$__swarm_hi\" ]; do __swarm_r=$((__swarm_r + 1)); \
             case $__swarm_r in {next}*) __swarm_lo={}; __swarm_hi={};; esac; done; \
             if [ \"$__swarm_p\" -ge \"$__swarm_lo\" ]; then set -- \"$@\" \"$__swarm_t\"; fi; \
             __swarm_i=$((__swarm_i + 1)); fi; done < \"$__swarm_listed\"\n",
            past.0, past.1
        ));
    }
    s.push_str(&format!(
        "SWARM_ENTRIES=\"{tmp}/swarm-entries-listed.txt\"\n\
         export SWARM_ENTRIES\n\
         if [ \"$#\" -eq 0 ]; then : > \"$SWARM_ENTRIES\"; \
         echo \"swarm: list_tests listed none of this shard's part of its entries: nothing to run\" >&2; exit 0; fi\n\
         printf '%s\\n' \"$@\" > \"$SWARM_ENTRIES\"\n"
    ));
    s.push_str(&template.replace(&format!("{{{}}}", ENTRIES), "\"$@\""));
    s
}

#[cfg(test)]
#[path = "shard_parts_tests.rs"]
mod tests;
