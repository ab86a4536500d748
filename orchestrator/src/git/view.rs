//! What a sandboxed task sees of the repository's git directory.
//!
//! Git commands in a task's worktree need the object database and the
//! worktree's own records (`HEAD`, `index`), nothing else. The real git
//! directory also holds the repository's configuration (a CI checkout's
//! token in `http.extraheader`, credential helpers, remote URLs with
//! passwords, `core.fsmonitor` and filter commands), every other task's
//! result refs, and hooks. So a task is shown, at the git directory's
//! path, a small directory swarm writes for it: a configuration reduced to
//! the keys that say how to read the repository, the main `HEAD`, empty
//! `refs/`, the ignore and attribute files of `info/`, `shallow`; and
//! mounted into it, read-only, the real `objects/` and the task's own
//! worktree record under `worktrees/`.
//!
//! Objects are shared: a task that enumerates the object database can find
//! objects of tasks that ran before or beside it (never their refs). That
//! is a documented limit of sibling isolation.

#![allow(
    clippy::disallowed_methods,
    reason = "the git views swarm writes in the run's tmp/ (`<task>.git`): mounted read-only into tasks"
)]

use std::path::{Path, PathBuf};

use swarm_sandbox::View;

use super::{Context, GitError, Repo};

/// Configuration keys copied into the view: how to read the repository and
/// how its files look, nothing that runs a command, names a host or holds
/// a secret.
const SAFE_KEYS: &[&str] = &[
    "core.repositoryformatversion",
    "core.bare",
    "core.filemode",
    "core.symlinks",
    "core.ignorecase",
    "core.precomposeunicode",
    "core.autocrlf",
    "core.eol",
    "core.safecrlf",
    "core.checkstat",
    "core.trustctime",
    "core.quotepath",
    "core.abbrev",
];

/// Files of the git directory a task may read as they are.
const COPIED: &[&str] = &["info/exclude", "info/attributes", "shallow"];

/// Writes the view of task `task`'s git directory at `dir` (replacing any
/// earlier one) and returns what its sandbox must show: the view at the
/// repository's git directory, and the real objects and the worktree
/// record `admin` inside it. Alternate object directories the repository
/// borrows from are shown at their own paths.
pub fn write_view(repo: &Repo, dir: &Path, admin: &Path) -> Result<Vec<View>, GitError> {
    let common = &repo.common_dir;
    let action = || format!("write the git view {}", dir.display());
    if dir.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(dir).context(action)?;
    }
    let admin_name = admin.file_name().ok_or_else(|| GitError::Cli {
        action: action(),
        message: format!("{} is not a worktree record", admin.display()),
    })?;
    for sub in [
        PathBuf::from("objects"),
        PathBuf::from("refs/heads"),
        PathBuf::from("refs/tags"),
        PathBuf::from("info"),
        Path::new("worktrees").join(admin_name),
    ] {
        std::fs::create_dir_all(dir.join(sub)).context(action)?;
    }
    std::fs::write(dir.join("config"), safe_config(&common.join("config"))).context(action)?;
    let head = std::fs::read_to_string(common.join("HEAD")).unwrap_or_default();
    let head = if head.starts_with("ref: refs/") && !head.contains("..") {
        head
    } else {
        // A detached main HEAD names a commit the task need not know.
        "ref: refs/heads/main\n".to_string()
    };
    std::fs::write(dir.join("HEAD"), head).context(action)?;
    for file in COPIED {
        let from = common.join(file);
        if from.symlink_metadata().is_ok_and(|m| m.is_file()) {
            std::fs::copy(&from, dir.join(file)).context(action)?;
        }
    }
    let mut views = vec![
        View {
            source: dir.to_path_buf(),
            target: common.clone(),
        },
        View {
            source: common.join("objects"),
            target: common.join("objects"),
        },
        View {
            source: admin.to_path_buf(),
            target: common.join("worktrees").join(admin_name),
        },
    ];
    views.extend(
        alternates(&common.join("objects"))
            .into_iter()
            .map(|p| View {
                source: p.clone(),
                target: p,
            }),
    );
    Ok(views)
}

/// The repository's configuration reduced to [`SAFE_KEYS`] and the
/// `extensions.*` that say how its objects and refs are stored.
///
/// Read by hand rather than through libgit2, which would follow
/// `include.path` (and give up on the whole file when an included one does
/// not parse): only plain `[core]` and `[extensions]` lines count, and only
/// values that are plain words, so nothing but such words can reach the
/// file the task sees.
fn safe_config(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut sections: std::collections::BTreeMap<String, Vec<(String, String)>> =
        Default::default();
    let mut section = String::new();
    for line in text.lines() {
        let mut line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let Some((header, after)) = rest.split_once(']') else {
                section.clear();
                continue;
            };
            // `[remote "origin"]` and the like are never safe.
            section = if header.contains(|c: char| c.is_whitespace() || c == '"') {
                String::new()
            } else {
                header.to_ascii_lowercase()
            };
            line = after.trim();
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim().trim_matches('"');
        let word = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        let name = format!("{section}.{key}");
        let safe = SAFE_KEYS.contains(&name.as_str())
            || (section == "extensions" && key.chars().all(|c| c.is_ascii_alphanumeric()));
        if word && safe {
            let keys = sections.entry(section.clone()).or_default();
            // The last value of a key wins, as in git.
            keys.retain(|(k, _)| *k != key);
            keys.push((key, value.to_string()));
        }
    }
    let mut out =
        String::from("# swarm: what this task may know of the repository's configuration\n");
    for (section, keys) in sections {
        out.push_str(&format!("[{section}]\n"));
        for (key, value) in keys {
            out.push_str(&format!("\t{key} = {value}\n"));
        }
    }
    out
}

/// Object directories `objects/info/alternates` names (absolute, or
/// relative to `objects`) that exist.
fn alternates(objects: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(objects.join("info/alternates")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| objects.join(l))
        .filter_map(|p| p.canonicalize().ok())
        .filter(|p| p.is_dir())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_keeps_how_to_read_the_repository_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[core]\n\trepositoryformatversion = 1\n\tfilemode = true\n\tfsmonitor = touch /tmp/pwned\n\
             \thooksPath = /evil\n\tsshCommand = evil\n[extensions]\n\tobjectformat = sha256\n\
             [http]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\n\
             [remote \"origin\"]\n\turl = https://user:token@example.com/x.git\n\
             [credential]\n\thelper = store\n[filter \"x\"]\n\tclean = evil\n\
             [include]\n\tpath = /etc/passwd\n[core]\n\tfilemode = false\n\tfilemode = true\n\
             \teditor = \"vim; rm -rf ~\"\n",
        )
        .unwrap();
        let text = safe_config(&config);
        assert_eq!(
            text,
            "# swarm: what this task may know of the repository's configuration\n\
             [core]\n\trepositoryformatversion = 1\n\tfilemode = true\n\
             [extensions]\n\tobjectformat = sha256\n"
        );
    }
}
