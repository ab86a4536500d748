//! The manual (`book/`, built by mdBook in `.ci/run`) and the README hold
//! up: every TOML block in them parses as what it shows (a plan as
//! `plans/` are parsed, a configuration as the planner reads one), every
//! relative link leads to a file and a heading that exist, the command
//! list names every command, the tables of what an untrusted origin may
//! set list every rule, and a figure quoted from BENCHMARKS.md is one it
//! holds.
//!
//! A ```toml block is read as its info string says (```toml plan,
//! ```toml config, ```toml excerpt, ```toml foreign), else by its
//! content: a block with a `[[task]]` table is a plan, one without is a
//! configuration (a plan without tasks: `swarm.toml`, or the tables of a
//! plan a section is about). An `excerpt` is a plan that leaves out the
//! model its agent tasks use: it is read with the `[models.default]` of
//! [`DEFAULT_MODEL`] before it. `foreign` is another program's file
//! (Codex's configuration): TOML, and nothing of swarm's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use swarm_orchestrator::plan;
use swarm_orchestrator::plan::origin::rules::{self, May, Subtask};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where the repository's files are on GitHub, as the book links them
/// (mdBook turns a relative `.md` link into `.html`, so a file outside the
/// book is linked by its URL there).
const BLOB: &str = "https://github.com/swarm-rs/swarm/blob/main/";
const RAW: &str = "https://raw.githubusercontent.com/swarm-rs/swarm/main/";

/// The model an `excerpt` leaves out: the planner's default, as the
/// book's Agent tasks chapter shows it.
const DEFAULT_MODEL: &str =
    "[models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n\n";

/// The book's chapters (and SUMMARY.md), sorted.
fn chapters() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("book/src"), &mut out);
    out.sort();
    assert!(out.len() > 10, "expected the book's chapters in book/src");
    out
}

