//! WASM tasks: WASI programs run by wasmtime against the task's worktree,
//! with no ambient authority: the worktree preopened as `.`, nothing else
//! of the file system, no sockets, only the environment the task lists.
//!
//! One [`WasmEngine`] per run: one wasmtime `Engine` (pooling allocator,
//! epoch interruption, the on-disk compilation cache), the WASI linkers,
//! each program compiled and checked once ([`WasmEngine::load`]) and kept
//! as an `InstancePre`, so that the 500th task using a tool only pays for
//! instantiation. Guests run on a multi-threaded runtime of their own, so a
//! busy guest never stalls the coordinator's loop and guests use every core;
//! they yield at every epoch tick (10 ms), when the wall-clock deadline and
//! stop requests are checked.

mod run;
mod sink;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use wasmtime::component::{Component, Linker as ComponentLinker};
use wasmtime::{Engine, Linker, Module};
use wasmtime_wasi::p2::bindings::CommandPre;

pub use run::WasmSpec;
use run::{P1Host, P2Host};

/// The wasmtime release WASM tasks run on (kept in step with Cargo.toml).
pub const WASMTIME: &str = "48";

/// How often the epoch advances: the granularity of timeouts and stops.
const TICK: Duration = Duration::from_millis(10);

/// Why a WASM program cannot be used, as a fragment that reads after
/// "failed to". Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("set up the WASM engine: {0}")]
    Engine(String),
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("load {path}: it is not a WebAssembly module or component")]
    NotWasm { path: PathBuf },
    #[error("compile {path}: {message}")]
    Compile { path: PathBuf, message: String },
    #[error(
        "load {path}: it has no `_start` function, so it is a library, not a WASI command (build it as a binary)"
    )]
    NoStart { path: PathBuf },
    #[error(
        "load {path}: it imports `{module}::{name}`, which swarm does not provide (only WASI preview 1 `wasi_snapshot_preview1` functions)"
    )]
    UnknownImport {
        path: PathBuf,
        module: String,
        name: String,
    },
    #[error("load {path}: {message}")]
    Link { path: PathBuf, message: String },
}

/// What the engine is set up for.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled programs are cached across runs (`None`: no disk
    /// cache). Must be absolute.
    pub cache_dir: Option<PathBuf>,
    /// Most guests running at once (sizes the instance pool).
    pub concurrency: usize,
    /// Whether any task uses fuel (fuel metering slows every guest, so it
    /// is on only when asked for).
    pub fuel: bool,
}

/// A checked program, ready to instantiate.
enum Program {
    /// A WASI preview 1 module with `_start`.
    Module(wasmtime::InstancePre<P1Host>),
    /// A WASI preview 2 command component (`wasi:cli/run`).
    Component(CommandPre<P2Host>),
}

/// The WASM side of one run.
pub struct WasmEngine {
    engine: Engine,
    p1: Linker<P1Host>,
    p2: ComponentLinker<P2Host>,
    /// Compiled programs by path, shared by the run's concurrent tasks.
    programs: DashMap<PathBuf, Arc<Program>>,
    runtime: Option<tokio::runtime::Runtime>,
    ticking: Arc<AtomicBool>,
    /// Fuel metering is on (every store then needs fuel).
    metered: bool,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine").finish_non_exhaustive()
    }
}

fn engine_err(e: impl std::fmt::Display) -> WasmError {
    WasmError::Engine(e.to_string())
}

impl WasmEngine {
    pub fn new(options: &EngineOptions) -> Result<Self, WasmError> {
        let concurrency = u32::try_from(options.concurrency.max(1)).unwrap_or(u32::MAX);
        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .consume_fuel(options.fuel)
            // Deep recursion traps here rather than exhausting the host.
            .max_wasm_stack(1 << 20);
        if let Some(dir) = &options.cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            config.cache(Some(wasmtime::Cache::new(cache).map_err(engine_err)?));
        }
        // Slots for every guest that may run at once; a preview 2 command
        // (the preview 1 adapter inside) takes several core instances and
        // two memories.
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(concurrency.saturating_mul(2))
            .total_core_instances(concurrency.saturating_mul(8))
            .total_memories(concurrency.saturating_mul(4))
            .total_tables(concurrency.saturating_mul(8))
            .total_stacks(concurrency.saturating_mul(2));
        config.allocation_strategy(pool);
        let engine = Engine::new(&config).map_err(engine_err)?;

