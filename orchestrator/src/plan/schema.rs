//! The plan file as written by users: the serde schema of `plan.toml`.
//!
//! These types mirror the TOML one to one (unknown keys are errors) and keep
//! the source spans that later checks need to point at the right line. The
//! JSON schema published as `plan.schema.json` is generated from them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// A swarm plan: a graph of tasks to run in git worktrees and merge.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "swarm plan")]
pub struct PlanFile {
    /// Settings of the run as a whole.
    #[serde(default)]
    pub swarm: SwarmSection,
    /// Task fields applied to every task (a task's own value wins; `env`
    /// tables are merged).
    #[serde(default)]
    pub defaults: TaskFields,
    /// The tasks. Order matters only to break ties: it is the merge order
    /// among tasks that do not depend on each other.
    #[serde(default)]
    #[schemars(with = "Vec<TaskFields>")]
    pub task: Vec<Spanned<TaskFields>>,
    /// Models that agent (`prompt`) tasks can use, by name. A task uses
    /// `default` unless it sets `model`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ModelFields>")]
    pub models: BTreeMap<String, Spanned<ModelFields>>,
    /// Where task attempts run: this machine (default) or a Slurm cluster.
    #[serde(default)]
    pub executor: super::executor::ExecutorSection,
    /// Agent programs other than swarm's own (Claude Code, Codex, any
    /// CLI) that agent tasks can name in `agent`, by name. The built-in
    /// `claude-code` and `codex` need no table.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, AgentFields>")]
    pub agents: BTreeMap<String, Spanned<AgentFields>>,
    /// MCP servers whose tools agent tasks can use (`mcp = ["NAME"]` on a
    /// task), by name. Each one is started for each attempt that uses it,
    /// over stdio, inside that task's sandbox and in its worktree.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, McpFields>")]
    pub mcp: BTreeMap<String, Spanned<McpFields>>,
    /// Commands run in each fresh worktree before its task (dependencies
    /// installed, files generated), sandboxed like the task but with a
    /// `network` of their own; what they make is never committed with the
    /// task's result. With `key`, a finished setup is reused by every
    /// worktree with the same key instead of running again.
    #[schemars(with = "Option<SetupSection>")]
    pub setup: Option<Spanned<SetupSection>>,
    /// A command run in a task's worktree when swarm is done with it
    /// (after each attempt's result is taken, before the worktree is
    /// removed, kept for a look or kept warm), sandboxed like the task: for
    /// what setup or the task started beyond the worktree (a service, a
    /// remote resource). Its changes are never part of a result; a failure
    /// is a warning.
    #[schemars(with = "Option<CleanupSection>")]
    pub cleanup: Option<Spanned<CleanupSection>>,
    /// Tests that run and are reported but do not fail their task, each
    /// with an owner, a reason and a day after which it gates again.
    #[serde(default)]
    #[schemars(with = "Vec<super::quarantine::QuarantineFields>")]
    pub quarantine: Vec<Spanned<super::quarantine::QuarantineFields>>,
}

/// `[cleanup]`: what runs in a worktree when swarm is done with it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupSection {
    /// A shell command, run with `sh -c` in the task's worktree.
    #[schemars(with = "String")]
    pub run: Spanned<String>,
    /// Network access of cleanup alone, as a task's `network`: `none`
    /// (default), `full` or a list of hosts.
    pub network: Option<NetworkField>,
    /// How long it may run, e.g. `"1m"`. Default: 5m.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
}

/// `[setup]`: what makes a fresh worktree ready to work in.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupSection {
    /// A shell command, run with `sh -c` in the task's worktree before the
    /// task, e.g. `"npm ci"` or `"python3 -m venv .venv && .venv/bin/pip
    /// install -e ."`.
    #[schemars(with = "String")]
    pub run: Spanned<String>,
    /// Files (relative to the repository's root) whose content decides when
    /// setup must run again, e.g. `["package-lock.json"]`: a worktree whose
    /// key files hold what an earlier setup's held gets that setup's
    /// outputs (copied, never shared writable) instead of running it. No
    /// key: setup runs in every fresh worktree.
    #[schemars(with = "Option<Vec<String>>")]
    pub key: Option<Spanned<Vec<String>>>,
    /// Network access of setup alone (the task keeps its own): `none`
    /// (default), `full`, or a list of hosts reached through swarm's egress
    /// proxy, as a task's (`["registry.npmjs.org"]`).
    pub network: Option<NetworkField>,
    /// How long setup may run, e.g. `"10m"`. Default: 30m.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Variables set for setup, on top of the task's `env`.
    pub env: Option<BTreeMap<String, String>>,
}

/// One `[mcp.NAME]` table: an MCP server (stdio) that agent tasks can use.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpFields {
    /// The program (a path, or a name found on PATH) and its arguments,
    /// e.g. `["npx", "-y", "@modelcontextprotocol/server-filesystem", "."]`.
    /// It runs in the task's worktree, sandboxed like the task: it has the
    /// network only if the task does.
    #[schemars(with = "Vec<String>")]
    pub command: Spanned<Vec<String>>,
    /// Variables set for it, on top of the task's environment.
    pub env: Option<BTreeMap<String, String>>,
}

