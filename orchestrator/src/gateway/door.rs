//! The door an agent CLI (Claude Code, Codex, any program that speaks a
//! provider's HTTP API) reaches its model through: an HTTP server on a
//! listener in the task's own network namespace (its only way out), with a
//! token made for one attempt where the API key would be.
//!
//! A call is checked (the token; the task's `max_turns`; its budget, its
//! experiment's and subtree's, the run's) and passed through in the
//! provider's own wire protocol: the body the program sent, with the
//! plan's model name and `max_tokens` lowered to what the budgets have
//! left, the real key in the headers, `anthropic-version` and
//! `anthropic-beta` forwarded. Rate limits are waited out and server
//! errors retried as for swarm's own agent (the model's limiter, slots and
//! pacing shared with every other caller); the answer streams back to the
//! program as it comes while the gateway reads it too, for the usage it
//! settles, the tool calls it tells the live view about and the transcript.
//!
//! Served: Anthropic Messages (`POST /v1/messages`, streamed or whole,
//! and `/v1/messages/count_tokens`) in front of an `anthropic` model, and
//! OpenAI Responses (`POST /v1/responses`) and Chat Completions (`POST
//! /v1/chat/completions`, a stream made to report its usage) in front of
//! an `openai` one; `GET /v1/models` lists the one model. The plan checks that a task's agent speaks its
//! model's protocol.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use swarm_protocol::agent::{Block, StopReason, Usage};

use super::budget::{BudgetScope, Hold};
use super::call::FailedBecause;
use super::config::{Budget, Provider};
use super::door_shapes::Wire;
use super::passing::Reader;
use super::relay::{same, token_of};
use super::reply::Reply;
use super::sse::Events;
use super::stream::{Answer, refuses_the_request};
use super::tape::{Lookup, Recorder, Reel};
use super::transcript::Transcript;
use super::{AgentNote, Endpoint, Gateway, GatewayError, Notes, redact};

type Body = BoxBody<Bytes, std::io::Error>;

/// The largest request body taken (a long conversation with its tools),
/// whatever the task's memory.
const MAX_BODY: usize = 32 << 20;

/// The smallest room for request bodies a door gives, whatever the task's
/// memory: a long conversation of a small task.
const MIN_BODIES: usize = 1 << 20;

/// Of a task's memory, the part its door may hold in request bodies at
/// once (read, then parsed: a parsed body takes several times its bytes).
const BODIES_SHARE: u64 = 16;

/// Most bytes of a whole (non-streamed) answer read.
const MAX_WHOLE: usize = 16 << 20;

/// Most connections one door serves at once.
const MAX_CONNECTIONS: usize = 32;

/// How long a connection may take to send a request's head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What a door serves, for one attempt of one task.
pub struct DoorSettings {
    pub task: String,
    /// The agent CLI's name (for the transcript).
    pub agent: String,
    /// The `[models.NAME]` behind it.
    pub model: String,
    /// The attempt's token: the only credential the program gets.
    pub token: String,
    /// Most model calls (repair rounds included).
    pub max_turns: u32,
    /// The task's own budget.
    pub budget: Budget,
    /// Budgets it shares (its experiment's, its ancestors' subtrees).
    pub groups: Vec<Arc<BudgetScope>>,
    pub transcript: PathBuf,
    pub notes: Option<Notes>,
    /// The attempt's cassette, when the run records or replays.
    pub reel: Option<Arc<Reel>>,
    /// Whether the task has the network: then what the provider would
    /// fetch (a URL source, a file id) passes too.
    pub network: bool,
    /// The task's memory limit, if it has one: what its door may hold in
    /// request bodies at once is a share of it.
    pub memory: Option<u64>,
    /// The person's secrets, never in its transcript.
    pub redact: Option<swarm_worker::Redact>,
    /// Told of each call in flight, for the task's stall watch.
    pub activity: Option<Arc<swarm_worker::Activity>>,
}

/// Why the door refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    MaxTurns,
    Budget,
    /// A replayed run's cassette had no answer to the call.
    NotRecorded,
}

/// What the door saw, once it is closed.
#[derive(Debug, Clone)]
pub struct DoorEnd {
    /// Model calls passed through.
    pub calls: u32,
    pub usage: Usage,
    pub cost_usd: f64,
    /// The first refusal, and why.
    pub refused: Option<(Refused, String)>,
    pub transcript: PathBuf,
}

/// A door for one attempt. Its token is refused once it is closed (or
/// dropped), and its server stops.
pub struct Door {
    state: Arc<State>,
    servers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

struct State {
    gateway: Arc<Gateway>,
    endpoint: Arc<Endpoint>,
    task: String,
    token: String,
    open: AtomicBool,
    max_turns: u32,
    calls: AtomicU32,
    scope: Arc<BudgetScope>,
    groups: Vec<Arc<BudgetScope>>,
    transcript: Mutex<Transcript>,
    refused: Mutex<Option<(Refused, String)>>,
    notes: Option<Notes>,
    reel: Option<Arc<Reel>>,
    network: bool,
    /// Bytes of request bodies the door holds at once, at most: each
    /// request takes its size (or, without one, the most a body may be)
    /// before its first byte is read, and gives it back when it is done.
    bodies: Arc<tokio::sync::Semaphore>,
    /// The most one body may be.
    max_body: usize,
    /// The task's activity its stall watch reads (`None`: not watched).
    activity: Option<Arc<swarm_worker::Activity>>,
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Door")
            .field("task", &self.state.task)
            .finish_non_exhaustive()
    }
}

