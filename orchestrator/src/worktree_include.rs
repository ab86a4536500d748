//! `.worktreeinclude` (Claude Code's convention): files of the main
//! checkout that git ignores (a `.env`, local settings) copied into every
//! task's worktree, and never committed with a result.
//!
//! The list is the repository's (whoever can push wrote it), the files are
//! the person's: only files that are inside the repository, regular (no
//! link followed, none copied), not tracked and ignored by git are taken,
//! whatever the list says. A result that holds one of their contents in a
//! path of its own (a task that copied `.env` into a tracked file) is
//! refused by the result check, naming both.

use std::path::{Path, PathBuf};

use git2::Oid;
use ignore::gitignore::GitignoreBuilder;

/// The list's file name, at the repository's root.
pub const FILE: &str = ".worktreeinclude";

/// Most files one list may bring in.
const MAX_FILES: usize = 1000;

/// The files a `.worktreeinclude` brings into each worktree.
#[derive(Debug, Clone, Default)]
pub struct Included {
    /// Paths relative to the repository, sorted, and their contents' blob
    /// ids (what the result check looks for).
    pub files: Vec<(PathBuf, Oid)>,
    /// Whether git tracks the list itself: it came with the repository.
    pub list_tracked: bool,
}

impl Included {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The included file whose content is `blob`, if one is.
    pub fn holding(&self, blob: Oid) -> Option<&Path> {
        self.files
            .iter()
            .find(|(_, id)| *id == blob)
            .map(|(p, _)| p.as_path())
    }
}

/// Why the list could not be read, as a fragment after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    #[error("read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("read {path}: it names more than {MAX_FILES} files; list fewer")]
    TooMany { path: PathBuf },
}

/// The files the `.worktreeinclude` of the repository at `workdir` (git
/// repository `git`) brings in; none without one.
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
        for entry in entries.flatten() {
            let rel = dir.join(entry.file_name());
            if rel == Path::new(".git") {
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
            let id = Oid::hash_file(git2::ObjectType::Blob, entry.path()).map_err(|e| {
                IncludeError::Read {
                    path: entry.path(),
                    message: e.to_string(),
                }
            })?;
            files.push((rel, id));
            if files.len() > MAX_FILES {
                return Err(IncludeError::TooMany { path });
            }
        }
    }
    files.sort();
    Ok(Included {
        files,
        list_tracked,
    })
}

/// Copies `included` from the main checkout `workdir` into the worktree
/// at `worktree`, never through a link in it.
pub fn copy_into(workdir: &Path, included: &Included, worktree: &Path) -> std::io::Result<()> {
    for (rel, _) in &included.files {
        let to = crate::untrusted::beneath(worktree, rel)?;
        if to.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(&to)?;
        }
        std::fs::copy(workdir.join(rel), &to)?;
    }
    Ok(())
}
