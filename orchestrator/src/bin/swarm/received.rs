//! Plans swarm received from an untrusted origin (an MCP client): read
//! once, parsed and checked against what such an origin may set
//! (`plan::origin`), and kept by the SHA-256 of their bytes in
//! `.swarm/mcp/plans/<sha256>.toml`, made once, read-only. The `swarm run`
//! that runs one is told where it is; it reads it again without following
//! a link, checks that its bytes still have the hash that names it, and
//! checks them again itself. The client chooses neither the file's name
//! nor when it is read, so what runs is exactly what was checked.

use std::path::{Path, PathBuf};

use swarm_orchestrator::layout;
use swarm_orchestrator::plan::origin::files::{Files, inside, relative_name};
use swarm_orchestrator::plan::origin::{self, Origin};
use swarm_orchestrator::plan::{self, Plan, PlanError};
use swarm_orchestrator::trust::content_hash;
use swarm_orchestrator::untrusted::{self, Limits};

/// The largest plan a client may send or name.
pub(crate) const MAX_PLAN: u64 = 4 << 20;

const LIMITS: Limits = Limits {
    max_size: MAX_PLAN,
    what: "a plan",
};

/// A plan's bytes as received, and where its file names are taken from.
#[derive(Debug, Clone)]
pub(crate) struct Received {
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
    pub(crate) fn from_path(root: &Path, path: &str) -> Result<Self, String> {
        let shown = path.to_string();
        relative_name(path).map_err(|why| format!("the plan `{path}` {why}"))?;
        let path = inside("", path).map_err(|why| format!("the plan `{shown}` {why}"))?;
        let bytes = untrusted::read(root, &path, LIMITS)
            .map_err(|e| format!("read the plan: {e} (give a file in this repository)"))?;
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
        Self::new(bytes, dir, path)
    }

    /// A plan's text, as a client sent it: its file names are relative to
    /// the repository's root.
    pub(crate) fn from_text(text: String) -> Result<Self, String> {
        if text.len() as u64 > MAX_PLAN {
            return Err(format!(
                "the plan is {} bytes, more than the {MAX_PLAN} a plan may be",
                text.len()
            ));
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

    fn new(bytes: Vec<u8>, dir: String, shown: String) -> Result<Self, String> {
        let text =
            String::from_utf8(bytes).map_err(|_| format!("the plan `{shown}` is not UTF-8"))?;
        Ok(Self {
            hash: content_hash(text.as_bytes()),
            text,
            dir,
            shown,
        })
    }

    /// The plan, read as a plan from `origin` (its file names inside the
    /// repository at `root` only) and held to what `origin` may set.
    pub(crate) fn plan(
        &self,
        root: &Path,
        path: &Path,
        origin: Origin,
    ) -> Result<Plan, Box<PlanError>> {
        // What it sets is judged on its text first, before anything it
        // names is read or reached.
        let mut source = plan::Source::new(path, self.text.clone());
        source.name = self.shown.clone();
        // A misspelt key is said as one (with a "did you mean").
        plan::read_shape(&source)?;
        let help = match origin {
            Origin::Repository => crate::config_origin::UNTRUSTED_HELP,
            Origin::Mcp | Origin::Person => HELP,
        };
        if let Some(error) = origin::refuse(&source, origin, &origin::findings(&source), help) {
            return Err(Box::new(error));
        }
        let files = Files::Repository {
            root: root.to_path_buf(),
            dir: self.dir.clone(),
        };
        let mut plan = plan::parse_with(path, self.text.clone(), origin, files)?;
        plan.source.name = self.shown.clone();
        origin::admit(&plan, help)?;
        Ok(plan)
    }

    /// Keeps the bytes as `.swarm/mcp/plans/<hash>.toml` (made once,
    /// read-only; one already there must hold the same bytes): the file
    /// the run reads.
    pub(crate) fn store(&self, root: &Path) -> Result<PathBuf, String> {
        let state = swarm_orchestrator::state::State::create(root).map_err(|e| e.to_string())?;
        let dir = state
            .ensure_dir(&[layout::MCP, layout::PLANS])
            .map_err(|e| e.to_string())?;
        let name = format!("{}.toml", self.hash);
        let made = untrusted::create_new(&dir, &name, self.text.as_bytes())
            .map_err(|e| format!("keep the plan: {e}"))?;
        if !made {
            let there =
                untrusted::read(&dir, &name, LIMITS).map_err(|e| format!("keep the plan: {e}"))?;
            if there != self.text.as_bytes() {
                return Err(format!(
                    "keep the plan: {} holds other bytes than its name says; remove it",
                    dir.join(&name).display()
                ));
            }
        }
        Ok(dir.join(name))
    }

    /// The plan kept at `path` by [`Received::store`], read again without
    /// following a link: refused unless it is in `.swarm/mcp/plans/` and
    /// its bytes have the hash that names it.
    pub(crate) fn stored(root: &Path, path: &Path, dir: &str) -> Result<Self, String> {
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
            .ok_or_else(|| {
                format!(
                    "a plan from an MCP client runs from {} only, not {}",
                    plans.display(),
                    path.display()
                )
            })?
            .to_string();
        if !dir.is_empty() {
            relative_name(dir)
                .and_then(|()| inside("", dir))
                .map_err(|why| format!("the plan's directory `{dir}` {why}"))?;
        }
        let bytes = untrusted::read(&plans, &name, LIMITS).map_err(|e| format!("read {e}"))?;
        let hash = content_hash(&bytes);
        if name != format!("{hash}.toml") {
            return Err(format!(
                "{} does not hold the bytes its name says (sha256 {hash}); nothing runs",
                full.display()
            ));
        }
        let mut received = Self::new(bytes, dir.to_string(), String::new())?;
        received.shown = format!("plan-{}.toml", &hash[..12]);
        Ok(received)
    }
}

/// What a client that sent a plan which sets more than it may is told.
pub(crate) const HELP: &str = "a plan that comes over MCP may set only what swarm's defaults allow (no sandbox off, no network, no keys or calls sent elsewhere, no file outside the repository, no program of its own): its author runs it with `swarm run` if they mean it";
