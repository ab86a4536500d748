//! When a sandboxed task fails, whether the sandbox may be why, said as
//! the grant that would allow what it tried (never granting anything):
//!
//! - a path it could not open (`No such file or directory`, `ENOENT`,
//!   `Permission denied`, `EACCES`) that exists on this machine outside
//!   what the task is shown: `read_paths`;
//! - a path it could not write (`Read-only file system`, `EROFS`) outside
//!   its worktree, which the sandbox shows read-only (the system's
//!   directories, `read_paths`): where it may write instead (the worktree,
//!   its `$TMPDIR`); writes inside its worktree are `owned_paths`' to say;
//! - a connection it could not make (a name it could not resolve, a
//!   network it could not reach) with no network: `network`. One of these
//!   is the sandbox's own mark rather than a tool's wording: its seccomp
//!   filter answers a socket of a family the task's network does not give
//!   with EAFNOSUPPORT ("Address family not supported by protocol"), which
//!   a task's world otherwise almost never says (a kernel without IPv6
//!   would), so a line that shows it is said as the sandbox's refusal.
//!
//! Read from the end of its output, as tools print these (`curl`, `npm`,
//! `pip`, `git`, Python's and Node's own messages), as Codex's CLI does by
//! heuristics on output. The task's output is the task's: what it names is
//! only looked at (its metadata, nothing opened, no path with `..`
//! followed) and quoted back escaped, at most a few paths.

use std::path::{Path, PathBuf};

use crate::plan::{Task, TaskNetwork};

/// Most paths named in one hint.
const MAX_PATHS: usize = 3;

/// A task's own `/dev`, `/proc` and `/sys`, which are not the host's.
const PRIVATE: [&str; 3] = ["/dev", "/proc", "/sys"];

/// Where the book says more.
const BOOK: &str = "see the book's Sandbox chapter";

/// Words of the lines that say a path could not be opened.
const PATH_REFUSALS: &[&str] = &[
    "No such file or directory",
    "ENOENT",
    "Permission denied",
    "EACCES",
];

/// Words of the lines that say a connection could not be made.
const NETWORK_FAILURES: &[&str] = &[
    "Could not resolve host",
    "Couldn't resolve host",
    "Couldn't connect to server",
    "Failed to connect to",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "getaddrinfo ENOTFOUND",
    "getaddrinfo EAI_AGAIN",
    "EAI_AGAIN",
    "ENETUNREACH",
    "Failed to establish a new connection",
    "Could not resolve hostname",
    "nodename nor servname",
    "dial tcp: lookup",
    NO_FAMILY,
    NO_FAMILY_CODE,
];

/// How the sandbox's seccomp filter answers a network socket the task's
/// network does not give it (`strerror(EAFNOSUPPORT)`, and its name).
const NO_FAMILY: &str = "Address family not supported by protocol";
const NO_FAMILY_CODE: &str = "EAFNOSUPPORT";

/// What a sandboxed task whose output ends with `output` is shown of this
/// machine: besides these roots (its read-only grants) and its writable
/// ones (build caches), its
/// worktree and its own tmp, nothing.
#[derive(Debug)]
pub(crate) struct Shown<'a> {
    /// Paths it may read: the system's, the toolchains', `read_paths`.
    pub roots: &'a [PathBuf],
    /// Paths it may write outside its worktree: the build caches.
    pub writable: &'a [PathBuf],
    /// Swarm's own places whose paths a task sees differently (its
    /// worktree, its run's directory, the worktree home).
    pub own: &'a [&'a Path],
}

