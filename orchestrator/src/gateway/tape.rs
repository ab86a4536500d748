//! Record and replay of model traffic: cassettes.
//!
//! Every model call of a run passes through the gateway, so the gateway
//! can keep them: with `--record DIR` each exchange (the request as it went
//! upstream, without its headers, so without any key; the answer event by
//! event with its timing; the usage) is appended to one JSONL cassette per
//! task attempt, and one each for the planner and the replanner. With
//! `--replay DIR` the gateway serves those answers instead of any provider:
//! no key and no network are needed, and a run whose commands are
//! deterministic ends with the same tree.
//!
//! A recorded answer is found by the hash of its normalised request, not by
//! its place: the JSON with its keys in order, without the fields that
//! change from run to run while meaning the same (`metadata`, `user`, cache
//! markers, prompt-cache keys, the output limit the budgets set), with the
//! run's own paths (worktree, tmp, run directory) replaced by placeholders,
//! and ids and timestamps left out. Requests with the same key are served
//! in the order they were recorded. A request that was not recorded is an
//! error that names the task, attempt and turn, with a diff against the
//! nearest recorded request, unless `--replay-fallthrough` sends it to the
//! provider (and `--record` keeps it).
//!
//! The format is [`swarm_protocol::cassette`].
//!
//! A cassette directory is often a repository's (`tests/cassettes`), and
//! whoever wrote to the repository made what is in it: it is read and
//! written as hostile (`crate::untrusted`). The directory the person names
//! must not itself be a link; below it, nothing is followed: a cassette is
//! read only if it is a regular file reached without a link and no larger
//! than [`MAX_CASSETTE`], and recorded only into a file made new
//! (`O_EXCL`) or one already there that is a regular file with no other
//! name, in directories made or entered without following a link.

#![allow(
    clippy::disallowed_methods,
    reason = "the cassette directory the person named (its files are read and written as hostile, through crate::untrusted)"
)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use regex::Regex;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use swarm_protocol::agent::Usage;
use swarm_protocol::cassette::{
    CASSETTE_VERSION, CassetteLine, Exchange, Header, RecordedRequest, RecordedResponse, SseEvent,
};

use super::sse::Events;
use super::stream::refuses_the_request;
use super::{Secret, lock, redact};
use crate::ids::flat;
use crate::untrusted::{self, Limits};

/// The largest cassette replayed: what the coordinator holds of one.
pub const MAX_CASSETTE: u64 = 64 << 20;

/// The most of a provider's refusal a cassette keeps.
const MAX_REFUSAL: usize = 64 << 10;

/// What the person running swarm asked for: `--record`, `--replay`,
/// `--replay-fallthrough`. Only they can give it (a command line, a front
/// end); nothing in a plan or a task turns it on, and replay only ever
/// narrows what a run reaches (no network at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapeSettings {
    /// Where cassettes are written.
    pub record: Option<PathBuf>,
    /// Where recorded answers are served from.
    pub replay: Option<PathBuf>,
    /// Send a request that was not recorded to the provider.
    pub fallthrough: bool,
}

impl TapeSettings {
    pub fn is_off(&self) -> bool {
        self.record.is_none() && self.replay.is_none()
    }

    /// Whether the run may need no API key: every answer replayed.
    pub fn keyless(&self) -> bool {
        self.replay.is_some() && !self.fallthrough
    }
}

/// Whose calls a cassette holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReelId {
    Attempt { task: String, attempt: u32 },
    Planner,
    Replanner,
}

impl ReelId {
    /// The cassette's file under the record or replay directory.
    pub fn file(&self) -> PathBuf {
        match self {
            Self::Attempt { task, attempt } => PathBuf::from("tasks")
                .join(&*flat(task))
                .join(format!("{attempt}.jsonl")),
            Self::Planner => PathBuf::from("planner.jsonl"),
            Self::Replanner => PathBuf::from("replanner.jsonl"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Attempt { task, attempt } => format!("task `{task}`, attempt {attempt}"),
            Self::Planner => "the planner".into(),
            Self::Replanner => "the replanner".into(),
        }
    }
}

/// The run's record/replay settings and the cassettes open in it.
pub(crate) struct Tape {
    settings: TapeSettings,
    /// Every key the gateway holds: scrubbed from each line written, in
    /// case a request ever quoted one.
    secrets: Vec<Secret>,
    /// The planner's and the replanner's: one cassette for all their calls.
    shared: Mutex<BTreeMap<ReelId, Arc<Reel>>>,
}

impl Tape {
    pub fn new(settings: TapeSettings, secrets: Vec<Secret>) -> Self {
        Self {
            settings,
            secrets,
            shared: Mutex::new(BTreeMap::new()),
        }
    }

