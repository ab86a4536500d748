//! A kept `[setup]`'s directories shown to a worktree's sandboxed
//! commands as overlays rather than copied into it.
//!
//! A kept setup's `node_modules` (or `.venv`) is tens of thousands of
//! files: a copy per worktree, and a comparison of every file for a warm
//! one, cost most of a small task's start, and N worktrees held N copies.
//! Where the run's launcher can show an overlay (its namespace layer, a
//! kernel that mounts overlays in a user namespace), each top-level
//! directory of the kept setup that git ignores in the worktree and that
//! holds no tracked file is instead shown to the worktree's commands (the
//! task, its verify and score, `[cleanup]`) at its place as an overlay
//! ([`swarm_sandbox::Overlay`]): the kept files are the lower layer, never
//! written, and whatever a command writes, changes or removes there goes
//! to an upper layer of that worktree's own (`tmp/<task>.layers`, made anew
//! for each attempt). So no task sees another's changes, nor changes the
//! kept setup, and the worktree on disk holds an empty directory there.
//! Everything else of the setup (a file it generated, a tracked file it
//! changed) is copied as before, and so is everything when the launcher
//! cannot show overlays (unconfined runs, `sandbox = "none"`, a kernel
//! without them): the choice is made once a run, by showing one.
//!
//! An ignored directory only: what a task writes there is in no result
//! either way (snapshots leave ignored files out), so a layer the
//! coordinator does not see loses nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use swarm_sandbox::{Exit, Overlay, Policy, SpawnRequest};
use tokio::sync::OnceCell;

use crate::git::{Repo, run_git};
use crate::untrusted::TaskDir;
use crate::worktree_home::SetupHold;

// The kept files of a setup, below its key's directory.
use super::prepare_files::FILES;

/// Written in a kept setup's directory (`<HANDED>.<name>`) once its
/// directory `name` is the sandbox identity's (as root): handed over
/// once, not per worktree.
const HANDED: &str = ".layers-owned";

/// The overlays of a run's worktrees.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    /// Whether the run's launcher shows overlays (asked once).
    works: OnceCell<bool>,
    /// By worktree: what its commands are shown.
    shown: std::sync::Mutex<HashMap<PathBuf, Vec<Overlay>>>,
    /// By kept setup: the hold on it (`worktree_home::hold_setup`,
    /// shared), taken when a worktree is first shown it and kept for the
    /// run: no run removes a setup this one's tasks are shown (an older
    /// one of its family, `swarm clean --warm`). One descriptor a kept
    /// setup, however many worktrees are shown it.
    holds: std::sync::Mutex<HashMap<PathBuf, nix::fcntl::Flock<std::fs::File>>>,
}

impl Layers {
    /// The overlays the commands in `workdir` are shown.
    pub(crate) fn of(&self, workdir: &Path) -> Vec<Overlay> {
        self.shown
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(workdir)
            .cloned()
            .unwrap_or_default()
    }

    /// Shows `workdir`'s commands none (its setup is copied, or made).
    pub(crate) fn forget(&self, workdir: &Path) {
        self.shown
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(workdir);
    }

    /// Whether the run's launcher shows overlays: asked once, by showing
    /// one to a command in `scratch` (a directory of swarm's, removed
    /// after).
    pub(crate) async fn available(
        &self,
        launcher: Option<&swarm_sandbox::Launcher>,
        scratch: &Path,
    ) -> bool {
        let Some(launcher) = launcher.filter(|l| l.degraded().is_none()) else {
            return false;
        };
        *self
            .works
            .get_or_init(|| async {
                let works = probe(launcher, scratch).await;
                if let Err(e) = TaskDir::discard(scratch) {
                    tracing::warn!(error = %e, "failed to remove the overlay probe's directory");
                }
                match &works {
                    Ok(()) => tracing::debug!("kept setups are shown as overlays"),
                    Err(e) => {
                        tracing::info!(reason = %e, "kept setups are copied: the sandbox shows no overlay")
                    }
                }
                works.is_ok()
            })
            .await
    }

