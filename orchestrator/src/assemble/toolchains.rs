//! Finds the toolchains of swarm's own environment (rustup and cargo, node
//! and npm, python venvs and pyenv, go) so that sandboxed tasks can use
//! them without recipes: which directories a task is shown read-only, and
//! which variables it needs to find them (its `HOME` is its private tmp, so
//! defaults such as `~/.rustup` would point at nothing).
//!
//! Only directories a toolchain runs from are granted, never a whole home
//! directory: `~/.cargo/credentials.toml` (registry tokens) and `~/.npmrc`
//! (npm tokens) stay out of sight. Detection is a pure function of the
//! [`HostEnv`] the front end read.

#![allow(
    clippy::disallowed_methods,
    reason = "the person's toolchains on the host, read-only"
)]

use std::path::{Path, PathBuf};

use super::HostEnv;
use crate::plan::Toolchains;

/// One toolchain found: what tasks are shown and the variables they get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    pub name: &'static str,
    /// Where it was found, for `doctor` and `validate`.
    pub found: String,
    /// Shown read-only (and executable) to sandboxed tasks.
    pub grants: Vec<PathBuf>,
    /// Passed to sandboxed tasks.
    pub env: Vec<(String, String)>,
}

/// The build cache of a toolchain's sandboxed tasks: its directory's name
/// under the worktree home's `.cache/`, and the variable pointing the tool
/// at it. Cargo's is the target directory, one per task id (see
/// `run::BuildCache` for why it is not shared); the others are the tools'
/// content-addressed download and build caches, shared.
pub fn cache_of(toolchain: &str) -> Option<(&'static str, &'static str)> {
    match toolchain {
        "rust" => Some(("cargo-target", "CARGO_TARGET_DIR")),
        "node" => Some(("npm", "npm_config_cache")),
        "python" => Some(("pip", "PIP_CACHE_DIR")),
        "go" => Some(("go-build", "GOCACHE")),
        _ => None,
    }
}

/// Looks for one toolchain.
type Finder = fn(&HostEnv) -> Option<Toolchain>;

/// The toolchains of `host` that `which` allows.
pub fn detect(host: &HostEnv, which: &Toolchains) -> Vec<Toolchain> {
    let finders: [(&str, Finder); 4] = [
        ("rust", rust),
        ("node", node),
        ("python", python),
        ("go", go),
    ];
    finders
        .iter()
        .filter(|(name, _)| which.allows(name))
        .filter_map(|(_, find)| find(host))
        .collect()
}

/// True if sandboxed tasks see `path` anyway (the system directories).
fn is_system(path: &Path) -> bool {
    swarm_sandbox::policy::SYSTEM_READ_ONLY
        .iter()
        .any(|dir| path.starts_with(dir))
}

