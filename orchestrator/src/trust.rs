//! Configuration has an origin: what the person running swarm gave it (a
//! file on the command line, their own configuration directory) is
//! trusted; a file swarm finds by itself in a repository (`swarm.toml`)
//! is not, until that person trusts that exact content.
//!
//! What an untrusted file may set is decided in one place,
//! `plan::origin` (an allow-list per key); [`weakenings`] is its list for
//! a file, [`refuse`] the error for an untrusted one. For a plan the user
//! named, the same list is what `swarm run` and `swarm validate` state
//! before anything runs. [`key_routes`] says where each model's key goes.
//!
//! [`TrustStore`] remembers trusted files outside the repository, keyed by
//! the file's absolute path and the SHA-256 of its content (as direnv's
//! `allow` does): changing one byte makes the file untrusted again. The
//! caller gives the store its directory; nothing here reads the
//! environment.

#![allow(
    clippy::disallowed_methods,
    reason = "the person's own configuration directory (`~/.config/swarm/trusted`)"
)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

pub use crate::plan::origin::{Finding as Weakening, Origin, host};
use crate::plan::{ModelConfig, PlanError, Source, origin};

/// What an untrusted `swarm.toml` that weakens something is told.
pub const UNTRUSTED_HELP: &str = "swarm found this file in the repository, and it could come from anyone who wrote to it: \
review it, then run `swarm trust` to trust this content (or pass --trust for this invocation only)";

/// Why the repository's configuration may not be used.
#[derive(Debug, thiserror::Error)]
pub enum RefusedConfig {
    /// It weakens what an untrusted file may not, and nobody trusted it.
    #[error(transparent)]
    Refused(Box<PlanError>),
    #[error(transparent)]
    Store(#[from] TrustError),
}

/// The origin of the repository's configuration `source` (read as `text`
/// from `file`): the person's if they passed `--trust` (`once`) or
/// trusted this content (in `store`, if they have one), else an untrusted
/// repository's; refused if it then sets what an untrusted file may not.
pub fn repository_origin(
    store: Option<&TrustStore>,
    file: &Path,
    text: &str,
    source: &Source,
    once: bool,
) -> Result<Origin, RefusedConfig> {
    if once {
        return Ok(Origin::Person);
    }
    if let Some(store) = store
        && store.is_trusted(file, text.as_bytes())?
    {
        return Ok(Origin::Person);
    }
    match refuse(source, &weakenings(source), UNTRUSTED_HELP) {
        Some(error) => Err(RefusedConfig::Refused(Box::new(error))),
        None => Ok(Origin::Repository),
    }
}

/// The keys of the configuration or plan `source` that an untrusted
/// origin may not set as they are: they weaken confinement, choose where a
/// key or a call goes, or read a file outside the repository. In file
/// order.
pub fn weakenings(source: &Source) -> Vec<Weakening> {
    origin::findings(source)
}

/// The error for an untrusted repository configuration `source` that has
/// the weakenings `found` (`None` if it has none): each one at its line,
/// with `help` (how to trust the file).
pub fn refuse(source: &Source, found: &[Weakening], help: &str) -> Option<PlanError> {
    origin::refuse(source, Origin::Repository, found, help)
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
