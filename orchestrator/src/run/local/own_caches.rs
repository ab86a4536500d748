//! A task's build caches: its own ones (`<cache>/<task>`: the cargo
//! target directory) kept from one run to the next for a later attempt of
//! its lineage only, and the shared ones (npm's, pip's, go's) shared only
//! by tasks of equal rights.
//!
//! A shared cache is content-addressed, but what reads it does not always
//! check the content against something the task could not write: pip
//! installs a wheel it built from an sdist and cached, npm without a
//! lockfile takes the metadata it cached. A task without keys or network
//! (an agent a prompt in the repository steered, say) could leave there
//! what a task with them then runs. So each shared cache is one directory
//! per class of rights (`<cache>/@<rights>`, the hash of [`rights`]): a
//! task reads only what tasks that could reach what it reaches wrote.
//! Tasks of one plan mostly have the same rights, and share one.
//!
//! What a task leaves in its own build cache, a later run of a task of the
//! same id builds on: cargo takes a test binary there as fresh when its
//! fingerprint says so, and runs it with that task's network and keys. A
//! warm worktree's state goes only to a task of its lineage
//! ([`crate::run::warm::Lineage`]: a base that is the last attempt's or
//! descends from it, the same rights); a task's own cache follows the same
//! rule, warm or not (a read-only task never is, and a task whose warm
//! worktree is busy gets a fresh worktree but the same cache). So for each
//! such cache swarm keeps a record, in a directory of its own that no task
//! is shown (`<home>/.cache/@lineage/<tool>/<task>`): the lineage of the
//! last attempt that used it, written before that attempt's `[setup]`
//! starts (one cut short is recorded all the same). An attempt of another
//! lineage, or one that finds no record (a cache an older swarm kept),
//! empties the cache first. The lineage is the planned task's, for its
//! `[setup]` and `[cleanup]` too, which run in its worktree with no more
//! than its rights.
//!
//! The record is also a lock (`flock`), held while the task's attempt
//! lasts: another run's attempt of the same task id, of any lineage, gets
//! an empty cache of its own in its run's tmp for that attempt, as it gets
//! a fresh worktree beside a warm one another run holds; so does an
//! attempt whose cache cannot be emptied. The record is written without
//! `fsync` (a run of a thousand tasks at a new base would pay one each): a
//! crash of the machine leaves the old record or an empty one, which
//! empties the cache.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use git2::Oid;
use nix::fcntl::{Flock, FlockArg};

use super::ctx::{Cache, Ctx};
use super::worker_files::owned_cache_dir;
use crate::plan::Task;
use crate::run::warm::Lineage;
use crate::untrusted::TaskDir;

/// The longest record read (two lines: a commit id, a hash).
const RECORD_LIMIT: u64 = 256;

/// The lineage of `task`'s attempts at `base` (see [`Lineage`]): the run's
/// base where it is known (the commit the person ran the plan at: a task
/// with dependencies starts from a merge of their results made anew every
/// run, which no later run's descends from; what those results ran in it
/// had its rights, as they do again), else `base`; and what it may reach
/// beyond its worktree ([`rights`]).
pub(super) fn lineage(ctx: &Ctx, task: &Task, base: Oid) -> Lineage {
    Lineage {
        base: ctx.run_base.unwrap_or(base),
        rights: rights(task, &ctx.read_paths, ctx.sandbox.is_some()),
    }
}

/// What `task` may reach beyond its worktree, as one hash: its network,
/// its variables, its kind, the paths the run lets its tasks read (the
/// plan's `read_paths`, the toolchains), and whether the run is sandboxed.
fn rights(task: &Task, read_paths: &[PathBuf], sandboxed: bool) -> String {
    let network = format!("{:?}", task.network);
    let env: Vec<String> = task.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let kind = format!("{:?}", task.kind());
    let mut reads: Vec<String> = read_paths.iter().map(|p| p.display().to_string()).collect();
    reads.sort();
    Lineage::rights(&[
        &network,
        &env.join("\n"),
        &kind,
        &reads.join("\n"),
        &sandboxed.to_string(),
    ])
}

