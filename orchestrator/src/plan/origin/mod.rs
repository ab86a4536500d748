//! Everything swarm is told has an origin, and what an origin may set is
//! decided here, by allow-lists ([`rules`]).
//!
//! The person running swarm (the command line, their own configuration
//! directory, a plan they name, a file they pass) may set anything: swarm
//! says plainly what widens confinement ([`findings`] lists it for
//! `swarm validate` and `swarm run`), and does it. Everything else is
//! untrusted until the person says otherwise:
//!
//! - a repository's `swarm.toml`, until `swarm trust` (or `--trust`), and a
//!   plan that arrives over MCP: each key of each table may hold only what
//!   [`rules::PLAN`] allows ([`findings`] walks the file as written, so a
//!   key without a rule is refused too, never waved through); the file
//!   names it holds are read only as files git tracks at the run's base,
//!   from the commit's tree, never from the working tree, `.git/` or
//!   `.swarm/` ([`files::Files::Repository`]);
//! - a plan a model writes (`swarm plan`): the model's answer has a fixed
//!   shape whose every key is one [`rules::PLAN`] lets any origin set (a
//!   test in `planner` holds it to that); the rest of the plan is the
//!   configuration's, of that configuration's origin;
//! - a subtask request and a replan's fix: each key as
//!   [`rules::SUBTASK`] says, under its parent's ceiling (`plan::ceiling`);
//! - files found in the repository or left by a task (cassettes, schemas,
//!   plans, requests): opened relative to a directory without following a
//!   link, regular files only, size-capped (`crate::untrusted`).

pub mod files;
pub mod rules;

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::error::{PlanError, PlanErrorKind, Source};
use rules::{Bound, May, Table};

/// Where a plan or a configuration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The person running swarm: a plan they name, `--config`, their own
    /// configuration directory, a repository file they trusted.
    Person,
    /// A repository's `swarm.toml` the person has not trusted.
    Repository,
    /// A plan an MCP client sent (or named) to `swarm mcp`.
    Mcp,
}

impl Origin {
    /// Whether the origin may set only what [`rules::PLAN`] allows.
    pub fn is_untrusted(self) -> bool {
        self != Origin::Person
    }

    /// The name the command line and the journal use.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Person => "person",
            Origin::Repository => "repository",
            Origin::Mcp => "mcp",
        }
    }

    /// The origin named `name` (as [`Origin::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        [Origin::Person, Origin::Repository, Origin::Mcp]
            .into_iter()
            .find(|o| o.as_str() == name)
    }

    /// "in a file you have not trusted", for a refusal's label.
    fn label(self) -> &'static str {
        match self {
            Origin::Person => "here",
            Origin::Repository => "in a file you have not trusted",
            Origin::Mcp => "in a plan that came over MCP",
        }
    }
}

/// One key that an untrusted origin may not set as it is: it widens what
/// tasks may do, sends a key or a call elsewhere than the provider's own
/// endpoint, reads a file outside the repository, or has no rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where it is: `[swarm]`, `[defaults]`, `task `build``, `[models.x]`.
    pub table: String,
    pub key: String,
    /// The value as written (the first line of it).
    pub value: String,
    /// What it grants, in a few words.
    pub effect: String,
    pub span: Range<usize>,
}

impl Finding {
    /// `key = value` as written.
    pub fn setting(&self) -> String {
        format!("{} = {}", self.key, self.value)
    }
}

/// Every key of `source` (a plan or configuration) that an untrusted
/// origin may not set as it is, in file order: decided on the text alone,
/// before anything it names is read or reached. For the person's own
/// files, the same list is what `swarm validate` and `swarm run` say the
/// plan grants beyond swarm's defaults.
pub fn findings(source: &Source) -> Vec<Finding> {
    // A file that does not read is refused by the plan's checks.
    let Ok(document) = DeTable::parse(&source.text) else {
        return Vec::new();
    };
    let mut walk = Walk {
        source,
        found: Vec::new(),
    };
    each_key(Table::Plan, document.get_ref(), "the file", &mut |at| {
        walk.key(at)
    });
    walk.found.sort_by_key(|f| f.span.start);
    walk.found
}

/// The error for an untrusted `source` from `origin` that has the
/// findings `found` (`None` if it has none): each one at its line, with
/// `help` (how to trust the file, or to run it yourself).
pub fn refuse(source: &Source, origin: Origin, found: &[Finding], help: &str) -> Option<PlanError> {
    let errors = found
        .iter()
        .map(|f| {
            source
                .error(
                    PlanErrorKind::Unsupported,
                    format!("{} `{}` needs trust: it {}", f.table, f.key, f.effect),
                    Some(f.span.clone()),
                    origin.label(),
                )
                .with_help(help)
        })
        .collect();
    PlanError::bundle(errors)
}

