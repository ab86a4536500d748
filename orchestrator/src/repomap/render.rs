//! Writing the map's sections and fitting them to the token budget.
//!
//! Each section but the header has levels of detail, the last one empty:
//!
//! | section | levels |
//! |---|---|
//! | packages | with dependencies · names and directories · counts · none |
//! | instructions | a quarter of the budget · an eighth · a sixteenth · a line naming the file · none |
//! | commands | the choices and the other candidates · the choices · none |
//! | goal identifiers | 10 files each · 5 · 2 · totals · none |
//! | file tree | collapsed as far as needed (`files.rs`) · one line |
//!
//! Everything starts at its most detailed level. While the map does not fit
//! (the tree collapsed to its top level included), one section steps down:
//! the packages if they take more than 40% of the budget (the instructions
//! never take more than a quarter), else the lowest in priority that can
//! (goal identifiers, commands, instructions, packages). If nothing is left to
//! shrink, the tree becomes one line, and if even that is too much, whole
//! lines are dropped from the end. So the map always fits, and lines are
//! never cut, but for an instructions file's single overlong line.

use std::fmt::Write as _;

use crate::escape::line;

use super::commands::Commands;
use super::files::{FileTree, count, files, size};
use super::goal::Hits;
use super::packages::{Ecosystem, Group, Packages};
use super::read::{File, Text};

/// What the map is made of.
pub(crate) struct Parts<'a> {
    pub files: &'a [File],
    pub submodules: usize,
    pub packages: &'a Packages,
    pub instructions: Option<&'a Text>,
    pub commands: &'a Commands,
    pub hits: &'a [Hits],
}

/// Levels of detail of the shrinkable sections.
#[derive(Debug, Clone, Copy, Default)]
struct Levels {
    packages: usize,
    instructions: usize,
    commands: usize,
    goal: usize,
}

const PACKAGE_LEVELS: usize = 4;
const INSTRUCTION_LEVELS: usize = 5;
const COMMAND_LEVELS: usize = 3;
/// Files shown per identifier at each level but the last two.
const GOAL_FILES: [usize; 3] = [10, 5, 2];
const GOAL_LEVELS: usize = GOAL_FILES.len() + 2;

/// The map of `parts` in at most `budget` tokens (4 bytes each).
pub(crate) fn fit(parts: &Parts<'_>, budget: usize) -> String {
    let max = budget.saturating_mul(4);
    let tree = FileTree::new(parts.files);
    let header = header(parts);
    let mut levels = Levels::default();
    loop {
        let sections = [
            packages(parts.packages, levels.packages),
            instructions(parts.instructions, levels.instructions, max),
            commands(parts.commands, levels.commands),
            goal(parts.hits, levels.goal),
        ];
        let mut text = header.clone();
        for section in sections.iter().filter(|s| !s.is_empty()) {
            text.push('\n');
            text.push_str(section);
        }
        let title = "\n## Files\n\n";
        let note = "Collapsed directories show nothing below them.\n";
        let fixed = text.len() + title.len();
        let room = max.checked_sub(fixed);
        if let Some(fitted) = room.and_then(|room| tree.fit(room)) {
            if fitted.collapsed == 0
                || text.len() + title.len() + note.len() + fitted.text.len() <= max
            {
                text.push_str(title);
                if fitted.collapsed > 0 {
                    text.push_str(note);
                }
                text.push_str(&fitted.text);
                return text;
            }
            // The note does not fit beside the tree: collapse further.
            let room = max - fixed;
            if let Some(fitted) = tree.fit(room.saturating_sub(note.len())) {
                text.push_str(title);
                text.push_str(note);
                text.push_str(&fitted.text);
                return text;
            }
        }
        if !shrink(&mut levels, &sections, max) {
            let mut top: Vec<&str> = parts
                .files
                .iter()
                .map(|f| f.path.split('/').next().unwrap_or(""))
                .collect();
            top.dedup();
            let _ = writeln!(
                text,
                "{title}Not shown: over the budget ({} at the top level).",
                count(top.len(), "entry", "entries")
            );
            return whole_lines(&text, max);
        }
    }
}

/// Steps one section down a level; false if all are at their last.
fn shrink(levels: &mut Levels, sections: &[String; 4], max: usize) -> bool {
    let packages = &sections[0];
    if levels.packages + 1 < PACKAGE_LEVELS && packages.len() * 10 > max * 4 {
        levels.packages += 1;
    } else if levels.goal + 1 < GOAL_LEVELS {
        levels.goal += 1;
    } else if levels.commands + 1 < COMMAND_LEVELS {
        levels.commands += 1;
    } else if levels.instructions + 1 < INSTRUCTION_LEVELS {
        levels.instructions += 1;
    } else if levels.packages + 1 < PACKAGE_LEVELS {
        levels.packages += 1;
    } else {
        return false;
    }
    true
}

