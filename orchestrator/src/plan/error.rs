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
}

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
        }
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
