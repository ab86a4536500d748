//! The files a plan names (`output_schema`, `wasm`, a matrix's `lines`),
//! and the repository a matrix's `glob` lists, read as their origin
//! allows: a plan the person named reads them beside itself, as any
//! program would; a plan from an untrusted origin (a repository's
//! configuration, an MCP client) reads only what git tracks at the commit
//! the run starts from, as blobs of that commit's tree, never from the
//! working tree. What the person keeps there uncommitted or ignored (an
//! `.env`), git's own files (`.git/config`, where a CI checkout keeps its
//! token) and swarm's (`.swarm/`) are out of its reach, and a file cannot
//! change between the check and the read: a blob's id names its content.
//!
//! Every such read goes through one door, [`Files::tracked_blob`]: a name
//! is taken relative to the plan's place in the repository (absolute
//! names, `~` and a `..` out refused), any component git could take for
//! `.git` or that names `.swarm` is refused ([`is_reserved`]), and the
//! path must be a regular file of the base's tree (not a link, a
//! directory or a submodule), within a size cap. A refusal names the file
//! and why, never what it holds.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid};

use crate::untrusted::Limits;

/// How a plan's file names are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Files {
    /// The person's own plan: names relative to this directory (the
    /// plan's), as written; and where swarm runs it, when known (else the
    /// repository holding the plan, at the plan's base), whose files a
    /// matrix's `glob` lists.
    Beside(PathBuf, Option<RunIn>),
    /// An untrusted plan: names relative to `dir` (plain components, `""`
    /// for the root) in the repository at `root`, read from the tree of
    /// the commit the run starts from.
    Repository {
        root: PathBuf,
        dir: String,
        /// That commit: given by the caller when the person chose it
        /// (`--base`, a resumed run's commit), else the plan's own `base`
        /// (or `HEAD`), and pinned to a commit's id once the plan is read
        /// ([`Files::pinned`]).
        base: Option<String>,
    },
}

/// Where a person's plan runs: the repository (at or above `repo`), and
/// the commit its tasks start from when it is not the plan's own `base`
/// (`--base`, or the commit a resumed run started from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIn {
    pub repo: PathBuf,
    pub base: Option<String>,
}

/// A WASM task's program, as [`Files::program`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Where it is (in messages, and the name the engine knows it by).
    pub path: PathBuf,
    /// For a plan from an untrusted origin: the blob at the run's base
    /// whose bytes are the program, read by [`Files::blob`], never from
    /// `path`. `None`: the person's file, read from `path`.
    pub blob: Option<Oid>,
}

/// Largest `output_schema` file read.
const MAX_SCHEMA: u64 = 1 << 20;

/// Largest file of matrix values (`{ lines = "FILE" }`) read.
const MAX_LINES: u64 = 16 << 20;

/// Largest WASM program an untrusted plan names.
pub const MAX_PROGRAM: u64 = 256 << 20;

/// Code points HFS+ ignores in a name, so that `.g\u{200c}it` is `.git`
/// there (git refuses such names in a tree for the same reason).
const HFS_IGNORED: [char; 16] = [
    '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
    '\u{202e}', '\u{206a}', '\u{206b}', '\u{206c}', '\u{206d}', '\u{206e}', '\u{206f}', '\u{feff}',
];