/// The longest prefix of `text` made of whole lines, in `max` bytes.
pub(crate) fn whole_lines(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let end = text.as_bytes()[..max]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    text[..end].to_string()
}

fn header(parts: &Parts<'_>) -> String {
    let total: u64 = parts.files.iter().map(|f| f.size).sum();
    let mut out = format!(
        "# Repository map\n\n{}, {}, tracked at this commit",
        files(parts.files.len()),
        size(total)
    );
    match parts.submodules {
        0 => {}
        n => {
            let _ = write!(out, " (and {})", count(n, "submodule", "submodules"));
        }
    }
    out.push_str(".\n");
    out
}

fn packages(packages: &Packages, level: usize) -> String {
    if level + 1 >= PACKAGE_LEVELS || packages.groups.is_empty() && packages.problems.is_empty() {
        return String::new();
    }
    let mut out = "## Packages\n\n".to_string();
    let edges = level == 0
        && packages
            .groups
            .iter()
            .any(|g| g.packages.iter().any(|p| !p.deps.is_empty()));
    if edges {
        out.push_str("`a -> b, c`: a depends on b and c.\n");
    }
    for group in &packages.groups {
        let _ = write!(out, "{}", group_title(group));
        if level == 2 {
            out.push_str(".\n");
            continue;
        }
        out.push_str(":\n");
        for package in &group.packages {
            let dir = if package.dir.is_empty() {
                "."
            } else {
                &package.dir
            };
            let _ = write!(out, "- {} ({dir})", line(&package.name));
            if edges && !package.deps.is_empty() {
                let _ = write!(out, " -> {}", line(&package.deps.join(", ")));
            }
            out.push('\n');
        }
    }
    if !packages.problems.is_empty() {
        let n = packages.problems.len();
        let _ = write!(out, "{} not understood", count(n, "manifest", "manifests"));
        if level == 0 {
            out.push_str(":\n");
            for problem in packages.problems.iter().take(5) {
                let _ = writeln!(out, "- {}", line(problem));
            }
            if n > 5 {
                let _ = writeln!(out, "- and {}", count(n - 5, "more", "more"));
            }
        } else {
            out.push_str(".\n");
        }
    }
    out
}

fn group_title(group: &Group) -> String {
    let n = group.packages.len();
    match (group.ecosystem, &group.workspace) {
        (Ecosystem::Cargo, Some(m)) => {
            format!("Cargo workspace {m} with {}", count(n, "crate", "crates"))
        }
        (Ecosystem::Cargo, None) => {
            format!(
                "{} outside a workspace",
                count(n, "Cargo crate", "Cargo crates")
            )
        }
        (Ecosystem::Npm, Some(m)) => {
            format!("npm workspace {m} with {}", count(n, "package", "packages"))
        }
        (Ecosystem::Npm, None) => {
            format!(
                "{} outside a workspace",
                count(n, "npm package", "npm packages")
            )
        }
        (Ecosystem::Go, _) => count(n, "Go module", "Go modules"),
        (Ecosystem::Python, _) => count(n, "Python package", "Python packages"),
    }
}

fn instructions(text: Option<&Text>, level: usize, max: usize) -> String {
    let Some(text) = text else {
        return String::new();
    };
    let lines = text.text.lines().count();
    match level {
        0..=2 => {}
        3 => {
            return format!(
                "## Instructions\n\n{} ({}) is not shown: over the budget.\n",
                text.path,
                lines_of(lines)
            );
        }
        _ => return String::new(),
    }
    let share = max / (4 << level);
    let mut out = format!("## Instructions ({})\n\n", text.path);
    let mut used = 0;
    let mut shown = 0;
    for line in text.text.lines() {
        if used + line.len() + 1 > share {
            if shown == 0 {
                // A single overlong first line: cut at a character boundary.
                out.push_str(&line[..line.floor_char_boundary(share.saturating_sub(1))]);
                out.push('\n');
            }
            break;
        }
        out.push_str(line);
        out.push('\n');
        used += line.len() + 1;
        shown += 1;
    }
    if shown < lines {
        let _ = writeln!(
            out,
            "[truncated: {} of {}]",
            count(lines - shown, "more line", "more lines"),
            text.path
        );
    }
    out
}

fn lines_of(n: usize) -> String {
    count(n, "line", "lines")
}

