//! `swarm status`: a run's state as the journal says, for people (its
//! summary table, a running task's time so far) or as JSON.

use std::path::Path;

use swarm_orchestrator::{exit, report, run};

use crate::Failure;
use crate::common::{load_run, open_repo};

/// `swarm status`'s command line.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The run name (see `.swarm/runs/`).
    run: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `swarm status [RUN] [--json]`.
pub(crate) fn status(cwd: &Path, args: StatusArgs) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let (name, events, mut report) = load_run(&repo, args.run.as_deref())?;
    if args.json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Failure::Internal(e.into()))?;
        println!("{}", swarm_orchestrator::escape::json(&text));
    } else {
        let driven = run::is_driven(&report::run_dir(&repo.workdir, &name));
        // A running task's time so far: its ended attempts' and the one
        // going on since its start (the report counts ended ones only).
        if driven {
            add_running_time(&mut report, &events, std::time::SystemTime::now());
        }
        print!(
            "{}",
            swarm_orchestrator::view::summary::status_summary(&report, &repo.workdir, driven)
        );
    }
    Ok(exit::SUCCESS)
}

/// Adds to each running task of `report` the time since its attempt going
/// on started (its last `task_started` in `events`), as of `now`.
pub(crate) fn add_running_time(
    report: &mut swarm_protocol::RunReport,
    events: &[swarm_protocol::Event],
    now: std::time::SystemTime,
) {
    let mut started = std::collections::HashMap::new();
    for event in events {
        if let swarm_protocol::EventBody::TaskStarted { task, .. } = &event.body {
            started.insert(task.as_str(), event.ts.as_str());
        }
    }
    for task in &mut report.tasks {
        if task.status != swarm_protocol::TaskStatus::Running {
            continue;
        }
        let since = started
            .get(task.id.as_str())
            .and_then(|ts| humantime::parse_rfc3339_weak(ts).ok())
            .and_then(|at| now.duration_since(at).ok());
        if let Some(since) = since {
            task.duration_ms += u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        }
    }
}
