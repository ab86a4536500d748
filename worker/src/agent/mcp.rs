//! The task's MCP servers as tools of the agent. The agent starts each one
//! itself, over stdio, in the worktree: as its child it is inside the
//! task's sandbox (the same Landlock rules, seccomp filter, network and
//! limits), so a server reaches nothing the task cannot. Its tools are
//! offered to the model as `<server>__<tool>`, and what they answer is
//! bounded like the agent's other tools.
//!
//! A server that fails to start, or stops answering, ends the attempt
//! ([`McpFailed`]) with the tail of what it wrote to stderr: a task
//! planned with a tool it cannot use is not done.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use rmcp::transport::TokioChildProcess;
use serde_json::Value;
use swarm_protocol::agent::{McpServer, ToolSpec};
use tokio::io::AsyncReadExt as _;

/// How long a server may take to start and list its tools.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of a server's stderr kept for the report when it fails.
const STDERR_TAIL: usize = 2048;
/// Bytes of one tool result given to the model (as `read_file`).
const MAX_RESULT: usize = 100 * 1024;
/// Characters of a tool's description given to the model.
const MAX_DESCRIPTION: usize = 2000;
/// The providers' limit on a tool's name.
const MAX_TOOL_NAME: usize = 64;

/// A server failed to start or stopped answering: the attempt ends.
#[derive(Debug, thiserror::Error)]
#[error("{message}{}", tail_note(.stderr))]
pub struct McpFailed {
    pub message: String,
    /// The end of what the server wrote to stderr.
    pub stderr: String,
}

/// Why a server's start failed at MCP's handshake, in swarm's words: a
/// server that ended (or closed its end) before it answered is said so,
/// however the client library found it out first (a broken pipe or a
/// closed connection: a race); what else the library reports keeps its
/// words.
fn handshake_failed(e: &rmcp::service::ClientInitializeError) -> String {
    use rmcp::service::ClientInitializeError as E;
    match e {
        E::ConnectionClosed(_) | E::TransportError { .. } => {
            "it ended before it answered swarm's handshake".to_string()
        }
        E::JsonRpcError(data) => format!("it refused swarm's handshake: {}", data.message),
        other => format!("its answer to swarm's handshake was not MCP's: {other}"),
    }
}

/// Why a server stopped answering a call, in swarm's words: a server
/// that ended or closed its end is said so, however the client library
/// found it out (a write to a closed pipe, or a read that ended: a race,
/// as at the handshake); what else the library reports keeps its words.
fn call_failed(server: &str, tool: &str, e: &ServiceError) -> String {
    match e {
        ServiceError::TransportSend(_) | ServiceError::TransportClosed => {
            format!("MCP server `{server}` ended while swarm called its tool `{tool}`")
        }
        ServiceError::UnexpectedResponse => {
            format!(
                "MCP server `{server}` answered a call of `{tool}` with something other than its result"
            )
        }
        other => format!("MCP server `{server}` stopped answering (calling `{tool}`: {other})"),
    }
}

fn tail_note(stderr: &str) -> String {
    match stderr.trim() {
        "" => String::new(),
        // One line: this ends up in a task's reason, which the summary
        // shows on one (its lines apart, ` / ` between them).
        tail => format!(
            "; its stderr ends with: {}",
            tail.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" / ")
        ),
    }
}

/// The end of a server's stderr, kept as it is written.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    closed: bool,
}

type SharedTail = Arc<Mutex<Tail>>;

fn tail_text(tail: &SharedTail) -> String {
    tail.lock()
        .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
        .unwrap_or_default()
}

/// One running server.
struct Server {
    name: String,
    client: RunningService<RoleClient, ()>,
    stderr: SharedTail,
}

/// The task's running servers and the tools they offer.
pub(crate) struct Servers {
    runtime: tokio::runtime::Runtime,
    servers: Vec<Server>,
    /// The model's name of each tool → (server index, the server's name
    /// of the tool).
    tools: BTreeMap<String, (usize, String)>,
    specs: Vec<ToolSpec>,
    call_timeout: Duration,
}

