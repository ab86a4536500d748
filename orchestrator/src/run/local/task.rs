//! The life of one task, from its base commit to its result: worktree,
//! attempts (command, then `verify`), snapshot to a ref after every attempt,
//! retries from a clean worktree.
//!
//! It runs as its own tokio task of the local executor and reports through
//! [`ExecEvent`]s; it never touches run state itself.

use crate::ids::TaskIndex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::Oid;
use swarm_protocol::{AttemptOutcome, Isolation, SkippedFile, TaskStatus};
use swarm_sandbox::Stop;
use tokio::sync::{mpsc, watch};

use super::attempt::{Phase, Ran, run_attempt};
use super::ctx::{Ctx, readonly_checkout, short_of_space, short_of_space_now};
use super::describe::{Verify, describe_result};
use super::own_caches;
use super::prepare::Prepared;
use crate::git::{
    GitError, SnapshotLimits, State, Worktrees, leave_out, merge_results, refs, snapshot_screened,
};
use crate::plan::Task;
use crate::plan::schema::Flaky;
use crate::run::blocking::blocking;
use crate::run::executor::{ExecEvent, Launch};
use crate::run::warm::Lineage;

/// How a task ended, for its executor.
#[derive(Debug)]
pub(crate) struct Done {
    pub task: TaskIndex,
    pub status: TaskStatus,
    pub reason: Option<String>,
    /// A worktree (and its git directory) that can be deleted now that its
    /// work is on a ref.
    pub removable: Option<(PathBuf, PathBuf)>,
    /// It was taken back from the deck before it started: nothing of it
    /// ran or was reported, and `status` means nothing.
    pub withdrawn: bool,
    /// Its tmp was empty and is gone already.
    pub tmp_removed: bool,
}

impl Done {
    /// Task `task`'s end: nothing of it to delete, nothing withdrawn.
    fn ended(task: TaskIndex, status: TaskStatus, reason: Option<String>) -> Self {
        Self {
            task,
            status,
            reason,
            removable: None,
            withdrawn: false,
            tmp_removed: false,
        }
    }
}

/// A task's part in the unconfined launcher's deck (see
/// `LocalExecutor::admit_on_deck`), for its first attempt.
#[derive(Debug, Default)]
pub(crate) struct DeckLinks {
    /// Where its command publishes its launcher id, for a task on deck
    /// behind it.
    pub publish: Option<watch::Sender<Option<u64>>>,
    /// It waits on deck: behind the command published there, until told
    /// to go (or withdrawn), saying in the flag when it began.
    pub on_deck: Option<OnDeckLinks>,
}

/// Where a task on deck waits, and how it says it began.
#[derive(Debug)]
pub(crate) struct OnDeckLinks {
    pub behind: watch::Receiver<Option<u64>>,
    pub signal: watch::Receiver<swarm_worker::DeckSignal>,
    /// When its command started, once the launcher said so.
    pub began: Arc<std::sync::OnceLock<std::time::Instant>>,
}

/// Runs a task to its end.
pub(crate) async fn execute(
    ctx: Arc<Ctx>,
    launch: Launch,
    stop: watch::Receiver<Option<Stop>>,
    deck: DeckLinks,
) -> Done {
    let i = launch.task;
    match execute_inner(&ctx, launch, stop, deck).await {
        Ok(done) => done,
        Err(e) => {
            let mut reason = format!("swarm could not run it: failed to {e}");
            if let Some(help) = crate::full_disk_help(&reason) {
                reason.push_str("; ");
                reason.push_str(help);
            }
            Done::ended(i, TaskStatus::Failed, Some(reason))
        }
    }
}

async fn execute_inner(
    ctx: &Arc<Ctx>,
    launch: Launch,
    stop: watch::Receiver<Option<Stop>>,
    deck: DeckLinks,
) -> Result<Done, GitError> {
    // The task holds its place from here: its set-up (dependencies merged,
    // worktree made) is timed from now for its first attempt, from the
    // previous attempt's end for a retry.
    let set_up_from = Instant::now();
    let Launch {
        task: i,
        base,
        deps,
        first_attempt,
        note,
        ..
    } = launch;
    let task = with_note(ctx.tasks.get(i), note);
    let base = match start_point(ctx, &task, base, deps).await? {
        Ok(base) => base,
        Err(files) => {
            let why = format!(
                "its dependencies conflict with each other in {}",
                files.join(", ")
            );
            return Ok(Done::ended(i, TaskStatus::Blocked, Some(why)));
        }
    };
    if let Some(why) = short_of_space(ctx) {
        return Ok(Done::ended(i, TaskStatus::Failed, Some(why)));
    }
    let lease = match &ctx.warm {
        Some((warm, worktree_tasks)) if task.warm_by_default(*worktree_tasks) => {
            lease_warm(ctx, warm, &task)
        }
        _ => None,
    };
    let mut life = Life {
        ctx,
        i,
        task: Arc::clone(&task),
        // A resumed task numbers its attempts on from the interrupted one.
        last_attempt: first_attempt + task.retries,
        planned: task,
        tests: TestsSoFar::default(),
        base,
        lease,
        own_caches: None,
        stop,
        set_up_from,
        carried: None,
    };
    // A shard of a task with `affected = true` runs only the entries the
    // run's changes could affect; resumed after a failed attempt, only
    // what failed of those (`swarm resume --retry-failed`).
    life.select_affected().await;
    if first_attempt > 1 && life.planned.junit.is_some() {
        life.resume_tests(first_attempt - 1).await;
    }
    // Only its first attempt may wait on deck.
    let mut deck = Some(deck);
    for attempt in first_attempt..=life.last_attempt {
        if let Some(done) = life
            .attempt(attempt, deck.take().unwrap_or_default())
            .await?
        {
            return Ok(done);
        }
    }
    unreachable!("the last attempt always returns")
}

/// The commit `task` starts from: `base`, or its dependencies' results
/// merged (`Err`: the files where they conflict).
async fn start_point(
    ctx: &Ctx,
    task: &Task,
    base: Oid,
    deps: Vec<Oid>,
) -> Result<Result<Oid, Vec<String>>, GitError> {
    match deps.as_slice() {
        [] => Ok(Ok(base)),
        // A chain's link starts from its one dependency's result: nothing
        // to merge, and no trip to the blocking pool before it starts.
        [only] => Ok(Ok(*only)),
        _ => {
            let (repo, run) = (ctx.repo.clone(), ctx.run.clone());
            let message = format!("swarm: {}/{}: merge of its dependencies", ctx.run, task.id);
            blocking(move || merge_results(&repo, &run, &deps, &message)).await
        }
    }
}

/// What the attempts of one task share: the task as they run it, the
/// commit they start from, its tests so far, its warm worktree and its
/// stop signal.
struct Life<'a> {
    ctx: &'a Arc<Ctx>,
    i: TaskIndex,
    /// The task as the next attempt runs it: as planned, or a shard that
    /// runs again only the tests that failed.
    task: Arc<Task>,
    /// The task as the plan made it.
    planned: Arc<Task>,
    tests: TestsSoFar,
    base: Oid,
    last_attempt: u32,
    /// Its warm worktree, held from its first attempt to its end.
    lease: Option<crate::run::warm::Lease>,
    /// Its own build caches, readied for the attempt at work.
    own_caches: Option<own_caches::Held>,
    stop: watch::Receiver<Option<Stop>>,
    /// Where the next attempt's set-up is timed from.
    set_up_from: Instant,
    /// The work an agent's attempt cut off (a timeout, a stall) had done
    /// (its snapshot), which the next attempt's worktree gets again once
    /// set up (`continue_from`).
    carried: Option<Oid>,
}

