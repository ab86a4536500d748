//! The run-wide verify's base cache: build caches made by running the
//! verify command on the run's base, from which every verify of the run
//! that cannot keep its own caches starts (a copy, sharing extents where
//! the file system can) instead of from nothing.
//!
//! A verify's own caches are a lineage (`run::lineage`): kept only for a
//! commit that contains the one whose verify last wrote them. Across runs
//! that is rarely so: the last run's tip was never merged, so the next
//! run's first verify would build everything again, at a checkout cargo
//! has not seen. The base cache is built on the run's base (the person's
//! commit: every commit the run verifies descends from it), is a lineage
//! of its own (kept from one base to the next along the branch), and is
//! only ever written by a run of the verify on a base; what each verify
//! gets is a copy. So a verify rebuilds only what the run's merges
//! changed, and still finds nothing a commit that is not its ancestor
//! wrote: the copy was written by runs of the base's ancestors, and no
//! verify of a merge writes into the base cache.
//!
//! It is built once per base (nothing runs when its record names the run's
//! base already), as the run starts, beside the tasks; a verify that needs
//! it first waits for it. Only with the repository's caches (a sandboxed
//! run keeping its caches, `caches = true`, no other run holding them):
//! a run's own caches die with it, and building one base cache for them
//! would cost a verify to save nothing.

use git2::Oid;
use tokio::sync::OnceCell;

use super::super::lineage::Caches;

/// The base cache of one run: shared by its verify slots.
#[derive(Debug)]
pub(super) struct Base {
    /// The caches, one directory per tool (as each slot's).
    pub caches: Caches,
    /// The run's base.
    pub commit: Oid,
    /// Set once the caches are built for `commit` (or were already).
    pub built: OnceCell<()>,
}

impl Base {
    pub(super) fn new(caches: Caches, commit: Oid) -> Self {
        Self {
            caches,
            commit,
            built: OnceCell::new(),
        }
    }

    /// Whether the caches were built for the base already, to the end
    /// (by an earlier run from the same base): a build cut short (the
    /// run cancelled, timed out) is built again, from where it stopped.
    pub(super) fn current(&self) -> bool {
        self.caches.recorded() == Some(self.commit) && self.caches.finished() == Some(self.commit)
    }
}
