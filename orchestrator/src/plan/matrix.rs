//! Matrices: a task's matrix expanded to its combinations, and `{key}`
//! placeholders checked and substituted.

use std::collections::BTreeMap;

use toml::Spanned;

use super::error::{PlanError, PlanErrorKind, Source, did_you_mean};
use super::schema::{MatrixValue, TaskFields};

/// Every combination of a task's matrix, as `name -> value` maps; one empty
/// map for a task without a matrix. Keys are taken in sorted order.
pub(super) fn combinations(
    source: &Source,
    fields: &TaskFields,
) -> Result<Vec<BTreeMap<String, String>>, PlanError> {
    let mut combos = vec![BTreeMap::new()];
    let Some(matrix) = &fields.matrix else {
        return Ok(combos);
    };
    for (key, values) in matrix.get_ref() {
        if values.is_empty() {
            return Err(source.error(
                PlanErrorKind::BadValue,
                format!("matrix key `{key}` has no values"),
                Some(matrix.span()),
                "in this matrix",
            ));
        }
        combos = combos
            .into_iter()
            .flat_map(|combo| {
                values.iter().map(move |v: &MatrixValue| {
                    let mut next = combo.clone();
                    next.insert(key.clone(), v.to_string());
                    next
                })
            })
            .collect();
    }
    Ok(combos)
}

/// `{word}` placeholders in `text` (not `${VAR}`, `{}`, `{a,b}`, `{1..3}`
/// or `{print $1}`, which are the shell's), with their byte offsets.
fn placeholders(text: &str) -> Vec<(usize, &str)> {
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find('{').map(|i| rest + i) {
        rest = open + 1;
        let Some(close) = text[rest..].find('}').map(|i| rest + i) else {
            break;
        };
        let word = &text[rest..close];
        let shell_variable = text[..open].ends_with('$');
        if !word.is_empty()
            && !shell_variable
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            found.push((open, word));
        }
    }
    found
}

/// Refuses a `{placeholder}` that names no key of the task's matrix: it
/// would reach the command as written.
///
/// Adds an error for each; true if there was none.
pub(super) fn check_placeholders(
    source: &Source,
    id: &str,
    fields: &TaskFields,
    matrix: &Spanned<BTreeMap<String, Vec<MatrixValue>>>,
    errors: &mut Vec<PlanError>,
) -> bool {
    let before = errors.len();
    let keys: Vec<&str> = matrix.get_ref().keys().map(String::as_str).collect();
    let spanned = [
        ("id", fields.id.as_ref()),
        ("run", fields.run.as_ref()),
        ("wasm", fields.wasm.as_ref()),
        ("prompt", fields.prompt.as_ref()),
    ];
    let mut texts: Vec<(&str, &str, Option<std::ops::Range<usize>>)> = spanned
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v.get_ref().as_str(), Some(v.span()))))
        .collect();
    texts.extend(fields.verify.as_deref().map(|v| ("verify", v, None)));
    for (key, list) in [("args", &fields.args), ("paths", &fields.paths)] {
        texts.extend(list.iter().flatten().map(|v| (key, v.as_str(), None)));
    }
    texts.extend(
        fields
            .env
            .iter()
            .flatten()
            .map(|(_, v)| ("env", v.as_str(), None)),
    );
    for (key, text, span) in texts {
        for (offset, word) in placeholders(text) {
            if keys.contains(&word) {
                continue;
            }
            // Inside a quoted string the value starts one byte in; a basic
            // string without escapes keeps offsets, else the whole value.
            let at = span.clone().map(|s| {
                let start = s.start + 1 + offset;
                if source.text.get(start..start + word.len() + 2)
                    == Some(&text[offset..offset + word.len() + 2])
                {
                    start..start + word.len() + 2
                } else {
                    s
                }
            });
            let known = keys
                .iter()
                .map(|k| format!("`{{{k}}}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let help = match did_you_mean(word, keys.iter().copied()) {
                Some(close) => format!("did you mean `{{{close}}}`? the matrix has {known}"),
                None => format!(
                    "the matrix has {known}; add `{word}` to it, or write the braces some other way if they are the command's own"
                ),
            };
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}`: `{{{word}}}` in `{key}` is not a key of its matrix"),
                        at.or(Some(matrix.span())),
                        "not a matrix key",
                    )
                    .with_help(help),
            );
        }
    }
    errors.len() == before
}

pub(super) fn substitute(text: &str, combo: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (key, value) in combo {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}
