//! The Anthropic Messages API side of the mock: a request read into a
//! [`Call`], a scripted answer as the SSE events the real API sends, or as
//! its whole `message`.

use hyper::body::Bytes;
use serde_json::{Value, json};

use super::{Call, Part, ToolResultSeen, Wire, blank_call, split, text_of};

pub(super) fn call(body: &Value) -> Call {
    let messages = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let role = |m: &&Value, r: &str| m["role"] == r;
    let last_user = messages.last().filter(|m| role(m, "user"));
    let blocks = last_user
        .and_then(|m| m["content"].as_array())
        .map_or(&[][..], Vec::as_slice);
    Call {
        body: body.clone(),
        conversation: messages
            .iter()
            .find(|m| role(m, "user"))
            .map(|m| text_of(&m["content"]))
            .unwrap_or_default(),
        turn: messages.iter().filter(|m| role(m, "assistant")).count(),
        tool_results: blocks
            .iter()
            .filter(|b| b["type"] == "tool_result")
            .map(|b| ToolResultSeen {
                id: b["tool_use_id"].as_str().unwrap_or_default().to_owned(),
                content: text_of(&b["content"]),
                is_error: b["is_error"].as_bool().unwrap_or(false),
            })
            .collect(),
        last_user_text: last_user
            .map(|m| text_of(&m["content"]))
            .unwrap_or_default(),
        system: text_of(&body["system"]),
        tools: body["tools"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect(),
        ..blank_call(Wire::Anthropic)
    }
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

pub(super) fn events(
    model: &str,
    index: usize,
    parts: &[Part],
    input_tokens: u64,
    output_tokens: u64,
    cached: super::cache::Split,
) -> Vec<Bytes> {
    let mut out = vec![
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": format!("msg_mock_{index}"), "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": usage(input_tokens, 1, cached),
            }}),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    let mut tool_use = false;
    for (i, part) in parts.iter().enumerate() {
        let (block, deltas) = match part {
            Part::Text(text) => (
                json!({"type": "text", "text": ""}),
                split(text, 3)
                    .into_iter()
                    .map(|t| json!({"type": "text_delta", "text": t}))
                    .collect::<Vec<_>>(),
            ),
            Part::ToolCall {
                id,
                name,
                args,
                chunks,
            } => {
                tool_use = true;
                (
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    split(args, *chunks)
                        .into_iter()
                        .map(|a| json!({"type": "input_json_delta", "partial_json": a}))
                        .collect(),
                )
            }
        };
        out.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": i, "content_block": block}),
        ));
        for delta in deltas {
            out.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": i, "delta": delta}),
            ));
        }
        out.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": i}),
        ));
    }
    let stop = if tool_use { "tool_use" } else { "end_turn" };
    out.push(event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": output_tokens}}),
    ));
    out.push(event("message_stop", &json!({"type": "message_stop"})));
    out
}

/// The whole `message` of a request that does not stream. The real API
/// sends tool input parsed; arguments scripted as something other than JSON
/// go as a string, which a client must refuse as not an object.
pub(super) fn message(
    model: &str,
    index: usize,
    parts: &[Part],
    input_tokens: u64,
    output_tokens: u64,
    cached: super::cache::Split,
) -> Value {
    let content: Vec<Value> = parts
        .iter()
        .map(|part| match part {
            Part::Text(text) => json!({"type": "text", "text": text}),
            Part::ToolCall { id, name, args, .. } => {
                let input = serde_json::from_str(args).unwrap_or_else(|_| json!(args));
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        })
        .collect();
    let tool_use = parts.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    json!({"id": format!("msg_mock_{index}"), "type": "message", "role": "assistant",
           "model": model, "content": content,
           "stop_reason": if tool_use { "tool_use" } else { "end_turn" }, "stop_sequence": null,
           "usage": usage(input_tokens, output_tokens, cached)})
}

/// A `usage` object: the cache's tokens only when there are any, as the
/// API leaves them out for a request without markers.
fn usage(input_tokens: u64, output_tokens: u64, cached: super::cache::Split) -> Value {
    let mut usage = json!({"input_tokens": input_tokens, "output_tokens": output_tokens});
    if cached.read + cached.written > 0 {
        usage["cache_read_input_tokens"] = json!(cached.read);
        usage["cache_creation_input_tokens"] = json!(cached.written);
    }
    usage
}

pub(super) fn error_body(code: u16, message: &str) -> Value {
    let kind = match code {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}
