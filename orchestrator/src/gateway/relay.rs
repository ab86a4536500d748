//! The gateway's door for agent tasks on cluster nodes: an HTTP server on
//! the coordinator that speaks each provider's own wire protocol at
//! `/models/<name>/...`. A node's gateway calls it as it would call the
//! provider, with the run's token where the key would be; the relay checks
//! the token, and sends the same request on to the provider with the real
//! key (which never leaves the coordinator), holding a slot of the model's
//! concurrency cap and pacing so that a cluster's worth of agents shares
//! the account's limits. The answer, streamed or whole, goes back as it
//! comes. A node also posts its agents' notes (tools, tokens) to `/notes`
//! as they come ([`NodeNote`]), for the coordinator's live view and
//! journal.
//!
//! Every call is counted here as a local one is ([`Gateway::admit`]
//! before, [`Gateway::settle`] after, the answer read on its way past), against
//! the run's budget and the budgets of the task the call names
//! ([`TASK`]: all its attempts', its experiment's, its agent ancestors'
//! subtrees): a node's own gateway knows only its own job's calls, so
//! without this a fleet spread over nodes could together spend the run's
//! budget many times. A call no budget has room for is refused with
//! [`REFUSED`] set, which a node's gateway takes as the budget stop it is.
//!
//! With `[executor] egress = "coordinator"` it also tunnels the nodes'
//! egress: a node's egress proxy (which has already checked the task's
//! own list) asks `CONNECT host:port` with the run's token, and the relay
//! connects only where a network list of the plan allows ([`EgressCheck`])
//! and copies bytes both ways: nodes with no way out but to the
//! coordinator still reach their registries, and nothing else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};

use super::budget::{BudgetScope, Hold, counted_partial, prompt_hold};
use super::passing::Reader;
use super::sse::Events;
use super::{Endpoint, Gateway};

type Body = BoxBody<Bytes, std::io::Error>;

/// The largest request body a node may send (a long conversation).
const MAX_BODY: usize = 32 << 20;

/// A running relay; it stops when dropped.
pub struct Relay {
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    /// The notes nodes posted, for the executor that takes them.
    notes: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<NodeNote>>>,
}

/// An agent's note from a node: which attempt of which task, and the note.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeNote {
    pub task: String,
    pub attempt: u32,
    #[serde(flatten)]
    pub note: super::AgentNote,
}

/// The largest note a node may post.
const MAX_NOTE: usize = 64 << 10;

/// The header a node's call names its task in.
pub const TASK: &str = "x-swarm-task";

/// The header of the relay's refusal of a call for a budget (its value
/// `budget`; the body says which budget and why, as plain text).
pub const REFUSED: &str = "x-swarm-refused";

/// The budgets a call of the task named (beside the run's, which every
/// call counts against): `Gateway::task_scopes` for the plan's tasks.
pub type ScopesOf = Arc<dyn Fn(&str) -> Vec<Arc<BudgetScope>> + Send + Sync>;

/// Where a node may be tunnelled to: `host:port` as a `CONNECT` names it,
/// to the address to connect to (`host:port`, a name resolved here), or
/// why not. `None` when the run's nodes do not go out through the relay.
pub type EgressCheck = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// How long the relay's connection to a tunnel's host may take.
const TUNNEL_CONNECT: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether a relay refused the call these are the answer's headers of for
/// a budget.
pub(super) fn refused_for_budget(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(REFUSED)
        .is_some_and(|v| v.as_bytes() == b"budget")
}