/// What a task's tests say of an attempt (`Life::test_verdict`).
struct TestVerdict {
    /// Whether it did its work, as far as its tests go.
    ok: bool,
    /// Why its flaky tests fail it (`flaky = "fail"`): its task ends.
    flaky: Option<String>,
    /// Why its pass proves nothing: a test that failed before was not
    /// seen passing.
    unproven: Option<String>,
}

/// The entries of `task`, a shard's (none for any other task).
fn shard_entries(task: &Task) -> crate::test_attempts::Entries<'_> {
    static NONE: crate::plan::cargo::Packages = crate::plan::cargo::Packages::new();
    match task.sharding.as_deref() {
        Some(crate::plan::shards::Sharding::Shard {
            entries, packages, ..
        }) => crate::test_attempts::Entries::new(entries, packages),
        _ => crate::test_attempts::Entries::new(&[], &NONE),
    }
}

/// A task's tests over its attempts (`junit`), and how many the next
/// attempt runs again (0: all).
#[derive(Default)]
struct TestsSoFar {
    history: crate::test_attempts::History,
    rerun: u32,
    /// Its entries skipped by selection (`affected = true`).
    selected_out: Vec<String>,
}

/// Where an attempt runs: a worktree of its own (`admin`, its record under
/// `.git/worktrees/`) or the shared read-only checkout (no `admin`).
struct Place {
    workdir: PathBuf,
    admin: Option<PathBuf>,
    /// The checkout's record, which the task's git view shows.
    git_dir: PathBuf,
    /// Whether the worktree was just made (a warm one brought to the base
    /// is not: what setup makes there is not kept).
    fresh: bool,
}

/// An attempt's start as its executor hears of it (`ExecEvent::Started`).
#[derive(Clone)]
struct StartReport {
    events: mpsc::UnboundedSender<ExecEvent>,
    task: TaskIndex,
    attempt: u32,
    base: Oid,
    workdir: PathBuf,
    /// Its set-up: its worktree is made; what is left before the start is
    /// handing it over (a task on deck is reported later, by the
    /// launcher's word, with the same figure).
    setup: Duration,
    setup_run: Option<swarm_protocol::SetupRun>,
}

impl StartReport {
    /// Says it started `at`. The dispatcher, busy with a merge or another
    /// task's end, may read the event later; the journal says when it
    /// really started, the moment its duration counts from.
    fn send(&self, at: Instant) {
        let _ = self.events.send(ExecEvent::Started {
            task: self.task,
            attempt: self.attempt,
            base: self.base,
            workdir: self.workdir.clone(),
            job: None,
            at: Some(at),
            setup: Some(self.setup),
            setup_run: self.setup_run,
        });
    }
}

