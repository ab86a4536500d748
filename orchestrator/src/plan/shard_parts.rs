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

/// `entries` (their expected times `weights`) for `n` shards, each entry
/// expected to take longer than the shards' mean load split into parts
/// when that shortens the longest shard by more than [`SPLIT_GAIN`]
/// percent, into as many (at most `n`) as make the longest shard the
/// shortest; each part is expected to take its share plus `listing`
/// (what a shard's listing of the tests costs: a runner's start-up),
/// which every part pays and which loads the shards with more work.
pub fn split_long(
    entries: &[String],
    weights: &[u64],
    n: usize,
    listing: u64,
) -> (Vec<String>, Vec<u64>) {
    let total: u64 = weights.iter().sum();
    let mean = total / n.max(1) as u64;
    // The least the longest shard can take with the entry in `k` parts:
    // a part, or the mean of the load its listings add to.
    let bound = |w: u64, k: u64| -> u64 {
        let part = match k {
            1 => w,
            k => w.div_ceil(k) + listing,
        };
        part.max((total + (k - 1) * listing) / n.max(1) as u64)
    };
    let mut out = (
        Vec::with_capacity(entries.len()),
        Vec::with_capacity(weights.len()),
    );
    for (entry, &w) in entries.iter().zip(weights) {
        let k = match n >= 2 && w > mean {
            true => (1..=n as u64)
                .min_by_key(|&k| (bound(w, k), k))
                .unwrap_or(1),
            false => 1,
        };
        let worth = k > 1 && bound(w, k) * 100 < bound(w, 1) * (100 - SPLIT_GAIN);
        if !worth {
            out.0.push(entry.clone());
            out.1.push(w);
            continue;
        }
        for j in 0..k as u32 {
            let (lo, hi) = (j * WHOLE / k as u32, (j + 1) * WHOLE / k as u32);
            out.0.push(named(entry, &[(lo, hi)]));
            out.1.push(w.div_ceil(k) + listing);
        }
    }
    out
}

/// How much shorter (in percent) the longest shard must be expected to
/// run for an entry to be split into parts: each part lists the tests
/// again, and a split for a few percent is within one run's noise.
pub const SPLIT_GAIN: u64 = 10;

/// `name` as the one-range parts it was made of (a part of many ranges,
/// [`merged`]), or itself.
pub fn singles(name: &str) -> Vec<String> {
    match parse(name) {
        Some(part) if part.ranges.len() > 1 => part
            .ranges
            .iter()
            .map(|r| named(part.entry, std::slice::from_ref(r)))
            .collect(),
        _ => vec![name.to_string()],
    }
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
                *earlier = named(part.entry, &ranges);
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
    let mut seen: Vec<(&str, Vec<(u32, u32)>)> = Vec::new();
    for part in groups.iter().flatten().filter_map(|n| parse(n)) {
        match seen.iter_mut().find(|(e, _)| *e == part.entry) {
            Some((_, ranges)) => ranges.extend(part.ranges),
            None => seen.push((part.entry, part.ranges)),
        }
    }
    for (entry, mut ranges) in seen {
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
/// (`mycrate::quick adds` for `tests/quick.rs`: its test binary, named
/// after the file, a space and the test).
fn listed_test(entry: &str) -> String {
    let prefix = sh_quote(&format!("{entry}::"));
    let nextest = entry
        .strip_suffix(".rs")
        .map(|stem| stem.rsplit('/').next().unwrap_or(stem))
        .map(|stem| {
            format!(
                " *{}*) __swarm_t={prefix}\"${{__swarm_l#* }}\";;",
                sh_quote(&format!("::{stem} "))
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
pub fn script(template: &str, list: &str, entries: &[String]) -> String {
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
        let test = listed_test(part.entry);
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
        let within: Vec<String> = part
            .ranges
            .iter()
            .map(|(lo, hi)| {
                format!("{{ [ \"$__swarm_p\" -ge {lo} ] && [ \"$__swarm_p\" -lt {hi} ]; }}")
            })
            .collect();
        s.push_str(&format!(
            "__swarm_i=0\n\
             while IFS= read -r __swarm_l; do {test} if [ -n \"$__swarm_t\" ]; then \
             __swarm_p=$((__swarm_i * {WHOLE} / __swarm_n)); \
             if {}; then set -- \"$@\" \"$__swarm_t\"; fi; \
             __swarm_i=$((__swarm_i + 1)); fi; done < \"$__swarm_listed\"\n",
            within.join(" || ")
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
