//! The command line (clap's types) and the match that hands each command
//! to its file.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Parser, Subcommand};
use swarm_orchestrator::exit;
use swarm_orchestrator::plan;

use crate::Failure;
use crate::clean_cmd::{clean, clean_gone};
use crate::common::{check_name, latest, open_repo, open_state};
use crate::doctor::doctor;
use crate::drive::{ResumeArgs, RunArgs, resume_run, run_plan};
use crate::graph_cmd::{GraphFormat, graph};
use crate::report_cmd::{html_report, status, trace};

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
    Run(Box<RunArgs>),
    /// Continue a run whose coordinator died or was cancelled (default: the
    /// latest run): finished tasks stay finished, interrupted ones start again.
    Resume(ResumeArgs),
    /// Land a run on the branch it started from (or --onto BRANCH), which
    /// may have moved: by fast-forward if it did not; else its results are
    /// merged again, in order, onto the new tip (those that now conflict
    /// run again), verified, and only then is the branch moved (or pushed
    /// with --push REMOTE, never over what someone else pushed).
    Land(Box<crate::land::LandArgs>),
    /// Let swarm split a goal into a plan: the model (through the
    /// coordinator's gateway) sees the goal and a map of the repository,
    /// and swarm writes its answer as a checked plan file to edit and run.
    Plan(crate::plan_cmd::PlanArgs),
    /// Trust the repository's swarm.toml as it is now: show what it
    /// weakens (sandbox, network, read_paths...) and where its model keys
    /// go, then remember it (outside the repository) by its path and the
    /// hash of its content. Until then `swarm plan` refuses such settings;
    /// any change makes the file untrusted again.
    Trust {
        /// Forget the trust instead.
        #[arg(long)]
        revoke: bool,
    },
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
    /// Write a run's report (default: the latest run) as one self-contained
    /// HTML page: the task graph, a timeline of every attempt, each task's
    /// status, time, cost, files and log tail, experiments, the run-wide
    /// verify, conflicts. Works for finished, failed, interrupted and
    /// resumed runs, and while a run goes on.
    Report {
        /// The run name (see `.swarm/runs/`).
        run: Option<String>,
        /// Where to write the page.
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
    },
    /// Print a run's timeline (default: the latest run) as Chrome trace
    /// events (JSON), for Perfetto or chrome://tracing: a track per slot
    /// with each attempt's phases, and the coordinator's merges and verify.
    Trace {
        /// The run name (see `.swarm/runs/`).
        run: Option<String>,
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
    ///
    /// The repository's build caches outlive runs: they are listed, and freed
    /// with --caches.
    Clean {
        /// The run (see `.swarm/runs/`).
        #[arg(conflicts_with = "all")]
        run: Option<String>,
        /// Every run of the repository.
        #[arg(long)]
        all: bool,
        /// Every run that started longer ago than AGE (`7d`, `12h`).
        #[arg(long, value_name = "AGE", conflicts_with_all = ["run", "all"])]
        older_than: Option<String>,
        /// Also delete the run's refs whose commits are on the integration
        /// branch swarm/<run> (git decides, not the task's status); the others
        /// are kept and listed with why.
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
        /// Also free the repository's build caches (shared by its tasks
        /// across runs); refused while one of its runs is being driven.
        #[arg(long)]
        caches: bool,
        /// Also free the repository's warm worktrees (kept between runs at
        /// one path per task) and kept setups; one a run is using, or one
        /// an interrupted run left, is kept and said so.
        #[arg(long)]
        warm: bool,
        /// Instead: remove, machine-wide, the worktree homes (worktrees and
        /// caches) of repositories that no longer exist.
        #[arg(long, conflicts_with_all = ["run", "all", "refs", "caches", "warm"])]
        gone: bool,
        /// With --gone: the root of worktree homes (default: where runs put
        /// them, ~/.cache/swarm/worktrees).
        #[arg(long, value_name = "DIR", requires = "gone")]
        worktrees: Option<PathBuf>,
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
        /// The task (or `plan`: the planner's conversation of a `run
        /// --goal`; `replan`: every change the replanner made, as diffs).
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
        /// Show the attempt's cassette in DIR (where `--record DIR` kept
        /// the run's model traffic) instead of its output.
        #[arg(long, value_name = "DIR", conflicts_with = "follow")]
        cassette: Option<PathBuf>,
        /// Show the output of the attempt's `[setup]` instead of its own.
        #[arg(long, conflicts_with_all = ["follow", "cassette"])]
        setup: bool,
        /// Show the output of a variant's `score` instead of its own.
        #[arg(long, conflicts_with_all = ["follow", "cassette", "setup"])]
        score: bool,
        /// Show the output of the attempt's `[cleanup]` instead of its own.
        #[arg(long, conflicts_with_all = ["follow", "cassette", "setup", "score"])]
        cleanup: bool,
    },
    /// Rank an experiment's variants (a task with `variants`): score,
    /// verify, tokens, cost, time and diff size of each, and which one was
    /// picked; `--diff A B` prints the difference between two of them.
    Compare {
        /// The run (see `.swarm/runs/`).
        run: String,
        /// The experiment (the task with `variants`).
        task: String,
        /// Print the diff from variant A's result to variant B's (their
        /// numbers, `2`, or ids, `speedup@2`).
        #[arg(long, num_args = 2, value_names = ["A", "B"])]
        diff: Option<Vec<String>>,
    },
    /// Show what this machine supports for sandboxing and what swarm
    /// enforces; with --model, what a model does for swarm instead.
    Doctor {
        /// Ask model NAME of the planner's configuration (the repository's
        /// swarm.toml, else ~/.config/swarm/swarm.toml) whether it answers,
        /// holds an answer to a JSON schema and calls a tool.
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
        /// The configuration to read the model from (a file named here is
        /// yours, trusted).
        #[arg(long, value_name = "FILE", requires = "model")]
        config: Option<PathBuf>,
        /// Trust the repository's own swarm.toml for this check.
        #[arg(long, requires = "model")]
        trust: bool,
    },
    /// Serve this repository to an MCP client (Claude Code, Codex, Cursor...)
    /// on stdin/stdout: validate, plan, run, follow, cancel and resume runs.
    /// `claude mcp add swarm -- swarm mcp`.
    Mcp,
    /// Print a completion script for a shell, e.g.
    /// `swarm completions bash > ~/.local/share/bash-completion/completions/swarm`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the JSON schema of plan files (`--events`: of run events;
    /// `--cassette`: of a cassette's lines).
    #[command(hide = true)]
    Schema {
        #[arg(long, conflicts_with = "cassette")]
        events: bool,
        #[arg(long)]
        cassette: bool,
    },
    /// The sandbox launcher: started by `swarm run` with a socket on fd 3,
    /// it starts every sandboxed worker of the run, or with `--unconfined`
    /// every command of an unconfined run (internal).
    #[command(name = "__sandbox", hide = true)]
    Sandbox {
        #[arg(long)]
        unconfined: bool,
    },
    /// The agent worker of an agent task: started by `swarm run` in the
    /// task's sandbox with its channel to the model gateway (internal).
    #[command(name = "__agent", hide = true)]
    Agent,
    /// One attempt of one task on a cluster node: started by the batch
    /// script of a Slurm job, with the job's spec on stdin (internal).
    #[command(name = "__node", hide = true)]
    Node,
}

