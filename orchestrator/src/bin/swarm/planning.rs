//! The planning `swarm plan GOAL`, `swarm run --goal` and `swarm mcp`
//! share: the planner's configuration (`swarm.toml` or `--config`), the base, the
//! repository map, the model's rounds (`swarm_orchestrator::planner`), and
//! the files a plan leaves: the plan, its map beside it, the planner's
//! transcript, and a rejected last attempt for the user to fix by hand.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::plan::{self, Template};
use swarm_orchestrator::planner::{self, Planned, PlannerError};
use swarm_orchestrator::repomap::{self, MapOptions, RepoMap};
use swarm_orchestrator::{escape, layout};

use swarm_orchestrator::gateway::tape::TapeSettings;

use crate::common::{CONFIG_FILE, invalid_or_internal, open_repo};
use crate::failure::Failure;

/// The planner's settings `swarm plan` and `swarm run --goal` share.
#[derive(Debug, Clone, clap::Args)]
pub struct PlannerArgs {
    /// The model that plans: a name in the configuration's [models]
    /// (default: `default`).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// At most N tasks in the plan.
    #[arg(long, value_name = "N", default_value_t = planner::DEFAULT_MAX_TASKS)]
    pub max_tasks: usize,
    /// The planner's configuration: a plan without tasks, whose [swarm],
    /// [defaults] and [models] the written plan starts from (default:
    /// swarm.toml at the repository's root, else
    /// ~/.config/swarm/swarm.toml). A file named here is yours, trusted.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Trust the repository's swarm.toml as it is, for this invocation
    /// only (for CI): its settings beyond swarm's defaults (sandbox,
    /// network, read_paths, where model keys go...) apply. Without it,
    /// they need `swarm trust` first.
    #[arg(long)]
    pub trust: bool,
}

/// The configuration when the repository has no `swarm.toml`.
const DEFAULT_CONFIG: &str = "\
# swarm's default planner configuration (no swarm.toml in the repository).
[models.default]
provider = \"anthropic\"
model = \"claude-sonnet-4-5\"
";

/// Everything known before the model is asked.
pub struct Planning {
    pub goal: String,
    pub model: String,
    pub max_tasks: usize,
    pub template: Template,
    pub base_rev: String,
    pub base: git2::Oid,
    pub map: RepoMap,
}

/// What `swarm run --goal` planned: the plan file and the run's name.
pub struct GoalPlan {
    pub path: PathBuf,
    pub name: String,
    pub text: String,
    /// The plan as checked, of its configuration's origin.
    pub plan: plan::Plan,
}

/// The planning step of `swarm run --goal`: the plan, its map and the
/// transcript in `.swarm/plans/<run>/`, the run's name chosen free.
pub(crate) fn plan_goal(
    cwd: &Path,
    goal: &str,
    name: Option<&str>,
    base: Option<&str>,
    args: &PlannerArgs,
    tape: &TapeSettings,
) -> Result<GoalPlan, Failure> {
    let repo = open_repo(cwd)?;
    let planning = prepare(&repo, cwd, args, base, goal)?;
    let state = swarm_orchestrator::state::State::create(&repo.workdir)
        .map_err(|e| invalid_or_internal(e.into()))?;
    let wanted = name.map_or_else(|| planner::slug(goal, "goal"), str::to_string);
    let name = swarm_orchestrator::run::free_run_name(&repo, &wanted, |n| {
        layout::plans_dir(&repo.workdir, n)
            .symlink_metadata()
            .is_ok()
    })
    .map_err(invalid_or_internal)?;
    state
        .ensure_dir(&[layout::PLANS, &name])
        .map_err(|e| invalid_or_internal(e.into()))?;
    // swarm's state is never part of the work (as a run makes sure too).
    repo.exclude(&format!("/{}/", layout::STATE_DIR))
        .map_err(|e| invalid_or_internal(e.into()))?;
    let dir = layout::plans_dir(&repo.workdir, &name);
    let path = dir.join(layout::PLAN);
    let map_path = dir.join(format!("plan.{}", layout::MAP_SUFFIX));
    let transcript = dir.join(layout::PLANNER_TRANSCRIPT);
    let rejected = dir.join("plan.rejected.toml");
    write(&map_path, &planning.map.text)?;
    let planned = ask(
        &repo,
        &planning,
        &path,
        &map_path,
        &transcript,
        &rejected,
        tape,
    )?;
    write(&path, &planned.text)?;
    crate::output::print_plan_warnings(&planned.warnings);
    let shown = path.strip_prefix(cwd).unwrap_or(&path).to_path_buf();
    summary(&planned, &shown, &map_path, &planning);
    Ok(GoalPlan {
        path,
        name,
        text: planned.text,
        plan: planned.plan,
    })
}

