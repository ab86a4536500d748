//! The swarm coordinator as a library: plans, the task graph, git
//! worktrees and merges, the dispatcher that runs a plan, and the journal
//! and reports it leaves behind.
//!
//! Nothing here prints or reads the process environment; the `swarm` binary
//! is the only place that talks to the user.
//!
//! Nor does anything here touch a path with `std::fs` without saying why
//! that path is swarm's own: a place a task could have written (its tmp, its
//! worktree, a build cache) is reached only through `untrusted::TaskDir`
//! (clippy's `disallowed-methods`, listed in `clippy.toml`).

#![cfg_attr(not(test), deny(clippy::disallowed_methods))]

pub mod assemble;
pub mod clean;
pub mod durations;
pub mod escape;
pub mod exit;
pub mod export;
pub mod flushes;
pub mod fold;
pub mod gateway;
pub mod git;
pub mod html;
pub(crate) mod id_index;
pub mod ids;
pub mod journal;
pub mod layout;
pub mod logs;
pub mod mcp_server;
pub mod output_schema;
pub mod plan;
pub mod received;
/// The task graph lives with the plan it is made of (`plan::graph`).
pub use plan::graph;
pub mod planner;
pub mod repomap;
pub mod report;
pub mod resolve;
pub mod run;
pub mod shell_words;
pub mod state;
pub mod test_report;
pub mod timeline;
pub mod trust;
pub mod untrusted;
pub mod view;
pub mod worktree_home;
pub mod worktree_include;

/// RFC 3339 UTC time with milliseconds, as used in journals and reports.
pub fn timestamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Whole milliseconds of `d`, as journals and reports count them.
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `e` and every error under it, as `a: b: c`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod layers_tests;
