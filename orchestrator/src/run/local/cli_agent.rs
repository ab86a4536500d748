//! One attempt of an agent task worked by an agent CLI (Claude Code, Codex,
//! a `command` agent): the program runs headless in the task's sandbox,
//! where its only way out is one TCP port on a loopback of its own, which
//! the coordinator serves with a gateway [`Door`] (its model, a token made
//! for this attempt, the run's budgets, limits and transcript). The key
//! never enters the sandbox.
//!
//! When the program says it is done, the task's `verify` runs; a failure
//! goes back to the same session (`claude -p --resume ID`, `codex exec
//! resume ID`) with verify's output, up to `repair_rounds` times. The
//! program's own event stream (its stdout, the task's log) gives the
//! session and the verdict: a result with `is_error` is a failure whatever
//! its exit code says.

#![allow(
    clippy::disallowed_methods,
    reason = "a task's logs, swarm's own files"
)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use swarm_protocol::AttemptOutcome;
use swarm_protocol::agent::{AgentOutcome, AgentReport, McpServer};
use swarm_sandbox::{GatewayPorts, Stop};
use swarm_worker::CommandSpec;
use tokio::sync::watch;

mod adapter;
mod claude_code;
mod codex;
mod command;

use self::adapter::{Adapter, Events, Round};
use super::agent_task::{AgentAttempt, budget_groups, file_len, run_verify};
use super::ctx::Ctx;
use super::served::{Ports, run_serving};
use crate::gateway::door::{Door, DoorSettings, Refused, new_token};
use crate::plan::agents::CliKind;
use crate::plan::{AgentTask, Task};
use crate::run::options::CliProgram;

/// What swarm knows of agent CLIs of kind `kind`: one file each beside
/// this one (the book's "Adding an agent CLI").
fn adapter(kind: CliKind) -> &'static dyn Adapter {
    match kind {
        CliKind::ClaudeCode => &claude_code::ClaudeCode,
        CliKind::Codex => &codex::Codex,
        CliKind::Command => &command::Command,
    }
}

/// The port an agent CLI reaches its model on, in its own network
/// namespace (so any port would do; one fixed number reads well in logs).
pub(crate) const GATEWAY_PORT: u16 = 4141;

fn failed(message: String) -> AgentAttempt {
    AgentAttempt {
        outcome: AttemptOutcome::SpawnFailed { message },
        verify_passed: None,
        report: None,
    }
}