/// One `[agents.NAME]` table: an agent CLI run as a sandboxed worker,
/// reaching its model only through swarm's gateway.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentFields {
    /// `claude-code`, `codex`, or `command` (any other CLI, given by
    /// `command`).
    pub kind: CliKind,
    /// The `[models.NAME]` behind it, when its tasks name none. Default:
    /// the task's `model`, else `default`.
    #[schemars(with = "Option<String>")]
    pub model: Option<Spanned<String>>,
    /// The program: a path, or a name found on PATH. Default: `claude`
    /// (claude-code), `codex` (codex). A missing program is an error at
    /// validate.
    #[schemars(with = "Option<String>")]
    pub program: Option<Spanned<String>>,
    /// Extra arguments, after swarm's own (claude-code, codex).
    pub args: Option<Vec<String>>,
    /// `kind = "command"`: the program and its arguments, with `{prompt}`
    /// where the task's prompt goes, e.g. `["gemini", "-p", "{prompt}"]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub command: Option<Spanned<Vec<String>>>,
    /// `kind = "command"`: the wire protocol it speaks to its model:
    /// `anthropic` (Messages API), `openai-responses` (Responses API) or
    /// `openai` (Chat Completions).
    pub protocol: Option<WireProtocol>,
    /// `kind = "command"`: the variable it reads its model's base URL
    /// from. Default: `ANTHROPIC_BASE_URL` (anthropic), `OPENAI_BASE_URL`
    /// (openai-responses, openai).
    pub base_url_env: Option<String>,
    /// `kind = "command"`: the variable it reads its API key from; it gets
    /// a per-attempt token, never a key. Default: `ANTHROPIC_API_KEY`,
    /// `OPENAI_API_KEY`.
    pub token_env: Option<String>,
    /// Memory one instance takes, for admission, e.g. `"300MiB"`. Default:
    /// 300MiB (claude-code), 200MiB (codex), 256MiB (command).
    #[schemars(with = "Option<String>")]
    pub memory: Option<Spanned<String>>,
}

/// One `[models.NAME]` table: a provider endpoint and how to use it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelFields {
    /// The wire protocol: `anthropic` (Messages API) or `openai` (any
    /// OpenAI-compatible Chat Completions endpoint: OpenAI, Ollama, vLLM,
    /// llama.cpp's server, OpenRouter).
    pub provider: Provider,
    /// The provider's model name, e.g. `claude-sonnet-4-5` or `gpt-4.1`.
    pub model: String,
    /// Endpoint. Default: `https://api.anthropic.com` (anthropic) or
    /// `https://api.openai.com/v1` (openai); Ollama is
    /// `http://localhost:11434/v1`.
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key. Only the
    /// coordinator reads it; workers never see it. Default:
    /// `ANTHROPIC_API_KEY` (anthropic), `OPENAI_API_KEY` (openai). Set it to
    /// `""` for endpoints without authentication (a local Ollama).
    pub api_key_env: Option<String>,
    /// Most tokens of one response. Default: 8192.
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u32>,
    /// Most calls to this model in flight at once, across the run. Default: 16.
    #[schemars(range(min = 1))]
    pub concurrency: Option<usize>,
    /// Requests per minute the account allows; calls are paced to stay
    /// under it. Default: no pacing (429s are still waited out).
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u32>,
    /// Tokens (input + output) per minute the account allows; calls are
    /// paced by their estimated size. Default: no pacing.
    #[schemars(range(min = 1))]
    pub tokens_per_minute: Option<u64>,
    /// Retries of a call that failed with a server error (5xx), a broken or
    /// hung stream. Rate limits (429, 529) are waited out and not counted.
    /// Default: 4.
    pub retries: Option<u32>,
    /// A call fails (and is retried) when the provider sends nothing for
    /// this long, e.g. `"60s"`. Default: 120s.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// USD per million tokens, for budgets and reports. Default: swarm's
    /// table of known models.
    pub price: Option<Price>,
    /// Mark the stable start of swarm's own agents' requests (the system
    /// prompt and tools, the conversation so far) for the provider's
    /// prompt cache (Anthropic's `cache_control`; OpenAI caches on its own),
    /// so later turns read it at a fraction of the input price. Default:
    /// `true`.
    pub prompt_cache: Option<bool>,
    /// `"required"`: swarm's own agent makes the model call a tool in every
    /// answer (OpenAI `tool_choice`, Anthropic `{"type": "any"}`, a grammar
    /// on llama.cpp's server), for small and local models that answer in
    /// prose otherwise. Default: `"auto"` (the model decides).
    pub tool_choice: Option<ToolChoice>,
}

pub use crate::gateway::config::{Price, Provider, ToolChoice};

/// A spending limit: tokens (input + output), US dollars, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetFields {
    #[schemars(range(min = 1))]
    pub tokens: Option<u64>,
    pub usd: Option<f64>,
}