impl Relay {
    /// Listens on `listen` (port 0: any free one) for calls carrying
    /// `token`, relaying them through `gateway`.
    pub async fn start(
        gateway: Arc<Gateway>,
        listen: SocketAddr,
        token: String,
        scopes: ScopesOf,
        egress: Option<EgressCheck>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let token: Arc<str> = token.into();
        let (notes_tx, notes) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Streamed answers go out in small writes: without this,
                // Nagle's algorithm holds each behind a delayed ACK.
                let _ = stream.set_nodelay(true);
                let (gateway, token) = (Arc::clone(&gateway), Arc::clone(&token));
                let (notes_tx, scopes) = (notes_tx.clone(), Arc::clone(&scopes));
                let egress = egress.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (gateway, token) = (Arc::clone(&gateway), Arc::clone(&token));
                        let (notes_tx, scopes) = (notes_tx.clone(), Arc::clone(&scopes));
                        let egress = egress.clone();
                        async move {
                            let to = Callers {
                                gateway,
                                token,
                                notes: notes_tx,
                                scopes,
                                egress,
                            };
                            Ok::<_, Infallible>(relay(&to, request).await)
                        }
                    });
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .with_upgrades()
                        .await
                    {
                        tracing::debug!(error = %e, "a node's connection to the gateway ended");
                    }
                });
            }
        });
        Ok(Self {
            addr,
            server,
            notes: std::sync::Mutex::new(Some(notes)),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The notes nodes post, for the one executor that takes them.
    pub fn take_notes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<NodeNote>> {
        self.notes.lock().ok()?.take()
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": {"type": "swarm_gateway", "message": message}});
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

/// The token a request carries, as either provider sends its key.
pub(super) fn token_of(request: &Request<Incoming>) -> Option<&str> {
    let headers = request.headers();
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key);
    }
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Compares in time independent of where the first difference is.
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// What a request to the relay is served with.
struct Callers {
    gateway: Arc<Gateway>,
    token: Arc<str>,
    notes: tokio::sync::mpsc::UnboundedSender<NodeNote>,
    scopes: ScopesOf,
    egress: Option<EgressCheck>,
}

/// A node's `POST /notes`: an agent's note (tool, usage, budget) passed
/// on to the executor as it comes.
async fn note(to: &Callers, request: Request<Incoming>) -> Response<Body> {
    let body = match http_body_util::Limited::new(request.into_body(), MAX_NOTE)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("read the note: {e}")),
    };
    match serde_json::from_slice::<NodeNote>(&body) {
        Ok(note) => {
            let _ = to.notes.send(note);
            text(StatusCode::OK, "noted")
        }
        Err(e) => text(StatusCode::BAD_REQUEST, &format!("read the note: {e}")),
    }
}

async fn relay(to: &Callers, request: Request<Incoming>) -> Response<Body> {
    let gateway = &to.gateway;
    if !token_of(&request).is_some_and(|t| same(t, &to.token)) {
        return text(
            StatusCode::UNAUTHORIZED,
            "this run's gateway token is required",
        );
    }
    if request.method() == hyper::Method::CONNECT {
        return tunnel(to.egress.as_ref(), request).await;
    }
    let path = request.uri().path().to_string();
    if path == "/notes" {
        return note(to, request).await;
    }
    let Some(name) = path
        .strip_prefix("/models/")
        .and_then(|rest| rest.split('/').next())
    else {
        return text(StatusCode::NOT_FOUND, "call /models/<name>/...");
    };
    let Some(endpoint) = gateway.endpoints.get(name).cloned() else {
        return text(
            StatusCode::NOT_FOUND,
            &format!("the run has no model `{name}`"),
        );
    };
    let task = request
        .headers()
        .get(TASK)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match http_body_util::Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("read the request: {e}")),
    };
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice(&body) else {
        return text(StatusCode::BAD_REQUEST, "the request is not a JSON object");
    };
    let stream = fields
        .get("stream")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let responses = path.ends_with("/responses");
    let limit = limit_key(&endpoint, responses, &fields);
    let wanted = fields
        .get(limit)
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(endpoint.config.max_tokens);
    let scopes = task.as_deref().map(|t| (to.scopes)(t)).unwrap_or_default();
    let hold = match gateway
        .admit(
            &scopes,
            wanted,
            prompt_hold(body.len()),
            endpoint.config.price,
        )
        .await
    {
        Ok(hold) => hold,
        Err(why) => return refused(&why),
    };
    // What the budgets leave it: never more than the room it holds.
    fields.insert(limit.into(), serde_json::json!(hold.max_tokens));
    let body = serde_json::to_vec(&fields).unwrap_or_default();
    let estimate = body.len() as u64 / 4;
    // The same request the coordinator would make itself: the provider's
    // URL and headers, the real key.
    let slot = endpoint.limiter.acquire(0).await;
    let upstream = super::request::json_call(
        endpoint.provider.request(
            &gateway.http,
            &endpoint.config,
            endpoint.key.as_ref(),
            stream,
        ),
        stream,
    )
    .timeout(endpoint.config.timeout)
    .body(body)
    .send()
    .await;
    let answer = match upstream {
        Ok(a) => a,
        Err(e) => {
            let message = super::redact(&e.to_string(), endpoint.key.as_ref());
            return text(
                StatusCode::BAD_GATEWAY,
                &format!("call the provider: {message}"),
            );
        }
    };
    let status = answer.status();
    let content_type = answer.headers().get(hyper::header::CONTENT_TYPE).cloned();
    let retry_after = answer.headers().get(hyper::header::RETRY_AFTER).cloned();
    // An answer is counted as it passes; a refusal costs nothing (its
    // hold is given back as it drops).
    let mut meter = status.is_success().then(|| Meter {
        gateway: Arc::clone(gateway),
        endpoint: Arc::clone(&endpoint),
        hold: Some(hold),
        estimate,
        stream,
        events: Events::default(),
        reader: Some(Reader::new(responses, endpoint.provider)),
        whole: Vec::new(),
    });
    let frames = answer.bytes_stream().map(move |chunk| {
        // The slot is held for as long as the answer streams.
        let _slot = &slot;
        if let Some(meter) = &mut meter {
            match &chunk {
                Ok(bytes) => meter.read(bytes),
                Err(_) => meter.settle(),
            }
        }
        chunk.map(Frame::data).map_err(std::io::Error::other)
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    *response.status_mut() = status;
    if let Some(v) = content_type {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    if let Some(v) = retry_after {
        response.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    response
}

/// A node's `CONNECT`: the host checked against the plan's network lists
/// (`egress`), connected to, and the connection handed over to copy bytes
/// both ways once hyper gives up the node's; or why not, as the answer.
async fn tunnel(egress: Option<&EgressCheck>, request: Request<Incoming>) -> Response<Body> {
    let Some(egress) = egress else {
        return text(
            StatusCode::FORBIDDEN,
            "this run's nodes reach their hosts themselves ([executor] egress = \"node\")",
        );
    };
    let asked = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    let address = match egress(&asked) {
        Ok(address) => address,
        Err(why) => return text(StatusCode::FORBIDDEN, &why),
    };
    let connected = tokio::time::timeout(TUNNEL_CONNECT, tokio::net::TcpStream::connect(&address));
    let mut upstream = match connected.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return text(
                StatusCode::BAD_GATEWAY,
                &format!("the coordinator could not reach {asked}: {e}"),
            );
        }
        Err(_) => {
            return text(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("the coordinator could not reach {asked} in {TUNNEL_CONNECT:?}"),
            );
        }
    };
    let _ = upstream.set_nodelay(true);
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(node) => {
                let mut node = hyper_util::rt::TokioIo::new(node);
                let _ = tokio::io::copy_bidirectional(&mut node, &mut upstream).await;
            }
            Err(e) => tracing::debug!(error = %e, "a node's tunnel was not taken up"),
        }
    });
    Response::new(BodyExt::boxed(
        Full::new(Bytes::new()).map_err(|never| match never {}),
    ))
}

