//! Making text that tasks control safe to show. File names, task output,
//! failure reasons and agent summaries come from code swarm does not trust;
//! printed raw, an escape sequence in them drives the coordinator's terminal
//! (rewriting the screen, OSC 52 clipboard writes, window titles) or a
//! Markdown summary (HTML, images, links). Every path that shows such text
//! to a person goes through one of these functions.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is: C0 controls, DEL, C1
/// controls (U+0080..U+009F: U+009B is a one-character CSI on terminals that
/// honour 8-bit controls), and the bidirectional overrides that make text
/// read differently from what it is.
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

fn render(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn escape_with(text: &str, keep: impl Fn(char, Option<char>) -> bool) -> Cow<'_, str> {
    let next = text.chars().skip(1).map(Some).chain(std::iter::once(None));
    let clean = text
        .chars()
        .zip(next)
        .all(|(c, next)| !is_dangerous(c) || keep(c, next));
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_dangerous(c) && !keep(c, chars.peek().copied()) {
            render(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` as one line: every control character, newlines and tabs
/// included, rendered visibly (ESC as `\x1b`, U+009B as `\u{9b}`).
pub fn line(text: &str) -> Cow<'_, str> {
    escape_with(text, |_, _| false)
}

/// `text` as lines of text: newlines, tabs and the `\r` of a `\r\n` are
/// kept, every other control character is rendered visibly.
pub fn text(text: &str) -> Cow<'_, str> {
    escape_with(text, |c, next| {
        c == '\n' || c == '\t' || (c == '\r' && next == Some('\n'))
    })
}

/// Raw bytes (a log) as [`text`]; invalid UTF-8 becomes U+FFFD.
pub fn bytes(raw: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(raw);
    text(&lossy).into_owned()
}

/// JSON text with the control characters JSON allows raw (DEL and C1, and
/// the bidirectional overrides) written as `\u` escapes: the same JSON
/// value, but nothing a terminal acts on. (serde_json escapes C0 already.)
pub fn json(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_dangerous) {
        return Cow::Borrowed(text);
    }
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        // Outside strings JSON has only whitespace, which stays; inside,
        // a `\uXXXX` escape is the same character.
        if is_dangerous(c) && !matches!(c, '\n' | '\r' | '\t' | ' ') {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` for a Markdown table cell or paragraph: one line, control
/// characters visible, and the characters that start Markdown or HTML
/// constructs (code spans, links, images, emphasis, tags, entities, table
/// cells) backslash-escaped, so a file name is shown as written.
pub fn markdown(text: &str) -> String {
    markdown_with(text, true)
}

/// [`markdown`] for swarm's own sentences (failure reasons), whose code
/// spans (`` `task` ``) stay code spans: a code span shows HTML as text,
/// and `<` outside one is still escaped.
pub fn markdown_prose(text: &str) -> String {
    markdown_with(text, false)
}

fn markdown_with(text: &str, backticks: bool) -> String {
    let one_line = line(text);
    let mut out = String::with_capacity(one_line.len() + 8);
    for c in one_line.chars() {
        if (c == '`' && backticks)
            || matches!(
                c,
                '\\' | '*'
                    | '_'
                    | '['
                    | ']'
                    | '('
                    | ')'
                    | '<'
                    | '>'
                    | '!'
                    | '|'
                    | '#'
                    | '~'
                    | '&'
                    | '{'
                    | '}'
            )
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` inside HTML (a `<summary>`), one line, control characters
/// visible, `<`, `>`, `&` and quotes as entities.
pub fn html(text: &str) -> String {
    let one_line = line(text);
    let mut out = String::with_capacity(one_line.len() + 8);
    for c in one_line.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '`' => out.push_str("&#96;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(line("src/lib.rs: ok"), Cow::Borrowed(_)));
        assert!(matches!(text("a\nb\tc\r\n"), Cow::Borrowed(_)));
        assert!(matches!(json("{\"a\":\"é\"}"), Cow::Borrowed(_)));
    }

    #[test]
    fn escape_sequences_are_shown_not_sent() {
        let osc52 = "\x1b]52;c;ZWNobyBoaQ==\x07";
        assert_eq!(line(osc52), "\\x1b]52;c;ZWNobyBoaQ==\\x07");
        assert_eq!(line("\u{9b}31m red"), "\\u{9b}31m red");
        assert_eq!(line("a\u{7f}b"), "a\\x7fb");
        assert_eq!(line("\u{85}"), "\\u{85}");
        assert_eq!(line("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(line("a\nb\tc\rd"), "a\\nb\\tc\\rd");
    }

    #[test]
    fn text_keeps_lines_and_tabs_but_not_a_lone_carriage_return() {
        assert_eq!(text("a\r\nb\tc\n"), "a\r\nb\tc\n");
        assert_eq!(text("50%\r60%\x1b[2K\n"), "50%\\r60%\\x1b[2K\n");
    }

    #[test]
    fn no_escaped_output_contains_a_raw_control_byte() {
        let nasty: String = (0u32..0x100)
            .chain([0x200e, 0x202e, 0x2066])
            .filter_map(char::from_u32)
            .collect();
        for out in [
            line(&nasty).into_owned(),
            text(&nasty).into_owned(),
            markdown(&nasty),
            html(&nasty),
            bytes(&[0x1b, 0x9b, 0xc2, 0x9b, b'x']),
        ] {
            assert!(
                !out.chars()
                    .any(|c| is_dangerous(c) && c != '\n' && c != '\t' && c != '\r'),
                "{out:?}"
            );
            assert!(!out.bytes().any(|b| b == 0x1b || b == 0x07), "{out:?}");
            assert!(!out.contains('\u{9b}'), "{out:?}");
        }
    }

    #[test]
    fn json_keeps_the_value() {
        let value = serde_json::json!({"s": "\u{1b}]52;c;x\u{7}\u{9b}\u{7f}\u{202e}"});
        let raw = serde_json::to_string(&value).unwrap_or_default();
        let safe = json(&raw);
        assert!(
            !safe.contains('\u{9b}') && !safe.contains('\u{7f}'),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back, value);
    }

    #[test]
    fn markdown_and_html_neutralise_injection() {
        assert_eq!(
            markdown("`x` <img src=y> ![a](b) | c"),
            "\\`x\\` \\<img src=y\\> \\!\\[a\\]\\(b\\) \\| c"
        );
        assert_eq!(
            html("<script>&\"`\x1b"),
            "&lt;script&gt;&amp;&quot;&#96;\\x1b"
        );
    }
}
