//! What people read, as text: the lines a run prints as it goes, the
//! table at its end, a task's transcript, a cassette. Nothing here prints
//! or reads the terminal; the binary decides where the text goes and
//! whether it is coloured.

pub mod cassette;
pub mod compare;
pub mod progress;
pub mod runs;
pub mod summary;
pub mod transcript;
mod units;

pub use progress::Progress;
