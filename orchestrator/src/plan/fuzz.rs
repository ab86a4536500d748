//! The plan parser under random input (proptest): whatever the text, it
//! never panics, and it answers with a valid plan or an error that points
//! into the text (or, for whole-file problems, names the file), which
//! renders as people see it without panicking either. Besides random
//! lines, the generators make what fuzzing `swarm validate` found: lines
//! past column 65,535, matrices of millions of combinations, deep nesting,
//! NUL bytes, huge numbers, long ids and cycles. The inputs that found
//! each bug are regression tests at the end.

use std::path::Path;

use proptest::prelude::*;

use super::parse;

/// Lines a plan is made of, right and wrong, so that random plans get past
/// the TOML syntax and exercise the checks behind it.
fn line() -> impl Strategy<Value = String> {
    let header = prop::sample::select(vec![
        "[swarm]",
        "[[task]]",
        "[defaults]",
        "[models.default]",
        "[models.other]",
        "[task]",
        "[[swarm]]",
    ])
    .prop_map(str::to_string);
    let key = prop::sample::select(vec![
        "id",
        "deps",
        "run",
        "wasm",
        "prompt",
        "model",
        "timeout",
        "retries",
        "verify",
        "paths",
        "creates",
        "sparse",
        "allow_overlap",
        "isolation",
        "network",
        "memory",
        "processes",
        "max_output",
        "max_file_size",
        "matrix",
        "env",
        "args",
        "fuel",
        "max_turns",
        "budget",
        "repair_rounds",
        "name",
        "base",
        "concurrency",
        "sandbox",
        "on_failure",
        "history",
        "read_paths",
        "min_free_space",
        "plan_repair_rounds",
        "provider",
        "base_url",
        "api_key_env",
        "price",
        "tokens_per_minute",
        "requests_per_minute",
        "max_tokens",
        "tiemout",
    ]);
    let value = prop::sample::select(vec![
        "\"a\"",
        "\"b-{x}\"",
        "\"Bad Id\"",
        "\"\"",
        "\"90s\"",
        "\"soon\"",
        "\"2GiB\"",
        "\"-1\"",
        "0",
        "1",
        "-3",
        "18446744073709551615",
        "true",
        "1.5",
        "[\"a\"]",
        "[\"a\", \"b\"]",
        "[]",
        "[1, 2]",
        "{ x = [1, 2] }",
        "{ x = [] }",
        "{ A = \"1\" }",
        "{ tokens = 0 }",
        "{ usd = 2.0 }",
        "{ tokens = 5, usd = -1.0 }",
        "\"anthropic\"",
        "\"openai\"",
        "\"readonly\"",
        "\"full\"",
        "\"none\"",
        "\"continue\"",
        "\"http://x\"",
        "\"../x\"",
        "\"é\\u0000\"",
        "{ input = 1.0, output = 2.0 }",
    ]);
    let pair = (key, value).prop_map(|(k, v)| format!("{k} = {v}"));
    prop_oneof![1 => header, 4 => pair, 1 => "\\PC{0,20}"]
}

fn check(text: String) -> Result<(), TestCaseError> {
    let len = text.len();
    match parse(Path::new("fuzz.toml"), text) {
        Ok(plan) => {
            prop_assert!(!plan.tasks.is_empty());
            prop_assert!(plan.tasks.len() <= super::expand::MAX_PLAN_TASKS);
        }
        Err(e) => {
            for one in e.all() {
                prop_assert!(!one.message.is_empty());
                match one.span {
                    Some(span) => prop_assert!(span.offset() + span.len() <= len, "{one:?}"),
                    None => prop_assert!(one.message.contains("fuzz.toml"), "{one:?}"),
                }
            }
            // As the CLI shows it: never a panic, whatever the column.
            let errors: Vec<_> = e.all().collect();
            let shown = super::render(&errors, miette::Severity::Error, e.omitted, false);
            prop_assert!(!shown.is_empty());
        }
    }
    Ok(())
}

