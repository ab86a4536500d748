//! Matrices: a task's matrix expanded to its combinations (the cross
//! product of its keys, less `exclude`, plus `include`), and `{key}`
//! placeholders checked and substituted (slugged where an id is made).
//! A key's values may come from the repository (`{ glob = ... }`, `{ lines
//! = ... }`): read here, through the plan's [`Files`], before counting.

use std::collections::BTreeSet;
use std::ops::Range;
use std::rc::Rc;

use toml::{Spanned, Value};

use super::error::{PlanError, PlanErrorKind, Source, did_you_mean};
use super::origin::files::Files;
use super::schema::{MatrixField, MatrixFrom, MatrixList, TaskFields};

/// Where a matrix's `glob` and `lines` are read: the plan's files, and the
/// commit whose tracked files a `glob` lists (the run's base).
#[derive(Clone, Copy)]
pub(super) struct Sources<'a> {
    pub files: &'a Files,
    pub base: &'a str,
}

/// A matrix key whose values came from the repository, as `validate`
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The task's id as written.
    pub task: String,
    pub key: String,
    /// Where the values came from, as written: ``glob `tests/*.py` ``.
    pub from: String,
    /// How many values it gave.
    pub count: usize,
    /// The first few of them.
    pub first: Vec<String>,
}

/// How many of a listed matrix's values `validate` shows.
const SHOWN: usize = 3;

/// A combination's `key -> value`s, sorted by key. Most combinations have
/// a key or two, and a `BTreeMap`'s first node takes 544 bytes whatever it
/// holds: at 10,000 combinations that was most of the memory a plan took
/// to expand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Values(Vec<(String, String)>);

impl Values {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, replacing what it had.
    pub fn insert(&mut self, key: String, value: String) {
        match self.find(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => {
                // Exactly as large as its keys: a vector's first growth
                // makes room for four, and most combinations have one.
                self.0.reserve_exact(1);
                self.0.insert(i, (key, value));
            }
        }
    }

