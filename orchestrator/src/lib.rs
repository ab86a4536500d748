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
pub mod test_attempts;
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
/// What frees the space, for a message that says the disk is full (an
/// error of the file system's: `No space left on device`, or a quota's).
pub fn full_disk_help(text: &str) -> Option<&'static str> {
    (text.contains("No space left on device")
        || text.contains("os error 28")
        || text.contains("Disk quota exceeded"))
    .then_some(
        "the disk is full: `swarm clean --all --warm` frees ended runs and the warm worktrees (with what their setups and tasks built), `swarm clean --caches` the build caches",
    )
}

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

#[cfg(test)]
mod full_disk_tests {
    #[test]
    fn a_full_disk_is_told_what_frees_it() {
        let said = "write .git/objects/pack/tmp: No space left on device (os error 28)";
        assert!(
            super::full_disk_help(said).is_some_and(|h| h.contains("swarm clean --all --warm"))
        );
        assert_eq!(
            super::full_disk_help("permission denied (os error 13)"),
            None
        );
    }
}