/// `dir` if it exists and tasks do not see it already.
fn grant(dir: PathBuf) -> Option<PathBuf> {
    (dir.exists() && !is_system(&dir)).then_some(dir)
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// rustup and cargo: `CARGO_HOME` (default `~/.cargo`, else the directory
/// above the `cargo` in PATH) and `RUSTUP_HOME` (default `~/.rustup`, else
/// beside `CARGO_HOME`).
fn rust(host: &HostEnv) -> Option<Toolchain> {
    let in_path = host.which("cargo").or_else(|| host.which("rustc"));
    let cargo_home = host
        .path_var("CARGO_HOME")
        .or_else(|| {
            host.home
                .as_ref()
                .map(|h| h.join(".cargo"))
                .filter(|d| d.is_dir())
        })
        .or_else(|| {
            // A rustup install's proxies live in `<CARGO_HOME>/bin`.
            let bin = in_path.as_ref()?.parent()?;
            bin.join("rustup")
                .exists()
                .then(|| bin.parent().map(Path::to_path_buf))
                .flatten()
        });
    let rustup_home = host
        .path_var("RUSTUP_HOME")
        .or_else(|| {
            host.home
                .as_ref()
                .map(|h| h.join(".rustup"))
                .filter(|d| d.is_dir())
        })
        .or_else(|| {
            let beside = cargo_home.as_ref()?.parent()?.join(".rustup");
            beside.is_dir().then_some(beside)
        });
    if cargo_home.is_none() && rustup_home.is_none() {
        // A distribution's cargo in /usr/bin: tasks see it already.
        return in_path.map(|p| Toolchain {
            name: "rust",
            found: text(&p),
            grants: Vec::new(),
            env: Vec::new(),
        });
    }
    let mut grants = Vec::new();
    let mut env = Vec::new();
    if let Some(home) = &cargo_home {
        // Not the whole directory: `credentials.toml` holds registry tokens.
        grants.extend(
            ["bin", "registry", "git", "config.toml", "config", "env"]
                .iter()
                .filter_map(|part| grant(home.join(part))),
        );
        env.push(("CARGO_HOME".to_string(), text(home)));
    }
    if let Some(home) = &rustup_home {
        grants.extend(grant(home.clone()));
        env.push(("RUSTUP_HOME".to_string(), text(home)));
    }
    // The PATH entry tasks run cargo from, when it is not `CARGO_HOME/bin`
    // (tasks get swarm's PATH, and an entry they cannot see finds nothing).
    if let Some(dir) = in_path.as_deref().and_then(Path::parent)
        && !grants.iter().any(|g| dir.starts_with(g))
    {
        grants.extend(grant(dir.to_path_buf()));
    }
    if let Some(toolchain) = host.vars.get("RUSTUP_TOOLCHAIN").filter(|t| !t.is_empty()) {
        env.push(("RUSTUP_TOOLCHAIN".to_string(), toolchain.clone()));
    }
    let found = in_path
        .as_deref()
        .or(cargo_home.as_deref())
        .map(text)
        .unwrap_or_default();
    Some(Toolchain {
        name: "rust",
        found,
        grants,
        env,
    })
}

/// The prefix of an installation whose binary is `<prefix>/bin/<name>`,
/// links resolved (nvm, volta, a tarball in `~/.local`).
fn prefix_of(binary: &Path) -> Option<PathBuf> {
    let real = binary.canonicalize().ok()?;
    let bin = real.parent()?;
    Some(if bin.ends_with("bin") {
        bin.parent()?.to_path_buf()
    } else {
        bin.to_path_buf()
    })
}

/// node and npm: the prefix of the `node` in PATH (npm and global packages
/// live there too). `~/.npmrc`, which holds tokens, is not shown.
fn node(host: &HostEnv) -> Option<Toolchain> {
    let binary = host.which("node")?;
    let prefix = prefix_of(&binary)?;
    Some(Toolchain {
        name: "node",
        found: text(&binary),
        grants: grant(prefix).into_iter().collect(),
        env: Vec::new(),
    })
}

/// python: an active venv (`VIRTUAL_ENV`, and the interpreter it was made
/// from), a conda environment (`CONDA_PREFIX`), pyenv (`PYENV_ROOT`, whose
/// shims need it), or the prefix of the `python3` in PATH.
fn python(host: &HostEnv) -> Option<Toolchain> {
    let binary = host.which("python3").or_else(|| host.which("python"));
    let venv = host.path_var("VIRTUAL_ENV").filter(|d| d.is_dir());
    let conda = host.path_var("CONDA_PREFIX").filter(|d| d.is_dir());
    if binary.is_none() && venv.is_none() && conda.is_none() {
        return None;
    }
    let mut grants = Vec::new();
    let mut env = Vec::new();
    if let Some(venv) = &venv {
        grants.extend(grant(venv.clone()));
        env.push(("VIRTUAL_ENV".to_string(), text(venv)));
        // The venv's interpreter is a link to the one it was made from:
        // `home = <prefix>/bin` in pyvenv.cfg.
        let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).unwrap_or_default();
        let home = cfg.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "home").then(|| PathBuf::from(v.trim()))
        });
        grants.extend(
            home.and_then(|h| prefix_of(&h.join("python3")))
                .and_then(grant),
        );
    }
    if let Some(conda) = &conda {
        grants.extend(grant(conda.clone()));
        env.push(("CONDA_PREFIX".to_string(), text(conda)));
    }
    if let Some(binary) = &binary {
        if binary.parent().is_some_and(|d| d.ends_with("shims")) {
            // pyenv's shims find the interpreter through PYENV_ROOT, which
            // defaults to a directory of the (private) HOME.
            let root = host
                .path_var("PYENV_ROOT")
                .or_else(|| binary.parent()?.parent().map(Path::to_path_buf));
            if let Some(root) = root {
                grants.extend(grant(root.clone()));
                env.push(("PYENV_ROOT".to_string(), text(&root)));
            }
            if let Some(version) = host.vars.get("PYENV_VERSION").filter(|v| !v.is_empty()) {
                env.push(("PYENV_VERSION".to_string(), version.clone()));
            }
        } else {
            grants.extend(prefix_of(binary).and_then(grant));
        }
    }
    grants.sort();
    grants.dedup();
    let found = venv
        .as_deref()
        .or(conda.as_deref())
        .or(binary.as_deref())
        .map(text)
        .unwrap_or_default();
    Some(Toolchain {
        name: "python",
        found,
        grants,
        env,
    })
}

