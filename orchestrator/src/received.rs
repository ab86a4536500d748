//! Plans received from an untrusted origin (an MCP client): read once,
//! parsed and checked against what such an origin may set
//! (`plan::origin`), and kept by the SHA-256 of their bytes in
//! `.swarm/mcp/plans/<sha256>.toml`, made once, read-only. The `swarm run`
//! that runs one is told where it is; it reads it again without following
//! a link, checks that its bytes still have the hash that names it, and
//! checks them again itself. The client chooses neither the file's name
//! nor when it is read, so what runs is exactly what was checked.

use std::path::{Path, PathBuf};

use crate::layout;
use crate::plan::origin::files::{Files, inside, relative_name};
use crate::plan::origin::{self, Origin};
use crate::plan::{self, Plan, PlanError};
use crate::state::{State, StateError};
use crate::trust::{UNTRUSTED_HELP, content_hash};
use crate::untrusted::{self, Limits, UntrustedError};

/// The largest plan a client may send or name.
pub const MAX_PLAN: u64 = 4 << 20;

const LIMITS: Limits = Limits {
    max_size: MAX_PLAN,
    what: "a plan",
};

/// What a client that sent a plan which sets more than it may is told.
pub const HELP: &str = "a plan that comes over MCP may set only what swarm's defaults allow (no sandbox off, no network, no keys or calls sent elsewhere, no file outside the repository, no program of its own): its author runs it with `swarm run` if they mean it";

/// Why a plan was not received, kept or read again, as a fragment after
/// "failed to" (or a sentence of its own).
#[derive(Debug, thiserror::Error)]
pub enum ReceivedError {
    #[error("the plan `{name}` {why}")]
    BadName { name: String, why: &'static str },
    #[error("read the plan: {0} (give a file in this repository)")]
    Read(UntrustedError),
    #[error("the plan `{0}` is not UTF-8")]
    NotUtf8(String),
    #[error("the plan is {0} bytes, more than the {MAX_PLAN} a plan may be")]
    TooLarge(usize),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("keep the plan: {0}")]
    Keep(UntrustedError),
    #[error("keep the plan: {} holds other bytes than its name says; remove it", .0.display())]
    Changed(PathBuf),
    #[error("a plan from an MCP client runs from {} only, not {}", plans.display(), path.display())]
    Elsewhere { plans: PathBuf, path: PathBuf },
    #[error("the plan's directory `{dir}` {why}")]
    BadDir { dir: String, why: &'static str },
    #[error("read {0}")]
    ReadKept(UntrustedError),
    #[error("{} does not hold the bytes its name says (sha256 {hash}); nothing runs", path.display())]
    WrongHash { path: PathBuf, hash: String },
}

/// A plan's bytes as received, and where its file names are taken from.
#[derive(Debug, Clone)]
pub struct Received {
    pub text: String,
    /// The SHA-256 of `text`, in hex.
    pub hash: String,
    /// The directory inside the repository its file names are relative
    /// to (`""`: the root).
    pub dir: String,
    /// How messages name it.
    pub shown: String,
}

impl Received {
    /// The plan file `path` (relative to the repository's root `root`),
    /// read without following a link.
    pub fn from_path(root: &Path, path: &str) -> Result<Self, ReceivedError> {
        let bad = |why| ReceivedError::BadName {
            name: path.to_string(),
            why,
        };
        relative_name(path).map_err(bad)?;
        let path = inside("", path).map_err(bad)?;
        refuse_kept(root, &path).map_err(bad)?;
        let bytes = untrusted::read(root, &path, LIMITS).map_err(ReceivedError::Read)?;
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
        Self::new(bytes, dir, path)
    }

    /// A plan's text, as a client sent it: its file names are relative to
    /// the repository's root.
    pub fn from_text(text: String) -> Result<Self, ReceivedError> {
        if text.len() as u64 > MAX_PLAN {
            return Err(ReceivedError::TooLarge(text.len()));
        }
        let hash = content_hash(text.as_bytes());
        let shown = format!("plan-{}.toml", &hash[..12]);
        Ok(Self {
            text,
            hash,
            dir: String::new(),
            shown,
        })
    }