    /// The cassette of `id`, where this run's `paths` (placeholder, path)
    /// stand for what requests quote of the run's places. The planner's
    /// and the replanner's are opened once and shared.
    pub fn reel(&self, id: ReelId, paths: Vec<(String, PathBuf)>) -> Result<Arc<Reel>, String> {
        if matches!(id, ReelId::Attempt { .. }) {
            return self.open(id, paths).map(Arc::new);
        }
        let mut shared = lock(&self.shared);
        if let Some(reel) = shared.get(&id) {
            return Ok(Arc::clone(reel));
        }
        let reel = Arc::new(self.open(id.clone(), paths)?);
        shared.insert(id, Arc::clone(&reel));
        Ok(reel)
    }

    fn open(&self, id: ReelId, paths: Vec<(String, PathBuf)>) -> Result<Reel, String> {
        let file = id.file();
        let name = id.describe();
        let mut paths: Vec<(String, String)> = paths
            .into_iter()
            .map(|(placeholder, path)| (placeholder, path.display().to_string()))
            .filter(|(_, path)| path.len() > 1)
            .collect();
        // The longest first: a worktree inside the run directory is the
        // worktree, not the run directory plus a rest.
        paths.sort_by_key(|(_, path)| std::cmp::Reverse(path.len()));
        let rel = file.to_string_lossy().into_owned();
        let replay = match &self.settings.replay {
            None => None,
            Some(dir) => Some(Recorded::load(dir, &rel)?),
        };
        // Recording to another directory than the one replayed: the
        // answers served are written there too, so it holds the whole run.
        let copy_served = match (&self.settings.record, &self.settings.replay) {
            (Some(record), Some(replay)) => record != replay,
            _ => false,
        };
        let record = match &self.settings.record {
            None => None,
            Some(dir) => Some(open_for_record(dir, &rel, &name, &paths)?),
        };
        Ok(Reel {
            name,
            paths,
            turns: AtomicU32::new(0),
            replay: replay.map(|r| (r.path.clone(), Mutex::new(r))),
            fallthrough: self.settings.fallthrough,
            record: record.map(|(path, file)| (path, Mutex::new(file))),
            copy_served,
            secrets: self.secrets.clone(),
        })
    }
}

/// The cassette directory `dir` the person named, made if missing: not a
/// link (a repository could have put one there).
fn cassette_dir(dir: &Path, what: &str) -> Result<(), String> {
    match dir.symlink_metadata() {
        Ok(meta) if meta.file_type().is_symlink() => Err(format!(
            "{what} {}: it is a symbolic link; swarm does not follow links in a cassette directory (name the directory it points to if you mean it)",
            dir.display()
        )),
        Ok(_) => Ok(()),
        // Nothing recorded yet: every cassette in it is missing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && what == "replay from" => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{what} {}: {e}", dir.display()))
        }
        Err(e) => Err(format!("{what} {}: {e}", dir.display())),
    }
}

/// Opens the cassette `rel` under `dir` to add to it: a cassette already
/// there (an earlier run's, the one being replayed) keeps what it holds.
fn open_for_record(
    dir: &Path,
    rel: &str,
    name: &str,
    paths: &[(String, String)],
) -> Result<(PathBuf, File), String> {
    let path = dir.join(rel);
    cassette_dir(dir, "record to")?;
    // What `append` refuses names the path it refuses (the cassette or
    // a directory on the way): said once.
    let mut file = untrusted::append(dir, rel).map_err(|e| format!("record to a cassette: {e}"))?;
    let fail = |e: std::io::Error| format!("open cassette {} to record: {e}", path.display());
    // Appending too: a header line says whose paths the exchanges after
    // it quote, and this run's are not the first recording's.
    {
        let header = CassetteLine::Cassette(Header {
            version: CASSETTE_VERSION,
            name: name.to_string(),
            paths: paths
                .iter()
                .map(|(placeholder, path)| (placeholder.clone(), path.clone()))
                .collect(),
        });
        let mut line = serde_json::to_string(&header).map_err(|e| fail(e.into()))?;
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(fail)?;
    }
    Ok((path, file))
}

/// One cassette: the calls of one attempt (or of the planner).
pub struct Reel {
    /// `task `a`, attempt 1`, for errors.
    name: String,
    /// (placeholder, this run's path), the longest path first.
    paths: Vec<(String, String)>,
    turns: AtomicU32,
    replay: Option<(PathBuf, Mutex<Recorded>)>,
    fallthrough: bool,
    record: Option<(PathBuf, Mutex<File>)>,
    /// Write the answers served from the replayed cassette to the recorded
    /// one (another directory).
    copy_served: bool,
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for Reel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reel").field("name", &self.name).finish()
    }
}

/// What a replaying cassette says to a request.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The recorded answer.
    Served(RecordedResponse),
    /// Not recorded, and not to be sent: why, for the task's report.
    Miss(String),
    /// Send it to the provider (not replaying, or falling through).
    Network,
}

