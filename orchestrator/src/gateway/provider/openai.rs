//! OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM, llama.cpp's
//! server, OpenRouter): the request body for a conversation, and the
//! answer decoded into the gateway's common events, from streamed
//! `chat.completion.chunk`s or a whole `chat.completion`. Streamed
//! tool-call arguments arrive as text split across many chunks, keyed by
//! the call's index; only the first chunk of a call carries its id and
//! name.

use serde_json::{Value, json};
use swarm_protocol::agent::{Block, Message, Role, StopReason};

use super::{Ask, Defaults, Provider};
use crate::gateway::Secret;
use crate::gateway::config::{ModelConfig, ToolChoice};
use crate::gateway::schema_calls;
use crate::gateway::stream::{Failure, Slot, StreamEvent};

/// OpenAI-style Chat Completions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenAi;

impl Provider for OpenAi {
    fn defaults(&self) -> Defaults {
        Defaults {
            base_url: "https://api.openai.com/v1",
            api_key_env: "OPENAI_API_KEY",
        }
    }

    fn body(&self, config: &ModelConfig, ask: &Ask<'_>) -> Value {
        body(&config.base_url, &config.model, ask)
    }

    fn request(
        &self,
        http: &reqwest::Client,
        config: &ModelConfig,
        key: Option<&Secret>,
        _stream: bool,
    ) -> reqwest::RequestBuilder {
        let mut r = http.post(format!("{}/chat/completions", config.base_url));
        if let Some(key) = key {
            r = r.bearer_auth(key.expose());
        }
        r
    }

    fn decode(&self, _event: &str, data: &str) -> Result<Vec<StreamEvent>, Failure> {
        decode(data)
    }

    fn decode_whole(&self, response: &Value) -> Result<Vec<StreamEvent>, Failure> {
        decode_whole(response)
    }

    // Some OpenAI-compatible servers end without `[DONE]` after the finish
    // reason: the answer is whole.
    fn stop_ends_stream(&self) -> bool {
        true
    }
}

/// The body of a `POST /chat/completions`.
fn body(base_url: &str, model: &str, ask: &Ask<'_>) -> Value {
    let tools: Vec<Value> = ask
        .tools
        .iter()
        .map(|t| {
            json!({"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.input_schema,
            }})
        })
        .collect();
    // Tool calls asked for as a schema: the tools are in the system
    // prompt, the conversation is text (see `schema_calls`).
    let by_schema = ask.tool_choice == ToolChoice::Schema && !ask.tools.is_empty();
    let mut system = ask.system.to_string();
    if by_schema {
        system.push_str(&schema_calls::tools_prompt(ask.tools));
    }
    let mut out = vec![json!({"role": "system", "content": system})];
    for m in ask.messages {
        if by_schema {
            push_as_text(&mut out, m);
        } else {
            push_message(&mut out, m);
        }
    }
    let tools = if by_schema { Vec::new() } else { tools };
    let mut body = json!({
        "model": model,
        "messages": out,
        "tools": tools,
        "stream": ask.stream,
        // Newer OpenAI models take only this name...
        "max_completion_tokens": ask.max_tokens,
    });
    // ...and refuse the older one, which Ollama and llama.cpp's server
    // still need.
    if !base_url.contains("api.openai.com") {
        body["max_tokens"] = json!(ask.max_tokens);
    }
    if let Some(t) = ask.temperature {
        body["temperature"] = json!(t);
    }
    if ask.tool_choice == ToolChoice::Required && !ask.tools.is_empty() {
        body["tool_choice"] = json!("required");
    }
    if by_schema {
        body["response_format"] = json!({"type": "json_schema",
            "json_schema": {"name": "tool_call", "schema": schema_calls::call_schema(ask.tools),
                            "strict": false}});
    }
    // Not `strict`: OpenAI's strict mode refuses any schema with an
    // optional property, and the plan's have them; the schema still
    // guides the model, and llama.cpp's server makes it a grammar.
    if let Some(format) = ask.format {
        body["response_format"] = json!({"type": "json_schema",
            "json_schema": {"name": format.name, "schema": format.schema, "strict": false}});
    }
    // A stream reports usage only when asked; the API refuses the option
    // on a request that does not stream (whose answer always has usage).
    if ask.stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn push_message(out: &mut Vec<Value>, m: &Message) {
    let text: Vec<&str> = m
        .content
        .iter()
        .filter_map(|b| match b {
            Block::Text { text } if !text.is_empty() => Some(text.as_str()),
            _ => None,
        })
        .collect();
    match m.role {
        Role::Assistant => {
            let calls: Vec<Value> = m
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolCall {
                        id,
                        name,
                        input,
                        invalid_input,
                    } => {
                        // What the model really sent, even if malformed.
                        let arguments = invalid_input
                            .as_ref()
                            .map_or_else(|| input.to_string(), |bad| bad.raw.clone());
                        Some(json!({"id": id, "type": "function",
                                    "function": {"name": name, "arguments": arguments}}))
                    }
                    _ => None,
                })
                .collect();
            // Always a string, `""` beside tool calls: OpenAI allows `null`
            // there, but servers people run locally (llama-cpp-python's)
            // refuse it, and `""` means the same to every one.
            let content = Value::String(text.join("\n"));
            let mut msg = json!({"role": "assistant", "content": content});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            out.push(msg);
        }
        Role::User => {
            // Tool results must directly follow the assistant message.
            for b in &m.content {
                if let Block::ToolResult {
                    id,
                    content,
                    is_error,
                } = b
                {
                    let content = if *is_error {
                        format!("Error: {content}")
                    } else {
                        content.clone()
                    };
                    out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
                }
            }
            if !text.is_empty() {
                out.push(json!({"role": "user", "content": text.join("\n\n")}));
            }
        }
    }
}

