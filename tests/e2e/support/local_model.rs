//! A real model served on loopback: `llama-server` (llama.cpp) or
//! llama-cpp-python's own server, with SmolLM2-135M-Instruct, all from
//! PyPI, built once by tests/local-model/setup.sh (CI does it up front in
//! .ci/run). One thread, one slot, temperature 0: the tests assert on
//! outcomes and accounting, never on what the model writes.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One build at a time (tests run in parallel).
static SETUP: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The directory holding `llama-server` and `model.gguf`, built on first
/// use.
pub fn built() -> PathBuf {
    let mut done = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = done.as_ref() {
        return dir.clone();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("tests/local-model/setup.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/local-model/setup.sh (needs python3, pip and a C++ compiler)");
    assert!(out.status.success(), "building the local model failed");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    assert!(dir.join("llama-server").is_file() && dir.join("model.gguf").is_file());
    assert!(dir.join("venv/bin/python").is_file());
    *done = Some(dir.clone());
    dir
}

/// A running model server, stopped when dropped.
pub struct LocalModel {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// A free loopback port, and a log file in a new directory.
fn place() -> (u16, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    (port, dir, log)
}

impl LocalModel {
    /// Starts llama-cpp-python's own OpenAI-compatible server
    /// (`python -m llama_cpp.server`, on the same llama.cpp build) on a
    /// free loopback port and waits until it lists its model.
    pub fn start_llama_cpp_python() -> Self {
        let built = built();
        let (port, dir, log) = place();
        let mut cmd = Command::new(built.join("venv/bin/python"));
        cmd.args(["-m", "llama_cpp.server", "--model"])
            .arg(built.join("model.gguf"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--n_threads", "1", "--n_ctx", "8192", "--seed", "1"]);
        Self::spawned(cmd, port, dir, log, "/v1/models")
    }

    /// Starts `llama-server` on a free loopback port and waits until it
    /// answers `/health`.
    pub fn start() -> Self {
        Self::start_llama_server(None)
    }

    /// Starts `llama-server` with a chat template that shows the model one
    /// fixed conversation (tests/local-model/pinned.jinja), whatever the
    /// request holds: its every answer is the same few words, ended by the
    /// model itself.
    ///
    /// Why: an agent CLI's own system prompt holds the day's date and the
    /// worktree's temporary path, so the real template gives the model a
    /// different prompt on every run, and at temperature 0 a different
    /// prompt is a different answer. Where a test needs the CLI's rounds
    /// to end as rounds (a repair round in its session), the model's
    /// answer must not depend on that: with the real template SmolLM2
    /// sometimes rambles to the CLI's output limit, and Claude Code ends
    /// its round in an error. And an agent CLI's first request is long
    /// (Codex's about 4,600 tokens, its instructions and tools), which this
    /// model on one core reads at 60-90 tokens a second: over a minute of
    /// CI for an answer the test does not look at. The server still parses
    /// the whole request (its messages, tools and options) and counts what
    /// it read and wrote, so the door's translation and accounting are
    /// checked as before; what the model would have said to the real
    /// prompt is not.
    pub fn start_pinned() -> Self {
        let pinned =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/local-model/pinned.jinja");
        Self::start_llama_server(Some(&pinned))
    }

    /// `llama-server`, with the model's own chat template or the one in
    /// the file `template`.
    fn start_llama_server(template: Option<&Path>) -> Self {
        let built = built();
        let (port, dir, log) = place();
        let mut cmd = Command::new(built.join("llama-server"));
        if let Some(template) = template {
            cmd.arg("--chat-template-file").arg(template);
        }
        cmd.args(["-m"])
            .arg(built.join("model.gguf"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            // One thread and one slot: the same answer for the same request.
            .args([
                "-t", "1", "-np", "1", "-c", "8192", "--temp", "0", "--seed", "1",
            ])
            // No flash attention: on this CPU build its kernel wrote
            // tokens at half the speed (23 a second against 41 with 1,400
            // tokens of context), and the plan tests are mostly writing.
            .args(["-fa", "off"])
            // Chat templates with tools (swarm's agent calls them), and the
            // server's own counts at `/metrics`.
            .args(["--jinja", "--metrics"]);
        Self::spawned(cmd, port, dir, log, "/health")
    }

    /// The server `cmd` started on `port`, its standard error to `log`
    /// (in `dir`, kept while it runs), once it answers `health` with 200.
    fn spawned(
        mut cmd: Command,
        port: u16,
        dir: tempfile::TempDir,
        log: PathBuf,
        health: &str,
    ) -> Self {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
        let mut model = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        model.wait_healthy(health);
        model
    }

    fn wait_healthy(&mut self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the model server ended ({status}):\n{}", self.log());
            }
            if http_get(self.port, path).is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the model server did not become healthy:\n{}", self.log());
    }

    /// The OpenAI-compatible base URL (`.../v1`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The server's own log, for a failure's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's Prometheus-style `/metrics` text (with `--metrics`).
    pub fn get(&self, path: &str) -> Option<String> {
        http_get(self.port, path)
    }

    /// A counter of the server's `/metrics` (`llamacpp:NAME`).
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").expect("GET /metrics");
        let key = format!("llamacpp:{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key}in:\n{text}"))
    }
}

impl Drop for LocalModel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on loopback; the whole response, or `None`.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}