impl Life<'_> {
    /// Attempt `attempt`, from its checkout to its snapshot: the task's
    /// end, or `None` when it tries again.
    async fn attempt(&mut self, attempt: u32, deck: DeckLinks) -> Result<Option<Done>, GitError> {
        let task_arc = Arc::clone(&self.task);
        let (ctx, task) = (self.ctx, &*task_arc);
        // Whose its warm state and its own build caches are this attempt
        // (the planned task's: a rerun of failed tests has its rights).
        let lineage = own_caches::lineage(ctx, &self.planned, self.base);
        let place = match self.check_out(&lineage).await {
            Ok(place) => place,
            Err(e) => {
                // No attempt ran in its warm worktree: as it was before
                // (released, if its content was on a ref), so the next run
                // brings it to its base or makes it again, saying so, not
                // a fresh worktree beside it for ever.
                if let Some(lease) = &mut self.lease
                    && let Err(error) = lease.unhold()
                {
                    tracing::warn!(task = %task.id, %error, "failed to release its warm worktree");
                }
                return Err(e);
            }
        };
        // Its own build caches, for this attempt's lineage: its
        // `[setup]`, itself and its `[cleanup]` build in them.
        self.own_caches = None;
        self.own_caches = own_caches::ready(ctx, &self.planned, lineage).await;
        // The plan's `[setup]`, in a fresh worktree: part of its set-up.
        let prepare_began = Instant::now();
        let prepared = match &place.admin {
            Some(admin) => {
                let (base, workdir, fresh) = (self.base, &place.workdir, place.fresh);
                super::prepare::prepare(
                    ctx,
                    task,
                    attempt,
                    base,
                    workdir,
                    admin,
                    fresh,
                    &mut self.stop,
                )
                .await
            }
            None => Prepared::Nothing,
        };
        // What an earlier attempt asked for goes with it.
        ctx.spawner
            .reset(&task.id, Some(std::time::SystemTime::now()));
        let start = StartReport {
            events: ctx.events.clone(),
            task: self.i,
            attempt,
            base: self.base,
            workdir: place.workdir.clone(),
            setup: self.set_up_from.elapsed(),
            setup_run: setup_run(&prepared, prepare_began),
        };
        let setup_state = match prepared {
            Prepared::Nothing => None,
            Prepared::Ready { state, .. } => Some(state),
            Prepared::Failed { outcome, reason } => {
                return self
                    .setup_failed(attempt, place, &start, outcome, reason)
                    .await;
            }
        };
        if let Some(kept) = self.carried.take()
            && place.admin.is_some()
        {
            continue_from(ctx, task, &place.workdir, (self.base, kept)).await;
        }
        let Some((ran, duration)) = self.run(attempt, &place, start, deck).await? else {
            // Taken back from the deck before it started: as if it had
            // never been handed over (the dispatcher queues it again).
            return Ok(Some(Done {
                withdrawn: true,
                ..Done::ended(self.i, TaskStatus::Cancelled, None)
            }));
        };
        self.conclude(attempt, place, setup_state, ran, duration)
            .await
    }

    /// The attempt's checkout: its worktree made (or its warm one brought
    /// to the base), with the person's files `.worktreeinclude` names, or
    /// the shared read-only checkout.
    async fn check_out(&mut self, lineage: &Lineage) -> Result<Place, GitError> {
        let task_arc = Arc::clone(&self.task);
        let (ctx, task, base) = (self.ctx, &*task_arc, self.base);
        // Its warm worktree is said to be in use first: unsaid, a crash
        // would leave it "released" with work on no ref.
        if let Some(held) = self.lease.as_mut()
            && let Err(e) = held.hold(&ctx.run)
        {
            tracing::warn!(task = %task.id, error = %e, "failed to write its warm worktree's lease; it gets a fresh worktree");
            self.lease = None;
        }
        let place = match (task.isolation, &self.lease) {
            (Isolation::Readonly, _) => {
                let (workdir, git_dir) = readonly_checkout(ctx, base).await?;
                Place {
                    workdir,
                    admin: None,
                    git_dir,
                    fresh: true,
                }
            }
            (Isolation::Worktree, Some(held)) => {
                let workdir = held.path.clone();
                let (worktrees, p, id) = (Arc::clone(ctx), workdir.clone(), task.id.clone());
                let (before, now) = (held.lineage.clone(), lineage.clone());
                let recorded = now.clone();
                let (admin, made) = blocking(move || {
                    // Its warm state (ignored files, kept tmp) only for a
                    // task of its lineage: else all of it is made anew
                    // (its own build caches: `own_caches`, the same rule).
                    let inherits = before.is_some_and(|b| {
                        b.rights == now.rights && worktrees.worktrees.descends(now.base, b.base)
                    });
                    if !inherits {
                        forget_warm_state(&worktrees, &id);
                    }
                    // git never moves a worktree holding a task's files
                    // (their `.lfsconfig`) where its checkout could run a
                    // filter driver: it is made again (see
                    // `git::worktree`).
                    if inherits
                        && p.symlink_metadata().is_ok()
                        && !worktrees.worktrees.may_run_filters(base)
                    {
                        match worktrees.worktrees.bring_to(&p, base) {
                            Ok(Some(admin)) => return Ok((admin, false)),
                            Ok(None) => tracing::warn!(task = %id, path = %p.display(), "git has no record of its warm worktree; making it again"),
                            Err(e) => tracing::warn!(task = %id, error = %e, "failed to bring its warm worktree to the base; making it again"),
                        }
                    }
                    worktrees.worktrees.create(&p, base, &[]).map(|a| (a, true))
                })
                .await?;
                if let Some(lease) = self.lease.as_mut()
                    && let Err(e) = lease.hold_as(&ctx.run, recorded)
                {
                    tracing::warn!(task = %task.id, error = %e, "failed to write its warm worktree's lease");
                }
                Place {
                    workdir,
                    admin: Some(admin.clone()),
                    git_dir: admin,
                    fresh: made,
                }
            }
            (Isolation::Worktree, None) => {
                let workdir = ctx.worktree_dir.join(&*crate::ids::flat(&task.id));
                let worktrees = Arc::clone(ctx);
                let (p, paths) = (workdir.clone(), task.checkout());
                let admin = blocking(move || worktrees.worktrees.create(&p, base, &paths)).await?;
                Place {
                    workdir,
                    admin: Some(admin.clone()),
                    git_dir: admin,
                    fresh: true,
                }
            }
        };
        // The person's files `.worktreeinclude` names, before setup (which
        // may read a `.env`).
        if place.admin.is_some() && !ctx.included.is_empty() {
            super::prepare::copy_included(ctx, task, &place.workdir).await?;
        }
        Ok(place)
    }

    /// The attempt started and ended in its setup: the task itself did not
    /// run, so there is no work of its to keep. The task's end, or `None`
    /// when it tries again.
    async fn setup_failed(
        &mut self,
        attempt: u32,
        place: Place,
        start: &StartReport,
        outcome: AttemptOutcome,
        reason: String,
    ) -> Result<Option<Done>, GitError> {
        let ctx = self.ctx;
        start.send(Instant::now());
        let stopped = self.stop.borrow().is_some();
        let cancelled = stopped || matches!(outcome, AttemptOutcome::Cancelled);
        let _ = ctx.events.send(ExecEvent::AttemptFinished {
            task: self.i,
            attempt,
            outcome,
            verify_passed: None,
            duration: Duration::ZERO,
            verify: None,
            snapshot: None,
            outside_paths: Vec::new(),
            agent: None,
            score: None,
            diff: None,
        });
        if let Some(admin) = &place.admin {
            let task_arc = Arc::clone(&self.task);
            let (task, base) = (&*task_arc, self.base);
            super::prepare::clean_up(
                ctx,
                task,
                attempt,
                base,
                &place.workdir,
                admin,
                &mut self.stop,
            )
            .await;
        }
        let mut reason = reason;
        // A setup that filled the disk does not keep it full: what it
        // wrote in a warm worktree (kept between runs, where no `clean
        // --all` reaches) goes; the task did not run, so none of it is
        // the task's work.
        if self.lease.is_some()
            && let Some(admin) = &place.admin
            && short_of_space_now(ctx).is_some()
        {
            let (c, wd, a) = (Arc::clone(ctx), place.workdir.clone(), admin.clone());
            match blocking(move || c.worktrees.clean_all(&wd, &a)).await {
                Ok(()) => reason.push_str(
                    "; the disk is full: what setup wrote in its warm worktree was removed (`swarm clean --all --warm` frees what the others hold)",
                ),
                Err(e) => tracing::warn!(task = %self.task.id, error = %e, "failed to remove what setup wrote"),
            }
        }
        release(&mut self.lease, &self.task);
        if attempt == self.last_attempt || cancelled {
            let status = match cancelled {
                true => TaskStatus::Cancelled,
                false => TaskStatus::Failed,
            };
            // Its worktree is kept, with what setup left, for a look.
            return Ok(Some(Done::ended(self.i, status, Some(reason))));
        }
        self.set_up_from = Instant::now();
        self.remove_worktree(place.workdir, place.admin).await?;
        Ok(None)
    }

    /// Runs the attempt in `place`, its start reported as it starts (on
    /// deck: when the launcher says it did), and how long it took. `None`
    /// when it was taken back from the deck before it started.
    async fn run(
        &mut self,
        attempt: u32,
        place: &Place,
        start: StartReport,
        links: DeckLinks,
    ) -> Result<Option<(Ran, Duration)>, GitError> {
        // A command on deck starts when the launcher starts it: its start
        // is reported, and its time counted, from then. When the launcher
        // said it started (set as its word is read), and whether its start
        // is reported:
        let began_at = links.on_deck.as_ref().map(|l| Arc::clone(&l.began));
        let reported = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let report_start = {
            let (reported, start) = (Arc::clone(&reported), start.clone());
            let began_at = began_at.clone();
            move || {
                if !reported.swap(true, std::sync::atomic::Ordering::AcqRel) {
                    // On deck: when the launcher's word was read.
                    let at = began_at.as_ref().and_then(|b| b.get().copied());
                    start.send(at.unwrap_or_else(Instant::now));
                }
            }
        };
        let on_deck = links.on_deck.map(|links| swarm_worker::OnDeck {
            behind: links.behind,
            signal: links.signal,
            began: Arc::new(report_start.clone()),
            // The executor counts it as holding a place from then.
            started: links.began,
        });
        let withdrawn = on_deck.as_ref().map(|d| d.signal.clone());
        let decked = on_deck.is_some();
        let started = Instant::now();
        if !decked {
            start.send(started);
            // The dispatcher shares this thread: let it report the start
            // now, not after the (synchronous) spawn of the attempt's
            // process.
            tokio::task::yield_now().await;
        }
        let links = swarm_worker::Deck {
            publish: links.publish.map(Arc::new),
            on_deck,
        };
        let task_arc = Arc::clone(&self.task);
        let (ctx, task, base) = (self.ctx, &*task_arc, self.base);
        let ran = run_attempt(
            ctx,
            task,
            attempt,
            base,
            &place.workdir,
            &place.git_dir,
            links,
            &mut self.stop,
            Phase::Task,
        )
        .await;
        // Taken back from the deck before it started: its worktree goes
        // now (the next start makes it again, at the same place).
        if !reported.load(std::sync::atomic::Ordering::Acquire)
            && withdrawn.is_some_and(|s| *s.borrow() == swarm_worker::DeckSignal::Withdraw)
        {
            // Nothing ran in it: a warm one is kept as it is.
            release(&mut self.lease, task);
            self.remove_worktree(place.workdir.clone(), place.admin.clone())
                .await?;
            return Ok(None);
        }
        let started = match began_at.as_ref().and_then(|b| b.get()) {
            Some(&at) => at,
            None => {
                // Stopped on deck, or never got as far: its journal still
                // has the attempt's start before its end.
                if decked {
                    report_start();
                }
                started
            }
        };
        Ok(Some((ran, started.elapsed())))
    }

    /// What follows the attempt's run: its worktree checked, its test
    /// report and subtask request read, its work on a ref and reported;
    /// then the task's end if this was its last attempt, or `None`.
    async fn conclude(
        &mut self,
        attempt: u32,
        place: Place,
        setup_state: Option<State>,
        mut ran: Ran,
        duration: Duration,
    ) -> Result<Option<Done>, GitError> {
        let task_arc = Arc::clone(&self.task);
        let (ctx, task, i) = (self.ctx, &*task_arc, self.i);
        let Place {
            workdir, git_dir, ..
        } = place;
        // A worktree removed from outside while the task ran holds nothing
        // to snapshot: a snapshot of a missing directory would say that
        // every file of the base was deleted (outside the task's paths).
        // The attempt is lost, and says why; its work went with it.
        let gone = place.admin.is_some() && !workdir.is_dir();
        if gone {
            ran.outcome = AttemptOutcome::Lost {
                message: format!(
                    "its worktree {} disappeared while it ran (removed from outside swarm): nothing of it could be kept",
                    workdir.display()
                ),
            };
        }
        let admin = place.admin.filter(|_| !gone);
        // What an agent said goes to the journal, the summary and every
        // view of the run: never a file of the person's it quoted.
        if let Some(agent) = ran.agent.as_mut() {
            agent.summary = ctx.included.redacted(&agent.summary);
            agent.detail = agent.detail.take().map(|d| ctx.included.redacted(&d));
        }
        restore_link(task, &workdir, admin.clone()).await?;
        let mut ran_ok = ran.passed();
        // (An earlier attempt's request is removed as its tmp is taken
        // again, see `attempt::Setup::make`.)
        let request = crate::run::spawn::request_path(&ctx.run_dir, &task.id);
        if let Some(junit) = task.junit.clone() {
            self.read_tests(attempt, junit, &workdir, admin.is_some(), &request)
                .await?;
        } else if !self.tests.selected_out.is_empty() {
            self.report_none_selected(attempt);
        }
        let verdict = self.test_verdict(attempt, &ran, ran_ok);
        ran_ok = verdict.ok;
        let flaky = verdict.flaky;
        let tmp_removed = remove_empty_tmp(ctx, &request);
        // A command's subtask request, checked now that it has done its
        // part: a request that fails its checks fails the attempt.
        let refused = match ran_ok && !tmp_removed {
            true => read_request(ctx, task, attempt, &request, &workdir).await,
            false => None,
        };
        // A directory shown as the kept setup's overlay that the task made
        // no longer ignored: what it wrote there is in its own layer, which
        // no snapshot sees. Kept aside and said, never dropped in silence.
        let refused = match refused {
            None if ran_ok => unshown_layers(ctx, &workdir, admin.as_deref(), attempt, task).await,
            refused => refused,
        };
        ran_ok &= refused.is_none();
        let stopped = self.stop.borrow().is_some();
        // The last attempt whatever its result check says.
        let last_anyway = attempt == self.last_attempt
            || matches!(ran.outcome, AttemptOutcome::Cancelled)
            || stopped
            || flaky.is_some();
        let (snap, outside, diff) = match &admin {
            None => (None, Vec::new(), None),
            Some(admin) => {
                let to_ref = (ran_ok, last_anyway);
                let (snap, outside, diff) = self
                    .snapshot(attempt, &workdir, admin, &ran, setup_state, to_ref)
                    .await?;
                (Some(Box::new(snap)), outside, diff)
            }
        };
        // Its work is on a ref now: a warm worktree may be reset.
        release(&mut self.lease, task);
        let success = ran_ok && outside.is_empty() && flaky.is_none();
        // Its kept tmp is worth keeping only after an attempt that passed
        // every check: the next one finds it as this one left it.
        if let Some(mark) = ran.kept_mark.take().filter(|_| success) {
            super::attempt::mark_kept(&mark);
        }
        let (git_ref, kept) = (
            snap.as_ref().map(|s| s.1.clone()),
            snap.as_ref().map(|s| s.0.commit),
        );
        let _ = ctx.events.send(ExecEvent::AttemptFinished {
            task: i,
            attempt,
            outcome: ran.outcome.clone(),
            verify_passed: ran.verify.as_ref().map(|v| *v == Verify::Passed),
            duration,
            verify: ran.verify_time,
            snapshot: snap,
            outside_paths: outside.clone(),
            agent: ran.agent.clone().map(Box::new),
            score: ran.score.take().map(Box::new),
            diff,
        });
        // Swarm is done with the worktree for this attempt: its result is
        // on a ref, and what cleanup changes is in none.
        if admin.is_some() {
            let base = self.base;
            super::prepare::clean_up(ctx, task, attempt, base, &workdir, &git_dir, &mut self.stop)
                .await;
        }
        if success || last_anyway {
            let status = match (success, &ran.outcome) {
                (true, _) => TaskStatus::Succeeded,
                (false, AttemptOutcome::TimedOut) => TaskStatus::TimedOut,
                (false, AttemptOutcome::Stalled { .. }) => TaskStatus::Stalled,
                (false, AttemptOutcome::Cancelled) => TaskStatus::Cancelled,
                (false, _) if stopped => TaskStatus::Cancelled,
                (false, _) => TaskStatus::Failed,
            };
            let reason = (!success).then(|| match refused.or(flaky).or(verdict.unproven) {
                Some(refused) => refused,
                None => self.reason(
                    attempt,
                    &ran,
                    &outside,
                    &workdir,
                    git_ref.filter(|_| ran_ok),
                ),
            });
            // A warm worktree stays for the next run.
            let removable = admin
                .filter(|_| success && self.lease.is_none())
                .map(|admin| (workdir, admin));
            return Ok(Some(Done {
                removable,
                tmp_removed,
                ..Done::ended(i, status, reason)
            }));
        }
        // The failed attempt is on its ref; start over from a clean tree
        // (a warm one is brought back to the base, its build output kept),
        // an agent cut off with its work carried over.
        self.next_attempt(&ran, attempt, kept);
        self.set_up_from = Instant::now();
        self.remove_worktree(workdir, admin).await?;
        Ok(None)
    }

    /// The report of a shard with no test report of its own that left
    /// entries out (none affected by the run's changes): they are its
    /// report, skipped by selection.
    fn report_none_selected(&self, attempt: u32) {
        let _ = self.ctx.events.send(ExecEvent::Tests {
            task: self.i,
            attempt,
            tests: Some(self.selected_only(attempt)),
            warning: None,
        });
    }

    /// The tests so far of attempt `attempt` (none, without a report)
    /// with the entries skipped by selection.
    fn selected_only(&self, attempt: u32) -> Box<swarm_protocol::TestCounts> {
        let kept = crate::layout::tests_path(&self.ctx.run_dir, &self.task.id, attempt);
        let mut tests = self.tests.history.counts(kept.display().to_string());
        tests.selected_out = self.tests.selected_out.clone();
        Box::new(tests)
    }

    /// The command's own test report, read before its tmp (where `request`
    /// is) goes and its worktree is committed (it is not part of the
    /// result), folded with the task's earlier attempts' and the
    /// quarantine, and reported.
    async fn read_tests(
        &mut self,
        attempt: u32,
        junit: String,
        workdir: &Path,
        writes: bool,
        request: &Path,
    ) -> Result<(), GitError> {
        let task_arc = Arc::clone(&self.task);
        let (ctx, task, base) = (self.ctx, &*task_arc, self.base);
        // Its `TMPDIR`: kept with its warm worktree, or its fresh tmp.
        let tmp = ctx
            .kept_tmp_path(task, workdir)
            .or_else(|| request.parent().map(Path::to_path_buf));
        let kept = crate::layout::tests_path(&ctx.run_dir, &task.id, attempt);
        let (wd, repo) = (workdir.to_path_buf(), ctx.repo.clone());
        let (included, quarantine) = (Arc::clone(&ctx.included), Arc::clone(&ctx.quarantine));
        let (id, rerun) = (task.id.clone(), self.tests.rerun);
        let mut history = std::mem::take(&mut self.tests.history);
        let (history, tests, warning) = blocking(move || {
            let read = super::tests::read(&super::tests::Report {
                junit: &junit,
                workdir: &wd,
                tmp: tmp.as_deref(),
                base: writes.then_some((&repo, base)),
                redact: included.redact.as_ref(),
            });
            let read_warning = match read {
                Ok(parsed) => {
                    history.add(attempt, parsed, rerun);
                    None
                }
                Err(warning) => {
                    history.ran(rerun);
                    Some(warning)
                }
            };
            history.quarantine(&quarantine, &id, crate::test_attempts::today());
            // An attempt without a report leaves the earlier ones' tests
            // the task's.
            let (tests, kept_warning) = match history.cases().is_empty() {
                true => (None, None),
                false => {
                    let (tests, warning) = super::tests::keep(&history, &kept);
                    (Some(tests), warning)
                }
            };
            let warning = [read_warning, kept_warning]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>();
            Ok((
                history,
                tests,
                (!warning.is_empty()).then(|| warning.join("; ")),
            ))
        })
        .await?;
        self.tests.history = history;
        // The entries skipped by selection are said with or without a
        // report (and keep a narrowed shard's time from the learning).
        let tests = match tests {
            Some(mut tests) => {
                tests.selected_out = self.tests.selected_out.clone();
                Some(Box::new(tests))
            }
            None if !self.tests.selected_out.is_empty() => Some(self.selected_only(attempt)),
            None => None,
        };
        let _ = ctx.events.send(ExecEvent::Tests {
            task: self.i,
            attempt,
            tests,
            warning,
        });
        Ok(())
    }

    /// What the task's tests say of attempt `attempt` beyond its exit
    /// (`ran`, `ran_ok`): a command that failed only tests the quarantine
    /// holds did its work, when nothing else could have failed unseen (it
    /// has no `verify`, which runs only after a command that passed, and
    /// its report holds a test of each of its entries: a runner that
    /// stopped at the first failure leaves some out); one that passed while
    /// a test that failed before was not seen passing did not; and one
    /// with flaky tests fails its task under `flaky = "fail"`.
    fn test_verdict(&self, attempt: u32, ran: &Ran, ran_ok: bool) -> TestVerdict {
        let history = &self.tests.history;
        if self.task.junit.is_none() {
            return TestVerdict {
                ok: ran_ok,
                flaky: None,
                unproven: None,
            };
        }
        let entries = shard_entries(&self.planned);
        let failed = matches!(ran.outcome, AttemptOutcome::Exited { code } if code != 0);
        let forgiven = !ran_ok
            && failed
            && self.task.verify.is_none()
            && history.covers(&entries)
            && history.only_quarantined_failed(attempt);
        let passed = ran_ok || forgiven;
        let unproven = passed.then(|| history.unproven_reason(attempt)).flatten();
        let ok = passed && unproven.is_none();
        let flaky = (ok && self.task.flaky == Flaky::Fail)
            .then(|| history.flaky_reason())
            .flatten();
        TestVerdict {
            ok,
            flaky,
            unproven,
        }
    }

    /// The task as its next attempt runs it after an attempt failed
    /// (`ran`): a shard whose failing tests gate and are known by name runs
    /// only them (or their entries) again; any other runs whole.
    fn next_attempt(&mut self, ran: &Ran, attempt: u32, kept: Option<Oid>) {
        let tests_failed = matches!(ran.outcome, AttemptOutcome::Exited { code } if code != 0);
        self.next_runs(tests_failed);
        // An agent cut off by a timeout or a stall goes on from its work:
        // the next worktree gets its changes again, and the agent is told.
        let cut_off = matches!(
            ran.outcome,
            AttemptOutcome::TimedOut | AttemptOutcome::Stalled { .. }
        );
        let commit = kept.filter(|_| cut_off && self.planned.agent().is_some());
        self.carried = commit;
        if commit.is_some() {
            let note = carried_note(self.ctx, &self.planned, attempt, &ran.outcome);
            self.task = with_note(Arc::clone(&self.planned), Some(note.into()));
        }
    }

    /// The tests of the task's attempt `attempt` of an earlier run of it,
    /// as that run kept them (every attempt's folded), and the next
    /// attempt made to run again only those that failed and gate.
    async fn resume_tests(&mut self, attempt: u32) {
        // The last attempt that kept any (one cut short by an interruption
        // kept none).
        let (dir, id) = (self.ctx.run_dir.clone(), self.planned.id.clone());
        #[allow(
            clippy::disallowed_methods,
            reason = "the task's kept test cases, in the run's logs (swarm's own, written by swarm)"
        )]
        let read = blocking(move || {
            Ok((1..=attempt).rev().find_map(|a| {
                let bytes = std::fs::read(crate::layout::tests_path(&dir, &id, a)).ok()?;
                Some((a, bytes))
            }))
        })
        .await;
        let Ok(Some((attempt, bytes))) = read else {
            return;
        };
        let Ok(cases) = serde_json::from_slice::<Vec<swarm_protocol::TestCase>>(&bytes) else {
            return;
        };
        let mut history = crate::test_attempts::History::resumed(attempt, cases);
        let today = crate::test_attempts::today();
        history.quarantine(&self.ctx.quarantine, &self.planned.id, today);
        self.tests.history = history;
        self.next_runs(true);
    }

    /// The task narrowed to the entries of its shard the run's changes
    /// could affect, when its task has `affected = true`
    /// (`plan::selection`): what the run changed for it is what its start
    /// holds that the run's base does not.
    ///
    /// On a cluster node the coordinator decided it (the job's task comes
    /// narrowed, `run_base` unknown here).
    async fn select_affected(&mut self) {
        use crate::plan::shards::Sharding;
        let Some(Sharding::Shard {
            entries,
            affected: Some(all),
            selected_out,
            ..
        }) = self.planned.sharding.as_deref()
        else {
            return;
        };
        if let Some(run_base) = self.ctx.run_base {
            let (repo, start) = (self.ctx.repo.clone(), self.base);
            let changed = blocking(move || repo.changed_between(run_base, start)).await;
            let id = &self.planned.id;
            let Some(selection) = crate::plan::selection::select_read(id, (entries, all), changed)
            else {
                return;
            };
            if let Some(narrowed) = crate::plan::shards::narrowed(&self.planned, &selection) {
                self.planned = Arc::new(narrowed);
                self.task = Arc::clone(&self.planned);
            }
            self.tests.selected_out = selection.out;
        } else {
            self.tests.selected_out = selected_out.clone();
        }
    }

    /// [`Self::next_attempt`], told whether the attempt failed as a test
    /// run does (exited with a code other than 0).
    fn next_runs(&mut self, tests_failed: bool) {
        let history = &self.tests.history;
        let entries = shard_entries(&self.planned);
        let lists_tests = matches!(
            self.planned.sharding.as_deref(),
            Some(crate::plan::shards::Sharding::Shard { list: Some(_), .. })
        );
        // Narrowed only where the report holds a test of every entry: what
        // a runner that stopped at its first failure never ran runs again.
        let rerun = match history.gating_failures() {
            Some(failing)
                if tests_failed
                    && !failing.is_empty()
                    && !entries.is_empty()
                    && history.covers(&entries) =>
            {
                entries.rerun(&failing, lists_tests).and_then(|ids| {
                    Some((ids.len(), crate::plan::shards::rerun(&self.planned, &ids)?))
                })
            }
            _ => None,
        };
        (self.task, self.tests.rerun) = match rerun {
            Some((n, task)) => (Arc::new(task), n as u32),
            None => (Arc::clone(&self.planned), 0),
        };
    }

    /// The attempt's work committed and put on a ref (the task's own when
    /// it did its work or is the last anyway, `to_ref`; else the
    /// attempt's), with the result check (`ownership`): what it changed
    /// outside the task's paths, which fails the attempt. Its work still
    /// goes to its ref, which therefore is chosen only once the check is
    /// done. And, for a variant, the size of its change.
    async fn snapshot(
        &self,
        attempt: u32,
        workdir: &Path,
        admin: &Path,
        ran: &Ran,
        setup_state: Option<State>,
        (ran_ok, last_anyway): (bool, bool),
    ) -> Result<Snapped, GitError> {
        let task_arc = Arc::clone(&self.task);
        let (ctx, task, base) = (self.ctx, &*task_arc, self.base);
        let (repo, wd, run) = (ctx.repo.clone(), workdir.to_path_buf(), ctx.run.clone());
        let (t, o, v, a) = (
            task.clone(),
            ran.outcome.clone(),
            ran.verify.clone(),
            ran.agent.clone(),
        );
        let admin = admin.to_path_buf();
        let variant = task.variant().is_some();
        let included = Arc::clone(&ctx.included);
        blocking(move || {
            let checkout = t.checkout();
            let limits = SnapshotLimits {
                scope: &checkout,
                max_file_size: t.max_file_size,
                run: &run,
            };
            let message = |skipped: &[SkippedFile], changed: &[String]| {
                // An agent's summary may quote a file of the person's.
                included.redacted(&super::message::commit_message(
                    &run,
                    &t,
                    attempt,
                    &o,
                    v.as_ref(),
                    a.as_ref(),
                    skipped,
                    &super::owned_paths::outside(&t, changed),
                ))
            };
            // The person's included files are never committed, nor
            // written into git's objects: a file holding one's content is
            // left out, before it is written.
            let screen = Some(&included.screen).filter(|s| !s.is_empty());
            let (snap, withheld) = snapshot_screened(&wd, &admin, base, limits, screen, message)?;
            // What `[setup]` made and the task left alone is not the
            // task's work.
            let snap = match &setup_state {
                Some(made) => {
                    let made = made.as_withheld(&withheld);
                    leave_out(&wd, &admin, snap, base, &made, &run, message)?
                }
                None => snap,
            };
            let mut outside = super::owned_paths::outside(&t, &snap.changed);
            // A result that held one fails its attempt, naming both.
            outside.extend(leaked(&withheld, setup_state.as_ref()));
            let git_ref = if (ran_ok && outside.is_empty()) || last_anyway {
                refs::task(&run, &t.id)
            } else {
                refs::attempt(&run, &t.id, attempt)
            };
            repo.set_ref(&git_ref, snap.commit, "swarm: task snapshot")?;
            // A variant's ranking shows the size of its change.
            let diff = match variant {
                true => Some(repo.diff_stat(base, snap.commit)?),
                false => None,
            };
            Ok(((snap, git_ref), outside, diff))
        })
        .await
    }

    /// Why the task failed, on its last attempt: how it ended and what it
    /// wrote outside its paths, with where its work is when it did its
    /// work (`on_ref`) or why its writes were refused.
    fn reason(
        &self,
        attempt: u32,
        ran: &Ran,
        outside: &[String],
        workdir: &Path,
        on_ref: Option<String>,
    ) -> String {
        let task_arc = Arc::clone(&self.task);
        let (ctx, task) = (self.ctx, &*task_arc);
        let why = describe_result(
            &ran.outcome,
            ran.verify.as_ref(),
            task,
            &ctx.run,
            attempt,
            ran.agent.as_ref(),
            outside,
        );
        // A sandboxed write outside the task's paths fails as the tool
        // reports it ("Read-only file system"): say the rule.
        let refused_writes = match (&ctx.sandbox, &ran.outcome) {
            (Some(_), AttemptOutcome::Exited { code }) if *code != 0 && outside.is_empty() => {
                let (_, stderr) = crate::layout::log_paths(&ctx.run_dir, &task.id, attempt);
                super::owned_paths::refused_writes(task, workdir, &crate::export::log_tail(&stderr))
            }
            _ => None,
        };
        let hint = match (&ctx.sandbox, &ran.outcome, &refused_writes) {
            (Some(_), AttemptOutcome::Exited { code }, None) if *code != 0 => {
                self.sandbox_hint(attempt, workdir)
            }
            _ => None,
        };
        match (on_ref, refused_writes, hint) {
            (Some(r), _, _) => format!(
                "{why}; its work is on {r}: {}",
                super::owned_paths::help(outside.len())
            ),
            (_, Some(refused), _) => format!("{why}; {refused}"),
            (_, None, Some(hint)) => format!("{why}; {hint}"),
            _ => why,
        }
    }

    /// Whether the sandbox may be why attempt `attempt` (in `workdir`)
    /// failed, from the end of its output: the grant that would allow
    /// what it tried (`hints`).
    fn sandbox_hint(&self, attempt: u32, workdir: &Path) -> Option<String> {
        let (ctx, task) = (self.ctx, &*self.task);
        let (stdout, stderr) = crate::layout::log_paths(&ctx.run_dir, &task.id, attempt);
        let output = format!(
            "{}\n{}",
            crate::export::log_tail(&stdout),
            crate::export::log_tail(&stderr)
        );
        let roots: Vec<std::path::PathBuf> = swarm_sandbox::SYSTEM_READ_ONLY
            .iter()
            .map(std::path::PathBuf::from)
            .chain(ctx.read_paths.iter().cloned())
            .collect();
        let writable: Vec<std::path::PathBuf> = ctx.caches.iter().map(|c| c.dir.clone()).collect();
        let home = ctx.worktree_dir.parent().unwrap_or(&ctx.worktree_dir);
        let own = [
            workdir,
            ctx.run_dir.as_path(),
            home,
            ctx.repo.workdir.as_path(),
        ];
        let shown = super::hints::Shown {
            roots: &roots,
            writable: &writable,
            own: &own,
        };
        super::hints::sandbox_hint(task, &shown, &output)
    }

    /// Removes the attempt's worktree (`admin`, its record), unless it is
    /// the task's warm one: kept, the next attempt brings it to the base.
    async fn remove_worktree(
        &self,
        workdir: PathBuf,
        admin: Option<PathBuf>,
    ) -> Result<(), GitError> {
        if let Some(admin) = admin.filter(|_| self.lease.is_none()) {
            let worktrees = Arc::clone(self.ctx);
            blocking(move || worktrees.worktrees.remove(&workdir, Some(&admin))).await?;
        }
        Ok(())
    }
}

