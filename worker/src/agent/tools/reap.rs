//! Finding and killing whatever a bash command left running.
//!
//! The sandbox forbids process groups (`setpgid`, `setsid`), so a command's
//! processes are found in `/proc` instead. Each command runs with a tag in
//! its environment, which its descendants inherit; the agent is a child
//! subreaper, so processes orphaned by the command's shell are reparented to
//! it rather than to init and stay findable. A process is the command's when
//! it descends from the agent and it, or an ancestor below the agent, is the
//! command's shell, carries the tag, or holds the command's output pipe
//! (which catches an orphan that cleared its environment but would keep the
//! output open). Other children of the agent (another test's, in a test
//! binary) are left alone.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// The environment variable that tags a command's processes.
pub(crate) const TAG_VAR: &str = "SWARM_AGENT_COMMAND";

/// Held shared by each of the agent's spawns from its fork to its `execve`
/// ([`spawning`]), and whole by the search for a command's leftovers while
/// it looks at `/proc`: a fork of the agent holds a copy of every fd of the
/// agent's, another command's output pipe among them, until its `execve`
/// closes them, and was taken for one of that command's processes. Its
/// program and arguments, and then its tag, tell most such forks apart
/// (see `Walk::starting_another`); an untagged program (an MCP server) in
/// the middle of its `execve` could not be told.
static SPAWNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// To hold while the agent spawns a process (see [`SPAWNS`]).
pub(crate) fn spawning() -> std::sync::RwLockReadGuard<'static, ()> {
    SPAWNS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Scans of `/proc` at most: a command forking as fast as it is killed
/// must not hold the agent forever.
const ROUNDS: usize = 200;
/// How deep below the agent a process tree is followed.
const MAX_DEPTH: usize = 128;

/// What marks the processes of one command.
pub(crate) struct Mark {
    /// The value of [`TAG_VAR`] in the command's environment.
    pub(crate) tag: String,
    /// How `/proc/<pid>/fd/*` links name the command's output pipe.
    pipe: Option<String>,
}

impl Mark {
    /// A mark no other command of this process has had.
    pub(crate) fn new() -> Mark {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tag = format!(
            "{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Mark { tag, pipe: None }
    }

    /// Records the command's output pipe.
    pub(crate) fn pipe(&mut self, pipe: impl std::os::fd::AsFd) {
        self.pipe = nix::sys::stat::fstat(pipe)
            .ok()
            .map(|stat| format!("pipe:[{}]", stat.st_ino));
    }
}

/// SIGKILLs every process of the command marked `mark` and reaps those that
/// end up as the agent's children, until none is left. `shell` is the
/// command's shell while it is still unreaped: it is killed but not reaped,
/// as its `Child` handle will do that.
pub(crate) fn kill_leftovers(mark: &Mark, shell: Option<u32>) {
    let me = std::process::id() as i32;
    let entry = format!("{TAG_VAR}={}", mark.tag).into_bytes();
    let shell = shell.and_then(|pid| i32::try_from(pid).ok());
    // Processes seen as the command's: once they are zombies their
    // environment can no longer be read.
    let mut known = HashSet::new();
    let agent = Agent::read();
    for _ in 0..ROUNDS {
        // No fork of the agent between its fork and its `execve` while
        // `/proc` is read and its processes told apart; one made after is
        // not among them, and only those are killed.
        let quiet = SPAWNS
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let procs = scan();
        let mut classes = HashMap::new();
        let mut to_kill = Vec::new();
        let mut to_reap = Vec::new();
        for (&pid, proc) in &procs {
            let class = Walk {
                procs: &procs,
                me,
                shell,
                entry: &entry,
                pipe: mark.pipe.as_deref(),
                known: &known,
                agent: &agent,
            }
            .classify(pid, 0, &mut classes);
            if class != Class::Ours {
                continue;
            }
            if !proc.zombie {
                to_kill.push(pid);
            } else if proc.ppid == me && Some(pid) != shell {
                to_reap.push(pid);
            }
        }
        drop(quiet);
        if to_kill.is_empty() && to_reap.is_empty() {
            return;
        }
        for &pid in &to_kill {
            known.insert(pid);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for pid in to_reap {
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            // The pid may now be reused by a process that is not ours.
            known.remove(&pid);
        }
        if !to_kill.is_empty() {
            // SIGKILL is delivered asynchronously; give the victims a moment
            // to die and their children to be reparented.
            thread::sleep(Duration::from_millis(2));
        }
    }
}

struct Proc {
    ppid: i32,
    zombie: bool,
}

/// Every process in `/proc`, by pid.
fn scan() -> HashMap<i32, Proc> {
    let mut procs = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return procs;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        // A process may exit between the listing and the read.
        if let Some(proc) = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| parse_stat(&stat))
        {
            procs.insert(pid, proc);
        }
    }
    procs
}

/// The state and parent from `/proc/<pid>/stat`. The command name is in
/// parentheses and may itself hold spaces and parentheses, so the fields
/// are read after the last `)`.
fn parse_stat(stat: &str) -> Option<Proc> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Proc {
        ppid,
        zombie: state == "Z" || state == "X",
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Not below the agent: never touched.
    Foreign,
    /// Below the agent but not the command's.
    Other,
    Ours,
}

