//! What a plan or configuration weakens and where its model keys go, as
//! `swarm run`, `swarm validate` and `swarm trust` say it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::escape;
use crate::plan::{ModelConfig, Source};
use crate::trust::{self, Weakening};

/// `where: key = value: effect` of each weakening, `where` being
/// `file:line`.
pub fn weakening_lines(source: &Source, found: &[Weakening]) -> Vec<String> {
    found
        .iter()
        .map(|w| {
            format!(
                "{}:{}: {} {}: {}",
                escape::line(&source.name),
                source.line_col(w.span.start).0,
                w.table,
                w.setting(),
                escape::line(&w.effect)
            )
        })
        .collect()
}

/// `model `x`: $VAR -> host` for each model that sends a key.
pub fn key_lines(models: &BTreeMap<String, ModelConfig>) -> Vec<String> {
    trust::key_routes(models)
        .iter()
        .map(|r| {
            format!(
                "`{}`: ${} -> {}{}",
                escape::line(&r.model),
                escape::line(&r.var),
                escape::line(&r.host),
                if r.own {
                    ""
                } else {
                    " (not the provider's own)"
                }
            )
        })
        .collect()
}

/// What `swarm trust` says before it trusts `file` (whose text hashes to
/// `hash`, read as `source` with `models`): what it weakens, where its
/// keys go.
pub fn trusting(
    file: &Path,
    hash: &str,
    source: &Source,
    models: &BTreeMap<String, ModelConfig>,
) -> String {
    let found = trust::weakenings(source);
    let mut text = format!(
        "{} (sha256 {}):\n",
        file.display(),
        hash.get(..16).unwrap_or_default()
    );
    if found.is_empty() {
        text.push_str("  weakens nothing: swarm uses it untrusted too\n");
    }
    for line in weakening_lines(source, &found) {
        let _ = writeln!(text, "  weakens  {line}");
    }
    for line in key_lines(models) {
        let _ = writeln!(text, "  key      {line}");
    }
    text
}

/// What `swarm trust` says once it trusted a file.
pub const TRUSTED: &str = "trusted: `swarm plan` and `swarm run --goal` use it as it is now; any change to it makes it untrusted again (`swarm trust --revoke` forgets it)";
