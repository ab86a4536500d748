//! Git work off the async threads: the one way the run's tasks, the
//! dispatcher, the run-wide verify and a remote node hand a git job to
//! tokio's blocking pool, its panic (or cancellation) a [`GitError`] like
//! any other failure of it.

use crate::git::GitError;

/// Runs git work `f` on the blocking pool.
pub(in crate::run) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, GitError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(GitError::Cli {
            action: "run a git job".into(),
            message: e.to_string(),
        })
    })
}