    /// Every `key -> value`, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl Extend<(String, String)> for Values {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

impl FromIterator<(String, String)> for Values {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Self {
        let mut values = Self::default();
        values.extend(entries);
        values
    }
}

impl IntoIterator for Values {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Values {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// One combination of a matrix: `key -> value`, and where it was written
/// (the matrix, or its `include` entry).
#[derive(Debug, Clone)]
pub(super) struct Combo {
    /// Shared with the tasks made of it: a copy per task was a third of
    /// the memory a plan of 10,000 tasks took to expand.
    pub values: Rc<Values>,
    pub span: Range<usize>,
}

/// The most combinations one task's matrix may have: counted before
/// anything is expanded, so that a matrix of millions is refused at once
/// instead of filling memory.
pub const MAX_COMBINATIONS: u64 = 10_000;

/// Whether the matrix (its keys' values `lists`) would make more than
/// [`MAX_COMBINATIONS`] tasks: then an error saying its product is added.
fn too_many(
    source: &Source,
    matrix: &Spanned<MatrixField>,
    lists: &[(&String, Vec<String>)],
    errors: &mut Vec<PlanError>,
) -> bool {
    let sizes: Vec<(&String, usize)> = lists.iter().map(|(k, v)| (*k, v.len())).collect();
    let crossed = sizes
        .iter()
        .try_fold(1u64, |n, (_, len)| n.checked_mul(*len as u64))
        .unwrap_or(u64::MAX);
    let included = matrix
        .get_ref()
        .get("include")
        .map_or(0, |l| l.get_ref().written().len() as u64);
    let count = crossed.saturating_add(included);
    if count > MAX_COMBINATIONS {
        let product = sizes
            .iter()
            .map(|(k, len)| format!("{k}: {len}"))
            .collect::<Vec<_>>()
            .join(" × ");
        let count = match count {
            u64::MAX => "more than 18 quintillion".to_string(),
            n => n.to_string(),
        };
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!(
                        "the matrix has {count} combinations ({product}), more than the {MAX_COMBINATIONS} one task may have"
                    ),
                    Some(matrix.span()),
                    "this matrix",
                )
                .with_help(
                    "split it over several tasks, or use fewer values; a matrix this large is usually a mistake (a key repeated, values listed by hand that belong to one command)",
                ),
        );
        return true;
    }
    false
}

/// Every combination of a task's matrix, in a fixed order: the cross
/// product of its keys (sorted, the first varying slowest), less those an
/// `exclude` entry matches, then each `include` entry as written. One empty
/// combination for a task without a matrix. `None` (errors added) if the
/// matrix is invalid.
pub(super) fn combinations(
    source: &Source,
    fields: &TaskFields,
    sources: Option<Sources<'_>>,
    listed: &mut Vec<Listed>,
    errors: &mut Vec<PlanError>,
) -> Option<Vec<Combo>> {
    let Some(matrix) = &fields.matrix else {
        return Some(vec![Combo {
            values: Rc::default(),
            span: 0..0,
        }]);
    };
    let before = errors.len();
    // Each key's values, read first: a list from the repository counts by
    // what it holds.
    let mut lists: Vec<(&String, Vec<String>)> = Vec::new();
    for (key, list) in matrix.get_ref() {
        if matches!(key.as_str(), "include" | "exclude") {
            continue;
        }
        let values = match list.get_ref() {
            MatrixList::Values(items) => {
                if items.is_empty() {
                    errors.push(source.error(
                        PlanErrorKind::BadValue,
                        format!("matrix key `{key}` has no values"),
                        Some(list.span()),
                        "no values",
                    ));
                    continue;
                }
                let mut values = Vec::new();
                for item in items {
                    match scalar(item.get_ref()) {
                        Some(v) => values.push(v),
                        None => errors.push(not_a_scalar(source, key, item.span())),
                    }
                }
                values
            }
            MatrixList::From(from) => {
                let task = fields.id.as_ref().map(|i| i.get_ref().as_str());
                let Some(values) = listed_values(source, key, list.span(), from, sources, errors)
                else {
                    continue;
                };
                if let (Some(task), Some(shown)) = (task, shown_from(from)) {
                    listed.push(Listed {
                        task: task.to_string(),
                        key: key.clone(),
                        from: shown,
                        count: values.len(),
                        first: values.iter().take(SHOWN).cloned().collect(),
                    });
                }
                values
            }
        };
        lists.push((key, values));
    }
    if errors.len() > before {
        return None;
    }
    if too_many(source, matrix, &lists, errors) {
        return None;
    }
    let mut combos = vec![Values::default()];
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for (key, list) in matrix.get_ref() {
        match key.as_str() {
            "include" => include = tables(source, key, list, errors),
            "exclude" => exclude = tables(source, key, list, errors),
            _ => {}
        }
    }
    for (key, values) in &lists {
        combos = cross(combos, key, values);
    }
    let keys: BTreeSet<&String> = matrix
        .get_ref()
        .keys()
        .filter(|k| !matches!(k.as_str(), "include" | "exclude"))
        .collect();
    // Only `include`: exactly its combinations.
    if keys.is_empty() && !include.is_empty() {
        combos.clear();
    }
    for (entry, span) in &exclude {
        if let Some(key) = entry.keys().find(|k| !keys.contains(k)) {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("`exclude` entry names `{key}`, which is not a key of the matrix"),
                        Some(span.clone()),
                        "not a matrix key",
                    )
                    .with_help(match did_you_mean(key, keys.iter().map(|k| k.as_str())) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => "`exclude` entries name keys of the matrix and one of their values"
                            .into(),
                    }),
            );
            continue;
        }
        let count = combos.len();
        combos.retain(|combo| !entry.iter().all(|(k, v)| combo.get(k) == Some(v)));
        if combos.len() == count {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        "`exclude` entry matches no combination of the matrix",
                        Some(span.clone()),
                        "excludes nothing",
                    )
                    .with_help("check its values against the matrix's lists"),
            );
        }
    }
    if errors.len() > before {
        return None;
    }
    let mut out: Vec<Combo> = combos
        .into_iter()
        .map(|values| Combo {
            values: Rc::new(values),
            span: matrix.span(),
        })
        .collect();
    out.extend(include.into_iter().map(|(values, span)| Combo {
        values: Rc::new(values),
        span,
    }));
    Some(out)
}