/// Refuses `plan`, from an untrusted origin, if it sets anything that
/// origin may not ([`findings`]); a plan of the person's passes.
pub fn admit(plan: &super::Plan, help: &str) -> Result<(), Box<PlanError>> {
    if !plan.origin.is_untrusted() {
        return Ok(());
    }
    match refuse(&plan.source, plan.origin, &findings(&plan.source), help) {
        Some(error) => Err(Box::new(error)),
        None => Ok(()),
    }
}

/// What a run's journal records of where `plan` came from (`None`: the
/// person), so that a resumed run is held to the same rules.
pub fn recorded(plan: &super::Plan) -> Option<swarm_protocol::PlanOrigin> {
    if !plan.origin.is_untrusted() {
        return None;
    }
    let files_dir = match &plan.files {
        files::Files::Repository { dir, .. } => dir.clone(),
        files::Files::Beside(..) => String::new(),
    };
    Some(swarm_protocol::PlanOrigin {
        origin: plan.origin.as_str().to_string(),
        files_dir,
    })
}

/// One key of a file as written, as [`each_key`] meets it.
pub struct KeyAt<'k, 'v> {
    /// The kind of table it is in.
    pub kind: Table,
    /// How that table is shown: `[swarm]`, `[defaults]`, `task `build``,
    /// `[models.x]`.
    pub shown: &'k str,
    pub key: &'k str,
    pub value: &'k toml::Spanned<DeValue<'v>>,
    /// The table it is in (a rule may read a key's neighbours).
    pub table: &'k DeTable<'v>,
}

