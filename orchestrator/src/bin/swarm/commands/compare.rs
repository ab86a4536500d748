//! `swarm compare RUN TASK [--diff A B]`: an experiment's variants side by
//! side (the ranking the run recorded, or, while it runs, what is known so
//! far), and the diff between two variants' results.

use std::io::Write as _;
use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::{escape, export};
use swarm_protocol::{RunReport, TaskReport};

use crate::Failure;
use crate::common::{load_report, open_repo};

/// `swarm compare`'s command line.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The run (see `.swarm/runs/`).
    run: String,
    /// The experiment (the task with `variants`).
    task: String,
    /// Print the diff from variant A's result to variant B's (their
    /// numbers, `2`, or ids, `speedup@2`).
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    diff: Option<Vec<String>>,
}

/// `swarm compare RUN TASK [--diff A B]`.
pub(crate) fn cmd_compare(cwd: &Path, args: CompareArgs) -> Result<i32, Failure> {
    compare(cwd, &args.run, &args.task, args.diff.as_deref())
}

pub(crate) fn compare(
    cwd: &Path,
    run: &str,
    task: &str,
    diff: Option<&[String]>,
) -> Result<i32, Failure> {
    let found = Experiment::find(cwd, run, task)?;
    let variants = found.variants();
    if let Some([a, b]) = diff {
        let from = pick(&found.run, &found.task, &variants, a)?;
        let to = pick(&found.run, &found.task, &variants, b)?;
        let patch = found
            .repo
            .patch(from, to)
            .map_err(|e| Failure::Internal(anyhow!("failed to {e}")))?;
        let mut out = std::io::stdout().lock();
        // The files are the tasks' own: on a terminal, their control
        // characters are shown escaped.
        use std::io::IsTerminal as _;
        let written = if std::io::stdout().is_terminal() {
            out.write_all(escape::text(&String::from_utf8_lossy(&patch)).as_bytes())
        } else {
            out.write_all(&patch)
        };
        written.map_err(|e| Failure::Internal(e.into()))?;
        return Ok(swarm_orchestrator::exit::SUCCESS);
    }
    print!("{}", found.ranking());
    Ok(swarm_orchestrator::exit::SUCCESS)
}

/// `swarm compare RUN TASK` as text: the ranking of an experiment (what
/// `swarm mcp` answers with).
pub(crate) fn compare_text(cwd: &Path, run: &str, task: &str) -> Result<String, Failure> {
    Experiment::find(cwd, run, task).map(|found| found.ranking())
}

/// An experiment of a run, found by its task's id or one of its
/// variants' (`speedup@2`).
struct Experiment {
    repo: swarm_orchestrator::git::Repo,
    run: String,
    report: RunReport,
    task: String,
}

impl Experiment {
    fn find(cwd: &Path, run: &str, task: &str) -> Result<Self, Failure> {
        let repo = open_repo(cwd)?;
        let (run, report) = load_report(&repo, Some(run))?;
        // `speedup@2` means its experiment.
        let task = report
            .tasks
            .iter()
            .find(|t| t.id == task)
            .and_then(|t| t.variant_of.clone())
            .unwrap_or_else(|| task.to_string());
        if !report
            .tasks
            .iter()
            .any(|t| t.variant_of.as_deref() == Some(&task))
        {
            let experiments: Vec<&str> = report
                .tasks
                .iter()
                .filter_map(|t| t.variant_of.as_deref())
                .collect();
            let help = match experiments.first() {
                Some(_) => {
                    let mut names = experiments;
                    names.dedup();
                    format!("its experiments: {}", names.join(", "))
                }
                None => "a task with `variants = N` in its plan is an experiment".to_string(),
            };
            return Err(Failure::Invalid(anyhow!(
                "compare the variants of `{task}` in run `{run}`: it is no experiment\nhelp: {help}"
            )));
        }
        Ok(Self {
            repo,
            run,
            report,
            task,
        })
    }

    fn variants(&self) -> Vec<&TaskReport> {
        self.report
            .tasks
            .iter()
            .filter(|t| t.variant_of.as_deref() == Some(&self.task))
            .collect()
    }

    /// The ranking table, control characters escaped.
    fn ranking(&self) -> String {
        escape::text(&table(&self.report, &self.task, &self.variants())).into_owned()
    }
}

/// The ranking the run recorded, or each variant's state so far.
fn table(report: &RunReport, task: &str, variants: &[&TaskReport]) -> String {
    if let Some(decision) = report
        .tasks
        .iter()
        .find(|t| t.id == task)
        .and_then(|t| t.experiment.as_ref())
    {
        return export::ranking_table(task, decision);
    }
    let mut out = format!("  experiment {task}: not decided yet\n");
    for v in variants {
        let score = v
            .score
            .as_ref()
            .map(|s| match (s.value, &s.error) {
                (Some(v), _) => format!("score {v}"),
                (None, Some(e)) => e.clone(),
                (None, None) => String::new(),
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "    {:<24} {:<10} {score}\n",
            v.id,
            v.status.as_str()
        ));
    }
    out
}

/// The result commit of the variant `which` (its number or its id).
fn pick(
    run: &str,
    task: &str,
    variants: &[&TaskReport],
    which: &str,
) -> Result<git2::Oid, Failure> {
    let id = match which.parse::<u32>() {
        Ok(n) => format!("{task}@{n}"),
        Err(_) => which.to_string(),
    };
    let variant = variants.iter().find(|v| v.id == id).ok_or_else(|| {
        let known: Vec<&str> = variants.iter().map(|v| v.id.as_str()).collect();
        Failure::Invalid(anyhow!(
            "compare `{which}` in run `{run}`: `{task}` has no such variant\nhelp: its variants are {} (or their numbers)",
            known.join(", ")
        ))
    })?;
    variant
        .commit
        .as_deref()
        .and_then(|c| git2::Oid::from_str(c).ok())
        .ok_or_else(|| {
            Failure::Invalid(anyhow!(
                "compare `{id}` in run `{run}`: it has no result commit (it is {})",
                variant.status
            ))
        })
}
