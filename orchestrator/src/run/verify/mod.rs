//! The run-wide verify (`[swarm] verify`): one run of the command on one
//! integration commit. The commit is checked out detached, read-only,
//! under the run's worktree home: one checkout per slot of the run
//! (`verify_concurrency` verifies run at once, each in its own), moved from commit
//! to commit as `git bisect` moves its own (only the files that differ are
//! written, so unchanged ones keep their times and an incremental build
//! stays incremental), removed when the run ends. The command runs
//! exactly as a task's does (the run's sandbox launcher and environment,
//! no network, the plan's `read_paths`), under `verify_timeout`.
//!
//! A verify runs its commit's code and its verdict can take a merge out,
//! so it finds nothing another verify's code wrote but what its own
//! commit's history allows: each gets a fresh, empty HOME and TMPDIR
//! (`tmp/@verify`, made anew before it, removed after it passed; a failed
//! one's stays for a look until the next), and build caches of its own
//! kept as a lineage (`run::lineage`: reused only by the verify of a commit
//! that contains the one that last wrote them). What to verify when, and
//! what a failure means, is the dispatcher's (`dispatch/verifying.rs`);
//! where the bisection goes next, [`bisect`]'s; taking a merge out,
//! [`rebuild`]'s.

pub(super) mod base;
pub(super) mod bisect;
pub(super) mod owners;
pub(super) mod queue;
pub(super) mod rebuild;
pub(super) mod verdicts;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::Oid;
use swarm_protocol::AttemptOutcome;
use swarm_sandbox::{Network, Policy, Stop};
use swarm_worker::{CommandSpec, Sandboxed, run_command};
use tokio::sync::watch;

use self::base::Base;
use super::error::RunError;
use super::lineage;
use super::options::SandboxSettings;
use super::prepared::Prepared;
use super::warm::{Lease, WarmDir};
use crate::git::{GitError, Repo, Worktrees, run_git, write_view};
use crate::plan::RunVerify;
use crate::run::blocking::blocking;
use crate::worktree_home::WorktreeHome;

/// What stands in for a task id in the paths of the verify's logs, tmp
/// and build caches: `@` is in no task id, so it is nobody's.
const NAME: &str = "@verify";

/// What stands in for an actor in the base cache's path
/// (`<home>/.cache/@verify-base`): no slot is named so.
const BASE: &str = "@verify-base";

/// The tool directory `CARGO_TARGET_DIR` gets when no cache names it.
const CARGO_TARGET: &str = "cargo-target";

/// Most bytes of the output's tail an event carries.
const TAIL_BYTES: usize = 2000;

/// Runs the run-wide verify on commits of one run.
#[derive(Debug)]
pub(super) struct Runner {
    repo: Repo,
    worktrees: Worktrees,
    run: String,
    run_dir: PathBuf,
    /// Its slot's name: `@verify`, `@verify-2`, ... (its tmp, its git
    /// view and its build caches are its own, so verifies run at once).
    name: String,
    /// The detached checkout's path (one per slot of the run).
    checkout: PathBuf,
    /// Its record under `.git/worktrees/`, once made.
    admin: std::sync::Mutex<Option<PathBuf>>,
    command: String,
    timeout: Duration,
    grace: Duration,
    sandbox: Option<SandboxSettings>,
    /// Starts the verify when the run is unconfined.
    unconfined: Option<swarm_sandbox::Launcher>,
    read_paths: Vec<PathBuf>,
    /// Its build caches, its own.
    caches: lineage::Caches,
    /// The lease of the repository's kept checkout of its slot
    /// (`<home>/.warm/@verify`), held while the run lasts; `None` when
    /// another run holds it (the checkout is then the run's own, removed
    /// at its end).
    lease: Option<std::sync::Mutex<Lease>>,
    /// The run's base cache, shared by its slots.
    base: Option<Arc<Base>>,
    /// Held by whoever uses the checkout (a verify, the build of the base
    /// cache): the base cache is built on the base's files alone.
    turn: tokio::sync::Mutex<()>,
    /// Variables holding API keys: never passed to an unconfined command.
    secret_vars: Vec<String>,
}

