//! The allow-lists: for every key of every table a plan or a planner
//! configuration can hold, what an origin swarm did not get from the person
//! running it may set ([`PLAN`]), and for every key of a `[[task]]` table
//! what a subtask request or a replan's fix may ask for ([`SUBTASK`]).
//!
//! A key that is not here is refused to such an origin (`origin::findings`
//! reports it as needing trust), and the unit tests below walk the plan's
//! JSON schema and fail for a key without a rule or a rule without a key:
//! the next key added is denied until someone decides here that it is
//! safe, and says why.

/// A kind of table, as the plan's schema has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    /// The file itself: its top-level tables.
    Plan,
    /// `[swarm]`.
    Swarm,
    /// `[defaults]` and each `[[task]]` (one set of keys).
    Task,
    /// Each `[models.NAME]`.
    Model,
    /// Each `[agents.NAME]`.
    Agent,
    /// Each `[mcp.NAME]`.
    Mcp,
    /// `[executor]`.
    Executor,
    /// A `budget = { ... }` of `[swarm]` or a task.
    Budget,
    /// A model's `price = { ... }`.
    Price,
    /// `[setup]`.
    Setup,
    /// `[cleanup]`.
    Cleanup,
    /// Each `[[quarantine]]`.
    Quarantine,
    /// A matrix key's `{ glob = ... }` or `{ lines = ... }`: read by the
    /// plan's `Files` (inside the repository for an untrusted origin),
    /// whatever the matrix's own rule.
    MatrixFrom,
}

impl Table {
    /// Every table kind.
    pub const ALL: [Table; 13] = [
        Table::Plan,
        Table::Swarm,
        Table::Task,
        Table::Model,
        Table::Agent,
        Table::Mcp,
        Table::Executor,
        Table::Budget,
        Table::Price,
        Table::Setup,
        Table::Cleanup,
        Table::Quarantine,
        Table::MatrixFrom,
    ];

    /// The name of its type in the plan's JSON schema (`None`: the root).
    pub fn schema_name(self) -> Option<&'static str> {
        match self {
            Table::Plan => None,
            Table::Swarm => Some("SwarmSection"),
            Table::Task => Some("TaskFields"),
            Table::Model => Some("ModelFields"),
            Table::Agent => Some("AgentFields"),
            Table::Mcp => Some("McpFields"),
            Table::Executor => Some("ExecutorSection"),
            Table::Budget => Some("BudgetFields"),
            Table::Price => Some("Price"),
            Table::Setup => Some("SetupSection"),
            Table::Cleanup => Some("CleanupSection"),
            Table::Quarantine => Some("QuarantineFields"),
            Table::MatrixFrom => Some("MatrixFrom"),
        }
    }

    /// How the manual names the table.
    pub fn shown(self) -> &'static str {
        match self {
            Table::Plan => "(top level)",
            Table::Swarm => "[swarm]",
            Table::Task => "[defaults], [[task]]",
            Table::Model => "[models.NAME]",
            Table::Agent => "[agents.NAME]",
            Table::Mcp => "[mcp.NAME]",
            Table::Executor => "[executor]",
            Table::Budget => "budget",
            Table::Price => "price",
            Table::Setup => "[setup]",
            Table::Cleanup => "[cleanup]",
            Table::Quarantine => "[[quarantine]]",
            Table::MatrixFrom => "matrix key { glob, lines }",
        }
    }
}

/// What an untrusted plan or configuration may do with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum May {
    /// Any value: it changes what runs or how, inside the confinement the
    /// person allows; not what a task may reach.
    Any,
    /// Values of its own making (`env`, a matrix, variants): any.
    Data,
    /// Only a value within swarm's own default confinement.
    AtMost(Bound),
    /// A file name (or, for `output_schema`, an inline table): read only
    /// as a file git tracks at the run's base, relative to the plan, from
    /// the commit's tree (never the working tree, never `.git/` or
    /// `.swarm/`): `files::Files::tracked_blob`.
    TrackedFile,
    /// Needs trust, whatever its value.
    Trust,
    /// A table whose keys have rules of their own.
    Nested(Table),
    /// Tables by name (`[models.NAME]`), each ruled as the table.
    Tables(Table),
    /// An array of tables (`[[task]]`), each ruled as the table.
    ArrayOf(Table),
}