/// What an untrusted plan is told when a name is refused.
const ONLY_TRACKED: &str = "a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base";

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

    /// The rules for an untrusted plan whose names are relative to `dir`
    /// in the repository at `root`, read at `base` when the person chose
    /// it (else at the plan's own base).
    pub fn repository(root: &Path, dir: &str, base: Option<&str>) -> Self {
        Files::Repository {
            root: root.to_path_buf(),
            dir: dir.to_string(),
            base: base.map(str::to_string),
        }
    }

    /// These rules with `base` the commit the run starts from, as the
    /// person chose it (`--base`); the person's own rules as they are.
    pub fn chosen_base(&self, base: &str) -> Self {
        match self {
            Files::Repository { root, dir, .. } => Files::repository(root, dir, Some(base)),
            Files::Beside(..) => self.clone(),
        }
    }

    /// The commit a matrix's `glob` lists (and an untrusted plan's files
    /// are read at) when it is not the plan's base.
    pub fn base(&self) -> Option<&str> {
        match self {
            Files::Beside(_, Some(at)) => at.base.as_deref(),
            Files::Beside(_, None) => None,
            Files::Repository { base, .. } => base.as_deref(),
        }
    }

    /// Whether names are read from the repository's tree only.
    pub fn is_confined(&self) -> bool {
        matches!(self, Files::Repository { .. })
    }

    /// These rules with an untrusted plan's base pinned to the commit it
    /// names: the caller's (`--base`, a resumed run's) as given, else the
    /// plan's own `plan_base` (or `HEAD`), which must be a commit on a
    /// branch or tag (or `HEAD`'s): a stash, a reflog entry or a refused
    /// attempt's ref holds what the person never committed, or took back.
    /// The person's rules are returned as they are.
    pub fn pinned(&self, plan_base: Option<&str>) -> Result<Self, String> {
        let Files::Repository { root, dir, base } = self else {
            return Ok(self.clone());
        };
        let repo = crate::git::Repo::discover(root).map_err(|e| format!("failed to {e}"))?;
        let rev = base.as_deref().or(plan_base).unwrap_or("HEAD");
        let commit = repo.resolve(rev).map_err(|e| format!("failed to {e}"))?;
        if base.is_none()
            && !repo
                .on_a_ref(commit)
                .map_err(|e| format!("failed to {e}"))?
        {
            return Err(format!(
                "the base `{}` is commit {}, which no branch or tag holds: a plan from outside (an MCP client, a repository's configuration you have not trusted) starts only from what was committed on one",
                crate::escape::line(rev),
                crate::git::short_id(commit)
            ));
        }
        Ok(Files::Repository {
            root: root.clone(),
            dir: dir.clone(),
            base: Some(commit.to_string()),
        })
    }

    /// The contents of the JSON Schema file `name`.
    #[allow(
        clippy::disallowed_methods,
        reason = "the person's own plan reads beside itself, as any program would (an untrusted one only through tracked_blob)"
    )]
    pub fn read_schema(&self, name: &str) -> Result<Vec<u8>, String> {
        match self {
            Files::Beside(dir, _) => {
                let file = dir.join(name);
                std::fs::read(&file).map_err(|e| format!("read {}: {e}", file.display()))
            }
            Files::Repository { .. } => self.read_tracked(
                name,
                Limits {
                    max_size: MAX_SCHEMA,
                    what: "an output schema",
                },
            ),
        }
    }

    /// The program file `name` (a WASM module), read later by whoever
    /// runs it: the person's by its path; an untrusted plan's by its blob
    /// at the run's base, checked now to be a file git tracks there.
    pub fn program(&self, name: &str) -> Result<Program, String> {
        match self {
            Files::Beside(dir, _) => Ok(Program {
                path: dir.join(name),
                blob: None,
            }),
            Files::Repository { root, .. } => {
                let found = self.tracked_blob(
                    name,
                    Limits {
                        max_size: MAX_PROGRAM,
                        what: "a WASM program",
                    },
                )?;
                Ok(Program {
                    path: root.join(&found.path),
                    blob: Some(found.id),
                })
            }
        }
    }

    /// The bytes of the program blob `id` that [`Files::program`] found
    /// for an untrusted plan, from the repository's objects (a blob's id
    /// names its content: nothing can be swapped in since the check).
    pub fn blob(&self, id: Oid) -> Result<Vec<u8>, String> {
        let Files::Repository { root, .. } = self else {
            return Err(format!(
                "read blob {id}: the person's plan names its programs by path"
            ));
        };
        let repo = crate::git::Repo::discover(root).map_err(|e| format!("failed to {e}"))?;
        let git = repo.open().map_err(|e| format!("failed to {e}"))?;
        let (size, kind) = git
            .odb()
            .and_then(|odb| odb.read_header(id))
            .map_err(|e| format!("read blob {id}: {}", e.message()))?;
        if kind != ObjectType::Blob || size as u64 > MAX_PROGRAM {
            return Err(format!(
                "read blob {id}: it is not a program of at most {} MiB",
                MAX_PROGRAM >> 20
            ));
        }
        git.find_blob(id)
            .map(|b| b.content().to_vec())
            .map_err(|e| format!("read blob {id}: {}", e.message()))
    }

    /// The values of a matrix's `{ lines = "FILE" }`: the file's lines,
    /// trimmed, blank ones and `#` comments left out.
    #[allow(
        clippy::disallowed_methods,
        reason = "the person's own plan reads beside itself, as any program would (an untrusted one only through tracked_blob)"
    )]
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
            Files::Repository { .. } => self.read_tracked(
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
    /// from (for the person's plan: the one holding its directory). For
    /// an untrusted plan, none git or swarm keeps for itself
    /// ([`is_reserved`]).
    pub fn tracked(&self, rev: &str) -> Result<Vec<String>, String> {
        let repo = crate::git::Repo::discover(self.repository_dir())
            .map_err(|e| format!("failed to {e}"))?;
        let mut files = repo
            .tracked_files(rev)
            .map_err(|e| format!("failed to {e}"))?;
        if self.is_confined() {
            files.retain(|f| !f.split('/').any(is_reserved));
        }
        Ok(files)
    }

    /// Where the repository the plan is read from is (for the person's
    /// plan: the one holding its directory, or where it runs).
    fn repository_dir(&self) -> &Path {
        match self {
            Files::Beside(_, Some(at)) => at.repo.as_path(),
            Files::Beside(dir, None) if dir.as_os_str().is_empty() => Path::new("."),
            Files::Beside(dir, None) => dir.as_path(),
            Files::Repository { root, .. } => root.as_path(),
        }
    }

    /// The Cargo packages of the Rust test files among `entries`, their
    /// manifests read from the tree of `rev` in the repository the plan
    /// is read from ([`crate::plan::cargo`]); none git or swarm keeps for
    /// itself for an untrusted plan. A failure to read leaves them
    /// without (their binaries matched by name, as before).
    pub fn cargo_packages(&self, rev: &str, entries: &[String]) -> crate::plan::cargo::Packages {
        if !entries.iter().any(|e| e.ends_with(".rs")) {
            return Default::default();
        }
        let read = crate::git::Repo::discover(self.repository_dir())
            .and_then(|repo| repo.files_at(rev, crate::plan::cargo::MAX_MANIFEST));
        let Ok(read) = read else {
            return Default::default();
        };
        let confined = self.is_confined();
        let allowed = |path: &str| -> crate::git::FileAt {
            match confined && path.split('/').any(is_reserved) {
                true => crate::git::FileAt::Unreadable,
                false => read(path),
            }
        };
        crate::plan::cargo::packages(entries, &allowed)
    }

    /// The file `name` of an untrusted plan, as [`Files::tracked_blob`]
    /// finds it, read.
    fn read_tracked(&self, name: &str, limits: Limits) -> Result<Vec<u8>, String> {
        let found = self.tracked_blob(name, limits)?;
        found
            .repo
            .find_blob(found.id)
            .map(|b| b.content().to_vec())
            .map_err(|e| format!("read `{name}` at the run's base: {}", e.message()))
    }

    /// The door every file name of an untrusted plan goes through: `name`
    /// (relative to the plan's place in the repository) as a regular file
    /// of the tree of the commit the run starts from, within `limits`;
    /// never a name git or swarm keeps for itself, never the working tree.
    fn tracked_blob(&self, name: &str, limits: Limits) -> Result<TrackedBlob, String> {
        let Files::Repository { root, dir, base } = self else {
            return Err(format!(
                "`{name}`: the person's plan reads its files beside it"
            ));
        };
        relative_name(name).map_err(|why| format!("`{name}` {why}"))?;
        let rel = inside(dir, name).map_err(|why| format!("`{name}` {why}"))?;
        // Shown as written, and from the root when that differs.
        let shown = match rel == name {
            true => format!("`{name}`"),
            false => format!("`{name}` (`{rel}`)"),
        };
        if let Some(part) = rel.split('/').find(|p| is_reserved(p)) {
            return Err(format!(
                "{shown} is in `{}`, which holds git's or swarm's own files: {ONLY_TRACKED}, never those",
                crate::escape::line(part)
            ));
        }
        let repo = crate::git::Repo::discover(root).map_err(|e| format!("failed to {e}"))?;
        let rev = base.as_deref().unwrap_or("HEAD");
        let commit = repo.resolve(rev).map_err(|e| format!("failed to {e}"))?;
        let git = repo.open().map_err(|e| format!("failed to {e}"))?;
        let at = format!("the run's base ({})", crate::git::short_id(commit));
        let entry = git
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| format!("read the tree of {at}: {}", e.message()))?
            .get_path(Path::new(&rel))
            .ok();
        let not = |what: &str| format!("{shown} is {what} at {at}: {ONLY_TRACKED}");
        let Some(entry) = entry else {
            return Err(not("not a file git tracks"));
        };
        let id = match (entry.kind(), entry.filemode()) {
            (Some(ObjectType::Blob), 0o100644 | 0o100755) => entry.id(),
            (Some(ObjectType::Blob), _) => {
                return Err(not("a symbolic link (no link is followed)"));
            }
            (Some(ObjectType::Tree), _) => return Err(not("a directory")),
            (Some(ObjectType::Commit), _) => return Err(not("a submodule")),
            _ => return Err(not("not a file")),
        };
        let (size, _) = git
            .odb()
            .and_then(|odb| odb.read_header(id))
            .map_err(|e| format!("read {shown} at {at}: {}", e.message()))?;
        if size as u64 > limits.max_size {
            return Err(format!(
                "{shown} is {size} bytes at {at}, more than the {} MiB {} may be",
                limits.max_size >> 20,
                limits.what
            ));
        }
        Ok(TrackedBlob {
            repo: git,
            id,
            path: rel,
        })
    }
}

