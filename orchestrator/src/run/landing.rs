//! Where a run lands (`swarm land`): the branch, checked to be one; its
//! tip, here or fetched from a remote; whether the run may land as it is
//! (by fast-forward); a dry run's trial merges; and moving the branch, or
//! pushing it, only if it is still where the landing started. The run of
//! the results merged again is [`super::land`]'s; the command line puts
//! the steps in order.

use git2::Oid;
use swarm_protocol::{EventBody, RunReport};

use super::land::Adopted;
use crate::git::{GitError, MergeOutcome, Merger, Repo};
use crate::{escape, journal, layout, report};

/// Why a landing cannot go on, as a fragment that reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum LandError {
    #[error(
        "land run `{run}`: the branch it started from, `{branch}`, is not here any more\nhelp: name the branch to land on with --onto BRANCH"
    )]
    BranchGone { run: String, branch: String },
    #[error(
        "land run `{run}`: --onto takes a branch, and `{onto}` is not a branch name\nhelp: name a branch of {remote} (`git ls-remote --heads {remote}` lists them)"
    )]
    NotABranchName {
        run: String,
        onto: String,
        remote: String,
    },
    #[error(
        "land run `{run}`: --onto takes a branch, and `{onto}` is not one (it names commit {commit})\nhelp: make a branch there and land on it: `git branch NAME {onto}`, then `swarm land {run} --onto NAME`"
    )]
    NamesACommit {
        run: String,
        onto: String,
        commit: String,
    },
    #[error(
        "land run `{run}`: --onto takes a branch, and there is no branch `{onto}` here\nhelp: name one of this repository's branches (`git branch --list`)"
    )]
    NoSuchBranch { run: String, onto: String },
    #[error(
        "land run `{run}`: it did not start from a branch swarm knows\nhelp: name one with --onto BRANCH"
    )]
    NoStartBranch { run: String },
    #[error(
        "fetch {branch} from {remote}: {remote} has no branch `{branch}`\nhelp: name one of its branches with --onto (`git ls-remote --heads {remote}` lists them), or push one there first: `git push {remote} REV:refs/heads/{branch}`"
    )]
    RemoteLacksBranch { branch: String, remote: String },
    #[error(
        "land run `{run}`: its branch fails its run-wide verify (see `swarm status {run}`); nothing was landed"
    )]
    VerifyFails { run: String },
    #[error(
        "land run `{run}`: no run of its run-wide verify passed on the tree of its branch's tip {tip}; nothing was landed\nhelp: `swarm status {run}` says why it was not verified; fix that and run the plan again"
    )]
    Unverified { run: String, tip: String },
    #[error("land run `{run}`: it did not end (resume it first: `swarm resume {run}`)")]
    NotEnded { run: String },
    #[error(
        "land run `{run}`: `{branch}` is checked out in the worktree {path}, whose files would not follow (git branch -f refuses the same)\nhelp: switch that worktree off it (`git -C {path} switch --detach`) and land again, or land onto another branch: `swarm land {run} --onto NAME`"
    )]
    CheckedOutElsewhere {
        run: String,
        branch: String,
        path: String,
    },
    /// git ran and refused (a fetch, a push, a fast-forward merge).
    #[error("{action}: {said}")]
    Git { action: String, said: String },
    /// The branch checked out here did not move: `git merge --ff-only`
    /// refused (local changes in the way).
    #[error(
        "move {branch} (checked out here) to the landed run: {said}\nhelp: commit or stash your changes, then `git merge --ff-only {landed}` (run `{run}` landed there)"
    )]
    CheckedOut {
        branch: String,
        said: String,
        landed: Oid,
        run: String,
    },
    #[error("{action}: run git: {source}")]
    Spawn {
        action: String,
        source: std::io::Error,
    },
    #[error("read {what} `{text}`: {source}")]
    BadOid {
        what: &'static str,
        text: String,
        source: git2::Error,
    },
    #[error(transparent)]
    Repo(#[from] GitError),
}

impl LandError {
    /// Whether the person can fix it (another `--onto`, a run to resume),
    /// rather than the work failing ([`Self::is_failure_of_the_work`]) or
    /// something going wrong here. A [`Self::Repo`] error is neither: the
    /// caller classes it as it classes the repository's errors.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::BranchGone { .. }
                | Self::NotABranchName { .. }
                | Self::NamesACommit { .. }
                | Self::NoSuchBranch { .. }
                | Self::NoStartBranch { .. }
                | Self::RemoteLacksBranch { .. }
                | Self::NotEnded { .. }
                | Self::CheckedOutElsewhere { .. }
        )
    }

    /// Whether the landing itself failed: git refused, or the run's branch
    /// fails its verify.
    pub fn is_failure_of_the_work(&self) -> bool {
        matches!(
            self,
            Self::Git { .. }
                | Self::CheckedOut { .. }
                | Self::VerifyFails { .. }
                | Self::Unverified { .. }
        )
    }
}

