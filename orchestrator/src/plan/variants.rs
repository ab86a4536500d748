//! Variants: a task run several ways (`variants`), how each way is told
//! apart (`{variant}` and the variants' own keys), and the keys that only
//! make sense with them (`score`, `score_timeout`, `pick`), checked.

use std::ops::Range;
use std::time::Duration;

use swarm_protocol::Isolation;
use swarm_protocol::experiment::Pick;
use toml::Value;

use super::error::{PlanError, PlanErrorKind, Source};
use super::matrix::Values;
use super::schema::TaskFields;
use super::{DEFAULT_SCORE_TIMEOUT, MAX_VARIANTS, ScoreCommand};

/// The placeholder that holds a variant's number.
pub(super) const NUMBER_KEY: &str = "variant";

/// Keys of a variant's values that set an agent's model and temperature
/// (beside the placeholders of the same names). A placeholder name cannot
/// hold `@`, so these never reach a command.
pub(super) const MODEL_OVERRIDE: &str = "@model";
pub(super) const TEMPERATURE_OVERRIDE: &str = "@temperature";
pub(super) const AGENT_OVERRIDE: &str = "@agent";

/// How a task with `variants` is run: its variants' values (each with
/// `variant` = its number), their score, the pick.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub values: Vec<Values>,
    pub span: Range<usize>,
    pub pick: Pick,
    pub score: Option<ScoreCommand>,
}

/// The task's variants, if it has any; `None` (errors added) if they or
/// the keys that go with them are invalid. `score`, `pick` and
/// `score_timeout` without `variants` are errors too.
pub(super) fn read(
    source: &Source,
    fields: &TaskFields,
    defaults: &TaskFields,
    id: &str,
    errors: &mut Vec<PlanError>,
) -> Result<Option<Spec>, ()> {
    let before = errors.len();
    let Some(variants) = &fields.variants else {
        stray_keys(source, fields, id, errors);
        return if errors.len() > before {
            Err(())
        } else {
            Ok(None)
        };
    };
    let span = variants.span();
    let values = match variants.get_ref() {
        Value::Integer(n) if (2..=MAX_VARIANTS as i64).contains(n) => (1..=*n)
            .map(|k| Values::from_iter([(NUMBER_KEY.to_string(), k.to_string())]))
            .collect(),
        Value::Integer(n) => {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!(
                            "task `{id}` has {n} variant{}",
                            if *n == 1 { "" } else { "s" }
                        ),
                        Some(span.clone()),
                        "not between 2 and 64",
                    )
                    .with_help(format!(
                        "run a task 2 to {MAX_VARIANTS} ways; for one way, remove `variants`"
                    )),
            );
            return Err(());
        }
        Value::Table(table) => lists(source, id, table, span.clone(), errors).ok_or(())?,
        _ => {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}`: `variants` is a number or a table of lists"),
                        Some(span.clone()),
                        "neither",
                    )
                    .with_help("e.g. variants = 4, or variants = { model = [\"a\", \"b\"], temperature = [0.2, 0.8] }"),
            );
            return Err(());
        }
    };
    if fields.isolation.or(defaults.isolation) == Some(Isolation::Readonly) {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("task `{id}` is read-only and has variants"),
                    Some(span.clone()),
                    "variants of a read-only task",
                )
                .with_help("a read-only task's result is nothing to pick: remove `isolation = \"readonly\"` or `variants`"),
        );
    }
    let score = score_command(source, fields, defaults, id, errors);
    let pick = match (fields.pick.as_ref(), &score) {
        (Some(p), Some(_)) => *p.get_ref(),
        (Some(p), None) => match p.get_ref() {
            Pick::Min | Pick::Max => {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("task `{id}` picks the {} score but has no `score`", p.get_ref()),
                            Some(p.span()),
                            "nothing to rank by",
                        )
                        .with_help("add `score = \"...\"`, a command that prints the variant's number, or pick = \"first\" / \"none\""),
                );
                Pick::None
            }
            other => *other,
        },
        (None, Some(_)) => {
            let at = fields.score.as_ref().map(|s| s.span());
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}` has a `score` but no `pick`"),
                        at,
                        "is lower or higher better?",
                    )
                    .with_help("add pick = \"min\" (the lowest score wins) or pick = \"max\""),
            );
            Pick::None
        }
        (None, None) => Pick::First,
    };
    if errors.len() > before {
        return Err(());
    }
    Ok(Some(Spec {
        values,
        span,
        pick,
        score,
    }))
}

/// `score`, `pick`, `score_timeout` or `score_repeat` on a task without
/// `variants`: an error each.
fn stray_keys(source: &Source, fields: &TaskFields, id: &str, errors: &mut Vec<PlanError>) {
    let stray = [
        ("score", fields.score.as_ref().map(|s| s.span())),
        ("pick", fields.pick.as_ref().map(|s| s.span())),
        (
            "score_timeout",
            fields.score_timeout.as_ref().map(|s| s.span()),
        ),
        (
            "score_repeat",
            fields.score_repeat.as_ref().map(|s| s.span()),
        ),
    ];
    for (key, span) in stray {
        if let Some(span) = span {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}` sets `{key}` but has no `variants`"),
                        Some(span),
                        "without variants",
                    )
                    .with_help("`score` and `pick` choose among a task's variants: add e.g. `variants = 4`, or remove it"),
            );
        }
    }
}

