//! How long tasks took before, so that the next run can schedule by time.
//!
//! The dispatcher starts the ready task with the longest remaining chain
//! first. Counted in tasks, a chain of three one-second tasks outranks a
//! one-minute task; counted in expected seconds, it does not. This module
//! keeps a bounded history of the durations of tasks' successful attempts,
//! per repository and shared by its runs (`.swarm/durations.json`,
//! [`crate::layout::DURATIONS`]), and turns it into each task's expected
//! duration ([`History::expected`]), which weighs the task graph
//! ([`crate::graph::TaskGraph::weigh`]).
//!
//! A task is known by its id and a hash of what it runs ([`key`]): its
//! command, WASM program and arguments or agent prompt and model, its
//! `verify` and its environment. A changed task is a new one, and starts
//! with the median of the known tasks of its run (one second when none is
//! known, which makes a first run's order the critical path in tasks).
//!
//! The history is a cache: it is read when a run starts and merged and
//! replaced whole (a new file renamed over the old) when it ends. Two runs
//! ending at once may lose one's samples (the last writer wins), and a
//! file that does not read is ignored with a warning; neither ever fails a
//! run. It is bounded: the last [`SAMPLES`] durations of each task, the
//! [`MAX_ENTRIES`] tasks seen most recently, and a file of at most
//! [`MAX_BYTES`] read. Deleting the file forgets everything.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use swarm_protocol::EventBody;

use crate::graph::{Expected, UNWEIGHED_MS};
use crate::plan::shard_parts::Profile;
use crate::plan::shards;
use crate::plan::{Payload, Task};
use crate::state::{State, StateError};

/// Durations kept per task: its estimate is their median, so one slow or
/// fast run moves it little.
pub const SAMPLES: usize = 5;

/// Tasks kept; the ones seen least recently go first.
pub const MAX_ENTRIES: usize = 4096;

/// A larger file is not read (ignored as corrupt): the history never costs
/// a run more than a moment.
pub const MAX_BYTES: usize = 4 << 20;

/// Longer task ids are not kept (no plan's ids are this long), which
/// bounds an entry's size.
const MAX_ID: usize = 512;

/// Files a task changed, kept per task (its last successful attempt's):
/// what predicts that two tasks will conflict. Past this many, none are
/// kept (a task that changes that much conflicts with anything).
pub const MAX_CHANGED: usize = 256;

/// The file's format.
const VERSION: u32 = 1;

