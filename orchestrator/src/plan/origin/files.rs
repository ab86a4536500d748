//! The files a plan names (`output_schema`, `wasm`, a matrix's `lines`),
//! and the repository a matrix's `glob` lists, read as their origin
//! allows: a plan the person named reads them beside itself, as any
//! program would; a plan from an untrusted origin (a repository's
//! configuration, an MCP client) reads them only inside the repository,
//! relative to where it stands there, without following a link, regular
//! files only and size-capped (`crate::untrusted`). An absolute name, a
//! `..` or a link out is refused, naming the file, never showing what a
//! link points to.

use std::path::{Path, PathBuf};

use crate::untrusted::{self, Limits};

/// How a plan's file names are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Files {
    /// The person's own plan: names relative to this directory (the
    /// plan's), as written; and where swarm runs it, when known (else the
    /// repository holding the plan, at the plan's base), whose files a
    /// matrix's `glob` lists.
    Beside(PathBuf, Option<RunIn>),
    /// An untrusted plan: names relative to `dir` (plain components, `""`
    /// for the root) inside the repository at `root`.
    Repository { root: PathBuf, dir: String },
}

/// Where a person's plan runs: the repository (at or above `repo`), and
/// the commit its tasks start from when it is not the plan's own `base`
/// (`--base`, or the commit a resumed run started from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIn {
    pub repo: PathBuf,
    pub base: Option<String>,
}

/// Largest `output_schema` file read.
const MAX_SCHEMA: u64 = 1 << 20;

/// Largest file of matrix values (`{ lines = "FILE" }`) read.
const MAX_LINES: u64 = 16 << 20;

impl Files {
    /// The rules for a plan at `path`, named by the person.
    pub fn beside(path: &Path) -> Self {
        Files::Beside(path.parent().unwrap_or(Path::new("")).to_path_buf(), None)
    }

    /// The rules for a plan at `path`, named by the person, run as `at`
    /// says.
    pub fn beside_in(path: &Path, at: RunIn) -> Self {
        Files::Beside(
            path.parent().unwrap_or(Path::new("")).to_path_buf(),
            Some(at),
        )
    }

    /// The commit a matrix's `glob` lists when it is not the plan's base.
    pub fn base(&self) -> Option<&str> {
        match self {
            Files::Beside(_, Some(at)) => at.base.as_deref(),
            _ => None,
        }
    }

    /// Whether names are read inside the repository only.
    pub fn is_confined(&self) -> bool {
        matches!(self, Files::Repository { .. })
    }

    /// The contents of the JSON Schema file `name`.
    pub fn read_schema(&self, name: &str) -> Result<Vec<u8>, String> {
        match self {
            Files::Beside(dir, _) => {
                let file = dir.join(name);
                std::fs::read(&file).map_err(|e| format!("read {}: {e}", file.display()))
            }
            Files::Repository { root, .. } => self.read_inside(
                root,
                name,
                Limits {
                    max_size: MAX_SCHEMA,
                    what: "an output schema",
                },
            ),
        }
    }

    /// The path of the program file `name` (a WASM module), read later by
    /// whoever runs it; inside the repository, it is checked now to be a
    /// regular file reached without a link.
    pub fn program(&self, name: &str) -> Result<PathBuf, String> {
        match self {
            Files::Beside(dir, _) => Ok(dir.join(name)),
            Files::Repository { root, .. } => {
                let rel = self.inside(name)?;
                untrusted::regular_file(root, &rel).map_err(|e| format!("use {e}"))
            }
        }
    }

