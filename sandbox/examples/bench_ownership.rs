//! Benchmark driver for `bench/run.sh`: what handing a task's worktree to
//! the sandbox's unprivileged user and taking it back costs when swarm runs
//! as root (two `lchown` walks per attempt), for a tree of N files in
//! directories of 100.
//!
//! ```text
//! bench_ownership N DIR
//! prints: hand_over_ms take_back_ms (median of 5)
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use swarm_sandbox::ownership::{hand_over, take_back};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [n, dir] = args.as_slice() else {
        bail!("usage: bench_ownership N DIR");
    };
    if !nix::unistd::geteuid().is_root() {
        bail!("only root can give files away");
    }
    let n: usize = n.parse()?;
    let root = PathBuf::from(dir).join("tree");
    for i in 0..n {
        let d = root.join(format!("d{}", i / 100));
        std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        std::fs::write(d.join(format!("f{i}")), "x")?;
    }
    let (mut give, mut back) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        hand_over(&root, swarm_sandbox::SANDBOX_IDENTITY)?;
        give.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        take_back(&root)?;
        back.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("{:.1} {:.1}", median(give), median(back));
    std::fs::remove_dir_all(&root)?;
    Ok(())
}
