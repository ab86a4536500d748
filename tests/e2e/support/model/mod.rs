//! A mock model server for end-to-end tests and benchmarks: real HTTP/1.1 on
//! loopback speaking the Anthropic Messages API, the OpenAI Chat
//! Completions API and the OpenAI Responses API, streamed over SSE or answered whole as one JSON
//! response, as each request's `stream` flag asks. A script decides each
//! reply; every
//! request is recorded and checked against the wire protocols' invariants
//! (see `invariants.rs`), so a test can assert both what the client did and
//! that it never sent something a real provider would reject.
//!
//! Self-contained (crates only) because a benchmark example includes it by
//! `#[path]` as well as the e2e tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod anthropic;
pub mod cache;
mod invariants;
mod openai;
mod responses;
mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use server::Shared;

/// Which provider protocol a request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wire {
    Anthropic,
    OpenAi,
    /// OpenAI's Responses API (what Codex speaks).
    Responses,
}

/// What the mock expects of every request.
#[derive(Clone, Debug)]
pub struct Options {
    /// The expected API key; `None` expects no particular authentication.
    pub api_key: Option<String>,
    /// The expected model name.
    pub model: String,
    /// Requests allowed per fixed one-second window; beyond it, 429.
    pub rate_limit: Option<u32>,
    /// The `stream` flag every request must have; `None` accepts either.
    pub stream: Option<bool>,
    /// Bill Anthropic requests' prompts as the provider does with its
    /// prompt cache ([`cache`]): the input tokens of a scripted answer are
    /// then counted from the request, and split into read, written and
    /// neither.
    pub prompt_cache: bool,
}

impl Options {
    /// No key, no rate limit, streamed requests (as agents send them).
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            api_key: None,
            model: model.into(),
            rate_limit: None,
            stream: Some(true),
            prompt_cache: false,
        }
    }
}

/// One tool result in the last user turn of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolResultSeen {
    pub id: String,
    pub content: String,
    pub is_error: bool,
}

/// One request as the script sees it, normalised across both wires.
#[derive(Clone, Debug)]
pub struct Call {
    /// Position in [`MockModel::calls`] (and in violation messages).
    pub index: usize,
    pub wire: Wire,
    /// Whether the request asked for a streamed answer (`"stream": true`).
    pub stream: bool,
    /// The raw JSON body (`Null` if it was not JSON).
    pub body: Value,
    /// Text of the first user message: identifies a task's conversation.
    pub conversation: String,
    /// Number of assistant messages in the request.
    pub turn: usize,
    /// 1-based count of requests so far for (conversation, turn), counting
    /// rate-limited ones: a retry sees 2, 3...
    pub attempt: u32,
    /// Tool results after the last assistant message.
    pub tool_results: Vec<ToolResultSeen>,
    /// Text of the user message(s) after the last assistant message.
    pub last_user_text: String,
    pub system: String,
    /// Names of the tools offered.
    pub tools: Vec<String>,
}

/// One piece of a scripted answer.
#[derive(Clone, Debug)]
pub enum Part {
    Text(String),
    /// `args` is raw JSON text (it may be malformed on purpose), streamed in
    /// `chunks` deltas.
    ToolCall {
        id: String,
        name: String,
        args: String,
        chunks: usize,
    },
}

/// What the mock does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete answer, streamed or whole as the request asked; the stop
    /// reason is tool use if any part is a tool call.
    Answer {
        parts: Vec<Part>,
        input_tokens: u64,
        output_tokens: u64,
    },
    /// An error response; `body` is the message (or, if it is a JSON
    /// object, the whole body verbatim).
    Status {
        code: u16,
        retry_after: Option<u64>,
        body: String,
    },
    /// The first `after_events` SSE events of the answer, then an aborted
    /// connection; to a request that does not stream, the first half of
    /// the JSON answer, then an aborted connection.
    Cut {
        parts: Vec<Part>,
        after_events: usize,
    },
    /// Status and headers, then nothing, forever.
    Hang,
}

impl Reply {
    /// An answer with arbitrary token counts.
    pub fn answer(parts: Vec<Part>) -> Self {
        Self::Answer {
            parts,
            input_tokens: 100,
            output_tokens: 20,
        }
    }