impl Servers {
    /// Starts `servers` in `root` and lists their tools; names already
    /// taken (`taken`: the agent's own tools) are not offered again.
    /// `log` hears of tools left out.
    pub fn start(
        servers: &[McpServer],
        root: &Path,
        call_timeout: Duration,
        taken: &[String],
        log: &mut dyn std::io::Write,
    ) -> Result<Servers, McpFailed> {
        // One thread of its own, so that servers' stderr and notifications
        // are read while the agent waits on the model.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| McpFailed {
                message: format!("start the MCP client: {e}"),
                stderr: String::new(),
            })?;
        let mut started = Servers {
            runtime,
            servers: Vec::new(),
            tools: BTreeMap::new(),
            specs: Vec::new(),
            call_timeout,
        };
        for spec in servers {
            let (server, tools) = started.runtime.block_on(start_one(spec, root))?;
            let index = started.servers.len();
            for tool in tools {
                let name = tool_name(&spec.name, &tool.name);
                if taken.contains(&name) || started.tools.contains_key(&name) {
                    let _ = writeln!(
                        log,
                        "swarm agent: MCP server `{}`'s tool `{}` is left out: its name `{name}` is taken",
                        spec.name, tool.name
                    );
                    continue;
                }
                let description = tool
                    .description
                    .as_deref()
                    .or(tool.title.as_deref())
                    .unwrap_or_default();
                started.specs.push(ToolSpec {
                    name: name.clone(),
                    description: format!(
                        "[MCP server `{}`] {}",
                        spec.name,
                        description
                            .chars()
                            .take(MAX_DESCRIPTION)
                            .collect::<String>()
                    ),
                    input_schema: Value::Object((*tool.input_schema).clone()),
                });
                started.tools.insert(name, (index, tool.name.to_string()));
            }
            started.servers.push(server);
        }
        Ok(started)
    }

    /// The tools of every server, as the model sees them.
    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// Whether `name` is one of the servers' tools.
    pub fn has(&self, name: &str) -> bool {
        self.tools.contains_key(name)
    }

    /// Calls tool `name` with `input`: its answer (text, `is_error`), or
    /// the server's failure.
    pub fn call(&self, name: &str, input: &Value) -> Result<(String, bool), McpFailed> {
        let Some((index, tool)) = self.tools.get(name) else {
            return Ok((format!("unknown tool `{name}`"), true));
        };
        let Some(server) = self.servers.get(*index) else {
            return Ok((format!("unknown tool `{name}`"), true));
        };
        let arguments = match input {
            Value::Object(map) => map.clone(),
            Value::Null => serde_json::Map::new(),
            _ => {
                return Ok((
                    format!("the arguments of `{name}` must be a JSON object"),
                    true,
                ));
            }
        };
        let params = CallToolRequestParams::new(tool.clone()).with_arguments(arguments);
        let timeout = self.call_timeout;
        let answered = self.runtime.block_on(async {
            tokio::time::timeout(timeout, server.client.peer().call_tool(params)).await
        });
        match answered {
            Err(_) => Ok((
                format!(
                    "`{name}` did not answer within {} s; try something smaller",
                    timeout.as_secs()
                ),
                true,
            )),
            // The server answered with an error of its own: the model's
            // to act on.
            Ok(Err(ServiceError::McpError(e))) => Ok((format!("error: {}", e.message), true)),
            Ok(Err(e)) => Err(McpFailed {
                message: call_failed(&server.name, tool, &e),
                stderr: self.runtime.block_on(settled_tail(&server.stderr)),
            }),
            Ok(Ok(result)) => {
                let text = bounded(render(&result.content, result.structured_content.as_ref()));
                Ok((text, result.is_error.unwrap_or(false)))
            }
        }
    }

    /// A one-line description of a call, for progress views.
    pub fn describe(name: &str, input: &Value) -> String {
        let args = input.to_string();
        let args: String = args.chars().take(80).collect();
        format!("{name} {args}")
    }
}

/// How long stopping the servers may take, all together.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

impl Drop for Servers {
    /// Stops every server at once as the MCP specification's stdio
    /// shutdown goes (stdin closed, then SIGTERM, then SIGKILL), for at
    /// most [`STOP_TIMEOUT`]; what is left is killed when dropped (its
    /// process was started with `kill_on_drop`), and the sandbox ends
    /// whatever remains with the attempt.
    fn drop(&mut self) {
        let servers = std::mem::take(&mut self.servers);
        self.runtime.block_on(async {
            let mut stopping = tokio::task::JoinSet::new();
            for mut server in servers {
                stopping.spawn(async move {
                    let _ = server.client.close_with_timeout(STOP_TIMEOUT).await;
                });
            }
            let _ = tokio::time::timeout(STOP_TIMEOUT, stopping.join_all()).await;
        });
    }
}

/// Starts `spec` and lists its tools.
async fn start_one(
    spec: &McpServer,
    root: &Path,
) -> Result<(Server, Vec<rmcp::model::Tool>), McpFailed> {
    let failed = |message: String, stderr: String| McpFailed { message, stderr };
    let Some((program, args)) = spec.command.split_first() else {
        return Err(failed(
            format!("start MCP server `{}`: it has no command", spec.name),
            String::new(),
        ));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(&spec.env)
        .current_dir(root)
        .kill_on_drop(true);
    // Not while a bash command's leftovers are looked for (see
    // `tools::spawning`).
    let spawned = {
        let _spawning = super::tools::spawning();
        TokioChildProcess::builder(command)
            .stderr(Stdio::piped())
            .spawn()
    };
    let (transport, stderr) = spawned.map_err(|e| {
        failed(
            format!("start MCP server `{}` ({program}): {e}", spec.name),
            String::new(),
        )
    })?;
    let tail: SharedTail = Arc::default();
    if let Some(mut stderr) = stderr {
        let tail = Arc::clone(&tail);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                let n = match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Ok(mut t) = tail.lock() {
                    t.bytes.extend_from_slice(buf.get(..n).unwrap_or_default());
                    let excess = t.bytes.len().saturating_sub(STDERR_TAIL);
                    t.bytes.drain(..excess);
                }
            }
            if let Ok(mut t) = tail.lock() {
                t.closed = true;
            }
        });
    }
    let client = match tokio::time::timeout(START_TIMEOUT, ().serve(transport)).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            return Err(failed(
                format!("start MCP server `{}`: {}", spec.name, handshake_failed(&e)),
                settled_tail(&tail).await,
            ));
        }
        Err(_) => {
            return Err(failed(
                format!(
                    "start MCP server `{}`: it did not answer within {} s",
                    spec.name,
                    START_TIMEOUT.as_secs()
                ),
                tail_text(&tail),
            ));
        }
    };
    let tools = match tokio::time::timeout(START_TIMEOUT, client.peer().list_all_tools()).await {
        Ok(Ok(tools)) => tools,
        Ok(Err(e)) => {
            return Err(failed(
                format!("list the tools of MCP server `{}`: {e}", spec.name),
                settled_tail(&tail).await,
            ));
        }
        Err(_) => {
            return Err(failed(
                format!(
                    "list the tools of MCP server `{}`: no answer within {} s",
                    spec.name,
                    START_TIMEOUT.as_secs()
                ),
                tail_text(&tail),
            ));
        }
    };
    Ok((
        Server {
            name: spec.name.clone(),
            client,
            stderr: tail,
        },
        tools,
    ))
}