/// The `[swarm]` table.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmSection {
    /// Name of the run: the integration branch is `swarm/<name>` and task
    /// results are kept at `refs/swarm/<name>/<task>`. Default: the plan
    /// file's stem.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// Git revision the run starts from. Default: `HEAD`.
    #[schemars(with = "Option<String>")]
    pub base: Option<Spanned<String>>,
    /// At most this many tasks run at once. Default: the number of CPUs.
    #[schemars(with = "Option<usize>", range(min = 1))]
    pub concurrency: Option<Spanned<usize>>,
    /// How workers are confined. Default: `landlock`.
    pub sandbox: Option<SandboxMode>,
    /// What a failed task does to the rest of the run. Default: `stop`.
    pub on_failure: Option<OnFailure>,
    /// What a task whose result conflicts with the integration branch
    /// does, when the task (or `[defaults]`) does not say: `rerun` or
    /// `stop`. Default: `rerun` for command and WASM tasks, `stop` for
    /// agent tasks.
    pub on_conflict: Option<OnConflict>,
    /// Whether a ready task whose changes are expected to overlap those of
    /// a running task earlier in merge order (what each changed last time,
    /// `.swarm/durations.json`, or declares in `paths`) waits for that
    /// task's merge and starts on the branch as it is, instead of running
    /// beside it and being run again on conflict. Default: `true`.
    pub predict_conflicts: Option<bool>,
    /// How results land on the integration branch. Default: `merge`.
    pub history: Option<History>,
    /// How many runs of this repository are kept: when a run ends, older
    /// ones are cleaned as `swarm clean --refs` does (worktrees and scratch
    /// space freed; a ref or integration branch deleted only when its
    /// commits are on a branch that stays, never the only copy of work).
    /// `0` keeps every run. Default: 20.
    pub keep_runs: Option<u32>,
    /// Extra paths sandboxed tasks may read (and execute), beyond the
    /// toolchains swarm finds itself (see `toolchains`): `["~/tools"]`.
    /// Each must be absolute or start with `~/`, and exist.
    /// `~/` is your home directory. WASM tasks see these directories
    /// read-only at the same paths.
    #[schemars(with = "Option<Vec<String>>")]
    pub read_paths: Option<Vec<Spanned<String>>>,
    /// Which toolchains found in swarm's environment sandboxed tasks may
    /// use (their directories read-only, the variables they need passed):
    /// `true` (default) for all of `rust`, `node`, `python`, `go`;
    /// `false` for none; or a list such as `["rust"]`.
    #[schemars(with = "Option<ToolchainsField>")]
    pub toolchains: Option<Spanned<ToolchainsField>>,
    /// Where task worktrees are made: a directory outside the repository
    /// (absolute, or starting with `~/`), under which each repository gets
    /// a directory of its own. Default: `~/.cache/swarm/worktrees` (or
    /// `$XDG_CACHE_HOME/swarm/worktrees`); `--worktrees` overrides it.
    #[schemars(with = "Option<String>")]
    pub worktrees: Option<Spanned<String>>,
    /// Whether sandboxed tasks share a writable build cache per detected
    /// toolchain (cargo's target directory, npm's, pip's and go's caches),
    /// kept per repository across runs. Default: `true`. A task can plant
    /// build output in a shared cache that another task then uses: turn
    /// this off when tasks must not trust each other.
    pub caches: Option<bool>,
    /// A limit on what all agent tasks of the run may spend together.
    pub budget: Option<BudgetFields>,
    /// A task does not start (it fails, saying why) when the file system of
    /// the worktrees has less free space than this, e.g. `"2GiB"`.
    /// Default: 256MiB.
    #[schemars(with = "Option<String>")]
    pub min_free_space: Option<Spanned<String>>,
    /// `swarm plan` and `run --goal`: how many times a plan the model
    /// wrote that fails its checks goes back to it with the errors.
    /// Default: 3.
    pub plan_repair_rounds: Option<u32>,
    /// `swarm plan` and `run --goal`: the size of the repository map the
    /// planner is shown, in tokens (about 4 bytes each). Default: 8000.
    #[schemars(range(min = 500))]
    pub plan_context_tokens: Option<u32>,
    /// Subtasks (spawned at run time by agents' `spawn_subtasks` tool or a
    /// command's request file): how deep a tree of them may grow below a
    /// plan's task. `0` turns subtasks off. Default: 2.
    pub max_depth: Option<u32>,
    /// Subtasks: at most this many children per task. Default: 8.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_children: Option<Spanned<u32>>,
    /// Subtasks: at most this many tasks in the whole run, the plan's own
    /// included. Default: 100 (or the plan's size, if larger).
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_tasks: Option<Spanned<u32>>,
    /// Bounded replanning: when a task fails after its retries, the
    /// coordinator asks a model (`replan_model`) for a fix, new tasks that
    /// take the failed one's place, at most this many times per run.
    /// Default: 0 (off).
    #[schemars(with = "Option<u32>")]
    pub replan: Option<Spanned<u32>>,
    /// The model (a name in `[models]`) that replans. Default: `default`.
    #[schemars(with = "Option<String>")]
    pub replan_model: Option<Spanned<String>>,
    /// The run-wide verify: a command (run with `sh -c`, sandboxed like a
    /// task's, in a read-only checkout of the integration branch) that
    /// must pass after merges, e.g. `"cargo test --offline"`. When it
    /// fails, swarm bisects the merges to find the one that broke it,
    /// marks that task `broke-verify` (its ref kept) and takes its merge,
    /// and those of its merged dependents, out of the branch.
    /// `[defaults] verify` is a different thing: each task's own check, in
    /// its own worktree.
    #[schemars(with = "Option<String>")]
    pub verify: Option<Spanned<String>>,
    /// When the run-wide `verify` runs: `end` (default: once after the
    /// last merge; cheapest) or `merge` (after merges, batching those that
    /// land while it runs: a bad merge is found early and its dependents
    /// are not started).
    #[schemars(with = "Option<VerifyEvery>")]
    pub verify_every: Option<Spanned<VerifyEvery>>,
    /// How long one run of the run-wide `verify` may take, e.g. `"10m"`;
    /// past it, the run counts as failed. Default: 30m.
    #[schemars(with = "Option<String>")]
    pub verify_timeout: Option<Spanned<String>>,
    /// How many times a failing run of the run-wide `verify` is run again
    /// before its failure counts (default 1): one that then passes is
    /// flaky (reported, and its commit passes), so a flaky test suite
    /// never gets a correct merge taken out. 0 takes the first failure.
    #[schemars(with = "Option<u32>")]
    pub verify_retries: Option<Spanned<u32>>,
    /// How many runs of the run-wide `verify` may run at once while it
    /// searches for what broke it (default 1): the bisection then probes
    /// that many commits per round, each in a checkout (and build caches)
    /// of its own, finding a culprit among n merges in
    /// `ceil(log_{P+1} n)` rounds.
    #[schemars(with = "Option<u32>")]
    pub verify_concurrency: Option<Spanned<u32>>,
}

