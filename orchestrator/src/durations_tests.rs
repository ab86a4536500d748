//! The duration history: bounded, keyed by what a task runs, the median
//! for unknown tasks, and never a reason for a run to fail.

use std::path::Path;

use super::*;
use crate::graph::TaskGraph;
use crate::ids::TaskIndex;

fn plan(text: &str) -> crate::plan::Plan {
    match crate::plan::parse(Path::new("plans/test.toml"), text.into()) {
        Ok(plan) => plan,
        Err(e) => panic!("plan rejected: {e:?}"),
    }
}

fn task(id: &str, run: &str) -> Task {
    let text = format!("[[task]]\nid = {id:?}\nrun = {run:?}\n");
    plan(&text).tasks.remove(0)
}

#[test]
fn the_estimate_is_the_median_of_the_last_samples() {
    let a = task("a", "sleep 1");
    let mut history = History::default();
    assert_eq!(history.estimate(&a), None);
    for ms in [100, 5000, 300, 200, 250] {
        history.record(&a, ms);
    }
    assert_eq!(history.estimate(&a), Some(250));
    // Only the last SAMPLES count: two more slow ones push 100 and 5000
    // out, and the median moves up.
    history.record(&a, 900);
    history.record(&a, 800);
    assert_eq!(history.estimate(&a), Some(300));
    let text = history.to_json().unwrap();
    let again = History::parse(&text).unwrap();
    assert_eq!(again.estimate(&a), Some(300));
}

#[test]
fn a_changed_command_is_a_new_task() {
    let before = task("build", "make all");
    let after = task("build", "make all -j8");
    assert_ne!(key(&before), key(&after));
    assert_eq!(key(&before), key(&task("build", "make all")));
    let mut history = History::default();
    history.record(&before, 60_000);
    assert_eq!(history.estimate(&before), Some(60_000));
    assert_eq!(history.estimate(&after), None);
    // The same command under another id is another task too.
    assert_eq!(history.estimate(&task("build2", "make all")), None);
}

#[test]
fn environment_and_verify_are_part_of_what_a_task_runs() {
    let plain = plan("[[task]]\nid = \"t\"\nrun = \"x\"\n").tasks.remove(0);
    let env = plan("[[task]]\nid = \"t\"\nrun = \"x\"\nenv = { N = \"3\" }\n")
        .tasks
        .remove(0);
    let verify = plan("[[task]]\nid = \"t\"\nrun = \"x\"\nverify = \"true\"\n")
        .tasks
        .remove(0);
    assert_ne!(key(&plain), key(&env));
    assert_ne!(key(&plain), key(&verify));
    assert_ne!(key(&env), key(&verify));
}

#[test]
fn unknown_tasks_get_the_median_of_known_ones_and_one_second_when_none_is() {
    let tasks = [
        task("a", "a"),
        task("b", "b"),
        task("c", "c"),
        task("d", "d"),
    ];
    let empty = History::default();
    assert_eq!(
        empty.expected(&tasks),
        Expected {
            per_task: vec![UNWEIGHED_MS; 4],
            fallback: UNWEIGHED_MS
        }
    );
    let mut history = History::default();
    history.record(&tasks[0], 10_000);
    history.record(&tasks[1], 2_000);
    history.record(&tasks[2], 0);
    // Known: 10 s, 2 s and 0 (at least a millisecond); `d` gets their
    // median, as a subtask spawned later would.
    assert_eq!(
        history.expected(&tasks),
        Expected {
            per_task: vec![10_000, 2_000, 1, 2_000],
            fallback: 2_000
        }
    );
}

#[test]
fn the_history_keeps_the_tasks_seen_most_recently() {
    let mut history = History::default();
    for i in 0..MAX_ENTRIES + 10 {
        // Each a run of its own, so that ages differ.
        history.record_by(&format!("t{i}"), "h", 1, None);
        history.generation += 1;
    }
    history.evict();
    assert_eq!(history.len(), MAX_ENTRIES);
    assert!(history.estimate_by("t0", "h").is_none());
    assert!(history.estimate_by("t9", "h").is_none());
    assert_eq!(history.estimate_by("t10", "h"), Some(1));
    assert_eq!(
        history.estimate_by(&format!("t{}", MAX_ENTRIES + 9), "h"),
        Some(1)
    );
    // Ids longer than any plan's are not kept.
    history.record_by(&"x".repeat(MAX_ID + 1), "h", 1, None);
    assert_eq!(history.len(), MAX_ENTRIES);
}

