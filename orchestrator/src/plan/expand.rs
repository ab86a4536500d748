//! From the plan's text to checked tasks, in named steps (see [`plan`]):
//! parse, settings (`settings.rs`), defaults, matrix (`matrix.rs`), resolve
//! each task by its kind (`task.rs`), validate what needs every task
//! (`deps.rs`). Errors are collected, not returned at the first.

// A PlanError is built at most once per invocation, on the way out; its size
// costs nothing that boxing every internal return would save.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::rc::Rc;
use toml::Spanned;

use super::ctx::{Ctx, keep};
use super::error::{PlanError, PlanErrorKind, Source};
use super::keys::toml_error;
use super::matrix::Values;
use super::models::{self, Budget};
use super::schema::{PlanFile, TaskFields};
use super::{
    Experiment, Plan, Role, Task, Variant, deps, is_valid_task_id, matrix, settings, task, variants,
};

/// The most tasks one plan may expand to (matrices and variants counted):
/// what keeps checking a plan bounded in time and memory.
pub const MAX_PLAN_TASKS: usize = 100_000;

/// Reads the plan `source` (from `path`) in steps: [`parse`], settings
/// (`settings::check`), [`defaults`], [`matrix`], [`resolve`] (each task by
/// its kind) and [`validate`]. Each step adds its errors to one list and
/// goes on with what is valid, so that one `swarm validate` reports every
/// mistake (in file order, by [`PlanError::bundle`]), not the first. Only a
/// file that is not a plan at all stops at once.
pub(super) fn plan(
    path: &Path,
    source: Source,
    origin: super::origin::Origin,
    files: super::origin::files::Files,
) -> Result<Plan, PlanError> {
    let file = parse(&source)?;
    let mut errors = Vec::new();
    let settings = settings::check(path, &source, &file, &mut errors);
    let executor = super::executor::check(&source, &file.executor, &mut errors);
    let verify = super::run_verify::check(&source, &file.swarm, &mut errors);
    let setup = super::setup::check_setup(&source, file.setup.as_ref(), &mut errors);
    let cleanup = super::setup::check_cleanup(&source, file.cleanup.as_ref(), &mut errors);
    let quarantine = super::quarantine::check(&source, &file.quarantine, &mut errors);
    let models = settings.models;
    let agents = super::agents::resolve_agents(&source, &file.agents, &mut errors);
    let mcp = super::mcp::resolve_servers(&source, &file.mcp, &mut errors);
    defaults(&source, &file.defaults, &mut errors);
    // An untrusted plan reads its files at one commit, pinned here: the
    // run's when the person chose it, else the plan's base, which must be
    // one the person committed on a branch or tag.
    let plan_base = file.swarm.base.as_ref();
    let files = match files.pinned(plan_base.map(|b| b.get_ref().as_str())) {
        Ok(pinned) => pinned,
        Err(why) => {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("the plan cannot be read at its base: {why}"),
                        plan_base.map(|b| b.span()),
                        "this base",
                    )
                    .with_help("start from a branch, a tag or a commit on one"),
            );
            files
        }
    };
    // The commit a `glob` lists: the run's (`--base`, a resumed run's
    // commit) when the caller knows it, else the plan's base.
    let base = files
        .base()
        .or(plan_base.map(|b| b.get_ref().as_str()))
        .unwrap_or("HEAD")
        .to_string();
    let sources = matrix::Sources {
        files: &files,
        base: &base,
    };
    let expanded = matrix(&source, &file, Some(sources), &mut errors);
    let ctx = Ctx {
        source: &source,
        files: &files,
        on_conflict: file.swarm.on_conflict,
        models: &models,
        broken_models: file
            .models
            .keys()
            .filter(|name| !models.contains_key(*name))
            .cloned()
            .collect(),
        agents: &agents,
        mcp: &mcp,
        from_request: false,
        defaults: &file.defaults,
    };
    let templates = expanded.templates;
    let listed = expanded.listed;
    let (mut tasks, written) = resolve(&ctx, expanded.items, &mut errors);
    let budget = validate(&ctx, &file, &mut tasks, written, &templates, &mut errors);
    // What an untrusted plan's tasks leave in a kept worktree, a later run
    // of the person's would build on: theirs are never kept warm.
    if origin.is_untrusted() {
        for task in &mut tasks {
            task.warm = Some(false);
        }
    }
    // What subtasks and fixes may name: the tables, and the built-ins in use.
    let agents: BTreeMap<String, super::agents::AgentCli> = agents
        .into_iter()
        .filter(|(name, agent)| {
            agent.span != (0..0)
                || tasks.iter().any(|t| {
                    t.agent()
                        .and_then(|a| a.cli.as_deref())
                        .is_some_and(|c| c == name)
                })
        })
        .collect();

    if let Some(error) = PlanError::bundle(errors) {
        return Err(error);
    }
    Ok(Plan {
        path: path.to_path_buf(),
        source,
        origin,
        files,
        name: settings.name,
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
        predict_conflicts: file.swarm.predict_conflicts.unwrap_or(true),
        history: file.swarm.history.unwrap_or_default(),
        keep_runs: file.swarm.keep_runs.unwrap_or(super::DEFAULT_KEEP_RUNS),
        read_paths: settings.read_paths,
        toolchains: settings.toolchains,
        worktrees: settings.worktrees,
        caches: file.swarm.caches.unwrap_or(true),
        models,
        agents,
        mcp,
        budget,
        min_free_space: settings.min_free_space,
        executor,
        subtask_limits: super::limits::Limits::of(&file.swarm, tasks.len()),
        replan: super::Replan {
            rounds: file.swarm.replan.as_ref().map_or(0, |n| *n.get_ref()),
            model: file
                .swarm
                .replan_model
                .as_ref()
                .map_or_else(|| "default".to_string(), |m| m.get_ref().clone()),
        },
        verify,
        setup,
        cleanup,
        quarantine: quarantine.into(),
        listed,
        tasks,
    })
}

