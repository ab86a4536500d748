//! A task's own test report (`junit = "PATH"`), read as hostile input: a
//! JUnit XML file its command wrote (pytest's `--junitxml`, nextest's JUnit,
//! `tap-junit`), size-capped and reached without a link, made into the
//! test cases swarm keeps (`swarm_protocol::TestCase`) and counts. The
//! dialects differ: a `<testsuites>` root or a bare `<testsuite>`, suites
//! nested, `file` given or not, `<error>` beside `<failure>`; each is read.
//!
//! Everything kept of a report is capped, so that a report of any content
//! (up to [`MAX_REPORT`]) makes journal lines, terminal lines and pages of
//! a bounded size: each name, class name, file and message at
//! [`MAX_FIELD`] bytes, a failure's text at [`MAX_TEXT`] (both cut at a
//! character boundary and marked so), and [`MAX_CASES`] test cases kept
//! whole, the others only counted.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use swarm_protocol::{TestCase, TestCounts, TestOutcome};

/// Largest report read.
pub const MAX_REPORT: u64 = 64 << 20;

/// Most test cases kept of one report: past them, cases are counted (and
/// the first failing ones named) but not kept.
pub const MAX_CASES: usize = 100_000;

/// Bytes kept of a test's name, class name, file and message.
pub const MAX_FIELD: usize = 1024;

/// Bytes kept of a failure's text.
pub const MAX_TEXT: usize = 4096;

/// Failing tests named in the counts.
const NAMED: usize = 10;

/// A report's test cases: the first [`MAX_CASES`] kept, the rest counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub cases: Vec<TestCase>,
    /// The cases past [`MAX_CASES`], counted only.
    pub beyond: Beyond,
}

/// What the cases past [`MAX_CASES`] count.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Beyond {
    pub cases: usize,
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub time_ms: u64,
    /// The first failing ones' names, as many as the kept cases leave
    /// room for among the ten named.
    pub failing: Vec<String>,
}

impl Parsed {
    fn push(&mut self, case: TestCase) {
        if self.cases.len() < MAX_CASES {
            self.cases.push(case);
            return;
        }
        let b = &mut self.beyond;
        b.cases += 1;
        b.time_ms = b.time_ms.saturating_add(case.time_ms);
        match case.outcome {
            // A report as read holds no flaky test: only attempts
            // folded together do (`test_attempts`).
            TestOutcome::Passed | TestOutcome::Flaky => b.passed = b.passed.saturating_add(1),
            TestOutcome::Skipped => b.skipped = b.skipped.saturating_add(1),
            TestOutcome::Failed => {
                b.failed = b.failed.saturating_add(1);
                if b.failing.len() < NAMED {
                    b.failing.push(name(&case));
                }
            }
        }
    }
}

/// The test case being read: its status element's text is being read
/// while `in_status`, and `cut` says its text was cut already.
struct Open {
    case: TestCase,
    in_status: bool,
    cut: bool,
}

impl Open {
    /// Adds `more` to the failure's text, up to [`MAX_TEXT`] bytes and
    /// then the mark of a cut, once.
    fn append(&mut self, more: &str) {
        if self.cut {
            return;
        }
        let text = &mut self.case.text;
        let room = MAX_TEXT.saturating_sub(text.len());
        if more.len() <= room {
            text.push_str(more);
            return;
        }
        text.push_str(&more[..more.floor_char_boundary(room)]);
        text.push_str(CUT);
        self.cut = true;
    }
}

/// What ends a field or text that was cut.
const CUT: &str = "… [cut]";

/// `text`, or its first `max` bytes (to a character boundary) and the
/// mark of a cut, with how long it was.
fn capped(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    format!(
        "{}… [cut: {} bytes in all]",
        &text[..text.floor_char_boundary(max)],
        text.len()
    )
}