/// `m` as plain text turns (tool calls as their JSON, results as the
/// user's words), for tool calls asked for as a schema.
fn push_as_text(out: &mut Vec<Value>, m: &Message) {
    let text: Vec<String> = m
        .content
        .iter()
        .filter_map(|b| match b {
            Block::Text { text } if !text.is_empty() => Some(text.clone()),
            Block::Text { .. } => None,
            Block::ToolCall { name, input, .. } => Some(schema_calls::call_text(name, input)),
            Block::ToolResult {
                id,
                content,
                is_error,
            } => Some(schema_calls::result_text(id, content, *is_error)),
        })
        .collect();
    let role = match m.role {
        Role::Assistant => "assistant",
        Role::User => "user",
    };
    out.push(json!({"role": role, "content": text.join("\n\n")}));
}

/// One SSE `data:` payload as common events.
fn decode(data: &str) -> Result<Vec<StreamEvent>, Failure> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(vec![StreamEvent::Done]);
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Failure::transient(format!("the model sent an unreadable chunk: {e}")))?;
    let mut out = Vec::new();
    // A chunk without choices may still carry the usage.
    if let Some(choice) = common(&v, &mut out)? {
        message(&choice["delta"], false, &mut out);
        finish(choice, &mut out);
    }
    Ok(out)
}

/// A whole `chat.completion` as common events.
fn decode_whole(v: &Value) -> Result<Vec<StreamEvent>, Failure> {
    let mut out = Vec::new();
    let Some(choice) = common(v, &mut out)? else {
        return Err(Failure::transient(
            "the model's answer has no choices (not a chat completion)",
        ));
    };
    message(&choice["message"], true, &mut out);
    finish(choice, &mut out);
    Ok(out)
}

/// What a chunk and a whole completion share: an error in place of an
/// answer, the usage, the first choice.
fn common<'v>(v: &'v Value, out: &mut Vec<StreamEvent>) -> Result<Option<&'v Value>, Failure> {
    if let Some(error) = v.get("error") {
        return Err(reported(error));
    }
    if let Some(usage) = v.get("usage").filter(|u| u.is_object()) {
        out.push(StreamEvent::Usage {
            input: Some(usage["prompt_tokens"].as_u64().unwrap_or(0)),
            output: Some(usage["completion_tokens"].as_u64().unwrap_or(0)),
            // OpenAI caches long prompts on its own and says how much it
            // read; writing costs nothing extra.
            cache_read: Some(
                usage
                    .pointer("/prompt_tokens_details/cached_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            ),
            cache_write: None,
        });
    }
    Ok(v["choices"].get(0))
}

/// The text and tool calls of a streamed `delta` or a `whole` message. In a
/// whole message the calls are in order and complete, so their position
/// is their slot; in a stream it is the `index` they carry.
fn message(m: &Value, whole: bool, out: &mut Vec<StreamEvent>) {
    if let Some(text) = m["content"].as_str().filter(|t| !t.is_empty()) {
        out.push(StreamEvent::Text {
            slot: Slot::Text,
            text: text.to_string(),
        });
    }
    for (position, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
        let index = if whole {
            position as u64
        } else {
            call["index"].as_u64().unwrap_or(0)
        };
        let slot = Slot::Tool(index);
        let function = &call["function"];
        out.push(StreamEvent::ToolStart {
            slot,
            id: call["id"].as_str().map(str::to_string),
            name: function["name"].as_str().map(str::to_string),
        });
        // Arguments are JSON text; some servers send the object itself.
        let piece = match &function["arguments"] {
            Value::String(text) => Some(text.clone()),
            Value::Object(_) => Some(function["arguments"].to_string()),
            _ => None,
        };
        if let Some(piece) = piece {
            out.push(StreamEvent::ToolArgs { slot, piece });
        }
    }
}

fn finish(choice: &Value, out: &mut Vec<StreamEvent>) {
    if let Some(reason) = choice["finish_reason"].as_str() {
        out.push(StreamEvent::Stop(finish_reason(reason)));
    }
}

fn finish_reason(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        _ => StopReason::Other,
    }
}

