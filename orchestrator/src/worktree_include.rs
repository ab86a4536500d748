//! `.worktreeinclude` (Claude Code's convention): files of the main
//! checkout that git ignores (a `.env`, local settings) copied into every
//! task's worktree, and never committed with a result.
//!
//! The list is the repository's (whoever can push wrote it), the files are
//! the person's: only files that are inside the repository, regular (no
//! link followed, none copied), not tracked and ignored by git are taken,
//! whatever the list says; never git's own (a `.git` at any depth, and
//! whatever is below one), nor a nested repository's files.
//!
//! Their content never leaves the worktrees: a file of a result that holds
//! one's content (copied, with bytes added, appended to a tracked file) is
//! left out of its snapshot before it is written into git's objects, which
//! every task reads, and fails the attempt, naming both (see
//! [`crate::git::screen`]); and their lines are taken out of every log a
//! task's output goes to (see [`swarm_worker::redact`]).

use std::path::{Path, PathBuf};

use git2::Oid;
use ignore::gitignore::GitignoreBuilder;

use crate::git::screen::{Screen, Secret};

/// Whether a name is git's: nothing at or below it is the person's file.
fn is_gits(name: &std::ffi::OsStr) -> bool {
    crate::git::stands_for_git(name.as_encoded_bytes())
}

/// The list's file name, at the repository's root.
pub const FILE: &str = ".worktreeinclude";

/// Most files one list may bring in: past it, none is (a list the
/// repository wrote must not stop every run).
const MAX_FILES: usize = 1000;

/// Largest file a list may bring in.
const MAX_SIZE: u64 = 16 << 20;

/// Largest file whose content is held to be looked for (in results,
/// inside other files, and in logs): a larger one is looked for as a whole
/// blob only.
const MAX_HELD: usize = 1 << 20;

/// Most bytes of content held, all files together.
const MAX_HELD_TOTAL: usize = 32 << 20;

/// The files a `.worktreeinclude` brings into each worktree.
#[derive(Debug, Clone, Default)]
pub struct Included {
    /// Paths relative to the repository, sorted, and their contents' blob
    /// ids (what is copied is checked against them).
    pub files: Vec<(PathBuf, Oid)>,
    /// Whether git tracks the list itself: it came with the repository.
    pub list_tracked: bool,
    /// The list named more than [`MAX_FILES`] files: none is copied.
    pub too_many: bool,
    /// What the result check keeps out of every snapshot: their contents.
    pub screen: Screen,
    /// What is taken out of every log: their lines and values; `None`
    /// when they hold none long enough.
    pub redact: Option<swarm_worker::Redact>,
}

impl Included {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// `text` with the files' secrets taken out (as in logs), for text of
    /// a task's that swarm keeps or shows itself (a commit message, a test
    /// report).
    pub fn redacted(&self, text: &str) -> String {
        match &self.redact {
            Some(redact) => redact.text(text),
            None => text.to_string(),
        }
    }
}

/// Why the list could not be read, as a fragment after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    #[error("read {path}: {message}")]
    Read { path: PathBuf, message: String },
}

