//! `swarm resolve RUN TASK`: after the user merged a conflicted task into
//! the integration branch by hand, records it as merged and says how its
//! blocked dependents run (`swarm resume`).

use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::{escape, exit, run, view};

use crate::failure::Failure;

/// `swarm resolve`'s command line.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// The run.
    run: String,
    /// The conflicted task.
    task: String,
}

/// `swarm resolve RUN TASK`.
pub(crate) fn cmd_resolve(cwd: &Path, args: ResolveArgs) -> Result<i32, Failure> {
    let (run_name, task) = (args.run.as_str(), args.task.as_str());
    run::check_run_name(run_name).map_err(|e| Failure::Invalid(anyhow!("{e}")))?;
    let repo = crate::common::open_repo(cwd)?;
    let state = run::open_run_state(&repo, run_name)
        .map_err(|e| Failure::Invalid(anyhow!("{e}")))?
        .filter(|s| {
            s.runs()
                .is_ok_and(|runs| runs.iter().any(|r| r == run_name))
        })
        .ok_or_else(|| {
            Failure::Invalid(anyhow!(
                "resolve run `{run_name}`: no such run in {}\nhelp: `swarm runs` lists them",
                repo.workdir.display()
            ))
        })?;
    match swarm_orchestrator::resolve::resolve(&repo, &state, run_name, task) {
        Ok(resolved) => {
            print!("{}", view::resolve::resolved(run_name, task, &resolved));
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            let help = e.help().map(|h| format!("\nhelp: {h}")).unwrap_or_default();
            let text = escape::text(&format!("{e}{help}")).into_owned();
            if e.is_invalid_input() {
                Err(Failure::Invalid(anyhow!(text)))
            } else {
                Err(Failure::Internal(anyhow!(text)))
            }
        }
    }
}