/// Runs one attempt of `task` with the agent CLI `cli`. `spec` is set up
/// for the task's worktree, environment, logs, deadline and sandbox. In
/// rounds: the program runs ([`Rounds::run_round`]), its answer is checked
/// ([`Rounds::check_answer`]) and its work verified, and what failed goes
/// back to it for a repair round ([`Rounds::repair`]) until it passes or
/// its repair rounds are used up.
pub(crate) async fn run(
    ctx: &Ctx,
    task: &Task,
    agent: &AgentTask,
    cli: &CliProgram,
    attempt: u32,
    spec: CommandSpec,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> AgentAttempt {
    let rounds = match Rounds::new(ctx, task, agent, cli, attempt, spec) {
        Ok(rounds) => rounds,
        Err(message) => return failed(message),
    };
    let mut state = State::new(agent);
    let (agent_outcome, detail) = loop {
        let (outcome, events, from) = match rounds.run_round(&state, stop).await {
            Ok(ran) => ran,
            Err(message) => return failed(message),
        };
        // The program's own words, about to be an argument of the next
        // round: only an id's characters, never a flag.
        if let Some(id) = events.session.as_ref().filter(|id| is_session_id(id)) {
            state.session = Some(id.clone());
        }
        if let Some(text) = events.text.clone().filter(|t| !t.is_empty()) {
            state.summary = text;
        }
        state.last_outcome = outcome.clone();
        rounds.door.note(
            "agent",
            serde_json::json!({"round": state.rounds, "exit": format!("{outcome:?}"),
                               "session": events.session, "is_error": events.is_error,
                               "subtype": events.subtype}),
        );
        let kind = rounds.cli.cli.kind;
        if !outcome.is_success() || events.is_error || (adapter(kind).has_events() && !events.done)
        {
            break round_failed(&events, &outcome);
        }
        // It says it is done: its answer first (with an output_schema),
        // then verify, and repair in the same session.
        let checked = rounds.check_answer(&events, from, &mut state.output);
        let answer_wrong = checked.is_some();
        let verdict = match (checked, &rounds.verify_spec) {
            (Some(feedback), _) => Some(feedback),
            (None, None) => break (AgentOutcome::Finished, None),
            (None, Some(verify)) => {
                let at = state.born.elapsed();
                let verdict = run_verify(verify, rounds.egress.as_ref(), &mut stop.clone()).await;
                state
                    .verify_rounds
                    .push(swarm_protocol::agent::VerifyRound {
                        at_ms: crate::millis(at),
                        dur_ms: crate::millis(state.born.elapsed().saturating_sub(at)),
                        passed: verdict.is_none(),
                    });
                verdict
            }
        };
        if stop.borrow().is_some() {
            // Stopped while its answer or work was checked: a cancel, not a
            // failed verify.
            state.last_outcome = AttemptOutcome::Cancelled;
            break (AgentOutcome::Cancelled, None);
        }
        match verdict {
            None => {
                state.verify_passed = Some(true);
                rounds
                    .door
                    .note("verify", serde_json::json!({"passed": true}));
                break (AgentOutcome::Finished, None);
            }
            Some(feedback) => {
                if let Some(end) = rounds.repair(&mut state, feedback, answer_wrong) {
                    break end;
                }
            }
        }
    };
    rounds.end(state, agent_outcome, detail)
}

/// What every round of a CLI agent's attempt shares: the program, its
/// command as set up, its door to the gateway and its egress proxy.
struct Rounds<'a> {
    task: &'a Task,
    agent: &'a AgentTask,
    cli: &'a CliProgram,
    spec: CommandSpec,
    verify_spec: Option<CommandSpec>,
    door: Door,
    /// The door's port, and the proxy's beside it with a network list.
    ports: GatewayPorts,
    egress: Option<Arc<super::egress::Egress>>,
    /// The program's home for this attempt.
    home: PathBuf,
    /// The model as its provider names it.
    provider_model: String,
    mcp: Vec<McpServer>,
}

/// Where the rounds of an attempt stand.
struct State {
    /// What the next round tells the program.
    prompt: String,
    /// The program's session, which a repair round resumes.
    session: Option<String>,
    /// Repair rounds so far.
    rounds: u32,
    /// The program's last words.
    summary: String,
    /// How its last round ended (every round sets it before the attempt
    /// can end).
    last_outcome: AttemptOutcome,
    verify_passed: Option<bool>,
    /// Its answer, checked against the task's `output_schema`.
    output: Option<Value>,
    /// Verify rounds are timed from here, the first round's start.
    born: std::time::Instant,
    verify_rounds: Vec<swarm_protocol::agent::VerifyRound>,
}

impl State {
    fn new(agent: &AgentTask) -> Self {
        Self {
            prompt: agent.prompt.clone(),
            session: None,
            rounds: 0,
            summary: String::new(),
            last_outcome: AttemptOutcome::Cancelled,
            verify_passed: None,
            output: None,
            born: std::time::Instant::now(),
            verify_rounds: Vec::new(),
        }
    }
}

