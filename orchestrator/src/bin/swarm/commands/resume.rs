//! `swarm resume`: a run whose coordinator died or was cancelled, driven
//! again from where it was (finished tasks stay finished).

use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::report;

use crate::common::{check_name, latest, open_repo, open_state};
use crate::drive::{Drive, Mode, drive, saved_plan};
use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The run (see `.swarm/runs/`; default: the latest).
    pub run: Option<String>,
    /// Run again, in the same run, the tasks that failed or timed out (and
    /// those they blocked), from the integration branch as it is now:
    /// after you fixed the cause. Merged tasks are not run again.
    #[arg(long)]
    pub retry_failed: bool,
    /// With --retry-failed: retry only these failed tasks (`a b` or `a,b`).
    #[arg(
        long,
        value_name = "ID",
        num_args = 1..,
        value_delimiter = ',',
        requires = "retry_failed"
    )]
    pub only: Vec<String>,
    #[command(flatten)]
    pub drive: Drive,
}

/// `swarm resume`: the run's saved plan, driven again from where it was.
pub(crate) fn resume_run(cwd: &Path, args: ResumeArgs) -> Result<i32, Failure> {
    if let Some(run) = &args.run {
        check_name(run)?;
    }
    let repo = open_repo(cwd)?;
    let latest_run = latest(&repo)?;
    let Some(run) = args.run.clone().or(latest_run) else {
        return Err(Failure::Invalid(anyhow!(
            "resume: no run found in {}; start one with `swarm run PLAN`",
            repo.workdir.display()
        )));
    };
    let state = open_state(&repo, &run)?;
    if !report::run_dir(&repo.workdir, &run).is_dir() {
        return Err(Failure::Invalid(anyhow!(
            "resume run `{run}`: there is no such run in {} (`swarm runs` lists them)",
            repo.workdir.display()
        )));
    }
    if let Some(state) = &state
        && swarm_orchestrator::run::never_started(state, &run)
    {
        return Err(Failure::Invalid(anyhow!(
            "resume run `{run}`: it was stopped before its start was recorded, so none of its tasks ran; `swarm clean {run}` removes what it left, or run the plan again with `swarm run` (which reuses the name)"
        )));
    }
    let (plan, original) = saved_plan(cwd, &repo, &run, "resume")?;
    let plan_path = original.display().to_string();
    let retry_failed = args.retry_failed.then_some(args.only);
    drive(
        repo,
        plan,
        &plan_path,
        args.drive,
        Mode::Resume { run, retry_failed },
    )
}
