//! Subcommands: what each one checks, runs and prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::graph::TaskGraph;
use swarm_orchestrator::plan::{self, Plan, SandboxMode};
use swarm_orchestrator::run::{self, RunError, RunOptions, SandboxSettings};
use swarm_orchestrator::{exit, journal, report};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use crate::Failure;
use crate::output;

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
    Run(RunArgs),
    /// Continue a run whose coordinator died or was cancelled (default: the
    /// latest run): finished tasks stay finished, interrupted ones start again.
    Resume(ResumeArgs),
    /// Check a plan (and that its base exists) without running anything.
    Validate {
        /// The plan file.
        plan: PathBuf,
    },
    /// Print a plan's task graph, or a run's graph coloured by status.
    Graph {
        /// The plan file (or use --run).
        #[arg(required_unless_present = "run")]
        plan: Option<PathBuf>,
        /// Colour the graph of this run by task status.
        #[arg(long, conflicts_with = "plan")]
        run: Option<String>,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Show what a run did (default: the latest run), also while it runs.
    Status {
        /// The run name (see `.swarm/runs/`).
        run: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the runs of this repository, newest first: state, start time,
    /// task counts (merged/failed/total) and integration branch.
    Runs {
        /// Print the list as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Free what runs leave on disk (worktrees, private tmp); work that is not
    /// on a ref yet is committed to one first. Default: the latest run.
    Clean {
        /// The run (see `.swarm/runs/`).
        #[arg(conflicts_with = "all")]
        run: Option<String>,
        /// Every run of the repository.
        #[arg(long)]
        all: bool,
        /// Also delete the refs of tasks whose result is merged (their work is
        /// in the integration branch); other refs are always kept.
        ///
        /// Also deletes the integration branch `swarm/<run>` if its tip is
        /// on another branch or HEAD (it was merged somewhere); otherwise it
        /// is kept, and said so.
        #[arg(long)]
        refs: bool,
        /// With --refs: delete the integration branch even if its tip is on
        /// no other branch (as `git branch -D`). Never a checked-out one.
        #[arg(long, requires = "refs")]
        force: bool,
    },
    /// Record a conflicted task as merged after you merged it into
    /// swarm/<run> by hand; `swarm resume` then runs what it blocked.
    #[command(after_long_help = crate::resolve::STEPS)]
    Resolve {
        /// The run.
        run: String,
        /// The conflicted task.
        task: String,
    },
    /// Print a task's output (for agent tasks, a readable transcript).
    ///
    /// Control characters in the output (escape sequences a task printed)
    /// are shown escaped (`\x1b`), so a task cannot drive your terminal.
    Logs {
        /// The run (see `.swarm/runs/`), then the task; with one argument,
        /// the task of the latest run.
        #[arg(value_name = "RUN")]
        run: String,
        /// The task.
        task: Option<String>,
        /// Which attempt (default: the last).
        #[arg(long)]
        attempt: Option<u32>,
        /// Keep printing the output as it grows, until the task ends.
        #[arg(short, long)]
        follow: bool,
        /// Print the output's bytes unchanged, escape sequences included.
        /// Only when stdout is not a terminal (a pipe, a file): on a
        /// terminal swarm refuses, since the bytes are the task's.
        #[arg(long)]
        raw: bool,
    },
    /// Show what this machine supports for sandboxing and what swarm enforces.
    Doctor,
    /// Print the JSON schema of plan files (`--events`: of run events).
    #[command(hide = true)]
    Schema {
        #[arg(long)]
        events: bool,
    },
    /// The sandbox launcher: started by `swarm run` with a socket on fd 3,
    /// it starts every sandboxed worker of the run (internal).
    #[command(name = "__sandbox", hide = true)]
    Sandbox,
    /// The agent worker of an agent task: started by `swarm run` in the
    /// task's sandbox with its channel to the model gateway (internal).
    #[command(name = "__agent", hide = true)]
    Agent,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Name of the run (default: the plan's name, with -2, -3... if taken).
    #[arg(long)]
    pub name: Option<String>,
    /// Start from this revision instead of the plan's `base`.
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Make task worktrees under DIR (outside the repository) instead of
    /// the plan's `worktrees` or ~/.cache/swarm/worktrees.
    #[arg(long, value_name = "DIR")]
    pub worktrees: Option<PathBuf>,
    /// Run only these tasks of the plan, and every task they depend on
    /// (`--only a b` or `--only a,b`).
    #[arg(long, value_name = "ID", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,
    #[command(flatten)]
    pub drive: Drive,
}

/// Settings `run` and `resume` share.
#[derive(Debug, clap::Args)]
pub struct Drive {
    /// Run at most N tasks at once (default: the plan's, else the CPU count).
    #[arg(short = 'j', long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Override the plan's sandbox (`none` disables confinement).
    #[arg(long, value_enum)]
    pub sandbox: Option<SandboxArg>,
    /// Time a stopped worker gets between SIGTERM and SIGKILL.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// Print only the final summary.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub outputs: Outputs,
}

/// Machine-readable outputs of `run` and `resume`.
#[derive(Debug, Clone, clap::Args)]
pub struct Outputs {
    /// `json`: print every event as one JSON object per line on stdout
    /// (and nothing else there; progress and the summary go to stderr).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub events: Option<EventsFormat>,
    /// Append every event as a JSON line to FILE.
    #[arg(long, value_name = "FILE")]
    pub events_file: Option<PathBuf>,
    /// Write a JUnit XML report to FILE: one test case per task.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary to FILE (e.g. "$GITHUB_STEP_SUMMARY").
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsFormat {
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The run (see `.swarm/runs/`; default: the latest).
    pub run: Option<String>,
    /// Run again, in the same run, the tasks that failed or timed out (and
    /// those they blocked), from the integration branch as it is now:
    /// after you fixed the cause. Merged tasks are not run again.
    #[arg(long)]
    pub retry_failed: bool,
    /// With --retry-failed: retry only these failed tasks (`a b` or `a,b`).
    #[arg(
        long,
        value_name = "ID",
        num_args = 1..,
        value_delimiter = ',',
        requires = "retry_failed"
    )]
    pub only: Vec<String>,
    #[command(flatten)]
    pub drive: Drive,
}

/// Whether `drive` starts a run or takes one over.
enum Mode {
    Start {
        name: Option<String>,
        worktrees: Option<PathBuf>,
    },
    Resume {
        run: String,
        /// `--retry-failed` (with the `--only` tasks, if any).
        retry_failed: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SandboxArg {
    Landlock,
    None,
}

pub fn main(cli: Cli) -> Result<i32, Failure> {
    let cwd = match &cli.dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| Failure::Internal(e.into()))?,
    };
    match cli.command {
        Command::Run(args) => run_plan(&cwd, args),
        Command::Resume(args) => resume_run(&cwd, args),
        Command::Clean {
            run,
            all,
            refs,
            force,
        } => clean(&cwd, run, all, refs, force),
        Command::Logs {
            run,
            task,
            attempt,
            follow,
            raw,
        } => {
            let repo = open_repo(&cwd)?;
            // `swarm logs TASK`: the latest run, as `status` defaults to.
            let (run, task) = match task {
                Some(task) => (run, task),
                None => {
                    let latest = latest(&repo)?.ok_or_else(|| {
                        Failure::Invalid(anyhow!(
                            "show logs of task `{run}`: swarm has not run in {}\nhelp: start a run with `swarm run PLAN`",
                            repo.workdir.display()
                        ))
                    })?;
                    (latest, run)
                }
            };
            check_name(&run)?;
            open_state(&repo, &run)?;
            crate::logs::logs(&repo.workdir, &run, &task, attempt, follow, raw)
        }
        Command::Validate { plan } => validate(&cwd, &plan),
        Command::Graph { plan, run, format } => {
            graph(&cwd, plan.as_deref(), run.as_deref(), format)
        }
        Command::Status { run, json } => status(&cwd, run.as_deref(), json),
        Command::Runs { json } => crate::runs::runs(&cwd, json),
        Command::Resolve { run, task } => crate::resolve::resolve(&cwd, &run, &task),
        Command::Doctor => doctor(),
        Command::Sandbox => Ok(swarm_sandbox::launcher::serve()),
        Command::Agent => Ok(crate::agent::agent_main()),
        Command::Schema { events } => {
            if events {
                print!("{}", swarm_protocol::events_schema());
            } else {
                print!("{}", plan::schema::json_schema());
            }
            Ok(exit::SUCCESS)
        }
    }
}

fn load_plan(cwd: &Path, path: &Path) -> Result<Plan, Failure> {
    let full = cwd.join(path);
    let mut plan = plan::load(&full).map_err(Failure::Plan)?;
    // Messages name the plan as the user wrote it, not as an absolute path.
    plan.source.name = path.display().to_string();
    Ok(plan)
}

fn open_repo(cwd: &Path) -> Result<Repo, Failure> {
    Repo::discover(cwd).map_err(|e| {
        Failure::Invalid(anyhow!(
            "{e}\nhelp: run swarm inside a git repository (`git init` creates one)"
        ))
    })
}

/// Refuses an invalid run name given on the command line (exit 2), before
/// anything is looked at or created.
fn check_name(name: &str) -> Result<(), Failure> {
    run::check_run_name(name).map_err(invalid_or_internal)
}

/// The checked state directory for reading run `run` (`None` if swarm
/// never ran here): untracked, no link in the run's layout.
fn open_state(repo: &Repo, run: &str) -> Result<Option<swarm_orchestrator::state::State>, Failure> {
    run::open_run_state(repo, run).map_err(invalid_or_internal)
}

/// The latest run of `repo`, if any (read without following a link).
fn latest(repo: &Repo) -> Result<Option<String>, Failure> {
    swarm_orchestrator::state::State::check_untracked(repo)
        .map_err(|e| invalid_or_internal(e.into()))?;
    run::latest_run(&repo.workdir).map_err(invalid_or_internal)
}

/// Warns, on stderr, about journal lines a tolerant read skipped.
pub fn warn_skipped(skipped: &[journal::Skipped]) {
    for s in skipped {
        eprintln!(
            "warning: {}",
            swarm_orchestrator::escape::line(&s.to_string())
        );
    }
}

fn invalid_or_internal(e: RunError) -> Failure {
    use swarm_orchestrator::worktree_home::HomeError;
    let state_help;
    let help = match &e {
        RunError::State(s) | RunError::Home(HomeError::State(s)) if s.help().is_some() => {
            state_help = format!("\nhelp: {}", s.help().unwrap_or_default());
            state_help.as_str()
        }
        RunError::NameTaken { .. } => "\nhelp: pick another --name, or omit it to get a free one",
        RunError::SwarmBranchExists { .. } => {
            "\nhelp: rename that branch (git branch -m swarm NEW)"
        }
        RunError::Git(swarm_orchestrator::git::GitError::UnknownRev { empty: true, .. }) => {
            "\nhelp: tasks start from a commit: commit something first (git add -A && git commit -m init)"
        }
        RunError::Git(swarm_orchestrator::git::GitError::UnknownRev { .. }) => {
            "\nhelp: set `base` in [swarm] (or --base) to an existing branch, tag or commit"
        }
        RunError::Home(HomeError::InsideRepository { .. } | HomeError::Relative { .. }) => {
            "\nhelp: choose an absolute directory outside the repository (--worktrees DIR, or `worktrees` in [swarm])"
        }
        RunError::Home(HomeError::Foreign { .. }) => {
            "\nhelp: choose another directory for worktrees (--worktrees DIR), or remove that one if nothing of it is needed"
        }
        _ => "",
    };
    if e.is_invalid_input() {
        Failure::Invalid(anyhow!("{e}{help}"))
    } else {
        Failure::Internal(anyhow!(e))
    }
}

/// `e`, and for a base that names no commit, where that base was given: at
/// its line when the plan set it, or named as `--base`'s.
fn base_failure(plan: &Plan, e: RunError) -> Failure {
    if let RunError::Git(swarm_orchestrator::git::GitError::UnknownRev {
        empty: false, repo, ..
    }) = &e
    {
        if let Some(error) = plan.unknown_base(repo) {
            return Failure::Plan(Box::new(error));
        }
        if plan.base_from == plan::BaseFrom::CommandLine {
            return Failure::Invalid(anyhow!(
                "{e}\nhelp: `{}` was given with --base; pass an existing branch, tag or commit",
                plan.base
            ));
        }
    }
    invalid_or_internal(e)
}

fn validate(cwd: &Path, path: &Path) -> Result<i32, Failure> {
    let plan = load_plan(cwd, path)?;
    wasm_engine(&plan, 1)?;
    let repo = open_repo(cwd)?;
    let base = repo
        .resolve(&plan.base)
        .map_err(|e| base_failure(&plan, e.into()))?;
    let graph = TaskGraph::new(&plan.tasks);
    let roots = (0..graph.len())
        .filter(|&i| graph.deps(i).next().is_none())
        .count();
    let longest = (0..graph.len())
        .map(|i| graph.critical_path(i))
        .max()
        .unwrap_or(0);
    println!(
        "{}: ok: {} tasks, {} without dependencies, longest chain {}, base {} ({})",
        path.display(),
        plan.tasks.len(),
        roots,
        longest,
        plan.base,
        &base.to_string()[..12]
    );
    let (read_paths, found) = grants(&plan)?;
    let home = swarm_orchestrator::worktree_home::WorktreeHome::path_for(
        &match &plan.worktrees {
            Some(entry) => expand_home(&plan, entry, "worktrees")?,
            None => default_worktree_root(),
        },
        &repo,
    );
    print_grants(&read_paths, &found, plan.caches.then_some(home.as_path()));
    println!("worktrees         {}", home.display());
    Ok(exit::SUCCESS)
}

fn graph(
    cwd: &Path,
    plan_path: Option<&Path>,
    run: Option<&str>,
    format: GraphFormat,
) -> Result<i32, Failure> {
    let (plan, status) = match (plan_path, run) {
        (Some(path), _) => (load_plan(cwd, path)?, None),
        (None, run) => {
            if let Some(run) = run {
                check_name(run)?;
            }
            let repo = open_repo(cwd)?;
            let (_, report) = load_report(&repo, run)?;
            let plan = load_plan(cwd, Path::new(&report.plan))?;
            let status: Vec<_> = plan
                .tasks
                .iter()
                .map(|t| {
                    report
                        .tasks
                        .iter()
                        .find(|r| r.id == t.id)
                        .map_or(swarm_protocol::TaskStatus::Pending, |r| r.status)
                })
                .collect();
            (plan, Some(status))
        }
    };
    let graph = TaskGraph::new(&plan.tasks);
    let text = match format {
        GraphFormat::Dot => graph.to_dot(&plan.name, &plan.tasks, status.as_deref()),
        GraphFormat::Mermaid => graph.to_mermaid(&plan.tasks, status.as_deref()),
    };
    print!("{text}");
    Ok(exit::SUCCESS)
}

fn load_report(
    repo: &Repo,
    run: Option<&str>,
) -> Result<(String, swarm_protocol::RunReport), Failure> {
    let name = match run {
        Some(name) => {
            check_name(name)?;
            name.to_string()
        }
        None => latest(repo)?.ok_or_else(|| {
            Failure::Invalid(anyhow!(
                "find a run in {}: swarm has not run here yet\nhelp: start one with `swarm run PLAN`",
                repo.workdir.display()
            ))
        })?,
    };
    open_state(repo, &name)?;
    let path = report::run_dir(&repo.workdir, &name).join("events.jsonl");
    if !path.exists() {
        return Err(Failure::Invalid(anyhow!(
            "find run `{name}`: no journal at {}\nhelp: runs are listed in .swarm/runs/",
            path.display()
        )));
    }
    let (events, skipped) =
        journal::read_tolerant(&path).map_err(|e| Failure::Internal(e.into()))?;
    warn_skipped(&skipped);
    let report = report::fold(&events)
        .ok_or_else(|| Failure::Internal(anyhow!("read run `{name}`: its journal is empty")))?;
    Ok((name, report))
}

fn status(cwd: &Path, run: Option<&str>, json: bool) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let (name, report) = load_report(&repo, run)?;
    if json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Failure::Internal(e.into()))?;
        println!("{}", swarm_orchestrator::escape::json(&text));
    } else {
        let driven = run::is_driven(&report::run_dir(&repo.workdir, &name));
        print!("{}", output::status_summary(&report, &repo.workdir, driven));
    }
    Ok(exit::SUCCESS)
}

