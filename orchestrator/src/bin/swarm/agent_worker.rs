//! The CLI's part of agent tasks: reading API keys from the environment
//! (the only place swarm does), setting up the run's model gateway, and the
//! hidden `swarm __agent` command that is the agent worker itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::collections::BTreeSet;
use swarm_orchestrator::gateway::{Gateway, Secret};

use swarm_orchestrator::plan::{Budget, ModelConfig, Plan, PlanErrorKind, Source};

use crate::Failure;

/// The variable through which `swarm __agent` learns its channel's fd.
const CHANNEL_VAR: &str = swarm_protocol::agent::CHANNEL_FD_VAR;

/// The gateway for a plan's agent tasks (`None` without any), with the key
/// of every model they use read from its `api_key_env`.
pub fn gateway(plan: &Plan) -> Result<Option<Arc<Gateway>>, Failure> {
    let used = used_models(plan);
    // A task may ask for agent subtasks on any of the plan's models, so
    // a plan that declares models and allows subtasks has a gateway even
    // if none of its own tasks is an agent (the keys of models no task
    // uses are read if set: a child on one without gets a clear error).
    let spawnable = plan.subtask_limits.max_depth > 0 && !plan.models.is_empty();
    if used.is_empty() && !spawnable {
        return Ok(None);
    }
    let optional: BTreeSet<&str> = match spawnable {
        true => plan.models.keys().map(String::as_str).collect(),
        false => BTreeSet::new(),
    };
    let gateway = gateway_with(
        &plan.models,
        &used,
        &optional,
        &plan.source,
        plan.budget,
        "swarm run",
    )?;
    Ok(Some(gateway))
}

/// A gateway for `models`, with the key of each model in `used` read from
/// its `api_key_env` (a model of `source`, for the error when it is unset);
/// `command` is what the help tells the user to run once it is set.
pub fn gateway_for(
    models: &BTreeMap<String, ModelConfig>,
    used: &BTreeSet<&str>,
    source: &Source,
    budget: Budget,
    command: &str,
) -> Result<Arc<Gateway>, Failure> {
    gateway_with(models, used, &BTreeSet::new(), source, budget, command)
}

/// [`gateway_for`], with the keys of the `optional` models read too when
/// their variables are set (models a subtask may ask for).
fn gateway_with(
    models: &BTreeMap<String, ModelConfig>,
    used: &BTreeSet<&str>,
    optional: &BTreeSet<&str>,
    source: &Source,
    budget: Budget,
    command: &str,
) -> Result<Arc<Gateway>, Failure> {
    let mut keys = BTreeMap::new();
    for &name in optional.difference(used) {
        let var = models.get(name).and_then(|m| m.api_key_env.as_ref());
        if let Some(key) = var
            .and_then(|var| std::env::var(var).ok())
            .filter(|k| !k.trim().is_empty())
        {
            keys.insert(name.to_string(), Secret::new(key.trim()));
        }
    }
    for &name in used {
        let Some(model) = models.get(name) else {
            continue;
        };
        let Some(var) = &model.api_key_env else {
            continue;
        };
        match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => {
                keys.insert(name.to_string(), Secret::new(key.trim()));
            }
            _ => {
                let error = source
                    .error(
                        PlanErrorKind::BadValue,
                        format!(
                            "model `{name}` reads its API key from ${var}, which is not set"
                        ),
                        Some(model.span.clone()),
                        "this model",
                    )
                    .with_help(format!(
                        "export {var}=... before `{command}`, or name another variable with api_key_env (\"\" for endpoints without a key, such as a local Ollama)"
                    ));
                return Err(Failure::Plan(Box::new(error)));
            }
        }
    }
    if !keys.is_empty()
        && let Err(e) = swarm_sandbox::process::hide_secrets()
    {
        eprintln!(
            "warning: cannot hide swarm's memory from other processes ({e}); API keys may be readable by unconfined workers"
        );
    }
    let gateway = Gateway::new(models, &keys, budget).map_err(|e| {
        Failure::Internal(anyhow::anyhow!("start the model gateway: failed to {e}"))
    })?;
    Ok(Arc::new(gateway))
}

/// `swarm __agent`: the agent worker, started by `swarm run` in a task's
/// worktree with its channel to the coordinator open at `$SWARM_GATEWAY_FD`.
pub fn agent_main() -> i32 {
    let fd = std::env::var(CHANNEL_VAR)
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    let Some(fd) = fd else {
        eprintln!(
            "swarm __agent is started by `swarm run` for agent tasks; it is not for direct use"
        );
        return swarm_orchestrator::exit::INVALID_INPUT;
    };
    let stream = match swarm_sandbox::process::adopt_fd(fd) {
        Ok(owned) => std::os::unix::net::UnixStream::from(owned),
        Err(e) => {
            eprintln!("swarm agent: failed to use the channel at fd {fd}: {e}");
            return 1;
        }
    };
    let root = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("swarm agent: failed to find the worktree: {e}");
            return 1;
        }
    };
    let mut out = std::io::stdout().lock();
    swarm_worker::agent::run(stream, &root, &mut out).code()
}

/// The gateway of agent tasks on a cluster node: every model the plan's
/// task uses is reached through the coordinator's gateway at
/// `access.url` (`<url>/models/<name>`, the provider's own wire protocol),
/// authenticated with the run's token instead of a provider key, which
/// never leaves the coordinator.
pub fn remote_gateway(
    plan: &Plan,
    access: &swarm_orchestrator::run::slurm::record::GatewayAccess,
) -> Result<Option<Arc<Gateway>>, Failure> {
    let used = used_models(plan);
    if used.is_empty() {
        return Ok(None);
    }
    let mut models = BTreeMap::new();
    let mut keys = BTreeMap::new();
    for &name in &used {
        let Some(model) = plan.models.get(name) else {
            continue;
        };
        let mut model = model.clone();
        model.base_url = format!("{}/models/{name}", access.url.trim_end_matches('/'));
        models.insert(name.to_string(), model);
        keys.insert(name.to_string(), Secret::new(access.token.as_str()));
    }
    let gateway = Gateway::new(&models, &keys, plan.budget).map_err(|e| {
        Failure::Internal(anyhow::anyhow!("start the model gateway: failed to {e}"))
    })?;
    Ok(Some(Arc::new(gateway)))
}

/// The models the plan's agent tasks use, by name.
fn used_models(plan: &Plan) -> BTreeSet<&str> {
    let mut used: BTreeSet<&str> = plan
        .tasks
        .iter()
        .filter_map(|t| t.agent())
        .map(|a| a.model.as_str())
        .collect();
    // The replanner is a model call of the coordinator's.
    if plan.replan.rounds > 0 {
        used.insert(plan.replan.model.as_str());
    }
    used
}