/// The planner's configuration (`--config`, else the repository's
/// `swarm.toml`, else the user's, else the built-in one) and where it was
/// read; a repository's own file is held to its origin's rules (`trust`:
/// the person said to trust it).
pub(crate) fn configuration(
    repo: &Repo,
    cwd: &Path,
    config: Option<&Path>,
    trust: bool,
) -> Result<(Template, PathBuf), Failure> {
    // Only a file swarm found in the repository by itself is untrusted:
    // --config, the user's own and the built-in one are the user's.
    let (path, text, found_in_repo) = match config {
        Some(p) => {
            let p = p.to_path_buf();
            let full = cwd.join(&p);
            let text = std::fs::read_to_string(&full).map_err(|e| {
                Failure::Invalid(anyhow!(
                    "read the planner configuration {}: {e}",
                    p.display()
                ))
            })?;
            (p, text, None)
        }
        None => {
            let in_repo = crate::config_origin::repository_config(repo);
            let users = crate::config_origin::config_dir().map(|dir| dir.join(CONFIG_FILE));
            match std::fs::read_to_string(&in_repo) {
                Ok(text) => (PathBuf::from(CONFIG_FILE), text, Some(in_repo)),
                Err(_) => match users.and_then(|p| Some((std::fs::read_to_string(&p).ok()?, p))) {
                    Some((text, users)) => (users, text, None),
                    None => (PathBuf::from(CONFIG_FILE), DEFAULT_CONFIG.to_string(), None),
                },
            }
        }
    };
    let mut template = plan::parse_template(&path, text.clone()).map_err(Failure::Plan)?;
    if let Some(file) = &found_in_repo {
        let origin = crate::config_origin::check_repository_config(file, &text, &template, trust)?;
        if origin.is_untrusted() {
            // Accepted untrusted (it sets nothing it may not): the plans
            // written from it read their file names only as files git
            // tracks at the run's base, and run as a plan of that origin.
            template.origin = origin;
            template.files = plan::origin::files::Files::repository(
                &crate::common::canonical_root(repo)?,
                "",
                None,
            );
        }
    }
    Ok((template, path))
}