/// Every markdown file the manual is: the book's and the README.
fn manual() -> Vec<PathBuf> {
    let mut files = chapters();
    files.push(root().join("README.md"));
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fenced code block: its info string, its first line's number (1-based,
/// the line after the fence) and its text.
struct Block {
    info: String,
    line: usize,
    text: String,
}

/// The fenced code blocks of a markdown text; and its lines outside them
/// (number, text), where links and headings are.
fn blocks(markdown: &str) -> (Vec<Block>, Vec<(usize, &str)>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<(String, Block)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let number = i + 1;
        let trimmed = line.trim_start();
        let fence: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        let is_fence = fence.len() >= 3 && fence.chars().all(|c| c == fence.as_bytes()[0] as char);
        match open.take() {
            Some((marker, block)) => {
                if is_fence && trimmed.trim_end() == marker {
                    blocks.push(block);
                } else {
                    let mut block = block;
                    // A block inside a list item is indented with it.
                    let indent = line.len() - trimmed.len();
                    let text = if indent > 0 && line[..indent].trim().is_empty() {
                        trimmed
                    } else {
                        line
                    };
                    block.text.push_str(text);
                    block.text.push('\n');
                    open = Some((marker, block));
                }
            }
            None if is_fence => {
                open = Some((
                    fence.clone(),
                    Block {
                        info: trimmed[fence.len()..].trim().to_string(),
                        line: number + 1,
                        text: String::new(),
                    },
                ));
            }
            None => prose.push((number, line)),
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    (blocks, prose)
}

/// How a TOML block of the manual is read.
#[derive(Debug, PartialEq)]
enum Reading {
    /// A whole plan, as `swarm run` and `swarm validate` read one.
    Plan,
    /// A plan without the `[models.default]` its agent tasks use.
    Excerpt,
    /// A plan without tasks: `swarm.toml`, or a plan's tables a section
    /// shows on their own (`[swarm] verify`, `[executor]`).
    Config,
    /// Another program's TOML: syntax only.
    Foreign,
}

fn reading(block: &Block) -> Result<Reading, String> {
    let mut words = block.info.split([' ', ',']).filter(|w| !w.is_empty());
    assert_eq!(words.next(), Some("toml"));
    let marked: Vec<&str> = words.collect();
    match marked.as_slice() {
        [] if block.text.lines().any(|l| l.trim() == "[[task]]") => Ok(Reading::Plan),
        [] => Ok(Reading::Config),
        ["plan"] => Ok(Reading::Plan),
        ["config"] => Ok(Reading::Config),
        ["excerpt"] => Ok(Reading::Excerpt),
        ["foreign"] => Ok(Reading::Foreign),
        other => Err(format!(
            "unknown marker {other:?}: a ```toml block is `plan`, `config`, `excerpt` or `foreign`"
        )),
    }
}

/// Reads `block` as `reading` says, in `dir` (where a plan's files are
/// found beside it); the error with its line in the markdown file.
fn parse(block: &Block, reading: &Reading, dir: &Path) -> Result<(), String> {
    let (text, before) = match reading {
        Reading::Excerpt => (
            format!("{DEFAULT_MODEL}{}", block.text),
            DEFAULT_MODEL.len(),
        ),
        _ => (block.text.clone(), 0),
    };
    let at = |offset: Option<usize>| {
        offset.map_or(block.line, |o| {
            let o = o.saturating_sub(before).min(block.text.len());
            block.line + block.text[..o].matches('\n').count()
        })
    };
    let path = dir.join("book.toml");
    let shown_error = |e: Box<plan::PlanError>| {
        let mut text = format!("line {}: {}", at(e.span.map(|s| s.offset())), e.message);
        if let Some(help) = &e.help {
            text.push_str(&format!(" (help: {help})"));
        }
        for related in &e.related {
            text.push_str(&format!(
                "; line {}: {}",
                at(related.span.map(|s| s.offset())),
                related.message
            ));
        }
        text
    };
    match reading {
        Reading::Plan | Reading::Excerpt => {
            plan::parse(&path, text).map(|_| ()).map_err(shown_error)
        }
        Reading::Config => plan::parse_template(&path, text)
            .map(|_| ())
            .map_err(shown_error),
        Reading::Foreign => text
            .parse::<toml::Table>()
            .map(|_| ())
            .map_err(|e| format!("line {}: {e}", at(e.span().map(|s| s.start)))),
    }
}

/// Every ```toml block of the book and the README parses as a plan, a
/// configuration or (marked so) another program's TOML; a block that
/// parses as none of what it claims to be fails here, at its line.
#[test]
fn every_toml_block_parses() {
    let dir = tempfile::tempdir().unwrap();
    // A plan's matrix may list the files git tracks (`{ glob = ... }`):
    // the blocks are read in a repository that has what they match.
    repository(
        dir.path(),
        &[
            "tests/test_example.py",
            "tests/example.rs",
            "crates/a/tests/quick.rs",
        ],
    );
    let mut failures = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for file in manual() {
        failures.extend(toml_failures(&file, &read(&file), dir.path(), &mut counts));
    }
    assert!(
        failures.is_empty(),
        "TOML blocks that do not parse:\n{}",
        failures.join("\n")
    );
    // The book is full of plans: a reader that found none is broken.
    let plans = counts.get("Plan").copied().unwrap_or(0);
    let configs = counts.get("Config").copied().unwrap_or(0);
    assert!(plans >= 10 && configs >= 3, "{counts:?}");
}

/// The ```toml blocks of `text` (the markdown file `file`) that do not
/// parse as what they are, each with its line; `counts` counts blocks by
/// how they were read.
fn toml_failures(
    file: &Path,
    text: &str,
    dir: &Path,
    counts: &mut BTreeMap<String, usize>,
) -> Vec<String> {
    let (blocks, _) = blocks(text);
    let mut failures = Vec::new();
    for block in blocks.iter().filter(|b| {
        b.info
            .split([' ', ','])
            .next()
            .is_some_and(|lang| lang == "toml")
    }) {
        let result = reading(block).and_then(|r| {
            *counts.entry(format!("{r:?}")).or_default() += 1;
            parse(block, &r, dir).map_err(|e| format!("as {r:?}: {e}"))
        });
        if let Err(e) = result {
            failures.push(format!("{}:{}: {e}", shown(file), block.line));
        }
    }
    failures
}

/// A block that is none of what it may be fails, at its line: a plan with
/// a mistake, a configuration with a key no table has, a block with an
/// unknown marker, another program's file that is not TOML, a configuration
/// that is really a part of a plan the reader cannot place.
#[test]
fn a_block_that_parses_as_nothing_fails() {
    let dir = tempfile::tempdir().unwrap();
    repository(
        dir.path(),
        &[
            "tests/test_example.py",
            "tests/example.rs",
            "crates/a/tests/quick.rs",
        ],
    );
    let file = root().join("book/src/plans.md");
    let text = "Text.\n\n\
                ```toml\n[[task]]\nid = \"a\"\nrun = \"true\"\ndeps = [\"b\"]\n```\n\n\
                ```toml\n[swarm]\nconcurency = 8\n```\n\n\
                ```toml\nid = \"loose\"\nrun = \"true\"\n```\n\n\
                ```toml recipe\n[swarm]\n```\n\n\
                ```toml foreign\n[a\n```\n\n\
                ```toml\n[[task]]\nid = \"ok\"\nrun = \"true\"\n```\n";
    let failures = toml_failures(&file, text, dir.path(), &mut BTreeMap::new());
    assert_eq!(failures.len(), 5, "{failures:#?}");
    for (failure, line) in failures.iter().zip([4, 11, 16, 21, 25]) {
        assert!(
            failure.starts_with(&format!("book/src/plans.md:{line}: ")),
            "{failures:#?}"
        );
    }
    assert!(
        failures[0].contains("line 7: task `a` depends on unknown task `b`"),
        "{failures:#?}"
    );
    assert!(failures[3].contains("unknown marker"), "{failures:#?}");
}

/// Makes `dir` a git repository with `files` committed.
fn repository(dir: &Path, files: &[&str]) {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=book", "-c", "user.email=book@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    for file in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "").unwrap();
    }
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "what the book's plans name"]);
}