/// Why the sandbox may have failed `task` (whose output ends with
/// `output`), as the grant that would allow it; `None` when nothing in
/// the output points at the sandbox.
pub(crate) fn sandbox_hint(task: &Task, shown: &Shown<'_>, output: &str) -> Option<String> {
    let mut hints = Vec::new();
    let hidden = hidden_paths(shown, output);
    if !hidden.is_empty() {
        hints.push(format!(
            "the sandbox hides {} (it exists on this machine, outside what the task is shown): to let it read there, add `read_paths = [{}]` to [swarm] ({BOOK}, \"read_paths\")",
            quoted(&hidden, '`'),
            quoted(&hidden, '"')
        ));
    }
    let read_only = read_only_paths(shown, output);
    if !read_only.is_empty() {
        hints.push(format!(
            "the sandbox shows {} read-only (what a task may read outside its worktree, `read_paths` included, it may not change): write in its worktree or `$TMPDIR` instead, or make what tasks share in a `[setup]` step ({BOOK}, \"Threat model\")",
            quoted(&read_only, '`')
        ));
    }
    if task.network == TaskNetwork::None
        && let Some(failed) = network_failure(output)
    {
        let grant = match &failed.host {
            Some(host) => format!("`network = [\"{}\"]`", crate::escape::line(host)),
            None => "`network = [\"host\"]` with the hosts it needs".to_string(),
        };
        let how = if failed.refused_by_sandbox {
            "the sandbox refused it a network socket: `Address family not supported` is its answer"
        } else {
            "it could not reach a host"
        };
        // A refused socket that named no host may be a netlink or packet
        // socket (`ip`, a listing of interfaces), which no host list gives.
        let netlink = if failed.refused_by_sandbox && failed.host.is_none() {
            "; a netlink or packet socket (`ip`, a listing of interfaces) only `network = \"full\"` gives"
        } else {
            ""
        };
        hints.push(format!(
            "the task has no network ({how}): to let it, give it {grant}, or `network = \"full\"` ({BOOK}, \"Network by allow-list\"){netlink}"
        ));
    }
    (!hints.is_empty()).then(|| hints.join("; "))
}

/// `paths`, each escaped and between `quote`s, joined by commas.
fn quoted(paths: &[PathBuf], quote: char) -> String {
    let said: Vec<String> = paths
        .iter()
        .map(|p| {
            format!(
                "{quote}{}{quote}",
                crate::escape::line(&p.display().to_string())
            )
        })
        .collect();
    said.join(", ")
}

/// The absolute paths `lines` name that `keep` (given the line and the
/// path) keeps, each once, at most [`MAX_PATHS`].
fn paths_named<'o>(
    lines: impl Iterator<Item = &'o str>,
    keep: impl Fn(&str, &Path) -> bool,
) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for line in lines {
        for word in absolute_words(line) {
            let path = PathBuf::from(word);
            if found.contains(&path) || !keep(line, &path) {
                continue;
            }
            found.push(path);
            if found.len() == MAX_PATHS {
                return found;
            }
        }
    }
    found
}

/// The absolute paths `output`'s refusal lines name that exist here but
/// outside what the task is shown, at most [`MAX_PATHS`].
fn hidden_paths(shown: &Shown<'_>, output: &str) -> Vec<PathBuf> {
    let lines = output
        .lines()
        .filter(|l| PATH_REFUSALS.iter().any(|w| l.contains(w)));
    paths_named(lines, |_, path| hidden(shown, path))
}

/// The absolute paths outside swarm's own places that `output`'s lines
/// say could not be written, at most [`MAX_PATHS`]: for a read-only file
/// system (in a sandboxed task every such path is one it is shown
/// read-only; one it is not shown at all is `No such file or directory`),
/// or refused (`Permission denied`, as Landlock refuses a write) below a
/// read-only grant where a read would have been allowed.
fn read_only_paths(shown: &Shown<'_>, output: &str) -> Vec<PathBuf> {
    let read_only = |line: &str| line.contains("Read-only file system") || line.contains("EROFS");
    let refused = |line: &str| line.contains("Permission denied") || line.contains("EACCES");
    let lines = output
        .lines()
        .filter(|l| read_only(l) || refused(l))
        .map(without_program);
    paths_named(lines, |line, path| {
        !climbs(path)
            && !PRIVATE.iter().any(|p| path.starts_with(p))
            && !shown.own.iter().any(|o| path.starts_with(o))
            && (read_only(line) || written_where_it_reads(shown, path))
    })
}

/// Whether `path` has a `..`, which a lexical check of where it is
/// (below a grant, outside swarm's places) would not see through.
fn climbs(path: &Path) -> bool {
    path.components()
        .any(|c| c == std::path::Component::ParentDir)
}

/// `line` without the program that says it, when it starts with one
/// (`/bin/sh: 1: cannot create ...`: a first word that ends in `:` and
/// names a program on this machine by an absolute path), so that its path
/// is not taken for what it could not write.
pub(crate) fn without_program(line: &str) -> &str {
    use std::os::unix::fs::PermissionsExt as _;
    match line.split_once(char::is_whitespace) {
        Some((first, rest)) if first.ends_with(':') => {
            let path = Path::new(first.trim_end_matches(':'));
            // Its link followed (`/bin/sh` is one to a shell): a program
            // is looked for, nothing opened.
            #[allow(
                clippy::disallowed_methods,
                reason = "only whether a path the output named is a program here: nothing opened"
            )]
            let program = path.is_absolute()
                && !climbs(path)
                && std::fs::metadata(path)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if program { rest } else { line }
        }
        _ => line,
    }
}

