//! What swarm makes for the identity sandboxed commands run as (when it is
//! not swarm's own): a per-task build cache directory handed to it, and a
//! `.gitconfig` in its HOME that trusts the checkouts it works in (root's).
//! Used by an attempt, a variant's score and the run-wide verify alike.

use std::path::{Path, PathBuf};

/// `<dir>/<name>`, a per-task build cache's directory of one task (or of
/// the run-wide verify), made if missing and handed to `owner`.
pub(crate) fn owned_cache_dir(
    dir: &Path,
    name: &str,
    owner: Option<(u32, u32)>,
) -> std::io::Result<PathBuf> {
    let dir = dir.join(name);
    // The parent is swarm's (checked when it was made), and `name` is one
    // plain path component.
    match std::fs::create_dir(&dir) {
        Ok(()) => {
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::lchown(&dir, Some(uid), Some(gid))?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    Ok(dir)
}

/// Writes `<home>/.gitconfig` trusting every repository: git refuses one
/// owned by another user, and the checkouts and git views a sandboxed
/// identity works in stay root's. Only ever a new file: an earlier
/// attempt may have left a link there, which a plain write would follow
/// as root (an existing file is left as it is).
pub(crate) fn trust_checkouts(home: &Path) -> std::io::Result<()> {
    let config = home.join(".gitconfig");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&config)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"[safe]\n\tdirectory = *\n"))
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
}