/// Reads a planner configuration `source` (from `path`): a plan without
/// tasks, whose settings, defaults and models a planned plan starts from.
pub(super) fn template(path: &Path, source: Source) -> Result<super::Template, PlanError> {
    let file = parse(&source)?;
    let mut errors = Vec::new();
    if let Some(first) = file.task.first() {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    "a planner configuration holds settings, defaults and models, not tasks",
                    Some(first.span()),
                    "a task",
                )
                .with_help("remove the [[task]] tables: the planner writes the tasks"),
        );
    }
    let settings = settings::check(path, &source, &file, &mut errors);
    defaults(&source, &file.defaults, &mut errors);
    let budget = file.swarm.budget.and_then(|b| {
        keep(
            &mut errors,
            models::check_budget(&source, b.into(), 0..0, "the run", None),
        )
    });
    if let Some(error) = PlanError::bundle(errors) {
        return Err(error);
    }
    Ok(super::Template {
        origin: super::origin::Origin::Person,
        files: super::origin::files::Files::beside(path),
        models: settings.models,
        budget: budget.unwrap_or_default(),
        base: file.swarm.base.as_ref().map(|b| b.get_ref().clone()),
        named: file.swarm.name.is_some(),
        verify: file.defaults.verify.clone(),
        repair_rounds: file
            .swarm
            .plan_repair_rounds
            .unwrap_or(super::DEFAULT_PLAN_REPAIR_ROUNDS),
        context_tokens: file
            .swarm
            .plan_context_tokens
            .unwrap_or(super::DEFAULT_PLAN_CONTEXT_TOKENS),
        source,
    })
}

/// Step 1, parse: the TOML into the schema's types. A syntax error, an
/// unknown key or a value of the wrong type is the one error reported:
/// nothing after it could be trusted.
pub(super) fn parse(source: &Source) -> Result<PlanFile, PlanError> {
    toml::from_str(&source.text).map_err(|e| {
        let first = toml_error(source, &e);
        // serde stops at the first mistake: every misspelt key at once.
        let at = |e: &PlanError| e.span.map(|s| s.offset());
        let mut errors: Vec<PlanError> = super::keys::unknown(source)
            .into_iter()
            .chain(super::keys::wrong_values(source))
            .filter(|k| at(k) != at(&first))
            .collect();
        if errors.is_empty() {
            return first;
        }
        errors.push(first);
        errors.sort_by_key(|e| at(e));
        PlanError::bundle(errors).unwrap_or_else(|| toml_error(source, &e))
    })
}