/// The id mdBook (and GitHub) gives a heading: lowercase, spaces as `-`,
/// only letters, digits, `-` and `_` kept; a repeated one gets `-1`, `-2`.
fn heading_ids(markdown: &str) -> BTreeSet<String> {
    let (_, prose) = blocks(markdown);
    let mut ids = BTreeSet::new();
    for (_, line) in prose {
        let Some(text) = line.strip_prefix('#') else {
            continue;
        };
        let text = text.trim_start_matches('#');
        if !text.starts_with(' ') {
            continue;
        }
        // A link in a heading counts by its text.
        let text = link_texts(text.trim());
        let id: String = text
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    Some(c.to_lowercase().next().unwrap_or(c))
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        let mut unique = id.clone();
        let mut n = 0;
        while ids.contains(&unique) {
            n += 1;
            unique = format!("{id}-{n}");
        }
        ids.insert(unique);
    }
    ids
}

/// `[text](target)` as `text`.
fn link_texts(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("](") {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        out.push_str(&rest[..open].replace('[', ""));
        rest = &rest[open + close + 1..];
    }
    out.push_str(&rest.replace('[', ""));
    out
}

/// A line without its inline code spans, where a `](` is no link.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let marker = "`".repeat(ticks);
        let after = &rest[start + ticks..];
        match after.find(&marker) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                // An unclosed span (one across lines): leave the rest.
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The link targets of a markdown text, with their line numbers.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let (_, prose) = blocks(markdown);
    let mut out = Vec::new();
    for (number, line) in prose {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find([')', ' ']).unwrap_or(after.len());
            out.push((number, after[..end].to_string()));
            rest = &after[end..];
        }
        // Reference definitions: `[name]: target`.
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some(at) = trimmed.find("]: ")
        {
            out.push((number, trimmed[at + 3..].trim().to_string()));
        }
    }
    out
}

