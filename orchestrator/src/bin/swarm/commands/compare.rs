//! `swarm compare RUN TASK [--diff A B]`: an experiment's variants side by
//! side (the ranking the run recorded, or, while it runs, what is known so
//! far), and the diff between two variants' results.

use std::io::Write as _;
use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::report::{CompareError, Experiment};
use swarm_orchestrator::{escape, view};
use swarm_protocol::RunReport;

use crate::common::{load_report, open_repo};
use crate::failure::Failure;

/// `swarm compare`'s command line.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The run (see `.swarm/runs/`).
    run: String,
    /// The experiment (the task with `variants`).
    task: String,
    /// Print the diff from variant A's result to variant B's (their
    /// numbers, `2`, ids, `speedup@2`, or values, `n=3`).
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    diff: Option<Vec<String>>,
}

/// `swarm compare RUN TASK [--diff A B]`.
pub(crate) fn cmd_compare(cwd: &Path, args: CompareArgs) -> Result<i32, Failure> {
    let (repo, run, report) = open(cwd, &args.run)?;
    let found = Experiment::find(&report, &run, &args.task).map_err(invalid)?;
    if let Some([a, b]) = args.diff.as_deref() {
        let from = found.commit(a).map_err(invalid)?;
        let to = found.commit(b).map_err(invalid)?;
        let patch = repo
            .patch(from, to)
            .map_err(|e| Failure::Internal(anyhow!("failed to {e}")))?;
        let mut out = std::io::stdout().lock();
        // The files are the tasks' own: on a terminal, their control
        // characters are shown escaped.
        use std::io::IsTerminal as _;
        let written = if std::io::stdout().is_terminal() {
            out.write_all(escape::text(&String::from_utf8_lossy(&patch)).as_bytes())
        } else {
            out.write_all(&patch)
        };
        written.map_err(|e| Failure::Internal(e.into()))?;
        return Ok(swarm_orchestrator::exit::SUCCESS);
    }
    print!("{}", view::compare::ranking(&report, &found));
    Ok(swarm_orchestrator::exit::SUCCESS)
}

/// `swarm compare RUN TASK` as text: the ranking of an experiment (what
/// `swarm mcp` answers with).
pub(crate) fn compare_text(cwd: &Path, run: &str, task: &str) -> Result<String, Failure> {
    let (_, run, report) = open(cwd, run)?;
    let found = Experiment::find(&report, &run, task).map_err(invalid)?;
    Ok(view::compare::ranking(&report, &found))
}

/// The repository, and run `run`'s name and report.
fn open(cwd: &Path, run: &str) -> Result<(Repo, String, RunReport), Failure> {
    let repo = open_repo(cwd)?;
    let (run, report) = load_report(&repo, Some(run))?;
    Ok((repo, run, report))
}

fn invalid(e: CompareError) -> Failure {
    match e.help() {
        help if help.is_empty() => Failure::Invalid(anyhow!("{e}")),
        help => Failure::Invalid(anyhow!("{e}\nhelp: {help}")),
    }
}
