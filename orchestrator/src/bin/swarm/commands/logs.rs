//! `swarm logs RUN TASK`: a task's output, and for agent tasks a readable
//! transcript (turns, tool calls, results), also while the run goes on
//! (`--follow`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use swarm_orchestrator::logs::{self, LogsError, Part, RunLogs, Show, Shown};
use swarm_orchestrator::{escape, report};

use crate::common::{check_name, latest, open_repo, open_state};
use crate::failure::Failure;

/// `swarm logs`'s command line.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
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
}

/// `swarm logs [RUN] TASK [--attempt N] [--follow | --cassette DIR |
/// --setup | --score | --cleanup] [--raw]`.
pub(crate) fn cmd_logs(cwd: &Path, args: LogsArgs) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    // `swarm logs TASK`: the latest run, as `status` defaults to.
    let (run, task) = match args.task {
        Some(task) => (args.run, task),
        None => {
            let latest = latest(&repo)?.ok_or_else(|| {
                Failure::Invalid(anyhow!(
                    "show logs of task `{}`: swarm has not run in {}\nhelp: start a run with `swarm run PLAN`",
                    args.run,
                    repo.workdir.display()
                ))
            })?;
            (latest, args.run)
        }
    };
    check_name(&run)?;
    open_state(&repo, &run)?;
    let show = match args.cassette {
        Some(dir) => Show::Cassette(cwd.join(dir)),
        None if args.follow => Show::Follow,
        None if args.setup => Show::Setup,
        None if args.score => Show::Score,
        None if args.cleanup => Show::Cleanup,
        None => Show::Output,
    };
    let mode = if args.raw {
        use std::io::IsTerminal as _;
        if std::io::stdout().is_terminal() {
            return Err(Failure::Invalid(anyhow!(
                "show logs raw: stdout is a terminal, and a task's raw output can drive it (escape sequences)\n\
                 help: drop --raw to see the output with control characters escaped, or pipe it (`| less -R`, `> file`)"
            )));
        }
        Mode::Raw
    } else {
        Mode::Escaped
    };
    let (workdir, attempt) = (repo.workdir.as_path(), args.attempt);
    if swarm_orchestrator::plan::is_glob(&task) && show != Show::Follow {
        return each_matching(workdir, &run, &task, attempt, &show, mode);
    }
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    logs_to(
        workdir, &run, &task, attempt, &show, mode, &mut out, &mut err,
    )?;
    Ok(swarm_orchestrator::exit::SUCCESS)
}

/// How a task's output reaches stdout.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Control characters shown escaped: what a terminal gets.
    Escaped,
    /// The bytes as the task wrote them (`--raw`, stdout not a terminal).
    Raw,
}

impl Mode {
    fn write(self, out: &mut dyn Write, bytes: &[u8]) {
        let _ = match self {
            Self::Raw => out.write_all(bytes),
            Self::Escaped => out.write_all(escape::bytes(bytes).as_bytes()),
        };
    }
}

/// `swarm logs RUN GLOB`: the logs of every task the glob matches (as in
/// `deps`), in plan order, each under a `==> task <==` line.
fn each_matching(
    workdir: &Path,
    run_name: &str,
    pattern: &str,
    attempt: Option<u32>,
    show: &Show,
    mode: Mode,
) -> Result<i32, Failure> {
    let (logs, _) = RunLogs::open(workdir, run_name).map_err(invalid)?;
    let matched = logs.matching(pattern).map_err(invalid)?;
    for (n, task) in matched.iter().enumerate() {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "{}==> {} <==",
            if n == 0 { "" } else { "\n" },
            escape::line(task)
        );
        let mut stderr = std::io::stderr().lock();
        match logs_to(
            workdir,
            run_name,
            task,
            attempt,
            show,
            mode,
            &mut stdout,
            &mut stderr,
        ) {
            Ok(()) => {}
            // A task of the glob that never ran is said, and the rest shown.
            Err(Failure::Invalid(e)) => eprintln!("{e}"),
            Err(e) => return Err(e),
        }
    }
    Ok(swarm_orchestrator::exit::SUCCESS)
}

/// A task's logs, with control characters escaped, into `out` (notes such
/// as "no output" into `err`): what `swarm mcp` answers with.
pub fn logs_text(
    workdir: &Path,
    run_name: &str,
    task: &str,
    attempt: Option<u32>,
) -> Result<String, Failure> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    logs_to(
        workdir,
        run_name,
        task,
        attempt,
        &Show::Output,
        Mode::Escaped,
        &mut out,
        &mut err,
    )?;
    out.extend_from_slice(&err);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Every error of the logs is the person's to fix (exit 2).
fn invalid(e: LogsError) -> Failure {
    match e.help() {
        Some(help) => Failure::Invalid(anyhow!("{e}\nhelp: {help}")),
        None => Failure::Invalid(anyhow!("{e}")),
    }
}

#[allow(clippy::too_many_arguments)]
fn logs_to(
    workdir: &Path,
    run_name: &str,
    task: &str,
    attempt: Option<u32>,
    show: &Show,
    mode: Mode,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), Failure> {
    let (logs, skipped) = RunLogs::open(workdir, run_name).map_err(invalid)?;
    crate::common::warn_skipped(&skipped);
    match logs.show(task, attempt, show).map_err(invalid)? {
        Shown::Parts { parts, note } => {
            for part in parts {
                match part {
                    Part::Output(bytes) => mode.write(stdout, &bytes),
                    Part::Heading(name) => {
                        let _ = writeln!(stdout, "--- {name}");
                    }
                }
            }
            if let Some(note) = note {
                let _ = writeln!(stderr, "{note}");
            }
        }
        Shown::Follow { log } => {
            let dir = report::run_dir(workdir, run_name);
            follow_log(stdout, &dir, task, &log, mode);
        }
    }
    Ok(())
}

/// Prints `log` as it grows until the task `task` has finished.
fn follow_log(out: &mut dyn Write, dir: &Path, task: &str, log: &Path, mode: Mode) {
    let mut tail = logs::Tail::default();
    loop {
        // Read the journal first: output written before the task finished is
        // then on disk when the loop ends.
        let finished = logs::task_ended(dir, task);
        let bytes = tail.read(log, matches!(mode, Mode::Escaped));
        if !bytes.is_empty() {
            mode.write(out, &bytes);
            let _ = out.flush();
        }
        if finished {
            mode.write(out, &tail.rest());
            let _ = out.flush();
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
