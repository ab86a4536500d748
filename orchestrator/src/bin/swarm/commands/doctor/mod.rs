//! `swarm doctor`: what this machine supports for sandboxing and what swarm
//! enforces.

use std::path::{Path, PathBuf};

use swarm_orchestrator::exit;

use crate::failure::Failure;

mod model;

/// `swarm doctor`'s command line.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Ask model NAME of the planner's configuration (the repository's
    /// swarm.toml, else ~/.config/swarm/swarm.toml) whether it answers,
    /// holds an answer to a JSON schema and calls a tool.
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// The configuration to read the model from (a file named here is
    /// yours, trusted).
    #[arg(long, value_name = "FILE", requires = "model")]
    config: Option<PathBuf>,
    /// Trust the repository's own swarm.toml for this check.
    #[arg(long, requires = "model")]
    trust: bool,
}

/// `swarm doctor`, or `swarm doctor --model NAME`.
pub(crate) fn cmd_doctor(cwd: &Path, args: DoctorArgs) -> Result<i32, Failure> {
    if let Some(model) = args.model {
        return model::doctor_model(cwd, &model, args.config.as_deref(), args.trust);
    }
    // What this machine supports and what swarm will enforce.
    let scratch = std::env::temp_dir().join(format!("swarm-doctor-{}", std::process::id()));
    let machine = swarm_orchestrator::assemble::doctor::probe(&crate::host::current(), &scratch);
    print!("{}", swarm_orchestrator::view::doctor::machine(&machine));
    Ok(match machine.launcher {
        Ok(_) => exit::SUCCESS,
        Err(_) => exit::TASKS_FAILED,
    })
}
