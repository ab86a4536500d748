//! The planner's writer: a model's [`Answer`] as a plan file a person
//! would be glad to edit. The configuration's text comes first, unchanged
//! (its settings, defaults and models apply), then the base pinned to the
//! commit the model saw, the run-wide verify, and one `[[task]]` per unit
//! of work, each under a comment saying why it exists. The output is
//! deterministic: the same answer and context give the same bytes.

use std::fmt::Write as _;

use super::answer::{Answer, Unit};
use crate::plan::Template;

/// What the header and the pinned settings say besides the answer.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    pub goal: &'a str,
    /// The model's name in `[models]` and what it is (`mock-model via anthropic`).
    pub model: &'a str,
    pub model_desc: String,
    /// The base as given (`HEAD`) and the commit it named.
    pub base_rev: &'a str,
    pub base_commit: String,
    /// The repository map's hash, size and file name (beside the plan).
    pub map_hash: &'a str,
    pub map_tokens: usize,
    pub map_file: &'a str,
}

/// The plan text for `answer`.
pub fn render(answer: &Answer, header: &Header<'_>, template: &Template) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Plan written by `swarm plan`: review and edit it, then `swarm run` it."
    );
    for (i, line) in header.goal.lines().enumerate() {
        let _ = writeln!(
            out,
            "# {}{}",
            if i == 0 { "Goal:    " } else { "         " },
            comment(line)
        );
    }
    let _ = writeln!(
        out,
        "# Model:   {} ({})",
        header.model,
        comment(&header.model_desc)
    );
    let _ = writeln!(
        out,
        "# Base:    {} = {}",
        header.base_rev, header.base_commit
    );
    let _ = writeln!(
        out,
        "# Context: repository map {} ({} tokens), saved as {}",
        header.map_hash, header.map_tokens, header.map_file
    );
    let verdict = if answer.split {
        format!("split into {} tasks", answer.tasks.len())
    } else {
        "one task is best here".to_string()
    };
    for (i, line) in format!("{verdict}: {}", answer.reason.trim())
        .lines()
        .enumerate()
    {
        let _ = writeln!(
            out,
            "# {}{}",
            if i == 0 { "Planner: " } else { "         " },
            comment(line)
        );
    }
    out.push('\n');

    let mut config = template.source.text.trim_end().to_string();
    if template.base.is_none() {
        config = set_key(
            &config,
            "swarm",
            &format!("base = {}", string(&header.base_commit)),
        );
    }
    if let (None, Some(verify)) = (&template.verify, &answer.verify) {
        config = set_key(&config, "defaults", &format!("verify = {}", string(verify)));
    }
    out.push_str(config.trim());
    out.push('\n');

    for unit in &answer.tasks {
        out.push('\n');
        task(&mut out, unit);
    }
    out
}

fn task(out: &mut String, unit: &Unit) {
    for line in unit.why.trim().lines() {
        let _ = writeln!(out, "# {}", comment(line.trim()));
    }
    out.push_str("[[task]]\n");
    let _ = writeln!(out, "id = {}", string(&unit.id));
    for (key, list) in [
        ("deps", &unit.deps),
        ("paths", &unit.paths),
        ("creates", &unit.creates),
    ] {
        if !list.is_empty() {
            let items: Vec<String> = list.iter().map(|s| string(s)).collect();
            let _ = writeln!(out, "{key} = [{}]", items.join(", "));
        }
    }
    if unit.readonly {
        out.push_str("isolation = \"readonly\"\n");
    }
    if unit.allow_overlap {
        out.push_str("allow_overlap = true\n");
    }
    if let Some(verify) = &unit.verify {
        let _ = writeln!(out, "verify = {}", string(verify));
    }
    if let Some(run) = &unit.run {
        let _ = writeln!(out, "run = {}", string(run));
    }
    if let Some(prompt) = &unit.prompt {
        let _ = writeln!(out, "prompt = {}", string(prompt));
    }
}

