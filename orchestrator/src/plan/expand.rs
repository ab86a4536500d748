//! From the parsed file to checked tasks: defaults applied, matrices
//! expanded (`matrix.rs`), every value checked, dependencies resolved
//! (`deps.rs`), each task's own fields checked (`task.rs`). Errors are
//! collected, not returned at the first.

// A PlanError is built at most once per invocation, on the way out; its size
// costs nothing that boxing every internal return would save.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use super::error::{PlanError, PlanErrorKind, Source, did_you_mean};
use super::models::{self, Budget, ModelConfig};
use super::schema::{PlanFile, TaskFields};
use super::{Plan, Task, deps, is_valid_run_name, is_valid_task_id, matrix, task};

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
    let mut error = source.error(kind, first_line, span.clone(), label);
    // Names other tools use for swarm's keys.
    let alias = word.and_then(|w| match w {
        "depends_on" | "depends" | "dependencies" | "needs" | "after" | "requires" => Some("deps"),
        "cmd" | "command" | "script" | "shell" => Some("run"),
        "check" | "test" => Some("verify"),
        _ => None,
    });
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
        // A number where swarm wants a duration or a size: an example in
        // the unit the key takes.
        if let Some(number) = message
            .strip_prefix("invalid type: integer `")
            .and_then(|rest| rest.split('`').next())
        {
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
                .unwrap_or_default();
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

pub(super) fn plan(path: &Path, source: Source, file: PlanFile) -> Result<Plan, PlanError> {
    // Every check below adds to `errors` and goes on with what is valid, so
    // that one `swarm validate` reports every mistake, not the first.
    let mut errors = Vec::new();
    let plan_dir = path.parent().unwrap_or(Path::new(""));
    let name = keep(&mut errors, run_name(path, &source, &file)).unwrap_or_default();
    if let Some(c) = &file.swarm.concurrency
        && *c.get_ref() == 0
    {
        errors.push(source.error(
            PlanErrorKind::BadValue,
            "concurrency must be at least 1",
            Some(c.span()),
            "zero",
        ));
    }
    check_defaults(&source, &file.defaults, &mut errors);
    let models = models::resolve_models(&source, &file.models, &mut errors);
    if file.task.is_empty() {
        errors.push(
            PlanError::plain(
                PlanErrorKind::Empty,
                format!("{}: the plan has no tasks", source.name),
            )
            .with_help(
                "add at least one task:\n\n[[task]]\nid = \"hello\"\nrun = \"echo hello > hello.txt\"",
            ),
        );
    }

    let ctx = Ctx {
        source: &source,
        plan_dir,
        models: &models,
        broken_models: file
            .models
            .keys()
            .filter(|name| !models.contains_key(*name))
            .cloned()
            .collect(),
        defaults: &file.defaults,
    };
    let mut tasks = Vec::new();
    // Every task id with a valid id, in plan order, and its deps as written
    // (substituted), with spans.
    let mut deps = Vec::new();
    // Unexpanded id of a matrix task -> ids of its expansions.
    let mut templates: HashMap<String, Vec<String>> = HashMap::new();
    // Every task id, valid or not, -> where it was first defined: duplicate
    // errors point there, and deps on a task with errors of its own are not
    // reported again as unknown.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for spanned in &file.task {
        let fields = spanned.get_ref();
        let Some(id) = &fields.id else {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        "a task has no `id`",
                        Some(spanned.span()),
                        "this task",
                    )
                    .with_help("give every task a unique id, e.g. id = \"build\""),
            );
            continue;
        };
        let Some(combos) = matrix::combinations(&source, fields, &mut errors) else {
            continue;
        };
        if let Some(m) = &fields.matrix
            && !matrix::check_placeholders(&source, id.get_ref(), fields, m, &combos, &mut errors)
        {
            continue;
        }
        // Id -> the combination that made it, for slug collisions.
        let mut made_by: HashMap<String, &BTreeMap<String, String>> = HashMap::new();
        let from_matrix = fields.matrix.is_some();
        // A matrix that leaves a key out of its id repeats ids in every
        // expansion: one error says it.
        let mut duplicate_reported = false;
        let mut expanded = Vec::new();
        for combo in combos.iter().map(|c| &c.values) {
            let task_id = matrix::substitute_id(id.get_ref(), combo);
            let span = id.span();
            if !is_valid_task_id(&task_id) {
                errors.push(source
                    .error(PlanErrorKind::BadValue, format!("invalid task id `{task_id}`"), Some(span), "invalid id")
                    .with_help("task ids use only lowercase letters, digits, `_` and `-` (at most 100), e.g. \"build-core\""));
                continue;
            }
            if let Some(error) = made_by
                .get(&task_id)
                .and_then(|other| slug_collision(&source, &task_id, span.clone(), other, combo))
            {
                errors.push(error);
                continue;
            }
            if let Some(first) = seen.get(&task_id) {
                if duplicate_reported {
                    continue;
                }
                duplicate_reported = from_matrix;
                let (line, col) = source.line_col(*first);
                let message = if from_matrix {
                    format!(
                        "the matrix of `{}` expands to the duplicate id `{task_id}`",
                        id.get_ref(),
                    )
                } else {
                    format!("duplicate task id `{task_id}`")
                };
                errors.push(
                    source
                        .error(
                            PlanErrorKind::DuplicateId,
                            message,
                            Some(span),
                            "defined again here",
                        )
                        .with_help(format!(
                            "first defined at {}:{line}:{col}; task ids must be unique{}",
                            source.name,
                            if from_matrix {
                                " (put every matrix key in the id, e.g. \"test-{os}-{version}\")"
                            } else {
                                ""
                            }
                        )),
                );
                continue;
            }
            seen.insert(task_id.clone(), span.start);
            made_by.insert(task_id.clone(), combo);
            expanded.push(task_id.clone());
            let mut task_errors = Vec::new();
            let task = task::resolve(&ctx, fields, combo, &task_id, span, &mut task_errors);
            // One mistake in a matrix task is made by each of its
            // expansions: name it once, by the id as written.
            errors.extend(task_errors.into_iter().map(|mut e| {
                if from_matrix {
                    e.message = e
                        .message
                        .replace(&format!("`{task_id}`"), &format!("`{}`", id.get_ref()));
                }
                e
            }));
            deps.push((
                task_id.clone(),
                fields
                    .deps
                    .iter()
                    .flatten()
                    .map(|d| (matrix::substitute_id(d.get_ref(), combo), d.span()))
                    .collect(),
            ));
            tasks.extend(task);
        }
        if from_matrix {
            templates.insert(id.get_ref().clone(), expanded);
        }
    }

    deps::resolve(&source, &mut tasks, deps, &templates, &mut errors);

    let budget = match file.swarm.budget {
        None => Budget::default(),
        Some(b) => {
            // A run-wide USD limit needs the price of every model in use.
            let used = tasks.iter().filter_map(Task::agent);
            let unpriced = used
                .filter_map(|a| models.get(&a.model))
                .find(|m| m.price.is_none());
            let span = tasks.first().map(|t| t.span.clone()).unwrap_or(0..0);
            keep(
                &mut errors,
                models::check_budget(&source, b.into(), span, "the run", unpriced),
            )
            .unwrap_or_default()
        }
    };

    let min_free_space = match &file.swarm.min_free_space {
        None => super::DEFAULT_MIN_FREE_SPACE,
        Some(v) => match v.get_ref().trim().parse::<bytesize::ByteSize>() {
            Ok(b) => b.as_u64(),
            Err(_) => {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("invalid min_free_space `{}`", v.get_ref()),
                            Some(v.span()),
                            "not a size",
                        )
                        .with_help(
                            "write sizes like \"512MiB\" or \"2GiB\" (\"0B\" turns the check off)",
                        ),
                );
                0
            }
        },
    };

    let toolchains = keep(
        &mut errors,
        toolchains(&source, file.swarm.toolchains.as_ref()),
    )
    .unwrap_or(super::Toolchains::None);
    // Relative or home-less entries are plan errors whatever the machine;
    // whether a path exists is the CLI's check (it knows the home).
    let mut read_paths = Vec::new();
    for p in file.swarm.read_paths.iter().flatten() {
        let raw = p.get_ref();
        if raw.starts_with("~/") || Path::new(raw).is_absolute() {
            read_paths.push(super::ReadPath {
                raw: raw.clone(),
                span: p.span(),
            });
        } else {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("`read_paths` entry `{raw}` is relative"),
                        Some(p.span()),
                        "not an absolute path",
                    )
                    .with_help("write an absolute path, or one that starts with ~/ (your home)"),
            );
        }
    }
    let mut worktrees = None;
    if let Some(p) = &file.swarm.worktrees {
        let raw = p.get_ref();
        if raw.starts_with("~/") || Path::new(raw).is_absolute() {
            worktrees = Some(super::ReadPath {
                raw: raw.clone(),
                span: p.span(),
            });
        } else {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("`worktrees` directory `{raw}` is relative"),
                        Some(p.span()),
                        "not an absolute path",
                    )
                    .with_help(
                        "write an absolute path outside the repository, or one that starts with ~/",
                    ),
            );
        }
    }

    if let Some(error) = PlanError::bundle(errors) {
        return Err(error);
    }
    Ok(Plan {
        path: path.to_path_buf(),
        source,
        name,
        base: file
            .swarm
            .base
            .as_ref()
            .map_or_else(|| "HEAD".into(), |b| b.get_ref().clone()),
        base_from: file
            .swarm
            .base
            .as_ref()
            .map_or(super::BaseFrom::Default, |b| {
                super::BaseFrom::Plan(b.span())
            }),
        concurrency: file.swarm.concurrency.as_ref().map(|c| *c.get_ref()),
        sandbox: file.swarm.sandbox.unwrap_or_default(),
        on_failure: file.swarm.on_failure.unwrap_or_default(),
        history: file.swarm.history.unwrap_or_default(),
        read_paths,
        toolchains,
        worktrees,
        caches: file.swarm.caches.unwrap_or(true),
        models,
        budget,
        min_free_space,
        tasks,
    })
}

