//! A task's tests across its attempts (`junit` with `retries`): each
//! attempt's report folded into one record per test, so that a test that
//! failed and then passed is `flaky` (never a plain pass) and one that
//! failed every time keeps each earlier failure; the plan's quarantine
//! applied to them; and which tests (or entries) the next attempt of a
//! shard runs again.
//!
//! What gates is decided here too: a failing test the quarantine holds
//! does not, a flaky one does only under `flaky = "fail"`.

use std::collections::HashMap;

use swarm_protocol::{TestCase, TestCounts, TestOutcome, TestRerun};

use crate::plan::quarantine::Quarantine;
use crate::test_report::{self, Beyond, Parsed};

/// Every test of a task's attempts so far, one record each.
#[derive(Debug, Default)]
pub struct History {
    cases: Vec<TestCase>,
    /// The attempt each case was last seen in.
    seen_in: Vec<u32>,
    /// Each case's place in `cases`, by class name, name and file.
    at: HashMap<Key, usize>,
    /// The cases past the cap of the last attempt that ran every test.
    beyond: Beyond,
    /// How many tests the last attempt ran again (0: all of them).
    reran: u32,
    /// Quarantine entries past their day that hold a failing test.
    expired: Vec<String>,
}

/// What one test is known by across attempts: its class name, name and
/// file (two files may hold tests of one name, as jest-junit names them).
type Key = (String, String, String);

fn key(c: &TestCase) -> Key {
    (c.classname.clone(), c.name.clone(), c.file.clone())
}

impl History {
    /// The tests as a run left them after attempt `attempt` (its kept
    /// cases, every attempt's folded), for a resumed task to go on from.
    pub fn resumed(attempt: u32, cases: Vec<TestCase>) -> Self {
        let at = cases.iter().enumerate().map(|(i, c)| (key(c), i)).collect();
        Self {
            seen_in: vec![attempt; cases.len()],
            cases,
            at,
            ..Self::default()
        }
    }

    /// Says attempt `attempt` ran again only `reran` tests (or entries)
    /// that failed before (0: all of them), whether or not it left a report.
    pub fn ran(&mut self, reran: u32) {
        self.reran = reran;
    }

    /// Folds in attempt `attempt`'s report, which ran again only the tests
    /// that failed before when `reran` is not 0. A test that failed stays
    /// failed unless it passed since (then it is flaky): a skip proves
    /// nothing. Two cases of one key in one report are two tests.
    pub fn add(&mut self, attempt: u32, parsed: Parsed, reran: u32) {
        if reran == 0 {
            self.beyond = parsed.beyond;
        }
        self.ran(reran);
        for mut case in parsed.cases {
            let k = key(&case);
            let known = self
                .at
                .get(&k)
                .copied()
                .filter(|&i| self.seen_in[i] != attempt);
            let Some(i) = known else {
                self.at.insert(k, self.cases.len());
                self.cases.push(case);
                self.seen_in.push(attempt);
                continue;
            };
            let before = &mut self.cases[i];
            let mut reruns = std::mem::take(&mut before.reruns);
            let failed_before = before.outcome == TestOutcome::Failed;
            if failed_before && case.outcome == TestOutcome::Skipped {
                // Still failing, as far as anything shows: not seen to pass.
                before.reruns = reruns;
                continue;
            }
            if failed_before {
                reruns.push(TestRerun {
                    attempt: self.seen_in[i],
                    time_ms: before.time_ms,
                    message: std::mem::take(&mut before.message),
                    text: std::mem::take(&mut before.text),
                });
            }
            if case.outcome == TestOutcome::Passed && !reruns.is_empty() {
                case.outcome = TestOutcome::Flaky;
            }
            case.reruns = reruns;
            *before = case;
            self.seen_in[i] = attempt;
        }
    }

    /// Marks each failing or flaky test the quarantine holds for task
    /// `task` on `today` (year, month, day); an entry past its day holds
    /// nothing and is said as expired.
    pub fn quarantine(&mut self, entries: &[Quarantine], task: &str, today: (u16, u8, u8)) {
        self.expired.clear();
        for case in &mut self.cases {
            case.quarantined = None;
            if !matches!(case.outcome, TestOutcome::Failed | TestOutcome::Flaky) {
                continue;
            }
            let name = test_report::name(case);
            let Some(entry) = entries.iter().find(|q| q.holds(task, &name)) else {
                continue;
            };
            match entry.expired(today) {
                false => case.quarantined = Some(entry.note()),
                true => {
                    let (y, m, d) = entry.review_by;
                    let said = format!(
                        "{name}: its quarantine ended {y:04}-{m:02}-{d:02} (owner {}: {})",
                        entry.owner, entry.reason
                    );
                    if case.outcome == TestOutcome::Failed && !self.expired.contains(&said) {
                        self.expired.push(said);
                    }
                }
            }
        }
    }