/// The test cases of the JUnit XML `xml`; why not, if it is not one.
pub fn parse(xml: &[u8]) -> Result<Parsed, String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut parsed = Parsed::default();
    let mut open: Option<Open> = None;
    let mut suites = Vec::<String>::new();
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not XML at byte {}: {e}", reader.error_position()))?;
        let reading = open.as_mut().filter(|o| o.in_status);
        match event {
            Event::Start(e) | Event::Empty(e) if !saw_root && !is_root(&e) => {
                return Err(format!(
                    "not a JUnit report: its root is <{}>, not <testsuites> or <testsuite>",
                    String::from_utf8_lossy(e.name().as_ref())
                ));
            }
            Event::Start(e) => {
                saw_root = true;
                match e.name().as_ref() {
                    b"testsuite" => suites.push(attr(&e, b"name", MAX_FIELD)),
                    b"testcase" => {
                        open = Some(Open {
                            case: case(&e, suites.last()),
                            in_status: false,
                            cut: false,
                        });
                    }
                    b"failure" | b"error" | b"skipped" => {
                        if let Some(o) = open.as_mut() {
                            status(&mut o.case, &e);
                            o.in_status = o.case.outcome == TestOutcome::Failed;
                        }
                    }
                    _ => {}
                }
            }
            Event::Empty(e) => {
                saw_root = true;
                match e.name().as_ref() {
                    b"testcase" => parsed.push(case(&e, suites.last())),
                    b"failure" | b"error" | b"skipped" => {
                        if let Some(o) = open.as_mut() {
                            status(&mut o.case, &e);
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some(o) = reading {
                    let text = t.decode().map_err(|e| format!("bad text: {e}"))?;
                    o.append(&text);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(o) = reading {
                    let name = r.decode().map_err(|e| format!("bad text: {e}"))?;
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(ch)) => Some(ch.to_string()),
                        _ => quick_xml::escape::resolve_xml_entity(&name).map(str::to_string),
                    };
                    o.append(&resolved.unwrap_or_else(|| format!("&{name};")));
                }
            }
            Event::CData(t) => {
                if let Some(o) = reading {
                    o.append(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"testsuite" => {
                    suites.pop();
                }
                b"testcase" => {
                    if let Some(o) = open.take() {
                        parsed.push(o.case);
                    }
                }
                b"failure" | b"error" | b"skipped" => {
                    if let Some(o) = open.as_mut() {
                        o.in_status = false;
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err("not a JUnit report: it is empty".into());
    }
    Ok(parsed)
}

fn is_root(e: &BytesStart<'_>) -> bool {
    matches!(e.name().as_ref(), b"testsuites" | b"testsuite")
}

/// Attribute `name` of `e`, unescaped (empty if absent), capped at `max`
/// bytes.
fn attr(e: &BytesStart<'_>, name: &[u8], max: usize) -> String {
    let value = e
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| {
            a.unescape_value().map_or_else(
                |_| String::from_utf8_lossy(&a.value).into_owned(),
                |v| v.into_owned(),
            )
        })
        .unwrap_or_default();
    capped(value, max)
}

fn case(e: &BytesStart<'_>, suite: Option<&String>) -> TestCase {
    let classname = match attr(e, b"classname", MAX_FIELD) {
        c if c.is_empty() => suite.cloned().unwrap_or_default(),
        c => c,
    };
    let secs: f64 = attr(e, b"time", 64).trim().parse().unwrap_or(0.0);
    TestCase {
        name: attr(e, b"name", MAX_FIELD),
        classname,
        file: attr(e, b"file", MAX_FIELD),
        time_ms: (secs.max(0.0) * 1000.0).round() as u64,
        started_ms: started_ms(&attr(e, b"timestamp", 64)),
        outcome: TestOutcome::Passed,
        message: String::new(),
        text: String::new(),
        reruns: Vec::new(),
        quarantined: None,
    }
}

/// A case's `timestamp` (RFC 3339, as nextest writes it) in milliseconds
/// since the Unix epoch; `None` when there is none, or it does not read
/// as one (a report's dialect, or its writer's mistake, costs only what
/// it would have told).
fn started_ms(timestamp: &str) -> Option<u64> {
    let at = chrono::DateTime::parse_from_rfc3339(timestamp.trim()).ok()?;
    u64::try_from(at.timestamp_millis()).ok()
}

/// A `<failure>`, `<error>` or `<skipped>` of case `c`: a failure wins
/// over a skip.
fn status(c: &mut TestCase, e: &BytesStart<'_>) {
    let outcome = match e.name().as_ref() {
        b"skipped" => TestOutcome::Skipped,
        _ => TestOutcome::Failed,
    };
    if c.outcome != TestOutcome::Failed {
        c.outcome = outcome;
        c.message = attr(e, b"message", MAX_FIELD);
    }
}

/// What the report `parsed` counts, its kept cases at `kept`.
pub fn counts(parsed: &Parsed, kept: String) -> TestCounts {
    counts_of(&parsed.cases, &parsed.beyond, kept)
}

/// What `cases` (and the cases past the cap, `beyond`) count, kept at
/// `kept`: a failing test the quarantine holds is counted apart from the
/// failed, a flaky one apart from the passed.
pub fn counts_of(cases: &[TestCase], b: &Beyond, kept: String) -> TestCounts {
    let gates = |c: &&TestCase| c.quarantined.is_none();
    let count = |o: TestOutcome| cases.iter().filter(|c| c.outcome == o).count() as u32;
    let failed = || cases.iter().filter(|c| c.outcome == TestOutcome::Failed);
    let mut failing: Vec<String> = failed().filter(gates).take(NAMED).map(name).collect();
    let room = NAMED - failing.len();
    failing.extend(b.failing.iter().take(room).cloned());
    let quarantined = failed().filter(|c| c.quarantined.is_some()).count() as u32;
    TestCounts {
        passed: count(TestOutcome::Passed).saturating_add(b.passed),
        failed: (failed().filter(gates).count() as u32).saturating_add(b.failed),
        skipped: count(TestOutcome::Skipped).saturating_add(b.skipped),
        time_ms: cases
            .iter()
            .map(|c| c.time_ms)
            .fold(b.time_ms, u64::saturating_add),
        failing,
        cases: kept,
        flaky: count(TestOutcome::Flaky),
        flaky_tests: cases
            .iter()
            .filter(|c| c.outcome == TestOutcome::Flaky)
            .take(NAMED)
            .map(name)
            .collect(),
        quarantined,
        expired: Vec::new(),
        reran: 0,
        selected_out: Vec::new(),
    }
}

/// A case as it is named: `classname::name`.
pub fn name(c: &TestCase) -> String {
    match c.classname.is_empty() {
        true => c.name.clone(),
        false => format!("{}::{}", c.classname, c.name),
    }
}

/// The tests the run's tasks reported (`junit`), as one line: "517
/// passed, 2 failed, 1 flaky, 1 quarantined in 2 tasks"; `None` when no
/// task reported tests.
pub fn tests_line(report: &swarm_protocol::RunReport) -> Option<String> {
    let reported: Vec<&swarm_protocol::TestCounts> = report
        .tasks
        .iter()
        .filter_map(|t| t.tests.as_deref())
        .collect();
    if reported.is_empty() {
        return None;
    }
    let mut sum = [0u32; 5];
    for t in &reported {
        for (total, n) in sum.iter_mut().zip(numbers(t)) {
            *total = total.saturating_add(n);
        }
    }
    let counted = counted(sum);
    let tasks = reported.len();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let out: usize = reported.iter().map(|t| t.selected_out.len()).sum();
    let selected = match out {
        0 => String::new(),
        n => format!(
            "; {n} entr{} not affected by the run's changes skipped (`affected`)",
            if n == 1 { "y" } else { "ies" }
        ),
    };
    Some(format!(
        "tests: {counted} in {tasks} task{}{selected}",
        plural(tasks)
    ))
}

/// A report's passed, failed, flaky, quarantined and skipped tests.
fn numbers(t: &swarm_protocol::TestCounts) -> [u32; 5] {
    [t.passed, t.failed, t.flaky, t.quarantined, t.skipped]
}

/// Tests counted ([`numbers`]) as words: "40 passed, 2 failed, 1 flaky";
/// the passed always said, the others when there are any.
pub fn counted(n: [u32; 5]) -> String {
    let words = ["passed", "failed", "flaky", "quarantined", "skipped"];
    let mut parts = vec![format!("{} passed", n[0])];
    for (n, word) in n.iter().zip(words).skip(1) {
        if *n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    parts.join(", ")
}

/// One report's tests counted as words ([`counted`]).
pub fn counted_of(t: &swarm_protocol::TestCounts) -> String {
    counted(numbers(t))
}

/// The tests the run's tasks name, with their task: each failing one
/// (`failed`), each flaky one (`flaky`: failed, then passed when run
/// again) and each whose quarantine ended (`quarantine expired`), at most
/// ten of each per task, as the report keeps them; the failing first.
pub fn named_tests(report: &swarm_protocol::RunReport) -> Vec<(&'static str, String, String)> {
    type Names = fn(&swarm_protocol::TestCounts) -> &Vec<String>;
    let kinds: [(&str, Names); 3] = [
        ("failed", |t| &t.failing),
        ("flaky", |t| &t.flaky_tests),
        ("quarantine expired", |t| &t.expired),
    ];
    let mut out = Vec::new();
    for (word, names) in kinds {
        for t in &report.tasks {
            let Some(tests) = t.tests.as_deref() else {
                continue;
            };
            out.extend(
                names(tests)
                    .iter()
                    .map(|n| (word, t.id.clone(), crate::escape::line(n).into_owned())),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_and_bare_suites_and_errors_are_read() {
        let pytest = br#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="0.5"><testcase classname="tests.test_a" name="test_ok" time="0.120" /><testcase classname="tests.test_a" name="test_bad" time="0.2"><failure message="assert 1 == 2">def test_bad():
&gt;       assert 1 == 2</failure></testcase><testcase classname="tests.test_b" name="test_skip" time="0.000"><skipped type="pytest.skip" message="not here">skip</skipped></testcase><testcase classname="tests.test_b" name="test_err" time="0.01"><error message="fixture">boom</error></testcase></testsuite></testsuites>"#;
        let parsed = parse(pytest).unwrap();
        let cases = &parsed.cases;
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[1].text, "def test_bad():\n>       assert 1 == 2");
        let c = counts(&parsed, "k".into());
        assert_eq!((c.passed, c.failed, c.skipped, c.time_ms), (1, 2, 1, 330));
        assert_eq!(
            c.failing,
            ["tests.test_a::test_bad", "tests.test_b::test_err"]
        );

        let bare = br#"<testsuite name="tape"><testcase name="adds"/><testcase name="subs"><failure/></testcase></testsuite>"#;
        let parsed = parse(bare).unwrap();
        assert_eq!(parsed.cases[0].classname, "tape");
        assert_eq!(counts(&parsed, String::new()).failed, 1);
    }

    #[test]
    fn when_a_case_began_is_read_where_the_report_says() {
        // nextest's dialect: each case with its `timestamp`.
        let xml = br#"<testsuites><testsuite name="nx"><testcase name="a" classname="nx" timestamp="2026-12-02T10:37:50.217+00:00" time="0.316"/><testcase name="b" classname="nx" timestamp="2026-12-02T11:37:50.328+01:00" time="0.009"/><testcase name="c" timestamp="yesterday" time="1"/><testcase name="d" time="1"/></testsuite></testsuites>"#;
        let parsed = parse(xml).unwrap();
        let started: Vec<Option<u64>> = parsed.cases.iter().map(|c| c.started_ms).collect();
        let a = 1_796_207_870_217;
        assert_eq!(started, [Some(a), Some(a + 111), None, None]);
    }

    #[test]
    fn names_messages_and_texts_are_cut_at_a_character_boundary_and_marked() {
        // 'é' is two bytes: the cut falls inside one of them.
        let long = format!("a{}", "é".repeat(MAX_FIELD));
        let text = "é".repeat(MAX_TEXT);
        let xml = format!(
            r#"<testsuite name="{long}"><testcase name="{long}" file="{long}"><failure message="{long}"><![CDATA[{text}]]>more</failure></testcase><testcase classname="{long}" name="b"/></testsuite>"#
        );
        let parsed = parse(xml.as_bytes()).unwrap();
        let [failed, passed] = &parsed.cases[..] else {
            panic!("{:?}", parsed.cases)
        };
        let marked = format!("… [cut: {} bytes in all]", long.len());
        for field in [
            &failed.name,
            &failed.classname,
            &failed.file,
            &failed.message,
            &passed.classname,
        ] {
            assert!(field.ends_with(&marked), "{field}");
            assert_eq!(field.len(), MAX_FIELD - 1 + marked.len());
        }
        assert!(failed.text.ends_with("é… [cut]"), "{}", failed.text);
        assert_eq!(failed.text.len(), MAX_TEXT + "… [cut]".len());
        let named = &counts(&parsed, String::new()).failing[0];
        assert!(
            named.len() < 2 * MAX_FIELD + 2 * marked.len() + 2,
            "{named}"
        );
    }

    #[test]
    fn cases_past_the_cap_are_counted_not_kept() {
        let mut xml = String::from("<testsuite name=\"s\">");
        // Failing: the first, the last kept, and one past the cap.
        let failing = [0, MAX_CASES - 1, MAX_CASES + 1];
        for i in 0..MAX_CASES + 3 {
            match failing.contains(&i) {
                true => xml.push_str(&format!(
                    "<testcase name=\"t{i}\" time=\"1\"><failure/></testcase>"
                )),
                false => xml.push_str("<testcase name=\"t\"/>"),
            }
        }
        xml.push_str("<testcase name=\"s\"><skipped/></testcase></testsuite>");
        let parsed = parse(xml.as_bytes()).unwrap();
        assert_eq!(parsed.cases.len(), MAX_CASES);
        assert_eq!(parsed.beyond.cases, 4);
        let c = counts(&parsed, String::new());
        assert_eq!((c.passed, c.failed, c.skipped), (MAX_CASES as u32, 3, 1));
        assert_eq!(c.time_ms, 3000);
        let named: Vec<String> = failing.iter().map(|i| format!("s::t{i}")).collect();
        assert_eq!(c.failing, named);
    }

    #[test]
    fn what_is_not_a_junit_report_says_why() {
        assert!(parse(b"").unwrap_err().contains("empty"));
        assert!(
            parse(b"<html></html>")
                .unwrap_err()
                .contains("root is <html>")
        );
        assert!(parse(b"<testsuite><testcase name=\"a\"></testsuite>").is_err());
    }
}