impl Reel {
    /// The next call's number in this cassette (from 1).
    pub(crate) fn next_turn(&self) -> u32 {
        self.turns.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Whether calls are answered from a cassette and never sent (no key
    /// is needed for them).
    pub(crate) fn replays_only(&self) -> bool {
        self.replay.is_some() && !self.fallthrough
    }

    /// The recorded answer to call `turn`, a request to `path` with `body`.
    pub(crate) fn lookup(&self, turn: u32, path: &str, body: &Value) -> Lookup {
        let Some((file, recorded)) = &self.replay else {
            return Lookup::Network;
        };
        let normalised = normalise(path, body, &self.paths);
        let key = key_of(&normalised);
        let mut recorded = lock(recorded);
        let exact = recorded
            .entries
            .iter()
            .position(|e| !e.served && e.key.as_deref() == Some(key.as_str()));
        // A hand-written exchange: the first one for this path whose
        // strings the request holds.
        let written = || {
            let mut text = String::new();
            canonical(body, &mut text);
            let raw = body.to_string();
            recorded.entries.iter().position(|e| {
                !e.served
                    && e.key.is_none()
                    && e.path == path
                    && e.contains
                        .iter()
                        .all(|s| text.contains(s.as_str()) || raw.contains(s.as_str()))
            })
        };
        if let Some(at) = exact.or_else(written) {
            let entry = &mut recorded.entries[at];
            entry.served = true;
            let response = entry.response.clone();
            if self.copy_served {
                self.write(Exchange {
                    turn,
                    key: Some(key),
                    request: RecordedRequest {
                        path: path.to_string(),
                        body: Some(body.clone()),
                        contains: Vec::new(),
                    },
                    response: response.clone(),
                    usage: entry.usage,
                });
            }
            return Lookup::Served(response);
        }
        if self.fallthrough {
            return Lookup::Network;
        }
        let why = if !recorded.existed {
            format!("no cassette was recorded at {}", file.display())
        } else if recorded.entries.is_empty() {
            format!("cassette {} holds no exchange", file.display())
        } else {
            let pretty = pretty(&normalised);
            let nearest = recorded.nearest(&pretty);
            match nearest {
                Some((turn, diff)) => format!(
                    "cassette {} has no request like it; the nearest recorded one (turn {turn}) differs:\n{diff}",
                    file.display()
                ),
                None => format!(
                    "cassette {} has no request like it (each recorded one was served already)",
                    file.display()
                ),
            }
        };
        Lookup::Miss(format!(
            "replay: no recorded answer for {}, turn {turn} ({path}): {why}\nhelp: record the run again with --record, or add --replay-fallthrough to ask the provider what was not recorded",
            self.name
        ))
    }

    /// A recorder for call `turn`, if this cassette records.
    pub(crate) fn recorder(
        self: &Arc<Self>,
        turn: u32,
        path: &str,
        body: &Value,
    ) -> Option<Recorder> {
        self.record.as_ref()?;
        let key = key_of(&normalise(path, body, &self.paths));
        Some(Recorder {
            reel: Arc::clone(self),
            exchange: Exchange {
                turn,
                key: Some(key),
                request: RecordedRequest {
                    path: path.to_string(),
                    body: Some(body.clone()),
                    contains: Vec::new(),
                },
                response: RecordedResponse {
                    status: 200,
                    content_type: None,
                    events: Vec::new(),
                    body: None,
                    complete: true,
                },
                usage: None,
            },
            started: Instant::now(),
            events: Events::default(),
            whole: Vec::new(),
        })
    }

    fn write(&self, exchange: Exchange) {
        let Some((path, file)) = &self.record else {
            return;
        };
        let line = CassetteLine::Exchange(Box::new(exchange));
        let Ok(text) = serde_json::to_string(&line) else {
            return;
        };
        let mut text = self
            .secrets
            .iter()
            .fold(text, |text, secret| redact(&text, Some(secret)));
        text.push('\n');
        if let Err(e) = lock(file).write_all(text.as_bytes()) {
            tracing::warn!(path = %path.display(), %e, "failed to write a cassette");
        }
    }
}

/// One exchange being recorded as the answer passes.
pub(crate) struct Recorder {
    reel: Arc<Reel>,
    exchange: Exchange,
    started: Instant,
    events: Events,
    whole: Vec<u8>,
}

impl Recorder {
    /// A piece of the answer as it arrived.
    pub(crate) fn chunk(&mut self, bytes: &[u8], stream: bool) {
        if !stream {
            self.whole.extend_from_slice(bytes);
            return;
        }
        let at_ms = self.started.elapsed().as_millis() as u64;
        for (event, data) in self.events.push(bytes) {
            let data = serde_json::from_str::<Value>(&data)
                .ok()
                .filter(|v| v.is_object() || v.is_array())
                .unwrap_or(Value::String(data));
            self.exchange
                .response
                .events
                .push(SseEvent { at_ms, event, data });
        }
    }

    /// Writes the provider's refusal of the request itself (HTTP `status`,
    /// its body `text`): the answer a replay gives to the same request.
    /// At most [`MAX_REFUSAL`] bytes of it are kept.
    pub(crate) fn refusal(mut self, status: u16, content_type: Option<String>, text: &str) {
        let text = &text[..text.floor_char_boundary(MAX_REFUSAL)];
        let response = &mut self.exchange.response;
        response.status = status;
        response.content_type = content_type;
        response.events.clear();
        // An object or a list as JSON; anything else as it came, so that
        // the replay sends the same bytes (a JSON string keeps its quotes).
        response.body = Some(
            serde_json::from_str::<Value>(text)
                .ok()
                .filter(|v| v.is_object() || v.is_array())
                .unwrap_or_else(|| Value::String(text.into())),
        );
        self.reel.write(self.exchange);
    }

    /// Writes the exchange: `content_type` as the provider said it,
    /// `usage` if it reported one, `complete` unless the answer broke off.
    pub(crate) fn finish(
        mut self,
        content_type: Option<String>,
        usage: Option<Usage>,
        complete: bool,
    ) {
        let response = &mut self.exchange.response;
        response.content_type = content_type;
        response.complete = complete;
        if response.events.is_empty() {
            let text = String::from_utf8_lossy(&self.whole).into_owned();
            response.body = Some(serde_json::from_str(&text).unwrap_or(Value::String(text)));
        }
        self.exchange.usage = usage.filter(|u| u.total() > 0);
        self.reel.write(self.exchange);
    }
}

/// A replayed cassette's exchanges.
struct Recorded {
    path: PathBuf,
    existed: bool,
    entries: Vec<Entry>,
}

struct Entry {
    turn: u32,
    /// `None`: a hand-written exchange that answers by `path` and
    /// `contains`.
    key: Option<String>,
    path: String,
    contains: Vec<String>,
    /// The normalised request, pretty, for a miss's diff.
    pretty: String,
    response: RecordedResponse,
    usage: Option<Usage>,
    served: bool,
}

impl Recorded {
    /// The cassette `rel` under `dir`, read as hostile (no link followed,
    /// a regular file of at most [`MAX_CASSETTE`]); none there is empty.
    fn load(dir: &Path, rel: &str) -> Result<Self, String> {
        let path = dir.join(rel);
        cassette_dir(dir, "replay from")?;
        let limits = Limits {
            max_size: MAX_CASSETTE,
            what: "a cassette",
        };
        let text = match untrusted::read(dir, rel, limits) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| format!("read cassette {}: it is not UTF-8", path.display()))?,
            Err(e) if e.is_missing() => {
                return Ok(Self {
                    path,
                    existed: false,
                    entries: Vec::new(),
                });
            }
            Err(e) => return Err(format!("read a cassette: {e}")),
        };
        let path = path.as_path();
        let mut paths: Vec<(String, String)> = Vec::new();
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{}:{}", path.display(), n + 1);
            match serde_json::from_str::<CassetteLine>(line) {
                Err(e) => {
                    return Err(format!(
                        "read cassette {at}: {e}\nhelp: each line is a JSON object whose `kind` is `cassette` or `exchange` (see `swarm schema --cassette`)"
                    ));
                }
                Ok(CassetteLine::Cassette(header)) => {
                    if header.version > CASSETTE_VERSION {
                        return Err(format!(
                            "read cassette {at}: it is of version {}, and this swarm reads version {CASSETTE_VERSION}",
                            header.version
                        ));
                    }
                    paths = header.paths.into_iter().collect();
                    paths.sort_by_key(|(_, path)| std::cmp::Reverse(path.len()));
                }
                Ok(CassetteLine::Exchange(exchange)) => {
                    // A cassette may hold answers and the provider's
                    // refusals of a request, nothing else a provider says
                    // (a 429 would have the replay wait and ask again, a
                    // 1xx or 3xx is not an answer at all).
                    let status = exchange.response.status;
                    if !exchange.response.is_success() && !refuses_the_request(status) {
                        return Err(format!(
                            "read cassette {at}: status {status} is not one a cassette may hold\nhelp: an exchange's `status` is a success (2xx) or the provider's refusal of the request itself (a 4xx other than 401, 402, 403, 408, 409 and 429)"
                        ));
                    }
                    let request = exchange.request;
                    let (key, pretty_text) = match &request.body {
                        Some(body) => {
                            let normalised = normalise(&request.path, body, &paths);
                            (Some(key_of(&normalised)), pretty(&normalised))
                        }
                        None => (
                            None,
                            format!(
                                "{{\n  \"path\": {:?},\n  \"contains\": {:?}\n}}",
                                request.path, request.contains
                            ),
                        ),
                    };
                    entries.push(Entry {
                        turn: match exchange.turn {
                            0 => entries.len() as u32 + 1,
                            n => n,
                        },
                        key,
                        path: request.path,
                        contains: request.contains,
                        pretty: pretty_text,
                        response: exchange.response,
                        usage: exchange.usage,
                        served: false,
                    });
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            existed: true,
            entries,
        })
    }

