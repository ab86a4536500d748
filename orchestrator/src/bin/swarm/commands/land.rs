//! `swarm land RUN [--onto BRANCH] [--push REMOTE] [--dry-run]`: a run's
//! results onto the current tip of the branch it started from (or
//! `BRANCH`), which may have moved while it ran.
//!
//! When the branch is where the run started, it lands by fast-forward (the
//! run's branch, if its verify passed). Otherwise the results are merged
//! again, in the run's order, onto the tip, as a run of its own
//! (`<run>-land`, `swarm_orchestrator::run::land`): each result adopted,
//! the ones that now conflict run again on the branch as it is, the
//! run-wide verify on the result. Only if that run ends well is the branch
//! moved, from the tip it landed on (never over what moved meanwhile:
//! then it lands again), or pushed to `REMOTE` with `--force-with-lease`
//! semantics (the remote's branch must still be the tip it landed on).

use std::path::Path;

use anyhow::anyhow;
use git2::Oid;
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::git::short_id;
use swarm_orchestrator::run::land::Adopted;
use swarm_orchestrator::run::landing::{self, LandError, Trial};
use swarm_orchestrator::{exit, report};
use swarm_protocol::RunReport;

use crate::common::{check_name, invalid_or_internal, load_report, open_repo};
use crate::drive::Drive;
use crate::drive::{Mode, drive, saved_plan};
use crate::failure::Failure;

/// How many times a landing starts again because the branch moved while
/// it landed.
const MAX_LANDINGS: u32 = 3;

#[derive(Debug, clap::Args)]
pub struct LandArgs {
    /// The run to land (see `swarm runs`).
    pub run: String,
    /// The branch to land on (default: the branch the run started from).
    #[arg(long, value_name = "BRANCH")]
    pub onto: Option<String>,
    /// Push the landed branch to this remote (its branch of that name),
    /// never over what someone else pushed meanwhile.
    #[arg(long, value_name = "REMOTE")]
    pub push: Option<String>,
    /// Say what would happen, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub drive: Drive,
}

/// `swarm land`.
pub(crate) fn land(cwd: &Path, args: LandArgs) -> Result<i32, Failure> {
    check_name(&args.run)?;
    let repo = open_repo(cwd)?;
    let (run, report) = load_report(&repo, Some(&args.run))?;
    if swarm_orchestrator::run::is_driven(&report::run_dir(&repo.workdir, &run)) {
        return Err(Failure::Invalid(anyhow!(
            "land run `{run}`: it is still running; land it once it ends"
        )));
    }
    let branch = landing::target_branch(&repo, &run, args.onto.as_deref()).map_err(land_failure)?;
    landing::check_branch(
        &repo,
        &run,
        &branch,
        args.onto.as_deref(),
        args.push.as_deref(),
    )
    .map_err(land_failure)?;
    if args.push.is_none() {
        // Before any work: a branch checked out elsewhere is never moved.
        landing::not_checked_out_elsewhere(&repo, &branch, &run).map_err(land_failure)?;
    }
    let base = landing::oid(&report.base_commit, "the run's base").map_err(land_failure)?;
    let adopted = Adopted::of_run(&repo, &report).map_err(|e| invalid_or_internal(e.into()))?;
    if adopted.order.is_empty() {
        return Err(Failure::Invalid(anyhow!(
            "land run `{run}`: nothing of it is on its branch (no task was merged)"
        )));
    }
    // Whether the plan has a run-wide verify: then only a tree it passed
    // on lands.
    let verified = saved_plan(cwd, &repo, &run, "land")
        .map(|(plan, _)| plan.verify.is_some())
        .unwrap_or(!report.verify_runs.is_empty());
    for landing in 1..=MAX_LANDINGS {
        let onto = landing::tip_of(&repo, &branch, args.push.as_deref()).map_err(land_failure)?;
        let mut fast_forward = onto == base;
        if args.dry_run {
            let fast_forward = fast_forward.then_some(verified);
            return dry_run(&repo, &run, &report, &branch, onto, fast_forward, &adopted);
        }
        let tip = match fast_forward {
            true => match landing::fast_forward_tip(&repo, &run, &report, verified) {
                Ok(tip) => Some(tip),
                // Never verified (the run was stopped first, the verify
                // could not run): verified first, as a landing of its own.
                Err(LandError::Unverified { .. }) => {
                    eprintln!(
                        "run `{run}`'s branch was never verified: verifying it first, as a landing run"
                    );
                    fast_forward = false;
                    None
                }
                Err(e) => return Err(land_failure(e)),
            },
            false => None,
        };
        let landed = match tip {
            Some(tip) => tip,
            None => match land_run(cwd, &repo, &run, onto, &adopted, args.drive.clone())? {
                Ok(tip) => tip,
                Err(code) => return Ok(code),
            },
        };
        let moved = match &args.push {
            None => {
                landing::move_branch(&repo, &branch, landed, onto, &run).map_err(land_failure)?
            }
            Some(remote) => {
                let pushed =
                    landing::push(&repo, remote, &branch, landed, onto).map_err(land_failure)?;
                if pushed {
                    // The local branch of that name follows, as a push
                    // from it would leave it: only from the tip it landed
                    // on (fast-forward), never over work of its own.
                    follow_push(&repo, &branch, landed, onto, &run);
                }
                pushed
            }
        };
        if moved {
            let how = match fast_forward {
                true => "fast-forward",
                false => "merged again on its new tip",
            };
            let place = args
                .push
                .as_ref()
                .map_or_else(|| branch.clone(), |r| format!("{r}/{branch}"));
            println!(
                "landed run `{run}` on {place} ({how}): {} -> {}",
                short_id(onto),
                short_id(landed)
            );
            return Ok(exit::SUCCESS);
        }
        let next = match landing < MAX_LANDINGS {
            true => ": landing again on its new tip",
            false => "",
        };
        eprintln!(
            "`{branch}` moved while run `{run}` landed (landing {landing} of {MAX_LANDINGS}){next}"
        );
    }
    Err(Failure::Failed(anyhow!(
        "land run `{run}`: `{branch}` kept moving; nothing was changed, land it again"
    )))
}

