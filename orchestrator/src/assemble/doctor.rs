//! What this machine supports for sandboxing, as `swarm doctor` finds it:
//! the kernel's Landlock and seccomp, cgroups, whether the namespace layer
//! starts (only known by trying it: sysctls do not show an AppArmor or
//! container policy that refuses it), git, wasmtime, and, when sandboxed
//! runs can start, the toolchains and agent CLIs of the host.

use swarm_sandbox::probe::Support;

use super::agents::Installed;
use super::toolchains::Toolchain;
use super::{HostEnv, start_launcher};

/// What `swarm doctor` found.
#[derive(Debug)]
pub struct Machine {
    /// The kernel's release, trimmed.
    pub kernel: String,
    pub support: Support,
    /// The Landlock ABI swarm needs.
    pub required_abi: i64,
    /// Which cgroups tasks get (`"v2"`, `"v1"`), if any.
    pub cgroups: Option<&'static str>,
    /// Whether sandboxed runs start: `Ok(None)` with the namespace layer,
    /// `Ok(Some(why))` without it, `Err(why)` refused.
    pub launcher: Result<Option<String>, String>,
    /// `git --version`, or why it is not there.
    pub git: String,
    /// Whether WASM tasks run, or why not (a fragment after "failed to").
    pub wasm: Result<(), String>,
    /// The identity sandboxed tasks run as when swarm runs as root.
    pub identity: Option<(u32, u32)>,
    /// swarm's own user id.
    pub euid: u32,
    /// The host's toolchains (when sandboxed runs start).
    pub toolchains: Vec<Toolchain>,
    /// The agent CLIs on the host's PATH (when sandboxed runs start).
    pub agents: Vec<Installed>,
}

/// Probes this machine, starting `host`'s launcher as a run would (on a
/// runtime of its own: not to be called from inside one).
pub fn probe(host: &HostEnv) -> Machine {
    let support = swarm_sandbox::probe::probe();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let git = std::process::Command::new("git")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("not found ({e})"));
    let launcher = support.require().and_then(|()| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(async {
                start_launcher(host)
                    .await
                    .map(|l| l.degraded().map(str::to_string))
            })
            .map_err(|e| crate::error_chain(&e))
    });
    let wasm = swarm_worker::wasm::WasmEngine::new(&swarm_worker::wasm::EngineOptions {
        cache_dir: None,
        concurrency: 1,
        fuel: false,
    })
    .and_then(|engine| engine.self_check())
    .map_err(|e| e.to_string());
    let (toolchains, agents) = match launcher {
        Ok(_) => (
            super::toolchains::detect(host, &crate::plan::Toolchains::All),
            super::agents::installed(host),
        ),
        Err(_) => (Vec::new(), Vec::new()),
    };
    Machine {
        kernel: kernel.trim().to_string(),
        support,
        required_abi: swarm_sandbox::probe::required_abi(),
        cgroups: crate::run::cgroup_support(),
        launcher,
        git,
        wasm,
        identity: swarm_sandbox::worker_identity(),
        euid: nix::unistd::geteuid().as_raw(),
        toolchains,
        agents,
    }
}