/// Refuses, before anything runs, to land on what is not a branch:
/// `land` moves a branch, so `--onto` names one (with `--push`, one of the
/// remote), never a tag, a commit or a revision such as `main~1`.
pub fn check_branch(
    repo: &Repo,
    run: &str,
    branch: &str,
    onto: Option<&str>,
    remote: Option<&str>,
) -> Result<(), LandError> {
    let valid = git2::Reference::is_valid_name(&format!("refs/heads/{branch}"));
    let here = repo.branch_of(branch).is_some();
    let (run, branch) = (run.to_string(), branch.to_string());
    match (onto, remote) {
        (_, Some(_)) if valid => Ok(()),
        (_, None) if here => Ok(()),
        (None, _) => Err(LandError::BranchGone { run, branch }),
        (Some(onto), Some(remote)) => Err(LandError::NotABranchName {
            run,
            onto: onto.to_string(),
            remote: remote.to_string(),
        }),
        (Some(onto), None) => Err(match repo.resolve(onto) {
            Ok(commit) => LandError::NamesACommit {
                run,
                onto: onto.to_string(),
                commit: crate::git::short_id(commit),
            },
            Err(_) => LandError::NoSuchBranch {
                run,
                onto: onto.to_string(),
            },
        }),
    }
}

/// The branch to land on: `onto`, else the one the run started from.
pub fn target_branch(repo: &Repo, run: &str, onto: Option<&str>) -> Result<String, LandError> {
    if let Some(onto) = onto {
        return Ok(onto.strip_prefix("refs/heads/").unwrap_or(onto).to_string());
    }
    let journal = report::run_dir(&repo.workdir, run).join(layout::JOURNAL);
    match journal::run_started(&journal).map(|e| e.body) {
        Some(EventBody::RunStarted {
            base_branch: Some(branch),
            ..
        }) => Ok(branch),
        _ => Err(LandError::NoStartBranch {
            run: run.to_string(),
        }),
    }
}

/// The tip to land on: the branch here, or (with `--push`) the remote's,
/// fetched now.
pub fn tip_of(repo: &Repo, branch: &str, remote: Option<&str>) -> Result<Oid, LandError> {
    let Some(remote) = remote else {
        return Ok(repo.resolve(&format!("refs/heads/{branch}"))?);
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
    let action = format!("fetch {branch} from {remote}");
    let out = cmd.output().map_err(|source| LandError::Spawn {
        action: action.clone(),
        source,
    })?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = escape::text(said.trim()).into_owned();
        if said.contains("couldn't find remote ref") {
            return Err(LandError::RemoteLacksBranch {
                branch: branch.to_string(),
                remote: remote.to_string(),
            });
        }
        return Err(LandError::Git { action, said });
    }
    Ok(repo.resolve(&tracking)?)
}

/// The run's own branch, when it may land as it is: the run ended, and
/// where the plan has a run-wide verify (`verified`), a run of it passed
/// on the tip's tree (the tree that lands is the tree that passed,
/// checked, not assumed). A tip whose last verify failed is refused; one
/// never verified is [`LandError::Unverified`] (the caller verifies it
/// first, by landing it as a run of its own).
pub fn fast_forward_tip(
    repo: &Repo,
    run: &str,
    report: &RunReport,
    verified: bool,
) -> Result<Oid, LandError> {
    let tip = oid(&report.integration_commit, "the run's branch")?;
    if let Some(last) = report
        .verify_runs
        .iter()
        .rfind(|r| r.commit == report.integration_commit)
        && !last.passed
    {
        return Err(LandError::VerifyFails {
            run: run.to_string(),
        });
    }
    if report.exit_code.is_none() {
        return Err(LandError::NotEnded {
            run: run.to_string(),
        });
    }
    if verified {
        passed_on(repo, run, report, tip)?;
    }
    Ok(tip)
}

/// Whether a run of `report`'s verify passed on `commit`'s tree, else
/// [`LandError::Unverified`].
pub fn passed_on(repo: &Repo, run: &str, report: &RunReport, commit: Oid) -> Result<(), LandError> {
    let git = repo.open()?;
    let tree = git
        .find_commit(commit)
        .map(|c| c.tree_id())
        .map_err(|source| LandError::BadOid {
            what: "the commit to land",
            text: commit.to_string(),
            source,
        })?;
    let (commit_hex, tree_hex) = (commit.to_string(), tree.to_string());
    let passed = report.verify_runs.iter().any(|r| {
        r.passed
            && match &r.tree {
                Some(t) => *t == tree_hex,
                // Written before runs named their tree.
                None => r.commit == commit_hex,
            }
    });
    match passed {
        true => Ok(()),
        false => Err(LandError::Unverified {
            run: run.to_string(),
            tip: commit_hex[..12].to_string(),
        }),
    }
}

