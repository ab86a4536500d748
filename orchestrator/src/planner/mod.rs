//! The coordinator splits a goal into a plan (`swarm plan`, `swarm run
//! --goal`): the model is shown the goal and a repository map, answers
//! with a JSON description of the tasks, and swarm writes that as a plan
//! file and checks it exactly as it checks a hand-written one (syntax,
//! graph, and `plan::semantic`'s overlapping writers, missing paths and
//! limits). A plan that fails goes back to the model with the problems, at
//! most `plan_repair_rounds` times.
//!
//! The model is reached through the run's [`Gateway`] like every agent
//! call (limits, retries, budget, transcript). Nothing here prints or
//! touches the file system beyond the transcript the gateway appends to:
//! the CLI saves the plan, the map and a rejected attempt.

pub mod answer;
pub mod prompt;
pub mod write;

use std::path::{Path, PathBuf};

use git2::Oid;
use swarm_protocol::agent::{Block, Message, Role, StopReason, Usage};

use crate::gateway::{CompletionRequest, Gateway, GatewayError};
use crate::plan::semantic::{self, Limits};
use crate::plan::{Plan, PlanError, Template};

pub use answer::Answer;

/// Tasks a planned plan may have unless the user says otherwise.
pub const DEFAULT_MAX_TASKS: usize = 12;

/// Longest chain of dependent tasks a planned plan may have.
pub const DEFAULT_MAX_DEPTH: usize = 6;

/// The repository map as the model sees it, and how the plan names it.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub text: &'a str,
    pub hash: &'a str,
    pub tokens: usize,
    /// The map's file name beside the plan.
    pub file_name: &'a str,
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub goal: &'a str,
    /// The model's name in the configuration's `[models]`.
    pub model: &'a str,
    pub max_tasks: usize,
    pub max_depth: usize,
    pub template: &'a Template,
    pub context: Context<'a>,
    /// The base as given (`HEAD`) and the commit it named.
    pub base_rev: &'a str,
    pub base_commit: Oid,
    /// The base's paths (files and directories) when there are few enough
    /// to list ([`answer::MAX_LISTED_PATHS`]): the answer's schema holds a
    /// task's `paths` to them.
    pub base_paths: Option<&'a [String]>,
    /// Where the plan will live: errors name it, relative `wasm` paths
    /// resolve from its directory, and its stem names the run.
    pub plan_path: &'a Path,
    /// Where the gateway appends the conversation.
    pub transcript: Option<PathBuf>,
}

