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
use swarm_orchestrator::run::land::Adopted;
use swarm_orchestrator::{exit, report};
use swarm_protocol::{EventBody, RunReport};

use crate::Failure;
use crate::common::{check_name, invalid_or_internal, load_report, open_repo};
use crate::drive::Drive;
use crate::drive::{Mode, drive, saved_plan};

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
    let branch = target_branch(&repo, &run, args.onto.as_deref())?;
    check_branch(
        &repo,
        &run,
        &branch,
        args.onto.as_deref(),
        args.push.as_deref(),
    )?;
    let base = oid(&report.base_commit, "the run's base")?;
    let adopted = Adopted::of_run(&repo, &report).map_err(|e| invalid_or_internal(e.into()))?;
    if adopted.order.is_empty() {
        return Err(Failure::Invalid(anyhow!(
            "land run `{run}`: nothing of it is on its branch (no task was merged)"
        )));
    }
    for landing in 1..=MAX_LANDINGS {
        let onto = tip_of(&repo, &branch, args.push.as_deref())?;
        let fast_forward = onto == base;
        if args.dry_run {
            return dry_run(&repo, &run, &report, &branch, onto, fast_forward, &adopted);
        }
        let landed = if fast_forward {
            fast_forward_tip(&run, &report)?
        } else {
            match land_run(cwd, &repo, &run, onto, &adopted, args.drive.clone())? {
                Ok(tip) => tip,
                Err(code) => return Ok(code),
            }
        };
        let moved = match &args.push {
            None => move_branch(&repo, &branch, landed, onto, &run)?,
            Some(remote) => push(&repo, remote, &branch, landed, onto)?,
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
                short(onto),
                short(landed)
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

/// Refuses, before anything runs, to land on what is not a branch:
/// `land` moves a branch, so `--onto` names one (with `--push`, one of the
/// remote), never a tag, a commit or a revision such as `main~1`.
fn check_branch(
    repo: &Repo,
    run: &str,
    branch: &str,
    onto: Option<&str>,
    remote: Option<&str>,
) -> Result<(), Failure> {
    let valid = git2::Reference::is_valid_name(&format!("refs/heads/{branch}"));
    let here = repo.branch_of(branch).is_some();
    match (onto, remote) {
        (_, Some(_)) if valid => Ok(()),
        (_, None) if here => Ok(()),
        (None, _) => Err(Failure::Invalid(anyhow!(
            "land run `{run}`: the branch it started from, `{branch}`, is not here any more\nhelp: name the branch to land on with --onto BRANCH"
        ))),
        (Some(onto), Some(remote)) => Err(Failure::Invalid(anyhow!(
            "land run `{run}`: --onto takes a branch, and `{onto}` is not a branch name\nhelp: name a branch of {remote} (`git ls-remote --heads {remote}` lists them)"
        ))),
        (Some(onto), None) => Err(Failure::Invalid(match repo.resolve(onto) {
            Ok(commit) => anyhow!(
                "land run `{run}`: --onto takes a branch, and `{onto}` is not one (it names commit {})\nhelp: make a branch there and land on it: `git branch NAME {onto}`, then `swarm land {run} --onto NAME`",
                short(commit)
            ),
            Err(_) => anyhow!(
                "land run `{run}`: --onto takes a branch, and there is no branch `{onto}` here\nhelp: name one of this repository's branches (`git branch --list`)"
            ),
        })),
    }
}

/// The branch to land on: `onto`, else the one the run started from.
fn target_branch(repo: &Repo, run: &str, onto: Option<&str>) -> Result<String, Failure> {
    if let Some(onto) = onto {
        return Ok(onto.strip_prefix("refs/heads/").unwrap_or(onto).to_string());
    }
    let journal = report::run_dir(&repo.workdir, run).join(swarm_orchestrator::layout::JOURNAL);
    let started = swarm_orchestrator::journal::run_started(&journal);
    match started.map(|e| e.body) {
        Some(EventBody::RunStarted {
            base_branch: Some(branch),
            ..
        }) => Ok(branch),
        _ => Err(Failure::Invalid(anyhow!(
            "land run `{run}`: it did not start from a branch swarm knows\nhelp: name one with --onto BRANCH"
        ))),
    }
}

/// The tip to land on: the branch here, or (with `--push`) the remote's,
/// fetched now.
fn tip_of(repo: &Repo, branch: &str, remote: Option<&str>) -> Result<Oid, Failure> {
    let Some(remote) = remote else {
        return repo
            .resolve(&format!("refs/heads/{branch}"))
            .map_err(|e| invalid_or_internal(e.into()));
    };
    let tracking = format!("refs/swarm-land/{remote}/{branch}");
    let mut cmd = repo.git(&repo.workdir);
    cmd.args([
        "fetch",
        "--quiet",
        "--no-tags",
        "--",
        remote,
        &format!("+refs/heads/{branch}:{tracking}"),
    ]);
    // Its message read below in English, whatever the locale.
    cmd.env("LC_ALL", "C");
    let out = cmd
        .output()
        .map_err(|e| Failure::Internal(anyhow!("fetch {branch} from {remote}: run git: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = swarm_orchestrator::escape::text(said.trim());
        if said.contains("couldn't find remote ref") {
            return Err(Failure::Invalid(anyhow!(
                "fetch {branch} from {remote}: {remote} has no branch `{branch}`\nhelp: name one of its branches with --onto (`git ls-remote --heads {remote}` lists them), or push one there first: `git push {remote} REV:refs/heads/{branch}`"
            )));
        }
        return Err(Failure::Failed(anyhow!(
            "fetch {branch} from {remote}: {said}"
        )));
    }
    repo.resolve(&tracking)
        .map_err(|e| invalid_or_internal(e.into()))
}

/// The run's own branch, when it may land as it is: its run-wide verify
/// (if it has one) passed on it.
fn fast_forward_tip(run: &str, report: &RunReport) -> Result<Oid, Failure> {
    let tip = oid(&report.integration_commit, "the run's branch")?;
    if let Some(last) = report
        .verify_runs
        .iter()
        .rfind(|r| r.commit == report.integration_commit)
        && !last.passed
    {
        return Err(Failure::Failed(anyhow!(
            "land run `{run}`: its branch fails its run-wide verify (see `swarm status {run}`); nothing was landed"
        )));
    }
    if report.exit_code.is_none() {
        return Err(Failure::Invalid(anyhow!(
            "land run `{run}`: it did not end (resume it first: `swarm resume {run}`)"
        )));
    }
    Ok(tip)
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
    let (mut plan, original) = saved_plan(cwd, repo, run, "land")?;
    plan.select(&adopted.order)
        .map_err(|e| Failure::Invalid(anyhow!("land run `{run}`: failed to {e}")))?;
    plan.base = onto.to_string();
    plan.base_from = swarm_orchestrator::plan::BaseFrom::CommandLine;
    let wanted = format!("{run}-land");
    let name = swarm_orchestrator::run::free_run_name(repo, &wanted, |_| false)
        .map_err(invalid_or_internal)?;
    eprintln!(
        "landing run `{run}`: {} merged task{} again onto {} as run `{name}`",
        adopted.order.len(),
        if adopted.order.len() == 1 { "" } else { "s" },
        short(onto)
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
    let (_, landed) = load_report(repo, Some(&name))?;
    Ok(Ok(oid(
        &landed.integration_commit,
        "the landing run's branch",
    )?))
}

/// Moves `branch` from `onto` to `landed` (which descends from it), only
/// if it is still at `onto`: whether it was. The branch checked out here
/// moves with its working tree, by `git merge --ff-only` (which refuses to
/// overwrite local changes), never under it.
fn move_branch(
    repo: &Repo,
    branch: &str,
    landed: Oid,
    onto: Oid,
    run: &str,
) -> Result<bool, Failure> {
    if repo.branch_of("HEAD").as_deref() != Some(branch) {
        return repo
            .move_ref(
                &format!("refs/heads/{branch}"),
                landed,
                onto,
                &format!("swarm land {run}"),
            )
            .map_err(|e| invalid_or_internal(e.into()));
    }
    let head = repo
        .resolve("HEAD")
        .map_err(|e| invalid_or_internal(e.into()))?;
    if head != onto {
        return Ok(false);
    }
    let mut cmd = repo.git(&repo.workdir);
    cmd.args(["merge", "--ff-only", "--quiet", &landed.to_string()]);
    git_ok(cmd, &format!("move {branch} (checked out here) to the landed run"))
        .map_err(|e| match e {
            Failure::Failed(e) => Failure::Failed(anyhow!(
                "{e}\nhelp: commit or stash your changes, then `git merge --ff-only {landed}` (run `{run}` landed there)"
            )),
            other => other,
        })?;
    Ok(true)
}

/// Pushes `landed` to `remote`'s `branch`, only if that is still `onto`
/// there: whether it was.
fn push(repo: &Repo, remote: &str, branch: &str, landed: Oid, onto: Oid) -> Result<bool, Failure> {
    let mut cmd = repo.git(&repo.workdir);
    cmd.args([
        "push",
        "--quiet",
        "--porcelain",
        &format!("--force-with-lease=refs/heads/{branch}:{onto}"),
        "--",
        remote,
        &format!("{landed}:refs/heads/{branch}"),
    ]);
    let out = cmd
        .output()
        .map_err(|e| Failure::Internal(anyhow!("run git push: {e}")))?;
    if out.status.success() {
        return Ok(true);
    }
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // The lease: someone pushed meanwhile.
    if said.contains("stale info") || said.contains("[rejected]") || said.contains("fetch first") {
        return Ok(false);
    }
    Err(Failure::Failed(anyhow!(
        "push the landed branch to {remote}: {}",
        swarm_orchestrator::escape::text(said.trim())
    )))
}

/// What `land` would do, with a trial merge of each result (in memory)
/// to say which would conflict.
fn dry_run(
    repo: &Repo,
    run: &str,
    report: &RunReport,
    branch: &str,
    onto: Oid,
    fast_forward: bool,
    adopted: &Adopted,
) -> Result<i32, Failure> {
    if fast_forward {
        let tip = fast_forward_tip(run, report)?;
        println!(
            "dry run: run `{run}` would land on {branch} by fast-forward: {} -> {}",
            short(onto),
            short(tip)
        );
        return Ok(exit::SUCCESS);
    }
    println!(
        "dry run: {branch} moved from the run's base {} to {}; run `{run}`'s {} merged tasks would be merged again onto it, in order:",
        short(oid(&report.base_commit, "the run's base")?),
        short(onto),
        adopted.order.len()
    );
    let merger =
        swarm_orchestrator::git::Merger::new(repo).map_err(|e| invalid_or_internal(e.into()))?;
    let mut tip = onto;
    for id in &adopted.order {
        let Some(result) = adopted.by_id.get(id) else {
            continue;
        };
        let outcome = merger
            .merge(tip, result.commit, &format!("swarm land: trial {id}"))
            .map_err(|e| invalid_or_internal(e.into()))?;
        let said = match outcome {
            swarm_orchestrator::git::MergeOutcome::Merged(new) => {
                tip = new;
                "merges".to_string()
            }
            swarm_orchestrator::git::MergeOutcome::AlreadyIn => "is in already".to_string(),
            swarm_orchestrator::git::MergeOutcome::Conflict(files) => {
                format!(
                    "conflicts in {}: it would run again on the branch as it is then",
                    files.join(", ")
                )
            }
        };
        println!("  {id:<20} {said}");
    }
    println!("then the run-wide verify, if the plan has one; nothing was changed");
    Ok(exit::SUCCESS)
}

fn oid(text: &str, what: &str) -> Result<Oid, Failure> {
    Oid::from_str(text).map_err(|e| Failure::Internal(anyhow!("read {what} `{text}`: {e}")))
}

fn short(commit: Oid) -> String {
    commit.to_string()[..10].to_string()
}

fn git_ok(mut cmd: std::process::Command, action: &str) -> Result<(), Failure> {
    let out = cmd
        .output()
        .map_err(|e| Failure::Internal(anyhow!("{action}: run git: {e}")))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(Failure::Failed(anyhow!(
            "{action}: {}",
            swarm_orchestrator::escape::text(String::from_utf8_lossy(&out.stderr).trim())
        ))),
    }
}
