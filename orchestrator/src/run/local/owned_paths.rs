//! Path ownership: a task with `paths` or `creates` writes only there.
//!
//! Two walls enforce it. The sandbox's writable set ([`writable`]) is the
//! owned paths rather than the whole worktree, so that a sandboxed command
//! or agent sees its write elsewhere refused as it happens. The result
//! check ([`outside`]) compares every attempt's snapshot with its base and
//! fails the attempt for any file added, changed or deleted outside the
//! owned paths; it is what holds for WASM tasks (a WASI preopen cannot
//! express nested permissions, so the guest gets the whole worktree) and
//! unsandboxed runs, and what makes the sandbox's coarser grants (a
//! directory for a path that does not exist yet) safe.

use std::path::{Path, PathBuf};

use crate::plan::{Task, path_within};

/// How many names a message lists before it counts the rest.
const SHOWN: usize = 10;

/// What a task is told to do about files it wrote outside its paths.
pub(crate) fn help(files: usize) -> &'static str {
    match files {
        1 => "add it to `paths` or `creates`, or leave it to another task",
        _ => "add them to `paths` or `creates`, or leave them to another task",
    }
}

/// The paths under `workdir` a sandboxed task that owns `owned` (relative
/// to the repository root) may write: each owned directory as it is; for
/// an owned file, or a path that does not exist yet (a `creates` entry, or
/// a path in a directory not yet made), its parent directory.
///
/// A file is granted through its directory because that is how nearly
/// every tool writes one: `sed -i`, `perl -pi`, `patch`, editors,
/// formatters and code-mod tools write a temporary file beside it and
/// rename it over the original, which a grant of the file alone refuses
/// (sed fails, perl only warns and changes nothing).
///
/// Landlock rules, and the binds of the worker's file system view, need an
/// existing inode, so a path to be created can only be granted through a
/// directory that holds it. Missing directories on the way are made first
/// (empty directories are never committed, so this changes no result), so
/// the grant is the path's own parent, not a wider ancestor. That grant is
/// wider than the path (its siblings), which is safe because the result
/// check refuses whatever the task writes outside its owned paths.
///
/// Nothing is followed: a symlink at an owned path is granted through its
/// directory (it can only be replaced), and an owned path beneath a symlink
/// or a file is not granted at all (writing it means replacing that link or
/// file, which lies outside the path). A path inside another granted one is
/// left out: the outer grant covers it, and a separate grant would let the
/// task swap the inner path for a link before the next spawn (`verify`)
/// resolves the policy again. So no granted path's parent is writable, and
/// what a grant names cannot change while the policy is in use.
pub(crate) fn writable(workdir: &Path, owned: &[&str]) -> Vec<PathBuf> {
    let mut grants: Vec<PathBuf> = owned.iter().filter_map(|p| grant(workdir, p)).collect();
    grants.sort();
    grants.dedup();
    grants
        .iter()
        .filter(|p| {
            !grants
                .iter()
                .any(|outer| outer != *p && p.starts_with(outer))
        })
        .cloned()
        .collect()
}

/// What [`writable`] grants for one owned path `rel`: the worktree (a
/// place a task wrote, a warm one holding the last run's leftovers) is
/// looked at and added to only through a [`crate::untrusted::TaskDir`].
fn grant(workdir: &Path, rel: &str) -> Option<PathBuf> {
    use crate::untrusted::{EntryKind, TaskDir};
    let worktree = TaskDir::open(workdir).ok()?;
    let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    // The deepest real directory reached so far.
    let mut dir = workdir.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let sub = parts[..=i].join("/");
        match worktree.kind(&sub) {
            // A link to a directory is not one.
            Ok(Some(EntryKind::Dir)) => dir.push(part),
            // A file, a link or a special file at the owned path itself:
            // its directory, where a tool writes beside it and renames.
            Ok(Some(_)) if last => return Some(dir),
            // A file or a link on the way.
            Ok(Some(_)) => return None,
            Ok(None) if last => return Some(dir),
            // Only a directory can be on the way to the path (empty
            // directories are never committed).
            Ok(None) => match worktree.make_dir(&sub, 0o755) {
                Ok(_) => dir.push(part),
                Err(e) => {
                    tracing::debug!(path = %dir.join(part).display(), error = %e, "failed to create a directory on the way to an owned path");
                    return Some(dir);
                }
            },
            Err(_) => return None,
        }
    }
    Some(dir)
}

/// The files of `changed` (paths relative to the repository root, as a
/// snapshot lists what differs from its base) that `task` does not own:
/// none for a task without `paths` or `creates`.
pub(crate) fn outside(task: &Task, changed: &[String]) -> Vec<String> {
    let Some(owned) = task.owned() else {
        return Vec::new();
    };
    changed
        .iter()
        .filter(|p| !owned.iter().any(|o| path_within(p, o)))
        .cloned()
        .collect()
}

