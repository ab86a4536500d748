//! Where a place in a shell script (`sh -c`, POSIX, as dash reads it)
//! stands: outside quotes, inside double quotes, inside single quotes, in
//! a here-document, a comment... What swarm puts into a command a person
//! wrote (a dependency's answer, for `{deps.<id>.output...}`) must be one
//! word of it whatever surrounds it, and what is safe depends on exactly
//! that: a variable's expansion is never read as shell syntax again, but
//! only outside single quotes, backquotes and arithmetic does the shell
//! expand one plainly. [`contexts`] says, for each place, which it is.
//!
//! The reading is the one the shell does for quoting, not a whole parser:
//! quotes and backslashes, `$(...)`, `$((...))`, `${...}`, backquotes,
//! comments and here-documents (`<<WORD`, `<<-WORD`, a quoted word making
//! the body literal). A script it cannot follow (an unterminated quote)
//! leaves the places after it in the context it was in, which
//! [`Context::fillable`] refuses unless it is plainly safe.

/// What surrounds a place in a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Outside quotes (also inside a `$(...)`): a word of its own.
    Unquoted,
    /// Inside double quotes, or in a here-document whose body is expanded.
    DoubleQuoted,
    /// Inside single quotes (or `$'...'`), or a literal here-document:
    /// nothing expands there.
    Literal,
    /// Inside backquotes, `$((...))` or `${...}`: the shell reads what is
    /// there again (as a command, an arithmetic expression or a word).
    Reread,
    /// In a comment.
    Comment,
}

impl Context {
    /// How a variable `name` is written at a place of this context so
    /// that its value is exactly one word, read as data only: `None` where
    /// no way is safe.
    pub fn expansion(self, name: &str) -> Option<String> {
        match self {
            Context::Unquoted => Some(format!("\"${{{name}}}\"")),
            Context::DoubleQuoted => Some(format!("${{{name}}}")),
            Context::Literal | Context::Reread | Context::Comment => None,
        }
    }

    /// Whether a value can be put here safely.
    pub fn fillable(self) -> bool {
        self.expansion("X").is_some()
    }

    /// In words, for an error: "inside single quotes".
    pub fn describe(self) -> &'static str {
        match self {
            Context::Unquoted => "outside quotes",
            Context::DoubleQuoted => "inside double quotes",
            Context::Literal => "inside single quotes (or a here-document with a quoted word)",
            Context::Reread => "inside backquotes, `$((...))` or `${...}`",
            Context::Comment => "in a comment",
        }
    }
}

/// One open construct while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Double,
    /// `$(`: a command, read as at the top.
    Command,
    /// `$((`.
    Arithmetic,
    /// `${`.
    Parameter,
    Backquote,
}

/// The context of each of `offsets` (byte offsets into `script`, in any
/// order) in the script.
pub fn contexts(script: &str, offsets: &[usize]) -> Vec<Context> {
    let at = read(script);
    offsets
        .iter()
        .map(|&o| at.get(o).copied().unwrap_or(Context::Unquoted))
        .collect()
}

