//! From the parsed file to checked tasks: defaults, matrix expansion, and
//! every check that needs the whole plan (ids, dependencies, cycles).

// A PlanError is built at most once per invocation, on the way out; its size
// costs nothing that boxing every internal return would save.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use swarm_protocol::{Isolation, TaskKind};
use toml::Spanned;

use super::error::{PlanError, PlanErrorKind, Source, did_you_mean};
use super::models::{
    self, AgentTask, Budget, DEFAULT_MAX_TURNS, DEFAULT_REPAIR_ROUNDS, ModelConfig,
};
use super::schema::{MatrixValue, PlanFile, TaskFields};
use super::{Plan, Task, WasmTask, is_valid_run_name, is_valid_task_id};

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
    let plan_dir = path.parent().unwrap_or(Path::new(""));
    let name = match &file.swarm.name {
        Some(name) => {
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
            name.get_ref().clone()
        }
        None => {
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
            stem
        }
    };
    if let Some(c) = &file.swarm.concurrency
        && *c.get_ref() == 0
    {
        return Err(source.error(
            PlanErrorKind::BadValue,
            "concurrency must be at least 1",
            Some(c.span()),
            "zero",
        ));
    }
    check_defaults(&source, &file.defaults)?;
    let models = models::resolve_models(&source, &file.models)?;
    if file.task.is_empty() {
        return Err(PlanError::plain(
            PlanErrorKind::Empty,
            format!("{}: the plan has no tasks", source.name),
        )
        .with_help(
            "add at least one task:\n\n[[task]]\nid = \"hello\"\nrun = \"echo hello > hello.txt\"",
        ));
    }

    let mut tasks = Vec::new();
    // Unexpanded id of a matrix task -> ids of its expansions.
    let mut templates: HashMap<String, Vec<String>> = HashMap::new();
    // Task id -> where it was first defined, for duplicate errors.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for spanned in &file.task {
        let table_span = spanned.span();
        let fields = spanned.get_ref();
        let Some(id) = &fields.id else {
            return Err(source
                .error(
                    PlanErrorKind::BadValue,
                    "a task has no `id`",
                    Some(table_span),
                    "this task",
                )
                .with_help("give every task a unique id, e.g. id = \"build\""));
        };
        let combos = matrix_combinations(&source, fields)?;
        let from_matrix = fields.matrix.is_some();
        if let Some(matrix) = &fields.matrix {
            check_placeholders(&source, id.get_ref(), fields, matrix)?;
        }
        let mut expanded = Vec::new();
        for combo in &combos {
            let task = resolve(&source, plan_dir, &models, &file.defaults, fields, combo)?;
            if let Some(first) = seen.get(&task.id) {
                let (line, col) = source.line_col(*first);
                let message = if from_matrix {
                    format!(
                        "the matrix of `{}` expands to the duplicate id `{}`",
                        id.get_ref(),
                        task.id
                    )
                } else {
                    format!("duplicate task id `{}`", task.id)
                };
                return Err(source
                    .error(
                        PlanErrorKind::DuplicateId,
                        message,
                        Some(task.span.clone()),
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
                    )));
            }
            seen.insert(task.id.clone(), task.span.start);
            expanded.push(task.id.clone());
            tasks.push(task);
        }
        if from_matrix {
            templates.insert(id.get_ref().clone(), expanded);
        }
    }

    resolve_deps(&source, &file, &templates, &mut tasks)?;
    if let Some(cycle) = crate::graph::find_cycle(&tasks) {
        let names: Vec<&str> = cycle.iter().map(|&i| tasks[i].id.as_str()).collect();
        let first = &tasks[cycle[0]];
        return Err(source
            .error(
                PlanErrorKind::Cycle,
                format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
                Some(first.span.clone()),
                "this task depends on itself through the cycle",
            )
            .with_help(
                "remove one of these dependencies; a plan must be a directed acyclic graph",
            ));
    }

    let budget = match file.swarm.budget {
        None => Budget::default(),
        Some(b) => {
            // A run-wide USD limit needs the price of every model in use.
            let used = tasks.iter().filter_map(|t| t.agent.as_ref());
            let unpriced = used
                .filter_map(|a| models.get(&a.model))
                .find(|m| m.price.is_none());
            let span = tasks.first().map(|t| t.span.clone()).unwrap_or(0..0);
            models::check_budget(&source, b.into(), span, "the run", unpriced)?
        }
    };

    let min_free_space = match &file.swarm.min_free_space {
        None => super::DEFAULT_MIN_FREE_SPACE,
        Some(v) => v
            .get_ref()
            .trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| b.as_u64())
            .map_err(|_| {
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("invalid min_free_space `{}`", v.get_ref()),
                        Some(v.span()),
                        "not a size",
                    )
                    .with_help(
                        "write sizes like \"512MiB\" or \"2GiB\" (\"0B\" turns the check off)",
                    )
            })?,
    };

    let toolchains = toolchains(&source, file.swarm.toolchains.as_ref())?;
    // Relative or home-less entries are plan errors whatever the machine;
    // whether a path exists is the CLI's check (it knows the home).
    let read_paths = file
        .swarm
        .read_paths
        .iter()
        .flatten()
        .map(|p| {
            let raw = p.get_ref();
            if raw.starts_with("~/") || Path::new(raw).is_absolute() {
                Ok(super::ReadPath {
                    raw: raw.clone(),
                    span: p.span(),
                })
            } else {
                Err(source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("`read_paths` entry `{raw}` is relative"),
                        Some(p.span()),
                        "not an absolute path",
                    )
                    .with_help("write an absolute path, or one that starts with ~/ (your home)"))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Plan {
        path: path.to_path_buf(),
        source,
        name,
        base: file.swarm.base.clone().unwrap_or_else(|| "HEAD".into()),
        concurrency: file.swarm.concurrency.as_ref().map(|c| *c.get_ref()),
        sandbox: file.swarm.sandbox.unwrap_or_default(),
        on_failure: file.swarm.on_failure.unwrap_or_default(),
        history: file.swarm.history.unwrap_or_default(),
        read_paths,
        toolchains,
        models,
        budget,
        min_free_space,
        tasks,
    })
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

fn check_defaults(source: &Source, defaults: &TaskFields) -> Result<(), PlanError> {
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
            return Err(source
                .error(
                    PlanErrorKind::BadValue,
                    format!("`{key}` cannot have a default"),
                    Some(span),
                    "in [defaults]",
                )
                .with_help(format!("set `{key}` on each task instead")));
        }
    }
    Ok(())
}

