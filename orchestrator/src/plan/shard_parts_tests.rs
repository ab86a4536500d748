use super::*;
use crate::plan::cargo::rust_test_binary;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_entry_longer_than_the_mean_shard_is_poured_over_the_shards_to_one_level() {
    let entries = names(&["big.py", "a.py", "b.py"]);
    // 4 shards, load 1,200 in all: a mean of 300. a.py and b.py go first;
    // big.py (900) then brings every shard to 300.
    let groups = fill(&entries, &[900, 200, 100], (4, 0, 1), None, &[]);
    assert_eq!(
        groups,
        [
            names(&["big.py\u{1f}0-111", "a.py"]),
            names(&["big.py\u{1f}111-333", "b.py"]),
            names(&["big.py\u{1f}333-667"]),
            names(&["big.py\u{1f}667-1000"]),
        ]
    );
    assert_eq!(complete(&groups), Ok(()));
    assert_eq!(whole(&groups[1][0]), "big.py");
    assert_eq!(whole("a.py"), "a.py");
    assert_eq!(
        parse(&groups[2][0]),
        Some(Part {
            entry: "big.py",
            ranges: vec![(333, 667)]
        })
    );
    assert_eq!(parse("a.py"), None);
    assert_eq!(parse("x\u{1f}5-2"), None);
    assert_eq!(parse("x\u{1f}0-1001"), None);
    // An entry of 60% beside one of 30%: unequal parts end level (halves
    // would leave one shard at 600 of 1,000).
    let groups = fill(
        &names(&["a", "b", "c"]),
        &[600, 300, 100],
        (2, 0, 1),
        None,
        &[],
    );
    assert_eq!(
        groups,
        [
            names(&["a\u{1f}0-333", "b"]),
            names(&["a\u{1f}333-1000", "c"])
        ]
    );
    // Never more parts than shards, none with one shard or none longer.
    let parts = |g: &[Vec<String>]| g.iter().flatten().filter(|n| parse(n).is_some()).count();
    assert_eq!(
        parts(&fill(&entries, &[10_000, 1, 1], (2, 0, 1), None, &[])),
        2
    );
    assert_eq!(
        fill(&entries, &[900, 200, 100], (1, 0, 1), None, &[]),
        std::slice::from_ref(&entries)
    );
    assert_eq!(
        parts(&fill(&entries, &[100, 100, 100], (3, 0, 1), None, &[])),
        0
    );
    // A shard holding a part lists the tests first (a runner's start-up):
    // no part smaller than that is made...
    let groups = fill(&entries, &[900, 200, 100], (4, 200, 1), None, &[]);
    assert_eq!(
        groups,
        [
            names(&["a.py"]),
            names(&["big.py\u{1f}0-259", "b.py"]),
            names(&["big.py\u{1f}259-630"]),
            names(&["big.py\u{1f}630-1000"]),
        ]
    );
    // ...and none when the listing costs more than the split gains.
    assert_eq!(
        parts(&fill(&entries, &[900, 200, 100], (2, 800, 1), None, &[])),
        0
    );
}

#[test]
fn parts_in_one_shard_are_one_and_a_grouping_must_cover_each_entry_once() {
    let merged = merged(names(&[
        "a.py",
        "big.py\u{1f}666-1000",
        "big.py\u{1f}0-333",
    ]));
    assert_eq!(merged, ["a.py", "big.py\u{1f}0-333,666-1000"]);
    let groups = vec![merged.clone(), names(&["big.py\u{1f}333-666"])];
    assert_eq!(complete(&groups), Ok(()));
    let gap = vec![merged.clone()];
    assert_eq!(complete(&gap), Err("big.py".to_string()));
    // An entry whole beside its parts, or whole twice, would run twice.
    let beside = vec![names(&["big.py", "big.py\u{1f}0-1000"])];
    assert_eq!(complete(&beside), Err("big.py".to_string()));
    let twice = vec![names(&["a.py"]), names(&["a.py"])];
    assert_eq!(complete(&twice), Err("a.py".to_string()));
    let twice = vec![merged, names(&["big.py\u{1f}0-666"])];
    assert_eq!(complete(&twice), Err("big.py".to_string()));
}

/// Runs the script of a shard holding `entries` with `sh`, its list the
/// lines `listed` (and pytest's summary), its command printing what it
/// got in `{entries}` and in `$SWARM_ENTRIES`.
fn run(entries: &[String], listed: &[&str], list_fails: bool) -> (i32, Vec<String>, Vec<String>) {
    run_in(entries, listed, list_fails, &Default::default())
}

