//! Plans: reading `plan.toml`, applying `[defaults]`, expanding matrices and
//! checking the result, so that everything after this module works with a
//! complete, valid graph of [`Task`]s.
//!
//! Every problem found here is a [`PlanError`] pointing at the offending line;
//! nothing here touches git or the file system beyond reading the plan.

pub mod agents;
pub mod cargo;
pub mod ceiling;
mod ctx;
mod deps;
mod entries;
pub use deps::{ids_matching, is_glob};
pub mod capabilities;
mod error;
mod executor;
mod expand;
pub mod graph;
mod keys;
mod limits;
pub mod matrix;
pub mod mcp;
mod models;
pub mod network;
pub mod origin;
pub mod quarantine;
mod render;
mod run_verify;
pub mod schema;
pub mod selection;
pub mod semantic;
mod settings;
pub mod setup;
pub mod shard_parts;
pub mod shard_schedule;
pub mod shards;
pub mod subtasks;
mod task;
mod variants;

pub use crate::ids::{is_valid_run_name, is_valid_task_id, variant_id};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{MAX_ERRORS, PlanError, PlanErrorKind, ShownCut, Source, did_you_mean};
pub use executor::{Egress, Executor, ExecutorKind, SlurmConfig};
pub use models::{AgentTask, Budget, ModelConfig};
pub use network::{AllowList, TaskNetwork};
pub use render::render;
pub use run_verify::{DEFAULT_VERIFY_RETRIES, DEFAULT_VERIFY_TIMEOUT, RunVerify};
pub use schema::{
    History, NetworkField, NetworkMode, OnConflict, OnFailure, Price, Provider, SandboxMode,
    VerifyEvery,
};
pub use setup::{Cleanup, Setup};
pub use swarm_protocol::experiment::Pick;
use swarm_protocol::{Isolation, TaskKind};

/// A checked plan, ready to be turned into a graph and run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    pub source: Source,
    /// Who the plan came from: the person running swarm, or an untrusted
    /// origin held to `origin::rules::PLAN`.
    pub origin: origin::Origin,
    /// How the file names the plan holds are read (its origin's rules).
    pub files: origin::files::Files,
    /// The run name (also the integration branch's last component).
    pub name: String,
    pub base: String,
    /// Where `base` was given, so that one naming no commit is reported
    /// there.
    pub base_from: BaseFrom,
    pub concurrency: Option<usize>,
    pub sandbox: SandboxMode,
    pub on_failure: OnFailure,
    /// Whether a ready task waits for a running one it is expected to
    /// conflict with (`[swarm] predict_conflicts`).
    pub predict_conflicts: bool,
    /// How results land on the integration branch.
    pub history: History,
    /// Runs of the repository kept when a run ends (`0`: all).
    pub keep_runs: u32,
    /// Extra read-only paths for sandboxed tasks, as written (`~/` not yet
    /// expanded: only the CLI knows the home directory).
    pub read_paths: Vec<ReadPath>,
    /// Which detected toolchains tasks may use.
    pub toolchains: Toolchains,
    /// `[swarm] worktrees`, as written (`~/` not yet expanded).
    pub worktrees: Option<ReadPath>,
    /// Whether sandboxed tasks share build caches (`[swarm] caches`).
    pub caches: bool,
    /// The models agent tasks use, by name.
    pub models: BTreeMap<String, ModelConfig>,
    /// The agent CLIs the plan declares (`[agents]`) or its tasks use (the
    /// built-ins), by name: all a subtask or a replan's fix may name.
    pub agents: BTreeMap<String, agents::AgentCli>,
    /// The MCP servers the plan declares (`[mcp]`), by name.
    pub mcp: BTreeMap<String, mcp::McpTable>,
    /// What all agent tasks together may spend.
    pub budget: Budget,
    /// Free bytes the worktrees' file system must have for a task to start.
    pub min_free_space: u64,
    /// Where task attempts run (`[executor]`).
    pub executor: Executor,
    /// How far the graph may grow at run time (`max_depth`,
    /// `max_children`, `max_tasks`).
    pub subtask_limits: subtasks::Limits,
    /// Bounded replanning: how many failed tasks may be replanned, and by
    /// which model (`[swarm] replan`, `replan_model`).
    pub replan: Replan,
    /// The run-wide verify (`[swarm] verify`), if any.
    pub verify: Option<RunVerify>,
    /// What makes a fresh worktree ready (`[setup]`), if anything.
    pub setup: Option<Setup>,
    /// What runs in a worktree when swarm is done with it (`[cleanup]`).
    pub cleanup: Option<Cleanup>,
    /// Tests that run and are reported but do not gate, until their
    /// review day (`[[quarantine]]`).
    pub quarantine: std::sync::Arc<[quarantine::Quarantine]>,
    /// Matrix keys whose values came from the repository (`glob`,
    /// `lines`), as `validate` shows them.
    pub listed: Vec<matrix::Listed>,
    /// Tasks in plan order, matrices expanded, defaults applied.
    pub tasks: Vec<Task>,
}

