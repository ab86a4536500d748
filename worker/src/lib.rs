//! Runs one attempt of a swarm task's payload and reports how it ended.
//!
//! The worker knows nothing about git or the plan: it is given a command,
//! a directory, an environment, log files, a deadline and a way to be told
//! to stop, and it answers with an [`AttemptOutcome`]. Everything it starts
//! lives in one process group that is killed when the attempt ends, so no
//! background process outlives its task.

pub mod agent;
mod command;
mod output;
pub mod redact;
pub mod wasm;

pub use command::{
    Activity, Busy, CommandSpec, Deck, DeckSignal, OnDeck, Sandboxed, Stall, run_command,
};
pub use output::open_log;
pub use redact::Redact;
pub use swarm_protocol::AttemptOutcome;
pub use swarm_sandbox::Stop;
