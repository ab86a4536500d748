//! Benchmark driver for `bench/run.sh`: the cost of starting a worker
//! sandboxed (through `swarm __sandbox`) versus plainly, one after another.
//!
//! ```text
//! bench_spawn SWARM_BINARY N DIR    prints: plain_us sandboxed_us (mean per spawn)
//! ```

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use swarm_sandbox::Policy;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [swarm, n, dir] = args.as_slice() else {
        bail!("usage: bench_spawn SWARM_BINARY N DIR");
    };
    let n: u32 = n.parse()?;
    let dir = PathBuf::from(dir);
    let policy = serde_json::to_string(&Policy::for_worker(vec![dir.clone()], Vec::new()))?;
    let run = |cmd: &mut Command| -> anyhow::Result<()> {
        let status = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .status()
            .context("spawn")?;
        if !status.success() {
            bail!("{cmd:?} failed: {status}");
        }
        Ok(())
    };
    let started = Instant::now();
    for _ in 0..n {
        run(Command::new("/bin/true").process_group(0))?;
    }
    let plain = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let started = Instant::now();
    for _ in 0..n {
        run(Command::new(swarm)
            .args(["__sandbox", "--policy", &policy, "--", "/bin/true"])
            .env_clear())?;
    }
    let sandboxed = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("{plain:.0} {sandboxed:.0}");
    Ok(())
}
