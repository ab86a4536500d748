//! Benchmark driver for `bench/run.sh`: the cost of starting a worker
//! sandboxed (through the run's launcher, as `swarm run` does) versus
//! plainly (tokio's spawn in a process group of its own, as `sandbox =
//! "none"` does), on the coordinator's current-thread runtime. Once one
//! after another (the latency of a spawn), once two at a time (what a run
//! with `concurrency = 2` sees).
//!
//! When `bwrap` is installed, bubblewrap's spawn of the same `/bin/true`
//! (`--unshare-all`, read-only root, fresh `/dev` and `/proc`) is measured
//! one after another too, for comparison; otherwise `n/a`.
//!
//! ```text
//! bench_spawn SWARM_BINARY N DIR
//! prints: plain_us sandboxed_us plain2_us sandboxed2_us bwrap_us (mean per spawn)
//! bench_spawn SWARM_BINARY N DIR sandboxed|plain|sandboxed2|plain2
//! prints: that loop's mean per spawn alone (one at a time, or two at a
//!         time with a 2): for a profile of it, or its CPU time
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};
use swarm_sandbox::{Exit, Launcher, Policy, SpawnRequest};

const BWRAP: &[&str] = &[
    "--unshare-all",
    "--die-with-parent",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "/bin/true",
];

async fn plain(dir: &Path, n: u32) -> anyhow::Result<()> {
    run(dir, n, "/bin/true", &[]).await
}

async fn run(dir: &Path, n: u32, program: &str, args: &[&str]) -> anyhow::Result<()> {
    for _ in 0..n {
        let status = tokio::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .await
            .with_context(|| format!("spawn {program}"))?;
        if !status.success() {
            bail!("{program} failed: {status}");
        }
    }
    Ok(())
}

async fn sandboxed(launcher: &Launcher, policy: &Policy, dir: &Path, n: u32) -> anyhow::Result<()> {
    let null = || {
        std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
    };
    for _ in 0..n {
        let mut spawned = launcher
            .spawn(SpawnRequest {
                argv: vec!["/bin/true".into()],
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                cwd: dir.to_path_buf(),
                policy: policy.clone(),
                after: None,
                started: None,
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
    Ok(())
}

fn per_spawn(started: Instant, n: u32) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (swarm, n, dir, only) = match args.as_slice() {
        [swarm, n, dir] => (swarm, n, dir, None),
        [swarm, n, dir, only]
            if ["sandboxed", "plain", "sandboxed2", "plain2"].contains(&only.as_str()) =>
        {
            (swarm, n, dir, Some(only.as_str()))
        }
        _ => bail!("usage: bench_spawn SWARM_BINARY N DIR [sandboxed|plain|sandboxed2|plain2]"),
    };
    let n: u32 = n.parse()?;
    let dir = PathBuf::from(dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Started once per run, like `swarm run` does; not part of a spawn.
        let launcher = Launcher::start(swarm.as_ref()).await?;
        if let Some(why) = launcher.degraded() {
            eprintln!("note: namespace layer off: {why}");
        }
        let policy = Policy::for_worker(vec![dir.clone()], Vec::new());
        if let Some(only) = only {
            let started = Instant::now();
            match only {
                "plain" => plain(&dir, n).await?,
                "plain2" => {
                    tokio::try_join!(plain(&dir, n / 2), plain(&dir, n / 2))?;
                }
                "sandboxed2" => {
                    tokio::try_join!(
                        sandboxed(&launcher, &policy, &dir, n / 2),
                        sandboxed(&launcher, &policy, &dir, n / 2)
                    )?;
                }
                _ => sandboxed(&launcher, &policy, &dir, n).await?,
            }
            println!("{:.0}", per_spawn(started, n));
            return Ok(());
        }

        let started = Instant::now();
        plain(&dir, n).await?;
        let plain1 = per_spawn(started, n);
        let started = Instant::now();
        sandboxed(&launcher, &policy, &dir, n).await?;
        let sandboxed1 = per_spawn(started, n);

        let started = Instant::now();
        tokio::try_join!(plain(&dir, n / 2), plain(&dir, n / 2))?;
        let plain2 = per_spawn(started, n);
        let started = Instant::now();
        tokio::try_join!(
            sandboxed(&launcher, &policy, &dir, n / 2),
            sandboxed(&launcher, &policy, &dir, n / 2)
        )?;
        let sandboxed2 = per_spawn(started, n);

        let started = Instant::now();
        let bwrap = match run(&dir, n, "bwrap", BWRAP).await {
            Ok(()) => format!("{:.0}", per_spawn(started, n)),
            Err(_) => "n/a".to_string(),
        };
        println!("{plain1:.0} {sandboxed1:.0} {plain2:.0} {sandboxed2:.0} {bwrap}");
        Ok(())
    })
}
