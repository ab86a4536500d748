//! `swarm plan GOAL`: a plan file written from a goal, with its
//! repository map and the planner's transcript beside it (the planning
//! itself is `crate::planning`'s, shared with `swarm run --goal`).

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use swarm_orchestrator::{exit, layout};

use crate::common::open_repo;
use crate::failure::Failure;
use crate::planning::{PlannerArgs, ask, prepare, summary, write};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// What to do, in words (quote it).
    pub goal: String,
    /// Where to write the plan; its repository map goes beside it
    /// (`plan.map.md`), and the planner's conversation
    /// (`plan.transcript.jsonl`).
    #[arg(short, long, value_name = "FILE", default_value = "plan.toml")]
    pub output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Plan from this revision (default: the configuration's base, else HEAD).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    #[command(flatten)]
    pub planner: PlannerArgs,
    #[command(flatten)]
    pub tape: crate::common::TapeArgs,
}

/// `swarm plan GOAL`.
pub(crate) fn plan_cmd(cwd: &Path, args: PlanArgs) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let output = cwd.join(&args.output);
    if output.symlink_metadata().is_ok() && !args.force {
        return Err(Failure::Invalid(anyhow!(
            "write the plan to {}: it exists\nhelp: pass --force to replace it, or -o another file",
            args.output.display()
        )));
    }
    let planning = prepare(&repo, cwd, &args.planner, args.base.as_deref(), &args.goal)?;
    let stem = output
        .file_stem()
        .map_or_else(|| "plan".into(), |s| s.to_string_lossy().into_owned());
    let dir = output.parent().unwrap_or(cwd).to_path_buf();
    let map_path = dir.join(format!("{stem}.{}", layout::MAP_SUFFIX));
    let transcript = dir.join(format!("{stem}.transcript.jsonl"));
    let rejected = dir.join(format!("{stem}.rejected.toml"));
    // A fresh conversation: the gateway appends.
    let _ = std::fs::remove_file(&transcript);
    write(&map_path, &planning.map.text)?;
    let tape = args.tape.settings(cwd);
    let planned = ask(
        &repo,
        &planning,
        &output,
        &map_path,
        &transcript,
        &rejected,
        &tape,
    )?;
    write(&output, &planned.text)?;
    crate::output::print_plan_warnings(&planned.warnings);
    summary(&planned, &args.output, &map_path, &planning);
    Ok(exit::SUCCESS)
}
