//! What every task of a plan is resolved against ([`Ctx`]), and the one
//! way a step keeps going past an error ([`keep`]): shared by the steps of
//! `expand` and the files that resolve tasks for it (`task.rs`,
//! `settings.rs`, `subtasks.rs`).

use std::collections::{BTreeMap, HashSet};

use super::error::{PlanError, Source};
use super::models::ModelConfig;
use super::schema::TaskFields;

/// The value of `result`, or `None` with its error added to `errors`.
pub(super) fn keep<T>(errors: &mut Vec<PlanError>, result: Result<T, PlanError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

/// What every task of a plan is resolved against.
pub(super) struct Ctx<'a> {
    pub source: &'a Source,
    /// How the plan's file names are read.
    pub files: &'a super::origin::files::Files,
    /// `[swarm] on_conflict`, for tasks that do not say.
    pub on_conflict: Option<super::OnConflict>,
    pub models: &'a BTreeMap<String, ModelConfig>,
    /// `[models.NAME]` tables with errors of their own: a task that uses one
    /// is not reported again.
    pub broken_models: HashSet<String>,
    /// The agent CLIs a task may name in `agent`.
    pub agents: &'a BTreeMap<String, super::agents::AgentCli>,
    /// The MCP servers a task may name in `mcp`.
    pub mcp: &'a BTreeMap<String, super::mcp::McpTable>,
    /// The tasks come from a subtask request or a replan's fix, not the
    /// person's plan: nothing they name is read from the host's files.
    pub from_request: bool,
    pub defaults: &'a TaskFields,
}
