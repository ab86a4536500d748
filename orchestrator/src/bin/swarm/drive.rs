//! Driving a run, for `swarm run`, `swarm resume` and `swarm land`: what
//! a run needs set up (sandbox
//! launcher, WASM engine, model gateway, grants, caches, worktree root),
//! signals forwarded to the dispatcher, outputs written at the end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::ValueEnum;
use swarm_orchestrator::assemble;
use swarm_orchestrator::plan::{self, Plan, SandboxMode};
use swarm_orchestrator::run;
use swarm_orchestrator::{exit, journal, report};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use crate::common::{TapeArgs, base_failure, canonical_root, invalid_or_internal};
use crate::failure::Failure;
use crate::output;

// The command line `run` and `resume` share.

/// Settings `run` and `resume` share.
#[derive(Debug, Clone, clap::Args)]
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
    /// Where task attempts run: `local` (this machine) or `slurm` (one
    /// batch job each; settings in the plan's [executor] table).
    #[arg(long, value_enum)]
    pub executor: Option<ExecutorArg>,
    /// Slurm: the address the model gateway listens on for agent tasks on
    /// nodes (default: 0.0.0.0 on a free port).
    #[arg(long, value_name = "ADDR")]
    pub gateway_listen: Option<std::net::SocketAddr>,
    /// Print only the final summary (whose table then lists only the
    /// tasks that did not succeed).
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub outputs: Outputs,
    #[command(flatten)]
    pub tape: TapeArgs,
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
    /// Write the run as one self-contained HTML page to FILE (as `swarm
    /// report --html`).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorArg {
    Local,
    Slurm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsFormat {
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SandboxArg {
    Landlock,
    None,
}

/// Whether `drive` starts a run or takes one over.
pub(crate) enum Mode {
    Start {
        name: Option<String>,
        worktrees: Option<PathBuf>,
        /// `swarm land`: the results of the run it lands, adopted.
        adopt: Option<std::sync::Arc<run::land::Adopted>>,
    },
    Resume {
        run: String,
        /// `--retry-failed` (with the `--only` tasks, if any).
        retry_failed: Option<Vec<String>>,
    },
}

/// The plan run `run` ran (saved in its directory), read as it was when
/// the run started: relative paths from where the plan was, an untrusted
/// origin held to its rules again, only the tasks its journal announced;
/// and the plan's path then. `what` names the command in errors.
pub(crate) fn saved_plan(
    cwd: &Path,
    repo: &swarm_orchestrator::git::Repo,
    run: &str,
    what: &str,
) -> Result<(Plan, PathBuf), Failure> {
    let run_dir = report::run_dir(&repo.workdir, run);
    let saved = run_dir.join(swarm_orchestrator::layout::PLAN);
    let text = std::fs::read_to_string(&saved).map_err(|e| {
        Failure::Invalid(anyhow!(
            "{what} run `{run}`: cannot read its saved plan {}: {e} (runs started by swarm before 0.2 cannot be resumed)",
            saved.display()
        ))
    })?;
    // Relative paths in the plan (`wasm = ...`) are relative to where the
    // plan was, as when the run started.
    let started = journal::run_started(&run_dir.join(swarm_orchestrator::layout::JOURNAL))
        .and_then(|e| match e.body {
            swarm_protocol::EventBody::RunStarted {
                plan,
                tasks,
                origin,
                base_commit,
                ..
            } => Some((PathBuf::from(plan), tasks, origin, base_commit)),
            _ => None,
        });
    let (original, tasks, origin, base_commit) = match started {
        Some((plan, tasks, origin, base)) => (plan, Some(tasks), origin, Some(base)),
        None => (saved, None, None, None),
    };
    // Absolute, as `swarm run` makes it: jobs on cluster nodes read the
    // plan's relative paths from it too.
    let mut plan = match origin {
        // A `glob` lists the files of the commit the run started from.
        None => {
            let at = plan::origin::files::RunIn {
                repo: cwd.to_path_buf(),
                base: base_commit,
            };
            plan::parse_in(&cwd.join(&original), text, at).map_err(Failure::Plan)?
        }
        // A plan that came from an untrusted origin is held to its rules
        // again: what was refused then is refused now.
        Some(recorded) => {
            let origin = plan::origin::Origin::from_name(&recorded.origin)
                .filter(|o| o.is_untrusted())
                .ok_or_else(|| {
                    Failure::Invalid(anyhow!(
                        "{what} run `{run}`: its journal names an origin swarm does not know (`{}`)",
                        recorded.origin
                    ))
                })?;
            let root = canonical_root(repo)?;
            let mut received = swarm_orchestrator::received::Received::from_text(text)
                .map_err(|e| Failure::Invalid(anyhow!("{what} run `{run}`: {e}")))?;
            received.dir = recorded.files_dir;
            // Its files read at the commit the run started from, as then.
            received
                .plan(&root, &cwd.join(&original), origin, base_commit.as_deref())
                .map_err(Failure::Plan)?
        }
    };
    plan.source.name = original.display().to_string();
    // Tasks of many entries split as the run split them.
    let groups = journal::read_tolerant(&run_dir.join(swarm_orchestrator::layout::JOURNAL))
        .map(|(events, _)| {
            events
                .into_iter()
                .filter_map(|e| match e.body {
                    swarm_protocol::EventBody::TaskSharded { task, shards, .. } => {
                        Some((task, shards))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    plan::shards::split(&mut plan, &groups)
        .map_err(|e| Failure::Invalid(anyhow!("{what} run `{run}`: failed to {e}")))?;
    // A run started with `--only` runs the tasks its journal announced.
    if let Some(tasks) = tasks
        && tasks.len() < plan.tasks.len()
    {
        let ids: Vec<String> = tasks.into_iter().map(|t| t.id).collect();
        plan.select(&ids).map_err(|e| {
            Failure::Invalid(anyhow!(
                "{what} run `{run}`: its saved plan does not have the tasks its journal names: failed to {e}"
            ))
        })?;
    }
    Ok((plan, original))
}

/// What a person is warned of before `prepared` runs: what the plan
/// grants beyond swarm's defaults (`weakened`), no sandbox or a weaker
/// one, and changes of the working tree the run does not see (not for a
/// resumed run); how many such changes there are, for the live view.
fn warn_before(prepared: &run::Prepared, weakened: &[String], resuming: bool) -> usize {
    if !weakened.is_empty() {
        eprintln!("warning: the plan grants more than swarm's defaults:");
        for line in weakened {
            eprintln!("  {line}");
        }
    }
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
            match prepared.repo.uncommitted(&[prepared.plan.path.as_path()]) {
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
    uncommitted
}

/// The live view's critical path left, in the time the repository's
/// earlier runs took (when they ran some of this plan's tasks). Only the
/// live view shows it: `-q` spares reading the history a second time and
/// a map of every task kept for the whole run.
fn expected_times(
    prepared: &run::Prepared,
) -> Option<(std::collections::HashMap<String, u64>, u64)> {
    let tasks = &prepared.plan.tasks;
    Some(swarm_orchestrator::durations::History::load(
        &prepared.repo.workdir,
    ))
    .filter(|history| tasks.iter().any(|t| history.estimate(t).is_some()))
    .map(|history| {
        let expected = history.expected(tasks);
        let by_id: std::collections::HashMap<String, u64> = tasks
            .iter()
            .map(|t| t.id.clone())
            .zip(expected.per_task)
            .collect();
        (by_id, expected.fallback)
    })
}

/// What the command line (`args`, and the run `mode` names) says over the
/// plan.
fn overrides(args: &Drive, mode: &Mode) -> assemble::Overrides {
    let (name, retry_failed, worktrees, adopt) = match mode {
        Mode::Start {
            name,
            worktrees,
            adopt,
        } => (name.clone(), None, worktrees.clone(), adopt.clone()),
        Mode::Resume { run, retry_failed } => (Some(run.clone()), retry_failed.clone(), None, None),
    };
    // A resumed run uses the home its journal recorded: `worktrees` is
    // only for starting one.
    assemble::Overrides {
        sandbox: args.sandbox.map(|sandbox| match sandbox {
            SandboxArg::Landlock => SandboxMode::Landlock,
            SandboxArg::None => SandboxMode::None,
        }),
        executor: args.executor.map(|executor| match executor {
            ExecutorArg::Local => assemble::ExecutorChoice::Local,
            ExecutorArg::Slurm => assemble::ExecutorChoice::Slurm,
        }),
        concurrency: args.concurrency,
        worktrees,
        gateway_listen: args.gateway_listen,
        name,
        grace: args.grace,
        retry_failed,
        tape: args
            .tape
            .settings(&std::env::current_dir().unwrap_or_default()),
        adopt,
        setup_cache: None,
        egress_via: None,
    }
}

/// What the live view of a resumed run starts from: its journal so far,
/// folded (the resumed events follow it).
fn seen_before(
    workdir: &std::path::Path,
    mode: &Mode,
) -> Option<swarm_orchestrator::fold::RunFold> {
    match mode {
        Mode::Resume { run, .. } => {
            let journal = swarm_orchestrator::layout::run_dir(workdir, run)
                .join(swarm_orchestrator::layout::JOURNAL);
            swarm_orchestrator::journal::read_tolerant(&journal)
                .ok()
                .map(|(events, _)| swarm_orchestrator::fold::RunFold::of(&events))
        }
        Mode::Start { .. } => None,
    }
}

/// `--events-file`, opened to append to, if given.
fn events_file(path: Option<&std::path::Path>) -> Result<Option<std::fs::File>, Failure> {
    Ok(match path {
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
    })
}

/// The runtime a run is driven on, this thread its dispatcher's.
fn dispatcher_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    // This thread runs the dispatcher: it reacts to each command's end
    // (see the function). Before the runtime's threads exist, which start
    // with the default slice.
    let short = swarm_sandbox::process::shorten_thread_slice();
    tracing::debug!(
        short,
        "asked for a short scheduling slice for the dispatcher"
    );
    // One thread runs the dispatcher and every worker future: a child's exit
    // and the next spawn need no hop between threads (which cost ~20% over
    // `xargs -P` on 1,000 no-op tasks). Git work runs on the blocking pool.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Git work on the blocking pool is bulk work: under a full CPU the
        // dispatcher (this thread) reacts first.
        .on_thread_start(|| swarm_sandbox::process::lower_thread_priority(run::BACKGROUND_NICE))
        .build()
        .context("start the async runtime")
        .map_err(Failure::Internal)
}

/// An untrusted plan's files were read at one commit: its tasks start
/// from that one, or nothing runs (the base moved in between). A
/// resumed run's were read at the commit its journal names.
fn files_read_at_base(prepared: &run::Prepared) -> Result<(), Failure> {
    if prepared.plan.files.is_confined()
        && let Some(read_at) = prepared.plan.files.base()
        && read_at != prepared.base_commit.to_string()
    {
        return Err(Failure::Invalid(anyhow!(
            "run: the plan's files were read at commit {} but the run would start from {} (its base moved meanwhile); nothing ran\nhelp: start the run again",
            swarm_orchestrator::git::short(read_at),
            swarm_orchestrator::git::short_id(prepared.base_commit)
        )));
    }
    Ok(())
}

/// Sets up what a run needs (sandbox launcher, WASM engine, model gateway)
/// and runs or resumes it to the end.
pub(crate) fn drive(
    repo: swarm_orchestrator::git::Repo,
    mut plan: Plan,
    plan_path: &str,
    args: Drive,
    mode: Mode,
) -> Result<i32, Failure> {
    let overrides = overrides(&args, &mode);
    let keep_runs = plan.keep_runs;
    let workdir = repo.workdir.clone();
    assemble::apply(&mut plan, &overrides);
    let host = crate::host::current();
    let runtime = dispatcher_runtime()?;
    let assembly = runtime.block_on(assemble::assemble(
        &plan,
        plan_path,
        &host,
        &overrides,
        assemble::Models::Own,
    ))?;
    output::print_notices(&assembly.notices);
    let options = assembly.options;
    let resuming = matches!(mode, Mode::Resume { .. });
    let seen = seen_before(&repo.workdir, &mode);
    let weakened = match &mode {
        Mode::Start { worktrees, .. } => weakened(&plan, worktrees.is_some()),
        Mode::Resume { .. } => Vec::new(),
    };
    // `prepare` takes the plan; what a bad base's error needs is kept.
    let base_plan = plan.without_tasks();
    let prepared = match mode {
        Mode::Start { .. } => run::prepare(repo, plan, options),
        Mode::Resume { run, .. } => run::prepare_resume(repo, plan, run, options),
    }
    .map_err(|e| base_failure(&base_plan, e))?;
    if !resuming {
        files_read_at_base(&prepared)?;
    }
    if !resuming {
        check_meaning(&prepared.repo, prepared.base_commit, &prepared.plan)?;
    }
    included_note(&prepared.repo, prepared.plan.origin);
    let uncommitted = warn_before(&prepared, &weakened, resuming);
    let live = !args.quiet;
    let expected = live.then(|| expected_times(&prepared)).flatten();
    let outputs = args.outputs;
    let mut events_file = events_file(outputs.events_file.as_deref())?;
    let events_stdout = outputs.events == Some(EventsFormat::Json);
    let tty = {
        use std::io::IsTerminal as _;
        std::io::stderr().is_terminal()
    };
    let result = runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(None);
        tokio::spawn(forward_signals(stop_tx));
        let printer = std::sync::Arc::new(std::sync::Mutex::new(
            output::Live::new(tty)
                .uncommitted(uncommitted)
                .expected(expected)
                .seen(seen),
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
    let report = match result {
        // A CI retry of a step that passed: the run, as it ended.
        Err(run::RunError::Finished {
            run,
            exit_code,
            hint,
        }) => return finished_already(&workdir, &run, exit_code, &hint),
        other => other.map_err(invalid_or_internal)?,
    };
    let summary = match args.quiet {
        true => swarm_orchestrator::view::summary::quiet_summary(&report, Path::new(&report.repo)),
        false => swarm_orchestrator::view::summary::summary(&report, Path::new(&report.repo)),
    };
    eprint!("{summary}");
    write_exports(&report, &outputs)?;
    if let Some(path) = &outputs.html {
        let run_dir = report::run_dir(Path::new(&report.repo), &report.run);
        let journal = run_dir.join(swarm_orchestrator::layout::JOURNAL);
        let (events, _) = swarm_orchestrator::journal::read_tolerant(&journal)
            .map_err(|e| Failure::Internal(e.into()))?;
        let flushes = swarm_orchestrator::flushes::read(&run_dir);
        let page = swarm_orchestrator::export::html(&report, &events, &flushes);
        std::fs::write(path, page).map_err(|e| {
            Failure::Internal(anyhow!("write the HTML report {}: {e}", path.display()))
        })?;
    }
    keep_newest(Path::new(&report.repo), &report.run, keep_runs);
    Ok(report.exit_code.unwrap_or(exit::TASKS_FAILED))
}

/// `swarm resume` of run `run`, which finished with `exit_code` and has
/// nothing left to run (`hint` says what would): says so, prints its
/// summary, writes its `report.json` if a kill right after its end left
/// none, and ends with the run's own code, so that a CI retry of a step
/// that passed passes.
fn finished_already(workdir: &Path, run: &str, exit_code: i32, hint: &str) -> Result<i32, Failure> {
    let run_dir = report::run_dir(workdir, run);
    let (events, skipped) = swarm_orchestrator::journal::read_tolerant(
        &run_dir.join(swarm_orchestrator::layout::JOURNAL),
    )
    .map_err(|e| Failure::Internal(e.into()))?;
    crate::common::warn_skipped(&skipped);
    let report = report::fold(&events)
        .ok_or_else(|| Failure::Internal(anyhow!("read run `{run}`: its journal has no start")))?;
    let path = run_dir.join(swarm_orchestrator::layout::REPORT);
    if !path.exists() {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Failure::Internal(e.into()))?;
        std::fs::write(&path, text).map_err(|e| {
            Failure::Internal(anyhow!("write the missing report {}: {e}", path.display()))
        })?;
        eprintln!("swarm: wrote the run's missing report, {}", path.display());
    }
    eprintln!("swarm: run {run} finished already (exit {exit_code}): nothing left to run; {hint}");
    eprint!(
        "{}",
        swarm_orchestrator::view::summary::status_summary(&report, workdir, false)
    );
    Ok(exit_code)
}

/// Cleans the repository's runs beyond the newest `keep` now that run
/// `current` ended (`[swarm] keep_runs`), saying what went in one line. A
/// failure is a warning: the run itself is done.
fn keep_newest(workdir: &Path, current: &str, keep: u32) {
    use swarm_orchestrator::git::branch::BranchFate;
    let cleaned = swarm_orchestrator::git::Repo::discover(workdir)
        .map_err(|e| e.to_string())
        .and_then(|repo| {
            let state =
                swarm_orchestrator::state::State::open(&repo.workdir).map_err(|e| e.to_string())?;
            let Some(state) = state else {
                return Ok(Vec::new());
            };
            swarm_orchestrator::clean::keep_newest(&repo, &state, keep, current)
                .map_err(|e| e.to_string())
        });
    let cleaned = match cleaned {
        Ok(cleaned) if cleaned.is_empty() => return,
        Ok(cleaned) => cleaned,
        Err(e) => {
            eprintln!("warning: failed to clean runs past `keep_runs = {keep}`: {e}");
            return;
        }
    };
    let freed: u64 = cleaned.iter().map(|c| c.bytes_freed).sum();
    let refs: usize = cleaned.iter().map(|c| c.refs_deleted.len()).sum();
    let kept: usize = cleaned.iter().map(|c| c.refs_kept.len()).sum();
    let branches = cleaned
        .iter()
        .filter(|c| !matches!(c.branch, None | Some(BranchFate::Deleted { .. })))
        .count();
    let mut line = format!(
        "  cleaned {} run{} past the newest {keep} (`[swarm] keep_runs`): {} freed, {refs} merged ref{} deleted",
        cleaned.len(),
        if cleaned.len() == 1 { "" } else { "s" },
        bytesize::ByteSize::b(freed),
        if refs == 1 { "" } else { "s" },
    );
    if kept > 0 || branches > 0 {
        line.push_str(&format!(
            "; kept {kept} ref{} and {branches} branch{} holding work no other branch has (`swarm clean --refs RUN` says which)",
            if kept == 1 { "" } else { "s" },
            if branches == 1 { "" } else { "es" },
        ));
    }
    eprintln!("{line}");
    // What a removed worktree held that its task's result could not
    // (larger than its `max_file_size`): gone, and said.
    for c in cleaned.iter().filter(|c| !c.left_out.is_empty()) {
        eprint!(
            "  run {}:\n{}",
            c.run,
            swarm_orchestrator::view::clean::left_out(c, 3)
        );
    }
}

/// What the plan the user named grants beyond swarm's defaults, one line
/// each, leaving out what the command line overrode (`--sandbox`,
/// `--executor local`, `--worktrees`): the user's choice, said plainly
/// before anything runs.
pub(crate) fn weakened(plan: &Plan, worktrees_given: bool) -> Vec<String> {
    let found: Vec<_> = swarm_orchestrator::trust::weakenings(&plan.source)
        .into_iter()
        .filter(|w| match (w.table.as_str(), w.key.as_str()) {
            ("[swarm]", "sandbox") => plan.sandbox == SandboxMode::None,
            ("[swarm]", "worktrees") => !worktrees_given,
            ("[executor]", "kind") => plan.executor != plan::Executor::Local,
            _ => true,
        })
        .collect();
    crate::config_origin::weakening_lines(&plan.source, &found)
}

/// Writes the JUnit report and the Markdown summary the command line asked
/// for. The summary is appended, as `$GITHUB_STEP_SUMMARY` expects.
pub(crate) fn write_exports(
    report: &swarm_protocol::RunReport,
    outputs: &Outputs,
) -> Result<(), Failure> {
    if let Some(path) = &outputs.junit {
        let xml = swarm_orchestrator::export::junit(report)
            .map_err(|e| Failure::Internal(anyhow!("write the JUnit report: {e}")))?;
        std::fs::write(path, xml).map_err(|e| {
            Failure::Internal(anyhow!("write the JUnit report {}: {e}", path.display()))
        })?;
    }
    if let Some(path) = &outputs.summary {
        use std::io::Write as _;
        let mut text = swarm_orchestrator::export::markdown(report);
        if let Some(html) = &outputs.html {
            text.push_str(&format!(
                "\nThe whole run, with its graph and timeline: [{}]({})\n",
                html.display(),
                html.display()
            ));
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Failure::Internal(anyhow!("write the summary {}: {e}", path.display())))?;
    }
    Ok(())
}

/// First SIGINT/SIGTERM: stop gracefully. Second: kill at once.
pub(crate) async fn forward_signals(stop: watch::Sender<Option<Stop>>) {
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

/// The checks of what a plan means against its base: warnings printed,
/// errors refuse the plan (exit 2) before anything is created.
pub(crate) fn check_meaning(
    repo: &swarm_orchestrator::git::Repo,
    base: git2::Oid,
    plan: &Plan,
) -> Result<(), Failure> {
    let warnings = meaning(repo, base, plan)?;
    crate::output::print_plan_warnings(&warnings);
    Ok(())
}

/// The plan's checks against the repository at `base`: its errors as a
/// failure, else its warnings.
pub(crate) fn meaning(
    repo: &swarm_orchestrator::git::Repo,
    base: git2::Oid,
    plan: &Plan,
) -> Result<Vec<swarm_orchestrator::plan::PlanError>, Failure> {
    // A plan a person wrote (or chose to run): overlapping writers are a
    // warning, as git merges disjoint changes and reports a conflict.
    let limits = swarm_orchestrator::plan::semantic::Limits {
        overlap: swarm_orchestrator::plan::semantic::Overlap::Warn,
        ..Default::default()
    };
    let found = run::check_plan(repo, base, plan, limits).map_err(invalid_or_internal)?;
    match swarm_orchestrator::plan::PlanError::bundle(found.errors) {
        Some(error) => Err(Failure::Plan(Box::new(error))),
        None => Ok(found.warnings),
    }
}

/// The run header's word on `.worktreeinclude`: the files are the
/// person's, the list came with the repository.
pub(crate) fn included_note(
    repo: &swarm_orchestrator::git::Repo,
    origin: swarm_orchestrator::plan::origin::Origin,
) {
    // A plan swarm did not get from the person gets none of their files.
    if origin.is_untrusted() {
        return;
    }
    if let Some(line) = included_line(repo) {
        eprintln!("note: {line}");
    }
}

/// What `.worktreeinclude` brings into each worktree, said in one line
/// (`None` without one, or when it names no file).
pub(crate) fn included_line(repo: &swarm_orchestrator::git::Repo) -> Option<String> {
    use swarm_orchestrator::{escape, worktree_include};
    let git = repo.open().ok()?;
    let included = match worktree_include::find(&repo.workdir, &git) {
        Ok(included) => included,
        Err(e) => return Some(format!("failed to {}", escape::line(&e.to_string()))),
    };
    if included.too_many {
        return Some(format!(
            "{} names more than 1000 files: none is copied into the worktrees",
            worktree_include::FILE
        ));
    }
    if included.is_empty() {
        return None;
    }
    let names: Vec<String> = included
        .files
        .iter()
        .map(|(p, _)| escape::line(&p.display().to_string()).into_owned())
        .collect();
    let whose = match included.list_tracked {
        true => "the list came with the repository",
        false => "the list is yours, untracked",
    };
    Some(format!(
        "{} copies {} file{} of yours into each worktree, never committed: {} ({whose})",
        worktree_include::FILE,
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    ))
}
