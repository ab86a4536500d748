//! Bounded replanning: a task that failed after its retries (and repair
//! rounds) is shown to a model with why it failed, and the model answers
//! with what should take its place: a changed task, or a few new ones. The
//! answer is read as a subtask request of the failed task (`run::spawn`),
//! so it is checked exactly like a plan (and against the run's limits); its
//! problems go back to the model for another round. Accepted, the new tasks
//! become the failed task's children, starting from where it started; its
//! dependents wait for them.
//!
//! This module only talks to the model and checks; the dispatcher decides
//! when to replan (`[swarm] replan` times per run at most), journals the
//! change and grows the graph.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use git2::Oid;
use serde_json::Value;
use swarm_protocol::agent::{Block, Message, Role};

use super::spawn::{Spawner, json_request};
use crate::gateway::{CompletionRequest, Gateway};
use crate::git::Repo;
use crate::plan::{Payload, Task};

/// Rounds of one replan: the first answer and this many corrections.
const ROUNDS: u32 = 3;

/// What the replanner is shown of a failed task.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub task: Arc<Task>,
    /// Why it failed, as the run says it.
    pub reason: String,
    /// Where its last attempt started: where what replaces it starts.
    pub base: Oid,
    /// Its last attempt's logs (the model is shown their last 4 KiB, as
    /// reports are).
    pub logs: Vec<PathBuf>,
    /// The other tasks of the run, with their status, for context.
    pub others: Vec<String>,
    /// This replan's number and how many the run allows.
    pub round: u32,
    pub rounds: u32,
}

/// A replan the model gave and the checks accepted.
#[derive(Debug, Clone)]
pub(crate) struct Fix {
    /// The model's reason for it.
    pub reason: String,
    /// The change as a diff of `[[task]]` tables.
    pub diff: String,
}

/// Everything a replan needs from the run.
#[derive(Debug, Clone)]
pub(crate) struct Replanner {
    pub gateway: Arc<Gateway>,
    pub model: String,
    pub spawner: Arc<Spawner>,
    pub repo: Repo,
    pub transcript: PathBuf,
    /// The run's places a replay may find elsewhere (placeholder, path).
    pub places: Vec<(String, PathBuf)>,
}

impl Replanner {
    /// Asks for a fix of `failure` until one passes the checks (its tasks
    /// are then waiting in the spawner, under the failed task's id) or the
    /// rounds run out. The error says why no fix came.
    pub(crate) async fn replan(&self, failure: Failure) -> Result<Fix, String> {
        let mut messages = vec![user(request(&failure))];
        let mut problems = Vec::new();
        for round in 1..=ROUNDS {
            let completion = self
                .gateway
                .complete(&CompletionRequest {
                    model: self.model.clone(),
                    system: SYSTEM.to_string(),
                    messages: messages.clone(),
                    max_tokens: None,
                    tools: Vec::new(),
                    label: format!("replan {}", failure.task.id),
                    transcript: Some(self.transcript.clone()),
                    budget: None,
                    cassette: Some(crate::gateway::tape::ReelId::Replanner),
                    places: self.places.clone(),
                    format: None,
                })
                .await
                .map_err(|e| format!("the model call failed: {e}"))?;
            problems = match self.check(&failure, &completion.text).await {
                Ok(fix) => return Ok(fix),
                Err(problems) => problems,
            };
            if round == ROUNDS {
                break;
            }
            messages.push(Message {
                role: Role::Assistant,
                content: vec![Block::Text {
                    text: if completion.text.is_empty() {
                        "(empty answer)".into()
                    } else {
                        completion.text
                    },
                }],
            });
            messages.push(user(crate::planner::prompt::repair(
                &problems,
                ROUNDS - round,
            )));
        }
        Err(format!(
            "no fix passed the checks in {ROUNDS} rounds: {}",
            problems.join("; ")
        ))
    }

    /// The model's answer `text` read and checked as a request of the
    /// failed task's.
    async fn check(&self, failure: &Failure, text: &str) -> Result<Fix, Vec<String>> {
        let (reason, tasks) = parse(text).map_err(|e| vec![e])?;
        let request = json_request(&serde_json::json!({ "tasks": tasks })).map_err(|e| vec![e])?;
        let (spawner, repo, task, base) = (
            Arc::clone(&self.spawner),
            self.repo.clone(),
            Arc::clone(&failure.task),
            failure.base,
        );
        let text = request.clone();
        // A new attempt of the request: what an earlier round asked for
        // is void.
        spawner.reset(&task.id, None);
        let checked = crate::run::blocking::blocking(move || {
            repo.with_paths_of(base, |exists| {
                spawner.request(&task, "replan", &text, exists)
            })
        })
        .await
        .map_err(|e| vec![format!("swarm could not check it: failed to {e}")])?;
        checked?;
        Ok(Fix {
            diff: diff(&failure.task, &failure.reason, &request),
            reason,
        })
    }
}

