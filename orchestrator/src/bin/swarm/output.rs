//! Where what users see goes: the live view on stderr (the lines and
//! block `swarm_orchestrator::view` makes), errors and warnings, coloured
//! on a terminal.

use swarm_orchestrator::escape;
use swarm_orchestrator::view::Progress;
use swarm_protocol::{Event, EventBody};

use crate::failure::Failure;

/// Progress on stderr. On a terminal, event lines scroll by while the block
/// of running tasks (see [`Progress::block`]) stays below them, redrawn in
/// place by `tick` as time passes; elsewhere only the lines are printed.
pub struct Live {
    progress: Progress,
    tty: bool,
    /// Lines of the block on screen now.
    drawn: usize,
    over: bool,
}

impl Live {
    pub fn new(tty: bool) -> Self {
        Self {
            progress: Progress::new(),
            tty,
            drawn: 0,
            over: false,
        }
    }

    /// The header says that `paths` changed paths of the working tree are
    /// not in the run (it starts from a commit).
    pub fn uncommitted(mut self, paths: usize) -> Self {
        self.progress.set_uncommitted(paths);
        self
    }

    /// A resumed run's view starts from its journal so far (`seen`, its
    /// fold), not from nothing.
    pub fn seen(mut self, seen: Option<swarm_orchestrator::fold::RunFold>) -> Self {
        if let Some(fold) = seen {
            self.progress.resume_from(fold);
        }
        self
    }

    /// The block shows the critical path left in expected time: `expected`
    /// milliseconds for each task it names, `fallback` for the others.
    pub fn expected(
        mut self,
        expected: Option<(std::collections::HashMap<String, u64>, u64)>,
    ) -> Self {
        self.progress.set_expected(expected);
        self
    }

    pub fn event(&mut self, event: &Event) {
        use std::io::Write as _;
        let lines = self.progress.lines(event);
        let mut err = std::io::stderr().lock();
        self.erase(&mut err);
        // File names, reasons and agent details are the task's: one
        // visible line each, never an escape sequence.
        for line in lines {
            let _ = writeln!(err, "{}", escape::line(&line));
        }
        if matches!(event.body, EventBody::RunFinished { .. }) {
            self.over = true;
        } else {
            self.draw(&mut err);
        }
        let _ = err.flush();
    }

    /// Redraws the block (elapsed times move on).
    pub fn tick(&mut self) {
        use std::io::Write as _;
        if !self.tty || self.over {
            return;
        }
        let mut err = std::io::stderr().lock();
        self.erase(&mut err);
        self.draw(&mut err);
        let _ = err.flush();
    }

    fn erase(&mut self, w: &mut impl std::io::Write) {
        if self.drawn > 0 {
            // Up to the block's first line, then clear to the end.
            let _ = write!(w, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn draw(&mut self, w: &mut impl std::io::Write) {
        if !self.tty || self.progress.total() == 0 {
            return;
        }
        let block = self.progress.block();
        for line in &block {
            let _ = writeln!(w, "{}", escape::line(line));
        }
        self.drawn = block.len();
    }
}

pub fn print_failure(failure: &Failure) {
    eprintln!("{}", failure_text(failure, use_color()));
}

/// What [`print_failure`] prints: `error: ...`, a plan's errors with
/// their places.
pub fn failure_text(failure: &Failure, color: bool) -> String {
    match failure {
        Failure::Plan(err) => {
            let errors: Vec<_> = err.all().collect();
            let text = swarm_orchestrator::plan::render(
                &errors,
                miette::Severity::Error,
                err.omitted,
                color,
            );
            let count = err.count();
            if count == 1 {
                format!("error: invalid plan\n{text}")
            } else {
                format!("error: invalid plan ({count} errors)\n{text}")
            }
        }
        Failure::Invalid(err) | Failure::Internal(err) | Failure::Failed(err) => {
            // Errors name paths and files a task may have chosen.
            let text = format!("{err:#}");
            let help = swarm_orchestrator::full_disk_help(&text)
                .map(|help| format!("\nhelp: {help}"))
                .unwrap_or_default();
            format!("error: failed to {}{help}", escape::text(&text))
        }
    }
}

/// Prints what the plan's checks warn about (the plan is still run).
pub fn print_plan_warnings(warnings: &[swarm_orchestrator::plan::PlanError]) {
    eprint!("{}", plan_warnings(warnings, use_color()));
}

/// The plan's warnings as [`print_plan_warnings`] prints them.
pub fn plan_warnings(warnings: &[swarm_orchestrator::plan::PlanError], color: bool) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    // As for errors: the first screenful helps, the rest is counted.
    let shown: Vec<_> = warnings
        .iter()
        .take(swarm_orchestrator::plan::MAX_ERRORS)
        .collect();
    let omitted = warnings.len() - shown.len();
    swarm_orchestrator::plan::render(&shown, miette::Severity::Warning, omitted, color)
}

fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// What putting a run together found to warn about, in order.
pub fn print_notices(notices: &[swarm_orchestrator::assemble::Notice]) {
    use swarm_orchestrator::assemble::Notice;
    for notice in notices {
        match notice {
            Notice::Plan(warning) => print_plan_warnings(std::slice::from_ref(warning)),
            Notice::Warning(text) => eprintln!("warning: {}", escape::text(text)),
        }
    }
}
