//! One task: its table, the defaults and a matrix combination made into a
//! checked [`Task`], every problem of its fields reported.

// As in expand.rs: a PlanError is built once per mistake, on the way out.
#![allow(clippy::result_large_err)]

use std::ops::Range;

use swarm_protocol::{Isolation, TaskKind};
use toml::Spanned;

use super::ctx::{Ctx, keep};
use super::error::{PlanError, PlanErrorKind};
use super::matrix::Values;
use super::models::{self, AgentTask, Budget, DEFAULT_MAX_TURNS, DEFAULT_REPAIR_ROUNDS};
use super::network::{AllowList, Allowed, TaskNetwork};
use super::schema::{NetworkField, NetworkMode, TaskFields};
use super::{Payload, Task, WasmTask, matrix};

/// One concrete task from its table, the defaults and a matrix combination.
/// Each problem is added to `errors` (all of them, not the first); the task
/// is `None` if there was any.
pub(super) fn resolve(
    ctx: &Ctx,
    fields: &TaskFields,
    combo: &Values,
    id: &str,
    span: Range<usize>,
    errors: &mut Vec<PlanError>,
) -> Option<Task> {
    let Ctx {
        source, defaults, ..
    } = *ctx;
    let before = errors.len();
    let sub = |s: &str| matrix::substitute(s, combo);
    let pick = |own: &Option<Spanned<String>>, default: &Option<Spanned<String>>| {
        own.as_ref().or(default.as_ref()).cloned()
    };
    // A task with nothing (or too much) to run has no kind: its other
    // fields cannot be judged either.
    let payload = payload(ctx, fields, combo, id, &span, errors)?;

    let mut env = defaults.env.clone().unwrap_or_default();
    for (k, v) in fields.env.iter().flatten() {
        env.insert(k.clone(), v.clone());
    }
    let env = env.into_iter().map(|(k, v)| (sub(&k), sub(&v))).collect();

    let timeout = match pick(&fields.timeout, &defaults.timeout) {
        None => None,
        Some(t) => keep(
            errors,
            humantime::parse_duration(t.get_ref()).map_err(|e| {
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("invalid timeout `{}` for task `{id}`: {e}", t.get_ref()),
                        Some(t.span()),
                        "not a duration",
                    )
                    .with_help("write durations like \"90s\", \"20m\" or \"1h 30m\"")
            }),
        ),
    };

    let stall_after = match pick(&fields.stall_after, &defaults.stall_after) {
        None => matches!(payload, Payload::Agent(_)).then_some(super::DEFAULT_AGENT_STALL),
        Some(t) if t.get_ref().trim() == "off" => None,
        Some(t) => keep(
            errors,
            humantime::parse_duration(t.get_ref())
                .map_err(|e| e.to_string())
                .and_then(|d| match d.is_zero() {
                    true => Err("must be more than zero (\"off\" turns it off)".into()),
                    false => Ok(d),
                })
                .map_err(|e| {
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("invalid stall_after `{}` for task `{id}`: {e}", t.get_ref()),
                            Some(t.span()),
                            "not a duration",
                        )
                        .with_help("write durations like \"2m\" or \"10m\", or \"off\"")
                }),
        ),
    };

    let Limits {
        memory,
        processes,
        max_output,
        max_file_size,
    } = limits(ctx, fields, id, &span, errors);

    let (paths, creates, sparse) = task_paths(ctx, fields, id, &span, &sub, errors);
    let network = network(
        source,
        fields.network.as_ref().or(defaults.network.as_ref()),
        &format!("task `{id}`"),
        &span,
        errors,
    );
    if errors.len() > before {
        return None;
    }
    // A command's or WASM program's result is a function of its base: run
    // again on the branch as it is, it lands; an agent's costs a model.
    let conflict_default = match &payload {
        Payload::Agent(_) => super::OnConflict::Stop,
        Payload::Command { .. } | Payload::Wasm(_) => super::OnConflict::Rerun,
    };
    Some(Task {
        id: id.to_string(),
        span,
        // Resolved with every task's id known, in `deps::resolve`.
        deps: Vec::new(),
        payload,
        env,
        timeout,
        stall_after,
        retries: fields.retries.or(defaults.retries).unwrap_or(0),
        verify: fields
            .verify
            .as_ref()
            .or(defaults.verify.as_ref())
            .map(|v| sub(v)),
        paths,
        sparse,
        creates,
        allow_overlap: fields
            .allow_overlap
            .or(defaults.allow_overlap)
            .unwrap_or(false),
        isolation: fields
            .isolation
            .or(defaults.isolation)
            .unwrap_or(Isolation::Worktree),
        group: fields
            .group
            .as_ref()
            .or(defaults.group.as_ref())
            .map(|g| sub(g.get_ref())),
        junit: fields
            .junit
            .as_ref()
            .or(defaults.junit.as_ref())
            .map(|j| sub(j.get_ref())),
        flaky: fields.flaky.or(defaults.flaky).unwrap_or_default(),
        on_conflict: fields
            .on_conflict
            .or(defaults.on_conflict)
            .or(ctx.on_conflict)
            .unwrap_or(conflict_default),
        conflict_reruns: fields
            .conflict_reruns
            .or(defaults.conflict_reruns)
            .unwrap_or(super::DEFAULT_CONFLICT_RERUNS),
        network,
        setup: fields.setup.or(defaults.setup).unwrap_or(true),
        warm: fields.warm.or(defaults.warm),
        memory,
        processes,
        max_output,
        max_file_size,
        role: super::Role::Plain,
        not_after: None,
        sharding: None,
    })
}