    /// Readies the overlays of the setup kept at `kept` for the worktree
    /// at `workdir` (git directory `admin`), its upper layers in `layers`
    /// (made anew): returns the top-level names shown, which the copy
    /// leaves out. Nothing is shown if anything on the way fails (the
    /// copy then brings everything).
    pub(crate) fn show(
        &self,
        repo: &Repo,
        kept: &Path,
        (workdir, admin): (&Path, &Path),
        layers: &Path,
    ) -> Result<Vec<String>, String> {
        self.forget(workdir);
        self.hold(kept)?;
        let files = kept.join(FILES);
        let names = candidates(repo, &files, workdir, admin)?;
        if names.is_empty() {
            return Ok(names);
        }
        let owner = swarm_sandbox::worker_identity();
        hand_over_once(kept, &names, owner)?;
        let root = TaskDir::fresh(layers, 0o700).map_err(|e| format!("make {e}"))?;
        let worktree = TaskDir::open(workdir).map_err(|e| format!("open {e}"))?;
        let mut overlays = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let layer = root
                .make_dir(&i.to_string(), 0o700)
                .map_err(|e| format!("make {e}"))?;
            for dir in ["upper", "work"] {
                let made = layer
                    .make_dir(dir, 0o755)
                    .map_err(|e| format!("make {e}"))?;
                if let Some(owner) = owner {
                    made.hand_to(owner).map_err(|e| format!("hand over {e}"))?;
                }
            }
            // Its place in the worktree: an empty directory (a copy an
            // earlier run left there goes).
            worktree.remove(name).map_err(|e| format!("empty {e}"))?;
            worktree
                .make_dir(name, 0o755)
                .map_err(|e| format!("make {e}"))?;
            overlays.push(Overlay {
                target: workdir.join(name),
                lower: files.join(name),
                upper: layer.join("upper"),
                work: layer.join("work"),
            });
        }
        self.shown
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(workdir.to_path_buf(), overlays);
        Ok(names)
    }

    /// Holds the setup kept at `kept` for the run (see `holds`), if this
    /// run does not already.
    fn hold(&self, kept: &Path) -> Result<(), String> {
        let mut holds = self
            .holds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if holds.contains_key(kept) {
            return Ok(());
        }
        match crate::worktree_home::hold_setup(kept, SetupHold::Shared) {
            Ok(Some(held)) => {
                holds.insert(kept.to_path_buf(), held);
                Ok(())
            }
            Ok(None) => Err("hold the kept setup: it is being removed".into()),
            Err(e) => Err(format!("hold the kept setup {}: {e}", kept.display())),
        }
    }
}

impl Layers {
    /// The directories shown to `workdir` (git directory `admin`) that
    /// git no longer ignores there, or that now hold a tracked file: the
    /// task changed what is ignored, and what it wrote there (in its
    /// layer, which no snapshot sees) would be missing from its result.
    pub(crate) fn no_longer_ignored(
        &self,
        repo: &Repo,
        workdir: &Path,
        admin: &Path,
    ) -> Result<Vec<String>, String> {
        let shown: Vec<String> = self
            .of(workdir)
            .iter()
            .filter_map(|o| Some(o.target.file_name()?.to_str()?.to_string()))
            .collect();
        if shown.is_empty() {
            return Ok(shown);
        }
        let still = ignored(repo, workdir, admin, shown.clone())?;
        Ok(shown.into_iter().filter(|s| !still.contains(s)).collect())
    }
}

/// The top-level directories of the kept files `files` that git ignores
/// in the worktree at `workdir` and that hold no tracked file. Whatever
/// is in the worktree where the kept setup has such a directory and is
/// not one (a link a task left, a file) is removed first, as what it is
/// (as the copy would): git asks nothing beyond a link.
fn candidates(
    repo: &Repo,
    files: &Path,
    workdir: &Path,
    admin: &Path,
) -> Result<Vec<String>, String> {
    use crate::untrusted::EntryKind;
    let kept = TaskDir::open(files).map_err(|e| format!("open {e}"))?;
    let dirs: Vec<String> = kept
        .names()
        .map_err(|e| format!("list {e}"))?
        .into_iter()
        .filter(|name| {
            matches!(kept.kind(name), Ok(Some(EntryKind::Dir))) && !name.contains([',', ':', '\\'])
        })
        .collect();
    let worktree = TaskDir::open(workdir).map_err(|e| format!("open {e}"))?;
    for name in &dirs {
        if matches!(worktree.kind(name), Ok(Some(kind)) if kind != EntryKind::Dir) {
            worktree.remove(name).map_err(|e| format!("remove {e}"))?;
        }
    }
    ignored(repo, workdir, admin, dirs)
}

