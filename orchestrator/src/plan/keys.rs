//! Every misspelt key of a plan at once. serde stops at the first unknown
//! field, so three typos took three runs; when a plan does not read, its
//! tables are walked against the keys each one takes (from the plan's own
//! JSON schema, so a new key is known here as soon as it exists) and every
//! key that is not one of them is reported at its place, with a "did you
//! mean". A TOML or serde error of a plan that does not read is put in
//! swarm's words here too ([`toml_error`]).

use std::collections::BTreeSet;

use serde_json::Value;
use toml::de::{DeTable, DeValue};

use super::error::{PlanError, PlanErrorKind, Source, did_you_mean};
use super::schema::PlanFile;

/// The keys each kind of table takes.
struct Known {
    top: BTreeSet<String>,
    swarm: BTreeSet<String>,
    task: BTreeSet<String>,
    model: BTreeSet<String>,
    executor: BTreeSet<String>,
}

impl Known {
    fn from_schema() -> Self {
        let schema = serde_json::to_value(schemars::schema_for!(PlanFile)).unwrap_or_default();
        let props = |v: &Value| -> BTreeSet<String> {
            v.get("properties")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        let def = |name: &str| props(&schema["$defs"][name]);
        Self {
            top: props(&schema),
            swarm: def("SwarmSection"),
            task: def("TaskFields"),
            model: def("ModelFields"),
            executor: def("ExecutorSection"),
        }
    }
}

/// Every key of `source` that its table does not take, one error each, in
/// file order; nothing if the text is not TOML at all (the parser's own
/// error says where).
pub(super) fn unknown(source: &Source) -> Vec<PlanError> {
    let Ok(document) = DeTable::parse(&source.text) else {
        return Vec::new();
    };
    let known = Known::from_schema();
    let mut errors = Vec::new();
    let mut check = |table: &DeTable<'_>, keys: &BTreeSet<String>, what: &str| {
        for (key, _) in table.iter() {
            let name: &str = key.get_ref();
            if !keys.contains(name) {
                errors.push(error(source, name, key.span(), keys, what));
            }
        }
    };
    let root = document.get_ref();
    check(root, &known.top, "the plan");
    for (key, value) in root.iter() {
        let name: &str = key.get_ref();
        match (name, value.get_ref()) {
            ("swarm", DeValue::Table(t)) => check(t, &known.swarm, "[swarm]"),
            ("defaults", DeValue::Table(t)) => check(t, &known.task, "[defaults]"),
            ("executor", DeValue::Table(t)) => check(t, &known.executor, "[executor]"),
            ("task", DeValue::Array(tasks)) => {
                for task in tasks.iter() {
                    if let DeValue::Table(t) = task.get_ref() {
                        check(t, &known.task, "[[task]]");
                    }
                }
            }
            ("models", DeValue::Table(models)) => {
                for (_, model) in models.iter() {
                    if let DeValue::Table(t) = model.get_ref() {
                        check(t, &known.model, "[models.NAME]");
                    }
                }
            }
            _ => {}
        }
    }
    errors.sort_by_key(|e| e.span.map(|s| s.offset()));
    errors
}

