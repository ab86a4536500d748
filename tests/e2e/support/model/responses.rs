//! The OpenAI Responses API side of the mock (what Codex speaks): a
//! request's `input` items read into a [`Call`], a scripted answer as the
//! SSE events the real API sends (`response.created`, each output item
//! added and done, text deltas, `response.completed` with usage), or as
//! its whole `response` object.

use hyper::body::Bytes;
use serde_json::{Value, json};

use super::{Call, Part, ToolResultSeen, Wire, blank_call, split};

/// Text of an input item's content (`input_text` / `output_text` parts,
/// or a plain string).
fn text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn is_answer(item: &Value) -> bool {
    item["role"] == "assistant"
        || matches!(
            item["type"].as_str(),
            Some("function_call" | "custom_tool_call" | "local_shell_call" | "reasoning")
        )
}

pub(super) fn call(body: &Value) -> Call {
    let input: Vec<Value> = match &body["input"] {
        Value::Array(items) => items.clone(),
        Value::String(s) => vec![json!({"type": "message", "role": "user", "content": s})],
        _ => Vec::new(),
    };
    let user = |m: &Value| m["type"] == "message" && m["role"] == "user";
    let tail = input
        .iter()
        .rposition(is_answer)
        .map_or(&input[..], |i| &input[i + 1..]);
    // A turn is one answer: its items come one after another.
    let mut turn = 0;
    let mut previous = false;
    for item in &input {
        let answer = is_answer(item);
        if answer && !previous {
            turn += 1;
        }
        previous = answer;
    }
    Call {
        body: body.clone(),
        conversation: input
            .iter()
            .filter(|m| user(m))
            .map(|m| text(&m["content"]))
            .collect::<Vec<_>>()
            .join("\n"),
        turn,
        tool_results: tail
            .iter()
            .filter(|m| m["type"] == "function_call_output")
            .map(|m| ToolResultSeen {
                id: m["call_id"].as_str().unwrap_or_default().to_owned(),
                content: match &m["output"] {
                    Value::String(s) => s.clone(),
                    other => text(other),
                },
                is_error: false,
            })
            .collect(),
        last_user_text: tail
            .iter()
            .filter(|m| user(m))
            .map(|m| text(&m["content"]))
            .collect::<Vec<_>>()
            .join("\n"),
        system: body["instructions"].as_str().unwrap_or_default().to_owned(),
        tools: body["tools"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect(),
        ..blank_call(Wire::Responses)
    }
}

/// The output items of an answer.
fn items(index: usize, parts: &[Part]) -> Vec<Value> {
    parts
        .iter()
        .enumerate()
        .map(|(k, part)| match part {
            Part::Text(t) => json!({"type": "message", "id": format!("msg_{index}_{k}"),
                "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": t, "annotations": []}]}),
            Part::ToolCall { id, name, args, .. } => json!({"type": "function_call",
                "id": format!("fc_{index}_{k}"), "status": "completed",
                "call_id": id, "name": name, "arguments": args}),
        })
        .collect()
}

fn response(model: &str, index: usize, output: Vec<Value>, status: &str, usage: Value) -> Value {
    json!({"id": format!("resp_mock_{index}"), "object": "response", "model": model,
           "status": status, "output": output, "usage": usage})
}

fn usage(input: u64, output: u64) -> Value {
    json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
           "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": input + output})
}

fn event(value: &Value) -> Bytes {
    Bytes::from(format!(
        "event: {}\ndata: {value}\n\n",
        value["type"].as_str().unwrap_or("")
    ))
}

pub(super) fn events(
    model: &str,
    index: usize,
    parts: &[Part],
    input_tokens: u64,
    output_tokens: u64,
) -> Vec<Bytes> {
    let output = items(index, parts);
    let mut out = vec![event(&json!({"type": "response.created",
        "response": response(model, index, Vec::new(), "in_progress", Value::Null)}))];
    for (k, (item, part)) in output.iter().zip(parts).enumerate() {
        let mut started = item.clone();
        started["status"] = json!("in_progress");
        match part {
            Part::Text(t) => {
                started["content"] = json!([]);
                out.push(event(&json!({"type": "response.output_item.added", "output_index": k, "item": started})));
                for piece in split(t, 3) {
                    out.push(event(
                        &json!({"type": "response.output_text.delta", "output_index": k,
                        "content_index": 0, "item_id": item["id"], "delta": piece}),
                    ));
                }
            }
            Part::ToolCall { args, chunks, .. } => {
                started["arguments"] = json!("");
                out.push(event(&json!({"type": "response.output_item.added", "output_index": k, "item": started})));
                for piece in split(args, *chunks) {
                    out.push(event(
                        &json!({"type": "response.function_call_arguments.delta",
                        "output_index": k, "item_id": item["id"], "delta": piece}),
                    ));
                }
            }
        }
        out.push(event(
            &json!({"type": "response.output_item.done", "output_index": k, "item": item}),
        ));
    }
    out.push(event(&json!({"type": "response.completed",
        "response": response(model, index, output, "completed", usage(input_tokens, output_tokens))})));
    out
}

pub(super) fn whole(
    model: &str,
    index: usize,
    parts: &[Part],
    input_tokens: u64,
    output_tokens: u64,
) -> Value {
    response(
        model,
        index,
        items(index, parts),
        "completed",
        usage(input_tokens, output_tokens),
    )
}
