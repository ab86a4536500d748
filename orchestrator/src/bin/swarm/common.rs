//! What several commands share: opening the repository, a plan and a
//! run's state, checking a run name, and turning a library error into the
//! failure the binary reports. It imports no command.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::plan::{self, Plan};
use swarm_orchestrator::run::{self, RunError};
use swarm_orchestrator::{journal, report};

use crate::failure::Failure;

pub(crate) fn load_plan(cwd: &Path, path: &Path) -> Result<Plan, Failure> {
    load_plan_at(cwd, path, None)
}

/// [`load_plan`] for a run from `base` (`--base`) when given: the commit
/// whose files a matrix's `glob` lists.
pub(crate) fn load_plan_at(cwd: &Path, path: &Path, base: Option<&str>) -> Result<Plan, Failure> {
    let full = cwd.join(path);
    let at = plan::origin::files::RunIn {
        repo: cwd.to_path_buf(),
        base: base.map(str::to_string),
    };
    let mut plan = plan::load_in(&full, at).map_err(Failure::Plan)?;
    // Messages name the plan as the user wrote it, not as an absolute path.
    plan.source.name = path.display().to_string();
    Ok(plan)
}

pub(crate) fn open_repo(cwd: &Path) -> Result<Repo, Failure> {
    Repo::discover(cwd).map_err(|e| {
        Failure::Invalid(anyhow!(
            "{e}\nhelp: run swarm inside a git repository (`git init` creates one)"
        ))
    })
}

/// Refuses an invalid run name given on the command line (exit 2), before
/// anything is looked at or created.
pub(crate) fn check_name(name: &str) -> Result<(), Failure> {
    run::check_run_name(name).map_err(invalid_or_internal)
}

/// The checked state directory for reading run `run` (`None` if swarm
/// never ran here): untracked, no link in the run's layout.
pub(crate) fn open_state(
    repo: &Repo,
    run: &str,
) -> Result<Option<swarm_orchestrator::state::State>, Failure> {
    run::open_run_state(repo, run).map_err(invalid_or_internal)
}

/// The latest run of `repo`, if any (read without following a link).
pub(crate) fn latest(repo: &Repo) -> Result<Option<String>, Failure> {
    swarm_orchestrator::state::State::check_untracked(repo)
        .map_err(|e| invalid_or_internal(e.into()))?;
    run::latest_run(&repo.workdir).map_err(invalid_or_internal)
}

/// Warns, on stderr, about journal lines a tolerant read skipped.
pub fn warn_skipped(skipped: &[journal::Skipped]) {
    for s in skipped {
        eprintln!(
            "warning: {}",
            swarm_orchestrator::escape::line(&s.to_string())
        );
    }
}

pub(crate) fn invalid_or_internal(e: RunError) -> Failure {
    use swarm_orchestrator::worktree_home::HomeError;
    let state_help;
    let help = match &e {
        RunError::State(s) | RunError::Home(HomeError::State(s)) if s.help().is_some() => {
            state_help = format!("\nhelp: {}", s.help().unwrap_or_default());
            state_help.as_str()
        }
        RunError::NameTaken { .. } => "\nhelp: pick another --name, or omit it to get a free one",
        RunError::SwarmBranchExists { .. } => {
            "\nhelp: rename that branch (git branch -m swarm NEW)"
        }
        RunError::Git(swarm_orchestrator::git::GitError::UnknownRev { empty: true, .. }) => {
            "\nhelp: tasks start from a commit: commit something first (git add -A && git commit -m init)"
        }
        RunError::Git(swarm_orchestrator::git::GitError::UnknownRev { .. }) => {
            "\nhelp: set `base` in [swarm] (or --base) to an existing branch, tag or commit"
        }
        RunError::Home(HomeError::InsideRepository { .. } | HomeError::Relative { .. }) => {
            "\nhelp: choose an absolute directory outside the repository (--worktrees DIR, or `worktrees` in [swarm])"
        }
        RunError::Home(HomeError::Foreign { .. }) => {
            "\nhelp: choose another directory for worktrees (--worktrees DIR), or remove that one if nothing of it is needed"
        }
        _ => "",
    };
    if e.is_invalid_input() {
        Failure::Invalid(anyhow!("{e}{help}"))
    } else {
        Failure::Internal(anyhow!(e))
    }
}

