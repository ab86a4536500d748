//! Content a snapshot never writes into git's object database, however a
//! task wrapped it: the person's files `.worktreeinclude` copies into each
//! worktree (a `.env`). Every task of the repository reads that database
//! (a plan from an MCP client's among them, which gets none of those
//! files), so a blob holding one's content is refused before it is
//! written anywhere: the file copied whole, with a byte added, or appended
//! to a tracked file.
//!
//! A file is looked for by its whole content, whitespace trimmed at both
//! ends (a task that adds a newline still holds it), in every file and
//! link a snapshot reads. One shorter than [`MIN_LEN`] bytes (trimmed) is
//! looked for only as a whole blob: a few bytes occur by chance. What a
//! task keeps of a file by taking part of it, or encoding it, is not
//! found: the task has the file, and this is no fence against one that
//! means to carry it out; it keeps the person's file out of results by
//! accident and by the obvious means.
//!
//! A file's content is not its leak where the same path held it at the
//! base already (a tracked `.env.example` that is the `.env`): that is in
//! the repository anyway.

use std::io::Read;

use aho_corasick::AhoCorasick;
use git2::Oid;

/// Content shorter than this (trimmed) is looked for as a whole blob only.
pub const MIN_LEN: usize = 16;

/// Content up to this size is looked for with all the others in one pass.
const SMALL: usize = 64 << 10;

/// Most bytes of content held to look for, larger files' together: past
/// it, a file is looked for as a whole blob only.
const MAX_HELD: usize = 16 << 20;

/// How much of a large blob is read at once when it is looked through.
const CHUNK: usize = 1 << 20;

/// One file whose content is kept out: its name (for messages), its blob
/// id, and its content if it is to be looked for inside blobs (`None`: as
/// a whole blob only).
#[derive(Debug, Clone)]
pub struct Secret {
    pub name: String,
    pub id: Oid,
    pub content: Option<Vec<u8>>,
}

