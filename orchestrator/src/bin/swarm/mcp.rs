//! `swarm mcp`: swarm as an MCP server over stdio, so the agent a person
//! already uses (Claude Code, Codex, Cursor...) can drive it: validate a
//! plan, plan a goal, start a run in the background, follow it, read a
//! task's logs, compare an experiment's variants, cancel and resume. Built
//! on the official SDK (`rmcp`).
//!
//! A front end beside the command line, over the same code: the queries
//! read the journal through the library (`journal`, `report::fold`), and
//! what the command line does (validate, plan, run, resume, logs, compare,
//! runs) is that very command, this binary run again in the repository the
//! server was started in. A run started here is an ordinary run: `swarm
//! status`, `resume` and `clean` see it.
//!
//! What a client cannot do: name another repository (every path is taken
//! inside the one given by `-C`, links resolved, and refused outside it);
//! weaken the sandbox (a plan that grants more than swarm's defaults, as
//! `swarm validate` lists, is refused: its author runs it with `swarm run`);
//! pass flags of its own to the commands; block the server (runs go on in
//! processes of their own; a wait for a run is bounded).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt as _, schemars, tool, tool_handler};
use serde::Deserialize;
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::report::{self, RunState};
use swarm_orchestrator::{escape, journal, layout, run};

use crate::Failure;

/// Most bytes of a command's output a tool gives back.
const MAX_OUTPUT: usize = 64 << 10;

/// Longest a `run_status` call waits for a change.
const MAX_WAIT: u64 = 120;