impl Door {
    /// A door to `settings.model` through `gateway`.
    pub fn new(gateway: Arc<Gateway>, settings: DoorSettings) -> Result<Self, GatewayError> {
        let endpoint = gateway
            .endpoint(&settings.model)
            .ok_or_else(|| GatewayError::UnknownModel(settings.model.clone()))?;
        let mut transcript = Transcript::open(&settings.transcript);
        transcript.redacting(settings.redact.clone());
        let room = settings.memory.map_or(MAX_BODY, |m| {
            usize::try_from(m / BODIES_SHARE).unwrap_or(MAX_BODY)
        });
        let max_body = room.clamp(MIN_BODIES, MAX_BODY);
        transcript.write(
            "start",
            json!({"task": settings.task, "agent": settings.agent, "model": settings.model,
                   "provider_model": endpoint.config.model}),
        );
        Ok(Self {
            state: Arc::new(State {
                scope: Arc::new(BudgetScope::new(
                    format!("task `{}`", settings.task),
                    settings.budget,
                )),
                gateway,
                endpoint,
                task: settings.task,
                token: settings.token,
                open: AtomicBool::new(true),
                max_turns: settings.max_turns,
                calls: AtomicU32::new(0),
                groups: settings.groups,
                transcript: Mutex::new(transcript),
                refused: Mutex::new(None),
                notes: settings.notes,
                reel: settings.reel,
                network: settings.network,
                bodies: Arc::new(tokio::sync::Semaphore::new(max_body)),
                max_body,
                activity: settings.activity,
            }),
            servers: Mutex::new(Vec::new()),
        })
    }

    /// Serves the door on `listener` (made anywhere: in a task's network
    /// namespace, it stays there) until the door closes.
    pub fn serve(&self, listener: std::net::TcpListener) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let state = Arc::clone(&self.state);
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                // Reap the finished ones as we go.
                while connections.try_join_next().is_some() {}
                if connections.len() >= MAX_CONNECTIONS {
                    // A program needs a few; more is a task flooding the
                    // coordinator: wait for one to end.
                    let _ = connections.join_next().await;
                    continue;
                }
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of descriptors, say: not a busy loop.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Answers stream in small writes: Nagle's algorithm would
                // hold each behind the client's delayed ACK (40 ms a call).
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move {
                            // A call in flight, its answer streaming
                            // included, keeps the task from counting as
                            // stalled however quiet its program is.
                            let busy = state.activity.as_ref().map(|a| a.begin());
                            let response = handle(&state, request).await;
                            Ok::<_, Infallible>(response.map(|body| {
                                http_body_util::BodyExt::boxed(body.map_frame(move |frame| {
                                    let _ = &busy;
                                    frame
                                }))
                            }))
                        }
                    });
                    // A connection that sends no whole request head in
                    // time is closed: a task cannot park the door's slots.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        super::lock(&self.servers).push(server);
        Ok(())
    }

    /// Closes the door: its token is worthless from now on, its server
    /// stops, and this is what it saw. The transcript stays open for the
    /// caller's last lines (the verdict, the end).
    pub fn close(&self) -> DoorEnd {
        self.state.open.store(false, Ordering::SeqCst);
        for server in super::lock(&self.servers).drain(..) {
            server.abort();
        }
        let (usage, cost_usd) = self.state.scope.spent();
        DoorEnd {
            calls: self.state.calls.load(Ordering::SeqCst),
            usage,
            cost_usd,
            refused: super::lock(&self.state.refused).clone(),
            transcript: super::lock(&self.state.transcript).path().to_path_buf(),
        }
    }

    /// Writes a line of `kind` to the attempt's transcript (the agent's
    /// own events, a verify verdict).
    pub fn note(&self, kind: &str, entry: Value) {
        super::lock(&self.state.transcript).write(kind, entry);
    }

    /// The transcript's path.
    pub fn transcript(&self) -> PathBuf {
        super::lock(&self.state.transcript).path().to_path_buf()
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        self.state.open.store(false, Ordering::SeqCst);
        for server in super::lock(&self.servers).drain(..) {
            server.abort();
        }
    }
}

/// Which API a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Messages,
    /// Messages in front of a model of another protocol (`translate`).
    MessagesTranslated,
    /// Responses in front of a model of another protocol.
    ResponsesTranslated,
    CountTokens,
    Responses,
    Chat,
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    // Anthropic's shape; OpenAI clients read `error.message` too.
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    let mut response = whole(Bytes::from(body.to_string()), "application/json");
    *response.status_mut() = status;
    response
}