/// Plans made to hurt: one huge line, a matrix explosion, deep nesting,
/// NUL bytes, huge numbers, long ids, cycles.
fn hostile() -> impl Strategy<Value = String> {
    let long_line = (60_000usize..80_000, "[a-z\\\"]{0,3}").prop_map(|(n, tail)| {
        format!(
            "task = [{{ id = \"a\", run = \"{}{tail}\", timeout = 5 }}]\n",
            "x".repeat(n)
        )
    });
    let matrix = (1usize..7, 1usize..60).prop_map(|(keys, values)| {
        let list = (0..values)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let keys: Vec<String> = (0..keys).map(|k| format!("k{k}")).collect();
        let id = keys
            .iter()
            .map(|k| format!("{{{k}}}"))
            .collect::<Vec<_>>()
            .join("-");
        let table = keys
            .iter()
            .map(|k| format!("{k} = [{list}]"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("[[task]]\nid = \"t-{id}\"\nrun = \"true\"\nmatrix = {{ {table} }}\n")
    });
    let nesting = (1usize..200, prop::bool::ANY).prop_map(|(depth, arrays)| {
        if arrays {
            format!(
                "[[task]]\nid = \"a\"\nrun = \"x\"\nargs = {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            )
        } else {
            format!(
                "x = {}1{}\n[[task]]\nid = \"a\"\nrun = \"x\"\n",
                "{ a = ".repeat(depth),
                " }".repeat(depth)
            )
        }
    });
    let nul = "[a-z ]{0,10}".prop_map(|s| format!("[[task]]\nid = \"a\0{s}\"\nrun = \"\0\"\n"));
    let huge = prop::sample::select(vec![
        "retries = 99999999999999999999999",
        "processes = 18446744073709551616",
        "fuel = -1",
        "timeout = \"99999999999999999999y\"",
        "memory = \"999999999999 EiB\"",
        "max_turns = 4294967296",
    ])
    .prop_map(|k| format!("[[task]]\nid = \"a\"\nrun = \"x\"\n{k}\n"));
    let long_id = (100usize..5000)
        .prop_map(|n| format!("[[task]]\nid = \"{}\"\nrun = \"x\"\n", "a".repeat(n)));
    let cycle = (2usize..200).prop_map(|n| {
        (0..n)
            .map(|i| {
                format!(
                    "[[task]]\nid = \"t{i}\"\nrun = \"x\"\ndeps = [\"t{}\"]\n",
                    (i + 1) % n
                )
            })
            .collect::<String>()
    });
    prop_oneof![long_line, matrix, nesting, nul, huge, long_id, cycle]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_gives_a_plan_or_a_positioned_error(text in "\\PC{0,300}") {
        check(text)?;
    }

    #[test]
    fn plan_shaped_text_gives_a_plan_or_a_positioned_error(lines in prop::collection::vec(line(), 0..40)) {
        check(lines.join("\n"))?;
    }

    /// What fuzzing `swarm validate` found, generated: still a plan or a
    /// positioned error, never a panic, never unbounded.
    #[test]
    fn hostile_plans_give_a_plan_or_a_positioned_error(text in hostile()) {
        check(text)?;
    }

    /// Starting from a valid task, so that random keys reach the checks
    /// behind the syntax (defaults, matrices, dependencies, models).
    #[test]
    fn a_valid_task_with_random_keys_gives_a_plan_or_a_positioned_error(
        lines in prop::collection::vec(line(), 0..12),
        more in prop::collection::vec(line(), 0..12),
    ) {
        let text = format!(
            "[[task]]\nid = \"t\"\nrun = \"x\"\n{}\n[[task]]\nid = \"u\"\ndeps = [\"t\"]\n{}\n",
            lines.join("\n"),
            more.join("\n")
        );
        check(text)?;
    }
}

/// The inputs that found each bug, kept as they were found.
mod regressions {
    use std::path::Path;

    use super::super::{PlanErrorKind, load, parse, render};

    fn shown(text: &str) -> String {
        let e = parse(Path::new("fuzz.toml"), text.into()).unwrap_err();
        let errors: Vec<_> = e.all().collect();
        render(&errors, miette::Severity::Error, e.omitted, false)
    }

    /// A plan error past column 65,535 made the renderer panic
    /// (`Formatting argument out of range`), exit 101.
    #[test]
    fn an_error_past_column_65535_is_shown_cut_not_a_panic() {
        let text = format!(
            "task = [{{ id = \"a\", run = \"{}\", timeout = 5 }}]\n",
            "x".repeat(70_000)
        );
        let shown = shown(&text);
        assert!(
            shown.contains("column 70041 of a long line, shown cut"),
            "{shown}"
        );
        assert!(shown.len() < 4000, "{} bytes shown", shown.len());
    }

    /// 5 keys of 40 values (102 million combinations) ran out of memory;
    /// 160,000 took 3.4 GB.
    #[test]
    fn a_matrix_of_millions_is_refused_by_its_count_before_expanding() {
        let list = (0..40)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "[[task]]\nid = \"t-{{a}}-{{b}}-{{c}}-{{d}}-{{e}}\"\nrun = \"true\"\nmatrix = {{ a = [{list}], b = [{list}], c = [{list}], d = [{list}], e = [{list}] }}\n"
        );
        let started = std::time::Instant::now();
        let e = parse(Path::new("fuzz.toml"), text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(
            e.message,
            "the matrix has 102400000 combinations (a: 40 × b: 40 × c: 40 × d: 40 × e: 40), more than the 10000 one task may have"
        );
        assert!(e.span.is_some() && e.help.is_some());
    }

    /// Many matrices within the limit still add up to a bounded plan.
    #[test]
    fn a_plan_past_its_task_limit_is_refused() {
        let list = (0..10_000)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let text: String = (0..11)
            .map(|i| {
                format!(
                    "[[task]]\nid = \"t{i}-{{n}}\"\nrun = \"true\"\nmatrix = {{ n = [{list}] }}\n"
                )
            })
            .collect();
        let e = parse(Path::new("fuzz.toml"), text).unwrap_err();
        assert!(
            e.all()
                .any(|e| e.message.starts_with("the plan has more than 100000 tasks")),
            "{e:?}"
        );
    }

    /// Invalid UTF-8 said neither line nor byte.
    #[test]
    fn a_plan_that_is_not_utf8_is_refused_at_its_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.toml");
        std::fs::write(&path, b"[[task]]\nid = \"a\"\nrun = \"echo \xff\"\n").unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.kind, PlanErrorKind::Syntax);
        assert_eq!(
            e.message,
            "the plan is not UTF-8 text: byte 0xff at line 3, column 13 (byte offset 30)"
        );
        assert!(e.span.is_some() && e.help.is_some());
    }

    /// A table nested 100 deep said "recursion limit" with no help.
    #[test]
    fn deep_nesting_is_positioned_with_help() {
        let text = format!("x = {}1{}\n", "{ a = ".repeat(100), " }".repeat(100));
        let e = parse(Path::new("fuzz.toml"), text).unwrap_err();
        assert!(e.span.is_some(), "{e:?}");
        assert!(
            e.help.as_deref().unwrap_or_default().contains("flatten it"),
            "{e:?}"
        );
    }

    #[test]
    fn a_plan_without_tasks_says_how_to_add_one() {
        for text in ["", "task = []\n", "[swarm]\nconcurrency = 2\n"] {
            let e = parse(Path::new("fuzz.toml"), text.into()).unwrap_err();
            assert_eq!(e.kind, PlanErrorKind::Empty);
            assert!(e.help.as_deref().unwrap_or_default().contains("[[task]]"));
        }
    }
}