/// `[swarm] replan`: how many failed tasks the coordinator may have a
/// model replan, and which model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Replan {
    pub rounds: u32,
    pub model: String,
}

/// Where a plan's base revision was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseFrom {
    /// Not given: `HEAD`.
    Default,
    /// `[swarm] base`, at this span of the plan.
    Plan(Range<usize>),
    /// `--base` on the command line.
    CommandLine,
}

impl Plan {
    /// Everything of the plan but its tasks: what a part of the run that
    /// keeps no task of its own needs. `clone` and then dropping the tasks
    /// copied every task first (3 MB at 10,000 tasks, at the run's start).
    pub fn without_tasks(&self) -> Plan {
        // Named one by one, so a new setting cannot be forgotten here.
        let Plan {
            path,
            source,
            origin,
            files,
            name,
            base,
            base_from,
            concurrency,
            sandbox,
            on_failure,
            predict_conflicts,
            history,
            keep_runs,
            read_paths,
            toolchains,
            worktrees,
            caches,
            models,
            agents,
            mcp,
            budget,
            min_free_space,
            executor,
            subtask_limits,
            replan,
            verify,
            setup,
            cleanup,
            quarantine,
            listed,
            tasks: _,
        } = self;
        Plan {
            path: path.clone(),
            source: source.clone(),
            origin: *origin,
            files: files.clone(),
            name: name.clone(),
            base: base.clone(),
            base_from: base_from.clone(),
            concurrency: *concurrency,
            sandbox: *sandbox,
            on_failure: *on_failure,
            predict_conflicts: *predict_conflicts,
            history: *history,
            keep_runs: *keep_runs,
            read_paths: read_paths.clone(),
            toolchains: toolchains.clone(),
            worktrees: worktrees.clone(),
            caches: *caches,
            models: models.clone(),
            agents: agents.clone(),
            mcp: mcp.clone(),
            budget: *budget,
            min_free_space: *min_free_space,
            executor: executor.clone(),
            subtask_limits: *subtask_limits,
            replan: replan.clone(),
            verify: verify.clone(),
            setup: setup.clone(),
            cleanup: cleanup.clone(),
            quarantine: quarantine.clone(),
            listed: listed.clone(),
            tasks: Vec::new(),
        }
    }

    /// The variables holding the API keys of its models: never passed to
    /// an unconfined command.
    pub fn secret_vars(&self) -> Vec<String> {
        self.models
            .values()
            .filter_map(|m| m.api_key_env.clone())
            .collect()
    }

    /// The error for a base that names no commit of `repo`, at its line in
    /// the plan; `None` unless the plan set it.
    pub fn unknown_base(&self, repo: &Path) -> Option<PlanError> {
        let BaseFrom::Plan(span) = &self.base_from else {
            return None;
        };
        Some(
            self.source
                .error(
                    PlanErrorKind::BadValue,
                    format!(
                        "base `{}` names no branch, tag or commit of {}",
                        self.base,
                        repo.display()
                    ),
                    Some(span.clone()),
                    "no such revision",
                )
                .with_help(
                    "set `base` in [swarm] (or --base) to an existing branch, tag or commit",
                ),
        )
    }
}

/// A `read_paths` entry as written, with its place in the plan (so that a
/// path that does not exist is reported at its line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPath {
    pub raw: String,
    pub span: Range<usize>,
}

/// The toolchains swarm knows how to find and grant (`[swarm] toolchains`).
pub const TOOLCHAINS: &[&str] = &["rust", "node", "python", "go"];

/// Which detected toolchains sandboxed tasks may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toolchains {
    All,
    None,
    /// Names from [`TOOLCHAINS`], checked.
    Only(Vec<String>),
}