struct Walk<'a> {
    procs: &'a HashMap<i32, Proc>,
    me: i32,
    shell: Option<i32>,
    entry: &'a [u8],
    pipe: Option<&'a str>,
    known: &'a HashSet<i32>,
    agent: &'a Agent,
}

/// The agent's own program and arguments, as `/proc` shows them.
struct Agent {
    exe: Option<std::path::PathBuf>,
    cmdline: Option<Vec<u8>>,
}

impl Agent {
    fn read() -> Self {
        Agent {
            exe: fs::read_link("/proc/self/exe").ok(),
            cmdline: fs::read("/proc/self/cmdline").ok(),
        }
    }

    /// Whether child `pid` is a fork of the agent that has not exec'd yet
    /// (its program and arguments are still the agent's).
    fn unexeced_fork(&self, pid: i32) -> bool {
        self.exe.is_some()
            && self.cmdline.is_some()
            && fs::read_link(format!("/proc/{pid}/exe")).ok() == self.exe
            && fs::read(format!("/proc/{pid}/cmdline")).ok() == self.cmdline
    }
}

impl Walk<'_> {
    fn classify(&self, pid: i32, depth: usize, classes: &mut HashMap<i32, Class>) -> Class {
        if let Some(&class) = classes.get(&pid) {
            return class;
        }
        let Some(proc) = self.procs.get(&pid) else {
            return Class::Foreign;
        };
        let parent = if proc.ppid == self.me {
            Class::Other
        } else if proc.ppid <= 1 || depth >= MAX_DEPTH {
            Class::Foreign
        } else {
            self.classify(proc.ppid, depth + 1, classes)
        };
        let class = match parent {
            Class::Other
                if Some(pid) == self.shell
                    || self.known.contains(&pid)
                    || self.tagged(pid)
                    || (self.holds_pipe(pid) && !self.starting_another(pid, proc)) =>
            {
                Class::Ours
            }
            class => class,
        };
        classes.insert(pid, class);
        class
    }

    /// Whether `pid`, found holding this command's output pipe, is
    /// rather another command on its way from the agent: a fork of the
    /// agent holds a copy of every fd of the agent's until its `execve`
    /// closes them. Asked after the pipe was seen: a fork that had not
    /// exec'd then either still has not, or by now shows its new program
    /// and environment, another command's tag in it.
    fn starting_another(&self, pid: i32, proc: &Proc) -> bool {
        proc.ppid == self.me && (self.agent.unexeced_fork(pid) || self.tagged_otherwise(pid))
    }

    /// Whether `pid` carries another command's tag.
    fn tagged_otherwise(&self, pid: i32) -> bool {
        let prefix = format!("{TAG_VAR}=");
        fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
            environ
                .split(|&b| b == 0)
                .any(|var| var.starts_with(prefix.as_bytes()) && var != self.entry)
        })
    }

    fn tagged(&self, pid: i32) -> bool {
        fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|environ| environ.split(|&b| b == 0).any(|var| var == self.entry))
    }

    fn holds_pipe(&self, pid: i32) -> bool {
        let Some(pipe) = self.pipe else {
            return false;
        };
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == pipe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_parsed() {
        let proc = parse_stat("42 (a (weird) name) S 7 42 42 0 -1").unwrap();
        assert_eq!((proc.ppid, proc.zombie), (7, false));
        let proc = parse_stat("43 (sh) Z 1 43").unwrap();
        assert!(proc.zombie);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn tags_are_unique() {
        assert_ne!(Mark::new().tag, Mark::new().tag);
    }

    #[test]
    fn only_tagged_descendants_are_ours() {
        let me = 100;
        let procs: HashMap<i32, Proc> = [
            (200, 100, false), // the shell
            (201, 200, false), // its child, env cleared: ours through the shell
            (300, 100, false), // another child of the agent, untagged
            (301, 300, true),  // its zombie child
            (400, 1, false),   // not below the agent
            (500, 100, true),  // a zombie we killed earlier
        ]
        .into_iter()
        .map(|(pid, ppid, zombie)| (pid, Proc { ppid, zombie }))
        .collect();
        let known = HashSet::from([500]);
        let agent = Agent::read();
        let walk = Walk {
            procs: &procs,
            me,
            shell: Some(200),
            entry: b"X=never-present",
            pipe: None,
            known: &known,
            agent: &agent,
        };
        let mut classes = HashMap::new();
        let class = |pid| walk.classify(pid, 0, &mut classes.clone());
        assert_eq!(class(200), Class::Ours);
        assert_eq!(class(201), Class::Ours);
        assert_eq!(class(300), Class::Other);
        assert_eq!(class(301), Class::Other);
        assert_eq!(class(400), Class::Foreign);
        assert_eq!(class(500), Class::Ours);
        assert_eq!(class(999), Class::Foreign);
        assert_eq!(walk.classify(201, 0, &mut classes), Class::Ours);
    }
}