/// What is kept out of the object database (see the module). Empty: none.
#[derive(Debug, Clone, Default)]
pub struct Screen {
    /// Each file's name, blob id and length trimmed.
    files: Vec<(String, Oid, usize)>,
    /// The small contents, all at once; `owners[pattern]` is its file.
    finder: Option<AhoCorasick>,
    owners: Vec<usize>,
    /// The larger contents, each with its file.
    large: Vec<(memchr::memmem::Finder<'static>, usize)>,
    /// The longest content looked for inside blobs.
    longest: usize,
    /// Some file is looked for as a whole blob only (short, or too large
    /// to hold): a blob's id is worth computing to find it. Every other
    /// one is found inside a blob that is it whole.
    by_id: bool,
}

impl Screen {
    /// The screen of `secrets`.
    pub fn new(secrets: Vec<Secret>) -> Self {
        let mut screen = Self::default();
        let mut small: Vec<Vec<u8>> = Vec::new();
        let mut held = 0;
        for (i, secret) in secrets.into_iter().enumerate() {
            let trimmed = secret.content.as_deref().map(<[u8]>::trim_ascii);
            // An empty file (or only whitespace) is no secret: every empty
            // file a task makes would be it.
            let id = match trimmed {
                Some([]) => Oid::ZERO_SHA1,
                _ => secret.id,
            };
            let trimmed = trimmed.unwrap_or_default();
            screen.files.push((secret.name, id, trimmed.len()));
            if trimmed.len() < MIN_LEN || held + trimmed.len() > MAX_HELD {
                screen.by_id |= !id.is_zero();
                continue;
            }
            held += trimmed.len();
            screen.longest = screen.longest.max(trimmed.len());
            if trimmed.len() <= SMALL {
                small.push(trimmed.to_vec());
                screen.owners.push(i);
            } else {
                let finder = memchr::memmem::Finder::new(trimmed).into_owned();
                screen.large.push((finder, i));
            }
        }
        // Built from plain byte strings: it cannot fail short of memory
        // limits far past `MAX_HELD`, and then the contents are still
        // looked for as whole blobs.
        screen.finder = match small.is_empty() {
            true => None,
            false => AhoCorasick::new(&small).ok(),
        };
        screen
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The name of file `i` (as [`Screen::found_in`] gives it).
    pub fn name(&self, i: usize) -> &str {
        self.files.get(i).map_or("", |(name, _, _)| name.as_str())
    }

    /// Whether `data`, which holds file `i`, is that file (give or take
    /// whitespace at its ends) and nothing more.
    pub fn is_whole(&self, i: usize, data: &[u8]) -> bool {
        self.files.get(i).is_some_and(|(_, id, len)| {
            data.trim_ascii().len() == *len
                || Oid::hash_object(git2::ObjectType::Blob, data).ok() == Some(*id)
        })
    }

    /// The files whose content `data` (a blob's) holds, sorted.
    pub fn found_in(&self, data: &[u8]) -> Vec<usize> {
        let mut found = Vec::new();
        self.look(data, &mut found);
        self.whole(data, &mut found);
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The files whose content is inside what `reader` gives (a large
    /// file, read in pieces that overlap by the longest content), sorted.
    /// Whether it is one of them whole is [`Screen::with_id`]'s to say,
    /// once its id is known.
    pub fn found_in_reader(&self, mut reader: impl Read) -> std::io::Result<Vec<usize>> {
        let mut found = Vec::new();
        let keep = self.longest.saturating_sub(1);
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + keep);
        loop {
            let had = buf.len();
            buf.resize(had + CHUNK, 0);
            let n = reader.read(&mut buf[had..])?;
            buf.truncate(had + n);
            if n == 0 {
                break;
            }
            self.look(&buf, &mut found);
            let cut = buf.len().saturating_sub(keep);
            buf.drain(..cut);
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// The files whose whole content is the blob `id`.
    pub fn with_id(&self, id: Oid) -> Vec<usize> {
        self.files
            .iter()
            .enumerate()
            .filter(|(_, (_, file, _))| *file == id && !id.is_zero())
            .map(|(i, _)| i)
            .collect()
    }

    /// `data` with every place that holds one of the files `only` (as
    /// [`Screen::found_in`] gives them) replaced by a line saying which
    /// was left out there: what of a file is a task's own work, without
    /// what is not.
    pub fn cut(&self, data: &[u8], only: &[usize]) -> Vec<u8> {
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        if let Some(finder) = &self.finder {
            for m in finder.find_overlapping_iter(data) {
                let file = self.owners[m.pattern().as_usize()];
                if only.contains(&file) {
                    spans.push((m.start(), m.end(), file));
                }
            }
        }
        for (finder, file) in self.large.iter().filter(|(_, f)| only.contains(f)) {
            let len = finder.needle().len();
            spans.extend(finder.find_iter(data).map(|at| (at, at + len, *file)));
        }
        let mut whole = Vec::new();
        self.whole(data, &mut whole);
        if let Some(file) = whole.into_iter().find(|f| only.contains(f)) {
            spans.push((0, data.len(), file));
        }
        spans.sort_unstable();
        let mut out = Vec::with_capacity(data.len());
        let mut done = 0;
        for (start, end, file) in spans {
            if end <= done {
                continue;
            }
            if start >= done {
                out.extend_from_slice(&data[done..start]);
                out.extend_from_slice(
                    format!(
                        "[swarm: the content of {} was left out here]",
                        self.name(file)
                    )
                    .as_bytes(),
                );
            }
            done = end;
        }
        out.extend_from_slice(&data[done.min(data.len())..]);
        out
    }

    /// The files whose trimmed content is inside `data`, into `found`.
    fn look(&self, data: &[u8], found: &mut Vec<usize>) {
        if let Some(finder) = &self.finder {
            for m in finder.find_overlapping_iter(data) {
                found.push(self.owners[m.pattern().as_usize()]);
            }
        }
        for (finder, i) in &self.large {
            if data.len() >= finder.needle().len() && finder.find(data).is_some() {
                found.push(*i);
            }
        }
    }

    /// The files whose whole content `data` is, into `found`: the short
    /// ones are looked for only so.
    fn whole(&self, data: &[u8], found: &mut Vec<usize>) {
        if !self.by_id {
            return;
        }
        if let Ok(id) = Oid::hash_object(git2::ObjectType::Blob, data) {
            found.extend(self.with_id(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, content: &[u8]) -> Secret {
        Secret {
            name: name.into(),
            id: Oid::hash_object(git2::ObjectType::Blob, content).unwrap(),
            content: Some(content.to_vec()),
        }
    }

    fn screen() -> Screen {
        Screen::new(vec![
            secret(".env", b"API_TOKEN=sk-live-0123456789abcdef\nPORT=80\n"),
            secret("short", b"A=1\n"),
            secret("empty", b"\n"),
        ])
    }

    #[test]
    fn a_file_is_found_inside_a_blob_trimmed_and_a_short_one_only_whole() {
        let s = screen();
        let env = b"API_TOKEN=sk-live-0123456789abcdef\nPORT=80\n";
        assert_eq!(s.found_in(env), vec![0]);
        let mut wrapped = b"# notes\n".to_vec();
        wrapped.extend_from_slice(&env[..env.len() - 1]);
        wrapped.extend_from_slice(b"X");
        assert_eq!(s.found_in(&wrapped), vec![0]);
        assert_eq!(s.found_in(b"A=1\n"), vec![1]);
        assert!(s.found_in(b"A=1\nB=2\n").is_empty());
        assert!(s.found_in(b"\n").is_empty() && s.found_in(b"").is_empty());
        assert!(
            s.found_in(b"API_TOKEN=sk-live-0123456789abcdef\n")
                .is_empty()
        );
    }

    #[test]
    fn a_cut_keeps_everything_but_the_files_content() {
        let s = screen();
        let env = b"API_TOKEN=sk-live-0123456789abcdef\nPORT=80";
        let mut data = b"# readme\n".to_vec();
        data.extend_from_slice(env);
        data.extend_from_slice(b"\nmore\n");
        data.extend_from_slice(env);
        let cut = s.cut(&data, &[0]);
        let marker = "[swarm: the content of .env was left out here]";
        assert_eq!(
            String::from_utf8(cut).unwrap(),
            format!("# readme\n{marker}\nmore\n{marker}")
        );
        assert_eq!(
            s.cut(b"A=1\n", &[1]),
            b"[swarm: the content of short was left out here]"
        );
        assert_eq!(s.cut(&data, &[1]), data);
    }

    #[test]
    fn a_large_blob_read_in_pieces_finds_a_file_across_their_edge() {
        let s = screen();
        let env = b"API_TOKEN=sk-live-0123456789abcdef\nPORT=80";
        for at in [0, CHUNK - 10, CHUNK - 1, CHUNK, 3 * CHUNK - 20] {
            let mut data = vec![b'.'; at];
            data.extend_from_slice(env);
            data.extend_from_slice(&vec![b'.'; CHUNK]);
            assert_eq!(
                s.found_in_reader(data.as_slice()).unwrap(),
                vec![0],
                "at {at}"
            );
        }
        assert!(
            s.found_in_reader(vec![b'.'; 3 * CHUNK].as_slice())
                .unwrap()
                .is_empty()
        );
        let short = Oid::hash_object(git2::ObjectType::Blob, b"A=1\n").unwrap();
        assert_eq!(s.with_id(short), vec![1]);
    }
}
