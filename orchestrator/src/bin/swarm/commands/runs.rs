//! `swarm runs`: every run of the repository, newest first, with its state
//! (decided as `swarm status` decides it), when it started, its task counts
//! and its integration branch.

use std::path::Path;
use std::time::SystemTime;

use anyhow::anyhow;
use swarm_orchestrator::git::{Repo, refs};
use swarm_orchestrator::report::{self, RunState};
use swarm_orchestrator::state::State;
use swarm_orchestrator::{escape, exit, journal, run};
use swarm_protocol::{Isolation, RunReport, TaskStatus};

use crate::Failure;

/// `swarm runs`'s command line.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Print the list as a JSON array.
    #[arg(long)]
    json: bool,
}

/// `swarm runs [--json]`.
pub(crate) fn cmd_runs(cwd: &Path, args: RunsArgs) -> Result<i32, Failure> {
    runs(cwd, args.json)
}

/// One line of the listing.
#[derive(Debug, serde::Serialize)]
struct Listed {
    run: String,
    state: &'static str,
    /// RFC 3339, UTC, as in the journal.
    started_at: String,
    /// Seconds since it started.
    age_secs: u64,
    /// Tasks whose result is in the integration branch (read-only tasks
    /// that succeeded, which have nothing to merge, count here too).
    merged: usize,
    /// Tasks that failed, timed out or conflicted.
    failed: usize,
    total: usize,
    /// The integration branch, if it exists (none for a read-only run, or
    /// once `swarm clean --refs` deleted it).
    branch: Option<String>,
    exit_code: Option<i32>,
}