/// When the run-wide `verify` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyEvery {
    /// After merges: whenever it is not already running and something was
    /// merged since it last ran.
    Merge,
    /// Once, after the last merge.
    #[default]
    End,
}

/// How workers are confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// Landlock + seccomp confinement to the task's worktree.
    #[default]
    Landlock,
    /// No confinement at all. Prints a warning on every run.
    None,
}

/// Network access of a sandboxed task, in a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// No network: no TCP, UDP, DNS or raw sockets; Unix sockets only.
    #[default]
    None,
    /// The host's network, unrestricted (explicit opt-in).
    Full,
}

/// A task's `network` as written: a word, or the hosts it may reach.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum NetworkField {
    /// `none` or `full`.
    Mode(NetworkMode),
    /// Only these hosts, through swarm's egress proxy (`HTTP_PROXY` and
    /// `HTTPS_PROXY` in the task's environment): `"host"` (ports 80 and
    /// 443), `"host:port"`, `"*.domain"` (the names below it), an IP
    /// address as such (`"127.0.0.2:8000"`, `"[::1]:8080"`). The proxy
    /// resolves names; nothing else leaves the task.
    Hosts(#[schemars(with = "Vec<String>")] Vec<Spanned<String>>),
}

// By hand: `untagged` would buffer the value and lose the entries' places
// in the file, which their errors point at.
impl<'de> Deserialize<'de> for NetworkField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = NetworkField;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`none`, `full` or a list of hosts")
            }

            fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<NetworkField, E> {
                use serde::de::IntoDeserializer as _;
                NetworkMode::deserialize(word.into_deserializer()).map(NetworkField::Mode)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<NetworkField, A::Error> {
                let mut hosts = Vec::new();
                while let Some(host) = seq.next_element::<Spanned<String>>()? {
                    hosts.push(host);
                }
                Ok(NetworkField::Hosts(hosts))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// What a task whose result conflicts with the integration branch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Run it again on top of the integration branch as it is then.
    Rerun,
    /// End it `conflicted`: a person resolves it (`swarm resolve`).
    Stop,
}

/// Whether a flaky test (failed, then passed when run again) gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flaky {
    /// It does not fail its task; it is reported flaky.
    #[default]
    Pass,
    /// It fails its task.
    Fail,
}

/// What happens to the rest of a run when a task fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Start no new task; tasks already running finish and are kept.
    #[default]
    Stop,
    /// Keep running every task that does not depend on the failed one.
    Continue,
}

/// How task results land on the integration branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum History {
    /// A merge commit per task, its result commit as second parent.
    #[default]
    Merge,
    /// One commit per task with the task's own changes (a cherry-pick of
    /// its result onto the branch): a linear history. Task refs unchanged.
    Squash,
}