/// Moves `branch` from `onto` to `landed` (which descends from it), only
/// if it is still at `onto`: whether it was. The branch checked out here
/// moves with its working tree, by `git merge --ff-only` (which refuses to
/// overwrite local changes), never under it.
pub fn move_branch(
    repo: &Repo,
    branch: &str,
    landed: Oid,
    onto: Oid,
    run: &str,
) -> Result<bool, LandError> {
    not_checked_out_elsewhere(repo, branch, run)?;
    if repo.branch_of("HEAD").as_deref() != Some(branch) {
        return Ok(repo.move_ref(
            &format!("refs/heads/{branch}"),
            landed,
            onto,
            &format!("swarm land {run}"),
        )?);
    }
    if repo.resolve("HEAD")? != onto {
        return Ok(false);
    }
    let mut cmd = repo.git(&repo.workdir);
    cmd.args(["merge", "--ff-only", "--quiet", &landed.to_string()]);
    let out = cmd.output().map_err(|source| LandError::Spawn {
        action: format!("move {branch} (checked out here) to the landed run"),
        source,
    })?;
    if !out.status.success() {
        return Err(LandError::CheckedOut {
            branch: branch.to_string(),
            said: escape::text(String::from_utf8_lossy(&out.stderr).trim()).into_owned(),
            landed,
            run: run.to_string(),
        });
    }
    Ok(true)
}

/// Refuses a `branch` checked out in a worktree of the repository other
/// than this one (`git worktree list`): moving it would leave that
/// worktree's files behind its HEAD, and a `git commit -a` there would
/// undo the landing. This worktree's own is moved with its files.
pub fn not_checked_out_elsewhere(repo: &Repo, branch: &str, run: &str) -> Result<(), LandError> {
    let mut cmd = repo.git(&repo.workdir);
    cmd.args(["worktree", "list", "--porcelain"]);
    let out = cmd.output().map_err(|source| LandError::Spawn {
        action: "list the repository's worktrees".into(),
        source,
    })?;
    if !out.status.success() {
        return Err(LandError::Git {
            action: "list the repository's worktrees".into(),
            said: escape::text(String::from_utf8_lossy(&out.stderr).trim()).into_owned(),
        });
    }
    let here = std::fs::canonicalize(&repo.workdir).unwrap_or_else(|_| repo.workdir.clone());
    let wanted = format!("branch refs/heads/{branch}");
    let text = String::from_utf8_lossy(&out.stdout);
    for entry in text.split("\n\n") {
        let mut path = None;
        let mut on_branch = false;
        for line in entry.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = Some(std::path::PathBuf::from(p));
            }
            on_branch |= line == wanted;
        }
        let Some(path) = path.filter(|_| on_branch) else {
            continue;
        };
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if canonical != here {
            return Err(LandError::CheckedOutElsewhere {
                run: run.to_string(),
                branch: branch.to_string(),
                path: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Pushes `landed` to `remote`'s `branch`, only if that is still `onto`
/// there: whether it was.
pub fn push(
    repo: &Repo,
    remote: &str,
    branch: &str,
    landed: Oid,
    onto: Oid,
) -> Result<bool, LandError> {
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
    let out = cmd.output().map_err(|source| LandError::Spawn {
        action: "push the landed branch".into(),
        source,
    })?;
    if out.status.success() {
        return Ok(true);
    }
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // The lease: someone pushed meanwhile.
    if said.contains("stale info") || said.contains("[rejected]") || said.contains("fetch first") {
        return Ok(false);
    }
    Err(LandError::Git {
        action: format!("push the landed branch to {remote}"),
        said: escape::text(said.trim()).into_owned(),
    })
}

/// What merging one adopted result again would do, in a dry run.
#[derive(Debug)]
pub enum Trial {
    Merges,
    AlreadyIn,
    /// These files conflict: it would run again on the branch as it is.
    Conflicts(Vec<String>),
}

/// Each of `adopted`'s results merged in memory, in order, onto `onto`:
/// what a landing would find, changing nothing.
pub fn trial_merges(
    repo: &Repo,
    onto: Oid,
    adopted: &Adopted,
) -> Result<Vec<(String, Trial)>, LandError> {
    let merger = Merger::new(repo)?;
    let mut tip = onto;
    let mut trials = Vec::new();
    for id in &adopted.order {
        let Some(result) = adopted.by_id.get(id) else {
            continue;
        };
        let trial = match merger.merge(tip, result.commit, &format!("swarm land: trial {id}"))? {
            MergeOutcome::Merged(new) => {
                tip = new;
                Trial::Merges
            }
            MergeOutcome::AlreadyIn => Trial::AlreadyIn,
            MergeOutcome::Conflict(files) => Trial::Conflicts(files),
        };
        trials.push((id.to_string(), trial));
    }
    Ok(trials)
}

/// A commit id the run's report recorded.
pub fn oid(text: &str, what: &'static str) -> Result<Oid, LandError> {
    Oid::from_str(text).map_err(|source| LandError::BadOid {
        what,
        text: text.to_string(),
        source,
    })
}