/// `swarm mcp`: serves the repository at `cwd` on stdin/stdout until the
/// client goes away.
pub fn mcp(cwd: &Path) -> Result<i32, Failure> {
    let repo = crate::cli::open_repo(cwd)?;
    let program = std::env::current_exe()
        .context("find the swarm binary to run commands with")
        .map_err(Failure::Internal)?;
    let server = Swarm {
        root: repo.workdir.clone(),
        repo,
        program,
        started: Arc::new(Mutex::new(BTreeSet::new())),
        tool_router: Swarm::tool_router(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")
        .map_err(Failure::Internal)?;
    runtime.block_on(async move {
        let service = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Failure::Internal(anyhow!("start the MCP server on stdio: {e}")))?;
        service
            .waiting()
            .await
            .map_err(|e| Failure::Internal(anyhow!("serve MCP on stdio: {e}")))?;
        Ok(swarm_orchestrator::exit::SUCCESS)
    })
}

/// The server: one repository.
#[derive(Clone)]
struct Swarm {
    repo: Repo,
    /// The repository's root, as the client's paths are taken from it.
    root: PathBuf,
    /// This binary, which runs the commands.
    program: PathBuf,
    /// Runs this server started, so two `run_plan` calls never pick the
    /// same name.
    started: Arc<Mutex<BTreeSet<String>>>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct PlanArg {
    /// A plan file in the repository, relative to its root.
    #[serde(default)]
    path: Option<String>,
    /// Or the plan's TOML itself (kept in `.swarm/mcp/plans/`).
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct RunPlanArg {
    #[serde(flatten)]
    plan: PlanArg,
    /// The run's name (default: the plan file's name, made unique).
    #[serde(default)]
    name: Option<String>,
    /// Run only these tasks (and what they depend on).
    #[serde(default)]
    only: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct GoalArg {
    /// What to do, in words.
    goal: String,
    /// The model that plans: a name in the configuration's [models].
    #[serde(default)]
    model: Option<String>,
    /// At most this many tasks.
    #[serde(default)]
    max_tasks: Option<u32>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct StatusArg {
    /// The run (default: the latest).
    #[serde(default)]
    run: Option<String>,
    /// Wait up to this many seconds (at most 120) for the run to change
    /// before answering; 0 answers at once.
    #[serde(default)]
    wait_secs: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct RunArg {
    /// The run's name.
    run: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct ResumeArg {
    /// The run's name.
    run: String,
    /// Run the failed tasks again, in the same run.
    #[serde(default)]
    retry_failed: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct TaskArg {
    /// The run's name.
    run: String,
    /// The task's id.
    task: String,
    /// Which attempt (default: the last).
    #[serde(default)]
    attempt: Option<u32>,
}

fn text(s: impl Into<String>) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(s)]))
}

fn refused(s: impl Into<String>) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::error(vec![ContentBlock::text(s)]))
}

/// The end of `bytes` as text, at most [`MAX_OUTPUT`] of it.
fn bounded(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX_OUTPUT {
        return text.into_owned();
    }
    let from = text.ceil_char_boundary(text.len() - MAX_OUTPUT);
    format!("[... {from} bytes left out ...]\n{}", &text[from..])
}

#[rmcp::tool_router]
impl Swarm {
    #[tool(
        description = "Check a plan (a file in the repository, or its TOML text): its errors and warnings with file, line and column, what it grants beyond swarm's defaults. Nothing runs."
    )]
    async fn validate_plan(
        &self,
        Parameters(arg): Parameters<PlanArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let path = match self.plan_file(&arg, None) {
            Ok(p) => p,
            Err(why) => return refused(why),
        };
        let out = self
            .swarm(&["validate", &path.display().to_string()])
            .await?;
        let shown = escape::text(&format!("{}{}", out.stdout, out.stderr)).to_string();
        match out.code {
            0 => text(shown),
            _ => refused(shown),
        }
    }

    #[tool(
        description = "Split a goal into a plan with the planner model (as `swarm plan`): returns the plan's TOML and where it was written. Nothing runs; review it, then run_plan."
    )]
    async fn plan_goal(
        &self,
        Parameters(arg): Parameters<GoalArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let dir = self.state_dir(&["mcp", "plans"])?;
        let name = slug(&arg.goal);
        let file = (1..)
            .map(|n| match n {
                1 => dir.join(format!("{name}.toml")),
                n => dir.join(format!("{name}-{n}.toml")),
            })
            .find(|p| p.symlink_metadata().is_err())
            .unwrap_or_else(|| dir.join(format!("{name}.toml")));
        let file_arg = file.display().to_string();
        let mut args = vec!["plan", arg.goal.as_str(), "-o", file_arg.as_str()];
        let model;
        if let Some(m) = &arg.model {
            model = m.clone();
            args.extend(["--model", model.as_str()]);
        }
        let max;
        if let Some(n) = arg.max_tasks {
            max = n.to_string();
            args.extend(["--max-tasks", max.as_str()]);
        }
        let out = self.swarm(&args).await?;
        if out.code != 0 {
            return refused(escape::text(&out.stderr).to_string());
        }
        let plan = std::fs::read_to_string(&file).map_err(|e| internal(&file, e))?;
        let shown = file.strip_prefix(&self.root).unwrap_or(&file);
        text(format!("# written to {}\n{plan}", shown.display()))
    }

    #[tool(
        description = "Start a run of a plan (a file in the repository, or its TOML text) in the background, sandboxed as the plan says; returns the run's name at once. Follow it with run_status. A plan that grants more than swarm's defaults (no sandbox, the network, keys sent elsewhere...) is refused here."
    )]
    async fn run_plan(
        &self,
        Parameters(arg): Parameters<RunPlanArg>,
    ) -> Result<CallToolResult, ErrorData> {
        if let Some(name) = &arg.name
            && let Err(e) = run::check_run_name(name)
        {
            return refused(format!("start a run named `{name}`: {e}"));
        }
        let path = match self.plan_file(&arg.plan, arg.name.as_deref()) {
            Ok(p) => p,
            Err(why) => return refused(why),
        };
        if let Err(why) = self.check_not_weakened(&path) {
            return refused(why);
        }
        let wanted = arg.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "run".into(), |s| slug(&s.to_string_lossy()))
        });
        let name = {
            let mut started = self
                .started
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let root = self.root.clone();
            let name = run::free_run_name(&self.repo, &wanted, |n| {
                started.contains(n) || report::run_dir(&root, n).symlink_metadata().is_ok()
            })
            .map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
            started.insert(name.clone());
            name
        };
        let mut args = vec![
            "run".to_string(),
            path.display().to_string(),
            "--name".into(),
            name.clone(),
            "-q".into(),
        ];
        for id in &arg.only {
            args.extend(["--only".into(), id.clone()]);
        }
        self.detached(&name, &args)?;
        text(format!(
            "run `{name}` started; follow it with run_status {{\"run\": \"{name}\", \"wait_secs\": 30}}"
        ))
    }

    #[tool(
        description = "A run's state and every task's status, reason, ref, attempts, tokens and cost. With wait_secs, waits (up to 120 s) for something to change first (a run that ended answers at once)."
    )]
    async fn run_status(
        &self,
        Parameters(arg): Parameters<StatusArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let run = match self.run_name(arg.run.as_deref()) {
            Ok(r) => r,
            Err(why) => return refused(why),
        };
        let journal = report::run_dir(&self.root, &run).join(layout::JOURNAL);
        let wait = Duration::from_secs(arg.wait_secs.unwrap_or(0).min(MAX_WAIT));
        let size = |p: &Path| p.metadata().map(|m| m.len()).unwrap_or(0);
        let before = size(&journal);
        let deadline = tokio::time::Instant::now() + wait;
        let mut first = None;
        loop {
            let status = self.status(&run);
            let state = status.as_ref().ok().map(|(_, state)| *state);
            let first = *first.get_or_insert(state);
            // A run that ended, and that nobody is taking over again
            // (`resume_run` with retry_failed), is what it is; one that is
            // running, was interrupted or cancelled may change (a resume
            // takes a moment to take the run over), so it is waited for
            // like any other change.
            let ended = matches!(state, Some(RunState::FinishedOk | RunState::Failed))
                && !run::is_driven(&report::run_dir(&self.root, &run));
            let changed = state != first || size(&journal) != before;
            if ended || changed || tokio::time::Instant::now() >= deadline {
                return match status {
                    Ok((value, _)) => {
                        text(serde_json::to_string_pretty(&value).unwrap_or_else(|e| e.to_string()))
                    }
                    Err(why) => refused(why),
                };
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    #[tool(
        description = "A task's output (the end of it, control characters escaped); for an agent task its transcript, readably."
    )]
    async fn task_logs(
        &self,
        Parameters(arg): Parameters<TaskArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let attempt = arg.attempt.map(|n| n.to_string());
        let mut args = vec!["logs", arg.run.as_str(), arg.task.as_str()];
        if let Some(n) = &attempt {
            args.extend(["--attempt", n.as_str()]);
        }
        self.answer(&args).await
    }

    #[tool(description = "An experiment's variants ranked (a task with `variants`).")]
    async fn compare(
        &self,
        Parameters(arg): Parameters<TaskArg>,
    ) -> Result<CallToolResult, ErrorData> {
        self.answer(&["compare", &arg.run, &arg.task]).await
    }

    #[tool(description = "Every run of the repository, newest first, as JSON.")]
    async fn list_runs(&self) -> Result<CallToolResult, ErrorData> {
        self.answer(&["runs", "--json"]).await
    }

    #[tool(
        description = "Cancel a running run as Ctrl-C does: its tasks are stopped, their work is kept on refs, and it can be resumed."
    )]
    async fn cancel_run(
        &self,
        Parameters(arg): Parameters<RunArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let run = match self.run_name(Some(&arg.run)) {
            Ok(r) => r,
            Err(why) => return refused(why),
        };
        let dir = report::run_dir(&self.root, &run);
        if !run::is_driven(&dir) {
            return refused(format!("cancel run `{run}`: it is not running"));
        }
        let holder = std::fs::read_to_string(dir.join(layout::LOCK)).unwrap_or_default();
        let Ok(pid) = holder.trim().parse::<i32>() else {
            return refused(format!(
                "cancel run `{run}`: its lock names no process ({holder:?})"
            ));
        };
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGINT,
        )
        .map_err(|e| ErrorData::internal_error(format!("signal run `{run}`: {e}"), None))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while run::is_driven(&dir) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match run::is_driven(&dir) {
            true => text(format!(
                "run `{run}` was told to stop and is still stopping its tasks"
            )),
            false => text(format!(
                "run `{run}` cancelled; its work is kept; resume_run goes on with it"
            )),
        }
    }

    #[tool(
        description = "Resume an interrupted or cancelled run in the background (with retry_failed: run its failed tasks again)."
    )]
    async fn resume_run(
        &self,
        Parameters(arg): Parameters<ResumeArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let run = match self.run_name(Some(&arg.run)) {
            Ok(r) => r,
            Err(why) => return refused(why),
        };
        if run::is_driven(&report::run_dir(&self.root, &run)) {
            return refused(format!("resume run `{run}`: it is running"));
        }
        let mut args = vec!["resume".to_string(), run.clone(), "-q".into()];
        if arg.retry_failed {
            args.push("--retry-failed".into());
        }
        self.detached(&run, &args)?;
        text(format!("run `{run}` resumed; follow it with run_status"))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Swarm {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(rmcp::model::Implementation::new(
            "swarm",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "swarm runs a plan of tasks (commands, WASM programs, coding agents) each in its own git worktree and sandbox, and merges their work into one branch. validate_plan, then run_plan; follow with run_status (wait_secs); task_logs for a task's output.",
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let runs = swarm_orchestrator::state::State::open(&self.root)
            .ok()
            .flatten()
            .and_then(|s| s.runs().ok())
            .unwrap_or_default();
        let mut resources = Vec::new();
        for run in runs {
            resources.push(
                Resource::new(
                    format!("swarm://runs/{run}/report"),
                    format!("{run} report"),
                )
                .with_mime_type("application/json")
                .with_description(format!("run `{run}`'s report (report.json's shape)")),
            );
            resources.push(
                Resource::new(
                    format!("swarm://runs/{run}/summary"),
                    format!("{run} summary"),
                )
                .with_mime_type("text/markdown")
                .with_description(format!("run `{run}` in Markdown, as --summary writes it")),
            );
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let not_found = || ErrorData::invalid_params(format!("no resource {uri}"), None);
        let rest = uri.strip_prefix("swarm://runs/").ok_or_else(not_found)?;
        let (run, what) = rest.split_once('/').ok_or_else(not_found)?;
        run::check_run_name(run).map_err(|_| not_found())?;
        let report = self
            .report(run)
            .map_err(|why| ErrorData::invalid_params(why, None))?;
        let body = match what {
            "report" => serde_json::to_string_pretty(&report)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?,
            "summary" => swarm_orchestrator::export::markdown(&report),
            _ => return Err(not_found()),
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(body, uri.clone())]).into())
    }
}

/// What a command printed and how it ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn internal(path: &Path, e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(format!("read {}: {e}", path.display()), None)
}

