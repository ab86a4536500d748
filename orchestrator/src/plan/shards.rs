//! Shards: a one-key matrix's values ("entries", such as test files) run
//! in N tasks instead of one task each (`shards = N | "auto"`), grouped so
//! that the tasks' expected times are balanced.
//!
//! A plan holds such a task unsplit ([`Sharding::Unsplit`], one task under
//! its id as written, its command holding `{entries}`). When a run starts,
//! the grouping is decided from the durations learned per entry
//! ([`balance`]: longest-processing-time first, unknown entries counted as
//! the typical known one) and the task is split ([`split`]) into
//! `<id>-1` ... `<id>-N` ([`Sharding::Shard`]), its dependents depending
//! on all of them. The grouping is journaled (`task_sharded`) and a
//! resumed run splits by it again, whatever was learned since.
//!
//! A shard's command gets its entries in `{entries}` (shell-quoted) and
//! in the file `$SWARM_ENTRIES` names, one a line, which scripts read by
//! lines (`xargs`, `while read`, `splitlines()`). An entry that holds a
//! line break (or any other control character but a tab) would become
//! more than one there, so it is left out of the task with a warning
//! ([`Sharding::Unsplit::left_out`], said by `plan::semantic`): a file
//! named so in a `glob` is never run as two other entries.

use std::collections::HashSet;

use toml::Spanned;

pub use super::entries::{ENTRIES, quoted};
use super::error::{PlanError, PlanErrorKind, Source};
use super::matrix::Combo;
pub use super::schema::Keep;
use super::schema::TaskFields;
use super::shard_parts;
use super::{Payload, Plan, Task};

/// How many tasks a sharded task becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Fixed(u32),
    /// As many as the run runs at once.
    Auto,
}

/// A task of many entries, before or after its split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sharding {
    /// As the plan holds it: its entries (the matrix key `key`'s values,
    /// in order) and how many tasks to make of them.
    Unsplit {
        key: String,
        entries: Vec<String>,
        count: Count,
        /// Whether entries stay in the shards the last run put them in.
        keep: Keep,
        /// The key's values that cannot be one line of `$SWARM_ENTRIES`
        /// ([`unlistable`]), left out of `entries`.
        left_out: Vec<String>,
        /// How to list an entry's tests (`list_tests`), so that one longer
        /// than the mean shard is split across shards by them
        /// ([`super::shard_parts`]).
        list: Option<String>,
        /// Whether a shard runs only the entries the run's changes could
        /// affect (`affected = true`, [`super::selection`]).
        affected: bool,
        /// What the plan says other paths affect (`affects`), its entry
        /// globs resolved to entries.
        affects: Vec<super::selection::Affects>,
        /// The Cargo package of each Rust test file among its entries
        /// (read at the run's base, [`super::cargo`]).
        packages: std::sync::Arc<super::cargo::Packages>,
    },
    /// Shard `number` of `count` of task `of`, running `entries`;
    /// `left_out` as its unsplit task's; `template` its command as
    /// written, `{entries}` in it, for an attempt that runs other entries
    /// ([`rerun`]).
    Shard {
        of: String,
        number: usize,
        /// How many shards its task was split into.
        count: usize,
        entries: Vec<String>,
        left_out: Vec<String>,
        template: String,
        /// Its unsplit task's `list`.
        list: Option<String>,
        /// With `affected = true`: every entry of its unsplit task, which
        /// tells a changed entry from a change any entry may depend on,
        /// and its `affects` ([`super::selection`]).
        affected: Option<std::sync::Arc<super::selection::Affected>>,
        /// Its entries that do not run: none affected by the run's changes
        /// ([`narrowed`]).
        selected_out: Vec<String>,
        /// Its unsplit task's `packages`.
        packages: std::sync::Arc<super::cargo::Packages>,
    },
}