fn run_plan(cwd: &Path, args: RunArgs) -> Result<i32, Failure> {
    if let Some(name) = &args.name {
        check_name(name)?;
    }
    let mut plan = load_plan(cwd, &args.plan)?;
    if !args.only.is_empty() {
        plan.select(&args.only)
            .map_err(|e| Failure::Invalid(anyhow!("{e}")))?;
    }
    let repo = open_repo(cwd)?;
    if let Some(base) = args.base {
        plan.base = base;
        plan.base_from = plan::BaseFrom::CommandLine;
    }
    let plan_path = args.plan.display().to_string();
    drive(
        repo,
        plan,
        &plan_path,
        args.drive,
        Mode::Start {
            name: args.name,
            worktrees: args.worktrees.map(|dir| cwd.join(dir)),
        },
    )
}

/// `swarm clean`: frees each run's worktrees and scratch space.
fn clean(
    cwd: &Path,
    run: Option<String>,
    all: bool,
    refs: bool,
    force: bool,
) -> Result<i32, Failure> {
    use swarm_orchestrator::escape;
    use swarm_orchestrator::state::State;
    if let Some(run) = &run {
        check_name(run)?;
    }
    let repo = open_repo(cwd)?;
    let state_err = |e: swarm_orchestrator::state::StateError| invalid_or_internal(e.into());
    State::check_untracked(&repo).map_err(state_err)?;
    let Some(state) = State::open(&repo.workdir).map_err(state_err)? else {
        println!("nothing to clean: no runs in {}", repo.workdir.display());
        return Ok(exit::SUCCESS);
    };
    let known = swarm_orchestrator::clean::runs(&state).map_err(state_err)?;
    let runs = if all {
        known
    } else {
        let Some(run) = run.or(state.latest().map_err(state_err)?) else {
            println!("nothing to clean: no runs in {}", repo.workdir.display());
            return Ok(exit::SUCCESS);
        };
        if !known.contains(&run) {
            return Err(Failure::Invalid(anyhow!(
                "clean run `{run}`: no such run in {} (runs: {})",
                repo.workdir.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        vec![run]
    };
    // Every run's layout is checked before anything is removed: a link
    // anywhere refuses the whole command.
    for run in &runs {
        state.check_run(run).map_err(state_err)?;
    }
    let mut total = 0;
    let mut code = exit::SUCCESS;
    for run in runs {
        match swarm_orchestrator::clean::clean(&repo, &state, &run, refs, force) {
            Ok(c) => {
                warn_skipped(&c.skipped);
                total += c.bytes_freed;
                // Each size next to what held it.
                println!(
                    "run {}: removed {} worktree{} ({}) and {} tmp director{} ({})",
                    c.run,
                    c.worktrees,
                    if c.worktrees == 1 { "" } else { "s" },
                    bytesize::ByteSize::b(c.worktree_bytes),
                    c.tmp_dirs,
                    if c.tmp_dirs == 1 { "y" } else { "ies" },
                    bytesize::ByteSize::b(c.tmp_bytes)
                );
                for (task, r) in &c.kept {
                    println!("  kept {task}'s uncommitted work on {r}");
                }
                for r in &c.refs_deleted {
                    println!("  deleted {r} (merged)");
                }
                print_branch_fate(c.branch.as_ref());
                for problem in &c.problems {
                    eprintln!("error: run {}: failed to {}", c.run, escape::line(problem));
                    code = exit::TASKS_FAILED;
                }
            }
            Err(e) => {
                eprintln!("error: failed to {}", escape::line(&e.to_string()));
                code = exit::TASKS_FAILED;
            }
        }
    }
    println!("freed {}", bytesize::ByteSize::b(total));
    if code != exit::SUCCESS {
        eprintln!("swarm clean left the above in place; everything else was freed");
    }
    Ok(code)
}

/// What `clean --refs` did with the integration branch, with what brings
/// it back or how to delete it anyway.
fn print_branch_fate(fate: Option<&swarm_orchestrator::clean::BranchFate>) {
    use swarm_orchestrator::clean::BranchFate;
    match fate {
        None => {}
        Some(BranchFate::Deleted { name, was }) => {
            let short = was.to_string();
            println!(
                "  deleted branch {name} (was {})",
                short.get(..10).unwrap_or(&short)
            );
        }
        Some(BranchFate::Unmerged { name, tip }) => {
            let short = tip.to_string();
            println!(
                "  kept branch {name}: its tip {} is on no other branch (merge it first, or pass --force to delete it anyway)",
                short.get(..10).unwrap_or(&short)
            );
        }
        Some(BranchFate::CheckedOut { name }) => {
            println!("  kept branch {name}: it is checked out (switch to another branch first)");
        }
    }
}

/// `swarm resume`: the run's saved plan, driven again from where it was.
fn resume_run(cwd: &Path, args: ResumeArgs) -> Result<i32, Failure> {
    if let Some(run) = &args.run {
        check_name(run)?;
    }
    let repo = open_repo(cwd)?;
    let latest_run = latest(&repo)?;
    let Some(run) = args.run.clone().or(latest_run) else {
        return Err(Failure::Invalid(anyhow!(
            "resume: no run found in {}; start one with `swarm run PLAN`",
            repo.workdir.display()
        )));
    };
    open_state(&repo, &run)?;
    let run_dir = report::run_dir(&repo.workdir, &run);
    let saved = run_dir.join("plan.toml");
    let text = std::fs::read_to_string(&saved).map_err(|e| {
        Failure::Invalid(anyhow!(
            "resume run `{run}`: cannot read its saved plan {}: {e} (runs started by swarm before 0.2 cannot be resumed)",
            saved.display()
        ))
    })?;
    // Relative paths in the plan (`wasm = ...`) are relative to where the
    // plan was, as when the run started.
    let started = journal::read(&run_dir.join("events.jsonl"))
        .ok()
        .and_then(|events| {
            events.into_iter().find_map(|e| match e.body {
                swarm_protocol::EventBody::RunStarted { plan, tasks, .. } => {
                    Some((PathBuf::from(plan), tasks))
                }
                _ => None,
            })
        });
    let (original, tasks) = match started {
        Some((plan, tasks)) => (plan, Some(tasks)),
        None => (saved, None),
    };
    let mut plan = plan::parse(&original, text).map_err(Failure::Plan)?;
    // A run started with `--only` runs the tasks its journal announced.
    if let Some(tasks) = tasks
        && tasks.len() < plan.tasks.len()
    {
        let ids: Vec<String> = tasks.into_iter().map(|t| t.id).collect();
        plan.select(&ids).map_err(|e| {
            Failure::Invalid(anyhow!(
                "resume run `{run}`: its saved plan does not have the tasks its journal names: failed to {e}"
            ))
        })?;
    }
    let plan_path = original.display().to_string();
    let retry_failed = args.retry_failed.then_some(args.only);
    drive(
        repo,
        plan,
        &plan_path,
        args.drive,
        Mode::Resume { run, retry_failed },
    )
}

/// Sets up what a run needs (sandbox launcher, WASM engine, model gateway)
/// and runs or resumes it to the end.
fn drive(
    repo: swarm_orchestrator::git::Repo,
    mut plan: Plan,
    plan_path: &str,
    args: Drive,
    mode: Mode,
) -> Result<i32, Failure> {
    if let Some(sandbox) = args.sandbox {
        plan.sandbox = match sandbox {
            SandboxArg::Landlock => SandboxMode::Landlock,
            SandboxArg::None => SandboxMode::None,
        };
    }
    if args.concurrency == Some(0) {
        return Err(Failure::Invalid(anyhow!(
            "start run: --concurrency must be at least 1"
        )));
    }
    let concurrency = args
        .concurrency
        .or(plan.concurrency)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let wasm = wasm_engine(&plan, concurrency)?;
    let gateway = crate::agent::gateway(&plan)?;
    let agent_program = match &gateway {
        None => None,
        Some(_) => Some(
            std::env::current_exe()
                .context("find the swarm binary to run agent workers")
                .map_err(Failure::Internal)?,
        ),
    };
    let (name, retry_failed) = match &mode {
        Mode::Start { name, .. } => (name.clone(), None),
        Mode::Resume { run, retry_failed } => (Some(run.clone()), retry_failed.clone()),
    };
    // A resumed run uses the home its journal recorded; this is only for
    // starting one.
    let worktree_root = match &mode {
        Mode::Start {
            worktrees: Some(dir),
            ..
        } => dir.clone(),
        _ => match &plan.worktrees {
            Some(entry) => expand_home(&plan, entry, "worktrees")?,
            None => default_worktree_root(),
        },
    };
    let options = RunOptions {
        worktree_root,
        caches: Vec::new(),
        sandbox: None,
        read_paths: Vec::new(),
        wasm,
        gateway,
        agent_program,
        name,
        concurrency,
        grace: args.grace,
        retry_failed,
    };
    // One thread runs the dispatcher and every worker future: a child's exit
    // and the next spawn need no hop between threads (which cost ~20% over
    // `xargs -P` on 1,000 no-op tasks). Git work runs on the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
        .map_err(Failure::Internal)?;
    let sandbox = match plan.sandbox {
        SandboxMode::None => None,
        SandboxMode::Landlock => Some(runtime.block_on(sandbox_settings(plan_path))?),
    };
    let (mut read_only, found) = grants(&plan)?;
    let sandbox = sandbox.map(|mut settings| {
        for toolchain in &found {
            settings.env.extend(toolchain.env.iter().cloned());
        }
        settings
    });
    read_only.extend(found.iter().flat_map(|t| t.grants.iter().cloned()));
    let caches = match plan.caches {
        false => Vec::new(),
        true => found
            .iter()
            .filter_map(|t| crate::toolchains::cache_of(t.name))
            .map(|(name, var)| run::BuildCache {
                name: name.into(),
                var: var.into(),
                per_task: var == "CARGO_TARGET_DIR",
            })
            .collect(),
    };
    let options = RunOptions {
        sandbox,
        read_paths: read_only,
        caches,
        ..options
    };
    let resuming = matches!(mode, Mode::Resume { .. });
    // `prepare` takes the plan; what a bad base's error needs is kept.
    let base_plan = Plan {
        tasks: Vec::new(),
        ..plan.clone()
    };
    let prepared = match mode {
        Mode::Start { .. } => run::prepare(repo, plan, options),
        Mode::Resume { run, .. } => run::prepare_resume(repo, plan, run, options),
    }
    .map_err(|e| base_failure(&base_plan, e))?;
    match &prepared.options.sandbox {
        None => eprintln!(
            "warning: sandbox = \"none\": tasks of run `{}` run UNCONFINED, with your permissions and environment",
            prepared.run
        ),
        Some(settings) => {
            if let Some(why) = settings.launcher.degraded() {
                eprintln!(
                    "warning: user namespaces are unavailable ({why}): tasks run under Landlock + seccomp only, \
                     so chmod, utime and xattr changes outside the worktree are not blocked (see `swarm doctor`)"
                );
            }
        }
    }
    // A run starts from a commit: changes in the working tree are not in
    // it, which surprises whoever just edited a file and ran the plan.
    let uncommitted = match resuming {
        true => 0,
        false => {
            let head = prepared.repo.resolve("HEAD").ok();
            match prepared.repo.uncommitted() {
                Ok(n) if n > 0 && head == Some(prepared.base_commit) => n,
                _ => 0,
            }
        }
    };
    if uncommitted > 0 {
        eprintln!(
            "warning: the working tree has {uncommitted} uncommitted change{}, which the run does not see: \
             its tasks start from the commit {} (commit the changes first, or pass --base to say where to start)",
            if uncommitted == 1 { "" } else { "s" },
            prepared
                .base_commit
                .to_string()
                .get(..10)
                .unwrap_or_default()
        );
    }
    let live = !args.quiet;
    let outputs = args.outputs;
    let mut events_file = match &outputs.events_file {
        None => None,
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    Failure::Invalid(anyhow!("open --events-file {}: {e}", path.display()))
                })?,
        ),
    };
    let events_stdout = outputs.events == Some(EventsFormat::Json);
    let tty = {
        use std::io::IsTerminal as _;
        std::io::stderr().is_terminal()
    };
    let result = runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(None);
        tokio::spawn(forward_signals(stop_tx));
        let printer = std::sync::Arc::new(std::sync::Mutex::new(
            output::Live::new(tty).uncommitted(uncommitted),
        ));
        // On a terminal the running tasks' block is redrawn as time passes.
        let ticker = (live && tty).then(|| {
            let printer = std::sync::Arc::clone(&printer);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
                loop {
                    every.tick().await;
                    printer
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .tick();
                }
            })
        });
        let mut observer = |event: &swarm_protocol::Event| {
            if live {
                printer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .event(event);
            }
            if events_stdout || events_file.is_some() {
                let line = serde_json::to_string(event).unwrap_or_default();
                // The same JSON, with nothing a terminal would act on.
                let line = swarm_orchestrator::escape::json(&line);
                if events_stdout {
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                if let Some(file) = &mut events_file {
                    use std::io::Write as _;
                    let _ = writeln!(file, "{line}");
                }
            }
        };
        let result = if resuming {
            run::resume(prepared, &mut observer, stop_rx).await
        } else {
            run::execute(prepared, &mut observer, stop_rx).await
        };
        if let Some(ticker) = ticker {
            ticker.abort();
        }
        result
    });
    let report = result.map_err(invalid_or_internal)?;
    eprint!("{}", output::summary(&report, Path::new(&report.repo)));
    write_exports(&report, &outputs)?;
    Ok(report.exit_code.unwrap_or(exit::TASKS_FAILED))
}