/// The error for two combinations of one matrix that make the same id
/// because two different values of a key have the same slug.
fn slug_collision(
    source: &Source,
    id: &str,
    span: Range<usize>,
    first: &BTreeMap<String, String>,
    second: &BTreeMap<String, String>,
) -> Option<PlanError> {
    let (key, a, b) = first.iter().find_map(|(key, a)| {
        let b = second.get(key)?;
        (a != b && matrix::slug(a) == matrix::slug(b)).then_some((key, a, b))
    })?;
    Some(
        source
            .error(
                PlanErrorKind::DuplicateId,
                format!("matrix values `{a}` and `{b}` of `{key}` make the same id `{id}`"),
                Some(span),
                "the same id twice",
            )
            .with_help(format!(
                "in an id a value is slugged (lowercase, other characters `-`), and both give `{}`; rename one of them",
                matrix::slug(a)
            )),
    )
}

/// The value of `result`, or `None` with its error added to `errors`.
pub(super) fn keep<T>(errors: &mut Vec<PlanError>, result: Result<T, PlanError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

/// What every task of a plan is resolved against.
pub(super) struct Ctx<'a> {
    pub source: &'a Source,
    pub plan_dir: &'a Path,
    pub models: &'a BTreeMap<String, ModelConfig>,
    /// `[models.NAME]` tables with errors of their own: a task that uses one
    /// is not reported again.
    pub broken_models: HashSet<String>,
    pub defaults: &'a TaskFields,
}

