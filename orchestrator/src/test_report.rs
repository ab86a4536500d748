//! A task's own test report (`junit = "PATH"`), read as hostile input: a
//! JUnit XML file its command wrote (pytest's `--junitxml`, nextest's JUnit,
//! `tap-junit`), size-capped and reached without a link, made into the
//! test cases swarm keeps (`swarm_protocol::TestCase`) and counts. The
//! dialects differ: a `<testsuites>` root or a bare `<testsuite>`, suites
//! nested, `file` given or not, `<error>` beside `<failure>`; each is read.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use swarm_protocol::{TestCase, TestCounts, TestOutcome};

/// Largest report read.
pub const MAX_REPORT: u64 = 64 << 20;

/// Most test cases kept of one report.
pub const MAX_CASES: usize = 100_000;

/// Bytes of a failure's text kept.
const MAX_TEXT: usize = 4096;

/// Failing tests named in the counts.
const NAMED: usize = 10;

/// The test cases of the JUnit XML `xml`; why not, if it is not one.
pub fn parse(xml: &[u8]) -> Result<Vec<TestCase>, String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut cases = Vec::new();
    // The test case being read, and whether its status element's text is
    // being read.
    let mut open: Option<TestCase> = None;
    let mut in_status = false;
    let mut suites = Vec::<String>::new();
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not XML at byte {}: {e}", reader.error_position()))?;
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
                    b"testsuite" => suites.push(attr(&e, b"name")),
                    b"testcase" => open = Some(case(&e, suites.last())),
                    b"failure" | b"error" | b"skipped" => {
                        if let Some(c) = open.as_mut() {
                            status(c, &e);
                            in_status = c.outcome == TestOutcome::Failed;
                        }
                    }
                    _ => {}
                }
            }
            Event::Empty(e) => {
                saw_root = true;
                match e.name().as_ref() {
                    b"testcase" => push(&mut cases, case(&e, suites.last()))?,
                    b"failure" | b"error" | b"skipped" => {
                        if let Some(c) = open.as_mut() {
                            status(c, &e);
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) if in_status => {
                if let Some(c) = open.as_mut() {
                    let text = t.decode().map_err(|e| format!("bad text: {e}"))?;
                    append(&mut c.text, &text);
                }
            }
            Event::GeneralRef(r) if in_status => {
                if let Some(c) = open.as_mut() {
                    let name = r.decode().map_err(|e| format!("bad text: {e}"))?;
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(ch)) => Some(ch.to_string()),
                        _ => quick_xml::escape::resolve_xml_entity(&name).map(str::to_string),
                    };
                    append(
                        &mut c.text,
                        &resolved.unwrap_or_else(|| format!("&{name};")),
                    );
                }
            }
            Event::CData(t) if in_status => {
                if let Some(c) = open.as_mut() {
                    append(&mut c.text, &String::from_utf8_lossy(&t));
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"testsuite" => {
                    suites.pop();
                }
                b"testcase" => {
                    if let Some(c) = open.take() {
                        push(&mut cases, c)?;
                    }
                }
                b"failure" | b"error" | b"skipped" => in_status = false,
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
    Ok(cases)
}

fn is_root(e: &BytesStart<'_>) -> bool {
    matches!(e.name().as_ref(), b"testsuites" | b"testsuite")
}

fn push(cases: &mut Vec<TestCase>, case: TestCase) -> Result<(), String> {
    if cases.len() == MAX_CASES {
        return Err(format!("it holds more than {MAX_CASES} test cases"));
    }
    cases.push(case);
    Ok(())
}

/// Attribute `name` of `e`, unescaped (empty if absent).
fn attr(e: &BytesStart<'_>, name: &[u8]) -> String {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| {
            a.unescape_value().map_or_else(
                |_| String::from_utf8_lossy(&a.value).into_owned(),
                |v| v.into_owned(),
            )
        })
        .unwrap_or_default()
}

