//! `swarm validate`: a plan checked as a run would check it, and what it
//! would do said (its shape, grants, weakenings and where its keys go);
//! `swarm mcp` says the same to a client.

use std::path::{Path, PathBuf};

use swarm_orchestrator::exit;
use swarm_orchestrator::graph::TaskGraph;
use swarm_orchestrator::plan::{self, Plan};

use crate::Failure;
use crate::common::{base_failure, load_plan, open_repo};

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
    let graph = TaskGraph::new(&plan.tasks);
    let roots = swarm_orchestrator::ids::TaskIndex::all(graph.len())
        .filter(|&i| graph.deps(i).next().is_none())
        .count();
    let longest = swarm_orchestrator::ids::TaskIndex::all(graph.len())
        .map(|i| graph.critical_path(i))
        .max()
        .unwrap_or(0);
    // Variants are counted by their experiment.
    let variants = plan.tasks.iter().filter(|t| t.variant().is_some()).count();
    let experiments = plan
        .tasks
        .iter()
        .filter(|t| t.experiment().is_some())
        .count();
    let tasks = match experiments {
        0 => format!("{} tasks", plan.tasks.len()),
        n => {
            let tasks = plan.tasks.len() - variants;
            format!(
                "{tasks} task{} ({n} experiment{} of {variants} variants)",
                if tasks == 1 { "" } else { "s" },
                if n == 1 { "" } else { "s" }
            )
        }
    };
    let _ = writeln!(
        out,
        "{}: ok: {tasks}, {} without dependencies, longest chain {}, base {} ({})",
        shown,
        roots,
        longest,
        plan.base,
        &base.to_string()[..12]
    );
    for listed in &plan.listed {
        let more = if listed.count > listed.first.len() {
            ", …"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "matrix            {} `{}`: {} value{} from the {} ({}{more})",
            listed.task,
            listed.key,
            listed.count,
            if listed.count == 1 { "" } else { "s" },
            listed.from,
            swarm_orchestrator::escape::line(&listed.first.join(", ")),
        );
    }
    // How tasks of many entries would be split now, by what the
    // repository's earlier runs took.
    if swarm_orchestrator::plan::shards::unsplit(plan)
        .next()
        .is_some()
    {
        let slots = checked.concurrency;
        let history = swarm_orchestrator::durations::History::load(&repo.workdir);
        for (task, groups) in history.shard_groups(plan, slots) {
            let entries: usize = groups.iter().map(Vec::len).sum();
            let known = groups
                .iter()
                .flatten()
                .filter(|e| history.entry_estimate(&task, e).is_some())
                .count();
            let expected: Vec<String> = groups
                .iter()
                .map(|g| {
                    let ms: Option<u64> = g.iter().map(|e| history.entry_estimate(&task, e)).sum();
                    match ms {
                        Some(ms) => format!("{} ({:.1} s)", g.len(), ms as f64 / 1000.0),
                        None => g.len().to_string(),
                    }
                })
                .collect();
            let _ = writeln!(
                out,
                "shards            {task}: {entries} entries in {} tasks ({task}-1 ...): {} ({})",
                groups.len(),
                expected.join(" + "),
                match known {
                    0 => "no durations known yet: grouped by count".to_string(),
                    n if n == entries => "balanced by the durations of earlier runs".to_string(),
                    n => format!("{n} of {entries} durations known, the rest counted as typical"),
                },
            );
        }
    }
    let granted = checked.grants;
    warnings.push(granted.warnings);
    let home =
        swarm_orchestrator::worktree_home::WorktreeHome::path_for(&checked.worktree_root, &repo);
    swarm_orchestrator::view::summary::write_grants(
        out,
        &granted.read_paths,
        &granted.toolchains,
        plan.caches.then_some(home.as_path()),
    );
    let _ = writeln!(out, "worktrees         {}", home.display());
    if let Some(line) = crate::drive::included_line(&repo) {
        let _ = writeln!(out, "includes          {line}");
    }
    if let Some(setup) = &plan.setup {
        let key = match setup.key.is_empty() {
            true => "no key: runs in every fresh worktree".to_string(),
            false => format!("kept by the content of {}", setup.key.join(", ")),
        };
        let _ = writeln!(
            out,
            "setup             {} ({key}; network {:?})",
            swarm_orchestrator::escape::line(&setup.run),
            setup.network
        );
    }
    let worktree_tasks = plan
        .tasks
        .iter()
        .filter(|t| t.isolation == swarm_protocol::Isolation::Worktree)
        .count();
    let warm = plan
        .tasks
        .iter()
        .filter(|t| t.warm_by_default(worktree_tasks))
        .count();
    if warm > 0 {
        let _ = writeln!(
            out,
            "warm              {}: kept between runs ({}/.warm; `warm = false` opts out)",
            match warm {
                1 => "1 task's worktree".to_string(),
                n => format!("{n} tasks' worktrees"),
            },
            home.display()
        );
    }
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