impl Toolchains {
    /// True if the toolchain `name` may be granted.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

/// One task of a plan after defaults and matrix expansion.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    /// Where the task's `id` stands in the plan (for later errors).
    pub span: Range<usize>,
    pub deps: Vec<String>,
    /// What the task runs: the one part that differs by kind.
    pub payload: Payload,
    pub env: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    /// How long an attempt may show no sign of life before it is ended as
    /// stalled (`None`: never).
    pub stall_after: Option<Duration>,
    pub retries: u32,
    pub verify: Option<String>,
    /// Paths the task may write (empty: the whole repository).
    pub paths: Vec<String>,
    /// Whether only `paths` are checked out (`sparse = true`).
    pub sparse: bool,
    /// Paths the task creates: the task's to write, like `paths`, but
    /// absent at the base.
    pub creates: Vec<String>,
    /// Whether the plan lets this task write what an unordered task also
    /// writes (`allow_overlap`).
    pub allow_overlap: bool,
    pub isolation: Isolation,
    /// The group it is verified with by the run-wide verify, if any.
    pub group: Option<String>,
    /// Its command's own test report (`junit`): relative to its worktree,
    /// or to its tmp when it starts with `$TMPDIR/`.
    pub junit: Option<String>,
    /// Whether a test that passed only when run again fails the task.
    pub flaky: schema::Flaky,
    /// What a conflict of its result with the integration branch does.
    pub on_conflict: OnConflict,
    /// With `OnConflict::Rerun`: how many times it runs again after a
    /// conflict.
    pub conflict_reruns: u32,
    pub network: TaskNetwork,
    /// Whether the plan's `[setup]` runs in its worktree first.
    pub setup: bool,
    /// Whether its worktree is kept between runs (see `run::warm`), as
    /// the plan says; `None`: the run decides ([`Task::warm_by_default`]).
    pub warm: Option<bool>,
    /// Address-space limit per process, in bytes.
    pub memory: Option<u64>,
    /// Processes and threads at once.
    pub processes: Option<u64>,
    /// Bytes of each output stream kept in the log.
    pub max_output: u64,
    /// Largest file a snapshot of the task's worktree commits, in bytes.
    pub max_file_size: u64,
    /// The part the task plays in an experiment (`variants`), if any.
    pub role: Role,
    /// When it must have ended, whatever its `timeout`: a subtask's
    /// subtree ends by its parent's deadline (see `ceiling`). `None` for
    /// the plan's own tasks.
    pub not_after: Option<std::time::SystemTime>,
    /// A task of many entries (`shards`), before or after it is split.
    /// Boxed: most tasks have none.
    pub sharding: Option<Box<shards::Sharding>>,
}

/// What part a task plays in an experiment: a task with `variants` becomes
/// its variants (`<task>@1` ...), which run like any task, and the
/// experiment `<task>`, which depends on them, runs nothing, and whose
/// result is the one variant picked. Dependents name the experiment.
#[derive(Debug, Clone, Default)]
pub enum Role {
    #[default]
    Plain,
    /// Boxed, as the payloads: most tasks are plain.
    Variant(Box<Variant>),
    Experiment(Box<Experiment>),
}

/// One way of doing an experiment.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The experiment's id.
    pub of: String,
    /// `k` of `<task>@<k>`, from 1.
    pub number: u32,
    /// Its values of `variants = { key = [...] }` (none for `variants = N`).
    pub values: BTreeMap<String, String>,
    /// What ranks it, run after its `verify` passed.
    pub score: Option<ScoreCommand>,
}

/// An experiment's `score`.
#[derive(Debug, Clone)]
pub struct ScoreCommand {
    pub command: String,
    pub timeout: Duration,
    /// How many times it runs (its median is the score): 1 to 9.
    pub repeat: u32,
}

/// How long `score` may run when the plan does not say.
pub const DEFAULT_SCORE_TIMEOUT: Duration = Duration::from_secs(600);

/// The most variants one task may have.
pub const MAX_VARIANTS: usize = 64;

/// An experiment: its variants and how one is picked.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub pick: Pick,
    /// Its variants' ids, by number.
    pub variants: Vec<String>,
    /// Whether the variants have a `score`.
    pub scored: bool,
}

/// Up to this many tasks with worktrees of their own, a plan's tasks keep
/// their worktrees warm unless they say otherwise: a fan-out a person runs
/// again. A plan of thousands would keep thousands of checkouts.
pub const WARM_BY_DEFAULT_UP_TO: usize = 64;

