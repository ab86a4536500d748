//! swarm as an MCP server (`swarm mcp`, over stdio), so the agent a person
//! already uses (Claude Code, Codex, Cursor...) can drive it: validate a
//! plan, plan a goal, start a run in the background, follow it, read a
//! task's logs, compare an experiment's variants, cancel and resume. Built
//! on the official SDK (`rmcp`).
//!
//! A front end beside the command line, over the same code: what the
//! command line does (validate, plan, logs, compare, runs, status) is
//! called in this process, through the library and, for what reads the
//! person's environment (their configuration, this host), the [`Front`]
//! the command line gives;
//! only a run (and a resume) goes on in a `swarm run` of its own, detached,
//! so that it outlives the client's session. A run started here is an
//! ordinary run: `swarm status`, `resume` and `clean` see it.
//!
//! An agent driving swarm is an untrusted origin (`plan::origin`). What a
//! client cannot do: name another repository or a file outside this one
//! (a plan's path, and every file a plan names, is read inside the
//! repository given by `-C`, without following a link); send a plan that
//! sets more than swarm's defaults allow (no sandbox off, no network, no
//! key or call sent elsewhere, no program of its own: each refused with
//! its line, for its author to run with `swarm run`); have a checked plan
//! swapped before it runs (the bytes checked are kept under their own
//! hash, read-only, and the run checks them again); turn its strings into
//! command-line flags (run names and task ids are checked, and reach a
//! child only as `--flag=value` after checking); block the server (a wait
//! for a run is bounded).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::git::Repo;
use crate::plan::origin::Origin;
use crate::received::Received;
use crate::report::{self, RunState};
use crate::{escape, journal, layout, run};
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

/// Most bytes of a command's output a tool gives back.
const MAX_OUTPUT: usize = 64 << 10;

/// Longest a `run_status` call waits for a change.
const MAX_WAIT: u64 = 120;

/// What the server asks of the front end that runs it: what reads the
/// person's environment (their configuration, this host's programs and
/// toolchains) or is worded by the command line, which the library never
/// reads or words itself. Each answer is the text a tool gives back, or
/// why it refused.
pub trait Front: Send + Sync + 'static {
    /// What `swarm validate` says of `plan` (shown as `shown`), its
    /// warnings after it.
    fn validate(
        &self,
        root: &Path,
        plan: &crate::plan::Plan,
        shown: &str,
    ) -> Result<String, String>;
    /// `swarm plan GOAL -o output` in the repository at `root`.
    fn plan(
        &self,
        root: &Path,
        goal: String,
        model: Option<String>,
        max_tasks: Option<u32>,
        output: PathBuf,
    ) -> Result<(), String>;
    /// `swarm logs RUN TASK [--attempt N]`'s text.
    fn logs(
        &self,
        root: &Path,
        run: &str,
        task: &str,
        attempt: Option<u32>,
    ) -> Result<String, String>;
    /// `swarm compare RUN TASK`'s table.
    fn compare(&self, root: &Path, run: &str, task: &str) -> Result<String, String>;
    /// `swarm runs --json`.
    fn runs(&self, root: &Path) -> Result<String, String>;
    /// The latest run of `repo`, if any.
    fn latest(&self, repo: &Repo) -> Result<Option<String>, String>;
    /// A plan's errors, as the command line words them.
    fn plan_refused(&self, error: Box<crate::plan::PlanError>) -> String;
}

/// Serves the repository `repo` (whose root, links resolved, is `root`)
/// to the client at the other end of `io` (the command line gives its
/// stdin and stdout) until it goes away; `program` is the `swarm` binary
/// that runs and resumes runs, detached. Call it on a runtime of several
/// threads: a call that blocks runs on a thread of its own.
pub async fn serve<R, W>(
    repo: Repo,
    root: PathBuf,
    program: PathBuf,
    front: Arc<dyn Front>,
    io: (R, W),
) -> Result<(), McpError>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let server = Swarm {
        root,
        repo,
        program,
        front,
        started: Arc::new(Mutex::new(BTreeSet::new())),
        tool_router: Swarm::tool_router(),
    };
    let service = server
        .serve(io)
        .await
        .map_err(|e| McpError::Start(e.to_string()))?;
    service
        .waiting()
        .await
        .map_err(|e| McpError::Serve(e.to_string()))?;
    Ok(())
}

