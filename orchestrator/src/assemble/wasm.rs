//! The WASM engine of a plan with WASM tasks, every program loaded and
//! checked before anything runs.

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
    for (task, wasm) in wasm_tasks {
        if let Err(e) = engine.load(&wasm.module) {
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