/// The default a value must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `sandbox = "landlock"`.
    Sandboxed,
    /// `read_paths = []`.
    NoReadPaths,
    /// `network = "none"`: neither `full` nor a list of hosts.
    NoNetwork,
    /// `memory` at most the sandbox's default.
    Memory,
    /// `processes` at most the sandbox's default.
    Processes,
    /// `max_output` at most swarm's default.
    MaxOutput,
    /// `max_file_size` at most swarm's default.
    MaxFileSize,
    /// `[executor] kind = "local"`.
    LocalExecutor,
    /// A model's `base_url` is its provider's own endpoint, with or
    /// without a key: another endpoint is a place the coordinator sends
    /// requests to, for tasks that have no network.
    ProviderEndpoint,
    /// A model's `api_key_env` is its provider's own variable, or `""`
    /// (no key).
    ProviderKey,
}

/// One key's rule.
#[derive(Debug, Clone, Copy)]
pub struct KeyRule {
    pub table: Table,
    pub key: &'static str,
    pub may: May,
    /// Why: what it grants, or why any value is safe.
    pub why: &'static str,
}

const fn rule(table: Table, key: &'static str, may: May, why: &'static str) -> KeyRule {
    KeyRule {
        table,
        key,
        may,
        why,
    }
}

use Bound::*;
use May::*;
use Table as T;

