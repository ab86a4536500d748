//! `swarm __sandbox` (internal): the sandbox launcher, started by a run
//! with its socket on fd 3; it starts every sandboxed worker of the run,
//! or with `--unconfined` every command of an unconfined run.

use crate::failure::Failure;

/// `swarm __sandbox`'s command line.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    #[arg(long)]
    unconfined: bool,
}

/// `swarm __sandbox [--unconfined]`.
pub(crate) fn cmd_sandbox(args: SandboxArgs) -> Result<i32, Failure> {
    use swarm_sandbox::launcher::{Mode, serve};
    Ok(serve(match args.unconfined {
        true => Mode::Unconfined,
        false => Mode::Sandboxed,
    }))
}
