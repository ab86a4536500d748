//! The Anthropic Messages API: the request body for a conversation, and the
//! streamed events (`message_start`, `content_block_*`, `message_delta`,
//! `message_stop`, `error`) folded into an answer.

use serde_json::{Value, json};
use swarm_protocol::agent::{Block, Message, Role, StopReason, ToolSpec};

use super::Provider;
use crate::gateway::Secret;
use crate::gateway::stream::{Assembler, Failure, Slot, Step};
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

    fn decode(
        &self,
        answer: &mut Assembler,
        event: &str,
        data: &str,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Step, Failure> {
        fold(answer, event, data, on_text)
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

/// Folds one SSE event into `answer`.
fn fold(
    answer: &mut Assembler,
    event: &str,
    data: &str,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Step, Failure> {
    if event == "ping" || data.trim().is_empty() {
        return Ok(Step::Continue);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Failure::transient(format!("the model sent an unreadable event: {e}")))?;
    let kind = v["type"].as_str().unwrap_or(event);
    let index = || Slot::Block(v["index"].as_u64().unwrap_or(0));
    match kind {
        "message_start" => {
            let usage = &v["message"]["usage"];
            let n = |k: &str| usage[k].as_u64().unwrap_or(0);
            // Cached input is still input the task used.
            answer.usage.input_tokens =
                n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens");
            answer.usage.output_tokens = n("output_tokens");
        }
        "content_block_start" => {
            let block = &v["content_block"];
            match block["type"].as_str() {
                Some("text") => {
                    let text = block["text"].as_str().unwrap_or_default();
                    answer.text(index(), text);
                    if !text.is_empty() {
                        on_text(text);
                    }
                }
                Some("tool_use") => {
                    answer.tool(index(), block["id"].as_str(), block["name"].as_str())
                }
                // Thinking and other blocks are not part of the answer.
                _ => {}
            }
        }
        "content_block_delta" => {
            let delta = &v["delta"];
            match delta["type"].as_str() {
                Some("text_delta") => {
                    let text = delta["text"].as_str().unwrap_or_default();
                    answer.text(index(), text);
                    on_text(text);
                }
                Some("input_json_delta") => {
                    answer.tool_args(index(), delta["partial_json"].as_str().unwrap_or_default());
                }
                _ => {}
            }
        }
        "message_delta" => {
            if let Some(out) = v["usage"]["output_tokens"].as_u64() {
                answer.usage.output_tokens = out;
            }
            if let Some(stop) = v["delta"]["stop_reason"].as_str() {
                answer.stop = Some(match stop {
                    "end_turn" | "stop_sequence" => StopReason::EndTurn,
                    "tool_use" => StopReason::ToolUse,
                    "max_tokens" => StopReason::MaxTokens,
                    _ => StopReason::Other,
                });
            }
        }
        "message_stop" => return Ok(Step::Done),
        "error" => {
            let message = format!(
                "the model's stream reported {}: {}",
                v["error"]["type"].as_str().unwrap_or("an error"),
                v["error"]["message"].as_str().unwrap_or_default()
            );
            return Err(match v["error"]["type"].as_str() {
                Some("overloaded_error" | "rate_limit_error") => Failure::RateLimited {
                    retry_after: None,
                    message,
                },
                Some("api_error") | None => Failure::transient(message),
                Some(_) => Failure::Fatal { message },
            });
        }
        _ => {}
    }
    Ok(Step::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_tool_call_becomes_one_block() {
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
            assert!(matches!(fold(&mut a, e, d, &mut sink), Ok(Step::Continue)));
        }
        assert!(matches!(
            fold(
                &mut a,
                "message_stop",
                r#"{"type":"message_stop"}"#,
                &mut sink
            ),
            Ok(Step::Done)
        ));
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
