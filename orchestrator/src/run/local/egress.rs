//! The egress proxy of a task whose `network` is a list of hosts.
//!
//! The task runs as `Network::Gateway` with one port, [`PROXY_PORT`]: a
//! network namespace of its own, its loopback up, no route anywhere, and
//! TCP `connect` to that port only (Landlock); the listener there is the
//! coordinator's ([`served`](super::served)), and this serves it. The task
//! finds the proxy in `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` (and
//! their lowercase spellings), with `NO_PROXY` empty: every HTTP client it
//! may run sends its requests here, and nothing else leaves the namespace.
//!
//! Two kinds of request pass, and only to a host and port the list allows
//! ([`AllowList::allows`]): `CONNECT host:port` (HTTPS and anything else
//! tunnelled: the proxy answers `200` and copies bytes both ways, never
//! seeing inside TLS), and plain HTTP in absolute form (`GET
//! http://host[:port]/path`), sent on in origin form with the client's
//! headers but the proxy's own (`Proxy-*`, `Connection`, `Keep-Alive`) and
//! `Connection: close`. The proxy resolves a name itself, after the check,
//! and connects to what it resolves to: the task names hosts, it never
//! picks an address for a name. Anything else (another host or port, an
//! `https://` URL not tunnelled, a request that is no proxy request) gets
//! a `403` or `400` whose body says why, and a line in the attempt's
//! egress log (`<attempt>.egress.log` beside its output, which `swarm
//! logs` shows; `<attempt>.setup.egress.log` for its `[setup]`, which has
//! a network of its own), as does every connection let through.
//!
//! What a task sends is hostile: a request head must come whole within
//! [`HEAD_TIMEOUT`] and [`HEAD_LIMIT`] bytes, at most [`MAX_CONNECTIONS`]
//! are served at once, and the log stops growing at [`LOG_LIMIT`]. Once a
//! connection is let through, its bytes go to the host it was let through
//! to and nowhere else, whatever they say: a second request on a
//! plain-HTTP connection (keep-alive, pipelining) reaches the same host,
//! which the list allows anyway.

#![allow(
    clippy::disallowed_methods,
    reason = "the proxy's log, swarm's own file"
)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarm_protocol::AttemptOutcome;
use swarm_sandbox::{GatewayPorts, Stop};
use swarm_worker::CommandSpec;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::served::{Ports, run_serving};
use crate::plan::network::{RequestHost, split_authority};
use crate::plan::{AllowList, Task};
use crate::run::options::GatewayAccess;

/// The proxy's port in a sandboxed task's own network namespace (any
/// would do there: nothing else listens in it; proxies are known by this
/// one).
pub(crate) const PROXY_PORT: u16 = 3128;

/// Most bytes of a request head (request line and headers).
pub(crate) const HEAD_LIMIT: usize = 16 * 1024;

/// Most headers of a request.
const MAX_HEADERS: usize = 100;

/// How long a connection may take to send its request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long resolving a host and connecting to it may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once; more wait for one to end. Package managers
/// open a dozen or so.
pub(crate) const MAX_CONNECTIONS: usize = 64;

/// Most bytes of an attempt's egress log.
pub(crate) const LOG_LIMIT: u64 = 1 << 20;

/// The egress proxy of one attempt of a task with a network list.
pub(crate) struct Egress {
    /// Whose proxy it is, for its answers: "task `a`", "the [setup] of
    /// task `a`".
    whose: String,
    hosts: AllowList,
    log: Mutex<Log>,
    /// The coordinator's relay, when connections go out through it (a
    /// cluster node with no way out but to the coordinator).
    via: Option<GatewayAccess>,
}

/// An attempt's egress log: made when it gets its first line.
struct Log {
    path: PathBuf,
    file: Option<std::fs::File>,
    written: u64,
    /// Whether it reached [`LOG_LIMIT`] (and said so).
    full: bool,
}

/// The proxy serving one listener, until dropped.
pub(crate) struct Serving(tokio::task::JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        // Its connections are in the task's `JoinSet`, which goes with it.
        self.0.abort();
    }
}

