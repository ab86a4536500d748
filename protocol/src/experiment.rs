//! Experiments: one task run several ways (its variants), the eligible
//! variants ranked by a score, one of them picked as the task's result.
//!
//! These are the types the journal (`experiment_decided`), the report and
//! `swarm compare` share; the ranking itself is the coordinator's.

use serde::{Deserialize, Serialize};

use crate::TaskStatus;

/// How an experiment's result is chosen among its eligible variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// The lowest score wins.
    Min,
    /// The highest score wins.
    Max,
    /// The first variant to pass `verify` wins; the others are cancelled.
    First,
    /// Every variant is kept on its ref and none is merged.
    None,
}

impl Pick {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Max => "max",
            Self::First => "first",
            Self::None => "none",
        }
    }
}

impl std::fmt::Display for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a variant's `score` command gave: a number, or why there is none
/// (which makes the variant ineligible).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Score {
    /// The number the command printed (its last line of output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Why there is no value: the command failed, timed out or printed no
    /// number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    /// Each run's number when the score ran more than once
    /// (`score_repeat`); `value` is their median.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<f64>,
}

/// The size of a variant's change against its base.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct DiffStat {
    pub files: u64,
    pub insertions: u64,
    pub deletions: u64,
}

impl std::fmt::Display for DiffStat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} file{} +{} -{}",
            self.files,
            if self.files == 1 { "" } else { "s" },
            self.insertions,
            self.deletions
        )
    }
}

/// One variant in an experiment's ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Ranked {
    /// The variant's task id (`<task>@<k>`).
    pub task: String,
    /// Its number `k`, from 1.
    pub variant: u32,
    /// What sets it apart: its values of `variants = { key = [...] }`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub values: std::collections::BTreeMap<String, String>,
    /// Its place among the eligible variants (1 is the best); `None` for
    /// an ineligible one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    /// Why it could not be picked (failed, verify failed, no score, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ineligible: Option<String>,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Whether its `verify` passed (`None`: it has none, or did not get
    /// that far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_passed: Option<bool>,
    /// Tokens its agent used (0 for commands and WASM programs).
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub cost_usd: f64,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffStat>,
    /// The commit of its work, on `ref`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
}

/// What `pick = "first"` saved by stopping the other variants once one
/// passed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Saved {
    /// Variants that never started.
    pub not_started: Vec<String>,
    /// Variants stopped while they ran.
    pub stopped: Vec<String>,
    /// What the stopped ones had spent when they were stopped.
    pub stopped_ms: u64,
    pub stopped_tokens: u64,
    pub stopped_cost_usd: f64,
    /// The winner's own cost times the variants that never started, plus
    /// what a stopped one would have spent beyond its share so far: an
    /// estimate of what running them all would have cost more.
    pub estimated_cost_usd: f64,
    pub estimated_ms: u64,
}

/// An experiment's outcome: the ranking and the pick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decision {
    pub pick: Pick,
    /// The variant whose result is the task's (`None`: none was eligible,
    /// or `pick = "none"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// Every variant: eligible ones best first, then the others by number.
    pub ranking: Vec<Ranked>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<Saved>,
}
