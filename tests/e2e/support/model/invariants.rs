//! What a real provider would reject (or silently mishandle) in a request:
//! each check appends a human-readable problem instead of failing, so the
//! mock can still answer and a test sees every violation at the end.

use std::collections::{HashMap, HashSet};

use hyper::HeaderMap;
use serde_json::Value;

use super::{Options, Wire};

pub(super) fn check(
    wire: Wire,
    headers: &HeaderMap,
    body: &Value,
    options: &Options,
    out: &mut Vec<String>,
) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !header("content-type").is_some_and(|c| c.starts_with("application/json")) {
        out.push(format!(
            "content-type is {:?}, not application/json",
            header("content-type")
        ));
    }
    if let Some(key) = &options.api_key {
        let (name, expected) = match wire {
            Wire::Anthropic => ("x-api-key", key.clone()),
            Wire::OpenAi | Wire::Responses => ("authorization", format!("Bearer {key}")),
        };
        if header(name) != Some(expected.as_str()) {
            out.push(format!(
                "{name} header is {:?}, expected {expected:?}",
                header(name)
            ));
        }
    }
    if wire == Wire::Anthropic && header("anthropic-version").is_none() {
        out.push("no anthropic-version header".into());
    }
    if body["model"] != options.model.as_str() {
        out.push(format!(
            "model is {}, expected {:?}",
            body["model"], options.model
        ));
    }
    // Both APIs take a missing flag as false.
    let stream = match &body["stream"] {
        Value::Bool(stream) => *stream,
        Value::Null => false,
        other => {
            out.push(format!("stream is {other}, not a boolean"));
            false
        }
    };
    if let Some(expected) = options.stream
        && stream != expected
    {
        out.push(format!("stream is {stream}, expected {expected}"));
    }
    let max = match wire {
        // Optional there: the model's own limit.
        Wire::Responses if body["max_output_tokens"].is_null() => &Value::Null,
        Wire::Responses => &body["max_output_tokens"],
        Wire::Anthropic => &body["max_tokens"],
        Wire::OpenAi if body["max_completion_tokens"].is_null() => &body["max_tokens"],
        Wire::OpenAi => &body["max_completion_tokens"],
    };
    if !(wire == Wire::Responses && max.is_null()) && max.as_u64().is_none_or(|n| n == 0) {
        out.push(format!("max tokens is {max}, expected a positive integer"));
    }
    if wire == Wire::OpenAi && stream && body["stream_options"]["include_usage"] != true {
        out.push(
            "stream_options.include_usage is not true: the stream would report no usage".into(),
        );
    }
    if wire == Wire::OpenAi && !stream && !body["stream_options"].is_null() {
        out.push("stream_options on a request that does not stream (the API refuses it)".into());
    }
    if wire != Wire::Responses {
        tools(wire, &body["tools"], out);
    }
    match wire {
        Wire::Anthropic => anthropic(body, out),
        Wire::OpenAi => openai(&body["messages"], out),
        Wire::Responses => responses(&body["input"], out),
    }
}

fn tools(wire: Wire, tools: &Value, out: &mut Vec<String>) {
    let Some(tools) = tools.as_array() else {
        if !tools.is_null() {
            out.push("tools is not an array".into());
        }
        return;
    };
    let mut names = HashSet::new();
    for (i, tool) in tools.iter().enumerate() {
        let (def, schema) = match wire {
            Wire::Anthropic => (tool, &tool["input_schema"]),
            Wire::OpenAi | Wire::Responses => {
                if tool["type"] != "function" {
                    out.push(format!(
                        "tools[{i}]: type is {}, expected \"function\"",
                        tool["type"]
                    ));
                }
                (&tool["function"], &tool["function"]["parameters"])
            }
        };
        let name = def["name"].as_str().unwrap_or_default();
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
            out.push(format!("tools[{i}]: bad name {}", def["name"]));
        } else if !names.insert(name) {
            out.push(format!("tools[{i}]: duplicate name {name:?}"));
        }
        if !def["description"].is_string() {
            out.push(format!("tools[{i}] ({name}): no description"));
        }
        if !schema.is_object() || schema["type"] != "object" {
            out.push(format!(
                "tools[{i}] ({name}): schema is not an object schema: {schema}"
            ));
        }
    }
}