/// One run's result.
#[derive(Debug)]
pub(super) struct Ran {
    pub outcome: AttemptOutcome,
    pub duration: Duration,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// The end of its output, when it failed.
    pub tail: Option<String>,
    /// The commit's tree: what was verified.
    pub tree: Option<Oid>,
}

impl Runner {
    /// The runner of `prepared`'s run-wide `verify` in slot `slot` (from
    /// 0: `verify_concurrency` of them run at once), with its checkout in
    /// `home`.
    /// The runners of `prepared`'s run-wide `verify`, one per slot
    /// (`verify_concurrency` run at once), for a run from `base`, with
    /// their checkouts in `home`.
    pub(super) fn slots(
        prepared: &Prepared,
        home: &WorktreeHome,
        verify: &RunVerify,
        base: Oid,
    ) -> Result<Vec<Arc<Self>>, RunError> {
        let mut runners: Vec<Arc<Self>> = Vec::new();
        let mut shared = None;
        for slot in 0..verify.concurrency.max(1) as usize {
            let runner = Self::new(prepared, home, verify, slot, shared.clone())?;
            if slot == 0 && runner.caches.lasting() {
                let (tools, _) = tools(prepared);
                let caches = lineage::Caches::new(
                    (prepared.options.sandbox.is_some(), &prepared.run_dir()),
                    home,
                    (BASE, "the run-wide verify's base"),
                    tools,
                    true,
                )?;
                match caches.lasting() {
                    true => shared = Some(Arc::new(Base::new(caches, base))),
                    false => caches.close(),
                }
            }
            // The first slot's only: the base cache is built in its
            // checkout, and a tool that records paths relative to the
            // checkout and judges freshness by times could take another
            // checkout's older files for the ones it was built from.
            runners.push(Arc::new(Self {
                base: if slot == 0 { shared.clone() } else { None },
                ..runner
            }));
        }
        Ok(runners)
    }

    /// The runner of slot `slot` (from 0), with its checkout in `home`.
    fn new(
        prepared: &Prepared,
        home: &WorktreeHome,
        verify: &RunVerify,
        slot: usize,
        base: Option<Arc<Base>>,
    ) -> Result<Self, RunError> {
        let (name, checkout) = match slot {
            0 => (NAME.to_string(), ".readonly-verify".to_string()),
            n => (
                format!("{NAME}-{}", n + 1),
                format!(".readonly-verify-{}", n + 1),
            ),
        };
        let caches = caches(prepared, home, &name)?;
        // The slot's checkout is kept between runs at one path, as a warm
        // worktree is (build tools see the paths and the unchanged files'
        // times they saw before): it holds no work (a commit's files, read
        // only), so its lease says so at once.
        let warm = WarmDir::new(home.warm_dir()?);
        let lease = match warm.lease_workless(&name) {
            Ok(lease) => lease,
            Err(e) => {
                tracing::warn!(error = %e, "failed to take the run-wide verify's kept checkout");
                None
            }
        };
        let checkout = match &lease {
            Some(lease) => lease.path.clone(),
            None => home.run_dir(&prepared.run).join(checkout),
        };
        Ok(Self {
            repo: prepared.repo.clone(),
            worktrees: prepared.worktrees(),
            run: prepared.run.clone(),
            run_dir: prepared.run_dir(),
            name,
            checkout,
            admin: std::sync::Mutex::new(None),
            command: verify.command.clone(),
            timeout: verify.timeout,
            grace: prepared.options.grace,
            sandbox: prepared.options.sandbox.clone(),
            unconfined: prepared.options.unconfined.clone(),
            read_paths: prepared.options.read_paths.clone(),
            caches,
            lease: lease.map(std::sync::Mutex::new),
            base,
            turn: tokio::sync::Mutex::new(()),
            secret_vars: prepared.plan.secret_vars(),
        })
    }

    /// Builds the run's base cache if it is not built for the base yet
    /// (at the run's start, beside its tasks; stopped by `stop`).
    pub(super) async fn prime(self: Arc<Self>, stop: watch::Receiver<Option<Stop>>) {
        if let Some(base) = self.base.clone() {
            base.built
                .get_or_init(|| self.build_base(&base, stop))
                .await;
        }
    }

