//! The command line: clap's top-level types and the match that hands
//! each command to its file in `commands/` (whose arguments are there).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{
    agent, clean, compare, completions, doctor, graph, land, logs, mcp, node, plan, report,
    resolve, resume, run, runs, sandbox, schema, status, trace, trust, validate,
};
use crate::failure::Failure;

/// Run a graph of tasks in git worktrees, sandboxed, and merge the results.
#[derive(Debug, Parser)]
#[command(name = "swarm", version, about, max_term_width = 100)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also write logs (RUST_LOG filter) to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plan: every task in its own worktree, results merged into swarm/<run>.
    Run(Box<run::RunArgs>),
    /// Continue a run whose coordinator died or was cancelled (default: the
    /// latest run): finished tasks stay finished, interrupted ones start again.
    Resume(resume::ResumeArgs),
    /// Land a run on the branch it started from (or --onto BRANCH), which
    /// may have moved: by fast-forward if it did not; else its results are
    /// merged again, in order, onto the new tip (those that now conflict
    /// run again), verified, and only then is the branch moved (or pushed
    /// with --push REMOTE, never over what someone else pushed).
    Land(Box<land::LandArgs>),
    /// Let swarm split a goal into a plan: the model (through the
    /// coordinator's gateway) sees the goal and a map of the repository,
    /// and swarm writes its answer as a checked plan file to edit and run.
    Plan(plan::PlanArgs),
    /// Trust the repository's swarm.toml as it is now: show what it
    /// weakens (sandbox, network, read_paths...) and where its model keys
    /// go, then remember it (outside the repository) by its path and the
    /// hash of its content. Until then `swarm plan` refuses such settings;
    /// any change makes the file untrusted again.
    Trust(trust::TrustArgs),
    /// Check a plan (and that its base exists) without running anything.
    Validate(validate::ValidateArgs),
    /// Print a plan's task graph, or a run's graph coloured by status.
    Graph(graph::GraphArgs),
    /// Show what a run did (default: the latest run), also while it runs.
    Status(status::StatusArgs),
    /// Write a run's report (default: the latest run) as one self-contained
    /// HTML page: the task graph, a timeline of every attempt, each task's
    /// status, time, cost, files and log tail, experiments, the run-wide
    /// verify, conflicts. Works for finished, failed, interrupted and
    /// resumed runs, and while a run goes on.
    Report(report::ReportArgs),
    /// Print a run's timeline (default: the latest run) as Chrome trace
    /// events (JSON), for Perfetto or chrome://tracing: a track per slot
    /// with each attempt's phases, and the coordinator's merges and verify.
    Trace(trace::TraceArgs),
    /// List the runs of this repository, newest first: state, start time,
    /// task counts (merged/failed/total) and integration branch.
    Runs(runs::RunsArgs),
    /// Free what runs leave on disk (worktrees, private tmp); work that is not
    /// on a ref yet is committed to one first. Default: the latest run.
    ///
    /// The repository's build caches outlive runs: they are listed, and freed
    /// with --caches.
    Clean(clean::CleanArgs),
    /// Record a conflicted task as merged after you merged it into
    /// swarm/<run> by hand; `swarm resume` then runs what it blocked.
    #[command(after_long_help = swarm_orchestrator::view::resolve::STEPS)]
    Resolve(resolve::ResolveArgs),
    /// Print a task's output (for agent tasks, a readable transcript).
    ///
    /// Control characters in the output (escape sequences a task printed)
    /// are shown escaped (`\x1b`), so a task cannot drive your terminal.
    Logs(logs::LogsArgs),
    /// Rank an experiment's variants (a task with `variants`): score,
    /// verify, tokens, cost, time and diff size of each, and which one was
    /// picked; `--diff A B` prints the difference between two of them.
    Compare(compare::CompareArgs),
    /// Show what this machine supports for sandboxing and what swarm
    /// enforces; with --model, what a model does for swarm instead.
    Doctor(doctor::DoctorArgs),
    /// Serve this repository to an MCP client (Claude Code, Codex, Cursor...)
    /// on stdin/stdout: validate, plan, run, follow, cancel and resume runs.
    /// `claude mcp add swarm -- swarm mcp`.
    Mcp,
    /// Print a completion script for a shell, e.g.
    /// `swarm completions bash > ~/.local/share/bash-completion/completions/swarm`.
    Completions(completions::CompletionsArgs),
    /// Print the JSON schema of plan files (`--events`: of run events;
    /// `--cassette`: of a cassette's lines).
    #[command(hide = true)]
    Schema(schema::SchemaArgs),
    /// The sandbox launcher: started by `swarm run` with a socket on fd 3,
    /// it starts every sandboxed worker of the run, or with `--unconfined`
    /// every command of an unconfined run (internal).
    #[command(name = "__sandbox", hide = true)]
    Sandbox(sandbox::SandboxArgs),
    /// The agent worker of an agent task: started by `swarm run` in the
    /// task's sandbox with its channel to the model gateway (internal).
    #[command(name = "__agent", hide = true)]
    Agent,
    /// One attempt of one task on a cluster node: started by the batch
    /// script of a Slurm job, with the job's spec on stdin (internal).
    #[command(name = "__node", hide = true)]
    Node,
}

/// Runs the command `cli` names; its exit code, or why it failed.
pub fn main(cli: Cli) -> Result<i32, Failure> {
    let cwd = match &cli.dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| Failure::Internal(e.into()))?,
    };
    match cli.command {
        Command::Run(args) => run::run_plan(&cwd, *args),
        Command::Resume(args) => resume::resume_run(&cwd, args),
        Command::Land(args) => land::land(&cwd, *args),
        Command::Clean(args) => clean::cmd_clean(&cwd, args),
        Command::Logs(args) => logs::cmd_logs(&cwd, args),
        Command::Plan(args) => plan::plan_cmd(&cwd, args),
        Command::Trust(args) => trust::trust_cmd(&cwd, args),
        Command::Validate(args) => validate::cmd_validate(&cwd, args),
        Command::Graph(args) => graph::cmd_graph(&cwd, args),
        Command::Status(args) => status::status(&cwd, args),
        Command::Report(args) => report::html_report(&cwd, args),
        Command::Trace(args) => trace::trace(&cwd, args),
        Command::Runs(args) => runs::cmd_runs(&cwd, args),
        Command::Resolve(args) => resolve::cmd_resolve(&cwd, args),
        Command::Compare(args) => compare::cmd_compare(&cwd, args),
        Command::Doctor(args) => doctor::cmd_doctor(&cwd, args),
        Command::Mcp => mcp::mcp(&cwd),
        Command::Completions(args) => {
            completions::cmd_completions(args, <Cli as clap::CommandFactory>::command())
        }
        Command::Schema(args) => schema::cmd_schema(args),
        Command::Sandbox(args) => sandbox::cmd_sandbox(args),
        Command::Agent => Ok(agent::agent_main()),
        Command::Node => node::node_main(),
    }
}
