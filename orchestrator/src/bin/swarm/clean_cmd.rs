//! `swarm clean`: the command line around the library's cleaning.

use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::exit;

use crate::Failure;
use crate::cli::*;

/// `swarm clean`: frees each run's worktrees and scratch space.
pub(crate) fn clean(
    cwd: &Path,
    run: Option<String>,
    all: bool,
    refs: bool,
    force: bool,
) -> Result<i32, Failure> {
    use swarm_orchestrator::escape;
    use swarm_orchestrator::state::State;
    if let Some(run) = &run {
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
    let runs = if all {
        known
    } else {
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
                for r in &c.refs_deleted {
                    println!("  deleted {r} (merged)");
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
