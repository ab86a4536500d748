//! `swarm runs`: every run of the repository, newest first, with its state
//! (decided as `swarm status` decides it), when it started, its task counts
//! and its integration branch.

use std::path::Path;
use std::time::SystemTime;

use anyhow::anyhow;
use swarm_orchestrator::run::{self, ListError, Note};
use swarm_orchestrator::{escape, exit, view};

use crate::failure::Failure;

/// `swarm runs`'s command line.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Print the list as a JSON array.
    #[arg(long)]
    json: bool,
}

/// `swarm runs [--json]`.
pub(crate) fn cmd_runs(cwd: &Path, args: RunsArgs) -> Result<i32, Failure> {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    runs_to(cwd, args.json, &mut out, &mut err)
}

/// `swarm runs`, written to `out` (its warnings to `err`): the command
/// line's stdout and stderr, or what `swarm mcp` answers with.
pub fn runs_to(
    cwd: &Path,
    json: bool,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> Result<i32, Failure> {
    let repo = crate::common::open_repo(cwd)?;
    let listing = run::list_runs(&repo, SystemTime::now()).map_err(|e| match e {
        ListError::State(e) if e.is_unsafe() => Failure::Invalid(anyhow!("{e}")),
        ListError::State(e) => Failure::Internal(anyhow!("{e}")),
        ListError::Git(e) => Failure::Internal(e.into()),
    })?;
    for note in &listing.notes {
        match note {
            // Journal lines skipped are warned about on stderr, always.
            Note::Skipped(_) => eprintln!("{}", view::runs::note(note)),
            _ => {
                let _ = writeln!(err, "{}", view::runs::note(note));
            }
        }
    }
    let rows = listing.rows;
    if json {
        let text = serde_json::to_string_pretty(&rows).map_err(|e| Failure::Internal(e.into()))?;
        let _ = writeln!(out, "{}", escape::json(&text));
        return Ok(exit::SUCCESS);
    }
    if rows.is_empty() {
        let _ = writeln!(out, "{}", view::runs::NO_RUNS);
        return Ok(exit::SUCCESS);
    }
    let local = local_times(rows.iter().map(|l| l.started_at.as_str()));
    let _ = write!(out, "{}", view::runs::table(&rows, &local));
    Ok(exit::SUCCESS)
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
