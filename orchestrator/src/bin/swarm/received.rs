//! Plans received from an MCP client (`swarm_orchestrator::received`),
//! their errors as the text `swarm mcp` answers with.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use swarm_orchestrator::received;

/// A plan as received: the library's, whose errors are text.
#[derive(Debug, Clone)]
pub(crate) struct Received(received::Received);

impl Received {
    pub(crate) fn from_path(root: &Path, path: &str) -> Result<Self, String> {
        received::Received::from_path(root, path)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    pub(crate) fn from_text(text: String) -> Result<Self, String> {
        received::Received::from_text(text)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    pub(crate) fn store(&self, root: &Path) -> Result<PathBuf, String> {
        self.0.store(root).map_err(|e| e.to_string())
    }
}

impl Deref for Received {
    type Target = received::Received;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Received {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
