//! The commit message of a task's result: the outcome in the subject, what
//! the task ran in the body (so that `git log` of the integration branch
//! says what each task did, whatever its kind), what the snapshot left
//! out, and trailers naming the run, task and attempt.

use swarm_protocol::agent::{AgentOutcome, AgentReport};
use swarm_protocol::{AttemptOutcome, SkippedFile};

use super::describe::{Verify, describe_result};
use crate::plan::{Payload, Task, WasmTask};

/// The message of the snapshot commit of `task`'s attempt `attempt`,
/// which changed `outside` outside the task's paths.
#[expect(
    clippy::too_many_arguments,
    reason = "everything an attempt's commit is told from"
)]
pub(crate) fn commit_message(
    run: &str,
    task: &Task,
    attempt: u32,
    outcome: &AttemptOutcome,
    verify: Option<&Verify>,
    agent: Option<&AgentReport>,
    skipped: &[SkippedFile],
    outside: &[String],
) -> String {
    let succeeded = outcome.is_success()
        && !matches!(verify, Some(Verify::Failed(_)))
        && agent.is_none_or(|r| r.outcome == AgentOutcome::Finished)
        && outside.is_empty();
    let result = if succeeded {
        "succeeded".to_string()
    } else {
        describe_result(outcome, verify, task, run, attempt, agent, outside)
    };
    let what = what_it_ran(task, agent);
    let mut script: String = what.chars().take(2000).collect();
    if script.len() < what.len() {
        script.push_str("\n[...]");
    }
    // What the snapshot left out, where whoever reads the commit sees it.
    let mut left_out = String::new();
    if !skipped.is_empty() {
        left_out.push_str("\n\nNot committed (see the run's report):");
        for file in skipped.iter().take(20) {
            left_out.push_str(&format!("\n  {file}"));
        }
        if skipped.len() > 20 {
            left_out.push_str(&format!("\n  and {} more", skipped.len() - 20));
        }
    }
    format!(
        "swarm: {run}/{id}: {result}\n\n{script}{left_out}\n\nSwarm-Run: {run}\nSwarm-Task: {id}\nSwarm-Attempt: {attempt}\n",
        id = task.id
    )
}

/// What the task ran, as its commit tells it: the command; the WASM
/// program's file name and arguments; the agent's prompt and its summary.
fn what_it_ran(task: &Task, agent: Option<&AgentReport>) -> String {
    match &task.payload {
        Payload::Command { run } => run.clone(),
        Payload::Wasm(wasm) => wasm_command_line(wasm),
        Payload::Agent(a) => match agent.filter(|r| !r.summary.is_empty()) {
            Some(r) => format!("{}\n\n{}", a.prompt, r.summary),
            None => a.prompt.clone(),
        },
    }
}

/// `program.wasm arg1 "arg 2"`: the module's file name (its directory is
/// the plan's business, not the commit's) and its arguments, those that
/// would not read back as one word quoted.
fn wasm_command_line(wasm: &WasmTask) -> String {
    let program = wasm
        .module
        .file_name()
        .unwrap_or(wasm.module.as_os_str())
        .to_string_lossy();
    std::iter::once(program.into_owned())
        .chain(wasm.args.iter().map(|arg| {
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '"') {
                format!("{arg:?}")
            } else {
                arg.clone()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use swarm_protocol::AttemptOutcome;
    use swarm_protocol::agent::{AgentOutcome, AgentReport};

    use super::commit_message;
    use crate::plan::Task;

    fn task(toml: &str) -> Task {
        let plan = crate::plan::parse(Path::new("/plans/p.toml"), toml.to_string());
        plan.map(|p| p.tasks[0].clone())
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// The subject and the first line of the body.
    fn head(message: &str) -> (String, String) {
        let mut lines = message.lines();
        let subject = lines.next().unwrap_or_default().to_string();
        let body = lines
            .find(|l| !l.is_empty())
            .unwrap_or_default()
            .to_string();
        (subject, body)
    }

    const SUCCESS: AttemptOutcome = AttemptOutcome::Exited { code: 0 };

    #[test]
    fn a_wasm_commit_names_its_program_and_arguments() {
        let t = task(
            "[[task]]\nid = \"gen\"\nwasm = \"guests/gen.wasm\"\nargs = [\"--out\", \"a b.txt\"]\n",
        );
        let message = commit_message("r", &t, 1, &SUCCESS, None, None, &[], &[]);
        assert_eq!(
            head(&message),
            (
                "swarm: r/gen: succeeded".to_string(),
                "gen.wasm --out \"a b.txt\"".to_string()
            )
        );
        assert!(
            message.ends_with("\n\nSwarm-Run: r\nSwarm-Task: gen\nSwarm-Attempt: 1\n"),
            "{message}"
        );
    }

    #[test]
    fn an_agent_commit_gives_its_prompt_then_its_summary() {
        let t = task(
            "[models.default]\nprovider = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:1/v1\"\n\n[[task]]\nid = \"fix\"\nprompt = \"Fix the README.\\nEvery link.\"\n",
        );
        let report = AgentReport {
            outcome: AgentOutcome::Finished,
            summary: "Fixed three links.".into(),
            turns: 2,
            repair_rounds: 0,
            usage: Default::default(),
            cost_usd: 0.0,
            transcript: None,
            detail: None,
            output: None,
            verify_rounds: Vec::new(),
        };
        let message = commit_message("r", &t, 2, &SUCCESS, None, Some(&report), &[], &[]);
        assert_eq!(
            head(&message),
            (
                "swarm: r/fix: succeeded".to_string(),
                "Fix the README.".to_string()
            )
        );
        assert!(message.contains("Every link.\n\nFixed three links.\n\nSwarm-Run: r\nSwarm-Task: fix\nSwarm-Attempt: 2\n"), "{message}");
    }
}
