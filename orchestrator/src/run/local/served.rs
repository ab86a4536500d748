//! The TCP ports the coordinator serves for a command it starts: an agent
//! CLI's model door, the egress proxy of a task with a network
//! allow-list, or both.
//!
//! Sandboxed, the command's policy says `Network::Gateway` with those
//! ports: the worker's init makes a listener for each in the worker's own
//! network namespace and hands them over a socket pair made here
//! (`Policy::gateway_handoff`), and they are served from the moment they
//! arrive, while the command runs. Unconfined (`sandbox = "none"`), the
//! listeners are made here on the host's loopback, on free ports, and
//! served before the command starts; it finds their numbers in its
//! environment.

use std::net::TcpListener;
use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixStream;

use swarm_protocol::AttemptOutcome;
use swarm_sandbox::{GatewayPorts, Network, Stop};
use swarm_worker::{CommandSpec, run_command};
use tokio::sync::watch;

/// Where a command's listeners come from.
pub(crate) enum Ports {
    /// Sandboxed: the worker's init sends them on `ours`; `theirs` is the
    /// end the launcher passes on, kept until they came.
    Handed {
        ours: UnixStream,
        theirs: UnixStream,
    },
    /// Unconfined: made here, on the host's loopback.
    Host(Vec<TcpListener>),
}

impl Ports {
    /// Opens `ports` for `spec`: sandboxed, sets its policy's network to
    /// them and its handoff to a new pair's far end; unconfined, makes a
    /// listener on a free port of the host's loopback for each.
    pub(crate) fn open(spec: &mut CommandSpec, ports: GatewayPorts) -> std::io::Result<Self> {
        match &mut spec.sandbox {
            Some(sandboxed) => {
                let (ours, theirs) = UnixStream::pair()?;
                sandboxed.policy.network = Network::Gateway { ports };
                sandboxed.policy.gateway_handoff = Some(theirs.as_raw_fd());
                Ok(Ports::Handed { ours, theirs })
            }
            None => ports
                .iter()
                .map(|_| TcpListener::bind(("127.0.0.1", 0)))
                .collect::<std::io::Result<_>>()
                .map(Ports::Host),
        }
    }

    /// The port numbers the command connects to: the policy's, inside its
    /// own namespace; the host's free ports, unconfined.
    pub(crate) fn numbers(&self, ports: GatewayPorts) -> Vec<u16> {
        match self {
            Ports::Handed { .. } => ports.iter().collect(),
            Ports::Host(listeners) => listeners
                .iter()
                .zip(ports.iter())
                .map(|(l, fixed)| l.local_addr().map_or(fixed, |a| a.port()))
                .collect(),
        }
    }
}

/// Runs `spec` (opened with `ports`) as `run_command` does, and gives
/// `serve` the listeners, in the order of the ports, once they are had:
/// at once unconfined, when the worker's init sent them sandboxed. A
/// worker that never sends them (it failed to start) leaves `serve`
/// uncalled.
pub(crate) async fn run_serving(
    spec: &CommandSpec,
    ports: Ports,
    stop: &mut watch::Receiver<Option<Stop>>,
    serve: impl FnOnce(Vec<TcpListener>),
) -> AttemptOutcome {
    let (ours, theirs) = match ports {
        Ports::Host(listeners) => {
            serve(listeners);
            return run_command(spec, stop).await;
        }
        Ports::Handed { ours, theirs } => (ours, theirs),
    };
    let run = run_command(spec, stop);
    let receive = async {
        // Ours alone now: the launcher holds its copy until the worker's
        // init has sent the listeners.
        let got = swarm_sandbox::receive_listeners(ours).await;
        drop(theirs);
        got
    };
    tokio::pin!(run, receive);
    let mut serve = Some(serve);
    loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            got = &mut receive, if serve.is_some() => {
                let serve = serve.take();
                match (got, serve) {
                    (Ok(listeners), Some(serve)) => serve(listeners),
                    (Err(e), _) => tracing::debug!(error = %e, "no listeners from the sandbox"),
                    (Ok(_), None) => {}
                }
            }
        }
    }
}
