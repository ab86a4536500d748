//! Anthropic Messages or OpenAI Responses in front of a model that speaks
//! another protocol: a door's request read into the neutral conversation
//! the gateway's own calls use (so any provider's `body` builds the real
//! request), and the neutral answer written back in the program's
//! protocol, streamed (all at once) or whole. So Claude Code can work on an
//! OpenAI-compatible model (a local Ollama, vLLM, OpenRouter), and Codex
//! on Claude. What has no neutral form is left out: thinking and reasoning
//! items, images and documents (a text in their place), cache controls.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use swarm_protocol::agent::{Block, Message, Role, StopReason, ToolSpec};

use super::stream::Answer;

/// A Messages request as the neutral conversation.
#[derive(Debug, Default)]
pub(crate) struct Conversation {
    pub system: String,
    pub tools: Vec<ToolSpec>,
    pub messages: Vec<Message>,
    pub temperature: Option<f64>,
}

/// Text of a message's `content`: a string, or the text of its blocks
/// (Messages' `text`, Responses' `input_text` / `output_text`).
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Reads a Messages request body.
pub(crate) fn conversation(body: &Map<String, Value>) -> Result<Conversation, String> {
    let system = body.get("system").map(text_of).unwrap_or_default();
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(ToolSpec {
                name: t.get("name")?.as_str()?.to_string(),
                description: t
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                input_schema: t.get("input_schema")?.clone(),
            })
        })
        .collect();
    let mut messages: Vec<Message> = Vec::new();
    for (i, m) in body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("the request has no `messages`")?
        .iter()
        .enumerate()
    {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("assistant") => Role::Assistant,
            // A note in the middle of the conversation is the user's side.
            Some("user" | "system") => Role::User,
            other => return Err(format!("messages[{i}] has role {other:?}")),
        };
        let content = blocks(m.get("content").unwrap_or(&Value::Null));
        if content.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(content),
            _ => messages.push(Message { role, content }),
        }
    }
    Ok(Conversation {
        system,
        tools,
        messages,
        temperature: body.get("temperature").and_then(Value::as_f64),
    })
}

/// A message's content as neutral blocks.
fn blocks(content: &Value) -> Vec<Block> {
    let Value::Array(items) = content else {
        let text = text_of(content);
        return if text.is_empty() {
            Vec::new()
        } else {
            vec![Block::Text { text }]
        };
    };
    items
        .iter()
        .filter_map(|b| {
            let s = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or_default();
            match s("type") {
                "text" if !s("text").is_empty() => Some(Block::Text {
                    text: s("text").to_string(),
                }),
                "tool_use" => Some(Block::ToolCall {
                    id: s("id").to_string(),
                    name: s("name").to_string(),
                    input: b.get("input").cloned().unwrap_or_else(|| json!({})),
                    invalid_input: None,
                }),
                "tool_result" => Some(Block::ToolResult {
                    id: s("tool_use_id").to_string(),
                    content: text_of(b.get("content").unwrap_or(&Value::Null)),
                    is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                }),
                "image" | "document" => Some(Block::Text {
                    text: format!(
                        "[{} left out: the model behind swarm's gateway takes text]",
                        s("type")
                    ),
                }),
                _ => None,
            }
        })
        .collect()
}

fn stop_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::ToolUse => "tool_use",
        StopReason::MaxTokens => "max_tokens",
        StopReason::EndTurn | StopReason::Other => "end_turn",
    }
}

/// The content blocks of `answer` in Messages form.
fn content(answer: &Answer) -> Vec<Value> {
    answer
        .content
        .iter()
        .filter_map(|b| match b {
            Block::Text { text } => Some(json!({"type": "text", "text": text})),
            Block::ToolCall {
                id, name, input, ..
            } => Some(json!({"type": "tool_use", "id": id, "name": name, "input": input})),
            Block::ToolResult { .. } => None,
        })
        .collect()
}

/// `answer` as a whole Messages response.
pub(crate) fn message(model: &str, id: &str, answer: &Answer) -> Value {
    json!({"id": id, "type": "message", "role": "assistant", "model": model,
           "content": content(answer), "stop_reason": stop_reason(answer.stop),
           "stop_sequence": null,
           "usage": {"input_tokens": answer.usage.input_tokens,
                     "output_tokens": answer.usage.output_tokens}})
}