/// An attempt's work on its ref (the snapshot and the ref), what it
/// changed outside its task's paths, and a variant's size of change.
type Snapped = (
    (crate::git::Snapshot, String),
    Vec<String>,
    Option<swarm_protocol::experiment::DiffStat>,
);

/// Why the attempt in `workdir` fails if the task made a directory it was
/// shown as the kept setup's overlay no longer ignored (its layer then
/// kept aside, `tmp/<task>.layers.<attempt>`, for a look); `None` if it
/// did not.
async fn unshown_layers(
    ctx: &Arc<Ctx>,
    workdir: &Path,
    admin: Option<&Path>,
    attempt: u32,
    task: &Task,
) -> Option<String> {
    let admin = admin.filter(|_| ctx.setups.is_some())?;
    let (me, wd, admin) = (Arc::clone(ctx), workdir.to_path_buf(), admin.to_path_buf());
    let found = tokio::task::spawn_blocking(move || match &me.setups {
        Some(setups) => setups.layers.no_longer_ignored(&me.repo, &wd, &admin),
        None => Ok(Vec::new()),
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|found| found);
    let names = match found {
        Ok(names) if names.is_empty() => return None,
        Ok(names) => names,
        Err(e) => {
            tracing::warn!(task = %task.id, error = %e, "failed to ask git whether the directories shown as overlays are still ignored");
            return None;
        }
    };
    let layers = crate::layout::layers_tmp(&ctx.run_dir, &task.id);
    let aside = layers.with_extension(format!("layers.{attempt}"));
    #[allow(
        clippy::disallowed_methods,
        reason = "a rename within the run's tmp/ (swarm's): the layers' directory itself, never through a link"
    )]
    let kept = std::fs::rename(&layers, &aside);
    let kept = match kept {
        Ok(()) => format!("kept in {}", aside.display()),
        Err(e) => format!("left in {} ({e})", layers.display()),
    };
    let names = names
        .iter()
        .map(|n| format!("`{n}/`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "it made {names} no longer ignored, which it was shown as the kept setup's overlay: what it wrote there is in no result ({kept}); give the task `setup = false`, or keep {names} ignored"
    ))
}