pub fn main(cli: Cli) -> Result<i32, Failure> {
    let cwd = match &cli.dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| Failure::Internal(e.into()))?,
    };
    match cli.command {
        Command::Run(args) => run_plan(&cwd, *args),
        Command::Resume(args) => resume_run(&cwd, args),
        Command::Land(args) => crate::land::land(&cwd, *args),
        Command::Clean {
            run,
            all,
            refs,
            force,
            caches,
            warm,
            gone,
            worktrees,
            older_than,
        } => match gone {
            true => clean_gone(worktrees.map(|dir| cwd.join(dir))),
            false => {
                let which = crate::clean_cmd::Which::of(run, all, older_than.as_deref())?;
                clean(&cwd, which, refs, force, caches, warm)
            }
        },
        Command::Logs {
            run,
            task,
            attempt,
            follow,
            raw,
            cassette,
            setup,
            score,
            cleanup,
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
            let show = match cassette {
                Some(dir) => crate::logs::Show::Cassette(cwd.join(dir)),
                None if follow => crate::logs::Show::Follow,
                None if setup => crate::logs::Show::Setup,
                None if score => crate::logs::Show::Score,
                None if cleanup => crate::logs::Show::Cleanup,
                None => crate::logs::Show::Output,
            };
            crate::logs::logs(&repo.workdir, &run, &task, attempt, show, raw)
        }
        Command::Plan(args) => crate::plan_cmd::plan_cmd(&cwd, args),
        Command::Trust { revoke } => crate::trust_cmd::trust_cmd(&cwd, revoke),
        Command::Validate { plan } => crate::validate::validate(&cwd, &plan),
        Command::Graph { plan, run, format } => {
            graph(&cwd, plan.as_deref(), run.as_deref(), format)
        }
        Command::Status { run, json } => status(&cwd, run.as_deref(), json),
        Command::Report { run, html } => html_report(&cwd, run.as_deref(), &html),
        Command::Trace { run } => trace(&cwd, run.as_deref()),
        Command::Runs { json } => crate::runs::runs(&cwd, json),
        Command::Resolve { run, task } => crate::resolve::resolve(&cwd, &run, &task),
        Command::Compare { run, task, diff } => {
            crate::compare::compare(&cwd, &run, &task, diff.as_deref())
        }
        Command::Doctor { model: None, .. } => doctor(),
        Command::Doctor {
            model: Some(model),
            config,
            trust,
        } => crate::doctor_model::doctor_model(&cwd, &model, config.as_deref(), trust),
        Command::Mcp => crate::mcp::mcp(&cwd),
        Command::Completions { shell } => {
            print!("{}", completions(shell));
            Ok(swarm_orchestrator::exit::SUCCESS)
        }
        Command::Sandbox { unconfined } => Ok(swarm_sandbox::launcher::serve(if unconfined {
            swarm_sandbox::launcher::Mode::Unconfined
        } else {
            swarm_sandbox::launcher::Mode::Sandboxed
        })),
        Command::Agent => Ok(crate::agent_worker::agent_main()),
        Command::Node => crate::node::node_main(),
        Command::Schema { events, cassette } => {
            if events {
                print!("{}", swarm_protocol::events_schema());
            } else if cassette {
                print!("{}", swarm_protocol::cassette::cassette_schema());
            } else {
                print!("{}", plan::schema::json_schema());
            }
            Ok(exit::SUCCESS)
        }
    }
}

/// The completion script for `shell`. clap_complete's bash script offers
/// hidden subcommands too (`__sandbox`, ...): they are taken out of the
/// words it offers, as the other shells' scripts leave them out.
fn completions(shell: clap_complete::Shell) -> String {
    let mut command = <Cli as clap::CommandFactory>::command();
    let hidden: Vec<String> = command
        .get_subcommands()
        .filter(|c| c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "swarm", &mut script);
    let script = String::from_utf8_lossy(&script);
    script
        .lines()
        .map(|line| {
            let Some((head, rest)) = line.split_once("opts=\"") else {
                return line.to_string();
            };
            let Some((words, tail)) = rest.rsplit_once('"') else {
                return line.to_string();
            };
            let kept: Vec<&str> = words
                .split(' ')
                .filter(|w| !hidden.iter().any(|h| w == h))
                .collect();
            format!("{head}opts=\"{}\"{tail}", kept.join(" "))
        })
        .map(|line| line + "\n")
        .collect()
}