/// [`run`], the Rust test files among `entries` of `packages`.
fn run_in(
    entries: &[String],
    listed: &[&str],
    list_fails: bool,
    packages: &crate::plan::cargo::Packages,
) -> (i32, Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let list_file = dir.path().join("list.txt");
    let mut text = listed.join("\n");
    text.push_str("\n\n3 tests collected in 0.01s\n");
    std::fs::write(&list_file, text).unwrap();
    let list = match list_fails {
        true => "echo 'ERROR collecting {entries}'; exit 2".to_string(),
        false => format!("cat {} # {{entries}}", list_file.display()),
    };
    let template = "printf 'arg:%s\\n' {entries}; sed 's/^/file:/' \"$SWARM_ENTRIES\"";
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script(template, &list, entries, packages))
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let of = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix).map(String::from))
            .collect()
    };
    (out.status.code().unwrap_or(-1), of("arg:"), of("file:"))
}

/// The parts (not the whole entries) of a grouping's shards, in order.
fn parts_of(groups: &[Vec<String>]) -> Vec<&String> {
    groups
        .iter()
        .flatten()
        .filter(|p| parse(p).is_some())
        .collect()
}

#[test]
fn the_parts_of_an_entry_run_each_listed_test_once_whatever_the_list_holds() {
    // Tests listed now that no earlier run knew (a new one at the end, a
    // list of any length) still fall in exactly one part.
    for count in [1usize, 2, 3, 7, 10, 31] {
        let tests: Vec<String> = (0..count).map(|i| format!("big.py::test_{i}")).collect();
        let mut listed: Vec<&str> = tests.iter().map(String::as_str).collect();
        listed.push("other.py::test_x");
        let groups = fill(
            &names(&["big.py", "a.py"]),
            &[900, 100],
            (3, 0, 1),
            None,
            &[],
        );
        let parts = parts_of(&groups);
        assert_eq!(parts.len(), 3);
        let mut ran = Vec::new();
        for part in parts {
            let entries = vec!["a.py".to_string(), part.clone()];
            let (code, args, file) = run(&entries, &listed, false);
            assert_eq!(code, 0, "{part} of {count}");
            assert_eq!(args[0], "a.py");
            assert_eq!(args, file, "`{{entries}}` and `$SWARM_ENTRIES` agree");
            ran.extend(args.into_iter().skip(1));
        }
        ran.sort();
        let mut want = tests.clone();
        want.sort();
        assert_eq!(ran, want, "each of {count} listed tests once");
    }
}

#[test]
fn a_part_whose_entry_lists_nothing_runs_it_whole_and_a_failed_list_fails_the_shard() {
    let first = vec!["big.py\u{1f}0-500".to_string()];
    let second = vec!["big.py\u{1f}500-1000".to_string()];
    // Nothing of big.py listed: its first part runs it whole (the runner
    // says why), the other runs nothing and says so.
    assert_eq!(run(&first, &["a.py::t"], false).1, ["big.py"]);
    let (code, args, file) = run(&second, &["a.py::t"], false);
    assert_eq!((code, args.len(), file.len()), (0, 0, 0));
    // The list failed: so does the shard, its command never run.
    let (code, args, _) = run(&first, &["big.py::t"], true);
    assert_eq!((code, args.len()), (2, 0));
}

#[test]
fn names_with_quotes_and_spaces_reach_the_command_as_one_word_each() {
    let entries = vec!["it's a.py\u{1f}0-1000".to_string()];
    let (code, args, _) = run(&entries, &["it's a.py::test [x y]"], false);
    assert_eq!(code, 0);
    assert_eq!(args, ["it's a.py::test [x y]"]);
}