/// `answer` as the SSE events of a streamed Messages response.
pub(crate) fn events(model: &str, id: &str, answer: &Answer) -> Bytes {
    let mut out = String::new();
    let mut event = |name: &str, data: Value| {
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    event(
        "message_start",
        json!({"type": "message_start", "message": {"id": id, "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": answer.usage.input_tokens,
            "output_tokens": 0}}}),
    );
    for (index, block) in content(answer).into_iter().enumerate() {
        let (start, delta) = match block["type"].as_str() {
            Some("tool_use") => (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
            ),
            _ => (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": block["text"]}),
            ),
        };
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
    }
    event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(answer.stop),
            "stop_sequence": null}, "usage": {"output_tokens": answer.usage.output_tokens}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    Bytes::from(out)
}

/// A Responses request (what Codex sends) as the neutral conversation:
/// `instructions` and developer messages are the system prompt, function
/// calls and their outputs the tool calls and results.
pub(crate) fn responses_conversation(body: &Map<String, Value>) -> Result<Conversation, String> {
    let mut system: Vec<String> = body
        .get("instructions")
        .and_then(Value::as_str)
        .map(str::to_string)
        .into_iter()
        .collect();
    let items: Vec<Value> = match body.get("input") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(text)) => {
            vec![json!({"type": "message", "role": "user", "content": text})]
        }
        _ => return Err("the request has no `input`".into()),
    };
    let mut messages: Vec<Message> = Vec::new();
    let mut push = |role: Role, block: Block| match messages.last_mut() {
        Some(last) if last.role == role => last.content.push(block),
        _ => messages.push(Message {
            role,
            content: vec![block],
        }),
    };
    for item in &items {
        let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
        match (s("type"), s("role")) {
            ("message" | "", "developer" | "system") => {
                system.push(text_of(item.get("content").unwrap_or(&Value::Null)));
            }
            ("message" | "", role) => {
                let text = text_of(item.get("content").unwrap_or(&Value::Null));
                if !text.is_empty() {
                    let role = if role == "assistant" {
                        Role::Assistant
                    } else {
                        Role::User
                    };
                    push(role, Block::Text { text });
                }
            }
            ("function_call" | "custom_tool_call", _) => {
                let input = match item.get("arguments").and_then(Value::as_str) {
                    Some(args) => serde_json::from_str(args).unwrap_or_else(|_| json!({})),
                    None => json!({"input": item.get("input").cloned().unwrap_or(Value::Null)}),
                };
                push(
                    Role::Assistant,
                    Block::ToolCall {
                        id: s("call_id").to_string(),
                        name: s("name").to_string(),
                        input,
                        invalid_input: None,
                    },
                );
            }
            ("function_call_output" | "custom_tool_call_output", _) => push(
                Role::User,
                Block::ToolResult {
                    id: s("call_id").to_string(),
                    content: text_of(item.get("output").unwrap_or(&Value::Null)),
                    is_error: false,
                },
            ),
            // Reasoning and anything else has no neutral form.
            _ => {}
        }
    }
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        .filter_map(|t| {
            Some(ToolSpec {
                name: t.get("name")?.as_str()?.to_string(),
                description: t
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                input_schema: t
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
        })
        .collect();
    Ok(Conversation {
        system: system.join("\n\n"),
        tools,
        messages,
        temperature: body.get("temperature").and_then(Value::as_f64),
    })
}

/// The output items of `answer` in Responses form.
fn output_items(id: &str, answer: &Answer) -> Vec<Value> {
    answer
        .content
        .iter()
        .enumerate()
        .filter_map(|(k, b)| match b {
            Block::Text { text } => Some(json!({"type": "message", "id": format!("msg_{id}_{k}"),
                "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}]})),
            Block::ToolCall {
                id: call,
                name,
                input,
                ..
            } => Some(
                json!({"type": "function_call", "id": format!("fc_{id}_{k}"),
                "status": "completed", "call_id": call, "name": name,
                "arguments": input.to_string()}),
            ),
            Block::ToolResult { .. } => None,
        })
        .collect()
}

/// `answer` as a whole Responses `response` object.
pub(crate) fn response(model: &str, id: &str, answer: &Answer) -> Value {
    let status = if answer.stop == StopReason::MaxTokens {
        "incomplete"
    } else {
        "completed"
    };
    json!({"id": id, "object": "response", "model": model, "status": status,
           "output": output_items(id, answer),
           "usage": {"input_tokens": answer.usage.input_tokens,
                     "input_tokens_details": {"cached_tokens": 0},
                     "output_tokens": answer.usage.output_tokens,
                     "output_tokens_details": {"reasoning_tokens": 0},
                     "total_tokens": answer.usage.input_tokens + answer.usage.output_tokens}})
}

/// `answer` as the SSE events of a streamed Responses answer.
pub(crate) fn response_events(model: &str, id: &str, answer: &Answer) -> Bytes {
    let mut out = String::new();
    let mut event = |data: Value| {
        let name = data["type"].as_str().unwrap_or_default().to_string();
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    event(
        json!({"type": "response.created", "response": {"id": id, "object": "response",
        "model": model, "status": "in_progress", "output": []}}),
    );
    for (index, item) in output_items(id, answer).into_iter().enumerate() {
        event(json!({"type": "response.output_item.added", "output_index": index, "item": item}));
        if let Some(text) = item["content"][0]["text"].as_str() {
            event(
                json!({"type": "response.output_text.delta", "output_index": index,
                "content_index": 0, "item_id": item["id"], "delta": text}),
            );
        }
        event(json!({"type": "response.output_item.done", "output_index": index, "item": item}));
    }
    let whole = response(model, id, answer);
    let kind = if whole["status"] == "incomplete" {
        "response.incomplete"
    } else {
        "response.completed"
    };
    event(json!({"type": kind, "response": whole}));
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use swarm_protocol::agent::Usage;

    use super::*;

    #[test]
    fn a_messages_request_reads_into_the_neutral_conversation() {
        let body = json!({"system": [{"type": "text", "text": "Be brief."}],
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}],
        "temperature": 0.2,
        "messages": [
            {"role": "user", "content": "Fix it."},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "..."},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                "content": [{"type": "text", "text": "a.txt"}]}]},
            {"role": "system", "content": "a note"}
        ]});
        let c = conversation(body.as_object().unwrap()).unwrap();
        assert_eq!(c.system, "Be brief.");
        assert_eq!(c.tools.len(), 1);
        assert_eq!(c.temperature, Some(0.2));
        assert_eq!(c.messages.len(), 3, "the note joins the user's turn");
        assert_eq!(c.messages[1].content.len(), 1, "thinking is left out");
        assert!(
            matches!(&c.messages[2].content[0], Block::ToolResult { content, .. } if content == "a.txt")
        );
        assert!(matches!(&c.messages[2].content[1], Block::Text { text } if text == "a note"));
    }

    #[test]
    fn a_responses_request_reads_into_the_neutral_conversation_and_back() {
        let body = json!({"instructions": "Be brief.", "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix it."}]},
            {"type": "reasoning", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"},
            {"type": "function_call_output", "call_id": "c1", "output": "a.txt"}
        ], "tools": [{"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
                     {"type": "web_search"}]});
        let c = responses_conversation(body.as_object().unwrap()).unwrap();
        assert_eq!(c.system, "Be brief.\n\nRules.");
        assert_eq!(c.tools.len(), 1);
        assert_eq!(c.messages.len(), 3);
        assert!(
            matches!(&c.messages[1].content[0], Block::ToolCall { input, .. } if input["cmd"] == "ls")
        );
        let answer = Answer {
            content: vec![Block::ToolCall {
                id: "c2".into(),
                name: "exec_command".into(),
                input: json!({"cmd": "pwd"}),
                invalid_input: None,
            }],
            stop: StopReason::ToolUse,
            usage: Usage::default(),
        };
        let text = String::from_utf8(response_events("m", "r1", &answer).to_vec()).unwrap();
        assert!(
            text.contains(r#""arguments":"{\"cmd\":\"pwd\"}""#),
            "{text}"
        );
        assert!(text.contains("event: response.completed\n"));
    }

    #[test]
    fn an_answer_is_written_as_messages_events() {
        let answer = Answer {
            content: vec![
                Block::Text { text: "ok".into() },
                Block::ToolCall {
                    id: "c1".into(),
                    name: "Bash".into(),
                    input: json!({"command": "ls"}),
                    invalid_input: None,
                },
            ],
            stop: StopReason::ToolUse,
            usage: Usage {
                input_tokens: 5,
                output_tokens: 2,
                ..Usage::default()
            },
        };
        let text = String::from_utf8(events("m", "msg_1", &answer).to_vec()).unwrap();
        assert!(text.starts_with("event: message_start\n"));
        assert!(
            text.contains(r#""partial_json":"{\"command\":\"ls\"}""#),
            "{text}"
        );
        assert!(text.contains(r#""stop_reason":"tool_use""#));
        assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        assert_eq!(
            message("m", "msg_1", &answer)["content"][1]["type"],
            "tool_use"
        );
    }
}