/// Whether a `Permission denied` on `path` was a write where the task
/// may only read (Landlock's refusal): `path` is below a read-only grant
/// and everyone may read it (or it does not exist: a file it tried to
/// make). A file others may not read was refused for its mode, not the
/// sandbox (`swarm doctor` names such files in toolchains); so is one in a
/// build cache, which a task may write (Go's module cache is read-only
/// by its modes).
fn written_where_it_reads(shown: &Shown<'_>, path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    if !shown.roots.iter().any(|r| path.starts_with(r))
        || shown.writable.iter().any(|w| path.starts_with(w))
    {
        return false;
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "only the mode of a path the task named: never opened, no link followed"
    )]
    let meta = std::fs::symlink_metadata(path);
    match meta {
        Ok(meta) => meta.is_dir() || meta.permissions().mode() & 0o004 != 0,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// The words of `line` that are absolute paths, their quotes and
/// punctuation taken off.
fn absolute_words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| c.is_whitespace() || c == ',' || c == '=')
        .map(|word| {
            word.trim_matches(|c: char| {
                matches!(
                    c,
                    '\'' | '"' | '`' | ':' | '(' | ')' | '[' | ']' | ';' | '.' | '‘' | '’'
                )
            })
        })
        .filter(|word| word.starts_with('/') && word.len() >= 2)
}

/// Whether the task was not shown `path`, which exists here.
fn hidden(shown: &Shown<'_>, path: &Path) -> bool {
    // Its own /dev, /proc and /sys are not the host's ([`PRIVATE`]). (Its
    // /tmp holds only what leads to its grants: a host path there is hidden
    // too.) Credentials are hidden on purpose: never a grant to suggest.
    let secret = ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh"];
    let text = path.to_string_lossy();
    if PRIVATE.iter().any(|p| path.starts_with(p))
        || secret.iter().any(|p| path.starts_with(p))
        || text.contains("/.ssh/")
        || text.contains("/.gnupg/")
        || text.contains("/.aws/")
        || shown.own.iter().any(|o| path.starts_with(o))
        || shown.roots.iter().any(|r| path.starts_with(r))
        || shown.writable.iter().any(|w| path.starts_with(w))
        || climbs(path)
    {
        return false;
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "only whether a path the task named exists here: never opened, no link followed"
    )]
    let exists = std::fs::symlink_metadata(path).is_ok();
    exists
}

/// A connection the output says could not be made.
#[derive(Debug, PartialEq)]
struct NetworkFailure {
    /// The host its last such line names, if it names one.
    host: Option<String>,
    /// Whether a line shows the sandbox's own answer to a socket.
    refused_by_sandbox: bool,
}

/// Whether `output` says a connection could not be made, and how.
fn network_failure(output: &str) -> Option<NetworkFailure> {
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| NETWORK_FAILURES.iter().any(|w| l.contains(w)))
        .collect();
    let refused_by_sandbox = lines
        .iter()
        .any(|l| l.contains(NO_FAMILY) || l.contains(NO_FAMILY_CODE));
    // The host from the last line that names one (a resolver's line may
    // come before the socket's, or after).
    let host = lines.iter().rev().find_map(|l| host_in(l));
    (!lines.is_empty()).then_some(NetworkFailure {
        host,
        refused_by_sandbox,
    })
}

/// The host a failed connection's line names: after `host:` / `host '`
/// / `ENOTFOUND`, or in a URL.
fn host_in(line: &str) -> Option<String> {
    let after = |marker: &str| {
        let at = line.find(marker)? + marker.len();
        let word = line[at..].split_whitespace().next()?;
        clean_host(word)
    };
    for marker in [
        "resolve host: ",
        "resolve host ",
        "ENOTFOUND ",
        "EAI_AGAIN ",
        "host='",
        "resolve hostname ",
        "Failed to connect to ",
        "lookup ",
    ] {
        if let Some(host) = after(marker) {
            return Some(host);
        }
    }
    let url = line.find("://")?;
    let rest = &line[url + 3..];
    let end = rest.find(['/', ' ', '\'', '"', ')']).unwrap_or(rest.len());
    clean_host(&rest[..end])
}