/// A task's resource limits, its own or `[defaults]`'.
struct Limits {
    memory: Option<u64>,
    processes: Option<u64>,
    max_output: u64,
    max_file_size: u64,
}

/// Task `id`'s limits (`span`: its table), each problem added to `errors`.
fn limits(
    ctx: &Ctx,
    fields: &TaskFields,
    id: &str,
    span: &Range<usize>,
    errors: &mut Vec<PlanError>,
) -> Limits {
    let Ctx {
        source, defaults, ..
    } = *ctx;
    let pick = |own: &Option<Spanned<String>>, default: &Option<Spanned<String>>| {
        own.as_ref().or(default.as_ref()).cloned()
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
    let memory = keep(
        errors,
        size("memory", pick(&fields.memory, &defaults.memory)),
    )
    .flatten();
    let max_output = keep(
        errors,
        size("max_output", pick(&fields.max_output, &defaults.max_output)),
    )
    .flatten()
    .unwrap_or(super::DEFAULT_MAX_OUTPUT);
    let max_file_size = keep(
        errors,
        size(
            "max_file_size",
            pick(&fields.max_file_size, &defaults.max_file_size),
        ),
    )
    .flatten()
    .unwrap_or(super::DEFAULT_MAX_FILE_SIZE);
    let processes = fields.processes.or(defaults.processes);
    if processes == Some(0) {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("invalid processes `0` for task `{id}`"),
                    Some(span.clone()),
                    "in this task",
                )
                .with_help("`processes` counts the worker's processes and threads: at least 1"),
        );
    }
    Limits {
        memory,
        processes,
        max_output,
        max_file_size,
    }
}

/// Task `id`'s `paths` (its own or `[defaults]`'), `creates` and
/// `sparse`, each path cleaned and checked (`span`: its table).
fn task_paths(
    ctx: &Ctx,
    fields: &TaskFields,
    id: &str,
    span: &Range<usize>,
    sub: &dyn Fn(&str) -> String,
    errors: &mut Vec<PlanError>,
) -> (Vec<String>, Vec<String>, bool) {
    let Ctx {
        source, defaults, ..
    } = *ctx;
    let mut paths = Vec::new();
    let mut creates = Vec::new();
    for (key, list, out) in [
        (
            "paths",
            fields.paths.as_ref().or(defaults.paths.as_ref()),
            &mut paths,
        ),
        ("creates", fields.creates.as_ref(), &mut creates),
    ] {
        for p in list.into_iter().flatten() {
            let p = sub(p);
            let clean = clean_path(&p);
            if clean.is_empty()
                || clean.starts_with('/')
                || clean.split('/').any(|c| c == ".." || c == ".git")
            {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("invalid path `{p}` in `{key}` of task `{id}`"),
                            Some(span.clone()),
                            "in this task",
                        )
                        .with_help(format!(
                            "`{key}` are relative to the repository root, without `..` or `.git`"
                        )),
                );
            }
            out.push(clean);
        }
    }

    let sparse = fields.sparse.or(defaults.sparse).unwrap_or(false);
    if sparse && paths.is_empty() {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("task `{id}` is `sparse` but has no `paths` to check out"),
                    Some(span.clone()),
                    "in this task",
                )
                .with_help("list what the task needs in `paths`, or drop `sparse = true`"),
        );
    }
    (paths, creates, sparse)
}