    fn new(bytes: Vec<u8>, dir: String, shown: String) -> Result<Self, ReceivedError> {
        let text = String::from_utf8(bytes).map_err(|_| ReceivedError::NotUtf8(shown.clone()))?;
        Ok(Self {
            hash: content_hash(text.as_bytes()),
            text,
            dir,
            shown,
        })
    }

    /// The plan, read as a plan from `origin` (its file names only as
    /// files git tracks at the run's base in the repository at `root`:
    /// `base` when the person chose it, else the plan's own) and held to
    /// what `origin` may set.
    pub fn plan(
        &self,
        root: &Path,
        path: &Path,
        origin: Origin,
        base: Option<&str>,
    ) -> Result<Plan, Box<PlanError>> {
        // What it sets is judged on its text first, before anything it
        // names is read or reached.
        let mut source = plan::Source::new(path, self.text.clone());
        source.name = self.shown.clone();
        // A misspelt key is said as one (with a "did you mean").
        plan::read_shape(&source)?;
        let help = match origin {
            Origin::Repository => UNTRUSTED_HELP,
            Origin::Mcp | Origin::Person => HELP,
        };
        if let Some(error) = origin::refuse(&source, origin, &origin::findings(&source), help) {
            return Err(Box::new(error));
        }
        let files = Files::repository(root, &self.dir, base);
        let mut plan = plan::parse_with(path, self.text.clone(), origin, files)?;
        plan.source.name = self.shown.clone();
        origin::admit(&plan, help)?;
        Ok(plan)
    }

    /// Keeps the bytes as `.swarm/mcp/plans/<hash>.toml` (made once,
    /// read-only; one already there must hold the same bytes): the file
    /// the run reads.
    pub fn store(&self, root: &Path) -> Result<PathBuf, ReceivedError> {
        let state = State::create(root)?;
        let dir = state.ensure_dir(&[layout::MCP, layout::PLANS])?;
        let name = format!("{}.toml", self.hash);
        let made = untrusted::create_new(&dir, &name, self.text.as_bytes())
            .map_err(ReceivedError::Keep)?;
        if !made {
            let there = untrusted::read(&dir, &name, LIMITS).map_err(ReceivedError::Keep)?;
            if there != self.text.as_bytes() {
                return Err(ReceivedError::Changed(dir.join(&name)));
            }
        }
        Ok(dir.join(name))
    }

