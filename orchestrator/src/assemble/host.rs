//! The facts of the machine a run is put together on, as the front end
//! read them: its environment, home, PATH, the `swarm` binary, its name and
//! CPUs. The library never reads them itself, so a test or another front
//! end decides exactly what a run sees.

use std::collections::HashMap;
use std::path::PathBuf;

/// What swarm reads of the host: a snapshot, so that everything built from
/// it (toolchains found, keys read, worktrees' place) is a pure function
/// of it.
#[derive(Debug, Default, Clone)]
pub struct HostEnv {
    /// `$HOME`, if set.
    pub home: Option<PathBuf>,
    /// The whole environment.
    pub vars: HashMap<String, String>,
    /// `$PATH`, split.
    pub path: Vec<PathBuf>,
    /// The `swarm` binary, re-executed as the sandbox launcher, the agent
    /// worker and a cluster job's program; `None` where there is none (a
    /// run of unconfined command tasks needs none).
    pub exe: Option<PathBuf>,
    /// This machine's name (a cluster's nodes reach the relay by it).
    pub hostname: Option<String>,
    /// CPUs this process may use: the default concurrency.
    pub cpus: usize,
}

impl HostEnv {
    /// A host whose environment is `vars` (home and PATH taken from it),
    /// with one CPU and no `swarm` binary until told.
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let path = vars
            .get("PATH")
            .map(|p| std::env::split_paths(p).collect())
            .unwrap_or_default();
        Self {
            home: vars
                .get("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            vars,
            path,
            exe: None,
            hostname: None,
            cpus: 1,
        }
    }

    /// Variable `name`, if set and not empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Variable `name` as a path, if set and not empty.
    pub fn path_var(&self, name: &str) -> Option<PathBuf> {
        self.var(name).map(PathBuf::from)
    }

    /// The first executable `name` in PATH, as found (not resolved).
    pub fn which(&self, name: &str) -> Option<PathBuf> {
        self.path
            .iter()
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|p| {
                use std::os::unix::fs::PermissionsExt as _;
                p.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    }

    /// Variable `name` as an absolute path, if it is one.
    pub fn abs_path(&self, name: &str) -> Option<PathBuf> {
        self.var(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    }

    /// The user's cache directory: `$XDG_CACHE_HOME`, else `~/.cache`.
    pub fn cache_home(&self) -> Option<PathBuf> {
        self.abs_path("XDG_CACHE_HOME")
            .or_else(|| self.abs_path("HOME").map(|h| h.join(".cache")))
    }

    /// The `swarm` binary, which the run needs `what` for.
    pub(super) fn program(&self, what: &'static str) -> Result<PathBuf, super::SetupError> {
        self.exe
            .clone()
            .ok_or(super::SetupError::NoProgram { what })
    }

    /// The variables workers get: the sandbox's allowlist and the locale
    /// (never a key), sorted.
    pub fn worker_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .vars
            .iter()
            .filter(|(k, _)| passed_to_workers(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.sort();
        env
    }
}

/// Whether variable `name` of swarm's environment reaches workers.
fn passed_to_workers(name: &str) -> bool {
    swarm_sandbox::ENV_ALLOWLIST.contains(&name) || name.starts_with("LC_")
}