/// The network `written` (a task's own or `[defaults]`'s) gives `whose`
/// ("task `a`", in messages; `span` is where it stands): a list's entries
/// each checked at its place in the file. For whatever else runs
/// commands with a `network` key of its own.
pub(super) fn network(
    source: &super::error::Source,
    written: Option<&NetworkField>,
    whose: &str,
    span: &Range<usize>,
    errors: &mut Vec<PlanError>,
) -> TaskNetwork {
    let hosts = match written {
        None | Some(NetworkField::Mode(NetworkMode::None)) => return TaskNetwork::None,
        Some(NetworkField::Mode(NetworkMode::Full)) => return TaskNetwork::Full,
        Some(NetworkField::Hosts(hosts)) => hosts,
    };
    let mut entries = Vec::with_capacity(hosts.len());
    for host in hosts {
        match Allowed::parse(host.get_ref()) {
            Ok(entry) => entries.push(entry),
            Err(why) => errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!(
                            "{whose}: network entry `{}` {why}",
                            crate::escape::line(host.get_ref())
                        ),
                        Some(host.span()),
                        "not a host",
                    )
                    .with_help(
                        "list hosts as \"example.com\" (ports 80 and 443), \"example.com:8443\", \"*.example.com\" or an IP address, \"127.0.0.2:8000\"",
                    ),
            ),
        }
    }
    match AllowList::new(entries) {
        Some(list) => TaskNetwork::Hosts(list),
        None => {
            if hosts.is_empty() {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("{whose} has network = [], which allows nothing"),
                            Some(span.clone()),
                            "here",
                        )
                        .with_help("write network = \"none\" for no network, or list the hosts it may reach"),
                );
            }
            TaskNetwork::None
        }
    }
}

/// The task's payload: which of `run`, `wasm` and `prompt` it sets (exactly
/// one), resolved by that kind's own step; then the keys of other kinds it
/// must not set. `None` if it sets none or several.
fn payload(
    ctx: &Ctx,
    fields: &TaskFields,
    combo: &Values,
    id: &str,
    span: &Range<usize>,
    errors: &mut Vec<PlanError>,
) -> Option<Payload> {
    let Ctx {
        source, defaults, ..
    } = *ctx;
    let pick = |own: &Option<Spanned<String>>, default: &Option<Spanned<String>>| {
        own.as_ref().or(default.as_ref()).cloned()
    };
    // Each kind, the key that makes a task of that kind, and its value.
    // Keyed by the protocol's kind so that the `match` below must handle
    // every kind.
    let given = [
        (TaskKind::Command, "run", pick(&fields.run, &defaults.run)),
        (TaskKind::Wasm, "wasm", pick(&fields.wasm, &defaults.wasm)),
        (
            TaskKind::Agent,
            "prompt",
            pick(&fields.prompt, &defaults.prompt),
        ),
    ];
    let kinds: Vec<(TaskKind, &str, &Spanned<String>)> = given
        .iter()
        .filter_map(|(kind, key, v)| v.as_ref().map(|v| (*kind, *key, v)))
        .collect();
    let payload = match kinds.as_slice() {
        [] => {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}` has nothing to run"),
                        Some(span.clone()),
                        "this task",
                    )
                    .with_help("set exactly one of `run` (a shell command), `wasm` or `prompt`"),
            );
            return None;
        }
        [_, (_, second, value), ..] => {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}` sets more than one of `run`, `wasm` and `prompt`"),
                        Some(value.span()),
                        format!("`{second}` given as well"),
                    )
                    .with_help("a task runs exactly one thing; split it into two tasks"),
            );
            return None;
        }
        [(TaskKind::Command, _, value)] => command(value, combo),
        [(TaskKind::Wasm, _, value)] => wasm(ctx, fields, value, combo, id, errors)?,
        [(TaskKind::Agent, _, value)] => agent(ctx, fields, value, combo, id, span, errors),
    };
    foreign_keys(ctx, fields, &payload, id, span, errors);
    Some(payload)
}