/// The provider's own refusal, given to the program as it came: its
/// status, its `content_type` if it said one, its `body`.
fn as_it_came(
    status: StatusCode,
    content_type: Option<hyper::header::HeaderValue>,
    body: Bytes,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    if let Some(v) = content_type {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

fn json_response(value: &Value) -> Response<Body> {
    whole(Bytes::from(value.to_string()), "application/json")
}

/// A response of `bytes`, all at once, of `content_type`.
fn whole(bytes: Bytes, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// Which API a request for `method` `path` is, with the door's model's
/// provider; or the door's answer when it is none to pass on (its model
/// list, or a 404 that says what it serves).
#[expect(
    clippy::result_large_err,
    reason = "the door's own answer, handed back at once as the response"
)]
fn route(state: &State, method: &Method, path: &str) -> Result<Api, Response<Body>> {
    let provider = state.endpoint.config.provider;
    let path = path.trim_end_matches('/');
    Ok(match (method, path, provider) {
        (&Method::POST, "/v1/messages", Provider::Anthropic) => Api::Messages,
        (&Method::POST, "/v1/messages", _) => Api::MessagesTranslated,
        (&Method::POST, "/v1/messages/count_tokens", Provider::Anthropic) => Api::CountTokens,
        (&Method::POST, "/v1/responses" | "/responses", Provider::Openai) => Api::Responses,
        (&Method::POST, "/v1/responses" | "/responses", _) => Api::ResponsesTranslated,
        (&Method::POST, "/v1/chat/completions" | "/chat/completions", Provider::Openai) => {
            Api::Chat
        }
        (&Method::GET, "/v1/models" | "/models", _) => {
            let model = &state.endpoint.config.model;
            return Err(json_response(&json!({"object": "list", "data": [
                {"id": model, "object": "model", "type": "model", "display_name": model}
            ], "models": []})));
        }
        (method, path, _) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "not_found_error",
                &format!(
                    "swarm's gateway serves no {method} {path} for model `{}` ({}): \
                     POST /v1/messages for an anthropic model, /v1/responses or \
                     /v1/chat/completions for an openai one",
                    state.endpoint.config.name,
                    provider.as_str()
                ),
            ));
        }
    })
}

/// The request's body, a JSON object, and the room it takes; or the
/// door's answer to one too large, not whole or not an object. The room
/// is taken before the body is read (all of it at once, so two requests
/// can never each hold half and wait for the rest), and held until the
/// call is done with it: a task cannot make the coordinator hold more
/// than a share of its own memory in bodies.
async fn read_body(
    state: &State,
    headers: &hyper::HeaderMap,
    incoming: Incoming,
) -> Result<
    (
        serde_json::Map<String, Value>,
        tokio::sync::OwnedSemaphorePermit,
    ),
    Response<Body>,
> {
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body) {
        return Err(too_large(state));
    }
    let wanted = declared.unwrap_or(state.max_body).max(1);
    let Ok(room) = Arc::clone(&state.bodies)
        .acquire_many_owned(u32::try_from(wanted).unwrap_or(u32::MAX))
        .await
    else {
        return Err(too_large(state));
    };
    let body = match http_body_util::Limited::new(incoming, wanted)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large(state)),
        Err(e) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("read the request: {e}"),
            ));
        }
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the request is not a JSON object",
        ));
    };
    Ok((body, room))
}

async fn handle(state: &Arc<State>, request: Request<Incoming>) -> Response<Body> {
    if !state.open.load(Ordering::SeqCst)
        || !token_of(&request).is_some_and(|t| same(t, &state.token))
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "swarm's gateway: this attempt's token is required (and is worthless after it)",
        );
    }
    let api = match route(state, request.method(), request.uri().path()) {
        Ok(api) => api,
        Err(response) => return response,
    };
    let query = request.uri().query().map(str::to_string);
    let headers = request.headers().clone();
    let (mut body, _room) = match read_body(state, &headers, request.into_body()).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    body.insert("model".into(), json!(state.endpoint.config.model));
    if let Err(why) = super::door_shapes::check(api.wire(), &mut body, state.network) {
        super::lock(&state.transcript).write("refused", json!({"message": why}));
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", &why);
    }
    // The turn and budget checks of every call, token counting included
    // (it goes upstream with the key too). The turn is taken at once
    // (calls may come in parallel) and given back if the call gets no
    // answer.
    let taken = state
        .calls
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < state.max_turns).then_some(n + 1)
        });
    let Ok(calls) = taken else {
        let why = format!(
            "swarm: task `{}` has made its max_turns ({}) model calls",
            state.task, state.max_turns
        );
        return refuse(state, Refused::MaxTurns, why);
    };
    let limit_key = match api {
        Api::Responses | Api::ResponsesTranslated => "max_output_tokens",
        Api::Chat => {
            // One limit, the one every server reads.
            if let Some(v) = body.remove("max_completion_tokens") {
                body.entry("max_tokens").or_insert(v);
            }
            "max_tokens"
        }
        _ => "max_tokens",
    };
    if api == Api::Chat && body.get("stream").and_then(Value::as_bool) == Some(true) {
        // Without it a stream reports no usage, and the budgets would
        // have to guess.
        let options = body.entry("stream_options").or_insert_with(|| json!({}));
        if let Value::Object(options) = options {
            options.insert("include_usage".into(), json!(true));
        }
    }
    let wanted = body
        .get(limit_key)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(state.endpoint.config.max_tokens);
    let scopes: Vec<Arc<BudgetScope>> = std::iter::once(&state.scope)
        .chain(state.groups.iter())
        .cloned()
        .collect();
    let prompt = super::budget::prompt_hold(serde_json::to_vec(&body).map_or(0, |b| b.len()));
    let config = &state.endpoint.config;
    let hold = match state
        .gateway
        .admit(&scopes, wanted, prompt, config.price)
        .await
    {
        Ok(hold) => hold,
        Err(why) => {
            state.calls.fetch_sub(1, Ordering::SeqCst);
            return refuse(state, Refused::Budget, why);
        }
    };
    if api == Api::CountTokens {
        // Counting costs nothing at the provider: the budgets only had to
        // have room for it, and it is given back once it is answered.
        let estimate = prompt;
        let response = pass(
            state,
            api,
            query.as_deref(),
            &headers,
            Value::Object(body),
            estimate,
            None,
        )
        .await;
        drop(hold);
        if !response.status().is_success() {
            state.calls.fetch_sub(1, Ordering::SeqCst);
        }
        return response;
    }
    let max_tokens = hold.max_tokens;
    // Always a cap: a call that names none would have the model's own.
    body.insert(limit_key.into(), json!(max_tokens));
    let last = match api {
        Api::Responses => body.get("input").and_then(|i| match i {
            Value::Array(items) => items.last().cloned(),
            other => Some(other.clone()),
        }),
        // The newest turn of the conversation, not a system note after it.
        _ => body
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|m| m.iter().rev().find(|m| m["role"] != "system").cloned()),
    };
    super::lock(&state.transcript).write(
        "user",
        json!({"call": calls + 1, "content": last.map(|l| user_blocks(&l)), "max_tokens": max_tokens}),
    );
    let response = if matches!(api, Api::MessagesTranslated | Api::ResponsesTranslated) {
        translated(state, api, &body, hold, calls + 1).await
    } else {
        let body = Value::Object(body);
        let estimate = body.to_string().len() as u64 / 4;
        pass(
            state,
            api,
            query.as_deref(),
            &headers,
            body,
            estimate,
            Some(hold),
        )
        .await
    };
    if !response.status().is_success() {
        // No answer: not a turn of the model's.
        state.calls.fetch_sub(1, Ordering::SeqCst);
    }
    response
}