pub fn runs(cwd: &Path, json: bool) -> Result<i32, Failure> {
    runs_to(
        cwd,
        json,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// `swarm runs`, written to `out` (its warnings to `err`): the command
/// line's stdout and stderr, or what `swarm mcp` answers with.
pub fn runs_to(
    cwd: &Path,
    json: bool,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> Result<i32, Failure> {
    let repo = Repo::discover(cwd).map_err(|e| {
        Failure::Invalid(anyhow!(
            "{e}\nhelp: run swarm inside a git repository (`git init` creates one)"
        ))
    })?;
    let state_err = |e: swarm_orchestrator::state::StateError| {
        if e.is_unsafe() {
            Failure::Invalid(anyhow!("{e}"))
        } else {
            Failure::Internal(anyhow!("{e}"))
        }
    };
    State::check_untracked(&repo).map_err(state_err)?;
    let names = match State::open(&repo.workdir).map_err(state_err)? {
        Some(state) => state.runs().map_err(state_err)?,
        None => Vec::new(),
    };
    let now = SystemTime::now();
    let mut listed = Vec::new();
    for name in names {
        let dir = report::run_dir(&repo.workdir, &name);
        let (events, skipped) = match journal::read_tolerant(
            &dir.join(swarm_orchestrator::layout::JOURNAL),
        ) {
            Ok(read) => read,
            Err(e) => {
                // A run directory without a journal: its coordinator died
                // before it wrote anything. Said, not hidden.
                let _ = writeln!(
                    err,
                    "warning: run {}: no readable journal (failed to {}); `swarm clean {}` removes what it left",
                    escape::line(&name),
                    escape::line(&e.to_string()),
                    escape::line(&name)
                );
                continue;
            }
        };
        crate::common::warn_skipped(&skipped);
        let Some(report) = report::fold(&events) else {
            let _ = writeln!(
                err,
                "warning: run {}: its journal is empty (it never started); `swarm clean {}` removes what it left",
                escape::line(&name),
                escape::line(&name)
            );
            continue;
        };
        let branch = refs::integration(&name);
        let branch = repo
            .has_ref(&branch)
            .map_err(|e| Failure::Internal(e.into()))?
            .then(|| refs::integration_branch(&name));
        listed.push(listed_run(&report, run::is_driven(&dir), branch, now));
    }
    // RFC 3339 UTC times of one format sort as the times do.
    listed.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(a.run.cmp(&b.run)));
    if json {
        let text =
            serde_json::to_string_pretty(&listed).map_err(|e| Failure::Internal(e.into()))?;
        let _ = writeln!(out, "{}", escape::json(&text));
        return Ok(exit::SUCCESS);
    }
    if listed.is_empty() {
        let _ = writeln!(out, "no runs yet (start one with `swarm run PLAN`)");
        return Ok(exit::SUCCESS);
    }
    let local = local_times(listed.iter().map(|l| l.started_at.as_str()));
    let started: Vec<String> = listed
        .iter()
        .zip(local)
        .map(|(l, t)| format!("{t} ({} ago)", age(l.age_secs)))
        .collect();
    let w_run = listed.iter().map(|l| l.run.len()).max().unwrap_or(3).max(3);
    let w_started = started.iter().map(String::len).max().unwrap_or(7).max(7);
    let mut text = format!(
        "{:<w_run$}  {:<11}  {:<w_started$}  {:<20}  branch\n",
        "run", "state", "started", "merged/failed/total"
    );
    for (l, started) in listed.iter().zip(&started) {
        text.push_str(&format!(
            "{:<w_run$}  {:<11}  {:<w_started$}  {:<20}  {}\n",
            l.run,
            l.state,
            started,
            format!("{}/{}/{}", l.merged, l.failed, l.total),
            l.branch.as_deref().unwrap_or("-"),
        ));
    }
    let _ = write!(out, "{}", escape::text(&text));
    Ok(exit::SUCCESS)
}

fn listed_run(report: &RunReport, driven: bool, branch: Option<String>, now: SystemTime) -> Listed {
    // Variants count through their experiment.
    let count = |pred: &dyn Fn(&swarm_protocol::TaskReport) -> bool| {
        report
            .tasks
            .iter()
            .filter(|t| t.variant_of.is_none() && pred(t))
            .count()
    };
    let age_secs = humantime::parse_rfc3339(&report.started_at)
        .ok()
        .and_then(|t| now.duration_since(t).ok())
        .map_or(0, |d| d.as_secs());
    Listed {
        run: report.run.clone(),
        state: RunState::of(report, driven).as_str(),
        started_at: report.started_at.clone(),
        age_secs,
        merged: count(&|t| {
            t.status == TaskStatus::Merged
                || (t.status == TaskStatus::Succeeded && t.isolation == Isolation::Readonly)
        }),
        failed: count(&|t| {
            matches!(
                t.status,
                TaskStatus::Failed
                    | TaskStatus::TimedOut
                    | TaskStatus::Conflicted
                    | TaskStatus::BrokeVerify
            )
        }),
        total: count(&|_| true),
        branch,
        exit_code: report.exit_code,
    }
}

/// `45s`, `12m`, `3h`, `2d`.
fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The journal's UTC times in the user's local time (`YYYY-MM-DD HH:MM`),
/// through one `date -f -` (GNU date reads the TZ rules, which swarm has no
/// library for); where that is not available, in UTC, saying so.
fn local_times<'a>(times: impl Iterator<Item = &'a str>) -> Vec<String> {
    let times: Vec<&str> = times.collect();
    let epochs: Vec<Option<u64>> = times
        .iter()
        .map(|t| {
            humantime::parse_rfc3339(t)
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        })
        .collect();
    let input: String = epochs
        .iter()
        .map(|e| format!("@{}\n", e.unwrap_or(0)))
        .collect();
    let local = (|| -> Option<Vec<String>> {
        use std::io::Write as _;
        let mut child = std::process::Command::new("date")
            .args(["-f", "-", "+%Y-%m-%d %H:%M"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(input.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        let lines: Vec<String> = String::from_utf8(out.stdout)
            .ok()?
            .lines()
            .map(str::to_string)
            .collect();
        (out.status.success() && lines.len() == times.len()).then_some(lines)
    })();
    match local {
        Some(lines) => lines,
        None => times
            .iter()
            .map(|t| format!("{} UTC", t.get(..16).unwrap_or(t).replace('T', " ")))
            .collect(),
    }
}