/// Where `target`, in `from`, leads: a file of the repository and the
/// anchor in it; None for a link out of the repository.
fn resolve(from: &Path, target: &str) -> Option<(PathBuf, Option<String>)> {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a.to_string())),
        None => (target, None),
    };
    if let Some(repo) = path.strip_prefix(BLOB).or_else(|| path.strip_prefix(RAW)) {
        return Some((root().join(repo), anchor));
    }
    if path.contains("://") || path.starts_with("mailto:") {
        return None;
    }
    if path.is_empty() {
        return Some((from.to_path_buf(), anchor));
    }
    Some((from.parent().unwrap().join(path), anchor))
}

/// Every link of the book and the README that stays in the repository
/// (relative, or to this repository's files on GitHub) leads to a file
/// that exists, and its `#anchor` to a heading of it; a link from the
/// book to a markdown file outside it goes through GitHub (mdBook would
/// turn it into a `.html` that does not exist).
#[test]
fn every_link_leads_somewhere() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in manual() {
        let (bad, count) = broken_links(&file, &read(&file));
        broken.extend(bad);
        checked += count;
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 80, "only {checked} links checked");
}

/// The links of `text` (the markdown file `file`) that lead nowhere, and
/// how many links into the repository it has.
fn broken_links(file: &Path, text: &str) -> (Vec<String>, usize) {
    let book = root().join("book/src");
    let mut broken = Vec::new();
    let mut checked = 0;
    for (line, target) in links(text) {
        let Some((to, anchor)) = resolve(file, &target) else {
            continue;
        };
        checked += 1;
        let to = normalise(&to);
        let at = format!("{}:{line}: `{target}`", shown(file));
        if !to.exists() {
            broken.push(format!("{at}: no such file {}", shown(&to)));
            continue;
        }
        if file.starts_with(&book)
            && !to.starts_with(&book)
            && !target.contains("://")
            && to.extension().is_some_and(|e| e == "md")
        {
            broken.push(format!(
                "{at}: a markdown file outside the book: link it as {BLOB}{}",
                shown(&to)
            ));
        }
        if let Some(anchor) = anchor {
            let headings = if to == file {
                heading_ids(text)
            } else if to.extension().is_some_and(|e| e == "md") {
                heading_ids(&read(&to))
            } else {
                broken.push(format!("{at}: an anchor into a file that has no headings"));
                continue;
            };
            if !headings.contains(&anchor) {
                broken.push(format!("{at}: {} has no heading `#{anchor}`", shown(&to)));
            }
        }
    }
    (broken, checked)
}

/// The link check finds what it is for: a missing file, a missing
/// heading, a heading that is only in a code block.
#[test]
fn a_broken_link_is_found() {
    let file = root().join("book/src/troubleshooting.md");
    let text = "# Here\n\n```sh\n# not a heading\n```\n\n[a](#here) [b](plans.md#task) [c](#not-a-heading)\n\
                [d](nowhere.md) [e](plans.md#nowhere) [f](https://example.com/x.md) `[g](nowhere.md)`\n";
    let (broken, checked) = broken_links(&file, text);
    assert_eq!(checked, 5, "{broken:?}");
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("#not-a-heading"), "{broken:#?}");
    assert!(broken[1].contains("no such file"), "{broken:#?}");
    assert!(broken[2].contains("#nowhere"), "{broken:#?}");
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// SUMMARY.md names every chapter, and every chapter it names exists: a
/// file left out of it is in no built book.
#[test]
fn the_summary_names_every_chapter() {
    let src = root().join("book/src");
    let summary = read(&src.join("SUMMARY.md"));
    let named: BTreeSet<PathBuf> = links(&summary)
        .into_iter()
        .map(|(_, target)| normalise(&src.join(target.split('#').next().unwrap())))
        .collect();
    for chapter in chapters() {
        if chapter.ends_with("SUMMARY.md") {
            continue;
        }
        assert!(
            named.contains(&chapter),
            "book/src/SUMMARY.md does not name {}",
            shown(&chapter)
        );
    }
    for chapter in &named {
        assert!(
            chapter.is_file(),
            "SUMMARY.md names {}, which is missing",
            shown(chapter)
        );
    }
}