/// The field of a request body that caps its answer's tokens.
fn limit_key(
    endpoint: &Endpoint,
    responses: bool,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> &'static str {
    use super::config::Provider;
    match (responses, endpoint.config.provider) {
        (true, _) => "max_output_tokens",
        (false, Provider::Anthropic) => "max_tokens",
        (false, Provider::Openai) => match fields.contains_key("max_tokens") {
            true => "max_tokens",
            false => "max_completion_tokens",
        },
    }
}

/// The relay's refusal of a call for a budget: `why`, plain, marked so.
fn refused(why: &str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(why.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::PAYMENT_REQUIRED;
    response
        .headers_mut()
        .insert(REFUSED, hyper::header::HeaderValue::from_static("budget"));
    response
}

/// One answer counted on its way back to the node: read as it passes,
/// settled against the call's budgets when it ends, or as far as it came
/// when it breaks off or the node goes away (what arrived is paid for).
struct Meter {
    gateway: Arc<Gateway>,
    endpoint: Arc<Endpoint>,
    hold: Option<Hold>,
    estimate: u64,
    stream: bool,
    events: Events,
    reader: Option<Reader>,
    /// A whole answer's bytes so far, at most [`MAX_BODY`].
    whole: Vec<u8>,
}

impl Meter {
    fn read(&mut self, bytes: &[u8]) {
        let Some(reader) = &mut self.reader else {
            return;
        };
        if self.stream {
            for (event, data) in self.events.push(bytes) {
                reader.event(&event, &data);
            }
        } else if self.whole.len() + bytes.len() <= MAX_BODY {
            self.whole.extend_from_slice(bytes);
        }
    }

    /// Counts what the answer cost (once): the usage its server reported,
    /// estimated where it reported none, what had arrived when it broke
    /// off.
    fn settle(&mut self) {
        let (Some(hold), Some(mut reader)) = (self.hold.take(), self.reader.take()) else {
            return;
        };
        if !self.stream
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&self.whole)
        {
            reader.whole(&value);
        }
        let complete = reader.complete();
        let Some(mut answer) = reader.finish() else {
            // Nothing came: nothing to pay for.
            return;
        };
        if !complete {
            answer.usage = counted_partial(&answer, self.estimate);
        }
        self.gateway
            .settle(&self.endpoint.config, &mut answer, self.estimate, hold);
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.settle();
    }
}