/// A task's own build caches readied for an attempt ([`ready`]): their
/// records locked while it lasts, and their directories said in
/// `ctx.own_caches` for the attempt's `[setup]`, the task and its
/// `[cleanup]` ([`task_caches`]), until it is dropped.
#[derive(Debug)]
pub(super) struct Held {
    ctx: Arc<Ctx>,
    id: String,
    /// Which readying of the task's caches its entry in `ctx.own_caches`
    /// is: a later one's is never removed by this one's end.
    token: u64,
    _records: Vec<Flock<File>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.ctx
            .own_caches
            .remove_if(&self.id, |_, (token, _)| *token == self.token);
    }
}

/// The next [`Held::token`].
static TOKENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Readies the task's build caches for an attempt of `task` (as planned)
/// of lineage `now` ([`lineage`]). Its own ones: each kept if the attempt
/// that last used it was of this one's lineage, else emptied, then
/// recorded as this one's; or, if another run's attempt holds it or it
/// cannot be emptied, an empty one of the attempt's own. The shared ones:
/// the directory of its class of rights ([`class_dir`]). `None` when the run
/// gives tasks no caches.
pub(super) async fn ready(ctx: &Arc<Ctx>, task: &Task, now: Lineage) -> Option<Held> {
    if ctx.caches.is_empty() {
        return None;
    }
    let flat = crate::ids::flat(&task.id).into_owned();
    let owner = swarm_sandbox::worker_identity();
    let mut dirs = Vec::with_capacity(ctx.caches.len());
    let mut held = Vec::new();
    for cache in &ctx.caches {
        let Some(records) = cache.records.as_deref() else {
            match class_dir(ctx, cache, &now, owner) {
                Ok(dir) => dirs.push((cache.var.clone(), dir)),
                Err(e) => {
                    tracing::warn!(task = %task.id, cache = %cache.var, error = %e, "failed to make the build cache of its rights");
                }
            }
            continue;
        };
        let dir = match ready_one(ctx, (cache, records), &flat, &now, owner).await {
            Ok((dir, record)) => {
                held.push(record);
                dir
            }
            Err(why) => {
                tracing::info!(task = %task.id, cache = %cache.var, %why, "this attempt builds in an empty cache of its own");
                match private(ctx, cache, &flat, owner) {
                    Ok(dir) => dir,
                    Err(e) => {
                        tracing::warn!(task = %task.id, error = %e, "failed to make a build cache of the attempt's own");
                        continue;
                    }
                }
            }
        };
        dirs.push((cache.var.clone(), dir));
    }
    let token = TOKENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ctx.own_caches.insert(task.id.clone(), (token, dirs));
    Some(Held {
        ctx: Arc::clone(ctx),
        id: task.id.clone(),
        token,
        _records: held,
    })
}

/// The directories of `ctx`'s caches that `task` uses, as [`ready`]
/// readied them for the attempt: its own ones, and the shared ones of its
/// class of rights.
pub(super) fn task_caches(ctx: &Ctx, task: &Task) -> Result<Vec<(String, PathBuf)>, String> {
    let own = ctx.own_caches.get(&task.id);
    ctx.caches
        .iter()
        .map(|cache| {
            own.as_ref()
                .and_then(|own| own.1.iter().find(|(var, _)| *var == cache.var).cloned())
                .ok_or_else(|| {
                    format!(
                        "ready the build cache {} of task `{}` (see the warning above)",
                        cache.var, task.id
                    )
                })
        })
        .collect()
}

/// The directory, in the shared cache `cache`, of the tasks whose rights
/// are `now`'s: `@` and the start of their hash (64 bits: no two classes
/// of one repository meet by chance), made (and handed to `owner`) the
/// first time a run needs it.
fn class_dir(
    ctx: &Ctx,
    cache: &Cache,
    now: &Lineage,
    owner: Option<(u32, u32)>,
) -> std::io::Result<PathBuf> {
    let class = format!("@{}", now.rights.get(..16).unwrap_or(&now.rights));
    let key = (cache.var.clone(), class);
    if let Some(dir) = ctx.class_dirs.get(&key) {
        return Ok(dir.clone());
    }
    let dir = owned_cache_dir(&cache.dir, &key.1, owner)?;
    ctx.class_dirs.insert(key, dir.clone());
    Ok(dir)
}

