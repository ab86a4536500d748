//! Confinement and hygiene of swarm's worker processes.
//!
//! Every worker runs in a process group of its own, so that stopping it
//! stops everything it started: SIGTERM to the whole group, a grace period,
//! then SIGKILL. This crate is the only one allowed `unsafe` code, because
//! confining a process means talking to the kernel directly.

pub mod process;

pub use process::{Stop, kill_group, term_group};
