//! Self-tests of the mock model server, driven by a hand-written HTTP/1.1
//! client over std TCP so that they depend on nothing the mock is meant to
//! test (the coordinator's own client).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::model::{MockModel, Options, Reply, text, tool};

struct Resp {
    status: u16,
    head: String,
    body: String,
    /// Whether the chunked body ended with its terminating chunk.
    complete: bool,
}

fn send(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &Value) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.to_string();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        req += &format!("{name}: {value}\r\n");
    }
    req += "\r\n";
    req += &body;
    stream.write_all(req.as_bytes()).unwrap();
    stream
}

fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    let mut raw = Vec::new();
    // A cut stream may end in a reset: keep whatever arrived before it.
    let _ = send(addr, path, headers, body).read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec())
        .unwrap()
        .to_lowercase();
    let mut rest = &raw[split + 4..];
    let (mut body, mut complete) = (Vec::new(), !head.contains("transfer-encoding: chunked"));
    if complete {
        body = rest.to_vec();
    }
    while !complete {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        complete = size == 0;
        let Some(chunk) = rest.get(eol + 2..eol + 2 + size) else {
            break;
        };
        body.extend_from_slice(chunk);
        rest = rest.get(eol + 4 + size..).unwrap_or_default();
    }
    Resp {
        status: head[9..12].parse().unwrap(),
        head,
        body: String::from_utf8(body).unwrap(),
        complete,
    }
}

const ANTHROPIC: &[(&str, &str)] = &[("x-api-key", "k"), ("anthropic-version", "2023-06-01")];
const OPENAI: &[(&str, &str)] = &[("authorization", "Bearer k")];

fn options() -> Options {
    Options {
        api_key: Some("k".into()),
        ..Options::new("mock")
    }
}

fn anthropic_body(messages: Value) -> Value {
    json!({"model": "mock", "max_tokens": 100, "stream": true, "system": "be brief", "messages": messages,
           "tools": [{"name": "read", "description": "Read a file", "input_schema": {"type": "object"}}]})
}

fn openai_body(messages: Value) -> Value {
    json!({"model": "mock", "max_completion_tokens": 100, "stream": true,
           "stream_options": {"include_usage": true}, "messages": messages,
           "tools": [{"type": "function", "function": {"name": "read", "description": "Read a file",
                      "parameters": {"type": "object"}}}]})
}

/// The JSON of every `data:` line.
fn data(body: &str) -> Vec<Value> {
    let lines = body.lines().filter_map(|l| l.strip_prefix("data: "));
    lines
        .map(|d| serde_json::from_str(d).unwrap_or(json!(d)))
        .collect()
}

fn tool_then_done(call: &crate::support::model::Call) -> Reply {
    match call.turn {
        0 => Reply::Answer {
            parts: vec![
                text("reading it"),
                tool("t1", "read", json!({"path": "a.txt"})),
            ],
            input_tokens: 11,
            output_tokens: 7,
        },
        _ => Reply::text("done"),
    }
}