/// The run's name: `[swarm] name`, else the plan file's stem.
fn run_name(path: &Path, source: &Source, file: &PlanFile) -> Result<String, PlanError> {
    if let Some(name) = &file.swarm.name {
        if !is_valid_run_name(name.get_ref()) {
            return Err(source
                .error(
                    PlanErrorKind::BadValue,
                    format!("invalid run name `{}`", name.get_ref()),
                    Some(name.span()),
                    "not usable in a git branch name",
                )
                .with_help("use letters, digits, `_`, `-` and `.` (not first), e.g. `refactor-logging`; `latest` is taken by swarm"));
        }
        return Ok(name.get_ref().clone());
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is_valid_run_name(&stem) {
        return Err(PlanError::plain(
            PlanErrorKind::BadValue,
            format!(
                "{}: the file name `{stem}` cannot be a run name",
                source.name
            ),
        )
        .with_help("set `name` in the `[swarm]` table, e.g. name = \"refactor\""));
    }
    Ok(stem)
}

/// `[swarm] toolchains`: `true`, `false` or a list of known names.
fn toolchains(
    source: &Source,
    field: Option<&toml::Spanned<super::schema::ToolchainsField>>,
) -> Result<super::Toolchains, PlanError> {
    use super::schema::ToolchainsField;
    let Some(field) = field else {
        return Ok(super::Toolchains::All);
    };
    match field.get_ref() {
        ToolchainsField::All(true) => Ok(super::Toolchains::All),
        ToolchainsField::All(false) => Ok(super::Toolchains::None),
        ToolchainsField::Only(names) => {
            if let Some(bad) = names
                .iter()
                .find(|n| !super::TOOLCHAINS.contains(&n.as_str()))
            {
                let known = super::TOOLCHAINS.join("`, `");
                let help = match super::error::did_you_mean(bad, super::TOOLCHAINS.iter().copied())
                {
                    Some(close) => format!("did you mean `{close}`? known toolchains: `{known}`"),
                    None => format!("known toolchains: `{known}`"),
                };
                return Err(source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("unknown toolchain `{bad}`"),
                        Some(field.span()),
                        "not a toolchain swarm knows",
                    )
                    .with_help(help));
            }
            Ok(super::Toolchains::Only(names.clone()))
        }
    }
}