impl Api {
    /// The wire protocol the request came in.
    fn wire(self) -> Wire {
        match self {
            Api::Messages | Api::MessagesTranslated | Api::CountTokens => Wire::Messages,
            Api::Responses | Api::ResponsesTranslated => Wire::Responses,
            Api::Chat => Wire::Chat,
        }
    }
}

/// The blocks of the newest message of a request, as transcripts hold
/// them (`text`, `tool_result` with its content as text): an Anthropic
/// message, or a Responses input item.
fn user_blocks(last: &Value) -> Vec<Value> {
    use super::translate::text_of;
    // A Responses request's `input` may be one plain string: the turn.
    if let Value::String(text) = last {
        return vec![json!({"type": "text", "text": text})];
    }
    match last.get("type").and_then(Value::as_str) {
        Some("function_call_output") => vec![json!({"type": "tool_result",
            "content": text_of(last.get("output").unwrap_or(&Value::Null))})],
        _ => match last.get("content") {
            Some(Value::Array(blocks)) => blocks
                .iter()
                .map(|b| match b.get("type").and_then(Value::as_str) {
                    Some("tool_result") => json!({"type": "tool_result",
                        "is_error": b.get("is_error").cloned().unwrap_or(Value::Bool(false)),
                        "content": text_of(b.get("content").unwrap_or(&Value::Null))}),
                    Some("input_text" | "output_text") => {
                        json!({"type": "text", "text": b.get("text")})
                    }
                    _ => b.clone(),
                })
                .collect(),
            Some(other) => vec![json!({"type": "text", "text": text_of(other)})],
            None => Vec::new(),
        },
    }
}

/// A body past what the door takes: the attempt's share of room.
fn too_large(state: &State) -> Response<Body> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        &format!(
            "swarm's gateway: a request body may be at most {} bytes for task `{}` (a share of its memory)",
            state.max_body, state.task
        ),
    )
}

fn refuse(state: &State, why: Refused, message: String) -> Response<Body> {
    {
        let mut refused = super::lock(&state.refused);
        if refused.is_none() {
            *refused = Some((why, message.clone()));
        }
    }
    super::lock(&state.transcript).write("refused", json!({"message": message}));
    if let Some(notes) = &state.notes
        && why == Refused::Budget
    {
        notes(AgentNote::Budget {
            message: message.clone(),
        });
    }
    error(StatusCode::BAD_REQUEST, "invalid_request_error", &message)
}

/// A replayed run's cassette had no answer: the attempt's failure, and a
/// 400 for the program, which would retry a 5xx for nothing.
fn not_recorded(state: &State, why: String) -> Response<Body> {
    super::lock(&state.transcript).write("error", json!({"message": why}));
    {
        let mut refused = super::lock(&state.refused);
        if refused.is_none() {
            *refused = Some((Refused::NotRecorded, why.clone()));
        }
    }
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &format!("swarm's gateway: {why}"),
    )
}