/// Every combination of `combos` with each of `values` for `key`, in
/// that order (the earlier keys varying slowest).
pub(super) fn cross(combos: Vec<Values>, key: &str, values: &[String]) -> Vec<Values> {
    combos
        .into_iter()
        .flat_map(|combo| {
            values.iter().map(move |v| {
                let mut next = combo.clone();
                next.insert(key.to_string(), v.clone());
                next
            })
        })
        .collect()
}

/// The entries of `include` or `exclude`: tables of scalars, with spans.
fn tables(
    source: &Source,
    key: &str,
    list: &Spanned<MatrixList>,
    errors: &mut Vec<PlanError>,
) -> Vec<(Values, Range<usize>)> {
    let mut out = Vec::new();
    if let MatrixList::From(_) = list.get_ref() {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("`{key}` is a list of tables of matrix values"),
                    Some(list.span()),
                    "not a list",
                )
                .with_help(format!(
                    "write it as a list, e.g. {key} = [{{ os = \"linux\", arch = \"x86_64\" }}]"
                )),
        );
    }
    for item in list.get_ref().written() {
        let table = match item.get_ref() {
            Value::Table(t) if !t.is_empty() => t,
            _ => {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("`{key}` entries are tables of matrix values"),
                            Some(item.span()),
                            "not a table",
                        )
                        .with_help(format!(
                            "write each entry as a table, e.g. {key} = [{{ os = \"linux\", arch = \"x86_64\" }}]"
                        )),
                );
                continue;
            }
        };
        let mut values = Values::default();
        for (k, v) in table {
            match scalar(v) {
                Some(v) => {
                    values.insert(k.clone(), v);
                }
                None => errors.push(not_a_scalar(source, k, item.span())),
            }
        }
        out.push((values, item.span()));
    }
    out
}

/// The values of matrix key `key` read from where `from` says (its
/// table at `span`); `None` (errors added) if they cannot be.
fn listed_values(
    source: &Source,
    key: &str,
    span: Range<usize>,
    from: &MatrixFrom,
    sources: Option<Sources<'_>>,
    errors: &mut Vec<PlanError>,
) -> Option<Vec<String>> {
    let error = |message: String, label: &str, help: String| {
        source
            .error(PlanErrorKind::BadValue, message, Some(span.clone()), label)
            .with_help(help)
    };
    let Some(sources) = sources else {
        errors.push(error(
            format!(
                "matrix key `{key}` reads its values from the repository, which a request may not"
            ),
            "from the repository",
            "list the values in the request: `matrix = { file = [\"a.py\", \"b.py\"] }`".into(),
        ));
        return None;
    };
    let read = match (&from.glob, &from.lines) {
        (Some(glob), None) => {
            let matcher = match globset::GlobBuilder::new(glob.get_ref())
                .literal_separator(true)
                .build()
            {
                Ok(g) => g.compile_matcher(),
                Err(e) => {
                    errors.push(error(
                        format!("matrix key `{key}`: `{}` is not a glob: {}", glob.get_ref(), e.kind()),
                        "not a glob",
                        "`*` matches within a directory, `**` across directories: \"tests/**/test_*.py\"".into(),
                    ));
                    return None;
                }
            };
            sources.files.tracked(sources.base).map(|files| {
                let values: Vec<String> =
                    files.into_iter().filter(|f| matcher.is_match(f)).collect();
                (
                    values,
                    format!("matches no file git tracks at `{}`", sources.base),
                )
            })
        }
        (None, Some(lines)) => sources.files.lines(lines.get_ref()).map(|values| {
            (
                values,
                format!(
                    "`{}` has no lines (blank ones and `#` comments are left out)",
                    lines.get_ref()
                ),
            )
        }),
        _ => {
            errors.push(error(
                format!("matrix key `{key}` is a table: it needs exactly one of `glob` or `lines`"),
                "one of `glob` or `lines`",
                "e.g. `{ glob = \"tests/**/test_*.py\" }` (files git tracks) or `{ lines = \"shards.txt\" }`".into(),
            ));
            return None;
        }
    };
    match read {
        Ok((values, _)) if !values.is_empty() => Some(values),
        Ok((_, none)) => {
            errors.push(error(
                format!("matrix key `{key}` has no values: {none}"),
                "no values",
                "check the pattern against `git ls-files`, or the file".into(),
            ));
            None
        }
        Err(e) => {
            errors.push(error(
                format!("matrix key `{key}` cannot read its values: {e}"),
                "cannot be read",
                "a `glob` lists the files git tracks at the run's base in the repository the plan is in; `lines` names a file relative to the plan".into(),
            ));
            None
        }
    }
}