/// The figures of an attempt's `[setup]` (begun at `began`) for its start
/// event, when it had one.
fn setup_run(prepared: &Prepared, began: Instant) -> Option<swarm_protocol::SetupRun> {
    match prepared {
        Prepared::Nothing => None,
        Prepared::Ready {
            reused,
            layered,
            waited,
            ..
        } => Some(swarm_protocol::SetupRun {
            ms: crate::millis(began.elapsed()),
            reused: *reused,
            waited_ms: crate::millis(*waited),
            layered: *layered,
        }),
        Prepared::Failed { .. } => Some(swarm_protocol::SetupRun {
            ms: crate::millis(began.elapsed()),
            reused: false,
            waited_ms: 0,
            layered: false,
        }),
    }
}

/// The files a snapshot left out for holding the content of an included
/// file (`withheld`), each as "`PATH` (the content of FILE from
/// .worktreeinclude)", but for what `[setup]` made (`setup`) and the task
/// left alone: the snapshot leaves that out anyway.
fn leaked(withheld: &[crate::git::Withheld], setup: Option<&State>) -> Vec<String> {
    withheld
        .iter()
        .filter(|w| !setup.is_some_and(|made| made.made(&w.path, w.id)))
        .map(|w| {
            let what = match w.whole {
                true => "the content of",
                false => "holds the content of",
            };
            let kept = match w.cut {
                Some(_) => ": the rest of it is committed",
                None => "",
            };
            format!(
                "{} ({what} {}, a file of yours from .worktreeinclude, never committed{kept})",
                w.path,
                w.files.join(", ")
            )
        })
        .collect()
}

