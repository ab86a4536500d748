//! Objects swarm writes are held from before any ref names them, so that
//! `git gc --prune=now` (or `gc --auto` after a pause longer than its grace
//! period) run beside a run never deletes them.
//!
//! git deletes an object that no ref, reflog, HEAD or index reached when
//! its prune looked; what it looked at may be older than a ref swarm has
//! just written, so ordering swarm's own writes cannot close the gap. What
//! git never deletes is an object in a pack with a `.keep` file beside it
//! (git-repack(1) leaves kept packs alone, git-prune(1) deletes loose
//! objects only): the mechanism git's own `index-pack --keep` uses for a
//! fetch whose refs are not written yet. So before a ref is moved to a
//! commit swarm made (a task's snapshot, a merge), the objects that commit
//! brings are written into a pack of their own whose `.keep` file exists
//! before the pack does, and whose pack is in place before its index (git
//! gc deletes an index it finds without its pack, and the keep with it).
//! Until then they live where no prune looks (see [`super::incoming`]).
//! An object that was not written there (libgit2 found it in the
//! repository, loose) and that a prune took before its packing makes the
//! packing fail, and the caller writes it again.
//!
//! The keep files name their run; the run releases them when it ends (its
//! refs hold everything then), and `swarm clean` releases those of a run
//! it removes. A released pack is an ordinary pack, for git's next gc.

#![allow(
    clippy::disallowed_methods,
    reason = "packs swarm writes into the repository's object database: tasks see objects read-only"
)]

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use super::incoming::{Incoming, Staging};
use super::{Context as _, GitError};

/// The first line of a keep file swarm writes for run `run`.
fn keep_line(run: &str) -> String {
    format!("swarm run {run}")
}

/// How often a snapshot or a merge whose objects a concurrent prune took
/// is made again before its error is given.
const HOLD_TRIES: u32 = 8;

