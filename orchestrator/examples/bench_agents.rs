//! Benchmark driver for `bench/run.sh`: what agent tasks cost swarm, against
//! the mock model server of the tests (real HTTP on loopback, SSE).
//!
//! ```text
//! bench_agents latency N
//!     prints: direct_p50_us gateway_p50_us added_p50_us added_p90_us
//! bench_agents goodput LIMIT AGENTS SECONDS RPM
//!     prints: accepted_per_s goodput_pct rate_limited early_retries
//!     (goodput: accepted requests over what the mock's windows allowed)
//! bench_agents rss SWARM
//!     prints: idle_rss_kb
//! bench_agents fanout SWARM N DIR
//!     prints: wall_ms agents_alive_max agent_rss_max_kb agent_rss_mean_kb coordinator_rss_max_kb
//! bench_agents door N
//!     prints: direct_p50_us door_p50_us added_p50_us added_p90_us
//! bench_agents cli SWARM AGENT DIR [PATH]
//!     prints: wall_ms first_call_ms idle_rss_kb peak_rss_kb
//! bench_agents cache TURNS
//!     prints, for prompt_cache on then off: input read written output usd
//! ```
//!
//! cache: one session of swarm's agent (its real system prompt and tools)
//! of TURNS turns, each adding about 2 KB of tool output, against the mock
//! billing its prompt cache as Anthropic does, priced as
//! claude-sonnet-4-5 (cache reads a tenth of input, writes 1.25 times):
//! the session's tokens, those read from and written to the cache, and
//! what it cost, with the gateway's cache markers and without.
//!
//! door: N first-turn Messages calls straight to the mock vs the same body
//! through an agent CLI's door (token checked, budgets, limiter, the
//! stream passed through and read on the way, transcript), alternating.
//! cli: one `swarm run` of one agent task, sandboxed, worked by AGENT
//! (`swarm`, `claude-code` or `codex`, found on PATH), on the same scripted
//! exchange (a shell command that writes a file, then done): the run's
//! wall time, the time from its start to the first model call, and the
//! agent's processes' RSS summed, while the mock holds its first answer for
//! a second (idle) and at most (peak).
//!
//! latency: N first-turn calls straight to the mock with reqwest (the
//! stream read to its end) vs the same calls through a gateway session (a
//! worker's turn sent on the channel until the whole reply is back); the
//! difference is what the gateway adds. goodput: AGENTS sessions call as
//! fast as they can for SECONDS against a mock that allows LIMIT requests a
//! second (429 + retry-after beyond), with RPM requests per minute of pacing
//! (0: none). rss: one `swarm __agent` waiting for the model. fanout: a
//! real `swarm run` of N agent tasks at once, sandboxed, against a mock
//! allowing 50 requests a second, with every agent process's RSS sampled.

#[path = "../../tests/e2e/support/model/mod.rs"]
mod model;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use model::{MockModel, Options, Reply, Wire};
use serde_json::json;
use swarm_orchestrator::gateway::{Gateway, Session, Verdict, Verifier};
use swarm_orchestrator::plan::{AgentTask, Budget, ModelConfig, Provider};
use swarm_protocol::agent::{AgentMessage, Block, CoordinatorMessage};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["latency", n] => latency(n.parse()?),
        ["goodput", limit, agents, secs, rpm] => {
            goodput(limit.parse()?, agents.parse()?, secs.parse()?, rpm.parse()?)
        }
        ["rss", swarm] => rss(&std::fs::canonicalize(swarm)?),
        ["fanout", swarm, n, dir] => {
            fanout(&std::fs::canonicalize(swarm)?, n.parse()?, Path::new(dir))
        }
        ["admission", swarm, n, dir] => admission(
            &std::fs::canonicalize(swarm)?,
            "swarm",
            n.parse()?,
            Path::new(dir),
        ),
        ["admission", swarm, agent, n, dir] => admission(
            &std::fs::canonicalize(swarm)?,
            agent,
            n.parse()?,
            Path::new(dir),
        ),
        ["door", n] => door(n.parse()?),
        ["cli", swarm, agent, dir] => cli(&std::fs::canonicalize(swarm)?, agent, Path::new(dir)),
        ["cache", turns] => cache(turns.parse()?),
        _ => bail!("usage: see the top of bench_agents.rs"),
    }
}