#[test]
fn anthropic_streams_text_and_split_tool_args() {
    let mock = MockModel::start(options(), tool_then_done);
    let first = post(
        mock.addr(),
        "/v1/messages",
        ANTHROPIC,
        &anthropic_body(json!([{"role": "user", "content": "task"}])),
    );
    assert_eq!(first.status, 200);
    assert!(first.head.contains("content-type: text/event-stream") && first.complete);
    let events: Vec<&str> = first
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    let data = data(&first.body);
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 11);
    let args: Vec<&str> = data
        .iter()
        .filter_map(|d| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(args.len(), 3);
    assert_eq!(
        serde_json::from_str::<Value>(&args.concat()).unwrap(),
        json!({"path": "a.txt"})
    );
    let end = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(
        (&end["delta"]["stop_reason"], &end["usage"]["output_tokens"]),
        (&json!("tool_use"), &json!(7))
    );

    let messages = json!([{"role": "user", "content": "task"},
        {"role": "assistant", "content": [{"type": "text", "text": "reading it"},
            {"type": "tool_use", "id": "t1", "name": "read", "input": {"path": "a.txt"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "hi"}]}]);
    let second = post(
        mock.addr(),
        "/v1/messages",
        ANTHROPIC,
        &anthropic_body(messages),
    );
    assert!(second.body.contains(r#""stop_reason":"end_turn""#));
    let call = &mock.calls()[1];
    assert_eq!(
        (call.conversation.as_str(), call.turn, call.attempt),
        ("task", 1, 1)
    );
    assert_eq!(
        (call.tool_results[0].id.as_str(), call.system.as_str()),
        ("t1", "be brief")
    );
    mock.assert_clean();
}

#[test]
fn openai_streams_text_and_split_tool_args() {
    let mock = MockModel::start(options(), tool_then_done);
    let messages =
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "task"}]);
    let resp = post(
        mock.addr(),
        "/v1/chat/completions",
        OPENAI,
        &openai_body(messages),
    );
    assert!(resp.status == 200 && resp.complete);
    let data = data(&resp.body);
    assert_eq!(
        data[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let calls: Vec<&Value> = data
        .iter()
        .filter_map(|d| d["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        (&calls[0]["id"], &calls[0]["function"]["name"]),
        (&json!("t1"), &json!("read"))
    );
    assert!(calls[1].get("id").is_none());
    let args: String = calls
        .iter()
        .map(|c| c["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"path": "a.txt"})
    );
    let n = data.len();
    assert_eq!(data[n - 3]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(data[n - 2]["usage"]["total_tokens"], 18);
    assert_eq!(data[n - 1], "[DONE]");
    mock.assert_clean();
}

#[test]
fn invariants_catch_orphan_results_and_unanswered_calls() {
    let mock = MockModel::start(options(), |_| Reply::text("ok"));
    let orphan = json!([{"role": "user", "content": "task"}, {"role": "assistant", "content": "sure"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t9", "content": "x"}]}]);
    post(
        mock.addr(),
        "/v1/messages",
        ANTHROPIC,
        &anthropic_body(orphan),
    );
    let unanswered = json!([{"role": "user", "content": "task"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "read", "arguments": "{}"}}]},
        {"role": "user", "content": "well?"}]);
    post(
        mock.addr(),
        "/v1/chat/completions",
        &[("authorization", "Bearer nope")],
        &openai_body(unanswered),
    );
    let violations = mock.violations();
    assert_eq!(violations.len(), 3, "{violations:#?}");
    insta::assert_snapshot!(violations.join("\n"), @r#"
    request 0 (anthropic /v1/messages): messages[2].content[0]: orphan tool_result "t9": no such tool_use in the previous assistant message
    request 1 (openai /v1/chat/completions): authorization header is Some("Bearer nope"), expected "Bearer k"
    request 1 (openai /v1/chat/completions): messages[1]: tool call "c1" is unanswered (no tool message before the next turn)
    "#);
}

#[test]
fn rate_limit_answers_429_and_detects_early_retries() {
    let mock = MockModel::start(
        Options {
            rate_limit: Some(1),
            ..options()
        },
        |_| Reply::text("ok"),
    );
    let body = anthropic_body(json!([{"role": "user", "content": "task"}]));
    let post = || post(mock.addr(), "/v1/messages", ANTHROPIC, &body);
    // Two requests may straddle a window boundary; a third can't also.
    let limited = (0..3).map(|_| post()).find(|r| r.status == 429).unwrap();
    assert!(limited.head.contains("retry-after: 1"), "{}", limited.head);
    assert!(limited.body.contains("rate_limit_error"));
    post(); // too early
    assert_eq!(mock.stats().early_retries, 1);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(post().status, 200);
    let stats = mock.stats();
    assert_eq!(
        (stats.early_retries, stats.requests),
        (1, stats.accepted + stats.rate_limited)
    );
    let violations = mock.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    // Which request it is (the limit's window may start at the second)
    // and how early it came vary.
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"^request \d+", "request [N]");
    settings.add_filter(r"\d+ ms before", "[N] ms before");
    settings.bind(|| insta::assert_snapshot!(violations[0], @"request [N] (anthropic /v1/messages): early retry: [N] ms before the last retry-after allowed"));
}

#[test]
fn cut_aborts_the_stream_and_hang_does_not_block_shutdown() {
    let mock = MockModel::start(options(), |call| match call.conversation.as_str() {
        "cut" => Reply::Cut {
            parts: vec![text("partial answer")],
            after_events: 3,
        },
        _ => Reply::Hang,
    });
    let cut = post(
        mock.addr(),
        "/v1/messages",
        ANTHROPIC,
        &anthropic_body(json!([{"role": "user", "content": "cut"}])),
    );
    assert_eq!(cut.status, 200);
    assert!(!cut.complete, "the stream was not cut: {}", cut.body);
    assert_eq!(cut.body.matches("event: ").count(), 3, "{}", cut.body);

    let body = anthropic_body(json!([{"role": "user", "content": "hang"}]));
    let mut hung = send(mock.addr(), "/v1/messages", ANTHROPIC, &body);
    let mut buf = [0; 1024];
    let n = hung.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    hung.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let err = hung.read(&mut buf).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    assert_eq!(mock.stats().accepted, 2);
    let start = Instant::now();
    drop(mock);
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// `body` asking for a whole answer; OpenAI's loses `stream_options`, which
/// the real API refuses without streaming.
fn unstreamed(mut body: Value) -> Value {
    body["stream"] = json!(false);
    body.as_object_mut().unwrap().remove("stream_options");
    body
}

#[test]
fn requests_that_do_not_stream_get_whole_answers_in_both_wires() {
    let mock = MockModel::start(
        Options {
            stream: Some(false),
            ..options()
        },
        tool_then_done,
    );
    let task = json!([{"role": "user", "content": "task"}]);
    let anthropic = post(
        mock.addr(),
        "/v1/messages",
        ANTHROPIC,
        &unstreamed(anthropic_body(task.clone())),
    );
    assert_eq!(anthropic.status, 200);
    assert!(anthropic.head.contains("content-type: application/json") && anthropic.complete);
    let message: Value = serde_json::from_str(&anthropic.body).unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(
        message["content"][0],
        json!({"type": "text", "text": "reading it"})
    );
    assert_eq!(message["content"][1]["input"], json!({"path": "a.txt"}));
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["usage"]["output_tokens"], 7);

    let messages =
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "task"}]);
    let openai = post(
        mock.addr(),
        "/v1/chat/completions",
        OPENAI,
        &unstreamed(openai_body(messages)),
    );
    assert!(openai.status == 200 && openai.complete);
    let completion: Value = serde_json::from_str(&openai.body).unwrap();
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["content"], "reading it");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "read");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"path": "a.txt"})
    );
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(completion["usage"]["total_tokens"], 18);
    assert!(mock.calls().iter().all(|c| !c.stream));
    mock.assert_clean();
}

