//! What the local executor keeps of each task it started, until its tokio
//! task ends: one [`Running`] record per task (its stop signal, its part in
//! the launcher's deck), in one map keyed by `TaskIndex`, so that a task's
//! state is written in one place when it starts and dropped in one place
//! when it ends.

use std::sync::Arc;

use swarm_sandbox::Stop;
use swarm_worker::DeckSignal;
use tokio::sync::watch;

use crate::ids::TaskIndex;

/// A task the executor started, until its tokio task ends.
#[derive(Debug)]
pub(super) struct Running {
    /// Its tokio task, to name it when it is lost (panicked).
    pub id: tokio::task::Id,
    /// Its own stop signal.
    pub stop: watch::Sender<Option<Stop>>,
    /// Where its command publishes its launcher id, when a task may wait
    /// on deck behind it.
    pub published: Option<watch::Receiver<Option<u64>>>,
    /// Its place went on already: the task on deck behind it started as
    /// its command exited 0 and ended before this task's own end was
    /// handled. Its end then hands out no place (it would be one more than
    /// `concurrency`).
    pub passed: bool,
    /// Its wait on deck (see `Executor::admit_on_deck`), until it starts
    /// in a place of its own (or is taken back).
    pub deck: Option<Decked>,
}

/// A task on deck.
#[derive(Debug)]
pub(super) struct Decked {
    /// The running task whose command's end starts it.
    pub behind: TaskIndex,
    /// Tells it to start at once (it takes a place that freed), or not to.
    pub signal: watch::Sender<DeckSignal>,
    /// Set (to when) the moment the launcher's word that its command
    /// started is read: from then on it holds a place.
    pub began: Arc<std::sync::OnceLock<std::time::Instant>>,
    /// When it went on deck, in the executor's count: the first one
    /// waiting is the first to take a place that freed.
    pub order: u64,
}

impl Decked {
    pub fn began(&self) -> bool {
        self.began.get().is_some()
    }

    /// Waiting, not yet told anything.
    pub fn waiting(&self) -> bool {
        !self.began() && *self.signal.borrow() == DeckSignal::Wait
    }

    /// Being taken back (it stays listed, holding no place, until its
    /// task ends).
    pub fn withdrawn(&self) -> bool {
        *self.signal.borrow() == DeckSignal::Withdraw
    }
}