    /// The recorded request nearest to `pretty` (those not served yet
    /// first) and a short diff from it.
    fn nearest(&self, pretty: &str) -> Option<(u32, String)> {
        let pool: Vec<&Entry> = match self.entries.iter().any(|e| !e.served) {
            true => self.entries.iter().filter(|e| !e.served).collect(),
            false => self.entries.iter().collect(),
        };
        let best = pool.into_iter().max_by(|a, b| {
            let ra = similar::TextDiff::from_lines(a.pretty.as_str(), pretty).ratio();
            let rb = similar::TextDiff::from_lines(b.pretty.as_str(), pretty).ratio();
            ra.total_cmp(&rb)
        })?;
        Some((best.turn, short_diff(&best.pretty, pretty)))
    }
}

/// The changed lines between `recorded` and `asked` (`-` recorded, `+`
/// asked), at most 16 of them, each cut to a readable length around where
/// it first differs from the line it replaces.
fn short_diff(recorded: &str, asked: &str) -> String {
    const LINES: usize = 16;
    const WIDTH: usize = 160;
    let diff = similar::TextDiff::from_lines(recorded, asked);
    let changes: Vec<(char, &str)> = diff
        .iter_all_changes()
        .filter_map(|c| match c.tag() {
            similar::ChangeTag::Equal => None,
            similar::ChangeTag::Delete => Some(('-', c.value().trim())),
            similar::ChangeTag::Insert => Some(('+', c.value().trim())),
        })
        .collect();
    // Where a removed line and the added one after it part: both are
    // shown from a little before it.
    let parting = |i: usize| -> usize {
        let (sign, line) = changes[i];
        let other = match sign {
            '-' => changes.get(i + 1).filter(|(s, _)| *s == '+'),
            _ => i
                .checked_sub(1)
                .and_then(|j| changes.get(j))
                .filter(|(s, _)| *s == '-'),
        };
        other.map_or(0, |(_, o)| {
            line.chars()
                .zip(o.chars())
                .take_while(|(a, b)| a == b)
                .count()
                .saturating_sub(WIDTH / 4)
        })
    };
    let mut out = Vec::new();
    let mut more = 0;
    for (i, &(sign, line)) in changes.iter().enumerate() {
        if out.len() == LINES {
            more += 1;
            continue;
        }
        let from = parting(i);
        let cut: String = line.chars().skip(from).take(WIDTH).collect();
        let before = if from > 0 { "…" } else { "" };
        let after = if from + cut.chars().count() < line.chars().count() {
            "…"
        } else {
            ""
        };
        out.push(format!("  {sign} {before}{cut}{after}"));
    }
    if more > 0 {
        out.push(format!("  ({more} more changed lines)"));
    }
    out.join("\n")
}

