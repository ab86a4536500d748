//! `swarm graph`: a plan's task graph as Graphviz DOT or Mermaid, with
//! each task's state when a run is named.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use swarm_orchestrator::exit;
use swarm_orchestrator::graph::TaskGraph;

use crate::common::{check_name, load_plan, load_report, open_repo};
use crate::failure::Failure;

/// `swarm graph`'s command line.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The plan file (or use --run).
    #[arg(required_unless_present = "run")]
    plan: Option<PathBuf>,
    /// Colour the graph of this run by task status.
    #[arg(long, conflicts_with = "plan")]
    run: Option<String>,
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
}

/// `swarm graph [PLAN | --run RUN] [--format F]`.
pub(crate) fn cmd_graph(cwd: &Path, args: GraphArgs) -> Result<i32, Failure> {
    graph(cwd, args.plan.as_deref(), args.run.as_deref(), args.format)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

pub(crate) fn graph(
    cwd: &Path,
    plan_path: Option<&Path>,
    run: Option<&str>,
    format: GraphFormat,
) -> Result<i32, Failure> {
    let (plan, status) = match (plan_path, run) {
        (Some(path), _) => (load_plan(cwd, path)?, None),
        (None, run) => {
            if let Some(run) = run {
                check_name(run)?;
            }
            let repo = open_repo(cwd)?;
            let (_, report) = load_report(&repo, run)?;
            let mut plan = load_plan(cwd, Path::new(&report.plan))?;
            // Subtasks the run spawned, drawn below their parents (they
            // start from the parent's result).
            for t in &report.tasks {
                let Some(parent) = &t.parent else { continue };
                let Some(template) = plan.tasks.iter().find(|p| &p.id == parent).cloned() else {
                    continue;
                };
                let mut deps = t.deps.to_vec();
                deps.push(parent.clone());
                plan.tasks.push(swarm_orchestrator::plan::Task {
                    id: t.id.clone(),
                    deps,
                    ..template
                });
            }
            let status: Vec<_> = plan
                .tasks
                .iter()
                .map(|t| {
                    report
                        .tasks
                        .iter()
                        .find(|r| r.id == t.id)
                        .map_or(swarm_protocol::TaskStatus::Pending, |r| r.status)
                })
                .collect();
            (plan, Some(status))
        }
    };
    let graph = TaskGraph::new(&plan.tasks);
    let text = match format {
        GraphFormat::Dot => graph.to_dot(&plan.name, &plan.tasks, status.as_deref()),
        GraphFormat::Mermaid => graph.to_mermaid(&plan.tasks, status.as_deref()),
    };
    print!("{text}");
    Ok(exit::SUCCESS)
}