fn anthropic(body: &Value, out: &mut Vec<String>) {
    let system = &body["system"];
    let text_blocks = |v: &Value| {
        v.as_array()
            .is_some_and(|a| a.iter().all(|b| b["type"] == "text"))
    };
    if !(system.is_null() || system.is_string() || text_blocks(system)) {
        out.push("system is neither a string nor an array of text blocks".into());
    }
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        out.push("messages is missing or empty".into());
        return;
    };
    let mut ids = HashSet::new();
    // Tool-use ids of the previous message, which this one must answer.
    let mut pending: Vec<String> = Vec::new();
    // Mid-conversation `system` messages (which Claude Code sends, and
    // the API takes) stand outside the user/assistant alternation.
    let turns = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m["role"] != "system");
    for (k, (i, message)) in turns.enumerate() {
        let role = message["role"].as_str().unwrap_or_default();
        let expected = if k % 2 == 0 { "user" } else { "assistant" };
        if role != expected {
            out.push(format!(
                "messages[{i}]: role {role:?}, expected {expected:?} (user first, then alternating)"
            ));
        }
        let blocks = match &message["content"] {
            Value::String(s) if !s.is_empty() => &[][..],
            Value::Array(blocks) if !blocks.is_empty() => blocks.as_slice(),
            other => {
                out.push(format!(
                    "messages[{i}]: content is empty or malformed: {other}"
                ));
                &[][..]
            }
        };
        let mut uses = Vec::new();
        let mut answered: HashMap<&str, usize> = HashMap::new();
        let mut text_seen = false;
        for (j, block) in blocks.iter().enumerate() {
            let at = format!("messages[{i}].content[{j}]");
            match (block["type"].as_str().unwrap_or_default(), role) {
                ("text", _) => {
                    text_seen = true;
                    if block["text"].as_str().is_none_or(str::is_empty) {
                        out.push(format!("{at}: text block with empty or missing text"));
                    }
                }
                ("tool_use", "assistant") => {
                    let id = block["id"].as_str().unwrap_or_default();
                    if id.is_empty() || !block["name"].is_string() {
                        out.push(format!("{at}: tool_use without id or name"));
                    }
                    if !ids.insert(id.to_owned()) {
                        out.push(format!(
                            "{at}: tool_use id {id:?} is not unique in the conversation"
                        ));
                    }
                    if !block["input"].is_object() {
                        out.push(format!(
                            "{at}: tool_use {id:?} input is not an object: {}",
                            block["input"]
                        ));
                    }
                    uses.push(id.to_owned());
                }
                ("tool_result", "user") => {
                    let id = block["tool_use_id"].as_str().unwrap_or_default();
                    if text_seen {
                        out.push(format!(
                            "{at}: tool_result {id:?} after a text block (results must come first)"
                        ));
                    }
                    if !pending.iter().any(|p| p == id) {
                        out.push(format!(
                            "{at}: orphan tool_result {id:?}: no such tool_use in the previous assistant message"
                        ));
                    }
                    let content = &block["content"];
                    if !(content.is_null() || content.is_string() || content.is_array()) {
                        out.push(format!(
                            "{at}: tool_result content is neither a string nor blocks"
                        ));
                    }
                    *answered.entry(id).or_default() += 1;
                }
                ("image" | "document", "user")
                | ("thinking" | "redacted_thinking", "assistant") => {}
                (kind, _) => out.push(format!(
                    "{at}: {kind:?} block not allowed in a {role:?} message"
                )),
            }
        }
        for id in &pending {
            match answered.get(id.as_str()).copied().unwrap_or(0) {
                1 => {}
                0 => out.push(format!(
                    "messages[{i}]: tool_use {id:?} of messages[{}] is unanswered (no tool_result here)",
                    i - 1
                )),
                n => out.push(format!("messages[{i}]: tool_use {id:?} answered {n} times")),
            }
        }
        pending = uses;
    }
    if !pending.is_empty() {
        out.push(format!(
            "last message's tool_use(s) {pending:?} are unanswered"
        ));
    }
    if messages
        .iter()
        .rfind(|m| m["role"] != "system")
        .is_some_and(|m| m["role"] != "user")
    {
        out.push("the request does not end with a user message".into());
    }
}

