//! One attempt of a WASM task: a store with the task's WASI context and
//! limits, the guest run on the engine's runtime, and how it ended.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use swarm_protocol::AttemptOutcome;
use swarm_sandbox::Stop;
use tokio::sync::watch;
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{
    FsPerms, I32Exit, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::sink::Sink;
use super::{Program, WasmEngine};
use crate::command::requested;

/// The store data of a preview 1 guest.
pub(crate) struct P1Host {
    pub(crate) wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// The store data of a preview 2 guest.
pub(crate) struct P2Host {
    ctx: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for P2Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// One WASM attempt.
#[derive(Debug, Clone)]
pub struct WasmSpec {
    /// The program (loaded with [`WasmEngine::load`] beforehand).
    pub module: PathBuf,
    /// Its arguments after argv[0] (the program's file name).
    pub args: Vec<String>,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// The worktree, preopened read-write as `.`.
    pub dir: PathBuf,
    /// Directories preopened read-only, each at its own absolute path.
    pub read_only: Vec<PathBuf>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub max_output: u64,
    /// The person's secrets taken out of its output (see
    /// [`crate::redact`]).
    pub redact: Option<crate::redact::Redact>,
    pub deadline: Option<tokio::time::Instant>,
    /// Largest linear memory, in bytes.
    pub memory: u64,
    pub fuel: Option<u64>,
    /// How long a stopped guest stuck in a host call gets before it is
    /// dropped.
    pub grace: Duration,
}

/// Why swarm interrupted a guest (returned from the epoch callback, so it
/// comes back as the guest's error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    TimedOut,
    Cancelled,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TimedOut => "timed out",
            Self::Cancelled => "cancelled",
        })
    }
}

impl std::error::Error for Stopped {}

/// What a guest's run returned: `Ok(Err(()))` is a preview 2 command whose
/// `run` reported failure.
type GuestResult = Result<Result<(), ()>, wasmtime::Error>;

impl WasmEngine {
    /// Runs one attempt of a WASM task to its end, deadline or stop.
    pub async fn run(
        &self,
        spec: &WasmSpec,
        stop: &mut watch::Receiver<Option<Stop>>,
    ) -> AttemptOutcome {
        let failed = |message: String| AttemptOutcome::SpawnFailed { message };
        let program = match self.program(&spec.module) {
            Ok(program) => program,
            Err(e) => return failed(e.to_string()),
        };
        let Some(runtime) = self.runtime() else {
            return failed("run a WASM guest: the engine is shut down".into());
        };
        let open = |path: &PathBuf| {
            crate::output::open_log(path)
                .map_err(|e| format!("open log file {}: {e}", path.display()))
        };
        let (stdout, stderr) = match (open(&spec.stdout), open(&spec.stderr)) {
            (Ok(out), Ok(err)) => (
                Sink::new(out, spec.max_output, spec.redact.as_ref()),
                Sink::new(err, spec.max_output, spec.redact.as_ref()),
            ),
            (Err(e), _) | (_, Err(e)) => return failed(e),
        };
        let mut builder = match wasi_context(spec, &stdout, &stderr) {
            Ok(builder) => builder,
            Err(message) => return failed(message),
        };
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(spec.memory).unwrap_or(usize::MAX))
            .build();
        let guard = Guard {
            deadline: spec.deadline.map(tokio::time::Instant::into_std),
            cancelled: Arc::new(AtomicBool::new(false)),
            fuel: spec.fuel,
            metered: self.metered,
        };
        let engine = self.engine.clone();
        let g = guard.clone();
        let guest = runtime.spawn(async move {
            match &*program {
                Program::Module(pre) => {
                    let host = P1Host {
                        wasi: builder.build_p1(),
                        limits,
                    };
                    let mut store = Store::new(&engine, host);
                    store.limiter(|h| &mut h.limits);
                    g.arm(&mut store)?;
                    let instance = pre.instantiate_async(&mut store).await?;
                    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                    start.call_async(&mut store, ()).await.map(Ok)
                }
                Program::Component(pre) => {
                    let host = P2Host {
                        ctx: builder.build(),
                        table: ResourceTable::new(),
                        limits,
                    };
                    let mut store = Store::new(&engine, host);
                    store.limiter(|h| &mut h.limits);
                    g.arm(&mut store)?;
                    let command = pre.instantiate_async(&mut store).await?;
                    command.wasi_cli_run().call_run(&mut store).await
                }
            }
        });
        let abort = guest.abort_handle();
        tokio::pin!(guest);
        // A guest blocked in a host call does not see epoch ticks; it is
        // dropped once its deadline and the grace period have passed.
        let backstop = async {
            match spec.deadline {
                Some(at) => tokio::time::sleep_until(at + spec.grace).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            result = &mut guest => joined(result, &guard),
            how = requested(stop, Stop::Graceful) => {
                guard.cancelled.store(true, Ordering::Relaxed);
                if how == Stop::Graceful
                    && let Ok(result) = tokio::time::timeout(spec.grace, &mut guest).await
                {
                    joined(result, &guard)
                } else {
                    abort.abort();
                    AttemptOutcome::Cancelled
                }
            }
            () = backstop => {
                abort.abort();
                AttemptOutcome::TimedOut
            }
        };
        stdout.finish();
        stderr.finish();
        outcome
    }
}

