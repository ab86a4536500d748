//! Command tasks: `sh -c <script>` in the task's directory, started by the
//! run's launcher (sandboxed, or unconfined in a process group of its own),
//! output captured to log files, stopped on deadline or on request.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use swarm_protocol::AttemptOutcome;

use swarm_sandbox::{
    Exit, Launcher, Policy, SpawnRequest, Spawned, Stop, UnconfinedRequest, kill_group, term_group,
};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::output;

/// One command to run.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Given to `sh -c` (unless `program` is set).
    pub script: String,
    /// A program and its arguments to run instead of `sh -c script`
    /// (`argv[0]` is its path; no PATH search).
    pub program: Option<Vec<String>>,
    /// Descriptors of ours that stay open, at the same numbers, in the
    /// command (an agent's channel to the coordinator).
    pub pass_fds: Vec<std::os::fd::RawFd>,
    /// Whether an unconfined command inherits the environment its launcher
    /// was started with (a sandboxed one never inherits any).
    pub inherit_env: bool,
    /// Variables an unconfined command must not inherit (API keys).
    pub env_remove: Vec<String>,
    /// `cgroup.procs` files (open for writing) the command joins before it
    /// runs.
    pub cgroups: Vec<std::os::fd::RawFd>,
    /// The `cgroup.procs` of a cgroup in `cgroups`: the unconfined
    /// launcher kills its every member when the coordinator dies.
    pub cgroup_procs: Option<PathBuf>,
    pub cwd: PathBuf,
    /// Variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Output is appended to these files (created if missing).
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// When the command is killed as timed out.
    pub deadline: Option<Instant>,
    /// How long a stopped command gets between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Most bytes of each output stream kept in its log file.
    pub max_output: u64,
    /// The person's secrets taken out of its output as it is kept (see
    /// [`crate::redact`]).
    pub redact: Option<crate::redact::Redact>,
    /// Confine the command; `None` runs it unconfined (with the inherited
    /// environment plus `env` if `inherit_env`), started by `unconfined`.
    pub sandbox: Option<Sandboxed>,
    /// The run's launcher of unconfined commands
    /// (`Launcher::start_unconfined`), which starts the command when
    /// `sandbox` is `None`; without one, this process starts it (slower:
    /// see `Running::InProcess`).
    pub unconfined: Option<Launcher>,
    /// How the command takes part in the launcher's deck (commands the
    /// run's launcher starts only; see [`Deck`]).
    pub deck: Deck,
    /// Ends it as stalled when it shows no sign of life for a while
    /// (`None`: never).
    pub stall: Option<Stall>,
}

/// When a command counts as stalled: no output, no change in its
/// processes' CPU time (`cpu`) and no work it waits on ([`Activity`]) for
/// `after`. Checked every quarter of `after` (at least every 100 ms, at
/// most every 15 s), so a stall is ended within 1.25 `after`.
#[derive(Clone)]
pub struct Stall {
    pub after: Duration,
    /// Its processes' CPU time so far, in any unit; `None` when it cannot
    /// be read now, which never counts against it (a stall is ended only
    /// on proof).
    pub cpu: Arc<dyn Fn() -> Option<u64> + Send + Sync>,
    /// What works for it outside its processes.
    pub activity: Arc<Activity>,
}

impl std::fmt::Debug for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stall")
            .field("after", &self.after)
            .field("activity", &self.activity)
            .finish_non_exhaustive()
    }
}

/// Work a command waits on outside its own processes (an agent's model
/// calls, made by the coordinator for it): while one is in flight the
/// command is alive, however quiet; each one done is a sign of life.
#[derive(Debug, Default)]
pub struct Activity {
    in_flight: std::sync::atomic::AtomicU32,
    done: std::sync::atomic::AtomicU64,
}

impl Activity {
    /// One piece of work begins; it ends when the guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(Arc::clone(self))
    }

    /// Whether work is in flight, and how many pieces are done.
    fn reading(&self) -> (bool, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.in_flight.load(SeqCst) > 0, self.done.load(SeqCst))
    }
}

