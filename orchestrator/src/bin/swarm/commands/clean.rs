//! `swarm clean`: the command line around the library's cleaning.

use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::exit;

use crate::Failure;
use crate::common::{check_name, invalid_or_internal, open_repo, warn_skipped};

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
/// `swarm clean --gone`.
pub(crate) fn cmd_clean(cwd: &Path, args: CleanArgs) -> Result<i32, Failure> {
    if args.gone {
        return clean_gone(args.worktrees.map(|dir| cwd.join(dir)));
    }
    let which = Which::of(args.run, args.all, args.older_than.as_deref())?;
    clean(cwd, which, args.refs, args.force, args.caches, args.warm)
}

/// Which runs `swarm clean` frees.
pub(crate) enum Which {
    /// One run (default: the latest).
    One(Option<String>),
    /// Every run (`--all`).
    All,
    /// Every run that started longer ago than this (`--older-than`).
    OlderThan(std::time::Duration),
}

impl Which {
    pub(crate) fn of(
        run: Option<String>,
        all: bool,
        older_than: Option<&str>,
    ) -> Result<Self, Failure> {
        match (older_than, all) {
            (Some(age), _) => humantime::parse_duration(age)
                .map(Which::OlderThan)
                .map_err(|e| {
                    Failure::Invalid(anyhow!(
                        "clean runs older than `{age}`: {e}\nhelp: write an age like 7d, 12h or 30m"
                    ))
                }),
            (None, true) => Ok(Which::All),
            (None, false) => Ok(Which::One(run)),
        }
    }
}