/// Fields that differ between two runs of the same request: ids the
/// caller makes up, markers of the provider's prompt cache, and the output
/// limit (the gateway lowers it to what the budgets have left).
const VOLATILE: &[&str] = &[
    "metadata",
    // Codex's per-turn ids and timings.
    "client_metadata",
    "user",
    "cache_control",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "max_tokens",
    "max_output_tokens",
    "max_completion_tokens",
];

static UUID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}").ok()
});

/// What agent CLIs write into their own tool results that differs from
/// run to run: Codex's chunk ids and wall times.
static TOOL_NOISE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(Chunk ID: )[0-9a-fA-F]+|(Wall time: )[0-9.]+ seconds").ok());

static TIME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
        .ok()
});

/// The request as its key sees it: `{"path", "body"}`, the body without
/// [`VOLATILE`] fields and with the run's paths, ids, timestamps and the
/// [`TOOL_NOISE`] of agent CLIs replaced by placeholders; objects with their
/// keys in order.
fn normalise(path: &str, body: &Value, paths: &[(String, String)]) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("body".into(), clean(body, paths));
    out.insert("path".into(), Value::String(path.to_string()));
    Value::Object(out)
}

fn clean(value: &Value, paths: &[(String, String)]) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|k| !VOLATILE.contains(&k.as_str()))
                .collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), clean(&map[k], paths));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| clean(v, paths)).collect()),
        Value::String(s) => Value::String(clean_text(s, paths)),
        other => other.clone(),
    }
}

fn clean_text(text: &str, paths: &[(String, String)]) -> String {
    let mut text = paths
        .iter()
        .fold(text.to_string(), |t, (placeholder, path)| {
            t.replace(path.as_str(), placeholder)
        });
    if let Some(uuid) = UUID.as_ref() {
        text = uuid.replace_all(&text, "<uuid>").into_owned();
    }
    if let Some(time) = TIME.as_ref() {
        text = time.replace_all(&text, "<time>").into_owned();
    }
    if let Some(noise) = TOOL_NOISE.as_ref() {
        text = noise.replace_all(&text, "${1}${2}<volatile>").into_owned();
    }
    text
}

