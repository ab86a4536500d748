//! `swarm doctor`: what this machine supports for sandboxing and what swarm
//! enforces.

use std::path::{Path, PathBuf};

use swarm_orchestrator::exit;
use swarm_orchestrator::run;

use crate::Failure;

mod model;

/// `swarm doctor`'s command line.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Ask model NAME of the planner's configuration (the repository's
    /// swarm.toml, else ~/.config/swarm/swarm.toml) whether it answers,
    /// holds an answer to a JSON schema and calls a tool.
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// The configuration to read the model from (a file named here is
    /// yours, trusted).
    #[arg(long, value_name = "FILE", requires = "model")]
    config: Option<PathBuf>,
    /// Trust the repository's own swarm.toml for this check.
    #[arg(long, requires = "model")]
    trust: bool,
}

/// `swarm doctor`, or `swarm doctor --model NAME`.
pub(crate) fn cmd_doctor(cwd: &Path, args: DoctorArgs) -> Result<i32, Failure> {
    match args.model {
        None => doctor(),
        Some(model) => model::doctor_model(cwd, &model, args.config.as_deref(), args.trust),
    }
}

/// `swarm doctor`: what this machine supports and what swarm will enforce.
pub(crate) fn doctor() -> Result<i32, Failure> {
    let support = swarm_sandbox::probe::probe();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let git = std::process::Command::new("git")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("not found ({e})"));
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("kernel            {}", kernel.trim());
    match support.landlock_abi {
        Some(abi) => println!(
            "landlock          ABI {abi} (swarm needs {})",
            swarm_sandbox::probe::required_abi()
        ),
        None => println!(
            "landlock          unavailable: {}",
            support.landlock_error.as_deref().unwrap_or("unknown")
        ),
    }
    println!("seccomp           {}", yes(support.seccomp));
    match run::cgroup_support() {
        Some(version) => println!(
            "cgroups           {version}: a task's `memory` and `processes` limit all of its processes together"
        ),
        None => println!(
            "cgroups           unavailable: `memory` limits each process's address space, `processes` through the PID namespace"
        ),
    }
    // Whether the namespace layer works is only known by trying it: sysctls
    // do not show an AppArmor or container policy that refuses it.
    let launcher = support.require().and_then(|()| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(async {
                swarm_orchestrator::assemble::start_launcher(&crate::host::current())
                    .await
                    .map(|l| l.degraded().map(str::to_string))
            })
            .map_err(|e| swarm_orchestrator::error_chain(&e))
    });
    match &launcher {
        Ok(None) => println!(
            "namespaces        yes: user, mount, PID and network namespaces per task (namespace layer on)"
        ),
        Ok(Some(why)) => println!(
            "namespaces        no ({why}): Landlock + seccomp baseline only (chmod/utime/xattr outside the worktree not blocked)"
        ),
        Err(_) => println!("namespaces        not tried"),
    }
    println!("git               {git}");
    let wasm = swarm_worker::wasm::WasmEngine::new(&swarm_worker::wasm::EngineOptions {
        cache_dir: None,
        concurrency: 1,
        fuel: false,
    })
    .and_then(|engine| engine.self_check());
    match wasm {
        Ok(()) => println!(
            "wasmtime          {}: WASM tasks run (WASI preview 1 modules, preview 2 command components)",
            swarm_worker::wasm::WASMTIME
        ),
        Err(e) => println!("wasmtime          WASM tasks cannot run: failed to {e}"),
    }
    match launcher {
        Ok(_) => {
            println!("\nswarm enforces, for every sandboxed task:");
            println!(
                "  files      write only in the task's worktree, private tmp (also HOME, TMPDIR) and build caches;"
            );
            println!(
                "             in the worktree, only its `paths` and `creates` when it names them"
            );
            println!(
                "             read the system directories, a view of the repository's .git (objects,"
            );
            println!("             no config, no refs), nothing else of it; no set-user-ID files");
            println!(
                "             (namespace layer) a root file system of these paths only: no host sockets;"
            );
            println!("             all else read-only, metadata included, every mount nosuid");
            match swarm_sandbox::worker_identity() {
                Some((uid, gid)) => println!(
                    "  identity   uid {uid}, gid {gid} (nobody), no supplementary groups: swarm runs as root"
                ),
                None => println!(
                    "  identity   your own user (uid {}), no capabilities",
                    nix::unistd::geteuid()
                ),
            }
            println!("  network    none: no TCP (Landlock), no sockets but Unix ones (seccomp);");
            println!(
                "             an agent CLI's task: TCP to one port on a loopback of its own (the gateway), nothing else;"
            );
            println!(
                "             a task with a list of hosts: TCP to swarm's egress proxy there, which lets through those hosts only"
            );
            println!(
                "  processes  no signals or ptrace out of the sandbox, no namespaces, io_uring, bpf,"
            );
            println!(
                "             keyrings, mounts, TIOCSTI; no capabilities, no_new_privs; rlimits"
            );
            println!("  env        only PATH, locale, TERM, TZ and the task's own variables");
            println!(
                "\ntoolchains of this environment, granted to sandboxed tasks unless a plan's `toolchains` says otherwise:"
            );
            let found = swarm_orchestrator::assemble::toolchains::detect(
                &crate::host::current(),
                &swarm_orchestrator::plan::Toolchains::All,
            );
            crate::output::print_grants(&[], &found, None);
            println!(
                "\nagent CLIs on PATH (`agent = \"claude-code\"` / `\"codex\"`; each runs sandboxed, its key kept out):"
            );
            for cli in swarm_orchestrator::assemble::agents::installed(&crate::host::current()) {
                match cli.found {
                    Some((path, version)) => {
                        println!("  {:<12} {version} ({})", cli.kind.name(), path.display())
                    }
                    None => println!(
                        "  {:<12} not found (`{}` is not on PATH)",
                        cli.kind.name(),
                        cli.name
                    ),
                }
            }
            Ok(exit::SUCCESS)
        }
        Err(why) => {
            println!("\nsandboxed runs are REFUSED on this machine: {why}");
            println!("only `sandbox = \"none\"` (no confinement at all) can run here");
            Ok(exit::TASKS_FAILED)
        }
    }
}