/// One line of text as a TOML comment's content: TOML allows no control
/// characters there (but tab), so they are written escaped.
fn comment(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `key = value` set in table `[table]` of `config`: added right under the
/// table's header line, or in a new table at the end when there is none.
fn set_key(config: &str, table: &str, line: &str) -> String {
    let header = format!("[{table}]");
    let mut out = String::new();
    let mut done = false;
    for l in config.lines() {
        out.push_str(l);
        out.push('\n');
        if !done && l.trim_start().starts_with(&header) {
            out.push_str(line);
            out.push('\n');
            done = true;
        }
    }
    if !done {
        if !out.trim().is_empty() {
            out.push('\n');
        }
        let _ = write!(out, "{header}\n{line}\n");
    }
    out
}

/// `s` as a TOML string: a basic string on one line, or a multi-line basic
/// string for text with line breaks (prompts stay readable).
pub fn string(s: &str) -> String {
    if !s.contains('\n') {
        let mut out = String::from("\"");
        escape(&mut out, s, false);
        out.push('"');
        return out;
    }
    let mut out = String::from("\"\"\"\n");
    escape(&mut out, s, true);
    if !s.ends_with('\n') {
        // A closing `"""` on a line of its own; the text's last line break
        // is escaped away so the value is exactly `s`.
        out.push_str("\\\n");
    }
    out.push_str("\"\"\"");
    out
}

fn escape(out: &mut String, s: &str, multiline: bool) {
    let mut quotes = 0;
    for c in s.chars() {
        match c {
            '"' if multiline => {
                // Three quotes in a row would end the string.
                quotes += 1;
                if quotes == 3 {
                    out.push_str("\\\"");
                    quotes = 0;
                    continue;
                }
                out.push('"');
                continue;
            }
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' if multiline => out.push('\n'),
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
        quotes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_back_exactly() {
        for s in [
            "plain",
            "quote \" and back\\slash",
            "two\nlines",
            "ends with newline\n",
            "three \"\"\" quotes\nand more \"\"\"\"",
            "tab\tand \u{1} control",
            "\n",
        ] {
            let doc = format!("v = {}\n", string(s));
            let value: toml::Table = toml::from_str(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(value["v"].as_str(), Some(s), "{doc}");
        }
    }

    #[test]
    fn keys_go_under_their_table_or_into_a_new_one() {
        let with = "[swarm]\nconcurrency = 2\n\n[models.default]\nprovider = \"anthropic\"";
        assert_eq!(
            set_key(with, "swarm", "base = \"x\""),
            "[swarm]\nbase = \"x\"\nconcurrency = 2\n\n[models.default]\nprovider = \"anthropic\"\n"
        );
        assert_eq!(
            set_key("", "swarm", "base = \"x\""),
            "[swarm]\nbase = \"x\"\n"
        );
        // `[swarm.x]` is not `[swarm]`... but TOML has no such table in a plan;
        // `[defaults]` is found even after other tables.
        assert!(
            set_key(with, "defaults", "verify = \"t\"")
                .ends_with("\n\n[defaults]\nverify = \"t\"\n")
        );
    }

    /// A model's answer is an untrusted origin: every key the writer
    /// gives a task from it is one any origin may set (`plan::origin`),
    /// so a plan written for a trusted configuration grants nothing the
    /// configuration did not.
    #[test]
    fn a_model_s_answer_sets_only_keys_any_origin_may() {
        use crate::plan::origin::rules::{May, Table, plan_rule};
        use crate::planner::answer::Unit;
        let unit = Unit {
            id: "a".into(),
            why: "w".into(),
            deps: vec!["b".into()],
            paths: vec!["src".into()],
            creates: vec!["new".into()],
            prompt: Some("p".into()),
            run: Some("r".into()),
            verify: Some("v".into()),
            readonly: true,
            allow_overlap: true,
        };
        let mut out = String::new();
        task(&mut out, &unit);
        let table: toml::Table = toml::from_str(&out).unwrap();
        let written = table["task"].as_array().unwrap()[0].as_table().unwrap();
        for key in written.keys() {
            let rule = plan_rule(Table::Task, key).unwrap();
            assert_eq!(rule.may, May::Any, "`{key}` from a model's answer");
        }
        // The answer's `verify` goes to `[defaults] verify`.
        assert_eq!(
            plan_rule(Table::Task, "verify").map(|r| r.may),
            Some(May::Any)
        );
        assert_eq!(written.len(), 9, "every field of a unit is written");
    }

    mod roundtrip {
        use std::path::Path;

        use proptest::prelude::*;

        use super::super::*;
        use crate::planner::answer::{Answer, Unit};

        fn text() -> impl Strategy<Value = String> {
            // Quotes, backslashes, line breaks, control and non-ASCII
            // characters: everything a prompt may hold.
            // (No `{`: a `{word}` is a matrix placeholder, refused outside
            // a matrix.)
            proptest::string::string_regex("[a-z][a-z \"\\\n\t\u{1}\u{7f}é✓'#\\[\\]=]{0,40}")
                .unwrap()
        }

        fn answer() -> impl Strategy<Value = Answer> {
            (1usize..6)
                .prop_flat_map(|n| {
                    proptest::collection::vec(
                        (
                            any::<bool>(),
                            text(),
                            text(),
                            proptest::option::of(text()),
                            proptest::collection::vec(0usize..8, 0..3),
                            proptest::collection::vec(any::<usize>(), 0..3),
                            any::<bool>(),
                            any::<bool>(),
                        ),
                        n,
                    )
                })
                .prop_map(|units| {
                    let tasks = units
                        .into_iter()
                        .enumerate()
                        .map(
                            |(i, (agent, why, body, verify, paths, deps, readonly, allow))| Unit {
                                id: format!("t{i}"),
                                why,
                                // Earlier tasks only: a graph, never a cycle.
                                deps: {
                                    let mut d: Vec<String> = deps
                                        .iter()
                                        .filter(|_| i > 0)
                                        .map(|d| format!("t{}", d % i.max(1)))
                                        .collect();
                                    d.sort();
                                    d.dedup();
                                    d
                                },
                                paths: {
                                    let mut p: Vec<String> =
                                        paths.iter().map(|p| format!("dir{p}/f.txt")).collect();
                                    p.dedup();
                                    p
                                },
                                creates: Vec::new(),
                                prompt: agent.then(|| body.clone()),
                                run: (!agent).then_some(body),
                                verify: verify.filter(|v| !v.trim().is_empty()),
                                readonly,
                                allow_overlap: allow,
                            },
                        )
                        .collect();
                    Answer {
                        split: true,
                        reason: "r".into(),
                        verify: None,
                        tasks,
                    }
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn every_accepted_plan_reads_back_as_the_same_graph(answer in answer(), goal in text()) {
                let template = crate::plan::parse_template(
                    Path::new("swarm.toml"),
                    "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n".into(),
                ).unwrap();
                let header = Header {
                    goal: &goal,
                    model: "default",
                    model_desc: "m via anthropic".into(),
                    base_rev: "HEAD",
                    base_commit: "0123456789012345678901234567890123456789".into(),
                    map_hash: "abc",
                    map_tokens: 10,
                    map_file: "plan.map.md",
                };
                let written = render(&answer, &header, &template);
                let plan = crate::plan::parse(Path::new("plan.toml"), written.clone());
                prop_assert!(plan.is_ok(), "{}\n{:?}", written, plan.err());
                let plan = plan.unwrap();
                prop_assert_eq!(plan.tasks.len(), answer.tasks.len());
                prop_assert_eq!(&plan.base, "0123456789012345678901234567890123456789");
                for (task, unit) in plan.tasks.iter().zip(&answer.tasks) {
                    prop_assert_eq!(&task.id, &unit.id);
                    let mut deps = task.deps.clone();
                    deps.sort();
                    prop_assert_eq!(deps, unit.deps.clone());
                    prop_assert_eq!(&task.paths, &unit.paths);
                    prop_assert_eq!(task.verify.as_ref(), unit.verify.as_ref());
                    prop_assert_eq!(task.allow_overlap, unit.allow_overlap);
                    prop_assert_eq!(
                        task.isolation == swarm_protocol::Isolation::Readonly,
                        unit.readonly
                    );
                    prop_assert_eq!(task.command(), unit.run.as_deref());
                    prop_assert_eq!(task.agent().map(|a| a.prompt.as_str()), unit.prompt.as_deref());
                }
            }
        }
    }
}
