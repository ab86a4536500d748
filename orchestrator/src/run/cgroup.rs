//! Per-task cgroups, when the machine lets swarm make them: a task's
//! `memory` becomes a limit on all of its processes together (not only on
//! each one's address space), its `processes` a `pids.max`, and a task the
//! kernel killed for memory is reported as such.
//!
//! cgroup v2 is used when swarm's own cgroup delegates the memory and pids
//! controllers to its children; otherwise the v1 memory and pids
//! hierarchies, when they are writable (as for root on many machines). With
//! neither, tasks run under rlimits only. The worker joins its cgroups
//! itself, before anything of it runs, through `cgroup.procs` files the
//! coordinator opened (see `swarm_sandbox::Policy::cgroups`).

#![allow(
    clippy::disallowed_methods,
    reason = "the kernel's cgroup files of the run's own cgroups: no task is shown them writable"
)]

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

/// Where swarm makes cgroups for this run.
#[derive(Debug)]
enum Hierarchy {
    /// One directory; memory and pids controllers in it.
    V2(PathBuf),
    /// The memory and the pids hierarchy.
    V1 { memory: PathBuf, pids: PathBuf },
}

/// The run's parent cgroups, removed when the run ends.
#[derive(Debug)]
pub(crate) struct Cgroups {
    hierarchy: Hierarchy,
}

/// One attempt's cgroups (or the run's shared one for unconfined tasks
/// without limits), removed when dropped (once its processes are gone).
#[derive(Debug)]
pub(crate) struct TaskCgroup {
    dirs: Vec<PathBuf>,
    procs: Vec<File>,
    /// The pids cgroup: its `cgroup.procs` lists every member.
    pids: PathBuf,
    memory: PathBuf,
    v2: bool,
    /// A process moved in whole ([`TaskCgroup::adopt`]): spared by the
    /// kills, moved back out before the cgroup is removed.
    adopted: Option<u32>,
    /// The move of `adopted`, made on a thread of its own.
    adoption: Option<Adoption>,
}

/// A move of a process into a cgroup, made on a thread of its own: the
/// first migration into a fresh cgroup waits for an RCU grace period (8-15
/// ms here), which the run's first setup (a read-only checkout, a
/// worktree) spends better than waiting.
#[derive(Debug)]
struct Adoption {
    /// `Some(moved)` once the thread is done.
    done: tokio::sync::watch::Receiver<Option<bool>>,
    thread: std::thread::JoinHandle<()>,
}

/// This process's cgroup path in the hierarchy `/proc/self/cgroup` lists
/// as `field` ("" for v2, else a controller name).
fn own_path(field: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if field.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == field)
        };
        matches.then(|| path.to_string())
    })
}

