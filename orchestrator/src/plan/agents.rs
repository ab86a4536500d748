//! Agent CLIs as workers: the `[agents.NAME]` tables, the built-in
//! `claude-code` and `codex`, and the checks that tie a task's `agent` to
//! one of them and to a model whose wire protocol it speaks.
//!
//! What a plan names here is a program the person running swarm chose; a
//! subtask request or a replan's fix may only name an agent the plan
//! itself declares or uses (the plan's [`Plan::agents`](super::Plan)),
//! never bring one of its own.

#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::error::{PlanError, PlanErrorKind, Source, did_you_mean};
use super::schema::AgentFields;
use crate::gateway::config::{ModelConfig, Provider};

pub use super::schema::{CliKind, WireProtocol};

/// The name of swarm's own agent in `agent`.
pub const SWARM_AGENT: &str = "swarm";

impl CliKind {
    /// Every kind, in the order the book lists them. The plan schema's
    /// list of kinds is checked against it (`plan::tests`), so a kind
    /// left out of it fails a test.
    pub const ALL: [CliKind; 3] = [Self::ClaudeCode, Self::Codex, Self::Command];

    /// The kinds a plan has without a table: those with a program of
    /// their own to find.
    pub fn builtins() -> impl Iterator<Item = CliKind> {
        Self::ALL
            .into_iter()
            .filter(|k| k.default_program().is_some())
    }

    /// How to install its program: the help of the error saying it is
    /// missing.
    pub fn install_help(self) -> &'static str {
        match self {
            Self::ClaudeCode => {
                "install it (npm install -g @anthropic-ai/claude-code), or give its path in [agents.NAME] program = \"...\""
            }
            Self::Codex => {
                "install it (npm install -g @openai/codex), or give its path in [agents.NAME] program = \"...\""
            }
            Self::Command => "install it, or start `command` with its full path",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude-code",
            Self::Codex => "codex",
            Self::Command => "command",
        }
    }

    /// The program looked for on PATH when the table names none.
    pub fn default_program(self) -> Option<&'static str> {
        match self {
            Self::ClaudeCode => Some("claude"),
            Self::Codex => Some("codex"),
            Self::Command => None,
        }
    }

    /// Memory one instance takes, for admission (measured here: Claude
    /// Code 184-194 MB idle and more at work, Codex 136-143 MB).
    fn default_memory(self) -> u64 {
        match self {
            Self::ClaudeCode => 300 << 20,
            Self::Codex => 200 << 20,
            Self::Command => 256 << 20,
        }
    }
}

impl WireProtocol {
    /// The provider a model behind it must have: the gateway passes each
    /// call through in the provider's own protocol.
    pub fn provider(self) -> Provider {
        match self {
            Self::Anthropic => Provider::Anthropic,
            Self::OpenaiResponses | Self::Openai => Provider::Openai,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenaiResponses => "openai-responses",
            Self::Openai => "openai",
        }
    }
}

/// An agent CLI a plan may run, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentCli {
    pub name: String,
    pub kind: CliKind,
    /// Its default model (`[models.NAME]`), if the table names one.
    pub model: Option<String>,
    /// As written (a path, or a name to find on PATH); `None` for a
    /// `command` agent, whose program is `command`'s first word.
    pub program: Option<String>,
    pub args: Vec<String>,
    /// `kind = "command"`: argv with `{prompt}`.
    pub command: Vec<String>,
    pub protocol: WireProtocol,
    pub base_url_env: String,
    pub token_env: String,
    /// Bytes one instance takes, for admission.
    pub memory: u64,
    /// Where its table stands (`0..0` for a built-in).
    pub span: Range<usize>,
}

impl AgentCli {
    /// The program to find (a path, or a name on PATH).
    pub fn program_name(&self) -> Option<&str> {
        self.program
            .as_deref()
            .or_else(|| self.command.first().map(String::as_str))
    }

