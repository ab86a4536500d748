//! The HTTP side of the mock: accepting connections, recording and checking
//! each request, applying the rate limit, and turning a [`Reply`] into a
//! response (an SSE stream or a whole JSON answer, either of which may
//! finish, abort or hang; or an error).

use std::collections::HashMap;
use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{
    Call, Options, Part, Reply, Stats, Wire, anthropic, blank_call, invariants, openai, responses,
};

pub(super) type Script = Box<dyn Fn(&Call) -> Reply + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub(super) struct Shared {
    pub(super) options: Options,
    pub(super) script: Script,
    pub(super) start: Instant,
    pub(super) log: Mutex<Log>,
}

#[derive(Default)]
pub(super) struct Log {
    pub(super) calls: Vec<Call>,
    pub(super) violations: Vec<String>,
    pub(super) stats: Stats,
    attempts: HashMap<(String, usize), u32>,
    /// Per conversation, the earliest instant a retry-after allows.
    retry_not_before: HashMap<String, Instant>,
    /// The current rate-limit window and the requests counted in it.
    window: (u64, u32),
    /// What Anthropic requests left in the prompt cache.
    cache: super::cache::PromptCache,
}

pub(super) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of descriptors, say: back off rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(Arc::clone(&shared), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (head, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(shared.respond(&head, &bytes))
}

impl Shared {
    pub(super) fn log(&self) -> MutexGuard<'_, Log> {
        // A panicking test thread must not hide the log from the others.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn respond(&self, head: &hyper::http::request::Parts, bytes: &[u8]) -> Response<Body> {
        let now = Instant::now();
        let path = head.uri.path();
        let route = match (&head.method, path) {
            (&Method::POST, "/v1/messages") => Some(Wire::Anthropic),
            (&Method::POST, "/v1/chat/completions") => Some(Wire::OpenAi),
            (&Method::POST, "/v1/responses") => Some(Wire::Responses),
            _ => None,
        };
        let wire = route.unwrap_or(if path.contains("chat") {
            Wire::OpenAi
        } else {
            Wire::Anthropic
        });
        let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
        if head.method == Method::POST && path == "/v1/messages/count_tokens" {
            return self.count_tokens(&head.headers, parsed.as_ref(), bytes.len());
        }
        let mut problems = Vec::new();
        let mut call = match (&parsed, wire) {
            (Some(body), Wire::Anthropic) => anthropic::call(body),
            (Some(body), Wire::OpenAi) => openai::call(body),
            (Some(body), Wire::Responses) => responses::call(body),
            (None, _) => blank_call(wire),
        };
        call.stream = parsed.as_ref().is_some_and(|b| b["stream"] == true);
        match (route, &parsed) {
            (None, _) => problems.push(format!("{} {path} is not a model API route", head.method)),
            (Some(_), None) => problems.push("body is not JSON".to_owned()),
            (Some(wire), Some(body)) => {
                invariants::check(wire, &head.headers, body, &self.options, &mut problems)
            }
        }

        let mut log = self.log();
        call.index = log.calls.len();
        log.stats.requests += 1;
        let attempt = log
            .attempts
            .entry((call.conversation.clone(), call.turn))
            .or_default();
        *attempt += 1;
        call.attempt = *attempt;
        if let Some(&allowed) = log.retry_not_before.get(&call.conversation)
            && now < allowed
            && !call.conversation.is_empty()
        {
            log.stats.early_retries += 1;
            problems.push(format!(
                "early retry: {} ms before the last retry-after allowed",
                (allowed - now).as_millis()
            ));
        }
        let limited = match (route, &parsed) {
            (Some(_), Some(_)) => self.over_rate_limit(&mut log, now),
            _ => None,
        };
        let prefix = format!("request {} ({} {path})", call.index, wire_name(wire));
        for p in problems {
            log.violations.push(format!("{prefix}: {p}"));
        }
        log.calls.push(call.clone());
        if route.is_none() {
            return error(wire, 404, None, "no such route");
        }
        if parsed.is_none() {
            return error(wire, 400, None, "body is not JSON");
        }
        if let Some(retry_after) = limited {
            log.stats.rate_limited += 1;
            log.retry_not_before
                .insert(call.conversation, now + Duration::from_secs(retry_after));
            return error(
                wire,
                429,
                Some(retry_after),
                "rate limited by the mock model",
            );
        }
        drop(log);

        // The script runs unlocked, so a slow one doesn't serialise requests.
        let reply = catch_unwind(AssertUnwindSafe(|| (self.script)(&call))).unwrap_or_else(|_| {
            self.log()
                .violations
                .push(format!("{prefix}: the mock's script panicked"));
            Reply::status(500, "mock script panicked")
        });
        let mut log = self.log();
        match &reply {
            Reply::Status {
                code: 429,
                retry_after: Some(secs),
                ..
            } => {
                log.retry_not_before
                    .insert(call.conversation.clone(), now + Duration::from_secs(*secs));
            }
            Reply::Status { .. } => {}
            Reply::Answer { .. } | Reply::Cut { .. } | Reply::Hang => log.stats.accepted += 1,
        }
        drop(log);
        self.reply(&call, reply)
    }

    /// Token counting, as Anthropic's API answers it (about four bytes a
    /// token): the key and body checked like a call's, but no turn of a
    /// conversation.
    fn count_tokens(
        &self,
        headers: &hyper::HeaderMap,
        body: Option<&Value>,
        len: usize,
    ) -> Response<Body> {
        let mut problems = Vec::new();
        match body {
            None => problems.push("body is not JSON".to_owned()),
            Some(body) => {
                invariants::check(Wire::Anthropic, headers, body, &self.options, &mut problems)
            }
        }
        // A count has no `max_tokens` and does not stream, as every call
        // the options describe must.
        problems.retain(|p| !p.starts_with("max tokens is") && !p.starts_with("stream is"));
        let mut log = self.log();
        log.stats.requests += 1;
        log.stats.count_tokens += 1;
        let n = log.stats.count_tokens;
        for p in problems {
            log.violations.push(format!("count_tokens {n}: {p}"));
        }
        drop(log);
        let body = json!({"input_tokens": len / 4}).to_string();
        let body = Full::new(Bytes::from(body)).map_err(|never: Infallible| match never {});
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(body.boxed_unsync())
            .expect("200 response")
    }

    /// Counts the request in its fixed one-second window; the retry-after in
    /// whole seconds if the window is already full.
    fn over_rate_limit(&self, log: &mut Log, now: Instant) -> Option<u64> {
        let limit = self.options.rate_limit?;
        let elapsed = now - self.start;
        let window = elapsed.as_secs();
        if log.window.0 != window {
            log.window = (window, 0);
        }
        log.window.1 += 1;
        (log.window.1 > limit).then(|| {
            let left = Duration::from_secs(window + 1) - elapsed;
            left.as_millis().div_ceil(1000).max(1) as u64
        })
    }

    fn reply(&self, call: &Call, reply: Reply) -> Response<Body> {
        let model = self.options.model.as_str();
        // Billed as the provider would, cache and all.
        let split = (self.options.prompt_cache && call.wire == Wire::Anthropic)
            .then(|| self.log().cache.bill(&call.body));
        let reply = match (reply, split) {
            (
                Reply::Answer {
                    parts,
                    output_tokens,
                    ..
                },
                Some(split),
            ) => Reply::Answer {
                parts,
                input_tokens: split.uncached,
                output_tokens,
            },
            (reply, _) => reply,
        };
        let cached = split.unwrap_or_default();
        let events = |parts: &[Part], input: u64, output: u64| match call.wire {
            Wire::Anthropic => anthropic::events(model, call.index, parts, input, output, cached),
            Wire::OpenAi => {
                let usage = call.body["stream_options"]["include_usage"] == json!(true);
                openai::events(model, call.index, parts, input, output, usage)
            }
            Wire::Responses => responses::events(model, call.index, parts, input, output),
        };
        let whole = |parts: &[Part], input: u64, output: u64| {
            let answer = match call.wire {
                Wire::Anthropic => {
                    anthropic::message(model, call.index, parts, input, output, cached)
                }
                Wire::OpenAi => openai::completion(model, call.index, parts, input, output),
                Wire::Responses => responses::whole(model, call.index, parts, input, output),
            };
            Bytes::from(answer.to_string())
        };
        let kind = if call.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        match reply {
            Reply::Answer {
                parts,
                input_tokens,
                output_tokens,
            } if call.stream => ok_response(
                events(&parts, input_tokens, output_tokens),
                End::Finish,
                kind,
            ),
            Reply::Answer {
                parts,
                input_tokens,
                output_tokens,
            } => ok_response(
                vec![whole(&parts, input_tokens, output_tokens)],
                End::Finish,
                kind,
            ),
            Reply::Cut {
                parts,
                after_events,
            } if call.stream => {
                let mut events = events(&parts, 10, 10);
                events.truncate(after_events);
                ok_response(events, End::Abort, kind)
            }
            Reply::Cut { parts, .. } => {
                let answer = whole(&parts, 10, 10);
                ok_response(vec![answer.slice(..answer.len() / 2)], End::Abort, kind)
            }
            Reply::Hang => ok_response(Vec::new(), End::Hang, kind),
            Reply::Status {
                code,
                retry_after,
                body,
            } => error(call.wire, code, retry_after, &body),
        }
    }
}

