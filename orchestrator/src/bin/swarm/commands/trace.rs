//! `swarm trace`: a run's timeline as Chrome trace events (JSON), for
//! Perfetto or chrome://tracing.

use std::path::Path;

use swarm_orchestrator::{exit, report};

use crate::common::{load_run, open_repo};
use crate::failure::Failure;

/// `swarm trace`'s command line.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// The run name (see `.swarm/runs/`).
    run: Option<String>,
}

/// `swarm trace [RUN]`: the run as Chrome trace events, on stdout.
pub(crate) fn trace(cwd: &Path, args: TraceArgs) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let (name, events, _) = load_run(&repo, args.run.as_deref())?;
    let flushes = swarm_orchestrator::flushes::read(&report::run_dir(&repo.workdir, &name));
    let text = swarm_orchestrator::timeline::Timeline::of(&events)
        .with_flushes(&flushes)
        .chrome_trace(&name);
    println!("{}", swarm_orchestrator::escape::json(&text));
    Ok(exit::SUCCESS)
}