/// Whether `entry` cannot be one line of the file `$SWARM_ENTRIES` names:
/// it holds a line break of any kind a reader splits on (`\n`, `\r`,
/// and `\v`, `\f`, `\x1c`..`\x1e`, U+0085, U+2028, U+2029 for Python's
/// `splitlines`), NUL, or another control character (a tab is kept).
pub fn unlistable(entry: &str) -> bool {
    entry
        .chars()
        .any(|c| (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}'))
}

/// The unsplit task `id` (fields `fields`) of `shards = written`, its
/// entries the values of its one-key matrix (`combos`); `None` with
/// errors added if it cannot be one.
pub(super) fn read(
    source: &Source,
    id: &Spanned<String>,
    fields: &TaskFields,
    written: &Spanned<toml::Value>,
    combos: Option<&[Combo]>,
    has_variants: bool,
    errors: &mut Vec<PlanError>,
) -> Option<Sharding> {
    let before = errors.len();
    let mut refuse = |message: String, at: std::ops::Range<usize>, label: &str, help: &str| {
        errors.push(
            source
                .error(PlanErrorKind::BadValue, message, Some(at), label)
                .with_help(help.to_string()),
        );
    };
    let task = id.get_ref();
    let count = match written.get_ref() {
        toml::Value::Integer(n) if *n >= 1 && *n <= i64::from(u32::MAX) => {
            Some(Count::Fixed(*n as u32))
        }
        toml::Value::String(s) if s == "auto" => Some(Count::Auto),
        _ => {
            refuse(
                format!("`shards` of task `{task}` is a number of tasks (at least 1) or \"auto\""),
                written.span(),
                "not a count",
                "e.g. `shards = 4`, or `shards = \"auto\"` for as many as the run runs at once",
            );
            None
        }
    };
    let keys: Vec<&String> = fields
        .matrix
        .iter()
        .flat_map(|m| m.get_ref().keys())
        .filter(|k| !matches!(k.as_str(), "include" | "exclude"))
        .collect();
    let key = match keys.as_slice() {
        [key] => Some((*key).clone()),
        _ => {
            refuse(
                format!("task `{task}` has `shards` but not a matrix of one key (its entries)"),
                written.span(),
                "shards of what",
                "give it one matrix key whose values are its entries, e.g. `matrix = { file = { glob = \"tests/**/test_*.py\" } }`",
            );
            None
        }
    };
    if has_variants {
        refuse(
            format!("task `{task}` has both `shards` and `variants`"),
            written.span(),
            "with variants",
            "shard a test suite, or try variants of one task: not both",
        );
    }
    if fields.run.is_none() {
        refuse(
            format!("task `{task}` has `shards` but no `run`"),
            written.span(),
            "a command's",
            "`shards` gives a command its entries (`{entries}`); agents and WASM programs take a matrix",
        );
    }
    if task.contains('{') {
        refuse(
            format!("the id of sharded task `{task}` has a placeholder"),
            id.span(),
            "its shards are `<id>-1`, `<id>-2`, ...",
            "write the id without placeholders, e.g. id = \"pytest\"",
        );
    }
    if let Some(key) = &key {
        let texts = [
            ("run", fields.run.as_ref().map(|r| (r.get_ref(), r.span()))),
            (
                "verify",
                fields.verify.as_ref().map(|v| (v, written.span())),
            ),
        ];
        for (what, text) in texts {
            let Some((text, at)) = text else { continue };
            if text.contains(&format!("{{{key}}}")) || text.contains(&format!("{{{key}:slug}}")) {
                refuse(
                    format!(
                        "`{what}` of sharded task `{task}` names `{{{key}}}`, but each of its tasks runs many"
                    ),
                    at,
                    "one of many",
                    "use `{entries}` (each shard's entries, shell-quoted) or the file `$SWARM_ENTRIES` names",
                );
            }
        }
    }
    if errors.len() > before {
        return None;
    }
    let (key, count) = (key?, count?);
    // The key's values, in order, each once; those that cannot be one
    // line of `$SWARM_ENTRIES` apart.
    let mut seen = HashSet::new();
    let (left_out, entries): (Vec<String>, Vec<String>) = combos?
        .iter()
        .filter_map(|c| c.values.get(&key).cloned())
        .filter(|v| seen.insert(v.clone()))
        .partition(|v| unlistable(v));
    if entries.is_empty() && !left_out.is_empty() {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!(
                        "every entry of sharded task `{task}` (its matrix key `{key}`) holds a line break or another control character, so none can be one line of `$SWARM_ENTRIES`"
                    ),
                    Some(written.span()),
                    "nothing left to run",
                )
                .with_help("rename them: a name with a line break is two lines to every script that reads `$SWARM_ENTRIES` by lines"),
        );
        return None;
    }
    let affects = read_affects(source, task, fields, &entries, errors)?;
    Some(Sharding::Unsplit {
        key,
        entries,
        count,
        keep: fields.shard_grouping.unwrap_or_default(),
        left_out,
        list: fields.list_tests.as_ref().map(|l| l.get_ref().clone()),
        affected: fields.affected.as_ref().is_some_and(|a| *a.get_ref()),
        affects,
        packages: Default::default(),
    })
}

