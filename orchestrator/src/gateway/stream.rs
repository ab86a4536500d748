//! One HTTP attempt of a model call: send the request, read the SSE stream
//! into a whole answer while forwarding text as it arrives, and say what
//! kind of failure it was when it fails (wait it out, retry, or give up).

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::Value;
use swarm_protocol::agent::{Block, InvalidInput, StopReason, Usage};

use super::{Endpoint, redact};

/// How an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// The provider said to slow down (429, 529, an overloaded error): wait
    /// and try again, without counting it against `retries`.
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Worth another try: a 5xx, a broken, cut or silent stream.
    Transient {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Trying again would not help (a 4xx such as a bad key or request).
    Fatal { message: String },
}

impl Failure {
    pub(crate) fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            retry_after: None,
            message: message.into(),
        }
    }
}

/// The model's whole answer to one call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub content: Vec<Block>,
    pub stop: StopReason,
    pub usage: Usage,
}

/// Where a streamed piece belongs: Anthropic numbers content blocks;
/// OpenAI has one text and numbered tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Block(u64),
    Text,
    Tool(u64),
}

#[derive(Debug)]
enum Part {
    Text(String),
    Tool {
        id: String,
        name: String,
        args: String,
    },
}

/// Builds an [`Answer`] from stream events, in the order parts first
/// appear.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    parts: Vec<(Slot, Part)>,
    pub stop: Option<StopReason>,
    pub usage: Usage,
    /// The stream said it is complete.
    pub done: bool,
}

impl Assembler {
    fn part(&mut self, slot: Slot) -> Option<&mut Part> {
        self.parts
            .iter_mut()
            .find(|(s, _)| *s == slot)
            .map(|(_, p)| p)
    }

    pub fn text(&mut self, slot: Slot, text: &str) {
        match self.part(slot) {
            Some(Part::Text(t)) => t.push_str(text),
            Some(Part::Tool { .. }) => {}
            None => self.parts.push((slot, Part::Text(text.to_string()))),
        }
    }

    /// A tool call starts, or (OpenAI) a later delta of it repeats its id
    /// or name, which only fills in what is missing. Servers that leave out
    /// `index` put every call at 0: a new id there starts a new call.
    pub fn tool(&mut self, slot: Slot, id: Option<&str>, name: Option<&str>) {
        let id = id.filter(|i| !i.is_empty());
        match self.part(slot) {
            Some(Part::Tool { id: i, .. }) if id.is_some_and(|new| !i.is_empty() && new != i) => {
                self.parts.push((
                    slot,
                    Part::Tool {
                        id: id.unwrap_or_default().to_string(),
                        name: name.unwrap_or_default().to_string(),
                        args: String::new(),
                    },
                ));
            }
            Some(Part::Tool { id: i, name: n, .. }) => {
                if let Some(id) = id.filter(|_| i.is_empty()) {
                    *i = id.to_string();
                }
                if let Some(name) = name.filter(|_| n.is_empty()) {
                    *n = name.to_string();
                }
            }
            Some(Part::Text(_)) => {}
            None => self.parts.push((
                slot,
                Part::Tool {
                    id: id.unwrap_or_default().to_string(),
                    name: name.unwrap_or_default().to_string(),
                    args: String::new(),
                },
            )),
        }
    }

    pub fn tool_args(&mut self, slot: Slot, piece: &str) {
        if let Some(Part::Tool { args, .. }) = self.part(slot) {
            args.push_str(piece);
        }
    }

    pub fn finish(self) -> Answer {
        let mut content = Vec::new();
        let mut calls = 0;
        for (_, part) in self.parts {
            match part {
                Part::Text(text) if text.is_empty() => {}
                Part::Text(text) => content.push(Block::Text { text }),
                Part::Tool { id, name, args } => {
                    calls += 1;
                    // Some servers leave ids out; every call needs one to be
                    // answered.
                    let id = if id.is_empty() {
                        format!("call_swarm_{calls}")
                    } else {
                        id
                    };
                    let (input, invalid_input) = parse_args(&args);
                    content.push(Block::ToolCall {
                        id,
                        name,
                        input,
                        invalid_input,
                    });
                }
            }
        }
        let stop = match self.stop {
            Some(StopReason::EndTurn) if calls > 0 => StopReason::ToolUse,
            Some(stop) => stop,
            None if calls > 0 => StopReason::ToolUse,
            None => StopReason::EndTurn,
        };
        Answer {
            content,
            stop,
            usage: self.usage,
        }
    }
}

/// Tool-call arguments as an object, or `{}` and why the text was refused.
fn parse_args(raw: &str) -> (Value, Option<InvalidInput>) {
    if raw.trim().is_empty() {
        return (Value::Object(Default::default()), None);
    }
    let refused = |error: String| {
        (
            Value::Object(Default::default()),
            Some(InvalidInput {
                raw: raw.to_string(),
                error,
            }),
        )
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ Value::Object(_)) => (v, None),
        Ok(_) => refused("the arguments are not a JSON object".into()),
        Err(e) => refused(format!("the arguments are not valid JSON: {e}")),
    }
}

/// What a provider's event did to the answer.
pub(crate) enum Step {
    Continue,
    Done,
}

