//! An answer read on its way past (the door's, the relay's): each SSE
//! event or the whole JSON response folded into an [`Answer`], for the
//! usage the budgets settle and what the live view is told, while the
//! bytes go on to the caller unchanged.

use serde_json::Value;
use swarm_protocol::agent::{Block, StopReason, Usage};

use super::stream::{Answer, Assembler};

/// Reads an answer as it passes: the provider's decoder and the shared
/// fold for Messages; the Responses API's own events for Responses.
pub(crate) struct Reader {
    /// The OpenAI Responses API's events, not the provider's own.
    responses: bool,
    provider: &'static dyn super::provider::Provider,
    fold: Assembler,
    /// Responses: the final `response` object.
    response: Option<Value>,
    seen: bool,
    /// A whole (not streamed) answer was read.
    read_whole: bool,
}

impl Reader {
    pub(crate) fn new(responses: bool, provider: &'static dyn super::provider::Provider) -> Self {
        Self {
            responses,
            provider,
            fold: Assembler::default(),
            response: None,
            seen: false,
            read_whole: false,
        }
    }

    pub(crate) fn event(&mut self, event: &str, data: &str) {
        self.seen = true;
        match self.responses {
            true => {
                let Ok(value) = serde_json::from_str::<Value>(data) else {
                    return;
                };
                let kind = value.get("type").and_then(Value::as_str).unwrap_or(event);
                if matches!(
                    kind,
                    "response.completed" | "response.incomplete" | "response.failed"
                ) && let Some(response) = value.get("response")
                {
                    self.response = Some(response.clone());
                }
            }
            false => {
                if let Ok(events) = self.provider.decode(event, data) {
                    for e in events {
                        self.fold.apply(e, &mut |_| {});
                    }
                }
            }
        }
    }

    pub(crate) fn whole(&mut self, value: &Value) {
        self.seen = true;
        self.read_whole = true;
        match self.responses {
            true => self.response = Some(value.clone()),
            false => {
                if let Ok(events) = self.provider.decode_whole(value) {
                    for e in events {
                        self.fold.apply(e, &mut |_| {});
                    }
                }
            }
        }
    }

    /// Whether what was read is the whole answer: a whole response, the
    /// Responses API's final `response`, or a stream the fold saw end (its
    /// end marker, or the stop where the provider's streams end there).
    pub(crate) fn complete(&self) -> bool {
        match self.responses {
            true => self.response.is_some(),
            false => self.read_whole || self.fold.is_whole(self.provider.stop_ends_stream()),
        }
    }

    pub(crate) fn finish(self) -> Option<Answer> {
        if !self.seen {
            return None;
        }
        match self.responses {
            true => Some(responses_answer(self.response.as_ref())),
            false => Some(self.fold.finish()),
        }
    }
}

/// A Responses API `response` object as an answer: its text, its tool
/// calls, its usage (cached input is part of `input_tokens` there).
fn responses_answer(response: Option<&Value>) -> Answer {
    let mut content = Vec::new();
    let mut usage = Usage::default();
    let mut stop = StopReason::EndTurn;
    if let Some(response) = response {
        for item in response
            .get("output")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match item.get("type").and_then(Value::as_str) {
                Some("message") => {
                    let text: String = item
                        .get("content")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c.get("text").and_then(Value::as_str))
                        .collect();
                    if !text.is_empty() {
                        content.push(Block::Text { text });
                    }
                }
                Some(kind @ ("function_call" | "custom_tool_call" | "local_shell_call")) => {
                    stop = StopReason::ToolUse;
                    let name = item
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or(kind)
                        .to_string();
                    let input = item
                        .get("arguments")
                        .and_then(Value::as_str)
                        .and_then(|a| serde_json::from_str(a).ok())
                        .or_else(|| item.get("input").cloned())
                        .or_else(|| item.get("action").cloned())
                        .unwrap_or(Value::Null);
                    content.push(Block::ToolCall {
                        id: item
                            .get("call_id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        name,
                        input,
                        invalid_input: None,
                    });
                }
                _ => {}
            }
        }
        if let Some(u) = response.get("usage") {
            usage.input_tokens = u.get("input_tokens").and_then(Value::as_u64).unwrap_or(0);
            usage.cache_read_tokens = u
                .pointer("/input_tokens_details/cached_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            usage.output_tokens = u.get("output_tokens").and_then(Value::as_u64).unwrap_or(0);
        }
        if response.get("status").and_then(Value::as_str) == Some("incomplete") {
            stop = StopReason::MaxTokens;
        }
    }
    Answer {
        content,
        stop,
        usage,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_responses_answer_has_its_text_tool_calls_and_usage() {
        let response = json!({"status": "completed", "output": [
            {"type": "message", "content": [{"type": "output_text", "text": "hi"}]},
            {"type": "function_call", "name": "shell", "call_id": "c1", "arguments": "{\"command\":[\"ls\"]}"}
        ], "usage": {"input_tokens": 12, "output_tokens": 3}});
        let answer = responses_answer(Some(&response));
        assert_eq!(answer.usage.input_tokens, 12);
        assert_eq!(answer.usage.output_tokens, 3);
        assert_eq!(answer.stop, StopReason::ToolUse);
        assert_eq!(answer.content.len(), 2);
    }
}