/// The stderr tail once the server has closed it (or after a moment):
/// a server that just died may still be writing why.
async fn settled_tail(tail: &SharedTail) -> String {
    for _ in 0..20 {
        if tail.lock().map(|t| t.closed).unwrap_or(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tail_text(tail)
}

/// The model's name of `server`'s tool `tool`: `<server>__<tool>`, with
/// what the providers do not take in a name made `_`, at most 64
/// characters.
pub(crate) fn tool_name(server: &str, tool: &str) -> String {
    let name: String = format!("{server}__{tool}")
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => c,
            _ => '_',
        })
        .take(MAX_TOOL_NAME)
        .collect();
    name
}

/// A tool's answer as text: its text blocks, a note for each block of
/// another kind, or its structured content when it has nothing else.
fn render(content: &[ContentBlock], structured: Option<&Value>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for block in content {
        match block {
            ContentBlock::Text(t) => parts.push(t.text.clone()),
            ContentBlock::Image(i) => parts.push(format!(
                "[an image, {}, {} bytes of base64, not shown]",
                i.mime_type,
                i.data.len()
            )),
            ContentBlock::Audio(a) => parts.push(format!(
                "[audio, {}, {} bytes of base64, not shown]",
                a.mime_type,
                a.data.len()
            )),
            other => parts.push(serde_json::to_string(other).unwrap_or_default()),
        }
    }
    if parts.is_empty()
        && let Some(value) = structured
    {
        parts.push(value.to_string());
    }
    parts.join("\n")
}

/// `text` cut to [`MAX_RESULT`] bytes (at a character boundary), saying so.
fn bounded(text: String) -> String {
    if text.len() <= MAX_RESULT {
        return text;
    }
    let end = text.floor_char_boundary(MAX_RESULT);
    format!(
        "{}\n[cut: the answer was {} bytes; the first {end} are shown]",
        text.get(..end).unwrap_or_default(),
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_prefixed_and_fit_the_providers_rules() {
        assert_eq!(tool_name("files", "read_file"), "files__read_file");
        assert_eq!(tool_name("web", "fetch.url v2"), "web__fetch_url_v2");
        let long = tool_name("a", &"x".repeat(100));
        assert_eq!(long.len(), MAX_TOOL_NAME);
        assert!(long.starts_with("a__x"));
    }

    #[test]
    fn long_answers_are_cut_at_a_character_boundary_and_say_so() {
        let text = "é".repeat(MAX_RESULT);
        let cut = bounded(text.clone());
        assert!(cut.len() < text.len());
        assert!(cut.contains("[cut: the answer was"));
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn a_server_gone_mid_call_is_said_in_swarms_words_however_the_library_found_it() {
        let sent = ServiceError::TransportSend(rmcp::transport::DynamicTransportError::from_parts(
            "child process",
            std::any::TypeId::of::<()>(),
            Box::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        ));
        let said: Vec<String> = [
            sent,
            ServiceError::TransportClosed,
            ServiceError::UnexpectedResponse,
            ServiceError::Cancelled { reason: None },
        ]
        .iter()
        .map(|e| call_failed("files", "list_directory", e))
        .collect();
        assert_eq!(said[0], said[1]);
        insta::assert_snapshot!(said[1..].join("\n"), @"
        MCP server `files` ended while swarm called its tool `list_directory`
        MCP server `files` answered a call of `list_directory` with something other than its result
        MCP server `files` stopped answering (calling `list_directory`: task cancelled for reason <unknown>)
        ");
    }

    #[test]
    fn a_failure_carries_the_servers_last_words() {
        let e = McpFailed {
            message: "start MCP server `x`: connection closed".into(),
            stderr: "boom\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "start MCP server `x`: connection closed; its stderr ends with: boom"
        );
        let quiet = McpFailed {
            message: "m".into(),
            stderr: " \n".into(),
        };
        assert_eq!(quiet.to_string(), "m");
    }
}