/// Why the history could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DurationsError {
    #[error("open swarm's state directory")]
    State(#[from] StateError),
    #[error("encode the duration history")]
    Encode(#[from] serde_json::Error),
}

/// What makes "the same task" across runs: a hash of what it runs (its
/// payload, `verify` and environment), in hex. The id is kept beside it.
pub fn key(task: &Task) -> String {
    let mut hash = Sha256::new();
    // Each part with its length, so that no two tasks' parts run together
    // into the same bytes.
    let mut part = |label: &str, value: &[u8]| {
        hash.update(label.as_bytes());
        hash.update(value.len().to_le_bytes());
        hash.update(value);
    };
    match &task.payload {
        Payload::Command { run } => part("run", run.as_bytes()),
        Payload::Wasm(wasm) => {
            part("wasm", wasm.module.as_os_str().as_encoded_bytes());
            for arg in &wasm.args {
                part("arg", arg.as_bytes());
            }
            part("fuel", &wasm.fuel.unwrap_or(0).to_le_bytes());
        }
        Payload::Agent(agent) => {
            part("prompt", agent.prompt.as_bytes());
            part("model", agent.model.as_bytes());
        }
    }
    if let Some(verify) = &task.verify {
        part("verify", verify.as_bytes());
    }
    for (name, value) in &task.env {
        part("env", name.as_bytes());
        part("=", value.as_bytes());
    }
    let digest = hash.finalize();
    digest
        .iter()
        .take(8)
        .fold(String::with_capacity(16), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The duration of a successful attempt, from its `attempt_finished`:
/// the task's id and milliseconds. Failed, cancelled and timed-out
/// attempts say nothing of how long the task's work takes.
pub fn succeeded(body: &EventBody) -> Option<(&str, u64)> {
    match body {
        EventBody::AttemptFinished {
            task,
            outcome,
            verify_passed,
            duration_ms,
            outside_paths,
            ..
        } if outcome.is_success() && *verify_passed != Some(false) && outside_paths.is_empty() => {
            Some((task.as_str(), *duration_ms))
        }
        _ => None,
    }
}

/// Sharded tasks whose last grouping is kept: the ones recorded least
/// recently go first.
pub const MAX_GROUPINGS: usize = 256;

/// The file as read (written as [`FileOut`]).
#[derive(Debug, Deserialize)]
struct File {
    v: u32,
    /// Incremented by every run that records: when each entry was seen.
    generation: u64,
    entries: Vec<Entry>,
    /// Each sharded task's last grouping, so that the next stays put.
    #[serde(default)]
    groupings: Vec<Grouping>,
    /// How each split entry's time lay over its tests when last split.
    #[serde(default)]
    profiles: Vec<ProfileEntry>,
}

/// Drops the values of `map` seen least recently (each kept with the
/// generation that recorded it) beyond `most`.
fn evict_oldest<V>(map: &mut HashMap<String, (V, u64)>, most: usize) {
    let excess = map.len().saturating_sub(most);
    if excess == 0 {
        return;
    }
    let mut by_age: Vec<(u64, String)> = map
        .iter()
        .map(|(k, (_, seen))| (*seen, k.clone()))
        .collect();
    by_age.sort();
    for (_, k) in by_age.into_iter().take(excess) {
        map.remove(&k);
    }
}

/// A sharded task's id, one of its entries, and how the entry's time lay
/// over its tests.
pub type EntryProfile = (String, String, Profile);

/// What a run told of its sharded tasks beside their entries' times: each
/// task's start-up (ms), the test threads its runner ran a shard's tests on,
/// and the profiles of entries that ran split or whole.
pub type Told<'a> = (&'a [(String, u64)], &'a [(String, u32)], &'a [EntryProfile]);

/// A split entry's [`Profile`]: its segments `(lo, hi, ms)`.
#[derive(Debug, Deserialize)]
struct ProfileEntry {
    task: String,
    segments: Vec<(u32, u32, u64)>,
    /// How many tests the entry had (absent: unknown, as an older swarm
    /// wrote it).
    #[serde(default)]
    tests: u32,
    /// Whether it was learned test by test (absent: not said, as an older
    /// swarm wrote it; see `Profile::by_test`).
    #[serde(default)]
    by_test: Option<bool>,
    seen: u64,
}

/// [`ProfileEntry`] as written.
#[derive(Serialize)]
struct ProfileOut<'a> {
    task: &'a str,
    segments: &'a [(u32, u32, u64)],
    #[serde(skip_serializing_if = "is_zero")]
    tests: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    by_test: Option<bool>,
    seen: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// [`File`] as written, borrowing the history's entries.
#[derive(Serialize)]
struct FileOut<'a> {
    v: u32,
    generation: u64,
    entries: Vec<EntryOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groupings: Vec<GroupingOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    profiles: Vec<ProfileOut<'a>>,
}

/// A sharded task's entries as its last run grouped them.
#[derive(Debug, Deserialize)]
struct Grouping {
    task: String,
    groups: Vec<Vec<String>>,
    seen: u64,
}

/// [`Grouping`] as written.
#[derive(Serialize)]
struct GroupingOut<'a> {
    task: &'a str,
    groups: &'a [Vec<String>],
    seen: u64,
}

#[derive(Debug, Deserialize)]
struct Entry {
    task: String,
    hash: String,
    /// The last durations, oldest first, in milliseconds.
    ms: Vec<u64>,
    /// The generation that last recorded it.
    seen: u64,
    /// The files its last successful attempt changed.
    #[serde(default)]
    changed: Vec<String>,
}

/// [`Entry`] as written, borrowing a task's key and [`Record`].
#[derive(Serialize)]
struct EntryOut<'a> {
    task: &'a str,
    hash: &'a str,
    ms: &'a [u64],
    seen: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    changed: &'a [String],
}

/// What the history knows of one task (its id and hash are its key).
#[derive(Debug, Clone)]
struct Record {
    /// The last durations, oldest first, in milliseconds.
    ms: Vec<u64>,
    /// The generation that last recorded it.
    seen: u64,
    /// The files its last successful attempt changed (at most
    /// [`MAX_CHANGED`]).
    changed: Vec<String>,
}

/// The durations a repository's runs recorded.
#[derive(Debug, Clone, Default)]
pub struct History {
    generation: u64,
    /// By (task id, hash).
    entries: HashMap<(String, String), Record>,
    /// Each sharded task's last grouping and the generation that recorded
    /// it, by the task's id.
    groupings: HashMap<String, (Vec<Vec<String>>, u64)>,
    /// Each split entry's profile and the generation that recorded it, by
    /// its id ([`entry_id`]).
    profiles: HashMap<String, (Profile, u64)>,
}