/// One `[[task]]` table (also the shape of `[defaults]`).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskFields {
    /// Unique id, `[a-z0-9_-]+`. With a matrix it may hold `{name}`
    /// placeholders.
    #[schemars(with = "Option<String>")]
    pub id: Option<Spanned<String>>,
    /// Ids of tasks that must succeed first; this task starts from the merge
    /// of their results. Naming a matrix task's unexpanded id (with its
    /// `{placeholders}`) depends on all of its expansions.
    #[schemars(with = "Option<Vec<String>>")]
    pub deps: Option<Vec<Spanned<String>>>,
    /// A shell command, run with `sh -c` in the task's worktree.
    #[schemars(with = "Option<String>")]
    pub run: Option<Spanned<String>>,
    /// A WASI program to run against the task's worktree: a preview 1
    /// module or a preview 2 command component, relative to the plan's
    /// directory. Only the worktree (as `.`) and the task's `read_paths`
    /// are visible to it.
    #[schemars(with = "Option<String>")]
    pub wasm: Option<Spanned<String>>,
    /// Arguments of a `wasm` task's program (after its name).
    pub args: Option<Vec<String>>,
    /// Deterministic fuel for a `wasm` task: it traps when it runs out, at
    /// the same point on every run.
    #[schemars(range(min = 1))]
    pub fuel: Option<u64>,
    /// A prompt for swarm's coding agent, which works in the task's
    /// worktree with file, search and shell tools, in the sandbox.
    #[schemars(with = "Option<String>")]
    pub prompt: Option<Spanned<String>>,
    /// Which agent works on an agent (`prompt`) task: `swarm` (default:
    /// swarm's own), `claude-code`, `codex`, or an `[agents.NAME]` table.
    /// Each runs in the task's sandbox and reaches its model only through
    /// swarm's gateway.
    #[schemars(with = "Option<String>")]
    pub agent: Option<Spanned<String>>,
    /// The `[mcp.NAME]` servers an agent task uses: their tools are
    /// offered to its agent (swarm's own, prefixed `NAME__`; Claude Code
    /// and Codex through their own MCP configuration).
    #[schemars(with = "Option<Vec<String>>")]
    pub mcp: Option<Vec<Spanned<String>>>,
    /// An agent task's final answer as a JSON value matching this JSON
    /// Schema: a file (relative to the plan's directory) or an inline
    /// table. Kept in the report and JUnit, and given to dependents
    /// (`$SWARM_DEPS_OUTPUT`, and `{deps.<id>.output.<key>}` in a command,
    /// shell-quoted); an answer that never matches fails the task with
    /// what is wrong.
    #[schemars(with = "Option<OutputSchemaField>")]
    pub output_schema: Option<Spanned<toml::Value>>,
    /// Which `[models.NAME]` an agent task uses. Default: `default`.
    #[schemars(with = "Option<String>")]
    pub model: Option<Spanned<String>>,
    /// Most model calls of an agent task (repair rounds included).
    /// Default: 50.
    #[schemars(range(min = 1))]
    pub max_turns: Option<u32>,
    /// What an agent task may spend; the gateway refuses calls beyond it.
    pub budget: Option<BudgetFields>,
    /// How many times an agent whose work fails `verify` gets the failure
    /// back to fix it. Default: 2.
    pub repair_rounds: Option<u32>,
    /// Extra environment variables for the worker.
    pub env: Option<BTreeMap<String, String>>,
    /// Wall-clock limit per attempt, e.g. `"90s"`, `"20m"`, `"1h 30m"`.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// An attempt that shows no sign of life for this long is ended as
    /// `stalled` (and retried per `retries`), e.g. `"10m"`: no output, no
    /// CPU time of its processes, no model call (one waiting on its model
    /// is alive). Default: `"10m"` for agent tasks, none for others; `"off"`
    /// turns it off.
    #[schemars(with = "Option<String>")]
    pub stall_after: Option<Spanned<String>>,
    /// How many times a failed attempt is retried from a clean worktree.
    pub retries: Option<u32>,
    /// A command that must exit 0 after `run` succeeds for the task to count
    /// as done (run with `sh -c` in the same worktree).
    pub verify: Option<String>,
    /// Where the task may write: the sandbox lets it write only there (and
    /// in its private tmp), and a result that changes anything outside
    /// fails the task. Each must exist at the base. Default: anywhere.
    pub paths: Option<Vec<String>>,
    /// Check out only `paths` in the task's worktree (everything else
    /// still exists in its commit): for large repositories, when the task
    /// needs nothing else, not even to build or test. Default: `false`,
    /// the whole tree.
    pub sparse: Option<bool>,
    /// Paths the task creates (files or directories absent at the base).
    /// Like `paths`, they are the task's to write; unlike them, they need
    /// not exist (a `paths` entry that does not exist is an error).
    pub creates: Option<Vec<String>>,
    /// Let this task write paths that a task not ordered with it (by
    /// `deps`) also writes. Without it such a pair is a plan error: the
    /// two would likely conflict when merged.
    pub allow_overlap: Option<bool>,
    /// `worktree` (default): its own writable worktree. `readonly`: a shared
    /// checkout of its base commit; nothing is committed or merged.
    pub isolation: Option<swarm_protocol::Isolation>,
    /// Tasks of one group (`group = "rename"`; a matrix's tasks may share
    /// it) are verified only as a whole by the run-wide `verify`: no
    /// verify runs on a branch that holds some of the group's merges and
    /// not others, and the search for what broke it takes the group out as
    /// one. For the pieces of a refactor that do not build alone.
    #[schemars(with = "Option<String>")]
    pub group: Option<Spanned<String>>,
    /// A JUnit XML file the task's command writes (`pytest
    /// --junitxml=report.xml`, nextest's JUnit, `tap-junit`): relative to
    /// its worktree, or `$TMPDIR/...` in its own tmp. swarm reads it after
    /// the command (as hostile input: size-capped, no link), never commits
    /// it, and reports the task's tests one by one: counted in the summary
    /// and report, each a test case of `--junit`'s report. A missing or
    /// invalid file is a warning, never a failure.
    #[schemars(with = "Option<String>")]
    pub junit: Option<Spanned<String>>,
    /// With `junit`: whether a test that failed and then passed when the
    /// task ran it again (`retries`) fails the task. `pass` (default): it
    /// does not, and is reported `flaky`, never as a plain pass; `fail`:
    /// it does.
    pub flaky: Option<Flaky>,
    /// What happens when the task's result conflicts with the integration
    /// branch: `rerun` (the default for command and WASM tasks, whose
    /// result is a function of their base: run it again on top of the
    /// branch as it is then, up to `conflict_reruns` times) or `stop`
    /// (the default for agent tasks: it ends `conflicted`, for a person to
    /// resolve). An agent run again is shown its earlier diff and the
    /// conflicting hunks.
    pub on_conflict: Option<OnConflict>,
    /// With `on_conflict = "rerun"`: how many times the task runs again
    /// after its result conflicted. Default: 2.
    pub conflict_reruns: Option<u32>,
    /// Network access of the sandboxed worker: `none` (default: no TCP, UDP
    /// or DNS, only a loopback interface of its own), `full` (explicit
    /// opt-in: the host's network), or a list of hosts (`["crates.io",
    /// "static.crates.io", "127.0.0.2:8000"]`) reached through swarm's
    /// egress proxy and nothing else.
    pub network: Option<NetworkField>,
    /// Whether the plan's `[setup]` runs in this task's worktree first.
    /// Default: true (when the plan has a `[setup]`).
    pub setup: Option<bool>,
    /// Whether the task's worktree is kept between runs at a stable path
    /// and brought to the new base by git (so that build tools' caches see
    /// the same paths and files as in a worktree a person keeps). Default:
    /// true for a task with a worktree of its own and a full checkout.
    pub warm: Option<bool>,
    /// Memory limit per process of the worker (address space), e.g.
    /// `"2GiB"`. Default: 16GiB.
    #[schemars(with = "Option<String>")]
    pub memory: Option<Spanned<String>>,
    /// Processes and threads the worker may have at once (fork bombs stop
    /// there; the kernel's granularity lets up to 300 more through).
    /// Default: 4096.
    #[schemars(range(min = 1))]
    pub processes: Option<u64>,
    /// Most bytes of each output stream (stdout, stderr) kept in the task's
    /// log; the rest is dropped and the log says so. Default: 16MiB.
    #[schemars(with = "Option<String>")]
    pub max_output: Option<Spanned<String>>,
    /// Largest file the task's snapshot commits, e.g. `"1GiB"`. A larger
    /// file is left out unread and listed in the report (with its size
    /// and this limit); everything else is committed. Must be more than
    /// zero (there is no "unlimited": write a size as large as you need).
    /// Default: 100MiB.
    #[schemars(with = "Option<String>")]
    pub max_file_size: Option<Spanned<String>>,
    /// Run the task once per combination of these values, substituting
    /// `{name}` in `id`, `deps`, `run`, `wasm`, `args`, `verify`, `prompt`,
    /// `paths` and `env`. In `id` and `deps` a value is slugged (lowercase,
    /// other characters `-`: `src/a.rs` gives `src-a-rs`); `{name:slug}`
    /// asks for that anywhere.
    #[schemars(with = "Option<MatrixSchema>")]
    pub matrix: Option<Spanned<MatrixField>>,
    /// Run a one-key matrix's values (its "entries", such as test files) in
    /// this many tasks (`<id>-1` ... `<id>-N`) instead of one task each;
    /// `"auto"`: as many as the run runs at once, never more than entries.
    /// Entries are grouped so that the tasks' expected times are balanced,
    /// by the times learned in earlier runs (from the tasks' `junit`
    /// reports, else each task's time split evenly; unknown entries count
    /// as the typical one). Each task's command gets its entries as
    /// `{entries}` (shell-quoted, space-separated) and in the file
    /// `$SWARM_ENTRIES` names (one per line). The grouping is journaled:
    /// `swarm resume` runs the same shards. Dependents name the task's id.
    #[schemars(with = "Option<ShardsSchema>")]
    pub shards: Option<Spanned<toml::Value>>,
    /// With `shards`: whether entries stay in the shards the last run
    /// put them in. `stable` (default): they stay unless regrouping them
    /// by the times learned would shorten the longest shard by more than
    /// 10%; `pinned`: they stay (new entries are added where there is the
    /// most room); `balanced`: grouped anew each run.
    pub shard_grouping: Option<Keep>,
    /// With `shards`: a command that lists the tests of `{entries}`, one
    /// a line, each starting `<entry>::` (pytest's node ids: `python -m
    /// pytest --collect-only -q {entries}`), or for a Rust test file `cargo
    /// nextest list --message-format oneline`'s lines. An entry expected
    /// to take longer than the task's mean shard is then split across
    /// shards by its tests: each such shard runs this first, in its own
    /// sandbox, and gets its share of the entry's listed tests in
    /// `{entries}` (`<entry>::<test>`), so a test added since the last run
    /// still runs once; a failing test runs again by that id too.
    #[schemars(with = "Option<String>")]
    pub list_tests: Option<Spanned<String>>,
    /// With `shards`: test selection by paths. A shard runs only the
    /// entries the run's changes could affect (its entries' files the
    /// merges it starts from changed, against the run's base); the others
    /// are reported skipped by selection. A change to any path that is no
    /// entry's file (source, a `conftest.py`, a fixture) could affect any
    /// of them, so then every entry runs: nothing is skipped on a guess. A
    /// shard left with none runs nothing. In `[defaults]`: every sharded
    /// task's.
    #[schemars(with = "Option<bool>")]
    pub affected: Option<Spanned<bool>>,
    /// With `affected = true`: what a change to a path that is no entry's
    /// file affects, as you know it. Each key a glob of changed paths
    /// from the repository's root, each value the entries (globs, as the
    /// matrix gives them) it runs: `affects = { "docs/**" = [], "*.md" =
    /// [], "src/api/**" = ["tests/api/**"] }`. A changed path a key
    /// matches runs those entries (none for `[]`) in place of every one; a
    /// path no key matches still runs every entry, and so does one of a
    /// rule with an entry glob that matches no entry (warned).
    #[schemars(with = "Option<BTreeMap<String, Vec<String>>>")]
    pub affects: Option<Spanned<BTreeMap<String, Vec<Spanned<String>>>>>,
    /// Run the task several ways, each in its own worktree and sandbox,
    /// and keep one result: a number of variants (`variants = 4`, told
    /// apart by `{variant}`), or lists of values whose combinations are the
    /// variants (`variants = { model = ["a", "b"], temperature = [0.2,
    /// 0.8] }`): `model` and `temperature` set an agent's, and every key is
    /// a `{key}` placeholder, as in a matrix. Each variant keeps its ref
    /// (`refs/swarm/<run>/<task>@<k>`).
    #[schemars(with = "Option<VariantsSchema>")]
    pub variants: Option<Spanned<toml::Value>>,
    /// A command run in each variant's worktree after `verify` passed (in
    /// the sandbox, the worktree read-only); its last line of output is
    /// the variant's score. A variant whose score is no number is not
    /// picked.
    #[schemars(with = "Option<String>")]
    pub score: Option<Spanned<String>>,
    /// How long `score` may run, e.g. `"5m"`. Default: 10m.
    #[schemars(with = "Option<String>")]
    pub score_timeout: Option<Spanned<String>>,
    /// How many times `score` runs for each variant (1 to 9); the
    /// variant's score is the median, so one run slowed by a busy machine
    /// does not flip the ranking. Default: 1.
    #[schemars(with = "Option<u32>", range(min = 1, max = 9))]
    pub score_repeat: Option<Spanned<u32>>,
    /// Which variant's result becomes the task's: `min` or `max` (by
    /// score; ties go to the lowest cost, then the lowest number), `first`
    /// (the first to pass `verify`; the others are cancelled) or `none`
    /// (keep every variant, merge none). Default: `first` without `score`;
    /// with it, required.
    #[schemars(with = "Option<swarm_protocol::experiment::Pick>")]
    pub pick: Option<Spanned<swarm_protocol::experiment::Pick>>,
    /// An agent's sampling temperature (0 to 2). Default: the provider's.
    pub temperature: Option<f64>,
}

