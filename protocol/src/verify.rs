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
    /// Its tree: what was verified, whatever commit holds it (what
    /// `swarm land` checks it lands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    pub purpose: VerifyPurpose,
    /// How many runs on this commit failed before this one (0: the
    /// first): a failure is run again (`verify_retries`) before it counts,
    /// and one that passes after failing was flaky.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The round of the search that asked it (runs of one round run at
    /// once, with `verify_concurrency`; a run again shares its round).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
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

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl VerifyRun {
    /// True when the command could not run at all (the checkout or the
    /// sandbox failed): a fact about the machine, not about the commit.
    pub fn could_not_run(&self) -> bool {
        matches!(self.outcome, AttemptOutcome::SpawnFailed { .. })
    }
}

/// A failure of the run-wide verify that taking merges out could not
/// explain (a piece missing from a refactor: the branch without any one
/// merge still fails), or a group's culprit of which only some members
/// are to blame: the tasks that own the files its output names. Evidence,
/// not proof: every merge is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerifyNamed {
    /// The failing commit whose output was read.
    pub commit: String,
    /// The tasks named, each with the places (`path:line`) that name it
    /// and why it owns them.
    pub tasks: Vec<NamedTask>,
    pub reason: String,
}

/// One task a failure names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NamedTask {
    pub task: String,
    /// `path:line` as the output wrote them (relative to the checkout), at
    /// most ten.
    pub places: Vec<String>,
    /// `paths` (its `paths` or `creates` hold them) or `changed` (its
    /// merge changed them).
    pub by: String,
}

/// The merge queue's numbers for one run (the fields merge queues
/// publish): derived from the verify's runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QueueStats {
    /// Runs of the run-wide verify.
    pub runs: u32,
    /// Runs that failed on a commit that then passed.
    pub flaky_runs: u32,
    /// Runs that reproduced a failure (`verify_retries`): the cost of
    /// telling a flake from a failure.
    pub retry_runs: u32,
    /// Tasks whose merge was taken out, proven.
    pub culprits: u32,
    /// Rounds of the search (bisection rounds, proofs, the base): sets of
    /// runs that ran at once (one run each, runs again aside, with
    /// `verify_concurrency = 1`).
    pub rounds: u32,
    /// Time spent in the search's runs (every run but the tips'; runs at
    /// once each count).
    pub search_ms: u64,
}

impl QueueStats {
    /// The numbers of `runs`, with `culprits` taken out.
    pub fn of(runs: &[VerifyRun], culprits: u32) -> Self {
        let mut stats = Self {
            runs: u32::try_from(runs.len()).unwrap_or(u32::MAX),
            culprits,
            ..Self::default()
        };
        let mut rounds = std::collections::BTreeSet::new();
        for (i, run) in runs.iter().enumerate() {
            if run.attempt > 0 {
                stats.retry_runs += 1;
            }
            if !run.passed
                && runs[i + 1..]
                    .iter()
                    .any(|r| r.commit == run.commit && r.passed)
            {
                stats.flaky_runs += 1;
            }
            if run.purpose != VerifyPurpose::Tip {
                stats.search_ms += run.duration_ms;
                // Runs that name no round (older journals) count as one
                // each.
                match run.round {
                    Some(round) => {
                        rounds.insert(round);
                    }
                    None => stats.rounds += 1,
                }
            }
        }
        stats.rounds += u32::try_from(rounds.len()).unwrap_or(u32::MAX);
        stats
    }
}