/// The call to the provider of `api`, with the door's key (if the model
/// has one), the few headers of the program's request that are passed on
/// (`query`, Anthropic's version and beta), and `bytes` as its body.
fn upstream_request(
    state: &State,
    api: Api,
    query: Option<&str>,
    headers: &hyper::HeaderMap,
    stream: bool,
    bytes: Vec<u8>,
) -> reqwest::RequestBuilder {
    let config = &state.endpoint.config;
    let key = state.endpoint.key.as_ref();
    let mut upstream = match api {
        Api::Messages | Api::MessagesTranslated | Api::CountTokens => {
            let path = if api == Api::CountTokens {
                "/v1/messages/count_tokens"
            } else {
                "/v1/messages"
            };
            let url = match query {
                Some(q) => format!("{}{path}?{q}", config.base_url),
                None => format!("{}{path}", config.base_url),
            };
            let version = headers
                .get("anthropic-version")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("2023-06-01");
            let mut r = state
                .gateway
                .http
                .post(url)
                .header("anthropic-version", version);
            if let Some(beta) = headers.get("anthropic-beta").and_then(|v| v.to_str().ok()) {
                r = r.header("anthropic-beta", beta);
            }
            if let Some(key) = key {
                r = r.header("x-api-key", key.expose());
            }
            r
        }
        Api::Responses | Api::ResponsesTranslated | Api::Chat => {
            let path = if api == Api::Chat {
                "chat/completions"
            } else {
                "responses"
            };
            let mut r = state
                .gateway
                .http
                .post(format!("{}/{path}", config.base_url));
            if let Some(key) = key {
                r = r.bearer_auth(key.expose());
            }
            r
        }
    };
    if state.endpoint.relayed {
        upstream = upstream.header(super::relay::TASK, state.task.as_str());
    }
    super::request::json_call(upstream, stream).body(bytes)
}

/// The provider's answer `answer` that is not a success: the door's
/// answer to give the program (`Err`: a refused key, or the program's own
/// mistake as it came, recorded as a refusal a replay answers alike), or
/// why to try again (`Ok`: how long the provider asks to wait, what went
/// wrong, whether it was a rate limit). `at` is the call's turn, path and
/// body, for the recorder.
async fn failed_answer(
    state: &State,
    answer: reqwest::Response,
    estimate: u64,
    (turn, path, body): (u32, &str, &Value),
) -> Result<(Option<Duration>, String, bool), Response<Body>> {
    let endpoint = &state.endpoint;
    let config = &endpoint.config;
    let key = endpoint.key.as_ref();
    let status = answer.status();
    let retry_after = answer
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let content_type = answer.headers().get(hyper::header::CONTENT_TYPE).cloned();
    let text = answer.bytes().await.unwrap_or_default();
    let code = status.as_u16();
    let limited_now = code == 429 || code == 529;
    let transient = limited_now || code == 408 || code == 409 || code >= 500;
    // Whatever the answer, the call used none of the tokens
    // it took from the model's buckets.
    if code == 401 || code == 403 || !transient {
        endpoint.limiter.settle(estimate, 0);
    }
    if code == 401 || code == 403 {
        // About the real key: not for the program, whose body
        // could quote part of it.
        super::lock(&state.transcript).write(
            "error",
            json!({"message": format!("the provider refused the key (HTTP {code})")}),
        );
        return Err(error(
            StatusCode::BAD_GATEWAY,
            "api_error",
            &format!(
                "swarm's gateway: the provider refused the run's key for model `{}` (HTTP {code})",
                config.name
            ),
        ));
    }
    if !transient {
        // The program's own mistake, as it came (the key taken
        // out of it, should the server quote it), and what a
        // replay of the same request answers.
        let text = redact(&String::from_utf8_lossy(&text), key);
        if refuses_the_request(code)
            && let Some(recorder) = state
                .reel
                .as_ref()
                .and_then(|r| r.recorder(turn, path, body))
        {
            let kind = content_type
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            recorder.refusal(code, kind, &text);
        }
        return Err(as_it_came(status, content_type, Bytes::from(text)));
    }
    Ok((
        retry_after,
        redact(
            &format!("HTTP {code}: {}", String::from_utf8_lossy(&text)),
            key,
        ),
        limited_now,
    ))
}

