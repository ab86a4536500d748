//! The coding agent of agent (`prompt`) tasks. It runs as its own process
//! (`swarm __agent`) inside the task's sandbox, with no network and no API
//! key: it reaches the model only through the channel the coordinator
//! handed it at spawn. [`run`] is the loop; [`tools`] what the model can do
//! in the worktree; `mcp` the task's MCP servers, whose tools it adds.

mod channel;
mod mcp;
mod prompt;
mod run;
pub mod tools;

pub use channel::ChannelError;
pub use prompt::{INSTRUCTION_FILES, system_prompt};
pub use run::{AgentExit, run};