    /// Runs the verify on the run's base with the base cache as its
    /// caches (what it builds is the base cache). Its verdict is nobody's:
    /// what the base's verify says is the search's to ask
    /// (`VerifyPurpose::Base`), with its own caches.
    async fn build_base(self: &Arc<Self>, base: &Base, mut stop: watch::Receiver<Option<Stop>>) {
        let me = Arc::clone(self);
        let current = {
            let base = self.base.clone();
            tokio::task::spawn_blocking(move || base.is_some_and(|b| b.current()))
                .await
                .unwrap_or(false)
        };
        if current {
            return;
        }
        let dir = crate::layout::task_logs(&self.run_dir, NAME);
        let (stdout, stderr) = (dir.join("base.out"), dir.join("base.err"));
        let started = Instant::now();
        let _turn = self.turn.lock().await;
        match me.prepare(base.commit, stdout, stderr, Source::Base).await {
            Ok((spec, owned)) => {
                let outcome = run_command(&spec, &mut stop).await;
                self.tidy(owned, true).await;
                if !matches!(
                    outcome,
                    AttemptOutcome::Cancelled
                        | AttemptOutcome::TimedOut
                        | AttemptOutcome::Stalled { .. }
                        | AttemptOutcome::SpawnFailed { .. }
                        | AttemptOutcome::Lost { .. }
                ) {
                    let me = Arc::clone(self);
                    let commit = base.commit;
                    let done = tokio::task::spawn_blocking(move || {
                        me.base.as_ref().map(|b| b.caches.finish(commit))
                    })
                    .await;
                    if let Ok(Some(Err(e))) = done {
                        tracing::warn!(error = %e, "failed to record the run-wide verify's base cache");
                    }
                }
                tracing::info!(
                    base = %base.commit,
                    passed = outcome.is_success(),
                    took = ?started.elapsed(),
                    "built the run-wide verify's cache on the run's base"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to build the run-wide verify's cache on the run's base")
            }
        }
    }

    /// Runs the verify (the run's `number`-th) on `commit`.
    pub(super) async fn run(
        self: std::sync::Arc<Self>,
        number: u32,
        commit: Oid,
        mut stop: watch::Receiver<Option<Stop>>,
    ) -> Ran {
        let dir = crate::layout::task_logs(&self.run_dir, NAME);
        let (stdout, stderr) = (
            dir.join(format!("{number}.out")),
            dir.join(format!("{number}.err")),
        );
        let started = Instant::now();
        // Caches it cannot keep start from the base's: built first if no
        // one has yet.
        if let Some(base) = self.base.clone()
            && !base.built.initialized()
        {
            let me = Arc::clone(&self);
            let keeps = tokio::task::spawn_blocking(move || me.caches.keeps(&me.repo, commit))
                .await
                .unwrap_or(false);
            if !keeps {
                base.built
                    .get_or_init(|| self.build_base(&base, stop.clone()))
                    .await;
            }
        }
        let _turn = self.turn.lock().await;
        let outcome = match self
            .prepare(commit, stdout.clone(), stderr.clone(), Source::Commit)
            .await
        {
            Ok((spec, owned)) => {
                let outcome = run_command(&spec, &mut stop).await;
                self.tidy(owned, outcome.is_success()).await;
                outcome
            }
            Err(message) => AttemptOutcome::SpawnFailed { message },
        };
        let tail = (!outcome.is_success()).then(|| tail(&stderr, &stdout));
        let tree = self
            .repo
            .open()
            .ok()
            .and_then(|git| Some(git.find_commit(commit).ok()?.tree_id()));
        Ran {
            tree,
            outcome,
            duration: started.elapsed(),
            stdout,
            stderr,
            tail: tail.flatten(),
        }
    }

    /// After a run: its tmp taken back from the sandbox's identity
    /// (`owned`), and removed if it `passed` (a failed one's stays for a
    /// look, until the next verify makes it anew).
    async fn tidy(&self, owned: bool, passed: bool) {
        let tmp = self.tmp_path();
        let done = tokio::task::spawn_blocking(move || {
            if owned {
                swarm_sandbox::ownership::take_back(&tmp)
                    .map_err(|e| format!("failed to take {} back: {e}", tmp.display()))?;
            }
            if passed {
                crate::untrusted::TaskDir::discard(&tmp)
                    .map_err(|e| format!("failed to remove {e}"))?;
            }
            Ok::<_, String>(())
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the run-wide verify's tmp is left"),
            Err(e) => tracing::warn!(error = %e, "the run-wide verify's tmp is left"),
        }
    }

    /// The checkout of `commit`, its fresh tmp and its caches (`source`),
    /// and the command's spec; whether the tmp was handed to the
    /// sandbox's identity (to be taken back).
    async fn prepare(
        self: &std::sync::Arc<Self>,
        commit: Oid,
        stdout: PathBuf,
        stderr: PathBuf,
        source: Source,
    ) -> Result<(CommandSpec, bool), String> {
        if let Some(logs) = stdout.parent() {
            #[allow(
                clippy::disallowed_methods,
                reason = "the verify's logs, swarm's own directory"
            )]
            std::fs::create_dir_all(logs).map_err(|e| format!("create {}: {e}", logs.display()))?;
        }
        let tmp = self.tmp_path();
        // Handed to the sandbox's identity when swarm runs as root, with a
        // git configuration that trusts the checkout (which stays root's).
        let owned = self.sandbox.is_some() && swarm_sandbox::worker_identity().is_some();
        let me = std::sync::Arc::clone(self);
        let (admin, caches) = tokio::task::spawn_blocking(move || {
            fresh_tmp(&me.tmp_path(), owned)?;
            let seed = me.base.as_deref().filter(|b| b.built.initialized());
            let (caches, kept) = match (source, me.base.as_deref()) {
                (Source::Base, Some(base)) => base.caches.ready(&me.repo, commit)?,
                (Source::Base, None) => return Err("build no base cache: the run has none".into()),
                (Source::Commit, _) => {
                    me.caches
                        .ready_from(&me.repo, commit, seed.map(|b| &b.caches))?
                }
            };
            tracing::debug!(%commit, kept, "the run-wide verify's build caches");
            let admin = me.check_out(commit).map_err(|e| e.to_string())?;
            Ok::<_, String>((admin, caches))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|made| made)?;
        let mut env = vec![
            ("SWARM_RUN".to_string(), self.run.clone()),
            ("SWARM_VERIFY_COMMIT".into(), commit.to_string()),
            ("TMPDIR".into(), tmp.display().to_string()),
        ];
        let cache_env = caches
            .iter()
            .map(|(var, dir)| (var.clone(), dir.display().to_string()));
        let sandbox = match &self.sandbox {
            None => {
                // A read-only checkout holds no build output: cargo's goes
                // to the verify's own cache. HOME is the user's, as for
                // every unconfined command.
                env.extend(cache_env);
                None
            }
            Some(settings) => {
                // Git commands see the checkout's own record, not the
                // repository's configuration or refs (as a task does).
                let view_dir = crate::layout::git_view(&self.run_dir, &self.name);
                let views = write_view(&self.repo, &view_dir, &admin).map_err(|e| e.to_string())?;
                let mut read_write = vec![tmp.clone()];
                read_write.extend(caches.iter().map(|(_, d)| d.clone()));
                let mut read_only = self.read_paths.clone();
                read_only.push(self.checkout.clone());
                env.extend(settings.env.iter().cloned());
                env.extend(cache_env);
                env.push(("HOME".into(), tmp.display().to_string()));
                let mut policy = Policy::for_worker(read_write, read_only);
                policy.views = views;
                policy.network = Network::None;
                Some(Sandboxed {
                    launcher: settings.launcher.clone(),
                    policy,
                })
            }
        };
        Ok((
            CommandSpec {
                script: self.command.clone(),
                program: None,
                pass_fds: Vec::new(),
                inherit_env: true,
                env_remove: self.secret_vars.clone(),
                cgroups: Vec::new(),
                cgroup_procs: None,
                cwd: self.checkout.clone(),
                env,
                stdout,
                stderr,
                deadline: Some(tokio::time::Instant::now() + self.timeout),
                grace: self.grace,
                max_output: crate::plan::DEFAULT_MAX_OUTPUT,
                // A commit's checkout: no file of the person's is in it.
                redact: None,
                sandbox,
                unconfined: self.unconfined.clone(),
                deck: Default::default(),
                stall: None,
            },
            owned,
        ))
    }

    /// Where the commit is checked out: the directory the verify's output
    /// names its files under.
    pub(super) fn checkout(&self) -> &Path {
        &self.checkout
    }

    /// Its HOME and TMPDIR.
    fn tmp_path(&self) -> PathBuf {
        crate::layout::task_tmp(&self.run_dir, &self.name)
    }
}

/// The verify's build caches: one for each of the tasks' caches (when the
/// run is sandboxed and keeps them), and always a cargo target directory,
/// so that cargo never writes into the read-only checkout.
fn caches(
    prepared: &Prepared,
    home: &WorktreeHome,
    name: &str,
) -> Result<lineage::Caches, RunError> {
    let (tools, shared) = tools(prepared);
    if shared && name == NAME {
        // What verifies used before their caches were their own: a cargo
        // target directory among the tasks' (`<tool>/@verify`).
        for c in prepared.options.caches.iter().filter(|c| c.per_task) {
            let old = home.path().join(".cache").join(&c.name).join(NAME);
            if let Err(e) = crate::untrusted::TaskDir::discard(&old) {
                tracing::warn!(error = %e, "failed to remove the run-wide verify's old build cache");
            }
        }
    }
    lineage::Caches::new(
        (prepared.options.sandbox.is_some(), &prepared.run_dir()),
        home,
        (name, "the run-wide verify"),
        tools,
        shared,
    )
}

/// The verify's tools' caches, `(variable, directory name)`, and whether
/// they are kept for the repository's next run (the run is sandboxed and
/// keeps its caches).
fn tools(prepared: &Prepared) -> (Vec<(String, String)>, bool) {
    let kept: Vec<(String, String)> = match prepared.options.sandbox.is_some() {
        true => prepared
            .options
            .caches
            .iter()
            .map(|c| (c.var.clone(), c.name.clone()))
            .collect(),
        false => Vec::new(),
    };
    let mut tools = kept.clone();
    if !tools.iter().any(|(var, _)| var == "CARGO_TARGET_DIR") {
        tools.push(("CARGO_TARGET_DIR".into(), CARGO_TARGET.into()));
    }
    (tools, !kept.is_empty())
}

/// Which caches a run of the verify gets.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The slot's own, or a copy of the base cache where they cannot be
    /// kept (a verify of one of the run's commits).
    Commit,
    /// The base cache itself (the verify of the run's base that builds it).
    Base,
}