fn config(mock: &MockModel, concurrency: usize, rpm: Option<u32>) -> ModelConfig {
    ModelConfig {
        name: "default".into(),
        provider: Provider::Anthropic,
        model: "claude-sonnet-4-5".into(),
        base_url: mock.base_url(Wire::Anthropic),
        api_key_env: None,
        max_tokens: 1024,
        concurrency,
        requests_per_minute: rpm,
        tokens_per_minute: None,
        retries: 4,
        timeout: Duration::from_secs(30),
        price: None,
        prompt_cache: true,
        tool_choice: Default::default(),
        span: 0..0,
    }
}

fn agent_task(prompt: &str) -> AgentTask {
    AgentTask {
        prompt: prompt.into(),
        model: "default".into(),
        max_turns: u32::MAX,
        budget: Budget::default(),
        repair_rounds: 0,
        temperature: None,
        cli: None,
        output_schema: None,
        mcp: Vec::new(),
    }
}

struct NoVerify;

impl Verifier for NoVerify {
    fn verify(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Verdict> + Send + '_>> {
        Box::pin(async { Verdict::Passed })
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The worker's side of a session, in process.
struct FakeWorker {
    read: tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    write: tokio::net::unix::OwnedWriteHalf,
    line: String,
}

impl FakeWorker {
    async fn send(&mut self, m: &AgentMessage) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(m)?;
        line.push(b'\n');
        self.write.write_all(&line).await?;
        Ok(())
    }

    async fn recv(&mut self) -> anyhow::Result<CoordinatorMessage> {
        self.line.clear();
        if self.read.read_line(&mut self.line).await? == 0 {
            bail!("the gateway closed the channel");
        }
        Ok(serde_json::from_str(&self.line)?)
    }

    /// Sends a turn and waits for the whole reply.
    async fn turn(&mut self, text: &str) -> anyhow::Result<()> {
        self.spend(text).await.map(drop)
    }

    /// [`FakeWorker::turn`], giving back what the session has spent.
    async fn spend(&mut self, text: &str) -> anyhow::Result<(swarm_protocol::agent::Usage, f64)> {
        self.send(&AgentMessage::Turn {
            content: vec![Block::Text { text: text.into() }],
        })
        .await?;
        loop {
            match self.recv().await? {
                CoordinatorMessage::Reply {
                    total, cost_usd, ..
                } => return Ok((total, cost_usd)),
                CoordinatorMessage::Refused { message, .. } => bail!("refused: {message}"),
                _ => {}
            }
        }
    }
}

/// A session of `gateway` served on a task of the runtime, and its worker.
async fn start_session(
    gateway: &Arc<Gateway>,
    prompt: &str,
    transcript: &Path,
) -> anyhow::Result<FakeWorker> {
    start_session_as(
        gateway,
        prompt,
        transcript,
        "You are a benchmark.",
        Vec::new(),
    )
    .await
}

/// [`start_session`] with the worker's system prompt and tools.
async fn start_session_as(
    gateway: &Arc<Gateway>,
    prompt: &str,
    transcript: &Path,
    system: &str,
    tools: Vec<swarm_protocol::agent::ToolSpec>,
) -> anyhow::Result<FakeWorker> {
    let (ours, theirs) = tokio::net::UnixStream::pair()?;
    let mut session = Session::new(
        gateway.clone(),
        "bench",
        &agent_task(prompt),
        Duration::from_secs(60),
        transcript,
    )
    .map_err(anyhow::Error::msg)?;
    tokio::spawn(async move { session.serve(ours, &mut NoVerify).await });
    let (read, write) = theirs.into_split();
    let mut worker = FakeWorker {
        read: tokio::io::BufReader::new(read),
        write,
        line: String::new(),
    };
    worker.recv().await?;
    worker
        .send(&AgentMessage::Start {
            system: system.into(),
            tools,
        })
        .await?;
    Ok(worker)
}

fn cache(turns: usize) -> anyhow::Result<()> {
    let mock = MockModel::start(
        Options {
            prompt_cache: true,
            ..Options::new("claude-sonnet-4-5")
        },
        |_| Reply::Answer {
            parts: vec![model::text("Read it; on to the next file.")],
            input_tokens: 0,
            output_tokens: 150,
        },
    );
    let dir = tempfile::tempdir()?;
    let rt = runtime()?;
    let system = swarm_worker::agent::system_prompt("refactor", dir.path(), None);
    let tools = swarm_worker::agent::tools::Tools::specs();
    let price = swarm_orchestrator::gateway::prices::lookup("claude-sonnet-4-5")
        .map(|p| swarm_orchestrator::gateway::prices::for_provider(p, Provider::Anthropic));
    let mut line = Vec::new();
    for cached in [true, false] {
        let mut config = config(&mock, 4, None);
        config.prompt_cache = cached;
        config.price = price;
        let models = BTreeMap::from([("default".to_string(), config)]);
        let gateway = Arc::new(Gateway::new(&models, &BTreeMap::new(), Budget::default())?);
        let transcript = dir.path().join(format!("{cached}.jsonl"));
        let (usage, usd) = rt.block_on(async {
            let mut worker = start_session_as(
                &gateway,
                "Rename Parser::next to Parser::advance everywhere.",
                &transcript,
                &system,
                tools.clone(),
            )
            .await?;
            let mut spent = Default::default();
            for turn in 0..turns {
                // What a tool's output adds each turn: about 2 KB.
                let output: String = (0..40)
                    .map(|l| format!("src/parse/mod{turn}.rs:{l}: let x = self.next()?;\n"))
                    .collect();
                spent = worker.spend(&output).await?;
            }
            anyhow::Ok(spent)
        })?;
        line.push(format!(
            "{} {} {} {} {:.6}",
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.output_tokens,
            usd
        ));
    }
    println!("{}", line.join(" "));
    mock.assert_clean();
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latency(n: usize) -> anyhow::Result<()> {
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |_| {
        Reply::text("ok, done.")
    });
    let dir = tempfile::tempdir()?;
    let rt = runtime()?;
    let config = config(&mock, 16, None);
    let models = BTreeMap::from([("default".to_string(), config.clone())]);
    let gateway = Arc::new(Gateway::new(&models, &BTreeMap::new(), Budget::default())?);
    let http = reqwest::Client::new();
    let body = json!({
        "model": config.model, "max_tokens": config.max_tokens,
        "system": "You are a benchmark.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "go"}]}],
        "tools": [], "stream": true,
    });
    let url = format!("{}/v1/messages", config.base_url);
    let (direct, through) = rt.block_on(async {
        let mut direct = Vec::with_capacity(n);
        let mut through = Vec::with_capacity(n);
        // Alternate the two so that drift hits both alike; warm up first.
        for i in 0..n + 20 {
            let started = Instant::now();
            let response = http
                .post(&url)
                .header("anthropic-version", "2023-06-01")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body)?)
                .send()
                .await?;
            let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
            while let Some(event) = events.next().await {
                if event?.event == "message_stop" {
                    break;
                }
            }
            let d = started.elapsed();

            let mut worker =
                start_session(&gateway, "go", &dir.path().join(format!("{i}.jsonl"))).await?;
            let started = Instant::now();
            worker.turn("go").await?;
            let g = started.elapsed();
            if i >= 20 {
                direct.push(d);
                through.push(g);
            }
        }
        anyhow::Ok((direct, through))
    })?;
    let mut added: Vec<Duration> = through
        .iter()
        .zip(&direct)
        .map(|(g, d)| g.saturating_sub(*d))
        .collect();
    let (mut direct, mut through) = (direct, through);
    direct.sort();
    through.sort();
    added.sort();
    let d50 = percentile(&direct, 0.5);
    let g50 = percentile(&through, 0.5);
    println!(
        "{} {} {} {}",
        d50.as_micros(),
        g50.as_micros(),
        g50.saturating_sub(d50).as_micros(),
        percentile(&added, 0.9).as_micros()
    );
    mock.assert_clean();
    Ok(())
}

