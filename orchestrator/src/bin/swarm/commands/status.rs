//! `swarm status`: a run's state as the journal says, for people (its
//! summary table, a running task's time so far) or as JSON.

use std::path::Path;

use swarm_orchestrator::{exit, report, run};

use crate::common::{load_run, open_repo};
use crate::failure::Failure;

/// `swarm status`'s command line.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The run name (see `.swarm/runs/`).
    run: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `swarm status [RUN] [--json]`.
pub(crate) fn status(cwd: &Path, args: StatusArgs) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let (name, events, mut report) = load_run(&repo, args.run.as_deref())?;
    if args.json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Failure::Internal(e.into()))?;
        println!("{}", swarm_orchestrator::escape::json(&text));
    } else {
        let driven = run::is_driven(&report::run_dir(&repo.workdir, &name));
        // A running task's time so far: its ended attempts' and the one
        // going on since its start (the report counts ended ones only).
        if driven {
            report::add_running_time(&mut report, &events, std::time::SystemTime::now());
        }
        print!(
            "{}",
            swarm_orchestrator::view::summary::status_summary(&report, &repo.workdir, driven)
        );
    }
    Ok(exit::SUCCESS)
}