    /// Every test, one record each.
    pub fn cases(&self) -> &[TestCase] {
        &self.cases
    }

    /// The counts of every test so far, its cases kept at `kept`.
    pub fn counts(&self, kept: String) -> TestCounts {
        TestCounts {
            expired: self.expired.clone(),
            reran: self.reran,
            ..test_report::counts_of(&self.cases, &self.beyond, kept)
        }
    }

    /// Every test that failed (in whichever attempt it last ran) and
    /// gates (the quarantine does not hold it); `None` when a failing test
    /// is past the cap and so is not known by name.
    pub fn gating_failures(&self) -> Option<Vec<&TestCase>> {
        if self.beyond.failed > 0 {
            return None;
        }
        Some(
            self.cases
                .iter()
                .filter(|c| c.outcome == TestOutcome::Failed && c.quarantined.is_none())
                .collect(),
        )
    }

    /// Tests that failed in an attempt before `attempt` and gate, and that
    /// attempt `attempt` did not show passing (it did not run them, or left
    /// no report): an attempt that passed with such a test left proves
    /// nothing of it.
    pub fn unproven(&self, attempt: u32) -> usize {
        self.cases
            .iter()
            .zip(&self.seen_in)
            .filter(|(c, seen)| {
                c.outcome == TestOutcome::Failed && c.quarantined.is_none() && **seen < attempt
            })
            .count()
            + match self.reran {
                0 => 0,
                _ => self.beyond.failed as usize,
            }
    }

    /// Whether every one of `entries` has a test case in the report so far
    /// (`Entries::of`): a runner that stopped at its first failure (pytest's
    /// `-x`, nextest's fail-fast) leaves entries out, and what did not run
    /// cannot be known to pass.
    pub fn covers(&self, entries: &Entries<'_>) -> bool {
        let mut seen = vec![false; entries.len()];
        for c in &self.cases {
            if let Some(at) = entries.of(c) {
                seen[at] = true;
            }
        }
        seen.iter().all(|s| *s)
    }

    /// Whether attempt `attempt` failed only tests the quarantine holds:
    /// at least one, and no other.
    pub fn only_quarantined_failed(&self, attempt: u32) -> bool {
        let failed_in =
            |c: &(&TestCase, &u32)| *c.1 == attempt && c.0.outcome == TestOutcome::Failed;
        let mut failed = self.cases.iter().zip(&self.seen_in).filter(failed_in);
        self.beyond.failed == 0
            && failed.clone().next().is_some()
            && failed.all(|(c, _)| c.quarantined.is_some())
    }

    /// The flaky tests that gate (the quarantine does not hold them).
    pub fn gating_flaky(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.outcome == TestOutcome::Flaky && c.quarantined.is_none())
            .count()
    }

    /// Why the tests fail a task whose attempt `attempt` passed: tests that
    /// failed before and this attempt did not show passing, or (when
    /// `flaky = "fail"`, `fails_on_flaky`) flaky tests. The one wording
    /// for a task on this machine and on a cluster.
    pub fn failing_reason(&self, attempt: u32, fails_on_flaky: bool) -> Option<String> {
        self.unproven_reason(attempt)
            .or_else(|| fails_on_flaky.then(|| self.flaky_reason()).flatten())
    }

    /// Tests that failed before attempt `attempt` and it did not show
    /// passing ([`Self::unproven`]), the first three named.
    pub fn unproven_reason(&self, attempt: u32) -> Option<String> {
        let n = self.unproven(attempt);
        (n > 0).then(|| {
            format!(
                "{n} test{} that failed before did not pass in this attempt (it did not run them, or its report does not show them): {}",
                if n == 1 { "" } else { "s" },
                self.named(TestOutcome::Failed)
            )
        })
    }

    /// The flaky tests that gate, as `flaky = "fail"` says them, the first
    /// three named.
    pub fn flaky_reason(&self) -> Option<String> {
        let n = self.gating_flaky();
        (n > 0).then(|| {
            format!(
                "{n} flaky test{} (failed, then passed when run again) and `flaky = \"fail\"`: {}",
                if n == 1 { "" } else { "s" },
                self.named(TestOutcome::Flaky)
            )
        })
    }

    /// The first three gating tests whose outcome is `outcome`, by name.
    fn named(&self, outcome: TestOutcome) -> String {
        let names: Vec<String> = self
            .cases
            .iter()
            .filter(|c| c.outcome == outcome && c.quarantined.is_none())
            .take(3)
            .map(test_report::name)
            .collect();
        names.join(", ")
    }
}