impl History {
    /// The history of the repository whose main working tree is
    /// `workdir`: empty when there is none, or when it does not read (a
    /// warning says so; the history is only ever a hint).
    pub fn load(workdir: &Path) -> Self {
        let text = match State::open(workdir).and_then(|state| match state {
            Some(state) => state.read_file(&[crate::layout::DURATIONS]),
            None => Ok(None),
        }) {
            Ok(Some(text)) => text,
            Ok(None) => return Self::default(),
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "ignoring the duration history: it does not read");
                return Self::default();
            }
        };
        match Self::parse(&text) {
            Ok(history) => history,
            Err(why) => {
                tracing::warn!(
                    path = %workdir.join(crate::layout::STATE_DIR).join(crate::layout::DURATIONS).display(),
                    %why,
                    "ignoring the duration history"
                );
                Self::default()
            }
        }
    }

    /// The history in `text` (the file's content).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_BYTES {
            return Err(format!("it is larger than {MAX_BYTES} bytes"));
        }
        let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.v != VERSION {
            return Err(format!("its version is {}, not {VERSION}", file.v));
        }
        let mut history = Self {
            generation: file.generation,
            entries: HashMap::new(),
            groupings: file
                .groupings
                .into_iter()
                .filter(|g| g.task.len() <= MAX_ID)
                .map(|g| (g.task, (g.groups, g.seen)))
                .collect(),
            profiles: file
                .profiles
                .into_iter()
                .filter(|p| p.task.len() <= MAX_ID)
                .filter(|p| p.segments.len() <= crate::plan::shard_parts::MAX_SEGMENTS)
                .filter_map(|p| {
                    let profile = Profile::new(p.segments)?.counted(p.tests);
                    let profile = match p.by_test {
                        Some(by_test) => profile.learned_by_test(by_test),
                        None => profile,
                    };
                    Some((p.task, (profile, p.seen)))
                })
                .collect(),
        };
        history.entries.reserve(file.entries.len());
        for mut entry in file.entries {
            if entry.ms.is_empty() || entry.task.len() > MAX_ID {
                continue;
            }
            let excess = entry.ms.len().saturating_sub(SAMPLES);
            entry.ms.drain(..excess);
            entry.changed.truncate(MAX_CHANGED);
            let record = Record {
                ms: entry.ms,
                seen: entry.seen,
                changed: entry.changed,
            };
            history.entries.insert((entry.task, entry.hash), record);
        }
        history.evict();
        Ok(history)
    }

    /// The file's content.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        // Borrowed, not cloned: a copy of every entry was the run's peak of
        // memory at its end.
        let mut entries: Vec<EntryOut<'_>> = self
            .entries
            .iter()
            .map(|((task, hash), record)| EntryOut {
                task,
                hash,
                ms: &record.ms,
                seen: record.seen,
                changed: &record.changed,
            })
            .collect();
        // A stable file: the same history is the same text.
        entries.sort_by(|a, b| (a.task, a.hash).cmp(&(b.task, b.hash)));
        let mut groupings: Vec<GroupingOut<'_>> = self
            .groupings
            .iter()
            .map(|(task, (groups, seen))| GroupingOut {
                task,
                groups,
                seen: *seen,
            })
            .collect();
        groupings.sort_by(|a, b| a.task.cmp(b.task));
        let mut profiles: Vec<ProfileOut<'_>> = self
            .profiles
            .iter()
            .map(|(task, (profile, seen))| ProfileOut {
                task,
                segments: profile.segments(),
                tests: profile.tests(),
                by_test: profile.said_by_test(),
                seen: *seen,
            })
            .collect();
        profiles.sort_by(|a, b| a.task.cmp(b.task));
        serde_json::to_string_pretty(&FileOut {
            v: VERSION,
            generation: self.generation,
            entries,
            groupings,
            profiles,
        })
    }

    /// How many tasks it knows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What `task` is expected to take, in milliseconds, if it ran
    /// before: the median of its last durations.
    pub fn estimate(&self, task: &Task) -> Option<u64> {
        self.estimate_by(&task.id, &key(task))
    }

    fn estimate_by(&self, id: &str, hash: &str) -> Option<u64> {
        let entry = self.entries.get(&(id.to_owned(), hash.to_owned()))?;
        median(&entry.ms)
    }

    /// Each of `tasks`' expected duration in milliseconds: its estimate,
    /// or for a task that never ran (and a later subtask) the median of
    /// the known ones' estimates; [`UNWEIGHED_MS`] for every task when
    /// none is known. At least a millisecond each, so that a longer chain
    /// of instant tasks still comes first.
    pub fn expected<T: Borrow<Task>>(&self, tasks: &[T]) -> Expected {
        let known: Vec<Option<u64>> = tasks.iter().map(|t| self.estimate(t.borrow())).collect();
        let estimates: Vec<u64> = known.iter().flatten().copied().collect();
        let fallback = median(&estimates).unwrap_or(UNWEIGHED_MS).max(1);
        Expected {
            per_task: known
                .into_iter()
                .map(|k| k.map_or(fallback, |ms| ms.max(1)))
                .collect(),
            fallback,
        }
    }

    /// Adds one successful attempt of `task` that took `ms`.
    pub fn record(&mut self, task: &Task, ms: u64) {
        self.record_by(&task.id, &key(task), ms, None);
    }

    /// The files task `task` changed the last time it succeeded, if the
    /// history knows (and they were few enough to keep).
    pub fn changed(&self, task: &Task) -> Option<&[String]> {
        self.entries
            .get(&(task.id.clone(), key(task)))
            .map(|r| r.changed.as_slice())
            .filter(|c| !c.is_empty())
    }

    fn record_by(&mut self, id: &str, hash: &str, ms: u64, changed: Option<&[String]>) {
        if id.len() > MAX_ID {
            return;
        }
        // One generation per run that records: everything it saw is newer
        // than anything before it.
        let seen = self.generation + 1;
        let entry = self
            .entries
            .entry((id.to_owned(), hash.to_owned()))
            .or_insert_with(|| Record {
                ms: Vec::new(),
                seen,
                changed: Vec::new(),
            });
        entry.seen = seen;
        entry.ms.push(ms);
        if let Some(changed) = changed {
            entry.changed = match changed.len() > MAX_CHANGED {
                true => Vec::new(),
                false => changed.to_vec(),
            };
        }
        let excess = entry.ms.len().saturating_sub(SAMPLES);
        entry.ms.drain(..excess);
    }

    /// This history as [`Self::load`] reads it: its JSON, the oldest half
    /// of its profiles and groupings dropped again and again while it is
    /// larger than [`MAX_BYTES`] (a file larger is not read at all, and
    /// every duration in it would be lost; a profile holds up to
    /// [`crate::plan::shard_parts::MAX_SEGMENTS`] segments, and a grouping
    /// of parts dealt test by test names many ranges).
    fn fitted_json(&mut self) -> Result<String, serde_json::Error> {
        loop {
            let text = self.to_json()?;
            if text.len() <= MAX_BYTES || (self.profiles.is_empty() && self.groupings.is_empty()) {
                return Ok(text);
            }
            let (profiles, groupings) = (self.profiles.len() / 2, self.groupings.len() / 2);
            evict_oldest(&mut self.profiles, profiles);
            evict_oldest(&mut self.groupings, groupings);
        }
    }

    /// Drops the entries seen least recently beyond [`MAX_ENTRIES`].
    fn evict(&mut self) {
        evict_oldest(&mut self.profiles, MAX_GROUPINGS);
        evict_oldest(&mut self.groupings, MAX_GROUPINGS);
        let excess = self.entries.len().saturating_sub(MAX_ENTRIES);
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(u64, (String, String))> = self
            .entries
            .iter()
            .map(|(k, e)| (e.seen, k.clone()))
            .collect();
        by_age.sort();
        for (_, k) in by_age.into_iter().take(excess) {
            self.entries.remove(&k);
        }
    }

    /// Adds a run's successful attempts (`samples`: each task with its
    /// duration in milliseconds) to the history of the repository at
    /// `workdir`, read again now (another run may have ended since this
    /// one started), and replaces the file.
    pub fn add_run<T: Borrow<Task>>(
        workdir: &Path,
        samples: &[(T, u64)],
    ) -> Result<(), DurationsError> {
        Self::add_run_changed(workdir, samples, |_| None)
    }

    /// [`Self::add_run`], each task's changed files (`changed`) kept too.
    pub fn add_run_changed<'c, T: Borrow<Task>>(
        workdir: &Path,
        samples: &[(T, u64)],
        changed: impl Fn(&Task) -> Option<&'c [String]>,
    ) -> Result<(), DurationsError> {
        if samples.is_empty() {
            return Ok(());
        }
        // No more than the history keeps: of a larger run, its longest
        // tasks (the ones a schedule turns on). Recording them all first
        // and evicting after was the run's peak of memory at 10,000 tasks.
        let mut kept: Vec<&(T, u64)> = samples.iter().collect();
        if kept.len() > MAX_ENTRIES {
            kept.select_nth_unstable_by(MAX_ENTRIES, |a, b| b.1.cmp(&a.1));
            kept.truncate(MAX_ENTRIES);
        }
        let mut history = Self::load(workdir);
        // Room for the run's tasks it does not know yet, counting those it
        // knows as this run's (the usual case: the same plan again), so the
        // table is not doubled step by step with each step's old table left
        // in the heap. A history full of other tasks still grows once more.
        history
            .entries
            .reserve(kept.len().saturating_sub(history.entries.len()));
        for (task, ms) in kept {
            let task = task.borrow();
            history.record_by(&task.id, &key(task), *ms, changed(task));
        }
        history.generation += 1;
        history.evict();
        let text = history.fitted_json()?;
        State::create(workdir)?.replace_file(&[crate::layout::DURATIONS], &text)?;
        Ok(())
    }
}

