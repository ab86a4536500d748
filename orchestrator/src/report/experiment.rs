//! An experiment of a run (a task with `variants`) as its report says:
//! found by its task's id or one of its variants' (`speedup@2`), and the
//! result commit of one of its variants (`swarm compare`).

use git2::Oid;
use swarm_protocol::{RunReport, TaskReport, TaskStatus};

/// An experiment of a run and its variants, in the run's order.
#[derive(Debug)]
pub struct Experiment<'a> {
    pub run: String,
    /// The experiment's task.
    pub task: String,
    pub variants: Vec<&'a TaskReport>,
}

/// Why an experiment or one of its variants was not found, as a fragment
/// after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("compare the variants of `{task}` in run `{run}`: it is no experiment")]
    NoExperiment {
        run: String,
        task: String,
        /// The run's experiments.
        experiments: Vec<String>,
    },
    #[error("compare `{which}` in run `{run}`: `{task}` has no such variant")]
    NoVariant {
        run: String,
        task: String,
        which: String,
        /// The experiment's variants.
        known: Vec<String>,
    },
    #[error("compare `{id}` in run `{run}`: it has no result commit (it is {status})")]
    NoCommit {
        run: String,
        id: String,
        status: TaskStatus,
    },
}

impl CompareError {
    /// What the person can do about it.
    pub fn help(&self) -> String {
        match self {
            Self::NoExperiment { experiments, .. } if !experiments.is_empty() => {
                format!("its experiments: {}", experiments.join(", "))
            }
            Self::NoExperiment { .. } => {
                "a task with `variants = N` in its plan is an experiment".to_string()
            }
            Self::NoVariant { known, .. } => {
                format!("its variants are {} (or their numbers)", known.join(", "))
            }
            Self::NoCommit { .. } => String::new(),
        }
    }
}

impl<'a> Experiment<'a> {
    /// The experiment `task` (or the one of variant `task`) of run `run`,
    /// whose report is `report`.
    pub fn find(report: &'a RunReport, run: &str, task: &str) -> Result<Self, CompareError> {
        // `speedup@2` means its experiment.
        let task = report
            .tasks
            .iter()
            .find(|t| t.id == task)
            .and_then(|t| t.variant_of.clone())
            .unwrap_or_else(|| task.to_string());
        let variants: Vec<&TaskReport> = report
            .tasks
            .iter()
            .filter(|t| t.variant_of.as_deref() == Some(&task))
            .collect();
        if variants.is_empty() {
            let mut experiments: Vec<String> = report
                .tasks
                .iter()
                .filter_map(|t| t.variant_of.clone())
                .collect();
            experiments.dedup();
            return Err(CompareError::NoExperiment {
                run: run.to_string(),
                task,
                experiments,
            });
        }
        Ok(Self {
            run: run.to_string(),
            task,
            variants,
        })
    }

    /// The result commit of the variant `which` (its number or its id).
    pub fn commit(&self, which: &str) -> Result<Oid, CompareError> {
        let id = match which.parse::<u32>() {
            Ok(n) => format!("{}@{n}", self.task),
            Err(_) => which.to_string(),
        };
        let Some(variant) = self.variants.iter().find(|v| v.id == id) else {
            return Err(CompareError::NoVariant {
                run: self.run.clone(),
                task: self.task.clone(),
                which: which.to_string(),
                known: self.variants.iter().map(|v| v.id.clone()).collect(),
            });
        };
        variant
            .commit
            .as_deref()
            .and_then(|c| Oid::from_str(c).ok())
            .ok_or_else(|| CompareError::NoCommit {
                run: self.run.clone(),
                id,
                status: variant.status,
            })
    }
}
