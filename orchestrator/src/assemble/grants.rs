//! What sandboxed tasks are granted beyond their worktree: the plan's
//! `read_paths` (with `~/` expanded), detected toolchains and their build
//! caches, and where worktrees go; for `run`, `validate` and `doctor`.

use std::path::PathBuf;

use super::HostEnv;
use super::toolchains::{self, Toolchain};
use crate::plan::{self, Plan, PlanError};

/// The plan's `read_paths` that exist, and what to warn about.
#[derive(Debug, Default)]
pub struct ReadPaths {
    pub paths: Vec<PathBuf>,
    /// Entries a sandboxed task will not see.
    pub warnings: Vec<PlanError>,
}

/// The plan's `read_paths`, with `~/` expanded: readable by command tasks
/// under the sandbox, preopened read-only for WASM tasks. An entry that
/// does not exist is an error at its line (`validate` and `run` agree): a
/// typo would otherwise surface as a confusing failure inside a task.
pub fn read_paths(plan: &Plan, host: &HostEnv) -> Result<ReadPaths, Box<PlanError>> {
    let mut read_only = Vec::new();
    // Every bad entry at once, like the plan's own errors.
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for entry in &plan.read_paths {
        let path = match expand_home(plan, host, entry, "read_paths") {
            Ok(path) => path,
            Err(e) => {
                errors.push(*e);
                continue;
            }
        };
        if !path.exists() {
            errors.push(plan_error(
                plan,
                format!("`read_paths` entry `{}` does not exist", path.display()),
                entry.span.clone(),
                "no such file or directory",
                "fix the path, or remove the entry",
            ));
            continue;
        }
        // A sandboxed task's /etc and /dev are swarm's own subset (no
        // secrets, no devices beyond the harmless ones): an entry there is
        // not shown, which must not pass in silence.
        if ["/etc", "/dev"].iter().any(|d| path.starts_with(d)) {
            warnings.push(plan_error(
                plan,
                format!(
                    "`read_paths` entry `{}` is not shown to sandboxed tasks",
                    path.display()
                ),
                entry.span.clone(),
                "not shown",
                "a sandboxed task's /etc and /dev hold only swarm's own subset (see the manual: Sandbox and threat model); copy what the task needs into the repository or a directory of its own",
            ));
        }
        read_only.push(path);
    }
    match PlanError::bundle(errors) {
        Some(error) => Err(Box::new(error)),
        None => Ok(ReadPaths {
            paths: read_only,
            warnings,
        }),
    }
}

/// `entry` (of the plan's `key`) with `~/` expanded to the home directory.
fn expand_home(
    plan: &Plan,
    host: &HostEnv,
    entry: &plan::ReadPath,
    key: &str,
) -> Result<PathBuf, Box<PlanError>> {
    let raw = &entry.raw;
    match raw.strip_prefix("~/") {
        None => Ok(PathBuf::from(raw)),
        Some(rest) => match &host.home {
            Some(home) => Ok(home.join(rest)),
            None => Err(Box::new(plan_error(
                plan,
                format!("`{key}` entry `{raw}` needs $HOME, which is not set"),
                entry.span.clone(),
                "starts with ~/",
                "set HOME, or write the path in full",
            ))),
        },
    }
}

/// Where worktree homes are made for `plan`: its `worktrees` (with `~/`
/// expanded), else [`default_worktree_root`]. (`--worktrees` wins over
/// both; the caller checks it first.)
pub fn worktree_root(plan: &Plan, host: &HostEnv) -> Result<PathBuf, Box<PlanError>> {
    match &plan.worktrees {
        Some(entry) => expand_home(plan, host, entry, "worktrees"),
        None => Ok(default_worktree_root(host)),
    }
}

/// Where worktrees go unless the plan or `--worktrees` says: the user's
/// cache directory, which is outside any repository.
pub fn default_worktree_root(host: &HostEnv) -> PathBuf {
    match host.cache_home() {
        Some(cache) => cache.join("swarm").join("worktrees"),
        None => host
            .abs_path("TMPDIR")
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join(format!("swarm-{}", nix::unistd::getuid()))
            .join("worktrees"),
    }
}

/// An error at `span` of the plan's source.
fn plan_error(
    plan: &Plan,
    message: String,
    span: std::ops::Range<usize>,
    label: &str,
    help: &str,
) -> PlanError {
    plan.source
        .error(plan::PlanErrorKind::BadValue, message, Some(span), label)
        .with_help(help)
}

/// What sandboxed tasks of a plan get beyond their worktree.
#[derive(Debug, Default)]
pub struct Grants {
    /// The plan's `read_paths`, expanded.
    pub read_paths: Vec<PathBuf>,
    /// The host's toolchains the plan allows: their directories and
    /// variables.
    pub toolchains: Vec<Toolchain>,
    /// `read_paths` entries a sandboxed task will not see.
    pub warnings: Vec<PlanError>,
}

/// What sandboxed tasks of `plan` get on `host` beyond their worktree.
pub fn grants(plan: &Plan, host: &HostEnv) -> Result<Grants, Box<PlanError>> {
    let read_paths = read_paths(plan, host)?;
    Ok(Grants {
        read_paths: read_paths.paths,
        toolchains: toolchains::detect(host, &plan.toolchains),
        warnings: read_paths.warnings,
    })
}