/// What the history knows of the entries of sharded tasks (`shards`): each
/// entry of task `of` is kept as a record of its own, under an id no task
/// can have (ids never hold a control character) and a hash no task's key
/// is.
const ENTRY_HASH: &str = "entry";

/// The hash a sharded task's start-up is kept under (its entry the empty
/// one, which [`ENTRY_HASH`] keeps apart from an entry named so).
const STARTUP_HASH: &str = "startup";

/// The hash kept beside it: on how many threads the task's runner ran a
/// shard's tests ([`Accounted::threads`]), one sample a run.
const THREADS_HASH: &str = "threads";

fn entry_id(of: &str, entry: &str) -> String {
    format!("{of}\u{1f}{entry}")
}

impl History {
    /// How long entry `entry` of sharded task `of` takes, if known.
    pub fn entry_estimate(&self, of: &str, entry: &str) -> Option<u64> {
        self.estimate_by(&entry_id(of, entry), ENTRY_HASH)
    }

    /// How long `name` of sharded task `of` takes, if known: an entry's
    /// estimate, or a part's share of its entry's
    /// ([`crate::plan::shard_parts`]).
    pub fn part_estimate(&self, of: &str, name: &str) -> Option<u64> {
        let entry = crate::plan::shard_parts::whole(name);
        let whole = self.entry_estimate(of, entry)?;
        Some(match crate::plan::shard_parts::parse(name) {
            Some(part) => {
                let profile = self.profile(of, entry);
                let share = crate::plan::shard_parts::share(profile.as_ref(), &part.ranges);
                (whole as f64 * share).round() as u64
            }
            None => whole,
        })
    }