/// The change a fix makes, for the journal and `swarm logs RUN replan`:
/// the failed task out, the new tasks in (ids as they run).
fn diff(task: &Task, why: &str, request: &str) -> String {
    let mut out = String::new();
    // `why` is the task's failure: one line, as every line of the diff.
    let _ = writeln!(
        out,
        "- [[task]] id = \"{}\"   # {}",
        task.id,
        crate::escape::line(why)
    );
    match &task.payload {
        Payload::Command { run } => {
            let _ = writeln!(out, "-   run = {}", crate::planner::write::string(run));
        }
        Payload::Agent(agent) => {
            let _ = writeln!(
                out,
                "-   prompt = {}",
                crate::planner::write::string(&agent.prompt)
            );
        }
        Payload::Wasm(_) => {}
    }
    for line in request.lines() {
        let line = match line.strip_prefix("id = \"") {
            Some(rest) => format!("id = \"{}/{rest}", task.id),
            None => line.to_string(),
        };
        let _ = writeln!(out, "+ {line}");
    }
    out
}

fn user(text: String) -> Message {
    Message {
        role: Role::User,
        content: vec![Block::Text { text }],
    }
}

/// The model's JSON answer: its reason and its tasks (each an object of
/// plan keys; `why` is dropped).
fn parse(text: &str) -> Result<(String, Vec<Value>), String> {
    let json = match text.find("```json") {
        Some(start) => {
            let rest = &text[start + 7..];
            &rest[..rest.find("```").unwrap_or(rest.len())]
        }
        None => match (text.find('{'), text.rfind('}')) {
            (Some(a), Some(b)) if a < b => &text[a..=b],
            _ => {
                return Err("the answer holds no JSON object; answer with one JSON object in a ```json fence".into());
            }
        },
    };
    let value: Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("the JSON of the answer does not parse: {e}"))?;
    let reason = value["reason"].as_str().unwrap_or_default().to_string();
    let Some(tasks) = value["tasks"].as_array() else {
        return Err("the answer has no `tasks` list".into());
    };
    if tasks.is_empty() {
        return Err("the answer's `tasks` list is empty: give at least one task".into());
    }
    let tasks = tasks
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if let Some(fields) = t.as_object_mut() {
                fields.remove("why");
            }
            t
        })
        .collect();
    Ok((reason, tasks))
}

const SYSTEM: &str = "You repair a failed task of a swarm run. Swarm runs a graph of tasks, each in its own git \
worktree and sandbox, and merges their results in dependency order into one branch. A task failed \
after its retries. Give what should take its place: the same task changed (a corrected command or \
prompt), or a few smaller tasks that together do its job. They start from where the failed task \
started (not from its failed result), and the failed task's dependents wait for them.\n\
\n\
Rules: each task has an `id` (lowercase letters, digits, `-`, `_`), a `run` (a shell command) or a \
`prompt` (for a coding agent; it sees only its prompt and its worktree), optionally `deps` (ids of \
the other new tasks it needs), `paths` (what it may write; new tasks that do not depend on each \
other must not write the same paths), `creates` (files it makes) and `verify` (a command that \
checks its work). They may write only what the failed task could.\n\
\n\
Answer with exactly one JSON object in a ```json fence:\n\
```json\n\
{\"reason\": \"what went wrong and why this fixes it\", \"tasks\": [{\"id\": \"fix\", \"why\": \"one line\", \"run\": \"...\"}]}\n\
```\n\
If swarm finds problems in your answer, it sends them back: answer again with the whole corrected object.";

/// The first message: the failed task, why it failed, its logs' tails.
fn request(failure: &Failure) -> String {
    let task = &failure.task;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Replan {} of at most {} in this run.\n",
        failure.round, failure.rounds
    );
    let _ = writeln!(out, "The failed task `{}`:", task.id);
    match &task.payload {
        Payload::Command { run } => {
            let _ = writeln!(out, "run = {run:?}");
        }
        Payload::Agent(agent) => {
            let _ = writeln!(out, "prompt = {:?}", agent.prompt);
        }
        Payload::Wasm(_) => {
            let _ = writeln!(out, "(a WASM program)");
        }
    }
    if let Some(verify) = &task.verify {
        let _ = writeln!(out, "verify = {verify:?}");
    }
    if let Some(owned) = task.owned() {
        let _ = writeln!(out, "it may write: {}", owned.join(", "));
    }
    let _ = writeln!(out, "\nWhy it failed: {}", failure.reason);
    for log in &failure.logs {
        let tail = crate::export::log_tail(log);
        if !tail.trim().is_empty() {
            let _ = writeln!(
                out,
                "\nThe end of {}:\n```\n{}\n```",
                log.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("its log"),
                tail.trim_end()
            );
        }
    }
    if !failure.others.is_empty() {
        let _ = writeln!(
            out,
            "\nThe run's other tasks: {}",
            failure.others.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn answers_are_read_from_a_fence_or_braces() {
        let (reason, tasks) =
            parse("Sure.\n```json\n{\"reason\": \"typo\", \"tasks\": [{\"id\": \"fix\", \"why\": \"w\", \"run\": \"true\"}]}\n```").unwrap();
        assert_eq!(reason, "typo");
        assert_eq!(tasks[0], serde_json::json!({"id": "fix", "run": "true"}));
        assert!(parse("{\"tasks\": [{\"id\": \"a\"}]} thanks").is_ok());
        assert!(parse("no json").unwrap_err().contains("no JSON object"));
        assert!(parse("{\"tasks\": []}").unwrap_err().contains("empty"));
        assert!(
            parse("{\"reason\": \"x\"}")
                .unwrap_err()
                .contains("no `tasks`")
        );
    }
}