#[test]
fn a_file_that_does_not_read_is_ignored() {
    assert!(History::parse("{ not json").is_err());
    assert!(History::parse(r#"{"v":99,"generation":1,"entries":[]}"#).is_err());
    assert!(History::parse(&" ".repeat(MAX_BYTES + 1)).is_err());

    let repo = tempfile::tempdir().unwrap();
    let state = repo.path().join(crate::layout::STATE_DIR);
    std::fs::create_dir(&state).unwrap();
    let file = state.join(crate::layout::DURATIONS);
    std::fs::write(&file, "{ half a file").unwrap();
    assert!(History::load(repo.path()).is_empty());
    // A run's samples replace it with a good one.
    let a = task("a", "sleep 1");
    History::add_run(repo.path(), &[(&a, 1200)]).unwrap();
    let history = History::load(repo.path());
    assert_eq!(history.estimate(&a), Some(1200));
    // A link is not followed: the history is just absent.
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &file).unwrap();
    assert!(History::load(repo.path()).is_empty());
}

#[test]
fn runs_add_to_the_history_in_the_repository() {
    let repo = tempfile::tempdir().unwrap();
    // No state directory yet: nothing known, and nothing to fail on.
    assert!(History::load(repo.path()).is_empty());
    let a = task("a", "sleep 1");
    let b = task("b", "sleep 2");
    History::add_run(repo.path(), &[(&a, 1000), (&b, 2000)]).unwrap();
    History::add_run(repo.path(), &[(&a, 3000)]).unwrap();
    let history = History::load(repo.path());
    // Median of 1000 and 3000: the lower middle.
    assert_eq!(history.estimate(&a), Some(1000));
    assert_eq!(history.estimate(&b), Some(2000));
    assert_eq!(history.generation, 2);
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(repo.path().join(crate::layout::STATE_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [crate::layout::DURATIONS]);
}

#[test]
fn a_run_larger_than_the_history_keeps_its_longest_tasks() {
    let repo = tempfile::tempdir().unwrap();
    let tasks: Vec<Task> = (0..MAX_ENTRIES + 50)
        .map(|i| task(&format!("t{i}"), "true"))
        .collect();
    // Task i took i ms: the 50 shortest are the ones left out.
    let samples: Vec<(&Task, u64)> = tasks.iter().zip(0u64..).collect();
    History::add_run(repo.path(), &samples).unwrap();
    let history = History::load(repo.path());
    assert_eq!(history.len(), MAX_ENTRIES);
    assert_eq!(history.estimate(&tasks[49]), None);
    assert_eq!(history.estimate(&tasks[50]), Some(50));
    assert_eq!(
        history.estimate(&tasks[MAX_ENTRIES + 49]),
        Some(MAX_ENTRIES as u64 + 49)
    );
}

#[test]
fn successful_attempts_are_the_samples() {
    let event = |line: &str| -> EventBody {
        let e: swarm_protocol::Event = serde_json::from_str(line).unwrap();
        e.body
    };
    let ok = event(
        r#"{"v":1,"ts":"t","event":"attempt_finished","task":"a","attempt":1,"outcome":"exited","code":0,"verify_passed":null,"duration_ms":1234,"commit":null,"ref":null,"changed_files":[]}"#,
    );
    assert_eq!(succeeded(&ok), Some(("a", 1234)));
    let failed = event(
        r#"{"v":1,"ts":"t","event":"attempt_finished","task":"a","attempt":1,"outcome":"exited","code":1,"verify_passed":null,"duration_ms":5,"commit":null,"ref":null,"changed_files":[]}"#,
    );
    assert_eq!(succeeded(&failed), None);
    let broke_verify = event(
        r#"{"v":1,"ts":"t","event":"attempt_finished","task":"a","attempt":1,"outcome":"exited","code":0,"verify_passed":false,"duration_ms":5,"commit":null,"ref":null,"changed_files":[]}"#,
    );
    assert_eq!(succeeded(&broke_verify), None);
}

/// `slow` is one long task; `chain` is three short ones in a row. Counted
/// in tasks the chain comes first; in expected time the long task does.
#[test]
fn priority_by_time_differs_from_priority_by_count() {
    let plan = plan(
        r#"
[[task]]
id = "c1"
run = "sleep 1"
[[task]]
id = "c2"
run = "sleep 1"
deps = ["c1"]
[[task]]
id = "c3"
run = "sleep 1"
deps = ["c2"]
[[task]]
id = "slow"
run = "sleep 10"
"#,
    );
    let ix = |id: &str| TaskIndex::new(plan.tasks.iter().position(|t| t.id == id).unwrap());
    let mut graph = TaskGraph::new(&plan.tasks);
    // Unweighed: the count of tasks, in seconds.
    assert_eq!(graph.critical_path(ix("c1")), 3);
    assert_eq!(graph.priority(ix("c1")), 3 * UNWEIGHED_MS);
    assert_eq!(graph.priority(ix("slow")), UNWEIGHED_MS);
    assert!(graph.priority(ix("c1")) > graph.priority(ix("slow")));

    let mut history = History::default();
    for t in &plan.tasks {
        let ms = if t.id == "slow" { 10_000 } else { 1_000 };
        history.record(t, ms);
    }
    graph.weigh(history.expected(&plan.tasks));
    assert_eq!(graph.priority(ix("c1")), 3_000);
    assert_eq!(graph.priority(ix("c3")), 1_000);
    assert_eq!(graph.priority(ix("slow")), 10_000);
    assert!(graph.priority(ix("slow")) > graph.priority(ix("c1")));
    // The count is what it was.
    assert_eq!(graph.critical_path(ix("c1")), 3);
}

#[test]
fn subtasks_added_later_are_weighed_by_the_fallback() {
    let mut plan = plan(
        r#"
[[task]]
id = "a"
run = "a"
[[task]]
id = "b"
run = "b"
"#,
    );
    let mut history = History::default();
    history.record(&plan.tasks[0], 4_000);
    history.record(&plan.tasks[1], 8_000);
    let mut graph = TaskGraph::new(&plan.tasks);
    graph.weigh(history.expected(&plan.tasks));
    // Two subtasks, the second depending on the first.
    let mut x = task("ax", "x");
    x.id = "a/x".into();
    let mut y = task("ay", "y");
    y.id = "a/y".into();
    y.deps = vec!["a/x".into()];
    plan.tasks.push(x);
    plan.tasks.push(y);
    graph.extend(&plan.tasks, TaskIndex::new(2));
    // The fallback is the median of 4 s and 8 s: the lower, 4 s.
    assert_eq!(graph.priority(TaskIndex::new(3)), 4_000);
    assert_eq!(graph.priority(TaskIndex::new(2)), 8_000);
    assert_eq!(graph.priority(TaskIndex::new(1)), 8_000);
}

/// What a task changed is kept with its durations (the last success's),
/// for predicting conflicts; too many files are not kept at all.
#[test]
fn changed_files_are_kept_and_bounded() {
    let repo = tempfile::tempdir().unwrap();
    let a = task("a", "echo a");
    let b = task("b", "echo b");
    let files = vec!["log.txt".to_string()];
    let many: Vec<String> = (0..=MAX_CHANGED).map(|i| format!("f{i}")).collect();
    History::add_run_changed(repo.path(), &[(&a, 10), (&b, 20)], |t| {
        match t.id.as_str() {
            "a" => Some(files.as_slice()),
            _ => Some(many.as_slice()),
        }
    })
    .unwrap();
    let history = History::load(repo.path());
    assert_eq!(history.changed(&a), Some(files.as_slice()));
    assert_eq!(history.changed(&b), None);
    // A run that does not say keeps what was known.
    History::add_run(repo.path(), &[(&a, 12)]).unwrap();
    assert_eq!(
        History::load(repo.path()).changed(&a),
        Some(files.as_slice())
    );
}

/// A passed test case of a report: `classname`, `name`, `file`, `ms`.
pub(crate) fn passed(classname: &str, name: &str, file: &str, ms: u64) -> swarm_protocol::TestCase {
    swarm_protocol::TestCase {
        name: name.into(),
        classname: classname.into(),
        file: file.into(),
        time_ms: ms,
        started_ms: None,
        outcome: swarm_protocol::TestOutcome::Passed,
        message: String::new(),
        text: String::new(),
        reruns: Vec::new(),
        quarantined: None,
    }
}

#[test]
fn an_entrys_time_comes_from_its_tests_with_a_share_of_the_rest_else_an_even_split() {
    let case = |classname: &str, file: &str, ms: u64| passed(classname, "t", file, ms);
    let entries = vec!["tests/test_a.py".to_string(), "tests/sub/test_b.py".into()];
    // pytest's classnames: the module path, a class after it.
    let cases = [
        case("tests.test_a", "", 600),
        case("tests.test_a.TestX", "", 200),
        case("tests.sub.test_b", "", 100),
        // A test of neither is no entry's.
        case("tests.test_ab", "", 5000),
    ];
    // 1,100 ms in all: 900 of tests, 200 of start-up shared.
    let shard = Accounted::new((&entries, &Default::default()), 1100, &cases);
    assert_eq!(shard.entry_times(0, &[], None), [900, 200]);
    // What every shard pays is no entry's.
    assert_eq!(shard.entry_times(100, &[], None), [850, 150]);
    assert_eq!(shard.unaccounted(), Some(200));
    // The rest by the files' sizes, each a kibibyte more: a 7 KiB file
    // collects longer than a 1 KiB one (8:2 of the 200 ms).
    assert_eq!(
        shard.entry_times(0, &[Some(7 << 10), Some(1 << 10)], None),
        [960, 140]
    );
    // Not when a size is unknown (a node id the commit holds no file of).
    assert_eq!(
        shard.entry_times(0, &[Some(7 << 10), None], None),
        [900, 200]
    );
    // A report that names files.
    let cases = [case("x", "tests/sub/test_b.py", 300)];
    assert_eq!(
        Accounted::new((&entries, &Default::default()), 500, &cases).entry_times(0, &[], None),
        [100, 400]
    );
    // No report: an even split.
    let none = Accounted::new((&entries, &Default::default()), 1000, &[]);
    assert_eq!(none.entry_times(0, &[], None), [500, 500]);
    assert_eq!(none.unaccounted(), None);
}

#[test]
fn tests_run_on_two_threads_count_as_they_ran_not_as_their_times_sum() {
    // nextest's JUnit: each case with when it began. Two threads: `a`'s
    // one 2 s test beside `b`'s four of 500 ms, one after another.
    let at = |file: &str, start: u64, ms: u64| swarm_protocol::TestCase {
        started_ms: Some(1_764_000_000_000 + start),
        ..passed("", "t", file, ms)
    };
    let entries = vec!["tests/a.rs".to_string(), "tests/b.rs".into()];
    let cases = [
        at("tests/a.rs", 0, 2000),
        at("tests/b.rs", 0, 500),
        at("tests/b.rs", 500, 500),
        at("tests/b.rs", 1000, 500),
        at("tests/b.rs", 1500, 500),
    ];
    // 2,600 ms in all: the tests ran 2 s together (4 s summed), the rest
    // is start-up. Summed, the shard left nothing unaccounted and its
    // entries took more than it did.
    let shard = Accounted::new((&entries, &Default::default()), 2600, &cases);
    assert_eq!(shard.unaccounted(), Some(600));
    assert_eq!(shard.entry_times(600, &[], None), [1000, 1000]);
    assert_eq!(shard.entry_times(0, &[], None), [1300, 1300]);
    // Without when each began, as before: their summed times.
    let summed: Vec<_> = cases
        .iter()
        .map(|c| swarm_protocol::TestCase {
            started_ms: None,
            ..c.clone()
        })
        .collect();
    let shard = Accounted::new((&entries, &Default::default()), 2600, &summed);
    assert_eq!(shard.unaccounted(), Some(0));
    assert_eq!(shard.entry_times(0, &[], None), [2000, 2000]);
    // One case without a start: not told, the sums again.
    let mut some = cases.to_vec();
    some[2].started_ms = None;
    let shard = Accounted::new((&entries, &Default::default()), 2600, &some);
    assert_eq!(shard.unaccounted(), Some(0));
    // A skipped case, of no time, without a start: told all the same.
    let mut skipped = cases.to_vec();
    skipped.push(passed("", "skip", "tests/b.rs", 0));
    let shard = Accounted::new((&entries, &Default::default()), 2600, &skipped);
    assert_eq!(shard.unaccounted(), Some(600));
    // Beside the task's other shards, whose tests shared their threads
    // worse (two 2 s tests one after another, on two threads: 4 s of 4 s
    // summed), the entries' time is scaled by all of them together (6 s
    // ran of 8 s summed): how well a shard's threads were shared is the
    // grouping's, not its entries'. What this shard's own span leaves is
    // still its own.
    let shard = Accounted::new((&entries, &Default::default()), 2600, &cases);
    let (a, b) = (shard.ratio().unwrap(), (4000, 4000));
    assert_eq!(a, (2000, 4000));
    let scale = (a.0 + b.0, a.1 + b.1);
    assert_eq!(shard.entry_times(600, &[], Some(scale)), [1500, 1500]);
    assert_eq!(shard.entry_times(0, &[], Some(scale)), [1800, 1800]);
    // A report whose clock says its tests ran longer than the shard did
    // is taken as the shard's time, no more.
    let mut far = cases.to_vec();
    far[4].started_ms = Some(1_764_000_000_000 + 86_400_000);
    let shard = Accounted::new((&entries, &Default::default()), 2600, &far);
    assert_eq!(shard.unaccounted(), Some(0));
    assert_eq!(shard.entry_times(0, &[], None), [1300, 1300]);
}

#[test]
fn the_threads_a_shards_tests_ran_on_are_counted_at_each_tests_middle() {
    let at = |start: u64, ms: u64| swarm_protocol::TestCase {
        started_ms: Some(1_764_000_000_000 + start),
        ..passed("", "t", "tests/a.rs", ms)
    };
    let entries = vec!["tests/a.rs".to_string()];
    let threads = |cases: &[swarm_protocol::TestCase]| {
        Accounted::new((&entries, &Default::default()), 10_000, cases).threads()
    };
    // Two threads: a 2 s test beside four of 500 ms.
    let two = [
        at(0, 2000),
        at(0, 500),
        at(500, 500),
        at(1000, 500),
        at(1500, 500),
    ];
    assert_eq!(threads(&two), Some(2));
    // One thread, its report's times rounded: each test seems to begin
    // a millisecond before the last one ended, which a count at starts
    // or ends would take for two at once.
    let one = [at(0, 301), at(300, 301), at(600, 300), at(900, 1)];
    assert_eq!(threads(&one), Some(1));
    // Three at once for a while.
    let three = [at(0, 10), at(2, 10), at(5, 10), at(20, 10)];
    assert_eq!(threads(&three), Some(3));
    // Tests of a millisecond or two one after another on one thread,
    // their starts cut to the millisecond and their times rounded, seem to
    // overlap: not counted. A shard of them only does not say.
    let quick = [at(0, 10), at(10, 2), at(11, 1), at(12, 2), at(13, 10)];
    assert_eq!(threads(&quick), Some(1));
    assert_eq!(threads(&quick[1..4]), None);
    // Not said: no start, or no time taken, or a case of some time
    // without a start beside others with one.
    let mut one_untold = two.to_vec();
    one_untold[3].started_ms = None;
    assert_eq!(threads(&one_untold), None);
    let untimed: Vec<_> = two
        .iter()
        .map(|c| swarm_protocol::TestCase {
            started_ms: None,
            ..c.clone()
        })
        .collect();
    assert_eq!(threads(&untimed), None);
    assert_eq!(threads(&[at(0, 0)]), None);
    // A report of a thousand tests at once is taken as the most a task
    // runs on.
    let many: Vec<_> = (0..1000).map(|_| at(0, 10)).collect();
    assert_eq!(
        threads(&many),
        Some(crate::plan::shard_schedule::MAX_THREADS)
    );
}

#[test]
fn a_tasks_threads_are_kept_and_its_shards_judged_on_them() {
    let repo = tempfile::tempdir().unwrap();
    let samples = [
        ("t".to_string(), "a.rs".to_string(), 500),
        ("t".to_string(), "z.rs".to_string(), 500),
    ];
    History::add_entries(repo.path(), &samples, &[], (&[], &[], &[])).unwrap();
    let history = History::load(repo.path());
    assert_eq!(history.threads("t"), None);
    // Without threads a shard is its entries' sum.
    let group = vec!["a.rs".to_string(), "z.rs".to_string()];
    assert_eq!(history.group_estimate("t", &group), Some(1000));
    for n in [2, 2, 4] {
        History::add_entries(repo.path(), &[], &[], (&[], &[("t".into(), n)], &[])).unwrap();
    }
    let history = History::load(repo.path());
    assert_eq!(history.threads("t"), Some(2));
    assert_eq!(history.threads("other"), None);
    // Entries learned as a whole are short tests: on two threads as on
    // one, a shard of them takes their sum.
    assert_eq!(history.group_estimate("t", &group), Some(1000));
    assert_eq!(history.group_estimate("t", &["new.rs".to_string()]), None);
}

#[test]
fn a_split_entrys_profile_is_kept_and_an_invalid_one_dropped() {
    let text = r#"{"v":VERSION,"generation":3,"entries":[
        {"task":"t\u001fbig.py","hash":"entry","ms":[1000],"seen":3}],
      "profiles":[
        {"task":"t\u001fbig.py","segments":[[0,500,900],[500,1000,100]],"seen":3},
        {"task":"t\u001fgap.py","segments":[[0,400,1]],"seen":3}]}"#
        .replace("VERSION", &VERSION.to_string());
    let history = History::parse(&text).unwrap();
    let profile = history.profile("t", "big.py").unwrap();
    assert_eq!(profile.segments(), [(0, 500, 900), (500, 1000, 100)]);
    assert_eq!(history.profile("t", "gap.py"), None);
    // A part's estimate is its share of the entry's time by the profile.
    assert_eq!(history.part_estimate("t", "big.py\u{1f}0-500"), Some(900));
    let again = History::parse(&history.to_json().unwrap()).unwrap();
    assert_eq!(again.profile("t", "big.py"), Some(profile.clone()));
    // Written before swarm said how it was learned: not said, read as
    // its segments say; once said, kept so.
    assert_eq!(profile.said_by_test(), None);
    for by_test in [false, true] {
        let said = profile.clone().learned_by_test(by_test);
        let mut history = History::parse(&text).unwrap();
        history
            .profiles
            .insert(entry_id("t", "big.py"), (said.clone(), 3));
        let again = History::parse(&history.to_json().unwrap()).unwrap();
        assert_eq!(again.profile("t", "big.py"), Some(said));
    }
}

