//! The tools the coding agent offers the model: reading, writing and
//! editing files, listing, finding and searching them, and running shell
//! commands, all confined to the task's worktree.
//!
//! Every tool answers with text. Errors the model can act on (a bad path,
//! an ambiguous edit, a timeout) are results marked `is_error`, never
//! failures of the agent.

mod bash;
mod fs;
mod input;
mod paths;
mod reap;
mod search;
mod specs;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use swarm_protocol::agent::ToolSpec;

pub use bash::become_subreaper;
pub(crate) use reap::spawning;

use input::Input;
use paths::Root;

/// The tools of one agent session, bound to its worktree.
pub struct Tools {
    root: Root,
    bash_timeout: Duration,
}

/// What a tool answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
}

impl ToolOutput {
    fn from_result(result: Result<String, String>) -> ToolOutput {
        match result {
            Ok(content) => ToolOutput {
                content,
                is_error: false,
            },
            Err(content) => ToolOutput {
                content,
                is_error: true,
            },
        }
    }
}

/// Characters of a [`Tools::describe`] line at most.
const DESCRIBE_MAX: usize = 100;

impl Tools {
    /// `root` is the worktree; `bash_timeout` the most one bash call may run
    /// (a per-call `timeout` input may lower it, never raise it).
    pub fn new(root: &Path, bash_timeout: Duration) -> std::io::Result<Tools> {
        Ok(Tools {
            root: Root::open(root)?,
            bash_timeout,
        })
    }

    /// JSON-schema specs of every tool, `finish` included, in a stable order.
    pub fn specs() -> Vec<ToolSpec> {
        specs::all()
    }

    /// Runs tool `name` with `input`. `finish` is the caller's to handle.
    pub fn call(&mut self, name: &str, input: &Value) -> ToolOutput {
        ToolOutput::from_result(self.run(name, input))
    }

    fn run(&mut self, name: &str, input: &Value) -> Result<String, String> {
        let tool: fn(&Root, &Input) -> Result<String, String> = match name {
            "read_file" => fs::read_file,
            "write_file" => fs::write_file,
            "edit_file" => fs::edit_file,
            "list_dir" => fs::list_dir,
            "glob" => search::glob,
            "grep" => search::grep,
            "bash" => {
                let input = Input::new(input)?;
                return bash::bash(&self.root, &input, self.bash_timeout);
            }
            specs::FINISH => {
                return Err("`finish` ends the session and is not run as a tool here".to_owned());
            }
            _ => {
                return Err(format!(
                    "unknown tool `{name}`; the tools are: {}",
                    specs::NAMES.join(", ")
                ));
            }
        };
        tool(&self.root, &Input::new(input)?)
    }

    /// A one-line description of a call for progress views, such as
    /// `read_file src/lib.rs` or `bash cargo check -p core`.
    pub fn describe(name: &str, input: &Value) -> String {
        let field = |key: &str| input.get(key).and_then(Value::as_str).unwrap_or("");
        let line = match name {
            "read_file" | "write_file" | "edit_file" => format!("{name} {}", field("path")),
            "list_dir" => format!(
                "{name} {}",
                input.get("path").and_then(Value::as_str).unwrap_or(".")
            ),
            "glob" | "grep" => {
                let mut line = format!("{name} {}", field("pattern"));
                if let Some(path) = input.get("path").and_then(Value::as_str) {
                    line.push_str(&format!(" in {path}"));
                }
                if let Some(glob) = input.get("glob").and_then(Value::as_str) {
                    line.push_str(&format!(" ({glob})"));
                }
                line
            }
            "bash" => format!("bash {}", field("command")),
            "finish" => "finish".to_owned(),
            _ => name.to_owned(),
        };
        one_line(&line, DESCRIBE_MAX)
    }
}

/// `text` on one line (whitespace runs, newlines included, become one
/// space), cut to `max` characters with an ellipsis.
fn one_line(text: &str, max: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() <= max {
        return joined;
    }
    let mut cut: String = joined.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