/// Step 3, defaults: `[defaults]` may not hold what is one task's own
/// (`id`, `deps`, `matrix`). Its other values are applied to each task in
/// step 5, where a task's own value wins.
fn defaults(source: &Source, defaults: &TaskFields, errors: &mut Vec<PlanError>) {
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
        ("variants", defaults.variants.as_ref().map(|s| s.span())),
        ("score", defaults.score.as_ref().map(|s| s.span())),
        ("pick", defaults.pick.as_ref().map(|s| s.span())),
        // Its entry globs are one task's entries.
        ("affects", defaults.affects.as_ref().map(|s| s.span())),
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
    if defaults.creates.is_some() {
        // The key has no span of its own (lists of paths are plain strings).
        let at = source
            .text
            .find("[defaults]")
            .and_then(|d| source.text[d..].find("creates").map(|i| d + i));
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    "`creates` cannot have a default",
                    at.map(|i| i..i + "creates".len()),
                    "in [defaults]",
                )
                .with_help("set `creates` on the task that creates those paths"),
        );
    }
}

/// One task of the plan after matrix expansion, its fields not yet
/// resolved.
pub(super) struct Expanded<'a> {
    fields: &'a TaskFields,
    combo: Rc<Values>,
    id: String,
    span: Range<usize>,
    /// The id as written, for a task made by a matrix.
    template: Option<&'a str>,
    role: Role,
    /// A task of many entries, unsplit (`shards`).
    sharding: Option<Box<super::shards::Sharding>>,
}

/// What the matrix step makes of one `[[task]]` table, in the order found:
/// tasks, and the reasons for those it cannot make. Kept in one list so
/// that errors at one place (a matrix task's id) keep the order in which
/// the expansions met them.
pub(super) enum Expansion<'a> {
    Task(Expanded<'a>),
    /// Boxed: an error is large and rare, and every task of the plan is
    /// one of these while it expands.
    Refused(Box<PlanError>),
}

impl Expansion<'_> {
    fn refused(error: PlanError) -> Self {
        Self::Refused(Box::new(error))
    }
}

/// The matrix step's result.
pub(super) struct Expansions<'a> {
    pub items: Vec<Expansion<'a>>,
    /// Unexpanded id of each matrix task -> the ids of its expansions, so
    /// that a dep on the template means all of them.
    pub templates: HashMap<String, Vec<String>>,
    /// Matrix keys whose values came from the repository.
    pub listed: Vec<matrix::Listed>,
}

/// Whether every placeholder of task `id` has a value in every matrix
/// combination (`combos`, `None`: they did not read) crossed with every
/// variant (`variants`, `None`: they did not read); an error added for
/// each one that has none.
fn placeholders_ok(
    source: &Source,
    id: &str,
    fields: &TaskFields,
    combos: Option<&[matrix::Combo]>,
    variants: Option<Option<&variants::Spec>>,
    found: &mut Vec<PlanError>,
) -> bool {
    match (combos, &fields.matrix, variants) {
        (Some(combos), m, Some(v)) if m.is_some() || v.is_some() => {
            // Every placeholder needs a value in every matrix
            // combination crossed with every variant.
            let span = m.as_ref().map_or_else(
                || v.as_ref().map(|v| v.span.clone()).unwrap_or_default(),
                |m| m.span(),
            );
            let crossed: Cow<'_, [matrix::Combo]> = match v {
                None => Cow::Borrowed(combos),
                Some(v) => combos
                    .iter()
                    .flat_map(|c| {
                        v.values.iter().map(|values| {
                            let mut all = Values::clone(&c.values);
                            all.extend(values.clone());
                            matrix::Combo {
                                values: Rc::new(all),
                                span: if m.is_some() {
                                    c.span.clone()
                                } else {
                                    span.clone()
                                },
                            }
                        })
                    })
                    .collect(),
            };
            matrix::check_placeholders(source, id, fields, span, &crossed, found)
        }
        _ => true,
    }
}

