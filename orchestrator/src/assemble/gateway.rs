//! The model gateway of a run: every model its agent tasks (and its
//! replanner, and the subtasks it may spawn) use, with each key read from
//! the host's `api_key_env` variable. Keys stay in this process; workers
//! reach models through it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{HostEnv, Notice, SetupError};
use crate::gateway::tape::TapeSettings;
use crate::gateway::{Gateway, Secret};
use crate::plan::{Budget, ModelConfig, Plan, PlanErrorKind, Source};
use crate::run::remote::GatewayAccess;

/// The gateway for a plan's agent tasks (`None` without any), with the key
/// of every model they use read from its `api_key_env`.
pub fn for_run(
    plan: &Plan,
    host: &HostEnv,
    tape: &TapeSettings,
    notices: &mut Vec<Notice>,
) -> Result<Option<Arc<Gateway>>, SetupError> {
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
    let keys = Keys {
        used: &used,
        optional: &optional,
        command: "swarm run",
    };
    let gateway = with_keys(
        &plan.models,
        &keys,
        &plan.source,
        plan.budget,
        host,
        tape,
        notices,
    )?;
    Ok(Some(gateway))
}

/// The gateway of `swarm plan` (and the planning step of `swarm run
/// --goal`): the planner configuration's models, with the key of each
/// model in `used` read from its `api_key_env` (an error at the model's
/// place in the configuration when it is unset).
pub fn for_planner(
    template: &crate::plan::Template,
    used: &BTreeSet<&str>,
    host: &HostEnv,
    tape: &TapeSettings,
    notices: &mut Vec<Notice>,
) -> Result<Arc<Gateway>, SetupError> {
    let keys = Keys {
        used,
        optional: &BTreeSet::new(),
        command: "swarm plan",
    };
    with_keys(
        &template.models,
        &keys,
        &template.source,
        template.budget,
        host,
        tape,
        notices,
    )
}

/// Which models' keys to read.
struct Keys<'a> {
    /// Needed: unset is an error.
    used: &'a BTreeSet<&'a str>,
    /// Read when set (models a subtask may ask for).
    optional: &'a BTreeSet<&'a str>,
    /// What the help tells the user to run once a key is set.
    command: &'a str,
}

fn with_keys(
    models: &BTreeMap<String, ModelConfig>,
    wanted: &Keys<'_>,
    source: &Source,
    budget: Budget,
    host: &HostEnv,
    tape: &TapeSettings,
    notices: &mut Vec<Notice>,
) -> Result<Arc<Gateway>, SetupError> {
    let mut keys = BTreeMap::new();
    // A replayed run asks no provider: no key is read at all, so none can
    // be sent (a miss fails before any would be).
    let none = BTreeSet::new();
    let (required, optional) = match tape.keyless() {
        true => (&none, &none),
        false => (wanted.used, wanted.optional),
    };
    for &name in optional.difference(required) {
        let var = models.get(name).and_then(|m| m.api_key_env.as_ref());
        if let Some(key) = var
            .and_then(|var| host.vars.get(var))
            .filter(|k| !k.trim().is_empty())
        {
            keys.insert(name.to_string(), Secret::new(key.trim()));
        }
    }
    for &name in required {
        let Some(model) = models.get(name) else {
            continue;
        };
        let Some(var) = &model.api_key_env else {
            continue;
        };
        match host.vars.get(var) {
            Some(key) if !key.trim().is_empty() => {
                keys.insert(name.to_string(), Secret::new(key.trim()));
            }
            _ => {
                let error = source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("model `{name}` reads its API key from ${var}, which is not set"),
                        Some(model.span.clone()),
                        "this model",
                    )
                    .with_help(format!(
                        "export {var}=... before `{}`, or name another variable with api_key_env (\"\" for endpoints without a key, such as a local Ollama)",
                        wanted.command
                    ));
                return Err(SetupError::Plan(Box::new(error)));
            }
        }
    }
    if !keys.is_empty()
        && let Err(e) = swarm_sandbox::process::hide_secrets()
    {
        notices.push(Notice::Warning(format!(
            "cannot hide swarm's memory from other processes ({e}); API keys may be readable by unconfined workers"
        )));
    }
    let gateway = Gateway::new(models, &keys, budget)
        .map_err(|e| SetupError::Gateway(e.to_string()))?
        .with_tape(tape);
    Ok(Arc::new(gateway))
}

/// The gateway of agent tasks on a cluster node: every model the plan's
/// task uses is reached through the coordinator's gateway at
/// `access.url` (`<url>/models/<name>`, the provider's own wire protocol),
/// authenticated with the run's token instead of a provider key, which
/// never leaves the coordinator.
pub fn remote(plan: &Plan, access: &GatewayAccess) -> Result<Option<Arc<Gateway>>, SetupError> {
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
    let gateway = Gateway::for_node(&models, &keys, plan.budget)
        .map_err(|e| SetupError::Gateway(e.to_string()))?;
    Ok(Some(Arc::new(gateway)))
}

/// The budgets the relay counts a node's call of each of `plan`'s agent
/// tasks against (beside the run's): as a call of the same task here
/// would be (`Gateway::task_scopes`). A task the plan does not hold (a
/// subtask a node's agent spawned) counts against the run's alone.
pub fn relay_scopes(plan: &Plan, gateway: &Arc<Gateway>) -> crate::gateway::relay::ScopesOf {
    let agents: BTreeMap<String, (Budget, Option<String>)> = plan
        .tasks
        .iter()
        .filter_map(|t| {
            let agent = t.agent()?;
            Some((
                t.id.clone(),
                (agent.budget, t.variant().map(|v| v.of.clone())),
            ))
        })
        .collect();
    let gateway = Arc::clone(gateway);
    Arc::new(move |task: &str| match agents.get(task) {
        Some((budget, of)) => gateway.task_scopes(task, *budget, of.as_deref(), |id| {
            agents.get(id).map(|(budget, _)| *budget)
        }),
        None => Vec::new(),
    })
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

/// A gateway with no model, for a relay that only tunnels the nodes'
/// egress (a cluster run without agent tasks).
pub fn empty() -> Result<Arc<Gateway>, SetupError> {
    let none = BTreeMap::new();
    Gateway::new(&none, &BTreeMap::new(), Budget::default())
        .map(Arc::new)
        .map_err(|e| SetupError::Gateway(e.to_string()))
}

/// Where the relay may tunnel a node's connection to: a host and port
/// one of `plan`'s network lists allows (a task's, which is also its
/// `[cleanup]`'s, or `[setup]`'s). The node's own proxy checked the
/// task's list already; this keeps a node's token from opening anything
/// else through the coordinator.
pub fn egress_check(plan: &Plan) -> crate::gateway::relay::EgressCheck {
    use crate::plan::network::{RequestHost, split_authority};
    let lists: Vec<crate::plan::AllowList> = plan
        .tasks
        .iter()
        .map(|t| &t.network)
        .chain(plan.setup.iter().map(|s| &s.network))
        .filter_map(|n| n.hosts().cloned())
        .collect();
    Arc::new(move |asked: &str| {
        let (host, port) = split_authority(asked)
            .and_then(|(h, p)| Some((RequestHost::parse(h)?, p?.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("`{asked}` is no host:port"))?;
        match lists.iter().any(|list| list.allows(&host, port)) {
            true => Ok(format!("{host}:{port}")),
            false => Err(format!(
                "no network list of the run's plan allows {host}:{port}"
            )),
        }
    })
}
