//! Why a command failed ([`Failure`]), and so which exit code it ends
//! with: what every command returns, apart from the entry file.

use swarm_orchestrator::exit;

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug)]
pub enum Failure {
    /// The plan is invalid (rendered with its source).
    Plan(Box<swarm_orchestrator::plan::PlanError>),
    /// The command line or the repository state makes the command invalid.
    Invalid(anyhow::Error),
    /// Something went wrong while working.
    Internal(anyhow::Error),
    /// The work itself failed (a model the planner needs did not answer).
    Failed(anyhow::Error),
}

impl Failure {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Self::Plan(_) | Self::Invalid(_) => exit::INVALID_INPUT,
            Self::Internal(_) => exit::INTERNAL_ERROR,
            Self::Failed(_) => exit::TASKS_FAILED,
        }
    }
}

impl From<swarm_orchestrator::assemble::SetupError> for Failure {
    fn from(e: swarm_orchestrator::assemble::SetupError) -> Self {
        use swarm_orchestrator::assemble::SetupError;
        match e {
            SetupError::Plan(error) => Self::Plan(error),
            e if e.is_invalid_input() => Self::Invalid(anyhow::anyhow!("{e}")),
            e => Self::Internal(anyhow::anyhow!("{e}")),
        }
    }
}
