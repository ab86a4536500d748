//! The file tools: read_file, write_file, edit_file and list_dir.
//!
//! All of them go through the worktree's cap-std `Dir`, so a path that
//! resolves outside the worktree (`..`, or a symlink pointing out) is refused
//! by the filesystem layer itself, not by a check that could be raced.

use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::input::Input;
use super::paths::{Root, io_error};

/// Lines read_file shows when the model gives no `limit`.
const DEFAULT_LINES: u64 = 2000;
/// Bytes of one line read_file shows; longer lines are minified code or
/// data, and the model gains nothing from the rest.
const MAX_LINE: usize = 2000;
/// Bytes of output read_file returns at most.
const MAX_READ: usize = 100 * 1024;
/// Entries list_dir shows at most.
const MAX_ENTRIES: usize = 1000;
/// How far into a file read_file looks for a NUL to call it binary.
const SNIFF: usize = 8192;

pub(crate) fn read_file(root: &Root, input: &Input) -> Result<String, String> {
    let p = input.string("path")?;
    let offset = input.opt_count("offset")?.unwrap_or(1).max(1);
    let limit = input.opt_count("limit")?.unwrap_or(DEFAULT_LINES);
    if limit == 0 {
        return Err("field `limit` must be at least 1".to_owned());
    }
    let rel = root.relative(p)?;
    let file = root.dir.open(&rel).map_err(|e| io_error(p, &e))?;
    let meta = file.metadata().map_err(|e| io_error(p, &e))?;
    if meta.is_dir() {
        return Err(format!(
            "{p} is a directory; use list_dir to see what it holds"
        ));
    }
    let mut reader = BufReader::with_capacity(SNIFF, file.into_std());
    let head = reader.fill_buf().map_err(|e| io_error(p, &e))?;
    if head.contains(&0) {
        return Err(format!(
            "{p} looks like a binary file ({} bytes); read_file shows text only",
            meta.len()
        ));
    }

    let mut out = String::new();
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut last_shown = 0u64;
    let mut full = false;
    loop {
        // Once the output is full only the line count is still wanted.
        let keep = if full { 0 } else { MAX_LINE };
        let Some(cut) = next_line(&mut reader, &mut line, keep).map_err(|e| io_error(p, &e))?
        else {
            break;
        };
        number += 1;
        if full || number < offset {
            continue;
        }
        let mut text = String::from_utf8_lossy(&line).into_owned();
        if cut {
            text.push_str(&format!(" … [line cut at {MAX_LINE} bytes]"));
        }
        let entry = format!("{number:>5}\t{text}\n");
        if number - offset >= limit || out.len() + entry.len() > MAX_READ {
            full = true;
            continue;
        }
        out.push_str(&entry);
        last_shown = number;
    }

    if number == 0 {
        return Ok(format!("({p} is empty)"));
    }
    if offset > number {
        return Err(format!(
            "offset {offset} is past the end of {p}, which has {number} lines"
        ));
    }
    if full {
        out.push_str(&format!(
            "[showing lines {offset}-{last_shown} of {number}; read more with offset={}]\n",
            last_shown + 1
        ));
    }
    Ok(out)
}