/// Canonical JSON: objects with their keys in order whatever the map type.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn key_of(normalised: &Value) -> String {
    let mut text = String::new();
    canonical(normalised, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn pretty(normalised: &Value) -> String {
    serde_json::to_string_pretty(normalised).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(worktree: &str) -> Vec<(String, String)> {
        vec![("<worktree>".into(), worktree.into())]
    }

    /// `text` with the temporary directory `dir` written `[TMP]`, the same
    /// on every run.
    fn pinned(text: &str, dir: &Path) -> String {
        text.replace(dir.to_str().unwrap(), "[TMP]")
    }

    #[test]
    fn the_key_ignores_order_ids_dates_paths_and_limits() {
        let a = json!({"model": "m", "max_tokens": 100, "metadata": {"user_id": "u1"},
            "system": [{"type": "text", "text": "cwd /tmp/r1/wt/a, today 2026-11-25", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "session 3f2b8a3c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"}]});
        let b = json!({"messages": [{"content": "session 00000000-1111-2222-3333-444444444444", "role": "user"}],
            "system": [{"text": "cwd /var/r2/wt/a, today 2027-01-02", "type": "text"}],
            "max_tokens": 7, "model": "m", "metadata": {"user_id": "u2"}});
        let ka = key_of(&normalise("/v1/messages", &a, &paths("/tmp/r1/wt/a")));
        let kb = key_of(&normalise("/v1/messages", &b, &paths("/var/r2/wt/a")));
        assert_eq!(ka, kb);
        // Codex's own noise in a tool result.
        let noisy = |id: &str, secs: &str| {
            json!({"input": [{"type": "function_call_output",
                "output": format!("Chunk ID: {id}\nWall time: {secs} seconds\nOutput:\n42\n")}]})
        };
        assert_eq!(
            key_of(&normalise("/v1/responses", &noisy("e6efbe", "0.0000"), &[])),
            key_of(&normalise("/v1/responses", &noisy("dfbedd", "1.2500"), &[]))
        );
        let c = json!({"model": "m", "messages": [{"role": "user", "content": "another"}]});
        assert_ne!(ka, key_of(&normalise("/v1/messages", &c, &[])));
        assert_ne!(
            key_of(&normalise("/v1/messages", &c, &[])),
            key_of(&normalise("/v1/responses", &c, &[]))
        );
    }

    #[test]
    fn a_miss_names_the_turn_and_shows_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TapeSettings {
            record: Some(dir.path().to_path_buf()),
            ..TapeSettings::default()
        };
        let id = ReelId::Attempt {
            task: "a/b".into(),
            attempt: 1,
        };
        let tape = Tape::new(settings, vec![Secret::new("sk-secret")]);
        let reel = tape.reel(id.clone(), Vec::new()).unwrap();
        let asked = json!({"messages": [{"role": "user", "content": "add a test, key sk-secret"}]});
        let mut rec = reel
            .recorder(reel.next_turn(), "/v1/messages", &asked)
            .unwrap();
        rec.chunk(b"event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: message_stop\ndata: {\"type\":\"mes", true);
        rec.chunk(b"sage_stop\"}\n\n", true);
        rec.finish(Some("text/event-stream".into()), None, true);
        let file = dir.path().join("tasks/a+b/1.jsonl");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("sk-secret"), "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");

        let replaying = Tape::new(
            TapeSettings {
                replay: Some(dir.path().to_path_buf()),
                ..TapeSettings::default()
            },
            Vec::new(),
        );
        let reel = replaying.reel(id.clone(), Vec::new()).unwrap();
        // The recorded request, as the file has it (the key scrubbed).
        let recorded =
            json!({"messages": [{"role": "user", "content": "add a test, key [redacted]"}]});
        let Lookup::Served(answer) = reel.lookup(1, "/v1/messages", &recorded) else {
            panic!("not served")
        };
        assert_eq!(answer.events.len(), 2);
        assert_eq!(answer.events[1].data, json!({"type": "message_stop"}));
        // Served once: the same request again is a miss.
        let changed = json!({"messages": [{"role": "user", "content": "add two tests"}]});
        let Lookup::Miss(why) = reel.lookup(2, "/v1/messages", &changed) else {
            panic!("served")
        };
        insta::assert_snapshot!(pinned(&why, dir.path()), @r#"
        replay: no recorded answer for task `a/b`, attempt 1, turn 2 (/v1/messages): cassette [TMP]/tasks/a+b/1.jsonl has no request like it; the nearest recorded one (turn 1) differs:
          - "content": "add a test, key [redacted]",
          + "content": "add two tests",
        help: record the run again with --record, or add --replay-fallthrough to ask the provider what was not recorded
        "#);
    }

    #[test]
    fn a_broken_line_is_named_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("planner.jsonl");
        std::fs::write(
            &file,
            "{\"kind\":\"cassette\",\"version\":1,\"name\":\"x\"}\n{\"kind\":\"exchange\"}\n",
        )
        .unwrap();
        let tape = Tape::new(
            TapeSettings {
                replay: Some(dir.path().to_path_buf()),
                ..TapeSettings::default()
            },
            Vec::new(),
        );
        let err = tape.reel(ReelId::Planner, Vec::new()).unwrap_err();
        insta::assert_snapshot!(pinned(&err, dir.path()), @"
        read cassette [TMP]/planner.jsonl:2: missing field `request`
        help: each line is a JSON object whose `kind` is `cassette` or `exchange` (see `swarm schema --cassette`)
        ");
    }

    fn attempt() -> ReelId {
        ReelId::Attempt {
            task: "a".into(),
            attempt: 1,
        }
    }

    fn recording(dir: &Path) -> Tape {
        Tape::new(
            TapeSettings {
                record: Some(dir.to_path_buf()),
                ..TapeSettings::default()
            },
            Vec::new(),
        )
    }

    fn replaying(dir: &Path) -> Tape {
        Tape::new(
            TapeSettings {
                replay: Some(dir.to_path_buf()),
                ..TapeSettings::default()
            },
            Vec::new(),
        )
    }

    /// A cloned repository's cassette directory with links in it: a
    /// recording never writes through one (a prompt line appended to a
    /// `.bashrc` would run when it is sourced).
    #[test]
    fn recording_never_writes_through_a_link() {
        let home = tempfile::tempdir().unwrap();
        let bashrc = home.path().join(".bashrc");
        std::fs::write(&bashrc, "# mine\n").unwrap();
        let repo = tempfile::tempdir().unwrap();
        let cassettes = repo.path().join("cassettes");
        std::fs::create_dir_all(cassettes.join("tasks/a")).unwrap();
        std::os::unix::fs::symlink(&bashrc, cassettes.join("tasks/a/1.jsonl")).unwrap();
        let e = recording(&cassettes)
            .reel(attempt(), Vec::new())
            .unwrap_err();
        insta::assert_snapshot!(pinned(&e, repo.path()), @"record to a cassette: [TMP]/cassettes/tasks/a/1.jsonl is a symbolic link; swarm does not follow links where it reads or writes files it did not make");
        // A linked directory on the way.
        std::fs::remove_dir_all(cassettes.join("tasks")).unwrap();
        std::os::unix::fs::symlink(home.path(), cassettes.join("tasks")).unwrap();
        let e = recording(&cassettes)
            .reel(attempt(), Vec::new())
            .unwrap_err();
        insta::assert_snapshot!(pinned(&e, repo.path()), @"record to a cassette: [TMP]/cassettes/tasks is a symbolic link; swarm does not follow links where it reads or writes files it did not make");
        // A hard link to the file.
        std::fs::remove_file(cassettes.join("tasks")).unwrap();
        std::fs::create_dir_all(cassettes.join("tasks/a")).unwrap();
        std::fs::hard_link(&bashrc, cassettes.join("tasks/a/1.jsonl")).unwrap();
        let e = recording(&cassettes)
            .reel(attempt(), Vec::new())
            .unwrap_err();
        insta::assert_snapshot!(pinned(&e, repo.path()), @"record to a cassette: [TMP]/cassettes/tasks/a/1.jsonl has other names (hard links); swarm does not write to such a file");
        // The directory named is itself a link.
        let linked = repo.path().join("linked");
        std::os::unix::fs::symlink(home.path(), &linked).unwrap();
        let e = recording(&linked)
            .reel(ReelId::Planner, Vec::new())
            .unwrap_err();
        insta::assert_snapshot!(pinned(&e, repo.path()), @"record to [TMP]/linked: it is a symbolic link; swarm does not follow links in a cassette directory (name the directory it points to if you mean it)");
        assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), "# mine\n");
        assert!(!home.path().join("planner.jsonl").exists());
        // A plain directory records.
        let plain = repo.path().join("plain");
        assert!(recording(&plain).reel(attempt(), Vec::new()).is_ok());
        assert!(plain.join("tasks/a/1.jsonl").is_file());
    }

    /// A cassette holds answers and refusals of a request (a 400), not a
    /// provider's other statuses: a 429 or a 302 in one is refused, named
    /// by its line.
    #[test]
    fn a_cassette_holds_answers_and_refusals_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tasks/a")).unwrap();
        let line = |status: u16| {
            format!(
                "{{\"kind\": \"exchange\", \"request\": {{\"path\": \"/v1/messages\", \"contains\": []}}, \"response\": {{\"status\": {status}, \"body\": {{}}}}}}\n"
            )
        };
        let mut refused = Vec::new();
        for (status, ok) in [
            (200, true),
            (400, true),
            (413, true),
            (402, false),
            (429, false),
            (302, false),
            (101, false),
            (500, false),
        ] {
            std::fs::write(dir.path().join("tasks/a/1.jsonl"), line(status)).unwrap();
            let reel = replaying(dir.path()).reel(attempt(), Vec::new());
            match ok {
                true => assert!(reel.is_ok(), "{status}"),
                false => refused.push(pinned(&reel.unwrap_err(), dir.path())),
            }
        }
        insta::assert_snapshot!(refused.join("\n"), @"
        read cassette [TMP]/tasks/a/1.jsonl:1: status 402 is not one a cassette may hold
        help: an exchange's `status` is a success (2xx) or the provider's refusal of the request itself (a 4xx other than 401, 402, 403, 408, 409 and 429)
        read cassette [TMP]/tasks/a/1.jsonl:1: status 429 is not one a cassette may hold
        help: an exchange's `status` is a success (2xx) or the provider's refusal of the request itself (a 4xx other than 401, 402, 403, 408, 409 and 429)
        read cassette [TMP]/tasks/a/1.jsonl:1: status 302 is not one a cassette may hold
        help: an exchange's `status` is a success (2xx) or the provider's refusal of the request itself (a 4xx other than 401, 402, 403, 408, 409 and 429)
        read cassette [TMP]/tasks/a/1.jsonl:1: status 101 is not one a cassette may hold
        help: an exchange's `status` is a success (2xx) or the provider's refusal of the request itself (a 4xx other than 401, 402, 403, 408, 409 and 429)
        read cassette [TMP]/tasks/a/1.jsonl:1: status 500 is not one a cassette may hold
        help: an exchange's `status` is a success (2xx) or the provider's refusal of the request itself (a 4xx other than 401, 402, 403, 408, 409 and 429)
        ");
    }

    /// A refusal is kept as it came, so that its replay sends the same
    /// bytes: a JSON object as JSON, anything else (a JSON string with its
    /// quotes, plain text) as text, at most 64 KiB of it.
    #[test]
    fn a_refusal_is_kept_as_it_came() {
        let dir = tempfile::tempdir().unwrap();
        let reel = recording(dir.path()).reel(attempt(), Vec::new()).unwrap();
        let big = "x".repeat(MAX_REFUSAL + 10);
        for text in [
            "\"quoted\"",
            "not json",
            "{\"error\": {\"message\": \"too big\"}}",
            big.as_str(),
        ] {
            let recorder = reel
                .recorder(1, "/v1/messages", &serde_json::json!({}))
                .unwrap();
            recorder.refusal(400, Some("text/plain".into()), text);
        }
        let written = std::fs::read_to_string(dir.path().join("tasks/a/1.jsonl")).unwrap();
        let served: Vec<Vec<u8>> = written
            .lines()
            .filter_map(|l| match serde_json::from_str::<CassetteLine>(l) {
                Ok(CassetteLine::Exchange(e)) => {
                    assert_eq!(e.response.status, 400);
                    Some(e.response.wire())
                }
                _ => None,
            })
            .collect();
        assert_eq!(served[0], b"\"quoted\"");
        assert_eq!(served[1], b"not json");
        assert_eq!(
            serde_json::from_slice::<Value>(&served[2]).unwrap()["error"]["message"],
            "too big"
        );
        assert_eq!(served[3].len(), MAX_REFUSAL);
    }

    /// Replaying reads a regular file of bounded size, never through a
    /// link: not `/dev/zero`, not a FIFO, not a host file.
    #[test]
    fn replaying_reads_only_a_bounded_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tasks/a")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("tasks/a/1.jsonl")).unwrap();
        let e = replaying(dir.path())
            .reel(attempt(), Vec::new())
            .unwrap_err();
        insta::assert_snapshot!(pinned(&e, dir.path()), @"read a cassette: [TMP]/tasks/a/1.jsonl is a symbolic link; swarm does not follow links where it reads or writes files it did not make");
        std::fs::remove_file(dir.path().join("tasks/a/1.jsonl")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("tasks/a/1.jsonl"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let e = replaying(dir.path())
            .reel(attempt(), Vec::new())
            .unwrap_err();
        insta::assert_snapshot!(pinned(&e, dir.path()), @"read a cassette: [TMP]/tasks/a/1.jsonl is not a regular file (it is a named pipe)");
        std::fs::remove_file(dir.path().join("tasks/a/1.jsonl")).unwrap();
        let big = std::fs::File::create(dir.path().join("tasks/a/1.jsonl")).unwrap();
        big.set_len(MAX_CASSETTE + 1).unwrap();
        let e = replaying(dir.path())
            .reel(attempt(), Vec::new())
            .unwrap_err();
        insta::assert_snapshot!(pinned(&e, dir.path()), @"read a cassette: [TMP]/tasks/a/1.jsonl is 64.0 MiB, more than the 64 MiB a cassette may be");
        // Nothing recorded for it: an empty cassette, as before.
        assert!(
            replaying(dir.path())
                .reel(ReelId::Replanner, Vec::new())
                .is_ok()
        );
    }
}