impl Egress {
    /// The proxy of attempt `attempt` of `task`, if its network is a list
    /// (`None` for every other task, which has no proxy).
    pub(crate) fn of(ctx: &super::ctx::Ctx, task: &Task, attempt: u32) -> Option<Arc<Self>> {
        let hosts = task.network.hosts()?.clone();
        let egress = Self::new(
            &format!("task `{}`", task.id),
            hosts,
            crate::layout::egress_log_path(&ctx.run_dir, &task.id, attempt),
        );
        Some(Arc::new(egress.via(ctx.egress_via.clone())))
    }

    /// The proxy opening its connections through the coordinator's relay
    /// `relay` (when `Some`), which tunnels them on.
    pub(crate) fn via(mut self, relay: Option<GatewayAccess>) -> Self {
        self.via = relay;
        self
    }

    /// The proxy of `whose` ("task `a`"), allowing `hosts`, logging to
    /// `log`.
    pub(crate) fn new(whose: &str, hosts: AllowList, log: PathBuf) -> Self {
        Self {
            whose: whose.to_string(),
            hosts,
            log: Mutex::new(Log {
                path: log,
                file: None,
                written: 0,
                full: false,
            }),
            via: None,
        }
    }

    /// Serves `listener` until the returned handle is dropped.
    pub(crate) fn serve(
        self: &Arc<Self>,
        listener: std::net::TcpListener,
    ) -> std::io::Result<Serving> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let egress = Arc::clone(self);
        Ok(Serving(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                while connections.try_join_next().is_some() {}
                if connections.len() >= MAX_CONNECTIONS {
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
                let _ = stream.set_nodelay(true);
                let egress = Arc::clone(&egress);
                connections.spawn(async move { egress.handle(stream).await });
            }
        })))
    }

    /// One connection of the task's: its request checked, then let
    /// through or answered.
    async fn handle(&self, mut client: TcpStream) {
        let (buf, head_len) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await
        {
            Ok(Ok(Some(head))) => head,
            // Closed before a whole head: nothing was asked.
            Ok(Ok(None)) | Ok(Err(HeadError::Io)) => return,
            Ok(Err(HeadError::TooLarge)) => {
                let why = format!("a request head of more than {} KiB", HEAD_LIMIT / 1024);
                self.note(&format!("refused {why}"));
                answer(
                    &mut client,
                    431,
                    "Request Header Fields Too Large",
                    &self.says(&format!("the egress proxy refuses {why}")),
                )
                .await;
                return;
            }
            Err(_) => {
                self.note(&format!(
                    "refused a connection that sent no whole request in {} s",
                    HEAD_TIMEOUT.as_secs()
                ));
                answer(&mut client, 408, "Request Timeout", "").await;
                return;
            }
        };
        let request = match Request::parse(&buf[..head_len]) {
            Ok(request) => request,
            Err(Refusal {
                status,
                reason,
                why,
            }) => {
                self.note(&format!("refused {why}"));
                answer(
                    &mut client,
                    status,
                    reason,
                    &self.says(&format!("the egress proxy refuses {why}")),
                )
                .await;
                return;
            }
        };
        let shown = format!("{} {}:{}", request.method, request.host, request.port);
        if !self.hosts.allows(&request.host, request.port) {
            let why = format!("{shown}: not in the network list {}", self.hosts);
            self.note(&format!("refused {why}"));
            answer(
                &mut client,
                403,
                "Forbidden",
                &self.says(&format!(
                    "{} may not reach {}:{}: only the hosts of its network list {} are reachable",
                    self.whose, request.host, request.port, self.hosts
                )),
            )
            .await;
            return;
        }
        let opened = async {
            match &self.via {
                None => connect(&request.host, request.port).await,
                Some(relay) => through(relay, &request.host, request.port).await,
            }
        };
        let mut upstream = match tokio::time::timeout(CONNECT_TIMEOUT, opened).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                self.note(&format!("failed {shown}: {e}"));
                answer(
                    &mut client,
                    502,
                    "Bad Gateway",
                    &self.says(&format!(
                        "the egress proxy could not reach {}:{}: {e}",
                        request.host, request.port
                    )),
                )
                .await;
                return;
            }
            Err(_) => {
                let e = format!("no connection in {} s", CONNECT_TIMEOUT.as_secs());
                self.note(&format!("failed {shown}: {e}"));
                answer(
                    &mut client,
                    504,
                    "Gateway Timeout",
                    &self.says(&format!(
                        "the egress proxy could not reach {}:{}: {e}",
                        request.host, request.port
                    )),
                )
                .await;
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        match self.via {
            None => self.note(&format!("allowed {shown}")),
            Some(_) => self.note(&format!("allowed {shown} (through the coordinator)")),
        }
        let rest = &buf[head_len..];
        let sent = match &request.forward {
            // A tunnel: the client speaks once it has the answer (or
            // already did, its first bytes in `rest`).
            None => {
                match client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                {
                    Ok(()) => upstream.write_all(rest).await,
                    Err(e) => Err(e),
                }
            }
            Some(head) => match upstream.write_all(head).await {
                Ok(()) => upstream.write_all(rest).await,
                Err(e) => Err(e),
            },
        };
        if sent.is_ok() {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
    }

    /// An answer's body: `message`, a line.
    fn says(&self, message: &str) -> String {
        format!("swarm: {message}\n")
    }

    /// Adds `line` to the attempt's egress log, if it has room.
    fn note(&self, line: &str) {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if log.full {
            return;
        }
        if log.file.is_none() {
            let path = log.path.clone();
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            log.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| {
                    tracing::warn!(egress = %self.whose, path = %path.display(), error = %e, "failed to open the egress log");
                })
                .ok();
            // The attempt's other commands (verify, a score) may have
            // written to it: the limit is the file's.
            log.written = log
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len());
        }
        let mut text = crate::escape::line(line).into_owned();
        text.push('\n');
        if log.written + text.len() as u64 > LOG_LIMIT {
            log.full = true;
            text = format!(
                "(nothing more is logged: the egress log reached {})\n",
                bytesize::ByteSize::b(LOG_LIMIT).display().iec()
            );
        }
        let written = text.len() as u64;
        if let Some(file) = &mut log.file
            && file.write_all(text.as_bytes()).is_ok()
        {
            log.written += written;
        }
    }
}

