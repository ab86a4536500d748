//! Every run of a repository, as `swarm runs` lists them: each run's row
//! (its state decided as `swarm status` decides it), and what was found
//! wrong on the way (a run directory without a readable journal, an empty
//! one, journal lines skipped), in the order found.

use std::time::SystemTime;

use crate::git::{GitError, Repo, refs};
use crate::journal::{self, Skipped};
use crate::report::{self, RunRow};
use crate::state::{State, StateError};

/// The runs of a repository.
#[derive(Debug, Default)]
pub struct Listing {
    /// Newest first.
    pub rows: Vec<RunRow>,
    /// What was found wrong, in the order found.
    pub notes: Vec<Note>,
}

/// Something wrong with a run's journal, said rather than hidden.
#[derive(Debug)]
pub enum Note {
    /// Journal lines a tolerant read skipped.
    Skipped(Skipped),
    /// A run directory without a readable journal: its coordinator died
    /// before it wrote anything (`error` why, a fragment after "failed
    /// to").
    Unreadable { run: String, error: String },
    /// A run whose journal is empty: it never started.
    Empty { run: String },
}

/// Why the runs could not be listed, as a fragment after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Every run of `repo`, as of `now`.
pub fn list_runs(repo: &Repo, now: SystemTime) -> Result<Listing, ListError> {
    State::check_untracked(repo)?;
    let names = match State::open(&repo.workdir)? {
        Some(state) => state.runs()?,
        None => Vec::new(),
    };
    let mut listing = Listing::default();
    for name in names {
        let dir = report::run_dir(&repo.workdir, &name);
        let (events, skipped) = match journal::read_tolerant(&dir.join(crate::layout::JOURNAL)) {
            Ok(read) => read,
            Err(e) => {
                listing.notes.push(Note::Unreadable {
                    run: name,
                    error: e.to_string(),
                });
                continue;
            }
        };
        listing.notes.extend(skipped.into_iter().map(Note::Skipped));
        let Some(report) = report::fold(&events) else {
            listing.notes.push(Note::Empty { run: name });
            continue;
        };
        let branch = repo
            .has_ref(&refs::integration(&name))?
            .then(|| refs::integration_branch(&name));
        let driven = super::lock::is_held(&dir);
        listing.rows.push(RunRow::of(&report, driven, branch, now));
    }
    // RFC 3339 UTC times of one format sort as the times do.
    listing
        .rows
        .sort_by(|a, b| b.started_at.cmp(&a.started_at).then(a.run.cmp(&b.run)));
    Ok(listing)
}