/// [`ready`] for one cache, whose records are in `records`: its directory
/// and its record, locked.
async fn ready_one(
    ctx: &Arc<Ctx>,
    (cache, records): (&Cache, &Path),
    flat: &str,
    now: &Lineage,
    owner: Option<(u32, u32)>,
) -> Result<(PathBuf, Flock<File>), String> {
    let mut record =
        take(&records.join(flat))?.ok_or("another run's attempt of the task holds it")?;
    // The common case (the same base, the same task) reads a few bytes on
    // the coordinator's thread; a git walk or an emptying goes off it.
    if said(&mut record).as_ref() != Some(now) {
        let (ctx, dir, now) = (Arc::clone(ctx), cache.dir.join(flat), now.clone());
        record = tokio::task::spawn_blocking(move || {
            renew(&mut record, &dir, &now, |from| {
                ctx.worktrees.descends(now.base, from)
            })
            .map(|()| record)
        })
        .await
        .map_err(|e| e.to_string())??;
    }
    let dir = owned_cache_dir(&cache.dir, flat, owner)
        .map_err(|e| format!("make {}: {e}", cache.dir.join(flat).display()))?;
    Ok((dir, record))
}

/// The record at `path`, locked for this attempt alone; `None` if another
/// holds it. A link there (swarm's directory: none it made) is removed.
fn take(path: &Path) -> Result<Option<Flock<File>>, String> {
    let opened = match crate::untrusted::lock_file(path) {
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(format!("open {}: {e}", path.display()));
            };
            TaskDir::open(dir)
                .and_then(|dir| dir.remove(&name.to_string_lossy()))
                .map_err(|e| format!("remove {e}"))?;
            crate::untrusted::lock_file(path)
        }
        opened => opened,
    };
    let file = opened.map_err(|e| format!("open {}: {e}", path.display()))?;
    crate::untrusted::try_lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|e| format!("lock {}: {e}", path.display()))
}

/// The lineage `record` says, if it says one.
fn said(record: &mut File) -> Option<Lineage> {
    let mut text = String::new();
    record.rewind().ok()?;
    record.take(RECORD_LIMIT).read_to_string(&mut text).ok()?;
    Lineage::from_text(&text)
}

/// Readies the cache `dir` for an attempt of lineage `now`: kept if
/// `record` names the same rights and a base `now`'s descends from
/// (`descends`), else emptied; then recorded as `now`'s. No record while
/// it changes hands: cut short, the next attempt empties it.
fn renew(
    record: &mut File,
    dir: &Path,
    now: &Lineage,
    descends: impl Fn(Oid) -> bool,
) -> Result<(), String> {
    let keep = said(record).is_some_and(|b| b.rights == now.rights && descends(b.base));
    write(record, "")?;
    if !keep {
        TaskDir::discard(dir).map_err(|e| format!("empty {e}"))?;
    }
    write(record, &now.text())
}

fn write(record: &mut File, text: &str) -> Result<(), String> {
    record
        .set_len(0)
        .and_then(|()| record.rewind())
        .and_then(|()| record.write_all(text.as_bytes()))
        .map_err(|e| format!("write the record of a build cache: {e}"))
}