/// Writes the JUnit report and the Markdown summary the command line asked
/// for. The summary is appended, as `$GITHUB_STEP_SUMMARY` expects.
fn write_exports(report: &swarm_protocol::RunReport, outputs: &Outputs) -> Result<(), Failure> {
    if let Some(path) = &outputs.junit {
        let xml = swarm_orchestrator::export::junit(report)
            .map_err(|e| Failure::Internal(anyhow!("write the JUnit report: {e}")))?;
        std::fs::write(path, xml).map_err(|e| {
            Failure::Internal(anyhow!("write the JUnit report {}: {e}", path.display()))
        })?;
    }
    if let Some(path) = &outputs.summary {
        use std::io::Write as _;
        let text = swarm_orchestrator::export::markdown(report);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Failure::Internal(anyhow!("write the summary {}: {e}", path.display())))?;
    }
    Ok(())
}

/// The WASM engine of a plan with WASM tasks, every program loaded and
/// checked: a file that is not WASM, a module without `_start` or with
/// imports swarm does not provide is a plan error at its `wasm = ...`.
fn wasm_engine(
    plan: &Plan,
    concurrency: usize,
) -> Result<Option<std::sync::Arc<swarm_worker::wasm::WasmEngine>>, Failure> {
    let wasm_tasks: Vec<_> = plan
        .tasks
        .iter()
        .filter_map(|t| Some((t, t.wasm()?)))
        .collect();
    if wasm_tasks.is_empty() {
        return Ok(None);
    }
    // Compiled programs are cached across runs (wasmtime keys them by
    // content and its own version) in the user's cache directory.
    let cache_dir = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache"))
                .filter(|p| p.is_absolute())
        })
        .map(|dir| dir.join("swarm").join("wasm"));
    let options = swarm_worker::wasm::EngineOptions {
        cache_dir,
        concurrency,
        fuel: wasm_tasks.iter().any(|(_, w)| w.fuel.is_some()),
    };
    let engine = swarm_worker::wasm::WasmEngine::new(&options)
        .map_err(|e| Failure::Internal(anyhow!("start run: failed to {e}")))?;
    for (task, wasm) in wasm_tasks {
        if let Err(e) = engine.load(&wasm.module) {
            let help = match e {
                swarm_worker::wasm::WasmError::Read { .. } => {
                    "`wasm` paths are relative to the plan's directory"
                }
                swarm_worker::wasm::WasmError::NoStart { .. }
                | swarm_worker::wasm::WasmError::UnknownImport { .. } => {
                    "build the tool as a WASI command: `cargo build --target wasm32-wasip1` (or wasm32-wasip2)"
                }
                _ => {
                    "`wasm` takes a WASI preview 1 module or a preview 2 command component (.wasm)"
                }
            };
            return Err(Failure::Plan(Box::new(
                plan.source
                    .error(
                        plan::PlanErrorKind::BadValue,
                        format!("task `{}` cannot run its program: failed to {e}", task.id),
                        Some(wasm.span.clone()),
                        "this program",
                    )
                    .with_help(help),
            )));
        }
    }
    Ok(Some(std::sync::Arc::new(engine)))
}

