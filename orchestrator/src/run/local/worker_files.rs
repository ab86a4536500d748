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
    // The parent is swarm's (checked when it was made), and `name` is one
    // plain path component: made, or opened without following a link.
    let made = crate::untrusted::TaskDir::open_or_make(&dir.join(name), 0o755)
        .map_err(std::io::Error::other)?;
    if let Some((uid, gid)) = owner {
        nix::unistd::fchown(
            &made,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(std::io::Error::from)?;
    }
    Ok(made.path().to_path_buf())
}

/// Writes `<home>/.gitconfig` trusting every repository: git refuses one
/// owned by another user, and the checkouts and git views a sandboxed
/// identity works in stay root's. `home` is made fresh for each phase, so
/// the file is always new (never written through what an earlier attempt
/// left there).
pub(crate) fn trust_checkouts(
    home: &crate::untrusted::TaskDir,
) -> Result<(), crate::untrusted::UntrustedError> {
    home.write_new(".gitconfig", b"[safe]\n\tdirectory = *\n", 0o644)
        .map(drop)
}