fn goodput(limit: u32, agents: usize, secs: u64, rpm: u32) -> anyhow::Result<()> {
    let mock = MockModel::start(
        Options {
            rate_limit: Some(limit),
            ..Options::new("claude-sonnet-4-5")
        },
        |_| Reply::text("ok"),
    );
    let dir = tempfile::tempdir()?;
    let rt = runtime()?;
    let config = config(&mock, agents, (rpm > 0).then_some(rpm));
    let models = BTreeMap::from([("default".to_string(), config)]);
    let gateway = Arc::new(Gateway::new(&models, &BTreeMap::new(), Budget::default())?);
    let before = mock.stats();
    let elapsed = rt.block_on(async {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(secs);
        let mut set = tokio::task::JoinSet::new();
        for i in 0..agents {
            let gateway = gateway.clone();
            let transcript = dir.path().join(format!("{i}.jsonl"));
            set.spawn(async move {
                let mut worker =
                    start_session(&gateway, &format!("agent {i}"), &transcript).await?;
                // The first turn names the conversation for the mock's
                // early-retry check.
                let mut text = format!("agent {i}");
                while Instant::now() < deadline {
                    worker.turn(&text).await?;
                    text = "again".into();
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = set.join_next().await {
            done??;
        }
        anyhow::Ok(started.elapsed())
    })?;
    let stats = mock.stats();
    let accepted = (stats.accepted - before.accepted) as f64;
    let per_s = accepted / elapsed.as_secs_f64();
    // The mock counts fixed one-second windows from its start, which was
    // just before ours: the run spans this many of them.
    let windows = elapsed.as_secs() + 1;
    println!(
        "{per_s:.1} {:.1} {} {}",
        100.0 * accepted / (windows as f64 * f64::from(limit)),
        stats.rate_limited - before.rate_limited,
        stats.early_retries
    );
    Ok(())
}

/// Starts `swarm __agent` in `dir` with a channel; returns it and our end.
fn spawn_agent(
    swarm: &Path,
    dir: &Path,
) -> anyhow::Result<(std::process::Child, std::os::unix::net::UnixStream)> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let fd = theirs.as_raw_fd();
    let mut cmd = tokio::process::Command::new(swarm);
    cmd.arg("__agent")
        .current_dir(dir)
        .env_clear()
        .env(swarm_protocol::agent::CHANNEL_FD_VAR, fd.to_string())
        .stdout(std::process::Stdio::null());
    swarm_sandbox::process::pass_fd(&mut cmd, fd);
    let child = cmd.as_std_mut().spawn().context("start swarm __agent")?;
    drop(theirs);
    Ok((child, ours))
}

fn rss_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn rss(swarm: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("README.md"), "# bench\n")?;
    let (mut child, ours) = spawn_agent(swarm, dir.path())?;
    let mut write = ours.try_clone()?;
    let mut read = BufReader::new(ours);
    let hello = CoordinatorMessage::Hello {
        task: "bench".into(),
        prompt: "go".into(),
        max_turns: 10,
        bash_timeout_secs: 60,
        mcp: Vec::new(),
        network: None,
    };
    writeln!(write, "{}", serde_json::to_string(&hello)?)?;
    // Start, then the first turn: the agent now waits for the model.
    let mut line = String::new();
    for _ in 0..2 {
        line.clear();
        read.read_line(&mut line)?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss = rss_kb(child.id(), "VmRSS:").context("read the agent's RSS")?;
    child.kill()?;
    child.wait()?;
    println!("{rss}");
    Ok(())
}

fn fanout(swarm: &Path, n: usize, dir: &Path) -> anyhow::Result<()> {
    let mock = MockModel::start(
        Options {
            rate_limit: Some(50),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| match call.turn {
            0 => Reply::answer(vec![model::tool(
                "w",
                "write_file",
                json!({"path": format!("out/{}.txt", call.conversation.replace(' ', "-")), "content": "done\n"}),
            )]),
            1 => Reply::answer(vec![model::tool(
                "b",
                "bash",
                json!({"command": "wc -l README.md"}),
            )]),
            _ => Reply::answer(vec![model::tool("f", "finish", json!({"summary": "done"}))]),
        },
    );
    let repo = one_commit_repo(&dir.join("repo"), "# fan-out\n")?;
    let plan_path = agents_plan(
        dir,
        "fanout",
        n,
        (&mock, Wire::Anthropic, "claude-sonnet-4-5"),
        |_| String::new(),
    )?;
    let started = Instant::now();
    let mut child = run_quiet(swarm, &repo, &plan_path)?;
    let coordinator = child.id();
    let mut alive_max = 0usize;
    let mut agent_max = 0u64;
    let mut agent_sum = 0u64;
    let mut agent_samples = 0u64;
    let mut coordinator_max = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        coordinator_max = coordinator_max.max(rss_kb(coordinator, "VmRSS:").unwrap_or(0));
        let agents = agent_pids();
        alive_max = alive_max.max(agents.len());
        for pid in agents {
            if let Some(kb) = rss_kb(pid, "VmRSS:") {
                agent_max = agent_max.max(kb);
                agent_sum += kb;
                agent_samples += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed();
    if !status.success() {
        bail!("swarm run failed: {status}");
    }
    println!(
        "{} {alive_max} {agent_max} {} {coordinator_max}",
        wall.as_millis(),
        agent_sum / agent_samples.max(1)
    );
    Ok(())
}

/// admission: N agent tasks ready at once (`concurrency = N`), each of
/// three turns (two for an agent CLI: a command, then its answer), the
/// mock answering every call after 300 ms (a model's think time): how many
/// agents ran at once (from the journal: attempts started and not yet
/// finished), whether any was killed for memory or failed to start, each
/// task's wait from ready to start (p50 and p95), the coordinator's RSS (a
/// quarter into the run, at its most, at its last sample) and the agents'
/// own processes' RSS together at its most. `agent`: `swarm` (swarm's own
/// agent), or an agent CLI (`claude-code`, `codex`) on PATH.
///
/// prints: wall_ms agents_alive_max oom_kills start_failures wait_p50_ms
/// wait_p95_ms coordinator_rss_early_kb coordinator_rss_max_kb
/// coordinator_rss_last_kb agents_rss_max_kb tasks_done (merged or
/// succeeded: their verify passed)
fn admission(swarm: &Path, agent: &str, n: usize, dir: &Path) -> anyhow::Result<()> {
    let (wire, model_name) = match agent {
        "codex" => (Wire::Responses, "gpt-5-codex"),
        _ => (Wire::Anthropic, "claude-sonnet-4-5"),
    };
    let agent_name = agent.to_string();
    let mock = MockModel::start(Options::new(model_name), move |call| {
        // A CLI's side calls (a title, a summary) carry no tools.
        if call.tools.is_empty() {
            return Reply::text("a title");
        }
        std::thread::sleep(Duration::from_millis(300));
        let done = !call.tool_results.is_empty();
        // A CLI's first user message is its own wrapping of the prompt:
        // its tasks each write one file of their worktree.
        let out = match agent_name.as_str() {
            "swarm" => format!("out/{}.txt", call.conversation.replace(' ', "-")),
            _ => "out/done.txt".to_string(),
        };
        match (agent_name.as_str(), call.turn) {
            ("swarm", 0) => Reply::answer(vec![model::tool(
                "b",
                "bash",
                json!({"command": "wc -l README.md"}),
            )]),
            ("swarm", 1) => Reply::answer(vec![model::tool(
                "w",
                "write_file",
                json!({"path": out, "content": "done\n"}),
            )]),
            ("swarm", _) => {
                Reply::answer(vec![model::tool("f", "finish", json!({"summary": "done"}))])
            }
            (cli, _) => cli_turn(cli, done, &format!("mkdir -p out && echo done > {out}")),
        }
    });
    let repo = one_commit_repo(&dir.join("repo"), "# admission\n")?;
    let plan_path = agents_plan(
        dir,
        "admission",
        n,
        (&mock, wire, model_name),
        |i| match agent {
            "swarm" => format!("verify = \"test -s out/agent-{i}.txt\"\n"),
            cli => format!("agent = \"{cli}\"\nverify = \"test -s out/done.txt\"\n"),
        },
    )?;
    let started = Instant::now();
    let mut child = run_quiet(swarm, &repo, &plan_path)?;
    let coordinator = child.id();
    let (mut agents_rss_max, mut rss) = (0u64, Vec::new());
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if let Some(kb) = rss_kb(coordinator, "VmRSS:") {
            rss.push(kb);
        }
        let agents: u64 = cli_pids(agent)
            .iter()
            .filter_map(|&p| rss_kb(p, "VmRSS:"))
            .sum();
        agents_rss_max = agents_rss_max.max(agents);
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = started.elapsed();
    let journal = std::fs::read_to_string(repo.join(".swarm/runs/admission/events.jsonl"))?;
    let (mut queued, mut waits) = (BTreeMap::new(), Vec::new());
    let (mut oom, mut failed_start) = (0, 0);
    let (mut alive, mut alive_max, mut done) = (0usize, 0usize, 0usize);
    for line in journal.lines() {
        let e: serde_json::Value = serde_json::from_str(line)?;
        let at = |e: &serde_json::Value| {
            e["ts"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339(t).ok())
        };
        match e["event"].as_str() {
            Some("task_queued") => {
                queued.insert(e["task"].as_str().unwrap_or("").to_string(), at(&e));
            }
            Some("task_started") => {
                alive += 1;
                alive_max = alive_max.max(alive);
            }
            Some("task_finished")
                if matches!(e["status"].as_str(), Some("merged" | "succeeded")) =>
            {
                done += 1;
            }
            _ => {}
        }
        match e["event"].as_str() {
            Some("task_started") if e["attempt"] == 1 => {
                if let (Some(Some(q)), Some(s)) =
                    (queued.get(e["task"].as_str().unwrap_or("")), at(&e))
                {
                    let waited = s.duration_since(*q).unwrap_or_default();
                    waits.push(waited.as_millis() as u64);
                }
            }
            Some("attempt_finished") => {
                alive = alive.saturating_sub(1);
                match e["outcome"].as_str() {
                    Some("out_of_memory") => oom += 1,
                    Some("spawn_failed") => failed_start += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    waits.sort_unstable();
    let pct = |p: usize| {
        waits
            .get((waits.len().saturating_sub(1)) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{} {alive_max} {oom} {failed_start} {} {} {} {} {} {agents_rss_max} {done}",
        wall.as_millis(),
        pct(50),
        pct(95),
        rss.get(rss.len() / 4).copied().unwrap_or(0),
        rss.iter().copied().max().unwrap_or(0),
        rss.last().copied().unwrap_or(0),
    );
    Ok(())
}

/// A plan `DIR/NAME.toml` of `n` agent tasks (`agent-0`...) at once
/// against `mock`, each with `extra(i)` added to its table; its path.
fn agents_plan(
    dir: &Path,
    name: &str,
    n: usize,
    (mock, wire, model): (&MockModel, Wire, &str),
    extra: impl Fn(usize) -> String,
) -> anyhow::Result<std::path::PathBuf> {
    let provider = match wire {
        Wire::Responses => "openai",
        _ => "anthropic",
    };
    let mut plan = format!(
        "[swarm]\nname = \"{name}\"\nconcurrency = {n}\non_failure = \"continue\"\n\n[models.default]\nprovider = \"{provider}\"\nmodel = \"{model}\"\nbase_url = \"{}\"\napi_key_env = \"\"\nconcurrency = {n}\n\n",
        mock.base_url(wire)
    );
    for i in 0..n {
        plan.push_str(&format!(
            "[[task]]\nid = \"agent-{i}\"\nprompt = \"agent {i}\"\n{}\n",
            extra(i)
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, plan)?;
    Ok(path)
}

/// `swarm run --quiet PLAN` in `repo`, its output dropped.
fn run_quiet(swarm: &Path, repo: &Path, plan: &Path) -> anyhow::Result<std::process::Child> {
    Ok(std::process::Command::new(swarm)
        .current_dir(repo)
        .args(["run", "--quiet"])
        .arg(plan)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?)
}

/// Pids of running `swarm __agent` processes.
fn agent_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|&b| b == 0).nth(1) == Some(b"__agent".as_slice()))
                .unwrap_or(false)
        })
        .collect()
}

/// What an agent CLI's door adds to a model call.
fn door(n: usize) -> anyhow::Result<()> {
    use swarm_orchestrator::gateway::door::{Door, DoorSettings};
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |_| {
        Reply::answer(vec![model::text("All done, nothing to change.")])
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let models = BTreeMap::from([("default".to_string(), config(&mock, 4, None))]);
    let gateway = Arc::new(Gateway::new(&models, &BTreeMap::new(), Budget::default())?);
    let dir = tempfile::tempdir()?;
    let _guard = rt.enter();
    let door = Door::new(
        gateway,
        DoorSettings {
            task: "bench".into(),
            agent: "bench".into(),
            model: "default".into(),
            token: "swarm-bench".into(),
            max_turns: u32::MAX,
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
    )?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let door_url = format!("http://{}/v1/messages", listener.local_addr()?);
    door.serve(listener)?;
    let direct_url = format!("{}/v1/messages", mock.base_url(Wire::Anthropic));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
        "system": "You are a coding agent.",
        "messages": [{"role": "user", "content": "Fix the bug in src/lib.rs."}]})
    .to_string();
    let http = reqwest::Client::new();
    let call = |url: String| {
        let (http, body) = (http.clone(), body.clone());
        async move {
            let started = Instant::now();
            let response = http
                .post(url)
                .header("x-api-key", "swarm-bench")
                .header("anthropic-version", "2023-06-01")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                chunk?;
            }
            anyhow::Ok(started.elapsed())
        }
    };
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..20 {
            call(direct_url.clone()).await?;
            call(door_url.clone()).await?;
        }
        for _ in 0..n {
            direct.push(call(direct_url.clone()).await?);
            through.push(call(door_url.clone()).await?);
        }
        anyhow::Ok(())
    })?;
    let mut added: Vec<i128> = direct
        .iter()
        .zip(&through)
        .map(|(d, t)| t.as_micros() as i128 - d.as_micros() as i128)
        .collect();
    direct.sort();
    through.sort();
    added.sort();
    println!(
        "{} {} {} {}",
        direct[n / 2].as_micros(),
        through[n / 2].as_micros(),
        added[n / 2],
        added[n * 9 / 10]
    );
    drop(door);
    Ok(())
}

/// One agent task worked by `agent`, on the same scripted exchange.
fn cli(swarm: &Path, agent: &str, dir: &Path) -> anyhow::Result<()> {
    let first_call: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let seen = Arc::clone(&first_call);
    let (wire, model_name) = match agent {
        "codex" => (Wire::Responses, "gpt-5-codex"),
        _ => (Wire::Anthropic, "claude-sonnet-4-5"),
    };
    let agent_name = agent.to_string();
    let mock = MockModel::start(Options::new(model_name), move |call| {
        let done = !call.tool_results.is_empty();
        if call.tools.is_empty() {
            return Reply::text("a title");
        }
        if !done {
            let mut first = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if first.is_none() {
                *first = Some(Instant::now());
                drop(first);
                // Idle: the agent waits for its model.
                std::thread::sleep(Duration::from_millis(1000));
            }
        }
        match (agent_name.as_str(), done) {
            ("swarm", false) => Reply::answer(vec![model::tool(
                "b",
                "bash",
                json!({"command": "echo done > out.txt"}),
            )]),
            ("swarm", true) => {
                Reply::answer(vec![model::tool("f", "finish", json!({"summary": "done"}))])
            }
            (cli, done) => cli_turn(cli, done, "echo done > out.txt"),
        }
    });
    let repo = one_commit_repo(&dir.join(format!("repo-{agent}")), "# bench\n")?;
    let provider = if wire == Wire::Responses {
        "openai"
    } else {
        "anthropic"
    };
    let plan = format!(
        "[swarm]\nname = \"cli\"\n\n[models.default]\nprovider = \"{provider}\"\nmodel = \"{model_name}\"\nbase_url = \"{}\"\napi_key_env = \"\"\n\n[[task]]\nid = \"t\"\nagent = \"{agent}\"\nprompt = \"Write done to out.txt.\"\nverify = \"test -s out.txt\"\n",
        mock.base_url(wire)
    );
    let plan_path = dir.join(format!("cli-{agent}.toml"));
    std::fs::write(&plan_path, plan)?;
    let started = Instant::now();
    let mut child = std::process::Command::new(swarm)
        .current_dir(&repo)
        .args(["run", "--quiet"])
        .arg(&plan_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let (mut idle, mut peak) = (0u64, 0u64);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let kb: u64 = cli_pids(agent)
            .iter()
            .filter_map(|&p| rss_kb(p, "VmRSS:"))
            .sum();
        peak = peak.max(kb);
        let waiting = first_call
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < Duration::from_millis(900));
        if waiting {
            idle = idle.max(kb);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    anyhow::ensure!(status.success(), "swarm run with agent {agent} failed");
    let first = first_call
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .map(|at| at - started)
        .context("no model call came")?;
    // The mock held its first answer for a second: not the agent's time.
    println!(
        "{} {} {idle} {peak}",
        wall.saturating_sub(Duration::from_secs(1)).as_millis(),
        first.as_millis()
    );
    Ok(())
}

/// An agent CLI's turn in the benches' exchange: `command` through its
/// shell tool (Codex's `exec_command`, Claude Code's `Bash`), then, once
/// it ran (`done`), the answer.
fn cli_turn(cli: &str, done: bool, command: &str) -> Reply {
    match (cli, done) {
        (_, true) => Reply::text("Done."),
        ("codex", false) => Reply::answer(vec![model::tool(
            "c",
            "exec_command",
            json!({"cmd": command}),
        )]),
        (_, false) => Reply::answer(vec![model::tool(
            "b",
            "Bash",
            json!({"command": command, "description": "write"}),
        )]),
    }
}

/// The processes of an agent: swarm's worker (`swarm __agent`), or the
/// CLI's (its command line names its program).
fn cli_pids(agent: &str) -> Vec<u32> {
    if agent == "swarm" {
        return agent_pids();
    }
    let marker: &[u8] = match agent {
        "codex" => b"codex",
        _ => b"claude",
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let argv0 = c.split(|&b| b == 0).next().unwrap_or_default();
                let exe = c.split(|&b| b == 0).nth(1).unwrap_or_default();
                [argv0, exe].iter().any(|a| {
                    a.rsplit(|&b| b == b'/')
                        .next()
                        .is_some_and(|name| name.windows(marker.len()).any(|w| w == marker))
                })
            })
        })
        .collect()
}

/// A fresh repository at `repo` (what was there removed) whose one commit
/// holds a README of `readme`.
fn one_commit_repo(repo: &Path, readme: &str) -> anyhow::Result<std::path::PathBuf> {
    let _ = std::fs::remove_dir_all(repo);
    std::fs::create_dir_all(repo)?;
    let git = |args: &[&str]| -> anyhow::Result<()> {
        let ok = std::process::Command::new("git")
            .current_dir(repo)
            .args(args)
            .status()?
            .success();
        if !ok {
            bail!("git {args:?} failed");
        }
        Ok(())
    };
    git(&["init", "-q", "-b", "main"])?;
    std::fs::write(repo.join("README.md"), readme)?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "init"])?;
    Ok(repo.to_path_buf())
}
