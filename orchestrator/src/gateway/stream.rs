//! What every provider's answer is made of, and the one fold that builds
//! it. A provider only translates its wire format into [`StreamEvent`]s
//! (text for a part, a tool call's start and argument pieces, usage, the
//! stop reason, the end); [`Assembler::apply`] folds them into an
//! [`Answer`] the same way for all providers: text joined per part,
//! tool-call arguments joined across pieces and parsed once at the end,
//! parts kept in the order they first appeared.

use std::time::Duration;

use serde_json::Value;
use swarm_protocol::agent::{Block, InvalidInput, StopReason, Usage};

/// How an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// The provider said to slow down (429, 529, an overloaded error): wait
    /// and try again, without counting it against `retries`.
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Worth another try: a 5xx, a broken, cut or silent stream or answer.
    Transient {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Trying again would not help (a 4xx such as a bad key or request).
    Fatal { message: String },
    /// The provider refused the request itself ([`refuses_the_request`]):
    /// the same request is refused again, so the refusal is its answer
    /// (recorded, and given to an agent CLI as its own mistake).
    Refused { message: String },
    /// A replayed run's cassette has no answer to the request.
    NotRecorded { message: String },
    /// A budget the coordinator keeps refused it (a cluster's relay,
    /// which counts every node's calls against the run's budgets).
    Budget { message: String },
}

/// Whether HTTP `status` is the provider's verdict on the request itself
/// (a 4xx other than 401, 402 and 403, about the key and the account, and
/// 408, 409 and 429, about the moment): a request too large for the
/// context, a bad parameter. Asked again, the same request gets the same
/// answer.
pub(crate) fn refuses_the_request(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 402 | 403 | 408 | 409 | 429)
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

/// Where a piece of an answer belongs: wire protocols either number all
/// content blocks (Anthropic), or have one text and numbered tool calls
/// (OpenAI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Block(u64),
    Text,
    Tool(u64),
}

/// One provider-neutral piece of an answer, as a provider decodes it from
/// an SSE event or a whole JSON response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StreamEvent {
    /// Text for the part at `slot`. The first event of a slot starts its
    /// part even when the text is empty, so parts keep the order in which
    /// the model began them.
    Text { slot: Slot, text: String },
    /// A tool call starts at `slot`. A later event for the same slot may
    /// repeat its id or name (OpenAI), which only fills in what is missing;
    /// a different id there starts another call (servers that leave out
    /// the index put every call at 0).
    ToolStart {
        slot: Slot,
        id: Option<String>,
        name: Option<String>,
    },
    /// A piece of the JSON text of the arguments of the tool call at `slot`.
    ToolArgs { slot: Slot, piece: String },
    /// Token usage so far, cached input counted as input (and said apart
    /// in `cache_read` and `cache_write`); `None` keeps what an earlier
    /// event reported.
    Usage {
        input: Option<u64>,
        output: Option<u64>,
        cache_read: Option<u64>,
        cache_write: Option<u64>,
    },
    /// Why the model stopped.
    Stop(StopReason),
    /// The stream's end marker: the answer is complete.
    Done,
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

/// Builds an [`Answer`] from [`StreamEvent`]s, in the order parts first
/// appear.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    parts: Vec<(Slot, Part)>,
    stop: Option<StopReason>,
    usage: Usage,
    /// The stream said it is complete.
    done: bool,
}

impl Assembler {
    /// Folds one event into the answer, handing non-empty text to
    /// `on_text` as well: the only way into an answer, whichever provider
    /// decoded the event.
    pub fn apply(&mut self, event: StreamEvent, on_text: &mut (dyn FnMut(&str) + Send)) {
        match event {
            StreamEvent::Text { slot, text } => {
                self.text(slot, &text);
                if !text.is_empty() {
                    on_text(&text);
                }
            }
            StreamEvent::ToolStart { slot, id, name } => {
                self.tool(slot, id.as_deref(), name.as_deref());
            }
            StreamEvent::ToolArgs { slot, piece } => self.tool_args(slot, &piece),
            StreamEvent::Usage {
                input,
                output,
                cache_read,
                cache_write,
            } => {
                if let Some(input) = input {
                    self.usage.input_tokens = input;
                }
                if let Some(output) = output {
                    self.usage.output_tokens = output;
                }
                if let Some(read) = cache_read {
                    self.usage.cache_read_tokens = read;
                }
                if let Some(write) = cache_write {
                    self.usage.cache_write_tokens = write;
                }
            }
            StreamEvent::Stop(reason) => self.stop = Some(reason),
            StreamEvent::Done => self.done = true,
        }
    }

    /// [`Assembler::apply`] for each of `events` in order.
    pub fn apply_all(
        &mut self,
        events: impl IntoIterator<Item = StreamEvent>,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) {
        for event in events {
            self.apply(event, on_text);
        }
    }

    /// Whether the answer is whole: the stream sent its end marker, or
    /// `stop_ends` (the provider's servers may end right after the stop
    /// reason, without the marker) and a stop reason came.
    pub fn is_whole(&self, stop_ends: bool) -> bool {
        self.done || (stop_ends && self.stop.is_some())
    }

    fn part(&mut self, slot: Slot) -> Option<&mut Part> {
        self.parts
            .iter_mut()
            .find(|(s, _)| *s == slot)
            .map(|(_, p)| p)
    }

    fn text(&mut self, slot: Slot, text: &str) {
        match self.part(slot) {
            Some(Part::Text(t)) => t.push_str(text),
            Some(Part::Tool { .. }) => {}
            None => self.parts.push((slot, Part::Text(text.to_string()))),
        }
    }

    /// See [`StreamEvent::ToolStart`].
    fn tool(&mut self, slot: Slot, id: Option<&str>, name: Option<&str>) {
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

    fn tool_args(&mut self, slot: Slot, piece: &str) {
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
    fn the_fold_keeps_earlier_usage_and_hands_on_only_visible_text() {
        let mut a = Assembler::default();
        let mut seen = Vec::new();
        let events = [
            StreamEvent::Usage {
                input: Some(12),
                output: Some(1),
                cache_read: None,
                cache_write: None,
            },
            StreamEvent::Text {
                slot: Slot::Block(0),
                text: String::new(),
            },
            StreamEvent::Text {
                slot: Slot::Block(0),
                text: "Hi".into(),
            },
            StreamEvent::Usage {
                input: None,
                output: Some(30),
                cache_read: None,
                cache_write: None,
            },
            StreamEvent::Stop(StopReason::MaxTokens),
        ];
        a.apply_all(events, &mut |t| seen.push(t.to_string()));
        assert_eq!(seen, ["Hi"]);
        assert!(!a.is_whole(false) && a.is_whole(true));
        a.apply(StreamEvent::Done, &mut |_| {});
        assert!(a.is_whole(false));
        let answer = a.finish();
        assert_eq!(
            (answer.usage.input_tokens, answer.usage.output_tokens),
            (12, 30)
        );
        assert_eq!(answer.stop, StopReason::MaxTokens);
        assert_eq!(answer.content, [Block::Text { text: "Hi".into() }]);
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