/// `output_schema`: a file or an inline JSON Schema (for the JSON schema
/// only: what is read is a `toml::Value`).
#[derive(JsonSchema)]
#[serde(untagged)]
pub enum OutputSchemaField {
    File(String),
    Inline(BTreeMap<String, serde_json::Value>),
}

/// `variants = N` or a table of lists (for the JSON schema only: what is
/// read is a `toml::Value`, checked where it stands).
#[derive(JsonSchema)]
#[serde(untagged)]
pub enum VariantsSchema {
    Count(#[schemars(range(min = 2, max = 64))] u32),
    Lists(BTreeMap<String, Vec<VariantValue>>),
}

/// A value of a variants list.
#[derive(JsonSchema)]
#[serde(untagged)]
pub enum VariantValue {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

/// A matrix as read: each key's list (or where its values come from),
/// `include` and `exclude` alike; their items keep spans so that a bad one
/// is reported where it is.
pub type MatrixField = BTreeMap<String, Spanned<MatrixList>>;

/// One key of a matrix as written: its values, or where in the repository
/// they come from.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixList {
    Values(Vec<Spanned<toml::Value>>),
    From(MatrixFrom),
}

impl MatrixList {
    /// The values as written (none for a list from the repository).
    pub fn written(&self) -> &[Spanned<toml::Value>] {
        match self {
            MatrixList::Values(values) => values,
            MatrixList::From(_) => &[],
        }
    }
}

/// A matrix key's values from the repository: `{ glob = "tests/**/*.py" }`
/// (the files git tracks at the run's base that match, sorted) or
/// `{ lines = "FILE" }` (the lines of a file beside the plan, blank lines
/// and `#` comments left out).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MatrixFrom")]
pub struct MatrixFrom {
    /// Files git tracks at the run's base whose paths (from the
    /// repository's root) match, sorted: `"tests/**/test_*.py"`.
    #[schemars(with = "Option<String>")]
    pub glob: Option<Spanned<String>>,
    /// A file (relative to the plan) whose lines are the values, in order;
    /// blank lines and lines starting with `#` are left out.
    #[schemars(with = "Option<String>")]
    pub lines: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for MatrixList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = MatrixList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a list of values, or a table `{ glob = \"...\" }` or `{ lines = \"FILE\" }`",
                )
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MatrixList, A::Error> {
                let mut values = Vec::new();
                while let Some(value) = seq.next_element::<Spanned<toml::Value>>()? {
                    values.push(value);
                }
                Ok(MatrixList::Values(values))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<MatrixList, A::Error> {
                MatrixFrom::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(MatrixList::From)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

// The shape of a matrix for the JSON schema only: `MatrixField` is what is
// read, so that each item is checked (and reported) where it is.
/// A task's matrix: each key's list of values, and combinations to add
/// (`include`) or remove (`exclude`).
#[derive(JsonSchema)]
#[schemars(rename = "Matrix")]
#[expect(dead_code, reason = "read by schemars only, never constructed")]
pub struct MatrixSchema {
    /// More combinations, after the cross product of the keys, each as
    /// written: `[{ os = "linux", arch = "x86_64" }]`. Keys the lists do not
    /// have are values of that combination only.
    include: Option<Vec<BTreeMap<String, MatrixValue>>>,
    /// Combinations removed from the cross product: each entry removes those
    /// that have all of its values.
    exclude: Option<Vec<BTreeMap<String, MatrixValue>>>,
    /// Each key's values, or where in the repository they come from; the
    /// task runs for every combination.
    #[serde(flatten)]
    keys: BTreeMap<String, MatrixListSchema>,
}

// The shape of one matrix key for the JSON schema only (see `MatrixList`).
/// A matrix key's values: a list, or `{ glob = ... }` / `{ lines = ... }`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "MatrixList")]
#[expect(dead_code, reason = "read by schemars only, never constructed")]
enum MatrixListSchema {
    Values(Vec<MatrixValue>),
    From(MatrixFrom),
}

// The shape of `shards` for the JSON schema only (read as a value and
// checked in `plan::shards`, where a bad one is reported).
/// `shards = N` or `shards = "auto"`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Shards")]
#[expect(dead_code, reason = "read by schemars only, never constructed")]
enum ShardsSchema {
    Count(u32),
    Auto(AutoShards),
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[expect(dead_code, reason = "read by schemars only, never constructed")]
enum AutoShards {
    Auto,
}

/// `toolchains = true | false | ["rust", ...]`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ToolchainsField {
    All(bool),
    Only(Vec<String>),
}

/// A matrix value: strings, integers and booleans are all substituted as text.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MatrixValue {
    String(String),
    Integer(i64),
    Bool(bool),
}

impl std::fmt::Display for MatrixValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Integer(i) => write!(f, "{i}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The JSON schema of plan files, pretty-printed, as committed in
/// `plan.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(PlanFile);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// What kind of program an `[agents.NAME]` table runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CliKind {
    /// Anthropic's Claude Code (`claude -p`), speaking the Messages API.
    ClaudeCode,
    /// OpenAI's Codex CLI (`codex exec`), speaking the Responses API.
    Codex,
    /// Any other CLI, given by `command`.
    Command,
}

/// The wire protocol an agent CLI speaks to its model: what swarm's
/// gateway serves on the task's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WireProtocol {
    /// Anthropic's Messages API (`POST /v1/messages`).
    Anthropic,
    /// OpenAI's Responses API (`POST /v1/responses`).
    OpenaiResponses,
    /// OpenAI's Chat Completions (`POST /v1/chat/completions`), which most
    /// other CLIs speak (aider, opencode, ...).
    Openai,
}

/// Whether a sharded task's entries stay where its last run put them
/// (`shard_grouping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// They stay unless regrouping them shortens the expected time of the
    /// longest shard by more than [`REGROUP_GAIN`] percent.
    #[default]
    Stable,
    /// They stay: only new entries are placed, removed ones dropped.
    Pinned,
    /// They are grouped anew each run, by the times learned.
    Balanced,
}
