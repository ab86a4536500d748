//! The plan parser under random input (proptest): whatever the text, it
//! never panics, and it answers with a valid plan or an error that points
//! into the text (or, for whole-file problems, names the file).

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
        }
        Err(e) => {
            prop_assert!(!e.message.is_empty());
            match e.span {
                Some(span) => prop_assert!(span.offset() + span.len() <= len, "{e:?}"),
                None => prop_assert!(e.message.contains("fuzz.toml"), "{e:?}"),
            }
        }
    }
    Ok(())
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