/// Starts the run's sandbox launcher. Fails closed: sandboxed runs need
/// the kernel to enforce the sandbox.
async fn sandbox_settings(plan_path: &str) -> Result<SandboxSettings, Failure> {
    let refuse = |why: String| {
        Failure::Invalid(anyhow!(
            "start run: tasks cannot be sandboxed on this machine: {why}\n\
             help: `swarm doctor` shows what this kernel supports; to run without any confinement \
             (tasks get your permissions), set `sandbox = \"none\"` in the [swarm] table of {plan_path} \
             or pass --sandbox none"
        ))
    };
    // The launcher checks the kernel itself and says why it refuses.
    let launcher = start_launcher()
        .await
        .map_err(|e| refuse(format!("{e:#}")))?;
    let env = std::env::vars()
        .filter(|(k, _)| swarm_sandbox::ENV_ALLOWLIST.contains(&k.as_str()) || k.starts_with("LC_"))
        .collect();
    Ok(SandboxSettings { launcher, env })
}

/// The plan's `read_paths`, with `~/` expanded: readable by command tasks
/// under the sandbox, preopened read-only for WASM tasks. An entry that
/// does not exist is an error at its line (`validate` and `run` agree): a
/// typo would otherwise surface as a confusing failure inside a task.
fn read_paths(plan: &Plan) -> Result<Vec<PathBuf>, Failure> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut read_only = Vec::new();
    // Every bad entry at once, like the plan's own errors.
    let mut errors = Vec::new();
    for entry in &plan.read_paths {
        let raw = &entry.raw;
        let path = match (raw.strip_prefix("~/"), &home) {
            (Some(rest), Some(home)) => home.join(rest),
            (Some(_), None) => {
                errors.push(plan_error(
                    plan,
                    format!("`read_paths` entry `{raw}` needs $HOME, which is not set"),
                    entry.span.clone(),
                    "starts with ~/",
                    "set HOME, or write the path in full",
                ));
                continue;
            }
            (None, _) => PathBuf::from(raw),
        };
        if !path.exists() {
            errors.push(plan_error(
                plan,
                format!("`read_paths` entry `{}` does not exist", path.display()),
                entry.span.clone(),
                "no such file or directory",
                "fix the path, or remove the entry",
            ));
            continue;
        }
        read_only.push(path);
    }
    match plan::PlanError::bundle(errors) {
        Some(error) => Err(Failure::Plan(Box::new(error))),
        None => Ok(read_only),
    }
}

