//! What an attempt's start gives the sandbox's user, given back whatever
//! becomes of the attempt.
//!
//! As root, a sandboxed attempt's tmp and what it may change are handed
//! to the sandbox's unprivileged user (or shown to it through idmapped
//! copies, where what it makes is root's on disk and a privilege bit it
//! could set would be root's). Its end takes them back and clears such
//! bits: [`Handed::give_back`], also after a hand-over that failed half
//! way. An attempt's future can also end without reaching its end: the
//! dispatcher's set of attempts dropped on an error, the runtime shut
//! down, a panic. Then nothing walked a shown tree for bits; [`Handed`]'s
//! drop does, on a thread of its own (not the dispatcher's).
//!
//! The drop does not take a handed-over tree back: the hand-over's thread
//! and the task's processes can outlive the future (a kill is only asked
//! of the launcher), and a walk racing them would leave entries they make
//! after it the sandbox user's below a top that is swarm's again, which
//! `top_is_ours` would then trust. A tree left handed over keeps its top
//! the sandbox user's (a hand-over starts with it), and its next use hands
//! it over and takes it back whole. A shown tree's walk can race the task
//! harmlessly: the seccomp rule keeps it from setting a bit at all.
use std::path::PathBuf;

/// Entries below a path it may change that an attempt's end takes back
/// on the async thread it ran on: a task's tmp holding what set-up wrote
/// and a file or two of its own. A larger tree is a walk, taken back on a
/// blocking thread (whose hop, two thread wake-ups, was most of what a
/// sandboxed no-op task's end cost the coordinator as root).
const TAKEN_BACK_HERE: usize = 8;

/// What one attempt gives the sandbox's user, until it is given back.
#[derive(Debug)]
pub(crate) struct Handed {
    /// The task, for the warnings.
    task: String,
    /// Handed over (as root): the attempt's tmp and what it may change.
    owned: Vec<PathBuf>,
    /// The attempt's tmp, which is among `owned` when that is not empty.
    tmp: PathBuf,
    /// Shown through idmapped copies: root's on disk, walked for bits.
    shown: Vec<PathBuf>,
    /// Whether [`Handed::give_back`] ran (and the drop has nothing to do).
    given_back: bool,
}

impl Handed {
    pub(crate) fn new(
        task: String,
        owned: Vec<PathBuf>,
        tmp: PathBuf,
        shown: Vec<PathBuf>,
    ) -> Self {
        Self {
            task,
            owned,
            tmp,
            shown,
            given_back: false,
        }
    }

    /// Gives it all back at the attempt's end, off the async threads where
    /// it is a walk; a failure is warned of, not the attempt's.
    pub(crate) async fn give_back(mut self) {
        self.given_back = true;
        let owned = std::mem::take(&mut self.owned);
        let shown = std::mem::take(&mut self.shown);
        let tmp = std::mem::take(&mut self.tmp);
        // A tmp of a few entries is taken back here, the rest on a
        // blocking thread.
        let rest: Vec<PathBuf> = owned
            .into_iter()
            .filter(|path| {
                *path != tmp
                    || !matches!(
                        swarm_sandbox::ownership::take_back_within(path, TAKEN_BACK_HERE),
                        Ok(true)
                    )
            })
            .collect();
        if rest.is_empty() && shown.is_empty() {
            return;
        }
        let (task, owned, walked_shown) = (self.task.clone(), rest.clone(), shown.clone());
        let walked =
            tokio::task::spawn_blocking(move || give_back(&task, &owned, &walked_shown)).await;
        if walked.is_err() {
            // Not run (a runtime shutting down cancels it) or cut short
            // by a panic: once more here, whole.
            give_back(&self.task, &rest, &shown);
        }
    }
}

impl Drop for Handed {
    fn drop(&mut self) {
        if self.given_back || self.shown.is_empty() {
            return;
        }
        // The attempt's future went before its end: the shown trees walked
        // for bits on a thread of their own (a walk of a worktree is not
        // for the dispatcher's one thread); what was handed over stays so
        // (see the module's comment).
        let (task, shown) = (
            std::mem::take(&mut self.task),
            std::mem::take(&mut self.shown),
        );
        let walk = move || give_back(&task, &[], &shown);
        if let Err(e) = std::thread::Builder::new()
            .name("swarm-give-back".into())
            .spawn(walk)
        {
            tracing::warn!(error = %e, "failed to clear privilege bits in a task's files");
        }
    }
}

/// Takes `owned` back and clears the privilege bits in `shown`, warning
/// of what fails (each path on its own: one failure leaves no other
/// path the sandbox user's).
fn give_back(task: &str, owned: &[PathBuf], shown: &[PathBuf]) {
    for path in owned {
        if let Err(e) = swarm_sandbox::ownership::take_back(path) {
            tracing::warn!(task, error = %e, "failed to take the task's files back");
        }
    }
    for path in shown {
        if let Err(e) = swarm_sandbox::ownership::clear_privilege_bits(path) {
            tracing::warn!(task, error = %e, "failed to clear privilege bits in the task's files");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// A tree handed to the sandbox's user (its top, a directory, two
    /// files), as an attempt's start leaves it.
    fn handed_tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("a")).unwrap();
        std::fs::write(tree.join("a/file"), "x").unwrap();
        std::fs::write(tree.join("b"), "x").unwrap();
        swarm_sandbox::ownership::hand_over(&tree, swarm_sandbox::SANDBOX_IDENTITY).unwrap();
        (dir, tree)
    }

    fn ours(path: &std::path::Path) -> bool {
        std::fs::symlink_metadata(path).unwrap().uid() == nix::unistd::geteuid().as_raw()
    }

    #[tokio::test]
    async fn an_attempt_dropped_before_its_end_still_clears_the_bits_it_was_shown() {
        let shown = tempfile::tempdir().unwrap();
        let bit = shown.path().join("made");
        std::fs::write(&bit, "x").unwrap();
        std::fs::set_permissions(&bit, std::fs::Permissions::from_mode(0o6755)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let handed = Handed::new(
            "t".into(),
            vec![tmp.path().to_path_buf()],
            tmp.path().to_path_buf(),
            vec![shown.path().to_path_buf()],
        );
        // An attempt holding it, waiting on its task, aborted (what the
        // dispatcher's set of attempts does when it is dropped).
        let attempt = tokio::spawn(async move {
            let _handed = handed;
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        attempt.abort();
        assert!(attempt.await.unwrap_err().is_cancelled());
        // Walked on a thread of its own: waited for here.
        let mode = || std::fs::metadata(&bit).unwrap().permissions().mode() & 0o7777;
        let waited = std::time::Instant::now();
        while mode() != 0o755 && waited.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(mode(), 0o755);
    }

    #[tokio::test]
    async fn an_attempts_end_gives_its_files_back() {
        if !nix::unistd::geteuid().is_root() {
            // Only root hands files over; CI runs the tests as root.
            return;
        }
        let (_dir, tree) = handed_tree();
        let handed = Handed::new("t".into(), vec![tree.clone()], tree.clone(), Vec::new());
        handed.give_back().await;
        for path in [
            &tree,
            &tree.join("a"),
            &tree.join("a/file"),
            &tree.join("b"),
        ] {
            assert!(ours(path), "{} is still the sandbox user's", path.display());
        }
    }
}