/// Where a listed matrix key's values came from, as written.
fn shown_from(from: &MatrixFrom) -> Option<String> {
    match (&from.glob, &from.lines) {
        (Some(glob), _) => Some(format!("glob `{}`", glob.get_ref())),
        (_, Some(lines)) => Some(format!("lines of `{}`", lines.get_ref())),
        _ => None,
    }
}

/// A matrix value as the text substituted: strings, integers, booleans.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn not_a_scalar(source: &Source, key: &str, span: Range<usize>) -> PlanError {
    source
        .error(
            PlanErrorKind::BadValue,
            format!("matrix key `{key}` has a value that is not a string, integer or boolean"),
            Some(span),
            "not a matrix value",
        )
        .with_help("matrix values are substituted as text: write them as strings, e.g. \"1.5\"")
}

/// `value` made fit for a task id: lowercase, each run of characters an id
/// cannot hold (`/`, `.`, spaces, ...) one `-`, no `-` at either end.
pub fn slug(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// `{key}` and `{key:slug}` placeholders in `text` (not `${VAR}`, `{}`,
/// `{a,b}`, `{1..3}` or `{print $1}`, which are the shell's), with their
/// byte offsets.
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
        let is_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        let name = match word.split_once(':') {
            Some((key, modifier)) => is_name(key) && is_name(modifier),
            None => is_name(word),
        };
        if name && !shell_variable {
            found.push((open, word));
        }
    }
    found
}