/// Task `task_id`'s experiment (made from `combo` of its table `fields`
/// at `span`, `template` its matrix's id if any): its role, and its
/// variants' tasks, one per value of `spec`, each with its own values.
fn experiment<'a>(
    fields: &'a TaskFields,
    task_id: &str,
    combo: &Values,
    span: &Range<usize>,
    template: Option<&'a str>,
    spec: &variants::Spec,
) -> (Role, Vec<Expanded<'a>>) {
    let mut tasks = Vec::new();
    let mut ids = Vec::new();
    for (values, number) in spec.values.iter().zip(1..) {
        let variant = super::variant_id(task_id, number);
        let mut all = Values::clone(combo);
        all.extend(variants::with_overrides(values));
        ids.push(variant.clone());
        let score = spec.score.clone().map(|mut score| {
            score.command = matrix::substitute(&score.command, &all);
            score
        });
        tasks.push(Expanded {
            fields,
            combo: Rc::new(all),
            id: variant,
            span: span.clone(),
            template,
            sharding: None,
            role: Role::Variant(Box::new(Variant {
                of: task_id.to_string(),
                number,
                values: values
                    .iter()
                    .filter(|(k, _)| k.as_str() != variants::NUMBER_KEY)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                score,
            })),
        });
    }
    let role = Role::Experiment(Box::new(Experiment {
        pick: spec.pick,
        variants: ids,
        scored: spec.score.is_some(),
    }));
    (role, tasks)
}

/// The one task a sharded table `fields` (its id `id`) is until the run
/// splits it (`{entries}` stands for itself until then), its id added to
/// those `seen`; or the error of an id seen before.
fn sharded<'a>(
    source: &Source,
    fields: &'a TaskFields,
    id: &Spanned<String>,
    sharding: super::shards::Sharding,
    seen: &mut HashMap<String, usize>,
) -> Result<Expanded<'a>, PlanError> {
    if let Some(first) = seen.get(id.get_ref()) {
        return Err(duplicate(source, id.get_ref(), id.span(), *first, None));
    }
    seen.insert(id.get_ref().clone(), id.span().start);
    let combo: Values = [(
        super::shards::ENTRIES.to_string(),
        format!("{{{}}}", super::shards::ENTRIES),
    )]
    .into_iter()
    .collect();
    Ok(Expanded {
        fields,
        combo: Rc::new(combo),
        id: id.get_ref().clone(),
        span: id.span(),
        template: None,
        role: Role::Plain,
        sharding: Some(Box::new(sharding)),
    })
}

/// A key of sharded tasks on task `id` (`fields`), which has no `shards`.
fn unsharded(source: &Source, fields: &TaskFields, id: &str) -> Option<PlanError> {
    if fields.shards.is_some() {
        return None;
    }
    if let Some(list) = &fields.list_tests {
        return Some(list_tests_unsharded(source, id, list.span()));
    }
    if let Some(affects) = &fields.affects {
        return Some(affected_unsharded(source, id, ("affects", affects.span())));
    }
    let affected = fields.affected.as_ref()?;
    Some(affected_unsharded(
        source,
        id,
        ("affected", affected.span()),
    ))
}

