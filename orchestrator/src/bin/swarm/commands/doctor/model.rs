//! `swarm doctor --model NAME`: what a model of the configuration
//! `swarm plan` reads does for swarm, asked for real: whether it answers
//! (and how fast, and what it counted), whether it holds an answer to a
//! JSON schema (`swarm plan`, `output_schema`), and whether it calls a
//! tool when given one (swarm's agent works through tool calls). A local
//! server that answers but never calls a tool is the usual surprise.

use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::assemble::doctor::{Finding, ask_model};
use swarm_orchestrator::gateway::tape::TapeSettings;
use swarm_orchestrator::{exit, view};

use crate::common::open_repo;
use crate::failure::Failure;

/// Checks model `name` of the planner's configuration (`config`, else the
/// repository's `swarm.toml`, the user's or the built-in one); `trust`:
/// the repository's file is the person's. Exit 0 when the model answers,
/// 1 when it does not.
pub(crate) fn doctor_model(
    cwd: &Path,
    name: &str,
    config: Option<&Path>,
    trust: bool,
) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let (template, path) = crate::planning::configuration(&repo, cwd, config, trust)?;
    let Some(model) = template.models.get(name) else {
        return Err(crate::planning::unknown_model(
            "check a model",
            name,
            &template,
            &path,
        ));
    };
    println!(
        "model             `{name}` of {}: {} `{}` at {}",
        path.display(),
        model.provider.as_str(),
        model.model,
        model.base_url
    );
    let used = std::collections::BTreeSet::from([name]);
    let mut notices = Vec::new();
    let gateway = swarm_orchestrator::assemble::gateway::for_planner(
        &template,
        &used,
        &crate::host::current(),
        &TapeSettings::default(),
        &mut notices,
    )?;
    crate::output::print_notices(&notices);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(anyhow!("start the async runtime: {e}")))?;
    let mut say = |finding: Finding| println!("{}", view::doctor::finding(name, &finding));
    let answered = runtime.block_on(ask_model(&gateway, name, &mut say));
    Ok(if answered {
        exit::SUCCESS
    } else {
        exit::TASKS_FAILED
    })
}