/// Reads one line (without its `\n` or `\r\n`) into `line`, keeping at most
/// `keep` bytes of it so that a huge line cannot fill memory. Returns `None`
/// at the end of the input, else whether the line was cut.
fn next_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    keep: usize,
) -> io::Result<Option<bool>> {
    line.clear();
    let mut any = false;
    let mut cut = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        any = true;
        let newline = buf.iter().position(|&b| b == b'\n');
        let end = newline.unwrap_or(buf.len());
        let room = keep.saturating_sub(line.len());
        line.extend_from_slice(&buf[..end.min(room)]);
        cut |= end > room;
        reader.consume(newline.map_or(end, |at| at + 1));
        if newline.is_some() {
            break;
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(any.then_some(cut))
}

pub(crate) fn write_file(root: &Root, input: &Input) -> Result<String, String> {
    let p = input.string("path")?;
    let content = input.string("content")?;
    let rel = root.relative(p)?;
    if rel == Path::new(".") {
        return Err(format!("{p} is the worktree itself, not a file"));
    }
    if let Some(parent) = rel.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        // Looked up first: create_dir_all reports a parent that is a symlink
        // out of the worktree as merely existing.
        match root.dir.metadata(parent) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(format!("{} is not a directory", parent.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => root
                .dir
                .create_dir_all(parent)
                .map_err(|e| io_error(p, &e))?,
            Err(e) => return Err(io_error(p, &e)),
        }
    }
    let existed = match root.dir.metadata(&rel) {
        Ok(meta) if meta.is_dir() => {
            return Err(format!("{p} is a directory"));
        }
        Ok(_) => true,
        Err(_) => false,
    };
    root.dir.write(&rel, content).map_err(|e| io_error(p, &e))?;
    let verb = if existed { "overwrote" } else { "created" };
    Ok(format!("{verb} {p} ({} bytes)", content.len()))
}

pub(crate) fn edit_file(root: &Root, input: &Input) -> Result<String, String> {
    let p = input.string("path")?;
    let old = input.string("old_string")?;
    let new = input.string("new_string")?;
    let replace_all = input.opt_bool("replace_all")?.unwrap_or(false);
    if old.is_empty() {
        return Err(
            "old_string is empty; to create a file use write_file, to insert text include the text next to it in old_string"
                .to_owned(),
        );
    }
    if old == new {
        return Err(
            "old_string and new_string are the same; there is nothing to change".to_owned(),
        );
    }
    let rel = root.relative(p)?;
    let bytes = root.dir.read(&rel).map_err(|e| io_error(p, &e))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{p} is not UTF-8 text; edit_file only edits text files"))?;

    let (mut old, mut new) = (old.to_owned(), new.to_owned());
    let mut count = text.matches(&old).count();
    // read_file shows CRLF lines without their `\r`, so a multi-line
    // old_string copied from it only matches once the endings are restored.
    if count == 0 && old.contains('\n') && text.contains("\r\n") {
        old = old.replace('\n', "\r\n");
        new = new.replace('\n', "\r\n");
        count = text.matches(&old).count();
    }
    if count == 0 {
        return Err(format!(
            "old_string was not found in {p}; re-read the file with read_file and copy the text exactly, including whitespace and indentation"
        ));
    }
    if count > 1 && !replace_all {
        return Err(format!(
            "old_string occurs {count} times in {p}; include more context to make it unique or set replace_all"
        ));
    }
    let first_line = text
        .find(&old)
        .map_or(1, |at| text[..at].matches('\n').count() + 1);
    let edited = if replace_all {
        text.replace(&old, &new)
    } else {
        text.replacen(&old, &new, 1)
    };
    root.dir.write(&rel, edited).map_err(|e| io_error(p, &e))?;
    Ok(if count == 1 {
        format!("replaced 1 occurrence in {p} at line {first_line}")
    } else {
        format!("replaced {count} occurrences in {p}, the first at line {first_line}")
    })
}

pub(crate) fn list_dir(root: &Root, input: &Input) -> Result<String, String> {
    let p = input.opt_string("path")?.unwrap_or(".");
    let rel = root.relative(p)?;
    let meta = root.dir.metadata(&rel).map_err(|e| io_error(p, &e))?;
    if !meta.is_dir() {
        return Err(format!("{p} is not a directory; use read_file to read it"));
    }
    let mut entries = Vec::new();
    for entry in root.dir.read_dir(&rel).map_err(|e| io_error(p, &e))? {
        let entry = entry.map_err(|e| io_error(p, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".git" {
            continue;
        }
        let shown = match entry.file_type() {
            Ok(kind) if kind.is_dir() => format!("{name}/"),
            Ok(kind) if kind.is_symlink() => match root.dir.read_link_contents(rel.join(&name)) {
                Ok(target) => format!("{name} -> {}", target.display()),
                Err(_) => format!("{name} -> ?"),
            },
            _ => name,
        };
        entries.push(shown);
    }
    if entries.is_empty() {
        return Ok(format!("({p} is empty)"));
    }
    entries.sort();
    let total = entries.len();
    entries.truncate(MAX_ENTRIES);
    let mut out = entries.join("\n");
    out.push('\n');
    if total > MAX_ENTRIES {
        out.push_str(&format!(
            "[showing {MAX_ENTRIES} of {total} entries; use glob to narrow down]\n"
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "fs_tests.rs"]
mod tests;
