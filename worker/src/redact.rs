//! Secrets of the person's taken out of what a task prints, as its output
//! is copied into its log ([`crate::output::capture`]), the way the
//! gateway takes an API key out of what it records: no log holds them, so
//! every reader of one (`swarm logs`, a summary's failure tail, the HTML
//! page, an MCP client's `task_logs`, a planner's replan) reads it
//! redacted.
//!
//! The secrets are those of the files `.worktreeinclude` copies into each
//! worktree (a `.env`): each line of one, and the value of each
//! `KEY=value` or `key: value` line, at least [`MIN_LEN`] bytes once
//! trimmed, and each of those as a JSON string writes it (escaped, in a
//! transcript or a tool call's arguments). That is what a command prints by accident (`cat .env`, a
//! configuration dump, a URL with its password in an error). It is no
//! fence against a task that means to print one (the task has the file,
//! and may print it encoded or in pieces): what it keeps out is the
//! person's secret in a log they share without reading it first.

use aho_corasick::{AhoCorasick, MatchKind};

/// Shorter secrets (trimmed) are left alone: a few bytes occur in output
/// by chance.
pub const MIN_LEN: usize = 8;

/// A longer line is looked for in pieces of this size, so that what is
/// held back from a log until its line ends stays small.
const MAX_LEN: usize = 256;

/// Most bytes of secrets one redaction looks for: past it, the rest of a
/// (large) file is not looked for.
const MAX_TOTAL: usize = 8 << 20;

/// What a secret is replaced with.
pub const REDACTED: &[u8] = b"[redacted]";

/// The secrets to take out of a task's output (see the module).
#[derive(Debug, Clone)]
pub struct Redact {
    finder: AhoCorasick,
    /// The longest secret's length.
    longest: usize,
    /// Some file's secrets were left out past [`MAX_TOTAL`].
    partial: bool,
}

impl Redact {
    /// The secrets of `files` (each one file's content), or `None` when
    /// they hold none. A file that is not UTF-8 text holds none: its bytes
    /// are not what a log shows.
    pub fn of_files<'a>(files: impl IntoIterator<Item = &'a [u8]>) -> Option<Self> {
        let mut secrets: Vec<&[u8]> = Vec::new();
        for text in files {
            if std::str::from_utf8(text).is_err() {
                continue;
            }
            for line in text.split(|b| *b == b'\n') {
                let line = line.trim_ascii();
                pieces(line, &mut secrets);
                if let Some(value) = value_of(line).filter(|v| v.len() < line.len()) {
                    pieces(value, &mut secrets);
                }
            }
        }
        // As JSON writes them too (a transcript, an agent's structured
        // answer, a tool call's arguments): a secret holding a quote, a
        // backslash or a control character is written escaped there.
        let escaped: Vec<Vec<u8>> = secrets.iter().filter_map(|s| json_escaped(s)).collect();
        let mut secrets: Vec<&[u8]> = secrets;
        secrets.extend(escaped.iter().map(Vec::as_slice));
        secrets.sort_unstable();
        secrets.dedup();
        let mut total = 0;
        let mut partial = false;
        secrets.retain(|s| {
            total += s.len();
            partial |= total > MAX_TOTAL;
            total <= MAX_TOTAL
        });
        let longest = secrets.iter().map(|s| s.len()).max()?;
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&secrets)
            .ok()?;
        Some(Self {
            finder,
            longest,
            partial,
        })
    }

    /// Whether some secrets were left out (the files held more than one
    /// redaction looks for).
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// `text` with every secret replaced.
    pub fn bytes(&self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        self.finder
            .replace_all_with_bytes(text, &mut out, |_, _, out| {
                out.extend_from_slice(REDACTED);
                true
            });
        out
    }

    /// `text` with every secret replaced.
    pub fn text(&self, text: &str) -> String {
        // A secret is UTF-8 text, and so is what replaces it: what is
        // left of `text` around them is whole characters.
        String::from_utf8_lossy(&self.bytes(text.as_bytes())).into_owned()
    }

    /// A redaction of output that comes in pieces.
    pub fn stream(&self) -> Stream {
        Stream {
            // The automaton is shared, not copied.
            redact: self.clone(),
            held: Vec::new(),
        }
    }
}

/// Output redacted as it comes: what may be the beginning of a secret is
/// held back until the rest of it comes (or the output ends). A secret
/// holds no newline, so what is held is at most what follows the last
/// newline, and less than the longest secret.
#[derive(Debug)]
pub struct Stream {
    redact: Redact,
    held: Vec<u8>,
}

impl Stream {
    /// What of the output so far, `bytes` its newest piece, can be written
    /// now, redacted.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(bytes);
        let after_newline = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let hold = after_newline.max(buf.len().saturating_sub(self.redact.longest - 1));
        let mut out = Vec::with_capacity(buf.len());
        let mut done = 0;
        for found in self.redact.finder.find_iter(&buf) {
            // One that begins in what is held may yet be part of a longer
            // one: it is looked at again with what comes next.
            if found.start() >= hold {
                break;
            }
            out.extend_from_slice(&buf[done..found.start()]);
            out.extend_from_slice(REDACTED);
            done = found.end();
        }
        let cut = hold.max(done);
        out.extend_from_slice(&buf[done..cut]);
        self.held = buf.split_off(cut);
        out
    }

    /// What was held back, redacted: the output ended.
    pub fn finish(self) -> Vec<u8> {
        self.redact.bytes(&self.held)
    }
}

