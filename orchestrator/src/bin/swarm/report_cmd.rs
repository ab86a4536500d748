//! `swarm status`, `swarm report --html` and `swarm trace`: a run's state
//! as the journal says, for people, pages and trace viewers.

use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::{exit, report, run};

use crate::Failure;
use crate::common::{load_run, open_repo};

/// `swarm report [RUN] --html FILE`: the run as one HTML page.
pub(crate) fn html_report(cwd: &Path, run: Option<&str>, file: &Path) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let (name, events, report) = load_run(&repo, run)?;
    let flushes = swarm_orchestrator::flushes::read(&report::run_dir(&repo.workdir, &name));
    let page = swarm_orchestrator::export::html(&report, &events, &flushes);
    std::fs::write(cwd.join(file), page)
        .map_err(|e| Failure::Internal(anyhow!("write the HTML report {}: {e}", file.display())))?;
    Ok(exit::SUCCESS)
}

/// `swarm trace [RUN]`: the run as Chrome trace events, on stdout.
pub(crate) fn trace(cwd: &Path, run: Option<&str>) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let (name, events, _) = load_run(&repo, run)?;
    let flushes = swarm_orchestrator::flushes::read(&report::run_dir(&repo.workdir, &name));
    let text = swarm_orchestrator::timeline::Timeline::of(&events)
        .with_flushes(&flushes)
        .chrome_trace(&name);
    println!("{}", swarm_orchestrator::escape::json(&text));
    Ok(exit::SUCCESS)
}

pub(crate) fn status(cwd: &Path, run: Option<&str>, json: bool) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let (name, events, mut report) = load_run(&repo, run)?;
    if json {
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