/// What a plan or configuration that swarm did not get from the person
/// running it may set: a repository's `swarm.toml` until it is trusted, a
/// plan that arrives over MCP.
pub const PLAN: &[KeyRule] = &[
    // The file's tables.
    rule(T::Plan, "swarm", Nested(T::Swarm), "each key ruled below"),
    rule(
        T::Plan,
        "defaults",
        Nested(T::Task),
        "each key ruled as a task's",
    ),
    rule(T::Plan, "task", ArrayOf(T::Task), "each key ruled below"),
    rule(T::Plan, "models", Tables(T::Model), "each key ruled below"),
    rule(T::Plan, "agents", Tables(T::Agent), "each key ruled below"),
    rule(T::Plan, "mcp", Tables(T::Mcp), "each key ruled below"),
    rule(
        T::Plan,
        "executor",
        Nested(T::Executor),
        "each key ruled below",
    ),
    rule(T::Plan, "setup", Nested(T::Setup), "each key ruled below"),
    rule(
        T::Plan,
        "quarantine",
        Trust,
        "loosens a gate: the failing tests it names do not fail their task",
    ),
    // [[quarantine]]: the person's own, or trusted, as the table is.
    rule(
        T::Quarantine,
        "test",
        Trust,
        "a failing test it names does not fail its task",
    ),
    rule(T::Quarantine, "task", Trust, "where the quarantine holds"),
    rule(T::Quarantine, "owner", Trust, "part of a quarantine"),
    rule(T::Quarantine, "reason", Trust, "part of a quarantine"),
    rule(
        T::Quarantine,
        "review_by",
        Trust,
        "until when the test does not gate",
    ),
    rule(
        T::Plan,
        "cleanup",
        Nested(T::Cleanup),
        "each key ruled below",
    ),
    // A matrix key's values from the repository: what a task's worktree
    // holds anyway; read through the plan's `Files`, never outside the
    // repository for an untrusted origin (a request may not: `subtasks`).
    rule(
        T::MatrixFrom,
        "glob",
        Any,
        "lists the files git tracks at the run's base, which every task's worktree holds",
    ),
    rule(
        T::MatrixFrom,
        "lines",
        TrackedFile,
        "a file of values, read as a file git tracks at the run's base",
    ),
    // [cleanup]: the person's own, or trusted.
    rule(
        T::Cleanup,
        "run",
        Trust,
        "runs a command in every task's worktree, outside the task's own plan",
    ),
    rule(
        T::Cleanup,
        "network",
        Trust,
        "gives cleanup a network of its own",
    ),
    rule(T::Cleanup, "timeout", Trust, "how long cleanup may run"),
    // [setup]: the person's own, or trusted: it runs before every task.
    rule(
        T::Setup,
        "run",
        Trust,
        "runs a command before every task, outside the task's own plan",
    ),
    rule(
        T::Setup,
        "key",
        Trust,
        "makes worktrees reuse a finished setup's files",
    ),
    rule(
        T::Setup,
        "network",
        Trust,
        "gives setup a network of its own",
    ),
    rule(T::Setup, "timeout", Trust, "how long setup may run"),
    rule(T::Setup, "env", Trust, "variables of setup"),
    // [swarm]
    rule(
        T::Swarm,
        "name",
        Any,
        "names the run (checked like any run name)",
    ),
    rule(
        T::Swarm,
        "base",
        Any,
        "a revision of this repository; for an untrusted origin one a branch, tag or HEAD holds (`files::Files::pinned`)",
    ),
    rule(T::Swarm, "concurrency", Any, "how many tasks at once"),
    rule(
        T::Swarm,
        "sandbox",
        AtMost(Sandboxed),
        "runs tasks unconfined, with your permissions and files",
    ),
    rule(
        T::Swarm,
        "on_failure",
        Any,
        "what a failure does to the run",
    ),
    rule(
        T::Swarm,
        "on_conflict",
        Any,
        "what a conflict does: a re-run runs in the task's own sandbox",
    ),
    rule(
        T::Swarm,
        "predict_conflicts",
        Any,
        "when tasks start, not what they reach",
    ),
    rule(T::Swarm, "history", Any, "how results land on the branch"),
    rule(
        T::Swarm,
        "keep_runs",
        Any,
        "cleans older runs as `swarm clean --refs` does: never the only copy of work",
    ),
    rule(
        T::Swarm,
        "read_paths",
        AtMost(NoReadPaths),
        "lets sandboxed tasks read these paths",
    ),
    rule(
        T::Swarm,
        "toolchains",
        Any,
        "can only narrow the default (every toolchain found)",
    ),
    rule(
        T::Swarm,
        "worktrees",
        Trust,
        "makes swarm write worktrees in this directory",
    ),
    rule(
        T::Swarm,
        "caches",
        Any,
        "the default is on; off only narrows what tasks share",
    ),
    rule(T::Swarm, "budget", Nested(T::Budget), "a limit on spending"),
    rule(
        T::Swarm,
        "min_free_space",
        Any,
        "when a task does not start",
    ),
    rule(
        T::Swarm,
        "plan_repair_rounds",
        Any,
        "rounds of the planner, each a model call under the budgets",
    ),
    rule(
        T::Swarm,
        "plan_context_tokens",
        Any,
        "the planner's map size",
    ),
    rule(T::Swarm, "max_depth", Any, "how deep subtasks nest"),
    rule(T::Swarm, "max_children", Any, "subtasks per task"),
    rule(T::Swarm, "max_tasks", Any, "tasks in the run"),
    rule(
        T::Swarm,
        "replan",
        Any,
        "a fix is a subtask request, under the failed task's ceiling",
    ),
    rule(T::Swarm, "replan_model", Any, "one of the plan's models"),
    rule(
        T::Swarm,
        "verify",
        Any,
        "runs sandboxed, in a read-only checkout",
    ),
    rule(T::Swarm, "verify_every", Any, "when the verify runs"),
    rule(
        T::Swarm,
        "verify_timeout",
        Any,
        "how long the verify may run",
    ),
    rule(
        T::Swarm,
        "verify_retries",
        Any,
        "at most 10 more runs of the sandboxed verify on one tree",
    ),
    rule(
        T::Swarm,
        "verify_concurrency",
        Any,
        "at most 16 sandboxed verifies at once, under the run's own limits",
    ),
    // [defaults] and [[task]]
    rule(T::Task, "id", Any, "names the task"),
    rule(T::Task, "deps", Any, "orders tasks"),
    rule(T::Task, "run", Any, "what it does, in its sandbox"),
    rule(
        T::Task,
        "wasm",
        TrackedFile,
        "makes the coordinator read this file as the task's program",
    ),
    rule(T::Task, "args", Any, "arguments of its WASM program"),
    rule(T::Task, "fuel", Any, "a limit"),
    rule(T::Task, "prompt", Any, "what it does, in its sandbox"),
    rule(
        T::Task,
        "agent",
        Any,
        "swarm's own, a built-in (the program on your PATH), or one of the file's [agents], ruled there",
    ),
    rule(
        T::Task,
        "mcp",
        Any,
        "some of the file's [mcp] servers, ruled there",
    ),
    rule(
        T::Task,
        "output_schema",
        TrackedFile,
        "makes the coordinator read this file and send it to the model",
    ),
    rule(
        T::Task,
        "model",
        Any,
        "one of the file's [models], ruled there",
    ),
    rule(T::Task, "max_turns", Any, "a limit"),
    rule(T::Task, "budget", Nested(T::Budget), "a limit on spending"),
    rule(
        T::Task,
        "repair_rounds",
        Any,
        "each round counts against max_turns and the budget",
    ),
    rule(
        T::Task,
        "env",
        Data,
        "values for its own processes, in its sandbox; API keys are never passed on",
    ),
    rule(T::Task, "timeout", Any, "a limit"),
    rule(
        T::Task,
        "stall_after",
        Any,
        "a limit: ends an attempt that shows no sign of life",
    ),
    rule(
        T::Task,
        "retries",
        Any,
        "attempts, each in a fresh worktree",
    ),
    rule(T::Task, "verify", Any, "runs in the task's sandbox"),
    rule(T::Task, "paths", Any, "narrows where it may write"),
    rule(T::Task, "sparse", Any, "checks out less"),
    rule(T::Task, "creates", Any, "narrows where it may write"),
    rule(
        T::Task,
        "allow_overlap",
        Any,
        "a conflict is reported, nothing is lost",
    ),
    rule(T::Task, "isolation", Any, "`readonly` only narrows"),
    rule(T::Task, "group", Any, "which merges are verified together"),
    rule(
        T::Task,
        "shards",
        Any,
        "how many tasks run a matrix's entries, at most one per entry",
    ),
    rule(
        T::Task,
        "junit",
        Any,
        "a file of the task's own worktree or tmp, read as hostile input after its command",
    ),
    rule(
        T::Task,
        "shard_grouping",
        Any,
        "which of its shards runs an entry",
    ),
    rule(
        T::Task,
        "list_tests",
        Any,
        "a command listing its entries' tests, run in each shard's sandbox as its `run` is",
    ),
    rule(
        T::Task,
        "affected",
        Trust,
        "loosens a gate: the entries no change of the run touched do not run",
    ),
    rule(
        T::Task,
        "affects",
        Trust,
        "loosens a gate: a change to the paths it names runs only the entries it says",
    ),
    rule(
        T::Task,
        "flaky",
        Any,
        "whether a test that passed only when run again gates; either way it is reported flaky",
    ),
    rule(
        T::Task,
        "on_conflict",
        Any,
        "a re-run runs in the task's own sandbox",
    ),
    rule(
        T::Task,
        "conflict_reruns",
        Any,
        "attempts, each in a fresh worktree",
    ),
    rule(
        T::Task,
        "network",
        AtMost(NoNetwork),
        "gives tasks the host's network, or the hosts a list names",
    ),
    rule(
        T::Task,
        "setup",
        Any,
        "runs or skips the plan's own `[setup]` (which needs trust), in the task's sandbox",
    ),
    rule(
        T::Task,
        "warm",
        Any,
        "an untrusted plan's worktrees are never kept warm, whatever it says: a later run of yours would build on what its tasks left",
    ),
    rule(
        T::Task,
        "memory",
        AtMost(Memory),
        "gives tasks more memory than swarm does",
    ),
    rule(
        T::Task,
        "processes",
        AtMost(Processes),
        "gives tasks more processes than swarm does",
    ),
    rule(
        T::Task,
        "max_output",
        AtMost(MaxOutput),
        "makes the coordinator keep more of a task's output",
    ),
    rule(
        T::Task,
        "max_file_size",
        AtMost(MaxFileSize),
        "makes the coordinator commit larger files",
    ),
    rule(T::Task, "matrix", Data, "each combination is a task"),
    rule(T::Task, "variants", Data, "each variant is a task"),
    rule(T::Task, "score", Any, "runs sandboxed, read-only"),
    rule(T::Task, "score_timeout", Any, "a limit"),
    rule(
        T::Task,
        "score_repeat",
        Any,
        "runs the same score again: a count",
    ),
    rule(T::Task, "pick", Any, "which variant is kept"),
    rule(T::Task, "temperature", Any, "sampling only"),
    // [models.NAME]
    rule(T::Model, "provider", Any, "the wire protocol"),
    rule(T::Model, "model", Any, "the provider's model name"),
    rule(
        T::Model,
        "base_url",
        AtMost(ProviderEndpoint),
        "makes the coordinator send model calls there, for tasks that may have no network",
    ),
    rule(
        T::Model,
        "api_key_env",
        AtMost(ProviderKey),
        "reads another of your variables as the API key",
    ),
    rule(T::Model, "max_tokens", Any, "a limit"),
    rule(T::Model, "concurrency", Any, "a limit"),
    rule(T::Model, "requests_per_minute", Any, "pacing"),
    rule(T::Model, "tokens_per_minute", Any, "pacing"),
    rule(T::Model, "retries", Any, "retries of failed calls"),
    rule(T::Model, "timeout", Any, "a limit"),
    rule(
        T::Model,
        "price",
        Nested(T::Price),
        "what spending is counted at",
    ),
    rule(T::Model, "prompt_cache", Any, "cache markers in requests"),
    rule(
        T::Model,
        "tool_choice",
        Any,
        "whether the model must call a tool",
    ),
    // price = { ... }, budget = { ... }
    rule(T::Price, "input", Any, "counted spending"),
    rule(T::Price, "output", Any, "counted spending"),
    rule(T::Price, "cache_read", Any, "counted spending"),
    rule(T::Price, "cache_write", Any, "counted spending"),
    rule(T::Budget, "tokens", Any, "a limit"),
    rule(T::Budget, "usd", Any, "a limit"),
    // [agents.NAME]
    rule(
        T::Agent,
        "kind",
        Any,
        "which protocol and flags; the program is ruled by `program` and `command`",
    ),
    rule(T::Agent, "model", Any, "one of the file's [models]"),
    rule(
        T::Agent,
        "program",
        Trust,
        "runs this program in tasks and shows the directory it is installed in to them",
    ),
    rule(
        T::Agent,
        "args",
        Any,
        "arguments of the program, in its sandbox",
    ),
    rule(
        T::Agent,
        "command",
        Trust,
        "runs this program in tasks and shows the directory it is installed in to them",
    ),
    rule(T::Agent, "protocol", Any, "which wire protocol it speaks"),
    rule(
        T::Agent,
        "base_url_env",
        Any,
        "the variable that gets the gateway's address",
    ),
    rule(
        T::Agent,
        "token_env",
        Any,
        "the variable that gets the attempt's token (never a key)",
    ),
    rule(T::Agent, "memory", Any, "admission only"),
    // [mcp.NAME]
    rule(
        T::Mcp,
        "command",
        Trust,
        "runs this program in tasks and shows the directory it is installed in to them",
    ),
    rule(T::Mcp, "env", Data, "values for the server, in its sandbox"),
    // [executor]
    rule(
        T::Executor,
        "kind",
        AtMost(LocalExecutor),
        "sends tasks and the repository to a cluster, outside this machine's sandbox",
    ),
    rule(
        T::Executor,
        "repo",
        Trust,
        "makes swarm create or push to this repository",
    ),
    rule(
        T::Executor,
        "partition",
        Trust,
        "spends a cluster allocation",
    ),
    rule(T::Executor, "account", Trust, "spends a cluster allocation"),
    rule(T::Executor, "qos", Trust, "spends a cluster allocation"),
    rule(
        T::Executor,
        "time_limit",
        Any,
        "shapes jobs of a trusted cluster",
    ),
    rule(
        T::Executor,
        "cpus_per_task",
        Any,
        "shapes jobs of a trusted cluster",
    ),
    rule(T::Executor, "mem", Any, "shapes jobs of a trusted cluster"),
    rule(
        T::Executor,
        "extra_args",
        Trust,
        "passes these arguments to sbatch",
    ),
    rule(
        T::Executor,
        "swarm",
        Trust,
        "runs this program on the cluster's nodes",
    ),
    rule(
        T::Executor,
        "scratch",
        Trust,
        "makes jobs write in this directory of the nodes",
    ),
    rule(
        T::Executor,
        "cache_dir",
        Trust,
        "makes jobs keep and reuse setups in this directory of the nodes",
    ),
    rule(
        T::Executor,
        "egress",
        Trust,
        "sends the nodes' allowed connections through this machine",
    ),
    rule(
        T::Executor,
        "poll_interval",
        Any,
        "shapes jobs of a trusted cluster",
    ),
    rule(
        T::Executor,
        "max_jobs",
        Any,
        "shapes jobs of a trusted cluster",
    ),
    rule(
        T::Executor,
        "tasks_per_job",
        Any,
        "shapes jobs of a trusted cluster",
    ),
    rule(
        T::Executor,
        "pack_under",
        Any,
        "shapes jobs of a trusted cluster",
    ),
];

