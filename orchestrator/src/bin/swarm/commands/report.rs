//! `swarm report --html`: a run as one self-contained HTML page.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use swarm_orchestrator::{exit, report};

use crate::common::{load_run, open_repo};
use crate::failure::Failure;

/// `swarm report`'s command line.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run name (see `.swarm/runs/`).
    run: Option<String>,
    /// Where to write the page.
    #[arg(long, value_name = "FILE")]
    html: PathBuf,
}

/// `swarm report [RUN] --html FILE`: the run as one HTML page.
pub(crate) fn html_report(cwd: &Path, args: ReportArgs) -> Result<i32, Failure> {
    let file = &args.html;
    let repo = open_repo(cwd)?;
    let (name, events, report) = load_run(&repo, args.run.as_deref())?;
    let flushes = swarm_orchestrator::flushes::read(&report::run_dir(&repo.workdir, &name));
    let page = swarm_orchestrator::export::html(&report, &events, &flushes);
    std::fs::write(cwd.join(file), page)
        .map_err(|e| Failure::Internal(anyhow!("write the HTML report {}: {e}", file.display())))?;
    Ok(exit::SUCCESS)
}