#[test]
fn a_grouping_of_parts_splits_only_a_plan_that_lists_tests_and_covers_each_entry_once() {
    use crate::plan::shards::{SplitError, split};
    use std::path::Path;
    let plan = |list: &str| {
        let text = format!(
            "[[task]]\nid = \"t\"\nrun = \"pytest {{entries}}\"\nshards = 2\n{list}\
             matrix = {{ f = [\"big.py\", \"a.py\"] }}\n"
        );
        crate::plan::parse(Path::new("plan.toml"), text).unwrap()
    };
    let listed = "list_tests = \"pytest --collect-only -q {entries}\"\n";
    let groups = |second: &str| {
        vec![(
            "t".to_string(),
            vec![names(&["a.py", "big.py\u{1f}0-500"]), names(&[second])],
        )]
    };
    let mut ok = plan(listed);
    split(&mut ok, &groups("big.py\u{1f}500-1000")).unwrap();
    let crate::plan::Payload::Command { run } = &ok.tasks[1].payload else {
        panic!("{:?}", ok.tasks[1].payload)
    };
    assert!(
        run.contains("pytest --collect-only -q big.py") && run.ends_with("pytest \"$@\""),
        "{run}"
    );
    // A gap in the list's positions, or parts where the plan lists no
    // tests (a journal of an older plan): refused, never run short.
    let gap = split(&mut plan(listed), &groups("big.py\u{1f}600-1000"));
    assert!(matches!(gap, Err(SplitError::Parts { entry, .. }) if entry == "big.py"));
    let unlisted = split(&mut plan(""), &groups("big.py\u{1f}500-1000"));
    assert!(
        matches!(unlisted, Err(SplitError::Parts { .. })),
        "{unlisted:?}"
    );
    // `list_tests` without `shards` is refused, saying what to do.
    let text = "[[task]]\nid = \"t\"\nrun = \"true\"\nlist_tests = \"ls\"\n";
    let err = crate::plan::parse(Path::new("plan.toml"), text.to_string()).unwrap_err();
    assert!(
        err.to_string()
            .contains("task `t` has `list_tests` but not `shards`"),
        "{err}"
    );
}

#[test]
fn in_a_workspace_a_list_line_is_the_test_of_the_file_of_its_package_only() {
    // Two packages' `tests/quick.rs`: `alpha::quick` and `b::quick`.
    let listed = [
        "alpha::quick adds",
        "b::quick other",
        "alpha::quick wobbles",
        "b::quick more",
    ];
    let packages: crate::plan::cargo::Packages = [
        ("crates/a/tests/quick.rs", "alpha"),
        ("crates/b/tests/quick.rs", "b"),
    ]
    .into_iter()
    .map(|(e, p)| (e.to_string(), p.to_string()))
    .collect();
    let whole = |entry: &str| vec![format!("{entry}\u{1f}0-1000")];
    let (_, args, _) = run_in(&whole("crates/a/tests/quick.rs"), &listed, false, &packages);
    assert_eq!(
        args,
        [
            "crates/a/tests/quick.rs::adds",
            "crates/a/tests/quick.rs::wobbles"
        ]
    );
    let (_, args, _) = run_in(&whole("crates/b/tests/quick.rs"), &listed, false, &packages);
    assert_eq!(
        args,
        [
            "crates/b/tests/quick.rs::other",
            "crates/b/tests/quick.rs::more"
        ]
    );
    // Its package unknown: every `::quick` line, as before.
    let (_, args, _) = run(&whole("crates/b/tests/quick.rs"), &listed, false);
    assert_eq!(args.len(), 4);
}

#[test]
fn cargo_nextests_list_lines_are_the_tests_of_the_rust_file_their_binary_is_named_after() {
    // `cargo nextest list --message-format oneline`, as cargo-nextest
    // 0.9.143 prints it for a crate `demo` with `tests/quick.rs` and
    // `tests/quickly.rs` (the library's own tests first).
    let listed = [
        "demo tests::it_works",
        "demo::quick adds",
        "demo::quick m::breaks",
        "demo::quickly other",
        "demo::quick wobbles",
    ];
    let mut ran = Vec::new();
    for part in ["tests/quick.rs\u{1f}0-500", "tests/quick.rs\u{1f}500-1000"] {
        let (code, args, file) = run(&[part.to_string()], &listed, false);
        assert_eq!(code, 0, "{part}");
        assert_eq!(args, file);
        ran.extend(args);
    }
    assert_eq!(
        ran,
        [
            "tests/quick.rs::adds",
            "tests/quick.rs::m::breaks",
            "tests/quick.rs::wobbles"
        ]
    );
    // A file of a binary nextest did not list runs whole in its first part.
    let (_, args, _) = run(&["tests/gone.rs\u{1f}0-500".to_string()], &listed, false);
    assert_eq!(args, ["tests/gone.rs"]);
    // A `main.rs` is its directory's binary; what follows the test's name
    // (`-v`'s `[bin: ...]`) is not part of it.
    let listed = [
        "demo::api gets [bin: target/debug/deps/api-1f2e]",
        "demo::api puts",
    ];
    let (_, args, _) = run(
        &["tests/api/main.rs\u{1f}0-1000".to_string()],
        &listed,
        false,
    );
    assert_eq!(args, ["tests/api/main.rs::gets", "tests/api/main.rs::puts"]);
    assert_eq!(rust_test_binary("tests/api/main.rs"), Some("api"));
    assert_eq!(rust_test_binary("main.rs"), None);
    assert_eq!(rust_test_binary("tests/a.py"), None);
}