impl Task {
    /// Whether the task's worktree is kept warm between runs, in a plan of
    /// `worktree_tasks` tasks with worktrees: as it says, else up to
    /// [`WARM_BY_DEFAULT_UP_TO`] of them. Never for a partial checkout
    /// (`sparse`: its next run may name other paths) or a read-only task.
    pub fn warm_by_default(&self, worktree_tasks: usize) -> bool {
        self.isolation == Isolation::Worktree
            && !self.sparse
            && self.warm.unwrap_or(worktree_tasks <= WARM_BY_DEFAULT_UP_TO)
    }

    /// The experiment's settings, for an experiment.
    pub fn experiment(&self) -> Option<&Experiment> {
        match &self.role {
            Role::Experiment(e) => Some(e),
            Role::Plain | Role::Variant(_) => None,
        }
    }

    /// The variant's place, for a variant.
    pub fn variant(&self) -> Option<&Variant> {
        match &self.role {
            Role::Variant(v) => Some(v),
            Role::Plain | Role::Experiment(_) => None,
        }
    }
}

/// What a task runs. One variant per kind, so that a task cannot be two
/// kinds at once, and a new kind is a new variant that every `match` on it
/// must handle (see ARCHITECTURE.md, "Adding a task kind").
#[derive(Debug, Clone)]
pub enum Payload {
    /// A shell command (`run`).
    Command { run: String },
    /// A WASI program (`wasm`). Boxed, as the agent: most tasks are
    /// commands, and a plan of 10,000 keeps every task for the whole run.
    Wasm(Box<WasmTask>),
    /// A coding agent (`prompt`).
    Agent(Box<AgentTask>),
}

impl Payload {
    /// The kind the protocol (journal, report) records for this payload.
    pub fn kind(&self) -> TaskKind {
        match self {
            Self::Command { .. } => TaskKind::Command,
            Self::Wasm(_) => TaskKind::Wasm,
            Self::Agent(_) => TaskKind::Agent,
        }
    }
}

impl Task {
    /// The task's kind, as the protocol records it.
    pub fn kind(&self) -> TaskKind {
        self.payload.kind()
    }

    /// The shell command of a command task.
    pub fn command(&self) -> Option<&str> {
        match &self.payload {
            Payload::Command { run } => Some(run),
            Payload::Wasm(_) | Payload::Agent(_) => None,
        }
    }

    /// The program of a WASM task.
    pub fn wasm(&self) -> Option<&WasmTask> {
        match &self.payload {
            Payload::Wasm(wasm) => Some(wasm),
            Payload::Command { .. } | Payload::Agent(_) => None,
        }
    }

    /// Where the task may write: its `paths` and `creates`, or `None` for
    /// the whole repository (neither given).
    pub fn owned(&self) -> Option<Vec<&str>> {
        if self.paths.is_empty() && self.creates.is_empty() {
            return None;
        }
        Some(
            self.paths
                .iter()
                .chain(&self.creates)
                .map(String::as_str)
                .collect(),
        )
    }

    /// True if `path` (relative to the repository root) is inside one of
    /// the task's `paths` or `creates`, or the task has neither.
    pub fn owns(&self, path: &str) -> bool {
        self.owned()
            .is_none_or(|owned| owned.iter().any(|o| path_within(path, o)))
    }

    /// What is checked out in the task's worktree (empty: everything): for
    /// a `sparse` task its `paths` and, with them, its `creates` (which a
    /// dependency may have made already: then the task starts from that
    /// file, not without it). Also the only paths whose absence from the
    /// worktree a snapshot takes for a deletion, so that what was never
    /// checked out is not deleted and nothing under `creates` is lost.
    /// Other tasks see the whole tree: their builds and tests need it, and
    /// where they may write is `owned`, not what they see.
    pub fn checkout(&self) -> Vec<String> {
        if !self.sparse || self.paths.is_empty() {
            return Vec::new();
        }
        self.paths.iter().chain(&self.creates).cloned().collect()
    }

    /// What an agent task does.
    pub fn agent(&self) -> Option<&AgentTask> {
        match &self.payload {
            Payload::Agent(agent) => Some(agent),
            Payload::Command { .. } | Payload::Wasm(_) => None,
        }
    }
}