/// Why the server stopped, as a fragment that reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("start the MCP server: {0}")]
    Start(String),
    #[error("serve MCP: {0}")]
    Serve(String),
}

/// The server: one repository.
#[derive(Clone)]
struct Swarm {
    repo: Repo,
    /// The repository's root, links resolved: the client's paths are
    /// taken from it, and read inside it.
    root: PathBuf,
    /// The `swarm` binary, which runs and resumes runs.
    program: PathBuf,
    /// What the command line answers for the server.
    front: Arc<dyn Front>,
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
    /// Or the plan's TOML itself (its file names are relative to the
    /// repository's root).
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
        let received = match self.receive(&arg) {
            Ok(r) => r,
            Err(why) => return refused(why),
        };
        let root = self.root.clone();
        let front = Arc::clone(&self.front);
        blocking(move || {
            let path = root.join(&received.shown);
            let plan = match received.plan(&root, &path, Origin::Mcp, None) {
                Ok(plan) => plan,
                Err(e) => return refused(front.plan_refused(e)),
            };
            match front.validate(&root, &plan, &received.shown) {
                Ok(shown) => text(escape::text(&shown).into_owned()),
                Err(why) => refused(why),
            }
        })
        .await?
    }

    #[tool(
        description = "Split a goal into a plan with the planner model (as `swarm plan`): returns the plan's TOML and where it was written. Nothing runs; review it, then run_plan."
    )]
    #[allow(
        clippy::disallowed_methods,
        reason = "the plan swarm's planner just wrote in .swarm/mcp/goals/, swarm's own"
    )]
    async fn plan_goal(
        &self,
        Parameters(arg): Parameters<GoalArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let dir = self.state_dir(&[layout::MCP, layout::GOALS])?;
        let name = crate::planner::slug(&arg.goal, "plan");
        let file = (1..)
            .map(|n| match n {
                1 => dir.join(format!("{name}.toml")),
                n => dir.join(format!("{name}-{n}.toml")),
            })
            .find(|p| p.symlink_metadata().is_err())
            .unwrap_or_else(|| dir.join(format!("{name}.toml")));
        let root = self.root.clone();
        let front = Arc::clone(&self.front);
        let output = file.clone();
        let planned =
            blocking(move || front.plan(&root, arg.goal, arg.model, arg.max_tasks, output)).await?;
        if let Err(why) = planned {
            return refused(why);
        }
        let plan = std::fs::read_to_string(&file).map_err(|e| internal(&file, e))?;
        let shown = file.strip_prefix(&self.root).unwrap_or(&file);
        text(format!(
            "# written to {}\n{}",
            shown.display(),
            escape::text(&plan)
        ))
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
        let received = match self.receive(&arg.plan) {
            Ok(r) => r,
            Err(why) => return refused(why),
        };
        // Checked here, in the process that answers the client, and kept
        // as the bytes that were checked: the run reads those, and checks
        // them again itself.
        let root = self.root.clone();
        let only = arg.only.clone();
        let front = Arc::clone(&self.front);
        let checked = blocking(move || -> Result<(Received, PathBuf, String), String> {
            let path = root.join(&received.shown);
            let mut plan = received
                .plan(&root, &path, Origin::Mcp, None)
                .map_err(|e| front.plan_refused(e))?;
            if !only.is_empty() {
                plan.select(&only).map_err(|e| e.to_string())?;
            }
            let stored = received.store(&root).map_err(|e| e.to_string())?;
            let stem = path.file_stem().map_or_else(
                || "run".into(),
                |s| crate::planner::slug(&s.to_string_lossy(), "plan"),
            );
            Ok((received, stored, stem))
        })
        .await?;
        let (received, stored, stem) = match checked {
            Ok(c) => c,
            Err(why) => return refused(why),
        };
        let wanted = arg.name.clone().unwrap_or(stem);
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
        // Nothing here is a string of the client's as it came: the plan is
        // named by its hash, the name and the ids were checked.
        let mut args = vec![
            "run".to_string(),
            stored.display().to_string(),
            format!("--origin={}", Origin::Mcp.as_str()),
            format!("--name={name}"),
            "-q".into(),
        ];
        if !received.dir.is_empty() {
            args.push(format!("--files-dir={}", received.dir));
        }
        for id in &arg.only {
            args.push(format!("--only={id}"));
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
        let run = match self.run_name(Some(&arg.run)) {
            Ok(r) => r,
            Err(why) => return refused(why),
        };
        let root = self.root.clone();
        let front = Arc::clone(&self.front);
        let logs = blocking(move || front.logs(&root, &run, &arg.task, arg.attempt));
        match logs.await? {
            Ok(logs) => text(bounded(logs.as_bytes())),
            Err(why) => refused(why),
        }
    }

    #[tool(description = "An experiment's variants ranked (a task with `variants`).")]
    async fn compare(
        &self,
        Parameters(arg): Parameters<TaskArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let run = match self.run_name(Some(&arg.run)) {
            Ok(r) => r,
            Err(why) => return refused(why),
        };
        let root = self.root.clone();
        let front = Arc::clone(&self.front);
        match blocking(move || front.compare(&root, &run, &arg.task)).await? {
            Ok(table) => text(table),
            Err(why) => refused(why),
        }
    }

    #[tool(description = "Every run of the repository, newest first, as JSON.")]
    async fn list_runs(&self) -> Result<CallToolResult, ErrorData> {
        let root = self.root.clone();
        let front = Arc::clone(&self.front);
        match blocking(move || front.runs(&root)).await? {
            Ok(listed) => text(listed),
            Err(why) => refused(why),
        }
    }

    #[tool(
        description = "Cancel a running run as Ctrl-C does: its tasks are stopped, their work is kept on refs, and it can be resumed."
    )]
    #[allow(clippy::disallowed_methods, reason = "a run's lock, swarm's own file")]
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
        let mut args = vec!["resume".to_string(), "-q".into()];
        if arg.retry_failed {
            args.push("--retry-failed".into());
        }
        // The name was checked; after `--` it is the run's name whatever
        // it holds.
        args.extend(["--".into(), run.clone()]);
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
        let runs = crate::state::State::open(&self.root)
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
            "summary" => crate::export::markdown(&report),
            _ => return Err(not_found()),
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(body, uri.clone())]).into())
    }
}