/// Task `task`'s `affects` (`fields`), each rule's entry globs resolved
/// to its `entries` (those matching none kept apart: the rule is not
/// followed, see [`super::selection::Affects::unmatched`]); `None` with
/// errors added for a glob that does not compile.
fn read_affects(
    source: &Source,
    task: &str,
    fields: &TaskFields,
    entries: &[String],
    errors: &mut Vec<PlanError>,
) -> Option<Vec<super::selection::Affects>> {
    let Some(written) = &fields.affects else {
        return Some(Vec::new());
    };
    let before = errors.len();
    let mut refuse = |message: String, at: std::ops::Range<usize>, label: &str, help: String| {
        errors.push(
            source
                .error(PlanErrorKind::BadValue, message, Some(at), label)
                .with_help(help),
        );
    };
    let mut out = Vec::with_capacity(written.get_ref().len());
    for (changes, globs) in written.get_ref() {
        if let Err(e) = super::selection::glob(changes) {
            refuse(
                format!("`affects` of task `{task}`: `{changes}` is not a glob: {}", e.kind()),
                written.span(),
                "not a glob",
                "`*` matches within a directory, `**` across directories: `\"src/api/**\" = [\"tests/api/**\"]`".into(),
            );
            continue;
        }
        let (mut runs, mut unmatched) = (HashSet::new(), Vec::new());
        for glob in globs {
            let matcher = match super::selection::glob(glob.get_ref()) {
                Ok(m) => m,
                Err(e) => {
                    refuse(
                        format!(
                            "`affects` of task `{task}`: `{}` is not a glob: {}",
                            glob.get_ref(),
                            e.kind()
                        ),
                        glob.span(),
                        "not a glob",
                        "`*` matches within a directory, `**` across directories: \"tests/api/**\""
                            .into(),
                    );
                    continue;
                }
            };
            let matched: Vec<&String> = entries
                .iter()
                .filter(|e| matcher.is_match(e.as_str()))
                .collect();
            runs.extend(matched.iter().map(|e| e.as_str()));
            if matched.is_empty() {
                unmatched.push(glob.get_ref().clone());
            }
        }
        out.push(super::selection::Affects {
            changes: changes.clone(),
            runs: entries
                .iter()
                .filter(|e| runs.contains(e.as_str()))
                .cloned()
                .collect(),
            unmatched,
        });
    }
    (errors.len() == before).then_some(out)
}

/// How much shorter (in percent) the longest shard of a new grouping must
/// be expected to run for a stable task's entries to move: a test that
/// depends on what ran before it in its shard is not moved for a few
/// percent, nor for the noise of one run's times (an entry's share of its
/// shard's start-up changes with the grouping itself).
pub const REGROUP_GAIN: u64 = 10;

/// A sharded task's id and its shards' entries, in order.
pub type Grouped = (String, Vec<Vec<String>>);

/// How task `of`'s `entries` are grouped into `n` shards: as its `last`
/// run grouped them (entries gone dropped, new ones each added to the
/// shard least loaded) unless `keep` says otherwise or a new grouping
/// ([`balance`], or [`shard_parts::fill`] with `by_tests`) is worth the
/// move (each shard taking `startup` beside its entries); a last grouping
/// of another count is not kept. With
/// `by_tests` (the task lists its entries' tests), an entry longer than
/// the shards' mean load is grouped as parts ([`shard_parts::fill`]), by
/// how its time lies over its tests (`profile`, learned), and the last
/// run's parts are kept as they were. A shard's expected time is its
/// entries' sum, or with `threads` (more than one: the task's runner runs
/// a shard's tests on that many) their [`shard_parts::Schedule`].
pub fn regroup(
    of: &str,
    entries: &[String],
    (n, threads): (usize, u32),
    (keep, startup, by_tests): (Keep, u64, bool),
    last: Option<&[Vec<String>]>,
    (expected, profile): (
        impl Fn(&str) -> Option<u64>,
        impl Fn(&str) -> Option<shard_parts::Profile>,
    ),
) -> Grouped {
    let weights = weights(entries, &expected);
    let profiles: Vec<Option<shard_parts::Profile>> = match by_tests {
        true => entries.iter().map(|e| profile(e)).collect(),
        false => Vec::new(),
    };
    let n = n.clamp(1, entries.len().max(1));
    let fill =
        |start| shard_parts::fill(entries, &weights, (n, startup, threads), start, &profiles);
    let schedule = shard_parts::Schedule::new(&weights, &profiles, threads);
    let weighed = Weighed::new(entries, &weights, &profiles, &schedule);
    // Grouped anew: by whole entries, longest first; or, when the task
    // lists its tests, with its long entries in parts if that does better
    // (an entry not worth splitting is placed after the others there, on
    // top of a level they already reached).
    let whole = balance_weighed(entries, n, &weights);
    let fresh = match by_tests {
        true => {
            let parts = fill(None);
            let load =
                |groups: &[Vec<String>]| groups.iter().map(|g| weighed.load(g, startup)).max();
            match parts.len() == whole.len() && load(&parts) < load(&whole) {
                true => parts,
                false => whole,
            }
        }
        false => whole,
    };
    let kept = match last {
        Some(last) if keep != Keep::Balanced && last.len() == fresh.len() => {
            keep_placed(&weighed, last, (by_tests, startup))
        }
        _ => return (of.to_string(), fresh),
    };
    // A shard left with no entry (its entries gone) would run one shard
    // fewer than asked: grouped anew.
    if kept.len() != fresh.len() {
        return (of.to_string(), fresh);
    }
    if keep == Keep::Pinned {
        return (of.to_string(), kept);
    }
    let longest = |groups: &[Vec<String>]| -> u64 {
        let load = |g: &Vec<String>| weighed.load(g, startup);
        startup + groups.iter().map(load).max().unwrap_or(0)
    };
    let better = |than: &[Vec<String>], new: &[Vec<String>]| {
        new.len() == than.len() && longest(than) * (100 - REGROUP_GAIN) > longest(new) * 100
    };
    // The last grouping, unless a long file poured over it (nothing else
    // moved) does better, unless grouping anew does better still.
    let mut best = kept;
    if by_tests {
        let poured = fill(last);
        if better(&best, &poured) {
            best = poured;
        }
    }
    if better(&best, &fresh) {
        best = fresh;
    }
    (of.to_string(), best)
}

