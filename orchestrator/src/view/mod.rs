//! What people read, as text: the lines a run prints as it goes, the
//! table at its end, a task's transcript, a cassette, and what commands
//! answer with (the list of runs, an experiment's ranking, what `clean`
//! freed, `doctor`'s probe, what a configuration weakens, a conflict
//! resolved). Nothing here prints or reads the terminal; the binary
//! decides where the text goes and whether it is coloured.

pub mod cassette;
pub mod clean;
pub mod compare;
pub mod doctor;
pub mod progress;
pub mod resolve;
pub mod runs;
pub mod summary;
pub mod transcript;
pub mod trust;
mod units;
pub mod validation;

pub use progress::Progress;