    /// A built-in adapter with no table.
    fn builtin(kind: CliKind) -> Self {
        let protocol = match kind {
            CliKind::Codex => WireProtocol::OpenaiResponses,
            _ => WireProtocol::Anthropic,
        };
        let (base_url_env, token_env) = protocol_vars(protocol);
        Self {
            name: kind.name().into(),
            kind,
            model: None,
            program: kind.default_program().map(str::to_string),
            args: Vec::new(),
            command: Vec::new(),
            protocol,
            base_url_env: base_url_env.into(),
            token_env: token_env.into(),
            memory: kind.default_memory(),
            span: 0..0,
        }
    }
}

fn protocol_vars(protocol: WireProtocol) -> (&'static str, &'static str) {
    match protocol {
        WireProtocol::Anthropic => ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
        WireProtocol::OpenaiResponses | WireProtocol::Openai => {
            ("OPENAI_BASE_URL", "OPENAI_API_KEY")
        }
    }
}

/// Checks every `[agents.NAME]` table: the valid ones, by name, with the
/// built-ins that have no table of the same name.
pub(super) fn resolve_agents(
    source: &Source,
    tables: &BTreeMap<String, Spanned<AgentFields>>,
    errors: &mut Vec<PlanError>,
) -> BTreeMap<String, AgentCli> {
    let mut agents: BTreeMap<String, AgentCli> = CliKind::builtins()
        .map(|k| (k.name().to_string(), AgentCli::builtin(k)))
        .collect();
    for (name, table) in tables {
        match agent_cli(source, name, table) {
            Ok(agent) => {
                agents.insert(name.clone(), agent);
            }
            Err(e) => {
                // A broken table hides the built-in of its name: its own
                // error says what is wrong.
                agents.remove(name);
                errors.push(e);
            }
        }
    }
    agents
}

fn agent_cli(
    source: &Source,
    name: &str,
    table: &Spanned<AgentFields>,
) -> Result<AgentCli, PlanError> {
    let span = table.span();
    let fields = table.get_ref();
    let bad = |message: String, at: Range<usize>, help: &str| {
        source
            .error(PlanErrorKind::BadValue, message, Some(at), "in this agent")
            .with_help(help.to_string())
    };
    if name == SWARM_AGENT {
        return Err(bad(
            "`[agents.swarm]` would hide swarm's own agent".into(),
            span,
            "give the table another name",
        ));
    }
    let mut agent = AgentCli::builtin(fields.kind);
    agent.name = name.to_string();
    agent.span = span.clone();
    agent.model = fields.model.as_ref().map(|m| m.get_ref().clone());
    if let Some(program) = &fields.program {
        if program.get_ref().trim().is_empty() {
            return Err(bad(
                format!("agent `{name}` has an empty `program`"),
                program.span(),
                "name the program, e.g. program = \"/opt/claude/bin/claude\", or leave it out to find it on PATH",
            ));
        }
        agent.program = Some(program.get_ref().clone());
    }
    agent.args = fields.args.clone().unwrap_or_default();
    if let Some(memory) = &fields.memory {
        agent.memory = memory
            .get_ref()
            .trim()
            .parse::<bytesize::ByteSize>()
            .ok()
            .map(|b| b.as_u64())
            .filter(|&b| b > 0)
            .ok_or_else(|| {
                bad(
                    format!(
                        "agent `{name}` has an invalid memory `{}`",
                        memory.get_ref()
                    ),
                    memory.span(),
                    "write a size, e.g. memory = \"300MiB\"",
                )
            })?;
    }
    let command_keys = [
        ("command", fields.command.is_some()),
        ("protocol", fields.protocol.is_some()),
        ("base_url_env", fields.base_url_env.is_some()),
        ("token_env", fields.token_env.is_some()),
    ];
    match fields.kind {
        CliKind::Command => {
            let Some(command) = &fields.command else {
                return Err(bad(
                    format!("agent `{name}` of kind \"command\" has no `command`"),
                    span,
                    "give its command line with {prompt} where the prompt goes, e.g. command = [\"gemini\", \"-p\", \"{prompt}\"]",
                ));
            };
            if !command.get_ref().iter().any(|a| a.contains("{prompt}")) {
                return Err(bad(
                    format!("agent `{name}`'s `command` has no `{{prompt}}`"),
                    command.span(),
                    "put {prompt} where the task's prompt goes, e.g. command = [\"gemini\", \"-p\", \"{prompt}\"]",
                ));
            }
            if command
                .get_ref()
                .first()
                .is_none_or(|p| p.trim().is_empty())
            {
                return Err(bad(
                    format!("agent `{name}`'s `command` has no program"),
                    command.span(),
                    "start it with the program, e.g. command = [\"gemini\", \"-p\", \"{prompt}\"]",
                ));
            }
            if fields.program.is_some() {
                return Err(bad(
                    format!("agent `{name}` sets both `program` and `command`"),
                    span,
                    "a command agent's program is the first word of `command`; remove `program`",
                ));
            }
            let Some(protocol) = fields.protocol else {
                return Err(bad(
                    format!("agent `{name}` of kind \"command\" has no `protocol`"),
                    span,
                    "say what it speaks to its model: protocol = \"anthropic\", \"openai-responses\" or \"openai\" (Chat Completions)",
                ));
            };
            let (base_url_env, token_env) = protocol_vars(protocol);
            agent.protocol = protocol;
            agent.command = command.get_ref().clone();
            agent.program = None;
            agent.base_url_env = fields
                .base_url_env
                .clone()
                .unwrap_or_else(|| base_url_env.into());
            agent.token_env = fields.token_env.clone().unwrap_or_else(|| token_env.into());
        }
        kind => {
            if let Some((key, _)) = command_keys.iter().find(|(_, set)| *set) {
                return Err(bad(
                    format!("agent `{name}` sets `{key}`, which only kind = \"command\" takes"),
                    span,
                    &format!(
                        "swarm knows how to run {}; remove `{key}`, or make it kind = \"command\"",
                        kind.name()
                    ),
                ));
            }
        }
    }
    Ok(agent)
}