/// The task's WASI context: args, environment, the worktree as `.`, its
/// read-only directories, output to the sinks, and no network.
fn wasi_context(spec: &WasmSpec, stdout: &Sink, stderr: &Sink) -> Result<WasiCtxBuilder, String> {
    let mut builder = WasiCtxBuilder::new();
    let name = spec
        .module
        .file_name()
        .map_or_else(|| "main".into(), |n| n.to_string_lossy().into_owned());
    builder
        .arg(&name)
        .args(&spec.args)
        .envs(&spec.env)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        // Guests have a runtime of their own: a file operation runs right on
        // the guest's thread instead of a hop to a blocking thread and back,
        // which made a trivial guest's run 7x slower (120 µs vs 16 µs).
        .allow_blocking_current_thread(true);
    builder
        .preopened_dir(&spec.dir, ".", FsPerms::ReadWrite)
        .map_err(|e| format!("preopen {}: {e}", spec.dir.display()))?;
    for dir in &spec.read_only {
        let guest = dir.to_string_lossy();
        builder
            .preopened_dir(dir, guest.as_ref(), FsPerms::ReadOnly)
            .map_err(|e| format!("preopen {}: {e}", dir.display()))?;
    }
    Ok(builder)
}

/// What a guest's store checks at every epoch tick.
#[derive(Clone)]
struct Guard {
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
    fuel: Option<u64>,
    metered: bool,
}

impl Guard {
    fn arm<T: Send + 'static>(&self, store: &mut Store<T>) -> wasmtime::Result<()> {
        if self.metered {
            store.set_fuel(self.fuel.unwrap_or(u64::MAX))?;
        }
        store.set_epoch_deadline(1);
        let (deadline, cancelled) = (self.deadline, Arc::clone(&self.cancelled));
        store.epoch_deadline_callback(move |_| {
            if cancelled.load(Ordering::Relaxed) {
                Err(wasmtime::Error::new(Stopped::Cancelled))
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                Err(wasmtime::Error::new(Stopped::TimedOut))
            } else {
                // Let the other guests on this runtime thread run.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(())
    }
}

fn joined(result: Result<GuestResult, tokio::task::JoinError>, guard: &Guard) -> AttemptOutcome {
    match result {
        Ok(result) => outcome(result, guard.fuel),
        Err(e) => AttemptOutcome::Trapped {
            message: format!("the WASM guest's thread failed: {e}"),
        },
    }
}

/// How a guest ended, from what its run returned.
fn outcome(result: GuestResult, fuel: Option<u64>) -> AttemptOutcome {
    let e = match result {
        Ok(Ok(())) => return AttemptOutcome::Exited { code: 0 },
        Ok(Err(())) => return AttemptOutcome::Exited { code: 1 },
        Err(e) => e,
    };
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return AttemptOutcome::Exited { code: exit.0 };
    }
    if let Some(stopped) = e.downcast_ref::<Stopped>() {
        return match stopped {
            Stopped::TimedOut => AttemptOutcome::TimedOut,
            Stopped::Cancelled => AttemptOutcome::Cancelled,
        };
    }
    let message = match e.downcast_ref::<Trap>() {
        Some(Trap::UnreachableCodeReached) => {
            "trapped: unreachable instruction executed (the guest aborted or panicked)".into()
        }
        Some(Trap::StackOverflow) => "trapped: stack overflow (runaway recursion?)".into(),
        Some(Trap::MemoryOutOfBounds) => "trapped: out-of-bounds memory access".into(),
        Some(Trap::OutOfFuel) => match fuel {
            Some(fuel) => format!("trapped: out of fuel (the task allows {fuel})"),
            None => "trapped: out of fuel".into(),
        },
        Some(trap) => format!("trapped: {trap}"),
        None => format!("failed: {e}"),
    };
    AttemptOutcome::Trapped { message }
}