/// The variables that send a task's HTTP and HTTPS through the proxy at
/// `url`, and `no_proxy` (empty, or an agent CLI's door) around it.
pub(crate) fn env(url: &str, no_proxy: &str) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        vars.push((name.to_string(), url.to_string()));
        vars.push((name.to_ascii_lowercase(), url.to_string()));
    }
    vars.push(("NO_PROXY".into(), no_proxy.to_string()));
    vars.push(("no_proxy".into(), no_proxy.to_string()));
    vars
}

/// Runs `spec` as `swarm_worker::run_command` does, and with `egress` (a
/// task with a network list) serves its proxy while it runs: on
/// [`PROXY_PORT`] in its own namespace, sandboxed; on a free port of the
/// host's loopback, unconfined, where nothing holds the task to the
/// proxy (`sandbox = "none"` confines nothing).
pub(crate) async fn run_command(
    spec: &CommandSpec,
    egress: Option<&Arc<Egress>>,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> AttemptOutcome {
    let Some(egress) = egress else {
        return swarm_worker::run_command(spec, stop).await;
    };
    let mut spec = spec.clone();
    let ports = GatewayPorts::one(PROXY_PORT);
    let opened = match Ports::open(&mut spec, ports) {
        Ok(opened) => opened,
        Err(e) => {
            return AttemptOutcome::SpawnFailed {
                message: format!("open the egress proxy's port: {e}"),
            };
        }
    };
    let port = opened.numbers(ports).first().copied().unwrap_or(PROXY_PORT);
    // First: the task's own `env` may set them otherwise (it reaches no
    // more for it).
    let vars = env(&format!("http://127.0.0.1:{port}"), "");
    spec.env.splice(0..0, vars);
    let mut serving = Vec::new();
    let outcome = run_serving(&spec, opened, stop, |listeners| {
        for listener in listeners {
            match egress.serve(listener) {
                Ok(s) => serving.push(s),
                Err(e) => {
                    tracing::warn!(egress = %egress.whose, error = %e, "failed to serve the egress proxy");
                }
            }
        }
    })
    .await;
    // The proxy ends with the command: what it left running has no way out.
    drop(serving);
    outcome
}

/// Why a request head is not read.
#[derive(Debug)]
enum HeadError {
    TooLarge,
    Io,
}

/// Reads a request head: the bytes read and where the head ends in them
/// (what follows is the request's body or a tunnel's first bytes), or
/// `None` if the client closed first.
async fn read_head(client: &mut TcpStream) -> Result<Option<(Vec<u8>, usize)>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await.map_err(|_| HeadError::Io)?;
        if n == 0 {
            return Ok(None);
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = memchr::memmem::find(&buf[from..], b"\r\n\r\n") {
            let end = from + at + 4;
            if end > HEAD_LIMIT {
                return Err(HeadError::TooLarge);
            }
            return Ok(Some((buf, end)));
        }
        if buf.len() > HEAD_LIMIT {
            return Err(HeadError::TooLarge);
        }
    }
}