/// Sends the call on to the provider (again after a rate limit or a
/// server error, as the model's settings say) and streams its answer back.
async fn pass(
    state: &Arc<State>,
    api: Api,
    query: Option<&str>,
    headers: &hyper::HeaderMap,
    body: Value,
    estimate: u64,
    hold: Option<Hold>,
) -> Response<Body> {
    let endpoint = &state.endpoint;
    let config = &endpoint.config;
    let key = endpoint.key.as_ref();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let path = upstream_path(api, config);
    let turn = state.reel.as_ref().map_or(0, |r| r.next_turn());
    match state
        .reel
        .as_ref()
        .map_or(Lookup::Network, |r| r.lookup(turn, &path, &body))
    {
        Lookup::Served(recorded) if !recorded.is_success() => {
            // The provider's recorded refusal of this request, as it came.
            return as_it_came(
                StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::BAD_REQUEST),
                recorded
                    .content_type
                    .as_deref()
                    .and_then(|t| hyper::header::HeaderValue::from_str(t).ok()),
                Bytes::from(recorded.wire()),
            );
        }
        Lookup::Served(recorded) => {
            let tally = Tally {
                estimate,
                permit: None,
                recorder: None,
                hold,
            };
            return answered(state, api, Reply::replayed(&recorded), stream, tally).await;
        }
        Lookup::Miss(why) => return not_recorded(state, why),
        Lookup::Network => {}
    }
    if key.is_none()
        && let Some(var) = &config.api_key_env
    {
        return error(
            StatusCode::BAD_GATEWAY,
            "api_error",
            &format!(
                "swarm's gateway: model `{}` has no API key: ${var} was not set when the run started",
                config.name
            ),
        );
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let (mut failures, mut limited) = (0u32, 0u32);
    loop {
        let permit = endpoint.limiter.acquire(estimate).await;
        let upstream = upstream_request(state, api, query, headers, stream, bytes.clone());
        let sent = tokio::time::timeout(config.timeout, upstream.send()).await;
        let (wait, message, rate_limited) = match sent {
            Ok(Ok(answer)) if answer.status().is_success() => {
                let recorder = state
                    .reel
                    .as_ref()
                    .and_then(|r| r.recorder(turn, &path, &body));
                let reply = Reply::from_http(answer);
                let tally = Tally {
                    estimate,
                    permit: Some(permit),
                    recorder,
                    hold,
                };
                return answered(state, api, reply, stream, tally).await;
            }
            Ok(Ok(answer)) if super::relay::refused_for_budget(answer.headers()) => {
                endpoint.limiter.settle(estimate, 0);
                let message = answer.text().await.unwrap_or_default();
                return refuse(state, Refused::Budget, message);
            }
            Ok(Ok(answer)) => {
                match failed_answer(state, answer, estimate, (turn, &path, &body)).await {
                    Ok(retry) => retry,
                    Err(response) => return response,
                }
            }
            Ok(Err(e)) => (
                None,
                redact(
                    &format!("reach {}: {}", config.base_url, crate::error_chain(&e)),
                    key,
                ),
                false,
            ),
            Err(_) => (
                None,
                format!("no answer from {} in {:?}", config.base_url, config.timeout),
                false,
            ),
        };
        endpoint.limiter.settle(estimate, 0);
        drop(permit);
        let wait = if rate_limited {
            limited = limited.saturating_add(1);
            let wait = wait.unwrap_or_else(|| super::call::backoff(limited));
            endpoint
                .limiter
                .cool_down(tokio::time::Instant::now() + wait);
            wait
        } else {
            failures += 1;
            if failures > config.retries {
                super::lock(&state.transcript).write("error", json!({"message": message}));
                return error(
                    StatusCode::BAD_GATEWAY,
                    "api_error",
                    &format!(
                        "swarm's gateway: {message} (gave up after {} retries)",
                        config.retries
                    ),
                );
            }
            super::call::backoff(failures).max(wait.unwrap_or_default())
        };
        super::lock(&state.transcript).write(
            "retry",
            json!({"reason": message, "wait_ms": wait.as_millis() as u64, "rate_limited": rate_limited}),
        );
        tokio::time::sleep(wait).await;
    }
}

/// A Messages call answered by a model of another protocol: the request
/// read into the neutral conversation, sent as the gateway's own calls are
/// (the provider's body, the limiter, cool-downs and retries of
/// `call::call`), and the whole answer written back as a Messages response
/// (its events at once when the program asked for a stream).
async fn translated(
    state: &Arc<State>,
    api: Api,
    body: &serde_json::Map<String, Value>,
    hold: Hold,
    call: u32,
) -> Response<Body> {
    let max_tokens = hold.max_tokens;
    let read = if api == Api::ResponsesTranslated {
        super::translate::responses_conversation(body)
    } else {
        super::translate::conversation(body)
    };
    let conversation = match read {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", &why),
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let endpoint = &state.endpoint;
    let mut prepared = endpoint.prepare(&super::provider::Ask {
        system: &conversation.system,
        tools: &conversation.tools,
        messages: &conversation.messages,
        max_tokens,
        stream: true,
        temperature: conversation.temperature,
        format: None,
        tool_choice: Default::default(),
    });
    prepared.task = Some(state.task.clone());
    let transcript = &state.transcript;
    let mut on_retry = |reason: &str, wait: Duration, limited: bool| {
        super::lock(transcript).write(
            "retry",
            json!({"reason": reason, "wait_ms": wait.as_millis() as u64, "rate_limited": limited}),
        );
    };
    let result = super::call::call(
        &state.gateway.http,
        endpoint,
        &prepared,
        state.reel.as_ref(),
        &mut |_| {},
        &mut on_retry,
    )
    .await;
    let answer = match result {
        Ok(answer) => answer,
        Err(failed) if failed.why == FailedBecause::NotRecorded => {
            return not_recorded(state, failed.message);
        }
        Err(failed) if failed.why == FailedBecause::Budget => {
            return refuse(state, Refused::Budget, failed.message);
        }
        Err(failed) => {
            let message = failed.message;
            if failed.spent.total() > 0 {
                // What broke off mid-answer was paid for.
                let cut = Answer {
                    content: Vec::new(),
                    stop: StopReason::EndTurn,
                    usage: failed.spent,
                };
                let _ = settle_with(state, Some(cut), prepared.estimate, false, Some(hold));
            }
            super::lock(&state.transcript).write("error", json!({"message": message}));
            return match failed.why == FailedBecause::Refused {
                // The provider refused the request itself (too large for
                // its context, a bad parameter): the program's own
                // mistake, which asking again would not mend, so not a
                // 5xx it would retry.
                true => error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("swarm's gateway: the model's server refused the request: {message}"),
                ),
                false => error(
                    StatusCode::BAD_GATEWAY,
                    "api_error",
                    &format!("swarm's gateway: {message}"),
                ),
            };
        }
    };
    let mut counted = answer.clone();
    // What the CLI is told it used is what the run counts: the server's
    // figures, or swarm's estimate when the server reported none.
    if let Some(usage) = settle_with(state, Some(answer), prepared.estimate, false, Some(hold)) {
        counted.usage = usage;
    }
    let model = &endpoint.config.model;
    let responses = api == Api::ResponsesTranslated;
    let id = match responses {
        true => format!("resp_swarm_{call}"),
        false => format!("msg_swarm_{call}"),
    };
    match (responses, stream) {
        (true, true) => whole(
            super::translate::response_events(model, &id, &counted),
            "text/event-stream",
        ),
        (true, false) => json_response(&super::translate::response(model, &id, &counted)),
        (false, true) => whole(
            super::translate::events(model, &id, &counted),
            "text/event-stream",
        ),
        (false, false) => json_response(&super::translate::message(model, &id, &counted)),
    }
}

