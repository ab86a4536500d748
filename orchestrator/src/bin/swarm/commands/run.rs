//! `swarm run`: a plan (or a goal planned first) run, every task in its
//! own worktree, the results merged into `swarm/<run>`; a plan kept by
//! `swarm mcp` is read again under its origin's rules.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use swarm_orchestrator::plan::{self, Plan};
use swarm_orchestrator::{assemble, escape, exit};

use crate::common::{canonical_root, check_name, open_repo};
use crate::drive::{Drive, Mode, drive};
use crate::failure::Failure;

#[derive(Debug, clap::Args)]
// One of the two, said as such when neither is given (the usage line shows
// `[PLAN]`, so "<PLAN> is required" read as a contradiction).
#[command(group(clap::ArgGroup::new("what").required(true).args(["plan", "goal"])))]
pub struct RunArgs {
    /// The plan file (or --goal).
    #[arg(conflicts_with = "goal")]
    pub plan: Option<PathBuf>,
    /// Plan this goal first (as `swarm plan` does), then run that plan: it
    /// is printed first and kept in .swarm/plans/<run>/.
    #[arg(long, value_name = "GOAL")]
    pub goal: Option<String>,
    /// With --goal: print the plan and stop before running it.
    #[arg(long, requires = "goal")]
    pub dry_run: bool,
    #[command(flatten)]
    pub planner: crate::planning::PlannerArgs,
    /// Name of the run (default: the plan's name, with -2, -3... if taken).
    #[arg(long)]
    pub name: Option<String>,
    /// Start from this revision instead of the plan's `base`.
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Make task worktrees under DIR (outside the repository) instead of
    /// the plan's `worktrees` or ~/.cache/swarm/worktrees.
    #[arg(long, value_name = "DIR")]
    pub worktrees: Option<PathBuf>,
    /// Run only these tasks of the plan, and every task they depend on
    /// (`--only a b` or `--only a,b`).
    #[arg(long, value_name = "ID", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,
    /// For `swarm mcp`: the plan came from an untrusted origin (`mcp`). It
    /// is held here, in the process that runs it, to what that origin may
    /// set, and must be the copy `swarm mcp` kept of it.
    #[arg(long, hide = true, value_name = "ORIGIN", conflicts_with = "goal")]
    pub origin: Option<String>,
    /// With --origin: the directory inside the repository the plan's file
    /// names are relative to.
    #[arg(
        long,
        hide = true,
        value_name = "DIR",
        requires = "origin",
        default_value = ""
    )]
    pub files_dir: String,
    #[command(flatten)]
    pub drive: Drive,
}

pub(crate) fn run_plan(cwd: &Path, mut args: RunArgs) -> Result<i32, Failure> {
    if let Some(name) = &args.name {
        check_name(name)?;
    }
    // The plan `--goal` planned, as the planner checked it (of its
    // configuration's origin).
    let mut planned_plan = None;
    let plan_file = match (&args.plan, &args.goal) {
        (Some(plan), _) => plan.clone(),
        (None, Some(goal)) => {
            let planned = crate::planning::plan_goal(
                cwd,
                goal,
                args.name.as_deref(),
                args.base.as_deref(),
                &args.planner,
                &args.drive.tape.settings(cwd),
            )?;
            // The plan first, where the run's events are not.
            if args.drive.outputs.events.is_some() {
                eprint!("{}", escape::text(&planned.text));
            } else {
                print!("{}", escape::text(&planned.text));
            }
            let shown = planned
                .path
                .strip_prefix(cwd)
                .unwrap_or(&planned.path)
                .to_path_buf();
            if args.dry_run {
                eprintln!(
                    "dry run: nothing ran. Edit the plan if you like, then: swarm run {}",
                    shown.display()
                );
                return Ok(exit::SUCCESS);
            }
            args.name = Some(planned.name);
            planned_plan = Some(planned.plan);
            shown
        }
        (None, None) => {
            return Err(Failure::Invalid(anyhow!(
                "run: give a plan file or --goal\nhelp: swarm run plans/quickstart.toml, or swarm run --goal \"...\""
            )));
        }
    };
    let mut plan = match (&args.origin, planned_plan) {
        (Some(origin), _) => untrusted_plan(
            cwd,
            &plan_file,
            origin,
            &args.files_dir,
            args.base.as_deref(),
        )?,
        (None, Some(mut planned)) => {
            planned.source.name = plan_file.display().to_string();
            planned
        }
        (None, None) => crate::common::load_plan_at(cwd, &plan_file, args.base.as_deref())?,
    };
    let repo = open_repo(cwd)?;
    // Tasks of many entries are split as the history balances them, before
    // `--only` (which may name a shard); a resumed run's were split as its
    // journal says (`saved_plan`).
    if plan::shards::unsplit(&plan).next().is_some() {
        let host = crate::host::current();
        let slots = assemble::concurrency(&plan, &host, args.drive.concurrency)?;
        let history = swarm_orchestrator::durations::History::load(&repo.workdir);
        let groups = history.shard_groups(&plan, slots);
        plan::shards::split(&mut plan, &groups).map_err(|e| Failure::Internal(anyhow!(e)))?;
    }
    if !args.only.is_empty() {
        plan.select(&args.only)
            .map_err(|e| Failure::Invalid(anyhow!("{e}")))?;
    }
    if let Some(base) = args.base {
        plan.base = base;
        plan.base_from = plan::BaseFrom::CommandLine;
    }
    let plan_path = plan_file.display().to_string();
    drive(
        repo,
        plan,
        &plan_path,
        args.drive,
        Mode::Start {
            name: args.name,
            worktrees: args.worktrees.map(|dir| cwd.join(dir)),
            adopt: None,
        },
    )
}

/// The plan at `path` that `swarm mcp` kept for a client (`origin`),
/// checked again here, in the process that runs it; its files read at
/// `base` when the person gave one (`--base`).
fn untrusted_plan(
    cwd: &Path,
    path: &Path,
    origin: &str,
    dir: &str,
    base: Option<&str>,
) -> Result<Plan, Failure> {
    let origin = plan::origin::Origin::from_name(origin)
        .filter(|o| o.is_untrusted())
        .ok_or_else(|| Failure::Invalid(anyhow!("run: --origin takes `mcp`, not `{origin}`")))?;
    let repo = open_repo(cwd)?;
    let root = canonical_root(&repo)?;
    let received = swarm_orchestrator::received::Received::stored(&root, &cwd.join(path), dir)
        .map_err(|e| Failure::Invalid(anyhow!("run the plan from {}: {e}", origin.as_str())))?;
    received
        .plan(&root, &cwd.join(path), origin, base)
        .map_err(Failure::Plan)
}