/// The run's results merged again onto `onto`, as a run of their own: its
/// branch's tip if it ended well, else its exit code.
fn land_run(
    cwd: &Path,
    repo: &Repo,
    run: &str,
    onto: Oid,
    adopted: &Adopted,
    drive_args: Drive,
) -> Result<Result<Oid, i32>, Failure> {
    let wanted = format!("{run}-land");
    // A landing onto this same tip that was stopped: continued under its
    // own name, or, if it ended well (stopped between its verify and the
    // branch's move), taken as it is, its verify not run again.
    if let Some((name, earlier)) = earlier_landing(repo, &wanted, onto)? {
        let code = match earlier.exit_code {
            None => {
                eprintln!("landing run `{name}` of run `{run}` was stopped: resuming it");
                let (plan, original) = saved_plan(cwd, repo, &name, "land")?;
                drive(
                    repo.clone(),
                    plan,
                    &original.display().to_string(),
                    drive_args.clone(),
                    Mode::Resume {
                        run: name.clone(),
                        retry_failed: None,
                    },
                )?
            }
            Some(code) => {
                if code == exit::SUCCESS {
                    eprintln!(
                        "run `{run}` was landed onto {} as run `{name}`, which ended well: landing its branch",
                        short_id(onto)
                    );
                }
                code
            }
        };
        if code == exit::SUCCESS {
            return landed_tip(repo, &name).map(Ok);
        }
        if earlier.exit_code.is_none() {
            eprintln!(
                "run `{name}` did not end well: nothing was landed (its branch is swarm/{name})"
            );
            return Ok(Err(code));
        }
    }
    let (mut plan, original) = saved_plan(cwd, repo, run, "land")?;
    plan.select(&adopted.order)
        .map_err(|e| Failure::Invalid(anyhow!("land run `{run}`: failed to {e}")))?;
    plan.base = onto.to_string();
    plan.base_from = swarm_orchestrator::plan::BaseFrom::CommandLine;
    let name = swarm_orchestrator::run::free_run_name(repo, &wanted, |_| false)
        .map_err(invalid_or_internal)?;
    eprintln!(
        "landing run `{run}`: {} merged task{} again onto {} as run `{name}`",
        adopted.order.len(),
        if adopted.order.len() == 1 { "" } else { "s" },
        short_id(onto)
    );
    let code = drive(
        repo.clone(),
        plan,
        &original.display().to_string(),
        drive_args,
        Mode::Start {
            name: Some(name.clone()),
            worktrees: None,
            adopt: Some(std::sync::Arc::new(adopted.clone())),
        },
    )?;
    if code != exit::SUCCESS {
        eprintln!("run `{name}` did not end well: nothing was landed (its branch is swarm/{name})");
        return Ok(Err(code));
    }
    landed_tip(repo, &name).map(Ok)
}

