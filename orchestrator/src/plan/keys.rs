//! Every misspelt key of a plan at once. serde stops at the first unknown
//! field, so three typos took three runs; when a plan does not read, its
//! tables are walked against the keys each one takes (from the plan's own
//! JSON schema, so a new key is known here as soon as it exists) and every
//! key that is not one of them is reported at its place, with a "did you
//! mean".

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
    error.help = match super::expand::alias(key) {
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
        // A plan without mistakes has none.
        let good = Source::new(
            Path::new("p.toml"),
            "[[task]]\nid = \"a\"\nrun = \"x\"\n".into(),
        );
        assert!(unknown(&good).is_empty());
    }
}
