//! Why a run could not be prepared, started, driven or resumed: one error
//! type for the run's steps, as fragments that read after "failed to".

use crate::git::GitError;
use crate::state::StateError;

/// ` (pid N)` for a lock's recorded holder, nothing when it recorded none.
fn holder_note(holder: &str) -> String {
    match holder.is_empty() {
        true => String::new(),
        false => format!(" (pid {holder})"),
    }
}

/// Failure to run a plan, as a fragment that reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("start run `{name}`: the name is already used in this repository ({what})")]
    NameTaken { name: String, what: String },
    #[error(
        "start run `{name}`: a branch named `swarm` exists, so branches `swarm/<run>` cannot be created"
    )]
    SwarmBranchExists { name: String },
    #[error(
        "drive run `{run}`: another swarm process{} is driving it; wait for it to end, or stop it",
        holder_note(.holder)
    )]
    Locked { run: String, holder: String },
    #[error("use run name `{name}`: {RUN_NAME_RULE}")]
    BadName { name: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Home(#[from] crate::worktree_home::HomeError),
    #[error("resume run `{run}`: {why}")]
    NotResumable { run: String, why: String },
    /// Resumed, the run had finished and has nothing left that can run:
    /// not an error of the command (a CI retry of a step that passed), the
    /// caller reports the run and exits with its code.
    #[error(
        "resume run `{run}`: it finished (exit {exit_code}) and has no task left that can run; {hint}"
    )]
    Finished {
        run: String,
        exit_code: i32,
        hint: String,
    },
    #[error("{action}: {source}")]
    Io {
        action: String,
        source: std::io::Error,
    },
    #[error(
        "reach the Slurm cluster before submitting any job: {why} (check that its controller runs and that `squeue` works here)"
    )]
    NoCluster { why: String },
}

impl RunError {
    /// True when the error is the user's input (exit code 2) rather than a
    /// failure of the machine or of git.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::NameTaken { .. }
                | Self::BadName { .. }
                | Self::SwarmBranchExists { .. }
                | Self::Locked { .. }
                | Self::NotResumable { .. }
                | Self::Finished { .. }
                | Self::NoCluster { .. }
                | Self::Git(GitError::UnknownRev { .. })
        ) || matches!(self, Self::State(e) if e.is_unsafe())
            || matches!(self, Self::Home(e) if e.is_invalid_input())
    }
}

/// What a valid run name is, for help messages.
pub const RUN_NAME_RULE: &str = "a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . \
     (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`";