/// The branch tip of landing run `name`, which ended well: the tree that
/// lands is one its verify passed on.
fn landed_tip(repo: &Repo, name: &str) -> Result<Oid, Failure> {
    let (_, landed) = load_report(repo, Some(name))?;
    let tip = landing::oid(&landed.integration_commit, "the landing run's branch")
        .map_err(land_failure)?;
    if !landed.verify_runs.is_empty() {
        landing::passed_on(repo, name, &landed, tip).map_err(land_failure)?;
    }
    Ok(tip)
}

/// The last landing run named after `wanted` (`<run>-land`, `-land-2`,
/// ...) if it landed onto `onto`: the one a landing stopped left.
fn earlier_landing(
    repo: &Repo,
    wanted: &str,
    onto: Oid,
) -> Result<Option<(String, RunReport)>, Failure> {
    let mut last = None;
    for n in 1.. {
        let name = match n {
            1 => wanted.to_string(),
            n => format!("{wanted}-{n}"),
        };
        if !report::run_dir(&repo.workdir, &name).is_dir() {
            break;
        }
        last = Some(name);
    }
    let Some(name) = last else {
        return Ok(None);
    };
    // One that never recorded its start ran nothing: a new one goes there.
    let Ok((name, earlier)) = load_report(repo, Some(&name)) else {
        return Ok(None);
    };
    Ok((earlier.base_commit == onto.to_string()).then_some((name, earlier)))
}

/// Moves the local branch `branch` to `landed` after a push, when it was
/// at `onto` (the remote's tip the landing started from); else leaves it,
/// saying so.
fn follow_push(repo: &Repo, branch: &str, landed: Oid, onto: Oid, run: &str) {
    let Some(local) = repo
        .branch_of(branch)
        .and_then(|_| repo.resolve(&format!("refs/heads/{branch}")).ok())
    else {
        return;
    };
    if local != onto {
        return;
    }
    match landing::move_branch(repo, branch, landed, onto, run) {
        Ok(true) => {}
        Ok(false) => eprintln!("{branch} here moved meanwhile: left where it is"),
        Err(e) => eprintln!("{branch} here was left where it is: {e}"),
    }
}

/// What `land` would do, with a trial merge of each result (in memory)
/// to say which would conflict.
fn dry_run(
    repo: &Repo,
    run: &str,
    report: &RunReport,
    branch: &str,
    onto: Oid,
    // `Some(verified)` when it lands by fast-forward: whether the plan has
    // a run-wide verify.
    fast_forward: Option<bool>,
    adopted: &Adopted,
) -> Result<i32, Failure> {
    if let Some(verified) = fast_forward {
        let tip = landing::fast_forward_tip(repo, run, report, verified).map_err(land_failure)?;
        println!(
            "dry run: run `{run}` would land on {branch} by fast-forward: {} -> {}",
            short_id(onto),
            short_id(tip)
        );
        return Ok(exit::SUCCESS);
    }
    println!(
        "dry run: {branch} moved from the run's base {} to {}; run `{run}`'s {} merged tasks would be merged again onto it, in order:",
        short_id(landing::oid(&report.base_commit, "the run's base").map_err(land_failure)?),
        short_id(onto),
        adopted.order.len()
    );
    for (id, trial) in landing::trial_merges(repo, onto, adopted).map_err(land_failure)? {
        let said = match trial {
            Trial::Merges => "merges".to_string(),
            Trial::AlreadyIn => "is in already".to_string(),
            Trial::Conflicts(files) => format!(
                "conflicts in {}: it would run again on the branch as it is then",
                files.join(", ")
            ),
        };
        println!("  {id:<20} {said}");
    }
    println!("then the run-wide verify, if the plan has one; nothing was changed");
    Ok(exit::SUCCESS)
}

/// A landing's error as the failure the binary reports.
fn land_failure(e: LandError) -> Failure {
    match e {
        LandError::Repo(e) => invalid_or_internal(e.into()),
        e if e.is_invalid_input() => Failure::Invalid(anyhow!("{e}")),
        e if e.is_failure_of_the_work() => Failure::Failed(anyhow!("{e}")),
        e => Failure::Internal(anyhow!("{e}")),
    }
}