    /// What a shard of sharded task `of` holding `group` (in its list's
    /// order) is expected to take beside its start-up and listing, if each
    /// of its entries' time is known: their sum, or on the threads its
    /// runner runs them on ([`Self::threads`]) their
    /// [`crate::plan::shard_parts::Schedule`].
    pub fn group_estimate(&self, of: &str, group: &[String]) -> Option<u64> {
        use crate::plan::shard_parts::{Schedule, parse, whole};
        let threads = self.threads(of).unwrap_or(1);
        if threads <= 1 {
            return group.iter().map(|e| self.part_estimate(of, e)).sum();
        }
        let mut entries: Vec<&str> = Vec::new();
        let mut at: HashMap<&str, usize> = HashMap::new();
        for name in group {
            at.entry(whole(name)).or_insert_with(|| {
                entries.push(whole(name));
                entries.len() - 1
            });
        }
        let weights: Vec<u64> = entries
            .iter()
            .map(|e| self.entry_estimate(of, e))
            .collect::<Option<_>>()?;
        let profiles: Vec<Option<Profile>> = entries.iter().map(|e| self.profile(of, e)).collect();
        let schedule = Schedule::new(&weights, &profiles, threads);
        let items: Vec<crate::plan::shard_parts::Placed> = group
            .iter()
            .filter_map(|name| Some((*at.get(whole(name))?, parse(name).map(|p| p.ranges))))
            .collect();
        Some(schedule.span(items.iter().map(|(i, r)| (*i, r.as_deref()))))
    }

    /// How entry `entry` of task `of`'s time lay over its tests, if it was
    /// split before or ran whole when long enough to be split later.
    pub fn profile(&self, of: &str, entry: &str) -> Option<Profile> {
        self.profiles
            .get(&entry_id(of, entry))
            .map(|(p, _)| p.clone())
    }

    /// How the unsplit tasks of `plan` are grouped when the run runs
    /// `slots` tasks at once: each task's id and its shards' entries,
    /// balanced by what the history knows of them, where the last run put
    /// them unless moving them is worth it (`shards::regroup`).
    pub fn shard_groups(&self, plan: &crate::plan::Plan, slots: usize) -> Vec<shards::Grouped> {
        shards::unsplit(plan)
            .map(|(of, entries, count, keep, by_tests)| {
                let n = shards::tasks_for(count, entries.len(), slots);
                let last = self.groupings.get(of).map(|(g, _)| g.as_slice());
                let startup = self.startup(of).unwrap_or(0);
                let threads = self.threads(of).unwrap_or(1);
                let expected = |e: &str| self.entry_estimate(of, e);
                let profile = |e: &str| self.profile(of, e);
                shards::regroup(
                    of,
                    entries,
                    (n, threads),
                    (keep, startup, by_tests),
                    last,
                    (expected, profile),
                )
            })
            .collect()
    }

    /// What each shard of sharded task `of` takes whatever its entries
    /// (start-up), if known.
    pub fn startup(&self, of: &str) -> Option<u64> {
        self.estimate_by(&entry_id(of, ""), STARTUP_HASH)
    }

    /// On how many threads sharded task `of`'s runner runs a shard's
    /// tests, if its reports said (at least 1, at most
    /// [`shard_schedule::MAX_THREADS`]).
    ///
    /// [`shard_schedule::MAX_THREADS`]: crate::plan::shard_schedule::MAX_THREADS
    pub fn threads(&self, of: &str) -> Option<u32> {
        let most = u64::from(crate::plan::shard_schedule::MAX_THREADS);
        let n = self.estimate_by(&entry_id(of, ""), THREADS_HASH)?;
        u32::try_from(n.clamp(1, most)).ok()
    }

