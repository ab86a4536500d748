//! Confining the paths the model names to the worktree.
//!
//! Every tool path is resolved against the worktree root. The check here is
//! lexical (no `..` above the root, absolute paths only inside the root);
//! symlinks are dealt with where the path is used: the file tools go through
//! a cap-std `Dir`, which refuses any resolution that leaves it, and the
//! search tools resolve the path once and walk without following links.

use std::io;
use std::path::{Component, Path, PathBuf};

/// The worktree as the tools see it.
pub(crate) struct Root {
    pub(crate) dir: cap_std::fs::Dir,
    /// The path the caller gave, as given: the model may quote it back.
    pub(crate) given: PathBuf,
    /// The same with symlinks resolved, which is what `/proc`, `canonicalize`
    /// and the walkers report.
    pub(crate) real: PathBuf,
}

impl Root {
    pub(crate) fn open(root: &Path) -> io::Result<Root> {
        let real = root.canonicalize()?;
        let dir = cap_std::fs::Dir::open_ambient_dir(&real, cap_std::ambient_authority())?;
        Ok(Root {
            dir,
            given: root.to_path_buf(),
            real,
        })
    }

    /// The path `p` relative to the root, `.` for the root itself.
    pub(crate) fn relative(&self, p: &str) -> Result<PathBuf, String> {
        let path = Path::new(p);
        let inside = if path.is_absolute() {
            [&self.given, &self.real]
                .into_iter()
                .find_map(|root| path.strip_prefix(root).ok())
                .ok_or_else(|| outside(p))?
        } else {
            path
        };
        let mut out = PathBuf::new();
        for component in inside.components() {
            match component {
                Component::Normal(name) => out.push(name),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !out.pop() {
                        return Err(outside(p));
                    }
                }
                // Only reachable for an absolute path that `strip_prefix`
                // left rooted, which cannot happen; refuse rather than guess.
                Component::RootDir | Component::Prefix(_) => return Err(outside(p)),
            }
        }
        if out.as_os_str().is_empty() {
            out.push(".");
        }
        Ok(out)
    }

    /// The real path of `p` for the walkers, refusing anything that resolves
    /// outside the root (through a symlink the lexical check cannot see).
    pub(crate) fn resolve(&self, p: &str) -> Result<PathBuf, String> {
        let rel = self.relative(p)?;
        let real = self
            .real
            .join(&rel)
            .canonicalize()
            .map_err(|e| io_error(p, &e))?;
        if real.starts_with(&self.real) {
            Ok(real)
        } else {
            Err(outside(p))
        }
    }

    /// How a path found by a walker is shown: relative to the root, with `/`.
    pub(crate) fn display(&self, found: &Path) -> String {
        let rel = found.strip_prefix(&self.real).unwrap_or(found);
        let shown = rel.to_string_lossy();
        if shown.is_empty() {
            ".".to_owned()
        } else {
            shown.into_owned()
        }
    }
}

pub(crate) fn outside(p: &str) -> String {
    format!("path {p} is outside the worktree")
}

/// An I/O error on `p` in words the model can act on.
pub(crate) fn io_error(p: &str, e: &io::Error) -> String {
    // cap-std reports a resolution that left the directory (through `..`
    // or a symlink) as this PermissionDenied; it is the same refusal as the
    // lexical one.
    if e.kind() == io::ErrorKind::PermissionDenied && e.to_string().contains("outside of") {
        return outside(p);
    }
    match e.kind() {
        io::ErrorKind::NotFound => format!("{p} does not exist"),
        io::ErrorKind::PermissionDenied => format!("permission denied: {p}"),
        io::ErrorKind::IsADirectory => format!("{p} is a directory"),
        io::ErrorKind::NotADirectory => format!("{p}: a component of the path is not a directory"),
        _ => format!("{p}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, Root) {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(tmp.path()).unwrap();
        (tmp, root)
    }

    #[test]
    fn relative_paths_are_normalised() {
        let (_tmp, root) = root();
        assert_eq!(root.relative("a/./b/../c").unwrap(), PathBuf::from("a/c"));
        assert_eq!(root.relative(".").unwrap(), PathBuf::from("."));
        assert_eq!(root.relative("a/..").unwrap(), PathBuf::from("."));
        assert_eq!(root.relative("").unwrap(), PathBuf::from("."));
    }

    #[test]
    fn escapes_are_refused() {
        let (_tmp, root) = root();
        for p in ["..", "../x", "a/../../x", "/etc/passwd"] {
            assert_eq!(root.relative(p).unwrap_err(), outside(p), "{p}");
        }
    }

    #[test]
    fn absolute_paths_inside_are_made_relative() {
        let (tmp, root) = root();
        let given = tmp.path().join("src/lib.rs");
        let real = root.real.join("src/lib.rs");
        for p in [given, real] {
            let p = p.to_str().unwrap();
            assert_eq!(root.relative(p).unwrap(), PathBuf::from("src/lib.rs"));
        }
        let top = tmp.path().to_str().unwrap();
        assert_eq!(root.relative(top).unwrap(), PathBuf::from("."));
    }

    #[test]
    fn resolve_refuses_symlinks_out() {
        let (tmp, root) = root();
        std::os::unix::fs::symlink("/etc", tmp.path().join("etc")).unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("sub", tmp.path().join("alias")).unwrap();
        assert_eq!(root.resolve("etc").unwrap_err(), outside("etc"));
        assert_eq!(root.resolve("alias").unwrap(), root.real.join("sub"));
        assert_eq!(root.display(&root.real.join("sub/x")), "sub/x");
        assert_eq!(root.display(&root.real), ".");
    }
}
