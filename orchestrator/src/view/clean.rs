//! `swarm clean` for people: what was freed and what was kept, and why,
//! each size next to what held it. Problems are the front end's to print
//! (on stderr, as errors).

use std::fmt::Write as _;
use std::path::Path;

use bytesize::ByteSize;

use crate::clean::{BranchFate, BuildCache, Cleaned, FreedWarm, KeptRef};
use crate::escape;
use crate::git::short_id;
use crate::worktree_home::GoneHomes;

/// What cleaning run `c.run` freed and kept, a line each.
pub fn run(c: &Cleaned) -> String {
    let mut text = format!(
        "run {}: removed {} worktree{} ({}) and {} tmp director{} ({})\n",
        c.run,
        c.worktrees,
        if c.worktrees == 1 { "" } else { "s" },
        ByteSize::b(c.worktree_bytes),
        c.tmp_dirs,
        if c.tmp_dirs == 1 { "y" } else { "ies" },
        ByteSize::b(c.tmp_bytes)
    );
    for (task, r) in &c.kept {
        let _ = writeln!(text, "  kept {task}'s uncommitted work on {r}");
    }
    text.push_str(&left_out(c, LEFT_OUT_SHOWN));
    if c.unstarted {
        text.push_str("  it was stopped before its start was recorded (none of its tasks ran): removed it whole, its name is free\n");
    }
    if let Some((shared, n)) = &c.shared {
        let _ = writeln!(
            text,
            "  removed {n} ref{} of the run from the shared repository {} (this repository holds their commits)",
            if *n == 1 { "" } else { "s" },
            crate::escape::line(shared)
        );
    }
    let branch = format!("swarm/{}", c.run);
    for r in &c.refs_deleted {
        let _ = writeln!(text, "  deleted {r}: its work is on {branch}");
    }
    for k in &c.refs_kept {
        let _ = writeln!(text, "  {}", kept_ref(k, &branch));
    }
    if let Some(fate) = &c.branch {
        let _ = writeln!(text, "  {}", branch_fate(fate));
    }
    text
}

/// Most files left out of kept worktrees that [`run`] names.
const LEFT_OUT_SHOWN: usize = 10;

/// The first `shown` files cleaning run `c.run` did not commit from the
/// worktrees it removed, a line each, and how many more.
pub fn left_out(c: &Cleaned, shown: usize) -> String {
    let mut text = String::new();
    for (task, file) in c.left_out.iter().take(shown) {
        let _ = writeln!(
            text,
            "  left out of {task}'s worktree (removed): {}",
            escape::line(&file.to_string())
        );
    }
    if let Some(more) = c.left_out.len().checked_sub(shown).filter(|n| *n > 0) {
        let _ = writeln!(
            text,
            "  and {more} more file{} left out",
            if more == 1 { "" } else { "s" }
        );
    }
    text
}

/// What `clean --refs` did with the integration branch, with what brings
/// it back or how to delete it anyway.
pub fn branch_fate(fate: &BranchFate) -> String {
    match fate {
        BranchFate::Deleted { name, was } => {
            format!("deleted branch {name} (was {})", short_id(*was))
        }
        BranchFate::Unmerged { name, tip } => format!(
            "kept branch {name}: its tip {} is on no other branch (merge it first, or pass --force to delete it anyway)",
            short_id(*tip)
        ),
        BranchFate::CheckedOut { name } => {
            format!("kept branch {name}: it is checked out (switch to another branch first)")
        }
    }
}

/// One line on a ref `clean --refs` kept: which, and why deleting it would
/// lose work.
fn kept_ref(k: &KeptRef, branch: &str) -> String {
    let why = match k.no_branch {
        true => format!("{branch} does not exist, so its work is on no branch"),
        false => format!("its work is not on {branch}"),
    };
    let what = match (&k.task, k.attempt) {
        (Some((task, status)), false) if task.contains('/') => format!(" (subtask, {status})"),
        (Some((_, status)), false) => format!(" ({status})"),
        (Some((task, status)), true) => {
            format!(" (an earlier attempt of task `{task}`, now {status})")
        }
        (None, _) => String::new(),
    };
    format!("kept {}: {why}{what}", k.name)
}

/// `path (size)`, the path escaped.
fn sized(path: &Path, bytes: u64) -> String {
    format!(
        "{} ({})",
        escape::line(&path.display().to_string()),
        ByteSize::b(bytes)
    )
}

/// The line of a build cache `--caches` removed.
pub fn cache_removed(c: &BuildCache) -> String {
    format!("removed build cache {}", sized(&c.path, c.bytes))
}

/// The build caches kept (those not empty), with how to free them; none
/// if none holds anything (empty ones, made for tools a run never used,
/// are not news).
pub fn caches_kept(caches: &[BuildCache]) -> Option<String> {
    let kept: Vec<_> = caches.iter().filter(|c| c.bytes > 0).collect();
    if kept.is_empty() {
        return None;
    }
    let bytes: u64 = kept.iter().map(|c| c.bytes).sum();
    let mut text = format!(
        "kept {} of build caches (swarm clean --caches frees them):\n",
        ByteSize::b(bytes)
    );
    for c in kept {
        let _ = writeln!(text, "  {}", sized(&c.path, c.bytes));
    }
    Some(text)
}

/// What `--warm` removed and kept.
pub fn warm(freed: &FreedWarm) -> String {
    let mut text = String::new();
    for (path, bytes) in &freed.removed {
        let _ = writeln!(text, "removed {}", sized(path, *bytes));
    }
    for (path, why) in &freed.kept {
        let _ = writeln!(
            text,
            "kept {}: {}",
            escape::line(&path.display().to_string()),
            escape::line(why)
        );
    }
    text
}

/// What `--gone` removed and left under the worktree root `root`.
pub fn gone(gone: &GoneHomes, root: &Path) -> String {
    let mut text = String::new();
    for home in &gone.removed {
        let _ = writeln!(
            text,
            "removed {}: its repository {} no longer exists",
            sized(&home.path, home.bytes),
            escape::line(&home.repository)
        );
    }
    let _ = writeln!(
        text,
        "{} worktree home{} of existing repositories kept in {}",
        gone.live,
        if gone.live == 1 { "" } else { "s" },
        escape::line(&root.display().to_string())
    );
    for path in &gone.unknown {
        let _ = writeln!(
            text,
            "left {}: not a worktree home swarm made",
            escape::line(&path.display().to_string())
        );
    }
    text
}

/// The last line: how much was freed in all.
pub fn freed(bytes: u64) -> String {
    format!("freed {}", ByteSize::b(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_ref_says_why_and_whose() {
        let k = KeptRef {
            name: "refs/swarm/r/a".into(),
            task: Some(("a".into(), swarm_protocol::TaskStatus::Failed)),
            attempt: false,
            no_branch: false,
        };
        assert_eq!(
            kept_ref(&k, "swarm/r"),
            "kept refs/swarm/r/a: its work is not on swarm/r (failed)"
        );
    }
}