/// `swarm clean`: frees each run's worktrees and scratch space.
pub(crate) fn clean(
    cwd: &Path,
    which: Which,
    refs: bool,
    force: bool,
    caches: bool,
    warm: bool,
) -> Result<i32, Failure> {
    use swarm_orchestrator::escape;
    use swarm_orchestrator::state::State;
    if let Which::One(Some(run)) = &which {
        check_name(run)?;
    }
    let repo = open_repo(cwd)?;
    let state_err = |e: swarm_orchestrator::state::StateError| invalid_or_internal(e.into());
    State::check_untracked(&repo).map_err(state_err)?;
    let Some(state) = State::open(&repo.workdir).map_err(state_err)? else {
        println!("nothing to clean: no runs in {}", repo.workdir.display());
        return Ok(exit::SUCCESS);
    };
    let known = swarm_orchestrator::clean::runs(&state).map_err(state_err)?;
    let runs = match which {
        Which::All => known,
        Which::OlderThan(age) => {
            // Proven old by its journal's first event: a run without a
            // readable one is left for `swarm clean RUN`.
            let before = std::time::SystemTime::now() - age;
            known
                .into_iter()
                .filter(|run| {
                    swarm_orchestrator::clean::started(&state, run)
                        .is_some_and(|started| started < before)
                })
                .collect()
        }
        Which::One(run) => {
            let Some(run) = run.or(state.latest().map_err(state_err)?) else {
                println!("nothing to clean: no runs in {}", repo.workdir.display());
                return Ok(exit::SUCCESS);
            };
            if !known.contains(&run) {
                return Err(Failure::Invalid(anyhow!(
                    "clean run `{run}`: no such run in {} (runs: {})",
                    repo.workdir.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            vec![run]
        }
    };
    // Every run's layout is checked before anything is removed: a link
    // anywhere refuses the whole command.
    for run in &runs {
        state.check_run(run).map_err(state_err)?;
    }
    let mut total = 0;
    let mut code = exit::SUCCESS;
    for run in runs {
        match swarm_orchestrator::clean::clean(&repo, &state, &run, refs, force) {
            Ok(c) => {
                warn_skipped(&c.skipped);
                total += c.bytes_freed;
                // Each size next to what held it.
                println!(
                    "run {}: removed {} worktree{} ({}) and {} tmp director{} ({})",
                    c.run,
                    c.worktrees,
                    if c.worktrees == 1 { "" } else { "s" },
                    bytesize::ByteSize::b(c.worktree_bytes),
                    c.tmp_dirs,
                    if c.tmp_dirs == 1 { "y" } else { "ies" },
                    bytesize::ByteSize::b(c.tmp_bytes)
                );
                for (task, r) in &c.kept {
                    println!("  kept {task}'s uncommitted work on {r}");
                }
                if c.unstarted {
                    println!(
                        "  it was stopped before its start was recorded (none of its tasks ran): removed it whole, its name is free"
                    );
                }
                let branch = format!("swarm/{}", c.run);
                for r in &c.refs_deleted {
                    println!("  deleted {r}: its work is on {branch}");
                }
                for k in &c.refs_kept {
                    println!("  {}", kept_ref(k, &branch));
                }
                print_branch_fate(c.branch.as_ref());
                for problem in &c.problems {
                    eprintln!("error: run {}: failed to {}", c.run, escape::line(problem));
                    code = exit::TASKS_FAILED;
                }
            }
            Err(e) => {
                eprintln!("error: failed to {}", escape::line(&e.to_string()));
                code = exit::TASKS_FAILED;
            }
        }
    }
    // Caches are the repository's, not a run's: after every run.
    match caches {
        true => match swarm_orchestrator::clean::free_caches(&repo, &state) {
            Ok(freed) => {
                for c in &freed.removed {
                    total += c.bytes;
                    println!(
                        "removed build cache {} ({})",
                        escape::line(&c.path.display().to_string()),
                        bytesize::ByteSize::b(c.bytes)
                    );
                }
                for problem in &freed.problems {
                    eprintln!("error: failed to {}", escape::line(problem));
                    code = exit::TASKS_FAILED;
                }
            }
            Err(e) => {
                eprintln!("error: failed to {}", escape::line(&e.to_string()));
                code = exit::TASKS_FAILED;
            }
        },
        false => match swarm_orchestrator::clean::caches(&repo, &state) {
            // Empty ones (made for tools a run never used) are not news.
            Ok(kept) if kept.iter().any(|c| c.bytes > 0) => {
                let kept: Vec<_> = kept.into_iter().filter(|c| c.bytes > 0).collect();
                let bytes: u64 = kept.iter().map(|c| c.bytes).sum();
                println!(
                    "kept {} of build caches (swarm clean --caches frees them):",
                    bytesize::ByteSize::b(bytes)
                );
                for c in &kept {
                    println!(
                        "  {} ({})",
                        escape::line(&c.path.display().to_string()),
                        bytesize::ByteSize::b(c.bytes)
                    );
                }
            }
            Ok(_) => {}
            // Listing is only a courtesy: what was cleaned stays cleaned.
            Err(e) => eprintln!(
                "warning: failed to list the build caches: {}",
                escape::line(&e.to_string())
            ),
        },
    }
    // Warm worktrees and kept setups are the repository's too.
    if warm {
        match swarm_orchestrator::clean::free_warm(&repo, &state) {
            Ok(freed) => {
                for (path, bytes) in &freed.removed {
                    total += bytes;
                    println!(
                        "removed {} ({})",
                        escape::line(&path.display().to_string()),
                        bytesize::ByteSize::b(*bytes)
                    );
                }
                for (path, why) in &freed.kept {
                    println!(
                        "kept warm worktree {}: {}",
                        escape::line(&path.display().to_string()),
                        escape::line(why)
                    );
                }
                for problem in &freed.problems {
                    eprintln!("error: failed to {}", escape::line(problem));
                    code = exit::TASKS_FAILED;
                }
            }
            Err(e) => {
                eprintln!("error: failed to {}", escape::line(&e.to_string()));
                code = exit::TASKS_FAILED;
            }
        }
    }
    println!("freed {}", bytesize::ByteSize::b(total));
    if code != exit::SUCCESS {
        eprintln!("swarm clean left the above in place; everything else was freed");
    }
    Ok(code)
}

/// What `clean --refs` did with the integration branch, with what brings
/// it back or how to delete it anyway.
pub(crate) fn print_branch_fate(fate: Option<&swarm_orchestrator::clean::BranchFate>) {
    use swarm_orchestrator::clean::BranchFate;
    match fate {
        None => {}
        Some(BranchFate::Deleted { name, was }) => {
            let short = was.to_string();
            println!(
                "  deleted branch {name} (was {})",
                short.get(..10).unwrap_or(&short)
            );
        }
        Some(BranchFate::Unmerged { name, tip }) => {
            let short = tip.to_string();
            println!(
                "  kept branch {name}: its tip {} is on no other branch (merge it first, or pass --force to delete it anyway)",
                short.get(..10).unwrap_or(&short)
            );
        }
        Some(BranchFate::CheckedOut { name }) => {
            println!("  kept branch {name}: it is checked out (switch to another branch first)");
        }
    }
}

/// One line on a ref `clean --refs` kept: which, and why deleting it would
/// lose work.
fn kept_ref(k: &swarm_orchestrator::clean::KeptRef, branch: &str) -> String {
    let why = match k.no_branch {
        true => format!("{branch} does not exist, so its work is on no branch"),
        false => format!("its work is not on {branch}"),
    };
    let what = match (&k.task, k.attempt) {
        (Some((task, status)), false) if task.contains('/') => format!(" (subtask, {status})"),
        (Some((_, status)), false) => format!(" ({status})"),
        (Some((task, status)), true) => {
            format!(" (an earlier attempt of task `{task}`, now {status})")
        }
        (None, _) => String::new(),
    };
    format!("kept {}: {why}{what}", k.name)
}

/// `swarm clean --gone`: removes, under the worktree root, the homes of
/// repositories that no longer exist.
pub(crate) fn clean_gone(root: Option<std::path::PathBuf>) -> Result<i32, Failure> {
    use swarm_orchestrator::escape;
    let root = root.unwrap_or_else(|| {
        swarm_orchestrator::assemble::grants::default_worktree_root(&crate::host::current())
    });
    let shown = escape::line(&root.display().to_string()).into_owned();
    let gone = swarm_orchestrator::worktree_home::remove_gone(&root)
        .map_err(|e| Failure::Internal(anyhow!("failed to {e}")))?;
    let mut total = 0;
    for home in &gone.removed {
        total += home.bytes;
        println!(
            "removed {} ({}): its repository {} no longer exists",
            escape::line(&home.path.display().to_string()),
            bytesize::ByteSize::b(home.bytes),
            escape::line(&home.repository)
        );
    }
    println!(
        "{} worktree home{} of existing repositories kept in {shown}",
        gone.live,
        if gone.live == 1 { "" } else { "s" }
    );
    for path in &gone.unknown {
        println!(
            "left {}: not a worktree home swarm made",
            escape::line(&path.display().to_string())
        );
    }
    let mut code = exit::SUCCESS;
    for problem in &gone.problems {
        eprintln!("error: failed to {}", escape::line(problem));
        code = exit::TASKS_FAILED;
    }
    println!("freed {}", bytesize::ByteSize::b(total));
    Ok(code)
}
