//! The goal's identifiers and where they occur in the commit.
//!
//! A word of the goal is taken as an identifier if it is written in
//! backticks, or, outside backticks, if it looks like code rather than
//! English:
//!
//! - it contains `_` or `::` (`parse_manifest`, `MAX_LEN`, `git::Repo`);
//! - it is a dot path whose parts have two characters or more
//!   (`config.toml`, `os.path`; not `e.g`);
//! - it has four characters or more and mixed case: an upper-case letter
//!   after the first (`repoMap`, `RepoMap`, `IPv4`), or a capital first
//!   letter when it does not start a sentence (`the Dispatcher`);
//!
//! and it is not one of a few common English words (`COMMON`, any case).
//! Words are runs of ASCII letters, digits and `_` starting with a letter
//! or `_`, joined by `::` or `.`. For a `::` path the last part is searched
//! too if it looks like code on its own (`Repo` of `git::Repo`, not `build`
//! of `repomap::build`). At most `MAX_IDENTIFIERS` are kept, in the goal's
//! order.
//!
//! Each identifier is searched as a whole word (`git grep -w -F`): not
//! preceded or followed by a letter, digit or `_`. Binary blobs (a NUL in
//! their first 8,000 bytes, as git decides) and blobs over 1 MiB are not
//! searched. A file's count is the number of its lines containing the word.

use memchr::memmem::Finder;

/// At most this many identifiers of a goal are searched.
pub const MAX_IDENTIFIERS: usize = 8;

/// English words that the rules would otherwise take when capitalised
/// mid-sentence or written with a dot.
const COMMON: &[&str] = &[
    "also", "after", "before", "because", "both", "could", "each", "every", "from", "have", "into",
    "make", "more", "most", "must", "only", "other", "please", "should", "some", "such", "than",
    "that", "their", "them", "then", "there", "these", "they", "this", "those", "through", "until",
    "what", "when", "where", "which", "while", "with", "within", "without", "would",
];

/// The identifiers of `goal`, by the rules of this module, in order of
/// first appearance, without repeats, at most `MAX_IDENTIFIERS`.
pub fn identifiers(goal: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |word: &str| {
        if found.len() < MAX_IDENTIFIERS && !found.iter().any(|w| w == word) {
            found.push(word.to_string());
        }
    };
    for token in tokens(goal) {
        if !token.quoted && !looks_like_code(&token) {
            continue;
        }
        add(token.text);
        if let Some((_, last)) = token.text.rsplit_once("::") {
            let last = Token {
                text: last,
                quoted: false,
                starts_sentence: false,
            };
            if looks_like_code(&last) {
                add(last.text);
            }
        }
    }
    found
}

/// A word of the goal.
struct Token<'g> {
    text: &'g str,
    /// Inside backticks.
    quoted: bool,
    /// First word of the goal, or after `.`, `!`, `?`, `:` or a blank line.
    starts_sentence: bool,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_start_byte(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// Splits `goal` into words (see the module documentation).
fn tokens(goal: &str) -> Vec<Token<'_>> {
    let bytes = goal.as_bytes();
    let mut out = Vec::new();
    let mut quoted = false;
    let mut sentence = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'`' {
            quoted = !quoted;
            i += 1;
        } else if is_start_byte(b) && (i == 0 || !is_word_byte(bytes[i - 1])) {
            let start = i;
            loop {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                let sep = if bytes[i..].starts_with(b"::") {
                    2
                } else if bytes[i..].starts_with(b".") {
                    1
                } else {
                    0
                };
                if sep > 0 && bytes.get(i + sep).is_some_and(|b| is_start_byte(*b)) {
                    i += sep;
                } else {
                    break;
                }
            }
            out.push(Token {
                text: &goal[start..i],
                quoted,
                starts_sentence: sentence,
            });
            sentence = false;
        } else {
            if matches!(b, b'.' | b'!' | b'?' | b':') || goal[i..].starts_with("\n\n") {
                sentence = true;
            } else if !b.is_ascii_whitespace() && !matches!(b, b'"' | b'\'' | b'(' | b'*') {
                sentence = false;
            }
            i += 1;
        }
    }
    out
}

fn looks_like_code(token: &Token<'_>) -> bool {
    let text = token.text;
    if COMMON.iter().any(|c| c.eq_ignore_ascii_case(text)) {
        return false;
    }
    if text.contains("::") || text.contains('_') && text.bytes().any(|b| b.is_ascii_alphabetic()) {
        return true;
    }
    if text.contains('.') {
        return text.split('.').all(|part| part.len() >= 2);
    }
    if text.len() < 4 {
        return false;
    }
    let has_lower = text.bytes().any(|b| b.is_ascii_lowercase());
    let inner_upper = text.bytes().skip(1).any(|b| b.is_ascii_uppercase());
    let capital = text.as_bytes()[0].is_ascii_uppercase();
    has_lower && (inner_upper || capital && !token.starts_sentence)
}