/// The task's `score` with its timeout and repeats (errors added for bad
/// ones), if it has one.
fn score_command(
    source: &Source,
    fields: &TaskFields,
    defaults: &TaskFields,
    id: &str,
    errors: &mut Vec<PlanError>,
) -> Option<ScoreCommand> {
    let score_timeout = match fields
        .score_timeout
        .as_ref()
        .or(defaults.score_timeout.as_ref())
    {
        None => DEFAULT_SCORE_TIMEOUT,
        Some(t) => match humantime::parse_duration(t.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) | Err(_) => {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("invalid score_timeout `{}` for task `{id}`", t.get_ref()),
                            Some(t.span()),
                            "not a duration",
                        )
                        .with_help("write durations like \"90s\" or \"10m\""),
                );
                Duration::ZERO
            }
        },
    };
    let repeat = match fields
        .score_repeat
        .as_ref()
        .or(defaults.score_repeat.as_ref())
    {
        None => 1,
        Some(n) if (1..=9).contains(n.get_ref()) => *n.get_ref(),
        Some(n) => {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}` runs its score {} times", n.get_ref()),
                        Some(n.span()),
                        "not between 1 and 9",
                    )
                    .with_help("`score_repeat` takes the median of 1 to 9 runs: 3 or 5 steadies a ranking on a busy machine"),
            );
            1
        }
    };
    fields.score.as_ref().map(|s| ScoreCommand {
        command: s.get_ref().clone(),
        timeout: score_timeout,
        repeat,
    })
}

/// The variants of `variants = { key = [values], ... }`: the cross product
/// of the lists (keys sorted, the first varying slowest), numbered.
fn lists(
    source: &Source,
    id: &str,
    table: &toml::Table,
    span: Range<usize>,
    errors: &mut Vec<PlanError>,
) -> Option<Vec<Values>> {
    let before = errors.len();
    let mut combos = vec![Values::default()];
    if table.is_empty() {
        errors.push(bad(source, id, "`variants` has no keys", span.clone()));
    }
    for (key, list) in table {
        let named = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if key == NUMBER_KEY || !named {
            errors.push(bad(
                source,
                id,
                &format!("`{key}` cannot be a key of `variants`"),
                span.clone(),
            ));
            continue;
        }
        let Some(list) = list.as_array().filter(|l| !l.is_empty()) else {
            errors.push(bad(
                source,
                id,
                &format!("`variants` key `{key}` is not a list of values"),
                span.clone(),
            ));
            continue;
        };
        let mut values = Vec::new();
        for item in list {
            match item {
                Value::String(s) => values.push(s.clone()),
                Value::Integer(i) => values.push(i.to_string()),
                Value::Float(f) => values.push(f.to_string()),
                Value::Boolean(b) => values.push(b.to_string()),
                _ => errors.push(bad(
                    source,
                    id,
                    &format!(
                        "`variants` key `{key}` has a value that is not a string, number or boolean"
                    ),
                    span.clone(),
                )),
            }
        }
        combos = super::matrix::cross(combos, key, &values);
    }
    if combos.len() > MAX_VARIANTS {
        errors.push(bad(
            source,
            id,
            &format!(
                "`variants` makes {} variants, more than {MAX_VARIANTS}",
                combos.len()
            ),
            span,
        ));
    }
    if errors.len() > before {
        return None;
    }
    Some(
        combos
            .into_iter()
            .zip(1..)
            .map(|(mut combo, k): (Values, u32)| {
                combo.insert(NUMBER_KEY.to_string(), k.to_string());
                combo
            })
            .collect(),
    )
}

fn bad(source: &Source, id: &str, what: &str, span: Range<usize>) -> PlanError {
    source
        .error(
            PlanErrorKind::BadValue,
            format!("task `{id}`: {what}"),
            Some(span),
            "in these variants",
        )
        .with_help("write variants = N (2 to 64), or a table of lists: variants = { model = [\"a\", \"b\"], temperature = [0.2, 0.8] }")
}

/// A variant's values as its task sees them: every value a placeholder,
/// and `model` / `temperature` / `agent` also the agent's settings.
pub(super) fn with_overrides(values: &Values) -> Values {
    let mut out = values.clone();
    for (key, hidden) in [
        ("model", MODEL_OVERRIDE),
        ("temperature", TEMPERATURE_OVERRIDE),
        ("agent", AGENT_OVERRIDE),
    ] {
        if let Some(v) = values.get(key) {
            out.insert(hidden.to_string(), v.clone());
        }
    }
    out
}