#[test]
fn a_cut_whole_answer_is_half_a_body_on_an_aborted_connection() {
    let mock = MockModel::start(
        Options {
            stream: Some(false),
            ..options()
        },
        |_| Reply::Cut {
            parts: vec![text("partial answer")],
            after_events: 3,
        },
    );
    let cut = post(
        mock.addr(),
        "/v1/messages",
        ANTHROPIC,
        &unstreamed(anthropic_body(json!([{"role": "user", "content": "cut"}]))),
    );
    assert_eq!(cut.status, 200);
    assert!(!cut.complete, "the answer was not cut: {}", cut.body);
    assert!(cut.body.starts_with('{') && serde_json::from_str::<Value>(&cut.body).is_err());
    mock.assert_clean();
}

#[test]
fn invariants_check_the_stream_flag() {
    // Expects streamed requests (the default).
    let mock = MockModel::start(options(), |_| Reply::text("ok"));
    let task = json!([{"role": "user", "content": "task"}]);
    post(
        mock.addr(),
        "/v1/messages",
        ANTHROPIC,
        &unstreamed(anthropic_body(task.clone())),
    );
    let mut not_a_flag = anthropic_body(task.clone());
    not_a_flag["stream"] = json!("yes");
    post(mock.addr(), "/v1/messages", ANTHROPIC, &not_a_flag);
    let violations = mock.violations();
    assert_eq!(violations.len(), 3, "{violations:#?}");
    insta::assert_snapshot!(violations.join("\n"), @r#"
    request 0 (anthropic /v1/messages): stream is false, expected true
    request 1 (anthropic /v1/messages): stream is "yes", not a boolean
    request 1 (anthropic /v1/messages): stream is false, expected true
    "#);
    // An unreadable flag is not a streamed request: the answer came whole.
    assert!(mock.calls().iter().all(|c| !c.stream));

    // Accepts either, but not OpenAI's stream_options without streaming.
    let mock = MockModel::start(
        Options {
            stream: None,
            ..options()
        },
        |_| Reply::text("ok"),
    );
    let mut body = openai_body(task);
    post(mock.addr(), "/v1/chat/completions", OPENAI, &body);
    body["stream"] = json!(false);
    post(mock.addr(), "/v1/chat/completions", OPENAI, &body);
    let violations = mock.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    insta::assert_snapshot!(violations[0], @"request 1 (openai /v1/chat/completions): stream_options on a request that does not stream (the API refuses it)");
    let streamed: Vec<bool> = mock.calls().iter().map(|c| c.stream).collect();
    assert_eq!(streamed, [true, false]);
}