fn openai(messages: &Value, out: &mut Vec<String>) {
    let Some(messages) = messages.as_array().filter(|m| !m.is_empty()) else {
        out.push("messages is missing or empty".into());
        return;
    };
    let mut ids = HashSet::new();
    // Tool-call ids of the last assistant message not yet answered, and where.
    let mut pending: Vec<String> = Vec::new();
    let mut pending_at = 0;
    let mut started = false;
    let unanswered = |pending: &mut Vec<String>, at: usize, out: &mut Vec<String>| {
        for id in pending.drain(..) {
            out.push(format!("messages[{at}]: tool call {id:?} is unanswered (no tool message before the next turn)"));
        }
    };
    for (i, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or_default();
        let content = &message["content"];
        let texty = content.is_string() || content.is_array();
        match role {
            "system" | "developer" => {
                if started {
                    out.push(format!(
                        "messages[{i}]: {role} message after the conversation started"
                    ));
                }
            }
            "user" => {
                unanswered(&mut pending, pending_at, out);
                if !texty {
                    out.push(format!(
                        "messages[{i}]: user content is neither a string nor parts"
                    ));
                }
            }
            "assistant" => {
                if !started {
                    out.push(format!(
                        "messages[{i}]: the conversation starts with an assistant message"
                    ));
                }
                unanswered(&mut pending, pending_at, out);
                pending_at = i;
                if !(content.is_null() || texty) {
                    out.push(format!(
                        "messages[{i}]: assistant content is neither a string nor null"
                    ));
                }
                match &message["tool_calls"] {
                    Value::Null if content.is_null() => {
                        out.push(format!(
                            "messages[{i}]: assistant message with neither content nor tool_calls"
                        ));
                    }
                    Value::Null => {}
                    Value::Array(calls) if !calls.is_empty() => {
                        for (j, call) in calls.iter().enumerate() {
                            let at = format!("messages[{i}].tool_calls[{j}]");
                            let id = call["id"].as_str().unwrap_or_default();
                            if id.is_empty()
                                || call["type"] != "function"
                                || !call["function"]["name"].is_string()
                            {
                                out.push(format!(
                                    "{at}: needs id, type \"function\" and function.name"
                                ));
                            }
                            if !call["function"]["arguments"].is_string() {
                                out.push(format!("{at}: arguments is not a string"));
                            }
                            if !ids.insert(id.to_owned()) {
                                out.push(format!(
                                    "{at}: tool call id {id:?} is not unique in the conversation"
                                ));
                            }
                            pending.push(id.to_owned());
                        }
                    }
                    other => out.push(format!(
                        "messages[{i}]: tool_calls is empty or malformed: {other}"
                    )),
                }
            }
            "tool" => {
                let id = message["tool_call_id"].as_str().unwrap_or_default();
                match pending.iter().position(|p| p == id) {
                    Some(k) => {
                        pending.remove(k);
                    }
                    None => out.push(format!(
                        "messages[{i}]: orphan tool message {id:?}: no unanswered call of that id in the last assistant message"
                    )),
                }
                if !texty {
                    out.push(format!(
                        "messages[{i}]: tool content is neither a string nor parts"
                    ));
                }
            }
            other => out.push(format!("messages[{i}]: unknown role {other:?}")),
        }
        started |= !matches!(role, "system" | "developer");
    }
    unanswered(&mut pending, pending_at, out);
    if messages
        .last()
        .is_some_and(|m| m["role"] != "user" && m["role"] != "tool")
    {
        out.push("the request does not end with a user or tool message".into());
    }
}

/// Every `function_call_output` answers a `function_call` made before it,
/// once.
fn responses(input: &Value, out: &mut Vec<String>) {
    let Some(items) = input.as_array() else {
        if !input.is_string() {
            out.push("input is neither a string nor an array of items".into());
        }
        return;
    };
    let mut calls = HashSet::new();
    let mut answered = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        match item["type"].as_str() {
            Some("function_call") => {
                calls.insert(item["call_id"].as_str().unwrap_or_default().to_owned());
            }
            Some("function_call_output") => {
                let id = item["call_id"].as_str().unwrap_or_default();
                if !calls.contains(id) {
                    out.push(format!("input[{i}]: output for unknown call {id:?}"));
                } else if !answered.insert(id.to_owned()) {
                    out.push(format!("input[{i}]: call {id:?} answered twice"));
                }
            }
            _ => {}
        }
    }
}
