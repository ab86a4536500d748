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
use swarm_orchestrator::plan::{self, SandboxMode};
use swarm_orchestrator::run::remote::{NodeBatch, NodeJob, node};
use tokio::sync::watch;

use crate::Failure;

pub(crate) fn node_main() -> Result<i32, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("read the job's spec from stdin")
        .map_err(Failure::Internal)?;
    let jobs = read_spec(text.trim()).map_err(Failure::Invalid)?;
    let Some(job) = jobs.first().cloned() else {
        return Err(Failure::Invalid(anyhow!("the job's spec names no attempt")));
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

    let mut plan = plan::parse(std::path::Path::new(&job.plan_path), job.plan_text.clone())
        .map_err(Failure::Plan)?;
    plan.tasks.retain(|t| jobs.iter().any(|j| j.task == t.id));
    if let Some(missing) = jobs
        .iter()
        .find(|j| !plan.tasks.iter().any(|t| t.id == j.task))
    {
        return Err(Failure::Invalid(anyhow!(
            "run job {}.{}: the plan has no task `{}`",
            missing.task,
            missing.attempt,
            missing.task
        )));
    }
    let overrides = assemble::Overrides {
        sandbox: Some(match job.sandbox {
            true => SandboxMode::Landlock,
            false => SandboxMode::None,
        }),
        // The node runs its attempt with the local executor itself
        // (`node::run_job`); the plan's executor stays as the coordinator
        // read it.
        executor: None,
        concurrency: Some(1),
        worktrees: Some(dir.join("worktrees")),
        gateway_listen: None,
        name: Some(job.run.clone()),
        grace: std::time::Duration::from_millis(job.grace_ms),
        retry_failed: None,
        // A cluster run is refused --record and --replay before any job
        // starts (`SetupError::TapeOnCluster`).
        tape: Default::default(),
        adopt: None,
    };
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

/// This job's attempts: its element of the array's batch, or a lone job's.
fn read_spec(text: &str) -> anyhow::Result<Vec<NodeJob>> {
    const WHAT: &str = "read the job's spec (swarm __node is started by a swarm job's script)";
    if let Ok(job) = serde_json::from_str::<NodeJob>(text) {
        return Ok(vec![job]);
    }
    let batch: NodeBatch = serde_json::from_str(text).context(WHAT)?;
    let index = std::env::var("SLURM_ARRAY_TASK_ID").context(
        "read SLURM_ARRAY_TASK_ID: the spec is a job array's, and this job is no array element",
    )?;
    let index: usize = index
        .trim()
        .parse()
        .with_context(|| format!("read SLURM_ARRAY_TASK_ID `{index}`"))?;
    batch.jobs(index).ok_or_else(|| {
        anyhow!(
            "the job array's spec has {} element(s), none at index {index}",
            batch.packs.len().max(batch.elements.len())
        )
    })
}