/// The path of `api`'s calls under the model's `base_url`, as a
/// cassette keys them.
fn upstream_path(api: Api, config: &super::config::ModelConfig) -> String {
    let path = match api {
        Api::CountTokens => "/v1/messages/count_tokens",
        Api::Messages | Api::MessagesTranslated => "/v1/messages",
        Api::Chat => "/chat/completions",
        Api::Responses | Api::ResponsesTranslated => "/responses",
    };
    let base = reqwest::Url::parse(&config.base_url)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    format!("{base}{path}")
}

/// What an answer is counted with once it is read.
struct Tally {
    /// The request's size in tokens, for the limiter and for a server that
    /// reports no usage.
    estimate: u64,
    /// The model's slot, held until the answer is read; none for a
    /// replayed answer.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The cassette's, when the run records.
    recorder: Option<Recorder>,
    /// The room the call holds in its budgets; none for count_tokens.
    hold: Option<Hold>,
}

/// The provider's answer (or a cassette's), on its way back to the
/// program: streamed as it comes (and read on the way), or whole.
async fn answered(
    state: &Arc<State>,
    api: Api,
    reply: Reply,
    stream: bool,
    tally: Tally,
) -> Response<Body> {
    let Tally {
        estimate,
        permit,
        mut recorder,
        hold,
    } = tally;
    let status = reply.status;
    let content_type = reply.headers.get(hyper::header::CONTENT_TYPE).cloned();
    let type_text = reply.content_type();
    let limiter = permit.is_some();
    let mut response = if api == Api::CountTokens {
        drop(permit);
        let text = collect(reply.body).await;
        if let Some(mut recorder) = recorder {
            recorder.chunk(&text, false);
            recorder.finish(type_text, None, true);
        }
        Response::new(full(text))
    } else if stream {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(32);
        let state = Arc::clone(state);
        tokio::spawn(async move {
            let mut events = Events::default();
            let mut read = Reader::new(api == Api::Responses, state.endpoint.provider);
            let mut chunks = reply.body;
            let silence = state.endpoint.config.timeout;
            let mut listening = true;
            let mut complete = true;
            // Read to the end even when the program has gone or stopped
            // reading: the answer is paid for, and its usage comes last.
            loop {
                let chunk = match tokio::time::timeout(silence, chunks.next()).await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(_) => {
                        complete = false;
                        break;
                    }
                };
                match chunk {
                    Ok(bytes) => {
                        if let Some(r) = &mut recorder {
                            r.chunk(&bytes, true);
                        }
                        for (event, data) in events.push(&bytes) {
                            read.event(&event, &data);
                        }
                        if listening {
                            let frame = Frame::data(bytes);
                            let sent = tokio::time::timeout(silence, tx.send(Ok(frame))).await;
                            listening = matches!(sent, Ok(Ok(())));
                        }
                    }
                    Err(e) => {
                        complete = false;
                        if listening {
                            let error = Err(std::io::Error::other(e));
                            let _ = tokio::time::timeout(silence, tx.send(error)).await;
                        }
                        break;
                    }
                }
            }
            drop(tx);
            let answer = read.finish();
            if let Some(recorder) = recorder {
                recorder.finish(type_text, answer.as_ref().map(|a| a.usage), complete);
            }
            let _ = settle_with(&state, answer, estimate, limiter, hold);
            drop(permit);
        });
        let frames = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|frame| (frame, rx))
        });
        Response::new(http_body_util::BodyExt::boxed(StreamBody::new(frames)))
    } else {
        let text = collect(reply.body).await;
        let mut read = Reader::new(api == Api::Responses, state.endpoint.provider);
        if let Ok(value) = serde_json::from_slice::<Value>(&text) {
            read.whole(&value);
        }
        let answer = read.finish();
        if let Some(mut recorder) = recorder {
            recorder.chunk(&text, false);
            recorder.finish(type_text, answer.as_ref().map(|a| a.usage), true);
        }
        let _ = settle_with(state, answer, estimate, limiter, hold);
        drop(permit);
        Response::new(full(text))
    };
    *response.status_mut() = status;
    if let Some(v) = content_type {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

/// A whole answer's bytes (at most [`MAX_WHOLE`]; what broke off is
/// dropped).
async fn collect(body: futures_util::stream::BoxStream<'static, Result<Bytes, String>>) -> Bytes {
    http_body_util::Limited::new(
        StreamBody::new(body.map(|c| c.map(Frame::data).map_err(std::io::Error::other))),
        MAX_WHOLE,
    )
    .collect()
    .await
    .map(|b| b.to_bytes())
    .unwrap_or_default()
}

/// Counts a call's answer against the budgets, tells the live view, and
/// writes it to the transcript; `limiter`: the call's tokens are still to be settled with
/// the model's limiter (not when `call::call` did).
fn settle_with(
    state: &State,
    answer: Option<Answer>,
    estimate: u64,
    limiter: bool,
    hold: Option<Hold>,
) -> Option<swarm_protocol::agent::Usage> {
    let (Some(mut answer), Some(hold)) = (answer, hold) else {
        if limiter {
            state.endpoint.limiter.settle(estimate, 0);
        }
        return None;
    };
    let (usd, estimated) =
        state
            .gateway
            .settle(&state.endpoint.config, &mut answer, estimate, hold);
    if limiter {
        state
            .endpoint
            .limiter
            .settle(estimate, answer.usage.total());
    }
    let (total, cost_usd) = state.scope.spent();
    let turn = state.calls.load(Ordering::SeqCst);
    super::lock(&state.transcript).write(
        "assistant",
        json!({"content": answer.content, "stop": answer.stop, "usage": answer.usage,
               "cost_usd": usd, "estimated": estimated}),
    );
    if let Some(notes) = &state.notes {
        for block in &answer.content {
            if let Block::ToolCall { name, input, .. } = block {
                notes(AgentNote::Tool {
                    name: name.clone(),
                    detail: tool_detail(input),
                });
            }
        }
        notes(AgentNote::Usage {
            turn,
            usage: answer.usage,
            total,
            cost_usd,
        });
    }
    Some(answer.usage)
}

/// A short line for the live view from a tool call's input: its command
/// or path, if it has one.
fn tool_detail(input: &Value) -> String {
    let pick = [
        "command",
        "cmd",
        "file_path",
        "path",
        "pattern",
        "description",
    ]
    .iter()
    .find_map(|k| input.get(*k))
    .map(|v| match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    })
    .unwrap_or_default();
    let line = pick.lines().next().unwrap_or_default();
    line.chars().take(120).collect()
}

