//! `swarm logs RUN TASK`: a task's output, and for agent tasks a readable
//! transcript (turns, tool calls, results), also while the run goes on
//! (`--follow`).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use swarm_orchestrator::gateway::tape::ReelId;
use swarm_orchestrator::{escape, journal, report, run};

use crate::Failure;
use crate::common::{check_name, latest, open_repo, open_state};

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
    logs(&repo.workdir, &run, &task, args.attempt, show, args.raw)
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

/// What of a task's attempt `swarm logs` shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Show {
    /// Its output (and transcript, verify's output).
    Output,
    /// Its output as it grows (`--follow`).
    Follow,
    /// Its cassette in a `--record` directory (`--cassette DIR`).
    Cassette(PathBuf),
    /// The output of its `[setup]` (`--setup`).
    Setup,
    /// The output of a variant's `score` (`--score`).
    Score,
    /// The output of its `[cleanup]` (`--cleanup`).
    Cleanup,
}

pub fn logs(
    workdir: &Path,
    run_name: &str,
    task: &str,
    attempt: Option<u32>,
    show: Show,
    raw: bool,
) -> Result<i32, Failure> {
    let mode = if raw {
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
    if swarm_orchestrator::plan::is_glob(task) && show != Show::Follow {
        return each_matching(workdir, run_name, task, attempt, show, mode);
    }
    logs_to(
        workdir,
        run_name,
        task,
        attempt,
        show,
        mode,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// `swarm logs RUN GLOB`: the logs of every task the glob matches (as in
/// `deps`), in plan order, each under a `==> task <==` line.
fn each_matching(
    workdir: &Path,
    run_name: &str,
    pattern: &str,
    attempt: Option<u32>,
    show: Show,
    mode: Mode,
) -> Result<i32, Failure> {
    let dir = report::run_dir(workdir, run_name);
    let (events, _) = journal::read_tolerant(&dir.join(swarm_orchestrator::layout::JOURNAL))
        .map_err(|e| {
            Failure::Invalid(anyhow!(
                "show logs of run `{run_name}`: {e} (see `swarm status` for runs)"
            ))
        })?;
    let folded = report::fold(&events).ok_or_else(|| {
        Failure::Invalid(anyhow!("show logs of run `{run_name}`: it has not started"))
    })?;
    let matched =
        swarm_orchestrator::plan::ids_matching(pattern, folded.tasks.iter().map(|t| t.id.as_str()))
            .map_err(|e| Failure::Invalid(anyhow!("show logs of run `{run_name}`: {e}")))?;
    if matched.is_empty() {
        return Err(Failure::Invalid(anyhow!(
            "show logs of run `{run_name}`: `{pattern}` matches no task\nhelp: a glob matches task ids as in `deps`, e.g. \"test-*\"; `swarm status {run_name}` lists them"
        )));
    }
    let mut code = crate::exit::SUCCESS;
    for (n, task) in matched.iter().enumerate() {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "{}==> {} <==",
            if n == 0 { "" } else { "\n" },
            swarm_orchestrator::escape::line(task)
        );
        let shown = logs_to(
            workdir,
            run_name,
            task,
            attempt,
            show.clone(),
            mode,
            &mut stdout,
            &mut std::io::stderr().lock(),
        );
        match shown {
            Ok(c) => code = code.max(c),
            // A task of the glob that never ran is said, and the rest shown.
            Err(Failure::Invalid(e)) => eprintln!("{e}"),
            Err(e) => return Err(e),
        }
    }
    Ok(code)
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
        Show::Output,
        Mode::Escaped,
        &mut out,
        &mut err,
    )?;
    out.extend_from_slice(&err);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[allow(clippy::too_many_arguments)]
fn logs_to(
    workdir: &Path,
    run_name: &str,
    task: &str,
    attempt: Option<u32>,
    show: Show,
    mode: Mode,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<i32, Failure> {
    let follow = show == Show::Follow;
    let dir = report::run_dir(workdir, run_name);
    let (events, skipped) = journal::read_tolerant(&dir.join(swarm_orchestrator::layout::JOURNAL))
        .map_err(|e| {
            Failure::Invalid(anyhow!(
                "show logs of run `{run_name}`: {e} (see `swarm status` for runs)"
            ))
        })?;
    crate::common::warn_skipped(&skipped);
    let folded = report::fold(&events).ok_or_else(|| {
        Failure::Invalid(anyhow!("show logs of run `{run_name}`: it has not started"))
    })?;
    // `swarm logs RUN plan`: the planner's conversation of a `--goal` run
    // (a task named `plan` comes first).
    let planner = swarm_orchestrator::layout::plans_dir(workdir, run_name)
        .join(swarm_orchestrator::layout::PLANNER_TRANSCRIPT);
    let planner_asked = task == "plan" && !folded.tasks.iter().any(|t| t.id == task);
    if let (true, Show::Cassette(dir)) = (planner_asked, &show) {
        return cassette(dir, &ReelId::Planner.file(), "the planner", mode, stdout);
    }
    if planner_asked && planner.is_file() {
        let text = std::fs::read_to_string(&planner).map_err(|e| {
            Failure::Invalid(anyhow!("show the planner's log of run `{run_name}`: {e}"))
        })?;
        mode.write(
            stdout,
            swarm_orchestrator::view::transcript::render(&text).as_bytes(),
        );
        return Ok(swarm_orchestrator::exit::SUCCESS);
    }
    // `swarm logs RUN replan`: every change the replanner made to the
    // plan, as the journal recorded it (a task named `replan` comes first).
    if task == "replan" && !folded.tasks.iter().any(|t| t.id == task) {
        let text = swarm_orchestrator::view::transcript::replans(&events);
        if text.is_empty() {
            return Err(Failure::Invalid(anyhow!(
                "show the replans of run `{run_name}`: it replanned nothing (`replan` in [swarm] allows it)"
            )));
        }
        mode.write(stdout, text.as_bytes());
        return Ok(swarm_orchestrator::exit::SUCCESS);
    }
    let Some(t) = folded.tasks.iter().find(|t| t.id == task) else {
        let ids: Vec<&str> = folded.tasks.iter().map(|t| t.id.as_str()).collect();
        let hint = swarm_orchestrator::plan::did_you_mean(task, ids.iter().copied())
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        return Err(Failure::Invalid(anyhow!(
            "show logs of task `{task}`: run `{run_name}` has no such task{hint}"
        )));
    };
    // Nothing to show is said, never an empty success: a task that never
    // ran (blocked, skipped; `--follow` waits for one still to come), an
    // attempt it did not make, logs that are gone.
    if t.attempts == 0 && (!follow || t.status.is_final()) {
        let why = t
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return Err(Failure::Invalid(anyhow!(
            "show logs of task `{task}`: it never ran in run `{run_name}` (it is {}{why})",
            t.status.as_str()
        )));
    }
    if let Some(n) = attempt.filter(|&n| n == 0 || n > t.attempts) {
        return Err(Failure::Invalid(anyhow!(
            "show logs of task `{task}`: it has no attempt {n} in run `{run_name}` (attempts: 1 to {})",
            t.attempts
        )));
    }
    let attempt = attempt.unwrap_or(t.attempts.max(1));
    if let Show::Cassette(dir) = &show {
        let id = ReelId::Attempt {
            task: task.to_string(),
            attempt,
        };
        return cassette(
            dir,
            &id.file(),
            &format!("task `{task}`, attempt {attempt}"),
            mode,
            stdout,
        );
    }
    if show == Show::Setup {
        let (out, err) = report::setup_log_paths(&dir, task, attempt);
        let egress = report::setup_egress_log_path(&dir, task, attempt);
        let logs = (out.as_path(), err.as_path(), Some(egress.as_path()));
        return phase_logs(logs, "setup", task, attempt, mode, stdout, stderr);
    }
    if show == Show::Cleanup {
        let (out, err) = report::cleanup_log_paths(&dir, task, attempt);
        let egress = report::cleanup_egress_log_path(&dir, task, attempt);
        let logs = (out.as_path(), err.as_path(), Some(egress.as_path()));
        return phase_logs(logs, "cleanup", task, attempt, mode, stdout, stderr);
    }
    if show == Show::Score {
        let (out, err) = report::score_log_paths(&dir, task, attempt);
        let logs = (out.as_path(), err.as_path(), None);
        return phase_logs(logs, "score", task, attempt, mode, stdout, stderr);
    }
    let (out, err) = report::log_paths(&dir, task, attempt);
    let (verify_out, verify_err) = report::verify_log_paths(&dir, task, attempt);
    let transcript = run::transcript_path(&dir, task, attempt);
    let egress = report::egress_log_path(&dir, task, attempt);
    if follow {
        return follow_log(stdout, &dir, task, &out, mode)
            .map(|()| swarm_orchestrator::exit::SUCCESS);
    }
    // A command makes its logs when it first prints, and a failed command
    // always has them. So no log at all is "gone" only for the last attempt
    // of a finished task whose command did not exit 0; an attempt still
    // running, an earlier one (its command may have exited 0 and the
    // attempt failed after) or one that exited 0 printed nothing.
    let surely_made = attempt == t.attempts && t.status.is_final() && t.exit_code != Some(0);
    let logs = [&out, &err, &transcript, &verify_out, &verify_err, &egress];
    if surely_made && !logs.iter().any(|p| p.exists()) {
        return Err(Failure::Invalid(anyhow!(
            "show logs of task `{task}`: attempt {attempt} of run `{run_name}` left no logs at {}",
            out.display()
        )));
    }
    // Whether anything was shown: an empty log is said, not left blank.
    let mut shown = false;
    if transcript.exists() {
        let text = std::fs::read_to_string(&transcript).unwrap_or_default();
        shown |= !text.is_empty();
        mode.write(
            stdout,
            swarm_orchestrator::view::transcript::render(&text).as_bytes(),
        );
    } else {
        let text = std::fs::read(&out).unwrap_or_default();
        shown |= !text.is_empty();
        mode.write(stdout, &text);
    }
    let err_text = std::fs::read(&err).unwrap_or_default();
    shown |= !err_text.is_empty();
    if !err_text.is_empty() {
        let _ = writeln!(stdout, "--- stderr");
        mode.write(stdout, &err_text);
    }
    // `verify`'s output, apart from the command's; what the egress proxy
    // of a task with a network list let through and refused.
    for (path, name) in [
        (&verify_out, "verify stdout"),
        (&verify_err, "verify stderr"),
        (&egress, "network (swarm's egress proxy)"),
    ] {
        let text = std::fs::read(path).unwrap_or_default();
        if !text.is_empty() {
            shown = true;
            let _ = writeln!(stdout, "--- {name}");
            mode.write(stdout, &text);
        }
    }
    if !shown {
        // On stderr, so that a pipe of the output gets the output only.
        let _ = writeln!(
            stderr,
            "(no output: attempt {attempt} of task `{task}` printed nothing)"
        );
    }
    Ok(swarm_orchestrator::exit::SUCCESS)
}

/// The output of attempt `attempt`'s `[setup]` or `score` (`what`), from
/// its logs `out` and `err`: none if it had none (or its setup was a copy
/// of one kept).
fn phase_logs(
    (out, err, egress): (&Path, &Path, Option<&Path>),
    what: &str,
    task: &str,
    attempt: u32,
    mode: Mode,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<i32, Failure> {
    let text = std::fs::read(out).unwrap_or_default();
    let err_text = std::fs::read(err).unwrap_or_default();
    // What setup's egress proxy let through and refused (a network list).
    let egress = egress
        .and_then(|path| std::fs::read(path).ok())
        .unwrap_or_default();
    mode.write(stdout, &text);
    if !err_text.is_empty() {
        let _ = writeln!(stdout, "--- stderr");
        mode.write(stdout, &err_text);
    }
    if !egress.is_empty() {
        let _ = writeln!(stdout, "--- network (swarm's egress proxy)");
        mode.write(stdout, &egress);
    }
    if text.is_empty() && err_text.is_empty() && egress.is_empty() {
        let why = match what {
            "setup" => "ran no setup, got a kept one, or its setup printed nothing",
            "cleanup" => "ran no cleanup, or its cleanup printed nothing",
            _ => "ran no score, or its score printed nothing",
        };
        let _ = writeln!(
            stderr,
            "(no {what} output: attempt {attempt} of task `{task}` {why})"
        );
    }
    Ok(swarm_orchestrator::exit::SUCCESS)
}

/// Prints `log` as it grows until the task `task` has finished.
fn follow_log(
    out: &mut dyn Write,
    dir: &Path,
    task: &str,
    log: &PathBuf,
    mode: Mode,
) -> Result<(), Failure> {
    // Escaping works on whole characters: a multi-byte character or an
    // escape sequence split across two reads must not slip through, so
    // bytes after the last newline wait for the next read (unless raw).
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    loop {
        // Read the journal first: output written before the task finished is
        // then on disk when the loop ends.
        let finished = journal::read_tolerant(&dir.join(swarm_orchestrator::layout::JOURNAL))
            .map(|(events, _)| {
                events.iter().any(|e| match &e.body {
                    swarm_protocol::EventBody::TaskFinished { task: t, .. } => t == task,
                    swarm_protocol::EventBody::RunFinished { .. } => true,
                    _ => false,
                })
            })
            .unwrap_or(false);
        if let Ok(mut file) = std::fs::File::open(log)
            && file.seek(SeekFrom::Start(offset)).is_ok()
        {
            let mut bytes = Vec::new();
            if file.read_to_end(&mut bytes).is_ok() && !bytes.is_empty() {
                offset += bytes.len() as u64;
                pending.extend_from_slice(&bytes);
                let whole = match mode {
                    Mode::Raw => pending.len(),
                    Mode::Escaped => pending
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |i| i + 1),
                };
                mode.write(out, &pending[..whole]);
                pending.drain(..whole);
                let _ = out.flush();
            }
        }
        if finished {
            mode.write(out, &pending);
            let _ = out.flush();
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints the cassette `file` under `dir` (of `whose` calls) for people:
/// read as the file of a repository it may be (no link followed, a
/// regular file, at most as large as a cassette replayed may be).
fn cassette(
    dir: &Path,
    file: &Path,
    whose: &str,
    mode: Mode,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let limits = swarm_orchestrator::untrusted::Limits {
        max_size: swarm_orchestrator::gateway::tape::MAX_CASSETTE,
        what: "a cassette",
    };
    let text = swarm_orchestrator::untrusted::read(dir, &file.to_string_lossy(), limits)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| {
            Failure::Invalid(anyhow!(
                "show the cassette of {whose}: {e}\nhelp: --cassette names the directory a run was recorded to (`swarm run --record DIR`)"
            ))
        })?;
    mode.write(
        out,
        swarm_orchestrator::view::cassette::render(&text).as_bytes(),
    );
    Ok(swarm_orchestrator::exit::SUCCESS)
}
