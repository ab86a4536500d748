//! The file tree of the map: tracked files with sizes, grouped by
//! directory, collapsed to fit a number of bytes.
//!
//! Every directory has a line `name/ (N files, SIZE)` (files and size of
//! everything below it), indented two spaces a level. Under an expanded
//! directory come its subdirectories, then its own files, each as
//! `name (SIZE)`, or, when it has more than `LISTED` of them, one line that
//! sums them up by extension. To fit, directories are collapsed (their
//! line stays, nothing below it) deepest first, and among directories as
//! deep, the one with the most lines below it first. Lines are never cut:
//! when even the top level does not fit, `fit` says so.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::read::File;

/// A directory lists its own files one a line up to this many.
const LISTED: usize = 24;

struct Dir {
    /// Its last path component (`""` for the root).
    name: String,
    /// The root is 0, top-level directories 1.
    depth: usize,
    parent: usize,
    subdirs: Vec<usize>,
    /// Its own files, by index into the listing, in path order.
    files: Vec<usize>,
    /// Files below it, at any depth.
    count: usize,
    size: u64,
}

/// A tree fitted to a size.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Fitted {
    pub text: String,
    /// Directories shown without what is below them.
    pub collapsed: usize,
}

/// The commit's files as a tree of directories.
pub(crate) struct FileTree<'f> {
    files: &'f [File],
    /// The root first; parents before their children.
    dirs: Vec<Dir>,
    /// Bytes of each directory's line.
    line_bytes: Vec<usize>,
    /// Bytes of each directory's own files block.
    files_bytes: Vec<usize>,
}