/// What sharded task `fields` (`sharding`) takes beyond its own keys:
/// `[defaults] affected` when it does not say (its `affects` refused
/// without `affected = true`), and its Rust test files' packages, read
/// where its matrix's `glob` is (`sources`).
fn settle(
    source: &Source,
    fields: &TaskFields,
    (defaults, sources): (&TaskFields, Option<matrix::Sources<'_>>),
    sharding: &mut super::shards::Sharding,
) -> Result<(), PlanError> {
    let super::shards::Sharding::Unsplit {
        affected,
        entries,
        packages,
        ..
    } = sharding
    else {
        return Ok(());
    };
    if let Some(sources) = sources {
        *packages = std::sync::Arc::new(sources.files.cargo_packages(sources.base, entries));
    }
    if fields.affected.is_none() {
        *affected = defaults.affected.as_ref().is_some_and(|a| *a.get_ref());
    }
    match (&fields.affects, *affected) {
        (Some(affects), false) => Err(source
            .error(
                PlanErrorKind::BadValue,
                format!(
                    "task `{}` has `affects` but not `affected = true`",
                    fields.id.as_ref().map_or("", |id| id.get_ref().as_str())
                ),
                Some(affects.span()),
                "read only with `affected = true`",
            )
            .with_help(
                "`affects` says what a change to other paths runs when a shard runs only the entries the run's changes could affect: add `affected = true` (or in `[defaults]`), or remove it",
            )),
        _ => Ok(()),
    }
}

/// `affected` or `affects` (`key`, at `at`) on task `id`, which has no
/// `shards`.
fn affected_unsharded(source: &Source, id: &str, (key, at): (&str, Range<usize>)) -> PlanError {
    source
        .error(
            PlanErrorKind::BadValue,
            format!("task `{id}` has `{key}` but not `shards`"),
            Some(at),
            "entries of what",
        )
        .with_help(
            "`affected` runs only the entries of a sharded task that the run's changes could affect: add `shards` (with a one-key matrix of test files), or remove it",
        )
}

/// `list_tests` (at `at`) on task `id`, which has no `shards`.
fn list_tests_unsharded(source: &Source, id: &str, at: Range<usize>) -> PlanError {
    source
        .error(
            PlanErrorKind::BadValue,
            format!("task `{id}` has `list_tests` but not `shards`"),
            Some(at),
            "tests of what",
        )
        .with_help(
            "`list_tests` lists the tests of a sharded task's entries, so a long one is split across shards: add `shards`, or remove it",
        )
}

/// `{variant}` at `at` in the id `id` of a task with variants.
fn variant_in_id(source: &Source, id: &Spanned<String>, at: usize) -> PlanError {
    let start = id.span().start + 1 + at;
    source
        .error(
            PlanErrorKind::BadValue,
            format!("task `{}` has `{{variant}}` in its id", id.get_ref()),
            Some(start..start + "{variant}".len()),
            "in the id",
        )
        .with_help("a variant's id is the task's id and its number (`<id>@2`): remove `{variant}` from `id`")
}

/// The plan passed [`MAX_PLAN_TASKS`] at task `id` (its table at `at`).
fn too_many_tasks(source: &Source, id: &str, at: Range<usize>) -> PlanError {
    source
        .error(
            PlanErrorKind::BadValue,
            format!(
                "the plan has more than {MAX_PLAN_TASKS} tasks once its matrices and variants are expanded (at task `{id}`)"
            ),
            Some(at),
            "the limit is passed here",
        )
        .with_help("split the plan into several runs, or make its matrices smaller")
}

/// The tasks task `task_id` (made from `combo` of its table `fields` at
/// `span`) is: itself, after its variants if it has any.
fn made<'a>(
    fields: &'a TaskFields,
    task_id: String,
    combo: &Rc<Values>,
    span: Range<usize>,
    template: Option<&'a str>,
    variants: Option<&variants::Spec>,
) -> Vec<Expanded<'a>> {
    let mut tasks = Vec::new();
    let role = match variants {
        None => Role::Plain,
        Some(spec) => {
            let (role, variants) = experiment(fields, &task_id, combo, &span, template, spec);
            tasks.extend(variants);
            role
        }
    };
    // The experiment runs nothing; it is checked as its first
    // variant is (its model, its placeholders' values).
    let own = match variants.and_then(|v| v.values.first()) {
        Some(first) => {
            let mut own = Values::clone(combo);
            own.extend(variants::with_overrides(first));
            Rc::new(own)
        }
        None => Rc::clone(combo),
    };
    tasks.push(Expanded {
        fields,
        combo: own,
        id: task_id,
        span,
        template,
        role,
        sharding: None,
    });
    tasks
}

/// What an empty plan is told to add.
const NO_TASKS_HELP: &str =
    "add at least one task:\n\n[[task]]\nid = \"hello\"\nrun = \"echo hello > hello.txt\"";