fn check_defaults(source: &Source, defaults: &TaskFields, errors: &mut Vec<PlanError>) {
    let misplaced = [
        ("id", defaults.id.as_ref().map(|s| s.span())),
        (
            "deps",
            defaults
                .deps
                .as_ref()
                .and_then(|d| d.first())
                .map(|s| s.span()),
        ),
        ("matrix", defaults.matrix.as_ref().map(|s| s.span())),
    ];
    for (key, span) in misplaced {
        if let Some(span) = span {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("`{key}` cannot have a default"),
                        Some(span),
                        "in [defaults]",
                    )
                    .with_help(format!("set `{key}` on each task instead")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(text: &str) -> Result<super::super::Plan, Box<super::super::PlanError>> {
        super::super::parse(Path::new("plan.toml"), text.to_string())
    }

    #[test]
    fn max_file_size_defaults_to_100mib_and_refuses_zero() {
        let plan = parse(
            "[defaults]\nmax_file_size = \"1GiB\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n\n[[task]]\nid = \"b\"\nrun = \"true\"\nmax_file_size = \"5MB\"\n",
        )
        .map_err(|e| e.to_string());
        let plan = plan.as_ref().map(|p| &p.tasks);
        assert_eq!(
            plan.map(|t| t.iter().map(|t| t.max_file_size).collect::<Vec<_>>()),
            Ok(vec![1 << 30, 5_000_000])
        );
        let default =
            parse("[[task]]\nid = \"a\"\nrun = \"true\"\n").map(|p| p.tasks[0].max_file_size);
        assert_eq!(default.ok(), Some(100 << 20));
        let zero = parse("[[task]]\nid = \"a\"\nrun = \"true\"\nmax_file_size = \"0B\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            zero.contains("invalid max_file_size `0B` for task `a`: must be more than zero (there is no unlimited"),
            "{zero}"
        );
    }
}
