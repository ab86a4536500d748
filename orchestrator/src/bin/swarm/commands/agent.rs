//! The hidden `swarm __agent` command: the agent worker itself, started by
//! a run in a task's worktree with its channel to the coordinator.

/// The variable through which `swarm __agent` learns its channel's fd.
const CHANNEL_VAR: &str = swarm_protocol::agent::CHANNEL_FD_VAR;

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