#[test]
fn each_entrys_test_times_are_in_the_order_its_runner_lists_them() {
    let case = |classname: &str, name: &str, ms: u64| passed(classname, name, "", ms);
    let entries = vec![
        "tests/quick.rs\u{1f}0-500".to_string(),
        "tests/test_a.py".into(),
    ];
    // nextest reports tests as its threads end them; it lists a binary's
    // by name. pytest reports them as it ran them, in an order xdist or a
    // random-order plugin may have changed: not told apart.
    let cases = [
        case("demo::quick", "m::b", 30),
        case("tests.test_a", "test_z", 1),
        case("demo::quick", "a", 10),
        case("tests.test_a", "test_y", 2),
        case("demo::quick", "m::a", 20),
    ];
    let shard = Accounted::new((&entries, &Default::default()), 100, &cases);
    assert_eq!(shard.each(0), [10, 20, 30]);
    assert_eq!(shard.each(1), [] as [u64; 0]);
    assert_eq!(shard.each(2), [] as [u64; 0]);
}

#[test]
fn a_history_too_large_to_read_sheds_its_oldest_groupings_not_everything() {
    let repo = tempfile::tempdir().unwrap();
    // Each run's grouping about 1.6 MB (a part of many ranges per
    // entry): three runs would write a file past what is read.
    let grouping = |task: &str| -> (String, Vec<Vec<String>>) {
        let ranges: Vec<String> = (0..999).map(|i| format!("{i}-{}", i + 1)).collect();
        let part = format!("tests/quick.rs\u{1f}{}", ranges.join(","));
        (task.to_string(), vec![vec![part; 200]])
    };
    for task in ["first", "second", "third"] {
        let samples = [(task.to_string(), "tests/quick.rs".to_string(), 100)];
        History::add_entries(repo.path(), &samples, &[grouping(task)], (&[], &[], &[])).unwrap();
        let history = History::load(repo.path());
        // Read back whole each time, the run's own grouping kept.
        assert!(!history.is_empty(), "after {task}");
        let groups = history.groupings.get(task).map(|(g, _)| g.len());
        assert_eq!(groups, Some(1), "after {task}");
        assert_eq!(history.entry_estimate(task, "tests/quick.rs"), Some(100));
    }
    let history = History::load(repo.path());
    assert_eq!(history.groupings.get("first"), None);
    assert_eq!(history.entry_estimate("first", "tests/quick.rs"), Some(100));
}