/// `entry` of the plan with `~/` expanded to the home directory.
fn expand_home(
    plan: &Plan,
    entry: &swarm_orchestrator::plan::ReadPath,
    key: &str,
) -> Result<PathBuf, Failure> {
    let raw = &entry.raw;
    match raw.strip_prefix("~/") {
        None => Ok(PathBuf::from(raw)),
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => Ok(PathBuf::from(home).join(rest)),
            None => Err(Failure::Plan(Box::new(plan_error(
                plan,
                format!("`{key}` entry `{raw}` needs $HOME, which is not set"),
                entry.span.clone(),
                "starts with ~/",
                "set HOME, or write the path in full",
            )))),
        },
    }
}

/// Where worktrees go unless the plan or `--worktrees` says: the user's
/// cache directory, which is outside any repository.
fn default_worktree_root() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    match (var("XDG_CACHE_HOME"), var("HOME")) {
        (Some(cache), _) => cache.join("swarm").join("worktrees"),
        (None, Some(home)) => home.join(".cache").join("swarm").join("worktrees"),
        (None, None) => std::env::temp_dir()
            .join(format!("swarm-{}", nix::unistd::getuid()))
            .join("worktrees"),
    }
}

/// An error at `span` of the plan's source.
fn plan_error(
    plan: &Plan,
    message: String,
    span: std::ops::Range<usize>,
    label: &str,
    help: &str,
) -> plan::PlanError {
    plan.source
        .error(
            swarm_orchestrator::plan::PlanErrorKind::BadValue,
            message,
            Some(span),
            label,
        )
        .with_help(help)
}