impl<'a> Rounds<'a> {
    /// The attempt's door to the gateway and the program's command: its
    /// home, grants, ports, MCP servers and environment.
    fn new(
        ctx: &Ctx,
        task: &'a Task,
        agent: &'a AgentTask,
        cli: &'a CliProgram,
        attempt: u32,
        mut spec: CommandSpec,
    ) -> Result<Self, String> {
        let Some(gateway) = &ctx.gateway else {
            return Err("run an agent task: the run has no model gateway".into());
        };
        let token = new_token().map_err(|e| format!("make the attempt's gateway token: {e}"))?;
        let door = open_door(ctx, gateway, task, agent, cli, attempt, &spec, &token)?;
        let provider_model = gateway
            .model_name(&agent.model)
            .unwrap_or_else(|| agent.model.clone());
        // A fresh home per attempt, in the task's private tmp: the program's
        // own settings, sessions and caches, none of the user's.
        let tmp = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "HOME")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| crate::layout::task_tmp(&ctx.run_dir, &task.id));
        let home = tmp.join(format!("agent-home.{attempt}"));
        let verify_spec = task.verify.as_ref().map(|v| CommandSpec {
            script: v.clone(),
            program: None,
            ..spec.clone()
        });
        if let Some(sandboxed) = &mut spec.sandbox {
            sandboxed.policy.read_only.push(cli.grant.clone());
        }
        // A task with a network list gets its egress proxy on a second port
        // of the same namespace, beside the door. Two ports, not one serving
        // both: the door is an HTTP server that checks a token and a body's
        // shape, the proxy a byte pipe that checks a host; telling their
        // requests apart on one port would put each at the mercy of the
        // other's parser, and a plain task (no door) needs the proxy alone
        // anyway. The program reaches the door directly (`NO_PROXY` names the
        // loopback), everything else through the proxy.
        let egress = super::egress::Egress::of(ctx, task, attempt);
        let ports = match &egress {
            Some(_) => GatewayPorts::two(GATEWAY_PORT, super::egress::PROXY_PORT),
            None => GatewayPorts::one(GATEWAY_PORT),
        };
        let mcp = super::agent_task::mcp_servers(ctx, agent, &mut spec)?;
        let kind = adapter(cli.cli.kind);
        spec.env.extend(environment(cli, &home, &token));
        spec.env.extend(kind.task_environment(agent, &mcp));
        Ok(Self {
            task,
            agent,
            cli,
            spec,
            verify_spec,
            door,
            ports,
            egress,
            home,
            provider_model,
            mcp,
        })
    }

    /// One round of the program, its door and proxy served while it runs:
    /// how it ended, the events it printed, and where in its output they
    /// began.
    async fn run_round(
        &self,
        state: &State,
        stop: &mut watch::Receiver<Option<Stop>>,
    ) -> Result<(AttemptOutcome, Events, u64), String> {
        let (cli, spec, task) = (self.cli, &self.spec, self.task);
        let mut round_spec = spec.clone();
        let opened = Ports::open(&mut round_spec, self.ports)
            .map_err(|e| format!("open the agent's gateway port: {e}"))?;
        // The ports' numbers: their own, sandboxed; the ones the
        // coordinator got on the host's loopback, unconfined
        // (`sandbox = "none"`).
        let numbers = opened.numbers(self.ports);
        let port = numbers.first().copied().unwrap_or(GATEWAY_PORT);
        let url = format!("http://127.0.0.1:{port}");
        if let Some(proxy) = numbers.get(1).filter(|_| self.egress.is_some()) {
            let vars =
                super::egress::env(&format!("http://127.0.0.1:{proxy}"), "127.0.0.1,localhost");
            round_spec.env.splice(0..0, vars);
        }
        let kind = adapter(cli.cli.kind);
        round_spec.env.extend(kind.url_vars(cli, &url));
        round_spec.program = Some(argv(
            kind,
            &Round {
                cli,
                home: &self.home,
                url: &url,
                model: &self.provider_model,
                prompt: &state.prompt,
                session: state.session.as_deref(),
                agent: self.agent,
                mcp: &self.mcp,
            },
        ));
        let from = file_len(&spec.stdout);
        let mut proxy = None;
        let outcome = run_serving(&round_spec, opened, stop, |listeners| {
            let mut listeners = listeners.into_iter();
            if let Some(listener) = listeners.next()
                && let Err(e) = self.door.serve(listener)
            {
                tracing::warn!(task = %task.id, error = %e, "failed to serve the agent's gateway port");
            }
            if let (Some(listener), Some(egress)) = (listeners.next(), &self.egress) {
                match egress.serve(listener) {
                    Ok(serving) => proxy = Some(serving),
                    Err(e) => {
                        tracing::warn!(task = %task.id, error = %e, "failed to serve the agent's egress proxy");
                    }
                }
            }
        })
        .await;
        drop(proxy);
        let events = read_events(cli.cli.kind, &spec.stdout, from);
        Ok((outcome, events, from))
    }

    /// The program's answer checked against the task's `output_schema`
    /// (kept in `output` when it matches): what to tell it when it does
    /// not, `None` when it does or the task has none.
    fn check_answer(
        &self,
        events: &Events,
        from: u64,
        output: &mut Option<Value>,
    ) -> Option<String> {
        let schema = self.agent.output_schema.as_ref()?;
        let answer = events.structured.clone().or_else(|| {
            let text = match adapter(self.cli.cli.kind).has_events() {
                true => events.text.clone().unwrap_or_default(),
                false => read_from(&self.spec.stdout, from),
            };
            crate::output_schema::answer_in(&text)
        });
        let Some(answer) = answer else {
            return Some(
                "The task needs your final answer as JSON matching its output_schema; \
                 none was found in your answer. Answer again with the JSON alone."
                    .to_string(),
            );
        };
        match crate::output_schema::check(schema, &answer) {
            Ok(()) => {
                self.door
                    .note("output", serde_json::json!({"output": answer}));
                *output = Some(answer);
                None
            }
            Err(errors) => Some(format!(
                "Your final answer does not match the task's output_schema:\n- {}\nAnswer again with corrected JSON.",
                errors.join("\n- ")
            )),
        }
    }

    /// What failed (`feedback`: its answer, or its work's verify) goes back
    /// to the program for a repair round, its prompt set in `state`; or,
    /// its repair rounds used up (or its session not resumable), the
    /// attempt's end.
    fn repair(
        &self,
        state: &mut State,
        feedback: String,
        answer_wrong: bool,
    ) -> Option<(AgentOutcome, Option<String>)> {
        let (agent, kind) = (self.agent, self.cli.cli.kind);
        let rounds = state.rounds;
        let repair = rounds < agent.repair_rounds;
        if answer_wrong {
            self.door.note(
                "output",
                serde_json::json!({"refused": feedback, "repair": repair}),
            );
        } else {
            state.verify_passed = Some(false);
            self.door.note(
                "verify",
                serde_json::json!({"passed": false, "output": feedback, "repair": repair}),
            );
        }
        let fresh = adapter(kind).fresh_each_round();
        let resumable = fresh || state.session.is_some();
        if rounds >= agent.repair_rounds || !resumable {
            let what = if answer_wrong {
                format!("its answer still did not match output_schema: {feedback}")
            } else {
                "verify still failed".into()
            };
            return Some((
                AgentOutcome::VerifyFailed,
                Some(format!(
                    "{what} after {rounds} repair round{}",
                    if rounds == 1 { "" } else { "s" }
                )),
            ));
        }
        state.rounds += 1;
        let repair = if answer_wrong {
            feedback
        } else {
            format!(
                "The task's check (`{}`) failed on your work. Fix it. Its output:\n\n{feedback}",
                self.task.verify.as_deref().unwrap_or_default()
            )
        };
        // A command agent starts afresh each round: it needs the task
        // again, not only what went wrong.
        state.prompt = match fresh {
            true => format!("{}\n\n{repair}", agent.prompt),
            false => repair,
        };
        None
    }

    /// The door closed, and the attempt's end with the agent's report.
    fn end(
        self,
        state: State,
        mut agent_outcome: AgentOutcome,
        mut detail: Option<String>,
    ) -> AgentAttempt {
        let end = self.door.close();
        // A refusal of the gateway is why the program stopped, whatever it said.
        if agent_outcome != AgentOutcome::Finished
            && let Some((why, message)) = &end.refused
        {
            agent_outcome = match why {
                Refused::Budget => AgentOutcome::Budget,
                Refused::MaxTurns => AgentOutcome::MaxTurns,
                Refused::NotRecorded => AgentOutcome::ModelError,
            };
            detail = Some(message.clone());
        }
        let outcome = match state.last_outcome {
            AttemptOutcome::Cancelled => {
                agent_outcome = AgentOutcome::Cancelled;
                AttemptOutcome::Cancelled
            }
            other => other,
        };
        let report = AgentReport {
            outcome: agent_outcome,
            summary: state.summary,
            turns: end.calls,
            repair_rounds: state.rounds,
            usage: end.usage,
            cost_usd: end.cost_usd,
            transcript: Some(end.transcript.display().to_string()),
            detail,
            output: state
                .output
                .filter(|_| agent_outcome == AgentOutcome::Finished),
            verify_rounds: state.verify_rounds,
        };
        self.door.note("end", serde_json::json!({"report": report}));
        AgentAttempt {
            outcome,
            verify_passed: state.verify_passed,
            report: Some(report),
        }
    }
}