/// The warm worktree of `task`, if it can have it now: held by another
/// run, or left unproven by an interrupted one, it gets a fresh worktree
/// (and a warning) instead.
fn lease_warm(
    ctx: &Ctx,
    warm: &crate::run::warm::WarmDir,
    task: &Task,
) -> Option<crate::run::warm::Lease> {
    use crate::run::warm::Unavailable;
    match warm.lease(&crate::ids::flat(&task.id), &ctx.run, ctx.resumed) {
        Ok(Ok(lease)) => Some(lease),
        Ok(Err(Unavailable::Busy)) => {
            tracing::warn!(task = %task.id, "its warm worktree is in use by another run; it gets a fresh worktree");
            None
        }
        Ok(Err(Unavailable::Unproven { run })) => {
            tracing::warn!(task = %task.id, left_by = %run, "its warm worktree holds what an interrupted run left (`swarm resume` of that run keeps it, `swarm clean --warm` frees it); it gets a fresh worktree");
            None
        }
        Err(e) => {
            tracing::warn!(task = %task.id, error = %e, "failed to take its warm worktree; it gets a fresh worktree");
            None
        }
    }
}

/// Says `lease`'s worktree holds nothing that is not on a ref (its warm
/// state of the lineage `place` recorded with `Lease::hold_as`).
fn release(lease: &mut Option<crate::run::warm::Lease>, task: &Task) {
    if let Some(lease) = lease
        && let Err(e) = lease.release()
    {
        tracing::warn!(task = %task.id, error = %e, "failed to release its warm worktree; the next run gets a fresh one");
    }
}

