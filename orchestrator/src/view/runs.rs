//! `swarm runs` for people: the table of a repository's runs, and the
//! warnings about runs it cannot list.

use crate::escape;
use crate::report::RunRow;
use crate::run::Note;

/// What `swarm runs` says when there is no run.
pub const NO_RUNS: &str = "no runs yet (start one with `swarm run PLAN`)";

/// The table of `rows`, `local[i]` being when row `i` started in the
/// person's local time; control characters escaped.
pub fn table(rows: &[RunRow], local: &[String]) -> String {
    let started: Vec<String> = rows
        .iter()
        .zip(local)
        .map(|(l, t)| format!("{t} ({} ago)", age(l.age_secs)))
        .collect();
    let w_run = rows.iter().map(|l| l.run.len()).max().unwrap_or(3).max(3);
    let w_started = started.iter().map(String::len).max().unwrap_or(7).max(7);
    let mut text = format!(
        "{:<w_run$}  {:<11}  {:<w_started$}  {:<20}  branch\n",
        "run", "state", "started", "merged/failed/total"
    );
    for (l, started) in rows.iter().zip(&started) {
        text.push_str(&format!(
            "{:<w_run$}  {:<11}  {:<w_started$}  {:<20}  {}\n",
            l.run,
            l.state,
            started,
            format!("{}/{}/{}", l.merged, l.failed, l.total),
            l.branch.as_deref().unwrap_or("-"),
        ));
    }
    escape::text(&text).into_owned()
}

/// The warning line of `note`, without its newline.
pub fn note(note: &Note) -> String {
    match note {
        Note::Skipped(skipped) => format!("warning: {}", escape::line(&skipped.to_string())),
        Note::Unreadable { run, error } => format!(
            "warning: run {}: no readable journal (failed to {}); `swarm clean {}` removes what it left",
            escape::line(run),
            escape::line(error),
            escape::line(run)
        ),
        Note::Empty { run } => format!(
            "warning: run {}: its journal is empty (it never started); `swarm clean {}` removes what it left",
            escape::line(run),
            escape::line(run)
        ),
    }
}

/// `45s`, `12m`, `3h`, `2d`.
fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_are_in_their_largest_whole_unit() {
        assert_eq!(
            [45, 750, 3 * 3600 + 5, 2 * 86_400].map(super::age),
            ["45s", "12m", "3h", "2d"]
        );
    }
}
