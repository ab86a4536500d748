//! `swarm validate`: a plan checked as a run would check it, and what it
//! would do said (its shape, grants, weakenings and where its keys go);
//! `swarm mcp` says the same to a client.

use std::path::{Path, PathBuf};

use swarm_orchestrator::exit;
use swarm_orchestrator::plan::{self, Plan};

use crate::common::{base_failure, load_plan, open_repo};
use crate::failure::Failure;

/// `swarm validate`'s command line.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The plan file.
    plan: PathBuf,
}

/// `swarm validate PLAN`.
pub(crate) fn cmd_validate(cwd: &Path, args: ValidateArgs) -> Result<i32, Failure> {
    validate(cwd, &args.plan)
}

pub(crate) fn validate(cwd: &Path, path: &Path) -> Result<i32, Failure> {
    let plan = load_plan(cwd, path)?;
    let mut stdout = std::io::stdout().lock();
    let warnings = validation(cwd, &plan, &path.display().to_string(), &mut stdout)?;
    drop(stdout);
    for group in &warnings {
        crate::output::print_plan_warnings(group);
    }
    Ok(exit::SUCCESS)
}

/// What `swarm validate` says of the checked `plan` (shown as `shown`),
/// into `out`: its shape, its grants, its weakenings and where its keys
/// go; its warnings are returned, each check's apart. For the command
/// line and `swarm mcp`.
pub(crate) fn validation(
    cwd: &Path,
    plan: &Plan,
    shown: &str,
    out: &mut dyn std::io::Write,
) -> Result<Vec<Vec<plan::PlanError>>, Failure> {
    let host = crate::host::current();
    // Every check a run makes before it starts anything, by the same code.
    let checked = swarm_orchestrator::assemble::check(
        plan,
        &host,
        &swarm_orchestrator::assemble::Overrides::default(),
        &swarm_orchestrator::assemble::Models::Own,
    )?;
    let repo = open_repo(cwd)?;
    let base = repo
        .resolve(&plan.base)
        .map_err(|e| base_failure(plan, e.into()))?;
    let mut warnings = vec![crate::drive::meaning(&repo, base, plan)?];
    let home =
        swarm_orchestrator::worktree_home::WorktreeHome::path_for(&checked.worktree_root, &repo);
    let includes = crate::drive::included_line(&repo);
    let _ = write!(
        out,
        "{}",
        swarm_orchestrator::view::validation::describe(
            plan,
            shown,
            &checked,
            base,
            &repo.workdir,
            &home,
            includes.as_deref(),
        )
    );
    warnings.push(checked.grants.warnings);
    // What the plan grants beyond swarm's defaults, and where each key
    // goes: the user named the plan, so it is theirs, but said plainly.
    let weakened = swarm_orchestrator::trust::weakenings(&plan.source);
    for line in crate::config_origin::weakening_lines(&plan.source, &weakened) {
        let _ = writeln!(out, "weakens           {line}");
    }
    for line in crate::config_origin::key_lines(&plan.models) {
        let _ = writeln!(out, "model key         {line}");
    }
    Ok(warnings)
}