/// A task's entries with their expected times and, for those it lists the
/// tests of, how their time lies over their tests.
struct Weighed<'e> {
    entries: &'e [String],
    weights: &'e [u64],
    profiles: &'e [Option<shard_parts::Profile>],
    /// What a shard of them takes on the task's runner's threads.
    schedule: &'e shard_parts::Schedule<'e>,
    /// Each entry's place in `entries`: a task may have 10,000.
    index: std::collections::HashMap<&'e str, usize>,
}

impl<'e> Weighed<'e> {
    fn new(
        entries: &'e [String],
        weights: &'e [u64],
        profiles: &'e [Option<shard_parts::Profile>],
        schedule: &'e shard_parts::Schedule<'e>,
    ) -> Self {
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.as_str(), i))
            .collect();
        Self {
            entries,
            weights,
            profiles,
            schedule,
            index,
        }
    }

    /// What entry or part `name` is expected to take: its entry's time,
    /// or a part's share of it.
    fn weight(&self, name: &str) -> u64 {
        let Some(i) = self.position(shard_parts::whole(name)) else {
            return 0;
        };
        match shard_parts::parse(name) {
            Some(part) => {
                let profile = self.profiles.get(i).and_then(Option::as_ref);
                let share = shard_parts::share(profile, &part.ranges);
                (self.weights[i] as f64 * share).round() as u64
            }
            None => self.weights[i],
        }
    }

    fn position(&self, entry: &str) -> Option<usize> {
        self.index.get(entry).copied()
    }

    /// What a shard holding `group` is expected to take beside its
    /// start-up: its entries and parts, and `listing` once if it holds a
    /// part (it lists their tests first).
    fn load(&self, group: &[String], listing: u64) -> u64 {
        let lists = group.iter().any(|n| shard_parts::parse(n).is_some());
        let listed = if lists { listing } else { 0 };
        if self.schedule.threads() <= 1 {
            return group.iter().map(|n| self.weight(n)).sum::<u64>() + listed;
        }
        // In the runner's list's order: the plan's order of entries, an
        // entry's tests by their places.
        let mut items: Vec<shard_parts::Placed> = group
            .iter()
            .filter_map(|n| {
                let i = self.position(shard_parts::whole(n))?;
                Some((i, shard_parts::parse(n).map(|p| p.ranges)))
            })
            .collect();
        items.sort_unstable();
        self.schedule
            .span(items.iter().map(|(i, r)| (*i, r.as_deref())))
            .saturating_add(listed)
    }
}

/// `last`'s groups with the entries no longer in `weighed` dropped (and
/// parts, unless the task lists its tests: `by_tests`, and `listing`
/// what a shard holding one pays) and each new one (heaviest first) added
/// to the least loaded group, each group in plan order.
fn keep_placed(
    weighed: &Weighed<'_>,
    last: &[Vec<String>],
    (by_tests, listing): (bool, u64),
) -> Vec<Vec<String>> {
    let (entries, weights) = (weighed.entries, weighed.weights);
    let kept = |name: &String| {
        weighed.position(shard_parts::whole(name)).is_some()
            && (by_tests || shard_parts::parse(name).is_none())
    };
    let mut groups: Vec<Vec<String>> = last
        .iter()
        .map(|g| g.iter().filter(|n| kept(n)).cloned().collect())
        .collect();
    let placed: HashSet<&str> = groups
        .iter()
        .flatten()
        .map(|n| shard_parts::whole(n))
        .collect();
    let new: Vec<usize> = (0..entries.len())
        .filter(|&i| !placed.contains(entries[i].as_str()))
        .collect();
    let mut loads: Vec<u64> = groups.iter().map(|g| weighed.load(g, listing)).collect();
    for (i, g) in shard_parts::place_longest_first(&mut loads, new, weights) {
        groups[g].push(entries[i].clone());
    }
    groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|mut g| {
            g.sort_by_key(|n| weighed.position(shard_parts::whole(n)));
            g
        })
        .collect()
}

/// Each entry's expected milliseconds: learned, or the median known one's
/// when unknown, or 1 for all when none is known.
fn weights(entries: &[String], expected: impl Fn(&str) -> Option<u64>) -> Vec<u64> {
    let known: Vec<Option<u64>> = entries.iter().map(|e| expected(e)).collect();
    let mut values: Vec<u64> = known.iter().flatten().copied().collect();
    values.sort_unstable();
    let typical = values
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(1)
        .max(1);
    known
        .iter()
        .map(|ms| ms.unwrap_or(typical).max(1))
        .collect()
}

