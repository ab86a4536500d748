//! Ranking an experiment's variants and picking one: which variants are
//! eligible (they succeeded, and have a score when ranked by one), their
//! order (by score, ties to the lowest cost, then the lowest number) and
//! the winner. Pure: the dispatcher gathers the facts from its fold.

use std::cmp::Ordering;

use swarm_protocol::TaskStatus;
use swarm_protocol::experiment::{Decision, Pick, Ranked, Saved};

/// What the run knows of one variant when its experiment is decided.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub ranked: Ranked,
    /// Why its score is missing, when it has none.
    pub score_error: Option<String>,
    /// Why it did not succeed (its task's reason).
    pub reason: Option<String>,
}

/// Ranks `rows` (every variant, by number) for `pick`. `scored`: whether
/// the variants have a score. `first`: under `pick = "first"`, the variant
/// that passed first (the others may have passed too before they heard).
pub(crate) fn decide(
    pick: Pick,
    scored: bool,
    rows: Vec<Row>,
    first: Option<&str>,
    saved: Option<Saved>,
) -> Decision {
    let mut eligible = Vec::new();
    let mut others = Vec::new();
    for row in rows {
        let mut ranked = row.ranked;
        let why = match ranked.status {
            TaskStatus::Succeeded | TaskStatus::Merged => match (scored, pick, ranked.score) {
                // A first pick ranks by time, not score.
                (true, Pick::Min | Pick::Max | Pick::None, None) => Some(
                    row.score_error
                        .unwrap_or_else(|| "it has no score".to_string()),
                ),
                _ => None,
            },
            _ if ranked.verify_passed == Some(false) => Some("verify failed".to_string()),
            status => Some(match row.reason {
                Some(reason) => format!("{status}: {reason}"),
                None => status.to_string(),
            }),
        };
        match why {
            None => eligible.push(ranked),
            Some(why) => {
                ranked.ineligible = Some(why);
                others.push(ranked);
            }
        }
    }
    eligible.sort_by(|a, b| order(pick, first, a, b));
    for (ranked, place) in eligible.iter_mut().zip(1u32..) {
        ranked.rank = Some(place);
    }
    let winner = match pick {
        Pick::None => None,
        Pick::Min | Pick::Max | Pick::First => eligible.first().map(|r| r.task.clone()),
    };
    others.sort_by_key(|r| r.variant);
    eligible.extend(others);
    Decision {
        pick,
        winner,
        ranking: eligible,
        saved,
    }
}

/// Best first: by score (the pick's direction; for `first`, the variant
/// that passed first leads), then the lowest cost, then the lowest number.
fn order(pick: Pick, first: Option<&str>, a: &Ranked, b: &Ranked) -> Ordering {
    let by_score = |a: &Ranked, b: &Ranked| {
        let (x, y) = (a.score.unwrap_or(0.0), b.score.unwrap_or(0.0));
        match pick {
            Pick::Min | Pick::None => x.total_cmp(&y),
            Pick::Max => y.total_cmp(&x),
            Pick::First => Ordering::Equal,
        }
    };
    let leads = |r: &Ranked| Some(r.task.as_str()) != first;
    let primary = match pick {
        Pick::First => leads(a).cmp(&leads(b)),
        Pick::Min | Pick::Max | Pick::None => by_score(a, b),
    };
    primary
        .then(a.cost_usd.total_cmp(&b.cost_usd))
        .then(a.variant.cmp(&b.variant))
}

