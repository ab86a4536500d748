//! The repository map: what the planner shows the model about a repository
//! before it splits a goal into tasks, built cheaply and deterministically
//! from one commit, within a token budget.
//!
//! Everything is read from the commit's objects through libgit2, never from
//! the working tree, so the map is what tasks starting from that commit will
//! see, and the same commit, goal and budget always give the same text
//! (sorted, no timestamps, no absolute paths). In priority order, the map
//! holds:
//!
//! 1. a header: the number of tracked files and their total size;
//! 2. the packages, from manifests anywhere in the tree (Cargo, npm, Go,
//!    Python; vendored directories skipped) with the dependencies between
//!    them (`packages/`);
//! 3. the project's instructions, `AGENTS.md` or else `CLAUDE.md` at the
//!    root, truncated to a share of the budget;
//! 4. the test and build commands it can infer (`commands.rs`);
//! 5. the identifiers the goal names and where they occur (`goal.rs`);
//! 6. the file tree with sizes, collapsed deepest-first to fit (`files.rs`).
//!
//! When the whole does not fit, later parts shrink first, and a part bulkier
//! than its share of the budget shrinks before that (`render.rs`). Sizes come
//! from object headers; whole blobs are read only for the manifests, the
//! instructions and, when the goal names identifiers, the search, which reads
//! every blob once on every core (`read.rs`).

mod commands;
mod files;
mod goal;
mod packages;
mod read;
mod render;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use git2::{ObjectType, Oid, Repository};

pub use goal::identifiers;

/// The budget when none is given: about 8,000 tokens.
pub const DEFAULT_TOKEN_BUDGET: usize = 8000;

/// What to build a map for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOptions {
    /// The map's size limit, in estimated tokens (bytes / 4, rounded up).
    pub token_budget: usize,
    /// The user's goal; identifiers in it are looked up in the commit.
    pub goal: String,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self {
            token_budget: DEFAULT_TOKEN_BUDGET,
            goal: String::new(),
        }
    }
}

/// A repository map and what was found while building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoMap {
    /// The map, Markdown-ish plain text: what the model sees.
    pub text: String,
    /// Estimated tokens of `text` (bytes / 4, rounded up); never more than
    /// the budget.
    pub tokens: usize,
    /// Tracked files at the commit (blobs and symbolic links; submodules
    /// are not counted).
    pub files: usize,
    /// The obvious command that runs the tests, if any (`cargo test`,
    /// `npm test`, `go test ./...`, `python -m pytest`, `make test`, with
    /// `cd DIR && ` in front when the manifest is not at the root).
    pub test_command: Option<String>,
    /// The obvious build command, if any (`cargo build`, `npm run build`,
    /// `go build ./...`, `make build`).
    pub build_command: Option<String>,
    /// Hex digest of `text` (its git blob id): equal maps have equal hashes.
    pub hash: String,
}

/// Failure to build a map, as a fragment that reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("open repository {}: {}", path.display(), source.message())]
    Open { path: PathBuf, source: git2::Error },
    #[error("read commit {commit}: {}", source.message())]
    Commit { commit: Oid, source: git2::Error },
    #[error("read the tree of commit {commit}: {}", source.message())]
    Tree { commit: Oid, source: git2::Error },
    #[error("read `{path}` at commit {commit}: {}", source.message())]
    Blob {
        path: String,
        commit: Oid,
        source: git2::Error,
    },
    #[error("start a thread to read commit {commit}: {source}")]
    Thread { commit: Oid, source: std::io::Error },
}

/// Builds the map of `commit` in `repo` for `options.goal`, within
/// `options.token_budget`.
pub fn build(
    repo: &crate::git::Repo,
    commit: Oid,
    options: &MapOptions,
) -> Result<RepoMap, MapError> {
    let git = Repository::open(&repo.common_dir).map_err(|source| MapError::Open {
        path: repo.common_dir.clone(),
        source,
    })?;
    let tree = git
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|source| MapError::Commit { commit, source })?;
    let words = goal::identifiers(&options.goal);
    let search = goal::Search::new(&words);
    let listing = read::list(&git, &repo.common_dir, commit, &tree, &search)?;

    let manifests = read::manifests(&git, commit, &listing.files)?;
    let packages = packages::scan(&manifests);
    let commands = commands::infer(&manifests, &listing.files, &packages);
    let instructions = read::instructions(&git, commit, &listing.files)?;
    let hits = search.results(|i| listing.files[i].path.clone(), &listing.counts);

    let parts = render::Parts {
        files: &listing.files,
        submodules: listing.submodules,
        packages: &packages,
        instructions: instructions.as_ref(),
        commands: &commands,
        hits: &hits,
    };
    let text = render::fit(&parts, options.token_budget);
    Ok(RepoMap {
        tokens: estimate_tokens(&text),
        files: listing.files.len(),
        test_command: commands.test.first().map(|c| c.command.clone()),
        build_command: commands.build.first().map(|c| c.command.clone()),
        hash: digest(&text),
        text,
    })
}

/// Estimated tokens of `text`: its bytes / 4, rounded up.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// The git blob id of `text`, in hex.
fn digest(text: &str) -> String {
    Oid::hash_object(ObjectType::Blob, text.as_bytes())
        .map(|oid| oid.to_string())
        // Hashing bytes in memory does not fail; the length is the fallback.
        .unwrap_or_else(|_| format!("{:040x}", text.len()))
}