/// Why an attempt that wrote `files` outside the task's paths failed, e.g.
/// `wrote outside its paths: README.md (its paths: src/a; creates: src/b.rs)`.
pub(crate) fn describe(task: &Task, files: &[String]) -> String {
    let mut its = Vec::new();
    if !task.paths.is_empty() {
        its.push(format!("paths: {}", list(&task.paths)));
    }
    if !task.creates.is_empty() {
        its.push(format!("creates: {}", list(&task.creates)));
    }
    // A task that owns no paths says nothing of them (its files were
    // refused for what they hold: a `.worktreeinclude` file's content).
    let owned = match its.is_empty() {
        true => String::new(),
        false => format!(" (its {})", its.join("; ")),
    };
    format!("wrote outside its paths: {}{owned}", list(files))
}

/// Why a sandboxed attempt of `task` (which owns `owned`) that failed may
/// have failed for writing outside its paths, read from the end of its
/// error output `stderr`: the sandbox refuses such a write as it happens
/// (EROFS or EACCES), and the tool says only that, so the reason names
/// the rule and the paths, and the files when the tool named them. `None`
/// when the output shows no refusal.
pub(crate) fn refused_writes(task: &Task, workdir: &Path, stderr: &str) -> Option<String> {
    let owned = task.owned()?;
    // A directory made where the task may not write: EROFS, EACCES, or
    // (the read-only rest of its worktree seen through its view) ENOENT.
    let refusal = |l: &str| {
        l.contains("Read-only file system")
            || l.contains("Permission denied")
            || (l.contains("mkdir") && (l.contains("ENOENT") || l.contains("No such file")))
    };
    let lines: Vec<&str> = stderr.lines().filter(|l| refusal(l)).collect();
    if lines.is_empty() {
        return None;
    }
    // Words of those lines that name a path of the worktree outside the
    // task's own: `cannot create b/y`, `temporary file b/sedX1: ...`,
    // `Permission denied: 'b/y'`.
    let mut files: Vec<String> = Vec::new();
    // A temporary file a tool writes beside the file it changes (`sed -i`,
    // `perl -pi`): its name means nothing to the person; its directory
    // holds the file the tool meant to write.
    let mut temporary_in: Vec<String> = Vec::new();
    for line in &lines {
        let temporary = line.contains("temporary file");
        for word in line.split(|c: char| c.is_whitespace() || c == ',') {
            let word = unquoted(word);
            let rel = Path::new(word)
                .strip_prefix(workdir)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| PathBuf::from(word));
            let Some(rel) = rel
                .to_str()
                .filter(|r| !r.is_empty() && !r.starts_with('/'))
            else {
                continue;
            };
            let plausible = rel.contains('/') || workdir.join(rel).exists();
            if !plausible || rel.starts_with("..") || owned.iter().any(|o| path_within(rel, o)) {
                continue;
            }
            if temporary {
                let dir = match Path::new(rel.trim_start_matches("./")).parent() {
                    Some(d) if !d.as_os_str().is_empty() => format!("{}/", d.display()),
                    _ => "the worktree's top directory".to_string(),
                };
                if !temporary_in.contains(&dir) {
                    temporary_in.push(dir);
                }
            } else if !files.iter().any(|f| f == rel) {
                files.push(rel.to_string());
            }
        }
    }
    // EACCES has other causes (a file the task may not read); EROFS in a
    // sandboxed task is the read-only rest of its worktree, unless the
    // line names a path outside it (the system's, `read_paths`: the
    // hints' to say).
    let elsewhere = |l: &str| {
        super::hints::without_program(l)
            .split(|c: char| c.is_whitespace() || c == ',')
            .map(unquoted)
            .any(|w| w.starts_with('/') && !Path::new(w).starts_with(workdir))
    };
    if files.is_empty()
        && temporary_in.is_empty()
        && !lines
            .iter()
            .any(|l| l.contains("Read-only file system") && !elsewhere(l))
    {
        return None;
    }
    let owned: Vec<String> = owned.iter().map(|s| (*s).to_string()).collect();
    let mut named = match files.is_empty() {
        true => String::new(),
        false => format!(": it was refused {}", list(&files)),
    };
    if !temporary_in.is_empty() {
        named.push_str(match named.is_empty() {
            true => ": ",
            false => "; ",
        });
        named.push_str(&format!(
            "a tool's temporary file was refused in {} (`sed -i` and the like write one beside the file they change: that file is outside its paths)",
            list(&temporary_in)
        ));
    }
    Some(format!(
        "writes outside its paths are refused in the sandbox (its paths: {}){named}; {}",
        list(&owned),
        help(files.len() + temporary_in.len())
    ))
}

/// A word of a tool's message without the quotes and punctuation round a
/// path in it (`'b/y'`, `‘docs/sub’`, `b/y:`).
fn unquoted(word: &str) -> &str {
    word.trim_matches(|c: char| matches!(c, '\'' | '"' | '`' | ':' | '(' | ')' | '‘' | '’'))
}

/// `a, b, c` and, past [`SHOWN`] names, `and N more`.
fn list(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

#[cfg(test)]
#[path = "owned_paths_tests.rs"]
mod tests;