impl Runner {
    /// Moves the checkout to `commit` (made the first time, or again if
    /// moving it fails); returns its record.
    fn check_out(&self, commit: Oid) -> Result<PathBuf, GitError> {
        let mut admin = self
            .admin
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // git never moves a checkout holding tasks' files (their
        // `.gitattributes` and `.lfsconfig`) where its checkout could run
        // a filter driver: it is made again (see `git::worktree`).
        let movable = self.checkout.exists() && !self.worktrees.may_run_filters(commit);
        if let Some(record) = admin.as_ref().filter(|_| movable) {
            match self.move_to(record, commit) {
                Ok(()) => return Ok(record.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, "failed to move the run-wide verify's checkout; making it again")
                }
            }
        }
        if admin.is_none() && movable && self.lease.is_some() {
            // The kept checkout, first used in this run: brought to the
            // commit by git (unchanged files keep their times), and
            // whatever is not the commit's goes, ignored files too (an
            // unconfined verify of an earlier run could write there).
            let kept = self
                .worktrees
                .bring_to(&self.checkout, commit)
                .and_then(|record| match record {
                    Some(record) => self
                        .worktrees
                        .clean_all(&self.checkout, &record)
                        .map(|()| Some(record)),
                    None => Ok(None),
                });
            match kept {
                Ok(Some(record)) => {
                    *admin = Some(record.clone());
                    return Ok(record);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "failed to move the run-wide verify's kept checkout; making it again")
                }
            }
        }
        let record = self.worktrees.create(&self.checkout, commit, &[])?;
        *admin = Some(record.clone());
        Ok(record)
    }

    fn move_to(&self, record: &Path, commit: Oid) -> Result<(), GitError> {
        // An unconfined verify could have pointed `.git` elsewhere (a
        // sandboxed one sees the checkout read-only).
        Worktrees::restore_link(&self.checkout, record)?;
        let action = || format!("check out {commit} in {}", self.checkout.display());
        let mut reset = self.repo.git(&self.checkout);
        reset
            .args(["reset", "--hard", "--quiet"])
            .arg(commit.to_string());
        run_git(reset, action)?;
        if self.sandbox.is_none() {
            // Unconfined, it could write there: what it left goes.
            let mut clean = self.repo.git(&self.checkout);
            clean.args(["clean", "-ffdxq"]);
            run_git(clean, action)?;
        }
        Ok(())
    }

    /// Removes the run's own checkout and caches (the run is over); the
    /// kept checkout stays for the next run.
    pub(super) async fn close(self: std::sync::Arc<Self>) {
        let me = std::sync::Arc::clone(&self);
        if let Err(e) = tokio::task::spawn_blocking(move || me.caches.close()).await {
            tracing::warn!(error = %e, "failed to remove the run-wide verify's caches");
        }
        if self.lease.is_some() {
            return;
        }
        let record = self
            .admin
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(record) = record else {
            return;
        };
        let removed = blocking(move || self.worktrees.remove(&self.checkout, Some(&record))).await;
        if let Err(e) = removed {
            tracing::warn!(error = %e, "failed to remove the run-wide verify's checkout");
        }
    }
}