/// The largest kept test cases file read back from a node's record.
const MAX_KEPT: u64 = 256 << 20;

/// Task `task`'s tests after attempt `attempt` on a cluster, whose cases
/// its node kept (they came back with its record into the run's logs,
/// `run_dir`): folded with the newest earlier attempt's fold there is (each
/// attempt ran on a node of its own), the quarantine applied, kept again in
/// place of the attempt's own, and counted; `None` when no attempt left
/// any. With them, why an attempt whose command passed did not pass after
/// all, as locally: a test that failed before and was not seen passing
/// since, or a flaky one under `flaky = "fail"` (`fails_on_flaky`).
#[allow(
    clippy::disallowed_methods,
    reason = "the task's kept test cases, in the run's logs (swarm's own)"
)]
pub fn fold_kept(
    run_dir: &std::path::Path,
    task: &str,
    attempt: u32,
    quarantine: &[Quarantine],
    fails_on_flaky: bool,
) -> Option<(TestCounts, Option<String>)> {
    use std::io::Read as _;
    let read = |a: u32| -> Option<Vec<TestCase>> {
        let file = std::fs::File::open(crate::layout::tests_path(run_dir, task, a)).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_KEPT).read_to_end(&mut bytes).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let kept = crate::layout::tests_path(run_dir, task, attempt);
    let before = (1..attempt).rev().find_map(|a| Some((a, read(a)?)));
    let this = read(attempt);
    if before.is_none() && this.is_none() {
        return None;
    }
    let mut history = match before {
        Some((a, cases)) => History::resumed(a, cases),
        None => History::default(),
    };
    if let Some(cases) = this {
        let parsed = Parsed {
            cases,
            beyond: Beyond::default(),
        };
        history.add(attempt, parsed, 0);
    }
    history.quarantine(quarantine, task, today());
    if let Ok(json) = serde_json::to_vec(history.cases()) {
        let _ = std::fs::write(&kept, json);
    }
    let why = history.failing_reason(attempt, fails_on_flaky);
    Some((history.counts(kept.display().to_string()), why))
}

/// A shard's entries, to find the entry a test case is of.
pub struct Entries<'e> {
    /// The entries, a part of one (`plan::shard_parts`) as the entry.
    entries: Vec<&'e str>,
    /// Each entry as a module path: `tests/test_a.py` -> `tests.test_a`.
    stems: Vec<String>,
    /// Each entry's nextest binary id, where its Cargo package is known
    /// (`plan::cargo`): `a::quick` for `crates/a/tests/quick.rs`.
    binaries: Vec<Option<String>>,
}

