//! Benchmark driver for `bench/run.sh`: what a WASM task costs swarm.
//!
//! ```text
//! bench_wasm MODULE N DIR
//! prints: cold_compile_ms cached_load_ms warm_run_us
//! ```
//!
//! cold: a new engine compiling MODULE with no cache; cached: a new engine
//! loading it from a warm on-disk cache; warm: the mean of N attempts of
//! the loaded program, each exactly what a task's attempt does (log files,
//! WASI context, store, instantiation, `_start`, outcome) in DIR.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use swarm_worker::wasm::{EngineOptions, WasmEngine, WasmSpec};
use swarm_worker::{AttemptOutcome, Stop};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, n, dir] = args.as_slice() else {
        bail!("usage: bench_wasm MODULE N DIR");
    };
    let n: u32 = n.parse()?;
    let dir = PathBuf::from(dir).canonicalize()?;
    let module = PathBuf::from(module).canonicalize()?;
    let cache = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let options = |cache_dir: Option<PathBuf>| EngineOptions {
        cache_dir,
        concurrency: 2,
        fuel: false,
    };

    let started = Instant::now();
    let engine = WasmEngine::new(&options(None))?;
    engine.load(&module)?;
    let cold = started.elapsed();
    drop(engine);

    // Fill the disk cache, then measure a fresh engine reading it.
    WasmEngine::new(&options(Some(cache.clone())))?.load(&module)?;
    let started = Instant::now();
    let engine = WasmEngine::new(&options(Some(cache)))?;
    engine.load(&module)?;
    let cached = started.elapsed();

    let work = dir.join("work");
    std::fs::create_dir_all(&work)?;
    let spec = WasmSpec {
        module,
        args: vec!["out.txt".into(), "x".into()],
        env: Vec::new(),
        dir: work.clone(),
        read_only: Vec::new(),
        stdout: dir.join("out.log"),
        stderr: dir.join("err.log"),
        max_output: 1 << 20,
        redact: None,
        deadline: None,
        memory: 64 << 20,
        fuel: None,
        grace: Duration::from_secs(1),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let warm = runtime.block_on(async {
        let (_tx, mut stop) = tokio::sync::watch::channel::<Option<Stop>>(None);
        // One untimed attempt first: page faults of the first instance.
        engine.run(&spec, &mut stop).await;
        let started = Instant::now();
        for _ in 0..n {
            match engine.run(&spec, &mut stop).await {
                AttemptOutcome::Exited { code: 0 } => {}
                other => bail!("the guest failed: {other:?}"),
            }
        }
        Ok(started.elapsed())
    })?;
    std::fs::read_to_string(work.join("out.txt")).context("the guest's output")?;
    println!(
        "{:.1} {:.2} {:.1}",
        cold.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e6 / f64::from(n)
    );
    Ok(())
}