/// The agent a task names, if the plan has it: `Ok(None)` for swarm's own.
pub(super) fn pick_agent<'a>(
    source: &Source,
    agents: &'a BTreeMap<String, AgentCli>,
    id: &str,
    name: &str,
    span: Range<usize>,
) -> Result<Option<&'a AgentCli>, PlanError> {
    if name == SWARM_AGENT {
        return Ok(None);
    }
    agents.get(name).map(Some).ok_or_else(|| {
        let mut names: Vec<&str> = agents.keys().map(String::as_str).collect();
        names.push(SWARM_AGENT);
        let error = source.error(
            PlanErrorKind::BadValue,
            format!("task `{id}` uses agent `{name}`, which the plan does not have"),
            Some(span),
            "no such agent",
        );
        match did_you_mean(name, names.iter().copied()) {
            Some(close) => error.with_help(format!("did you mean `{close}`?")),
            None => error.with_help(format!(
                "use one of {}, or declare it in an [agents.{name}] table",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    })
}

/// Whether `model` can be behind `agent`: the gateway passes calls through
/// in the model's own protocol, so it must be the one the agent speaks.
pub(super) fn check_protocol(
    source: &Source,
    agent: &AgentCli,
    model: &ModelConfig,
    id: &str,
    span: Range<usize>,
) -> Result<(), PlanError> {
    let needed = agent.protocol.provider();
    // Messages and Responses are translated for any model (the door reads
    // them into the gateway's own conversation); Chat is passed through.
    if model.provider == needed || agent.protocol != WireProtocol::Openai {
        return Ok(());
    }
    Err(source
        .error(
            PlanErrorKind::BadValue,
            format!(
                "task `{id}` runs agent `{}` ({} protocol) on model `{}`, whose provider is {}",
                agent.name,
                agent.protocol.name(),
                model.name,
                model.provider.as_str()
            ),
            Some(span),
            "this task",
        )
        .with_help(format!(
            "give it a model with provider = \"{}\" (`model` on the task or in [agents.{}])",
            needed.as_str(),
            agent.name
        )))
}