impl<'f> FileTree<'f> {
    /// `files` must be sorted by path.
    pub fn new(files: &'f [File]) -> Self {
        let mut dirs = vec![Dir {
            name: String::new(),
            depth: 0,
            parent: 0,
            subdirs: Vec::new(),
            files: Vec::new(),
            count: 0,
            size: 0,
        }];
        // The directories of the previous file, root first: paths sharing a
        // prefix are adjacent in sorted order, so a directory left is done.
        let mut open: Vec<(&str, usize)> = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let parts: Vec<&str> = file.path.split('/').collect();
            let (_, dir_parts) = parts.split_last().unwrap_or((&"", &[]));
            let same = open
                .iter()
                .zip(dir_parts)
                .take_while(|((open, _), part)| open == *part)
                .count();
            open.truncate(same);
            for part in &dir_parts[same..] {
                let parent = open.last().map_or(0, |(_, d)| *d);
                let index = dirs.len();
                dirs.push(Dir {
                    name: part.to_string(),
                    depth: open.len() + 1,
                    parent,
                    subdirs: Vec::new(),
                    files: Vec::new(),
                    count: 0,
                    size: 0,
                });
                dirs[parent].subdirs.push(index);
                open.push((part, index));
            }
            let dir = open.last().map_or(0, |(_, d)| *d);
            dirs[dir].files.push(i);
        }
        for d in (0..dirs.len()).rev() {
            let own: u64 = dirs[d].files.iter().map(|&i| files[i].size).sum();
            dirs[d].count += dirs[d].files.len();
            dirs[d].size += own;
            if d > 0 {
                let (count, size, parent) = (dirs[d].count, dirs[d].size, dirs[d].parent);
                dirs[parent].count += count;
                dirs[parent].size += size;
            }
        }
        let mut by_name: Vec<Vec<usize>> = dirs.iter().map(|d| d.subdirs.clone()).collect();
        for subdirs in &mut by_name {
            subdirs.sort_by(|a, b| dirs[*a].name.cmp(&dirs[*b].name));
        }
        for (dir, subdirs) in dirs.iter_mut().zip(by_name) {
            dir.subdirs = subdirs;
        }
        let mut tree = Self {
            files,
            dirs,
            line_bytes: Vec::new(),
            files_bytes: Vec::new(),
        };
        tree.line_bytes = (0..tree.dirs.len())
            .map(|d| tree.dir_line(d).len())
            .collect();
        tree.files_bytes = (0..tree.dirs.len())
            .map(|d| tree.files_block(d).len())
            .collect();
        tree
    }

    /// The tree in at most `max_bytes` bytes, with as few directories
    /// collapsed as this order allows; `None` if even the top level (every
    /// directory collapsed) does not fit.
    pub fn fit(&self, max_bytes: usize) -> Option<Fitted> {
        let n = self.dirs.len();
        // Bytes of each directory's own line, and of what is below it.
        let line = &self.line_bytes;
        let mut below = self.files_bytes.clone();
        for d in (1..n).rev() {
            let parent = self.dirs[d].parent;
            below[parent] += line[d] + below[d];
        }
        let mut collapsed = vec![false; n];
        let mut total = below[0];
        if total > max_bytes {
            let mut order: Vec<usize> = (1..n).collect();
            order.sort_by(|&a, &b| {
                let (da, db) = (&self.dirs[a], &self.dirs[b]);
                db.depth
                    .cmp(&da.depth)
                    .then(below[b].cmp(&below[a]))
                    .then(a.cmp(&b))
            });
            for d in order {
                if total <= max_bytes {
                    break;
                }
                let saved = below[d];
                collapsed[d] = true;
                total -= saved;
                let mut a = d;
                while a != 0 {
                    a = self.dirs[a].parent;
                    below[a] -= saved;
                }
            }
        }
        if total > max_bytes {
            return None;
        }
        let mut text = String::with_capacity(total);
        self.render(0, &collapsed, &mut text);
        Some(Fitted {
            text,
            collapsed: collapsed.iter().filter(|c| **c).count(),
        })
    }

    fn render(&self, d: usize, collapsed: &[bool], out: &mut String) {
        for &s in &self.dirs[d].subdirs {
            out.push_str(&self.dir_line(s));
            if !collapsed[s] {
                self.render(s, collapsed, out);
            }
        }
        out.push_str(&self.files_block(d));
    }

    /// `name/ (N files, SIZE)` at its indentation.
    fn dir_line(&self, d: usize) -> String {
        let dir = &self.dirs[d];
        let indent = "  ".repeat(dir.depth.saturating_sub(1));
        format!(
            "{indent}{}/ ({}, {})\n",
            dir.name,
            files(dir.count),
            size(dir.size)
        )
    }

    /// A directory's own files: one a line, or their sum by extension.
    fn files_block(&self, d: usize) -> String {
        let dir = &self.dirs[d];
        let indent = "  ".repeat(dir.depth);
        let mut out = String::new();
        if dir.files.len() <= LISTED {
            for &i in &dir.files {
                let file = &self.files[i];
                let name = super::read::name(&file.path);
                let link = if file.link { ", link" } else { "" };
                let _ = writeln!(out, "{indent}{name} ({}{link})", size(file.size));
            }
            return out;
        }
        let mut by_ext: HashMap<&str, usize> = HashMap::new();
        for &i in &dir.files {
            *by_ext.entry(extension(&self.files[i].path)).or_default() += 1;
        }
        let mut by_ext: Vec<(&str, usize)> = by_ext.into_iter().collect();
        by_ext.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let own: u64 = dir.files.iter().map(|&i| self.files[i].size).sum();
        let mut kinds: Vec<String> = by_ext
            .iter()
            .take(4)
            .map(|(ext, n)| format!("{n} {ext}"))
            .collect();
        if by_ext.len() > 4 {
            kinds.push("...".into());
        }
        let _ = writeln!(
            out,
            "{indent}{} here, {}: {}",
            files(dir.files.len()),
            size(own),
            kinds.join(", ")
        );
        out
    }
}

/// `*.rs` for `a/b.rs`, `Makefile` for a name without an extension.
fn extension(path: &str) -> &str {
    let name = super::read::name(path);
    match name.rfind('.') {
        Some(0) | None => name,
        Some(dot) => &name[dot..],
    }
}