/// What sandboxed tasks of `plan` get beyond their worktree: the plan's
/// `read_paths`, then the detected toolchains' directories; and the
/// toolchains' variables.
fn grants(plan: &Plan) -> Result<(Vec<PathBuf>, Vec<crate::toolchains::Toolchain>), Failure> {
    let read_paths = read_paths(plan)?;
    let found = crate::toolchains::detect(&crate::toolchains::HostEnv::current(), &plan.toolchains);
    Ok((read_paths, found))
}

/// Lines saying what sandboxed tasks are granted, for `validate` and
/// `doctor`.
/// `home`: the repository's worktree home when tasks share build caches.
fn print_grants(
    read_paths: &[PathBuf],
    found: &[crate::toolchains::Toolchain],
    home: Option<&Path>,
) {
    if found.is_empty() {
        println!("toolchains        none found (or turned off by `toolchains`)");
    }
    for toolchain in found {
        println!("toolchain {:<7} {}", toolchain.name, toolchain.found);
        for grant in &toolchain.grants {
            println!("  read-only       {}", grant.display());
        }
        for (key, value) in &toolchain.env {
            println!("  env             {key}={value}");
        }
        if let (Some(home), Some((name, var))) = (home, crate::toolchains::cache_of(toolchain.name))
        {
            let dir = home.join(".cache").join(name);
            match var {
                "CARGO_TARGET_DIR" => println!(
                    "  build cache     {var}={}/<task> (writable, kept for the task's later runs)",
                    dir.display()
                ),
                _ => println!(
                    "  shared cache    {var}={} (writable, shared by the repository's tasks)",
                    dir.display()
                ),
            }
        }
    }
    for path in read_paths {
        println!("read_paths        {}", path.display());
    }
}

