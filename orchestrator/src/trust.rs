//! Configuration has an origin: what the person running swarm gave it (a
//! file on the command line, their own configuration directory) is
//! trusted; a file swarm finds by itself in a repository (`swarm.toml`)
//! is not, until that person trusts that exact content.
//!
//! An untrusted configuration may narrow what tasks are allowed, never
//! widen it, and may not choose where an API key is sent or which
//! variable is read as one. [`weakenings`] lists the keys of a plan or a
//! planner configuration that would do either, each at its place in the
//! file: for an untrusted file each one is an error ([`refuse`]); for a
//! plan the user named, they are what `swarm run` and `swarm validate`
//! state before anything runs. [`key_routes`] says where each model's key
//! goes.
//!
//! [`TrustStore`] remembers trusted files outside the repository, keyed by
//! the file's absolute path and the SHA-256 of its content (as direnv's
//! `allow` does): changing one byte makes the file untrusted again. The
//! caller gives the store its directory; nothing here reads the
//! environment.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use toml::Spanned;

use crate::plan::{
    DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_OUTPUT, ModelConfig, PlanError, PlanErrorKind, Source,
};

/// One key that widens what tasks may do, or sends a key elsewhere than
/// the provider's own endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weakening {
    /// Where it is: `[swarm]`, `[defaults]`, `task `build``, `[models.x]`.
    pub table: String,
    pub key: &'static str,
    /// The value as written (the first line of it).
    pub value: String,
    /// What it grants, in a few words.
    pub effect: String,
    pub span: Range<usize>,
}

impl Weakening {
    /// `key = value` as written.
    pub fn setting(&self) -> String {
        format!("{} = {}", self.key, self.value)
    }
}

// Only what trust needs, each with its place; the plan's own reader has
// already checked the file, and ignores nothing of it.
#[derive(Debug, Default, Deserialize)]
struct View {
    #[serde(default)]
    swarm: SwarmView,
    #[serde(default)]
    defaults: TaskView,
    #[serde(default)]
    task: Vec<TaskView>,
    #[serde(default)]
    models: BTreeMap<String, ModelView>,
    #[serde(default)]
    executor: ExecutorView,
    #[serde(default)]
    mcp: BTreeMap<String, McpView>,
}