/// What a task without an id is told.
const NO_ID_HELP: &str = "give every task a unique id, e.g. id = \"build\"";
/// What a task with an invalid id is told.
const ID_HELP: &str =
    "task ids use only lowercase letters, digits, `_` and `-` (at most 100), e.g. \"build-core\"";

/// Whether `task_id` (made from `combo` at `span`) is a valid id that no
/// other combination of its table (`made_by`) made too.
fn valid_id(
    source: &Source,
    task_id: &str,
    span: Range<usize>,
    made_by: &HashMap<String, &Values>,
    combo: &Values,
) -> Result<(), PlanError> {
    if !is_valid_task_id(task_id) {
        let error = source.error(
            PlanErrorKind::BadValue,
            format!("invalid task id `{task_id}`"),
            Some(span),
            "invalid id",
        );
        return Err(error.with_help(ID_HELP));
    }
    match made_by
        .get(task_id)
        .and_then(|other| slug_collision(source, task_id, span, other, combo))
    {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Step 4, matrix: every `[[task]]` table expanded to its tasks (one for a
/// table without a matrix), ids made, checked and unique.
pub(super) fn matrix<'a>(
    source: &Source,
    file: &'a PlanFile,
    sources: Option<matrix::Sources<'_>>,
    errors: &mut Vec<PlanError>,
) -> Expansions<'a> {
    if file.task.is_empty() {
        errors.push(
            PlanError::plain(
                PlanErrorKind::Empty,
                format!("{}: the plan has no tasks", source.name),
            )
            .with_help(NO_TASKS_HELP),
        );
    }
    let mut out = Vec::new();
    let mut templates: HashMap<String, Vec<String>> = HashMap::new();
    let mut listed = Vec::new();
    // Every task id, valid or not, -> where it was first defined: duplicate
    // errors point there.
    let mut seen: HashMap<String, usize> = HashMap::new();
    // Tasks made so far, against [`MAX_PLAN_TASKS`].
    let mut total: usize = 0;
    for spanned in &file.task {
        let fields = spanned.get_ref();
        let Some(id) = &fields.id else {
            let error = source.error(
                PlanErrorKind::BadValue,
                "a task has no `id`",
                Some(spanned.span()),
                "this task",
            );
            out.push(Expansion::refused(error.with_help(NO_ID_HELP)));
            continue;
        };
        let mut found = Vec::new();
        let combos = matrix::combinations(source, fields, sources, &mut listed, &mut found);
        let variants = variants::read(source, fields, &file.defaults, id.get_ref(), &mut found);
        if let Some(error) = unsharded(source, fields, id.get_ref()) {
            out.push(Expansion::refused(error));
            continue;
        }
        // A task of many entries is one task until the run splits it.
        if let Some(written) = &fields.shards {
            let sharding = super::shards::read(
                source,
                id,
                fields,
                written,
                combos.as_deref(),
                !matches!(variants, Ok(None)),
                &mut found,
            );
            out.extend(found.into_iter().map(Expansion::refused));
            let Some(mut sharding) = sharding else {
                continue;
            };
            let settled = settle(source, fields, (&file.defaults, sources), &mut sharding);
            if let Err(error) = settled {
                out.push(Expansion::refused(error));
                continue;
            }
            match sharded(source, fields, id, sharding, &mut seen) {
                Ok(task) => {
                    total = total.saturating_add(1);
                    out.push(Expansion::Task(task));
                }
                Err(duplicate) => out.push(Expansion::refused(duplicate)),
            }
            continue;
        }
        let placeholders_ok = placeholders_ok(
            source,
            id.get_ref(),
            fields,
            combos.as_deref(),
            variants.as_ref().ok().map(Option::as_ref),
            &mut found,
        );
        if variants.is_ok()
            && let Some(at) = id.get_ref().find(&format!("{{{}", variants::NUMBER_KEY))
        {
            found.push(variant_in_id(source, id, at));
        }
        out.extend(found.into_iter().map(Expansion::refused));
        let (Some(combos), Ok(variants)) = (combos.filter(|_| placeholders_ok), variants) else {
            continue;
        };
        let per_combo = 1 + variants.as_ref().map_or(0, |v| v.values.len());
        total = total.saturating_add(combos.len().saturating_mul(per_combo));
        if total > MAX_PLAN_TASKS {
            out.push(Expansion::refused(too_many_tasks(
                source,
                id.get_ref(),
                spanned.span(),
            )));
            break;
        }
        // Id -> the combination that made it, for slug collisions.
        let mut made_by: HashMap<String, &Values> = HashMap::new();
        let from_matrix = fields.matrix.is_some();
        // A matrix that leaves a key out of its id repeats ids in every
        // expansion: one error says it.
        let mut duplicate_reported = false;
        let mut expanded = Vec::new();
        for combo in combos.iter().map(|c| &c.values) {
            let task_id = matrix::substitute_id(id.get_ref(), combo);
            let span = id.span();
            if let Err(error) = valid_id(source, &task_id, span.clone(), &made_by, combo) {
                out.push(Expansion::refused(error));
                continue;
            }
            if let Some(first) = seen.get(&task_id) {
                if !duplicate_reported {
                    duplicate_reported = from_matrix;
                    out.push(Expansion::refused(duplicate(
                        source,
                        &task_id,
                        span,
                        *first,
                        from_matrix.then(|| id.get_ref().as_str()),
                    )));
                }
                continue;
            }
            seen.insert(task_id.clone(), span.start);
            made_by.insert(task_id.clone(), combo);
            expanded.push(task_id.clone());
            let template = from_matrix.then(|| id.get_ref().as_str());
            out.extend(
                made(fields, task_id, combo, span, template, variants.as_ref())
                    .into_iter()
                    .map(Expansion::Task),
            );
        }
        if from_matrix {
            templates.insert(id.get_ref().clone(), expanded);
        }
    }
    Expansions {
        items: out,
        templates,
        listed,
    }
}

/// The error for a task id defined twice; `template` is the id as written
/// of a matrix task that expands to it.
fn duplicate(
    source: &Source,
    id: &str,
    span: Range<usize>,
    first: usize,
    template: Option<&str>,
) -> PlanError {
    let (line, col) = source.line_col(first);
    let message = match template {
        Some(template) => {
            format!("the matrix of `{template}` expands to the duplicate id `{id}`")
        }
        None => format!("duplicate task id `{id}`"),
    };
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
            if template.is_some() {
                " (put every matrix key in the id, e.g. \"test-{os}-{version}\")"
            } else {
                ""
            }
        ))
}