    /// The values of a matrix's `{ lines = "FILE" }`: the file's lines,
    /// trimmed, blank ones and `#` comments left out.
    pub fn lines(&self, name: &str) -> Result<Vec<String>, String> {
        let bytes = match self {
            Files::Beside(dir, _) => {
                let file = dir.join(name);
                let read = || -> std::io::Result<Vec<u8>> {
                    use std::io::Read as _;
                    let mut bytes = Vec::new();
                    std::fs::File::open(&file)?
                        .take(MAX_LINES + 1)
                        .read_to_end(&mut bytes)?;
                    Ok(bytes)
                };
                let bytes = read().map_err(|e| format!("read {}: {e}", file.display()))?;
                if bytes.len() as u64 > MAX_LINES {
                    return Err(format!(
                        "read {}: larger than {} MiB, the most a file of matrix values may hold",
                        file.display(),
                        MAX_LINES >> 20
                    ));
                }
                bytes
            }
            Files::Repository { root, .. } => self.read_inside(
                root,
                name,
                Limits {
                    max_size: MAX_LINES,
                    what: "a file of matrix values",
                },
            )?,
        };
        let text =
            String::from_utf8(bytes).map_err(|_| format!("read `{name}`: it is not UTF-8 text"))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect())
    }

    /// The files git tracks at `rev` in the repository the plan is read
    /// from (for the person's plan: the one holding its directory).
    pub fn tracked(&self, rev: &str) -> Result<Vec<String>, String> {
        let dir = match self {
            Files::Beside(_, Some(at)) => at.repo.as_path(),
            Files::Beside(dir, None) if dir.as_os_str().is_empty() => Path::new("."),
            Files::Beside(dir, None) => dir.as_path(),
            Files::Repository { root, .. } => root.as_path(),
        };
        let repo = crate::git::Repo::discover(dir).map_err(|e| format!("failed to {e}"))?;
        repo.tracked_files(rev)
            .map_err(|e| format!("failed to {e}"))
    }

    /// The file `name` of an untrusted plan, read inside the repository at
    /// `root` as the module says, within `limits`.
    fn read_inside(&self, root: &Path, name: &str, limits: Limits) -> Result<Vec<u8>, String> {
        let rel = self.inside(name)?;
        untrusted::read(root, &rel, limits).map_err(|e| format!("read {e}"))
    }

    /// `name` as a path relative to the repository's root.
    fn inside(&self, name: &str) -> Result<String, String> {
        let Files::Repository { dir, .. } = self else {
            return Ok(name.to_string());
        };
        relative_name(name).map_err(|why| format!("`{name}` {why}"))?;
        inside(dir, name).map_err(|why| format!("`{name}` {why}"))
    }
}

/// Whether `name` can be taken relative to a directory: not empty, not
/// an absolute path, not `~`; the reason if not. (Whether it stays inside
/// the repository is [`inside`]'s to say.)
pub fn relative_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.starts_with('/') {
        return Err("is an absolute path");
    }
    if name.starts_with('~') {
        return Err("starts with `~`");
    }
    if name.contains('\0') {
        return Err("holds a NUL");
    }
    Ok(())
}

/// `name`, relative to `dir` (both `/`-separated, relative to the
/// repository's root), as plain components from the root: `.` left out,
/// `..` taken back, refused if it goes up out of the repository.
pub fn inside(dir: &str, name: &str) -> Result<String, &'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(name.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or("goes up out of the repository")?;
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("names no file");
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, Files) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("plans/schemas")).unwrap();
        std::fs::write(root.join("plans/schemas/s.json"), "{}").unwrap();
        std::fs::write(root.join("top.json"), "{\"top\": 1}").unwrap();
        let files = Files::Repository {
            root,
            dir: "plans".into(),
        };
        (d, files)
    }

    #[test]
    fn names_inside_the_repository_are_read_relative_to_the_plan() {
        let (_d, files) = repo();
        assert_eq!(files.read_schema("schemas/s.json").unwrap(), b"{}");
        assert_eq!(files.read_schema("./schemas/s.json").unwrap(), b"{}");
        // Up and down again, inside the repository.
        assert_eq!(files.read_schema("../top.json").unwrap(), b"{\"top\": 1}");
        assert_eq!(
            files.read_schema("schemas/../../top.json").unwrap(),
            b"{\"top\": 1}"
        );
        assert!(files.program("schemas/s.json").is_ok());
    }

    #[test]
    fn absolute_names_dot_dot_and_links_out_are_refused() {
        let (d, files) = repo();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.json"), "MARKER").unwrap();
        let abs = outside.path().join("secret.json").display().to_string();
        for (name, why) in [
            (abs.as_str(), "is an absolute path"),
            ("../../top.json", "goes up out of the repository"),
            ("schemas/../../../top.json", "goes up out of the repository"),
            ("~/secret.json", "starts with `~`"),
        ] {
            let e = files.read_schema(name).unwrap_err();
            assert!(e.contains(why), "{name}: {e}");
            let e = files.program(name).unwrap_err();
            assert!(e.contains(why), "{name}: {e}");
        }
        std::os::unix::fs::symlink(
            outside.path().join("secret.json"),
            d.path().join("plans/link.json"),
        )
        .unwrap();
        let e = files.read_schema("link.json").unwrap_err();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert!(!e.contains("MARKER"), "{e}");
        std::os::unix::fs::symlink(outside.path(), d.path().join("plans/out")).unwrap();
        let e = files.read_schema("out/secret.json").unwrap_err();
        assert!(e.contains("is a symbolic link"), "{e}");
        let e = files.program("out/secret.json").unwrap_err();
        assert!(e.contains("is a symbolic link"), "{e}");
    }

    #[test]
    fn a_person_s_plan_reads_beside_itself() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("s.json"), "{}").unwrap();
        let files = Files::beside(&d.path().join("plan.toml"));
        assert_eq!(files.read_schema("s.json").unwrap(), b"{}");
        assert!(!files.is_confined());
    }
}