/// `1 file`, `1,234 files`.
pub(crate) fn files(n: usize) -> String {
    count(n, "file", "files")
}

/// `n` and the noun: `1 crate`, `1,234 crates`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", thousands(n as u64))
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A size for people: `512 B`, `3.1 KiB`, `48 KiB`, `1.2 MiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 9.95 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(paths: &[(&str, u64)]) -> Vec<File> {
        let mut files: Vec<File> = paths
            .iter()
            .map(|(path, size)| File {
                path: path.to_string(),
                oid: git2::Oid::ZERO_SHA1,
                size: *size,
                link: false,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }

    #[test]
    fn sizes_and_counts_read_well() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(3200), "3.1 KiB");
        assert_eq!(size(48 * 1024), "48 KiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(files(1), "1 file");
        assert_eq!(files(12345), "12,345 files");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }

    #[test]
    fn the_whole_tree_when_it_fits() {
        let files = listing(&[
            ("README.md", 100),
            ("src/main.rs", 2048),
            ("src/a-b/x.rs", 10),
            ("src/a/y.rs", 20),
            ("src.txt", 1),
        ]);
        let tree = FileTree::new(&files);
        let text = tree.fit(10_000).unwrap().text;
        assert_eq!(
            text,
            "src/ (3 files, 2.0 KiB)\n  a/ (1 file, 20 B)\n    y.rs (20 B)\n  \
             a-b/ (1 file, 10 B)\n    x.rs (10 B)\n  main.rs (2.0 KiB)\nREADME.md (100 B)\n\
             src.txt (1 B)\n"
        );
    }

    #[test]
    fn deepest_directories_collapse_first_and_it_always_fits() {
        let mut paths = Vec::new();
        for a in 0..10 {
            for b in 0..10 {
                for f in 0..10 {
                    paths.push((format!("d{a}/e{b}/f{f}.rs"), 1000));
                }
            }
        }
        paths.push(("top.txt".to_string(), 5));
        let paths: Vec<(&str, u64)> = paths.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        let files = listing(&paths);
        let tree = FileTree::new(&files);
        let full = tree.fit(usize::MAX).unwrap().text;
        assert_eq!(full.lines().count(), 10 + 100 + 1000 + 1);
        for budget in [20_000, 5_000, 1_000, 300] {
            let text = tree.fit(budget).unwrap().text;
            assert!(text.len() <= budget, "{budget}: {}", text.len());
            assert!(text.ends_with("top.txt (5 B)\n"));
            // Deepest first: while a top-level directory is collapsed, no
            // second-level directory shows its files.
            let lines: Vec<&str> = text.lines().collect();
            let top_collapsed = lines
                .windows(2)
                .any(|w| w[0].starts_with('d') && !w[1].starts_with("  "));
            let deep_files = lines.iter().any(|l| l.starts_with("    "));
            assert!(!(top_collapsed && deep_files), "{budget}:\n{text}");
        }
        let top = tree.fit(300).unwrap().text;
        assert_eq!(top.lines().count(), 11, "{top}");
        assert!(top.starts_with("d0/ (100 files, 98 KiB)\nd1/"));
        assert_eq!(tree.fit(100), None);
    }

    #[test]
    fn a_crowded_directory_is_summed_up() {
        let paths: Vec<String> = (0..30).map(|i| format!("lib/m{i:02}.rs")).collect();
        let mut paths: Vec<(&str, u64)> = paths.iter().map(|p| (p.as_str(), 10)).collect();
        paths.push(("lib/Makefile", 10));
        paths.push(("lib/x.toml", 10));
        let files = listing(&paths);
        let text = FileTree::new(&files).fit(usize::MAX).unwrap().text;
        assert_eq!(
            text,
            "lib/ (32 files, 320 B)\n  32 files here, 320 B: 30 .rs, 1 .toml, 1 Makefile\n"
        );
    }
}
