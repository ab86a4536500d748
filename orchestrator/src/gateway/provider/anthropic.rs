//! The Anthropic Messages API: the request body for a conversation, and the
//! streamed events (`message_start`, `content_block_*`, `message_delta`,
//! `message_stop`, `error`) decoded into the gateway's common events.

use serde_json::{Value, json};
use swarm_protocol::agent::{Block, Message, Role, StopReason, ToolSpec};

use super::Provider;
use crate::gateway::Secret;
use crate::gateway::stream::{Failure, Slot, StreamEvent};
use crate::plan::ModelConfig;

/// The Anthropic Messages API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anthropic;

impl Provider for Anthropic {
    fn body(
        &self,
        config: &ModelConfig,
        max_tokens: u32,
        system: &str,
        tools: &[ToolSpec],
        messages: &[Message],
    ) -> Value {
        body(&config.model, max_tokens, system, tools, messages)
    }

    fn request(
        &self,
        http: &reqwest::Client,
        config: &ModelConfig,
        key: Option<&Secret>,
    ) -> reqwest::RequestBuilder {
        let mut r = http
            .post(format!("{}/v1/messages", config.base_url))
            .header("anthropic-version", "2023-06-01");
        if let Some(key) = key {
            r = r.header("x-api-key", key.expose());
        }
        r
    }

    fn decode(&self, event: &str, data: &str) -> Result<Vec<StreamEvent>, Failure> {
        decode(event, data)
    }
}

/// The body of a streamed `POST /v1/messages`.
fn body(
    model: &str,
    max_tokens: u32,
    system: &str,
    tools: &[ToolSpec],
    messages: &[Message],
) -> Value {
    let tools: Vec<Value> = tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
        .collect();
    let messages: Vec<Value> = messages.iter().map(message).collect();
    json!({
        "model": model,
        "max_tokens": max_tokens,
        "system": system,
        "messages": messages,
        "tools": tools,
        "stream": true,
    })
}

fn message(m: &Message) -> Value {
    // Tool results must come first in a user message.
    let results = m
        .content
        .iter()
        .filter(|b| matches!(b, Block::ToolResult { .. }));
    let others = m
        .content
        .iter()
        .filter(|b| !matches!(b, Block::ToolResult { .. }));
    let mut content: Vec<Value> = results
        .chain(others)
        .filter_map(|b| match b {
            // The API refuses text blocks without visible text.
            Block::Text { text } if text.trim().is_empty() => None,
            Block::Text { text } => Some(json!({"type": "text", "text": text})),
            Block::ToolCall {
                id, name, input, ..
            } => Some(json!({"type": "tool_use", "id": id, "name": name, "input": input})),
            Block::ToolResult {
                id,
                content,
                is_error,
            } => Some(json!({
                "type": "tool_result",
                "tool_use_id": id,
                "content": content,
                "is_error": is_error,
            })),
        })
        .collect();
    if content.is_empty() {
        content.push(json!({"type": "text", "text": "(empty)"}));
    }
    let role = match m.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    json!({"role": role, "content": content})
}

/// One SSE event as common events.
fn decode(event: &str, data: &str) -> Result<Vec<StreamEvent>, Failure> {
    if event == "ping" || data.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Failure::transient(format!("the model sent an unreadable event: {e}")))?;
    let kind = v["type"].as_str().unwrap_or(event);
    let slot = Slot::Block(v["index"].as_u64().unwrap_or(0));
    let mut out = Vec::new();
    match kind {
        "message_start" => out.push(usage(&v["message"]["usage"])),
        "content_block_start" => {
            let block = &v["content_block"];
            match block["type"].as_str() {
                Some("text") => out.push(StreamEvent::Text {
                    slot,
                    text: block["text"].as_str().unwrap_or_default().to_string(),
                }),
                Some("tool_use") => out.push(StreamEvent::ToolStart {
                    slot,
                    id: block["id"].as_str().map(str::to_string),
                    name: block["name"].as_str().map(str::to_string),
                }),
                // Thinking and other blocks are not part of the answer.
                _ => {}
            }
        }
        "content_block_delta" => {
            let delta = &v["delta"];
            match delta["type"].as_str() {
                Some("text_delta") => out.push(StreamEvent::Text {
                    slot,
                    text: delta["text"].as_str().unwrap_or_default().to_string(),
                }),
                Some("input_json_delta") => out.push(StreamEvent::ToolArgs {
                    slot,
                    piece: delta["partial_json"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                }),
                _ => {}
            }
        }
        "message_delta" => {
            if let Some(output) = v["usage"]["output_tokens"].as_u64() {
                out.push(StreamEvent::Usage {
                    input: None,
                    output: Some(output),
                });
            }
            if let Some(reason) = v["delta"]["stop_reason"].as_str() {
                out.push(StreamEvent::Stop(stop_reason(reason)));
            }
        }
        "message_stop" => out.push(StreamEvent::Done),
        "error" => return Err(error(&v["error"])),
        _ => {}
    }
    Ok(out)
}

/// A `usage` object as an event: cached input is still input the call
/// used.
fn usage(usage: &Value) -> StreamEvent {
    let n = |k: &str| usage[k].as_u64().unwrap_or(0);
    StreamEvent::Usage {
        input: Some(
            n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens"),
        ),
        output: Some(n("output_tokens")),
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" | "stop_sequence" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        _ => StopReason::Other,
    }
}

/// How an `error` object the API reported fails the attempt.
fn error(error: &Value) -> Failure {
    let message = format!(
        "the model's stream reported {}: {}",
        error["type"].as_str().unwrap_or("an error"),
        error["message"].as_str().unwrap_or_default()
    );
    match error["type"].as_str() {
        Some("overloaded_error" | "rate_limit_error") => Failure::RateLimited {
            retry_after: None,
            message,
        },
        Some("api_error") | None => Failure::transient(message),
        Some(_) => Failure::Fatal { message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_tool_call_becomes_one_block() {
        use crate::gateway::stream::Assembler;
        let mut a = Assembler::default();
        let mut texts = Vec::new();
        let mut sink = |t: &str| texts.push(t.to_string());
        let events = [
            (
                "message_start",
                r#"{"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"bash","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"command\":"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"ls\"}"}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}"#,
            ),
        ];
        for (e, d) in events {
            let decoded = decode(e, d).unwrap();
            assert!(!decoded.contains(&StreamEvent::Done));
            a.apply_all(decoded, &mut sink);
        }
        assert!(!a.is_whole(Anthropic.stop_ends_stream()));
        let end = decode("message_stop", r#"{"type":"message_stop"}"#).unwrap();
        assert_eq!(end, [StreamEvent::Done]);
        a.apply_all(end, &mut sink);
        assert!(a.is_whole(false));
        let answer = a.finish();
        assert_eq!(texts, ["Hi"]);
        assert_eq!(
            (answer.usage.input_tokens, answer.usage.output_tokens),
            (12, 30)
        );
        assert_eq!(answer.stop, StopReason::ToolUse);
        assert!(
            matches!(&answer.content[1], Block::ToolCall { input, .. } if input["command"] == "ls")
        );
    }
}