/// The attempt's door to the gateway: the agent's model, budgets and
/// limits behind a token of its own, its transcript and notes.
#[expect(
    clippy::too_many_arguments,
    reason = "one attempt: the run, the task and its agent, the program and its token"
)]
fn open_door(
    ctx: &Ctx,
    gateway: &Arc<crate::gateway::Gateway>,
    task: &Task,
    agent: &AgentTask,
    cli: &CliProgram,
    attempt: u32,
    spec: &CommandSpec,
    token: &str,
) -> Result<Door, String> {
    let notes = ctx.tasks.position(&task.id).map(|index| {
        let events = ctx.events.clone();
        Box::new(move |note| {
            let _ = events.send(crate::run::executor::ExecEvent::Agent { task: index, note });
        }) as crate::gateway::Notes
    });
    let reel = super::agent_task::reel(ctx, gateway, task, attempt, spec)?;
    Door::new(
        Arc::clone(gateway),
        DoorSettings {
            task: task.id.clone(),
            agent: cli.cli.name.clone(),
            model: agent.model.clone(),
            token: token.to_string(),
            max_turns: agent.max_turns,
            budget: agent.budget,
            groups: budget_groups(ctx, task, gateway, agent),
            transcript: crate::layout::transcript_path(&ctx.run_dir, &task.id, attempt),
            notes,
            reel,
            network: task.network == crate::plan::TaskNetwork::Full,
            memory: task.memory,
            redact: ctx.included.redact.clone(),
            activity: spec.stall.as_ref().map(|s| Arc::clone(&s.activity)),
        },
    )
    .map_err(|e| format!("open the gateway for the agent: {e}"))
}