fn internal(path: &Path, e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(format!("read {}: {e}", path.display()), None)
}

impl Swarm {
    /// Starts this binary with `args` in a process group of its own,
    /// detached from the server (a run outlives the client's session), its
    /// output to `.swarm/mcp/<run>.log`.
    fn detached(&self, run: &str, args: &[String]) -> Result<(), ErrorData> {
        let dir = self.state_dir(&[layout::MCP])?;
        let log_path = dir.join(format!("{run}.log"));
        let log = crate::untrusted::append(&dir, &format!("{run}.log"))
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
        let state = crate::state::State::create(&self.root)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        state
            .ensure_dir(parts)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    /// The plan the client named (a file inside the repository, read
    /// without following a link) or sent.
    fn receive(&self, arg: &PlanArg) -> Result<Received, String> {
        match (&arg.path, &arg.text) {
            (Some(path), None) => Received::from_path(&self.root, path).map_err(|e| e.to_string()),
            (None, Some(text)) => Received::from_text(text.clone()).map_err(|e| e.to_string()),
            _ => Err(
                "give the plan as `path` (a file in the repository) or as `text`, one of them"
                    .into(),
            ),
        }
    }

    /// `run`, checked, or the latest run.
    fn run_name(&self, run: Option<&str>) -> Result<String, String> {
        match run {
            Some(name) => {
                run::check_run_name(name).map_err(|e| e.to_string())?;
                Ok(name.to_string())
            }
            None => self
                .front
                .latest(&self.repo)?
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

/// Runs `work` (which may block: git, the file system, a model) on a
/// thread of its own, and waits for it without holding the server.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ErrorData> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("swarm-mcp-call".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| ErrorData::internal_error(format!("start a thread: {e}"), None))?;
    rx.await.map_err(|_| {
        ErrorData::internal_error(
            "the call's thread ended without an answer".to_string(),
            None,
        )
    })
}