    /// A final text answer.
    pub fn text(s: impl Into<String>) -> Self {
        Self::answer(vec![text(s)])
    }

    /// An error status without retry-after.
    pub fn status(code: u16, message: impl Into<String>) -> Self {
        Self::Status {
            code,
            retry_after: None,
            body: message.into(),
        }
    }

    /// A 429 asking for a retry after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        Self::Status {
            code: 429,
            retry_after: Some(seconds),
            body: "rate limited (scripted)".into(),
        }
    }
}

/// A text part.
pub fn text(s: impl Into<String>) -> Part {
    Part::Text(s.into())
}

/// A tool call with well-formed arguments, streamed in 3 deltas.
pub fn tool(id: impl Into<String>, name: impl Into<String>, args: Value) -> Part {
    tool_raw(id, name, &args.to_string(), 3)
}

/// A tool call with arguments exactly as given (possibly not JSON).
pub fn tool_raw(id: impl Into<String>, name: impl Into<String>, args: &str, chunks: usize) -> Part {
    Part::ToolCall {
        id: id.into(),
        name: name.into(),
        args: args.to_owned(),
        chunks,
    }
}

/// Request counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    /// Answered 200 (answers, cut streams and hangs).
    pub accepted: u64,
    /// Answered 429 by [`Options::rate_limit`] (not by the script).
    pub rate_limited: u64,
    /// Requests that came before an earlier 429's retry-after allowed.
    pub early_retries: u64,
    /// Token counting requests (`/v1/messages/count_tokens`), answered
    /// with an estimate and not logged as calls.
    pub count_tokens: u64,
}

/// The running server; dropping it shuts it down.
pub struct MockModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockModel {
    /// Binds 127.0.0.1 on an ephemeral port and serves from a thread of its
    /// own, so synchronous tests can run the client as a child process.
    pub fn start(
        options: Options,
        script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> Self {
        // Bound here, not in the thread, so the address is usable at once
        // (early connections wait in the backlog).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind mock model");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("mock model address");
        let shared = Arc::new(Shared {
            options,
            script: Box::new(script),
            start: Instant::now(),
            log: Mutex::default(),
        });
        let (tx, rx) = oneshot::channel();
        let served = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("mock-model".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("mock model runtime");
                rt.block_on(server::serve(listener, served, rx));
                // Hanging connections are parked forever; don't wait on them.
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("spawn mock model thread");
        Self {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What a client is configured with: Anthropic clients append
    /// `/v1/messages`, OpenAI clients `/chat/completions`.
    pub fn base_url(&self, wire: Wire) -> String {
        match wire {
            Wire::Anthropic => format!("http://{}", self.addr),
            Wire::OpenAi | Wire::Responses => format!("http://{}/v1", self.addr),
        }
    }

    /// Every request in arrival order, including those answered with errors.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.log().calls.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.log().violations.clone()
    }

    #[track_caller]
    pub fn assert_clean(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "mock model saw {} protocol violation(s):\n  {}",
            violations.len(),
            violations.join("\n  ")
        );
    }

    pub fn stats(&self) -> Stats {
        self.shared.log().stats
    }
}

impl Drop for MockModel {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn blank_call(wire: Wire) -> Call {
    Call {
        index: 0,
        wire,
        stream: false,
        body: Value::Null,
        conversation: String::new(),
        turn: 0,
        attempt: 0,
        tool_results: Vec::new(),
        last_user_text: String::new(),
        system: String::new(),
        tools: Vec::new(),
    }
}

/// Text of a message content: a string, or the text blocks (parts) of an
/// array, one per line.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// `s` in `n` pieces of about equal length (at least one, never splitting a
/// character), as a provider streams it.
fn split(s: &str, n: usize) -> Vec<&str> {
    let count = s.chars().count();
    let n = n.clamp(1, count.max(1));
    let offset = |k: usize| {
        s.char_indices()
            .nth(k * count / n)
            .map_or(s.len(), |(i, _)| i)
    };
    (0..n).map(|k| &s[offset(k)..offset(k + 1)]).collect()
}