/// `make` (a snapshot, a merge and its holding), done again while a
/// concurrent prune is what broke it ([`GitError::is_prune_race`]), up to
/// [`HOLD_TRIES`] times: done again, it writes what the prune took. The
/// pause between tries grows (10 ms, doubled, at most 1 s): a prune run
/// in a loop on a loaded machine breaks tries made back to back, and a
/// pause lets the next one fall between two prunes.
pub(crate) fn again_on_prune_race<T>(
    mut make: impl FnMut() -> Result<T, GitError>,
) -> Result<T, GitError> {
    let mut tries = 1;
    let mut pause = std::time::Duration::from_millis(10);
    loop {
        match make() {
            Err(e) if e.is_prune_race() && tries < HOLD_TRIES => {
                tracing::debug!(error = %e, tries, "an object went to a concurrent prune; made again");
                tries += 1;
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
            done => return done,
        }
    }
}

/// Above this size, a new object is packed by git's own `pack-objects`,
/// which streams it, rather than in memory.
pub(crate) const STREAM_ABOVE: u64 = 8 << 20;

/// Writes the objects commit `tip` brings that none of the commits `held`
/// (which refs already hold: a task's base, a merge's two sides) has at
/// the same path into a kept pack of `repo`, for run `run`: the commit,
/// and the trees and blobs that differ. Found by comparing trees, never by
/// walking history (a node's shallow view of the repository has none).
/// `largest` is the size of the largest new blob, if the caller knows it
/// (a snapshot does): above [`STREAM_ABOVE`], the pack is streamed
/// through git, never held in memory whole. `incoming`: the directory the
/// commit was written into, attached to `repo` (see [`super::incoming`]),
/// whose objects a streamed pack reads too; `None` when it was written
/// into `repo`'s own objects.
pub(crate) fn hold(
    repo: &Repository,
    incoming: Option<&Incoming>,
    tip: Oid,
    held: &[Oid],
    run: &str,
    largest: u64,
) -> Result<(), GitError> {
    if held.contains(&tip) {
        return Ok(());
    }
    let action = || format!("hold the objects of commit {tip}");
    let commit = repo.find_commit(tip).context(action)?;
    let tree = commit.tree().context(action)?;
    let mut olds = Vec::new();
    for &h in held {
        olds.push(repo.find_commit(h).and_then(|c| c.tree()).context(action)?);
    }
    let mut new = vec![tip];
    if !olds.iter().any(|old| old.id() == tree.id()) {
        new.push(tree.id());
        new_objects(repo, &tree, &olds, &mut new).context(action)?;
    }
    if largest > STREAM_ABOVE {
        let action = action();
        {
            let _writing = PACKS.read().unwrap_or_else(|e| e.into_inner());
            let alternate = incoming.map(Incoming::objects_dir);
            hold_streamed(repo.commondir(), alternate.as_deref(), &action, &new, run)?;
        }
        compact(repo.commondir(), run);
        return Ok(());
    }
    let mut builder = repo.packbuilder().context(action)?;
    for id in &new {
        builder.insert_object(*id, None).context(action)?;
    }
    let mut pack = git2::Buf::new();
    builder.write_buf(&mut pack).context(action)?;
    // libgit2 and git name a pack by its trailer, the SHA-1 of all before
    // it: known before the pack exists, so its keep file is written first.
    let trailer = pack
        .len()
        .checked_sub(20)
        .and_then(|at| pack.get(at..))
        .and_then(|sha| Oid::from_bytes(sha).ok())
        .ok_or_else(|| GitError::Cli {
            action: action(),
            message: "libgit2 wrote a pack without a trailer".into(),
        })?;
    let dir = repo.commondir().join("objects").join("pack");
    let keep = dir.join(format!("pack-{trailer}.keep"));
    // No merge of packs while this one is made: it would take the pack
    // away between its writing and the check below.
    let writing = PACKS.read().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(&dir).context(|| format!("create {}", dir.display()))?;
    std::fs::write(&keep, format!("{}\n", keep_line(run)))
        .context(|| format!("write {}", keep.display()))?;
    if let Err(e) = place(repo.commondir(), &dir, &pack, trailer, &action) {
        // Nothing of it is in place: the keep goes too.
        let _ = std::fs::remove_file(&keep);
        return Err(e);
    }
    drop(writing);
    compact(repo.commondir(), run);
    Ok(())
}

/// Indexes `pack` (named by `trailer`) in a directory of its own and
/// moves it into `dir`, the pack before its index, as git's `index-pack`
/// does. libgit2's own pack writer puts the index in place first: a
/// `git gc` that looks in that moment finds an index without its pack,
/// takes the pair for the leftovers of a failed write and deletes the
/// index and the keep file beside it (git-gc's "garbage" packs), and the
/// pack then arrives unkept and unreadable. A pack without its index is
/// one git neither reads nor deletes.
fn place(
    common_dir: &Path,
    dir: &Path,
    pack: &[u8],
    trailer: Oid,
    action: &dyn Fn() -> String,
) -> Result<(), GitError> {
    let staging = Staging::new(common_dir, "a new pack")?;
    let mut indexer = git2::Indexer::new(None, staging.path(), 0, false).context(action)?;
    std::io::Write::write_all(&mut indexer, pack).context(action)?;
    let name = indexer.commit().context(action)?;
    if name != trailer.to_string() {
        // Named otherwise by this libgit2: its keep would not match.
        // Said, not guessed at.
        return Err(GitError::Cli {
            action: action(),
            message: format!("libgit2 named the pack pack-{name}, not pack-{trailer}"),
        });
    }
    let moved = |ext: &str| {
        let file = format!("pack-{name}.{ext}");
        std::fs::rename(staging.path().join(&file), dir.join(&file))
            .context(|| format!("move {file} into {}", dir.display()))
    };
    moved("pack")?;
    moved("idx").inspect_err(|_| {
        let _ = std::fs::remove_file(dir.join(format!("pack-{name}.pack")));
    })
}

/// [`hold`] through git: `pack-objects` streams the new objects into
/// `index-pack --keep`, which writes the keep file before the pack is in
/// place (git-index-pack(1): "usually necessary with --stdin to prevent a
/// simultaneous git repack process from deleting the newly constructed
/// pack and index before refs can be updated").
/// Returns the new pack's name (its hash). `what` says what is held, for
/// errors ("hold the objects of commit ..."); `alternate`, a directory of
/// objects `pack-objects` reads too (an incoming directory).
fn hold_streamed(
    common_dir: &Path,
    alternate: Option<&Path>,
    what: &str,
    objects: &[Oid],
    run: &str,
) -> Result<String, GitError> {
    use std::process::Stdio;
    let action = || what.to_string();
    let git = |args: &[&str]| {
        let mut cmd = super::git_command(common_dir);
        cmd.arg("--git-dir")
            .arg(common_dir)
            .args(args)
            .stderr(Stdio::piped());
        cmd
    };
    let mut pack = git(&["pack-objects", "--stdout", "-q"]);
    if let Some(dir) = alternate {
        pack.env("GIT_ALTERNATE_OBJECT_DIRECTORIES", dir);
    }
    let mut pack = pack
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context(action)?;
    let mut revs = String::new();
    for id in objects {
        revs.push_str(&format!("{id}\n"));
    }
    let (Some(mut stdin), Some(stdout)) = (pack.stdin.take(), pack.stdout.take()) else {
        return Err(GitError::Cli {
            action: action(),
            message: "git pack-objects has no pipes".into(),
        });
    };
    let keep = format!("--keep={}", keep_line(run));
    let index = git(&["index-pack", "--stdin", &keep])
        .stdin(stdout)
        .stdout(Stdio::piped())
        .spawn()
        .context(action)?;
    std::io::Write::write_all(&mut stdin, revs.as_bytes()).context(action)?;
    drop(stdin);
    let indexed = index.wait_with_output().context(action)?;
    let packed = pack.wait_with_output().context(action)?;
    for (what, out) in [("pack-objects", &packed), ("index-pack", &indexed)] {
        if !out.status.success() {
            return Err(GitError::Cli {
                action: action(),
                message: format!(
                    "git {what}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
    }
    // `keep\t<hash>` (`pack\t<hash>` had it not been kept).
    let said = String::from_utf8_lossy(&indexed.stdout);
    Ok(said
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string())
}

/// How many kept packs a run may have before the smaller ones are merged
/// into one: every git process (a `git worktree add`, a checkout) opens
/// every pack's index, so a pack per snapshot and per merge would slow
/// every later task of a long run.
const COMPACT_AT: usize = 8;

/// Holds write packs under its read side, a merge of packs takes its
/// write side: a merge never takes away a pack being made and checked.
static PACKS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by the one thread of this process that merges packs; a hold that
/// finds it taken leaves the merging to that thread.
static COMPACTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Merges run `run`'s smaller kept packs into one kept pack once it has
/// [`COMPACT_AT`] or more, geometrically (as `git repack --geometric=2`
/// does): the smallest packs, for as long as the next is at most twice
/// all those taken, so that an object is written again a logarithmic
/// number of times over a run. The old packs go only once the new one,
/// kept, holds their objects; a failure leaves them as they were (said in
/// the log, never an error: what they hold is held either way).
fn compact(common_dir: &Path, run: &str) {
    // Counted first without a lock: most holds find too few packs.
    if keeps_of(common_dir, run).len() < COMPACT_AT {
        return;
    }
    let Ok(_turn) = COMPACTING.try_lock() else {
        return;
    };
    // Waits for the packs being made to be in place (a hold takes only a
    // moment), so that a busy run still merges its packs.
    let _merging = PACKS.write().unwrap_or_else(|e| e.into_inner());
    let mut packs: Vec<(PathBuf, Vec<Oid>)> = keeps_of(common_dir, run)
        .into_iter()
        .filter_map(|keep| {
            let stem = keep.with_extension("");
            let objects = read_idx(&stem.with_extension("idx"))?;
            // A keep whose pack is not in place yet is being written.
            stem.with_extension("pack")
                .exists()
                .then_some((stem, objects))
        })
        .collect();
    if packs.len() < COMPACT_AT {
        return;
    }
    packs.sort_by_key(|(_, objects)| objects.len());
    let mut taken = 0;
    let mut sum = 0;
    for (_, objects) in &packs {
        if taken >= 2 && objects.len() > 2 * sum {
            break;
        }
        sum += objects.len();
        taken += 1;
    }
    let chosen = packs.get(..taken).unwrap_or_default();
    let mut objects: Vec<Oid> = chosen.iter().flat_map(|(_, o)| o.iter().copied()).collect();
    objects.sort();
    objects.dedup();
    let what = format!("merge {taken} kept packs of run {run}");
    let new = match hold_streamed(common_dir, None, &what, &objects, run) {
        Ok(name) => name,
        Err(e) => {
            tracing::warn!(error = %e, "failed to merge kept packs");
            return;
        }
    };
    for (stem, _) in chosen {
        // The new pack may be one of them, byte for byte: then it stays.
        if stem
            .file_name()
            .is_some_and(|n| n.to_string_lossy() == format!("pack-{new}"))
        {
            continue;
        }
        // Its objects are in the new kept pack: the pack goes first, its
        // keep last.
        for ext in ["pack", "idx", "rev", "keep"] {
            let _ = std::fs::remove_file(stem.with_extension(ext));
        }
    }
}

/// The object names a version 2 pack index at `path` lists (`None` if it
/// is not one: swarm then leaves the pack alone).
fn read_idx(path: &Path) -> Option<Vec<Oid>> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(..8)? != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
        return None;
    }
    let count = u32::from_be_bytes(bytes.get(8 + 255 * 4..8 + 256 * 4)?.try_into().ok()?) as usize;
    let names = bytes.get(8 + 256 * 4..8 + 256 * 4 + count * 20)?;
    names.chunks(20).map(|n| Oid::from_bytes(n).ok()).collect()
}

/// Adds to `out` every tree and blob below `tree` that none of `olds` (the
/// held trees at the same path) has there; a new subtree is compared with
/// the held ones' subtrees of its name.
fn new_objects(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    olds: &[git2::Tree<'_>],
    out: &mut Vec<Oid>,
) -> Result<(), git2::Error> {
    for entry in tree.iter() {
        let name = entry.name_bytes();
        // Looked up by name (a binary search), not by walking the tree.
        let there: Vec<git2::TreeEntry<'_>> = olds
            .iter()
            .filter_map(|old| old.get_name_bytes(name))
            .collect();
        if there.iter().any(|e| e.id() == entry.id()) {
            continue;
        }
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                out.push(entry.id());
                let sub = repo.find_tree(entry.id())?;
                let mut old_subs = Vec::new();
                for e in &there {
                    if e.kind() == Some(git2::ObjectType::Tree) {
                        old_subs.push(repo.find_tree(e.id())?);
                    }
                }
                new_objects(repo, &sub, &old_subs, out)?;
            }
            Some(git2::ObjectType::Blob) => out.push(entry.id()),
            // A submodule's commit is not this repository's object.
            _ => {}
        }
    }
    Ok(())
}

/// The keep files swarm wrote for run `run` in the repository whose common
/// git directory is `common_dir`.
fn keeps_of(common_dir: &Path, run: &str) -> Vec<PathBuf> {
    let dir = common_dir.join("objects").join("pack");
    let line = keep_line(run);
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "keep"))
        // A keep file someone else wrote (a fetch, a user) is theirs.
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|text| text.lines().next() == Some(&line)))
        .collect()
}