/// Starts this binary as the sandbox launcher (`swarm __sandbox`).
async fn start_launcher() -> anyhow::Result<swarm_sandbox::Launcher> {
    let helper =
        std::env::current_exe().context("find the swarm binary to use as the sandbox launcher")?;
    Ok(swarm_sandbox::Launcher::start(&helper).await?)
}

/// `swarm doctor`: what this machine supports and what swarm will enforce.
fn doctor() -> Result<i32, Failure> {
    let support = swarm_sandbox::probe::probe();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let git = std::process::Command::new("git")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("not found ({e})"));
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("kernel            {}", kernel.trim());
    match support.landlock_abi {
        Some(abi) => println!(
            "landlock          ABI {abi} (swarm needs {})",
            swarm_sandbox::probe::required_abi()
        ),
        None => println!(
            "landlock          unavailable: {}",
            support.landlock_error.as_deref().unwrap_or("unknown")
        ),
    }
    println!("seccomp           {}", yes(support.seccomp));
    match run::cgroup_support() {
        Some(version) => println!(
            "cgroups           {version}: a task's `memory` and `processes` limit all of its processes together"
        ),
        None => println!(
            "cgroups           unavailable: `memory` limits each process's address space, `processes` through the PID namespace"
        ),
    }
    // Whether the namespace layer works is only known by trying it: sysctls
    // do not show an AppArmor or container policy that refuses it.
    let launcher = support.require().and_then(|()| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(async {
                start_launcher()
                    .await
                    .map(|l| l.degraded().map(str::to_string))
            })
            .map_err(|e| format!("{e:#}"))
    });
    match &launcher {
        Ok(None) => println!(
            "namespaces        yes: user, mount, PID and network namespaces per task (namespace layer on)"
        ),
        Ok(Some(why)) => println!(
            "namespaces        no ({why}): Landlock + seccomp baseline only (chmod/utime/xattr outside the worktree not blocked)"
        ),
        Err(_) => println!("namespaces        not tried"),
    }
    println!("git               {git}");
    let wasm = swarm_worker::wasm::WasmEngine::new(&swarm_worker::wasm::EngineOptions {
        cache_dir: None,
        concurrency: 1,
        fuel: false,
    })
    .and_then(|engine| engine.self_check());
    match wasm {
        Ok(()) => println!(
            "wasmtime          {}: WASM tasks run (WASI preview 1 modules, preview 2 command components)",
            swarm_worker::wasm::WASMTIME
        ),
        Err(e) => println!("wasmtime          WASM tasks cannot run: failed to {e}"),
    }
    match launcher {
        Ok(_) => {
            println!("\nswarm enforces, for every sandboxed task:");
            println!(
                "  files      write only in the task's worktree, private tmp (also HOME, TMPDIR) and build caches;"
            );
            println!(
                "             read the system directories, a view of the repository's .git (objects,"
            );
            println!("             no config, no refs), nothing else of it; no set-user-ID files");
            println!(
                "             (namespace layer) a root file system of these paths only: no host sockets;"
            );
            println!("             all else read-only, metadata included, every mount nosuid");
            match swarm_sandbox::worker_identity() {
                Some((uid, gid)) => println!(
                    "  identity   uid {uid}, gid {gid} (nobody), no supplementary groups: swarm runs as root"
                ),
                None => println!(
                    "  identity   your own user (uid {}), no capabilities",
                    nix::unistd::geteuid()
                ),
            }
            println!("  network    none: no TCP (Landlock), no sockets but Unix ones (seccomp)");
            println!(
                "  processes  no signals or ptrace out of the sandbox, no namespaces, io_uring, bpf,"
            );
            println!(
                "             keyrings, mounts, TIOCSTI; no capabilities, no_new_privs; rlimits"
            );
            println!("  env        only PATH, locale, TERM, TZ and the task's own variables");
            println!(
                "\ntoolchains of this environment, granted to sandboxed tasks unless a plan's `toolchains` says otherwise:"
            );
            let found = crate::toolchains::detect(
                &crate::toolchains::HostEnv::current(),
                &swarm_orchestrator::plan::Toolchains::All,
            );
            print_grants(&[], &found, None);
            Ok(exit::SUCCESS)
        }
        Err(why) => {
            println!("\nsandboxed runs are REFUSED on this machine: {why}");
            println!("only `sandbox = \"none\"` (no confinement at all) can run here");
            Ok(exit::TASKS_FAILED)
        }
    }
}

/// First SIGINT/SIGTERM: stop gracefully. Second: kill at once.
async fn forward_signals(stop: watch::Sender<Option<Stop>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("failed to install signal handlers; Ctrl-C will not stop workers cleanly");
        return;
    };
    for level in [Stop::Graceful, Stop::Immediate] {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if level == Stop::Graceful {
            eprintln!(
                "swarm: stopping: waiting for running tasks to end (Ctrl-C again to kill them now)"
            );
        }
        let _ = stop.send(Some(level));
    }
}
