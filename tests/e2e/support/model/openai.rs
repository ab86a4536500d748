//! The OpenAI Chat Completions side of the mock: a request read into a
//! [`Call`], a scripted answer as the SSE chunks the real API sends, or as
//! its whole `chat.completion`.

use hyper::body::Bytes;
use serde_json::{Value, json};

use super::{Call, Part, ToolResultSeen, Wire, blank_call, split, text_of};

pub(super) fn call(body: &Value) -> Call {
    let messages = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let role = |m: &Value, r: &str| m["role"] == r;
    // The last "user turn" is everything after the last assistant message:
    // tool messages and possibly user text.
    let tail = messages
        .iter()
        .rposition(|m| role(m, "assistant"))
        .map_or(messages, |i| &messages[i + 1..]);
    Call {
        body: body.clone(),
        conversation: messages
            .iter()
            .find(|m| role(m, "user"))
            .map(|m| text_of(&m["content"]))
            .unwrap_or_default(),
        turn: messages.iter().filter(|m| role(m, "assistant")).count(),
        tool_results: tail
            .iter()
            .filter(|m| role(m, "tool"))
            .map(|m| ToolResultSeen {
                id: m["tool_call_id"].as_str().unwrap_or_default().to_owned(),
                content: text_of(&m["content"]),
                is_error: false,
            })
            .collect(),
        last_user_text: join(tail.iter().filter(|m| role(m, "user"))),
        system: join(
            messages
                .iter()
                .filter(|m| role(m, "system") || role(m, "developer")),
        ),
        tools: body["tools"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect(),
        ..blank_call(Wire::OpenAi)
    }
}

fn join<'a>(messages: impl Iterator<Item = &'a Value>) -> String {
    messages
        .map(|m| text_of(&m["content"]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

pub(super) fn events(
    model: &str,
    index: usize,
    parts: &[Part],
    input_tokens: u64,
    output_tokens: u64,
    include_usage: bool,
) -> Vec<Bytes> {
    let id = format!("chatcmpl-mock-{index}");
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let chunk = |delta: Value, finish: Value| {
        let mut chunk = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        if include_usage {
            // As the real API does: every chunk but the last has `usage: null`.
            chunk["usage"] = Value::Null;
        }
        data(&chunk)
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let mut calls = 0;
    for part in parts {
        match part {
            Part::Text(text) => {
                for piece in split(text, 3) {
                    out.push(chunk(json!({"content": piece}), Value::Null));
                }
            }
            Part::ToolCall {
                id,
                name,
                args,
                chunks,
            } => {
                for (k, piece) in split(args, *chunks).into_iter().enumerate() {
                    let delta = if k == 0 {
                        json!({"index": calls, "id": id, "type": "function",
                               "function": {"name": name, "arguments": piece}})
                    } else {
                        json!({"index": calls, "function": {"arguments": piece}})
                    };
                    out.push(chunk(json!({"tool_calls": [delta]}), Value::Null));
                }
                calls += 1;
            }
        }
    }
    let finish = if calls > 0 { "tool_calls" } else { "stop" };
    out.push(chunk(json!({}), json!(finish)));
    if include_usage {
        out.push(data(
            &json!({"id": id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": [], "usage": {"prompt_tokens": input_tokens,
            "completion_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}}),
        ));
    }
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

/// The whole `chat.completion` of a request that does not stream: one
/// content string (`null` beside tool calls without text), the calls with
/// their arguments as text, and usage, which such an answer always has.
pub(super) fn completion(
    model: &str,
    index: usize,
    parts: &[Part],
    input_tokens: u64,
    output_tokens: u64,
) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in parts {
        match part {
            Part::Text(t) => text.push_str(t),
            Part::ToolCall { id, name, args, .. } => calls.push(
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}),
            ),
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        if text.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    let finish = if message["tool_calls"].is_null() {
        "stop"
    } else {
        "tool_calls"
    };
    json!({"id": format!("chatcmpl-mock-{index}"), "object": "chat.completion",
           "created": 0, "model": model,
           "choices": [{"index": 0, "message": message, "finish_reason": finish}],
           "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
                     "total_tokens": input_tokens + output_tokens}})
}

pub(super) fn error_body(code: u16, message: &str) -> Value {
    let (kind, error_code) = match code {
        401 => ("invalid_request_error", json!("invalid_api_key")),
        404 => ("invalid_request_error", json!("model_not_found")),
        429 => ("requests", json!("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", Value::Null),
        _ => ("server_error", Value::Null),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": error_code}})
}
