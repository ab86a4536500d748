//! `[setup]` and `[cleanup]`, checked: what makes a fresh worktree ready
//! to work in before its task runs, and what runs in it when swarm is done
//! with it. Part of step 2 of [`super::expand::plan`].

// As in expand.rs: a PlanError is built once per mistake, on the way out.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use toml::Spanned;

use super::TaskNetwork;
use super::error::{PlanError, PlanErrorKind, Source};
use super::schema::{CleanupSection, SetupSection};

/// How long setup may run unless the plan says.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long cleanup may run unless the plan says.
pub const DEFAULT_CLEANUP_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// `[cleanup]`: a command run in a task's worktree when swarm is done
/// with it, sandboxed like the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    pub run: String,
    pub network: TaskNetwork,
    pub timeout: Duration,
    /// Where `[cleanup]` is in the plan's file, for warnings.
    pub span: std::ops::Range<usize>,
}

/// `[cleanup]`, or `None` without one; problems are added to `errors`.
pub(super) fn check_cleanup(
    source: &Source,
    cleanup: Option<&Spanned<CleanupSection>>,
    errors: &mut Vec<PlanError>,
) -> Option<Cleanup> {
    let span = cleanup?.span();
    let section = cleanup?.get_ref();
    let network =
        super::task::network(source, section.network.as_ref(), "[cleanup]", &span, errors);
    let timeout = duration(
        source,
        "cleanup",
        section.timeout.as_ref(),
        DEFAULT_CLEANUP_TIMEOUT,
        errors,
    );
    if section.run.get_ref().trim().is_empty() {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    "`[cleanup] run` is empty",
                    Some(section.run.span()),
                    "no command",
                )
                .with_help("give the command that runs when swarm is done with a worktree, or remove [cleanup]"),
        );
        return None;
    }
    Some(Cleanup {
        run: section.run.get_ref().clone(),
        network,
        timeout,
        span,
    })
}

/// `[setup]`: a command run in each fresh worktree before its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Run with `sh -c` in the task's worktree, sandboxed like the task.
    pub run: String,
    /// Files (relative to the repository) whose content decides when setup
    /// runs again; empty: it runs in every fresh worktree.
    pub key: Vec<String>,
    /// Setup's own network (the task keeps its own).
    pub network: TaskNetwork,
    pub timeout: Duration,
    /// Variables on top of the task's `env`.
    pub env: Vec<(String, String)>,
    /// Where `[setup]` is in the plan's file, for warnings.
    pub span: std::ops::Range<usize>,
}

/// `[setup]`, or `None` without one; problems are added to `errors`.
pub(super) fn check_setup(
    source: &Source,
    setup: Option<&Spanned<SetupSection>>,
    errors: &mut Vec<PlanError>,
) -> Option<Setup> {
    let span = setup?.span();
    let section = setup?.get_ref();
    let network = super::task::network(source, section.network.as_ref(), "[setup]", &span, errors);
    let timeout = duration(
        source,
        "setup",
        section.timeout.as_ref(),
        DEFAULT_SETUP_TIMEOUT,
        errors,
    );
    let mut key = Vec::new();
    if let Some(files) = &section.key {
        for file in files.get_ref() {
            match key_file(file) {
                Ok(file) => key.push(file),
                Err(why) => errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("invalid `[setup] key` file `{file}`"),
                            Some(files.span()),
                            why,
                        )
                        .with_help("name files by their path from the repository's root, e.g. key = [\"package-lock.json\"]"),
                ),
            }
        }
        key.sort();
        key.dedup();
    }
    let run = section.run.get_ref();
    if run.trim().is_empty() {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    "`[setup] run` is empty",
                    Some(section.run.span()),
                    "no command",
                )
                .with_help("give the command that prepares a worktree, e.g. run = \"npm ci\", or remove [setup]"),
        );
        return None;
    }
    Some(Setup {
        run: run.clone(),
        key,
        network,
        timeout,
        env: section
            .env
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        span,
    })
}

/// A key file as written: a relative path inside the repository, `/`
/// separated, no `..`, no empty or `.` component.
fn key_file(file: &str) -> Result<String, &'static str> {
    let trimmed = file.trim_start_matches("./");
    if trimmed.is_empty() {
        return Err("an empty path");
    }
    if trimmed.starts_with('/') {
        return Err("an absolute path: key files are the repository's own");
    }
    if trimmed
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("a path must stay inside the repository (no `..`, `.` or `//`)");
    }
    Ok(trimmed.to_string())
}

fn duration(
    source: &Source,
    table: &str,
    value: Option<&Spanned<String>>,
    default: Duration,
    errors: &mut Vec<PlanError>,
) -> Duration {
    let Some(value) = value else {
        return default;
    };
    match humantime::parse_duration(value.get_ref()) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("invalid `[{table}] timeout` `{}`", value.get_ref()),
                        Some(value.span()),
                        "not a duration",
                    )
                    .with_help("write durations like \"90s\", \"20m\" or \"1h 30m\""),
            );
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse;

    fn plan(tables: &str) -> String {
        format!("{tables}\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n")
    }

    #[test]
    fn setup_is_read_with_its_defaults() {
        let text =
            plan("[setup]\nrun = \"npm ci\"\nkey = [\"./package-lock.json\", \"package.json\"]\n");
        let plan = parse(Path::new("plans/s.toml"), text).unwrap();
        let setup = plan.setup.unwrap();
        assert_eq!(setup.run, "npm ci");
        assert_eq!(setup.key, ["package-lock.json", "package.json"]);
        assert_eq!(setup.network, super::TaskNetwork::None);
        assert_eq!(setup.timeout, super::DEFAULT_SETUP_TIMEOUT);
        assert!(plan.tasks[0].setup);
    }

    #[test]
    fn a_key_outside_the_repository_an_empty_command_and_a_bad_timeout_are_errors() {
        let text = plan("[setup]\nrun = \" \"\nkey = [\"../secret\"]\ntimeout = \"soon\"\n");
        let error = parse(Path::new("plans/s.toml"), text).unwrap_err();
        let error: Vec<String> = error.all().map(|e| e.to_string()).collect();
        let error = error.join("\n");
        for expected in [
            "invalid `[setup] key` file `../secret`",
            "invalid `[setup] timeout` `soon`",
            "`[setup] run` is empty",
        ] {
            assert!(error.contains(expected), "{expected} missing from {error}");
        }
    }

    #[test]
    fn setup_and_cleanup_run_on_a_cluster_too() {
        let text = plan(
            "[setup]\nrun = \"npm ci\"\n\n[cleanup]\nrun = \"true\"\n\n[executor]\nkind = \"slurm\"\n",
        );
        let plan = parse(Path::new("plans/s.toml"), text).unwrap();
        assert!(plan.setup.is_some() && plan.cleanup.is_some());
    }

    #[test]
    fn a_task_may_skip_setup_and_warm_worktrees() {
        let text = "[setup]\nrun = \"true\"\n\n[defaults]\nwarm = false\n\n[[task]]\nid = \"a\"\nrun = \"true\"\nsetup = false\n\n[[task]]\nid = \"b\"\nrun = \"true\"\nwarm = true\n";
        let plan = parse(Path::new("plans/s.toml"), text.to_string()).unwrap();
        assert!(!plan.tasks[0].setup);
        assert!(!plan.tasks[0].warm_by_default(2));
        assert!(plan.tasks[1].setup);
        assert!(plan.tasks[1].warm_by_default(2));
    }
}
