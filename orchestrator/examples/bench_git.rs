//! Benchmark driver for swarm's git layer, used by `bench/run.sh`: times
//! worktree creation and in-memory merges through the same library calls
//! `swarm run` makes, so they can be compared with the git CLI side by side.
//!
//! ```text
//! bench_git worktrees REPO REV N [PATH...]   create (and remove) N worktrees; prints ms per create
//! bench_git stress REPO REV THREADS TOTAL [PATH...]
//!                                            THREADS creators until TOTAL worktrees were made
//! bench_git merge REPO BASE COMMIT...        merge COMMITs into BASE in order; prints ms and tree
//! bench_git snapshot REPO REV RUNS CHANGES BIG_MIB old|new
//!                                            snapshot a fresh worktree with CHANGES edited
//!                                            files, one new file and a BIG_MIB file (0: none;
//!                                            with a `* text eol=crlf` .gitattributes),
//!                                            with the old (libgit2 `add_all`) or new
//!                                            snapshot; prints median ms and peak RSS in KiB
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use swarm_orchestrator::git::{MergeOutcome, Merger, Repo, SnapshotLimits, Worktrees};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worktrees") if args.len() >= 4 => {
            worktrees(Path::new(&args[1]), &args[2], args[3].parse()?, &args[4..])
        }
        Some("stress") if args.len() >= 5 => stress(
            Path::new(&args[1]),
            &args[2],
            args[3].parse()?,
            args[4].parse()?,
            &args[5..],
        ),
        Some("merge") if args.len() >= 4 => merge(Path::new(&args[1]), &args[2], &args[3..]),
        Some("snapshot") if args.len() == 7 => snapshot(
            Path::new(&args[1]),
            &args[2],
            args[3].parse()?,
            args[4].parse()?,
            args[5].parse()?,
            args[6] == "old",
        ),
        _ => bail!("usage: see the module documentation of orchestrator/examples/bench_git.rs"),
    }
}

fn scratch(repo: &Repo, name: &str) -> PathBuf {
    repo.workdir.join(".swarm").join("bench").join(name)
}

fn worktrees(dir: &Path, rev: &str, n: usize, paths: &[String]) -> anyhow::Result<()> {
    let repo = Repo::discover(dir)?;
    let commit = repo.resolve(rev)?;
    let trees = Worktrees::new(repo.clone());
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let path = scratch(&repo, &format!("wt-{i}"));
        let started = Instant::now();
        let admin = trees.create(&path, commit, paths)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        trees.remove(&path, Some(&admin))?;
    }
    trees.prune()?;
    swarm_orchestrator::git::hold::release(&repo.common_dir, "bench");
    times.sort_by(f64::total_cmp);
    println!("{:.2}", times[times.len() / 2]);
    Ok(())
}