/// A piece of [`Activity`] in flight.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.0.done.fetch_add(1, SeqCst);
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

/// A command's part in the run's launcher's deck: a command may be
/// sent ahead, to start the moment the command of another task ends, in
/// its place (see `swarm_sandbox`'s launcher). Which commands may is the
/// caller's decision; this only carries it out.
#[derive(Clone, Default)]
pub struct Deck {
    /// Where the command's launcher id is published once it is sent, for
    /// a command on deck behind it. Dropped (closed) when the attempt that
    /// holds it is over.
    pub publish: Option<Arc<watch::Sender<Option<u64>>>>,
    /// Set: the command waits on deck behind another one.
    pub on_deck: Option<OnDeck>,
}

/// Where a command on deck waits.
#[derive(Clone)]
pub struct OnDeck {
    /// The launcher id of the command it follows, once that one is sent;
    /// closed when that one's attempt is over (then there is nothing to
    /// wait for).
    pub behind: watch::Receiver<Option<u64>>,
    /// What the caller decided since it was sent.
    pub signal: watch::Receiver<DeckSignal>,
    /// Called once, the moment the command starts, or ends without
    /// starting because it could not start (never if it is stopped or
    /// withdrawn first).
    pub began: Arc<dyn Fn() + Send + Sync>,
    /// Set (to when) as soon as the launcher's word that it started is
    /// read, before this attempt's task runs again (see
    /// `UnconfinedRequest::started`).
    pub started: Arc<std::sync::OnceLock<std::time::Instant>>,
}

/// What the caller tells a command on deck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeckSignal {
    /// Wait for the command it follows.
    Wait,
    /// Start at once (it takes a place that freed).
    Go,
    /// Do not start, if it has not: the attempt ends as
    /// [`AttemptOutcome::Cancelled`] without having run (see
    /// [`OnDeck::withdrawn`]), and the caller may start it again later.
    Withdraw,
}

impl OnDeck {
    /// Whether it was withdrawn (and so, if it never began, never ran).
    pub fn withdrawn(&self) -> bool {
        *self.signal.borrow() == DeckSignal::Withdraw
    }
}

impl std::fmt::Debug for Deck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deck")
            .field("publish", &self.publish.is_some())
            .field("on_deck", &self.on_deck.is_some())
            .finish()
    }
}

impl CommandSpec {
    /// What is executed: `program`, or `/bin/sh -c script`. An absolute
    /// path spares a PATH search (several failed execve calls) per task;
    /// every POSIX system has /bin/sh.
    fn argv(&self) -> Vec<String> {
        match &self.program {
            Some(argv) if !argv.is_empty() => argv.clone(),
            _ => vec!["/bin/sh".into(), "-c".into(), self.script.clone()],
        }
    }
}

/// How to confine a command: the run's sandbox launcher and the policy it
/// enforces before `execve`.
#[derive(Debug, Clone)]
pub struct Sandboxed {
    pub launcher: Launcher,
    pub policy: Policy,
}

/// A started command.
enum Running {
    /// Started by a launcher (sandboxed, or an unconfined run's), which
    /// reports its end and stops it: swarm's own process never forks.
    Launched(Spawned),
    /// Unconfined, started from this process because no launcher was
    /// given (a run put together from code without a `swarm` binary):
    /// our child, leader of its own process group, under a watcher (see
    /// `swarm_sandbox::process::watch_coordinator`). Two forks of this
    /// whole process a command; the launcher is much cheaper.
    InProcess {
        child: tokio::process::Child,
        pgid: u32,
    },
}

impl Drop for Running {
    /// An attempt dropped before its command ended (the coordinator failed,
    /// or its task was aborted) stops the whole group, not only its leader
    /// (`kill_on_drop`'s SIGKILL reaches the leader alone). A launched
    /// command is stopped by its `Spawned`'s drop.
    fn drop(&mut self) {
        if let Self::InProcess { child, pgid } = self
            && matches!(child.try_wait(), Ok(None))
        {
            kill_group(*pgid);
        }
    }
}