#[derive(Debug, Default, Deserialize)]
struct McpView {
    command: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
struct SwarmView {
    sandbox: Option<Spanned<String>>,
    read_paths: Option<Spanned<Vec<toml::Value>>>,
    worktrees: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct TaskView {
    id: Option<String>,
    network: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
    processes: Option<Spanned<u64>>,
    max_output: Option<Spanned<String>>,
    max_file_size: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct ModelView {
    base_url: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct ExecutorView {
    kind: Option<Spanned<String>>,
}

/// The keys of the configuration or plan `source` (already checked, its
/// valid models `models`) that weaken confinement or choose where a key
/// goes, in file order. `toolchains` is not among them: it can only narrow
/// the default (every toolchain found).
pub fn weakenings(source: &Source, models: &BTreeMap<String, ModelConfig>) -> Vec<Weakening> {
    // A file that does not read is refused by the plan's checks already.
    let view: View = toml::from_str(&source.text).unwrap_or_default();
    let mut found = Vec::new();
    let mut add = |table: &str, key: &'static str, span: Range<usize>, effect: String| {
        let value = source
            .text
            .get(span.clone())
            .and_then(|v| v.lines().next())
            .unwrap_or_default();
        let value = match value.chars().count() > 60 {
            true => format!("{}...", value.chars().take(60).collect::<String>()),
            false => value.to_string(),
        };
        found.push(Weakening {
            table: table.to_string(),
            key,
            value: crate::escape::line(&value).into_owned(),
            effect,
            span,
        });
    };
    let swarm = &view.swarm;
    if let Some(s) = swarm.sandbox.as_ref().filter(|s| s.get_ref() == "none") {
        add(
            "[swarm]",
            "sandbox",
            s.span(),
            "runs tasks unconfined, with your permissions and files".into(),
        );
    }
    if let Some(p) = swarm
        .read_paths
        .as_ref()
        .filter(|p| !p.get_ref().is_empty())
    {
        add(
            "[swarm]",
            "read_paths",
            p.span(),
            "lets sandboxed tasks read these paths".into(),
        );
    }
    if let Some(w) = &swarm.worktrees {
        add(
            "[swarm]",
            "worktrees",
            w.span(),
            "makes swarm write worktrees in this directory".into(),
        );
    }
    task_weakenings(&view.defaults, "[defaults]", &mut add);
    for task in &view.task {
        let table = format!("task `{}`", task.id.as_deref().unwrap_or("?"));
        task_weakenings(task, &table, &mut add);
    }
    for (name, model) in models {
        let table = format!("[models.{name}]");
        let defaults = crate::gateway::provider::for_kind(model.provider).defaults();
        let written = view.models.get(name);
        let Some(var) = &model.api_key_env else {
            continue;
        };
        if model.base_url != defaults.base_url
            && let Some(url) = written.and_then(|w| w.base_url.as_ref())
        {
            add(
                &table,
                "base_url",
                url.span(),
                format!("sends ${var} to {}", host(&model.base_url)),
            );
        }
        if var != defaults.api_key_env
            && let Some(env) = written.and_then(|w| w.api_key_env.as_ref())
        {
            add(
                &table,
                "api_key_env",
                env.span(),
                format!(
                    "reads ${var} as the API key (the provider's own is ${})",
                    defaults.api_key_env
                ),
            );
        }
    }
    if let Some(kind) = view
        .executor
        .kind
        .as_ref()
        .filter(|k| k.get_ref() != "local")
    {
        add(
            "[executor]",
            "kind",
            kind.span(),
            "sends tasks and the repository to a cluster, outside this machine's sandbox".into(),
        );
    }
    // The server runs in the task's sandbox like `run`; what widens is
    // that the directory its program is installed in is shown to it.
    for (name, server) in &view.mcp {
        if let Some(command) = &server.command {
            add(
                &format!("[mcp.{name}]"),
                "command",
                command.span(),
                "shows where its program is installed to the tasks that use it, read-only".into(),
            );
        }
    }
    found.sort_by_key(|w| w.span.start);
    found
}

/// The limits of `task` (or `[defaults]`) above swarm's own defaults, and
/// its network.
fn task_weakenings(
    task: &TaskView,
    table: &str,
    add: &mut impl FnMut(&str, &'static str, Range<usize>, String),
) {
    if let Some(n) = task.network.as_ref().filter(|n| n.get_ref() == "full") {
        add(
            table,
            "network",
            n.span(),
            "gives tasks the host's network".into(),
        );
    }
    let limits = swarm_sandbox::Limits::default();
    let sizes = [
        ("memory", &task.memory, limits.address_space),
        ("max_output", &task.max_output, DEFAULT_MAX_OUTPUT),
        ("max_file_size", &task.max_file_size, DEFAULT_MAX_FILE_SIZE),
    ];
    for (key, value, default) in sizes {
        let Some(value) = value else { continue };
        let Ok(size) = value.get_ref().trim().parse::<bytesize::ByteSize>() else {
            continue;
        };
        if size.as_u64() > default {
            add(
                table,
                key,
                value.span(),
                format!(
                    "raises {key} above swarm's default of {}",
                    bytesize::ByteSize::b(default)
                ),
            );
        }
    }
    if let Some(p) = task
        .processes
        .as_ref()
        .filter(|p| *p.get_ref() > limits.processes)
    {
        add(
            table,
            "processes",
            p.span(),
            format!(
                "raises processes above swarm's default of {}",
                limits.processes
            ),
        );
    }
}

/// The error for an untrusted configuration `source` that has the
/// weakenings `found` (`None` if it has none): each one at its line, with
/// `help` (how to trust the file).
pub fn refuse(source: &Source, found: &[Weakening], help: &str) -> Option<PlanError> {
    let errors = found
        .iter()
        .map(|w| {
            source
                .error(
                    PlanErrorKind::Unsupported,
                    format!("{} `{}` needs trust: it {}", w.table, w.key, w.effect),
                    Some(w.span.clone()),
                    "in a file you have not trusted",
                )
                .with_help(help)
        })
        .collect();
    PlanError::bundle(errors)
}

/// Where the API key of a model goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRoute {
    pub model: String,
    /// The variable the key is read from.
    pub var: String,
    /// The endpoint's host (and port, if given).
    pub host: String,
    /// Whether the endpoint and the variable are the provider's own.
    pub own: bool,
}

/// Where each model of `models` that sends a key sends it.
pub fn key_routes(models: &BTreeMap<String, ModelConfig>) -> Vec<KeyRoute> {
    models
        .values()
        .filter_map(|m| {
            let var = m.api_key_env.clone()?;
            let defaults = crate::gateway::provider::for_kind(m.provider).defaults();
            Some(KeyRoute {
                model: m.name.clone(),
                own: m.base_url == defaults.base_url && var == defaults.api_key_env,
                var,
                host: host(&m.base_url).to_string(),
            })
        })
        .collect()
}

/// The host (and port) of `url`.
pub fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials in the URL are not the host, and not for printing.
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// The SHA-256 of `content`, in hex: what a trust record remembers.
pub fn content_hash(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A failure of the trust store.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("read the trust record {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write the trust record {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("remove the trust record {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("trust {path}: the path is not absolute")]
    Relative { path: PathBuf },
}

/// The configurations a user trusts: one record per file, in a directory
/// of theirs (outside any repository).
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record of the file at `path` (absolute): named by the hash of
    /// the path, so any path fits in a file name.
    fn record(&self, path: &Path) -> Result<PathBuf, TrustError> {
        if !path.is_absolute() {
            return Err(TrustError::Relative {
                path: path.to_path_buf(),
            });
        }
        Ok(self
            .dir
            .join(content_hash(path.as_os_str().as_encoded_bytes())))
    }

    fn record_text(path: &Path, content: &[u8]) -> String {
        format!(
            "sha256 {}\npath {}\n",
            content_hash(content),
            path.display()
        )
    }

    /// Whether the file at `path` is trusted with exactly `content`.
    pub fn is_trusted(&self, path: &Path, content: &[u8]) -> Result<bool, TrustError> {
        let record = self.record(path)?;
        match std::fs::read_to_string(&record) {
            Ok(text) => Ok(text == Self::record_text(path, content)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(TrustError::Read {
                path: record,
                source,
            }),
        }
    }

    /// Trusts the file at `path` with `content` (and no other content of
    /// it, from now on).
    pub fn trust(&self, path: &Path, content: &[u8]) -> Result<(), TrustError> {
        let record = self.record(path)?;
        let write = |source| TrustError::Write {
            path: record.clone(),
            source,
        };
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(write)?;
        }
        // Written beside it and renamed: a record is whole or absent.
        let partial = record.with_extension(format!("partial-{}", std::process::id()));
        let written = std::fs::File::create(&partial)
            .and_then(|mut f| {
                f.write_all(Self::record_text(path, content).as_bytes())?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&partial, &record));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(write(e));
        }
        Ok(())
    }

    /// Forgets the file at `path`; false if it was not trusted.
    pub fn revoke(&self, path: &Path) -> Result<bool, TrustError> {
        let record = self.record(path)?;
        match std::fs::remove_file(&record) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(TrustError::Remove {
                path: record,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<Weakening> {
        let path = Path::new("swarm.toml");
        let template =
            crate::plan::parse_template(path, text.to_string()).unwrap_or_else(|e| panic!("{e:?}"));
        weakenings(&template.source, &template.models)
    }

    fn keys(text: &str) -> Vec<String> {
        found(text)
            .iter()
            .map(|w| format!("{} {}", w.table, w.key))
            .collect()
    }

    #[test]
    fn what_narrows_or_keeps_the_defaults_needs_no_trust() {
        let text = r#"
[swarm]
sandbox = "landlock"
concurrency = 2
toolchains = ["rust"]
read_paths = []
on_failure = "continue"

[defaults]
network = "none"
memory = "2GiB"
processes = 64
max_output = "1MiB"
max_file_size = "100MiB"
timeout = "10m"
verify = "cargo test"

[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"
api_key_env = "ANTHROPIC_API_KEY"
base_url = "https://api.anthropic.com/"

[models.gpt]
provider = "openai"
model = "gpt-4.1"

[models.local]
provider = "openai"
model = "llama"
base_url = "http://localhost:11434/v1"
api_key_env = ""

[executor]
kind = "local"
"#;
        assert_eq!(keys(text), Vec::<String>::new());
    }

    #[test]
    fn each_widening_key_is_found_at_its_place() {
        let text = r#"[swarm]
sandbox = "none"
read_paths = ["/etc"]
worktrees = "/tmp/wt"

[defaults]
network = "full"
memory = "32GiB"
processes = 5000
max_output = "1GiB"
max_file_size = "1GiB"

[models.default]
provider = "anthropic"
model = "m"
base_url = "https://evil.example"
api_key_env = "SOME_SECRET"

[models.other]
provider = "openai"
model = "m"
base_url = "https://evil.example/v1"

[executor]
kind = "slurm"
"#;
        assert_eq!(
            keys(text),
            [
                "[swarm] sandbox",
                "[swarm] read_paths",
                "[swarm] worktrees",
                "[defaults] network",
                "[defaults] memory",
                "[defaults] processes",
                "[defaults] max_output",
                "[defaults] max_file_size",
                "[models.default] base_url",
                "[models.default] api_key_env",
                "[models.other] base_url",
                "[executor] kind",
            ]
        );
        let all = found(text);
        let source = Source::new(Path::new("swarm.toml"), text.to_string());
        assert_eq!(source.line_col(all[0].span.start).0, 2);
        assert_eq!(all[0].setting(), "sandbox = \"none\"");
        assert!(
            all[8].effect.contains("$SOME_SECRET to evil.example"),
            "{:?}",
            all[8]
        );
        assert!(all[10].effect.contains("$OPENAI_API_KEY"), "{:?}", all[10]);
    }

    #[test]
    fn a_keyless_endpoint_and_the_default_key_need_no_trust() {
        let text = r#"
[models.default]
provider = "anthropic"
model = "m"
base_url = "http://127.0.0.1:9"
api_key_env = ""
"#;
        assert!(keys(text).is_empty());
        // The same endpoint with the provider's key variable sends it there.
        let keyed = text.replace("api_key_env = \"\"\n", "");
        assert_eq!(keys(&keyed), ["[models.default] base_url"]);
    }

    #[test]
    fn tasks_of_a_plan_are_looked_at_too() {
        let plan = crate::plan::parse(
            Path::new("plan.toml"),
            "[[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = \"full\"\n".into(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let all = weakenings(&plan.source, &plan.models);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].table, "task `a`");
        assert_eq!(all[0].setting(), "network = \"full\"");
    }

    #[test]
    fn refusals_point_at_each_key() {
        let text = "[swarm]\nsandbox = \"none\"\n\n[defaults]\nnetwork = \"full\"\n";
        let template = crate::plan::parse_template(Path::new("swarm.toml"), text.into())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let all = weakenings(&template.source, &template.models);
        let error = refuse(&template.source, &all, "run `swarm trust`").expect("an error");
        assert_eq!(error.count(), 2);
        assert!(
            error.message.contains("[swarm] `sandbox` needs trust"),
            "{}",
            error.message
        );
        assert_eq!(error.help.as_deref(), Some("run `swarm trust`"));
        assert!(refuse(&template.source, &[], "").is_none());
    }

    #[test]
    fn key_routes_name_the_host_and_variable() {
        let text = r#"
[models.default]
provider = "anthropic"
model = "m"

[models.evil]
provider = "anthropic"
model = "m"
base_url = "https://user:pw@evil.example:8443/x"

[models.local]
provider = "openai"
model = "m"
base_url = "http://localhost:11434/v1"
api_key_env = ""
"#;
        let template = crate::plan::parse_template(Path::new("swarm.toml"), text.into())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let routes = key_routes(&template.models);
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].host, "api.anthropic.com");
        assert!(routes[0].own);
        assert_eq!(routes[1].host, "evil.example:8443");
        assert_eq!(routes[1].var, "ANTHROPIC_API_KEY");
        assert!(!routes[1].own);
    }

    #[test]
    fn trust_is_for_one_path_and_one_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TrustStore::new(dir.path().join("trusted"));
        let file = Path::new("/repo/swarm.toml");
        assert!(!store.is_trusted(file, b"a").expect("read"));
        store.trust(file, b"a").expect("trust");
        assert!(store.is_trusted(file, b"a").expect("read"));
        assert!(
            !store.is_trusted(file, b"b").expect("read"),
            "one byte changed"
        );
        assert!(
            !store
                .is_trusted(Path::new("/other/swarm.toml"), b"a")
                .expect("read")
        );
        store.trust(file, b"b").expect("trust again");
        assert!(
            !store.is_trusted(file, b"a").expect("read"),
            "the new content replaces the old"
        );
        assert!(store.revoke(file).expect("revoke"));
        assert!(!store.is_trusted(file, b"b").expect("read"));
        assert!(!store.revoke(file).expect("revoke again"));
        assert!(matches!(
            store.trust(Path::new("swarm.toml"), b"a"),
            Err(TrustError::Relative { .. })
        ));
    }

    #[test]
    fn hashes_are_sha256() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
