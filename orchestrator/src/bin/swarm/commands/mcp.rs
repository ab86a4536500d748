//! `swarm mcp`: the repository served to an MCP client on stdin/stdout
//! (`swarm_orchestrator::mcp_server`, which holds the server, its tools
//! and what a client may and may not do). The command line gives the
//! server what reads the person's environment or is worded here: the
//! checks of `swarm validate`, the planning of `swarm plan`, and the text
//! of `logs`, `compare` and `runs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::mcp_server::{self, Front};
use swarm_orchestrator::plan::{Plan, PlanError};

use crate::commands::{compare, logs, plan, runs, validate};
use crate::common::{TapeArgs, canonical_root, latest, open_repo};
use crate::failure::Failure;
use crate::output::{failure_text, plan_warnings};
use crate::planning::PlannerArgs;

/// `swarm mcp`: serves the repository at `cwd` until the client goes away.
pub fn mcp(cwd: &Path) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let program = std::env::current_exe()
        .context("find the swarm binary to run commands with")
        .map_err(Failure::Internal)?;
    let root = canonical_root(&repo)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")
        .map_err(Failure::Internal)?;
    runtime
        .block_on(mcp_server::serve(
            repo,
            root,
            program,
            Arc::new(CommandLine),
            rmcp::transport::stdio(),
        ))
        .map_err(|e| Failure::Internal(anyhow!("{e}")))?;
    Ok(swarm_orchestrator::exit::SUCCESS)
}

/// The command line's side of the server.
struct CommandLine;

/// What a command's failure says, as a tool's error.
fn failed(failure: &Failure) -> String {
    failure_text(failure, false)
}

impl Front for CommandLine {
    fn validate(&self, root: &Path, plan: &Plan, shown: &str) -> Result<String, String> {
        let mut out = Vec::new();
        let warnings = validate::validation(root, plan, shown, &mut out).map_err(|e| failed(&e))?;
        let mut text = String::from_utf8_lossy(&out).into_owned();
        for group in &warnings {
            text.push_str(&plan_warnings(group, false));
        }
        Ok(text)
    }

    fn plan(
        &self,
        root: &Path,
        goal: String,
        model: Option<String>,
        max_tasks: Option<u32>,
        output: PathBuf,
    ) -> Result<(), String> {
        let args = plan::PlanArgs {
            goal,
            output,
            force: false,
            base: None,
            planner: PlannerArgs {
                model,
                max_tasks: max_tasks.map_or(swarm_orchestrator::planner::DEFAULT_MAX_TASKS, |n| {
                    n as usize
                }),
                config: None,
                trust: false,
            },
            tape: TapeArgs::default(),
        };
        plan::plan_cmd(root, args)
            .map(|_| ())
            .map_err(|e| failed(&e))
    }

    fn logs(
        &self,
        root: &Path,
        run: &str,
        task: &str,
        attempt: Option<u32>,
    ) -> Result<String, String> {
        logs::logs_text(root, run, task, attempt).map_err(|e| failed(&e))
    }

    fn compare(&self, root: &Path, run: &str, task: &str) -> Result<String, String> {
        compare::compare_text(root, run, task).map_err(|e| failed(&e))
    }

    fn runs(&self, root: &Path) -> Result<String, String> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        runs::runs_to(root, true, &mut out, &mut err).map_err(|e| failed(&e))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn latest(&self, repo: &Repo) -> Result<Option<String>, String> {
        latest(repo).map_err(|e| match e {
            Failure::Plan(e) => e.message,
            Failure::Invalid(e) | Failure::Internal(e) | Failure::Failed(e) => format!("{e:#}"),
        })
    }

    fn plan_refused(&self, error: Box<PlanError>) -> String {
        failed(&Failure::Plan(error))
    }
}
