//! `swarm __node`: a Slurm job's worker. Its spec comes on stdin (from the
//! job's script): a job array's `NodeBatch`, of which this job runs the
//! element `SLURM_ARRAY_TASK_ID` names, one attempt or several one after
//! another (or one `NodeJob`, as jobs submitted before arrays carried); it
//! sets up what the attempts need on this node (sandbox launcher, WASM
//! engine, the coordinator's gateway) once, runs them through
//! `run::remote::node`, and pushes the results back. SIGTERM (`scancel`)
//! stops the running task gracefully and the rest before they start;
//! their work is still pushed.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use swarm_orchestrator::assemble;
use swarm_orchestrator::run::RunError;
use swarm_orchestrator::run::remote::node::{self, JobPlanError};
use swarm_orchestrator::run::remote::{ExitRecord, NodeJob};
use tokio::sync::watch;

use crate::failure::Failure;

pub(crate) fn node_main() -> Result<i32, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("read the job's spec from stdin")
        .map_err(Failure::Internal)?;
    let jobs = node::read_spec(text.trim(), std::env::var("SLURM_ARRAY_TASK_ID"))
        .map_err(|e| Failure::Invalid(e.into()))?;
    let Some(job) = jobs.first().cloned() else {
        return Err(Failure::Invalid(node::SpecError::Empty.into()));
    };
    let node = std::env::var("SLURMD_NODENAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(crate::host::hostname)
        .unwrap_or_else(|| "unknown".into());
    let tmpdir = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let dir = node::job_dir(&job, tmpdir.as_deref());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
        .map_err(Failure::Internal)?;
    // Kept setups are shared by the node's jobs; without a safe place
    // for them, each job sets up its own.
    let setup_cache = match node::setup_cache(&job, tmpdir.as_deref(), &node) {
        Ok(dir) => Some(dir),
        Err(e) => {
            eprintln!(
                "swarm: warning: failed to use the node's setup cache: {e}; each job sets up its own"
            );
            None
        }
    };
    let result = runtime.block_on(run_in(&jobs, &job, &dir, &node, setup_cache));
    // Everything worth keeping was pushed; the node's disk is not ours.
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("swarm: failed to remove {}: {e}", dir.display());
    }
    let result = result?;
    match result {
        Ok(records) => {
            for record in records {
                eprintln!(
                    "swarm: {}.{} on {node}: {:?}{}",
                    record.task,
                    record.attempt,
                    record.status,
                    record.reason.map(|r| format!(": {r}")).unwrap_or_default()
                );
            }
            Ok(swarm_orchestrator::exit::SUCCESS)
        }
        Err(e) => Err(Failure::Internal(anyhow!(
            "run job {}.{} on {node}: failed to {e}",
            job.task,
            job.attempt
        ))),
    }
}

/// The attempts of `jobs` (the first `job`) run in `dir` on `node`: the
/// bases cloned first, so that the plan's `glob` matrices are read in the
/// clone; then what the attempts need set up as `swarm run` does, and
/// the attempts run and pushed. Errors before the attempts run are the
/// command's; after, each attempt's record says what went wrong.
async fn run_in(
    jobs: &[NodeJob],
    job: &NodeJob,
    dir: &std::path::Path,
    node: &str,
    setup_cache: Option<PathBuf>,
) -> Result<Result<Vec<ExitRecord>, RunError>, Failure> {
    let repo = node::clone_bases(jobs, dir)
        .await
        .map_err(|e| Failure::Internal(anyhow!("fetch the job's bases: failed to {e}")))?;
    let mut plan = node::job_plan(jobs, &repo.workdir).map_err(|e| match e {
        JobPlanError::Plan(error) => Failure::Plan(error),
        JobPlanError::Spec(e) => Failure::Invalid(e.into()),
        JobPlanError::Split(e) => Failure::Invalid(e.into()),
    })?;
    let overrides = assemble::Overrides::for_node(job, dir, setup_cache);
    assemble::apply(&mut plan, &overrides);
    let host = crate::host::current();
    let assembly = assemble::assemble(
        &plan,
        &job.plan_path,
        &host,
        &overrides,
        assemble::Models::Remote(job.gateway.clone()),
    )
    .await?;
    crate::output::print_notices(&assembly.notices);
    let (stop_tx, stop_rx) = watch::channel(None);
    tokio::spawn(crate::drive::forward_signals(stop_tx));
    Ok(node::run_pack(jobs, repo, plan, assembly.options, node, stop_rx).await)
}
