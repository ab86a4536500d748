//! What bounded replanning keeps between the dispatcher's calls
//! ([`Replanning`]): the replanner, the replans left and the answers
//! awaited. The dispatcher's side is `replanning.rs`.

use crate::ids::TaskIndex;
use swarm_protocol::TaskStatus;

use super::super::replan::{Fix, Replanner};

/// A replan the model answered: the task, the round, how and why it had
/// failed, and the fix or why there is none.
pub(super) type Answered = (
    TaskIndex,
    u32,
    TaskStatus,
    Option<String>,
    Result<Fix, String>,
);

/// Replanning of failed tasks: the model to ask, the replans the run may
/// still make, and those waiting for the model.
pub(super) struct Replanning {
    pub(super) replanner: Replanner,
    /// Replans the run may still make, and how many it may make in all
    /// (resumes included).
    pub left: u32,
    pub rounds: u32,
    /// Replans waiting for the model.
    pub answers: tokio::task::JoinSet<Answered>,
}

impl Replanning {
    pub(super) fn new(replanner: Replanner, rounds: u32) -> Self {
        Self {
            replanner,
            left: rounds,
            rounds,
            answers: tokio::task::JoinSet::new(),
        }
    }
}

/// The next replan the model answered (polled only while one is awaited).
pub(super) async fn next_answer(
    replanning: &mut Option<Replanning>,
) -> Option<Result<Answered, tokio::task::JoinError>> {
    match replanning {
        Some(replanning) => replanning.answers.join_next().await,
        None => None,
    }
}