/// The tasks `count` makes of `entries` entries when the run runs `slots`
/// at once: never more than entries, at least one.
pub fn tasks_for(count: Count, entries: usize, slots: usize) -> usize {
    let wanted = match count {
        Count::Fixed(n) => n as usize,
        Count::Auto => slots,
    };
    wanted.min(entries).max(1)
}

/// `entries` grouped into `n` groups whose expected times (by `expected`,
/// an entry's learned milliseconds) are balanced: longest first, each to
/// the group with the least so far (the first of equals). Unknown entries
/// count as the median known one, or all alike when none is known (then
/// the grouping is by count). Each group keeps its entries in their
/// order; the same inputs give the same groups.
pub fn balance(
    entries: &[String],
    n: usize,
    expected: impl Fn(&str) -> Option<u64>,
) -> Vec<Vec<String>> {
    balance_weighed(entries, n, &weights(entries, expected))
}

/// [`balance`] of entries whose expected times are `weights`.
fn balance_weighed(entries: &[String], n: usize, weights: &[u64]) -> Vec<Vec<String>> {
    let n = n.clamp(1, entries.len().max(1));
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut loads = vec![0; n];
    let all = (0..entries.len()).collect();
    for (i, g) in shard_parts::place_longest_first(&mut loads, all, weights) {
        groups[g].push(i);
    }
    // Each group in plan order, the empty ones left out.
    groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|mut g| {
            g.sort_unstable();
            g.into_iter().map(|i| entries[i].clone()).collect()
        })
        .collect()
}

/// The id of shard `number` of task `of`.
pub fn shard_id(of: &str, number: usize) -> String {
    format!("{of}-{number}")
}

/// Why a plan's shards cannot be split as told.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SplitError {
    #[error("split task `{task}`: the run's journal has no grouping for it")]
    Missing { task: String },
    #[error(
        "split task `{task}`: the journaled grouping names entries its matrix does not have now (`{entry}`)"
    )]
    Stale { task: String, entry: String },
    #[error("split task `{task}`: the plan has no sharded task of that id")]
    Unknown { task: String },
    #[error(
        "split task `{task}`: the journaled grouping's parts of entry `{entry}` do not run each of its tests once, or the task no longer lists its tests (`list_tests`)"
    )]
    Parts { task: String, entry: String },
}

/// Splits each unsplit task of `plan` into the groups `groups` gives it
/// (`task id -> its entries' groups`), in its place, dependents depending
/// on every shard.
pub fn split(plan: &mut Plan, groups: &[(String, Vec<Vec<String>>)]) -> Result<(), SplitError> {
    for (task, _) in groups {
        let unsplit = plan.tasks.iter().any(|t| {
            &t.id == task && matches!(t.sharding.as_deref(), Some(Sharding::Unsplit { .. }))
        });
        if !unsplit {
            return Err(SplitError::Unknown { task: task.clone() });
        }
    }
    let mut out = Vec::with_capacity(plan.tasks.len());
    let mut made: Vec<(String, Vec<String>)> = Vec::new();
    for task in std::mem::take(&mut plan.tasks) {
        let Some(Sharding::Unsplit {
            entries,
            left_out,
            list,
            affected,
            affects,
            packages,
            ..
        }) = task.sharding.as_deref()
        else {
            out.push(task);
            continue;
        };
        let Some((_, these)) = groups.iter().find(|(id, _)| *id == task.id) else {
            return Err(SplitError::Missing { task: task.id });
        };
        let all: HashSet<&str> = entries.iter().map(String::as_str).collect();
        let stale = these
            .iter()
            .flatten()
            .find(|e| !all.contains(shard_parts::whole(e)));
        if let Some(entry) = stale {
            return Err(SplitError::Stale {
                task: task.id.clone(),
                entry: entry.clone(),
            });
        }
        let parts = these
            .iter()
            .flatten()
            .find(|e| shard_parts::parse(e).is_some());
        if let Some(part) = parts {
            shard_parts::complete(these)
                .and_then(|()| list.as_ref().map(|_| ()).ok_or_else(String::new))
                .map_err(|_| SplitError::Parts {
                    task: task.id.clone(),
                    entry: shard_parts::whole(part).to_string(),
                })?;
        }
        let affected = affected.then(|| {
            std::sync::Arc::new(super::selection::Affected {
                all: entries.clone(),
                affects: affects.clone(),
            })
        });
        let mut ids = Vec::with_capacity(these.len());
        for (number, group) in (1..).zip(these) {
            let id = shard_id(&task.id, number);
            ids.push(id.clone());
            let (numbered, all) = ((number, these.len()), affected.clone());
            out.push(shard(&task, id, numbered, group, (left_out, all, packages)));
        }
        made.push((task.id, ids));
    }
    for t in &mut out {
        let deps = std::mem::take(&mut t.deps);
        for d in deps {
            match made.iter().find(|(id, _)| *id == d) {
                Some((_, ids)) => t.deps.extend(ids.iter().cloned()),
                None => t.deps.push(d),
            }
        }
    }
    plan.tasks = out;
    Ok(())
}