impl<'e> Entries<'e> {
    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `entries` (a shard's), Rust test files told apart by their
    /// `packages`.
    pub fn new(entries: &'e [String], packages: &crate::plan::cargo::Packages) -> Self {
        let stem = |e: &str| -> String {
            let e = e.strip_prefix("./").unwrap_or(e);
            e.rsplit_once('.')
                .filter(|(_, ext)| !ext.contains('/'))
                .map_or(e, |(stem, _)| stem)
                .replace('/', ".")
        };
        let entries: Vec<&str> = entries
            .iter()
            .map(|e| crate::plan::shard_parts::whole(e))
            .collect();
        Self {
            stems: entries.iter().map(|e| stem(e)).collect(),
            binaries: entries
                .iter()
                .map(|e| {
                    crate::plan::cargo::binary_id(crate::plan::selection::entry_file(e), packages)
                })
                .collect(),
            entries,
        }
    }

    /// The entry `case` is of: the one its `file` names, else the one
    /// whose module path its class name is or starts (`tests.test_a`,
    /// `tests.test_a.TestX` for `tests/test_a.py`), else the Rust test file
    /// whose nextest binary id it is (`a::quick` for `crates/a/tests/quick.rs`
    /// of package `a`), else one of no known package whose test binary it
    /// names (`mycrate::quick` for `tests/quick.rs`).
    pub fn of(&self, case: &TestCase) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| !case.file.is_empty() && *e == case.file)
            .or_else(|| self.by_module(case).map(|(at, _)| at))
            .or_else(|| {
                self.binaries
                    .iter()
                    .position(|id| id.as_deref() == Some(case.classname.as_str()))
            })
            .or_else(|| {
                let (_, binary) = case.classname.rsplit_once("::")?;
                self.entries.iter().zip(&self.binaries).position(|(e, id)| {
                    id.is_none() && crate::plan::cargo::rust_test_binary(e) == Some(binary)
                })
            })
    }

    /// The entry whose module path `case`'s class name starts, and what
    /// follows it (`""`, or `.TestX`).
    fn by_module<'c>(&self, case: &'c TestCase) -> Option<(usize, &'c str)> {
        self.stems.iter().enumerate().find_map(|(at, s)| {
            let rest = case.classname.strip_prefix(s.as_str())?;
            (!s.is_empty() && (rest.is_empty() || rest.starts_with('.'))).then_some((at, rest))
        })
    }

    /// What the next attempt of the shard runs to run `failing` again: a
    /// pytest node id for a test of a `.py` entry
    /// (`tests/test_a.py::TestX::test_b[1]`); for a test of a Rust file
    /// whose task lists its tests (`listed`: its command takes the
    /// `<entry>::<test>` ids `list_tests` gives its parts) that id
    /// (`tests/quick.rs::m::breaks`); else the test's entry (a file runs
    /// whole where the runner takes no test id); each once, in order.
    /// `None` when a test belongs to no entry (the shard runs whole again).
    pub fn rerun(&self, failing: &[&TestCase], listed: bool) -> Option<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for case in failing {
            let id = match self.by_module(case) {
                Some((at, rest)) if self.entries[at].ends_with(".py") => {
                    let mut id = self.entries[at].to_string();
                    for class in rest.split('.').filter(|c| !c.is_empty()) {
                        id.push_str("::");
                        id.push_str(class);
                    }
                    id.push_str("::");
                    id.push_str(&case.name);
                    id
                }
                _ => {
                    let entry = self.entries[self.of(case)?];
                    match listed && entry.ends_with(".rs") && !case.name.is_empty() {
                        true => format!("{entry}::{}", case.name),
                        false => entry.to_string(),
                    }
                }
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Some(out)
    }
}

