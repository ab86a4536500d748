//! What the model is told about each tool: its name, when and how to use
//! it, and the JSON schema of its input.

use serde_json::{Value, json};
use swarm_protocol::agent::ToolSpec;

pub(crate) const FINISH: &str = "finish";

/// The tool that asks the coordinator for subtasks (answered by it, not
/// run here).
pub(crate) const SPAWN: &str = "spawn_subtasks";

/// Every tool name, in the order of [`all`].
pub(crate) const NAMES: [&str; 9] = [
    "read_file",
    "write_file",
    "edit_file",
    "list_dir",
    "glob",
    "grep",
    "bash",
    SPAWN,
    FINISH,
];

const PATH: &str =
    "Path relative to the worktree root (an absolute path inside the worktree also works).";

pub(crate) fn all() -> Vec<ToolSpec> {
    vec![
        spec(
            "read_file",
            "Read a text file. Lines come back numbered (`   12\\tcontent`); the numbers are \
             not part of the file, so leave them out of edit_file's old_string. Shows at most \
             2000 lines and about 100 KB per call, cuts lines longer than 2000 bytes, and says \
             how to read on with `offset`. Read a file before editing it. Refuses binary files.",
            json!({
                "path": {"type": "string", "description": PATH},
                "offset": {"type": "integer", "minimum": 1, "description": "First line to show, counting from 1. Default 1."},
                "limit": {"type": "integer", "minimum": 1, "description": "How many lines to show. Default 2000."}
            }),
            &["path"],
        ),
        spec(
            "write_file",
            "Write a whole file, creating it and its parent directories if needed and replacing \
             any previous content. For changes to an existing file prefer edit_file, which only \
             needs the part that changes.",
            json!({
                "path": {"type": "string", "description": PATH},
                "content": {"type": "string", "description": "The complete new content of the file."}
            }),
            &["path", "content"],
        ),
        spec(
            "edit_file",
            "Replace an exact piece of text in a file. old_string must match the file exactly, \
             whitespace and indentation included (copy it from read_file's output, without the \
             line numbers), and must occur exactly once unless replace_all is true: include a \
             few surrounding lines to make it unique. Fails without changing anything if the \
             text is missing or ambiguous; then re-read the file. Use write_file to create files.",
            json!({
                "path": {"type": "string", "description": PATH},
                "old_string": {"type": "string", "description": "The exact text to replace; not empty."},
                "new_string": {"type": "string", "description": "The text to put in its place; must differ from old_string."},
                "replace_all": {"type": "boolean", "description": "Replace every occurrence instead of requiring exactly one. Default false."}
            }),
            &["path", "old_string", "new_string"],
        ),
        spec(
            "list_dir",
            "List a directory: entries sorted by name, directories with a trailing `/`, \
             symlinks as `name -> target`; `.git` is left out. Use glob to find files by \
             name across the tree.",
            json!({
                "path": {"type": "string", "description": "Directory relative to the worktree root. Default `.`."}
            }),
            &[],
        ),
        spec(
            "glob",
            "Find files by name pattern, e.g. `**/*.rs` or `src/**/test_*.py`. The pattern is \
             matched against paths relative to `path`; `*` does not cross `/`, `**` spans \
             directories, `{a,b}` is either. Results are paths relative to the worktree root, \
             sorted, at most 1000. Files ignored by .gitignore are skipped; hidden files are \
             included.",
            json!({
                "pattern": {"type": "string", "description": "Glob pattern."},
                "path": {"type": "string", "description": "Directory to search in, relative to the worktree root. Default `.`."}
            }),
            &["pattern"],
        ),
        spec(
            "grep",
            "Search file contents with a regular expression (Rust regex syntax, like ripgrep: \
             escape literal `(`, `{`, `.` etc.). Prints `path:line:text` per matching line, at \
             most 500 matches, long lines cut. Skips binary files and files ignored by \
             .gitignore. Narrow the search with `path` and `glob` rather than running grep \
             through bash.",
            json!({
                "pattern": {"type": "string", "description": "Regular expression, matched within single lines."},
                "path": {"type": "string", "description": "File or directory to search, relative to the worktree root. Default `.`."},
                "glob": {"type": "string", "description": "Only search files matching this glob: `*.rs` matches by file name anywhere, a pattern with `/` such as `src/**/*.ts` matches paths from the worktree root."},
                "case_insensitive": {"type": "boolean", "description": "Ignore case. Default false."}
            }),
            &["pattern"],
        ),
        spec(
            "bash",
            "Run a shell command with /bin/sh -c in the worktree root, e.g. to build, run tests, \
             or use git. Each call is a fresh shell: `cd` and variables do not carry over, so \
             chain with `&&`. There is no input (stdin is empty). stdout and \
             stderr come back together after the exit code; long output keeps its first and \
             last 16 KB. When the command ends or times out, every process it started is \
             killed, so do not start servers or background jobs expecting them to survive. A \
             non-zero exit is reported, not treated as a failure. Prefer read_file, grep, glob \
             and the edit tools over cat, grep, find and sed.",
            json!({
                "command": {"type": "string", "description": "The shell command."},
                "timeout": {"type": "number", "exclusiveMinimum": 0, "description": "Seconds before the command is killed. Can only lower the session's limit."}
            }),
            &["command"],
        ),
        spec(
            SPAWN,
            "Split off parts of the task as subtasks that run in parallel after you finish, \
             each in its own worktree and sandbox, starting from your result; their work is \
             merged onto yours before anything that depends on this task starts. Use it for \
             independent pieces of a large change (one package, one module each). Each subtask \
             has an `id` (lowercase letters, digits, `-`, `_`), a `prompt` (for a coding agent) \
             or a `run` (a shell command), and may set `deps` (ids of its siblings to wait \
             for), `paths` (what it may write, inside yours; unordered siblings must not \
             overlap) and `verify` (a command that checks its work). The coordinator checks the \
             request at once and answers with the accepted ids or with every problem to fix. \
             Finish your own part as usual afterwards.",
            json!({
                "tasks": {
                    "type": "array",
                    "minItems": 1,
                    "description": "The subtasks.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "prompt": {"type": "string"},
                            "run": {"type": "string"},
                            "deps": {"type": "array", "items": {"type": "string"}},
                            "paths": {"type": "array", "items": {"type": "string"}},
                            "creates": {"type": "array", "items": {"type": "string"}},
                            "verify": {"type": "string"}
                        },
                        "required": ["id"]
                    }
                }
            }),
            &["tasks"],
        ),
        spec(
            FINISH,
            "End the session when the task is done (or cannot be done). Give a short summary \
             of what was changed and why, and of anything left undone or uncertain. Call it \
             once the work is done and checked, not together with other tools.",
            json!({
                "summary": {"type": "string", "description": "What was done, for the reviewer."}
            }),
            &["summary"],
        ),
    ]
}

fn spec(name: &str, description: &str, properties: Value, required: &[&str]) -> ToolSpec {
    ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        input_schema: json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_specs() {
        let names: Vec<String> = all().into_iter().map(|spec| spec.name).collect();
        assert_eq!(names, NAMES);
    }

    #[test]
    fn required_fields_are_properties() {
        for spec in all() {
            let schema = &spec.input_schema;
            for field in schema["required"].as_array().unwrap() {
                let field = field.as_str().unwrap();
                assert!(
                    schema["properties"].get(field).is_some(),
                    "{}: {field}",
                    spec.name
                );
            }
        }
    }
}