/// The search of every blob for the identifiers, one pass per blob.
pub(crate) struct Search {
    words: Vec<String>,
    finders: Vec<Finder<'static>>,
}

/// Where one identifier occurs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hits {
    pub word: String,
    /// Lines containing it, in all files.
    pub lines: u64,
    /// Files containing it and their line counts, most lines first (then
    /// by path).
    pub files: Vec<(String, u32)>,
}

impl Search {
    pub fn new(words: &[String]) -> Self {
        Self {
            words: words.to_vec(),
            finders: words
                .iter()
                .map(|w| Finder::new(w.as_bytes()).into_owned())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Lines of `data` containing each identifier, or `None` if it contains
    /// none of them or is binary.
    pub fn count(&self, data: &[u8]) -> Option<Vec<u32>> {
        if memchr::memchr(0, &data[..data.len().min(8000)]).is_some() {
            return None;
        }
        let counts: Vec<u32> = self.finders.iter().map(|f| lines_with(f, data)).collect();
        counts.iter().any(|&n| n > 0).then_some(counts)
    }

    /// The hits of each identifier, from the counts of `read::list`
    /// (each of a file by its index; `path_of` names it).
    pub fn results(
        &self,
        path_of: impl Fn(usize) -> String,
        counts: &[(usize, Vec<u32>)],
    ) -> Vec<Hits> {
        self.words
            .iter()
            .enumerate()
            .map(|(w, word)| {
                let mut found: Vec<(String, u32)> = counts
                    .iter()
                    .filter(|(_, n)| n[w] > 0)
                    .map(|(i, n)| (path_of(*i), n[w]))
                    .collect();
                found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                Hits {
                    word: word.clone(),
                    lines: found.iter().map(|(_, n)| u64::from(*n)).sum(),
                    files: found,
                }
            })
            .collect()
    }
}

/// Lines of `data` on which `finder`'s needle occurs as a whole word.
fn lines_with(finder: &Finder<'_>, data: &[u8]) -> u32 {
    let len = finder.needle().len();
    let mut lines = 0;
    // Matches before this offset are on a line already counted.
    let mut counted_to = 0;
    for at in finder.find_iter(data) {
        if at < counted_to {
            continue;
        }
        let end = at + len;
        let whole = (at == 0 || !is_word_byte(data[at - 1]))
            && data.get(end).is_none_or(|b| !is_word_byte(*b));
        if whole {
            lines += 1;
            counted_to = memchr::memchr(b'\n', &data[end..]).map_or(data.len(), |n| end + n + 1);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(goal: &str) -> Vec<String> {
        identifiers(goal)
    }

    #[test]
    fn code_shaped_words_are_identifiers() {
        assert_eq!(
            ids("Rename parse_manifest and RepoMap::build, then fix config.toml"),
            ["parse_manifest", "RepoMap::build", "config.toml"]
        );
        assert_eq!(
            ids("use crate::git::Repo and std::collections::HashMap"),
            [
                "crate::git::Repo",
                "Repo",
                "std::collections::HashMap",
                "HashMap"
            ]
        );
        assert_eq!(ids("make getUser faster"), ["getUser"]);
        assert_eq!(ids("support IPv4 and MAX_LEN"), ["IPv4", "MAX_LEN"]);
        assert_eq!(ids("speed up the Dispatcher"), ["Dispatcher"]);
        assert_eq!(ids("a `build` step and `x`"), ["build", "x"]);
    }

    #[test]
    fn english_is_not() {
        assert!(ids("Add retries to the fetcher.").is_empty());
        assert!(ids("Refactor this, e.g. the parser, i.e. all of it etc.").is_empty());
        assert!(ids("Make it so. Then This and That With care").is_empty());
        assert!(
            ids("Dispatcher is slow").is_empty(),
            "a sentence's first word"
        );
        assert!(ids("OK, do it in 2 steps: v1.2 then 3rd").is_empty());
        assert!(ids("Fix it. Dispatcher is slow").is_empty());
    }

    #[test]
    fn repeats_are_dropped_and_the_count_is_capped() {
        assert_eq!(ids("fix a_b and a_b"), ["a_b"]);
        let many: String = (0..20).map(|i| format!("word_{i} ")).collect();
        assert_eq!(ids(&many).len(), MAX_IDENTIFIERS);
    }

    #[test]
    fn lines_count_whole_words_once_per_line() {
        let search = Search::new(&["foo_bar".to_string(), "Baz".to_string()]);
        let text = b"foo_bar foo_bar\nxfoo_bar\nfoo_barx\n(foo_bar)\nBaz\nBazooka";
        assert_eq!(search.count(text), Some(vec![2, 1]));
        assert_eq!(search.count(b"nothing here"), None);
        assert_eq!(search.count(b"foo_bar\0binary"), None);
        assert_eq!(search.count(b"foo_bar"), Some(vec![1, 0]));
    }
}