/// Marks the bodies of the here-documents `pending` (word, strip tabs,
/// literal) that start at `i` in `script`, each up to its word alone on a
/// line; where the script goes on after them.
fn here_bodies(
    script: &str,
    at: &mut [Context],
    mut i: usize,
    pending: Vec<(String, bool, bool)>,
) -> usize {
    let bytes = script.as_bytes();
    for (word, strip, literal) in pending {
        let context = match literal {
            true => Context::Literal,
            false => Context::DoubleQuoted,
        };
        // The body: lines up to the word alone on one.
        while i < bytes.len() {
            let end = find(bytes, i, b'\n').unwrap_or(bytes.len());
            let line = &script[i..end];
            let line = if strip {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if line == word {
                i = (end + 1).min(bytes.len());
                break;
            }
            mark(at, i, end - i, context);
            i = end + 1;
        }
    }
    i
}

/// The context of every byte of `script`.
fn read(script: &str) -> Vec<Context> {
    let bytes = script.as_bytes();
    let mut at = vec![Context::Unquoted; bytes.len()];
    let mut stack: Vec<Open> = Vec::new();
    // Here-documents whose bodies start at the next line: (word, strip
    // tabs, literal).
    let mut pending: Vec<(String, bool, bool)> = Vec::new();
    let mut i = 0;
    // Whether the last byte ended a word (a `#` there starts a comment).
    let mut word_start = true;
    while i < bytes.len() {
        let top = stack.last().copied();
        let here = match top {
            None | Some(Open::Command) => Context::Unquoted,
            Some(Open::Double) => Context::DoubleQuoted,
            Some(Open::Arithmetic | Open::Parameter | Open::Backquote) => Context::Reread,
        };
        at[i] = here;
        let b = bytes[i];
        let rest = &bytes[i..];
        match top {
            Some(Open::Double) => match b {
                b'"' => {
                    stack.pop();
                    i += 1;
                }
                b'\\' => {
                    mark(&mut at, i, 2, here);
                    i += 2;
                }
                b'$' if rest.starts_with(b"$((") => {
                    stack.push(Open::Arithmetic);
                    i += 3;
                }
                b'$' if rest.starts_with(b"$(") => {
                    stack.push(Open::Command);
                    i += 2;
                }
                b'$' if rest.starts_with(b"${") => {
                    stack.push(Open::Parameter);
                    i += 2;
                }
                b'`' => {
                    stack.push(Open::Backquote);
                    i += 1;
                }
                _ => i += 1,
            },
            Some(Open::Backquote) => match b {
                b'`' => {
                    stack.pop();
                    i += 1;
                }
                b'\\' => {
                    mark(&mut at, i, 2, here);
                    i += 2;
                }
                _ => i += 1,
            },
            Some(Open::Arithmetic) => {
                if rest.starts_with(b"))") {
                    mark(&mut at, i, 2, here);
                    stack.pop();
                    i += 2;
                } else {
                    i += 1;
                }
            }
            Some(Open::Parameter) => {
                if b == b'}' {
                    stack.pop();
                }
                i += 1;
            }
            None | Some(Open::Command) => {
                let starts_word = word_start;
                word_start = matches!(b, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(');
                match b {
                    b'\'' => {
                        let end = find(bytes, i + 1, b'\'').unwrap_or(bytes.len());
                        mark(&mut at, i + 1, end - i - 1, Context::Literal);
                        i = end + 1;
                    }
                    b'"' => {
                        stack.push(Open::Double);
                        i += 1;
                    }
                    b'\\' => {
                        mark(&mut at, i, 2, here);
                        i += 2;
                    }
                    b'$' if rest.starts_with(b"$'") => {
                        let end = find(bytes, i + 2, b'\'').unwrap_or(bytes.len());
                        mark(&mut at, i + 2, end - i - 2, Context::Literal);
                        i = end + 1;
                    }
                    b'$' if rest.starts_with(b"$((") => {
                        stack.push(Open::Arithmetic);
                        i += 3;
                    }
                    b'$' if rest.starts_with(b"$(") => {
                        stack.push(Open::Command);
                        i += 2;
                    }
                    b'$' if rest.starts_with(b"${") => {
                        stack.push(Open::Parameter);
                        i += 2;
                    }
                    b'`' => {
                        stack.push(Open::Backquote);
                        i += 1;
                    }
                    b')' if top == Some(Open::Command) => {
                        stack.pop();
                        i += 1;
                    }
                    b'#' if starts_word => {
                        let end = find(bytes, i, b'\n').unwrap_or(bytes.len());
                        mark(&mut at, i, end - i, Context::Comment);
                        i = end;
                    }
                    b'<' if rest.starts_with(b"<<") && !rest.starts_with(b"<<<") => {
                        let (word, strip, literal, next) = here_word(bytes, i + 2);
                        if !word.is_empty() {
                            pending.push((word, strip, literal));
                        }
                        i = next;
                    }
                    b'\n' if !pending.is_empty() => {
                        i = here_bodies(script, &mut at, i + 1, std::mem::take(&mut pending));
                    }
                    _ => i += 1,
                }
            }
        }
    }
    at
}

/// The word of a here-document operator after `<<` at `from`: the word
/// with its quotes taken out, whether `-` strips leading tabs, whether any
/// quoting made the body literal, and where reading goes on.
fn here_word(bytes: &[u8], mut from: usize) -> (String, bool, bool, usize) {
    let strip = bytes.get(from) == Some(&b'-');
    if strip {
        from += 1;
    }
    while matches!(bytes.get(from), Some(b' ' | b'\t')) {
        from += 1;
    }
    let mut word = Vec::new();
    let mut literal = false;
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' | b'"' => {
                literal = true;
                let end = find(bytes, i + 1, b).unwrap_or(bytes.len());
                word.extend_from_slice(&bytes[i + 1..end]);
                i = end + 1;
            }
            b'\\' => {
                literal = true;
                if let Some(&next) = bytes.get(i + 1) {
                    word.push(next);
                }
                i += 2;
            }
            b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')' => break,
            _ => {
                word.push(b);
                i += 1;
            }
        }
    }
    (
        String::from_utf8_lossy(&word).into_owned(),
        strip,
        literal,
        i,
    )
}

