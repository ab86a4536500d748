//! Benchmark driver for swarm's git layer, used by `bench/run.sh`: times
//! worktree creation and in-memory merges through the same library calls
//! `swarm run` makes, so they can be compared with the git CLI side by side.
//!
//! ```text
//! bench_git worktrees REPO REV N [PATH...]   create (and remove) N worktrees; prints ms per create
//! bench_git stress REPO REV THREADS TOTAL [PATH...]
//!                                            THREADS creators until TOTAL worktrees were made
//! bench_git merge REPO BASE COMMIT...        merge COMMITs into BASE in order; prints ms and tree
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use swarm_orchestrator::git::{MergeOutcome, Merger, Repo, Worktrees};

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
    let merger = Merger::new(&repo)?;
    for commit in commits {
        match merger.merge(acc, commit, "bench merge")? {
            MergeOutcome::Merged(new) => acc = new,
            MergeOutcome::AlreadyIn => {}
            MergeOutcome::Conflict(files) => bail!("unexpected conflict in {files:?}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let tree = repo
        .open()?
        .find_commit(acc)
        .and_then(|c| c.tree())
        .context("read the merged tree")?
        .id();
    println!("{elapsed:.1} {tree}");
    Ok(())
}
