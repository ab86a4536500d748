//! Confinement and hygiene of swarm's worker processes.
//!
//! Every worker runs in a process group of its own, so that stopping it
//! stops everything it started: SIGTERM to the whole group, a grace period,
//! then SIGKILL. Sandboxed workers are started through a helper (the `swarm`
//! binary re-executed) that confines itself with Landlock, seccomp, rlimits
//! and an empty capability set before it `execve`s the worker.
//!
//! This crate is the only one allowed `unsafe` code, because confining a
//! process means talking to the kernel directly.

mod confine;
mod namespaces;
pub mod policy;
pub mod probe;
pub mod process;
mod seccomp;

pub use confine::{ConfineError, REQUIRED_ABI, confine_and_exec};
pub use policy::{ENV_ALLOWLIST, Limits, Network, Policy};
pub use process::{Stop, kill_group, term_group};