/// A request the proxy may let through, once its host is allowed.
#[derive(Debug)]
struct Request {
    /// `CONNECT`, `GET`, ...
    method: String,
    host: RequestHost,
    port: u16,
    /// Plain HTTP: the head to send on (origin form). `None`: a tunnel.
    forward: Option<Vec<u8>>,
}

/// Why a request is answered, not let through.
#[derive(Debug)]
struct Refusal {
    status: u16,
    reason: &'static str,
    /// For the log and the answer: "GET /x: ...".
    why: String,
}

fn bad(why: String) -> Refusal {
    Refusal {
        status: 400,
        reason: "Bad Request",
        why,
    }
}

impl Request {
    /// The request whose head is `head` (ending with its blank line).
    fn parse(head: &[u8]) -> Result<Self, Refusal> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(bad("a request head that ends early".into()));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Refusal {
                    status: 431,
                    reason: "Request Header Fields Too Large",
                    why: format!("a request of more than {MAX_HEADERS} headers"),
                });
            }
            Err(e) => return Err(bad(format!("a request that is not HTTP ({e})"))),
        }
        let method = parsed.method.unwrap_or_default().to_string();
        let target = parsed.path.unwrap_or_default();
        let shown_target = clip(target);
        if method.eq_ignore_ascii_case("CONNECT") {
            let (host, port) = authority(target, None)
                .ok_or_else(|| bad(format!("CONNECT {shown_target}: not `host:port`")))?;
            return Ok(Self {
                method: "CONNECT".into(),
                host,
                port,
                forward: None,
            });
        }
        let scheme_end = target.find("://");
        let scheme = scheme_end.map(|at| target[..at].to_ascii_lowercase());
        let Some(rest) = scheme
            .as_deref()
            .filter(|s| *s == "http")
            .and_then(|_| scheme_end.map(|at| &target[at + 3..]))
        else {
            return Err(match scheme.as_deref() {
                Some("https") => bad(format!(
                    "{method} {shown_target}: an https:// URL goes through CONNECT (HTTPS_PROXY), so that TLS runs between the task and the host"
                )),
                Some(_) => bad(format!(
                    "{method} {shown_target}: only http:// URLs and CONNECT pass"
                )),
                None => bad(format!(
                    "{method} {shown_target}: this is swarm's egress proxy; it takes requests for http:// URLs (HTTP_PROXY) and CONNECT (HTTPS_PROXY)"
                )),
            });
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority_text, path) = rest.split_at(end);
        if authority_text.contains('@') {
            return Err(bad(format!(
                "{method} {shown_target}: credentials in a URL are not passed on"
            )));
        }
        let (host, port) = authority(authority_text, Some(80))
            .ok_or_else(|| bad(format!("{method} {shown_target}: no host in the URL")))?;
        let path = path.split('#').next().unwrap_or_default();
        let path = match path.starts_with('/') {
            true => path.to_string(),
            false => format!("/{path}"),
        };
        let version = match parsed.version {
            Some(0) => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let mut forward = format!("{method} {path} {version}\r\n").into_bytes();
        let mut has_host = false;
        for header in parsed.headers.iter() {
            let name = header.name;
            let hop = [
                "connection",
                "keep-alive",
                "proxy-connection",
                "proxy-authorization",
            ]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h));
            if hop {
                continue;
            }
            has_host |= name.eq_ignore_ascii_case("host");
            forward.extend_from_slice(name.as_bytes());
            forward.extend_from_slice(b": ");
            forward.extend_from_slice(header.value);
            forward.extend_from_slice(b"\r\n");
        }
        if !has_host {
            forward.extend_from_slice(format!("Host: {authority_text}\r\n").as_bytes());
        }
        forward.extend_from_slice(b"Connection: close\r\n\r\n");
        Ok(Self {
            method,
            host,
            port,
            forward: Some(forward),
        })
    }
}

