//! The run-wide verify (`[swarm] verify`): a command run on the
//! integration branch after merges, in a read-only checkout of one of its
//! commits. These are the types the journal (`run_verified`,
//! `verify_broken`) and the report share; the bisection that attributes a
//! failure to one merge is the coordinator's.

use serde::{Deserialize, Serialize};

use crate::AttemptOutcome;

/// Why the run-wide verify ran on a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyPurpose {
    /// The integration branch's tip, after merges.
    Tip,
    /// An earlier commit of the branch: one step of the bisection that
    /// looks for the merge that broke it.
    Bisect,
    /// The run's base commit: every merge failed, so the base is checked
    /// before any task is blamed.
    Base,
    /// The branch rebuilt without the merge (or group of merges) the
    /// bisection found first to fail: only if it passes is that merge
    /// proven to have broken it, and taken out. (`after` names it.)
    Proof,
}

impl VerifyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tip => "tip",
            Self::Bisect => "bisect",
            Self::Base => "base",
            Self::Proof => "proof",
        }
    }
}

/// One run of the run-wide verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerifyRun {
    /// The integration commit it ran on.
    pub commit: String,
    pub purpose: VerifyPurpose,
    /// The task whose merge made `commit` (`None`: the base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Whether it exited 0.
    pub passed: bool,
    /// How the command ended.
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
    pub duration_ms: u64,
    pub stdout_log: String,
    pub stderr_log: String,
    /// The last lines of its output (stderr, else stdout) when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
}

impl VerifyRun {
    /// True when the command could not run at all (the checkout or the
    /// sandbox failed): a fact about the machine, not about the commit.
    pub fn could_not_run(&self) -> bool {
        matches!(self.outcome, AttemptOutcome::SpawnFailed { .. })
    }
}