        let mut p1 = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1, |host: &mut P1Host| &mut host.wasi)
            .map_err(engine_err)?;
        let mut p2 = ComponentLinker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut p2).map_err(engine_err)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.concurrency.clamp(1, 64))
            .thread_name("swarm-wasm")
            .enable_all()
            .build()
            .map_err(engine_err)?;

        // The epoch clock: a thread of its own, so that guests busy on
        // every runtime thread cannot stop it.
        let ticking = Arc::new(AtomicBool::new(true));
        let (clock, flag) = (engine.clone(), Arc::clone(&ticking));
        std::thread::Builder::new()
            .name("swarm-wasm-epoch".into())
            .spawn(move || {
                while flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    clock.increment_epoch();
                }
            })
            .map_err(engine_err)?;

        Ok(Self {
            engine,
            p1,
            p2,
            programs: DashMap::new(),
            runtime: Some(runtime),
            ticking,
            metered: options.fuel,
        })
    }

    /// Compiles and checks the program at `path` (once per run; compiled
    /// code also comes from the disk cache when it has it): a WASI preview
    /// 1 module with `_start` and only WASI imports, or a WASI preview 2
    /// command component.
    pub fn load(&self, path: &Path) -> Result<(), WasmError> {
        self.program(path).map(drop)
    }

    /// Compiles and checks `bytes` as [`WasmEngine::load`] does a file, and
    /// keeps it as the program `path` names: a task naming `path` runs
    /// these bytes, and the file there is never read (it may not hold them:
    /// a plan from an untrusted origin runs the program git tracks at the
    /// run's base, not what the working tree holds now).
    pub fn load_bytes(&self, path: &Path, bytes: &[u8]) -> Result<(), WasmError> {
        let program = Arc::new(self.compile_bytes(path, bytes)?);
        self.programs.insert(path.to_path_buf(), program);
        Ok(())
    }

    fn program(&self, path: &Path) -> Result<Arc<Program>, WasmError> {
        if let Some(program) = self.programs.get(path) {
            return Ok(Arc::clone(&program));
        }
        // Compiled outside the map's lock: two tasks loading the same new
        // program may both compile it (the disk cache makes the second
        // cheap), but nobody waits on a shard while a module compiles.
        let program = Arc::new(self.compile(path)?);
        Ok(Arc::clone(
            &self.programs.entry(path.to_path_buf()).or_insert(program),
        ))
    }

    fn compile(&self, path: &Path) -> Result<Program, WasmError> {
        let bytes = std::fs::read(path).map_err(|source| WasmError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.compile_bytes(path, &bytes)
    }

    /// `bytes` compiled and checked as the program at `path`.
    fn compile_bytes(&self, path: &Path, bytes: &[u8]) -> Result<Program, WasmError> {
        let p = || path.to_path_buf();
        // The preamble: `\0asm`, then version 1 and layer 0 for a core
        // module, version 0xd and layer 1 for a component.
        let compile = |e: wasmtime::Error| WasmError::Compile {
            path: p(),
            message: e.to_string(),
        };
        let link = |e: wasmtime::Error| WasmError::Link {
            path: p(),
            message: e.to_string(),
        };
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
                let module = Module::from_binary(&self.engine, bytes).map_err(compile)?;
                if !module
                    .exports()
                    .any(|e| e.name() == "_start" && e.ty().func().is_some())
                {
                    return Err(WasmError::NoStart { path: p() });
                }
                if let Some(import) = module
                    .imports()
                    .find(|i| i.module() != "wasi_snapshot_preview1")
                {
                    return Err(WasmError::UnknownImport {
                        path: p(),
                        module: import.module().to_string(),
                        name: import.name().to_string(),
                    });
                }
                match self.p1.instantiate_pre(&module) {
                    Ok(pre) => Ok(Program::Module(pre)),
                    Err(e) => match e.downcast_ref::<wasmtime::UnknownImportError>() {
                        Some(u) => Err(WasmError::UnknownImport {
                            path: p(),
                            module: u.module().to_string(),
                            name: u.name().to_string(),
                        }),
                        None => Err(link(e)),
                    },
                }
            }
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => {
                let component = Component::from_binary(&self.engine, bytes).map_err(compile)?;
                let pre = self.p2.instantiate_pre(&component).map_err(link)?;
                let pre = CommandPre::new(pre).map_err(|e| WasmError::Link {
                    path: p(),
                    message: format!(
                        "it is a component but not a WASI command (no `wasi:cli/run` export): {e}"
                    ),
                })?;
                Ok(Program::Component(pre))
            }
            _ => Err(WasmError::NotWasm { path: p() }),
        }
    }

    /// Compiles a tiny WASI command: proves that this machine can run WASM
    /// tasks (for `swarm doctor`).
    pub fn self_check(&self) -> Result<(), WasmError> {
        let module = Module::new(
            &self.engine,
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                       (func (export "_start")))"#,
        )
        .map_err(|e| WasmError::Compile {
            path: "a built-in test module".into(),
            message: e.to_string(),
        })?;
        self.p1
            .instantiate_pre(&module)
            .map(drop)
            .map_err(|e| WasmError::Link {
                path: "a built-in test module".into(),
                message: e.to_string(),
            })
    }

    fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        self.runtime.as_ref()
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
        // Dropping a runtime blocks, which is not allowed inside the
        // coordinator's runtime; nothing of ours is still running on it.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
