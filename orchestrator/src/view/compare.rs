//! `swarm compare` for people: an experiment's variants side by side, as
//! the run ranked them or, while it runs, as they stand so far.

use swarm_protocol::RunReport;

use crate::report::Experiment;
use crate::{escape, export};

/// The ranking the run recorded for `experiment` of `report`, or each
/// variant's state so far; control characters escaped.
pub fn ranking(report: &RunReport, experiment: &Experiment) -> String {
    let task = experiment.task.as_str();
    let decided = report
        .tasks
        .iter()
        .find(|t| t.id == task)
        .and_then(|t| t.experiment.as_ref());
    let text = match decided {
        Some(decision) => export::ranking_table(task, decision),
        None => {
            let mut out = format!("  experiment {task}: not decided yet\n");
            for v in &experiment.variants {
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
    };
    escape::text(&text).into_owned()
}