/// go: `GOROOT` and the module cache (read-only: tasks build from what is
/// already downloaded), as `go env` reports them; `GOPATH/bin` for tools
/// installed with `go install`.
fn go(host: &HostEnv) -> Option<Toolchain> {
    let binary = host.which("go")?;
    let output = std::process::Command::new(&binary)
        .args(["env", "GOROOT", "GOPATH", "GOMODCACHE"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    let text_out = output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut lines = text_out.lines().map(|l| PathBuf::from(l.trim()));
    let goroot = lines
        .next()
        .filter(|p| p.is_absolute())
        .or_else(|| host.path_var("GOROOT"))
        .or_else(|| prefix_of(&binary));
    let gopath = lines.next().filter(|p| p.is_absolute());
    let modcache = lines.next().filter(|p| p.is_absolute());
    let mut grants = Vec::new();
    let mut env = Vec::new();
    if let Some(root) = &goroot {
        grants.extend(grant(root.clone()));
        env.push(("GOROOT".to_string(), text(root)));
    }
    if let Some(path) = &gopath {
        grants.extend(grant(path.join("bin")));
        env.push(("GOPATH".to_string(), text(path)));
    }
    if let Some(cache) = &modcache {
        grants.extend(grant(cache.clone()));
        env.push(("GOMODCACHE".to_string(), text(cache)));
    }
    Some(Toolchain {
        name: "go",
        found: text(&binary),
        grants,
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(home: &Path, vars: &[(&str, &Path)], path: &[PathBuf]) -> HostEnv {
        HostEnv {
            home: Some(home.to_path_buf()),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.display().to_string()))
                .collect(),
            path: path.to_vec(),
            ..HostEnv::default()
        }
    }

    fn executable(path: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn rust_grants_cargo_home_parts_but_never_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let cargo = home.join(".cargo");
        executable(&cargo.join("bin/cargo"));
        executable(&cargo.join("bin/rustup"));
        std::fs::create_dir_all(cargo.join("registry")).unwrap();
        std::fs::write(cargo.join("credentials.toml"), "token").unwrap();
        std::fs::write(cargo.join("config.toml"), "").unwrap();
        std::fs::create_dir_all(home.join(".rustup/toolchains")).unwrap();
        let found = detect(
            &host(&home, &[], &[cargo.join("bin")]),
            &Toolchains::Only(vec!["rust".into()]),
        );
        assert_eq!(found.len(), 1);
        let rust = &found[0];
        assert_eq!(
            rust.grants,
            vec![
                cargo.join("bin"),
                cargo.join("registry"),
                cargo.join("config.toml"),
                home.join(".rustup")
            ]
        );
        assert!(rust.grants.iter().all(|g| !g.ends_with("credentials.toml")));
        assert_eq!(
            rust.env,
            vec![
                ("CARGO_HOME".to_string(), text(&cargo)),
                ("RUSTUP_HOME".to_string(), text(&home.join(".rustup")))
            ]
        );
    }

    #[test]
    fn cargo_home_is_found_from_path_when_home_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let install = dir.path().join("opt-rust/.cargo");
        executable(&install.join("bin/cargo"));
        executable(&install.join("bin/rustup"));
        std::fs::create_dir_all(dir.path().join("opt-rust/.rustup")).unwrap();
        let found = detect(
            &host(&dir.path().join("nohome"), &[], &[install.join("bin")]),
            &Toolchains::All,
        );
        let rust = found.iter().find(|t| t.name == "rust").unwrap();
        assert!(rust.env.contains(&("CARGO_HOME".into(), text(&install))));
        assert!(rust.env.contains(&(
            "RUSTUP_HOME".into(),
            text(&dir.path().join("opt-rust/.rustup"))
        )));
    }

    #[test]
    fn node_grants_its_prefix_and_nothing_is_found_when_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("node-v22");
        executable(&prefix.join("bin/node"));
        let env = host(dir.path(), &[], &[prefix.join("bin")]);
        let found = detect(&env, &Toolchains::Only(vec!["node".into()]));
        assert_eq!(found[0].grants, vec![prefix.canonicalize().unwrap()]);
        assert!(detect(&env, &Toolchains::None).is_empty());
    }

    #[test]
    fn python_venv_is_granted_with_its_base_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("py312");
        executable(&base.join("bin/python3"));
        let venv = dir.path().join("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!("home = {}\n", base.join("bin").display()),
        )
        .unwrap();
        std::os::unix::fs::symlink(base.join("bin/python3"), venv.join("bin/python3")).unwrap();
        let found = detect(
            &host(dir.path(), &[("VIRTUAL_ENV", &venv)], &[venv.join("bin")]),
            &Toolchains::Only(vec!["python".into()]),
        );
        let py = &found[0];
        assert!(py.grants.contains(&venv));
        assert!(py.grants.contains(&base.canonicalize().unwrap()));
        assert!(py.env.contains(&("VIRTUAL_ENV".into(), text(&venv))));
    }
}
