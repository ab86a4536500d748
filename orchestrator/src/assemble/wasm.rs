//! The WASM engine of a plan with WASM tasks, every program loaded and
//! checked before anything runs: the person's from the files they name,
//! an untrusted plan's from the blobs git tracks at the run's base.

use std::sync::Arc;

use swarm_worker::wasm::{EngineOptions, WasmEngine, WasmError};

use super::{HostEnv, SetupError};
use crate::plan::{Plan, PlanErrorKind};

/// The engine for `plan`'s WASM tasks (`None` without any): a file that is
/// not WASM, a module without `_start` or with imports swarm does not
/// provide is a plan error at its `wasm = ...`.
pub fn wasm_engine(
    plan: &Plan,
    concurrency: usize,
    host: &HostEnv,
) -> Result<Option<Arc<WasmEngine>>, SetupError> {
    let wasm_tasks: Vec<_> = plan
        .tasks
        .iter()
        .filter_map(|t| Some((t, t.wasm()?)))
        .collect();
    if wasm_tasks.is_empty() {
        return Ok(None);
    }
    // Compiled programs are cached across runs (wasmtime keys them by
    // content and its own version) in the user's cache directory.
    let options = EngineOptions {
        cache_dir: host.cache_home().map(|dir| dir.join("swarm").join("wasm")),
        concurrency,
        fuel: wasm_tasks.iter().any(|(_, w)| w.fuel.is_some()),
    };
    let engine = WasmEngine::new(&options).map_err(SetupError::Wasm)?;
    // A program an untrusted plan names is the blob git tracks at the run's
    // base, loaded from its bytes once; the file at its path is never read.
    let mut loaded = std::collections::HashSet::new();
    for (task, wasm) in wasm_tasks {
        let load = match wasm.blob {
            Some(blob) if !loaded.insert(blob) => Ok(()),
            Some(blob) => plan
                .files
                .blob(blob)
                .map_err(|why| WasmError::Read {
                    path: wasm.module.clone(),
                    source: std::io::Error::other(why),
                })
                .and_then(|bytes| engine.load_bytes(&wasm.module, &bytes)),
            None => engine.load(&wasm.module),
        };
        if let Err(e) = load {
            let help = match e {
                WasmError::Read { .. } => "`wasm` paths are relative to the plan's directory",
                WasmError::NoStart { .. } | WasmError::UnknownImport { .. } => {
                    "build the tool as a WASI command: `cargo build --target wasm32-wasip1` (or wasm32-wasip2)"
                }
                _ => {
                    "`wasm` takes a WASI preview 1 module or a preview 2 command component (.wasm)"
                }
            };
            return Err(SetupError::Plan(Box::new(
                plan.source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("task `{}` cannot run its program: failed to {e}", task.id),
                        Some(wasm.span.clone()),
                        "this program",
                    )
                    .with_help(help),
            )));
        }
    }
    Ok(Some(Arc::new(engine)))
}