/// Releases the packs held for run `run`: its refs hold what it wrote.
/// What could not be removed is left kept (never lost), and said.
pub fn release(common_dir: &Path, run: &str) {
    for keep in keeps_of(common_dir, run) {
        if let Err(e) = std::fs::remove_file(&keep)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %keep.display(), error = %e, "failed to release a kept pack");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_repo;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A commit whose objects are held survives `git gc --prune=now` with
    /// no ref naming it; released, the next gc takes it.
    #[test]
    fn held_objects_survive_a_prune_until_released() {
        survive_a_prune(0);
    }

    /// The same when the pack is streamed through git (a large file).
    #[test]
    fn objects_held_through_git_survive_a_prune_until_released() {
        survive_a_prune(STREAM_ABOVE + 1);
    }

    fn survive_a_prune(largest: u64) {
        let dir = tempfile::tempdir().unwrap();
        let (main, base) = test_repo::with_files(dir.path(), &[]);
        let repo = main.open().unwrap();
        let tip = test_repo::commit_on(&repo, base, "f.txt", "work of a task\n");
        hold(&repo, None, tip, &[base], "r1", largest).unwrap();
        assert_eq!(keeps_of(repo.commondir(), "r1").len(), 1);
        assert!(keeps_of(repo.commondir(), "r2").is_empty());
        git(&main.workdir, &["gc", "--prune=now", "--quiet"]);
        let text = git(&main.workdir, &["cat-file", "-p", &format!("{tip}:f.txt")]);
        assert_eq!(text, "work of a task");
        release(repo.commondir(), "r1");
        assert!(keeps_of(repo.commondir(), "r1").is_empty());
        git(&main.workdir, &["gc", "--prune=now", "--quiet"]);
        let gone = std::process::Command::new("git")
            .current_dir(&main.workdir)
            .args(["cat-file", "-e", &tip.to_string()])
            .status()
            .unwrap();
        assert!(
            !gone.success(),
            "released, the unreferenced commit is git's to prune"
        );
    }

    /// Nothing new (a tip the held commits reach): no pack, no keep.
    #[test]
    fn a_tip_already_held_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (main, head) = test_repo::with_files(dir.path(), &[]);
        let repo = main.open().unwrap();
        hold(&repo, None, head, &[head], "r", 0).unwrap();
        assert!(keeps_of(repo.commondir(), "r").is_empty());
    }

    /// A run's many small holds are merged into few kept packs, and every
    /// held object survives a prune all the same.
    #[test]
    fn many_holds_are_merged_into_few_packs_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (main, base) = test_repo::with_files(dir.path(), &[]);
        let repo = main.open().unwrap();
        let mut tips = Vec::new();
        for i in 0..40 {
            let tip =
                test_repo::commit_on(&repo, base, &format!("f{i}.txt"), &format!("task {i}\n"));
            hold(&repo, None, tip, &[base], "many", 0).unwrap();
            tips.push(tip);
        }
        let kept = keeps_of(repo.commondir(), "many").len();
        assert!(kept < COMPACT_AT, "{kept} kept packs");
        git(&main.workdir, &["gc", "--prune=now", "--quiet"]);
        for (i, tip) in tips.iter().enumerate() {
            let text = git(
                &main.workdir,
                &["cat-file", "-p", &format!("{tip}:f{i}.txt")],
            );
            assert_eq!(text, format!("task {i}"));
        }
    }
}