/// Adds `secret` to `secrets` if it is long enough, in pieces of at most
/// [`MAX_LEN`] bytes (the last one, if short, reaching back into the one
/// before it).
fn pieces<'a>(secret: &'a [u8], secrets: &mut Vec<&'a [u8]>) {
    if secret.len() < MIN_LEN {
        return;
    }
    let mut at = 0;
    while at < secret.len() {
        let end = (at + MAX_LEN).min(secret.len());
        let start = match end - at < MIN_LEN {
            true => end.saturating_sub(MAX_LEN),
            false => at,
        };
        secrets.push(&secret[start..end]);
        at = end;
    }
}

/// `secret` as a JSON string holds it (without its quotes), when that
/// differs from the secret itself.
fn json_escaped(secret: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(secret).ok()?;
    let quoted = serde_json::to_string(text).ok()?;
    let inner = quoted.get(1..quoted.len() - 1)?;
    (inner.as_bytes() != secret).then(|| inner.as_bytes().to_vec())
}

/// The value of a `KEY=value`, `export KEY="value"` or `"key": "value",`
/// line: after the first `=` or `:`, trimmed, without its quotes.
fn value_of(line: &[u8]) -> Option<&[u8]> {
    let at = line.iter().position(|b| *b == b'=' || *b == b':')?;
    let mut value = line[at + 1..].trim_ascii();
    while let [rest @ .., b',' | b';'] = value {
        value = rest.trim_ascii_end();
    }
    if let [q @ (b'"' | b'\''), inner @ .., end] = value
        && q == end
    {
        value = inner;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &[u8] = b"# settings\nAPI_TOKEN=\"sk-live-0123456789abcdef\"\nPORT=80\nDATABASE_URL=postgres://app:pa55word-long@db/app\n";

    fn redact() -> Redact {
        Redact::of_files([ENV]).unwrap()
    }

    #[test]
    fn lines_and_values_are_redacted_short_ones_are_not() {
        let r = redact();
        let out = r.text(
            "token sk-live-0123456789abcdef sent\nPORT=80\nAPI_TOKEN=\"sk-live-0123456789abcdef\"\n",
        );
        assert_eq!(out, "token [redacted] sent\nPORT=80\n[redacted]\n");
        assert_eq!(
            r.text("connect postgres://app:pa55word-long@db/app: refused"),
            "connect [redacted]: refused"
        );
    }

    #[test]
    fn a_secret_cut_across_pieces_of_output_is_redacted_and_whole_lines_are_never_held() {
        let r = redact();
        let text = b"log: sk-live-0123456789abcdef\ndone\n";
        for cut in 0..text.len() {
            let mut stream = r.stream();
            let mut out = stream.push(&text[..cut]);
            out.extend(stream.push(&text[cut..]));
            out.extend(stream.finish());
            assert_eq!(out, b"log: [redacted]\ndone\n", "cut at {cut}");
        }
        // Whole lines come out at once.
        let mut stream = r.stream();
        assert_eq!(stream.push(b"fine\n"), b"fine\n");
        // A line yet to end is held back only as far as a secret reaches.
        let long = vec![b'x'; 4096];
        let out = stream.push(&long);
        assert!(out.len() > 4096 - 64, "{}", out.len());
    }

    /// Issue 73's leftover: a secret holding a quote or a backslash is
    /// redacted where JSON escaped it (a transcript, a tool call's
    /// arguments), not only where it is printed as it is.
    #[test]
    fn a_secret_is_redacted_as_json_escapes_it_too() {
        let r = Redact::of_files([&b"PASSWORD=pa\\ss\"word-1234\n"[..]]).unwrap();
        let json = serde_json::json!({ "arguments": "login pa\\ss\"word-1234 now" }).to_string();
        let out = r.text(&json);
        assert!(!out.contains("word-1234"), "{out}");
        assert!(out.contains("[redacted]"), "{out}");
        assert_eq!(r.text("pa\\ss\"word-1234"), "[redacted]");
    }

    #[test]
    fn files_that_are_not_text_or_hold_nothing_long_give_none() {
        assert!(Redact::of_files([&b"A=1\nB=2\n"[..]]).is_none());
        assert!(Redact::of_files([&b"\xff\xfe binary secret here\n"[..]]).is_none());
    }

    #[test]
    fn a_long_line_is_redacted_whole_in_pieces() {
        let line: Vec<u8> = (0..600).map(|i| b'a' + (i % 26) as u8).collect();
        let r = Redact::of_files([line.as_slice()]).unwrap();
        let out = r.bytes(&line);
        assert!(
            out.iter().all(|b| REDACTED.contains(b)),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
}