/// An empty cache of the attempt's own, for `cache`:
/// `<run>/tmp/<task>.caches/<tool>` (`layout::own_caches_tmp`), made anew
/// and handed to `owner`, never through a link.
fn private(
    ctx: &Ctx,
    cache: &Cache,
    flat: &str,
    owner: Option<(u32, u32)>,
) -> Result<PathBuf, String> {
    let tool = cache
        .dir
        .file_name()
        .map_or_else(|| cache.var.clone(), |n| n.to_string_lossy().into_owned());
    let tmp = ctx.run_dir.join(crate::layout::TMP);
    #[allow(
        clippy::disallowed_methods,
        reason = "the run's own tmp/, swarm's: only the tasks' tmps in it are theirs"
    )]
    std::fs::create_dir_all(&tmp).map_err(|e| format!("make {}: {e}", tmp.display()))?;
    let parent = TaskDir::open_or_make(&crate::layout::own_caches_tmp(&ctx.run_dir, flat), 0o755)
        .map_err(|e| format!("make {e}"))?;
    parent.remove(&tool).map_err(|e| format!("empty {e}"))?;
    let dir = parent
        .make_dir(&tool, 0o755)
        .map_err(|e| format!("make {e}"))?;
    if let Some(owner) = owner {
        dir.hand_to(owner).map_err(|e| format!("hand over {e}"))?;
    }
    Ok(dir.path().to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(c: char) -> Oid {
        Oid::from_str(&c.to_string().repeat(40)).unwrap()
    }

    fn plain(base: Oid) -> Lineage {
        Lineage {
            base,
            rights: "plain".into(),
        }
    }

    /// An attempt of `now` in the cache `dir` recorded in `record`:
    /// whether it found what the last one built.
    fn used(root: &Path, now: &Lineage, descends: bool) -> bool {
        let mut record = take(&root.join("records/t")).unwrap().unwrap();
        if said(&mut record).as_ref() != Some(now) {
            renew(&mut record, &root.join("cache/t"), now, |_| descends).unwrap();
        }
        let dir = owned_cache_dir(&root.join("cache"), "t", None).unwrap();
        let kept = dir.join("built").exists();
        std::fs::write(dir.join("built"), "x").unwrap();
        kept
    }

    fn root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for dir in ["records", "cache/t"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        root
    }

    #[test]
    /// A task's own cache is kept for a later attempt of its lineage (the
    /// same base, or one that descends from it, and the same rights), and
    /// emptied for any other, and where no record says whose it is.
    fn a_tasks_own_cache_goes_only_to_an_attempt_of_its_lineage() {
        let root = root();
        // An older swarm's cache: no record.
        std::fs::write(root.path().join("cache/t/built"), "old").unwrap();
        let keys = Lineage {
            base: oid('a'),
            rights: "keys".into(),
        };
        let seen = [
            used(root.path(), &plain(oid('a')), true),
            used(root.path(), &plain(oid('a')), false),
            used(root.path(), &plain(oid('b')), true),
            used(root.path(), &plain(oid('a')), false),
            used(root.path(), &keys, true),
            used(root.path(), &plain(oid('a')), true),
        ];
        assert_eq!(seen, [false, true, true, false, false, false]);
    }

    #[test]
    /// The record is swarm's: a link there is removed, never read or
    /// written through, and one that says nothing empties the cache.
    fn a_record_that_is_a_link_or_says_nothing_empties_the_cache() {
        let root = root();
        let now = plain(oid('a'));
        assert!(!used(root.path(), &now, true));
        let record = root.path().join("records/t");
        let elsewhere = root.path().join("elsewhere");
        std::fs::write(&elsewhere, now.text()).unwrap();
        std::fs::remove_file(&record).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &record).unwrap();
        assert!(!used(root.path(), &now, true));
        assert!(!record.is_symlink());
        std::fs::write(&record, "base nothing\n").unwrap();
        assert!(!used(root.path(), &now, true));
        assert!(used(root.path(), &now, true));
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), now.text());
    }

    #[test]
    /// A task that may read more (the plan's `read_paths`) is of another
    /// lineage than one that may not, as one with other variables or
    /// network is; the order the paths are given in does not count.
    fn what_a_task_may_read_is_part_of_its_rights() {
        let plan = crate::plan::parse(
            Path::new("/plans/p.toml"),
            "[[task]]\nid = \"t\"\nrun = \"true\"\n\n\
             [[task]]\nid = \"u\"\nenv = { X = \"1\" }\nrun = \"true\"\n"
                .to_string(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let (t, u) = (&plan.tasks[0], &plan.tasks[1]);
        let (a, b) = (PathBuf::from("/opt/a"), PathBuf::from("/opt/b"));
        let plain = rights(t, std::slice::from_ref(&a), true);
        assert_eq!(plain, rights(t, std::slice::from_ref(&a), true));
        assert_eq!(
            rights(t, &[a.clone(), b.clone()], true),
            rights(t, &[b.clone(), a.clone()], true)
        );
        for other in [
            rights(t, &[a.clone(), b.clone()], true),
            rights(t, &[], true),
            rights(t, std::slice::from_ref(&a), false),
            rights(u, std::slice::from_ref(&a), true),
        ] {
            assert_ne!(plain, other);
        }
    }

    #[test]
    /// One attempt at a time holds a task's own cache: another run's
    /// attempt of the same task id finds it taken.
    fn a_record_is_held_by_one_attempt_at_a_time() {
        let root = root();
        let first = take(&root.path().join("records/t")).unwrap();
        assert!(first.is_some());
        assert!(take(&root.path().join("records/t")).unwrap().is_none());
        drop(first);
        assert!(take(&root.path().join("records/t")).unwrap().is_some());
    }
}