fn find(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|&b| b == byte)
        .map(|p| from + p)
}

fn mark(at: &mut [Context], from: usize, len: usize, context: Context) {
    let end = (from + len).min(at.len());
    if from < end {
        at[from..end].fill(context);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The context of the first `@` in `script`.
    fn of(script: &str) -> Context {
        let at = script.find('@').unwrap();
        contexts(script, &[at])[0]
    }

    #[test]
    fn quotes_are_followed() {
        assert_eq!(of("echo @"), Context::Unquoted);
        assert_eq!(of("echo \"a @ b\""), Context::DoubleQuoted);
        assert_eq!(of("echo 'a @ b'"), Context::Literal);
        assert_eq!(of("echo \"it's @\""), Context::DoubleQuoted);
        assert_eq!(of("echo 'say \"@\"'"), Context::Literal);
        assert_eq!(of("echo \\' @"), Context::Unquoted);
        assert_eq!(of("echo \"\\\" @\""), Context::DoubleQuoted);
        assert_eq!(of("echo $'a @'"), Context::Literal);
        assert_eq!(of("echo 'a' @ 'b'"), Context::Unquoted);
    }

    #[test]
    fn substitutions_and_rereads() {
        assert_eq!(of("x=$(echo @)"), Context::Unquoted);
        assert_eq!(of("x=\"$(echo @)\""), Context::Unquoted);
        assert_eq!(of("x=\"$(echo \"@\")\""), Context::DoubleQuoted);
        assert_eq!(of("echo `echo @`"), Context::Reread);
        assert_eq!(of("echo $((1 + @))"), Context::Reread);
        assert_eq!(of("echo ${x:-@}"), Context::Reread);
        assert_eq!(of("echo $(echo a) @"), Context::Unquoted);
    }

    #[test]
    fn comments_and_here_documents() {
        assert_eq!(of("true # @"), Context::Comment);
        assert_eq!(of("echo a#@"), Context::Unquoted);
        assert_eq!(of("cat <<EOF\nhello @\nEOF\n"), Context::DoubleQuoted);
        assert_eq!(of("cat <<'EOF'\nhello @\nEOF\n"), Context::Literal);
        assert_eq!(of("cat <<-\"EOF\"\n\thello @\n\tEOF\n"), Context::Literal);
        assert_eq!(of("cat <<EOF\nx\nEOF\necho @"), Context::Unquoted);
        assert_eq!(
            of("cat <<EOF > f; echo 'a'\nit's @\nEOF\n"),
            Context::DoubleQuoted
        );
    }

    #[test]
    fn expansions_are_one_word_where_they_can_be() {
        assert_eq!(
            Context::Unquoted.expansion("V").as_deref(),
            Some("\"${V}\"")
        );
        assert_eq!(
            Context::DoubleQuoted.expansion("V").as_deref(),
            Some("${V}")
        );
        assert!(!Context::Literal.fillable());
        assert!(!Context::Reread.fillable());
    }
}
