//! Which executor runs a prepared plan's attempts: the plan's choice
//! (this machine, or a Slurm cluster), built from the prepared run. Above
//! both executors and below the dispatcher, which asks for one at a run's
//! start and at a resume.

use crate::worktree_home::WorktreeHome;

use super::error::RunError;
use super::prepared::Prepared;
use super::{executor, land, local, slurm, spawn};

/// The executor `prepared`'s plan chose for its tasks (under `swarm land
/// --adopt`, wrapped to adopt another run's results).
pub(super) fn executor_for(
    prepared: &Prepared,
    tasks: crate::run::table::TaskTable,
    spawner: std::sync::Arc<spawn::Spawner>,
    home: &WorktreeHome,
    resumed: bool,
) -> Result<Box<dyn executor::Executor + 'static>, RunError> {
    let inner = plain_executor(prepared, tasks.clone(), spawner, home, resumed)?;
    Ok(match &prepared.options.adopt {
        Some(adopted) => Box::new(land::AdoptingExecutor::new(
            inner,
            prepared.repo.clone(),
            prepared.run.clone(),
            tasks,
            adopted,
        )),
        None => inner,
    })
}

/// The plan's own executor.
fn plain_executor(
    prepared: &Prepared,
    tasks: crate::run::table::TaskTable,
    spawner: std::sync::Arc<spawn::Spawner>,
    home: &WorktreeHome,
    resumed: bool,
) -> Result<Box<dyn executor::Executor + 'static>, RunError> {
    Ok(match &prepared.plan.executor {
        crate::plan::Executor::Local => {
            let mut local = local::LocalExecutor::new(
                prepared,
                tasks,
                spawner,
                home,
                (resumed, Some(prepared.base_commit)),
            )?;
            if !resumed {
                local.warm_readonly(prepared.base_commit);
            }
            Box::new(local)
        }
        crate::plan::Executor::Slurm(config) => {
            Box::new(slurm::SlurmExecutor::new(prepared, tasks, config)?)
        }
    })
}
