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
    /// Where each line starts, made on first use: a plan of 10,000 tasks
    /// has as many messages naming a line.
    lines: Arc<std::sync::OnceLock<Vec<usize>>>,
}

impl Source {
    pub fn new(path: &Path, text: String) -> Self {
        Self {
            name: path.display().to_string(),
            text: text.into(),
            lines: Arc::default(),
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
        let offset = offset.min(self.text.len());
        let starts = self.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        // The last line start at or before `offset`.
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let start = starts.get(line - 1).copied().unwrap_or(0);
        (line, offset - start + 1)
    }
}

/// The text with the lines shown around `span` (its own and the ones
/// before and after it) cut to a window when they are long, the span
/// in that text, and the span's real column when its own line is cut;
/// `None` when no line shown
/// is long. Line numbers stay right. A minified plan's one line of
/// 100,000 characters would otherwise fill the screen, and past column
/// 65,535 the renderer cannot even pad to it.
fn cut_long_lines(
    text: &str,
    span: &Range<usize>,
) -> Option<(String, Range<usize>, Option<usize>)> {
    let span = &(span.start.min(text.len())..span.end.max(span.start).min(text.len()));
    let line_start = |at: usize| {
        text.get(..at)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |n| n + 1)
    };
    let line_end = |at: usize| {
        text.get(at..)
            .and_then(|t| t.find('\n'))
            .map_or(text.len(), |n| at + n)
    };
    let (start, end) = (line_start(span.start), line_end(span.start));
    let before = (start > 0).then(|| line_start(start - 1));
    let after = (end < text.len()).then(|| end + 1);
    let first = before.unwrap_or(start);
    let last = after.map_or(end, line_end);
    let long = |from: usize, to: usize| to - from > MAX_LINE_SHOWN;
    if !long(start, end)
        && before.is_none_or(|b| !long(b, start.saturating_sub(1)))
        && after.is_none_or(|a| !long(a, line_end(a)))
    {
        return None;
    }
    let column =
        long(start, end).then(|| text.get(start..span.start).map_or(0, |t| t.chars().count()) + 1);
    let mut out = String::with_capacity(first + 4 * MAX_LINE_SHOWN);
    out.push_str(text.get(..first).unwrap_or_default());
    if let Some(b) = before {
        out.push_str(&cut(
            text.get(b..start - 1).unwrap_or_default(),
            MAX_LINE_SHOWN,
        ));
        out.push('\n');
    }
    // The error's line: a window from a little before the span.
    let (from, to) = if long(start, end) {
        let from =
            text.floor_char_boundary(span.start.saturating_sub(MAX_LINE_SHOWN / 3).max(start));
        (
            from,
            text.ceil_char_boundary((from + MAX_LINE_SHOWN).min(end)),
        )
    } else {
        (start, end)
    };
    if from > start {
        out.push('…');
    }
    let shown_start = out.len() + (span.start - from);
    out.push_str(text.get(from..to).unwrap_or_default());
    let shown_end = (shown_start + (span.end - span.start)).min(out.len());
    if to < end {
        out.push('…');
    }
    if let Some(a) = after {
        out.push('\n');
        out.push_str(&cut(
            text.get(a..line_end(a)).unwrap_or_default(),
            MAX_LINE_SHOWN,
        ));
    }
    out.push_str(text.get(last..).unwrap_or_default());
    Some((out, shown_start..shown_end.max(shown_start), column))
}

/// Lines of a plan longer than this (in bytes) are shown cut in errors.
const MAX_LINE_SHOWN: usize = 240;

/// The start of `line`, at most `max` bytes of it (to a character
/// boundary), with `…` where it was cut.
fn cut(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_string();
    }
    let to = line.ceil_char_boundary(max);
    format!("{}…", line.get(..to).unwrap_or_default())
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

    /// What to show of this error's source when a line around its span is
    /// long: those lines cut, the span moved into the cut text and the
    /// label saying the real column. `None`: show the source as it is.
    /// (The span itself keeps the plan's offsets, which ordering and
    /// positions need.)
    pub fn shown_cut(&self) -> Option<ShownCut> {
        let src = self.src.as_ref()?;
        let span = self.span?;
        let range = span.offset()..span.offset() + span.len();
        let (text, shown, column) = cut_long_lines(src.inner(), &range)?;
        Some(ShownCut {
            source: NamedSource::new(src.name(), Arc::from(text)).with_language("toml"),
            span: SourceSpan::from(shown),
            label: match column {
                Some(column) => {
                    format!("{} (column {column} of a long line, shown cut)", self.label)
                }
                None => self.label.clone(),
            },
        })
    }
}

/// An error's source as shown when its lines are long ([`PlanError::shown_cut`]).
#[derive(Debug)]
pub struct ShownCut {
    pub source: NamedSource<Arc<str>>,
    pub span: SourceSpan,
    pub label: String,
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
        assert_eq!(src.line_col(2), (2, 1));
        assert_eq!(src.line_col(5), (3, 1));
        assert_eq!(src.line_col(99), (3, 1));
    }

    /// A long line is shown cut around the error, with the real column;
    /// the lines around it are cut too, and line numbers stay right.
    #[test]
    fn long_lines_are_shown_cut_around_the_error() {
        let long = "x".repeat(70_000);
        let text = format!("a = 1\nrun = \"{long}\", timeout = 5\nb = \"{long}\"\n");
        let src = Source::new(Path::new("p.toml"), text.clone());
        let at = text.find("5\nb").unwrap();
        let e = src.error(PlanErrorKind::BadValue, "bad", Some(at..at + 1), "here");
        let cut = e.shown_cut().unwrap();
        let shown = cut.source.inner();
        assert!(shown.len() < 1000, "{}", shown.len());
        assert_eq!(shown.lines().count(), 3);
        assert!(shown.starts_with("a = 1\n…"));
        let span = cut.span.offset()..cut.span.offset() + cut.span.len();
        assert_eq!(&shown[span], "5");
        assert_eq!(cut.label, "here (column 70021 of a long line, shown cut)");
        // The error keeps the plan's own offsets.
        assert_eq!(e.span.map(|s| s.offset()), Some(at));
        // Rendering it does not panic however far the column is.
        let text = super::super::render(&[&e], miette::Severity::Error, 0, false);
        assert!(text.contains("column 70021"), "{text}");
        // Short lines are shown as they are.
        let short = Source::new(Path::new("p.toml"), "a = 1\n".into());
        let e = short.error(PlanErrorKind::BadValue, "bad", Some(4..5), "here");
        assert!(e.shown_cut().is_none());
    }
}
