//! Confinement and hygiene of swarm's worker processes.
//!
//! Sandboxed workers are started by the [`launcher`]: the `swarm` binary
//! re-executed once per run, which starts and confines every worker with
//! namespaces, Landlock, seccomp, rlimits and an empty capability set
//! before it `execve`s it. Unconfined workers run in a process group of
//! their own, so that stopping one stops everything it started: SIGTERM to
//! the whole group, a grace period, then SIGKILL.
//!
//! This crate is the only one allowed `unsafe` code, because confining a
//! process means talking to the kernel directly.

mod cache;
mod confine;
pub mod idmap;
pub mod launcher;
mod loopback;
mod mount_api;
mod namespaces;
pub mod ownership;
pub mod policy;
pub mod probe;
pub mod process;
mod seccomp;
mod template;
mod view;

pub use confine::{ConfineError, REQUIRED_ABI};
pub use launcher::UnconfinedRequest;
pub use launcher::{Exit, LaunchError, Launcher, SpawnRequest, Spawned};
pub use loopback::receive_listeners;
pub use policy::{
    ENV_ALLOWLIST, GatewayPorts, Limits, Network, Overlay, Policy, SANDBOX_IDENTITY,
    SYSTEM_READ_ONLY, View, worker_identity,
};
pub use process::{Stop, kill_group, term_group};
