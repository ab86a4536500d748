//! The results `swarm land --adopt` takes from the run they landed in
//! (read back by [`Adopted::of_run`](super::land)): what a run is given
//! to adopt ([`super::options::RunOptions::adopt`]) and what the adopting
//! executor hands on, below both.

use std::collections::HashMap;

use git2::Oid;

/// A task's result taken from the run it landed in.
#[derive(Debug, Clone)]
pub struct AdoptedResult {
    /// Its result commit.
    pub commit: Oid,
    /// The commit that result was made on (its attempt's base).
    pub base: Oid,
    /// What it changed.
    pub changed: Vec<String>,
}

/// The results of a run's tasks that reached its branch, by task id.
#[derive(Debug, Clone, Default)]
pub struct Adopted {
    pub by_id: HashMap<String, AdoptedResult>,
    /// The tasks merged on the run's branch, in its order.
    pub order: Vec<String>,
}
