//! Step 2 of [`super::expand::plan`], settings: the `[swarm]` table (run
//! name, concurrency, free space, toolchains and the paths it names) and
//! the `[models.NAME]` tables, checked.

// As in expand.rs: a PlanError is built once per mistake, on the way out.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::Path;

use super::ctx::keep;
use super::error::{PlanError, PlanErrorKind, Source};
use super::models::{self, ModelConfig};
use super::schema::PlanFile;
use super::{ReadPath, Toolchains, is_valid_run_name};

/// The checked values of `[swarm]` that need more than a copy.
pub(super) struct Settings {
    pub name: String,
    pub min_free_space: u64,
    pub toolchains: Toolchains,
    pub read_paths: Vec<ReadPath>,
    pub worktrees: Option<ReadPath>,
    /// The valid `[models.NAME]` tables, by name.
    pub models: BTreeMap<String, ModelConfig>,
}

/// Checks `[swarm]` and `[models]`, each problem added to `errors`; what is invalid gets a
/// harmless value (the plan is refused anyway).
pub(super) fn check(
    path: &Path,
    source: &Source,
    file: &PlanFile,
    errors: &mut Vec<PlanError>,
) -> Settings {
    let name = keep(errors, run_name(path, source, file)).unwrap_or_default();
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
    for (key, value) in [
        ("max_children", &file.swarm.max_children),
        ("max_tasks", &file.swarm.max_tasks),
    ] {
        if let Some(v) = value
            && *v.get_ref() == 0
        {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("{key} must be at least 1"),
                        Some(v.span()),
                        "zero",
                    )
                    .with_help("to turn subtasks off, set `max_depth = 0`"),
            );
        }
    }
    if let Some(n) = file.swarm.replan.as_ref().filter(|n| *n.get_ref() > 0) {
        let model = file
            .swarm
            .replan_model
            .as_ref()
            .map_or("default", |m| m.get_ref().as_str());
        if !file.models.contains_key(model) {
            let span = file
                .swarm
                .replan_model
                .as_ref()
                .map_or_else(|| n.span(), |m| m.span());
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("`replan` asks model `{model}`, which [models] does not define"),
                        Some(span),
                        "no such model",
                    )
                    .with_help(format!(
                        "add a [models.{model}] table (provider, model, api_key_env), or set `replan_model` to one that exists"
                    )),
            );
        }
    }
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

    let toolchains = keep(errors, toolchains(source, file.swarm.toolchains.as_ref()))
        .unwrap_or(Toolchains::None);
    // Relative or home-less entries are plan errors whatever the machine;
    // whether a path exists is the CLI's check (it knows the home).
    let mut read_paths = Vec::new();
    for p in file.swarm.read_paths.iter().flatten() {
        match absolute(
            source,
            p,
            "`read_paths` entry",
            "write an absolute path, or one that starts with ~/ (your home)",
        ) {
            Ok(path) => read_paths.push(path),
            Err(e) => errors.push(e),
        }
    }
    let worktrees = file.swarm.worktrees.as_ref().and_then(|p| {
        absolute(
            source,
            p,
            "`worktrees` directory",
            "write an absolute path outside the repository, or one that starts with ~/",
        )
        .map_err(|e| errors.push(e))
        .ok()
    });

    let models = models::resolve_models(source, &file.models, errors);
    Settings {
        models,
        name,
        min_free_space,
        toolchains,
        read_paths,
        worktrees,
    }
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

/// A plan path that must be absolute or start with `~/`, or the plan error
/// naming it as `what` (relative paths would depend on where swarm runs).
fn absolute(
    source: &Source,
    p: &toml::Spanned<String>,
    what: &str,
    help: &str,
) -> Result<ReadPath, PlanError> {
    let raw = p.get_ref();
    if raw.starts_with("~/") || Path::new(raw).is_absolute() {
        return Ok(ReadPath {
            raw: raw.clone(),
            span: p.span(),
        });
    }
    Err(source
        .error(
            PlanErrorKind::BadValue,
            format!("{what} `{raw}` is relative"),
            Some(p.span()),
            "not an absolute path",
        )
        .with_help(help))
}

/// `[swarm] toolchains`: `true`, `false` or a list of known names.
fn toolchains(
    source: &Source,
    field: Option<&toml::Spanned<super::schema::ToolchainsField>>,
) -> Result<Toolchains, PlanError> {
    use super::schema::ToolchainsField;
    let Some(field) = field else {
        return Ok(Toolchains::All);
    };
    match field.get_ref() {
        ToolchainsField::All(true) => Ok(Toolchains::All),
        ToolchainsField::All(false) => Ok(Toolchains::None),
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
            Ok(Toolchains::Only(names.clone()))
        }
    }
}