/// A command task: its shell command.
fn command(run: &Spanned<String>, combo: &Values) -> Payload {
    Payload::Command {
        run: matrix::substitute(run.get_ref(), combo),
    }
}

/// A WASM task: its program (relative to the plan's directory; inside the
/// repository for a plan from an untrusted origin), arguments and fuel.
fn wasm(
    ctx: &Ctx,
    fields: &TaskFields,
    module: &Spanned<String>,
    combo: &Values,
    id: &str,
    errors: &mut Vec<PlanError>,
) -> Option<Payload> {
    let defaults = ctx.defaults;
    let sub = |s: &str| matrix::substitute(s, combo);
    let program = match ctx.files.program(&sub(module.get_ref())) {
        Ok(program) => program,
        Err(why) => {
            errors.push(
                ctx.source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}`: wasm: {why}"),
                        Some(module.span()),
                        "this module",
                    )
                    .with_help(
                        "a plan from outside (a repository's configuration, an MCP client) names modules git tracks at the run's base, relative to the plan",
                    ),
            );
            return None;
        }
    };
    Some(Payload::Wasm(Box::new(WasmTask {
        module: program.path,
        blob: program.blob,
        span: module.span(),
        args: fields
            .args
            .as_ref()
            .or(defaults.args.as_ref())
            .into_iter()
            .flatten()
            .map(|a| sub(a))
            .collect(),
        fuel: fields.fuel.or(defaults.fuel),
    })))
}

/// An agent task's budget (its own or `[defaults]`'), checked against its
/// model `model_name` (at `model_span`): none where the model's table is
/// broken (its own error says so).
fn agent_budget(
    ctx: &Ctx,
    fields: &TaskFields,
    (model_name, model_span): (&str, Range<usize>),
    (id, span): (&str, &Range<usize>),
    errors: &mut Vec<PlanError>,
) -> Budget {
    let Ctx {
        source,
        models,
        defaults,
        ..
    } = *ctx;
    let budget = fields.budget.or(defaults.budget).unwrap_or_default();
    if ctx.broken_models.contains(model_name) {
        // Its table's own error says what is wrong.
        Budget::default()
    } else {
        keep(
            errors,
            models::pick_model(source, models, id, model_name, model_span),
        )
        .and_then(|model| {
            keep(
                errors,
                models::check_budget(
                    source,
                    budget.into(),
                    span.clone(),
                    &format!("task `{id}`"),
                    model.price.is_none().then_some(model),
                ),
            )
        })
        .unwrap_or_default()
    }
}

/// An agent task: its prompt, its model (which must exist and suit the
/// budget), its turns and repair rounds. Its problems go to `errors`; the
/// payload is returned anyway so that the other kinds' keys are checked.
fn agent(
    ctx: &Ctx,
    fields: &TaskFields,
    prompt: &Spanned<String>,
    combo: &Values,
    id: &str,
    span: &Range<usize>,
    errors: &mut Vec<PlanError>,
) -> Payload {
    let Ctx {
        source,
        models,
        defaults,
        ..
    } = *ctx;
    let sub = |s: &str| matrix::substitute(s, combo);
    let value = prompt;
    let prompt = sub(value.get_ref());
    if prompt.trim().is_empty() {
        errors.push(source
            .error(
                PlanErrorKind::BadValue,
                format!("task `{id}` has an empty prompt"),
                Some(value.span()),
                "empty",
            )
            .with_help("say what the agent should do, e.g. prompt = \"Replace log with tracing in crates/core\""));
    }
    // The agent first: its table may name the model.
    let (agent_name, agent_span) = match combo.get(super::variants::AGENT_OVERRIDE) {
        Some(a) => (a.clone(), span.clone()),
        None => fields
            .agent
            .as_ref()
            .or(defaults.agent.as_ref())
            .map(|a| (sub(a.get_ref()), a.span()))
            .unwrap_or_else(|| (super::agents::SWARM_AGENT.into(), span.clone())),
    };
    let cli = keep(
        errors,
        super::agents::pick_agent(source, ctx.agents, id, &agent_name, agent_span),
    )
    .flatten();
    let (model_name, model_span) = fields
        .model
        .as_ref()
        .map(|m| (sub(m.get_ref()), m.span()))
        .or_else(|| cli.and_then(|c| c.model.clone()).map(|m| (m, c_span(cli))))
        .or_else(|| {
            defaults
                .model
                .as_ref()
                .map(|m| (sub(m.get_ref()), m.span()))
        })
        .unwrap_or_else(|| ("default".into(), span.clone()));
    // A variant's own model (`variants = { model = [...] }`).
    let (model_name, model_span) = match combo.get(super::variants::MODEL_OVERRIDE) {
        Some(m) => (m.clone(), span.clone()),
        None => (model_name, model_span),
    };
    let temperature = match combo.get(super::variants::TEMPERATURE_OVERRIDE) {
        Some(t) => t.parse::<f64>().ok().or_else(|| {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{id}`: variant temperature `{t}` is not a number"),
                        Some(span.clone()),
                        "in this task",
                    )
                    .with_help("write temperatures as numbers, e.g. temperature = [0.2, 0.8]"),
            );
            None
        }),
        None => fields.temperature.or(defaults.temperature),
    };
    if let Some(t) = temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("task `{id}` has temperature {t}"),
                    Some(span.clone()),
                    "in this task",
                )
                .with_help("a sampling temperature is between 0 and 2"),
        );
    }
    if let (Some(cli), Some(model)) = (cli, models.get(&model_name)) {
        keep(
            errors,
            super::agents::check_protocol(source, cli, model, id, span.clone()),
        );
    }
    let budget = agent_budget(ctx, fields, (&model_name, model_span), (id, span), errors);
    let network = fields.network.as_ref().or(defaults.network.as_ref());
    if let Some(NetworkField::Mode(NetworkMode::Full)) = network {
        errors.push(source
            .error(
                PlanErrorKind::BadValue,
                format!("task `{id}` is an agent task with network = \"full\""),
                Some(span.clone()),
                "an agent task",
            )
            .with_help("agents reach their model through swarm and have no network of their own; remove `network`, or list the hosts the agent may reach (`network = [\"docs.rs\"]`)"));
    }
    let max_turns = fields
        .max_turns
        .or(defaults.max_turns)
        .unwrap_or(DEFAULT_MAX_TURNS);
    if max_turns == 0 {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("task `{id}` has max_turns = 0"),
                    Some(span.clone()),
                    "in this task",
                )
                .with_help("an agent needs at least one model call; the default is 50"),
        );
    }
    let output_schema = fields
        .output_schema
        .as_ref()
        .or(defaults.output_schema.as_ref())
        .and_then(|s| keep(errors, output_schema(ctx, s, id)));
    let mcp = fields
        .mcp
        .as_ref()
        .or(defaults.mcp.as_ref())
        .and_then(|names| keep(errors, super::mcp::pick_servers(source, ctx.mcp, id, names)))
        .unwrap_or_default();
    Payload::Agent(Box::new(AgentTask {
        output_schema,
        prompt,
        model: model_name,
        max_turns,
        budget,
        repair_rounds: fields
            .repair_rounds
            .or(defaults.repair_rounds)
            .unwrap_or(DEFAULT_REPAIR_ROUNDS),
        temperature,
        cli: cli.map(|c| c.name.clone()),
        mcp,
    }))
}

