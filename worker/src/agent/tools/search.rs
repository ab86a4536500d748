//! The search tools: glob (find files by name) and grep (find lines by
//! regex), both over a walk that honours `.gitignore` like git does.
//!
//! The walk never follows symlinks and its start is resolved and checked
//! once, so a link inside the worktree cannot lead the search outside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use grep_regex::RegexMatcherBuilder;
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::WalkBuilder;

use super::input::Input;
use super::paths::Root;

/// Paths glob lists at most.
const MAX_FILES: usize = 1000;
/// Matching lines grep lists at most.
const MAX_MATCHES: usize = 500;
/// Bytes of one matching line grep shows.
const MAX_LINE: usize = 300;
/// Bytes of grep output at most, whatever the number of matches.
const MAX_OUTPUT: usize = 100 * 1024;

pub(crate) fn glob(root: &Root, input: &Input) -> Result<String, String> {
    let pattern = input.string("pattern")?;
    let p = input.opt_string("path")?.unwrap_or(".");
    let matcher = compile_glob(pattern.strip_prefix("./").unwrap_or(pattern))?;
    let base = root.resolve(p)?;
    let mut found = Vec::new();
    let mut total = 0usize;
    for path in files(&base, true) {
        let rel = path.strip_prefix(&base).unwrap_or(&path);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(path.file_name().unwrap_or_default())
        } else {
            rel
        };
        if matcher.is_match(rel) {
            total += 1;
            if found.len() < MAX_FILES {
                found.push(root.display(&path));
            }
        }
    }
    if found.is_empty() {
        return Ok(format!("no files match {pattern} under {p}"));
    }
    found.sort();
    let mut out = found.join("\n");
    out.push('\n');
    if total > MAX_FILES {
        let _ = writeln!(
            out,
            "[showing {MAX_FILES} of {total} files; use a narrower pattern or path]"
        );
    }
    Ok(out)
}

pub(crate) fn grep(root: &Root, input: &Input) -> Result<String, String> {
    let pattern = input.string("pattern")?;
    let p = input.opt_string("path")?.unwrap_or(".");
    let filter = input.opt_string("glob")?.map(compile_glob).transpose()?;
    let case_insensitive = input.opt_bool("case_insensitive")?.unwrap_or(false);
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(case_insensitive)
        .line_terminator(Some(b'\n'))
        .build(pattern)
        .map_err(|e| format!("invalid regex: {e}"))?;
    let base = root.resolve(p)?;
    let mut searcher = SearcherBuilder::new()
        .line_number(true)
        .binary_detection(BinaryDetection::quit(0))
        .build();

    let mut out = String::new();
    let mut matches = 0usize;
    let mut full = false;
    for path in files(&base, false) {
        let shown = root.display(&path);
        if let Some(filter) = &filter {
            // A pattern without `/` names files anywhere, as in .gitignore.
            let name = path.file_name().unwrap_or_default();
            if !filter.is_match(&shown) && !filter.is_match(name) {
                continue;
            }
        }
        let sink = Lossy(|line, text: &str| {
            let text = text.trim_end_matches(['\n', '\r']);
            let clipped = clip(text, MAX_LINE);
            let _ = write!(out, "{shown}:{line}:{clipped}");
            if clipped.len() < text.len() {
                out.push_str(" …");
            }
            out.push('\n');
            matches += 1;
            full = matches >= MAX_MATCHES || out.len() >= MAX_OUTPUT;
            Ok(!full)
        });
        // A file that cannot be read is skipped, as grep -s would.
        let _ = searcher.search_path(&matcher, &path, sink);
        if full {
            let _ = writeln!(
                out,
                "[stopped after {matches} matches; narrow the pattern, path or glob]"
            );
            break;
        }
    }
    if matches == 0 {
        return Ok(format!("no matches for {pattern} under {p}"));
    }
    Ok(out)
}

fn compile_glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|e| format!("invalid glob {pattern}: {e}"))
}

/// The files under `base` (or `base` itself if it is a file), in name
/// order, skipping what git ignores and `.git` itself but not hidden files.
/// With `links`, symlinks (never followed) count as files.
fn files(base: &Path, links: bool) -> impl Iterator<Item = PathBuf> {
    WalkBuilder::new(base)
        .hidden(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
        // Unreadable directories and bad ignore files are skipped: the
        // model wants what can be found, not a list of walk errors.
        .filter_map(Result::ok)
        .filter(move |entry| {
            entry
                .file_type()
                .is_some_and(|kind| kind.is_file() || (links && kind.is_symlink()))
        })
        .map(ignore::DirEntry::into_path)
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn clip(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
