//! The host as this process sees it: the one place the CLI reads its
//! environment for a run, handed to the library as a `HostEnv`.

use swarm_orchestrator::assemble::HostEnv;

/// This process's environment (variables that are not UTF-8 are left
/// out: no key or path swarm uses can be one), binary, host name and CPUs.
pub fn current() -> HostEnv {
    let vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let mut host = HostEnv::new(vars);
    host.exe = std::env::current_exe().ok();
    host.hostname = hostname();
    host.cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    host
}

/// This machine's name, as the kernel has it.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}