#[test]
fn parts_hold_equal_time_by_the_profile_their_last_split_learned() {
    // Last run, big.py's first half of its tests took 900 ms, its second
    // 100 ms: its slow tests are at the start.
    let profile = Profile::new(vec![(500, 1000, 100), (0, 500, 900)]).unwrap();
    assert_eq!(share(Some(&profile), &[(0, 500)]), 0.9);
    assert_eq!(share(Some(&profile), &[(0, 250), (500, 1000)]), 0.55);
    assert_eq!(share(None, &[(0, 250)]), 0.25);
    // Two shards of 500 ms each: a part of the first 278 thousandths and
    // one of the rest (each 500 ms by the profile), not halves.
    let groups = fill(
        &names(&["big.py"]),
        &[1000],
        (2, 0, 1),
        None,
        &[Some(profile)],
    );
    assert_eq!(
        groups,
        [
            names(&["big.py\u{1f}0-278"]),
            names(&["big.py\u{1f}278-1000"])
        ]
    );
    assert_eq!(complete(&groups), Ok(()));
    // A profile must cover the list once and hold some time.
    assert_eq!(Profile::new(vec![(0, 500, 1), (600, 1000, 1)]), None);
    assert_eq!(Profile::new(vec![(0, 500, 1), (400, 1000, 1)]), None);
    assert_eq!(Profile::new(vec![(0, 1000, 0)]), None);
}

#[test]
fn a_newer_profile_refines_an_older_one_keeping_its_shape_within_each_newer_segment() {
    // Older: the first half took 900 ms, the second 100 ms. Newer parts
    // cut at 250: 600 ms before, 500 ms after.
    let older = Profile::new(vec![(0, 500, 900), (500, 1000, 100)]).unwrap();
    let newer = Profile::new(vec![(0, 250, 600), (250, 1000, 500)]).unwrap();
    let told = older.told(&newer);
    // 250..1000 held 450 + 100 by the older: the newer 500 split so
    // (nine tenths by that shape, a tenth by positions): 600, 385, 115;
    // each then averaged with the older's time there, scaled to the
    // newer's total (1,100 of 1,000): 495, 495, 110.
    assert_eq!(
        told.segments(),
        [(0, 250, 548), (250, 500, 440), (500, 1000, 113)]
    );
    // A stretch the older held no time in is not held at none.
    let idle = Profile::new(vec![(0, 500, 0), (500, 1000, 1000)]).unwrap();
    let newer = Profile::new(vec![(0, 750, 600), (750, 1000, 400)]).unwrap();
    assert_eq!(
        idle.told(&newer).segments(),
        [(0, 500, 20), (500, 750, 530), (750, 1000, 450)]
    );
    // Runs whose halves take 60:40 and 40:60 of the time by turns (a
    // test's inputs drawn anew each run) leave the profile near even,
    // where the last run alone would swing it by a fifth each time.
    let mut p = Profile::new(vec![(0, 500, 500), (500, 1000, 500)]).unwrap();
    let mut first_half = Vec::new();
    for k in 0..8 {
        let (a, b) = if k % 2 == 0 { (600, 400) } else { (400, 600) };
        p = p.told(&Profile::new(vec![(0, 500, a), (500, 1000, b)]).unwrap());
        first_half.push(p.segments()[0].2);
    }
    let (low, high) = (first_half.iter().min(), first_half.iter().max());
    assert!(low >= Some(&450) && high <= Some(&550), "{first_half:?}");
    // Many runs' cuts stay at most MAX_SEGMENTS.
    let mut p = older;
    for k in 1..200u32 {
        let cut = (k * 7) % 999 + 1;
        p = p.told(&Profile::new(vec![(0, cut, 10), (cut, 1000, 10)]).unwrap());
    }
    assert!(p.segments().len() <= MAX_SEGMENTS);
    assert_eq!(
        (p.segments()[0].0, p.segments().last().unwrap().1),
        (0, 1000)
    );
}