/// An accepted plan.
#[derive(Debug)]
pub struct Planned {
    /// The plan file's text.
    pub text: String,
    pub plan: Plan,
    pub answer: Answer,
    /// Model calls it took (1 when the first answer was accepted).
    pub rounds: u32,
    /// What the checks warn about (the plan is still accepted).
    pub warnings: Vec<PlanError>,
    pub usage: Usage,
    pub cost_usd: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    #[error("plan the goal: {0}")]
    Gateway(#[from] GatewayError),
    #[error("plan the goal: the model gave no acceptable plan in {rounds} round{}", if *rounds == 1 { "" } else { "s" })]
    Rejected {
        rounds: u32,
        /// The last round's problems, as the model was (or would have
        /// been) told them.
        problems: Vec<String>,
        /// The last answer written as a plan, when it could be.
        last_plan: Option<String>,
        /// The last answer's text.
        last_answer: String,
        usage: Usage,
        cost_usd: f64,
    },
}

/// Asks the model for a plan of `request.goal` and checks it, sending its
/// problems back until it is accepted or the repair rounds are spent.
/// `exists` says whether a path exists at the base commit.
pub async fn plan(
    gateway: &Gateway,
    request: &Request<'_>,
    exists: &dyn Fn(&str) -> bool,
) -> Result<Planned, PlannerError> {
    let rounds = 1 + request.template.repair_rounds;
    let mut messages = vec![user(prompt::request(
        request.goal,
        request.max_tasks,
        request.max_depth,
        request.context.text,
    ))];
    let model_desc = request
        .template
        .models
        .get(request.model)
        .map(|m| format!("{} via {:?}", m.model, m.provider).to_lowercase())
        .unwrap_or_default();
    let header = write::Header {
        goal: request.goal,
        model: request.model,
        model_desc,
        base_rev: request.base_rev,
        base_commit: request.base_commit.to_string(),
        map_hash: request.context.hash,
        map_tokens: request.context.tokens,
        map_file: request.context.file_name,
    };
    let mut usage = Usage::default();
    let mut cost_usd = 0.0;
    let mut round = 0;
    let mut format = answer::format(request.max_tasks, request.base_paths);
    loop {
        round += 1;
        let completion = gateway
            .complete(&CompletionRequest {
                model: request.model.to_string(),
                system: prompt::system(),
                messages: messages.clone(),
                max_tokens: None,
                tools: Vec::new(),
                label: "planner".into(),
                transcript: request.transcript.clone(),
                budget: None,
                cassette: Some(crate::gateway::tape::ReelId::Planner),
                // Its map quotes the repository by relative paths; a
                // repair round quotes the plan's file.
                places: vec![("<plan>".into(), request.plan_path.to_path_buf())],
                format: Some(format.clone()),
            })
            .await?;
        usage.add(completion.usage);
        cost_usd += completion.cost_usd;
        let (problems, last_plan) = match check(request, &header, &completion.text, exists) {
            Ok((answer, text, plan, warnings)) => {
                return Ok(Planned {
                    text,
                    plan,
                    answer,
                    rounds: round,
                    warnings,
                    usage,
                    cost_usd,
                });
            }
            Err((mut problems, last_plan)) => {
                if completion.stop_reason == StopReason::MaxTokens {
                    problems.insert(
                        0,
                        "your answer was cut off at the token limit: answer more briefly (shorter prompts, fewer words)".into(),
                    );
                }
                (problems, last_plan)
            }
        };
        if round >= rounds {
            return Err(PlannerError::Rejected {
                rounds: round,
                problems,
                last_plan,
                last_answer: completion.text,
                usage,
                cost_usd,
            });
        }
        // The next round keeps the tasks this one named (see
        // `answer::repair_format`).
        if let Some(ids) = answer::task_ids(&completion.text).filter(|ids| !ids.is_empty()) {
            format = answer::repair_format(request.max_tasks, request.base_paths, &ids);
        }
        messages.push(Message {
            role: Role::Assistant,
            content: if completion.content.is_empty() {
                vec![Block::Text {
                    text: "(empty answer)".into(),
                }]
            } else {
                completion.content
            },
        });
        messages.push(user(prompt::repair(&problems, rounds - round - 1)));
    }
}

type Checked = (Answer, String, Plan, Vec<PlanError>);

/// The answer `text` read, written as a plan and checked; else the
/// problems (and the written plan, if it got that far).
fn check(
    request: &Request<'_>,
    header: &write::Header<'_>,
    text: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Result<Checked, (Vec<String>, Option<String>)> {
    let answer = answer::parse(text).map_err(|p| (vec![p], None))?;
    let written = write::render(&answer, header, request.template);
    // Of the configuration's origin: its file names read as it may.
    let plan = crate::plan::parse_with(
        request.plan_path,
        written.clone(),
        request.template.origin,
        request.template.files.clone(),
    )
    .map_err(|e| (e.all().map(problem).collect(), Some(written.clone())))?;
    let limits = Limits {
        max_tasks: Some(request.max_tasks),
        max_depth: Some(request.max_depth),
        // A model declares what each task writes.
        overlap: semantic::Overlap::Refuse,
    };
    let found = semantic::check(&plan, exists, limits);
    if !found.errors.is_empty() {
        return Err((found.errors.iter().map(problem).collect(), Some(written)));
    }
    Ok((answer, written, plan, found.warnings))
}

/// A name made of `words`' first five words, lowercase, dashed, at most
/// 40 characters (`Split the parser!` -> `split-the-parser`), or
/// `otherwise` when they hold none: a run's name from its goal, a kept
/// plan's from its goal or file.
pub fn slug(words: &str, otherwise: &str) -> String {
    let words: Vec<String> = words
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(5)
        .map(str::to_ascii_lowercase)
        .collect();
    let mut name = words.join("-");
    name.truncate(40);
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        otherwise.to_string()
    } else {
        name
    }
}

/// A plan error in words for the model: what and what to do, no source
/// snippet (the model wrote JSON, not this TOML).
pub fn problem(e: &PlanError) -> String {
    match &e.help {
        Some(help) => format!("{} ({})", e.message, help.replace('\n', " ")),
        None => e.message.clone(),
    }
}

fn user(text: String) -> Message {
    Message {
        role: Role::User,
        content: vec![Block::Text { text }],
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn slugs_name_runs() {
        assert_eq!(slug("Split the parser!", "goal"), "split-the-parser");
        assert_eq!(slug("  ÄÖ  ", "goal"), "goal");
        assert_eq!(slug("a b c d e f g", "goal"), "a-b-c-d-e");
        assert!(crate::plan::is_valid_run_name(&slug(
            &"x".repeat(90),
            "goal"
        )));
    }
    use crate::plan::origin::{Origin, files::Files};

    /// A repository's untrusted `swarm.toml` whose `[defaults]
    /// output_schema` names a file through a link out of the repository:
    /// the plan written from it reads only files git tracks at its base,
    /// so the host file never reaches the plan (or the model).
    #[test]
    fn a_plan_from_an_untrusted_configuration_reads_no_file_through_a_link() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(
            outside.path().join("s.json"),
            r#"{"type": "object", "description": "MARKER-host-file"}"#,
        )
        .unwrap();
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path().canonicalize().unwrap();
        // The link, committed.
        let git = git2::Repository::init(&root).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("schemas")).unwrap();
        let mut index = git.index().unwrap();
        index.add_path(Path::new("schemas")).unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = crate::git::signature().unwrap();
        let head = git
            .commit(Some("HEAD"), &sig, &sig, "a link out", &tree, &[])
            .unwrap();
        let config = "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n[defaults]\noutput_schema = \"schemas/s.json\"\n";
        let template = crate::plan::parse_template_with(
            Path::new("swarm.toml"),
            config.into(),
            Origin::Repository,
            Files::repository(&root, "", None),
        )
        .unwrap();
        // It sets nothing an untrusted file may not, as written.
        assert!(crate::plan::origin::findings(&template.source).is_empty());
        let plan_path = root.join(".swarm/plans/g/plan.toml");
        let request = Request {
            goal: "review",
            model: "default",
            max_tasks: 4,
            max_depth: 2,
            template: &template,
            context: Context {
                text: "",
                hash: "h",
                tokens: 0,
                file_name: "plan.map.md",
            },
            base_rev: "HEAD",
            base_commit: head,
            base_paths: None,
            plan_path: &plan_path,
            transcript: None,
        };
        let header = write::Header {
            goal: "review",
            model: "default",
            model_desc: String::new(),
            base_rev: "HEAD",
            base_commit: head.to_string(),
            map_hash: "h",
            map_tokens: 0,
            map_file: "plan.map.md",
        };
        let answer = r#"{"split": false, "reason": "r", "tasks": [{"id": "review", "why": "w", "prompt": "review it"}]}"#;
        let Err((problems, _)) = check(&request, &header, answer, &|_| true) else {
            panic!("the plan was accepted")
        };
        let all = problems.join("\n");
        assert!(all.contains("is not a file git tracks"), "{all}");
        assert!(!all.contains("MARKER"), "{all}");
        // The same configuration from the person reads it (they chose to).
        let mut trusted = template.clone();
        trusted.origin = Origin::Person;
        trusted.files = Files::beside(&root.join("swarm.toml"));
        let request = Request {
            template: &trusted,
            ..request
        };
        let (_, _, plan, _) = check(&request, &header, answer, &|_| true).unwrap();
        let schema = plan.tasks[0]
            .agent()
            .unwrap()
            .output_schema
            .clone()
            .unwrap();
        assert_eq!(schema["description"], "MARKER-host-file");
    }
}