/// Today (UTC) as (year, month, day).
pub fn today() -> (u16, u8, u8) {
    let text = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let num = |r: std::ops::Range<usize>| text.get(r).and_then(|t| t.parse::<u16>().ok());
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => (y, m as u8, d as u8),
        // humantime always writes the date first; never reached.
        _ => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(classname: &str, name: &str, outcome: TestOutcome) -> TestCase {
        TestCase {
            name: name.into(),
            classname: classname.into(),
            file: String::new(),
            time_ms: 10,
            started_ms: None,
            outcome,
            message: match outcome {
                TestOutcome::Failed => "boom".into(),
                _ => String::new(),
            },
            text: String::new(),
            reruns: Vec::new(),
            quarantined: None,
        }
    }

    fn parsed(cases: Vec<TestCase>) -> Parsed {
        Parsed {
            cases,
            beyond: Beyond::default(),
        }
    }

    #[test]
    fn a_test_that_fails_then_passes_is_flaky_and_one_that_fails_again_keeps_each_failure() {
        use TestOutcome::*;
        let mut h = History::default();
        h.add(
            1,
            parsed(vec![
                case("t.a", "ok", Passed),
                case("t.a", "flaky", Failed),
                case("t.b", "broken", Failed),
            ]),
            0,
        );
        assert_eq!(
            h.gating_failures().unwrap().len(),
            2,
            "both failures gate after the first attempt"
        );
        h.add(
            2,
            parsed(vec![
                case("t.a", "flaky", Passed),
                case("t.b", "broken", Failed),
            ]),
            2,
        );
        let c = h.counts("k".into());
        assert_eq!((c.passed, c.failed, c.flaky, c.reran), (1, 1, 1, 2));
        assert_eq!(c.flaky_tests, ["t.a::flaky"]);
        assert_eq!(c.failing, ["t.b::broken"]);
        let broken = &h.cases()[2];
        assert_eq!(broken.reruns.len(), 1);
        assert_eq!(
            (broken.reruns[0].attempt, broken.reruns[0].message.as_str()),
            (1, "boom")
        );
        assert_eq!(h.cases()[1].reruns[0].attempt, 1);
        // Only what still fails is run again.
        let names: Vec<&str> = h
            .gating_failures()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["broken"]);
        assert_eq!(h.gating_flaky(), 1);
        assert_eq!(h.unproven(2), 0, "attempt 2 saw `broken` fail itself");
    }

    #[test]
    fn a_failure_not_seen_passing_since_is_unproven_and_a_skip_proves_nothing() {
        use TestOutcome::*;
        let mut h = History::default();
        h.add(
            1,
            parsed(vec![case("t", "a", Failed), case("t", "b", Failed)]),
            0,
        );
        // Attempt 2 ran both again (`-x`): `a` failed and stopped it, `b`
        // never ran. Both still gate, `b` unproven by attempt 2.
        h.add(2, parsed(vec![case("t", "a", Failed)]), 2);
        assert_eq!(h.gating_failures().unwrap().len(), 2);
        assert_eq!(h.unproven(2), 1);
        // Attempt 3 skipped `a` and passed `b`: `a` is still failing.
        h.add(
            3,
            parsed(vec![case("t", "a", Skipped), case("t", "b", Passed)]),
            2,
        );
        assert_eq!(h.cases()[0].outcome, Failed);
        assert_eq!(h.cases()[1].outcome, Flaky);
        assert_eq!(h.unproven(3), 1);
        // An attempt without a report says how many it ran all the same.
        h.ran(1);
        assert_eq!(h.counts(String::new()).reran, 1);
    }

    #[test]
    fn two_tests_of_one_name_in_one_report_are_two_tests() {
        use TestOutcome::*;
        let mut h = History::default();
        let mut a = case("Button", "renders", Failed);
        a.file = "a.test.js".into();
        let mut b = case("Button", "renders", Passed);
        b.file = "b.test.js".into();
        // Nor are two of one key in one report two attempts of one test.
        let same = case("Button", "renders", Passed);
        h.add(1, parsed(vec![a, b, same.clone(), same]), 0);
        let c = h.counts(String::new());
        assert_eq!((c.failed, c.passed, c.flaky), (1, 3, 0));
    }

    #[test]
    fn every_entry_must_have_a_test_in_the_report_to_be_covered() {
        use TestOutcome::*;
        let entries = vec!["tests/test_a.py".to_string(), "tests/test_b.py".into()];
        let e = Entries::new(&entries, &Default::default());
        let mut h = History::default();
        h.add(1, parsed(vec![case("tests.test_a", "x", Failed)]), 0);
        assert!(!h.covers(&e), "test_b never ran");
        h.add(2, parsed(vec![case("tests.test_b", "y", Passed)]), 0);
        assert!(h.covers(&e));
    }

    #[test]
    fn the_quarantine_holds_until_its_day_and_then_is_said_expired() {
        use TestOutcome::*;
        let q = |test: &str, day: u8| Quarantine {
            test: test.into(),
            prefix: false,
            task: None,
            owner: "@qa".into(),
            reason: "#12".into(),
            review_by: (2026, 11, day),
        };
        let mut h = History::default();
        h.add(
            1,
            parsed(vec![case("t", "net", Failed), case("t", "disk", Failed)]),
            0,
        );
        h.quarantine(
            &[q("t::net", 30), q("t::disk", 20)],
            "suite-1",
            (2026, 11, 29),
        );
        let c = h.counts(String::new());
        assert_eq!((c.failed, c.quarantined), (1, 1));
        assert_eq!(c.failing, ["t::disk"]);
        assert_eq!(
            c.expired,
            ["t::disk: its quarantine ended 2026-11-20 (owner @qa: #12)"]
        );
        assert!(!h.only_quarantined_failed(1), "an expired one gates");
        h.quarantine(
            &[q("t::net", 30), q("t::disk", 29)],
            "suite-1",
            (2026, 11, 29),
        );
        assert!(h.only_quarantined_failed(1), "held on its very day");
        assert_eq!(h.counts(String::new()).failed, 0);
        assert_eq!(h.gating_failures().unwrap().len(), 0);
    }

    #[test]
    fn a_failing_test_is_run_again_by_its_node_id_or_its_entry() {
        use TestOutcome::*;
        let entries = vec![
            "tests/test_a.py".to_string(),
            "tests/sub/test_b.py".into(),
            "spec/c.js".into(),
        ];
        let e = Entries::new(&entries, &Default::default());
        let failing = [
            case("tests.test_a", "test_x[1-2]", Failed),
            case("tests.sub.test_b.TestK", "test_y", Failed),
            case("spec.c", "adds", Failed),
            case("spec.c", "subs", Failed),
        ];
        let refs: Vec<&TestCase> = failing.iter().collect();
        assert_eq!(
            e.rerun(&refs, true).unwrap(),
            [
                "tests/test_a.py::test_x[1-2]",
                "tests/sub/test_b.py::TestK::test_y",
                "spec/c.js"
            ]
        );
        // `tests.test_ab` is not of `tests/test_a.py`.
        let stray = case("tests.test_ab", "t", Failed);
        assert_eq!(e.rerun(&[&stray], false), None);
    }

    /// A report cargo-nextest 0.9 wrote (`[profile.default.junit]`) for a
    /// crate `demo` with `tests/quick.rs` and `tests/more_things.rs`: each
    /// test binary is a suite and the class name of its tests.
    #[test]
    fn nextests_binaries_map_back_to_their_test_files() {
        use TestOutcome::Failed;
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="4" skipped="0" failures="1" errors="0" time="0.253">
    <testsuite name="demo" tests="1" skipped="0" errors="0" failures="0">
        <testcase name="tests::it_works" classname="demo" time="0.015"/>
    </testsuite>
    <testsuite name="demo::more_things" tests="1" skipped="0" errors="0" failures="0">
        <testcase name="other" classname="demo::more_things" time="0.019"/>
    </testsuite>
    <testsuite name="demo::quick" tests="2" skipped="0" errors="0" failures="1">
        <testcase name="adds" classname="demo::quick" time="0.010"/>
        <testcase name="breaks" classname="demo::quick" time="0.232">
            <failure message="panicked at tests/quick.rs:4:15" type="test failure with exit code 101">boom</failure>
        </testcase>
    </testsuite>
</testsuites>"#;
        let parsed = test_report::parse(xml).unwrap();
        let entries = vec!["tests/more_things.rs".to_string(), "tests/quick.rs".into()];
        let e = Entries::new(&entries, &Default::default());
        let of: Vec<Option<usize>> = parsed.cases.iter().map(|c| e.of(c)).collect();
        assert_eq!(of, [None, Some(0), Some(1), Some(1)]);
        // The failing test runs again as its file: cargo's runner takes no
        // test id in `{entries}`.
        let failing: Vec<&TestCase> = parsed
            .cases
            .iter()
            .filter(|c| c.outcome == Failed)
            .collect();
        assert_eq!(e.rerun(&failing, false).unwrap(), ["tests/quick.rs"]);
        // Unless the task lists its tests: its command takes their ids.
        assert_eq!(e.rerun(&failing, true).unwrap(), ["tests/quick.rs::breaks"]);
        // In a workspace, the binary id tells two packages' `quick.rs`
        // apart, whichever comes first.
        let in_workspace = vec![
            "crates/other/tests/quick.rs".to_string(),
            "crates/demo/tests/quick.rs".into(),
        ];
        let packages: crate::plan::cargo::Packages = [
            (
                "crates/other/tests/quick.rs".to_string(),
                "other".to_string(),
            ),
            ("crates/demo/tests/quick.rs".to_string(), "demo".to_string()),
        ]
        .into_iter()
        .collect();
        let w = Entries::new(&in_workspace, &packages);
        let of: Vec<Option<usize>> = parsed.cases.iter().map(|c| w.of(c)).collect();
        assert_eq!(of, [None, None, Some(1), Some(1)]);
        assert_eq!(
            w.rerun(&failing, true).unwrap(),
            ["crates/demo/tests/quick.rs::breaks"]
        );
        // And the shard's time goes to the files its tests are in, each
        // with half of what the tests do not account for (300 - 261 ms).
        let times =
            crate::durations::Accounted::new((&entries, &Default::default()), 300, &parsed.cases)
                .entry_times(0, &[], None);
        assert_eq!(times, [19 + 19, 242 + 19]);
    }
}
