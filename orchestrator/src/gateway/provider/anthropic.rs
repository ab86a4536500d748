//! The Anthropic Messages API: the request body for a conversation, and the
//! answer decoded into the gateway's common events, from the streamed
//! events (`message_start`, `content_block_*`, `message_delta`,
//! `message_stop`, `error`) or from a whole `message`.

use serde_json::{Value, json};
use swarm_protocol::agent::{Block, Message, Role, StopReason};

use super::{Ask, Defaults, Provider};
use crate::gateway::Secret;
use crate::gateway::config::ModelConfig;
use crate::gateway::stream::{Failure, Slot, StreamEvent};

/// The Anthropic Messages API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anthropic;

impl Provider for Anthropic {
    fn defaults(&self) -> Defaults {
        Defaults {
            base_url: "https://api.anthropic.com",
            api_key_env: "ANTHROPIC_API_KEY",
        }
    }

    fn body(&self, config: &ModelConfig, ask: &Ask<'_>) -> Value {
        let mut body = body(&config.model, ask);
        if config.prompt_cache {
            mark_for_cache(&mut body);
        }
        body
    }

    fn request(
        &self,
        http: &reqwest::Client,
        config: &ModelConfig,
        key: Option<&Secret>,
        _stream: bool,
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

    fn decode_whole(&self, response: &Value) -> Result<Vec<StreamEvent>, Failure> {
        decode_whole(response)
    }
}

/// The body of a `POST /v1/messages`.
fn body(model: &str, ask: &Ask<'_>) -> Value {
    let mut tools: Vec<Value> = ask
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
        .collect();
    // A required shape is one tool the model must call: its input is the
    // answer (`complete` reads it back as the answer's text).
    if let Some(format) = ask.format {
        tools.push(json!({"name": format.name,
                          "description": "Give your answer: its input is the whole answer.",
                          "input_schema": format.schema}));
    }
    let messages: Vec<Value> = ask.messages.iter().map(message).collect();
    let mut body = json!({
        "model": model,
        "max_tokens": ask.max_tokens,
        "system": ask.system,
        "messages": messages,
        "tools": tools,
        "stream": ask.stream,
    });
    if let Some(t) = ask.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(format) = ask.format {
        body["tool_choice"] = json!({"type": "tool", "name": format.name});
    } else if ask.tool_choice != crate::gateway::config::ToolChoice::Auto && !ask.tools.is_empty() {
        body["tool_choice"] = json!({"type": "any"});
    }
    body
}

/// Marks the stable start of a request for the prompt cache: the system
/// prompt (with the tools before it) and the conversation up to its last
/// block. The next turn repeats both and adds to the end, so it reads them
/// from the cache (the provider looks for an earlier marker's prefix up to
/// 20 blocks back) and writes only what is new. Two of the four markers a
/// request may carry.
fn mark_for_cache(body: &mut Value) {
    let ephemeral = json!({"type": "ephemeral"});
    if let Some(system) = body["system"].as_str().filter(|s| !s.is_empty()) {
        body["system"] = json!([{"type": "text", "text": system, "cache_control": ephemeral}]);
    }
    if let Some(last) = body["messages"]
        .as_array_mut()
        .and_then(|m| m.last_mut())
        .and_then(|m| m["content"].as_array_mut())
        .and_then(|c| c.last_mut())
        .and_then(Value::as_object_mut)
    {
        last.insert("cache_control".into(), ephemeral);
    }
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
                    cache_read: None,
                    cache_write: None,
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

/// A whole `message` as common events.
fn decode_whole(message: &Value) -> Result<Vec<StreamEvent>, Failure> {
    if message["type"] == "error" {
        return Err(error(&message["error"]));
    }
    let Some(content) = message["content"].as_array() else {
        return Err(Failure::transient(
            "the model's answer has no content (not a message)",
        ));
    };
    let mut out = vec![usage(&message["usage"])];
    for (i, block) in content.iter().enumerate() {
        let slot = Slot::Block(i as u64);
        match block["type"].as_str() {
            Some("text") => out.push(StreamEvent::Text {
                slot,
                text: block["text"].as_str().unwrap_or_default().to_string(),
            }),
            Some("tool_use") => {
                out.push(StreamEvent::ToolStart {
                    slot,
                    id: block["id"].as_str().map(str::to_string),
                    name: block["name"].as_str().map(str::to_string),
                });
                // The input comes parsed; as text it goes through the same
                // check as streamed arguments.
                let piece = match &block["input"] {
                    Value::Null => String::new(),
                    input => input.to_string(),
                };
                out.push(StreamEvent::ToolArgs { slot, piece });
            }
            _ => {}
        }
    }
    if let Some(reason) = message["stop_reason"].as_str() {
        out.push(StreamEvent::Stop(stop_reason(reason)));
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
        cache_read: Some(n("cache_read_input_tokens")),
        cache_write: Some(n("cache_creation_input_tokens")),
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

/// How an `error` object the API reported (in a stream, or in place of a
/// message) fails the attempt.
fn error(error: &Value) -> Failure {
    let message = format!(
        "the model reported {}: {}",
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

    /// A streamed answer: text, then a tool call whose arguments come in two
    /// pieces (without the closing `message_stop`).
    const STREAM: &[(&str, &str)] = &[
        (
            "message_start",
            r#"{"type":"message_start","message":{"usage":{"input_tokens":2,"cache_read_input_tokens":10,"output_tokens":1}}}"#,
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

    #[test]
    fn a_streamed_tool_call_becomes_one_block() {
        use crate::gateway::stream::Assembler;
        let mut a = Assembler::default();
        let mut texts = Vec::new();
        let mut sink = |t: &str| texts.push(t.to_string());
        for &(e, d) in STREAM {
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
            (
                answer.usage.input_tokens,
                answer.usage.output_tokens,
                answer.usage.cache_read_tokens
            ),
            (12, 30, 10)
        );
        assert_eq!(answer.stop, StopReason::ToolUse);
        assert!(
            matches!(&answer.content[1], Block::ToolCall { input, .. } if input["command"] == "ls")
        );
    }

    #[test]
    fn a_whole_message_makes_the_same_answer_as_its_stream() {
        use crate::gateway::stream::Assembler;
        let mut streamed = Assembler::default();
        for &(e, d) in STREAM {
            streamed.apply_all(decode(e, d).unwrap(), &mut |_| {});
        }
        let message = serde_json::json!({"id": "msg_1", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": "Hi"},
                        {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "ls"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 2, "cache_read_input_tokens": 10, "output_tokens": 30}});
        let mut texts = Vec::new();
        let mut whole = Assembler::default();
        whole.apply_all(decode_whole(&message).unwrap(), &mut |t| {
            texts.push(t.to_string())
        });
        assert_eq!(texts, ["Hi"]);
        assert_eq!(whole.finish(), streamed.finish());

        let overloaded = serde_json::json!({"type": "error",
            "error": {"type": "overloaded_error", "message": "busy"}});
        assert!(matches!(
            decode_whole(&overloaded),
            Err(Failure::RateLimited { .. })
        ));
        assert!(matches!(
            decode_whole(&serde_json::json!({"type": "message"})),
            Err(Failure::Transient { .. })
        ));
    }
}
