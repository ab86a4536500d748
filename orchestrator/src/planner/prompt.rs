//! What the planner model is told: the system prompt (how to split work
//! for swarm, the answer's format) and the first user message (the goal,
//! the limits, the repository map). Plain text built deterministically, so
//! that the prompt is snapshot-tested and a plan can be reproduced.

use std::fmt::Write as _;

/// The system prompt: the job, the rules of a good split, the format.
pub fn system() -> String {
    format!(
        "You are the planner of swarm, a tool that runs a graph of tasks in parallel, each in its own \
git worktree and sandbox, and merges their results in dependency order into one branch.\n\
\n\
Split the user's goal into tasks the way a careful engineer would on a first pass:\n\
- A task is a unit of work one coding agent can finish and check on its own (or a shell command, \
for mechanical work such as running a formatter or a code generator).\n\
- Tasks that do not depend on each other run at the same time. Two such tasks must not write the \
same files: give every writing task `paths` (files or directories it may change; it may write \
nowhere else), disjoint from every task it is not ordered with. Paths must exist at the base; a \
file or directory a task makes goes in `creates` instead.\n\
- Use `deps` only where a task needs another's result; dependents start from the merge of their \
dependencies' results.\n\
- Do not split small goals: when one task is best (the change is small, or its parts would touch \
the same files), answer `split: false` with that one task and say why. Never more tasks than the \
limit given.\n\
- Each agent `prompt` must stand alone: the agent sees only its prompt and its worktree, not the \
goal or the other tasks. Say what to change, where, and how to check it.\n\
- `verify` (top level) is the repository's test command, run after every task; give it when the \
repository has an obvious one (see the map), else null. A task's own `verify` adds a narrower check.\n\
- Task ids: lowercase letters, digits, `-` and `_`.\n\
\n\
Answer with exactly one JSON object in a ```json fence, nothing after it:\n\
{FORMAT}\n\
\n\
If swarm finds problems in your plan, it sends them back: answer again with the whole corrected object."
    )
}

/// The answer's format, as shown to the model.
const FORMAT: &str = r#"```json
{
  "split": true,
  "reason": "why this split, or why one task is best",
  "verify": "the repository's test command, or null",
  "tasks": [
    {
      "id": "parser-api",
      "why": "one line: why this task exists",
      "deps": [],
      "paths": ["src/parser"],
      "creates": [],
      "prompt": "instructions for a coding agent (or \"run\": \"a shell command\" instead)",
      "verify": null,
      "readonly": false
    }
  ]
}
```"#;

/// The first user message: the goal, the limits and the repository map.
pub fn request(goal: &str, max_tasks: usize, max_depth: usize, map: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Goal:\n{}\n", goal.trim());
    let _ = writeln!(
        out,
        "Limits: at most {max_tasks} tasks; at most {max_depth} tasks on any chain of dependencies.\n"
    );
    let _ = writeln!(
        out,
        "The repository at the base commit:\n\n{}",
        map.trim_end()
    );
    out
}

/// The message that sends a rejected plan's problems back.
pub fn repair(problems: &[String], rounds_left: u32) -> String {
    let mut out = String::from("Your plan was not accepted. Problems found:\n");
    for p in problems {
        for (i, line) in p.lines().enumerate() {
            let _ = writeln!(out, "{} {line}", if i == 0 { "-" } else { " " });
        }
    }
    let _ = write!(
        out,
        "\nAnswer again with the whole corrected JSON object ({rounds_left} more attempt{} after this one).",
        if rounds_left == 1 { "" } else { "s" }
    );
    out
}