#[test]
fn with_its_tests_counted_a_profile_holds_whole_tests_and_cuts_between_them() {
    // 56 tests: test i at i * 1000 / 56 (660 is the 37th's place, 892
    // the 50th's). Parts cut at 650 and 880 held the tests from those on.
    // (In the order their shards ended.)
    let p = Profile::of_parts(vec![(880, 1000, 200), (0, 650, 300), (650, 880, 500)], 56).unwrap();
    assert_eq!(
        (p.segments(), p.tests()),
        (&[(0, 660, 300), (660, 892, 500), (892, 1000, 200)][..], 56)
    );
    // The same tests, by the same ranges or by their places.
    assert_eq!(
        share(Some(&p), &[(650, 880)]),
        share(Some(&p), &[(660, 892)])
    );
    assert_eq!(share(Some(&p), &[(650, 880)]), 0.5);
    // A part that held no test (a cut between two places) adds its time
    // to the part before.
    let q = Profile::of_parts(vec![(0, 661, 300), (661, 670, 0), (670, 1000, 700)], 56).unwrap();
    assert_eq!(q.segments(), [(0, 678, 300), (678, 1000, 700)]);
    // Unknown count: as before.
    let r = Profile::of_parts(vec![(0, 650, 300), (650, 1000, 700)], 0).unwrap();
    assert_eq!(r.segments(), [(0, 650, 300), (650, 1000, 700)]);

    // Four tests (at 0, 250, 500, 750), the third slow: a cut is at a
    // test's place, on the side whose time is nearer the target.
    let four = Profile::of_parts(vec![(0, 480, 200), (480, 1000, 1100)], 4).unwrap();
    assert_eq!(four.segments(), [(0, 500, 200), (500, 1000, 1100)]);
    // Two empty shards: cut at 750 (750 ms | 550), not at 500 (200 |
    // 1,100) nor through the slow test as an even spread would.
    assert_eq!(cuts(Some(&four), 1300, &[0, 0]), [750]);
    // A shard already holding 500 ms takes the two quick tests only
    // (700 | 1,100), not the slow one too (1,250 | 550).
    assert_eq!(cuts(Some(&four), 1300, &[500, 0]), [500]);
    // Three shards: the slow test's shard holds it alone.
    assert_eq!(cuts(Some(&four), 1300, &[0, 0, 0]), [500, 750]);
    // Told again by parts cut there, it learns where the time lies.
    let parts = Profile::of_parts(vec![(0, 750, 1200), (750, 1000, 100)], 4).unwrap();
    let told = four.told(&parts);
    assert_eq!(told.tests(), 4);
    assert_eq!(
        told.segments()
            .iter()
            .map(|s| (s.0, s.1))
            .collect::<Vec<_>>(),
        [(0, 500), (500, 750), (750, 1000)]
    );
}

#[test]
fn parts_cut_at_every_test_over_many_runs_do_not_make_a_profile_known_test_by_test() {
    // Four tests (at 0, 250, 500, 750), learned part by part only (a
    // Python file): runs whose parts were cut after the first, the
    // second and the third test leave a boundary at every test.
    let mut p = Profile::of_parts(vec![(0, 250, 10), (250, 1000, 30)], 4).unwrap();
    for cut in [500, 750] {
        p = p.told(&Profile::of_parts(vec![(0, cut, 20), (cut, 1000, 20)], 4).unwrap());
    }
    assert_eq!(p.segments().len(), 4);
    // The times within were never learned one test at a time: not dealt.
    assert_eq!((p.by_test(), p.said_by_test()), (false, Some(false)));
    // Told by a run that learned each test's time, it is; and it stays so
    // when a later run's parts are learned as wholes.
    let each = [5, 5, 25, 5];
    let held: Vec<Held<'_>> = vec![(vec![(0, 1000)], 40, &each[..])];
    let q = p.told(&Profile::of_held(&held, 4).unwrap());
    assert!(q.by_test());
    let r = q.told(&Profile::of_parts(vec![(0, 500, 20), (500, 1000, 20)], 4).unwrap());
    assert!(r.by_test());
    // Kept by a swarm that did not say how: as its segments say, until a
    // run tells it by parts (it may have been learned so all along).
    let unsaid = Profile::new(p.segments().to_vec()).unwrap().counted(4);
    assert_eq!((unsaid.by_test(), unsaid.said_by_test()), (true, None));
    let parts = Profile::of_parts(vec![(0, 500, 20), (500, 1000, 20)], 4).unwrap();
    assert!(!unsaid.told(&parts).by_test());
    // Its tests no longer where they were (five now): told by parts, not
    // known test by test any more.
    let five = Profile::of_parts(vec![(0, 600, 20), (600, 1000, 20)], 5).unwrap();
    assert!(!q.told(&five).by_test());
    // A report's absurd time spread without overflowing.
    let huge: Vec<Held<'_>> = vec![(vec![(0, 500), (500, 1000)], u64::MAX, &[1])];
    let (segments, _) = per_test(&huge, 4);
    assert_eq!(
        segments.iter().map(|s| u128::from(s.2)).sum::<u128>(),
        u128::from(u64::MAX)
    );
}