/// Makes the warm state of task `id` anew, but its worktree (made again
/// by the caller) and its own build caches (readied for each attempt by
/// `own_caches`, under the same rule): the mark that keeps its tmp, so
/// the tmp is made fresh. A failure is warned of.
fn forget_warm_state(ctx: &Ctx, id: &str) {
    let Some((warm, _)) = &ctx.warm else {
        return;
    };
    let mark = warm.tmp_mark(&crate::ids::flat(id));
    #[allow(
        clippy::disallowed_methods,
        reason = "`<home>/.warm/.tmp-kept`, swarm's: no task writes there"
    )]
    let removed = std::fs::remove_file(&mark);
    if let Err(e) = removed
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(task = %id, path = %mark.display(), error = %e, "failed to forget its kept tmp of another lineage");
    }
}

/// Reads and checks the subtask request a command left at `path`, if it
/// left one: why it was refused (each problem also appended to attempt
/// `attempt`'s error log, where the user looks first), or `None` when it
/// was accepted or there was none.
async fn read_request(
    ctx: &Ctx,
    task: &Task,
    attempt: u32,
    path: &std::path::Path,
    workdir: &std::path::Path,
) -> Option<String> {
    // Most tasks leave none: an `lstat` here (which follows no link and
    // waits on nothing) spares them a trip to a blocking thread, on the
    // way from one task's end to the next one's start.
    if path
        .symlink_metadata()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return None;
    }
    // The task wrote it: read as hostile input (no link followed, no FIFO
    // waited on, nothing past the cap), off this thread, with a deadline.
    let (dir, name) = (path.parent()?, crate::run::spawn::REQUEST_FILE);
    let read = crate::untrusted::read_with_deadline(
        dir.to_path_buf(),
        name.to_string(),
        crate::untrusted::Limits::new("a subtask request"),
        crate::untrusted::DEFAULT_DEADLINE,
    )
    .await
    .and_then(|bytes| {
        String::from_utf8(bytes).map_err(|_| crate::untrusted::UntrustedError::Io {
            path: path.to_path_buf(),
            message: "it is not UTF-8 text".into(),
        })
    });
    let text = match read {
        Ok(text) => text,
        Err(e) if e.is_missing() => return None,
        Err(e) => {
            let why = format!("its subtask request could not be read: {e}");
            append_to_log(ctx, task, attempt, std::slice::from_ref(&why));
            return Some(why);
        }
    };
    // The checks parse and stat: off the dispatcher's thread.
    let (spawner, parent, name, workdir) = (
        Arc::clone(&ctx.spawner),
        task.clone(),
        path.display().to_string(),
        workdir.to_path_buf(),
    );
    let checked = tokio::task::spawn_blocking(move || {
        spawner.request(
            &parent,
            &name,
            &text,
            &crate::run::spawn::exists_in(&workdir),
        )
    })
    .await
    .unwrap_or_else(|e| Err(vec![format!("swarm could not check it: {e}")]));
    let problems = checked.err()?;
    append_to_log(ctx, task, attempt, &problems);
    // The run's limits say "refused: ..." to an agent; here the reason
    // says it once.
    let problems: Vec<&str> = problems
        .iter()
        .map(|p| p.strip_prefix("refused: ").unwrap_or(p))
        .collect();
    Some(format!(
        "its subtask request was refused: {}",
        problems.join("; ")
    ))
}