/// Removes the cgroups of swarm coordinators that died without removing
/// them (kill -9): `swarm-<run>-<pid>` directories, under `parent`, whose
/// pid is gone. Only empty cgroups can be removed, so nothing alive is hit.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("swarm-")
            .and_then(|rest| rest.rsplit('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        if let Ok(tasks) = std::fs::read_dir(&dir) {
            for task in tasks.flatten().filter(|t| t.path().is_dir()) {
                let _ = std::fs::remove_dir(task.path());
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
}

fn under(root: &str, path: &str, name: &str) -> PathBuf {
    Path::new(root)
        .join(path.trim_start_matches('/'))
        .join(name)
}

impl Cgroups {
    /// Which cgroups tasks would get on this machine, for `swarm doctor`:
    /// `Some("v2")`, `Some("v1")`, or `None` (rlimits only).
    pub fn probe() -> Option<&'static str> {
        let probe = Self::new("probe")?;
        Some(match probe.hierarchy {
            Hierarchy::V2(_) => "v2",
            Hierarchy::V1 { .. } => "v1",
        })
    }

    /// The run's cgroups, named after `tag`, if the machine allows them.
    pub fn new(tag: &str) -> Option<Self> {
        let name = format!("swarm-{tag}-{}", std::process::id());
        if let Some(path) = own_path("") {
            let dir = under("/sys/fs/cgroup", &path, &name);
            if let Some(parent) = dir.parent() {
                remove_stale(parent);
            }
            if std::fs::create_dir(&dir).is_ok() {
                let controllers =
                    std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
                if has("memory")
                    && has("pids")
                    && std::fs::write(dir.join("cgroup.subtree_control"), "+memory +pids").is_ok()
                {
                    return Some(Self {
                        hierarchy: Hierarchy::V2(dir),
                    });
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
        let memory = under("/sys/fs/cgroup/memory", &own_path("memory")?, &name);
        let pids = under("/sys/fs/cgroup/pids", &own_path("pids")?, &name);
        for dir in [&memory, &pids] {
            if let Some(parent) = dir.parent() {
                remove_stale(parent);
            }
        }
        std::fs::create_dir(&memory).ok()?;
        if std::fs::create_dir(&pids).is_err() {
            let _ = std::fs::remove_dir(&memory);
            return None;
        }
        Some(Self {
            hierarchy: Hierarchy::V1 { memory, pids },
        })
    }

    /// Cgroups for attempt `name` with these limits (`None`: unlimited).
    pub fn task(
        &self,
        name: &str,
        memory: Option<u64>,
        processes: Option<u64>,
    ) -> std::io::Result<TaskCgroup> {
        let (memory_dir, pids_dir, v2) = match &self.hierarchy {
            Hierarchy::V2(dir) => (dir.join(name), dir.join(name), true),
            Hierarchy::V1 { memory, pids } => (memory.join(name), pids.join(name), false),
        };
        let mut dirs = vec![memory_dir.clone()];
        if pids_dir != memory_dir {
            dirs.push(pids_dir.clone());
        }
        for dir in &dirs {
            // A leftover of a crashed run of the same name and pid is empty.
            let _ = std::fs::remove_dir(dir);
            std::fs::create_dir(dir)?;
        }
        let cgroup = TaskCgroup {
            dirs: dirs.clone(),
            procs: Vec::new(),
            pids: pids_dir.clone(),
            memory: memory_dir.clone(),
            v2,
            adopted: None,
            adoption: None,
        };
        if let Some(bytes) = memory {
            let file = if v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            std::fs::write(memory_dir.join(file), bytes.to_string())?;
            if v2 {
                // Swapping would only delay the limit.
                let _ = std::fs::write(memory_dir.join("memory.swap.max"), "0");
            }
        }
        let max = processes.map_or_else(|| "max".to_string(), |n| n.to_string());
        std::fs::write(pids_dir.join("pids.max"), max)?;
        let mut cgroup = cgroup;
        for dir in &dirs {
            cgroup.procs.push(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))?,
            );
        }
        Ok(cgroup)
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        match &self.hierarchy {
            Hierarchy::V2(dir) => {
                let _ = std::fs::remove_dir(dir);
            }
            Hierarchy::V1 { memory, pids } => {
                let _ = std::fs::remove_dir(memory);
                let _ = std::fs::remove_dir(pids);
            }
        }
    }
}

impl TaskCgroup {
    /// The `cgroup.procs` files the worker writes itself into.
    pub fn fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Moves process `pid` (a launcher of the run's commands) into the
    /// cgroup, so that everything it starts from now on is in it without
    /// joining it itself: a cgroup migration per command costs more than
    /// the command's own start (two in a v1 hierarchy). The process is not
    /// killed with the cgroup's members; it goes back to the cgroup it came
    /// from (the coordinator's) before the cgroup is removed.
    ///
    /// The move is made on a thread of its own; [`TaskCgroup::holds_launcher`]
    /// waits for it. An error here means it was not started.
    pub fn adopt(&mut self, pid: u32) -> std::io::Result<()> {
        use std::io::Write as _;
        let files = self
            .procs
            .iter()
            .map(File::try_clone)
            .collect::<std::io::Result<Vec<_>>>()?;
        let (tx, done) = tokio::sync::watch::channel(None);
        let thread = std::thread::Builder::new()
            .name("swarm-cgroup".into())
            .spawn(move || {
                let moved = files
                    .into_iter()
                    .try_for_each(|mut procs| procs.write_all(pid.to_string().as_bytes()));
                if let Err(e) = &moved {
                    tracing::debug!(error = %e, "the launcher stays out of the cgroup of unconfined tasks; each joins it");
                }
                let _ = tx.send(Some(moved.is_ok()));
            })?;
        self.adopted = Some(pid);
        self.adoption = Some(Adoption { done, thread });
        Ok(())
    }

    /// Whether a process was moved in with [`TaskCgroup::adopt`], once its
    /// move is done.
    pub async fn holds_launcher(&self) -> bool {
        let Some(adoption) = &self.adoption else {
            return false;
        };
        let mut done = adoption.done.clone();
        done.wait_for(Option::is_some)
            .await
            .is_ok_and(|moved| *moved == Some(true))
    }

    /// The member list, for a watcher to kill what is left in the cgroup
    /// when the coordinator dies.
    pub fn members(&self) -> PathBuf {
        self.pids.join("cgroup.procs")
    }

    /// Kills every process still in the cgroup: what a task left behind
    /// outside its process group (`setsid`, a daemon). A member may fork
    /// while the list is read: the kill goes round until it is empty.
    fn kill_all(&self) {
        for _ in 0..100 {
            let Ok(text) = std::fs::read_to_string(self.pids.join("cgroup.procs")) else {
                return;
            };
            let spared = self.adopted.and_then(|p| i32::try_from(p).ok());
            let pids: Vec<i32> = text
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .filter(|&pid| Some(pid) != spared)
                .collect();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// How many processes of the task the kernel has killed for memory so
    /// far: the cgroup's own count, which does not depend on how (or
    /// whether) the task's shell reported the kill. Read once nothing of
    /// the task runs any more ([`Self::empty`]), it is final.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = if self.v2 {
            ("memory.events", "oom_kill")
        } else {
            ("memory.oom_control", "oom_kill")
        };
        std::fs::read_to_string(self.memory.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
            .sum()
    }

    /// A reader of the CPU time the task's processes have used so far
    /// (microseconds on cgroup v2, from `cpu.stat`; clock ticks on v1,
    /// summed over its members' `/proc/<pid>/stat`, their reaped children
    /// included), for a stall watch: `None` when it cannot be read.
    pub fn cpu_reader(&self) -> impl Fn() -> Option<u64> + Send + Sync + 'static {
        let (v2, memory, procs) = (self.v2, self.memory.clone(), self.members());
        move || match v2 {
            true => std::fs::read_to_string(memory.join("cpu.stat"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec")?.trim().parse().ok()),
            false => {
                let members = std::fs::read_to_string(&procs).ok()?;
                let mut ticks = 0u64;
                for pid in members.lines().map(str::trim).filter(|p| !p.is_empty()) {
                    // A member gone since the list was read adds nothing.
                    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                        continue;
                    };
                    // After the command name, which may hold spaces: state
                    // is field 3, utime..cstime fields 14 to 17.
                    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                    ticks += rest
                        .split_whitespace()
                        .skip(11)
                        .take(4)
                        .filter_map(|f| f.parse::<u64>().ok())
                        .sum::<u64>();
                }
                Some(ticks)
            }
        }
    }

    /// Kills whatever is still in the cgroup and waits until it is empty.
    pub fn empty(&self) {
        self.kill_all();
    }
}

impl Drop for TaskCgroup {
    /// Whatever the task (or the run's unconfined tasks) left running goes
    /// first, on every path: an attempt's end, the run's, an error.
    fn drop(&mut self) {
        // A move still under way ends first: the process must not be moved
        // back before it is in, nor left in a cgroup about to be removed.
        // It goes back whether or not the move said it succeeded: in a v1
        // hierarchy it may be in one of the two cgroups only, and moving a
        // process back where it already is changes nothing.
        if let Some(adoption) = self.adoption.take() {
            let _ = adoption.thread.join();
        }
        self.kill_all();
        self.procs.clear();
        if let Some(pid) = self.adopted {
            // Back where the coordinator is (the run's directory's parent);
            // a launcher that is gone already needs nothing.
            for dir in &self.dirs {
                if let Some(home) = dir.parent().and_then(Path::parent) {
                    let _ = std::fs::write(home.join("cgroup.procs"), pid.to_string());
                }
            }
        }
        for dir in &self.dirs {
            // The last processes may still be on their way out.
            for _ in 0..50 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
            }
        }
    }
}