#[test]
fn a_part_whose_report_tells_each_tests_time_makes_a_segment_a_test() {
    // 8 tests, placed at 0, 125, ..., 875; the sixth (at 625) slow. Two
    // parts, cut at 500: the first held tests 0-3, the second 4-7.
    let each: [&[u64]; 2] = [&[10, 10, 10, 10], &[10, 900, 10, 10]];
    let held = |second: &'static [u64], ms: u64| -> Vec<Held<'static>> {
        vec![
            (vec![(0, 500)], 40, &[10, 10, 10, 10]),
            (vec![(500, 1000)], ms, second),
        ]
    };
    let (segments, by_test) = per_test(&held(each[1], 930), 8);
    assert!(by_test);
    assert_eq!(segments.len(), 8);
    assert_eq!(segments[5], (625, 750, 900));
    let p = Profile::of_parts(segments, 8).unwrap();
    assert_eq!(share(Some(&p), &[(625, 750)]), 900.0 / 970.0);
    // Two shards: the slow test's goes alone with what follows it (50 |
    // 920), where the second part taken as even would have cut after it
    // (at 750: 950 | 20, by that profile 505 | 465).
    assert_eq!(cuts(Some(&p), 970, &[0, 0]), [625]);
    let even = Profile::of_parts(vec![(0, 500, 40), (500, 1000, 930)], 8).unwrap();
    assert_eq!(cuts(Some(&even), 970, &[0, 0]), [750]);
    // A part whose times are not as many as its range holds (a test
    // added since, a report cut short), or not known, stays one segment.
    let (segments, by_test) = per_test(&held(&[10, 900, 10], 920), 8);
    assert_eq!((&segments[4..], by_test), (&[(500, 1000, 920)][..], false));
    let (segments, by_test) = per_test(&held(&[], 930), 8);
    assert_eq!((&segments[4..], by_test), (&[(500, 1000, 930)][..], false));
    // Unknown number of tests: the parts as they are.
    assert_eq!(
        per_test(&held(each[1], 930), 0),
        (vec![(0, 500, 40), (500, 1000, 930)], false)
    );
    // A part of two ranges (tests 0-1 and 6-7) tells its tests in the
    // list's order; without them it cannot be told range by range.
    let held: Vec<Held<'_>> = vec![
        (vec![(0, 250), (750, 1000)], 40, &[10, 10, 10, 10]),
        (vec![(250, 750)], 930, &[10, 10, 10, 900]),
    ];
    let (mut segments, _) = per_test(&held, 8);
    segments.sort_unstable();
    assert_eq!(segments.len(), 8);
    assert_eq!(segments[5], (625, 750, 900));
    // Its ranges named out of order: its times are still the list's.
    let reversed: Vec<Held<'_>> = vec![
        (vec![(750, 1000), (0, 250)], 40, &[1, 2, 3, 4]),
        (vec![(250, 750)], 930, &[10, 10, 10, 900]),
    ];
    let (mut again, _) = per_test(&reversed, 8);
    again.sort_unstable();
    assert_eq!((again[0], again[7]), ((0, 125, 1), (875, 1000, 4)));
    // Without them (or with fewer than it holds: a listed test the
    // report left out), its time is spread over its ranges by the tests
    // each holds (two and two here), and the entry is not known test by
    // test.
    let held: Vec<Held<'_>> = vec![
        (vec![(0, 250), (750, 1000)], 40, &[10, 10, 10]),
        (vec![(250, 750)], 930, &[]),
    ];
    let (mut segments, by_test) = per_test(&held, 8);
    segments.sort_unstable();
    assert_eq!(
        (segments, by_test),
        (vec![(0, 250, 20), (250, 750, 930), (750, 1000, 20)], false)
    );
    let profile = Profile::of_held(&held, 8).unwrap();
    assert!(!profile.by_test());
}

