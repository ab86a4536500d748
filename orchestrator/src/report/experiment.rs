//! An experiment of a run (a task with `variants`) as its report says:
//! found by its task's id or one of its variants' (`speedup@2`), and the
//! result commit of one of its variants (`swarm compare`), named by its
//! number, its id or its values (`n=3`, `model=smart,temperature=0.2`).

use std::collections::BTreeMap;

use git2::Oid;
use swarm_protocol::{RunReport, TaskReport, TaskStatus};

/// An experiment of a run and its variants, in the run's order.
#[derive(Debug)]
pub struct Experiment<'a> {
    pub run: String,
    /// The experiment's task.
    pub task: String,
    pub variants: Vec<&'a TaskReport>,
    /// Each variant's values (`variants = { key = [...] }`), by id, as
    /// its decided ranking holds them (none before it is decided).
    pub values: BTreeMap<&'a str, &'a BTreeMap<String, String>>,
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
        /// Whether they may be named by their values.
        by_values: bool,
    },
    #[error("compare `{which}` in run `{run}`: {} variants of `{task}` have these values", matching.len())]
    Ambiguous {
        run: String,
        task: String,
        which: String,
        /// The variants that have them, with their values.
        matching: Vec<String>,
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
            Self::NoVariant {
                known, by_values, ..
            } => format!(
                "its variants are {} (or their numbers{})",
                known.join(", "),
                if *by_values {
                    ", or their values as `key=value`"
                } else {
                    ""
                }
            ),
            Self::Ambiguous { matching, .. } => {
                format!(
                    "name one by more of its values (`key=value,key=value`): {}",
                    matching.join(", ")
                )
            }
            Self::NoCommit { .. } => String::new(),
        }
    }
}

/// Whether a variant's value `have` is the `wanted` one a person wrote:
/// the same text, or the same number (`temperature=0.20` is the plan's
/// `0.2`, kept as `0.2`; `1.0` is kept as `1`).
fn same_value(have: &str, wanted: &str) -> bool {
    have == wanted
        || matches!(
            (have.parse::<f64>(), wanted.parse::<f64>()),
            (Ok(a), Ok(b)) if a == b
        )
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
        let values = report
            .tasks
            .iter()
            .find(|t| t.id == task)
            .and_then(|t| t.experiment.as_deref())
            .map(|d| {
                d.ranking
                    .iter()
                    .filter(|r| !r.values.is_empty())
                    .map(|r| (r.task.as_str(), &r.values))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            run: run.to_string(),
            task,
            variants,
            values,
        })
    }

    /// The id of the variant `which`: its number (`2`), its id
    /// (`speedup@2`), or values that only it has (`n=3`; several as
    /// `model=smart,temperature=0.2`); `None` if none has them, the ids
    /// of those that have them if several do.
    fn id_of(&self, which: &str) -> Result<Option<String>, Vec<String>> {
        if let Ok(n) = which.parse::<u32>() {
            return Ok(Some(format!("{}@{n}", self.task)));
        }
        if !which.contains('=') {
            return Ok(Some(which.to_string()));
        }
        let wanted: Option<Vec<(&str, &str)>> = which
            .split(',')
            .map(|pair| pair.split_once('=').map(|(k, v)| (k.trim(), v.trim())))
            .collect();
        let Some(wanted) = wanted else {
            return Ok(None);
        };
        let matching: Vec<&str> = self
            .values
            .iter()
            .filter(|(_, values)| {
                wanted
                    .iter()
                    .all(|(k, v)| values.get(*k).is_some_and(|have| same_value(have, v)))
            })
            .map(|(id, _)| *id)
            .collect();
        match matching.as_slice() {
            [] => Ok(None),
            [id] => Ok(Some((*id).to_string())),
            _ => Err(matching.iter().map(|id| self.said(id)).collect()),
        }
    }

    /// Variant `id` as a person reads it: with its values, if it has any.
    fn said(&self, id: &str) -> String {
        match self.values.get(id) {
            Some(values) => {
                let said: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{id} ({})", said.join(","))
            }
            None => id.to_string(),
        }
    }

    /// The result commit of the variant `which` (its number, its id or
    /// its values, see [`Self::id_of`]).
    pub fn commit(&self, which: &str) -> Result<Oid, CompareError> {
        let id = self
            .id_of(which)
            .map_err(|matching| CompareError::Ambiguous {
                run: self.run.clone(),
                task: self.task.clone(),
                which: which.to_string(),
                matching,
            })?;
        let variant = id.and_then(|id| self.variants.iter().find(|v| v.id == id));
        let Some(variant) = variant else {
            return Err(CompareError::NoVariant {
                run: self.run.clone(),
                task: self.task.clone(),
                which: which.to_string(),
                known: self.variants.iter().map(|v| self.said(&v.id)).collect(),
                by_values: !self.values.is_empty(),
            });
        };
        let id = variant.id.clone();
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