impl Running {
    /// Waits for the command to end (cancel-safe). A launched command's
    /// leftovers (in its group or namespace) are gone by then: the launcher
    /// kills them when it reaps the command.
    async fn wait(&mut self) -> AttemptOutcome {
        match self {
            Self::Launched(spawned) => match spawned.wait().await {
                Exit::Exited(code) => AttemptOutcome::Exited { code },
                Exit::Signaled(signal) => AttemptOutcome::Signaled { signal },
                Exit::Failed(message) => AttemptOutcome::SpawnFailed { message },
                Exit::LauncherGone => AttemptOutcome::SpawnFailed {
                    message: "the launcher exited while the command ran".into(),
                },
            },
            Self::InProcess { child, pgid } => {
                let outcome = match child.wait().await {
                    Ok(status) => match (status.code(), status.signal()) {
                        (Some(code), _) => AttemptOutcome::Exited { code },
                        (None, Some(signal)) => AttemptOutcome::Signaled { signal },
                        (None, None) => AttemptOutcome::Exited { code: -1 },
                    },
                    Err(e) => AttemptOutcome::SpawnFailed {
                        message: format!("wait for the command: {e}"),
                    },
                };
                // Whatever the command left running dies with it.
                kill_group(*pgid);
                outcome
            }
        }
    }

    /// SIGTERM (graceful) or SIGKILL to everything the command started.
    async fn signal(&self, how: Stop) {
        match (self, how) {
            (Self::Launched(spawned), how) => spawned.stop(how == Stop::Immediate).await,
            (Self::InProcess { pgid, .. }, Stop::Graceful) => term_group(*pgid),
            (Self::InProcess { pgid, .. }, Stop::Immediate) => kill_group(*pgid),
        }
    }
}

/// Runs `spec` to completion, deadline or stop request, and reaps its whole
/// process tree either way: background children die with the attempt.
pub async fn run_command(
    spec: &CommandSpec,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> AttemptOutcome {
    // What a command on deck waits counts from here, not against its
    // deadline (see `supervise`).
    let called = Instant::now();
    let withdrawn = || spec.deck.on_deck.as_ref().is_some_and(OnDeck::withdrawn);
    let spawn_failed = |what: &str, e: &dyn std::fmt::Display| AttemptOutcome::SpawnFailed {
        message: format!("{what}: {e}"),
    };
    // Made when the first output comes: most tasks print nothing.
    let (mut stdout, mut stderr) = (
        output::Log::new(&spec.stdout),
        output::Log::new(&spec.stderr),
    );
    let ((out_w, out_r), (err_w, err_r)) = match (output::pipe(), output::pipe()) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            // A failed attempt has its logs, if empty (see below).
            stdout.touch();
            stderr.touch();
            return spawn_failed("create output pipes", &e);
        }
    };
    let heard = (stdout.heard(), stderr.heard());
    let outcome = {
        // The captures run inside this future (no task spawned per
        // attempt) while the command runs, and drain what is left once it
        // ended.
        let captured = async {
            tokio::join!(
                output::capture(out_r, &mut stdout, spec.max_output, spec.redact.as_ref()),
                output::capture(err_r, &mut stderr, spec.max_output, spec.redact.as_ref())
            )
        };
        let attempt = async {
            let running = match &spec.sandbox {
                None => spawn_unconfined(spec, out_w, err_w, stop).await,
                Some(sandboxed) => spawn_sandboxed(spec, sandboxed, out_w, err_w, stop).await,
            };
            match running {
                Ok(mut running) => supervise(spec, &mut running, stop, (called, &heard)).await,
                Err(outcome) => outcome,
            }
        };
        tokio::pin!(captured, attempt);
        let mut drained = false;
        let outcome = loop {
            tokio::select! {
                outcome = &mut attempt => break outcome,
                _ = &mut captured, if !drained => drained = true,
            }
        };
        // Every writer is gone by now (the tree was killed); a process
        // that escaped an unconfined task's group may still hold a pipe,
        // so the wait for the last output is bounded.
        if !drained {
            let _ = tokio::time::timeout(Duration::from_secs(2), captured).await;
        }
        outcome
    };
    // Output that could not be kept fails the attempt: nothing is lost
    // without a word.
    let outcome = match (outcome, stdout.lost().or_else(|| stderr.lost())) {
        (AttemptOutcome::Exited { code: 0 }, Some(message)) => {
            AttemptOutcome::SpawnFailed { message }
        }
        (outcome, _) => outcome,
    };
    // A failed attempt's logs are where its report points: they exist,
    // if empty (one withdrawn from the deck did not run: it has none).
    if !matches!(outcome, AttemptOutcome::Exited { code: 0 }) && !withdrawn() {
        stdout.touch();
        stderr.touch();
    }
    outcome
}