/// Of the top-level directories `dirs`, those git ignores in the worktree
/// at `workdir` (git directory `admin`) and that hold no tracked file.
fn ignored(
    repo: &Repo,
    workdir: &Path,
    admin: &Path,
    dirs: Vec<String>,
) -> Result<Vec<String>, String> {
    if dirs.is_empty() {
        return Ok(dirs);
    }
    let git = |args: &[&str]| {
        let mut cmd = repo.git(workdir);
        cmd.arg(format!("--git-dir={}", admin.display()))
            .arg(format!("--work-tree={}", workdir.display()))
            .args(args);
        cmd
    };
    let action = || format!("ask git what it ignores in {}", workdir.display());
    // `check-ignore` names those it ignores (and exits 1 when it ignores
    // none of them).
    let mut ask = git(&["check-ignore", "--"]);
    ask.args(dirs.iter().map(|d| format!("{d}/")));
    let ignored = match ask.output() {
        Ok(out) if out.status.success() || out.status.code() == Some(1) => out.stdout,
        Ok(out) => {
            return Err(format!(
                "{}: {}",
                action(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Err(e) => return Err(format!("{}: {e}", action())),
    };
    let ignored = String::from_utf8_lossy(&ignored);
    let mut out = Vec::new();
    for dir in dirs {
        if !ignored
            .lines()
            .any(|l| l.trim_end_matches('/') == dir.as_str())
        {
            continue;
        }
        let mut tracked = git(&["ls-files", "-z", "--"]);
        tracked.arg(&dir);
        if run_git(tracked, action)
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            out.push(dir);
        }
    }
    Ok(out)
}

/// Hands the kept directories `names` to the sandbox's identity (as
/// root), once for the kept setup: a copy-up in the overlay keeps the
/// lower file's owner, and the task must be able to change its copy.
/// No task reaches the kept files but through an overlay.
fn hand_over_once(kept: &Path, names: &[String], owner: Option<(u32, u32)>) -> Result<(), String> {
    let Some(owner) = owner else {
        return Ok(());
    };
    let dir = TaskDir::open(kept).map_err(|e| format!("open {e}"))?;
    for name in names {
        let marker = format!("{HANDED}.{name}");
        if matches!(dir.kind(&marker), Ok(Some(_))) {
            continue;
        }
        swarm_sandbox::ownership::hand_over(&kept.join(FILES).join(name), owner)
            .map_err(|e| format!("failed to {e}"))?;
        dir.write_new(&marker, b"", 0o600)
            .map_err(|e| format!("write {e}"))?;
    }
    Ok(())
}

/// Shows a command an overlay in `scratch` (made anew; a directory of
/// swarm's) and checks what it did: it reads the lower layer, its write
/// lands in the upper one. `swarm doctor` asks it too.
pub(crate) async fn probe(
    launcher: &swarm_sandbox::Launcher,
    scratch: &Path,
) -> Result<(), String> {
    let root = TaskDir::fresh(scratch, 0o700).map_err(|e| format!("make {e}"))?;
    let owner = swarm_sandbox::worker_identity();
    let made = |rel: &str| -> Result<PathBuf, String> {
        let dir = root.make_dir(rel, 0o755).map_err(|e| format!("make {e}"))?;
        if let Some(owner) = owner {
            dir.hand_to(owner).map_err(|e| format!("hand over {e}"))?;
        }
        Ok(dir.path().to_path_buf())
    };
    let (lower, wt) = (made("lower")?, made("wt")?);
    made("wt/m")?;
    made("layers")?;
    let (upper, work) = (made("layers/upper")?, made("layers/work")?);
    root.write_new("lower/seen", b"", 0o644)
        .map_err(|e| format!("write {e}"))?;
    #[allow(
        clippy::disallowed_methods,
        reason = "/dev/null, the system's: no task writes there"
    )]
    let null = || -> Result<std::os::fd::OwnedFd, String> {
        Ok(std::fs::File::open("/dev/null")
            .map_err(|e| format!("open /dev/null: {e}"))?
            .into())
    };
    let mut policy = Policy::for_worker(vec![wt.clone()], Vec::new());
    policy.overlays = vec![Overlay {
        target: wt.join("m"),
        lower,
        upper,
        work,
    }];
    let request = SpawnRequest {
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            "test -e m/seen && : > m/made".into(),
        ],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: wt,
        policy,
        after: None,
        started: None,
        stdin: null()?,
        stdout: null()?,
        stderr: null()?,
    };
    let mut spawned = launcher
        .spawn(request)
        .await
        .map_err(|e| format!("start a command: {e}"))?;
    match spawned.wait().await {
        Exit::Exited(0) => {}
        other => return Err(format!("the command shown an overlay ended {other:?}")),
    }
    match (root.kind("layers/upper/made"), root.kind("lower/made")) {
        (Ok(Some(_)), Ok(None)) => Ok(()),
        _ => Err("the command's write did not land in its own layer".into()),
    }
}