/// Refuses a `{placeholder}` that names no key of the task's matrix (it
/// would reach the command as written), one with a modifier other than
/// `slug`, and one that some combination has no value for.
///
/// Adds an error for each; true if there was none.
pub(super) fn check_placeholders(
    source: &Source,
    id: &str,
    fields: &TaskFields,
    table: Range<usize>,
    combos: &[Combo],
    errors: &mut Vec<PlanError>,
) -> bool {
    let before = errors.len();
    let all_keys: BTreeSet<&str> = combos
        .iter()
        .flat_map(|c| c.values.keys().map(String::as_str))
        .collect();
    let keys: Vec<&str> = all_keys.into_iter().collect();
    let spanned = [
        ("id", fields.id.as_ref()),
        ("run", fields.run.as_ref()),
        ("wasm", fields.wasm.as_ref()),
        ("prompt", fields.prompt.as_ref()),
    ];
    let mut texts: Vec<(&str, &str, Option<Range<usize>>)> = spanned
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v.get_ref().as_str(), Some(v.span()))))
        .collect();
    texts.extend(fields.verify.as_deref().map(|v| ("verify", v, None)));
    texts.extend(
        fields
            .score
            .as_ref()
            .map(|v| ("score", v.get_ref().as_str(), Some(v.span()))),
    );
    for (key, list) in [
        ("args", &fields.args),
        ("paths", &fields.paths),
        ("creates", &fields.creates),
    ] {
        texts.extend(list.iter().flatten().map(|v| (key, v.as_str(), None)));
    }
    texts.extend(
        fields
            .env
            .iter()
            .flatten()
            .map(|(_, v)| ("env", v.as_str(), None)),
    );
    let mut used = BTreeSet::new();
    for (key, text, span) in texts {
        for (offset, word) in placeholders(text) {
            // Inside a quoted string the value starts one byte in; a basic
            // string without escapes keeps offsets, else the whole value.
            let at = span
                .clone()
                .map(|s| {
                    let start = s.start + 1 + offset;
                    if source.text.get(start..start + word.len() + 2)
                        == Some(&text[offset..offset + word.len() + 2])
                    {
                        start..start + word.len() + 2
                    } else {
                        s
                    }
                })
                .unwrap_or_else(|| table.clone());
            let (name, modifier) = word.split_once(':').unwrap_or((word, ""));
            if !matches!(modifier, "" | "slug") {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("task `{id}`: `{{{word}}}` in `{key}` has an unknown modifier `{modifier}`"),
                            Some(at),
                            "unknown modifier",
                        )
                        .with_help(format!("`{{{name}:slug}}` is the value made fit for an id; `{{{name}}}` is the value as written")),
                );
                continue;
            }
            if keys.contains(&name) {
                used.insert((name, key));
                continue;
            }
            let known = keys
                .iter()
                .map(|k| format!("`{{{k}}}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let help = match did_you_mean(name, keys.iter().copied()) {
                Some(close) => format!("did you mean `{{{close}}}`? the matrix has {known}"),
                None => format!(
                    "the matrix has {known}; add `{name}` to it, or write the braces some other way if they are the command's own"
                ),
            };
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}`: `{{{word}}}` in `{key}` is not a key of its matrix"),
                        Some(at),
                        "not a matrix key",
                    )
                    .with_help(help),
            );
        }
    }
    // A key only some `include` entries give has no value in the others.
    let mut reported = BTreeSet::new();
    for combo in combos {
        for (name, field) in &used {
            if !combo.values.contains_key(name)
                && reported.insert((*name, combo.span.start, combo.span.end))
            {
                let what = if combo.span == table {
                    "the matrix's combinations"
                } else {
                    "this `include` entry"
                };
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("task `{id}`: `{{{name}}}` in `{field}` has no value in {what}"),
                            Some(combo.span.clone()),
                            format!("no `{name}` here"),
                        )
                        .with_help(format!(
                            "give `{name}` a value in every combination, or leave it out of `{field}`"
                        )),
                );
            }
        }
    }
    errors.len() == before
}

/// `text` with `{key}` replaced by the combination's value as written and
/// `{key:slug}` by its [`slug`].
pub(super) fn substitute(text: &str, combo: &Values) -> String {
    let mut out = text.to_string();
    for (key, value) in combo {
        out = out
            .replace(&format!("{{{key}}}"), value)
            .replace(&format!("{{{key}:slug}}"), &slug(value));
    }
    out
}

/// `text` (an id, or a dependency's id) with every placeholder replaced by
/// the [`slug`] of its value: ids cannot hold `/` or `.`, values often do.
pub(super) fn substitute_id(text: &str, combo: &Values) -> String {
    let mut out = text.to_string();
    for (key, value) in combo {
        let slug = slug(value);
        out = out
            .replace(&format!("{{{key}}}"), &slug)
            .replace(&format!("{{{key}:slug}}"), &slug);
    }
    out
}