    /// The plan kept at `path` by [`Received::store`], read again without
    /// following a link: refused unless it is in `.swarm/mcp/plans/` and
    /// its bytes have the hash that names it.
    pub fn stored(root: &Path, path: &Path, dir: &str) -> Result<Self, ReceivedError> {
        let plans = root
            .join(layout::STATE_DIR)
            .join(layout::MCP)
            .join(layout::PLANS);
        let full = match path.is_absolute() {
            true => path.to_path_buf(),
            false => root.join(path),
        };
        let name = full
            .strip_prefix(&plans)
            .ok()
            .and_then(|p| p.to_str())
            .filter(|n| !n.contains('/'))
            .ok_or_else(|| ReceivedError::Elsewhere {
                plans: plans.clone(),
                path: path.to_path_buf(),
            })?
            .to_string();
        if !dir.is_empty() {
            relative_name(dir)
                .and_then(|()| inside("", dir))
                .map_err(|why| ReceivedError::BadDir {
                    dir: dir.to_string(),
                    why,
                })?;
        }
        let bytes = untrusted::read(&plans, &name, LIMITS).map_err(ReceivedError::ReadKept)?;
        let hash = content_hash(&bytes);
        if name != format!("{hash}.toml") {
            return Err(ReceivedError::WrongHash { path: full, hash });
        }
        let mut received = Self::new(bytes, dir.to_string(), String::new())?;
        received.shown = format!("plan-{}.toml", &hash[..12]);
        Ok(received)
    }
}

/// Why the plan file `path` (from the repository's root) is not one a
/// client may name, if it is not: one in `.git` (a checkout's token in its
/// configuration) or `.swarm` (but the plans `plan_goal` writes for
/// clients), or one git ignores (an `.env`): a plan's errors show its
/// lines. A file of the working tree git does not ignore, committed or
/// not, is one the person keeps beside their work, as a plan they wrote
/// and have not committed yet.
fn refuse_kept(root: &Path, path: &str) -> Result<(), &'static str> {
    let goals = format!("{}/{}/{}/", layout::STATE_DIR, layout::MCP, layout::GOALS);
    if let Some(name) = path.strip_prefix(&goals)
        && !name.contains('/')
    {
        return Ok(());
    }
    if path.split('/').any(origin::files::is_reserved) {
        return Err("is in git's or swarm's own files, which a client never reads");
    }
    // One git tracks is not ignored, whatever its ignore files say.
    let ignored = crate::git::Repo::discover(root)
        .and_then(|repo| repo.open())
        .map(|git| {
            let tracked = git
                .index()
                .is_ok_and(|index| index.get_path(Path::new(path), 0).is_some());
            !tracked && git.is_path_ignored(path).unwrap_or(true)
        })
        .unwrap_or(true);
    if ignored {
        return Err("is a file git ignores (or not in a repository), which a client never reads");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_plan_is_read_again_by_its_hash_only() {
        let root = tempfile::tempdir().unwrap();
        let received =
            Received::from_text("[[task]]\nid = \"a\"\ncmd = \"true\"\n".into()).unwrap();
        let kept = received.store(root.path()).unwrap();
        // Kept once: the same bytes again are the same file.
        assert_eq!(received.store(root.path()).unwrap(), kept);
        let again = Received::stored(root.path(), &kept, "").unwrap();
        assert_eq!((again.text, again.shown), (received.text, received.shown));
        let elsewhere = Received::stored(root.path(), Path::new("plan.toml"), "");
        assert!(matches!(elsewhere, Err(ReceivedError::Elsewhere { .. })));
        assert!(matches!(
            Received::from_path(root.path(), "../plan.toml"),
            Err(ReceivedError::BadName { .. })
        ));
    }

    /// A client names a plan of the working tree (one not committed yet,
    /// one `plan_goal` wrote), never git's configuration, swarm's state or
    /// a file git ignores: a plan's errors show its lines.
    #[test]
    fn a_client_names_no_plan_git_or_swarm_keeps_or_git_ignores() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        git2::Repository::init(&root).unwrap();
        let plan = "[[task]]\nid = \"a\"\nrun = \"true\"\n";
        for (path, content) in [
            (".gitignore", ".env\nignored/\n"),
            (".env", plan),
            ("ignored/plan.toml", plan),
            ("plans/new.toml", plan),
            (".swarm/mcp/goals/g.toml", plan),
            (".swarm/mcp/plans/p.toml", plan),
            (".swarm/runs/r/plan.toml", plan),
        ] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), content).unwrap();
        }
        for path in ["plans/new.toml", ".swarm/mcp/goals/g.toml"] {
            assert!(Received::from_path(&root, path).is_ok(), "{path}");
        }
        for (path, why) in [
            (".git/config", "git's or swarm's own files"),
            (".GIT/config", "git's or swarm's own files"),
            (".swarm/mcp/plans/p.toml", "git's or swarm's own files"),
            (".swarm/runs/r/plan.toml", "git's or swarm's own files"),
            (
                ".swarm/mcp/goals/../plans/p.toml",
                "git's or swarm's own files",
            ),
            (".env", "a file git ignores"),
            ("ignored/plan.toml", "a file git ignores"),
        ] {
            let error = Received::from_path(&root, path).unwrap_err().to_string();
            assert!(error.contains(why), "{path}: {error}");
        }
    }
}