/// Step 5, resolve: each task's defaults applied, its payload made by its
/// kind's own step (`task::resolve`) and its fields checked. Returns the
/// tasks without errors, and the deps as written of every task with a
/// valid id (those with errors included: a dep on one is not reported
/// again as unknown).
pub(super) fn resolve(
    ctx: &Ctx,
    expansions: Vec<Expansion>,
    errors: &mut Vec<PlanError>,
) -> (Vec<Task>, Vec<(String, deps::Written)>) {
    // Room for all at once: grown a push at a time, the largest part of
    // a plan's memory was allocated twice over.
    let mut tasks = Vec::with_capacity(expansions.len());
    let mut written = Vec::with_capacity(expansions.len());
    for expansion in expansions {
        let e = match expansion {
            Expansion::Task(e) => e,
            Expansion::Refused(error) => {
                errors.push(*error);
                continue;
            }
        };
        let mut task_errors = Vec::new();
        let task = task::resolve(
            ctx,
            e.fields,
            &e.combo,
            &e.id,
            e.span.clone(),
            &mut task_errors,
        );
        // One mistake in a matrix task is made by each of its expansions
        // (and each variant): name it once, by the id as written.
        let named = match &e.role {
            Role::Variant(v) => Some(v.of.as_str()),
            Role::Plain | Role::Experiment(_) => None,
        };
        errors.extend(task_errors.into_iter().map(|mut error| {
            if let Some(of) = named {
                error.message = error
                    .message
                    .replace(&format!("`{}`", e.id), &format!("`{of}`"));
            }
            if let Some(template) = e.template {
                let own = named.unwrap_or(&e.id);
                error.message = error
                    .message
                    .replace(&format!("`{own}`"), &format!("`{template}`"));
            }
            error
        }));
        // An experiment waits for its variants, which wait for its deps.
        let deps = match &e.role {
            Role::Experiment(x) => x
                .variants
                .iter()
                .map(|v| (v.clone(), e.span.clone()))
                .collect(),
            Role::Plain | Role::Variant(_) => e
                .fields
                .deps
                .iter()
                .flatten()
                .map(|d| (matrix::substitute_id(d.get_ref(), &e.combo), d.span()))
                .collect(),
        };
        written.push((e.id, deps));
        tasks.extend(task.map(|mut t| {
            t.role = e.role;
            t.sharding = e.sharding;
            t
        }));
    }
    (tasks, written)
}

