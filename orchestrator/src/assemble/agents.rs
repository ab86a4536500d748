//! The agent CLIs of a run, found on this host: each `[agents.NAME]` (or
//! built-in) a task uses, its program resolved (a path as given, or a name
//! on PATH), and the directory the sandbox shows it read-only (where the
//! program is installed: its `node_modules`, or its own directory). A
//! program that is not there is a plan error at its place, so `swarm
//! validate` reports it before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{HostEnv, SetupError};
use crate::plan::{Plan, PlanErrorKind};
use crate::run::CliProgram;

/// The programs of the agent CLIs `plan`'s tasks use, by agent name.
pub fn agent_programs(
    plan: &Plan,
    host: &HostEnv,
) -> Result<BTreeMap<String, CliProgram>, SetupError> {
    let mut found = BTreeMap::new();
    for (name, cli) in &plan.agents {
        let user = plan.tasks.iter().find(|t| {
            t.agent()
                .and_then(|a| a.cli.as_deref())
                .is_some_and(|c| c == name)
        });
        // A table no task uses may still be named by a subtask; it is
        // looked for then too, and missing, it is an error only if used.
        let Some(program) = cli.program_name() else {
            continue;
        };
        let resolved = find(program, host);
        let Some(resolved) = resolved else {
            if user.is_none() {
                continue;
            }
            let span = match cli.span.clone() {
                s if s != (0..0) => s,
                _ => user.map(|t| t.span.clone()).unwrap_or(0..0),
            };
            let error = plan
                .source
                .error(
                    PlanErrorKind::BadValue,
                    format!(
                        "agent `{name}` ({}) needs the program `{program}`, which is not {}",
                        cli.kind.name(),
                        if program.contains('/') {
                            "there (or not executable)"
                        } else {
                            "on PATH"
                        }
                    ),
                    Some(span),
                    "its program is missing",
                )
                .with_help(cli.kind.install_help());
            return Err(SetupError::Plan(Box::new(error)));
        };
        let grant = install_dir(&resolved);
        if too_wide(&grant, host) {
            let error = plan
                .source
                .error(
                    PlanErrorKind::BadValue,
                    format!(
                        "agent `{name}`'s program {} is installed in {}, which the sandbox would show whole",
                        resolved.display(),
                        grant.display()
                    ),
                    Some(cli.span.clone()),
                    "its program",
                )
                .with_help("install it in a directory of its own (npm install -g, or a prefix), and name that program");
            return Err(SetupError::Plan(Box::new(error)));
        }
        found.insert(
            name.clone(),
            CliProgram {
                cli: cli.clone(),
                program: resolved,
                grant,
            },
        );
    }
    Ok(found)
}

/// One built-in agent CLI as this host has it (for `swarm doctor`).
#[derive(Debug, Clone)]
pub struct Installed {
    pub kind: crate::plan::agents::CliKind,
    /// The program as looked for on PATH.
    pub name: &'static str,
    /// Where it is (a real path) and what `--version` said, if found.
    pub found: Option<(PathBuf, String)>,
}

/// The built-in agent CLIs on `host`'s PATH, with their versions.
pub fn installed(host: &HostEnv) -> Vec<Installed> {
    use crate::plan::agents::CliKind;
    CliKind::builtins()
        .filter_map(|kind| Some((kind, kind.default_program()?)))
        .map(|(kind, name)| Installed {
            kind,
            name,
            found: find(name, host).map(|path| {
                let version = version_of(&path);
                (path, version)
            }),
        })
        .collect()
}

/// The first line `program --version` prints (within a few seconds).
fn version_of(program: &Path) -> String {
    let child = std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return "version unknown (it did not start)".into();
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return "version unknown (--version did not answer)".into();
            }
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read as _;
        let _ = stdout.read_to_string(&mut out);
    }
    out.lines()
        .next()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("version unknown")
        .to_string()
}

/// `program` as a path (absolute, or relative to nothing: refused), or a
/// name on PATH; its real path.
pub(super) fn find(program: &str, host: &HostEnv) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let found = if program.contains('/') {
        let p = PathBuf::from(program);
        p.is_absolute().then_some(p)?
    } else {
        host.which(program)?
    };
    let real = std::fs::canonicalize(&found).ok()?;
    let meta = real.metadata().ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(real)
}

/// Directories many programs share, each a place for what is private to
/// someone (temporary files, agent sockets, settings, runtime state): an
/// installation may live below one, but a grant must never show one whole.
const SHARED: [&str; 5] = ["/tmp", "/var/tmp", "/etc", "/run", "/var/run"];

/// Kernel interfaces: no program is installed there, and nothing in them
/// is shown to a task by way of an installation.
const KERNEL: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Whether `grant`, shown read-only to a task as a program's installation,
/// would show it too much: `/`, a home or what holds one, a shared
/// directory ([`SHARED`]) or what holds one, or anything in a kernel
/// interface. A directory of its own below `/tmp` (an `npm install
/// --prefix /tmp/x`) is fine: the sandbox shows `/tmp` with only its
/// granted entries.
pub(super) fn too_wide(grant: &Path, host: &HostEnv) -> bool {
    grant.parent().is_none()
        || host
            .home
            .as_ref()
            .is_some_and(|home| home.starts_with(grant))
        || SHARED.iter().any(|d| Path::new(d).starts_with(grant))
        || KERNEL.iter().any(|d| grant.starts_with(d))
}

/// What the sandbox shows of a program's installation: the `node_modules`
/// it lives in (an npm package finds its platform binary or its
/// dependencies beside it), else its own directory.
pub(super) fn install_dir(program: &Path) -> PathBuf {
    program
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "node_modules"))
        .or_else(|| program.parent())
        .unwrap_or(program)
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_npm_program_is_shown_with_its_node_modules() {
        assert_eq!(
            install_dir(Path::new("/opt/x/node_modules/@a/b/bin/claude.exe")),
            Path::new("/opt/x/node_modules")
        );
        assert_eq!(
            install_dir(Path::new("/usr/local/bin/gemini")),
            Path::new("/usr/local/bin")
        );
    }

    #[test]
    fn a_grant_never_shows_a_home_or_a_shared_directory_whole() {
        let host = HostEnv {
            home: Some(PathBuf::from("/home/ann")),
            ..HostEnv::default()
        };
        let wide = |p: &str| too_wide(Path::new(p), &host);
        for p in [
            "/",
            "/home",
            "/home/ann",
            "/tmp",
            "/var",
            "/var/tmp",
            "/etc",
            "/run",
            "/proc/1",
            "/sys/fs",
            "/dev/shm/x",
        ] {
            assert!(wide(p), "{p} is shown too wide");
        }
        for p in [
            "/usr/local/bin",
            "/opt/x/node_modules",
            "/tmp/x/node_modules",
            "/home/ann/.npm-global/lib/node_modules",
            "/etc/x/bin",
        ] {
            assert!(!wide(p), "{p} is a directory of its own");
        }
    }
}
