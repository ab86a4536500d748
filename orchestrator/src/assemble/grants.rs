//! What sandboxed tasks are granted beyond their worktree: the plan's
//! `read_paths` (with `~/` expanded), detected toolchains and their build
//! caches, and where worktrees go; for `run`, `validate` and `doctor`.

use std::path::{Path, PathBuf};

use swarm_orchestrator::plan::{self, Plan};

use crate::Failure;

/// The plan's `read_paths`, with `~/` expanded: readable by command tasks
/// under the sandbox, preopened read-only for WASM tasks. An entry that
/// does not exist is an error at its line (`validate` and `run` agree): a
/// typo would otherwise surface as a confusing failure inside a task.
pub(crate) fn read_paths(plan: &Plan) -> Result<Vec<PathBuf>, Failure> {
    let mut read_only = Vec::new();
    // Every bad entry at once, like the plan's own errors.
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for entry in &plan.read_paths {
        let path = match expand_home(plan, entry, "read_paths") {
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
                "a sandboxed task's /etc and /dev hold only swarm's own subset (see README, Sandbox); copy what the task needs into the repository or a directory of its own",
            ));
        }
        read_only.push(path);
    }
    crate::output::print_plan_warnings(&warnings);
    match plan::PlanError::bundle(errors) {
        Some(error) => Err(Failure::Plan(Box::new(error))),
        None => Ok(read_only),
    }
}

/// `entry` (of the plan's `key`) with `~/` expanded to the home directory.
fn expand_home(
    plan: &Plan,
    entry: &plan::ReadPath,
    key: &str,
) -> Result<PathBuf, Box<plan::PlanError>> {
    let raw = &entry.raw;
    match raw.strip_prefix("~/") {
        None => Ok(PathBuf::from(raw)),
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => Ok(PathBuf::from(home).join(rest)),
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
pub(crate) fn worktree_root(plan: &Plan) -> Result<PathBuf, Failure> {
    match &plan.worktrees {
        Some(entry) => expand_home(plan, entry, "worktrees").map_err(Failure::Plan),
        None => Ok(default_worktree_root()),
    }
}

/// Where worktrees go unless the plan or `--worktrees` says: the user's
/// cache directory, which is outside any repository.
pub(crate) fn default_worktree_root() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    match (var("XDG_CACHE_HOME"), var("HOME")) {
        (Some(cache), _) => cache.join("swarm").join("worktrees"),
        (None, Some(home)) => home.join(".cache").join("swarm").join("worktrees"),
        (None, None) => std::env::temp_dir()
            .join(format!("swarm-{}", nix::unistd::getuid()))
            .join("worktrees"),
    }
}

/// An error at `span` of the plan's source.
pub(crate) fn plan_error(
    plan: &Plan,
    message: String,
    span: std::ops::Range<usize>,
    label: &str,
    help: &str,
) -> plan::PlanError {
    plan.source
        .error(
            swarm_orchestrator::plan::PlanErrorKind::BadValue,
            message,
            Some(span),
            label,
        )
        .with_help(help)
}

/// What sandboxed tasks of `plan` get beyond their worktree: the plan's
/// `read_paths`, then the detected toolchains' directories; and the
/// toolchains' variables.
pub(crate) fn grants(
    plan: &Plan,
) -> Result<(Vec<PathBuf>, Vec<crate::toolchains::Toolchain>), Failure> {
    let read_paths = read_paths(plan)?;
    let found = crate::toolchains::detect(&crate::toolchains::HostEnv::current(), &plan.toolchains);
    Ok((read_paths, found))
}

/// Lines saying what sandboxed tasks are granted, for `validate` and
/// `doctor`.
/// `home`: the repository's worktree home when tasks share build caches.
pub(crate) fn print_grants(
    read_paths: &[PathBuf],
    found: &[crate::toolchains::Toolchain],
    home: Option<&Path>,
) {
    if found.is_empty() {
        println!("toolchains        none found (or turned off by `toolchains`)");
    }
    for toolchain in found {
        println!("toolchain {:<7} {}", toolchain.name, toolchain.found);
        for grant in &toolchain.grants {
            println!("  read-only       {}", grant.display());
        }
        for (key, value) in &toolchain.env {
            println!("  env             {key}={value}");
        }
        if let (Some(home), Some((name, var))) = (home, crate::toolchains::cache_of(toolchain.name))
        {
            let dir = home.join(".cache").join(name);
            match var {
                "CARGO_TARGET_DIR" => println!(
                    "  build cache     {var}={}/<task> (writable, kept for the task's later runs)",
                    dir.display()
                ),
                _ => println!(
                    "  shared cache    {var}={} (writable, shared by the repository's tasks)",
                    dir.display()
                ),
            }
        }
    }
    for path in read_paths {
        println!("read_paths        {}", path.display());
    }
}
