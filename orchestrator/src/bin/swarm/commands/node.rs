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
use swarm_orchestrator::run::remote::node::{self, JobPlanError};
use tokio::sync::watch;

use crate::Failure;

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
    let mut plan = node::job_plan(&jobs).map_err(|e| match e {
        JobPlanError::Plan(error) => Failure::Plan(error),
        JobPlanError::Spec(e) => Failure::Invalid(e.into()),
        JobPlanError::Split(e) => Failure::Invalid(e.into()),
    })?;
    let overrides = assemble::Overrides::for_node(&job, &dir);
    assemble::apply(&mut plan, &overrides);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
        .map_err(Failure::Internal)?;
    let host = crate::host::current();
    let assembly = runtime.block_on(assemble::assemble(
        &plan,
        &job.plan_path,
        &host,
        &overrides,
        assemble::Models::Remote(job.gateway.clone()),
    ))?;
    crate::output::print_notices(&assembly.notices);
    let options = assembly.options;
    let result = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(None);
        tokio::spawn(crate::drive::forward_signals(stop_tx));
        node::run_pack(&jobs, plan, options, &dir, &node, stop_rx).await
    });
    // Everything worth keeping was pushed; the node's disk is not ours.
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("swarm: failed to remove {}: {e}", dir.display());
    }
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