async fn spawn_unconfined(
    spec: &CommandSpec,
    stdout: OwnedFd,
    stderr: OwnedFd,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<Running, AttemptOutcome> {
    let failed = |message: String| AttemptOutcome::SpawnFailed { message };
    let argv = spec.argv();
    let Some(launcher) = &spec.unconfined else {
        return spawn_in_process(spec, stdout, stderr);
    };
    let after = deck_after(spec, stop).await?;
    let request = UnconfinedRequest {
        argv,
        inherit: spec.inherit_env,
        remove: spec.env_remove.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        keep_fds: spec.pass_fds.clone(),
        cgroups: spec.cgroups.clone(),
        reap: spec.cgroup_procs.clone(),
        after,
        started: spec.deck.on_deck.as_ref().map(|d| Arc::clone(&d.started)),
        // The launcher's /dev/null.
        stdin: None,
        stdout,
        stderr,
    };
    match launcher.spawn_unconfined(request).await {
        Ok(spawned) => Ok(launched(spec, spawned)),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// The launcher id a command on deck follows (`None` for one not on
/// deck, or one to start at once); cancelled if it was withdrawn or
/// stopped before it was sent.
async fn deck_after(
    spec: &CommandSpec,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<Option<u64>, AttemptOutcome> {
    match &spec.deck.on_deck {
        None => Ok(None),
        Some(deck) => place_on_deck(deck, stop)
            .await
            .ok_or(AttemptOutcome::Cancelled),
    }
}

/// A command the launcher took: its id is published for a command on
/// deck behind it.
fn launched(spec: &CommandSpec, spawned: Spawned) -> Running {
    if let Some(publish) = &spec.deck.publish {
        publish.send_replace(Some(spawned.id()));
    }
    Running::Launched(spawned)
}

/// The command a command on deck is to follow: `Some(None)` when it may
/// start at once (told to, or the one it follows is over), `None` when it
/// was withdrawn or stopped before it was even sent.
async fn place_on_deck(
    deck: &OnDeck,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Option<Option<u64>> {
    let (mut behind, mut signal) = (deck.behind.clone(), deck.signal.clone());
    loop {
        let told = *signal.borrow_and_update();
        match told {
            DeckSignal::Withdraw => return None,
            DeckSignal::Go => return Some(None),
            DeckSignal::Wait => {}
        }
        let published = *behind.borrow_and_update();
        if let Some(id) = published {
            return Some(Some(id));
        }
        tokio::select! {
            biased;
            // Closed: the caller let go of it, which means "start".
            changed = signal.changed() => if changed.is_err() {
                return Some(None);
            },
            changed = behind.changed() => if changed.is_err() {
                return Some(None);
            },
            _ = requested(stop, Stop::Graceful) => return None,
        }
    }
}

/// The fallback without a launcher (see [`Running::InProcess`]).
fn spawn_in_process(
    spec: &CommandSpec,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<Running, AttemptOutcome> {
    let argv = spec.argv();
    let mut cmd = Command::new(&argv[0]);
    if !spec.inherit_env {
        cmd.env_clear();
    }
    for var in &spec.env_remove {
        cmd.env_remove(var);
    }
    for &fd in &spec.pass_fds {
        swarm_sandbox::process::pass_fd(&mut cmd, fd);
    }
    cmd.args(&argv[1..])
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    // Last: the group dies with the coordinator; the command joins its
    // cgroups there, after the watcher's fork.
    swarm_sandbox::process::watch_coordinator(
        &mut cmd,
        spec.cgroups.clone(),
        spec.cgroup_procs.as_deref(),
    );
    let child = cmd.spawn().map_err(|e| AttemptOutcome::SpawnFailed {
        message: format!("start `{}` in {}: {e}", argv[0], spec.cwd.display()),
    })?;
    // The command holds our copies of the pipes' write ends: they must be
    // closed for the captures to see the end of the output.
    drop(cmd);
    let pgid = child.id().ok_or_else(|| AttemptOutcome::SpawnFailed {
        message: "the command exited before it could be tracked".into(),
    })?;
    Ok(Running::InProcess { child, pgid })
}

async fn spawn_sandboxed(
    spec: &CommandSpec,
    sandboxed: &Sandboxed,
    stdout: OwnedFd,
    stderr: OwnedFd,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<Running, AttemptOutcome> {
    let failed = |message: String| AttemptOutcome::SpawnFailed { message };
    let after = deck_after(spec, stop).await?;
    let stdin =
        std::fs::File::open("/dev/null").map_err(|e| failed(format!("open /dev/null: {e}")))?;
    let mut policy = sandboxed.policy.clone();
    policy.keep_fds.extend(&spec.pass_fds);
    policy.cgroups.extend(&spec.cgroups);
    let request = SpawnRequest {
        argv: spec.argv(),
        // Nothing of the coordinator's environment reaches a sandboxed
        // worker but what `env` lists (an allowlist built by the caller).
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        policy,
        after,
        started: spec.deck.on_deck.as_ref().map(|d| Arc::clone(&d.started)),
        stdin: stdin.into(),
        stdout,
        stderr,
    };
    match sandboxed.launcher.spawn(request).await {
        Ok(spawned) => Ok(launched(spec, spawned)),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// How late a deadline must fire for the coordinator to count as having
/// been paused, and how long it then looks for the command's end before
/// declaring a timeout (see `supervise`).
const PAUSED: Duration = Duration::from_secs(1);

/// Waits for `running` to end, its deadline or a stop request; then stops
/// whatever is left of it.
async fn supervise(
    spec: &CommandSpec,
    running: &mut Running,
    stop: &mut watch::Receiver<Option<Stop>>,
    (called, heard): (Instant, &Heard),
) -> AttemptOutcome {
    let mut deadline_at = spec.deadline;
    if let (Some(deck), Running::Launched(spawned)) = (&spec.deck.on_deck, &mut *running) {
        // On deck: its time starts when it does (a stop goes on below).
        let began = wait_on_deck(deck, spawned, stop).await;
        if began || !(deck.withdrawn() || stop.borrow().is_some()) {
            (deck.began)();
        }
        if began {
            // From when the launcher's word was read, not when this task
            // got to it.
            let began_at = deck
                .started
                .get()
                .map_or_else(Instant::now, |&at| Instant::from_std(at));
            deadline_at = deadline_at.map(|at| at + began_at.saturating_duration_since(called));
        }
    }
    let deadline = async {
        match deadline_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let (outcome, how) = tokio::select! {
        // Whatever the command left running died with it (see `wait`).
        outcome = running.wait() => return outcome,
        () = deadline => {
            // A deadline that fires late means this process was paused or
            // starved (a suspended VM, a debugger, SIGSTOP, a loaded host):
            // its timer fires at once on waking, before the command's end,
            // which came meanwhile, is read. That end is looked for first:
            // a command that had ended is not timed out for our pause.
            let late = deadline_at.map_or(Duration::ZERO, |at| Instant::now().saturating_duration_since(at));
            if late >= PAUSED
                && let Ok(outcome) = tokio::time::timeout(PAUSED, running.wait()).await
            {
                return outcome;
            }
            (AttemptOutcome::TimedOut, Stop::Graceful)
        }
        how = requested(stop, Stop::Graceful) => (AttemptOutcome::Cancelled, how),
        after = stalled(spec.stall.as_ref(), heard) => (
            AttemptOutcome::Stalled { after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX) },
            Stop::Graceful,
        ),
    };
    if how == Stop::Graceful {
        running.signal(Stop::Graceful).await;
        tokio::select! {
            _ = running.wait() => {}
            () = tokio::time::sleep(spec.grace) => {}
            _ = requested(stop, Stop::Immediate) => {}
        }
    }
    running.signal(Stop::Immediate).await;
    let _ = running.wait().await;
    outcome
}

/// The byte counts of a command's stdout and stderr, as they grow.
type Heard = (
    Arc<std::sync::atomic::AtomicU64>,
    Arc<std::sync::atomic::AtomicU64>,
);

/// Resolves (with its window) once the command has shown no sign of life
/// for `stall.after`: no output (`heard`), no change in its CPU time or
/// its activity's count, no work in flight, and a CPU time that could be
/// read. Never without a `stall`.
async fn stalled(stall: Option<&Stall>, heard: &Heard) -> Duration {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(stall) = stall else {
        return std::future::pending().await;
    };
    let every = (stall.after / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
    let reading = || {
        let out = heard.0.load(Relaxed).wrapping_add(heard.1.load(Relaxed));
        let (busy, done) = stall.activity.reading();
        ((out, (stall.cpu)(), done), busy)
    };
    let (mut last, _) = reading();
    let mut alive_at = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let (now, busy) = reading();
        let alive = now != last || busy || now.1.is_none();
        last = now;
        if alive {
            alive_at = Instant::now();
        } else if alive_at.elapsed() >= stall.after {
            return stall.after;
        }
    }
}

/// Waits while `spawned` is on deck, starting it early or taking it back
/// when told to; whether it started (false: it was stopped, withdrawn, or
/// could not start).
async fn wait_on_deck(
    deck: &OnDeck,
    spawned: &mut Spawned,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> bool {
    let mut signal = deck.signal.clone();
    let mut told = false;
    loop {
        // Started already (the launcher's word is read before this task
        // runs again): a late "go" needs no message.
        if let Some(began) = spawned.try_began() {
            return began;
        }
        if !told {
            let now = *signal.borrow_and_update();
            match now {
                DeckSignal::Go => {
                    told = true;
                    spawned.begin_now().await;
                }
                DeckSignal::Withdraw => {
                    told = true;
                    spawned.withdraw().await;
                }
                DeckSignal::Wait => {}
            }
        }
        tokio::select! {
            biased;
            // Closed: the caller let go of it, which means "start".
            changed = signal.changed(), if !told => if changed.is_err() {
                told = true;
                spawned.begin_now().await;
            },
            began = spawned.began() => return began,
            _ = requested(stop, Stop::Graceful) => return false,
        }
    }
}

/// Resolves once a stop of at least `level` has been requested.
pub(crate) async fn requested(stop: &mut watch::Receiver<Option<Stop>>, level: Stop) -> Stop {
    // Copy the value out at once: the watch guard must not live across the
    // await below.
    let seen = stop
        .wait_for(|s| s.is_some_and(|s| s >= level))
        .await
        .map(|s| *s);
    match seen {
        Ok(s) => s.unwrap_or(level),
        // The coordinator is gone: nobody will ever ask.
        Err(_) => std::future::pending().await,
    }
}