/// The files the `.worktreeinclude` of the repository at `workdir` (git
/// repository `git`) brings in; none without one.
#[allow(
    clippy::disallowed_methods,
    reason = "the person's own main checkout, where the list names their files; each read again as hostile when copied"
)]
pub fn find(workdir: &Path, git: &git2::Repository) -> Result<Included, IncludeError> {
    let path = workdir.join(FILE);
    let limits = crate::untrusted::Limits::new("a .worktreeinclude");
    let text = match crate::untrusted::read(workdir, FILE, limits) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.is_missing() => return Ok(Included::default()),
        Err(e) => {
            return Err(IncludeError::Read {
                path,
                message: e.to_string(),
            });
        }
    };
    let mut builder = GitignoreBuilder::new(workdir);
    for line in text.lines() {
        // A bad pattern matches nothing, as in git.
        let _ = builder.add_line(None, line);
    }
    let patterns = builder.build().map_err(|e| IncludeError::Read {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let list_tracked = git
        .index()
        .ok()
        .is_some_and(|index| index.get_path(Path::new(FILE), 0).is_some());
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(workdir.join(&dir)) else {
            continue;
        };
        let entries: Vec<std::fs::DirEntry> = entries.flatten().collect();
        // Another repository's checkout (a nested one, a submodule): its
        // files are its own, and its `.git` holds its configuration
        // (credentials, commands git runs).
        if !dir.as_os_str().is_empty() && entries.iter().any(|e| is_gits(&e.file_name())) {
            continue;
        }
        for entry in entries {
            let rel = dir.join(entry.file_name());
            // git's directory (at any depth) and swarm's own state (every
            // run's logs and task tmps, which tasks write) are never the
            // person's files.
            if is_gits(&entry.file_name()) || rel == Path::new(crate::layout::STATE_DIR) {
                continue;
            }
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            let matched = patterns
                .matched_path_or_any_parents(&rel, meta.is_dir())
                .is_ignore();
            if meta.is_dir() {
                // A directory git ignores (`target/`, `node_modules`) is
                // walked only if the list names it: it may hold more files
                // than the whole repository.
                if matched || !git.is_path_ignored(&rel).unwrap_or(false) {
                    stack.push(rel);
                }
                continue;
            }
            if !matched || !meta.is_file() {
                continue;
            }
            let ignored = git.is_path_ignored(&rel).unwrap_or(false);
            let tracked = git
                .index()
                .ok()
                .is_some_and(|index| index.get_path(&rel, 0).is_some());
            if !ignored || tracked {
                continue;
            }
            files.push(rel);
            if files.len() > MAX_FILES {
                return Ok(Included {
                    list_tracked,
                    too_many: true,
                    ..Included::default()
                });
            }
        }
    }
    files.sort();
    let mut included = Included {
        list_tracked,
        ..Included::default()
    };
    let mut secrets = Vec::new();
    let mut held = 0;
    for rel in files {
        let (id, content) = read_one(workdir, &rel, &mut held)?;
        secrets.push(Secret {
            name: rel.display().to_string(),
            id,
            content,
        });
        included.files.push((rel, id));
    }
    included.redact =
        swarm_worker::Redact::of_files(secrets.iter().filter_map(|s| s.content.as_deref()));
    included.screen = Screen::new(secrets);
    Ok(included)
}

/// The blob id of included file `rel` of the checkout at `workdir`, and
/// its content if it is held to be looked for (`held`: bytes held so far).
fn read_one(
    workdir: &Path,
    rel: &Path,
    held: &mut usize,
) -> Result<(Oid, Option<Vec<u8>>), IncludeError> {
    let path = workdir.join(rel);
    let failed = |message: String| IncludeError::Read {
        path: path.clone(),
        message,
    };
    let size = path
        .symlink_metadata()
        .map_err(|e| failed(e.to_string()))?
        .len();
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if size > MAX_HELD || *held + size > MAX_HELD_TOTAL {
        let id =
            Oid::hash_file(git2::ObjectType::Blob, &path).map_err(|e| failed(e.to_string()))?;
        return Ok((id, None));
    }
    let limits = crate::untrusted::Limits {
        max_size: MAX_HELD as u64,
        what: "a file .worktreeinclude names",
    };
    let name = rel
        .to_str()
        .ok_or_else(|| failed("its name is not UTF-8".into()))?;
    let content =
        crate::untrusted::read(workdir, name, limits).map_err(|e| failed(e.to_string()))?;
    *held += content.len();
    let id =
        Oid::hash_object(git2::ObjectType::Blob, &content).map_err(|e| failed(e.to_string()))?;
    Ok((id, Some(content)))
}

/// What a snapshot of a worktree of the repository at `workdir` taken
/// outside a run (`swarm resume`, `swarm clean` keeping what a worktree
/// holds) keeps out: the contents of the files its `.worktreeinclude`
/// names now (the worktree may hold them, or a copy a task made); none if
/// there is no list or it cannot be read.
pub fn screen_of(workdir: &Path) -> Screen {
    git2::Repository::open(workdir)
        .ok()
        .and_then(|git| find(workdir, &git).ok())
        .map(|included| included.screen)
        .unwrap_or_default()
}