/// The program of a WASM task.
#[derive(Debug, Clone)]
pub struct WasmTask {
    /// The module or component (written relative to the plan's directory
    /// unless absolute, after matrix substitution).
    pub module: PathBuf,
    /// For a plan from an untrusted origin, the blob of the run's base
    /// that is the program: the engine loads these bytes
    /// (`Files::blob`), never the file at `module`, which may have changed
    /// since, or not be committed at all.
    pub blob: Option<git2::Oid>,
    /// Where `wasm = ...` stands in the plan.
    pub span: Range<usize>,
    /// The guest's arguments (after its own name, argv[0]).
    pub args: Vec<String>,
    /// Deterministic fuel: the guest traps when it runs out.
    pub fuel: Option<u64>,
}

/// Free space a task needs to start when the plan does not say.
pub const DEFAULT_MIN_FREE_SPACE: u64 = 256 << 20;

/// An agent task's `stall_after` when the plan sets none: an agent that
/// neither calls its model nor runs anything for this long is hung.
pub const DEFAULT_AGENT_STALL: Duration = Duration::from_secs(600);

/// Output kept per stream when the plan does not say.
pub const DEFAULT_MAX_OUTPUT: u64 = 16 << 20;

/// Largest file a snapshot commits when the plan does not say.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 100 << 20;

/// Runs of a repository kept when a run ends, when the plan does not say.
pub const DEFAULT_KEEP_RUNS: u32 = 20;

/// Runs of a task again after its result conflicted, when it does not say.
pub const DEFAULT_CONFLICT_RERUNS: u32 = 2;

/// Reads and checks the plan at `path`.
pub fn load(path: &Path) -> Result<Plan, Box<PlanError>> {
    let text = read_plan(path)?;
    parse(path, text)
}

/// The text of the plan file at `path`.
#[allow(clippy::disallowed_methods, reason = "the plan file the person named")]
fn read_plan(path: &Path) -> Result<String, Box<PlanError>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Box::new(
            PlanError::plain(
                PlanErrorKind::Io,
                format!("cannot read plan {}: {e}", path.display()),
            )
            .with_help("check the path; plans are TOML files such as plans/quickstart.toml"),
        )
    })?;
    String::from_utf8(bytes).map_err(|e| Box::new(not_utf8(path, e)))
}

/// The error for a plan file that is not UTF-8: where the first bad byte
/// is, in the file shown with it replaced.
fn not_utf8(path: &Path, e: std::string::FromUtf8Error) -> PlanError {
    let at = e.utf8_error().valid_up_to();
    let bytes = e.into_bytes();
    let bad = bytes.get(at).copied().unwrap_or_default();
    // Lossy, the text before the bad byte keeps its offsets.
    let source = Source::new(path, String::from_utf8_lossy(&bytes).into_owned());
    let (line, col) = source.line_col(at);
    source
        .error(
            PlanErrorKind::Syntax,
            format!(
                "the plan is not UTF-8 text: byte 0x{bad:02x} at line {line}, column {col} (byte offset {at})"
            ),
            Some(at..at + "\u{fffd}".len()),
            "not UTF-8",
        )
        .with_help("TOML files are UTF-8: save the plan as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")
}

/// Reads and checks the plan at `path`, to run as `at` says: the
/// repository and commit whose files a matrix's `glob` lists.
pub fn load_in(path: &Path, at: origin::files::RunIn) -> Result<Plan, Box<PlanError>> {
    let text = read_plan(path)?;
    parse_in(path, text, at)
}

/// [`parse`] for a plan run as `at` says.
pub fn parse_in(
    path: &Path,
    text: String,
    at: origin::files::RunIn,
) -> Result<Plan, Box<PlanError>> {
    parse_with(
        path,
        text,
        origin::Origin::Person,
        origin::files::Files::beside_in(path, at),
    )
}

/// Checks the plan `text`, read from `path` (used for messages and the
/// default run name).
pub fn parse(path: &Path, text: String) -> Result<Plan, Box<PlanError>> {
    parse_with(
        path,
        text,
        origin::Origin::Person,
        origin::files::Files::beside(path),
    )
}

/// Reads `source` as far as its shape: TOML, the keys and types of a plan
/// (every misspelt key at once), nothing it names read. What an untrusted
/// plan sets is judged after this, before the rest of its checks.
pub fn read_shape(source: &Source) -> Result<(), Box<PlanError>> {
    expand::parse(source).map(|_| ()).map_err(Box::new)
}