/// A file git tracks at the run's base, as [`Files::tracked_blob`] found
/// it: its blob in the repository, and its path from the root.
struct TrackedBlob {
    repo: git2::Repository,
    id: Oid,
    path: String,
}

/// Whether git could take the path component `part` for `.git`, or it
/// names swarm's `.swarm`: compared strictly, as git compares where it
/// guards `.git` (case folded; trailing dots and spaces, an NTFS stream
/// and the code points HFS+ ignores left out; the NTFS short names
/// `GIT~1`, `SWARM~1`).
pub fn is_reserved(part: &str) -> bool {
    let folded: String = part
        .chars()
        .filter(|c| !HFS_IGNORED.contains(c))
        .flat_map(char::to_lowercase)
        .collect();
    let name = folded.split(':').next().unwrap_or_default();
    let name = name.trim_end_matches(['.', ' ']);
    matches!(name, ".git" | ".swarm") || name.starts_with("git~") || name.starts_with("swarm~")
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
    use crate::plan::origin::Origin;
    use crate::plan::origin::rules::{self, May, Table};
    use git2::{IndexEntry, IndexTime, Repository};

    const MARKER: &str = "MARKER-not-committed-5e1d";

    /// A repository whose `HEAD` tracks a plan's files, and whose working
    /// tree holds what no untrusted plan may read: an ignored `.env`, an
    /// untracked file, a tracked file changed but not committed, and
    /// git's own configuration holding a token.
    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        git: Repository,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().canonicalize().unwrap();
            let git = Repository::init(&root).unwrap();
            let fixture = Self {
                _dir: dir,
                root,
                git,
            };
            for (path, content) in [
                ("plans/schemas/s.json", "{}"),
                ("plans/values.txt", "a\n\n# left out\nb\n"),
                ("top.json", "{\"top\": 1}"),
                (".gitignore", ".env\n"),
                ("tool.wasm", "committed program"),
                ("tracked/.swarm/x", "swarm's name"),
            ] {
                fixture.write(path, content);
                fixture.add(path);
            }
            std::os::unix::fs::symlink("top.json", fixture.root.join("link.json")).unwrap();
            fixture.add("link.json");
            // A submodule: a commit in the tree.
            let mut index = fixture.git.index().unwrap();
            index
                .add(&IndexEntry {
                    ctime: IndexTime::new(0, 0),
                    mtime: IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: 0o160000,
                    uid: 0,
                    gid: 0,
                    file_size: 0,
                    id: Oid::from_str("0123456789012345678901234567890123456789").unwrap(),
                    flags: 0,
                    flags_extended: 0,
                    path: b"sub".to_vec(),
                })
                .unwrap();
            index.write().unwrap();
            fixture.commit("base");
            // What the working tree holds besides.
            fixture.write(".env", &format!("TOKEN={MARKER}\n"));
            fixture.write("untracked.txt", MARKER);
            fixture.write("top.json", &format!("{{\"top\": \"{MARKER}\"}}"));
            fixture.write("plans/values.txt", &format!("{MARKER}\n"));
            fixture.write("tool.wasm", MARKER);
            fixture.write("plans/schemas/new.json", MARKER);
            let mut config = fixture.git.config().unwrap();
            config
                .set_str(
                    "http.extraheader",
                    &format!("AUTHORIZATION: basic {MARKER}"),
                )
                .unwrap();
            std::fs::create_dir_all(fixture.root.join(".swarm")).unwrap();
            fixture.write(".swarm/x.json", MARKER);
            fixture
        }

        fn write(&self, path: &str, content: &str) {
            let abs = self.root.join(path);
            std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
            std::fs::write(abs, content).unwrap();
        }

        fn add(&self, path: &str) {
            let mut index = self.git.index().unwrap();
            index.add_path(Path::new(path)).unwrap();
            index.write().unwrap();
        }

        fn commit(&self, message: &str) -> Oid {
            let mut index = self.git.index().unwrap();
            let tree = self.git.find_tree(index.write_tree().unwrap()).unwrap();
            let sig = crate::git::signature().unwrap();
            let parents: Vec<git2::Commit<'_>> = self
                .git
                .head()
                .ok()
                .and_then(|h| h.peel_to_commit().ok())
                .into_iter()
                .collect();
            let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
            self.git
                .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
                .unwrap()
        }

        /// An untrusted plan's rules, the plan in `dir`, pinned at `HEAD`.
        fn files(&self, dir: &str) -> Files {
            Files::repository(&self.root, dir, None)
                .pinned(None)
                .unwrap()
        }

        /// `text` the same on every run: the temporary directory written
        /// `[TMP]`, the commit `HEAD` names (its commits are dated now)
        /// `[HEAD]`, in full or short.
        fn pinned(&self, text: &str) -> String {
            let head = self.git.head().unwrap().target().unwrap();
            text.replace(self.root.to_str().unwrap(), "[TMP]")
                .replace(&head.to_string(), "[HEAD]")
                .replace(&crate::git::short_id(head), "[HEAD]")
        }
    }

    #[test]
    fn names_are_read_relative_to_the_plan_as_committed() {
        let fixture = Fixture::new();
        let files = fixture.files("plans");
        assert_eq!(files.read_schema("schemas/s.json").unwrap(), b"{}");
        assert_eq!(files.read_schema("./schemas/s.json").unwrap(), b"{}");
        // Up and down again, inside the repository; as committed, not as
        // the working tree holds it now.
        assert_eq!(files.read_schema("../top.json").unwrap(), b"{\"top\": 1}");
        assert_eq!(
            files.read_schema("schemas/../../top.json").unwrap(),
            b"{\"top\": 1}"
        );
        assert_eq!(files.lines("values.txt").unwrap(), ["a", "b"]);
        // A program is its blob at the base, whatever the file is now.
        let program = files.program("../tool.wasm").unwrap();
        assert_eq!(program.path, fixture.root.join("tool.wasm"));
        assert_eq!(
            files.blob(program.blob.unwrap()).unwrap(),
            b"committed program"
        );
        std::fs::remove_file(fixture.root.join("tool.wasm")).unwrap();
        assert_eq!(
            files.blob(program.blob.unwrap()).unwrap(),
            b"committed program"
        );
    }

    #[test]
    fn what_git_does_not_track_at_the_base_is_refused_unread() {
        let fixture = Fixture::new();
        let files = fixture.files("");
        let mut refused = Vec::new();
        for name in [
            ".env",
            "untracked.txt",
            "plans/schemas/new.json",
            ".git/config",
            "plans/../.git/config",
            ".GIT/config",
            ".git./config",
            ".Git /config",
            "GIT~1/config",
            ".g\u{200c}it/config",
            ".git::$INDEX_ALLOCATION/config",
            ".swarm/x.json",
            "tracked/.swarm/x",
            ".SWARM/x.json",
            "link.json",
            "link.json/x",
            "plans",
            "sub",
            "/etc/passwd",
            "../top.json",
            "~/secret.json",
        ] {
            let errors = [
                files.read_schema(name).map(drop).unwrap_err(),
                files.lines(name).map(drop).unwrap_err(),
                files.program(name).map(drop).unwrap_err(),
            ];
            for error in &errors {
                assert!(!error.contains(MARKER), "{name}: {error}");
                assert_eq!(error, &errors[0], "{name}: the same for each use");
            }
            // The zero-width non-joiner written out, to be seen here.
            let error = fixture.pinned(&errors[0]).replace('\u{200c}', "\\u{200c}");
            refused.push(format!("{name:?}: {error}"));
        }
        // A refusal at the base names it, `[HEAD]`.
        insta::assert_snapshot!(refused.join("\n"), @r#"
        ".env": `.env` is not a file git tracks at the run's base ([HEAD]): a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base
        "untracked.txt": `untracked.txt` is not a file git tracks at the run's base ([HEAD]): a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base
        "plans/schemas/new.json": `plans/schemas/new.json` is not a file git tracks at the run's base ([HEAD]): a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base
        ".git/config": `.git/config` is in `.git`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        "plans/../.git/config": `plans/../.git/config` (`.git/config`) is in `.git`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        ".GIT/config": `.GIT/config` is in `.GIT`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        ".git./config": `.git./config` is in `.git.`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        ".Git /config": `.Git /config` is in `.Git `, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        "GIT~1/config": `GIT~1/config` is in `GIT~1`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        ".g\u{200c}it/config": `.g\u{200c}it/config` is in `.g\u{200c}it`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        ".git::$INDEX_ALLOCATION/config": `.git::$INDEX_ALLOCATION/config` is in `.git::$INDEX_ALLOCATION`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        ".swarm/x.json": `.swarm/x.json` is in `.swarm`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        "tracked/.swarm/x": `tracked/.swarm/x` is in `.swarm`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        ".SWARM/x.json": `.SWARM/x.json` is in `.SWARM`, which holds git's or swarm's own files: a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base, never those
        "link.json": `link.json` is a symbolic link (no link is followed) at the run's base ([HEAD]): a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base
        "link.json/x": `link.json/x` is not a file git tracks at the run's base ([HEAD]): a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base
        "plans": `plans` is a directory at the run's base ([HEAD]): a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base
        "sub": `sub` is a submodule at the run's base ([HEAD]): a plan from outside (an MCP client, a repository's configuration you have not trusted) reads only files git tracks at the run's base
        "/etc/passwd": `/etc/passwd` is an absolute path
        "../top.json": `../top.json` goes up out of the repository
        "~/secret.json": `~/secret.json` starts with `~`
        "#);
    }

    #[test]
    fn a_file_past_its_cap_is_refused_before_it_is_read() {
        let fixture = Fixture::new();
        fixture.write("big.json", &" ".repeat((MAX_SCHEMA + 1) as usize));
        fixture.add("big.json");
        fixture.commit("big");
        let error = fixture.files("").read_schema("big.json").unwrap_err();
        insta::assert_snapshot!(fixture.pinned(&error), @"`big.json` is 1048577 bytes at the run's base ([HEAD]), more than the 1 MiB an output schema may be");
    }

    #[test]
    fn a_glob_for_an_untrusted_plan_lists_no_name_git_or_swarm_keeps() {
        let fixture = Fixture::new();
        let listed = fixture.files("").tracked("HEAD").unwrap();
        assert!(listed.contains(&"top.json".to_string()), "{listed:?}");
        assert!(!listed.iter().any(|f| f.contains(".swarm")), "{listed:?}");
        // The person's plan lists what git tracks, as before.
        let mine = Files::beside(&fixture.root.join("plan.toml"));
        assert!(
            mine.tracked("HEAD")
                .unwrap()
                .contains(&"tracked/.swarm/x".to_string())
        );
    }

    #[test]
    fn names_git_could_take_for_its_own_are_reserved() {
        for part in [
            ".git",
            ".GIT",
            ".git.",
            ".git ",
            ".git. .",
            "git~1",
            "GIT~12",
            ".g\u{200d}it",
            "\u{feff}.git",
            ".git:stream",
            ".swarm",
            ".Swarm",
            "SWARM~1",
            ".swarm.",
        ] {
            assert!(is_reserved(part), "{part:?}");
        }
        for part in [
            ".gitignore",
            ".github",
            "git",
            "gits~1x",
            ".swarmrc",
            "swarm",
            "a.git",
        ] {
            assert!(!is_reserved(part), "{part:?}");
        }
    }

    #[test]
    fn an_untrusted_plan_starts_only_from_a_committed_base() {
        let fixture = Fixture::new();
        let head = fixture.git.head().unwrap().target().unwrap();
        let files = Files::repository(&fixture.root, "", None);
        let pinned = files.pinned(None).unwrap();
        assert_eq!(pinned.base(), Some(head.to_string().as_str()));
        // A branch with a `/` in its name holds a later commit.
        fixture.write("later.txt", "x");
        fixture.add("later.txt");
        let later = fixture.commit("later");
        fixture
            .git
            .branch(
                "topic/later",
                &fixture.git.find_commit(later).unwrap(),
                false,
            )
            .unwrap();
        fixture
            .git
            .reset(
                fixture.git.find_commit(head).unwrap().as_object(),
                git2::ResetType::Soft,
                None,
            )
            .unwrap();
        assert!(files.pinned(Some("topic/later")).is_ok());
        // A commit no branch or tag holds (a stash's, one taken back).
        fixture
            .git
            .find_branch("topic/later", git2::BranchType::Local)
            .unwrap()
            .delete()
            .unwrap();
        let error = files.pinned(Some(&later.to_string())).unwrap_err();
        insta::assert_snapshot!(
            fixture
                .pinned(&error)
                .replace(&later.to_string(), "[LATER]")
                .replace(&crate::git::short_id(later), "[LATER]"),
            @"the base `[LATER]` is commit [LATER], which no branch or tag holds: a plan from outside (an MCP client, a repository's configuration you have not trusted) starts only from what was committed on one"
        );
        // Unless the person chose it.
        let chosen = files.chosen_base(&later.to_string()).pinned(None).unwrap();
        assert_eq!(chosen.base(), Some(later.to_string().as_str()));
    }

    /// What a plan sets to have `key` of `table` name `name`, for each key
    /// whose rule is a file git tracks.
    fn naming(table: Table, key: &str, name: &str) -> Vec<String> {
        let model = "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n";
        match (table, key) {
            (Table::Task, "output_schema") => vec![
                format!(
                    "{model}[[task]]\nid = \"t\"\nprompt = \"p\"\noutput_schema = \"{name}\"\n"
                ),
                format!(
                    "{model}[defaults]\noutput_schema = \"{name}\"\n\n[[task]]\nid = \"t\"\nprompt = \"p\"\n"
                ),
            ],
            (Table::Task, "wasm") => vec![format!("[[task]]\nid = \"t\"\nwasm = \"{name}\"\n")],
            (Table::MatrixFrom, "lines") => vec![format!(
                "[[task]]\nid = \"t-{{v}}\"\nrun = \"echo {{v}}\"\nmatrix = {{ v = {{ lines = \"{name}\" }} }}\n"
            )],
            _ => panic!(
                "{} `{key}` names a file: say here how a plan sets it, so that this test holds it to `Files::tracked_blob`",
                table.shown()
            ),
        }
    }

    /// Every key whose rule is a file git tracks is read through
    /// [`Files::tracked_blob`]: an ignored file, git's configuration and a
    /// file changed since the base are refused or read as committed, for
    /// each, from each untrusted origin. A key read any other way fails
    /// here; a new key of that rule fails until it is added to [`naming`].
    #[test]
    fn every_file_key_of_an_untrusted_plan_reads_only_what_git_tracks() {
        let fixture = Fixture::new();
        let keys: Vec<_> = rules::PLAN
            .iter()
            .filter(|r| r.may == May::TrackedFile)
            .collect();
        assert!(keys.len() >= 3, "{keys:?}");
        for rule in keys {
            for name in [".env", ".git/config", "untracked.txt"] {
                for text in naming(rule.table, rule.key, name) {
                    for origin in [Origin::Mcp, Origin::Repository] {
                        let files = Files::repository(&fixture.root, "", None);
                        let error = crate::plan::parse_with(
                            &fixture.root.join("plan.toml"),
                            text.clone(),
                            origin,
                            files,
                        )
                        .unwrap_err();
                        let shown = format!("{error:?}");
                        assert!(
                            shown.contains("is not a file git tracks")
                                || shown.contains("is in `.git`"),
                            "{} `{}` = {name}: {shown}",
                            rule.table.shown(),
                            rule.key
                        );
                        assert!(!shown.contains(MARKER), "{shown}");
                    }
                }
            }
        }
    }
}
