//! Plan errors as people read them: each with the lines of the plan it
//! points at (miette's graphical report), long lines cut around the error.

use std::fmt::Write as _;

use super::error::{PlanError, ShownCut};

/// `errors` (or warnings), each on its own (miette would nest related ones
/// under the first), in the order given; `omitted` more are counted at the
/// end. In miette's colours when `color`, else plain text with nothing raw
/// (a plan's control characters escaped).
pub fn render(
    errors: &[&PlanError],
    severity: miette::Severity,
    omitted: usize,
    color: bool,
) -> String {
    let handler = miette::GraphicalReportHandler::new_themed(if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    })
    .with_width(100)
    .with_links(false);
    let mut text = String::new();
    for (i, one) in errors.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let shown = one.shown_cut();
        let _ = handler.render_report(&mut text, &OnePlanError(one, severity, shown));
    }
    if omitted > 0 {
        let what = match severity {
            miette::Severity::Error => "error",
            miette::Severity::Warning => "warning",
            miette::Severity::Advice => "note",
        };
        let _ = writeln!(
            text,
            "\n... and {omitted} more {what}{}",
            if omitted == 1 { "" } else { "s" }
        );
    }
    if color {
        text
    } else {
        crate::escape::text(&text).into_owned()
    }
}

/// One plan error without its related ones, as an error or a warning,
/// with its long lines cut when it has any.
#[derive(Debug)]
struct OnePlanError<'a>(&'a PlanError, miette::Severity, Option<ShownCut>);

impl std::fmt::Display for OnePlanError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.0, f)
    }
}

impl std::error::Error for OnePlanError<'_> {}

impl miette::Diagnostic for OnePlanError<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.1)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        miette::Diagnostic::help(self.0)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        match &self.2 {
            Some(cut) => Some(&cut.source),
            None => miette::Diagnostic::source_code(self.0),
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        match &self.2 {
            Some(cut) => Some(Box::new(std::iter::once(
                miette::LabeledSpan::new_with_span(Some(cut.label.clone()), cut.span),
            ))),
            None => miette::Diagnostic::labels(self.0),
        }
    }
}
