//! Benchmark driver for `bench/run.sh`: the cost of starting a worker
//! sandboxed (through the run's launcher, as `swarm run` does) versus
//! plainly (tokio's spawn in a process group of its own, as `sandbox =
//! "none"` does), one after another, on the coordinator's current-thread
//! runtime.
//!
//! ```text
//! bench_spawn SWARM_BINARY N DIR    prints: plain_us sandboxed_us (mean per spawn)
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};
use swarm_sandbox::{Exit, Launcher, Policy, SpawnRequest};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [swarm, n, dir] = args.as_slice() else {
        bail!("usage: bench_spawn SWARM_BINARY N DIR");
    };
    let n: u32 = n.parse()?;
    let dir = PathBuf::from(dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let started = Instant::now();
        for _ in 0..n {
            let status = tokio::process::Command::new("/bin/true")
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .status()
                .await
                .context("spawn /bin/true")?;
            if !status.success() {
                bail!("/bin/true failed: {status}");
            }
        }
        let plain = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);

        // Started once per run, like `swarm run` does; not part of a spawn.
        let launcher = Launcher::start(swarm.as_ref()).await?;
        if let Some(why) = launcher.degraded() {
            eprintln!("note: namespace layer off: {why}");
        }
        let policy = Policy::for_worker(vec![dir.clone()], Vec::new());
        let null = || {
            std::fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
        };
        let started = Instant::now();
        for _ in 0..n {
            let mut spawned = launcher
                .spawn(SpawnRequest {
                    argv: vec!["/bin/true".into()],
                    env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                    cwd: dir.clone(),
                    policy: policy.clone(),
                    stdin: null()?.into(),
                    stdout: null()?.into(),
                    stderr: null()?.into(),
                })
                .await?;
            match spawned.wait().await {
                Exit::Exited(0) => {}
                other => bail!("sandboxed /bin/true failed: {other:?}"),
            }
        }
        let sandboxed = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!("{plain:.0} {sandboxed:.0}");
        Ok(())
    })
}