/// A task's `output_schema`: an inline table, or a file beside the plan
/// (not for a subtask or a fix, which cannot make swarm read a file), a
/// JSON Schema that compiles.
fn output_schema(
    ctx: &Ctx,
    value: &Spanned<toml::Value>,
    id: &str,
) -> Result<serde_json::Value, PlanError> {
    let bad = |message: String, help: &str| {
        ctx.source
            .error(
                PlanErrorKind::BadValue,
                message,
                Some(value.span()),
                "this schema",
            )
            .with_help(help.to_string())
    };
    let schema = match value.get_ref() {
        toml::Value::String(path) if ctx.from_request => {
            return Err(bad(
                format!("task `{id}`: a subtask's `output_schema` cannot name a file (`{path}`)"),
                "give the schema inline, as a table",
            ));
        }
        toml::Value::String(path) => {
            let bytes = ctx.files.read_schema(path).map_err(|e| {
                bad(
                    format!("task `{id}`: output_schema: {e}"),
                    match ctx.files.is_confined() {
                        true => "a plan from outside (a repository's configuration, an MCP client) names a JSON Schema file git tracks at the run's base, relative to the plan; or give it inline, as a table",
                        false => "give a JSON Schema file relative to the plan's directory, or an inline table",
                    },
                )
            })?;
            serde_json::from_slice(&bytes).map_err(|e| {
                bad(
                    format!("task `{id}`: output_schema `{path}` is not JSON: {e}"),
                    "write the schema as JSON",
                )
            })?
        }
        toml::Value::Table(_) => serde_json::to_value(value.get_ref()).map_err(|e| {
            bad(
                format!("task `{id}`: output_schema: {e}"),
                "write the schema as a table",
            )
        })?,
        _ => {
            return Err(bad(
                format!("task `{id}`: output_schema is neither a file nor a table"),
                "e.g. output_schema = \"review.schema.json\", or { type = \"object\", required = [\"verdict\"] }",
            ));
        }
    };
    crate::output_schema::compile(&schema).map_err(|e| {
        bad(
            format!("task `{id}`: output_schema is not a usable JSON Schema: {e}"),
            "see https://json-schema.org; e.g. { type = \"object\", properties = { verdict = { enum = [\"approve\", \"reject\"] } }, required = [\"verdict\"] }",
        )
    })?;
    Ok(schema)
}

