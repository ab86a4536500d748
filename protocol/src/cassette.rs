//! The cassette format: the model traffic of one task attempt (or of the
//! planner, or the replanner) as `swarm run --record DIR` writes it and
//! `swarm run --replay DIR` serves it back, one JSON object per line.
//!
//! The first line may be a [`Header`]; every other line is an
//! [`Exchange`]: a request as it went to the provider (credentials are
//! headers and are never recorded) and the provider's answer, event by
//! event for a stream. The format is meant to be written by hand too (for
//! tests): everything but `request` and `response` may be left out, and
//! the `key` is computed again when a cassette is read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent::Usage;

/// Version of the cassette format; readers refuse versions they do not know.
pub const CASSETTE_VERSION: u32 = 1;

/// The JSON schema of one cassette line, pretty-printed, as committed in
/// `cassette.schema.json`.
pub fn cassette_schema() -> String {
    let schema = schemars::schema_for!(CassetteLine);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// One line of a cassette.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CassetteLine {
    /// What the cassette is of; the first line, if there is one.
    Cassette(Header),
    /// One model call and its answer.
    Exchange(Box<Exchange>),
}

/// What a cassette records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`CASSETTE_VERSION`] when it was written.
    pub version: u32,
    /// Whose calls these are: `task `a`, attempt 1`, `the planner`.
    pub name: String,
    /// The paths of the recorded run that requests may quote (the task's
    /// worktree, its private tmp, the run's directory), by the placeholder
    /// they become in a request's key (`<worktree>`): a replay in another
    /// place matches them with its own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub paths: BTreeMap<String, String>,
}

/// One model call as it went to the provider, and the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// The call's number in the cassette, from 1 (informational).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub turn: u32,
    /// The hash of the normalised request (informational: computed again
    /// when the cassette is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub request: RecordedRequest,
    pub response: RecordedResponse,
    /// The tokens the answer cost, as the provider reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A request as sent upstream, without its headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordedRequest {
    /// The URL's path (`/v1/messages`, `/v1/chat/completions`).
    pub path: String,
    /// The JSON body, as recorded. A hand-written exchange may leave it
    /// out: it then answers the first request to `path` not answered yet
    /// that holds every string of `contains`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Without `body`: strings the request's JSON must hold (a prompt, a
    /// tool's name) for this exchange to answer it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contains: Vec<String>,
}

/// The provider's answer: a stream's events, or a whole JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordedResponse {
    /// A success (2xx), or the provider's refusal of the request itself (a
    /// 4xx other than 401, 402, 403, 408, 409 and 429: a request too large for
    /// the context, a bad parameter), which the same request gets again.
    /// Failed attempts (5xx, 429, timeouts, broken connections) are the
    /// provider's weather, and a refused key is about the key, not the
    /// request: neither is recorded.
    #[serde(default = "ok")]
    pub status: u16,
    /// `text/event-stream` when `events` holds the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// A streamed answer, event by event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<SseEvent>,
    /// A whole answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// `false` when the stream broke before its end.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub complete: bool,
}

fn ok() -> u16 {
    200
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SseEvent {
    /// Milliseconds after the request was sent.
    #[serde(default)]
    pub at_ms: u64,
    /// The `event:` field; empty when the server sent none (OpenAI).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event: String,
    /// The `data:` field: JSON, or a string sent as it is (`[DONE]`).
    pub data: Value,
}

impl SseEvent {
    /// The `data:` field as it goes on the wire.
    pub fn data_text(&self) -> String {
        match &self.data {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

impl RecordedResponse {
    /// Whether it is an answer (2xx), not a recorded refusal.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The answer's bytes as the provider sent them (a stream's events
    /// in SSE framing).
    pub fn wire(&self) -> Vec<u8> {
        if self.events.is_empty() {
            return match &self.body {
                // A body that was not JSON, as it came.
                Some(Value::String(text)) => text.clone().into_bytes(),
                Some(body) => body.to_string().into_bytes(),
                None => Vec::new(),
            };
        }
        let mut out = String::new();
        for e in &self.events {
            if !e.event.is_empty() {
                out.push_str("event: ");
                out.push_str(&e.event);
                out.push('\n');
            }
            for line in e.data_text().split('\n') {
                out.push_str("data: ");
                out.push_str(line);
                out.push('\n');
            }
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Whether the answer is a stream.
    pub fn is_stream(&self) -> bool {
        !self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_written_line_needs_only_the_request_and_the_answer() {
        let line = r#"{"kind":"exchange","request":{"path":"/v1/messages","body":{"messages":[]}},
            "response":{"events":[{"event":"message_stop","data":{"type":"message_stop"}},{"data":"[DONE]"}]}}"#;
        let CassetteLine::Exchange(e) = serde_json::from_str(&line.replace('\n', "")).unwrap()
        else {
            panic!("not an exchange")
        };
        assert_eq!(e.response.status, 200);
        assert!(e.response.complete);
        let wire = String::from_utf8(e.response.wire()).unwrap();
        assert_eq!(
            wire,
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\ndata: [DONE]\n\n"
        );
    }
}