/// The host and port of `text` (`host:port`; the port may be left out
/// when `default` gives one).
fn authority(text: &str, default: Option<u16>) -> Option<(RequestHost, u16)> {
    let (host, port) = split_authority(text)?;
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0)?,
        None => default?,
    };
    Some((RequestHost::parse(host)?, port))
}

/// At most 200 characters of a request target, for a log line or an
/// answer (escaped when it is written), without the credentials a URL
/// may hold.
fn clip(text: &str) -> String {
    let text = match text.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://...@{host}{}", &rest[end..]),
                None => text.to_string(),
            }
        }
        None => text.to_string(),
    };
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// Connects to `host` on `port`: an address as it is, a name resolved
/// here (each address it has tried in turn).
async fn connect(host: &RequestHost, port: u16) -> std::io::Result<TcpStream> {
    let addresses: Vec<SocketAddr> = match host {
        RequestHost::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        RequestHost::Name(name) => tokio::net::lookup_host((name.as_str(), port))
            .await?
            .collect(),
    };
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
    }))
}

/// A connection to `host` on `port` tunnelled through the coordinator's
/// `relay` (`CONNECT`, with the run's token): ready to carry bytes once
/// the relay said `200`, or why not (its answer).
async fn through(
    relay: &GatewayAccess,
    host: &RequestHost,
    port: u16,
) -> std::io::Result<TcpStream> {
    let at = relay
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(at).await?;
    let head = format!(
        "CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {}\r\n\r\n",
        relay.token
    );
    stream.write_all(head.as_bytes()).await?;
    // The answer's head, a byte at a time: what follows it is the host's.
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= HEAD_LIMIT || stream.read(&mut byte).await? == 0 {
            return Err(std::io::Error::other(
                "the coordinator's relay closed the tunnel",
            ));
        }
        answer.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&answer);
    let line = line.lines().next().unwrap_or_default();
    if line.split_whitespace().nth(1) == Some("200") {
        return Ok(stream);
    }
    // Its reason is in the body.
    let mut body = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut body))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    Err(std::io::Error::other(format!(
        "the coordinator's relay answered {line}: {}",
        String::from_utf8_lossy(&body[..n]).trim()
    )))
}

/// Writes an answer with `body` (plain text) and closes.
async fn answer(client: &mut TcpStream, status: u16, reason: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = client.write_all(head.as_bytes()).await;
    let _ = client.write_all(body.as_bytes()).await;
    let _ = client.shutdown().await;
    // What the client still sends is read and dropped for a moment before
    // the socket closes: closed with bytes unread, it would be reset, and
    // a reset can take the answer with it before the client reads it.
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut left = 64 * 1024;
        while left > 0 {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n.min(left),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