    /// The entries of sharded task `of` that `groups` puts in another
    /// shard than its last recorded grouping did.
    pub fn moved(&self, of: &str, groups: &[Vec<String>]) -> Vec<String> {
        let Some((last, _)) = self.groupings.get(of) else {
            return Vec::new();
        };
        let was: HashMap<&str, usize> = last
            .iter()
            .enumerate()
            .flat_map(|(k, g)| g.iter().map(move |e| (e.as_str(), k)))
            .collect();
        // A part that moved is named as its entry (once): the name a
        // person knows.
        let mut moved: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let shown = groups
            .iter()
            .enumerate()
            .flat_map(|(k, g)| g.iter().map(move |e| (e, k)))
            .filter(|(e, k)| was.get(e.as_str()).is_some_and(|w| w != k))
            .map(|(e, _)| crate::plan::shard_parts::whole(e));
        for entry in shown {
            if seen.insert(entry) {
                moved.push(entry.to_string());
            }
        }
        moved
    }

    /// Adds the durations of sharded tasks' entries (`samples`: task,
    /// entry, milliseconds) and the groupings the run used (`groupings`:
    /// task, its shards' entries) to the history of the repository at
    /// `workdir`, as [`Self::add_run`] does tasks'.
    pub fn add_entries(
        workdir: &Path,
        samples: &[(String, String, u64)],
        groupings: &[(String, Vec<Vec<String>>)],
        (startups, threads, profiles): Told<'_>,
    ) -> Result<(), DurationsError> {
        let told = !(startups.is_empty() && threads.is_empty() && profiles.is_empty());
        if samples.is_empty() && groupings.is_empty() && !told {
            return Ok(());
        }
        let mut history = Self::load(workdir);
        for (of, entry, profile) in profiles {
            let id = entry_id(of, entry);
            if id.len() <= MAX_ID {
                let seen = history.generation + 1;
                let told = match history.profiles.get(&id) {
                    Some((older, _)) => older.told(profile),
                    None => profile.clone(),
                };
                history.profiles.insert(id, (told, seen));
            }
        }
        for (of, entry, ms) in samples.iter().take(MAX_ENTRIES) {
            history.record_by(&entry_id(of, entry), ENTRY_HASH, *ms, None);
        }
        for (of, ms) in startups {
            history.record_by(&entry_id(of, ""), STARTUP_HASH, *ms, None);
        }
        for (of, n) in threads {
            history.record_by(&entry_id(of, ""), THREADS_HASH, u64::from(*n), None);
        }
        for (of, groups) in groupings.iter().filter(|(of, _)| of.len() <= MAX_ID) {
            let seen = history.generation + 1;
            history.groupings.insert(of.clone(), (groups.clone(), seen));
        }
        history.generation += 1;
        history.evict();
        let text = history.fitted_json()?;
        State::create(workdir)?.replace_file(&[crate::layout::DURATIONS], &text)?;
        Ok(())
    }
}

/// What an entry's collection is taken to cost however small its file:
/// its module and its node, counted as this many bytes more source.
pub const FLOOR_BYTES: u64 = 1024;

/// What a shard's test report tells of its time (`ms`): each entry's own
/// tests' times, when its cases tell which entry some belong to (their
/// files, or their module paths: `tests.test_a` for `tests/test_a.py`).
/// The cases are matched to entries once per shard: its start-up, its
/// entries' times and a split entry's profile are all learned from this.
pub struct Accounted {
    ms: u64,
    entries: usize,
    /// Each entry's own tests' times; `None` when no case is an entry's.
    own: Option<Vec<u64>>,
    /// How many of the report's cases are each entry's.
    counts: Vec<u32>,
    /// Each entry's cases' times in the order its runner lists its tests
    /// (empty when not known): what a split entry's profile learns test
    /// by test ([`crate::plan::shard_parts::per_test`]).
    each: Vec<Vec<u64>>,
    /// How long the cases ran together and their summed times (as
    /// `(ran, summed)`), when every case says when it began: a runner
    /// that runs tests on several threads at once (nextest, by default one
    /// a CPU) takes less time than its tests' summed times, one that
    /// spaces them out more.
    ratio: Option<(u64, u64)>,
    /// The most of its cases that ran at once ([`at_once`]).
    threads: Option<u32>,
}