/// Appends why attempt `attempt`'s subtask request was refused to its
/// error log, where the user looks first.
fn append_to_log(ctx: &Ctx, task: &Task, attempt: u32, problems: &[String]) {
    let (_, stderr) = crate::layout::log_paths(&ctx.run_dir, &task.id, attempt);
    if let Ok(mut log) = swarm_worker::open_log(&stderr) {
        use std::io::Write as _;
        let _ = writeln!(log, "swarm: the subtask request was refused:");
        for problem in problems {
            let _ = writeln!(log, "  {problem}");
        }
    }
}

/// Removes the attempt's tmp (where its subtask `request` would be) if it
/// is empty, saying whether it did. Most attempts leave their tmp empty:
/// removed now (it is scratch, and an empty one holds nothing to look at
/// even after a failure), it holds no subtask request either. One `rmdir`
/// where an `lstat` of the request and, after the task, an `rmdir` were.
/// (Not where swarm wrote the tmp a `.gitconfig`, as root in a sandbox:
/// never empty, it is left to the end's clean-up, which knows the file.)
fn remove_empty_tmp(ctx: &Ctx, request: &Path) -> bool {
    !ctx.tmp_holds_gitconfig()
        && request.parent().is_some_and(|tmp| {
            #[allow(
                clippy::disallowed_methods,
                reason = "rmdir of the task's tmp, in the run's tmp/ (swarm's): an empty directory or nothing, never through a link"
            )]
            let removed = std::fs::remove_dir(tmp);
            removed.is_ok()
        })
}

/// Whatever the task made of its worktree's link to the repository (a
/// `.git` directory whose configuration runs a command), the user who
/// inspects a kept worktree meets git's own record (`admin`) again.
async fn restore_link(task: &Task, workdir: &Path, admin: Option<PathBuf>) -> Result<(), GitError> {
    if let Some(admin) = admin {
        let (wd, id) = (workdir.to_path_buf(), task.id.clone());
        if blocking(move || Worktrees::restore_link(&wd, &admin)).await? {
            tracing::warn!(task = %id, "the task replaced its worktree's .git; swarm restored it");
        }
    }
    Ok(())
}

/// What an agent whose attempt `attempt` was cut off (`outcome`) is told
/// before its prompt on the next: what happened, that its work is in the
/// worktree again, and the last thing it said (from its transcript, at
/// most [`CARRIED_WORDS`] bytes).
fn carried_note(ctx: &Ctx, task: &Task, attempt: u32, outcome: &AttemptOutcome) -> String {
    let how = super::describe::describe_outcome(outcome);
    let transcript = crate::layout::transcript_path(&ctx.run_dir, &task.id, attempt);
    let said = last_words(&transcript);
    let mut note = format!(
        "swarm: your previous attempt ({attempt}) was cut off: {how}. What it had changed is in this worktree again (not committed): go on from it rather than starting over."
    );
    if !said.is_empty() {
        note.push_str(&format!("\n\nThe last thing you said then:\n{said}"));
    }
    note
}

/// Most bytes of an agent's last words carried to its next attempt.
const CARRIED_WORDS: usize = 1500;

/// The text of the last answer in the transcript at `path` (swarm's own
/// file, the model's words in it), at most [`CARRIED_WORDS`] bytes.
fn last_words(path: &Path) -> String {
    #[allow(
        clippy::disallowed_methods,
        reason = "the attempt's transcript, written by swarm's gateway"
    )]
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let said = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["type"] == "assistant")
        .find_map(|e| {
            let words: Vec<&str> = e["content"]
                .as_array()?
                .iter()
                .filter_map(|b| b["text"].as_str())
                .filter(|t| !t.trim().is_empty())
                .collect();
            (!words.is_empty()).then(|| words.join("\n"))
        })
        .unwrap_or_default();
    match said.len() > CARRIED_WORDS {
        true => format!(
            "[...]{}",
            &said[said.ceil_char_boundary(said.len() - CARRIED_WORDS)..]
        ),
        false => said,
    }
}

/// Gives `workdir` (a fresh attempt's worktree at `base`, set up) the
/// changes of `kept`, the snapshot of the attempt before it (added,
/// changed and deleted files, links as links) as uncommitted work, so that
/// the next snapshot, against the same base, holds both attempts' work.
/// Written through `TaskDir`, never through a link on the way: setup ran
/// in the worktree first (with the task's rights, away from the run's
/// base), and what it left is not followed. A file that cannot be written
/// so is said and left out; the rest is carried.
async fn continue_from(ctx: &Ctx, task: &Task, workdir: &Path, (base, kept): (Oid, Oid)) {
    let (repo, wd, id) = (ctx.repo.clone(), workdir.to_path_buf(), task.id.clone());
    let done = blocking(move || {
        let failed = |action: String| {
            move |e: git2::Error| GitError::Cli {
                action,
                message: e.message().to_string(),
            }
        };
        let git = repo.open().map_err(|e| GitError::Cli {
            action: "open the repository".into(),
            message: e.to_string(),
        })?;
        let tree = |c: Oid| git.find_commit(c).and_then(|c| c.tree());
        let (from, to) = (
            tree(base).map_err(failed(format!("read {base}")))?,
            tree(kept).map_err(failed(format!("read the kept work {kept}")))?,
        );
        let diff = git
            .diff_tree_to_tree(Some(&from), Some(&to), None)
            .map_err(failed(format!("compare {kept} with {base}")))?;
        let dir = crate::untrusted::TaskDir::open(&wd).map_err(|e| GitError::Cli {
            action: format!("open {}", wd.display()),
            message: e.to_string(),
        })?;
        let mut left_out = Vec::new();
        for delta in diff.deltas() {
            let file = delta.new_file();
            let Some(rel) = file
                .path()
                .or(delta.old_file().path())
                .and_then(Path::to_str)
            else {
                continue;
            };
            let written = match (delta.status(), file.mode()) {
                (git2::Delta::Deleted, _) => dir.remove(rel).map(drop),
                (_, git2::FileMode::Commit) => Ok(()),
                (_, mode) => match git.find_blob(file.id()) {
                    Err(e) => Err(crate::untrusted::UntrustedError::Io {
                        path: wd.join(rel),
                        message: e.message().to_string(),
                    }),
                    Ok(blob) if mode == git2::FileMode::Link => dir.remove(rel).and_then(|_| {
                        let target = String::from_utf8_lossy(blob.content()).into_owned();
                        dir.symlink(rel, Path::new(&target))
                    }),
                    Ok(blob) => {
                        let exec = mode == git2::FileMode::BlobExecutable;
                        let mode = if exec { 0o755 } else { 0o644 };
                        dir.replace(rel, blob.content(), mode).map(drop)
                    }
                },
            };
            if let Err(e) = written {
                left_out.push(e.to_string());
            }
        }
        Ok(left_out)
    })
    .await;
    match done {
        Ok(left_out) if left_out.is_empty() => {}
        Ok(left_out) => {
            tracing::warn!(task = %id, left_out = ?left_out, "some of the cut-off attempt's work could not be carried over");
        }
        Err(e) => {
            tracing::warn!(task = %id, error = %e, "failed to carry the cut-off attempt's work over; it starts from its base");
        }
    }
}

/// `task` as an attempt runs it: an agent run again after its result
/// conflicted is told `note` (its earlier change, the other side's) before
/// its prompt. The run's table keeps the task as the plan made it.
fn with_note(
    task: std::sync::Arc<Task>,
    note: Option<std::sync::Arc<str>>,
) -> std::sync::Arc<Task> {
    let Some(note) = note else {
        return task;
    };
    let crate::plan::Payload::Agent(agent) = &task.payload else {
        return task;
    };
    let mut agent = agent.clone();
    agent.prompt = format!("{note}\n\n{}", agent.prompt);
    std::sync::Arc::new(Task {
        payload: crate::plan::Payload::Agent(agent),
        ..(*task).clone()
    })
}