/// Copies `included` from the main checkout `workdir` into the worktree
/// at `worktree`, never through a link in either: each file is read again
/// as hostile (no link, no FIFO, size-capped) and copied only if its
/// content is still what [`find`] saw (the checkout may have changed since:
/// a `git pull` can put a link where an ignored file was). In the
/// worktree (a warm one holds what tasks of earlier runs left), whatever
/// is at its path or in the way of it (a directory, a link, a file where
/// a directory was) is removed first, as what it is, never followed. The
/// paths left out, each with why.
pub fn copy_into(
    workdir: &Path,
    included: &Included,
    worktree: &Path,
) -> Result<Vec<String>, crate::untrusted::UntrustedError> {
    let mut skipped = Vec::new();
    let dir = crate::untrusted::TaskDir::open(worktree)?;
    for (rel, id) in &included.files {
        let Some(name) = rel.to_str() else {
            continue;
        };
        let limits = crate::untrusted::Limits {
            max_size: MAX_SIZE,
            what: "a file .worktreeinclude names",
        };
        let bytes = match crate::untrusted::read(workdir, name, limits) {
            Ok(bytes) => bytes,
            Err(e) => {
                skipped.push(format!("{name}: {e}"));
                continue;
            }
        };
        if Oid::hash_object(git2::ObjectType::Blob, &bytes).ok() != Some(*id) {
            skipped.push(format!("{name}: it changed since the run started"));
            continue;
        }
        // Each directory on the way: a real one, or made one.
        let parts: Vec<&str> = name.split('/').collect();
        for end in 1..parts.len() {
            let parent = parts[..end].join("/");
            match dir.kind(&parent)? {
                Some(crate::untrusted::EntryKind::Dir) => continue,
                Some(_) => {
                    dir.remove(&parent)?;
                }
                None => {}
            }
            dir.make_dir(&parent, 0o755)?;
        }
        dir.replace(name, &bytes, 0o644)?;
    }
    Ok(skipped)
}

/// Whether `rel` is one of the included files (setup's outputs leave
/// them out: they are the person's, never kept).
pub fn names(included: &Included, rel: &Path) -> bool {
    included.files.iter().any(|(p, _)| p == rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkout whose list names `.env` and everything under `build/`
    /// (ignored), with nested repositories and `.git` directories in there.
    fn checkout() -> (tempfile::TempDir, PathBuf, git2::Repository) {
        let dir = tempfile::tempdir().unwrap();
        let (repo, _) = crate::git::test_repo::with_files(
            dir.path(),
            &[(".gitignore", ".env\nbuild/\n"), (FILE, ".env\nbuild/\n")],
        );
        let root = repo.workdir.clone();
        let put = |rel: &str, content: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        };
        put(".env", "API_TOKEN=sk-live-0123456789abcdef\n");
        put("build/out.txt", "built\n");
        // A nested repository's own files, and its configuration.
        put(
            "build/vendor/.git/config",
            "[http]\n\textraheader = token\n",
        );
        put("build/vendor/lib.txt", "theirs\n");
        // A `.git` file (a linked worktree's) and a case variant.
        put("build/deep/x/.git", "gitdir: /elsewhere\n");
        put("build/deep/.GIT/config", "[core]\n");
        put("build/deep/kept.txt", "kept?\n");
        let git = git2::Repository::open(&root).unwrap();
        (dir, root, git)
    }

    #[test]
    fn no_git_directory_file_or_nested_repository_is_ever_included() {
        let (_dir, root, git) = checkout();
        let found = find(&root, &git).unwrap();
        let names: Vec<String> = found
            .files
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        // `build/deep` holds a `.GIT`: another repository, as git on a
        // case-insensitive system would read it.
        assert_eq!(names, [".env", "build/out.txt"]);
        assert!(found.redact.is_some());
        assert!(!found.screen.is_empty());
    }

    #[test]
    fn a_directory_or_link_a_task_left_at_an_included_path_is_replaced_by_the_file() {
        let (dir, root, git) = checkout();
        let found = find(&root, &git).unwrap();
        let worktree = dir.path().join("wt");
        std::fs::create_dir_all(worktree.join(".env/inside")).unwrap();
        let host = dir.path().join("host.txt");
        std::fs::write(&host, "host\n").unwrap();
        // `build` a link to a host directory: never written through.
        std::os::unix::fs::symlink(dir.path(), worktree.join("build")).unwrap();
        let skipped = copy_into(&root, &found, &worktree).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(
            std::fs::read_to_string(worktree.join(".env")).unwrap(),
            "API_TOKEN=sk-live-0123456789abcdef\n"
        );
        assert!(worktree.join("build").symlink_metadata().unwrap().is_dir());
        assert_eq!(
            std::fs::read_to_string(worktree.join("build/out.txt")).unwrap(),
            "built\n"
        );
        assert!(!dir.path().join("out.txt").exists());
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "host\n");
        // Again, over what the first copy made (a warm worktree).
        std::fs::remove_file(worktree.join(".env")).unwrap();
        std::os::unix::fs::symlink(&host, worktree.join(".env")).unwrap();
        copy_into(&root, &found, &worktree).unwrap();
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "host\n");
        assert!(worktree.join(".env").symlink_metadata().unwrap().is_file());
    }
}