impl Swarm {
    /// Runs this binary with `args` in the repository, to its end.
    async fn swarm(&self, args: &[&str]) -> Result<Ran, ErrorData> {
        let out = tokio::process::Command::new(&self.program)
            .arg("-C")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| ErrorData::internal_error(format!("run swarm {}: {e}", args[0]), None))?;
        Ok(Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: bounded(&out.stdout),
            stderr: bounded(&out.stderr),
        })
    }

    /// A command's stdout as the tool's answer, or its stderr as the
    /// tool's error.
    async fn answer(&self, args: &[&str]) -> Result<CallToolResult, ErrorData> {
        let out = self.swarm(args).await?;
        match out.code {
            0 => text(out.stdout),
            _ => refused(escape::text(&out.stderr).to_string()),
        }
    }

    /// Starts this binary with `args` in a process group of its own,
    /// detached from the server (a run outlives the client's session), its
    /// output to `.swarm/mcp/<run>.log`.
    fn detached(&self, run: &str, args: &[String]) -> Result<(), ErrorData> {
        let dir = self.state_dir(&["mcp"])?;
        let log_path = dir.join(format!("{run}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| internal(&log_path, e))?;
        let err = log.try_clone().map_err(|e| internal(&log_path, e))?;
        let mut child = tokio::process::Command::new(&self.program)
            .arg("-C")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| ErrorData::internal_error(format!("start run `{run}`: {e}"), None))?;
        // Reaped when it ends; never killed with the server.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }

    /// `.swarm/<parts>`, made safely (no link followed).
    fn state_dir(&self, parts: &[&str]) -> Result<PathBuf, ErrorData> {
        let state = swarm_orchestrator::state::State::create(&self.root)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        state
            .ensure_dir(parts)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    /// The plan the client named: a file inside the repository, or its
    /// text written to `.swarm/mcp/plans/`.
    fn plan_file(&self, arg: &PlanArg, name: Option<&str>) -> Result<PathBuf, String> {
        match (&arg.path, &arg.text) {
            (Some(path), None) => self.inside(path),
            (None, Some(text)) => {
                let dir = self
                    .state_dir(&["mcp", "plans"])
                    .map_err(|e| e.message.to_string())?;
                let stem = name.map_or_else(
                    || format!("plan-{}", std::process::id() ^ fastrand::u32(..)),
                    str::to_string,
                );
                let file = dir.join(format!("{stem}.toml"));
                std::fs::write(&file, text)
                    .map_err(|e| format!("write the plan to {}: {e}", file.display()))?;
                Ok(file)
            }
            _ => Err(
                "give the plan as `path` (a file in the repository) or as `text`, one of them"
                    .into(),
            ),
        }
    }

    /// `path` taken from the repository's root, links resolved, and
    /// refused unless it is a file inside it.
    fn inside(&self, path: &str) -> Result<PathBuf, String> {
        let root = self
            .root
            .canonicalize()
            .map_err(|e| format!("resolve the repository {}: {e}", self.root.display()))?;
        let full = root
            .join(path)
            .canonicalize()
            .map_err(|e| format!("find `{path}` in the repository: {e}"))?;
        if !full.starts_with(&root) || !full.is_file() {
            return Err(format!(
                "`{path}` is not a file in the repository this server serves ({})",
                root.display()
            ));
        }
        Ok(full)
    }

    /// Refuses a plan that grants more than swarm's defaults: whoever asks
    /// through MCP only narrows what the person running the server allows.
    fn check_not_weakened(&self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read the plan {}: {e}", path.display()))?;
        let plan = swarm_orchestrator::plan::parse(path, text).map_err(|e| {
            format!(
                "the plan {} is not valid: {} (validate_plan shows where)",
                path.display(),
                e.message
            )
        })?;
        let weakened = crate::drive::weakened(&plan, false);
        if weakened.is_empty() {
            return Ok(());
        }
        Err(format!(
            "refused: the plan grants more than swarm's defaults, which a plan started over MCP may not:\n{}\nhelp: run it yourself with `swarm run {}` if you mean it",
            weakened.join("\n"),
            path.display()
        ))
    }

    /// `run`, checked, or the latest run.
    fn run_name(&self, run: Option<&str>) -> Result<String, String> {
        match run {
            Some(name) => {
                run::check_run_name(name).map_err(|e| e.to_string())?;
                Ok(name.to_string())
            }
            None => crate::cli::latest(&self.repo)
                .map_err(|e| match e {
                    Failure::Plan(e) => e.message,
                    Failure::Invalid(e) | Failure::Internal(e) | Failure::Failed(e) => {
                        format!("{e:#}")
                    }
                })?
                .ok_or_else(|| "no run yet in this repository".to_string()),
        }
    }

    fn report(&self, run: &str) -> Result<swarm_protocol::RunReport, String> {
        let path = report::run_dir(&self.root, run).join(layout::JOURNAL);
        let (events, _) = journal::read_tolerant(&path)
            .map_err(|e| format!("read run `{run}`: {e} (list_runs lists the runs)"))?;
        report::fold(&events).ok_or_else(|| format!("run `{run}` has not started yet"))
    }

    /// The run's state and tasks, as `run_status` answers.
    fn status(&self, run: &str) -> Result<(serde_json::Value, RunState), String> {
        let report = self.report(run)?;
        let driven = run::is_driven(&report::run_dir(&self.root, run));
        let state = RunState::of(&report, driven);
        let tasks: Vec<serde_json::Value> = report
            .tasks
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id,
                    "status": t.status,
                    "reason": t.reason,
                    "ref": t.git_ref,
                    "attempts": t.attempts,
                    "duration_ms": t.duration_ms,
                    "tokens": t.agent.as_ref().map(|a| a.usage.total()),
                    "cost_usd": t.agent.as_ref().map(|a| a.cost_usd),
                })
            })
            .collect();
        let value = serde_json::json!({
            "run": report.run,
            "state": state.as_str(),
            "branch": report.integration_branch,
            "exit_code": report.exit_code,
            "tasks": tasks,
        });
        Ok((value, state))
    }
}

/// A name from a goal: its first words, lowercase, dashed.
fn slug(goal: &str) -> String {
    let words: Vec<String> = goal
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(5)
        .map(str::to_ascii_lowercase)
        .collect();
    match words.is_empty() {
        true => "plan".into(),
        false => words.join("-"),
    }
}