/// Calls `f` with each key of `table` (a table of kind `kind`, shown as
/// `shown`) in file order, and with the keys of the tables its rules nest
/// into (`Nested`, `Tables`, `ArrayOf`) after the key that holds them: the
/// one walk of a file as written, for the origin's allow-list and for what
/// a plan asks of its executor (`plan::capabilities`).
pub fn each_key<'v>(
    kind: Table,
    table: &DeTable<'v>,
    shown: &str,
    f: &mut dyn FnMut(KeyAt<'_, 'v>),
) {
    for (key, value) in table.iter() {
        let key_name: &str = key.get_ref();
        f(KeyAt {
            kind,
            shown,
            key: key_name,
            value,
            table,
        });
        let Some(rule) = rules::plan_rule(kind, key_name) else {
            continue;
        };
        match (rule.may, value.get_ref()) {
            (May::Nested(inner), DeValue::Table(t)) => {
                let shown = match kind {
                    Table::Plan => format!("[{key_name}]"),
                    _ => format!("{shown} {key_name}"),
                };
                each_key(inner, t, &shown, f);
            }
            (May::Tables(inner), DeValue::Table(t)) => {
                for (sub, sub_value) in t.iter() {
                    let sub: &str = sub.get_ref();
                    if let DeValue::Table(st) = sub_value.get_ref() {
                        each_key(inner, st, &format!("[{key_name}.{sub}]"), f);
                    }
                }
            }
            (May::ArrayOf(inner), DeValue::Array(items)) => {
                for item in items.iter() {
                    if let DeValue::Table(t) = item.get_ref() {
                        let id = t
                            .get("id")
                            .and_then(|v| v.get_ref().as_str())
                            .unwrap_or("?");
                        let id = crate::escape::line(id);
                        each_key(inner, t, &format!("task `{id}`"), f);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The state of one walk over a file.
struct Walk<'a> {
    source: &'a Source,
    found: Vec<Finding>,
}

impl Walk<'_> {
    /// One key by its rule (the tables it holds are walked by
    /// [`each_key`]).
    fn key(&mut self, at: KeyAt<'_, '_>) {
        let KeyAt {
            shown,
            key: key_name,
            value,
            table,
            kind,
        } = at;
        let span = value.span();
        let Some(rule) = rules::plan_rule(kind, key_name) else {
            // No rule: refused until someone decides it is safe.
            self.add(
                shown,
                key_name,
                span,
                "is a key swarm has no rule for (so it is not allowed without trust)".into(),
            );
            return;
        };
        let value = value.get_ref();
        match rule.may {
            May::Any | May::Data | May::Nested(_) | May::Tables(_) | May::ArrayOf(_) => {}
            May::Trust => self.add(shown, key_name, span, rule.why.into()),
            May::AtMost(bound) => {
                if let Some(effect) = beyond(bound, value, table) {
                    self.add(shown, key_name, span, effect);
                }
            }
            May::TrackedFile => {
                if let Some(file) = value.as_str()
                    && let Err(why) = files::relative_name(file)
                {
                    self.add(
                        shown,
                        key_name,
                        span,
                        format!(
                            "names a file outside the repository ({why}), and {}",
                            rule.why
                        ),
                    );
                }
            }
        }
    }

    fn add(&mut self, table: &str, key: &str, span: Range<usize>, effect: String) {
        // The value's first line, as written.
        let value = self
            .source
            .text
            .get(span.clone())
            .and_then(|v| v.lines().next())
            .unwrap_or_default();
        let value = match value.chars().count() > 60 {
            true => format!("{}...", value.chars().take(60).collect::<String>()),
            false => value.to_string(),
        };
        self.found.push(Finding {
            table: table.to_string(),
            key: key.to_string(),
            value: crate::escape::line(&value).into_owned(),
            effect,
            span,
        });
    }
}

/// What `value` (in `table`) grants beyond `bound`, if anything.
fn beyond(bound: Bound, value: &DeValue<'_>, table: &DeTable<'_>) -> Option<String> {
    {
        let limits = swarm_sandbox::Limits::default();
        let size_above = |key: &str, default: u64| {
            let size = value.as_str()?.trim().parse::<bytesize::ByteSize>().ok()?;
            (size.as_u64() > default).then(|| {
                format!(
                    "raises {key} above swarm's default of {}",
                    bytesize::ByteSize::b(default)
                )
            })
        };
        match bound {
            Bound::Sandboxed => (value.as_str() != Some("landlock"))
                .then(|| "runs tasks unconfined, with your permissions and files".into()),
            Bound::NoReadPaths => value
                .as_array()
                .is_none_or(|a| !a.is_empty())
                .then(|| "lets sandboxed tasks read these paths".into()),
            // A list is less than `full` but more than swarm's `none`: it
            // reaches hosts of the file's choosing (a place to send the
            // repository to), so it needs trust like `full` does.
            Bound::NoNetwork => match value {
                DeValue::Array(_) => {
                    Some("lets tasks reach the hosts it lists, through swarm's egress proxy".into())
                }
                _ => (value.as_str() != Some("none"))
                    .then(|| "gives tasks the host's network".into()),
            },
            Bound::Memory => size_above("memory", limits.address_space),
            Bound::MaxOutput => size_above("max_output", super::DEFAULT_MAX_OUTPUT),
            Bound::MaxFileSize => size_above("max_file_size", super::DEFAULT_MAX_FILE_SIZE),
            Bound::Processes => {
                let n = value.as_integer()?;
                let n = u64::from_str_radix(&n.as_str().replace('_', ""), n.radix()).ok()?;
                (n > limits.processes).then(|| {
                    format!(
                        "raises processes above swarm's default of {}",
                        limits.processes
                    )
                })
            }
            Bound::LocalExecutor => (value.as_str() != Some("local")).then(|| {
                "sends tasks and the repository to a cluster, outside this machine's sandbox".into()
            }),
            Bound::ProviderEndpoint => {
                let defaults = provider_defaults(table);
                let url = value.as_str().unwrap_or_default();
                if url.trim_end_matches('/') == defaults.base_url.trim_end_matches('/') {
                    return None;
                }
                let host = host(url);
                Some(match key_var(table) {
                    Some(var) => format!("sends ${var} to {host}"),
                    None => format!(
                        "makes the coordinator send model calls to {host}, also for tasks without network"
                    ),
                })
            }
            Bound::ProviderKey => {
                let defaults = provider_defaults(table);
                let var = key_var(table)?;
                (var != defaults.api_key_env).then(|| {
                    format!(
                        "reads ${var} as the API key (the provider's own is ${})",
                        defaults.api_key_env
                    )
                })
            }
        }
    }
}

/// The defaults of the provider a `[models.NAME]` table names (Anthropic's
/// for one that names none it knows: its endpoint then matches neither).
fn provider_defaults(table: &DeTable<'_>) -> crate::gateway::provider::Defaults {
    let kind = match table.get("provider").and_then(|p| p.get_ref().as_str()) {
        Some("openai") => crate::gateway::config::Provider::Openai,
        _ => crate::gateway::config::Provider::Anthropic,
    };
    crate::gateway::provider::for_kind(kind).defaults()
}

/// The variable a `[models.NAME]` table reads its key from (`None`: no
/// key, `api_key_env = ""`).
fn key_var(table: &DeTable<'_>) -> Option<String> {
    match table.get("api_key_env").map(|v| v.get_ref().as_str()) {
        Some(Some("")) => None,
        Some(Some(var)) => Some(var.to_string()),
        _ => Some(provider_defaults(table).api_key_env.to_string()),
    }
}

/// The host (and port) of `url`.
pub fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials in the URL are not the host, and not for printing.
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

#[cfg(test)]
mod tests;