/// Where an agent's table stands, to point at when its `model` is wrong.
fn c_span(cli: Option<&super::agents::AgentCli>) -> Range<usize> {
    cli.map_or(0..0, |c| c.span.clone())
}

/// An error for the first key the task sets that belongs to another kind
/// (`args` on a command task, `model` on a WASM task, ...).
fn foreign_keys(
    ctx: &Ctx,
    fields: &TaskFields,
    payload: &Payload,
    id: &str,
    span: &Range<usize>,
    errors: &mut Vec<PlanError>,
) {
    let source = ctx.source;
    let wasm_keys = [
        ("args", fields.args.is_some()),
        ("fuel", fields.fuel.is_some()),
    ];
    let agent_keys = [
        ("agent", fields.agent.is_some()),
        ("mcp", fields.mcp.is_some()),
        ("output_schema", fields.output_schema.is_some()),
        ("model", fields.model.is_some()),
        ("max_turns", fields.max_turns.is_some()),
        ("budget", fields.budget.is_some()),
        ("repair_rounds", fields.repair_rounds.is_some()),
        ("temperature", fields.temperature.is_some()),
    ];
    let first = |keys: &[(&'static str, bool)]| keys.iter().find_map(|(k, set)| set.then_some(*k));
    let (wasm_key, agent_key) = match payload {
        Payload::Command { .. } => (first(&wasm_keys), first(&agent_keys)),
        Payload::Wasm(_) => (None, first(&agent_keys)),
        Payload::Agent(_) => (first(&wasm_keys), None),
    };
    if let Some(key) = wasm_key {
        errors.push(source
            .error(
                PlanErrorKind::BadValue,
                format!("task `{id}` sets `{key}`, which only WASM tasks take"),
                Some(span.clone()),
                "not a `wasm` task",
            )
            .with_help(format!(
                "put the arguments in the `run` command itself, or make it a `wasm` task; remove `{key}`"
            )));
    }
    // A WASM task's attempt is the program alone: a `verify` written on it
    // would never run (one from `[defaults]` is for the other tasks).
    if matches!(payload, Payload::Wasm(_)) && fields.verify.is_some() {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("task `{id}` sets `verify`, which WASM tasks do not run"),
                    Some(span.clone()),
                    "a `wasm` task",
                )
                .with_help(
                    "check the program's result in a command task that depends on it (`deps`), and remove `verify`",
                ),
        );
    }
    if let Some(key) = agent_key {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!("task `{id}` sets `{key}`, which only agent (`prompt`) tasks take"),
                    Some(span.clone()),
                    "not a `prompt` task",
                )
                .with_help(format!(
                    "remove `{key}`, or give the task a `prompt` instead"
                )),
        );
    }
}

/// A `paths` or `creates` entry as swarm keeps it: no `./` in front, no `/`
/// at the end, no empty or `.` components. An absolute path stays
/// absolute (and is refused by the caller).
pub(crate) fn clean_path(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let joined = parts.join("/");
    if p.starts_with('/') && !joined.is_empty() {
        format!("/{joined}")
    } else {
        joined
    }
}