/// Why a round that failed (or ended without its result) ended the
/// attempt, and in what words.
fn round_failed(events: &Events, outcome: &AttemptOutcome) -> (AgentOutcome, Option<String>) {
    let detail = match (&events.error, outcome) {
        (Some(e), _) => e.clone(),
        (None, AttemptOutcome::Exited { code }) if !events.done && *code == 0 => {
            "the program ended without its result".into()
        }
        (None, o) => super::describe::describe_outcome(o),
    };
    let why = if events.subtype.as_deref() == Some("error_max_turns") {
        AgentOutcome::MaxTurns
    } else if events.is_error {
        AgentOutcome::ModelError
    } else {
        AgentOutcome::Crashed
    };
    (why, Some(detail))
}

/// What the program finds in its environment: a home of its own, the
/// token where its key would be, its telemetry and updates off.
fn environment(cli: &CliProgram, home: &Path, token: &str) -> Vec<(String, String)> {
    let home_s = home.display().to_string();
    let mut env = vec![
        ("HOME".to_string(), home_s.clone()),
        ("XDG_CONFIG_HOME".into(), format!("{home_s}/.config")),
        ("XDG_CACHE_HOME".into(), format!("{home_s}/.cache")),
        ("XDG_DATA_HOME".into(), format!("{home_s}/.local/share")),
        ("XDG_STATE_HOME".into(), format!("{home_s}/.local/state")),
        // Telemetry, error reports and update checks have nowhere to go;
        // asked not to try, the programs start faster.
        ("DISABLE_TELEMETRY".into(), "1".into()),
        ("DISABLE_AUTOUPDATER".into(), "1".into()),
        ("DISABLE_ERROR_REPORTING".into(), "1".into()),
        ("DISABLE_BUG_COMMAND".into(), "1".into()),
        (
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
            "1".into(),
        ),
        ("DO_NOT_TRACK".into(), "1".into()),
        ("CI".into(), "1".into()),
    ];
    env.extend(adapter(cli.cli.kind).environment(cli, &home_s, token));
    env
}