impl Accounted {
    /// A shard of `entries` (Rust test files of `packages`) that took
    /// `ms`, its report's `cases`.
    pub fn new(
        (entries, packages): (&[String], &crate::plan::cargo::Packages),
        ms: u64,
        cases: &[swarm_protocol::TestCase],
    ) -> Self {
        let index = crate::test_attempts::Entries::new(entries, packages);
        let mut of_entry = vec![0u64; entries.len()];
        let mut counts = vec![0u32; entries.len()];
        let mut named: Vec<Vec<(&str, u64)>> = vec![Vec::new(); entries.len()];
        let mut matched = false;
        // Never longer than the shard took: the report's clock is the
        // runner's, and what it says is a hint.
        let ratio = ran_together(cases).map(|(ran, summed)| (ran.min(ms), summed));
        for case in cases {
            if let Some(at) = index.of(case) {
                of_entry[at] = of_entry[at].saturating_add(case.time_ms);
                counts[at] = counts[at].saturating_add(1);
                named[at].push((case.name.as_str(), case.time_ms));
                matched = true;
            }
        }
        // Cases past the kept ones' cap are counted in the report, not
        // kept: their entries' counts would be short.
        if cases.len() >= crate::test_report::MAX_CASES {
            counts.fill(0);
            named.iter_mut().for_each(Vec::clear);
        }
        // A report gives the cases as they ran or ended, not in the list's
        // order: nextest's as its threads ended them, pytest's as it ran
        // them, which pytest-xdist (as its workers end them) and
        // random-order plugins change with no sign in the report. A Rust
        // test file's tests are listed by name (libtest and nextest both
        // sort them), so by name they are in its list's order again; other
        // entries' order is not known, and their tests are not told apart
        // (a time taken as another test's would mislead every grouping).
        let each = named
            .into_iter()
            .zip(entries)
            .map(|(mut cases, entry)| {
                if !crate::plan::selection::entry_file(entry).ends_with(".rs") {
                    return Vec::new();
                }
                cases.sort_by(|a, b| a.0.cmp(b.0));
                cases.into_iter().map(|(_, ms)| ms).collect()
            })
            .collect();
        Self {
            ms,
            entries: entries.len(),
            own: matched.then_some(of_entry),
            counts,
            each,
            ratio,
            threads: at_once(cases),
        }
    }

    /// On how many threads the shard's runner ran its tests, when its
    /// report says when each began: the most that ran at once.
    pub fn threads(&self) -> Option<u32> {
        self.threads
    }

    /// The `k`th entry's cases' times in the order its runner lists its
    /// tests (empty: not known).
    pub fn each(&self, k: usize) -> &[u64] {
        self.each.get(k).map_or(&[], Vec::as_slice)
    }

    /// How many of the report's test cases are the `k`th entry's (0:
    /// not known, the report held more than were kept).
    pub fn count(&self, k: usize) -> u32 {
        self.counts.get(k).copied().unwrap_or(0)
    }

    /// How long the shard's cases ran together and their summed times,
    /// when the report says when each began (see [`entry_times`]).
    ///
    /// [`entry_times`]: Self::entry_times
    pub fn ratio(&self) -> Option<(u64, u64)> {
        self.ratio
    }

    /// What each entry's own tests took, nothing else of the shard's time
    /// in it; `None` when the report tells no entry's tests.
    pub fn own(&self) -> Option<&[u64]> {
        self.own.as_deref()
    }

    /// The entries' cases' summed times, when they account for some.
    fn matched(&self) -> Option<u64> {
        self.own
            .as_deref()
            .map(|own| own.iter().sum())
            .filter(|&ms| ms > 0)
    }

    /// What of the shard's time the entries' cases took as they ran: their
    /// summed times, or as much of the time every case ran together (the
    /// first one's start to the last one's end) as their share of the
    /// summed times, when the report says when each began.
    fn ran(&self) -> Option<u64> {
        let matched = self.matched()?;
        // No more than the span, itself no longer than the shard: the
        // entries' cases are among those summed.
        Some(match self.ratio {
            Some((ran, summed)) => {
                (u128::from(matched) * u128::from(ran) / u128::from(summed)) as u64
            }
            None => matched,
        })
    }

    /// What of the shard's time its cases do not account for (start-up,
    /// collection), when they account for some.
    pub fn unaccounted(&self) -> Option<u64> {
        self.ran().map(|ran| self.ms.saturating_sub(ran))
    }