/// Makes the verify's HOME and TMPDIR at `path` anew, empty (whatever an
/// earlier verify's code left there goes, links and all, never followed):
/// `owned`, with a git configuration that trusts the checkout and handed
/// to the sandbox's identity.
fn fresh_tmp(path: &Path, owned: bool) -> Result<(), String> {
    let made = match crate::untrusted::TaskDir::fresh(path, 0o700) {
        // The run's `tmp/` itself is missing: swarm's own, made, then
        // tried again.
        Err(e) if e.is_missing() => {
            if let Some(parent) = path.parent() {
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the run's own tmp/, swarm's: no task writes there"
                )]
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("create {}: {e}", parent.display()))?;
            }
            crate::untrusted::TaskDir::fresh(path, 0o700)
        }
        made => made,
    };
    let home = made.map_err(|e| format!("make {e}"))?;
    if owned {
        crate::run::local::worker_files::trust_checkouts(&home)
            .map_err(|e| format!("write {e}"))?;
        swarm_sandbox::ownership::hand_over(home.path(), swarm_sandbox::SANDBOX_IDENTITY)
            .map_err(|e| format!("failed to {e}"))?;
    }
    Ok(())
}

/// The last lines of a failed run's output: its stderr, else its stdout.
#[allow(
    clippy::disallowed_methods,
    reason = "the verify's logs, swarm's own files"
)]
pub(in crate::run) fn tail(stderr: &Path, stdout: &Path) -> Option<String> {
    [stderr, stdout].into_iter().find_map(|path| {
        let bytes = std::fs::read(path).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_end();
        if text.is_empty() {
            return None;
        }
        let start = text.ceil_char_boundary(text.len().saturating_sub(TAIL_BYTES));
        // From a line's start, unless one line is longer than the tail.
        let cut = &text[start..];
        let cut = match (start > 0, cut.find('\n')) {
            (true, Some(n)) if n + 1 < cut.len() => &cut[n + 1..],
            _ => cut,
        };
        Some(cut.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn the_tail_is_the_end_of_stderr_else_stdout_from_a_line_start() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        std::fs::write(&out, "test a ... ok\ntest b ... FAILED\n")?;
        std::fs::write(&err, "")?;
        assert_eq!(
            tail(&err, &out).as_deref(),
            Some("test a ... ok\ntest b ... FAILED")
        );
        let long: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&err, &long)?;
        let t = tail(&err, &out).unwrap_or_default();
        assert!(t.len() <= super::TAIL_BYTES, "{}", t.len());
        assert!(t.starts_with("line "), "{t}");
        assert!(t.ends_with("line 999"), "{t}");
        Ok(())
    }
}
