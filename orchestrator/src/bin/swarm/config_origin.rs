//! The origin of configuration: where the user's own
//! configuration directory and trust records are, whether the
//! repository's `swarm.toml` may weaken anything, and the lines `swarm
//! run` and `swarm validate` print about what a plan weakens and where
//! its model keys go. The rules are `swarm_orchestrator::trust`'s.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::plan;
use swarm_orchestrator::trust::{self, RefusedConfig, TrustStore};
/// The lines about what a plan weakens and where its keys go.
pub(crate) use swarm_orchestrator::view::trust::{key_lines, weakening_lines};

use crate::failure::Failure;

/// The user's configuration directory: `$XDG_CONFIG_HOME/swarm`, else
/// `~/.config/swarm`.
pub(crate) fn config_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    match (var("XDG_CONFIG_HOME"), var("HOME")) {
        (Some(config), _) => Some(config.join("swarm")),
        (None, Some(home)) => Some(home.join(".config").join("swarm")),
        (None, None) => None,
    }
}

/// Where trusted configurations are remembered.
pub(crate) fn store() -> Option<TrustStore> {
    config_dir().map(|dir| TrustStore::new(dir.join("trusted")))
}

/// The repository's own configuration file, by the absolute path its
/// trust is recorded under.
pub(crate) fn repository_config(repo: &Repo) -> PathBuf {
    std::fs::canonicalize(&repo.workdir)
        .unwrap_or_else(|_| repo.workdir.clone())
        .join(crate::common::CONFIG_FILE)
}

/// Refuses the repository's configuration `template` (read as `text`
/// from `file`) if it sets what an untrusted file may not and the user
/// has not trusted this content, nor passed `--trust` (`once`). Its
/// origin otherwise: the person's if they trusted it, else an untrusted
/// repository's (it sets nothing it may not).
pub(crate) fn check_repository_config(
    file: &Path,
    text: &str,
    template: &plan::Template,
    once: bool,
) -> Result<trust::Origin, Failure> {
    let found = trust::weakenings(&template.source).len();
    if once && found > 0 {
        eprintln!(
            "note: --trust: {} applies as it is for this invocation, {found} setting{} beyond swarm's defaults included",
            template.source.name,
            if found == 1 { "" } else { "s" }
        );
    }
    let store = if once { None } else { store() };
    trust::repository_origin(store.as_ref(), file, text, &template.source, once).map_err(
        |e| match e {
            RefusedConfig::Refused(error) => Failure::Plan(error),
            RefusedConfig::Store(e) => Failure::Internal(anyhow!(e)),
        },
    )
}