/// `word` as a host name (its port and punctuation taken off), if it looks
/// like one.
fn clean_host(word: &str) -> Option<String> {
    let word =
        word.trim_matches(|c: char| matches!(c, '\'' | '"' | '`' | ',' | ':' | ';' | '(' | ')'));
    let host = word.split(':').next()?;
    let plausible = !host.is_empty()
        && host.len() <= 253
        && host.contains('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    plausible.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_from_what_tools_print() {
        for (line, host) in [
            (
                "curl: (6) Could not resolve host: example.com",
                "example.com",
            ),
            (
                "npm error getaddrinfo ENOTFOUND registry.npmjs.org",
                "registry.npmjs.org",
            ),
            (
                "Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/requests/ (host='pypi.org', port=443)",
                "pypi.org",
            ),
            (
                "fatal: unable to access 'https://github.com/x/y.git/': Could not resolve host: github.com",
                "github.com",
            ),
            (
                "dial tcp: lookup proxy.golang.org on 10.0.0.1:53: no such host",
                "proxy.golang.org",
            ),
        ] {
            assert_eq!(
                network_failure(line),
                Some(NetworkFailure {
                    host: Some(host.to_string()),
                    refused_by_sandbox: false
                }),
                "{line}"
            );
        }
        assert_eq!(network_failure("all went well"), None);
        // The sandbox's own mark, as Python, Node and pip print it.
        for line in [
            "OSError: [Errno 97] Address family not supported by protocol",
            "Error: connect EAFNOSUPPORT 10.0.0.1:80",
            "Failed to establish a new connection: [Errno 97] Address family not supported by protocol')': /simple/six/ (host='pypi.org', port=443)",
        ] {
            let failed = network_failure(line).expect(line);
            assert!(failed.refused_by_sandbox, "{line}");
        }
    }

    #[test]
    fn paths_written_read_only_outside_its_own_places_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let (open, closed) = (data.join("open.csv"), data.join("closed.csv"));
        std::fs::write(&open, "x").unwrap();
        std::fs::write(&closed, "x").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o640)).unwrap();
        let own = [Path::new("/work/wt")];
        let roots = [data.clone()];
        let cache = data.join("cache");
        let writable = [cache.clone()];
        let shown = Shown {
            roots: &roots,
            writable: &writable,
            own: &own,
        };
        // Landlock's refusal of a write: a file anyone may read, or one
        // it tried to make; a file others may not read is its mode's, one
        // in a build cache (writable) its mode's too, and a path that
        // climbs out with `..` is never looked at.
        let refused = format!(
            "/bin/sh: 1: cannot create {}: Permission denied\ncat: {}: Permission denied\ntouch: cannot touch '{}/new': Permission denied\ncat: /etc/hosts: Permission denied\nrm: cannot remove '{}/mod.go': Permission denied\ncat: {}/../elsewhere: Permission denied\n",
            open.display(),
            closed.display(),
            data.display(),
            cache.display(),
            data.display()
        );
        assert_eq!(
            read_only_paths(&shown, &refused),
            vec![open.clone(), data.join("new")]
        );
        let output = "/bin/sh: 1: cannot create /usr/local/x: Read-only file system\n\
            mkdir: cannot create directory ‘/data/out’: Read-only file system\n\
            OSError: [Errno 30] Read-only file system: '/usr/local/x'\n\
            cannot create /work/wt/docs/b: Read-only file system\n\
            cannot create /proc/sys/x: Read-only file system\n\
            cat: /etc/hosts: Permission denied\n\
            /opt/cache/y: Read-only file system\n";
        assert_eq!(
            read_only_paths(&shown, output),
            ["/usr/local/x", "/data/out", "/opt/cache/y"].map(PathBuf::from)
        );
    }

    #[test]
    fn only_paths_that_exist_outside_the_view_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("data.csv");
        std::fs::write(&secret, "x").unwrap();
        let granted = dir.path().join("granted");
        std::fs::create_dir(&granted).unwrap();
        std::fs::write(granted.join("g"), "x").unwrap();
        let roots = vec![granted.clone()];
        let shown = Shown {
            roots: &roots,
            writable: &[],
            own: &[],
        };
        let output = format!(
            "cat: {}: No such file or directory\ncat: {}/g: No such file or directory\ncat: /nonexistent/x: No such file or directory\ncat: /proc/self/x: No such file or directory\ncat: /etc/shadow: No such file or directory\n",
            secret.display(),
            granted.display()
        );
        assert_eq!(hidden_paths(&shown, &output), vec![secret]);
    }
}