/// Step 6, validate: what needs every task at once. Dependencies resolved
/// (templates, globs), unknown ones and cycles reported (`deps.rs`); the
/// run-wide budget checked against the models in use. Returns the budget.
fn validate(
    ctx: &Ctx,
    file: &PlanFile,
    tasks: &mut [Task],
    written: Vec<(String, deps::Written)>,
    templates: &HashMap<String, Vec<String>>,
    errors: &mut Vec<PlanError>,
) -> Budget {
    deps::resolve(ctx.source, tasks, written, templates, errors);
    answers_named(ctx, tasks, errors);
    let Some(b) = file.swarm.budget else {
        return Budget::default();
    };
    // A run-wide USD limit needs the price of every model in use.
    let unpriced = tasks
        .iter()
        .filter_map(Task::agent)
        .filter_map(|a| ctx.models.get(&a.model))
        .find(|m| m.price.is_none());
    let span = tasks.first().map(|t| t.span.clone()).unwrap_or(0..0);
    keep(
        errors,
        models::check_budget(ctx.source, b.into(), span, "the run", unpriced),
    )
    .unwrap_or_default()
}

/// Every `{deps.<id>.output...}` in a command names one of the task's
/// dependencies that answers with JSON (an agent task with an
/// `output_schema`).
fn answers_named(ctx: &Ctx, tasks: &[Task], errors: &mut Vec<PlanError>) {
    for task in tasks {
        let super::Payload::Command { run } = &task.payload else {
            continue;
        };
        // A placeholder where no value can be put safely (the fill is
        // refused there at run time too).
        for (r, context) in crate::output_schema::unfillable(run) {
            let written = &run[r.range.clone()];
            errors.push(
                ctx.source
                    .error(
                        PlanErrorKind::BadValue,
                        format!(
                            "task `{}`: `{written}` in `run` stands {}, where a dependency's answer cannot be put safely",
                            task.id,
                            context.describe()
                        ),
                        Some(task.span.clone()),
                        "this task",
                    )
                    .with_help(
                        "take the quotes away: the answer is filled in as one word whatever it holds (inside double quotes works too)",
                    ),
            );
        }
        for r in crate::output_schema::references(run) {
            let written = &run[r.range.clone()];
            let why = if !task.deps.contains(&r.dep) {
                Some(format!("`{}` is not one of its `deps`", r.dep))
            } else {
                let dep = tasks.iter().find(|t| t.id == r.dep);
                match dep.and_then(Task::agent) {
                    Some(agent) if agent.output_schema.is_some() => None,
                    _ => Some(format!(
                        "`{}` gives no answer: only an agent task with an `output_schema` does",
                        r.dep
                    )),
                }
            };
            if let Some(why) = why {
                errors.push(
                    ctx.source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("task `{}`: `{written}` in `run`: {why}", task.id),
                            Some(task.span.clone()),
                            "this task",
                        )
                        .with_help(format!(
                            "add `{}` to `deps`, and give it `output_schema`; its answer is then here, shell-quoted",
                            r.dep
                        )),
                );
            }
        }
    }
}

/// The error for two combinations of one matrix that make the same id
/// because two different values of a key have the same slug.
fn slug_collision(
    source: &Source,
    id: &str,
    span: Range<usize>,
    first: &Values,
    second: &Values,
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