#[test]
fn tests_placed_at_one_position_make_one_segment() {
    // 3,000 tests: three at each position. A part of positions 0-2
    // holds tests 0-5 (places 0, 0, 0, 1, 1, 1).
    let each: Vec<u64> = (1..=6).collect();
    let (segments, _) = per_test(&[(vec![(0, 2)], 21, &each[..])], 3000);
    assert_eq!(segments, [(0, 1, 6), (1, 2, 15)]);
}

#[test]
fn a_profile_of_many_tests_keeps_its_slow_ones_apart_when_capped() {
    // 600 tests of 1 ms, the 300th slow: more segments than are kept.
    let mut each = vec![1u64; 600];
    each[300] = 2000;
    let held: Vec<Held<'_>> = vec![(vec![(0, 1000)], 2599, &each[..])];
    assert_eq!(per_test(&held, 600).0.len(), 600);
    let p = Profile::of_held(&held, 600).unwrap();
    assert!(p.by_test());
    assert!(p.segments().len() <= MAX_SEGMENTS);
    // The slow test is still a segment of its own: at 500 (300 * 1000 /
    // 600), up to the next test's place.
    let slow = p.segments().iter().find(|s| s.2 >= 2000);
    assert_eq!(slow, Some(&(500, 501, 2000)));
    assert_eq!(
        (p.segments()[0].0, p.segments().last().unwrap().1),
        (0, 1000)
    );
}

#[test]
fn long_entries_whose_tests_are_known_are_dealt_test_by_test() {
    // Three shards; two long files of five tests each, the slow one
    // (1,000 ms) first in both, beside a small file (200 ms). Parts of one
    // range each, cut in turn, leave one shard at 1,200 ms: the shard
    // holding the small file cannot take a slow test under the level,
    // and the rest of each file follows its slow test.
    let entries = names(&["a.rs", "b.rs", "c.rs"]);
    let tests = |ms: [u64; 5]| -> Option<Profile> {
        let each = ms.to_vec();
        let held: Vec<Held<'_>> = vec![(vec![(0, 1000)], ms.iter().sum(), &each)];
        Profile::of_held(&held, 5)
    };
    let profiles = vec![
        tests([1000, 100, 100, 100, 100]),
        tests([1000, 100, 100, 100, 100]),
        None,
    ];
    assert!(profiles[0].as_ref().is_some_and(Profile::by_test));
    let groups = fill(&entries, &[1400, 1400, 200], (3, 0, 1), None, &profiles);
    assert_eq!(
        groups,
        [
            names(&["a.rs\u{1f}200-1000", "b.rs\u{1f}200-1000", "c.rs"]),
            names(&["a.rs\u{1f}0-200"]),
            names(&["b.rs\u{1f}0-200"]),
        ]
    );
    // Known only part by part (one part: the whole file), the same files
    // are poured and cut.
    let coarse = vec![
        Profile::of_parts(vec![(0, 1000, 1400)], 5),
        Profile::of_parts(vec![(0, 1000, 1400)], 5),
        None,
    ];
    assert!(!coarse[0].as_ref().is_some_and(Profile::by_test));
    assert_ne!(
        fill(&entries, &[1400, 1400, 200], (3, 0, 1), None, &coarse),
        groups
    );
    // The ranges of one shard's tests of a file are joined where they
    // meet.
    assert_eq!(joined(vec![(0, 7), (7, 14), (20, 30)]), [(0, 14), (20, 30)]);
}