/// `e`, and for a base that names no commit, where that base was given: at
/// its line when the plan set it, or named as `--base`'s.
pub(crate) fn base_failure(plan: &Plan, e: RunError) -> Failure {
    if let RunError::Git(swarm_orchestrator::git::GitError::UnknownRev {
        empty: false, repo, ..
    }) = &e
    {
        if let Some(error) = plan.unknown_base(repo) {
            return Failure::Plan(Box::new(error));
        }
        if plan.base_from == plan::BaseFrom::CommandLine {
            return Failure::Invalid(anyhow!(
                "{e}\nhelp: `{}` was given with --base; pass an existing branch, tag or commit",
                plan.base
            ));
        }
    }
    invalid_or_internal(e)
}

pub(crate) fn load_report(
    repo: &Repo,
    run: Option<&str>,
) -> Result<(String, swarm_protocol::RunReport), Failure> {
    load_run(repo, run).map(|(name, _, report)| (name, report))
}

/// Run `run` (default: the latest) as its journal says: its name, its
/// events and their fold.
pub(crate) fn load_run(
    repo: &Repo,
    run: Option<&str>,
) -> Result<
    (
        String,
        Vec<swarm_protocol::Event>,
        swarm_protocol::RunReport,
    ),
    Failure,
> {
    let name = match run {
        Some(name) => {
            check_name(name)?;
            name.to_string()
        }
        None => latest(repo)?.ok_or_else(|| {
            Failure::Invalid(anyhow!(
                "find a run in {}: swarm has not run here yet\nhelp: start one with `swarm run PLAN`",
                repo.workdir.display()
            ))
        })?,
    };
    open_state(repo, &name)?;
    let path = report::run_dir(&repo.workdir, &name).join(swarm_orchestrator::layout::JOURNAL);
    if !path.exists() {
        return Err(Failure::Invalid(anyhow!(
            "find run `{name}`: no journal at {}\nhelp: runs are listed in .swarm/runs/",
            path.display()
        )));
    }
    let (events, skipped) =
        journal::read_tolerant(&path).map_err(|e| Failure::Internal(e.into()))?;
    warn_skipped(&skipped);
    let report = report::fold(&events)
        .ok_or_else(|| Failure::Internal(anyhow!("read run `{name}`: its journal is empty")))?;
    Ok((name, events, report))
}

/// The configuration file `swarm plan` reads unless `--config` names one.
pub const CONFIG_FILE: &str = "swarm.toml";

/// Model traffic kept in cassettes, or served from them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TapeArgs {
    /// Record every model exchange (requests without credentials, answers
    /// event by event) as one JSONL cassette per task attempt in DIR.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Answer every model call from the cassettes in DIR instead of the
    /// provider: no API key or network needed. A call that was not
    /// recorded fails its task, naming it.
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,
    /// With --replay: send calls that were not recorded to the provider
    /// (with --record, they are kept).
    #[arg(long, requires = "replay")]
    pub replay_fallthrough: bool,
}

impl TapeArgs {
    /// The settings, with relative directories taken from `cwd`.
    pub fn settings(
        &self,
        cwd: &std::path::Path,
    ) -> swarm_orchestrator::gateway::tape::TapeSettings {
        swarm_orchestrator::gateway::tape::TapeSettings {
            record: self.record.as_ref().map(|d| cwd.join(d)),
            replay: self.replay.as_ref().map(|d| cwd.join(d)),
            fallthrough: self.replay_fallthrough,
        }
    }
}

/// The repository's root, links resolved: where an untrusted plan's file
/// names are read inside.
pub(crate) fn canonical_root(repo: &swarm_orchestrator::git::Repo) -> Result<PathBuf, Failure> {
    repo.workdir.canonicalize().map_err(|e| {
        Failure::Internal(anyhow!(
            "resolve the repository {}: {e}",
            repo.workdir.display()
        ))
    })
}