/// The rule of `key` in `table`, if it has one.
pub fn plan_rule(table: Table, key: &str) -> Option<&'static KeyRule> {
    PLAN.iter().find(|r| r.table == table && r.key == key)
}

/// How a key of a `[[task]]` table is treated in a subtask request or a
/// replan's fix (`plan::ceiling` applies it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subtask {
    /// Left out, the child gets its parent's value; given, it may not be
    /// more than the parent's (refused otherwise).
    Narrows,
    /// The child's own business: it changes what the child does, not
    /// what it may reach; it runs inside the confinement it inherits.
    Free,
    /// Not for subtasks: refused whenever it is given.
    Refused,
}

/// One task key's rule for subtasks, with the reason shown in the
/// manual's table (book/src/sandbox.md).
#[derive(Debug, Clone, Copy)]
pub struct SubtaskRule {
    pub key: &'static str,
    pub rule: Subtask,
    pub why: &'static str,
}

const fn sub(key: &'static str, rule: Subtask, why: &'static str) -> SubtaskRule {
    SubtaskRule { key, rule, why }
}

/// The rule of every `[[task]]` key for a subtask request or a replan's
/// fix (in the order of the manual's table). What is not a task key
/// cannot be asked for at all: a request holds `[[task]]` tables only.
pub const SUBTASK: &[SubtaskRule] = &[
    sub(
        "network",
        Subtask::Narrows,
        "`none` < a list of hosts < `full`: a child's list only holds hosts and ports its parent's allows; a child of a task without network has none",
    ),
    sub(
        "paths",
        Subtask::Narrows,
        "inside the parent's `paths` and `creates`; left out, the parent's",
    ),
    sub(
        "creates",
        Subtask::Narrows,
        "inside the parent's `paths` and `creates`; left out, the parent's",
    ),
    sub(
        "isolation",
        Subtask::Narrows,
        "`readonly` < `worktree`: a child of a read-only task writes nothing",
    ),
    sub(
        "memory",
        Subtask::Narrows,
        "at most the parent's (swarm's default when the parent sets none)",
    ),
    sub(
        "processes",
        Subtask::Narrows,
        "at most the parent's (swarm's default when the parent sets none)",
    ),
    sub(
        "timeout",
        Subtask::Narrows,
        "at most the parent's; a subtree also ends by its parent's deadline (the parent's timeout from the start of the attempt that asked)",
    ),
    sub("retries", Subtask::Narrows, "at most the parent's"),
    sub(
        "stall_after",
        Subtask::Free,
        "how long the child may look hung before it is ended; its timeout still narrows",
    ),
    sub("conflict_reruns", Subtask::Narrows, "at most the parent's"),
    sub(
        "max_output",
        Subtask::Narrows,
        "at most the parent's: what the coordinator keeps of its output",
    ),
    sub(
        "max_file_size",
        Subtask::Narrows,
        "at most the parent's: what the coordinator commits of it",
    ),
    sub(
        "fuel",
        Subtask::Narrows,
        "at most a WASM parent's fuel; free under another kind of parent (its timeout bounds it)",
    ),
    sub(
        "max_turns",
        Subtask::Narrows,
        "at most an agent parent's; under another parent, what the plan's [defaults] give",
    ),
    sub(
        "budget",
        Subtask::Narrows,
        "at most an agent parent's (whose budget covers its whole subtree); under another parent, the plan's [defaults]",
    ),
    sub(
        "mcp",
        Subtask::Narrows,
        "some of an agent parent's own servers (programs the person running swarm chose, started in the child's own sandbox); left out, the parent's; a request cannot declare servers",
    ),
    sub(
        "wasm",
        Subtask::Narrows,
        "a module the plan's own tasks run: a request cannot make the coordinator read another file of the host",
    ),
    sub(
        "agent",
        Subtask::Free,
        "one of the agents the plan declares in [agents] or its own tasks use (programs the person running it chose); a request cannot declare agents. Every agent runs in the sandbox the child inherits; a CLI's one TCP port leads to the gateway only",
    ),
    sub(
        "output_schema",
        Subtask::Free,
        "what the child's final answer must look like; inline only: a request cannot make the coordinator read a file",
    ),
    sub(
        "model",
        Subtask::Free,
        "one of the plan's own [models] (endpoints and keys the person running it chose); a request cannot declare models",
    ),
    sub(
        "id",
        Subtask::Free,
        "becomes `<parent>/<id>`, unique in the run by construction",
    ),
    sub("deps", Subtask::Free, "siblings only"),
    sub(
        "setup",
        Subtask::Free,
        "runs or skips the plan's own `[setup]`, in the child's own sandbox",
    ),
    sub(
        "warm",
        Subtask::Narrows,
        "`false` only: a subtask's id is a task's choice, so its worktree is never kept for a later run",
    ),
    sub(
        "run",
        Subtask::Free,
        "what it does, inside the confinement it inherits",
    ),
    sub(
        "prompt",
        Subtask::Free,
        "what it does, inside the confinement it inherits",
    ),
    sub("args", Subtask::Free, "arguments of its WASM program"),
    sub("verify", Subtask::Free, "runs in the child's own sandbox"),
    sub(
        "env",
        Subtask::Free,
        "values for its own processes, in its own sandbox; the API-key variables are never passed on whatever it says",
    ),
    sub(
        "repair_rounds",
        Subtask::Free,
        "each round counts against `max_turns` and the budget",
    ),
    sub("temperature", Subtask::Free, "sampling only"),
    sub(
        "sparse",
        Subtask::Free,
        "checks out less; writes are still limited to its paths",
    ),
    sub(
        "allow_overlap",
        Subtask::Free,
        "a conflict is reported and nothing is lost; it grants no access",
    ),
    sub(
        "shards",
        Subtask::Refused,
        "tasks of many entries are split when the run starts",
    ),
    sub(
        "junit",
        Subtask::Free,
        "a file of its own worktree or tmp, read as hostile input",
    ),
    sub(
        "shard_grouping",
        Subtask::Refused,
        "tasks of many entries are split when the run starts",
    ),
    sub(
        "list_tests",
        Subtask::Refused,
        "tasks of many entries are split when the run starts",
    ),
    sub(
        "affected",
        Subtask::Refused,
        "tasks of many entries are split when the run starts",
    ),
    sub(
        "affects",
        Subtask::Refused,
        "tasks of many entries are split when the run starts",
    ),
    sub(
        "flaky",
        Subtask::Free,
        "whether its own tests that passed only when run again gate; they are reported flaky either way",
    ),
    sub(
        "group",
        Subtask::Free,
        "which merges the run-wide verify checks together; it grants no access",
    ),
    sub(
        "on_conflict",
        Subtask::Free,
        "a re-run runs in the child's own sandbox, its reruns at most its `conflict_reruns`",
    ),
    sub(
        "matrix",
        Subtask::Free,
        "each combination is one child, counted against `max_children` and `max_tasks`",
    ),
    sub(
        "variants",
        Subtask::Refused,
        "experiments are planned up front",
    ),
    sub(
        "score",
        Subtask::Refused,
        "experiments are planned up front",
    ),
    sub(
        "score_timeout",
        Subtask::Refused,
        "experiments are planned up front",
    ),
    sub(
        "score_repeat",
        Subtask::Refused,
        "experiments are planned up front",
    ),
    sub("pick", Subtask::Refused, "experiments are planned up front"),
];