/// Every combination of a task's matrix, as `name -> value` maps; one empty
/// map for a task without a matrix. Keys are taken in sorted order.
fn matrix_combinations(
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
fn check_placeholders(
    source: &Source,
    id: &str,
    fields: &TaskFields,
    matrix: &Spanned<BTreeMap<String, Vec<MatrixValue>>>,
) -> Result<(), PlanError> {
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
            return Err(source
                .error(
                    PlanErrorKind::BadValue,
                    format!("task `{id}`: `{{{word}}}` in `{key}` is not a key of its matrix"),
                    at.or(Some(matrix.span())),
                    "not a matrix key",
                )
                .with_help(help));
        }
    }
    Ok(())
}

fn substitute(text: &str, combo: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (key, value) in combo {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}

/// One concrete task from its table, the defaults and a matrix combination.
fn resolve(
    source: &Source,
    plan_dir: &Path,
    models: &BTreeMap<String, ModelConfig>,
    defaults: &TaskFields,
    fields: &TaskFields,
    combo: &BTreeMap<String, String>,
) -> Result<Task, PlanError> {
    let sub = |s: &str| substitute(s, combo);
    let id_field = fields.id.as_ref().map(|s| (s.get_ref().as_str(), s.span()));
    let (raw_id, span) = id_field.unwrap_or(("", 0..0));
    let id = sub(raw_id);
    if !is_valid_task_id(&id) {
        return Err(source
            .error(PlanErrorKind::BadValue, format!("invalid task id `{id}`"), Some(span), "invalid id")
            .with_help("task ids use only lowercase letters, digits, `_` and `-` (at most 100), e.g. \"build-core\""));
    }

    let pick = |own: &Option<Spanned<String>>, default: &Option<Spanned<String>>| {
        own.as_ref().or(default.as_ref()).cloned()
    };
    let run = pick(&fields.run, &defaults.run);
    let wasm = pick(&fields.wasm, &defaults.wasm);
    let prompt = pick(&fields.prompt, &defaults.prompt);
    let kinds: Vec<(&str, &Spanned<String>)> =
        [("run", &run), ("wasm", &wasm), ("prompt", &prompt)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
    let (kind, run, wasm, agent) = match kinds.as_slice() {
        [] => {
            return Err(source
                .error(
                    PlanErrorKind::BadValue,
                    format!("task `{id}` has nothing to run"),
                    Some(span),
                    "this task",
                )
                .with_help("set exactly one of `run` (a shell command), `wasm` or `prompt`"));
        }
        [(_, _), (second, value), ..] => {
            return Err(source
                .error(
                    PlanErrorKind::BadValue,
                    format!("task `{id}` sets more than one of `run`, `wasm` and `prompt`"),
                    Some(value.span()),
                    format!("`{second}` given as well"),
                )
                .with_help("a task runs exactly one thing; split it into two tasks"));
        }
        [("run", value)] => (TaskKind::Command, sub(value.get_ref()), None, None),
        [("wasm", value)] => (
            TaskKind::Wasm,
            String::new(),
            Some(WasmTask {
                module: plan_dir.join(sub(value.get_ref())),
                span: value.span(),
                args: fields
                    .args
                    .as_ref()
                    .or(defaults.args.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|a| sub(a))
                    .collect(),
                fuel: fields.fuel.or(defaults.fuel),
            }),
            None,
        ),
        [(_, value)] => {
            let prompt = sub(value.get_ref());
            if prompt.trim().is_empty() {
                return Err(source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}` has an empty prompt"),
                        Some(value.span()),
                        "empty",
                    )
                    .with_help("say what the agent should do, e.g. prompt = \"Replace log with tracing in crates/core\""));
            }
            let (model_name, model_span) = pick(&fields.model, &defaults.model)
                .map(|m| (sub(m.get_ref()), m.span()))
                .unwrap_or_else(|| ("default".into(), span.clone()));
            let model = models::pick_model(source, models, &id, &model_name, model_span)?;
            let budget = fields.budget.or(defaults.budget).unwrap_or_default();
            let budget = models::check_budget(
                source,
                budget.into(),
                span.clone(),
                &format!("task `{id}`"),
                model.price.is_none().then_some(model),
            )?;
            if fields.network.or(defaults.network) == Some(super::NetworkMode::Full) {
                return Err(source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}` is an agent task with network = \"full\""),
                        Some(span.clone()),
                        "an agent task",
                    )
                    .with_help("agents reach their model through swarm and have no network of their own; remove `network`"));
            }
            let max_turns = fields
                .max_turns
                .or(defaults.max_turns)
                .unwrap_or(DEFAULT_MAX_TURNS);
            if max_turns == 0 {
                return Err(source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}` has max_turns = 0"),
                        Some(span.clone()),
                        "in this task",
                    )
                    .with_help("an agent needs at least one model call; the default is 50"));
            }
            (
                TaskKind::Agent,
                String::new(),
                None,
                Some(AgentTask {
                    prompt,
                    model: model_name,
                    max_turns,
                    budget,
                    repair_rounds: fields
                        .repair_rounds
                        .or(defaults.repair_rounds)
                        .unwrap_or(DEFAULT_REPAIR_ROUNDS),
                }),
            )
        }
    };
    if kind != TaskKind::Wasm
        && let Some(key) = [
            ("args", fields.args.is_some()),
            ("fuel", fields.fuel.is_some()),
        ]
        .into_iter()
        .find_map(|(key, set)| set.then_some(key))
    {
        return Err(source
            .error(
                PlanErrorKind::BadValue,
                format!("task `{id}` sets `{key}`, which only WASM tasks take"),
                Some(span),
                "not a `wasm` task",
            )
            .with_help(format!(
                "put the arguments in the `run` command itself, or make it a `wasm` task; remove `{key}`"
            )));
    }
    if kind != TaskKind::Agent
        && let Some(key) = [
            ("model", fields.model.is_some()),
            ("max_turns", fields.max_turns.is_some()),
            ("budget", fields.budget.is_some()),
            ("repair_rounds", fields.repair_rounds.is_some()),
        ]
        .into_iter()
        .find_map(|(key, set)| set.then_some(key))
    {
        return Err(source
            .error(
                PlanErrorKind::BadValue,
                format!("task `{id}` sets `{key}`, which only agent (`prompt`) tasks take"),
                Some(span),
                "not a `prompt` task",
            )
            .with_help(format!(
                "remove `{key}`, or give the task a `prompt` instead"
            )));
    }

    let mut env = defaults.env.clone().unwrap_or_default();
    for (k, v) in fields.env.iter().flatten() {
        env.insert(k.clone(), v.clone());
    }
    let env = env.into_iter().map(|(k, v)| (sub(&k), sub(&v))).collect();

    let timeout = match pick(&fields.timeout, &defaults.timeout) {
        None => None,
        Some(t) => Some(humantime::parse_duration(t.get_ref()).map_err(|e| {
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("invalid timeout `{}` for task `{id}`: {e}", t.get_ref()),
                    Some(t.span()),
                    "not a duration",
                )
                .with_help("write durations like \"90s\", \"20m\" or \"1h 30m\"")
        })?),
    };

    let size = |key: &str, value: Option<Spanned<String>>| -> Result<Option<u64>, PlanError> {
        let Some(value) = value else { return Ok(None) };
        match value.get_ref().trim().parse::<bytesize::ByteSize>() {
            Ok(size) if size.as_u64() > 0 => Ok(Some(size.as_u64())),
            // Zero would leave every file out; "no limit" is a large size.
            Ok(_) if key == "max_file_size" => Err(
                "must be more than zero (there is no unlimited: write a size as large as you need, e.g. \"10GiB\")"
                    .to_string(),
            ),
            Ok(_) => Err("must be more than zero".to_string()),
            // bytesize's own message talks about floats and ByteSize.
            Err(_) => Err("expected a number and a unit".to_string()),
        }
        .map_err(|e| {
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("invalid {key} `{}` for task `{id}`: {e}", value.get_ref()),
                    Some(value.span()),
                    "not a size",
                )
                .with_help("write sizes like \"512MiB\", \"2GiB\" or \"64KiB\"")
        })
    };
    let memory = size("memory", pick(&fields.memory, &defaults.memory))?;
    let max_output = size("max_output", pick(&fields.max_output, &defaults.max_output))?
        .unwrap_or(super::DEFAULT_MAX_OUTPUT);
    let max_file_size = size(
        "max_file_size",
        pick(&fields.max_file_size, &defaults.max_file_size),
    )?
    .unwrap_or(super::DEFAULT_MAX_FILE_SIZE);
    let processes = fields.processes.or(defaults.processes);
    if processes == Some(0) {
        return Err(source
            .error(
                PlanErrorKind::BadValue,
                format!("invalid processes `0` for task `{id}`"),
                Some(span.clone()),
                "in this task",
            )
            .with_help("`processes` counts the worker's processes and threads: at least 1"));
    }

    let mut paths = Vec::new();
    for p in fields
        .paths
        .as_ref()
        .or(defaults.paths.as_ref())
        .into_iter()
        .flatten()
    {
        let p = sub(p);
        let clean = p.trim_end_matches('/').trim_start_matches("./").to_string();
        if clean.is_empty()
            || clean.starts_with('/')
            || clean.split('/').any(|c| c == ".." || c == ".git")
        {
            return Err(source
                .error(
                    PlanErrorKind::BadValue,
                    format!("invalid path `{p}` in task `{id}`"),
                    Some(span.clone()),
                    "in this task",
                )
                .with_help("`paths` are relative to the repository root, without `..` or `.git`"));
        }
        paths.push(clean);
    }

    Ok(Task {
        id,
        span,
        deps: fields
            .deps
            .iter()
            .flatten()
            .map(|d| sub(d.get_ref()))
            .collect(),
        kind,
        run,
        wasm,
        agent,
        env,
        timeout,
        retries: fields.retries.or(defaults.retries).unwrap_or(0),
        verify: fields
            .verify
            .as_ref()
            .or(defaults.verify.as_ref())
            .map(|v| sub(v)),
        paths,
        isolation: fields
            .isolation
            .or(defaults.isolation)
            .unwrap_or(Isolation::Worktree),
        network: fields.network.or(defaults.network).unwrap_or_default(),
        memory,
        processes,
        max_output,
        max_file_size,
    })
}

/// Replaces template deps by their expansions and checks every dependency.
fn resolve_deps(
    source: &Source,
    file: &PlanFile,
    templates: &HashMap<String, Vec<String>>,
    tasks: &mut [Task],
) -> Result<(), PlanError> {
    let ids: std::collections::HashSet<String> = tasks.iter().map(|t| t.id.clone()).collect();
    // Spans of deps as written, to point at the bad one.
    let dep_spans: HashMap<&str, std::ops::Range<usize>> = file
        .task
        .iter()
        .flat_map(|t| t.get_ref().deps.iter().flatten())
        .map(|d| (d.get_ref().as_str(), d.span()))
        .collect();
    for task in tasks.iter_mut() {
        let mut deps = Vec::new();
        for dep in std::mem::take(&mut task.deps) {
            let span = dep_spans
                .get(dep.as_str())
                .cloned()
                .or(Some(task.span.clone()));
            if let Some(expansions) = templates.get(&dep).filter(|_| !ids.contains(&dep)) {
                deps.extend(expansions.iter().cloned());
            } else if dep == task.id {
                return Err(source
                    .error(
                        PlanErrorKind::SelfDependency,
                        format!("task `{dep}` depends on itself"),
                        span,
                        "self-dependency",
                    )
                    .with_help("remove it from its own `deps`"));
            } else if ids.contains(&dep) {
                deps.push(dep);
            } else {
                let close = did_you_mean(&dep, ids.iter().map(String::as_str));
                return Err(source
                    .error(
                        PlanErrorKind::UnknownDependency,
                        format!("task `{}` depends on unknown task `{dep}`", task.id),
                        span,
                        "no task has this id",
                    )
                    .with_help(match close {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => {
                            "every entry of `deps` must be the id of a task in this plan".into()
                        }
                    }));
            }
        }
        if deps.iter().any(|d| d == &task.id) {
            return Err(source.error(
                PlanErrorKind::SelfDependency,
                format!("task `{}` depends on itself", task.id),
                Some(task.span.clone()),
                "through its own matrix",
            ));
        }
        let mut unique = std::collections::HashSet::new();
        deps.retain(|d| unique.insert(d.clone()));
        task.deps = deps;
    }
    Ok(())
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