#[test]
fn parts_of_many_ranges_run_each_listed_test_once_and_just_their_own() {
    // Ten tests, slow and quick by turns, dealt over three shards: each
    // part holds several stretches of the list.
    let times: Vec<u64> = (0..10).map(|i| if i % 2 == 0 { 500 } else { 20 }).collect();
    let held: Vec<Held<'_>> = vec![(vec![(0, 1000)], times.iter().sum(), &times)];
    let profile = Profile::of_held(&held, 10);
    let groups = fill(
        &names(&["big.py", "a.py"]),
        &[2600, 100],
        (3, 0, 1),
        None,
        &[profile, None],
    );
    let parts = parts_of(&groups);
    assert_eq!(parts.len(), 3);
    let most = parts.iter().map(|p| parse(p).unwrap().ranges.len()).max();
    assert!(most > Some(1), "{parts:?}");
    // Any length of list (a test added or gone since): each test once.
    for count in [1usize, 7, 10, 13, 31] {
        let tests: Vec<String> = (0..count).map(|i| format!("big.py::test_{i:02}")).collect();
        let listed: Vec<&str> = tests.iter().map(String::as_str).collect();
        let mut ran = Vec::new();
        for part in &parts {
            let (code, args, file) = run(&[(*part).clone()], &listed, false);
            assert_eq!(code, 0, "{part} of {count}");
            assert_eq!(args, file);
            // As many as the list: exactly the tests at its positions.
            if count == 10 {
                let ranges = parse(part).unwrap().ranges;
                let own: Vec<String> = (0..10u32)
                    .filter(|i| ranges.iter().any(|&(lo, hi)| (lo..hi).contains(&(i * 100))))
                    .map(|i| format!("big.py::test_{i:02}"))
                    .collect();
                assert_eq!(args, own, "{part}");
            }
            ran.extend(args);
        }
        ran.sort();
        assert_eq!(ran, tests, "each of {count} listed tests once");
    }
}

#[test]
fn on_two_threads_a_slow_test_is_dealt_where_it_runs_beside_the_rest() {
    // A long file of one slow test (600 ms as learned: 1.2 s on a thread
    // of two) and five of 100, between two short files. Summed, the slow
    // test goes to the shard that holds `a.rs`, where it runs after the
    // file, alone on one thread while the other stands idle: 1.7 s.
    // First in a shard's list, beside `z.rs`, it takes 1.2 s.
    let entries = names(&["a.rs", "big.rs", "z.rs"]);
    let each = vec![600, 100, 100, 100, 100, 100];
    let held: Vec<Held<'_>> = vec![(vec![(0, 1000)], 1100, &each)];
    let profiles = vec![None, Profile::of_held(&held, 6), None];
    let weights = [500, 1100, 500];
    let summed = fill(&entries, &weights, (2, 0, 1), None, &profiles);
    assert_eq!(
        summed,
        [
            names(&["a.rs", "big.rs\u{1f}0-166"]),
            names(&["big.rs\u{1f}166-1000", "z.rs"]),
        ]
    );
    let threaded = fill(&entries, &weights, (2, 0, 2), None, &profiles);
    assert_eq!(
        threaded,
        [
            names(&["a.rs", "big.rs\u{1f}166-1000"]),
            names(&["big.rs\u{1f}0-166", "z.rs"]),
        ]
    );
    // What each shard is expected to take on two threads.
    let schedule = Schedule::new(&weights, &profiles, 2);
    let longest = |groups: &[Vec<String>]| {
        groups
            .iter()
            .map(|g| {
                let items: Vec<Placed> = g
                    .iter()
                    .map(|n| {
                        let i = entries.iter().position(|e| e == whole(n)).unwrap();
                        (i, parse(n).map(|p| p.ranges))
                    })
                    .collect();
                schedule.span(items.iter().map(|(i, r)| (*i, r.as_deref())))
            })
            .max()
            .unwrap()
    };
    assert_eq!(longest(&summed), 1700);
    assert_eq!(longest(&threaded), 1200);
}

#[test]
fn many_long_files_dealt_on_two_threads_run_each_test_once() {
    // Seven files of 300 tests each, longer than a mean shard of eight,
    // beside short ones: dealt test by test, then the slowest moved and
    // swapped between shards (or, past the schedule's budget, placed by
    // their sums): every test still runs in exactly one shard.
    let entries: Vec<String> = (0..24).map(|i| format!("tests/f{i:02}.rs")).collect();
    let times: Vec<Vec<u64>> = (0..24u64)
        .map(|e| (0..300u64).map(|t| 5 + (t * 37 + e * 11) % 400).collect())
        .collect();
    let profiles: Vec<Option<Profile>> = times
        .iter()
        .map(|each| {
            let held: Vec<Held<'_>> = vec![(vec![(0, 1000)], each.iter().sum(), &each[..])];
            Profile::of_held(&held, 300)
        })
        .collect();
    let weights: Vec<u64> = (0..24).map(|i| if i < 7 { 100_000 } else { 500 }).collect();
    let groups = fill(&entries, &weights, (8, 500, 2), None, &profiles);
    assert_eq!(groups.len(), 8);
    assert_eq!(complete(&groups), Ok(()));
    let split = parts_of(&groups)
        .iter()
        .map(|p| whole(p))
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(split.len(), 7, "{split:?}");
}