fn commands(commands: &Commands, level: usize) -> String {
    if level + 1 >= COMMAND_LEVELS || commands.test.is_empty() && commands.build.is_empty() {
        return String::new();
    }
    let mut out = "## Commands\n\n".to_string();
    for (kind, list) in [("test", &commands.test), ("build", &commands.build)] {
        let Some(chosen) = list.first() else { continue };
        let _ = writeln!(out, "- {kind}: `{}` ({})", chosen.command, chosen.source);
        if level == 0 && list.len() > 1 {
            let others: Vec<String> = list[1..]
                .iter()
                .take(4)
                .map(|c| format!("`{}` ({})", c.command, c.source))
                .collect();
            let more = if list.len() > 5 { ", ..." } else { "" };
            let _ = writeln!(out, "- other {kind} commands: {}{more}", others.join(", "));
        }
    }
    out
}

fn goal(hits: &[Hits], level: usize) -> String {
    if level + 1 >= GOAL_LEVELS || hits.is_empty() {
        return String::new();
    }
    let shown = GOAL_FILES.get(level).copied().unwrap_or(0);
    let mut out = "## Goal identifiers\n\n".to_string();
    for hit in hits {
        if hit.files.is_empty() {
            let _ = writeln!(out, "`{}`: not found", hit.word);
            continue;
        }
        let _ = writeln!(
            out,
            "`{}`: {} in {}",
            hit.word,
            lines_of(usize::try_from(hit.lines).unwrap_or(usize::MAX)),
            files(hit.files.len())
        );
        for (path, n) in hit.files.iter().take(shown) {
            let _ = writeln!(out, "- {path}: {}", lines_of(*n as usize));
        }
        if shown > 0 && hit.files.len() > shown {
            let rest = &hit.files[shown..];
            let _ = writeln!(
                out,
                "- and {} ({})",
                count(rest.len(), "more file", "more files"),
                by_dir(rest)
            );
        }
    }
    out
}

/// Where `files` are, by their directory two levels down at most:
/// `crates/core/ 12, web/ 3, ./ 1`, most first, five at most.
fn by_dir(files: &[(String, u32)]) -> String {
    let mut dirs: Vec<(&str, usize)> = Vec::new();
    for (path, _) in files {
        let dir = match path.match_indices('/').map(|(i, _)| i).nth(1) {
            Some(i) => &path[..=i],
            None => path.rfind('/').map_or("./", |i| &path[..=i]),
        };
        match dirs.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, n)) => *n += 1,
            None => dirs.push((dir, 1)),
        }
    }
    dirs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> = dirs
        .iter()
        .take(5)
        .map(|(d, n)| format!("{d} {n}"))
        .collect();
    if dirs.len() > 5 {
        parts.push("...".into());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_of_a_goal_identifiers_files_is_summed_up_by_directory() {
        let files: Vec<(String, u32)> =
            ["a/b/c/x.rs", "a/b/y.rs", "a/z.rs", "top.rs", "a/b/c/d/w.rs"]
                .iter()
                .map(|p| (p.to_string(), 1))
                .collect();
        assert_eq!(by_dir(&files), "a/b/ 3, ./ 1, a/ 1");
        let many: Vec<(String, u32)> = (0..7).map(|i| (format!("d{i}/f"), 1)).collect();
        assert_eq!(by_dir(&many), "d0/ 1, d1/ 1, d2/ 1, d3/ 1, d4/ 1, ...");
    }

    #[test]
    fn whole_lines_never_cut_a_line() {
        assert_eq!(whole_lines("ab\ncd\n", 6), "ab\ncd\n");
        assert_eq!(whole_lines("ab\ncd\n", 5), "ab\n");
        assert_eq!(whole_lines("ab\ncd\n", 3), "ab\n");
        assert_eq!(whole_lines("ab\ncd\n", 2), "");
        assert_eq!(whole_lines("ab\ncd\n", 0), "");
    }

    #[test]
    fn instructions_are_truncated_at_a_line_and_say_so() {
        let text = Text {
            path: "AGENTS.md".into(),
            text: "one\ntwo\nthree\n".into(),
        };
        // A quarter of 40 bytes: 10 bytes, "one\ntwo\n".
        let out = instructions(Some(&text), 0, 40);
        assert_eq!(
            out,
            "## Instructions (AGENTS.md)\n\none\ntwo\n[truncated: 1 more line of AGENTS.md]\n"
        );
        let out = instructions(Some(&text), 0, 400);
        assert_eq!(out, "## Instructions (AGENTS.md)\n\none\ntwo\nthree\n");
        let long = Text {
            path: "CLAUDE.md".into(),
            text: "é".repeat(100),
        };
        let out = instructions(Some(&long), 0, 40);
        assert!(
            out.contains("\néééé\n[truncated: 1 more line of CLAUDE.md]"),
            "{out}"
        );
    }
}
