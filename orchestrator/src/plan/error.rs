//! Errors in a plan, positioned in its source so that users see the file,
//! line and column, the offending line, and what to do about it.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// One problem with a plan file.
///
/// Rendered by the CLI with miette; the message reads after "failed to …"
/// is implied ("invalid plan: …").
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct PlanError {
    pub message: String,
    #[source_code]
    pub src: Option<NamedSource<Arc<str>>>,
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    pub label: String,
    #[help]
    pub help: Option<String>,
    /// Stable machine-readable kind, used by tests and `--events json`.
    pub kind: PlanErrorKind,
    /// The plan's other errors, in file order after this one (at most
    /// [`MAX_ERRORS`] in all), so that one pass over the plan fixes them all.
    #[related]
    pub related: Vec<PlanError>,
    /// Errors found beyond [`MAX_ERRORS`], counted but not kept.
    pub omitted: usize,
}

/// Most errors of one plan reported together: past this many, the rest are
/// usually the same mistake again, and the first screenful is what helps.
pub const MAX_ERRORS: usize = 20;

/// What kind of mistake a [`PlanError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanErrorKind {
    Io,
    Syntax,
    UnknownKey,
    BadValue,
    DuplicateId,
    UnknownDependency,
    SelfDependency,
    Cycle,
    /// Two tasks that may run side by side may write the same files.
    Overlap,
    Unsupported,
    Empty,
}

/// The source of a plan being checked: errors are built against it.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: Arc<str>,
}

impl Source {
    pub fn new(path: &Path, text: String) -> Self {
        Self {
            name: path.display().to_string(),
            text: text.into(),
        }
    }

    /// An error pointing at `span` of this source.
    pub fn error(
        &self,
        kind: PlanErrorKind,
        message: impl Into<String>,
        span: Option<Range<usize>>,
        label: impl Into<String>,
    ) -> PlanError {
        PlanError {
            message: message.into(),
            src: Some(NamedSource::new(self.name.clone(), self.text.clone()).with_language("toml")),
            span: span.map(|r| SourceSpan::from(r.start..r.end.max(r.start))),
            label: label.into(),
            help: None,
            kind,
            related: Vec::new(),
            omitted: 0,
        }
    }

    /// `line:col` (1-based) of a byte offset, for messages that name a place
    /// outside the labelled span.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.len(), |nl| before.len() - nl - 1)
            + 1;
        (line, col)
    }
}

impl PlanError {
    /// An error with no position (the file as a whole).
    pub fn plain(kind: PlanErrorKind, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            src: None,
            span: None,
            label: String::new(),
            help: None,
            kind,
            related: Vec::new(),
            omitted: 0,
        }
    }

    /// All of `errors` as one: the first in file order (whole-file errors
    /// first), the next ones [`related`](Self::related), at most
    /// [`MAX_ERRORS`] kept. `None` when there are none.
    pub fn bundle(errors: Vec<PlanError>) -> Option<PlanError> {
        let carried: usize = errors.iter().map(|e| e.omitted).sum();
        let mut errors: Vec<PlanError> = errors
            .into_iter()
            .flat_map(|mut e| {
                let related = std::mem::take(&mut e.related);
                std::iter::once(e).chain(related)
            })
            .collect();
        errors.sort_by_key(|e| e.span.map_or(0, |s| s.offset()));
        // The same mistake reached twice (a default every task inherits, a
        // matrix task's every expansion) is reported once.
        let mut seen = std::collections::HashSet::new();
        errors.retain(|e| seen.insert((e.span.map(|s| (s.offset(), s.len())), e.message.clone())));
        let omitted = carried + errors.len().saturating_sub(MAX_ERRORS);
        errors.truncate(MAX_ERRORS);
        let mut errors = errors.into_iter();
        let mut first = errors.next()?;
        first.related = errors.collect();
        first.omitted = omitted;
        Some(first)
    }

    /// This error and its related ones, in file order.
    pub fn all(&self) -> impl Iterator<Item = &PlanError> {
        std::iter::once(self).chain(&self.related)
    }

    /// How many errors this one stands for (the omitted ones included).
    pub fn count(&self) -> usize {
        1 + self.related.len() + self.omitted
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The closest of `candidates` to `word`, if any is close enough to be a
/// plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Optimal string alignment counts a swapped pair of letters as one
    // edit, the most common typo ("tiemout"); allow about one edit in three.
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(
            did_you_mean("tiemout", ["timeout", "retries"]),
            Some("timeout")
        );
        assert_eq!(did_you_mean("zzz", ["timeout", "retries"]), None);
    }

    #[test]
    fn line_col_is_one_based() {
        let src = Source::new(Path::new("p.toml"), "a\nbc\n".into());
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(3), (2, 2));
    }
}