    /// How long each entry took, of the shard's time: its own tests' times
    /// and a share of the rest but `startup` (what every shard of its task
    /// pays once, whatever its entries); else the shard's time split
    /// evenly. The rest is what collecting the entries cost (pytest
    /// imports and compiles a file, and makes an item of each of its
    /// tests): shared in proportion to the entries' `sizes` in bytes (each
    /// with [`FLOOR_BYTES`] more) when every entry's is known, else evenly.
    /// On Jinja2's suite a file's collection took about 4 ms a KiB of it,
    /// from nothing to 150 ms (BENCHMARKS section 28); an even share gave a
    /// 150-byte file what a 35 KiB one cost.
    ///
    /// When the report says when each case began, an entry's own time is
    /// its tests' summed times scaled by `scale`, how long the cases of all
    /// its task's shards ran together over their summed times (see
    /// [`Self::ratio`]): with tests run on two threads, about half their
    /// sum. Summed, the tests of a shard on two threads took more than the
    /// shard did, its start-up was learned as nothing, and a part of a
    /// split entry (which pays a start-up and a listing) looked free. The
    /// scale is the task's, not each shard's: how well a shard's tests
    /// shared its threads turns on the grouping (a slow test last in its
    /// list runs alone), not on its entries, and taken shard by shard it
    /// made an entry's time turn on the shard it last ran in.
    pub fn entry_times(
        &self,
        startup: u64,
        sizes: &[Option<u64>],
        scale: Option<(u64, u64)>,
    ) -> Vec<u64> {
        let n = self.entries.max(1) as u64;
        let (Some(own), Some(ran)) = (self.own.as_deref(), self.ran()) else {
            return vec![self.ms / n; self.entries];
        };
        let rest = self.ms.saturating_sub(ran).saturating_sub(startup);
        let weights: Option<Vec<u64>> = match sizes.len() == own.len() {
            true => sizes.iter().map(|s| s.map(|s| s + FLOOR_BYTES)).collect(),
            false => None,
        };
        let weights = weights.unwrap_or_else(|| vec![1; own.len()]);
        let total: u64 = weights.iter().sum::<u64>().max(1);
        // The task's scale, else this shard's own; none for a report that
        // does not say when its cases began.
        let (by, of) = match self.ratio {
            Some(own) => scale.filter(|&(_, of)| of > 0).unwrap_or(own),
            None => (1, 1),
        };
        let as_ran = |t: u64| (u128::from(t) * u128::from(by) / u128::from(of)) as u64;
        own.iter()
            .zip(weights)
            .map(|(t, w)| as_ran(*t) + (rest as u128 * w as u128 / total as u128) as u64)
            .collect()
    }
}

/// How long `cases` ran together (the first one's start to the last one's
/// end) and their summed times, when every one that took any time says
/// when it began and they took some.
fn ran_together(cases: &[swarm_protocol::TestCase]) -> Option<(u64, u64)> {
    let (mut first, mut last, mut summed) = (u64::MAX, 0u64, 0u64);
    for case in cases {
        // A case that took no time and says no start (a skipped one, as
        // some runners write it) changes neither.
        let Some(start) = case.started_ms else {
            match case.time_ms {
                0 => continue,
                _ => return None,
            }
        };
        first = first.min(start);
        last = last.max(start.saturating_add(case.time_ms));
        summed = summed.saturating_add(case.time_ms);
    }
    (summed > 0 && last > first).then(|| (last - first, summed))
}

/// The most of `cases` that ran at once, counted at each one's middle,
/// when every one that took any time says when it began (as
/// [`ran_together`] asks). A report's times are rounded (nextest's start
/// is cut to the millisecond, its time rounded to one), so that a test
/// seems to begin up to about a millisecond and a half before the last one
/// on its thread ended: each case is taken as that much shorter at both
/// ends, and one too short to be told so (under [`TOLD_MS`]) is not
/// counted. At most [`crate::plan::shard_schedule::MAX_THREADS`].
fn at_once(cases: &[swarm_protocol::TestCase]) -> Option<u32> {
    // Doubled, so that a middle and the slack are whole numbers.
    const SLACK: u64 = 3;
    if cases
        .iter()
        .any(|c| c.time_ms > 0 && c.started_ms.is_none())
    {
        return None;
    }
    let spans: Vec<(u64, u64)> = cases
        .iter()
        .filter(|c| c.time_ms >= TOLD_MS)
        .filter_map(|c| {
            let start = c.started_ms?.saturating_mul(2);
            let end = start.saturating_add(c.time_ms.saturating_mul(2));
            Some((start.saturating_add(SLACK), end.saturating_sub(SLACK)))
        })
        .collect();
    let mut starts: Vec<u64> = spans.iter().map(|s| s.0).collect();
    let mut ends: Vec<u64> = spans.iter().map(|s| s.1).collect();
    starts.sort_unstable();
    ends.sort_unstable();
    // Running at `at`: begun at or before it, not ended at or before it.
    let running = |at: u64| {
        let begun = starts.partition_point(|&s| s <= at);
        let ended = ends.partition_point(|&e| e <= at);
        begun.saturating_sub(ended)
    };
    let most = spans
        .iter()
        .map(|&(start, end)| running(start + end.saturating_sub(start) / 2))
        .max()?;
    let cap = crate::plan::shard_schedule::MAX_THREADS;
    Some(u32::try_from(most).unwrap_or(cap).clamp(1, cap))
}

/// The shortest a case's time must be for [`at_once`] to count it: its
/// rounding is a millisecond and a half at each end.
const TOLD_MS: u64 = 4;

/// The median of `values` (the lower of the middle two of an even count,
/// so that it is one of them).
fn median(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

#[cfg(test)]
#[path = "durations_tests.rs"]
pub(crate) mod tests;