/// Shard `number` of `count` of `task`, with id `id`, running `entries`,
/// its task's entries `left_out`, and with `affected = true` all of them.
fn shard(
    task: &Task,
    id: String,
    (number, count): (usize, usize),
    entries: &[String],
    (left_out, affected, packages): (
        &[String],
        Option<std::sync::Arc<super::selection::Affected>>,
        &std::sync::Arc<super::cargo::Packages>,
    ),
) -> Task {
    let mut t = task.clone();
    t.id = id;
    let list = match task.sharding.as_deref() {
        Some(Sharding::Unsplit { list, .. }) => list.clone(),
        _ => None,
    };
    let mut template = String::new();
    if let Payload::Command { run } = &mut t.payload {
        template = run.clone();
        *run = command(&template, (list.as_deref(), packages), entries);
    }
    t.sharding = Some(Box::new(Sharding::Shard {
        of: task.id.clone(),
        number,
        count,
        entries: entries.to_vec(),
        left_out: left_out.to_vec(),
        template,
        list,
        affected,
        selected_out: Vec::new(),
        packages: std::sync::Arc::clone(packages),
    }));
    t
}

/// A shard's command running `entries`, from `template` (its command as
/// written): `{entries}` given them, or, for a shard holding parts of a
/// task that lists its tests (`list`), [`shard_parts::script`] (Rust test
/// files' lines told apart by their `packages`).
fn command(
    template: &str,
    (list, packages): (Option<&str>, &super::cargo::Packages),
    entries: &[String],
) -> String {
    match list {
        Some(list) if entries.iter().any(|e| shard_parts::parse(e).is_some()) => {
            shard_parts::script(template, list, entries, packages)
        }
        _ => template.replace(&format!("{{{ENTRIES}}}"), &quoted(entries)),
    }
}

/// Shard `task` running `entries` in place of its own, in its command and
/// `$SWARM_ENTRIES`; `None` for a task that is not a shard's.
fn running(task: &Task, entries: &[String]) -> Option<Task> {
    let Some(Sharding::Shard {
        template,
        list,
        packages,
        ..
    }) = task.sharding.as_deref()
    else {
        return None;
    };
    let mut t = task.clone();
    if let Payload::Command { run } = &mut t.payload {
        *run = command(template, (list.as_deref(), packages), entries);
    }
    if let Some(Sharding::Shard { entries: its, .. }) = t.sharding.as_deref_mut() {
        *its = entries.to_vec();
    }
    Some(t)
}

/// Shard `task` as an attempt runs it that runs `ids` instead of its
/// entries (the tests that failed before, or their entries): in `{entries}`
/// and `$SWARM_ENTRIES` alike. `None` for a task that is not a shard's, or
/// an id that cannot be one line of `$SWARM_ENTRIES`.
pub fn rerun(task: &Task, ids: &[String]) -> Option<Task> {
    if ids.is_empty() || ids.iter().any(|id| unlistable(id)) {
        return None;
    }
    running(task, ids)
}

/// What a shard none of whose entries the run's changes could affect runs
/// (`affected = true`): nothing, said in its log.
pub const NOTHING_AFFECTED: &str = "echo \"swarm: the run changed none of this shard's entries nor any path they may depend on (affected = true): nothing to run\"";

/// Shard `task` as it runs when only `selection.run` of its entries (in
/// order, its parts among them) may be affected by the run's changes
/// ([`super::selection`]), the rest recorded as `selected_out`: its
/// command given those; with none, [`NOTHING_AFFECTED`] and no test
/// report to read. `None` for a task that is not a shard's.
pub fn narrowed(task: &Task, selection: &super::selection::Selection) -> Option<Task> {
    let mut t = running(task, &selection.run)?;
    if selection.run.is_empty() {
        if let Payload::Command { run } = &mut t.payload {
            *run = NOTHING_AFFECTED.to_string();
        }
        t.junit = None;
    }
    if let Some(Sharding::Shard { selected_out, .. }) = t.sharding.as_deref_mut() {
        selected_out.clone_from(&selection.out);
    }
    Some(t)
}

/// How the shards among `tasks` (in order) were split: each sharded
/// task's id and its shards' entries, in order.
pub fn groupings<'t>(tasks: impl IntoIterator<Item = &'t Task>) -> Vec<Grouped> {
    let mut groups: Vec<Grouped> = Vec::new();
    for task in tasks {
        let Some(Sharding::Shard { of, entries, .. }) = task.sharding.as_deref() else {
            continue;
        };
        match groups.last_mut() {
            Some((last, shards)) if last == of => shards.push(entries.clone()),
            _ => groups.push((of.clone(), vec![entries.clone()])),
        }
    }
    groups
}

