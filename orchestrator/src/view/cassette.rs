//! A recorded cassette as text for people (`swarm logs RUN TASK --cassette
//! DIR`): each exchange's request (where it went, its key) and the
//! answer's text and tool calls, read from the provider's own events
//! whatever its protocol.

use serde_json::Value;
use swarm_protocol::cassette::{CassetteLine, Exchange};

/// Characters of an answer's text shown per exchange.
const TEXT_CHARS: usize = 2000;

/// The cassette `jsonl` as text; a line that is not a cassette line is
/// said as such, with its number.
pub fn render(jsonl: &str) -> String {
    let mut out = String::new();
    for (n, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<CassetteLine>(line) {
            Ok(CassetteLine::Cassette(header)) => {
                out.push_str(&format!(
                    "cassette of {} (format version {})\n",
                    header.name, header.version
                ));
            }
            Ok(CassetteLine::Exchange(exchange)) => exchange_text(&exchange, &mut out),
            Err(e) => out.push_str(&format!("line {}: not a cassette line: {e}\n", n + 1)),
        }
    }
    out
}

fn exchange_text(e: &Exchange, out: &mut String) {
    let response = &e.response;
    let shape = match response.is_stream() {
        true => format!(
            "stream of {} events in {} ms",
            response.events.len(),
            response.events.last().map_or(0, |l| l.at_ms)
        ),
        false if !response.is_success() => format!("refused (HTTP {})", response.status),
        false => "whole answer".to_string(),
    };
    let usage = e.usage.map_or_else(String::new, |u| {
        format!(", {} in / {} out tokens", u.input_tokens, u.output_tokens)
    });
    let key = e.key.as_deref().map_or(String::new(), |k| {
        format!(" key {}", k.chars().take(12).collect::<String>())
    });
    let broken = if response.complete { "" } else { ", broke off" };
    out.push_str(&format!(
        "\n── turn {} · POST {}{key} · {shape}{usage}{broken}\n",
        e.turn, e.request.path
    ));
    let (text, tools) = match response.is_stream() {
        true => from_events(response.events.iter().map(|ev| &ev.data)),
        // A refusal's words, as the provider gave them.
        false if !response.is_success() => (
            String::from_utf8_lossy(&response.wire()).into_owned(),
            Vec::new(),
        ),
        false => response.body.as_ref().map(from_whole).unwrap_or_default(),
    };
    let text = text.trim();
    if !text.is_empty() {
        let shown: String = text.chars().take(TEXT_CHARS).collect();
        out.push_str(&shown);
        if shown.len() < text.len() {
            out.push_str(" …");
        }
        out.push('\n');
    }
    for tool in tools {
        out.push_str(&format!("→ {tool}\n"));
    }
}

/// The text and tool names of a streamed answer, from Anthropic Messages,
/// OpenAI Chat Completions or Responses events.
fn from_events<'a>(events: impl Iterator<Item = &'a Value>) -> (String, Vec<String>) {
    let (mut text, mut tools) = (String::new(), Vec::new());
    for data in events {
        let kind = data.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "content_block_delta" => {
                if let Some(t) = data.pointer("/delta/text").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
            "content_block_start" => {
                if let Some(name) = data.pointer("/content_block/name").and_then(Value::as_str) {
                    tools.push(name.to_string());
                }
            }
            "response.output_text.delta" => {
                if let Some(t) = data.get("delta").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
            "response.output_item.added" => {
                if let Some(name) = data.pointer("/item/name").and_then(Value::as_str) {
                    tools.push(name.to_string());
                }
            }
            _ => {
                let delta = data.pointer("/choices/0/delta");
                if let Some(t) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) {
                    text.push_str(t);
                }
                for call in delta
                    .and_then(|d| d.get("tool_calls"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = call.pointer("/function/name").and_then(Value::as_str) {
                        tools.push(name.to_string());
                    }
                }
            }
        }
    }
    (text, tools)
}

/// The text and tool names of a whole answer in any of the three shapes.
fn from_whole(body: &Value) -> (String, Vec<String>) {
    let (mut text, mut tools) = (String::new(), Vec::new());
    let mut block = |b: &Value| match b.get("type").and_then(Value::as_str) {
        Some("text" | "output_text") => {
            text.push_str(b.get("text").and_then(Value::as_str).unwrap_or(""));
        }
        Some("tool_use" | "function_call") => {
            tools.push(
                b.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
            );
        }
        _ => {}
    };
    for b in body
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        block(b);
    }
    for item in body
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        block(item);
        for b in item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            block(b);
        }
    }
    if let Some(message) = body.pointer("/choices/0/message") {
        text.push_str(message.get("content").and_then(Value::as_str).unwrap_or(""));
        for call in message
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = call.pointer("/function/name").and_then(Value::as_str) {
                tools.push(name.to_string());
            }
        }
    }
    (text, tools)
}

#[cfg(test)]
mod tests {
    /// A recorded refusal says so, with its status and the provider's
    /// words.
    #[test]
    fn a_refusal_shows_its_status_and_words() {
        let line = r#"{"kind": "exchange", "turn": 2, "request": {"path": "/v1/chat/completions", "contains": []}, "response": {"status": 400, "body": {"error": {"message": "exceeds the context size"}}}}"#;
        let text = super::render(line);
        assert!(
            text.contains("turn 2 · POST /v1/chat/completions · refused (HTTP 400)"),
            "{text}"
        );
        assert!(text.contains("exceeds the context size"), "{text}");
    }
}