/// Every wrong value of each `[[task]]` table and of `[swarm]` and
/// `[defaults]` (serde stops at the first of the whole file). Each table is
/// read on its own, again and again: after a wrong value is found, its
/// key and value are blanked out and the table read once more, so the
/// next one shows. A table's text runs from its header to the end of its
/// last value, so a multi-line string inside it cannot be taken for the
/// next header.
pub(super) fn wrong_values(source: &Source) -> Vec<PlanError> {
    let Ok(document) = DeTable::parse(&source.text) else {
        return Vec::new();
    };
    let known = Known::from_schema();
    let mut errors = Vec::new();
    for (key, value) in document.get_ref().iter() {
        let name: &str = key.get_ref();
        match (name, value.get_ref()) {
            ("swarm", DeValue::Table(t)) => {
                errors.extend(table_values(
                    source,
                    value.span(),
                    t,
                    &known.swarm,
                    "[swarm]",
                ));
            }
            ("defaults", DeValue::Table(t)) => {
                errors.extend(table_values(
                    source,
                    value.span(),
                    t,
                    &known.task,
                    "[defaults]",
                ));
            }
            ("task", DeValue::Array(tasks)) => {
                for task in tasks.iter() {
                    if let DeValue::Table(t) = task.get_ref() {
                        errors.extend(table_values(
                            source,
                            task.span(),
                            t,
                            &known.task,
                            "[[task]]",
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    errors
}

/// The wrong values of one table, read alone under a header `wrap` of the
/// same shape as its own.
fn table_values(
    source: &Source,
    header: std::ops::Range<usize>,
    table: &DeTable<'_>,
    keys: &BTreeSet<String>,
    wrap: &str,
) -> Vec<PlanError> {
    let end = table
        .iter()
        .map(|(k, v)| k.span().end.max(v.span().end))
        .max()
        .unwrap_or(header.end);
    let Some(original) = source.text.get(header.end..end) else {
        return Vec::new();
    };
    // Each entry as a range of `original`. An inline table's keys lie
    // inside its "header" span and have none: they are never blanked.
    let entries: Vec<(bool, Option<std::ops::Range<usize>>)> = table
        .iter()
        .map(|(key, value)| {
            let range = key
                .span()
                .start
                .checked_sub(header.end)
                .zip(value.span().end.checked_sub(header.end))
                .map(|(from, to)| from..to);
            (keys.contains(&**key.get_ref()), range)
        })
        .collect();
    // Misspelt keys (reported by `unknown`) are blanked from the start.
    let mut blanked: Vec<bool> = entries.iter().map(|(known, _)| !known).collect();
    let shift = header.end as isize - wrap.len() as isize;
    let mut errors = Vec::new();
    // At most one more read than the table has entries: each read that
    // finds a wrong value blanks it.
    for _ in 0..=entries.len() {
        let mut body = original.to_string();
        for ((_, range), blank) in entries.iter().zip(&blanked) {
            if let (true, Some(range)) = (*blank, range) {
                blank_out(&mut body, range.clone());
            }
        }
        let text = format!("{wrap}{body}");
        let read: Result<super::schema::PlanFile, _> = toml::from_str(&text);
        let Err(e) = read else { break };
        let alone = Source::new(std::path::Path::new(&source.name), text.clone());
        let mut error = toml_error(&alone, &e);
        if error.kind == PlanErrorKind::UnknownKey {
            // `unknown` reports those, with their table's keys.
            break;
        }
        let at = error.span.map(|s| (s.offset() as isize + shift, s.len()));
        let span = at
            .filter(|(start, _)| *start >= 0)
            .map(|(start, len)| start as usize..start as usize + len);
        // The entry the error lies in, so the next read goes past it; an
        // error in no entry (a missing key) ends the table's reading.
        let inside = span.as_ref().and_then(|span| {
            let at = span.start.checked_sub(header.end)?;
            entries
                .iter()
                .position(|(_, range)| range.as_ref().is_some_and(|r| r.contains(&at)))
        });
        let rebuilt = source.error(error.kind, error.message.clone(), span, error.label.clone());
        error.src = rebuilt.src;
        error.span = rebuilt.span;
        errors.push(error);
        match inside {
            Some(i) if !blanked[i] => blanked[i] = true,
            _ => break,
        }
    }
    errors
}

/// Spaces in place of `range` of `body` (newlines kept, so lines and
/// offsets stay where they were); left as it is when that would change its
/// length (non-ASCII text).
fn blank_out(body: &mut String, range: std::ops::Range<usize>) {
    let Some(text) = body.get(range.clone()) else {
        return;
    };
    let blank: String = text
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    if blank.len() == range.len() {
        body.replace_range(range, &blank);
    }
}

fn error(
    source: &Source,
    key: &str,
    span: std::ops::Range<usize>,
    keys: &BTreeSet<String>,
    what: &str,
) -> PlanError {
    let mut error = source.error(
        PlanErrorKind::UnknownKey,
        format!("unknown key `{}` in {what}", crate::escape::line(key)),
        Some(span),
        "unknown key",
    );
    error.help = match alias(key) {
        Some(alias) if keys.contains(alias) => Some(format!("did you mean `{alias}`?")),
        _ => match did_you_mean(key, keys.iter().map(String::as_str)) {
            Some(close) => Some(format!("did you mean `{close}`?")),
            None => Some(format!(
                "{what} takes: {}",
                keys.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    };
    error
}

/// The key of swarm's that other tools name `word`.
fn alias(word: &str) -> Option<&'static str> {
    match word {
        "depends_on" | "depends" | "dependencies" | "needs" | "after" | "requires" => Some("deps"),
        "cmd" | "command" | "script" | "shell" => Some("run"),
        "check" | "test" => Some("verify"),
        _ => None,
    }
}

/// A serde type or value error (`first_line`) about `key` in swarm's
/// words, or `None` for one it does not know.
fn in_swarms_words(first_line: &str, key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let (got, wanted) = first_line
        .strip_prefix("invalid value: ")
        .or_else(|| first_line.strip_prefix("invalid type: "))?
        .split_once(", expected ")?;
    let wanted = match wanted.trim() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number from 0 up",
        "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a string" => "a string",
        "a boolean" => "`true` or `false`",
        "a sequence" => "a list, `[...]`",
        "a map" => "a table, `{ ... }`",
        _ => return None,
    };
    Some(format!("`{key}` must be {wanted}, not {got}"))
}

/// Turns a TOML/serde error into a positioned plan error, with a "did you
/// mean" for misspelt keys and values.
pub(super) fn toml_error(source: &Source, err: &toml::de::Error) -> PlanError {
    let message = err.message().trim().to_string();
    let span = err.span();
    // serde words these as: unknown field `x`, expected one of `a`, `b`
    //                       unknown variant `x`, expected `a` or `b`
    let (kind, word) = if let Some(rest) = message.strip_prefix("unknown field `") {
        (PlanErrorKind::UnknownKey, rest.split('`').next())
    } else if let Some(rest) = message.strip_prefix("unknown variant `") {
        (PlanErrorKind::BadValue, rest.split('`').next())
    } else {
        (PlanErrorKind::Syntax, None)
    };
    let expected: Vec<&str> = message
        .split_once("expected")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let first_line = message.lines().next().unwrap_or_default().to_string();
    let label = match kind {
        PlanErrorKind::UnknownKey => "unknown key",
        PlanErrorKind::BadValue => "unknown value",
        _ => "here",
    };
    let mut error = source.error(kind, first_line.clone(), span.clone(), label);
    if message.contains("max recursion depth") {
        error.help = Some(
            "tables and arrays nest this deep here; a plan needs a few levels, and swarm stops reading past about 80: flatten it"
                .into(),
        );
        return error;
    }
    let alias = word.and_then(alias);
    if let (PlanErrorKind::UnknownKey, Some(alias)) = (kind, alias) {
        error.help = Some(format!("did you mean `{alias}`?"));
    } else if let Some(word) = word {
        error.help = match did_you_mean(word, expected.iter().copied()) {
            Some(close) => Some(format!("did you mean `{close}`?")),
            None if !expected.is_empty() => Some(format!(
                "expected one of: {}",
                expected
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => None,
        };
    } else if kind == PlanErrorKind::Syntax {
        error.kind = if message.contains("invalid type") || message.contains("missing field") {
            PlanErrorKind::BadValue
        } else {
            PlanErrorKind::Syntax
        };
        let line_start = span
            .as_ref()
            .and_then(|s| source.text.get(..s.start))
            .and_then(|before| before.rfind('\n').map(|i| i + 1).or(Some(0)))
            .unwrap_or(0);
        let key = source
            .text
            .get(line_start..)
            .and_then(|line| line.split('=').next())
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or_default();
        // serde's words ("invalid value: integer `-1`, expected u32") in
        // swarm's, naming the key.
        if let Some(said) = in_swarms_words(&first_line, key) {
            error.message = said;
        }
        // A number where swarm wants a duration or a size: an example in
        // the unit the key takes.
        if let Some(number) = message
            .strip_prefix("invalid type: integer `")
            .and_then(|rest| rest.split('`').next())
        {
            let example = match key {
                "timeout" | "grace" => Some(format!("{key} = \"{number}s\"")),
                "memory" | "max_output" | "max_file_size" | "min_free_space" => {
                    Some(format!("{key} = \"{number}MiB\""))
                }
                _ => None,
            };
            if let Some(example) = example {
                error.help = Some(format!("`{key}` is a string with a unit, e.g. {example}"));
            }
        }
    }
    error
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::unknown;
    use crate::plan::error::Source;

    #[test]
    fn every_misspelt_key_is_found_with_its_place_and_a_suggestion() {
        let text = "[swarm]\nconcurency = 2\n\n[[task]]\nid = \"a\"\nrun = \"x\"\ntimout = \"1s\"\n\n[[task]]\nid = \"b\"\ncommand = \"x\"\n\n[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\nbaseurl = \"x\"\n";
        let source = Source::new(Path::new("p.toml"), text.to_string());
        let errors = unknown(&source);
        let shown: Vec<(String, Option<String>)> = errors
            .iter()
            .map(|e| (e.message.clone(), e.help.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "unknown key `concurency` in [swarm]".to_string(),
                    Some("did you mean `concurrency`?".to_string())
                ),
                (
                    "unknown key `timout` in [[task]]".to_string(),
                    Some("did you mean `timeout`?".to_string())
                ),
                (
                    "unknown key `command` in [[task]]".to_string(),
                    Some("did you mean `run`?".to_string())
                ),
                (
                    "unknown key `baseurl` in [models.NAME]".to_string(),
                    Some("did you mean `base_url`?".to_string())
                ),
            ]
        );
        // Every wrong value of every table, each at its place.
        let typed = Source::new(
            Path::new("p.toml"),
            "[[task]]\nid = \"a\"\nrun = '''\n[[ -f x ]]\n'''\nretries = \"two\"\ntimeout = 5\n\n[[task]]\nid = \"b\"\nrun = \"x\"\nprocesses = \"many\"\n".into(),
        );
        let wrong = super::wrong_values(&typed);
        let places: Vec<(usize, usize)> = wrong
            .iter()
            .map(|e| typed.line_col(e.span.map_or(0, |s| s.offset())))
            .collect();
        assert_eq!(places, [(6, 11), (7, 11), (12, 13)], "{wrong:?}");
        // Tasks written as an inline array are not split, and nothing panics.
        let inline = Source::new(
            Path::new("p.toml"),
            "task = [{ id = \"a\", run = \"x\", retries = \"two\", bogus = 1 }]\n".into(),
        );
        let _ = super::wrong_values(&inline);
        assert_eq!(unknown(&inline).len(), 1);
        // A plan without mistakes has none.
        let good = Source::new(
            Path::new("p.toml"),
            "[[task]]\nid = \"a\"\nrun = \"x\"\n".into(),
        );
        assert!(unknown(&good).is_empty());
    }
}