/// The keys a request may not set at all.
pub fn refused_subtask_keys() -> impl Iterator<Item = &'static str> {
    SUBTASK
        .iter()
        .filter(|k| k.rule == Subtask::Refused)
        .map(|k| k.key)
}

/// Each table's keys, from the plan's own JSON schema (for the tests that
/// walk every key: these rules', and `plan::capabilities`').
#[cfg(test)]
pub(crate) fn schema_keys() -> std::collections::BTreeMap<Table, std::collections::BTreeSet<String>>
{
    let schema =
        serde_json::to_value(schemars::schema_for!(crate::plan::schema::PlanFile)).unwrap();
    let keys = |v: &serde_json::Value| -> std::collections::BTreeSet<String> {
        v["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no properties in {v}"))
            .keys()
            .cloned()
            .collect()
    };
    Table::ALL
        .iter()
        .map(|&t| {
            let def = match t.schema_name() {
                None => &schema,
                Some(name) => &schema["$defs"][name],
            };
            (t, keys(def))
        })
        .collect()
}

/// Fails unless `ruled(table)` (the keys a list, named `list`, has a rule
/// for) is exactly each table's keys of the schema, each once: what the
/// tests of every allow-list and rule table walk.
#[cfg(test)]
pub(crate) fn assert_every_key_ruled(list: &str, ruled: impl Fn(Table) -> Vec<&'static str>) {
    use std::collections::BTreeSet;
    for (table, keys) in schema_keys() {
        let ruled = ruled(table);
        let ruled_set: BTreeSet<String> = ruled.iter().map(|k| k.to_string()).collect();
        let missing: Vec<&String> = keys.difference(&ruled_set).collect();
        assert!(
            missing.is_empty(),
            "keys of {table:?} without a rule in {list}: {missing:?}"
        );
        let stale: Vec<&String> = ruled_set.difference(&keys).collect();
        assert!(
            stale.is_empty(),
            "rules of {table:?} in {list} for keys that do not exist: {stale:?}"
        );
        assert_eq!(
            ruled.len(),
            ruled_set.len(),
            "a key of {table:?} has two rules in {list}"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::plan::schema::PlanFile;

    /// Every key of every table of the plan and configuration schema has
    /// a rule, and every rule a key: a new key fails here until someone
    /// decides what an untrusted origin may do with it.
    #[test]
    fn every_key_of_every_table_has_a_rule() {
        assert_every_key_ruled("plan::origin::rules::PLAN", |table| {
            PLAN.iter()
                .filter(|r| r.table == table)
                .map(|r| r.key)
                .collect()
        });
    }

    /// Every table of the schema is one the rules know: a new nested
    /// table (a struct with properties) fails here until it is ruled.
    #[test]
    fn every_table_of_the_schema_is_ruled() {
        let schema = serde_json::to_value(schemars::schema_for!(PlanFile)).unwrap();
        let known: BTreeSet<&str> = Table::ALL.iter().filter_map(|t| t.schema_name()).collect();
        // The shape of a matrix, for the JSON schema only: its keys are
        // the plan's own data (`May::Data`).
        let data = ["Matrix"];
        for (name, def) in schema["$defs"].as_object().unwrap() {
            if def.get("properties").is_some() {
                assert!(
                    known.contains(name.as_str()) || data.contains(&name.as_str()),
                    "the schema's table `{name}` has no rules in plan::origin::rules"
                );
            }
        }
        // Each table a rule descends into is one whose keys are ruled.
        for r in PLAN {
            if let Nested(t) | Tables(t) | ArrayOf(t) = r.may {
                assert!(PLAN.iter().any(|k| k.table == t), "{t:?} has no rules");
            }
        }
    }

    /// Every key of a `[[task]]` table has a subtask rule, and every rule
    /// a key.
    #[test]
    fn every_task_key_has_a_subtask_rule() {
        let keys = schema_keys().remove(&Table::Task).unwrap();
        let ruled: BTreeSet<String> = SUBTASK.iter().map(|k| k.key.to_string()).collect();
        let missing: Vec<&String> = keys.difference(&ruled).collect();
        assert!(
            missing.is_empty(),
            "task keys without a rule in plan::origin::rules::SUBTASK: {missing:?}"
        );
        let stale: Vec<&String> = ruled.difference(&keys).collect();
        assert!(
            stale.is_empty(),
            "rules for keys that do not exist: {stale:?}"
        );
        assert_eq!(SUBTASK.len(), ruled.len(), "a key has two rules");
    }
}
