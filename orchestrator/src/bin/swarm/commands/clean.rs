//! `swarm clean`: the command line around the library's cleaning.

use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::clean::{self, SelectError, Which};
use swarm_orchestrator::{escape, exit, view};

use crate::common::{check_name, invalid_or_internal, open_repo, warn_skipped};
use crate::failure::Failure;

/// `swarm clean`'s command line.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// The run (see `.swarm/runs/`).
    #[arg(conflicts_with = "all")]
    run: Option<String>,
    /// Every run of the repository.
    #[arg(long)]
    all: bool,
    /// Every run that started longer ago than AGE (`7d`, `12h`).
    #[arg(long, value_name = "AGE", conflicts_with_all = ["run", "all"])]
    older_than: Option<String>,
    /// Also delete the run's refs whose commits are on the integration
    /// branch swarm/<run> (git decides, not the task's status); the others
    /// are kept and listed with why.
    ///
    /// Also deletes the integration branch `swarm/<run>` if its tip is
    /// on another branch or HEAD (it was merged somewhere); otherwise it
    /// is kept, and said so.
    #[arg(long)]
    refs: bool,
    /// With --refs: delete the integration branch even if its tip is on
    /// no other branch (as `git branch -D`). Never a checked-out one.
    #[arg(long, requires = "refs")]
    force: bool,
    /// Also free the repository's build caches (shared by its tasks
    /// across runs); refused while one of its runs is being driven.
    #[arg(long)]
    caches: bool,
    /// Also free the repository's warm worktrees (kept between runs at
    /// one path per task) and kept setups; one a run is using, or one
    /// an interrupted run left, is kept and said so.
    #[arg(long)]
    warm: bool,
    /// Instead: remove, machine-wide, the worktree homes (worktrees and
    /// caches) of repositories that no longer exist.
    #[arg(long, conflicts_with_all = ["run", "all", "refs", "caches", "warm"])]
    gone: bool,
    /// With --gone: the root of worktree homes (default: where runs put
    /// them, ~/.cache/swarm/worktrees).
    #[arg(long, value_name = "DIR", requires = "gone")]
    worktrees: Option<std::path::PathBuf>,
}

/// `swarm clean [RUN | --all | --older-than AGE] [--refs] ...` or
/// `swarm clean --gone`: frees each run's worktrees and scratch space.
pub(crate) fn cmd_clean(cwd: &Path, args: CleanArgs) -> Result<i32, Failure> {
    if args.gone {
        return clean_gone(args.worktrees.map(|dir| cwd.join(dir)));
    }
    let which = match (args.older_than.as_deref(), args.all) {
        (Some(age), _) => Which::OlderThan(humantime::parse_duration(age).map_err(|e| {
            Failure::Invalid(anyhow!(
                "clean runs older than `{age}`: {e}\nhelp: write an age like 7d, 12h or 30m"
            ))
        })?),
        (None, true) => Which::All,
        (None, false) => Which::One(args.run),
    };
    use swarm_orchestrator::state::State;
    if let Which::One(Some(run)) = &which {
        check_name(run)?;
    }
    let repo = open_repo(cwd)?;
    let state_err = |e: swarm_orchestrator::state::StateError| invalid_or_internal(e.into());
    State::check_untracked(&repo).map_err(state_err)?;
    let nothing = || println!("nothing to clean: no runs in {}", repo.workdir.display());
    let Some(state) = State::open(&repo.workdir).map_err(state_err)? else {
        nothing();
        return Ok(exit::SUCCESS);
    };
    let now = std::time::SystemTime::now();
    let runs = match clean::select(&state, &repo.workdir, which, now) {
        Ok(Some(runs)) => runs,
        Ok(None) => {
            nothing();
            return Ok(exit::SUCCESS);
        }
        Err(SelectError::State(e)) => return Err(state_err(e)),
        Err(e) => return Err(Failure::Invalid(anyhow!("{e}"))),
    };
    let mut total = 0;
    let mut code = exit::SUCCESS;
    // What could not be freed is said, and the command fails.
    let mut failed = |whose: &str, problem: &str| {
        eprintln!("error: {whose}failed to {}", escape::line(problem));
        code = exit::TASKS_FAILED;
    };
    for run in runs {
        match clean::clean(&repo, &state, &run, args.refs, args.force) {
            Ok(c) => {
                warn_skipped(&c.skipped);
                total += c.bytes_freed;
                print!("{}", view::clean::run(&c));
                let whose = format!("run {}: ", c.run);
                c.problems.iter().for_each(|p| failed(&whose, p));
            }
            Err(e) => failed("", &e.to_string()),
        }
    }
    // Caches are the repository's, not a run's: after every run.
    match args.caches {
        true => match clean::free_caches(&repo, &state) {
            Ok(freed) => {
                for c in &freed.removed {
                    total += c.bytes;
                    println!("{}", view::clean::cache_removed(c));
                }
                freed.problems.iter().for_each(|p| failed("", p));
            }
            Err(e) => failed("", &e.to_string()),
        },
        false => match clean::caches(&repo, &state) {
            Ok(kept) => print!("{}", view::clean::caches_kept(&kept).unwrap_or_default()),
            // Listing is only a courtesy: what was cleaned stays cleaned.
            Err(e) => eprintln!(
                "warning: failed to list the build caches: {}",
                escape::line(&e.to_string())
            ),
        },
    }
    // Warm worktrees and kept setups are the repository's too.
    if args.warm {
        match clean::free_warm(&repo, &state) {
            Ok(freed) => {
                total += freed.removed.iter().map(|(_, bytes)| bytes).sum::<u64>();
                print!("{}", view::clean::warm(&freed));
                freed.problems.iter().for_each(|p| failed("", p));
            }
            Err(e) => failed("", &e.to_string()),
        }
    }
    println!("{}", view::clean::freed(total));
    if code != exit::SUCCESS {
        eprintln!("swarm clean left the above in place; everything else was freed");
    }
    Ok(code)
}

/// `swarm clean --gone`: removes, under the worktree root, the homes of
/// repositories that no longer exist.
pub(crate) fn clean_gone(root: Option<std::path::PathBuf>) -> Result<i32, Failure> {
    let root = root.unwrap_or_else(|| {
        swarm_orchestrator::assemble::grants::default_worktree_root(&crate::host::current())
    });
    let gone = swarm_orchestrator::worktree_home::remove_gone(&root)
        .map_err(|e| Failure::Internal(anyhow!("failed to {e}")))?;
    print!("{}", view::clean::gone(&gone, &root));
    let mut code = exit::SUCCESS;
    for problem in &gone.problems {
        eprintln!("error: failed to {}", escape::line(problem));
        code = exit::TASKS_FAILED;
    }
    let total = gone.removed.iter().map(|home| home.bytes).sum();
    println!("{}", view::clean::freed(total));
    Ok(code)
}