/// The command line of one round: `sh` makes the home first (the private
/// tmp belongs to the worker's identity, not to the coordinator), then
/// becomes the program its kind starts.
fn argv(kind: &dyn Adapter, round: &Round<'_>) -> Vec<String> {
    let mut argv = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        "mkdir -p \"$1\" \"${CODEX_HOME:-$1}\" \"${CLAUDE_CONFIG_DIR:-$1}\" && \
         { [ -z \"${SWARM_OUTPUT_SCHEMA:-}\" ] || printf '%s' \"$SWARM_OUTPUT_SCHEMA\" > \"$1/output-schema.json\"; } && \
         shift && exec \"$@\" </dev/null"
            .into(),
        "sh".into(),
        round.home.display().to_string(),
    ];
    argv.extend(kind.args(round));
    argv
}

/// Whether `id` can be a session id on the next round's command line
/// (letters, digits, `-`, `_`, `.`; not a flag).
fn is_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What was appended to `path` after offset `from`.
fn read_from(path: &Path, from: u64) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let mut text = String::new();
    if file.seek(SeekFrom::Start(from)).is_err() {
        return text;
    }
    let _ = file.read_to_string(&mut text);
    text
}

/// Reads the program's events from its log at `path`, after offset `from`
/// (what this round wrote), each JSON line as its kind reads it.
fn read_events(kind: CliKind, path: &Path, from: u64) -> Events {
    let mut events = Events::default();
    let Ok(mut file) = std::fs::File::open(path) else {
        return events;
    };
    let mut text = String::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_string(&mut text).is_err() {
        return events;
    }
    let kind = adapter(kind);
    for line in text.lines() {
        if let Ok(value) = serde_json::from_str::<Value>(line.trim()) {
            kind.event(&value, &mut events);
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The book's "Adding an agent CLI" holds: every file its table names
    /// is there (a new kind's file, `aider.rs`, stands for each kind's
    /// own), every kind has its file here, and the plan schema's kinds are
    /// `CliKind::ALL`.
    #[test]
    fn every_agent_cli_kind_has_its_adapter_file_and_the_books_steps_hold() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let page = std::fs::read_to_string(repo.join("book/src/adding-an-agent-cli.md")).unwrap();
        let rows: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("| `"))
            .filter_map(|l| l[3..].split('`').next())
            .collect();
        assert!(rows.len() >= 5, "{rows:?}");
        for file in &rows {
            let example = file.ends_with("/aider.rs");
            assert!(
                example || repo.join(file).exists(),
                "the book's step names {file}, which is not there"
            );
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/run/local/cli_agent");
        for kind in CliKind::ALL {
            let file = format!("{}.rs", kind.name().replace('-', "_"));
            assert!(
                dir.join(&file).exists(),
                "kind `{}` has no adapter file cli_agent/{file} (the book's \"Adding an agent CLI\")",
                kind.name()
            );
            // Its arm in `adapter()` is the compiler's to check; that it
            // reads events or not is the adapter's to say.
            let _ = adapter(kind).has_events();
        }
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(repo.join("plan.schema.json")).unwrap())
                .unwrap();
        let named: Vec<&str> = schema["$defs"]["CliKind"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k["const"].as_str())
            .collect();
        let all: Vec<&str> = CliKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(named, all, "plan.schema.json's kinds against CliKind::ALL");
    }

    #[test]
    fn the_tasks_mcp_servers_are_given_in_each_clis_own_format() {
        let servers = [McpServer {
            name: "files".into(),
            command: vec![
                "/opt/fs/bin/server".into(),
                ".".into(),
                "it's \"quoted\"".into(),
            ],
            env: [("LOG".to_string(), "warn".to_string())].into(),
        }];
        assert_eq!(
            adapter::mcp_servers_json(&servers),
            serde_json::json!({"mcpServers": {"files": {
                "type": "stdio",
                "command": "/opt/fs/bin/server",
                "args": [".", "it's \"quoted\""],
                "env": {"LOG": "warn"},
            }}})
        );
        let args = codex::mcp_overrides(&servers);
        assert_eq!(args.len(), 6);
        // Each override is TOML that reads back as what was meant.
        for pair in args.chunks(2) {
            assert_eq!(pair[0], "-c");
            let (key, value) = pair[1].split_once('=').unwrap();
            let parsed: toml::Table = toml::from_str(&format!("v = {value}")).unwrap();
            match key {
                "mcp_servers.files.command" => {
                    assert_eq!(parsed["v"].as_str(), Some("/opt/fs/bin/server"));
                }
                "mcp_servers.files.args" => assert_eq!(
                    parsed["v"],
                    toml::Value::Array(vec![".".into(), "it's \"quoted\"".into()])
                ),
                "mcp_servers.files.env" => {
                    assert_eq!(parsed["v"]["LOG"].as_str(), Some("warn"));
                }
                other => panic!("unexpected override {other}"),
            }
        }
    }

    #[test]
    fn a_claude_result_with_is_error_is_a_failure_whatever_its_subtype() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out");
        std::fs::write(
            &log,
            "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s1\"}\n\
             not json\n\
             {\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"API Error: 400\",\"session_id\":\"s1\"}\n",
        )
        .unwrap();
        let e = read_events(CliKind::ClaudeCode, &log, 0);
        assert!(e.done && e.is_error);
        assert_eq!(e.session.as_deref(), Some("s1"));
        assert_eq!(e.error.as_deref(), Some("API Error: 400"));
    }

    #[test]
    fn a_session_id_is_never_a_flag() {
        assert!(is_session_id("43bbb325-f653-47d3-a86c-36c1427027f0"));
        assert!(!is_session_id("--dangerously-skip-permissions"));
        assert!(!is_session_id("a b"));
        assert!(!is_session_id(""));
    }

    #[test]
    fn codex_events_give_the_thread_the_answer_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out");
        std::fs::write(
            &log,
            "{\"type\":\"thread.started\",\"thread_id\":\"t9\"}\n\
             {\"type\":\"item.completed\",\"item\":{\"type\":\"agent_message\",\"text\":\"done\"}}\n\
             {\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":3}}\n",
        )
        .unwrap();
        let e = read_events(CliKind::Codex, &log, 0);
        assert!(e.done && !e.is_error);
        assert_eq!(e.session.as_deref(), Some("t9"));
        assert_eq!(e.text.as_deref(), Some("done"));
        let from = file_len(&log);
        std::fs::write(
            &log,
            format!(
                "{}{{\"type\":\"turn.failed\",\"error\":{{\"message\":\"boom\"}}}}\n",
                std::fs::read_to_string(&log).unwrap()
            ),
        )
        .unwrap();
        let e = read_events(CliKind::Codex, &log, from);
        assert!(e.is_error);
        assert_eq!(e.error.as_deref(), Some("boom"));
    }
}