fn case(e: &BytesStart<'_>, suite: Option<&String>) -> TestCase {
    let classname = match attr(e, b"classname") {
        c if c.is_empty() => suite.cloned().unwrap_or_default(),
        c => c,
    };
    let secs: f64 = attr(e, b"time").trim().parse().unwrap_or(0.0);
    TestCase {
        name: attr(e, b"name"),
        classname,
        file: attr(e, b"file"),
        time_ms: (secs.max(0.0) * 1000.0).round() as u64,
        outcome: TestOutcome::Passed,
        message: String::new(),
        text: String::new(),
    }
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
        c.message = attr(e, b"message");
    }
}

fn append(text: &mut String, more: &str) {
    let room = MAX_TEXT.saturating_sub(text.len());
    text.push_str(&more[..more.floor_char_boundary(room)]);
}

/// What `cases` count, kept (every case) at `kept`.
pub fn counts(cases: &[TestCase], kept: String) -> TestCounts {
    let count = |o: TestOutcome| cases.iter().filter(|c| c.outcome == o).count() as u32;
    TestCounts {
        passed: count(TestOutcome::Passed),
        failed: count(TestOutcome::Failed),
        skipped: count(TestOutcome::Skipped),
        time_ms: cases.iter().map(|c| c.time_ms).sum(),
        failing: cases
            .iter()
            .filter(|c| c.outcome == TestOutcome::Failed)
            .take(NAMED)
            .map(name)
            .collect(),
        cases: kept,
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
/// passed, 2 failed in 2 tasks"; `None` when no task reported tests.
pub fn tests_line(report: &swarm_protocol::RunReport) -> Option<String> {
    let reported: Vec<&swarm_protocol::TestCounts> = report
        .tasks
        .iter()
        .filter_map(|t| t.tests.as_deref())
        .collect();
    if reported.is_empty() {
        return None;
    }
    let sum =
        |f: fn(&swarm_protocol::TestCounts) -> u32| reported.iter().map(|t| f(t)).sum::<u32>();
    let (passed, failed, skipped) = (sum(|t| t.passed), sum(|t| t.failed), sum(|t| t.skipped));
    let mut parts = vec![format!("{passed} passed")];
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    if skipped > 0 {
        parts.push(format!("{skipped} skipped"));
    }
    let tasks = reported.len();
    Some(format!(
        "tests: {} in {tasks} task{}",
        parts.join(", "),
        if tasks == 1 { "" } else { "s" }
    ))
}

/// Each failing test the run's tasks reported, with its task: at most
/// ten per task, as the report keeps them.
pub fn failing_tests(report: &swarm_protocol::RunReport) -> Vec<(String, String)> {
    report
        .tasks
        .iter()
        .filter_map(|t| t.tests.as_deref().map(|tests| (t, tests)))
        .flat_map(|(t, tests)| {
            tests
                .failing
                .iter()
                .map(|f| (t.id.clone(), crate::escape::line(f).into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_and_bare_suites_and_errors_are_read() {
        let pytest = br#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="0.5"><testcase classname="tests.test_a" name="test_ok" time="0.120" /><testcase classname="tests.test_a" name="test_bad" time="0.2"><failure message="assert 1 == 2">def test_bad():
&gt;       assert 1 == 2</failure></testcase><testcase classname="tests.test_b" name="test_skip" time="0.000"><skipped type="pytest.skip" message="not here">skip</skipped></testcase><testcase classname="tests.test_b" name="test_err" time="0.01"><error message="fixture">boom</error></testcase></testsuite></testsuites>"#;
        let cases = parse(pytest).unwrap();
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[1].text, "def test_bad():\n>       assert 1 == 2");
        let c = counts(&cases, "k".into());
        assert_eq!((c.passed, c.failed, c.skipped, c.time_ms), (1, 2, 1, 330));
        assert_eq!(
            c.failing,
            ["tests.test_a::test_bad", "tests.test_b::test_err"]
        );

        let bare = br#"<testsuite name="tape"><testcase name="adds"/><testcase name="subs"><failure/></testcase></testsuite>"#;
        let cases = parse(bare).unwrap();
        assert_eq!(cases[0].classname, "tape");
        assert_eq!(counts(&cases, String::new()).failed, 1);
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