/// [`groupings`] for a node, which splits the plan text again: each
/// sharded task's shards in their numbers' places, those not among
/// `tasks` (`--only` chose others) empty, so that a node's `<id>-2` is the
/// coordinator's whichever shards run.
pub fn numbered_groupings<'t>(tasks: impl IntoIterator<Item = &'t Task>) -> Vec<Grouped> {
    let mut groups: Vec<Grouped> = Vec::new();
    for task in tasks {
        let Some(Sharding::Shard {
            of,
            number,
            count,
            entries,
            ..
        }) = task.sharding.as_deref()
        else {
            continue;
        };
        let at = match groups.iter().position(|(o, _)| o == of) {
            Some(at) => at,
            None => {
                groups.push((of.clone(), vec![Vec::new(); *count]));
                groups.len() - 1
            }
        };
        if let Some(slot) = groups[at].1.get_mut(number.saturating_sub(1)) {
            slot.clone_from(entries);
        }
    }
    groups
}

/// An unsplit task of a plan: its id, entries, count, whether entries
/// stay where they were and whether it lists its entries' tests.
pub type UnsplitTask<'p> = (&'p str, &'p [String], Count, Keep, bool);

/// The unsplit tasks of `plan`.
pub fn unsplit(plan: &Plan) -> impl Iterator<Item = UnsplitTask<'_>> {
    plan.tasks
        .iter()
        .filter_map(|t| match t.sharding.as_deref() {
            Some(Sharding::Unsplit {
                entries,
                count,
                keep,
                list,
                ..
            }) => Some((
                t.id.as_str(),
                entries.as_slice(),
                *count,
                *keep,
                list.is_some(),
            )),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("t{i}")).collect()
    }

    #[test]
    fn the_longest_go_first_each_to_the_least_loaded_group() {
        let entries = names(6);
        let ms = [90, 10, 50, 40, 30, 20];
        let groups = balance(&entries, 2, |e| Some(ms[e[1..].parse::<usize>().unwrap()]));
        // 90 | 50, 40 | 30 to the first of equals, 20 and 10 to the
        // other; each group in plan order.
        assert_eq!(groups, [vec!["t0", "t4"], vec!["t1", "t2", "t3", "t5"]]);
        let load = |g: &Vec<String>| -> u64 {
            g.iter().map(|e| ms[e[1..].parse::<usize>().unwrap()]).sum()
        };
        assert_eq!((load(&groups[0]), load(&groups[1])), (120, 120));
    }

    #[test]
    fn unknown_entries_count_as_the_typical_one_and_none_known_is_by_count() {
        let entries = names(5);
        let by_count = balance(&entries, 2, |_| None);
        assert_eq!(by_count.iter().map(Vec::len).collect::<Vec<_>>(), [3, 2]);
        // t0 is known to be long: alone in its group.
        let groups = balance(&entries, 2, |e| {
            (e == "t0")
                .then_some(1000)
                .or(Some(10))
                .filter(|_| e != "t4")
        });
        assert_eq!(groups[0], ["t0"]);
        assert_eq!(groups[1], ["t1", "t2", "t3", "t4"]);
        // Never more groups than entries, never none.
        assert_eq!(balance(&entries[..2], 8, |_| None).len(), 2);
        assert_eq!(tasks_for(Count::Auto, 29, 2), 2);
        assert_eq!(tasks_for(Count::Fixed(40), 29, 2), 29);
        assert_eq!(tasks_for(Count::Fixed(0), 29, 2), 1);
    }

    #[test]
    fn entries_stay_in_their_shards_unless_moving_them_is_worth_it() {
        let entries = names(4);
        let ms = |e: &str| Some([100u64, 100, 100, 100][e[1..].parse::<usize>().unwrap()]);
        let last = vec![
            vec!["t0".to_string(), "t3".into()],
            vec!["t1".to_string(), "t2".into()],
        ];
        // As balanced as a new grouping: kept as it was.
        let (_, kept) = regroup_("s", &entries, 2, (Keep::Stable, 0), Some(&last), ms);
        assert_eq!(kept, last);
        // t0 grew: the kept grouping's longest shard is 1.5x the new one's.
        let grown = |e: &str| Some([300u64, 100, 100, 100][e[1..].parse::<usize>().unwrap()]);
        let (_, moved) = regroup_("s", &entries, 2, (Keep::Stable, 0), Some(&last), grown);
        assert_eq!(moved, [vec!["t0"], vec!["t1", "t2", "t3"]]);
        // Pinned: kept anyway; a new entry goes where there is most room,
        // a removed one is dropped.
        let (_, pinned) = regroup_("s", &entries, 2, (Keep::Pinned, 0), Some(&last), grown);
        assert_eq!(pinned, last);
        let more: Vec<String> = ["t0", "t1", "t2", "t4"].map(String::from).to_vec();
        let (_, placed) = regroup_("s", &more, 2, (Keep::Pinned, 0), Some(&last), |_| None);
        assert_eq!(placed, [vec!["t0", "t4"], vec!["t1", "t2"]]);
        // Balanced, or a last grouping of another count: grouped anew.
        let (_, fresh) = regroup_("s", &entries, 2, (Keep::Balanced, 0), Some(&last), ms);
        assert_eq!(fresh, balance(&entries, 2, ms));
        let (_, three) = regroup_("s", &entries, 3, (Keep::Pinned, 0), Some(&last), ms);
        assert_eq!(three.len(), 3);
        // A kept shard whose entries are all gone: grouped anew, never a
        // shard fewer than asked.
        let left: Vec<String> = ["t1", "t2"].map(String::from).to_vec();
        let (_, anew) = regroup_("s", &left, 2, (Keep::Pinned, 0), Some(&last), ms);
        assert_eq!(anew.len(), 2);
    }

    #[test]
    fn a_long_entry_of_a_task_that_lists_its_tests_is_split_over_shards_and_its_parts_stay() {
        // itertools' suite as nextest's JUnit timed it: `spec` (21 s) was
        // in a shard of small files, `quick` (12 s) in the other.
        let entries: Vec<String> = ["a", "quick", "spec", "z"].map(String::from).to_vec();
        let ms = |e: &str| {
            Some(match e {
                "quick" => 12_000u64,
                "spec" => 21_000,
                _ => 1_000,
            })
        };
        let last = vec![
            vec!["a".to_string(), "quick".into()],
            vec!["spec".to_string(), "z".into()],
        ];
        let listed = |last: Option<&[Vec<String>]>| {
            regroup(
                "s",
                &entries,
                (2, 1),
                (Keep::Stable, 500, true),
                last,
                (ms, |_| None),
            )
            .1
        };
        // The whole file kept where it was: 22 s against 13 s; split, it
        // tops up the shard with `quick` and fills the other (each shard
        // listing once): both at 18 s. Worth the move, and no other file
        // moves for it.
        let split = listed(Some(&last));
        assert_eq!(
            split,
            [
                vec!["a", "quick", "spec\u{1f}0-214"],
                vec!["spec\u{1f}214-1000", "z"]
            ]
        );
        let weights = [1_000, 12_000, 21_000, 1_000];
        let schedule = shard_parts::Schedule::new(&weights, &[], 1);
        let weighed = Weighed::new(&entries, &weights, &[], &schedule);
        let loads: Vec<u64> = split.iter().map(|g| weighed.load(g, 500)).collect();
        // (to a thousandth of the file, as a part's range is)
        assert!(loads.iter().all(|l| l.abs_diff(18_000) < 30), "{loads:?}");
        // The next run keeps the parts where they ran.
        assert_eq!(listed(Some(&split)), split);
        // Without its list (the plan dropped `list_tests`), the parts are
        // dropped and the entry placed whole where there is most room.
        let (_, whole) = regroup(
            "s",
            &entries,
            (2, 1),
            (Keep::Pinned, 500, false),
            Some(&split),
            (ms, |_: &str| None),
        );
        assert_eq!(whole, last);
    }

    #[test]
    fn a_long_entry_not_worth_splitting_goes_first_not_on_top_of_the_rest() {
        // Jinja2's suite in eight shards had its longest file (0.4 s, over
        // the mean shard's 0.31 s) placed after the others had levelled
        // the shards, on top of one (0.66 s): splitting it costs each part
        // a listing (a start-up), which was not worth it.
        let entries: Vec<String> = ["big", "b", "c", "d", "e"].map(String::from).to_vec();
        let ms = |e: &str| {
            Some(match e {
                "big" => 600u64,
                "b" | "c" => 300,
                "d" => 200,
                _ => 100,
            })
        };
        let (_, groups) = regroup(
            "s",
            &entries,
            (3, 1),
            (Keep::Stable, 1_000, true),
            None,
            (ms, |_| None),
        );
        assert_eq!(groups, [vec!["big"], vec!["b", "d"], vec!["c", "e"]]);
    }

    fn regroup_(
        of: &str,
        entries: &[String],
        n: usize,
        (keep, startup): (Keep, u64),
        last: Option<&[Vec<String>]>,
        expected: impl Fn(&str) -> Option<u64>,
    ) -> Grouped {
        regroup(
            of,
            entries,
            (n, 1),
            (keep, startup, false),
            last,
            (expected, |_| None),
        )
    }

    #[test]
    fn entries_are_quoted_as_one_word_each() {
        let e = vec!["tests/a.py".to_string(), "it's here".into(), "$(x)".into()];
        assert_eq!(quoted(&e), r"tests/a.py 'it'\''s here' '$(x)'");
    }
}