/// Reads and checks the plan `text` from `path`, which came from `origin`,
/// its file names read as `files` says (a plan from an untrusted origin
/// reads them inside the repository only). What the plan sets is not
/// judged here: [`origin::findings`] lists what an untrusted origin may
/// not set.
pub fn parse_with(
    path: &Path,
    text: String,
    origin: origin::Origin,
    files: origin::files::Files,
) -> Result<Plan, Box<PlanError>> {
    expand::plan(path, Source::new(path, text), origin, files).map_err(Box::new)
}

/// Rounds a planned plan that fails its checks goes back to the model,
/// when the configuration does not say.
pub const DEFAULT_PLAN_REPAIR_ROUNDS: u32 = 3;

/// Tokens of repository map the planner shows the model by default.
pub const DEFAULT_PLAN_CONTEXT_TOKENS: u32 = 8000;

/// What a planned plan starts from: a plan file without tasks (the
/// planner's configuration, `swarm.toml`), checked. Its text is copied
/// into every plan the planner writes, so its settings, defaults and
/// models apply to the run.
#[derive(Debug, Clone)]
pub struct Template {
    pub source: Source,
    /// Who the configuration came from; a plan written from it is of
    /// the same origin.
    pub origin: origin::Origin,
    /// How the file names of a plan written from it are read.
    pub files: origin::files::Files,
    pub models: BTreeMap<String, ModelConfig>,
    /// `[swarm] budget`: what the planner's calls may spend too.
    pub budget: Budget,
    /// `[swarm] base`, if set.
    pub base: Option<String>,
    /// Whether `[swarm] name` is set (then the run is named by it).
    pub named: bool,
    /// `[defaults] verify`, if set: the run-wide verify.
    pub verify: Option<String>,
    pub repair_rounds: u32,
    pub context_tokens: u32,
}

/// Reads and checks a planner configuration (a plan without tasks) `text`
/// from `path`.
pub fn parse_template(path: &Path, text: String) -> Result<Template, Box<PlanError>> {
    parse_template_with(
        path,
        text,
        origin::Origin::Person,
        origin::files::Files::beside(path),
    )
}

/// [`parse_template`] for a configuration from `origin`, whose (and whose
/// plans') file names are read as `files` says.
pub fn parse_template_with(
    path: &Path,
    text: String,
    origin: origin::Origin,
    files: origin::files::Files,
) -> Result<Template, Box<PlanError>> {
    let mut template = expand::template(path, Source::new(path, text)).map_err(Box::new)?;
    template.origin = origin;
    template.files = files;
    Ok(template)
}

/// A task id given on the command line (`--only`) that the plan lacks.
#[derive(Debug, thiserror::Error)]
#[error("select task `{id}`: the plan has no {}{}", if deps::is_glob(id) { "task it matches" } else { "such task" }, match suggestion {
    Some(s) => format!(" (did you mean `{s}`?)"),
    None => String::new(),
})]
pub struct UnknownTask {
    pub id: String,
    pub suggestion: Option<String>,
}

impl Plan {
    /// Keeps only the tasks `ids` and every task they depend on, directly
    /// or not (plan order unchanged), so the plan stays a complete graph.
    pub fn select(&mut self, ids: &[String]) -> Result<(), UnknownTask> {
        let index: std::collections::HashMap<&str, usize> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        let mut keep = vec![false; self.tasks.len()];
        let mut stack = Vec::new();
        for id in ids {
            if deps::is_glob(id) && !index.contains_key(id.as_str()) {
                let matched = deps::ids_matching(id, self.tasks.iter().map(|t| t.id.as_str()))
                    .unwrap_or_default();
                if matched.is_empty() {
                    return Err(UnknownTask {
                        id: id.clone(),
                        suggestion: None,
                    });
                }
                stack.extend(matched.iter().filter_map(|m| index.get(m)));
                continue;
            }
            let Some(&i) = index.get(id.as_str()) else {
                return Err(UnknownTask {
                    id: id.clone(),
                    suggestion: did_you_mean(id, self.tasks.iter().map(|t| t.id.as_str()))
                        .map(str::to_string),
                });
            };
            stack.push(i);
        }
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut keep[i], true) {
                continue;
            }
            stack.extend(
                self.tasks[i]
                    .deps
                    .iter()
                    .filter_map(|d| index.get(d.as_str())),
            );
        }
        let mut keep = keep.into_iter();
        self.tasks.retain(|_| keep.next().unwrap_or(false));
        Ok(())
    }
}

/// True if `path` is `dir` or lies below it (component-wise: `src/ab` is
/// not within `src/a`).
pub fn path_within(path: &str, dir: &str) -> bool {
    path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