/// A fresh token for one attempt's door: 24 random bytes, hex.
#[allow(clippy::disallowed_methods, reason = "/dev/urandom")]
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!(
        "swarm-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_token_is_required_and_worthless_once_the_door_closes() {
        let config = crate::gateway::config::ModelConfig::for_test(
            Provider::Anthropic,
            "http://127.0.0.1:9",
        );
        let models = std::collections::BTreeMap::from([("default".to_string(), config)]);
        let gateway =
            Arc::new(Gateway::new(&models, &Default::default(), Budget::default()).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let door = Door::new(
            gateway,
            DoorSettings {
                task: "t".into(),
                agent: "claude-code".into(),
                model: "default".into(),
                token: "swarm-right".into(),
                max_turns: 5,
                budget: Budget::default(),
                groups: Vec::new(),
                transcript: dir.path().join("t.jsonl"),
                notes: None,
                reel: None,
                network: false,
                memory: None,
                redact: None,
                activity: None,
            },
        )
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/models", listener.local_addr().unwrap());
        door.serve(listener).unwrap();
        let http = reqwest::Client::new();
        let status = |token: &'static str| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .header("x-api-key", token)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(status("swarm-wrong").await, 401);
        assert_eq!(status("swarm-right").await, 200);
        let end = door.close();
        assert_eq!(end.calls, 0);
        // The server is gone, or it refuses: never a 200 again.
        let after = http
            .get(&url)
            .header("x-api-key", "swarm-right")
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert!(after.is_err() || after.is_ok_and(|s| s == 401));
    }

    #[test]
    fn a_tools_detail_is_its_command_or_path() {
        assert_eq!(tool_detail(&json!({"command": ["ls", "-la"]})), "ls -la");
        assert_eq!(tool_detail(&json!({"path": "a/b.rs"})), "a/b.rs");
    }

    /// A Responses `input` that is one plain string is the turn's text in
    /// the transcript, not an empty turn.
    #[test]
    fn a_plain_string_input_is_logged_as_the_turns_text() {
        assert_eq!(
            user_blocks(&json!("list the files")),
            vec![json!({"type": "text", "text": "list the files"})]
        );
        assert_eq!(
            user_blocks(
                &json!({"role": "user", "content": [{"type": "input_text", "text": "hi"}]})
            ),
            vec![json!({"type": "text", "text": "hi"})]
        );
    }
}