fn stress(
    dir: &Path,
    rev: &str,
    threads: usize,
    total: usize,
    paths: &[String],
) -> anyhow::Result<()> {
    let repo = Repo::discover(dir)?;
    let commit = repo.resolve(rev)?;
    let trees = Arc::new(Worktrees::new(repo.clone()));
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let paths = Arc::new(paths.to_vec());
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (trees, next, failures, repo) = (
                Arc::clone(&trees),
                Arc::clone(&next),
                Arc::clone(&failures),
                repo.clone(),
            );
            let paths = Arc::clone(&paths);
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        break;
                    }
                    let path = scratch(&repo, &format!("stress-{i}"));
                    let admin = trees.create(&path, commit, &paths);
                    if !(admin.is_ok() && path.join(".git").exists()) {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = trees.remove(&path, admin.as_deref().ok());
                }
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("a creator thread panicked"))?;
    }
    trees.prune()?;
    println!(
        "{} {:.2}",
        failures.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn merge(dir: &Path, base: &str, commits: &[String]) -> anyhow::Result<()> {
    let repo = Repo::discover(dir)?;
    let mut acc = repo.resolve(base)?;
    let commits: Vec<_> = commits
        .iter()
        .map(|c| repo.resolve(c))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    // As a run merges: each merge's objects held (`git::hold`).
    let merger = Merger::holding(&repo, "bench")?;
    for commit in commits {
        match merger.merge(acc, commit, "bench merge")? {
            MergeOutcome::Merged(new) => acc = new,
            MergeOutcome::AlreadyIn => {}
            MergeOutcome::Conflict(files) => bail!("unexpected conflict in {files:?}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    swarm_orchestrator::git::hold::release(&repo.common_dir, "bench");
    let tree = repo
        .open()?
        .find_commit(acc)
        .and_then(|c| c.tree())
        .context("read the merged tree")?
        .id();
    println!("{elapsed:.1} {tree}");
    Ok(())
}

fn snapshot(
    dir: &Path,
    rev: &str,
    runs: usize,
    changes: usize,
    big_mib: usize,
    old: bool,
) -> anyhow::Result<()> {
    let repo = Repo::discover(dir)?;
    let commit = repo.resolve(rev)?;
    let trees = Worktrees::new(repo.clone());
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let path = scratch(&repo, &format!("snap-{i}"));
        let admin = trees.create(&path, commit, &[])?;
        // As a task would: past the checkout's clock tick, then its edits.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let files: Vec<PathBuf> = walk_files(&path)?;
        for f in files.iter().take(changes) {
            let mut text = std::fs::read(f)?;
            text.extend_from_slice(b"edited\n");
            std::fs::write(f, text)?;
        }
        std::fs::write(path.join("new-file.txt"), "new\n")?;
        if big_mib > 0 {
            // The attack of issue 14: text conversion makes libgit2 buffer
            // the whole file.
            std::fs::write(path.join(".gitattributes"), "* text eol=crlf\n")?;
            let chunk = vec![b'x'; 1 << 20];
            let mut big = std::fs::File::create(path.join("big.bin"))?;
            for _ in 0..big_mib {
                std::io::Write::write_all(&mut big, &chunk)?;
            }
        }
        let started = Instant::now();
        if old {
            old_snapshot(&path, &admin, commit)?;
        } else {
            let limits = SnapshotLimits {
                scope: &[],
                max_file_size: u64::MAX,
                run: "bench",
            };
            swarm_orchestrator::git::snapshot(&path, &admin, commit, limits, |_, _| {
                "bench".into()
            })?;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        trees.remove(&path, Some(&admin))?;
    }
    trees.prune()?;
    swarm_orchestrator::git::hold::release(&repo.common_dir, "bench");
    times.sort_by(f64::total_cmp);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
        .unwrap_or_default();
    println!("{:.1} {peak}", times[times.len() / 2]);
    Ok(())
}

/// The regular files of a worktree (not under `.git`), sorted.
fn walk_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if entry.file_name() == ".git" {
                continue;
            } else if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The snapshot as it was before issue 14: libgit2's `add_all` over the
/// worktree (which applies `.gitattributes` and reads whole files).
fn old_snapshot(path: &Path, git_dir: &Path, base: git2::Oid) -> anyhow::Result<git2::Oid> {
    let repo = git2::Repository::open(git_dir)?;
    repo.set_workdir(path, false)?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    let tree_id = index.write_tree()?;
    let base_commit = repo.find_commit(base)?;
    let tree = repo.find_tree(tree_id)?;
    let sig = swarm_orchestrator::git::signature()?;
    let commit = repo.commit(None, &sig, &sig, "bench", &tree, &[&base_commit])?;
    // The old snapshot listed the changed paths too.
    let base_tree = base_commit.tree()?;
    let _ = repo
        .diff_tree_to_tree(Some(&base_tree), Some(&tree), None)?
        .deltas()
        .count();
    index.write()?;
    repo.set_head_detached(commit)?;
    Ok(commit)
}
