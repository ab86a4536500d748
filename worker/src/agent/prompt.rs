//! The agent's system prompt: how it should work, and the repository's own
//! instructions for agents (AGENTS.md, CLAUDE.md or CLAW.md at the root of
//! the worktree), which the model is given verbatim.

use std::io::Read;
use std::path::Path;

/// Files a repository uses to instruct coding agents, in the order they
/// are given to the model.
pub const INSTRUCTION_FILES: &[&str] = &["AGENTS.md", "CLAUDE.md", "CLAW.md"];

/// Most bytes of one instruction file given to the model.
const MAX_INSTRUCTIONS: u64 = 64 << 10;

const BASE: &str = "\
You are a coding agent: one task of a larger plan that swarm runs in parallel, \
each task in its own git worktree. Your working directory is the root of your \
worktree, and every path you give a tool is relative to it; nothing outside \
it can be changed. You have no network access.

How to work:
- Look before you change: list, glob, grep and read the files involved.
- Make the change the task asks for, completely, and nothing more. Keep the \
style of the surrounding code. Do not leave scratch files behind.
- Prefer edit_file for changes to existing files; use write_file for new ones.
- Check your work with bash (build, test, lint) when the project allows it.
- When you are done, call `finish` with a short summary of what you changed. \
Your changes are committed and merged automatically: do not run git commit.
- If the task has a verify command, it runs after you finish; if it fails you \
get its output and a chance to fix the problem, then call `finish` again.";

/// The system prompt for `task`, with the instructions found in `root`;
/// `network`: the hosts its network list allows, if it has one.
pub fn system_prompt(task: &str, root: &Path, network: Option<&str>) -> String {
    let base = match network {
        None => std::borrow::Cow::Borrowed(BASE),
        Some(hosts) => std::borrow::Cow::Owned(BASE.replace(
            "You have no network access.",
            &format!(
                "Your only network access is HTTP and HTTPS to these hosts, through the \
                 proxy your environment names (HTTP_PROXY, HTTPS_PROXY): {hosts}."
            ),
        )),
    };
    let mut prompt = format!("{base}\n\nYour task's id is `{task}`.");
    for name in INSTRUCTION_FILES {
        let Some(text) = read_instructions(&root.join(name)) else {
            continue;
        };
        prompt.push_str(&format!(
            "\n\n# Project instructions ({name})\n\n{}",
            text.trim_end()
        ));
    }
    prompt
}

fn read_instructions(path: &Path) -> Option<String> {
    // Only a regular file: a link could point anywhere.
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_INSTRUCTIONS)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_instructions_are_included_and_links_are_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("AGENTS.md"), "Use tabs.\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("CLAUDE.md")).unwrap();
        let prompt = system_prompt("core", dir.path(), None);
        assert!(prompt.contains("# Project instructions (AGENTS.md)\n\nUse tabs."));
        assert!(!prompt.contains("CLAUDE.md)"));
        assert!(prompt.contains("`core`"));
    }

    #[test]
    fn a_network_list_is_what_the_agent_is_told_it_may_reach() {
        let dir = tempfile::tempdir().unwrap();
        assert!(system_prompt("core", dir.path(), None).contains("You have no network access."));
        let prompt = system_prompt("core", dir.path(), Some("[\"docs.rs\"]"));
        assert!(!prompt.contains("no network access"), "{prompt}");
        assert!(
            prompt.contains("Your only network access is HTTP and HTTPS to these hosts, through the proxy your environment names (HTTP_PROXY, HTTPS_PROXY): [\"docs.rs\"]."),
            "{prompt}"
        );
    }
}