/// Runs one HTTP attempt of a call with request `body`, handing each piece
/// of text to `on_text` as it arrives.
pub(crate) async fn attempt(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    body: &Value,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Answer, Failure> {
    let config = &endpoint.config;
    let key = endpoint.key.as_ref();
    let provider = endpoint.provider;
    let request = provider.request(http, config, key);
    let request = request
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(serde_json::to_vec(body).unwrap_or_default());
    let silent = || {
        Failure::transient(format!(
            "the model sent nothing for {}",
            humantime::format_duration(config.timeout)
        ))
    };
    let response = match tokio::time::timeout(config.timeout, request.send()).await {
        Err(_) => return Err(silent()),
        Ok(Err(e)) => {
            return Err(Failure::transient(redact(
                &format!("reach {}: {}", config.base_url, error_chain(&e)),
                key,
            )));
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if !status.is_success() {
        let retry_after = retry_after(response.headers());
        let text: String = tokio::time::timeout(config.timeout, read_bounded(response))
            .await
            .unwrap_or_default();
        let message = redact(
            &format!("HTTP {}: {}", status.as_u16(), error_message(&text)),
            key,
        );
        return Err(provider.classify(status.as_u16(), &text, retry_after, message));
    }

    let mut events = response.bytes_stream().eventsource();
    let mut answer = Assembler::default();
    loop {
        let event = match tokio::time::timeout(config.timeout, events.next()).await {
            Err(_) => return Err(silent()),
            Ok(None) if answer.done => break,
            Ok(None) if provider.complete_without_end(&answer) => break,
            Ok(None) => {
                return Err(Failure::transient(
                    "the stream ended before the answer was complete",
                ));
            }
            Ok(Some(Err(e))) => {
                return Err(Failure::transient(redact(
                    &format!("the stream broke: {e}"),
                    key,
                )));
            }
            Ok(Some(Ok(event))) => event,
        };
        let step = provider.decode(&mut answer, &event.event, &event.data, on_text)?;
        if let Step::Done = step {
            answer.done = true;
            break;
        }
    }
    Ok(answer.finish())
}

/// Longest wait a provider can ask for; anything beyond is taken as this.
const MAX_RETRY_AFTER: f64 = 3600.0;

/// `retry-after-ms` (OpenAI), or `retry-after` in seconds or as an HTTP
/// date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let seconds = |s: f64| {
        (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER)))
    };
    if let Some(wait) = get("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|ms| seconds(ms / 1000.0))
    {
        return Some(wait);
    }
    let value = get("retry-after")?.trim();
    if let Ok(s) = value.parse::<f64>() {
        return seconds(s);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let wait = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    seconds(wait.as_secs_f64())
}

/// The start of an error response's body (at most 64 KiB are read).
async fn read_bounded(response: reqwest::Response) -> String {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= 64 << 10 {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// The provider's own words from an error body (both providers put them at
/// `error.message`), or the start of the body.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    from_json.unwrap_or_else(|| body.chars().take(300).collect())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_name_is_not_doubled_and_a_new_id_at_the_same_index_is_a_new_call() {
        let mut a = Assembler::default();
        a.tool(Slot::Tool(0), Some("c1"), Some("bash"));
        a.tool(Slot::Tool(0), Some("c1"), Some("bash"));
        a.tool_args(Slot::Tool(0), "{}");
        a.tool(Slot::Tool(0), Some("c2"), Some("list_dir"));
        a.tool_args(Slot::Tool(0), "{\"path\": \".\"}");
        let answer = a.finish();
        let calls: Vec<(&str, &str)> = answer
            .content
            .iter()
            .filter_map(|b| match b {
                Block::ToolCall { id, name, .. } => Some((id.as_str(), name.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(calls, [("c1", "bash"), ("c2", "list_dir")]);
    }

    #[test]
    fn retry_after_takes_seconds_milliseconds_and_dates_and_refuses_nonsense() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert("retry-after-ms", "inf".parse().unwrap());
        h.insert("retry-after", "1e300".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3600)));
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        h.remove("retry-after-ms");
        h.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let wait = retry_after(&h).unwrap();
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }

    #[test]
    fn split_arguments_are_joined_and_bad_ones_are_flagged() {
        let mut a = Assembler::default();
        a.text(Slot::Block(0), "Let me look.");
        a.tool(Slot::Block(1), Some("t1"), Some("read_file"));
        for piece in ["{\"pa", "th\": \"a", ".txt\"}"] {
            a.tool_args(Slot::Block(1), piece);
        }
        a.tool(Slot::Block(2), Some("t2"), Some("bash"));
        a.tool_args(Slot::Block(2), "{\"command\": ");
        let answer = a.finish();
        assert_eq!(answer.stop, StopReason::ToolUse);
        assert_eq!(answer.content.len(), 3);
        match &answer.content[1] {
            Block::ToolCall {
                input,
                invalid_input,
                ..
            } => {
                assert_eq!(input["path"], "a.txt");
                assert!(invalid_input.is_none());
            }
            other => panic!("{other:?}"),
        }
        match &answer.content[2] {
            Block::ToolCall { invalid_input, .. } => {
                let bad = invalid_input.as_ref().map(|b| b.raw.as_str());
                assert_eq!(bad, Some("{\"command\": "));
            }
            other => panic!("{other:?}"),
        }
    }
}