/// The book's command list names every subcommand `swarm --help` lists:
/// a command added without a line there fails here. Every plan a command
/// of the manual runs is one of `plans/`.
#[test]
fn the_book_lists_every_command() {
    let commands_chapter = read(&root().join("book/src/commands.md"));
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_swarm"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 10, "{help}");
    for command in commands {
        assert!(
            commands_chapter.contains(&format!("swarm {command} ")),
            "book/src/commands.md lacks `swarm {command}`"
        );
    }
    for file in manual() {
        let text = read(&file);
        for (at, _) in text.match_indices("swarm run plans/") {
            let plan: String = text[at + "swarm run ".len()..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '`')
                .collect();
            assert!(
                root().join(&plan).is_file(),
                "{} runs {plan}, which plans/ lacks",
                shown(&file)
            );
        }
    }
}

/// The sandbox chapter's tables list every subtask rule, and every key an
/// untrusted plan may not set freely (`plan::origin::rules`).
#[test]
fn the_book_lists_every_rule() {
    let sandbox = read(&root().join("book/src/sandbox.md"));
    for k in rules::SUBTASK {
        let rule = match k.rule {
            Subtask::Narrows => "may only narrow",
            Subtask::Free => "free",
            Subtask::Refused => "refused",
        };
        let row = format!("| `{}` | {rule} |", k.key);
        assert!(
            sandbox.contains(&row),
            "book/src/sandbox.md lacks the row `{row}`"
        );
    }
    for r in rules::PLAN {
        let what = match r.may {
            May::Any | May::Data | May::Nested(_) | May::Tables(_) | May::ArrayOf(_) => continue,
            May::AtMost(_) => "may only narrow",
            May::TrackedFile => "a file git tracks",
            May::Trust => "needs trust",
        };
        let row = format!("| `{}` `{}` | {what} |", r.table.shown(), r.key);
        assert!(
            sandbox.contains(&row),
            "book/src/sandbox.md lacks the row `{row}`"
        );
    }
}

/// A figure the manual gives with BENCHMARKS.md as its source is one that
/// BENCHMARKS.md holds: the manual quotes, it never measures on its own.
#[test]
fn the_books_figures_come_from_benchmarks() {
    let bench = read(&root().join("BENCHMARKS.md"));
    let mut missing = Vec::new();
    for file in manual() {
        let text = read(&file);
        for line in text.lines().filter(|l| l.contains("BENCHMARKS")) {
            for number in figures(line) {
                if !bench.contains(&number) {
                    missing.push(format!("{}: {number} in: {line}", shown(&file)));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "figures BENCHMARKS.md lacks:\n{}",
        missing.join("\n")
    );
}

/// Numbers with a fraction or a range followed by a unit, as the README's
/// test reads them: `1.63x`, `4.2 s`, `0.5 ms`, `4.4%`, `15.5 to 21`.
fn figures(line: &str) -> Vec<String> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit()
            || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.' || bytes[i] == b'-')
        {
            i += 1;
        }
        let number = line[start..i].trim_end_matches(['.', '-']);
        let rest = line[i..].trim_start_matches(' ');
        let unit = [
            "x ", "x,", "x)", "x;", "ms", "s ", "s,", "s)", "s;", "%", "MB",
        ]
        .iter()
        .any(|u| rest.starts_with(u));
        if unit && number.contains(['.', '-']) {
            out.push(number.to_string());
        }
    }
    out
}