/// An `error` object a server sent in a stream or in place of an answer.
/// Such servers give no kind that says whether waiting would help, so it
/// is worth a retry.
fn reported(error: &Value) -> Failure {
    Failure::transient(format!(
        "the model reported an error: {}",
        error["message"].as_str().unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_across_chunks_are_joined_by_index() {
        use crate::gateway::stream::Assembler;
        let mut a = Assembler::default();
        let mut sink = |_: &str| {};
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"write_file","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"bash","arguments":"{\"comm"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"path\":\"x\","}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"content\":\"y\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"and\":\"ls\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9}}"#,
        ];
        for c in chunks {
            let decoded = decode(c).unwrap();
            assert!(!decoded.contains(&StreamEvent::Done));
            a.apply_all(decoded, &mut sink);
        }
        assert_eq!(decode("[DONE]").unwrap(), [StreamEvent::Done]);
        let answer = a.finish();
        assert_eq!(answer.usage.total(), 16);
        assert_eq!(answer.content.len(), 2);
        assert!(
            matches!(&answer.content[0], Block::ToolCall { id, input, .. } if id == "call_a" && input["content"] == "y")
        );
        assert!(
            matches!(&answer.content[1], Block::ToolCall { input, .. } if input["command"] == "ls")
        );
    }

    #[test]
    fn a_whole_completion_makes_the_same_answer_as_its_stream() {
        use crate::gateway::stream::Assembler;
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Looking."}}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"read_file","arguments":"{\"path\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"a\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"bash","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9}}"#,
            "[DONE]",
        ];
        let mut streamed = Assembler::default();
        for c in chunks {
            streamed.apply_all(decode(c).unwrap(), &mut |_| {});
        }
        let completion = json!({"id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Looking.",
                "tool_calls": [
                    {"id": "call_a", "type": "function",
                     "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}},
                    // Some servers send the arguments as an object.
                    {"id": "call_b", "type": "function",
                     "function": {"name": "bash", "arguments": {}}}]}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16}});
        let mut whole = Assembler::default();
        whole.apply_all(decode_whole(&completion).unwrap(), &mut |_| {});
        let answer = whole.finish();
        assert_eq!(answer.content.len(), 3);
        assert_eq!(answer, streamed.finish());

        let error = json!({"error": {"message": "upstream failed", "code": 502}});
        assert!(matches!(
            decode_whole(&error),
            Err(Failure::Transient { message, .. }) if message.contains("upstream failed")
        ));
        assert!(decode_whole(&json!({"object": "list", "data": []})).is_err());
    }

    /// A plain request of `messages`: no tools, no shape, ten tokens.
    fn ask(messages: &[Message], stream: bool) -> Ask<'_> {
        Ask {
            temperature: None,
            format: None,
            tool_choice: Default::default(),
            system: "sys",
            tools: &[],
            messages,
            max_tokens: 10,
            stream,
        }
    }

    #[test]
    fn tool_results_become_tool_messages_before_user_text() {
        let m = Message {
            role: Role::User,
            content: vec![
                Block::ToolResult {
                    id: "c1".into(),
                    content: "boom".into(),
                    is_error: true,
                },
                Block::Text {
                    text: "verify failed".into(),
                },
            ],
        };
        let body = body("http://localhost:11434/v1", "m", &ask(&[m], true));
        assert_eq!(body["max_tokens"], 10);
        let msgs = body["messages"].as_array().cloned().unwrap_or_default();
        assert_eq!(msgs[1]["role"], "tool");
        assert_eq!(msgs[1]["content"], "Error: boom");
        assert_eq!(msgs[2]["role"], "user");
    }

    /// An assistant turn of tool calls only is sent with `"content": ""`,
    /// never `null`, which llama-cpp-python's server refuses (HTTP 500).
    #[test]
    fn an_assistant_turn_of_tool_calls_only_has_empty_string_content() {
        let m = Message {
            role: Role::Assistant,
            content: vec![Block::ToolCall {
                id: "c1".into(),
                name: "bash".into(),
                input: json!({"command": "ls"}),
                invalid_input: None,
            }],
        };
        let body = body("http://localhost:8080/v1", "m", &ask(&[m], false));
        let msgs = body["messages"].as_array().cloned().unwrap_or_default();
        assert_eq!(msgs[1]["role"], "assistant");
        assert_eq!(msgs[1]["content"], "");
        assert_eq!(msgs[1]["tool_calls"][0]["function"]["name"], "bash");
    }

    /// A required shape is `response_format` with its JSON schema (not
    /// strict: the plan's schema has optional keys); a required tool call
    /// is `tool_choice: "required"`, only when there are tools.
    #[test]
    fn a_shape_and_a_required_tool_call_are_asked_for() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let tools = [swarm_protocol::agent::ToolSpec {
            name: "bash".into(),
            description: "d".into(),
            input_schema: json!({"type": "object"}),
        }];
        let mut ask = Ask {
            format: Some(crate::gateway::provider::Format {
                name: "plan",
                schema: &schema,
            }),
            tool_choice: crate::gateway::config::ToolChoice::Required,
            ..ask(&[], false)
        };
        let shaped = body("http://127.0.0.1:8080/v1", "m", &ask);
        assert_eq!(shaped["response_format"]["type"], "json_schema");
        assert_eq!(shaped["response_format"]["json_schema"]["name"], "plan");
        assert_eq!(shaped["response_format"]["json_schema"]["schema"], schema);
        assert!(
            shaped.get("tool_choice").is_none(),
            "no tools: no tool_choice"
        );
        ask.format = None;
        ask.tools = &tools;
        let required = body("http://127.0.0.1:8080/v1", "m", &ask);
        assert_eq!(required["tool_choice"], "required");
        assert!(required.get("response_format").is_none());
    }

    /// `tool_choice = "schema"`: no `tools`, the tools in the system
    /// prompt, the call's schema as `response_format`, and the
    /// conversation as text turns (a call as its JSON, a result as the
    /// user's words), which a chat template without tools renders.
    #[test]
    fn a_call_asked_for_as_a_schema_is_all_text_and_a_response_format() {
        let tools = [swarm_protocol::agent::ToolSpec {
            name: "bash".into(),
            description: "Runs a command.".into(),
            input_schema: json!({"type": "object"}),
        }];
        let turns = [
            Message {
                role: Role::Assistant,
                content: vec![Block::ToolCall {
                    id: "call_1".into(),
                    name: "bash".into(),
                    input: json!({"command": "ls"}),
                    invalid_input: None,
                }],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    id: "call_1".into(),
                    content: "README.md".into(),
                    is_error: false,
                }],
            },
        ];
        let ask = Ask {
            tools: &tools,
            tool_choice: ToolChoice::Schema,
            ..ask(&turns, true)
        };
        let body = body("http://127.0.0.1:8080/v1", "m", &ask);
        assert_eq!(body["tools"], json!([]));
        assert!(body.get("tool_choice").is_none());
        assert_eq!(body["response_format"]["json_schema"]["name"], "tool_call");
        assert_eq!(
            body["response_format"]["json_schema"]["schema"]["anyOf"][0]["properties"]["tool"]["const"],
            "bash"
        );
        let msgs = body["messages"].as_array().cloned().unwrap_or_default();
        assert!(
            msgs[0]["content"]
                .as_str()
                .unwrap()
                .contains("- bash: Runs a command.")
        );
        assert_eq!(msgs[1]["role"], "assistant");
        assert_eq!(
            msgs[1]["content"],
            r#"{"input":{"command":"ls"},"tool":"bash"}"#
        );
        assert!(msgs[1].get("tool_calls").is_none());
        assert_eq!(msgs[2]["role"], "user");
        assert_eq!(
            msgs[2]["content"],
            "The tool call call_1 returned:\nREADME.md"
        );
    }
}