/// How a decision reads in a task's reason and the live view: `speedup@3
/// (score 12.5)`, or why nothing was picked.
pub(crate) fn summary(decision: &Decision) -> String {
    match (&decision.winner, decision.pick) {
        (Some(w), _) => {
            let score = decision
                .ranking
                .first()
                .and_then(|r| r.score)
                .map(|s| format!(", score {s}"))
                .unwrap_or_default();
            format!("picked {w}{score}")
        }
        (None, Pick::None) => format!(
            "kept {} variants on their refs, merged none (pick = \"none\")",
            decision.ranking.len()
        ),
        (None, _) => {
            let reasons: Vec<String> = decision
                .ranking
                .iter()
                .map(|r| {
                    format!(
                        "{}: {}",
                        r.task,
                        r.ineligible.as_deref().unwrap_or("not eligible")
                    )
                })
                .collect();
            format!("no variant could be picked ({})", reasons.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: u32, status: TaskStatus, score: Option<f64>, cost: f64) -> Row {
        Row {
            ranked: Ranked {
                task: format!("t@{k}"),
                variant: k,
                values: Default::default(),
                rank: None,
                ineligible: None,
                status,
                score,
                verify_passed: None,
                tokens: 0,
                cost_usd: cost,
                duration_ms: 0,
                diff: None,
                commit: None,
                git_ref: None,
            },
            score_error: None,
            reason: None,
        }
    }

    fn order_of(d: &Decision) -> Vec<(&str, Option<u32>)> {
        d.ranking
            .iter()
            .map(|r| (r.task.as_str(), r.rank))
            .collect()
    }

    #[test]
    fn min_and_max_rank_by_score_and_skip_the_ineligible() {
        let rows = || {
            vec![
                row(1, TaskStatus::Succeeded, Some(30.0), 0.0),
                row(2, TaskStatus::Failed, Some(1.0), 0.0),
                row(3, TaskStatus::Succeeded, Some(10.0), 0.0),
                row(4, TaskStatus::Succeeded, None, 0.0),
            ]
        };
        let min = decide(Pick::Min, true, rows(), None, None);
        assert_eq!(min.winner.as_deref(), Some("t@3"));
        assert_eq!(
            order_of(&min),
            [
                ("t@3", Some(1)),
                ("t@1", Some(2)),
                ("t@2", None),
                ("t@4", None)
            ]
        );
        assert_eq!(
            min.ranking[3].ineligible.as_deref(),
            Some("it has no score")
        );
        let max = decide(Pick::Max, true, rows(), None, None);
        assert_eq!(max.winner.as_deref(), Some("t@1"));
    }

    #[test]
    fn a_failed_verify_is_never_picked_even_with_the_best_score() {
        let mut bad = row(1, TaskStatus::Failed, Some(0.0), 0.0);
        bad.ranked.verify_passed = Some(false);
        let rows = vec![bad, row(2, TaskStatus::Succeeded, Some(5.0), 0.0)];
        let d = decide(Pick::Min, true, rows, None, None);
        assert_eq!(d.winner.as_deref(), Some("t@2"));
        assert_eq!(d.ranking[1].ineligible.as_deref(), Some("verify failed"));
    }

    #[test]
    fn ties_go_to_the_lowest_cost_then_the_lowest_number() {
        let rows = vec![
            row(1, TaskStatus::Succeeded, Some(7.0), 0.5),
            row(2, TaskStatus::Succeeded, Some(7.0), 0.2),
            row(3, TaskStatus::Succeeded, Some(7.0), 0.2),
        ];
        let d = decide(Pick::Max, true, rows, None, None);
        assert_eq!(
            order_of(&d),
            [("t@2", Some(1)), ("t@3", Some(2)), ("t@1", Some(3))]
        );
    }

    #[test]
    fn first_picks_the_one_that_passed_first_and_none_picks_nothing() {
        let rows = || {
            vec![
                row(1, TaskStatus::Cancelled, None, 0.0),
                row(2, TaskStatus::Succeeded, None, 0.0),
                row(3, TaskStatus::Succeeded, None, 0.0),
            ]
        };
        let d = decide(Pick::First, false, rows(), Some("t@3"), None);
        assert_eq!(d.winner.as_deref(), Some("t@3"));
        assert_eq!(d.ranking[2].ineligible.as_deref(), Some("cancelled"));
        let none = decide(Pick::None, false, rows(), None, None);
        assert_eq!(none.winner, None);
        assert_eq!(none.ranking.iter().filter(|r| r.rank.is_some()).count(), 2);
        assert!(summary(&none).contains("merged none"), "{}", summary(&none));
    }

    #[test]
    fn nothing_eligible_says_why_for_each_variant() {
        let mut r = row(1, TaskStatus::Succeeded, None, 0.0);
        r.score_error = Some("score timed out after 1s".into());
        let d = decide(Pick::Min, true, vec![r], None, None);
        assert_eq!(d.winner, None);
        assert_eq!(
            summary(&d),
            "no variant could be picked (t@1: score timed out after 1s)"
        );
    }
}
