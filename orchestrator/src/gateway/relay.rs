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

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};

use super::Gateway;

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

impl Relay {
    /// Listens on `listen` (port 0: any free one) for calls carrying
    /// `token`, relaying them through `gateway`.
    pub async fn start(
        gateway: Arc<Gateway>,
        listen: SocketAddr,
        token: String,
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
                let notes_tx = notes_tx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (gateway, token) = (Arc::clone(&gateway), Arc::clone(&token));
                        let notes_tx = notes_tx.clone();
                        async move {
                            Ok::<_, Infallible>(relay(&gateway, &token, &notes_tx, request).await)
                        }
                    });
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
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

async fn relay(
    gateway: &Gateway,
    token: &str,
    notes: &tokio::sync::mpsc::UnboundedSender<NodeNote>,
    request: Request<Incoming>,
) -> Response<Body> {
    if !token_of(&request).is_some_and(|t| same(t, token)) {
        return text(
            StatusCode::UNAUTHORIZED,
            "this run's gateway token is required",
        );
    }
    let path = request.uri().path().to_string();
    if path == "/notes" {
        let body = match http_body_util::Limited::new(request.into_body(), MAX_NOTE)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("read the note: {e}")),
        };
        return match serde_json::from_slice::<NodeNote>(&body) {
            Ok(note) => {
                let _ = notes.send(note);
                text(StatusCode::OK, "noted")
            }
            Err(e) => text(StatusCode::BAD_REQUEST, &format!("read the note: {e}")),
        };
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
    let body = match http_body_util::Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("read the request: {e}")),
    };
    let stream = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["stream"].as_bool())
        .unwrap_or(false);
    // The same request the coordinator would make itself: the provider's
    // URL and headers, the real key.
    let _slot = endpoint.limiter.acquire(0).await;
    let upstream = endpoint
        .provider
        .request(
            &gateway.http,
            &endpoint.config,
            endpoint.key.as_ref(),
            stream,
        )
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::ACCEPT,
            if stream {
                "text/event-stream"
            } else {
                "application/json"
            },
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
    let frames = answer
        .bytes_stream()
        .map_ok(Frame::data)
        .map_err(std::io::Error::other);
    let mut response = Response::new(StreamBody::new(frames).boxed());
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