fn wire_name(wire: Wire) -> &'static str {
    match wire {
        Wire::Anthropic => "anthropic",
        Wire::OpenAi => "openai",
        Wire::Responses => "responses",
    }
}

enum End {
    Finish,
    /// Fail the body, which makes hyper drop the connection without the
    /// terminating chunk.
    Abort,
    Hang,
}

/// A 200 response of `kind` sending `chunks`, then ending as `end` says.
fn ok_response(chunks: Vec<Bytes>, end: End, kind: &str) -> Response<Body> {
    let stream = futures_util::stream::unfold(
        (chunks.into_iter(), end, false),
        |(mut chunks, end, aborted)| async move {
            if let Some(chunk) = chunks.next() {
                return Some((Ok(Frame::data(chunk)), (chunks, end, aborted)));
            }
            match end {
                End::Finish => None,
                End::Hang => std::future::pending().await,
                End::Abort if aborted => None,
                End::Abort => {
                    // Pending for a moment lets hyper flush the chunks sent so
                    // far before it tears the connection down.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let err = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "mock model cut the stream",
                    );
                    Some((Err(err), (chunks, end, true)))
                }
            }
        },
    );
    Response::builder()
        .status(200)
        .header("content-type", kind)
        .header("cache-control", "no-cache")
        .body(StreamBody::new(stream).boxed_unsync())
        .expect("200 response")
}

fn error(wire: Wire, code: u16, retry_after: Option<u64>, message: &str) -> Response<Body> {
    let body = match serde_json::from_str::<Value>(message) {
        Ok(v @ Value::Object(_)) => v,
        _ => match wire {
            Wire::Anthropic => anthropic::error_body(code, message),
            Wire::OpenAi | Wire::Responses => openai::error_body(code, message),
        },
    };
    let mut response = Response::builder()
        .status(code)
        .header("content-type", "application/json");
    if let Some(secs) = retry_after {
        response = response.header("retry-after", secs.to_string());
    }
    let body = Full::new(Bytes::from(body.to_string())).map_err(|never: Infallible| match never {});
    response.body(body.boxed_unsync()).expect("error response")
}