/// `command`'s refusal of model `name`, which the configuration at `path`
/// does not have, naming the ones it has.
pub(crate) fn unknown_model(
    command: &str,
    name: &str,
    template: &Template,
    path: &Path,
) -> Failure {
    let known: Vec<&str> = template.models.keys().map(String::as_str).collect();
    Failure::Invalid(anyhow!(
        "{command}: model `{name}` is not among the models of {} ({})\nhelp: add a [models.{name}] table there, or pass --model with one of its names",
        path.display(),
        if known.is_empty() {
            "it has none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

/// The configuration, the base and the map.
pub(crate) fn prepare(
    repo: &Repo,
    cwd: &Path,
    args: &PlannerArgs,
    base: Option<&str>,
    goal: &str,
) -> Result<Planning, Failure> {
    if goal.trim().is_empty() {
        return Err(Failure::Invalid(anyhow!(
            "plan: the goal is empty\nhelp: say what to do, e.g. swarm plan \"split the parser into its own crate\""
        )));
    }
    let (mut template, path) = configuration(repo, cwd, args.config.as_deref(), args.trust)?;
    // The base the person gave is theirs to choose, also for a plan written
    // from a configuration they have not trusted.
    if let Some(base) = base {
        template.files = template.files.chosen_base(base);
    }
    let model = args.model.clone().unwrap_or_else(|| "default".into());
    if !template.models.contains_key(&model) {
        return Err(unknown_model("plan", &model, &template, &path));
    }
    if args.max_tasks == 0 {
        return Err(Failure::Invalid(anyhow!(
            "plan: --max-tasks must be at least 1"
        )));
    }
    let base_rev = base
        .map(str::to_string)
        .or_else(|| template.base.clone())
        .unwrap_or_else(|| "HEAD".into());
    let base = repo
        .resolve(&base_rev)
        .map_err(|e| invalid_or_internal(e.into()))?;
    let map = repomap::build(
        repo,
        base,
        &MapOptions {
            token_budget: template.context_tokens as usize,
            goal: goal.to_string(),
        },
    )
    .map_err(|e| Failure::Internal(anyhow!("build the repository map: failed to {e}")))?;
    Ok(Planning {
        goal: goal.to_string(),
        model,
        max_tasks: args.max_tasks,
        template,
        base_rev,
        base,
        map,
    })
}

/// Asks the model (through a gateway of the configuration's models) and
/// checks its plans; a rejected last attempt is saved at `rejected`.
pub(crate) fn ask(
    repo: &Repo,
    planning: &Planning,
    plan_path: &Path,
    map_path: &Path,
    transcript: &Path,
    rejected: &Path,
    tape: &TapeSettings,
) -> Result<Planned, Failure> {
    let used = BTreeSet::from([planning.model.as_str()]);
    let mut notices = Vec::new();
    let gateway = swarm_orchestrator::assemble::gateway::for_planner(
        &planning.template,
        &used,
        &crate::host::current(),
        tape,
        &mut notices,
    )?;
    crate::output::print_notices(&notices);
    let map_file = map_path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let base_paths = repo
        .paths_at(planning.base, planner::answer::MAX_LISTED_PATHS)
        .map_err(|e| Failure::Internal(anyhow!("plan the goal: failed to {e}")))?;
    let request = planner::Request {
        goal: &planning.goal,
        model: &planning.model,
        max_tasks: planning.max_tasks,
        max_depth: planner::DEFAULT_MAX_DEPTH,
        template: &planning.template,
        context: planner::Context {
            text: &planning.map.text,
            hash: &planning.map.hash,
            tokens: planning.map.tokens,
            file_name: &map_file,
        },
        base_rev: &planning.base_rev,
        base_commit: planning.base,
        base_paths: base_paths.as_deref(),
        plan_path,
        transcript: Some(transcript.to_path_buf()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
        .map_err(Failure::Internal)?;
    eprintln!(
        "planning with model `{}` ({} files, map of {} tokens)...",
        planning.model, planning.map.files, planning.map.tokens
    );
    let planned = repo
        .with_paths_of(planning.base, |exists| {
            runtime.block_on(planner::plan(&gateway, &request, exists))
        })
        .map_err(|e| Failure::Internal(anyhow!("plan the goal: failed to {e}")))?;
    match planned {
        Ok(planned) => Ok(planned),
        Err(PlannerError::Rejected {
            rounds,
            problems,
            last_plan,
            last_answer,
            ..
        }) => {
            // A rejected plan says so before its own header (which asks
            // for review, then a run), with what the checks found.
            let (saved, content) = match &last_plan {
                Some(text) => {
                    let mut said = String::from(
                        "# REJECTED: the model's last attempt, which swarm's checks refused.\n\
                         # Fix what they found, then `swarm validate` it before a run:\n",
                    );
                    for line in problems.iter().flat_map(|p| p.lines()) {
                        said.push_str(&format!("#   {line}\n"));
                    }
                    said.push_str(text);
                    (rejected.to_path_buf(), said)
                }
                None => (rejected.with_extension("txt"), last_answer.clone()),
            };
            let kept = std::fs::write(&saved, &content).is_ok();
            let mut message = format!(
                "plan the goal: the model gave no acceptable plan in {rounds} round{}; the last one's problems:",
                if rounds == 1 { "" } else { "s" }
            );
            for p in &problems {
                message.push_str("\n  - ");
                message.push_str(&escape::line(p));
            }
            if kept {
                message.push_str(&format!(
                    "\nhelp: its last attempt is saved at {}: fix it by hand and `swarm validate` it, or try again (a clearer goal, another --model, more `plan_repair_rounds`)",
                    saved.display()
                ));
            }
            Err(Failure::Invalid(anyhow!(message)))
        }
        Err(PlannerError::Gateway(e)) => Err(Failure::Failed(anyhow!(
            "{e}\nhelp: the planner's conversation so far is in {}",
            transcript.display()
        ))),
    }
}

/// What was planned, on stderr.
pub(crate) fn summary(planned: &Planned, shown: &Path, map_path: &Path, planning: &Planning) {
    let tasks = planned.plan.tasks.len();
    let verdict = if planned.answer.split {
        format!("{tasks} task{}", if tasks == 1 { "" } else { "s" })
    } else {
        "1 task (not split)".to_string()
    };
    eprintln!(
        "wrote {}: {verdict}, {} round{}, {} tokens in / {} out (${:.4})",
        shown.display(),
        planned.rounds,
        if planned.rounds == 1 { "" } else { "s" },
        planned.usage.input_tokens,
        planned.usage.output_tokens,
        planned.cost_usd
    );
    eprintln!("  reason: {}", escape::line(planned.answer.reason.trim()));
    eprintln!(
        "  map:    {} ({} tokens, {})",
        map_path.display(),
        planning.map.tokens,
        planning.map.hash
    );
}

pub(crate) fn write(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::Invalid(anyhow!("write {}: {e}", path.display())))
}
